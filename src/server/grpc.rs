//! The `triage.v1.Triage` service.

use std::pin::Pin;
use std::time::Instant;

use std::future::Future;
use std::task::{Context, Poll};

use tokio::sync::{mpsc, oneshot};
use tokio_stream::{Stream, StreamExt};
use tonic::{Request, Response, Status, Streaming};
use tracing::{Instrument, debug, debug_span, field};

use super::classifier::{CallPermit, Classifier};
use super::convert::{self, RequestError};
use super::deadline::ClientDeadline;
use super::pb;
use super::state::rfc3339;
use crate::verdict::Verdict;

/// Responses buffered per stream before the server stops reading requests: a slow reader
/// pushes back on its writer instead of growing the server's memory.
const STREAM_BUFFER: usize = 16;

/// The service state shared by every call.
#[derive(Debug, Clone)]
pub struct TriageService {
    classifier: Classifier,
}

impl TriageService {
    /// A service over the shared classifier (ruleset, limits, permits).
    pub fn new(classifier: Classifier) -> TriageService {
        TriageService { classifier }
    }

    /// The permit [`super::admission::Admission`] took when the call arrived (or a new one
    /// when the service runs without it).
    fn permit<T>(&self, request: &Request<T>) -> Result<CallPermit, Status> {
        if let Some(permit) = request.extensions().get::<CallPermit>() {
            return Ok(permit.clone());
        }
        self.classifier
            .admit()
            .map_err(|e| Status::resource_exhausted(e.to_string()))
    }
}

/// Classifies one request through the intake, off the reactor when it is large.
async fn classify(
    classifier: &Classifier,
    permit: &CallPermit,
    req: pb::ClassifyRequest,
    rpc: &'static str,
) -> Result<Verdict, RequestError> {
    let size = convert::request_size(&req);
    classifier
        .run(size, permit.clone(), rpc, move |call| {
            let id = req.id.clone();
            let message = convert::to_message_with(req, call.limits(), call.cancel())?;
            call.classify(&id, message)
                .map_err(|c| RequestError::Intake(c.into()))
        })
        .await
        .unwrap_or_else(|e| Err(RequestError::Internal(e.0)))
}

/// Records the outcome of one classification on the current span and in the metrics.
///
/// Call spans are at debug level: at 10,000 calls a second an info span per call would cost
/// more than the classification. `RUST_LOG=triage=debug` shows them (ids, queue, confidence,
/// rule ids, duration; never the text).
fn record(verdict: &Verdict, started: Instant, rpc: &'static str) {
    let span = tracing::Span::current();
    if !span.is_disabled() {
        span.record("queue", verdict.queue.as_str());
        span.record("confidence", verdict.confidence);
        let rules: Vec<&str> = verdict.hits.iter().map(|h| h.rule.as_str()).collect();
        span.record("rules", field::display(rules.join(",")));
        span.record("duration_us", started.elapsed().as_micros() as u64);
        debug!("classified");
    }
    super::metrics::classified(verdict, started.elapsed(), rpc);
}

/// Counts a call in the `triage_in_flight` gauge for as long as it lives.
struct InFlight;

impl InFlight {
    fn enter() -> InFlight {
        super::metrics::in_flight(1.0);
        InFlight
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        super::metrics::in_flight(-1.0);
    }
}

/// Completes at `deadline`, or never when there is none.
async fn sleep_until_some(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}

/// A stream's responses, then the status that ended it early, if one did.
struct Responses {
    rx: mpsc::Receiver<Result<pb::ClassifyResponse, Status>>,
    end: Option<oneshot::Receiver<Status>>,
}

impl Stream for Responses {
    type Item = Result<pb::ClassifyResponse, Status>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if let Some(item) = std::task::ready!(self.rx.poll_recv(cx)) {
            return Poll::Ready(Some(item));
        }
        let Some(end) = &mut self.end else {
            return Poll::Ready(None);
        };
        let status = std::task::ready!(Pin::new(end).poll(cx)).ok();
        self.end = None;
        Poll::Ready(status.map(Err))
    }
}

type ResponseStream = Pin<Box<dyn Stream<Item = Result<pb::ClassifyResponse, Status>> + Send>>;

#[tonic::async_trait]
impl pb::triage_server::Triage for TriageService {
    async fn classify(
        &self,
        request: Request<pb::ClassifyRequest>,
    ) -> Result<Response<pb::ClassifyResponse>, Status> {
        let permit = self.permit(&request)?;
        let _in_flight = InFlight::enter();
        let started = Instant::now();
        let req = request.into_inner();
        super::metrics::request_bytes(convert::request_size(&req));
        let span = debug_span!("classify", id = %req.id, queue = field::Empty, confidence = field::Empty, rules = field::Empty, duration_us = field::Empty);
        async move {
            match classify(&self.classifier, &permit, req, "Classify").await {
                Ok(verdict) => {
                    record(&verdict, started, "Classify");
                    Ok(Response::new(convert::to_response(verdict)))
                }
                Err(e) => {
                    super::metrics::failed("Classify");
                    Err(e.into())
                }
            }
        }
        .instrument(span)
        .await
    }

