//! A MIME message, parsed by mail-parser, → [`Message`].
//!
//! Headers keep their names and order; their values are the raw text unfolded, except where
//! RFC 2047 encoded words need decoding. The body is the text/plain alternative when there is
//! one, else the HTML rendered as text; attachments contribute only their file names; attached
//! messages (forwards, bounced originals) count as quoted history.

use std::borrow::Cow;
use std::sync::LazyLock;

use base64::Engine as _;
use mail_parser::decoders::base64::base64_decode;
use mail_parser::decoders::charsets::map::charset_decoder;
use mail_parser::decoders::quoted_printable::quoted_printable_decode;
use mail_parser::parsers::MessageStream;
use mail_parser::{
    Address, Encoding, Header, HeaderName, HeaderValue, MessageParser, MessagePart, MimeHeaders, PartType,
};

use super::{Limits, cut, encoded, html, quote};
use crate::cancel::Cancel;
use crate::message::Message;

/// The headers mail-parser reads into structures: the MIME headers that shape the part tree,
/// the address headers, the list headers (as addresses) and `Subject`/`Comments` (as text), the
/// same as its defaults for each. Every other header comes back raw: `header_value` reads values
/// from the raw bytes and decodes their encoded-words itself. The defaults also parse
/// `Received` chains, dates, message ids, `Return-Path`, `Keywords` and `Content-Language`,
/// which nothing here reads: 4% of the instructions of reading a public email (callgrind, 400
/// minus 200 emails). Read raw, a `Date:` can no longer hide the header after it: mail-parser
/// 0.11.9's date parser, on a one-letter military zone (`… 10:00:00 Z`), reads past the line
/// break and takes the next header (or, when `Date:` comes last, the body) with it.
static PARSER: LazyLock<MessageParser> = LazyLock::new(|| {
    MessageParser::new()
        .with_mime_headers()
        .with_address_headers()
        .header_text(HeaderName::Subject)
        .header_text(HeaderName::Comments)
        .header_address(HeaderName::ListArchive)
        .header_address(HeaderName::ListHelp)
        .header_address(HeaderName::ListId)
        .header_address(HeaderName::ListOwner)
        .header_address(HeaderName::ListPost)
        .header_address(HeaderName::ListSubscribe)
        .header_address(HeaderName::ListUnsubscribe)
});

/// Parses `raw` as a MIME message; `None` when mail-parser finds no headers at all. Parts are
/// no longer read once `cancel` is set (the caller then discards the message).
pub fn parse(raw: &[u8], limits: &Limits, cancel: &Cancel) -> Option<Message> {
    let parsed = PARSER.parse(raw)?;
    let root = parsed.root_part().headers();
    let header = |name: &str| root.iter().rev().find(|h| h.name().eq_ignore_ascii_case(name));
    let mailboxes = |name: &str| header(name).map(|h| address_list(h, raw)).unwrap_or_default();
    let mut message = Message {
        subject: header("subject")
            .map(|h| header_value(h, raw))
            .unwrap_or_default(),
        from: mailboxes("from").into_iter().next().unwrap_or_default(),
        to: mailboxes("to"),
        cc: mailboxes("cc"),
        headers: root
            .iter()
            .map(|h| (h.name().to_string(), header_value(h, raw)))
            .collect(),
        ..Message::default()
    };
    let mut walk = Walk {
        limits,
        cancel,
        body: String::new(),
        quoted: String::new(),
        attachments: Vec::new(),
        notes: Vec::new(),
        parts: 0,
        html_bytes: 0,
    };
    walk.part(&parsed, 0, 0, false);
    if cancel.is_cancelled() {
        return Some(message);
    }
    let zones = quote::split(&walk.body);
    message.body = zones.new_text;
    message.signature = zones.signature;
    message.quoted = [zones.quoted, walk.quoted.trim().to_string()]
        .into_iter()
        .filter(|s| !s.is_empty())
        .collect::<Vec<_>>()
        .join("\n\n");
    message.attachment_names = walk.attachments;
    message.notes = walk.notes;
    Some(message)
}

/// State of the walk over the part tree.
struct Walk<'l> {
    limits: &'l Limits,
    cancel: &'l Cancel,
    body: String,
    quoted: String,
    attachments: Vec<String>,
    notes: Vec<String>,
    parts: usize,
    /// HTML converted so far.
    html_bytes: usize,
}

