//! The admin endpoints (`/admin/api/*`) and the public announcements list.
//!
//! Errors use the API's body `{"error":{"code","message","request_id"}}`;
//! a refused settings update adds `field` (`422 invalid_config`), an action
//! on an offline node is `409 node_offline`.

use super::guard::admin_guard;
use crate::announcements::{Kind, Source, parse_expiry};
use crate::auth::{Principal, clear_cookie, session_token, token_digest};
use crate::cluster::NodeAction;
use crate::cluster::gateway_api::node_action;
use crate::error::{ApiError, ApiResult, WireError};
use crate::gateway::{Gateway, nodes_response};
use crate::http::context::RequestId;
use crate::http::extract::JsonBody;
use crate::logs::LogQuery;
use crate::ops::Ops;
use crate::settings::UpdateError;
use crate::upkeep::apply_settings;
use axum::extract::{ConnectInfo, Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Extension, Json, Router};
use futures::StreamExt;
use serde::Deserialize;
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use vctts_core::Error;
use vctts_core::registry::{NodeId, NodeState};

/// The routes (state applied by the caller).
pub fn routes(gw: &Arc<Gateway>) -> Router<Arc<Gateway>> {
    let guarded = Router::new()
        .route("/admin/api/logout", post(logout))
        .route("/admin/api/me", get(me))
        .route("/admin/api/nodes", get(nodes))
        .route("/admin/api/nodes/{id}/{action}", post(node_act))
        .route("/admin/api/config", get(get_config).put(put_config))
        .route("/admin/api/logs", get(logs))
        .route("/admin/api/logs/stream", get(logs_stream))
        .route(
            "/admin/api/announcements",
            get(list_announcements).post(post_announcement),
        )
        .route("/admin/api/announcements/{id}", delete(delete_announcement))
        .route_layer(axum::middleware::from_fn_with_state(gw.clone(), admin_guard));
    Router::new()
        .route("/admin/api/login", post(login))
        .route("/api/v3/announcements", get(public_announcements))
        .merge(guarded)
        .merge(super::models::routes(gw))
}

