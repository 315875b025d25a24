//! `none = [...]`: no term is found in the fields the rule reads (a veto).

use std::ops::ControlFlow;

use super::{Evidence, Outcome, TermIds};
use crate::rules::Term;

/// None of `terms`.
#[derive(Debug, Clone, PartialEq)]
pub struct None {
    /// The terms.
    pub terms: Vec<Term>,
}

impl None {
    /// Fails as soon as one term is found.
    pub fn evaluate(&self, terms: &TermIds, evidence: &dyn Evidence) -> Outcome {
        let mut any_found = false;
        evidence.each_found(terms, &mut |_, _| {
            any_found = true;
            ControlFlow::Break(())
        });
        if any_found {
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
    fn one_term_found_vetoes() {
        let c = None { terms: Vec::new() };
        let ev = Fake {
            found: vec![1.0, 0.0],
            fired: vec![],
        };
        assert_eq!(c.evaluate(&TermIds::new(vec![0]), &ev), Outcome::Fails);
        assert_eq!(
            c.evaluate(&TermIds::new(vec![1]), &ev),
            Outcome::Holds(Option::None)
        );
    }
}
