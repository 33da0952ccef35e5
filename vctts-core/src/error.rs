//! The one error type of vctts, and the one table that classifies it.
//!
//! Every kind of error declares once, in [`ErrorSpec`] (see [`Error::spec`]),
//! its stable code (clients match on it; it never changes once released), its
//! HTTP status class, whether a retry on another node may help, who is to
//! blame, and the `Retry-After` a client should wait. The server maps through
//! this table and nothing else; routing reads [`Error::blame`] and
//! [`Error::retryable`], never the message.
//!
//! Errors cross the cluster protocol structurally: [`Error`] serializes as
//! `{"code": ..., "details": {typed fields}}` and deserializes back to the same
//! variant, so no message text is ever parsed. An I/O error keeps its cause
//! ([`std::error::Error::source`]); across the wire its cause becomes text.

use std::time::Duration;

/// Result alias used throughout vctts.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Which limiter layer refused a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LimitLayer {
    /// The whole service.
    Global,
    /// One client IP address.
    Ip,
    /// One endpoint.
    Endpoint,
    /// One worker node.
    Node,
    /// One API key.
    Key,
    /// The concurrency cap (the wait queue was full or the wait timed out).
    Concurrency,
}

impl LimitLayer {
    /// Stable lower-case name, as used in headers and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            LimitLayer::Global => "global",
            LimitLayer::Ip => "ip",
            LimitLayer::Endpoint => "endpoint",
            LimitLayer::Node => "node",
            LimitLayer::Key => "key",
            LimitLayer::Concurrency => "concurrency",
        }
    }
}

impl std::fmt::Display for LimitLayer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Who is to blame for an error: it decides whether a failure counts against
/// a node (its circuit breaker) and how loudly it is logged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Blame {
    /// The request was wrong; the same request fails everywhere.
    Client,
    /// Nobody's fault: capacity, standby, limits; later or elsewhere may work.
    Capacity,
    /// The node (or its engine) failed.
    Node,
    /// A bug or an unexpected condition of vctts itself.
    Internal,
}

/// What one kind of error is: declared once per kind, in [`Error::spec`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ErrorSpec {
    /// Stable machine-readable code.
    pub code: &'static str,
    /// The HTTP status an API answers with (the server maps only through this).
    pub http_status: u16,
    /// Whether the same request may succeed on another node or later.
    pub retryable: bool,
    /// Who is to blame.
    pub blame: Blame,
    /// What a client should wait before retrying (rate limits carry their own).
    pub retry_after: Option<Duration>,
}

const fn spec(code: &'static str, http_status: u16, blame: Blame) -> ErrorSpec {
    ErrorSpec {
        code,
        http_status,
        retryable: false,
        blame,
        retry_after: None,
    }
}

/// A kind another node or a later try may serve, after `Retry-After: 1`.
const fn retry(code: &'static str, http_status: u16, blame: Blame) -> ErrorSpec {
    ErrorSpec {
        code,
        http_status,
        retryable: true,
        blame,
        retry_after: Some(Duration::from_secs(1)),
    }
}

/// The one table, one row per kind (the order of [`Error`]'s variants).
pub const SPECS: &[ErrorSpec] = &[
    spec("invalid_input", 422, Blame::Client),
    spec("empty_text", 422, Blame::Client),
    spec("text_too_long", 422, Blame::Client),
    spec("unsupported_language", 422, Blame::Client),
    spec("invalid_voice_id", 400, Blame::Client),
    spec("voice_not_found", 404, Blame::Client),
    spec("unknown_engine", 422, Blame::Client),
    spec("profile_mismatch", 500, Blame::Internal),
    spec("audio_decode_failed", 422, Blame::Client),
    spec("audio_rejected", 422, Blame::Client),
    spec("model_not_installed", 503, Blame::Capacity),
    retry("model_not_loaded", 503, Blame::Capacity),
    spec("model_load_failed", 503, Blame::Node),
    spec("runtime_unavailable", 503, Blame::Node),
    spec("inference_failed", 500, Blame::Node),
    ErrorSpec {
        code: "rate_limited",
        http_status: 429,
        retryable: false,
        blame: Blame::Capacity,
        retry_after: None,
    },
    retry("overloaded", 503, Blame::Capacity),
    retry("no_node_available", 503, Blame::Capacity),
    spec("unknown_node", 404, Blame::Client),
    retry("node_unavailable", 502, Blame::Node),
    spec("invalid_node_state", 409, Blame::Client),
    ErrorSpec {
        code: "timeout",
        http_status: 504,
        retryable: true,
        blame: Blame::Node,
        retry_after: None,
    },
    // The client went away; nobody reads the answer, but logs and metrics do.
    spec("cancelled", 499, Blame::Client),
    spec("package_invalid", 422, Blame::Client),
    spec("invalid_config", 500, Blame::Internal),
    spec("unauthorized", 401, Blame::Client),
    spec("forbidden", 403, Blame::Client),
    spec("io_error", 500, Blame::Node),
    spec("internal_error", 500, Blame::Internal),
    spec("output_too_long", 413, Blame::Client),
];

