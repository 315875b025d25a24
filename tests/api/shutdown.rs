use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use tokio_stream::StreamExt;
use triage::server::pb::triage_client::TriageClient;

use crate::helpers::{rules_dir, ticket};

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[tokio::test]
async fn sigterm_lets_a_call_in_flight_finish_then_exits_zero() {
    let port = free_port();
    let mut child = Command::new(env!("CARGO_BIN_EXE_triage"))
        .args([
            "serve",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--admin-listen",
            "off",
            "--rules",
        ])
        .arg(rules_dir())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();

    let url = format!("http://127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut client = loop {
        match TriageClient::connect(url.clone()).await {
            Ok(c) => break c,
            Err(_) if Instant::now() < deadline => tokio::time::sleep(Duration::from_millis(50)).await,
            Err(e) => panic!("server did not start: {e}"),
        }
    };

    // A stream is a call in flight: it must be allowed to finish after SIGTERM.
    let (tx, rx) = tokio::sync::mpsc::channel(4);
    let mut responses = client
        .classify_stream(tokio_stream::wrappers::ReceiverStream::new(rx))
        .await
        .unwrap()
        .into_inner();
    tx.send(ticket("before", "Rechnung", "")).await.unwrap();
    assert_eq!(responses.next().await.unwrap().unwrap().id, "before");

    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    tokio::time::sleep(Duration::from_millis(300)).await;

    tx.send(ticket("after", "Abmahnung", "")).await.unwrap();
    assert_eq!(responses.next().await.unwrap().unwrap().id, "after");
    drop(tx);
    assert!(responses.next().await.is_none());

    let deadline = Instant::now() + Duration::from_secs(10);
    let exit = loop {
        if let Some(exit) = child.try_wait().unwrap() {
            break exit;
        }
        assert!(
            Instant::now() < deadline,
            "the server did not exit within 10 s of SIGTERM"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(exit.success(), "{exit:?}");
}
