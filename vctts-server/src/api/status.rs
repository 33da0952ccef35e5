//! Feeds for the status page: a live event stream and the gateway's own
//! endpoint checks.
//!
//! - `GET /api/v3/events` (server-sent events): a `nodes` event with the
//!   node list (the body of `GET /api/v3/nodes`) at once, on every registry
//!   event (joined, left, state changed, offline) and every 2 s.
//! - `GET /api/v3/status/endpoints`: the latest synthetic check of each public
//!   endpoint — status code, average and last latency, when it ran.
//!
//! The checks go through the gateway's whole router in process, marked with
//! the [`Probe`] extension: the limiter lets them through and they are not
//! counted as user traffic in the metrics or the access log. Synthesis is
//! checked with a one-word text, less often than the read-only endpoints.
//! The probe task stops once the router that served it is dropped.
//!
//! These feeds serve the pages; they are not part of the OpenAPI document.

use crate::gateway::{Gateway, nodes_response};
use axum::Extension;
use axum::Json;
use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::{Method, Request};
use axum::response::sse::{Event, KeepAlive, Sse};
use futures::Stream;
use parking_lot::RwLock;
use serde::Serialize;
use std::collections::BTreeMap;
use std::convert::Infallible;
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant, SystemTime};
use tower::ServiceExt;

use crate::http::context::Probe;

/// How often the read-only endpoints are checked.
pub const PROBE_INTERVAL: Duration = Duration::from_secs(10);
/// Synthesis is checked every this many rounds.
const SYNTH_EVERY: u64 = 6;
/// How many recent latencies the average covers.
const WINDOW: usize = 10;

