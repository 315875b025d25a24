//! Stopping work nobody waits for any more.
//!
//! A caller that gives up (its client disconnected, its deadline passed) cancels; long work
//! checks [`Cancel::check`] between stages, each of which is bounded in cost (see
//! [`crate::intake`]), so the work stops soon after and frees its memory.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// A flag the caller sets when it no longer wants the result. Cheap to clone and to check.
#[derive(Debug, Clone, Default)]
pub struct Cancel(Option<Arc<AtomicBool>>);

/// The work stopped because its caller cancelled it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("cancelled: the caller no longer waits for the result")]
pub struct Cancelled;

impl Cancel {
    /// A flag that is never set: for callers that always wait (the command line, replay).
    pub fn never() -> Cancel {
        Cancel(None)
    }

    /// A flag that can be set, and a guard that sets it when dropped: keep the guard in the
    /// future whose caller may go away, hand the flag to the work.
    pub fn on_drop() -> (Cancel, CancelOnDrop) {
        let flag = Cancel(Some(Arc::new(AtomicBool::new(false))));
        (flag.clone(), CancelOnDrop(flag))
    }

    /// Sets the flag.
    pub fn cancel(&self) {
        if let Some(flag) = &self.0 {
            flag.store(true, Ordering::Release);
        }
    }

    /// True once cancelled.
    pub fn is_cancelled(&self) -> bool {
        self.0.as_ref().is_some_and(|f| f.load(Ordering::Acquire))
    }

    /// `Err(Cancelled)` once cancelled: for `?` between stages.
    pub fn check(&self) -> Result<(), Cancelled> {
        if self.is_cancelled() {
            Err(Cancelled)
        } else {
            Ok(())
        }
    }
}

/// Cancels its flag when dropped.
#[derive(Debug)]
pub struct CancelOnDrop(Cancel);

impl CancelOnDrop {
    /// Lets the work run to its end even though this guard goes (the caller got its answer).
    pub fn disarm(mut self) {
        self.0 = Cancel::never();
    }
}

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        self.0.cancel();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dropping_the_guard_cancels_and_disarming_does_not() {
        let (flag, guard) = Cancel::on_drop();
        assert!(flag.check().is_ok());
        drop(guard);
        assert_eq!(flag.check(), Err(Cancelled));
        let (flag, guard) = Cancel::on_drop();
        guard.disarm();
        assert!(!flag.is_cancelled());
        assert!(!Cancel::never().is_cancelled());
    }
}
