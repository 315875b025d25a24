//! Message structure as evidence: where in the message a term stands changes what it is worth.
//!
//! - **Reply subjects.** A subject that starts with a reply or forward prefix (`Re:`, `AW:`,
//!   `RV:`, `R:`, `I:`, `Odp:`, `Antw:`, `SV:`, `Fwd:`, `WG:`, `TR:`, … in the seven languages
//!   and the common international ones) or carries a ticket tag (`[#48213]`, `[Ticket#2024…]`)
//!   names the thread, not the new question: its terms count [`REPLY_SUBJECT_WEIGHT`] instead of
//!   the fresh subject's 1.5.
//! - **The request.** Sentences that ask or direct (a question mark, or a request cue of the
//!   ruleset such as "could you", "bitte", "¿podrían", "pourriez-vous") are the request; a term
//!   there counts [`REQUEST_FACTOR`] times the same term in narrative text.
//! - **Negated and settled scopes.** In the style of NegEx, a negation cue ("not a", "kein",
//!   "no es") opens a scope to the end of its clause, a settled cue ("already paid", "bereits
//!   erledigt") closes one from the start of its clause, or only as many words as its
//!   `window` gives ("statt", "instead of": the thing replaced); a term in such a scope is not
//!   evidence (or counter-evidence, where the rule says `negated = "counter"`).
//! - **A turn to the real request.** A shift cue ("different thing though", "meine eigentliche
//!   Frage", "os escribo por otra cosa", "waar het wel om gaat") ends the preamble: a term
//!   before the last one in the new text (thanks for the last answer, what was settled, the
//!   thread's topic) counts [`PREAMBLE_FACTOR`] of the same term after it.
//! - **The thread's echo.** In a reply, a rule whose queue the reply subject also supports, and
//!   whose decisive evidence in the new text stands in a plain narrative sentence, counts [`ECHO_FACTOR`]:
//!   the writer refers to the thread ("thanks, the invoice arrived") before asking something
//!   else. In a request sentence the thread's topic is the question again and counts in full.
//!   The subject supports a queue through a term that stands there on its own: a word only
//!   inside a longer word or phrase ("Review" of "Re: Review report") means what the phrase means;
//!   a regex's match, which may span a gap of any words, gives no word its meaning.
//! - **Side points.** An aside cue ("nicht dringend", "no rush", "pour plus tard", "niente di
//!   grave") marks its sentence as minor: a term there counts [`ASIDE_FACTOR`] of the same term
//!   in narrative text, even when the sentence asks, as long as another sentence asks too (a
//!   side question is minor beside the main one; when it is the only one, it is the request).
//!   An aside cue that opens its sentence ("By the way: …") marks the rest of its paragraph
//!   too, up to a sentence that asks with a request cue or turns with a shift cue: the side
//!   point goes on in the sentences after it. A shift cue inside an aside opens
//!   no preamble: the writer turned to a point they call minor themselves.
//!
//! Clauses end at `. ! ? ; :` and line breaks, at commas, and before contrastive conjunctions
//! ("but", "aber", "sondern", "pero", "sino", "mais", "ma", "maar", "ale", "however", …). A
//! parenthetical is stepped over, and a dot after an initial, an abbreviation or inside a
//! number ends nothing ("Herrn B. (Fall 7712890) ist abgeschlossen" is one clause).

use std::sync::LazyLock;

use regex::Regex;

use crate::rules::{CueKind, Scope};

/// The weight of a term in a reply or forward subject (a fresh subject counts 1.5).
pub const REPLY_SUBJECT_WEIGHT: f64 = 0.5;

/// How much more a term counts in a request sentence than in narrative text.
pub const REQUEST_FACTOR: f64 = 1.5;

/// What a term before a turn to the real request counts, as a share of the same term in
/// narrative text: as much as a reply subject does against a fresh one (both are the thread's
/// topic rather than the question).
pub const PREAMBLE_FACTOR: f64 = REPLY_SUBJECT_WEIGHT;

/// What a term in a sentence marked as a side point counts, as a share of the same term in
/// narrative text: as much as the preamble, the other text that is not the request.
pub const ASIDE_FACTOR: f64 = PREAMBLE_FACTOR;

/// What a rule counts when its evidence in a reply's new text is an echo of the thread: the
/// reply subject gave its queue evidence too, and the new text names that queue's topic only
/// outside its request sentences ("thanks, the invoice arrived"; "now that the audit is done,
/// who is our contact?"). As much as the preamble: both are the thread's topic, not the question.
pub const ECHO_FACTOR: f64 = PREAMBLE_FACTOR;

/// Where a term stands, as far as its worth is concerned (ordered from least to most worth).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub enum Context {
    /// In a negated or settled scope.
    Negated,
    /// Before a turn to the real request (a shift cue).
    Preamble,
    /// In a sentence the writer marks as a side point (an aside cue).
    Aside,
    /// Anywhere else.
    #[default]
    Plain,
    /// In a request sentence.
    Request,
}

impl Context {
    /// The factor a term's field weight is multiplied by (0 in a negated scope).
    pub fn factor(self) -> f64 {
        match self {
            Context::Negated => 0.0,
            Context::Preamble => PREAMBLE_FACTOR,
            Context::Aside => ASIDE_FACTOR,
            Context::Plain => 1.0,
            Context::Request => REQUEST_FACTOR,
        }
    }
}

