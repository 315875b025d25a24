//! One intake: the same tickets (with and without a language hint) and the same raw emails give
//! the same verdict, apart from `id`, through every interface: gRPC `Classify` and
//! `ClassifyStream`, the webhook, `triage classify` (files and `--jsonl`), and `triage replay`
//! (in process and `--server`).

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use base64::Engine as _;
use serde_json::{Value, json};
use tokio_stream::StreamExt as _;
use triage::server::pb;

use crate::helpers::{TestServer, rules_dir};

/// One input, as every interface takes it.
struct Case {
    id: String,
    ticket: Option<Value>,
    raw: Option<(PathBuf, Vec<u8>)>,
    hint: Option<&'static str>,
}

fn data(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(path)
}

fn cases() -> Vec<Case> {
    let mut cases = Vec::new();
    let tickets = std::fs::read_to_string(data("dev/tickets.jsonl")).unwrap();
    // Hints: none, the right one, a wrong one (it must win everywhere alike), one with a region,
    // and one that is no language code (ignored with a note everywhere alike).
    let hints = [None, Some("es"), Some("de"), Some("en-GB"), Some("german")];
    for (i, line) in tickets.lines().step_by(6).enumerate() {
        let v: Value = serde_json::from_str(line).unwrap();
        let hint = hints[i % hints.len()];
        cases.push(Case {
            id: format!("t{i}"),
            ticket: Some(json!({
                "subject": v["subject"], "body": v["body"], "from": v["from"],
                "to": ["members@trustedshops.com"], "headers": {"X-Helpdesk": "zendesk"},
            })),
            raw: None,
            hint,
        });
    }
    let mut emails: Vec<PathBuf> = std::fs::read_dir(data("dev/emails"))
        .unwrap()
        .chain(std::fs::read_dir(data("cases")).unwrap())
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "eml"))
        .collect();
    emails.sort();
    for (i, path) in emails.into_iter().enumerate() {
        let bytes = std::fs::read(&path).unwrap();
        // Files on the command line carry no hint; the others get one on every other email.
        for hint in [None, Some("fr")] {
            cases.push(Case {
                id: format!("e{i}{}", hint.map_or("", |_| "h")),
                ticket: None,
                raw: Some((path.clone(), bytes.clone())),
                hint,
            });
        }
    }
    cases
}

/// The verdict without `id` (and without the keys replay adds).
fn verdict(v: &Value) -> Value {
    let keys = [
        "queue",
        "destination",
        "confidence",
        "needs_review",
        "ranking",
        "hits",
        "language",
        "ruleset_version",
        "notes",
    ];
    Value::Object(
        keys.iter()
            .filter_map(|k| v.get(*k).map(|x| (k.to_string(), x.clone())))
            .collect(),
    )
}

fn request(case: &Case) -> pb::ClassifyRequest {
    let input = match (&case.ticket, &case.raw) {
        (Some(t), _) => pb::classify_request::Input::Ticket(pb::Ticket {
            subject: t["subject"].as_str().unwrap().into(),
            body: t["body"].as_str().unwrap().into(),
            from: t["from"].as_str().unwrap_or_default().into(),
            to: vec!["members@trustedshops.com".into()],
            language: String::new(),
            headers: [("X-Helpdesk".to_string(), "zendesk".to_string())].into(),
        }),
        (None, Some((_, raw))) => pb::classify_request::Input::RawEmail(raw.clone().into()),
        (None, None) => unreachable!(),
    };
    pb::ClassifyRequest {
        id: case.id.clone(),
        input: Some(input),
        language: case.hint.unwrap_or_default().into(),
    }
}

/// The JSONL line `replay` and `classify --jsonl` read (and the webhook body, raw as base64);
/// `None` for an 8-bit email that a JSON string cannot carry.
fn line(case: &Case, raw_as_base64: bool) -> Option<Value> {
    let mut v = match (&case.ticket, &case.raw) {
        (Some(t), _) => t.clone(),
        (None, Some((_, raw))) if raw_as_base64 => {
            json!({ "raw_email": base64::engine::general_purpose::STANDARD.encode(raw) })
        }
        (None, Some((_, raw))) => json!({ "raw": String::from_utf8(raw.clone()).ok()? }),
        (None, None) => unreachable!(),
    };
    v["id"] = json!(case.id);
    if let Some(hint) = case.hint {
        v["language"] = json!(hint);
    }
    Some(v)
}

