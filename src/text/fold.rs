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
    /// The map back to the original, as runs in folded order (see [`Run`]): one per stretch
    /// copied byte for byte and one per folded non-ASCII character, so ASCII text costs a few
    /// entries, not one per byte.
    runs: Vec<Run>,
    /// The original text's length: where the folded text's end maps to.
    end: u32,
}

/// Folded bytes from `folded` on (up to the next run) came from `original + step × (i −
/// folded)`: `step` 1 for bytes copied one to one, 0 for the bytes of one folded character.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Run {
    folded: u32,
    original: u32,
    step: u32,
}

impl Folded {
    /// The original byte range that produced the folded range `start..end`.
    pub fn original_range(&self, start: usize, end: usize) -> (usize, usize) {
        let s = self.origin_of(start).unwrap_or(0) as usize;
        let e = self.origin_of(end).unwrap_or(0) as usize;
        (s, e.max(s))
    }

    /// How many folded bytes came from the original before byte `original`: the length of the
    /// folded text's prefix that folds the original's first `original` bytes (at a character
    /// boundary), up to a space that folding would have trimmed.
    pub fn folded_before(&self, original: usize) -> usize {
        let original = original as u32;
        let (mut lo, mut hi) = (0, self.text.len());
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            if self.origin_of(mid).is_some_and(|o| o < original) {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        lo
    }

    /// The original byte offset of folded byte `i`; the original's end for `i` at the folded
    /// text's end; `None` past it.
    fn origin_of(&self, i: usize) -> Option<u32> {
        if i >= self.text.len() {
            return (i == self.text.len()).then_some(self.end);
        }
        let i = i as u32;
        let r = self.runs[self.runs.partition_point(|r| r.folded <= i) - 1];
        Some(r.original + r.step * (i - r.folded))
    }
}

/// Notes in `runs` that the folded bytes from `folded` on came from `original` on, one to one
/// (`linear`) or all from that one offset; a stretch that continues the last run (more bytes
/// copied in step, or more bytes of the same character) adds nothing.
fn map(runs: &mut Vec<Run>, folded: usize, original: u32, linear: bool) {
    let (folded, step) = (folded as u32, u32::from(linear));
    if let Some(last) = runs.last()
        && last.step == step
        && last.original + step * (folded - last.folded) == original
    {
        return;
    }
    runs.push(Run {
        folded,
        original,
        step,
    });
}

/// Whether each byte is ASCII and neither white space nor a control character: what folds
/// byte for byte without a collapse (one load instead of three tests).
const VISIBLE_ASCII: [bool; 256] = {
    let mut table = [false; 256];
    let mut b = 0;
    while b < 256 {
        table[b] = b < 128 && !is_ascii_space(b as u8);
        b += 1;
    }
    table
};

/// ASCII white space or a control character (what folds to a collapsible space).
const fn is_ascii_space(b: u8) -> bool {
    b <= b' ' || b == 0x7f
}

/// Folds `text` for matching (see the module documentation).
pub fn fold(text: &str) -> Folded {
    let mut folded = Folded::default();
    fold_into(text, &mut folded);
    folded
}

/// Folds `text` into `folded`, reusing its buffers (what [`fold`] does without allocating once
/// they are large enough).
///
/// ASCII bytes take a path of their own, and the characters of Latin-1 and Latin Extended-A/B
/// (what the seven languages' accents are) come from a table built once by the general path
/// ([`fold_char`]), so both give what the general path would.
pub fn fold_into(text: &str, folded: &mut Folded) {
    // Bytes are written to a vector and become the text again at the end: only whole
    // characters are written, so that cannot fail.
    let mut out = std::mem::take(&mut folded.text).into_bytes();
    out.clear();
    out.reserve(text.len());
    let runs = &mut folded.runs;
    runs.clear();
    let mut last_space = true; // leading whitespace is dropped
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        let offset = i as u32;
        if b.is_ascii() {
            if is_ascii_space(b) && last_space {
                i += 1;
                continue;
            }
            // The stretch from here that folds byte for byte: ASCII, and no space after a
            // space (a collapse is where the step breaks). One run, one copy.
            let mut end = i;
            let mut space = last_space;
            while let Some(&c) = bytes.get(end).filter(|c| c.is_ascii()) {
                if is_ascii_space(c) && space {
                    break;
                }
                // The byte, and the visible characters after it (a word and its punctuation)
                // at once.
                end += 1;
                end += bytes[end..]
                    .iter()
                    .take_while(|&&c| VISIBLE_ASCII[usize::from(c)])
                    .count();
                space = is_ascii_space(bytes[end - 1]);
            }
            map(runs, out.len(), offset, true);
            // Copied, then folded in place: a loop without a table lookup, which vectorises.
            let from = out.len();
            out.extend_from_slice(&bytes[i..end]);
            for c in &mut out[from..] {
                *c = if is_ascii_space(*c) {
                    b' '
                } else {
                    c.to_ascii_lowercase()
                };
            }
            last_space = space;
            i = end;
            continue;
        }
        let c = text[i..].chars().next().expect("a char starts at every boundary");
        i += c.len_utf8();
        let mut apply = |piece: Piece| match piece {
            Piece::Space => {
                if !last_space {
                    map(runs, out.len(), offset, true);
                    out.push(b' ');
                    last_space = true;
                }
            }
            Piece::Char(f) => {
                map(runs, out.len(), offset, false);
                out.extend_from_slice(f.encode_utf8(&mut [0; 4]).as_bytes());
                last_space = false;
            }
        };
        match LATIN.get((c as usize).wrapping_sub(LATIN_FIRST as usize)) {
            Some(pieces) => pieces.iter().copied().for_each(&mut apply),
            None => fold_char(c, &mut apply),
        }
    }
    if out.last() == Some(&b' ') {
        out.pop();
    }
    folded.text = String::from_utf8(out).expect("folding writes whole characters");
    folded.end = text.len() as u32;
}

