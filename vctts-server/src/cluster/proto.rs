//! The messages of the cluster protocol between workers and gateways.
//!
//! Worker → gateway (`/cluster/v1/...` on the gateway): `register`,
//! `heartbeat`, `deregister`. Gateway → worker (`/cluster/v1/...` on the
//! worker): `synthesize`, `synthesize/stream`, `extract_voice`, `activate`,
//! `standby`, `stop`, `start`, `health`.
//!
//! Invariants:
//! - every call carries `X-Request-Id`; every call carries the shared token in
//!   `X-Cluster-Token` (or `Authorization: Bearer`) when one is configured;
//! - errors travel as the public error body, whose `code` and typed `details`
//!   are the core error itself; [`crate::error::error_from_object`] rebuilds it
//!   structurally (no message is parsed), so failover reads
//!   [`vctts_core::Error::retryable`] of the very error the node had;
//! - a streamed synthesis answers raw 16-bit little-endian PCM at the rate in
//!   `X-Sample-Rate`, one HTTP chunk per engine chunk; the gateway adds any
//!   container header;
//! - the engine-facing core types ([`SynthesisRequest`], [`EngineInfo`]) travel
//!   as they are: the protocol is versioned by [`PROTOCOL_VERSION`] and both
//!   ends are vctts.

use base64::Engine as _;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::time::Duration;
use vctts_core::{
    Audio, EngineInfo, EngineKind, Error, OutputFormat, ReferenceAudio, SynthesisRequest, VoiceProfile,
};

/// Version of this protocol; a gateway refuses workers that speak another.
pub const PROTOCOL_VERSION: u32 = 1;
/// Header carrying the shared cluster token.
pub const TOKEN_HEADER: &str = "x-cluster-token";
/// Header carrying the request id (both directions, and on public answers).
pub use crate::http::context::REQUEST_ID_HEADER;
/// Time the request waited on the node for an inference slot.
pub const QUEUE_TIME_HEADER: &str = "x-queue-time-ms";
/// Time the engine spent on the request.
pub const INFERENCE_TIME_HEADER: &str = "x-inference-time-ms";
/// Sample rate of the audio in the body.
pub const SAMPLE_RATE_HEADER: &str = "x-sample-rate";
/// Length of the audio in the body, milliseconds.
pub const AUDIO_DURATION_HEADER: &str = "x-audio-duration-ms";

/// Path prefix of the protocol on both sides.
pub const PREFIX: &str = "/cluster/v1";

/// A node's state as the protocol names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WireNodeState {
    /// Model not loaded.
    Standby,
    /// Model loading.
    Loading,
    /// Accepting work.
    Ready,
    /// At capacity (work still queues).
    Busy,
    /// Failed; see the reason.
    Error,
    /// Not taking work (stopped or shutting down).
    Stopped,
}

impl WireNodeState {
    /// Stable name.
    pub fn as_str(self) -> &'static str {
        match self {
            WireNodeState::Standby => "standby",
            WireNodeState::Loading => "loading",
            WireNodeState::Ready => "ready",
            WireNodeState::Busy => "busy",
            WireNodeState::Error => "error",
            WireNodeState::Stopped => "stopped",
        }
    }
}

/// Resource use and counters a node reports.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WireNodeMetrics {
    /// Process CPU use, percent (100 = one core).
    pub cpu_percent: Option<f32>,
    /// Resident memory of the process, bytes.
    pub memory_bytes: Option<u64>,
    /// GPU use, percent.
    pub gpu_percent: Option<f32>,
    /// GPU memory used, bytes.
    pub gpu_memory_bytes: Option<u64>,
    /// Requests inferring now.
    pub in_flight: u32,
    /// Requests waiting for a slot.
    pub queued: u32,
    /// Requests served since start.
    pub requests: u64,
    /// Requests failed since start.
    pub errors: u64,
    /// EWMA of request latency, milliseconds.
    pub latency_ewma_ms: Option<f64>,
    /// EWMA of the time to the first audio chunk of streams, milliseconds.
    pub first_audio_ewma_ms: Option<f64>,
    /// Seconds of audio the engine made since start, work cancelled by a
    /// caller that went away included.
    pub audio_seconds: f64,
}

