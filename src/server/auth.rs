//! Bearer-token authentication for gRPC and the admin port (the webhook, the playground).
//!
//! A token file holds one token per line; lines are trimmed, blank lines and `#` comments are
//! ignored. Tokens are compared in constant time (over their SHA-256, so the length of a
//! token does not leak either) and never logged.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use arc_swap::ArcSwap;
use sha2::{Digest, Sha256};

/// The accepted tokens, reloadable.
#[derive(Debug)]
pub struct Tokens {
    file: PathBuf,
    digests: ArcSwap<Vec<[u8; 32]>>,
    /// How many times the file was read again.
    reloads: AtomicU64,
}

/// Why a token file could not be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TokenError {
    /// The file could not be read.
    #[error("cannot read token file {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file holds no token: refusing everyone is surely a mistake.
    #[error("token file {0} holds no token")]
    Empty(PathBuf),
}

impl Tokens {
    /// Reads a token file.
    pub fn load(file: &Path) -> Result<Tokens, TokenError> {
        let digests = read(file)?;
        Ok(Tokens {
            file: file.to_path_buf(),
            digests: ArcSwap::from_pointee(digests),
            reloads: AtomicU64::new(0),
        })
    }

    /// The token file.
    pub fn file(&self) -> &Path {
        &self.file
    }

    /// Reads the file again; on error the previous tokens stay.
    pub fn reload(&self) -> Result<usize, TokenError> {
        let digests = read(&self.file)?;
        let n = digests.len();
        self.digests.store(Arc::new(digests));
        self.reloads.fetch_add(1, Ordering::Relaxed);
        Ok(n)
    }

    /// How many times the file was read again since it was loaded.
    pub fn reloads(&self) -> u64 {
        self.reloads.load(Ordering::Relaxed)
    }

    /// True when `authorization` is `Bearer <token>` with an accepted token.
    pub fn allows(&self, authorization: Option<&str>) -> bool {
        credentials(authorization, "bearer").is_some_and(|token| self.accepts(token.as_bytes()))
    }

    /// What the admin port accepts: [`Tokens::allows`], or `Basic` credentials whose password
    /// is an accepted token (any user name). A browser cannot send a bearer token when it opens
    /// a page, but it asks for Basic credentials and sends them with every request after.
    pub fn allows_http(&self, authorization: Option<&str>) -> bool {
        use base64::Engine as _;
        if self.allows(authorization) {
            return true;
        }
        let Some(encoded) = credentials(authorization, "basic") else {
            return false;
        };
        let Ok(decoded) = base64::engine::general_purpose::STANDARD.decode(encoded) else {
            return false;
        };
        decoded
            .iter()
            .position(|&b| b == b':')
            .is_some_and(|colon| self.accepts(&decoded[colon + 1..]))
    }

    /// Constant time over every token (no early exit), so timing says nothing about which one
    /// matched, nor about its length (the digests are compared).
    fn accepts(&self, token: &[u8]) -> bool {
        let offered: [u8; 32] = Sha256::digest(token).into();
        self.digests
            .load()
            .iter()
            .fold(false, |found, d| found | constant_time_eq(d, &offered))
    }
}

/// The credentials of an `Authorization` header with this scheme (case-insensitive).
fn credentials<'a>(authorization: Option<&'a str>, scheme: &str) -> Option<&'a str> {
    let (written, rest) = authorization?.trim().split_once(' ')?;
    written.eq_ignore_ascii_case(scheme).then(|| rest.trim())
}

fn read(file: &Path) -> Result<Vec<[u8; 32]>, TokenError> {
    let text = std::fs::read_to_string(file).map_err(|source| TokenError::Io {
        path: file.to_path_buf(),
        source,
    })?;
    let digests: Vec<[u8; 32]> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|t| Sha256::digest(t.as_bytes()).into())
        .collect();
    if digests.is_empty() {
        return Err(TokenError::Empty(file.to_path_buf()));
    }
    Ok(digests)
}

fn constant_time_eq(a: &[u8; 32], b: &[u8; 32]) -> bool {
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tokens(text: &str) -> (tempfile::NamedTempFile, Tokens) {
        let f = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(f.path(), text).unwrap();
        let t = Tokens::load(f.path()).unwrap();
        (f, t)
    }

    #[test]
    fn comments_and_blank_lines_are_ignored_and_lines_trimmed() {
        let (_f, t) = tokens("# ops team\n\n  alpha  \nbeta\n");
        assert!(t.allows(Some("Bearer alpha")));
        assert!(t.allows(Some("bearer beta")));
        assert!(!t.allows(Some("Bearer # ops team")));
    }

    #[test]
    fn missing_or_wrong_tokens_are_refused() {
        let (_f, t) = tokens("alpha\n");
        assert!(!t.allows(None));
        assert!(!t.allows(Some("alpha")));
        assert!(!t.allows(Some("Bearer alph")));
        assert!(!t.allows(Some("Basic alpha")));
    }

    #[test]
    fn the_admin_port_also_takes_the_token_as_a_basic_password() {
        use base64::Engine as _;
        let (_f, t) = tokens("alpha\n");
        let basic = |user_pass: &str| {
            format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(user_pass)
            )
        };
        assert!(t.allows_http(Some(&basic("anyone:alpha"))));
        assert!(t.allows_http(Some(&basic(":alpha"))));
        assert!(t.allows_http(Some("Bearer alpha")));
        assert!(!t.allows_http(Some(&basic("alpha:"))));
        assert!(!t.allows_http(Some(&basic("anyone:alph"))));
        assert!(!t.allows_http(Some("Basic !!not-base64")));
        assert!(
            !t.allows(Some(&basic("anyone:alpha"))),
            "gRPC takes bearer tokens only"
        );
    }

    #[test]
    fn a_file_without_tokens_is_an_error() {
        let f = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(f.path(), "# nothing\n").unwrap();
        assert!(matches!(Tokens::load(f.path()), Err(TokenError::Empty(_))));
    }

    #[test]
    fn reload_picks_up_new_tokens() {
        let (f, t) = tokens("alpha\n");
        std::fs::write(f.path(), "gamma\n").unwrap();
        t.reload().unwrap();
        assert!(t.allows(Some("Bearer gamma")) && !t.allows(Some("Bearer alpha")));
    }
}
