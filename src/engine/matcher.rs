//! Compiled matchers, one per distinct set of terms a field is read for: each field of a
//! message (each header line) is scanned once, for the terms of the rules, signals and cues that
//! read it and no others, whatever the number of rules.
//!
//! Words, phrases and prefixes are found by one keyword trie per set ([`super::trie`]), walked
//! from each word start; each regex term is its own regex, run only in the fields that read
//! it, from the places where one of the literals that start all its matches occurs (found by
//! the same walk when the regex starts at a word or at the text's start, by a small
//! Aho-Corasick automaton otherwise, see `Gate`), and only in a text that holds one of the
//! literals every match of it must contain (see `Required`). (One multi-pattern regex
//! reporting every match kind spent most of a classification building lazy-DFA states: a
//! 64-pattern overlapping automaton never stays warm, while each single regex's does, and most
//! get a literal prefilter.)

use std::collections::{BTreeSet, HashMap};
use std::ops::Range;
use std::sync::{Arc, OnceLock};

use aho_corasick::{AhoCorasick, AhoCorasickKind, MatchKind};
use regex_automata::meta;
use regex_syntax::hir::Hir;

use super::trie::Trie;
use crate::rules::{Field, FieldSet, RegexTerm, Term, limits};
use crate::text::{Folded, boundary_after, fold_into};

/// Most hits kept per field: a hostile message repeating a keyword a million times must not
/// cost a million entries (one per term is all the scoring uses).
const MAX_HITS_PER_FIELD: usize = 20_000;

/// Why the matchers could not be built (a keyword automaton over the size limits). Regex terms
/// are compiled on first use, after the loader has checked each one.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CompileError {
    /// The keyword automaton could not be built.
    #[error("keyword automaton: {0}")]
    Keywords(#[from] aho_corasick::BuildError),
    /// The keyword automata came out larger than [`limits::MAX_AUTOMATON_BYTES`].
    #[error("the keyword automaton takes {0} bytes, more than the limit of {max}", max = limits::MAX_AUTOMATON_BYTES)]
    TooLarge(usize),
}

/// A term found in a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct TermHit {
    /// Index into [`Scanner::terms`].
    pub term: u32,
    /// The field it was found in.
    pub field: Field,
    /// How many times the term occurs in this field (and header line): 1 as scanned; the
    /// engine sets the count when it keeps one hit per term, field and header.
    pub occurrences: u16,
    /// For [`Field::Headers`], the index of the header line; otherwise 0.
    pub header: u32,
    /// Original byte range in the field's text.
    pub start: u32,
    /// End of the original byte range.
    pub end: u32,
}

/// Who reads which terms where: a rule or signal's fields and the ids of all its terms.
#[derive(Debug)]
pub struct Reader<'a> {
    /// The fields it reads.
    pub fields: &'a FieldSet,
    /// Every term id of its conditions.
    pub terms: Vec<u32>,
}

/// Every distinct term of a ruleset, compiled per field.
#[derive(Debug)]
pub struct Scanner {
    /// Distinct terms; a term's index is its id.
    pub terms: Vec<Term>,
    matchers: Vec<Matcher>,
    /// The regex of each regex term, by term id (shared by the matchers), compiled on first use.
    regexes: Vec<Option<LazyRegex>>,
    /// For each term id, the group of literals one of which every match of the regex term
    /// holds ([`required_literals`]), or [`NO_GROUP`]: a regex is tried at its starts only in
    /// a text where its group's literals occur.
    required: Vec<u16>,
    /// The matcher of each field (by `Field as usize`); for [`Field::Headers`], of the header
    /// lines not named in `by_header`. `None`: nothing reads the field.
    by_field: [Option<usize>; 9],
    /// Header names (lower case) that some rule reads by name, with their matcher.
    by_header: HashMap<String, usize>,
    /// For each term id, the text zones (subject, new text, quoted text, signature) whose
    /// readers read it, as [`Field::bit`]s. The zones share one matcher, so a term read in the
    /// subject only is found in the body too; a regex term is not run where nobody reads it
    /// (a subject pattern anchored at `^` would otherwise run over every zone).
    zone_readers: Vec<u16>,
}

/// Most literals a [`Gate`] is a DFA for (see [`Matcher::new`]).
const MAX_DFA_LITERALS: usize = 4_000;

/// A regex term without a group of required literals.
const NO_GROUP: u16 = u16::MAX;

/// Most groups of required literals: the presence of each in a text is one bit of a
/// fixed-size set; regex terms past it are tried without the check.
const MAX_GROUPS: usize = 1024;

/// The text zones, which share one matcher.
const ZONES: [Field; 4] = [Field::Subject, Field::Body, Field::Quoted, Field::Signature];

thread_local! {
    /// The folded text of the field being scanned: one buffer per thread, reused, so a scan
    /// allocates nothing once the buffer has grown to the fields it sees.
    static FOLDED: std::cell::RefCell<Folded> = std::cell::RefCell::default();
    /// The words of the [`Windows`] set of the text being scanned, reused the same way.
    static WINDOWS: std::cell::Cell<Vec<u64>> = const { std::cell::Cell::new(Vec::new()) };
}

/// A buffer grown past this (by a huge field) is given back after its scan rather than kept
/// for the life of the thread.
const KEEP_BUFFER_BYTES: usize = 1 << 20;

/// One set of terms, compiled.
#[derive(Debug)]
struct Matcher {
    literals: Option<Trie>,
    /// For each literal pattern: the word term using it, and the prefix term using it.
    literal_terms: Vec<(Option<u32>, Option<u32>)>,
    /// For each literal pattern: the regex terms that start at a word with it (see
    /// [`RegexPlan::word_start`]), tried where the trie walk finds it.
    literal_regexes: Vec<Vec<u32>>,
    /// Regex terms with no literal start but a `\b` and a few byte classes (an IBAN's
    /// `\b[a-z]{2}\d{2}`): each with the byte set of its first positions (see
    /// [`word_start_classes`]), tried at the word starts of the walk whose bytes fit.
    class_regexes: Vec<(u32, Vec<ByteSet>)>,
    /// Whether any pattern has regexes in `literal_regexes`, or there are `class_regexes`.
    word_regexes: bool,
    /// The regex terms of the set that run on every text: no literal starts all their matches.
    ungated: Vec<u32>,
    /// The literals that start the gated regex terms, searched for in one pass (see [`Gate`]).
    gate: Option<Gate>,
    /// The required literals of the regex terms tried at starts (see [`Required`]).
    required: Option<Required>,
}

