use std::time::{Duration, Instant};

use tokio_stream::StreamExt;
use tonic::Code;
use triage::server::Config;

use crate::helpers::{TestServer, rules_dir, ticket};

#[tokio::test]
async fn a_flood_beyond_the_limit_is_shed_quickly_and_the_service_recovers() {
    let config = Config {
        max_concurrency: 2,
        ..Config::default()
    };
    let server = TestServer::with(Some(rules_dir()), config).await;
    let mut client = server.client().await;

    // Two long-lived streams hold both permits: the server is saturated.
    let mut held = Vec::new();
    for n in 0..2 {
        let (tx, rx) = tokio::sync::mpsc::channel(4);
        let mut responses = client
            .classify_stream(tokio_stream::wrappers::ReceiverStream::new(rx))
            .await
            .unwrap()
            .into_inner();
        tx.send(ticket(&format!("held-{n}"), "Rechnung", ""))
            .await
            .unwrap();
        assert_eq!(responses.next().await.unwrap().unwrap().id, format!("held-{n}"));
        held.push((tx, responses));
    }

    // The flood: every call is refused at once with RESOURCE_EXHAUSTED, none queues.
    let started = Instant::now();
    let flood: Vec<_> = (0..200)
        .map(|i| {
            let mut c = client.clone();
            tokio::spawn(async move { c.classify(ticket(&format!("f-{i}"), "Rechnung", "")).await })
        })
        .collect();
    let mut shed = 0;
    for call in flood {
        match call.await.unwrap() {
            Err(status) if status.code() == Code::ResourceExhausted => shed += 1,
            other => panic!("expected RESOURCE_EXHAUSTED, got {other:?}"),
        }
    }
    assert_eq!(shed, 200);
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "shedding took {:?}",
        started.elapsed()
    );

    // The accepted calls keep working during the flood.
    for (n, (tx, responses)) in held.iter_mut().enumerate() {
        tx.send(ticket(&format!("again-{n}"), "Abmahnung", ""))
            .await
            .unwrap();
        let r = responses.next().await.unwrap().unwrap();
        assert_eq!(
            (r.id.as_str(), r.queue.as_str()),
            (format!("again-{n}").as_str(), "legal")
        );
    }

    // Flood over, permits back: the service recovers at once.
    drop(held);
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        match client.classify(ticket("recovered", "Rechnung", "")).await {
            Ok(r) => {
                assert_eq!(r.into_inner().id, "recovered");
                break;
            }
            Err(s) if s.code() == Code::ResourceExhausted && Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Err(s) => panic!("did not recover: {s:?}"),
        }
    }
    let metrics = reqwest::get(server.admin_url("/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let shed_total: f64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("triage_load_shed_total "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0.0);
    assert!(shed_total >= 200.0, "{metrics}");
    server.stop().await;
}

/// A call over the concurrency limit is refused when its headers arrive, before its body is
/// read: a body that is sent slowly (or never finished) is never buffered while it waits.
#[tokio::test]
async fn a_call_over_the_limit_is_shed_before_its_body_is_read() {
    let config = Config {
        max_concurrency: 1,
        ..Config::default()
    };
    let server = TestServer::with(Some(rules_dir()), config).await;
    let mut client = server.client().await;
    // One stream holds the only permit.
    let (tx, rx) = tokio::sync::mpsc::channel(4);
    let mut held = client
        .classify_stream(tokio_stream::wrappers::ReceiverStream::new(rx))
        .await
        .unwrap()
        .into_inner();
    tx.send(ticket("held", "Rechnung", "")).await.unwrap();
    assert_eq!(held.next().await.unwrap().unwrap().id, "held");

    // A raw HTTP/2 call announcing a 5 MB message and sending 64 KB of it, never the rest.
    let tcp = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    let (send, connection) = h2::client::handshake(tcp).await.unwrap();
    tokio::spawn(connection);
    let mut send = send.ready().await.unwrap();
    let request = http::Request::post(format!("http://{}/triage.v1.Triage/Classify", server.addr))
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .body(())
        .unwrap();
    let (response, mut body) = send.send_request(request, false).unwrap();
    let mut frame = vec![0u8];
    frame.extend(5_000_000u32.to_be_bytes());
    frame.extend(vec![b'x'; 64 * 1024]);
    body.send_data(bytes::Bytes::from(frame), false).unwrap();
    let response = tokio::time::timeout(Duration::from_secs(5), response)
        .await
        .expect("no answer while the body is incomplete: it is being buffered")
        .unwrap();
    assert_eq!(response.headers()["grpc-status"], "8", "{response:?}");
    drop(tx);
    server.stop().await;
}
