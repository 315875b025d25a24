//! `GET /shadow` on the admin port: how the shadow ruleset agrees with the live one.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::server::admin::AdminState;

/// The agreement summary as JSON; the same bearer token as the webhook when tokens are
/// configured; 404 when the server runs without a shadow ruleset.
pub async fn summary(State(state): State<AdminState>, headers: HeaderMap) -> Response {
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
    match state.classifier.shadow() {
        Some(shadow) => axum::Json(shadow.report()).into_response(),
        None => (
            StatusCode::NOT_FOUND,
            axum::Json(json!({ "error": "no shadow ruleset: start `triage serve` with --shadow-rules DIR" })),
        )
            .into_response(),
    }
}
