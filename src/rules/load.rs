//! Loading and checking a ruleset: every problem is reported, each with its `file:line:column`.

use std::collections::HashMap;
use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use toml::Spanned;

use super::condition::{
    Condition, all::All, any::Any, at_least::AtLeast, none::None, requires::Requires, unless::Unless,
};
use super::spec::{ConditionSpecs, CueSpec, FileSpec, RuleSpec, SignalSpec, TermListSpec};
use super::term::RegexCheck;
use super::{
    Calibration, Collect, Cue, CueKind, Example, Expectation, FieldSet, Frequency, Location, Move, Negated,
    Queue, Rule, RuleSet, Scope, Signal, Term, limits,
};
use crate::message::Ticket;

mod builtin {
    include!(concat!(env!("OUT_DIR"), "/default_rules.rs"));
}

/// The default ruleset's files, compiled into the binary: `(file name, bytes)`.
pub fn default_sources() -> Vec<(String, Vec<u8>)> {
    builtin::DEFAULT_RULES
        .iter()
        .map(|(name, bytes)| (name.to_string(), bytes.to_vec()))
        .collect()
}

/// One thing wrong with a ruleset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// Where, when the problem has a place.
    pub location: Option<Location>,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Messages quote the files (ids, terms), which may hold newlines: escaped, so one
        // problem is always one line.
        let message = crate::text::printable(&self.message);
        match &self.location {
            Some(at) => write!(f, "{at}: {message}"),
            None => f.write_str(&message),
        }
    }
}

/// Why a ruleset could not be loaded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LoadError {
    /// The directory or a file could not be read.
    #[error("cannot read {}: {source}", crate::text::printable(&path.display().to_string()))]
    Io {
        /// The path that failed.
        path: PathBuf,
        /// The reason.
        source: std::io::Error,
    },
    /// The files were read but are not a valid ruleset.
    #[error("{} problem(s) in the ruleset:\n{}", .0.len(), .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n"))]
    Invalid(Vec<Problem>),
}

impl RuleSet {
    /// Loads every `*.toml` file of `dir`, in file-name order.
    pub fn load(dir: &Path) -> Result<RuleSet, LoadError> {
        RuleSet::from_sources(dir, read_sources(dir)?)
    }

    /// The version the files of `dir` would load as, without parsing them: what a reload
    /// compares to the serving version, so that nothing is rebuilt when nothing changed.
    pub fn fingerprint(dir: &Path) -> Result<String, LoadError> {
        Ok(version_of(&read_sources(dir)?))
    }

    /// The ruleset compiled into the binary.
    pub fn builtin() -> RuleSet {
        RuleSet::from_sources(Path::new("built-in"), default_sources())
            .expect("the built-in ruleset is checked by the tests")
    }

    /// Builds a ruleset from named file contents (the names only label diagnostics and count in
    /// the version hash).
    pub fn from_sources(source: &Path, files: Vec<(String, Vec<u8>)>) -> Result<RuleSet, LoadError> {
        let mut builder = Builder::default();
        let mut sorted = files;
        sorted.sort_by(|a, b| file_name(&a.0).cmp(file_name(&b.0)));
        for (name, bytes) in &sorted {
            builder.file(name, bytes);
        }
        if sorted.is_empty() {
            builder.problem(None, format!("no *.toml rule files in {}", source.display()));
        }
        builder.finish(version_of(&sorted), source.to_path_buf())
    }
}

/// Reads every `*.toml` file of `dir`, in file-name order, within the size limits
/// ([`limits::MAX_FILE_BYTES`], [`limits::MAX_RULESET_BYTES`]): a file over them is not read.
fn read_sources(dir: &Path) -> Result<Vec<(String, Vec<u8>)>, LoadError> {
    use std::io::Read;
    let io = |source| LoadError::Io {
        path: dir.to_path_buf(),
        source,
    };
    let mut names = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(io)? {
        let path = entry.map_err(io)?.path();
        if path.extension().is_some_and(|e| e == "toml") && path.is_file() {
            names.push(path);
        }
    }
    names.sort();
    let mut sources = Vec::with_capacity(names.len());
    let mut problems = Vec::new();
    let mut total = 0u64;
    for path in names {
        let name = path.display().to_string();
        let too_large = |size: String| Problem {
            location: Some(Location {
                file: name.clone(),
                line: 1,
                column: 1,
            }),
            message: format!(
                "the file is {size} bytes; a rule file may hold at most {} bytes",
                limits::MAX_FILE_BYTES
            ),
        };
        let read_error = |source| LoadError::Io {
            path: path.clone(),
            source,
        };
        let declared = std::fs::metadata(&path).map_err(read_error)?.len();
        if declared > limits::MAX_FILE_BYTES {
            problems.push(too_large(declared.to_string()));
            continue;
        }
        let mut bytes = Vec::with_capacity(declared as usize);
        std::fs::File::open(&path)
            .and_then(|f| f.take(limits::MAX_FILE_BYTES + 1).read_to_end(&mut bytes))
            .map_err(read_error)?;
        if bytes.len() as u64 > limits::MAX_FILE_BYTES {
            problems.push(too_large(format!("more than {}", limits::MAX_FILE_BYTES)));
            continue;
        }
        total += bytes.len() as u64;
        if total > limits::MAX_RULESET_BYTES {
            problems.push(Problem {
                location: Some(Location {
                    file: name.clone(),
                    line: 1,
                    column: 1,
                }),
                message: format!(
                    "with this file the ruleset holds more than {} bytes, the limit for all files together",
                    limits::MAX_RULESET_BYTES
                ),
            });
            break;
        }
        sources.push((name, bytes));
    }
    if !problems.is_empty() {
        return Err(LoadError::Invalid(problems));
    }
    Ok(sources)
}

/// The version of a ruleset: a hash of its files' names and bytes, in file-name order.
fn version_of(files: &[(String, Vec<u8>)]) -> String {
    let mut sorted: Vec<&(String, Vec<u8>)> = files.iter().collect();
    sorted.sort_by(|a, b| file_name(&a.0).cmp(file_name(&b.0)));
    let mut hasher = Sha256::new();
    for (name, bytes) in sorted {
        let base = file_name(name);
        hasher.update((base.len() as u64).to_le_bytes());
        hasher.update(base.as_bytes());
        hasher.update((bytes.len() as u64).to_le_bytes());
        hasher.update(bytes);
    }
    let digest = hasher.finalize();
    let hex: String = digest.iter().take(8).map(|b| format!("{b:02x}")).collect();
    format!("sha256:{hex}")
}

fn file_name(path: &str) -> &str {
    Path::new(path)
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or(path)
}

