//! `triage learn`: measures rules on labelled history and writes suggestions as a rule file.
//!
//! The output is checked before it is written: it must load (together with `--rules` when
//! given) and its examples must pass, so `triage check-rules` accepts it as it is.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{Context, bail};
use triage::learn::{self, Corpus, Learned, Options};
use triage::{Engine, RuleSet};

/// Arguments of `learn`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    inputs: super::input::InputArgs,
    /// The ruleset to measure and extend; without it, a complete new ruleset is proposed.
    #[arg(long)]
    rules: Option<PathBuf>,
    /// Where to write the suggestions (a rule file).
    #[arg(long, short)]
    output: PathBuf,
    /// Cross-validation folds.
    #[arg(long, default_value_t = Options::default().folds)]
    folds: usize,
    /// Least number of records a new term must occur in.
    #[arg(long, default_value_t = Options::default().min_support)]
    min_support: u32,
    /// Least share of a term's records that must carry the queue's label.
    #[arg(long, default_value_t = Options::default().min_precision)]
    min_precision: f64,
    /// Most candidate terms per queue (and language); 0 for no limit.
    #[arg(long, default_value_t = Options::default().max_terms_per_queue.unwrap_or(0))]
    max_terms_per_queue: usize,
    /// L2 penalty of the fit, in records (1/C in scikit-learn's terms): higher keeps weights
    /// smaller.
    #[arg(long, default_value_t = Options::default().l2)]
    l2: f64,
    /// Most L-BFGS iterations of one fit.
    #[arg(long, default_value_t = Options::default().iterations, hide = true)]
    iterations: u64,
    /// Smallest weight worth a rule.
    #[arg(long, default_value_t = Options::default().min_weight)]
    min_weight: f64,
    /// Most new rules: the strongest are kept and fitted again without the others (0: no
    /// limit but the L1 penalty's).
    #[arg(long, default_value_t = Options::default().max_rules.unwrap_or(0))]
    max_rules: usize,
    /// Name of a new ruleset (default: the output file's name).
    #[arg(long)]
    name: Option<String>,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    if !(0.0..=1.0).contains(&args.min_precision) {
        bail!("--min-precision must be within [0, 1]");
    }
    if !(args.l2.is_finite() && args.l2 > 0.0) {
        bail!("--l2 must be a positive number");
    }
    // Before minutes of fitting, not after: the file must be writable where it is asked for.
    if let Some(dir) = args.output.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let started = Instant::now();
    let base = match &args.rules {
        Some(dir) => Some(RuleSet::load(dir)?),
        None => None,
    };
    let corpus = Corpus::read(args.inputs.open()?, &args.inputs.limits());
    eprintln!(
        "learn: {} labelled records read ({} without a label, {} unreadable) in {:.1} s",
        corpus.documents.len(),
        corpus.unlabelled,
        corpus.bad,
        started.elapsed().as_secs_f64()
    );
    let options = Options {
        folds: args.folds,
        min_support: args.min_support,
        min_precision: args.min_precision,
        max_terms_per_queue: (args.max_terms_per_queue > 0).then_some(args.max_terms_per_queue),
        l2: args.l2,
        iterations: args.iterations,
        max_rules: (args.max_rules > 0).then_some(args.max_rules),
        min_weight: args.min_weight,
    };
    let mut learned = learn::learn(&corpus, base.as_ref(), &options)?;
    let name = args.name.clone().unwrap_or_else(|| {
        args.output
            .file_stem()
            .map_or("learned".into(), |s| s.to_string_lossy().into_owned())
    });
    let header = vec![
        "Suggestions by `triage learn`: review, prune, then merge.".to_string(),
        format!("Inputs: {}.", inputs(&args.inputs.input)),
        format!(
            "Options: --folds {} --min-support {} --min-precision {} --max-terms-per-queue {} --l2 {} --max-rules {} --min-weight {}.",
            options.folds,
            options.min_support,
            options.min_precision,
            options.max_terms_per_queue.unwrap_or(0),
            options.l2,
            options.max_rules.unwrap_or(0),
            options.min_weight
        ),
    ];
    let text = checked(&mut learned, base.as_ref(), &args.output, &name, &header)?;
    std::fs::write(&args.output, text).with_context(|| format!("writing {}", args.output.display()))?;
    report(&learned, base.as_ref());
    eprintln!(
        "learn: wrote {} ({} new rules) in {:.1} s",
        args.output.display(),
        learned.suggestions.len(),
        started.elapsed().as_secs_f64()
    );
    Ok(ExitCode::SUCCESS)
}

/// Renders the suggestions and loads them as the engine will; an example the engine routes
/// elsewhere (a word read as a signature, say) is dropped rather than shipped failing.
fn checked(
    learned: &mut Learned,
    base: Option<&RuleSet>,
    output: &Path,
    name: &str,
    header: &[String],
) -> anyhow::Result<String> {
    let file = output
        .file_name()
        .map_or("suggestions.toml".into(), |s| s.to_string_lossy().into_owned());
    loop {
        let text = learn::render(learned, base, name, header);
        let mut sources = match base {
            Some(rs) => sources(&rs.source)?,
            None => Vec::new(),
        };
        sources.retain(|(n, _)| Path::new(n).file_name() != Some(file.as_ref()));
        sources.push((file.clone(), text.clone().into_bytes()));
        let ruleset =
            RuleSet::from_sources(output, sources).context("the suggestions do not load (a bug)")?;
        let engine = Engine::new(ruleset)?;
        // Only a new ruleset has examples of its own; a base ruleset's examples are its own
        // business (check-rules reports them).
        let mut failed: Vec<usize> = match base {
            Some(_) => Vec::new(),
            None => engine
                .check_examples()
                .iter()
                .filter(|o| !o.passed)
                .map(|o| o.example)
                .collect(),
        };
        if failed.is_empty() {
            return Ok(text);
        }
        failed.sort_unstable_by(|a, b| b.cmp(a));
        for i in failed {
            learned.examples.remove(i);
        }
    }
}

/// The `*.toml` files of a ruleset directory, as `RuleSet::load` reads them.
fn sources(dir: &Path) -> anyhow::Result<Vec<(String, Vec<u8>)>> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let path = entry?.path();
        if path.extension().is_some_and(|e| e == "toml") && path.is_file() {
            out.push((path.display().to_string(), std::fs::read(&path)?));
        }
    }
    Ok(out)
}

fn inputs(paths: &[PathBuf]) -> String {
    let names: Vec<String> = paths
        .iter()
        .map(|p| {
            p.file_name()
                .map_or_else(|| p.display().to_string(), |n| n.to_string_lossy().into_owned())
        })
        .collect();
    names.join(", ")
}

/// The figures a rule author wants first, on stderr.
fn report(l: &Learned, base: Option<&RuleSet>) {
    let v = &l.validation;
    eprintln!(
        "learn: {} records, {} queues; cross-validated accuracy ({} folds): before {:.4}, after {:.4}",
        l.records,
        l.queues.len(),
        v.folds.len(),
        v.before,
        v.after
    );
    for (label, n) in &l.unknown_labels {
        eprintln!("learn: label `{label}` names no queue of the ruleset ({n} records not used)");
    }
    if let Some(rs) = base {
        let changed = l
            .existing
            .iter()
            .filter(|r| (r.suggested - rs.rules[r.rule].weight).abs() >= 0.01)
            .count();
        eprintln!(
            "learn: {} existing rules measured, {changed} weight changes suggested",
            l.existing.len()
        );
    }
    eprintln!(
        "learn: {} new rules; out-of-fold temperature {:.2}",
        l.suggestions.len(),
        l.temperature
    );
}
