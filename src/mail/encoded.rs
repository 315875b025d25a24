//! Header text that mailers split in the middle of a character, joined before it is decoded.
//!
//! - RFC 2047 §6.2: whitespace between adjacent encoded-words is not displayed, and a word may
//!   end in the middle of a multi-byte character (Outlook and others fold long subjects this
//!   way: `=?utf-8?B?S8M=?= =?utf-8?B?vG5kaWd1bmc=?=` is "Kündigung"). Decoded one word at a
//!   time, each half becomes U+FFFD. [`join_encoded_words`] rewrites each run of adjacent words
//!   in one charset as a single word, so the bytes are decoded together.
//! - RFC 2231 §3–4: a parameter split into `name*0*`, `name*1*`, … sections, percent-encoded
//!   in the charset named by the first one, may likewise split a character between sections.
//!   [`join_continuations`] rewrites them as one `name*=charset''…` parameter.
//!
//! Both return their input unchanged (borrowed) when there is nothing to join; mail-parser
//! then decodes the result as usual, and a sequence that is invalid in its charset still
//! becomes one U+FFFD, nothing more.

use std::borrow::Cow;
use std::fmt::Write as _;

use base64::Engine as _;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};

/// Base64 as mailers write it in encoded-words: padding optional, stray bits tolerated.
pub(crate) const LENIENT: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new()
        .with_decode_padding_mode(DecodePaddingMode::Indifferent)
        .with_decode_allow_trailing_bits(true),
);

/// One encoded-word found in a header value.
struct Word<'a> {
    /// Byte range of the whole `=?…?=` in the value.
    start: usize,
    end: usize,
    /// The charset as written (an RFC 2231 `*language` suffix removed).
    charset: &'a [u8],
    /// The decoded bytes, still in `charset`.
    bytes: Vec<u8>,
}

/// Rewrites every run of two or more adjacent encoded-words with the same charset (separated
/// only by whitespace, folding included) as one base64 encoded-word holding their bytes joined.
pub fn join_encoded_words(value: &[u8]) -> Cow<'_, [u8]> {
    let words = encoded_words(value);
    if words.len() < 2 {
        return Cow::Borrowed(value);
    }
    let mut out = Vec::with_capacity(value.len());
    let mut copied = 0;
    let mut i = 0;
    let mut joined_any = false;
    while i < words.len() {
        let mut j = i + 1;
        while j < words.len()
            && !is_stateful(words[i].charset)
            && words[j].charset.eq_ignore_ascii_case(words[i].charset)
            && value[words[j - 1].end..words[j].start]
                .iter()
                .all(|b| b.is_ascii_whitespace())
        {
            j += 1;
        }
        if j - i >= 2 {
            joined_any = true;
            out.extend_from_slice(&value[copied..words[i].start]);
            let bytes: Vec<u8> = words[i..j].iter().flat_map(|w| w.bytes.iter().copied()).collect();
            out.extend_from_slice(b"=?");
            out.extend_from_slice(words[i].charset);
            out.extend_from_slice(b"?B?");
            out.extend_from_slice(
                base64::engine::general_purpose::STANDARD
                    .encode(&bytes)
                    .as_bytes(),
            );
            out.extend_from_slice(b"?=");
            copied = words[j - 1].end;
        }
        i = j;
    }
    if !joined_any {
        return Cow::Borrowed(value);
    }
    out.extend_from_slice(&value[copied..]);
    Cow::Owned(out)
}

/// Stateful encodings (ISO-2022-JP and kin, UTF-7) end every word in their initial state, so
/// each word decodes on its own; joined, the escape sequences would meet and decode as errors.
fn is_stateful(charset: &[u8]) -> bool {
    let lower = charset.to_ascii_lowercase();
    lower.starts_with(b"iso-2022")
        || lower.starts_with(b"csiso2022")
        || lower == b"utf-7"
        || lower.starts_with(b"hz-gb")
}

/// Every well-formed encoded-word in `value`, in order.
fn encoded_words(value: &[u8]) -> Vec<Word<'_>> {
    let mut words = Vec::new();
    let mut at = 0;
    while let Some(found) = find(&value[at..], b"=?") {
        let start = at + found;
        match word_at(value, start) {
            Some(word) => {
                at = word.end;
                words.push(word);
            }
            None => at = start + 2,
        }
    }
    words
}

