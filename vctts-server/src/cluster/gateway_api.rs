//! The gateway's side of the cluster protocol (`/cluster/v1/*`,
//! token-protected): membership (`register`, `heartbeat`, `deregister`) and
//! node actions on behalf of operators (`GET /nodes`,
//! `POST /nodes/{id}/{activate|standby|stop|start}`, `GET /nodes/{id}/health`).
//!
//! Invariants: a registration with another protocol version is refused; node
//! ids are derived from the endpoint, so a worker keeps its id across gateway
//! restarts, and an id held by a live node at another address is refused
//! (`409 invalid_node_state`), never taken over; after an action the registry takes the state the node answered
//! at once, so routing changes without waiting for a heartbeat; a heartbeat
//! from an id the gateway does not know is answered `404 unknown_node`, which
//! tells the worker to register again; the token is checked before any body
//! is read and control messages are small ([`CONTROL_BODY_LIMIT`]); every
//! state-changing call (register, deregister, node actions — not heartbeats)
//! is written to the audit log like an admin action, refused ones included.

use super::CallContext;
use super::proto::{
    DeregisterRequest, HeartbeatRequest, NodeAction, NodeStatus, PROTOCOL_VERSION, RegisterRequest,
    RegisterResponse,
};
use crate::error::{ApiResult, WireError};
use crate::gateway::{Gateway, node_id_for, node_metrics, node_state, nodes_response};
use crate::http::context::RequestId;
use crate::http::extract::JsonBody;
use crate::wire::NodesResponse;
use axum::extract::{OriginalUri, Path, Request, State};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::Response;
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use std::sync::Arc;
use vctts_core::Error;
use vctts_core::registry::{NodeId, NodeInfo, NodeState};

/// Largest body of a control message (register, heartbeat, deregister,
/// node actions).
pub const CONTROL_BODY_LIMIT: u64 = 256 << 10;

/// The token check of the gateway's control plane, with audit records for
/// state-changing calls (actor `cluster-token`, or `anonymous` when refused).
pub async fn guard(State(gw): State<Arc<Gateway>>, req: Request, next: Next) -> Response {
    let path = req
        .extensions()
        .get::<OriginalUri>()
        .map(|u| u.path().to_string())
        .unwrap_or_else(|| req.uri().path().to_string());
    let audited = req.method() != Method::GET && !path.ends_with("/heartbeat");
    let action = format!("{} {}", req.method(), path);
    let ip = crate::http::context::client_addr(req.extensions()).map(|a| a.ip().to_string());
    let rid = req.extensions().get::<RequestId>().map(|r| r.0.clone());
    if !gw.token().accepts(req.headers()) {
        if audited {
            gw.ops().audit(
                "anonymous",
                &action,
                &path,
                "denied: missing or wrong cluster token",
                rid.as_deref(),
                ip,
            );
        }
        return super::auth::refuse(&req);
    }
    let res = next.run(req).await;
    if audited {
        let result = if res.status().is_success() {
            "ok".to_string()
        } else {
            format!("failed: {}", res.status().as_u16())
        };
        gw.ops()
            .audit("cluster-token", &action, &path, &result, rid.as_deref(), ip);
    }
    res
}

async fn register(
    State(gw): State<Arc<Gateway>>,
    JsonBody(req): JsonBody<RegisterRequest>,
) -> ApiResult<Json<RegisterResponse>> {
    if req.protocol != PROTOCOL_VERSION {
        return Err(Error::invalid(
            "protocol",
            format!(
                "worker speaks cluster protocol {}, this gateway speaks {PROTOCOL_VERSION}",
                req.protocol
            ),
        )
        .into());
    }
    let endpoint = req.endpoint.trim_end_matches('/').to_string();
    if !(endpoint.starts_with("http://") || endpoint.starts_with("https://")) {
        return Err(Error::invalid("endpoint", format!("{endpoint:?} must be an http(s) URL")).into());
    }
    let id = node_id_for(req.engine, &endpoint);
    // An id is never taken over from a live node at another address.
    if let Some(held) = gw.registry().node(&id) {
        if held.info.endpoint != endpoint && held.state != NodeState::Offline {
            return Err(Error::NodeState {
                node: id.to_string(),
                state: held.state.to_string(),
                message: format!(
                    "the id is held by the live node at {}; {endpoint} cannot register under it",
                    held.info.endpoint
                ),
            }
            .into());
        }
    }
    let mut info = NodeInfo::new(id.clone(), req.engine, endpoint);
    info.capacity = req.capacity.max(1);
    info.weight = req.weight.max(1);
    info.labels = req.labels;
    info.version = req.version;
    let id = gw.register_remote(info, node_state(req.state), req.info, req.reason)?;
    gw.registry().report(
        &id,
        node_state(req.state),
        req.seq,
        Some(node_metrics(&req.metrics)),
    )?;
    let cfg = &gw.config().registry;
    Ok(Json(RegisterResponse {
        node_id: id.to_string(),
        heartbeat_interval_secs: cfg.heartbeat_interval.0.as_secs_f64(),
        dead_threshold_secs: cfg.dead_threshold.0.as_secs_f64(),
    }))
}

