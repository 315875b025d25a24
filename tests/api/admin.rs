use base64::Engine as _;
use triage::mail::Limits;
use triage::server::Config;

use crate::helpers::{TestServer, rules_dir, ticket};

#[tokio::test]
async fn probes_answer_and_readiness_names_the_version() {
    let server = TestServer::start().await;
    let http = reqwest::Client::new();
    let health = http.get(server.admin_url("/healthz")).send().await.unwrap();
    assert_eq!(health.status(), 200);
    let ready = http.get(server.admin_url("/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), 200);
    let text = ready.text().await.unwrap();
    assert!(
        text.contains(&server.rules.current().engine.ruleset().version),
        "{text}"
    );
    server.stop().await;
}

#[tokio::test]
async fn metrics_move_after_grpc_and_http_calls() {
    let server = TestServer::start().await;
    let mut client = server.client().await;
    client
        .classify(ticket("m", "Abmahnung erhalten", ""))
        .await
        .unwrap();
    let http = reqwest::Client::new();
    let body = serde_json::json!({"id": "w", "subject": "Abmahnung erhalten"});
    http.post(server.admin_url("/v1/classify"))
        .json(&body)
        .send()
        .await
        .unwrap();
    let text = http
        .get(server.admin_url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let counted = |interface: &str| {
        text.lines().any(|l| {
            l.starts_with("triage_classifications_total{")
                && l.contains("queue=\"legal\"")
                && l.contains(&format!("interface=\"{interface}\""))
        })
    };
    assert!(counted("Classify") && counted("http"), "{text}");
    assert!(text.contains("triage_classify_seconds_bucket"), "{text}");
    assert!(text.contains("triage_rule_hits_total{rule="), "{text}");
    assert!(text.contains("triage_ruleset_info{version="), "{text}");
    server.stop().await;
}

#[tokio::test]
async fn the_webhook_classifies_tickets_and_raw_emails() {
    let server = TestServer::start().await;
    let http = reqwest::Client::new();
    let body = serde_json::json!({"id": 17, "subject": "Pedido no recibido", "body": "Compré en una tienda con protección al comprador y el paquete nunca llegó.", "from": "ana@example.es", "to": ["service@trustedshops.com"]});
    let v: serde_json::Value = http
        .post(server.admin_url("/v1/classify"))
        .json(&body)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["id"], "17");
    assert_eq!(v["queue"], "customer_care");
    for key in [
        "destination",
        "confidence",
        "needs_review",
        "ranking",
        "hits",
        "language",
        "ruleset_version",
    ] {
        assert!(v.get(key).is_some(), "{key} missing in {v}");
    }

    let eml = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/dev/emails/d-eml-07.eml"
    ))
    .unwrap();
    let body =
        serde_json::json!({"id": "e7", "raw_email": base64::engine::general_purpose::STANDARD.encode(eml)});
    let v: serde_json::Value = http
        .post(server.admin_url("/v1/classify"))
        .json(&body)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["id"], "e7");
    assert_eq!(v["queue"], "legal");
    server.stop().await;
}

#[tokio::test]
async fn the_webhook_answers_400_for_bad_json_and_413_over_the_limit() {
    let config = Config {
        limits: Limits {
            max_message_bytes: 1000,
            ..Limits::default()
        },
        ..Config::default()
    };
    let server = TestServer::with(Some(rules_dir()), config).await;
    let http = reqwest::Client::new();
    let bad = http
        .post(server.admin_url("/v1/classify"))
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);
    let err: serde_json::Value = bad.json().await.unwrap();
    assert!(err["error"].as_str().unwrap().contains("invalid JSON"));
    let wrong_type = http
        .post(server.admin_url("/v1/classify"))
        .body(r#"{"subject": 5}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(wrong_type.status(), 400);

    let huge = serde_json::json!({"id": "h", "body": "x".repeat(200_000)});
    let too_big = http
        .post(server.admin_url("/v1/classify"))
        .json(&huge)
        .send()
        .await
        .unwrap();
    assert_eq!(too_big.status(), 413);
    let raw = base64::engine::general_purpose::STANDARD.encode(vec![b'a'; 1500]);
    let too_big = http
        .post(server.admin_url("/v1/classify"))
        .json(&serde_json::json!({"raw_email": raw}))
        .send()
        .await
        .unwrap();
    assert_eq!(too_big.status(), 413);
    server.stop().await;
}

