//! What wakes the watch service besides its timers: file-system notifications of a local
//! checkout, and SIGTERM/SIGINT. I/O: notify watches, signal handlers.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use tokio::sync::{Notify, mpsc};
use tracing::info;

use crate::source::{self, RepoSpec};

/// What to watch for a local source: the git folder of a checkout read at a commit, or
/// the desired-state folder of a work tree or plain folder. Empty for a remote.
pub fn watch_paths(spec: &RepoSpec) -> Vec<PathBuf> {
    if source::is_remote(&spec.repo) {
        return Vec::new();
    }
    let path = Path::new(&spec.repo);
    if !spec.worktree
        && let Ok(repository) = git2::Repository::discover(path)
    {
        let mut out = vec![repository.path().to_path_buf()];
        let common = repository.commondir().to_path_buf();
        if !out.contains(&common) {
            out.push(common);
        }
        return out;
    }
    let state = spec
        .dir
        .as_deref()
        .map_or(path.to_path_buf(), |d| path.join(d));
    vec![if state.is_dir() {
        state
    } else {
        path.to_path_buf()
    }]
}

/// Starts watching `paths` (recursively); every relevant event sends `()`.
pub fn start_watcher(
    paths: &[PathBuf],
) -> Result<(notify::RecommendedWatcher, mpsc::UnboundedReceiver<()>), String> {
    use notify::{EventKind, RecursiveMode, Watcher};
    let (tx, rx) = mpsc::unbounded_channel();
    let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        let relevant = match &event {
            Ok(e) => !matches!(e.kind, EventKind::Access(_)),
            // An overflow or a backend error: something may have changed.
            Err(_) => true,
        };
        if relevant {
            let _ = tx.send(());
        }
    })
    .map_err(|e| format!("cannot start watching files: {e}"))?;
    for p in paths {
        watcher
            .watch(p, RecursiveMode::Recursive)
            .map_err(|e| format!("cannot watch `{}`: {e}", p.display()))?;
    }
    Ok((watcher, rx))
}

/// Sets `stop` and wakes the loop on SIGTERM or SIGINT.
pub fn spawn_signal_handler(stop: Arc<AtomicBool>, wake: Arc<Notify>) -> std::io::Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    tokio::spawn(async move {
        loop {
            let name = tokio::select! {
                _ = term.recv() => "SIGTERM",
                _ = int.recv() => "SIGINT",
            };
            info!(
                signal = name,
                "stopping: finishing the device being programmed, then exiting"
            );
            stop.store(true, Ordering::SeqCst);
            wake.notify_one();
        }
    });
    Ok(())
}
