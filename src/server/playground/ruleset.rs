//! The ruleset as the playground lists it (`GET /v1/ruleset`): queues, rules with their terms,
//! signals, cues and examples, each with its `file:line:column`, the version and the last
//! reload, with its problems when it was refused.

use serde::Serialize;

use crate::rules::{Collect, Condition, Expectation, Location, Negated, Problem, RuleSet, Scope};
use crate::server::state::{Loaded, ReloadOutcome, ReloadStatus, rfc3339};

/// The serving ruleset and its last reload.
#[derive(Debug, Serialize)]
pub struct View {
    /// The ruleset's name.
    pub name: String,
    /// Its version (the `ruleset_version` of its verdicts).
    pub version: String,
    /// The directory it was loaded from, or `built-in`.
    pub source: String,
    /// When it was loaded (RFC 3339, UTC).
    pub loaded_at: String,
    /// True when the source is a directory that is watched and reloaded.
    pub watched: bool,
    /// The last reload attempt since the first load; `None` when there was none.
    pub last_reload: Option<Reload>,
    /// The queue that gets a message without evidence.
    pub fallback: String,
    /// The softmax temperature.
    pub temperature: f64,
    /// The queues, in ruleset order (the playground colours queues by this index).
    pub queues: Vec<QueueView>,
    /// The rules, in file order.
    pub rules: Vec<RuleView>,
    /// The signals, in file order.
    pub signals: Vec<SignalView>,
    /// The structure cues, in file order.
    pub cues: Vec<CueView>,
    /// The examples, in file order.
    pub examples: Vec<ExampleView>,
}

/// A reload attempt.
#[derive(Debug, Serialize)]
pub struct Reload {
    /// When (RFC 3339, UTC).
    pub at: String,
    /// `reloaded`, `unchanged` or `refused`.
    pub outcome: &'static str,
    /// The version it swapped in, when it reloaded.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// Why it was refused: every problem, empty otherwise.
    pub problems: Vec<ProblemView>,
}

/// A problem of a refused ruleset.
#[derive(Debug, Serialize)]
pub struct ProblemView {
    /// Where, when it has a place.
    pub location: Option<Location>,
    /// What is wrong.
    pub message: String,
    /// Both on one line, as `check-rules` and the log write it (`file:line:column: message`).
    pub text: String,
}

/// A queue.
#[derive(Debug, Serialize)]
pub struct QueueView {
    /// Its id.
    pub id: String,
    /// Its mailbox; empty where it has none.
    pub destination: String,
    /// What it owns.
    pub description: String,
    /// Its auto-route threshold.
    pub threshold: f64,
    /// How many rules speak for it.
    pub rules: usize,
}

/// A rule.
#[derive(Debug, Serialize)]
pub struct RuleView {
    /// Its id.
    pub id: String,
    /// The queue its evidence goes to.
    pub queue: String,
    /// Its weight.
    pub weight: f64,
    /// The fields it reads.
    pub fields: Vec<String>,
    /// The languages it applies to; empty for all.
    pub languages: Vec<String>,
    /// `ignore` or `counter`: what a term in a negated scope means for it.
    pub negated: &'static str,
    /// Its conditions, each with its terms.
    pub conditions: Vec<ConditionView>,
    /// Where it is written.
    pub location: Location,
}

/// A signal.
#[derive(Debug, Serialize)]
pub struct SignalView {
    /// Its id.
    pub id: String,
    /// The fields it reads.
    pub fields: Vec<String>,
    /// The languages it applies to; empty for all.
    pub languages: Vec<String>,
    /// Its conditions.
    pub conditions: Vec<ConditionView>,
    /// The evidence it moves when it fires.
    pub moves: Vec<MoveView>,
    /// How the amounts moved to one queue add up: `sum` or `largest`.
    pub collect: &'static str,
    /// Where it is written.
    pub location: Location,
}

/// A condition of a rule or signal.
#[derive(Debug, Serialize)]
pub struct ConditionView {
    /// `any`, `all`, `at_least`, `none`, `requires` or `unless`.
    pub key: &'static str,
    /// For `at_least`: how many of the terms.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub at_least: Option<usize>,
    /// The terms, as compiled (folded; `@lists` expanded).
    pub terms: Vec<String>,
    /// For `requires` and `unless`: the signals and rules named.
    pub ids: Vec<String>,
}

