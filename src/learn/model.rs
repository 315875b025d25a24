//! A sparse multinomial logistic regression whose coefficients are rule weights.
//!
//! The engine scores queue `q` as `Σ weight × value` over the rules of `q` that fired and
//! reports `softmax(scores / T)`. That is a multinomial logistic regression with one
//! coefficient per (feature, queue) link, so fitting one by maximum likelihood fits rule
//! weights on the engine's own scale. An existing rule links its feature to its own queue
//! only; a candidate term links to every queue (evidence for some, against others).
//!
//! Fitting is stochastic gradient descent with the cumulative L1 penalty of Tsuruoka, Tsujii
//! and Ananiadou (2009): the penalty drives useless links to exactly zero, so the rules that
//! remain are few enough to review, and it is applied lazily, so a step costs only the
//! document's own links.

use super::features::Row;

/// Learning-rate decay per pass over the data (exponential, as in Tsuruoka et al.).
const DECAY: f64 = 0.85;
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
    /// L1 penalty per document (the objective is mean log-loss + `l1 × Σ|w|`).
    pub l1: f64,
    /// Passes over the training documents.
    pub epochs: usize,
    /// Initial learning rate.
    pub rate: f64,
    /// Seeds the shuffling, so a fit is reproducible.
    pub seed: u64,
}

impl Model {
    /// Adds each queue's score for `row` to `scores`.
    pub fn score(&self, row: &Row, scores: &mut [f64]) {
        let l = &self.layout;
        for &(f, x) in row {
            let offset = l.offset[f as usize];
            if offset == u32::MAX {
                continue;
            }
            let (x, o) = (x as f64, offset as usize);
            match l.queue[f as usize] {
                Some(q) => scores[q as usize] += self.weights[o] * x,
                None => {
                    for (s, w) in scores.iter_mut().zip(&self.weights[o..o + l.queues]) {
                        *s += w * x;
                    }
                }
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

/// Fits a model on the documents `train` (`labels[d]` is document `d`'s queue). With `keep`,
/// only the weights it marks may become non-zero.
///
/// `anchors` are `(weight, value)` pairs for weights a person chose (the rules of an existing
/// ruleset): they start at that value, escape the L1 penalty, and are pulled back towards it
/// as if by [`ANCHOR_RECORDS`] records, so little history moves them little.
pub(crate) fn fit(
    layout: Layout,
    rows: &[Row],
    labels: &[usize],
    train: &[usize],
    t: &Training,
    keep: Option<&[bool]>,
    anchors: &[(usize, f64)],
) -> Model {
    let queues = layout.queues;
    let mut model = Model {
        weights: vec![0.0; layout.len],
        layout,
    };
    if train.is_empty() {
        return model;
    }
    let mut anchored = vec![false; model.weights.len()];
    for &(i, w0) in anchors {
        model.weights[i] = w0;
        anchored[i] = true;
    }
    let pull = ANCHOR_RECORDS / train.len() as f64;
    // Penalty applied to each weight so far (`q`), and what it could have been (`u`).
    let mut applied = vec![0.0; model.weights.len()];
    let mut total = 0.0;
    let mut order = train.to_vec();
    let mut rng = t.seed ^ 0x9e37_79b9_7f4a_7c15;
    let mut p = vec![0.0; queues];
    let n = order.len() as f64;
    for epoch in 0..t.epochs {
        shuffle(&mut order, &mut rng);
        for (i, &d) in order.iter().enumerate() {
            let rate = t.rate * DECAY.powf(epoch as f64 + i as f64 / n);
            total += rate * t.l1;
            p.fill(0.0);
            model.score(&rows[d], &mut p);
            softmax_in_place(&mut p);
            p[labels[d]] -= 1.0;
            let l = &model.layout;
            for &(f, x) in &rows[d] {
                let offset = l.offset[f as usize];
                if offset == u32::MAX {
                    continue;
                }
                let (x, o) = (x as f64, offset as usize);
                let mut step = |i: usize, g: f64| {
                    if keep.is_some_and(|k| !k[i]) {
                        return;
                    }
                    let w = &mut model.weights[i];
                    *w -= rate * g * x;
                    if anchored[i] {
                        return;
                    }
                    let before = *w;
                    if *w > 0.0 {
                        *w = (*w - (total + applied[i])).max(0.0);
                    } else if *w < 0.0 {
                        *w = (*w + (total - applied[i])).min(0.0);
                    }
                    applied[i] += *w - before;
                };
                match l.queue[f as usize] {
                    Some(q) => step(o, p[q as usize]),
                    None => {
                        for (q, &g) in p.iter().enumerate() {
                            step(o + q, g);
                        }
                    }
                }
            }
            for &(i, w0) in anchors {
                let w = &mut model.weights[i];
                *w -= (rate * pull).min(1.0) * (*w - w0);
            }
        }
    }
    model
}

fn softmax_in_place(z: &mut [f64]) {
    let max = z.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let mut sum = 0.0;
    for v in z.iter_mut() {
        *v = (*v - max).exp();
        sum += *v;
    }
    for v in z.iter_mut() {
        *v /= sum;
    }
}

/// Fisher–Yates with splitmix64: reproducible without a random-number dependency.
fn shuffle(items: &mut [usize], state: &mut u64) {
    for i in (1..items.len()).rev() {
        *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = *state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^= z >> 31;
        items.swap(i, (z % (i as u64 + 1)) as usize);
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
            l1: 1e-4,
            epochs: 10,
            rate: 0.5,
            seed: 1,
        };
        let m = fit(layout, &rows, &labels, &train, &t, None, &[]);
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
