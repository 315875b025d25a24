//! Evaluation: counts, accuracy, per-queue scores, confusion, calibration, the rule
//! mass-check and the ruleset diff, accumulated record by record in constant memory (maps keyed
//! by queue, language and rule, never by record).
//!
//! Precision, recall and accuracy count labelled, classified records only; error records are
//! counted in `errors` and nowhere else.

use std::collections::BTreeMap;

mod merge;
mod summary;

pub use merge::MergeError;
pub use summary::{
    AutoRouted, Comparison, LanguageScore, QueueScore, ReliabilityBin, RuleScore, Summary, Transition,
};

use super::outcome::Outcome;
use crate::calibrate::Reliability;

/// Accumulates outcomes; [`Evaluation::summary`] gives the figures.
#[derive(Debug, Clone, Default)]
pub struct Evaluation {
    queues: Vec<String>,
    total: u64,
    classified: u64,
    errors: u64,
    labelled: u64,
    correct: u64,
    distribution: BTreeMap<String, u64>,
    /// label → predicted → count.
    confusion: BTreeMap<String, BTreeMap<String, u64>>,
    languages: BTreeMap<String, Tally>,
    /// Calibration over ten confidence bins, labelled records only.
    reliability: Reliability,
    auto: u64,
    auto_labelled: u64,
    auto_correct: u64,
    rules: BTreeMap<String, RuleTally>,
    compare: Option<CompareTally>,
}

/// Labelled and correct counts.
#[derive(Debug, Clone, Copy, Default)]
struct Tally {
    total: u64,
    labelled: u64,
    correct: u64,
}

#[derive(Debug, Clone, Default)]
struct RuleTally {
    queue: String,
    against: bool,
    fired: u64,
    labelled: u64,
    correct: u64,
}

#[derive(Debug, Clone, Default)]
struct CompareTally {
    version: String,
    compared: u64,
    changed: u64,
    transitions: BTreeMap<(String, String), u64>,
    correct: u64,
    fixed: u64,
    broken: u64,
    /// Calibration under the compared ruleset (e.g. after `triage calibrate`).
    reliability: Reliability,
}

fn ratio(n: u64, d: u64) -> Option<f64> {
    (d > 0).then(|| n as f64 / d as f64)
}

impl Evaluation {
    /// An empty evaluation; `queues` orders the tables (ruleset order). `compare_version` is
    /// the compared ruleset's version with `--compare-rules`.
    pub fn new(queues: Vec<String>, compare_version: Option<String>) -> Evaluation {
        Evaluation {
            queues,
            compare: compare_version.map(|version| CompareTally {
                version,
                ..CompareTally::default()
            }),
            ..Evaluation::default()
        }
    }

    /// Counts one outcome.
    pub fn add(&mut self, o: &Outcome) {
        self.total += 1;
        let Ok(d) = &o.result else {
            self.errors += 1;
            return;
        };
        self.classified += 1;
        *self.distribution.entry(d.queue.clone()).or_default() += 1;
        let correct = o.correct();
        let lang = self.languages.entry(o.language_key().to_string()).or_default();
        lang.total += 1;
        if !d.needs_review {
            self.auto += 1;
        }
        if let (Some(label), Some(right)) = (&o.label, correct) {
            self.labelled += 1;
            self.correct += right as u64;
            lang.labelled += 1;
            lang.correct += right as u64;
            *self
                .confusion
                .entry(label.clone())
                .or_default()
                .entry(d.queue.clone())
                .or_default() += 1;
            self.reliability.add(d.confidence, right);
            if !d.needs_review {
                self.auto_labelled += 1;
                self.auto_correct += right as u64;
            }
        }
        for fired in &d.rules {
            let tally = self.rules.entry(fired.rule.clone()).or_insert_with(|| RuleTally {
                queue: fired.queue.clone(),
                against: fired.against,
                ..RuleTally::default()
            });
            tally.fired += 1;
            if let Some(label) = &o.label {
                tally.labelled += 1;
                tally.correct += (*label == fired.queue) as u64;
            }
        }
        if let (Some(cmp), Some(c)) = (&mut self.compare, &o.candidate) {
            cmp.compared += 1;
            if c.queue != d.queue {
                cmp.changed += 1;
                *cmp.transitions
                    .entry((d.queue.clone(), c.queue.clone()))
                    .or_default() += 1;
            }
            if let Some(label) = &o.label {
                let (before, after) = (d.queue == *label, c.queue == *label);
                cmp.correct += after as u64;
                cmp.fixed += (!before && after) as u64;
                cmp.broken += (before && !after) as u64;
                cmp.reliability.add(c.confidence, after);
            }
        }
    }