impl Walk<'_> {
    fn part(&mut self, msg: &mail_parser::Message<'_>, id: usize, depth: usize, quoted: bool) {
        let Some(part) = msg.parts.get(id) else {
            return;
        };
        if self.cancel.is_cancelled() {
            return;
        }
        self.parts += 1;
        if self.parts > self.limits.max_parts {
            self.note_once(format!(
                "MIME parts after the first {} were not read",
                self.limits.max_parts
            ));
            return;
        }
        if depth > self.limits.max_depth {
            self.note_once(format!(
                "MIME nesting deeper than {} levels was not read",
                self.limits.max_depth
            ));
            return;
        }
        let attached = part.content_disposition().is_some_and(|d| d.is_attachment());
        if !attached && let Some(text) = recover_base64(msg, part) {
            let html = part
                .content_type()
                .is_some_and(|c| c.subtype().is_some_and(|s| s.eq_ignore_ascii_case("html")));
            self.notes
                .push("a base64 text part the parser could not decode was decoded leniently".to_string());
            if html {
                let rendered = self.render(&text);
                self.add(rendered.text, quoted);
                self.add(rendered.quoted, true);
            } else {
                self.add(text, quoted);
            }
            return;
        }
        match &part.body {
            PartType::Multipart(children) => {
                let alternative = part
                    .content_type()
                    .and_then(|c| c.subtype())
                    .is_some_and(|s| s.eq_ignore_ascii_case("alternative"));
                if alternative {
                    if let Some(&best) = preferred_alternative(msg, children) {
                        self.part(msg, best as usize, depth + 1, quoted);
                    }
                } else {
                    for &child in children {
                        self.part(msg, child as usize, depth + 1, quoted);
                    }
                }
            }
            PartType::Text(text) if !attached && is_plain(part) => {
                let text = redecode(msg, part, text);
                self.add(text.into_owned(), quoted);
            }
            PartType::Html(text) if !attached => {
                let text = redecode(msg, part, text);
                let rendered = self.render(&text);
                if quoted {
                    self.add(format!("{}\n{}", rendered.text, rendered.quoted), true);
                } else {
                    self.add(rendered.text, false);
                    self.add(rendered.quoted, true);
                }
            }
            PartType::Message(nested) => {
                self.attachment_name(msg, part);
                if let Some(subject) = nested.subject() {
                    self.add(format!("Subject: {subject}"), true);
                }
                self.part(nested, 0, depth + 1, true);
            }
            _ => self.attachment_name(msg, part),
        }
    }

    /// Renders an HTML part within the message's HTML budget
    /// ([`Limits::max_html_total_bytes`]); past it, parts are skipped with a note.
    fn render(&mut self, text: &str) -> html::Rendered {
        let left = self.limits.max_html_total_bytes.saturating_sub(self.html_bytes);
        if left == 0 {
            self.note_once(format!(
                "HTML parts beyond the first {} bytes of HTML were not read",
                self.limits.max_html_total_bytes
            ));
            return html::Rendered::default();
        }
        let limits = Limits {
            max_html_bytes: self.limits.max_html_bytes.min(left),
            ..*self.limits
        };
        self.html_bytes += text.len().min(limits.max_html_bytes);
        html::render(text, &limits, &mut self.notes)
    }

    fn attachment_name(&mut self, msg: &mail_parser::Message<'_>, part: &MessagePart<'_>) {
        let joined = joined_file_name(msg.raw_message(), part);
        if let Some(name) = joined.as_deref().or_else(|| part.attachment_name()) {
            let mut name = name.trim().to_string();
            cut(&mut name, 255);
            if !name.is_empty() && self.attachments.len() < self.limits.max_parts {
                self.attachments.push(name);
            }
        }
    }

    fn add(&mut self, mut text: String, quoted: bool) {
        if text.trim().is_empty() {
            return;
        }
        if cut(&mut text, self.limits.max_part_bytes) {
            self.notes.push(format!(
                "a text part was cut to {} bytes",
                self.limits.max_part_bytes
            ));
        }
        let target = if quoted { &mut self.quoted } else { &mut self.body };
        if !target.is_empty() {
            target.push_str("\n\n");
        }
        target.push_str(text.trim());
    }

    fn note_once(&mut self, note: String) {
        if !self.notes.contains(&note) {
            self.notes.push(note);
        }
    }
}

