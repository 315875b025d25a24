//! Match terms: words, phrases, word prefixes and regexes, as written in rule files.

use std::fmt;
use std::sync::Arc;

use regex_syntax::hir::Hir;

use super::limits::{MAX_REGEX_BYTES, MAX_REGEX_NFA_BYTES, MAX_TERM_BYTES};
use crate::text::fold_term;

/// One match term, already folded for matching.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Term {
    /// A word or phrase that must match on word boundaries at both ends.
    Word(String),
    /// A word prefix (`factur*`): a boundary before it, anything after.
    Prefix(String),
    /// A regular expression over the folded text.
    Regex(RegexTerm),
}

/// The compiler that checks regex terms' sizes ([`Term::parse_checked`]), one for a whole
/// ruleset: a new compiler allocates and zeroes its UTF-8 state cache (10,000 entries) for the
/// first Unicode class it compiles, and a new one per regex was a fifth of what checking a
/// regex cost (callgrind, the default ruleset: 46 M of 238 M instructions).
pub struct RegexCheck {
    compiler: regex_automata::nfa::thompson::Compiler,
}

impl Default for RegexCheck {
    fn default() -> RegexCheck {
        use regex_automata::nfa::thompson;
        let mut compiler = thompson::Compiler::new();
        compiler.configure(thompson::Config::new().nfa_size_limit(Some(MAX_REGEX_NFA_BYTES)));
        RegexCheck { compiler }
    }
}

impl fmt::Debug for RegexCheck {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RegexCheck").finish_non_exhaustive()
    }
}

/// A regex term: its pattern as written (between the slashes, or built from a phrase with
/// prefix words), and the syntax tree the engine compiles, of the pattern with ASCII word
/// classes ([`ascii_classes`]).
///
/// The loader's check parses a pattern once and the engine plans and compiles from that tree:
/// parsing is most of what a regex costs before it is compiled (callgrind, the default
/// ruleset: 180 M of a 662 M start-up went to parsing each regex three times). Two regex terms
/// are equal, ordered and hashed by their patterns.
#[derive(Clone)]
pub struct RegexTerm {
    pattern: String,
    hir: Arc<Hir>,
}

impl RegexTerm {
    /// Parses `pattern` as the engine runs it; the error is why it is not a valid regex.
    pub fn new(pattern: &str) -> Result<RegexTerm, String> {
        let hir = regex_syntax::Parser::new()
            .parse(&ascii_classes(pattern))
            .map_err(|e| match e {
                regex_syntax::Error::Parse(e) => format!("invalid regex: {}", e.kind()),
                regex_syntax::Error::Translate(e) => format!("invalid regex: {}", e.kind()),
                e => format!("invalid regex: {e}"),
            })?;
        Ok(RegexTerm {
            pattern: pattern.to_string(),
            hir: Arc::new(hir),
        })
    }

    /// The pattern as written.
    pub fn pattern(&self) -> &str {
        &self.pattern
    }

    /// The syntax tree the engine compiles (ASCII `\b`, `\w`, `\d`).
    pub fn hir(&self) -> &Arc<Hir> {
        &self.hir
    }
}

impl fmt::Debug for RegexTerm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.pattern, f)
    }
}

impl PartialEq for RegexTerm {
    fn eq(&self, other: &Self) -> bool {
        self.pattern == other.pattern
    }
}

impl Eq for RegexTerm {}

impl PartialOrd for RegexTerm {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for RegexTerm {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.pattern.cmp(&other.pattern)
    }
}

impl std::hash::Hash for RegexTerm {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.pattern.hash(state);
    }
}

impl Term {
    /// Parses a term as written in a rule file (see `rules/README.md`), within the
    /// [`super::limits`] (length, and for a regex its compiled size).
    pub fn parse(written: &str) -> Result<Term, String> {
        Term::parse_sized(written).map(|(term, _)| term)
    }

    /// [`Term::parse`], with the term's compiled size in bytes (its Thompson NFA as the engine
    /// compiles it; 0 for words and prefixes), which the loader counts towards the ruleset's
    /// limit: a regex is compiled once to check it, not again to count it.
    pub fn parse_sized(written: &str) -> Result<(Term, usize), String> {
        Term::parse_checked(written, &RegexCheck::default())
    }

