//! One intake: whatever an interface received becomes a [`Message`] here, and only here.
//!
//! gRPC `Classify` and `ClassifyStream`, the admin webhook, `triage classify` (files, stdin and
//! `--jsonl`), `replay` (local and `--server`), `calibrate`, `learn` and the examples of
//! `check-rules` all call [`intake`], so the same input gets the same message, and therefore the
//! same verdict, whichever way it came in.
//!
//! The policy, in one place:
//! - **Size.** The input's size is the raw message's bytes, or for a ticket the bytes of every
//!   field it carries (id, subject, body, from, to, language and headers). Over
//!   [`Limits::max_message_bytes`] the input is refused with [`IntakeError::TooLarge`]; nothing
//!   is parsed first.
//! - **Truncation.** Each text field of the message (subject, new text, quoted history,
//!   signature) is cut at [`Limits::max_text_bytes`] on a character boundary, with a note in the
//!   verdict (`"body truncated to 262144 bytes"`). MIME limits (parts, depth, part and HTML bytes)
//!   apply to raw messages as [`crate::mail::parse`] documents, each with its own note.
//! - **Language hint.** The caller's hint (the request's `language`, else a ticket's own
//!   `language`) wins over detection when it is an ISO 639-1 code, optionally with a region
//!   (`de-AT` is read as `de`); anything else is ignored with a note, and the language is detected.
//! - **Zones.** A ticket body is split into new text, quoted history and signature exactly as
//!   the text part of an email is ([`crate::mail::quote`]).
//! - **Headers.** A ticket's headers are kept in name order as given; an email's in the order
//!   received.
//!
//! **What each stage may cost.** Every input is bounded before it is read, and every stage after
//! is linear in an amount of text the [`Limits`] bound, so no input makes one classification
//! expensive (the `html_to_text` benchmark in `benches/mail.rs` holds the hostile shapes):
//!
//! | stage | bound |
//! |---|---|
//! | size check | refused above `max_message_bytes` before anything is parsed |
//! | header sniffing | the first 64 KB |
//! | MIME pre-scan ([`crate::mail::guard`]) | one pass; the input is cut at `max_depth` nesting or `max_parts` parts |
//! | MIME parse (mail-parser) | one pass over at most `max_message_bytes` |
//! | each text part | decoded text cut at `max_part_bytes` |
//! | HTML → text ([`crate::mail::markup`], html2text) | linear; at most `max_html_bytes` per part and `max_html_total_bytes` per message |
//! | zones: quote, signature, disclaimer ([`crate::mail::quote`]) | linear in the body |
//! | truncation | each field cut at `max_text_bytes` |
//! | folding, keyword scan ([`crate::engine`]) | linear in each field; at most 20,000 hits kept per field |
//! | regex scan | each field's length times the compiled size of the regex terms, which the rule limits bound ([`crate::rules`]) |
//!
//! Callers that may give up ([`intake_with`], [`crate::Engine::classify_with`]) are checked for
//! cancellation between these stages.

use crate::cancel::{Cancel, Cancelled};
use crate::mail::{self, Limits, ParseError};
use crate::message::{Message, Ticket};

/// What an interface received.
#[derive(Debug, Clone, Copy)]
pub enum Input<'a> {
    /// An RFC 5322 message as received (or plain text, which is read as a body).
    Raw(&'a [u8]),
    /// A ticket as a helpdesk describes it.
    Ticket(&'a Ticket),
}

impl Input<'_> {
    /// The size the limit applies to, in bytes (see the module's policy).
    pub fn size(&self) -> usize {
        match self {
            Input::Raw(raw) => raw.len(),
            Input::Ticket(t) => ticket_size(t),
        }
    }
}

/// The bytes of every field a ticket carries.
pub fn ticket_size(t: &Ticket) -> usize {
    t.id.len()
        + t.subject.len()
        + t.body.len()
        + t.from.len()
        + t.to.iter().map(String::len).sum::<usize>()
        + t.language.as_ref().map_or(0, String::len)
        + t.headers.iter().map(|(k, v)| k.len() + v.len()).sum::<usize>()
}

/// Why an input was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum IntakeError {
    /// The input is larger than [`Limits::max_message_bytes`].
    #[error("message of {size} bytes exceeds the limit of {limit} bytes")]
    TooLarge {
        /// Its size in bytes.
        size: usize,
        /// The limit in bytes.
        limit: usize,
    },
    /// The caller cancelled (see [`intake_with`]).
    #[error(transparent)]
    Cancelled(#[from] Cancelled),
}

/// Turns `input` into the message the engine classifies, under `limits`, with the caller's
/// language `hint` (ISO 639-1; `None` or empty to use a ticket's own, else to detect).
///
/// # Errors
/// [`IntakeError::TooLarge`] when the input is over [`Limits::max_message_bytes`]. Malformed
/// mail is never an error: it is read as well as it can be, with notes.
pub fn intake(input: Input<'_>, hint: Option<&str>, limits: &Limits) -> Result<Message, IntakeError> {
    intake_with(input, hint, limits, &Cancel::never())
}