/// A text part declared base64 that mail-parser could not decode (a blank line before the data,
/// stray characters, bad padding: all seen in real mail), decoded leniently: whitespace and
/// characters outside the alphabet skipped, padding optional; then read in its declared
/// charset (UTF-8, else windows-1252, when it names none or an unknown one).
fn recover_base64(msg: &mail_parser::Message<'_>, part: &MessagePart<'_>) -> Option<String> {
    let declared_base64 = part
        .content_transfer_encoding()
        .is_some_and(|e| e.trim().eq_ignore_ascii_case("base64"));
    let text_type = part
        .content_type()
        .is_none_or(|c| c.ctype().eq_ignore_ascii_case("text"));
    if !(part.is_encoding_problem && declared_base64 && text_type) {
        return None;
    }
    let raw = msg
        .raw_message()
        .get(part.raw_body_offset() as usize..part.raw_end_offset() as usize)?;
    let mut alphabet: Vec<u8> = raw
        .iter()
        .copied()
        .filter(|b| b.is_ascii_alphanumeric() || *b == b'+' || *b == b'/')
        .collect();
    // A final group of one character cannot be decoded; it carries no whole byte either.
    if alphabet.len() % 4 == 1 {
        alphabet.pop();
    }
    let bytes = encoded::LENIENT.decode(&alphabet).ok()?;
    let charset = part.content_type().and_then(|c| c.attribute("charset"));
    Some(match charset.and_then(|c| charset_decoder(c.as_bytes())) {
        Some(decode) => decode(&bytes),
        None => match String::from_utf8(bytes) {
            Ok(text) => text,
            Err(e) => charset_decoder(b"windows-1252").map_or_else(
                || String::from_utf8_lossy(e.as_bytes()).into_owned(),
                |latin| latin(e.as_bytes()),
            ),
        },
    })
}

/// The alternative to read: plain text when it has any, else HTML, else the first.
fn preferred_alternative<'a>(msg: &mail_parser::Message<'_>, children: &'a [u32]) -> Option<&'a u32> {
    let body = |id: &u32| msg.parts.get(*id as usize).map(|p| &p.body);
    children
        .iter()
        .find(|id| matches!(body(id), Some(PartType::Text(t)) if !t.trim().is_empty()))
        .or_else(|| {
            children
                .iter()
                .find(|id| matches!(body(id), Some(PartType::Html(_))))
        })
        .or_else(|| children.first())
}

/// True for text/plain and for parts without a Content-Type (which default to it); other text
/// types (calendar entries, delivery reports, CSV) are not the message.
fn is_plain(part: &MessagePart<'_>) -> bool {
    part.content_type().is_none_or(|c| {
        c.ctype().eq_ignore_ascii_case("text") && c.subtype().is_none_or(|s| s.eq_ignore_ascii_case("plain"))
    })
}

/// Re-decodes a text part as windows-1252 when it was declared UTF-8 or with no (or an unknown)
/// charset but is not valid UTF-8: 8-bit mail from older clients is nearly always Latin.
fn redecode<'t>(msg: &mail_parser::Message<'_>, part: &MessagePart<'_>, text: &'t str) -> Cow<'t, str> {
    if !text.contains('\u{FFFD}') {
        return Cow::Borrowed(text);
    }
    let declared = part.content_type().and_then(|c| c.attribute("charset"));
    let utf8_or_unknown =
        declared.is_none_or(|c| c.eq_ignore_ascii_case("utf-8") || charset_decoder(c.as_bytes()).is_none());
    let range = part.raw_body_offset() as usize..part.raw_end_offset() as usize;
    let (true, Some(raw), Some(latin)) = (
        utf8_or_unknown,
        msg.raw_message().get(range),
        charset_decoder(b"windows-1252"),
    ) else {
        return Cow::Borrowed(text);
    };
    let bytes = match part.encoding {
        Encoding::QuotedPrintable => quoted_printable_decode(raw),
        Encoding::Base64 => base64_decode(raw),
        Encoding::None => Some(raw.to_vec()),
    };
    match bytes {
        Some(bytes) if std::str::from_utf8(&bytes).is_err() => Cow::Owned(latin(&bytes)),
        _ => Cow::Borrowed(text),
    }
}

