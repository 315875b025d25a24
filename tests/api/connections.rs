//! Connection hygiene: clients that connect and send nothing, stop mid-handshake or sit idle
//! cannot hold the ports, and a flood of them leaves health and ordinary calls answering.

use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use triage::server::pb::triage_client::TriageClient;
use triage::server::{Config, ConnLimits};

use crate::helpers::{TestServer, rules_dir, ticket};

fn quick(max_connections: usize) -> ConnLimits {
    ConnLimits {
        max_connections,
        handshake_timeout: Duration::from_secs(1),
        idle_timeout: Duration::from_secs(1),
        ..ConnLimits::default()
    }
}

/// True when the server closes `stream` (EOF or reset) within `within`.
async fn closed_by_server(stream: &mut TcpStream, within: Duration) -> bool {
    let mut buf = [0u8; 4096];
    let deadline = tokio::time::Instant::now() + within;
    loop {
        match tokio::time::timeout_at(deadline, stream.read(&mut buf)).await {
            Err(_) => return false,
            Ok(Ok(0) | Err(_)) => return true,
            // The server may say something first (SETTINGS, GOAWAY, a 408): read on.
            Ok(Ok(_)) => continue,
        }
    }
}

async fn healthz(admin: SocketAddr) -> reqwest::StatusCode {
    reqwest::Client::new()
        .get(format!("http://{admin}/healthz"))
        .timeout(Duration::from_secs(5))
        .send()
        .await
        .unwrap()
        .status()
}

/// A silent connection and one that stops mid-preface (gRPC) or mid-request-head (admin) are
/// closed after the handshake deadline, while ordinary calls go on.
#[tokio::test]
async fn silent_and_stalled_connections_are_closed_on_both_ports() {
    let config = Config {
        connections: quick(64),
        admin_connections: quick(8),
        ..Config::default()
    };
    let server = TestServer::with(Some(rules_dir()), config).await;
    let mut silent = TcpStream::connect(server.addr).await.unwrap();
    let mut stalled = TcpStream::connect(server.addr).await.unwrap();
    stalled.write_all(b"PRI * HTTP/2.0\r\n").await.unwrap();
    let mut admin_silent = TcpStream::connect(server.admin).await.unwrap();
    let mut admin_stalled = TcpStream::connect(server.admin).await.unwrap();
    admin_stalled
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();

    let mut client = server.client().await;
    client.classify(ticket("during", "Rechnung", "")).await.unwrap();
    assert_eq!(healthz(server.admin).await, 200);

    for (name, stream) in [
        ("gRPC, silent", &mut silent),
        ("gRPC, half a preface", &mut stalled),
        ("admin, silent", &mut admin_silent),
        ("admin, half a request head", &mut admin_stalled),
    ] {
        assert!(
            closed_by_server(stream, Duration::from_secs(8)).await,
            "{name}: still open"
        );
    }
    server.stop().await;
}

/// An HTTP/2 connection without a call in flight is closed (GOAWAY) after the idle timeout;
/// the server advertises its per-connection stream limit.
#[tokio::test]
async fn idle_http2_connections_are_closed_and_streams_are_limited() {
    let config = Config {
        connections: ConnLimits {
            max_streams: 7,
            ..quick(64)
        },
        ..Config::default()
    };
    let server = TestServer::with(Some(rules_dir()), config).await;
    let tcp = TcpStream::connect(server.addr).await.unwrap();
    let (mut send, connection) = h2::client::handshake(tcp).await.unwrap();
    let (limit_tx, limit_rx) = tokio::sync::oneshot::channel();
    let driver = tokio::spawn(async move {
        let mut connection = std::pin::pin!(connection);
        // Drive the connection until the server's SETTINGS arrive, then to its end.
        let _ = tokio::time::timeout(Duration::from_millis(300), &mut connection).await;
        let _ = limit_tx.send(connection.max_concurrent_send_streams());
        connection.await
    });
    let request = http::Request::post(format!("http://{}/grpc.health.v1.Health/Check", server.addr))
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .body(())
        .unwrap();
    let (response, mut body) = send.send_request(request, false).unwrap();
    body.send_data(bytes::Bytes::from_static(&[0, 0, 0, 0, 0]), true)
        .unwrap();
    let response = response.await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(limit_rx.await.unwrap(), 7);
    drop(send);
    let ended = tokio::time::timeout(Duration::from_secs(8), driver).await;
    assert!(ended.is_ok(), "the idle connection was not closed");
    server.stop().await;
}

/// At the connection cap, idle connections make room for newcomers: ordinary calls and health
/// keep working while a crowd of idle connections sits on the port.
#[tokio::test]
async fn at_the_cap_idle_connections_make_room() {
    let config = Config {
        connections: ConnLimits {
            handshake_timeout: Duration::from_secs(30),
            ..quick(4)
        },
        ..Config::default()
    };
    let server = TestServer::with(Some(rules_dir()), config).await;
    let mut crowd = Vec::new();
    for _ in 0..12 {
        let mut s = TcpStream::connect(server.addr).await.unwrap();
        s.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n").await.unwrap();
        crowd.push(s);
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut client = server.client().await;
    let v = client
        .classify(ticket("room", "Abmahnung", ""))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(v.queue, "legal");
    assert_eq!(healthz(server.admin).await, 200);
    let metrics = reqwest::get(server.admin_url("/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let evicted: f64 = metrics
        .lines()
        .filter(|l| l.starts_with("triage_connections_closed_total") && l.contains("evicted"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum();
    assert!(evicted >= 8.0, "{metrics}");
    server.stop().await;
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The attack as reported: a few hundred idle connections against a process allowed 256 open
/// files. The server keeps answering health and calls, and the idle crowd is shed.
#[tokio::test]
async fn an_idle_crowd_larger_than_the_descriptor_limit_does_not_stop_the_service() {
    let (port, admin) = (free_port(), free_port());
    let mut child = Command::new("sh")
        .args(["-c", "ulimit -n 256 && exec \"$@\"", "sh"])
        .arg(env!("CARGO_BIN_EXE_triage"))
        .args([
            "serve",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--admin-listen",
            &format!("127.0.0.1:{admin}"),
            "--handshake-timeout",
            "3",
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
    let mut crowd = Vec::new();
    for _ in 0..400 {
        if let Ok(Ok(s)) =
            tokio::time::timeout(Duration::from_secs(1), TcpStream::connect(("127.0.0.1", port))).await
        {
            crowd.push(s);
        }
    }
    let admin_addr: SocketAddr = format!("127.0.0.1:{admin}").parse().unwrap();
    let outcome = async {
        assert_eq!(healthz(admin_addr).await, 200);
        let v = tokio::time::timeout(
            Duration::from_secs(5),
            client.classify(ticket("crowd", "Rechnung", "")),
        )
        .await
        .expect("Classify did not answer")
        .unwrap()
        .into_inner();
        assert_eq!(v.queue, "contract");
        // A new client gets in too.
        let mut fresh = tokio::time::timeout(Duration::from_secs(5), TriageClient::connect(url.clone()))
            .await
            .expect("no new connection")
            .unwrap();
        fresh.classify(ticket("fresh", "Rechnung", "")).await.unwrap();
    };
    let result = tokio::time::timeout(Duration::from_secs(30), outcome).await;
    let _ = child.kill();
    let _ = child.wait();
    result.expect("the service stopped answering");
}
