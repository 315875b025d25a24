//! Raw input → [`Message`]: RFC 5322 email or plain text.
//!
//! - [`encoded`]: encoded-words and RFC 2231 sections that split a character, joined first.
//! - [`guard`]: cheap pre-scan that cuts hostile MIME structure before the real parser sees it.
//! - [`mime`]: a MIME message (via mail-parser) → headers, addresses, text, attachment names.
//! - [`html`]: HTML bodies → readable text, with quote containers split off.
//! - [`markup`]: any HTML → shallow, well-nested HTML, so rendering it is linear.
//! - [`quote`]: splits a body into new text, quoted history and signature.
//! - [`plain`]: text without MIME structure (a ticket body, a `.txt` file).

pub mod encoded;
pub mod guard;
pub mod html;
pub mod markup;
pub mod mime;
pub mod plain;
pub mod quote;

use std::borrow::Cow;
use std::panic::{AssertUnwindSafe, catch_unwind};

use crate::cancel::Cancel;
use crate::message::Message;

/// Bounds on what one message may cost. Beyond them input is truncated (with a note in the
/// verdict) or refused with [`ParseError`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest raw message accepted at all.
    pub max_message_bytes: usize,
    /// Most text (per field) handed to the engine; the rest is cut with a note.
    pub max_text_bytes: usize,
    /// Deepest nesting of multipart containers and attached messages that is read.
    pub max_depth: usize,
    /// Most MIME parts read; the structure after them is dropped with a note.
    pub max_parts: usize,
    /// Most decoded text taken from one part.
    pub max_part_bytes: usize,
    /// Most HTML converted to text from one part (conversion is the costliest step).
    pub max_html_bytes: usize,
    /// Most HTML converted to text from one message, all parts together.
    pub max_html_total_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_message_bytes: 10 * 1024 * 1024,
            max_text_bytes: 256 * 1024,
            max_depth: 16,
            max_parts: 256,
            max_part_bytes: 1024 * 1024,
            max_html_bytes: 256 * 1024,
            max_html_total_bytes: 1024 * 1024,
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
    /// The caller cancelled the parse (see [`parse_with`]).
    #[error(transparent)]
    Cancelled(#[from] crate::cancel::Cancelled),
}

/// Parses raw bytes as received: an email when they start with a header block, plain text
/// otherwise. Invalid UTF-8 is replaced, never fatal.
pub fn parse(raw: &[u8], limits: &Limits) -> Result<Message, ParseError> {
    parse_with(raw, limits, &Cancel::never())
}

/// [`parse`], stopping with [`ParseError::Cancelled`] soon after `cancel` is set: it is
/// checked between the stages (pre-scan, MIME parse, each part, zone split), each bounded by
/// `limits` (see [`crate::intake`] for the bound of each).
pub fn parse_with(raw: &[u8], limits: &Limits, cancel: &Cancel) -> Result<Message, ParseError> {
    if raw.len() > limits.max_message_bytes {
        return Err(ParseError::TooLarge {
            size: raw.len(),
            limit: limits.max_message_bytes,
        });
    }
    let block = header_block(raw);
    let mut message = if let Some(block) = block {
        // The body starts at the first line that is no header: the blank line is put back so
        // the parser does not read that line as a header and lose it.
        let separated;
        let raw = match block.missing_separator_at {
            Some(at) => {
                separated = [&raw[..at], b"\r\n", &raw[at..]].concat();
                &separated[..]
            }
            None => raw,
        };
        // Mail on disk (mbox, maildir, `.eml` files) often ends its lines with a bare LF, where
        // SMTP and the milter carry CRLF. The MIME parser sees one form, so that the same message
        // reads the same by whichever way it came. (mail-parser 0.11's date parser read a `Date:`
        // ending in the zone `UT` before a bare LF past the blank line; dates are now read raw,
        // see `mime::PARSER`, but the parser's other readers are written for CRLF too.)
        let crlf = with_crlf(raw);
        let (input, mut notes) = guard::prescan(&crlf, limits);
        cancel.check()?;
        // mail-parser promises not to panic; this is the last line of defence should it (or our
        // walk over its output) ever do so on some input nobody foresaw.
        let parsed = catch_unwind(AssertUnwindSafe(|| mime::parse(input, limits, cancel)));
        cancel.check()?;
        let mut message = match parsed {
            Ok(Some(message)) => message,
            Ok(None) => plain::parse(raw),
            Err(_) => {
                let mut message = plain::parse(raw);
                message
                    .notes
                    .push("the MIME parser failed; read as plain text".to_string());
                message
            }
        };
        notes.append(&mut message.notes);
        message.notes = notes;
        message
    } else {
        plain::parse(raw)
    };
    truncate_fields(&mut message, limits.max_text_bytes);
    Ok(message)
}

