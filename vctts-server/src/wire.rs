//! The JSON wire types of the public API (`/api/v3/*`, `/v1/audio/speech`).
//!
//! Wire types are not domain types: they are what clients send and receive,
//! and convert into the core types at the edge ([`SynthesizeRequest::to_domain`]),
//! so the API can evolve without touching engines.
//!
//! Invariants: every request type rejects unknown fields; ids, engine names and
//! formats arrive as plain strings and are validated by the conversion, so a
//! bad value gets its own error code (`invalid_voice_id`, `unknown_engine`)
//! rather than a generic decoding error.

use crate::encoding::Encoding;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use utoipa::{IntoParams, ToSchema};
use vctts_core::{EngineKind, Error, Language, Result, SamplingParams, SynthesisRequest, VoiceId};
use vctts_engines::audio::AudioFormat;

/// Sampling and noise parameters; omitted fields use the engine's defaults.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SamplingDto {
    /// Softmax temperature (autoregressive engines), 0.01–5.
    #[schema(minimum = 0.01, maximum = 5.0)]
    pub temperature: Option<f32>,
    /// Keep the k most likely tokens (≥ 1).
    #[schema(minimum = 1)]
    pub top_k: Option<usize>,
    /// Nucleus sampling threshold, 0–1.
    #[schema(minimum = 0.0, maximum = 1.0)]
    pub top_p: Option<f32>,
    /// Repetition penalty, 0.1–20.
    #[schema(minimum = 0.1, maximum = 20.0)]
    pub repetition_penalty: Option<f32>,
    /// VITS noise scale, 0–2.
    #[schema(minimum = 0.0, maximum = 2.0)]
    pub noise_scale: Option<f32>,
    /// VITS duration noise scale, 0–2.
    #[schema(minimum = 0.0, maximum = 2.0)]
    pub noise_scale_w: Option<f32>,
    /// OpenVoice converter temperature, 0–1.
    #[schema(minimum = 0.0, maximum = 1.0)]
    pub tau: Option<f32>,
}

impl From<SamplingDto> for SamplingParams {
    fn from(s: SamplingDto) -> Self {
        SamplingParams {
            temperature: s.temperature,
            top_k: s.top_k,
            top_p: s.top_p,
            repetition_penalty: s.repetition_penalty,
            noise_scale: s.noise_scale,
            noise_scale_w: s.noise_scale_w,
            tau: s.tau,
        }
    }
}

/// `POST /api/v3/synthesize` (and `/synthesize/stream`, and each batch item).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SynthesizeRequest {
    /// The text to speak.
    #[schema(min_length = 1)]
    pub text: String,
    /// `xtts`, `openvoice` or `gpt-sovits`; default: the service's default engine.
    #[serde(default)]
    #[schema(value_type = Option<EngineName>)]
    pub engine: Option<String>,
    /// A stored voice id, or a built-in voice of the engine; default: the
    /// engine's default voice. The pattern is the ASCII part of what ids may
    /// be (letters of any script are accepted too).
    #[serde(default)]
    #[schema(pattern = "^[A-Za-z0-9_-]+([.][A-Za-z0-9_-]+)*$", max_length = 64)]
    pub voice: Option<String>,
    /// Language code; default: the engine's default language.
    #[serde(default)]
    pub language: Option<String>,
    /// Speaking rate, 0.25–4 (1 is normal).
    #[serde(default)]
    #[schema(minimum = 0.25, maximum = 4.0)]
    pub speed: Option<f32>,
    /// `wav` (16-bit, default), `wav_f32`, `pcm` (raw s16le), `mp3`, `opus`
    /// (Ogg), `aac` (ADTS) or `flac`.
    #[serde(default)]
    #[schema(value_type = Option<AudioFormatName>, example = "wav")]
    pub format: Option<String>,
    /// Rate of the encoded audio in Hz, 8000–96000; default: the engine's
    /// rate (or the nearest one the codec accepts; Opus is always 48 kHz).
    #[serde(default)]
    #[schema(minimum = 8000, maximum = 96000)]
    pub sample_rate: Option<u32>,
    /// Seed; the same seed gives the same audio.
    #[serde(default)]
    pub seed: Option<u64>,
    /// Sampling parameters.
    #[serde(default)]
    pub sampling: Option<SamplingDto>,
}

