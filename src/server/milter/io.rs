//! The milter connection's byte stream, with the two ways triage ends it on its own: an idle
//! timeout (a peer that went silent does not hold memory forever) and shutdown at a message
//! boundary (a message in flight is finished; between messages the connection is closed, and
//! the MTA applies its `milter_default_action` to what comes after).

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{Instant, Sleep};
use tokio_util::sync::{CancellationToken, WaitForCancellationFutureOwned};

/// A stream that times out when idle and ends at a message boundary once shutdown began.
pub struct Guarded<S> {
    inner: S,
    idle_timeout: Duration,
    idle: Pin<Box<Sleep>>,
    stop: Pin<Box<WaitForCancellationFutureOwned>>,
    /// True between messages: where shutdown may end the connection.
    between_messages: Arc<AtomicBool>,
}

impl<S> Guarded<S> {
    /// Wraps `inner`; `between_messages` is kept up to date by the session.
    pub fn new(
        inner: S,
        idle_timeout: Duration,
        stop: CancellationToken,
        between_messages: Arc<AtomicBool>,
    ) -> Guarded<S> {
        Guarded {
            inner,
            idle_timeout,
            idle: Box::pin(tokio::time::sleep(idle_timeout)),
            stop: Box::pin(stop.cancelled_owned()),
            between_messages,
        }
    }

    fn touch(&mut self) {
        self.idle.as_mut().reset(Instant::now() + self.idle_timeout);
    }

    fn idle_expired(&mut self, cx: &mut Context<'_>) -> bool {
        self.idle.as_mut().poll(cx).is_ready()
    }
}

fn timed_out() -> io::Error {
    io::Error::new(io::ErrorKind::TimedOut, "milter connection idle for too long")
}

impl<S: AsyncRead + Unpin> AsyncRead for Guarded<S> {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.between_messages.load(Ordering::Acquire) && this.stop.as_mut().poll(cx).is_ready() {
            // End of stream: the protocol loop ends cleanly.
            return Poll::Ready(Ok(()));
        }
        match Pin::new(&mut this.inner).poll_read(cx, buf) {
            Poll::Ready(result) => {
                this.touch();
                Poll::Ready(result)
            }
            Poll::Pending if this.idle_expired(cx) => Poll::Ready(Err(timed_out())),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Guarded<S> {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, data: &[u8]) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        match Pin::new(&mut this.inner).poll_write(cx, data) {
            Poll::Ready(result) => {
                this.touch();
                Poll::Ready(result)
            }
            Poll::Pending if this.idle_expired(cx) => Poll::Ready(Err(timed_out())),
            Poll::Pending => Poll::Pending,
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        match Pin::new(&mut this.inner).poll_flush(cx) {
            Poll::Pending if this.idle_expired(cx) => Poll::Ready(Err(timed_out())),
            other => other,
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;

    #[tokio::test]
    async fn a_silent_peer_times_out() {
        let (ours, _theirs) = tokio::io::duplex(64);
        let mut g = Guarded::new(
            ours,
            Duration::from_millis(100),
            CancellationToken::new(),
            Arc::new(AtomicBool::new(true)),
        );
        let mut buf = [0u8; 8];
        let err = g.read(&mut buf).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
    }

    #[tokio::test]
    async fn activity_keeps_the_connection_open() {
        let (ours, mut theirs) = tokio::io::duplex(64);
        let mut g = Guarded::new(
            ours,
            Duration::from_millis(400),
            CancellationToken::new(),
            Arc::new(AtomicBool::new(true)),
        );
        let mut buf = [0u8; 8];
        for _ in 0..4 {
            tokio::time::sleep(Duration::from_millis(250)).await;
            theirs.write_all(b"x").await.unwrap();
            assert_eq!(g.read(&mut buf).await.unwrap(), 1);
        }
    }

    #[tokio::test]
    async fn shutdown_ends_the_stream_between_messages_only() {
        let (ours, mut theirs) = tokio::io::duplex(64);
        let stop = CancellationToken::new();
        let between = Arc::new(AtomicBool::new(false));
        let mut g = Guarded::new(ours, Duration::from_secs(60), stop.clone(), between.clone());
        stop.cancel();
        // Mid-message: reading goes on.
        theirs.write_all(b"abc").await.unwrap();
        let mut buf = [0u8; 8];
        assert_eq!(g.read(&mut buf).await.unwrap(), 3);
        // At the boundary: end of stream, even with data waiting.
        between.store(true, Ordering::Release);
        theirs.write_all(b"def").await.unwrap();
        assert_eq!(g.read(&mut buf).await.unwrap(), 0);
    }

    #[tokio::test]
    async fn shutdown_wakes_a_reader_waiting_between_messages() {
        let (ours, _theirs) = tokio::io::duplex(64);
        let stop = CancellationToken::new();
        let mut g = Guarded::new(
            ours,
            Duration::from_secs(60),
            stop.clone(),
            Arc::new(AtomicBool::new(true)),
        );
        let reader = tokio::spawn(async move {
            let mut buf = [0u8; 8];
            g.read(&mut buf).await.unwrap()
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        stop.cancel();
        assert_eq!(reader.await.unwrap(), 0);
    }
}