/// What one character folds to, in order: a (collapsible) space or a character of output.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Piece {
    Space,
    Char(char),
}

/// The first and last characters of [`LATIN`]: Latin-1 Supplement through Latin Extended-B.
const LATIN_FIRST: char = '\u{0080}';
const LATIN_LAST: char = '\u{024F}';

/// [`fold_char`] of every character from [`LATIN_FIRST`] to [`LATIN_LAST`], computed once.
static LATIN: std::sync::LazyLock<Vec<Vec<Piece>>> = std::sync::LazyLock::new(|| {
    (LATIN_FIRST..=LATIN_LAST)
        .map(|c| {
            let mut pieces = Vec::new();
            fold_char(c, &mut |p| pieces.push(p));
            pieces
        })
        .collect()
});

/// Folds one non-ASCII character: whitespace and controls become a space, invisible characters
/// nothing; anything else is decomposed, loses its combining marks, is case-folded and, for
/// Latin letters without a decomposition, transliterated.
fn fold_char(c: char, emit: &mut impl FnMut(Piece)) {
    if is_invisible(c) {
        return;
    }
    if c.is_whitespace() || c.is_control() {
        emit(Piece::Space);
        return;
    }
    let mut decomposed: [char; 18] = ['\0'; 18];
    let mut n = 0;
    decompose_compatible(c, |d| {
        // Unicode's longest compatibility decomposition is 18 characters (U+FDFA).
        if n < decomposed.len() {
            decomposed[n] = d;
            n += 1;
        }
    });
    for &d in &decomposed[..n] {
        if is_combining_mark(d) {
            continue;
        }
        // Spacing accents (´ ¨) decompose to a space plus a mark.
        if d.is_whitespace() {
            emit(Piece::Space);
            continue;
        }
        for f in std::iter::once(d).default_case_fold() {
            transliterate(f, emit);
        }
    }
}

/// Folds a rule term: the same as [`fold`], without the offset map.
pub fn fold_term(term: &str) -> String {
    fold(term).text
}

