//! Rule conditions: one type, one file per operator.
//!
//! A rule (or a signal) holds a list of [`Condition`]s; it fires when every one holds. The
//! conditions that hold on evidence (terms found in the message) also say how strong that
//! evidence is (the field factor of the decisive hit, see `engine`); the rule's factor is the
//! weakest of them. Adding an operator (say "A within 5 words of B") is one new file here
//! with its parsing check and its evaluation, plus its line in [`Condition`].
//!
//! | key in a rule file | operator | file |
//! |---|---|---|
//! | `any` | at least one term is found | [`any`] |
//! | `all` | every term is found | [`all`] |
//! | `at_least` + `of` | at least N distinct terms are found | [`at_least`] |
//! | `none` | no term is found (a veto) | [`none`] |
//! | `requires` | every named signal or rule fired | [`requires`] |
//! | `unless` | no named signal or rule fired | [`unless`] |

pub mod all;
pub mod any;
pub mod at_least;
pub mod none;
pub mod requires;
pub mod unless;

use std::ops::ControlFlow;

use super::Term;

/// The engine term ids of one condition, in the order written (which decides ties; the engine
/// lists a term written twice, or in two spellings that fold alike, once), with an
/// index for long lists: the blocks of 64 ids they fall in, and the ids sorted with their
/// positions. A message finds a few dozen terms; a condition may list hundreds, and testing
/// each against the message costs more than testing a handful of blocks.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TermIds {
    ids: Vec<u32>,
    /// `(block, mask)`: block `b` holds ids `64 b ..= 64 b + 63`, `mask` those of the list.
    /// Empty when the list is short or its ids are too scattered for blocks to help.
    blocks: Vec<(u32, u64)>,
    /// `(id, position)`, sorted: where each id stands in `ids` (the engine lists each id once;
    /// should a caller list one twice, it stands here twice).
    /// Empty with `blocks`.
    sorted: Vec<(u32, u32)>,
}

/// Lists up to this long are tested a term at a time.
const SHORT_LIST: usize = 16;

/// How many found positions of one list [`TermIds::each_present`] orders on the stack; more
/// (rare) fall back to the term-at-a-time test.
const FOUND_IN_A_LIST: usize = 16;

impl TermIds {
    /// Indexes `ids` (in the order written).
    pub fn new(ids: Vec<u32>) -> TermIds {
        let mut sorted: Vec<(u32, u32)> = ids.iter().enumerate().map(|(i, &t)| (t, i as u32)).collect();
        sorted.sort_unstable();
        let mut blocks: Vec<(u32, u64)> = Vec::new();
        for &(t, _) in &sorted {
            let (block, bit) = (t / 64, 1u64 << (t % 64));
            match blocks.last_mut() {
                Some((b, mask)) if *b == block => *mask |= bit,
                _ => blocks.push((block, bit)),
            }
        }
        // Blocks help when a list is long and its ids lie close (most lists are written in one
        // place and interned together); otherwise the term-at-a-time test is as cheap.
        if ids.len() <= SHORT_LIST || blocks.len() * 4 > ids.len() {
            return TermIds {
                ids,
                blocks: Vec::new(),
                sorted: Vec::new(),
            };
        }
        TermIds { ids, blocks, sorted }
    }

    /// The ids in the order written.
    pub fn ids(&self) -> &[u32] {
        &self.ids
    }

    /// Whether the list is indexed by blocks (long, with close ids).
    pub fn has_blocks(&self) -> bool {
        !self.blocks.is_empty()
    }

