//! Splits a plain-text body into new text, quoted history and signature.
//!
//! What the sender wrote this time decides the queue; the thread below it and the signature
//! (company names, disclaimers) often talk about something else. Recognised, in the seven
//! languages: `>` quoting, reply attributions (`On … wrote:`, `Am … schrieb …:`,
//! `El … escribió:`, `Le … a écrit :`, `Il … ha scritto:`, `Op … schreef …:`,
//! `W dniu … napisał(a):`), Outlook's `-----Original Message-----` separators and
//! `From:/Sent:` header blocks, forwarded-message markers, `-- ` signature separators and
//! closings (`Kind regards`, `Mit freundlichen Grüßen`, `Un saludo`, …) followed by a short
//! name/company block.

use std::sync::LazyLock;

use regex::Regex;

use crate::text::{Folded, fold_into};

/// A body split into its zones. Concatenated, they hold every line of the input.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Zones {
    /// The new text.
    pub new_text: String,
    /// Quoted or forwarded history, with the `>` markers removed.
    pub quoted: String,
    /// The closing and signature block.
    pub signature: String,
}

/// The word an attribution line opens with ("On …", "Am …", "W dniu …").
static ATTRIBUTION_INTRO: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)^\s*(on|am|el|le|il|op|w dniu|dnia)\b").expect("attribution intro regex")
});

/// The verb of an attribution line ("wrote", "schrieb", "a écrit", "napisał(a)").
static ATTRIBUTION_VERB_WORD: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)\b(wrote|schrieb|escribi[óo]|a [ée]crit|ha scritto|schreef|napisa[łl](\(a\)|a)?)")
        .expect("attribution verb regex")
});

/// Most characters between an attribution's opening word and its verb (a date, a time, a name
/// and an address).
const ATTRIBUTION_MAX_BEFORE_VERB: usize = 240;

/// Most characters between the white space after an attribution's verb and its closing colon
/// (a name and an address: "Am … schrieb Support <a@b.com>:").
const ATTRIBUTION_MAX_AFTER_VERB: usize = 160;

/// Whether `line` has the shape of a reply attribution: an opening word, at most
/// [`ATTRIBUTION_MAX_BEFORE_VERB`] characters, a verb, then nothing but an optional colon, or
/// a white space, at most [`ATTRIBUTION_MAX_AFTER_VERB`] characters and a colon, at the end of
/// the line.
///
/// The same language as the regex
/// `^\s*(on|am|…)\b.{0,240}\b(wrote|…)(\s*:?|\s.{0,160}:)\s*$` (case-insensitive), tested
/// against it, in three cheap steps: that regex's counted repetitions of any character made a
/// lazy DFA too large to stay warm, and a line with a verb in it cost about 75,000 instructions.
fn is_attribution_shaped(line: &str) -> bool {
    let Some(intro) = ATTRIBUTION_INTRO.find(line) else {
        return false;
    };
    let mut at = intro.end();
    while let Some(verb) = ATTRIBUTION_VERB_WORD.find_at(line, at) {
        let between = &line[intro.end()..verb.start()];
        if between.contains('\n') || between.chars().count() > ATTRIBUTION_MAX_BEFORE_VERB {
            // Every later verb is further away.
            return false;
        }
        if attribution_tail(&line[verb.end()..]) {
            return true;
        }
        // The next verb may start inside this one only in theory; look from its next character.
        at = verb.start() + line[verb.start()..].chars().next().map_or(1, char::len_utf8);
    }
    false
}

/// What may follow an attribution's verb: `(\s*:?|\s.{0,160}:)\s*$`.
fn attribution_tail(rest: &str) -> bool {
    let trimmed = rest.trim();
    if trimmed.is_empty() || trimmed == ":" {
        return true;
    }
    let Some(inner) = rest.trim_end().strip_suffix(':') else {
        return false;
    };
    let mut chars = inner.chars();
    // `\s` may be a line break; the characters after it (`.`) may not.
    chars.next().is_some_and(char::is_whitespace)
        && !chars.as_str().contains('\n')
        && chars.count() <= ATTRIBUTION_MAX_AFTER_VERB
}

static SEPARATOR: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?ix)^\s*(
            -{2,}\s*(original\s+message|urspr[üu]ngliche\s+nachricht|mensaje\s+original|message\s+d.origine|messaggio\s+originale|oorspronkelijk\s+bericht|wiadomo[śs][ćc]\s+oryginalna|forwarded\s+message|weitergeleitete\s+nachricht|mensaje\s+reenviado|message\s+transf[ée]r[ée]|messaggio\s+inoltrato|doorgestuurd\s+bericht|przekazana\s+wiadomo[śs][ćc]|original\s+nachricht)\s*-{2,}
            | _{10,}
            | (begin\s+forwarded\s+message|anfang\s+der\s+weitergeleiteten\s+nachricht|inicio\s+del\s+mensaje\s+reenviado|d[ée]but\s+du\s+message\s+r[ée]exp[ée]di[ée])\s*:
        )\s*$",
    )
    .expect("separator regex")
});

static HEADER_FROM: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)^\s*\*?(from|von|de|da|van|od|sender|absender)\s*:\*?\s*\S").expect("from regex")
});

static HEADER_OTHER: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?i)^\s*\*?(sent|gesendet|enviado|envoy[ée]|inviato|verzonden|wys[łl]ano|date|datum|fecha|data|subject|betreff|asunto|objet|oggetto|onderwerp|temat|to|an|para|[àa]|aan|do|cc)\s*:",
    )
    .expect("header regex")
});

