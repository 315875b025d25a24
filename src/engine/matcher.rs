//! Compiled matchers: every term of every rule in one Aho-Corasick automaton (words, phrases,
//! prefixes) and one multi-regex (regex terms), so each field of a message is scanned once
//! whatever the number of rules.

use aho_corasick::{AhoCorasick, MatchKind};
use regex_automata::{Input, PatternSet, meta};

use crate::rules::{Field, Term, limits};
use crate::text::{Folded, boundary_after, boundary_before, fold};

/// Most hits kept per field: a hostile message repeating a keyword a million times must not
/// cost a million entries (one per term is all the scoring uses).
const MAX_HITS_PER_FIELD: usize = 20_000;

/// Why the matchers could not be built (e.g. a regex too large for the size limits).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CompileError {
    /// The keyword automaton could not be built.
    #[error("keyword automaton: {0}")]
    Keywords(#[from] aho_corasick::BuildError),
    /// The regex terms could not be compiled.
    #[error("regex terms: {0}")]
    Regex(#[from] Box<regex_automata::meta::BuildError>),
    /// The keyword automaton came out larger than [`limits::MAX_AUTOMATON_BYTES`].
    #[error("the keyword automaton takes {0} bytes, more than the limit of {max}", max = limits::MAX_AUTOMATON_BYTES)]
    TooLarge(usize),
}

/// A term found in a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct TermHit {
    /// Index into [`Matcher::terms`].
    pub term: u32,
    /// The field it was found in.
    pub field: Field,
    /// For [`Field::Headers`], the index of the header line; otherwise 0.
    pub header: u32,
    /// Original byte range in the field's text.
    pub start: u32,
    /// End of the original byte range.
    pub end: u32,
}

/// Every distinct term of a ruleset, compiled.
#[derive(Debug)]
pub struct Matcher {
    /// Distinct terms; a term's index is its id.
    pub terms: Vec<Term>,
    literals: Option<AhoCorasick>,
    /// For each literal pattern: the word term using it, and the prefix term using it.
    literal_terms: Vec<(Option<u32>, Option<u32>)>,
    regexes: Option<meta::Regex>,
    /// Per regex pattern: its term id and a single-pattern regex to find the span.
    regex_terms: Vec<(u32, meta::Regex)>,
}

impl Matcher {
    /// Compiles the distinct `terms` (their order gives the term ids).
    pub fn new(terms: Vec<Term>) -> Result<Matcher, CompileError> {
        let mut patterns: Vec<&str> = Vec::new();
        let mut literal_terms: Vec<(Option<u32>, Option<u32>)> = Vec::new();
        let mut by_text = std::collections::HashMap::new();
        let mut regex_patterns = Vec::new();
        let mut regex_ids = Vec::new();
        for (id, term) in terms.iter().enumerate() {
            let id = id as u32;
            match term {
                Term::Word(text) | Term::Prefix(text) => {
                    let slot = *by_text.entry(text.as_str()).or_insert_with(|| {
                        patterns.push(text.as_str());
                        literal_terms.push((None, None));
                        literal_terms.len() - 1
                    });
                    match term {
                        Term::Word(_) => literal_terms[slot].0 = Some(id),
                        _ => literal_terms[slot].1 = Some(id),
                    }
                }
                Term::Regex(pattern) => {
                    regex_patterns.push(pattern.as_str());
                    regex_ids.push(id);
                }
            }
        }
        let literals = if patterns.is_empty() {
            None
        } else {
            // Standard semantics: overlapping search reports every term, so "comprador" still
            // counts inside "protección al comprador" for the rules that want it. The kind is
            // left to the crate: for thousands of patterns it picks a contiguous NFA, which
            // scans as fast as a full DFA here in a thirtieth of the memory (26 MB vs 0.8 MB
            // for the default ruleset) and builds seven times faster.
            let ac = AhoCorasick::builder()
                .match_kind(MatchKind::Standard)
                .build(&patterns)?;
            if ac.memory_usage() > limits::MAX_AUTOMATON_BYTES {
                return Err(CompileError::TooLarge(ac.memory_usage()));
            }
            Some(ac)
        };
        let (regexes, regex_terms) = if regex_patterns.is_empty() {
            (None, Vec::new())
        } else {
            let patterns: Vec<String> = regex_patterns.iter().map(|p| ascii_classes(p)).collect();
            // MatchKind::All: the set reports every pattern that matches, not only the leftmost.
            // The loader checked each regex and their total; the limit here is the backstop.
            let all = meta::Regex::builder()
                .configure(
                    meta::Config::new()
                        .match_kind(regex_automata::MatchKind::All)
                        .nfa_size_limit(Some(2 * limits::MAX_REGEXES_NFA_BYTES)),
                )
                .build_many(&patterns)
                .map_err(Box::new)?;
            let mut single = Vec::with_capacity(patterns.len());
            for (pattern, id) in patterns.iter().zip(regex_ids) {
                single.push((id, meta::Regex::new(pattern).map_err(Box::new)?));
            }
            (Some(all), single)
        };
        Ok(Matcher {
            terms,
            literals,
            literal_terms,
            regexes,
            regex_terms,
        })
    }

