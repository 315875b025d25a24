//! Subcommands of the `triage` binary. Results go to stdout (one JSON object per line); logs,
//! diagnostics and progress go to stderr. Exit codes: 0 success, 1 bad input or rules, 2 usage.

mod calibrate;
mod check;
mod classify;
mod config;
mod input;
mod learn;
mod parse;
mod replay;
mod replay_merge;
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
    /// Log format on stderr: text for people, json (one object per line) for log pipelines.
    #[arg(long, global = true, env = "TRIAGE_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Classify raw emails or plain-text files (stdin when none), one JSON verdict per input.
    Classify(classify::Args),
    /// Show how messages are read: decoded zones, headers and notes, one JSON object per input.
    Parse(parse::Args),
    /// Validate a ruleset and run the examples written in it.
    CheckRules(check::Args),
    /// Run the gRPC service (and the admin HTTP port).
    Serve(serve::Args),
    /// Replay historic tickets: verdicts, evaluation, ruleset diff and reports.
    Replay(replay::Args),
    /// Fit the score-to-confidence mapping on labelled history; propose thresholds.
    Calibrate(calibrate::Args),
    /// Measure rules on labelled history and suggest weights and new rules (a rule file).
    Learn(learn::Args),
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
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
    // Colours only for a terminal (and not under NO_COLOR): escape codes in a log file or a
    // collector are noise at best.
    use std::io::IsTerminal;
    let colour = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(colour)
        .with_writer(std::io::stderr);
    let _ = match cli.log_format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .try_init(),
    };
}

/// Runs the chosen subcommand.
pub fn run(cli: Cli, matches: &clap::ArgMatches) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Classify(args) => classify::run(args),
        Command::Parse(args) => parse::run(args),
        Command::CheckRules(args) => check::run(args),
        Command::Serve(args) => {
            let serve_matches = matches.subcommand_matches("serve").expect("clap matched serve");
            serve::run(args, serve_matches)
        }
        Command::Replay(args) => replay::run(args),
        Command::Calibrate(args) => calibrate::run(args),
        Command::Learn(args) => learn::run(args),
    }
}

/// Loads the ruleset named by `--rules`, or the default one (see `RuleSet::resolve`).
fn load_engine(rules: Option<&PathBuf>) -> anyhow::Result<triage::Engine> {
    let ruleset = triage::RuleSet::resolve(rules.map(PathBuf::as_path))?;
    Ok(triage::Engine::new(ruleset)?)
}
