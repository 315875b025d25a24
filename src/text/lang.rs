//! Language detection for the seven languages the default ruleset serves.
//!
//! whatlang's trigram model is good on a paragraph and unreliable on a subject line, so short
//! texts also get a vote from each language's most frequent function words. The result is
//! advisory: it scopes rules with `languages = [...]` and is reported in the verdict, but a
//! message is never dropped because its language is unknown.

use std::sync::LazyLock;

use whatlang::{Detector, Lang};

use super::fold::{Folded, fold_into};

/// The languages triage detects, as ISO 639-1 codes.
pub const LANGUAGES: [&str; 7] = ["es", "de", "en", "fr", "it", "nl", "pl"];

const STOPWORDS: [(&str, &[&str]); 7] = [
    (
        "es",
        &[
            "el", "la", "los", "las", "que", "de", "y", "en", "por", "para", "con", "una", "mi", "nuestra",
            "nuestro", "hola", "gracias", "pero", "esta", "tengo", "no", "se", "del", "al", "como", "muy",
            "buenos", "dias", "saludos",
        ],
    ),
    (
        "de",
        &[
            "der", "die", "das", "und", "ist", "nicht", "wir", "ich", "sie", "mit", "fur", "auf", "ein",
            "eine", "unser", "unsere", "bitte", "danke", "hallo", "guten", "tag", "zu", "den", "dem", "von",
            "haben", "gruße", "grusse", "ihre",
        ],
    ),
    (
        "en",
        &[
            "the", "and", "is", "are", "we", "i", "you", "our", "my", "to", "of", "for", "with", "not",
            "please", "thanks", "hello", "hi", "have", "can", "it", "this", "that", "your", "regards",
            "would", "since", "from", "was",
        ],
    ),
    (
        "fr",
        &[
            "le",
            "la",
            "les",
            "et",
            "est",
            "nous",
            "je",
            "vous",
            "notre",
            "nos",
            "mon",
            "ma",
            "pour",
            "avec",
            "pas",
            "des",
            "une",
            "bonjour",
            "merci",
            "cordialement",
            "sur",
            "du",
            "au",
            "que",
            "qui",
            "ne",
            "depuis",
            "votre",
            "avons",
        ],
    ),
    (
        "it",
        &[
            "il",
            "lo",
            "la",
            "gli",
            "le",
            "e",
            "che",
            "di",
            "per",
            "con",
            "non",
            "una",
            "nostro",
            "nostra",
            "mio",
            "mia",
            "buongiorno",
            "grazie",
            "saluti",
            "sono",
            "abbiamo",
            "del",
            "della",
            "ho",
            "vostro",
            "come",
            "ancora",
            "alla",
            "cordiali",
        ],
    ),
    (
        "nl",
        &[
            "de",
            "het",
            "een",
            "en",
            "is",
            "wij",
            "we",
            "ik",
            "niet",
            "van",
            "voor",
            "met",
            "onze",
            "ons",
            "mijn",
            "graag",
            "bedankt",
            "hallo",
            "goedemiddag",
            "groet",
            "op",
            "dat",
            "zijn",
            "naar",
            "nog",
            "heb",
            "hebben",
            "u",
            "uw",
        ],
    ),
    (
        "pl",
        &[
            "i",
            "w",
            "z",
            "na",
            "nie",
            "jest",
            "sie",
            "ze",
            "do",
            "to",
            "dla",
            "mamy",
            "nasz",
            "nasza",
            "moj",
            "moja",
            "dzien",
            "dobry",
            "dziekuje",
            "pozdrawiam",
            "prosze",
            "czy",
            "od",
            "jak",
            "juz",
            "po",
            "tak",
            "nam",
            "przez",
        ],
    ),
];

/// Each function word with a bit per language (in [`STOPWORDS`] order) that uses it, bucketed
/// by first byte and length ([`bucket`]): finding a word is an index and a compare or two,
/// cheaper than hashing every word of the sample.
static STOPWORD_INDEX: LazyLock<Vec<Vec<(&'static str, u8)>>> = LazyLock::new(|| {
    let mut index: Vec<Vec<(&'static str, u8)>> = vec![Vec::new(); 256 * 16];
    for (i, (_, words)) in STOPWORDS.iter().enumerate() {
        for w in *words {
            let slot = &mut index[bucket(w)];
            match slot.iter_mut().find(|(known, _)| known == w) {
                Some((_, bits)) => *bits |= 1 << i,
                None => slot.push((w, 1 << i)),
            }
        }
    }
    index
});

/// The bucket of a non-empty word: its first byte and its length (15 for any longer).
fn bucket(word: &str) -> usize {
    usize::from(word.as_bytes()[0]) * 16 + word.len().min(15)
}

/// The language bits of `word` in [`STOPWORD_INDEX`], or 0.
fn stopword_bits(word: &str) -> u8 {
    if word.is_empty() {
        return 0;
    }
    STOPWORD_INDEX[bucket(word)]
        .iter()
        .find(|(w, _)| *w == word)
        .map_or(0, |(_, bits)| *bits)
}

