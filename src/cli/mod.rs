//! Subcommands of the `triage` binary. Results go to stdout (one JSON object per line); logs,
//! diagnostics and progress go to stderr. Exit codes: 0 success, 1 bad input or rules, 2 usage.

mod calibrate;
mod check;
mod classify;
mod input;
mod replay;
mod serve;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Routes support messages to the team queue that owns them.
#[derive(Debug, Parser)]
#[command(name = "triage", version, about)]
pub struct Cli {
    /// Log level when RUST_LOG is not set (error, warn, info, debug, trace).
    #[arg(long, global = true, env = "TRIAGE_LOG_LEVEL")]
    log_level: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Classify raw emails or plain-text files (stdin when none), one JSON verdict per input.
    Classify(classify::Args),
    /// Validate a ruleset and run the examples written in it.
    CheckRules(check::Args),
    /// Run the gRPC service (and the admin HTTP port).
    Serve(serve::Args),
    /// Replay historic tickets: verdicts, evaluation, ruleset diff and reports.
    Replay(replay::Args),
    /// Fit the score-to-confidence mapping on labelled history; propose thresholds.
    Calibrate(calibrate::Args),
}

/// Sets up logging to stderr: `RUST_LOG` wins, then `--log-level`, then `warn`.
pub fn init_logging(cli: &Cli) {
    let fallback = if matches!(cli.command, Command::Serve(_)) {
        "info"
    } else {
        "warn"
    };
    let default = cli.log_level.clone().unwrap_or_else(|| fallback.to_string());
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

/// Runs the chosen subcommand.
pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Classify(args) => classify::run(args),
        Command::CheckRules(args) => check::run(args),
        Command::Serve(args) => serve::run(args),
        Command::Replay(args) => replay::run(args),
        Command::Calibrate(args) => calibrate::run(args),
    }
}

/// Loads the ruleset named by `--rules`, or the default one (see `RuleSet::resolve`).
fn load_engine(rules: Option<&PathBuf>) -> anyhow::Result<triage::Engine> {
    let ruleset = triage::RuleSet::resolve(rules.map(PathBuf::as_path))?;
    Ok(triage::Engine::new(ruleset)?)
}
