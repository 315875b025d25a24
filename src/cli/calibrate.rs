//! `triage calibrate`: fits the score → confidence mapping on labelled history and proposes
//! auto-route thresholds. See `triage::calibrate` for the method.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, bail};
use rayon::prelude::*;
use serde_json::json;
use triage::Engine;
use triage::calibrate::{self, Reliability, Sample};
use triage::engine::score::INPUT_NAMES;
use triage::mail::Limits;
use triage::replay::Record;
use triage::replay::run::message_of;

/// Arguments of `calibrate`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    inputs: super::input::InputArgs,
    /// The ruleset directory (default: rules/).
    #[arg(long, env = "TRIAGE_RULES")]
    rules: Option<PathBuf>,
    /// Cross-validation folds.
    #[arg(long, default_value_t = 5)]
    folds: usize,
    /// Where to write the fitted `[calibration]` (default: calibration.toml in the rules
    /// directory, which makes it part of the ruleset and its version).
    #[arg(long)]
    output: Option<PathBuf>,
    /// Measure and print only; write nothing.
    #[arg(long)]
    dry_run: bool,
    /// Also propose per-queue auto-route thresholds reaching this precision (e.g. 0.95).
    #[arg(long, value_name = "P")]
    target_precision: Option<f64>,
    /// Where to write the threshold proposal for review (it is never applied by itself).
    #[arg(long, default_value = "thresholds.proposed.toml")]
    thresholds_out: PathBuf,
    /// Further labelled requests (repeatable; read like --input) counted only for
    /// `contested_ceiling`: requests whose writer's standing is contested are a few in a
    /// hundred, so their accuracy needs more labelled requests than the confidence model,
    /// whose balance of requests and out-of-scope mail they would upset.
    #[arg(long, value_name = "FILE")]
    ceiling_input: Vec<PathBuf>,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    if let Some(p) = args.target_precision
        && !(0.0..=1.0).contains(&p)
    {
        bail!("--target-precision must be within [0, 1], got {p}");
    }
    let dir = args
        .rules
        .clone()
        .or_else(|| Path::new("rules").is_dir().then(|| PathBuf::from("rules")));
    let engine = super::load_engine(dir.as_ref())?;
    let limits = args.inputs.limits();
    let (records, errors): (Vec<_>, Vec<_>) = args.inputs.open()?.records().partition(Result::is_ok);
    let records: Vec<Record> = records.into_iter().filter_map(Result::ok).collect();
    let total = records.len() + errors.len();
    let rs = engine.ruleset();
    let samples: Vec<Option<Sample>> = records.par_iter().map(|r| sample(&engine, r, &limits)).collect();
    let unusable = samples.iter().filter(|s| s.is_none()).count();
    let samples: Vec<Sample> = samples.into_iter().flatten().collect();
    if samples.len() < args.folds.max(2) * 2 {
        bail!(
            "{} usable labelled records (labels must be queue ids of the ruleset); too few to calibrate",
            samples.len()
        );
    }

    let ceiling_samples: Vec<Sample> = if args.ceiling_input.is_empty() {
        Vec::new()
    } else {
        let reader = triage::replay::Reader::open(&args.ceiling_input, args.inputs.source_options())?;
        let (records, errors): (Vec<_>, Vec<_>) = reader.records().partition(Result::is_ok);
        if !errors.is_empty() {
            bail!(
                "{} unreadable records in --ceiling-input, the first: {}",
                errors.len(),
                errors
                    .into_iter()
                    .find_map(Result::err)
                    .map_or(String::new(), |e| format!("{}: {}", e.source, e.error))
            );
        }
        let records: Vec<Record> = records.into_iter().filter_map(Result::ok).collect();
        let usable: Vec<Sample> = records
            .par_iter()
            .filter_map(|r| sample(&engine, r, &limits))
            .collect();
        eprintln!(
            "--ceiling-input: {} records, {} labelled and usable, {} unusable",
            records.len(),
            usable.len(),
            records.len() - usable.len()
        );
        usable
    };

    let t0 = rs.calibration.temperature;
    let t = calibrate::fit_temperature(&samples, t0);
    let model = calibrate::fit_model(&samples, t, &ceiling_samples);
    let cv = calibrate::cross_validate(&samples, args.folds, t0, true, &ceiling_samples);
    let current = |s: &Sample| match &rs.calibration.model {
        Some(m) => s.model_confidence(t0, m),
        None => s.confidence(t0),
    };
    let before = Reliability::from_pairs(samples.iter().map(|s| (current(s), s.correct())));
    let after = Reliability::from_pairs(
        cv.confidences
            .iter()
            .zip(&samples)
            .map(|(&c, s)| (c, s.correct())),
    );
    let in_sample = Reliability::from_pairs(
        samples
            .iter()
            .map(|s| (s.model_confidence(t, &model), s.correct())),
    );
    let wrong_confident = |conf: &dyn Fn(usize) -> f64| {
        (0..samples.len())
            .filter(|&i| !samples[i].correct() && conf(i) >= 0.9)
            .count()
    };
    let wrong_before = wrong_confident(&|i| current(&samples[i]));
    let wrong_after = wrong_confident(&|i| cv.confidences[i]);
    let in_scope = samples.iter().filter(|s| s.gold != calibrate::NO_QUEUE).count();
    let contested = samples
        .iter()
        .chain(&ceiling_samples)
        .filter(|s| s.features.standing_contested > 0.0 && s.gold != calibrate::NO_QUEUE)
        .count();
    let accuracy = samples.iter().filter(|s| s.correct()).count() as f64 / in_scope.max(1) as f64;

    eprintln!(
        "{} records, {} labelled and usable, {} errors, {} unusable",
        total,
        samples.len(),
        errors.len(),
        unusable
    );
    eprintln!(
        "accuracy {accuracy:.4} ({} out-of-scope records); temperature {t0:.4} -> {t:.4}; model {model:?}",
        samples.len() - in_scope
    );
    eprintln!("{}", table("before (current temperature)", &before));
    eprintln!(
        "{}",
        table(&format!("after ({}-fold cross-validated)", args.folds), &after)
    );
    eprintln!(
        "wrong verdicts at confidence >= 0.9: before {wrong_before}, after {wrong_after} (cross-validated)"
    );

    let mut written = None;
    if !args.dry_run {
        let path = match (&args.output, &dir) {
            (Some(p), _) => p.clone(),
            (None, Some(d)) => d.join("calibration.toml"),
            (None, None) => bail!("no rules directory to write into: pass --rules or --output"),
        };
        if args.output.is_none()
            && let Some(d) = &dir
        {
            refuse_second_calibration(d, &path)?;
        }
        let inputs: Vec<String> = args
            .inputs
            .input
            .iter()
            .map(|p| p.display().to_string())
            .collect();
        let ceiling_inputs: Vec<String> = args
            .ceiling_input
            .iter()
            .map(|p| p.display().to_string())
            .collect();
        let ceiling_note = if ceiling_inputs.is_empty() {
            String::new()
        } else {
            format!(
                "# The ceiling also counts {} labelled records more ({}).\n",
                ceiling_samples.len(),
                ceiling_inputs.join(", ")
            )
        };
        let mut text = format!(
            "# Written by `triage calibrate` from {} labelled records ({}).\n{ceiling_note}\
             # Temperature scaling fitted by maximum likelihood, then a logistic confidence model\n\
             # (margin, other strong queues, evidence from the thread, addressed to us, text the\n\
             # ruleset knows nothing of, the writer's standing unknown), and a ceiling on verdicts\n\
             # whose writer's standing is contested; accuracy {accuracy:.4}.\n\
             # ECE before {:.4}; {}-fold cross-validated ECE after {:.4}.\n\
             [calibration]\ntemperature = {:.4}\nintercept = {:.4}\n",
            samples.len(),
            inputs.join(", "),
            before.ece().unwrap_or(0.0),
            args.folds,
            after.ece().unwrap_or(0.0),
            t,
            model.intercept,
        );
        for (name, w) in INPUT_NAMES.iter().zip(model.weights) {
            writeln!(text, "{name} = {w:.4}")?;
        }
        if let Some(c) = model.contested_ceiling {
            writeln!(
                text,
                "# the share of the {contested} requests whose writer's standing was contested that were right\n\
                 contested_ceiling = {c:.4}"
            )?;
        }
        std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
        eprintln!("wrote {}", path.display());
        written = Some(path.display().to_string());
    }

    let mut proposals = None;
    if let Some(target) = args.target_precision {
        let queues: Vec<(String, f64)> = rs.queues.iter().map(|q| (q.id.clone(), q.threshold)).collect();
        let p = calibrate::propose_thresholds(&samples, &cv.confidences, &queues, target);
        std::fs::write(&args.thresholds_out, proposal_text(&p, target, samples.len()))
            .with_context(|| format!("writing {}", args.thresholds_out.display()))?;
        eprintln!("threshold proposal for review: {}", args.thresholds_out.display());
        for q in &p {
            eprintln!(
                "  {:<18} {:.2} -> {:.4}  precision {}  coverage {:.2}  ({} verdicts)",
                q.queue,
                q.current,
                q.threshold,
                q.precision.map_or("n/a".to_string(), |v| format!("{v:.3}")),
                q.coverage,
                q.support
            );
        }
        proposals = Some(p);
    }

    let mut model_json = serde_json::Map::new();
    model_json.insert("intercept".into(), json!(model.intercept));
    for (name, w) in INPUT_NAMES.iter().zip(model.weights) {
        model_json.insert((*name).into(), json!(w));
    }
    model_json.insert("contested_ceiling".into(), json!(model.contested_ceiling));
    model_json.insert("contested_verdicts".into(), json!(contested));
    let summary = json!({
        "records": total,
        "labelled": samples.len(),
        "errors": errors.len(),
        "unusable": unusable,
        "accuracy": accuracy,
        "temperature_before": t0,
        "temperature": t,
        "model": model_json,
        "fold_temperatures": cv.temperatures,
        "ece_before": before.ece(),
        "ece_cv": after.ece(),
        "ece_in_sample": in_sample.ece(),
        "wrong_at_0_9_before": wrong_before,
        "wrong_at_0_9_cv": wrong_after,
        "reliability_before": before.bins(),
        "reliability_cv": after.bins(),
        "written": written,
        "thresholds": proposals,
    });
    println!("{summary}");
    Ok(ExitCode::SUCCESS)
}

