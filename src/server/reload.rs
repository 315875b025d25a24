//! Hot reload: the rules directory is watched (the directory, not the files: editors and
//! Kubernetes ConfigMaps replace files rather than writing them), and SIGHUP reloads too.
//!
//! Only changes count: files created, written, renamed or removed. Opening and reading a file
//! (a backup, an editor, a configuration agent, and every reload itself) is no change, nor is
//! a new access time; and a change that leaves the contents as they were (a `touch`, an editor
//! saving without edits) reloads nothing, because the contents are hashed and compared first.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use notify::RecursiveMode;
use notify::event::{AccessKind, AccessMode, EventKind, ModifyKind};
use notify_debouncer_full::{DebounceEventResult, Debouncer, RecommendedCache, new_debouncer};
use tokio::sync::mpsc;
use tracing::{debug, error, info};

use super::state::Rules;

/// Keeps the directory watch alive; dropping it stops watching.
pub struct Watch {
    _debouncer: Debouncer<notify::RecommendedWatcher, RecommendedCache>,
}

/// Which ruleset a reload is for: the live one decides; a shadow one is only compared (see
/// [`super::shadow`]). They are logged and counted apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// The serving ruleset (`triage_ruleset_reloads_total`, `triage_ruleset_info`).
    Live,
    /// The shadow ruleset (`triage_shadow_reloads_total`; `triage_shadow_info` follows).
    Shadow,
}

impl Role {
    /// How log lines name it.
    fn noun(self) -> &'static str {
        match self {
            Role::Live => "ruleset",
            Role::Shadow => "shadow ruleset",
        }
    }

    fn count(self, ok: bool) {
        match self {
            Role::Live => super::metrics::reload(ok),
            Role::Shadow => {
                let result = if ok { "success" } else { "failure" };
                metrics::counter!("triage_shadow_reloads_total", "result" => result).increment(1);
            }
        }
    }
}

/// Reloads now, off the async workers. A ruleset that fails to load is refused with the
/// problems logged (`file:line:column`), and the last good one keeps serving.
pub async fn reload(rules: Arc<Rules>, why: &'static str) {
    reload_as(rules, why, Role::Live).await;
}

/// [`reload`] for the live or the shadow ruleset.
pub async fn reload_as(rules: Arc<Rules>, why: &'static str, role: Role) {
    let before = rules.current().engine.ruleset().version.clone();
    let outcome = tokio::task::spawn_blocking(move || rules.reload()).await;
    let what = role.noun();
    match outcome {
        Ok(Ok(version)) if version == before => {
            debug!(why, %version, "{what} unchanged");
        }
        Ok(Ok(version)) => {
            role.count(true);
            if role == Role::Live {
                super::metrics::ruleset(&version);
            }
            info!(why, %version, previous = %before, "{what} reloaded");
        }
        Ok(Err(super::state::ReloadError::Load(crate::rules::LoadError::Invalid(problems)))) => {
            role.count(false);
            error!(
                why,
                serving = %before,
                "{what} reload refused, the last good {what} keeps serving: {} problem(s)",
                problems.len()
            );
            // One event per problem: each is one line (see rules::Problem).
            for problem in &problems {
                error!(%problem, "{what} problem");
            }
        }
        Ok(Err(e)) => {
            role.count(false);
            let e = crate::text::printable(&e.to_string()).into_owned();
            error!(why, serving = %before, "{what} reload refused, the last good {what} keeps serving: {e}");
        }
        Err(e) => error!(why, "{what} reload panicked: {e}"),
    }
}

/// Watches `dirs` (not recursively); the receiver gets one message per settled burst of
/// changes (250 ms). The notify handler runs on notify's thread: it forwards, never blocks.
fn watch_dirs(dirs: &[PathBuf]) -> Result<(Watch, mpsc::UnboundedReceiver<()>), notify::Error> {
    let (tx, rx) = mpsc::unbounded_channel();
    let mut debouncer = new_debouncer(
        Duration::from_millis(250),
        None,
        move |res: DebounceEventResult| {
            if res.is_ok_and(|events| events.iter().any(|e| is_change(&e.event.kind))) {
                let _ = tx.send(());
            }
        },
    )?;
    for dir in dirs {
        debouncer.watch(dir, RecursiveMode::NonRecursive)?;
    }
    Ok((
        Watch {
            _debouncer: debouncer,
        },
        rx,
    ))
}

/// True for events that may change a file's contents; false for reads (inotify reports every
/// open and close) and for metadata such as access times.
fn is_change(kind: &EventKind) -> bool {
    match kind {
        EventKind::Create(_) | EventKind::Remove(_) | EventKind::Any => true,
        EventKind::Modify(ModifyKind::Metadata(_)) => false,
        EventKind::Modify(_) => true,
        EventKind::Access(AccessKind::Close(AccessMode::Write)) => true,
        EventKind::Access(_) | EventKind::Other => false,
    }
}

/// Waits for the next burst of changes, swallowing the ones already queued.
async fn next_change(rx: &mut mpsc::UnboundedReceiver<()>) -> bool {
    let changed = rx.recv().await.is_some();
    while rx.try_recv().is_ok() {}
    changed
}

/// Watches the rules directory and reloads after changes settle.
pub fn watch(rules: Arc<Rules>) -> Result<Option<Watch>, notify::Error> {
    watch_as(rules, Role::Live)
}

