//! Input files → records, streamed: the readers every batch command shares.
//!
//! A [`Reader`] walks the inputs in order and cuts them into [`Unit`]s cheaply (a line, a CSV
//! row, one message's bytes); [`Unit::decode`] turns a unit into a [`Record`] or a
//! [`BadRecord`]. The split lets a caller decode in parallel while reading stays sequential;
//! [`Reader::records`] does both in one iterator for simple callers.
//!
//! - [`lines`]: JSONL ticket objects. [`table`]: CSV with a header row.
//! - [`mbox`]: mboxrd/mboxo files. [`files`]: maildir folders and `.eml` trees.
//!
//! Memory stays bounded: nothing holds more than one record (capped at
//! [`SourceOptions::max_record_bytes`]) besides the reader's buffers.

mod detect;
pub mod files;
pub mod lines;
pub mod mbox;
mod records;
pub mod table;

use std::collections::VecDeque;
use std::fmt;
use std::io::{self, BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::str::FromStr;

use flate2::read::MultiGzDecoder;

pub use detect::detect;
pub use table::CsvOptions;

use crate::message::Ticket;

/// Input formats `triage replay` reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    /// One JSON ticket object per line.
    Jsonl,
    /// Comma (or other) separated values with a header row.
    Csv,
    /// An mbox file (`From ` separators, `>From` escapes).
    Mbox,
    /// A maildir folder (`cur/` and `new/`).
    Maildir,
    /// One `.eml` file, or a folder searched recursively for them.
    Eml,
}

impl FromStr for Format {
    type Err = String;

    fn from_str(s: &str) -> Result<Format, String> {
        match s.to_ascii_lowercase().as_str() {
            "jsonl" | "ndjson" | "json" => Ok(Format::Jsonl),
            "csv" | "tsv" => Ok(Format::Csv),
            "mbox" => Ok(Format::Mbox),
            "maildir" => Ok(Format::Maildir),
            "eml" => Ok(Format::Eml),
            _ => Err(format!("unknown format `{s}` (jsonl, csv, mbox, maildir, eml)")),
        }
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Format::Jsonl => "jsonl",
            Format::Csv => "csv",
            Format::Mbox => "mbox",
            Format::Maildir => "maildir",
            Format::Eml => "eml",
        })
    }
}

/// Why an input cannot be read at all (a single bad record is a [`BadRecord`] instead).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SourceError {
    /// The path cannot be opened.
    #[error("{path}: {source}")]
    Open {
        /// The input.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// Neither the name nor the first bytes say what the input is.
    #[error("{0}: cannot tell the format; name it with --format")]
    UnknownFormat(PathBuf),
    /// The CSV header lacks a column the options name, or has no text column at all.
    #[error("{path}: {problem}")]
    Header {
        /// The input.
        path: PathBuf,
        /// What is wrong.
        problem: String,
    },
}

/// How to read the inputs.
#[derive(Debug, Clone)]
pub struct SourceOptions {
    /// Forces the format of every input; detected per input when `None`.
    pub format: Option<Format>,
    /// Column names and delimiter for CSV.
    pub csv: CsvOptions,
    /// Largest record kept (a line, a row, a message); beyond it the record becomes an error
    /// without ever being held whole, which keeps memory bounded on hostile input.
    pub max_record_bytes: usize,
}

impl Default for SourceOptions {
    fn default() -> Self {
        SourceOptions {
            format: None,
            csv: CsvOptions::default(),
            max_record_bytes: crate::mail::Limits::default().max_message_bytes,
        }
    }
}

/// A record's content: a ticket as a helpdesk describes it, or a whole RFC 5322 message.
#[derive(Debug, Clone, PartialEq)]
pub enum Payload {
    /// Fields already split (JSONL, CSV).
    Ticket(Ticket),
    /// The message as received; the intake decodes it ([`crate::intake`]).
    Raw(Vec<u8>),
}