/// Reply and forward prefixes (any number, any case, before the first other word) and ticket
/// tags (whose ids are ASCII: thirty copies of Unicode's `\w` made this one regex a sixth of a
/// start-up). Sources: the prefixes mail clients write in the seven languages (Outlook, Gmail,
/// Thunderbird, Apple Mail localisations) and the international ones of RFC 5322 §3.6.5.
static REPLY_PREFIX: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?i)^\s*(?:(?:re|aw|antw|antwort|wg|fw|fwd|rv|r|i|rif|res|ref|tr|sv|vs|odp|odp\.|pd|enc|doorst|réf|rép|rép\.)\s*(?:\[\d+\])?\s*:\s*|\[[^\]]{0,40}#\s*(?-u:[\w.-]){2,30}\]\s*|\(\s*(?:ticket|case|caso|fall|dossier|pratica|zaak|zgłoszenie)[^)]{0,30}\)\s*)+",
    )
    .expect("reply prefix regex")
});

/// Ticket tags anywhere in the subject: `[#48213]`, `[Ticket#2024111310000123]`, `Ticket 4711`.
static TICKET_TAG: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)\[[^\]]{0,40}#\s*\d{3,}[^\]]{0,20}\]|\b(?:ticket|case|caso|vorgang|dossier|ticketnummer)\s*(?:nr\.?|no\.?|n°|#)?\s*:?\s*#?\d{4,}\b")
        .expect("ticket tag regex")
});

/// True when `subject` names a thread rather than a new question: a reply/forward prefix or a
/// ticket tag.
pub fn is_reply_subject(subject: &str) -> bool {
    REPLY_PREFIX
        .find(subject)
        .is_some_and(|m| !m.as_str().trim().is_empty())
        || TICKET_TAG.is_match(subject)
}

/// A cue found in a text: byte range (in the original text) and what it marks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CueHit {
    /// Byte offset of the cue's start.
    pub start: usize,
    /// Byte offset of the cue's end.
    pub end: usize,
    /// What it marks.
    pub kind: CueKind,
    /// Where its scope lies.
    pub scope: Scope,
    /// The most words its scope spans beside the cue (after or before it, as `scope` says),
    /// when fewer than the clause holds.
    pub window: Option<u8>,
}

/// Spans of one text with their [`Context`], from which every term hit takes its context.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Spans {
    /// Request sentences (byte ranges).
    pub requests: Vec<(usize, usize)>,
    /// Negated or settled scopes (byte ranges).
    pub negated: Vec<(usize, usize)>,
    /// The preamble: from the start of the text to its last shift cue (at most one range).
    pub preamble: Vec<(usize, usize)>,
    /// Sentences marked as side points (byte ranges).
    pub asides: Vec<(usize, usize)>,
    /// Every sentence of the text (byte ranges, in order), for [`unexplained_share`].
    pub sentences: Vec<(usize, usize)>,
}

impl Spans {
    /// The context of a term at `start..end`: a negated scope wins over the preamble, the
    /// preamble over an aside, and an aside over a request sentence.
    pub fn context(&self, start: usize, end: usize) -> Context {
        let inside = |spans: &[(usize, usize)]| spans.iter().any(|&(s, e)| start >= s && end <= e);
        if inside(&self.negated) {
            Context::Negated
        } else if inside(&self.preamble) {
            Context::Preamble
        } else if inside(&self.asides) {
            Context::Aside
        } else if inside(&self.requests) {
            Context::Request
        } else {
            Context::Plain
        }
    }

    /// Finds the request sentences and negated scopes of `text`, given the cues found in it.
    pub fn of(text: &str, cues: &[CueHit]) -> Spans {
        let mut spans = Spans {
            sentences: sentences(text),
            ..Spans::default()
        };
        // The end of the paragraph of the last aside that opened its sentence.
        let mut opened_until = 0;
        for &(s, e) in &spans.sentences {
            let sentence = &text[s..e];
            let asks = sentence.trim_end().ends_with('?')
                || sentence.contains('¿')
                || cues
                    .iter()
                    .any(|c| c.kind == CueKind::Request && c.start >= s && c.end <= e);
            if asks {
                spans.requests.push((s, e));
            }
            if let Some(c) = cues
                .iter()
                .find(|c| c.kind == CueKind::Aside && c.start >= s && c.end <= e)
            {
                spans.asides.push((s, e));
                // An aside that opens its sentence with a colon or a comma ("By the way: …",
                // "I jeszcze jedno przy okazji: …") opens a side point that goes on to the end
                // of its paragraph.
                if opens_sentence(text, s, c) {
                    opened_until = paragraph_end(text, e);
                }
            } else if e <= opened_until {
                // A sentence that asks with a cue ("Please refund …") or turns to the real
                // point ("The urgent thing: …") is the writer's again, and so is the rest.
                if cues.iter().any(|c| {
                    matches!(c.kind, CueKind::Request | CueKind::Shift) && c.start >= s && c.end <= e
                }) {
                    opened_until = 0;
                } else {
                    spans.asides.push((s, e));
                }
            }
        }
        // A side point is minor beside a main request. When every request sentence is marked as
        // an aside, the writer's only ask is the request after all ("Übrigens, wie binden wir
        // das Widget ein?"); asides that ask nothing stay side points.
        if !spans.requests.iter().any(|r| !spans.asides.contains(r)) {
            let requests = &spans.requests;
            spans.asides.retain(|a| !requests.contains(a));
        }
        let in_aside = |c: &CueHit| spans.asides.iter().any(|&(s, e)| c.start >= s && c.end <= e);
        if let Some(last) = cues
            .iter()
            .filter(|c| c.kind == CueKind::Shift && !in_aside(c))
            .map(|c| c.start)
            .max()
            && text.get(..last).is_some_and(|before| !before.trim().is_empty())
        {
            spans.preamble.push((0, last));
        }
        for c in cues
            .iter()
            .filter(|c| matches!(c.kind, CueKind::Negation | CueKind::Settled))
        {
            let (clause_start, clause_end) = clause_around(text, c.start, c.end);
            match (c.scope, c.window) {
                (Scope::After, None) => spans.negated.push((c.start, clause_end)),
                (Scope::Before, None) => spans.negated.push((clause_start, c.end)),
                (Scope::After, Some(n)) => {
                    let end = words_after(text, c.end, n).min(clause_end);
                    spans.negated.push((c.start, end));
                }
                (Scope::Before, Some(n)) => {
                    let start = words_before(text, c.start, n).max(clause_start);
                    spans.negated.push((start, c.end));
                }
            }
        }
        spans
    }
}

