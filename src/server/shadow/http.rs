//! `GET /shadow` on the admin port: how the shadow ruleset agrees with the live one.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::server::admin::{self, AdminState};

/// The agreement summary as JSON; the webhook's token (as the
/// other admin routes take it) when tokens are configured; 404 when the server runs without a shadow ruleset.
pub async fn summary(State(state): State<AdminState>, headers: HeaderMap) -> Response {
    if !admin::authorized(&state, &headers) {
        return admin::unauthorized();
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
