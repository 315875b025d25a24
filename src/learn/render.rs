//! The suggestions as a rule file: statistics as comments, new rules as `[[rule]]` tables.
//!
//! With a ruleset to start from, the file holds only rules (and comments on the existing
//! ones), so the ruleset's directory plus this file loads as one ruleset. Without one, it is a
//! complete ruleset: `[ruleset]`, `[calibration]`, a `[[queue]]` per label, the rules and a few
//! examples.

use std::collections::HashMap;
use std::fmt::Write;

use super::{Learned, Suggestion};
use crate::rules::RuleSet;

/// Confidence at which a learned queue routes without review, until `triage calibrate
/// --target-precision` proposes better.
const DEFAULT_THRESHOLD: f64 = 0.9;
/// Queues named in an existing rule's hit list.
const HIT_QUEUES: usize = 4;

/// Writes `learned` as TOML. `base` is the ruleset it was learned for (`None`: a new ruleset,
/// named `name`); `header` lines (e.g. the command and inputs) open the file as comments.
pub fn render(learned: &Learned, base: Option<&RuleSet>, name: &str, header: &[String]) -> String {
    let mut out = String::new();
    for line in header {
        comment(&mut out, line);
    }
    summary(&mut out, learned, base);
    match base {
        None => new_ruleset(&mut out, learned, name),
        Some(rs) => existing_rules(&mut out, learned, rs),
    }
    rules(&mut out, learned, base);
    for (q, body, language) in &learned.examples {
        out.push_str("\n[[example]]\n");
        let _ = writeln!(out, "body = {}", quote(body));
        if let Some(l) = language {
            let _ = writeln!(out, "language = {}", quote(l));
        }
        let _ = writeln!(out, "queue = {}", quote(&learned.queues[*q].id));
    }
    out
}

fn summary(out: &mut String, l: &Learned, base: Option<&RuleSet>) {
    let v = &l.validation;
    comment(
        out,
        &format!("{} labelled records, {} queues.", l.records, l.queues.len()),
    );
    for (label, n) in &l.unknown_labels {
        comment(
            out,
            &format!("Label `{label}` names no queue of the ruleset: {n} records not used."),
        );
    }
    if !l.languages.is_empty() {
        comment(
            out,
            &format!("Terms counted per language: {}.", l.languages.join(", ")),
        );
    }
    comment(
        out,
        &format!(
            "Cross-validated accuracy ({} folds by record position hash): before {:.4} ({}), after {:.4}.",
            v.folds.len(),
            v.before,
            if base.is_some() {
                "the ruleset as it is"
            } else {
                "everything to the fallback queue"
            },
            v.after
        ),
    );
    for (i, f) in v.folds.iter().enumerate() {
        comment(
            out,
            &format!(
                "  fold {}: fitted on {}, tested on {}: before {:.4}, after {:.4}",
                i + 1,
                f.trained,
                f.tested,
                f.right_before as f64 / f.tested.max(1) as f64,
                f.right_after as f64 / f.tested.max(1) as f64
            ),
        );
    }
    comment(
        out,
        &format!(
            "Weights are log-odds times the temperature {}; the temperature that calibrates them \
             out of fold is {:.2}.",
            l.scale, l.temperature
        ),
    );
    comment(
        out,
        "Every rule below is a suggestion: delete what a person would not write.",
    );
}

fn new_ruleset(out: &mut String, l: &Learned, name: &str) {
    out.push_str("\n[ruleset]\n");
    let _ = writeln!(out, "name = {}", quote(name));
    let _ = writeln!(
        out,
        "fallback = {}   # the most frequent label",
        quote(&l.queues[l.fallback].id)
    );
    out.push_str("\n[calibration]\n");
    let _ = writeln!(out, "temperature = {:.2}", l.temperature);
    for q in &l.queues {
        let labels: Vec<String> = q.labels.iter().map(|s| one_line(s)).collect();
        let _ = write!(out, "\n[[queue]] # {} labelled records", q.records);
        if !labels.is_empty() {
            let _ = write!(out, " as {}", labels.join(", "));
        }
        out.push('\n');
        let _ = writeln!(out, "id = {}", quote(&q.id));
        let _ = writeln!(out, "description = {}", quote(&labels.join(", ")));
        let _ = writeln!(out, "threshold = {DEFAULT_THRESHOLD}");
    }
}

