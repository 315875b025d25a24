//! CSV records cut with csv-core under a size limit, with what the CSV rows reader needs to
//! recover from a malformed record: where it starts, the bytes it spans, whether it ended
//! inside a quoted field.
//!
//! The csv crate's reader grows a record for as long as its field does: one quoted field of
//! 2 GiB was read whole. Here a record's fields are kept up to `max` bytes; beyond, the rest of
//! the record is read and dropped and the record is reported too large.

use std::io::{self, BufRead};

/// One record as read, before its fields are checked against the header.
#[derive(Debug)]
pub struct RawRecord {
    /// The line it starts on (1-based).
    pub line: u64,
    /// The line its last byte is on.
    pub last_line: u64,
    /// Its fields, or `None` when they were larger than the limit.
    pub fields: Option<csv::ByteRecord>,
    /// The bytes it spans, when they fit in the limit (for reading them again after a
    /// malformed record).
    pub raw: Option<Vec<u8>>,
    /// True when the input ended inside a quoted field: a quote was never closed.
    pub unclosed_quote: bool,
}

/// Most fields kept in one record; a record with more is malformed anyway (it must have as
/// many as the header), and keeping their ends would cost memory for nothing.
const MAX_FIELDS: usize = 4096;

/// Reads records from a stream, never keeping more than `max` bytes of one.
pub struct Records {
    input: Box<dyn BufRead + Send>,
    /// Bytes to read again before the input (after a malformed record).
    replay: Vec<u8>,
    replay_at: usize,
    core: csv_core::Reader,
    max: usize,
    /// The line the next record starts on.
    line: u64,
    /// Bytes read from the input so far, and read again: re-reading is allowed only while it
    /// stays within a multiple of the input, so recovery is linear even on hostile input.
    read_total: u64,
    replayed_total: u64,
    done: bool,
}

impl Records {
    /// Records of `input` with `delimiter`, none larger than `max` bytes.
    pub fn new(input: Box<dyn BufRead + Send>, delimiter: u8, max: usize) -> Records {
        Records {
            input,
            replay: Vec::new(),
            replay_at: 0,
            core: csv_core::ReaderBuilder::new().delimiter(delimiter).build(),
            max,
            line: 1,
            read_total: 0,
            replayed_total: 0,
            done: false,
        }
    }

    /// Reads `bytes` (the rest of a malformed record after its first line) again before the
    /// input, as the start of the next record on `line`. Returns false, doing nothing, when
    /// re-reading would exceed the budget (twice the input read so far, plus one record).
    pub fn read_again(&mut self, bytes: &[u8], line: u64) -> bool {
        let budget = 2 * self.read_total + self.max as u64;
        if self.replayed_total + bytes.len() as u64 > budget {
            return false;
        }
        self.replayed_total += bytes.len() as u64;
        let mut replay = bytes.to_vec();
        replay.extend_from_slice(&self.replay[self.replay_at..]);
        self.replay = replay;
        self.replay_at = 0;
        self.core.reset();
        self.line = line;
        true
    }

