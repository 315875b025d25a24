//! mbox files: messages separated by `From ` lines.
//!
//! A `From ` line starts a message when it is the first line or follows a blank line, which
//! also keeps mboxo files readable where a writer forgot to escape one. Escapes are undone the
//! mboxrd way: one `>` is removed from any line matching `^>+From `. (In mboxo an original
//! `>From ` line is indistinguishable from an escaped one; it loses its `>` too.)
//!
//! The n-th message is `file#n`, its source `file:line` of its `From ` line.

use std::io::BufRead;

use super::{Unit, read_line, skip_blank_lines};

/// Cuts an mbox stream into messages.
pub struct Mbox {
    reader: Box<dyn BufRead + Send>,
    name: String,
    max: usize,
    line: usize,
    count: usize,
    buf: Vec<u8>,
    /// The current message: where it starts and its bytes so far.
    current: Option<Current>,
    /// True after a blank line (or at the start): a `From ` line may separate here.
    may_separate: bool,
    /// Text before the first `From ` line, reported once as a bad record.
    preamble: Option<usize>,
    done: bool,
}

struct Current {
    line: usize,
    bytes: Vec<u8>,
    too_large: bool,
}

impl Mbox {
    /// Reads `reader`, naming messages `name#n`; messages over `max` bytes become bad records.
    pub fn new(reader: Box<dyn BufRead + Send>, name: String, max: usize) -> Mbox {
        Mbox {
            reader,
            name,
            max,
            line: 0,
            count: 0,
            buf: Vec::new(),
            current: None,
            may_separate: true,
            preamble: None,
            done: false,
        }
    }

    /// Turns the finished message into a unit.
    fn finish(&mut self, current: Current) -> Unit {
        self.count += 1;
        let source = format!("{}:{}", self.name, current.line);
        let id = format!("{}#{}", self.name, self.count);
        if current.too_large {
            return Unit::bad(
                source,
                Some(id),
                format!("message larger than {} bytes", self.max),
            );
        }
        Unit::email(source, id, current.bytes)
    }
}

impl Iterator for Mbox {
    type Item = Unit;

    fn next(&mut self) -> Option<Unit> {
        while !self.done {
            // Blank lines outside a message (or in one already too large) are skipped in bulk.
            if self.current.as_ref().is_none_or(|c| c.too_large) {
                match skip_blank_lines(&mut *self.reader) {
                    Ok(0) => {}
                    Ok(n) => {
                        self.line += n as usize;
                        self.may_separate = true;
                    }
                    Err(_) => {}
                }
            }
            let read = read_line(&mut *self.reader, &mut self.buf, self.max.saturating_add(2));
            self.line += 1;
            let over = match read {
                Ok(Some(over)) => over,
                Ok(None) => {
                    self.done = true;
                    break;
                }
                Err(e) => {
                    self.done = true;
                    let source = format!("{}:{}", self.name, self.line);
                    self.current = None;
                    return Some(Unit::bad(
                        source,
                        None,
                        format!("read error, rest of input skipped: {e}"),
                    ));
                }
            };
            let line = &self.buf[..];
            // Before the first message any `From ` line opens one (after a preamble too).
            if (self.may_separate || self.current.is_none()) && line.starts_with(b"From ") {
                let next = Current {
                    line: self.line,
                    bytes: Vec::new(),
                    too_large: false,
                };
                self.may_separate = false;
                if let Some(bad) = self.preamble.take() {
                    self.current = Some(next);
                    let source = format!("{}:{}", self.name, bad);
                    return Some(Unit::bad(source, None, "text before the first `From ` line"));
                }
                if let Some(done) = self.current.replace(next) {
                    return Some(self.finish(done));
                }
                continue;
            }
            self.may_separate = line.trim_ascii().is_empty();
            let Some(current) = &mut self.current else {
                if !self.may_separate && self.preamble.is_none() {
                    self.preamble = Some(self.line);
                }
                continue;
            };
            if current.too_large {
                continue;
            }
            let start = line.iter().position(|&b| b != b'>').unwrap_or(line.len());
            let unescape = start > 0 && line[start..].starts_with(b"From ");
            let line = if unescape { &line[1..] } else { line };
            if over || current.bytes.len() + line.len() > self.max {
                current.too_large = true;
                current.bytes = Vec::new();
            } else {
                current.bytes.extend_from_slice(line);
            }
        }
        if let Some(bad) = self.preamble.take() {
            let source = format!("{}:{}", self.name, bad);
            return Some(Unit::bad(source, None, "no `From ` line: not an mbox"));
        }
        let done = self.current.take()?;
        Some(self.finish(done))
    }
}
