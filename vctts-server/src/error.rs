//! HTTP errors: the one table from error code to HTTP status, and the JSON
//! body every failed call returns: `{"error":{"code","message","request_id"}}`,
//! or on the OpenAI-compatible `/v1/*` routes OpenAI's shape ([`openai_error`]).
//!
//! Invariants:
//! - statuses come from the one table in core ([`vctts_core::error::SPECS`]);
//!   [`status_for`] adds only the wire-only codes;
//! - codes are those of [`vctts_core::Error::code`] plus the few that exist only
//!   on the wire ([`WireError`]: malformed JSON or multipart, a bad query
//!   string, wrong content type, body too large, batch too large, unknown
//!   route, wrong method);
//! - rate-limit and back-pressure answers carry `Retry-After`; rate limits also
//!   carry `RateLimit-Limit`, `RateLimit-Remaining`, `RateLimit-Reset` and
//!   `X-RateLimit-Layer`;
//! - the request id is filled in by the request-context middleware
//!   ([`crate::http::context`]), so errors made anywhere (extractors included)
//!   carry it.

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use std::time::Duration;
use vctts_core::error::LimitLayer;

/// Errors that exist only on the HTTP surface.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    /// The body is not well-formed JSON (syntax error or truncated).
    #[error("malformed JSON body: {0}")]
    MalformedJson(String),
    /// A multipart body cannot be read.
    #[error("malformed multipart body: {0}")]
    MalformedMultipart(String),
    /// The query string cannot be read as the endpoint's parameters.
    #[error("invalid query string: {0}")]
    InvalidQuery(String),
    /// The content type is not the one the endpoint takes.
    #[error("unsupported content type {found:?}; expected {expected}")]
    UnsupportedMediaType { found: String, expected: String },
    /// The body is larger than allowed.
    #[error("request body is larger than the limit of {limit} bytes")]
    PayloadTooLarge { limit: u64 },
    /// A batch has more items than allowed.
    #[error("batch has {count} items, the limit is {limit}")]
    BatchTooLarge { count: usize, limit: usize },
    /// The text would make more audio than one request may
    /// (`limits.max_output_duration`; a batch counts all its items).
    #[error(
        "the text would make about {seconds} s of audio; the limit per request is {limit} s \
         (limits.max_output_duration): split it into several requests"
    )]
    OutputTooLong { seconds: u64, limit: u64 },
    /// The request target is longer than the gateway reads.
    #[error("the request URI is longer than {limit} bytes")]
    UriTooLong { limit: usize },
    /// The request headers together are larger than the gateway reads.
    #[error("the request headers are larger than {limit} bytes")]
    HeadersTooLarge { limit: usize },
    /// The path does not decode to UTF-8.
    #[error("the request path is not valid UTF-8 once percent-decoded")]
    InvalidPath,
    /// No such route.
    #[error("no route for {0}")]
    NotFound(String),
    /// The route exists, the method does not.
    #[error("method not allowed")]
    MethodNotAllowed,
}

impl WireError {
    /// Stable code.
    pub fn code(&self) -> &'static str {
        match self {
            WireError::MalformedJson(_) => "malformed_json",
            WireError::MalformedMultipart(_) => "malformed_multipart",
            WireError::InvalidQuery(_) => "invalid_query",
            WireError::UnsupportedMediaType { .. } => "unsupported_media_type",
            WireError::PayloadTooLarge { .. } => "payload_too_large",
            WireError::BatchTooLarge { .. } => "batch_too_large",
            WireError::OutputTooLong { .. } => "output_too_long",
            WireError::UriTooLong { .. } => "uri_too_long",
            WireError::HeadersTooLarge { .. } => "headers_too_large",
            WireError::InvalidPath => "invalid_path",
            WireError::NotFound(_) => "not_found",
            WireError::MethodNotAllowed => "method_not_allowed",
        }
    }
}

/// Rate-limit details echoed in headers.
#[derive(Debug, Clone, PartialEq)]
pub struct RateLimitInfo {
    /// The layer that refused.
    pub layer: LimitLayer,
    /// When to retry.
    pub retry_after: Duration,
    /// The limit of that layer, requests per minute (0 when not a rate).
    pub limit_rpm: u32,
    /// Requests left in the window.
    pub remaining: u32,
}

