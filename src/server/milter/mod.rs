//! The milter interface: triage inside a mail gateway (Postfix, Sendmail and others that speak
//! the milter protocol, version 6), beside gRPC and the admin port, from the same ruleset.
//!
//! At end of message the milter removes every inbound `X-Triage-*` header and adds the verdict
//! as headers ([`edits`] names them); in routing mode it also replaces the intake recipient by
//! the queue's destination. It never rejects, discards or tempfails: on a timeout, overload or
//! internal error the message goes on with [`edits::ERROR`] and no verdict; a message larger
//! than `max_message_bytes` is classified on its first `max_message_bytes`, says so in
//! [`edits::NOTE`], and is not routed.
//!
//! Each message goes through the one intake ([`crate::intake`]) under the permits every
//! interface shares ([`Classifier`]), so it gets the verdict `triage classify` gives for the same
//! file, and the milter's work counts in the same concurrency limit and metrics
//! (`interface="milter"`).
//!
//! - [`listen`]: addresses (`inet:`/`unix:`) and the bound listener.
//! - `session`: one connection (negotiation, events, end of message).
//! - `collect`: what is kept of the message in flight (bounded).
//! - [`edits`]: header names and the edits for an outcome (pure).
//! - `io`: the idle timeout and shutdown at message boundaries.
//!
//! The protocol codec and connection loop are the `miltr-server` crate (MIT).

pub mod edits;
pub mod listen;

mod collect;
mod io;
mod session;

use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite};
use tokio_util::compat::TokioAsyncReadCompatExt;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{debug, info, warn};

pub use edits::Route;
pub use listen::{Address, Listener};

use super::classifier::Classifier;
use listen::Connection;
use session::{Session, Shared};

/// The largest protocol packet accepted. Body chunks are at most 64 KiB; a header can be
/// longer (Postfix's `header_size_limit` is 100 KiB), and one that is refused would end the
/// connection and let the MTA's default action pass the message untagged.
const MAX_PACKET: usize = 1024 * 1024;

/// How long a connection may stay silent before triage closes it: libmilter's default, far
/// above any MTA's own timeouts, so only dead peers are cut.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(7210);

/// How the milter behaves.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Routing mode: `Some` replaces intake recipients for confident verdicts.
    pub route: Option<Route>,
    /// Silence after which a connection is closed.
    pub idle_timeout: Duration,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            route: None,
            idle_timeout: IDLE_TIMEOUT,
        }
    }
}

/// Why the milter could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MilterError {
    /// The listen address is neither `host:port` nor a socket path.
    #[error("milter address `{0}`: expected IP:PORT, inet:IP:PORT, a unix socket path or unix:PATH")]
    Address(String),
    /// The address could not be bound.
    #[error("binding milter address {address}: {source}")]
    Bind {
        /// The address.
        address: String,
        /// Why.
        source: std::io::Error,
    },
}

/// Serves the milter protocol on `listener` until `stop` is cancelled; connections run on
/// `tracker`, so the caller can wait for them (each ends at its next message boundary).
/// `timeout` bounds each classification.
pub async fn serve(
    listener: Listener,
    classifier: Classifier,
    settings: Settings,
    timeout: Duration,
    stop: CancellationToken,
    tracker: TaskTracker,
) {
    let shared = Arc::new(Shared {
        classifier,
        route: settings.route,
        timeout,
    });
    if let Ok(address) = listener.local_addr() {
        info!(%address, routing = shared.route.is_some(), "milter listening");
    }
    loop {
        let accepted = tokio::select! {
            _ = stop.cancelled() => break,
            accepted = listener.accept() => accepted,
        };
        match accepted {
            Ok(Connection::Tcp(stream)) => {
                tracker.spawn(connection(
                    stream,
                    shared.clone(),
                    settings.idle_timeout,
                    stop.clone(),
                ));
            }
            Ok(Connection::Unix(stream)) => {
                tracker.spawn(connection(
                    stream,
                    shared.clone(),
                    settings.idle_timeout,
                    stop.clone(),
                ));
            }
            Err(e) => {
                // Out of file descriptors and the like: wait instead of spinning.
                warn!(error = %e, "milter: accepting a connection failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
    debug!("milter: no longer accepting connections");
}

/// Serves one MTA connection that was accepted elsewhere (socket activation, tests, fuzzing)
/// until the MTA closes it or goes silent for `settings.idle_timeout`.
pub async fn serve_connection<S>(stream: S, classifier: Classifier, settings: Settings, timeout: Duration)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let shared = Arc::new(Shared {
        classifier,
        route: settings.route,
        timeout,
    });
    connection(stream, shared, settings.idle_timeout, CancellationToken::new()).await;
}

/// Runs one MTA connection to its end. Errors only end the connection (the MTA then applies
/// its `milter_default_action`); they are logged at debug level, as peers hanging up are normal.
async fn connection<S>(stream: S, shared: Arc<Shared>, idle_timeout: Duration, stop: CancellationToken)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let _open = OpenConnection::enter();
    let between_messages = Arc::new(AtomicBool::new(true));
    let stream = io::Guarded::new(stream, idle_timeout, stop, between_messages.clone()).compat();
    let mut session = Session::new(shared, between_messages);
    let mut server = miltr_server::Server::new(&mut session, false, MAX_PACKET);
    match server.handle_connection(stream).await {
        Ok(()) => debug!("milter: connection closed"),
        // Display only: the Debug form of a protocol error carries the offending bytes.
        Err(e) => debug!(error = %e, "milter: connection ended"),
    }
}

/// Counts open milter connections in `triage_milter_connections`.
struct OpenConnection;

impl OpenConnection {
    fn enter() -> OpenConnection {
        ::metrics::gauge!("triage_milter_connections").increment(1.0);
        OpenConnection
    }
}

impl Drop for OpenConnection {
    fn drop(&mut self) {
        ::metrics::gauge!("triage_milter_connections").decrement(1.0);
    }
}