thread_local! {
    /// The folded sample, one buffer per thread, reused.
    static FOLDED: std::cell::RefCell<Folded> = std::cell::RefCell::default();
}

static DETECTOR: LazyLock<Detector> = LazyLock::new(|| {
    Detector::with_allowlist(vec![
        Lang::Spa,
        Lang::Deu,
        Lang::Eng,
        Lang::Fra,
        Lang::Ita,
        Lang::Nld,
        Lang::Pol,
    ])
});

/// Bytes of a text that decide its language: the first KiB, because scanning a huge body would
/// only cost time.
pub const SAMPLE_BYTES: usize = 1024;

/// Detects the language of `text` (its first [`SAMPLE_BYTES`]): an ISO 639-1 code from
/// [`LANGUAGES`], or `None` when unsure.
pub fn detect(text: &str) -> Option<&'static str> {
    let sample = prefix(text, SAMPLE_BYTES);
    let vote = FOLDED.with_borrow_mut(|folded| {
        fold_into(sample, folded);
        stopword_vote(&[folded.text.as_str()])
    });
    decide(vote, || std::borrow::Cow::Borrowed(sample))
}

/// [`detect`] of a sample whose fold the caller has already: `folded` holds the folds of the
/// sample's pieces in order (each cut where the sample cuts it), and `sample` gives the
/// sample itself, called only when the function words do not decide and the trigram model
/// must read the original text.
pub fn detect_folded<'a>(
    folded: &[&str],
    sample: impl FnOnce() -> std::borrow::Cow<'a, str>,
) -> Option<&'static str> {
    decide(stopword_vote(folded), sample)
}

/// The language from the function-word vote (language, its count, its lead), and from the
/// trigram model of the sample when the vote is not clear.
fn decide<'a>(
    (vote, best, margin): (Option<&'static str>, usize, usize),
    sample: impl FnOnce() -> std::borrow::Cow<'a, str>,
) -> Option<&'static str> {
    // A clear majority of function words is as good as trigrams, and far cheaper (whatlang's
    // alphabet pass dominated the cost of a classification).
    if best >= 4 && margin >= 3 {
        return vote;
    }
    let sample = sample();
    let sample = prefix(&sample, SAMPLE_BYTES);
    let trigram = trigram_guess(sample);
    if let Some((code, true)) = trigram {
        return Some(code);
    }
    match (trigram, vote) {
        (Some((t, _)), Some(v)) if t == v => Some(t),
        (_, Some(v)) if margin >= 2 => Some(v),
        (Some((t, _)), None) if sample.len() >= 40 => Some(t),
        _ => None,
    }
}

fn trigram_guess(text: &str) -> Option<(&'static str, bool)> {
    let info = DETECTOR.detect(text)?;
    let code = match info.lang() {
        Lang::Spa => "es",
        Lang::Deu => "de",
        Lang::Eng => "en",
        Lang::Fra => "fr",
        Lang::Ita => "it",
        Lang::Nld => "nl",
        Lang::Pol => "pl",
        _ => return None,
    };
    Some((code, info.is_reliable()))
}

/// The language whose function words occur most in the folded texts, how many it has, and
/// its lead.
fn stopword_vote(folded: &[&str]) -> (Option<&'static str>, usize, usize) {
    let mut counts = [0usize; 7];
    for text in folded {
        super::each_word(text, |word| {
            let bits = stopword_bits(word);
            for (i, count) in counts.iter_mut().enumerate() {
                *count += usize::from(bits & (1 << i) != 0);
            }
        });
    }
    let mut order: Vec<usize> = (0..7).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(counts[i]));
    let (best, second) = (counts[order[0]], counts[order[1]]);
    if best == 0 {
        return (None, 0, 0);
    }
    (Some(STOPWORDS[order[0]].0), best, best - second)
}

fn prefix(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_language_is_recognised_in_an_ordinary_sentence() {
        let cases = [
            (
                "es",
                "Hola, no hemos recibido la factura del mes pasado, ¿nos la podéis enviar?",
            ),
            (
                "de",
                "Hallo, wir haben die Rechnung für den letzten Monat nicht erhalten.",
            ),
            (
                "en",
                "Hello, we have not received the invoice for last month, could you send it?",
            ),
            (
                "fr",
                "Bonjour, nous n'avons pas reçu la facture du mois dernier, merci de nous l'envoyer.",
            ),
            (
                "it",
                "Buongiorno, non abbiamo ricevuto la fattura del mese scorso, potete inviarla?",
            ),
            (
                "nl",
                "Hallo, wij hebben de factuur van vorige maand niet ontvangen, kunt u die sturen?",
            ),
            (
                "pl",
                "Dzień dobry, nie otrzymaliśmy faktury za zeszły miesiąc, czy możecie ją przesłać?",
            ),
        ];
        for (code, text) in cases {
            assert_eq!(detect(text), Some(code), "{text}");
        }
    }

    #[test]
    fn empty_or_symbol_only_text_has_no_language() {
        assert_eq!(detect(""), None);
        assert_eq!(detect("#123 -- !!"), None);
    }
}
