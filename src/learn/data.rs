//! What every fit of a learning run shares, and one fit: the feature values, the labels,
//! how to train, and the scaling between the fitted model and rule weights.

use std::collections::{BTreeSet, HashMap};

use super::features::Row;
use super::model::{self, Layout, Model, Prior, Training};
use super::terms::Candidate;
use crate::rules::RuleSet;

/// The data every fit shares.
pub(super) struct Data<'a> {
    pub(super) base: Option<&'a RuleSet>,
    pub(super) labels: Vec<usize>,
    pub(super) queues: usize,
    pub(super) rows: Vec<Row>,
    /// Feature of each candidate key.
    pub(super) feature: HashMap<u32, usize>,
    /// Features in all (base rules first).
    pub(super) features: usize,
    pub(super) training: Training,
    pub(super) scale: f64,
    pub(super) min_weight: f64,
    pub(super) max_rules: Option<usize>,
}

impl Data<'_> {
    /// The weights a fit with these candidates has: each base rule to its queue, each term to
    /// every queue.
    pub(super) fn layout(&self, candidates: &[Candidate]) -> Layout {
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
    pub(super) fn fit(&self, candidates: &[Candidate], train: &[usize]) -> Model {
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
            Prior {
                anchors: &anchors,
                ..Prior::default()
            },
        );
        m.center();
        if let Some(budget) = self.max_rules {
            // Keep the strongest links of the new terms and fit those alone, from where they
            // are: the others are the weakest evidence, and the kept ones take up their share.
            // (Cutting in two steps, twice the budget first, measured no better.)
            let rules = self.base.map_or(0, |b| b.rules.len());
            let first_term = layout.first_index(rules);
            let mut strength: Vec<(f64, usize)> = m.weights[first_term..]
                .iter()
                .enumerate()
                .filter(|(_, w)| **w != 0.0)
                .map(|(i, w)| (w.abs(), first_term + i))
                .collect();
            if strength.len() > budget {
                strength.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
                let mut keep = vec![true; m.weights.len()];
                keep[first_term..].fill(false);
                for &(_, i) in &strength[..budget] {
                    keep[i] = true;
                }
                let start: Vec<f64> = m
                    .weights
                    .iter()
                    .zip(&keep)
                    .map(|(&w, &k)| if k { w } else { 0.0 })
                    .collect();
                m = model::fit(
                    layout,
                    &rows,
                    &self.labels,
                    train,
                    &self.training,
                    Prior {
                        anchors: &anchors,
                        keep: Some(&keep),
                        start: Some(start),
                    },
                );
            }
        }
        m.rescale(&factor);
        m.written(self.scale, self.min_weight)
    }

    /// The ruleset as it is, as a model (no rules: a model that always says nothing).
    pub(super) fn before(&self) -> Model {
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
    pub(super) fn fallback(&self, train: &[usize]) -> usize {
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

    pub(super) fn scores(&self, model: &Model, d: usize) -> Vec<f64> {
        let mut s = vec![0.0; self.queues];
        model.score(&self.rows[d], &mut s);
        s
    }
}
