//! The milter, black-box: a real server with the milter on 127.0.0.1:0 (or a unix socket),
//! driven by Debian's `miltertest` (the MTA side of the protocol, scripted in Lua; the tests
//! that need it say so and pass where it is not installed) and by raw protocol bytes.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use triage::mail::Limits;
use triage::server::Config;
use triage::server::milter::edits::{
    CONFIDENCE, DESTINATION, ERROR, NEEDS_REVIEW, NOTE, ORIGINAL_RECIPIENT, QUEUE, RULESET, Route,
};
use triage::server::milter::{Address, Settings};

use crate::helpers::{TestServer, copy_rules, rules_dir};

// ---------------------------------------------------------------- miltertest

/// The `miltertest` binary, or `None` (with a message saying the test is skipped).
fn miltertest_bin() -> Option<PathBuf> {
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join("miltertest"))
            .find(|p| p.is_file())
    });
    if found.is_none() {
        eprintln!("skipped: miltertest is not installed (Debian package `miltertest`; .ci/run installs it)");
    }
    found
}

/// The socket as miltertest writes it.
fn socket(server: &TestServer) -> String {
    match server.milter.as_ref().expect("the server has a milter") {
        Address::Inet(addr) => format!("inet:{}@{}", addr.port(), addr.ip()),
        Address::Unix(path) => format!("unix:{}", path.display()),
    }
}

/// Runs a script of `tests/milter/` with `-D` variables; returns its standard output.
async fn run(bin: &Path, script: &str, defines: &[(&str, String)]) -> String {
    let mut cmd = std::process::Command::new(bin);
    cmd.arg("-s").arg(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/milter")
            .join(script),
    );
    for (name, value) in defines {
        cmd.arg("-D").arg(format!("{name}={value}"));
    }
    // Off the runtime's thread: the server under test runs on it.
    let out = tokio::task::spawn_blocking(move || cmd.output().unwrap())
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "miltertest {script} failed ({}):\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// What the milter did to one message, as `send.lua` reports it.
#[derive(Debug, Default)]
struct Milted {
    replies: Vec<(String, char)>,
    added: Vec<(String, String)>,
    forged_sent: usize,
    forged_deleted: usize,
    rcpt_deleted: Vec<String>,
    rcpt_added: Vec<String>,
}

impl Milted {
    fn header(&self, name: &str) -> Option<&str> {
        self.added
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    fn reply(&self, stage: &str) -> Option<char> {
        self.replies.iter().find(|(s, _)| s == stage).map(|(_, c)| *c)
    }
}

/// Sends `files` through the milter on one connection with `send.lua`.
async fn send(
    bin: &Path,
    server: &TestServer,
    files: &[PathBuf],
    rcpts: &[&str],
    candidates: &[&str],
) -> Vec<Milted> {
    let join = |items: Vec<String>| items.join("|");
    let mut defines = vec![
        ("socket", socket(server)),
        (
            "files",
            join(files.iter().map(|f| f.display().to_string()).collect()),
        ),
    ];
    if !rcpts.is_empty() {
        defines.push(("rcpts", join(rcpts.iter().map(|s| s.to_string()).collect())));
    }
    if !candidates.is_empty() {
        defines.push(("added", join(candidates.iter().map(|s| s.to_string()).collect())));
    }
    let out = run(bin, "send.lua", &defines).await;
    assert!(out.contains(&format!("done {}", files.len())), "{out}");
    let mut milted: Vec<Milted> = (0..files.len()).map(|_| Milted::default()).collect();
    for line in out.lines() {
        let mut parts = line.splitn(4, ' ');
        let (Some(n), Some(kind)) = (parts.next(), parts.next()) else {
            continue;
        };
        let Ok(n) = n.parse::<usize>() else { continue };
        let m = &mut milted[n - 1];
        let a = parts.next().unwrap_or_default().to_string();
        let b = parts.next().unwrap_or_default().to_string();
        match kind {
            "reply" => m.replies.push((a, b.chars().next().unwrap_or('?'))),
            "added" => m.added.push((a, b)),
            "forged" => {
                m.forged_sent = a.parse().unwrap();
                m.forged_deleted = b.parse().unwrap();
            }
            "rcpt-deleted" => m.rcpt_deleted.push(a),
            "rcpt-added" => m.rcpt_added.push(a),
            _ => {}
        }
    }
    milted
}

/// `triage classify` (the binary) on `files` with the default rules: one verdict per file,
/// or `None` for a file it refuses.
fn classify(files: &[PathBuf]) -> Vec<Option<Value>> {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_triage"))
        .arg("classify")
        .arg("--rules")
        .arg(rules_dir())
        .args(files)
        .output()
        .unwrap();
    let verdicts: Vec<Option<Value>> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .map(|v| v.get("error").is_none().then_some(v))
        .collect();
    assert_eq!(verdicts.len(), files.len());
    verdicts
}

/// Asserts the milter tagged a message with exactly the verdict `classify` gave.
fn assert_tagged_as(m: &Milted, v: &Value, what: &str) {
    assert_eq!(m.reply("eom"), Some('c'), "{what}: {m:?}");
    let expected = [
        (QUEUE, v["queue"].as_str().unwrap().to_string()),
        (CONFIDENCE, v["confidence"].to_string()),
        (DESTINATION, v["destination"].as_str().unwrap().to_string()),
        (NEEDS_REVIEW, v["needs_review"].to_string()),
        (RULESET, v["ruleset_version"].as_str().unwrap().to_string()),
    ];
    for (name, value) in expected {
        assert_eq!(m.header(name), Some(value.as_str()), "{what}: {name} in {m:?}");
    }
    assert_eq!(m.header(ERROR), None, "{what}: {m:?}");
}

/// Every `.eml` file under `tests/`.
fn test_emails() -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut stack = vec![Path::new(env!("CARGO_MANIFEST_DIR")).join("tests")];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "eml") {
                files.push(path);
            }
        }
    }
    files.sort();
    files
}