/// Parses `=?charset?enc?text?=` at `start`.
fn word_at(value: &[u8], start: usize) -> Option<Word<'_>> {
    let rest = &value[start + 2..];
    let q1 = rest.iter().position(|&b| b == b'?')?;
    let charset = &rest[..q1];
    if charset.is_empty() || charset.len() > 64 || !charset.iter().all(|b| b.is_ascii_graphic()) {
        return None;
    }
    let encoding = *rest.get(q1 + 1)?;
    if rest.get(q1 + 2) != Some(&b'?') {
        return None;
    }
    let text_start = q1 + 3;
    let text_len = find(&rest[text_start..], b"?=")?;
    let text = &rest[text_start..text_start + text_len];
    if text.iter().any(|b| b.is_ascii_whitespace()) {
        return None;
    }
    let bytes = match encoding {
        b'B' | b'b' => LENIENT.decode(text).ok()?,
        b'Q' | b'q' => q_decode(text),
        _ => return None,
    };
    let charset = match charset.iter().position(|&b| b == b'*') {
        Some(star) => &charset[..star],
        None => charset,
    };
    Some(Word {
        start,
        end: start + 2 + text_start + text_len + 2,
        charset,
        bytes,
    })
}

/// The "Q" encoding of RFC 2047 §4.2: `_` is a space, `=XX` a byte; a broken `=` stays as is.
fn q_decode(text: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(text.len());
    let mut i = 0;
    while i < text.len() {
        match text[i] {
            b'_' => out.push(b' '),
            b'=' => {
                if let Some(byte) = text.get(i + 1..i + 3).and_then(hex_byte) {
                    out.push(byte);
                    i += 3;
                    continue;
                }
                out.push(b'=');
            }
            b => out.push(b),
        }
        i += 1;
    }
    out
}

fn hex_byte(pair: &[u8]) -> Option<u8> {
    let digit = |b: u8| (b as char).to_digit(16);
    Some((digit(pair[0])? * 16 + digit(pair[1])?) as u8)
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// One `name*N[*]=value` section of a continued parameter.
struct Section {
    index: u32,
    /// The section's bytes: percent-decoded when it was encoded, as written otherwise.
    bytes: Vec<u8>,
}

/// Rewrites RFC 2231 continued parameters (`filename*0*=utf-8''%C3; filename*1*=%BC.pdf`) of a
/// Content-Type or Content-Disposition value as one extended parameter
/// (`filename*=utf-8''%C3%BC.pdf`), so the sections' bytes are decoded together.
pub fn join_continuations(value: &[u8]) -> Cow<'_, [u8]> {
    let text = match std::str::from_utf8(value) {
        Ok(text) if text.contains("*0") => text,
        _ => return Cow::Borrowed(value),
    };
    let params = split_params(text);
    let mut kept: Vec<&str> = Vec::new();
    // name (lower case) → (charset, sections)
    let mut continued: Vec<(String, String, Vec<Section>)> = Vec::new();
    for (i, param) in params.iter().enumerate() {
        let Some((name, raw_value)) = param.split_once('=').filter(|_| i > 0) else {
            kept.push(param);
            continue;
        };
        let name = name.trim();
        let Some((base, index, encoded)) = section_name(name) else {
            kept.push(param);
            continue;
        };
        let raw_value = unquote(raw_value.trim());
        let entry = match continued
            .iter_mut()
            .position(|(n, ..)| n.eq_ignore_ascii_case(base))
        {
            Some(at) => &mut continued[at],
            None => {
                continued.push((base.to_ascii_lowercase(), String::new(), Vec::new()));
                continued.last_mut().expect("just pushed")
            }
        };
        let mut data = raw_value.as_str();
        if encoded && index == 0 {
            // charset'language'value
            let mut parts = raw_value.splitn(3, '\'');
            if let (Some(charset), Some(_), Some(rest)) = (parts.next(), parts.next(), parts.next()) {
                entry.1 = charset.to_string();
                data = rest;
            }
        }
        let bytes = if encoded {
            percent_decode(data.as_bytes())
        } else {
            data.as_bytes().to_vec()
        };
        entry.2.push(Section { index, bytes });
    }
    if continued.is_empty() {
        return Cow::Borrowed(value);
    }
    let mut out = kept.join(";");
    for (name, charset, mut sections) in continued {
        sections.sort_by_key(|s| s.index);
        let charset = if charset.is_empty() { "utf-8" } else { &charset };
        let _ = write!(out, "; {name}*={charset}''");
        for byte in sections.iter().flat_map(|s| s.bytes.iter()) {
            if byte.is_ascii_alphanumeric() || b"!#$&+-.^_`|~".contains(byte) {
                out.push(*byte as char);
            } else {
                let _ = write!(out, "%{byte:02X}");
            }
        }
    }
    if value.ends_with(b"\n") && !out.ends_with('\n') {
        out.push_str("\r\n");
    }
    Cow::Owned(out.into_bytes())
}

/// `filename*1*` → (`filename`, 1, true); `filename*0` → (`filename`, 0, false).
fn section_name(name: &str) -> Option<(&str, u32, bool)> {
    let (base, rest) = name.split_once('*')?;
    let (digits, encoded) = match rest.strip_suffix('*') {
        Some(d) => (d, true),
        None => (rest, false),
    };
    if base.is_empty() || digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some((base, digits.parse().ok()?, encoded))
}

