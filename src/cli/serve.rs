//! `triage serve`: the gRPC service, the admin port and the milter.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tracing::info;
use triage::mail::Limits;
use triage::server::{self, Config, ConnLimits, Rules, TlsFiles, Tokens, milter};

/// Arguments of `serve`. Every flag can also be set through its `TRIAGE_*` variable and in the
/// `--config` file; precedence: flag > environment > file > default.
#[derive(Debug, clap::Args, serde::Serialize)]
pub struct Args {
    /// TOML file with any of these settings (keys as the flags, with underscores).
    #[arg(long, env = "TRIAGE_CONFIG")]
    #[serde(skip)]
    pub(super) config: Option<PathBuf>,
    /// Print the effective configuration (and where each value came from) and exit.
    #[arg(long)]
    #[serde(skip)]
    pub(super) print_config: bool,
    /// gRPC listen address.
    #[arg(long, env = "TRIAGE_LISTEN", default_value = "127.0.0.1:50051")]
    pub(super) listen: SocketAddr,
    /// Rules directory, watched for changes (default: rules/, or the built-in ruleset when
    /// there is none).
    #[arg(long, env = "TRIAGE_RULES")]
    pub(super) rules: Option<PathBuf>,
    /// Admin HTTP address (/metrics, /healthz, /readyz, POST /v1/classify), or `off`.
    #[arg(long, env = "TRIAGE_ADMIN_LISTEN", default_value = "127.0.0.1:9090")]
    pub(super) admin_listen: String,
    /// Largest message accepted, in bytes.
    #[arg(long, env = "TRIAGE_MAX_MESSAGE_BYTES", default_value_t = 10 * 1024 * 1024)]
    pub(super) max_message_bytes: usize,
    /// Calls served at once; more are shed with RESOURCE_EXHAUSTED.
    #[arg(long, env = "TRIAGE_MAX_CONCURRENCY", default_value_t = 256)]
    pub(super) max_concurrency: usize,
    /// Longest a call may take, in seconds.
    #[arg(long, env = "TRIAGE_REQUEST_TIMEOUT", default_value_t = 30)]
    pub(super) request_timeout: u64,
    /// File of accepted bearer tokens (one per line, `#` comments); enables authentication.
    #[arg(long, env = "TRIAGE_AUTH_TOKEN_FILE")]
    pub(super) auth_token_file: Option<PathBuf>,
    /// TLS certificate chain (PEM).
    #[arg(long, env = "TRIAGE_TLS_CERT")]
    pub(super) tls_cert: Option<PathBuf>,
    /// TLS private key (PEM).
    #[arg(long, env = "TRIAGE_TLS_KEY")]
    pub(super) tls_key: Option<PathBuf>,
    /// CA (PEM) whose client certificates are accepted: enables mutual TLS.
    #[arg(long, env = "TRIAGE_TLS_CLIENT_CA")]
    pub(super) tls_client_ca: Option<PathBuf>,
    /// Serve the admin port over TLS with the gRPC port's certificate and key.
    #[arg(long, env = "TRIAGE_ADMIN_TLS")]
    pub(super) admin_tls: bool,
    /// TLS certificate chain (PEM) for the admin port (with --admin-tls-key; instead of the
    /// gRPC one).
    #[arg(long, env = "TRIAGE_ADMIN_TLS_CERT")]
    pub(super) admin_tls_cert: Option<PathBuf>,
    /// TLS private key (PEM) for the admin port.
    #[arg(long, env = "TRIAGE_ADMIN_TLS_KEY")]
    pub(super) admin_tls_key: Option<PathBuf>,
    /// gRPC connections open at once; at the cap the longest-idle one is closed to make room
    /// (lowered at start to fit the open-file limit).
    #[arg(long, env = "TRIAGE_MAX_CONNECTIONS", default_value_t = 1024)]
    pub(super) max_connections: usize,
    /// Admin-port connections open at once: a budget of its own, so probes keep answering
    /// during a flood on the gRPC port.
    #[arg(long, env = "TRIAGE_ADMIN_MAX_CONNECTIONS", default_value_t = 64)]
    pub(super) admin_max_connections: usize,
    /// Seconds a new connection has to complete its TLS handshake and send its first request.
    #[arg(long, env = "TRIAGE_HANDSHAKE_TIMEOUT", default_value_t = 10)]
    pub(super) handshake_timeout: u64,
    /// Seconds a connection may stay open without a call in flight.
    #[arg(long, env = "TRIAGE_IDLE_TIMEOUT", default_value_t = 300)]
    pub(super) idle_timeout: u64,
    /// Concurrent HTTP/2 streams per gRPC connection (SETTINGS_MAX_CONCURRENT_STREAMS).
    #[arg(long, env = "TRIAGE_MAX_STREAMS_PER_CONNECTION", default_value_t = 100)]
    pub(super) max_streams_per_connection: u32,
    /// Seconds between HTTP/2 keep-alive pings (0: none); a peer silent for 20 s after a ping
    /// is dropped.
    #[arg(long, env = "TRIAGE_KEEPALIVE_INTERVAL", default_value_t = 60)]
    pub(super) keepalive_interval: u64,
    /// Tokio worker threads (default: the CPUs available to the process).
    #[arg(long, env = "TRIAGE_WORKER_THREADS")]
    pub(super) worker_threads: Option<usize>,
    /// Milter address for Postfix and Sendmail: IP:PORT (or inet:IP:PORT), a unix socket path
    /// (or unix:PATH), or `off`. Default: off.
    #[arg(long, env = "TRIAGE_MILTER_LISTEN")]
    pub(super) milter_listen: Option<String>,
    /// Milter routing mode: for confident verdicts of a queue with a destination, replace the
    /// recipient that addressed an intake mailbox (--milter-intake) with the destination.
    #[arg(long, env = "TRIAGE_MILTER_ROUTE")]
    pub(super) milter_route: bool,
    /// The intake mailbox address(es) whose recipient routing mode replaces (comma-separated).
    #[arg(long, env = "TRIAGE_MILTER_INTAKE", value_delimiter = ',')]
    pub(super) milter_intake: Vec<String>,
    /// A candidate ruleset directory that also classifies every call, off the caller's path,
    /// to count where it disagrees with the live one (watched like --rules). Default: none.
    #[arg(long, env = "TRIAGE_SHADOW_RULES")]
    pub(super) shadow_rules: Option<PathBuf>,
    /// JSONL file of the shadow's disagreements (ids, queues, confidences, rule ids; no text).
    #[arg(long, env = "TRIAGE_SHADOW_LOG")]
    pub(super) shadow_log: Option<PathBuf>,
    /// Size at which the shadow log is rotated to FILE.1 (replacing the previous one).
    #[arg(long, env = "TRIAGE_SHADOW_LOG_MAX_BYTES", default_value_t = 64 * 1024 * 1024)]
    pub(super) shadow_log_max_bytes: u64,
    /// The share of one core the shadow may use (0.05: 5%); what it has no time for is
    /// dropped and counted, never left to slow the live path.
    #[arg(long, env = "TRIAGE_SHADOW_CPU", default_value_t = server::shadow::DEFAULT_CPU_SHARE)]
    pub(super) shadow_cpu: f64,
}

