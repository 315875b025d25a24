//! From summed evidence to confidence.
//!
//! Each queue's score is the sum of the weights of its rules that fired (scaled by the field the
//! text was found in). Confidence is a softmax over every queue of the ruleset, scores divided by
//! the calibrated temperature `T`:
//!
//! `confidence(q) = exp(s_q / T) / Σ_k exp(s_k / T)`
//!
//! Queues without evidence take part with score 0, so they act as a prior: a message with no
//! evidence gets `1 / n_queues` (low, and routed to the fallback queue for review); strong
//! evidence for one queue only tends to 1; two queues with similar evidence share it (≤ 0.5
//! each). `T` is fitted on labelled history by `triage calibrate` (temperature scaling: one
//! parameter, so it cannot overfit a small corpus, and it keeps the ranking unchanged).

/// Evidence at or above this score counts a queue as strongly supported (a feature of the
/// confidence model: two strongly supported queues make any verdict less sure).
pub const STRONG_EVIDENCE: f64 = 3.0;

/// What the confidence model looks at beyond the top score (see [`ConfidenceModel`]).
#[derive(Debug, Clone, Copy, PartialEq, Default, serde::Serialize)]
pub struct Features {
    /// The chosen queue's softmax probability (temperature-scaled).
    pub softmax: f64,
    /// Its score minus the runner-up's (0 when no other queue has evidence).
    pub margin: f64,
    /// How many other queues have at least [`STRONG_EVIDENCE`].
    pub strong_queues: f64,
    /// Share of the chosen queue's positive evidence that came from a reply subject, quoted
    /// history or the signature, in [0, 1].
    pub weak_share: f64,
    /// 1 when the message reads as addressed to us: the ruleset's signal named
    /// [`ADDRESSED_SIGNAL`] fired (our names, our products, the merchant or shopper
    /// relationship); 0 otherwise, and always 0 for a ruleset without that signal.
    pub addressed: f64,
    /// Share of the new text's sentences in which no term of the ruleset was found, in
    /// [0, 1] (0 for an empty new text): how much of the message is out of the domain. A
    /// request is mostly about its topic; a newsletter or a list post that mentions "invoice"
    /// once is mostly about something else.
    pub unexplained: f64,
    /// 1 when the writer's standing, which would decide, is unknown: some signal of the
    /// ruleset moves the chosen queue's evidence elsewhere and is kept from firing by an
    /// `unless` (the default ruleset's `prospect`, unless `member`), and neither it nor what
    /// its `unless` names fired. A technical question from a writer who says neither that
    /// they are a member nor that they are still choosing is sometimes a prospect's. 0
    /// otherwise.
    pub standing_unknown: f64,
    /// 1 when the writer's standing is what decides between two queues that both have a case
    /// (evidence of their own beyond the thread's: a reply subject, quoted history, the
    /// signature), either way:
    /// - the standing is unknown (as for [`Features::standing_unknown`]) and the queue that
    ///   signal would move the evidence to has such evidence (a technical question that
    ///   mentions prices, from a writer who says neither that they are a member nor that they
    ///   are still choosing);
    /// - a signal that moves evidence (the writer's role: a prospect, an automated system)
    ///   fired and moved evidence to the chosen queue, and before the move another queue led
    ///   with such evidence (a shop that is not a member yet, writing about a cease-and-desist
    ///   letter it received: the prospect's voice takes the legal case to sales).
    ///
    /// Not an input of the logistic model: its
    /// verdicts' margins are often large, so no shift of the logit reaches them; it selects
    /// the verdicts that [`ConfidenceModel::contested_ceiling`] bounds. 0 otherwise.
    pub standing_contested: f64,
}

/// The signal whose firing is the [`Features::addressed`] input of the confidence model.
pub const ADDRESSED_SIGNAL: &str = "addressed";

/// How many inputs the confidence model has.
pub const INPUTS: usize = 7;

/// The inputs' names, as `[calibration]` keys, in the order of [`Features::inputs`].
pub const INPUT_NAMES: [&str; INPUTS] = [
    "softmax_logit",
    "margin",
    "strong_queues",
    "weak_share",
    "addressed",
    "unexplained",
    "standing_unknown",
];

impl Features {
    /// The features as the model's inputs, in the order of [`ConfidenceModel::weights`] and
    /// [`INPUT_NAMES`].
    pub fn inputs(&self) -> [f64; INPUTS] {
        let p = self.softmax.clamp(1e-6, 1.0 - 1e-6);
        [
            (p / (1.0 - p)).ln(),
            self.margin.min(20.0),
            self.strong_queues,
            self.weak_share,
            self.addressed,
            self.unexplained,
            self.standing_unknown,
        ]
    }
}

