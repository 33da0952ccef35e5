//! The worker's HTTP endpoints: the node side of the cluster protocol
//! (`/cluster/v1/*`, token-protected, the token checked before any body is
//! read, bodies capped per call) and an unauthenticated liveness and
//! readiness probe (`/api/v3/health`) for process supervisors.
//!
//! Invariants: every handler goes through the same [`WorkerNode`] the
//! in-process nodes use; a streamed answer is sent one engine chunk per HTTP
//! chunk as soon as it is ready, and when the gateway hangs up the body is
//! dropped, which drops the engine stream and cancels the work; an engine
//! error in the middle of a stream aborts the body (the gateway sees a cut
//! stream, never a well-formed short one).

use super::auth::{ClusterToken, require_token};
use super::proto::{
    AUDIO_DURATION_HEADER, ExtractCall, ExtractResult, INFERENCE_TIME_HEADER, NodeAction, NodeStatus, PREFIX,
    QUEUE_TIME_HEADER, SAMPLE_RATE_HEADER, SynthesizeCall, WireNodeState, WireProfile,
};
use crate::error::{ApiError, ApiResult, WireError};
use crate::http::context::request_context;
use crate::http::extract::{BodyLimit, JsonBody};
use crate::metrics::Metrics;
use crate::worker::node::WorkerNode;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use futures::StreamExt;
use std::sync::Arc;
use vctts_core::VoiceProfile;

/// Largest extraction call body (a reference clip as base64 `f32`).
pub const EXTRACT_BODY_LIMIT: u64 = 64 << 20;
/// Largest synthesis call body (the request and a voice profile).
pub const SYNTHESIZE_BODY_LIMIT: u64 = 16 << 20;
/// Largest body of any other cluster call (actions carry none).
pub const CONTROL_BODY_LIMIT: u64 = 64 << 10;

#[derive(Clone)]
struct WorkerState {
    node: Arc<WorkerNode>,
}

fn profile_of(call: &SynthesizeCall) -> ApiResult<Option<VoiceProfile>> {
    call.profile
        .clone()
        .map(VoiceProfile::try_from)
        .transpose()
        .map_err(ApiError::from)
}

fn header(v: impl ToString) -> HeaderValue {
    HeaderValue::from_str(&v.to_string()).unwrap_or_else(|_| HeaderValue::from_static("0"))
}

async fn synthesize(
    State(s): State<WorkerState>,
    JsonBody(call): JsonBody<SynthesizeCall>,
) -> ApiResult<Response> {
    let profile = profile_of(&call)?;
    let out = s
        .node
        .synthesize_local(&call.request, profile.as_ref(), call.format)
        .await?;
    let content_type = out.content_type.clone();
    // A whole answer made here is in memory: it goes out with its length.
    let bytes = out.body.collect().await?;
    let mut res = Response::new(Body::from(bytes));
    let h = res.headers_mut();
    h.insert(header::CONTENT_TYPE, header(&content_type));
    h.insert(SAMPLE_RATE_HEADER, header(out.sample_rate));
    h.insert(AUDIO_DURATION_HEADER, header(out.duration.as_millis()));
    h.insert(QUEUE_TIME_HEADER, header(out.queue_time.as_millis()));
    h.insert(INFERENCE_TIME_HEADER, header(out.inference_time.as_millis()));
    Ok(res)
}

async fn synthesize_stream(
    State(s): State<WorkerState>,
    JsonBody(call): JsonBody<SynthesizeCall>,
) -> ApiResult<Response> {
    let profile = profile_of(&call)?;
    let stream = s
        .node
        .synthesize_stream_local(&call.request, profile.as_ref())
        .await?;
    let rate = stream.sample_rate;
    let queue = stream.queue_time;
    let body = stream.chunks.map(|item| {
        item.map_err(|e| {
            tracing::warn!(error = %e, "stream failed on the node; aborting the answer");
            std::io::Error::other(e.to_string())
        })
    });
    let mut res = Response::new(Body::from_stream(body));
    let h = res.headers_mut();
    h.insert(header::CONTENT_TYPE, header(format!("audio/pcm;rate={rate}")));
    h.insert(SAMPLE_RATE_HEADER, header(rate));
    h.insert(QUEUE_TIME_HEADER, header(queue.as_millis()));
    Ok(res)
}

async fn extract_voice(
    State(s): State<WorkerState>,
    JsonBody(call): JsonBody<ExtractCall>,
) -> ApiResult<Json<ExtractResult>> {
    let reference = call.reference()?;
    let profile = s.node.extract_local(&reference).await?;
    Ok(Json(ExtractResult {
        profile: WireProfile::from(&profile),
    }))
}

async fn action(State(s): State<WorkerState>, Path(name): Path<String>) -> ApiResult<Json<NodeStatus>> {
    let action = NodeAction::parse(&name).ok_or_else(|| WireError::NotFound(format!("{PREFIX}/{name}")))?;
    tracing::info!(action = action.as_str(), engine = %s.node.kind(), "node action requested by a gateway");
    Ok(Json(s.node.act(action).await?))
}

async fn health(State(s): State<WorkerState>) -> Json<NodeStatus> {
    Json(s.node.status())
}

/// Liveness/readiness for supervisors: 200 when the node takes work, 503 otherwise.
async fn probe(State(s): State<WorkerState>) -> Response {
    let status = s.node.status();
    let ready = matches!(status.state, WireNodeState::Ready | WireNodeState::Busy);
    let code = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let body = serde_json::json!({
        "status": if ready { "ok" } else { "degraded" },
        "live": true,
        "ready": ready,
        "engine": status.engine,
        "state": status.state.as_str(),
        "reason": status.reason,
        "version": env!("CARGO_PKG_VERSION"),
    });
    (code, Json(body)).into_response()
}

async fn not_found(uri: axum::http::Uri) -> ApiError {
    WireError::NotFound(uri.path().to_string()).into()
}

async fn method_not_allowed() -> ApiError {
    WireError::MethodNotAllowed.into()
}

/// The worker's router.
pub fn router(node: Arc<WorkerNode>, token: ClusterToken, metrics: Arc<Metrics>) -> Router {
    let state = WorkerState { node };
    let cluster = Router::new()
        .route(
            "/synthesize",
            post(synthesize).layer(Extension(BodyLimit(SYNTHESIZE_BODY_LIMIT))),
        )
        .route(
            "/synthesize/stream",
            post(synthesize_stream).layer(Extension(BodyLimit(SYNTHESIZE_BODY_LIMIT))),
        )
        .route(
            "/extract_voice",
            post(extract_voice).layer(Extension(BodyLimit(EXTRACT_BODY_LIMIT))),
        )
        .route("/health", get(health))
        .route("/{action}", post(action))
        .layer(Extension(BodyLimit(CONTROL_BODY_LIMIT)))
        .layer(axum::middleware::from_fn_with_state(token, require_token))
        .with_state(state.clone());
    Router::new()
        .nest(PREFIX, cluster)
        .route("/api/v3/health", get(probe).with_state(state))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(axum::middleware::from_fn_with_state(metrics, request_context))
        .layer(crate::http::context::request_id_layer())
}
