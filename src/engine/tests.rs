use std::collections::HashMap;
use std::path::Path;

use super::*;
use crate::message::Ticket;

const RULES: &str = r#"
[ruleset]
name = "test"
fallback = "general"

[[queue]]
id = "general"
destination = "help@example.com"
threshold = 0.6

[[queue]]
id = "billing"
destination = "billing@example.com"
threshold = 0.6

[[queue]]
id = "tech"
threshold = 0.6

[[queue]]
id = "auto"
threshold = 0.6

[[rule]]
id = "billing.invoice"
queue = "billing"
weight = 3.0
any = ["invoice", "factur*", "rechnung"]

[[rule]]
id = "billing.vat"
queue = "billing"
weight = 2.0
all = ["vat", "number"]

[[rule]]
id = "tech.plugin"
queue = "tech"
weight = 3.0
any = ["plugin"]
none = ["invoice"]

[[rule]]
id = "tech.two_of"
queue = "tech"
weight = 2.0
at_least = 2
of = ["api", "error", "checkout"]

[[rule]]
id = "tech.german_only"
queue = "tech"
weight = 4.0
languages = ["de"]
any = ["fehler"]

[[rule]]
id = "auto.header"
queue = "auto"
weight = 10.0
fields = ["header:auto-submitted"]
any = ["auto-replied"]
"#;

fn engine() -> Engine {
    let rs =
        RuleSet::from_sources(Path::new("t"), vec![("r.toml".into(), RULES.as_bytes().to_vec())]).unwrap();
    Engine::new(rs).unwrap()
}

fn classify(subject: &str, body: &str) -> Verdict {
    let t = Ticket {
        subject: subject.into(),
        body: body.into(),
        ..Ticket::default()
    };
    engine().classify("x", &Message::from_ticket(&t))
}

/// An engine of [`RULES`] followed by `extra` (more rules, signals or a calibration).
fn engine_with(extra: &str) -> Engine {
    let rs = RuleSet::from_sources(
        Path::new("t"),
        vec![("r.toml".into(), format!("{RULES}{extra}").into_bytes())],
    )
    .unwrap();
    Engine::new(rs).unwrap()
}

/// [`RULES`] with an `addressed` signal and a confidence model that reads both new inputs.
fn addressed_engine() -> Engine {
    engine_with(
        r#"
[[signal]]
id = "addressed"
any = ["our shop"]

[calibration]
temperature = 1.0
intercept = 0.0
softmax_logit = 1.0
addressed = 1.0
unexplained = -3.0
"#,
    )
}

/// The detailed classification of a ticket with only `body`.
fn detailed(engine: &Engine, body: &str) -> Detailed {
    let t = Ticket {
        body: body.into(),
        ..Ticket::default()
    };
    engine.detailed("x", &Message::from_ticket(&t))
}

fn features(engine: &Engine, body: &str) -> score::Features {
    detailed(engine, body).features
}

#[test]
fn the_addressed_signal_is_an_input_of_the_confidence_model() {
    let e = addressed_engine();
    assert_eq!(features(&e, "The invoice for our shop is wrong.").addressed, 1.0);
    assert_eq!(features(&e, "The invoice is wrong.").addressed, 0.0);
    // Without the signal in the ruleset the input is always 0.
    assert_eq!(
        features(&engine(), "The invoice for our shop is wrong.").addressed,
        0.0
    );
}

#[test]
fn a_term_read_only_in_the_subject_explains_no_sentence_of_the_new_text() {
    // The text zones share one matcher, so the subject's term is found in the body as well;
    // the body's sentence is explained only by terms some rule reads there.
    let extra = "\n[[rule]]\nid = \"tech.subject_only\"\nqueue = \"tech\"\nweight = 1.0\nfields = [\"subject\"]\nany = [\"sailing\", \"/\\\\bweekend\\\\b/\"]\n";
    let e = engine_with(extra);
    let body = "Your invoice is wrong.\nWe went sailing all weekend.";
    let f = features(&e, body);
    assert!(f.unexplained > 0.3, "{f:?}");
    let read_in_body = features(&e, "Your invoice is wrong.\nThe invoice came twice.");
    assert_eq!(read_in_body.unexplained, 0.0);
}