/// What went wrong: a domain error or a wire error.
#[derive(Debug, thiserror::Error)]
pub enum ApiErrorKind {
    /// From core, engines or the server's own logic.
    #[error(transparent)]
    Core(#[from] vctts_core::Error),
    /// From the HTTP surface.
    #[error(transparent)]
    Wire(#[from] WireError),
}

/// An error answer. Convert from [`vctts_core::Error`] or [`WireError`] with `?`.
#[derive(Debug)]
pub struct ApiError {
    /// The cause.
    pub kind: ApiErrorKind,
    /// Rate-limit details, when a limiter refused.
    pub rate_limit: Option<RateLimitInfo>,
}

impl<E: Into<ApiErrorKind>> From<E> for ApiError {
    fn from(e: E) -> Self {
        let kind = e.into();
        let rate_limit = match &kind {
            ApiErrorKind::Core(vctts_core::Error::RateLimited {
                layer,
                retry_after,
                limit_rpm,
                remaining,
            }) => Some(RateLimitInfo {
                layer: *layer,
                retry_after: *retry_after,
                limit_rpm: *limit_rpm,
                remaining: *remaining,
            }),
            _ => None,
        };
        Self { kind, rate_limit }
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.kind.fmt(f)
    }
}

impl ApiError {
    /// The domain error behind this one (a wire error, which the service
    /// layer never makes, becomes `internal_error`).
    pub fn into_core(self) -> vctts_core::Error {
        match self.kind {
            ApiErrorKind::Core(e) => e,
            ApiErrorKind::Wire(w) => vctts_core::Error::Internal(w.to_string()),
        }
    }

    /// A rate-limit refusal with its header details.
    pub fn rate_limited(info: RateLimitInfo) -> Self {
        Self {
            kind: ApiErrorKind::Core(vctts_core::Error::RateLimited {
                layer: info.layer,
                retry_after: info.retry_after,
                limit_rpm: info.limit_rpm,
                remaining: info.remaining,
            }),
            rate_limit: Some(info),
        }
    }

    /// The stable code.
    pub fn code(&self) -> &'static str {
        match &self.kind {
            ApiErrorKind::Core(e) => e.code(),
            ApiErrorKind::Wire(e) => e.code(),
        }
    }

    /// The HTTP status from the one table.
    pub fn status(&self) -> StatusCode {
        match &self.kind {
            ApiErrorKind::Core(e) => status_code(e.http_status()),
            ApiErrorKind::Wire(_) => status_for(self.code()),
        }
    }

    /// The core error, if this is one.
    pub fn core(&self) -> Option<&vctts_core::Error> {
        match &self.kind {
            ApiErrorKind::Core(e) => Some(e),
            ApiErrorKind::Wire(_) => None,
        }
    }

    /// When a client should retry, if a retry may help.
    pub fn retry_after(&self) -> Option<Duration> {
        if let Some(r) = &self.rate_limit {
            return Some(r.retry_after);
        }
        self.core()?.retry_after()
    }
}

fn status_code(status: u16) -> StatusCode {
    StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
}

/// The HTTP status of a code: the wire-only codes here, every other from the
/// one table in core. Unknown codes are 500.
pub fn status_for(code: &str) -> StatusCode {
    match code {
        "malformed_json" | "malformed_multipart" | "invalid_query" | "invalid_path" => {
            StatusCode::BAD_REQUEST
        }
        "uri_too_long" => StatusCode::URI_TOO_LONG,
        "headers_too_large" => StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
        "unsupported_media_type" => StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "payload_too_large" | "batch_too_large" | "output_too_long" => StatusCode::PAYLOAD_TOO_LARGE,
        "not_found" => StatusCode::NOT_FOUND,
        "method_not_allowed" => StatusCode::METHOD_NOT_ALLOWED,
        other => vctts_core::error::spec_for_code(other)
            .map(|s| status_code(s.http_status))
            .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
    }
}

/// The `error` object of an error body.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ErrorObject {
    /// Stable machine-readable code (see the API reference).
    pub code: String,
    /// Human-readable explanation.
    pub message: String,
    /// The request id (also in the `X-Request-Id` header).
    pub request_id: Option<String>,
    /// For rate limits: the layer that refused (`global`, `ip`, `endpoint`, `node`, `concurrency`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit_layer: Option<String>,
    /// For engine capacity errors: the engine concerned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub engine: Option<String>,
    /// The typed fields of the error (e.g. `len` and `limit` of
    /// `text_too_long`), so programs and the cluster never parse the message.
    /// Any JSON value: an object of fields, or a string for errors that
    /// carry one value (e.g. the voice id of `voice_not_found`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<utoipa::openapi::schema::Value>)]
    pub details: Option<serde_json::Value>,
}

/// The body of every error answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ErrorBody {
    /// What went wrong.
    pub error: ErrorObject,
}

