//! Shadow rulesets, black-box: a real server with a second ruleset that routes invoices to a
//! queue of its own. Each test names its own shadow queue, so the process-wide Prometheus
//! counters of tests running beside it cannot be confused with its own.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value;
use triage::server::milter::edits::QUEUE;
use triage::server::{Config, Rules, shadow};

use crate::helpers::{TestServer, copy_rules, ticket};
use crate::milter::{Mta, added};

/// Subject and body of the invoice ticket: the live rules route it to `contract`.
const SUBJECT: &str = "Rechnung doppelt abgebucht";
const BODY: &str = "Sie haben die Gebühr für März zweimal per Lastschrift eingezogen.";

/// Adds to `dir` a queue `queue` and a rule that sends every invoice there.
fn route_invoices_to(dir: &Path, queue: &str) {
    let text = format!(
        r#"
[[queue]]
id = "{queue}"
destination = "{queue}@example.com"
description = "the shadow's own queue"
threshold = 0.5

[[rule]]
id = "{queue}.invoice"
queue = "{queue}"
weight = 60.0
fields = ["subject", "body"]
any = ["rechnung*", "invoice*", "gebuhr*"]
"#
    );
    std::fs::write(dir.join("zz-shadow.toml"), text).unwrap();
}

fn settings(dir: &Path) -> shadow::Settings {
    shadow::Settings::new(Arc::new(Rules::load(Some(dir.to_path_buf())).unwrap()))
}

async fn get(server: &TestServer, path: &str) -> reqwest::Response {
    reqwest::get(server.admin_url(path)).await.unwrap()
}

async fn report(server: &TestServer) -> Value {
    get(server, "/shadow").await.json().await.unwrap()
}