/// [`watch`] for the live or the shadow ruleset.
pub fn watch_as(rules: Arc<Rules>, role: Role) -> Result<Option<Watch>, notify::Error> {
    let Some(dir) = rules.dir().cloned() else {
        return Ok(None);
    };
    let (watch, mut rx) = watch_dirs(&[dir])?;
    tokio::spawn(async move {
        // A change between the first load and the watch raised no event: look once now (a
        // reload that finds the same version rebuilds nothing).
        reload_as(rules.clone(), "changed before the watch began", role).await;
        while next_change(&mut rx).await {
            reload_as(rules.clone(), "files changed", role).await;
        }
    });
    Ok(Some(watch))
}

/// Reloads on every SIGHUP, for as long as the process runs.
pub fn reload_on_sighup(rules: Arc<Rules>) -> std::io::Result<()> {
    reload_on_sighup_as(rules, Role::Live)
}

/// [`reload_on_sighup`] for the live or the shadow ruleset.
#[cfg(unix)]
pub fn reload_on_sighup_as(rules: Arc<Rules>, role: Role) -> std::io::Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut hup = signal(SignalKind::hangup())?;
    tokio::spawn(async move {
        while hup.recv().await.is_some() {
            reload_as(rules.clone(), "SIGHUP", role).await;
        }
    });
    Ok(())
}

/// SIGHUP does not exist here; reload by file changes only.
#[cfg(not(unix))]
pub fn reload_on_sighup_as(_rules: Arc<Rules>, _role: Role) -> std::io::Result<()> {
    Ok(())
}

/// Watches the directories holding `files` and calls `reload` after changes settle (used for
/// TLS certificates and token files; Kubernetes mounts Secrets through a `..data` symlink that
/// is swapped, so any change in the directory counts). Returns the guard keeping the watch.
pub fn watch_files(
    files: Vec<PathBuf>,
    what: &'static str,
    reload: impl Fn() -> Result<String, String> + Send + Sync + 'static,
) -> Result<Watch, notify::Error> {
    let reload: Arc<dyn Fn() -> Result<String, String> + Send + Sync> = Arc::new(reload);
    let mut dirs: Vec<PathBuf> = files
        .iter()
        .map(|f| {
            f.parent()
                .filter(|p| !p.as_os_str().is_empty())
                .unwrap_or(Path::new("."))
                .to_path_buf()
        })
        .collect();
    dirs.sort();
    dirs.dedup();
    let (watch, mut rx) = watch_dirs(&dirs)?;
    tokio::spawn(async move {
        let mut last = digest(&files);
        while next_change(&mut rx).await {
            let now = digest(&files);
            if now == last {
                debug!(what, "files touched but unchanged: nothing to reload");
                continue;
            }
            last = now;
            reload_other(reload.clone(), what, "files changed").await;
        }
    });
    Ok(watch)
}

/// A hash of the files' contents (a file that cannot be read hashes as missing).
fn digest(files: &[PathBuf]) -> [u8; 32] {
    use sha2::{Digest, Sha256};
    let mut hasher = Sha256::new();
    for file in files {
        match std::fs::read(file) {
            Ok(bytes) => {
                hasher.update((bytes.len() as u64).to_le_bytes());
                hasher.update(&bytes);
            }
            Err(_) => hasher.update(u64::MAX.to_le_bytes()),
        }
    }
    hasher.finalize().into()
}

/// Runs a reload of something other than rules on the blocking pool and logs the outcome.
pub async fn reload_other(
    reload: Arc<dyn Fn() -> Result<String, String> + Send + Sync>,
    what: &'static str,
    why: &'static str,
) {
    match tokio::task::spawn_blocking(move || reload()).await {
        Ok(Ok(detail)) => {
            metrics::counter!("triage_reloads_total", "what" => what, "result" => "success").increment(1);
            info!(what, why, %detail, "reloaded");
        }
        Ok(Err(e)) => {
            metrics::counter!("triage_reloads_total", "what" => what, "result" => "failure").increment(1);
            error!(what, why, "reload refused, the previous one stays: {e}");
        }
        Err(e) => error!(what, why, "reload panicked: {e}"),
    }
}

/// Calls `reload` on every SIGHUP.
#[cfg(unix)]
pub fn on_sighup(
    what: &'static str,
    reload: Arc<dyn Fn() -> Result<String, String> + Send + Sync>,
) -> std::io::Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut hup = signal(SignalKind::hangup())?;
    tokio::spawn(async move {
        while hup.recv().await.is_some() {
            reload_other(reload.clone(), what, "SIGHUP").await;
        }
    });
    Ok(())
}

/// SIGHUP does not exist here.
#[cfg(not(unix))]
pub fn on_sighup(
    _what: &'static str,
    _reload: Arc<dyn Fn() -> Result<String, String> + Send + Sync>,
) -> std::io::Result<()> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use notify::event::{CreateKind, DataChange, MetadataKind, RemoveKind, RenameMode};

    #[test]
    fn reads_and_metadata_are_no_change_writes_renames_and_removals_are() {
        for read in [
            EventKind::Access(AccessKind::Open(AccessMode::Any)),
            EventKind::Access(AccessKind::Close(AccessMode::Read)),
            EventKind::Modify(ModifyKind::Metadata(MetadataKind::AccessTime)),
            EventKind::Modify(ModifyKind::Metadata(MetadataKind::Any)),
        ] {
            assert!(!is_change(&read), "{read:?}");
        }
        for change in [
            EventKind::Create(CreateKind::File),
            EventKind::Remove(RemoveKind::File),
            EventKind::Modify(ModifyKind::Data(DataChange::Any)),
            EventKind::Modify(ModifyKind::Name(RenameMode::Both)),
            EventKind::Access(AccessKind::Close(AccessMode::Write)),
        ] {
            assert!(is_change(&change), "{change:?}");
        }
    }
}