pub fn run(mut args: Args, matches: &clap::ArgMatches) -> anyhow::Result<ExitCode> {
    let sources = super::config::layer(&mut args, matches)?;
    validate(&args)?;
    if args.print_config {
        println!("{}", super::config::effective(&args, &sources)?);
        return Ok(ExitCode::SUCCESS);
    }
    let mut runtime = tokio::runtime::Builder::new_multi_thread();
    runtime.enable_all();
    if let Some(n) = args.worker_threads {
        runtime.worker_threads(n.max(1));
    }
    runtime
        .build()
        .context("starting the runtime")?
        .block_on(serve(args))?;
    Ok(ExitCode::SUCCESS)
}

/// Checks what clap cannot see once the file has been layered in.
fn validate(args: &Args) -> anyhow::Result<()> {
    match (&args.tls_cert, &args.tls_key) {
        (Some(_), None) => anyhow::bail!("tls_cert is set but tls_key is not: TLS needs both"),
        (None, Some(_)) => anyhow::bail!("tls_key is set but tls_cert is not: TLS needs both"),
        (None, None) if args.tls_client_ca.is_some() => {
            anyhow::bail!("tls_client_ca needs tls_cert and tls_key: mutual TLS is TLS first")
        }
        _ => {}
    }
    match (&args.admin_tls_cert, &args.admin_tls_key) {
        (Some(_), None) | (None, Some(_)) => {
            anyhow::bail!("admin_tls_cert and admin_tls_key go together: admin TLS needs both")
        }
        (None, None) if args.admin_tls && args.tls_cert.is_none() => {
            anyhow::bail!(
                "admin_tls reuses the gRPC certificate, but tls_cert is not set (or set admin_tls_cert and admin_tls_key)"
            )
        }
        _ => {}
    }
    if args.max_concurrency == 0 {
        anyhow::bail!("max_concurrency must be at least 1");
    }
    for (name, value) in [
        ("max_connections", args.max_connections as u64),
        ("admin_max_connections", args.admin_max_connections as u64),
        ("handshake_timeout", args.handshake_timeout),
        ("idle_timeout", args.idle_timeout),
        (
            "max_streams_per_connection",
            u64::from(args.max_streams_per_connection),
        ),
    ] {
        if value == 0 {
            anyhow::bail!("{name} must be at least 1");
        }
    }
    if args.max_message_bytes < 1024 {
        anyhow::bail!("max_message_bytes must be at least 1024");
    }
    if !args.admin_listen.eq_ignore_ascii_case("off") {
        args.admin_listen.parse::<SocketAddr>().with_context(|| {
            format!(
                "admin_listen: expected ADDR:PORT or off, got `{}`",
                args.admin_listen
            )
        })?;
    }
    let milter = milter_address(args)?;
    if args.milter_route {
        if milter.is_none() {
            anyhow::bail!("milter_route is set but milter_listen is off: routing is done by the milter");
        }
        if args.milter_intake.is_empty() {
            anyhow::bail!(
                "milter_route needs milter_intake: the intake mailbox address(es) whose recipient is replaced"
            );
        }
    }
    for addr in &args.milter_intake {
        let bare = triage::server::milter::edits::bare(addr);
        if !bare.contains('@') || bare.chars().any(|c| c.is_whitespace() || c.is_control()) {
            anyhow::bail!("milter_intake: `{addr}` is not an email address");
        }
    }
    if args.shadow_log.is_some() && args.shadow_rules.is_none() {
        anyhow::bail!("shadow_log is set but shadow_rules is not: the log holds the shadow's disagreements");
    }
    if let Some(log) = &args.shadow_log {
        let dir = log
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        if !dir.is_dir() {
            anyhow::bail!("shadow_log: the folder {} does not exist", dir.display());
        }
        if log.is_dir() {
            anyhow::bail!("shadow_log: {} is a folder; name a file", log.display());
        }
    }
    if args.shadow_log_max_bytes < 4096 {
        anyhow::bail!("shadow_log_max_bytes must be at least 4096");
    }
    if !(args.shadow_cpu > 0.0 && args.shadow_cpu <= 1.0) {
        anyhow::bail!("shadow_cpu is a share of one core: more than 0, at most 1 (e.g. 0.05)");
    }
    for (name, path) in [
        ("rules", &args.rules),
        ("shadow_rules", &args.shadow_rules),
        ("auth_token_file", &args.auth_token_file),
        ("tls_cert", &args.tls_cert),
        ("tls_key", &args.tls_key),
        ("tls_client_ca", &args.tls_client_ca),
        ("admin_tls_cert", &args.admin_tls_cert),
        ("admin_tls_key", &args.admin_tls_key),
    ] {
        if let Some(p) = path
            && !p.exists()
        {
            anyhow::bail!("{name}: {} does not exist", p.display());
        }
    }
    Ok(())
}