/// Marker left in a response's extensions so the request-context middleware
/// can fill in the request id before the body is sent.
#[derive(Debug, Clone)]
pub struct PendingError(pub ErrorObject);

impl ErrorBody {
    /// Renders the final JSON response of an error object.
    pub fn render(status: StatusCode, mut headers: HeaderMap, obj: ErrorObject) -> Response {
        let body = serde_json::to_vec(&ErrorBody { error: obj }).unwrap_or_else(|_| b"{}".to_vec());
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
        let mut res = (status, body).into_response();
        res.headers_mut().extend(headers);
        res
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        let mut headers = HeaderMap::new();
        if let Some(after) = self.retry_after() {
            let secs = after.as_secs_f64().ceil().max(1.0) as u64;
            headers.insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        if let Some(r) = &self.rate_limit {
            let reset = r.retry_after.as_secs_f64().ceil().max(1.0) as u64;
            headers.insert("ratelimit-limit", HeaderValue::from(r.limit_rpm));
            headers.insert("ratelimit-remaining", HeaderValue::from(r.remaining));
            headers.insert("ratelimit-reset", HeaderValue::from(reset));
            headers.insert("x-ratelimit-layer", HeaderValue::from_static(r.layer.as_str()));
        }
        let engine = match self.core() {
            Some(vctts_core::Error::NoNodeAvailable { engine }) => {
                if let Ok(v) = HeaderValue::from_str(engine) {
                    headers.insert("x-engine", v);
                }
                Some(engine.clone())
            }
            _ => None,
        };
        let obj = ErrorObject {
            code: self.code().to_string(),
            message: self.to_string(),
            request_id: None,
            limit_layer: self.rate_limit.as_ref().map(|r| r.layer.as_str().to_string()),
            engine,
            details: self.core().and_then(details_of),
        };
        if status.is_server_error() {
            tracing::warn!(code = %obj.code, error = %obj.message, "request failed");
        }
        let mut res = ErrorBody::render(status, headers, obj.clone());
        res.extensions_mut().insert(PendingError(obj));
        res
    }
}

/// The typed fields of a core error (`None` for kinds without fields).
pub fn details_of(e: &vctts_core::Error) -> Option<serde_json::Value> {
    match serde_json::to_value(e) {
        Ok(serde_json::Value::Object(mut m)) => m.remove("details"),
        _ => None,
    }
}

/// Rebuilds the core error of an error object as the node that made it had
/// it: from its code and typed details, never from its message. A code this
/// build does not know (or details that do not fit it) is an
/// `internal_error` naming the code.
pub fn error_from_object(obj: &ErrorObject, node: &str) -> vctts_core::Error {
    let mut tagged = serde_json::Map::new();
    tagged.insert("code".into(), serde_json::Value::String(obj.code.clone()));
    if let Some(d) = &obj.details {
        tagged.insert("details".into(), d.clone());
    }
    match serde_json::from_value::<vctts_core::Error>(serde_json::Value::Object(tagged)) {
        Ok(vctts_core::Error::NodeUnavailable { message, .. }) => vctts_core::Error::NodeUnavailable {
            node: node.to_string(),
            message,
        },
        Ok(e) => e,
        Err(_) => vctts_core::Error::Internal(format!("node {node} answered {}: {}", obj.code, obj.message)),
    }
}

/// Result alias for handlers.
pub type ApiResult<T> = std::result::Result<T, ApiError>;

/// The body of an error on `/v1/*`, as OpenAI sends it.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct OpenAiErrorBody {
    /// What went wrong.
    pub error: OpenAiError,
}

/// OpenAI's error object.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct OpenAiError {
    /// Human-readable explanation.
    pub message: String,
    /// `invalid_request_error`, `authentication_error`, `rate_limit_error` or `server_error`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The request parameter at fault, when one is.
    pub param: Option<String>,
    /// vctts's stable error code (see the API reference).
    pub code: Option<String>,
    /// vctts's request id (also in `X-Request-Id`); OpenAI clients ignore it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
}

