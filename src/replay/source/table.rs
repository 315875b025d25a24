//! CSV with a header row. Column names default to the ticket field names (`id`, `subject`,
//! `body`, `from`, `to`, `label`, `language`, `raw`); [`CsvOptions`] renames them, or names
//! one `text` column that stands for the body (exports that keep only the text).
//!
//! A row with the wrong number of fields, or with invalid UTF-8, is a bad record; reading
//! goes on with the next row.

use std::io::BufRead;
use std::sync::Arc;

use super::{DecodeError, Decoded, Kind, Payload, Unit, Units};
use crate::message::Ticket;

/// Column names and delimiter for CSV input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CsvOptions {
    /// Field delimiter (`,` by default; `\t` for `.tsv` files unless set).
    pub delimiter: Option<u8>,
    /// Column holding the id.
    pub id: String,
    /// Column holding the subject.
    pub subject: String,
    /// Column holding the body.
    pub body: String,
    /// Column holding the sender.
    pub from: String,
    /// Column holding the recipients (comma separated).
    pub to: String,
    /// Column holding the expected queue.
    pub label: String,
    /// Column holding the language (ISO 639-1).
    pub language: String,
    /// Column holding a whole RFC 5322 message.
    pub raw: String,
    /// One column with all the text, read as the body (overrides `body`).
    pub text: Option<String>,
}

impl Default for CsvOptions {
    fn default() -> Self {
        CsvOptions {
            delimiter: None,
            id: "id".into(),
            subject: "subject".into(),
            body: "body".into(),
            from: "from".into(),
            to: "to".into(),
            label: "label".into(),
            language: "language".into(),
            raw: "raw".into(),
            text: None,
        }
    }
}

/// Where each field is in a row, resolved once from the header.
#[derive(Debug, Default)]
pub struct Columns {
    id: Option<usize>,
    subject: Option<usize>,
    body: Option<usize>,
    from: Option<usize>,
    to: Option<usize>,
    label: Option<usize>,
    language: Option<usize>,
    raw: Option<usize>,
    names: Vec<String>,
}

/// Checks that the header of a CSV input has the columns the options name, so a typo in a
/// `--csv-*` option fails before any output instead of turning the file into one error.
pub(super) fn check_header(path: &std::path::Path, options: &CsvOptions) -> Result<(), super::SourceError> {
    let name = path.display().to_string();
    let problem = |problem: String| super::SourceError::Header {
        path: path.to_path_buf(),
        problem,
    };
    let reader = super::open(path).map_err(|e| problem(e.to_string()))?;
    let mut csv = builder(&name, options).from_reader(reader);
    let header = csv
        .byte_headers()
        .map_err(|e| problem(format!("unreadable header: {e}")))?;
    Columns::resolve(header, options).map(|_| ()).map_err(problem)
}

/// A CSV reader for `name`: tab-separated for `.tsv` unless a delimiter is set.
fn builder(name: &str, options: &CsvOptions) -> csv::ReaderBuilder {
    let plain = name.strip_suffix(".gz").unwrap_or(name);
    let tsv = plain.to_ascii_lowercase().ends_with(".tsv");
    let delimiter = options.delimiter.unwrap_or(if tsv { b'\t' } else { b',' });
    let mut builder = csv::ReaderBuilder::new();
    builder.delimiter(delimiter).has_headers(true).flexible(false);
    builder
}

/// Streams the rows of a CSV file; a header the options cannot use becomes one bad record.
pub(super) fn rows(reader: Box<dyn BufRead + Send>, name: String, options: &CsvOptions) -> Units {
    let mut csv = builder(&name, options).from_reader(reader);
    let columns = match csv.byte_headers() {
        Ok(header) => Columns::resolve(header, options),
        Err(e) => Err(format!("unreadable header: {e}")),
    };
    let columns = match columns {
        Ok(c) => Arc::new(c),
        Err(problem) => return Box::new(std::iter::once(Unit::bad(format!("{name}:1"), None, problem))),
    };
    let mut done = false;
    let mut row = csv::ByteRecord::new();
    Box::new(std::iter::from_fn(move || {
        if done {
            return None;
        }
        match csv.read_byte_record(&mut row) {
            Ok(true) => {
                let line = row.position().map_or(0, |p| p.line());
                Some(Unit {
                    position: 0,
                    source: format!("{name}:{line}"),
                    kind: Kind::Row(std::mem::take(&mut row), columns.clone()),
                })
            }
            Ok(false) => None,
            Err(e) => {
                let line = e.position().map_or(0, |p| p.line());
                let source = format!("{name}:{line}");
                // A malformed row leaves the reader at the next row; an I/O error does not.
                if matches!(e.kind(), csv::ErrorKind::Io(_)) {
                    done = true;
                    return Some(Unit::bad(
                        source,
                        None,
                        format!("read error, rest of input skipped: {e}"),
                    ));
                }
                Some(Unit::bad(source, None, format!("bad CSV row: {e}")))
            }
        }
    }))
}