/// Accumulates the files' contents and every problem found in them.
#[derive(Default)]
struct Builder {
    problems: Vec<Problem>,
    name: Option<(String, Spanned<String>, Location)>,
    queues: Vec<(Queue, Location)>,
    rules: Vec<(Spanned<RuleSpec>, String)>,
    signals: Vec<(Spanned<SignalSpec>, String)>,
    cues: Vec<(Spanned<CueSpec>, String)>,
    lists: Vec<(Spanned<TermListSpec>, String)>,
    /// Named term lists by id, expanded where a condition writes `@id`.
    expanded: HashMap<String, Vec<Term>>,
    examples: Vec<(super::spec::ExampleSpec, Location)>,
    calibration: Option<Calibration>,
    texts: HashMap<String, String>,
    /// Byte offset of each line's start, per file: locating a span is a binary search, not a
    /// count from the start (a learned rule file has tens of thousands of rules).
    line_starts: HashMap<String, Vec<usize>>,
    /// Where each `requires`/`unless` reference is written, checked once every id is known.
    reference_sites: Vec<(String, Location)>,
    /// Bytes of keywords (folded) and of compiled regexes so far, against the ruleset limits.
    keyword_bytes: usize,
    regex_bytes: usize,
    /// The compiler every regex term is checked with.
    regex_check: RegexCheck,
}

impl Builder {
    fn problem(&mut self, location: Option<Location>, message: impl Into<String>) {
        self.problems.push(Problem {
            location,
            message: message.into(),
        });
    }

    /// The value of a key that names one of `options` (the first when the key is absent); any
    /// other name is a problem at its location, and the first option stands in for it.
    fn choice<T: Copy>(
        &mut self,
        file: &str,
        key: &str,
        value: &Option<Spanned<String>>,
        options: &[(&str, T)],
    ) -> T {
        let Some(value) = value else {
            return options[0].1;
        };
        if let Some((_, v)) = options.iter().find(|(name, _)| name == value.get_ref()) {
            return *v;
        }
        let expected: Vec<String> = options.iter().map(|(name, _)| format!("`{name}`")).collect();
        let at = self.at(file, value.span());
        self.problem(
            Some(at),
            format!(
                "{key} = `{}`: expected {}",
                value.get_ref(),
                expected.join(" or ")
            ),
        );
        options[0].1
    }

    fn at(&self, file: &str, span: Range<usize>) -> Location {
        let text = self.texts.get(file).map(String::as_str).unwrap_or("");
        let offset = text.floor_char_boundary(span.start.min(text.len()));
        let Some(starts) = self.line_starts.get(file) else {
            return locate(file, text, offset);
        };
        let line = starts.partition_point(|&s| s <= offset).max(1);
        let start = starts[line - 1];
        Location {
            file: file.to_string(),
            line,
            column: text[start..offset].chars().count() + 1,
        }
    }

    fn file(&mut self, name: &str, bytes: &[u8]) {
        let text = match std::str::from_utf8(bytes) {
            Ok(t) => t.to_string(),
            Err(e) => {
                let valid = String::from_utf8_lossy(&bytes[..e.valid_up_to()]).into_owned();
                let at = locate(name, &valid, valid.len());
                self.problem(Some(at), "the file is not valid UTF-8");
                return;
            }
        };
        let starts = std::iter::once(0)
            .chain(text.match_indices('\n').map(|(i, _)| i + 1))
            .collect();
        self.line_starts.insert(name.to_string(), starts);
        self.texts.insert(name.to_string(), text.clone());
        let spec: FileSpec = match toml::from_str(&text) {
            Ok(spec) => spec,
            Err(e) => {
                let at = e.span().map(|s| locate(name, &text, s.start));
                let message = e.message().trim().to_string();
                self.problem(at, message);
                return;
            }
        };
        if let Some(rs) = spec.ruleset {
            let at = self.at(name, rs.span());
            if let Some((_, _, first)) = &self.name {
                let msg = format!("a second [ruleset] table (the first is at {first})");
                self.problem(Some(at), msg);
            } else {
                let rs = rs.into_inner();
                self.name = Some((rs.name, rs.fallback, at));
            }
        }
        for q in spec.queue {
            let at = self.at(name, q.span());
            let q = q.into_inner();
            let id_at = self.at(name, q.id.span());
            let id = q.id.into_inner();
            if id.is_empty()
                || !id
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
            {
                self.problem(Some(id_at.clone()), format!("queue id `{id}` must be [a-z0-9_]+"));
            }
            let threshold = *q.threshold.get_ref();
            if !(0.0..=1.0).contains(&threshold) {
                let at = self.at(name, q.threshold.span());
                self.problem(Some(at), format!("threshold {threshold} is outside [0, 1]"));
            }
            if let Some((_, first)) = self.queues.iter().find(|(other, _)| other.id == id) {
                let msg = format!("queue `{id}` is defined twice (first at {first})");
                self.problem(Some(id_at), msg);
                continue;
            }
            let queue = Queue {
                id,
                destination: q.destination,
                description: q.description,
                threshold,
            };
            self.queues.push((queue, at));
        }
        for r in spec.rule {
            self.rules.push((r, name.to_string()));
        }
        for sig in spec.signal {
            self.signals.push((sig, name.to_string()));
        }
        for c in spec.cue {
            self.cues.push((c, name.to_string()));
        }
        for l in spec.terms {
            self.lists.push((l, name.to_string()));
        }
        for e in spec.example {
            let at = self.at(name, e.span());
            self.examples.push((e.into_inner(), at));
        }
        if let Some(c) = spec.calibration {
            let t = *c.get_ref().temperature.get_ref();
            if !(t.is_finite() && t > 0.0) {
                let at = self.at(name, c.get_ref().temperature.span());
                self.problem(
                    Some(at),
                    format!("temperature must be a positive number, not {t}"),
                );
            } else if self.calibration.is_some() {
                let at = self.at(name, c.span());
                self.problem(Some(at), "a second [calibration] table");
            } else {
                let c = c.get_ref();
                let ceiling = c.contested_ceiling.as_ref().map(|v| (*v.get_ref(), v.span()));
                if let Some((v, span)) = ceiling.clone()
                    && !(v > 0.0 && v <= 1.0)
                {
                    let at = self.at(name, span);
                    self.problem(
                        Some(at),
                        format!("contested_ceiling must be within (0, 1], not {v}"),
                    );
                }
                if let (Some((_, span)), None) = (ceiling.clone(), c.intercept) {
                    // The ceiling bounds the confidence model's output; without the model
                    // (no `intercept`) it would bound nothing, silently.
                    let at = self.at(name, span);
                    self.problem(
                        Some(at),
                        "contested_ceiling needs the confidence model: `intercept` is missing",
                    );
                }
                let model = c
                    .intercept
                    .map(|intercept| crate::engine::score::ConfidenceModel {
                        intercept,
                        weights: [
                            c.softmax_logit.unwrap_or(1.0),
                            c.margin.unwrap_or(0.0),
                            c.strong_queues.unwrap_or(0.0),
                            c.weak_share.unwrap_or(0.0),
                            c.addressed.unwrap_or(0.0),
                            c.unexplained.unwrap_or(0.0),
                            c.standing_unknown.unwrap_or(0.0),
                        ],
                        contested_ceiling: ceiling.map(|(v, _)| v),
                    });
                self.calibration = Some(Calibration {
                    temperature: t,
                    model,
                });
            }
        }
    }

