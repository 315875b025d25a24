//! Email ingestion benchmarks: parse + classify a typical 5 KB multipart/alternative email and
//! a 200 KB one carrying a base64 attachment. Throughput is reported in bytes of raw message.

use std::hint::black_box;
use std::path::Path;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use triage::mail::{self, Limits};
use triage::{Engine, RuleSet};

const PARAGRAPH: &str = "Seit dem Update auf Shopware 6.5 wird das Trustbadge im Shop nicht mehr \
    angezeigt, und auf der Bestellabschlussseite fehlt die Käuferschutz-Box. In der Konsole steht \
    ein 403-Fehler für die Widget-Datei; die TSID ist im Plugin eingetragen. ";

/// A multipart/alternative reply: quoted-printable text and HTML, plus an attachment of
/// `attachment_bytes` (0 for none).
fn email(paragraphs: usize, attachment_bytes: usize) -> Vec<u8> {
    use base64::Engine as _;
    let text = PARAGRAPH.repeat(paragraphs);
    let mut raw = String::from(
        "Return-Path: <k.vogt@vogt-teehandel.de>\r\n\
         Received: from mail.vogt-teehandel.de (mail.vogt-teehandel.de [198.51.100.23])\r\n\
         \tby mx-in-02.ticketing.internal (Postfix) with ESMTPS id 4X0cQ1m7Lkz3vWn\r\n\
         From: =?utf-8?Q?Katrin_V=C3=B6gt?= <k.vogt@vogt-teehandel.de>\r\n\
         To: Trusted Shops Contract <contract@trustedshops.com>\r\n\
         Subject: =?utf-8?Q?AW:_Ihre_Rechnung_Nr._2024-DE-331907_=E2=80=93_Plugin?=\r\n\
         Date: Thu, 12 Sep 2024 08:37:49 +0200\r\n\
         Message-ID: <5b1e2c7a@vogt-teehandel.de>\r\n\
         MIME-Version: 1.0\r\n\
         Content-Type: multipart/mixed; boundary=\"mixed\"\r\n\r\n\
         --mixed\r\nContent-Type: multipart/alternative; boundary=\"alt\"\r\n\r\n\
         --alt\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n",
    );
    raw.push_str(&format!(
        "Hallo Frau Jansen,\r\n\r\n{text}\r\n\r\nViele Grüße\r\nKatrin Vogt\r\n\r\n\
         Am 10.09.2024 um 14:22 schrieb Contract <contract@trustedshops.com>:\r\n\
         > Die Lastschrift zur Rechnung wurde nicht eingelöst.\r\n\r\n"
    ));
    raw.push_str("--alt\r\nContent-Type: text/html; charset=utf-8\r\n\r\n");
    raw.push_str(&format!(
        "<html><body><p>Hallo Frau Jansen,</p><p>{text}</p><p>Viele Grüße<br>Katrin Vogt</p>\
         <blockquote>Die Lastschrift zur Rechnung wurde nicht eingelöst.</blockquote></body></html>\r\n"
    ));
    raw.push_str("--alt--\r\n");
    if attachment_bytes > 0 {
        let payload: Vec<u8> = (0..attachment_bytes).map(|i| (i * 7 % 251) as u8).collect();
        let encoded = base64::engine::general_purpose::STANDARD.encode(payload);
        raw.push_str(
            "--mixed\r\nContent-Type: application/pdf; name=\"screenshot.pdf\"\r\n\
             Content-Transfer-Encoding: base64\r\n\
             Content-Disposition: attachment; filename=\"screenshot.pdf\"\r\n\r\n",
        );
        for line in encoded.as_bytes().chunks(76) {
            raw.push_str(std::str::from_utf8(line).expect("base64 is ASCII"));
            raw.push_str("\r\n");
        }
    }
    raw.push_str("--mixed--\r\n");
    raw.into_bytes()
}

