//! A human-readable account of a verdict: the decisive evidence in context, every queue's
//! score, the margin to the runner-up, and why review is needed (or not).

use std::fmt::Write as _;

use super::Detailed;
use super::structure::Spans;
use crate::message::Message;
use crate::rules::RuleSet;

/// Characters of context shown on each side of a match.
const CONTEXT: usize = 40;

/// Explains what `ruleset` saw in `message` and decided (see [`super::Engine::detailed`]):
/// scores and margin, the evidence in context, the message's structure (reply subject, request
/// sentences, negated scopes, signals) and why review is needed or not.
pub fn explain(ruleset: &RuleSet, message: &Message, detailed: &Detailed) -> String {
    let verdict = &detailed.verdict;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{}: {} (confidence {:.2})",
        verdict.id, verdict.queue, verdict.confidence
    );
    if !verdict.destination.is_empty() {
        let _ = writeln!(out, "  destination: {}", verdict.destination);
    }
    let language = if verdict.language.is_empty() {
        "unknown"
    } else {
        &verdict.language
    };
    let _ = writeln!(out, "  language: {language}; ruleset {}", verdict.ruleset_version);

    let _ = writeln!(out, "\nscores:");
    for r in &verdict.ranking {
        let _ = writeln!(
            out,
            "  {:<20} {:>8.2}   confidence {:.3}",
            r.queue, r.score, r.confidence
        );
    }
    let runner_up = verdict.ranking.get(1);
    match runner_up {
        Some(second) => {
            let margin = verdict.ranking[0].score - second.score;
            let _ = writeln!(out, "  margin to {}: {margin:.2}", second.queue);
        }
        None => {
            let _ = writeln!(out, "  no other queue has evidence");
        }
    }

    let _ = writeln!(out, "\nevidence (strongest first):");
    if verdict.hits.is_empty() {
        let fallback = &ruleset.queues[ruleset.fallback].id;
        let _ = writeln!(
            out,
            "  none: no rule matched, so the fallback queue {fallback} was chosen"
        );
    }
    for h in &verdict.hits {
        let mark = if h.queue == verdict.queue {
            "+"
        } else if h.weight < 0.0 {
            "-"
        } else {
            " "
        };
        let _ = writeln!(
            out,
            " {mark}{:>+7.2}  {:<34} -> {:<18} [{}]",
            h.weight, h.rule, h.queue, h.field
        );
        let _ = writeln!(out, "            {}", context(message, &h.field, &h.matched));
    }

    let _ = writeln!(out, "\nstructure:");
    if detailed.reply_subject {
        let _ = writeln!(
            out,
            "  the subject is a reply or forward: thread context, counted {} instead of 1.5",
            super::structure::REPLY_SUBJECT_WEIGHT
        );
    }
    for &r in &detailed.echoes {
        let rule = &ruleset.rules[r];
        let _ = writeln!(
            out,
            "  the new text echoes the thread: {} (for {}, which the reply subject supports) stands outside the request, counted {}",
            rule.id,
            ruleset.queues[rule.queue].id,
            super::structure::ECHO_FACTOR
        );
    }
    for (name, text, spans) in [
        ("subject", &message.subject, &detailed.subject),
        ("body", &message.body, &detailed.body),
    ] {
        describe(&mut out, name, text, spans);
    }
    if detailed.signals.is_empty() {
        let _ = writeln!(out, "  signals: none");
    } else {
        let names: Vec<&str> = detailed
            .signals
            .iter()
            .map(|&s| ruleset.signals[s].id.as_str())
            .collect();
        let _ = writeln!(out, "  signals: {}", names.join(", "));
    }
    let f = &detailed.features;
    let _ = writeln!(
        out,
        "  confidence inputs: softmax {:.3}, margin {:.2}, other strong queues {}, evidence from the thread {:.0}%, {}, {:.0}% of the new text without evidence{}",
        f.softmax,
        f.margin,
        f.strong_queues,
        f.weak_share * 100.0,
        if f.addressed > 0.0 {
            "addressed to us"
        } else {
            "not addressed to us"
        },
        f.unexplained * 100.0,
        if f.standing_contested > 0.0 && f.standing_unknown > 0.0 {
            ", the writer's standing unknown and contested (another queue it would decide for has evidence)"
        } else if f.standing_contested > 0.0 {
            ", the writer's role decided against another queue's own case"
        } else if f.standing_unknown > 0.0 {
            ", the writer's standing unknown"
        } else {
            ""
        }
    );

    let _ = writeln!(out);
    let review = super::explanation::review(ruleset, verdict, &detailed.features);
    let verb = if review.needs_review {
        "needs review"
    } else {
        "auto-route"
    };
    let _ = writeln!(out, "{verb}: {}", review.reason);
    for note in &verdict.notes {
        let _ = writeln!(out, "note: {note}");
    }
    out
}

/// Lists the request sentences, negated scopes, preamble and asides of one field.
fn describe(out: &mut String, name: &str, text: &str, spans: &Spans) {
    let quote = |&(s, e): &(usize, usize)| text.get(s..e).unwrap_or_default().trim().replace('\n', " ");
    for r in &spans.requests {
        let _ = writeln!(out, "  request ({name}): «{}»", quote(r));
    }
    for n in &spans.negated {
        let _ = writeln!(out, "  negated or settled ({name}): «{}»", quote(n));
    }
    for p in &spans.preamble {
        let _ = writeln!(out, "  preamble before the real request ({name}): «{}»", quote(p));
    }
    for a in &spans.asides {
        let _ = writeln!(out, "  aside ({name}): «{}»", quote(a));
    }
}

