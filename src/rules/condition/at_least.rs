//! `at_least = N` with `of = [...]`: at least N distinct terms are found; the evidence is the
//! N-th best-placed one.

use std::ops::ControlFlow;

use super::{Evidence, Outcome, TermIds};
use crate::rules::Term;

/// At least `n` of `terms`.
#[derive(Debug, Clone, PartialEq)]
pub struct AtLeast {
    /// How many must be found (1 ..= terms.len()).
    pub n: usize,
    /// The terms.
    pub terms: Vec<Term>,
}

impl AtLeast {
    /// Holds with the N-th best factor when N distinct terms are found.
    pub fn evaluate(&self, terms: &TermIds, evidence: &dyn Evidence) -> Outcome {
        let mut found: Vec<(f64, u32)> = Vec::new();
        evidence.each_found(terms, &mut |_, hit| {
            found.push(hit);
            ControlFlow::Continue(())
        });
        if found.len() < self.n.max(1) {
            return Outcome::Fails;
        }
        found.sort_by(|a, b| b.0.total_cmp(&a.0));
        Outcome::Holds(Some(found[self.n.max(1) - 1]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::condition::testing::Fake;

    #[test]
    fn n_distinct_terms_are_needed_and_the_nth_best_counts() {
        let c = AtLeast {
            n: 2,
            terms: Vec::new(),
        };
        let ev = Fake {
            found: vec![1.0, 1.5, 0.0],
            fired: vec![],
        };
        assert_eq!(
            c.evaluate(&TermIds::new(vec![0, 1, 2]), &ev),
            Outcome::Holds(Some((1.0, 0)))
        );
        assert_eq!(c.evaluate(&TermIds::new(vec![0, 2]), &ev), Outcome::Fails);
    }
}