/// A server with the milter on the default rules; `config` as given.
async fn milter_server(config: Config) -> TestServer {
    TestServer::with_milter(Some(rules_dir()), config, None).await
}

/// Every email of the test data (dev, blind, fixtures) gets, through the milter, the five
/// headers with exactly the verdict `triage classify` gives for the same file: the same
/// queue, confidence, destination, review flag and ruleset.
#[tokio::test]
async fn the_milter_tags_each_message_with_the_verdict_classify_gives() {
    let Some(bin) = miltertest_bin() else { return };
    let server = milter_server(Config::default()).await;
    let files = test_emails();
    assert!(files.len() > 100, "{} emails", files.len());
    let expected = classify(&files);
    let started = Instant::now();
    let milted = send(&bin, &server, &files, &[], &[]).await;
    eprintln!(
        "{} messages through the milter on one connection in {:?}",
        files.len(),
        started.elapsed()
    );
    for ((file, m), v) in files.iter().zip(&milted).zip(&expected) {
        let v = v.as_ref().expect("classify takes every test email");
        assert_tagged_as(m, v, &file.display().to_string());
        assert_eq!(m.header(NOTE), None);
    }
    server.stop().await;
}

/// Inbound `X-Triage-*` headers (any case, any name, repeated) are all deleted, and the
/// verdict added is the message's own.
#[tokio::test]
async fn forged_triage_headers_are_removed_and_the_real_verdict_added() {
    let Some(bin) = miltertest_bin() else { return };
    let server = milter_server(Config::default()).await;
    let dir = tempfile::tempdir().unwrap();
    let forged = dir.path().join("forged.eml");
    std::fs::write(
        &forged,
        "X-Triage-Queue: legal\r\nFrom: Katrin Vogt <k.vogt@example.de>\r\n\
         Subject: Rechnung Nr. 2024-DE-331907 falsch\r\nx-triage-queue: legal\r\n\
         X-TRIAGE-DESTINATION: attacker@example.com\r\nX-Triage-Needs-Review: false\r\n\
         X-Triage-Confidence: 1.0\r\nX-Triage-Original-Recipient: ceo@example.com\r\n\
         X-Triage-Queue: legal\r\n\r\n\
         Guten Tag,\r\nauf der Rechnung ist die USt-IdNr. falsch. Bitte senden Sie eine Gutschrift.\r\n",
    )
    .unwrap();
    let files = vec![forged.clone(), forged];
    let expected = classify(&files[..1]);
    let milted = send(&bin, &server, &files, &[], &[]).await;
    for m in &milted {
        assert_eq!(m.forged_sent, 7, "{m:?}");
        assert_eq!(m.forged_deleted, 7, "every forged header is deleted: {m:?}");
        assert_tagged_as(m, expected[0].as_ref().unwrap(), "forged");
        assert_ne!(m.header(QUEUE), Some("legal"));
        assert_eq!(m.header(ORIGINAL_RECIPIENT), None);
    }
    server.stop().await;
}