    /// The figures so far.
    pub fn summary(&self) -> Summary {
        let mut queues = self.queues.clone();
        let seen = self.confusion.keys().chain(self.distribution.keys());
        for q in seen {
            if !queues.contains(q) {
                queues.push(q.clone());
            }
        }
        let mut per_queue = BTreeMap::new();
        for q in &queues {
            let support: u64 = self.confusion.get(q).map_or(0, |row| row.values().sum());
            let predicted: u64 = self.confusion.values().filter_map(|row| row.get(q)).sum();
            let correct = self
                .confusion
                .get(q)
                .and_then(|row| row.get(q))
                .copied()
                .unwrap_or(0);
            let (precision, recall) = (ratio(correct, predicted), ratio(correct, support));
            let f1 = match (precision, recall) {
                (Some(p), Some(r)) if p + r > 0.0 => Some(2.0 * p * r / (p + r)),
                (Some(_), Some(_)) => Some(0.0),
                _ if support > 0 => Some(0.0),
                _ => None,
            };
            let routed = self.distribution.get(q).copied().unwrap_or(0);
            per_queue.insert(
                q.clone(),
                QueueScore {
                    precision,
                    recall,
                    f1,
                    support,
                    correct,
                    routed,
                },
            );
        }
        let f1s: Vec<f64> = per_queue
            .values()
            .filter(|s| s.support > 0)
            .filter_map(|s| s.f1)
            .collect();
        let reliability = self.reliability.bins();
        let ece = self.reliability.ece();
        let mut rules: Vec<RuleScore> = self
            .rules
            .iter()
            .map(|(rule, t)| RuleScore {
                rule: rule.clone(),
                queue: t.queue.clone(),
                against: t.against,
                fired: t.fired,
                labelled: t.labelled,
                correct: t.correct,
                precision: ratio(t.correct, t.labelled),
            })
            .collect();
        rules.sort_by(|a, b| b.fired.cmp(&a.fired).then_with(|| a.rule.cmp(&b.rule)));
        let compare = self.compare.as_ref().map(|c| {
            let mut transitions: Vec<Transition> = c
                .transitions
                .iter()
                .map(|((from, to), &count)| Transition {
                    from: from.clone(),
                    to: to.clone(),
                    count,
                })
                .collect();
            transitions.sort_by_key(|t| std::cmp::Reverse(t.count));
            Comparison {
                ruleset_version: c.version.clone(),
                compared: c.compared,
                changed: c.changed,
                transitions,
                correct: c.correct,
                accuracy: ratio(c.correct, self.labelled),
                fixed: c.fixed,
                broken: c.broken,
                reliability: c.reliability.bins(),
                ece: c.reliability.ece(),
            }
        });
        let unknown_labels = self
            .confusion
            .keys()
            .filter(|l| !self.queues.is_empty() && !self.queues.contains(l))
            .cloned()
            .collect();
        Summary {
            total: self.total,
            classified: self.classified,
            errors: self.errors,
            labelled: self.labelled,
            correct: self.correct,
            accuracy: ratio(self.correct, self.labelled),
            ece,
            changed: compare.as_ref().map(|c| c.changed),
            macro_f1: (!f1s.is_empty()).then(|| f1s.iter().sum::<f64>() / f1s.len() as f64),
            queues,
            ruleset_queues: self.queues.clone(),
            unknown_labels,
            per_queue,
            confusion: self.confusion.clone(),
            distribution: self.distribution.clone(),
            per_language: self
                .languages
                .iter()
                .map(|(l, t)| {
                    let score = LanguageScore {
                        total: t.total,
                        labelled: t.labelled,
                        correct: t.correct,
                        accuracy: ratio(t.correct, t.labelled),
                    };
                    (l.clone(), score)
                })
                .collect(),
            reliability,
            auto_routed: AutoRouted {
                count: self.auto,
                share: ratio(self.auto, self.classified),
                labelled: self.auto_labelled,
                correct: self.auto_correct,
                precision: ratio(self.auto_correct, self.auto_labelled),
            },
            rules,
            compare,
        }
    }
}
