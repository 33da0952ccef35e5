//! `POST /v1/audio/speech`: the OpenAI text-to-speech endpoint, so existing
//! OpenAI clients work unchanged (point their base URL at the gateway).
//!
//! Mapping: `model` `tts-1`, `tts-1-hd`, `gpt-4o-mini-tts` (or any `gpt-*` /
//! `tts-*` name) selects the default engine, an engine name selects that
//! engine; `voice` is a stored voice id or a built-in voice, and OpenAI's own
//! voice names (`alloy`, `nova`, ...) select the engine's default voice;
//! `response_format` `wav` or `pcm` (OpenAI's default `mp3` and the other
//! compressed formats are refused with `invalid_input`; note that `pcm` here
//! is at the engine's rate, stated in the content type); `speed` 0.25–4.
//! Errors use the API's error body, whose `error.message` and `error.code`
//! OpenAI clients read.

use super::context::RequestId;
use super::extract::JsonBody;
use super::synth::synthesis_headers;
use crate::cluster::CallContext;
use crate::error::{ApiResult, ErrorBody};
use crate::gateway::Gateway;
use crate::wire::{OPENAI_VOICES, SpeechRequest, SynthesizeRequest};
use axum::Extension;
use axum::body::Body;
use axum::extract::State;
use axum::response::Response;
use std::sync::Arc;
use vctts_core::{EngineKind, Error};

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

/// OpenAI-compatible speech synthesis.
#[utoipa::path(
    post,
    path = "/v1/audio/speech",
    tag = "openai",
    request_body = SpeechRequest,
    responses(
        (status = 200, description = "The audio", content_type = "audio/wav"),
        (status = 422, description = "Unsupported model, format or field", body = ErrorBody),
        (status = 503, description = "No ready node", body = ErrorBody),
    )
)]
pub async fn speech(
    State(gw): State<Arc<Gateway>>,
    Extension(rid): Extension<RequestId>,
    JsonBody(req): JsonBody<SpeechRequest>,
) -> ApiResult<Response> {
    let engine = engine_for_model(&req.model)?;
    let format = match req
        .response_format
        .as_deref()
        .map(str::to_ascii_lowercase)
        .as_deref()
    {
        None | Some("wav") => "wav",
        Some("pcm") => "pcm",
        Some(other) => {
            return Err(Error::invalid(
                "response_format",
                format!("{other:?} is not supported; use wav or pcm"),
            )
            .into());
        }
    };
    if let Some(sf) = req.stream_format.as_deref() {
        if sf != "audio" {
            return Err(Error::invalid("stream_format", "only \"audio\" is supported").into());
        }
    }
    let voice = if OPENAI_VOICES.contains(&req.voice.to_ascii_lowercase().as_str()) || req.voice.is_empty() {
        None
    } else {
        Some(req.voice.clone())
    };
    let as_v3 = SynthesizeRequest {
        text: req.input,
        engine: engine.map(|e| e.to_string()),
        voice,
        language: None,
        speed: req.speed,
        format: Some(format.to_string()),
        seed: None,
        sampling: None,
    };
    let parsed = as_v3.to_domain(gw.config().limits.max_text_chars)?;
    let ctx = CallContext { request_id: rid.0 };
    let prepared = gw.prepare(parsed, &ctx).await?;
    let s = gw.synthesize_prepared(&prepared, &ctx).await?;
    let mut res = Response::new(Body::from(s.audio.bytes.clone()));
    synthesis_headers(res.headers_mut(), &s);
    Ok(res)
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
