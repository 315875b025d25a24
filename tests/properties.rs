//! Property tests: normalisation and classification never panic, whatever the input.

use std::sync::LazyLock;

use proptest::prelude::*;
use triage::mail::{self, Limits};
use triage::text::{fold, lang};
use triage::{Engine, Message, RuleSet, Ticket};

static ENGINE: LazyLock<Engine> = LazyLock::new(|| Engine::new(RuleSet::builtin()).unwrap());

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn folding_is_idempotent_and_its_offsets_stay_in_bounds(s in any::<String>()) {
        let once = fold(&s);
        prop_assert_eq!(&fold(&once.text).text, &once.text);
        let (start, end) = once.original_range(0, once.text.len());
        prop_assert!(start <= end && end <= s.len());
        prop_assert!(s.is_char_boundary(start) && s.is_char_boundary(end));
    }

    #[test]
    fn language_detection_never_panics(s in any::<String>()) {
        let _ = lang::detect(&s);
    }

    #[test]
    fn classifying_any_ticket_gives_a_valid_verdict(subject in any::<String>(), body in any::<String>()) {
        let ticket = Ticket { subject, body, ..Ticket::default() };
        let v = ENGINE.classify("p", &Message::from_ticket(&ticket));
        prop_assert!(ENGINE.ruleset().queue_index(&v.queue).is_some());
        prop_assert!((0.0..=1.0).contains(&v.confidence));
    }

    #[test]
    fn classifying_any_bytes_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..4096)) {
        if let Ok(message) = mail::parse(&bytes, &Limits::default()) {
            let v = ENGINE.classify("b", &message);
            prop_assert!(!v.queue.is_empty());
        }
    }
}
