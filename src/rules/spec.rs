//! The rule files as written: serde structures with source spans for diagnostics.

use std::collections::BTreeMap;

use serde::Deserialize;
use toml::Spanned;

/// One `*.toml` file of a ruleset.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct FileSpec {
    pub ruleset: Option<Spanned<RulesetSpec>>,
    #[serde(default)]
    pub queue: Vec<Spanned<QueueSpec>>,
    #[serde(default)]
    pub rule: Vec<Spanned<RuleSpec>>,
    #[serde(default)]
    pub example: Vec<Spanned<ExampleSpec>>,
    pub calibration: Option<Spanned<CalibrationSpec>>,
    #[serde(default)]
    pub signal: Vec<Spanned<SignalSpec>>,
    #[serde(default)]
    pub cue: Vec<Spanned<CueSpec>>,
    #[serde(default)]
    pub terms: Vec<Spanned<TermListSpec>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RulesetSpec {
    pub name: String,
    pub fallback: Spanned<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct QueueSpec {
    pub id: Spanned<String>,
    #[serde(default)]
    pub destination: String,
    #[serde(default)]
    pub description: String,
    pub threshold: Spanned<f64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RuleSpec {
    pub id: Spanned<String>,
    pub queue: Spanned<String>,
    #[serde(default = "one")]
    pub weight: Spanned<f64>,
    pub fields: Option<Vec<Spanned<String>>>,
    #[serde(default)]
    pub languages: Vec<Spanned<String>>,
    #[serde(default)]
    pub any: Vec<Spanned<String>>,
    #[serde(default)]
    pub all: Vec<Spanned<String>>,
    #[serde(default)]
    pub none: Vec<Spanned<String>>,
    #[serde(default)]
    pub of: Vec<Spanned<String>>,
    pub at_least: Option<Spanned<i64>>,
    #[serde(default)]
    pub requires: Vec<Spanned<String>>,
    #[serde(default)]
    pub unless: Vec<Spanned<String>>,
    pub negated: Option<Spanned<String>>,
    pub frequency: Option<Spanned<String>>,
}

/// The condition keys shared by rules and signals, borrowed from either.
pub(crate) struct ConditionSpecs<'a> {
    pub any: &'a [Spanned<String>],
    pub all: &'a [Spanned<String>],
    pub none: &'a [Spanned<String>],
    pub of: &'a [Spanned<String>],
    pub at_least: &'a Option<Spanned<i64>>,
    pub requires: &'a [Spanned<String>],
    pub unless: &'a [Spanned<String>],
}

impl RuleSpec {
    pub fn conditions(&self) -> ConditionSpecs<'_> {
        ConditionSpecs {
            any: &self.any,
            all: &self.all,
            none: &self.none,
            of: &self.of,
            at_least: &self.at_least,
            requires: &self.requires,
            unless: &self.unless,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct SignalSpec {
    pub id: Spanned<String>,
    pub fields: Option<Vec<Spanned<String>>>,
    #[serde(default)]
    pub languages: Vec<Spanned<String>>,
    #[serde(default)]
    pub any: Vec<Spanned<String>>,
    #[serde(default)]
    pub all: Vec<Spanned<String>>,
    #[serde(default)]
    pub none: Vec<Spanned<String>>,
    #[serde(default)]
    pub of: Vec<Spanned<String>>,
    pub at_least: Option<Spanned<i64>>,
    #[serde(default)]
    pub requires: Vec<Spanned<String>>,
    #[serde(default)]
    pub unless: Vec<Spanned<String>>,
    #[serde(default)]
    pub moves: Vec<Spanned<MoveSpec>>,
    pub collect: Option<Spanned<String>>,
}

impl SignalSpec {
    pub fn conditions(&self) -> ConditionSpecs<'_> {
        ConditionSpecs {
            any: &self.any,
            all: &self.all,
            none: &self.none,
            of: &self.of,
            at_least: &self.at_least,
            requires: &self.requires,
            unless: &self.unless,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct MoveSpec {
    pub from: Spanned<String>,
    pub to: Option<Spanned<String>>,
    #[serde(default = "one")]
    pub share: Spanned<f64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct CueSpec {
    pub id: Spanned<String>,
    pub kind: Spanned<String>,
    pub scope: Option<Spanned<String>>,
    pub window: Option<Spanned<i64>>,
    pub terms: Vec<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct TermListSpec {
    pub id: Spanned<String>,
    pub terms: Vec<Spanned<String>>,
}

fn one() -> Spanned<f64> {
    Spanned::new(0..0, 1.0)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ExampleSpec {
    #[serde(default)]
    pub subject: String,
    #[serde(default)]
    pub body: String,
    #[serde(default)]
    pub from: String,
    #[serde(default)]
    pub to: Vec<String>,
    pub language: Option<String>,
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    pub queue: Option<Spanned<String>>,
    pub not: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct CalibrationSpec {
    pub temperature: Spanned<f64>,
    pub intercept: Option<f64>,
    pub softmax_logit: Option<f64>,
    pub margin: Option<f64>,
    pub strong_queues: Option<f64>,
    pub weak_share: Option<f64>,
    pub addressed: Option<f64>,
    pub unexplained: Option<f64>,
    pub standing_unknown: Option<f64>,
    pub contested_ceiling: Option<Spanned<f64>>,
}
