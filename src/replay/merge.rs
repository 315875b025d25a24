//! `triage replay merge`: the summaries of `--shard` runs (or of any replays of the same
//! ruleset) into the summary of the whole, equal to the one a single run would have written.
//!
//! A summary file is the [`Summary`] with the run it describes under `run` ([`Context`]). The
//! parts must come from the same ruleset (and the same `--compare-rules` ruleset, if any).
//! When every part is a shard of the same inputs, a shard given twice is refused (its records
//! would count twice) and missing shards are reported.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use super::Shard;
use super::eval::{Evaluation, MergeError, Summary};
use super::report::Context;

/// One summary file: the figures and the run they describe.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SummaryFile {
    /// The figures.
    #[serde(flatten)]
    pub summary: Summary,
    /// The run.
    pub run: Context,
}

/// Why summary files cannot be merged.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum MergeFilesError {
    /// Nothing to merge.
    #[error("no summaries to merge")]
    Empty,
    /// The parts were classified by different rulesets.
    #[error("summaries of different rulesets cannot be merged: {0} and {1}")]
    Ruleset(String, String),
    /// A shard appears twice: its records would be counted twice.
    #[error("shard {0} is given more than once")]
    DuplicateShard(String),
    /// The counts cannot be merged.
    #[error(transparent)]
    Merge(#[from] MergeError),
}

/// The merged summary file, and warnings for the person merging (missing shards).
#[derive(Debug, Clone, PartialEq)]
pub struct Merged {
    /// The summary of the whole, with the merged run.
    pub file: SummaryFile,
    /// What looks incomplete, e.g. `shard 2/3 is missing`.
    pub warnings: Vec<String>,
}

/// Merges summary files, in the order given (the result does not depend on it, except for the
/// order of `run.inputs`).
pub fn merge(parts: &[SummaryFile]) -> Result<Merged, MergeFilesError> {
    let first = parts.first().ok_or(MergeFilesError::Empty)?;
    let mut evaluation = Evaluation::from_summary(&first.summary)?;
    for part in &parts[1..] {
        if part.run.ruleset_version != first.run.ruleset_version {
            return Err(MergeFilesError::Ruleset(
                first.run.ruleset_version.clone(),
                part.run.ruleset_version.clone(),
            ));
        }
        evaluation.merge(&Evaluation::from_summary(&part.summary)?)?;
    }
    let warnings = check_shards(parts)?;
    let mut inputs: Vec<String> = Vec::new();
    for input in parts.iter().flat_map(|p| &p.run.inputs) {
        if !inputs.contains(input) {
            inputs.push(input.clone());
        }
    }
    let run = Context {
        ruleset_version: first.run.ruleset_version.clone(),
        compare_version: first.run.compare_version.clone(),
        inputs,
        shard: None,
        merged: parts.iter().flat_map(labels).collect(),
        // The parts ran side by side: the whole took as long as the longest.
        elapsed_seconds: parts.iter().map(|p| p.run.elapsed_seconds).fold(0.0, f64::max),
    };
    Ok(Merged {
        file: SummaryFile {
            summary: evaluation.summary(),
            run,
        },
        warnings,
    })
}

/// What a part stands for: its shard, the parts it was merged from, or `all`.
fn labels(part: &SummaryFile) -> Vec<String> {
    match (&part.run.shard, part.run.merged.is_empty()) {
        (Some(shard), _) => vec![shard.clone()],
        (None, false) => part.run.merged.clone(),
        (None, true) => vec!["all".to_string()],
    }
}

/// When every part is a shard of the same inputs: refuses a shard given twice, and warns of
/// the ones missing. Parts of other kinds (whole runs, other inputs) are merged as given.
fn check_shards(parts: &[SummaryFile]) -> Result<Vec<String>, MergeFilesError> {
    let same_inputs = parts.iter().all(|p| p.run.inputs == parts[0].run.inputs);
    let shards: Option<Vec<Shard>> = parts
        .iter()
        .flat_map(labels)
        .map(|l| l.parse::<Shard>().ok())
        .collect();
    let Some(shards) = shards.filter(|_| same_inputs) else {
        return Ok(Vec::new());
    };
    let count = shards[0].count;
    if shards.iter().any(|s| s.count != count) {
        return Ok(vec!["the parts are shards of different counts".to_string()]);
    }
    let mut seen = BTreeSet::new();
    for s in &shards {
        if !seen.insert(s.index) {
            return Err(MergeFilesError::DuplicateShard(s.to_string()));
        }
    }
    Ok((0..count)
        .filter(|i| !seen.contains(i))
        .map(|index| format!("shard {} is missing", Shard { index, count }))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn part(shard: Option<&str>, version: &str) -> SummaryFile {
        let mut e = Evaluation::new(vec!["a".into(), "b".into()], None);
        let o = crate::replay::Outcome::failed(
            crate::replay::outcome::Meta {
                position: 0,
                id: "1".into(),
                source: "x".into(),
                label: None,
                language: None,
            },
            "bad".into(),
        );
        e.add(&o);
        SummaryFile {
            summary: e.summary(),
            run: Context {
                ruleset_version: version.into(),
                compare_version: None,
                inputs: vec!["in.jsonl".into()],
                shard: shard.map(String::from),
                merged: Vec::new(),
                elapsed_seconds: 1.0,
            },
        }
    }

    #[test]
    fn shards_merge_into_one_run_over_their_inputs() {
        let m = merge(&[part(Some("0/2"), "v"), part(Some("1/2"), "v")]).unwrap();
        assert_eq!(m.file.summary.total, 2);
        assert_eq!(m.file.run.merged, ["0/2", "1/2"]);
        assert_eq!(m.file.run.shard, None);
        assert_eq!(m.file.run.inputs, ["in.jsonl"]);
        assert!(m.warnings.is_empty());
    }

    #[test]
    fn a_shard_given_twice_is_refused_and_a_missing_one_reported() {
        let twice = merge(&[part(Some("0/3"), "v"), part(Some("0/3"), "v")]);
        assert_eq!(twice, Err(MergeFilesError::DuplicateShard("0/3".into())));
        let missing = merge(&[part(Some("0/3"), "v"), part(Some("2/3"), "v")]).unwrap();
        assert_eq!(missing.warnings, ["shard 1/3 is missing"]);
    }

    #[test]
    fn merged_summaries_merge_again() {
        let first = merge(&[part(Some("0/3"), "v"), part(Some("1/3"), "v")])
            .unwrap()
            .file;
        let all = merge(&[first, part(Some("2/3"), "v")]).unwrap();
        assert_eq!(all.file.summary.total, 3);
        assert!(all.warnings.is_empty());
        assert_eq!(all.file.run.merged, ["0/3", "1/3", "2/3"]);
    }

    #[test]
    fn summaries_of_different_rulesets_are_refused() {
        let err = merge(&[part(None, "v1"), part(None, "v2")]).unwrap_err();
        assert_eq!(err, MergeFilesError::Ruleset("v1".into(), "v2".into()));
        assert_eq!(merge(&[]), Err(MergeFilesError::Empty));
    }
}
