//! `mail::parse` on arbitrary bytes: it must return a message or a clear error, never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use triage::mail::{self, Limits};

fuzz_target!(|data: &[u8]| {
    let _ = mail::parse(data, &Limits::default());
});
