//! [`RuleSet`] → compiled matchers; [`Message`] → [`Verdict`].
//!
//! - [`matcher`]: one automaton for all terms; each field is scanned once.
//! - [`score`]: evidence → confidence (softmax with a calibrated temperature).
//! - [`structure`]: reply subjects, request sentences, negated and settled scopes.
//! - [`explain`]: the verdict told as text (`triage classify --explain`);
//!   [`explanation`]: the same as data with positions in the message (the playground).
//!
//! Evaluation only visits rules with at least one term found in the message, so the cost per
//! message follows the evidence, not the size of the ruleset.
//!
//! A rule's evidence is `weight × field factor × breadth`:
//! - *field factor*: the weight of the field the decisive term was found in (subject 1.5,
//!   body 1.0, quoted 0.25, signature 0.2, see [`Field::weight`]); the best field for `any`,
//!   the weakest required term for `all` and `at_least`;
//! - *breadth*: `1 + 0.25` for each further distinct `any` term found (at most two), because
//!   a message that says "invoice", "VAT" and "billing address" is more clearly about billing
//!   than one that says "invoice" once;
//! - and, for a rule with `frequency = "log"`, `1 + ln n` for the `n` occurrences of its terms
//!   (see [`Frequency::Log`]).

use std::ops::ControlFlow;

pub mod explain;
pub mod explanation;
pub mod matcher;
pub mod score;
pub mod structure;
pub mod trie;

pub use matcher::CompileError;
use matcher::{Reader, Scanner, TermHit};
use structure::{Context, CueHit, Spans};

use crate::cancel::{Cancel, Cancelled};
use crate::intake::{Input, intake};
use crate::mail::Limits;
use crate::message::Message;
use crate::rules::condition::{Evidence, Outcome, TermIds};
use crate::rules::{
    Collect, Condition, CueKind, Expectation, Field, FieldSet, Frequency, Negated, RuleSet, Scope, Term,
};
use crate::text::{Folded, fold_into, lang};
use crate::verdict::{Hit, Rank, Verdict};

/// A compiled, immutable ruleset: share it (`Arc<Engine>`) between threads.
#[derive(Debug)]
pub struct Engine {
    ruleset: RuleSet,
    /// (Boxed: its per-field tables would make every holder of an engine large.)
    scanner: Box<Scanner>,
    /// Rules first (index = rule index), then signals.
    units: Vec<Unit>,
    /// Each unit's position in the evaluation order (every unit after the ones it refers to).
    rank: Vec<u32>,
    /// For each term id: the units that become candidates when it is found.
    triggers: Vec<Vec<u32>>,
    /// For each term id: the cue it belongs to, when it is one.
    cues: Vec<Option<(CueKind, Scope, Option<u8>)>>,
    /// The signal the confidence model reads as "addressed to us" ([`score::ADDRESSED_SIGNAL`]),
    /// by index into [`RuleSet::signals`].
    addressed: Option<usize>,
    /// For each queue: the signals that move its evidence elsewhere and have an `unless`, with
    /// the units that `unless` names (see [`score::Features::standing_unknown`]).
    guards: Vec<Vec<(usize, Vec<u32>)>>,
}

/// A rule or a signal, compiled: its conditions' terms and references as engine ids.
#[derive(Debug)]
struct Unit {
    conditions: Vec<(TermIds, Vec<u32>)>,
    fields: FieldSet,
    languages: Vec<String>,
    negated: Negated,
}

/// A rule that fired on a message.
#[derive(Debug, Clone)]
pub struct Fired {
    /// Index of the rule in the ruleset.
    pub rule: usize,
    /// The evidence it added to its queue.
    pub score: f64,
    /// The term hit that decided it.
    pub decisive: TermHit,
}

/// What is known of the writer's standing where it would decide (see
/// [`Engine::standing_unknown`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Standing {
    /// Unknown, and the queues it would decide for have no evidence of their own beyond the
    /// thread's.
    Unknown,
    /// Unknown, and a queue it would decide for has evidence of its own beyond the thread's.
    Contested,
}

/// The queue leading by `scores` (taken as the verdict takes it: the highest score, the first
/// queue on a tie), when it has evidence of its own beyond the thread's (`scores` minus `weak`,
/// the part from a reply subject, quoted history or the signature).
fn lead_with_a_case(scores: &[f64], weak: &[f64]) -> Option<usize> {
    let lead = (0..scores.len()).max_by(|&a, &b| scores[a].total_cmp(&scores[b]).then(b.cmp(&a)))?;
    (scores[lead] > 0.0 && scores[lead] - weak[lead] > 0.0).then_some(lead)
}

/// The outcome of one example of the ruleset.
#[derive(Debug, Clone)]
pub struct ExampleOutcome {
    /// Index of the example in the ruleset.
    pub example: usize,
    /// The verdict it got.
    pub verdict: Verdict,
    /// Whether it met its expectation.
    pub passed: bool,
}

/// Everything the engine saw in a message, for explanations (`--explain`, the playground).
#[derive(Debug, Clone)]
pub struct Detailed {
    /// The verdict.
    pub verdict: Verdict,
    /// The rules that fired.
    pub fired: Vec<Fired>,
    /// The signals that fired, by index into [`RuleSet::signals`].
    pub signals: Vec<usize>,
    /// True when the subject is a reply or forward subject (counts as thread context).
    pub reply_subject: bool,
    /// Negated scopes of the subject (its weight already makes it count as a request).
    pub subject: Spans,
    /// Request sentences and negated scopes of the new text.
    pub body: Spans,
    /// What the confidence model saw.
    pub features: score::Features,
    /// Rules whose evidence in the new text echoed the reply's thread and counted
    /// [`structure::ECHO_FACTOR`] (indexes into [`RuleSet::rules`]).
    pub echoes: Vec<usize>,
}

/// The message's fields prepared for scanning and for quoting evidence.
struct Prepared<'m> {
    texts: [std::borrow::Cow<'m, str>; 9],
    /// Lower-case header names, by header line.
    header_names: Vec<String>,
}

