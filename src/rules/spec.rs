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
}