    /// Calls `each` with every listed id whose bit is set in `present` (bit `t % 64` of word
    /// `t / 64`; words past its end are clear), in the order written and once per listing,
    /// until `each` breaks: what a test of each listed id in turn gives, from a few AND
    /// operations on a long list.
    pub fn each_present(&self, present: &[u64], mut each: impl FnMut(u32) -> ControlFlow<()>) {
        let bit = |t: u32| {
            present
                .get(t as usize / 64)
                .is_some_and(|w| w & (1 << (t % 64)) != 0)
        };
        let in_order = |each: &mut dyn FnMut(u32) -> ControlFlow<()>| {
            for &t in &self.ids {
                if bit(t) && each(t).is_break() {
                    return;
                }
            }
        };
        if self.blocks.is_empty() {
            return in_order(&mut each);
        }
        // (position, id) of the listed ids found, then back in the order written.
        let mut found = [(0u32, 0u32); FOUND_IN_A_LIST];
        let mut n = 0;
        for &(block, mask) in &self.blocks {
            let mut bits = present.get(block as usize).copied().unwrap_or(0) & mask;
            while bits != 0 {
                let t = block * 64 + bits.trailing_zeros();
                bits &= bits - 1;
                let from = self.sorted.partition_point(|&(id, _)| id < t);
                for &(_, pos) in self.sorted[from..].iter().take_while(|&&(id, _)| id == t) {
                    if n == FOUND_IN_A_LIST {
                        return in_order(&mut each);
                    }
                    found[n] = (pos, t);
                    n += 1;
                }
            }
        }
        let found = &mut found[..n];
        found.sort_unstable();
        for &(_, t) in found.iter() {
            if each(t).is_break() {
                return;
            }
        }
    }
}

/// What a condition can ask of the message being classified. The engine implements it for
/// one rule at a time (so "found" already means "found in the fields this rule reads").
pub trait Evidence {
    /// The best occurrence of term `term` (an engine term id): its weight (the field factor
    /// times the structure factor: request sentence, reply subject, negated scope) and an
    /// opaque handle the engine uses to quote it. `None` when the term is not found.
    fn best(&self, term: u32) -> Option<(f64, u32)>;
    /// Whether the signal or rule with engine index `unit` fired on this message.
    fn fired(&self, unit: u32) -> bool;
    /// Calls `each` with every term of `terms` that is found, in the order written (a term
    /// listed twice, twice), and its best
    /// occurrence (as [`Evidence::best`] gives it), until `each` breaks. One call per
    /// condition: most terms of a rule are absent from a message, and an implementation can
    /// skip them without a call each.
    fn each_found(&self, terms: &TermIds, each: &mut dyn FnMut(u32, (f64, u32)) -> ControlFlow<()>) {
        for &t in terms.ids() {
            if let Some(hit) = self.best(t)
                && each(t, hit).is_break()
            {
                return;
            }
        }
    }
}

/// The outcome of one condition.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Outcome {
    /// The condition holds; with the evidence that made it hold, when it holds on terms.
    Holds(Option<(f64, u32)>),
    /// The condition does not hold: the rule does not fire.
    Fails,
}

/// One condition of a rule or signal.
#[derive(Debug, Clone, PartialEq)]
pub enum Condition {
    /// `any`: see [`any::Any`].
    Any(any::Any),
    /// `all`: see [`all::All`].
    All(all::All),
    /// `at_least` of `of`: see [`at_least::AtLeast`].
    AtLeast(at_least::AtLeast),
    /// `none`: see [`none::None`].
    None(none::None),
    /// `requires`: see [`requires::Requires`].
    Requires(requires::Requires),
    /// `unless`: see [`unless::Unless`].
    Unless(unless::Unless),
}

