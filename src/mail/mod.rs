//! Raw input → [`Message`]: RFC 5322 email or plain text.
//!
//! - [`quote`]: splits a body into new text, quoted history and signature.
//! - [`plain`]: text without MIME structure (a ticket body, a `.txt` file).

pub mod plain;
pub mod quote;

use crate::message::Message;

/// Bounds on what one message may cost. Beyond them input is truncated (with a note in the
/// verdict) or refused with [`ParseError`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest raw message accepted at all.
    pub max_message_bytes: usize,
    /// Most text (per field) handed to the engine; the rest is cut with a note.
    pub max_text_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_message_bytes: 10 * 1024 * 1024,
            max_text_bytes: 256 * 1024,
        }
    }
}

/// Why a raw message was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ParseError {
    /// The message is larger than [`Limits::max_message_bytes`].
    #[error("message of {size} bytes exceeds the limit of {limit} bytes")]
    TooLarge {
        /// Its size.
        size: usize,
        /// The limit.
        limit: usize,
    },
}

/// Parses raw bytes as received: an email when they start with a header block, plain text
/// otherwise. Invalid UTF-8 is replaced, never fatal.
pub fn parse(raw: &[u8], limits: &Limits) -> Result<Message, ParseError> {
    if raw.len() > limits.max_message_bytes {
        return Err(ParseError::TooLarge {
            size: raw.len(),
            limit: limits.max_message_bytes,
        });
    }
    let mut message = plain::parse(raw);
    truncate_fields(&mut message, limits.max_text_bytes);
    Ok(message)
}

/// Cuts over-long fields at a character boundary and notes it.
pub fn truncate_fields(message: &mut Message, max: usize) {
    let mut cut = Vec::new();
    for (name, text) in [
        ("subject", &mut message.subject),
        ("body", &mut message.body),
        ("quoted", &mut message.quoted),
        ("signature", &mut message.signature),
    ] {
        if text.len() > max {
            let end = text.floor_char_boundary(max);
            text.truncate(end);
            cut.push(name);
        }
    }
    for name in cut {
        message.notes.push(format!("{name} truncated to {max} bytes"));
    }
}
