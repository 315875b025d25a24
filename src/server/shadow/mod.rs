//! Shadow rulesets: a candidate ruleset classifies every call beside the live one, off the
//! caller's path, so a rule author sees what a change would do on real traffic before it
//! decides anything.
//!
//! The live path only hands the message it already built to a bounded queue ([`Shadow::offer`],
//! a `try_send`: it never waits); one worker thread, at the lowest scheduling priority, outside
//! the concurrency permits and within a CPU budget (5% of one core by default), classifies it
//! with the shadow ruleset and compares. When the queue is full (by count or by bytes) the
//! shadow's copy is dropped and counted: under heavy traffic the shadow sees a sample of it,
//! and the live answers are not slower.
//!
//! Layout:
//! - [`worker`]: the thread that classifies, compares and records.
//! - [`summary`]: agreement per queue and the top disagreements, for `GET /shadow`.
//! - [`log`]: the JSONL file of disagreements (ids, queues, confidences, rule ids; never
//!   text), rotated at a size limit.
//! - [`http`]: the `GET /shadow` handler of the admin port.
//!
//! Metrics: `triage_shadow_classifications_total`, `triage_shadow_disagreements_total{from,to}`,
//! `triage_shadow_dropped_total`, `triage_shadow_errors_total`, `triage_shadow_info{live,shadow}`,
//! `triage_shadow_reloads_total{result}`, `triage_shadow_log_errors_total`.

pub mod http;
pub mod log;
pub mod summary;
mod worker;

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{self, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};

use super::state::Rules;
use crate::message::Message;
use crate::verdict::Verdict;
use summary::Summary;

/// The share of one core a shadow may use unless told otherwise: at a typical 30 to 70 µs a
/// message, several hundred messages a second, more than most help desks see in a day's peak.
pub const DEFAULT_CPU_SHARE: f64 = 0.05;

/// How a shadow ruleset runs.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The candidate ruleset; its directory is watched and reloaded like the live one.
    pub rules: Arc<Rules>,
    /// Where disagreements are written, one JSON object per line; `None`: not written.
    pub log: Option<PathBuf>,
    /// The log is rotated (to `FILE.1`, replacing the previous one) before it grows past this,
    /// so the two files never hold much more than twice it.
    pub log_max_bytes: u64,
    /// Messages waiting for the shadow at most; beyond, the shadow's copy is dropped.
    pub queue_capacity: usize,
    /// Bytes of message text waiting for the shadow at most (a few large emails must not hold
    /// hundreds of megabytes); beyond, the shadow's copy is dropped.
    pub queue_bytes: usize,
    /// The share of one core the shadow may use (0.05: 5%); what it has no time for is dropped.
    pub cpu_share: f64,
}

impl Settings {
    /// The defaults for `rules`: no log, 1,024 messages or 64 MiB queued, logs rotated at 64 MiB,
    /// 5% of one core.
    pub fn new(rules: Arc<Rules>) -> Settings {
        Settings {
            rules,
            log: None,
            log_max_bytes: 64 * 1024 * 1024,
            queue_capacity: 1024,
            queue_bytes: 64 * 1024 * 1024,
            cpu_share: DEFAULT_CPU_SHARE,
        }
    }
}

/// One side of a comparison: what a ruleset decided, without any text of the message.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Decision {
    /// The ruleset's version.
    pub version: String,
    /// The chosen queue.
    pub queue: String,
    /// Its confidence.
    pub confidence: f64,
    /// Below the queue's auto-route threshold.
    pub needs_review: bool,
    /// The rules that fired, each once, in the verdict's order.
    pub rules: Vec<String>,
}

impl Decision {
    /// The parts of `v` a comparison reads.
    pub fn of(v: &Verdict) -> Decision {
        let mut rules: Vec<String> = Vec::with_capacity(v.hits.len());
        for h in &v.hits {
            if !rules.contains(&h.rule) {
                rules.push(h.rule.clone());
            }
        }
        Decision {
            version: v.ruleset_version.clone(),
            queue: v.queue.clone(),
            confidence: v.confidence,
            needs_review: v.needs_review,
            rules,
        }
    }
}

/// A message waiting for the shadow, with the live decision to compare against.
struct Item {
    id: String,
    interface: &'static str,
    message: Message,
    /// What `message` counts against [`Settings::queue_bytes`].
    bytes: usize,
    live: Decision,
}

/// What the live path and the worker share.
struct Shared {
    /// The shadow ruleset.
    rules: Arc<Rules>,
    /// The live ruleset, to know which pair of versions the summary describes.
    live: Arc<Rules>,
    /// Bytes of the messages queued now.
    queued_bytes: AtomicUsize,
    /// Messages queued now.
    queued: AtomicUsize,
    max_bytes: usize,
    dropped: AtomicU64,
    errors: AtomicU64,
    summary: Mutex<Summary>,
    /// The log file, when one is written (its path, and records written since start).
    log: Option<PathBuf>,
    logged: AtomicU64,
    /// The worker's CPU budget, for the report.
    cpu_share: f64,
}

