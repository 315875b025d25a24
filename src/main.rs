//! The `triage` command line: parses arguments and calls the library.

mod cli;

use std::process::ExitCode;

use clap::{CommandFactory, FromArgMatches};

// Classification allocates many small strings per call; mimalloc's thread-local free lists
// beat the system allocator under concurrent load (see README, benchmarks).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let matches = cli::Cli::command().get_matches();
    let args = cli::Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    cli::init_logging(&args);
    match cli::run(args, &matches) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(1)
        }
    }
}
