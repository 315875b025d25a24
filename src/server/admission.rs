//! Admission before the body: a classifying call takes its concurrency permit when its headers
//! arrive, before tonic reads and buffers its message.
//!
//! Without this, the body (up to `--max-message-bytes`) is read and held before the handler
//! runs and asks for a permit: hundreds of streams each sending a large message and never
//! finishing kept gigabytes resident. Now a call over the limit is answered RESOURCE_EXHAUSTED
//! at once and its body is never read, so buffered bodies are bounded by
//! `--max-concurrency` × `--max-message-bytes` (plus each connection's HTTP/2 window).

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use http::{Request, Response};
use tonic::Status;
use tonic::server::NamedService;
use tower::Service;

use super::classifier::Classifier;

/// The methods that classify, and so need a permit.
const CLASSIFYING: &[&str] = &["/triage.v1.Triage/Classify", "/triage.v1.Triage/ClassifyStream"];

/// Wraps the triage service: permits first, then the body.
#[derive(Debug, Clone)]
pub struct Admission<S> {
    inner: S,
    classifier: Classifier,
}

impl<S> Admission<S> {
    /// `inner`'s classifying calls take a permit from `classifier` before their body is read;
    /// the handler finds it in the request's extensions ([`super::classifier::CallPermit`]).
    pub fn new(inner: S, classifier: Classifier) -> Admission<S> {
        Admission { inner, classifier }
    }
}

impl<S: NamedService> NamedService for Admission<S> {
    const NAME: &'static str = S::NAME;
}

impl<S, B> Service<Request<B>> for Admission<S>
where
    S: Service<Request<B>, Response = Response<tonic::body::Body>>,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
{
    type Response = Response<tonic::body::Body>;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request<B>) -> Self::Future {
        if CLASSIFYING.contains(&req.uri().path()) {
            match self.classifier.admit() {
                Ok(permit) => {
                    req.extensions_mut().insert(permit);
                }
                Err(e) => {
                    let response = Status::resource_exhausted(e.to_string()).into_http();
                    return Box::pin(std::future::ready(Ok(response)));
                }
            }
        }
        Box::pin(self.inner.call(req))
    }
}