impl Scanner {
    /// Compiles the distinct `terms` (their order gives the term ids) for the fields their
    /// `readers` read; `cues` (term ids) are read in the subject and the new text.
    pub fn new(terms: Vec<Term>, readers: &[Reader<'_>], cues: &[u32]) -> Result<Scanner, CompileError> {
        // The term set of each field and of each header read by name: ids gathered, then
        // sorted and deduplicated once (a B-tree insert per id cost 17 M of 475 M instructions
        // of a start-up, callgrind).
        let mut fields: [Vec<u32>; 9] = Default::default();
        let mut named: HashMap<String, Vec<u32>> = HashMap::new();
        for reader in readers {
            for field in Field::ALL {
                if reader.fields.reads(field, None) {
                    fields[field as usize].extend(&reader.terms);
                }
            }
            for name in reader.fields.header_names() {
                named.entry(name.clone()).or_default().extend(&reader.terms);
            }
        }
        for field in [Field::Subject, Field::Body] {
            fields[field as usize].extend(cues);
        }
        for set in fields.iter_mut().chain(named.values_mut()) {
            sorted_set(set);
        }
        // The four text zones share one automaton, of every term read in any of them: a big
        // trie is built (and held) once, not once per zone. A term found in a zone that none
        // of its rules reads is never consulted (evidence is looked up per field read).
        let mut zone_readers = vec![0u16; terms.len()];
        for field in ZONES {
            for &t in &fields[field as usize] {
                zone_readers[t as usize] |= field.bit();
            }
        }
        let mut text: Vec<u32> = ZONES
            .iter()
            .flat_map(|&f| fields[f as usize].iter().copied())
            .collect();
        sorted_set(&mut text);
        for field in ZONES {
            if !fields[field as usize].is_empty() {
                fields[field as usize] = text.clone();
            }
        }
        // A header read by name is also read by the rules that read every header.
        for set in named.values_mut() {
            set.extend(&fields[Field::Headers as usize]);
            sorted_set(set);
        }

        let regexes: Vec<Option<LazyRegex>> = terms
            .iter()
            .map(|term| match term {
                Term::Regex(regex) => Some(LazyRegex::new(regex)),
                _ => None,
            })
            .collect();
        // Each regex term read once, for every matcher it is in.
        let plans: Vec<Option<RegexPlan>> = regexes
            .iter()
            .map(|r| r.as_ref().map(|r| RegexPlan::new(&r.pattern, &r.hir)))
            .collect();
        let mut required = vec![NO_GROUP; terms.len()];
        let with_required = plans
            .iter()
            .enumerate()
            .filter(|(_, p)| p.as_ref().is_some_and(|p| p.required.is_some()));
        for (group, (id, _)) in with_required.take(MAX_GROUPS).enumerate() {
            required[id] = group as u16;
        }
        let mut matchers = Vec::new();
        let mut index: HashMap<Vec<u32>, usize> = HashMap::new();
        let mut memory = 0;
        let mut matcher_of = |set: &[u32]| -> Result<Option<usize>, CompileError> {
            if set.is_empty() {
                return Ok(None);
            }
            if let Some(&i) = index.get(set) {
                return Ok(Some(i));
            }
            let matcher = Matcher::new(&terms, set, &plans, &required)?;
            memory += matcher.literals.as_ref().map_or(0, |t| t.memory_usage());
            memory += matcher.gate.as_ref().map_or(0, |g| g.automaton.memory_usage());
            memory += matcher.required.as_ref().map_or(0, Required::memory_usage);
            if memory > limits::MAX_AUTOMATON_BYTES {
                return Err(CompileError::TooLarge(memory));
            }
            matchers.push(matcher);
            index.insert(set.to_vec(), matchers.len() - 1);
            Ok(Some(matchers.len() - 1))
        };
        let mut by_field = [None; 9];
        for field in Field::ALL {
            by_field[field as usize] = matcher_of(&fields[field as usize])?;
        }
        let mut by_header = HashMap::new();
        for (name, set) in &named {
            if let Some(m) = matcher_of(set)? {
                by_header.insert(name.clone(), m);
            }
        }
        Ok(Scanner {
            terms,
            matchers,
            regexes,
            required,
            by_field,
            by_header,
            zone_readers,
        })
    }

    /// Whether regex term `term` is run in `field`: in a text zone only if someone reads it
    /// there (every other field has a matcher of its readers' terms alone).
    fn runs_in(&self, term: u32, field: Field) -> bool {
        !ZONES.contains(&field) || self.is_read_in(term, field)
    }

    /// Whether some rule, signal or cue reads term `term` in text zone `field` (a term found in
    /// a zone is reported whoever reads it, since the zones share one matcher).
    pub fn is_read_in(&self, term: u32, field: Field) -> bool {
        self.zone_readers[term as usize] & field.bit() != 0
    }

    /// The compiled regex of regex term `term`; `None` for other terms.
    fn regex(&self, term: u32) -> Option<&meta::Regex> {
        self.regexes[term as usize].as_ref().and_then(LazyRegex::get)
    }

    /// Whether any term is read in `field` (for [`Field::Headers`]: in some header line).
    pub fn reads(&self, field: Field) -> bool {
        self.by_field[field as usize].is_some() || (field == Field::Headers && !self.by_header.is_empty())
    }

    /// Appends the terms found in `text`, one field of a message other than the headers, to
    /// `hits`.
    pub fn scan(&self, field: Field, text: &str, hits: &mut Vec<TermHit>) {
        if let Some(m) = self.by_field[field as usize] {
            self.scan_with(m, field, text, 0, 0, hits);
        }
    }

    /// [`Scanner::scan`] of a field the caller has folded already (`folded` is
    /// [`fold_into`] of `text`), so that the fold can serve more than the scan.
    pub fn scan_folded_field(&self, field: Field, text: &str, folded: &Folded, hits: &mut Vec<TermHit>) {
        if let Some(m) = self.by_field[field as usize]
            && !text.is_empty()
        {
            self.scan_folded(&self.matchers[m], folded, field, 0, 0, hits);
        }
    }

    /// Appends the terms found in one header line (`name` in lower case) to `hits`: `header`
    /// is the line's index and `base` its offset in the header block, so that hits point into
    /// the whole block.
    pub fn scan_header(&self, name: &str, line: &str, header: u32, base: usize, hits: &mut Vec<TermHit>) {
        let matcher = match self.by_header.get(name) {
            Some(&m) => Some(m),
            None => self.by_field[Field::Headers as usize],
        };
        if let Some(m) = matcher {
            self.scan_with(m, Field::Headers, line, header, base, hits);
        }
    }

    fn scan_with(
        &self,
        m: usize,
        field: Field,
        text: &str,
        header: u32,
        base: usize,
        hits: &mut Vec<TermHit>,
    ) {
        if text.is_empty() {
            return;
        }
        FOLDED.with_borrow_mut(|folded| {
            fold_into(text, folded);
            self.scan_folded(&self.matchers[m], folded, field, header, base, hits);
            if folded.text.capacity() > KEEP_BUFFER_BYTES {
                *folded = Folded::default();
            }
        });
    }

    fn scan_folded(
        &self,
        matcher: &Matcher,
        folded: &Folded,
        field: Field,
        header: u32,
        base: usize,
        hits: &mut Vec<TermHit>,
    ) {
        let limit = hits.len() + MAX_HITS_PER_FIELD;
        // Where each gated regex may start: (regex term, byte offset in the folded text), for
        // the regexes whose required literals the text holds.
        let mut starts: Vec<(u32, usize)> = Vec::new();
        // (Dropped at the end of the scan, it gives the windows' buffer back to the thread.)
        let mut admission = Admission::new(folded.text.as_bytes(), matcher.required.as_ref());
        if let Some(trie) = &matcher.literals {
            let text = folded.text.as_str();
            let bytes = text.as_bytes();
            // Every literal term starts at a word boundary: the trie is walked from each word
            // start only (anchored), so a letter inside a word costs one check, not a walk.
            // The regexes behind word-start literals start at an ASCII word boundary (their
            // `\b`), which a letter after a non-Latin one also is: the walk starts there too.
            let mut after_word_char = false;
            let mut after_ascii_word = false;
            let mut full = false;
            let mut next = 0;
            while next < bytes.len() {
                // Inside an ASCII word nothing starts: no term (no word start) and no regex
                // (no ASCII word boundary). Most bytes are there; they are stepped over at
                // once, and the state they would leave is the one already held.
                if after_word_char && after_ascii_word {
                    next += bytes[next..]
                        .iter()
                        .take_while(|&&b| crate::text::ASCII_ALPHANUMERIC[usize::from(b)])
                        .count();
                    if next == bytes.len() {
                        break;
                    }
                }
                let start = next;
                // ASCII (most of any folded text) without decoding a char.
                let (word_char, ascii_word) = match bytes[start] {
                    b if b.is_ascii() => {
                        next += 1;
                        (b.is_ascii_alphanumeric(), b.is_ascii_alphanumeric() || b == b'_')
                    }
                    _ => {
                        let c = text[start..].chars().next().expect("a char starts here");
                        next += c.len_utf8();
                        (c.is_alphanumeric(), false)
                    }
                };
                let boundary = !after_word_char && !full;
                let regex_start = matcher.word_regexes && ascii_word && !after_ascii_word;
                after_word_char = word_char;
                after_ascii_word = ascii_word;
                if regex_start {
                    for (term, classes) in &matcher.class_regexes {
                        let fits = classes
                            .iter()
                            .enumerate()
                            .all(|(i, set)| bytes.get(start + i).is_some_and(|&b| set.contains(b)));
                        if fits
                            && self.runs_in(*term, field)
                            && admission.admits(self.required[*term as usize])
                        {
                            starts.push((*term, start));
                        }
                    }
                }
                if !boundary && !regex_start {
                    continue;
                }
                trie.walk(&bytes[start..], |pattern, len| {
                    let pattern = pattern as usize;
                    let end = start + len;
                    if regex_start {
                        starts.extend(
                            matcher.literal_regexes[pattern]
                                .iter()
                                .filter(|&&r| {
                                    self.runs_in(r, field) && admission.admits(self.required[r as usize])
                                })
                                .map(|&r| (r, start)),
                        );
                    }
                    if !boundary {
                        return;
                    }
                    if hits.len() >= limit {
                        // Enough term hits; the walk goes on for the regexes' starts.
                        full = true;
                        return;
                    }
                    let (word, prefix) = matcher.literal_terms[pattern];
                    if let Some(w) = word
                        && boundary_after(text, end)
                    {
                        hits.push(hit(folded, w, field, header, base, start, end));
                    }
                    if let Some(p) = prefix {
                        hits.push(hit(folded, p, field, header, base, start, end));
                    }
                });
            }
        }
        let text = folded.text.as_str();
        for &term in &matcher.ungated {
            if self.runs_in(term, field)
                && let Some(regex) = self.regex(term)
                && let Some(m) = regex.find(text)
            {
                hits.push(hit(folded, term, field, header, base, m.start(), m.end()));
            }
        }
        if let Some(gate) = &matcher.gate
            && gate.starts.iter().any(|&t| self.runs_in(t, field))
        {
            for m in gate.automaton.find_overlapping_iter(text) {
                let t = gate.starts[m.pattern().as_usize()];
                if self.runs_in(t, field) && admission.admits(self.required[t as usize]) {
                    starts.push((t, m.start()));
                }
            }
        }
        if !starts.is_empty() {
            // Every match of a gated regex starts where one of its literals does: the regex is
            // tried anchored at those places only, first to last, and the first that matches is
            // its leftmost match. (A search from the first literal to the end of the text would
            // find the same match, scanning all the text after it.)
            starts.sort_unstable();
            starts.dedup();
            let mut done = None;
            for (term, at) in starts {
                if done == Some(term) {
                    continue;
                }
                let Some(regex) = self.regex(term) else {
                    continue;
                };
                // (The span keeps the text before `at` as context for look-behind like `\b`.)
                let input = regex_automata::Input::new(text)
                    .range(at..)
                    .anchored(regex_automata::Anchored::Yes);
                if let Some(m) = regex.search(&input) {
                    hits.push(hit(folded, term, field, header, base, m.start(), m.end()));
                    done = Some(term);
                }
            }
        }
    }
}

impl Matcher {
    /// Compiles the terms `ids` of `terms`; `plans` and `required` give each regex term's
    /// [`RegexPlan`] and the group of its required literals (by term id).
    fn new(
        terms: &[Term],
        ids: &[u32],
        plans: &[Option<RegexPlan>],
        required: &[u16],
    ) -> Result<Matcher, CompileError> {
        let mut table = LiteralTable::default();
        let mut regexes = Vec::new();
        for &id in ids {
            match &terms[id as usize] {
                Term::Word(text) => table.add(text.as_bytes(), LiteralUse::Word(id)),
                Term::Prefix(text) => table.add(text.as_bytes(), LiteralUse::Prefix(id)),
                Term::Regex(_) => regexes.push(id),
            }
        }
        let mut ungated = Vec::new();
        let mut class_regexes = Vec::new();
        let mut gate_literals: Vec<Vec<u8>> = Vec::new();
        let mut gated = Vec::new();
        for id in regexes {
            let Some(plan) = &plans[id as usize] else {
                continue;
            };
            match (&plan.prefixes, &plan.classes) {
                (Some(literals), _) if plan.word_start => {
                    for literal in literals {
                        table.add(literal, LiteralUse::Regex(id));
                    }
                }
                (Some(literals), _) => {
                    gated.extend(std::iter::repeat_n(id, literals.len()));
                    gate_literals.extend(literals.iter().cloned());
                }
                (None, Some(classes)) => class_regexes.push((id, classes.clone())),
                (None, None) => ungated.push(id),
            }
        }
        let (patterns, slots) = table.finish();
        let literals = if patterns.is_empty() {
            None
        } else {
            // Walked anchored from each word start: every term starting there is found, so
            // "comprador" still counts inside "protección al comprador" for the rules that want
            // it. A radix trie in pre-order rather than an Aho-Corasick NFA (whose failure
            // links an anchored walk never follows): a phrase's unshared tail is one label in
            // one cache line instead of a state per byte, and the scanner of the default
            // ruleset builds in 51 M instructions instead of 135 M (callgrind).
            let trie = Trie::new(&patterns);
            if trie.memory_usage() > limits::MAX_AUTOMATON_BYTES {
                return Err(CompileError::TooLarge(trie.memory_usage()));
            }
            Some(trie)
        };
        if literals.is_none() {
            // No trie, no walk: they search the text like any other.
            ungated.extend(class_regexes.drain(..).map(|(id, _)| id));
        }
        let word_regexes = slots.iter().any(|(_, _, r)| !r.is_empty()) || !class_regexes.is_empty();
        // The required literals of the regexes tried at starts, each literal once.
        let started = slots
            .iter()
            .flat_map(|(_, _, r)| r.iter())
            .chain(class_regexes.iter().map(|(id, _)| id))
            .chain(gated.iter());
        let mut by_group: Vec<(u16, Vec<u8>)> = Vec::new();
        let mut seen = BTreeSet::new();
        for &id in started {
            let group = required[id as usize];
            let Some(literals) = plans[id as usize].as_ref().and_then(|p| p.required.as_ref()) else {
                continue;
            };
            if group == NO_GROUP {
                continue;
            }
            if !seen.insert(id) {
                continue;
            }
            for literal in literals {
                by_group.push((group, literal.clone()));
            }
        }
        let required = (!by_group.is_empty()).then(|| Required::new(by_group));
        let gate = if gate_literals.is_empty() {
            None
        } else {
            // A DFA while the literals are few enough for its table to stay small; past that,
            // aho-corasick's own choice, a contiguous NFA, so that a ruleset of many regexes
            // cannot make a table of hundreds of MB.
            let kind = (gate_literals.len() <= MAX_DFA_LITERALS).then_some(AhoCorasickKind::DFA);
            Some(Gate {
                automaton: AhoCorasick::builder()
                    .match_kind(MatchKind::Standard)
                    .kind(kind)
                    .build(&gate_literals)?,
                starts: gated,
            })
        };
        let (literal_terms, literal_regexes) = slots.into_iter().map(|(w, p, r)| ((w, p), r)).unzip();
        Ok(Matcher {
            literals,
            literal_terms,
            literal_regexes,
            class_regexes,
            word_regexes,
            ungated,
            gate,
            required,
        })
    }
}

/// The literals that start every match of the gated regex terms (the regex terms of a
/// matcher that no literal start at a word puts in the trie), found in one overlapping pass
/// over a text: a text is scanned once for all of them instead of once per regex, and a
/// regex runs only from its literals on.
#[derive(Debug)]
struct Gate {
    /// A DFA (up to [`MAX_DFA_LITERALS`] literals).
    automaton: AhoCorasick,
    /// For each pattern, the gated regex term it starts.
    starts: Vec<u32>,
}

/// The required literals ([`required_literals`]) of every regex term tried at starts
/// (word-start, class-start and gated ones), by group. Most starts are common words ("la",
/// "nous", a digit) where a regex fails a few bytes on: a text without "pacchetto", "piano" or
/// "abbonamento" needs no attempt of
/// `\b(il|la|l\W?)(\S+ )?(pacchetto|piano|abbonamento)…` at each of them.
///
/// Only the groups of the regexes a text has starts for are looked up, each literal first in
/// the text's [`Windows`] and then, if it may be there, by a search. (One overlapping
/// Aho-Corasick pass over every text for all the literals, 1,008 of them in 620 groups for the
/// default ruleset's text zones, made a 0.9 MB DFA whose cache misses put that pass at 9 to
/// 13% of a ticket's time under perf; this way costs more instructions and 5% less time on
/// 50,000 tickets, and 2.4 MiB less memory.)
#[derive(Debug)]
struct Required {
    /// For each group with literals, ascending: the group and the range of its literals in
    /// `literals`.
    groups: Vec<(u16, Range<u32>)>,
    /// The literals, group after group.
    literals: Vec<Box<[u8]>>,
}

impl Required {
    /// From (group, literal) pairs in any order.
    fn new(mut by_group: Vec<(u16, Vec<u8>)>) -> Required {
        by_group.sort_unstable();
        by_group.dedup();
        let mut groups: Vec<(u16, Range<u32>)> = Vec::new();
        for (i, (group, _)) in by_group.iter().enumerate() {
            let i = i as u32;
            match groups.last_mut() {
                Some((g, range)) if g == group => range.end = i + 1,
                _ => groups.push((*group, i..i + 1)),
            }
        }
        Required {
            groups,
            literals: by_group.into_iter().map(|(_, l)| l.into_boxed_slice()).collect(),
        }
    }

