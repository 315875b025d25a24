//! Rule files → a checked [`RuleSet`], with `file:line:column` diagnostics.
//!
//! - [`spec`]: the files as written (serde, with spans).
//! - [`load`]: reading a directory (or the built-in default), validation, the version hash.
//! - [`term`]: match terms. [`field`]: the message fields rules read.
//! - [`condition`]: the operators of rule conditions, one file each.
//! - [`limits`]: what a ruleset may ask for (sizes of files, terms and compiled automata).
//!
//! The format is documented in `rules/README.md`.

pub mod condition;
pub mod field;
pub mod limits;
mod load;
mod spec;
pub mod term;

use std::fmt;
use std::path::PathBuf;

pub use condition::Condition;
pub use field::{Field, FieldSet};
pub use load::{LoadError, Problem, default_sources};
pub use term::{RegexTerm, Term};

use crate::message::Ticket;

/// A place in a rule file.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Location {
    /// The file, as named when loading.
    pub file: String,
    /// 1-based line.
    pub line: usize,
    /// 1-based column (in characters).
    pub column: usize,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // File names come from the directory: escaped, so they cannot forge log lines.
        write!(
            f,
            "{}:{}:{}",
            crate::text::printable(&self.file),
            self.line,
            self.column
        )
    }
}

/// A destination team.
#[derive(Debug, Clone, PartialEq)]
pub struct Queue {
    /// Stable id (`contract`).
    pub id: String,
    /// Mailbox of the team; empty where it has none.
    pub destination: String,
    /// What the queue owns.
    pub description: String,
    /// Confidence at or above which a verdict is routed without review.
    pub threshold: f64,
}

/// A checked rule. Terms are folded; queue is an index into [`RuleSet::queues`].
#[derive(Debug, Clone, PartialEq)]
pub struct Rule {
    /// Unique id.
    pub id: String,
    /// Index of the queue the rule's evidence goes to.
    pub queue: usize,
    /// Evidence added when the rule fires (negative: evidence against).
    pub weight: f64,
    /// The fields the rule reads.
    pub fields: FieldSet,
    /// Languages the rule applies to; empty for all.
    pub languages: Vec<String>,
    /// The conditions, every one of which must hold (see [`condition`]).
    pub conditions: Vec<Condition>,
    /// What a term found only in a negated or settled scope means for this rule.
    pub negated: Negated,
    /// Whether the evidence grows with the number of times its terms occur.
    pub frequency: Frequency,
    /// Where the rule is written.
    pub location: Location,
}

impl Rule {
    /// The terms of the rule's first condition with this key (`any`, `all`, `of`, `none`).
    pub fn terms(&self, key: &str) -> &[Term] {
        self.conditions
            .iter()
            .find(|c| c.key() == key)
            .map_or(&[], Condition::terms)
    }
}

/// How a rule counts its terms' occurrences (`frequency = ...` in a rule file).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Frequency {
    /// Found or not: a term said five times is the evidence of a term said once (the default).
    #[default]
    Once,
    /// Sublinear term frequency: the evidence is multiplied by `1 + ln n` for `n` occurrences
    /// of the rule's terms in the fields it reads (1 for one occurrence, 2.1 for three, 3.3
    /// for ten). The damping is the "sublinear tf scaling" of Manning, Raghavan and Schütze,
    /// *Introduction to Information Retrieval* (2008), §6.4.1, and scikit-learn's
    /// `sublinear_tf`: a ticket that names the printer six times is more about the printer
    /// than one that names it once, but not six times more.
    Log,
}

/// What a term found only in a negated or settled scope ("this is not a cancellation", "the
/// invoice is already paid") means for a rule.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Negated {
    /// It is not evidence (the default).
    #[default]
    Ignore,
    /// It is evidence against the rule's queue: the rule fires with its weight negated.
    Counter,
}

/// A named signal (the writer's role, automation…): evaluated like a rule, it adds no evidence
/// of its own; rules require or exclude it, and it may move evidence between queues.
#[derive(Debug, Clone, PartialEq)]
pub struct Signal {
    /// Unique id (shared namespace with rules).
    pub id: String,
    /// The fields it reads.
    pub fields: FieldSet,
    /// Languages it applies to; empty for all.
    pub languages: Vec<String>,
    /// Its conditions.
    pub conditions: Vec<Condition>,
    /// Evidence it moves when it fires, applied in file order after every rule is scored.
    pub moves: Vec<Move>,
    /// How the amounts moved to one queue add up.
    pub collect: Collect,
    /// Where it is written.
    pub location: Location,
}

/// How the amounts a signal moves to one queue add up (`collect` in the rule format).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Collect {
    /// Their sum (`"sum"`, the default); each move applies in file order.
    #[default]
    Sum,
    /// The largest of them (`"largest"`): every `from` queue still gives up its share of the
    /// scores before the signal moved anything, the rest is dropped. A partial share of every
    /// topic a message names, summed, can outweigh the topic it is about; the largest cannot.
    Largest,
}

/// `share` of the positive evidence of queue `from` moves to queue `to`, or is dropped when
/// there is no `to` (the evidence is discounted: the verdict gets less sure).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Move {
    /// Queue index the evidence leaves.
    pub from: usize,
    /// Queue index it goes to; `None` drops it.
    pub to: Option<usize>,
    /// Fraction in (0, 1].
    pub share: f64,
}

