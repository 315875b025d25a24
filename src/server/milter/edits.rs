//! What the milter changes in a message at its end: the header names (public contract), and the
//! plan of edits from an outcome. Pure: no protocol, no I/O.
//!
//! The plan, in order:
//! 1. every inbound `X-Triage-*` header is deleted (last occurrence first, so the indexes of the
//!    ones still to delete do not move), so a sender cannot forge a verdict or a route;
//! 2. with a verdict: [`QUEUE`], [`CONFIDENCE`], [`DESTINATION`], [`NEEDS_REVIEW`] and
//!    [`RULESET`], and [`NOTE`] when only the first `max_message_bytes` were classified;
//!    without one (timeout, overload, internal error): [`ERROR`] alone;
//! 3. in routing mode, for a confident verdict (not `needs_review`) of a queue with a
//!    destination, on a message classified whole: each recipient that addressed an intake
//!    mailbox is deleted, the destination is added once, and the original recipient is kept in
//!    [`ORIGINAL_RECIPIENT`].
//!
//! Nothing here rejects, discards or tempfails: the message always goes on.

use std::fmt;
use std::time::Duration;

use crate::verdict::Verdict;

use super::collect::Collected;

/// The queue that owns the message.
pub const QUEUE: &str = "X-Triage-Queue";
/// The verdict's confidence, as `triage classify` prints it (`0.8731`, `1.0`).
pub const CONFIDENCE: &str = "X-Triage-Confidence";
/// The queue's address; empty when the queue has none.
pub const DESTINATION: &str = "X-Triage-Destination";
/// `true` when the confidence is below the queue's auto-route threshold, else `false`.
pub const NEEDS_REVIEW: &str = "X-Triage-Needs-Review";
/// The version (content hash) of the ruleset that decided.
pub const RULESET: &str = "X-Triage-Ruleset";
/// Said when the verdict was made on the first `max_message_bytes` of a larger message.
pub const NOTE: &str = "X-Triage-Note";
/// Said instead of a verdict when there is none: why the message passed unclassified.
pub const ERROR: &str = "X-Triage-Error";
/// In routing mode, the intake recipient that was replaced by the queue's destination.
pub const ORIGINAL_RECIPIENT: &str = "X-Triage-Original-Recipient";

/// The prefix of every header triage writes; inbound headers with it are removed.
pub const PREFIX: &str = "X-Triage-";

/// True for a header name triage owns (`X-Triage-*`, in any case).
pub fn is_triage_header(name: &[u8]) -> bool {
    name.len() >= PREFIX.len() && name[..PREFIX.len()].eq_ignore_ascii_case(PREFIX.as_bytes())
}

/// How classification of one message ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// A verdict, on the whole message or on its first `max_message_bytes`.
    Classified(Verdict),
    /// No verdict.
    NotClassified(Reason),
}

/// Why a message passed without a verdict.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reason {
    /// Classification took longer than the request timeout.
    Timeout(Duration),
    /// Every concurrency permit was taken.
    Overloaded,
    /// A bug in triage (reported in the log).
    Internal,
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reason::Timeout(limit) => write!(f, "timeout: not classified within {} ms", limit.as_millis()),
            Reason::Overloaded => f.write_str("overloaded: triage was at its concurrency limit"),
            Reason::Internal => f.write_str("internal error: see triage's log"),
        }
    }
}

/// Routing mode: which recipients are the intake mailbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    intake: Vec<String>,
}

impl Route {
    /// Routing for recipients addressed to any of `intake` (addresses, compared without regard
    /// to case and angle brackets).
    pub fn new<S: AsRef<str>>(intake: impl IntoIterator<Item = S>) -> Route {
        Route {
            intake: intake
                .into_iter()
                .map(|a| bare(a.as_ref()).to_ascii_lowercase())
                .filter(|a| !a.is_empty())
                .collect(),
        }
    }

    /// The intake addresses.
    pub fn intake(&self) -> &[String] {
        &self.intake
    }

    fn is_intake(&self, rcpt: &str) -> bool {
        let rcpt = bare(rcpt);
        self.intake.iter().any(|a| a.eq_ignore_ascii_case(rcpt))
    }
}

/// An address without its angle brackets and surrounding space.
pub fn bare(addr: &str) -> &str {
    let a = addr.trim();
    a.strip_prefix('<')
        .and_then(|a| a.strip_suffix('>'))
        .unwrap_or(a)
        .trim()
}

