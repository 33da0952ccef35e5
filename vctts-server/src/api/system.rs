//! Service state: `GET /api/v3/engines`, `/nodes`, `/health` (with `/live`
//! and `/ready`), `/metrics`.
//!
//! Health: the process is *live* when it answers; it is *ready* when some
//! engine has a serving node (ready or busy, breaker not open: a full node
//! is ready, it queues). `/health` and `/health/ready` answer 200
//! when ready and 503 when only live; `/health/live` answers 200 always.
//! These and `/metrics` are not rate limited (probes and scrapers must
//! always get through).

use crate::error::ErrorBody;
use crate::gateway::{Gateway, nodes_response};
use crate::wire::{EngineDto, EnginesResponse, HealthResponse, NodesResponse};
use axum::Json;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use std::collections::BTreeMap;
use std::sync::Arc;
use vctts::StoreExt;
use vctts_core::EngineKind;

/// Engines vctts knows, with their nodes and facts.
#[utoipa::path(get, path = "/api/v3/engines", tag = "service",
    responses((status = 200, description = "All engines", body = EnginesResponse)))]
pub async fn engines(State(gw): State<Arc<Gateway>>) -> Json<EnginesResponse> {
    let snap = gw.registry().snapshot();
    let default = gw.default_engine().ok();
    let engines = EngineKind::ALL
        .into_iter()
        .map(|kind| {
            let nodes = snap.iter().filter(|s| s.info.engine == kind).count();
            let ready = gw.registry().serving(kind);
            let info = gw.engine_info(kind);
            EngineDto {
                engine: kind.to_string(),
                name: info.as_ref().map(|i| i.name.clone()),
                nodes,
                ready_nodes: ready,
                available: ready > 0,
                default: default == Some(kind),
                languages: info.as_ref().map(|i| i.languages.clone()).unwrap_or_default(),
                default_language: info.as_ref().map(|i| i.default_language.clone()),
                sample_rate: info.as_ref().map(|i| i.sample_rate),
                streaming: info.as_ref().is_some_and(|i| i.streaming),
                cloning: info.as_ref().is_some_and(|i| i.cloning),
                needs_transcript: info.as_ref().is_some_and(|i| i.needs_transcript),
                max_text_chars: info.as_ref().map(|i| i.max_text_chars),
                builtin_voices: info.map(|i| i.builtin_voices).unwrap_or_default(),
            }
        })
        .collect();
    Json(EnginesResponse { engines })
}

/// Every registered node and its state.
#[utoipa::path(get, path = "/api/v3/nodes", tag = "service",
    responses((status = 200, description = "All nodes", body = NodesResponse)))]
pub async fn nodes(State(gw): State<Arc<Gateway>>) -> Json<NodesResponse> {
    Json(nodes_response(&gw))
}

/// Health: ready when some engine has a serving node
/// ([`vctts_core::registry::Registry::serving`]: ready or busy, breaker not
/// open). A node that is full is ready — it queues — so readiness never
/// flips with the load; the counts per engine are serving nodes too.
pub fn health_body(gw: &Gateway) -> HealthResponse {
    let mut engines = BTreeMap::new();
    for kind in EngineKind::ALL {
        engines.insert(kind.to_string(), gw.registry().serving(kind));
    }
    let ready = engines.values().any(|n| *n > 0);
    HealthResponse {
        status: if ready { "ok" } else { "degraded" }.into(),
        live: true,
        ready,
        engines,
        version: env!("CARGO_PKG_VERSION").into(),
        uptime_seconds: gw.started().elapsed().as_secs_f64(),
    }
}

fn health_answer(gw: &Gateway) -> Response {
    let body = health_body(gw);
    let code = if body.ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (code, Json(body)).into_response()
}

/// Liveness and readiness: 200 when some engine has a ready node, 503 when not.
#[utoipa::path(get, path = "/api/v3/health", tag = "service",
    responses(
        (status = 200, description = "Ready", body = HealthResponse),
        (status = 503, description = "Live but not ready", body = HealthResponse),
    ))]
pub async fn health(State(gw): State<Arc<Gateway>>) -> Response {
    health_answer(&gw)
}

/// Readiness only (same as `/health`).
#[utoipa::path(get, path = "/api/v3/health/ready", tag = "service",
    responses(
        (status = 200, description = "Ready", body = HealthResponse),
        (status = 503, description = "Not ready", body = HealthResponse),
    ))]
pub async fn ready(State(gw): State<Arc<Gateway>>) -> Response {
    health_answer(&gw)
}

/// Liveness only: 200 whenever the process answers.
#[utoipa::path(get, path = "/api/v3/health/live", tag = "service",
    responses((status = 200, description = "Live", body = HealthResponse)))]
pub async fn live(State(gw): State<Arc<Gateway>>) -> Json<HealthResponse> {
    Json(health_body(&gw))
}

/// Prometheus metrics (text exposition format 0.0.4); `?format=json` gives
/// the summary the status page reads.
#[utoipa::path(get, path = "/api/v3/metrics", tag = "service",
    responses(
        (status = 200, description = "Metrics", content_type = "text/plain"),
        (status = 500, description = "Internal error", body = ErrorBody),
    ))]
pub async fn metrics(
    State(gw): State<Arc<Gateway>>,
    axum::extract::Query(q): axum::extract::Query<std::collections::HashMap<String, String>>,
) -> Response {
    let mut state = gw.scrape_state();
    state.voices = gw.store().run(|s| s.count()).await.ok();
    if q.get("format").map(String::as_str) == Some("json") {
        return Json(gw.metrics().summary(&state)).into_response();
    }
    let text = gw.metrics().render(&state);
    let mut res = text.into_response();
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    res
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Env, GatewayConfig};
    use std::time::Duration;
    use vctts_core::clock::ManualClock;
    use vctts_core::registry::{NodeInfo, NodeState, Outcome, SelectContext};

    /// A full node is ready (it queues): health must not say `degraded`
    /// while the only node is busy with work (the standalone stress saw 503
    /// from `/health` under load). An open breaker is not ready.
    #[tokio::test]
    async fn a_full_node_is_ready_an_open_breaker_is_not() {
        let dir = tempfile::tempdir().unwrap();
        let yaml = format!(
            "storage: {{ data_dir: \"{}\" }}\n\
             registry: {{ breaker: {{ failure_threshold: 1, cool_down: 5 }} }}\n",
            dir.path().join("data").display()
        );
        let cfg = GatewayConfig::parse(&yaml, &Env::empty()).unwrap();
        let gw = Gateway::new_standalone(cfg, Arc::new(ManualClock::new())).unwrap();
        let mut node = NodeInfo::new("openvoice-a", EngineKind::OpenVoice, "http://127.0.0.1:9");
        node.capacity = 1;
        gw.register_remote(node, NodeState::Ready, None, None).unwrap();
        let lease = gw
            .registry()
            .select(EngineKind::OpenVoice, &*gw.policy(), &SelectContext::default())
            .unwrap();
        assert_eq!(gw.registry().selectable(EngineKind::OpenVoice), 0);
        let h = health_body(&gw);
        assert!(h.ready, "{h:?}");
        assert_eq!((h.status.as_str(), h.engines["openvoice"]), ("ok", 1));
        assert_eq!(gw.default_engine().unwrap(), EngineKind::OpenVoice);
        lease.finish(Outcome::Failure, Duration::from_millis(1));
        let h = health_body(&gw);
        assert!(!h.ready, "{h:?}");
        assert_eq!((h.status.as_str(), h.engines["openvoice"]), ("degraded", 0));
    }
}