#[test]
fn text_the_ruleset_knows_nothing_of_lowers_the_confidence() {
    let e = addressed_engine();
    let focused = "Your invoice is wrong.";
    let diluted = "Your invoice is wrong.\nThe weather in Dublin was lovely, we went sailing all weekend and then had dinner with the neighbours at the harbour.";
    let (f, d) = (features(&e, focused), features(&e, diluted));
    assert_eq!(f.unexplained, 0.0);
    assert!(d.unexplained > 0.7, "{d:?}");
    let classify = |body: &str| {
        let t = Ticket {
            body: body.into(),
            ..Ticket::default()
        };
        e.classify("x", &Message::from_ticket(&t))
    };
    let (a, b) = (classify(focused), classify(diluted));
    assert_eq!((a.queue.as_str(), b.queue.as_str()), ("billing", "billing"));
    assert!(
        b.confidence < a.confidence - 0.3,
        "{} vs {}",
        a.confidence,
        b.confidence
    );
}

#[test]
fn a_keyword_routes_to_its_queue_with_the_evidence() {
    let v = classify("", "Where is my invoice?");
    assert_eq!(v.queue, "billing");
    assert_eq!(v.destination, "billing@example.com");
    assert_eq!(v.hits[0].rule, "billing.invoice");
    assert_eq!(v.hits[0].matched, "invoice");
    assert_eq!(v.hits[0].field, "body");
}

#[test]
fn no_evidence_goes_to_the_fallback_with_low_confidence() {
    let v = classify("hello", "just saying hi");
    assert_eq!(v.queue, "general");
    assert!(v.confidence < 0.3 && v.needs_review);
    assert_eq!(v.ranking[0].queue, "general");
    assert!(v.hits.is_empty());
}

#[test]
fn the_subject_counts_more_than_the_body() {
    let subject = classify("invoice", "");
    let body = classify("", "invoice");
    assert!(subject.ranking[0].score > body.ranking[0].score);
}

#[test]
fn quoted_history_counts_far_less_than_new_text() {
    let v = classify(
        "",
        "The checkout throws an API error.\n\nOn Mon, 3 Jun 2024, Billing <b@x.com> wrote:\n> your invoice 4411\n> factura",
    );
    assert_eq!(v.queue, "tech", "{v:?}");
    let billing = v.ranking.iter().find(|r| r.queue == "billing").unwrap();
    assert!(billing.score < 3.0 * 0.5, "{billing:?}");
}

#[test]
fn all_of_needs_every_term() {
    assert_eq!(classify("", "our VAT number changed").queue, "billing");
    assert_eq!(classify("", "our number changed").queue, "general");
}

#[test]
fn none_of_vetoes_the_rule() {
    let v = classify("", "the plugin invoice");
    assert!(v.hits.iter().all(|h| h.rule != "tech.plugin"), "{:?}", v.hits);
}

#[test]
fn at_least_n_of_counts_distinct_terms() {
    assert_eq!(classify("", "API error at the checkout").queue, "tech");
    assert!(classify("", "an API question").hits.is_empty());
}

#[test]
fn language_scoped_rules_only_count_in_their_language() {
    let t = Ticket {
        body: "Fehler".into(),
        language: Some("de".into()),
        ..Ticket::default()
    };
    assert_eq!(engine().classify("x", &Message::from_ticket(&t)).queue, "tech");
    let t = Ticket {
        body: "fehler".into(),
        language: Some("en".into()),
        ..Ticket::default()
    };
    assert_eq!(engine().classify("x", &Message::from_ticket(&t)).queue, "general");
}

#[test]
fn a_single_header_rule_reads_only_that_header() {
    let mut t = Ticket {
        body: "your invoice".into(),
        ..Ticket::default()
    };
    t.headers.insert("Auto-Submitted".into(), "auto-replied".into());
    let v = engine().classify("x", &Message::from_ticket(&t));
    assert_eq!(v.queue, "auto");
    assert!(
        v.hits.iter().any(|h| h.field == "header:auto-submitted"),
        "{:?}",
        v.hits
    );
    let mut t = Ticket::default();
    t.headers.insert("X-Note".into(), "auto-replied".into());
    assert_eq!(engine().classify("x", &Message::from_ticket(&t)).queue, "general");
}

#[test]
fn competing_evidence_lowers_confidence() {
    let clear = classify("", "invoice");
    let mixed = classify("", "invoice, and the checkout shows an API error");
    assert!(
        mixed.confidence < clear.confidence,
        "{} vs {}",
        mixed.confidence,
        clear.confidence
    );
}

