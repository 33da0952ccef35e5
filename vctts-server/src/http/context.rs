//! Request context middleware, outermost on every router: the request id, the
//! error body's `request_id`, metrics and the access log.
//!
//! The id itself comes from `tower-http`'s request-id layers
//! ([`request_id_layer`]): a caller's unacceptable id is dropped first, then
//! `SetRequestIdLayer` gives the request a UUID v4 when it has none and
//! `PropagateRequestIdLayer` copies it onto the answer.
//!
//! Invariants:
//! - every answer carries `X-Request-Id`: the caller's (when it is 1–128
//!   characters of letters, digits and `-_.:`) or a new UUID v4;
//! - handlers and extractors read it from the [`RequestId`] extension;
//! - an error answer made anywhere below (see [`crate::error::PendingError`])
//!   gets its body's `request_id` filled in here; on `/v1/*` it is rendered
//!   in OpenAI's shape instead ([`crate::error::openai_error`]);
//! - every request is counted by route template (not raw path, so ids do not
//!   explode the label space) and logged once at its end, with stable keys:
//!   at INFO, except health, readiness and metrics requests ([`quiet_route`])
//!   which are logged at DEBUG so probes and scrapers do not fill the
//!   access log.

use crate::error::{ErrorBody, PendingError};
use crate::metrics::Metrics;
use axum::extract::{ConnectInfo, MatchedPath, Request, State};
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::Response;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;
use tower::layer::util::{Identity, Stack};
use tower::util::MapRequestLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};

/// Header carrying the request id: read from callers, set on every answer,
/// sent on every cluster call.
pub const REQUEST_ID_HEADER: &str = "x-request-id";

/// The id of the request being served.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestId(pub String);

impl RequestId {
    /// The caller's id if acceptable, else a new one.
    pub fn from_header(value: Option<&HeaderValue>) -> Self {
        let given = value
            .and_then(|v| v.to_str().ok())
            .filter(|s| valid_request_id(s));
        match given {
            Some(s) => Self(s.to_string()),
            None => Self(uuid::Uuid::new_v4().to_string()),
        }
    }

    /// The id.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Marks a synthetic request of the gateway's own checks (the status
/// page's probes): not counted, not logged, not rate limited.
#[derive(Debug, Clone, Copy)]
pub struct Probe;

/// The client's socket address: the server's connect info, or in tests the
/// `MockConnectInfo` layer's.
pub fn client_addr(ext: &axum::http::Extensions) -> Option<SocketAddr> {
    ext.get::<ConnectInfo<SocketAddr>>().map(|c| c.0).or_else(|| {
        ext.get::<axum::extract::connect_info::MockConnectInfo<SocketAddr>>()
            .map(|m| m.0)
    })
}

/// Whether a caller-supplied request id is acceptable.
pub fn valid_request_id(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 128
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'))
}

/// Whether a route template is a health, liveness, readiness or metrics
/// endpoint (of the gateway, a worker or the cluster's node checks).
pub fn quiet_route(route: &str) -> bool {
    [
        "/health",
        "/health/live",
        "/health/ready",
        "/live",
        "/ready",
        "/metrics",
    ]
    .iter()
    .any(|end| route.ends_with(end))
}

/// The request-id layers, applied outside [`request_context`]: an
/// unacceptable caller id is removed, a missing id is made (UUID v4) and the
/// request's id is copied onto the answer.
pub fn request_id_layer() -> RequestIdLayers {
    tower::ServiceBuilder::new()
        .map_request(drop_unacceptable_id as fn(Request) -> Request)
        .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
        .layer(PropagateRequestIdLayer::x_request_id())
}

/// The type of [`request_id_layer`].
pub type RequestIdLayers = tower::ServiceBuilder<
    Stack<
        PropagateRequestIdLayer,
        Stack<SetRequestIdLayer<MakeRequestUuid>, Stack<MapRequestLayer<fn(Request) -> Request>, Identity>>,
    >,
>;

/// Removes a caller's request id that [`valid_request_id`] refuses.
fn drop_unacceptable_id(mut req: Request) -> Request {
    let bad = req
        .headers()
        .get(REQUEST_ID_HEADER)
        .is_some_and(|v| !v.to_str().is_ok_and(valid_request_id));
    if bad {
        req.headers_mut().remove(REQUEST_ID_HEADER);
    }
    req
}

/// The middleware (use with `from_fn_with_state(metrics, request_context)`).
pub async fn request_context(State(metrics): State<Arc<Metrics>>, mut req: Request, next: Next) -> Response {
    let started = Instant::now();
    let id = RequestId::from_header(req.headers().get(REQUEST_ID_HEADER));
    req.extensions_mut().insert(id.clone());
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|m| m.as_str().to_string())
        .unwrap_or_else(|| "unmatched".to_string());
    let method = req.method().clone();
    let client_ip = client_addr(req.extensions())
        .map(|a| a.ip().to_string())
        .unwrap_or_default();
    let path = req.uri().path().to_string();
    let probe = req.extensions().get::<Probe>().is_some();

