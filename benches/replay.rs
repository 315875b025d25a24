//! Replay throughput: 200,000 realistic tickets through the whole pipeline (read, decode,
//! classify on all cores, serialise, evaluate), written to a sink.
//!
//! The tickets are made from the dev corpus: each copy gets its own id, a varied subject and a
//! body that sometimes borrows a sentence from another ticket of the same queue, so the engine
//! sees realistic, not identical, text. Run with `cargo bench --bench replay`; set
//! `REPLAY_BENCH_TICKETS` to change the count.

use std::io::{BufRead, Write};
use std::path::Path;
use std::time::Instant;

use rayon::prelude::*;
use serde_json::Value;
use triage::replay::run::{self, Classifier, RunOptions};
use triage::replay::source::{Reader, SourceOptions};
use triage::replay::{Backend, Evaluation};
use triage::{Engine, RuleSet};

/// A deterministic generator (no dependency on a random crate).
struct Lcg(u64);

impl Lcg {
    fn next(&mut self, n: usize) -> usize {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        ((self.0 >> 33) % n as u64) as usize
    }
}

/// Writes `count` tickets derived from the dev corpus to `out` as JSONL.
fn generate(count: usize, out: &Path) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let file = std::fs::File::open(root.join("tests/data/dev/tickets.jsonl")).unwrap();
    let seeds: Vec<Value> = std::io::BufReader::new(file)
        .lines()
        .map(|l| serde_json::from_str(&l.unwrap()).unwrap())
        .collect();
    let sentences: Vec<Vec<String>> = seeds
        .iter()
        .map(|t| {
            t["body"]
                .as_str()
                .unwrap_or("")
                .split(['.', '\n'])
                .map(str::trim)
                .filter(|s| s.len() > 20)
                .map(String::from)
                .collect()
        })
        .collect();
    let mut rng = Lcg(42);
    let mut w = std::io::BufWriter::new(std::fs::File::create(out).unwrap());
    for i in 0..count {
        let s = rng.next(seeds.len());
        let mut t = seeds[s].clone();
        t["id"] = Value::from(format!("g{i:07}"));
        let subject = t["subject"].as_str().unwrap_or("").to_string();
        t["subject"] = Value::from(match rng.next(3) {
            0 => format!("AW: {subject}"),
            1 => format!("{subject} (#{})", 10_000 + rng.next(90_000)),
            _ => subject,
        });
        // Borrow a sentence from another ticket with the same label, now and then.
        if rng.next(2) == 0 {
            let same: Vec<usize> = (0..seeds.len())
                .filter(|&j| seeds[j]["label"] == t["label"])
                .collect();
            let other = &sentences[same[rng.next(same.len())]];
            if !other.is_empty() {
                let extra = &other[rng.next(other.len())];
                let body = format!("{}\n\n{extra}.", t["body"].as_str().unwrap_or(""));
                t["body"] = Value::from(body);
            }
        }
        writeln!(w, "{t}").unwrap();
    }
    w.flush().unwrap();
}

fn main() {
    let count: usize = std::env::var("REPLAY_BENCH_TICKETS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200_000);
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("tickets.jsonl");
    generate(count, &input);
    let bytes = std::fs::metadata(&input).unwrap().len();

    let rules = Path::new(env!("CARGO_MANIFEST_DIR")).join("rules");
    let engine = Engine::new(RuleSet::load(&rules).unwrap()).unwrap();
    let queues: Vec<String> = engine.ruleset().queues.iter().map(|q| q.id.clone()).collect();
    let classifier = Classifier {
        backend: Backend::Local(engine),
        candidate: None,
        limits: Default::default(),
    };
    // The engine alone on the same tickets (decoded up front, classified on all cores): the
    // ceiling the pipeline can reach, so the report can tell its overhead from the engine's cost.
    let engine_only = {
        let Backend::Local(engine) = &classifier.backend else {
            unreachable!()
        };
        let reader = Reader::open(std::slice::from_ref(&input), SourceOptions::default()).unwrap();
        let messages: Vec<(String, triage::Message)> = reader
            .records()
            .take(50_000)
            .map(|r| {
                let r = r.unwrap();
                let triage::replay::Payload::Ticket(t) = &r.payload else {
                    unreachable!()
                };
                (r.id, triage::Message::from_ticket(t))
            })
            .collect();
        let started = Instant::now();
        let n: usize = messages
            .par_iter()
            .map(|(id, m)| engine.classify(id, m).hits.len().min(1))
            .sum();
        std::hint::black_box(n);
        messages.len() as f64 / started.elapsed().as_secs_f64()
    };
    println!(
        "engine alone: {engine_only:.0} tickets/s on {} threads ({:.1} µs per ticket per thread)",
        rayon::current_num_threads(),
        1e6 * rayon::current_num_threads() as f64 / engine_only
    );
    // Hostile input: 1 GiB of blank lines, gzip-compressed (it took 287 s when each blank line
    // went through the line reader; reading them is now a scan of the decompressed bytes).
    {
        use flate2::{Compression, write::GzEncoder};
        let blank = dir.path().join("blank.jsonl.gz");
        let mut enc = GzEncoder::new(std::fs::File::create(&blank).unwrap(), Compression::fast());
        let chunk = vec![b'\n'; 1 << 20];
        for _ in 0..1024 {
            enc.write_all(&chunk).unwrap();
        }
        enc.write_all(b"{\"id\":\"last\",\"subject\":\"Rechnung\"}\n")
            .unwrap();
        enc.finish().unwrap();
        let started = Instant::now();
        let reader = Reader::open(std::slice::from_ref(&blank), SourceOptions::default()).unwrap();
        let records = reader.records().count();
        assert_eq!(records, 1);
        println!(
            "blank lines: 1 GiB (gzip) read in {:.2} s, {records} record",
            started.elapsed().as_secs_f64()
        );
    }
    for round in 1..=3 {
        let reader = Reader::open(std::slice::from_ref(&input), SourceOptions::default()).unwrap();
        let mut evaluation = Evaluation::new(queues.clone(), None);
        let started = Instant::now();
        let stats = run::run(
            reader,
            &classifier,
            &RunOptions::default(),
            &mut std::io::sink(),
            |o| {
                evaluation.add(o);
                Ok(())
            },
        )
        .unwrap();
        let secs = started.elapsed().as_secs_f64();
        assert_eq!(stats.total as usize, count);
        let summary = evaluation.summary();
        println!(
            "replay round {round}: {count} tickets ({:.0} MiB) on {} threads in {secs:.2} s = {:.0} tickets/s (accuracy {:.3})",
            bytes as f64 / 1048576.0,
            rayon::current_num_threads(),
            count as f64 / secs,
            summary.accuracy.unwrap_or(f64::NAN)
        );
    }
}
