use std::path::Path;

use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Identity};
use triage::server::pb::triage_client::TriageClient;
use triage::server::{Config, TlsFiles};

use crate::helpers::{TestServer, rules_dir, ticket};

struct Pki {
    dir: tempfile::TempDir,
    ca_pem: String,
    client_cert: String,
    client_key: String,
}

/// A CA, a server certificate for localhost and a client certificate, written to files.
fn pki() -> Pki {
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

fn tls_files(dir: &Path, mutual: bool) -> TlsFiles {
    TlsFiles {
        cert: dir.join("server.pem"),
        key: dir.join("server.key"),
        client_ca: mutual.then(|| dir.join("ca.pem")),
    }
}

async fn connect(
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