    fn finish(mut self, version: String, source: PathBuf) -> Result<RuleSet, LoadError> {
        let queues: Vec<Queue> = self.queues.iter().map(|(q, _)| q.clone()).collect();
        let queue_index = |id: &str| queues.iter().position(|q| q.id == id);
        if queues.is_empty() {
            self.problem(None, "the ruleset defines no [[queue]]");
        }
        let (name, fallback) = match self.name.take() {
            Some((name, fallback, _)) => {
                let index = queue_index(fallback.get_ref());
                if index.is_none() && !queues.is_empty() {
                    let file = self.texts.keys().find(|f| {
                        self.texts[*f]
                            .get(fallback.span())
                            .is_some_and(|s| s.contains(fallback.get_ref().as_str()))
                    });
                    let at = file.map(|f| locate(f, &self.texts[f], fallback.span().start));
                    self.problem(
                        at,
                        format!("fallback queue `{}` is not defined", fallback.get_ref()),
                    );
                }
                (name, index.unwrap_or(0))
            }
            None => {
                self.problem(None, "no [ruleset] table (name and fallback queue)");
                (String::new(), 0)
            }
        };

        for (spec, file) in std::mem::take(&mut self.lists) {
            let at = self.at(&file, spec.get_ref().id.span());
            let spec = spec.into_inner();
            let id = spec.id.into_inner();
            let terms = self.terms(&file, &spec.terms);
            if self.expanded.insert(id.clone(), terms).is_some() {
                self.problem(Some(at), format!("term list `{id}` is defined twice"));
            }
        }
        let mut rules = Vec::with_capacity(self.rules.len());
        let mut seen: HashMap<String, Location> = HashMap::new();
        for (spec, file) in std::mem::take(&mut self.rules) {
            if let Some(rule) = self.rule(spec, &file, &queues, &mut seen) {
                rules.push(rule);
            }
        }
        let mut signals = Vec::new();
        for (spec, file) in std::mem::take(&mut self.signals) {
            if let Some(signal) = self.signal(spec, &file, &queues, &mut seen) {
                signals.push(signal);
            }
        }
        self.check_references(&rules, &signals);
        let mut cues = Vec::new();
        for (spec, file) in std::mem::take(&mut self.cues) {
            if let Some(cue) = self.cue(spec, &file, &mut seen) {
                cues.push(cue);
            }
        }

        let mut examples = Vec::new();
        for (e, at) in std::mem::take(&mut self.examples) {
            let expect = match (e.queue, e.not) {
                (Some(q), None) => Expectation::Queue(q.into_inner()),
                (None, Some(q)) => Expectation::Not(q.into_inner()),
                _ => {
                    self.problem(Some(at), "an example needs exactly one of `queue` or `not`");
                    continue;
                }
            };
            let (Expectation::Queue(q) | Expectation::Not(q)) = &expect;
            if queue_index(q).is_none() {
                self.problem(Some(at.clone()), format!("example names unknown queue `{q}`"));
            }
            if e.subject.trim().is_empty() && e.body.trim().is_empty() && e.headers.is_empty() {
                self.problem(Some(at.clone()), "an example needs a subject, a body or headers");
            }
            let ticket = Ticket {
                id: at.to_string(),
                subject: e.subject,
                body: e.body,
                from: e.from,
                to: e.to,
                language: e.language,
                headers: e.headers,
            };
            examples.push(Example {
                ticket,
                expect,
                location: at,
            });
        }

        if !self.problems.is_empty() {
            return Err(LoadError::Invalid(self.problems));
        }
        Ok(RuleSet {
            name,
            fallback,
            queues,
            rules,
            signals,
            cues,
            examples,
            calibration: self.calibration.unwrap_or_default(),
            version,
            source,
        })
    }

    fn rule(
        &mut self,
        spec: Spanned<RuleSpec>,
        file: &str,
        queues: &[Queue],
        seen: &mut HashMap<String, Location>,
    ) -> Option<Rule> {
        let location = self.at(file, spec.span());
        let spec = spec.into_inner();
        let before = self.problems.len();
        let id = spec.id.get_ref().clone();
        self.unique_id(&id, self.at(file, spec.id.span()), seen);
        let queue = queues.iter().position(|q| &q.id == spec.queue.get_ref());
        if queue.is_none() {
            let at = self.at(file, spec.queue.span());
            self.problem(Some(at), format!("unknown queue `{}`", spec.queue.get_ref()));
        }
        let weight = *spec.weight.get_ref();
        if !weight.is_finite() || weight.abs() > 100.0 || weight == 0.0 {
            let at = self.at(file, spec.weight.span());
            self.problem(
                Some(at),
                format!("weight {weight} must be non-zero and within [-100, 100]"),
            );
        }
        let fields = self.fields(file, &location, &spec.fields);
        let languages = self.languages(file, &spec.languages);
        let conditions = self.conditions(file, &id, &location, spec.conditions());
        let negated = self.choice(
            file,
            "negated",
            &spec.negated,
            &[("ignore", Negated::Ignore), ("counter", Negated::Counter)],
        );
        let frequency = self.choice(
            file,
            "frequency",
            &spec.frequency,
            &[("once", Frequency::Once), ("log", Frequency::Log)],
        );
        if self.problems.len() > before {
            return None;
        }
        Some(Rule {
            id,
            queue: queue?,
            weight,
            fields,
            languages,
            conditions,
            negated,
            frequency,
            location,
        })
    }

    fn fields(
        &mut self,
        file: &str,
        location: &Location,
        written: &Option<Vec<Spanned<String>>>,
    ) -> FieldSet {
        match written {
            None => FieldSet::text(),
            Some(names) => {
                let mut set = FieldSet::default();
                for n in names {
                    if let Err(msg) = set.add(n.get_ref()) {
                        let at = self.at(file, n.span());
                        self.problem(Some(at), msg);
                    }
                }
                if set.is_empty() && names.is_empty() {
                    self.problem(Some(location.clone()), "`fields` is empty");
                }
                set
            }
        }
    }

