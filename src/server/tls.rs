//! TLS for the gRPC and admin ports, reloadable: certificates are read again on SIGHUP or when
//! their files change, and new connections use the new ones while established ones keep theirs.
//!
//! triage terminates TLS itself (rustls through tokio-rustls) in its accept loop
//! ([`super::conn`]), under the connection's handshake deadline.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arc_swap::ArcSwap;
use rustls::ServerConfig;
use rustls::server::WebPkiClientVerifier;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::TlsAcceptor;

use super::TlsFiles;

/// Why TLS material could not be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TlsError {
    /// A file could not be read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// A file holds no usable PEM item of the expected kind.
    #[error("{path}: {what}")]
    Pem {
        /// The file.
        path: PathBuf,
        /// What was expected or wrong.
        what: String,
    },
    /// rustls refused the material (key does not match the certificate, bad CA, …).
    #[error("TLS configuration: {0}")]
    Config(String),
}

/// The current TLS configuration, swapped on reload.
#[derive(Debug)]
pub struct Tls {
    files: TlsFiles,
    /// Protocols offered in ALPN (`h2` for gRPC, `http/1.1` for the admin port).
    alpn: Vec<Vec<u8>>,
    config: ArcSwap<ServerConfig>,
}

impl Tls {
    /// Reads the certificate, key and (for mutual TLS) client CA, for a port speaking `alpn`
    /// (e.g. `b"h2"`).
    pub fn load(files: TlsFiles, alpn: &[u8]) -> Result<Tls, TlsError> {
        let alpn = vec![alpn.to_vec()];
        let config = build(&files, &alpn)?;
        Ok(Tls {
            files,
            alpn,
            config: ArcSwap::from_pointee(config),
        })
    }

    /// Reads the files again; on error the current configuration stays.
    pub fn reload(&self) -> Result<(), TlsError> {
        self.config.store(Arc::new(build(&self.files, &self.alpn)?));
        Ok(())
    }

    /// The files, for watching.
    pub fn files(&self) -> Vec<PathBuf> {
        let mut v = vec![self.files.cert.clone(), self.files.key.clone()];
        v.extend(self.files.client_ca.clone());
        v
    }

    /// An acceptor with the configuration current now (new connections pick up reloads).
    pub fn acceptor(&self) -> TlsAcceptor {
        TlsAcceptor::from(self.config.load_full())
    }
}

fn read(path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Io {
        path: path.to_path_buf(),
        source,
    })
}

fn certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let pem = read(path)?;
    let certs: Result<Vec<_>, _> = CertificateDer::pem_slice_iter(&pem).collect();
    let certs = certs.map_err(|e| TlsError::Pem {
        path: path.to_path_buf(),
        what: e.to_string(),
    })?;
    if certs.is_empty() {
        return Err(TlsError::Pem {
            path: path.to_path_buf(),
            what: "no CERTIFICATE in the file".into(),
        });
    }
    Ok(certs)
}

fn build(files: &TlsFiles, alpn: &[Vec<u8>]) -> Result<ServerConfig, TlsError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let chain = certificates(&files.cert)?;
    let key = PrivateKeyDer::from_pem_slice(&read(&files.key)?).map_err(|e| TlsError::Pem {
        path: files.key.clone(),
        what: format!("no private key: {e}"),
    })?;
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::Config(e.to_string()))?;
    let builder = match &files.client_ca {
        Some(ca) => {
            let mut roots = rustls::RootCertStore::empty();
            for cert in certificates(ca)? {
                roots
                    .add(cert)
                    .map_err(|e| TlsError::Config(format!("{}: {e}", ca.display())))?;
            }
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                .build()
                .map_err(|e| TlsError::Config(e.to_string()))?;
            builder.with_client_cert_verifier(verifier)
        }
        None => builder.with_no_client_auth(),
    };
    let mut config = builder
        .with_single_cert(chain, key)
        .map_err(|e| TlsError::Config(e.to_string()))?;
    config.alpn_protocols = alpn.to_vec();
    Ok(config)
}
