//! `all = [...]`: every term is found; the evidence is the weakest-placed one.

use std::ops::ControlFlow;

use super::{Evidence, Outcome, TermIds};
use crate::rules::Term;

/// Every one of `terms`.
#[derive(Debug, Clone, PartialEq)]
pub struct All {
    /// The terms.
    pub terms: Vec<Term>,
}

impl All {
    /// Holds with the weakest term's factor when every term is found.
    pub fn evaluate(&self, terms: &TermIds, evidence: &dyn Evidence) -> Outcome {
        let mut weakest: Option<(f64, u32)> = None;
        let mut found = 0usize;
        evidence.each_found(terms, &mut |_, hit| {
            found += 1;
            if weakest.is_none_or(|(w, _)| hit.0 < w) {
                weakest = Some(hit);
            }
            ControlFlow::Continue(())
        });
        if found < terms.ids().len() {
            return Outcome::Fails;
        }
        Outcome::Holds(weakest)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::condition::testing::Fake;

    #[test]
    fn every_term_is_needed_and_the_weakest_counts() {
        let all = All { terms: Vec::new() };
        let ev = Fake {
            found: vec![1.5, 0.25, 0.0],
            fired: vec![],
        };
        assert_eq!(
            all.evaluate(&TermIds::new(vec![0, 1]), &ev),
            Outcome::Holds(Some((0.25, 1)))
        );
        assert_eq!(all.evaluate(&TermIds::new(vec![0, 2]), &ev), Outcome::Fails);
    }
}