/// The engines (documentation: `engine` arrives as a string, so an unknown
/// name gets its own code, `unknown_engine`).
#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum EngineName {
    /// Coqui XTTS-v2.
    Xtts,
    /// OpenVoice v2.
    Openvoice,
    /// GPT-SoVITS v2.
    GptSovits,
}

/// The values of `format` (documentation: the field arrives as a string and
/// is parsed by [`parse_format`], which also takes aliases such as `ogg`).
#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum AudioFormatName {
    /// 16-bit PCM WAV.
    Wav,
    /// 32-bit float WAV (not streamed).
    WavF32,
    /// Raw s16le.
    Pcm,
    /// MP3.
    Mp3,
    /// Opus in Ogg.
    Opus,
    /// AAC-LC in ADTS.
    Aac,
    /// FLAC.
    Flac,
}

/// The values of OpenAI's `response_format` (documentation, as [`AudioFormatName`]).
#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SpeechFormatName {
    /// MP3 (the default).
    Mp3,
    /// Opus in Ogg.
    Opus,
    /// AAC-LC in ADTS.
    Aac,
    /// FLAC.
    Flac,
    /// 16-bit PCM WAV.
    Wav,
    /// Raw s16le at 24 kHz.
    Pcm,
}

/// The values of OpenAI's `stream_format` (documentation).
#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum StreamFormatName {
    /// The audio bytes, streamed.
    Audio,
    /// Server-sent events with base64 audio.
    Sse,
}

/// A validated synthesis request: where it goes and what the engine gets.
#[derive(Debug, Clone, PartialEq)]
pub struct ParsedSynthesis {
    /// The engine asked for, if any.
    pub engine: Option<EngineKind>,
    /// The voice asked for, if any (stored or built-in; resolved later).
    pub voice: Option<VoiceId>,
    /// The core request (its `format` is refined per engine by
    /// [`crate::encoding::Encoding::node_format`]).
    pub request: SynthesisRequest,
    /// The encoding the client asked for.
    pub encoding: Encoding,
}

/// Parses an engine name into its kind.
pub fn parse_engine(name: &str) -> Result<EngineKind> {
    name.parse::<EngineKind>()
}

/// Parses an output format name (`wav`, `wav_f32`, `pcm`, `mp3`, `opus`,
/// `aac`, `flac` and their aliases).
pub fn parse_format(name: &str) -> Result<AudioFormat> {
    crate::encoding::parse_format(name, "format")
}

impl SynthesizeRequest {
    /// Validates the fields every engine agrees on and builds the core request.
    pub fn to_domain(&self, max_text_chars: usize) -> Result<ParsedSynthesis> {
        let engine = self.engine.as_deref().map(parse_engine).transpose()?;
        let voice = self.voice.as_deref().map(VoiceId::new).transpose()?;
        let format = self
            .format
            .as_deref()
            .map(parse_format)
            .transpose()?
            .unwrap_or_default();
        let encoding = Encoding::new(format, self.sample_rate)?;
        let len = self.text.chars().count();
        if len > max_text_chars {
            return Err(Error::TextTooLong {
                len,
                limit: max_text_chars,
            });
        }
        let request = SynthesisRequest {
            text: self.text.clone(),
            language: self.language.as_deref().map(Language::parse).transpose()?,
            voice: voice.clone(),
            speed: self.speed.unwrap_or(1.0),
            sampling: self.sampling.clone().unwrap_or_default().into(),
            seed: self.seed,
        };
        // The engine-independent rules now; the engine's own limits once the
        // gateway has chosen it (`EngineInfo::check_request`).
        request.check_fields()?;
        Ok(ParsedSynthesis {
            engine,
            voice,
            request,
            encoding,
        })
    }
}

/// `POST /api/v3/synthesize/batch`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BatchRequest {
    /// The items, each a synthesis request; at most `limits.max_batch_items`
    /// (16 unless the gateway's configuration says otherwise).
    #[schema(min_items = 1, max_items = 16, value_type = Vec<SynthesizeRequest>)]
    pub items: Vec<serde_json::Value>,
    /// `json` (default: base64 audio per item) or `zip` (one file per item plus `manifest.json`).
    #[serde(default)]
    #[schema(value_type = Option<BatchFormatName>)]
    pub format: Option<String>,
}

/// `?format=` on the batch endpoint (overrides the body's `format`).
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct BatchQuery {
    /// `json` or `zip`.
    #[param(value_type = Option<BatchFormatName>)]
    pub format: Option<String>,
}

