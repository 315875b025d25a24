//! `requires = ["signal", "rule"]`: every named signal or rule fired on the message (in the
//! style of SpamAssassin meta rules and Rspamd composites). Signals and rules are evaluated in
//! dependency order; a cycle is a `check-rules` error.

use super::{Evidence, Outcome};

/// Every one of `ids` fired.
#[derive(Debug, Clone, PartialEq)]
pub struct Requires {
    /// Signal or rule ids.
    pub ids: Vec<String>,
}

impl Requires {
    /// Holds (adding no evidence of its own) when every referenced unit fired.
    pub fn evaluate(&self, units: &[u32], evidence: &dyn Evidence) -> Outcome {
        if units.iter().all(|&u| evidence.fired(u)) {
            Outcome::Holds(Option::None)
        } else {
            Outcome::Fails
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::condition::testing::Fake;

    #[test]
    fn every_referenced_signal_must_have_fired() {
        let c = Requires { ids: Vec::new() };
        let ev = Fake {
            found: vec![],
            fired: vec![true, false],
        };
        assert_eq!(c.evaluate(&[0], &ev), Outcome::Holds(None));
        assert_eq!(c.evaluate(&[0, 1], &ev), Outcome::Fails);
    }
}