impl Shared {
    /// Locks the summary, first starting a new one when either ruleset changed since it began,
    /// and keeping `triage_shadow_info` on the pair serving now.
    fn summary(&self) -> std::sync::MutexGuard<'_, Summary> {
        let live = self.live.current().engine.ruleset().version.clone();
        let shadow = self.rules.current().engine.ruleset().version.clone();
        let mut summary = self.summary.lock().unwrap_or_else(|e| e.into_inner());
        if summary.live_version != live || summary.shadow_version != shadow {
            info_gauge(&summary.live_version, &summary.shadow_version, 0.0);
            *summary = Summary::new(live, shadow);
            info_gauge(&summary.live_version, &summary.shadow_version, 1.0);
        }
        summary
    }
}

fn info_gauge(live: &str, shadow: &str, value: f64) {
    metrics::gauge!("triage_shadow_info", "live" => live.to_string(), "shadow" => shadow.to_string())
        .set(value);
}

/// A running shadow: the queue's sending side, and what `GET /shadow` reads.
pub struct Shadow {
    tx: SyncSender<Item>,
    shared: Arc<Shared>,
}

impl std::fmt::Debug for Shadow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shadow")
            .field("rules", &self.shared.rules.dir())
            .field("log", &self.shared.log)
            .finish_non_exhaustive()
    }
}

impl Shadow {
    /// Starts the worker thread for `settings`, comparing against `live`. The thread ends
    /// once the last [`Shadow`] handle is dropped and the queue is empty.
    pub fn start(settings: Settings, live: Arc<Rules>) -> std::io::Result<Shadow> {
        let live_version = live.current().engine.ruleset().version.clone();
        let shadow_version = settings.rules.current().engine.ruleset().version.clone();
        info_gauge(&live_version, &shadow_version, 1.0);
        let shared = Arc::new(Shared {
            rules: settings.rules.clone(),
            live,
            queued_bytes: AtomicUsize::new(0),
            queued: AtomicUsize::new(0),
            max_bytes: settings.queue_bytes.max(1),
            dropped: AtomicU64::new(0),
            errors: AtomicU64::new(0),
            summary: Mutex::new(Summary::new(live_version, shadow_version)),
            log: settings.log.clone(),
            logged: AtomicU64::new(0),
            cpu_share: settings.cpu_share,
        });
        let (tx, rx) = mpsc::sync_channel(settings.queue_capacity.max(1));
        let log = settings
            .log
            .map(|path| log::Log::new(path, settings.log_max_bytes));
        let worker = shared.clone();
        let cpu_share = settings.cpu_share;
        std::thread::Builder::new()
            .name("triage-shadow".into())
            .spawn(move || worker::run(rx, &worker, log, cpu_share))?;
        Ok(Shadow { tx, shared })
    }

    /// The shadow ruleset.
    pub fn rules(&self) -> &Arc<Rules> {
        &self.shared.rules
    }

    /// Queues `message` for the shadow with the live `verdict`, never waiting: when the queue
    /// is full (by count or bytes) the message is dropped and `triage_shadow_dropped_total`
    /// counts it. Called on the live path, so it does no more than a few small copies.
    pub fn offer(&self, id: &str, interface: &'static str, message: Message, verdict: &Verdict) {
        let bytes = message_bytes(&message);
        let before = self.shared.queued_bytes.fetch_add(bytes, Ordering::AcqRel);
        // One message larger than the whole budget still goes when nothing else waits.
        if before > 0 && before + bytes > self.shared.max_bytes {
            self.shared.queued_bytes.fetch_sub(bytes, Ordering::AcqRel);
            self.dropped();
            return;
        }
        let item = Item {
            id: id.to_string(),
            interface,
            message,
            bytes,
            live: Decision::of(verdict),
        };
        self.shared.queued.fetch_add(1, Ordering::AcqRel);
        if let Err(TrySendError::Full(item) | TrySendError::Disconnected(item)) = self.tx.try_send(item) {
            self.shared.queued.fetch_sub(1, Ordering::AcqRel);
            self.shared.queued_bytes.fetch_sub(item.bytes, Ordering::AcqRel);
            self.dropped();
        }
    }

    fn dropped(&self) {
        self.shared.dropped.fetch_add(1, Ordering::Relaxed);
        metrics::counter!("triage_shadow_dropped_total").increment(1);
    }

    /// The agreement summary of the versions serving now, as `GET /shadow` shows it.
    pub fn report(&self) -> serde_json::Value {
        let summary = self.shared.summary().to_json();
        let mut value = summary;
        value["dropped"] = self.shared.dropped.load(Ordering::Relaxed).into();
        value["errors"] = self.shared.errors.load(Ordering::Relaxed).into();
        value["queued"] = self.shared.queued.load(Ordering::Acquire).into();
        value["cpu_share"] = self.shared.cpu_share.into();
        value["log"] = match &self.shared.log {
            Some(path) => serde_json::json!({
                "path": path.display().to_string(),
                "written": self.shared.logged.load(Ordering::Relaxed),
            }),
            None => serde_json::Value::Null,
        };
        value
    }
}

/// What a message counts against the queue's byte budget: its text.
fn message_bytes(m: &Message) -> usize {
    let list = |v: &[String]| v.iter().map(String::len).sum::<usize>();
    m.subject.len()
        + m.body.len()
        + m.quoted.len()
        + m.signature.len()
        + m.from.len()
        + list(&m.to)
        + list(&m.cc)
        + list(&m.attachment_names)
        + m.headers.iter().map(|(k, v)| k.len() + v.len()).sum::<usize>()
}

#[cfg(test)]
mod tests;
