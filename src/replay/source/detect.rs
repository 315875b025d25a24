//! Which format an input is: by its name first, then by its first bytes.

use std::io::BufRead;
use std::path::Path;

use super::{Format, SourceError, open};

/// Recognises an input's format: a folder with `cur/` or `new/` is a maildir, any other folder
/// a tree of `.eml` files; a file by its extension (`.gz` aside), else by its content; `-`
/// (stdin) is JSONL.
pub fn detect(path: &Path) -> Result<Format, SourceError> {
    let open_error = |source| SourceError::Open {
        path: path.to_path_buf(),
        source,
    };
    // Peeking at stdin would consume what the reader needs: stdin is JSONL unless --format
    // says otherwise (gzip is still recognised).
    if path.as_os_str() == "-" {
        return Ok(Format::Jsonl);
    }
    let meta = std::fs::metadata(path).map_err(open_error)?;
    if meta.is_dir() {
        let maildir = path.join("cur").is_dir() || path.join("new").is_dir();
        return Ok(if maildir { Format::Maildir } else { Format::Eml });
    }
    if let Some(format) = by_name(path) {
        return Ok(format);
    }
    let mut reader = open(path).map_err(open_error)?;
    let head = reader.fill_buf().map_err(open_error)?;
    by_content(head).ok_or_else(|| SourceError::UnknownFormat(path.to_path_buf()))
}

fn by_name(path: &Path) -> Option<Format> {
    let name = path.file_name()?.to_string_lossy().to_ascii_lowercase();
    let name = name.strip_suffix(".gz").unwrap_or(&name);
    let ext = name.rsplit_once('.')?.1;
    match ext {
        "jsonl" | "ndjson" => Some(Format::Jsonl),
        "csv" | "tsv" => Some(Format::Csv),
        "mbox" | "mbx" => Some(Format::Mbox),
        "eml" => Some(Format::Eml),
        _ => None,
    }
}

fn by_content(head: &[u8]) -> Option<Format> {
    let head = head.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(head);
    let start = head.iter().position(|b| !b.is_ascii_whitespace())?;
    let text = &head[start..];
    if text.starts_with(b"{") {
        Some(Format::Jsonl)
    } else if head.starts_with(b"From ") {
        Some(Format::Mbox)
    } else if crate::mail::looks_like_email(head) {
        Some(Format::Eml)
    } else {
        let first = text.split(|&b| b == b'\n').next().unwrap_or_default();
        first
            .iter()
            .any(|b| matches!(b, b',' | b';' | b'\t'))
            .then_some(Format::Csv)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_tells_jsonl_mbox_email_and_csv_apart() {
        assert_eq!(by_content(b"  {\"id\": 1}\n"), Some(Format::Jsonl));
        assert_eq!(
            by_content(b"From a@b Mon Jan  1 00:00:00 2024\n"),
            Some(Format::Mbox)
        );
        assert_eq!(by_content(b"From: a@b\nSubject: x\n\nhi\n"), Some(Format::Eml));
        assert_eq!(by_content(b"id,subject,body\n1,a,b\n"), Some(Format::Csv));
        assert_eq!(by_content(b"just words\n"), None);
    }

    #[test]
    fn names_win_over_content_and_gz_is_looked_through() {
        assert_eq!(by_name(Path::new("x/tickets.jsonl.gz")), Some(Format::Jsonl));
        assert_eq!(by_name(Path::new("a.TSV")), Some(Format::Csv));
        assert_eq!(by_name(Path::new("archive")), None);
    }
}