/// The sample for one labelled record, or `None` when it has no usable label or message. A
/// record labelled `none` (out-of-scope mail: spam, newsletters, strangers' mail) is right only
/// where no human gets it: in the ruleset's `auto_reply` queue; anywhere else no queue is right.
fn sample(engine: &Engine, record: &Record, limits: &Limits) -> Option<Sample> {
    let rs = engine.ruleset();
    let label = triage::rules::queue_id(record.label.as_deref()?);
    let message = message_of(&record.payload, record.hint.as_deref(), limits).ok()?;
    let d = engine.detailed(&record.id, &message);
    let gold = if label == "none" {
        match rs.queue_index("auto_reply") {
            Some(q) if d.verdict.queue == "auto_reply" => q,
            _ => calibrate::NO_QUEUE,
        }
    } else {
        rs.queue_index(&label)?
    };
    let scores = rs
        .queues
        .iter()
        .map(|q| {
            d.verdict
                .ranking
                .iter()
                .find(|r| r.queue == q.id)
                .map_or(0.0, |r| r.score)
        })
        .collect();
    Some(Sample {
        scores,
        gold,
        chosen: rs.queue_index(&d.verdict.queue)?,
        features: d.features,
    })
}

/// A `[calibration]` table in another file of the directory would make the ruleset invalid.
fn refuse_second_calibration(dir: &Path, target: &Path) -> anyhow::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.extension().is_some_and(|e| e == "toml") && path.file_name() != target.file_name() {
            let text = std::fs::read_to_string(&path).unwrap_or_default();
            if text.lines().any(|l| l.trim_start().starts_with("[calibration]")) {
                bail!(
                    "{} already holds a [calibration] table: remove it or pass --output",
                    path.display()
                );
            }
        }
    }
    Ok(())
}