/// Where the `n`-th word after byte `from` of `text` ends (a word: a run of letters and
/// digits), or the end of the text when fewer follow. The window also ends before its first
/// word when that word comes again inside it: "statt per Überweisung per Kreditkarte" repeats
/// its preposition where what replaces the negated thing begins.
fn words_after(text: &str, from: usize, n: u8) -> usize {
    let same = |a: &str, b: &str| {
        a.chars()
            .flat_map(char::to_lowercase)
            .eq(b.chars().flat_map(char::to_lowercase))
    };
    let mut words = 0;
    let mut first: Option<&str> = None;
    let mut word_start = None;
    // One more step past the end closes a word that ends the text.
    for (at, c) in text[from..]
        .char_indices()
        .map(|(i, c)| (from + i, Some(c)))
        .chain([(text.len(), None)])
    {
        match (c.is_some_and(char::is_alphanumeric), word_start) {
            (true, None) => word_start = Some(at),
            (false, Some(start)) => {
                let word = &text[start..at];
                match first {
                    None => first = Some(word),
                    Some(f) if same(f, word) => return start,
                    Some(_) => {}
                }
                words += 1;
                if words == n {
                    return at;
                }
                word_start = None;
            }
            _ => {}
        }
    }
    text.len()
}

/// Where the `n`-th word before byte `to` of `text` starts, or 0 when fewer precede it.
fn words_before(text: &str, to: usize, n: u8) -> usize {
    let mut words = 0;
    let mut in_word = false;
    for (i, c) in text[..to].char_indices().rev() {
        let word_char = c.is_alphanumeric();
        if in_word && !word_char {
            words += 1;
            if words == n {
                return i + c.len_utf8();
            }
        }
        in_word = word_char;
    }
    0
}

/// Sentences shorter than this many words (greetings, sign-offs, "Order 4711:") say nothing
/// about what a message is about, so [`unexplained_share`] leaves them out.
const MIN_SENTENCE_WORDS: usize = 4;

/// Share of the words of `text` that stand in sentences where no term was found, in [0, 1]
/// (0 for a text without a sentence of [`MIN_SENTENCE_WORDS`]). `sentences` are the text's
/// sentences ([`Spans::sentences`], found once for both uses). `found` holds the start
/// offsets of the terms found in `text`, in any order (it is sorted here, so that one walk
/// over sentences and offsets together stays linear on long spam). Weighted by words, so a
/// long paragraph about something else weighs much.
pub fn unexplained_share(text: &str, sentences: &[(usize, usize)], found: &mut [usize]) -> f64 {
    found.sort_unstable();
    let mut next = found.iter().peekable();
    let (mut words, mut unexplained) = (0usize, 0usize);
    for &(s, e) in sentences {
        // Sentences come in order: offsets before this one belong to none of the rest.
        while next.next_if(|&&f| f < s).is_some() {}
        let explained = next.peek().is_some_and(|&&f| f < e);
        let mut n = 0;
        crate::text::each_word(&text[s..e], |w| {
            let letter = w.bytes().any(|b| b.is_ascii_alphabetic())
                || (!w.is_ascii() && w.chars().any(char::is_alphabetic));
            n += usize::from(letter);
        });
        if n < MIN_SENTENCE_WORDS && !explained {
            continue;
        }
        words += n;
        if !explained {
            unexplained += n;
        }
    }
    if words == 0 {
        0.0
    } else {
        unexplained as f64 / words as f64
    }
}

/// The bytes that may end a sentence: `\n`, `!`, `?` and `.`.
const SENTENCE_END: [bool; 256] = {
    let mut table = [false; 256];
    table[b'\n' as usize] = true;
    table[b'!' as usize] = true;
    table[b'?' as usize] = true;
    table[b'.' as usize] = true;
    table
};

