//! Black-box tests of `triage replay`: the real binary on real files, and the reader API.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use flate2::Compression;
use flate2::write::GzEncoder;
use serde_json::Value;
use triage::replay::source::{Payload, Reader, SourceOptions};

fn triage() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_triage"));
    cmd.current_dir(env!("CARGO_MANIFEST_DIR"))
        .env_remove("TRIAGE_RULES");
    cmd
}

fn data(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name)
}

/// Runs `triage replay ARGS` and returns its output records.
fn replay(args: &[&str]) -> (Vec<Value>, Output) {
    let out = triage().arg("replay").args(args).output().unwrap();
    assert!(
        out.status.success(),
        "replay failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let records = String::from_utf8(out.stdout.clone())
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).expect("every output line is one JSON object"))
        .collect();
    (records, out)
}

fn summary(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn errors(records: &[Value]) -> Vec<&Value> {
    records.iter().filter(|r| r.get("error").is_some()).collect()
}

/// The tiny ruleset of the hand-computed case: `invoice` → billing, `plugin` → tech,
/// nothing → general. Every rule adds 3 on the body, so a hit gives e²/(e²+2) ≈ 0.787.
fn tiny_rules(dir: &Path, invoice_queue: &str) {
    std::fs::create_dir_all(dir).unwrap();
    let queues = r#"
[ruleset]
name = "tiny"
fallback = "general"

[[queue]]
id = "billing"
destination = "billing@example.com"
description = "invoices"
threshold = 0.5

[[queue]]
id = "tech"
destination = "tech@example.com"
description = "plugins"
threshold = 0.5

[[queue]]
id = "general"
destination = "info@example.com"
description = "the rest"
threshold = 0.5
"#;
    let rules = format!(
        r#"
[[rule]]
id = "billing.invoice"
queue = "{invoice_queue}"
weight = 3.0
any = ["invoice"]

[[rule]]
id = "tech.plugin"
queue = "tech"
weight = 3.0
any = ["plugin"]
"#
    );
    std::fs::write(dir.join("00-queues.toml"), queues).unwrap();
    std::fs::write(dir.join("rules.toml"), rules).unwrap();
}

/// Eight records: six labelled (four right), one unlabelled, one malformed.
const TINY: &str = r#"{"id": "1", "body": "invoice", "label": "billing", "lang": "en"}
{"id": "2", "body": "invoice", "label": "billing", "lang": "en"}
{"id": "3", "body": "plugin", "label": "tech", "lang": "en"}
{"id": "4", "body": "invoice", "label": "tech", "lang": "en"}
{"id": "5", "body": "hello", "label": "general", "lang": "de"}
{"id": "6", "body": "plugin", "label": "billing", "lang": "de"}
{"id": "7", "body": 
{"id": "8", "body": "hello"}
"#;

fn close(a: &Value, b: f64) -> bool {
    (a.as_f64().unwrap_or(f64::NAN) - b).abs() < 1e-9
}

/// Accuracy, per-queue scores, confusion, calibration, auto-routing, languages and rules
/// equal the hand count.
#[test]
fn metrics_match_a_hand_computed_case() {
    let dir = tempfile::tempdir().unwrap();
    let rules = dir.path().join("rules");
    tiny_rules(&rules, "billing");
    let input = dir.path().join("tiny.jsonl");
    std::fs::write(&input, TINY).unwrap();
    let summary_path = dir.path().join("summary.json");
    let (records, _) = replay(&[
        "--input",
        input.to_str().unwrap(),
        "--rules",
        rules.to_str().unwrap(),
        "--summary",
        summary_path.to_str().unwrap(),
    ]);
    assert_eq!(records.len(), 8);
    assert_eq!(errors(&records).len(), 1);
    assert_eq!(records[6]["source"], format!("{}:7", input.display()));
    let s = summary(&summary_path);
    assert_eq!(
        (
            s["total"].as_u64(),
            s["classified"].as_u64(),
            s["errors"].as_u64()
        ),
        (Some(8), Some(7), Some(1))
    );
    assert_eq!(s["labelled"], 6);
    assert!(close(&s["accuracy"], 4.0 / 6.0));
    let q = &s["per_queue"];
    assert!(close(&q["billing"]["precision"], 2.0 / 3.0) && close(&q["billing"]["recall"], 2.0 / 3.0));
    assert!(close(&q["tech"]["precision"], 0.5) && close(&q["tech"]["recall"], 0.5));
    assert!(close(&q["general"]["f1"], 1.0));
    assert_eq!(
        (q["billing"]["support"].as_u64(), q["billing"]["routed"].as_u64()),
        (Some(3), Some(3))
    );
    assert_eq!(
        s["confusion"],
        serde_json::json!({"billing": {"billing": 2, "tech": 1}, "tech": {"billing": 1, "tech": 1}, "general": {"general": 1}})
    );
    // A hit scores 3 → softmax([3, 0, 0] / 1.5); no evidence → 1/3.
    let hit = records[0]["confidence"].as_f64().unwrap();
    let none = records[4]["confidence"].as_f64().unwrap();
    let e2 = 2f64.exp();
    assert!((hit - e2 / (e2 + 2.0)).abs() < 1e-3, "{hit}");
    assert!((none - 1.0 / 3.0).abs() < 1e-3, "{none}");
    // Five labelled hits in bin 0.7–0.8 (3 right), one no-evidence record in bin 0.3–0.4 (right).
    let ece = (5.0 * (hit - 0.6) + (1.0 - none)) / 6.0;
    assert!((s["ece"].as_f64().unwrap() - ece).abs() < 1e-9);
    assert_eq!(s["reliability"][7]["count"], 5);
    assert!(close(&s["reliability"][7]["accuracy"], 0.6));
    assert!(close(&s["auto_routed"]["share"], 5.0 / 7.0));
    assert!(close(&s["auto_routed"]["precision"], 3.0 / 5.0));
    assert!(close(&s["per_language"]["en"]["accuracy"], 0.75));
    assert!(close(&s["per_language"]["de"]["accuracy"], 0.5));
    let rule = |id: &str| {
        s["rules"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["rule"] == id)
            .unwrap()
            .clone()
    };
    assert_eq!(rule("billing.invoice")["fired"], 3);
    assert!(close(&rule("billing.invoice")["precision"], 2.0 / 3.0));
    assert!(close(&rule("tech.plugin")["precision"], 0.5));
    assert!(s.get("changed").is_none(), "changed only with --compare-rules");
    assert_eq!(s["unknown_labels"], serde_json::json!([]));
}

/// Identical rulesets change nothing; moving the invoice rule to `tech` changes the three
/// invoice records, and the changes file lists exactly them.
#[test]
fn compare_rules_reports_changed_records_and_transitions() {
    let dir = tempfile::tempdir().unwrap();
    let (base, same, moved) = (dir.path().join("a"), dir.path().join("b"), dir.path().join("c"));
    tiny_rules(&base, "billing");
    tiny_rules(&same, "billing");
    tiny_rules(&moved, "tech");
    let input = dir.path().join("tiny.jsonl");
    std::fs::write(&input, TINY).unwrap();
    let run = |other: &Path| {
        let (sum, changes) = (dir.path().join("s.json"), dir.path().join("changes.jsonl"));
        let args = [
            "--input",
            input.to_str().unwrap(),
            "--rules",
            base.to_str().unwrap(),
            "--compare-rules",
            other.to_str().unwrap(),
            "--summary",
            sum.to_str().unwrap(),
            "--changes",
            changes.to_str().unwrap(),
        ];
        let (records, _) = replay(&args);
        assert_eq!(records.len(), 8);
        (summary(&sum), std::fs::read_to_string(changes).unwrap())
    };
    let (s, changes) = run(&same);
    assert_eq!(s["changed"], 0);
    assert!(changes.is_empty());
    let (s, changes) = run(&moved);
    assert_eq!(s["changed"], 3);
    assert_eq!(
        s["compare"]["transitions"],
        serde_json::json!([{"from": "billing", "to": "tech", "count": 3}])
    );
    // The compared ruleset's calibration is measured too (before/after `triage calibrate`).
    assert_eq!(s["compare"]["reliability"].as_array().unwrap().len(), 10);
    assert!(s["compare"]["ece"].is_number());
    // Record 4 (labelled tech) is fixed; records 1 and 2 (labelled billing) are broken.
    assert_eq!(
        (s["compare"]["fixed"].as_u64(), s["compare"]["broken"].as_u64()),
        (Some(1), Some(2))
    );
    let ids: Vec<String> = changes
        .lines()
        .map(|l| {
            serde_json::from_str::<Value>(l).unwrap()["id"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(ids, ["1", "2", "4"]);
}

/// Malformed JSONL lines, wrong types and non-objects become error records in place.
#[test]
fn jsonl_keeps_one_record_per_line_including_bad_ones() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("mixed.jsonl");
    let lines = [
        r#"{"id": "a", "subject": "Rechnung", "body": "Bitte senden Sie die Rechnung erneut."}"#,
        r#"not json"#,
        r#"[1, 2, 3]"#,
        r#"{"id": "b", "subject": 42}"#,
        r#"{"id": 17, "body": "Where is my order?", "to": ["service@trustedshops.com"]}"#,
        r#"{"subject": "no id here"}"#,
    ];
    std::fs::write(&input, lines.join("\n") + "\n\n").unwrap();
    let (records, out) = replay(&["--input", input.to_str().unwrap()]);
    assert_eq!(records.len(), 6, "blank lines hold no record");
    let name = input.display().to_string();
    assert_eq!(records[0]["id"], "a");
    assert_eq!(records[1]["source"], format!("{name}:2"));
    assert!(records[1]["error"].as_str().unwrap().contains("JSON"));
    assert!(records[2]["error"].as_str().unwrap().contains("object"));
    assert_eq!(records[3]["id"], "b");
    assert!(records[3]["error"].is_string());
    assert_eq!(records[4]["id"], "17");
    assert_eq!(
        records[5]["id"],
        format!("{name}:6"),
        "no id: the location stands in"
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("6 records, 3 classified, 3 errors"), "{stderr}");
}

/// CSV with renamed columns, a custom delimiter, a multi-line field and a bad row.
#[test]
fn csv_columns_and_delimiter_are_configurable() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("export.csv");
    std::fs::write(
        &input,
        "ticket;Text;Queue\nT1;Die Rechnung ist falsch;contract\nT2;\"Mein Paket\nist nicht angekommen\";customer_care\nT3;too;many;fields\nT4;Hallo;sales\n",
    )
    .unwrap();
    let (records, _) = replay(&[
        "--input",
        input.to_str().unwrap(),
        "--csv-delimiter",
        ";",
        "--csv-id",
        "ticket",
        "--csv-text",
        "Text",
        "--csv-label",
        "Queue",
    ]);
    assert_eq!(records.len(), 4);
    assert_eq!(records[0]["id"], "T1");
    assert_eq!(records[0]["label"], "contract");
    assert_eq!(records[1]["id"], "T2");
    assert!(records[2]["error"].as_str().unwrap().contains("CSV"));
    assert_eq!(records[2]["source"], format!("{}:5", input.display()));
    assert_eq!(records[3]["id"], "T4");
    // A column the options name must exist.
    let out = triage()
        .args(["replay", "--input", input.to_str().unwrap(), "--csv-text", "Nope"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(out.stdout.is_empty(), "a bad option fails before any output");
    assert!(String::from_utf8_lossy(&out.stderr).contains("Nope"));
}

fn eml(subject: &str, body: &str) -> String {
    format!("From: a@example.com\r\nTo: service@trustedshops.com\r\nSubject: {subject}\r\n\r\n{body}\r\n")
}

/// mbox: `From ` separators, mboxrd unescaping, `file#n` ids, and a gzip-compressed copy.
#[test]
fn mbox_messages_are_split_unescaped_and_read_through_gzip() {
    let dir = tempfile::tempdir().unwrap();
    let mbox = format!(
        "From a@example.com Mon Jan  1 00:00:00 2024\n{}\nFrom b@example.com Mon Jan  1 00:00:01 2024\n{}>From the start\n>>From quoted\n\nFrom c@example.com Mon Jan  1 00:00:02 2024\n{}",
        eml("Rechnung", "Bitte Rechnung korrigieren."),
        eml("Order", "My order never arrived."),
        eml("Hi", "Plugin error in checkout.")
    );
    let plain = dir.path().join("box.mbox");
    std::fs::write(&plain, &mbox).unwrap();
    let gz = dir.path().join("box.mbox.gz");
    let mut enc = GzEncoder::new(Vec::new(), Compression::default());
    enc.write_all(mbox.as_bytes()).unwrap();
    std::fs::write(&gz, enc.finish().unwrap()).unwrap();

    let records: Vec<_> = Reader::open(std::slice::from_ref(&plain), SourceOptions::default())
        .unwrap()
        .records()
        .collect();
    assert_eq!(records.len(), 3);
    let second = records[1].as_ref().unwrap();
    assert_eq!(second.id, format!("{}#2", plain.display()));
    let Payload::Raw(bytes) = &second.payload else {
        panic!("an mbox message is raw")
    };
    let text = String::from_utf8_lossy(bytes);
    assert!(
        text.contains("\nFrom the start\n") && text.contains("\n>From quoted\n"),
        "{text}"
    );

    for path in [&plain, &gz] {
        let (out, _) = replay(&["--input", path.to_str().unwrap()]);
        assert_eq!(out.len(), 3);
        assert!(errors(&out).is_empty());
        assert_eq!(out[2]["id"], format!("{}#3", path.display()));
    }
}

/// A maildir reads both `cur/` and `new/`; a folder of .eml files is read recursively, other
/// files ignored; an .eml.gz counts.
#[test]
fn maildir_and_eml_folders_read_every_message() {
    let dir = tempfile::tempdir().unwrap();
    let maildir = dir.path().join("Maildir");
    for (sub, name) in [("cur", "1:2,S"), ("new", "2"), ("tmp", "3")] {
        std::fs::create_dir_all(maildir.join(sub)).unwrap();
        std::fs::write(
            maildir.join(sub).join(name),
            eml("Rechnung", "Neue Bankverbindung"),
        )
        .unwrap();
    }
    let (out, _) = replay(&["--input", maildir.to_str().unwrap()]);
    assert_eq!(out.len(), 2, "cur/ and new/, not tmp/");
    assert!(out.iter().any(|r| r["id"].as_str().unwrap().contains("/new/")));

    let tree = dir.path().join("emails");
    std::fs::create_dir_all(tree.join("2024/03")).unwrap();
    std::fs::write(tree.join("a.eml"), eml("Hi", "Order missing")).unwrap();
    std::fs::write(tree.join("notes.txt"), "not a message").unwrap();
    std::fs::write(tree.join("2024/03/b.eml"), eml("Hi", "Plugin broken")).unwrap();
    let mut enc = GzEncoder::new(Vec::new(), Compression::default());
    enc.write_all(eml("Hi", "Invoice").as_bytes()).unwrap();
    std::fs::write(tree.join("2024/c.eml.gz"), enc.finish().unwrap()).unwrap();
    let (out, _) = replay(&["--input", tree.to_str().unwrap(), "--format", "eml"]);
    let ids: Vec<&str> = out.iter().map(|r| r["id"].as_str().unwrap()).collect();
    assert_eq!(ids.len(), 3, "{ids:?}");
    // A folder's files come before its subfolders, each in name order.
    assert!(ids[0].ends_with("a.eml") && ids[1].ends_with("c.eml.gz") && ids[2].ends_with("03/b.eml"));
    assert!(errors(&out).is_empty());
}

/// A gzip-compressed JSONL file (even without a .gz name) reads like the plain one.
#[test]
fn gzip_jsonl_is_read_transparently() {
    let dir = tempfile::tempdir().unwrap();
    let plain = std::fs::read(data("dev/tickets.jsonl")).unwrap();
    let mut enc = GzEncoder::new(Vec::new(), Compression::fast());
    enc.write_all(&plain).unwrap();
    let gz = dir.path().join("tickets.jsonl.gz");
    let bytes = enc.finish().unwrap();
    std::fs::write(&gz, &bytes).unwrap();
    let unnamed = dir.path().join("archive");
    std::fs::write(&unnamed, &bytes).unwrap();
    let (a, _) = replay(&["--input", "tests/data/dev/tickets.jsonl"]);
    let (b, _) = replay(&["--input", gz.to_str().unwrap()]);
    let (c, _) = replay(&["--input", unnamed.to_str().unwrap()]);
    assert_eq!(a.len(), 120);
    let queues = |r: &[Value]| r.iter().map(|v| v["queue"].clone()).collect::<Vec<_>>();
    assert_eq!(queues(&a), queues(&b));
    assert_eq!(queues(&a), queues(&c));
}

/// Nothing is lost across formats and garbage: output lines = records in = total, and
/// total = classified + errors; ids and sources are unique positions.
#[test]
fn every_input_record_yields_exactly_one_output_record() {
    let dir = tempfile::tempdir().unwrap();
    let jsonl = dir.path().join("a.jsonl");
    let mut text = String::new();
    for i in 0..500 {
        match i % 7 {
            0 => text += "{broken\n",
            1 => text += "\"a string\"\n",
            _ => text += &format!("{{\"id\": \"r{i}\", \"body\": \"Rechnung {i} Paket Plugin\"}}\n"),
        }
    }
    std::fs::write(&jsonl, &text).unwrap();
    let mbox = dir.path().join("b.mbox");
    std::fs::write(
        &mbox,
        format!("junk first\nFrom x Mon Jan 1 00:00:00 2024\n{}", eml("s", "b")),
    )
    .unwrap();
    let sum = dir.path().join("s.json");
    let (out, _) = replay(&[
        "-i",
        jsonl.to_str().unwrap(),
        "-i",
        mbox.to_str().unwrap(),
        "--summary",
        sum.to_str().unwrap(),
        "--chunk",
        "64",
    ]);
    let s = summary(&sum);
    assert_eq!(out.len(), 502, "500 lines + preamble error + one message");
    assert_eq!(s["total"].as_u64().unwrap() as usize, out.len());
    assert_eq!(
        s["classified"].as_u64().unwrap() + s["errors"].as_u64().unwrap(),
        s["total"].as_u64().unwrap()
    );
    assert_eq!(errors(&out).len() as u64, s["errors"].as_u64().unwrap());
    let sources: std::collections::HashSet<&str> =
        out.iter().map(|r| r["source"].as_str().unwrap()).collect();
    assert_eq!(sources.len(), out.len(), "every record has its own source");
    for (i, r) in out.iter().take(500).enumerate() {
        assert_eq!(
            r["source"],
            format!("{}:{}", jsonl.display(), i + 1),
            "order is input order"
        );
    }
}

/// The shards' outputs, concatenated and sorted, equal the whole replay.
#[test]
fn shards_partition_the_input() {
    let input = "tests/data/dev/tickets.jsonl";
    let (whole, _) = replay(&["--input", input]);
    let mut union = Vec::new();
    for i in 0..3 {
        let shard = format!("{i}/3");
        let (part, _) = replay(&["--input", input, "--shard", &shard]);
        assert!(part.len() == 40, "{shard}: {}", part.len());
        union.extend(part);
    }
    let key = |v: &Value| v["source"].as_str().unwrap().to_string();
    let mut whole_sorted = whole.clone();
    whole_sorted.sort_by_key(key);
    union.sort_by_key(key);
    assert_eq!(union, whole_sorted);
    let out = triage()
        .args(["replay", "--input", input, "--shard", "3/3"])
        .output()
        .unwrap();
    assert!(!out.status.success());
}

/// The HTML report is one self-contained page with the charts and the numbers.
#[test]
fn the_report_is_self_contained_with_charts_and_figures() {
    let dir = tempfile::tempdir().unwrap();
    let (rules, other) = (dir.path().join("a"), dir.path().join("b"));
    tiny_rules(&rules, "billing");
    tiny_rules(&other, "tech");
    let input = dir.path().join("tiny.jsonl");
    std::fs::write(&input, TINY).unwrap();
    let report = dir.path().join("report.html");
    replay(&[
        "--input",
        input.to_str().unwrap(),
        "--rules",
        rules.to_str().unwrap(),
        "--compare-rules",
        other.to_str().unwrap(),
        "--report",
        report.to_str().unwrap(),
        "--output",
        dir.path().join("out.jsonl").to_str().unwrap(),
    ]);
    let html = std::fs::read_to_string(&report).unwrap();
    assert!(html.starts_with("<!doctype html>"));
    for needle in [
        "Confusion matrix",
        "Reliability diagram",
        "Queue distribution",
        "Per queue",
        "Ruleset diff",
        "Rule mass-check",
        "Reliability under --compare-rules (after)",
        "66.7%", // accuracy 4/6
        "billing.invoice",
        "aria-label=\"Confusion matrix\"",
        "aria-label=\"Reliability diagram\"",
        "aria-label=\"Queue distribution\"",
    ] {
        assert!(html.contains(needle), "missing {needle}");
    }
    assert!(html.matches("<svg").count() >= 3);
    for external in ["<script", "src=", "<link", "@import", "url("] {
        assert!(
            !html.contains(external),
            "external or scripted content: {external}"
        );
    }
}

/// The public IT-service corpus (one text column, foreign labels) replays with in = out.
#[test]
fn the_public_it_service_csv_replays_without_loss() {
    let path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/corpus/public/tickets/it-service/test.csv");
    if !path.exists() {
        eprintln!("skipped: {} is absent", path.display());
        return;
    }
    let rows = csv::Reader::from_path(&path).unwrap().byte_records().count();
    let dir = tempfile::tempdir().unwrap();
    let sum = dir.path().join("s.json");
    let out = dir.path().join("out.jsonl");
    let status = triage()
        .args([
            "replay",
            "--input",
            path.to_str().unwrap(),
            "--csv-text",
            "Document",
            "--csv-label",
        ])
        .args([
            "Topic_group",
            "--summary",
            sum.to_str().unwrap(),
            "--output",
            out.to_str().unwrap(),
        ])
        .status()
        .unwrap();
    assert!(status.success());
    let lines = std::fs::read_to_string(&out).unwrap().lines().count();
    let s = summary(&sum);
    assert_eq!(lines, rows);
    assert_eq!(s["total"].as_u64().unwrap() as usize, rows);
    let accuracy = s["accuracy"].as_f64().unwrap();
    assert!((0.0..=1.0).contains(&accuracy));
    // Its topics (Hardware, Access, …) are not queues of the default ruleset.
    assert_eq!(s["unknown_labels"].as_array().unwrap().len(), 8);
}

mod server {
    use super::*;
    use std::sync::Arc;
    use triage::server::{self, Config, Rules};

    /// `--server` gives the same records and summary as the in-process engine.
    #[test]
    fn replay_through_a_running_server_matches_the_local_engine() {
        let rules_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("rules");
        let runtime = tokio::runtime::Runtime::new().unwrap();
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let rules = Arc::new(Rules::load(Some(rules_dir.clone())).unwrap());
        let task = runtime.spawn(server::serve(listener, None, rules, Config::default(), async {
            let _ = stopped.await;
        }));

        let dir = tempfile::tempdir().unwrap();
        let input = dir.path().join("mixed.jsonl");
        let mut text = std::fs::read_to_string(data("dev/tickets.jsonl")).unwrap();
        text += "{bad json\n";
        std::fs::write(&input, text).unwrap();
        let (local_sum, remote_sum) = (dir.path().join("l.json"), dir.path().join("r.json"));
        let common = [
            "--input",
            input.to_str().unwrap(),
            "-i",
            "tests/data/dev/emails",
            "--chunk",
            "50",
        ];
        let (local, _) = replay(&[&common[..], &["--rules", rules_dir.to_str().unwrap()]].concat());
        let url = format!("http://{addr}");
        let args = [
            &common[..],
            &["--server", &url, "--summary", remote_sum.to_str().unwrap()],
        ]
        .concat();
        let (remote, _) = replay(&args);
        replay(
            &[
                &common[..],
                &[
                    "--rules",
                    rules_dir.to_str().unwrap(),
                    "--summary",
                    local_sum.to_str().unwrap(),
                ],
            ]
            .concat(),
        );
        assert_eq!(remote.len(), 137);
        assert_eq!(remote, local);
        let (mut l, mut r) = (summary(&local_sum), summary(&remote_sum));
        l.as_object_mut().unwrap().remove("run");
        r.as_object_mut().unwrap().remove("run");
        assert_eq!(l, r);

        let _ = stop.send(());
        runtime.block_on(task).unwrap().unwrap();
    }

    /// A server that requires a bearer token gets it from `--server-token`; without it the
    /// replay fails rather than writing error records for everything.
    #[test]
    fn the_server_token_is_sent_when_the_server_requires_one() {
        let dir = tempfile::tempdir().unwrap();
        let token_file = dir.path().join("tokens");
        std::fs::write(&token_file, "# replay\ns3cret\n").unwrap();
        let config = Config {
            tokens: Some(Arc::new(triage::server::Tokens::load(&token_file).unwrap())),
            ..Config::default()
        };
        let runtime = tokio::runtime::Runtime::new().unwrap();
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let rules = Arc::new(Rules::load(None).unwrap());
        let task = runtime.spawn(server::serve(listener, None, rules, config, async {
            let _ = stopped.await;
        }));
        let input = "tests/data/dev/tickets.jsonl";
        let (out, _) = replay(&["--input", input, "--server", &url, "--server-token", "s3cret"]);
        assert_eq!(out.len(), 120);
        assert!(errors(&out).is_empty());
        let refused = triage()
            .args(["replay", "--input", input, "--server", &url])
            .output()
            .unwrap();
        assert!(!refused.status.success());
        assert!(refused.stdout.is_empty());
        let _ = stop.send(());
        runtime.block_on(task).unwrap().unwrap();
    }

    /// An unreachable server fails the replay instead of losing records.
    #[test]
    fn an_unreachable_server_is_an_error() {
        let out = triage()
            .args([
                "replay",
                "--input",
                "tests/data/dev/tickets.jsonl",
                "--server",
                "http://127.0.0.1:9",
            ])
            .output()
            .unwrap();
        assert!(!out.status.success());
        assert!(out.stdout.is_empty());
    }
}

/// Hostile inputs: every record is accounted for, or the output says loudly why not.
mod hostile {
    use super::*;
    use std::time::{Duration, Instant};

    fn read_all(path: &Path, max: usize) -> Vec<Result<(String, String), (String, String)>> {
        let options = SourceOptions {
            max_record_bytes: max,
            ..SourceOptions::default()
        };
        Reader::open(&[path.to_path_buf()], options)
            .unwrap()
            .records()
            .map(|r| match r {
                Ok(rec) => Ok((rec.source, rec.id)),
                Err(bad) => Err((bad.source, bad.error)),
            })
            .collect()
    }

    fn gz(bytes: &[u8]) -> Vec<u8> {
        let mut enc = GzEncoder::new(Vec::new(), Compression::fast());
        enc.write_all(bytes).unwrap();
        enc.finish().unwrap()
    }

    /// One oversized record in any format is one error record, and reading goes on; a CSV
    /// field is never held whole (the csv crate read a 2 GiB one into memory).
    #[test]
    fn an_oversized_record_is_an_error_and_reading_goes_on_in_every_format() {
        let dir = tempfile::tempdir().unwrap();
        let big = "x".repeat(5000);
        // (file, contents, where the oversized record starts)
        let inputs = [
            (
                "a.jsonl",
                format!(
                    "{{\"id\":\"1\",\"body\":\"ok\"}}\n{{\"id\":\"2\",\"body\":\"{big}\"}}\n{{\"id\":\"3\",\"body\":\"ok\"}}\n"
                ),
                ":2",
            ),
            (
                "a.csv.gz",
                format!("id,body\n1,ok\n2,\"{big}\nstill the field\"\n3,ok\n"),
                ":3",
            ),
            (
                "a.mbox",
                format!(
                    "From a\n{}\nFrom b\n{}\nFrom c\n{}",
                    eml("1", "ok"),
                    eml("2", &big),
                    eml("3", "ok")
                ),
                ":8",
            ),
        ];
        for (name, text, at) in inputs {
            let path = dir.path().join(name);
            let bytes = if name.ends_with(".gz") {
                gz(text.as_bytes())
            } else {
                text.into_bytes()
            };
            std::fs::write(&path, bytes).unwrap();
            let got = read_all(&path, 1000);
            assert_eq!(got.len(), 3, "{name}: {got:?}");
            assert!(got[0].is_ok() && got[2].is_ok(), "{name}: {got:?}");
            let (source, error) = got[1].as_ref().unwrap_err();
            assert!(error.contains("1000 bytes"), "{name}: {error}");
            assert!(source.ends_with(at), "{name}: {source}");
        }
        let maildir = dir.path().join("Maildir");
        std::fs::create_dir_all(maildir.join("cur")).unwrap();
        for (n, body) in [("1", "ok"), ("2", big.as_str()), ("3", "ok")] {
            std::fs::write(maildir.join("cur").join(n), eml(n, body)).unwrap();
        }
        let got = read_all(&maildir, 1000);
        assert_eq!(got.iter().filter(|r| r.is_err()).count(), 1, "{got:?}");
        assert_eq!(got.len(), 3);
    }

    /// A stray quote costs one row: reading resumes on the next line, and the summary counts
    /// every row (it said total=1 for 10,000 rows).
    #[test]
    fn a_stray_quote_costs_one_row_and_every_other_row_is_read() {
        let dir = tempfile::tempdir().unwrap();
        for (name, broken) in [
            ("middle.csv", "2,\"Rechnung offen,contract\n"),
            ("last.csv", "2,Rechnung,\"offen\n"),
        ] {
            let mut text = String::from("id,subject,label\n1,Rechnung,contract\n");
            text.push_str(broken);
            for i in 3..=1000 {
                text.push_str(&format!("{i},Abmahnung erhalten,legal\n"));
            }
            let input = dir.path().join(name);
            std::fs::write(&input, text).unwrap();
            let sum = dir.path().join(format!("{name}.summary.json"));
            let (records, _) = replay(&[
                "--input",
                input.to_str().unwrap(),
                "--summary",
                sum.to_str().unwrap(),
            ]);
            assert_eq!(records.len(), 1000, "{name}");
            let errors = errors(&records);
            assert_eq!(errors.len(), 1, "{name}: {errors:?}");
            assert_eq!(errors[0]["source"], format!("{}:3", input.display()));
            assert!(
                errors[0]["error"].as_str().unwrap().contains("resumes at line 4"),
                "{errors:?}"
            );
            assert_eq!(records[999]["id"], "1000");
            let s = summary(&sum);
            assert_eq!(
                (s["total"].as_u64(), s["errors"].as_u64()),
                (Some(1000), Some(1)),
                "{name}"
            );
        }
    }

    /// A quote that is never closed, over the record limit: an error naming the line, not a
    /// silent end.
    #[test]
    fn an_unclosed_quote_over_the_limit_is_reported_with_its_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("open.csv");
        let mut text = String::from("id,body\n1,ok\n2,\"never closed\n");
        text.push_str(&"3,more\n".repeat(1000));
        std::fs::write(&path, text).unwrap();
        let got = read_all(&path, 1000);
        assert_eq!(got.len(), 2, "{got:?}");
        let (source, error) = got[1].as_ref().unwrap_err();
        assert!(source.ends_with(":3"), "{source}");
        assert!(
            error.contains("opened on line 3 is never closed") && error.contains("lines 3–1003"),
            "{error}"
        );
    }

    /// FIFOs, sockets and links leaving the folder are skipped with an error record; a FIFO
    /// used to block the replay for ever, with nothing written.
    #[test]
    fn only_regular_files_are_read_from_folders() {
        let dir = tempfile::tempdir().unwrap();
        let outside = dir.path().join("outside.eml");
        std::fs::write(&outside, eml("secret", "not part of the maildir")).unwrap();
        let maildir = dir.path().join("Maildir");
        let cur = maildir.join("cur");
        std::fs::create_dir_all(&cur).unwrap();
        std::fs::write(cur.join("1"), eml("Rechnung", "Bitte korrigieren")).unwrap();
        assert!(
            Command::new("mkfifo")
                .arg(cur.join("2-fifo"))
                .status()
                .unwrap()
                .success()
        );
        std::os::unix::fs::symlink(&outside, cur.join("3-out")).unwrap();
        std::os::unix::fs::symlink(cur.join("1"), cur.join("4-in")).unwrap();
        let _socket = std::os::unix::net::UnixListener::bind(cur.join("5-socket")).unwrap();

        let mut child = triage()
            .args(["replay", "--input", maildir.to_str().unwrap()])
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(60);
        while child.try_wait().unwrap().is_none() {
            if Instant::now() > deadline {
                let _ = child.kill();
                panic!("replay blocked on a special file");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let out = child.wait_with_output().unwrap();
        let records: Vec<Value> = String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(records.len(), 5, "{records:?}");
        let by_name = |n: &str| {
            records
                .iter()
                .find(|r| r["id"].as_str().unwrap().ends_with(n))
                .unwrap()
        };
        assert!(by_name("/1")["queue"].is_string());
        assert!(
            by_name("4-in")["queue"].is_string(),
            "a link inside the folder is read"
        );
        assert!(by_name("2-fifo")["error"].as_str().unwrap().contains("FIFO"));
        assert!(by_name("3-out")["error"].as_str().unwrap().contains("outside"));
        assert!(by_name("5-socket")["error"].as_str().unwrap().contains("socket"));
    }

    /// Blank lines hold no record and cost no more than reading them; line numbers stay right.
    #[test]
    fn blank_lines_hold_no_record_and_keep_line_numbers() {
        let dir = tempfile::tempdir().unwrap();
        let mut text = "\n".repeat(3_000_000);
        text.push_str("  \t\r\n{\"id\":\"a\",\"subject\":\"Rechnung\"}\n");
        text.push_str(&" \n\r\n".repeat(1_000_000));
        text.push_str("{broken\n\n");
        let path = dir.path().join("blank.jsonl.gz");
        std::fs::write(&path, gz(text.as_bytes())).unwrap();
        let got = read_all(&path, 1000);
        let name = path.display().to_string();
        assert_eq!(got.len(), 2, "{got:?}");
        assert_eq!(got[0].as_ref().unwrap().0, format!("{name}:3000002"));
        assert_eq!(got[1].as_ref().unwrap_err().0, format!("{name}:5000003"));
    }
}
