//! `triage learn` on synthetic history with known answers, and the example rulesets it built.

use std::path::Path;
use std::process::Command;

use triage::calibrate::fold_of;
use triage::learn::{self, Corpus, Learned, Options};
use triage::{Engine, Message, RuleSet};

const QUEUES: [&str; 3] = ["billing", "sales", "tech"];

/// A deterministic pseudo-random stream (splitmix64), so the history is the same every run.
struct Draw(u64);

impl Draw {
    fn next(&mut self, n: usize) -> usize {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        ((z ^ (z >> 31)) % n as u64) as usize
    }
}

/// `n` tickets over three queues: filler words every queue uses, one typical word per queue
/// in half of its tickets, and `plant(i, queue)` extra words.
fn history(n: usize, plant: impl Fn(usize, usize) -> Vec<String>) -> Vec<(usize, String)> {
    let filler = [
        "hello",
        "please",
        "thanks",
        "team",
        "today",
        "question",
        "regarding",
        "help",
        "need",
        "account",
    ];
    let typical = ["invoice", "pricing", "crash"];
    let mut draw = Draw(42);
    (0..n)
        .map(|i| {
            let queue = draw.next(3);
            let mut words: Vec<String> = (0..6)
                .map(|_| filler[draw.next(filler.len())].to_string())
                .collect();
            if draw.next(2) == 0 {
                words.insert(draw.next(words.len()), typical[queue].to_string());
            }
            words.extend(plant(i, queue));
            (queue, words.join(" "))
        })
        .collect()
}

fn corpus(tickets: &[(usize, String)]) -> Corpus {
    let mut corpus = Corpus::default();
    for (queue, body) in tickets {
        let message = Message {
            body: body.clone(),
            language: Some("en".into()),
            ..Message::default()
        };
        corpus.push(QUEUES[*queue], message);
    }
    corpus
}

fn options() -> Options {
    Options {
        min_support: 3,
        ..Options::default()
    }
}

fn weight_of(learned: &Learned, queue: &str, term: &str) -> f64 {
    learned
        .suggestions
        .iter()
        .filter(|s| learned.queues[s.queue].id == queue && s.term == term)
        .map(|s| s.weight)
        .sum()
}

