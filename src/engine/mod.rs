//! [`RuleSet`] → compiled matchers; [`Message`] → [`Verdict`].
//!
//! - [`matcher`]: one automaton for all terms; each field is scanned once.
//! - [`score`]: evidence → confidence (softmax with a calibrated temperature).
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
//!   than one that says "invoice" once.

pub mod explain;
pub mod matcher;
pub mod score;

pub use matcher::CompileError;
use matcher::{Matcher, TermHit};

use crate::cancel::{Cancel, Cancelled};
use crate::intake::{Input, intake};
use crate::mail::Limits;
use crate::message::Message;
use crate::rules::{Expectation, Field, Rule, RuleSet, Term};
use crate::text::lang;
use crate::verdict::{Hit, Rank, Verdict};

/// Extra evidence per further distinct `any` term found, and how many count.
const BREADTH_BONUS: f64 = 0.25;
const BREADTH_MAX_EXTRA: usize = 2;

/// A compiled, immutable ruleset: share it (`Arc<Engine>`) between threads.
#[derive(Debug)]
pub struct Engine {
    ruleset: RuleSet,
    matcher: Matcher,
    compiled: Vec<CompiledRule>,
    /// For each term id: the rules that become candidates when it is found.
    triggers: Vec<Vec<u32>>,
}