impl Engine {
    /// Compiles a ruleset.
    pub fn new(ruleset: RuleSet) -> Result<Engine, CompileError> {
        let mut terms: Vec<Term> = Vec::new();
        let mut ids = std::collections::HashMap::new();
        let mut intern = |t: &Term| -> u32 {
            *ids.entry(t.clone()).or_insert_with(|| {
                terms.push(t.clone());
                (terms.len() - 1) as u32
            })
        };
        let unit_ids: std::collections::HashMap<&str, u32> = ruleset
            .rules
            .iter()
            .map(|r| r.id.as_str())
            .chain(ruleset.signals.iter().map(|s| s.id.as_str()))
            .enumerate()
            .map(|(i, id)| (id, i as u32))
            .collect();
        let mut compile = |conditions: &[Condition]| -> Vec<(TermIds, Vec<u32>)> {
            conditions
                .iter()
                .map(|c| {
                    // A term listed twice (or in two spellings that fold alike) is one term:
                    // `any` adds evidence per distinct term and `at_least` counts distinct ones.
                    let mut listed = std::collections::HashSet::new();
                    let ids = c
                        .terms()
                        .iter()
                        .map(&mut intern)
                        .filter(|&t| listed.insert(t))
                        .collect();
                    (
                        TermIds::new(ids),
                        c.references()
                            .iter()
                            .filter_map(|r| unit_ids.get(r.as_str()).copied())
                            .collect(),
                    )
                })
                .collect()
        };
        let mut units = Vec::with_capacity(ruleset.rules.len() + ruleset.signals.len());
        for rule in &ruleset.rules {
            units.push(Unit {
                conditions: compile(&rule.conditions),
                fields: rule.fields.clone(),
                languages: rule.languages.clone(),
                negated: rule.negated,
            });
        }
        for signal in &ruleset.signals {
            units.push(Unit {
                conditions: compile(&signal.conditions),
                fields: signal.fields.clone(),
                languages: signal.languages.clone(),
                negated: Negated::Ignore,
            });
        }
        let mut cue_terms = Vec::new();
        for cue in &ruleset.cues {
            for t in &cue.terms {
                cue_terms.push((intern(t), cue.kind, cue.scope, cue.window));
            }
        }
        let mut triggers = vec![Vec::new(); terms.len()];
        let conditions_of = |u: usize| -> &[Condition] {
            match u.checked_sub(ruleset.rules.len()) {
                None => &ruleset.rules[u].conditions,
                Some(s) => &ruleset.signals[s].conditions,
            }
        };
        for (u, unit) in units.iter().enumerate() {
            for (c, (ts, _)) in conditions_of(u).iter().zip(&unit.conditions) {
                if !c.triggers() {
                    continue;
                }
                for &t in ts.ids() {
                    if triggers[t as usize].last() != Some(&(u as u32)) {
                        triggers[t as usize].push(u as u32);
                    }
                }
            }
        }
        let mut cues = vec![None; terms.len()];
        for (t, kind, scope, window) in cue_terms {
            cues[t as usize].get_or_insert((kind, scope, window));
        }
        let readers: Vec<Reader<'_>> = units
            .iter()
            .map(|u| Reader {
                fields: &u.fields,
                terms: u
                    .conditions
                    .iter()
                    .flat_map(|(ts, _)| ts.ids().iter().copied())
                    .collect(),
            })
            .collect();
        let cue_ids: Vec<u32> = (0..terms.len() as u32)
            .filter(|&t| cues[t as usize].is_some())
            .collect();
        let scanner = Box::new(Scanner::new(terms, &readers, &cue_ids)?);
        drop(readers);
        let order = evaluation_order(&units);
        let mut rank = vec![0u32; units.len()];
        for (i, &u) in order.iter().enumerate() {
            rank[u as usize] = i as u32;
        }
        let addressed = ruleset
            .signals
            .iter()
            .position(|s| s.id == score::ADDRESSED_SIGNAL);
        let mut guards = vec![Vec::new(); ruleset.queues.len()];
        for (s, signal) in ruleset.signals.iter().enumerate() {
            let unit = &units[ruleset.rules.len() + s];
            let unless: Vec<u32> = signal
                .conditions
                .iter()
                .zip(&unit.conditions)
                .filter(|(c, _)| matches!(c, Condition::Unless(_)))
                .flat_map(|(_, (_, refs))| refs.iter().copied())
                .collect();
            if unless.is_empty() {
                continue;
            }
            for m in &signal.moves {
                let of_queue: &mut Vec<(usize, Vec<u32>)> = &mut guards[m.from];
                if !of_queue.iter().any(|(g, _)| *g == s) {
                    of_queue.push((s, unless.clone()));
                }
            }
        }
        Ok(Engine {
            ruleset,
            scanner,
            units,
            rank,
            triggers,
            cues,
            addressed,
            guards,
        })
    }

    /// The ruleset this engine was compiled from.
    pub fn ruleset(&self) -> &RuleSet {
        &self.ruleset
    }

    /// The number of distinct terms across all rules.
    pub fn term_count(&self) -> usize {
        self.scanner.terms.len()
    }

    /// Classifies one message.
    pub fn classify(&self, id: &str, message: &Message) -> Verdict {
        let (verdict, _) = self.classify_detailed(id, message);
        verdict
    }

    /// Classifies one message, stopping with [`Cancelled`] soon after `cancel` is set: it is
    /// checked between the scans of the fields, each bounded by the size of its text.
    pub fn classify_with(&self, id: &str, message: &Message, cancel: &Cancel) -> Result<Verdict, Cancelled> {
        self.checked(id, message, cancel).map(|d| d.verdict)
    }

    /// Classifies one message and also returns the rules that fired, for explanations.
    pub fn classify_detailed(&self, id: &str, message: &Message) -> (Verdict, Vec<Fired>) {
        let d = self.detailed(id, message);
        (d.verdict, d.fired)
    }

