//! The self-contained HTML report.

use serde::Serialize;

use super::eval::Summary;

/// What the report says about the run itself.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Context {
    /// The ruleset (or server ruleset) that decided.
    pub ruleset_version: String,
    /// The compared ruleset, with `--compare-rules`.
    pub compare_version: Option<String>,
    /// The inputs as given.
    pub inputs: Vec<String>,
    /// `I/N` with `--shard`.
    pub shard: Option<String>,
    /// Wall time of the replay.
    pub elapsed_seconds: f64,
}

/// Renders the report page.
pub fn render(summary: &Summary, context: &Context) -> String {
    format!(
        "<!doctype html><pre>{} {}</pre>",
        summary.total, context.ruleset_version
    )
}
