//! Prometheus metrics: recorded through the `metrics` facade, rendered by the admin port.
//!
//! Names: `triage_classifications_total{queue,outcome,interface}` (outcome: auto_routed,
//! needs_review, error), `triage_classify_seconds{rpc}` (histogram, seconds),
//! `triage_request_bytes` (histogram, bytes), `triage_confidence` (histogram),
//! `triage_rule_hits_total{rule}`, `triage_load_shed_total`, `triage_in_flight`,
//! `triage_classifications_running`, `triage_ruleset_info{version}`,
//! `triage_ruleset_reloads_total{result}`.

use std::collections::HashMap;
use std::sync::{OnceLock, PoisonError, RwLock};
use std::time::Duration;

use metrics::{Counter, Gauge, Histogram};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

use crate::verdict::Verdict;

static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// The handles of the series every call records, once our recorder is installed.
/// A `counter!` with labels builds its key and looks it up in the registry on each call (with a
/// copy of the rule id per hit), and a `gauge!` or `histogram!` without labels still hashes its
/// name into the registry: perf put these lookups at about 4% of a `Classify` call's CPU; kept
/// handles behind a lock taken per rule hit were still 4% of the server's samples under h2load
/// (1.4% with one read lock a call).
static SERIES: OnceLock<Series> = OnceLock::new();

struct Series {
    /// `triage_confidence`.
    confidence: Histogram,
    /// `triage_request_bytes`, in bytes.
    request_bytes: Histogram,
    /// `triage_in_flight`.
    in_flight: Gauge,
    /// `triage_classifications_running`.
    running: Gauge,
    /// The labelled series, registered on first use.
    labelled: RwLock<Labelled>,
}

/// The handles of the labelled series a classification records, by their labels. Bounded by
/// the distinct queues, rules and interfaces ever served, as the registry itself is. One lock
/// for all of them: a call takes the read lock once, whatever its number of rule hits.
#[derive(Default)]
struct Labelled {
    /// `triage_classifications_total`, by [`outcome_key`].
    outcomes: HashMap<String, Counter>,
    /// `triage_classify_seconds`, by interface (its `rpc` label), in seconds.
    latency: HashMap<&'static str, Histogram>,
    /// `triage_rule_hits_total`, by rule id.
    rule_hits: HashMap<String, Counter>,
}

thread_local! {
    /// The composite key of `triage_classifications_total`, built here so that a lookup
    /// allocates nothing.
    static OUTCOME_KEY: std::cell::RefCell<String> = std::cell::RefCell::default();
}

/// Writes the key of `triage_classifications_total{queue, outcome, interface}` into `key`.
fn outcome_key(key: &mut String, queue: &str, outcome: &str, rpc: &str) {
    key.clear();
    for part in [queue, outcome, rpc] {
        key.push_str(part);
        key.push('\0');
    }
}

/// Installs the process-wide recorder once (later calls return the same handle). `None` when
/// another recorder was installed first (e.g. by an embedding application).
pub fn install() -> Option<PrometheusHandle> {
    HANDLE
        .get_or_init(|| {
            let latency = [
                0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.1, 0.5,
            ];
            let fractions = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.99, 1.0];
            let sizes = [
                256.0,
                1024.0,
                4096.0,
                16_384.0,
                65_536.0,
                262_144.0,
                1_048_576.0,
                10_485_760.0,
            ];
            let builder = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Full("triage_classify_seconds".into()), &latency)
                .and_then(|b| b.set_buckets_for_metric(Matcher::Full("triage_confidence".into()), &fractions))
                .and_then(|b| b.set_buckets_for_metric(Matcher::Full("triage_request_bytes".into()), &sizes))
                .ok()?;
            let handle = builder.install_recorder().ok()?;
            // install_recorder leaves upkeep (histogram maintenance) to us.
            let upkeep = handle.clone();
            std::thread::Builder::new()
                .name("metrics-upkeep".into())
                .spawn(move || {
                    loop {
                        std::thread::sleep(Duration::from_secs(5));
                        upkeep.run_upkeep();
                    }
                })
                .ok()?;
            let _ = SERIES.set(Series {
                confidence: metrics::histogram!("triage_confidence"),
                request_bytes: metrics::histogram!("triage_request_bytes"),
                in_flight: metrics::gauge!("triage_in_flight"),
                running: metrics::gauge!("triage_classifications_running"),
                labelled: RwLock::default(),
            });
            Some(handle)
        })
        .clone()
}

