//! Labelled history → documents: messages built exactly as replay builds them, labels as queue
//! ids, and the words and two-word phrases each document contains.

use std::collections::BTreeMap;

use rayon::prelude::*;

use crate::mail::Limits;
use crate::message::Message;
use crate::replay::run::message_of;
use crate::replay::source::{Reader, Unit};
use crate::text::fold;

/// Tokens shorter than this are too ambiguous to make rules of ("a", "x").
const MIN_TOKEN_CHARS: usize = 2;
/// Tokens longer than this are ids, hashes or glued words, not vocabulary.
const MAX_TOKEN_CHARS: usize = 30;

/// One labelled message.
#[derive(Debug, Clone)]
pub struct Document {
    /// The queue id the label names (see [`crate::rules::queue_id`]).
    pub label: String,
    /// The message, as replay would classify it.
    pub message: Message,
}

/// Labelled history, in input order (the order decides the folds).
#[derive(Debug, Clone, Default)]
pub struct Corpus {
    /// The labelled documents.
    pub documents: Vec<Document>,
    /// Each queue id with the labels, as written in the input, that map to it.
    pub labels: BTreeMap<String, Vec<String>>,
    /// Records read without a label (not used).
    pub unlabelled: u64,
    /// Records that could not be read or parsed (not used).
    pub bad: u64,
}

impl Corpus {
    /// Reads every record of `reader`, decoding and parsing in parallel.
    ///
    /// Reading stays sequential (it is cheap); decoding rows and splitting quoted history and
    /// signatures is what costs, so that part runs on all cores.
    pub fn read(reader: Reader, limits: &Limits) -> Corpus {
        let units: Vec<Unit> = reader.collect();
        let parsed: Vec<Option<(String, Message)>> = units
            .into_par_iter()
            .map(|unit| {
                let record = unit.decode().ok()?;
                let label = record.label.unwrap_or_default();
                let message = message_of(&record.payload, record.hint.as_deref(), limits).ok()?;
                Some((label, message))
            })
            .collect();
        let mut corpus = Corpus::default();
        for item in parsed {
            match item {
                None => corpus.bad += 1,
                Some((label, _)) if label.trim().is_empty() => corpus.unlabelled += 1,
                Some((label, message)) => corpus.push(&label, message),
            }
        }
        corpus
    }

    /// Adds one document; `label` is mapped to a queue id.
    pub fn push(&mut self, label: &str, message: Message) {
        let id = crate::rules::queue_id(label.trim());
        let originals = self.labels.entry(id.clone()).or_default();
        if !originals.iter().any(|l| l == label.trim()) {
            originals.push(label.trim().to_string());
        }
        self.documents.push(Document { label: id, message });
    }
}

/// The language a document's terms are counted under: exactly the one the engine uses to decide
/// which `languages` a rule applies to (the caller's hint, else detection).
pub(crate) fn language_of(message: &Message) -> Option<String> {
    crate::engine::language_of(message)
}

/// The distinct words and two-word phrases of a message's text fields, folded.
///
/// Words are runs of letters and digits, exactly what a rule term matches on word
/// boundaries; a phrase is two words separated by one space (folding collapses whitespace),
/// which is what a phrase term matches. Pure numbers are left out: they are ticket numbers
/// and dates far more often than vocabulary.
pub(crate) fn terms_of(message: &Message) -> Vec<String> {
    let mut terms = Vec::new();
    for field in [
        &message.subject,
        &message.body,
        &message.quoted,
        &message.signature,
    ] {
        let folded = fold(field).text;
        let mut previous: Option<(usize, usize)> = None;
        let mut start = None;
        let bytes = folded.as_bytes();
        let mut tokens = Vec::new();
        for (i, c) in folded.char_indices() {
            match (c.is_alphanumeric(), start) {
                (true, None) => start = Some(i),
                (false, Some(s)) => {
                    tokens.push((s, i));
                    start = None;
                }
                _ => {}
            }
        }
        if let Some(s) = start {
            tokens.push((s, folded.len()));
        }
        for (s, e) in tokens {
            let word = &folded[s..e];
            let chars = word.chars().count();
            let usable = (MIN_TOKEN_CHARS..=MAX_TOKEN_CHARS).contains(&chars)
                && !word.chars().all(|c| c.is_ascii_digit());
            if !usable {
                previous = None;
                continue;
            }
            terms.push(word.to_string());
            if let Some((ps, pe)) = previous
                && pe + 1 == s
                && bytes[pe] == b' '
            {
                terms.push(folded[ps..e].to_string());
            }
            previous = Some((s, e));
        }
    }
    terms.sort_unstable();
    terms.dedup();
    terms
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(subject: &str, body: &str) -> Message {
        Message {
            subject: subject.into(),
            body: body.into(),
            ..Message::default()
        }
    }

    #[test]
    fn words_and_adjacent_pairs_are_terms() {
        let terms = terms_of(&message("Password Reset", "please reset my password"));
        for t in ["password", "reset", "password reset", "reset my", "my password"] {
            assert!(terms.contains(&t.to_string()), "{t} in {terms:?}");
        }
    }

    #[test]
    fn punctuation_breaks_phrases_and_numbers_are_not_terms() {
        let terms = terms_of(&message("", "laptop, broken 12345 screen"));
        assert!(!terms.contains(&"laptop broken".to_string()));
        assert!(!terms.contains(&"12345".to_string()));
        assert!(!terms.contains(&"broken 12345".to_string()));
        assert!(!terms.contains(&"broken screen".to_string()));
        assert!(terms.contains(&"laptop".to_string()));
    }

    #[test]
    fn accents_and_case_are_folded() {
        let terms = terms_of(&message("Facturación", ""));
        assert_eq!(terms, vec!["facturacion".to_string()]);
    }
}