/// Header names that mark a header block as an email's rather than prose with a colon.
const KNOWN_HEADERS: &[&str] = &[
    "from",
    "to",
    "cc",
    "subject",
    "date",
    "message-id",
    "received",
    "return-path",
    "mime-version",
    "content-type",
    "delivered-to",
    "sender",
    "reply-to",
    "auto-submitted",
    "x-mailer",
];

/// True when `raw` opens with an RFC 5322 header block: every line up to the first blank one
/// (or the first 64 KB) is a header or a folded continuation, and one of them is a header every
/// mailer writes. An mbox `From ` line on top is allowed.
pub fn looks_like_email(raw: &[u8]) -> bool {
    header_block(raw).is_some()
}

/// Where a header block that runs into the body without the blank line ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct HeaderBlock {
    /// Byte offset of the first body line when the blank line is missing.
    missing_separator_at: Option<usize>,
}

fn header_block(raw: &[u8]) -> Option<HeaderBlock> {
    let bom = if raw.starts_with(b"\xEF\xBB\xBF") { 3 } else { 0 };
    let head = &raw[bom..raw.len().min(64 * 1024).max(bom)];
    let mut at = bom;
    let mut lines = head.split(|&b| b == b'\n').peekable();
    if lines.peek().is_some_and(|l| l.starts_with(b"From ")) {
        at += lines.next().map_or(0, |l| l.len() + 1);
    }
    let mut known = false;
    let mut first = true;
    let mut fields = 0;
    for line in lines {
        let start = at;
        at += line.len() + 1;
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() {
            break;
        }
        if line.starts_with(b" ") || line.starts_with(b"\t") {
            if first {
                return None;
            }
            continue;
        }
        first = false;
        let name = match line.iter().position(|&b| b == b':') {
            Some(colon) => &line[..colon],
            None => &[][..],
        };
        if name.is_empty() || name.len() > 76 || !name.iter().all(|b| b.is_ascii_graphic()) {
            // A header block that runs into the body without the blank line (RFC 5322 wants
            // one; some scripts forget it) is still a header block when it had real fields.
            return (known && fields >= 2).then_some(HeaderBlock {
                missing_separator_at: Some(start),
            });
        }
        fields += 1;
        known |= KNOWN_HEADERS
            .iter()
            .any(|k| k.as_bytes().eq_ignore_ascii_case(name));
    }
    known.then_some(HeaderBlock {
        missing_separator_at: None,
    })
}

/// `raw` with every bare LF made CRLF (borrowed when there is none). Lone CRs are left alone.
/// The LFs are found with `memchr`, so a multi-megabyte attachment costs little more than a copy.
fn with_crlf(raw: &[u8]) -> Cow<'_, [u8]> {
    let bare = |&i: &usize| i == 0 || raw[i - 1] != b'\r';
    let count = memchr::memchr_iter(b'\n', raw).filter(bare).count();
    if count == 0 {
        return Cow::Borrowed(raw);
    }
    let mut out = Vec::with_capacity(raw.len() + count);
    let mut from = 0;
    for i in memchr::memchr_iter(b'\n', raw).filter(bare) {
        out.extend_from_slice(&raw[from..i]);
        out.extend_from_slice(b"\r\n");
        from = i + 1;
    }
    out.extend_from_slice(&raw[from..]);
    Cow::Owned(out)
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

