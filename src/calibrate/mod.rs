//! Fitting the score → confidence mapping on labelled history, and auto-route thresholds.
//!
//! **Temperature scaling.** The engine's confidence is `softmax(scores / T)` over every queue
//! (see [`crate::engine::score`]). Calibration fits the one parameter `T` by maximum likelihood
//! of the labels. One parameter cannot overfit a few hundred tickets, it never changes which
//! queue wins (so accuracy is untouched), and the softmax keeps "no evidence" and "two queues
//! alike" low by construction. Isotonic regression would bend the curve freely but needs
//! thousands of labelled tickets per bin to be trustworthy; Platt scaling on the winner's score
//! alone would ignore the runner-up.
//!
//! A weak log-normal prior on `1/T` around the ruleset's current value keeps the fit finite
//! when every labelled ticket is right (a perfectly separable set drives the likelihood
//! towards `T → 0`, certainty nobody should trust).
//!
//! **Cross-validation.** Reported calibration is measured out of fold: each ticket's
//! confidence comes from a `T` fitted without its fold ([`folds`] assigns folds by position).

mod reliability;

use crate::engine::score::{ConfidenceModel, Features, INPUTS};

pub use reliability::{Bin, Reliability};

/// The `gold` of a sample for which no queue is right (out-of-scope mail: spam, newsletters,
/// strangers' mail): it teaches the confidence model that such evidence is not certainty.
pub const NO_QUEUE: usize = usize::MAX;

/// One labelled classification: every queue's score, the right queue and the chosen one.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// Score of every queue, in ruleset order.
    pub scores: Vec<f64>,
    /// Index of the labelled (right) queue, or [`NO_QUEUE`].
    pub gold: usize,
    /// Index of the queue the engine chose.
    pub chosen: usize,
    /// What the confidence model sees besides the softmax (its `softmax` is recomputed for
    /// each temperature tried).
    pub features: Features,
}

impl Sample {
    /// The confidence of the chosen queue at temperature `t`.
    pub fn confidence(&self, t: f64) -> f64 {
        crate::engine::score::softmax(&self.scores, t)[self.chosen]
    }

    /// The features at temperature `t`.
    pub fn features_at(&self, t: f64) -> Features {
        Features {
            softmax: self.confidence(t),
            ..self.features
        }
    }

    /// The confidence of the chosen queue at temperature `t` under `model`.
    pub fn model_confidence(&self, t: f64, model: &ConfidenceModel) -> f64 {
        model.apply(&self.features_at(t))
    }

    /// Whether the engine chose the labelled queue.
    pub fn correct(&self) -> bool {
        self.chosen == self.gold
    }
}

/// Bounds on the fitted temperature.
const T_MIN: f64 = 0.05;
const T_MAX: f64 = 50.0;
/// Strength of the prior on `ln(1/T)` (in pseudo-observations of unit variance).
const PRIOR_WEIGHT: f64 = 2.0;

/// Negative log-likelihood of the labels at temperature `t`, plus the prior around `t0`.
pub fn objective(samples: &[Sample], t: f64, t0: f64) -> f64 {
    let nll: f64 = samples
        .iter()
        .filter(|s| s.gold < s.scores.len())
        .map(|s| {
            -crate::engine::score::softmax(&s.scores, t)[s.gold]
                .max(1e-12)
                .ln()
        })
        .sum();
    let d = (1.0 / t).ln() - (1.0 / t0).ln();
    nll + 0.5 * PRIOR_WEIGHT * d * d
}

/// The temperature that best explains the labels (maximum a posteriori; `t0` is the prior's
/// centre, usually the ruleset's current temperature).
///
/// The likelihood is log-concave in `1/T`, so a golden-section search over `ln(1/T)` finds
/// the optimum.
pub fn fit_temperature(samples: &[Sample], t0: f64) -> f64 {
    if samples.is_empty() {
        return t0;
    }
    let f = |u: f64| objective(samples, 1.0 / u.exp(), t0);
    let (mut a, mut b) = ((1.0 / T_MAX).ln(), (1.0 / T_MIN).ln());
    let phi = (5f64.sqrt() - 1.0) / 2.0;
    let mut c = b - phi * (b - a);
    let mut d = a + phi * (b - a);
    let (mut fc, mut fd) = (f(c), f(d));
    for _ in 0..100 {
        if (b - a).abs() < 1e-6 {
            break;
        }
        if fc < fd {
            b = d;
            d = c;
            fd = fc;
            c = b - phi * (b - a);
            fc = f(c);
        } else {
            a = c;
            c = d;
            fc = fd;
            d = a + phi * (b - a);
            fd = f(d);
        }
    }
    1.0 / ((a + b) / 2.0).exp()
}