impl Condition {
    /// The key that writes it in a rule file.
    pub fn key(&self) -> &'static str {
        match self {
            Condition::Any(_) => "any",
            Condition::All(_) => "all",
            Condition::AtLeast(_) => "of",
            Condition::None(_) => "none",
            Condition::Requires(_) => "requires",
            Condition::Unless(_) => "unless",
        }
    }

    /// The terms it looks for (compiled into the engine's automaton).
    pub fn terms(&self) -> &[Term] {
        match self {
            Condition::Any(c) => &c.terms,
            Condition::All(c) => &c.terms,
            Condition::AtLeast(c) => &c.terms,
            Condition::None(c) => &c.terms,
            Condition::Requires(_) | Condition::Unless(_) => &[],
        }
    }

    /// The signals and rules it refers to, by id.
    pub fn references(&self) -> &[String] {
        match self {
            Condition::Requires(c) => &c.ids,
            Condition::Unless(c) => &c.ids,
            _ => &[],
        }
    }

    /// Whether finding one of its terms makes the rule worth evaluating (a veto's terms do not).
    pub fn triggers(&self) -> bool {
        matches!(
            self,
            Condition::Any(_) | Condition::All(_) | Condition::AtLeast(_)
        )
    }

    /// Evaluates the condition; `terms` are the engine ids of [`Condition::terms`] and `units`
    /// the engine indexes of [`Condition::references`], in the same order.
    pub fn evaluate(&self, terms: &TermIds, units: &[u32], evidence: &dyn Evidence) -> Outcome {
        match self {
            Condition::Any(c) => c.evaluate(terms, evidence),
            Condition::All(c) => c.evaluate(terms, evidence),
            Condition::AtLeast(c) => c.evaluate(terms, evidence),
            Condition::None(c) => c.evaluate(terms, evidence),
            Condition::Requires(c) => c.evaluate(units, evidence),
            Condition::Unless(c) => c.evaluate(units, evidence),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::ops::ControlFlow;

    use proptest::prelude::*;

    use super::TermIds;

    fn present(ids: &[u32]) -> Vec<u64> {
        let mut words = vec![0u64; 80];
        for &t in ids {
            words[t as usize / 64] |= 1 << (t % 64);
        }
        words
    }

    #[test]
    fn a_long_list_of_close_ids_gets_blocks_and_a_short_or_scattered_one_does_not() {
        assert!(TermIds::new((100..140).collect()).has_blocks());
        assert!(!TermIds::new((0..16).collect()).has_blocks());
        assert!(!TermIds::new((0..40).map(|i| i * 64).collect()).has_blocks());
    }

    #[test]
    fn found_ids_come_in_the_order_written_once_per_listing() {
        let terms = TermIds::new((100..140).rev().chain([105, 120]).collect());
        assert!(terms.has_blocks());
        let mut seen = Vec::new();
        terms.each_present(&present(&[105, 139, 120, 3]), |t| {
            seen.push(t);
            ControlFlow::Continue(())
        });
        assert_eq!(seen, vec![139, 120, 105, 105, 120]);
    }

    proptest! {
        #[test]
        fn each_present_is_the_term_at_a_time_test(
            ids in prop::collection::vec(0u32..300, 0..80),
            found in prop::collection::vec(0u32..400, 0..40),
            stop_after in 1usize..30,
        ) {
            let terms = TermIds::new(ids.clone());
            let present = present(&found);
            let naive: Vec<u32> = ids
                .iter()
                .copied()
                .filter(|t| found.contains(t))
                .take(stop_after)
                .collect();
            let mut seen = Vec::new();
            terms.each_present(&present, |t| {
                seen.push(t);
                if seen.len() == stop_after {
                    ControlFlow::Break(())
                } else {
                    ControlFlow::Continue(())
                }
            });
            prop_assert_eq!(seen, naive);
        }
    }
}

#[cfg(test)]
pub(crate) mod testing {
    //! A hand-made [`Evidence`] for the operators' unit tests.
    use super::Evidence;

    /// Term `i` is found with weight `found[i]` (0 = not found); unit `u` fired when `fired[u]`.
    pub struct Fake {
        pub found: Vec<f64>,
        pub fired: Vec<bool>,
    }

    impl Evidence for Fake {
        fn best(&self, term: u32) -> Option<(f64, u32)> {
            let w = *self.found.get(term as usize)?;
            (w != 0.0).then_some((w, term))
        }
        fn fired(&self, unit: u32) -> bool {
            self.fired.get(unit as usize).copied().unwrap_or(false)
        }
    }
}
