//! Parse + classify arbitrary bytes with the built-in ruleset: never a panic.
#![no_main]

use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use triage::mail::{self, Limits};
use triage::{Engine, RuleSet};

static ENGINE: LazyLock<Engine> =
    LazyLock::new(|| Engine::new(RuleSet::builtin()).expect("built-in ruleset compiles"));

fuzz_target!(|data: &[u8]| {
    if let Ok(message) = mail::parse(data, &Limits::default()) {
        let _ = ENGINE.classify("fuzz", &message);
    }
});