    /// The next record, `None` at the end of the input.
    pub fn next_record(&mut self) -> io::Result<Option<RawRecord>> {
        if self.done {
            return Ok(None);
        }
        // Blank lines before a record are no part of it: it starts at its first other byte.
        let mut start_line: Option<u64> = None;
        let mut out = vec![0u8; 4096.min(self.max.max(1))];
        let mut nout = 0;
        let mut ends = vec![0usize; 64];
        let mut nend = 0;
        let mut scratch_out = [0u8; 4096];
        let mut scratch_ends = [0usize; 64];
        let mut raw = Some(Vec::new());
        let mut too_large = false;
        let mut quotes_open = false;
        let mut ends_with_newline = false;
        loop {
            let from_replay = self.replay_at < self.replay.len();
            let input: &[u8] = if from_replay {
                &self.replay[self.replay_at..]
            } else {
                match self.input.fill_buf() {
                    Ok(buf) => buf,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => {
                        self.done = true;
                        return Err(e);
                    }
                }
            };
            let at_end = input.is_empty();
            let (result, nin, n_out, n_end) = if too_large {
                self.core.read_record(input, &mut scratch_out, &mut scratch_ends)
            } else {
                self.core.read_record(input, &mut out[nout..], &mut ends[nend..])
            };
            let consumed = &input[..nin];
            let mut part = consumed;
            if start_line.is_none() {
                match consumed.iter().position(|b| !matches!(b, b'\n' | b'\r')) {
                    Some(i) => {
                        start_line = Some(self.line + newlines(&consumed[..i]));
                        part = &consumed[i..];
                    }
                    None => part = &[],
                }
            }
            self.line += newlines(consumed);
            quotes_open ^= part.iter().filter(|&&b| b == b'"').count() % 2 == 1;
            if let Some(bytes) = &mut raw {
                if bytes.len() + part.len() <= self.max {
                    bytes.extend_from_slice(part);
                } else {
                    raw = None;
                }
            }
            if let Some(&last) = consumed.last() {
                ends_with_newline = last == b'\n';
            }
            if from_replay {
                self.replay_at += nin;
                if self.replay_at == self.replay.len() {
                    self.replay.clear();
                    self.replay_at = 0;
                }
            } else {
                self.input.consume(nin);
                self.read_total += nin as u64;
            }
            if !too_large {
                nout += n_out;
                nend += n_end;
            }
            match result {
                csv_core::ReadRecordResult::InputEmpty => {}
                csv_core::ReadRecordResult::OutputFull => {
                    if !too_large && out.len() >= self.max {
                        too_large = true;
                    } else if !too_large {
                        let grown = (out.len() * 2).min(self.max);
                        out.resize(grown, 0);
                    }
                }
                csv_core::ReadRecordResult::OutputEndsFull => {
                    if !too_large && ends.len() >= MAX_FIELDS {
                        too_large = true;
                    } else if !too_large {
                        ends.resize(ends.len() * 2, 0);
                    }
                }
                csv_core::ReadRecordResult::Record => {
                    let last_line = if ends_with_newline {
                        self.line - 1
                    } else {
                        self.line
                    };
                    let fields = (!too_large).then(|| {
                        let mut record = csv::ByteRecord::with_capacity(nout, nend);
                        let mut start = 0;
                        for &end in &ends[..nend] {
                            record.push_field(&out[start..end]);
                            start = end;
                        }
                        record
                    });
                    return Ok(Some(RawRecord {
                        line: start_line.unwrap_or(last_line),
                        last_line,
                        fields,
                        raw,
                        unclosed_quote: at_end && quotes_open,
                    }));
                }
                csv_core::ReadRecordResult::End => {
                    self.done = true;
                    return Ok(None);
                }
            }
        }
    }
}

fn newlines(bytes: &[u8]) -> u64 {
    bytes.iter().filter(|&&b| b == b'\n').count() as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn records(text: &str, max: usize) -> Vec<RawRecord> {
        let input: Box<dyn BufRead + Send> = Box::new(std::io::Cursor::new(text.as_bytes().to_vec()));
        let mut r = Records::new(input, b',', max);
        let mut out = Vec::new();
        while let Some(rec) = r.next_record().unwrap() {
            out.push(rec);
        }
        out
    }

    fn texts(rec: &RawRecord) -> Vec<String> {
        rec.fields
            .as_ref()
            .unwrap()
            .iter()
            .map(|f| String::from_utf8_lossy(f).into_owned())
            .collect()
    }

    #[test]
    fn records_keep_their_lines_and_quoted_newlines() {
        let r = records("a,b\n1,\"x\ny\"\n\n\n2,z\n", 1000);
        assert_eq!(r.len(), 3);
        assert_eq!((r[1].line, r[1].last_line), (2, 3));
        assert_eq!(texts(&r[1]), ["1", "x\ny"]);
        assert_eq!(
            (r[2].line, texts(&r[2])),
            (6, vec!["2".to_string(), "z".to_string()])
        );
    }

    #[test]
    fn crlf_and_blank_lines_keep_the_line_numbers_right() {
        let r = records("a,b\r\n\r\n1,x\r\n2,\"y\r\nz\"\r\n3,w", 1000);
        let lines: Vec<(u64, u64)> = r.iter().map(|r| (r.line, r.last_line)).collect();
        assert_eq!(lines, [(1, 1), (3, 3), (4, 5), (6, 6)]);
    }

    #[test]
    fn a_record_over_the_limit_is_read_past_without_being_kept() {
        let big = "x".repeat(10_000);
        let r = records(&format!("a,b\n1,\"{big}\"\n2,ok\n"), 1000);
        assert_eq!(r.len(), 3);
        assert!(r[1].fields.is_none() && r[1].raw.is_none());
        assert_eq!(texts(&r[2]), ["2", "ok"]);
    }

    #[test]
    fn an_unclosed_quote_runs_to_the_end_and_says_so() {
        let r = records("a,b\n1,\"open\n2,x\n3,y\n", 1000);
        assert_eq!(r.len(), 2);
        assert!(r[1].unclosed_quote);
        assert_eq!((r[1].line, r[1].last_line), (2, 4));
    }
}
