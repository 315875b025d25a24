//! The serving ruleset: swapped atomically on reload, never replaced by one that fails to load,
//! and the outcome of the last reload (what the playground's ruleset view shows).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::SystemTime;

use arc_swap::{ArcSwap, ArcSwapOption};

use crate::engine::Engine;
use crate::rules::{LoadError, Problem, RuleSet};

/// A compiled ruleset and when it was loaded.
#[derive(Debug)]
pub struct Loaded {
    /// The compiled ruleset.
    pub engine: Engine,
    /// When it was loaded.
    pub loaded_at: SystemTime,
}

/// Where rules come from, and the one that serves now.
#[derive(Debug)]
pub struct Rules {
    dir: Option<PathBuf>,
    current: ArcSwap<Loaded>,
    /// The last reload attempt, so that a refused one can be shown with its problems (the
    /// log has them too, but the person editing the rules may not read the log).
    last_reload: ArcSwapOption<ReloadStatus>,
}

/// The outcome of a reload attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReloadStatus {
    /// When it was attempted.
    pub at: SystemTime,
    /// What came of it.
    pub outcome: ReloadOutcome,
}

/// What came of a reload attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReloadOutcome {
    /// A new ruleset serves.
    Reloaded {
        /// Its version.
        version: String,
    },
    /// The files hash to the serving version: nothing was rebuilt.
    Unchanged,
    /// The files did not load; the serving ruleset stays.
    Refused {
        /// Every problem, each with its place when it has one.
        problems: Vec<Problem>,
    },
}

