//! Evaluations merged: the counts of parts of a replay added into the counts of the whole.
//!
//! Every figure of a [`Summary`] is computed from integer counts and from exact sums of
//! confidences (see [`crate::calibrate::reliability`]), and a summary carries all of them; so
//! an evaluation rebuilt from each part's summary and merged gives, figure for figure and bit
//! for bit, the summary a single run over the whole would have given.

use std::collections::BTreeMap;

use super::{CompareTally, Evaluation, RuleTally, Summary, Tally};
use crate::calibrate::Reliability;

/// Why summaries cannot be merged.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum MergeError {
    /// The parts were classified by rulesets with different queues: their tables do not line up.
    #[error("the summaries come from rulesets with different queues: {0:?} and {1:?}")]
    Queues(Vec<String>, Vec<String>),
    /// One part compared with another ruleset (`--compare-rules`) than the other, or did not.
    #[error("the summaries compare with different rulesets: {0:?} and {1:?}")]
    Compared(Option<String>, Option<String>),
    /// A summary's counts contradict each other (edited by hand, or truncated).
    #[error("the summary is inconsistent: {0}")]
    Inconsistent(String),
}

impl Evaluation {
    /// Rebuilds the evaluation `s` was computed from, so that it can be merged.
    pub fn from_summary(s: &Summary) -> Result<Evaluation, MergeError> {
        let bad = MergeError::Inconsistent;
        if s.classified + s.errors != s.total || s.correct > s.labelled || s.labelled > s.classified {
            return Err(bad(format!(
                "total {} classified {} errors {} labelled {} correct {}",
                s.total, s.classified, s.errors, s.labelled, s.correct
            )));
        }
        let rules = s
            .rules
            .iter()
            .map(|r| {
                let tally = RuleTally {
                    queue: r.queue.clone(),
                    against: r.against,
                    fired: r.fired,
                    labelled: r.labelled,
                    correct: r.correct,
                };
                (r.rule.clone(), tally)
            })
            .collect();
        let compare = match &s.compare {
            Some(c) => Some(CompareTally {
                version: c.ruleset_version.clone(),
                compared: c.compared,
                changed: c.changed,
                transitions: c
                    .transitions
                    .iter()
                    .map(|t| ((t.from.clone(), t.to.clone()), t.count))
                    .collect(),
                correct: c.correct,
                fixed: c.fixed,
                broken: c.broken,
                reliability: Reliability::from_bins(&c.reliability).map_err(bad)?,
            }),
            None => None,
        };
        Ok(Evaluation {
            queues: s.ruleset_queues.clone(),
            total: s.total,
            classified: s.classified,
            errors: s.errors,
            labelled: s.labelled,
            correct: s.correct,
            distribution: s.distribution.clone(),
            confusion: s.confusion.clone(),
            languages: s
                .per_language
                .iter()
                .map(|(l, t)| {
                    let tally = Tally {
                        total: t.total,
                        labelled: t.labelled,
                        correct: t.correct,
                    };
                    (l.clone(), tally)
                })
                .collect(),
            reliability: Reliability::from_bins(&s.reliability).map_err(bad)?,
            auto: s.auto_routed.count,
            auto_labelled: s.auto_routed.labelled,
            auto_correct: s.auto_routed.correct,
            rules,
            compare,
        })
    }

    /// Adds the records counted in `other`, as if they had been added here one by one.
    pub fn merge(&mut self, other: &Evaluation) -> Result<(), MergeError> {
        if self.queues != other.queues {
            return Err(MergeError::Queues(self.queues.clone(), other.queues.clone()));
        }
        let version = |c: &Option<CompareTally>| c.as_ref().map(|c| c.version.clone());
        if version(&self.compare) != version(&other.compare) {
            return Err(MergeError::Compared(
                version(&self.compare),
                version(&other.compare),
            ));
        }
        self.total += other.total;
        self.classified += other.classified;
        self.errors += other.errors;
        self.labelled += other.labelled;
        self.correct += other.correct;
        add_counts(&mut self.distribution, &other.distribution);
        for (label, row) in &other.confusion {
            add_counts(self.confusion.entry(label.clone()).or_default(), row);
        }
        for (language, t) in &other.languages {
            let mine = self.languages.entry(language.clone()).or_default();
            mine.total += t.total;
            mine.labelled += t.labelled;
            mine.correct += t.correct;
        }
        self.reliability.merge(&other.reliability);
        self.auto += other.auto;
        self.auto_labelled += other.auto_labelled;
        self.auto_correct += other.auto_correct;
        for (rule, t) in &other.rules {
            // A rule's queue and direction are the ruleset's: the same in every part.
            let mine = self.rules.entry(rule.clone()).or_insert_with(|| RuleTally {
                queue: t.queue.clone(),
                against: t.against,
                ..RuleTally::default()
            });
            mine.fired += t.fired;
            mine.labelled += t.labelled;
            mine.correct += t.correct;
        }
        if let (Some(mine), Some(theirs)) = (&mut self.compare, &other.compare) {
            mine.compared += theirs.compared;
            mine.changed += theirs.changed;
            add_counts(&mut mine.transitions, &theirs.transitions);
            mine.correct += theirs.correct;
            mine.fixed += theirs.fixed;
            mine.broken += theirs.broken;
            mine.reliability.merge(&theirs.reliability);
        }
        Ok(())
    }
}

