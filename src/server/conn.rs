//! Connections on both ports: the accept loop, the connection cap, the deadlines and the
//! graceful close.
//!
//! tonic's and axum's own servers keep a connection for as long as the peer likes, so a client
//! that connects and sends nothing holds a file descriptor forever; about a thousand of them
//! leave the process unable to accept anything. Here each port runs its own accept loop and
//! serves every connection through hyper, under these rules:
//!
//! - **Cap.** At most [`ConnLimits::max_connections`] at once. At the cap, the connection that
//!   has been idle longest (no call in flight) is closed to make room; when every connection is
//!   busy, the newcomer is closed at once. The admin port has its own cap, so a flood on the
//!   gRPC port never takes the probes down (see [`descriptor_budget`]).
//! - **Handshake deadline.** A connection must complete its TLS handshake and deliver its first
//!   request (the HTTP/2 preface and a HEADERS frame, or an HTTP/1 request head) within
//!   [`ConnLimits::handshake_timeout`].
//! - **Idle limit.** A connection with no call in flight for [`ConnLimits::idle_timeout`] is
//!   closed gracefully (HTTP/2 GOAWAY; clients reconnect transparently).
//! - **Keep-alive.** HTTP/2 PINGs every [`ConnLimits::keepalive_interval`]; a peer that does not
//!   answer within 20 s is dropped.
//! - **Streams.** At most [`ConnLimits::max_streams`] concurrent streams per HTTP/2 connection
//!   (`SETTINGS_MAX_CONCURRENT_STREAMS`).
//! - **Accept errors** (out of descriptors) pause accepting for 100 ms instead of spinning.

use std::collections::HashMap;
use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio::sync::Notify;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower::Service;
use tracing::{debug, warn};

use super::tls::Tls;

/// How long a connection told to close (idle, or at shutdown past the drain) may take to say
/// goodbye before it is dropped.
const CLOSE_GRACE: Duration = Duration::from_secs(2);

/// Descriptors kept free for everything that is not a connection: rule and certificate files,
/// the watchers, the listeners, the blocking pool's files, stdio.
pub const RESERVED_DESCRIPTORS: u64 = 64;

/// The limits one port applies to its connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnLimits {
    /// Connections open at once.
    pub max_connections: usize,
    /// Time to complete the TLS handshake and send the first request.
    pub handshake_timeout: Duration,
    /// Time without a call in flight after which a connection is closed.
    pub idle_timeout: Duration,
    /// Interval of HTTP/2 keep-alive PINGs; `None` disables them.
    pub keepalive_interval: Option<Duration>,
    /// Concurrent streams per HTTP/2 connection.
    pub max_streams: u32,
    /// Time a client may leave a response unread (its flow-control window shut) before its
    /// connection is dropped: a client that stops reading would otherwise keep its calls,
    /// and so its connection, open for ever.
    pub write_timeout: Duration,
}

impl Default for ConnLimits {
    fn default() -> Self {
        ConnLimits {
            max_connections: 1024,
            handshake_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(300),
            keepalive_interval: Some(Duration::from_secs(60)),
            max_streams: 100,
            write_timeout: Duration::from_secs(30),
        }
    }
}

/// What a port speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// HTTP/2 only (gRPC).
    Http2,
    /// HTTP/1.1 only (the admin port).
    Http1,
}

/// One listening port: its name (for logs and metrics), protocol, limits and TLS.
#[derive(Debug, Clone)]
pub struct Port {
    /// `grpc` or `admin`.
    pub name: &'static str,
    /// What it speaks.
    pub protocol: Protocol,
    /// Its connection limits.
    pub limits: ConnLimits,
    /// TLS, when the port is encrypted.
    pub tls: Option<Arc<Tls>>,
}

/// Raises the soft limit on open files to the hard limit (as Go's runtime does) and returns the
/// limit now in force, or `None` when it cannot be read.
#[cfg(unix)]
pub fn raise_descriptor_limit() -> Option<u64> {
    use rustix::process::{Resource, getrlimit, setrlimit};
    let mut limit = getrlimit(Resource::Nofile);
    if limit.current < limit.maximum {
        let raised = rustix::process::Rlimit {
            current: limit.maximum,
            maximum: limit.maximum,
        };
        if setrlimit(Resource::Nofile, raised).is_ok() {
            limit = raised;
        }
    }
    Some(limit.current.unwrap_or(u64::MAX))
}

