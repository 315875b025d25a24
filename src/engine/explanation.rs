//! The verdict explained as data: what [`super::explain`] tells in words, with every piece of
//! evidence and every structural span located in the message, for a page that highlights them
//! in place (the admin port's playground) or any other client.
//!
//! Positions are **byte offsets into UTF-8 text**: each [`Evidence`] and [`Span`] names a field
//! of [`Explanation::fields`] and a range `start..end` of that field's `text`, which is the text
//! exactly as the engine scanned it (the subject, the new text, quoted history, signature,
//! sender, recipients, headers as `name: value` lines, attachment names one per line). Nothing
//! here is HTML: rendering is the client's business.

use serde::Serialize;

use super::score::Features;
use super::{Detailed, Engine, Prepared, prepare, whole_word_range};
use crate::message::Message;
use crate::rules::{Field, Location, RuleSet};
use crate::verdict::Verdict;

/// A verdict with its evidence located in the message (see the module documentation).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Explanation {
    /// The verdict, exactly as every interface returns it.
    pub verdict: Verdict,
    /// Whether it is routed or needs review, and why.
    pub review: Review,
    /// Every queue of the ruleset, in ruleset order (a client can colour queues by index).
    pub queues: Vec<QueueScore>,
    /// The texts positions refer to; fields that are empty are left out.
    pub fields: Vec<Text>,
    /// One entry per rule that fired and per evidence a signal moved, strongest first (the
    /// order of the verdict's `hits`).
    pub evidence: Vec<Evidence>,
    /// Request sentences and negated or settled scopes of the subject and the new text.
    pub spans: Vec<Span>,
    /// True when the subject is a reply or forward subject: thread context, not the request.
    pub reply_subject: bool,
    /// The signals that fired, in evaluation order.
    pub signals: Vec<Named>,
    /// What the confidence model saw.
    pub features: Features,
}

/// Why a verdict is routed, or why it needs a person.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Review {
    /// The verdict's `needs_review`.
    pub needs_review: bool,
    /// The chosen queue's auto-route threshold.
    pub threshold: f64,
    /// The reason, in one sentence.
    pub reason: String,
}

/// One queue's standing (every queue, with evidence or not).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct QueueScore {
    /// The queue id.
    pub queue: String,
    /// Its mailbox; empty where it has none.
    pub destination: String,
    /// Its auto-route threshold.
    pub threshold: f64,
    /// Summed evidence (0 without any).
    pub score: f64,
    /// Its confidence, for queues in the verdict's ranking.
    pub confidence: Option<f64>,
    /// True for the chosen queue.
    pub chosen: bool,
}

/// A field's text, as the engine scanned it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Text {
    /// `subject`, `body`, `quoted`, `signature`, `from`, `to`, `cc`, `headers` or
    /// `attachment_names`.
    pub field: &'static str,
    /// How much a term found here counts (see `rules/README.md`, "Fields").
    pub weight: f64,
    /// The text.
    pub text: String,
}

/// One piece of evidence with its place in the message and in the rule files.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Evidence {
    /// The rule's id, or the signal's for evidence a signal moved.
    pub rule: String,
    /// The queue the evidence counts for (or, when negative, against).
    pub queue: String,
    /// The evidence added to the queue.
    pub weight: f64,
    /// The field of [`Explanation::fields`] the positions refer to; `signal` for moved
    /// evidence, which has no place in the text.
    pub field: String,
    /// The header's name (lower case) when `field` is `headers`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub header: Option<String>,
    /// Byte offset where the matched words start in the field's text.
    pub start: Option<usize>,
    /// Byte offset where they end.
    pub end: Option<usize>,
    /// The matched words (the text at `start..end`).
    pub matched: String,
    /// The rule's term that matched, as the engine compiled it (folded: `factur*`).
    pub term: Option<String>,
    /// Where the rule (or signal) is written.
    pub location: Location,
    /// True when the evidence echoes the reply's thread: the reply subject supports the rule's
    /// queue and its decisive words stand outside the request, so it counted
    /// [`structure::ECHO_FACTOR`](super::structure::ECHO_FACTOR) of its weight.
    pub echo: bool,
}

