//! One message per file: a maildir folder (`cur/` and `new/`) or a tree of `.eml` files.
//!
//! Directories are listed one at a time and sorted by name, so the order (and so `--shard`)
//! is the same on every run and only one directory's names are held at once. Each message is
//! named by its path.
//!
//! Only regular files are read. A FIFO would block the replay for ever (and with it the output
//! of everything read before), a device could be endless, and a symbolic link may point
//! anywhere: each is skipped with an error record, except a link to a regular file inside the
//! folder being read. Files are opened without blocking and checked again once open, so one
//! replaced by a FIFO meanwhile is caught too.

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

use super::{Unit, open, open_reader};

/// A directory entry to yield: a message to read, or why it is skipped.
#[derive(Debug)]
enum Entry {
    /// A file named on the command line, read as given (it may be a pipe on purpose).
    Given(PathBuf),
    /// A file found in a folder.
    Read(PathBuf),
    /// An entry of a folder that is not read, and why.
    Skip(PathBuf, String),
}

/// Walks message files lazily.
pub struct Files {
    /// Directories still to list, in order (used as a stack, hence reversed).
    dirs: Vec<PathBuf>,
    /// Files of the directory being read, in reverse order.
    files: Vec<Entry>,
    /// The folder being read (canonical), which symbolic links may not leave.
    root: Option<PathBuf>,
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
            root: std::fs::canonicalize(path).ok(),
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
            (Vec::new(), vec![Entry::Given(path.to_path_buf())])
        };
        Files {
            dirs,
            files,
            root: std::fs::canonicalize(path).ok(),
            tree: true,
            max,
            problem: None,
        }
    }

    /// Lists one directory: its files (to read) and, for trees, its subdirectories (to visit).
    fn list(&mut self, dir: &Path) -> Result<(), Unit> {
        let bad = |e: std::io::Error| Unit::bad(dir.display().to_string(), None, format!("cannot list: {e}"));
        let mut entries: Vec<(PathBuf, std::fs::FileType)> = Vec::new();
        for entry in std::fs::read_dir(dir).map_err(bad)? {
            let entry = entry.map_err(bad)?;
            let name = entry.file_name();
            if name.to_string_lossy().starts_with('.') {
                continue;
            }
            // The entry's own type: a symbolic link is not followed here.
            let kind = entry.file_type().map_err(bad)?;
            entries.push((entry.path(), kind));
        }
        entries.sort_by(|a, b| a.0.cmp(&b.0));
        let mut subdirs = Vec::new();
        for (path, kind) in entries.into_iter().rev() {
            if kind.is_dir() {
                if self.tree {
                    subdirs.push(path);
                }
                continue;
            }
            if self.tree && !is_eml(&path) {
                continue;
            }
            let entry = if kind.is_file() {
                Entry::Read(path)
            } else if kind.is_symlink() {
                self.link(path)
            } else {
                let what = special_kind(&kind);
                Entry::Skip(path, format!("not a regular file ({what}): skipped"))
            };
            self.files.push(entry);
        }
        // Subdirectories come after this directory's files, in name order.
        self.dirs.extend(subdirs);
        Ok(())
    }

    /// A symbolic link is read when it points to a regular file inside the folder.
    fn link(&self, path: PathBuf) -> Entry {
        let target = match std::fs::canonicalize(&path) {
            Ok(target) => target,
            Err(e) => return Entry::Skip(path, format!("broken symbolic link: {e}")),
        };
        let inside = self.root.as_ref().is_some_and(|root| target.starts_with(root));
        let regular = std::fs::metadata(&target).is_ok_and(|m| m.is_file());
        match (inside, regular) {
            (true, true) => Entry::Read(path),
            (false, _) => Entry::Skip(
                path,
                "symbolic link to a file outside the folder: not followed".to_string(),
            ),
            (true, false) => Entry::Skip(
                path,
                "symbolic link to something other than a regular file: not followed".to_string(),
            ),
        }
    }

    /// Reads a message from a listed entry: opened without blocking (a FIFO put in place of
    /// the file since the listing would otherwise block for ever) and checked to be a
    /// regular file once open.
    fn read_listed(&self, path: &Path) -> Unit {
        let name = path.display().to_string();
        let file = match open_regular(path) {
            Ok(file) => file,
            Err(e) => return Unit::bad(name.clone(), Some(name), e),
        };
        self.read_from(name, open_reader(Box::new(file)))
    }

    /// Reads a file named on the command line, as given.
    fn read(&self, path: &Path) -> Unit {
        self.read_from(path.display().to_string(), open(path))
    }

    fn read_from(&self, name: String, reader: std::io::Result<Box<dyn std::io::BufRead + Send>>) -> Unit {
        let mut bytes = Vec::new();
        let limit = self.max as u64 + 1;
        match reader.and_then(|r| r.take(limit).read_to_end(&mut bytes)) {
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

/// Opens `path` without blocking and checks that it is a regular file.
#[cfg(unix)]
fn open_regular(path: &Path) -> Result<File, String> {
    use std::os::unix::fs::OpenOptionsExt;
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(rustix::fs::OFlags::NONBLOCK.bits() as i32)
        .open(path)
        .map_err(|e| format!("cannot read: {e}"))?;
    let kind = file
        .metadata()
        .map_err(|e| format!("cannot read: {e}"))?
        .file_type();
    if !kind.is_file() {
        return Err(format!("not a regular file ({}): skipped", special_kind(&kind)));
    }
    Ok(file)
}

/// Opens `path` and checks that it is a regular file.
#[cfg(not(unix))]
fn open_regular(path: &Path) -> Result<File, String> {
    let file = File::open(path).map_err(|e| format!("cannot read: {e}"))?;
    let kind = file
        .metadata()
        .map_err(|e| format!("cannot read: {e}"))?
        .file_type();
    if !kind.is_file() {
        return Err(format!("not a regular file ({}): skipped", special_kind(&kind)));
    }
    Ok(file)
}

/// What a special file is, in words.
#[cfg(not(unix))]
fn special_kind(kind: &std::fs::FileType) -> &'static str {
    if kind.is_symlink() {
        "a symbolic link"
    } else {
        "not a file"
    }
}

/// What a special file is, in words.
#[cfg(unix)]
fn special_kind(kind: &std::fs::FileType) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    if kind.is_fifo() {
        "a FIFO"
    } else if kind.is_socket() {
        "a socket"
    } else if kind.is_block_device() || kind.is_char_device() {
        "a device"
    } else if kind.is_symlink() {
        "a symbolic link"
    } else {
        "not a file"
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
            if let Some(entry) = self.files.pop() {
                return Some(match entry {
                    Entry::Given(path) => self.read(&path),
                    Entry::Read(path) => self.read_listed(&path),
                    Entry::Skip(path, why) => {
                        let name = path.display().to_string();
                        Unit::bad(name.clone(), Some(name), why)
                    }
                });
            }
            // Maildir lists `cur/` before `new/`; the stack pops the last pushed first.
            let dir = self.dirs.pop()?;
            if let Err(bad) = self.list(&dir) {
                return Some(bad);
            }
        }
    }
}