#[test]
fn breadth_of_distinct_terms_adds_evidence() {
    let one = classify("", "invoice");
    let two = classify("", "invoice rechnung");
    assert!(two.ranking[0].score > one.ranking[0].score);
}

#[test]
fn verdicts_carry_the_ruleset_version_and_the_id() {
    let v = classify("", "invoice");
    assert_eq!(v.id, "x");
    assert_eq!(v.ruleset_version, engine().ruleset().version);
    assert!(v.ruleset_version.starts_with("sha256:"));
}

#[test]
fn no_queue_in_the_ranking_is_more_confident_than_the_chosen_one() {
    // A model that doubts every verdict: the rest of the probability would otherwise make the
    // runner-up look likelier than the queue chosen.
    let extra = "\n[calibration]\ntemperature = 1.0\nintercept = -2.0\nsoftmax_logit = 0.0\n";
    let t = Ticket {
        subject: "invoice".into(),
        body: "plugin api error checkout".into(),
        ..Ticket::default()
    };
    let v = engine_with(extra).classify("x", &Message::from_ticket(&t));
    assert!(v.ranking.len() >= 2, "{:?}", v.ranking);
    assert!(v.confidence < 0.5, "{}", v.confidence);
    for r in &v.ranking[1..] {
        assert!(
            r.confidence <= v.confidence,
            "{} {} > {}",
            r.queue,
            r.confidence,
            v.confidence
        );
    }
}

#[test]
fn ranking_is_sorted_and_confidences_are_probabilities() {
    let v = classify("invoice", "plugin api error checkout");
    for pair in v.ranking.windows(2) {
        assert!(pair[0].score >= pair[1].score);
    }
    assert!(v.ranking.iter().all(|r| (0.0..=1.0).contains(&r.confidence)));
    assert_eq!(v.ranking[0].queue, v.queue);
}

#[test]
fn a_prefix_hit_quotes_the_whole_word_it_matched_in() {
    assert_eq!(super::whole_words("Twee facturen ontvangen", 5, 10), "facturen");
    assert_eq!(super::whole_words("Kündigung", 0, 5), "Kündigung");
    assert_eq!(super::whole_words("abc", 2, 9), "");
}

#[test]
fn the_language_sample_is_the_first_bytes_of_the_pieces_and_stops_at_a_cut() {
    let mut sample = super::Sample::new(6);
    sample.push("ab");
    sample.push("\n");
    sample.push("c€d"); // '€' is three bytes: only "c" fits in the three left
    sample.push("\n");
    assert_eq!(sample.text, "ab\nc");
    let long = "ü".repeat(2000);
    let mut sample = super::Sample::new(crate::text::lang::SAMPLE_BYTES);
    sample.push(&long);
    assert_eq!(sample.text.len(), crate::text::lang::SAMPLE_BYTES);
}

/// An engine of one queue besides the fallback, with one rule counting `frequency`.
fn counting(frequency: &str) -> Engine {
    let rules = format!(
        "[ruleset]\nname = \"f\"\nfallback = \"general\"\n\
         [[queue]]\nid = \"general\"\nthreshold = 0.5\n[[queue]]\nid = \"hardware\"\nthreshold = 0.5\n\
         [[rule]]\nid = \"printer\"\nqueue = \"hardware\"\nany = [\"printer\", \"toner\"]\nfrequency = \"{frequency}\"\n\
         [[cue]]\nid = \"neg\"\nkind = \"negation\"\nterms = [\"this is not about\"]\n"
    );
    let rs = RuleSet::from_sources(Path::new("t"), vec![("r.toml".into(), rules.into_bytes())]).unwrap();
    Engine::new(rs).unwrap()
}

fn hardware_score(engine: &Engine, body: &str) -> f64 {
    let t = Ticket {
        body: body.into(),
        ..Ticket::default()
    };
    let v = engine.classify("x", &Message::from_ticket(&t));
    v.ranking
        .iter()
        .find(|r| r.queue == "hardware")
        .map_or(0.0, |r| r.score)
}