/// Emits `c`, or for Latin letters without a canonical decomposition (ł, ø, æ, đ, þ, ı) their
/// ASCII transliteration.
fn transliterate(c: char, emit: &mut impl FnMut(Piece)) {
    if c.is_ascii() || !is_latin_extended(c) {
        emit(Piece::Char(c));
        return;
    }
    match deunicode::deunicode_char(c) {
        Some(ascii) if !ascii.is_empty() && ascii.chars().all(|a| a.is_ascii_alphanumeric()) => {
            for a in ascii.chars() {
                emit(Piece::Char(a.to_ascii_lowercase()));
            }
        }
        _ => emit(Piece::Char(c)),
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

    /// What [`fold_into`] gives, computed by [`fold_char`] alone for every character.
    fn fold_by_the_general_path(text: &str) -> (String, Vec<u32>) {
        let (mut out, mut origin, mut last_space) = (String::new(), Vec::new(), true);
        for (offset, c) in text.char_indices() {
            let offset = offset as u32;
            let mut apply = |piece: Piece| match piece {
                Piece::Space => {
                    if !last_space {
                        out.push(' ');
                        origin.push(offset);
                        last_space = true;
                    }
                }
                Piece::Char(f) => {
                    let before = out.len();
                    out.push(f);
                    origin.extend(std::iter::repeat_n(offset, out.len() - before));
                    last_space = false;
                }
            };
            if c.is_ascii() && !c.is_ascii_whitespace() && !c.is_ascii_control() {
                apply(Piece::Char(c.to_ascii_lowercase()));
            } else if c.is_ascii() {
                apply(Piece::Space);
            } else {
                fold_char(c, &mut apply);
            }
        }
        if out.ends_with(' ') {
            out.pop();
            origin.pop();
        }
        origin.push(text.len() as u32);
        (out, origin)
    }

    #[test]
    fn the_ascii_run_and_the_latin_table_fold_as_the_general_path_does() {
        let mut text = String::from("  Ünïcode\tAND ascii:  Straße, ŁÓDŹ\u{00AD}x \u{00A0}´0 ﬁle Ｆ ");
        // Every character of the table, between ASCII letters and spaces.
        for c in LATIN_FIRST..=LATIN_LAST {
            text.push(c);
            text.push_str("Ab ");
        }
        let folded = fold(&text);
        let (out, origin) = fold_by_the_general_path(&text);
        assert_eq!(folded.text, out);
        let mapped: Vec<u32> = (0..=out.len()).map(|i| folded.origin_of(i).unwrap()).collect();
        assert_eq!(mapped, origin);
        assert_eq!(folded.origin_of(out.len() + 1), None);
    }

    proptest::proptest! {
        /// The ASCII path (stretches stepped over a word at a time, then lower-cased in place)
        /// folds any mix of ASCII, white space runs, controls and accents as the general path.
        #[test]
        fn any_text_folds_as_the_general_path_does(text in "([ -~]|[\t\n\r\x00\x7f]| {2,3}|[éßŁ]){0,80}") {
            let folded = fold(&text);
            let (out, origin) = fold_by_the_general_path(&text);
            proptest::prop_assert_eq!(&folded.text, &out);
            let mapped: Vec<u32> = (0..=out.len()).map(|i| folded.origin_of(i).unwrap()).collect();
            proptest::prop_assert_eq!(mapped, origin);
        }
    }

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
    fn the_folded_prefix_of_an_original_prefix_is_its_fold() {
        let text = "  Straße ÀB\u{00AD}c  ﬁle ŁÓDŹ end ";
        let folded = fold(text);
        for (cut, _) in text.char_indices().chain([(text.len(), ' ')]) {
            let prefix = fold(&text[..cut]).text;
            let end = folded.folded_before(cut);
            assert_eq!(folded.text[..end].trim_end(), prefix, "cut at {cut}");
        }
    }

    #[test]
    fn a_boundary_follows_a_word_before_punctuation_but_not_inside_it() {
        let t = "a party, art.";
        assert!(!boundary_after(t, t.find("par").unwrap() + 3));
        assert!(boundary_after(t, t.rfind("art").unwrap() + 3));
        assert!(boundary_after(t, t.len()));
    }
}
