//! Reliability tables and expected calibration error (ECE) over ten confidence bins.

use serde::Serialize;

/// Number of equal-width confidence bins.
pub const BINS: usize = 10;

/// One confidence bin.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
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
}

/// Accumulates `(confidence, correct)` pairs.
#[derive(Debug, Clone, Default)]
pub struct Reliability {
    count: [u64; BINS],
    confidence: [f64; BINS],
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
        self.confidence[i] += c;
        self.correct[i] += u64::from(correct);
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
                .map(|i| (self.correct[i] as f64 - self.confidence[i]).abs() / total as f64)
                .sum()
        })
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
                    confidence: (n > 0).then(|| self.confidence[i] / n as f64),
                    accuracy: (n > 0).then(|| self.correct[i] as f64 / n as f64),
                }
            })
            .collect()
    }
}
