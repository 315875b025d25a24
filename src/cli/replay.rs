//! `triage replay`: historic tickets through the rules, with evaluation, diff and reports.
//!
//! Exit code 0 when the replay ran to the end, whatever the records held: bad records are
//! error records in the output and counted in the summary. 1 when it could not run or finish
//! (an input missing, the output unwritable, the server unreachable).

use std::fs::File;
use std::io::{BufWriter, IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde_json::json;
use triage::replay::run::{self, Classifier, RunOptions};
use triage::replay::{Backend, Evaluation, Shard, Stats, Summary, report};
use triage::server::client::Client;
use triage::{Engine, RuleSet};

/// Arguments of `replay`.
#[derive(Debug, clap::Args)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
pub struct Args {
    #[command(subcommand)]
    command: Option<Subcommand>,
    #[command(flatten)]
    inputs: super::input::InputArgs,
    /// Where to write one JSON record per input record (default: stdout).
    #[arg(long, short)]
    output: Option<PathBuf>,
    /// The ruleset directory (default: rules/, or the built-in ruleset when there is none).
    #[arg(long, env = "TRIAGE_RULES")]
    rules: Option<PathBuf>,
    /// A second ruleset: classify under both and report what would change.
    #[arg(long)]
    compare_rules: Option<PathBuf>,
    /// With --compare-rules: write the records whose queue changes here (JSON lines).
    #[arg(long, requires = "compare_rules")]
    changes: Option<PathBuf>,
    /// Write the evaluation as JSON here.
    #[arg(long)]
    summary: Option<PathBuf>,
    /// Write a self-contained HTML report here.
    #[arg(long)]
    report: Option<PathBuf>,
    /// Process only records whose index modulo N is I (e.g. 0/4).
    #[arg(long, value_name = "I/N")]
    shard: Option<Shard>,
    /// Classify through a running `triage serve` (e.g. http://127.0.0.1:50051).
    #[arg(long, value_name = "URL")]
    server: Option<String>,
    /// Bearer token for a server that requires authentication.
    #[arg(
        long,
        env = "TRIAGE_SERVER_TOKEN",
        hide_env_values = true,
        requires = "server"
    )]
    server_token: Option<String>,
    /// Streams opened at once per chunk with --server.
    #[arg(long, default_value_t = 4)]
    server_streams: usize,
    /// Worker threads (default: all cores).
    #[arg(long)]
    threads: Option<usize>,
    /// Records per chunk (memory is bounded by about three chunks).
    #[arg(long, default_value_t = RunOptions::default().chunk_records, hide = true)]
    chunk: usize,
}

/// What `replay` does besides replaying.
#[derive(Debug, clap::Subcommand)]
enum Subcommand {
    /// Merge the --summary files of --shard runs into the summary of the whole (on stdout).
    Merge(super::replay_merge::Args),
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    if let Some(Subcommand::Merge(merge)) = args.command {
        return super::replay_merge::run(merge);
    }
    if let Some(threads) = args.threads {
        rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build_global()
            .context("starting the worker threads")?;
    }
    let limits = args.inputs.limits();
    let reader = args.inputs.open()?;

    let candidate = match &args.compare_rules {
        Some(dir) => Some(Engine::new(RuleSet::load(dir)?)?),
        None => None,
    };
    let (backend, version, queues) = match &args.server {
        Some(url) => {
            let remote = Client::connect(url, args.server_streams, args.server_token.as_deref())?;
            let (version, queues) = remote.ruleset()?;
            (Backend::Remote(remote), version, queues)
        }
        None => {
            let engine = super::load_engine(args.rules.as_ref())?;
            let rs = engine.ruleset();
            let queues = rs.queues.iter().map(|q| q.id.clone()).collect();
            let version = rs.version.clone();
            (Backend::Local(engine), version, queues)
        }
    };
    let compare_version = candidate.as_ref().map(|e| e.ruleset().version.clone());
    let classifier = Classifier {
        backend,
        candidate,
        limits,
    };
    let options = RunOptions {
        shard: args.shard,
        chunk_records: args.chunk.max(1),
        ..RunOptions::default()
    };

    let mut out: Box<dyn Write + Send> = match &args.output {
        Some(path) => Box::new(BufWriter::with_capacity(
            1 << 20,
            File::create(path).with_context(|| format!("creating {}", path.display()))?,
        )),
        None => Box::new(BufWriter::with_capacity(1 << 20, std::io::stdout())),
    };
    let mut changes = match &args.changes {
        Some(path) => Some(BufWriter::new(
            File::create(path).with_context(|| format!("creating {}", path.display()))?,
        )),
        None => None,
    };
    let progress = progress_bar();
    let mut evaluation = Evaluation::new(queues, compare_version.clone());
    let stats = run::run(reader, &classifier, &options, &mut out, |outcome| {
        evaluation.add(outcome);
        progress.inc(1);
        if let (Some(file), Some(line)) = (&mut changes, outcome.change_line()) {
            writeln!(file, "{line}").map_err(triage::replay::ReplayError::Output)?;
        }
        Ok(())
    })?;
    progress.finish_and_clear();
    drop(out);
    if let Some(mut file) = changes {
        file.flush().context("writing the changes file")?;
    }

    let summary = evaluation.summary();
    let context = report::Context {
        ruleset_version: version,
        compare_version,
        inputs: args
            .inputs
            .input
            .iter()
            .map(|p| p.display().to_string())
            .collect(),
        shard: args.shard.map(|s| s.to_string()),
        merged: Vec::new(),
        elapsed_seconds: stats.elapsed.as_secs_f64(),
    };
    if let Some(path) = &args.summary {
        let mut value = serde_json::to_value(&summary)?;
        value["run"] = json!(context);
        std::fs::write(path, format!("{value:#}\n"))
            .with_context(|| format!("writing {}", path.display()))?;
    }
    if let Some(path) = &args.report {
        std::fs::write(path, report::render(&summary, &context))
            .with_context(|| format!("writing {}", path.display()))?;
    }
    eprintln!("{}", one_line(&stats, &summary));
    Ok(ExitCode::SUCCESS)
}

/// A spinner with the count and rate when stderr is a terminal; nothing otherwise.
fn progress_bar() -> ProgressBar {
    if !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
    bar.set_style(
        ProgressStyle::with_template("{spinner} {human_pos} records  {per_sec}  {elapsed}")
            .unwrap_or_else(|_| ProgressStyle::default_spinner()),
    );
    bar.enable_steady_tick(std::time::Duration::from_millis(200));
    bar
}

/// The closing line on stderr.
fn one_line(stats: &Stats, s: &Summary) -> String {
    let secs = stats.elapsed.as_secs_f64();
    let rate = if secs > 0.0 {
        stats.total as f64 / secs
    } else {
        0.0
    };
    let mut line = format!(
        "replay: {} records, {} classified, {} errors",
        s.total, s.classified, s.errors
    );
    if let Some(a) = s.accuracy {
        line += &format!(", accuracy {:.1}% of {} labelled", a * 100.0, s.labelled);
    }
    if let Some(c) = s.changed {
        line += &format!(", {c} changed");
    }
    line + &format!(" ({rate:.0} records/s, {secs:.2} s)")
}