    /// Whether one of the literals of `group` occurs in `text`, whose [`Windows`] are
    /// `windows`; `false` for a group without literals here.
    fn present(&self, group: u16, text: &[u8], windows: &Windows) -> bool {
        let Ok(i) = self.groups.binary_search_by_key(&group, |(g, _)| *g) else {
            return false;
        };
        let range = self.groups[i].1.clone();
        self.literals[range.start as usize..range.end as usize]
            .iter()
            .any(|literal| windows.may_hold(literal) && memchr::memmem::find(text, literal).is_some())
    }

    /// Heap bytes held.
    fn memory_usage(&self) -> usize {
        self.groups.capacity() * std::mem::size_of::<(u16, Range<u32>)>()
            + self
                .literals
                .iter()
                .map(|l| l.len() + std::mem::size_of::<Box<[u8]>>())
                .sum::<usize>()
    }
}

/// Which regex starts a text admits: a regex whose required literals ([`Required`]) are not in
/// the text cannot match in it, so it is not tried there. Each group is looked up once per
/// text, when a start first asks for it, and the text's [`Windows`] are built on the first
/// lookup. A start is admitted as it is found rather than collected and filtered: a ticket
/// has about 50 starts and 3 are admitted (the default ruleset, 2,000 blind tickets).
struct Admission<'t> {
    text: &'t [u8],
    required: Option<&'t Required>,
    /// Built on the first lookup: the windows, and the groups looked up and found, a bit each.
    lookups: Option<(Windows, [u64; MAX_GROUPS / 64], [u64; MAX_GROUPS / 64])>,
}

