//! Hot reload: the rules directory is watched (the directory, not the files: editors and
//! Kubernetes ConfigMaps replace files rather than writing them), and SIGHUP reloads too.

use std::sync::Arc;
use std::time::Duration;

use notify::RecursiveMode;
use notify_debouncer_full::{DebounceEventResult, Debouncer, RecommendedCache, new_debouncer};
use tokio::sync::mpsc;
use tracing::{debug, error, info};

use super::state::Rules;

/// Keeps the directory watch alive; dropping it stops watching.
pub struct Watch {
    _debouncer: Debouncer<notify::RecommendedWatcher, RecommendedCache>,
}

/// Reloads now, off the async workers. A ruleset that fails to load is refused with the
/// problems logged (`file:line:column`), and the last good one keeps serving.
pub async fn reload(rules: Arc<Rules>, why: &'static str) {
    let before = rules.current().engine.ruleset().version.clone();
    let outcome = tokio::task::spawn_blocking(move || rules.reload()).await;
    match outcome {
        Ok(Ok(version)) if version == before => {
            debug!(why, %version, "rules unchanged");
        }
        Ok(Ok(version)) => {
            super::metrics::reload(true);
            super::metrics::ruleset(&version);
            info!(why, %version, previous = %before, "ruleset reloaded");
        }
        Ok(Err(e)) => {
            super::metrics::reload(false);
            error!(why, serving = %before, "ruleset reload refused, the last good ruleset keeps serving: {e}");
        }
        Err(e) => error!(why, "ruleset reload panicked: {e}"),
    }
}

/// Watches the rules directory and reloads after changes settle (250 ms).
pub fn watch(rules: Arc<Rules>) -> Result<Option<Watch>, notify::Error> {
    let Some(dir) = rules.dir().cloned() else {
        return Ok(None);
    };
    let (tx, mut rx) = mpsc::unbounded_channel();
    // The handler runs on notify's thread: forward, never block there.
    let mut debouncer = new_debouncer(
        Duration::from_millis(250),
        None,
        move |res: DebounceEventResult| {
            if res.is_ok_and(|events| !events.is_empty()) {
                let _ = tx.send(());
            }
        },
    )?;
    debouncer.watch(&dir, RecursiveMode::NonRecursive)?;
    tokio::spawn(async move {
        while rx.recv().await.is_some() {
            while rx.try_recv().is_ok() {}
            reload(rules.clone(), "files changed").await;
        }
    });
    Ok(Some(Watch {
        _debouncer: debouncer,
    }))
}

/// Reloads on every SIGHUP, for as long as the process runs.
#[cfg(unix)]
pub fn reload_on_sighup(rules: Arc<Rules>) -> std::io::Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut hup = signal(SignalKind::hangup())?;
    tokio::spawn(async move {
        while hup.recv().await.is_some() {
            reload(rules.clone(), "SIGHUP").await;
        }
    });
    Ok(())
}

/// SIGHUP does not exist here; reload by file changes only.
#[cfg(not(unix))]
pub fn reload_on_sighup(_rules: Arc<Rules>) -> std::io::Result<()> {
    Ok(())
}