fn bench_mail(c: &mut Criterion) {
    let rules = Path::new(env!("CARGO_MANIFEST_DIR")).join("rules");
    let ruleset = RuleSet::load(&rules).unwrap_or_else(|_| RuleSet::builtin());
    let engine = Engine::new(ruleset).expect("ruleset compiles");
    let limits = Limits::default();
    let typical = email(9, 0);
    let large = email(9, 145 * 1024);
    let mut group = c.benchmark_group("mail");
    for (name, raw) in [("typical_5kb", &typical), ("attachment_200kb", &large)] {
        group.throughput(Throughput::Bytes(raw.len() as u64));
        group.bench_function(format!("parse_classify_{name}"), |b| {
            b.iter(|| {
                let message = mail::parse(black_box(raw), &limits).expect("parses");
                black_box(engine.classify("bench", &message))
            })
        });
        group.bench_function(format!("parse_only_{name}"), |b| {
            b.iter(|| mail::parse(black_box(raw), &limits).expect("parses"))
        });
    }
    group.finish();
}

/// HTML → text on 256 KB (one part's limit) of the shapes that used to make it quadratic, and
/// of ordinary mail HTML, for comparison: all must cost about the same per byte.
fn bench_hostile_html(c: &mut Criterion) {
    let size = 256 * 1024;
    let fill = |unit: &str| unit.repeat(size / unit.len());
    let ordinary = fill(&format!(
        "<div><p>{PARAGRAPH}</p><table><tr><td>Posten</td><td>19,99</td></tr></table></div>"
    ));
    let shapes = [
        ("ordinary", ordinary),
        ("self_closing_ul", fill("<ul/>x")),
        ("self_closing_div", fill("<div/>x")),
        ("stray_end_tags", fill("<span></b>x")),
        (
            "formatting_with_ids",
            (0..size / 16).map(|i| format!("<b id={i}>x<p>y")).collect(),
        ),
        ("nested_tables", fill("<table><tr><td>x")),
        ("list_items", fill("<li>x")),
    ];
    let mut group = c.benchmark_group("html_to_text");
    group.sample_size(10);
    for (name, html) in &shapes {
        group.throughput(Throughput::Bytes(html.len() as u64));
        group.bench_function(*name, |b| b.iter(|| mail::html::to_text(black_box(html))));
    }
    group.finish();
}

/// The 1,000-email sample of the public SpamAssassin corpus (every sixth file of its five
/// folders, in name order): parse + classify, in bytes of raw mail. Skipped with a message when
/// `../shared` is absent.
fn bench_public_sample(c: &mut Criterion) {
    let corpus = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/corpus/public/emails/spamassassin");
    let Ok(folders) = std::fs::read_dir(&corpus) else {
        eprintln!("skipped: {} is absent (the public corpus)", corpus.display());
        return;
    };
    let mut files: Vec<_> = folders
        .filter_map(Result::ok)
        .filter(|e| e.path().is_dir())
        .flat_map(|d| {
            std::fs::read_dir(d.path())
                .into_iter()
                .flatten()
                .filter_map(Result::ok)
        })
        .map(|e| e.path())
        .collect();
    files.sort();
    let sample: Vec<Vec<u8>> = files
        .iter()
        .step_by(6)
        .take(1000)
        .filter_map(|p| std::fs::read(p).ok())
        .collect();
    let bytes: usize = sample.iter().map(Vec::len).sum();
    let rules = Path::new(env!("CARGO_MANIFEST_DIR")).join("rules");
    let engine =
        Engine::new(RuleSet::load(&rules).unwrap_or_else(|_| RuleSet::builtin())).expect("ruleset compiles");
    let limits = Limits::default();
    let mut group = c.benchmark_group("public_sample");
    group.sample_size(10);
    group.throughput(Throughput::Bytes(bytes as u64));
    group.bench_function(format!("parse_classify_{}_emails", sample.len()), |b| {
        b.iter(|| {
            for raw in &sample {
                if let Ok(message) = mail::parse(black_box(raw), &limits) {
                    black_box(engine.classify("bench", &message));
                }
            }
        })
    });
    group.finish();
}

criterion_group!(benches, bench_mail, bench_hostile_html, bench_public_sample);
criterion_main!(benches);