#[test]
fn a_rule_counting_frequency_grows_with_the_log_of_its_occurrences() {
    let log = counting("log");
    let once = hardware_score(&log, "The printer is broken.");
    let three = hardware_score(
        &log,
        "The printer is broken. The printer says error. Printer offline.",
    );
    assert!((once - 1.0).abs() < 1e-9, "{once}");
    // 1 + ln 3: every occurrence counts, sublinearly.
    assert!((three - (1.0 + 3f64.ln())).abs() < 0.01, "{three}");
    // Occurrences of any of the rule's terms add up (with the breadth bonus of a second term).
    let mixed = hardware_score(&log, "printer printer toner");
    assert!((mixed - (1.0 + 3f64.ln()) * 1.25).abs() < 0.01, "{mixed}");
}

#[test]
fn a_rule_counting_once_ignores_repetition() {
    let once = counting("once");
    assert_eq!(
        hardware_score(&once, "printer"),
        hardware_score(&once, "printer printer printer printer")
    );
}

#[test]
fn a_negated_occurrence_is_not_counted() {
    let log = counting("log");
    let plain = hardware_score(&log, "The printer is broken.");
    let with_negated = hardware_score(&log, "The printer is broken. This is not about the printer.");
    assert!((with_negated - plain).abs() < 1e-9, "{with_negated} vs {plain}");
}

/// Signals `member` and `prospect` (which moves `tech` to `general`), a rule that gives
/// `general` evidence of its own, and a confidence model that is sure of every verdict but
/// bounds contested ones at 0.75.
const STANDING: &str = r#"
[[signal]]
id = "member"
any = ["our membership"]

[[signal]]
id = "prospect"
any = ["before we sign"]
unless = ["member"]
moves = [{ from = "tech", to = "general" }]

[[rule]]
id = "general.price"
queue = "general"
weight = 1.0
any = ["price"]

[calibration]
temperature = 1.0
intercept = 6.0
softmax_logit = 0.0
contested_ceiling = 0.75
"#;

#[test]
fn the_standing_is_contested_when_the_queue_it_would_decide_for_has_evidence() {
    let e = engine_with(STANDING);
    let contested = |body: &str| features(&e, body).standing_contested;
    assert_eq!(
        contested("The plugin shows an error. Does the price change?"),
        1.0
    );
    assert_eq!(
        contested("The plugin shows an error."),
        0.0,
        "general has no evidence"
    );
    assert_eq!(
        contested("The plugin in our membership shows an error. Does the price change?"),
        0.0,
        "a member: the standing is known"
    );
    assert_eq!(
        contested("The invoice is wrong. Does the price change?"),
        0.0,
        "no signal moves billing"
    );
}

#[test]
fn the_standing_is_contested_when_a_fired_standing_decides_against_a_queue_with_a_case() {
    let e = engine_with(STANDING);
    let verdict = |body: &str| {
        let d = detailed(&e, body);
        (d.verdict.queue, d.features)
    };
    let (queue, f) = verdict("Before we sign: the plugin shows an error.");
    assert_eq!(queue, "general", "the prospect's voice moves the technical case");
    assert_eq!(f.standing_contested, 1.0, "tech led before the move");
    assert_eq!(f.standing_unknown, 0.0, "the standing is known");
    let (queue, f) = verdict("Before we sign: does the price change?");
    assert_eq!(queue, "general");
    assert_eq!(f.standing_contested, 0.0, "general led before any move");
}

#[test]
fn a_contested_verdict_is_no_surer_than_the_ceiling_and_others_are_untouched() {
    let e = engine_with(STANDING);
    let confidence = |body: &str| {
        let t = Ticket {
            body: body.into(),
            ..Ticket::default()
        };
        e.classify("x", &Message::from_ticket(&t))
    };
    let contested = confidence("The plugin shows an error. Does the price change?");
    assert_eq!(contested.queue, "tech");
    assert!(
        (contested.confidence - 0.75).abs() < 1e-4,
        "{}",
        contested.confidence
    );
    let plain = confidence("The plugin shows an error.");
    assert_eq!(plain.queue, "tech");
    assert!(plain.confidence > 0.99, "{}", plain.confidence);
}

#[test]
fn the_standing_is_unknown_when_a_signal_that_could_move_the_verdict_was_kept_by_nothing() {
    let e = engine_with(STANDING);
    let standing = |body: &str| features(&e, body).standing_unknown;
    assert_eq!(standing("The plugin shows an error."), 1.0);
    assert_eq!(
        standing("The plugin in our membership shows an error."),
        0.0,
        "a member"
    );
    assert_eq!(
        standing("Before we sign: does the plugin work?"),
        0.0,
        "a prospect"
    );
    assert_eq!(standing("The invoice is wrong."), 0.0, "no signal moves billing");
    assert_eq!(
        features(&engine(), "The plugin shows an error.").standing_unknown,
        0.0,
        "a ruleset without such a signal"
    );
}

