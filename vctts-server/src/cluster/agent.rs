//! The worker's membership agent: registers with each gateway, heartbeats
//! with state and metrics, registers again when a gateway no longer knows it
//! (a restarted gateway answers `unknown_node`), and deregisters on shutdown.
//!
//! Invariants:
//! - one task per gateway; a gateway that is down never delays the others;
//! - the heartbeat interval is the one the gateway states at registration
//!   (until then, the configured default);
//! - a state change of the node (loaded, stopped, ...) is reported at once,
//!   not at the next tick;
//! - after `unknown_node` the agent registers again immediately, so a
//!   restarted gateway knows the worker again within one heartbeat;
//! - every call carries a fresh request id and the cluster token.

use super::auth::ClusterToken;
use super::proto::{
    DeregisterRequest, HeartbeatRequest, PREFIX, PROTOCOL_VERSION, REQUEST_ID_HEADER, RegisterRequest,
    RegisterResponse, TOKEN_HEADER,
};
use crate::error::ErrorBody;
use crate::worker::node::WorkerNode;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use vctts_core::{Error, Result};

/// How the agent reaches gateways and describes the node.
#[derive(Debug, Clone)]
pub struct AgentConfig {
    /// Gateway base URLs.
    pub gateways: Vec<String>,
    /// The URL gateways reach this worker at.
    pub endpoint: String,
    /// Shared token.
    pub token: ClusterToken,
    /// Relative weight.
    pub weight: u32,
    /// Labels.
    pub labels: BTreeMap<String, String>,
    /// Interval until a gateway states its own.
    pub default_interval: Duration,
    /// Time allowed for one call.
    pub request_timeout: Duration,
}

/// A client for one gateway's membership endpoints.
#[derive(Debug, Clone)]
struct GatewayLink {
    base: String,
    http: reqwest::Client,
    token: ClusterToken,
}

impl GatewayLink {
    async fn post<B: serde::Serialize, R: serde::de::DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
    ) -> Result<R> {
        let mut req = self
            .http
            .post(format!("{}{PREFIX}{path}", self.base))
            .header(REQUEST_ID_HEADER, uuid::Uuid::new_v4().to_string())
            .json(body);
        if let Some(t) = self.token.value() {
            req = req.header(TOKEN_HEADER, t);
        }
        let resp = req
            .send()
            .await
            .map_err(|e| super::client::transport_error(&self.base, &e))?;
        let status = resp.status();
        let bytes = resp
            .bytes()
            .await
            .map_err(|e| super::client::transport_error(&self.base, &e))?;
        if status.is_success() {
            return serde_json::from_slice(&bytes).map_err(|e| {
                Error::Internal(format!("gateway {} answered unreadable JSON: {e}", self.base))
            });
        }
        match serde_json::from_slice::<ErrorBody>(&bytes) {
            Ok(b) => Err(crate::error::error_from_object(&b.error, &self.base)),
            Err(_) => Err(Error::NodeUnavailable {
                node: self.base.clone(),
                message: format!("answered {status}"),
            }),
        }
    }
}

fn register_request(node: &WorkerNode, cfg: &AgentConfig) -> RegisterRequest {
    let status = node.status();
    RegisterRequest {
        protocol: PROTOCOL_VERSION,
        endpoint: cfg.endpoint.clone(),
        engine: node.kind(),
        info: status.info,
        capacity: node.capacity(),
        queue_size: node.queue_size() as u32,
        weight: cfg.weight,
        labels: cfg.labels.clone(),
        version: env!("CARGO_PKG_VERSION").to_string(),
        state: status.state,
        seq: status.seq,
        reason: status.reason,
        metrics: status.metrics,
    }
}

/// Runs the agent until `shutdown` turns true, then deregisters everywhere.
pub async fn run(node: Arc<WorkerNode>, cfg: AgentConfig, shutdown: watch::Receiver<bool>) {
    let http = reqwest::Client::builder()
        .timeout(cfg.request_timeout)
        .connect_timeout(cfg.request_timeout)
        .build()
        .unwrap_or_else(|_| reqwest::Client::new());
    let mut tasks = Vec::new();
    for base in &cfg.gateways {
        let link = GatewayLink {
            base: base.clone(),
            http: http.clone(),
            token: cfg.token.clone(),
        };
        tasks.push(tokio::spawn(one_gateway(
            node.clone(),
            cfg.clone(),
            link,
            shutdown.clone(),
        )));
    }
    for t in tasks {
        let _ = t.await;
    }
}

async fn one_gateway(
    node: Arc<WorkerNode>,
    cfg: AgentConfig,
    link: GatewayLink,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut node_id: Option<String> = None;
    let mut interval = cfg.default_interval;
    let mut failing = false;
    loop {
        if *shutdown.borrow() {
            break;
        }
        let result = match &node_id {
            None => register(&node, &cfg, &link).await.map(|r| {
                interval = r.heartbeat_interval();
                tracing::info!(gateway = %link.base, node_id = %r.node_id,
                    interval_ms = interval.as_millis() as u64, "registered with gateway");
                node_id = Some(r.node_id);
            }),
            Some(id) => {
                let status = node.status();
                let hb = HeartbeatRequest {
                    node_id: id.clone(),
                    state: status.state,
                    seq: status.seq,
                    reason: status.reason,
                    metrics: status.metrics,
                    info: status.info,
                };
                match link.post::<_, serde_json::Value>("/heartbeat", &hb).await {
                    Ok(_) => Ok(()),
                    Err(Error::UnknownNode(_)) => {
                        tracing::info!(gateway = %link.base, node_id = %id,
                            "gateway does not know this node (restarted?); registering again");
                        node_id = None;
                        // Register right away rather than after a tick.
                        continue;
                    }
                    Err(e) => Err(e),
                }
            }
        };
        match result {
            Ok(()) => {
                if failing {
                    tracing::info!(gateway = %link.base, "gateway reachable again");
                }
                failing = false;
            }
            Err(e) => {
                if !failing {
                    tracing::warn!(gateway = %link.base, error = %e, "gateway call failed; will retry");
                }
                failing = true;
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(interval) => {}
            _ = node.changed() => {}
            r = shutdown.changed() => {
                // A dropped sender means the worker is going away too.
                if r.is_err() {
                    break;
                }
            }
        }
    }
    if let Some(id) = node_id {
        match link
            .post::<_, serde_json::Value>("/deregister", &DeregisterRequest { node_id: id.clone() })
            .await
        {
            Ok(_) => tracing::info!(gateway = %link.base, node_id = %id, "deregistered from gateway"),
            Err(e) => tracing::warn!(gateway = %link.base, error = %e, "could not deregister"),
        }
    }
}

async fn register(node: &WorkerNode, cfg: &AgentConfig, link: &GatewayLink) -> Result<RegisterResponse> {
    link.post("/register", &register_request(node, cfg)).await
}