/// Splits a header value at `;` outside quoted strings.
fn split_params(text: &str) -> Vec<&str> {
    let mut params = Vec::new();
    let (mut quoted, mut escaped, mut start) = (false, false, 0);
    for (i, c) in text.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            ';' if !quoted => {
                params.push(&text[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    params.push(&text[start..]);
    params
}

fn unquote(value: &str) -> String {
    match value.strip_prefix('"').and_then(|v| v.strip_suffix('"')) {
        Some(inner) => inner.replace("\\\"", "\"").replace("\\\\", "\\"),
        None => value.to_string(),
    }
}

fn percent_decode(text: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(text.len());
    let mut i = 0;
    while i < text.len() {
        if text[i] == b'%'
            && let Some(byte) = text.get(i + 1..i + 3).and_then(hex_byte)
        {
            out.push(byte);
            i += 3;
            continue;
        }
        out.push(text[i]);
        i += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use mail_parser::HeaderValue;
    use mail_parser::parsers::MessageStream;

    use super::*;

    fn unstructured(value: &str) -> String {
        let joined = join_encoded_words(value.as_bytes()).into_owned();
        match MessageStream::new(&[joined, b"\n".to_vec()].concat()).parse_unstructured() {
            HeaderValue::Text(t) => t.into_owned(),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn base64_words_that_split_a_character_are_decoded_together() {
        assert_eq!(
            unstructured("=?utf-8?B?S8M=?=\r\n =?utf-8?B?vG5kaWd1bmc=?="),
            "Kündigung"
        );
    }

    #[test]
    fn q_words_that_split_a_character_are_decoded_together() {
        assert_eq!(
            unstructured("=?UTF-8?Q?Factura_duplicada_=C3?= =?utf-8?q?=A9t=C3=A9?="),
            "Factura duplicada été"
        );
    }

    #[test]
    fn words_in_other_charsets_and_plain_text_between_are_left_alone() {
        let value = "=?iso-8859-1?Q?Caf=E9?= und =?utf-8?B?S8O8?=";
        assert!(matches!(join_encoded_words(value.as_bytes()), Cow::Borrowed(_)));
        assert_eq!(unstructured(value), "Café und Kü");
    }

    #[test]
    fn words_in_a_stateful_charset_are_decoded_one_by_one() {
        let value = "=?iso-2022-jp?B?GyRCRnxLXBsoQg==?=\r\n =?iso-2022-jp?B?GyRCOGwbKEI=?=";
        assert!(matches!(join_encoded_words(value.as_bytes()), Cow::Borrowed(_)));
        assert_eq!(unstructured(value), "日本語");
    }

    #[test]
    fn a_lone_invalid_sequence_becomes_one_replacement_character() {
        assert_eq!(unstructured("=?utf-8?B?S8M=?= =?utf-8?B?dW5k?="), "K\u{FFFD}und");
    }

    #[test]
    fn malformed_words_are_kept_as_text() {
        let value = "=?utf-8?X?abc?= =?utf-8?B?";
        assert!(matches!(join_encoded_words(value.as_bytes()), Cow::Borrowed(_)));
    }

    #[test]
    fn display_names_split_across_words_are_joined() {
        let raw =
            join_encoded_words(b"=?utf-8?B?SsO8cmdlbiBN?= =?utf-8?B?w7xsbGVy?= <j@x.de>\n").into_owned();
        let HeaderValue::Address(address) = MessageStream::new(&raw).parse_address() else {
            panic!("not an address");
        };
        let first = address.first().unwrap();
        assert_eq!(first.name.as_deref(), Some("Jürgen Müller"));
    }

    #[test]
    fn rfc2231_sections_that_split_a_character_are_decoded_together() {
        let value = b"attachment; filename*0*=utf-8''Rechnung_M%C3; filename*1*=%A4rz.pdf\r\n";
        let joined = join_continuations(value).into_owned();
        let HeaderValue::ContentType(ct) = MessageStream::new(&joined).parse_content_type() else {
            panic!("not a content type");
        };
        assert_eq!(ct.attribute("filename"), Some("Rechnung_März.pdf"));
    }

    #[test]
    fn unencoded_sections_join_in_order() {
        let value = b"application/pdf; name*1=\"2.pdf\"; name*0=\"factura \"\r\n";
        let joined = join_continuations(value).into_owned();
        let HeaderValue::ContentType(ct) = MessageStream::new(&joined).parse_content_type() else {
            panic!("not a content type");
        };
        assert_eq!(ct.attribute("name"), Some("factura 2.pdf"));
    }
}
