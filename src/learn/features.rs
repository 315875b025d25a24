//! Feature values exactly as the engine computes evidence.
//!
//! A rule's evidence is `weight × field factor × breadth` (× `1 + ln n` for `n` occurrences
//! with `frequency = "log"`, see [`crate::engine`]). Running every
//! rule at weight 1 over a message therefore yields the value each weight multiplies: the
//! features of a linear model whose coefficients are rule weights. Using the engine itself for
//! this, instead of re-implementing matching, keeps field factors, quoted-history splitting,
//! language restrictions and vetoes identical between what is fitted and what will run.

use std::collections::HashMap;
use std::path::PathBuf;

use rayon::prelude::*;

use super::LearnError;
use crate::engine::Engine;
use crate::message::Message;
use crate::rules::condition::any::Any;
use crate::rules::{
    Calibration, Condition, FieldSet, Frequency, Location, Negated, Queue, Rule, RuleSet, Term,
};

/// One document's features: `(feature, value)`, sorted by feature.
pub(crate) type Row = Vec<(u32, f32)>;

/// The features of every message: first one per rule of `base` (in rule order), then one per
/// term of `terms` (`(language, folded term)`; a language restricts the term as a rule's
/// `languages` does).
pub(crate) fn extract(
    messages: &[&Message],
    base: Option<&RuleSet>,
    queues: &[String],
    terms: &[(Option<String>, String)],
) -> Result<Vec<Row>, LearnError> {
    let mut rules: Vec<Rule> = base
        .map(|b| {
            b.rules
                .iter()
                .map(|r| Rule {
                    weight: 1.0,
                    ..r.clone()
                })
                .collect()
        })
        .unwrap_or_default();
    for (i, (language, term)) in terms.iter().enumerate() {
        rules.push(term_rule(format!("learn.probe.{i}"), 0, 1.0, language, term)?);
    }
    let probe = RuleSet {
        name: "learn-probe".into(),
        fallback: 0,
        queues: queues
            .iter()
            .map(|id| Queue {
                id: id.clone(),
                destination: String::new(),
                description: String::new(),
                threshold: 1.0,
            })
            .collect(),
        rules,
        signals: Vec::new(),
        cues: Vec::new(),
        examples: Vec::new(),
        calibration: Calibration {
            temperature: 1.0,
            model: None,
        },
        version: String::new(),
        source: PathBuf::from("learn"),
    };
    let engine = Engine::new(probe).map_err(|e| LearnError::Compile(e.to_string()))?;
    Ok(messages
        .par_iter()
        .map(|m| {
            let (_, fired) = engine.classify_detailed("", m);
            let mut row: Row = fired.iter().map(|f| (f.rule as u32, f.score as f32)).collect();
            row.sort_unstable_by_key(|&(f, _)| f);
            row
        })
        .collect())
}

/// A rule with one word or phrase, reading the text fields and counting its occurrences
/// (`frequency = "log"`): the shape of every learned rule.
pub(crate) fn term_rule(
    id: String,
    queue: usize,
    weight: f64,
    language: &Option<String>,
    term: &str,
) -> Result<Rule, LearnError> {
    let parsed = Term::parse(term).map_err(|e| LearnError::Term(term.to_string(), e))?;
    Ok(Rule {
        id,
        queue,
        weight,
        fields: FieldSet::text(),
        languages: language.iter().cloned().collect(),
        conditions: vec![Condition::Any(Any { terms: vec![parsed] })],
        negated: Negated::Ignore,
        frequency: Frequency::Log,
        location: Location {
            file: "learn".into(),
            line: 0,
            column: 0,
        },
    })
}

/// The rules of `ruleset` shaped like a [`term_rule`], by `(languages, word)`: a candidate
/// term with the same key has the same feature values as those rules (up to its counting).
pub(crate) fn term_rules(ruleset: &RuleSet) -> HashMap<(Vec<String>, String), Vec<usize>> {
    let mut out: HashMap<(Vec<String>, String), Vec<usize>> = HashMap::new();
    for (i, r) in ruleset.rules.iter().enumerate() {
        // Whether it counts occurrences or not, it is the same evidence for a reader: a second
        // rule with the same word would only split the weight.
        let shaped = r.conditions.len() == 1 && r.fields == FieldSet::text();
        if let (true, [Term::Word(word)]) = (shaped, r.terms("any")) {
            out.entry((r.languages.clone(), word.clone()))
                .or_default()
                .push(i);
        }
    }
    out
}