    /// Classifies one message and returns everything the engine saw (see [`Detailed`]).
    pub fn detailed(&self, id: &str, message: &Message) -> Detailed {
        self.checked(id, message, &Cancel::never())
            .expect("a flag that is never set cannot cancel")
    }

    /// [`Engine::detailed`], stopping with [`Cancelled`] soon after `cancel` is set (checked
    /// as in [`Engine::classify_with`]).
    pub fn detailed_with(&self, id: &str, message: &Message, cancel: &Cancel) -> Result<Detailed, Cancelled> {
        self.checked(id, message, cancel)
    }

    /// [`Engine::detailed`], stopping with [`Cancelled`] soon after `cancel` is set.
    fn checked(&self, id: &str, message: &Message, cancel: &Cancel) -> Result<Detailed, Cancelled> {
        let prepared = prepare(message);
        let reply_subject = structure::is_reply_subject(&message.subject);
        let (mut hits, language) = TEXT_FOLDS.with_borrow_mut(|folds| {
            let scanned = self.scan(&prepared, cancel, folds);
            let language = scanned.is_ok().then(|| language_from(message, folds)).flatten();
            if folds.iter().any(|f| f.text.capacity() > KEEP_FOLD_BYTES) {
                *folds = Default::default();
            }
            scanned.map(|hits| (hits, language))
        })?;
        // Before `contextualise` keeps one hit per term: every occurrence explains its sentence,
        // if some rule reads the term in the new text (one read in the subject only is found
        // there too, since the text zones share a matcher, and explains nothing there).
        let mut found: Vec<usize> = hits
            .iter()
            .filter(|h| {
                h.field == Field::Body
                    && self.cues[h.term as usize].is_none()
                    && self.scanner.is_read_in(h.term, Field::Body)
            })
            .map(|h| h.start as usize)
            .collect();
        let body = self.spans(&hits, Field::Body, &prepared);
        let unexplained =
            structure::unexplained_share(&prepared.texts[Field::Body as usize], &body.sentences, &mut found);
        let mut subject = self.spans(&hits, Field::Subject, &prepared);
        // The subject already counts 1.5 as the sender's own summary: only its negated scopes
        // matter, not whether it asks, turns to another topic or calls something minor.
        subject.requests.clear();
        subject.preamble.clear();
        subject.asides.clear();
        // Before `contextualise` keeps one hit per term: each occurrence is judged on its own.
        let standing = if reply_subject {
            self.standing_subject_terms(&hits, &subject, &prepared.texts[Field::Subject as usize])
        } else {
            Vec::new()
        };
        let contexts = self.contextualise(&mut hits, &subject, &body);
        let (mut fired, signals) =
            self.evaluate(&hits, &contexts, &prepared, reply_subject, language.as_deref());
        let echoes = if reply_subject {
            self.discount_echoes(&mut fired, &body, &standing)
        } else {
            Vec::new()
        };

        let rs = &self.ruleset;
        let mut scores = vec![0.0; rs.queues.len()];
        let mut weak = vec![0.0; rs.queues.len()];
        for f in &fired {
            let q = rs.rules[f.rule].queue;
            scores[q] += f.score;
            let thread = matches!(f.decisive.field, Field::Quoted | Field::Signature)
                || (f.decisive.field == Field::Subject && reply_subject);
            if thread && f.score > 0.0 {
                weak[q] += f.score;
            }
        }
        // The queue that leads before any standing moves evidence, when it has a case of its own
        // beyond the thread: a standing that moves the verdict away from it decided against that
        // case (see [`score::Features::standing_contested`]).
        let lead_with_a_case = lead_with_a_case(&scores, &weak);
        let mut moved = Vec::new();
        for &s in &signals {
            let signal = &rs.signals[s];
            // With `collect = "largest"` every amount is taken from the scores before the signal
            // moves anything, and a `to` queue receives only the largest amount moved to it (the
            // first in file order on a tie); the other amounts are dropped.
            let largest: Option<Vec<f64>> = (signal.collect == Collect::Largest).then(|| {
                signal
                    .moves
                    .iter()
                    .map(|m| m.share * scores[m.from].max(0.0))
                    .collect()
            });
            // With "largest", the move that passes its amount on to each `to` queue: the largest,
            // the first in file order on a tie (the loader lets a queue give once and not
            // receive, so the amounts taken before any move are what each queue gives).
            let passes: Option<Vec<bool>> = largest.as_ref().map(|amounts| {
                let mut best: Vec<Option<usize>> = vec![None; scores.len()];
                for (i, m) in signal.moves.iter().enumerate() {
                    if let Some(to) = m.to
                        && best[to].is_none_or(|b| amounts[i] > amounts[b])
                    {
                        best[to] = Some(i);
                    }
                }
                (0..signal.moves.len())
                    .map(|i| signal.moves[i].to.is_some_and(|to| best[to] == Some(i)))
                    .collect()
            });
            for (i, m) in signal.moves.iter().enumerate() {
                let amount = match &largest {
                    Some(amounts) => amounts[i],
                    None => m.share * scores[m.from].max(0.0),
                };
                if amount > 0.0 {
                    let to = m.to.filter(|_| passes.as_ref().is_none_or(|p| p[i]));
                    scores[m.from] -= amount;
                    match to {
                        Some(to) => {
                            scores[to] += amount;
                            weak[to] += m.share * weak[m.from];
                            moved.push((s, to, amount));
                        }
                        None => moved.push((s, m.from, -amount)),
                    }
                    weak[m.from] *= 1.0 - m.share;
                }
            }
        }
        let softmax = score::softmax(&scores, rs.calibration.temperature);
        let best = (0..scores.len()).max_by(|&a, &b| scores[a].total_cmp(&scores[b]).then(b.cmp(&a)));
        let chosen = match best {
            Some(q) if scores[q] > 0.0 => q,
            _ => rs.fallback,
        };
        let runner_up = (0..scores.len())
            .filter(|&q| q != chosen)
            .map(|q| scores[q])
            .fold(0.0f64, f64::max);
        let standing = self.standing_unknown(chosen, &fired, &signals, &scores, &weak);
        let standing_decided = moved.iter().any(|&(_, to, amount)| to == chosen && amount > 0.0)
            && lead_with_a_case.is_some_and(|q| q != chosen);
        let features = score::Features {
            softmax: softmax[chosen],
            margin: (scores[chosen] - runner_up).max(0.0),
            strong_queues: (0..scores.len())
                .filter(|&q| q != chosen && scores[q] >= score::STRONG_EVIDENCE)
                .count() as f64,
            weak_share: if scores[chosen] > 0.0 {
                (weak[chosen] / scores[chosen]).clamp(0.0, 1.0)
            } else {
                0.0
            },
            addressed: if self.addressed.is_some_and(|a| signals.contains(&a)) {
                1.0
            } else {
                0.0
            },
            unexplained,
            standing_unknown: if standing.is_some() { 1.0 } else { 0.0 },
            standing_contested: if standing == Some(Standing::Contested) || standing_decided {
                1.0
            } else {
                0.0
            },
        };
        let confidences = match &rs.calibration.model {
            None => softmax.clone(),
            Some(model) => {
                // The model gives the chosen queue's confidence; the others share the rest as
                // the softmax does, none above the chosen one: when the model doubts the chosen
                // queue, part of the rest is that no queue fits (mail out of scope), not that the
                // runner-up does (which the model was not asked). 32 of 5,230 labelled verdicts
                // ranked a runner-up above the queue they chose before this bound.
                let c = model.apply(&features);
                let rest: f64 = 1.0 - softmax[chosen];
                (0..scores.len())
                    .map(|q| {
                        if q == chosen {
                            c
                        } else if rest > 0.0 {
                            ((1.0 - c) * softmax[q] / rest).min(c)
                        } else {
                            0.0
                        }
                    })
                    .collect()
            }
        };
        let mut order: Vec<usize> = (0..scores.len())
            .filter(|&q| scores[q] != 0.0 || q == chosen)
            .collect();
        order.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]).then(a.cmp(&b)));
        if let Some(pos) = order.iter().position(|&q| q == chosen) {
            order.remove(pos);
            order.insert(0, chosen);
        }
        let ranking = order
            .iter()
            .map(|&q| Rank {
                queue: rs.queues[q].id.clone(),
                score: round(scores[q]),
                confidence: round(confidences[q]),
            })
            .collect();
        let mut evidence: Vec<Hit> = fired.iter().map(|f| self.hit(f, &prepared)).collect();
        for (s, to, amount) in moved {
            evidence.push(Hit {
                rule: rs.signals[s].id.clone(),
                queue: rs.queues[to].id.clone(),
                field: "signal".to_string(),
                matched: String::new(),
                weight: round(amount),
            });
        }
        evidence.sort_by(|a, b| {
            b.weight
                .abs()
                .total_cmp(&a.weight.abs())
                .then_with(|| a.rule.cmp(&b.rule))
        });

        let queue = &rs.queues[chosen];
        let confidence = round(confidences[chosen]);
        let verdict = Verdict {
            id: id.to_string(),
            queue: queue.id.clone(),
            destination: queue.destination.clone(),
            confidence,
            needs_review: confidence < queue.threshold,
            ranking,
            hits: evidence,
            language: language.unwrap_or_default(),
            ruleset_version: rs.version.clone(),
            notes: message.notes.clone(),
        };
        Ok(Detailed {
            verdict,
            fired,
            signals,
            reply_subject,
            subject,
            body,
            features,
            echoes,
        })
    }

    /// The terms that stand in the subject on their own, sorted: found outside its negated
    /// scopes, at least once not inside a longer word or phrase of the ruleset found there.
    /// "Re: Review report" names the audit report, not a review: the longest match decides what
    /// a word means. A prefix term and the word it begins are the same words; a regex's match,
    /// which may span a gap of any words, and a cue give no word its meaning. `hits` are every
    /// occurrence (before [`Engine::contextualise`]); `text` is the subject they point into.
    fn standing_subject_terms(&self, hits: &[TermHit], subject: &Spans, text: &str) -> Vec<u32> {
        let found: Vec<(u32, (usize, usize))> = hits
            .iter()
            .filter(|h| {
                h.field == Field::Subject
                    && subject.context(h.start as usize, h.end as usize) != Context::Negated
            })
            .map(|h| (h.term, word_extent(text, h.start as usize, h.end as usize)))
            .collect();
        let is_phrase = |t: u32| {
            !matches!(self.scanner.terms[t as usize], Term::Regex(_)) && self.cues[t as usize].is_none()
        };
        // The phrases' extents by start, with the furthest end so far: a sweep, not a test of
        // every pair (a huge subject holds thousands of hits).
        let mut phrases: Vec<(usize, usize)> = found
            .iter()
            .filter(|&&(t, _)| is_phrase(t))
            .map(|&(_, w)| w)
            .collect();
        phrases.sort_unstable();
        let furthest: Vec<usize> = phrases
            .iter()
            .scan(0, |end, &(_, e)| {
                *end = e.max(*end);
                Some(*end)
            })
            .collect();
        // Inside a longer one: one that starts before and reaches as far, or starts here and
        // reaches further.
        let inside_longer = |(start, end): (usize, usize)| {
            let before = phrases.partition_point(|&(s, _)| s < start);
            let here = phrases.partition_point(|&(s, _)| s <= start);
            (before > 0 && furthest[before - 1] >= end) || (here > before && phrases[here - 1].1 > end)
        };
        let mut standing: Vec<u32> = found
            .iter()
            .filter(|&&(_, w)| !inside_longer(w))
            .map(|&(t, _)| t)
            .collect();
        standing.sort_unstable();
        standing.dedup();
        standing
    }

    /// In a reply whose new text has a request sentence, multiplies by
    /// [`structure::ECHO_FACTOR`] the score of each rule whose evidence in the new text stands
    /// outside its request sentences while the reply subject supports the same queue; returns
    /// those rules (indexes into [`RuleSet::rules`]). `subject` holds the terms that stand in the
    /// subject on their own ([`Engine::standing_subject_terms`]).
    fn discount_echoes(&self, fired: &mut [Fired], body: &Spans, subject: &[u32]) -> Vec<usize> {
        let rs = &self.ruleset;
        let candidate = |f: &Fired| {
            f.score > 0.0
                && f.decisive.field == Field::Body
                && body.context(f.decisive.start as usize, f.decisive.end as usize) == Context::Plain
        };
        if !fired.iter().any(candidate) {
            return Vec::new();
        }
        // A new text that asks nothing is its own message (a forward: "anbei die Rechnung"),
        // however much it repeats the thread: there is no other question to give way to. Any
        // request sentence counts, an aside's too: a side question is still a question of the
        // writer's own, which the thread's topic should not outweigh.
        if body.requests.is_empty() {
            return Vec::new();
        }
        let in_subject = |rule: usize| {
            rs.rules[rule].fields.reads(Field::Subject, None)
                && self.units[rule]
                    .conditions
                    .iter()
                    .zip(&rs.rules[rule].conditions)
                    .any(|((terms, _), c)| {
                        c.triggers() && terms.ids().iter().any(|t| subject.binary_search(t).is_ok())
                    })
        };
        let subject_queues: Vec<usize> = fired
            .iter()
            .filter(|f| f.score > 0.0 && in_subject(f.rule))
            .map(|f| rs.rules[f.rule].queue)
            .collect();
        let mut echoes = Vec::new();
        for f in fired.iter_mut() {
            if candidate(f) && subject_queues.contains(&rs.rules[f.rule].queue) {
                f.score *= structure::ECHO_FACTOR;
                echoes.push(f.rule);
            }
        }
        echoes
    }

    /// Whether a signal that could move queue `chosen`'s evidence elsewhere was kept neither
    /// by firing nor by what its `unless` names (see [`score::Features::standing_unknown`]),
    /// and if so whether a queue it would move the evidence to has evidence of its own beyond
    /// the thread's (`scores` minus `weak`, the part from a reply subject, quoted history or
    /// the signature: an offer named in a disclaimer is no case;
    /// [`score::Features::standing_contested`]). `None`: the standing is known or decides
    /// nothing here.
    fn standing_unknown(
        &self,
        chosen: usize,
        fired: &[Fired],
        signals: &[usize],
        scores: &[f64],
        weak: &[f64],
    ) -> Option<Standing> {
        let n_rules = self.ruleset.rules.len();
        let unit_fired = |u: u32| match (u as usize).checked_sub(n_rules) {
            None => fired.iter().any(|f| f.rule == u as usize),
            Some(s) => signals.contains(&s),
        };
        let mut open = self.guards[chosen]
            .iter()
            .filter(|(s, unless)| !signals.contains(s) && !unless.iter().any(|&u| unit_fired(u)))
            .peekable();
        open.peek()?;
        let contested = open.any(|&(s, _)| {
            self.ruleset.signals[s]
                .moves
                .iter()
                .filter(|m| m.from == chosen)
                .filter_map(|m| m.to)
                .any(|to| scores[to] - weak[to] > 0.0)
        });
        Some(if contested {
            Standing::Contested
        } else {
            Standing::Unknown
        })
    }

    /// Runs every example of the ruleset.
    pub fn check_examples(&self) -> Vec<ExampleOutcome> {
        self.ruleset
            .examples
            .iter()
            .enumerate()
            .map(|(i, ex)| {
                let verdict = self.classify(&ex.location.to_string(), &example_message(&ex.ticket));
                let passed = match &ex.expect {
                    Expectation::Queue(q) => &verdict.queue == q,
                    Expectation::Not(q) => &verdict.queue != q,
                };
                ExampleOutcome {
                    example: i,
                    verdict,
                    passed,
                }
            })
            .collect()
    }

    /// Scans every field; the subject, the new text and the quoted text are folded into
    /// `folds` (in that order), where language detection reads them afterwards.
    fn scan(
        &self,
        prepared: &Prepared<'_>,
        cancel: &Cancel,
        folds: &mut TextFolds,
    ) -> Result<Vec<TermHit>, Cancelled> {
        let mut hits = Vec::new();
        for field in Field::ALL {
            cancel.check()?;
            let text = &prepared.texts[field as usize];
            if let Some(i) = [Field::Subject, Field::Body, Field::Quoted]
                .iter()
                .position(|&f| f == field)
            {
                fold_into(text, &mut folds[i]);
                self.scanner.scan_folded_field(field, text, &folds[i], &mut hits);
            } else if field == Field::Headers {
                if !self.scanner.reads(Field::Headers) {
                    continue;
                }
                // Line by line, so hits know their header and regexes anchor per header.
                let mut start = 0;
                for (i, line) in text.split_inclusive('\n').enumerate() {
                    let name = prepared.header_names.get(i).map_or("", String::as_str);
                    let line_text = line.trim_end_matches('\n');
                    self.scanner
                        .scan_header(name, line_text, i as u32, start, &mut hits);
                    start += line.len();
                }
            } else {
                self.scanner.scan(field, text, &mut hits);
            }
        }
        // Deduplicated after each hit has its context (see `contextualise`).
        Ok(hits)
    }

    /// The request sentences and negated scopes of one field, from the cues found in it.
    fn spans(&self, hits: &[TermHit], field: Field, prepared: &Prepared<'_>) -> Spans {
        let cues: Vec<CueHit> = hits
            .iter()
            .filter(|h| h.field == field)
            .filter_map(|h| {
                let (kind, scope, window) = self.cues[h.term as usize]?;
                Some(CueHit {
                    start: h.start as usize,
                    end: h.end as usize,
                    kind,
                    scope,
                    window,
                })
            })
            .collect();
        Spans::of(&prepared.texts[field as usize], &cues)
    }

    /// Gives every hit its context and keeps, per term, field and header, the best-placed one;
    /// returns the contexts in the order of the kept hits.
    fn contextualise(&self, hits: &mut Vec<TermHit>, subject: &Spans, body: &Spans) -> Vec<Context> {
        let context = |h: &TermHit| match h.field {
            Field::Subject => subject.context(h.start as usize, h.end as usize),
            Field::Body => body.context(h.start as usize, h.end as usize),
            _ => Context::Plain,
        };
        // Each hit's context once (a sort by a computed key would compute it per comparison);
        // best context first within each (term, field, header), then the earliest, then the
        // shortest (a total order, so the hit kept never depends on the sort).
        let mut placed: Vec<(TermHit, Context)> = hits.iter().map(|h| (*h, context(h))).collect();
        placed.sort_unstable_by_key(|(h, c)| {
            (h.term, h.field, h.header, std::cmp::Reverse(*c), h.start, h.end)
        });
        // Keep the first of each run, counting the occurrences outside negated scopes (for
        // `frequency = "log"` rules).
        hits.clear();
        let mut contexts = Vec::with_capacity(placed.len());
        for (h, c) in placed {
            match hits.last_mut() {
                Some(k) if (k.term, k.field, k.header) == (h.term, h.field, h.header) => {
                    if c != Context::Negated {
                        k.occurrences = k.occurrences.saturating_add(1);
                    }
                }
                _ => {
                    hits.push(h);
                    contexts.push(c);
                }
            }
        }
        contexts
    }

    /// Evaluates the candidate rules and signals in dependency order; returns the rules that
    /// fired and the signals (indexes into [`RuleSet::signals`]) that fired.
    fn evaluate(
        &self,
        hits: &[TermHit],
        contexts: &[Context],
        prepared: &Prepared<'_>,
        reply_subject: bool,
        language: Option<&str>,
    ) -> (Vec<Fired>, Vec<usize>) {
        let mut candidates: Vec<u32> = hits
            .iter()
            .flat_map(|h| self.triggers[h.term as usize].iter().copied())
            .collect();
        candidates.sort_unstable_by_key(|&u| (self.rank[u as usize], u));
        candidates.dedup();
        // Most terms of a candidate rule are absent: a bit per term answers that without a search.
        let mut present = vec![0u64; self.scanner.terms.len().div_ceil(64)];
        for h in hits {
            present[h.term as usize / 64] |= 1 << (h.term % 64);
        }
        let mut fired_units = vec![0u64; self.units.len().div_ceil(64)];
        let n_rules = self.ruleset.rules.len();
        let mut fired = Vec::new();
        let mut signals = Vec::new();
        for u in candidates {
            let unit = &self.units[u as usize];
            if let (Some(lang), false) = (language, unit.languages.is_empty())
                && !unit.languages.iter().any(|l| l == lang)
            {
                continue;
            }
            let found = Found {
                hits,
                contexts,
                present: &present,
                prepared,
                fields: &unit.fields,
                negated: unit.negated,
                reply_subject,
                fired: &fired_units,
            };
            let Some((factor, decisive)) = self.unit_factor(u as usize, &found) else {
                continue;
            };
            let factor = match self.ruleset.rules.get(u as usize).map(|r| r.frequency) {
                Some(Frequency::Log) => factor * sublinear(self.occurrences(u as usize, &found)),
                _ => factor,
            };
            fired_units[u as usize / 64] |= 1 << (u % 64);
            match (u as usize).checked_sub(n_rules) {
                None => {
                    let rule = &self.ruleset.rules[u as usize];
                    fired.push(Fired {
                        rule: u as usize,
                        score: rule.weight * factor,
                        decisive: hits[decisive as usize],
                    })
                }
                Some(s) => signals.push(s),
            }
        }
        (fired, signals)
    }

    /// How many times the terms that make unit `u` fire occur in the fields it reads, outside
    /// negated scopes.
    fn occurrences(&self, u: usize, found: &Found<'_>) -> u32 {
        let conditions = self.ruleset.rules[u].conditions.iter();
        conditions
            .zip(&self.units[u].conditions)
            .filter(|(c, _)| c.triggers())
            .flat_map(|(_, (terms, _))| terms.ids())
            .map(|&t| found.occurrences(t))
            .sum()
    }

    /// The unit's factor (the weakest of its conditions' evidence) and its decisive hit, or
    /// `None` when it does not fire.
    fn unit_factor(&self, u: usize, found: &Found<'_>) -> Option<(f64, u32)> {
        let conditions = match u.checked_sub(self.ruleset.rules.len()) {
            None => &self.ruleset.rules[u].conditions,
            Some(s) => &self.ruleset.signals[s].conditions,
        };
        let mut weakest: Option<(f64, u32)> = None;
        for (c, (terms, refs)) in conditions.iter().zip(&self.units[u].conditions) {
            match c.evaluate(terms, refs, found) {
                Outcome::Fails => return None,
                Outcome::Holds(Some(part)) => {
                    // Counter-evidence (negative factors) wins over any positive part.
                    if weakest.is_none_or(|(w, _)| part.0 < w) {
                        weakest = Some(part);
                    }
                }
                Outcome::Holds(None) => {}
            }
        }
        weakest
    }

    fn hit(&self, fired: &Fired, prepared: &Prepared<'_>) -> Hit {
        let rule = &self.ruleset.rules[fired.rule];
        let h = fired.decisive;
        let text = &prepared.texts[h.field as usize];
        let matched = whole_words(text, h.start as usize, h.end as usize).to_string();
        let field = match h.field {
            Field::Headers => match prepared.header_names.get(h.header as usize) {
                Some(name) => format!("header:{name}"),
                None => "headers".to_string(),
            },
            f => f.name().to_string(),
        };
        Hit {
            rule: rule.id.clone(),
            queue: self.ruleset.queues[rule.queue].id.clone(),
            field,
            matched,
            weight: round(fired.score),
        }
    }
}