/// The row of a code, if the code is one of [`Error`]'s.
pub fn spec_for_code(code: &str) -> Option<&'static ErrorSpec> {
    SPECS.iter().find(|s| s.code == code)
}

/// Errors of vctts. Construct with the variant that names the cause; the
/// message is for humans, the [`code`](Error::code) for programs.
#[derive(Debug, thiserror::Error, serde::Serialize, serde::Deserialize)]
#[serde(tag = "code", content = "details", rename_all = "snake_case")]
pub enum Error {
    /// A request field is missing or has a bad value.
    #[error("invalid {field}: {message}")]
    InvalidInput { field: String, message: String },
    /// The text is empty or only whitespace.
    #[error("text is empty")]
    EmptyText,
    /// The text is longer than the engine or service accepts.
    #[error("text has {len} characters, the limit is {limit}")]
    TextTooLong { len: usize, limit: usize },
    /// The engine does not speak the requested language.
    #[error("language {language:?} is not supported by {engine} (supported: {supported})")]
    UnsupportedLanguage {
        language: String,
        engine: String,
        supported: String,
    },
    /// A voice id is malformed (path characters, too long, ...).
    #[error("invalid voice id {id:?}: {reason}")]
    InvalidVoiceId { id: String, reason: String },
    /// No voice with this id exists.
    #[error("voice not found: {0}")]
    VoiceNotFound(String),
    /// The engine name is not one vctts knows.
    #[error("unknown engine {0:?} (known: xtts, openvoice, gpt-sovits)")]
    UnknownEngine(String),
    /// The profile was made by another engine or an incompatible format version.
    #[error("voice profile is for {found}, expected {expected}")]
    ProfileMismatch { expected: String, found: String },
    /// Audio could not be decoded (corrupt, truncated, not audio).
    #[error("cannot decode audio: {0}")]
    #[serde(rename = "audio_decode_failed")]
    AudioDecode(String),
    /// Audio is valid but not usable (too short, too long, silent, too many channels).
    #[error("unusable audio: {0}")]
    AudioRejected(String),
    /// A model file is not installed; the message says where it goes.
    #[error("model not installed: {0}")]
    ModelNotInstalled(String),
    /// The model is installed but not loaded (the node is in standby).
    #[error("model not loaded ({0})")]
    ModelNotLoaded(String),
    /// Loading the model failed.
    #[error("model failed to load: {0}")]
    #[serde(rename = "model_load_failed")]
    ModelLoad(String),
    /// ONNX Runtime could not be found or initialised.
    #[error("ONNX Runtime unavailable: {0}")]
    #[serde(rename = "runtime_unavailable")]
    Runtime(String),
    /// Inference failed inside the engine.
    #[error("inference failed: {0}")]
    #[serde(rename = "inference_failed")]
    Inference(String),
    /// A rate limit refused the request.
    #[error("rate limited by the {layer} limit, retry in {:.1}s", retry_after.as_secs_f64())]
    RateLimited {
        layer: LimitLayer,
        retry_after: Duration,
        /// The layer's limit, requests per minute (0 when not known), for
        /// the `RateLimit-Limit` header; not part of the serialized details.
        #[serde(skip)]
        limit_rpm: u32,
        /// Requests left in the layer's window (for `RateLimit-Remaining`);
        /// not part of the serialized details.
        #[serde(skip)]
        remaining: u32,
    },
    /// The engine or node is at capacity and its queue is full.
    #[error("overloaded: {0}")]
    Overloaded(String),
    /// No ready node serves this engine.
    #[error("no ready node for engine {engine}")]
    NoNodeAvailable { engine: String },
    /// A heartbeat or action named a node the registry does not know.
    #[error("unknown node {0:?}")]
    UnknownNode(String),
    /// A node could not be reached or failed in a way another node may not.
    #[error("node {node} unavailable: {message}")]
    NodeUnavailable { node: String, message: String },
    /// The action is not valid in the node's current state.
    #[error("node {node} is {state}: {message}")]
    #[serde(rename = "invalid_node_state")]
    NodeState {
        node: String,
        state: String,
        message: String,
    },
    /// The operation took longer than allowed.
    #[error("timed out: {0}")]
    Timeout(String),
    /// The caller went away; the work was stopped.
    #[error("cancelled")]
    Cancelled,
    /// A model package is malformed, incomplete or corrupt.
    #[error("package error: {0}")]
    #[serde(rename = "package_invalid")]
    Package(String),
    /// Configuration is invalid; the message names the key.
    #[error("invalid configuration: {0}")]
    #[serde(rename = "invalid_config")]
    Config(String),
    /// Authentication missing or wrong.
    #[error("unauthorized: {0}")]
    Unauthorized(String),
    /// Authenticated but not allowed.
    #[error("forbidden: {0}")]
    Forbidden(String),
    /// An I/O error with the path or operation that failed.
    #[error("{context}: {source}")]
    #[serde(rename = "io_error")]
    Io {
        context: String,
        #[source]
        #[serde(with = "io_text")]
        source: std::io::Error,
    },
    /// A bug or an unexpected condition.
    #[error("internal error: {0}")]
    #[serde(rename = "internal_error")]
    Internal(String),
    /// The text would make more audio than one request may
    /// (`limits.max_output_duration`; a batch counts all its items).
    #[error(
        "the text would make about {seconds} s of audio; the limit per request is {limit} s \
         (limits.max_output_duration): split it into several requests"
    )]
    OutputTooLong { seconds: u64, limit: u64 },
}