/// The checks and what they send.
const CHECKS: [(&str, &str, Option<&str>); 7] = [
    ("GET", "/api/v3/health", None),
    ("GET", "/api/v3/engines", None),
    ("GET", "/api/v3/nodes", None),
    ("GET", "/api/v3/voices", None),
    ("GET", "/api/v3/openapi.json", None),
    ("GET", "/api/v3/metrics", None),
    ("POST", "/api/v3/synthesize", Some(r#"{"text":"Check."}"#)),
];

/// One endpoint's latest check.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct EndpointStatus {
    /// The path checked.
    pub endpoint: String,
    /// The method used.
    pub method: String,
    /// HTTP status of the last check (0: no answer).
    pub status: u16,
    /// Whether the last check succeeded (2xx).
    pub ok: bool,
    /// Average latency of the recent checks, milliseconds.
    pub avg_ms: f64,
    /// Latency of the last check, milliseconds.
    pub last_ms: f64,
    /// Checks run so far.
    pub checks: u64,
    /// When the last check ran, seconds since the Unix epoch.
    pub checked_at: u64,
}

/// The results of the checks, shared by the task and the handler.
#[derive(Debug, Default)]
pub struct Probes {
    results: RwLock<BTreeMap<String, (EndpointStatus, Vec<f64>)>>,
}

impl Probes {
    fn record(&self, method: &str, endpoint: &str, status: u16, took: Duration) {
        let ms = took.as_secs_f64() * 1000.0;
        let now = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        let mut r = self.results.write();
        let entry = r.entry(format!("{method} {endpoint}")).or_insert_with(|| {
            (
                EndpointStatus {
                    endpoint: endpoint.to_string(),
                    method: method.to_string(),
                    status: 0,
                    ok: false,
                    avg_ms: 0.0,
                    last_ms: 0.0,
                    checks: 0,
                    checked_at: 0,
                },
                Vec::new(),
            )
        });
        entry.1.push(ms);
        if entry.1.len() > WINDOW {
            entry.1.remove(0);
        }
        let s = &mut entry.0;
        s.status = status;
        s.ok = (200..300).contains(&status);
        s.last_ms = ms;
        s.avg_ms = entry.1.iter().sum::<f64>() / entry.1.len() as f64;
        s.checks += 1;
        s.checked_at = now;
    }

    /// The latest results, by endpoint.
    pub fn list(&self) -> Vec<EndpointStatus> {
        self.results.read().values().map(|(s, _)| s.clone()).collect()
    }
}

/// Runs one round of checks through `router`.
pub async fn check_once(router: &Router, probes: &Probes, with_synthesis: bool) {
    for (method, path, body) in CHECKS {
        if body.is_some() && !with_synthesis {
            continue;
        }
        let mut req = Request::builder()
            .method(Method::from_bytes(method.as_bytes()).unwrap_or(Method::GET))
            .uri(path)
            .header("content-type", "application/json")
            .body(
                body.map(|b| Body::from(b.to_string()))
                    .unwrap_or_else(Body::empty),
            )
            .unwrap_or_default();
        req.extensions_mut().insert(Probe);
        let started = Instant::now();
        let status = match router.clone().oneshot(req).await {
            Ok(res) => {
                let status = res.status().as_u16();
                // Read the body so the latency covers the whole answer.
                let _ = axum::body::to_bytes(res.into_body(), 64 * 1024 * 1024).await;
                status
            }
            Err(never) => match never {},
        };
        probes.record(method, path, status, started.elapsed());
    }
}

/// Starts the periodic checks on the current runtime (if there is one).
/// The task ends once `probes` has no other owner.
pub fn spawn_checks(router: Router, probes: Weak<Probes>) {
    let Ok(handle) = tokio::runtime::Handle::try_current() else {
        return;
    };
    handle.spawn(async move {
        let mut tick = tokio::time::interval(PROBE_INTERVAL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut round = 0u64;
        loop {
            tick.tick().await;
            let Some(p) = probes.upgrade() else { break };
            // Synthesis first at round 1, once engines have had time to load.
            check_once(&router, &p, round % SYNTH_EVERY == 1).await;
            round += 1;
        }
    });
}

/// `GET /api/v3/status/endpoints`.
pub async fn endpoints(Extension(probes): Extension<Arc<Probes>>) -> Json<serde_json::Value> {
    Json(serde_json::json!({ "endpoints": probes.list() }))
}

/// `GET /api/v3/events`: server-sent `nodes` events.
pub async fn events(State(gw): State<Arc<Gateway>>) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let rx = gw.registry().subscribe();
    let tick = tokio::time::interval(Duration::from_secs(2));
    let stream = futures::stream::unfold((gw, rx, tick, true), |(gw, mut rx, mut tick, first)| async move {
        if !first {
            tokio::select! {
                _ = tick.tick() => {}
                r = rx.recv() => {
                    if let Err(tokio::sync::broadcast::error::RecvError::Closed) = r {
                        return None;
                    }
                }
            }
        }
        let event = Event::default()
            .event("nodes")
            .json_data(nodes_response(&gw))
            .unwrap_or_else(|_| Event::default().comment("nodes unavailable"));
        Some((Ok(event), (gw, rx, tick, false)))
    });
    Sse::new(stream).keep_alive(KeepAlive::default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn averages_cover_the_recent_window() {
        let p = Probes::default();
        for ms in [10u64, 20, 30] {
            p.record("GET", "/api/v3/health", 200, Duration::from_millis(ms));
        }
        p.record("POST", "/api/v3/synthesize", 503, Duration::from_millis(5));
        let l = p.list();
        assert_eq!(l.len(), 2);
        let h = l.iter().find(|s| s.endpoint == "/api/v3/health").unwrap();
        assert!((h.avg_ms - 20.0).abs() < 0.01);
        assert_eq!(h.checks, 3);
        assert!(h.ok);
        let s = l.iter().find(|s| s.endpoint == "/api/v3/synthesize").unwrap();
        assert!(!s.ok);
        assert_eq!(s.status, 503);
        for i in 0..20 {
            p.record("GET", "/api/v3/health", 200, Duration::from_millis(100 + i));
        }
        let h = p
            .list()
            .into_iter()
            .find(|s| s.endpoint == "/api/v3/health")
            .unwrap();
        assert!(h.avg_ms > 100.0, "old samples left the window");
    }
}
