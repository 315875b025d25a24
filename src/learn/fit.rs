//! The learning run: candidates per fold, features, cross-validated fits, the final fit.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use rayon::prelude::*;

use super::data::Data;
use super::features;
use super::model::{self, Model, Training};
use super::terms::{Candidate, Criteria, Vocabulary};
use super::{Corpus, Fold, LearnError, Learned, Options, QueueReport, RuleReport, Suggestion, Validation};
use crate::calibrate::{self, Sample};
use crate::message::Message;
use crate::rules::RuleSet;

/// Most words an example message is made of.
const EXAMPLE_WORDS: usize = 4;

/// See [`super::learn`].
pub(super) fn run(corpus: &Corpus, base: Option<&RuleSet>, options: &Options) -> Result<Learned, LearnError> {
    let queue_ids: Vec<String> = match base {
        Some(b) => b.queues.iter().map(|q| q.id.clone()).collect(),
        None => corpus.labels.keys().cloned().collect(),
    };
    let mut labels = Vec::new();
    let mut messages: Vec<&Message> = Vec::new();
    let mut unknown_labels = BTreeMap::new();
    for doc in &corpus.documents {
        match queue_ids.iter().position(|q| *q == doc.label) {
            Some(q) => {
                labels.push(q);
                messages.push(&doc.message);
            }
            None => *unknown_labels.entry(doc.label.clone()).or_insert(0u64) += 1,
        }
    }
    if labels.is_empty() {
        return Err(LearnError::NoLabelledRecords(
            corpus.labels.keys().cloned().collect(),
        ));
    }
    let (n, queues, k) = (labels.len(), queue_ids.len(), options.folds.max(2));
    tracing::info!(records = n, queues, "learn: counting terms");
    let vocab = Vocabulary::build(&messages, options.min_support);

    // Candidates for each fold from its training records, and from all of them (the last).
    let folds = calibrate::folds(n, k);
    let all: Vec<usize> = (0..n).collect();
    let criteria = Criteria {
        min_support: options.min_support,
        min_precision: options.min_precision,
        max_per_queue: options.max_terms_per_queue.unwrap_or(usize::MAX),
    };
    let selections: Vec<Vec<Candidate>> = (0..=k)
        .into_par_iter()
        .map(|f| {
            let train = if f < k { &folds[f].1 } else { &all };
            vocab.select(&vocab.count(&labels, train, queues), criteria)
        })
        .collect();

    let keys: Vec<u32> = selections
        .iter()
        .flatten()
        .map(|c| c.key)
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let rules = base.map_or(0, |b| b.rules.len());
    let probe: Vec<(Option<String>, String)> = keys
        .iter()
        .map(|&k| {
            let (g, term) = &vocab.keys[k as usize];
            (vocab.groups[*g as usize].clone(), term.clone())
        })
        .collect();
    tracing::info!(terms = probe.len(), "learn: computing features");
    let rows = features::extract(&messages, base, &queue_ids, &probe)?;
    let data = Data {
        base,
        labels,
        queues,
        feature: keys.iter().enumerate().map(|(i, &k)| (k, rules + i)).collect(),
        features: rules + keys.len(),
        rows,
        training: Training {
            l2: options.l2,
            iterations: options.iterations,
        },
        scale: base.map_or(1.0, |b| b.calibration.temperature),
        min_weight: options.min_weight,
        max_rules: options.max_rules,
    };

    tracing::info!(folds = k, "learn: cross-validating");
    let before = data.before();
    let outcomes: Vec<(Fold, Vec<(usize, Sample)>)> = folds
        .par_iter()
        .enumerate()
        .map(|(f, (test, train))| {
            let model = data.fit(&selections[f], train);
            let fallback = data.fallback(train);
            let mut fold = Fold {
                tested: test.len(),
                trained: train.len(),
                right_before: 0,
                right_after: 0,
                terms: selections[f]
                    .iter()
                    .map(|c| vocab.keys[c.key as usize].1.clone())
                    .collect(),
            };
            let mut samples = Vec::with_capacity(test.len());
            for &d in test {
                let gold = data.labels[d];
                let old = model::choose(&data.scores(&before, d), fallback);
                let scores = data.scores(&model, d);
                let chosen = model::choose(&scores, fallback);
                fold.right_before += usize::from(old == gold);
                fold.right_after += usize::from(chosen == gold);
                samples.push((
                    d,
                    Sample {
                        scores,
                        gold,
                        chosen,
                        features: Default::default(),
                    },
                ));
            }
            (fold, samples)
        })
        .collect();
    let mut predicted = vec![0; n];
    let mut samples = Vec::with_capacity(n);
    for (_, s) in &outcomes {
        for (d, sample) in s {
            predicted[*d] = sample.chosen;
            samples.push(sample.clone());
        }
    }
    let folds: Vec<Fold> = outcomes.into_iter().map(|(f, _)| f).collect();
    let ratio = |right: usize| right as f64 / n as f64;
    let validation = Validation {
        before: ratio(folds.iter().map(|f| f.right_before).sum()),
        after: ratio(folds.iter().map(|f| f.right_after).sum()),
        folds,
        predicted,
    };
    let temperature = calibrate::fit_temperature(&samples, data.scale);

    tracing::info!("learn: fitting on every record");
    let model = data.fit(&selections[k], &all);
    let fallback = data.fallback(&all);
    let counts = vocab.count(&data.labels, &all, queues);
    let mut hits = vec![vec![0u64; queues]; rules];
    for (d, row) in data.rows.iter().enumerate() {
        for &(f, _) in row.iter().take_while(|(f, _)| (*f as usize) < rules) {
            hits[f as usize][data.labels[d]] += 1;
        }
    }
    let mut existing: Vec<RuleReport> = hits
        .into_iter()
        .enumerate()
        .map(|(r, hits)| RuleReport {
            rule: r,
            suggested: weight(&model, r, base.map_or(0, |b| b.rules[r].queue)),
            hits,
        })
        .collect();
    // A term that is already a rule of the same queue has the same feature values as that
    // rule: its weight belongs to the rule, not to a second rule repeating it.
    let term_rules = base.map(features::term_rules).unwrap_or_default();
    let z: HashMap<(u32, usize), f64> = selections[k].iter().map(|c| ((c.key, c.queue), c.z)).collect();
    let mut suggestions = Vec::new();
    for key in selections[k].iter().map(|c| c.key).collect::<BTreeSet<_>>() {
        let (g, term) = &vocab.keys[key as usize];
        let row = counts.row(key);
        for q in 0..queues {
            let w = weight(&model, data.feature[&key], q);
            let languages: Vec<String> = vocab.groups[*g as usize].iter().cloned().collect();
            let same = term_rules.get(&(languages, term.clone())).and_then(|rules| {
                rules
                    .iter()
                    .find(|&&r| base.is_some_and(|b| b.rules[r].queue == q))
            });
            if let Some(&r) = same {
                existing[r].suggested = model::written_weight(existing[r].suggested + w, data.min_weight);
            } else if w != 0.0 {
                suggestions.push(Suggestion {
                    queue: q,
                    term: term.clone(),
                    language: vocab.groups[*g as usize].clone(),
                    weight: w,
                    support: row[q],
                    documents: row.iter().sum(),
                    z: z.get(&(key, q)).copied(),
                });
            }
        }
    }
    suggestions.sort_by(|a, b| {
        (a.queue, b.weight > 0.0)
            .cmp(&(b.queue, a.weight > 0.0))
            .then(b.weight.abs().total_cmp(&a.weight.abs()))
            .then(a.term.cmp(&b.term))
    });
    let mut records = vec![0u64; queues];
    for &q in &data.labels {
        records[q] += 1;
    }
    let examples = if base.is_none() {
        examples(&suggestions, queues, fallback)
    } else {
        Vec::new()
    };
    Ok(Learned {
        queues: queue_ids
            .iter()
            .zip(records)
            .map(|(id, records)| QueueReport {
                id: id.clone(),
                labels: corpus.labels.get(id).cloned().unwrap_or_default(),
                records,
            })
            .collect(),
        fallback,
        standalone: base.is_none(),
        records: n,
        unknown_labels,
        languages: vocab.groups.iter().flatten().cloned().collect(),
        existing,
        suggestions,
        validation,
        temperature,
        scale: data.scale,
        examples,
    })
}