    /// [`Term::parse_sized`] with the compiler of a whole ruleset's check.
    pub fn parse_checked(written: &str, check: &RegexCheck) -> Result<(Term, usize), String> {
        let term = Term::parse_unsized(written)?;
        let bytes = match &term {
            Term::Regex(regex) => regex_size(regex.hir(), check)?,
            _ => 0,
        };
        Ok((term, bytes))
    }

    fn parse_unsized(written: &str) -> Result<Term, String> {
        // A regex runs on folded text, which holds no control character (folding makes each a
        // space), so a regex with one never matches: most often it was written in a
        // double-quoted TOML string, where `\b` is a backspace. (A word or phrase folds its
        // control characters to spaces like the text, so it still matches.)
        let trimmed_regex = written.trim();
        if trimmed_regex.len() >= 2
            && trimmed_regex.starts_with('/')
            && trimmed_regex.ends_with('/')
            && let Some(c) = trimmed_regex.chars().find(|c| c.is_control())
        {
            let escape = match c {
                '\u{8}' => "`\\b` is a backspace",
                '\u{c}' => "`\\f` is a form feed",
                '\t' => "`\\t` is a tab",
                '\n' => "`\\n` is a line break",
                '\r' => "`\\r` is a carriage return",
                _ => "escapes become control characters",
            };
            return Err(format!(
                "the regex holds the control character U+{:04X}, which no folded text contains; in a \
                 double-quoted TOML string {escape}: write a regex in single quotes ('/\\bword\\b/')",
                u32::from(c)
            ));
        }
        let trimmed = written.trim();
        if trimmed.len() >= 2 && trimmed.starts_with('/') && trimmed.ends_with('/') {
            let pattern = &trimmed[1..trimmed.len() - 1];
            if pattern.is_empty() {
                return Err("empty regex".into());
            }
            if pattern.len() > MAX_REGEX_BYTES {
                return Err(format!(
                    "a regex may be at most {MAX_REGEX_BYTES} bytes; this one is {}",
                    pattern.len()
                ));
            }
            // The pattern as written must be a valid regex. The engine runs it with ASCII word
            // classes ([`ascii_classes`]), and that rewrite of `\d` or `\w` inside a class can
            // make an invalid class valid (`[\d-.]` becomes `[0-9-.]`); outside a class it swaps
            // one atom for another, which changes no pattern's validity (a property test
            // below). So only a pattern with a class is also parsed as written.
            if pattern.contains('[') {
                regex_syntax::ast::parse::Parser::new()
                    .parse(pattern)
                    .map_err(|e| format!("invalid regex: {}", e.kind()))?;
            }
            return RegexTerm::new(pattern).map(Term::Regex);
        }
        if trimmed.len() > MAX_TERM_BYTES {
            return Err(format!(
                "a term may be at most {MAX_TERM_BYTES} bytes; this one is {}",
                trimmed.len()
            ));
        }
        let (body, prefix) = match trimmed.strip_suffix('*') {
            Some(body) => (body, true),
            None => (trimmed, false),
        };
        if body.contains('*') {
            return phrase_with_prefixes(trimmed);
        }
        let folded = fold_term(body);
        if folded.is_empty() {
            return Err("empty term".into());
        }
        if prefix && folded.chars().count() < 3 {
            return Err("a prefix needs at least three letters, or it matches almost anything".into());
        }
        Ok(if prefix {
            Term::Prefix(folded)
        } else {
            Term::Word(folded)
        })
    }
}

/// A phrase in which some words are prefixes (`invitation* a laisser un avis`): compiled to a
/// regex over the folded text, since one automaton pattern cannot express it.
fn phrase_with_prefixes(written: &str) -> Result<Term, String> {
    let folded = fold_term(written);
    let words: Vec<&str> = folded.split(' ').collect();
    let mut pattern = String::from(r"\b");
    for (i, word) in words.iter().enumerate() {
        let (stem, prefix) = match word.strip_suffix('*') {
            Some(stem) => (stem, true),
            None => (*word, false),
        };
        if stem.is_empty() || stem.contains('*') {
            return Err("`*` is only allowed at the end of a word (a word prefix)".into());
        }
        if i > 0 {
            pattern.push(' ');
        }
        pattern.push_str(&regex_syntax::escape(stem));
        pattern.push_str(if prefix { r"\w*" } else { "" });
        if i + 1 == words.len() && !prefix {
            pattern.push_str(r"\b");
        }
    }
    RegexTerm::new(&pattern).map(Term::Regex)
}