fn error_body(
    status: StatusCode,
    code: &str,
    message: String,
    field: Option<&str>,
    rid: &RequestId,
) -> Response {
    let mut obj = json!({"code": code, "message": message, "request_id": rid.0});
    if let Some(f) = field {
        obj["field"] = Value::String(f.to_string());
    }
    (status, Json(json!({ "error": obj }))).into_response()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LoginBody {
    #[serde(default)]
    username: Option<String>,
    password: String,
}

async fn login(
    State(gw): State<Arc<Gateway>>,
    Extension(rid): Extension<RequestId>,
    conn: Option<Extension<ConnectInfo<SocketAddr>>>,
    JsonBody(body): JsonBody<LoginBody>,
) -> ApiResult<Response> {
    let ops: &Ops = gw.ops();
    let ip = conn.map(|c| c.0.0.ip());
    let user = body
        .username
        .unwrap_or_else(|| crate::auth::ADMIN_USER.to_string());
    match ops.auth.login(ip, &user, &body.password) {
        Ok(session) => {
            // Shared sessions: recorded for every gateway, or no login.
            if let Some(shared) = gw.shared_sessions() {
                if let Err(e) = shared
                    .insert(&token_digest(&session.token), &session.username, session.ttl)
                    .await
                {
                    ops.auth.logout(&session.token);
                    return Err(e.into());
                }
            }
            ops.audit(
                &user,
                "login",
                "/admin/api/login",
                "ok",
                Some(&rid.0),
                ip.map(|i| i.to_string()),
            );
            let mut res = Json(json!({ "username": session.username })).into_response();
            let cookie = HeaderValue::from_str(&session.cookie())
                .map_err(|e| Error::Internal(format!("session cookie: {e}")))?;
            res.headers_mut().insert(header::SET_COOKIE, cookie);
            res.headers_mut()
                .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            Ok(res)
        }
        Err(e) => {
            ops.audit(
                &user,
                "login",
                "/admin/api/login",
                "denied",
                Some(&rid.0),
                ip.map(|i| i.to_string()),
            );
            Err(e.into())
        }
    }
}

async fn logout(State(gw): State<Arc<Gateway>>, headers: HeaderMap) -> Response {
    if let Some(t) = session_token(&headers) {
        gw.ops().auth.logout(t);
        if let Some(shared) = gw.shared_sessions() {
            if let Err(e) = shared.remove(&token_digest(t)).await {
                tracing::warn!(error = %e, "could not end the shared admin session");
            }
        }
    }
    let mut res = Json(json!({ "ok": true })).into_response();
    if let Ok(v) = HeaderValue::from_str(&clear_cookie()) {
        res.headers_mut().insert(header::SET_COOKIE, v);
    }
    res
}

async fn me(Extension(p): Extension<Principal>) -> Json<Value> {
    match p {
        Principal::Session { username } => Json(json!({ "username": username, "via": "session" })),
        Principal::Key { name, .. } => Json(json!({ "username": format!("key/{name}"), "via": "api_key" })),
    }
}

async fn nodes(State(gw): State<Arc<Gateway>>) -> Json<Value> {
    let list = nodes_response(&gw);
    let mut nodes = serde_json::to_value(&list.nodes).unwrap_or(Value::Array(vec![]));
    if let Value::Array(items) = &mut nodes {
        for item in items.iter_mut() {
            let id = item["id"].as_str().unwrap_or_default().to_string();
            if let Some(link) = gw.link(&NodeId::new(id.clone())) {
                item["reason"] = json!(link.reason);
                item["model_loaded"] = json!(matches!(item["state"].as_str(), Some("ready") | Some("busy")));
                item["local"] = json!(link.local.is_some());
            }
            let endpoint = item["endpoint"].as_str().unwrap_or_default().to_string();
            item["supervised"] = json!(
                gw.ops()
                    .supervisor
                    .by_endpoint(&endpoint)
                    .map(|w| w.name().to_string())
            );
        }
    }
    Json(json!({ "nodes": nodes, "local_workers": gw.ops().supervisor.statuses() }))
}

async fn node_act(
    State(gw): State<Arc<Gateway>>,
    Extension(rid): Extension<RequestId>,
    Path((id, action)): Path<(String, String)>,
) -> ApiResult<Response> {
    if !matches!(
        action.as_str(),
        "start" | "stop" | "restart" | "activate" | "standby"
    ) {
        return Err(WireError::NotFound(format!("/admin/api/nodes/{id}/{action}")).into());
    }
    // A supervised worker: the name, or the node registered from its endpoint.
    let snapshot = gw.registry().snapshot();
    let node = snapshot.iter().find(|s| s.info.id.as_str() == id);
    let supervised = gw
        .ops()
        .supervisor
        .by_name(&id)
        .or_else(|| node.and_then(|n| gw.ops().supervisor.by_endpoint(&n.info.endpoint)));
    if let Some(w) = supervised {
        match action.as_str() {
            "stop" => {
                if let Some(n) = node.filter(|n| n.state != NodeState::Offline) {
                    // Drain first: no new work while the process winds down.
                    let _ = node_action(&gw, &n.info.id, NodeAction::Stop, rid.0.clone()).await;
                }
                w.stop();
                return Ok(
                    Json(json!({"node_id": id, "action": action, "process": w.status()})).into_response(),
                );
            }
            "start" | "restart" if !w.status().running || action == "restart" => {
                if action == "restart" {
                    w.restart();
                } else {
                    w.start();
                }
                return Ok(
                    Json(json!({"node_id": id, "action": action, "process": w.status()})).into_response(),
                );
            }
            _ => {}
        }
    }
    let Some(node) = node else {
        return Err(Error::UnknownNode(id).into());
    };
    if node.state == NodeState::Offline {
        return Ok(error_body(
            StatusCode::CONFLICT,
            "node_offline",
            format!("node {id} is offline (no heartbeat); it cannot {action} until it is back"),
            None,
            &rid,
        ));
    }
    let nid = node.info.id.clone();
    let status = match action.as_str() {
        "restart" => {
            node_action(&gw, &nid, NodeAction::Standby, rid.0.clone()).await?;
            node_action(&gw, &nid, NodeAction::Activate, rid.0.clone()).await?
        }
        other => {
            let a = NodeAction::parse(other).ok_or_else(|| WireError::NotFound(other.to_string()))?;
            node_action(&gw, &nid, a, rid.0.clone()).await?
        }
    };
    Ok(Json(json!({
        "node_id": id,
        "action": action,
        "state": crate::gateway::node_state(status.state).as_str(),
        "reason": status.reason,
    }))
    .into_response())
}

async fn get_config(State(gw): State<Arc<Gateway>>) -> Json<Value> {
    Json(serde_json::to_value(gw.ops().settings.get()).unwrap_or_default())
}

async fn put_config(
    State(gw): State<Arc<Gateway>>,
    Extension(rid): Extension<RequestId>,
    JsonBody(update): JsonBody<Value>,
) -> ApiResult<Response> {
    // Shared settings: published for every gateway before they change here.
    if let Some(shared) = gw.shared_settings() {
        match crate::settings::apply_update(&gw.ops().settings.get(), &update) {
            Ok(next) => {
                shared.publish(&next).await?;
            }
            Err(bad) => {
                return Ok(error_body(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "invalid_config",
                    format!("{}: {}", bad.field, bad.message),
                    Some(&bad.field),
                    &rid,
                ));
            }
        }
    }
    match gw.ops().settings.update(&update) {
        Ok(s) => {
            apply_settings(&gw, &s);
            tracing::info!(request_id = %rid.0, update = %update, "settings changed");
            Ok(Json(serde_json::to_value(s).unwrap_or_default()).into_response())
        }
        Err(UpdateError::Invalid(bad)) => Ok(error_body(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_config",
            format!("{}: {}", bad.field, bad.message),
            Some(&bad.field),
            &rid,
        )),
        Err(UpdateError::Save(e)) => Err(e.into()),
    }
}

fn log_query(q: Result<Query<LogQuery>, axum::extract::rejection::QueryRejection>) -> ApiResult<LogQuery> {
    let Query(q) = q.map_err(|e| WireError::InvalidQuery(e.body_text()))?;
    q.validate()?;
    Ok(q)
}

async fn logs(
    State(gw): State<Arc<Gateway>>,
    q: Result<Query<LogQuery>, axum::extract::rejection::QueryRejection>,
) -> ApiResult<Json<Value>> {
    let q = log_query(q)?;
    let records = gw.ops().logs.query(&q);
    Ok(Json(json!({ "records": records })))
}

async fn logs_stream(
    State(gw): State<Arc<Gateway>>,
    q: Result<Query<LogQuery>, axum::extract::rejection::QueryRejection>,
) -> ApiResult<Response> {
    let mut q = log_query(q)?;
    let backlog_query = LogQuery {
        limit: Some(q.limit.unwrap_or(50)),
        ..q.clone()
    };
    let backlog = gw.ops().logs.query(&backlog_query);
    let last = backlog.last().map(|r| r.seq).unwrap_or(0);
    let rx = gw.ops().logs.subscribe();
    q.since = None;
    let live = futures::stream::unfold((rx, q), move |(mut rx, q)| async move {
        loop {
            match rx.recv().await {
                Ok(rec) if rec.seq > last && q.matches(&rec) => return Some((rec, (rx, q))),
                Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                Err(tokio::sync::broadcast::error::RecvError::Closed) => return None,
            }
        }
    });
    let stopped = gw.stopped();
    let events = futures::stream::iter(backlog)
        .chain(live)
        .map(|rec| {
            Event::default()
                .event("log")
                .id(rec.seq.to_string())
                .json_data(&rec)
        })
        .take_until(stopped);
    Ok(Sse::new(events)
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
        .into_response())
}

/// This gateway's announcements and, with shared state, every gateway's
/// operator posts; newest first.
async fn all_announcements(gw: &Gateway) -> Vec<crate::announcements::Announcement> {
    let mut list = gw.ops().announcements.list();
    if let Some(shared) = gw.shared_announcements() {
        match shared.list().await {
            Ok(more) => list.extend(more),
            Err(e) => {
                tracing::warn!(error = %e, "the shared announcements are unreachable; showing this gateway's")
            }
        }
        list.sort_by(|a, b| b.created_at.cmp(&a.created_at));
    }
    list
}

async fn list_announcements(State(gw): State<Arc<Gateway>>) -> Json<Value> {
    Json(json!({ "announcements": all_announcements(&gw).await }))
}

/// The announcements shown on the status page (open to everyone).
#[utoipa::path(get, path = "/api/v3/announcements", tag = "service",
    responses((status = 200, description = "Operator, config and system announcements, newest first", body = crate::wire::AnnouncementsResponse)))]