/// The open-file limit in force, or `None` when it cannot be read.
#[cfg(unix)]
pub fn descriptor_limit() -> Option<u64> {
    let limit = rustix::process::getrlimit(rustix::process::Resource::Nofile);
    Some(limit.current.unwrap_or(u64::MAX))
}

/// No such limit to raise here.
#[cfg(not(unix))]
pub fn raise_descriptor_limit() -> Option<u64> {
    None
}

/// No such limit here.
#[cfg(not(unix))]
pub fn descriptor_limit() -> Option<u64> {
    None
}

/// Fits the two ports' connection caps into the descriptor budget: `limit` minus
/// [`RESERVED_DESCRIPTORS`] is shared so that the admin port keeps its own cap (at most half
/// the budget) and the gRPC port gets the rest. Returns `(grpc, admin)`; each at least 1.
pub fn descriptor_budget(grpc: usize, admin: usize, limit: Option<u64>) -> (usize, usize) {
    let Some(limit) = limit else {
        return (grpc, admin);
    };
    let budget = limit.saturating_sub(RESERVED_DESCRIPTORS).max(2);
    let budget = usize::try_from(budget).unwrap_or(usize::MAX);
    if grpc.saturating_add(admin) <= budget {
        return (grpc, admin);
    }
    let admin = admin.min(budget / 2).max(1);
    let grpc = grpc.min(budget - admin).max(1);
    (grpc, admin)
}

/// One connection's bookkeeping, shared by its task, its requests and the registry.
#[derive(Debug)]
struct ConnState {
    /// Calls in flight (requests whose response is not yet finished).
    active: AtomicUsize,
    /// True once the first request arrived: the handshake deadline no longer applies.
    served: AtomicBool,
    /// When the connection last became idle (or was accepted).
    idle_since: Mutex<Instant>,
    /// Set when the registry picked the connection to make room for a new one.
    evicted: AtomicBool,
    /// Wakes the connection's task when it is evicted.
    evict: Notify,
    /// Numbers the calls, for `stalled`.
    calls: AtomicU64,
    /// Calls whose response is waiting for the client to read, and since when.
    stalled: Mutex<HashMap<u64, Instant>>,
}

impl ConnState {
    fn new() -> ConnState {
        ConnState {
            active: AtomicUsize::new(0),
            served: AtomicBool::new(false),
            idle_since: Mutex::new(Instant::now()),
            evicted: AtomicBool::new(false),
            evict: Notify::new(),
            calls: AtomicU64::new(0),
            stalled: Mutex::new(HashMap::new()),
        }
    }

