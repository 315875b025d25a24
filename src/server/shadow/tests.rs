use std::path::Path;
use std::time::{Duration, Instant};

use super::*;
use crate::engine::Engine;
use crate::rules::RuleSet;

/// A two-queue ruleset where `invoice` goes to `invoice_queue`.
fn rules(invoice_queue: &str) -> Arc<Rules> {
    let queues = r#"
[ruleset]
name = "tiny"
fallback = "general"

[[queue]]
id = "billing"
threshold = 0.5

[[queue]]
id = "general"
threshold = 0.5
"#;
    let rules = format!(
        "[[rule]]\nid = \"invoice\"\nqueue = \"{invoice_queue}\"\nweight = 3.0\nany = [\"invoice\"]\n"
    );
    let files = vec![
        ("00-queues.toml".to_string(), queues.as_bytes().to_vec()),
        ("rules.toml".to_string(), rules.into_bytes()),
    ];
    let ruleset = RuleSet::from_sources(Path::new("tiny"), files).unwrap();
    Arc::new(Rules::from_engine(Engine::new(ruleset).unwrap(), None))
}

fn message(body: &str) -> Message {
    Message {
        body: body.to_string(),
        ..Message::default()
    }
}

fn live_verdict(rules: &Rules, id: &str, m: &Message) -> Verdict {
    rules.current().engine.classify(id, m)
}

/// A shadow whose queue nobody reads: what the live path sees when the worker is stuck.
fn stuck(capacity: usize, max_bytes: usize) -> (Shadow, mpsc::Receiver<Item>) {
    let live = rules("billing");
    let version = live.current().engine.ruleset().version.clone();
    let shared = Arc::new(Shared {
        rules: live.clone(),
        live,
        queued_bytes: AtomicUsize::new(0),
        queued: AtomicUsize::new(0),
        max_bytes,
        dropped: AtomicU64::new(0),
        errors: AtomicU64::new(0),
        summary: Mutex::new(Summary::new(version.clone(), version)),
        log: None,
        logged: AtomicU64::new(0),
        cpu_share: DEFAULT_CPU_SHARE,
    });
    let (tx, rx) = mpsc::sync_channel(capacity);
    (Shadow { tx, shared }, rx)
}

fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn a_full_queue_drops_the_shadow_copy_without_waiting() {
    let (shadow, _rx) = stuck(2, 1 << 20);
    let m = message("invoice");
    let v = live_verdict(&shadow.shared.live, "1", &m);
    let started = Instant::now();
    for _ in 0..100 {
        shadow.offer("1", "Classify", m.clone(), &v);
    }
    assert!(started.elapsed() < Duration::from_secs(1));
    assert_eq!(shadow.shared.queued.load(Ordering::Acquire), 2);
    assert_eq!(shadow.shared.dropped.load(Ordering::Relaxed), 98);
    assert_eq!(shadow.report()["dropped"], 98);
}

#[test]
fn the_byte_budget_bounds_the_queue_but_lets_one_large_message_through() {
    let (shadow, _rx) = stuck(100, 1000);
    let large = message(&"invoice ".repeat(500));
    let v = live_verdict(&shadow.shared.live, "1", &large);
    shadow.offer("1", "http", large.clone(), &v);
    assert_eq!(shadow.shared.queued.load(Ordering::Acquire), 1);
    shadow.offer("2", "http", message("invoice"), &v);
    assert_eq!(shadow.shared.queued.load(Ordering::Acquire), 1);
    assert_eq!(shadow.shared.dropped.load(Ordering::Relaxed), 1);
    assert_eq!(
        shadow.shared.queued_bytes.load(Ordering::Acquire),
        message_bytes(&large)
    );
}

#[test]
fn a_shadow_that_routes_differently_counts_and_logs_the_disagreement() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("shadow.jsonl");
    let live = rules("billing");
    let settings = Settings {
        log: Some(log.clone()),
        ..Settings::new(rules("general"))
    };
    let shadow = Shadow::start(settings, live.clone()).unwrap();
    for (id, body) in [("a", "invoice please"), ("b", "hello"), ("c", "another invoice")] {
        let m = message(body);
        let v = live_verdict(&live, id, &m);
        shadow.offer(id, "Classify", m, &v);
    }
    wait_until("three messages are compared", || shadow.report()["compared"] == 3);
    let report = shadow.report();
    assert_eq!(
        (report["agreed"].as_u64(), report["disagreed"].as_u64()),
        (Some(1), Some(2))
    );
    assert_eq!(
        report["disagreements"][0],
        serde_json::json!({"from": "billing", "to": "general", "count": 2})
    );
    // The log is written after the comparison is counted: wait for it too.
    wait_until("both disagreements are written", || {
        shadow.report()["log"]["written"] == 2
    });
    let text = std::fs::read_to_string(&log).unwrap();
    let ids: Vec<String> = text
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["id"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(ids, ["a", "c"]);
    assert!(!text.contains("please"), "the log holds no message text: {text}");
}

#[test]
fn message_bytes_count_every_text_field() {
    let m = Message {
        subject: "ab".into(),
        body: "cde".into(),
        quoted: "f".into(),
        signature: "g".into(),
        from: "h".into(),
        to: vec!["ij".into()],
        cc: vec!["k".into()],
        headers: vec![("l".into(), "mn".into())],
        attachment_names: vec!["o".into()],
        ..Message::default()
    };
    assert_eq!(message_bytes(&m), 15);
}
