//! Abandoned work stops: a call whose deadline passes (or whose client leaves) stops its
//! classification between stages and frees its memory and permit; the server's own timeout
//! answers DEADLINE_EXCEEDED.

use std::time::{Duration, Instant};

use tonic::Code;
use triage::server::Config;

use crate::helpers::{TestServer, raw, rules_dir, ticket};

/// A raw email of about 8 MB: 32 HTML parts of 256 KB, slow to render.
fn heavy_email() -> Vec<u8> {
    let mut raw = b"From: a@b.de\r\nTo: c@d.de\r\nSubject: Rechnung\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b\"\r\n\r\n".to_vec();
    let block = "<div><p>Bitte die Rechnung pr&uuml;fen.</p><table><tr><td>Posten</td><td>19,99</td></tr></table></div>\r\n";
    let html = block.repeat(256 * 1024 / block.len());
    for _ in 0..32 {
        raw.extend(b"--b\r\nContent-Type: text/html; charset=utf-8\r\n\r\n");
        raw.extend(html.as_bytes());
    }
    raw.extend(b"--b--\r\n");
    raw
}

async fn gauge(server: &TestServer, name: &str) -> f64 {
    let text = reqwest::get(server.admin_url("/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or(0.0)
}

#[tokio::test]
async fn work_past_its_deadline_stops_and_keeps_its_permit_until_it_has() {
    let config = Config {
        max_concurrency: 2,
        // Far shorter than the heavy email takes to classify in either build (a release build
        // finished it within the 300 ms this test once used), so the calls pass their deadline.
        request_timeout: Duration::from_millis(60),
        ..Config::default()
    };
    let server = TestServer::with(Some(rules_dir()), config).await;
    let client = server.client().await;
    let email = heavy_email();

    // Ten heavy calls, one after the other, each past the server's timeout.
    let mut peak = 0.0f64;
    let mut codes = Vec::new();
    for i in 0..10 {
        let mut c = client.clone();
        let request = raw(&format!("heavy-{i}"), email.clone());
        let call = tokio::spawn(async move { c.classify(request).await });
        tokio::time::sleep(Duration::from_millis(30)).await;
        peak = peak.max(gauge(&server, "triage_classifications_running").await);
        codes.push(call.await.unwrap().unwrap_err().code());
        peak = peak.max(gauge(&server, "triage_classifications_running").await);
    }
    assert!(
        codes
            .iter()
            .all(|c| matches!(c, Code::DeadlineExceeded | Code::ResourceExhausted)),
        "{codes:?}"
    );
    assert!(codes.contains(&Code::DeadlineExceeded), "{codes:?}");
    assert!(
        peak <= 2.0,
        "{peak} classifications ran at once with --max-concurrency 2"
    );

    // Nobody waits any more: the work stops soon, and the service answers as usual.
    let deadline = Instant::now() + Duration::from_secs(10);
    while gauge(&server, "triage_classifications_running").await > 0.0 {
        assert!(Instant::now() < deadline, "abandoned work is still running");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(gauge(&server, "triage_classifications_cancelled_total").await >= 1.0);
    let v = client
        .clone()
        .classify(ticket("after", "Rechnung", ""))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(v.id, "after");
    server.stop().await;
}
