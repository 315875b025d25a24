//! Input arguments shared by the batch commands (`replay`, `calibrate`, `learn`).

use std::path::PathBuf;

use triage::mail::Limits;
use triage::replay::Format;
use triage::replay::source::{CsvOptions, Reader, SourceError, SourceOptions};

/// Where the records come from and how to read them.
#[derive(Debug, clap::Args)]
pub struct InputArgs {
    /// Input file or folder (repeatable): JSONL, CSV, mbox, maildir, a folder of .eml; .gz is
    /// read transparently; `-` for stdin.
    #[arg(long, short, required = true)]
    pub input: Vec<PathBuf>,
    /// Force the format of every input (jsonl, csv, mbox, maildir, eml); detected otherwise.
    #[arg(long)]
    pub format: Option<Format>,
    /// Largest record (line, row or message) accepted, in bytes.
    #[arg(long, default_value_t = Limits::default().max_message_bytes)]
    pub max_message_bytes: usize,
    #[command(flatten)]
    pub csv: Box<CsvArgs>,
}

impl InputArgs {
    /// Message limits matching `--max-message-bytes`.
    pub fn limits(&self) -> Limits {
        Limits {
            max_message_bytes: self.max_message_bytes,
            ..Limits::default()
        }
    }

    /// The reader options these arguments describe.
    pub fn source_options(&self) -> SourceOptions {
        let c = &self.csv;
        SourceOptions {
            format: self.format,
            csv: CsvOptions {
                delimiter: c.csv_delimiter,
                id: c.csv_id.clone(),
                subject: c.csv_subject.clone(),
                body: c.csv_body.clone(),
                from: c.csv_from.clone(),
                to: c.csv_to.clone(),
                label: c.csv_label.clone(),
                language: c.csv_language.clone(),
                raw: c.csv_raw.clone(),
                text: c.csv_text.clone(),
            },
            max_record_bytes: self.max_message_bytes,
        }
    }

    /// Opens every input (checking them all first).
    pub fn open(&self) -> Result<Reader, SourceError> {
        Reader::open(&self.input, self.source_options())
    }
}

/// CSV column names and delimiter.
#[derive(Debug, clap::Args)]
pub struct CsvArgs {
    /// CSV column holding the id.
    #[arg(long, default_value = "id")]
    pub csv_id: String,
    /// CSV column holding the subject.
    #[arg(long, default_value = "subject")]
    pub csv_subject: String,
    /// CSV column holding the body.
    #[arg(long, default_value = "body")]
    pub csv_body: String,
    /// CSV column holding the sender.
    #[arg(long, default_value = "from")]
    pub csv_from: String,
    /// CSV column holding the recipients.
    #[arg(long, default_value = "to")]
    pub csv_to: String,
    /// CSV column holding the expected queue.
    #[arg(long, default_value = "label")]
    pub csv_label: String,
    /// CSV column holding the language.
    #[arg(long, default_value = "language")]
    pub csv_language: String,
    /// CSV column holding a whole RFC 5322 message.
    #[arg(long, default_value = "raw")]
    pub csv_raw: String,
    /// One CSV column with all the text, read as the body.
    #[arg(long)]
    pub csv_text: Option<String>,
    /// CSV delimiter: one character, or `tab` (default `,`; tab for .tsv).
    #[arg(long, value_parser = delimiter)]
    pub csv_delimiter: Option<u8>,
}

fn delimiter(s: &str) -> Result<u8, String> {
    match s {
        "tab" | "\\t" | "\t" => Ok(b'\t'),
        _ if s.len() == 1 => Ok(s.as_bytes()[0]),
        _ => Err(format!("expected one ASCII character or `tab`, got `{s}`")),
    }
}