/// The fold (0..k) of the sample at `position`: a fixed hash, so folds are balanced, do not
/// follow the input's order, and are the same on every run.
pub fn fold_of(position: usize, k: usize) -> usize {
    let mut x = position as u64 ^ 0x9E37_79B9_7F4A_7C15;
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    ((x ^ (x >> 31)) % k.max(1) as u64) as usize
}

/// Indices of each fold's test and training samples.
pub fn folds(n: usize, k: usize) -> Vec<(Vec<usize>, Vec<usize>)> {
    (0..k)
        .map(|f| (0..n).partition::<Vec<usize>, _>(|&i| fold_of(i, k) == f))
        .collect()
}

/// L2 penalty of the confidence model's weights (not the intercept), in pseudo-observations:
/// enough to keep a few hundred samples from producing extreme weights.
const MODEL_L2: f64 = 1.0;

/// Fits the confidence model (logistic regression of "the chosen queue is right" on the
/// features at temperature `t`) by Newton's method with an L2 penalty. Samples with
/// [`NO_QUEUE`] count as wrong. Starts from, and falls back to, the plain softmax
/// (`σ(logit(softmax))`).
///
/// The weights are constrained to the direction the features mean (confidence never falls as
/// the softmax or the margin grows or when the message is addressed to us, never rises with
/// more strongly supported rivals, more evidence from the thread, more text the ruleset
/// knows nothing of or an unknown standing of the writer): a weight fitted against its direction, which only collinear features
/// produce, is fixed at 0 and the rest refitted.
///
/// Then the ceiling of verdicts whose writer's standing is contested
/// ([`Features::standing_contested`]): the share of them that were right, as the mean of a
/// Beta(1, 1) posterior (`(right + 1) / (n + 2)`), so that a handful of them cannot bound
/// anything at 1 and none at all leave no ceiling. The logistic model cannot reach them: a
/// verdict whose standing decides between two queues with a case each is often won by a
/// large margin, and still wrong when the standing was the other. Out-of-scope samples
/// ([`NO_QUEUE`]) do not count: for mail that is no request to us the writer's standing
/// decides nothing, and the logistic model's `addressed` and `unexplained` inputs already
/// keep such mail from certainty (counted, a dozen newsletters that name a price would bound
/// every contested request at two thirds).
///
/// `ceiling_extra` are further labelled samples counted for the ceiling only: contested
/// requests are a few in a hundred, so their accuracy needs more labelled requests than the
/// logistic model, whose balance of requests and out-of-scope mail they would upset.
pub fn fit_model(samples: &[Sample], t: f64, ceiling_extra: &[Sample]) -> ConfidenceModel {
    ConfidenceModel {
        contested_ceiling: fit_contested_ceiling(samples.iter().chain(ceiling_extra)),
        ..fit_logistic(samples, t)
    }
}

/// The Beta(1, 1) posterior mean of the contested requests' accuracy, or `None` without any.
pub fn fit_contested_ceiling<'a>(samples: impl IntoIterator<Item = &'a Sample>) -> Option<f64> {
    let (n, right) = samples
        .into_iter()
        .filter(|s| s.features.standing_contested > 0.0 && s.gold != NO_QUEUE)
        .fold((0usize, 0usize), |(n, r), s| {
            (n + 1, r + usize::from(s.correct()))
        });
    (n > 0).then(|| (right as f64 + 1.0) / (n as f64 + 2.0))
}