impl Columns {
    fn resolve(header: &csv::ByteRecord, o: &CsvOptions) -> Result<Columns, String> {
        let names: Vec<String> = header
            .iter()
            .map(|h| {
                String::from_utf8_lossy(h)
                    .trim()
                    .trim_start_matches('\u{feff}')
                    .to_string()
            })
            .collect();
        let find = |wanted: &str| names.iter().position(|n| n.eq_ignore_ascii_case(wanted));
        let defaults = CsvOptions::default();
        // A column the user named must exist; a default name may be absent.
        let pick = |wanted: &str, default: &str| -> Result<Option<usize>, String> {
            match find(wanted) {
                Some(i) => Ok(Some(i)),
                None if wanted == default => Ok(None),
                None => Err(format!(
                    "no column `{wanted}` in the header ({})",
                    names.join(", ")
                )),
            }
        };
        let body = match &o.text {
            Some(text) => Some(find(text).ok_or_else(|| format!("no column `{text}` in the header"))?),
            None => pick(&o.body, &defaults.body)?,
        };
        let columns = Columns {
            id: pick(&o.id, &defaults.id)?,
            subject: pick(&o.subject, &defaults.subject)?,
            body,
            from: pick(&o.from, &defaults.from)?,
            to: pick(&o.to, &defaults.to)?,
            label: pick(&o.label, &defaults.label)?,
            language: match pick(&o.language, &defaults.language)? {
                None if o.language == defaults.language => find("lang"),
                found => found,
            },
            raw: pick(&o.raw, &defaults.raw)?,
            names,
        };
        if columns.subject.is_none() && columns.body.is_none() && columns.raw.is_none() {
            return Err(format!(
                "no text column (subject, body or raw; name one with --csv-text) in the header ({})",
                columns.names.join(", ")
            ));
        }
        Ok(columns)
    }

    /// Decodes one row.
    pub(super) fn decode(&self, row: &csv::ByteRecord) -> Result<Decoded, DecodeError> {
        let field = |at: Option<usize>| -> Result<String, DecodeError> {
            let Some(i) = at else { return Ok(String::new()) };
            let bytes = row.get(i).unwrap_or_default();
            std::str::from_utf8(bytes)
                .map(str::to_string)
                .map_err(|e| (None, format!("invalid UTF-8 in column `{}`: {e}", self.names[i])))
        };
        let id = Some(field(self.id)?.trim().to_string()).filter(|s| !s.is_empty());
        let with_id = |(_, e): DecodeError| (id.clone(), e);
        let some = |s: String| Some(s.trim().to_string()).filter(|s| !s.is_empty());
        let label = some(field(self.label).map_err(with_id)?);
        let language = some(field(self.language).map_err(with_id)?);
        let raw = field(self.raw).map_err(with_id)?;
        let payload = if !raw.trim().is_empty() {
            Payload::Raw(raw.into_bytes())
        } else {
            let to = field(self.to).map_err(with_id)?;
            Payload::Ticket(Ticket {
                id: id.clone().unwrap_or_default(),
                subject: field(self.subject).map_err(with_id)?,
                body: field(self.body).map_err(with_id)?,
                from: field(self.from).map_err(with_id)?,
                to: to
                    .split([',', ';'])
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(String::from)
                    .collect(),
                language: language.clone(),
                headers: Default::default(),
            })
        };
        Ok(Decoded {
            id,
            label,
            hint: language.clone(),
            language,
            payload,
        })
    }
}