impl<'t> Admission<'t> {
    /// For `text`, scanned by a matcher whose required literals are `required`.
    fn new(text: &'t [u8], required: Option<&'t Required>) -> Admission<'t> {
        Admission {
            text,
            required,
            lookups: None,
        }
    }

    /// Whether a regex of group `group` (its [`Scanner::required`] entry) may match in the
    /// text: always for [`NO_GROUP`], or where the matcher has no required literals.
    fn admits(&mut self, group: u16) -> bool {
        let Some(required) = self.required.filter(|_| group != NO_GROUP) else {
            return true;
        };
        let text = self.text;
        let (windows, known, present) = self.lookups.get_or_insert_with(|| {
            (
                Windows::of(text, WINDOWS.take()),
                [0; MAX_GROUPS / 64],
                [0; MAX_GROUPS / 64],
            )
        });
        let (word, bit) = (usize::from(group / 64), 1u64 << (group % 64));
        if known[word] & bit == 0 {
            known[word] |= bit;
            if required.present(group, text, windows) {
                present[word] |= bit;
            }
        }
        present[word] & bit != 0
    }
}

impl Drop for Admission<'_> {
    /// Gives the windows' buffer back to the thread for the next text.
    fn drop(&mut self) {
        if let Some((windows, _, _)) = self.lookups.take()
            && windows.bits.capacity() * 8 <= KEEP_BUFFER_BYTES
        {
            WINDOWS.set(windows.bits);
        }
    }
}

/// Bits of a [`Windows`] set per byte of its text: at most one in sixteen is set, so an
/// absent literal passes the set (and is searched for) about one time in sixteen at worst, on
/// a ticket (2 KB, in the first-level cache) as on a long email. A set of a fixed size would
/// fill on a long text and leave every literal asked for to a search of all of it.
const WINDOW_BITS_PER_BYTE: usize = 16;

/// The fewest bits of a set (2^10: 128 bytes, for a header line) and the most (2^27: 16 MiB,
/// for texts of 8 MB and more, where the set fills further).
const WINDOW_BITS_LOG2: std::ops::RangeInclusive<u32> = 10..=27;

/// The four-byte windows of a text, hashed into a bit set sized to it: a literal whose first
/// four bytes hash to a clear bit does not occur in the text.
#[derive(Debug)]
struct Windows {
    bits: Vec<u64>,
    /// The set holds 2^`log2` bits.
    log2: u32,
}

impl Windows {
    /// The windows of `text`, in `words` (a buffer to reuse; its contents do not matter).
    fn of(text: &[u8], mut words: Vec<u64>) -> Windows {
        let wanted = text
            .len()
            .saturating_mul(WINDOW_BITS_PER_BYTE)
            .max(1)
            .next_power_of_two();
        let log2 = wanted
            .trailing_zeros()
            .clamp(*WINDOW_BITS_LOG2.start(), *WINDOW_BITS_LOG2.end());
        words.clear();
        words.resize(1 << (log2 - 6), 0);
        let mut set = Windows { bits: words, log2 };
        let mut window = 0u32;
        for (i, &b) in text.iter().enumerate() {
            window = (window << 8) | u32::from(b);
            if i >= 3 {
                let bit = set.bit(window);
                set.bits[bit / 64] |= 1 << (bit % 64);
            }
        }
        set
    }

    /// Fibonacci hashing (Knuth, TAOCP vol. 3, 6.4): the top bits of the window times 2^32/φ.
    fn bit(&self, window: u32) -> usize {
        (window.wrapping_mul(0x9E37_79B9) >> (32 - self.log2)) as usize
    }

    /// Whether `literal` may occur in the text: always for one shorter than a window.
    fn may_hold(&self, literal: &[u8]) -> bool {
        let Some(first) = literal.first_chunk::<4>() else {
            return true;
        };
        let bit = self.bit(u32::from_be_bytes(*first));
        self.bits[bit / 64] & (1 << (bit % 64)) != 0
    }
}

/// The literal patterns of a matcher's trie, each once, with what uses it: the word term, the
/// prefix term and the regex terms that start with it. The uses are collected and then sorted
/// once (stably, so a pattern's regexes keep their order): the trie wants its patterns sorted
/// anyway, and hashing every pattern into a map was a quarter of building the matchers
/// (callgrind, the default ruleset: 32 M of 113 M instructions).
#[derive(Default)]
struct LiteralTable<'a> {
    uses: Vec<(&'a [u8], LiteralUse)>,
}

/// What a literal pattern is to a term.
#[derive(Clone, Copy)]
enum LiteralUse {
    /// The text of a word term.
    Word(u32),
    /// The text of a prefix term.
    Prefix(u32),
    /// A literal that a regex term starting at a word starts with.
    Regex(u32),
}

/// The word term, the prefix term and the regex terms of a literal pattern.
type LiteralSlot = (Option<u32>, Option<u32>, Vec<u32>);

impl<'a> LiteralTable<'a> {
    /// Records that `text` is a pattern of the trie, used as `used`.
    fn add(&mut self, text: &'a [u8], used: LiteralUse) {
        self.uses.push((text, used));
    }