/// The answer forms of a batch (documentation of [`BatchQuery::format`] and
/// [`BatchRequest::format`]).
#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum BatchFormatName {
    /// One JSON document, audio in base64.
    Json,
    /// A ZIP of the audio files and `results.json`.
    Zip,
}

/// One batch item's result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct BatchItemResult {
    /// Position in the request, from 0.
    pub index: usize,
    /// HTTP status this item would have had on its own.
    pub status: u16,
    /// The node that synthesized it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub node_id: Option<String>,
    /// The engine that synthesized it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub engine: Option<String>,
    /// Content type of the audio.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub content_type: Option<String>,
    /// Sample rate of the audio.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sample_rate: Option<u32>,
    /// Audio length in seconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duration_seconds: Option<f64>,
    /// The audio, base64 (JSON format only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub audio_base64: Option<String>,
    /// File name inside the ZIP (zip format only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    /// Why it failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<crate::error::ErrorObject>,
}

/// The JSON answer of a batch (also `manifest.json` inside the ZIP).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct BatchResponse {
    /// One result per item, in request order.
    pub items: Vec<BatchItemResult>,
    /// Items that succeeded.
    pub succeeded: usize,
    /// Items that failed.
    pub failed: usize,
}

/// Measurements of a clip (see the API reference for the thresholds behind the warnings).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct QualityDto {
    /// Length in seconds.
    pub duration_seconds: f32,
    /// Seconds of detected speech.
    pub speech_seconds: f32,
    /// Share of the clip that is speech.
    pub speech_ratio: f32,
    /// Share of samples at full scale.
    pub clipping_ratio: f32,
    /// Speech-to-noise ratio in dB, when measurable.
    pub snr_db: Option<f32>,
    /// Largest absolute sample (1 = full scale).
    pub peak: f32,
    /// RMS level, dBFS.
    pub rms_dbfs: f32,
    /// EBU R128 integrated loudness, LUFS, when measurable.
    pub loudness_lufs: Option<f32>,
    /// Sample rate.
    pub sample_rate: u32,
    /// Problems found, as sentences (empty when the clip looks good).
    pub warnings: Vec<String>,
}

impl From<&vctts_engines::audio::quality::QualityReport> for QualityDto {
    fn from(q: &vctts_engines::audio::quality::QualityReport) -> Self {
        Self {
            duration_seconds: q.duration_seconds,
            speech_seconds: q.speech_seconds,
            speech_ratio: q.speech_ratio,
            clipping_ratio: q.clipping_ratio,
            snr_db: q.snr_db,
            peak: q.peak,
            rms_dbfs: q.rms_dbfs,
            loudness_lufs: q.loudness_lufs,
            sample_rate: q.sample_rate,
            warnings: q.warnings.clone(),
        }
    }
}

/// A stored voice.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct VoiceDto {
    /// Its id.
    pub id: String,
    /// Display name.
    pub name: String,
    /// Language of the reference.
    pub language: Option<String>,
    /// Transcript of the reference.
    pub transcript: Option<String>,
    /// Engines that have a profile of it.
    pub engines: Vec<String>,
    /// Seconds of reference audio.
    pub reference_seconds: f32,
    /// Creation time, seconds since the Unix epoch.
    pub created_at: u64,
    /// Quality of the reference.
    pub quality: Option<QualityDto>,
}

/// `GET /api/v3/voices` query.
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct VoicesQuery {
    /// Voices to skip (default 0).
    #[param(minimum = 0, maximum = 4294967295u64)]
    pub offset: Option<usize>,
    /// Voices per page, 1–200 (default 50).
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<usize>,
}

/// A page of voices.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct VoicesPage {
    /// This page, newest first.
    pub voices: Vec<VoiceDto>,
    /// Voices in total.
    pub total: usize,
    /// Offset of this page.
    pub offset: usize,
    /// Page size asked for.
    pub limit: usize,
    /// Offset of the next page, if any.
    pub next_offset: Option<usize>,
}

/// Per-engine outcome of an extraction.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ExtractEngineResult {
    /// The engine.
    pub engine: String,
    /// Whether a profile was made (or already existed).
    pub ok: bool,
    /// The node that made it.
    pub node_id: Option<String>,
    /// Why it failed.
    pub error: Option<crate::error::ErrorObject>,
}

