//! Candidate terms: which words and phrases are characteristic of a queue.
//!
//! Terms are counted per document (a word said five times in one ticket is one ticket's
//! evidence) and per language group, then ranked per queue by the z-score of their log-odds
//! ratio against every other queue, with an informative Dirichlet prior (Monroe, Colaresi and
//! Quinn 2008, "Fightin' words"). The prior is the corpus' own term distribution, so rare terms
//! are pulled towards "no difference" and a term seen four times cannot outrank one seen four
//! hundred times on luck.

use std::collections::HashMap;

use rayon::prelude::*;

use super::corpus::{language_of, terms_of};
use crate::message::Message;

/// Weight of the prior, as a share of the group's term occurrences.
const PRIOR_SHARE: f64 = 0.01;
/// History is multilingual when its second language has at least this share of the records.
const SECOND_LANGUAGE_SHARE: f64 = 0.1;
/// In multilingual history, terms are counted for the languages with this share of records.
const GROUP_SHARE: f64 = 0.01;

/// Every term worth counting, and which document holds which.
#[derive(Debug, Clone)]
pub(crate) struct Vocabulary {
    /// Language groups: `None` is "every language" (a monolingual corpus).
    pub groups: Vec<Option<String>>,
    /// Each key's group and folded term.
    pub keys: Vec<(u16, String)>,
    /// For each document, its keys, sorted.
    pub docs: Vec<Vec<u32>>,
}

/// A term chosen for a queue.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Candidate {
    /// The key (group and term) in the [`Vocabulary`].
    pub key: u32,
    /// The queue it is characteristic of.
    pub queue: usize,
    /// Documents of that queue holding it.
    pub support: u32,
    /// Documents holding it, in any queue.
    pub documents: u32,
    /// The log-odds z-score.
    pub z: f64,
}

/// What makes a term a candidate.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Criteria {
    pub min_support: u32,
    pub min_precision: f64,
    pub max_per_queue: usize,
}

impl Vocabulary {
    /// Collects the terms of every document, keeping those in at least `min_support` of them.
    pub fn build(messages: &[&Message], min_support: u32) -> Vocabulary {
        let per_doc: Vec<(Option<String>, Vec<String>)> = messages
            .par_iter()
            .map(|m| (language_of(m), terms_of(m)))
            .collect();
        let mut languages: HashMap<&str, usize> = HashMap::new();
        for (l, _) in &per_doc {
            *languages.entry(l.as_deref().unwrap_or("")).or_default() += 1;
        }
        // Detection misreads some short texts; only a real second language (a tenth of the
        // history) makes term counts, and rules, per language.
        let mut shares: Vec<(&str, usize)> = languages
            .iter()
            .filter(|(l, _)| !l.is_empty())
            .map(|(l, n)| (*l, *n))
            .collect();
        shares.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
        let n = per_doc.len() as f64;
        let monolingual = shares
            .get(1)
            .is_none_or(|&(_, second)| (second as f64) < SECOND_LANGUAGE_SHARE * n);
        tracing::info!(?shares, monolingual, "learn: languages");
        let mut groups: Vec<Option<String>> = if monolingual {
            vec![None]
        } else {
            let mut langs: Vec<String> = shares
                .iter()
                .filter(|&&(_, count)| count as f64 >= GROUP_SHARE * n && count as u32 >= min_support)
                .map(|(l, _)| l.to_string())
                .collect();
            langs.sort();
            langs.into_iter().map(Some).collect()
        };
        if groups.is_empty() {
            groups.push(None);
        }
        let group_of = |l: &Option<String>| -> Option<u16> {
            if monolingual {
                return Some(0);
            }
            groups.iter().position(|g| g == l).map(|g| g as u16)
        };
        let mut counts: HashMap<(u16, &str), u32> = HashMap::new();
        for (l, terms) in &per_doc {
            if let Some(g) = group_of(l) {
                for t in terms {
                    *counts.entry((g, t.as_str())).or_default() += 1;
                }
            }
        }
        let mut kept: Vec<(u16, &str)> = counts
            .into_iter()
            .filter(|&(_, n)| n >= min_support.max(1))
            .map(|(k, _)| k)
            .collect();
        kept.sort_unstable();
        let ids: HashMap<(u16, &str), u32> = kept.iter().enumerate().map(|(i, &k)| (k, i as u32)).collect();
        let docs = per_doc
            .iter()
            .map(|(l, terms)| match group_of(l) {
                Some(g) => {
                    let mut keys: Vec<u32> = terms
                        .iter()
                        .filter_map(|t| ids.get(&(g, t.as_str())).copied())
                        .collect();
                    keys.sort_unstable();
                    keys
                }
                None => Vec::new(),
            })
            .collect();
        let keys = kept.into_iter().map(|(g, t)| (g, t.to_string())).collect();
        Vocabulary { groups, keys, docs }
    }

