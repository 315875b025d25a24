//! The runner: reads units on one thread, classifies chunks of them on all cores, writes the
//! results in input order.
//!
//! Memory is bounded by the chunk size: the reader runs at most [`QUEUED_CHUNKS`] chunks ahead
//! of the classifier, and a chunk holds at most [`RunOptions::chunk_records`] records or
//! [`RunOptions::chunk_bytes`] bytes of input. A thousand records (about 30 ms of work) keep
//! every core busy (rayon splits each chunk) at the same CPU cost per record as 4,096, with a
//! quarter of the records in flight; the output order stays the input order.

use std::io::Write;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use rayon::prelude::*;

use super::outcome::{Meta, Outcome};
use super::source::{Payload, Reader, Record, Unit};
use super::{ReplayError, Shard};
use crate::engine::Engine;
use crate::intake::intake;
use crate::mail::Limits;
use crate::message::Message;
use crate::server::client::{Client, Item};

/// How many chunks the reader may prepare while the classifier works.
const QUEUED_CHUNKS: usize = 2;

/// Where verdicts come from.
pub enum Backend {
    /// The in-process engine.
    Local(Engine),
    /// A running `triage serve`, over `ClassifyStream`.
    Remote(Client),
}

/// What classifies each record: the backend, and optionally a second ruleset to compare with.
pub struct Classifier {
    /// The ruleset (or server) whose verdicts are written.
    pub backend: Backend,
    /// The candidate ruleset of `--compare-rules`: always in process.
    pub candidate: Option<Engine>,
    /// Bounds on each message.
    pub limits: Limits,
}

/// Tuning and selection.
#[derive(Debug, Clone, Copy)]
pub struct RunOptions {
    /// Only this shard's records.
    pub shard: Option<Shard>,
    /// Most records per chunk.
    pub chunk_records: usize,
    /// Most input bytes per chunk (raw emails are large; tickets are not).
    pub chunk_bytes: usize,
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions {
            shard: None,
            chunk_records: 1024,
            chunk_bytes: 32 * 1024 * 1024,
        }
    }
}

/// Counts of a finished replay: `total == classified + errors`.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Stats {
    /// Records read (in this shard).
    pub total: u64,
    /// Records with a verdict.
    pub classified: u64,
    /// Error records.
    pub errors: u64,
    /// Wall time.
    pub elapsed: Duration,
}

/// Replays every record of `reader`: writes one line per record to `out` and shows each
/// outcome to `observe` (evaluation, progress, the changes file), in input order.
pub fn run(
    reader: Reader,
    classifier: &Classifier,
    options: &RunOptions,
    out: &mut (dyn Write + Send),
    mut observe: impl FnMut(&Outcome) -> Result<(), ReplayError> + Send,
) -> Result<Stats, ReplayError> {
    let started = Instant::now();
    let (tx, rx) = mpsc::sync_channel::<Vec<Unit>>(QUEUED_CHUNKS);
    // Writing and evaluating run on their own thread, one chunk behind classification, so
    // the workers never wait for the sequential part.
    let (done_tx, done_rx) = mpsc::sync_channel::<Vec<Outcome>>(1);
    let mut stats = std::thread::scope(|scope| {
        scope.spawn(move || {
            let mut chunk = Vec::new();
            let mut bytes = 0;
            for unit in reader {
                if options.shard.is_some_and(|s| !s.owns(unit.position)) {
                    continue;
                }
                bytes += unit.size();
                chunk.push(unit);
                if chunk.len() >= options.chunk_records || bytes >= options.chunk_bytes {
                    bytes = 0;
                    // The receiver is gone only when replay failed; stop reading then.
                    if tx.send(std::mem::take(&mut chunk)).is_err() {
                        return;
                    }
                }
            }
            if !chunk.is_empty() {
                let _ = tx.send(chunk);
            }
        });
        let writer = scope.spawn(move || {
            let mut stats = Stats::default();
            for outcomes in done_rx {
                for outcome in outcomes {
                    stats.total += 1;
                    if outcome.result.is_ok() {
                        stats.classified += 1;
                    } else {
                        stats.errors += 1;
                    }
                    out.write_all(outcome.line.as_bytes())
                        .map_err(ReplayError::Output)?;
                    out.write_all(b"\n").map_err(ReplayError::Output)?;
                    observe(&outcome)?;
                }
            }
            out.flush().map_err(ReplayError::Output)?;
            Ok::<Stats, ReplayError>(stats)
        });
        let mut classified = Ok(());
        for chunk in rx {
            match classifier.classify(chunk) {
                // A closed channel means the writer failed; its error is reported below.
                Ok(outcomes) => {
                    if done_tx.send(outcomes).is_err() {
                        break;
                    }
                }
                Err(e) => {
                    classified = Err(e);
                    break;
                }
            }
        }
        drop(done_tx);
        let written = writer.join().expect("the writer thread does not panic");
        classified.and(written)
    })?;
    stats.elapsed = started.elapsed();
    Ok(stats)
}