/// The terms found in a message, as one rule or signal sees them.
struct Found<'a> {
    /// Sorted by term id, one per term, field and header (the best-placed).
    hits: &'a [TermHit],
    /// Each hit's context.
    contexts: &'a [Context],
    /// A bit per term id: found at all.
    present: &'a [u64],
    prepared: &'a Prepared<'a>,
    fields: &'a FieldSet,
    negated: Negated,
    reply_subject: bool,
    /// A bit per unit: fired already.
    fired: &'a [u64],
}

impl Evidence for Found<'_> {
    /// The best hit of term `t` among the fields the unit reads: its field weight (a reply
    /// subject counting [`structure::REPLY_SUBJECT_WEIGHT`]) times its context factor. A term
    /// found only in negated scopes is absent, or counter-evidence (a negative weight) for a
    /// rule with `negated = "counter"`.
    fn best(&self, t: u32) -> Option<(f64, u32)> {
        if !self.is_present(t) {
            return None;
        }
        self.best_present(t)
    }

    fn fired(&self, unit: u32) -> bool {
        self.fired[unit as usize / 64] & (1 << (unit % 64)) != 0
    }

    /// The terms found, in the order written, with the absent ones skipped by their bit (a
    /// long list by its blocks of ids: [`TermIds::each_present`]).
    fn each_found(&self, terms: &TermIds, each: &mut dyn FnMut(u32, (f64, u32)) -> ControlFlow<()>) {
        terms.each_present(self.present, |t| match self.best_present(t) {
            Some(hit) => each(t, hit),
            None => ControlFlow::Continue(()),
        });
    }
}

