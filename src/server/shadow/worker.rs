//! The shadow's worker: one thread that classifies queued messages with the shadow ruleset,
//! compares with the live decision, and records the outcome.

use std::panic::AssertUnwindSafe;
use std::sync::atomic::Ordering;
use std::sync::mpsc::{Receiver, TryRecvError};
use std::time::{Duration, Instant};

use tracing::{debug, warn};

use super::log::{Log, Record};
use super::{Decision, Item, Shared};

/// How long the worker sleeps when it finds the queue empty. It polls rather than blocking in
/// `recv`: a receiver blocked in `recv` must be woken by the sender, which would put a system
/// call (and often an interrupt to the other core) on the live path of every call; polling
/// leaves the live path a plain `try_send`. The price is a message waiting up to this long.
const POLL: Duration = Duration::from_millis(10);

/// The worker sleeps off its budget (see [`Budget`]) once it owes at least this much.
const LEAST_SLEEP: Duration = Duration::from_millis(10);

/// The longest the worker rests at once. A single slow message (the first after a start or a
/// reload, while the engine warms up; a very large email) would otherwise owe many seconds
/// in which the shadow sees nothing; over ordinary messages the budget holds on average.
const MOST_REST: Duration = Duration::from_secs(1);

/// How often the worker looks whether a ruleset was reloaded, to keep `triage_shadow_info`
/// current without traffic.
const TICK: Duration = Duration::from_secs(1);

/// Keeps the worker within a share of one core, measured in wall time (so a worker the
/// scheduler keeps waiting backs off further).
///
/// A low scheduling priority is not enough: the kernel charges the worker's time to the
/// process (its autogroup, its container's CPU quota), so on a machine that is never idle
/// every millisecond the shadow works is one the live path does not get. With a budget, the
/// shadow's cost is bounded whatever the traffic; what it has no time for overflows the queue
/// and is counted as dropped.
#[derive(Debug)]
struct Budget {
    /// Idle time owed per unit of work: `1 / share - 1`.
    rest_per_work: f64,
    owed: Duration,
}

impl Budget {
    fn new(share: f64) -> Budget {
        let share = if share.is_finite() {
            share.clamp(0.001, 1.0)
        } else {
            1.0
        };
        Budget {
            rest_per_work: 1.0 / share - 1.0,
            owed: Duration::ZERO,
        }
    }

    /// Records `work` and returns how long to rest now, if anything.
    fn spent(&mut self, work: Duration) -> Option<Duration> {
        self.owed = (self.owed + work.mul_f64(self.rest_per_work)).min(MOST_REST);
        (self.owed >= LEAST_SLEEP).then(|| std::mem::take(&mut self.owed))
    }
}

/// Runs until every sender is gone and the queue is drained.
pub(super) fn run(rx: Receiver<Item>, shared: &Shared, mut log: Option<Log>, cpu_share: f64) {
    lower_priority();
    let mut budget = Budget::new(cpu_share);
    let mut ticked = Instant::now();
    loop {
        match rx.try_recv() {
            Ok(item) => {
                shared.queued.fetch_sub(1, Ordering::AcqRel);
                shared.queued_bytes.fetch_sub(item.bytes, Ordering::AcqRel);
                let started = Instant::now();
                compare(item, shared, log.as_mut());
                if let Some(rest) = budget.spent(started.elapsed()) {
                    std::thread::sleep(rest);
                }
            }
            Err(TryRecvError::Empty) => std::thread::sleep(POLL),
            Err(TryRecvError::Disconnected) => break,
        }
        if ticked.elapsed() >= TICK {
            drop(shared.summary());
            ticked = Instant::now();
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_budget_rests_nineteen_times_the_work_at_a_twentieth_of_a_core() {
        let mut budget = Budget::new(0.05);
        assert_eq!(budget.spent(Duration::from_micros(100)), None);
        let mut rested = Duration::ZERO;
        for _ in 0..999 {
            rested += budget.spent(Duration::from_micros(100)).unwrap_or_default();
        }
        rested += budget.owed;
        // 1,000 units of 100 µs of work: 100 ms, and 1.9 s of rest.
        let expected = Duration::from_millis(1900).as_secs_f64();
        assert!((rested.as_secs_f64() - expected).abs() < 1e-6, "{rested:?}");
    }

    #[test]
    fn one_slow_message_costs_at_most_a_second_of_rest() {
        let mut budget = Budget::new(0.05);
        assert_eq!(budget.spent(Duration::from_millis(500)), Some(MOST_REST));
        assert_eq!(budget.spent(Duration::from_micros(100)), None);
    }

    #[test]
    fn a_whole_core_never_rests() {
        let mut budget = Budget::new(1.0);
        assert_eq!(budget.spent(Duration::from_secs(1)), None);
        assert_eq!(Budget::new(f64::NAN).spent(Duration::from_secs(1)), None);
    }
}
