//! A sparse multinomial logistic regression whose coefficients are rule weights.
//!
//! The engine scores queue `q` as `Σ weight × value` over the rules of `q` that fired and
//! reports `softmax(scores / T)`. That is a multinomial logistic regression with one
//! coefficient per (feature, queue) link, so fitting one by maximum likelihood fits rule
//! weights on the engine's own scale. An existing rule links its feature to its own queue
//! only; a candidate term links to every queue (evidence for some, against others).
//!
//! The fit minimises the summed log-loss plus an L2 penalty `l2/2 · Σ w²` (scikit-learn's
//! `LogisticRegression` with `C = 1/l2`, the reference the README compares with) to
//! convergence, by L-BFGS (Nocedal and Wright, *Numerical Optimization*, 2006, §7.2; the
//! `argmin` crate's solver with a Moré–Thuente line search). Because softmax does not change
//! when one number is added to every queue's score, a term's links can all be moved by the
//! same amount without changing a single verdict: [`Model::center`] moves each to its median,
//! so the links that carry nothing become zero and drop out of the rule file.

use argmin::core::{CostFunction, Executor, Gradient, State};
use argmin::solver::linesearch::MoreThuenteLineSearch;
use argmin::solver::quasinewton::LBFGS;
use rayon::prelude::*;

use super::features::Row;

/// How many records' worth of evidence a person's weight counts for (see [`fit`]).
const ANCHOR_RECORDS: f64 = 20.0;

/// Which weights a model has: a feature links to one queue, to every queue, or is unused.
#[derive(Debug, Clone)]
pub(crate) struct Layout {
    queues: usize,
    /// Per feature: offset of its first weight, or `u32::MAX` when unused.
    offset: Vec<u32>,
    /// Per feature: the one queue it links to, or `None` for every queue.
    queue: Vec<Option<u32>>,
    len: usize,
}

impl Layout {
    /// A layout over `features` features, using the given `(feature, link)` pairs.
    pub fn new(
        queues: usize,
        features: usize,
        used: impl IntoIterator<Item = (usize, Option<usize>)>,
    ) -> Layout {
        let mut layout = Layout {
            queues,
            offset: vec![u32::MAX; features],
            queue: vec![None; features],
            len: 0,
        };
        for (f, link) in used {
            layout.offset[f] = layout.len as u32;
            layout.queue[f] = link.map(|q| q as u32);
            layout.len += if link.is_some() { 1 } else { queues };
        }
        layout
    }

    /// The index of the first weight of the features from `feature` on (features are laid out
    /// in order).
    pub fn first_index(&self, feature: usize) -> usize {
        self.offset[feature.min(self.offset.len())..]
            .iter()
            .find(|&&o| o != u32::MAX)
            .map_or(self.len, |&o| o as usize)
    }

    /// True when the model has weights for `feature`.
    pub fn uses(&self, feature: usize) -> bool {
        self.offset.get(feature).is_some_and(|&o| o != u32::MAX)
    }

    /// The index of the weight linking `feature` to `queue`, if the model has one.
    pub fn index(&self, feature: usize, queue: usize) -> Option<usize> {
        let offset = *self.offset.get(feature)?;
        if offset == u32::MAX {
            return None;
        }
        match self.queue[feature] {
            Some(q) if q as usize == queue => Some(offset as usize),
            Some(_) => None,
            None => Some(offset as usize + queue),
        }
    }
}

/// Fitted weights over a [`Layout`].
#[derive(Debug, Clone)]
pub(crate) struct Model {
    pub layout: Layout,
    pub weights: Vec<f64>,
}

/// How to fit.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Training {
    /// L2 penalty, in records: the objective is the summed log-loss plus `l2/2 · Σ w²`.
    pub l2: f64,
    /// Most L-BFGS iterations.
    pub iterations: u64,
}

impl Model {
    /// Adds each queue's score for `row` to `scores`.
    pub fn score(&self, row: &Row, scores: &mut [f64]) {
        score(&self.layout, &self.weights, row, scores);
    }