/// A rule's terms as term ids.
#[derive(Debug)]
struct CompiledRule {
    any: Vec<u32>,
    all: Vec<u32>,
    none: Vec<u32>,
    of: Vec<u32>,
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
        let mut compiled = Vec::with_capacity(ruleset.rules.len());
        for rule in &ruleset.rules {
            compiled.push(CompiledRule {
                any: rule.any.iter().map(&mut intern).collect(),
                all: rule.all.iter().map(&mut intern).collect(),
                none: rule.none.iter().map(&mut intern).collect(),
                of: rule.of.iter().map(&mut intern).collect(),
            });
        }
        let mut triggers = vec![Vec::new(); terms.len()];
        for (r, c) in compiled.iter().enumerate() {
            for &t in c.any.iter().chain(&c.all).chain(&c.of) {
                if triggers[t as usize].last() != Some(&(r as u32)) {
                    triggers[t as usize].push(r as u32);
                }
            }
        }
        let matcher = Matcher::new(terms)?;
        Ok(Engine {
            ruleset,
            matcher,
            compiled,
            triggers,
        })
    }

    /// The ruleset this engine was compiled from.
    pub fn ruleset(&self) -> &RuleSet {
        &self.ruleset
    }

    /// The number of distinct terms across all rules.
    pub fn term_count(&self) -> usize {
        self.matcher.terms.len()
    }

    /// Classifies one message.
    pub fn classify(&self, id: &str, message: &Message) -> Verdict {
        let (verdict, _) = self.classify_detailed(id, message);
        verdict
    }

    /// Classifies one message, stopping with [`Cancelled`] soon after `cancel` is set: it is
    /// checked between the scans of the fields, each bounded by the size of its text.
    pub fn classify_with(&self, id: &str, message: &Message, cancel: &Cancel) -> Result<Verdict, Cancelled> {
        self.classify_checked(id, message, cancel)
            .map(|(verdict, _)| verdict)
    }

    /// Classifies one message and also returns the rules that fired, for explanations.
    pub fn classify_detailed(&self, id: &str, message: &Message) -> (Verdict, Vec<Fired>) {
        self.classify_checked(id, message, &Cancel::never())
            .expect("a flag that is never set cannot cancel")
    }

    fn classify_checked(
        &self,
        id: &str,
        message: &Message,
        cancel: &Cancel,
    ) -> Result<(Verdict, Vec<Fired>), Cancelled> {
        let prepared = prepare(message);
        let language = language_of(message);
        let hits = self.scan(&prepared, cancel)?;
        let fired = self.evaluate(&hits, &prepared, language.as_deref());

        let rs = &self.ruleset;
        let mut scores = vec![0.0; rs.queues.len()];
        for f in &fired {
            scores[rs.rules[f.rule].queue] += f.score;
        }
        let confidences = score::softmax(&scores, rs.calibration.temperature);
        let best = (0..scores.len()).max_by(|&a, &b| scores[a].total_cmp(&scores[b]).then(b.cmp(&a)));
        let chosen = match best {
            Some(q) if scores[q] > 0.0 => q,
            _ => rs.fallback,
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
        Ok((verdict, fired))
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

    fn scan(&self, prepared: &Prepared<'_>, cancel: &Cancel) -> Result<Vec<TermHit>, Cancelled> {
        let mut hits = Vec::new();
        for field in Field::ALL {
            cancel.check()?;
            let text = &prepared.texts[field as usize];
            if field == Field::Headers {
                // Line by line, so hits know their header and regexes anchor per header.
                let mut start = 0;
                for (i, line) in text.split_inclusive('\n').enumerate() {
                    self.matcher
                        .scan(field, line.trim_end_matches('\n'), i as u32, start, &mut hits);
                    start += line.len();
                }
            } else {
                self.matcher.scan(field, text, 0, 0, &mut hits);
            }
        }
        // One hit per term, field and header is all the scoring needs: keep the first.
        hits.sort_unstable_by_key(|h| (h.term, h.field, h.header, h.start));
        hits.dedup_by_key(|h| (h.term, h.field, h.header));
        Ok(hits)
    }

    fn evaluate(&self, hits: &[TermHit], prepared: &Prepared<'_>, language: Option<&str>) -> Vec<Fired> {
        let mut candidates: Vec<u32> = hits
            .iter()
            .flat_map(|h| self.triggers[h.term as usize].iter().copied())
            .collect();
        candidates.sort_unstable();
        candidates.dedup();
        // Most terms of a candidate rule are absent: a bit per term answers that without a search.
        let mut present = vec![0u64; self.matcher.terms.len().div_ceil(64)];
        for h in hits {
            present[h.term as usize / 64] |= 1 << (h.term % 64);
        }
        let found = Found {
            hits,
            present: &present,
            prepared,
        };
        let mut fired = Vec::new();
        for r in candidates {
            let rule = &self.ruleset.rules[r as usize];
            if let (Some(lang), false) = (language, rule.languages.is_empty())
                && !rule.languages.iter().any(|l| l == lang)
            {
                continue;
            }
            if let Some((factor, decisive)) = self.rule_factor(rule, &self.compiled[r as usize], &found) {
                fired.push(Fired {
                    rule: r as usize,
                    score: rule.weight * factor,
                    decisive,
                });
            }
        }
        fired
    }

    /// The rule's field factor × breadth and its decisive hit, or `None` when it does not fire.
    fn rule_factor(&self, rule: &Rule, c: &CompiledRule, found: &Found<'_>) -> Option<(f64, TermHit)> {
        let best = |t: u32| found.best(rule, t);
        if c.none.iter().any(|&t| best(t).is_some()) {
            return None;
        }
        let mut parts: Vec<(f64, TermHit)> = Vec::with_capacity(3);
        if !c.any.is_empty() {
            let found: Vec<(f64, TermHit)> = c.any.iter().filter_map(|&t| best(t)).collect();
            let top = found.iter().copied().max_by(|a, b| a.0.total_cmp(&b.0))?;
            let extra = (found.len() - 1).min(BREADTH_MAX_EXTRA) as f64;
            parts.push((top.0 * (1.0 + BREADTH_BONUS * extra), top.1));
        }
        if !c.all.is_empty() {
            let found: Option<Vec<(f64, TermHit)>> = c.all.iter().map(|&t| best(t)).collect();
            parts.push(found?.into_iter().min_by(|a, b| a.0.total_cmp(&b.0))?);
        }
        if !c.of.is_empty() {
            let mut found: Vec<(f64, TermHit)> = c.of.iter().filter_map(|&t| best(t)).collect();
            if found.len() < rule.at_least {
                return None;
            }
            found.sort_by(|a, b| b.0.total_cmp(&a.0));
            parts.push(found[rule.at_least.max(1) - 1]);
        }
        parts.into_iter().min_by(|a, b| a.0.total_cmp(&b.0))
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

/// The terms found in a message, for rule evaluation.
struct Found<'a> {
    /// Sorted by term id, one per term, field and header.
    hits: &'a [TermHit],
    /// A bit per term id: found at all.
    present: &'a [u64],
    prepared: &'a Prepared<'a>,
}

impl Found<'_> {
    /// The best hit of term `t` among the fields `rule` reads, with its field weight.
    fn best(&self, rule: &Rule, t: u32) -> Option<(f64, TermHit)> {
        if self.present[t as usize / 64] & (1 << (t % 64)) == 0 {
            return None;
        }
        let from = self.hits.partition_point(|h| h.term < t);
        self.hits[from..]
            .iter()
            .take_while(|h| h.term == t)
            .filter(|h| {
                let header = (h.field == Field::Headers)
                    .then(|| {
                        self.prepared
                            .header_names
                            .get(h.header as usize)
                            .map(String::as_str)
                    })
                    .flatten();
                rule.fields.reads(h.field, header)
            })
            .map(|h| (h.field.weight(), *h))
            .max_by(|a, b| a.0.total_cmp(&b.0))
    }
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

/// The caller's language when given (the intake has checked it), otherwise detected from the
/// subject and new text (and the quoted text when the new text is too short to tell).
pub(crate) fn language_of(message: &Message) -> Option<String> {
    if let Some(code) = message.language.as_deref().and_then(crate::intake::language_code) {
        return Some(code);
    }
    let mut sample = String::with_capacity(message.subject.len() + message.body.len() + 1);
    sample.push_str(&message.subject);
    sample.push('\n');
    sample.push_str(&message.body);
    if message.body.trim().len() < 40 {
        sample.push('\n');
        sample.push_str(&message.quoted);
    }
    lang::detect(&sample).map(str::to_string)
}

/// The span `start..end` of `text` widened to whole words, so a prefix term (`factur*`) quotes
/// the word it matched in (`facturen`), not the prefix; `""` when the span is not in `text`.
fn whole_words(text: &str, start: usize, end: usize) -> &str {
    if start > end || !text.is_char_boundary(start) || !text.is_char_boundary(end) || end > text.len() {
        return "";
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
    &text[start..end]
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