/// The milter address, or `None` when the milter is off.
fn milter_address(args: &Args) -> anyhow::Result<Option<milter::Address>> {
    match args.milter_listen.as_deref().map(str::trim) {
        None | Some("") => Ok(None),
        Some(off) if off.eq_ignore_ascii_case("off") => Ok(None),
        Some(addr) => Ok(Some(addr.parse()?)),
    }
}

async fn serve(args: Args) -> anyhow::Result<()> {
    let dir = args.rules.clone().or_else(|| {
        let default = PathBuf::from("rules");
        default.is_dir().then_some(default)
    });
    let rules = Arc::new(Rules::load(dir.clone()).context("loading the ruleset")?);
    let shadow = match &args.shadow_rules {
        Some(dir) => {
            let rules = Rules::load(Some(dir.clone())).context("loading the shadow ruleset")?;
            Some(server::shadow::Settings {
                log: args.shadow_log.clone(),
                log_max_bytes: args.shadow_log_max_bytes,
                cpu_share: args.shadow_cpu,
                ..server::shadow::Settings::new(Arc::new(rules))
            })
        }
        None => None,
    };
    let tokens = match &args.auth_token_file {
        Some(file) => Some(Arc::new(Tokens::load(file)?)),
        None => None,
    };
    let tls = match (&args.tls_cert, &args.tls_key) {
        (Some(cert), Some(key)) => Some(TlsFiles {
            cert: cert.clone(),
            key: key.clone(),
            client_ca: args.tls_client_ca.clone(),
        }),
        _ => None,
    };
    let admin_tls = match (&args.admin_tls_cert, &args.admin_tls_key, &tls) {
        (Some(cert), Some(key), _) => Some(TlsFiles {
            cert: cert.clone(),
            key: key.clone(),
            client_ca: None,
        }),
        (None, None, Some(grpc)) if args.admin_tls => Some(grpc.clone()),
        _ => None,
    };
    // As Go's runtime does: the hard limit is what the operator allowed; the soft one is often
    // a historical 1,024 that a few hundred idle clients would exhaust.
    let open_files = server::conn::raise_descriptor_limit();
    let connections = ConnLimits {
        max_connections: args.max_connections,
        handshake_timeout: Duration::from_secs(args.handshake_timeout),
        idle_timeout: Duration::from_secs(args.idle_timeout),
        keepalive_interval: (args.keepalive_interval > 0)
            .then(|| Duration::from_secs(args.keepalive_interval)),
        max_streams: args.max_streams_per_connection,
        // server::serve sets it from the request timeout.
        ..ConnLimits::default()
    };
    let config = Config {
        limits: Limits {
            max_message_bytes: args.max_message_bytes,
            ..Limits::default()
        },
        max_concurrency: args.max_concurrency,
        request_timeout: Duration::from_secs(args.request_timeout.max(1)),
        tokens: tokens.clone(),
        tls,
        milter: milter::Settings {
            route: args.milter_route.then(|| milter::Route::new(&args.milter_intake)),
            ..milter::Settings::default()
        },
        admin_tls,
        connections,
        admin_connections: ConnLimits {
            max_connections: args.admin_max_connections,
            ..connections
        },
        shadow: shadow.clone(),
        ..Config::default()
    };
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("binding gRPC address {}", args.listen))?;
    let admin = if args.admin_listen.eq_ignore_ascii_case("off") {
        None
    } else {
        let addr: SocketAddr = args
            .admin_listen
            .parse()
            .context("--admin-listen: expected ADDR:PORT or off")?;
        Some(
            tokio::net::TcpListener::bind(addr)
                .await
                .with_context(|| format!("binding admin address {addr}"))?,
        )
    };
    let milter = match milter_address(&args)? {
        Some(address) => Some(milter::Listener::bind(&address).await?),
        None => None,
    };
    server::reload::reload_on_sighup(rules.clone())?;
    let loaded = rules.current();
    let rs = loaded.engine.ruleset();
    info!(
        grpc = %listener.local_addr()?,
        admin = ?admin.as_ref().and_then(|a| a.local_addr().ok()),
        milter = %milter
            .as_ref()
            .and_then(|m| m.local_addr().ok())
            .map_or_else(|| "off".to_string(), |a| a.to_string()),
        rules = %rs.source.display(),
        version = %rs.version,
        queues = rs.queues.len(),
        rule_count = rs.rules.len(),
        open_files = ?open_files,
        "triage serving"
    );
    drop(loaded);
    if let Some(shadow) = &shadow {
        let loaded = shadow.rules.current();
        let rs = loaded.engine.ruleset();
        info!(
            rules = %rs.source.display(),
            version = %rs.version,
            log = ?shadow.log,
            "shadow ruleset: every call is also classified by it, off the caller's path"
        );
    }
    let listeners = server::Listeners {
        grpc: listener,
        admin,
        milter,
    };
    server::serve_on(listeners, rules, config, server::shutdown_signal()).await?;
    info!("stopped");
    Ok(())
}
