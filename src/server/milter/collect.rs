//! What the milter keeps of the message in flight: the raw message rebuilt from the MTA's
//! header and body events (at most `max_message_bytes` of it), the inbound `X-Triage-*` headers
//! to remove, and the envelope recipients.
//!
//! Memory per connection is bounded: the rebuilt message by the limit, the recipients by
//! [`MAX_RECIPIENTS`], the `X-Triage-*` bookkeeping by [`MAX_FORGED_NAMES`] distinct names (a
//! count each).

use super::edits::is_triage_header;

/// Envelope recipients kept per message (Postfix's default `smtpd_recipient_limit`). Only
/// routing needs them.
pub const MAX_RECIPIENTS: usize = 1000;

/// Distinct `X-Triage-*` header names tracked per message; each is a name and a count, however
/// often it occurs. Legitimate mail has none.
pub const MAX_FORGED_NAMES: usize = 64;

/// The message in flight.
#[derive(Debug)]
pub struct Collected {
    limit: usize,
    raw: Vec<u8>,
    /// Bytes of the message seen, kept or not.
    seen: u64,
    /// The header block has ended (the blank line is in `raw`).
    headers_done: bool,
    /// Bytes were dropped at the limit.
    truncated: bool,
    /// Inbound `X-Triage-*` headers: the name as received and how many times it occurred
    /// (names compared without regard to case, as the MTA does).
    forged: Vec<(Vec<u8>, u32)>,
    /// Forged names beyond [`MAX_FORGED_NAMES`] that could not be tracked.
    forged_untracked: u32,
    recipients: Vec<String>,
}

impl Collected {
    /// An empty message that keeps at most `limit` bytes.
    pub fn new(limit: usize) -> Collected {
        Collected {
            limit,
            raw: Vec::new(),
            seen: 0,
            headers_done: false,
            truncated: false,
            forged: Vec::new(),
            forged_untracked: 0,
            recipients: Vec::new(),
        }
    }

    /// An envelope recipient, as the MTA sent it (usually `<local@domain>`).
    pub fn recipient(&mut self, rcpt: &str) {
        if self.recipients.len() < MAX_RECIPIENTS {
            self.recipients.push(rcpt.to_string());
        }
    }

    /// One header, in the order received. `X-Triage-*` headers are also recorded for removal;
    /// they stay in the message that is classified, as they do for `triage classify` on the
    /// same file, so both give the same verdict.
    ///
    /// Bytes are kept as the MTA sent them (8-bit header text included), so the message
    /// classified is the message received.
    pub fn header(&mut self, name: &[u8], value: &[u8]) {
        if is_triage_header(name) {
            let tracked = self.forged.len();
            match self.forged.iter_mut().find(|(n, _)| n.eq_ignore_ascii_case(name)) {
                Some((_, count)) => *count = count.saturating_add(1),
                None if tracked < MAX_FORGED_NAMES => self.forged.push((name.to_vec(), 1)),
                None => self.forged_untracked = self.forged_untracked.saturating_add(1),
            }
        }
        self.push(name);
        self.push(b": ");
        self.push(value);
        self.push(b"\r\n");
    }

    /// The end of the header block.
    pub fn end_of_headers(&mut self) {
        if !self.headers_done {
            self.headers_done = true;
            self.push(b"\r\n");
        }
    }

    /// A chunk of the body. Returns whether more body is still wanted: until a byte beyond
    /// the limit was seen (only then is the message known to be truncated).
    pub fn body(&mut self, chunk: &[u8]) -> bool {
        // An MTA that skipped end-of-headers (protocol flag) still gets a well-formed message.
        self.end_of_headers();
        self.push(chunk);
        !self.truncated
    }

    fn push(&mut self, bytes: &[u8]) {
        self.seen = self.seen.saturating_add(bytes.len() as u64);
        let room = self.limit.saturating_sub(self.raw.len());
        if bytes.len() > room {
            self.truncated = true;
        }
        self.raw.extend_from_slice(&bytes[..bytes.len().min(room)]);
    }

    /// The message as rebuilt, at most the limit.
    pub fn raw(&self) -> &[u8] {
        &self.raw
    }

    /// Takes the rebuilt message out (for classification off this task); the rest of the
    /// record stays.
    pub fn take_raw(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.raw)
    }

    /// Bytes of the message seen so far, including what was not kept.
    pub fn seen(&self) -> u64 {
        self.seen
    }

    /// Part of the message was not kept.
    pub fn is_truncated(&self) -> bool {
        self.truncated
    }

    /// The limit in bytes.
    pub fn limit(&self) -> usize {
        self.limit
    }

    /// Inbound `X-Triage-*` headers: name as received, occurrences.
    pub fn forged(&self) -> &[(Vec<u8>, u32)] {
        &self.forged
    }

    /// `X-Triage-*` headers with names beyond the tracked ones (they stay in the message).
    pub fn forged_untracked(&self) -> u32 {
        self.forged_untracked
    }

    /// Envelope recipients as received.
    pub fn recipients(&self) -> &[String] {
        &self.recipients
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_and_body_rebuild_the_message() {
        let mut c = Collected::new(1024);
        c.header(b"Subject", b"Rechnung");
        c.header(b"From", b"a@b.de");
        c.end_of_headers();
        assert!(c.body(b"Hallo\r\n"));
        assert_eq!(c.raw(), b"Subject: Rechnung\r\nFrom: a@b.de\r\n\r\nHallo\r\n");
        assert!(!c.is_truncated());
    }

    #[test]
    fn triage_headers_are_counted_by_name() {
        let mut c = Collected::new(1024);
        c.header(b"X-Triage-Queue", b"legal");
        c.header(b"Subject", b"x");
        c.header(b"x-triage-queue", b"legal");
        c.header(b"X-TRIAGE-Destination", b"evil@example.com");
        c.header(b"X-Triaged", b"not ours");
        assert_eq!(
            c.forged(),
            [
                (b"X-Triage-Queue".to_vec(), 2),
                (b"X-TRIAGE-Destination".to_vec(), 1)
            ]
        );
        assert!(c.raw().starts_with(b"X-Triage-Queue: legal\r\nSubject: x\r\n"));
    }

    #[test]
    fn the_message_is_cut_at_the_limit_and_says_so() {
        let mut c = Collected::new(40);
        c.header(b"Subject", b"x");
        c.end_of_headers();
        assert!(c.body(&[b'a'; 20]));
        assert!(!c.is_truncated());
        assert!(!c.body(&[b'b'; 20]));
        assert_eq!(c.raw().len(), 40);
        assert_eq!(c.seen(), 54);
        assert!(c.is_truncated());
    }

    #[test]
    fn exactly_the_limit_is_not_truncated() {
        let mut c = Collected::new(16);
        c.end_of_headers();
        assert!(c.body(&[b'a'; 14]), "more may follow");
        assert!(!c.is_truncated());
        assert!(!c.body(b"a"));
        assert!(c.is_truncated());
    }

    #[test]
    fn bookkeeping_is_bounded() {
        let mut c = Collected::new(16);
        for i in 0..(MAX_FORGED_NAMES + 10) {
            c.header(format!("X-Triage-{i}").as_bytes(), b"x");
        }
        assert_eq!(c.forged().len(), MAX_FORGED_NAMES);
        assert_eq!(c.forged_untracked(), 10);
        for i in 0..(MAX_RECIPIENTS + 5) {
            c.recipient(&format!("<r{i}@example.com>"));
        }
        assert_eq!(c.recipients().len(), MAX_RECIPIENTS);
    }
}