/// Closings that begin a signature block, folded (see [`crate::text::fold`]).
const CLOSINGS: &[&str] = &[
    // English
    "best regards",
    "kind regards",
    "warm regards",
    "regards",
    "best wishes",
    "best",
    "cheers",
    "thanks",
    "thank you",
    "many thanks",
    "sincerely",
    "yours sincerely",
    "yours faithfully",
    "all the best",
    // German
    "mit freundlichen grussen",
    "mit freundlichen gruessen",
    "mit freundlichem gruss",
    "freundliche grusse",
    "viele grusse",
    "beste grusse",
    "liebe grusse",
    "herzliche grusse",
    "schone grusse",
    "gruss",
    "grusse",
    "lg",
    "vg",
    "mfg",
    "danke",
    "vielen dank",
    // Spanish
    "un saludo",
    "saludos",
    "un cordial saludo",
    "saludos cordiales",
    "atentamente",
    "gracias",
    "muchas gracias",
    "un abrazo",
    // French
    "cordialement",
    "bien cordialement",
    "bien a vous",
    "salutations",
    "meilleures salutations",
    "sinceres salutations",
    "merci",
    "merci d'avance",
    "merci beaucoup",
    // Italian
    "cordiali saluti",
    "distinti saluti",
    "saluti",
    "un saluto",
    "grazie",
    "grazie mille",
    "buona giornata",
    // Dutch
    "met vriendelijke groet",
    "met vriendelijke groeten",
    "vriendelijke groet",
    "groeten",
    "groet",
    "mvg",
    "bedankt",
    "alvast bedankt",
    "hartelijke groet",
    // Polish
    "z powazaniem",
    "pozdrawiam",
    "pozdrowienia",
    "serdecznie pozdrawiam",
    "dziekuje",
    "dziekuje bardzo",
    "z wyrazami szacunku",
];

/// Splits `body` into new text, quoted history and signature.
pub fn split(body: &str) -> Zones {
    let body = if body.contains('\r') {
        std::borrow::Cow::Owned(body.replace("\r\n", "\n"))
    } else {
        std::borrow::Cow::Borrowed(body)
    };
    let lines: Vec<&str> = body.split('\n').collect();
    let cut = history_start(&lines, &attribution_candidates(&body, &lines)).unwrap_or(lines.len());

    let mut new_lines = Vec::new();
    let mut quoted = Vec::new();
    for line in &lines[..cut] {
        match line.trim_start().strip_prefix('>') {
            Some(rest) => quoted.push(rest.trim_start_matches(['>', ' '])),
            None => new_lines.push(*line),
        }
    }
    quoted.extend(
        lines[cut..]
            .iter()
            .map(|l| l.trim_start().trim_start_matches(['>', ' '])),
    );

    let sig = signature_start(&new_lines).unwrap_or(new_lines.len());
    Zones {
        new_text: join(&new_lines[..sig]),
        quoted: join(&quoted),
        signature: join(&new_lines[sig..]),
    }
}

fn join(lines: &[&str]) -> String {
    lines.join("\n").trim().to_string()
}

/// Words every attribution line contains (lower case); lines without one skip
/// [`is_attribution_shaped`].
const ATTRIBUTION_VERBS: [&str; 7] = [
    "wrote", "schrieb", "escribi", "crit", "scritto", "schreef", "napisa",
];

/// [`ATTRIBUTION_VERBS`] in one automaton, for text whose ASCII letters are lower case (the
/// verbs are ASCII, so that is ASCII case ignored). Case-sensitive and leftmost-first,
/// aho-corasick finds candidates with its packed SIMD prefilter (Teddy); an automaton with
/// `ascii_case_insensitive` or the standard match kind gets no prefilter for these seven verbs
/// and steps its DFA over every byte of every body. Which verb matches, or whether matches
/// overlap, does not matter: only the lines that hold one do, and no verb spans a line.
static ATTRIBUTION_VERB: LazyLock<aho_corasick::AhoCorasick> = LazyLock::new(|| {
    aho_corasick::AhoCorasick::builder()
        .match_kind(aho_corasick::MatchKind::LeftmostFirst)
        .build(ATTRIBUTION_VERBS)
        .expect("attribution verbs automaton")
});

thread_local! {
    /// The text searched for attribution verbs, ASCII lower-cased: one buffer per thread,
    /// reused (given back past [`KEEP_FOLDED_BYTES`], as [`FOLDED`] is).
    static LOWERED: std::cell::RefCell<Vec<u8>> = std::cell::RefCell::default();
}

/// Calls `f` with `text`'s bytes, ASCII letters lower-cased (same length, same offsets). A copy:
/// one allocation a thread while texts stay under [`KEEP_FOLDED_BYTES`], one a call past it.
fn with_ascii_lowered<T>(text: &str, f: impl FnOnce(&[u8]) -> T) -> T {
    LOWERED.with_borrow_mut(|lowered| {
        lowered.clear();
        lowered.extend(text.bytes().map(|b| b.to_ascii_lowercase()));
        let result = f(lowered);
        if lowered.capacity() > KEEP_FOLDED_BYTES {
            *lowered = Vec::new();
        }
        result
    })
}

/// Whether `line` holds an attribution verb: the cheap test before [`is_attribution_shaped`].
fn may_attribute(line: &str) -> bool {
    with_ascii_lowered(line, |lowered| ATTRIBUTION_VERB.is_match(lowered))
}