#[test]
fn the_language_read_from_the_scan_s_folds_is_the_language_of_the_sample() {
    let e = engine();
    let long = "Wir haben eine Frage zu unserer Rechnung und der Lastschrift für März. ".repeat(20);
    let cases: Vec<(String, String, String)> = vec![
        ("Rechnung".into(), long.clone(), String::new()),
        // The cut falls inside the subject, or inside a two-byte character of the body.
        (
            "Ä".repeat(600),
            "the invoice and the plan we have".into(),
            String::new(),
        ),
        (
            "x".repeat(1000),
            format!("{}ñ la factura de marzo", "é".repeat(20)),
            String::new(),
        ),
        // A short new text: the quoted text joins the sample.
        (String::new(), "ok, danke".into(), format!("> {long}")),
        (
            "Re: Facture".into(),
            "Merci".into(),
            "> Bonjour, nous avons une question sur la facture.".into(),
        ),
        (String::new(), String::new(), String::new()),
    ];
    for (subject, body, quoted) in cases {
        let m = Message {
            subject,
            body,
            quoted,
            ..Message::default()
        };
        let scanned = e.detailed("x", &m).verdict.language;
        assert_eq!(scanned, language_of(&m).unwrap_or_default(), "{:?}", m.subject);
    }
}

/// The score each fired rule of `subject` and `body` added, by rule id, and the echoed rules.
fn scores_and_echoes(subject: &str, body: &str) -> (HashMap<String, f64>, Vec<String>) {
    let e = engine();
    let t = Ticket {
        subject: subject.into(),
        body: body.into(),
        ..Ticket::default()
    };
    let d = e.detailed("x", &Message::from_ticket(&t));
    let id = |r: usize| e.ruleset().rules[r].id.clone();
    let scores = d.fired.iter().map(|f| (id(f.rule), f.score)).collect();
    (scores, d.echoes.iter().map(|&r| id(r)).collect())
}

#[test]
fn a_reply_that_names_its_threads_topic_in_narrative_text_counts_it_at_the_echo_factor() {
    let body = "Thanks, the invoice arrived. The API shows an error in the checkout, what can we do?";
    // The same new text in a reply to another thread: the invoice is narrative, counted in full.
    let (other, none) = scores_and_echoes("Re: Webinar", body);
    let (reply, echoes) = scores_and_echoes("Re: Invoice 2025-0412", body);
    assert!(none.is_empty(), "{none:?}");
    assert_eq!(echoes, ["billing.invoice"]);
    let (o, r) = (other["billing.invoice"], reply["billing.invoice"]);
    assert!(
        (r - o * structure::ECHO_FACTOR).abs() < 1e-9,
        "other thread {o}, invoice thread {r}"
    );
    // The new question is not the thread's: its evidence is untouched.
    assert_eq!(other["tech.two_of"], reply["tech.two_of"]);
}

#[test]
fn the_threads_topic_asked_about_again_is_no_echo() {
    let (_, echoes) = scores_and_echoes(
        "Re: Invoice 2025-0412",
        "Could you send the invoice again as a PDF?",
    );
    assert!(echoes.is_empty(), "{echoes:?}");
}

#[test]
fn a_topic_the_reply_subject_does_not_support_is_no_echo() {
    let (_, echoes) = scores_and_echoes("Re: Plugin update", "Thanks, the invoice arrived.");
    assert!(echoes.is_empty(), "{echoes:?}");
}

