//! What a ruleset may ask for, so that a rule file cannot exhaust the memory or time of the
//! process that loads it: one 20 MB term took 1.4 GB to compile, a 200 MB one drove a serving
//! process past 8 GB during a hot reload, and `/(?s).{2000}x.{2000}/` was accepted and then
//! cost 13 s per 250 KB message.
//!
//! Each limit is checked before the allocation it guards (file sizes before reading, a term's
//! length before folding or parsing it, the number of terms before reading them, the total of
//! keywords before the automaton is built; a regex is compiled under its size limit, which
//! stops the compiler as soon as it is exceeded) and reported like any other problem of the
//! ruleset, with its `file:line:column`. A reload that would exceed one is refused, and the
//! serving ruleset stays.

/// Largest rule file.
pub const MAX_FILE_BYTES: u64 = 16 * 1024 * 1024;

/// Largest ruleset, all files together.
pub const MAX_RULESET_BYTES: u64 = 64 * 1024 * 1024;

/// Longest word, phrase or prefix term, as written. Real keywords are a few dozen bytes.
pub const MAX_TERM_BYTES: usize = 1024;

/// Longest regex term, as written (the default ruleset's longest is about 700 bytes).
pub const MAX_REGEX_BYTES: usize = 4096;

/// Most terms in one rule (`any`, `all`, `none` and `of` together); the default ruleset's
/// largest rule has about 200.
pub const MAX_TERMS_PER_RULE: usize = 1000;

/// Largest compiled regex term (its Thompson NFA). The default ruleset's largest is about
/// 16 KB; `.{200}x.{200}` is 106 KB, `(?s).{2000}x.{2000}` 1 MB. The cost of scanning a field
/// grows with this size in the worst case, so it bounds the regex stage.
pub const MAX_REGEX_NFA_BYTES: usize = 64 * 1024;

/// Largest total of compiled regex terms.
pub const MAX_REGEXES_NFA_BYTES: usize = 8 * 1024 * 1024;

/// Most bytes of keywords (words, phrases, prefixes; folded) in a ruleset: the input of the
/// keyword trie, whose memory grows with it.
pub const MAX_KEYWORD_BYTES: usize = 4 * 1024 * 1024;

/// Largest keyword automaton built (a backstop: the keyword limit keeps it far smaller).
pub const MAX_AUTOMATON_BYTES: usize = 512 * 1024 * 1024;