    /// The distinct patterns, ascending, and the uses of each.
    fn finish(mut self) -> (Vec<&'a [u8]>, Vec<LiteralSlot>) {
        self.uses.sort_by(|a, b| a.0.cmp(b.0));
        let mut patterns: Vec<&[u8]> = Vec::new();
        let mut slots: Vec<LiteralSlot> = Vec::new();
        for (text, used) in self.uses {
            if patterns.last() != Some(&text) {
                patterns.push(text);
                slots.push((None, None, Vec::new()));
            }
            let slot = slots.last_mut().expect("a slot for each pattern");
            match used {
                LiteralUse::Word(id) => slot.0 = Some(id),
                LiteralUse::Prefix(id) => slot.1 = Some(id),
                LiteralUse::Regex(id) => slot.2.push(id),
            }
        }
        (patterns, slots)
    }
}

/// What the scanner reads off a regex term (after [`ascii_classes`]) to find where to try it,
/// from one parse of it.
#[derive(Debug, Default)]
struct RegexPlan {
    /// Whether the regex starts with `\b`, or is anchored at the start of the text or of a
    /// line (a scanned text's start: folding turns line breaks into spaces), and then one of
    /// its [prefix literals](Self::prefixes), each starting with an ASCII word character.
    /// Every match then starts at an ASCII word boundary, which the trie walk visits, so the
    /// literals join the trie and the regex needs no scan of its own.
    word_start: bool,
    /// [`prefix_literals`].
    prefixes: Option<Vec<Vec<u8>>>,
    /// [`word_start_classes`], for a regex that starts with `\b`.
    classes: Option<Vec<ByteSet>>,
    /// [`required_literals`].
    required: Option<Vec<Vec<u8>>>,
}

impl RegexPlan {
    /// The plan of the regex `hir`, parsed from `pattern` (as the engine runs it, with
    /// [`ascii_classes`] applied).
    fn new(pattern: &str, hir: &Hir) -> RegexPlan {
        use regex_syntax::hir::Look;
        let at_word = pattern.starts_with(r"(?-u:\b)");
        // A match anchored at the start of the text (`^`, `\A`) or of a line (`(?m)^`) that
        // begins with an ASCII word character starts at an ASCII word boundary as well.
        // (Folding turns line breaks into spaces, so in a scanned text, a field or a header
        // line, a line start is its start.)
        let anchors = hir.properties().look_set_prefix();
        let at_line = [Look::Start, Look::StartLF, Look::StartCRLF]
            .into_iter()
            .any(|look| anchors.contains(look));
        let prefixes = prefix_literals(hir);
        let word = |l: &Vec<u8>| l.first().is_some_and(|&b| b.is_ascii_alphanumeric() || b == b'_');
        RegexPlan {
            word_start: (at_word || at_line)
                && prefixes
                    .as_ref()
                    .is_some_and(|literals| literals.iter().all(word)),
            classes: if at_word { word_start_classes(hir) } else { None },
            required: required_literals(hir),
            prefixes,
        }
    }
}

/// Makes `ids` a set: ascending, each once.
fn sorted_set(ids: &mut Vec<u32>) {
    ids.sort_unstable();
    ids.dedup();
}

/// A set of bytes, a bit each.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct ByteSet([u64; 4]);

impl ByteSet {
    fn insert(&mut self, b: u8) {
        self.0[usize::from(b / 64)] |= 1 << (b % 64);
    }

    fn contains(&self, b: u8) -> bool {
        self.0[usize::from(b / 64)] & (1 << (b % 64)) != 0
    }
}

/// For a regex (after [`ascii_classes`], parsed) that starts with `\b` and then at least two
/// positions of ASCII bytes drawn from classes or literals (`\b[a-z]{2}\d{2}`, an IBAN's
/// start), the byte set of each of its first positions (at most four). Every match starts at
/// an ASCII word boundary whose next bytes are in these sets: the walk tries the regex only
/// there, instead of a search of every text (which an IBAN pattern without a literal cost:
/// a lazy DFA over each zone of each ticket, about 4,600 instructions a ticket by callgrind).
/// `None` for any other regex, or when the first position holds a byte that is no word
/// character (then a match need not start at a word start).
fn word_start_classes(hir: &regex_syntax::hir::Hir) -> Option<Vec<ByteSet>> {
    use regex_syntax::hir::{Class, Hir, HirKind, Look};
    const MAX_POSITIONS: usize = 4;
    fn class_set(hir: &Hir) -> Option<ByteSet> {
        let mut set = ByteSet::default();
        match hir.kind() {
            HirKind::Class(Class::Unicode(class)) => {
                for range in class.iter() {
                    if !range.end().is_ascii() {
                        return None;
                    }
                    (range.start() as u8..=range.end() as u8).for_each(|b| set.insert(b));
                }
            }
            HirKind::Class(Class::Bytes(class)) => {
                for range in class.iter() {
                    if !range.end().is_ascii() {
                        return None;
                    }
                    (range.start()..=range.end()).for_each(|b| set.insert(b));
                }
            }
            HirKind::Literal(literal) if literal.0.len() == 1 && literal.0[0].is_ascii() => {
                set.insert(literal.0[0])
            }
            _ => return None,
        }
        Some(set)
    }
    let HirKind::Concat(items) = hir.kind() else {
        return None;
    };
    let (first, rest) = items.split_first()?;
    if !matches!(first.kind(), HirKind::Look(Look::WordAscii)) {
        return None;
    }
    let mut sets = Vec::new();
    for item in rest {
        if sets.len() >= MAX_POSITIONS {
            break;
        }
        match item.kind() {
            HirKind::Literal(literal) => {
                let ascii = literal.0.iter().take_while(|b| b.is_ascii());
                for &b in ascii.take(MAX_POSITIONS - sets.len()) {
                    let mut set = ByteSet::default();
                    set.insert(b);
                    sets.push(set);
                }
                if literal.0.iter().any(|b| !b.is_ascii()) {
                    break;
                }
            }
            HirKind::Repetition(repetition) => {
                let Some(set) = class_set(&repetition.sub) else {
                    break;
                };
                let min = usize::try_from(repetition.min).unwrap_or(usize::MAX);
                sets.extend(std::iter::repeat_n(set, min.min(MAX_POSITIONS - sets.len())));
                if repetition.max != Some(repetition.min) {
                    break;
                }
            }
            _ => match class_set(item) {
                Some(set) => sets.push(set),
                None => break,
            },
        }
    }
    let word = sets
        .first()
        .is_some_and(|set| (0..=127u8).all(|b| !set.contains(b) || b.is_ascii_alphanumeric() || b == b'_'));
    (sets.len() >= 2 && word).then_some(sets)
}

/// Literals one of which starts every match of a regex (parsed, as regex-syntax extracts them
/// for prefilters), or `None` when there is no such finite set of non-empty literals (a
/// pattern starting with a class repeated, or able to match the empty string).
fn prefix_literals(hir: &regex_syntax::hir::Hir) -> Option<Vec<Vec<u8>>> {
    use regex_syntax::hir::literal::{ExtractKind, Extractor};
    let seq = Extractor::new().kind(ExtractKind::Prefix).extract(hir);
    let literals = seq.literals()?;
    if literals.is_empty() || literals.iter().any(|l| l.as_bytes().is_empty()) {
        return None;
    }
    Some(literals.iter().map(|l| l.as_bytes().to_vec()).collect())
}

/// Literals one of which every match of a regex (after [`ascii_classes`], parsed) holds somewhere:
/// those that start every match of one item of its top-level concatenation that every match
/// goes through (an item whose extracted prefixes are finite and none empty), the item whose
/// shortest literal is longest, of four bytes or more. The first item that consumes text is
/// left out: it is what the regex is started at already. `None` when no item qualifies.
fn required_literals(hir: &regex_syntax::hir::Hir) -> Option<Vec<Vec<u8>>> {
    use regex_syntax::hir::HirKind;
    use regex_syntax::hir::literal::{ExtractKind, Extractor};
    const MIN_BYTES: usize = 4;
    const MAX_LITERALS: usize = 32;
    let HirKind::Concat(items) = hir.kind() else {
        return None;
    };
    let mut extractor = Extractor::new();
    extractor.kind(ExtractKind::Prefix);
    let first = items
        .iter()
        .position(|item| !matches!(item.kind(), HirKind::Look(_)))?;
    let mut best: Option<(usize, Vec<Vec<u8>>)> = None;
    for item in &items[first + 1..] {
        let seq = extractor.extract(item);
        let Some(literals) = seq.literals() else {
            continue;
        };
        if literals.is_empty() || literals.len() > MAX_LITERALS {
            continue;
        }
        let shortest = literals.iter().map(|l| l.as_bytes().len()).min().unwrap_or(0);
        if shortest >= MIN_BYTES && best.as_ref().is_none_or(|(b, _)| shortest > *b) {
            best = Some((shortest, literals.iter().map(|l| l.as_bytes().to_vec()).collect()));
        }
    }
    best.map(|(_, literals)| literals)
}

