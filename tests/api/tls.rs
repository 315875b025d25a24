use std::path::Path;

use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Identity};
use triage::server::pb::triage_client::TriageClient;
use triage::server::{Config, TlsFiles};

use crate::helpers::{TestServer, rules_dir, ticket};

pub(crate) struct Pki {
    pub(crate) dir: tempfile::TempDir,
    pub(crate) ca_pem: String,
    client_cert: String,
    client_key: String,
}

/// A CA, a server certificate for localhost and a client certificate, written to files.
pub(crate) fn pki() -> Pki {
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();
    let server_key = KeyPair::generate().unwrap();
    let server = CertificateParams::new(vec!["localhost".to_string()])
        .unwrap()
        .signed_by(&server_key, &ca)
        .unwrap();
    let client_key = KeyPair::generate().unwrap();
    let client = CertificateParams::new(vec!["client".to_string()])
        .unwrap()
        .signed_by(&client_key, &ca)
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, text: &str| std::fs::write(dir.path().join(name), text).unwrap();
    write("ca.pem", &ca.pem());
    write("server.pem", &server.pem());
    write("server.key", &server_key.serialize_pem());
    Pki {
        ca_pem: ca.pem(),
        client_cert: client.pem(),
        client_key: client_key.serialize_pem(),
        dir,
    }
}

pub(crate) fn tls_files(dir: &Path, mutual: bool) -> TlsFiles {
    TlsFiles {
        cert: dir.join("server.pem"),
        key: dir.join("server.key"),
        client_ca: mutual.then(|| dir.join("ca.pem")),
    }
}

pub(crate) async fn connect(
    server: &TestServer,
    tls: ClientTlsConfig,
) -> Result<TriageClient<Channel>, tonic::transport::Error> {
    let url = format!("https://localhost:{}", server.addr.port());
    let channel = Channel::from_shared(url)
        .unwrap()
        .tls_config(tls)?
        .connect()
        .await?;
    Ok(TriageClient::new(channel))
}

#[tokio::test]
async fn tls_serves_clients_that_trust_the_ca() {
    let pki = pki();
    let config = Config {
        tls: Some(tls_files(pki.dir.path(), false)),
        ..Config::default()
    };
    let server = TestServer::with(Some(rules_dir()), config).await;
    let tls = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(&pki.ca_pem))
        .domain_name("localhost");
    let mut client = connect(&server, tls).await.unwrap();
    let v = client
        .classify(ticket("tls", "Rechnung", ""))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(v.queue, "contract");
    server.stop().await;
}

#[tokio::test]
async fn mutual_tls_refuses_clients_without_a_certificate() {
    let pki = pki();
    let config = Config {
        tls: Some(tls_files(pki.dir.path(), true)),
        ..Config::default()
    };
    let server = TestServer::with(Some(rules_dir()), config).await;

    let anonymous = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(&pki.ca_pem))
        .domain_name("localhost");
    let refused = match connect(&server, anonymous).await {
        Err(_) => true,
        Ok(mut client) => client.classify(ticket("anon", "Rechnung", "")).await.is_err(),
    };
    assert!(refused, "a client without a certificate was served");

    let identified = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(&pki.ca_pem))
        .identity(Identity::from_pem(&pki.client_cert, &pki.client_key))
        .domain_name("localhost");
    let mut client = connect(&server, identified).await.unwrap();
    assert!(client.classify(ticket("mtls", "Rechnung", "")).await.is_ok());
    server.stop().await;
}

#[tokio::test]
async fn replaced_certificates_are_picked_up_without_a_restart() {
    let old = pki();
    let config = Config {
        tls: Some(tls_files(old.dir.path(), false)),
        ..Config::default()
    };
    let server = TestServer::with(Some(rules_dir()), config).await;
    let trusts = |pem: &str| {
        ClientTlsConfig::new()
            .ca_certificate(Certificate::from_pem(pem))
            .domain_name("localhost")
    };
    let mut client = connect(&server, trusts(&old.ca_pem)).await.unwrap();
    assert!(client.classify(ticket("old", "Rechnung", "")).await.is_ok());

    // A new CA and server certificate, written over the old files as a rotation would.
    let new = pki();
    for name in ["server.pem", "server.key"] {
        let tmp = old.dir.path().join(format!(".{name}.tmp"));
        std::fs::copy(new.dir.path().join(name), &tmp).unwrap();
        std::fs::rename(&tmp, old.dir.path().join(name)).unwrap();
    }
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    loop {
        if let Ok(mut c) = connect(&server, trusts(&new.ca_pem)).await
            && c.classify(ticket("new", "Rechnung", "")).await.is_ok()
        {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the new certificate was not served within 15 s"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let refused = match connect(&server, trusts(&old.ca_pem)).await {
        Err(_) => true,
        Ok(mut c) => c.classify(ticket("stale", "Rechnung", "")).await.is_err(),
    };
    assert!(refused, "new connections must use the new certificate");
    server.stop().await;
}

/// `GET path` on the admin port over TLS, trusting `ca_pem`; the response as text.
async fn admin_get_over_tls(server: &TestServer, ca_pem: &str, path: &str) -> std::io::Result<String> {
    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::{CertificateDer, ServerName};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
        roots.add(cert.unwrap()).unwrap();
    }
    let config = rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(std::sync::Arc::new(config));
    let tcp = tokio::net::TcpStream::connect(server.admin).await?;
    let mut tls = connector
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await?;
    tls.write_all(format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n").as_bytes())
        .await?;
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match tls.read(&mut buf).await {
            Ok(0) => break,
            Ok(n) => out.extend_from_slice(&buf[..n]),
            // The server may close without a TLS close_notify once it has answered.
            Err(_) if !out.is_empty() => break,
            Err(e) => return Err(e),
        }
    }
    Ok(String::from_utf8_lossy(&out).into_owned())
}

/// The admin port speaks TLS when asked, with the gRPC certificate or one of its own, so
/// webhook tokens never travel in clear; plain HTTP is then refused.
#[tokio::test]
async fn the_admin_port_serves_tls_with_the_grpc_certificate_or_its_own() {
    let pki = pki();
    let config = Config {
        tls: Some(tls_files(pki.dir.path(), true)),
        admin_tls: Some(tls_files(pki.dir.path(), false)),
        ..Config::default()
    };
    let server = TestServer::with(Some(rules_dir()), config).await;
    let response = admin_get_over_tls(&server, &pki.ca_pem, "/healthz")
        .await
        .unwrap();
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    let plain = reqwest::Client::new()
        .get(server.admin_url("/healthz"))
        .timeout(std::time::Duration::from_secs(5))
        .send()
        .await;
    assert!(
        plain.is_err_and(|e| !e.is_timeout()),
        "plain HTTP must be refused"
    );
    server.stop().await;

    let own = self::pki();
    let config = Config {
        tls: Some(tls_files(pki.dir.path(), false)),
        admin_tls: Some(tls_files(own.dir.path(), false)),
        ..Config::default()
    };
    let server = TestServer::with(Some(rules_dir()), config).await;
    let response = admin_get_over_tls(&server, &own.ca_pem, "/readyz").await.unwrap();
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert!(admin_get_over_tls(&server, &pki.ca_pem, "/readyz").await.is_err());
    server.stop().await;
}