/// Sentence byte ranges: split after `. ! ?` followed by whitespace (a `.` only where it is a
/// [full stop](is_full_stop)), and at line breaks.
fn sentences(text: &str) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut start = 0;
    let bytes = text.as_bytes();
    let mut i = 0;
    loop {
        // Only four bytes can end a sentence: the others are stepped over, a load each.
        i += bytes[i..]
            .iter()
            .take_while(|&&b| !SENTENCE_END[usize::from(b)])
            .count();
        let Some(&b) = bytes.get(i) else {
            break;
        };
        let end_here = match b {
            b'\n' => true,
            b'!' | b'?' => bytes.get(i + 1).is_none_or(|n| n.is_ascii_whitespace()),
            _ => is_full_stop(text, i),
        };
        if end_here {
            if !text[start..=i].trim().is_empty() {
                out.push((start, i + 1));
            }
            start = i + 1;
        }
        i += 1;
    }
    if !text[start..].trim().is_empty() {
        out.push((start, text.len()));
    }
    out
}

/// Abbreviations (lower case, without their dot) that are followed by more of the same
/// sentence: titles, "number", "e.g.", "approx.", "street" in the seven languages. Not "no",
/// which ends many a Spanish or Italian sentence.
const ABBREVIATIONS: &[&str] = &[
    "mr", "mrs", "ms", "dr", "prof", "nr", "nº", "approx", "incl", "hr", "hrn", "fr", "bzw", "ca", "vgl",
    "ggf", "evtl", "inkl", "zzgl", "str", "sr", "sra", "srta", "dña", "núm", "mme", "mlle", "sig", "sig.ra",
    "dott", "ing", "dhr", "mevr", "mw", "bijv", "ul", "np", "tj", "tzn", "wg", "tel",
];

/// Whether the `.` at byte `i` of `text` ends a sentence. It does not when a letter or digit
/// follows at once (a domain, "z.B.", "31.05.2025"), after an initial ("Herrn B. (Fall 77)"),
/// after an [abbreviation](ABBREVIATIONS) ("Nr. 4711", "Sr. García"), or after a number that a
/// lower-case word follows (the German ordinal date "am 31.05. automatisch").
fn is_full_stop(text: &str, i: usize) -> bool {
    let after = &text[i + 1..];
    if !after.chars().next().is_none_or(char::is_whitespace) {
        return false;
    }
    let word = text[..i]
        .rsplit(|c: char| !c.is_alphanumeric() && c != '.')
        .next()
        .unwrap_or("");
    let mut chars = word.chars();
    if let (Some(initial), None) = (chars.next(), chars.next())
        && initial.is_uppercase()
    {
        return false;
    }
    if word.len() <= 8 && ABBREVIATIONS.contains(&word.to_lowercase().as_str()) {
        return false;
    }
    let next_lower = after.trim_start().chars().next().is_some_and(char::is_lowercase);
    !(next_lower && !word.is_empty() && word.chars().all(|c| c.is_ascii_digit() || c == '.'))
}

/// How many words may stand before an aside cue for it to open its sentence ("I jeszcze jedno
/// przy okazji:", "Und übrigens,").
const OPENER_WORDS: usize = 4;

/// Whether cue `c` opens the sentence starting at `s`: at most [`OPENER_WORDS`] words before it,
/// and a colon or a comma at its end or right after it ("Übrigens, …", "przy okazji: …"), not
/// "die Bewertung ist übrigens schon online".
fn opens_sentence(text: &str, s: usize, c: &CueHit) -> bool {
    let marked =
        text[..c.end].trim_end().ends_with([':', ',']) || text[c.end..].trim_start().starts_with([':', ',']);
    marked && text[s..c.start].split_whitespace().count() <= OPENER_WORDS
}

/// The end of the paragraph holding byte `at`: the next blank line, or the end of the text.
fn paragraph_end(text: &str, at: usize) -> usize {
    let rest = &text[at.min(text.len())..];
    let blank = rest.find("\n\n").into_iter().chain(rest.find("\r\n\r\n")).min();
    blank.map_or(text.len(), |b| at + b)
}

/// Words that end a clause before them: a contrast turns to the real request.
const CONTRASTS: &[&str] = &[
    "but",
    "however",
    "instead",
    "rather",
    "aber",
    "sondern",
    "jedoch",
    "allerdings",
    "sino",
    "pero",
    "sin embargo",
    "mais",
    "cependant",
    "plutot",
    "plutôt",
    "ma",
    "però",
    "pero",
    "tuttavia",
    "bensì",
    "bensi",
    "maar",
    "echter",
    "wel",
    "ale",
    "lecz",
    "jednak",
    "tylko",
];