fn table(title: &str, r: &Reliability) -> String {
    let mut out = format!(
        "reliability {title}: ECE {:.4}\n  bin        n   confidence  accuracy",
        r.ece().unwrap_or(0.0)
    );
    for b in r.bins().iter().filter(|b| b.count > 0) {
        let _ = write!(
            out,
            "\n  {:.1}-{:.1} {:>5}   {:>9.3}  {:>8.3}",
            b.lower,
            b.upper,
            b.count,
            b.confidence.unwrap_or(0.0),
            b.accuracy.unwrap_or(0.0)
        );
    }
    out
}

fn proposal_text(proposals: &[calibrate::ThresholdProposal], target: f64, n: usize) -> String {
    let mut out = format!(
        "# Auto-route thresholds proposed by `triage calibrate --target-precision {target}` from {n}\n\
         # labelled records (cross-validated confidences). Review, then copy a threshold into its\n\
         # queue's [[queue]] table. This file is not a rule file: keep it out of the rules directory.\n"
    );
    for p in proposals {
        let _ = write!(
            out,
            "\n[[proposal]]\nqueue = \"{}\"\ncurrent = {}\nthreshold = {}\n# precision {}, coverage {:.3}, {} verdicts\n",
            p.queue,
            p.current,
            p.threshold,
            p.precision
                .map_or("not reachable".to_string(), |v| format!("{v:.3}")),
            p.coverage,
            p.support
        );
    }
    out
}
