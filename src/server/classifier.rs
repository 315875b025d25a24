//! What every interface of the server shares to classify: the serving ruleset, the limits and
//! one concurrency limit. gRPC, the webhook and the milter take a permit here before any CPU
//! work, run large inputs off the async reactor, and classify through [`Call::classify`]: the
//! one place where a call's message meets the engine, and where a shadow ruleset gets it too.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::shadow::Shadow;
use super::state::Rules;
use crate::cancel::{Cancel, Cancelled};
use crate::engine::Engine;
use crate::mail::Limits;
use crate::message::Message;
use crate::verdict::Verdict;

/// Inputs above this size are decoded and classified on the blocking pool, so a large email
/// never stalls the async workers that serve everyone else.
pub const INLINE_BYTES: usize = 64 * 1024;

/// The server is at its concurrency limit: the call is shed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("triage is at its concurrency limit; retry with backoff")]
pub struct Overloaded;

/// The blocking task that classified a message failed (a bug in triage, reported as such).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("classification failed: {0}")]
pub struct Failed(pub String);

/// One call's share of the concurrency limit. Cheap to clone: the call's handler and the work
/// it started each hold a clone, and the permit returns when the last is gone, so a call whose
/// client left still counts until its work has stopped.
#[derive(Debug, Clone)]
pub struct CallPermit(#[allow(dead_code)] Arc<OwnedSemaphorePermit>);

/// Counts a classification in `triage_classifications_running` while its work runs, on the
/// async workers or the blocking pool, whether or not anybody still waits for it.
#[derive(Debug)]
struct Running;

impl Running {
    fn enter() -> Running {
        super::metrics::running(1.0);
        Running
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        super::metrics::running(-1.0);
    }
}

/// The ruleset, limits and permits shared by every interface.
#[derive(Debug, Clone)]
pub struct Classifier {
    rules: Arc<Rules>,
    limits: Limits,
    permits: Arc<Semaphore>,
    /// The longest a call may take; also the longest a stream may wait for its next request
    /// or for its client to read a response.
    request_timeout: Duration,
    /// The candidate ruleset every classified message is also handed to, when one is set.
    shadow: Option<Arc<Shadow>>,
}

/// What a call's work gets: the limits, its cancel flag, and the one way to classify.
pub struct Call<'a> {
    engine: &'a Engine,
    limits: &'a Limits,
    cancel: &'a Cancel,
    shadow: Option<&'a Shadow>,
    interface: &'static str,
}

impl Call<'_> {
    /// The message limits.
    pub fn limits(&self) -> &Limits {
        self.limits
    }

    /// The serving engine, for work that is not a classification (an explanation): only
    /// [`Call::classify`] hands the message to a shadow ruleset.
    pub fn engine(&self) -> &Engine {
        self.engine
    }

    /// Set when nobody waits for the result any more: check it between stages.
    pub fn cancel(&self) -> &Cancel {
        self.cancel
    }

    /// Classifies `message` with the serving ruleset, stopping soon after the call is
    /// cancelled. With a shadow ruleset, the message (already built: it is not read twice) is
    /// then handed to the shadow's queue without waiting, or dropped when that queue is full.
    pub fn classify(&self, id: &str, message: Message) -> Result<Verdict, Cancelled> {
        let verdict = self.engine.classify_with(id, &message, self.cancel)?;
        if let Some(shadow) = self.shadow {
            shadow.offer(id, self.interface, message, &verdict);
        }
        Ok(verdict)
    }
}

impl Classifier {
    /// A classifier over `rules`, running at most `max_concurrency` calls at once across every
    /// interface.
    pub fn new(rules: Arc<Rules>, limits: Limits, max_concurrency: usize) -> Classifier {
        Classifier {
            rules,
            limits,
            permits: Arc::new(Semaphore::new(max_concurrency.max(1))),
            request_timeout: Duration::from_secs(30),
            shadow: None,
        }
    }

    /// The same, also handing every classified message to `shadow`.
    pub fn with_shadow(mut self, shadow: Arc<Shadow>) -> Classifier {
        self.shadow = Some(shadow);
        self
    }

    /// The shadow ruleset, when one is set.
    pub fn shadow(&self) -> Option<&Arc<Shadow>> {
        self.shadow.as_ref()
    }

    /// The same, with calls (and each wait of a stream) bounded by `timeout`.
    pub fn with_request_timeout(mut self, timeout: Duration) -> Classifier {
        self.request_timeout = timeout;
        self
    }

    /// The longest a call, or a stream's wait for its client, may take.
    pub fn request_timeout(&self) -> Duration {
        self.request_timeout
    }

    /// The serving ruleset.
    pub fn rules(&self) -> &Arc<Rules> {
        &self.rules
    }

    /// The message limits.
    pub fn limits(&self) -> Limits {
        self.limits
    }

    /// Takes a concurrency permit, or sheds the call at once when the server is saturated:
    /// queueing without bound would only turn overload into timeouts for everyone.
    pub fn admit(&self) -> Result<CallPermit, Overloaded> {
        match self.permits.clone().try_acquire_owned() {
            Ok(permit) => Ok(CallPermit(Arc::new(permit))),
            Err(_) => {
                metrics::counter!("triage_load_shed_total").increment(1);
                Err(Overloaded)
            }
        }
    }

    /// Runs `work` with the engine serving now: inline when the input is at most
    /// [`INLINE_BYTES`] (cheaper than a thread hop), on the blocking pool otherwise.
    /// `interface` names the caller in the shadow's log (`Classify`, `http`, `milter`, ...).
    ///
    /// When the returned future is dropped before the work ends (the client cancelled, the
    /// deadline passed), the [`Cancel`] handed to the work is set: the work checks it between
    /// stages and stops, freeing its input. Until it has stopped it holds `permit`, so work
    /// nobody waits for still counts against `--max-concurrency`.
    pub async fn run<T: Send + 'static>(
        &self,
        size: usize,
        permit: CallPermit,
        interface: &'static str,
        work: impl FnOnce(&Call<'_>) -> T + Send + 'static,
    ) -> Result<T, Failed> {
        let loaded = self.rules.current();
        let limits = self.limits;
        let shadow = self.shadow.clone();
        let running = Running::enter();
        if size <= INLINE_BYTES {
            return Ok(work(&Call {
                engine: &loaded.engine,
                limits: &limits,
                cancel: &Cancel::never(),
                shadow: shadow.as_deref(),
                interface,
            }));
        }
        let (cancel, guard) = Cancel::on_drop();
        let result = tokio::task::spawn_blocking(move || {
            let _permit = permit;
            let _running = running;
            let result = work(&Call {
                engine: &loaded.engine,
                limits: &limits,
                cancel: &cancel,
                shadow: shadow.as_deref(),
                interface,
            });
            if cancel.is_cancelled() {
                metrics::counter!("triage_classifications_cancelled_total").increment(1);
            }
            result
        })
        .await
        .map_err(|e| Failed(e.to_string()));
        guard.disarm();
        result
    }
}