/// A logistic model of "the chosen queue is right" over [`Features`], fitted by
/// `triage calibrate` on labelled messages the rules were not written from:
///
/// `confidence = σ(intercept + w · [logit(softmax), margin, strong_queues, weak_share,
/// addressed, unexplained, standing_unknown])`
///
/// Temperature scaling alone sees only the top score; this also sees how clear the margin is,
/// whether several queues are strongly supported, whether the decisive evidence came from
/// the thread rather than the new text, whether the message is addressed to us at all, how
/// much of it the ruleset has nothing to say about, and whether the writer's standing, which
/// could move the verdict, is unknown (Platt scaling with more than one input). Out-of-scope mail in the calibration data (spam, newsletters, strangers' mail)
/// teaches it that scattered keywords in an unaddressed message are not certainty.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct ConfidenceModel {
    /// The bias.
    pub intercept: f64,
    /// Weights of the inputs, in the order of [`INPUT_NAMES`]; a ruleset's `[calibration]`
    /// that predates an input gives it 0.
    pub weights: [f64; INPUTS],
    /// The highest confidence a verdict with [`Features::standing_contested`] may have, in
    /// (0, 1]: the accuracy such verdicts had on the calibration data (histogram binning with
    /// one bin, Zadrozny & Elkan 2001, on top of the logistic model). `None`: no bound.
    pub contested_ceiling: Option<f64>,
}

impl ConfidenceModel {
    /// The probability that the chosen queue is right.
    pub fn apply(&self, f: &Features) -> f64 {
        let p = self.logistic(f);
        match self.contested_ceiling {
            Some(ceiling) if f.standing_contested > 0.0 => p.min(ceiling),
            _ => p,
        }
    }

    /// The logistic part alone, without the ceiling.
    fn logistic(&self, f: &Features) -> f64 {
        let z = self.intercept
            + self
                .weights
                .iter()
                .zip(f.inputs())
                .map(|(w, x)| w * x)
                .sum::<f64>();
        1.0 / (1.0 + (-z).exp())
    }
}

/// Softmax of `scores / temperature`, computed stably.
pub fn softmax(scores: &[f64], temperature: f64) -> Vec<f64> {
    let t = if temperature.is_finite() && temperature > 0.0 {
        temperature
    } else {
        1.0
    };
    let max = scores.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    if !max.is_finite() {
        return vec![1.0 / scores.len().max(1) as f64; scores.len()];
    }
    let exps: Vec<f64> = scores.iter().map(|s| ((s - max) / t).exp()).collect();
    let sum: f64 = exps.iter().sum();
    exps.iter().map(|e| e / sum).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_evidence_gives_a_uniform_low_confidence() {
        let p = softmax(&[0.0; 9], 1.5);
        assert!((p[0] - 1.0 / 9.0).abs() < 1e-12);
    }

    #[test]
    fn strong_evidence_for_one_queue_tends_to_certainty() {
        let mut s = [0.0; 9];
        s[2] = 15.0;
        assert!(softmax(&s, 1.5)[2] > 0.99);
    }

    #[test]
    fn two_equal_queues_share_the_confidence() {
        let mut s = [0.0; 9];
        s[0] = 6.0;
        s[1] = 6.0;
        let p = softmax(&s, 1.5);
        assert!(p[0] <= 0.5 && (p[0] - p[1]).abs() < 1e-12);
    }

    #[test]
    fn a_higher_temperature_lowers_confidence() {
        let s = [4.0, 0.0, 0.0];
        assert!(softmax(&s, 3.0)[0] < softmax(&s, 1.0)[0]);
    }

    #[test]
    fn the_ceiling_bounds_only_contested_verdicts() {
        let model = ConfidenceModel {
            intercept: 4.0,
            weights: [0.0; INPUTS],
            contested_ceiling: Some(0.8),
        };
        let plain = Features::default();
        let contested = Features {
            standing_contested: 1.0,
            ..plain
        };
        assert!(model.apply(&plain) > 0.98);
        assert_eq!(model.apply(&contested), 0.8);
        let unbounded = ConfidenceModel {
            contested_ceiling: None,
            ..model
        };
        assert_eq!(unbounded.apply(&contested), unbounded.apply(&plain));
    }

    #[test]
    fn a_ceiling_never_raises_a_lower_confidence() {
        let model = ConfidenceModel {
            intercept: -1.0,
            weights: [0.0; INPUTS],
            contested_ceiling: Some(0.8),
        };
        let contested = Features {
            standing_contested: 1.0,
            ..Features::default()
        };
        assert!(model.apply(&contested) < 0.3);
    }

    #[test]
    fn the_result_is_a_distribution_even_for_huge_scores() {
        let p = softmax(&[1e300, -1e300, 0.0], 1.0);
        assert!((p.iter().sum::<f64>() - 1.0).abs() < 1e-9);
        assert!(p.iter().all(|x| x.is_finite()));
    }
}