/// An `/api/v3` error object in OpenAI's shape, with the status OpenAI
/// would answer (400 for a bad parameter, where `/api/v3` says 422).
pub fn openai_error(status: StatusCode, obj: &ErrorObject) -> (StatusCode, OpenAiErrorBody) {
    let status = if status == StatusCode::UNPROCESSABLE_ENTITY {
        StatusCode::BAD_REQUEST
    } else {
        status
    };
    let kind = match status.as_u16() {
        401 | 403 => "authentication_error",
        429 => "rate_limit_error",
        s if s >= 500 => "server_error",
        _ => "invalid_request_error",
    };
    let field = obj
        .details
        .as_ref()
        .and_then(|d| d.get("field"))
        .and_then(|f| f.as_str());
    let param = match (obj.code.as_str(), field) {
        (_, Some("format")) => Some("response_format"),
        (_, Some("text")) => Some("input"),
        (_, Some(f)) => Some(f),
        ("empty_text" | "text_too_long", None) => Some("input"),
        ("voice_not_found" | "invalid_voice_id", None) => Some("voice"),
        ("unknown_engine", None) => Some("model"),
        ("unsupported_language", None) => Some("language"),
        _ => None,
    };
    let body = OpenAiErrorBody {
        error: OpenAiError {
            message: obj.message.clone(),
            kind: kind.to_string(),
            param: param.map(str::to_string),
            code: Some(obj.code.clone()),
            request_id: obj.request_id.clone(),
        },
    };
    (status, body)
}

/// Whether a path is one of the OpenAI-compatible routes (errors there take
/// OpenAI's shape).
pub fn is_openai_path(path: &str) -> bool {
    path == "/v1" || path.starts_with("/v1/")
}

#[cfg(test)]
mod tests {
    use super::*;
    use vctts_core::Error;

    #[test]
    fn table_covers_codes() {
        let cases: Vec<(ApiError, u16)> = vec![
            (Error::EmptyText.into(), 422),
            (Error::TextTooLong { len: 2, limit: 1 }.into(), 422),
            (Error::VoiceNotFound("v".into()).into(), 404),
            (
                Error::InvalidVoiceId {
                    id: "a/b".into(),
                    reason: "r".into(),
                }
                .into(),
                400,
            ),
            (Error::UnknownEngine("x".into()).into(), 422),
            (
                Error::NoNodeAvailable {
                    engine: "openvoice".into(),
                }
                .into(),
                503,
            ),
            (Error::Overloaded("q".into()).into(), 503),
            (Error::Unauthorized("t".into()).into(), 401),
            (Error::Internal("x".into()).into(), 500),
            (Error::Cancelled.into(), 499),
            (WireError::MalformedJson("x".into()).into(), 400),
            (
                WireError::UnsupportedMediaType {
                    found: "text/plain".into(),
                    expected: "application/json".into(),
                }
                .into(),
                415,
            ),
            (WireError::PayloadTooLarge { limit: 1 }.into(), 413),
            (WireError::BatchTooLarge { count: 3, limit: 2 }.into(), 413),
            (WireError::NotFound("/x".into()).into(), 404),
        ];
        for (e, status) in cases {
            assert_eq!(e.status().as_u16(), status, "{}", e.code());
        }
        assert_eq!(status_for("something_new"), StatusCode::INTERNAL_SERVER_ERROR);
    }

    #[test]
    fn errors_cross_the_cluster_structurally() {
        let cases = [
            Error::invalid("speed", "must be between 0.25 and 4.0, got 9"),
            Error::EmptyText,
            Error::TextTooLong { len: 12, limit: 10 },
            Error::VoiceNotFound("alice".into()),
            Error::ModelNotLoaded("standby".into()),
            Error::Overloaded("queue full".into()),
            Error::Timeout("slow".into()),
            Error::NodeUnavailable {
                node: "worker-side name".into(),
                message: "draining".into(),
            },
            Error::Cancelled,
        ];
        for e in cases {
            let obj = ErrorObject {
                code: e.code().to_string(),
                message: "a message nobody parses".into(),
                request_id: None,
                limit_layer: None,
                engine: None,
                details: details_of(&e),
            };
            let back = error_from_object(&obj, "n");
            assert_eq!(back.code(), e.code());
            assert_eq!(back.retryable(), e.retryable(), "{}", e.code());
            if !matches!(e, Error::NodeUnavailable { .. }) {
                assert_eq!(back.to_string(), e.to_string());
            }
        }
        let e = error_from_object(
            &ErrorObject {
                code: "text_too_long".into(),
                message: "text has 12 characters, the limit is 10".into(),
                request_id: None,
                limit_layer: None,
                engine: None,
                details: details_of(&Error::TextTooLong { len: 12, limit: 10 }),
            },
            "n",
        );
        assert!(matches!(e, Error::TextTooLong { len: 12, limit: 10 }));
        // The gateway names the node it called.
        let obj = ErrorObject {
            code: "node_unavailable".into(),
            message: String::new(),
            request_id: None,
            limit_layer: None,
            engine: None,
            details: details_of(&Error::NodeUnavailable {
                node: "x".into(),
                message: "m".into(),
            }),
        };
        assert!(error_from_object(&obj, "n").to_string().starts_with("node n "));
        let weird = ErrorObject {
            code: "weird".into(),
            message: "x".into(),
            request_id: None,
            limit_layer: None,
            engine: None,
            details: None,
        };
        assert_eq!(error_from_object(&weird, "n").code(), "internal_error");
    }