/// A tiny deterministic generator, as in `tests/mail.rs`, so hostile inputs are the same on
/// every run.
fn noise(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

const HEAD: &str = "From: a@example.com\r\nTo: b@example.com\r\nSubject: test\r\nMIME-Version: 1.0\r\n";

/// The hostile-input set of `tests/mail.rs`, as files: noise, NULs, ten thousand headers,
/// deep and wide multiparts, a 15 MB attachment, an HTML tag bomb, bad charsets and encodings,
/// truncation, UTF-16, mixed line ends.
fn hostile_set(dir: &Path) -> Vec<PathBuf> {
    use base64::Engine as _;
    let mut inputs: Vec<(&str, Vec<u8>)> = vec![("empty", Vec::new())];
    for seed in 1..=3 {
        inputs.push(("noise", noise(seed, 64 * 1024)));
        let mut raw = HEAD.as_bytes().to_vec();
        raw.extend(b"Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n");
        raw.extend(noise(seed, 16 * 1024));
        inputs.push(("multipart-noise", raw));
    }
    inputs.push((
        "nul",
        b"From: a@b.c\r\nSubject: x\0y\r\n\r\nbody\0with\0nuls\0".to_vec(),
    ));
    inputs.push(("zeros", vec![0u8; 4096]));
    let mut raw = String::from(HEAD);
    for i in 0..10_000 {
        raw.push_str(&format!("X-Filler-{i}: value {i}\r\n"));
    }
    raw.push_str("\r\nhello");
    inputs.push(("headers", raw.into_bytes()));
    let mut raw = String::from(HEAD);
    for i in 0..200 {
        raw.push_str(&format!(
            "Content-Type: multipart/mixed; boundary=\"b{i}\"\r\n\r\n--b{i}\r\n"
        ));
    }
    raw.push_str("Content-Type: text/plain\r\n\r\ninnermost\r\n");
    inputs.push(("nested", raw.into_bytes()));
    let mut raw = String::from(HEAD);
    raw.push_str("Content-Type: multipart/mixed; boundary=p\r\n\r\n");
    for i in 0..20_000 {
        raw.push_str(&format!("--p\r\nContent-Type: text/plain\r\n\r\npart {i}\r\n"));
    }
    raw.push_str("--p--\r\n");
    inputs.push(("parts", raw.into_bytes()));
    let payload = base64::engine::general_purpose::STANDARD.encode(noise(7, 15 * 1024 * 1024));
    let mut raw = String::from(HEAD);
    raw.push_str("Content-Type: multipart/mixed; boundary=z\r\n\r\n--z\r\nContent-Type: text/plain\r\n\r\nsee attachment\r\n");
    raw.push_str("--z\r\nContent-Type: application/pdf\r\nContent-Transfer-Encoding: base64\r\nContent-Disposition: attachment; filename=\"big.pdf\"\r\n\r\n");
    for line in payload.as_bytes().chunks(76) {
        raw.push_str(std::str::from_utf8(line).unwrap());
        raw.push_str("\r\n");
    }
    raw.push_str("--z--\r\n");
    inputs.push(("attachment-15mb", raw.into_bytes()));
    let mut raw = String::from(HEAD);
    raw.push_str("Content-Type: text/html\r\n\r\n");
    raw.push_str(&"<div><span><b>".repeat(50_000));
    raw.push_str("bomb text");
    inputs.push(("tag-bomb", raw.into_bytes()));
    let mut raw = HEAD.as_bytes().to_vec();
    raw.extend(b"Content-Type: text/plain; charset=x-klingon\r\n\r\nCaf\xe9 cr\xe8me");
    inputs.push(("charset", raw));
    inputs.push((
        "encodings",
        b"From: =?utf-8?Q?J=C3=B?= <a@b.c>\r\nSubject: =?utf-8?B?!!!?= =?x-unknown?Q?abc?= =?utf-8?Q?ok\r\n\
          Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n\
          bad =ZZ escape =\r\nand =E2=80 cut ="
            .to_vec(),
    ));
    inputs.push((
        "truncated",
        format!("{HEAD}Content-Type: multipart/alternative; boundary=t\r\n\r\n--t\r\nContent-Type: text/plain\r\n\r\nfirst half of the").into_bytes(),
    ));
    let text: Vec<u8> = "\u{feff}Grüße aus Köln"
        .encode_utf16()
        .flat_map(|u| u.to_le_bytes())
        .collect();
    let mut raw = HEAD.as_bytes().to_vec();
    raw.extend(b"Content-Type: text/plain; charset=utf-16\r\n\r\n");
    raw.extend(&text);
    inputs.push(("utf16", raw));
    inputs.push((
        "line-ends",
        b"From: a@b.c\nSubject: mixed\r\nContent-Type: text/plain\r\n\nline one\rline two\r\nline three\n"
            .to_vec(),
    ));
    inputs
        .into_iter()
        .enumerate()
        .map(|(i, (name, raw))| {
            let path = dir.join(format!("{i:02}-{name}.eml"));
            std::fs::write(&path, raw).unwrap();
            path
        })
        .collect()
}

/// The hostile-input set passes through the milter on one connection: every message gets
/// continue and either a verdict or the reason it has none, the 15 MB message is classified on
/// its first `max_message_bytes` and says so, and an ordinary message after them all is still
/// tagged like `classify` tags it.
#[tokio::test]
async fn hostile_messages_get_continue_and_the_milter_keeps_serving() {
    let Some(bin) = miltertest_bin() else { return };
    let server = milter_server(Config::default()).await;
    let dir = tempfile::tempdir().unwrap();
    let mut files = hostile_set(dir.path());
    let ordinary = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/dev/emails/d-eml-03.eml");
    files.push(ordinary.clone());
    let started = Instant::now();
    let milted = send(&bin, &server, &files, &[], &[]).await;
    eprintln!("{} hostile messages in {:?}", files.len() - 1, started.elapsed());
    for (file, m) in files.iter().zip(&milted) {
        let name = file.file_name().unwrap().to_string_lossy();
        assert_eq!(m.reply("eom"), Some('c'), "{name}: {m:?}");
        assert!(
            m.header(QUEUE).is_some() || m.header(ERROR).is_some(),
            "{name}: neither a verdict nor a reason: {m:?}"
        );
        if name.contains("attachment-15mb") {
            assert_eq!(
                m.header(NOTE),
                Some("classified the first 10485760 bytes of a larger message; not routed"),
                "{m:?}"
            );
            assert_eq!(
                m.reply("body"),
                Some('s'),
                "the rest of the body is skipped: {m:?}"
            );
        } else {
            assert_eq!(m.header(NOTE), None, "{name}: {m:?}");
        }
    }
    let expected = classify(&[ordinary]);
    assert_tagged_as(
        milted.last().unwrap(),
        expected[0].as_ref().unwrap(),
        "after the hostile set",
    );
    server.stop().await;
}

/// A classification that outlasts the request timeout lets the message pass with
/// `X-Triage-Error` and no verdict; forged headers are removed all the same.
#[tokio::test]
async fn a_classification_that_times_out_passes_unclassified() {
    let Some(bin) = miltertest_bin() else { return };
    let config = Config {
        request_timeout: Duration::from_millis(1),
        ..Config::default()
    };
    let server = milter_server(config).await;
    let dir = tempfile::tempdir().unwrap();
    let big = dir.path().join("big.eml");
    let mut raw = String::from("From: a@example.com\r\nSubject: Rechnung\r\nX-Triage-Queue: legal\r\n\r\n");
    for i in 0..40_000 {
        raw.push_str(&format!(
            "Zeile {i}: bitte korrigieren Sie die Rechnung und die Adresse.\r\n"
        ));
    }
    std::fs::write(&big, raw).unwrap();
    assert!(std::fs::metadata(&big).unwrap().len() > 2_000_000);
    let milted = send(&bin, &server, &[big], &[], &[]).await;
    let m = &milted[0];
    assert_eq!(m.reply("eom"), Some('c'), "{m:?}");
    assert_eq!(
        m.header(ERROR),
        Some("timeout: not classified within 1 ms"),
        "{m:?}"
    );
    assert_eq!(m.header(QUEUE), None, "{m:?}");
    assert_eq!((m.forged_sent, m.forged_deleted), (1, 1), "{m:?}");
    server.stop().await;
}

/// Routing mode: a confident verdict of a queue with a mailbox replaces the intake recipient
/// (and only it) with the destination, and keeps the original in a header; an unsure verdict
/// is tagged and left where it was sent.
#[tokio::test]
async fn routing_replaces_the_intake_recipient_for_confident_verdicts_only() {
    let Some(bin) = miltertest_bin() else { return };
    let files = test_emails();
    let verdicts = classify(&files);
    let pick = |unsure: bool| {
        files
            .iter()
            .zip(&verdicts)
            .find_map(|(f, v)| {
                let v = v.as_ref()?;
                (v["needs_review"] == unsure && v["destination"] != "").then(|| (f.clone(), v.clone()))
            })
            .expect("the test emails have one")
    };
    let (sure, sure_verdict) = pick(false);
    let (unsure, unsure_verdict) = pick(true);
    let destination = |v: &Value| format!("<{}>", v["destination"].as_str().unwrap());
    let config = Config {
        milter: Settings {
            route: Some(Route::new(["support@example.com"])),
            ..Settings::default()
        },
        ..Config::default()
    };
    let server = milter_server(config).await;
    let rcpts = ["<Support@Example.com>", "<boss@example.com>"];
    let candidates = [destination(&sure_verdict), destination(&unsure_verdict)];
    let candidates: Vec<&str> = candidates.iter().map(String::as_str).collect();
    let milted = send(&bin, &server, &[sure, unsure], &rcpts, &candidates).await;

    let (m, v) = (&milted[0], &sure_verdict);
    assert_tagged_as(m, v, "confident");
    assert_eq!(m.rcpt_deleted, ["<Support@Example.com>"], "{m:?}");
    assert_eq!(m.rcpt_added, [destination(v)], "{m:?}");
    assert_eq!(m.header(ORIGINAL_RECIPIENT), Some("Support@Example.com"));

    let (m, v) = (&milted[1], &unsure_verdict);
    assert_tagged_as(m, v, "needs review");
    assert!(m.rcpt_deleted.is_empty() && m.rcpt_added.is_empty(), "{m:?}");
    assert_eq!(m.header(ORIGINAL_RECIPIENT), None);
    server.stop().await;
}

/// A message larger than `max_message_bytes` is classified on its first bytes, says so, has
/// the rest of its body skipped, and is not routed.
#[tokio::test]
async fn an_oversized_message_is_tagged_from_its_first_bytes_and_not_routed() {
    let Some(bin) = miltertest_bin() else { return };
    let config = Config {
        limits: Limits {
            max_message_bytes: 64 * 1024,
            ..Limits::default()
        },
        milter: Settings {
            route: Some(Route::new(["support@example.com"])),
            ..Settings::default()
        },
        ..Config::default()
    };
    let server = milter_server(config).await;
    let dir = tempfile::tempdir().unwrap();
    let big = dir.path().join("big.eml");
    let mut raw = String::from(
        "From: a@example.com\r\nSubject: Pedido no recibido - Protección al Comprador\r\n\r\n\
         Mi pedido no ha llegado, quiero abrir una reclamación.\r\n",
    );
    while raw.len() < 300 * 1024 {
        raw.push_str("Adjunto el historial completo del pedido y de la conversación.\r\n");
    }
    std::fs::write(&big, raw).unwrap();
    let milted = send(
        &bin,
        &server,
        &[big],
        &["<support@example.com>"],
        &["<service@trustedshops.com>"],
    )
    .await;
    let m = &milted[0];
    assert_eq!(m.reply("eom"), Some('c'), "{m:?}");
    assert_eq!(m.reply("body"), Some('s'), "{m:?}");
    assert_eq!(m.header(QUEUE), Some("customer_care"), "{m:?}");
    assert_eq!(
        m.header(NOTE),
        Some("classified the first 65536 bytes of a larger message; not routed")
    );
    assert!(m.rcpt_deleted.is_empty() && m.rcpt_added.is_empty(), "{m:?}");
    server.stop().await;
}

/// Hundreds of connections open at once, each mid-message at the same time (8 miltertest
/// processes of 32 connections, two messages each): every message is tagged and its forged
/// header deleted.
#[tokio::test]
async fn many_concurrent_connections_are_served() {
    let Some(bin) = miltertest_bin() else { return };
    let server = milter_server(Config::default()).await;
    let processes = 8;
    let started = Instant::now();
    let mut runs = tokio::task::JoinSet::new();
    for _ in 0..processes {
        let defines = [
            ("socket", socket(&server)),
            ("connections", "32".to_string()),
            ("rounds", "2".to_string()),
        ];
        let bin = bin.clone();
        runs.spawn(async move { run(&bin, "concurrent.lua", &defines).await });
    }
    let outputs = runs.join_all().await;
    let mut tagged = 0;
    for out in &outputs {
        assert!(out.contains("done 64"), "{out}");
        for line in out.lines().filter(|l| !l.starts_with("done")) {
            let fields: Vec<&str> = line.split(' ').collect();
            assert_eq!(fields[1], "c", "{line}");
            assert_ne!(fields[2], "-", "untagged: {line}");
            assert_ne!(fields[2], "legal", "{line}");
            assert_eq!(fields[3], "deleted", "{line}");
            tagged += 1;
        }
    }
    assert_eq!(tagged, processes * 64);
    eprintln!(
        "{tagged} messages over {} concurrent connections in {:?}",
        processes * 32,
        started.elapsed()
    );
    server.stop().await;
}

/// The milter listens on a unix socket too; the file goes away with the server.
#[tokio::test]
async fn the_milter_serves_a_unix_socket() {
    let Some(bin) = miltertest_bin() else { return };
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("milter.sock");
    let server = TestServer::with_milter(
        Some(rules_dir()),
        Config::default(),
        Some(Address::Unix(path.clone())),
    )
    .await;
    let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/dev/emails/d-eml-07.eml");
    let milted = send(&bin, &server, std::slice::from_ref(&file), &[], &[]).await;
    assert_tagged_as(&milted[0], classify(&[file])[0].as_ref().unwrap(), "unix socket");
    server.stop().await;
    assert!(!path.exists(), "the socket file is removed at shutdown");
}

/// The milter classifies with the serving ruleset: after a reload, `X-Triage-Ruleset` names
/// the new version; and its classifications are counted with `interface="milter"`.
#[tokio::test]
async fn the_milter_follows_reloads_and_counts_in_the_metrics() {
    let Some(bin) = miltertest_bin() else { return };
    let rules = copy_rules();
    let server = TestServer::with_milter(Some(rules.path().to_path_buf()), Config::default(), None).await;
    let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/dev/emails/d-eml-02.eml");
    let first = server.rules.current().engine.ruleset().version.clone();
    let m = send(&bin, &server, std::slice::from_ref(&file), &[], &[]).await;
    assert_eq!(m[0].header(RULESET), Some(first.as_str()));

    let queues = rules.path().join("00-queues.toml");
    let mut text = std::fs::read_to_string(&queues).unwrap();
    text.push_str("\n# reviewed\n");
    std::fs::write(&queues, text).unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while server.rules.current().engine.ruleset().version == first {
        assert!(Instant::now() < deadline, "no reload");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let second = server.rules.current().engine.ruleset().version.clone();
    let m = send(&bin, &server, std::slice::from_ref(&file), &[], &[]).await;
    assert_eq!(m[0].header(RULESET), Some(second.as_str()));

    let metrics = reqwest::get(server.admin_url("/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("triage_classifications_total") && l.contains("interface=\"milter\"")),
        "{metrics}"
    );
    server.stop().await;
}

// ---------------------------------------------------------------- raw protocol

/// A minimal MTA side of the protocol, for what miltertest cannot send (and for other tests
/// that send a message through the milter).
pub(crate) struct Mta {
    stream: TcpStream,
}

impl Mta {
    pub(crate) async fn connect(server: &TestServer) -> Mta {
        let Some(Address::Inet(addr)) = server.milter else {
            panic!("an inet milter")
        };
        Mta {
            stream: TcpStream::connect(addr).await.unwrap(),
        }
    }

    async fn send(&mut self, cmd: u8, data: &[u8]) {
        let mut frame = ((data.len() + 1) as u32).to_be_bytes().to_vec();
        frame.push(cmd);
        frame.extend_from_slice(data);
        self.stream.write_all(&frame).await.unwrap();
    }

    /// The next reply, or `None` when the milter closed the connection.
    async fn recv(&mut self) -> Option<(u8, Vec<u8>)> {
        let mut len = [0u8; 4];
        self.stream.read_exact(&mut len).await.ok()?;
        let mut data = vec![0u8; u32::from_be_bytes(len) as usize];
        self.stream.read_exact(&mut data).await.ok()?;
        let cmd = data.remove(0);
        Some((cmd, data))
    }

    /// Negotiates as Postfix 3 does (version 6, every action and step offered).
    pub(crate) async fn negotiate(&mut self) -> Vec<u8> {
        self.negotiate_offering(0x1ff).await
    }

    /// Negotiates offering only `actions` (SMFIF_* bits).
    async fn negotiate_offering(&mut self, actions: u32) -> Vec<u8> {
        let mut data = 6u32.to_be_bytes().to_vec();
        data.extend(actions.to_be_bytes());
        data.extend(0x1f_ffffu32.to_be_bytes());
        self.send(b'O', &data).await;
        let (cmd, reply) = self.recv().await.expect("a negotiation reply");
        assert_eq!(cmd, b'O');
        reply
    }

    /// Sends one message (headers as `(name, value)`), returns the end-of-message replies.
    pub(crate) async fn message(&mut self, headers: &[(&str, &str)], body: &[u8]) -> Vec<(u8, Vec<u8>)> {
        self.message_to(&[], headers, body).await
    }

    /// Sends one message to envelope recipients `rcpts`.
    async fn message_to(
        &mut self,
        rcpts: &[&str],
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Vec<(u8, Vec<u8>)> {
        self.send(b'M', b"<a@example.com>\0").await;
        assert_eq!(self.recv().await.unwrap().0, b'c');
        for rcpt in rcpts {
            self.send(b'R', format!("{rcpt}\0").as_bytes()).await;
            assert_eq!(self.recv().await.unwrap().0, b'c');
        }
        for (name, value) in headers {
            self.send(b'L', format!("{name}\0{value}\0").as_bytes()).await;
            assert_eq!(self.recv().await.unwrap().0, b'c');
        }
        self.send(b'N', b"").await;
        assert_eq!(self.recv().await.unwrap().0, b'c');
        self.send(b'B', body).await;
        assert_eq!(self.recv().await.unwrap().0, b'c');
        self.send(b'E', b"").await;
        let mut replies = Vec::new();
        loop {
            let reply = self.recv().await.expect("end-of-message replies");
            let last = reply.0 == b'c';
            replies.push(reply);
            if last {
                return replies;
            }
        }
    }

    /// Sends one message with its body in chunks of at most 64 KiB, as MTAs do; body chunks the
    /// milter skips are not sent.
    async fn message_chunked(&mut self, headers: &[Field], body: &[u8]) -> Vec<(u8, Vec<u8>)> {
        self.send(b'M', b"<a@example.com>\0").await;
        assert_eq!(self.recv().await.unwrap().0, b'c');
        for (name, value) in headers {
            let mut data = name.clone();
            data.push(0);
            data.extend_from_slice(value);
            data.push(0);
            self.send(b'L', &data).await;
            assert_eq!(self.recv().await.unwrap().0, b'c');
        }
        self.send(b'N', b"").await;
        assert_eq!(self.recv().await.unwrap().0, b'c');
        for chunk in body.chunks(65_535) {
            self.send(b'B', chunk).await;
            match self.recv().await.unwrap().0 {
                b'c' => {}
                b's' => break,
                other => panic!("unexpected reply {other} to a body chunk"),
            }
        }
        self.send(b'E', b"").await;
        let mut replies = Vec::new();
        loop {
            let reply = self.recv().await.expect("end-of-message replies");
            let last = reply.0 == b'c';
            replies.push(reply);
            if last {
                return replies;
            }
        }
    }

    /// Whether the milter closed the connection within `within`.
    async fn closed_within(&mut self, within: Duration) -> bool {
        let mut buf = [0u8; 64];
        matches!(
            tokio::time::timeout(within, self.stream.read(&mut buf)).await,
            Ok(Ok(0) | Err(_))
        )
    }
}

/// The value of the added header `name` among end-of-message replies.
pub(crate) fn added(replies: &[(u8, Vec<u8>)], name: &str) -> Option<String> {
    replies.iter().find_map(|(cmd, data)| {
        let mut parts = data.split(|&b| b == 0);
        (*cmd == b'h' && parts.next()? == name.as_bytes())
            .then(|| String::from_utf8_lossy(parts.next().unwrap_or_default()).into_owned())
    })
}

/// Negotiation answers protocol version 6 and asks only for header edits (no recipient
/// edits without routing) and for the steps triage uses.
#[tokio::test]
async fn negotiation_answers_version_6_and_asks_for_what_it_uses() {
    let server = milter_server(Config::default()).await;
    let mut mta = Mta::connect(&server).await;
    let reply = mta.negotiate().await;
    let word = |i: usize| u32::from_be_bytes(reply[i * 4..i * 4 + 4].try_into().unwrap());
    assert_eq!(word(0), 6);
    assert_eq!(word(1), 0x01 | 0x10, "SMFIF_ADDHDRS | SMFIF_CHGHDRS");
    let steps = word(2);
    for (flag, name) in [
        (0x1, "NOCONNECT"),
        (0x2, "NOHELO"),
        (0x8, "NORCPT"),
        (0x400, "SKIP"),
    ] {
        assert_ne!(steps & flag, 0, "{name} in {steps:#x}");
    }
    for (flag, name) in [
        (0x4, "NOMAIL"),
        (0x10, "NOBODY"),
        (0x20, "NOHDRS"),
        (0x8_0000, "NR_BODY"),
    ] {
        assert_eq!(steps & flag, 0, "{name} in {steps:#x}");
    }
    server.stop().await;
}

/// A header field's name and value, as bytes.
type Field = (Vec<u8>, Vec<u8>);

/// Splits a raw message as an MTA hands it to a milter: a leading mbox `From ` line dropped
/// (as Postfix's sendmail(1) drops it; it is a mailbox artefact, not part of the message),
/// header fields until the first empty line (a folded line joins its field with a newline, as
/// Postfix sends it; a line that is not a field ends the header), then the body with CRLF line
/// ends.
fn as_mta_sends(raw: &[u8]) -> (Vec<Field>, Vec<u8>) {
    let mut headers: Vec<Field> = Vec::new();
    let mut offset = 0;
    if raw.starts_with(b"From ") {
        offset = raw.iter().position(|&b| b == b'\n').map_or(raw.len(), |i| i + 1);
    }
    let is_name = |n: &[u8]| !n.is_empty() && n.iter().all(|&b| (b'!'..=b'~').contains(&b) && b != b':');
    while offset < raw.len() {
        let end = raw[offset..]
            .iter()
            .position(|&b| b == b'\n')
            .map_or(raw.len(), |i| offset + i + 1);
        let line = raw[offset..end].strip_suffix(b"\n").unwrap_or(&raw[offset..end]);
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() {
            offset = end;
            break;
        }
        if matches!(line[0], b' ' | b'\t') && !headers.is_empty() {
            let value = &mut headers.last_mut().unwrap().1;
            value.push(b'\n');
            value.extend_from_slice(line);
        } else if let Some(colon) = line.iter().position(|&b| b == b':')
            && is_name(&line[..colon])
        {
            let value = &line[colon + 1..];
            let start = value
                .iter()
                .position(|b| !matches!(b, b' ' | b'\t'))
                .unwrap_or(value.len());
            headers.push((line[..colon].to_vec(), value[start..].to_vec()));
        } else {
            break;
        }
        offset = end;
    }
    let mut body = Vec::with_capacity(raw.len() - offset + 1024);
    for line in raw[offset..].split_inclusive(|&b| b == b'\n') {
        match line.strip_suffix(b"\n") {
            Some(l) => {
                body.extend_from_slice(l.strip_suffix(b"\r").unwrap_or(l));
                body.extend_from_slice(b"\r\n");
            }
            None => body.extend_from_slice(line),
        }
    }
    (headers, body)
}

/// The messages of the public corpus (thousands of real emails written by third parties,
/// hostile ones included), sent as an MTA sends it on one connection, are tagged with the
/// verdict `triage classify` gives for the file. One file in eight by default (a debug build
/// takes minutes for all); `TRIAGE_MILTER_CORPUS=all` sends every one. Skipped when the shared
/// corpus is absent.
#[tokio::test]
async fn the_public_corpus_gets_the_verdict_classify_gives_through_the_milter() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/corpus/public/emails");
    if !root.exists() {
        eprintln!(
            "skipped: {} is absent (public corpus of the shared folder)",
            root.display()
        );
        return;
    }
    let mut files = Vec::new();
    let mut stack = vec![root];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                files.push(path);
            }
        }
    }
    files.sort();
    let step = if std::env::var("TRIAGE_MILTER_CORPUS").is_ok_and(|v| v == "all") {
        1
    } else {
        8
    };
    let files: Vec<PathBuf> = files.into_iter().step_by(step).collect();
    let expected = tokio::task::spawn_blocking({
        let files = files.clone();
        move || classify(&files)
    })
    .await
    .unwrap();
    let server = milter_server(Config::default()).await;
    let mut mta = Mta::connect(&server).await;
    mta.negotiate().await;
    let started = Instant::now();
    let (mut same, mut oversized, mut differ) = (0, 0, Vec::new());
    for (file, verdict) in files.iter().zip(&expected) {
        let raw = std::fs::read(file).unwrap();
        let (headers, body) = as_mta_sends(&raw);
        let replies = mta.message_chunked(&headers, &body).await;
        let Some(v) = verdict else {
            // Refused by classify: larger than max_message_bytes; the milter says so.
            assert!(added(&replies, NOTE).is_some(), "{}", file.display());
            oversized += 1;
            continue;
        };
        let got = [QUEUE, CONFIDENCE, DESTINATION, NEEDS_REVIEW, RULESET].map(|h| added(&replies, h));
        let want = [
            v["queue"].as_str().map(str::to_string),
            Some(v["confidence"].to_string()),
            v["destination"].as_str().map(str::to_string),
            Some(v["needs_review"].to_string()),
            v["ruleset_version"].as_str().map(str::to_string),
        ];
        if got == want {
            same += 1;
        } else {
            differ.push(format!("{}: milter {got:?}, classify {want:?}", file.display()));
        }
    }
    eprintln!(
        "public corpus through the milter (1 file in {step}): {same} tagged as classify tags them, {oversized} over the size limit (noted), {} differ, in {:?}",
        differ.len(),
        started.elapsed()
    );
    assert!(differ.is_empty(), "{differ:#?}");
    assert!(same * step > 6000, "only {same} messages");
    server.stop().await;
}