    /// Moves the links of every term linked to all queues by the same amount, to their median:
    /// no verdict and no confidence changes (softmax is shift-invariant), and the links that
    /// carry nothing for a queue become (nearly) zero.
    pub fn center(&mut self) {
        let l = &self.layout;
        let mut sorted = Vec::with_capacity(l.queues);
        for (f, &o) in l.offset.iter().enumerate() {
            if o == u32::MAX || l.queue[f].is_some() {
                continue;
            }
            let links = &mut self.weights[o as usize..o as usize + l.queues];
            sorted.clear();
            sorted.extend_from_slice(links);
            sorted.sort_by(f64::total_cmp);
            let median = sorted[sorted.len() / 2];
            for w in links {
                *w -= median;
            }
        }
    }

    /// Multiplies every weight of feature `f` by `factor[f]`.
    pub fn rescale(&mut self, factor: &[f64]) {
        let l = &self.layout;
        for (f, &o) in l.offset.iter().enumerate() {
            if o == u32::MAX {
                continue;
            }
            let len = if l.queue[f].is_some() { 1 } else { l.queues };
            for w in &mut self.weights[o as usize..o as usize + len] {
                *w *= factor[f];
            }
        }
    }

    /// The weights as a rule file would hold them: times `scale`, rounded to two decimals,
    /// within [-100, 100], and zero (no rule) below `min_weight`.
    pub fn written(&self, scale: f64, min_weight: f64) -> Model {
        let weights = self
            .weights
            .iter()
            .map(|w| written_weight(w * scale, min_weight))
            .collect();
        Model {
            layout: self.layout.clone(),
            weights,
        }
    }
}

/// One weight as written in a rule file (see [`Model::written`]).
pub(crate) fn written_weight(w: f64, min_weight: f64) -> f64 {
    let w = ((w * 100.0).round() / 100.0).clamp(-100.0, 100.0);
    if w.abs() < min_weight.max(0.01) { 0.0 } else { w }
}

/// The queue the engine chooses for these scores: the highest (the first on a tie), or the
/// fallback when no queue has positive evidence.
pub(crate) fn choose(scores: &[f64], fallback: usize) -> usize {
    let mut best = 0;
    for (q, s) in scores.iter().enumerate() {
        if *s > scores[best] {
            best = q;
        }
    }
    if scores.get(best).is_some_and(|&s| s > 0.0) {
        best
    } else {
        fallback
    }
}

/// Adds each queue's score for `row` under `weights` to `scores`.
fn score(l: &Layout, weights: &[f64], row: &Row, scores: &mut [f64]) {
    for &(f, x) in row {
        let offset = l.offset[f as usize];
        if offset == u32::MAX {
            continue;
        }
        let (x, o) = (x as f64, offset as usize);
        match l.queue[f as usize] {
            Some(q) => scores[q as usize] += weights[o] * x,
            None => {
                for (s, w) in scores.iter_mut().zip(&weights[o..o + l.queues]) {
                    *s += w * x;
                }
            }
        }
    }
}

/// Where a fit starts and what it may change.
#[derive(Debug, Default)]
pub(crate) struct Prior<'a> {
    /// `(weight, value)` pairs for weights a person chose (the rules of an existing ruleset):
    /// they start at that value (unless `start` is given) and are penalised for moving away from it as if by
    /// [`ANCHOR_RECORDS`] records, instead of being pulled towards zero, so little history
    /// moves them little.
    pub anchors: &'a [(usize, f64)],
    /// Only the weights it marks may change (the others keep their start).
    pub keep: Option<&'a [bool]>,
    /// The weights to start from (zero when `None`).
    pub start: Option<Vec<f64>>,
}