/// `POST /api/v3/extract_voice` answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ExtractVoiceResponse {
    /// The stored voice.
    pub voice: VoiceDto,
    /// Quality of the reference audio.
    pub quality: QualityDto,
    /// What each engine did.
    pub engines: Vec<ExtractEngineResult>,
}

/// The multipart form of `POST /api/v3/extract_voice` (documentation only;
/// the handler reads the parts itself).
#[derive(Debug, ToSchema)]
#[allow(dead_code)]
pub struct ExtractVoiceForm {
    /// Reference audio (WAV, MP3, FLAC or OGG), at most `limits.max_upload_size`.
    #[schema(value_type = String, format = Binary)]
    pub audio: Vec<u8>,
    /// Display name.
    pub name: String,
    /// Voice id to use (letters, digits, `-`, `_`, `.`); default: generated.
    #[schema(pattern = "^[A-Za-z0-9_-]+([.][A-Za-z0-9_-]+)*$", max_length = 64)]
    pub voice_id: Option<String>,
    /// Transcript of the reference.
    pub transcript: Option<String>,
    /// Language of the reference.
    pub language: Option<String>,
    /// Comma-separated engines to make profiles for; default: every engine with a ready node.
    pub engines: Option<String>,
}

/// The multipart form of `POST /api/v3/preprocess` (documentation only).
#[derive(Debug, ToSchema)]
#[allow(dead_code)]
pub struct PreprocessForm {
    /// Audio to process.
    #[schema(value_type = String, format = Binary)]
    pub audio: Vec<u8>,
    /// Output sample rate (default: keep).
    pub sample_rate: Option<u32>,
    /// Mix down to mono (default true; the output is always mono).
    pub mono: Option<bool>,
    /// Trim leading and trailing silence (default true).
    pub trim: Option<bool>,
    /// Loudness target in LUFS (default: -20; `none` to skip).
    pub loudness: Option<String>,
    /// `wav` (default: the audio, quality in the `X-Quality-Report` header) or `json`.
    pub response: Option<String>,
}

/// `POST /api/v3/preprocess` with `response=json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct PreprocessResponse {
    /// The processed audio as a 16-bit WAV, base64.
    pub audio_base64: String,
    /// Quality of the input.
    pub input_quality: QualityDto,
    /// Quality of the output.
    pub quality: QualityDto,
}

/// One engine as `GET /api/v3/engines` reports it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct EngineDto {
    /// `xtts`, `openvoice` or `gpt-sovits`.
    pub engine: String,
    /// Human name, when a node reported it.
    pub name: Option<String>,
    /// Nodes registered for it.
    pub nodes: usize,
    /// Nodes ready for work.
    pub ready_nodes: usize,
    /// Whether requests can be served now.
    pub available: bool,
    /// Whether it is the default engine.
    pub default: bool,
    /// Languages.
    pub languages: Vec<String>,
    /// Default language.
    pub default_language: Option<String>,
    /// Output sample rate.
    pub sample_rate: Option<u32>,
    /// Whether streaming yields before the end.
    pub streaming: bool,
    /// Whether it clones voices.
    pub cloning: bool,
    /// Whether extraction needs a transcript.
    pub needs_transcript: bool,
    /// Longest text per request.
    pub max_text_chars: Option<usize>,
    /// Built-in voices.
    pub builtin_voices: Vec<String>,
}

/// `GET /api/v3/engines`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct EnginesResponse {
    /// All engines vctts knows.
    pub engines: Vec<EngineDto>,
}

/// Resource use of a node.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct NodeMetricsDto {
    /// CPU use, percent of one core times cores.
    pub cpu_percent: Option<f32>,
    /// Resident memory, bytes.
    pub memory_bytes: Option<u64>,
    /// GPU use, percent.
    pub gpu_percent: Option<f32>,
    /// GPU memory, bytes.
    pub gpu_memory_bytes: Option<u64>,
    /// Requests running.
    pub in_flight: u32,
    /// Requests waiting.
    pub queued: u32,
    /// Requests served.
    pub requests: u64,
    /// Requests failed.
    pub errors: u64,
    /// Latency EWMA, ms.
    pub latency_ms: Option<f64>,
}