/// [`may_attribute`] of every line of `text` (`lines` is `text` split at `\n`), from one
/// search of the whole text rather than one per line: no verb spans a line break.
fn attribution_candidates(text: &str, lines: &[&str]) -> Vec<bool> {
    let mut starts = Vec::with_capacity(lines.len());
    let mut at = 0;
    for line in lines {
        starts.push(at);
        at += line.len() + 1;
    }
    let mut candidates = vec![false; lines.len()];
    with_ascii_lowered(text, |lowered| {
        for m in ATTRIBUTION_VERB.find_iter(lowered) {
            let line = starts.partition_point(|&s| s <= m.start()) - 1;
            candidates[line] = true;
        }
    });
    candidates
}

/// The index of the first line of quoted or forwarded history.
///
/// Only the evidence of history counts: a separator, an Outlook-style header block, `>`
/// lines (handled by the caller), or an attribution that is one. An attribution line ("On …
/// wrote:") starts the history when quoted text or a header block follows it, or when it
/// carries what only a mail client writes there (a time of day or an address); a line of the
/// writer's own text that happens to end in "wrote:" ("… which is why our accountant wrote:")
/// followed by more of their own text is new text.
///
/// `candidates` is [`attribution_candidates`] of the lines.
fn history_start(lines: &[&str], candidates: &[bool]) -> Option<usize> {
    for (i, line) in lines.iter().enumerate() {
        if line.len() > 400 || line.trim().is_empty() {
            continue;
        }
        if is_separator(line) || is_groupwise_attribution(line) {
            return Some(i);
        }
        if candidates[i] && is_attribution_shaped(line) && is_attribution(line, &lines[i + 1..]) {
            return Some(i);
        }
        // Attributions that the mail client wrapped over two lines.
        if let Some(next) = lines.get(i + 1)
            && line.len() + next.len() < 400
            && candidates[i + 1]
        {
            let joined = format!("{} {}", line.trim(), next.trim());
            if is_attribution_shaped(&joined) && is_attribution(&joined, &lines[i + 2..]) {
                return Some(i);
            }
        }
        if is_header_block(lines, i) {
            return Some(i);
        }
    }
    None
}

/// True when the first lines of `text` carry a mark of quoted history: a separator, an
/// attribution line or a reply header block (used to tell an HTML quote container from a
/// container that only wraps the writer's own text).
pub fn has_history_marks(text: &str) -> bool {
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).take(12).collect();
    (0..lines.len()).any(|i| {
        let line = lines[i];
        line.len() <= 400
            && (is_separator(line)
                || is_groupwise_attribution(line)
                || (may_attribute(line) && is_attribution_shaped(line))
                || is_header_block(&lines, i))
    })
}

/// An Outlook/Exchange-style header block starts at `i`: a `From:` line with another header
/// (`Sent:`, `To:`, `Subject:` …) within the next five lines.
fn is_header_block(lines: &[&str], i: usize) -> bool {
    let header = |l: &str, regex: &Regex| l.contains(':') && regex.is_match(l);
    header(lines[i], &HEADER_FROM) && lines[i + 1..].iter().take(5).any(|l| header(l, &HEADER_OTHER))
}

/// Whether `line` is a separator of quoted or forwarded history ([`SEPARATOR`]). Every
/// separator starts, after white space, with a dash, an underscore or the first letter of its
/// words: other lines skip the regex.
fn is_separator(line: &str) -> bool {
    matches!(
        line.trim_start().chars().next(),
        Some('-' | '_' | 'b' | 'B' | 'a' | 'A' | 'i' | 'I' | 'd' | 'D')
    ) && SEPARATOR.is_match(line)
}

/// Times of day (`10:12`, `10.12 Uhr` is not needed: clients write the colon) and addresses.
/// No digit may touch the time (so `2024:10` or a port is none), but a letter may: clients
/// write `11:02h`, `11:02Uhr`, `11:02AM`.
static CLIENT_MARKS: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?:^|[^0-9])[0-9]{1,2}:[0-9]{2}(?:[^0-9]|$)|@|<[^>]+>").expect("client marks regex")
});

/// A date as clients write it in an attribution: `10-4-2024`, `04/10/24`, `10.04.2024`.
static DATE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?:^|[^0-9])[0-9]{1,4}[-./][0-9]{1,2}[-./][0-9]{2,4}(?:[^0-9]|$)").expect("date regex")
});

/// The attribution line GroupWise writes above the message it quotes, the same in every
/// language: `>>> Kevin Bauer <kb@example.com> 10-4-2024 11:02 >>>` (or with the name alone), the
/// quoted message below it not prefixed with `>`. GroupWise always writes the date and the time;
/// the writer's own `>>> Meeting 10:30 >>>` has a time at most.
fn is_groupwise_attribution(line: &str) -> bool {
    let line = line.trim();
    if line.len() <= 6 || !line.starts_with(">>>") || !line.ends_with(">>>") {
        return false;
    }
    let inner = &line[3..line.len() - 3];
    DATE.is_match(inner) && CLIENT_MARKS.is_match(inner)
}

/// True when an attribution-shaped line (already matched) is a real one, judged by what follows
/// it (`after`) and by what it carries.
fn is_attribution(line: &str, after: &[&str]) -> bool {
    let Some(next) = after.iter().position(|l| !l.trim().is_empty()) else {
        // Nothing follows: whatever it is, it quotes nothing.
        return CLIENT_MARKS.is_match(line);
    };
    let next_line = after[next];
    next_line.trim_start().starts_with('>')
        || is_header_block(after, next)
        || is_separator(next_line)
        || CLIENT_MARKS.is_match(line)
}

