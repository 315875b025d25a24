use tokio_stream::StreamExt;
use triage::server::pb;

use crate::helpers::{TestServer, ticket};

#[tokio::test]
async fn a_thousand_streamed_messages_each_get_one_response_in_order() {
    let server = TestServer::start().await;
    let mut client = server.client().await;
    let subjects = [
        "Rechnung",
        "Abmahnung erhalten",
        "Pedido no recibido",
        "Widget not showing",
    ];
    let requests: Vec<pb::ClassifyRequest> = (0..1000)
        .map(|i| {
            if i == 500 {
                // A bad request in the middle: an error response for its id, not the end.
                pb::ClassifyRequest {
                    id: "bad-500".into(),
                    ..Default::default()
                }
            } else {
                ticket(&format!("s-{i}"), subjects[i % subjects.len()], "")
            }
        })
        .collect();
    let expected: Vec<String> = requests.iter().map(|r| r.id.clone()).collect();
    let mut responses = client
        .classify_stream(tokio_stream::iter(requests))
        .await
        .unwrap()
        .into_inner();
    let mut got = Vec::new();
    while let Some(r) = responses.next().await {
        got.push(r.unwrap());
    }
    assert_eq!(got.iter().map(|r| r.id.clone()).collect::<Vec<_>>(), expected);
    let bad = &got[500];
    assert!(bad.error.contains("nothing to classify"), "{bad:?}");
    assert!(bad.queue.is_empty());
    assert!(
        got.iter()
            .enumerate()
            .all(|(i, r)| i == 500 || (r.error.is_empty() && !r.queue.is_empty()))
    );
    assert_eq!(got[1].queue, "legal");
    server.stop().await;
}

#[tokio::test]
async fn a_stream_answers_each_request_before_the_next_is_sent() {
    let server = TestServer::start().await;
    let mut client = server.client().await;
    let (tx, rx) = tokio::sync::mpsc::channel(1);
    let mut responses = client
        .classify_stream(tokio_stream::wrappers::ReceiverStream::new(rx))
        .await
        .unwrap()
        .into_inner();
    for i in 0..3 {
        tx.send(ticket(&format!("i-{i}"), "Käuferschutz", "Paket nie angekommen"))
            .await
            .unwrap();
        let r = responses.next().await.unwrap().unwrap();
        assert_eq!(r.id, format!("i-{i}"));
    }
    drop(tx);
    assert!(responses.next().await.is_none());
    server.stop().await;
}

/// Streams hold a permit for their whole life, so they may not idle: one that sends nothing and
/// one whose client stops reading are both ended after the request timeout, and their permits
/// go back to everyone else.
#[tokio::test]
async fn idle_streams_and_streams_nobody_reads_are_ended_after_the_request_timeout() {
    use std::time::{Duration, Instant};
    use tonic::Code;
    use triage::server::Config;

    let config = Config {
        max_concurrency: 2,
        request_timeout: Duration::from_secs(1),
        ..Config::default()
    };
    let server = TestServer::with(Some(crate::helpers::rules_dir()), config).await;
    let mut client = server.client().await;

    // Sends nothing at all.
    let (_silent_tx, rx) = tokio::sync::mpsc::channel::<pb::ClassifyRequest>(1);
    let mut silent = client
        .classify_stream(tokio_stream::wrappers::ReceiverStream::new(rx))
        .await
        .unwrap()
        .into_inner();
    // Sends requests but never reads: a tiny receive window stalls the server's writes.
    let channel = tonic::transport::Channel::from_shared(server.url())
        .unwrap()
        .initial_stream_window_size(1024)
        .initial_connection_window_size(1024)
        .connect()
        .await
        .unwrap();
    let mut slow_client = pb::triage_client::TriageClient::new(channel);
    let requests = (0..200).map(|i| ticket(&format!("n-{i}"), "Rechnung", &"Rechnung ".repeat(40)));
    let _unread = slow_client
        .classify_stream(tokio_stream::iter(requests))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let refused = client.classify(ticket("while-held", "Rechnung", "")).await;
    assert_eq!(refused.unwrap_err().code(), Code::ResourceExhausted);

    let ended = tokio::time::timeout(Duration::from_secs(10), silent.next())
        .await
        .expect("the silent stream was not ended");
    assert_eq!(ended.unwrap().unwrap_err().code(), Code::DeadlineExceeded);

    // Both streams are gone: nothing in flight, both permits free.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let metrics = reqwest::get(server.admin_url("/metrics"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        if metrics.lines().any(|l| l == "triage_in_flight 0") {
            break;
        }
        assert!(Instant::now() < deadline, "streams still in flight:\n{metrics}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // The client that stopped reading is dropped altogether (its responses would otherwise
    // keep its connection busy for ever).
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let metrics = reqwest::get(server.admin_url("/metrics"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        if metrics
            .lines()
            .any(|l| l.starts_with("triage_connections_closed_total") && l.contains("stalled"))
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the stalled connection is still open:\n{metrics}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let mut other = client.clone();
    let (a, b) = tokio::join!(
        other.classify(ticket("a", "Rechnung", "")),
        client.classify(ticket("b", "Rechnung", ""))
    );
    assert_eq!(
        (a.unwrap().into_inner().id, b.unwrap().into_inner().id),
        ("a".into(), "b".into())
    );
    server.stop().await;
}
