//! The figures of a replay: the `--summary` JSON and the report's data.
//!
//! Beside every ratio stand the counts it was computed from (`correct` next to `accuracy`,
//! `confidence_millionths` next to a bin's mean confidence, ...), so that summaries of parts of
//! a replay (`--shard`) can be merged into exactly the summary of the whole (see
//! [`super::Evaluation::from_summary`]).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Everything a replay measured: the `--summary` JSON and the report's data.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Summary {
    /// Records read.
    pub total: u64,
    /// Records with a verdict.
    pub classified: u64,
    /// Error records (`total == classified + errors`).
    pub errors: u64,
    /// Classified records that carry a label.
    pub labelled: u64,
    /// Of them, routed to their label.
    pub correct: u64,
    /// Share of labelled records routed to their label, in [0, 1].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub accuracy: Option<f64>,
    /// Expected calibration error over 10 equal-width confidence bins.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ece: Option<f64>,
    /// Records whose queue differs under `--compare-rules`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub changed: Option<u64>,
    /// Mean F1 over queues with support.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub macro_f1: Option<f64>,
    /// Queues in ruleset order, then any other label seen.
    pub queues: Vec<String>,
    /// The ruleset's queues alone, in its order.
    pub ruleset_queues: Vec<String>,
    /// Labels that are not queues of the ruleset (a typo, or a corpus with its own labels):
    /// records carrying them can never be right.
    pub unknown_labels: Vec<String>,
    /// Per queue: precision, recall, F1, support (over labelled records) and how many were
    /// routed there (over all records).
    pub per_queue: BTreeMap<String, QueueScore>,
    /// Labelled records by label (rows) and chosen queue (columns).
    pub confusion: BTreeMap<String, BTreeMap<String, u64>>,
    /// Classified records per chosen queue.
    pub distribution: BTreeMap<String, u64>,
    /// Accuracy per language (the input's claim, else the detected language).
    pub per_language: BTreeMap<String, LanguageScore>,
    /// The reliability table: per confidence bin, mean confidence and accuracy.
    pub reliability: Vec<ReliabilityBin>,
    /// Records routed without review (`needs_review` false).
    pub auto_routed: AutoRouted,
    /// Per rule: how often it fired and, with labels, its precision; most fired first.
    pub rules: Vec<RuleScore>,
    /// The ruleset diff, with `--compare-rules`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub compare: Option<Comparison>,
}

/// One queue's scores.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct QueueScore {
    /// Correct / labelled records routed here.
    pub precision: Option<f64>,
    /// Correct / records labelled with this queue.
    pub recall: Option<f64>,
    /// Harmonic mean of precision and recall.
    pub f1: Option<f64>,
    /// Records labelled with this queue.
    pub support: u64,
    /// Labelled records routed here and labelled so.
    pub correct: u64,
    /// All records routed here.
    pub routed: u64,
}

/// Accuracy within one language.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct LanguageScore {
    /// Classified records in the language.
    pub total: u64,
    /// Of them, labelled.
    pub labelled: u64,
    /// Of those, right.
    pub correct: u64,
    /// `correct / labelled`.
    pub accuracy: Option<f64>,
}

/// One row of the reliability table (shared with `triage calibrate`).
pub type ReliabilityBin = crate::calibrate::Bin;

/// The share routed without review and how often that was right.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct AutoRouted {
    /// Records with `needs_review` false.
    pub count: u64,
    /// `count / classified`.
    pub share: Option<f64>,
    /// Of them, labelled.
    pub labelled: u64,
    /// Of those, right.
    pub correct: u64,
    /// Of those, right: auto-routing's precision.
    pub precision: Option<f64>,
}

/// The rule author's mass-check for one rule.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct RuleScore {
    /// The rule.
    pub rule: String,
    /// The queue it speaks for.
    pub queue: String,
    /// True for negative-weight rules (evidence against the queue).
    pub against: bool,
    /// Records it fired on.
    pub fired: u64,
    /// Of them, labelled.
    pub labelled: u64,
    /// Of those, labelled with the rule's queue.
    pub correct: u64,
    /// Share of its labelled hits whose label is the rule's queue.
    pub precision: Option<f64>,
}

/// What `--compare-rules` would change.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Comparison {
    /// The compared ruleset's version.
    pub ruleset_version: String,
    /// Records classified under both.
    pub compared: u64,
    /// Records whose queue changes.
    pub changed: u64,
    /// Changes by from → to queue, most frequent first.
    pub transitions: Vec<Transition>,
    /// Labelled records the compared ruleset routes to their label.
    pub correct: u64,
    /// Accuracy under the compared ruleset (labelled records).
    pub accuracy: Option<f64>,
    /// Changes from a wrong queue to the label.
    pub fixed: u64,
    /// Changes from the label to a wrong queue.
    pub broken: u64,
    /// Reliability table under the compared ruleset (labelled records).
    pub reliability: Vec<ReliabilityBin>,
    /// Expected calibration error under the compared ruleset.
    pub ece: Option<f64>,
}

/// One row of the transition table.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Transition {
    /// The queue under `--rules`.
    pub from: String,
    /// The queue under `--compare-rules`.
    pub to: String,
    /// Records moving so.
    pub count: u64,
}
