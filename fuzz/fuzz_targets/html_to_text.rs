//! HTML → text on arbitrary input: never a panic, and in time linear in the input (libFuzzer's
//! `-timeout` catches a quadratic case). The simplified HTML must be well nested and shallow.
#![no_main]

use libfuzzer_sys::fuzz_target;
use triage::mail::{html, markup};

fuzz_target!(|data: &[u8]| {
    let Ok(input) = std::str::from_utf8(data) else {
        return;
    };
    let simple = markup::simplify(input);
    // Every tag the simplifier writes is closed, in order, and at most MAX_DEPTH deep.
    let mut open: Vec<&str> = Vec::new();
    let mut rest = simple.as_str();
    while let Some(lt) = rest.find('<') {
        rest = &rest[lt + 1..];
        let end = rest.find('>').expect("every tag written is closed by '>'");
        let tag = &rest[..end];
        rest = &rest[end + 1..];
        if tag == "br" || tag == "hr" {
            continue;
        }
        match tag.strip_prefix('/') {
            Some(name) => assert_eq!(open.pop(), Some(name), "misnested in {simple:?}"),
            None => {
                open.push(tag);
                assert!(open.len() <= markup::MAX_DEPTH, "too deep: {simple:?}");
            }
        }
    }
    assert!(open.is_empty(), "left open: {open:?}");
    let _ = html::to_text(input);
});