/// A regex term, compiled the first time a text needs it. Most regex terms wait behind
/// literals that most messages never contain, and compiling every one of them up front was
/// nearly a third of the instructions of a start-up or a reload (callgrind: 117 M of 397 M for the
/// default ruleset's 162 regexes). It is compiled from the tree the loader parsed
/// ([`RegexTerm::hir`]), not parsed again.
#[derive(Debug)]
struct LazyRegex {
    /// The pattern as the engine runs it ([`ascii_classes`] applied).
    pattern: String,
    /// Its syntax tree, shared with the ruleset's term.
    hir: Arc<Hir>,
    compiled: OnceLock<Option<meta::Regex>>,
}

impl LazyRegex {
    fn new(regex: &RegexTerm) -> LazyRegex {
        LazyRegex {
            pattern: ascii_classes(regex.pattern()),
            hir: Arc::clone(regex.hir()),
            compiled: OnceLock::new(),
        }
    }

    /// The compiled regex; `None` (the term matches nothing) only if it does not compile,
    /// which the loader's check of every regex term ([`Term::parse`]) rules out for rule
    /// files: this is the backstop, and says so in the log once.
    fn get(&self) -> Option<&meta::Regex> {
        self.compiled
            .get_or_init(|| match meta::Regex::builder()
                // The loader has checked the size; the limit here is the backstop.
                .configure(meta::Config::new().nfa_size_limit(Some(2 * limits::MAX_REGEX_NFA_BYTES)))
                .build_from_hir(&self.hir)
            {
                Ok(regex) => Some(regex),
                Err(error) => {
                    tracing::error!(pattern = %self.pattern, %error, "a regex term does not compile and matches nothing");
                    None
                }
            })
            .as_ref()
    }
}

fn hit(folded: &Folded, term: u32, field: Field, header: u32, base: usize, s: usize, e: usize) -> TermHit {
    let (start, end) = folded.original_range(s, e);
    TermHit {
        term,
        field,
        occurrences: 1,
        header,
        start: (base + start) as u32,
        end: (base + end) as u32,
    }
}

pub use crate::rules::term::ascii_classes;

#[cfg(test)]
mod tests {
    use super::*;

    /// The plan of `pattern` (as the engine runs it).
    fn plan(pattern: &str) -> RegexPlan {
        RegexPlan::new(pattern, &regex_syntax::Parser::new().parse(pattern).unwrap())
    }

    /// A scanner of `terms`, all read in the text fields.
    fn scanner(terms: &[&str]) -> Scanner {
        let terms: Vec<Term> = terms.iter().map(|t| Term::parse(t).unwrap()).collect();
        let fields = FieldSet::text();
        let reader = Reader {
            fields: &fields,
            terms: (0..terms.len() as u32).collect(),
        };
        Scanner::new(terms, &[reader], &[]).unwrap()
    }

