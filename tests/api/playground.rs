//! The playground on the admin port: the page, `POST /v1/explain`, `GET /v1/ruleset` and their
//! authentication (the page in a real browser: [`crate::browser`]).

use std::path::PathBuf;
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::{Value, json};
use triage::server::{Config, Tokens};

use crate::helpers::{TestServer, copy_rules, rules_dir};

pub fn eml(name: &str) -> Vec<u8> {
    std::fs::read(format!(
        "{}/tests/data/dev/emails/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

fn raw_body(name: &str) -> Value {
    json!({"id": name, "raw_email": base64::engine::general_purpose::STANDARD.encode(eml(name))})
}

async fn post(server: &TestServer, path: &str, body: &Value) -> (u16, Value) {
    let response = reqwest::Client::new()
        .post(server.admin_url(path))
        .json(body)
        .send()
        .await
        .unwrap();
    (response.status().as_u16(), response.json().await.unwrap())
}

/// The text at `start..end` of the explanation's field `field`.
fn text_at<'a>(explanation: &'a Value, field: &str, start: &Value, end: &Value) -> &'a str {
    let text = explanation["fields"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["field"] == field)
        .unwrap_or_else(|| panic!("no field {field}"))["text"]
        .as_str()
        .unwrap();
    &text[start.as_u64().unwrap() as usize..end.as_u64().unwrap() as usize]
}

#[tokio::test]
async fn the_page_is_one_document_with_a_policy_that_allows_only_itself() {
    let server = TestServer::start().await;
    let response = reqwest::get(server.admin_url("/")).await.unwrap();
    assert_eq!(response.status(), 200);
    let headers = response.headers().clone();
    assert!(headers["content-type"].to_str().unwrap().starts_with("text/html"));
    let csp = headers["content-security-policy"].to_str().unwrap();
    assert!(
        csp.contains("default-src 'none'") && csp.contains("connect-src 'self'"),
        "{csp}"
    );
    let html = response.text().await.unwrap();
    assert!(html.contains("<script>") && html.contains("<style>"), "{html}");
    assert!(
        !html.contains("src=\"http") && !html.contains("<link"),
        "external assets"
    );
    server.stop().await;
}

/// The same message through the webhook and the playground gets the same verdict, and every
/// position of the explanation points at the words it names: in the subject, the new text and
/// the quoted history of a real email, past its multibyte characters.
#[tokio::test]
async fn explanation_positions_point_at_the_evidence_in_the_message() {
    let server = TestServer::start().await;
    let body = raw_body("d-eml-04.eml");
    let (status, explanation) = post(&server, "/v1/explain", &body).await;
    assert_eq!(status, 200, "{explanation}");
    let (_, verdict) = post(&server, "/v1/classify", &body).await;
    assert_eq!(explanation["verdict"], verdict);
    assert_eq!(verdict["queue"], "technical_success");

    let evidence = explanation["evidence"].as_array().unwrap();
    let mut fields = std::collections::BTreeSet::new();
    for e in evidence.iter().filter(|e| e["field"] != "signal") {
        let field = e["field"].as_str().unwrap();
        assert_eq!(
            text_at(&explanation, field, &e["start"], &e["end"]),
            e["matched"],
            "{e}"
        );
        let location = &e["location"];
        assert!(location["file"].as_str().unwrap().ends_with(".toml") && location["line"].as_u64() > Some(0));
        fields.insert(field.to_string());
    }
    for zone in ["subject", "body", "quoted"] {
        assert!(fields.contains(zone), "no evidence in {zone}: {fields:?}");
    }
    let trustbadge = evidence.iter().find(|e| e["matched"] == "Trustbadge").unwrap();
    assert_eq!(trustbadge["rule"], "technical_success.trustbadge_widget");

    let spans = explanation["spans"].as_array().unwrap();
    let span = |kind: &str| {
        let s = spans.iter().find(|s| s["kind"] == kind).unwrap();
        text_at(&explanation, s["field"].as_str().unwrap(), &s["start"], &s["end"]).to_string()
    };
    assert!(
        span("request").contains("Können Sie das bitte"),
        "{}",
        span("request")
    );
    assert!(
        span("negated").contains("hat sich erledigt"),
        "{}",
        span("negated")
    );
    assert_eq!(explanation["reply_subject"], true);
    assert_eq!(explanation["review"]["needs_review"], false);
    let queues = explanation["queues"].as_array().unwrap();
    assert_eq!(queues.len(), 9, "every queue has a score");
    server.stop().await;
}

/// A reply whose new text mentions the thread's own topic in passing, then asks something
/// else: that evidence is marked as an echo of the thread (counted at the echo factor); the new
/// question's is not. The same new text in a reply to another thread echoes nothing.
#[tokio::test]
async fn explain_marks_the_evidence_that_echoes_the_thread() {
    let server = TestServer::start().await;
    let body = "Hallo,\n\nwie binden wir das Trustbadge in Shopware ein?\n\n\
                Den Auditbericht mit den Punkten haben wir gestern im Team durchgesprochen.\n\nGruss";
    let echoes = |explanation: &Value| -> Vec<(String, String)> {
        explanation["evidence"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| {
                e["echo"]
                    .as_bool()
                    .expect("every evidence says whether it echoes")
            })
            .map(|e| {
                (
                    e["rule"].as_str().unwrap().to_string(),
                    e["field"].as_str().unwrap().to_string(),
                )
            })
            .collect()
    };
    let (status, reply) = post(
        &server,
        "/v1/explain",
        &json!({"id": "echo", "subject": "AW: Auditbericht 2025", "body": body}),
    )
    .await;
    assert_eq!(status, 200, "{reply}");
    assert_eq!(reply["verdict"]["queue"], "technical_success", "{reply}");
    assert_eq!(
        echoes(&reply),
        [("certification.audit_report".to_string(), "body".to_string())]
    );
    let (_, other_thread) = post(
        &server,
        "/v1/explain",
        &json!({"id": "echo", "subject": "AW: Webinar", "body": body}),
    )
    .await;
    assert!(echoes(&other_thread).is_empty(), "{other_thread}");
    server.stop().await;
}

#[tokio::test]
async fn explain_refuses_what_the_webhook_refuses() {
    let server = TestServer::start().await;
    let (status, body) = post(&server, "/v1/explain", &json!({"id": "x"})).await;
    assert_eq!(status, 400, "{body}");
    assert!(body["error"].as_str().unwrap().contains("nothing to classify"));
    let wrong_type = reqwest::Client::new()
        .post(server.admin_url("/v1/explain"))
        .header("content-type", "text/plain")
        .body("Rechnung")
        .send()
        .await
        .unwrap();
    assert_eq!(wrong_type.status(), 415);
    server.stop().await;
}

/// Every rule is listed with the file and line it is written at: the line of its `[[rule]]`
/// table, the next one naming its id.
#[tokio::test]
async fn the_ruleset_view_lists_every_rule_with_its_file_and_line() {
    let server = TestServer::start().await;
    let view: Value = reqwest::get(server.admin_url("/v1/ruleset"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let rs = server.rules.current();
    let rs = rs.engine.ruleset();
    assert_eq!(view["version"], rs.version.as_str());
    assert_eq!(view["rules"].as_array().unwrap().len(), rs.rules.len());
    assert_eq!(view["queues"].as_array().unwrap().len(), rs.queues.len());
    assert_eq!(view["examples"].as_array().unwrap().len(), rs.examples.len());
    assert_eq!(view["last_reload"], Value::Null);
    // Each cue with its scope, and a window where its scope is counted in words.
    let cues = view["cues"].as_array().unwrap();
    assert_eq!(cues.len(), rs.cues.len());
    for (shown, cue) in cues.iter().zip(&rs.cues) {
        assert_eq!(shown["id"], cue.id.as_str());
        assert_eq!(shown["window"].as_u64(), cue.window.map(u64::from), "{shown}");
    }
    assert!(cues.iter().any(|c| c["window"].as_u64().is_some()));
    for rule in view["rules"].as_array().unwrap().iter().step_by(7) {
        let file = PathBuf::from(rule["location"]["file"].as_str().unwrap());
        let line = rule["location"]["line"].as_u64().unwrap() as usize;
        let path = if file.is_absolute() {
            file
        } else {
            PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                .join(rules_dir().file_name().unwrap())
                .join(file.file_name().unwrap())
        };
        let text = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[line - 1].trim(), "[[rule]]", "{rule}");
        assert!(lines[line].contains(rule["id"].as_str().unwrap()), "{rule}");
        assert!(
            !rule["conditions"][0]["terms"].as_array().unwrap().is_empty()
                || rule["conditions"][0]["key"] != "any"
        );
    }
    server.stop().await;
}

/// A broken rule file is refused and the ruleset view says so, with every problem at its
/// `file:line:column`, while the last good ruleset keeps serving; fixing it shows the reload.
#[tokio::test]
async fn a_refused_reload_shows_its_problems_in_the_ruleset_view() {
    let dir = copy_rules();
    let server = TestServer::with(Some(dir.path().to_path_buf()), Config::default()).await;
    let serving = server.rules.current().engine.ruleset().version.clone();
    // The rules directory is watched once the server answers.
    assert_eq!(ruleset_view(&server).await["last_reload"], Value::Null);
    let broken = dir.path().join("zz-broken.toml");
    std::fs::write(
        &broken,
        "[[rule]]\nid = \"zz.rule\"\nqueue = \"nowhere\"\nany = [\"x\"]\n",
    )
    .unwrap();
    let view = wait_for_reload(&server, "refused").await;
    assert_eq!(view["version"], serving.as_str(), "the last good ruleset serves");
    let problems = view["last_reload"]["problems"].as_array().unwrap();
    let text = problems[0]["text"].as_str().unwrap();
    assert!(text.contains("zz-broken.toml:3:"), "{problems:?}");
    assert!(text.contains("nowhere"), "{problems:?}");
    assert_eq!(problems[0]["location"]["line"], 3);

    std::fs::write(&broken, "# fixed\n").unwrap();
    let view = wait_for_reload(&server, "reloaded").await;
    assert_ne!(view["version"], serving.as_str());
    assert_eq!(view["last_reload"]["version"], view["version"]);
    server.stop().await;
}

pub async fn ruleset_view(server: &TestServer) -> Value {
    reqwest::get(server.admin_url("/v1/ruleset"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// Waits (at most 15 s) until the ruleset view's last reload has this outcome.
pub async fn wait_for_reload(server: &TestServer, outcome: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let view = ruleset_view(server).await;
        if view["last_reload"]["outcome"] == outcome {
            return view;
        }
        assert!(
            Instant::now() < deadline,
            "no {outcome} reload within 15 s: {}",
            view["last_reload"]
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// With tokens, the page, the explanation and the ruleset need one, as the webhook does: a
/// bearer token, or (what a browser sends after asking) Basic credentials with the token as
/// password. Without one the page asks with a Basic challenge.
#[tokio::test]
async fn the_playground_needs_a_token_when_tokens_are_set() {
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), "s3cret\n").unwrap();
    let config = Config {
        tokens: Some(std::sync::Arc::new(Tokens::load(file.path()).unwrap())),
        ..Config::default()
    };
    let server = TestServer::with(Some(rules_dir()), config).await;
    let http = reqwest::Client::new();
    let basic = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode("lead:s3cret")
    );
    let ticket = json!({"subject": "Rechnung doppelt abgebucht"});

    let page = http.get(server.admin_url("/")).send().await.unwrap();
    assert_eq!(page.status(), 401);
    assert!(
        page.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .starts_with("Basic")
    );
    for auth in [basic.as_str(), "Bearer s3cret"] {
        let page = http
            .get(server.admin_url("/"))
            .header("authorization", auth)
            .send()
            .await
            .unwrap();
        assert_eq!(page.status(), 200, "{auth}");
        let ruleset = http
            .get(server.admin_url("/v1/ruleset"))
            .header("authorization", auth)
            .send()
            .await
            .unwrap();
        assert_eq!(ruleset.status(), 200, "{auth}");
        for path in ["/v1/explain", "/v1/classify"] {
            let answer = http
                .post(server.admin_url(path))
                .header("authorization", auth)
                .json(&ticket)
                .send()
                .await
                .unwrap();
            assert_eq!(answer.status(), 200, "{path} with {auth}");
        }
    }
    for auth in [None, Some("Bearer wrong"), Some("Basic bGVhZDp3cm9uZw==")] {
        let mut explain = http.post(server.admin_url("/v1/explain")).json(&ticket);
        let mut ruleset = http.get(server.admin_url("/v1/ruleset"));
        if let Some(auth) = auth {
            explain = explain.header("authorization", auth);
            ruleset = ruleset.header("authorization", auth);
        }
        assert_eq!(explain.send().await.unwrap().status(), 401, "{auth:?}");
        assert_eq!(ruleset.send().await.unwrap().status(), 401, "{auth:?}");
    }
    server.stop().await;
}
