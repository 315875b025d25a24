//! Starts the real server on 127.0.0.1:0 and connects generated clients to it.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tonic::transport::Channel;
use triage::server::milter::{Address, Listener};
use triage::server::pb::triage_client::TriageClient;
use triage::server::{self, Config, Listeners, Rules, ServeError};

/// The crate's default ruleset directory.
pub fn rules_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("rules")
}

/// A running server; dropping it without [`TestServer::stop`] leaves the task to the runtime.
pub struct TestServer {
    pub addr: SocketAddr,
    pub admin: SocketAddr,
    /// The milter's address, when one listens.
    pub milter: Option<Address>,
    pub rules: Arc<Rules>,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<Result<(), ServeError>>,
}

impl TestServer {
    /// Starts a server on the default rules with the default configuration.
    pub async fn start() -> TestServer {
        TestServer::with(Some(rules_dir()), Config::default()).await
    }

    /// Starts a server on `rules` (a directory, or the built-in ruleset) with `config`.
    pub async fn with(rules: Option<PathBuf>, config: Config) -> TestServer {
        TestServer::serving(rules, config, None).await
    }

    /// Starts a server with the milter on `milter` (127.0.0.1:0 when `None`).
    pub async fn with_milter(rules: Option<PathBuf>, config: Config, milter: Option<Address>) -> TestServer {
        let address = milter.unwrap_or_else(|| Address::Inet("127.0.0.1:0".parse().unwrap()));
        let listener = Listener::bind(&address).await.unwrap();
        TestServer::serving(rules, config, Some(listener)).await
    }

    async fn serving(rules: Option<PathBuf>, config: Config, milter: Option<Listener>) -> TestServer {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let admin = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let admin_addr = admin.local_addr().unwrap();
        let milter_addr = milter.as_ref().map(|m| m.local_addr().unwrap());
        let rules = Arc::new(Rules::load(rules).unwrap());
        let (stop, stopped) = oneshot::channel::<()>();
        let listeners = Listeners {
            grpc: listener,
            admin: Some(admin),
            milter,
        };
        let task = tokio::spawn(server::serve_on(listeners, rules.clone(), config, async {
            let _ = stopped.await;
        }));
        TestServer {
            addr,
            admin: admin_addr,
            milter: milter_addr,
            rules,
            stop: Some(stop),
            task,
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn admin_url(&self, path: &str) -> String {
        format!("http://{}{path}", self.admin)
    }

    pub async fn channel(&self) -> Channel {
        Channel::from_shared(self.url()).unwrap().connect().await.unwrap()
    }

    pub async fn client(&self) -> TriageClient<Channel> {
        TriageClient::new(self.channel().await)
    }

    /// Signals shutdown and waits for the server to return.
    pub async fn stop(mut self) {
        let _ = self.stop.take().unwrap().send(());
        self.task.await.unwrap().unwrap();
    }
}

/// A ticket request.
pub fn ticket(id: &str, subject: &str, body: &str) -> triage::server::pb::ClassifyRequest {
    use triage::server::pb;
    pb::ClassifyRequest {
        id: id.to_string(),
        input: Some(pb::classify_request::Input::Ticket(pb::Ticket {
            subject: subject.to_string(),
            body: body.to_string(),
            ..Default::default()
        })),
        ..Default::default()
    }
}

/// A raw-email request.
pub fn raw(id: &str, bytes: Vec<u8>) -> triage::server::pb::ClassifyRequest {
    use triage::server::pb;
    pb::ClassifyRequest {
        id: id.to_string(),
        input: Some(pb::classify_request::Input::RawEmail(bytes.into())),
        ..Default::default()
    }
}

/// Copies the default rules into a fresh temporary directory (for reload tests).
pub fn copy_rules() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for entry in std::fs::read_dir(rules_dir()).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "toml") {
            std::fs::copy(&path, dir.path().join(path.file_name().unwrap())).unwrap();
        }
    }
    dir
}
