//! The disagreement log: one JSON object per line, for a rule author to review.
//!
//! A record holds the message's id, the interface it came through, and per side the version,
//! queue, confidence, `needs_review` and the ids of the rules that fired; never subject, body,
//! addresses, headers or the matched text. Before a record would take the file past its limit
//! the file is renamed to `FILE.1` (replacing the previous one) and a new one is started, so
//! the log never holds much more than twice the limit on disk. The file is opened when the
//! first record is written, and again after a failure: a log that cannot be written costs the
//! records (counted in `triage_shadow_log_errors_total`), never the shadow or the live path.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use serde::Serialize;
use tracing::{debug, warn};

use super::super::state::rfc3339;
use super::Decision;

/// One disagreement.
#[derive(Debug, Serialize)]
pub struct Record<'a> {
    /// When the shadow classified it (RFC 3339, UTC).
    pub time: String,
    /// The caller's id.
    pub id: &'a str,
    /// The interface it came through (`Classify`, `ClassifyStream`, `http`, `milter`).
    pub interface: &'a str,
    /// The live decision.
    pub live: &'a Decision,
    /// The shadow decision.
    pub shadow: &'a Decision,
}

impl Record<'_> {
    /// Stamps a record with the time now.
    pub fn now<'a>(id: &'a str, interface: &'a str, live: &'a Decision, shadow: &'a Decision) -> Record<'a> {
        Record {
            time: rfc3339(SystemTime::now()),
            id,
            interface,
            live,
            shadow,
        }
    }
}

/// The log file, rotated at a size limit.
#[derive(Debug)]
pub struct Log {
    path: PathBuf,
    max_bytes: u64,
    /// The open file and its size, once opened.
    file: Option<(File, u64)>,
    /// True after a failure until a record is written again: one warning per outage, not one
    /// per record.
    failing: bool,
}

impl Log {
    /// A log at `path`, rotated before it grows past `max_bytes`.
    pub fn new(path: PathBuf, max_bytes: u64) -> Log {
        Log {
            path,
            max_bytes: max_bytes.max(1),
            file: None,
            failing: false,
        }
    }

    /// Where the log is written.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends one record; on failure the record is lost, counted and (once per outage)
    /// logged. Returns whether it was written.
    pub fn write(&mut self, record: &Record<'_>) -> bool {
        let mut line = serde_json::to_vec(record).expect("a record always serialises");
        line.push(b'\n');
        match self.append(&line) {
            Ok(()) => {
                self.failing = false;
                true
            }
            Err(e) => {
                self.file = None;
                metrics::counter!("triage_shadow_log_errors_total").increment(1);
                if self.failing {
                    debug!(path = %self.path.display(), "shadow log: {e}");
                } else {
                    warn!(path = %self.path.display(), "shadow log: records are lost until it can be written: {e}");
                    self.failing = true;
                }
                false
            }
        }
    }

    fn append(&mut self, line: &[u8]) -> std::io::Result<()> {
        let len = line.len() as u64;
        if let Some((_, size)) = &self.file
            && *size > 0
            && size + len > self.max_bytes
        {
            self.file = None;
            std::fs::rename(&self.path, rotated(&self.path))?;
        }
        if self.file.is_none() {
            let file = OpenOptions::new().create(true).append(true).open(&self.path)?;
            let size = file.metadata()?.len();
            self.file = Some((file, size));
            // A file left over from an earlier run may already be at the limit.
            if size > 0 && size + len > self.max_bytes {
                self.file = None;
                std::fs::rename(&self.path, rotated(&self.path))?;
                let file = OpenOptions::new().create(true).append(true).open(&self.path)?;
                self.file = Some((file, 0));
            }
        }
        let (file, size) = self.file.as_mut().expect("opened above");
        // One write per record: a reader following the file sees whole lines.
        file.write_all(line)?;
        *size += len;
        Ok(())
    }
}

/// `FILE.1` for `FILE`.
pub fn rotated(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(".1");
    PathBuf::from(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decision(queue: &str) -> Decision {
        Decision {
            version: "sha256:0".into(),
            queue: queue.into(),
            confidence: 0.9,
            needs_review: false,
            rules: vec![format!("{queue}.rule")],
        }
    }

    fn lines(path: &Path) -> Vec<serde_json::Value> {
        std::fs::read_to_string(path)
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    #[test]
    fn a_record_holds_ids_queues_confidences_and_rule_ids() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("shadow.jsonl");
        let mut log = Log::new(path.clone(), 1 << 20);
        let (live, shadow) = (decision("contract"), decision("legal"));
        assert!(log.write(&Record::now("4711", "http", &live, &shadow)));
        let records = lines(&path);
        assert_eq!(records.len(), 1);
        let r = &records[0];
        assert_eq!(r["id"], "4711");
        assert_eq!(r["interface"], "http");
        assert_eq!(r["live"]["queue"], "contract");
        assert_eq!(r["shadow"]["queue"], "legal");
        assert_eq!(r["shadow"]["confidence"], 0.9);
        assert_eq!(r["shadow"]["rules"], serde_json::json!(["legal.rule"]));
        let keys: Vec<&String> = r.as_object().unwrap().keys().collect();
        assert_eq!(keys, ["id", "interface", "live", "shadow", "time"]);
    }

    #[test]
    fn the_log_is_rotated_before_it_passes_its_limit() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("shadow.jsonl");
        let (live, shadow) = (decision("contract"), decision("legal"));
        let one = serde_json::to_vec(&Record::now("1", "http", &live, &shadow))
            .unwrap()
            .len() as u64
            + 1;
        let mut log = Log::new(path.clone(), one * 3);
        for i in 0..7 {
            assert!(log.write(&Record::now(&i.to_string(), "http", &live, &shadow)));
            assert!(std::fs::metadata(&path).unwrap().len() <= one * 3);
        }
        // 7 records, 3 per file: 0-2 were rotated away, 3-5 are in FILE.1, 6 in FILE.
        let ids = |p: &Path| {
            lines(p)
                .iter()
                .map(|r| r["id"].as_str().unwrap().to_string())
                .collect::<Vec<_>>()
        };
        assert_eq!(ids(&rotated(&path)), ["3", "4", "5"]);
        assert_eq!(ids(&path), ["6"]);
    }

    #[test]
    fn a_full_log_left_by_an_earlier_run_is_rotated_first() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("shadow.jsonl");
        std::fs::write(&path, "x".repeat(1000) + "\n").unwrap();
        let (live, shadow) = (decision("contract"), decision("legal"));
        let mut log = Log::new(path.clone(), 1000);
        assert!(log.write(&Record::now("1", "http", &live, &shadow)));
        assert_eq!(lines(&path).len(), 1);
        assert_eq!(std::fs::metadata(rotated(&path)).unwrap().len(), 1001);
    }

    #[test]
    fn an_unwritable_log_loses_the_record_and_recovers() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("missing").join("shadow.jsonl");
        let (live, shadow) = (decision("contract"), decision("legal"));
        let mut log = Log::new(path.clone(), 1 << 20);
        assert!(!log.write(&Record::now("1", "http", &live, &shadow)));
        std::fs::create_dir(dir.path().join("missing")).unwrap();
        assert!(log.write(&Record::now("2", "http", &live, &shadow)));
        assert_eq!(lines(&path).len(), 1);
    }
}