/// The index of the line that begins the signature, if the new text ends with one: a `-- `
/// separator, a closing followed by a short name/company block, or a confidentiality
/// disclaimer at the end (with or without a closing before it).
fn signature_start(lines: &[&str]) -> Option<usize> {
    if let Some(i) = lines.iter().position(|l| l.trim_end() == "--") {
        return Some(i);
    }
    let disclaimer = disclaimer_start(lines);
    let body = &lines[..disclaimer.unwrap_or(lines.len())];
    let closing = body.iter().rposition(|l| !l.trim().is_empty()).and_then(|last| {
        // A closing is only a closing near the end: at most eight lines of name/company below it.
        let first = last.saturating_sub(8);
        // The tail's shape first: it needs no fold.
        (first..=last).find(|&i| i > 0 && tail_is_short(&body[i + 1..=last]) && is_closing(body[i]))
    });
    closing.or(disclaimer)
}

/// Words of confidentiality and legal disclaimers, folded, in the seven languages. A line with
/// two of them opens a disclaimer; see [`disclaimer_start`].
const DISCLAIMER_CUES: &[&str] = &[
    // English
    "disclaimer",
    "confidential",
    "intended recipient",
    "intended solely",
    "intended only",
    "addressee",
    "privileged",
    "disclosure",
    "prohibited",
    "unlawful",
    "notify the sender",
    "delete this",
    "delete it",
    "virus",
    "liability",
    "this e-mail",
    "this email",
    "this message",
    "in error",
    // German
    "haftungsausschluss",
    "vertraulich",
    "empfanger",
    "adressat",
    "irrtumlich",
    "unbefugt",
    "weitergabe",
    "untersagt",
    "haftung",
    "benachrichtigen sie",
    "loschen",
    "diese e-mail",
    "diese nachricht",
    // Spanish
    "aviso legal",
    "confidencial",
    "destinatario",
    "prohibid",
    "divulgacion",
    "notifique",
    "elimin",
    "responsabilidad",
    "este mensaje",
    "este correo",
    "privilegiad",
    "por error",
    // French
    "avertissement",
    "confidenti",
    "destinataire",
    "interdit",
    "divulgation",
    "supprim",
    "responsabilite",
    "expediteur",
    "ce message",
    "ce courriel",
    "par erreur",
    // Italian
    "riservat",
    "vietat",
    "divulgazione",
    "cancell",
    "responsabilita",
    "mittente",
    "questo messaggio",
    "questa e-mail",
    "questa email",
    "confidenzial",
    "per errore",
    // Dutch
    "vertrouwelijk",
    "geadresseerde",
    "bestemd",
    "openbaarmaking",
    "verwijder",
    "aansprakelijkheid",
    "afzender",
    "dit e-mailbericht",
    "dit bericht",
    "niet toegestaan",
    "per vergissing",
    // Polish
    "zastrzezenie",
    "poufn",
    "adresat",
    "zabronion",
    "ujawnian",
    "usun",
    "odpowiedzialnosc",
    "nadawc",
    "ta wiadomosc",
    "niniejsza wiadomosc",
    "przez pomylke",
];

/// [`DISCLAIMER_CUES`] in one automaton: a line is searched once, not once per cue.
static DISCLAIMER_AUTOMATON: LazyLock<aho_corasick::AhoCorasick> =
    LazyLock::new(|| aho_corasick::AhoCorasick::new(DISCLAIMER_CUES).expect("disclaimer cues automaton"));

/// How many distinct disclaimer cues `line` holds.
fn disclaimer_cues(line: &str) -> usize {
    let mut seen = [0u64; DISCLAIMER_CUES.len().div_ceil(64)];
    with_folded(line, |folded| {
        for m in DISCLAIMER_AUTOMATON.find_overlapping_iter(folded) {
            let p = m.pattern().as_usize();
            seen[p / 64] |= 1 << (p % 64);
        }
    });
    seen.iter().map(|w| w.count_ones() as usize).sum()
}

/// The first line of a disclaimer that ends the text, if there is one: working up from the end,
/// paragraph by paragraph, a run of lines to the end of a paragraph that opens with a line of
/// two or more cues, holds three or more in all and at least 100 characters, and asks nothing
/// (a disclaimer never has a question mark). Text before it is left alone, so the request above
/// a disclaimer stays new text.
fn disclaimer_start(lines: &[&str]) -> Option<usize> {
    let mut start = None;
    let mut end = lines.len();
    loop {
        // The paragraph that ends at `end` (exclusive), skipping blank lines.
        while end > 0 && lines[end - 1].trim().is_empty() {
            end -= 1;
        }
        if end == 0 {
            break;
        }
        let mut begin = end;
        while begin > 0 && !lines[begin - 1].trim().is_empty() {
            begin -= 1;
        }
        let opening = disclaimer_opening(&lines[begin..end]).map(|k| begin + k);
        match opening {
            // Never the whole text: something must come before a disclaimer.
            Some(k) if k > 0 => {
                start = Some(k);
                if k > begin {
                    break;
                }
                end = begin;
            }
            _ => break,
        }
    }
    start
}