/// The clause around `start..end`: from the last clause boundary before it to the first after.
/// Clauses end at `! ? ; :`, commas, line breaks and full stops ([`is_full_stop`]); a
/// parenthetical is its own clause for a cue inside it and is stepped over by a cue outside it
/// ("Der Fall von Herrn B. (Fall 77) ist abgeschlossen"), and a contrastive conjunction ends
/// the clause.
fn clause_around(text: &str, start: usize, end: usize) -> (usize, usize) {
    let bytes = text.as_bytes();
    let ends_clause = |i: usize| match bytes[i] {
        b'!' | b'?' | b';' | b':' | b',' | b'\n' => true,
        b'.' => is_full_stop(text, i),
        _ => false,
    };
    // Backwards, a closing parenthesis is stepped over to its opening one (on the same line).
    let mut clause_start = 0;
    let mut i = start;
    while i > 0 {
        i -= 1;
        match bytes[i] {
            b')' => match text[..i].rfind(['(', '\n']) {
                Some(open) if bytes[open] == b'(' => i = open,
                _ => {
                    clause_start = i + 1;
                    break;
                }
            },
            b'(' => {
                clause_start = i + 1;
                break;
            }
            _ if ends_clause(i) => {
                clause_start = i + 1;
                break;
            }
            _ => {}
        }
    }
    let mut clause_end = text.len();
    let mut i = end;
    while i < bytes.len() {
        match bytes[i] {
            b'(' => match text[i..].find([')', '\n']) {
                Some(close) if bytes[i + close] == b')' => i += close,
                _ => {
                    clause_end = i;
                    break;
                }
            },
            b')' => {
                clause_end = i;
                break;
            }
            _ if ends_clause(i) => {
                clause_end = i;
                break;
            }
            _ => {}
        }
        i += 1;
    }
    // A contrastive conjunction inside the clause ends the scope there. Only the clause is
    // lowered, where lowering keeps every byte offset (it does for the seven languages).
    if let Some(lower) = lower_in_place(&text[clause_start..clause_end]) {
        let (cs, ce) = (clause_start, clause_end);
        // Every contrast word of the clause in one pass; then, word by word in list order, the
        // scope shrinks to the first one after the cue and the last one before it that stand
        // as words in what is left of each side (as a search per word would find them).
        let after = &lower[end - cs..];
        let found_after: Vec<(&str, usize)> = CONTRAST_WORDS
            .find_overlapping_iter(after)
            .map(|m| (CONTRASTS[m.pattern().as_usize()], m.start()))
            .collect();
        let before = &lower[..start - cs];
        let found_before: Vec<(&str, usize)> = CONTRAST_WORDS
            .find_overlapping_iter(before)
            .map(|m| (CONTRASTS[m.pattern().as_usize()], m.start()))
            .collect();
        let mut after_len = after.len();
        let mut before_from = 0;
        for word in CONTRASTS {
            if let Some(at) = found_after
                .iter()
                .filter(|&&(w, at)| w == *word && at + w.len() <= after_len)
                .map(|&(_, at)| at)
                .find(|&at| stands_alone(&after[..after_len], at, word.len()))
            {
                after_len = at;
                clause_end = end + at;
            }
            if let Some(at) = found_before
                .iter()
                .rev()
                .filter(|&&(w, at)| w == *word && at >= before_from)
                .map(|&(_, at)| at)
                .find(|&at| stands_alone(&before[before_from..], at - before_from, word.len()))
            {
                before_from = at + word.len();
                clause_start = cs + before_from;
            }
        }
        debug_assert!(cs <= clause_start && clause_end <= ce);
    }
    (clause_start, clause_end)
}

/// `text` in lower case when every character's lower case has its byte length, so that every
/// byte offset of `text` is one of the result; `None` otherwise ("İ" lowers to three bytes and
/// "ẞ" to two: a clause holding both keeps its length while the offsets between them move).
fn lower_in_place(text: &str) -> Option<String> {
    let mut lower = String::with_capacity(text.len());
    for c in text.chars() {
        let at = lower.len();
        lower.extend(c.to_lowercase());
        if lower.len() - at != c.len_utf8() {
            return None;
        }
    }
    Some(lower)
}

/// [`CONTRASTS`] in one automaton (all matches, overlapping: a per-word search from each
/// negation cue rebuilt a substring searcher 56 times a cue, about 4,000 instructions a ticket).
static CONTRAST_WORDS: LazyLock<aho_corasick::AhoCorasick> =
    LazyLock::new(|| aho_corasick::AhoCorasick::new(CONTRASTS).expect("a few short literals build"));

/// Whether the `len` bytes at `at` of `haystack` stand as a word: no letter or digit just
/// before or after them inside `haystack`.
fn stands_alone(haystack: &str, at: usize, len: usize) -> bool {
    !is_word_char(haystack[..at].chars().next_back()) && !is_word_char(haystack[at + len..].chars().next())
}

