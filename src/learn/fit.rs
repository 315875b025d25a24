//! The learning run: candidates per fold, features, cross-validated fits, the final fit.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use rayon::prelude::*;

use super::features::{self, Row};
use super::model::{self, Layout, Model, Training};
use super::terms::{Candidate, Criteria, Vocabulary};
use super::{Corpus, Fold, LearnError, Learned, Options, QueueReport, RuleReport, Suggestion, Validation};
use crate::calibrate::{self, Sample};
use crate::message::Message;
use crate::rules::RuleSet;

/// Seeds the fit's shuffling: the same input gives the same suggestions.
const SEED: u64 = 7;
/// Most words an example message is made of.
const EXAMPLE_WORDS: usize = 4;

/// The data every fit shares.
struct Data<'a> {
    base: Option<&'a RuleSet>,
    labels: Vec<usize>,
    queues: usize,
    rows: Vec<Row>,
    /// Feature of each candidate key.
    feature: HashMap<u32, usize>,
    /// Features in all (base rules first).
    features: usize,
    training: Training,
    scale: f64,
    min_weight: f64,
    max_rules: Option<usize>,
}

impl Data<'_> {
    /// The weights a fit with these candidates has: each base rule to its queue, each term to
    /// every queue.
    fn layout(&self, candidates: &[Candidate]) -> Layout {
        let keys: BTreeSet<u32> = candidates.iter().map(|c| c.key).collect();
        let rules = self.base.map_or(&[][..], |b| &b.rules[..]);
        let used = rules
            .iter()
            .enumerate()
            .map(|(r, rule)| (r, Some(rule.queue)))
            .chain(keys.iter().map(|k| (self.feature[k], None)));
        Layout::new(self.queues, self.features, used)
    }

    /// Fits on `train`, with weights as the rule file will hold them.
    ///
    /// The fit sees each document as TF-IDF text classifiers do: every feature scaled by its
    /// inverse document frequency, the vector scaled to unit length. Scaling a document's
    /// features by one positive number scales all its queue scores alike and never changes
    /// which queue wins, so the engine can run the fitted weights (times the idf) on the raw
    /// features and choose exactly as the normalised model does; without the normalisation,
    /// long tickets with many weak terms would dominate the fit. Dividing by the typical
    /// document length keeps scores (and the temperature) near the model's log-odds.
    fn fit(&self, candidates: &[Candidate], train: &[usize]) -> Model {
        let layout = self.layout(candidates);
        let mut df = vec![0u32; self.features];
        for &d in train {
            for &(f, _) in &self.rows[d] {
                df[f as usize] += 1;
            }
        }
        let n = train.len() as f64;
        let idf: Vec<f64> = df
            .iter()
            .map(|&c| ((1.0 + n) / (1.0 + c as f64)).ln() + 1.0)
            .collect();
        let mut norms = Vec::with_capacity(train.len());
        let mut rows: Vec<Row> = vec![Vec::new(); self.rows.len()];
        for &d in train {
            let row: Row = self.rows[d]
                .iter()
                .filter(|(f, _)| layout.uses(*f as usize))
                .map(|&(f, x)| (f, (x as f64 * idf[f as usize]) as f32))
                .collect();
            let norm = row.iter().map(|(_, x)| (*x as f64).powi(2)).sum::<f64>().sqrt();
            if norm > 0.0 {
                norms.push(norm);
                rows[d] = row
                    .into_iter()
                    .map(|(f, x)| (f, (x as f64 / norm) as f32))
                    .collect();
            }
        }
        norms.sort_by(f64::total_cmp);
        let typical = norms.get(norms.len() / 2).copied().unwrap_or(1.0);
        let factor: Vec<f64> = idf.iter().map(|i| i / typical).collect();
        // The ruleset's weights, in the normalised model's units, are where the fit starts.
        let anchors: Vec<(usize, f64)> = self
            .base
            .map_or(&[][..], |b| &b.rules[..])
            .iter()
            .enumerate()
            .filter_map(|(r, rule)| {
                Some((
                    layout.index(r, rule.queue)?,
                    rule.weight / (factor[r] * self.scale),
                ))
            })
            .collect();
        let mut m = model::fit(
            layout.clone(),
            &rows,
            &self.labels,
            train,
            &self.training,
            None,
            &anchors,
        );
        m.rescale(&factor);
        if let Some(budget) = self.max_rules {
            // Keep the strongest links of the new terms, then fit those alone: a lightly
            // penalised fit chooses better than a heavy penalty that must also shrink.
            let rules = self.base.map_or(0, |b| b.rules.len());
            let first_term = layout.first_index(rules);
            let mut strength: Vec<(f64, usize)> = m.weights[first_term..]
                .iter()
                .enumerate()
                .filter(|(_, w)| **w != 0.0)
                .map(|(i, w)| (w.abs(), first_term + i))
                .collect();
            if strength.len() > budget {
                strength.sort_by(|a, b| b.0.total_cmp(&a.0));
                let mut keep = vec![true; m.weights.len()];
                keep[first_term..].fill(false);
                for &(_, i) in &strength[..budget] {
                    keep[i] = true;
                }
                m = model::fit(
                    layout,
                    &rows,
                    &self.labels,
                    train,
                    &self.training,
                    Some(&keep),
                    &anchors,
                );
                m.rescale(&factor);
            }
        }
        m.written(self.scale, self.min_weight)
    }

    /// The ruleset as it is, as a model (no rules: a model that always says nothing).
    fn before(&self) -> Model {
        let rules = self.base.map_or(&[][..], |b| &b.rules[..]);
        let layout = Layout::new(
            self.queues,
            self.features,
            rules.iter().enumerate().map(|(r, rule)| (r, Some(rule.queue))),
        );
        Model {
            layout,
            weights: rules.iter().map(|r| r.weight).collect(),
        }
    }

    /// The fallback queue when fitting on `train`: the ruleset's, or the most frequent label.
    fn fallback(&self, train: &[usize]) -> usize {
        if let Some(b) = self.base {
            return b.fallback;
        }
        let mut count = vec![0usize; self.queues];
        for &d in train {
            count[self.labels[d]] += 1;
        }
        (0..self.queues)
            .max_by_key(|&q| (count[q], std::cmp::Reverse(q)))
            .unwrap_or(0)
    }

    fn scores(&self, model: &Model, d: usize) -> Vec<f64> {
        let mut s = vec![0.0; self.queues];
        model.score(&self.rows[d], &mut s);
        s
    }
}

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
        max_per_queue: options.max_terms_per_queue,
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
            l1: options.l1,
            epochs: options.epochs,
            rate: options.rate,
            seed: SEED,
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
                samples.push((d, Sample { scores, gold, chosen }));
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
