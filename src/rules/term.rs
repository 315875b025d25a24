//! Match terms: words, phrases, word prefixes and regexes, as written in rule files.

use std::fmt;

use crate::text::fold_term;

/// One match term, already folded for matching.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Term {
    /// A word or phrase that must match on word boundaries at both ends.
    Word(String),
    /// A word prefix (`factur*`): a boundary before it, anything after.
    Prefix(String),
    /// A regular expression over the folded text.
    Regex(String),
}

impl Term {
    /// Parses a term as written in a rule file (see `rules/README.md`).
    pub fn parse(written: &str) -> Result<Term, String> {
        let trimmed = written.trim();
        if trimmed.len() >= 2 && trimmed.starts_with('/') && trimmed.ends_with('/') {
            let pattern = &trimmed[1..trimmed.len() - 1];
            if pattern.is_empty() {
                return Err("empty regex".into());
            }
            regex_syntax::ast::parse::Parser::new()
                .parse(pattern)
                .map_err(|e| format!("invalid regex: {}", e.kind()))?;
            return Ok(Term::Regex(pattern.to_string()));
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
    Ok(Term::Regex(pattern))
}

impl fmt::Display for Term {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Term::Word(w) => f.write_str(w),
            Term::Prefix(p) => write!(f, "{p}*"),
            Term::Regex(r) => write!(f, "/{r}/"),
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
        assert_eq!(Term::parse(r"/\d{4}/").unwrap(), Term::Regex(r"\d{4}".into()));
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
        let re = regex::Regex::new(&p).unwrap();
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
}