/// The logistic part of [`fit_model`].
fn fit_logistic(samples: &[Sample], t: f64) -> ConfidenceModel {
    // Sign each weight must have: +1 non-negative, -1 non-positive, 0 free; in the order of
    // `INPUT_NAMES`.
    const DIRECTION: [f64; INPUTS] = [0.0, 1.0, -1.0, -1.0, 1.0, -1.0, -1.0];
    let mut free = [true; INPUTS];
    let mut model = fit_masked(samples, t, free);
    for _ in 0..INPUTS {
        let mut changed = false;
        for j in 0..INPUTS {
            if free[j] && model.weights[j] * DIRECTION[j] < 0.0 {
                free[j] = false;
                changed = true;
            }
        }
        if !changed {
            break;
        }
        model = fit_masked(samples, t, free);
    }
    model
}

/// [`fit_model`] with the weights of `free == false` features held at 0.
fn fit_masked(samples: &[Sample], t: f64, free: [bool; INPUTS]) -> ConfidenceModel {
    // The intercept, then one weight per input.
    const N: usize = INPUTS + 1;
    // The penalty pulls towards the plain softmax: weight 1 on its logit, 0 elsewhere.
    let centre = |j: usize| if j == 1 { 1.0 } else { 0.0 };
    let rows: Vec<([f64; N], f64)> = samples
        .iter()
        .map(|s| {
            let inputs = s.features_at(t).inputs();
            let mut x = [1.0; N];
            for j in 0..INPUTS {
                x[j + 1] = if free[j] { inputs[j] } else { 0.0 };
            }
            (x, f64::from(u8::from(s.correct())))
        })
        .collect();
    let loss = |w: &[f64; N]| -> f64 {
        let data: f64 = rows
            .iter()
            .map(|(x, y)| {
                let z: f64 = (0..N).map(|j| w[j] * x[j]).sum();
                // log(1 + e^z) - y z, computed stably
                z.max(0.0) + (-z.abs()).exp().ln_1p() - y * z
            })
            .sum();
        let penalty: f64 = (1..N).map(|j| 0.5 * MODEL_L2 * (w[j] - centre(j)).powi(2)).sum();
        data + penalty
    };
    let start: [f64; N] = std::array::from_fn(centre);
    let mut w = start;
    for _ in 0..50 {
        let mut grad = [0.0; N];
        let mut hess = [[0.0; N]; N];
        for (x, y) in &rows {
            let z: f64 = (0..N).map(|j| w[j] * x[j]).sum();
            let p = 1.0 / (1.0 + (-z).exp());
            let r = p * (1.0 - p);
            for j in 0..N {
                grad[j] += (p - y) * x[j];
                for k in 0..N {
                    hess[j][k] += r * x[j] * x[k];
                }
            }
        }
        for j in 1..N {
            grad[j] += MODEL_L2 * (w[j] - centre(j));
            hess[j][j] += MODEL_L2;
        }
        let Some(step) = solve(hess, grad) else {
            break;
        };
        // Backtracking: a Newton step may overshoot where the data nearly separate.
        let before = loss(&w);
        let mut scale = 1.0;
        let mut next = w;
        while scale > 1e-4 {
            for j in 0..N {
                next[j] = w[j] - scale * step[j];
            }
            if loss(&next) <= before {
                break;
            }
            scale *= 0.5;
        }
        let change = (0..N).map(|j| (next[j] - w[j]).abs()).fold(0.0, f64::max);
        w = next;
        if change < 1e-8 {
            break;
        }
    }
    if w.iter().any(|v| !v.is_finite()) {
        w = start;
    }
    for (j, keep) in free.iter().enumerate() {
        if !keep {
            w[j + 1] = 0.0;
        }
    }
    ConfidenceModel {
        intercept: w[0],
        weights: std::array::from_fn(|j| w[j + 1]),
        contested_ceiling: None,
    }
}