impl Found<'_> {
    /// Whether term `t` was found anywhere in the message (its bit).
    fn is_present(&self, t: u32) -> bool {
        self.present[t as usize / 64] & (1 << (t % 64)) != 0
    }

    /// [`Evidence::best`] of a term whose bit is set.
    fn best_present(&self, t: u32) -> Option<(f64, u32)> {
        let from = self.hits.partition_point(|h| h.term < t);
        let mut best: Option<(f64, u32)> = None;
        let mut negated: Option<(f64, u32)> = None;
        for (i, h) in self.hits[from..]
            .iter()
            .enumerate()
            .take_while(|(_, h)| h.term == t)
        {
            if !self.reads(h) {
                continue;
            }
            let field_weight = if h.field == Field::Subject && self.reply_subject {
                structure::REPLY_SUBJECT_WEIGHT
            } else {
                h.field.weight()
            };
            let index = (from + i) as u32;
            match self.contexts[from + i] {
                Context::Negated => {
                    if negated.is_none_or(|(w, _)| field_weight > w) {
                        negated = Some((field_weight, index));
                    }
                }
                context => {
                    let w = field_weight * context.factor();
                    if best.is_none_or(|(b, _)| w > b) {
                        best = Some((w, index));
                    }
                }
            }
        }
        match (best, negated, self.negated) {
            (Some(b), _, _) => Some(b),
            (None, Some((w, i)), Negated::Counter) => Some((-w, i)),
            _ => None,
        }
    }

    /// Whether the unit reads the field (and header line) of hit `h`.
    fn reads(&self, h: &TermHit) -> bool {
        let header = (h.field == Field::Headers)
            .then(|| {
                self.prepared
                    .header_names
                    .get(h.header as usize)
                    .map(String::as_str)
            })
            .flatten();
        self.fields.reads(h.field, header)
    }

    /// How many times term `t` occurs in the fields the unit reads, outside negated scopes.
    fn occurrences(&self, t: u32) -> u32 {
        if self.present[t as usize / 64] & (1 << (t % 64)) == 0 {
            return 0;
        }
        let from = self.hits.partition_point(|h| h.term < t);
        self.hits[from..]
            .iter()
            .zip(&self.contexts[from..])
            .take_while(|(h, _)| h.term == t)
            .filter(|(h, context)| **context != Context::Negated && self.reads(h))
            .map(|(h, _)| u32::from(h.occurrences))
            .sum()
    }
}