    /// Counts, per key and queue, the documents of `subset` holding the key.
    ///
    /// `labels[d]` is document `d`'s queue.
    pub fn count(&self, labels: &[usize], subset: &[usize], queues: usize) -> Counts {
        let mut counts = vec![0u32; self.keys.len() * queues];
        for &d in subset {
            for &k in &self.docs[d] {
                counts[k as usize * queues + labels[d]] += 1;
            }
        }
        Counts { queues, counts }
    }

    /// The candidates characteristic of each queue: per group and queue, at most
    /// `criteria.max_per_queue` terms, best z-score first.
    pub fn select(&self, c: &Counts, criteria: Criteria) -> Vec<Candidate> {
        let (queues, counts) = (c.queues, &c.counts);
        // Term occurrences per group and queue: the denominators of the log-odds.
        let mut mass = vec![vec![0f64; queues]; self.groups.len()];
        for (k, (g, _)) in self.keys.iter().enumerate() {
            for q in 0..queues {
                mass[*g as usize][q] += counts[k * queues + q] as f64;
            }
        }
        let mut out = Vec::new();
        for (g, group_mass) in mass.iter().enumerate() {
            let total: f64 = group_mass.iter().sum();
            if total == 0.0 {
                continue;
            }
            let alpha0 = PRIOR_SHARE * total;
            let keys: Vec<usize> = (0..self.keys.len())
                .filter(|&k| self.keys[k].0 as usize == g)
                .collect();
            let mut per_queue: Vec<Vec<Candidate>> = (0..queues)
                .into_par_iter()
                .map(|q| {
                    let mut found = Vec::new();
                    let (nq, nr) = (group_mass[q], total - group_mass[q]);
                    for &k in &keys {
                        let row = &counts[k * queues..(k + 1) * queues];
                        let (yq, yw) = (row[q] as f64, row.iter().sum::<u32>() as f64);
                        // Support counts every record holding the term: a term frequent in
                        // every queue still tells them apart in combination, and the fit (not
                        // this filter) decides what it is worth.
                        if yw < criteria.min_support as f64 || yq == 0.0 || yq / yw < criteria.min_precision {
                            continue;
                        }
                        let yr = yw - yq;
                        let a = alpha0 * yw / total;
                        let delta = ((yq + a) / (nq + alpha0 - yq - a)).ln()
                            - ((yr + a) / (nr + alpha0 - yr - a)).ln();
                        let z = delta / (1.0 / (yq + a) + 1.0 / (yr + a)).sqrt();
                        if z > 0.0 {
                            found.push(Candidate {
                                key: k as u32,
                                queue: q,
                                support: row[q],
                                documents: yw as u32,
                                z,
                            });
                        }
                    }
                    found.sort_by(|a, b| b.z.total_cmp(&a.z).then(a.key.cmp(&b.key)));
                    found.truncate(criteria.max_per_queue);
                    found
                })
                .collect();
            for found in &mut per_queue {
                out.append(found);
            }
        }
        out
    }
}

/// Documents holding each key, per queue.
#[derive(Debug, Clone)]
pub(crate) struct Counts {
    pub queues: usize,
    /// `counts[key * queues + queue]`.
    pub counts: Vec<u32>,
}

impl Counts {
    /// The counts of key `k`, one per queue.
    pub fn row(&self, k: u32) -> &[u32] {
        let k = k as usize;
        &self.counts[k * self.queues..(k + 1) * self.queues]
    }
}