async fn heartbeat(
    State(gw): State<Arc<Gateway>>,
    JsonBody(req): JsonBody<HeartbeatRequest>,
) -> ApiResult<Json<serde_json::Value>> {
    let id: NodeId = req.node_id.parse()?;
    let metrics = node_metrics(&req.metrics);
    gw.registry()
        .report(&id, node_state(req.state), req.seq, Some(metrics.clone()))?;
    gw.suspects().heartbeat(&id, &metrics);
    gw.update_link(&id, req.info, req.reason);
    Ok(Json(serde_json::json!({ "ok": true })))
}

async fn deregister(
    State(gw): State<Arc<Gateway>>,
    JsonBody(req): JsonBody<DeregisterRequest>,
) -> ApiResult<Json<serde_json::Value>> {
    let id: NodeId = req.node_id.parse()?;
    gw.registry().deregister(&id)?;
    gw.remove_link(&id);
    Ok(Json(serde_json::json!({ "ok": true })))
}

async fn list_nodes(State(gw): State<Arc<Gateway>>) -> Json<NodesResponse> {
    Json(nodes_response(&gw))
}

async fn node_health(
    State(gw): State<Arc<Gateway>>,
    Extension(rid): Extension<RequestId>,
    Path(id): Path<String>,
) -> ApiResult<Json<NodeStatus>> {
    let id: NodeId = id.parse()?;
    let link = gw.link(&id).ok_or_else(|| Error::UnknownNode(id.to_string()))?;
    let ctx = CallContext { request_id: rid.0 };
    Ok(Json(link.api.health(&ctx).await?))
}

/// Runs an action on a node and applies the state it answers.
pub async fn node_action(
    gw: &Gateway,
    id: &NodeId,
    action: NodeAction,
    request_id: String,
) -> ApiResult<NodeStatus> {
    let link = gw.link(id).ok_or_else(|| Error::UnknownNode(id.to_string()))?;
    let ctx = CallContext { request_id };
    tracing::info!(node_id = %id, action = action.as_str(), "node action");
    let status = link.api.control(&ctx, action).await?;
    gw.registry()
        .report(id, node_state(status.state), status.seq, None)?;
    gw.update_link(id, status.info.clone(), status.reason.clone());
    Ok(status)
}

async fn action(
    State(gw): State<Arc<Gateway>>,
    Extension(rid): Extension<RequestId>,
    Path((id, name)): Path<(String, String)>,
) -> ApiResult<Json<NodeStatus>> {
    let action = NodeAction::parse(&name)
        .ok_or_else(|| WireError::NotFound(format!("/cluster/v1/nodes/{id}/{name}")))?;
    let id: NodeId = id.parse()?;
    Ok(Json(node_action(&gw, &id, action, rid.0).await?))
}

/// The membership and node-action routes (to nest under `/cluster/v1`, behind
/// the token check).
pub fn router() -> Router<Arc<Gateway>> {
    Router::new()
        .route("/register", post(register))
        .route("/heartbeat", post(heartbeat))
        .route("/deregister", post(deregister))
        .route("/nodes", get(list_nodes))
        .route("/nodes/{id}/health", get(node_health))
        .route("/nodes/{id}/{action}", post(action))
}
