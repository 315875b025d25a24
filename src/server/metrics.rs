//! Prometheus metrics: recorded through the `metrics` facade, rendered by the admin port.
//!
//! Names: `triage_classifications_total{queue,outcome}` (outcome: auto_routed, needs_review,
//! error), `triage_classify_seconds` (histogram), `triage_request_bytes` (histogram),
//! `triage_confidence` (histogram), `triage_rule_hits_total{rule}`, `triage_load_shed_total`,
//! `triage_in_flight`, `triage_ruleset_info{version}`, `triage_ruleset_reloads_total{result}`.

use std::sync::OnceLock;
use std::time::Duration;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

use crate::verdict::Verdict;

static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

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
    metrics::counter!("triage_classifications_total", "queue" => v.queue.clone(), "outcome" => outcome, "interface" => rpc)
        .increment(1);
    metrics::histogram!("triage_classify_seconds", "rpc" => rpc).record(elapsed.as_secs_f64());
    metrics::histogram!("triage_confidence").record(v.confidence);
    for h in &v.hits {
        metrics::counter!("triage_rule_hits_total", "rule" => h.rule.clone()).increment(1);
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
