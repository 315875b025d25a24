//! `triage parse [FILE...]`: how the intake reads each message, one JSON object per input.
//!
//! The decoded subject, sender, recipients, new text, quoted history, signature, headers,
//! attachment names and notes, exactly as the engine sees them. For checking a mail client's
//! output, and for comparing triage's decoding with another parser's.

use std::io::{BufWriter, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use serde_json::json;
use triage::intake::{Input, intake};
use triage::mail::Limits;

/// Arguments of `parse`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Language hint (ISO 639-1) applied as a server request's `language` would be.
    #[arg(long)]
    language: Option<String>,
    /// Files to read (raw emails or plain text); `-` or none for stdin.
    files: Vec<PathBuf>,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let stdin = [PathBuf::from("-")];
    let files = if args.files.is_empty() {
        &stdin[..]
    } else {
        &args.files[..]
    };
    let limits = Limits::default();
    let mut out = BufWriter::new(std::io::stdout().lock());
    let mut ok = true;
    for path in files {
        let id = path.display().to_string();
        let read = super::classify::read_bounded(path, limits.max_message_bytes).and_then(|raw| {
            intake(Input::Raw(&raw), args.language.as_deref(), &limits).map_err(|e| e.to_string())
        });
        match read {
            Ok(message) => {
                let mut value = serde_json::to_value(&message)?;
                value["id"] = json!(id);
                writeln!(out, "{value}")?;
            }
            Err(error) => {
                ok = false;
                writeln!(out, "{}", json!({ "id": id, "error": error }))?;
            }
        }
    }
    out.flush()?;
    Ok(if ok { ExitCode::SUCCESS } else { ExitCode::from(1) })
}
