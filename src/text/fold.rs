//! Folding: the one normalisation applied to rule terms and message text alike.
//!
//! Each character goes through NFKC-style compatibility decomposition, loses its combining marks
//! (accents), is case-folded (full Unicode folding, so `ß` becomes `ss`), and Latin letters that
//! have no decomposition (`ł`, `ø`, `æ`, `đ`) are transliterated to ASCII. Runs of whitespace
//! collapse to one space. Punctuation is kept. The result remembers, for every byte, where it
//! came from in the original, so evidence can quote the text as the customer wrote it.

use caseless::Caseless;
use unicode_normalization::char::{decompose_compatible, is_combining_mark};

/// Text after [`fold`], with a map back to the original's byte offsets.
#[derive(Debug, Clone, Default)]
pub struct Folded {
    /// The folded text: lower case, no accents, single spaces.
    pub text: String,
    /// `origin[i]` is the original byte offset of folded byte `i`; one extra entry marks the end.
    origin: Vec<u32>,
}

impl Folded {
    /// The original byte range that produced the folded range `start..end`.
    pub fn original_range(&self, start: usize, end: usize) -> (usize, usize) {
        let s = self.origin.get(start).copied().unwrap_or(0) as usize;
        let e = self.origin.get(end).copied().unwrap_or(0) as usize;
        (s, e.max(s))
    }
}

/// Folds `text` for matching (see the module documentation).
pub fn fold(text: &str) -> Folded {
    let mut folded = Folded::default();
    fold_into(text, &mut folded);
    folded
}

/// Folds `text` into `folded`, reusing its buffers (what [`fold`] does without allocating once
/// they are large enough).
pub fn fold_into(text: &str, folded: &mut Folded) {
    let Folded { text: out, origin } = folded;
    out.clear();
    origin.clear();
    out.reserve(text.len());
    origin.reserve(text.len() + 1);
    let mut last_space = true; // leading whitespace is dropped
    let mut decomposed = Vec::with_capacity(4);
    for (offset, c) in text.char_indices() {
        let offset = offset as u32;
        if c.is_ascii() {
            if c.is_ascii_whitespace() || c.is_ascii_control() {
                push_space(out, origin, &mut last_space, offset);
            } else {
                out.push(c.to_ascii_lowercase());
                origin.push(offset);
                last_space = false;
            }
            continue;
        }
        if c.is_whitespace() || c.is_control() || is_invisible(c) {
            if !is_invisible(c) {
                push_space(out, origin, &mut last_space, offset);
            }
            continue;
        }
        decomposed.clear();
        decompose_compatible(c, |d| decomposed.push(d));
        for &d in &decomposed {
            if is_combining_mark(d) {
                continue;
            }
            // Spacing accents (´ ¨) decompose to a space plus a mark.
            if d.is_whitespace() {
                push_space(out, origin, &mut last_space, offset);
                continue;
            }
            for f in std::iter::once(d).default_case_fold() {
                push_folded(out, origin, f, offset);
                last_space = false;
            }
        }
    }
    if out.ends_with(' ') {
        out.pop();
        origin.pop();
    }
    origin.push(text.len() as u32);
}

/// Folds a rule term: the same as [`fold`], without the offset map.
pub fn fold_term(term: &str) -> String {
    fold(term).text
}

fn push_space(out: &mut String, origin: &mut Vec<u32>, last_space: &mut bool, offset: u32) {
    if !*last_space {
        out.push(' ');
        origin.push(offset);
        *last_space = true;
    }
}

fn push_folded(out: &mut String, origin: &mut Vec<u32>, c: char, offset: u32) {
    if c.is_ascii() || !is_latin_extended(c) {
        let before = out.len();
        out.push(c);
        origin.extend(std::iter::repeat_n(offset, out.len() - before));
        return;
    }
    // Latin letters without a canonical decomposition (ł, ø, æ, đ, þ, ı).
    match deunicode::deunicode_char(c) {
        Some(ascii) if !ascii.is_empty() && ascii.chars().all(|a| a.is_ascii_alphanumeric()) => {
            for a in ascii.chars() {
                out.push(a.to_ascii_lowercase());
                origin.push(offset);
            }
        }
        _ => {
            let before = out.len();
            out.push(c);
            origin.extend(std::iter::repeat_n(offset, out.len() - before));
        }
    }
}

/// Latin-1 Supplement through Latin Extended-B, and Latin Extended Additional.
fn is_latin_extended(c: char) -> bool {
    matches!(c, '\u{00C0}'..='\u{024F}' | '\u{1E00}'..='\u{1EFF}')
}

/// Zero-width characters that must not split or join words.
fn is_invisible(c: char) -> bool {
    matches!(c, '\u{00AD}' | '\u{200B}'..='\u{200D}' | '\u{2060}' | '\u{FEFF}')
}

/// True when the folded text has a word boundary just after byte `at`.
pub fn boundary_after(text: &str, at: usize) -> bool {
    text[at..].chars().next().is_none_or(|c| !c.is_alphanumeric())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accents_and_case_fold_to_the_same_text() {
        assert_eq!(fold("Facturación").text, "facturacion");
        assert_eq!(fold("FACTURACIÓN").text, "facturacion");
        assert_eq!(fold("facturacion").text, "facturacion");
    }

    #[test]
    fn sharp_s_and_undecomposable_latin_letters_become_ascii() {
        assert_eq!(fold("Straße").text, "strasse");
        assert_eq!(fold("Łódź").text, "lodz");
        assert_eq!(fold("Søren Æbelø").text, "soren aebelo");
        assert_eq!(fold("Prośbą").text, "prosba");
    }

    #[test]
    fn compatibility_forms_are_unified() {
        assert_eq!(fold("ｆａｃｔｕｒａ").text, "factura");
        assert_eq!(fold("ﬁle").text, "file");
    }

    #[test]
    fn decomposed_accents_are_removed_too() {
        assert_eq!(fold("Cafe\u{301}").text, "cafe");
    }

    #[test]
    fn a_spacing_accent_becomes_a_collapsible_space() {
        assert_eq!(fold("´0").text, "0");
        assert_eq!(fold("a ´ b").text, "a b");
    }

    #[test]
    fn whitespace_runs_collapse_and_edges_are_trimmed() {
        assert_eq!(fold("  a \t\n\u{a0} b  ").text, "a b");
    }

    #[test]
    fn offsets_map_back_to_the_original_text() {
        let original = "Die Rechnung für März";
        let folded = fold(original);
        let start = folded.text.find("marz").unwrap();
        let (s, e) = folded.original_range(start, start + 4);
        assert_eq!(&original[s..e], "März");
    }

    #[test]
    fn a_boundary_follows_a_word_before_punctuation_but_not_inside_it() {
        let t = "a party, art.";
        assert!(!boundary_after(t, t.find("par").unwrap() + 3));
        assert!(boundary_after(t, t.rfind("art").unwrap() + 3));
        assert!(boundary_after(t, t.len()));
    }
}
