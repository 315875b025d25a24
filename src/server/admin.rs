//! The admin HTTP port: `/metrics`, `/healthz`, `/readyz`, `POST /v1/classify` for helpdesk
//! webhooks, and the playground ([`super::playground`]: `GET /`, `POST /v1/explain`,
//! `GET /v1/ruleset`). Plain HTTP/1.1 (axum), separate from gRPC so probes and scrapes are not
//! subject to the gRPC limits, auth or TLS.
//!
//! Every call that classifies goes one way, [`Call`]: the token, the content type, a permit
//! taken before the body is read, the body within the request timeout, the work off the
//! reactor under the call's deadline, and the message through the one intake
//! ([`message_of`]).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine as _;
use serde::Deserialize;
use serde_json::json;
use tokio_stream::StreamExt;

use super::auth::Tokens;
use super::classifier::{self, CallPermit, Classifier, Failed};
use crate::cancel::Cancel;
use crate::intake::{Input, IntakeError, intake_with};
use crate::mail::Limits;
use crate::message::{Message, Ticket};

/// What the admin handlers share.
#[derive(Clone)]
pub struct AdminState {
    /// The ruleset, limits and permits shared with gRPC.
    pub classifier: Classifier,
    /// Accepted tokens, when authentication is configured.
    pub tokens: Option<Arc<Tokens>>,
    /// The metrics renderer.
    pub metrics: Option<metrics_exporter_prometheus::PrometheusHandle>,
    /// True while the gRPC server accepts calls.
    pub ready: Arc<AtomicBool>,
}

/// The admin routes.
pub fn router(state: AdminState) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route("/v1/classify", post(classify))
        .merge(super::playground::routes())
        .route("/shadow", get(super::shadow::http::summary))
        .with_state(state)
}

/// The largest webhook body read: base64 grows a raw email by a third; leave room for the
/// JSON around it.
fn body_limit(limits: &Limits) -> usize {
    limits.max_message_bytes / 3 * 4 + 64 * 1024
}

async fn metrics(State(state): State<AdminState>) -> Response {
    match &state.metrics {
        Some(handle) => (
            [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
            handle.render(),
        )
            .into_response(),
        None => (
            StatusCode::SERVICE_UNAVAILABLE,
            "metrics recorder not installed\n",
        )
            .into_response(),
    }
}

async fn readyz(State(state): State<AdminState>) -> Response {
    if state.ready.load(Ordering::Acquire) {
        let version = state
            .classifier
            .rules()
            .current()
            .engine
            .ruleset()
            .version
            .clone();
        (StatusCode::OK, format!("ready {version}\n")).into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "not ready\n").into_response()
    }
}

/// The webhook body: ticket fields, or a base64 raw email.
#[derive(Debug, Deserialize)]
struct WebhookRequest {
    #[serde(flatten)]
    ticket: Ticket,
    raw_email: Option<String>,
}

/// A JSON error: `{"error": message}`.
pub(super) fn error(status: StatusCode, message: impl Into<String>) -> Response {
    (status, axum::Json(json!({ "error": message.into() }))).into_response()
}

/// True when the request may use the protected routes: always without tokens, else with a
/// valid token (see [`Tokens::allows_http`]).
pub(super) fn authorized(state: &AdminState, headers: &HeaderMap) -> bool {
    state.tokens.as_ref().is_none_or(|tokens| {
        let auth = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok());
        tokens.allows_http(auth)
    })
}

/// The JSON answer to a request without a valid token.
pub(super) fn unauthorized() -> Response {
    (
        StatusCode::UNAUTHORIZED,
        [(header::WWW_AUTHENTICATE, "Bearer")],
        axum::Json(json!({ "error": "missing or invalid bearer token" })),
    )
        .into_response()
}

/// A call that classifies (the webhook, the playground's explanation), past its checks: the
/// token and the content type are good, it holds a permit and its body has been read.
pub(super) struct Call {
    permit: CallPermit,
    body: Vec<u8>,
    /// When the call arrived: its deadline counts from here, body reading included.
    started: Instant,
}

impl Call {
    /// Checks the token and the content type, takes a permit and reads the body.
    ///
    /// The permit is the same as a gRPC call's, taken before the body is read: JSON, base64 and
    /// MIME decoding of a large body cost as much as the classification, and a body held while
    /// waiting would cost its memory for nothing.
    pub(super) async fn accept(
        state: &AdminState,
        headers: &HeaderMap,
        body: Body,
    ) -> Result<Call, Response> {
        if !authorized(state, headers) {
            return Err(unauthorized());
        }
        if !is_json(headers) {
            return Err(error(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "the body must be JSON: send `Content-Type: application/json`",
            ));
        }
        let permit = state.classifier.admit().map_err(|e| {
            (
                StatusCode::SERVICE_UNAVAILABLE,
                [(header::RETRY_AFTER, "1")],
                axum::Json(json!({ "error": e.to_string() })),
            )
                .into_response()
        })?;
        let started = Instant::now();
        let limit = body_limit(&state.classifier.limits());
        let patience = state.classifier.request_timeout();
        let body = match tokio::time::timeout(patience, read_body(body, headers, limit)).await {
            Ok(read) => read?,
            Err(_) => {
                return Err(error(
                    StatusCode::REQUEST_TIMEOUT,
                    format!("the request body did not arrive within {patience:?}"),
                ));
            }
        };
        Ok(Call {
            permit,
            body,
            started,
        })
    }

    /// The body's size in bytes.
    pub(super) fn size(&self) -> usize {
        self.body.len()
    }

    /// When the call arrived.
    pub(super) fn started(&self) -> Instant {
        self.started
    }