/// A structural span of a text.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Span {
    /// `subject` or `body`.
    pub field: &'static str,
    /// What the span is.
    pub kind: SpanKind,
    /// Byte offset of its start in the field's text.
    pub start: usize,
    /// Byte offset of its end.
    pub end: usize,
}

/// What a [`Span`] marks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SpanKind {
    /// A sentence that asks or directs: terms in it count more.
    Request,
    /// A negated or settled scope: terms in it are no evidence (or counter-evidence).
    Negated,
    /// The preamble before a turn to the real request: terms in it count less.
    Preamble,
    /// A sentence the writer marks as a side point: terms in it count less.
    Aside,
}

/// A named item of the ruleset and where it is written.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Named {
    /// Its id.
    pub id: String,
    /// Where it is written.
    pub location: Location,
}

impl Explanation {
    /// Locates what `engine` saw in `message` (the message `detailed` was computed from).
    pub fn new(engine: &Engine, message: &Message, detailed: &Detailed) -> Explanation {
        let rs = engine.ruleset();
        let verdict = &detailed.verdict;
        let prepared = prepare(message);
        let fields = Field::ALL
            .iter()
            .filter(|&&f| !prepared.texts[f as usize].is_empty())
            .map(|&f| Text {
                field: f.name(),
                weight: f.weight(),
                text: prepared.texts[f as usize].to_string(),
            })
            .collect();
        let queues = rs
            .queues
            .iter()
            .map(|q| {
                let rank = verdict.ranking.iter().find(|r| r.queue == q.id);
                QueueScore {
                    queue: q.id.clone(),
                    destination: q.destination.clone(),
                    threshold: q.threshold,
                    score: rank.map_or(0.0, |r| r.score),
                    confidence: rank.map(|r| r.confidence),
                    chosen: q.id == verdict.queue,
                }
            })
            .collect();
        let evidence = verdict
            .hits
            .iter()
            .filter_map(|hit| locate(engine, detailed, &prepared, hit))
            .collect();
        let mut spans = Vec::new();
        for (field, of) in [("subject", &detailed.subject), ("body", &detailed.body)] {
            let kinds = [
                (SpanKind::Request, &of.requests),
                (SpanKind::Negated, &of.negated),
                (SpanKind::Preamble, &of.preamble),
                (SpanKind::Aside, &of.asides),
            ];
            for (kind, ranges) in kinds {
                spans.extend(ranges.iter().map(|&(start, end)| Span {
                    field,
                    kind,
                    start,
                    end,
                }));
            }
        }
        Explanation {
            verdict: verdict.clone(),
            review: review(rs, verdict, &detailed.features),
            queues,
            fields,
            evidence,
            spans,
            reply_subject: detailed.reply_subject,
            signals: detailed
                .signals
                .iter()
                .map(|&s| Named {
                    id: rs.signals[s].id.clone(),
                    location: rs.signals[s].location.clone(),
                })
                .collect(),
            features: detailed.features,
        }
    }
}

/// The place of one of the verdict's hits: in the text for a rule, nowhere for moved evidence.
fn locate(
    engine: &Engine,
    detailed: &Detailed,
    prepared: &Prepared<'_>,
    hit: &crate::Hit,
) -> Option<Evidence> {
    let rs = engine.ruleset();
    if hit.field == "signal" {
        let signal = rs.signals.iter().find(|s| s.id == hit.rule)?;
        return Some(Evidence {
            rule: hit.rule.clone(),
            queue: hit.queue.clone(),
            weight: hit.weight,
            field: "signal".to_string(),
            header: None,
            start: None,
            end: None,
            matched: String::new(),
            term: None,
            location: signal.location.clone(),
            echo: false,
        });
    }
    let fired = detailed.fired.iter().find(|f| rs.rules[f.rule].id == hit.rule)?;
    let h = fired.decisive;
    let text = &prepared.texts[h.field as usize];
    let (start, end) = whole_word_range(text, h.start as usize, h.end as usize)?;
    let header = (h.field == Field::Headers)
        .then(|| prepared.header_names.get(h.header as usize).cloned())
        .flatten();
    Some(Evidence {
        rule: hit.rule.clone(),
        queue: hit.queue.clone(),
        weight: hit.weight,
        field: h.field.name().to_string(),
        header,
        start: Some(start),
        end: Some(end),
        matched: text[start..end].to_string(),
        term: engine.scanner.terms.get(h.term as usize).map(ToString::to_string),
        location: rs.rules[fired.rule].location.clone(),
        echo: detailed.echoes.contains(&fired.rule),
    })
}

