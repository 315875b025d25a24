use std::time::{Duration, Instant};

use triage::server::Config;
use triage::server::pb;

use crate::helpers::{TestServer, copy_rules, ticket};

async fn version(client: &mut pb::triage_client::TriageClient<tonic::transport::Channel>) -> String {
    client
        .get_ruleset(pb::GetRulesetRequest {})
        .await
        .unwrap()
        .into_inner()
        .version
}

#[tokio::test]
async fn editing_a_rule_file_swaps_in_a_new_version_and_a_broken_one_is_refused() {
    let dir = copy_rules();
    let server = TestServer::with(Some(dir.path().to_path_buf()), Config::default()).await;
    let mut client = server.client().await;
    let first = version(&mut client).await;

    // A comment changes the bytes, so the version; editors replace files, so write a new one
    // and rename it over the old, as they do.
    let file = dir.path().join("00-queues.toml");
    let mut text = std::fs::read_to_string(&file).unwrap();
    text.push_str("\n# reviewed\n");
    let tmp = dir.path().join(".00-queues.toml.swp");
    std::fs::write(&tmp, &text).unwrap();
    std::fs::rename(&tmp, &file).unwrap();
    let second = wait_for_change(&mut client, &first).await;
    assert_ne!(second, first);
    let v = client
        .classify(ticket("r", "Rechnung", ""))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(v.ruleset_version, second);

    // A broken file: refused, the last good ruleset keeps serving.
    std::fs::write(
        dir.path().join("zz-broken.toml"),
        "[[rule]]\nid = \"x\"\nqueue = \n",
    )
    .unwrap();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(version(&mut client).await, second);
    let v = client
        .classify(ticket("r2", "Rechnung", ""))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(v.ruleset_version, second);
    assert_eq!(v.queue, "contract");

    // Fixing it is picked up again.
    std::fs::write(dir.path().join("zz-broken.toml"), "# fixed\n").unwrap();
    let third = wait_for_change(&mut client, &second).await;
    assert_ne!(third, second);
    server.stop().await;
}

async fn wait_for_change(
    client: &mut pb::triage_client::TriageClient<tonic::transport::Channel>,
    from: &str,
) -> String {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let now = version(client).await;
        if now != from {
            return now;
        }
        assert!(
            Instant::now() < deadline,
            "the version did not change within 15 s"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
