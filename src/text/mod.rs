//! Text normalisation shared by rule compilation and message matching.
//!
//! - [`fold`]: NFKC, case and accent folding with an offset map back to the original.
//! - [`lang`]: language detection (ISO 639-1) for the seven supported languages.

pub mod fold;
pub mod lang;

pub use fold::{Folded, boundary_after, boundary_before, fold, fold_term};