pub async fn public_announcements(
    State(gw): State<Arc<Gateway>>,
) -> Json<crate::wire::AnnouncementsResponse> {
    let announcements = all_announcements(&gw)
        .await
        .into_iter()
        .map(|a| crate::wire::AnnouncementDto {
            id: a.id,
            kind: serde_json::to_value(a.kind)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_default(),
            message: a.message,
            created_at: a.created_at,
            expires_at: a.expires_at,
        })
        .collect();
    Json(crate::wire::AnnouncementsResponse { announcements })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AnnouncementBody {
    #[serde(default, rename = "type")]
    kind: Option<String>,
    message: String,
    #[serde(default)]
    expires_at: Value,
}

async fn post_announcement(
    State(gw): State<Arc<Gateway>>,
    JsonBody(body): JsonBody<AnnouncementBody>,
) -> ApiResult<Response> {
    let defaults = gw.ops().settings.get().announcements;
    let kind_name = body.kind.unwrap_or(defaults.kind);
    let kind = Kind::parse(&kind_name).ok_or_else(|| {
        Error::invalid(
            "type",
            format!("must be info, warning or error, got {kind_name:?}"),
        )
    })?;
    let mut expires = parse_expiry(&body.expires_at)?;
    if expires.is_none() && defaults.ttl_seconds > 0 && body.expires_at.is_null() {
        expires = Some(gw.ops().announcements.now() + Duration::from_secs(defaults.ttl_seconds));
    }
    let mut a = gw
        .ops()
        .announcements
        .post(kind, &body.message, expires, Source::Operator, None)?;
    if let Some(shared) = gw.shared_announcements() {
        // Validated and shaped here; kept in the database for every gateway.
        gw.ops().announcements.delete(&a.id);
        a.id = crate::shared::announcements::new_id();
        shared.insert(&a, expires).await?;
    }
    Ok((StatusCode::CREATED, Json(a)).into_response())
}

async fn delete_announcement(
    State(gw): State<Arc<Gateway>>,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    let shared = match gw.shared_announcements() {
        Some(s) => s.delete(&id).await?,
        None => false,
    };
    if shared || gw.ops().announcements.delete(&id) {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::from(WireError::NotFound(format!("announcement {id}"))))
    }
}