/// A word found only in (some) billing tickets is proposed as strong billing evidence, with
/// its statistics, and the new ruleset written around it loads and passes its examples.
#[test]
fn learn_finds_a_planted_term() {
    let tickets = history(600, |i, q| {
        if q == 0 && i % 4 == 0 {
            vec!["zebracorn".into()]
        } else {
            vec![]
        }
    });
    let learned = learn::learn(&corpus(&tickets), None, &options()).unwrap();
    let planted = learned
        .suggestions
        .iter()
        .find(|s| s.term == "zebracorn" && s.weight > 0.0)
        .expect("the planted term is suggested");
    assert_eq!(learned.queues[planted.queue].id, "billing");
    assert_eq!(planted.support, planted.documents, "precision 1");
    assert!(planted.weight > 1.0, "{planted:?}");
    assert!(weight_of(&learned, "billing", "zebracorn") > weight_of(&learned, "billing", "hello"));
    assert!(
        learned.validation.after > learned.validation.before + 0.2,
        "{:?}",
        learned.validation
    );

    let text = learn::render(&learned, None, "synthetic", &[]);
    let ruleset = RuleSet::from_sources(
        Path::new("learned"),
        vec![("learned.toml".into(), text.into_bytes())],
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(ruleset.queues.len(), 3);
    let engine = Engine::new(ruleset).unwrap();
    assert!(engine.check_examples().iter().all(|o| o.passed));
    let verdict = engine.classify(
        "1",
        &Message {
            body: "hello zebracorn please".into(),
            ..Message::default()
        },
    );
    assert_eq!(verdict.queue, "billing");
}

/// Each fold's candidates come from the other folds only: a word planted in one fold's billing
/// tickets is a candidate in every other fold and never in its own.
#[test]
fn cross_validation_never_trains_on_its_test_fold() {
    let folds = 5;
    let tickets = history(1000, |i, q| {
        if q == 0 {
            vec![format!("foldword{}", fold_of(i, folds))]
        } else {
            vec![]
        }
    });
    let learned = learn::learn(&corpus(&tickets), None, &options()).unwrap();
    assert_eq!(learned.validation.folds.len(), folds);
    for (f, fold) in learned.validation.folds.iter().enumerate() {
        assert_eq!(fold.tested + fold.trained, tickets.len());
        for g in 0..folds {
            let word = format!("foldword{g}");
            assert_eq!(
                fold.terms.contains(&word),
                g != f,
                "fold {f}, {word}: {:?}",
                fold.terms
            );
        }
    }
}

/// Changing the labels of one fold changes nothing that fold's model predicts for it: no label
/// of a test fold reaches its fit (not the terms, the weights or the fallback queue).
#[test]
fn a_test_folds_labels_do_not_reach_its_predictions() {
    let tickets = history(600, |_, _| vec![]);
    let scrambled: Vec<(usize, String)> = tickets
        .iter()
        .enumerate()
        .map(|(i, (q, body))| {
            let q = if fold_of(i, 5) == 0 { (q + 1) % 3 } else { *q };
            (q, body.clone())
        })
        .collect();
    let a = learn::learn(&corpus(&tickets), None, &options()).unwrap();
    let b = learn::learn(&corpus(&scrambled), None, &options()).unwrap();
    let in_fold_0: Vec<usize> = (0..tickets.len()).filter(|&i| fold_of(i, 5) == 0).collect();
    assert!(!in_fold_0.is_empty());
    for &i in &in_fold_0 {
        assert_eq!(a.validation.predicted[i], b.validation.predicted[i], "record {i}");
    }
    // The scrambled labels do reach the other folds' fits and the final one.
    assert_ne!(a.suggestions, b.suggestions);
}

const BASE: &str = r#"
[ruleset]
name = "base"
fallback = "tech"

[[queue]]
id = "billing"
threshold = 0.6

[[queue]]
id = "sales"
threshold = 0.6

[[queue]]
id = "tech"
threshold = 0.6

[[rule]]
id = "billing.invoice"
queue = "billing"
weight = 0.2
any = ["invoice"]

[[rule]]
id = "tech.pricing"
queue = "tech"
weight = 1.0
any = ["pricing"]
"#;

/// With a ruleset to start from, a good rule's weight goes up, a misleading rule's goes down,
/// and the suggestions load together with the ruleset.
#[test]
fn suggested_weights_move_the_right_way_and_merge_with_the_ruleset() {
    let base = RuleSet::from_sources(
        Path::new("base"),
        vec![("base.toml".into(), BASE.as_bytes().to_vec())],
    )
    .unwrap();
    let tickets = history(900, |_, _| vec![]);
    let learned = learn::learn(&corpus(&tickets), Some(&base), &options()).unwrap();
    let suggested = |id: &str| {
        let r = learned
            .existing
            .iter()
            .find(|r| base.rules[r.rule].id == id)
            .unwrap();
        (r.suggested, r.precision(base.rules[r.rule].queue).unwrap())
    };
    let (invoice, invoice_precision) = suggested("billing.invoice");
    let (pricing, pricing_precision) = suggested("tech.pricing");
    assert!(invoice > 0.2, "billing.invoice: {invoice}");
    assert!(pricing < 1.0, "tech.pricing: {pricing}");
    assert_eq!(invoice_precision, 1.0);
    assert_eq!(pricing_precision, 0.0);
    assert!(learned.validation.after > learned.validation.before);
    // "invoice" is already a billing rule: no new rule repeats it; "pricing" is sales evidence.
    let sales = base.queue_index("sales").unwrap();
    let billing = base.queue_index("billing").unwrap();
    assert!(
        !learned
            .suggestions
            .iter()
            .any(|s| s.term == "invoice" && s.queue == billing)
    );
    assert!(
        learned
            .suggestions
            .iter()
            .any(|s| s.term == "pricing" && s.queue == sales && s.weight > 0.0)
    );

    let text = learn::render(&learned, Some(&base), "unused", &[]);
    assert!(!text.contains("[ruleset]"));
    let merged = RuleSet::from_sources(
        Path::new("merged"),
        vec![
            ("base.toml".into(), BASE.as_bytes().to_vec()),
            ("suggestions.toml".into(), text.into_bytes()),
        ],
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert!(merged.rules.len() > base.rules.len());
    assert!(merged.rules.iter().any(|r| r.id.starts_with("learned.sales.")));
}

#[test]
fn labels_become_queue_ids() {
    assert_eq!(triage::rules::queue_id("HR Support"), "hr_support");
    assert_eq!(
        triage::rules::queue_id("Administrative rights"),
        "administrative_rights"
    );
    assert_eq!(triage::rules::queue_id("card_arrival"), "card_arrival");
    assert_eq!(
        triage::rules::queue_id("Zahlung/Rückerstattung"),
        "zahlung_ruckerstattung"
    );
}

/// The example rulesets `triage learn` built load, and `triage check-rules` accepts them.
#[test]
fn the_example_rulesets_pass_check_rules() {
    for name in ["it-service", "banking77"] {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("examples/rulesets")
            .join(name);
        let ruleset = RuleSet::load(&dir).unwrap_or_else(|e| panic!("{name}: {e}"));
        // Within the largest `--max-rules` their READMEs' commands give.
        assert!(
            ruleset.rules.len() <= 80_000,
            "{name}: {} rules",
            ruleset.rules.len()
        );
        let out = Command::new(env!("CARGO_BIN_EXE_triage"))
            .arg("check-rules")
            .arg(&dir)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// A learned example ruleset's accuracy on its held-out test split (`triage replay`), or
/// `None` when the public corpus is absent.
fn test_accuracy(name: &str, corpus: &str, text: &str, label: &str) -> Option<f64> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let test = root
        .join("../shared/corpus/public/tickets")
        .join(corpus)
        .join("test.csv");
    if !test.exists() {
        eprintln!("skipped: {} is absent", test.display());
        return None;
    }
    let summary = tempfile::NamedTempFile::new().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_triage"))
        .args([
            "replay",
            "--csv-text",
            text,
            "--csv-label",
            label,
            "--output",
            "/dev/null",
        ])
        .arg("--input")
        .arg(&test)
        .arg("--rules")
        .arg(root.join("examples/rulesets").join(name))
        .arg("--summary")
        .arg(summary.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let summary: serde_json::Value = serde_json::from_slice(&std::fs::read(summary.path()).unwrap()).unwrap();
    Some(summary["accuracy"].as_f64().unwrap())
}

/// The learned it-service ruleset matches the TF-IDF + logistic regression reference on the
/// test split (0.871, `../shared/corpus/public/README.md`), when the public corpus is present.
#[test]
fn the_it_service_ruleset_matches_tf_idf_on_the_test_split() {
    if let Some(accuracy) = test_accuracy("it-service", "it-service", "Document", "Topic_group") {
        assert!(accuracy >= 0.871, "accuracy {accuracy}");
    }
}

/// The learned banking77 ruleset matches the TF-IDF + logistic regression reference on the
/// test split (0.891), when the public corpus is present.
#[test]
fn the_banking77_ruleset_matches_tf_idf_on_the_test_split() {
    if let Some(accuracy) = test_accuracy("banking77", "banking77", "text", "category") {
        assert!(accuracy >= 0.891, "accuracy {accuracy}");
    }
}

/// `learn` creates the output's directory, rather than failing after the fit.
#[test]
fn learn_writes_into_a_directory_it_creates() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("history.csv");
    let mut csv = String::from("text,label\n");
    for i in 0..40 {
        let (text, label) = if i % 2 == 0 {
            ("my invoice is wrong", "billing")
        } else {
            ("the printer is broken", "hardware")
        };
        csv.push_str(&format!("{text} {i},{label}\n"));
    }
    std::fs::write(&input, csv).unwrap();
    let output = dir.path().join("new/rules/learned.toml");
    let out = Command::new(env!("CARGO_BIN_EXE_triage"))
        .args(["learn", "--csv-text", "text", "--csv-label", "label", "--input"])
        .arg(&input)
        .arg("--output")
        .arg(&output)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = std::fs::read_to_string(&output).unwrap();
    assert!(text.contains("frequency = \"log\""), "{text}");
}