/// Fits a model on the documents `train` (`labels[d]` is document `d`'s queue).
pub(crate) fn fit(
    layout: Layout,
    rows: &[Row],
    labels: &[usize],
    train: &[usize],
    t: &Training,
    prior: Prior<'_>,
) -> Model {
    let Prior { anchors, keep, start } = prior;
    let fresh = start.is_none();
    let mut weights = start.unwrap_or_else(|| vec![0.0; layout.len]);
    let mut target = vec![0.0; layout.len];
    let mut strength = vec![t.l2; layout.len];
    for &(i, w0) in anchors {
        if fresh {
            weights[i] = w0;
        }
        target[i] = w0;
        strength[i] = t.l2.max(ANCHOR_RECORDS);
    }
    if train.is_empty() || layout.len == 0 {
        return Model { layout, weights };
    }
    let objective = Objective {
        layout: &layout,
        rows,
        labels,
        train,
        keep,
        target,
        strength,
    };
    let solver = LBFGS::new(MoreThuenteLineSearch::new(), MEMORY)
        .with_tolerance_grad(TOLERANCE_GRAD)
        .and_then(|s| s.with_tolerance_cost(TOLERANCE_COST));
    let solved = solver.and_then(|solver| {
        Executor::new(objective, solver)
            .configure(|state| state.param(weights.clone()).max_iters(t.iterations))
            .run()
    });
    match solved {
        Ok(result) => {
            let state = result.state();
            tracing::debug!(
                iterations = state.get_iter(),
                cost = state.get_best_cost(),
                reason = ?state.get_termination_reason(),
                "learn: fitted"
            );
            if let Some(best) = state.get_best_param() {
                weights.clone_from(best);
            }
        }
        // The objective never fails; a line search that cannot progress keeps the start.
        Err(e) => tracing::warn!(error = %e, "learn: the fit stopped early"),
    }
    Model { layout, weights }
}

/// L-BFGS memory: the curvature pairs kept (5 to 20 is usual; Nocedal and Wright §7.2).
const MEMORY: usize = 10;
/// Stop when the gradient's norm falls below this (per-record units are summed: this is tight).
const TOLERANCE_GRAD: f64 = 1e-4;
/// Stop when an iteration improves the summed log-loss by less than this.
const TOLERANCE_COST: f64 = 1e-7;
/// Parallel chunks of the objective (at most), and the least records in one.
const CHUNKS: usize = 8;
const MIN_CHUNK: usize = 256;

/// The summed log-loss of the training documents plus the penalty, as argmin minimises it.
struct Objective<'a> {
    layout: &'a Layout,
    rows: &'a [Row],
    labels: &'a [usize],
    train: &'a [usize],
    keep: Option<&'a [bool]>,
    /// Where the penalty pulls each weight (0, or a person's weight).
    target: Vec<f64>,
    /// The penalty's strength per weight.
    strength: Vec<f64>,
}