    fn stalled(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Instant>> {
        self.stalled.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// When the longest-waiting unread response started waiting, if any is.
    fn stalled_since(&self) -> Option<Instant> {
        self.stalled().values().min().copied()
    }

    fn idle_since(&self) -> Instant {
        *self.idle_since.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A call starts; the returned guard ends it when dropped.
    fn enter(self: &Arc<Self>) -> CallGuard {
        self.served.store(true, Ordering::Release);
        self.active.fetch_add(1, Ordering::AcqRel);
        CallGuard {
            state: self.clone(),
            id: self.calls.fetch_add(1, Ordering::Relaxed),
        }
    }

    /// When the connection must close unless a call starts first, or `None` while one is in
    /// flight.
    fn deadline(&self, limits: &ConnLimits) -> Option<Instant> {
        if self.active.load(Ordering::Acquire) > 0 {
            return None;
        }
        let allowed = if self.served.load(Ordering::Acquire) {
            limits.idle_timeout
        } else {
            limits.handshake_timeout
        };
        Some(self.idle_since() + allowed)
    }
}

/// Holds a call in a connection's count until the response is finished or dropped.
#[derive(Debug)]
struct CallGuard {
    state: Arc<ConnState>,
    id: u64,
}

impl CallGuard {
    /// The server handed a frame of the response over; hyper asks for the next one only once
    /// the client has made room (read), so until then the call waits on its client.
    fn handed_over(&self) {
        self.state.stalled().insert(self.id, Instant::now());
    }

    /// hyper asks for the next frame: the client is reading.
    fn resumed(&self) {
        let mut stalled = self.state.stalled();
        if !stalled.is_empty() {
            stalled.remove(&self.id);
        }
    }
}

impl Drop for CallGuard {
    fn drop(&mut self) {
        self.resumed();
        if self.state.active.fetch_sub(1, Ordering::AcqRel) == 1 {
            *self.state.idle_since.lock().unwrap_or_else(|e| e.into_inner()) = Instant::now();
        }
    }
}

/// The open connections of one port.
#[derive(Debug, Default)]
struct Registry {
    conns: Mutex<HashMap<u64, Arc<ConnState>>>,
    next: AtomicU64,
}

impl Registry {
    /// Registers a new connection, evicting an idle one at the cap; `None` when the cap is
    /// reached and every connection has a call in flight. Connections that never sent a
    /// request go first (a silent crowd makes room for itself, not at the expense of clients
    /// with pooled connections), the longest idle first.
    fn admit(&self, max: usize) -> Option<(u64, Arc<ConnState>)> {
        let mut conns = self.conns.lock().unwrap_or_else(|e| e.into_inner());
        let open = conns
            .values()
            .filter(|c| !c.evicted.load(Ordering::Acquire))
            .count();
        if open >= max {
            let victim = conns
                .values()
                .filter(|c| !c.evicted.load(Ordering::Acquire) && c.active.load(Ordering::Acquire) == 0)
                .min_by_key(|c| (c.served.load(Ordering::Acquire), c.idle_since()))?;
            victim.evicted.store(true, Ordering::Release);
            victim.evict.notify_one();
        }
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        let state = Arc::new(ConnState::new());
        conns.insert(id, state.clone());
        Some((id, state))
    }

    fn remove(&self, id: u64) {
        self.conns.lock().unwrap_or_else(|e| e.into_inner()).remove(&id);
    }
}

/// Removes a connection from the registry (and the gauge) when its task ends, however it ends.
struct Registered<'a> {
    registry: &'a Registry,
    id: u64,
    port: &'static str,
}

impl Drop for Registered<'_> {
    fn drop(&mut self) {
        self.registry.remove(self.id);
        metrics::gauge!("triage_connections", "port" => self.port).decrement(1.0);
    }
}

fn closed(port: &'static str, reason: &'static str) {
    metrics::counter!("triage_connections_closed_total", "port" => port, "reason" => reason).increment(1);
}

/// Serves `service` on every connection `listener` accepts, under `port`'s rules, until `stop`
/// is cancelled; then stops accepting, closes every connection gracefully (calls in flight
/// finish) and returns once all are gone.
pub async fn serve<S, B>(listener: TcpListener, port: Port, service: S, stop: CancellationToken)
where
    S: Service<Request<Incoming>, Response = Response<B>, Error = Infallible> + Clone + Send + 'static,
    S::Future: Send + 'static,
    B: http_body::Body<Data = Bytes> + Unpin + Send + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let registry = Arc::new(Registry::default());
    let tracker = TaskTracker::new();
    let builder = Arc::new(builder(&port));
    let port = Arc::new(port);
    let mut last_accept_warning: Option<Instant> = None;
    loop {
        let accepted = tokio::select! {
            _ = stop.cancelled() => break,
            accepted = listener.accept() => accepted,
        };
        let (tcp, peer) = match accepted {
            Ok(conn) => conn,
            Err(e) => {
                // Usually EMFILE: every descriptor is in use. Spinning would only burn a core;
                // connections closing free descriptors within moments.
                if last_accept_warning.is_none_or(|t| t.elapsed() > Duration::from_secs(10)) {
                    warn!(port = port.name, "accept failed, pausing: {e}");
                    last_accept_warning = Some(Instant::now());
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let Some((id, state)) = registry.admit(port.limits.max_connections) else {
            closed(port.name, "refused");
            debug!(port = port.name, %peer, "connection refused: at the cap and every connection busy");
            drop(tcp);
            continue;
        };
        metrics::gauge!("triage_connections", "port" => port.name).increment(1.0);
        let _ = tcp.set_nodelay(true);
        let (registry, builder, port, service, stop) = (
            registry.clone(),
            builder.clone(),
            port.clone(),
            service.clone(),
            stop.clone(),
        );
        tracker.spawn(async move {
            let _registered = Registered {
                registry: &registry,
                id,
                port: port.name,
            };
            match &port.tls {
                Some(tls) => {
                    let deadline = state.idle_since() + port.limits.handshake_timeout;
                    let acceptor = tls.acceptor();
                    tokio::select! {
                        handshake = tokio::time::timeout_at(deadline, acceptor.accept(tcp)) => match handshake {
                            Ok(Ok(stream)) => connection(stream, &builder, &port, state, service, stop).await,
                            Ok(Err(e)) => debug!(port = port.name, %peer, "TLS handshake failed: {e}"),
                            Err(_) => {
                                closed(port.name, "handshake");
                                debug!(port = port.name, %peer, "TLS handshake timed out");
                            }
                        },
                        _ = state.evict.notified() => closed(port.name, "evicted"),
                        _ = stop.cancelled() => {}
                    }
                }
                None => connection(tcp, &builder, &port, state, service, stop).await,
            }
        });
    }
    drop(listener);
    tracker.close();
    tracker.wait().await;
}

/// The hyper connection builder for a port.
fn builder(port: &Port) -> auto::Builder<TokioExecutor> {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    match port.protocol {
        Protocol::Http2 => {
            builder = builder.http2_only();
            builder
                .http2()
                .timer(TokioTimer::new())
                .max_concurrent_streams(port.limits.max_streams)
                .keep_alive_interval(port.limits.keepalive_interval)
                .keep_alive_timeout(Duration::from_secs(20));
        }
        Protocol::Http1 => {
            builder = builder.http1_only();
            builder
                .http1()
                .timer(TokioTimer::new())
                .header_read_timeout(port.limits.handshake_timeout)
                .keep_alive(true);
        }
    }
    builder
}

/// Serves one connection until it ends, is closed for idleness or eviction, or the server
/// stops.
async fn connection<I, S, B>(
    io: I,
    builder: &auto::Builder<TokioExecutor>,
    port: &Port,
    state: Arc<ConnState>,
    service: S,
    stop: CancellationToken,
) where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    S: Service<Request<Incoming>, Response = Response<B>, Error = Infallible> + Clone + Send + 'static,
    S::Future: Send + 'static,
    B: http_body::Body<Data = Bytes> + Unpin + Send + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let tracked = Tracked {
        inner: service,
        state: state.clone(),
    };
    let conn = builder.serve_connection(TokioIo::new(io), TowerToHyperService::new(tracked));
    tokio::pin!(conn);
    let limits = port.limits;
    // Set once a graceful close has been asked for; `Some` when it is bounded in time.
    let mut closing: Option<Option<Instant>> = None;
    loop {
        let stall = state.stalled_since().map(|since| since + limits.write_timeout);
        let watch = match (closing, state.deadline(&limits)) {
            (Some(Some(give_up)), _) => give_up,
            (Some(None), _) => Instant::now() + Duration::from_secs(3600),
            (None, Some(deadline)) => deadline,
            (None, None) => Instant::now() + limits.idle_timeout,
        };
        // Calls start and responses stall without waking this loop: look again now and then.
        let watch = watch.min(Instant::now() + limits.write_timeout / 2);
        let watch = stall.map_or(watch, |s| s.min(watch));
        tokio::select! {
            result = conn.as_mut() => {
                if let Err(e) = result {
                    debug!(port = port.name, "connection ended: {e}");
                }
                return;
            }
            _ = state.evict.notified(), if closing.is_none() => {
                // Idle by construction (the registry only evicts idle connections). One that
                // never sent a request is dropped; a client's pooled connection gets a GOAWAY,
                // so its next call opens a new one instead of failing.
                closed(port.name, "evicted");
                if !state.served.load(Ordering::Acquire) {
                    return;
                }
                conn.as_mut().graceful_shutdown();
                closing = Some(Some(Instant::now() + CLOSE_GRACE));
            }
            _ = stop.cancelled(), if closing.is_none() => {
                // Shutdown: calls in flight finish; the server's drain timeout bounds the wait.
                conn.as_mut().graceful_shutdown();
                closing = Some(None);
            }
            _ = tokio::time::sleep_until(watch) => {
                if state.stalled_since().is_some_and(|s| s + limits.write_timeout <= Instant::now()) {
                    closed(port.name, "stalled");
                    debug!(port = port.name, "connection dropped: its client stopped reading");
                    return;
                }
                match closing {
                    Some(Some(give_up)) if give_up <= Instant::now() => return,
                    Some(_) => {}
                    None => {
                        if state.deadline(&limits).is_some_and(|d| d <= Instant::now()) {
                            let reason = if state.served.load(Ordering::Acquire) { "idle" } else { "handshake" };
                            closed(port.name, reason);
                            conn.as_mut().graceful_shutdown();
                            closing = Some(Some(Instant::now() + CLOSE_GRACE));
                        }
                    }
                }
            }
        }
    }
}

/// Counts each request as a call in flight on its connection until its response is finished.
#[derive(Clone)]
struct Tracked<S> {
    inner: S,
    state: Arc<ConnState>,
}

impl<S, B> Service<Request<Incoming>> for Tracked<S>
where
    S: Service<Request<Incoming>, Response = Response<B>, Error = Infallible>,
    S::Future: Send + 'static,
    B: 'static,
{
    type Response = Response<TrackedBody<B>>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<Incoming>) -> Self::Future {
        let guard = self.state.enter();
        let response = self.inner.call(req);
        Box::pin(async move {
            let response = response.await?;
            Ok(response.map(|body| TrackedBody { body, guard }))
        })
    }
}

/// A response body that keeps its call counted until it is finished or dropped.
pub struct TrackedBody<B> {
    body: B,
    guard: CallGuard,
}

impl<B: http_body::Body + Unpin> http_body::Body for TrackedBody<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        self.guard.resumed();
        let frame = Pin::new(&mut self.body).poll_frame(cx);
        if let Poll::Ready(Some(Ok(_))) = &frame {
            self.guard.handed_over();
        }
        frame
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.body.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_budget_keeps_room_for_the_admin_port() {
        assert_eq!(descriptor_budget(1024, 64, Some(1 << 20)), (1024, 64));
        assert_eq!(descriptor_budget(1024, 64, Some(1024)), (1024 - 64 - 64, 64));
        assert_eq!(descriptor_budget(1024, 64, Some(128)), (32, 32));
        assert_eq!(descriptor_budget(1024, 64, None), (1024, 64));
    }

    #[tokio::test]
    async fn at_the_cap_silent_connections_go_first_then_the_longest_idle() {
        let registry = Registry::default();
        let (_, pooled) = registry.admit(3).unwrap();
        drop(pooled.enter());
        let (_, busy) = registry.admit(3).unwrap();
        let _call = busy.enter();
        let (_, silent) = registry.admit(3).unwrap();
        let (_, newcomer) = registry.admit(3).unwrap();
        assert!(silent.evicted.load(Ordering::Acquire));
        assert!(!pooled.evicted.load(Ordering::Acquire) && !busy.evicted.load(Ordering::Acquire));
        drop(newcomer.enter());
        let _ = registry.admit(3).unwrap();
        assert!(
            pooled.evicted.load(Ordering::Acquire),
            "the longest idle goes next"
        );
        assert!(!busy.evicted.load(Ordering::Acquire));
    }

    #[tokio::test]
    async fn when_every_connection_is_busy_the_newcomer_is_refused() {
        let registry = Registry::default();
        let (_, a) = registry.admit(1).unwrap();
        let _busy = a.enter();
        assert!(registry.admit(1).is_none());
    }
}
