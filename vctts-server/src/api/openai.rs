//! The OpenAI-compatible endpoints, so existing OpenAI clients work
//! unchanged (point their base URL at `http://gateway/v1`):
//! `POST /v1/audio/speech`, `GET /v1/models`, `GET /v1/models/{id}` and
//! `GET /v1/audio/voices` (the voice list Open WebUI and Kokoro-style
//! clients read).
//!
//! Mapping of `/v1/audio/speech`:
//! - `model`: `tts-1`, `tts-1-hd`, `gpt-4o-mini-tts` (any `tts-*` / `gpt-*`
//!   name) select the default engine, an engine name selects that engine;
//! - `voice` (a string or `{"id": ...}`): an OpenAI voice name is looked up
//!   in the config's `openai.voices` table, else spread over the engine's
//!   built-in voices in a fixed order (so different names sound different
//!   when the engine has several); any other name is a stored (cloned)
//!   voice id or a built-in voice, used directly;
//! - `response_format`: `mp3` (default), `opus`, `aac`, `flac`, `wav`,
//!   `pcm` — all at 24 kHz as OpenAI sends them (`pcm` is s16le at 24 kHz,
//!   resampled from the engine's rate; Opus is coded at 48 kHz and states
//!   24 kHz as its input rate);
//! - `speed` 0.25–4; `instructions` is accepted and ignored (the engines take
//!   no style prompts); `seed` is a vctts extension (the SDK's `extra_body`);
//! - the answer is always streamed (chunked, `X-Accel-Buffering: no`): each
//!   chunk is encoded as the engine finishes it (AAC, whose encoder needs
//!   the whole clip, arrives at the end); `stream_format: "sse"` answers
//!   `text/event-stream` with `speech.audio.delta` events (base64 audio in
//!   the response format) and a final `speech.audio.done` (its token usage
//!   is zero: vctts counts no tokens).
//!
//! Errors on `/v1/*` have OpenAI's shape, `{"error":{"message","type",
//! "param","code"}}` (plus vctts's `request_id`), with 400 for a bad parameter where `/api/v3` says 422
//! ([`crate::error::openai_error`], applied by the request-context middleware), so the
//! OpenAI SDKs raise their usual exception classes.

use super::synth::{open_stream, prepare_encoded};
use crate::cluster::CallContext;
use crate::error::{ApiResult, OpenAiErrorBody, WireError};
use crate::gateway::Gateway;
use crate::http::context::RequestId;
use crate::http::extract::JsonBody;
use crate::wire::{
    OPENAI_VOICES, OpenAiModel, OpenAiModelList, OpenAiVoice, OpenAiVoiceList, SpeechRequest, SpeechVoice,
    SynthesizeRequest,
};
use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::{HeaderValue, header};
use axum::response::Response;
use axum::{Extension, Json};
use base64::Engine as _;
use futures::StreamExt;
use serde::Serialize;
use std::sync::Arc;
use vctts::StoreExt;
use vctts_core::{EngineKind, Error};
use vctts_engines::audio::AudioFormat;

/// The rate of every `/v1/audio/speech` answer, as OpenAI sends it.
pub const OPENAI_RATE: u32 = 24_000;

/// The model names that select the default engine and are listed by `/v1/models`.
pub const OPENAI_MODELS: [&str; 3] = ["tts-1", "tts-1-hd", "gpt-4o-mini-tts"];

/// The `response_format` values OpenAI defines.
pub const OPENAI_FORMATS: [&str; 6] = ["mp3", "opus", "aac", "flac", "wav", "pcm"];

/// The engine a `model` names (`None`: the default engine).
pub fn engine_for_model(model: &str) -> Result<Option<EngineKind>, Error> {
    let m = model.trim().to_ascii_lowercase();
    if m.is_empty() || m.starts_with("tts-") || m.starts_with("gpt-") {
        return Ok(None);
    }
    m.parse::<EngineKind>().map(Some).map_err(|_| {
        Error::invalid(
            "model",
            format!("{model:?} is not a known model (tts-1, tts-1-hd, gpt-4o-mini-tts, xtts, openvoice, gpt-sovits)"),
        )
    })
}

/// Parses `response_format` (OpenAI's six names only; default `mp3`).
pub fn response_format(name: Option<&str>) -> Result<AudioFormat, Error> {
    let Some(name) = name else {
        return Ok(AudioFormat::Mp3);
    };
    let lower = name.to_ascii_lowercase();
    if !OPENAI_FORMATS.contains(&lower.as_str()) {
        return Err(Error::invalid(
            "response_format",
            format!("{name:?} is not one of {}", OPENAI_FORMATS.join(", ")),
        ));
    }
    AudioFormat::parse(&lower).ok_or_else(|| Error::invalid("response_format", "unknown format"))
}

