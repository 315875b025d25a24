//! The playground on the admin port: the page, `POST /v1/explain`, `GET /v1/ruleset`, their
//! authentication, and the page rendered by a real headless Chromium (skipped, saying so,
//! where Chromium is not installed).

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::{Value, json};
use triage::server::{Config, Tokens};

use crate::helpers::{TestServer, copy_rules, rules_dir};

fn eml(name: &str) -> Vec<u8> {
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

async fn ruleset_view(server: &TestServer) -> Value {
    reqwest::get(server.admin_url("/v1/ruleset"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

async fn wait_for_reload(server: &TestServer, outcome: &str) -> Value {
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

// ---------------------------------------------------------------- a real browser

/// The Chromium binary (`TRIAGE_CHROMIUM`, else `chromium` or `chromium-browser` or
/// `google-chrome` on the PATH), or `None` with a message saying the test is skipped.
pub fn chromium() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("TRIAGE_CHROMIUM") {
        return Some(PathBuf::from(path));
    }
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths).find_map(|dir| {
            ["chromium", "chromium-browser", "google-chrome"]
                .iter()
                .map(|name| dir.join(name))
                .find(|p| p.is_file())
        })
    });
    if found.is_none() {
        eprintln!(
            "skipped: Chromium is not installed (Debian package `chromium`; .ci/run installs it, or set TRIAGE_CHROMIUM)"
        );
    }
    found
}

/// Loads `url` in headless Chromium, lets its scripts and requests finish, and returns the
/// DOM as rendered. With `screenshot`, also saves a PNG of the window.
pub fn render(chromium: &std::path::Path, url: &str, screenshot: Option<(&std::path::Path, &str)>) -> String {
    let profile = tempfile::tempdir().unwrap();
    let mut command = Command::new(chromium);
    command
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--hide-scrollbars",
            // Nothing but the page under test: no updates, sync, metrics or other calls home.
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-default-apps",
            "--disable-extensions",
            "--disable-domain-reliability",
            "--no-pings",
            "--virtual-time-budget=10000",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    match screenshot {
        Some((path, size)) => command
            .arg(format!("--window-size={size}"))
            .arg(format!("--screenshot={}", path.display())),
        None => command.arg("--dump-dom"),
    };
    let mut child = command.arg(url).spawn().expect("start chromium");
    // Read while it runs: a DOM larger than the pipe's buffer would otherwise block it.
    let mut stdout = child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut dom = String::new();
        std::io::Read::read_to_string(&mut stdout, &mut dom).map(|_| dom)
    });
    let deadline = Instant::now() + Duration::from_secs(90);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("chromium did not finish within 90 s");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    reader.join().unwrap().unwrap()
}

/// A URL of the playground that fills in a message and explains it on load (the fragment
/// never leaves the browser).
pub fn playground_url(server: &TestServer, fields: &[(&str, &str)]) -> String {
    let fragment: String = fields
        .iter()
        .map(|(k, v)| format!("{k}={}", percent_encode(v)))
        .collect::<Vec<_>>()
        .join("&");
    format!("{}#{fragment}", server.admin_url("/"))
}

