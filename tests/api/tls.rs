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