/// Whether `stream_format` asks for server-sent events.
pub fn wants_sse(stream_format: Option<&str>) -> Result<bool, Error> {
    match stream_format {
        None | Some("audio") => Ok(false),
        Some("sse") => Ok(true),
        Some(other) => Err(Error::invalid(
            "stream_format",
            format!("{other:?} is not one of audio, sse"),
        )),
    }
}

/// The vctts voice an OpenAI `voice` speaks with on an engine whose built-in
/// voices are `builtin` (`None`: the engine's default voice).
pub fn map_voice(
    table: &std::collections::BTreeMap<String, String>,
    builtin: &[String],
    voice: &SpeechVoice,
) -> Option<String> {
    let name = match voice {
        SpeechVoice::Object { id } => return Some(id.clone()),
        SpeechVoice::Name(n) => n.trim(),
    };
    if name.is_empty() {
        return None;
    }
    let lower = name.to_ascii_lowercase();
    if let Some(v) = table
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(&lower))
        .map(|(_, v)| v)
    {
        return Some(v.clone());
    }
    match OPENAI_VOICES.iter().position(|v| *v == lower) {
        Some(_) if builtin.is_empty() => None,
        Some(i) => Some(builtin[i % builtin.len()].clone()),
        None => Some(name.to_string()),
    }
}

/// OpenAI-compatible speech synthesis.
#[utoipa::path(
    post,
    path = "/v1/audio/speech",
    tag = "openai",
    request_body = SpeechRequest,
    responses(
        (status = 200, description = "The audio, streamed (chunked; `X-Accel-Buffering: no`) in `response_format` at 24 kHz, or `text/event-stream` events with `stream_format: \"sse\"`",
            content(("audio/mpeg"), ("audio/ogg"), ("audio/aac"), ("audio/flac"), ("audio/wav"), ("audio/pcm"), ("text/event-stream"))),
        (status = 400, description = "A bad parameter (OpenAI's error shape)", body = OpenAiErrorBody),
        (status = 404, description = "Unknown voice", body = OpenAiErrorBody),
        (status = 413, description = "Body too large", body = OpenAiErrorBody),
        (status = 415, description = "Not JSON", body = OpenAiErrorBody),
        (status = 429, description = "Rate limited; see Retry-After", body = OpenAiErrorBody),
        (status = 503, description = "No ready node", body = OpenAiErrorBody),
    )
)]
pub async fn speech(
    State(gw): State<Arc<Gateway>>,
    Extension(rid): Extension<RequestId>,
    JsonBody(req): JsonBody<SpeechRequest>,
) -> ApiResult<Response> {
    let engine = engine_for_model(&req.model)?;
    let format = response_format(req.response_format.as_deref())?;
    let sse = wants_sse(req.stream_format.as_deref())?;
    let kind = match engine {
        Some(e) => e,
        None => gw.default_engine()?,
    };
    let builtin = gw.engine_info(kind).map(|i| i.builtin_voices).unwrap_or_default();
    let voice = map_voice(&gw.config().openai.voices, &builtin, &req.voice);
    let as_v3 = SynthesizeRequest {
        text: req.input,
        engine: Some(kind.to_string()),
        voice,
        language: None,
        speed: req.speed,
        format: Some(format.name().to_string()),
        sample_rate: Some(OPENAI_RATE),
        seed: req.seed,
        sampling: None,
    };
    let parsed = as_v3.to_domain(gw.config().limits.max_text_chars)?;
    let ctx = CallContext { request_id: rid.0 };
    let (prepared, enc) = prepare_encoded(&gw, parsed, &ctx).await?;
    let opened = open_stream(&gw, &prepared, enc, &ctx).await?;
    let mut h = axum::http::HeaderMap::new();
    opened.common_headers(&mut h);
    let mut res = if sse {
        let mut res = Response::new(Body::from_stream(sse_events(opened.body)));
        res.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/event-stream"),
        );
        res
    } else {
        let mut res = Response::new(Body::from_stream(opened.body));
        res.headers_mut()
            .insert(header::CONTENT_TYPE, super::synth::hv(&opened.content_type));
        res
    };
    res.headers_mut().extend(h);
    Ok(res)
}

/// One server-sent event of `stream_format: "sse"`.
#[derive(Debug, Serialize)]
#[serde(tag = "type")]
enum SpeechEvent {
    /// A piece of the encoded audio, base64.
    #[serde(rename = "speech.audio.delta")]
    Delta { audio: String },
    /// The end of the audio.
    #[serde(rename = "speech.audio.done")]
    Done { usage: Usage },
    /// The synthesis failed after it started.
    #[serde(rename = "error")]
    Error { error: SseError },
}

