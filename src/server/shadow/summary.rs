//! Agreement between the live and the shadow ruleset, per queue, for one pair of versions.
//!
//! A summary describes one live version against one shadow version: when either ruleset is
//! reloaded a new one starts (see `Shared::summary`), so the figures always say how the
//! ruleset being tried agrees with the one deciding now.

use std::collections::BTreeMap;
use std::time::SystemTime;

use serde_json::{Value, json};

use super::super::state::rfc3339;

/// Most disagreement pairs listed, the most frequent first.
pub const TOP_PAIRS: usize = 10;

/// Counts for one pair of versions.
#[derive(Debug, Clone, PartialEq)]
pub struct Summary {
    /// The live ruleset's version.
    pub live_version: String,
    /// The shadow ruleset's version.
    pub shadow_version: String,
    /// When these counts began (start, or the reload that made this pair).
    pub since: SystemTime,
    /// Messages classified by both.
    pub compared: u64,
    /// Of them, routed to the same queue.
    pub agreed: u64,
    /// Per queue: how often each side chose it, and both did.
    queues: BTreeMap<String, QueueCounts>,
    /// Disagreements by (live queue, shadow queue).
    pairs: BTreeMap<(String, String), u64>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq)]
struct QueueCounts {
    live: u64,
    shadow: u64,
    agreed: u64,
}

fn rate(n: u64, d: u64) -> Value {
    if d == 0 {
        Value::Null
    } else {
        json!(n as f64 / d as f64)
    }
}

impl Summary {
    /// An empty summary for a pair of versions, starting now.
    pub fn new(live_version: String, shadow_version: String) -> Summary {
        Summary {
            live_version,
            shadow_version,
            since: SystemTime::now(),
            compared: 0,
            agreed: 0,
            queues: BTreeMap::new(),
            pairs: BTreeMap::new(),
        }
    }

    /// Counts one message the live ruleset routed to `live` and the shadow to `shadow`.
    pub fn add(&mut self, live: &str, shadow: &str) {
        self.compared += 1;
        self.queues.entry(live.to_string()).or_default().live += 1;
        self.queues.entry(shadow.to_string()).or_default().shadow += 1;
        if live == shadow {
            self.agreed += 1;
            self.queues.entry(live.to_string()).or_default().agreed += 1;
        } else {
            *self
                .pairs
                .entry((live.to_string(), shadow.to_string()))
                .or_default() += 1;
        }
    }

    /// The summary as `GET /shadow` shows it: totals, then per queue (the live ruleset's
    /// busiest first) how often each side chose it, how often both did and the agreement rate
    /// (`agreed / live`), then the most frequent disagreements.
    pub fn to_json(&self) -> Value {
        let mut queues: Vec<(&String, &QueueCounts)> = self.queues.iter().collect();
        queues.sort_by(|a, b| b.1.live.cmp(&a.1.live).then_with(|| a.0.cmp(b.0)));
        let queues: Vec<Value> = queues
            .into_iter()
            .map(|(queue, c)| {
                json!({
                    "queue": queue,
                    "live": c.live,
                    "shadow": c.shadow,
                    "agreed": c.agreed,
                    "agreement": rate(c.agreed, c.live),
                })
            })
            .collect();
        let mut pairs: Vec<(&(String, String), &u64)> = self.pairs.iter().collect();
        pairs.sort_by(|a, b| b.1.cmp(a.1).then_with(|| a.0.cmp(b.0)));
        let disagreements: Vec<Value> = pairs
            .into_iter()
            .take(TOP_PAIRS)
            .map(|((from, to), count)| json!({ "from": from, "to": to, "count": count }))
            .collect();
        json!({
            "live_version": self.live_version,
            "shadow_version": self.shadow_version,
            "since": rfc3339(self.since),
            "compared": self.compared,
            "agreed": self.agreed,
            "disagreed": self.compared - self.agreed,
            "agreement": rate(self.agreed, self.compared),
            "queues": queues,
            "disagreements": disagreements,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn summary(pairs: &[(&str, &str)]) -> Value {
        let mut s = Summary::new("live".into(), "shadow".into());
        for (live, shadow) in pairs {
            s.add(live, shadow);
        }
        s.to_json()
    }

    #[test]
    fn an_empty_summary_has_no_rates() {
        let s = summary(&[]);
        assert_eq!(s["compared"], 0);
        assert!(s["agreement"].is_null());
        assert_eq!(s["queues"], json!([]));
        assert_eq!(s["disagreements"], json!([]));
    }

    #[test]
    fn agreement_is_counted_per_live_queue() {
        let s = summary(&[
            ("contract", "contract"),
            ("contract", "legal"),
            ("contract", "contract"),
            ("sales", "sales"),
        ]);
        assert_eq!((s["compared"].as_u64(), s["agreed"].as_u64()), (Some(4), Some(3)));
        assert_eq!(s["disagreed"], 1);
        assert_eq!(s["agreement"], 0.75);
        let contract = &s["queues"][0];
        assert_eq!(contract["queue"], "contract");
        assert_eq!(
            (contract["live"].as_u64(), contract["shadow"].as_u64()),
            (Some(3), Some(2))
        );
        assert_eq!(contract["agreement"].as_f64().unwrap(), 2.0 / 3.0);
        // A queue only the shadow chose has no live agreement rate.
        let legal = s["queues"]
            .as_array()
            .unwrap()
            .iter()
            .find(|q| q["queue"] == "legal")
            .unwrap();
        assert_eq!(
            (legal["live"].as_u64(), legal["shadow"].as_u64()),
            (Some(0), Some(1))
        );
        assert!(legal["agreement"].is_null());
    }

    #[test]
    fn disagreements_list_the_most_frequent_pairs_first_and_at_most_ten() {
        let mut pairs = vec![("a", "b"); 3];
        pairs.extend([("c", "d"); 5]);
        for i in 0..12 {
            pairs.push((
                "x",
                [
                    "q0", "q1", "q2", "q3", "q4", "q5", "q6", "q7", "q8", "q9", "qa", "qb",
                ][i],
            ));
        }
        let s = summary(&pairs);
        let top = s["disagreements"].as_array().unwrap();
        assert_eq!(top.len(), TOP_PAIRS);
        assert_eq!(top[0], json!({"from": "c", "to": "d", "count": 5}));
        assert_eq!(top[1], json!({"from": "a", "to": "b", "count": 3}));
        assert_eq!(s["disagreed"], 20);
    }
}