/// Polls `/shadow` until `done` holds (the shadow works off the caller's path).
async fn report_when(server: &TestServer, what: &str, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let r = report(server).await;
        if done(&r) {
            return r;
        }
        assert!(Instant::now() < deadline, "timed out waiting until {what}: {r:#}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn lines(text: &str) -> Vec<Value> {
    text.lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

/// A shadow that routes invoices elsewhere: every interface (Classify, ClassifyStream, the
/// webhook, the milter) gets the live answer, and the shadow counts each disagreement in the
/// metrics, writes it to the log without any text of the message, and `/shadow` sums it up.
#[tokio::test]
async fn a_shadow_that_routes_differently_counts_logs_and_summarises_the_disagreements() {
    let shadow_dir = copy_rules();
    route_invoices_to(shadow_dir.path(), "shadow_counted");
    let logs = tempfile::tempdir().unwrap();
    let log = logs.path().join("shadow.jsonl");
    let config = Config {
        shadow: Some(shadow::Settings {
            log: Some(log.clone()),
            ..settings(shadow_dir.path())
        }),
        ..Config::default()
    };
    let server = TestServer::with_milter(Some(crate::helpers::rules_dir()), config, None).await;
    let live_version = server.rules.current().engine.ruleset().version.clone();

    let mut client = server.client().await;
    let v = client
        .classify(ticket("g1", SUBJECT, BODY))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(v.queue, "contract", "the live ruleset decides");
    let requests = tokio_stream::iter(vec![ticket("s1", SUBJECT, BODY), ticket("s2", "Hallo", "")]);
    let mut stream = client.classify_stream(requests).await.unwrap().into_inner();
    while let Some(r) = stream.message().await.unwrap() {
        assert_ne!(r.queue, "shadow_counted");
    }
    let webhook: Value = reqwest::Client::new()
        .post(server.admin_url("/v1/classify"))
        .json(&serde_json::json!({"id": "w1", "subject": SUBJECT, "body": BODY}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(webhook["queue"], "contract");
    let mut mta = Mta::connect(&server).await;
    mta.negotiate().await;
    let replies = mta
        .message(
            &[("Subject", SUBJECT), ("From", "shop@example.com")],
            BODY.as_bytes(),
        )
        .await;
    assert_eq!(added(&replies, QUEUE).as_deref(), Some("contract"));

    let r = report_when(&server, "five messages are compared", |r| r["compared"] == 5).await;
    assert_eq!(r["live_version"], live_version.as_str());
    assert_ne!(r["shadow_version"], r["live_version"]);
    assert_eq!(
        (r["agreed"].as_u64(), r["disagreed"].as_u64()),
        (Some(1), Some(4))
    );
    assert_eq!(
        r["disagreements"][0],
        serde_json::json!({"from": "contract", "to": "shadow_counted", "count": 4})
    );
    let contract = r["queues"]
        .as_array()
        .unwrap()
        .iter()
        .find(|q| q["queue"] == "contract")
        .unwrap();
    assert_eq!(
        (contract["live"].as_u64(), contract["agreement"].as_f64()),
        (Some(4), Some(0.0))
    );
    assert_eq!(r["log"]["written"], 4);
    assert_eq!(r["dropped"], 0);

    let metrics = get(&server, "/metrics").await.text().await.unwrap();
    let disagreements = metrics
        .lines()
        .find(|l| {
            l.starts_with("triage_shadow_disagreements_total{")
                && l.contains(r#"from="contract""#)
                && l.contains(r#"to="shadow_counted""#)
        })
        .unwrap_or_else(|| panic!("no disagreement counter: {metrics}"));
    assert!(disagreements.ends_with(" 4"), "{disagreements}");
    let info = format!(
        r#"triage_shadow_info{{live="{live_version}",shadow="{}"}} 1"#,
        r["shadow_version"].as_str().unwrap()
    );
    assert!(metrics.lines().any(|l| l == info), "{info} in {metrics}");

    let text = std::fs::read_to_string(&log).unwrap();
    let records = lines(&text);
    let mut interfaces: Vec<&str> = records.iter().map(|r| r["interface"].as_str().unwrap()).collect();
    interfaces.sort_unstable();
    assert_eq!(interfaces, ["Classify", "ClassifyStream", "http", "milter"]);
    for record in &records {
        assert_eq!(record["live"]["queue"], "contract");
        assert_eq!(record["shadow"]["queue"], "shadow_counted");
        assert_eq!(record["shadow"]["rules"][0], "shadow_counted.invoice");
        assert!(record["live"]["confidence"].as_f64().unwrap() > 0.5);
    }
    for word in [
        "Rechnung",
        "abgebucht",
        "Lastschrift",
        "Gebühr",
        "shop@example.com",
    ] {
        assert!(
            !text.contains(word),
            "the log holds no message text, found {word}: {text}"
        );
    }
    server.stop().await;
}

/// The shadow directory is watched as the live one is: an edit there changes the shadow's
/// version (not the live one), the summary starts again for the new pair, and the new rules
/// are compared from then on.
#[tokio::test]
async fn the_shadow_ruleset_reloads_when_its_directory_changes() {
    let live = copy_rules();
    let shadow_dir = copy_rules();
    let config = Config {
        shadow: Some(settings(shadow_dir.path())),
        ..Config::default()
    };
    let server = TestServer::with(Some(live.path().to_path_buf()), config).await;
    let live_version = server.rules.current().engine.ruleset().version.clone();
    let mut client = server.client().await;
    client.classify(ticket("a", SUBJECT, BODY)).await.unwrap();
    let first = report_when(&server, "the first call is compared", |r| r["compared"] == 1).await;
    assert_eq!(first["agreed"], 1, "the same rules agree");
    assert_eq!(first["shadow_version"], live_version.as_str());

    route_invoices_to(shadow_dir.path(), "shadow_reloaded");
    let second = report_when(&server, "the shadow reloads", |r| {
        r["shadow_version"] != first["shadow_version"]
    })
    .await;
    assert_eq!(
        second["compared"], 0,
        "a new pair of versions starts a new summary"
    );
    assert_eq!(server.rules.current().engine.ruleset().version, live_version);

    let v = client
        .classify(ticket("b", SUBJECT, BODY))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (v.queue.as_str(), v.ruleset_version.as_str()),
        ("contract", live_version.as_str())
    );
    let r = report_when(&server, "the second call is compared", |r| r["compared"] == 1).await;
    assert_eq!(
        r["disagreements"][0],
        serde_json::json!({"from": "contract", "to": "shadow_reloaded", "count": 1})
    );
    let metrics = get(&server, "/metrics").await.text().await.unwrap();
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with(r#"triage_shadow_reloads_total{result="success"}"#)),
        "{metrics}"
    );
    server.stop().await;
}

/// A shadow that cannot keep up (here its log is a FIFO nobody reads, so the worker is stuck
/// on its first disagreement, as on a hung disk) fills its queue; from then on the shadow's
/// copy of each call is dropped and counted, and every live answer still comes at once.
#[cfg(unix)]
#[tokio::test]
async fn a_shadow_whose_queue_is_full_never_delays_the_live_answer() {
    use std::io::BufRead;

    let shadow_dir = copy_rules();
    route_invoices_to(shadow_dir.path(), "shadow_stuck");
    let logs = tempfile::tempdir().unwrap();
    let fifo = logs.path().join("shadow.fifo");
    let made = std::process::Command::new("mkfifo").arg(&fifo).status().unwrap();
    assert!(made.success(), "mkfifo failed");
    let config = Config {
        shadow: Some(shadow::Settings {
            log: Some(fifo.clone()),
            queue_capacity: 4,
            ..settings(shadow_dir.path())
        }),
        ..Config::default()
    };
    let server = TestServer::with(Some(crate::helpers::rules_dir()), config).await;
    let mut client = server.client().await;
    // The first disagreement sends the worker to its log, where it stays.
    client.classify(ticket("0", SUBJECT, BODY)).await.unwrap();
    report_when(&server, "the worker holds the first call", |r| r["compared"] == 1).await;

    const CALLS: usize = 200;
    let started = Instant::now();
    let mut slowest = Duration::ZERO;
    for i in 1..CALLS {
        let t = Instant::now();
        let v = client
            .classify(ticket(&i.to_string(), SUBJECT, BODY))
            .await
            .unwrap()
            .into_inner();
        slowest = slowest.max(t.elapsed());
        assert_eq!(v.queue, "contract");
    }
    let elapsed = started.elapsed();
    // Waiting on the stuck shadow would hang here for ever; a debug build answers these in
    // milliseconds, and the bounds leave room for a machine busy with other work.
    assert!(slowest < Duration::from_secs(2), "slowest call {slowest:?}");
    assert!(
        elapsed < Duration::from_secs(60),
        "{CALLS} calls took {elapsed:?}"
    );

    // One message is with the stuck worker, four wait; the rest were dropped.
    let r = report(&server).await;
    assert_eq!(r["queued"], 4, "{r:#}");
    assert_eq!(r["dropped"].as_u64(), Some((CALLS - 5) as u64), "{r:#}");
    let metrics = get(&server, "/metrics").await.text().await.unwrap();
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("triage_shadow_dropped_total ")),
        "{metrics}"
    );

    // Reading the FIFO frees the worker: the five it holds are compared and logged, without text.
    let (tx, rx) = std::sync::mpsc::channel();
    let reader_path = fifo.clone();
    std::thread::spawn(move || {
        let file = std::io::BufReader::new(std::fs::File::open(reader_path).unwrap());
        for line in file.lines() {
            let _ = tx.send(line.unwrap());
        }
    });
    report_when(&server, "the queue drains", |r| {
        r["compared"] == 5 && r["queued"] == 0
    })
    .await;
    let mut records = Vec::new();
    while records.len() < 5 {
        let line = rx
            .recv_timeout(Duration::from_secs(10))
            .expect("five records in the log");
        assert!(!line.contains("Rechnung"), "{line}");
        records.push(serde_json::from_str::<Value>(&line).unwrap());
    }
    assert!(records.iter().all(|r| r["shadow"]["queue"] == "shadow_stuck"));
    server.stop().await;
}

/// Without a shadow ruleset `/shadow` says so; with tokens it needs one, as the webhook does.
#[tokio::test]
async fn the_shadow_summary_needs_a_shadow_and_the_webhook_token() {
    let server = TestServer::start().await;
    let none = get(&server, "/shadow").await;
    assert_eq!(none.status(), 404);
    let body: Value = none.json().await.unwrap();
    assert!(body["error"].as_str().unwrap().contains("--shadow-rules"));
    server.stop().await;

    let dir = tempfile::tempdir().unwrap();
    let tokens_file = dir.path().join("tokens");
    std::fs::write(&tokens_file, "s3cret\n").unwrap();
    let config = Config {
        tokens: Some(Arc::new(triage::server::Tokens::load(&tokens_file).unwrap())),
        shadow: Some(settings(&crate::helpers::rules_dir())),
        ..Config::default()
    };
    let server = TestServer::with(Some(crate::helpers::rules_dir()), config).await;
    assert_eq!(get(&server, "/shadow").await.status(), 401);
    let with_token = reqwest::Client::new()
        .get(server.admin_url("/shadow"))
        .bearer_auth("s3cret")
        .send()
        .await
        .unwrap();
    assert_eq!(with_token.status(), 200);
    let r: Value = with_token.json().await.unwrap();
    assert_eq!(r["compared"], 0);
    assert!(r["log"].is_null());
    server.stop().await;
}
