//! `unless = ["signal", "rule"]`: none of the named signals or rules fired (see
//! [`super::requires`] for the order of evaluation).

use super::{Evidence, Outcome};

/// None of `ids` fired.
#[derive(Debug, Clone, PartialEq)]
pub struct Unless {
    /// Signal or rule ids.
    pub ids: Vec<String>,
}

impl Unless {
    /// Fails when a referenced unit fired.
    pub fn evaluate(&self, units: &[u32], evidence: &dyn Evidence) -> Outcome {
        if units.iter().any(|&u| evidence.fired(u)) {
            Outcome::Fails
        } else {
            Outcome::Holds(Option::None)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::condition::testing::Fake;

    #[test]
    fn a_referenced_signal_that_fired_vetoes() {
        let c = Unless { ids: Vec::new() };
        let ev = Fake {
            found: vec![],
            fired: vec![true, false],
        };
        assert_eq!(c.evaluate(&[1], &ev), Outcome::Holds(None));
        assert_eq!(c.evaluate(&[0, 1], &ev), Outcome::Fails);
    }
}