    fn languages(&mut self, file: &str, written: &[Spanned<String>]) -> Vec<String> {
        let mut languages = Vec::new();
        for l in written {
            let code = l.get_ref().trim().to_ascii_lowercase();
            if code.len() != 2 || !code.chars().all(|c| c.is_ascii_lowercase()) {
                let at = self.at(file, l.span());
                self.problem(Some(at), format!("`{code}` is not an ISO 639-1 language code"));
            }
            languages.push(code);
        }
        languages
    }

    /// The conditions of a rule or signal, in a fixed order (term conditions first).
    fn conditions(
        &mut self,
        file: &str,
        id: &str,
        location: &Location,
        spec: ConditionSpecs<'_>,
    ) -> Vec<Condition> {
        let mut conditions = Vec::new();
        let before = self.problems.len();
        let count = spec.any.len() + spec.all.len() + spec.none.len() + spec.of.len();
        if count > limits::MAX_TERMS_PER_RULE {
            // Checked before any term is read: the count alone bounds the work.
            let beyond = [spec.any, spec.all, spec.none, spec.of]
                .into_iter()
                .flatten()
                .nth(limits::MAX_TERMS_PER_RULE)
                .map(|t| self.at(file, t.span()));
            self.problem(
                beyond.or(Some(location.clone())),
                format!(
                    "`{id}` has {count} terms; a rule or signal may have at most {} (split it)",
                    limits::MAX_TERMS_PER_RULE
                ),
            );
            return conditions;
        }
        let any = self.terms(file, spec.any);
        let all = self.terms(file, spec.all);
        let none = self.terms(file, spec.none);
        let of = self.terms(file, spec.of);
        // (A rule whose terms were all refused already has its problems.)
        if any.is_empty() && all.is_empty() && of.is_empty() && self.problems.len() == before {
            self.problem(
                Some(location.clone()),
                format!("`{id}` has no `any`, `all` or `of` terms"),
            );
        }
        let at_least = match spec.at_least {
            Option::None if !of.is_empty() => {
                self.problem(Some(location.clone()), "`of` needs `at_least`");
                0
            }
            Option::None => 0,
            Some(n) => {
                let value = *n.get_ref();
                // The engine counts distinct terms: one listed twice is one.
                let distinct = of.iter().collect::<std::collections::HashSet<&Term>>().len();
                if value < 1 || value as usize > distinct {
                    let at = self.at(file, n.span());
                    self.problem(
                        Some(at),
                        format!("at_least = {value}, but `of` has {distinct} distinct term(s)"),
                    );
                }
                value.max(0) as usize
            }
        };
        if !any.is_empty() {
            conditions.push(Condition::Any(Any { terms: any }));
        }
        if !all.is_empty() {
            conditions.push(Condition::All(All { terms: all }));
        }
        if !of.is_empty() {
            conditions.push(Condition::AtLeast(AtLeast {
                n: at_least,
                terms: of,
            }));
        }
        if !none.is_empty() {
            conditions.push(Condition::None(None { terms: none }));
        }
        let ids = |w: &[Spanned<String>]| {
            w.iter()
                .map(|s| s.get_ref().trim().to_string())
                .collect::<Vec<_>>()
        };
        if !spec.requires.is_empty() {
            conditions.push(Condition::Requires(Requires {
                ids: ids(spec.requires),
            }));
        }
        if !spec.unless.is_empty() {
            conditions.push(Condition::Unless(Unless {
                ids: ids(spec.unless),
            }));
        }
        for (key, written) in [("requires", spec.requires), ("unless", spec.unless)] {
            for w in written {
                if w.get_ref().trim() == id {
                    let at = self.at(file, w.span());
                    self.problem(Some(at), format!("`{key}` names `{id}` itself"));
                }
            }
        }
        let sites: Vec<(String, Location)> = spec
            .requires
            .iter()
            .chain(spec.unless)
            .map(|w| (w.get_ref().trim().to_string(), self.at(file, w.span())))
            .collect();
        self.reference_sites.extend(sites);
        conditions
    }

    fn signal(
        &mut self,
        spec: Spanned<SignalSpec>,
        file: &str,
        queues: &[Queue],
        seen: &mut HashMap<String, Location>,
    ) -> Option<Signal> {
        let location = self.at(file, spec.span());
        let spec = spec.into_inner();
        let before = self.problems.len();
        let id = spec.id.get_ref().clone();
        self.unique_id(&id, self.at(file, spec.id.span()), seen);
        let fields = self.fields(file, &location, &spec.fields);
        let languages = self.languages(file, &spec.languages);
        let conditions = self.conditions(file, &id, &location, spec.conditions());
        let mut moves = Vec::new();
        for m in &spec.moves {
            let m = m.get_ref();
            let mut queue = |q: &Spanned<String>| {
                let index = queues.iter().position(|x| &x.id == q.get_ref());
                if index.is_none() {
                    let at = self.at(file, q.span());
                    self.problem(Some(at), format!("unknown queue `{}`", q.get_ref()));
                }
                index
            };
            let from = queue(&m.from);
            let to = m.to.as_ref().map(&mut queue);
            let share = *m.share.get_ref();
            if !(share > 0.0 && share <= 1.0) {
                let at = self.at(file, m.share.span());
                self.problem(Some(at), format!("share {share} is outside (0, 1]"));
            }
            match (from, to) {
                (Some(from), None) => moves.push(Move {
                    from,
                    to: None,
                    share,
                }),
                (Some(from), Some(Some(to))) => moves.push(Move {
                    from,
                    to: Some(to),
                    share,
                }),
                _ => {}
            }
        }
        let collect = match spec.collect.as_ref().map(|c| (c.get_ref().as_str(), c.span())) {
            None | Some(("sum", _)) => Collect::Sum,
            Some(("largest", _)) => Collect::Largest,
            Some((other, span)) => {
                let at = self.at(file, span);
                self.problem(
                    Some(at),
                    format!("collect `{other}` is neither `sum` nor `largest`"),
                );
                Collect::Sum
            }
        };
        if let Some(c) = &spec.collect
            && spec.moves.is_empty()
        {
            let at = self.at(file, c.span());
            self.problem(Some(at), "`collect` has no effect: this signal has no `moves`");
        }
        // "largest" takes every amount from the scores before the signal moves anything: a
        // queue that gave twice, or gave and received, would give more than it had.
        // (Only when every move resolved: `moves` then lines up with the written ones.)
        if collect == Collect::Largest && moves.len() == spec.moves.len() {
            for (i, m) in moves.iter().enumerate() {
                let twice = moves[..i].iter().any(|n| n.from == m.from);
                let receives = moves.iter().any(|n| n.to == Some(m.from));
                if twice || receives {
                    let at = self.at(file, spec.moves[i].span());
                    let why = if twice { "gives twice" } else { "also receives" };
                    self.problem(
                        Some(at),
                        format!(
                            "with collect = \"largest\" a queue may give once and not receive: `{}` {why}",
                            queues[m.from].id
                        ),
                    );
                }
            }
        }
        if self.problems.len() > before {
            return Option::None;
        }
        Some(Signal {
            id,
            fields,
            languages,
            conditions,
            moves,
            collect,
            location,
        })
    }