/// One node as `GET /api/v3/nodes` reports it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct NodeDto {
    /// Its id.
    pub id: String,
    /// Its engine.
    pub engine: String,
    /// Where it is (`http://host:port` or `local://engine`).
    pub endpoint: String,
    /// `standby`, `loading`, `ready`, `busy`, `error`, `stopped` or `offline`.
    pub state: String,
    /// Requests it takes at once.
    pub capacity: u32,
    /// Relative weight.
    pub weight: u32,
    /// Labels.
    pub labels: BTreeMap<String, String>,
    /// Version of the worker.
    pub version: String,
    /// Seconds since its last heartbeat.
    pub last_seen_seconds: f64,
    /// Breaker state (`closed`, `open`, `half_open`).
    pub breaker: String,
    /// Resource use.
    pub metrics: NodeMetricsDto,
}

/// `GET /api/v3/nodes`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct NodesResponse {
    /// Every node, by engine then id.
    pub nodes: Vec<NodeDto>,
}

/// `GET /api/v3/health`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct HealthResponse {
    /// `ok` when ready, `degraded` when live but not ready.
    pub status: String,
    /// The process answers.
    pub live: bool,
    /// Some engine has a ready node.
    pub ready: bool,
    /// Ready nodes per engine.
    pub engines: BTreeMap<String, usize>,
    /// Server version.
    pub version: String,
    /// Seconds since start.
    pub uptime_seconds: f64,
}

/// `POST /v1/audio/speech` (OpenAI-compatible).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SpeechRequest {
    /// `tts-1`, `tts-1-hd`, `gpt-4o-mini-tts` (any `tts-*` or `gpt-*`: the
    /// default engine) or an engine name.
    #[schema(
        example = "tts-1",
        pattern = "^(tts-[A-Za-z0-9._-]*|gpt-[A-Za-z0-9._-]*|xtts|openvoice|gpt-sovits)$"
    )]
    pub model: String,
    /// The text.
    #[schema(min_length = 1)]
    pub input: String,
    /// An OpenAI voice name (mapped by the config's `openai.voices`, else
    /// spread over the engine's built-in voices), a stored voice id or a
    /// built-in voice; or `{"id": "<voice id>"}` (OpenAI's custom-voice form,
    /// also accepted).
    #[schema(value_type = String, min_length = 1, max_length = 64, pattern = "^[A-Za-z0-9_-]+([.][A-Za-z0-9_-]+)*$")]
    pub voice: SpeechVoice,
    /// `mp3` (default), `opus`, `aac`, `flac`, `wav` or `pcm` (s16le); all at 24 kHz.
    #[serde(default)]
    #[schema(value_type = Option<SpeechFormatName>, example = "mp3")]
    pub response_format: Option<String>,
    /// Speaking rate, 0.25–4.
    #[serde(default)]
    #[schema(minimum = 0.25, maximum = 4.0)]
    pub speed: Option<f32>,
    /// Accepted for compatibility; vctts engines do not take style instructions, so it is ignored.
    #[serde(default)]
    pub instructions: Option<String>,
    /// `audio` (default: the raw audio, streamed) or `sse` (server-sent
    /// `speech.audio.delta` / `speech.audio.done` events).
    #[serde(default)]
    #[schema(value_type = Option<StreamFormatName>, example = "audio")]
    pub stream_format: Option<String>,
    /// vctts extension (send it with the SDK's `extra_body`): a seed, so
    /// the same seed gives the same audio.
    #[serde(default)]
    pub seed: Option<u64>,
}

/// The `voice` of a speech request: a name, or OpenAI's custom voice object.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum SpeechVoice {
    /// A voice name or id.
    Name(String),
    /// `{"id": "<voice id>"}`: used as a voice id as is.
    Object {
        /// The voice id.
        id: String,
    },
}

/// A model of `GET /v1/models`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct OpenAiModel {
    /// Its id (the `model` of a speech request).
    pub id: String,
    /// Always `model`.
    pub object: String,
    /// When this gateway started, seconds since the Unix epoch.
    pub created: u64,
    /// Always `vctts`.
    pub owned_by: String,
}

/// `GET /v1/models`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct OpenAiModelList {
    /// Always `list`.
    pub object: String,
    /// The models.
    pub data: Vec<OpenAiModel>,
}

/// A voice of `GET /v1/audio/voices`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct OpenAiVoice {
    /// What to send as `voice`.
    pub id: String,
    /// A display name.
    pub name: String,
}

