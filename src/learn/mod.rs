//! Learning from labelled history: the rule author's assistant, never an autopilot.
//!
//! [`learn`] measures the rules of a ruleset on labelled records (how often each fires, for
//! which labels), proposes new rules (words and two-word phrases characteristic of a queue),
//! fits every weight on the engine's own score scale, and cross-validates the result; [`render()`]
//! writes it all as a rule file for a person to review and merge.
//!
//! - [`corpus`]: records → labelled messages and their terms.
//! - `terms`: counting terms per queue; ranking by smoothed log-odds.
//! - `features`: rule and term firing values, computed by the engine itself.
//! - `model`: the sparse logistic regression whose coefficients are rule weights.
//! - `fit`: cross-validation and the final fit.
//! - `data`: what every fit shares, and one fit (TF-IDF-style scaling).
//! - [`render()`]: the suggestions as rule-file syntax.
//!
//! **Cross-validation** assigns each record to a fold by a hash of its position
//! ([`crate::calibrate::fold_of`], the same folds `triage calibrate` uses). Everything fitted
//! for a fold (the fallback queue, the candidate terms, the weights) reads the labels of the
//! other folds only.

pub mod corpus;
mod data;
mod features;
mod fit;
mod model;
pub mod render;
mod terms;

use std::collections::BTreeMap;

pub use corpus::{Corpus, Document};
pub use render::render;

use crate::rules::RuleSet;

/// How to learn.
#[derive(Debug, Clone)]
pub struct Options {
    /// Folds of the cross-validation (at least 2).
    pub folds: usize,
    /// Least number of records a new term must occur in.
    pub min_support: u32,
    /// Least share of a term's records that must belong to the queue it is proposed for.
    pub min_precision: f64,
    /// Most candidate terms per queue (and language); `None` for no limit.
    pub max_terms_per_queue: Option<usize>,
    /// L2 penalty, in records (`1/C` in scikit-learn's terms): higher keeps weights smaller.
    pub l2: f64,
    /// Most L-BFGS iterations of one fit.
    pub iterations: u64,
    /// Smallest weight worth writing; smaller ones are dropped.
    pub min_weight: f64,
    /// Most new rules: the strongest are kept and fitted again without the others.
    pub max_rules: Option<usize>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            folds: 5,
            min_support: 2,
            min_precision: 0.0,
            max_terms_per_queue: None,
            l2: 0.03,
            iterations: 300,
            min_weight: 0.05,
            max_rules: Some(50_000),
        }
    }
}

/// Why learning failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LearnError {
    /// No record has a label that names a queue.
    #[error("no labelled record names a queue{}", if .0.is_empty() { String::new() } else { format!(" (labels found: {})", .0.join(", ")) })]
    NoLabelledRecords(Vec<String>),
    /// A candidate term is not a valid rule term (a bug: terms are built from words).
    #[error("term `{0}`: {1}")]
    Term(String, String),
    /// The engine could not compile the probe ruleset.
    #[error("compiling the rules: {0}")]
    Compile(String),
}

/// Everything [`learn`] found.
#[derive(Debug, Clone)]
pub struct Learned {
    /// The queues, in ruleset order (for a new ruleset: the labels, sorted).
    pub queues: Vec<QueueReport>,
    /// Index of the fallback queue (for a new ruleset: the most frequent label).
    pub fallback: usize,
    /// True when there was no ruleset to start from.
    pub standalone: bool,
    /// Labelled records used.
    pub records: usize,
    /// Labels that name no queue of the ruleset, with their record counts (not used).
    pub unknown_labels: BTreeMap<String, u64>,
    /// Languages terms were counted per, when the history is multilingual (else empty).
    pub languages: Vec<String>,
    /// The existing rules, measured.
    pub existing: Vec<RuleReport>,
    /// The new rules, by queue, strongest first.
    pub suggestions: Vec<Suggestion>,
    /// Cross-validated accuracy before and after.
    pub validation: Validation,
    /// The temperature that calibrates the suggested weights (fitted out of fold).
    pub temperature: f64,
    /// The temperature the weights are scaled for (the ruleset's; 1 for a new ruleset).
    pub scale: f64,
    /// Short example messages for a new ruleset, as `(queue, body, language)`.
    pub examples: Vec<(usize, String, Option<String>)>,
}

/// A queue and where its records came from.
#[derive(Debug, Clone, PartialEq)]
pub struct QueueReport {
    /// The queue id.
    pub id: String,
    /// The labels, as written in the input, that name it.
    pub labels: Vec<String>,
    /// Labelled records of this queue.
    pub records: u64,
}

/// An existing rule, measured on the labelled records.
#[derive(Debug, Clone, PartialEq)]
pub struct RuleReport {
    /// Index of the rule in the ruleset.
    pub rule: usize,
    /// Records it fired on, per queue label.
    pub hits: Vec<u64>,
    /// The weight the fit suggests (0: the rule adds nothing, consider removing it).
    pub suggested: f64,
}

impl RuleReport {
    /// The share of its firings whose label is the rule's queue (`None` when it never fired).
    pub fn precision(&self, queue: usize) -> Option<f64> {
        let total: u64 = self.hits.iter().sum();
        (total > 0).then(|| self.hits[queue] as f64 / total as f64)
    }
}

/// A proposed rule: one word or phrase, evidence for (or against) one queue.
#[derive(Debug, Clone, PartialEq)]
pub struct Suggestion {
    /// Index of the queue.
    pub queue: usize,
    /// The folded word or phrase.
    pub term: String,
    /// The language the term was counted in (multilingual history only).
    pub language: Option<String>,
    /// The fitted weight (negative: evidence against the queue).
    pub weight: f64,
    /// Records of the queue holding the term.
    pub support: u32,
    /// Records holding the term, in any queue.
    pub documents: u32,
    /// Its log-odds z-score for the queue, when it was chosen for that queue.
    pub z: Option<f64>,
}

/// Cross-validated accuracy.
#[derive(Debug, Clone, PartialEq)]
pub struct Validation {
    /// Each fold's figures.
    pub folds: Vec<Fold>,
    /// Accuracy of the ruleset as it is (or of the fallback alone, for a new ruleset).
    pub before: f64,
    /// Accuracy with the suggestions applied, each fold fitted without its records.
    pub after: f64,
    /// Each record's queue as chosen by the model fitted without its fold.
    pub predicted: Vec<usize>,
}

/// One fold of the cross-validation.
#[derive(Debug, Clone, PartialEq)]
pub struct Fold {
    /// Records tested.
    pub tested: usize,
    /// Records fitted on.
    pub trained: usize,
    /// Right before the suggestions.
    pub right_before: usize,
    /// Right after.
    pub right_after: usize,
    /// The candidate terms chosen from the training records.
    pub terms: Vec<String>,
}

/// Learns from `corpus`: measures the rules of `base` and proposes weights and new rules; with
/// no `base`, proposes a complete ruleset for the corpus' labels.
pub fn learn(corpus: &Corpus, base: Option<&RuleSet>, options: &Options) -> Result<Learned, LearnError> {
    fit::run(corpus, base, options)
}
