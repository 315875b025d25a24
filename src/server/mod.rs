//! The gRPC service (tonic) and the admin HTTP port: the only module that knows tonic.
//!
//! - [`pb`]: generated protobuf types. [`convert`]: proto ↔ domain, both ways, in one place.
//! - [`client`]: a blocking client of the service (what `replay --server` uses).
//! - [`classifier`]: the ruleset, limits and concurrency permits every interface shares.
//!   [`admission`]: permits taken before a call's body is read.
//! - [`grpc`]: the `triage.v1.Triage` service. [`admin`]: metrics, probes, webhook.
//!   [`playground`]: the admin port's page for trying messages and reading the ruleset.
//! - [`milter`]: the milter protocol for mail gateways (Postfix, Sendmail).
//! - [`shadow`]: a candidate ruleset classifying every call off the caller's path (`GET /shadow`).
//! - [`state`]: the serving ruleset. [`reload`]: directory watch and SIGHUP.
//! - [`auth`]: bearer tokens. [`metrics`]: Prometheus names.
//! - [`conn`]: the accept loop of both ports (connection cap, handshake and idle deadlines).
//!   [`deadline`]: call deadlines. [`tls`]: reloadable TLS.

pub mod admin;
pub mod admission;
pub mod auth;
pub mod classifier;
pub mod client;
pub mod conn;
pub mod convert;
pub mod deadline;
pub mod grpc;
pub mod metrics;
pub mod milter;
pub mod pb;
pub mod playground;
pub mod reload;
pub mod shadow;
pub mod state;
pub mod tls;

use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tonic::service::interceptor::InterceptedService;
use tonic::{Request, Status};
use tracing::{info, warn};

pub use auth::Tokens;
pub use conn::ConnLimits;
pub use state::Rules;

use crate::mail::Limits;

/// How the server runs.
#[derive(Debug, Clone)]
pub struct Config {
    /// Message size and decoding limits.
    pub limits: Limits,
    /// Calls served at once; beyond it calls are shed with RESOURCE_EXHAUSTED.
    pub max_concurrency: usize,
    /// Longest a call may take (the client's shorter `grpc-timeout` wins).
    pub request_timeout: Duration,
    /// How long in-flight calls may take to finish after a shutdown signal.
    pub drain_timeout: Duration,
    /// Accepted bearer tokens; `None` means no authentication.
    pub tokens: Option<Arc<Tokens>>,
    /// TLS files; `None` means plaintext.
    pub tls: Option<TlsFiles>,
    /// How the milter behaves, when one listens (see [`Listeners::milter`]).
    pub milter: milter::Settings,
    /// TLS files of the admin port (no client certificates there: probes and scrapers);
    /// `None` means plain HTTP.
    pub admin_tls: Option<TlsFiles>,
    /// Connection limits of the gRPC port.
    pub connections: ConnLimits,
    /// Connection limits of the admin port: its own cap, so a flood on the gRPC port never
    /// takes the probes down.
    pub admin_connections: ConnLimits,
    /// A shadow ruleset that also classifies every call, off the caller's path; `None`: none.
    pub shadow: Option<shadow::Settings>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            limits: Limits::default(),
            max_concurrency: 256,
            request_timeout: Duration::from_secs(30),
            drain_timeout: Duration::from_secs(8),
            tokens: None,
            tls: None,
            milter: milter::Settings::default(),
            admin_tls: None,
            connections: ConnLimits::default(),
            admin_connections: ConnLimits {
                max_connections: 64,
                ..ConnLimits::default()
            },
            shadow: None,
        }
    }
}

/// TLS certificate files (PEM).
#[derive(Debug, Clone)]
pub struct TlsFiles {
    /// Server certificate chain.
    pub cert: PathBuf,
    /// Server private key.
    pub key: PathBuf,
    /// When set, clients must present a certificate signed by this CA (mutual TLS).
    pub client_ca: Option<PathBuf>,
}

