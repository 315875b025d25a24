//! One record's result: the output line, and the compact facts evaluation needs.

use serde::Serialize;

use crate::verdict::Verdict;

/// What became of one input record: a verdict or an error, never nothing.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    /// 0-based position over all inputs.
    pub position: u64,
    /// The record's id (or its location when it has none).
    pub id: String,
    /// Where it is in the input.
    pub source: String,
    /// The expected queue, when the input says.
    pub label: Option<String>,
    /// The language the input claims, when it says.
    pub language: Option<String>,
    /// The decision under `--rules` (or the server), or why there is none.
    pub result: Result<Decision, String>,
    /// The decision under `--compare-rules`, when comparing and the record was classified.
    pub candidate: Option<Decision>,
    /// The output record, one compact JSON object without the newline.
    pub line: String,
}

/// The parts of a verdict that evaluation reads; the verdict itself is not kept, so a chunk
/// of outcomes stays small.
#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    /// The chosen queue.
    pub queue: String,
    /// Its confidence.
    pub confidence: f64,
    /// Whether it needs a human look.
    pub needs_review: bool,
    /// The detected language (empty when unknown).
    pub language: String,
    /// The rules that fired, each once.
    pub rules: Vec<FiredRule>,
}

/// A rule that fired on a record.
#[derive(Debug, Clone, PartialEq)]
pub struct FiredRule {
    /// The rule's id.
    pub rule: String,
    /// The queue it speaks for.
    pub queue: String,
    /// True when its weight is negative (evidence against its queue).
    pub against: bool,
}

impl Decision {
    /// Extracts what evaluation needs from a verdict.
    pub fn of(v: &Verdict) -> Decision {
        let mut rules: Vec<FiredRule> = Vec::with_capacity(v.hits.len());
        for h in &v.hits {
            if !rules.iter().any(|r| r.rule == h.rule) {
                rules.push(FiredRule {
                    rule: h.rule.clone(),
                    queue: h.queue.clone(),
                    against: h.weight < 0.0,
                });
            }
        }
        Decision {
            queue: v.queue.clone(),
            confidence: v.confidence,
            needs_review: v.needs_review,
            language: v.language.clone(),
            rules,
        }
    }
}

/// A verdict line: the verdict's fields, then where the record came from and its label.
#[derive(Serialize)]
struct VerdictLine<'a> {
    #[serde(flatten)]
    verdict: &'a Verdict,
    source: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    label: Option<&'a str>,
}

/// An error line: `{"id", "source", "error"}` (and the label when it was read).
#[derive(Serialize)]
struct ErrorLine<'a> {
    id: &'a str,
    source: &'a str,
    error: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    label: Option<&'a str>,
}

/// Where a record is and what it claims: everything about it except the verdict.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Meta {
    /// 0-based position over all inputs.
    pub position: u64,
    /// Its id or location.
    pub id: String,
    /// Its location.
    pub source: String,
    /// Its expected queue.
    pub label: Option<String>,
    /// Its claimed language.
    pub language: Option<String>,
}

impl Outcome {
    /// A classified record; `candidate` is its verdict under the compared ruleset.
    pub fn classified(meta: Meta, verdict: &Verdict, candidate: Option<&Verdict>) -> Outcome {
        let mut line = serde_json::to_string(&VerdictLine {
            verdict,
            source: &meta.source,
            label: meta.label.as_deref(),
        })
        .expect("a verdict always serialises");
        // The buffer grew by doubling; a few chunks of lines are in flight at once, so the
        // slack would be a good part of replay's memory.
        line.shrink_to_fit();
        Outcome {
            position: meta.position,
            id: meta.id,
            source: meta.source,
            label: meta.label,
            language: meta.language,
            result: Ok(Decision::of(verdict)),
            candidate: candidate.map(Decision::of),
            line,
        }
    }

    /// A record that could not be classified.
    pub fn failed(meta: Meta, error: String) -> Outcome {
        let line = serde_json::to_string(&ErrorLine {
            id: &meta.id,
            source: &meta.source,
            error: &error,
            label: meta.label.as_deref(),
        })
        .expect("an error record always serialises");
        Outcome {
            position: meta.position,
            id: meta.id,
            source: meta.source,
            label: meta.label,
            language: meta.language,
            result: Err(error),
            candidate: None,
            line,
        }
    }

    /// The `--changes` line when the compared ruleset routes this record elsewhere.
    pub fn change_line(&self) -> Option<String> {
        let (before, after) = (self.result.as_ref().ok()?, self.candidate.as_ref()?);
        if before.queue == after.queue {
            return None;
        }
        let rules = |d: &Decision| d.rules.iter().map(|r| r.rule.clone()).collect::<Vec<_>>();
        let change = serde_json::json!({
            "id": self.id,
            "source": self.source,
            "label": self.label,
            "from": before.queue,
            "to": after.queue,
            "from_confidence": before.confidence,
            "to_confidence": after.confidence,
            "from_rules": rules(before),
            "to_rules": rules(after),
        });
        Some(change.to_string())
    }

    /// True when the record is labelled, classified, and the queue equals the label.
    pub fn correct(&self) -> Option<bool> {
        let label = self.label.as_deref()?;
        let decision = self.result.as_ref().ok()?;
        Some(decision.queue == label)
    }

    /// The calibration hook: (confidence, whether it was right) for a labelled, classified
    /// record. `triage calibrate` fits the confidence mapping on these.
    pub fn calibration_point(&self) -> Option<(f64, bool)> {
        let correct = self.correct()?;
        Some((self.result.as_ref().ok()?.confidence, correct))
    }

    /// The language to report accuracy under: the input's claim, else the detected one.
    pub fn language_key(&self) -> &str {
        let detected = self.result.as_ref().map(|d| d.language.as_str()).unwrap_or("");
        match self.language.as_deref() {
            Some(l) if !l.is_empty() => l,
            _ if !detected.is_empty() => detected,
            _ => "unknown",
        }
    }
}
