//! The shared cluster token: checked on every cluster endpoint of both roles
//! when one is configured, sent on every cluster call.
//!
//! Invariants: the comparison takes the same time for every token of a given
//! length; a refused call is answered `401 unauthorized` and logged with the
//! caller's address and path (never the token).

use crate::error::ApiError;
use axum::extract::{Request, State};
use axum::http::HeaderMap;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::sync::Arc;
use vctts_core::Error;

/// The configured token, if any.
#[derive(Clone, Default)]
pub struct ClusterToken(Option<Arc<str>>);

impl std::fmt::Debug for ClusterToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_some() {
            "ClusterToken(set)"
        } else {
            "ClusterToken(none)"
        })
    }
}

impl ClusterToken {
    /// A token (or none).
    pub fn new(token: Option<String>) -> Self {
        Self(token.filter(|t| !t.is_empty()).map(Arc::from))
    }

    /// The token to send, if any.
    pub fn value(&self) -> Option<&str> {
        self.0.as_deref()
    }

    /// Whether the headers carry the right token (always true when none is set).
    pub fn accepts(&self, headers: &HeaderMap) -> bool {
        let Some(expected) = &self.0 else {
            return true;
        };
        let given = headers
            .get(super::proto::TOKEN_HEADER)
            .and_then(|v| v.to_str().ok())
            .or_else(|| {
                headers
                    .get(axum::http::header::AUTHORIZATION)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.strip_prefix("Bearer "))
            });
        match given {
            Some(g) => constant_time_eq(g.as_bytes(), expected.as_bytes()),
            None => false,
        }
    }
}

/// Equality whose time depends only on the lengths.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Middleware refusing cluster calls without the right token.
pub async fn require_token(State(token): State<ClusterToken>, req: Request, next: Next) -> Response {
    if token.accepts(req.headers()) {
        return next.run(req).await;
    }
    let peer = crate::api::context::client_addr(req.extensions())
        .map(|a| a.to_string())
        .unwrap_or_else(|| "unknown".into());
    let had_token = req.headers().contains_key(super::proto::TOKEN_HEADER)
        || req.headers().contains_key(axum::http::header::AUTHORIZATION);
    tracing::warn!(
        client_ip = %peer,
        endpoint = %req.uri().path(),
        token_present = had_token,
        "refused a cluster call with a missing or wrong token"
    );
    let why = if had_token {
        "wrong cluster token"
    } else {
        "missing cluster token"
    };
    ApiError::from(Error::Unauthorized(why.into())).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn token_checks() {
        let t = ClusterToken::new(Some("0123456789abcdef".into()));
        let mut h = HeaderMap::new();
        assert!(!t.accepts(&h));
        h.insert("x-cluster-token", HeaderValue::from_static("0123456789abcdeX"));
        assert!(!t.accepts(&h));
        h.insert("x-cluster-token", HeaderValue::from_static("0123456789abcdef"));
        assert!(t.accepts(&h));
        let mut h = HeaderMap::new();
        h.insert(
            "authorization",
            HeaderValue::from_static("Bearer 0123456789abcdef"),
        );
        assert!(t.accepts(&h));
        assert!(ClusterToken::new(None).accepts(&HeaderMap::new()));
        assert!(ClusterToken::new(Some(String::new())).accepts(&HeaderMap::new()));
        assert!(!constant_time_eq(b"a", b"ab"));
    }
}