/// `GET /v1/audio/voices`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct OpenAiVoiceList {
    /// OpenAI's voice names, then stored voices, then built-in voices.
    pub voices: Vec<OpenAiVoice>,
}

/// The voice names OpenAI clients send, in the order they are spread over an
/// engine's built-in voices (see `api::openai::map_voice`).
pub const OPENAI_VOICES: [&str; 13] = [
    "alloy", "ash", "ballad", "coral", "echo", "fable", "onyx", "nova", "sage", "shimmer", "verse", "marin",
    "cedar",
];

#[cfg(test)]
mod tests {
    use super::*;

    fn req(json: &str) -> std::result::Result<SynthesizeRequest, serde_json::Error> {
        serde_json::from_str(json)
    }

    #[test]
    fn synthesize_request_rejects_unknown_fields() {
        assert!(req(r#"{"text":"hi","colour":"red"}"#).is_err());
        assert!(req(r#"{"text":"hi","sampling":{"heat":1}}"#).is_err());
        assert!(req(r#"{"text":"hi"}"#).is_ok());
    }

    #[test]
    fn to_domain_checks_each_field_with_its_code() {
        let code = |j: &str| req(j).unwrap().to_domain(20).unwrap_err().code();
        assert_eq!(code(r#"{"text":"  "}"#), "empty_text");
        assert_eq!(code(r#"{"text":"aaaaaaaaaaaaaaaaaaaaa"}"#), "text_too_long");
        assert_eq!(code(r#"{"text":"hi","engine":"melo"}"#), "unknown_engine");
        assert_eq!(
            code(r#"{"text":"hi","voice":"../etc/passwd"}"#),
            "invalid_voice_id"
        );
        assert_eq!(code(r#"{"text":"hi","format":"m4b"}"#), "invalid_input");
        assert_eq!(code(r#"{"text":"hi","sample_rate":10}"#), "invalid_input");
        assert_eq!(code(r#"{"text":"hi","speed":9}"#), "invalid_input");
        assert_eq!(code(r#"{"text":"hi","language":"e n"}"#), "invalid_input");
        assert_eq!(code(r#"{"text":"hi","sampling":{"top_k":0}}"#), "invalid_input");
        let p =
            req(r#"{"text":"hi","engine":"openvoice","voice":"alice","format":"pcm","speed":1.5,"seed":3}"#)
                .unwrap()
                .to_domain(20)
                .unwrap();
        assert_eq!(p.engine, Some(EngineKind::OpenVoice));
        assert_eq!(p.voice.unwrap().as_str(), "alice");
        assert_eq!(p.encoding.format, AudioFormat::Pcm);
        let mp3 = req(r#"{"text":"hi","format":"mp3","sample_rate":24000}"#)
            .unwrap()
            .to_domain(20)
            .unwrap();
        assert_eq!(mp3.encoding.format, AudioFormat::Mp3);
        assert_eq!(mp3.encoding.sample_rate, Some(24000));
        assert_eq!(p.request.speed, 1.5);
        assert_eq!(p.request.seed, Some(3));
    }

    #[test]
    fn speech_request_shape() {
        let s: SpeechRequest = serde_json::from_str(
            r#"{"model":"tts-1","input":"hello","voice":"alloy","response_format":"wav"}"#,
        )
        .unwrap();
        assert_eq!(s.voice, SpeechVoice::Name("alloy".into()));
        let o: SpeechRequest =
            serde_json::from_str(r#"{"model":"tts-1","input":"hello","voice":{"id":"alice"}}"#).unwrap();
        assert_eq!(o.voice, SpeechVoice::Object { id: "alice".into() });
        assert!(
            serde_json::from_str::<SpeechRequest>(r#"{"model":"tts-1","input":"x","voice":"a","x":1}"#)
                .is_err()
        );
    }
}

/// One announcement as the status page shows it (`GET /api/v3/announcements`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct AnnouncementDto {
    /// Its id.
    pub id: String,
    /// `info`, `warning` or `error`.
    #[serde(rename = "type")]
    #[schema(pattern = "^(info|warning|error)$")]
    pub kind: String,
    /// The text.
    pub message: String,
    /// When it was posted (RFC 3339).
    pub created_at: String,
    /// When it stops being shown (RFC 3339), if ever.
    pub expires_at: Option<String>,
}

/// `GET /api/v3/announcements` answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct AnnouncementsResponse {
    /// Newest first.
    pub announcements: Vec<AnnouncementDto>,
}