    fn unique_id(&mut self, id: &str, at: Location, seen: &mut HashMap<String, Location>) {
        if id.trim().is_empty() {
            self.problem(Some(at.clone()), "an id must not be empty");
        }
        if let Some(first) = seen.get(id) {
            let msg = format!("id `{id}` is used twice (first at {first})");
            self.problem(Some(at), msg);
        } else {
            seen.insert(id.to_string(), at);
        }
    }

    /// Every `requires`/`unless` names a rule or signal, and no chain of them is a cycle.
    fn check_references(&mut self, rules: &[Rule], signals: &[Signal]) {
        let mut refs: HashMap<&str, Vec<&str>> = HashMap::new();
        for (id, conditions) in rules
            .iter()
            .map(|r| (r.id.as_str(), &r.conditions))
            .chain(signals.iter().map(|s| (s.id.as_str(), &s.conditions)))
        {
            refs.insert(
                id,
                conditions
                    .iter()
                    .flat_map(|c| c.references())
                    .map(String::as_str)
                    .collect(),
            );
        }
        for (name, at) in std::mem::take(&mut self.reference_sites) {
            if !refs.contains_key(name.as_str()) {
                self.problem(Some(at), format!("no rule or signal `{name}`"));
            }
        }
        // Depth-first search for a cycle from every unit.
        let mut state: HashMap<&str, u8> = HashMap::new();
        fn visit<'a>(
            id: &'a str,
            refs: &HashMap<&'a str, Vec<&'a str>>,
            state: &mut HashMap<&'a str, u8>,
        ) -> Option<&'a str> {
            match state.get(id) {
                Some(1) => return Some(id),
                Some(_) => return Option::None,
                Option::None => {}
            }
            state.insert(id, 1);
            for next in refs.get(id).into_iter().flatten() {
                if let Some(c) = visit(next, refs, state) {
                    return Some(c);
                }
            }
            state.insert(id, 2);
            Option::None
        }
        let ids: Vec<&str> = refs.keys().copied().collect();
        for id in ids {
            if let Some(at) = visit(id, &refs, &mut state) {
                let location = rules
                    .iter()
                    .find(|r| r.id == at)
                    .map(|r| r.location.clone())
                    .or_else(|| signals.iter().find(|s| s.id == at).map(|s| s.location.clone()));
                self.problem(
                    location,
                    format!("`requires`/`unless` make a cycle through `{at}`"),
                );
                break;
            }
        }
    }

    fn cue(
        &mut self,
        spec: Spanned<CueSpec>,
        file: &str,
        seen: &mut HashMap<String, Location>,
    ) -> Option<Cue> {
        let location = self.at(file, spec.span());
        let spec = spec.into_inner();
        let before = self.problems.len();
        let id = spec.id.get_ref().clone();
        self.unique_id(&id, self.at(file, spec.id.span()), seen);
        let before_kind = self.problems.len();
        let kind = match spec.kind.get_ref().as_str() {
            "request" => CueKind::Request,
            "negation" => CueKind::Negation,
            "settled" => CueKind::Settled,
            "shift" => CueKind::Shift,
            "aside" => CueKind::Aside,
            other => {
                let at = self.at(file, spec.kind.span());
                self.problem(
                    Some(at),
                    format!(
                        "kind = `{other}`: expected `request`, `negation`, `settled`, `shift` or `aside`"
                    ),
                );
                CueKind::Request
            }
        };
        let scope = match spec.scope.as_ref().map(|s| (s.get_ref().as_str(), s.span())) {
            Option::None => match kind {
                CueKind::Settled | CueKind::Shift => Scope::Before,
                _ => Scope::After,
            },
            // A shift's preamble is always the text before it.
            Some((given, span)) if kind == CueKind::Shift && given != "before" => {
                let at = self.at(file, span);
                self.problem(
                    Some(at),
                    format!("scope = `{given}`: a `shift` cue's scope is `before` (the text before it)"),
                );
                Scope::Before
            }
            // An aside is the sentence it stands in, on both sides of it.
            Some((given, span)) if kind == CueKind::Aside => {
                let at = self.at(file, span);
                self.problem(
                    Some(at),
                    format!("scope = `{given}`: an `aside` cue's scope is its sentence; give no scope"),
                );
                Scope::After
            }
            Some(("after", _)) => Scope::After,
            Some(("before", _)) => Scope::Before,
            Some((other, span)) => {
                let at = self.at(file, span);
                self.problem(
                    Some(at),
                    format!("scope = `{other}`: expected `after` or `before`"),
                );
                Scope::After
            }
        };
        // (A kind refused above is not refused again for its window.)
        let kind_refused = self.problems.len() > before_kind;
        let window = match &spec.window {
            Option::None => Option::None,
            Some(_) if kind_refused => Option::None,
            Some(w) if !matches!(kind, CueKind::Negation | CueKind::Settled) => {
                let at = self.at(file, w.span());
                self.problem(
                    Some(at),
                    "window: only a `negation` or `settled` cue has a scope of words".to_string(),
                );
                Option::None
            }
            Some(w) => match u8::try_from(*w.get_ref()) {
                Ok(n @ 1..=super::MAX_CUE_WINDOW) => Some(n),
                _ => {
                    let at = self.at(file, w.span());
                    self.problem(
                        Some(at),
                        format!(
                            "window = {}: expected a number of words from 1 to {}",
                            w.get_ref(),
                            super::MAX_CUE_WINDOW
                        ),
                    );
                    Option::None
                }
            },
        };
        let terms = self.terms(file, &spec.terms);
        if terms.is_empty() {
            self.problem(Some(location.clone()), format!("cue `{id}` has no terms"));
        }
        if self.problems.len() > before {
            return Option::None;
        }
        Some(Cue {
            id,
            kind,
            scope,
            window,
            terms,
            location,
        })
    }

    fn terms(&mut self, file: &str, written: &[Spanned<String>]) -> Vec<Term> {
        let mut terms = Vec::with_capacity(written.len());
        for w in written {
            if let Some(list) = w.get_ref().strip_prefix('@') {
                match self.expanded.get(list.trim()) {
                    Some(listed) => terms.extend(listed.iter().cloned()),
                    Option::None => {
                        let at = self.at(file, w.span());
                        self.problem(
                            Some(at),
                            format!("no term list `{list}` (define it with [[terms]])"),
                        );
                    }
                }
                continue;
            }
            match Term::parse_checked(w.get_ref(), &self.regex_check) {
                Ok((term, bytes)) => {
                    self.count_towards_limits(file, w.span(), &term, bytes);
                    terms.push(term);
                }
                Err(msg) => {
                    let at = self.at(file, w.span());
                    let written = w.get_ref();
                    let shown = match written.char_indices().nth(60) {
                        Some((cut, _)) => format!("{}…", &written[..cut]),
                        None => written.clone(),
                    };
                    // A control character in it (a TOML `\b` is a backspace) would redraw the
                    // terminal line the diagnostic is read on.
                    let shown = crate::text::printable(&shown);
                    self.problem(Some(at), format!("term `{shown}`: {msg}"));
                }
            }
        }
        terms
    }
}

