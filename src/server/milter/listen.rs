//! Where the milter listens: a TCP address or a unix socket, written the way Postfix writes
//! milter addresses (`inet:127.0.0.1:8892`, `unix:/run/triage/milter.sock`) or plainly
//! (`127.0.0.1:8892`, `/run/triage/milter.sock`).

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use tokio::net::{TcpListener, TcpStream, UnixListener, UnixStream};

use super::MilterError;

/// Permissions of a unix socket: the owner and its group may connect (put the MTA's user in
/// triage's group), nobody else.
const SOCKET_MODE: u32 = 0o660;

/// A milter listen address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Address {
    /// `host:port` (an IP address; names are not resolved, as for the other listen flags).
    Inet(SocketAddr),
    /// A unix socket path.
    Unix(PathBuf),
}

impl FromStr for Address {
    type Err = MilterError;

    fn from_str(s: &str) -> Result<Address, MilterError> {
        let s = s.trim();
        let bad = || MilterError::Address(s.to_string());
        if let Some(path) = s.strip_prefix("unix:").or_else(|| s.strip_prefix("local:")) {
            return if path.is_empty() {
                Err(bad())
            } else {
                Ok(Address::Unix(PathBuf::from(path)))
            };
        }
        if let Some(inet) = s.strip_prefix("inet6:").or_else(|| s.strip_prefix("inet:")) {
            return inet.parse().map(Address::Inet).map_err(|_| bad());
        }
        if let Ok(addr) = s.parse() {
            return Ok(Address::Inet(addr));
        }
        if s.contains('/') {
            return Ok(Address::Unix(PathBuf::from(s)));
        }
        Err(bad())
    }
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Address::Inet(addr) => write!(f, "inet:{addr}"),
            Address::Unix(path) => write!(f, "unix:{}", path.display()),
        }
    }
}

/// A bound milter listener. A unix socket's file is removed when the listener is dropped.
#[derive(Debug)]
pub enum Listener {
    /// TCP.
    Tcp(TcpListener),
    /// A unix socket and its path.
    Unix(UnixListener, PathBuf),
}

/// An accepted connection from the MTA.
#[derive(Debug)]
pub(super) enum Connection {
    Tcp(TcpStream),
    Unix(UnixStream),
}

impl Listener {
    /// Binds `address`. A unix socket file left behind by a process that is gone is replaced;
    /// one that still answers, or a path that is not a socket, is an error.
    pub async fn bind(address: &Address) -> Result<Listener, MilterError> {
        let bind_error = |source| MilterError::Bind {
            address: address.to_string(),
            source,
        };
        match address {
            Address::Inet(addr) => TcpListener::bind(addr)
                .await
                .map(Listener::Tcp)
                .map_err(bind_error),
            Address::Unix(path) => {
                remove_stale_socket(path).await?;
                let listener = UnixListener::bind(path).map_err(bind_error)?;
                // From here on the listener owns the file and removes it when dropped.
                let listener = Listener::Unix(listener, path.clone());
                use std::os::unix::fs::PermissionsExt;
                std::fs::set_permissions(path, std::fs::Permissions::from_mode(SOCKET_MODE))
                    .map_err(bind_error)?;
                Ok(listener)
            }
        }
    }

    /// The address actually bound (with the port chosen by the system for port 0).
    pub fn local_addr(&self) -> std::io::Result<Address> {
        match self {
            Listener::Tcp(l) => l.local_addr().map(Address::Inet),
            Listener::Unix(_, path) => Ok(Address::Unix(path.clone())),
        }
    }

    pub(super) async fn accept(&self) -> std::io::Result<Connection> {
        match self {
            Listener::Tcp(l) => {
                let (stream, _) = l.accept().await?;
                // Replies are small and the MTA waits for each: no Nagle delay.
                let _ = stream.set_nodelay(true);
                Ok(Connection::Tcp(stream))
            }
            Listener::Unix(l, _) => Ok(Connection::Unix(l.accept().await?.0)),
        }
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        if let Listener::Unix(_, path) = self {
            let _ = std::fs::remove_file(path);
        }
    }
}

/// Removes a socket file that nobody listens on any more (a crashed or killed process).
async fn remove_stale_socket(path: &Path) -> Result<(), MilterError> {
    use std::os::unix::fs::FileTypeExt;
    let Ok(meta) = std::fs::symlink_metadata(path) else {
        return Ok(());
    };
    let in_use = |why: &str| MilterError::Bind {
        address: format!("unix:{}", path.display()),
        source: std::io::Error::new(std::io::ErrorKind::AddrInUse, why.to_string()),
    };
    if !meta.file_type().is_socket() {
        return Err(in_use("the path exists and is not a socket"));
    }
    if UnixStream::connect(path).await.is_ok() {
        return Err(in_use("another process is listening on this socket"));
    }
    std::fs::remove_file(path).map_err(|source| MilterError::Bind {
        address: format!("unix:{}", path.display()),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_read_in_postfix_and_plain_notation() {
        let inet = Address::Inet("127.0.0.1:8892".parse().unwrap());
        assert_eq!("127.0.0.1:8892".parse::<Address>().unwrap(), inet);
        assert_eq!("inet:127.0.0.1:8892".parse::<Address>().unwrap(), inet);
        assert_eq!(
            "inet6:[::1]:8892".parse::<Address>().unwrap(),
            Address::Inet("[::1]:8892".parse().unwrap())
        );
        let unix = Address::Unix(PathBuf::from("/run/triage/milter.sock"));
        assert_eq!("/run/triage/milter.sock".parse::<Address>().unwrap(), unix);
        assert_eq!("unix:/run/triage/milter.sock".parse::<Address>().unwrap(), unix);
        assert_eq!("local:/run/triage/milter.sock".parse::<Address>().unwrap(), unix);
        assert_eq!(unix.to_string(), "unix:/run/triage/milter.sock");
        assert_eq!(inet.to_string(), "inet:127.0.0.1:8892");
    }

    #[test]
    fn names_and_bare_words_are_refused() {
        for bad in [
            "localhost:8892",
            "milter",
            "inet:",
            "unix:",
            "inet:localhost:1",
            "",
        ] {
            assert!(bad.parse::<Address>().is_err(), "{bad}");
        }
    }

    #[tokio::test]
    async fn a_stale_socket_is_replaced_and_a_live_one_is_not() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("milter.sock");
        let address = Address::Unix(path.clone());
        // A socket file whose process is gone.
        drop(std::os::unix::net::UnixListener::bind(&path).unwrap());
        assert!(path.exists());
        let live = Listener::bind(&address).await.unwrap();
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, SOCKET_MODE);
        let err = Listener::bind(&address).await.unwrap_err();
        assert!(err.to_string().contains("another process"), "{err}");
        drop(live);
        assert!(!path.exists(), "the socket file is removed with the listener");
        std::fs::write(&path, "not a socket").unwrap();
        let err = Listener::bind(&address).await.unwrap_err();
        assert!(err.to_string().contains("not a socket"), "{err}");
        assert!(path.exists(), "a regular file is never removed");
    }
}