/// Worker → gateway: join.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegisterRequest {
    /// [`PROTOCOL_VERSION`] of the worker.
    pub protocol: u32,
    /// Base URL the gateway reaches the worker at.
    pub endpoint: String,
    /// The engine it hosts.
    pub engine: EngineKind,
    /// What the engine can do (absent when it failed to build).
    pub info: Option<EngineInfo>,
    /// Requests it runs at once.
    pub capacity: u32,
    /// Requests that may wait on it.
    pub queue_size: u32,
    /// Relative weight.
    pub weight: u32,
    /// Labels.
    pub labels: BTreeMap<String, String>,
    /// Worker version.
    pub version: String,
    /// Current state.
    pub state: WireNodeState,
    /// The number of this report of the state: a node numbers every state it
    /// reports (heartbeats, registration, action replies, health) in the order
    /// it read them, so that the gateway can ignore one that arrives after a
    /// newer one. Absent from nodes that do not number them (always applied);
    /// a gateway that knows the field must be running before workers send it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seq: Option<u64>,
    /// Why it is in `error`, if it is.
    pub reason: Option<String>,
    /// Current metrics.
    pub metrics: WireNodeMetrics,
}

/// Gateway → worker: welcome.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegisterResponse {
    /// The id the gateway knows the worker by.
    pub node_id: String,
    /// How often to heartbeat, seconds.
    pub heartbeat_interval_secs: f64,
    /// After how long without a heartbeat the node is offline, seconds.
    pub dead_threshold_secs: f64,
}

impl RegisterResponse {
    /// The heartbeat interval (bounded to something sane).
    pub fn heartbeat_interval(&self) -> Duration {
        let s = self.heartbeat_interval_secs;
        if s.is_finite() && s > 0.0 {
            Duration::from_secs_f64(s.clamp(0.01, 3600.0))
        } else {
            Duration::from_secs(10)
        }
    }
}

/// Worker → gateway: still here.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HeartbeatRequest {
    /// The id from [`RegisterResponse`].
    pub node_id: String,
    /// Current state.
    pub state: WireNodeState,
    /// The number of this report of the state: a node numbers every state it
    /// reports (heartbeats, registration, action replies, health) in the order
    /// it read them, so that the gateway can ignore one that arrives after a
    /// newer one. Absent from nodes that do not number them (always applied);
    /// a gateway that knows the field must be running before workers send it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seq: Option<u64>,
    /// Why it is in `error`, if it is.
    pub reason: Option<String>,
    /// Current metrics.
    pub metrics: WireNodeMetrics,
    /// Engine facts, when they changed (e.g. after a load).
    pub info: Option<EngineInfo>,
}

/// Worker → gateway: leaving.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeregisterRequest {
    /// The id from [`RegisterResponse`].
    pub node_id: String,
}

/// A voice profile on the wire (`data` in base64).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WireProfile {
    /// Engine that made it.
    pub engine: EngineKind,
    /// Its format version.
    pub format_version: u32,
    /// The bytes, base64.
    pub data_base64: String,
}

impl From<&VoiceProfile> for WireProfile {
    fn from(p: &VoiceProfile) -> Self {
        Self {
            engine: p.engine,
            format_version: p.format_version,
            data_base64: base64::engine::general_purpose::STANDARD.encode(&p.data),
        }
    }
}

impl TryFrom<WireProfile> for VoiceProfile {
    type Error = Error;
    fn try_from(w: WireProfile) -> Result<Self, Error> {
        let data = base64::engine::general_purpose::STANDARD
            .decode(w.data_base64.as_bytes())
            .map_err(|e| Error::invalid("profile.data_base64", e.to_string()))?;
        Ok(VoiceProfile {
            engine: w.engine,
            format_version: w.format_version,
            data,
        })
    }
}

/// Gateway → worker: speak.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SynthesizeCall {
    /// The request as the engine takes it.
    pub request: SynthesisRequest,
    /// The stored voice's profile, if the request names one.
    pub profile: Option<WireProfile>,
    /// How the node encodes the audio (`wav` when absent). Streams are raw
    /// PCM and ignore it.
    #[serde(default)]
    pub format: OutputFormat,
}

/// Gateway → worker: make a profile of this reference.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExtractCall {
    /// Sample rate of the reference.
    pub sample_rate: u32,
    /// Mono samples as little-endian `f32`, base64.
    pub samples_f32le_base64: String,
    /// Transcript of the reference.
    pub transcript: Option<String>,
    /// Language of the reference.
    pub language: Option<String>,
}