/// Why the server could not start or failed while running.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServeError {
    /// A TLS file could not be read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The gRPC transport failed (bad TLS material, socket errors).
    #[error("gRPC transport: {0}")]
    Transport(#[from] tonic::transport::Error),
    /// Reflection could not be built.
    #[error("reflection: {0}")]
    Reflection(#[from] tonic_reflection::server::Error),
    /// The rules directory, certificates or token file could not be watched.
    #[error("watching files for reload: {0}")]
    Watch(#[from] notify::Error),
    /// TLS material is missing or invalid.
    #[error(transparent)]
    Tls(#[from] tls::TlsError),
    /// A signal handler could not be installed.
    #[error("installing a signal handler: {0}")]
    Signal(std::io::Error),
    /// The shadow ruleset's worker thread could not be started.
    #[error("starting the shadow ruleset's worker: {0}")]
    Shadow(std::io::Error),
}

/// The sockets one process serves on.
#[derive(Debug)]
pub struct Listeners {
    /// gRPC.
    pub grpc: TcpListener,
    /// The admin HTTP port, when on.
    pub admin: Option<TcpListener>,
    /// The milter, when on.
    pub milter: Option<milter::Listener>,
}

/// Serves gRPC on `listener` and, when given, the admin HTTP port on `admin`, until
/// `shutdown` completes; then stops accepting, lets in-flight calls finish (at most
/// `config.drain_timeout`) and returns. [`serve_on`] adds the milter.
pub async fn serve(
    listener: TcpListener,
    admin: Option<TcpListener>,
    rules: Arc<Rules>,
    config: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    let listeners = Listeners {
        grpc: listener,
        admin,
        milter: None,
    };
    serve_on(listeners, rules, config, shutdown).await
}

/// Serves gRPC, and the admin port and the milter when their listeners are given, from one
/// ruleset with one set of limits and permits, until `shutdown` completes; then stops
/// accepting, lets in-flight calls and messages finish (at most `config.drain_timeout`) and
/// returns.
pub async fn serve_on(
    listeners: Listeners,
    rules: Arc<Rules>,
    config: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    let Listeners {
        grpc: listener,
        admin,
        milter: milter_listener,
    } = listeners;
    let metrics_handle = metrics::install();
    metrics::ruleset(&rules.current().engine.ruleset().version);
    let _watch = reload::watch(rules.clone())?;

    let (health, health_service) = tonic_health::server::health_reporter();
    health
        .set_service_status("", tonic_health::ServingStatus::Serving)
        .await;
    health
        .set_serving::<pb::triage_server::TriageServer<grpc::TriageService>>()
        .await;

    let reflection_v1 = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(pb::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1()?;
    let reflection_v1alpha = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(pb::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1alpha()?;

    let classifier = classifier::Classifier::new(rules.clone(), config.limits, config.max_concurrency)
        .with_request_timeout(config.request_timeout);
    // The shadow ruleset reloads as the live one does: its directory is watched, and SIGHUP.
    let (classifier, _shadow_watch) = match config.shadow.clone() {
        Some(settings) => {
            let shadow_rules = settings.rules.clone();
            let shadow = shadow::Shadow::start(settings, rules.clone()).map_err(ServeError::Shadow)?;
            let watch = reload::watch_as(shadow_rules.clone(), reload::Role::Shadow)?;
            reload::reload_on_sighup_as(shadow_rules, reload::Role::Shadow).map_err(ServeError::Signal)?;
            (classifier.with_shadow(Arc::new(shadow)), watch)
        }
        None => (classifier, None),
    };
    let service = grpc::TriageService::new(classifier.clone());
    // Oversized requests get a clear status from the handler up to this slack; beyond it
    // tonic refuses them while decoding (OUT_OF_RANGE), still without dropping the connection.
    let decode_limit = config.limits.max_message_bytes + 64 * 1024;
    let triage = pb::triage_server::TriageServer::new(service)
        .max_decoding_message_size(decode_limit)
        .accept_compressed(tonic::codec::CompressionEncoding::Gzip)
        .send_compressed(tonic::codec::CompressionEncoding::Gzip);
    let check = authenticator(config.tokens.clone());

    let tls = match &config.tls {
        Some(files) => Some(Arc::new(tls::Tls::load(files.clone(), b"h2")?)),
        None => None,
    };
    let admin_tls = match &config.admin_tls {
        Some(files) => Some(Arc::new(tls::Tls::load(
            TlsFiles {
                client_ca: None,
                ..files.clone()
            },
            b"http/1.1",
        )?)),
        None => None,
    };
    if tls.is_some() && admin.is_some() && admin_tls.is_none() && config.tokens.is_some() {
        warn!(
            "gRPC uses TLS but the admin port is plain HTTP: webhook bearer tokens would travel in clear \
             (set --admin-tls, or --admin-tls-cert and --admin-tls-key)"
        );
    }
    let _reload_watches = watch_secrets([tls.clone(), admin_tls.clone()], config.tokens.clone())?;
    let open_files = conn::descriptor_limit();
    let (grpc_cap, admin_cap) = conn::descriptor_budget(
        config.connections.max_connections,
        config.admin_connections.max_connections,
        open_files,
    );
    if grpc_cap < config.connections.max_connections || admin_cap < config.admin_connections.max_connections {
        warn!(
            grpc = grpc_cap,
            admin = admin_cap,
            open_files = ?open_files,
            "connection caps lowered to fit the open-file limit"
        );
    }
    let ready = Arc::new(AtomicBool::new(false));
    let token = CancellationToken::new();
    {
        let token = token.clone();
        let health = health.clone();
        let ready = ready.clone();
        tokio::spawn(async move {
            shutdown.await;
            ready.store(false, Ordering::Release);
            health
                .set_service_status("", tonic_health::ServingStatus::NotServing)
                .await;
            health
                .set_not_serving::<pb::triage_server::TriageServer<grpc::TriageService>>()
                .await;
            info!("shutting down: no new connections, finishing calls in flight");
            token.cancel();
        });
    }

    let milter_connections = tokio_util::task::TaskTracker::new();
    let milter_task = milter_listener.map(|listener| {
        tokio::spawn(milter::serve(
            listener,
            classifier.clone(),
            config.milter.clone(),
            config.request_timeout,
            token.clone(),
            milter_connections.clone(),
        ))
    });

    let admin_task = admin.map(|listener| {
        let state = admin::AdminState {
            classifier: classifier.clone(),
            tokens: config.tokens.clone(),
            metrics: metrics_handle.clone(),
            ready: ready.clone(),
        };
        let port = conn::Port {
            name: "admin",
            protocol: conn::Protocol::Http1,
            limits: ConnLimits {
                max_connections: admin_cap,
                write_timeout: config.request_timeout,
                ..config.admin_connections
            },
            tls: admin_tls,
        };
        tokio::spawn(conn::serve(listener, port, admin::router(state), token.clone()))
    });

    let routes = tonic::service::Routes::new(health_service)
        .add_service(InterceptedService::new(reflection_v1, check.clone()))
        .add_service(InterceptedService::new(reflection_v1alpha, check.clone()))
        .add_service(InterceptedService::new(
            admission::Admission::new(triage, classifier.clone()),
            check,
        ))
        .prepare();
    let port = conn::Port {
        name: "grpc",
        protocol: conn::Protocol::Http2,
        limits: ConnLimits {
            max_connections: grpc_cap,
            write_timeout: config.request_timeout,
            ..config.connections
        },
        tls,
    };
    let service = deadline::Deadline::new(routes, config.request_timeout);
    let grpc_task = tokio::spawn(conn::serve(listener, port, service, token.clone()));
    ready.store(true, Ordering::Release);

    token.cancelled().await;
    // Every port stops accepting at once; calls and milter messages in flight finish (a milter
    // connection ends at its next message boundary), all under one drain deadline.
    let drain = config.drain_timeout;
    let drained = tokio::time::timeout(drain, async {
        let _ = grpc_task.await;
        if let Some(task) = milter_task {
            let _ = task.await;
            milter_connections.close();
            milter_connections.wait().await;
        }
        if let Some(task) = admin_task {
            let _ = task.await;
        }
    })
    .await;
    if drained.is_err() {
        warn!(
            ?drain,
            "drain timeout: exiting with calls or messages still in flight"
        );
    }
    Ok(())
}

/// The gRPC interceptor: with tokens configured, every call needs `authorization: Bearer …`.
fn authenticator(
    tokens: Option<Arc<Tokens>>,
) -> impl FnMut(Request<()>) -> Result<Request<()>, Status> + Clone {
    move |req: Request<()>| {
        let Some(tokens) = &tokens else {
            return Ok(req);
        };
        let auth = req.metadata().get("authorization").and_then(|v| v.to_str().ok());
        if tokens.allows(auth) {
            Ok(req)
        } else {
            Err(Status::unauthenticated("missing or invalid bearer token"))
        }
    }
}

/// Reloads TLS material (of both ports) and tokens when their files change and on SIGHUP.
fn watch_secrets(
    tls: [Option<Arc<tls::Tls>>; 2],
    tokens: Option<Arc<Tokens>>,
) -> Result<Vec<reload::Watch>, ServeError> {
    let mut watches = Vec::new();
    for tls in tls.into_iter().flatten() {
        let files = tls.files();
        let action: Arc<dyn Fn() -> Result<String, String> + Send + Sync> = Arc::new(move || {
            tls.reload()
                .map(|()| "certificates".to_string())
                .map_err(|e| e.to_string())
        });
        let on_change = action.clone();
        watches.push(reload::watch_files(files, "tls", move || on_change())?);
        reload::on_sighup("tls", action).map_err(ServeError::Signal)?;
    }
    if let Some(tokens) = tokens {
        let files = vec![tokens.file().to_path_buf()];
        let action: Arc<dyn Fn() -> Result<String, String> + Send + Sync> = Arc::new(move || {
            tokens
                .reload()
                .map(|n| format!("{n} tokens"))
                .map_err(|e| e.to_string())
        });
        let on_change = action.clone();
        watches.push(reload::watch_files(files, "tokens", move || on_change())?);
        reload::on_sighup("tokens", action).map_err(ServeError::Signal)?;
    }
    Ok(watches)
}

/// Completes on SIGTERM or SIGINT (Ctrl-C).
pub async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = tokio::signal::ctrl_c() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