/// Solves `a · x = b` by Gaussian elimination with partial pivoting; `None` when singular.
fn solve<const N: usize>(mut a: [[f64; N]; N], mut b: [f64; N]) -> Option<[f64; N]> {
    for col in 0..N {
        let pivot = (col..N).max_by(|&i, &j| a[i][col].abs().total_cmp(&a[j][col].abs()))?;
        if a[pivot][col].abs() < 1e-12 {
            return None;
        }
        a.swap(col, pivot);
        b.swap(col, pivot);
        let pivot_row = a[col];
        for row in col + 1..N {
            let f = a[row][col] / pivot_row[col];
            for (cell, p) in a[row].iter_mut().zip(pivot_row.iter()).skip(col) {
                *cell -= f * p;
            }
            b[row] -= f * b[col];
        }
    }
    let mut x = [0.0; N];
    for row in (0..N).rev() {
        let s: f64 = (row + 1..N).map(|k| a[row][k] * x[k]).sum();
        x[row] = (b[row] - s) / a[row][row];
    }
    Some(x)
}

/// Out-of-fold results of k-fold cross-validation.
#[derive(Debug, Clone)]
pub struct CrossValidation {
    /// Each sample's confidence from the temperature (and model) fitted without its fold.
    pub confidences: Vec<f64>,
    /// The temperature fitted for each fold.
    pub temperatures: Vec<f64>,
}

/// Fits the temperature k times, each time without one fold, and scores that fold; with
/// `model`, also fits the confidence model on the training folds (and `ceiling_extra`, see
/// [`fit_model`]) and scores with it.
pub fn cross_validate(
    samples: &[Sample],
    k: usize,
    t0: f64,
    model: bool,
    ceiling_extra: &[Sample],
) -> CrossValidation {
    let mut confidences = vec![0.0; samples.len()];
    let mut temperatures = Vec::with_capacity(k);
    for (test, train) in folds(samples.len(), k.max(2)) {
        let training: Vec<Sample> = train.iter().map(|&i| samples[i].clone()).collect();
        let t = fit_temperature(&training, t0);
        temperatures.push(t);
        let fitted = model.then(|| fit_model(&training, t, ceiling_extra));
        for i in test {
            confidences[i] = match &fitted {
                Some(m) => samples[i].model_confidence(t, m),
                None => samples[i].confidence(t),
            };
        }
    }
    CrossValidation {
        confidences,
        temperatures,
    }
}

/// A proposed auto-route threshold for one queue.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ThresholdProposal {
    /// The queue.
    pub queue: String,
    /// The threshold in force now.
    pub current: f64,
    /// The lowest threshold whose auto-routed verdicts reach the target precision; 1.0 when
    /// none does (route nothing automatically).
    pub threshold: f64,
    /// Precision of the verdicts at or above it.
    pub precision: Option<f64>,
    /// Share of the queue's verdicts that would be auto-routed.
    pub coverage: f64,
    /// Verdicts for the queue in the data.
    pub support: usize,
}

/// Proposes, per queue, the lowest threshold at which verdicts for that queue reach
/// `target` precision (on the given confidences, which should be out of fold).
pub fn propose_thresholds(
    samples: &[Sample],
    confidences: &[f64],
    queues: &[(String, f64)],
    target: f64,
) -> Vec<ThresholdProposal> {
    queues
        .iter()
        .enumerate()
        .map(|(q, (id, current))| {
            let mut verdicts: Vec<(f64, bool)> = samples
                .iter()
                .zip(confidences)
                .filter(|(s, _)| s.chosen == q)
                .map(|(s, &c)| (c, s.correct()))
                .collect();
            verdicts.sort_by(|a, b| b.0.total_cmp(&a.0));
            let support = verdicts.len();
            let (mut right, mut best) = (0usize, None);
            for (n, &(c, ok)) in verdicts.iter().enumerate() {
                right += usize::from(ok);
                let ties_follow = verdicts.get(n + 1).is_some_and(|next| next.0 == c);
                if !ties_follow && right as f64 / (n + 1) as f64 >= target {
                    best = Some((c, right as f64 / (n + 1) as f64, n + 1));
                }
            }
            let (threshold, precision, covered) = match best {
                Some((c, p, n)) => (c, Some(p), n),
                None => (1.0, None, 0),
            };
            ThresholdProposal {
                queue: id.clone(),
                current: *current,
                threshold: (threshold * 10_000.0).floor() / 10_000.0,
                precision,
                coverage: if support == 0 {
                    0.0
                } else {
                    covered as f64 / support as f64
                },
                support,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests;
