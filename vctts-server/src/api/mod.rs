//! The public HTTP API of the gateway: `/api/v3/*`, the OpenAI-compatible
//! `/v1/*` (speech, models, voices), and the cluster endpoints under `/cluster/v1`.
//!
//! - [`context`]: request ids, error bodies, metrics, access log (outermost);
//! - [`limit`]: the core limiter in front of every public endpoint;
//! - [`extract`], [`upload`]: body readers with the API's error codes;
//! - [`encoding`]: the output format of every synthesis path (node bytes →
//!   wav, pcm, mp3, opus, aac, flac; whole or chunk by chunk);
//! - [`synth`], [`batch`], [`voices`], [`preprocess`], [`system`], [`openai`]:
//!   the handlers, one file per group of endpoints;
//! - [`xtts_compat`]: xtts-api-server's endpoints (`compat.xtts_api_server`);
//! - [`gsv_compat`]: GPT-SoVITS `api_v2.py`'s endpoints (`compat.gpt_sovits_api`);
//! - [`status`]: the status page's feeds (SSE events, the gateway's own endpoint checks);
//! - [`crate::openapi`]: the OpenAPI 3.1 document generated from the handlers.
//!
//! Invariant: every answer of the gateway, including unknown routes and wrong
//! methods, is either the endpoint's success type or the JSON error body.

pub mod batch;
pub mod context;
pub mod encoding;
pub mod extract;
pub mod forwarded;
pub mod gsv_compat;
pub mod limit;
pub mod openai;
pub mod preprocess;
pub mod status;
pub mod synth;
pub mod system;
pub mod upload;
pub mod voices;
pub mod xtts_compat;

use crate::error::{ApiError, WireError};
use crate::gateway::Gateway;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use axum::{Extension, Router};
use extract::BodyLimit;
use std::sync::Arc;

/// Longest request URI the gateway serves.
pub const MAX_URI_BYTES: usize = 8 << 10;
/// Largest total size of a request's headers.
pub const MAX_HEADER_BYTES: usize = 32 << 10;

/// Whether a percent-encoded path decodes to UTF-8.
pub fn path_is_utf8(path: &str) -> bool {
    let b = path.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = |c: u8| (c as char).to_digit(16);
        if b[i] == b'%' && i + 2 < b.len() {
            if let (Some(h), Some(l)) = (hex(b[i + 1]), hex(b[i + 2])) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    std::str::from_utf8(&out).is_ok()
}

/// Refuses requests whose URI or headers are too large, or whose path is
/// not UTF-8, with the JSON error body (before any handler runs).
async fn request_shape(
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let uri_len = req.uri().to_string().len();
    if uri_len > MAX_URI_BYTES {
        return ApiError::from(WireError::UriTooLong { limit: MAX_URI_BYTES }).into_response();
    }
    let header_bytes: usize = req
        .headers()
        .iter()
        .map(|(k, v)| k.as_str().len() + v.len() + 4)
        .sum();
    if header_bytes > MAX_HEADER_BYTES {
        return ApiError::from(WireError::HeadersTooLarge {
            limit: MAX_HEADER_BYTES,
        })
        .into_response();
    }
    if !path_is_utf8(req.uri().path()) {
        return ApiError::from(WireError::InvalidPath).into_response();
    }
    next.run(req).await
}

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
    let routes = Router::new()
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
        .route("/v1/audio/voices", get(openai::list_voices))
        .route("/v1/models", get(openai::list_models))
        .route("/v1/models/{id}", get(openai::get_model));
    let compat = &gw.config().compat;
    let routes = if compat.xtts_api_server {
        routes.merge(xtts_compat::routes())
    } else {
        routes
    };
    let routes = if compat.gpt_sovits_api {
        routes.merge(gsv_compat::routes())
    } else {
        routes
    };
    routes
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
        .layer(axum::middleware::from_fn(request_shape))
        .layer(axum::middleware::from_fn_with_state(
            gw.metrics().clone(),
            context::request_context,
        ))
        .layer(context::request_id_layer())
        .layer(axum::middleware::from_fn_with_state(
            Arc::new(forwarded::TrustedProxies(
                gw.config()
                    .server
                    .trusted_proxies
                    .iter()
                    .filter_map(|e| forwarded::parse_proxy(e).ok())
                    .collect(),
            )),
            forwarded::forwarded,
        ))
        .with_state(gw);
    // The checks run through the router without the results extension, so
    // their task ends when the served router (which owns the results) is dropped.
    let probes = Arc::new(status::Probes::default());
    status::spawn_checks(app.clone(), Arc::downgrade(&probes));
    app.layer(Extension(probes))
}