/// Counts one classification and its latency, confidence and rule hits.
pub fn classified(v: &Verdict, elapsed: Duration, rpc: &'static str) {
    let outcome = if v.needs_review {
        "needs_review"
    } else {
        "auto_routed"
    };
    let Some(series) = SERIES.get() else {
        // Another recorder was installed first (an embedding application): no handles to keep.
        outcome_counter(&v.queue, outcome, rpc).increment(1);
        latency_histogram(rpc).record(elapsed.as_secs_f64());
        metrics::histogram!("triage_confidence").record(v.confidence);
        for h in &v.hits {
            rule_counter(&h.rule).increment(1);
        }
        return;
    };
    series.confidence.record(v.confidence);
    let seconds = elapsed.as_secs_f64();
    OUTCOME_KEY.with_borrow_mut(|key| {
        outcome_key(key, &v.queue, outcome, rpc);
        // Each series is recorded once: under the read lock when its handle exists, else
        // after registering it under the write lock (a key's first call only).
        let mut unregistered = Vec::new();
        let (outcome_missing, latency_missing) = {
            let labelled = series.labelled.read().unwrap_or_else(PoisonError::into_inner);
            for (i, h) in v.hits.iter().enumerate() {
                match labelled.rule_hits.get(&h.rule) {
                    Some(c) => c.increment(1),
                    None => unregistered.push(i),
                }
            }
            let outcome = labelled.outcomes.get(key.as_str()).map(|c| c.increment(1));
            let latency = labelled.latency.get(rpc).map(|h| h.record(seconds));
            (outcome.is_none(), latency.is_none())
        };
        if unregistered.is_empty() && !outcome_missing && !latency_missing {
            return;
        }
        let mut labelled = series.labelled.write().unwrap_or_else(PoisonError::into_inner);
        for i in unregistered {
            let rule = &v.hits[i].rule;
            labelled
                .rule_hits
                .entry(rule.clone())
                .or_insert_with(|| rule_counter(rule))
                .increment(1);
        }
        if outcome_missing {
            labelled
                .outcomes
                .entry(key.clone())
                .or_insert_with(|| outcome_counter(&v.queue, outcome, rpc))
                .increment(1);
        }
        if latency_missing {
            labelled
                .latency
                .entry(rpc)
                .or_insert_with(|| latency_histogram(rpc))
                .record(seconds);
        }
    });
}

/// `triage_classifications_total{queue, outcome, interface}`, from the registry.
fn outcome_counter(queue: &str, outcome: &'static str, rpc: &'static str) -> Counter {
    metrics::counter!("triage_classifications_total", "queue" => queue.to_string(), "outcome" => outcome, "interface" => rpc)
}

/// `triage_classify_seconds{rpc}`, from the registry.
fn latency_histogram(rpc: &'static str) -> Histogram {
    metrics::histogram!("triage_classify_seconds", "rpc" => rpc)
}

/// `triage_rule_hits_total{rule}`, from the registry.
fn rule_counter(rule: &str) -> Counter {
    metrics::counter!("triage_rule_hits_total", "rule" => rule.to_string())
}

/// Moves `triage_in_flight` (gRPC calls being served) by `delta`.
pub fn in_flight(delta: f64) {
    match SERIES.get() {
        Some(series) => series.in_flight.increment(delta),
        None => metrics::gauge!("triage_in_flight").increment(delta),
    }
}

/// Moves `triage_classifications_running` (classifications whose work runs, whether or not
/// anybody still waits for them) by `delta`.
pub fn running(delta: f64) {
    match SERIES.get() {
        Some(series) => series.running.increment(delta),
        None => metrics::gauge!("triage_classifications_running").increment(delta),
    }
}

/// Counts one request that could not be classified.
pub fn failed(rpc: &'static str) {
    outcome_counter("", "error", rpc).increment(1);
}

/// Records a request's size.
pub fn request_bytes(bytes: usize) {
    match SERIES.get() {
        Some(series) => series.request_bytes.record(bytes as f64),
        None => metrics::histogram!("triage_request_bytes").record(bytes as f64),
    }
}

/// Records the serving ruleset's version.
pub fn ruleset(version: &str) {
    metrics::gauge!("triage_ruleset_info", "version" => version.to_string()).set(1.0);
}

/// Counts a reload attempt.
pub fn reload(ok: bool) {
    metrics::counter!("triage_ruleset_reloads_total", "result" => if ok { "success" } else { "failure" })
        .increment(1);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::verdict::Hit;

    fn verdict(queue: &str, rules: &[&str]) -> Verdict {
        Verdict {
            id: "m".into(),
            queue: queue.into(),
            destination: String::new(),
            confidence: 0.9,
            needs_review: false,
            ranking: Vec::new(),
            hits: rules
                .iter()
                .map(|r| Hit {
                    rule: (*r).into(),
                    queue: queue.into(),
                    field: "body".into(),
                    matched: String::new(),
                    weight: 1.0,
                })
                .collect(),
            language: "en".into(),
            ruleset_version: "v".into(),
            notes: Vec::new(),
        }
    }

    /// The value of the one rendered sample whose line starts with `series`.
    fn sample(rendered: &str, series: &str) -> Option<f64> {
        rendered
            .lines()
            .find_map(|l| l.strip_prefix(series)?.trim().parse().ok())
    }

    #[test]
    fn every_series_of_a_classification_counts_once_whether_its_handle_is_new_or_kept() {
        // The process-wide recorder: the labels here are this test's own.
        let handle = install().expect("no other recorder in the unit tests");
        // First call: every labelled handle is registered; second: one rule hit is new.
        classified(
            &verdict("metrics_test_queue", &["metrics_test.a"]),
            Duration::from_micros(30),
            "metrics_test",
        );
        classified(
            &verdict("metrics_test_queue", &["metrics_test.a", "metrics_test.b"]),
            Duration::from_micros(30),
            "metrics_test",
        );
        classified(
            &verdict("metrics_test_queue", &["metrics_test.b"]),
            Duration::from_micros(30),
            "metrics_test",
        );
        let rendered = handle.render();
        assert_eq!(
            sample(&rendered, r#"triage_rule_hits_total{rule="metrics_test.a"}"#),
            Some(2.0)
        );
        assert_eq!(
            sample(&rendered, r#"triage_rule_hits_total{rule="metrics_test.b"}"#),
            Some(2.0)
        );
        assert_eq!(
            sample(
                &rendered,
                r#"triage_classifications_total{queue="metrics_test_queue",outcome="auto_routed",interface="metrics_test"}"#
            ),
            Some(3.0)
        );
        assert_eq!(
            sample(&rendered, r#"triage_classify_seconds_count{rpc="metrics_test"}"#),
            Some(3.0)
        );
    }
}