/// One change to the message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Edit {
    /// Delete the `index`th (from 1) header called `name`.
    DeleteHeader {
        /// The name as received.
        name: Vec<u8>,
        /// Its occurrence among headers of that name.
        index: u32,
    },
    /// Append a header.
    AddHeader {
        /// The name.
        name: &'static str,
        /// The value.
        value: String,
    },
    /// Remove an envelope recipient (as the MTA sent it).
    DeleteRecipient(String),
    /// Add an envelope recipient.
    AddRecipient(String),
}

/// The edits for a message that ended with `outcome`.
pub fn plan(message: &Collected, outcome: &Outcome, route: Option<&Route>) -> Vec<Edit> {
    let mut edits = Vec::new();
    for (name, count) in message.forged() {
        for index in (1..=*count).rev() {
            edits.push(Edit::DeleteHeader {
                name: name.clone(),
                index,
            });
        }
    }
    let add = |edits: &mut Vec<Edit>, name, value: &str| {
        edits.push(Edit::AddHeader {
            name,
            value: header_value(value),
        })
    };
    let verdict = match outcome {
        Outcome::Classified(verdict) => verdict,
        Outcome::NotClassified(reason) => {
            add(&mut edits, ERROR, &reason.to_string());
            return edits;
        }
    };
    add(&mut edits, QUEUE, &verdict.queue);
    add(&mut edits, CONFIDENCE, &confidence(verdict.confidence));
    add(&mut edits, DESTINATION, &verdict.destination);
    add(
        &mut edits,
        NEEDS_REVIEW,
        if verdict.needs_review { "true" } else { "false" },
    );
    add(&mut edits, RULESET, &verdict.ruleset_version);
    let truncated = message.is_truncated();
    if truncated {
        add(
            &mut edits,
            NOTE,
            &format!(
                "classified the first {} bytes of a larger message; not routed",
                message.limit()
            ),
        );
    }
    let destination = bare(&verdict.destination);
    if let Some(route) = route
        && !truncated
        && !verdict.needs_review
        && !destination.is_empty()
    {
        let intake: Vec<&String> = message
            .recipients()
            .iter()
            .filter(|r| route.is_intake(r))
            .collect();
        if !intake.is_empty() {
            for rcpt in &intake {
                edits.push(Edit::DeleteRecipient((*rcpt).clone()));
                add(&mut edits, ORIGINAL_RECIPIENT, bare(rcpt));
            }
            let already = message
                .recipients()
                .iter()
                .any(|r| bare(r).eq_ignore_ascii_case(destination));
            if !already {
                edits.push(Edit::AddRecipient(format!("<{destination}>")));
            }
        }
    }
    edits
}

/// A confidence exactly as `triage classify` prints it in JSON.
fn confidence(c: f64) -> String {
    serde_json::Number::from_f64(c).map_or_else(|| c.to_string(), |n| n.to_string())
}