/// The size of a regex term's tree compiled as the engine compiles it, or why it cannot be:
/// over [`MAX_REGEX_NFA_BYTES`] (the compiler stops as soon as it is exceeded), or a tree the
/// compiler refuses (syntax errors are found before, by the parse).
fn regex_size(hir: &Hir, check: &RegexCheck) -> Result<usize, String> {
    let nfa = check.compiler.build_from_hir(hir)
        .map_err(|e| {
            if e.size_limit().is_some() {
                format!(
                    "the regex compiles to more than {MAX_REGEX_NFA_BYTES} bytes (its cost on every message grows with it): use shorter counted repetitions or fewer alternatives"
                )
            } else {
                format!("invalid regex: {e}")
            }
        })?;
    Ok(nfa.memory_usage())
}

/// Makes `\b`, `\w` and `\d` (and `\W`, `\D`) ASCII; `\B` stays Unicode. Folded text is ASCII for the
/// supported languages; Unicode word boundaries would force the slowest regex engine on every
/// message, and a Unicode `\w` compiles to an automaton of megabytes per regex.
pub fn ascii_classes(pattern: &str) -> String {
    let mut out = String::with_capacity(pattern.len() + 16);
    let mut chars = pattern.chars();
    let mut in_class = false;
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some(k @ ('b' | 'w' | 'd')) if !in_class => {
                    out.push_str("(?-u:\\");
                    out.push(k);
                    out.push(')');
                }
                // ASCII negations would match bytes inside a UTF-8 character, which a regex
                // over text refuses: spell them as Unicode classes of the ASCII complement.
                Some('W') if !in_class => out.push_str("[^0-9A-Za-z_]"),
                Some('D') if !in_class => out.push_str("[^0-9]"),
                Some('w') if in_class => out.push_str("0-9A-Za-z_"),
                Some('d') if in_class => out.push_str("0-9"),
                Some(next) => {
                    out.push('\\');
                    out.push(next);
                }
                None => out.push('\\'),
            },
            '[' => {
                in_class = true;
                out.push(c);
            }
            ']' => {
                in_class = false;
                out.push(c);
            }
            _ => out.push(c),
        }
    }
    out
}

impl fmt::Display for Term {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Term::Word(w) => f.write_str(w),
            Term::Prefix(p) => write!(f, "{p}*"),
            Term::Regex(r) => write!(f, "/{}/", r.pattern),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_prefixes_and_regexes_are_told_apart() {
        assert_eq!(Term::parse("Factura").unwrap(), Term::Word("factura".into()));
        assert_eq!(Term::parse("factur*").unwrap(), Term::Prefix("factur".into()));
        assert_eq!(
            Term::parse(r"/\d{4}/").unwrap(),
            Term::Regex(RegexTerm::new(r"\d{4}").unwrap())
        );
    }

    #[test]
    fn terms_are_folded_like_text() {
        assert_eq!(
            Term::parse("Protección  al Comprador").unwrap(),
            Term::Word("proteccion al comprador".into())
        );
    }

    #[test]
    fn a_phrase_with_prefix_words_becomes_a_word_bounded_regex() {
        let Term::Regex(p) = Term::parse("Invitation* à laisser un avis").unwrap() else {
            panic!()
        };
        let re = regex::Regex::new(p.pattern()).unwrap();
        assert!(re.is_match("les invitations a laisser un avis"));
        assert!(!re.is_match("invitations a laisser un aviso"));
        assert!(!re.is_match("reinvitation a laisser un avis"));
    }

