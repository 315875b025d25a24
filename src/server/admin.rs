//! The admin HTTP port: `/metrics`, `/healthz`, `/readyz`, and `POST /v1/classify` for
//! helpdesk webhooks. Plain HTTP/1.1 (axum), separate from gRPC so probes and scrapes are not
//! subject to the gRPC limits, auth or TLS.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine as _;
use serde::Deserialize;
use serde_json::json;

use super::auth::Tokens;
use super::state::Rules;
use crate::mail::{self, Limits};
use crate::message::{Message, Ticket};

/// What the admin handlers share.
#[derive(Clone)]
pub struct AdminState {
    /// The serving ruleset.
    pub rules: Arc<Rules>,
    /// Accepted tokens, when authentication is configured.
    pub tokens: Option<Arc<Tokens>>,
    /// Size limits for webhook messages.
    pub limits: Limits,
    /// The metrics renderer.
    pub metrics: Option<metrics_exporter_prometheus::PrometheusHandle>,
    /// True while the gRPC server accepts calls.
    pub ready: Arc<AtomicBool>,
}

/// The admin routes.
pub fn router(state: AdminState) -> Router {
    // base64 grows a raw email by a third; leave room for the JSON around it.
    let body_limit = state.limits.max_message_bytes / 3 * 4 + 64 * 1024;
    Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route("/v1/classify", post(classify))
        .layer(DefaultBodyLimit::max(body_limit))
        .with_state(state)
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
        let version = state.rules.current().engine.ruleset().version.clone();
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

fn error(status: StatusCode, message: impl Into<String>) -> Response {
    (status, axum::Json(json!({ "error": message.into() }))).into_response()
}

async fn classify(State(state): State<AdminState>, headers: HeaderMap, body: Bytes) -> Response {
    if let Some(tokens) = &state.tokens {
        let auth = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok());
        if !tokens.allows(auth) {
            return (
                StatusCode::UNAUTHORIZED,
                [(header::WWW_AUTHENTICATE, "Bearer")],
                axum::Json(json!({ "error": "missing or invalid bearer token" })),
            )
                .into_response();
        }
    }
    let request: WebhookRequest = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => return error(StatusCode::BAD_REQUEST, format!("invalid JSON: {e}")),
    };
    let limits = state.limits;
    let id = request.ticket.id.clone();
    let message = match request.raw_email {
        Some(b64) => {
            let raw = match base64::engine::general_purpose::STANDARD.decode(b64.trim()) {
                Ok(raw) => raw,
                Err(e) => return error(StatusCode::BAD_REQUEST, format!("raw_email is not base64: {e}")),
            };
            match mail::parse(&raw, &limits) {
                Ok(m) => m,
                Err(e @ mail::ParseError::TooLarge { .. }) => {
                    return error(StatusCode::PAYLOAD_TOO_LARGE, e.to_string());
                }
                #[allow(unreachable_patterns)]
                Err(e) => return error(StatusCode::BAD_REQUEST, e.to_string()),
            }
        }
        None => {
            let t = &request.ticket;
            let size =
                t.subject.len() + t.body.len() + t.from.len() + t.to.iter().map(String::len).sum::<usize>();
            if size > limits.max_message_bytes {
                let limit = limits.max_message_bytes;
                return error(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    format!("message of {size} bytes exceeds the limit of {limit} bytes"),
                );
            }
            let mut m = Message::from_ticket(&request.ticket);
            mail::truncate_fields(&mut m, limits.max_text_bytes);
            m
        }
    };
    let started = Instant::now();
    let loaded = state.rules.current();
    let verdict = match tokio::task::spawn_blocking(move || loaded.engine.classify(&id, &message)).await {
        Ok(v) => v,
        Err(e) => {
            super::metrics::failed("http");
            return error(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("classification failed: {e}"),
            );
        }
    };
    super::metrics::request_bytes(body.len());
    super::metrics::classified(&verdict, started.elapsed(), "http");
    axum::Json(verdict).into_response()
}