    /// Runs `work` on the body with the serving engine (off the reactor for large bodies),
    /// under the call's deadline. `Err` is the answer for the work's own error or a deadline
    /// passed (504); `Ok(Err)` a bug in triage (the blocking task failed).
    pub(super) async fn run<T: Send + 'static>(
        self,
        state: &AdminState,
        work: impl FnOnce(&[u8], &classifier::Call<'_>) -> Result<T, (StatusCode, String)> + Send + 'static,
    ) -> Result<Result<T, Failed>, Response> {
        let patience = state.classifier.request_timeout();
        let Call {
            permit,
            body,
            started,
        } = self;
        let size = body.len();
        let work = state
            .classifier
            .run(size, permit, "http", move |call| work(&body, call));
        match tokio::time::timeout_at((started + patience).into(), work).await {
            Ok(Ok(Ok(done))) => Ok(Ok(done)),
            Ok(Ok(Err((status, message)))) => Err(error(status, message)),
            Ok(Err(failed)) => Ok(Err(failed)),
            Err(_) => Err(error(
                StatusCode::GATEWAY_TIMEOUT,
                format!("the classification took longer than {patience:?}"),
            )),
        }
    }
}

async fn classify(State(state): State<AdminState>, headers: HeaderMap, body: Body) -> Response {
    let call = match Call::accept(&state, &headers, body).await {
        Ok(call) => call,
        Err(response) => return response,
    };
    let (size, started) = (call.size(), call.started());
    let outcome = call
        .run(&state, |body, work| {
            let (id, message) = message_of(body, work.limits(), work.cancel())?;
            // (Through the call, so that a shadow ruleset gets the message too.)
            work.classify(&id, message)
                .map_err(|e| (StatusCode::GATEWAY_TIMEOUT, e.to_string()))
        })
        .await;
    match outcome {
        Ok(Ok(verdict)) => {
            super::metrics::request_bytes(size);
            super::metrics::classified(&verdict, started.elapsed(), "http");
            axum::Json(verdict).into_response()
        }
        Ok(Err(e)) => {
            super::metrics::failed("http");
            error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string())
        }
        Err(response) => response,
    }
}

/// Reads the body, but never more than `limit` bytes: over it (by `Content-Length` or by
/// counting) the answer is a JSON 413 and the rest is not read.
async fn read_body(body: Body, headers: &HeaderMap, limit: usize) -> Result<Vec<u8>, Response> {
    let too_large = || {
        error(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("the request body exceeds {limit} bytes"),
        )
    };
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(too_large());
    }
    let mut read = Vec::with_capacity(declared.map_or(0, |n| n as usize));
    let mut chunks = body.into_data_stream();
    while let Some(chunk) = chunks.next().await {
        let chunk = chunk.map_err(|e| error(StatusCode::BAD_REQUEST, format!("reading the body: {e}")))?;
        if read.len() + chunk.len() > limit {
            return Err(too_large());
        }
        read.extend_from_slice(&chunk);
    }
    Ok(read)
}

/// A webhook body (ticket fields, or a base64 raw email) through the one intake: the caller's
/// id and the message. Runs off the reactor for large bodies (see [`Call::run`]).
pub(super) fn message_of(
    body: &[u8],
    limits: &Limits,
    cancel: &Cancel,
) -> Result<(String, Message), (StatusCode, String)> {
    let mut request: WebhookRequest =
        serde_json::from_slice(body).map_err(|e| (StatusCode::BAD_REQUEST, format!("invalid JSON: {e}")))?;
    // Numeric ids as written: integers beyond 64 bits would otherwise come back as floats.
    if let Some(id) = crate::message::numeric_id(body) {
        request.ticket.id = id;
    }
    let ticket = &request.ticket;
    let raw;
    let (input, hint) = match request.raw_email.as_deref().map(str::trim) {
        Some(b64) if !b64.is_empty() => {
            raw = base64::engine::general_purpose::STANDARD
                .decode(b64)
                .map_err(|e| (StatusCode::BAD_REQUEST, format!("raw_email is not base64: {e}")))?;
            // The size limit counts what the request carries besides the message, as for a
            // ticket (see crate::intake).
            let size = raw.len() + ticket.id.len() + ticket.language.as_ref().map_or(0, String::len);
            if size > limits.max_message_bytes {
                let e = IntakeError::TooLarge {
                    size,
                    limit: limits.max_message_bytes,
                };
                return Err((StatusCode::PAYLOAD_TOO_LARGE, e.to_string()));
            }
            (Input::Raw(&raw), ticket.language.as_deref())
        }
        // The same rule as gRPC: something to classify, or INVALID_ARGUMENT (here 400).
        _ if ticket.subject.trim().is_empty()
            && ticket.body.trim().is_empty()
            && ticket.headers.is_empty() =>
        {
            return Err((
                StatusCode::BAD_REQUEST,
                "nothing to classify: the request has no `subject`, `body` or `headers`, and no `raw_email`"
                    .to_string(),
            ));
        }
        _ => (Input::Ticket(ticket), None),
    };
    let message = intake_with(input, hint, limits, cancel).map_err(|e| match e {
        IntakeError::Cancelled(_) => (StatusCode::GATEWAY_TIMEOUT, e.to_string()),
        _ => (StatusCode::PAYLOAD_TOO_LARGE, e.to_string()),
    })?;
    Ok((request.ticket.id, message))
}

/// True when the request declares a JSON body, or declares nothing (simple clients).
fn is_json(headers: &HeaderMap) -> bool {
    let Some(value) = headers.get(header::CONTENT_TYPE) else {
        return true;
    };
    let Ok(value) = value.to_str() else {
        return false;
    };
    let essence = value.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    essence == "application/json" || (essence.starts_with("application/") && essence.ends_with("+json"))
}
