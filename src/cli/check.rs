//! `triage check-rules [DIR]`.

use std::path::PathBuf;
use std::process::ExitCode;

use triage::rules::{Expectation, LoadError};
use triage::{Engine, RuleSet};

/// Arguments of `check-rules`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The ruleset directory (default: rules/, or the built-in ruleset when there is none).
    dir: Option<PathBuf>,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let ruleset = match RuleSet::resolve(args.dir.as_deref()) {
        Ok(rs) => rs,
        Err(LoadError::Invalid(problems)) => {
            for p in &problems {
                eprintln!("{p}");
            }
            eprintln!("{} problem(s); the ruleset was not loaded", problems.len());
            return Ok(ExitCode::from(1));
        }
        Err(e) => return Err(e.into()),
    };
    let engine = Engine::new(ruleset)?;
    let outcomes = engine.check_examples();
    let rs = engine.ruleset();
    let mut failed = 0;
    for o in outcomes.iter().filter(|o| !o.passed) {
        failed += 1;
        let ex = &rs.examples[o.example];
        let expected = match &ex.expect {
            Expectation::Queue(q) => format!("expected {q}"),
            Expectation::Not(q) => format!("expected anything but {q}"),
        };
        let evidence: Vec<String> = o
            .verdict
            .hits
            .iter()
            .take(3)
            .map(|h| format!("{} ({:+})", h.rule, h.weight))
            .collect();
        eprintln!(
            "{}: example routed to {} ({:.2}), {expected}; evidence: {}",
            ex.location,
            o.verdict.queue,
            o.verdict.confidence,
            if evidence.is_empty() {
                "none".to_string()
            } else {
                evidence.join(", ")
            }
        );
    }
    let summary = serde_json::json!({
        "ok": failed == 0,
        "ruleset": rs.name,
        "source": rs.source.display().to_string(),
        "version": rs.version,
        "queues": rs.queues.len(),
        "rules": rs.rules.len(),
        "terms": engine.term_count(),
        "examples": outcomes.len(),
        "examples_failed": failed,
    });
    println!("{summary}");
    if failed > 0 {
        eprintln!("{failed} of {} example(s) failed", outcomes.len());
        return Ok(ExitCode::from(1));
    }
    eprintln!(
        "ok: {} queues, {} rules, {} terms, {} examples pass, version {}",
        rs.queues.len(),
        rs.rules.len(),
        engine.term_count(),
        outcomes.len(),
        rs.version
    );
    Ok(ExitCode::SUCCESS)
}