#[derive(Debug, Serialize)]
struct Usage {
    input_tokens: u64,
    output_tokens: u64,
    total_tokens: u64,
}

#[derive(Debug, Serialize)]
struct SseError {
    message: String,
    r#type: &'static str,
}

fn event_bytes(e: &SpeechEvent) -> Bytes {
    let json = serde_json::to_string(e).unwrap_or_else(|_| "{}".to_string());
    Bytes::from(format!("data: {json}\n\n"))
}

/// The audio stream as SSE: a delta per encoded chunk, then `done` (or an
/// `error` event when the audio stream failed; the body then ends cleanly).
fn sse_events(
    audio: futures::stream::BoxStream<'static, std::io::Result<Bytes>>,
) -> impl futures::Stream<Item = std::io::Result<Bytes>> + Send + 'static {
    futures::stream::unfold(Some(audio), move |state| async move {
        let mut audio = state?;
        match audio.next().await {
            Some(Ok(chunk)) => {
                let e = SpeechEvent::Delta {
                    audio: base64::engine::general_purpose::STANDARD.encode(&chunk),
                };
                Some((Ok(event_bytes(&e)), Some(audio)))
            }
            Some(Err(err)) => {
                let e = SpeechEvent::Error {
                    error: SseError {
                        message: err.to_string(),
                        r#type: "server_error",
                    },
                };
                Some((Ok(event_bytes(&e)), None))
            }
            None => {
                let e = SpeechEvent::Done {
                    usage: Usage {
                        input_tokens: 0,
                        output_tokens: 0,
                        total_tokens: 0,
                    },
                };
                Some((Ok(event_bytes(&e)), None))
            }
        }
    })
}

fn created_at(gw: &Gateway) -> u64 {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    now.saturating_sub(gw.started().elapsed()).as_secs()
}

/// The models this gateway answers to: OpenAI's speech model names and
/// every engine with a registered node.
fn models(gw: &Gateway) -> Vec<OpenAiModel> {
    let created = created_at(gw);
    let model = |id: &str| OpenAiModel {
        id: id.to_string(),
        object: "model".to_string(),
        created,
        owned_by: "vctts".to_string(),
    };
    let mut out: Vec<OpenAiModel> = OPENAI_MODELS.iter().map(|m| model(m)).collect();
    for kind in EngineKind::ALL {
        if gw.engine_info(kind).is_some() {
            out.push(model(kind.as_str()));
        }
    }
    out
}

/// The models (OpenAI's list shape).
#[utoipa::path(
    get,
    path = "/v1/models",
    tag = "openai",
    responses(
        (status = 200, description = "OpenAI's speech model names (they select the default engine) and each engine with a node", body = OpenAiModelList),
        (status = 429, description = "Rate limited; see Retry-After", body = OpenAiErrorBody),
    )
)]
pub async fn list_models(State(gw): State<Arc<Gateway>>) -> Json<OpenAiModelList> {
    Json(OpenAiModelList {
        object: "list".to_string(),
        data: models(&gw),
    })
}

/// One model.
#[utoipa::path(
    get,
    path = "/v1/models/{id}",
    tag = "openai",
    params(("id" = String, Path, description = "A model id from `/v1/models`")),
    responses(
        (status = 200, description = "The model", body = OpenAiModel),
        (status = 404, description = "No such model (`model_not_found`)", body = OpenAiErrorBody),
        (status = 429, description = "Rate limited; see Retry-After", body = OpenAiErrorBody),
    )
)]
pub async fn get_model(
    State(gw): State<Arc<Gateway>>,
    Path(id): Path<String>,
) -> ApiResult<Json<OpenAiModel>> {
    models(&gw)
        .into_iter()
        .find(|m| m.id == id)
        .map(Json)
        .ok_or_else(|| WireError::NotFound(format!("model {id:?}")).into())
}