impl Payload {
    /// The payload as the intake takes it.
    pub fn input(&self) -> crate::intake::Input<'_> {
        match self {
            Payload::Ticket(t) => crate::intake::Input::Ticket(t),
            Payload::Raw(raw) => crate::intake::Input::Raw(raw),
        }
    }
}

/// One input record, ready to classify.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    /// 0-based position over all inputs, counting error records too (what `--shard` splits on).
    pub position: u64,
    /// The record's own id, or where it is (`file:line`, `file#n`) when it has none.
    pub id: String,
    /// Where it is: `file:line` for lines and rows, `file:line` of the `From ` line for mbox,
    /// the path for message files.
    pub source: String,
    /// The expected queue, when the input says.
    pub label: Option<String>,
    /// The language the input claims (ISO 639-1), when it says: corpus metadata (`lang`) or
    /// the hint, for reporting accuracy per language.
    pub language: Option<String>,
    /// The caller's language hint (a JSONL `language` key, a CSV language column), which the
    /// intake applies exactly as a server request's `language`.
    pub hint: Option<String>,
    /// The content.
    pub payload: Payload,
}

/// A record that could not be read; it still yields exactly one output record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadRecord {
    /// 0-based position over all inputs.
    pub position: u64,
    /// The record's id when it could be read, else its location.
    pub id: String,
    /// Where it is (`file:line`).
    pub source: String,
    /// What is wrong with it.
    pub error: String,
}

/// A piece of input cut out but not yet decoded: cheap to produce, decoded in parallel.
#[derive(Debug)]
pub struct Unit {
    /// 0-based position over all inputs.
    pub position: u64,
    /// Where it is.
    pub source: String,
    kind: Kind,
}

/// What a unit holds.
#[derive(Debug)]
enum Kind {
    Json(Vec<u8>),
    Row(csv::ByteRecord, std::sync::Arc<table::Columns>),
    Email { id: String, bytes: Vec<u8> },
    Bad { id: String, error: String },
}

impl Unit {
    /// A unit that is already known to be bad (unreadable, too large, mid-file I/O error).
    fn bad(source: String, id: Option<String>, error: impl Into<String>) -> Unit {
        Unit {
            position: 0,
            kind: Kind::Bad {
                id: id.unwrap_or_else(|| source.clone()),
                error: error.into(),
            },
            source,
        }
    }

    /// A unit holding one whole message.
    fn email(source: String, id: String, bytes: Vec<u8>) -> Unit {
        Unit {
            position: 0,
            source,
            kind: Kind::Email { id, bytes },
        }
    }

    /// Bytes of input the unit holds (what bounds a chunk's memory).
    pub fn size(&self) -> usize {
        match &self.kind {
            Kind::Json(line) => line.len(),
            Kind::Row(row, _) => row.as_slice().len(),
            Kind::Email { bytes, .. } => bytes.len(),
            Kind::Bad { error, .. } => error.len(),
        }
    }

    /// Decodes the unit: the costly part (JSON, UTF-8), safe to run on any thread.
    pub fn decode(self) -> Result<Record, BadRecord> {
        let Unit {
            position,
            source,
            kind,
        } = self;
        let fail = |id: String, error: String| BadRecord {
            position,
            id,
            source: source.clone(),
            error,
        };
        let decoded = match kind {
            Kind::Json(line) => lines::decode(&line),
            Kind::Row(row, columns) => columns.decode(&row),
            Kind::Email { id, bytes } => {
                return Ok(Record {
                    position,
                    id,
                    source,
                    label: None,
                    language: None,
                    hint: None,
                    payload: Payload::Raw(bytes),
                });
            }
            Kind::Bad { id, error } => return Err(fail(id, error)),
        };
        match decoded {
            Ok(d) => Ok(Record {
                position,
                id: d.id.unwrap_or_else(|| source.clone()),
                label: d.label,
                language: d.language,
                hint: d.hint,
                payload: d.payload,
                source,
            }),
            Err((id, error)) => Err(fail(id.unwrap_or_else(|| source.clone()), error)),
        }
    }
}

