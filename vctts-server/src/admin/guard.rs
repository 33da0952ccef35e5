//! The authentication middlewares.
//!
//! - [`admin_guard`] (on every admin route but `login`): an operator
//!   session or an `admin`-scoped key, the CSRF header for cookie-based
//!   state changes, and one audit record per call;
//! - [`api_guard`] (outermost on the public API when `auth.api_key_enabled`):
//!   a key with the scope the endpoint needs ([`scope_for`]); health,
//!   metrics, announcements, engines, nodes, the OpenAPI document and the
//!   status page with its feeds (`/api/v3/events`, `/api/v3/status/endpoints`)
//!   stay open. The caller's [`Principal`] goes into the request's extensions, so
//!   the limiter applies the key's own rate.

use crate::auth::{CSRF_HEADER, CSRF_VALUE, Principal, Scope, presented_key, session_token, token_digest};
use crate::error::ApiError;
use crate::gateway::Gateway;
use axum::extract::{ConnectInfo, MatchedPath, Request, State};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::net::SocketAddr;
use std::sync::Arc;
use vctts_core::Error;

/// Public paths that never need a key.
pub const OPEN_PATHS: [&str; 11] = [
    "/api/v3/health",
    "/api/v3/health/live",
    "/api/v3/health/ready",
    "/api/v3/metrics",
    "/api/v3/openapi.json",
    "/api/v3/announcements",
    "/api/v3/engines",
    "/api/v3/nodes",
    "/api/v3/status",
    // The status page's own feeds: as open as the page.
    "/api/v3/events",
    "/api/v3/status/endpoints",
];

/// The scope a public path needs: `None` for open paths and paths outside
/// the public API, `Some(None)` for API paths any valid key may use.
pub fn scope_for(path: &str) -> Option<Option<Scope>> {
    if OPEN_PATHS.contains(&path) {
        return None;
    }
    if path.starts_with("/api/v3/synthesize") || path == "/v1/audio/speech" || path == "/api/v3/preprocess" {
        return Some(Some(Scope::Synthesize));
    }
    if path.starts_with("/api/v3/voices") || path == "/api/v3/extract_voice" {
        return Some(Some(Scope::Voices));
    }
    if path.starts_with("/api/") || path.starts_with("/v1/") {
        return Some(None);
    }
    None
}

fn client_ip(req: &Request) -> Option<String> {
    req.extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip().to_string())
}

fn request_id(req: &Request) -> Option<String> {
    req.extensions()
        .get::<crate::http::context::RequestId>()
        .map(|r| r.0.clone())
}

fn changes_state(m: &Method) -> bool {
    !matches!(*m, Method::GET | Method::HEAD | Method::OPTIONS)
}