/// Evidence a signal moves.
#[derive(Debug, Serialize)]
pub struct MoveView {
    /// The queue it leaves.
    pub from: String,
    /// The queue it goes to; `None` drops it.
    pub to: Option<String>,
    /// The share that moves.
    pub share: f64,
}

/// A structure cue.
#[derive(Debug, Serialize)]
pub struct CueView {
    /// Its id.
    pub id: String,
    /// `request`, `negation` or `settled`.
    pub kind: &'static str,
    /// `after` or `before`: where its scope lies.
    pub scope: &'static str,
    /// The most words its scope reaches, when fewer than the clause (`null`: the clause).
    pub window: Option<u8>,
    /// Its terms.
    pub terms: Vec<String>,
    /// Where it is written.
    pub location: Location,
}

/// An example.
#[derive(Debug, Serialize)]
pub struct ExampleView {
    /// Its subject.
    pub subject: String,
    /// Its body.
    pub body: String,
    /// Its sender, when given.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub from: String,
    /// Its language hint, when given.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub language: Option<String>,
    /// The queue it must route to, when it names one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub queue: Option<String>,
    /// The queue it must not route to, when it names one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub not: Option<String>,
    /// Where it is written.
    pub location: Location,
}

impl View {
    /// The view of `loaded`; `watched` when it comes from a directory, with `last_reload`.
    pub fn new(loaded: &Loaded, watched: bool, last_reload: Option<&ReloadStatus>) -> View {
        let rs = loaded.engine.ruleset();
        View {
            name: rs.name.clone(),
            version: rs.version.clone(),
            source: rs.source.display().to_string(),
            loaded_at: rfc3339(loaded.loaded_at),
            watched,
            last_reload: last_reload.map(reload),
            fallback: rs.queues[rs.fallback].id.clone(),
            temperature: rs.calibration.temperature,
            queues: rs
                .queues
                .iter()
                .enumerate()
                .map(|(i, q)| QueueView {
                    id: q.id.clone(),
                    destination: q.destination.clone(),
                    description: q.description.clone(),
                    threshold: q.threshold,
                    rules: rs.rules.iter().filter(|r| r.queue == i).count(),
                })
                .collect(),
            rules: rs
                .rules
                .iter()
                .map(|r| RuleView {
                    id: r.id.clone(),
                    queue: rs.queues[r.queue].id.clone(),
                    weight: r.weight,
                    fields: r.fields.names(),
                    languages: r.languages.clone(),
                    negated: match r.negated {
                        Negated::Ignore => "ignore",
                        Negated::Counter => "counter",
                    },
                    conditions: conditions(&r.conditions),
                    location: r.location.clone(),
                })
                .collect(),
            signals: rs
                .signals
                .iter()
                .map(|s| SignalView {
                    id: s.id.clone(),
                    fields: s.fields.names(),
                    languages: s.languages.clone(),
                    conditions: conditions(&s.conditions),
                    moves: s
                        .moves
                        .iter()
                        .map(|m| MoveView {
                            from: rs.queues[m.from].id.clone(),
                            to: m.to.map(|t| rs.queues[t].id.clone()),
                            share: m.share,
                        })
                        .collect(),
                    collect: match s.collect {
                        Collect::Sum => "sum",
                        Collect::Largest => "largest",
                    },
                    location: s.location.clone(),
                })
                .collect(),
            cues: rs
                .cues
                .iter()
                .map(|c| CueView {
                    id: c.id.clone(),
                    kind: match c.kind {
                        crate::rules::CueKind::Request => "request",
                        crate::rules::CueKind::Negation => "negation",
                        crate::rules::CueKind::Settled => "settled",
                        crate::rules::CueKind::Shift => "shift",
                        crate::rules::CueKind::Aside => "aside",
                    },
                    scope: match c.scope {
                        Scope::After => "after",
                        Scope::Before => "before",
                    },
                    window: c.window,
                    terms: c.terms.iter().map(ToString::to_string).collect(),
                    location: c.location.clone(),
                })
                .collect(),
            examples: examples(rs),
        }
    }
}