impl Error {
    /// This kind's row of the one table.
    pub fn spec(&self) -> &'static ErrorSpec {
        let i = match self {
            Error::InvalidInput { .. } => 0,
            Error::EmptyText => 1,
            Error::TextTooLong { .. } => 2,
            Error::UnsupportedLanguage { .. } => 3,
            Error::InvalidVoiceId { .. } => 4,
            Error::VoiceNotFound(_) => 5,
            Error::UnknownEngine(_) => 6,
            Error::ProfileMismatch { .. } => 7,
            Error::AudioDecode(_) => 8,
            Error::AudioRejected(_) => 9,
            Error::ModelNotInstalled(_) => 10,
            Error::ModelNotLoaded(_) => 11,
            Error::ModelLoad(_) => 12,
            Error::Runtime(_) => 13,
            Error::Inference(_) => 14,
            Error::RateLimited { .. } => 15,
            Error::Overloaded(_) => 16,
            Error::NoNodeAvailable { .. } => 17,
            Error::UnknownNode(_) => 18,
            Error::NodeUnavailable { .. } => 19,
            Error::NodeState { .. } => 20,
            Error::Timeout(_) => 21,
            Error::Cancelled => 22,
            Error::Package(_) => 23,
            Error::Config(_) => 24,
            Error::Unauthorized(_) => 25,
            Error::Forbidden(_) => 26,
            Error::Io { .. } => 27,
            Error::Internal(_) => 28,
            Error::OutputTooLong { .. } => 29,
        };
        &SPECS[i]
    }

    /// Stable machine-readable code (documented in docs/API_REFERENCE.md).
    pub fn code(&self) -> &'static str {
        self.spec().code
    }

    /// Whether the same request may succeed on another node (or later).
    /// The gateway's failover reads this, never the message.
    pub fn retryable(&self) -> bool {
        self.spec().retryable
    }

    /// Who is to blame.
    pub fn blame(&self) -> Blame {
        self.spec().blame
    }

    /// What a client should wait before retrying, if a retry may help.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Error::RateLimited { retry_after, .. } => Some(*retry_after),
            e => e.spec().retry_after,
        }
    }

    /// The HTTP status an API answers this error with.
    pub fn http_status(&self) -> u16 {
        self.spec().http_status
    }

    /// Shorthand for [`Error::InvalidInput`].
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        Error::InvalidInput {
            field: field.into(),
            message: message.into(),
        }
    }

    /// Shorthand for [`Error::Io`] with a context naming the path or operation.
    pub fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        Error::Io {
            context: context.into(),
            source,
        }
    }
}

