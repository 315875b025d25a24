//! Mail that is not a request to us (spam, newsletters, list posts, strangers' mail) must not
//! be routed to a person as if the router were sure: the public SpamAssassin corpus (none of its
//! messages is a request to a trust-mark company) and the project's own blind out-of-scope
//! sample in seven languages, each reported per folder or language.

use std::collections::BTreeMap;
use std::path::Path;

use triage::intake::{Input, IntakeError, intake};
use triage::mail::Limits;
use triage::{Engine, Message, RuleSet, Ticket, Verdict};

/// The queue for mail no person needs (DESIGN.md): a verdict there is not a route to a person.
const NO_HUMAN: &str = "auto_reply";

fn engine() -> Engine {
    Engine::new(RuleSet::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("rules")).unwrap()).unwrap()
}

/// Counts of one folder or language: messages, auto-routed to a person, at confidence ≥ 0.9.
#[derive(Default, Debug, Clone, Copy)]
struct Tally {
    messages: usize,
    routed: usize,
    confident: usize,
}

impl Tally {
    fn add(&mut self, v: &Verdict) {
        self.messages += 1;
        if v.queue != NO_HUMAN && !v.needs_review {
            self.routed += 1;
        }
        if v.queue != NO_HUMAN && v.confidence >= 0.9 {
            self.confident += 1;
        }
    }

    fn total<'a>(all: impl Iterator<Item = &'a Tally>) -> Tally {
        all.fold(Tally::default(), |t, x| Tally {
            messages: t.messages + x.messages,
            routed: t.routed + x.routed,
            confident: t.confident + x.confident,
        })
    }

    fn report(&self, name: &str) {
        eprintln!(
            "  {name:<12} {:>5} messages, {:>4} auto-routed to a person ({:.1}%), {:>3} at confidence >= 0.9 ({:.2}%)",
            self.messages,
            self.routed,
            100.0 * self.routed as f64 / self.messages.max(1) as f64,
            self.confident,
            100.0 * self.confident as f64 / self.messages.max(1) as f64,
        );
    }
}

/// Issue #16's targets on the whole public SpamAssassin corpus: at most 2% auto-routed to a
/// human queue, at most 0.5% at confidence ≥ 0.9.
#[test]
fn public_spamassassin_mail_is_almost_never_routed_to_a_person() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/corpus/public/emails/spamassassin");
    if !root.exists() {
        eprintln!(
            "skipped: {} is absent (public corpus of the shared folder)",
            root.display()
        );
        return;
    }
    let engine = engine();
    let mut folders: BTreeMap<String, Tally> = BTreeMap::new();
    let mut refused = 0;
    for folder in std::fs::read_dir(&root).unwrap() {
        let folder = folder.unwrap().path();
        if !folder.is_dir() {
            continue;
        }
        let name = folder.file_name().unwrap().to_string_lossy().into_owned();
        for file in std::fs::read_dir(&folder).unwrap() {
            let raw = std::fs::read(file.unwrap().path()).unwrap();
            match intake(Input::Raw(&raw), None, &Limits::default()) {
                Ok(message) => folders
                    .entry(name.clone())
                    .or_default()
                    .add(&engine.classify("x", &message)),
                Err(IntakeError::TooLarge { .. }) => refused += 1,
                Err(e) => panic!("{name}: {e}"),
            }
        }
    }
    eprintln!("public SpamAssassin corpus ({refused} refused as too large):");
    for (name, t) in &folders {
        t.report(name);
    }
    let all = Tally::total(folders.values());
    all.report("all");
    assert!(all.messages > 6000, "only {} messages", all.messages);
    let routed = all.routed as f64 / all.messages as f64;
    let confident = all.confident as f64 / all.messages as f64;
    assert!(routed <= 0.02, "{:.2}% auto-routed to a person", 100.0 * routed);
    assert!(
        confident <= 0.005,
        "{:.2}% at confidence >= 0.9",
        100.0 * confident
    );
}

#[derive(serde::Deserialize)]
struct Labelled {
    #[serde(flatten)]
    ticket: Ticket,
    lang: String,
    label: String,
}

/// The blind out-of-scope sample (tests/data/blind/*/out_of_scope.jsonl: newsletters, vendor
/// offers, misdirected mail, phishing, list posts and notifications, written for this project
/// in seven languages, many of them about e-commerce on purpose: a vendor pitching Shopify
/// plugins, a fake "1-star review" notice, an invoice meant for someone else). Measured at 13.8%
/// auto-routed to a person and 4.8% at confidence ≥ 0.9 (17.4% and 5.3% before the confidence
/// model read `addressed` and `unexplained`); the bars, one in seven and one in twenty, guard
/// against regressions. Per language the figures are printed, not asserted: 40 to 100 messages
/// a language are too few for a bar of their own.
#[test]
fn the_blind_out_of_scope_sample_is_rarely_routed_to_a_person_in_any_language() {
    let engine = engine();
    let mut languages: BTreeMap<String, Tally> = BTreeMap::new();
    for part in ["tuning", "locked"] {
        let path =
            Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("tests/data/blind/{part}/out_of_scope.jsonl"));
        for line in std::fs::read_to_string(&path).unwrap().lines() {
            let t: Labelled = serde_json::from_str(line).unwrap();
            assert_eq!(t.label, "none", "{}", t.ticket.id);
            let v = engine.classify(&t.ticket.id, &Message::from_ticket(&t.ticket));
            languages.entry(t.lang).or_default().add(&v);
        }
    }
    eprintln!("blind out-of-scope sample, by language:");
    for (lang, t) in &languages {
        t.report(lang);
    }
    let all = Tally::total(languages.values());
    all.report("all");
    assert_eq!(languages.len(), 7, "{:?}", languages.keys().collect::<Vec<_>>());
    assert!(all.routed * 7 <= all.messages, "{all:?}");
    assert!(all.confident * 20 <= all.messages, "{all:?}");
}