/// The factor of `n` occurrences under sublinear term frequency: `1 + ln n` (see
/// [`Frequency::Log`]); 1 for none, so that a rule fired by counter-evidence alone keeps it.
fn sublinear(n: u32) -> f64 {
    1.0 + f64::from(n.max(1)).ln()
}

/// Unit indexes ordered so that every unit comes after the units it refers to (the loader has
/// refused cycles); otherwise in file order, rules before signals.
fn evaluation_order(units: &[Unit]) -> Vec<u32> {
    fn visit(u: usize, units: &[Unit], done: &mut [bool], order: &mut Vec<u32>) {
        if done[u] {
            return;
        }
        done[u] = true;
        for (_, refs) in &units[u].conditions {
            for &r in refs {
                visit(r as usize, units, done, order);
            }
        }
        order.push(u as u32);
    }
    let mut done = vec![false; units.len()];
    let mut order = Vec::with_capacity(units.len());
    for u in 0..units.len() {
        visit(u, units, &mut done, &mut order);
    }
    order
}

fn prepare(message: &Message) -> Prepared<'_> {
    use std::borrow::Cow::{Borrowed, Owned};
    let mut headers = String::new();
    let mut header_names = Vec::with_capacity(message.headers.len());
    for (name, value) in &message.headers {
        // Header values may carry folded lines; keep one header per line for attribution.
        let value = value.replace(['\r', '\n'], " ");
        headers.push_str(name);
        headers.push_str(": ");
        headers.push_str(&value);
        headers.push('\n');
        header_names.push(name.to_ascii_lowercase());
    }
    Prepared {
        texts: [
            Borrowed(message.subject.as_str()),
            Borrowed(message.body.as_str()),
            Borrowed(message.quoted.as_str()),
            Borrowed(message.signature.as_str()),
            Borrowed(message.from.as_str()),
            Owned(message.to.join(", ")),
            Owned(message.cc.join(", ")),
            Owned(headers),
            Owned(message.attachment_names.join("\n")),
        ],
        header_names,
    }
}