/// In routing mode, an MTA that does not let filters edit recipients gets its messages tagged
/// but not routed, and no header claiming a route; one that does gets the recipient edits.
#[tokio::test]
async fn routing_needs_an_mta_that_allows_recipient_edits() {
    let config = Config {
        milter: Settings {
            route: Some(Route::new(["support@example.com"])),
            ..Settings::default()
        },
        ..Config::default()
    };
    let server = milter_server(config).await;
    let headers = [("Subject", "Abmahnung erhalten"), ("From", "a@example.de")];
    let body = b"Wir haben eine Abmahnung wegen unserer AGB erhalten.\r\n";

    let mut mta = Mta::connect(&server).await;
    let reply = mta.negotiate_offering(0x01 | 0x10).await;
    assert_eq!(u32::from_be_bytes(reply[4..8].try_into().unwrap()), 0x11);
    let replies = mta.message_to(&["<support@example.com>"], &headers, body).await;
    assert_eq!(added(&replies, QUEUE).as_deref(), Some("legal"));
    assert_eq!(added(&replies, ORIGINAL_RECIPIENT), None);
    assert!(
        !replies.iter().any(|(cmd, _)| matches!(cmd, b'+' | b'-')),
        "{replies:?}"
    );

    let mut mta = Mta::connect(&server).await;
    let reply = mta.negotiate().await;
    assert_eq!(
        u32::from_be_bytes(reply[4..8].try_into().unwrap()),
        0x1d,
        "headers and recipients"
    );
    let replies = mta.message_to(&["<support@example.com>"], &headers, body).await;
    assert!(
        replies.contains(&(b'-', b"<support@example.com>\0".to_vec())),
        "{replies:?}"
    );
    assert!(
        replies.contains(&(b'+', b"<shop@trustedshops.com>\0".to_vec())),
        "{replies:?}"
    );
    assert_eq!(
        added(&replies, ORIGINAL_RECIPIENT).as_deref(),
        Some("support@example.com")
    );
    server.stop().await;
}