/// A header's value: the raw text unfolded, or the decoded form when it holds encoded-words
/// (adjacent ones joined first, see [`encoded`]).
fn header_value(header: &Header<'_>, raw: &[u8]) -> String {
    let bytes = header_bytes(header, raw);
    let raw_value = unfold(bytes);
    if !raw_value.contains("=?") {
        // (Trimmed already: the unfolded lines are.)
        return raw_value;
    }
    if matches!(header.value, HeaderValue::Address(_)) {
        return address_list(header, raw).join(", ");
    }
    let joined = with_newline(encoded::join_encoded_words(bytes));
    match MessageStream::new(&joined).parse_unstructured() {
        HeaderValue::Text(text) => text.trim().to_string(),
        _ => raw_value.trim().to_string(),
    }
}

/// The mailboxes of an address header, display names decoded with adjacent encoded-words joined.
fn address_list(header: &Header<'_>, raw: &[u8]) -> Vec<String> {
    let bytes = header_bytes(header, raw);
    if find(bytes, b"=?").is_some() {
        let joined = with_newline(encoded::join_encoded_words(bytes));
        if let HeaderValue::Address(address) = MessageStream::new(&joined).parse_address() {
            return addresses(&address);
        }
    }
    match &header.value {
        HeaderValue::Address(address) => addresses(address),
        _ => Vec::new(),
    }
}

/// A part's file name when its Content-Disposition or Content-Type needs joining first
/// (RFC 2231 sections or adjacent encoded-words); `None` when mail-parser's own reading stands.
fn joined_file_name(raw: &[u8], part: &MessagePart<'_>) -> Option<String> {
    for (header, attribute) in [
        (HeaderName::ContentDisposition, "filename"),
        (HeaderName::ContentType, "name"),
    ] {
        let Some(h) = part.headers.iter().find(|h| h.name == header) else {
            continue;
        };
        let bytes = header_bytes(h, raw);
        let words = encoded::join_encoded_words(bytes);
        let sections = encoded::join_continuations(&words);
        if matches!((&words, &sections), (Cow::Borrowed(_), Cow::Borrowed(_))) {
            continue;
        }
        let joined = with_newline(Cow::Borrowed(&sections));
        if let HeaderValue::ContentType(ct) = MessageStream::new(&joined).parse_content_type()
            && let Some(name) = ct.attribute(attribute)
        {
            return Some(name.to_string());
        }
    }
    None
}

fn header_bytes<'r>(header: &Header<'_>, raw: &'r [u8]) -> &'r [u8] {
    raw.get(header.offset_start as usize..header.offset_end as usize)
        .unwrap_or_default()
}

/// mail-parser's field parsers read up to the end of the line: make sure there is one.
fn with_newline(bytes: Cow<'_, [u8]>) -> Vec<u8> {
    let mut bytes = bytes.into_owned();
    if !bytes.ends_with(b"\n") {
        bytes.extend_from_slice(b"\r\n");
    }
    bytes
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// Joins folded header lines; bytes that are not UTF-8 are read as windows-1252.
fn unfold(bytes: &[u8]) -> String {
    let text = match std::str::from_utf8(bytes) {
        Ok(text) => Cow::Borrowed(text),
        Err(_) => match charset_decoder(b"windows-1252") {
            Some(latin) => Cow::Owned(latin(bytes)),
            None => String::from_utf8_lossy(bytes),
        },
    };
    // Into one buffer: every header of every message passes here.
    let mut out = String::with_capacity(text.len());
    for line in text.split(['\r', '\n']).map(str::trim).filter(|l| !l.is_empty()) {
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(line);
    }
    out
}

/// `Name <address>` (or the bare address) for every mailbox, groups flattened.
fn addresses(address: &Address<'_>) -> Vec<String> {
    address
        .iter()
        .map(|a| {
            let name = a.name.as_deref().map(str::trim).unwrap_or_default();
            let addr = a.address.as_deref().map(str::trim).unwrap_or_default();
            // Clients often repeat the address as the display name; once is enough.
            match (
                name.is_empty() || name.eq_ignore_ascii_case(addr),
                addr.is_empty(),
            ) {
                (false, false) => format!("{name} <{addr}>"),
                (true, _) => addr.to_string(),
                (false, true) => name.to_string(),
            }
        })
        .collect()
}

#[cfg(test)]
#[path = "mime_tests.rs"]
mod tests;