    type ClassifyStreamStream = ResponseStream;

    async fn classify_stream(
        &self,
        request: Request<Streaming<pb::ClassifyRequest>>,
    ) -> Result<Response<Self::ClassifyStreamStream>, Status> {
        let permit = self.permit(&request)?;
        let client_deadline = request.extensions().get::<ClientDeadline>().copied();
        let mut requests = request.into_inner();
        let (tx, rx) = mpsc::channel(STREAM_BUFFER);
        let (end_tx, end_rx) = oneshot::channel();
        let classifier = self.classifier.clone();
        tokio::spawn(async move {
            // How the stream ends when it ends early: delivered after the responses before it.
            let mut end = None;
            let _in_flight = InFlight::enter();
            // A stream holds a permit for its whole life, so it may not idle: it must send its
            // next request, and read its responses, within the request timeout. The client's
            // own deadline (grpc-timeout) bounds the whole stream.
            let patience = classifier.request_timeout();
            let deadline = client_deadline.map(|d| d.0);
            loop {
                let next = tokio::select! {
                    next = tokio::time::timeout(patience, requests.next()) => next,
                    _ = sleep_until_some(deadline) => {
                        end = Some(Status::deadline_exceeded("the stream's deadline passed"));
                        break;
                    }
                };
                let req = match next {
                    Err(_) => {
                        end = Some(Status::deadline_exceeded(format!(
                            "no request for {patience:?}: the stream was closed"
                        )));
                        break;
                    }
                    Ok(None) => break,
                    Ok(Some(Ok(req))) => req,
                    Ok(Some(Err(status))) => {
                        // The transport failed (e.g. an oversized frame): report and stop.
                        end = Some(status);
                        break;
                    }
                };
                let id = req.id.clone();
                let started = Instant::now();
                super::metrics::request_bytes(convert::request_size(&req));
                let span = debug_span!("classify_stream_item", id = %id, queue = field::Empty, confidence = field::Empty, rules = field::Empty, duration_us = field::Empty);
                // Each message is bounded like a call: by the request timeout (an error response
                // for it, and the stream goes on), by the client's deadline, and by the client
                // staying (a client gone drops the work, which stops it).
                let work =
                    tokio::time::timeout(patience, classify(&classifier, &permit, req, "ClassifyStream"))
                        .instrument(span.clone());
                let outcome = tokio::select! {
                    outcome = work => outcome,
                    _ = tx.closed() => break,
                    _ = sleep_until_some(deadline) => {
                        end = Some(Status::deadline_exceeded("the stream's deadline passed"));
                        break;
                    }
                };
                let response = match outcome {
                    Ok(Ok(verdict)) => {
                        span.in_scope(|| record(&verdict, started, "ClassifyStream"));
                        convert::to_response(verdict)
                    }
                    Ok(Err(e)) => {
                        super::metrics::failed("ClassifyStream");
                        convert::error_response(id, &e.to_string())
                    }
                    Err(_) => {
                        super::metrics::failed("ClassifyStream");
                        let error = format!("the classification took longer than {patience:?}");
                        convert::error_response(id, &error)
                    }
                };
                // Waits while the client is not reading (back-pressure, not buffering), but
                // not for ever: a client that stops reading would hold its permit.
                match tokio::time::timeout(patience, tx.send(Ok(response))).await {
                    Ok(Ok(())) => {}
                    Ok(Err(_)) => break,
                    Err(_) => {
                        debug!("stream closed: its client read no response for {patience:?}");
                        end = Some(Status::deadline_exceeded(format!(
                            "no response was read for {patience:?}: the stream was closed"
                        )));
                        break;
                    }
                }
            }
            if let Some(status) = end {
                let _ = end_tx.send(status);
            }
        });
        Ok(Response::new(Box::pin(Responses {
            rx,
            end: Some(end_rx),
        })))
    }

    async fn get_ruleset(
        &self,
        _request: Request<pb::GetRulesetRequest>,
    ) -> Result<Response<pb::Ruleset>, Status> {
        let loaded = self.classifier.rules().current();
        let rs = loaded.engine.ruleset();
        Ok(Response::new(pb::Ruleset {
            version: rs.version.clone(),
            queues: rs
                .queues
                .iter()
                .map(|q| pb::Queue {
                    id: q.id.clone(),
                    destination: q.destination.clone(),
                    description: q.description.clone(),
                    threshold: q.threshold,
                })
                .collect(),
            rule_count: rs.rules.len() as u32,
            loaded_at: rfc3339(loaded.loaded_at),
            name: rs.name.clone(),
        }))
    }
}