/// The first line of `paragraph` from which a disclaimer runs to its end: a line of two or
/// more cues, with three or more and at least 100 characters from it on, and no question.
/// One pass down and one up, so a long paragraph costs time linear in its length.
fn disclaimer_opening(paragraph: &[&str]) -> Option<usize> {
    // Too short to hold one (a closing, a name): no line needs folding.
    if paragraph.iter().map(|l| l.trim().len()).sum::<usize>() < 100 {
        return None;
    }
    let (mut tail_cues, mut tail_len, mut asks) = (0usize, 0usize, false);
    let mut opening = None;
    for k in (0..paragraph.len()).rev() {
        let cues = disclaimer_cues(paragraph[k]);
        tail_cues += cues;
        tail_len += paragraph[k].trim().len();
        asks |= paragraph[k].contains('?') || paragraph[k].contains('¿');
        if asks {
            break;
        }
        if cues >= 2 && tail_cues >= 3 && tail_len >= 100 {
            opening = Some(k);
        }
    }
    opening
}

/// [`CLOSINGS`] by their first byte: a line is compared with the few that can start it, not
/// with all of them.
static CLOSINGS_BY_FIRST_BYTE: LazyLock<Vec<Vec<&'static str>>> = LazyLock::new(|| {
    let mut by_byte = vec![Vec::new(); 256];
    for closing in CLOSINGS {
        by_byte[usize::from(closing.as_bytes()[0])].push(*closing);
    }
    by_byte
});

fn is_closing(line: &str) -> bool {
    let line = line.trim();
    // A visible ASCII character folds to itself in lower case: a line that starts with one
    // that starts no closing needs no fold (a name, a company, a phone number).
    if let Some(&first) = line.as_bytes().first()
        && first.is_ascii_graphic()
        && CLOSINGS_BY_FIRST_BYTE[usize::from(first.to_ascii_lowercase())].is_empty()
    {
        return false;
    }
    // Every visible ASCII character folds to one byte: a line with more of them than a
    // closing line may fold to is none either, without a fold (the lines of a paragraph).
    if line.len() > MAX_CLOSING_LINE_BYTES
        && line.bytes().filter(u8::is_ascii_graphic).count() > MAX_CLOSING_LINE_BYTES
    {
        return false;
    }
    is_folded_closing(line)
}

/// The longest a closing line may be, folded, in bytes.
const MAX_CLOSING_LINE_BYTES: usize = 60;

/// [`is_closing`] of a trimmed line, by folding it.
fn is_folded_closing(line: &str) -> bool {
    with_folded(line, |folded| {
        if folded.is_empty() || folded.len() > MAX_CLOSING_LINE_BYTES {
            return false;
        }
        let Some(&first) = folded.as_bytes().first() else {
            return false;
        };
        CLOSINGS_BY_FIRST_BYTE[usize::from(first)].iter().any(|c| {
            folded.strip_prefix(c).is_some_and(|rest| {
                // "thanks for …" asks about something: it is no closing.
                if rest.starts_with("s for") {
                    return false;
                }
                let rest = rest.trim_start_matches([',', '.', '!', ' ', '&', '-']);
                // "Un saludo, Iñaki" or "Danke & VG", not "thanks for checking the invoice".
                rest.split_whitespace().count() <= 3 && !rest.starts_with("for ")
            })
        })
    })
}

thread_local! {
    /// A folded line, one buffer per thread, reused: the signature and disclaimer checks fold
    /// a few lines of every message.
    static FOLDED: std::cell::RefCell<Folded> = std::cell::RefCell::default();
}

/// A buffer grown past this (by a huge line) is given back after use rather than kept for the
/// life of the thread.
const KEEP_FOLDED_BYTES: usize = 64 * 1024;

/// Calls `f` with `line` folded.
fn with_folded<T>(line: &str, f: impl FnOnce(&str) -> T) -> T {
    FOLDED.with_borrow_mut(|folded| {
        fold_into(line, folded);
        let result = f(&folded.text);
        if folded.text.capacity() > KEEP_FOLDED_BYTES {
            *folded = Folded::default();
        }
        result
    })
}