fn is_word_char(c: Option<char>) -> bool {
    c.is_some_and(char::is_alphanumeric)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The context `spans` give the first occurrence of `word` in `text`.
    fn context_of(spans: &Spans, text: &str, word: &str) -> Context {
        let s = text.find(word).unwrap_or_else(|| panic!("{word} not in {text}"));
        spans.context(s, s + word.len())
    }

    #[test]
    fn reply_and_forward_subjects_are_recognised_in_every_language() {
        for s in [
            "Re: Rechnung 2024-118",
            "AW: AW: Ihre Rechnung",
            "RV: Factura duplicada",
            "R: Fattura di marzo",
            "I: Fattura di marzo",
            "PD: Faktura",
            "Doorst: Factuur",
            "Odp: Faktura",
            "Antw: Factuur",
            "TR: Facture",
            "Fwd: invoice",
            "WG: Kündigung",
            "SV: Faktura",
            "RE[2]: Invoice",
            "[#48213] Your audit report",
            "Ticket 2024111310 – Rechnung",
            "Re: [Ticket#2024111310000123] Rechnung",
        ] {
            assert!(is_reply_subject(s), "{s}");
        }
    }

    #[test]
    fn a_subject_that_only_starts_like_a_prefix_is_a_fresh_subject() {
        for s in [
            "I need a copy of the invoice",
            "Rechnung: Frage",
            "Reclamación: pedido 12",
            "Iscrizione",
        ] {
            assert!(!is_reply_subject(s), "{s}");
        }
    }

    #[test]
    fn a_text_with_a_term_in_every_sentence_has_nothing_unexplained() {
        let text = "Invoice 12 is wrong. Please correct the invoice.";
        assert_eq!(unexplained_share(text, &sentences(text), &mut [40, 0]), 0.0);
    }

    #[test]
    fn unexplained_share_counts_words_of_the_sentences_without_a_term() {
        // 2 words in the sentence with a term, 7 in the sentence without; the greeting is
        // too short to say anything.
        let text = "Hello Anna,\nInvoice wrong.\nThe weather in Dublin was lovely today.";
        let share = unexplained_share(text, &sentences(text), &mut [12]);
        assert!((share - 7.0 / 9.0).abs() < 1e-12, "{share}");
    }

    #[test]
    fn a_text_without_words_has_no_unexplained_share() {
        assert_eq!(unexplained_share("", &[], &mut []), 0.0);
        assert_eq!(
            unexplained_share("--- 123 ---", &sentences("--- 123 ---"), &mut []),
            0.0
        );
    }

    #[test]
    fn fresh_subjects_are_not_replies() {
        for s in [
            "Rechnung doppelt",
            "Recensione negativa",
            "Refund for my order",
            "Reaudit",
            "Rv park invoice",
        ] {
            assert!(!is_reply_subject(s), "{s}");
        }
    }

    fn cue(text: &str, phrase: &str, kind: CueKind, scope: Scope) -> CueHit {
        let start = text.find(phrase).unwrap();
        CueHit {
            start,
            end: start + phrase.len(),
            kind,
            scope,
            window: None,
        }
    }

    #[test]
    fn a_windowed_scope_ends_after_its_words_or_at_the_clause_end() {
        let text = "Bitte statt der Überweisung künftig mit Kreditkarte abbuchen, danke.";
        let mut c = cue(text, "statt", CueKind::Negation, Scope::After);
        c.window = Some(2);
        let spans = Spans::of(text, &[c]);
        assert_eq!(spans.negated.len(), 1);
        let (s, e) = spans.negated[0];
        assert_eq!(&text[s..e], "statt der Überweisung");
        // A window longer than the clause stops at the clause.
        c.window = Some(12);
        let (s, e) = Spans::of(text, &[c]).negated[0];
        assert_eq!(
            &text[s..e],
            "statt der Überweisung künftig mit Kreditkarte abbuchen"
        );
    }

    #[test]
    fn a_windowed_scope_ends_where_its_first_word_comes_again() {
        // The second "per" begins what replaces the negated thing.
        let text = "Wir möchten statt per Überweisung per Kreditkarte zahlen.";
        let mut c = cue(text, "statt", CueKind::Negation, Scope::After);
        c.window = Some(4);
        let (s, e) = Spans::of(text, &[c]).negated[0];
        assert_eq!(&text[s..e], "statt per Überweisung ");
    }

    #[test]
    fn word_windows_count_words_across_non_ascii_letters_and_stop_at_the_text_edges() {
        let text = "Größe ändern ärgerlich";
        // Fewer words than the window: to the end, and back to the start.
        assert_eq!(words_after(text, 0, 5), text.len());
        assert_eq!(words_before(text, text.len(), 5), 0);
        // Exactly the words there are, with a non-ASCII letter at each edge.
        assert_eq!(words_after(text, 0, 3), text.len());
        assert_eq!(&text[words_before(text, text.len(), 2)..], "ändern ärgerlich");
        assert_eq!(&text[..words_after(text, 0, 2)], "Größe ändern");
        // A window that reaches exactly the end of the clause ends with it.
        let clause = "not a cancellation, thanks";
        let mut c = cue(clause, "not a", CueKind::Negation, Scope::After);
        c.window = Some(1);
        let (s, e) = Spans::of(clause, &[c]).negated[0];
        assert_eq!(&clause[s..e], "not a cancellation");
    }

    #[test]
    fn a_windowed_settled_scope_reaches_back_its_words_only() {
        let text = "We changed the card and the invoice is already paid.";
        let mut c = cue(text, "already paid", CueKind::Settled, Scope::Before);
        c.window = Some(2);
        let (s, e) = Spans::of(text, &[c]).negated[0];
        assert_eq!(&text[s..e], "invoice is already paid");
    }

    #[test]
    fn a_negation_scope_runs_to_the_end_of_its_clause() {
        let text = "This is not a cancellation, we only want to change the bank account.";
        let spans = Spans::of(text, &[cue(text, "not a", CueKind::Negation, Scope::After)]);
        let at = |w: &str| context_of(&spans, text, w);
        assert_eq!(at("cancellation"), Context::Negated);
        assert_eq!(at("bank account"), Context::Plain);
    }

    #[test]
    fn terms_before_the_last_shift_cue_are_preamble_and_a_negated_scope_stays_negated() {
        let text = "Danke, die Rechnung ist da, die Mahnung nicht mehr. Andere Sache: wie ändere ich \
                    das Passwort? Und noch etwas: können Sie die Rechnung auch per Post schicken?";
        let spans = Spans::of(
            text,
            &[
                cue(text, "Andere Sache", CueKind::Shift, Scope::Before),
                cue(text, "noch etwas", CueKind::Shift, Scope::Before),
                cue(text, "nicht mehr", CueKind::Settled, Scope::Before),
                cue(text, "können Sie", CueKind::Request, Scope::After),
            ],
        );
        let at = |w: &str| context_of(&spans, text, w);
        assert_eq!(at("Rechnung"), Context::Preamble);
        assert_eq!(at("Mahnung"), Context::Negated);
        // Before the last shift, even a question is preamble.
        assert_eq!(at("Passwort"), Context::Preamble);
        let last = text.rfind("Rechnung").unwrap();
        assert_eq!(spans.context(last, last + "Rechnung".len()), Context::Request);
        assert!(Context::Preamble.factor() < Context::Plain.factor());
    }

    #[test]
    fn an_aside_marks_its_whole_sentence_even_a_question_and_a_shift_inside_it_opens_no_preamble() {
        let text = "Können Sie bitte die Bankverbindung ändern? Wo ich schon schreibe: das Widget lädt \
                    langsam, nichts Schlimmes. Gibt es ein Plugin für Wix, nicht dringend?";
        let spans = Spans::of(
            text,
            &[
                cue(text, "Können Sie", CueKind::Request, Scope::After),
                cue(text, "Wo ich schon schreibe", CueKind::Shift, Scope::Before),
                cue(text, "nichts Schlimmes", CueKind::Aside, Scope::After),
                cue(text, "nicht dringend", CueKind::Aside, Scope::After),
            ],
        );
        let at = |w: &str| context_of(&spans, text, w);
        assert_eq!(at("Bankverbindung"), Context::Request);
        assert_eq!(at("Widget"), Context::Aside);
        assert_eq!(at("Plugin"), Context::Aside);
        assert!(spans.preamble.is_empty());
        assert!(Context::Aside.factor() < Context::Plain.factor());
    }

    #[test]
    fn an_aside_that_holds_the_only_request_is_the_request() {
        let text = "Das Audit ist für Mai geplant. Übrigens, wie binden wir das Widget ein? Nichts Schlimmes, \
                    die Seite lädt langsam, übrigens.";
        let spans = Spans::of(
            text,
            &[
                cue(text, "Übrigens", CueKind::Aside, Scope::After),
                cue(text, "übrigens", CueKind::Aside, Scope::After),
            ],
        );
        let at = |w: &str| context_of(&spans, text, w);
        assert_eq!(at("Widget"), Context::Request);
        // The sentence that asks nothing stays a side point.
        assert_eq!(at("Seite"), Context::Aside);
    }

    #[test]
    fn an_aside_that_opens_its_sentence_goes_on_to_the_end_of_its_paragraph() {
        let text = "Wann kommt mein Geld zurück? I jeszcze jedno przy okazji: ich habe eine Bewertung \
                    geschrieben. Kann ich sie später ändern?\n\nUnd wer zahlt das Porto?";
        let spans = Spans::of(text, &[cue(text, "przy okazji:", CueKind::Aside, Scope::After)]);
        let at = |w: &str| context_of(&spans, text, w);
        assert_eq!(at("Geld"), Context::Request);
        assert_eq!(at("Bewertung"), Context::Aside);
        assert_eq!(at("ändern"), Context::Aside, "the next sentence of the paragraph");
        assert_eq!(at("Porto"), Context::Request, "a new paragraph");
        // A request cue or a turn to the real point ends the side point.
        let text = "By the way, our accountant is away. Please refund the double charge.";
        let spans = Spans::of(
            text,
            &[
                cue(text, "By the way", CueKind::Aside, Scope::After),
                cue(text, "Please", CueKind::Request, Scope::After),
            ],
        );
        assert_eq!(context_of(&spans, text, "refund"), Context::Request);
        // A cue further into its sentence marks that sentence only.
        let text = "Wann kommt mein Geld? Die Bewertung ist übrigens schon online. Kann ich sie ändern?";
        let spans = Spans::of(text, &[cue(text, "übrigens", CueKind::Aside, Scope::After)]);
        assert_eq!(context_of(&spans, text, "ändern"), Context::Request);
    }

    #[test]
    fn a_shift_cue_at_the_start_leaves_no_preamble() {
        for text in [
            "Andere Sache: die Rechnung bitte per Post.",
            "\n \nAndere Sache: die Rechnung.",
        ] {
            let spans = Spans::of(text, &[cue(text, "Andere Sache", CueKind::Shift, Scope::Before)]);
            assert!(spans.preamble.is_empty(), "{text:?}");
        }
    }

    #[test]
    fn a_settled_scope_reaches_back_to_the_start_of_its_clause() {
        let text = "Die Rechnung ist bereits bezahlt. Bitte ändern Sie unsere Adresse.";
        let spans = Spans::of(
            text,
            &[
                cue(text, "bereits bezahlt", CueKind::Settled, Scope::Before),
                cue(text, "Bitte", CueKind::Request, Scope::After),
            ],
        );
        let at = |w: &str| context_of(&spans, text, w);
        assert_eq!(at("Rechnung"), Context::Negated);
        assert_eq!(at("Adresse"), Context::Request);
    }

    #[test]
    fn a_settled_scope_steps_over_an_initial_and_a_parenthetical() {
        let text = "Nur damit es nicht verwechselt wird: der Käuferschutzfall von Herrn B. \
                    (Fall 7712890) ist abgeschlossen, wir haben erstattet. Bitte löschen Sie die Bewertung.";
        let spans = Spans::of(
            text,
            &[cue(text, "ist abgeschlossen", CueKind::Settled, Scope::Before)],
        );
        let at = |w: &str| context_of(&spans, text, w);
        assert_eq!(at("Käuferschutzfall"), Context::Negated);
        assert_eq!(at("Fall 7712890"), Context::Negated);
        assert_eq!(at("verwechselt"), Context::Plain);
        assert_eq!(at("Bewertung"), Context::Plain);
    }

    #[test]
    fn a_cue_inside_a_parenthetical_scopes_only_the_parenthetical() {
        let text = "Bitte die Rechnung korrigieren (die Mahnung ist schon bezahlt) und neu senden.";
        let spans = Spans::of(
            text,
            &[cue(text, "ist schon bezahlt", CueKind::Settled, Scope::Before)],
        );
        let at = |w: &str| context_of(&spans, text, w);
        assert_eq!(at("Mahnung"), Context::Negated);
        assert_eq!(at("Rechnung"), Context::Plain);
    }

    #[test]
    fn dots_of_initials_abbreviations_and_dates_end_no_sentence() {
        let text = "Sr. García escribió el 31.05. sobre la factura Nr. 4711 de J. Smith. Otra frase aquí.";
        let found: Vec<&str> = sentences(text).iter().map(|&(s, e)| text[s..e].trim()).collect();
        assert_eq!(
            found,
            [
                "Sr. García escribió el 31.05. sobre la factura Nr. 4711 de J. Smith.",
                "Otra frase aquí."
            ]
        );
        let text = "Creo que no. Queremos cambiar el plan. Vale.";
        assert_eq!(sentences(text).len(), 3);
    }

    #[test]
    fn a_contrast_ends_the_negated_scope() {
        let text = "No quiero que eliminen la valoración sino que me devuelvan el dinero";
        let spans = Spans::of(text, &[cue(text, "No quiero", CueKind::Negation, Scope::After)]);
        let at = |w: &str| context_of(&spans, text, w);
        assert_eq!(at("valoración"), Context::Negated);
        assert_eq!(at("dinero"), Context::Plain);
    }

    #[test]
    fn a_contrast_before_a_settled_cue_ends_its_scope_there() {
        let text = "Die Rechnung ist offen aber die Kündigung ist erledigt";
        let spans = Spans::of(text, &[cue(text, "erledigt", CueKind::Settled, Scope::Before)]);
        let at = |w: &str| context_of(&spans, text, w);
        assert_eq!(at("Kündigung"), Context::Negated);
        assert_eq!(at("Rechnung"), Context::Plain);
    }

    #[test]
    fn a_contrast_word_inside_another_word_ends_no_scope() {
        // "ma" in "mail" and "aber" after "Button" as a word: a contrast word ends the scope only
        // where it stands as a word.
        let text = "Non è un problema della mail ma del button, ma della fattura";
        let spans = Spans::of(text, &[cue(text, "Non", CueKind::Negation, Scope::After)]);
        let at = |w: &str| context_of(&spans, text, w);
        assert_eq!(at("mail"), Context::Negated);
        assert_eq!(at("button"), Context::Plain);
        assert_eq!(at("fattura"), Context::Plain);
        let text = "Kein Problem mit dem Button aber mit der Rechnung";
        let spans = Spans::of(text, &[cue(text, "Kein", CueKind::Negation, Scope::After)]);
        assert_eq!(context_of(&spans, text, "Button"), Context::Negated);
        assert_eq!(context_of(&spans, text, "Rechnung"), Context::Plain);
    }

    #[test]
    fn letters_whose_lower_case_changes_length_do_not_shift_the_scope() {
        // "İ" lower-cases to three bytes and "ẞ" to two: the clause keeps its length while the
        // offsets between them move by one.
        let text = "İch will nicht kündigen aber ẞ";
        let spans = Spans::of(text, &[cue(text, "nicht", CueKind::Negation, Scope::After)]);
        assert_eq!(context_of(&spans, text, "kündigen"), Context::Negated);
        let text = "İİ nie ma faktury ale ẞẞ";
        let spans = Spans::of(text, &[cue(text, "nie", CueKind::Negation, Scope::After)]);
        assert_eq!(context_of(&spans, text, "faktury"), Context::Negated);
    }

    #[test]
    fn questions_are_requests() {
        let text = "We moved to Shopware last year.\nCan the widget show on product pages?";
        let spans = Spans::of(text, &[]);
        let s = text.find("widget").unwrap();
        assert_eq!(spans.context(s, s + 6), Context::Request);
        let s = text.find("Shopware").unwrap();
        assert_eq!(spans.context(s, s + 8), Context::Plain);
    }
}