/// Why a reload was refused (the serving ruleset stays).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReloadError {
    /// The files are missing or invalid.
    #[error(transparent)]
    Load(#[from] crate::rules::LoadError),
    /// The ruleset could not be compiled.
    #[error(transparent)]
    Compile(#[from] crate::engine::CompileError),
}

impl Rules {
    /// Loads the first ruleset: from `dir`, or the built-in one when `dir` is `None`.
    pub fn load(dir: Option<PathBuf>) -> Result<Rules, ReloadError> {
        let engine = match &dir {
            Some(d) => Engine::new(RuleSet::load(d)?)?,
            None => Engine::new(RuleSet::builtin())?,
        };
        let loaded = Loaded {
            engine,
            loaded_at: SystemTime::now(),
        };
        Ok(Rules {
            dir,
            current: ArcSwap::from_pointee(loaded),
            last_reload: ArcSwapOption::empty(),
        })
    }

    /// Serves an already compiled engine (tests, embedding).
    pub fn from_engine(engine: Engine, dir: Option<PathBuf>) -> Rules {
        Rules {
            dir,
            current: ArcSwap::from_pointee(Loaded {
                engine,
                loaded_at: SystemTime::now(),
            }),
            last_reload: ArcSwapOption::empty(),
        }
    }

    /// The ruleset serving now. A call keeps the `Arc` it got, so it finishes on the ruleset it
    /// started with even if a reload happens meanwhile.
    pub fn current(&self) -> Arc<Loaded> {
        self.current.load_full()
    }

    /// The watched directory, if rules come from one.
    pub fn dir(&self) -> Option<&PathBuf> {
        self.dir.as_ref()
    }

    /// The outcome of the last reload attempt since the first load, if any.
    pub fn last_reload(&self) -> Option<Arc<ReloadStatus>> {
        self.last_reload.load_full()
    }

    /// Loads and compiles the directory again and swaps it in, unless its files hash to the
    /// serving version (then nothing is rebuilt and the serving ruleset keeps its load time).
    /// On error the serving ruleset stays. Returns the version serving after the call, and
    /// records the outcome for [`Rules::last_reload`]. Blocking: call it off the async workers.
    pub fn reload(&self) -> Result<String, ReloadError> {
        let serving = self.current().engine.ruleset().version.clone();
        let Some(dir) = &self.dir else {
            return Ok(serving);
        };
        let result = self.swap(dir, &serving);
        let outcome = match &result {
            Ok(version) if *version == serving => ReloadOutcome::Unchanged,
            Ok(version) => ReloadOutcome::Reloaded {
                version: version.clone(),
            },
            Err(e) => ReloadOutcome::Refused {
                problems: e.problems(),
            },
        };
        self.last_reload.store(Some(Arc::new(ReloadStatus {
            at: SystemTime::now(),
            outcome,
        })));
        result
    }

    /// Loads `dir` and swaps it in unless it hashes to `serving`.
    fn swap(&self, dir: &std::path::Path, serving: &str) -> Result<String, ReloadError> {
        if RuleSet::fingerprint(dir)? == serving {
            return Ok(serving.to_string());
        }
        let engine = Engine::new(RuleSet::load(dir)?)?;
        let version = engine.ruleset().version.clone();
        self.current.store(Arc::new(Loaded {
            engine,
            loaded_at: SystemTime::now(),
        }));
        Ok(version)
    }
}

impl ReloadError {
    /// Every problem of the refused ruleset: the loader's, each with its `file:line:column`,
    /// or the one error without a place (an unreadable directory, an automaton too large).
    pub fn problems(&self) -> Vec<Problem> {
        match self {
            ReloadError::Load(LoadError::Invalid(problems)) => problems.clone(),
            e => vec![Problem {
                location: None,
                message: e.to_string(),
            }],
        }
    }
}

/// Formats a time as RFC 3339 in UTC (`2026-11-26T22:35:02Z`).
pub fn rfc3339(t: SystemTime) -> String {
    let secs = t
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0) as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn rules_in(dir: &std::path::Path) -> Rules {
        for (name, bytes) in crate::rules::default_sources() {
            let name = std::path::Path::new(&name).file_name().unwrap().to_owned();
            std::fs::write(dir.join(name), bytes).unwrap();
        }
        Rules::load(Some(dir.to_path_buf())).unwrap()
    }

    #[test]
    fn a_refused_reload_is_recorded_with_its_problems_and_the_old_ruleset_serves() {
        let dir = tempfile::tempdir().unwrap();
        let rules = rules_in(dir.path());
        assert_eq!(rules.last_reload(), None);
        let serving = rules.current().engine.ruleset().version.clone();
        std::fs::write(
            dir.path().join("zz.toml"),
            "[[rule]]\nid = \"x\"\nqueue = \"nowhere\"\nany = [\"a\"]\n",
        )
        .unwrap();
        assert!(rules.reload().is_err());
        assert_eq!(rules.current().engine.ruleset().version, serving);
        let status = rules.last_reload().unwrap();
        let ReloadOutcome::Refused { problems } = &status.outcome else {
            panic!("{status:?}");
        };
        let at = problems[0].location.as_ref().unwrap();
        assert!(at.file.ends_with("zz.toml") && at.line > 0, "{problems:?}");
    }

    #[test]
    fn a_reload_records_a_new_version_and_then_that_nothing_changed() {
        let dir = tempfile::tempdir().unwrap();
        let rules = rules_in(dir.path());
        std::fs::write(dir.path().join("zz.toml"), "# a comment\n").unwrap();
        let version = rules.reload().unwrap();
        let reloaded = ReloadOutcome::Reloaded { version };
        assert_eq!(rules.last_reload().unwrap().outcome, reloaded);
        rules.reload().unwrap();
        assert_eq!(rules.last_reload().unwrap().outcome, ReloadOutcome::Unchanged);
    }

    #[test]
    fn rfc3339_formats_known_instants() {
        assert_eq!(rfc3339(SystemTime::UNIX_EPOCH), "1970-01-01T00:00:00Z");
        let t = SystemTime::UNIX_EPOCH + Duration::from_secs(1_795_732_502);
        assert_eq!(rfc3339(t), "2026-11-26T22:35:02Z");
        let leap = SystemTime::UNIX_EPOCH + Duration::from_secs(951_782_400);
        assert_eq!(rfc3339(leap), "2000-02-29T00:00:00Z");
    }
}