#[test]
fn a_term_listed_twice_in_a_condition_counts_as_one_term() {
    let score = |extra: &str, rule: &str| {
        let e = engine_with(extra);
        let t = Ticket {
            body: "The widget shows nothing in the iframe.".into(),
            ..Ticket::default()
        };
        let d = e.detailed("x", &Message::from_ticket(&t));
        d.fired
            .iter()
            .find(|f| e.ruleset().rules[f.rule].id == rule)
            .map(|f| f.score)
    };
    let once = score(
        "\n[[rule]]\nid = \"tech.widget\"\nqueue = \"tech\"\nweight = 1.0\nany = [\"widget\", \"iframe\"]\n",
        "tech.widget",
    );
    let twice = score(
        "\n[[rule]]\nid = \"tech.widget\"\nqueue = \"tech\"\nweight = 1.0\nany = [\"widget\", \"Widget\", \"iframe\"]\n",
        "tech.widget",
    );
    assert!(once.is_some());
    assert_eq!(once, twice);
    // One word found does not make two distinct terms.
    let at_least = score(
        "\n[[rule]]\nid = \"tech.two\"\nqueue = \"tech\"\nweight = 1.0\nat_least = 2\nof = [\"widget\", \"widget\", \"banner\"]\n",
        "tech.two",
    );
    assert_eq!(at_least, None);
}

#[test]
fn a_word_extent_widens_a_span_only_where_it_cuts_a_word() {
    let text = "Odp: Faktura 2025-0412";
    // A prefix term's hit ("Faktur") is the word it begins.
    assert_eq!(super::word_extent(text, 5, 11), (5, 12));
    // A reply prefix that ends at the space before a word does not take the word in.
    assert_eq!(super::word_extent(text, 0, 5), (0, 5));
    // Mid-word at both ends, across a non-ASCII letter.
    assert_eq!(super::word_extent("Prüfbericht", 1, 4), (0, "Prüfbericht".len()));
}

#[test]
fn a_reply_subject_word_that_stands_only_inside_a_longer_term_supports_no_echo() {
    // "invoice" in "Re: Invoice portal error" is part of the portal's name: the thread is the
    // portal's, so the new text's narrative about an invoice is no echo of it.
    let e = engine_with(
        "\n[[rule]]\nid = \"tech.portal\"\nqueue = \"tech\"\nweight = 2.0\nany = [\"invoice portal\", \"invoice archive\"]\n\
         \n[[rule]]\nid = \"tech.page\"\nqueue = \"tech\"\nweight = 1.0\nany = ['/\\bsee (\\S+ ){0,3}page\\b/']\n",
    );
    let body = "The invoice from March arrived twice. Could you check the duplicate?";
    let echoes = |subject: &str| {
        let t = Ticket {
            subject: subject.into(),
            body: body.into(),
            ..Ticket::default()
        };
        let d = e.detailed("x", &Message::from_ticket(&t));
        d.echoes
            .iter()
            .map(|&r| e.ruleset().rules[r].id.clone())
            .collect::<Vec<_>>()
    };
    assert!(echoes("Re: Invoice portal error").is_empty());
    // Each occurrence on its own: twice, each time inside a longer term, is never alone.
    assert!(echoes("Re: Invoice portal and invoice archive").is_empty());
    // A regex's match spans a gap of any words: it gives none of them its meaning.
    assert_eq!(echoes("Re: see the invoice page"), ["billing.invoice"]);
    // The same word standing on its own in the subject is the thread's topic.
    assert_eq!(
        echoes("Re: Invoice portal error, and the invoice"),
        ["billing.invoice"]
    );
}

#[test]
fn a_forward_whose_new_text_asks_nothing_keeps_its_evidence_in_full() {
    let body = "Forwarding the invoice we received last week, it was charged twice.";
    let (other, _) = scores_and_echoes("Fwd: Webinar", body);
    let (forward, echoes) = scores_and_echoes("Fwd: Invoice 2025-0412", body);
    assert!(echoes.is_empty(), "{echoes:?}");
    assert_eq!(forward["billing.invoice"], other["billing.invoice"]);
}

