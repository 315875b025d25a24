//! The answer for one message: queue, confidence, ranking and evidence.

use serde::Serialize;

/// Which queue owns a message, how sure triage is, and why. Field names are the public contract
/// (DESIGN.md): JSON output and the gRPC `ClassifyResponse` use the same names.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Verdict {
    /// The caller's id, echoed.
    pub id: String,
    /// The chosen queue: always one of the ruleset's queues.
    pub queue: String,
    /// The queue's address; empty where it has none.
    pub destination: String,
    /// Estimated probability that `queue` is right, in [0, 1].
    pub confidence: f64,
    /// True when `confidence` is below the queue's auto-route threshold.
    pub needs_review: bool,
    /// Every queue with evidence, best first.
    pub ranking: Vec<Rank>,
    /// The evidence: one entry per rule that fired.
    pub hits: Vec<Hit>,
    /// Detected language (ISO 639-1), or empty when unknown.
    pub language: String,
    /// The ruleset that decided.
    pub ruleset_version: String,
    /// What was done to the input on the way (truncation, decoding fallbacks); usually empty.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

/// One queue's standing.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Rank {
    /// The queue.
    pub queue: String,
    /// Summed evidence.
    pub score: f64,
    /// Probability that this queue is right.
    pub confidence: f64,
}

/// One piece of evidence: a rule that fired, and the text that made it fire.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Hit {
    /// The rule's id.
    pub rule: String,
    /// The queue the rule speaks for.
    pub queue: String,
    /// Where the text was found (`subject`, `body`, `quoted`, `header:auto-submitted`, ...).
    pub field: String,
    /// The text as written in the message.
    pub matched: String,
    /// The evidence the rule added to its queue (negative: against it).
    pub weight: f64,
}