fn conditions(conditions: &[Condition]) -> Vec<ConditionView> {
    conditions
        .iter()
        .map(|c| ConditionView {
            key: match c {
                Condition::AtLeast(_) => "at_least",
                c => c.key(),
            },
            at_least: match c {
                Condition::AtLeast(a) => Some(a.n),
                _ => None,
            },
            terms: c.terms().iter().map(ToString::to_string).collect(),
            ids: c.references().to_vec(),
        })
        .collect()
}

fn examples(rs: &RuleSet) -> Vec<ExampleView> {
    rs.examples
        .iter()
        .map(|e| {
            let (queue, not) = match &e.expect {
                Expectation::Queue(q) => (Some(q.clone()), None),
                Expectation::Not(q) => (None, Some(q.clone())),
            };
            ExampleView {
                subject: e.ticket.subject.clone(),
                body: e.ticket.body.clone(),
                from: e.ticket.from.clone(),
                language: e.ticket.language.clone(),
                queue,
                not,
                location: e.location.clone(),
            }
        })
        .collect()
}

fn reload(status: &ReloadStatus) -> Reload {
    let (outcome, version, problems): (_, _, &[Problem]) = match &status.outcome {
        ReloadOutcome::Reloaded { version } => ("reloaded", Some(version.clone()), &[]),
        ReloadOutcome::Unchanged => ("unchanged", None, &[]),
        ReloadOutcome::Refused { problems } => ("refused", None, problems),
    };
    Reload {
        at: rfc3339(status.at),
        outcome,
        version,
        problems: problems
            .iter()
            .map(|p| ProblemView {
                location: p.location.clone(),
                message: p.message.clone(),
                text: p.to_string(),
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use std::time::SystemTime;

    use super::*;
    use crate::engine::Engine;

    fn view(last_reload: Option<&ReloadStatus>) -> View {
        let loaded = Loaded {
            engine: Engine::new(RuleSet::builtin()).unwrap(),
            loaded_at: SystemTime::UNIX_EPOCH,
        };
        View::new(&loaded, false, last_reload)
    }

    #[test]
    fn every_rule_is_listed_with_its_terms_and_place() {
        let v = view(None);
        let rs = RuleSet::builtin();
        assert_eq!(v.rules.len(), rs.rules.len());
        assert_eq!(v.examples.len(), rs.examples.len());
        assert_eq!(v.loaded_at, "1970-01-01T00:00:00Z");
        let invoice = v.rules.iter().find(|r| r.id == "contract.invoice").unwrap();
        assert_eq!(invoice.queue, "contract");
        assert!(invoice.location.file.ends_with("contract.toml") && invoice.location.line > 0);
        assert!(
            invoice
                .conditions
                .iter()
                .any(|c| c.terms.iter().any(|t| t.starts_with("rechnung")))
        );
        let rules: usize = v.queues.iter().map(|q| q.rules).sum();
        assert_eq!(rules, v.rules.len());
    }

    #[test]
    fn a_refused_reload_lists_its_problems_as_file_line_column() {
        let status = ReloadStatus {
            at: SystemTime::UNIX_EPOCH,
            outcome: ReloadOutcome::Refused {
                problems: vec![Problem {
                    location: Some(Location {
                        file: "rules/zz.toml".into(),
                        line: 3,
                        column: 9,
                    }),
                    message: "unknown queue `nowhere`".into(),
                }],
            },
        };
        let v = view(Some(&status));
        let reload = v.last_reload.unwrap();
        assert_eq!(reload.outcome, "refused");
        assert_eq!(
            reload.problems[0].text,
            "rules/zz.toml:3:9: unknown queue `nowhere`"
        );
    }

    #[test]
    fn at_least_is_named_with_its_count() {
        let v = view(None);
        let c = v
            .rules
            .iter()
            .flat_map(|r| &r.conditions)
            .find(|c| c.key == "at_least")
            .expect("the default ruleset has an at_least rule");
        assert!(c.at_least.is_some_and(|n| n >= 1 && n <= c.terms.len()), "{c:?}");
    }
}
