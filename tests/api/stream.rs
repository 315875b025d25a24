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
    assert!(bad.error.contains("neither"), "{bad:?}");
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
