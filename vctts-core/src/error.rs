//! The one error type of vctts.
//!
//! Every variant has a stable, documented string [`Error::code`] (clients match
//! on it; it never changes once released) and says whether a retry on another
//! node may help ([`Error::retryable`]). HTTP status mapping lives in the
//! server crate; this crate only classifies.

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

/// Errors of vctts. Construct with the variant that names the cause; the
/// message is for humans, the [`code`](Error::code) for programs.
#[derive(Debug, thiserror::Error)]
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
    ModelLoad(String),
    /// ONNX Runtime could not be found or initialised.
    #[error("ONNX Runtime unavailable: {0}")]
    Runtime(String),
    /// Inference failed inside the engine.
    #[error("inference failed: {0}")]
    Inference(String),
    /// A rate limit refused the request.
    #[error("rate limited by the {layer} limit, retry in {:.1}s", retry_after.as_secs_f64())]
    RateLimited {
        layer: LimitLayer,
        retry_after: Duration,
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
    Package(String),
    /// Configuration is invalid; the message names the key.
    #[error("invalid configuration: {0}")]
    Config(String),
    /// Authentication missing or wrong.
    #[error("unauthorized: {0}")]
    Unauthorized(String),
    /// Authenticated but not allowed.
    #[error("forbidden: {0}")]
    Forbidden(String),
    /// An I/O error with the path or operation that failed.
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
    /// A bug or an unexpected condition.
    #[error("internal error: {0}")]
    Internal(String),
}

impl Error {
    /// Stable machine-readable code (documented in docs/API_REFERENCE.md).
    pub fn code(&self) -> &'static str {
        match self {
            Error::InvalidInput { .. } => "invalid_input",
            Error::EmptyText => "empty_text",
            Error::TextTooLong { .. } => "text_too_long",
            Error::UnsupportedLanguage { .. } => "unsupported_language",
            Error::InvalidVoiceId { .. } => "invalid_voice_id",
            Error::VoiceNotFound(_) => "voice_not_found",
            Error::UnknownEngine(_) => "unknown_engine",
            Error::ProfileMismatch { .. } => "profile_mismatch",
            Error::AudioDecode(_) => "audio_decode_failed",
            Error::AudioRejected(_) => "audio_rejected",
            Error::ModelNotInstalled(_) => "model_not_installed",
            Error::ModelNotLoaded(_) => "model_not_loaded",
            Error::ModelLoad(_) => "model_load_failed",
            Error::Runtime(_) => "runtime_unavailable",
            Error::Inference(_) => "inference_failed",
            Error::RateLimited { .. } => "rate_limited",
            Error::Overloaded(_) => "overloaded",
            Error::NoNodeAvailable { .. } => "no_node_available",
            Error::UnknownNode(_) => "unknown_node",
            Error::NodeUnavailable { .. } => "node_unavailable",
            Error::NodeState { .. } => "invalid_node_state",
            Error::Timeout(_) => "timeout",
            Error::Cancelled => "cancelled",
            Error::Package(_) => "package_invalid",
            Error::Config(_) => "invalid_config",
            Error::Unauthorized(_) => "unauthorized",
            Error::Forbidden(_) => "forbidden",
            Error::Io { .. } => "io_error",
            Error::Internal(_) => "internal_error",
        }
    }

    /// Whether the same request may succeed on another node (or later).
    /// The gateway's failover reads this, never the message.
    pub fn retryable(&self) -> bool {
        matches!(
            self,
            Error::NodeUnavailable { .. }
                | Error::Overloaded(_)
                | Error::ModelNotLoaded(_)
                | Error::Timeout(_)
                | Error::NoNodeAvailable { .. }
        )
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
        ];
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
    fn rate_limited_message_names_layer() {
        let e = Error::RateLimited {
            layer: LimitLayer::Endpoint,
            retry_after: Duration::from_millis(1500),
        };
        assert_eq!(e.to_string(), "rate limited by the endpoint limit, retry in 1.5s");
    }
}