fn weight(model: &Model, feature: usize, queue: usize) -> f64 {
    model
        .layout
        .index(feature, queue)
        .map_or(0.0, |i| model.weights[i])
}

/// One short message per queue made of its strongest terms, that the suggestions route there:
/// examples for `check-rules` that quote no record of the history.
fn examples(
    suggestions: &[Suggestion],
    queues: usize,
    fallback: usize,
) -> Vec<(usize, String, Option<String>)> {
    let mut out = Vec::new();
    for q in 0..queues {
        let mut strongest: Vec<&Suggestion> = suggestions
            .iter()
            .filter(|s| s.queue == q && s.weight > 0.0)
            .collect();
        strongest.sort_by(|a, b| b.weight.total_cmp(&a.weight));
        let Some(language) = strongest.first().map(|s| s.language.clone()) else {
            continue;
        };
        let words: Vec<&str> = strongest
            .iter()
            .filter(|s| s.language == language)
            .map(|s| s.term.as_str())
            .take(EXAMPLE_WORDS)
            .collect();
        for take in 1..=words.len() {
            let body = words[..take].join(" ");
            let message = Message {
                body: body.clone(),
                ..Message::default()
            };
            let present = super::corpus::terms_of(&message);
            let mut scores = vec![0.0; queues];
            for s in suggestions {
                if s.language == language && present.binary_search(&s.term).is_ok() {
                    scores[s.queue] += s.weight;
                }
            }
            if model::choose(&scores, fallback) == q {
                out.push((q, body, language));
                break;
            }
        }
    }
    out
}