#[test]
fn a_signal_collecting_the_largest_amount_discounts_every_topic_but_passes_on_only_the_largest() {
    let signal = |collect: &str| {
        engine_with(&format!(
            r#"
[[signal]]
id = "curious"
any = ["just curious"]
{collect}
moves = [{{ from = "billing", to = "general", share = 0.4 }}, {{ from = "tech", to = "general", share = 0.4 }}]
"#
        ))
    };
    let scores = |engine: &Engine| -> HashMap<String, f64> {
        let message = Message::from_ticket(&Ticket {
            body: "Just curious. The plugin, and our vat number.".into(),
            ..Ticket::default()
        });
        let verdict = engine.classify("t", &message);
        verdict.ranking.into_iter().map(|r| (r.queue, r.score)).collect()
    };
    let before = scores(&engine());
    let (tech, billing) = (before["tech"], before["billing"]);
    assert!(tech > billing && billing > 0.0, "{before:?}");

    // The sum: general gets both amounts, and outweighs the topic the message is about.
    let sum = scores(&signal(""));
    assert!((sum["general"] - 0.4 * (tech + billing)).abs() < 0.01, "{sum:?}");
    assert!(sum["general"] > sum["tech"], "{sum:?}");

    // The largest: both topics give up their share, general gets only tech's.
    let largest = scores(&signal("collect = \"largest\""));
    assert!((largest["general"] - 0.4 * tech).abs() < 0.01, "{largest:?}");
    assert!((largest["tech"] - 0.6 * tech).abs() < 0.01, "{largest:?}");
    assert!((largest["billing"] - 0.6 * billing).abs() < 0.01, "{largest:?}");
    assert!(largest["tech"] > largest["general"], "{largest:?}");
}

#[test]
fn a_long_term_list_finds_its_terms_by_blocks_and_keeps_the_order_written() {
    // `tech.reversed` interns w39…w20 first, so in `billing.long` the written order (w0…w39)
    // is not the order of the engine's ids: the decisive hit of two equal ones is the first
    // written, and a term listed twice is one term.
    let words =
        |range: std::ops::Range<usize>| -> Vec<String> { range.map(|i| format!("\"w{i}x\"")).collect() };
    let reversed: Vec<String> = words(20..40).into_iter().rev().collect();
    let extra = format!(
        "[[rule]]\nid = \"tech.reversed\"\nqueue = \"tech\"\nweight = 0.5\nany = [{}]\n\n\
         [[rule]]\nid = \"billing.long\"\nqueue = \"billing\"\nweight = 2.0\nany = [{}, \"w3x\"]\n",
        reversed.join(", "),
        words(0..40).join(", ")
    );
    let e = engine_with(&extra);
    let hit = |body: &str| -> (String, f64) {
        let message = Message::from_ticket(&Ticket {
            body: body.into(),
            ..Ticket::default()
        });
        let verdict = e.classify("t", &message);
        let h = verdict
            .hits
            .into_iter()
            .find(|h| h.rule == "billing.long")
            .expect("billing.long fires");
        (h.matched, h.weight)
    };
    let (matched, one) = hit("Note w25x here.");
    assert_eq!(matched, "w25x");
    let (matched, two) = hit("Note w25x and w3x here.");
    assert_eq!(matched, "w3x", "the first written of two equal hits decides");
    // w3x is listed twice: found once, it is one term (no breadth bonus of its own).
    let (_, alone) = hit("Note w3x here.");
    assert!((alone - one).abs() < 1e-9, "{alone} vs {one}");
    assert!((two - one * 1.25).abs() < 1e-9, "{two} vs {one}");
}

#[test]
fn with_collect_largest_a_tie_passes_on_the_first_move_written_and_drops_the_other() {
    let e = engine_with(
        r#"
[[signal]]
id = "curious"
any = ["just curious"]
collect = "largest"
moves = [{ from = "billing", to = "general", share = 0.4 }, { from = "tech", to = "general", share = 0.4 }]
"#,
    );
    let message = Message::from_ticket(&Ticket {
        body: "Just curious. Our vat number, and an api error.".into(),
        ..Ticket::default()
    });
    let verdict = e.classify("t", &message);
    let score = |q: &str| {
        verdict
            .ranking
            .iter()
            .find(|r| r.queue == q)
            .map_or(0.0, |r| r.score)
    };
    assert!(
        (score("billing") - score("tech")).abs() < 1e-9,
        "{:?}",
        verdict.ranking
    );
    assert!(
        (score("general") - 0.4 / 0.6 * score("tech")).abs() < 0.01,
        "{:?}",
        verdict.ranking
    );
    let moved: Vec<(String, f64)> = verdict
        .hits
        .iter()
        .filter(|h| h.rule == "curious")
        .map(|h| (h.queue.clone(), h.weight))
        .collect();
    assert_eq!(moved.len(), 2, "{moved:?}");
    assert!(moved.iter().any(|(q, w)| q == "general" && *w > 0.0), "{moved:?}");
    assert!(
        moved.iter().any(|(q, w)| q == "tech" && *w < 0.0),
        "billing is written first: {moved:?}"
    );
}