/// What a cue marks in the text it is found in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CueKind {
    /// The sentence asks or directs: it is the request ("could you", "bitte", "¿podrían").
    Request,
    /// A negated scope: "not a", "kein", "no es", "ce n'est pas".
    Negation,
    /// A settled scope: "already paid", "bereits erledigt", "ya resuelto".
    Settled,
    /// The new text turns to its real request here ("different thing though", "meine
    /// eigentliche Frage", "os escribo por otra cosa"): what stands before it is preamble.
    Shift,
    /// The writer marks the sentence as a side point ("nicht dringend", "no rush", "pour plus
    /// tard", "niente di grave"): its terms count less than the request's.
    Aside,
}

/// Which side of a negation or settled cue its scope lies on, up to the clause boundary.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// From the cue to the end of the clause ("not a cancellation").
    After,
    /// From the start of the clause to the cue ("the invoice is already paid").
    Before,
}

/// The longest scope window a cue may give, in words: longer than most clauses, so a larger
/// one would mean "the clause", which is what no window says.
pub const MAX_CUE_WINDOW: u8 = 20;

/// Words that mark the structure of a sentence (see `rules/README.md`, "Message structure").
#[derive(Debug, Clone, PartialEq)]
pub struct Cue {
    /// Unique id.
    pub id: String,
    /// What it marks.
    pub kind: CueKind,
    /// Where its scope lies (negation and settled cues).
    pub scope: Scope,
    /// The most words its scope spans beside the cue, after it or before it as `scope` says
    /// (negation and settled cues), when fewer than the clause holds: NegEx's window (Chapman et al., 2001, "A simple algorithm for
    /// identifying negated findings and diseases in discharge summaries", five words). `None`:
    /// the whole clause.
    pub window: Option<u8>,
    /// The cue words and phrases.
    pub terms: Vec<Term>,
    /// Where it is written.
    pub location: Location,
}

/// An example message with the queue it must (or must not) route to.
#[derive(Debug, Clone, PartialEq)]
pub struct Example {
    /// The message.
    pub ticket: Ticket,
    /// What is expected of it.
    pub expect: Expectation,
    /// Where the example is written.
    pub location: Location,
}

/// What an example expects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Expectation {
    /// Must route to this queue.
    Queue(String),
    /// Must not route to this queue.
    Not(String),
}

/// Maps engine scores to confidences (see the engine's `score` module).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Calibration {
    /// Scores are divided by this before the softmax.
    pub temperature: f64,
    /// The confidence model fitted on top of the softmax, when the ruleset has one.
    pub model: Option<crate::engine::score::ConfidenceModel>,
}

impl Default for Calibration {
    fn default() -> Self {
        Calibration {
            temperature: 1.5,
            model: None,
        }
    }
}

/// A loaded, validated ruleset: immutable once built.
#[derive(Debug, Clone, PartialEq)]
pub struct RuleSet {
    /// The ruleset's name.
    pub name: String,
    /// Index of the queue that gets messages without evidence.
    pub fallback: usize,
    /// The queues, in file order.
    pub queues: Vec<Queue>,
    /// The rules, in file order.
    pub rules: Vec<Rule>,
    /// The signals, in file order.
    pub signals: Vec<Signal>,
    /// The structure cues (request, negation, settled), in file order.
    pub cues: Vec<Cue>,
    /// The examples, in file order.
    pub examples: Vec<Example>,
    /// Score-to-confidence mapping.
    pub calibration: Calibration,
    /// `sha256:` and the first 16 hex digits of a hash over every file's name and bytes.
    pub version: String,
    /// Where the ruleset came from (a directory, or `built-in`).
    pub source: PathBuf,
}

impl RuleSet {
    /// The index of the queue with this id.
    pub fn queue_index(&self, id: &str) -> Option<usize> {
        self.queues.iter().position(|q| q.id == id)
    }
}

/// The queue id a label of labelled history names, so that history exported with display
/// names (`HR Support`) matches queue ids (`hr_support`).
///
/// A label that is already a valid queue id (`[a-z0-9_]+`) is returned unchanged; any other
/// label is folded (lower case, no accents) and every run of characters outside `[a-z0-9]`
/// becomes one `_`, trimmed at both ends. `triage learn` names the queues it creates this way
/// and `triage replay` compares labels to queues this way.
pub fn queue_id(label: &str) -> String {
    let valid = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit();
    if !label.is_empty() && label.chars().all(|c| valid(c) || c == '_') {
        return label.to_string();
    }
    let mut id = String::with_capacity(label.len());
    for c in crate::text::fold_term(label).chars() {
        if valid(c) {
            id.push(c);
        } else if !id.is_empty() && !id.ends_with('_') {
            id.push('_');
        }
    }
    while id.ends_with('_') {
        id.pop();
    }
    if id.is_empty() { "_".to_string() } else { id }
}

impl RuleSet {
    /// The ruleset the command line uses: `dir` when given; otherwise `rules/` in the working
    /// directory when it exists; otherwise the default ruleset compiled into the binary.
    pub fn resolve(dir: Option<&std::path::Path>) -> Result<RuleSet, LoadError> {
        match dir {
            Some(dir) => RuleSet::load(dir),
            None if std::path::Path::new("rules").is_dir() => RuleSet::load(std::path::Path::new("rules")),
            None => Ok(RuleSet::builtin()),
        }
    }
}
