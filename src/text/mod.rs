//! Text normalisation shared by rule compilation and message matching.
//!
//! - [`fold`]: NFKC, case and accent folding with an offset map back to the original.
//! - [`lang`]: language detection (ISO 639-1) for the seven supported languages.

pub mod fold;
pub mod lang;

pub use fold::{Folded, boundary_after, fold, fold_into, fold_term};

/// Whether each byte is an ASCII letter or digit: one load instead of three range tests.
pub(crate) const ASCII_ALPHANUMERIC: [bool; 256] = {
    let mut table = [false; 256];
    let mut b = 0;
    while b < 256 {
        table[b] = (b as u8).is_ascii_alphanumeric();
        b += 1;
    }
    table
};

/// Calls `f` with every piece of `text` between characters that are not alphanumeric (empty
/// pieces included), as `text.split(|c: char| !c.is_alphanumeric())` would; ASCII, most of a
/// folded text, is classified a byte at a time without decoding a char.
pub fn each_word<'a>(text: &'a str, mut f: impl FnMut(&'a str)) {
    let bytes = text.as_bytes();
    let mut start = 0;
    let mut i = 0;
    while i < bytes.len() {
        // A run of ASCII letters and digits (most of a folded text) holds no separator.
        i += bytes[i..]
            .iter()
            .take_while(|&&b| ASCII_ALPHANUMERIC[usize::from(b)])
            .count();
        if i == bytes.len() {
            break;
        }
        let (separator, len) = match bytes[i] {
            b if b.is_ascii() => (!b.is_ascii_alphanumeric(), 1),
            _ => {
                let c = text[i..].chars().next().expect("a char starts here");
                (!c.is_alphanumeric(), c.len_utf8())
            }
        };
        if separator {
            f(&text[start..i]);
            start = i + len;
        }
        i += len;
    }
    f(&text[start..]);
}

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_are_split_where_str_split_on_non_alphanumerics_splits_them() {
        for text in ["", "a", " we  are, here ", "über straße: ł-ó 50€x", "end."] {
            let mut words = Vec::new();
            each_word(text, |w| words.push(w));
            let expected: Vec<&str> = text.split(|c: char| !c.is_alphanumeric()).collect();
            assert_eq!(words, expected, "{text:?}");
        }
    }
}
