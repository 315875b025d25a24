//! Replay through a running `triage serve`: the production path, over `ClassifyStream`.
//!
//! Each chunk is cut into a few contiguous parts, each sent on its own stream at once, so the
//! server classifies them in parallel (it answers one stream in order); the answers are put
//! back together in input order. A broken stream is fatal: records would otherwise be lost.

use tonic::metadata::{Ascii, MetadataValue};
use tonic::transport::Channel;

use super::outcome::{Meta, Outcome};
use super::run::Prepared;
use super::source::Payload;
use crate::server::pb::{self, classify_request::Input, triage_client::TriageClient};
use crate::verdict::Verdict;

/// Why the server path failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RemoteError {
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
pub struct Remote {
    runtime: tokio::runtime::Runtime,
    client: TriageClient<Channel>,
    /// Streams per chunk: the server answers each stream in order, so more streams use more
    /// of its cores.
    streams: usize,
    /// `Bearer <token>` for servers that require authentication.
    authorization: Option<MetadataValue<Ascii>>,
}

impl Remote {
    /// Connects to `url` (e.g. `http://127.0.0.1:50051`), using `streams` streams per chunk and
    /// sending `token` as a bearer token when given.
    pub fn connect(url: &str, streams: usize, token: Option<&str>) -> Result<Remote, RemoteError> {
        let authorization = match token {
            Some(t) => Some(
                format!("Bearer {}", t.trim())
                    .parse()
                    .map_err(|_| RemoteError::Url {
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
            .map_err(RemoteError::Runtime)?;
        let endpoint = Channel::from_shared(url.to_string()).map_err(|e| RemoteError::Url {
            url: url.to_string(),
            reason: e.to_string(),
        })?;
        let channel = runtime
            .block_on(endpoint.connect())
            .map_err(|source| RemoteError::Connect {
                url: url.to_string(),
                source,
            })?;
        Ok(Remote {
            runtime,
            client: TriageClient::new(channel).max_decoding_message_size(64 * 1024 * 1024),
            streams: streams.max(1),
            authorization,
        })
    }

    /// The serving ruleset's version and queue ids (to label the tables as the server sees them).
    pub fn ruleset(&self) -> Result<(String, Vec<String>), RemoteError> {
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

    /// Classifies a chunk on the server; records that failed here pass through.
    pub fn classify(&self, prepared: Vec<Prepared>) -> Result<Vec<Outcome>, RemoteError> {
        let mut slots: Vec<Option<Outcome>> = Vec::with_capacity(prepared.len());
        let mut pending = Vec::new();
        for (i, p) in prepared.into_iter().enumerate() {
            match p {
                Prepared::Failed(outcome) => slots.push(Some(outcome)),
                Prepared::Ready {
                    meta,
                    payload,
                    candidate,
                } => {
                    slots.push(None);
                    pending.push((i, meta, payload, candidate));
                }
            }
        }
        let per_stream = pending.len().div_ceil(self.streams).max(1);
        let mut parts = Vec::new();
        let mut rest = pending.into_iter();
        loop {
            let part: Vec<_> = rest.by_ref().take(per_stream).collect();
            if part.is_empty() {
                break;
            }
            parts.push(part);
        }
        let answered = self.runtime.block_on(async {
            let tasks: Vec<_> = parts
                .iter()
                .map(|part| {
                    let requests: Vec<pb::ClassifyRequest> = part
                        .iter()
                        .map(|(_, meta, payload, _)| request(meta, payload))
                        .collect();
                    let ids: Vec<String> = requests.iter().map(|r| r.id.clone()).collect();
                    let request = self.authorize(tonic::Request::new(tokio_stream::iter(requests)));
                    tokio::spawn(send(self.client.clone(), ids, request))
                })
                .collect();
            let mut answered = Vec::new();
            for task in tasks {
                answered.push(task.await.map_err(|e| RemoteError::Lost {
                    sent: 0,
                    got: 0,
                    detail: e.to_string(),
                })??);
            }
            Ok::<_, RemoteError>(answered)
        })?;
        for (part, responses) in parts.into_iter().zip(answered) {
            for ((i, meta, _, candidate), response) in part.into_iter().zip(responses) {
                slots[i] = Some(match verdict_of(response) {
                    Ok(verdict) => Outcome::classified(meta, &verdict, candidate.as_ref()),
                    Err(error) => Outcome::failed(meta, error),
                });
            }
        }
        Ok(slots
            .into_iter()
            .map(|s| s.expect("every slot is filled"))
            .collect())
    }
}

/// Sends one part over its own stream and collects exactly one answer per request, in order.
async fn send(
    mut client: TriageClient<Channel>,
    ids: Vec<String>,
    requests: tonic::Request<tokio_stream::Iter<std::vec::IntoIter<pb::ClassifyRequest>>>,
) -> Result<Vec<pb::ClassifyResponse>, RemoteError> {
    let mut stream = client.classify_stream(requests).await?.into_inner();
    let mut responses = Vec::with_capacity(ids.len());
    while let Some(response) = stream.message().await? {
        let lost = |detail: String| RemoteError::Lost {
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
        return Err(RemoteError::Lost {
            sent: ids.len(),
            got: responses.len(),
            detail: "the stream ended early".into(),
        });
    }
    Ok(responses)
}

/// The wire request for a record.
fn request(meta: &Meta, payload: &Payload) -> pb::ClassifyRequest {
    let input = match payload {
        Payload::Raw(bytes) => Input::RawEmail(bytes::Bytes::copy_from_slice(bytes)),
        Payload::Ticket(t) => Input::Ticket(pb::Ticket {
            subject: t.subject.clone(),
            body: t.body.clone(),
            from: t.from.clone(),
            to: t.to.clone(),
            language: t.language.clone().unwrap_or_default(),
            headers: t.headers.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
        }),
    };
    pb::ClassifyRequest {
        id: meta.id.clone(),
        input: Some(input),
    }
}

/// The server's answer as the same [`Verdict`] the engine gives, or its per-record error.
pub fn verdict_of(r: pb::ClassifyResponse) -> Result<Verdict, String> {
    crate::server::convert::from_response(r)
}