/// What a line or row decoder found; `id` is `None` when the record has none.
#[derive(Debug)]
struct Decoded {
    id: Option<String>,
    label: Option<String>,
    language: Option<String>,
    hint: Option<String>,
    payload: Payload,
}

/// Why a line or row is bad, with its id when one could be read.
type DecodeError = (Option<String>, String);

/// Cuts one input into units (positions are assigned by the [`Reader`]).
type Units = Box<dyn Iterator<Item = Unit> + Send>;

/// Streams units from every input, in order.
pub struct Reader {
    pending: VecDeque<(PathBuf, Format)>,
    current: Option<Units>,
    options: SourceOptions,
    position: u64,
}

impl Reader {
    /// Checks every input (it exists; its format is forced or recognised) before reading any,
    /// so a typo fails at once instead of after hours of replay.
    pub fn open(inputs: &[PathBuf], options: SourceOptions) -> Result<Reader, SourceError> {
        let mut pending = VecDeque::new();
        for path in inputs {
            let format = match options.format {
                Some(f) => {
                    if path.as_os_str() != "-" {
                        std::fs::metadata(path).map_err(|source| SourceError::Open {
                            path: path.clone(),
                            source,
                        })?;
                    }
                    f
                }
                None => detect(path)?,
            };
            if format == Format::Csv && path.as_os_str() != "-" {
                table::check_header(path, &options.csv, options.max_record_bytes)?;
            }
            pending.push_back((path.clone(), format));
        }
        Ok(Reader {
            pending,
            current: None,
            options,
            position: 0,
        })
    }

    /// Every record, decoded on this thread: the simple way to consume a source.
    pub fn records(self) -> impl Iterator<Item = Result<Record, BadRecord>> + Send {
        self.map(Unit::decode)
    }

    fn start(&self, path: &Path, format: Format) -> Units {
        let name = path.display().to_string();
        let opened = || open(path).map_err(|e| Unit::bad(name.clone(), None, format!("cannot read: {e}")));
        let max = self.options.max_record_bytes;
        let units: Result<Units, Unit> = match format {
            Format::Jsonl => opened().map(|r| Box::new(lines::Lines::new(r, name.clone(), max)) as Units),
            Format::Csv => opened().map(|r| table::rows(r, name.clone(), &self.options.csv, max)),
            Format::Mbox => opened().map(|r| Box::new(mbox::Mbox::new(r, name.clone(), max)) as Units),
            Format::Maildir => Ok(Box::new(files::Files::maildir(path, max)) as Units),
            Format::Eml => Ok(Box::new(files::Files::tree(path, max)) as Units),
        };
        units.unwrap_or_else(|bad| Box::new(std::iter::once(bad)))
    }
}

impl Iterator for Reader {
    type Item = Unit;

    fn next(&mut self) -> Option<Unit> {
        loop {
            if let Some(units) = &mut self.current {
                if let Some(mut unit) = units.next() {
                    unit.position = self.position;
                    self.position += 1;
                    return Some(unit);
                }
                self.current = None;
            }
            let (path, format) = self.pending.pop_front()?;
            self.current = Some(self.start(&path, format));
        }
    }
}