/// The folds of a message's subject, new text and quoted text (see [`Engine::scan`]).
type TextFolds = [Folded; 3];

thread_local! {
    /// The folds of the message being classified, one set per thread, reused: the scan reads
    /// them and language detection reads them again, so each of these fields is folded once.
    static TEXT_FOLDS: std::cell::RefCell<TextFolds> = std::cell::RefCell::default();
}

/// Folds grown past this (by a huge message) are given back after the message rather than
/// kept for the life of the thread.
const KEEP_FOLD_BYTES: usize = 1 << 20;

/// The caller's language when given (the intake has checked it), otherwise detected from the
/// subject and new text (and the quoted text when the new text is too short to tell).
pub(crate) fn language_of(message: &Message) -> Option<String> {
    if let Some(code) = message.language.as_deref().and_then(crate::intake::language_code) {
        return Some(code);
    }
    lang::detect(&language_sample(message)).map(str::to_string)
}

/// [`language_of`], reading the folds the scan made (`folds`, as [`Engine::scan`] leaves them)
/// instead of folding the sample again: the same pieces, cut where the sample cuts them.
fn language_from(message: &Message, folds: &TextFolds) -> Option<String> {
    if let Some(code) = message.language.as_deref().and_then(crate::intake::language_code) {
        return Some(code);
    }
    // The sample's pieces (as `language_sample` pushes them), with the fold of each field.
    let parts: [(&str, Option<&Folded>); 5] = [
        (&message.subject, Some(&folds[0])),
        ("\n", None),
        (&message.body, Some(&folds[1])),
        ("\n", None),
        (&message.quoted, Some(&folds[2])),
    ];
    let parts = if message.body.trim().len() < 40 {
        &parts[..]
    } else {
        &parts[..3]
    };
    let mut room = lang::SAMPLE_BYTES;
    let mut pieces = [""; 3];
    let mut n = 0;
    for &(text, folded) in parts {
        let take = if text.len() <= room {
            text.len()
        } else {
            (0..=room).rev().find(|&i| text.is_char_boundary(i)).unwrap_or(0)
        };
        if let Some(f) = folded {
            let end = if take == text.len() {
                f.text.len()
            } else {
                f.folded_before(take)
            };
            pieces[n] = &f.text[..end];
            n += 1;
        }
        room -= take;
        if take < text.len() {
            break;
        }
    }
    lang::detect_folded(&pieces[..n], || language_sample(message).into()).map(str::to_string)
}

