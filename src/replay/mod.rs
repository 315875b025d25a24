//! Batch replay: historic tickets through the engine, with evaluation, a ruleset diff and reports.
//!
//! Layout, following the data:
//! - [`source`]: input files (JSONL, CSV, mbox, maildir, `.eml` folders, gzip) → [`Record`]s,
//!   streamed; reused by every batch command that reads tickets.
//! - [`run`]: the parallel runner: bounded chunks classified with rayon, written in input order.
//!   With `--server`, through a running `triage serve` ([`crate::server::client`]).
//! - [`outcome`]: one record's result: the output line and what evaluation needs.
//! - [`eval`]: accuracy, per-queue scores, confusion, calibration, rule mass-check, ruleset diff.
//! - [`report`]: the self-contained HTML report with inline SVG charts.
//! - [`merge`]: the summaries of `--shard` runs into the summary of the whole.
//!
//! Nothing is lost: every input record yields exactly one [`Outcome`], a verdict or an error.

pub mod eval;
pub mod merge;
pub mod outcome;
pub mod report;
pub mod run;
pub mod source;

use std::fmt;
use std::str::FromStr;

pub use eval::{Evaluation, Summary};
pub use outcome::Outcome;
pub use run::{Backend, Stats};
pub use source::{BadRecord, Format, Payload, Reader, Record};

/// Why a replay stopped. Per-record problems never stop it; they become error records.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReplayError {
    /// An input could not be opened or its format not recognised.
    #[error(transparent)]
    Source(#[from] source::SourceError),
    /// Writing the output failed.
    #[error("writing the output: {0}")]
    Output(#[source] std::io::Error),
    /// The server could not be reached or the stream broke (records would be lost).
    #[error(transparent)]
    Remote(#[from] crate::server::client::ClientError),
}

/// One of N parallel jobs: the records whose index modulo `count` is `index`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    /// This job's number, `0..count`.
    pub index: u64,
    /// How many jobs share the input.
    pub count: u64,
}

impl Shard {
    /// True when the record at `position` (0-based, over all inputs) belongs to this shard.
    pub fn owns(&self, position: u64) -> bool {
        position % self.count == self.index
    }
}

impl FromStr for Shard {
    type Err = String;

    /// Parses `I/N`, e.g. `0/4`.
    fn from_str(s: &str) -> Result<Shard, String> {
        let (i, n) = s
            .split_once('/')
            .ok_or_else(|| format!("expected I/N, got `{s}`"))?;
        let index: u64 = i.trim().parse().map_err(|_| format!("bad shard index `{i}`"))?;
        let count: u64 = n.trim().parse().map_err(|_| format!("bad shard count `{n}`"))?;
        if count == 0 || index >= count {
            return Err(format!("shard {index}/{count}: need 0 <= I < N"));
        }
        Ok(Shard { index, count })
    }
}

impl fmt::Display for Shard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_shard_parses_and_owns_every_nth_record() {
        let s: Shard = "1/3".parse().unwrap();
        let owned: Vec<u64> = (0..7).filter(|&p| s.owns(p)).collect();
        assert_eq!(owned, vec![1, 4]);
        assert!("3/3".parse::<Shard>().is_err());
        assert!("1-3".parse::<Shard>().is_err());
    }
}
