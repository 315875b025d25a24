//! The message the engine classifies, and the ticket objects clients send.
//!
//! A [`Message`] is already split into zones: the new text of the body, the quoted history and
//! the signature are separate, because they count differently (see `rules/README.md`).

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer, Serialize};

use crate::mail::quote;

/// A message ready for classification: decoded text split into the fields rules read.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Message {
    /// The subject line.
    pub subject: String,
    /// The new text of the body: what the sender wrote this time.
    pub body: String,
    /// Quoted history and forwarded messages.
    pub quoted: String,
    /// The signature block and closing.
    pub signature: String,
    /// Sender: display name and address.
    pub from: String,
    /// Recipients.
    pub to: Vec<String>,
    /// Carbon-copy recipients.
    pub cc: Vec<String>,
    /// Headers in order, names as received.
    pub headers: Vec<(String, String)>,
    /// File names of attachments (their contents are never read as text).
    pub attachment_names: Vec<String>,
    /// The caller's language, when it knows better than detection (ISO 639-1).
    pub language: Option<String>,
    /// What was done to the input on the way (e.g. truncation), reported in the verdict.
    pub notes: Vec<String>,
}

impl Message {
    /// Builds a message from a plain ticket, splitting quoted history and signature from the body.
    pub fn from_ticket(ticket: &Ticket) -> Message {
        let zones = quote::split(&ticket.body);
        Message {
            subject: ticket.subject.clone(),
            body: zones.new_text,
            quoted: zones.quoted,
            signature: zones.signature,
            from: ticket.from.clone(),
            to: ticket.to.clone(),
            cc: Vec::new(),
            headers: ticket
                .headers
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            attachment_names: Vec::new(),
            language: ticket.language.clone().filter(|l| !l.trim().is_empty()),
            notes: Vec::new(),
        }
    }
}

/// A ticket as a helpdesk or the `--jsonl` input describes it.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(default)]
pub struct Ticket {
    /// The caller's id, echoed in the verdict.
    #[serde(deserialize_with = "id_string")]
    pub id: String,
    /// Subject line.
    pub subject: String,
    /// Body text, possibly with quoted history and a signature.
    pub body: String,
    /// Sender.
    pub from: String,
    /// Recipients: one string or a list.
    #[serde(deserialize_with = "one_or_many")]
    pub to: Vec<String>,
    /// Language hint (ISO 639-1).
    pub language: Option<String>,
    /// Extra headers by name.
    pub headers: BTreeMap<String, String>,
}

/// Accepts a string or a number as an id (helpdesks export numeric ids).
fn id_string<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Id {
        S(String),
        N(serde_json::Number),
        Null(()),
    }
    Ok(match Id::deserialize(d)? {
        Id::S(s) => s,
        Id::N(n) => n.to_string(),
        Id::Null(()) => String::new(),
    })
}

/// The `id` member of a JSON object exactly as written when it is a number. serde_json reads
/// integers beyond 64 bits as floats (`18446744073709551616` comes back as
/// `1.8446744073709552e19`), and helpdesks do export such ids, so callers that read tickets
/// from JSON take the digits from the text instead.
pub fn numeric_id(json: &[u8]) -> Option<String> {
    #[derive(Deserialize)]
    struct IdOnly<'a> {
        #[serde(borrow)]
        id: Option<&'a serde_json::value::RawValue>,
    }
    let parsed: IdOnly<'_> = serde_json::from_slice(json).ok()?;
    let raw = parsed.id?.get();
    raw.starts_with(|c: char| c == '-' || c.is_ascii_digit())
        .then(|| raw.to_string())
}

/// Accepts `"a@x"`, `"a@x, b@y"` or `["a@x", "b@y"]`.
fn one_or_many<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        One(String),
        Many(Vec<String>),
        Null(()),
    }
    Ok(match OneOrMany::deserialize(d)? {
        OneOrMany::One(s) if s.trim().is_empty() => Vec::new(),
        OneOrMany::One(s) => vec![s],
        OneOrMany::Many(v) => v,
        OneOrMany::Null(()) => Vec::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_ticket_accepts_numeric_ids_and_a_single_recipient() {
        let t: Ticket = serde_json::from_str(r#"{"id": 42, "to": "a@x.es", "body": "hola"}"#).unwrap();
        assert_eq!(t.id, "42");
        assert_eq!(t.to, vec!["a@x.es"]);
    }

    #[test]
    fn numeric_ids_beyond_64_bits_keep_their_digits() {
        let json = br#"{"subject": "x", "id": 18446744073709551616123}"#;
        assert_eq!(numeric_id(json).as_deref(), Some("18446744073709551616123"));
        assert_eq!(numeric_id(br#"{"id": "abc"}"#), None);
        assert_eq!(numeric_id(br#"{"id": -7}"#).as_deref(), Some("-7"));
    }

    #[test]
    fn a_ticket_with_a_wrongly_typed_field_is_refused() {
        assert!(serde_json::from_str::<Ticket>(r#"{"subject": 5}"#).is_err());
    }

    #[test]
    fn from_ticket_separates_quoted_history_from_new_text() {
        let t = Ticket {
            body: "New question here.\n\n> old invoice thread".into(),
            ..Ticket::default()
        };
        let m = Message::from_ticket(&t);
        assert_eq!(m.body.trim(), "New question here.");
        assert!(m.quoted.contains("old invoice thread"));
    }
}