fn percent_encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The page rendered by Chromium highlights the evidence in place: each hit a `<mark>` in its
/// queue's colour naming its rule and `file:line`, the request sentence and the negated scope
/// marked, quoted history and signature in their own shaded zones, and the evidence table
/// linking each rule to the ruleset view.
#[tokio::test]
async fn chromium_renders_the_evidence_highlighted_in_place() {
    let Some(chromium) = chromium() else { return };
    let server = TestServer::start().await;
    let raw = String::from_utf8(eml("d-eml-04.eml")).unwrap();
    let url = playground_url(&server, &[("raw", &raw)]);
    let dom = tokio::task::spawn_blocking(move || render(&chromium, &url, None))
        .await
        .unwrap();

    let marks = marks(&dom);
    let trustbadge = marks
        .iter()
        .find(|m| m.text == "Trustbadge")
        .unwrap_or_else(|| panic!("no highlighted Trustbadge in {marks:#?}"));
    assert_eq!(
        trustbadge.attr("data-rule"),
        "technical_success.trustbadge_widget"
    );
    assert!(
        trustbadge
            .attr("data-location")
            .contains("technical_success.toml:"),
        "{trustbadge:?}"
    );
    assert!(trustbadge.attr("class").contains("hit q"), "{trustbadge:?}");
    let rechnung = marks.iter().find(|m| m.text == "Rechnung").unwrap();
    assert_eq!(rechnung.attr("data-queue"), "contract");
    assert_ne!(
        queue_colour(rechnung),
        queue_colour(trustbadge),
        "a colour per queue"
    );
    assert!(
        marks.iter().any(|m| m.text == "SEPA"),
        "evidence in the quoted history"
    );

    let marked = |class: &str, words: &str| {
        regex::Regex::new(&format!(r#"class="{class}">[^<]*{words}"#))
            .unwrap()
            .is_match(&dom)
    };
    assert!(
        marked("req first", "Können Sie das bitte"),
        "request sentence not marked"
    );
    assert!(
        marked("neg first", "hat sich erledigt"),
        "negated scope not marked"
    );
    assert!(dom.contains("class=\"zone zone-quoted\"") && dom.contains("class=\"zone zone-signature\""));
    assert!(dom.contains("id=\"queue\"><span class=\"swatch"), "no verdict");
    assert!(
        dom.contains("technical_success<span class=\"badge auto\""),
        "verdict or its badge missing"
    );
    assert!(
        dom.contains("href=\"#rule=technical_success.trustbadge_widget\""),
        "evidence not linked to its rule"
    );
    assert_eq!(dom.matches("class=\"bar-row").count(), 9, "a bar per queue");
    server.stop().await;
}

/// The ruleset view lists the rules at their `file:line`, and a refused reload with its
/// problems.
#[tokio::test]
async fn chromium_renders_the_ruleset_and_a_refused_reload() {
    let Some(chromium) = chromium() else { return };
    let dir = copy_rules();
    let server = TestServer::with(Some(dir.path().to_path_buf()), Config::default()).await;
    ruleset_view(&server).await;
    std::fs::write(
        dir.path().join("zz-broken.toml"),
        "[[rule]]\nid = \"zz.rule\"\nqueue = \"nowhere\"\nany = [\"x\"]\n",
    )
    .unwrap();
    wait_for_reload(&server, "refused").await;
    let url = format!("{}#ruleset", server.admin_url("/"));
    let dom = tokio::task::spawn_blocking(move || render(&chromium, &url, None))
        .await
        .unwrap();
    assert!(dom.contains("id=\"rule-contract.invoice\""), "rule missing");
    assert!(dom.contains("contract.toml:7</span>"), "rule location missing");
    assert!(dom.contains("The last reload was refused"), "refusal missing");
    assert!(dom.contains("zz-broken.toml:3:"), "problem location missing");
    server.stop().await;
}

/// A `<mark>` of the rendered DOM.
#[derive(Debug)]
struct Mark {
    attrs: String,
    text: String,
}

impl Mark {
    fn attr(&self, name: &str) -> &str {
        let key = format!("{name}=\"");
        let at = self
            .attrs
            .find(&key)
            .unwrap_or_else(|| panic!("no {name} in {}", self.attrs))
            + key.len();
        &self.attrs[at..at + self.attrs[at..].find('"').unwrap()]
    }
}

fn marks(dom: &str) -> Vec<Mark> {
    let re = regex::Regex::new(r"<mark ([^>]*)>([^<]*)</mark>").unwrap();
    re.captures_iter(dom)
        .map(|c| Mark {
            attrs: c[1].to_string(),
            text: c[2].to_string(),
        })
        .collect()
}

fn queue_colour(mark: &Mark) -> String {
    mark.attr("class")
        .split(' ')
        .find(|c| c.starts_with('q') && c[1..].parse::<u32>().is_ok())
        .unwrap()
        .to_string()
}
