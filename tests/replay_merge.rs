//! `triage replay merge`, black-box: the real binary replays a labelled set once whole and as
//! three shards; the merged shard summaries equal the whole's, figure for figure.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn triage(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_triage"))
        .args(args)
        .current_dir(root())
        .env_remove("TRIAGE_RULES")
        .output()
        .unwrap()
}

fn ok(out: Output) -> Output {
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    out
}

fn read_json(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// The labelled sets of the repository, out-of-scope mail (labels that are no queue), and a
/// file of unlabelled and malformed records, so that every part of a summary has figures.
fn inputs(dir: &Path) -> Vec<PathBuf> {
    let odd = dir.join("odd.jsonl");
    std::fs::write(
        &odd,
        concat!(
            "{\"id\": \"u1\", \"subject\": \"Rechnung\", \"body\": \"Bitte korrigieren.\"}\n",
            "{\"id\": \"bad\", \"body\": \n",
            "[1, 2]\n",
            "{\"id\": \"u2\", \"subject\": \"Widget\", \"body\": \"The trustbadge is gone.\", \"label\": \"technical_success\"}\n",
            "{\"id\": \"u3\", \"body\": \"Abmahnung erhalten\", \"label\": \"leagl\"}\n",
        ),
    )
    .unwrap();
    let mut inputs: Vec<PathBuf> = [
        "tests/data/holdout/tickets.jsonl",
        "tests/data/blind/locked/tickets.jsonl",
        "tests/data/blind/locked/out_of_scope.jsonl",
        "tests/data/blind/tuning/tickets.jsonl",
    ]
    .iter()
    .map(|p| root().join(p))
    .collect();
    inputs.insert(2, odd);
    inputs
}

/// A copy of the default rules where invoices also speak for `legal`: a ruleset to compare with.
fn candidate(dir: &Path) -> PathBuf {
    let rules = dir.join("candidate");
    std::fs::create_dir(&rules).unwrap();
    for entry in std::fs::read_dir(root().join("rules")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "toml") {
            std::fs::copy(&path, rules.join(path.file_name().unwrap())).unwrap();
        }
    }
    std::fs::write(
        rules.join("zz-candidate.toml"),
        "[[rule]]\nid = \"zz.invoice_is_legal\"\nqueue = \"legal\"\nweight = 4.0\nany = [\"rechnung*\", \"factura*\", \"invoice*\"]\n",
    )
    .unwrap();
    rules
}

/// Runs `triage replay` over `inputs` (and `extra` arguments), writing its summary to `summary`.
fn replay(inputs: &[PathBuf], compare: &Path, summary: &Path, extra: &[&str]) {
    let mut args = vec!["replay".to_string()];
    for input in inputs {
        args.extend(["--input".to_string(), input.display().to_string()]);
    }
    args.extend(
        [
            "--compare-rules",
            compare.to_str().unwrap(),
            "--summary",
            summary.to_str().unwrap(),
            "--output",
            "/dev/null",
        ]
        .map(String::from),
    );
    args.extend(extra.iter().map(|s| s.to_string()));
    ok(triage(&args.iter().map(String::as_str).collect::<Vec<_>>()));
}

fn without_run(mut v: Value) -> Value {
    v.as_object_mut().unwrap().remove("run");
    v
}

/// The report without its subtitle (which names the shards and the time taken).
fn report_body(html: &str) -> String {
    let start = html.find(r#"<p class="sub">"#).unwrap();
    let end = start + html[start..].find("</p>").unwrap();
    format!("{}{}", &html[..start], &html[end..])
}

#[test]
fn three_merged_shards_give_the_summary_and_report_of_one_run_over_the_whole() {
    let dir = tempfile::tempdir().unwrap();
    let inputs = inputs(dir.path());
    let compare = candidate(dir.path());
    let whole = dir.path().join("whole.json");
    let whole_report = dir.path().join("whole.html");
    replay(
        &inputs,
        &compare,
        &whole,
        &["--report", whole_report.to_str().unwrap()],
    );
    let mut parts = Vec::new();
    for i in 0..3 {
        let part = dir.path().join(format!("part-{i}.json"));
        replay(&inputs, &compare, &part, &["--shard", &format!("{i}/3")]);
        parts.push(part.display().to_string());
    }
    let merged_report = dir.path().join("merged.html");
    let merged_file = dir.path().join("merged.json");
    let mut args = vec![
        "replay",
        "merge",
        "--report",
        merged_report.to_str().unwrap(),
        "--summary",
        merged_file.to_str().unwrap(),
    ];
    // Merged in another order than the shards' numbers: the result does not depend on it.
    args.extend([&parts[2], &parts[0], &parts[1]].map(String::as_str));
    let out = ok(triage(&args));
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert_eq!(stdout.lines().count(), 1, "one JSON object on stdout");
    let merged: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(read_json(&merged_file), merged);

    let whole = read_json(&whole);
    // The figures the summary is for, and every other one: equal, not merely close.
    for key in [
        "total",
        "classified",
        "errors",
        "accuracy",
        "ece",
        "macro_f1",
        "changed",
    ] {
        assert_eq!(merged[key], whole[key], "{key}");
    }
    assert_eq!(without_run(merged.clone()), without_run(whole.clone()));
    assert!(whole["errors"].as_u64().unwrap() >= 2 && whole["compare"]["changed"].as_u64().unwrap() > 0);
    assert!(!whole["unknown_labels"].as_array().unwrap().is_empty());

    assert_eq!(merged["run"]["ruleset_version"], whole["run"]["ruleset_version"]);
    assert_eq!(merged["run"]["compare_version"], whole["run"]["compare_version"]);
    assert_eq!(merged["run"]["inputs"], whole["run"]["inputs"]);
    assert_eq!(merged["run"]["merged"], serde_json::json!(["2/3", "0/3", "1/3"]));
    assert!(merged["run"]["shard"].is_null());

    let merged_html = std::fs::read_to_string(&merged_report).unwrap();
    assert!(
        merged_html.contains("merged from 3 parts"),
        "the subtitle says what was merged"
    );
    assert_eq!(
        report_body(&merged_html),
        report_body(&std::fs::read_to_string(&whole_report).unwrap())
    );
}

#[test]
fn a_shard_given_twice_or_an_old_summary_is_refused_and_a_missing_shard_reported() {
    let dir = tempfile::tempdir().unwrap();
    let input = [root().join("tests/data/dev/tickets.jsonl")];
    let compare = candidate(dir.path());
    let part = |i: u64| {
        let path = dir.path().join(format!("part-{i}.json"));
        replay(&input, &compare, &path, &["--shard", &format!("{i}/3")]);
        path.display().to_string()
    };
    let (p0, p1) = (part(0), part(1));

    let twice = triage(&["replay", "merge", &p0, &p1, &p0]);
    assert_eq!(twice.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&twice.stderr);
    assert!(stderr.contains("shard 0/3 is given more than once"), "{stderr}");

    let missing = ok(triage(&["replay", "merge", &p0, &p1]));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("shard 2/3 is missing"));

    let mut old = read_json(Path::new(&p1));
    old.as_object_mut().unwrap().remove("ruleset_queues");
    let old_path = dir.path().join("old.json");
    std::fs::write(&old_path, old.to_string()).unwrap();
    let refused = triage(&["replay", "merge", &p0, old_path.to_str().unwrap()]);
    assert_eq!(refused.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        stderr.contains("is not a replay summary that can be merged") && stderr.contains("ruleset_queues"),
        "{stderr}"
    );
}