/// The records of one stream of JSONL, CSV or mbox (an `.eml` stream is one message; a maildir
/// is no stream), named `name`, under `options`' limits: what [`Reader`] does with a file, for
/// callers that hold the bytes (and for the fuzzer, `fuzz/fuzz_targets/replay_readers.rs`).
/// A CSV stream with an unusable header is one bad record.
pub fn stream_records(
    name: &str,
    reader: Box<dyn BufRead + Send>,
    format: Format,
    options: &SourceOptions,
) -> impl Iterator<Item = Result<Record, BadRecord>> + Send {
    let name = name.to_string();
    let max = options.max_record_bytes;
    let units: Units = match format {
        Format::Jsonl => Box::new(lines::Lines::new(reader, name, max)),
        Format::Csv => table::rows(reader, name, &options.csv, max),
        Format::Mbox => Box::new(mbox::Mbox::new(reader, name, max)),
        Format::Eml | Format::Maildir => {
            let mut bytes = Vec::new();
            let read = reader.take(max as u64 + 1).read_to_end(&mut bytes);
            let unit = match read {
                Ok(n) if n > max => Unit::bad(
                    name.clone(),
                    Some(name),
                    format!("message larger than {max} bytes"),
                ),
                Ok(_) => Unit::email(name.clone(), name, bytes),
                Err(e) => Unit::bad(name.clone(), Some(name), format!("cannot read: {e}")),
            };
            Box::new(std::iter::once(unit))
        }
    };
    units.enumerate().map(|(i, mut unit)| {
        unit.position = i as u64;
        unit.decode()
    })
}

/// Opens a file (or stdin for `-`), decompressing gzip when the first bytes say so, whatever
/// the name.
pub fn open(path: &Path) -> io::Result<Box<dyn BufRead + Send>> {
    let raw: Box<dyn Read + Send> = if path.as_os_str() == "-" {
        Box::new(io::stdin())
    } else {
        Box::new(std::fs::File::open(path)?)
    };
    open_reader(raw)
}

/// Buffers `raw`, decompressing gzip when its first bytes say so.
pub fn open_reader(raw: Box<dyn Read + Send>) -> io::Result<Box<dyn BufRead + Send>> {
    let mut reader = BufReader::with_capacity(256 * 1024, raw);
    if reader.fill_buf()?.starts_with(&[0x1f, 0x8b]) {
        Ok(Box::new(BufReader::with_capacity(
            256 * 1024,
            MultiGzDecoder::new(reader),
        )))
    } else {
        Ok(Box::new(reader))
    }
}

/// Consumes whole blank lines (nothing but spaces, tabs and `\r` before the `\n`) at the
/// reader's position, in bulk over its buffer, and returns how many. Blank lines hold no
/// record; going through them one by one cost minutes on gigabytes of them.
pub fn skip_blank_lines(reader: &mut dyn BufRead) -> io::Result<u64> {
    let mut skipped = 0;
    loop {
        let buf = match reader.fill_buf() {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        // The end of the last whole blank line in the buffer, and the lines up to it.
        let mut end = 0;
        let mut lines = 0;
        let mut stopped = false;
        for (i, &b) in buf.iter().enumerate() {
            match b {
                b'\n' => {
                    end = i + 1;
                    lines += 1;
                }
                b' ' | b'\t' | b'\r' => {}
                _ => {
                    stopped = true;
                    break;
                }
            }
        }
        let whole = end == buf.len();
        reader.consume(end);
        skipped += lines;
        // Stop at text, at the end of the input, or when the buffer ends inside a line (its
        // reader takes it from there).
        if stopped || end == 0 || !whole {
            return Ok(skipped);
        }
    }
}

/// Reads one line into `buf` (cleared first), keeping at most `max` bytes. Returns `None` at
/// the end, else whether the line was longer than `max` (then `buf` is empty and the rest of
/// the line was skipped without being stored).
pub fn read_line(reader: &mut dyn BufRead, buf: &mut Vec<u8>, max: usize) -> io::Result<Option<bool>> {
    buf.clear();
    let mut any = false;
    let mut over = false;
    loop {
        let available = match reader.fill_buf() {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if available.is_empty() {
            return Ok(any.then_some(over));
        }
        any = true;
        let (len, done) = match memchr::memchr(b'\n', available) {
            Some(i) => (i + 1, true),
            None => (available.len(), false),
        };
        if !over {
            if buf.len() + len > max {
                over = true;
                buf.clear();
            } else {
                buf.extend_from_slice(&available[..len]);
            }
        }
        reader.consume(len);
        if done {
            return Ok(Some(over));
        }
    }
}