    #[test]
    fn broken_terms_are_refused_with_a_reason() {
        assert!(Term::parse("").unwrap_err().contains("empty"));
        assert!(
            Term::parse("a*b")
                .unwrap_err()
                .contains("only allowed at the end")
        );
        assert!(
            Term::parse("* x")
                .unwrap_err()
                .contains("only allowed at the end")
        );
        assert!(Term::parse("ab*").unwrap_err().contains("three letters"));
        assert!(Term::parse("/(unclosed/").unwrap_err().contains("invalid regex"));
    }

    #[test]
    fn a_class_made_valid_only_by_the_ascii_rewrite_is_still_refused() {
        for written in [r"/[\d-.]/", r"/[\d-z]/", r"/[0-\d]/", r"/[!-\w]/"] {
            let err = Term::parse(written).unwrap_err();
            assert!(err.contains("invalid regex"), "{written}: {err}");
        }
        assert!(Term::parse(r"/[\d-]x/").is_ok());
        assert!(Term::parse(r"/[-\w.]+@/").is_ok());
    }

    proptest::proptest! {
        // Most random patterns are invalid both ways: enough cases to meet the rare ones.
        #![proptest_config(proptest::test_runner::Config::with_cases(4096))]

        /// Outside a class the ASCII rewrite swaps one atom for another (`\w` for
        /// `(?-u:\w)`, `\D` for `[^0-9]`): a pattern without `[` whose rewrite parses parses
        /// as written, so the loader checks only patterns with a class as written.
        #[test]
        fn a_pattern_without_a_class_is_valid_when_its_ascii_rewrite_is(
            tokens in proptest::collection::vec(
                proptest::sample::select(vec![
                    "a", "x", " ", "\\b", "\\B", "\\w", "\\W", "\\d", "\\D", "\\s", "\\", "\\\\", "+", "*",
                    "?", "{2}", "{2,1}", "{", "}", "{,3}", "(", ")", "(?:", "(?x)", "(?-u)", "(?i)",
                    "(?-u:", "|", "#", "\n", "^", "$", ".", "\\pL", "\\p{Greek}", "\\xFF", "\\x{41}",
                    "\\]", "]", "-", ",", "\\1", "\\z", "\\A",
                ]),
                1..8,
            )
        ) {
            let pattern: String = tokens.concat();
            let rewritten = regex_syntax::Parser::new().parse(&ascii_classes(&pattern)).is_ok();
            let written = regex_syntax::ast::parse::Parser::new().parse(&pattern).is_ok();
            proptest::prop_assert!(!rewritten || written, "{pattern:?} is valid only rewritten");
        }
    }

    #[test]
    fn a_regex_with_a_control_character_is_refused_naming_the_toml_escape() {
        // What `"/\bvat\b/"` in a double-quoted TOML string becomes.
        let err = Term::parse("/\u{8}vat\u{8}/").unwrap_err();
        assert!(
            err.contains("U+0008") && err.contains("backspace") && err.contains("single quotes"),
            "{err}"
        );
        assert!(Term::parse("/vat\u{c}number/").unwrap_err().contains("form feed"));
        assert!(Term::parse(r"/\bvat\b/").is_ok());
        // A word or phrase folds its control characters to spaces, as the text does.
        assert_eq!(Term::parse("vat\u{c}number"), Term::parse("vat number"));
    }

    #[test]
    fn terms_and_regexes_beyond_the_limits_are_refused_before_they_cost_anything() {
        let long = "a".repeat(MAX_TERM_BYTES + 1);
        assert!(Term::parse(&long).unwrap_err().contains("at most 1024 bytes"));
        let regex = format!("/{}/", "a".repeat(MAX_REGEX_BYTES + 1));
        assert!(Term::parse(&regex).unwrap_err().contains("at most 4096 bytes"));
        let costly = Term::parse("/(?s).{2000}x.{2000}/").unwrap_err();
        assert!(costly.contains("compiles to more than"), "{costly}");
        assert!(Term::parse("/(?s).{200}x.{200}/").is_err());
        assert!(Term::parse_sized(r"/\bticket\s*#?\d{4,}/").unwrap().1 > 0);
        assert_eq!(Term::parse_sized("ticket").unwrap().1, 0);
    }
}