/// A header far longer than miltertest can send (200 KB, beyond Postfix's own 100 KB limit)
/// is taken, not a reason to drop the connection.
#[tokio::test]
async fn a_very_long_header_is_taken() {
    let server = milter_server(Config::default()).await;
    let mut mta = Mta::connect(&server).await;
    mta.negotiate().await;
    let long = "Abmahnung ".repeat(20_000);
    let replies = mta
        .message(
            &[("Subject", "Abmahnung erhalten"), ("X-Long", &long)],
            b"Bitte um Hilfe.\r\n",
        )
        .await;
    assert!(added(&replies, QUEUE).is_some(), "{:?}", added(&replies, ERROR));
    server.stop().await;
}

/// Bytes that are not the milter protocol end that connection only; the next connection is
/// served.
#[tokio::test]
async fn protocol_garbage_closes_only_that_connection() {
    let server = milter_server(Config::default()).await;
    for seed in 1..=5 {
        let mut mta = Mta::connect(&server).await;
        mta.stream.write_all(&noise(seed, 4096)).await.unwrap();
        assert!(mta.closed_within(Duration::from_secs(5)).await, "seed {seed}");
    }
    // A frame claiming 4 GB is refused without reading (or allocating) it.
    let mut mta = Mta::connect(&server).await;
    mta.stream
        .write_all(&[0xff, 0xff, 0xff, 0xff, b'B'])
        .await
        .unwrap();
    assert!(mta.closed_within(Duration::from_secs(5)).await);

    let mut mta = Mta::connect(&server).await;
    mta.negotiate().await;
    let replies = mta
        .message(&[("Subject", "Rechnung falsch")], b"Bitte korrigieren.\r\n")
        .await;
    assert_eq!(added(&replies, QUEUE).as_deref(), Some("contract"));
    server.stop().await;
}

