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

/// A rule file changed after the ruleset was loaded but before its directory was watched (a
/// deployment writing rules as the server starts) raised no event the watch could see: the
/// watch looks once when it begins.
#[tokio::test]
async fn a_change_made_before_the_watch_began_is_picked_up() {
    let dir = copy_rules();
    let rules = std::sync::Arc::new(triage::server::Rules::load(Some(dir.path().to_path_buf())).unwrap());
    let first = rules.current().engine.ruleset().version.clone();
    let file = dir.path().join("00-queues.toml");
    let mut text = std::fs::read_to_string(&file).unwrap();
    text.push_str("\n# changed before the watch\n");
    std::fs::write(&file, text).unwrap();
    let _watch = triage::server::reload::watch(rules.clone()).unwrap();
    let deadline = Instant::now() + Duration::from_secs(15);
    while rules.current().engine.ruleset().version == first {
        assert!(
            Instant::now() < deadline,
            "the change was not picked up within 15 s"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
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

/// Reading the watched files (a backup, an editor, a configuration agent, every reload
/// itself), touching them, or writing them back unchanged reloads nothing: not the rules, not
/// the certificates, not the tokens.
#[tokio::test]
async fn reading_or_rewriting_the_watched_files_unchanged_reloads_nothing() {
    use tonic::metadata::MetadataValue;
    use tonic::transport::{Certificate, ClientTlsConfig};

    let rules = copy_rules();
    let pki = crate::tls::pki();
    let tokens_file = pki.dir.path().join("tokens");
    std::fs::write(&tokens_file, "secret\n").unwrap();
    let tokens = std::sync::Arc::new(triage::server::Tokens::load(&tokens_file).unwrap());
    let config = Config {
        tls: Some(crate::tls::tls_files(pki.dir.path(), false)),
        tokens: Some(tokens.clone()),
        ..Config::default()
    };
    let server = TestServer::with(Some(rules.path().to_path_buf()), config).await;
    let tls = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(&pki.ca_pem))
        .domain_name("localhost");
    let mut client = crate::tls::connect(&server, tls).await.unwrap();
    let ruleset = || {
        let mut r = tonic::Request::new(pb::GetRulesetRequest {});
        r.metadata_mut()
            .insert("authorization", MetadataValue::from_static("Bearer secret"));
        r
    };
    let first = client.get_ruleset(ruleset()).await.unwrap().into_inner();

    let mut watched: Vec<std::path::PathBuf> = std::fs::read_dir(rules.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    watched.extend(["server.pem", "server.key", "tokens"].map(|f| pki.dir.path().join(f)));
    let started = Instant::now();
    while started.elapsed() < Duration::from_millis(2500) {
        for file in &watched {
            let bytes = std::fs::read(file).unwrap();
            if started.elapsed() > Duration::from_millis(1200)
                && started.elapsed() < Duration::from_millis(1400)
            {
                // Written back as it was: an event, but no change.
                std::fs::write(file, &bytes).unwrap();
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;

    // The rules were not rebuilt (a rebuild, even to the same version, has a new load time),
    // the tokens not read again; certificates go through the same watch as tokens.
    let now = client.get_ruleset(ruleset()).await.unwrap().into_inner();
    assert_eq!((now.version, now.loaded_at), (first.version, first.loaded_at));
    assert_eq!(tokens.reloads(), 0);

    // A real change still reloads.
    std::fs::write(&tokens_file, "secret\nanother\n").unwrap();
    let deadline = Instant::now() + Duration::from_secs(15);
    while tokens.reloads() == 0 {
        assert!(Instant::now() < deadline, "a changed token file was not reloaded");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    server.stop().await;
}

/// A rule file over the limits (a 20 MB file, a costly regex) is refused on reload before it
/// is compiled (a 200 MB term once drove a serving process past 8 GB), and the last good
/// ruleset keeps serving.
#[tokio::test]
async fn a_ruleset_over_the_limits_is_refused_and_the_last_good_one_keeps_serving() {
    let dir = copy_rules();
    let server = TestServer::with(Some(dir.path().to_path_buf()), Config::default()).await;
    let mut client = server.client().await;
    let first = version(&mut client).await;

    let huge = format!(
        "[[rule]]\nid = \"huge\"\nqueue = \"legal\"\nany = [\"{}\"]\n",
        "x".repeat(20 * 1024 * 1024)
    );
    std::fs::write(dir.path().join("zz-huge.toml"), huge).unwrap();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(version(&mut client).await, first);

    std::fs::remove_file(dir.path().join("zz-huge.toml")).unwrap();
    std::fs::write(
        dir.path().join("zz-costly.toml"),
        "[[rule]]\nid = \"costly\"\nqueue = \"legal\"\nany = ['/(?s).{2000}x.{2000}/']\n",
    )
    .unwrap();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(version(&mut client).await, first);
    let v = client
        .classify(ticket("still", "Rechnung", ""))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (v.ruleset_version.as_str(), v.queue.as_str()),
        (first.as_str(), "contract")
    );
    server.stop().await;
}
