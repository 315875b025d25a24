//! Call deadlines on the gRPC port: the client's `grpc-timeout`, capped by `--request-timeout`.
//!
//! A call that runs past its deadline is answered DEADLINE_EXCEEDED (tonic's own timeout says
//! CANCELLED, which clients do not treat as a timeout) and its handler is dropped, which stops
//! its classification (see [`super::classifier`]). A streaming call's response starts at once,
//! so the deadline cannot end it from here: the client's deadline is handed to the handler as a
//! [`ClientDeadline`] extension instead.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use http::{HeaderMap, Request, Response};
use tokio::time::Instant;
use tonic::Status;
use tower::Service;

/// The deadline the client set with `grpc-timeout`, for handlers whose work outlives the
/// response future (streams).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientDeadline(pub Instant);

/// Wraps a gRPC service with call deadlines.
#[derive(Debug, Clone)]
pub struct Deadline<S> {
    inner: S,
    max: Duration,
}

impl<S> Deadline<S> {
    /// Calls on `inner` last at most `max`, or the client's `grpc-timeout` when shorter.
    pub fn new(inner: S, max: Duration) -> Deadline<S> {
        Deadline { inner, max }
    }
}

impl<S, B> Service<Request<B>> for Deadline<S>
where
    S: Service<Request<B>, Response = Response<tonic::body::Body>, Error = Infallible>,
    S::Future: Send + 'static,
{
    type Response = Response<tonic::body::Body>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request<B>) -> Self::Future {
        let now = Instant::now();
        let client = grpc_timeout(req.headers());
        if let Some(timeout) = client {
            req.extensions_mut().insert(ClientDeadline(now + timeout));
        }
        let timeout = client.map_or(self.max, |t| t.min(self.max));
        let response = self.inner.call(req);
        Box::pin(async move {
            match tokio::time::timeout_at(now + timeout, response).await {
                Ok(response) => response,
                Err(_) => {
                    metrics::counter!("triage_deadline_exceeded_total").increment(1);
                    Ok(Status::deadline_exceeded(format!(
                        "the call took longer than its deadline of {timeout:?}"
                    ))
                    .into_http())
                }
            }
        })
    }
}

/// The `grpc-timeout` header (`<up to 8 digits><H|M|S|m|u|n>`), when present and valid.
pub fn grpc_timeout(headers: &HeaderMap) -> Option<Duration> {
    let value = headers.get("grpc-timeout")?.to_str().ok()?;
    let (digits, unit) = value.split_at(value.len().checked_sub(1)?);
    if digits.is_empty() || digits.len() > 8 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let n: u64 = digits.parse().ok()?;
    Some(match unit {
        "H" => Duration::from_secs(n * 3600),
        "M" => Duration::from_secs(n * 60),
        "S" => Duration::from_secs(n),
        "m" => Duration::from_millis(n),
        "u" => Duration::from_micros(n),
        "n" => Duration::from_nanos(n),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(v: &str) -> Option<Duration> {
        let mut h = HeaderMap::new();
        h.insert("grpc-timeout", v.parse().unwrap());
        grpc_timeout(&h)
    }

    #[test]
    fn grpc_timeouts_parse_in_every_unit_and_junk_is_ignored() {
        assert_eq!(parse("100m"), Some(Duration::from_millis(100)));
        assert_eq!(parse("2S"), Some(Duration::from_secs(2)));
        assert_eq!(parse("1H"), Some(Duration::from_secs(3600)));
        assert_eq!(parse("5n"), Some(Duration::from_nanos(5)));
        assert_eq!(parse("123456789S"), None);
        assert_eq!(parse("S"), None);
        assert_eq!(parse("10x"), None);
        assert_eq!(parse("-1S"), None);
    }
}
