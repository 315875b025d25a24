use tonic::Code;
use tonic::metadata::MetadataValue;
use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};
use triage::server::pb;
use triage::server::{Config, Tokens};

use crate::helpers::{TestServer, rules_dir, ticket};

async fn server_with_tokens() -> (tempfile::NamedTempFile, TestServer) {
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), "# test clients\nsecret-one\n  secret-two  \n").unwrap();
    let tokens = std::sync::Arc::new(Tokens::load(file.path()).unwrap());
    let config = Config {
        tokens: Some(tokens),
        ..Config::default()
    };
    (file, TestServer::with(Some(rules_dir()), config).await)
}

fn with_token(token: &str, req: pb::ClassifyRequest) -> tonic::Request<pb::ClassifyRequest> {
    let mut r = tonic::Request::new(req);
    r.metadata_mut().insert(
        "authorization",
        MetadataValue::try_from(format!("Bearer {token}")).unwrap(),
    );
    r
}

#[tokio::test]
async fn grpc_calls_need_a_valid_bearer_token() {
    let (_file, server) = server_with_tokens().await;
    let mut client = server.client().await;
    let missing = client.classify(ticket("a", "Rechnung", "")).await.unwrap_err();
    assert_eq!(missing.code(), Code::Unauthenticated);
    let wrong = client
        .classify(with_token("secret-three", ticket("a", "Rechnung", "")))
        .await
        .unwrap_err();
    assert_eq!(wrong.code(), Code::Unauthenticated);
    let ok = client
        .classify(with_token("secret-two", ticket("a", "Rechnung", "")))
        .await
        .unwrap();
    assert_eq!(ok.into_inner().queue, "contract");
    let ruleset = client.get_ruleset(pb::GetRulesetRequest {}).await.unwrap_err();
    assert_eq!(ruleset.code(), Code::Unauthenticated);
    server.stop().await;
}

#[tokio::test]
async fn health_stays_open_and_reflection_is_protected() {
    let (_file, server) = server_with_tokens().await;
    let mut health = HealthClient::new(server.channel().await);
    assert!(
        health
            .check(HealthCheckRequest {
                service: String::new()
            })
            .await
            .is_ok()
    );

    use tonic_reflection::pb::v1::ServerReflectionRequest;
    use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
    use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
    let mut reflection = ServerReflectionClient::new(server.channel().await);
    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let status = reflection
        .server_reflection_info(tokio_stream::iter([request]))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated);
    server.stop().await;
}

#[tokio::test]
async fn the_webhook_needs_a_valid_bearer_token() {
    let (_file, server) = server_with_tokens().await;
    let http = reqwest::Client::new();
    let body = serde_json::json!({"id": "w", "subject": "Rechnung", "body": "falsch"});
    let missing = http
        .post(server.admin_url("/v1/classify"))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 401);
    let wrong = http
        .post(server.admin_url("/v1/classify"))
        .bearer_auth("nope")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 401);
    let ok = http
        .post(server.admin_url("/v1/classify"))
        .bearer_auth("secret-one")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
    server.stop().await;
}

#[tokio::test]
async fn a_changed_token_file_is_picked_up_without_a_restart() {
    let (file, server) = server_with_tokens().await;
    let mut client = server.client().await;
    std::fs::write(file.path(), "rotated-token\n").unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    loop {
        if client
            .classify(with_token("rotated-token", ticket("r", "Rechnung", "")))
            .await
            .is_ok()
        {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the new token was not accepted within 15 s"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let old = client
        .classify(with_token("secret-one", ticket("o", "Rechnung", "")))
        .await
        .unwrap_err();
    assert_eq!(old.code(), Code::Unauthenticated);
    server.stop().await;
}
