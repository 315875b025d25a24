//! `any = [...]`: at least one term is found.
//!
//! The evidence is the best-placed term's factor, times a breadth bonus of `1 + 0.25` for each
//! further distinct term found (at most two): a message that says "invoice", "VAT" and "billing
//! address" is more clearly about billing than one that says "invoice" once.

use std::ops::ControlFlow;

use super::{Evidence, Outcome, TermIds};
use crate::rules::Term;

/// Extra evidence per further distinct term found, and how many count.
pub const BREADTH_BONUS: f64 = 0.25;
/// How many further terms earn the bonus.
pub const BREADTH_MAX_EXTRA: usize = 2;

/// At least one of `terms`.
#[derive(Debug, Clone, PartialEq)]
pub struct Any {
    /// The terms.
    pub terms: Vec<Term>,
}

impl Any {
    /// Holds with the best term's factor times the breadth bonus.
    pub fn evaluate(&self, terms: &TermIds, evidence: &dyn Evidence) -> Outcome {
        let mut top: Option<(f64, u32)> = None;
        let mut found = 0usize;
        evidence.each_found(terms, &mut |_, hit| {
            found += 1;
            if top.is_none_or(|(w, _)| hit.0 > w) {
                top = Some(hit);
            }
            ControlFlow::Continue(())
        });
        match top {
            Some((w, h)) => {
                let extra = (found - 1).min(BREADTH_MAX_EXTRA) as f64;
                Outcome::Holds(Some((w * (1.0 + BREADTH_BONUS * extra), h)))
            }
            None => Outcome::Fails,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::condition::testing::Fake;

    #[test]
    fn the_best_term_decides_and_further_terms_add_breadth() {
        let any = Any { terms: Vec::new() };
        let ev = Fake {
            found: vec![1.0, 1.5, 0.0, 1.0],
            fired: vec![],
        };
        assert_eq!(
            any.evaluate(&TermIds::new(vec![0, 1, 2, 3]), &ev),
            Outcome::Holds(Some((1.5 * 1.5, 1)))
        );
        assert_eq!(any.evaluate(&TermIds::new(vec![2]), &ev), Outcome::Fails);
    }
}