fn triage(args: &[&str], stdin: &[u8]) -> Vec<Value> {
    let mut child = Command::new(env!("CARGO_BIN_EXE_triage"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(stdin).unwrap();
    let out = child.wait_with_output().unwrap();
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn by_id(values: Vec<Value>) -> BTreeMap<String, Value> {
    values
        .into_iter()
        .map(|v| (v["id"].as_str().unwrap().to_string(), verdict(&v)))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_input_gets_the_same_verdict_through_every_interface() {
    let server = TestServer::start().await;
    let cases = cases();
    let rules = rules_dir();
    let rules = rules.to_str().unwrap();
    let mut seen: BTreeMap<&str, BTreeMap<String, Value>> = BTreeMap::new();

    let mut client = server.client().await;
    let mut unary = Vec::new();
    for case in &cases {
        let r = client.classify(request(case)).await.unwrap().into_inner();
        unary.push(serde_json::to_value(triage::server::convert::from_response(r).unwrap()).unwrap());
    }
    seen.insert("Classify", by_id(unary));

    let requests: Vec<_> = cases.iter().map(request).collect();
    let mut stream = client
        .classify_stream(tokio_stream::iter(requests))
        .await
        .unwrap()
        .into_inner();
    let mut streamed = Vec::new();
    while let Some(r) = stream.next().await {
        streamed
            .push(serde_json::to_value(triage::server::convert::from_response(r.unwrap()).unwrap()).unwrap());
    }
    seen.insert("ClassifyStream", by_id(streamed));

    let http = reqwest::Client::new();
    let mut webhook = Vec::new();
    for case in &cases {
        let response = http
            .post(server.admin_url("/v1/classify"))
            .json(&line(case, true).unwrap())
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{}", case.id);
        webhook.push(response.json::<Value>().await.unwrap());
    }
    seen.insert("webhook", by_id(webhook));

    let jsonl: Vec<u8> = cases
        .iter()
        .filter_map(|c| line(c, false))
        .flat_map(|l| format!("{l}\n").into_bytes())
        .collect();
    let url = server.url();
    let (local, remote, jsonl_out, files) = tokio::task::spawn_blocking({
        let jsonl = jsonl.clone();
        let rules = rules.to_string();
        let tickets: Vec<u8> = cases
            .iter()
            .filter(|c| c.ticket.is_some())
            .filter_map(|c| line(c, false))
            .flat_map(|l| format!("{l}\n").into_bytes())
            .collect();
        let files: Vec<(String, String)> = cases
            .iter()
            .filter(|c| c.raw.is_some() && c.hint.is_none())
            .map(|c| (c.id.clone(), c.raw.as_ref().unwrap().0.display().to_string()))
            .collect();
        move || {
            let local = triage(&["replay", "--rules", &rules, "--input", "-"], &jsonl);
            let remote = triage(&["replay", "--server", &url, "--input", "-"], &jsonl);
            let jsonl_out = triage(&["classify", "--rules", &rules, "--jsonl"], &tickets);
            let mut args = vec!["classify", "--rules", &rules];
            args.extend(files.iter().map(|(_, p)| p.as_str()));
            let by_path: BTreeMap<&str, &str> =
                files.iter().map(|(id, p)| (p.as_str(), id.as_str())).collect();
            let files = triage(&args, b"")
                .into_iter()
                .map(|mut v| {
                    let id = by_path[v["id"].as_str().unwrap()];
                    v["id"] = json!(id);
                    v
                })
                .collect::<Vec<_>>();
            (local, remote, jsonl_out, files)
        }
    })
    .await
    .unwrap();
    seen.insert("replay", by_id(local));
    seen.insert("replay --server", by_id(remote));
    seen.insert("classify --jsonl", by_id(jsonl_out));
    seen.insert("classify FILE", by_id(files));

    let reference = &seen["Classify"];
    assert_eq!(reference.len(), cases.len());
    for (interface, verdicts) in &seen {
        assert!(
            verdicts.len() >= 15,
            "{interface} answered only {} inputs",
            verdicts.len()
        );
        for (id, v) in verdicts {
            assert_eq!(v, &reference[id], "{interface} differs on {id}");
        }
    }
    // The hints reached the engine: a wrong hint is the verdict's language everywhere.
    assert!(reference.values().any(|v| v["language"] == "de"));
    assert!(
        reference
            .values()
            .any(|v| v["notes"].to_string().contains("not an ISO 639-1 code"))
    );
    server.stop().await;
}