fn tail_is_short(lines: &[&str]) -> bool {
    lines.iter().filter(|l| !l.trim().is_empty()).count() <= 6 && lines.iter().all(|l| l.len() <= 120)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The single regex [`is_attribution_shaped`] replaces: the oracle it must agree with.
    static ATTRIBUTION_REGEX: LazyLock<Regex> = LazyLock::new(|| {
        Regex::new(
            r"(?i)^\s*(on|am|el|le|il|op|w dniu|dnia)\b.{0,240}\b(wrote|schrieb|escribi[óo]|a [ée]crit|ha scritto|schreef|napisa[łl](\(a\)|a)?)(\s*:?|\s.{0,160}:)\s*$",
        )
        .unwrap()
    });

    /// Pieces of attribution-like lines: opening words, verbs (some cut or inflected), colons,
    /// addresses, white space, and runs of text around the 160 and 240 character limits.
    fn attribution_piece() -> impl Strategy<Value = String> {
        prop_oneof![
            prop::sample::select(vec![
                "On",
                "ON",
                "on",
                "Am",
                "El",
                "Le",
                "Il",
                "Op",
                "W dniu",
                "w DNIU",
                "Dnia",
                "Onésimo",
                "wrote",
                "WROTE",
                "wrotes",
                "schrieb",
                "escribió",
                "ESCRIBIÓ",
                "escribio",
                "a écrit",
                "A ÉCRIT",
                "a ecrit",
                "ha scritto",
                "schreef",
                "napisał",
                "napisał(a)",
                "NAPISAŁA",
                "napisal(a)",
                "napisała",
                ":",
                " :",
                ": ",
                "\t",
                " ",
                "  ",
                "<a@b.com>",
                "(a)",
                "a",
                "10:12",
                "\r",
                "\n",
                "\u{a0}",
                "\u{2028}",
                " \n:",
            ])
            .prop_map(str::to_string),
            "[a-zéł ,.:()]{0,12}",
            "[a-zé ]{150,170}",
            "[a-zé ]{230,250}",
            "[éłó]{155,165}",
            "[éłó ]{235,245}",
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2048))]
        #[test]
        fn the_attribution_shape_is_the_attribution_regex(
            pieces in prop::collection::vec(attribution_piece(), 0..9)
        ) {
            let line = pieces.concat();
            prop_assert_eq!(is_attribution_shaped(&line), ATTRIBUTION_REGEX.is_match(&line), "{:?}", line);
        }

        #[test]
        fn the_lines_holding_a_verb_are_those_a_case_insensitive_search_finds(
            pieces in prop::collection::vec(verb_piece(), 0..24)
        ) {
            let text = pieces.concat();
            let lines: Vec<&str> = text.split('\n').collect();
            let oracle: Vec<bool> = lines.iter().map(|l| CASE_INSENSITIVE_VERB.is_match(l)).collect();
            prop_assert_eq!(&attribution_candidates(&text, &lines), &oracle, "{:?}", text);
            for (line, &holds) in lines.iter().zip(&oracle) {
                prop_assert_eq!(may_attribute(line), holds, "{:?}", line);
            }
        }
    }

    /// Closings, their starts, names, digits and punctuation, in any case and with accents.
    fn closing_piece() -> impl Strategy<Value = String> {
        prop_oneof![
            prop::sample::select(CLOSINGS.to_vec()).prop_map(str::to_string),
            prop::sample::select(CLOSINGS.to_vec()).prop_map(|c| c.to_uppercase()),
            prop::sample::select(vec![
                "Iñaki", "Élodie", "Øystein", "Ingrid", "Jan", "Oscar", "ẞ", "İ", "0", "+34 600", "-", ",",
                " ", "\t", "!", "\u{301}", "\u{a0}", "\u{2003}", "\u{200b}", "\u{ad}", "\u{1}", "\r", "*",
                "(",
            ])
            .prop_map(str::to_string),
            "[a-zA-Z]{0,6}",
            // Around the longest closing line, in visible ASCII, spaces and letters that fold.
            "[a-z ]{50,70}",
            "[a-zé\u{301}]{25,35}",
        ]
    }

    proptest! {
        #[test]
        fn a_line_skipped_unfolded_is_no_closing_folded_either(
            pieces in prop::collection::vec(closing_piece(), 1..5)
        ) {
            let line = pieces.concat();
            prop_assert_eq!(is_closing(&line), is_folded_closing(line.trim()), "{:?}", line);
        }
    }

    /// The search [`attribution_candidates`] replaced: ASCII case ignored by the automaton.
    static CASE_INSENSITIVE_VERB: LazyLock<aho_corasick::AhoCorasick> = LazyLock::new(|| {
        aho_corasick::AhoCorasick::builder()
            .ascii_case_insensitive(true)
            .build(ATTRIBUTION_VERBS)
            .unwrap()
    });

    /// Verbs in any case, cut, split by line breaks, next to letters that fold or change length
    /// when lower-cased outside ASCII ("İ", "ẞ", "É").
    fn verb_piece() -> impl Strategy<Value = String> {
        prop_oneof![
            prop::sample::select(ATTRIBUTION_VERBS.to_vec()).prop_map(str::to_string),
            "(?i:wrote|schrieb|escribi|crit|scritto|schreef|napisa)",
            "(?i:wrot|schri|cri|napis)",
            prop::sample::select(vec!["\n", "\r\n", " ", "İ", "ẞ", "É", "é", "ł", "\u{a0}"])
                .prop_map(str::to_string),
            "[a-zA-Z ]{0,8}",
        ]
    }

    #[test]
    fn a_line_break_may_follow_the_verb_but_not_stand_before_the_colon() {
        for (line, shaped) in [
            ("On Monday Support wrote\nx:", true),
            ("On Monday Support wrote x\ny:", false),
            ("On Monday Support wrote\u{a0}Support:", true),
        ] {
            assert_eq!(is_attribution_shaped(line), shaped, "{line:?}");
            assert_eq!(ATTRIBUTION_REGEX.is_match(line), shaped, "{line:?}");
        }
    }

    #[test]
    fn attributions_at_the_length_limits_are_recognised_as_the_regex_did() {
        // " x…x " holds `before + 2` characters between "On" and "wrote"; " y…y:" holds
        // `after` characters after the white space that follows the verb.
        for (before, after, shaped) in [
            (237, 0, true),
            (238, 0, true),
            (239, 0, false),
            (10, 159, true),
            (10, 160, true),
            (10, 161, false),
        ] {
            for (x, y) in [("x", "y"), ("é", "ł")] {
                // Counted in characters, not bytes.
                let line = format!("On {} wrote {}:", x.repeat(before), y.repeat(after));
                assert_eq!(is_attribution_shaped(&line), shaped, "{before} {after} {x}");
                assert_eq!(ATTRIBUTION_REGEX.is_match(&line), shaped, "{before} {after} {x}");
            }
        }
    }

    #[test]
    fn gt_quoted_lines_go_to_the_quoted_zone() {
        let z = split("Please fix the plugin.\n> Your invoice is attached.\n> Regards");
        assert_eq!(z.new_text, "Please fix the plugin.");
        assert!(z.quoted.contains("Your invoice is attached."));
    }

    #[test]
    fn reply_attributions_in_every_language_start_the_history() {
        let attributions = [
            "On Mon, 3 Jun 2024 at 10:12, Support <a@b.com> wrote:",
            "El lun, 3 jun 2024 a las 10:12, Soporte <a@b.com> escribió:",
            "Am 03.06.2024 um 10:12 schrieb Support <a@b.com>:",
            "Le lun. 3 juin 2024 à 10:12, Support <a@b.com> a écrit :",
            "Il giorno lun 3 giu 2024 alle 10:12 Support <a@b.com> ha scritto:",
            "Op ma 3 jun. 2024 om 10:12 schreef Support <a@b.com>:",
            "W dniu 3.06.2024 o 10:12, Support <a@b.com> napisał(a):",
        ];
        for a in attributions {
            let z = split(&format!("New text.\n\n{a}\nold thread about invoices"));
            assert_eq!(z.new_text, "New text.", "{a}");
            assert!(z.quoted.contains("old thread"), "{a}");
        }
    }

    #[test]
    fn own_text_ending_in_wrote_is_new_text_in_every_language() {
        let lines = [
            "On your invoice for March our VAT ID is missing, which is why our accountant wrote:",
            "Am Montag hat uns Ihre Buchhaltung angerufen, und unser Steuerberater schrieb:",
            "El mes pasado, cuando cambiamos de banco, nuestro gestor escribió:",
            "Le comptable, qui a vu la facture de mars, a écrit :",
            "Il nostro commercialista, dopo aver visto la fattura di marzo, ha scritto:",
            "Op de factuur van maart ontbreekt ons btw-nummer, waarover onze boekhouder schreef:",
            "W dniu wczorajszym nasz księgowy napisał:",
        ];
        for line in lines {
            let z = split(&format!(
                "Hello,\n\n{line}\n\n\"We cannot book this.\"\n\nPlease send a corrected invoice."
            ));
            assert!(
                z.new_text.contains("Please send a corrected invoice"),
                "{line}: {z:?}"
            );
            assert!(z.quoted.is_empty(), "{line}: {z:?}");
        }
    }

    #[test]
    fn an_attribution_without_client_marks_still_starts_history_when_quoted_text_follows() {
        let z = split("New question.\n\nOn Monday, June 3, Support wrote:\n> old invoice\n> thread");
        assert_eq!(z.new_text, "New question.");
        assert!(z.quoted.contains("old invoice"));
    }

    #[test]
    fn an_attribution_with_a_time_of_day_starts_history_though_nothing_below_is_marked() {
        // Clients that quote without `>` (Outlook's plain text, GroupWise, many webmails):
        // the time of day is what only a client writes in the attribution.
        let attributions = [
            "On Wed, 10 Apr 2024 at 11:02, Kevin Bauer wrote:",
            "Am 10.04.2024 um 11:02 schrieb Kevin Bauer:",
            "El mié, 10 abr 2024 a las 11:02, Kevin Bauer escribió:",
            "Le mer. 10 avr. 2024 à 11:02, Kevin Bauer a écrit :",
            "Il giorno mer 10 apr 2024 alle 11:02 Kevin Bauer ha scritto:",
            "Op wo 10 apr 2024 om 11:02 schreef Kevin Bauer:",
            "W dniu 10.04.2024 o 11:02 Kevin Bauer napisał:",
        ];
        for attribution in attributions {
            let body =
                format!("Please change our billing address.\n\n{attribution}\nThe plugin update is ready.");
            let z = split(&body);
            assert_eq!(z.new_text, "Please change our billing address.", "{body}");
            assert!(z.quoted.contains("plugin update"), "{body}");
        }
    }

    #[test]
    fn a_time_of_day_is_a_client_mark_beside_letters_but_not_beside_digits() {
        for marked in [
            "am 10.04. um 11:02 schrieb",
            "a las 11:02h",
            "um 11:02Uhr",
            "at 11:02AM",
        ] {
            assert!(CLIENT_MARKS.is_match(marked), "{marked}");
        }
        for unmarked in ["version 2024:10", "port 123:4567", "ratio 3:2"] {
            assert!(!CLIENT_MARKS.is_match(unmarked), "{unmarked}");
        }
    }

    #[test]
    fn a_groupwise_attribution_starts_the_history_in_every_language() {
        let replies = [
            (
                "Could you send the invoices to accounting from now on?",
                "Kind regards",
            ),
            (
                "Könnten Sie die Rechnungen künftig an die Buchhaltung schicken?",
                "Viele Grüße",
            ),
            (
                "¿Podéis enviar las facturas a contabilidad a partir de ahora?",
                "Un saludo",
            ),
            (
                "Pourriez-vous envoyer les factures à la comptabilité désormais ?",
                "Cordialement",
            ),
            (
                "Potete inviare le fatture all'amministrazione d'ora in poi?",
                "Saluti",
            ),
            (
                "Kunnen jullie de facturen voortaan naar de boekhouding sturen?",
                "Groet",
            ),
            ("Czy mogą Państwo wysyłać faktury do księgowości?", "Pozdrawiam"),
        ];
        for (new_text, closing) in replies {
            for attribution in [
                ">>> Kevin Bauer <productintegration@example.com> 10-4-2024 11:02 >>>",
                ">>> \"Bauer, Kevin\" 04/10/24 11:02 AM >>>",
            ] {
                let body = format!(
                    "{new_text}\n\n{closing}\nAnna\n\n{attribution}\nThe import of existing reviews works by CSV upload.\nKevin"
                );
                let z = split(&body);
                assert_eq!(z.new_text, new_text, "{body}");
                assert!(z.quoted.contains("import of existing reviews"), "{body}");
                assert!(!z.signature.contains("import"), "{body}");
            }
        }
        // The writer's own arrows carry no date: new text.
        for own in [">>> Important >>>", ">>> Meeting 10:30 >>>"] {
            let z = split(&format!("{own}\nPlease update our address."));
            assert!(z.new_text.contains("update our address"), "{z:?}");
            assert!(!has_history_marks(&format!("{own}\nPlease update our address.")));
        }
        assert!(has_history_marks(
            "Thanks.\n>>> Kevin Bauer <kb@example.com> 10-4-2024 11:02 >>>\nThe import works."
        ));
    }

    #[test]
    fn an_attribution_wrapped_over_two_lines_is_recognised() {
        let z = split("New.\nOn Mon, 3 Jun 2024 at 10:12, Support Team <a@b.com>\nwrote:\nold");
        assert_eq!(z.new_text, "New.");
    }

    #[test]
    fn outlook_header_blocks_start_the_history() {
        for block in [
            "-----Original Message-----\nFrom: x",
            "Von: Support <a@b.de>\nGesendet: Montag, 3. Juni 2024 10:12\nBetreff: Rechnung",
            "De: Soporte <a@b.es>\nEnviado el: lunes\nAsunto: factura",
            "________________________________\nFrom: a",
        ] {
            let z = split(&format!("New text.\n\n{block}\nold"));
            assert_eq!(z.new_text, "New text.", "{block}");
        }
    }

    #[test]
    fn a_closing_and_company_block_become_the_signature() {
        let z = split(
            "Hallo,\n\nbitte Rechnung korrigieren.\n\nMit freundlichen Grüßen\nAnna Berg\nBerg Möbel GmbH",
        );
        assert_eq!(z.new_text, "Hallo,\n\nbitte Rechnung korrigieren.");
        assert!(z.signature.starts_with("Mit freundlichen Grüßen"));
    }

    #[test]
    fn a_sentence_that_starts_like_a_closing_is_not_a_signature() {
        let z = split("Hello,\nThanks for the quick reply, but the widget is still missing.\nAnna");
        assert!(z.new_text.contains("widget is still missing"));
    }

    #[test]
    fn a_disclaimer_after_the_closing_without_a_separator_is_signature_in_every_language() {
        let disclaimers = [
            "This e-mail and any attachments are confidential and intended solely for the addressee. If you received it in error, please notify the sender and delete it.",
            "Diese E-Mail enthält vertrauliche Informationen. Wenn Sie nicht der richtige Adressat sind oder diese E-Mail irrtümlich erhalten haben, informieren Sie bitte sofort den Absender und löschen Sie diese Mail. Die unbefugte Weitergabe ist nicht gestattet.",
            "AVISO LEGAL: Este mensaje y sus anexos son confidenciales y están dirigidos exclusivamente a su destinatario. Si lo ha recibido por error, notifíquelo al remitente y elimínelo.",
            "Ce message et ses pièces jointes sont confidentiels et destinés exclusivement à leur destinataire. Si vous l'avez reçu par erreur, merci d'en avertir l'expéditeur et de le supprimer.",
            "Questo messaggio è riservato e destinato esclusivamente al destinatario indicato. Se lo avete ricevuto per errore, vi preghiamo di avvisare il mittente e di cancellarlo.",
            "Dit e-mailbericht is uitsluitend bestemd voor de geadresseerde en kan vertrouwelijke informatie bevatten. Indien u niet de geadresseerde bent, verzoeken wij u de afzender te informeren en het bericht te verwijderen.",
            "Ta wiadomość jest poufna i przeznaczona wyłącznie dla adresata. Jeśli otrzymali Państwo ją przez pomyłkę, prosimy o powiadomienie nadawcy i usunięcie wiadomości.",
        ];
        for d in disclaimers {
            for text in [
                format!(
                    "Hello,\n\nthe widget does not load in the checkout.\n\nKind regards\nAnna\nShop Ltd\n{d}"
                ),
                format!("Hello,\n\nthe widget does not load in the checkout.\n\n{d}"),
            ] {
                let z = split(&text);
                assert_eq!(
                    z.new_text, "Hello,\n\nthe widget does not load in the checkout.",
                    "{d}"
                );
                assert!(z.signature.ends_with(d), "{d}");
            }
        }
    }

    #[test]
    fn a_request_that_talks_about_confidential_data_is_not_a_disclaimer() {
        let text = "Hello,\n\nwe received a message in error from your system. Is this confidential data of another shop, and who bears liability if we delete it?";
        assert!(split(text).new_text.contains("who bears liability"));
    }

    #[test]
    fn a_long_paragraph_of_disclaimer_lines_is_judged_in_one_pass() {
        let mut body = String::from("Please cancel our contract.\n\n");
        body.push_str(&"This message is confidential and privileged.\n".repeat(20_000));
        let z = split(&body);
        assert_eq!(z.new_text, "Please cancel our contract.");
        assert!(z.signature.starts_with("This message is confidential"));
        body.push_str("Is this a question?\n");
        let z = split(&body);
        assert!(z.signature.is_empty());
    }

    #[test]
    fn dash_dash_separates_the_signature() {
        let z = split("Question about the seal.\n-- \nShop GmbH\nAGB | Impressum");
        assert_eq!(z.new_text, "Question about the seal.");
        assert!(z.signature.contains("AGB"));
    }

    #[test]
    fn a_body_without_history_is_all_new_text() {
        let z = split("Just one line");
        assert_eq!(
            z,
            Zones {
                new_text: "Just one line".into(),
                ..Zones::default()
            }
        );
    }
}