    let mut res = next.run(req).await;

    if let Some(PendingError(mut obj)) = res.extensions_mut().remove::<PendingError>() {
        obj.request_id = Some(id.0.clone());
        let status = res.status();
        let mut headers = res.headers().clone();
        headers.remove(axum::http::header::CONTENT_LENGTH);
        res = if crate::error::is_openai_path(&path) {
            render_openai(status, headers, &obj)
        } else {
            ErrorBody::render(status, headers, obj)
        };
    }
    let status = res.status().as_u16();
    let took = started.elapsed();
    if probe {
        // The gateway's own checks are not user traffic.
        return res;
    }
    metrics
        .http_requests
        .inc(&[&route, method.as_str(), &status.to_string()]);
    metrics.http_duration.observe(&[&route], took);
    macro_rules! access {
        ($level:ident) => {
            tracing::$level!(
                target: "access",
                request_id = %id.0,
                client_ip = %client_ip,
                method = %method,
                endpoint = %path,
                status_code = status,
                duration_ms = took.as_secs_f64() * 1000.0,
                "request served"
            )
        };
    }
    if quiet_route(&route) {
        access!(debug);
    } else {
        access!(info);
    }
    res
}

/// An error answer on `/v1/*`, in OpenAI's shape and status.
fn render_openai(
    status: axum::http::StatusCode,
    mut headers: axum::http::HeaderMap,
    obj: &crate::error::ErrorObject,
) -> Response {
    use axum::response::IntoResponse;
    let (status, body) = crate::error::openai_error(status, obj);
    let bytes = serde_json::to_vec(&body).unwrap_or_else(|_| b"{}".to_vec());
    headers.insert(
        axum::http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    let mut res = (status, bytes).into_response();
    res.headers_mut().extend(headers);
    res
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_ids() {
        assert!(valid_request_id("abc-123_x.y:z"));
        assert!(!valid_request_id(""));
        assert!(!valid_request_id("a b"));
        assert!(!valid_request_id(&"a".repeat(129)));
        let given = HeaderValue::from_static("client-id-1");
        assert_eq!(RequestId::from_header(Some(&given)).0, "client-id-1");
        let bad = HeaderValue::from_static("bad id");
        let generated = RequestId::from_header(Some(&bad));
        assert_ne!(generated.0, "bad id");
        assert!(uuid::Uuid::parse_str(&generated.0).is_ok());
    }

    #[tokio::test]
    async fn ids_are_kept_made_and_echoed() {
        use tower::ServiceExt as _;
        let svc = request_id_layer().service(tower::service_fn(|req: Request| async move {
            // The handler sees the same id the answer carries.
            let seen = req.headers().get(REQUEST_ID_HEADER).cloned();
            let mut res = Response::new(axum::body::Body::empty());
            if let Some(v) = seen {
                res.headers_mut().insert("x-seen", v);
            }
            Ok::<_, std::convert::Infallible>(res)
        }));
        let ask = |id: Option<&'static str>| {
            let svc = svc.clone();
            async move {
                let mut req = Request::new(axum::body::Body::empty());
                if let Some(id) = id {
                    req.headers_mut()
                        .insert(REQUEST_ID_HEADER, HeaderValue::from_static(id));
                }
                let res = svc.oneshot(req).await.unwrap();
                let got = res.headers()[REQUEST_ID_HEADER].to_str().unwrap().to_string();
                assert_eq!(res.headers()["x-seen"], got.as_str());
                got
            }
        };
        assert_eq!(ask(Some("client-id-1")).await, "client-id-1");
        let made = ask(Some("bad id")).await;
        assert!(uuid::Uuid::parse_str(&made).is_ok(), "{made}");
        let made = ask(None).await;
        assert!(uuid::Uuid::parse_str(&made).is_ok(), "{made}");
    }

    #[test]
    fn probes_and_scrapes_are_quiet() {
        for r in [
            "/api/v3/health",
            "/api/v3/health/ready",
            "/api/v3/health/live",
            "/api/v3/metrics",
            "/health",
        ] {
            assert!(quiet_route(r), "{r}");
        }
        for r in [
            "/api/v3/engines",
            "/api/v3/synthesize",
            "unmatched",
            "/admin/api/config",
        ] {
            assert!(!quiet_route(r), "{r}");
        }
    }
}
