//! One message per file: a maildir folder (`cur/` and `new/`) or a tree of `.eml` files.
//!
//! Directories are listed one at a time and sorted by name, so the order (and so `--shard`)
//! is the same on every run and only one directory's names are held at once. Each message is
//! named by its path.

use std::io::Read;
use std::path::{Path, PathBuf};

use super::{Unit, open};

/// Walks message files lazily.
pub struct Files {
    /// Directories still to list, in order (used as a stack, hence reversed).
    dirs: Vec<PathBuf>,
    /// Files of the directory being read, in reverse order.
    files: Vec<PathBuf>,
    /// Whether to descend into subdirectories and keep only `.eml` files.
    tree: bool,
    max: usize,
    /// A problem to report before anything else (e.g. a maildir without `cur/` or `new/`).
    problem: Option<Unit>,
}

impl Files {
    /// The messages of a maildir: `cur/` then `new/`, every file except dotfiles.
    pub fn maildir(path: &Path, max: usize) -> Files {
        let dirs: Vec<PathBuf> = ["new", "cur"]
            .iter()
            .map(|d| path.join(d))
            .filter(|d| d.is_dir())
            .collect();
        let problem = dirs.is_empty().then(|| {
            Unit::bad(
                path.display().to_string(),
                None,
                "not a maildir: no cur/ or new/ folder",
            )
        });
        Files {
            dirs,
            files: Vec::new(),
            tree: false,
            max,
            problem,
        }
    }

    /// `.eml` files (also `.eml.gz`) under `path`, recursively; or `path` itself when a file.
    pub fn tree(path: &Path, max: usize) -> Files {
        let (dirs, files) = if path.is_dir() {
            (vec![path.to_path_buf()], Vec::new())
        } else {
            (Vec::new(), vec![path.to_path_buf()])
        };
        Files {
            dirs,
            files,
            tree: true,
            max,
            problem: None,
        }
    }

    /// Lists one directory: its files (to read) and, for trees, its subdirectories (to visit).
    fn list(&mut self, dir: &Path) -> Result<(), Unit> {
        let bad = |e: std::io::Error| Unit::bad(dir.display().to_string(), None, format!("cannot list: {e}"));
        let mut entries: Vec<(PathBuf, bool)> = Vec::new();
        for entry in std::fs::read_dir(dir).map_err(bad)? {
            let entry = entry.map_err(bad)?;
            let name = entry.file_name();
            if name.to_string_lossy().starts_with('.') {
                continue;
            }
            let is_dir = entry.file_type().map(|t| t.is_dir()).unwrap_or(false);
            entries.push((entry.path(), is_dir));
        }
        entries.sort();
        let mut subdirs = Vec::new();
        for (path, is_dir) in entries.into_iter().rev() {
            if is_dir {
                if self.tree {
                    subdirs.push(path);
                }
            } else if !self.tree || is_eml(&path) {
                self.files.push(path);
            }
        }
        // Subdirectories come after this directory's files, in name order.
        self.dirs.extend(subdirs);
        Ok(())
    }

    fn read(&self, path: &Path) -> Unit {
        let name = path.display().to_string();
        let mut bytes = Vec::new();
        let limit = self.max as u64 + 1;
        match open(path).and_then(|r| r.take(limit).read_to_end(&mut bytes)) {
            Ok(n) if n as u64 >= limit => Unit::bad(
                name.clone(),
                Some(name),
                format!("message larger than {} bytes", self.max),
            ),
            Ok(_) => Unit::email(name.clone(), name, bytes),
            Err(e) => Unit::bad(name.clone(), Some(name), format!("cannot read: {e}")),
        }
    }
}

fn is_eml(path: &Path) -> bool {
    let name = path.to_string_lossy().to_ascii_lowercase();
    name.ends_with(".eml") || name.ends_with(".eml.gz")
}

impl Iterator for Files {
    type Item = Unit;

    fn next(&mut self) -> Option<Unit> {
        if let Some(problem) = self.problem.take() {
            return Some(problem);
        }
        loop {
            if let Some(path) = self.files.pop() {
                return Some(self.read(&path));
            }
            // Maildir lists `cur/` before `new/`; the stack pops the last pushed first.
            let dir = self.dirs.pop()?;
            if let Err(bad) = self.list(&dir) {
                return Some(bad);
            }
        }
    }
}