/// The text language detection reads: the subject and the new text (and the quoted text when
/// the new text is too short to tell), their first [`lang::SAMPLE_BYTES`].
fn language_sample(message: &Message) -> String {
    // Only the first bytes decide: copy no more of a long body than that.
    let mut sample = Sample::new(lang::SAMPLE_BYTES);
    sample.push(&message.subject);
    sample.push("\n");
    sample.push(&message.body);
    if message.body.trim().len() < 40 {
        sample.push("\n");
        sample.push(&message.quoted);
    }
    sample.text
}

/// The first `max` bytes (cut at a character boundary) of the pieces pushed, one after another.
struct Sample {
    text: String,
    max: usize,
    full: bool,
}

impl Sample {
    fn new(max: usize) -> Sample {
        Sample {
            text: String::with_capacity(max),
            max,
            full: false,
        }
    }

    fn push(&mut self, piece: &str) {
        if self.full {
            return;
        }
        let room = self.max - self.text.len();
        if piece.len() <= room {
            self.text.push_str(piece);
            return;
        }
        let mut end = room;
        while !piece.is_char_boundary(end) {
            end -= 1;
        }
        self.text.push_str(&piece[..end]);
        self.full = true;
    }
}

/// The span `start..end` of `text` widened to whole words, so a prefix term (`factur*`) quotes
/// the word it matched in (`facturen`), not the prefix; `""` when the span is not in `text`.
fn whole_words(text: &str, start: usize, end: usize) -> &str {
    whole_word_range(text, start, end).map_or("", |(s, e)| &text[s..e])
}

/// `start..end` widened to whole words where it begins or ends inside a word (a prefix term's
/// hit, "factur" of "factura"); a span that ends at a space stays where it ends. Not a span of
/// `text`: `start..end` as it is.
fn word_extent(text: &str, start: usize, end: usize) -> (usize, usize) {
    if start > end || end > text.len() || !text.is_char_boundary(start) || !text.is_char_boundary(end) {
        return (start, end);
    }
    let inside = |at: usize| {
        text[..at].chars().next_back().is_some_and(char::is_alphanumeric)
            && text[at..].chars().next().is_some_and(char::is_alphanumeric)
    };
    let mut s = start;
    while inside(s) {
        s -= text[..s].chars().next_back().map_or(0, char::len_utf8);
    }
    let mut e = end;
    while inside(e) {
        e += text[e..].chars().next().map_or(0, char::len_utf8);
    }
    (s, e)
}

/// The byte range of [`whole_words`], or `None` when `start..end` is not a span of `text`.
fn whole_word_range(text: &str, start: usize, end: usize) -> Option<(usize, usize)> {
    if start > end || end > text.len() || !text.is_char_boundary(start) || !text.is_char_boundary(end) {
        return None;
    }
    let start = text[..start]
        .char_indices()
        .rev()
        .take_while(|(_, c)| c.is_alphanumeric())
        .last()
        .map_or(start, |(i, _)| i);
    let end = end
        + text[end..]
            .char_indices()
            .find(|(_, c)| !c.is_alphanumeric())
            .map_or(text.len() - end, |(i, _)| i);
    Some((start, end))
}

/// An example's message, through the same intake as every interface's.
fn example_message(ticket: &crate::message::Ticket) -> Message {
    intake(Input::Ticket(ticket), None, &Limits::default()).unwrap_or_else(|_| Message::from_ticket(ticket))
}

/// Rounds to four decimals: verdicts are read by people and diffed by replay.
fn round(x: f64) -> f64 {
    (x * 10_000.0).round() / 10_000.0
}

#[cfg(test)]
mod tests;
