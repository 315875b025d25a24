//! Reported faults, as small messages (`tests/data/cases/`, copied from the project's shared
//! cases), and our own variants of each kind in other languages, encodings and clients
//! (`tests/data/cases/variants/`). Every one goes through the one intake, as every interface does.

use std::path::{Path, PathBuf};

use serde_json::Value;
use triage::intake::{Input, intake};
use triage::mail::Limits;
use triage::{Engine, Message, RuleSet};

fn dir(sub: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/cases")
        .join(sub)
}

fn cases(sub: &str) -> Vec<(Value, Message)> {
    let expected = std::fs::read_to_string(dir(sub).join("expected.jsonl")).unwrap();
    expected
        .lines()
        .map(|line| {
            let entry: Value = serde_json::from_str(line).unwrap();
            let raw = std::fs::read(dir(sub).join(entry["file"].as_str().unwrap())).unwrap();
            let message = intake(Input::Raw(&raw), None, &Limits::default()).unwrap();
            (entry, message)
        })
        .collect()
}

fn engine() -> Engine {
    Engine::new(RuleSet::builtin()).unwrap()
}

#[test]
fn every_reported_mail_case_routes_to_its_queue_with_the_confidence_it_asks_for() {
    let engine = engine();
    let mut failed = Vec::new();
    let all = cases("");
    assert_eq!(all.len(), 5);
    for (entry, message) in all {
        let v = engine.classify(entry["file"].as_str().unwrap(), &message);
        let min = entry["min_confidence"].as_f64().unwrap();
        if v.queue != entry["queue"] || v.confidence < min {
            failed.push(format!(
                "{}: {} at {} (wanted {} at >= {min}); fault: {}",
                entry["file"], v.queue, v.confidence, entry["queue"], entry["fault"]
            ));
        }
    }
    assert!(failed.is_empty(), "{failed:#?}");
}

#[test]
fn variants_of_each_fault_kind_are_read_right_and_route_confidently() {
    let engine = engine();
    let mut failed = Vec::new();
    let all = cases("variants");
    assert!(all.len() >= 7);
    for (entry, message) in all {
        let file = entry["file"].as_str().unwrap();
        let v = engine.classify(file, &message);
        let mut check = |ok: bool, what: &str| {
            if !ok {
                failed.push(format!("{file}: {what}; {message:?}"));
            }
        };
        check(
            v.queue == entry["queue"] && v.confidence >= 0.9,
            &format!("{} at {}", v.queue, v.confidence),
        );
        if let Some(subject) = entry["subject"].as_str() {
            check(message.subject == subject, "subject decoded wrong");
        }
        if let Some(from) = entry["from"].as_str() {
            check(message.from == from, "display name decoded wrong");
        }
        if let Some(text) = entry["body_contains"].as_str() {
            check(message.body.contains(text), "request not in the new text");
        }
        if entry["quoted_empty"] == true {
            check(message.quoted.is_empty(), "own text taken for history");
        }
        if let Some(text) = entry["signature_contains"].as_str() {
            check(
                message.signature.contains(text),
                "disclaimer not in the signature",
            );
        }
    }
    assert!(failed.is_empty(), "{failed:#?}");
}
