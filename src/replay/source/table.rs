//! CSV with a header row. Column names default to the ticket field names (`id`, `subject`,
//! `body`, `from`, `to`, `label`, `language`, `raw`); [`CsvOptions`] renames them, or names
//! one `text` column that stands for the body (exports that keep only the text).
//!
//! A row with the wrong number of fields, an unclosed quote, more than the record limit or
//! invalid UTF-8 is a bad record naming its line; reading goes on (see [`rows`]).

use std::io::BufRead;
use std::sync::Arc;

use super::records::{RawRecord, Records};
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
pub(super) fn check_header(
    path: &std::path::Path,
    options: &CsvOptions,
    max: usize,
) -> Result<(), super::SourceError> {
    let name = path.display().to_string();
    let problem = |problem: String| super::SourceError::Header {
        path: path.to_path_buf(),
        problem,
    };
    let reader = super::open(path).map_err(|e| problem(e.to_string()))?;
    let mut records = Records::new(reader, delimiter(&name, options), max);
    let header = header(&mut records).map_err(problem)?;
    Columns::resolve(&header, options).map(|_| ()).map_err(problem)
}

/// The delimiter for `name`: tab for `.tsv` unless one is set, else a comma.
fn delimiter(name: &str, options: &CsvOptions) -> u8 {
    let plain = name.strip_suffix(".gz").unwrap_or(name);
    let tsv = plain.to_ascii_lowercase().ends_with(".tsv");
    options.delimiter.unwrap_or(if tsv { b'\t' } else { b',' })
}

/// Reads the header row.
fn header(records: &mut Records) -> Result<csv::ByteRecord, String> {
    match records.next_record() {
        Ok(Some(RawRecord {
            fields: Some(fields),
            unclosed_quote: false,
            ..
        })) => Ok(fields),
        Ok(Some(RawRecord { fields: None, .. })) => {
            Err("unreadable header: larger than the record limit".into())
        }
        Ok(Some(_)) => Err("unreadable header: a quote is never closed".into()),
        Ok(None) => Err("empty input: no header row".into()),
        Err(e) => Err(format!("unreadable header: {e}")),
    }
}

/// Streams the rows of a CSV file; a header the options cannot use becomes one bad record.
///
/// Every row is accounted for. A row with the wrong number of fields, or one the input ends
/// inside of (an unclosed quote), is a bad record; when it spans several lines, reading
/// resumes on the line after its first, so one stray quote costs one row, not the rest of the
/// file. A row larger than `max` is a bad record naming the lines it spans. Blank lines hold
/// no row.
pub(super) fn rows(reader: Box<dyn BufRead + Send>, name: String, options: &CsvOptions, max: usize) -> Units {
    let mut records = Records::new(reader, delimiter(&name, options), max);
    let columns = header(&mut records).and_then(|h| Columns::resolve(&h, options));
    let columns = match columns {
        Ok(c) => Arc::new(c),
        Err(problem) => return Box::new(std::iter::once(Unit::bad(format!("{name}:1"), None, problem))),
    };
    let mut done = false;
    Box::new(std::iter::from_fn(move || {
        if done {
            return None;
        }
        let record = match records.next_record() {
            Ok(Some(record)) => record,
            Ok(None) => return None,
            Err(e) => {
                done = true;
                return Some(Unit::bad(
                    name.clone(),
                    None,
                    format!("read error, rest of input skipped: {e}"),
                ));
            }
        };
        let source = format!("{name}:{}", record.line);
        let expected = columns.names.len();
        let fields = match (&record.fields, record.unclosed_quote) {
            (Some(fields), false) if fields.len() == expected => {
                let row = record.fields.unwrap_or_default();
                return Some(Unit {
                    position: 0,
                    source,
                    kind: Kind::Row(row, columns.clone()),
                });
            }
            (Some(fields), _) => fields.len(),
            (None, _) => {
                let span = lines(&record);
                let error = if record.unclosed_quote {
                    format!(
                        "a quote opened on line {} is never closed: {span} larger than {max} bytes up to the end of the input were not read",
                        record.line
                    )
                } else {
                    format!("CSV row larger than {max} bytes ({span}; a stray quote?) was not read")
                };
                return Some(Unit::bad(source, None, error));
            }
        };
        let what = if record.unclosed_quote {
            "a quote that is never closed".to_string()
        } else {
            format!("{fields} fields where the header has {expected}")
        };
        // Read the rest again from the line after this row's first: a stray quote swallows
        // the rows after it, which are good.
        let resumed = record.last_line > record.line
            && record
                .raw
                .as_ref()
                .is_some_and(|raw| match raw.iter().position(|&b| b == b'\n') {
                    Some(nl) => records.read_again(&raw[nl + 1..], record.line + 1),
                    None => false,
                });
        let error = if resumed {
            format!(
                "malformed CSV row ({what}); reading resumes at line {}",
                record.line + 1
            )
        } else {
            format!("malformed CSV row ({what}, {})", lines(&record))
        };
        Some(Unit::bad(source, None, error))
    }))
}

/// "line 3" or "lines 3–9".
fn lines(record: &RawRecord) -> String {
    if record.last_line > record.line {
        format!("lines {}–{}", record.line, record.last_line)
    } else {
        format!("line {}", record.line)
    }
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