    /// Appends the terms found in `text` (one field of a message, or one header line) to `hits`.
    ///
    /// `header` is the header line's index (0 for other fields); `base` is added to every
    /// offset, so hits in a header line point into the whole header block.
    pub fn scan(&self, field: Field, text: &str, header: u32, base: usize, hits: &mut Vec<TermHit>) {
        if text.is_empty() {
            return;
        }
        let folded = fold(text);
        let limit = hits.len() + MAX_HITS_PER_FIELD;
        if let Some(ac) = &self.literals {
            for m in ac.find_overlapping_iter(&folded.text) {
                if hits.len() >= limit {
                    break;
                }
                if !boundary_before(&folded.text, m.start()) {
                    continue;
                }
                let (word, prefix) = self.literal_terms[m.pattern().as_usize()];
                if let Some(w) = word
                    && boundary_after(&folded.text, m.end())
                {
                    hits.push(hit(&folded, w, field, header, base, m.start(), m.end()));
                }
                if let Some(p) = prefix {
                    hits.push(hit(&folded, p, field, header, base, m.start(), m.end()));
                }
            }
        }
        if let Some(all) = &self.regexes {
            let mut set = PatternSet::new(all.pattern_len());
            all.which_overlapping_matches(&Input::new(&folded.text), &mut set);
            for pid in set.iter() {
                let (term, single) = &self.regex_terms[pid.as_usize()];
                if let Some(m) = single.find(&folded.text) {
                    hits.push(hit(&folded, *term, field, header, base, m.start(), m.end()));
                }
            }
        }
    }
}

fn hit(folded: &Folded, term: u32, field: Field, header: u32, base: usize, s: usize, e: usize) -> TermHit {
    let (start, end) = folded.original_range(s, e);
    TermHit {
        term,
        field,
        header,
        start: (base + start) as u32,
        end: (base + end) as u32,
    }
}

pub use crate::rules::term::ascii_classes;

#[cfg(test)]
mod tests {
    use super::*;

    fn scan(terms: &[&str], text: &str) -> Vec<(String, String)> {
        let terms: Vec<Term> = terms.iter().map(|t| Term::parse(t).unwrap()).collect();
        let m = Matcher::new(terms).unwrap();
        let mut hits = Vec::new();
        m.scan(Field::Body, text, 0, 0, &mut hits);
        hits.iter()
            .map(|h| {
                (
                    m.terms[h.term as usize].to_string(),
                    text[h.start as usize..h.end as usize].to_string(),
                )
            })
            .collect()
    }

    #[test]
    fn words_match_only_on_word_boundaries() {
        assert!(scan(&["art"], "a party").is_empty());
        assert_eq!(scan(&["art"], "modern art."), vec![("art".into(), "art".into())]);
    }

    #[test]
    fn prefixes_match_inflections_and_report_the_original_text() {
        let hits = scan(&["factur*"], "Su Facturación y sus facturas");
        assert_eq!(hits.len(), 2);
        assert_eq!(hits[0].1, "Factur");
    }

    #[test]
    fn overlapping_terms_are_all_reported() {
        let hits = scan(
            &["protección al comprador", "comprador"],
            "la Protección al Comprador",
        );
        let terms: Vec<&str> = hits.iter().map(|h| h.0.as_str()).collect();
        assert!(
            terms.contains(&"proteccion al comprador") && terms.contains(&"comprador"),
            "{terms:?}"
        );
    }

    #[test]
    fn a_word_and_a_prefix_with_the_same_text_both_match() {
        let hits = scan(&["shop", "shop*"], "our shop");
        assert_eq!(hits.len(), 2);
    }

    #[test]
    fn every_matching_regex_is_reported_not_only_the_leftmost() {
        let hits = scan(&[r"/leido\s*:/", "/factura/", r"/\S/"], "Leído: Factura");
        assert_eq!(hits.len(), 3, "{hits:?}");
    }

    #[test]
    fn word_classes_in_regexes_become_ascii() {
        assert_eq!(ascii_classes(r"\bab\B[\b]\\b"), r"(?-u:\b)ab\B[\b]\\b");
        assert_eq!(ascii_classes(r"a\Wb\D"), r"a[^0-9A-Za-z_]b[^0-9]");
        assert_eq!(ascii_classes(r"\w+[\w-]\d"), r"(?-u:\w)+[0-9A-Za-z_-](?-u:\d)");
    }

    #[test]
    fn every_regex_escape_compiles_after_the_ascii_rewrite() {
        for t in [r"/a\Wb/", r"/\D+/", r"/x\B/", r"/\w+\b/", r"/[\w\d]+/"] {
            assert!(Matcher::new(vec![Term::parse(t).unwrap()]).is_ok(), "{t}");
        }
    }

    #[test]
    fn regex_terms_run_on_folded_text() {
        let hits = scan(&[r"/ticket\s*#?\d{4,}/"], "Ticket #12345 opened");
        assert_eq!(
            hits,
            vec![(r"/ticket\s*#?\d{4,}/".into(), "Ticket #12345".into())]
        );
    }
}