/// Share of unexplained new text from which a message that does not read as addressed to us
/// is called "mostly about something else" in a review reason.
const MOSTLY_ELSEWHERE: f64 = 0.5;

/// Why `verdict` is routed or needs review: its confidence against its queue's threshold and,
/// when it needs review, what stands in the way (no evidence, a competing queue, a message
/// mostly about something else and not addressed to us, weak evidence). `features` are what
/// the confidence model saw for this verdict.
pub fn review(ruleset: &RuleSet, verdict: &Verdict, features: &Features) -> Review {
    let threshold = ruleset
        .queue_index(&verdict.queue)
        .map_or(0.0, |q| ruleset.queues[q].threshold);
    let reason = if verdict.needs_review {
        let why = if verdict.hits.is_empty() {
            "there is no evidence at all".to_string()
        } else if let Some(second) = verdict.ranking.get(1).filter(|s| s.confidence > 0.2) {
            format!(
                "{} competes with {:.2} confidence",
                second.queue, second.confidence
            )
        } else if features.addressed == 0.0 && features.unexplained >= MOSTLY_ELSEWHERE {
            format!(
                "it does not read as addressed to us and {:.0}% of its new text is about something the rules do not know",
                features.unexplained * 100.0
            )
        } else {
            "the evidence is weak".to_string()
        };
        format!(
            "confidence {:.2} is below the {} threshold {threshold:.2}; {why}",
            verdict.confidence, verdict.queue
        )
    } else {
        format!(
            "confidence {:.2} is at or above the {} threshold {threshold:.2}",
            verdict.confidence, verdict.queue
        )
    };
    Review {
        needs_review: verdict.needs_review,
        threshold,
        reason,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::intake::{Input, intake};
    use crate::mail::Limits;
    use crate::{Engine, Ticket};

    fn explained(subject: &str, body: &str) -> Explanation {
        let engine = Engine::new(RuleSet::builtin()).unwrap();
        let ticket = Ticket {
            id: "x".into(),
            subject: subject.into(),
            body: body.into(),
            ..Ticket::default()
        };
        let message = intake(Input::Ticket(&ticket), None, &Limits::default()).unwrap();
        Explanation::new(&engine, &message, &engine.detailed("x", &message))
    }

    fn text<'e>(e: &'e Explanation, field: &str) -> &'e str {
        &e.fields.iter().find(|t| t.field == field).unwrap().text
    }

    #[test]
    fn every_piece_of_evidence_points_at_the_words_it_quotes() {
        let e = explained(
            "Rechnung doppelt abgebucht",
            "Sie haben die Gebühr für März zweimal per Lastschrift eingezogen.",
        );
        assert_eq!(e.verdict.queue, "contract");
        assert!(!e.evidence.is_empty());
        for ev in &e.evidence {
            let (start, end) = (ev.start.unwrap(), ev.end.unwrap());
            assert_eq!(&text(&e, &ev.field)[start..end], ev.matched, "{ev:?}");
            assert!(
                ev.location.file.ends_with(".toml") && ev.location.line > 0,
                "{ev:?}"
            );
            assert!(ev.term.is_some(), "{ev:?}");
        }
        assert!(
            e.evidence
                .iter()
                .any(|ev| ev.matched == "Rechnung" && ev.field == "subject")
        );
    }

    #[test]
    fn positions_are_byte_offsets_past_multibyte_characters() {
        let e = explained(
            "",
            "Ünd äöü: die Rechnung für März ist falsch, bitte korrigieren.",
        );
        let ev = e.evidence.iter().find(|ev| ev.matched == "Rechnung").unwrap();
        assert_eq!(ev.start, Some("Ünd äöü: die ".len()));
    }

    #[test]
    fn every_queue_is_listed_in_ruleset_order_with_the_chosen_one_marked() {
        let e = explained("Abmahnung erhalten", "");
        let rs = RuleSet::builtin();
        let ids: Vec<&str> = e.queues.iter().map(|q| q.queue.as_str()).collect();
        let expected: Vec<&str> = rs.queues.iter().map(|q| q.id.as_str()).collect();
        assert_eq!(ids, expected);
        let chosen: Vec<&QueueScore> = e.queues.iter().filter(|q| q.chosen).collect();
        assert_eq!(chosen.len(), 1);
        assert_eq!(chosen[0].queue, "legal");
        assert!(chosen[0].score > 0.0 && chosen[0].confidence.is_some());
    }

    #[test]
    fn request_sentences_and_negated_scopes_are_spans_of_their_text() {
        let e = explained(
            "AW: Rechnung",
            "Die Rechnung ist bereits bezahlt. Funktioniert das Widget mit Shopware?",
        );
        assert!(e.reply_subject);
        let span = |kind| {
            let s = e
                .spans
                .iter()
                .find(|s| s.kind == kind && s.field == "body")
                .unwrap();
            text(&e, "body")[s.start..s.end].trim().to_string()
        };
        assert_eq!(span(SpanKind::Negated), "Die Rechnung ist bereits bezahlt");
        assert!(span(SpanKind::Request).ends_with("Shopware?"));
    }

    #[test]
    fn moved_evidence_names_its_signal_without_a_place_in_the_text() {
        let e = explained(
            "",
            "Wir sind noch kein Mitglied: funktioniert das Widget mit Shopware? Was kostet es?",
        );
        assert!(e.signals.iter().any(|s| s.id == "prospect"), "{:?}", e.signals);
        let moved = e.evidence.iter().find(|ev| ev.field == "signal").unwrap();
        assert_eq!(moved.rule, "prospect");
        assert_eq!((moved.start, moved.end), (None, None));
    }

    #[test]
    fn the_review_reason_says_why_a_verdict_without_evidence_needs_a_person() {
        let e = explained("", "zzz qqq");
        assert!(e.review.needs_review);
        assert!(
            e.review.reason.contains("no evidence at all"),
            "{}",
            e.review.reason
        );
        assert!(e.evidence.is_empty());
    }

    #[test]
    fn the_review_reason_says_when_a_message_is_mostly_about_something_else() {
        let e = explained(
            "Saturday",
            "Hi all,\nThe football training on Saturday moves to the north pitch because the main field is being reseeded this week.\nParents please bring water bottles and sun cream for the children, it will be hot.\nThe barbecue after the match is still on, bring something for the grill if you can.\nSee you there,\nMark",
        );
        assert!(!e.evidence.is_empty(), "the word training is evidence");
        assert!(e.review.needs_review, "{}", e.review.reason);
        assert!(
            e.review.reason.contains("does not read as addressed to us"),
            "{}",
            e.review.reason
        );
    }

    #[test]
    fn the_explanation_serialises_with_positions_not_markup() {
        let e = explained("Rechnung", "Bitte senden Sie die Rechnung erneut.");
        let json = serde_json::to_value(&e).unwrap();
        assert!(json["evidence"][0]["start"].is_u64(), "{json}");
        assert_eq!(json["spans"][0]["kind"], "request");
        assert_eq!(json["verdict"]["queue"], "contract");
        assert!(!json.to_string().contains("<mark"));
    }
}
