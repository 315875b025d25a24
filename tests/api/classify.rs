use tonic::Code;
use triage::mail::Limits;
use triage::server::Config;
use triage::server::pb;

use crate::helpers::{TestServer, raw, ticket};

#[tokio::test]
async fn classify_returns_a_full_verdict_for_a_ticket() {
    let server = TestServer::start().await;
    let mut client = server.client().await;
    let request = ticket(
        "t-1",
        "Rechnung mit falscher USt-IdNr.",
        "Bitte korrigieren Sie die Rechnungsadresse.",
    );
    let v = client.classify(request).await.unwrap().into_inner();
    assert_eq!(v.id, "t-1");
    assert_eq!(v.queue, "contract");
    assert_eq!(v.destination, "contract@trustedshops.com");
    assert!((0.0..=1.0).contains(&v.confidence));
    assert_eq!(v.ranking[0].queue, v.queue);
    assert!(
        v.hits
            .iter()
            .any(|h| h.queue == "contract" && !h.matched.is_empty())
    );
    assert_eq!(v.language, "de");
    let ruleset = client
        .get_ruleset(pb::GetRulesetRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(v.ruleset_version, ruleset.version);
    server.stop().await;
}

#[tokio::test]
async fn classify_decodes_a_raw_email() {
    let server = TestServer::start().await;
    let mut client = server.client().await;
    let eml = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/dev/emails/d-eml-02.eml"
    ))
    .unwrap();
    let v = client.classify(raw("eml-2", eml)).await.unwrap().into_inner();
    assert_eq!(v.id, "eml-2");
    assert_eq!(v.queue, "certification");
    server.stop().await;
}

#[tokio::test]
async fn a_request_without_ticket_or_raw_email_is_invalid_argument() {
    let server = TestServer::start().await;
    let mut client = server.client().await;
    let status = client
        .classify(pb::ClassifyRequest {
            id: "e".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert!(
        status.message().contains("ticket") && status.message().contains("raw_email"),
        "{status:?}"
    );
    // Set but empty: nothing to classify either.
    for empty in [
        crate::helpers::raw("e", Vec::new()),
        crate::helpers::ticket("e", " ", ""),
    ] {
        let status = client.classify(empty).await.unwrap_err();
        assert_eq!(status.code(), Code::InvalidArgument);
    }
    server.stop().await;
}

#[tokio::test]
async fn an_oversized_message_is_refused_and_the_connection_keeps_serving() {
    let config = Config {
        limits: Limits {
            max_message_bytes: 4096,
            ..Limits::default()
        },
        ..Config::default()
    };
    let server = TestServer::with(Some(crate::helpers::rules_dir()), config).await;
    let mut client = server.client().await;

    // Over the limit but within the decoder's slack: a clear RESOURCE_EXHAUSTED from triage.
    let status = client.classify(raw("big", vec![b'a'; 10_000])).await.unwrap_err();
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
    assert!(status.message().contains("exceeds the limit"), "{status:?}");

    // Far over: refused while decoding; still a status, not a dropped connection.
    let status = client
        .classify(raw("huge", vec![b'a'; 2 * 1024 * 1024]))
        .await
        .unwrap_err();
    assert!(
        matches!(
            status.code(),
            Code::ResourceExhausted | Code::OutOfRange | Code::InvalidArgument
        ),
        "{status:?}"
    );

    let v = client
        .classify(ticket("after", "Factura", "duplicada"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(v.id, "after");
    server.stop().await;
}

#[tokio::test]
async fn a_tiny_deadline_is_honoured() {
    let server = TestServer::start().await;
    let mut client = server.client().await;
    let body = "Die Rechnung ist falsch. ".repeat(20_000);
    let mut request = tonic::Request::new(ticket("slow", "Rechnung", &body));
    request.set_timeout(std::time::Duration::from_micros(1));
    let status = client.classify(request).await.unwrap_err();
    assert!(
        matches!(status.code(), Code::Cancelled | Code::DeadlineExceeded),
        "{status:?}"
    );
    server.stop().await;
}

#[tokio::test]
async fn get_ruleset_describes_the_queues() {
    let server = TestServer::start().await;
    let mut client = server.client().await;
    let rs = client
        .get_ruleset(pb::GetRulesetRequest {})
        .await
        .unwrap()
        .into_inner();
    assert!(rs.version.starts_with("sha256:"));
    assert_eq!(rs.queues.len(), 9);
    let care = rs.queues.iter().find(|q| q.id == "customer_care").unwrap();
    assert_eq!(care.destination, "service@trustedshops.com");
    assert!(rs.rule_count > 0);
    assert!(rs.loaded_at.ends_with('Z'));
    assert_eq!(rs.version, server.rules.current().engine.ruleset().version);
    server.stop().await;
}
