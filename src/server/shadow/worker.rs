//! The shadow's worker: one thread that classifies queued messages with the shadow ruleset,
//! compares with the live decision, and records the outcome.

use std::panic::AssertUnwindSafe;
use std::sync::atomic::Ordering;
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::Duration;

use tracing::{debug, warn};

use super::log::{Log, Record};
use super::{Decision, Item, Shared};

/// How often an idle worker looks whether a ruleset was reloaded, to keep
/// `triage_shadow_info` current without traffic.
const TICK: Duration = Duration::from_secs(1);

/// Runs until every sender is gone and the queue is drained.
pub(super) fn run(rx: Receiver<Item>, shared: &Shared, mut log: Option<Log>) {
    lower_priority();
    loop {
        match rx.recv_timeout(TICK) {
            Ok(item) => {
                shared.queued.fetch_sub(1, Ordering::AcqRel);
                shared.queued_bytes.fetch_sub(item.bytes, Ordering::AcqRel);
                compare(item, shared, log.as_mut());
            }
            Err(RecvTimeoutError::Timeout) => drop(shared.summary()),
            Err(RecvTimeoutError::Disconnected) => break,
        }
    }
}

/// Classifies one message with the shadow ruleset and records how it compares.
fn compare(item: Item, shared: &Shared, log: Option<&mut Log>) {
    let Item {
        id,
        interface,
        message,
        live,
        ..
    } = item;
    let loaded = shared.rules.current();
    // A bug in the shadow ruleset's path must not end the worker (every later message would
    // be dropped): count it and go on.
    let outcome = std::panic::catch_unwind(AssertUnwindSafe(|| loaded.engine.classify(&id, &message)));
    drop(message);
    let shadow = match outcome {
        Ok(verdict) => Decision::of(&verdict),
        Err(_) => {
            shared.errors.fetch_add(1, Ordering::Relaxed);
            metrics::counter!("triage_shadow_errors_total").increment(1);
            warn!("shadow ruleset: classification panicked (a bug in triage); the message is skipped");
            return;
        }
    };
    metrics::counter!("triage_shadow_classifications_total").increment(1);
    {
        let mut summary = shared.summary();
        // A message queued before the live ruleset was reloaded belongs to no current pair:
        // it is counted in the metrics and logged, not in the summary of the new pair.
        if summary.live_version == live.version && summary.shadow_version == shadow.version {
            summary.add(&live.queue, &shadow.queue);
        }
    }
    if live.queue == shadow.queue {
        return;
    }
    metrics::counter!(
        "triage_shadow_disagreements_total",
        "from" => live.queue.clone(),
        "to" => shadow.queue.clone()
    )
    .increment(1);
    debug!(%id, from = %live.queue, to = %shadow.queue, "shadow disagrees");
    if let Some(log) = log
        && log.write(&Record::now(&id, interface, &live, &shadow))
    {
        shared.logged.fetch_add(1, Ordering::Relaxed);
    }
}

/// Gives the worker the lowest CPU priority, so that it only runs on a core the live path
/// leaves idle and its queue overflows (dropping, not delaying) when the cores are busy.
///
/// On Linux the thread becomes `SCHED_IDLE`: a live thread that wakes up preempts it at once.
/// A `nice` of 19 alone is not enough with the EEVDF scheduler (Linux 6.6+), which lets a
/// running task finish its slice (about a millisecond) before a woken one of equal slice gets
/// the core. Where `SCHED_IDLE` is refused (a seccomp profile), the nice value falls back to 19;
/// on Linux both belong to the thread, not the process.
fn lower_priority() {
    #[cfg(target_os = "linux")]
    {
        let param = libc::sched_param { sched_priority: 0 };
        // SAFETY: `param` is a valid, initialised `sched_param` that outlives the call, and pid
        // 0 names the calling thread; the call reads nothing else and changes only this
        // thread's scheduling policy.
        let idle = unsafe { libc::sched_setscheduler(0, libc::SCHED_IDLE, &param) } == 0;
        if !idle && let Err(e) = rustix::process::setpriority_process(None, 19) {
            debug!("shadow worker: could not lower its priority: {e}");
        }
    }
}