    fn scan(terms: &[&str], text: &str) -> Vec<(String, String)> {
        let m = scanner(terms);
        let mut hits = Vec::new();
        m.scan(Field::Body, text, &mut hits);
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
    fn a_term_inside_a_longer_word_is_not_found_by_the_longer_term() {
        assert_eq!(
            scan(&["smart", "art"], "smart"),
            vec![("smart".into(), "smart".into())]
        );
        assert_eq!(
            scan(&["smart", "art*"], "smartphone art"),
            vec![("art*".into(), "art".into())]
        );
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
    fn a_gated_regex_finds_its_leftmost_match_past_literals_where_it_fails() {
        let hits = scan(
            &[r"/\bmeine (\S+ ){0,2}bewertung/"],
            "Meine Katze schläft den ganzen Tag, aber meine alte Bewertung ist weg; meine Bewertung",
        );
        let matched: Vec<&str> = hits.iter().map(|(_, text)| text.as_str()).collect();
        assert_eq!(matched, ["meine alte Bewertung"]);
        // The literal inside a longer word is no place to start (look-behind sees the text before).
        assert!(scan(&[r"/\bmeine bewertung/"], "keinemeine bewertung").is_empty());
    }

    #[test]
    fn a_regex_starting_at_a_word_is_found_where_its_ascii_boundary_is() {
        let regex = r"/\bmeine (\S+ ){0,2}bewertung/";
        // A letter of another script is no ASCII word character: `\b` holds after it.
        assert_eq!(scan(&[regex], "жmeine Bewertung").len(), 1);
        // An underscore is one: no boundary, no match.
        assert!(scan(&[regex], "_meine Bewertung").is_empty());
    }

    #[test]
    fn a_literal_shared_by_a_word_and_a_regex_reports_both() {
        let terms = ["meine", r"/\bmeine (\S+ ){0,2}bewertung/"];
        let found: Vec<String> = scan(&terms, "meine Bewertung")
            .into_iter()
            .map(|(t, _)| t)
            .collect();
        assert_eq!(found, ["meine", terms[1]]);
    }

    #[test]
    fn a_field_full_of_term_hits_still_has_its_regexes_found() {
        let text = format!("{}meine Bewertung", "ja ".repeat(MAX_HITS_PER_FIELD + 10));
        let hits = scan(&["ja", r"/\bmeine (\S+ ){0,2}bewertung/"], &text);
        assert_eq!(hits.len(), MAX_HITS_PER_FIELD + 1);
        assert_eq!(hits.last().map(|(_, m)| m.as_str()), Some("meine Bewertung"));
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
            let Term::Regex(regex) = Term::parse(t).unwrap() else {
                panic!("{t} is a regex term");
            };
            assert!(LazyRegex::new(&regex).get().is_some(), "{t}");
        }
    }

    #[test]
    fn a_term_is_looked_for_only_in_the_fields_that_read_it() {
        let terms: Vec<Term> = ["rechnung", "/^precedence:\\s*bulk/", "nein"]
            .iter()
            .map(|t| Term::parse(t).unwrap())
            .collect();
        let (text, mut headers) = (FieldSet::text(), FieldSet::default());
        headers.add("headers").unwrap();
        let readers = [
            Reader {
                fields: &text,
                terms: vec![0],
            },
            Reader {
                fields: &headers,
                terms: vec![1],
            },
        ];
        let scanner = Scanner::new(terms, &readers, &[2]).unwrap();
        let found = |field: Field, text: &str| {
            let mut hits = Vec::new();
            match field {
                Field::Headers => scanner.scan_header("precedence", text, 0, 0, &mut hits),
                _ => scanner.scan(field, text, &mut hits),
            }
            hits.iter().map(|h| h.term).collect::<Vec<_>>()
        };
        assert_eq!(found(Field::Body, "Rechnung, nein"), [0, 2]);
        assert_eq!(
            found(Field::Quoted, "Rechnung, nein"),
            [0, 2],
            "cues are looked for where text is read"
        );
        assert_eq!(found(Field::From, "rechnung@example.com nein"), Vec::<u32>::new());
        assert_eq!(found(Field::Headers, "Precedence: bulk rechnung"), [1]);
        assert!(!scanner.reads(Field::Cc) && scanner.reads(Field::Headers));
    }

    #[test]
    fn a_regex_is_not_tried_at_its_starts_in_a_text_without_its_required_literals() {
        let scanner = scanner(&[r"/\b(il|la) (\S+ )?(pacchetto|abbonamento)/"]);
        let compiled = || scanner.regexes[0].as_ref().unwrap().compiled.get().is_some();
        let mut hits = Vec::new();
        // Starts at "il" and "la", the long way round, but no "pacchetto" or "abbonamento".
        let long = "il la casa e la strada ".repeat(5_000);
        scanner.scan(Field::Body, &long, &mut hits);
        assert!(hits.is_empty() && !compiled(), "dropped before any attempt");
        scanner.scan(Field::Body, "Vorrei disdire il mio abbonamento", &mut hits);
        assert_eq!(hits.len(), 1);
        assert!(compiled());
        hits.clear();
        scanner.scan(Field::Body, &format!("{long}la nuova pacchetto"), &mut hits);
        assert_eq!(hits.len(), 1, "found at the end of a long text");
    }

    #[test]
    fn a_regex_term_is_compiled_only_when_a_text_reaches_it() {
        let scanner = scanner(&["/\\brechnung\\s+nr\\.?\\s*\\d+/", "/[a-z]{3}@/"]);
        let compiled = |term: usize| scanner.regexes[term].as_ref().unwrap().compiled.get().is_some();
        assert!(!compiled(0) && !compiled(1), "nothing is compiled by the build");
        let mut hits = Vec::new();
        scanner.scan(Field::Body, "Danke für die Info.", &mut hits);
        assert!(hits.is_empty());
        assert!(!compiled(0), "a regex behind a literal waits for the literal");
        assert!(compiled(1), "a regex without a literal runs on every text");
        scanner.scan(Field::Body, "Die Rechnung Nr. 4711 fehlt.", &mut hits);
        assert_eq!(hits.iter().map(|h| h.term).collect::<Vec<_>>(), [0]);
        assert!(compiled(0));
    }

    #[test]
    fn a_regex_that_does_not_compile_matches_nothing_instead_of_failing_the_scan() {
        // Past the backstop's size limit, which the loader's tighter limit keeps rule files from
        // (built by hand: a term could not hold it; the pattern is the tree's, as in a term).
        let pattern = "(?s).{4000}x.{4000}";
        let broken = LazyRegex {
            pattern: pattern.to_string(),
            hir: Arc::new(regex_syntax::Parser::new().parse(pattern).unwrap()),
            compiled: OnceLock::new(),
        };
        assert!(broken.get().is_none());
        assert!(broken.get().is_none(), "tried once, remembered");
    }

    #[test]
    fn a_header_read_by_name_is_scanned_for_its_terms_and_those_of_every_header() {
        let terms: Vec<Term> = ["list", "bulk"].iter().map(|t| Term::parse(t).unwrap()).collect();
        let (mut one, mut all) = (FieldSet::default(), FieldSet::default());
        one.add("header:List-Id").unwrap();
        all.add("headers").unwrap();
        let readers = [
            Reader {
                fields: &one,
                terms: vec![0],
            },
            Reader {
                fields: &all,
                terms: vec![1],
            },
        ];
        let scanner = Scanner::new(terms, &readers, &[]).unwrap();
        let found = |name: &str| {
            let mut hits = Vec::new();
            scanner.scan_header(name, "x: list bulk", 3, 10, &mut hits);
            hits.iter()
                .map(|h| (h.term, h.header, h.start))
                .collect::<Vec<_>>()
        };
        assert_eq!(found("list-id"), [(0, 3, 13), (1, 3, 18)]);
        assert_eq!(found("precedence"), [(1, 3, 18)]);
    }

    #[test]
    fn a_regex_starting_with_byte_classes_gets_their_sets_for_its_first_positions() {
        let sets = plan(&ascii_classes(r"\b[a-z]{2}\d{2}(\s?[a-z0-9]{4}){3,7}\b"))
            .classes
            .unwrap();
        assert_eq!(sets.len(), 4);
        assert!(sets[0].contains(b'd') && !sets[0].contains(b'4') && !sets[0].contains(b'D'));
        assert!(sets[2].contains(b'4') && !sets[2].contains(b'd'));
        // A literal counts a position per byte; a repetition without a fixed count ends them.
        let sets = plan(&ascii_classes(r"\bx[0-9]+ab")).classes.unwrap();
        assert_eq!(sets.len(), 2);
        assert!(sets[0].contains(b'x') && sets[1].contains(b'7'));
    }

    #[test]
    fn only_a_word_start_followed_by_two_ascii_classes_is_a_class_start() {
        // one position only: not selective enough to beat a search
        assert!(plan(&ascii_classes(r"\b\d+ items")).classes.is_none());
        // no word boundary: a match may start inside a word
        assert!(plan(&ascii_classes(r"[a-z]{2}\d{2}")).classes.is_none());
        // a first position that is no word character cannot follow a `\b` at a word start
        assert!(plan(&ascii_classes(r"\b[-a-z]{2}\d")).classes.is_none());
        // non-ASCII classes are left to a search
        assert!(plan(&ascii_classes(r"\b[a-zé]{2}\d")).classes.is_none());
    }

    #[test]
    fn a_class_start_regex_finds_what_a_search_of_the_text_finds() {
        // Leftmost match, inside and at the ends of the text, after punctuation and
        // non-Latin letters, and nothing inside a word.
        let term = r"/\b[a-z]{2}\d{2}( ?[0-9]{4}){2}\b/";
        for (text, expected) in [
            ("IBAN: DE12 3456 7890, bitte", Some("DE12 3456 7890")),
            ("de12 3456 7890", Some("de12 3456 7890")),
            ("x de12 3456 7890", Some("de12 3456 7890")),
            ("(nl9912345678) und de12 3456 7890", Some("nl9912345678")),
            ("ключde12 3456 7890", Some("de12 3456 7890")),
            ("xde12 3456 7890", None),
            ("de1 23456 7890", None),
        ] {
            let hits = scan(&[term], text);
            let regex = regex::Regex::new(&ascii_classes(r"\b[a-z]{2}\d{2}( ?[0-9]{4}){2}\b")).unwrap();
            let folded = text.to_lowercase();
            assert_eq!(hits.first().map(|(_, m)| m.as_str()), expected, "{text}");
            assert_eq!(
                regex.find(&folded).map(|m| m.as_str().to_string()),
                expected.map(str::to_lowercase),
                "{text}: the search agrees"
            );
        }
    }

    proptest::proptest! {
        /// The windows rule a literal out only when it is absent, and a group is present
        /// exactly when one of its literals is a substring of the text.
        #[test]
        fn a_group_is_present_exactly_when_one_of_its_literals_occurs(
            text in "[abc ]{0,300}",
            literals in proptest::collection::vec((0u16..4, "[abc ]{1,7}"), 1..12),
        ) {
            let windows = Windows::of(text.as_bytes(), Vec::new());
            // A reused buffer leaves nothing of its last text.
            let reused = Windows::of(text.as_bytes(), vec![u64::MAX; 1000]);
            proptest::prop_assert_eq!(&reused.bits, &windows.bits);
            let required = Required::new(
                literals.iter().map(|(g, l)| (*g, l.as_bytes().to_vec())).collect(),
            );
            for (_, literal) in &literals {
                if text.contains(literal.as_str()) {
                    proptest::prop_assert!(windows.may_hold(literal.as_bytes()), "{literal:?}");
                }
            }
            for group in 0..5u16 {
                let expected = literals.iter().any(|(g, l)| *g == group && text.contains(l.as_str()));
                proptest::prop_assert_eq!(required.present(group, text.as_bytes(), &windows), expected);
            }
        }
    }

    #[test]
    fn the_windows_of_a_long_text_still_rule_out_most_absent_literals() {
        let text: String = (0..40_000)
            .map(|i| format!("w{i} r{} ", i * 7919 % 10_007))
            .collect();
        let windows = Windows::of(text.as_bytes(), Vec::new());
        let absent = (0..200).map(|i| format!("zq{i:02}x")).collect::<Vec<_>>();
        let passed = absent.iter().filter(|l| windows.may_hold(l.as_bytes())).count();
        assert!(
            passed <= 30,
            "{passed} of 200 absent literals pass a set of 2^{} bits",
            windows.log2
        );
        assert!(windows.may_hold(b"w39999") && windows.may_hold(b" r1"));
    }

    #[test]
    fn most_absent_literals_are_ruled_out_by_the_windows_of_a_short_text() {
        let text = "bonjour, je voudrais annuler mon abonnement et recevoir la facture";
        let windows = Windows::of(text.as_bytes(), Vec::new());
        let absent = [
            "pacchetto",
            "abbonamento",
            "rechnung",
            "kundigung",
            "zamowienie",
            "factuur",
        ];
        let ruled_out = absent.iter().filter(|l| !windows.may_hold(l.as_bytes())).count();
        assert!(ruled_out >= 5, "{ruled_out} of {}", absent.len());
        assert!(windows.may_hold(b"abonnement") && windows.may_hold(b"fact"));
    }

    #[test]
    fn the_required_literals_are_those_of_the_longest_item_every_match_goes_through() {
        let required = |pattern: &str| {
            plan(&ascii_classes(pattern)).required.map(|literals| {
                let mut literals: Vec<String> = literals
                    .into_iter()
                    .map(|l| String::from_utf8(l).unwrap())
                    .collect();
                literals.sort();
                literals
            })
        };
        assert_eq!(
            required(r"\b(nous|m\W?) ?(a|avez|ont) (envoye|transmis) (votre )?offre\b"),
            Some(vec!["envoye".to_string(), "transmis".to_string()])
        );
        assert_eq!(
            required(r"\bn\W?(est|sont) pas encore (client|membre)s?\b"),
            Some(vec![" pas encore ".to_string()])
        );
        // Optional or repeated parts and short ones are no requirement; the first part is
        // where the regex is started already.
        assert_eq!(required(r"\bn\W?(est|sont)\b"), None);
        assert_eq!(required(r"\b(rechnung|invoice) \d+"), None);
        assert_eq!(required(r"\bj.ai (\S+ ){0,3}(avis|note)?\b"), None);
    }

    #[test]
    fn a_regex_behind_required_literals_finds_what_a_search_of_the_text_finds() {
        let pattern = r"\b(il|la|l\W?)(\S+ )?(pacchetto|abbonamento) che abbiamo\b";
        let term = format!("/{pattern}/");
        assert_ne!(scanner(&[term.as_str()]).required[0], NO_GROUP);
        let regex = regex::Regex::new(&ascii_classes(pattern)).unwrap();
        for text in [
            "Il nostro pacchetto che abbiamo preso",
            "la l'abbonamento che abbiamo",
            "la la la la, l'abbonamento che abbiamo",
            "Il pacchetto, la fattura: il conto che abbiamo",
            "pacchetto. il nostro conto che abbiamo",
            "il nostro piano che abbiamo",
            "",
        ] {
            let hits = scan(&[term.as_str()], text);
            let folded = crate::text::fold(text).text;
            assert_eq!(
                hits.first().map(|(_, m)| m.to_lowercase()),
                regex.find(&folded).map(|m| m.as_str().to_string()),
                "{text}"
            );
        }
    }

    #[test]
    fn a_regex_runs_only_in_the_zones_that_read_it() {
        let terms: Vec<Term> = [r"/^re:/", r"/^anbei\b/", "rechnung"]
            .iter()
            .map(|t| Term::parse(t).unwrap())
            .collect();
        let (mut subject, mut body) = (FieldSet::default(), FieldSet::default());
        subject.add("subject").unwrap();
        body.add("body").unwrap();
        let readers = [
            Reader {
                fields: &subject,
                terms: vec![0],
            },
            Reader {
                fields: &body,
                terms: vec![1, 2],
            },
        ];
        let scanner = Scanner::new(terms, &readers, &[]).unwrap();
        let found = |field, text| {
            let mut hits = Vec::new();
            scanner.scan(field, text, &mut hits);
            hits.iter().map(|h| h.term).collect::<Vec<_>>()
        };
        assert_eq!(found(Field::Subject, "Re: Rechnung"), [2, 0]);
        // The zones share one matcher: the literal is found, the subject's regex is not run.
        assert_eq!(found(Field::Body, "re: anbei"), Vec::<u32>::new());
        assert_eq!(found(Field::Body, "anbei Rechnung"), [2, 1]);
        assert_eq!(found(Field::Subject, "anbei"), Vec::<u32>::new());
    }

    #[test]
    fn regexes_with_a_leading_literal_are_found_from_it_and_others_everywhere() {
        let terms = [
            r"/\bbefore (i|we) (\w+ ){0,3}cancel/",
            r"/\b[a-z]{2}\d{2}\b/",
            r"/e\b/",
        ];
        let mut hits = scan(&terms, "Before we finally cancel: DE12, see");
        hits.sort();
        let expected = [
            (terms[0], "Before we finally cancel"),
            (terms[1], "DE12"),
            (terms[2], "e"), // the first: "Before"
        ];
        let mut expected: Vec<(String, String)> = expected
            .iter()
            .map(|(t, m)| (t.to_string(), m.to_string()))
            .collect();
        expected.sort();
        assert_eq!(hits, expected);
    }

    #[test]
    fn prefix_literals_are_given_only_when_every_match_starts_with_one() {
        let literals = plan(r"(?-u:\b)(audit|rapport)x").prefixes.unwrap();
        assert_eq!(literals, [b"auditx".to_vec(), b"rapportx".to_vec()]);
        assert_eq!(plan(r"[a-z]{2}\d{2}").prefixes, None);
        assert_eq!(
            plan(r"^\s*(re|aw):").prefixes,
            None,
            "may start with any space, or none"
        );
        assert_eq!(plan(r"x*").prefixes, None, "matches the empty string");
    }

    #[test]
    fn a_regex_anchored_at_a_line_start_with_a_word_literal_is_tried_at_word_starts() {
        let word_start = |p: &str| plan(&ascii_classes(p)).word_start;
        assert!(word_start(r"(?m)^(no|not a) cancellation\b"));
        assert!(word_start(r"^x-spam-flag:\s*yes"));
        assert!(word_start(r"\Ano\b") && word_start(r"(?mR)^no\b") && word_start(r"\b^no"));
        assert!(word_start(r"(?:^foo|^bar)x"), "every alternative is anchored");
        assert!(!word_start(r"^\[\s*auto"), "a bracket is no word character");
        assert!(
            !word_start(r"(^no|yes) cancellation"),
            "not every match is anchored"
        );
        assert!(!word_start(r"wechse\w* zu"), "may start inside a word");
        // Found where a search of the (folded) text finds it, and only there.
        let term = r"/(?m)^(no|not a) cancellation\b/";
        let regex = regex::Regex::new(&ascii_classes(r"(?m)^(no|not a) cancellation\b")).unwrap();
        for text in [
            "No cancellation, thanks",
            "not a cancellation",
            "we want no cancellation",
            "nono cancellation",
            "Hello,\nno cancellation please",
            "x\n\nnot a cancellation.",
            "no cancellations",
            "¿No cancellation?",
            "ésno cancellation",
        ] {
            let hits = scan(&[term], text);
            let folded = crate::text::fold(text).text;
            assert_eq!(
                hits.first().map(|(_, m)| m.to_lowercase()),
                regex.find(&folded).map(|m| m.as_str().to_string()),
                "{text:?}"
            );
        }
        // A header line is scanned on its own: its start is the anchor's.
        let terms = vec![Term::parse(r"/^x-spam-flag:\s*yes/").unwrap()];
        let mut headers = FieldSet::default();
        headers.add("headers").unwrap();
        let readers = [Reader {
            fields: &headers,
            terms: vec![0],
        }];
        let scanner = Scanner::new(terms, &readers, &[]).unwrap();
        let mut hits = Vec::new();
        scanner.scan_header("x-spam-flag", "X-Spam-Flag: YES", 3, 40, &mut hits);
        scanner.scan_header("subject", "Subject: x-spam-flag: yes", 4, 60, &mut hits);
        assert_eq!(
            hits.iter().map(|h| (h.header, h.start)).collect::<Vec<_>>(),
            [(3, 40)]
        );
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