/// A value safe on one header line: control characters (CR, LF, NUL...) become spaces.
fn header_value(value: &str) -> String {
    value
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn verdict(queue: &str, destination: &str, confidence: f64, needs_review: bool) -> Verdict {
        Verdict {
            id: "q".into(),
            queue: queue.into(),
            destination: destination.into(),
            confidence,
            needs_review,
            ranking: Vec::new(),
            hits: Vec::new(),
            language: String::new(),
            ruleset_version: "abc123".into(),
            notes: Vec::new(),
        }
    }

    fn message(recipients: &[&str]) -> Collected {
        let mut m = Collected::new(1 << 20);
        for r in recipients {
            m.recipient(r);
        }
        m.header(b"Subject", b"Rechnung");
        m.end_of_headers();
        m.body(b"Hallo");
        m
    }

    fn added(edits: &[Edit]) -> Vec<(&str, &str)> {
        edits
            .iter()
            .filter_map(|e| match e {
                Edit::AddHeader { name, value } => Some((*name, value.as_str())),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn a_verdict_adds_the_five_headers() {
        let v = verdict("contract", "contract@example.com", 0.8731, false);
        let edits = plan(&message(&[]), &Outcome::Classified(v), None);
        assert_eq!(
            added(&edits),
            [
                (QUEUE, "contract"),
                (CONFIDENCE, "0.8731"),
                (DESTINATION, "contract@example.com"),
                (NEEDS_REVIEW, "false"),
                (RULESET, "abc123"),
            ]
        );
        assert_eq!(edits.len(), 5);
    }

    #[test]
    fn confidence_is_printed_as_classify_prints_it() {
        assert_eq!(confidence(1.0), "1.0");
        assert_eq!(confidence(0.0), "0.0");
        assert_eq!(confidence(0.5), "0.5");
        assert_eq!(confidence(0.1234), "0.1234");
    }

    #[test]
    fn forged_headers_are_deleted_last_first_before_anything_is_added() {
        let mut m = Collected::new(1024);
        m.header(b"X-Triage-Queue", b"legal");
        m.header(b"x-triage-queue", b"legal");
        m.header(b"X-Triage-Destination", b"evil@example.com");
        let edits = plan(&m, &Outcome::NotClassified(Reason::Overloaded), None);
        let del = |name: &str, index| Edit::DeleteHeader {
            name: name.as_bytes().to_vec(),
            index,
        };
        assert_eq!(
            edits[..3],
            [
                del("X-Triage-Queue", 2),
                del("X-Triage-Queue", 1),
                del("X-Triage-Destination", 1)
            ]
        );
        assert_eq!(
            added(&edits),
            [(ERROR, "overloaded: triage was at its concurrency limit")]
        );
    }

    #[test]
    fn no_verdict_adds_only_the_reason() {
        let edits = plan(
            &message(&["<support@example.com>"]),
            &Outcome::NotClassified(Reason::Timeout(Duration::from_secs(30))),
            Some(&Route::new(["support@example.com"])),
        );
        assert_eq!(
            edits,
            [Edit::AddHeader {
                name: ERROR,
                value: "timeout: not classified within 30000 ms".into()
            }]
        );
    }

    #[test]
    fn a_truncated_message_is_tagged_with_a_note_and_never_routed() {
        let mut m = Collected::new(32);
        m.recipient("<support@example.com>");
        m.header(b"Subject", b"Rechnung");
        m.end_of_headers();
        m.body(&[b'x'; 100]);
        let v = verdict("contract", "contract@example.com", 0.99, false);
        let edits = plan(
            &m,
            &Outcome::Classified(v),
            Some(&Route::new(["support@example.com"])),
        );
        assert!(added(&edits).contains(&(
            NOTE,
            "classified the first 32 bytes of a larger message; not routed"
        )));
        assert!(
            !edits
                .iter()
                .any(|e| matches!(e, Edit::DeleteRecipient(_) | Edit::AddRecipient(_)))
        );
    }

    #[test]
    fn routing_replaces_only_the_intake_recipient_and_keeps_it_in_a_header() {
        let m = message(&["<Support@Example.com>", "<boss@example.com>"]);
        let v = verdict("contract", "contract@example.com", 0.99, false);
        let edits = plan(
            &m,
            &Outcome::Classified(v),
            Some(&Route::new(["support@example.com"])),
        );
        assert!(edits.contains(&Edit::DeleteRecipient("<Support@Example.com>".into())));
        assert!(edits.contains(&Edit::AddRecipient("<contract@example.com>".into())));
        assert!(added(&edits).contains(&(ORIGINAL_RECIPIENT, "Support@Example.com")));
        assert!(!edits.contains(&Edit::DeleteRecipient("<boss@example.com>".into())));
    }

    #[test]
    fn routing_does_not_add_a_destination_that_is_already_a_recipient() {
        let m = message(&[
            "<support@example.com>",
            "<help@example.com>",
            "<contract@example.com>",
        ]);
        let v = verdict("contract", "contract@example.com", 0.99, false);
        let route = Route::new(["support@example.com", "<help@example.com>"]);
        let edits = plan(&m, &Outcome::Classified(v), Some(&route));
        let deleted = edits
            .iter()
            .filter(|e| matches!(e, Edit::DeleteRecipient(_)))
            .count();
        assert_eq!(deleted, 2);
        assert!(!edits.iter().any(|e| matches!(e, Edit::AddRecipient(_))));
    }

    #[test]
    fn unsure_verdicts_and_queues_without_a_mailbox_are_not_routed() {
        let m = message(&["<support@example.com>"]);
        let route = Route::new(["support@example.com"]);
        for v in [
            verdict("contract", "contract@example.com", 0.4, true),
            verdict("sales", "", 0.99, false),
        ] {
            let edits = plan(&m, &Outcome::Classified(v), Some(&route));
            assert!(
                !edits
                    .iter()
                    .any(|e| matches!(e, Edit::DeleteRecipient(_) | Edit::AddRecipient(_)))
            );
            assert_eq!(edits.len(), 5);
        }
    }

    #[test]
    fn header_values_stay_on_one_line() {
        assert_eq!(header_value("a\r\nb\0c"), "a  b c");
    }

    #[test]
    fn triage_headers_are_recognised_in_any_case() {
        assert!(is_triage_header(b"X-Triage-Queue"));
        assert!(is_triage_header(b"x-triage-anything"));
        assert!(is_triage_header(b"X-TRIAGE-"));
        assert!(!is_triage_header(b"X-Triaged"));
        assert!(!is_triage_header(b"X-Tri"));
        assert!(!is_triage_header(b"Subject"));
    }
}