fn add_counts<K: Ord + Clone>(into: &mut BTreeMap<K, u64>, from: &BTreeMap<K, u64>) {
    for (k, n) in from {
        *into.entry(k.clone()).or_default() += n;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::replay::outcome::{Decision, FiredRule, Outcome};

    /// Outcomes of every kind: labelled right and wrong, unlabelled, errors, labels that are
    /// not queues, several languages, rules for and against, a compared ruleset.
    fn outcomes() -> Vec<Outcome> {
        let queues = ["billing", "tech", "general"];
        (0..300u32)
            .map(|i| {
                let queue = queues[(i % 3) as usize].to_string();
                let decision = |q: &str, c: f64| Decision {
                    queue: q.to_string(),
                    confidence: c,
                    needs_review: c < 0.6,
                    language: ["de", "en", ""][(i % 4 % 3) as usize].to_string(),
                    rules: vec![
                        FiredRule {
                            rule: format!("{q}.rule"),
                            queue: q.to_string(),
                            against: false,
                        },
                        FiredRule {
                            rule: "thread".into(),
                            queue: "general".into(),
                            against: true,
                        },
                    ],
                };
                let label = match i % 5 {
                    0 => None,
                    1 => Some("unknown_label".to_string()),
                    2 => Some(queues[((i / 5) % 3) as usize].to_string()),
                    _ => Some(queue.clone()),
                };
                let confidence = f64::from((i * 7919) % 10_000) / 10_000.0;
                Outcome {
                    position: u64::from(i),
                    id: i.to_string(),
                    source: format!("x:{i}"),
                    label,
                    language: (i % 7 == 0).then(|| "fr".to_string()),
                    result: if i % 11 == 0 {
                        Err("bad record".to_string())
                    } else {
                        Ok(decision(&queue, confidence))
                    },
                    candidate: (i % 11 != 0).then(|| decision(queues[(i % 2) as usize], 1.0 - confidence)),
                    line: String::new(),
                }
            })
            .collect()
    }

    fn evaluation<'a>(outcomes: impl IntoIterator<Item = &'a Outcome>) -> Evaluation {
        let queues = ["billing", "tech", "general"].map(String::from).to_vec();
        let mut e = Evaluation::new(queues, Some("sha256:candidate".into()));
        for o in outcomes {
            e.add(o);
        }
        e
    }

    #[test]
    fn merged_shards_give_exactly_the_summary_of_the_whole() {
        let all = outcomes();
        let whole = evaluation(&all).summary();
        let mut merged =
            Evaluation::from_summary(&evaluation(all.iter().filter(|o| o.position % 3 == 0)).summary())
                .unwrap();
        for shard in [1, 2] {
            let part = evaluation(all.iter().filter(|o| o.position % 3 == shard)).summary();
            merged.merge(&Evaluation::from_summary(&part).unwrap()).unwrap();
        }
        assert_eq!(merged.summary(), whole);
        assert!(whole.compare.is_some() && !whole.unknown_labels.is_empty() && whole.errors > 0);
    }

    #[test]
    fn a_summary_rebuilds_the_evaluation_it_came_from() {
        let all = outcomes();
        let summary = evaluation(&all).summary();
        assert_eq!(Evaluation::from_summary(&summary).unwrap().summary(), summary);
    }

    #[test]
    fn summaries_of_different_queues_or_compared_rulesets_do_not_merge() {
        let all = outcomes();
        let mut a = evaluation(&all);
        let mut other_queues = Evaluation::new(vec!["billing".into()], Some("sha256:candidate".into()));
        other_queues.add(&all[1]);
        assert!(matches!(a.merge(&other_queues), Err(MergeError::Queues(..))));
        let uncompared = Evaluation::new(["billing", "tech", "general"].map(String::from).to_vec(), None);
        assert!(matches!(a.merge(&uncompared), Err(MergeError::Compared(..))));
    }

    #[test]
    fn a_summary_whose_counts_do_not_add_up_is_refused() {
        let mut summary = evaluation(&outcomes()).summary();
        summary.errors += 1;
        assert!(matches!(
            Evaluation::from_summary(&summary),
            Err(MergeError::Inconsistent(_))
        ));
    }
}
