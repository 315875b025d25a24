//! Engine benchmarks: a typical ticket on the default ruleset, the same ticket on synthetic
//! rulesets of 100, 1,000 and 10,000 rules (the cost must stay nearly flat), and the 705 tickets
//! of the first blind programme's tuning half, a mix of the seven languages as written by people
//! who never saw the rules (one iteration classifies them all).

use std::hint::black_box;
use std::path::Path;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use triage::{Engine, Message, RuleSet, Ticket};

fn typical_ticket() -> Ticket {
    Ticket {
        id: "bench".into(),
        subject: "AW: Rechnung 2024-0312 – falsche USt-IdNr. und neue Bankverbindung".into(),
        body: "Guten Tag,\n\nin der Rechnung vom März steht noch unsere alte Umsatzsteuer-ID. Bitte \
               korrigieren Sie die Rechnung und buchen Sie künftig per SEPA-Lastschrift von unserem \
               neuen Konto ab (IBAN folgt separat). Außerdem ist das Trustbadge seit dem Update auf \
               Shopware 6.5 nicht mehr sichtbar – wer kann uns da helfen?\n\nVielen Dank!\n\n\
               Mit freundlichen Grüßen\nJana Hoffmann\nBuchhaltung, Gartenwelt Hoffmann GmbH\n\n\
               Am 02.04.2024 um 09:12 schrieb Trusted Shops <contract@trustedshops.com>:\n\
               > Sehr geehrte Frau Hoffmann,\n> anbei Ihre Rechnung für den Zeitraum März.\n\
               > Mit freundlichen Grüßen\n> Ihr Trusted Shops Team"
            .into(),
        from: "Jana Hoffmann <buchhaltung@gartenwelt-hoffmann.de>".into(),
        to: vec!["contract@trustedshops.com".into()],
        ..Ticket::default()
    }
}

/// The tickets of `tests/data/blind/tuning/tickets.jsonl` (JSONL, one ticket a line).
fn blind_sample() -> Vec<Ticket> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/blind/tuning/tickets.jsonl");
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .filter(|line| !line.trim().is_empty())
        .map(|line| serde_json::from_str(line).unwrap())
        .collect()
}

/// A deterministic pseudo-word generator (no dependency on a random crate).
struct Words(u64);

impl Words {
    fn next(&mut self) -> String {
        const SYLLABLES: [&str; 16] = [
            "ka", "lo", "mer", "tis", "vo", "ran", "qu", "ex", "bri", "sol", "den", "fa", "gu", "hil", "pra",
            "zet",
        ];
        let mut word = String::new();
        for _ in 0..3 {
            self.0 = self
                .0
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            word.push_str(SYLLABLES[(self.0 >> 60) as usize]);
        }
        word
    }
}

/// The default queues plus `n` synthetic rules of four terms each.
fn synthetic(n: usize) -> Engine {
    let queues = std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("rules/00-queues.toml")).unwrap();
    let ids = [
        "sales",
        "customer_success",
        "certification",
        "contract",
        "technical_success",
        "customer_care",
    ];
    let mut words = Words(n as u64);
    let mut rules = String::new();
    for i in 0..n {
        rules.push_str(&format!(
            "[[rule]]\nid = \"synthetic.{i}\"\nqueue = \"{}\"\nweight = 1.5\nany = [\"{}\", \"{}\", \"{} {}\", \"{}*\"]\n\n",
            ids[i % ids.len()],
            words.next(),
            words.next(),
            words.next(),
            words.next(),
            words.next()
        ));
    }
    let files = vec![
        ("00-queues.toml".to_string(), queues),
        ("synthetic.toml".to_string(), rules.into_bytes()),
    ];
    Engine::new(RuleSet::from_sources(Path::new("synthetic"), files).unwrap()).unwrap()
}

fn bench(c: &mut Criterion) {
    let ticket = typical_ticket();
    let bytes = (ticket.subject.len() + ticket.body.len()) as u64;

    let default = Engine::new(RuleSet::builtin()).unwrap();
    let mut group = c.benchmark_group("classify");
    group.throughput(Throughput::Bytes(bytes));
    group.bench_function("typical_ticket_default_rules", |b| {
        b.iter(|| default.classify("bench", &Message::from_ticket(black_box(&ticket))))
    });
    let message = Message::from_ticket(&ticket);
    group.bench_function("typical_ticket_default_rules_preparsed", |b| {
        b.iter(|| default.classify("bench", black_box(&message)))
    });
    for n in [100, 1_000, 10_000] {
        let engine = synthetic(n);
        group.bench_with_input(BenchmarkId::new("synthetic_rules", n), &message, |b, m| {
            b.iter(|| engine.classify("bench", black_box(m)))
        });
    }
    group.finish();

    let sample = blind_sample();
    let mut group = c.benchmark_group("classify_blind_sample");
    group.throughput(Throughput::Elements(sample.len() as u64));
    group.bench_function("parse_and_classify_705_tickets", |b| {
        b.iter(|| {
            for ticket in &sample {
                black_box(default.classify("bench", &Message::from_ticket(black_box(ticket))));
            }
        })
    });
    group.finish();

    c.bench_function("compile_default_ruleset", |b| {
        b.iter(|| Engine::new(RuleSet::builtin()).unwrap())
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