/// The admin middleware (use with `route_layer(from_fn_with_state(gateway, admin_guard))`).
pub async fn admin_guard(State(gw): State<Arc<Gateway>>, mut req: Request, next: Next) -> Response {
    let ops = &gw.ops();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|m| m.as_str().to_string())
        .unwrap_or_else(|| req.uri().path().to_string());
    let action = format!("{} {}", req.method(), route);
    let target = req.uri().path().to_string();
    let ip = client_ip(&req);
    let rid = request_id(&req);
    // Shared sessions: the database says whether the cookie's session lives
    // (issued or ended through any gateway). Unreachable is neither yes nor
    // no: the call is refused with the store's retryable error (503 with
    // Retry-After), and the session is kept, so the page does not ask for a
    // login again once the database is back.
    if let (Some(shared), Some(token), None) = (
        gw.shared_sessions(),
        session_token(req.headers()),
        presented_key(req.headers()),
    ) {
        match shared.lookup(&token_digest(token)).await {
            Ok(Some((user, left))) => ops.auth.adopt_session(token, &user, left),
            Ok(None) => ops.auth.logout(token),
            Err(e) => {
                tracing::warn!(error = %e, "shared admin sessions are unreachable: refusing the call");
                ops.audit(
                    "anonymous",
                    &action,
                    &target,
                    "refused: the session store is unreachable",
                    rid.as_deref(),
                    ip,
                );
                return ApiError::from(e).into_response();
            }
        }
    }
    let principal = match ops.auth.identify(req.headers()) {
        Ok(Some(p)) => p,
        Ok(None) => {
            ops.audit(
                "anonymous",
                &action,
                &target,
                "denied: not logged in",
                rid.as_deref(),
                ip,
            );
            return ApiError::from(Error::Unauthorized("log in or send an admin API key".into()))
                .into_response();
        }
        Err(e) => {
            ops.audit(
                "anonymous",
                &action,
                &target,
                "denied: unknown API key",
                rid.as_deref(),
                ip,
            );
            return ApiError::from(e).into_response();
        }
    };
    let actor = principal.actor();
    if !principal.allows(Scope::Admin) {
        ops.audit(
            &actor,
            &action,
            &target,
            "denied: key lacks the admin scope",
            rid.as_deref(),
            ip,
        );
        return ApiError::from(Error::Forbidden("this API key has no admin scope".into())).into_response();
    }
    if principal.is_session() && changes_state(req.method()) {
        let ok = req
            .headers()
            .get(CSRF_HEADER)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.eq_ignore_ascii_case(CSRF_VALUE));
        if !ok {
            ops.audit(
                &actor,
                &action,
                &target,
                "denied: missing X-Requested-With",
                rid.as_deref(),
                ip,
            );
            return ApiError::from(Error::Forbidden(format!(
                "state-changing admin calls need the header X-Requested-With: {CSRF_VALUE}"
            )))
            .into_response();
        }
    }
    req.extensions_mut().insert(principal);
    let res = next.run(req).await;
    let status = res.status();
    let result = if status.is_success() {
        "ok".to_string()
    } else {
        format!("failed: {}", status.as_u16())
    };
    ops.audit(&actor, &action, &target, &result, rid.as_deref(), ip);
    res
}

/// The public API middleware (use with `from_fn_with_state(gateway, api_guard)`).
pub async fn api_guard(State(gw): State<Arc<Gateway>>, mut req: Request, next: Next) -> Response {
    let auth = &gw.ops().auth;
    if !auth.api_key_enabled() {
        return next.run(req).await;
    }
    let Some(needed) = scope_for(req.uri().path()) else {
        return next.run(req).await;
    };
    let principal: Principal = match auth.identify(req.headers()) {
        Ok(Some(p)) => p,
        Ok(None) => {
            return ApiError::from(Error::Unauthorized(
                "an API key is required (Authorization: Bearer <key> or X-API-Key)".into(),
            ))
            .into_response();
        }
        Err(e) => return ApiError::from(e).into_response(),
    };
    if let Some(scope) = needed {
        if !principal.allows(scope) {
            return ApiError::from(Error::Forbidden(format!(
                "this API key lacks the {} scope",
                scope.as_str()
            )))
            .into_response();
        }
    }
    req.extensions_mut().insert(principal);
    next.run(req).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_of_paths() {
        assert_eq!(scope_for("/api/v3/health"), None);
        assert_eq!(scope_for("/api/v3/metrics"), None);
        assert_eq!(scope_for("/admin/api/nodes"), None);
        assert_eq!(scope_for("/cluster/v1/heartbeat"), None);
        assert_eq!(scope_for("/api/v3/events"), None);
        assert_eq!(scope_for("/api/v3/status/endpoints"), None);
        assert_eq!(
            scope_for("/api/v3/synthesize/stream"),
            Some(Some(Scope::Synthesize))
        );
        assert_eq!(scope_for("/v1/audio/speech"), Some(Some(Scope::Synthesize)));
        assert_eq!(scope_for("/api/v3/voices/abc"), Some(Some(Scope::Voices)));
        assert_eq!(scope_for("/api/v3/extract_voice"), Some(Some(Scope::Voices)));
        assert_eq!(scope_for("/api/v3/unknown"), Some(None));
    }
}