impl Classifier {
    /// Classifies one chunk, in parallel, keeping the order.
    pub fn classify(&self, chunk: Vec<Unit>) -> Result<Vec<Outcome>, ReplayError> {
        match &self.backend {
            Backend::Local(engine) => Ok(chunk.into_par_iter().map(|u| self.local(engine, u)).collect()),
            Backend::Remote(client) => {
                let prepared: Vec<Prepared> = chunk.into_par_iter().map(|u| self.prepare(u)).collect();
                remote(client, prepared)
            }
        }
    }

    fn local(&self, engine: &Engine, unit: Unit) -> Outcome {
        let record = match unit.decode() {
            Ok(r) => r,
            Err(bad) => return Outcome::failed(meta_of_bad(&bad), bad.error),
        };
        let (meta, payload, hint) = split(record);
        match message_of(&payload, hint.as_deref(), &self.limits) {
            Ok(message) => {
                let verdict = engine.classify(&meta.id, &message);
                let candidate = self.candidate.as_ref().map(|c| c.classify(&meta.id, &message));
                Outcome::classified(meta, &verdict, candidate.as_ref())
            }
            Err(error) => Outcome::failed(meta, error),
        }
    }

    /// Decodes a unit for the server, and classifies it under the candidate ruleset here.
    fn prepare(&self, unit: Unit) -> Prepared {
        let record = match unit.decode() {
            Ok(r) => r,
            Err(bad) => return Prepared::Failed(Outcome::failed(meta_of_bad(&bad), bad.error)),
        };
        let (meta, payload, hint) = split(record);
        let candidate = match &self.candidate {
            None => None,
            Some(engine) => match message_of(&payload, hint.as_deref(), &self.limits) {
                Ok(message) => Some(engine.classify(&meta.id, &message)),
                Err(error) => return Prepared::Failed(Outcome::failed(meta, error)),
            },
        };
        Prepared::Ready {
            meta,
            payload,
            hint,
            candidate,
        }
    }
}

/// A record ready to send to the server, or already failed here.
enum Prepared {
    /// Decoded; `candidate` is its verdict under `--compare-rules`.
    Ready {
        /// Where it is and what it claims.
        meta: Meta,
        /// Its content.
        payload: Payload,
        /// The caller's language hint.
        hint: Option<String>,
        /// Its verdict under the compared ruleset.
        candidate: Option<crate::verdict::Verdict>,
    },
    /// Could not be decoded.
    Failed(Outcome),
}

/// Classifies the prepared records on the server; records that failed here pass through.
fn remote(client: &Client, prepared: Vec<Prepared>) -> Result<Vec<Outcome>, ReplayError> {
    let items: Vec<Item<'_>> = prepared
        .iter()
        .filter_map(|p| match p {
            Prepared::Ready {
                meta, payload, hint, ..
            } => Some(Item {
                id: &meta.id,
                input: payload.input(),
                hint: hint.as_deref(),
            }),
            Prepared::Failed(_) => None,
        })
        .collect();
    let mut answers = client.classify(&items)?.into_iter();
    drop(items);
    Ok(prepared
        .into_iter()
        .map(|p| match p {
            Prepared::Failed(outcome) => outcome,
            Prepared::Ready { meta, candidate, .. } => match answers.next() {
                Some(Ok(verdict)) => Outcome::classified(meta, &verdict, candidate.as_ref()),
                Some(Err(error)) => Outcome::failed(meta, error),
                None => Outcome::failed(meta, "the server gave no answer".to_string()),
            },
        })
        .collect())
}

fn meta_of_bad(bad: &super::BadRecord) -> Meta {
    Meta {
        position: bad.position,
        id: bad.id.clone(),
        source: bad.source.clone(),
        label: None,
        language: None,
    }
}

fn split(record: Record) -> (Meta, Payload, Option<String>) {
    let meta = Meta {
        position: record.position,
        id: record.id,
        source: record.source,
        // Labels are compared as queue ids: `HR Support` is the queue `hr_support`.
        label: record.label.map(|l| crate::rules::queue_id(&l)),
        language: record.language,
    };
    (meta, record.payload, record.hint)
}

/// The message of a record, through the one intake the server uses (same limits, truncation
/// and language hint).
pub fn message_of(payload: &Payload, hint: Option<&str>, limits: &Limits) -> Result<Message, String> {
    intake(payload.input(), hint, limits).map_err(|e| e.to_string())
}