/// The webhook takes its permit before reading the body: at the limit, a large body that is
/// still arriving is refused at once (503), not buffered first.
#[tokio::test]
async fn the_webhook_is_shed_before_its_body_is_read() {
    use std::time::Duration;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio_stream::StreamExt;

    let config = Config {
        max_concurrency: 1,
        ..Config::default()
    };
    let server = TestServer::with(Some(rules_dir()), config).await;
    let mut client = server.client().await;
    let (tx, rx) = tokio::sync::mpsc::channel(4);
    let mut held = client
        .classify_stream(tokio_stream::wrappers::ReceiverStream::new(rx))
        .await
        .unwrap()
        .into_inner();
    tx.send(ticket("held", "Rechnung", "")).await.unwrap();
    assert_eq!(held.next().await.unwrap().unwrap().id, "held");

    let mut tcp = tokio::net::TcpStream::connect(server.admin).await.unwrap();
    tcp.write_all(
        b"POST /v1/classify HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 5000000\r\n\r\n{\"id\":\"slow\",\"body\":\"",
    )
    .await
    .unwrap();
    tcp.write_all(&vec![b'x'; 64 * 1024]).await.unwrap();
    let mut head = vec![0u8; 256];
    let n = tokio::time::timeout(Duration::from_secs(5), tcp.read(&mut head))
        .await
        .expect("no answer while the body is incomplete: it is being buffered")
        .unwrap();
    let head = String::from_utf8_lossy(&head[..n]);
    assert!(head.starts_with("HTTP/1.1 503"), "{head}");
    drop(tx);
    server.stop().await;
}

/// The smaller points of the webhook: ids beyond 64 bits keep their digits, the body must be
/// JSON (by its Content-Type), every error is JSON (413 included), a request with nothing to
/// classify is refused as gRPC refuses it, and the id and language count towards the limit.
#[tokio::test]
async fn the_webhook_keeps_big_ids_checks_the_content_type_and_answers_json_errors() {
    let config = Config {
        limits: Limits {
            max_message_bytes: 2000,
            ..Limits::default()
        },
        ..Config::default()
    };
    let server = TestServer::with(Some(rules_dir()), config).await;
    let http = reqwest::Client::new();
    let post = |body: String, content_type: &'static str| {
        http.post(server.admin_url("/v1/classify"))
            .header("content-type", content_type)
            .body(body)
            .send()
    };

    let big = post(
        r#"{"id": 18446744073709551616123, "subject": "Rechnung"}"#.into(),
        "application/json",
    )
    .await
    .unwrap();
    assert_eq!(big.status(), 200);
    let v: serde_json::Value = big.json().await.unwrap();
    assert_eq!(v["id"], "18446744073709551616123");

    let form = post(
        r#"{"subject": "Rechnung"}"#.into(),
        "application/x-www-form-urlencoded",
    )
    .await
    .unwrap();
    assert_eq!(form.status(), 415);
    assert!(form.json::<serde_json::Value>().await.unwrap()["error"].is_string());
    let charset = post(
        r#"{"subject": "Rechnung"}"#.into(),
        "application/json; charset=utf-8",
    )
    .await
    .unwrap();
    assert_eq!(charset.status(), 200);

    let too_big = post(
        format!(r#"{{"body": "{}"}}"#, "x".repeat(100_000)),
        "application/json",
    )
    .await
    .unwrap();
    assert_eq!(too_big.status(), 413);
    assert!(
        too_big.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/json")
    );
    assert!(too_big.json::<serde_json::Value>().await.unwrap()["error"].is_string());

    for nothing in [r#"{}"#, r#"{"raw_email": ""}"#, r#"{"id": "x", "subject": "  "}"#] {
        let r = post(nothing.into(), "application/json").await.unwrap();
        assert_eq!(r.status(), 400, "{nothing}");
    }

    // A raw email under the limit, with an id that takes the request over it.
    let raw = base64::engine::general_purpose::STANDARD.encode(vec![b'a'; 1500]);
    let r = post(
        serde_json::json!({"id": "i".repeat(600), "raw_email": raw}).to_string(),
        "application/json",
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 413);
    server.stop().await;
}
