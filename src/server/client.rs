//! A blocking client of a running `triage serve` (what `replay --server` uses): domain types in,
//! verdicts out, with the proto conversions of [`super::convert`].
//!
//! A batch is cut into a few contiguous parts, each sent on its own `ClassifyStream` at once, so
//! the server classifies them in parallel (it answers one stream in order); the answers are put
//! back together in input order. A broken stream is fatal: records would otherwise be lost.

use tonic::metadata::{Ascii, MetadataValue};
use tonic::transport::Channel;

use super::convert;
use super::pb::{self, triage_client::TriageClient};
use crate::intake::Input;
use crate::verdict::Verdict;

/// Why a call to the server failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// The URL is not usable.
    #[error("bad server URL `{url}`: {reason}")]
    Url {
        /// The URL.
        url: String,
        /// Why.
        reason: String,
    },
    /// The server could not be reached.
    #[error("cannot connect to {url}: {source}")]
    Connect {
        /// The URL.
        url: String,
        /// Why.
        source: tonic::transport::Error,
    },
    /// The stream failed.
    #[error("ClassifyStream failed: {0}")]
    Stream(#[from] tonic::Status),
    /// The server answered a different number of records, or out of order.
    #[error("the server answered {got} of {sent} records in a stream ({detail})")]
    Lost {
        /// Records sent.
        sent: usize,
        /// Answers received.
        got: usize,
        /// What went wrong.
        detail: String,
    },
    /// The async runtime could not start.
    #[error("starting the async runtime: {0}")]
    Runtime(#[source] std::io::Error),
}

/// A connection to a `triage serve`.
pub struct Client {
    runtime: tokio::runtime::Runtime,
    client: TriageClient<Channel>,
    /// Streams per chunk: the server answers each stream in order, so more streams use more
    /// of its cores.
    streams: usize,
    /// `Bearer <token>` for servers that require authentication.
    authorization: Option<MetadataValue<Ascii>>,
}

impl Client {
    /// Connects to `url` (e.g. `http://127.0.0.1:50051`), using `streams` streams per chunk and
    /// sending `token` as a bearer token when given.
    pub fn connect(url: &str, streams: usize, token: Option<&str>) -> Result<Client, ClientError> {
        let authorization = match token {
            Some(t) => Some(
                format!("Bearer {}", t.trim())
                    .parse()
                    .map_err(|_| ClientError::Url {
                        url: url.to_string(),
                        reason: "the token is not valid header text".into(),
                    })?,
            ),
            None => None,
        };
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .map_err(ClientError::Runtime)?;
        let endpoint = Channel::from_shared(url.to_string()).map_err(|e| ClientError::Url {
            url: url.to_string(),
            reason: e.to_string(),
        })?;
        let channel = runtime
            .block_on(endpoint.connect())
            .map_err(|source| ClientError::Connect {
                url: url.to_string(),
                source,
            })?;
        Ok(Client {
            runtime,
            client: TriageClient::new(channel).max_decoding_message_size(64 * 1024 * 1024),
            streams: streams.max(1),
            authorization,
        })
    }

    /// The serving ruleset's version and queue ids (to label the tables as the server sees them).
    pub fn ruleset(&self) -> Result<(String, Vec<String>), ClientError> {
        let mut client = self.client.clone();
        let request = self.authorize(tonic::Request::new(pb::GetRulesetRequest {}));
        let rs = self.runtime.block_on(client.get_ruleset(request))?.into_inner();
        Ok((rs.version, rs.queues.into_iter().map(|q| q.id).collect()))
    }

    /// Adds the bearer token, when there is one.
    fn authorize<T>(&self, mut request: tonic::Request<T>) -> tonic::Request<T> {
        if let Some(value) = &self.authorization {
            request.metadata_mut().insert("authorization", value.clone());
        }
        request
    }

    /// Classifies `items` over the connection's concurrent `ClassifyStream` calls (each a
    /// contiguous part, so the server works on them in parallel) and returns one answer per
    /// item, in order: the verdict, or the per-record error the server gave.
    ///
    /// # Errors
    /// A stream that fails or answers out of order is fatal ([`ClientError`]): records would
    /// otherwise be lost.
    pub fn classify(&self, items: &[Item<'_>]) -> Result<Vec<Result<Verdict, String>>, ClientError> {
        let per_stream = items.len().div_ceil(self.streams).max(1);
        let answered = self.runtime.block_on(async {
            let tasks: Vec<_> = items
                .chunks(per_stream)
                .map(|part| {
                    let requests: Vec<pb::ClassifyRequest> = part.iter().map(Item::request).collect();
                    let ids: Vec<String> = part.iter().map(|i| i.id.to_string()).collect();
                    let request = self.authorize(tonic::Request::new(tokio_stream::iter(requests)));
                    tokio::spawn(send(self.client.clone(), ids, request))
                })
                .collect();
            let mut answered = Vec::with_capacity(items.len());
            for task in tasks {
                let responses = task.await.map_err(|e| ClientError::Lost {
                    sent: 0,
                    got: 0,
                    detail: e.to_string(),
                })??;
                answered.extend(responses.into_iter().map(convert::from_response));
            }
            Ok::<_, ClientError>(answered)
        })?;
        Ok(answered)
    }
}

/// One message to classify through the server: what the intake takes, plus the caller's id.
#[derive(Debug, Clone, Copy)]
pub struct Item<'a> {
    /// The caller's id, echoed in the verdict.
    pub id: &'a str,
    /// The message.
    pub input: Input<'a>,
    /// The caller's language hint (ISO 639-1).
    pub hint: Option<&'a str>,
}

impl Item<'_> {
    fn request(&self) -> pb::ClassifyRequest {
        convert::to_request(self.id, self.input, self.hint)
    }
}

/// Sends one part over its own stream and collects exactly one answer per request, in order.
async fn send(
    mut client: TriageClient<Channel>,
    ids: Vec<String>,
    requests: tonic::Request<tokio_stream::Iter<std::vec::IntoIter<pb::ClassifyRequest>>>,
) -> Result<Vec<pb::ClassifyResponse>, ClientError> {
    let mut stream = client.classify_stream(requests).await?.into_inner();
    let mut responses = Vec::with_capacity(ids.len());
    while let Some(response) = stream.message().await? {
        let lost = |detail: String| ClientError::Lost {
            sent: ids.len(),
            got: responses.len(),
            detail,
        };
        match ids.get(responses.len()) {
            Some(id) if *id == response.id => responses.push(response),
            Some(id) => return Err(lost(format!("expected id `{id}`, got `{}`", response.id))),
            None => return Err(lost("more answers than requests".into())),
        }
    }
    if responses.len() != ids.len() {
        return Err(ClientError::Lost {
            sent: ids.len(),
            got: responses.len(),
            detail: "the stream ended early".into(),
        });
    }
    Ok(responses)
}