/// An I/O error across the wire: its text (and kind, where it has a name).
mod io_text {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(e: &std::io::Error, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&e.to_string())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<std::io::Error, D::Error> {
        Ok(std::io::Error::other(String::deserialize(d)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_stable_and_unique() {
        let all = [
            Error::invalid("f", "m"),
            Error::EmptyText,
            Error::TextTooLong { len: 2, limit: 1 },
            Error::UnsupportedLanguage {
                language: "xx".into(),
                engine: "e".into(),
                supported: "en".into(),
            },
            Error::InvalidVoiceId {
                id: "a/b".into(),
                reason: "r".into(),
            },
            Error::VoiceNotFound("v".into()),
            Error::UnknownEngine("e".into()),
            Error::ProfileMismatch {
                expected: "a".into(),
                found: "b".into(),
            },
            Error::AudioDecode("x".into()),
            Error::AudioRejected("x".into()),
            Error::ModelNotInstalled("x".into()),
            Error::ModelNotLoaded("x".into()),
            Error::ModelLoad("x".into()),
            Error::Runtime("x".into()),
            Error::Inference("x".into()),
            Error::RateLimited {
                layer: LimitLayer::Ip,
                retry_after: Duration::from_secs(1),
                limit_rpm: 0,
                remaining: 0,
            },
            Error::Overloaded("x".into()),
            Error::NoNodeAvailable {
                engine: "xtts".into(),
            },
            Error::UnknownNode("n".into()),
            Error::NodeUnavailable {
                node: "n".into(),
                message: "m".into(),
            },
            Error::NodeState {
                node: "n".into(),
                state: "s".into(),
                message: "m".into(),
            },
            Error::Timeout("x".into()),
            Error::Cancelled,
            Error::Package("x".into()),
            Error::Config("x".into()),
            Error::Unauthorized("x".into()),
            Error::Forbidden("x".into()),
            Error::io("p", std::io::Error::other("x")),
            Error::Internal("x".into()),
            Error::OutputTooLong {
                seconds: 700,
                limit: 600,
            },
        ];
        // The serde tag is the code, and every kind survives the wire whole.
        for e in &all {
            let v = serde_json::to_value(e).unwrap();
            assert_eq!(v["code"], e.code(), "{e:?}");
            let back: Error = serde_json::from_value(v).unwrap();
            assert_eq!(back.code(), e.code());
            assert_eq!(back.to_string(), e.to_string());
            assert_eq!(back.retry_after(), e.retry_after());
        }
        assert_eq!(all.len(), SPECS.len(), "one row per kind");
        for spec in SPECS {
            assert_eq!(spec_for_code(spec.code), Some(spec));
        }
        let mut codes: Vec<_> = all.iter().map(Error::code).collect();
        let n = codes.len();
        codes.sort_unstable();
        codes.dedup();
        assert_eq!(codes.len(), n, "duplicate error codes");
        assert!(
            codes
                .iter()
                .all(|c| c.chars().all(|ch| ch.is_ascii_lowercase() || ch == '_'))
        );
    }

    #[test]
    fn retryable_classification() {
        assert!(
            Error::NodeUnavailable {
                node: "n".into(),
                message: "refused".into()
            }
            .retryable()
        );
        assert!(Error::Overloaded("q".into()).retryable());
        assert!(!Error::EmptyText.retryable());
        assert!(!Error::VoiceNotFound("v".into()).retryable());
        assert!(!Error::Inference("x".into()).retryable());
    }

    #[test]
    fn the_table_classifies_blame_status_and_retry_after() {
        assert_eq!(Error::EmptyText.blame(), Blame::Client);
        assert_eq!(Error::EmptyText.http_status(), 422);
        assert_eq!(Error::Overloaded("q".into()).blame(), Blame::Capacity);
        assert_eq!(
            Error::Overloaded("q".into()).retry_after(),
            Some(Duration::from_secs(1))
        );
        assert_eq!(Error::Inference("x".into()).blame(), Blame::Node);
        assert_eq!(Error::Internal("x".into()).blame(), Blame::Internal);
        assert_eq!(Error::Cancelled.http_status(), 499);
        let limited = Error::RateLimited {
            layer: LimitLayer::Ip,
            retry_after: Duration::from_millis(2500),
            limit_rpm: 60,
            remaining: 0,
        };
        assert_eq!(limited.retry_after(), Some(Duration::from_millis(2500)));
        assert_eq!(limited.http_status(), 429);
        let v = serde_json::to_value(Error::TextTooLong { len: 12, limit: 10 }).unwrap();
        assert_eq!(v["details"]["len"], 12);
        assert_eq!(v["details"]["limit"], 10);
    }

    #[test]
    fn io_errors_keep_their_cause() {
        use std::error::Error as _;
        let e = Error::io("reading x", std::io::Error::other("disk on fire"));
        assert_eq!(e.source().unwrap().to_string(), "disk on fire");
    }

    #[test]
    fn rate_limited_message_names_layer() {
        let e = Error::RateLimited {
            layer: LimitLayer::Endpoint,
            retry_after: Duration::from_millis(1500),
            limit_rpm: 10,
            remaining: 0,
        };
        assert_eq!(e.to_string(), "rate limited by the endpoint limit, retry in 1.5s");
    }
}