    #[test]
    fn no_node_answer_has_retry_after_and_engine() {
        let res = ApiError::from(Error::NoNodeAvailable {
            engine: "openvoice".into(),
        })
        .into_response();
        assert_eq!(res.status(), 503);
        assert_eq!(res.headers()[header::RETRY_AFTER], "1");
        assert_eq!(res.headers()["x-engine"], "openvoice");
        let p = res.extensions().get::<PendingError>().unwrap();
        assert_eq!(p.0.code, "no_node_available");
        assert_eq!(p.0.engine.as_deref(), Some("openvoice"));
    }

    #[test]
    fn rate_limit_headers_name_the_layer() {
        let res = ApiError::rate_limited(RateLimitInfo {
            layer: LimitLayer::Ip,
            retry_after: Duration::from_millis(2500),
            limit_rpm: 60,
            remaining: 0,
        })
        .into_response();
        assert_eq!(res.status(), 429);
        let h = res.headers();
        assert_eq!(h[header::RETRY_AFTER], "3");
        assert_eq!(h["ratelimit-limit"], "60");
        assert_eq!(h["ratelimit-remaining"], "0");
        assert_eq!(h["ratelimit-reset"], "3");
        assert_eq!(h["x-ratelimit-layer"], "ip");
    }

    /// The service layer returns core errors: a core `rate_limited` (the
    /// node layer's refusal in routing) renders exactly as the HTTP
    /// limiter's `ApiError::rate_limited` — same status, headers and body.
    #[tokio::test]
    async fn a_core_rate_limit_renders_like_the_http_one() {
        let info = RateLimitInfo {
            layer: LimitLayer::Node,
            retry_after: Duration::from_millis(1500),
            limit_rpm: 2,
            remaining: 0,
        };
        let core: ApiError = Error::RateLimited {
            layer: info.layer,
            retry_after: info.retry_after,
            limit_rpm: info.limit_rpm,
            remaining: info.remaining,
        }
        .into();
        let (a, b) = (core.into_response(), ApiError::rate_limited(info).into_response());
        assert_eq!(a.status(), b.status());
        assert_eq!(a.headers(), b.headers());
        assert_eq!(a.headers()["ratelimit-limit"], "2");
        let body = |r: Response| async move { axum::body::to_bytes(r.into_body(), 1 << 16).await.unwrap() };
        let (a, b) = (body(a).await, body(b).await);
        assert_eq!(a, b);
        let v: serde_json::Value = serde_json::from_slice(&a).unwrap();
        let details = v["error"]["details"].as_object().unwrap();
        assert_eq!(details["layer"], "node");
        assert!(
            !details.contains_key("limit_rpm") && !details.contains_key("remaining"),
            "the header figures stay out of the body: {details:?}"
        );
    }

    #[test]
    fn errors_take_openai_shape_and_status() {
        let obj = ErrorObject {
            code: "invalid_input".into(),
            message: "invalid format: nope".into(),
            request_id: Some("r".into()),
            limit_layer: None,
            engine: None,
            details: Some(serde_json::json!({"field": "format", "message": "nope"})),
        };
        let (status, body) = openai_error(StatusCode::UNPROCESSABLE_ENTITY, &obj);
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(body.error.kind, "invalid_request_error");
        assert_eq!(body.error.param.as_deref(), Some("response_format"));
        assert_eq!(body.error.code.as_deref(), Some("invalid_input"));
        let v = serde_json::to_value(&body).unwrap();
        let mut keys: Vec<&String> = v["error"].as_object().unwrap().keys().collect();
        keys.sort();
        assert_eq!(keys, ["code", "message", "param", "request_id", "type"]);
        let limited = ErrorObject {
            code: "rate_limited".into(),
            details: None,
            ..obj
        };
        let (status, body) = openai_error(StatusCode::TOO_MANY_REQUESTS, &limited);
        assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(body.error.kind, "rate_limit_error");
        assert_eq!(body.error.param, None);
        assert!(is_openai_path("/v1/audio/speech"));
        assert!(!is_openai_path("/v10"));
        assert!(!is_openai_path("/api/v3/synthesize"));
    }
}