impl Builder {
    /// Adds a term to the ruleset's totals (a regex with its `compiled_bytes`, from
    /// [`Term::parse_checked`]); the term that takes a total over its limit is a problem
    /// (reported once), so the automata are never built that large.
    fn count_towards_limits(&mut self, file: &str, span: Range<usize>, term: &Term, compiled_bytes: usize) {
        let (total, limit, what) = match term {
            Term::Word(_) | Term::Prefix(_) => {
                (&mut self.keyword_bytes, limits::MAX_KEYWORD_BYTES, "keywords")
            }
            Term::Regex(_) => (
                &mut self.regex_bytes,
                limits::MAX_REGEXES_NFA_BYTES,
                "compiled regexes",
            ),
        };
        let before = *total;
        *total += match term {
            Term::Word(text) | Term::Prefix(text) => text.len(),
            Term::Regex(_) => compiled_bytes,
        };
        if before <= limit && *total > limit {
            let at = self.at(file, span);
            self.problem(
                Some(at),
                format!("with this term the ruleset's {what} exceed {limit} bytes, the limit for the whole ruleset"),
            );
        }
    }
}

/// The 1-based line and column of byte `offset` in `text`.
fn locate(file: &str, text: &str, offset: usize) -> Location {
    let offset = offset.min(text.len());
    let before = &text[..text.floor_char_boundary(offset)];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    Location {
        file: file.to_string(),
        line,
        column,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const QUEUES: &str = "[ruleset]\nname = \"t\"\nfallback = \"a\"\n[[queue]]\nid = \"a\"\nthreshold = 0.5\n[[queue]]\nid = \"b\"\nthreshold = 0.5\n";

    fn load(files: &[(&str, &str)]) -> Result<RuleSet, LoadError> {
        let files = files
            .iter()
            .map(|(n, t)| (n.to_string(), t.as_bytes().to_vec()))
            .collect();
        RuleSet::from_sources(Path::new("test"), files)
    }

    fn problems(files: &[(&str, &str)]) -> Vec<String> {
        match load(files) {
            Err(LoadError::Invalid(p)) => p.iter().map(ToString::to_string).collect(),
            other => panic!("expected problems, got {other:?}"),
        }
    }

    #[test]
    fn at_least_beyond_the_distinct_terms_of_of_is_refused() {
        // "Widget" and "widget" fold alike: one term, which can never make two.
        let rules = "[[rule]]\nid = \"b.x\"\nqueue = \"b\"\nat_least = 2\nof = [\"widget\", \"Widget\"]\n";
        let p = problems(&[("q.toml", QUEUES), ("r.toml", rules)]);
        assert!(
            p.iter()
                .any(|m| m.contains("at_least = 2, but `of` has 1 distinct term(s)")),
            "{p:?}"
        );
    }

    #[test]
    fn a_valid_ruleset_loads_with_its_rules_and_examples() {
        let rules = "[[rule]]\nid = \"b.x\"\nqueue = \"b\"\nany = [\"xyz*\", \"word\"]\n[[example]]\nbody = \"word\"\nqueue = \"b\"\n";
        let rs = load(&[("q.toml", QUEUES), ("r.toml", rules)]).unwrap();
        assert_eq!(rs.queues.len(), 2);
        assert_eq!(rs.rules[0].queue, 1);
        assert_eq!(rs.examples.len(), 1);
        assert!(rs.version.starts_with("sha256:"));
    }

    #[test]
    fn syntax_errors_point_at_file_line_and_column() {
        let p = problems(&[("q.toml", QUEUES), ("r.toml", "[[rule]]\nid = \"x\"\nqueue = \n")]);
        assert!(p[0].starts_with("r.toml:3:"), "{p:?}");
    }

    #[test]
    fn every_semantic_problem_is_reported_with_its_line() {
        let rules = "[[rule]]\nid = \"r1\"\nqueue = \"nope\"\nany = [\"ok\"]\n\n[[rule]]\nid = \"r1\"\nqueue = \"a\"\nany = [\"a*b\"]\n";
        let p = problems(&[("q.toml", QUEUES), ("r.toml", rules)]);
        assert!(
            p.iter()
                .any(|m| m.starts_with("r.toml:3:") && m.contains("unknown queue `nope`")),
            "{p:?}"
        );
        assert!(
            p.iter()
                .any(|m| m.starts_with("r.toml:7:") && m.contains("used twice (first at r.toml:2:")),
            "{p:?}"
        );
        assert!(
            p.iter().any(|m| m.starts_with("r.toml:9:") && m.contains("a*b")),
            "{p:?}"
        );
    }

    #[test]
    fn frequency_is_once_by_default_log_on_request_and_anything_else_a_located_problem() {
        let rule = |extra: &str| format!("[[rule]]\nid = \"r\"\nqueue = \"a\"\nany = [\"x\"]\n{extra}");
        let once = load(&[("q.toml", QUEUES), ("r.toml", &rule(""))]).unwrap();
        assert_eq!(once.rules[0].frequency, Frequency::Once);
        let log = load(&[("q.toml", QUEUES), ("r.toml", &rule("frequency = \"log\"\n"))]).unwrap();
        assert_eq!(log.rules[0].frequency, Frequency::Log);
        let p = problems(&[("q.toml", QUEUES), ("r.toml", &rule("frequency = \"often\"\n"))]);
        assert!(
            p[0].starts_with("r.toml:5:") && p[0].contains("expected `once` or `log`"),
            "{p:?}"
        );
        let p = problems(&[("q.toml", QUEUES), ("r.toml", &rule("negated = \"maybe\"\n"))]);
        assert!(
            p[0].starts_with("r.toml:5:")
                && p[0].contains("negated = `maybe`: expected `ignore` or `counter`"),
            "{p:?}"
        );
    }

    #[test]
    fn a_contested_ceiling_outside_zero_to_one_is_a_located_problem() {
        let calibration =
            |v: &str| format!("[calibration]\ntemperature = 1.0\nintercept = 0.0\ncontested_ceiling = {v}\n");
        let p = problems(&[("q.toml", QUEUES), ("c.toml", &calibration("1.5"))]);
        assert!(
            p[0].starts_with("c.toml:4:") && p[0].contains("within (0, 1], not 1.5"),
            "{p:?}"
        );
        let p = problems(&[("q.toml", QUEUES), ("c.toml", &calibration("0.0"))]);
        assert!(p[0].contains("not 0"), "{p:?}");
        let p = problems(&[(
            "q.toml",
            &format!("{QUEUES}[calibration]\ntemperature = 1.0\ncontested_ceiling = 0.8\n"),
        )]);
        assert!(p.iter().any(|m| m.contains("`intercept` is missing")), "{p:?}");
        let rs = load(&[("q.toml", QUEUES), ("c.toml", &calibration("0.85"))]).unwrap();
        let model = rs.calibration.model.unwrap();
        assert_eq!(model.contested_ceiling, Some(0.85));
    }

    #[test]
    fn unknown_keys_are_refused() {
        let p = problems(&[
            ("q.toml", QUEUES),
            (
                "r.toml",
                "[[rule]]\nid = \"r\"\nqueue = \"a\"\nany = [\"x\"]\nwieght = 2\n",
            ),
        ]);
        assert!(p[0].contains("wieght"), "{p:?}");
    }

    #[test]
    fn the_version_changes_when_a_comment_changes() {
        let a = load(&[("q.toml", QUEUES)]).unwrap().version;
        let b = load(&[("q.toml", &format!("{QUEUES}# note\n"))]).unwrap().version;
        assert_ne!(a, b);
        assert_eq!(a, load(&[("q.toml", QUEUES)]).unwrap().version);
    }

    #[test]
    fn invalid_utf8_is_a_problem_not_a_panic() {
        let files = vec![("q.toml".to_string(), b"[ruleset]\nname = \"\xff\"".to_vec())];
        let err = RuleSet::from_sources(Path::new("t"), files).unwrap_err();
        assert!(err.to_string().contains("q.toml:2:"), "{err}");
    }

    #[test]
    fn signals_term_lists_cues_and_references_load() {
        let rules = "[[terms]]\nid = \"w\"\nterms = [\"alpha\", \"beta*\"]\n\
                     [[signal]]\nid = \"s\"\nany = [\"@w\"]\nmoves = [{ from = \"a\", to = \"b\", share = 0.5 }]\n\
                     [[rule]]\nid = \"b.x\"\nqueue = \"b\"\nany = [\"gamma\"]\nrequires = [\"s\"]\nnegated = \"counter\"\n\
                     [[cue]]\nid = \"c\"\nkind = \"settled\"\nterms = [\"already paid\"]\n";
        let rs = load(&[("q.toml", QUEUES), ("r.toml", rules)]).unwrap();
        assert_eq!(rs.signals[0].conditions[0].terms().len(), 2);
        assert_eq!(rs.signals[0].moves[0].share, 0.5);
        assert_eq!(rs.rules[0].conditions[1].references(), ["s".to_string()]);
        assert_eq!(rs.rules[0].negated, Negated::Counter);
        assert_eq!(
            (rs.cues[0].kind, rs.cues[0].scope),
            (CueKind::Settled, Scope::Before)
        );
    }

    #[test]
    fn rules_beyond_the_limits_are_problems_with_their_location() {
        let many: Vec<String> = (0..limits::MAX_TERMS_PER_RULE + 1)
            .map(|i| format!("\"w{i}\""))
            .collect();
        let rules = format!(
            "[[rule]]\nid = \"big\"\nqueue = \"a\"\nany = [{}]\n\n[[rule]]\nid = \"long\"\nqueue = \"a\"\nany = [\"{}\"]\n\n[[rule]]\nid = \"costly\"\nqueue = \"b\"\nany = ['/(?s).{{2000}}x.{{2000}}/']\n",
            many.join(", "),
            "x".repeat(limits::MAX_TERM_BYTES + 1)
        );
        let p = problems(&[("q.toml", QUEUES), ("r.toml", &rules)]);
        assert!(
            p.iter()
                .any(|m| m.starts_with("r.toml:4:") && m.contains("1001 terms")),
            "{p:?}"
        );
        assert!(
            p.iter()
                .any(|m| m.starts_with("r.toml:9:") && m.contains("at most 1024 bytes")),
            "{p:?}"
        );
        assert!(
            p.iter()
                .any(|m| m.starts_with("r.toml:14:") && m.contains("compiles to more than")),
            "{p:?}"
        );
    }

    #[test]
    fn new_constructs_report_their_problems_with_file_line_and_column() {
        let rules = "[[rule]]\nid = \"a.x\"\nqueue = \"a\"\nany = [\"x\", \"@nolist\"]\nrequires = [\"ghost\"]\n\
                     [[signal]]\nid = \"s1\"\nany = [\"x\"]\nrequires = [\"s2\"]\n\
                     [[signal]]\nid = \"s2\"\nany = [\"y\"]\nrequires = [\"s1\"]\n\
                     [[signal]]\nid = \"s3\"\nany = [\"z\"]\nmoves = [{ from = \"a\", to = \"zz\", share = 2.0 }]\n\
                     [[cue]]\nid = \"c\"\nkind = \"maybe\"\nterms = [\"x\"]\n";
        let p = problems(&[("q.toml", QUEUES), ("r.toml", rules)]);
        let has = |line: &str, text: &str| p.iter().any(|m| m.starts_with(line) && m.contains(text));
        assert!(has("r.toml:4:", "no term list `nolist`"), "{p:?}");
        assert!(has("r.toml:5:", "no rule or signal `ghost`"), "{p:?}");
        assert!(has("r.toml:17:", "unknown queue `zz`"), "{p:?}");
        assert!(has("r.toml:17:", "share 2 is outside"), "{p:?}");
        assert!(p.iter().any(|m| m.contains("make a cycle")), "{p:?}");
        assert!(has("r.toml:20:", "kind = `maybe`"), "{p:?}");
    }

    #[test]
    fn collect_loads_largest_and_refuses_other_values_and_a_signal_without_moves() {
        let rules = "[[signal]]\nid = \"s\"\nany = [\"x\"]\ncollect = \"largest\"\nmoves = [{ from = \"a\", to = \"b\", share = 0.3 }]\n";
        let rs = load(&[("q.toml", QUEUES), ("r.toml", rules)]).unwrap();
        assert_eq!(rs.signals[0].collect, Collect::Largest);
        let plain = "[[signal]]\nid = \"s\"\nany = [\"x\"]\nmoves = [{ from = \"a\", to = \"b\" }]\n";
        let rs = load(&[("q.toml", QUEUES), ("r.toml", plain)]).unwrap();
        assert_eq!(rs.signals[0].collect, Collect::Sum);
        let wrong = "[[signal]]\nid = \"s\"\nany = [\"x\"]\ncollect = \"max\"\nmoves = [{ from = \"a\", to = \"b\" }]\n\
                     [[signal]]\nid = \"t\"\nany = [\"y\"]\ncollect = \"sum\"\n";
        let p = problems(&[("q.toml", QUEUES), ("r.toml", wrong)]);
        let has = |line: &str, text: &str| p.iter().any(|m| m.starts_with(line) && m.contains(text));
        assert!(has("r.toml:4:", "collect `max` is neither"), "{p:?}");
        assert!(has("r.toml:9:", "`collect` has no effect"), "{p:?}");
        let twice = "[[signal]]\nid = \"s\"\nany = [\"x\"]\ncollect = \"largest\"\nmoves = [\n  { from = \"a\", to = \"b\", share = 0.6 },\n  { from = \"a\", share = 0.6 },\n  { from = \"b\", to = \"a\", share = 0.3 },\n]\n";
        let p = problems(&[("q.toml", QUEUES), ("r.toml", twice)]);
        let has = |line: &str, text: &str| p.iter().any(|m| m.starts_with(line) && m.contains(text));
        assert!(has("r.toml:6:", "`a` also receives"), "{p:?}");
        assert!(has("r.toml:7:", "`a` gives twice"), "{p:?}");
        assert!(has("r.toml:8:", "`b` also receives"), "{p:?}");
    }

    #[test]
    fn a_shift_cue_loads_with_its_preamble_before_it_and_refuses_another_scope() {
        let rules = "[[rule]]\nid = \"a.x\"\nqueue = \"a\"\nany = [\"x\"]\n\
                     [[cue]]\nid = \"turn\"\nkind = \"shift\"\nterms = [\"another thing\"]\n";
        let rs = load(&[("q.toml", QUEUES), ("r.toml", rules)]).unwrap();
        assert_eq!(
            (rs.cues[0].kind, rs.cues[0].scope),
            (CueKind::Shift, Scope::Before)
        );
        let wrong =
            "[[cue]]\nid = \"turn\"\nkind = \"shift\"\nscope = \"after\"\nterms = [\"another thing\"]\n";
        let p = problems(&[("q.toml", QUEUES), ("r.toml", wrong)]);
        assert!(
            p.iter()
                .any(|m| m.starts_with("r.toml:4:") && m.contains("a `shift` cue's scope is `before`")),
            "{p:?}"
        );
    }

    #[test]
    fn a_negation_cue_loads_with_a_window_and_a_window_elsewhere_or_out_of_range_is_a_problem() {
        let rules = "[[rule]]\nid = \"a.x\"\nqueue = \"a\"\nany = [\"x\"]\n\
                     [[cue]]\nid = \"instead\"\nkind = \"negation\"\nwindow = 4\nterms = [\"instead of\"]\n";
        let rs = load(&[("q.toml", QUEUES), ("r.toml", rules)]).unwrap();
        assert_eq!(rs.cues[0].window, Some(4));
        let wrong = "[[cue]]\nid = \"ask\"\nkind = \"request\"\nwindow = 3\nterms = [\"could you\"]\n\
                     [[cue]]\nid = \"wide\"\nkind = \"negation\"\nwindow = 0\nterms = [\"not a\"]\n\
                     [[cue]]\nid = \"wider\"\nkind = \"settled\"\nwindow = 300\nterms = [\"paid\"]\n";
        let p = problems(&[("q.toml", QUEUES), ("r.toml", wrong)]);
        let has = |line: &str, text: &str| p.iter().any(|m| m.starts_with(line) && m.contains(text));
        assert!(has("r.toml:4:", "only a `negation` or `settled` cue"), "{p:?}");
        assert!(
            has("r.toml:9:", "window = 0: expected a number of words from 1 to 20"),
            "{p:?}"
        );
        assert!(has("r.toml:14:", "window = 300"), "{p:?}");
        // An unknown kind is one problem, not a second one for its window.
        let unknown = "[[cue]]\nid = \"odd\"\nkind = \"maybe\"\nwindow = 3\nterms = [\"x\"]\n";
        let p = problems(&[("q.toml", QUEUES), ("r.toml", unknown)]);
        assert_eq!(p.iter().filter(|m| m.starts_with("r.toml:")).count(), 1, "{p:?}");
    }

    #[test]
    fn an_aside_cue_loads_and_refuses_a_scope() {
        let rules = "[[rule]]\nid = \"a.x\"\nqueue = \"a\"\nany = [\"x\"]\n\
                     [[cue]]\nid = \"minor\"\nkind = \"aside\"\nterms = [\"no rush\"]\n";
        let rs = load(&[("q.toml", QUEUES), ("r.toml", rules)]).unwrap();
        assert_eq!(rs.cues[0].kind, CueKind::Aside);
        let wrong = "[[cue]]\nid = \"minor\"\nkind = \"aside\"\nscope = \"before\"\nterms = [\"no rush\"]\n";
        let p = problems(&[("q.toml", QUEUES), ("r.toml", wrong)]);
        assert!(
            p.iter()
                .any(|m| m.starts_with("r.toml:4:") && m.contains("an `aside` cue's scope is its sentence")),
            "{p:?}"
        );
    }

    #[test]
    fn the_keywords_of_a_ruleset_are_limited_in_total() {
        let words: Vec<String> = (0..limits::MAX_KEYWORD_BYTES / 900 + 1)
            .map(|i| format!("\"{}{i}\"", "k".repeat(900)))
            .collect();
        let chunks: Vec<String> = words
            .chunks(500)
            .enumerate()
            .map(|(i, c)| {
                format!(
                    "[[rule]]\nid = \"r{i}\"\nqueue = \"a\"\nany = [{}]\n",
                    c.join(", ")
                )
            })
            .collect();
        let p = problems(&[("q.toml", QUEUES), ("r.toml", &chunks.join("\n"))]);
        assert_eq!(p.len(), 1, "{p:?}");
        assert!(p[0].contains("keywords exceed"), "{p:?}");
    }

    #[test]
    fn an_empty_directory_is_an_error() {
        assert!(problems(&[]).iter().any(|p| p.contains("no *.toml")));
    }
}
