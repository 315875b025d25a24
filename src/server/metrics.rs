//! Prometheus metrics: recorded through the `metrics` facade, rendered by the admin port.
//!
//! Names: `triage_classifications_total{queue,outcome}` (outcome: auto_routed, needs_review,
//! error), `triage_classify_seconds` (histogram), `triage_request_bytes` (histogram),
//! `triage_confidence` (histogram), `triage_rule_hits_total{rule}`, `triage_load_shed_total`,
//! `triage_in_flight`, `triage_ruleset_info{version}`, `triage_ruleset_reloads_total{result}`.

use std::collections::HashMap;
use std::sync::{OnceLock, PoisonError, RwLock};
use std::time::Duration;

use metrics::{Counter, Histogram};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

use crate::verdict::Verdict;

static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// The handles of the series every classification records, once our recorder is installed.
/// A `counter!` with labels builds its key and looks it up in the registry on each call (with a
/// copy of the rule id per hit): perf put that at about 4% of a `Classify` call's CPU.
static SERIES: OnceLock<Series> = OnceLock::new();

struct Series {
    /// `triage_confidence`.
    confidence: Histogram,
    /// `triage_classifications_total`, by queue, outcome and interface.
    outcomes: Handles<Counter>,
    /// `triage_classify_seconds`, by interface (its `rpc` label).
    latency: Handles<Histogram>,
    /// `triage_rule_hits_total`, by rule id.
    rule_hits: Handles<Counter>,
}

/// Handles by a string key, registered on first use. Bounded by the distinct queues, rules and
/// interfaces ever served, as the registry itself is.
struct Handles<V>(RwLock<HashMap<String, V>>);

impl<V> Default for Handles<V> {
    fn default() -> Self {
        Handles(RwLock::new(HashMap::new()))
    }
}

impl<V: Clone> Handles<V> {
    /// The handle for `key` (a cheap clone: handles share their series), registered with `make`
    /// the first time. Every call but a key's first takes only the read lock.
    fn get(&self, key: &str, make: impl FnOnce() -> V) -> V {
        if let Some(v) = self.0.read().unwrap_or_else(PoisonError::into_inner).get(key) {
            return v.clone();
        }
        let mut map = self.0.write().unwrap_or_else(PoisonError::into_inner);
        map.entry(key.to_string()).or_insert_with(make).clone()
    }
}

thread_local! {
    /// The composite key of `triage_classifications_total`, built here so that a lookup
    /// allocates nothing.
    static OUTCOME_KEY: std::cell::RefCell<String> = std::cell::RefCell::default();
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
                outcomes: Handles::default(),
                latency: Handles::default(),
                rule_hits: Handles::default(),
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
        metrics::counter!("triage_classifications_total", "queue" => v.queue.clone(), "outcome" => outcome, "interface" => rpc)
            .increment(1);
        metrics::histogram!("triage_classify_seconds", "rpc" => rpc).record(elapsed.as_secs_f64());
        metrics::histogram!("triage_confidence").record(v.confidence);
        for h in &v.hits {
            metrics::counter!("triage_rule_hits_total", "rule" => h.rule.clone()).increment(1);
        }
        return;
    };
    OUTCOME_KEY.with_borrow_mut(|key| {
        key.clear();
        for part in [v.queue.as_str(), outcome, rpc] {
            key.push_str(part);
            key.push('\0');
        }
        series
            .outcomes
            .get(key, || {
                metrics::counter!("triage_classifications_total", "queue" => v.queue.clone(), "outcome" => outcome, "interface" => rpc)
            })
            .increment(1);
    });
    series.confidence.record(v.confidence);
    series
        .latency
        .get(
            rpc,
            || metrics::histogram!("triage_classify_seconds", "rpc" => rpc),
        )
        .record(elapsed.as_secs_f64());
    for h in &v.hits {
        series
            .rule_hits
            .get(
                &h.rule,
                || metrics::counter!("triage_rule_hits_total", "rule" => h.rule.clone()),
            )
            .increment(1);
    }
}

/// Counts one request that could not be classified.
pub fn failed(rpc: &'static str) {
    metrics::counter!("triage_classifications_total", "queue" => "", "outcome" => "error", "interface" => rpc)
        .increment(1);
}

/// Records a request's size.
pub fn request_bytes(bytes: usize) {
    metrics::histogram!("triage_request_bytes").record(bytes as f64);
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

    #[test]
    fn a_handle_is_registered_once_per_key_and_shared_afterwards() {
        let handles: Handles<std::sync::Arc<str>> = Handles::default();
        let mut made = 0;
        let first = handles.get("contract.invoice", || {
            made += 1;
            "first".into()
        });
        let again = handles.get("contract.invoice", || {
            made += 1;
            "second".into()
        });
        let other = handles.get("legal.abmahnung", || {
            made += 1;
            "third".into()
        });
        assert_eq!(made, 2);
        assert!(std::sync::Arc::ptr_eq(&first, &again));
        assert_eq!(&*other, "third");
    }
}
