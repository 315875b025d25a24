//! `triage replay merge SUMMARY...`: the `--summary` files of `--shard` runs into the summary
//! of the whole, as a single run would have written it; optionally its HTML report.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use triage::replay::merge::{self, SummaryFile};
use triage::replay::report;

/// Arguments of `replay merge`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Summary files written by `triage replay --summary` (or by an earlier merge).
    #[arg(required = true, value_name = "SUMMARY")]
    summaries: Vec<PathBuf>,
    /// Also write the merged summary here, indented as `replay --summary` writes it.
    #[arg(long)]
    summary: Option<PathBuf>,
    /// Write the self-contained HTML report of the merged summary here.
    #[arg(long)]
    report: Option<PathBuf>,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let parts = args
        .summaries
        .iter()
        .map(read)
        .collect::<anyhow::Result<Vec<SummaryFile>>>()?;
    let merged = merge::merge(&parts)?;
    for warning in &merged.warnings {
        eprintln!("replay merge: {warning}");
    }
    let value = serde_json::to_value(&merged.file)?;
    if let Some(path) = &args.summary {
        std::fs::write(path, format!("{value:#}\n"))
            .with_context(|| format!("writing {}", path.display()))?;
    }
    if let Some(path) = &args.report {
        std::fs::write(path, report::render(&merged.file.summary, &merged.file.run))
            .with_context(|| format!("writing {}", path.display()))?;
    }
    println!("{value}");
    let s = &merged.file.summary;
    eprintln!(
        "replay merge: {} summaries, {} records, {} classified, {} errors",
        parts.len(),
        s.total,
        s.classified,
        s.errors
    );
    Ok(ExitCode::SUCCESS)
}

fn read(path: &PathBuf) -> anyhow::Result<SummaryFile> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| {
        format!(
            "{} is not a replay summary that can be merged (summaries written before `replay merge` \
             existed lack the counts it needs: replay again)",
            path.display()
        )
    })
}