impl ExtractCall {
    /// The call for a reference.
    pub fn new(reference: &ReferenceAudio) -> Self {
        let mut raw = Vec::with_capacity(reference.audio.samples.len() * 4);
        for s in &reference.audio.samples {
            raw.extend_from_slice(&s.to_le_bytes());
        }
        Self {
            sample_rate: reference.audio.sample_rate,
            samples_f32le_base64: base64::engine::general_purpose::STANDARD.encode(raw),
            transcript: reference.transcript.clone(),
            language: reference.language.as_ref().map(ToString::to_string),
        }
    }

    /// The reference it carries.
    pub fn reference(&self) -> Result<ReferenceAudio, Error> {
        let raw = base64::engine::general_purpose::STANDARD
            .decode(self.samples_f32le_base64.as_bytes())
            .map_err(|e| Error::invalid("samples_f32le_base64", e.to_string()))?;
        if raw.len() % 4 != 0 {
            return Err(Error::invalid(
                "samples_f32le_base64",
                "length is not a multiple of 4 bytes",
            ));
        }
        if self.sample_rate == 0 {
            return Err(Error::invalid("sample_rate", "must be > 0"));
        }
        let samples = raw
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .map(|x| if x.is_finite() { x } else { 0.0 })
            .collect();
        Ok(ReferenceAudio {
            audio: Audio::new(samples, self.sample_rate),
            transcript: self.transcript.clone(),
            language: self
                .language
                .as_deref()
                .map(vctts_core::Language::parse)
                .transpose()?,
        })
    }
}

/// Worker → gateway: the profile.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExtractResult {
    /// The profile made.
    pub profile: WireProfile,
}

/// A node's status, answered by `health` and by every action.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeStatus {
    /// The engine it hosts.
    pub engine: EngineKind,
    /// Current state.
    pub state: WireNodeState,
    /// The number of this report of the state: a node numbers every state it
    /// reports (heartbeats, registration, action replies, health) in the order
    /// it read them, so that the gateway can ignore one that arrives after a
    /// newer one. Absent from nodes that do not number them (always applied);
    /// a gateway that knows the field must be running before workers send it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seq: Option<u64>,
    /// Why it is in `error`, if it is.
    pub reason: Option<String>,
    /// What the engine can do.
    pub info: Option<EngineInfo>,
    /// Current metrics.
    pub metrics: WireNodeMetrics,
    /// Requests it runs at once.
    pub capacity: u32,
}

/// Actions the gateway can ask of a node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NodeAction {
    /// Load the model and take work.
    Activate,
    /// Unload the model (frees memory).
    Standby,
    /// Stop taking work (the model stays as it is).
    Stop,
    /// Take work again after `stop`.
    Start,
}

impl NodeAction {
    /// Stable name (also the path segment).
    pub fn as_str(self) -> &'static str {
        match self {
            NodeAction::Activate => "activate",
            NodeAction::Standby => "standby",
            NodeAction::Stop => "stop",
            NodeAction::Start => "start",
        }
    }

    /// Parses a path segment.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "activate" => Some(NodeAction::Activate),
            "standby" => Some(NodeAction::Standby),
            "stop" => Some(NodeAction::Stop),
            "start" => Some(NodeAction::Start),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn profile_round_trips() {
        let p = VoiceProfile {
            engine: EngineKind::OpenVoice,
            format_version: 1,
            data: vec![0, 1, 2, 250],
        };
        let w = WireProfile::from(&p);
        assert_eq!(VoiceProfile::try_from(w).unwrap(), p);
        let bad = WireProfile {
            engine: EngineKind::OpenVoice,
            format_version: 1,
            data_base64: "***".into(),
        };
        assert_eq!(VoiceProfile::try_from(bad).unwrap_err().code(), "invalid_input");
    }

    #[test]
    fn reference_round_trips() {
        let r = ReferenceAudio {
            audio: Audio::new(vec![0.5, -0.25, 0.0], 16000),
            transcript: Some("hi".into()),
            language: None,
        };
        assert_eq!(ExtractCall::new(&r).reference().unwrap(), r);
        let mut bad = ExtractCall::new(&r);
        bad.samples_f32le_base64 = "AAA=".into();
        assert!(bad.reference().is_err());
    }

    #[test]
    fn actions_parse() {
        for a in [
            NodeAction::Activate,
            NodeAction::Standby,
            NodeAction::Stop,
            NodeAction::Start,
        ] {
            assert_eq!(NodeAction::parse(a.as_str()), Some(a));
        }
        assert_eq!(NodeAction::parse("explode"), None);
    }
}