/// Cuts `text` to at most `max` bytes at a character boundary; true when it cut.
pub(crate) fn cut(text: &mut String, max: usize) -> bool {
    if text.len() <= max {
        return false;
    }
    let end = text.floor_char_boundary(max);
    text.truncate(end);
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_date_in_ut_before_a_bare_lf_keeps_the_body() {
        // mail-parser 0.11 alone reads past the blank line here and loses the body.
        for zone in ["UT", "GMT", "+0000"] {
            let raw =
                format!("From: a@b.c\nSubject: t\nDate: Sun, 25 Aug 2002 16:50:54 {zone}\n\nhello there\n");
            let m = parse(raw.as_bytes(), &Limits::default()).unwrap();
            assert_eq!(m.body, "hello there", "{zone}");
            assert_eq!(m.subject, "t");
        }
    }

    #[test]
    fn a_date_in_a_one_letter_zone_keeps_the_header_after_it_and_the_body() {
        // mail-parser 0.11.9's date parser swallows the line after "Z" (CRLF or not).
        for eol in ["\n", "\r\n"] {
            let raw = format!(
                "From: a@b.c{eol}Date: Mon, 01 Jan 2024 10:00:00 Z{eol}Subject: t{eol}{eol}body{eol}"
            );
            let m = parse(raw.as_bytes(), &Limits::default()).unwrap();
            assert_eq!(m.subject, "t", "{eol:?}");
            assert_eq!(m.body, "body", "{eol:?}");
            let last = format!(
                "From: a@b.c{eol}Subject: t{eol}Date: Mon, 01 Jan 2024 10:00:00 Z{eol}{eol}body{eol}"
            );
            assert_eq!(
                parse(last.as_bytes(), &Limits::default()).unwrap().body,
                "body",
                "{eol:?}"
            );
        }
    }

    #[test]
    fn a_multipart_message_with_bare_lfs_and_a_date_in_ut_keeps_its_text() {
        let raw = "From: a@b.c\nSubject: Rechnung\nMIME-Version: 1.0\nContent-Type: multipart/alternative; boundary=\"b\"\nDate: Sun, 25 Aug 2002 16:50:54 UT\n\n--b\nContent-Type: text/plain; charset=utf-8\n\nDie Rechnung fehlt.\n--b--\n";
        let m = parse(raw.as_bytes(), &Limits::default()).unwrap();
        assert_eq!(m.body, "Die Rechnung fehlt.");
    }

    #[test]
    fn bare_lfs_become_crlf_and_nothing_else_changes() {
        assert!(matches!(with_crlf(b"a\r\nb"), Cow::Borrowed(_)));
        assert_eq!(&*with_crlf(b"a\nb\r\nc\n\n"), b"a\r\nb\r\nc\r\n\r\n");
        assert_eq!(&*with_crlf(b"\na\rb"), b"\r\na\rb");
    }

    #[test]
    fn a_header_block_with_known_headers_is_an_email() {
        assert!(looks_like_email(
            b"Received: x\r\n\tby y\r\nSubject: s\r\n\r\nbody"
        ));
        assert!(looks_like_email(b"From a@b Mon Jan 1\nFrom: a@b\n\nbody"));
    }

    #[test]
    fn a_header_block_without_the_blank_line_is_an_email_and_its_body_is_kept() {
        let raw = b"From: a@b\nTo: c@d\nSubject: hi\ncounter to RFC 2822, no blank line here\n";
        assert!(looks_like_email(raw));
        let m = parse(raw, &Limits::default()).unwrap();
        assert_eq!(m.subject, "hi");
        assert_eq!(m.body, "counter to RFC 2822, no blank line here");
    }

    #[test]
    fn prose_is_not_an_email() {
        assert!(!looks_like_email(
            b"Hello: we have a question\nabout it\n\nThanks"
        ));
        assert!(!looks_like_email(b""));
        assert!(!looks_like_email(b"just text"));
    }

    #[test]
    fn an_oversized_message_is_refused() {
        let limits = Limits {
            max_message_bytes: 10,
            ..Limits::default()
        };
        assert_eq!(
            parse(b"Subject: far too long", &limits),
            Err(ParseError::TooLarge { size: 21, limit: 10 })
        );
    }
}
