//! The core limiter in front of the public endpoints: the rate layers (per
//! IP, per endpoint, global) and the concurrency cap with its bounded queue.
//!
//! Invariants:
//! - a refusal is `429 rate_limited` with `Retry-After`, `RateLimit-Limit`,
//!   `RateLimit-Remaining`, `RateLimit-Reset`, and the layer in both
//!   `X-RateLimit-Layer` and the body's `error.limit_layer`;
//! - the endpoint key is the route template (`/api/v3/voices/{id}`), as
//!   configured under `limiter.endpoints`;
//! - health, metrics, the OpenAPI document and the status page's feeds are
//!   not limited, nor are the gateway's own checks (probes and scrapers must
//!   get through);
//! - with `limiter.backend: redis` the rate layers are counted across
//!   gateways ([`crate::shared::limit`]), with this gateway's limiter
//!   deciding while Redis is unreachable; [`SCOPE_HEADER`] tells which did;
//! - a concurrency slot is held until the answer body is complete, so a long
//!   stream counts for as long as it runs.

use crate::error::{ApiError, RateLimitInfo};
use crate::gateway::Gateway;
use axum::body::{Body, HttpBody};
use axum::extract::{MatchedPath, Request, State};
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use std::sync::Arc;
use vctts_core::limit::{LimitRequest, Refusal};

/// With `limiter.backend: redis`, on every limited answer: `shared` when
/// the budgets of all gateways decided, `local` when Redis was unreachable
/// and this gateway's own limiter decided instead.
pub const SCOPE_HEADER: &str = "x-ratelimit-scope";

/// Routes the limiter never refuses.
pub const EXEMPT: [&str; 7] = [
    "/api/v3/events",
    "/api/v3/status/endpoints",
    "/api/v3/health",
    "/api/v3/health/live",
    "/api/v3/health/ready",
    "/api/v3/metrics",
    "/api/v3/openapi.json",
];

fn refused(gw: &Gateway, r: Refusal) -> Response {
    gw.metrics().rate_limited.inc(&[r.layer.as_str()]);
    ApiError::rate_limited(RateLimitInfo {
        layer: r.layer,
        retry_after: r.retry_after,
        limit_rpm: r.limit_rpm,
        remaining: r.remaining,
    })
    .into_response()
}

/// The middleware (use with `from_fn_with_state(gateway, limit)`).
pub async fn limit(State(gw): State<Arc<Gateway>>, req: Request, next: Next) -> Response {
    let endpoint = req
        .extensions()
        .get::<MatchedPath>()
        .map(|m| m.as_str().to_string())
        .unwrap_or_else(|| req.uri().path().to_string());
    if EXEMPT.contains(&endpoint.as_str()) || req.extensions().get::<crate::http::context::Probe>().is_some()
    {
        return next.run(req).await;
    }
    let ip = crate::http::context::client_addr(req.extensions()).map(|a| a.ip());
    let principal = req.extensions().get::<crate::auth::Principal>().cloned();
    let limit_req = LimitRequest {
        ip,
        endpoint: &endpoint,
        key: principal.as_ref().and_then(|p| p.rate_key()),
    };
    // Shared budgets (Redis) when configured; `scope` says which decided.
    let (check, scope) = match gw.shared_limiter() {
        Some(shared) => {
            let check = shared.check(&limit_req).await;
            (check, Some(if shared.degraded() { "local" } else { "shared" }))
        }
        None => (gw.limiter().check(&limit_req), None),
    };
    if let Err(r) = check {
        if let Some(scope) = scope {
            let mut res = refused(&gw, r);
            res.headers_mut()
                .insert(SCOPE_HEADER, HeaderValue::from_static(scope));
            return res;
        }
        tracing::info!(endpoint = %endpoint, layer = r.layer.as_str(), "request refused by the rate limiter");
        return refused(&gw, r);
    }
    let permit = match gw.limiter().acquire().await {
        Ok(p) => p,
        Err(r) => return refused(&gw, r),
    };
    let mut res = next.run(req).await;
    if let Some(scope) = scope {
        res.headers_mut()
            .insert(SCOPE_HEADER, HeaderValue::from_static(scope));
    }
    if res.body().size_hint().exact().is_some() {
        // The whole body is in hand: the work is done.
        drop(permit);
        return res;
    }
    let (parts, body) = res.into_parts();
    let body = body.into_data_stream().map(move |chunk| {
        let _held = &permit;
        chunk
    });
    Response::from_parts(parts, Body::from_stream(body))
}