/// The voices `voice` accepts: OpenAI's names (with the vctts voice each
/// speaks with on the default engine), the stored (cloned) voices and the
/// built-in voices of every engine with a node.
#[utoipa::path(
    get,
    path = "/v1/audio/voices",
    tag = "openai",
    responses(
        (status = 200, description = "Voice ids and names (`{\"voices\":[{\"id\",\"name\"}]}`, as Open WebUI reads it)", body = OpenAiVoiceList),
        (status = 429, description = "Rate limited; see Retry-After", body = OpenAiErrorBody),
        (status = 503, description = "The voice store failed", body = OpenAiErrorBody),
    )
)]
pub async fn list_voices(State(gw): State<Arc<Gateway>>) -> ApiResult<Json<OpenAiVoiceList>> {
    let mut voices = Vec::new();
    let default = gw.default_engine().ok();
    let builtin = default
        .and_then(|e| gw.engine_info(e))
        .map(|i| i.builtin_voices)
        .unwrap_or_default();
    let table = &gw.config().openai.voices;
    for name in OPENAI_VOICES {
        let target = map_voice(table, &builtin, &SpeechVoice::Name(name.to_string()));
        let label = match &target {
            Some(t) => format!("{name} ({t})"),
            None => format!("{name} (default voice)"),
        };
        voices.push(OpenAiVoice {
            id: name.to_string(),
            name: label,
        });
    }
    let (stored, _) = gw.store().run(|s| s.list(0, 1000)).await?;
    for v in stored {
        voices.push(OpenAiVoice {
            id: v.voice.id.as_str().to_string(),
            name: v.voice.name.clone(),
        });
    }
    for kind in EngineKind::ALL {
        if let Some(info) = gw.engine_info(kind) {
            for b in info.builtin_voices {
                if !voices.iter().any(|v| v.id == b) {
                    voices.push(OpenAiVoice {
                        id: b.clone(),
                        name: format!("{b} ({kind} built-in)"),
                    });
                }
            }
        }
    }
    Ok(Json(OpenAiVoiceList { voices }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    #[test]
    fn models_map_to_engines() {
        assert_eq!(engine_for_model("tts-1").unwrap(), None);
        assert_eq!(engine_for_model("gpt-4o-mini-tts").unwrap(), None);
        assert_eq!(
            engine_for_model("openvoice").unwrap(),
            Some(EngineKind::OpenVoice)
        );
        assert_eq!(engine_for_model("melo").unwrap_err().code(), "invalid_input");
    }

    #[test]
    fn formats_default_to_mp3_and_refuse_others() {
        assert_eq!(response_format(None).unwrap(), AudioFormat::Mp3);
        for (name, f) in [
            ("mp3", AudioFormat::Mp3),
            ("opus", AudioFormat::Opus),
            ("aac", AudioFormat::Aac),
            ("FLAC", AudioFormat::Flac),
            ("wav", AudioFormat::Wav),
            ("pcm", AudioFormat::Pcm),
        ] {
            assert_eq!(response_format(Some(name)).unwrap(), f);
        }
        for bad in ["ogg", "wav_f32", "m4a", ""] {
            assert_eq!(response_format(Some(bad)).unwrap_err().code(), "invalid_input");
        }
        assert!(!wants_sse(None).unwrap());
        assert!(wants_sse(Some("sse")).unwrap());
        assert!(wants_sse(Some("ws")).is_err());
    }

    #[test]
    fn voices_map_by_table_then_spread_over_builtins() {
        let mut table = BTreeMap::new();
        table.insert("nova".to_string(), "alice".to_string());
        let builtin = vec!["joe".to_string(), "amy".to_string()];
        let name = |s: &str| SpeechVoice::Name(s.to_string());
        assert_eq!(
            map_voice(&table, &builtin, &name("Nova")).as_deref(),
            Some("alice")
        );
        assert_eq!(
            map_voice(&table, &builtin, &name("alloy")).as_deref(),
            Some("joe")
        );
        assert_eq!(map_voice(&table, &builtin, &name("ash")).as_deref(), Some("amy"));
        assert_eq!(map_voice(&table, &[], &name("alloy")), None);
        assert_eq!(map_voice(&table, &builtin, &name("bob")).as_deref(), Some("bob"));
        assert_eq!(
            map_voice(&table, &builtin, &SpeechVoice::Object { id: "alloy".into() }).as_deref(),
            Some("alloy")
        );
        assert_eq!(map_voice(&table, &builtin, &name(" ")), None);
    }

    #[tokio::test]
    async fn sse_sends_deltas_then_done() {
        let audio =
            futures::stream::iter(vec![Ok(Bytes::from_static(b"ab")), Ok(Bytes::from_static(b"cd"))]).boxed();
        let events: Vec<Bytes> = sse_events(audio).map(|r| r.unwrap()).collect().await;
        assert_eq!(events.len(), 3);
        assert_eq!(
            &events[0][..],
            b"data: {\"type\":\"speech.audio.delta\",\"audio\":\"YWI=\"}\n\n"
        );
        assert!(
            std::str::from_utf8(&events[2])
                .unwrap()
                .contains("\"type\":\"speech.audio.done\"")
        );
        let failing = futures::stream::iter(vec![
            Ok(Bytes::from_static(b"ab")),
            Err(std::io::Error::other("node died")),
        ])
        .boxed();
        let events: Vec<Bytes> = sse_events(failing).map(|r| r.unwrap()).collect().await;
        assert_eq!(events.len(), 2);
        assert!(
            std::str::from_utf8(&events[1])
                .unwrap()
                .contains("\"type\":\"error\"")
        );
    }
}