/// [`intake`], stopping with [`IntakeError::Cancelled`] soon after `cancel` is set (checked
/// between the stages listed in the module's documentation).
pub fn intake_with(
    input: Input<'_>,
    hint: Option<&str>,
    limits: &Limits,
    cancel: &Cancel,
) -> Result<Message, IntakeError> {
    let size = input.size();
    if size > limits.max_message_bytes {
        return Err(IntakeError::TooLarge {
            size,
            limit: limits.max_message_bytes,
        });
    }
    let (mut message, own) = match input {
        Input::Raw(raw) => (
            mail::parse_with(raw, limits, cancel).map_err(|e| match e {
                ParseError::TooLarge { size, limit } => IntakeError::TooLarge { size, limit },
                ParseError::Cancelled(c) => IntakeError::Cancelled(c),
            })?,
            None,
        ),
        Input::Ticket(ticket) => (Message::from_ticket(ticket), ticket.language.as_deref()),
    };
    let hint = hint.filter(|h| !h.trim().is_empty()).or(own);
    message.language = None;
    if let Some(hint) = hint.filter(|h| !h.trim().is_empty()) {
        match language_code(hint) {
            Some(code) => message.language = Some(code),
            None => message.notes.push(format!(
                "language hint `{}` is not an ISO 639-1 code; the language was detected",
                hint.chars().take(16).collect::<String>()
            )),
        }
    }
    mail::truncate_fields(&mut message, limits.max_text_bytes);
    Ok(message)
}

/// The ISO 639-1 code of a language tag (`"DE"`, `"de-AT"`, `"pt_BR"`), or `None`.
pub fn language_code(tag: &str) -> Option<String> {
    let primary = tag.trim().split(['-', '_']).next()?;
    (primary.len() == 2 && primary.bytes().all(|b| b.is_ascii_alphabetic()))
        .then(|| primary.to_ascii_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ticket(body: &str) -> Ticket {
        Ticket {
            id: "t".into(),
            subject: "Rechnung".into(),
            body: body.into(),
            ..Ticket::default()
        }
    }

    #[test]
    fn a_ticket_over_the_limit_counts_every_field_and_is_refused() {
        let mut t = ticket("short");
        t.headers.insert("X-Big".into(), "x".repeat(100));
        let limits = Limits {
            max_message_bytes: 50,
            ..Limits::default()
        };
        assert!(matches!(
            intake(Input::Ticket(&t), None, &limits),
            Err(IntakeError::TooLarge { limit: 50, .. })
        ));
    }

    #[test]
    fn long_fields_are_truncated_with_a_note_for_tickets_and_raw_mail_alike() {
        let limits = Limits {
            max_text_bytes: 10,
            ..Limits::default()
        };
        let body = "ä".repeat(20);
        let from_ticket = intake(Input::Ticket(&ticket(&body)), None, &limits).unwrap();
        let raw = format!("Subject: Rechnung\r\nFrom: a@b.de\r\n\r\n{body}");
        let from_raw = intake(Input::Raw(raw.as_bytes()), None, &limits).unwrap();
        for m in [&from_ticket, &from_raw] {
            assert_eq!(m.body.len(), 10, "{m:?}");
            assert!(m.notes.iter().any(|n| n.contains("body truncated")), "{m:?}");
        }
    }

    #[test]
    fn the_callers_hint_wins_over_the_tickets_own_language() {
        let mut t = ticket("Hallo");
        t.language = Some("en".into());
        let m = intake(Input::Ticket(&t), Some("DE-at"), &Limits::default()).unwrap();
        assert_eq!(m.language.as_deref(), Some("de"));
        let m = intake(Input::Ticket(&t), None, &Limits::default()).unwrap();
        assert_eq!(m.language.as_deref(), Some("en"));
    }

    #[test]
    fn a_hint_on_a_raw_email_is_applied() {
        let m = intake(
            Input::Raw(b"Subject: x\r\nFrom: a@b\r\n\r\nhola"),
            Some("es"),
            &Limits::default(),
        )
        .unwrap();
        assert_eq!(m.language.as_deref(), Some("es"));
    }

    #[test]
    fn a_hint_that_is_not_a_language_code_is_ignored_with_a_note() {
        let m = intake(Input::Ticket(&ticket("x")), Some("german"), &Limits::default()).unwrap();
        assert_eq!(m.language, None);
        assert!(m.notes[0].contains("not an ISO 639-1 code"), "{:?}", m.notes);
    }

    #[test]
    fn a_ticket_body_is_split_into_zones() {
        let m = intake(
            Input::Ticket(&ticket("Neue Frage.\n\n> alte Rechnung")),
            None,
            &Limits::default(),
        )
        .unwrap();
        assert_eq!(m.body, "Neue Frage.");
        assert_eq!(m.quoted, "alte Rechnung");
    }
}