/// A peer that goes silent is disconnected after the idle timeout, while another connection
/// is served meanwhile.
#[tokio::test]
async fn a_silent_peer_is_disconnected_after_the_idle_timeout() {
    let config = Config {
        milter: Settings {
            idle_timeout: Duration::from_millis(500),
            ..Settings::default()
        },
        ..Config::default()
    };
    let server = milter_server(config).await;
    let mut silent = Mta::connect(&server).await;
    silent.negotiate().await;
    silent.send(b'M', b"<a@example.com>\0").await;
    assert_eq!(silent.recv().await.unwrap().0, b'c');
    let mut busy = Mta::connect(&server).await;
    busy.negotiate().await;
    let replies = busy
        .message(&[("Subject", "Abmahnung erhalten")], b"Hilfe\r\n")
        .await;
    assert!(added(&replies, QUEUE).is_some());
    let started = Instant::now();
    assert!(silent.closed_within(Duration::from_secs(5)).await);
    assert!(started.elapsed() < Duration::from_secs(3));
    server.stop().await;
}

/// A message in flight when shutdown begins is finished and tagged; the connection then ends at
/// the message boundary and the server exits.
#[tokio::test]
async fn shutdown_finishes_the_message_in_flight() {
    let server = milter_server(Config::default()).await;
    let mut mta = Mta::connect(&server).await;
    mta.negotiate().await;
    mta.send(b'M', b"<a@example.com>\0").await;
    assert_eq!(mta.recv().await.unwrap().0, b'c');
    mta.send(b'L', b"Subject\0Rechnung falsch\0").await;
    assert_eq!(mta.recv().await.unwrap().0, b'c');
    let stopping = tokio::spawn(server.stop());
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        !stopping.is_finished(),
        "the server waits for the message in flight"
    );
    mta.send(b'N', b"").await;
    assert_eq!(mta.recv().await.unwrap().0, b'c');
    mta.send(b'B', b"Bitte korrigieren Sie die Rechnung.\r\n").await;
    assert_eq!(mta.recv().await.unwrap().0, b'c');
    mta.send(b'E', b"").await;
    let mut replies = Vec::new();
    while let Some(reply) = mta.recv().await {
        let last = reply.0 == b'c';
        replies.push(reply);
        if last {
            break;
        }
    }
    assert_eq!(added(&replies, QUEUE).as_deref(), Some("contract"));
    assert!(mta.closed_within(Duration::from_secs(2)).await);
    tokio::time::timeout(Duration::from_secs(5), stopping)
        .await
        .expect("the server exits once the message is done")
        .unwrap();
}

/// At shutdown the milter stops accepting and ends connections at their next message
/// boundary, so the server exits promptly with MTA connections still open.
#[tokio::test]
async fn shutdown_closes_idle_milter_connections() {
    let server = milter_server(Config::default()).await;
    let mut mta = Mta::connect(&server).await;
    mta.negotiate().await;
    let replies = mta
        .message(&[("Subject", "Rechnung falsch")], b"Bitte.\r\n")
        .await;
    assert!(added(&replies, QUEUE).is_some());
    let started = Instant::now();
    server.stop().await;
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    assert!(mta.closed_within(Duration::from_secs(1)).await);
}