impl Objective<'_> {
    /// The summed log-loss and, when `gradient` is given, its gradient added to it.
    fn loss(&self, w: &[f64], with_gradient: bool) -> (f64, Vec<f64>) {
        let queues = self.layout.queues;
        // Few chunks, as each one's gradient is a vector as long as the model; a fixed number,
        // so that the sums, and the fit, are the same on any machine.
        let chunk = self.train.len().div_ceil(CHUNKS).max(MIN_CHUNK);
        let (loss, mut g) = self
            .train
            .par_chunks(chunk)
            .map(|chunk| {
                let mut g = if with_gradient {
                    vec![0.0; w.len()]
                } else {
                    Vec::new()
                };
                let mut p = vec![0.0; queues];
                let mut loss = 0.0;
                for &d in chunk {
                    p.fill(0.0);
                    score(self.layout, w, &self.rows[d], &mut p);
                    let max = p.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                    let sum: f64 = p.iter().map(|s| (s - max).exp()).sum();
                    loss += max + sum.ln() - p[self.labels[d]];
                    if !with_gradient {
                        continue;
                    }
                    for s in p.iter_mut() {
                        *s = (*s - max).exp() / sum;
                    }
                    p[self.labels[d]] -= 1.0;
                    let l = self.layout;
                    for &(f, x) in &self.rows[d] {
                        let offset = l.offset[f as usize];
                        if offset == u32::MAX {
                            continue;
                        }
                        let (x, o) = (x as f64, offset as usize);
                        match l.queue[f as usize] {
                            Some(q) => g[o] += p[q as usize] * x,
                            None => {
                                for (gq, pq) in g[o..o + queues].iter_mut().zip(&p) {
                                    *gq += pq * x;
                                }
                            }
                        }
                    }
                }
                (loss, g)
            })
            // Summed in chunk order, so a fit is reproducible whatever thread ran which chunk.
            .collect::<Vec<_>>()
            .into_iter()
            .reduce(|(la, mut ga), (lb, gb)| {
                for (a, b) in ga.iter_mut().zip(gb) {
                    *a += b;
                }
                (la + lb, ga)
            })
            .unwrap_or_else(|| {
                (
                    0.0,
                    if with_gradient {
                        vec![0.0; w.len()]
                    } else {
                        Vec::new()
                    },
                )
            });
        let mut penalty = 0.0;
        for i in 0..w.len() {
            let delta = w[i] - self.target[i];
            penalty += 0.5 * self.strength[i] * delta * delta;
            if with_gradient {
                g[i] += self.strength[i] * delta;
            }
        }
        if let (true, Some(keep)) = (with_gradient, self.keep) {
            for (gi, &k) in g.iter_mut().zip(keep) {
                if !k {
                    *gi = 0.0;
                }
            }
        }
        (loss + penalty, g)
    }
}

impl CostFunction for Objective<'_> {
    type Param = Vec<f64>;
    type Output = f64;

    fn cost(&self, w: &Self::Param) -> Result<f64, argmin::core::Error> {
        Ok(self.loss(w, false).0)
    }
}

impl Gradient for Objective<'_> {
    type Param = Vec<f64>;
    type Gradient = Vec<f64>;

    fn gradient(&self, w: &Self::Param) -> Result<Vec<f64>, argmin::core::Error> {
        Ok(self.loss(w, true).1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_feature_that_predicts_a_queue_gets_a_positive_weight_there() {
        // Feature 0 marks queue 1; feature 1 is noise on every document.
        let rows: Vec<Row> = (0..200)
            .map(|i| {
                if i % 2 == 0 {
                    vec![(0, 1.0), (1, 1.0)]
                } else {
                    vec![(1, 1.0)]
                }
            })
            .collect();
        let labels: Vec<usize> = (0..200).map(|i| usize::from(i % 2 == 0)).collect();
        let train: Vec<usize> = (0..200).collect();
        let layout = Layout::new(2, 2, [(0, None), (1, None)]);
        let t = Training {
            l2: 1.0,
            iterations: 100,
        };
        let m = fit(layout, &rows, &labels, &train, &t, Prior::default());
        let w = |f, q| m.layout.index(f, q).map_or(0.0, |i| m.weights[i]);
        assert!(w(0, 1) > 1.0 && w(0, 1) > w(0, 0), "{:?}", m.weights);
        let mut s = vec![0.0; 2];
        m.score(&rows[0], &mut s);
        assert_eq!(choose(&s, 0), 1);
    }

    #[test]
    fn without_positive_evidence_the_fallback_wins() {
        assert_eq!(choose(&[0.0, 0.0, 0.0], 2), 2);
        assert_eq!(choose(&[-1.0, -0.5, 0.0], 0), 0);
        assert_eq!(choose(&[0.5, 0.5, 0.0], 2), 0);
    }

    #[test]
    fn written_weights_are_rounded_and_tiny_ones_dropped() {
        assert_eq!(written_weight(1.234, 0.05), 1.23);
        assert_eq!(written_weight(0.04, 0.05), 0.0);
        assert_eq!(written_weight(-250.0, 0.05), -100.0);
    }
}
