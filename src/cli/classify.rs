//! `triage classify [FILE...]` and `triage classify --jsonl`.

use std::io::{BufRead, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use serde_json::{Value, json};
use triage::engine::explain::explain;
use triage::intake::{Input, IntakeError, intake};
use triage::mail::Limits;
use triage::replay::source::read_line;
use triage::{Engine, Message, Ticket};

/// Arguments of `classify`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The ruleset directory (default: rules/, or the built-in ruleset when there is none).
    #[arg(long, env = "TRIAGE_RULES")]
    rules: Option<PathBuf>,
    /// Read ticket objects, one JSON object per line, and print one verdict line per input line.
    #[arg(long)]
    jsonl: bool,
    /// Print a human-readable account of each verdict instead of JSON.
    #[arg(long)]
    explain: bool,
    /// Files to classify (raw emails or plain text); `-` or none for stdin.
    files: Vec<PathBuf>,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let engine = super::load_engine(args.rules.as_ref())?;
    let stdout = std::io::stdout();
    let mut out = BufWriter::new(stdout.lock());
    let mode = if args.explain { Mode::Explain } else { Mode::Json };
    let ok = if args.jsonl {
        classify_jsonl(&engine, &args.files, mode, &mut out)?
    } else {
        classify_files(&engine, &args.files, mode, &mut out)?
    };
    out.flush()?;
    Ok(if ok { ExitCode::SUCCESS } else { ExitCode::from(1) })
}

/// What to print for each verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// One compact JSON object per line.
    Json,
    /// A human-readable explanation.
    Explain,
}

/// Classifies one message and writes the verdict in the chosen form.
fn emit(
    engine: &Engine,
    id: &str,
    message: &Message,
    mode: Mode,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    match mode {
        Mode::Json => writeln!(out, "{}", serde_json::to_string(&engine.classify(id, message))?)?,
        Mode::Explain => writeln!(
            out,
            "{}",
            explain(engine.ruleset(), message, &engine.detailed(id, message))
        )?,
    }
    Ok(())
}

fn classify_files(
    engine: &Engine,
    files: &[PathBuf],
    mode: Mode,
    out: &mut impl Write,
) -> anyhow::Result<bool> {
    let stdin = [PathBuf::from("-")];
    let files = if files.is_empty() { &stdin[..] } else { files };
    let limits = Limits::default();
    let mut ok = true;
    for path in files {
        let id = path.display().to_string();
        let parsed = read_bounded(path, limits.max_message_bytes)
            .and_then(|raw| intake(Input::Raw(&raw), None, &limits).map_err(|e| e.to_string()));
        match parsed {
            Ok(message) => emit(engine, &id, &message, mode, out)?,
            Err(error) => {
                ok = false;
                writeln!(out, "{}", json!({ "id": id, "error": error }))?;
            }
        }
    }
    Ok(ok)
}

/// Reads a file (or stdin for `-`) but never more than one byte past `limit`: an oversized
/// input is refused without being held whole.
pub(super) fn read_bounded(path: &Path, limit: usize) -> Result<Vec<u8>, String> {
    let reader: Box<dyn Read> = if path.as_os_str() == "-" {
        Box::new(std::io::stdin().lock())
    } else {
        Box::new(std::fs::File::open(path).map_err(|e| e.to_string())?)
    };
    let mut buf = Vec::new();
    reader
        .take(limit as u64 + 1)
        .read_to_end(&mut buf)
        .map_err(|e| e.to_string())?;
    if buf.len() > limit {
        return Err(IntakeError::TooLarge {
            size: buf.len(),
            limit,
        }
        .to_string()
        .replacen(
            &format!("{} bytes", buf.len()),
            &format!("more than {limit} bytes"),
            1,
        ));
    }
    Ok(buf)
}

fn classify_jsonl(
    engine: &Engine,
    files: &[PathBuf],
    mode: Mode,
    out: &mut impl Write,
) -> anyhow::Result<bool> {
    let mut ok = true;
    let stdin = [PathBuf::from("-")];
    let files = if files.is_empty() { &stdin[..] } else { files };
    for path in files {
        let reader: Box<dyn BufRead> = if path.as_os_str() == "-" {
            Box::new(std::io::stdin().lock())
        } else {
            Box::new(std::io::BufReader::new(std::fs::File::open(path)?))
        };
        ok &= classify_lines(engine, reader, mode, out)?;
    }
    Ok(ok)
}

/// Classifies one ticket per line. A line longer than the message limit is never held: it
/// gets an error line naming its number and the limit, and the next line is read.
fn classify_lines(
    engine: &Engine,
    mut reader: impl BufRead,
    mode: Mode,
    out: &mut impl Write,
) -> anyhow::Result<bool> {
    let limits = Limits::default();
    let mut ok = true;
    let mut buf = Vec::new();
    let mut line_no = 0usize;
    while let Some(too_long) = read_line(&mut reader, &mut buf, limits.max_message_bytes)? {
        line_no += 1;
        if too_long {
            ok = false;
            let error = format!("line longer than {} bytes: not read", limits.max_message_bytes);
            writeln!(
                out,
                "{}",
                json!({ "id": Value::Null, "line": line_no, "error": error })
            )?;
            continue;
        }
        match parse_ticket(&buf) {
            Ok(ticket) => match intake(Input::Ticket(&ticket), None, &limits) {
                Ok(message) => emit(engine, &ticket.id, &message, mode, out)?,
                Err(error) => {
                    ok = false;
                    writeln!(
                        out,
                        "{}",
                        json!({ "id": ticket.id, "line": line_no, "error": error.to_string() })
                    )?;
                }
            },
            Err((id, error)) => {
                ok = false;
                writeln!(out, "{}", json!({ "id": id, "line": line_no, "error": error }))?;
            }
        }
    }
    Ok(ok)
}

/// Parses one input line as a ticket; on failure, the id (when one can be read) and why.
pub fn parse_ticket(line: &[u8]) -> Result<Ticket, (Value, String)> {
    let text = std::str::from_utf8(line).map_err(|e| (Value::Null, format!("invalid UTF-8: {e}")))?;
    let text = text.trim();
    if text.is_empty() {
        return Err((Value::Null, "empty line".to_string()));
    }
    let value: Value = serde_json::from_str(text).map_err(|e| (Value::Null, format!("invalid JSON: {e}")))?;
    let id = value.get("id").cloned().unwrap_or(Value::Null);
    if !value.is_object() {
        return Err((Value::Null, "not a JSON object".to_string()));
    }
    let numeric = id
        .is_number()
        .then(|| triage::message::numeric_id(text.as_bytes()))
        .flatten();
    let mut ticket: Ticket =
        serde_json::from_value(value).map_err(|e| (id, format!("invalid ticket: {e}")))?;
    // As written: integers beyond 64 bits would otherwise come back as floats.
    if let Some(numeric) = numeric {
        ticket.id = numeric;
    }
    Ok(ticket)
}
