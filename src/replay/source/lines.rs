//! JSONL: one ticket object per line.
//!
//! Fields: `id` (string or number), `subject`, `body`, `from`, `to` (string or list),
//! `language` (or `lang`), `headers`, optional `label`, optional `raw` (a whole RFC 5322
//! message, which then replaces the other fields). A line that is not a JSON object, or whose
//! fields have the wrong types, is a bad record. Blank lines hold no record and are skipped.

use std::io::BufRead;

use serde::Deserialize;
use serde_json::Value;

use super::{DecodeError, Decoded, Kind, Payload, Unit, read_line, skip_blank_lines};
use crate::message::Ticket;

/// Cuts a JSONL stream into lines.
pub struct Lines {
    reader: Box<dyn BufRead + Send>,
    name: String,
    max: usize,
    line: usize,
    buf: Vec<u8>,
    done: bool,
}

impl Lines {
    /// Reads `reader`, naming lines `name:N`; lines over `max` bytes become bad records.
    pub fn new(reader: Box<dyn BufRead + Send>, name: String, max: usize) -> Lines {
        Lines {
            reader,
            name,
            max,
            line: 0,
            buf: Vec::new(),
            done: false,
        }
    }
}

impl Iterator for Lines {
    type Item = Unit;

    fn next(&mut self) -> Option<Unit> {
        while !self.done {
            let read = skip_blank_lines(&mut *self.reader).and_then(|blank| {
                self.line += blank as usize;
                read_line(&mut *self.reader, &mut self.buf, self.max)
            });
            self.line += 1;
            let source = || format!("{}:{}", self.name, self.line);
            match read {
                Ok(None) => self.done = true,
                Ok(Some(true)) => {
                    return Some(Unit::bad(
                        source(),
                        None,
                        format!("line longer than {} bytes", self.max),
                    ));
                }
                Ok(Some(false)) if self.buf.trim_ascii().is_empty() => continue,
                Ok(Some(false)) => {
                    // Hands over the line and starts a fresh buffer: the unit owns its bytes.
                    let source = source();
                    let line = std::mem::take(&mut self.buf);
                    return Some(Unit {
                        position: 0,
                        source,
                        kind: Kind::Json(line),
                    });
                }
                Err(e) => {
                    // A broken stream (e.g. truncated gzip) ends this input; say so once.
                    self.done = true;
                    return Some(Unit::bad(
                        source(),
                        None,
                        format!("read error, rest of input skipped: {e}"),
                    ));
                }
            }
        }
        None
    }
}

/// The fields a ticket line may carry besides the [`Ticket`] ones.
#[derive(Deserialize)]
struct Extra {
    #[serde(default)]
    label: Option<String>,
    #[serde(default)]
    lang: Option<String>,
    #[serde(default)]
    raw: Option<String>,
}

/// Decodes one line.
pub(super) fn decode(line: &[u8]) -> Result<Decoded, DecodeError> {
    let text = std::str::from_utf8(line).map_err(|e| (None, format!("invalid UTF-8: {e}")))?;
    let value: Value = serde_json::from_str(text).map_err(|e| (None, format!("invalid JSON: {e}")))?;
    if !value.is_object() {
        return Err((None, "not a JSON object".to_string()));
    }
    let id = match value.get("id") {
        Some(Value::String(s)) if !s.is_empty() => Some(s.clone()),
        // As written: integers beyond 64 bits would otherwise come back as floats.
        Some(Value::Number(n)) => Some(crate::message::numeric_id(line).unwrap_or_else(|| n.to_string())),
        _ => None,
    };
    let mut ticket = Ticket::deserialize(&value).map_err(|e| (id.clone(), format!("invalid ticket: {e}")))?;
    if let Some(id) = &id {
        ticket.id = id.clone();
    }
    let extra = Extra::deserialize(&value).map_err(|e| (id.clone(), format!("invalid ticket: {e}")))?;
    let non_empty = |s: Option<String>| s.map(|s| s.trim().to_string()).filter(|s| !s.is_empty());
    // `lang` is corpus metadata, not a caller's hint: only `language` reaches the engine.
    let hint = non_empty(ticket.language.clone());
    let language = hint.clone().or_else(|| non_empty(extra.lang));
    let payload = match extra.raw {
        Some(raw) if !raw.is_empty() => Payload::Raw(raw.into_bytes()),
        _ => Payload::Ticket(ticket),
    };
    Ok(Decoded {
        id,
        label: non_empty(extra.label),
        language,
        hint,
        payload,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_labelled_ticket_line_decodes_lang_as_metadata_and_language_as_the_hint() {
        let d = decode(br#"{"id": 7, "lang": "es", "subject": "Factura", "label": "contract"}"#).unwrap();
        assert_eq!(d.id.as_deref(), Some("7"));
        assert_eq!(d.label.as_deref(), Some("contract"));
        assert_eq!(d.language.as_deref(), Some("es"));
        assert_eq!(d.hint, None);
        let d = decode(br#"{"language": "de", "raw": "Subject: x\r\n\r\nHallo"}"#).unwrap();
        assert_eq!(d.hint.as_deref(), Some("de"));
        assert!(matches!(d.payload, Payload::Raw(_)));
    }

    #[test]
    fn numeric_ids_beyond_64_bits_keep_their_digits() {
        let d = decode(br#"{"id": 18446744073709551616123, "subject": "x"}"#).unwrap();
        assert_eq!(d.id.as_deref(), Some("18446744073709551616123"));
        let Payload::Ticket(t) = d.payload else { panic!() };
        assert_eq!(t.id, "18446744073709551616123");
    }

    #[test]
    fn wrong_types_and_non_objects_are_refused_with_the_id_when_known() {
        assert_eq!(
            decode(br#"{"id": "a", "subject": 5}"#).unwrap_err().0.as_deref(),
            Some("a")
        );
        assert!(decode(br#"{"id": "a", "label": 5}"#).is_err());
        assert!(decode(b"[1, 2]").is_err());
        assert!(decode(b"{not json").is_err());
    }
}
