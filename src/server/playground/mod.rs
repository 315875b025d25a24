//! The playground: `GET /` on the admin port serves one page where a person pastes a message
//! (a ticket's subject and body, or a raw email) or uploads an `.eml` and sees the verdict with
//! its evidence highlighted in place; a second view lists the ruleset and the last reload.
//!
//! The page calls two JSON endpoints, which any client may call too:
//! - `POST /v1/explain`: the webhook's body (`/v1/classify`) → an [`Explanation`]: the verdict,
//!   every queue's score, the evidence and the request and negated spans as byte offsets into
//!   the texts the engine read (positions, never markup).
//! - `GET /v1/ruleset`: the serving ruleset and the last reload ([`ruleset::View`]).
//!
//! The three routes take the webhook's authentication (see [`super::admin::authorized`]); the
//! page answers a request without a token with a Basic challenge, so a browser asks for it.
//! An explanation is the webhook's call in every way ([`super::admin::Call`]: permit, limits,
//! deadline, the one intake) except that it is not counted as traffic in the metrics. Ticket
//! text is never logged.
//!
//! Layout: `page.html`, `page.css`, `page.js` are the page, compiled in (`include_str!`) and
//! served as one document with its style and script inline, so it works offline and its
//! Content-Security-Policy allows nothing else; [`ruleset`] builds the ruleset view.

pub mod ruleset;

use std::sync::LazyLock;

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine as _;
use sha2::{Digest, Sha256};

use super::admin::{self, AdminState, Call};
use crate::engine::explanation::Explanation;

/// The playground's routes, merged into the admin router.
pub fn routes() -> Router<AdminState> {
    Router::new()
        .route("/", get(page))
        .route("/v1/explain", post(explain))
        .route("/v1/ruleset", get(ruleset))
}

/// The page and the policy that lets exactly its own style and script run.
struct Page {
    html: String,
    csp: HeaderValue,
}

const TEMPLATE: &str = include_str!("page.html");
const STYLE: &str = include_str!("page.css");
const SCRIPT: &str = include_str!("page.js");

/// Assembled once: the hashes in the policy are those of the inline style and script, so an
/// injected script could not run even if the page had a bug that let one in.
static PAGE: LazyLock<Page> = LazyLock::new(|| {
    let hash = |text: &str| base64::engine::general_purpose::STANDARD.encode(Sha256::digest(text.as_bytes()));
    let html = TEMPLATE
        .replacen("/*STYLE*/", STYLE, 1)
        .replacen("/*SCRIPT*/", SCRIPT, 1);
    let csp = format!(
        "default-src 'none'; script-src 'sha256-{}'; style-src 'sha256-{}'; connect-src 'self'; \
         img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
        hash(SCRIPT),
        hash(STYLE)
    );
    Page {
        html,
        csp: HeaderValue::from_str(&csp).expect("the policy is ASCII"),
    }
});

async fn page(State(state): State<AdminState>, headers: HeaderMap) -> Response {
    if !admin::authorized(&state, &headers) {
        // A browser shows its own sign-in dialog for a Basic challenge; the token is the
        // password. The body is what a client that cannot sign in sees.
        return (
            StatusCode::UNAUTHORIZED,
            [
                (
                    header::WWW_AUTHENTICATE,
                    "Basic realm=\"triage\", charset=\"UTF-8\"",
                ),
                (header::CONTENT_TYPE, "text/plain; charset=utf-8"),
            ],
            "the playground needs a token: sign in with any user name and the token as password, \
             or send `Authorization: Bearer <token>`\n",
        )
            .into_response();
    }
    let page = &*PAGE;
    (
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/html; charset=utf-8"),
            ),
            (header::CONTENT_SECURITY_POLICY, page.csp.clone()),
            (
                header::X_CONTENT_TYPE_OPTIONS,
                HeaderValue::from_static("nosniff"),
            ),
            (header::REFERRER_POLICY, HeaderValue::from_static("no-referrer")),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
        ],
        page.html.clone(),
    )
        .into_response()
}

/// `POST /v1/explain`: the webhook's call, answered with an [`Explanation`].
async fn explain(State(state): State<AdminState>, headers: HeaderMap, body: Body) -> Response {
    let call = match Call::accept(&state, &headers, body).await {
        Ok(call) => call,
        Err(response) => return response,
    };
    let outcome = call
        .run(&state, |body, work| {
            let (id, message) = admin::message_of(body, work.limits(), work.cancel())?;
            let engine = work.engine();
            let detailed = engine
                .detailed_with(&id, &message, work.cancel())
                .map_err(|e| (StatusCode::GATEWAY_TIMEOUT, e.to_string()))?;
            Ok(Explanation::new(engine, &message, &detailed))
        })
        .await;
    match outcome {
        Ok(Ok(explanation)) => axum::Json(explanation).into_response(),
        Ok(Err(e)) => admin::error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
        Err(response) => response,
    }
}

/// `GET /v1/ruleset`: the serving ruleset and the last reload.
async fn ruleset(State(state): State<AdminState>, headers: HeaderMap) -> Response {
    if !admin::authorized(&state, &headers) {
        return admin::unauthorized();
    }
    let rules = state.classifier.rules();
    let loaded = rules.current();
    let view = ruleset::View::new(&loaded, rules.dir().is_some(), rules.last_reload().as_deref());
    axum::Json(view).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_inlines_its_style_and_script_and_the_policy_allows_only_those() {
        let page = &*PAGE;
        assert!(page.html.contains(SCRIPT) && page.html.contains(STYLE));
        assert!(!page.html.contains("/*SCRIPT*/") && !page.html.contains("/*STYLE*/"));
        let csp = page.csp.to_str().unwrap();
        assert!(csp.starts_with("default-src 'none'"), "{csp}");
        assert_eq!(csp.matches("'sha256-").count(), 2, "{csp}");
    }

    #[test]
    fn the_page_loads_nothing_from_elsewhere() {
        let html = &PAGE.html;
        for external in [
            "http://", "https://", "//cdn", "<link", "src=\"", "@import", "url(",
        ] {
            assert!(!html.contains(external), "the page refers to `{external}`");
        }
    }
}