fn existing_rules(out: &mut String, l: &Learned, rs: &RuleSet) {
    out.push('\n');
    comment(
        out,
        "Existing rules: records fired on, by label; precision; the weight the fit suggests.",
    );
    for r in &l.existing {
        let rule = &rs.rules[r.rule];
        let fired: u64 = r.hits.iter().sum();
        let queue = &l.queues[rule.queue].id;
        let line = if fired == 0 {
            format!("{} ({queue}, weight {}): never fired.", rule.id, rule.weight)
        } else {
            let mut by: Vec<(usize, u64)> = r.hits.iter().copied().enumerate().filter(|h| h.1 > 0).collect();
            by.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
            let list: Vec<String> = by
                .iter()
                .take(HIT_QUEUES)
                .map(|(q, n)| format!("{} {n}", l.queues[*q].id))
                .collect();
            let more = if by.len() > HIT_QUEUES { ", ..." } else { "" };
            let advice = if r.suggested == 0.0 {
                "suggest removing it (the fit gives it no weight)".to_string()
            } else if (r.suggested - rule.weight).abs() < 0.01 {
                "weight is right".to_string()
            } else {
                format!("suggested weight {}", r.suggested)
            };
            format!(
                "{} ({queue}, weight {}): fired on {fired}: {}{more}; precision {:.2}; {advice}.",
                rule.id,
                rule.weight,
                list.join(", "),
                r.precision(rule.queue).unwrap_or(0.0)
            )
        };
        comment(out, &line);
    }
}

fn rules(out: &mut String, l: &Learned, base: Option<&RuleSet>) {
    // Continue any `learned.<queue>.<n>` numbering already in the ruleset, so ids stay unique.
    let mut next: HashMap<&str, usize> = HashMap::new();
    if let Some(rs) = base {
        for r in &rs.rules {
            if let Some((queue, n)) = r.id.strip_prefix("learned.").and_then(|s| s.rsplit_once('.'))
                && let Ok(n) = n.parse::<usize>()
            {
                let e = next.entry(queue).or_insert(0);
                *e = (*e).max(n);
            }
        }
    }
    let mut current = None;
    for s in &l.suggestions {
        let q = &l.queues[s.queue];
        if current != Some(s.queue) {
            current = Some(s.queue);
            let n = l.suggestions.iter().filter(|o| o.queue == s.queue).count();
            let _ = writeln!(out, "\n# --- {}: {n} learned rules ---", q.id);
        }
        let n = next.entry(q.id.as_str()).or_insert(0);
        *n += 1;
        let _ = writeln!(out, "\n[[rule]] # {}", stats(s, &q.id));
        let _ = writeln!(out, "id = \"learned.{}.{}\"", q.id, n);
        let _ = writeln!(out, "queue = {}", quote(&q.id));
        let _ = writeln!(out, "weight = {:.2}", s.weight);
        if let Some(language) = &s.language {
            let _ = writeln!(out, "languages = [{}]", quote(language));
        }
        let _ = writeln!(out, "any = [{}]", quote(&s.term));
        // The features were fitted with occurrences counted (see `features::term_rule`).
        out.push_str("frequency = \"log\"\n");
    }
}

/// "in 312 of 332 records (0.94) hr_support; z 23.1"
fn stats(s: &Suggestion, queue: &str) -> String {
    let precision = s.support as f64 / s.documents.max(1) as f64;
    let mut line = format!(
        "{}: {queue} {} of {} records ({precision:.2})",
        quote(&s.term),
        s.support,
        s.documents
    );
    if let Some(z) = s.z {
        let _ = write!(line, ", log-odds z {z:.1}");
    }
    if s.weight < 0.0 {
        line.push_str(", evidence against");
    }
    line
}

fn comment(out: &mut String, text: &str) {
    let _ = writeln!(out, "# {}", one_line(text));
}

fn one_line(s: &str) -> String {
    s.replace(['\r', '\n'], " ")
}

/// A TOML basic string.
fn quote(s: &str) -> String {
    toml::Value::String(s.to_string()).to_string()
}
