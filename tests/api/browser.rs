//! The playground in a real browser: Debian's Chromium, headless, loads the page from the
//! server under test and the tests read the DOM it rendered. Skipped, saying so, where Chromium
//! is not installed (`.ci/run` installs it; `TRIAGE_CHROMIUM` names another binary).
//!
//! `TRIAGE_PLAYGROUND_SCREENSHOT=FILE.png` also saves a screenshot of the page the first test
//! renders (the README's `docs/playground.png` is the same page from `triage serve`, made
//! smaller with `pngquant`).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use triage::server::{Config, Tokens};

use crate::helpers::{TestServer, copy_rules, rules_dir};
use crate::playground::{eml, ruleset_view, wait_for_reload};

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
pub fn render(chromium: &Path, url: &str, screenshot: Option<(&Path, &str)>) -> String {
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
    let dom = tokio::task::spawn_blocking(move || {
        if let Some(png) = std::env::var_os("TRIAGE_PLAYGROUND_SCREENSHOT") {
            render(&chromium, &url, Some((Path::new(&png), "1280,1900")));
        }
        render(&chromium, &url, None)
    })
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

/// A reply that mentions its thread's topic in passing shows that evidence as an echo of the
/// thread, in the evidence table and in the structure list, linked to its rule.
#[tokio::test]
async fn chromium_shows_the_evidence_that_echoes_the_thread() {
    let Some(chromium) = chromium() else { return };
    let server = TestServer::start().await;
    let body = "Hallo,\n\nwie binden wir das Trustbadge in Shopware ein?\n\n\
                Den Auditbericht mit den Punkten haben wir gestern im Team durchgesprochen.\n\nGruss";
    let url = playground_url(&server, &[("subject", "AW: Auditbericht 2025"), ("body", body)]);
    let dom = tokio::task::spawn_blocking(move || render(&chromium, &url, None))
        .await
        .unwrap();
    let row = regex::Regex::new(r#"<tr id="evidence-\d+" data-rule="([^"]+)">(.*?)</tr>"#).unwrap();
    let echoed: Vec<&str> = row
        .captures_iter(&dom)
        .filter(|c| c[2].contains("echoes the thread"))
        .map(|c| c.get(1).unwrap().as_str())
        .collect();
    assert_eq!(echoed, ["certification.audit_report"], "{dom}");
    assert!(
        dom.contains(r##"The new text echoes the thread: <a href="#rule=certification.audit_report">"##),
        "no echo in the structure list"
    );
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

/// With tokens, the browser signs in with the token as its Basic password (here given in the
/// URL, as a person gives it in the browser's dialog) and the page's own requests carry it.
#[tokio::test]
async fn chromium_signs_in_with_the_token_and_the_page_explains() {
    let Some(chromium) = chromium() else { return };
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), "s3cret\n").unwrap();
    let config = Config {
        tokens: Some(std::sync::Arc::new(Tokens::load(file.path()).unwrap())),
        ..Config::default()
    };
    let server = TestServer::with(Some(rules_dir()), config).await;
    let url = playground_url(&server, &[("subject", "Rechnung doppelt abgebucht")]).replacen(
        "http://",
        "http://lead:s3cret@",
        1,
    );
    let dom = tokio::task::spawn_blocking(move || render(&chromium, &url, None))
        .await
        .unwrap();
    let contract = marks(&dom).into_iter().find(|m| m.text == "Rechnung");
    assert!(
        contract.is_some_and(|m| m.attr("data-queue") == "contract"),
        "{dom}"
    );
    assert!(dom.contains("id=\"queue\">"), "no verdict: {dom}");
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
