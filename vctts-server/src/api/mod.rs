//! The public HTTP API of the gateway: `/api/v3/*`, the OpenAI-compatible
//! `/v1/audio/speech`, and the cluster endpoints under `/cluster/v1`.
//!
//! - [`context`]: request ids, error bodies, metrics, access log (outermost);
//! - [`limit`]: the core limiter in front of every public endpoint;
//! - [`extract`], [`upload`]: body readers with the API's error codes;
//! - [`synth`], [`batch`], [`voices`], [`preprocess`], [`system`], [`openai`]:
//!   the handlers, one file per group of endpoints;
//! - [`status`]: the status page's feeds (SSE events, the gateway's own endpoint checks);
//! - [`crate::openapi`]: the OpenAPI 3.1 document generated from the handlers.
//!
//! Invariant: every answer of the gateway, including unknown routes and wrong
//! methods, is either the endpoint's success type or the JSON error body.

pub mod batch;
pub mod context;
pub mod extract;
pub mod limit;
pub mod openai;
pub mod preprocess;
pub mod status;
pub mod synth;
pub mod system;
pub mod upload;
pub mod voices;

use crate::error::{ApiError, WireError};
use crate::gateway::Gateway;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use axum::{Extension, Router};
use extract::BodyLimit;
use std::sync::Arc;

async fn not_found(uri: axum::http::Uri) -> ApiError {
    WireError::NotFound(uri.path().to_string()).into()
}

async fn method_not_allowed() -> ApiError {
    WireError::MethodNotAllowed.into()
}

/// The public routes (no state applied yet).
pub fn public_routes(gw: &Arc<Gateway>) -> Router<Arc<Gateway>> {
    let limits = &gw.config().limits;
    let upload = DefaultBodyLimit::max(limits.max_upload_size.0 as usize);
    Router::new()
        .route("/api/v3/synthesize", post(synth::synthesize))
        .route("/api/v3/synthesize/stream", post(synth::synthesize_stream))
        .route("/api/v3/synthesize/batch", post(batch::synthesize_batch))
        .route("/api/v3/extract_voice", post(voices::extract_voice).layer(upload))
        .route("/api/v3/voices", get(voices::list_voices))
        .route(
            "/api/v3/voices/{id}",
            get(voices::get_voice).delete(voices::delete_voice),
        )
        .route("/api/v3/voices/{id}/audio", get(voices::voice_audio))
        .route("/api/v3/preprocess", post(preprocess::preprocess).layer(upload))
        .route("/api/v3/engines", get(system::engines))
        .route("/api/v3/nodes", get(system::nodes))
        .route("/api/v3/health", get(system::health))
        .route("/api/v3/health/live", get(system::live))
        .route("/api/v3/health/ready", get(system::ready))
        .route("/api/v3/metrics", get(system::metrics))
        .route("/api/v3/openapi.json", get(crate::openapi::serve))
        .route("/v1/audio/speech", post(openai::speech))
        .layer(Extension(BodyLimit(limits.max_body_size.0)))
        .layer(axum::middleware::from_fn_with_state(gw.clone(), limit::limit))
}

/// The whole gateway router.
pub fn router(gw: Arc<Gateway>) -> Router {
    let cluster = crate::cluster::gateway_api::router()
        .layer(Extension(BodyLimit(
            crate::cluster::gateway_api::CONTROL_BODY_LIMIT,
        )))
        .layer(axum::middleware::from_fn_with_state(
            gw.clone(),
            crate::cluster::gateway_api::guard,
        ));
    let mut app = Router::new();
    if gw.control_plane() {
        app = app.nest(crate::cluster::proto::PREFIX, cluster);
    }
    let app = app
        .merge(public_routes(&gw))
        .route("/api/v3/events", get(status::events))
        .route("/api/v3/status/endpoints", get(status::endpoints))
        .merge(crate::admin::router(&gw))
        .merge(crate::pages::router())
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(axum::middleware::from_fn_with_state(
            gw.clone(),
            crate::admin::guard::api_guard,
        ))
        .layer(axum::middleware::from_fn_with_state(
            gw.metrics().clone(),
            context::request_context,
        ))
        .with_state(gw);
    // The checks run through the router without the results extension, so
    // their task ends when the served router (which owns the results) is dropped.
    let probes = Arc::new(status::Probes::default());
    status::spawn_checks(app.clone(), Arc::downgrade(&probes));
    app.layer(Extension(probes))
}
