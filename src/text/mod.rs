//! Text normalisation shared by rule compilation and message matching.
//!
//! - [`fold`]: NFKC, case and accent folding with an offset map back to the original.
//! - [`lang`]: language detection (ISO 639-1) for the seven supported languages.

pub mod fold;
pub mod lang;

pub use fold::{Folded, boundary_after, fold, fold_into, fold_term};

/// `text` with its control characters (newlines included) escaped as `\n`, `\u{1b}`…, for
/// text from files or requests that goes into diagnostics and log lines: a file name with a
/// newline in it must not be able to write a log line of its own.
pub fn printable(text: &str) -> std::borrow::Cow<'_, str> {
    if !text.chars().any(char::is_control) {
        return std::borrow::Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    std::borrow::Cow::Owned(out)
}