/// The matched text with some of its surroundings, on one line.
fn context(message: &Message, field: &str, matched: &str) -> String {
    let header_text;
    let text: &str = match field {
        "subject" => &message.subject,
        "body" => &message.body,
        "quoted" => &message.quoted,
        "signature" => &message.signature,
        "from" => &message.from,
        _ => {
            let name = field.strip_prefix("header:").unwrap_or(field);
            header_text = message
                .headers
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.clone())
                .unwrap_or_else(|| match field {
                    "to" => message.to.join(", "),
                    "cc" => message.cc.join(", "),
                    "attachment_names" => message.attachment_names.join(", "),
                    _ => String::new(),
                });
            &header_text
        }
    };
    let Some(at) = text.find(matched).filter(|_| !matched.is_empty()) else {
        return format!("«{matched}»");
    };
    let start = text[..at]
        .char_indices()
        .rev()
        .nth(CONTEXT - 1)
        .map_or(0, |(i, _)| i);
    let end_from = at + matched.len();
    let end = text[end_from..]
        .char_indices()
        .nth(CONTEXT)
        .map_or(text.len(), |(i, _)| end_from + i);
    // Collapse line breaks and runs of spaces, keeping a space where there was one.
    let one_line = |s: &str| {
        let mut line = String::with_capacity(s.len());
        for c in s.chars() {
            if c.is_whitespace() {
                if !line.ends_with(' ') {
                    line.push(' ');
                }
            } else {
                line.push(c);
            }
        }
        line
    };
    format!(
        "{}{}«{}»{}{}",
        if start > 0 { "…" } else { "" },
        one_line(&text[start..at]),
        matched,
        one_line(&text[end_from..end]),
        if end < text.len() { "…" } else { "" }
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Engine, Ticket};

    #[test]
    fn the_explanation_names_scores_margin_evidence_and_review_reason() {
        let engine = Engine::new(RuleSet::builtin()).unwrap();
        let ticket = Ticket {
            id: "x".into(),
            subject: "Rechnung".into(),
            body: "Die Rechnung für März enthält eine falsche USt-IdNr., bitte korrigieren.".into(),
            ..Ticket::default()
        };
        let message = Message::from_ticket(&ticket);
        let text = explain(engine.ruleset(), &message, &engine.detailed("x", &message));
        assert!(text.starts_with("x: contract"), "{text}");
        assert!(text.contains("scores:") && text.contains("contract"), "{text}");
        assert!(text.contains("«Rechnung»"), "{text}");
        assert!(
            text.contains("auto-route") || text.contains("needs review"),
            "{text}"
        );
    }

    #[test]
    fn a_message_without_evidence_says_the_fallback_decided() {
        let engine = Engine::new(RuleSet::builtin()).unwrap();
        let message = Message::from_ticket(&Ticket {
            body: "zzz qqq".into(),
            ..Ticket::default()
        });
        let text = explain(engine.ruleset(), &message, &engine.detailed("y", &message));
        assert!(text.contains("no rule matched"), "{text}");
        assert!(
            text.contains("needs review") && text.contains("no evidence at all"),
            "{text}"
        );
    }

    #[test]
    fn the_explanation_shows_the_request_the_negated_scope_and_the_signals() {
        let engine = Engine::new(RuleSet::builtin()).unwrap();
        let message = Message::from_ticket(&Ticket {
            subject: "AW: Rechnung".into(),
            body: "Die Rechnung ist bereits bezahlt. Wir sind noch kein Mitglied: funktioniert das Widget mit Shopware?"
                .into(),
            ..Ticket::default()
        });
        let text = explain(engine.ruleset(), &message, &engine.detailed("z", &message));
        assert!(text.contains("the subject is a reply"), "{text}");
        assert!(
            text.contains("negated or settled (body): «Die Rechnung ist bereits bezahlt»"),
            "{text}"
        );
        assert!(
            text.contains("request (body)") && text.contains("Shopware?"),
            "{text}"
        );
        assert!(text.contains("signals: prospect"), "{text}");
    }

    #[test]
    fn the_explanation_shows_the_preamble_before_a_turn_to_the_real_request() {
        let engine = Engine::new(RuleSet::builtin()).unwrap();
        let message = Message::from_ticket(&Ticket {
            subject: "Re: Invoice".into(),
            body: "Thanks, the invoice arrived. Different thing though: how do I add a user?".into(),
            ..Ticket::default()
        });
        let text = explain(engine.ruleset(), &message, &engine.detailed("z", &message));
        assert!(
            text.contains("preamble before the real request (body): «Thanks, the invoice arrived.»"),
            "{text}"
        );
    }

    #[test]
    fn the_explanation_shows_a_side_point() {
        let engine = Engine::new(RuleSet::builtin()).unwrap();
        let message = Message::from_ticket(&Ticket {
            subject: "Access".into(),
            body: "How do I add a user? The widget loads slowly, no rush.".into(),
            ..Ticket::default()
        });
        let text = explain(engine.ruleset(), &message, &engine.detailed("z", &message));
        assert!(
            text.contains("aside (body): «The widget loads slowly, no rush.»"),
            "{text}"
        );
    }

    #[test]
    fn context_shows_the_surroundings_of_a_match() {
        let message = Message {
            body: "a ".repeat(60) + "the widget is gone " + &"b ".repeat(60),
            ..Message::default()
        };
        let c = context(&message, "body", "widget");
        assert!(
            c.starts_with('…') && c.ends_with('…') && c.contains("the «widget» is gone"),
            "{c}"
        );
    }
}
