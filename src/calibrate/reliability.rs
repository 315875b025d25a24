//! Reliability tables and expected calibration error (ECE) over ten confidence bins.
//!
//! Confidences are summed exactly, as integers: each is counted in millionths (rounded to
//! 10^-6; verdicts carry four decimals), so a table does not depend on the order its verdicts
//! came in, and tables of parts of a replay (`--shard`) merge into exactly the table of the
//! whole. The sums are integers in JSON too, which every reader takes exactly.

use serde::{Deserialize, Serialize};

/// Number of equal-width confidence bins.
pub const BINS: usize = 10;

/// Confidences are summed in units of 1 / `MILLION` (see the module documentation).
const MILLION: f64 = 1_000_000.0;

/// One confidence bin.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Bin {
    /// Lower bound (inclusive).
    pub lower: f64,
    /// Upper bound (exclusive, except for the last bin).
    pub upper: f64,
    /// Verdicts in the bin.
    pub count: u64,
    /// Their mean confidence.
    pub confidence: Option<f64>,
    /// The share of them that were right.
    pub accuracy: Option<f64>,
    /// Of them, right: the numerator of `accuracy`, kept so tables can be merged.
    pub correct: u64,
    /// Their confidences summed, in millionths (see the module documentation): the numerator
    /// of `confidence`, kept so tables can be merged.
    pub confidence_millionths: u64,
}

/// Accumulates `(confidence, correct)` pairs.
#[derive(Debug, Clone, Default)]
pub struct Reliability {
    count: [u64; BINS],
    /// Summed confidences, in millionths.
    confidence: [u64; BINS],
    correct: [u64; BINS],
}

impl Reliability {
    /// Builds the table from pairs.
    pub fn from_pairs(pairs: impl IntoIterator<Item = (f64, bool)>) -> Reliability {
        let mut r = Reliability::default();
        for (c, ok) in pairs {
            r.add(c, ok);
        }
        r
    }

    /// Adds one verdict.
    pub fn add(&mut self, confidence: f64, correct: bool) {
        let c = if confidence.is_finite() {
            confidence.clamp(0.0, 1.0)
        } else {
            0.0
        };
        let i = ((c * BINS as f64) as usize).min(BINS - 1);
        self.count[i] += 1;
        self.confidence[i] += (c * MILLION).round() as u64;
        self.correct[i] += u64::from(correct);
    }

    /// Adds the verdicts of `other`: the same table as adding them one by one.
    pub fn merge(&mut self, other: &Reliability) {
        for i in 0..BINS {
            self.count[i] += other.count[i];
            self.confidence[i] += other.confidence[i];
            self.correct[i] += other.correct[i];
        }
    }

    /// Rebuilds the table [`Reliability::bins`] gave, e.g. from a replay summary.
    pub fn from_bins(bins: &[Bin]) -> Result<Reliability, String> {
        if bins.len() != BINS {
            return Err(format!("a reliability table has {BINS} bins, not {}", bins.len()));
        }
        let mut r = Reliability::default();
        for (i, b) in bins.iter().enumerate() {
            let most = b.count.checked_mul(MILLION as u64);
            if b.correct > b.count || most.is_none_or(|most| b.confidence_millionths > most) {
                return Err(format!("reliability bin {i} is inconsistent: {b:?}"));
            }
            r.count[i] = b.count;
            r.confidence[i] = b.confidence_millionths;
            r.correct[i] = b.correct;
        }
        Ok(r)
    }

    /// Verdicts counted.
    pub fn total(&self) -> u64 {
        self.count.iter().sum()
    }

    /// Expected calibration error: the count-weighted mean gap between confidence and accuracy
    /// per bin. `None` without data.
    pub fn ece(&self) -> Option<f64> {
        let total = self.total();
        (total > 0).then(|| {
            (0..BINS)
                .filter(|&i| self.count[i] > 0)
                .map(|i| (self.correct[i] as f64 - self.sum(i)).abs() / total as f64)
                .sum()
        })
    }

    /// Bin `i`'s summed confidence.
    fn sum(&self, i: usize) -> f64 {
        self.confidence[i] as f64 / MILLION
    }

    /// The table, one row per bin.
    pub fn bins(&self) -> Vec<Bin> {
        (0..BINS)
            .map(|i| {
                let n = self.count[i];
                Bin {
                    lower: i as f64 / BINS as f64,
                    upper: (i + 1) as f64 / BINS as f64,
                    count: n,
                    confidence: (n > 0).then(|| self.sum(i) / n as f64),
                    accuracy: (n > 0).then(|| self.correct[i] as f64 / n as f64),
                    correct: self.correct[i],
                    confidence_millionths: self.confidence[i],
                }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Confidences as verdicts carry them, and some that are not round at all.
    fn pairs() -> Vec<(f64, bool)> {
        (0..5000u32)
            .map(|i| {
                let c = if i % 3 == 0 {
                    f64::from(i % 10_000) / 10_000.0
                } else {
                    (f64::from(i) * 0.618_033_988_749).fract()
                };
                (c, i % 7 != 0)
            })
            .collect()
    }

    #[test]
    fn a_table_does_not_depend_on_the_order_of_its_verdicts() {
        let forward = Reliability::from_pairs(pairs());
        let backward = Reliability::from_pairs(pairs().into_iter().rev());
        assert_eq!(forward.bins(), backward.bins());
        assert_eq!(forward.ece(), backward.ece());
    }

    #[test]
    fn merged_parts_equal_the_whole_exactly() {
        let whole = Reliability::from_pairs(pairs());
        let mut merged = Reliability::default();
        for part in 0..3 {
            let shard = pairs()
                .into_iter()
                .enumerate()
                .filter(|(i, _)| i % 3 == part)
                .map(|(_, p)| p);
            merged.merge(&Reliability::from_pairs(shard));
        }
        assert_eq!(merged.bins(), whole.bins());
        assert_eq!(merged.ece(), whole.ece());
    }

    #[test]
    fn a_table_is_rebuilt_from_its_bins() {
        let whole = Reliability::from_pairs(pairs());
        let rebuilt = Reliability::from_bins(&whole.bins()).unwrap();
        assert_eq!(rebuilt.bins(), whole.bins());
        assert!(Reliability::from_bins(&whole.bins()[..9]).is_err());
        let mut bad = whole.bins();
        bad[3].correct = bad[3].count + 1;
        assert!(Reliability::from_bins(&bad).is_err());
    }

    #[test]
    fn a_confidence_moves_by_at_most_half_a_millionth_when_summed() {
        let r = Reliability::from_pairs([(0.123_456_789, true)]);
        let mean = r.bins()[1].confidence.unwrap();
        assert!((mean - 0.123_456_789).abs() <= 5e-7, "{mean}");
    }
}
