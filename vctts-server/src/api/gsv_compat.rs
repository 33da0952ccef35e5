//! GPT-SoVITS's `api_v2.py`, so scripts and adapters written for it work
//! against vctts: `GET|POST /tts`, `GET /set_refer_audio`, and `/control`
//! (refused: a client never restarts or stops vctts). Mounted only with
//! `compat.gpt_sovits_api: true`.
//!
//! Mapping of `/tts` (query string for GET, JSON body for POST; numbers and
//! booleans may arrive as strings, as in a query):
//! - `ref_audio_path` names a stored voice by its file stem
//!   (`voices/alice.wav` → `alice`; vctts reads no server paths), and the
//!   stored voice's own transcript is used: `prompt_text`, `prompt_lang` and
//!   `aux_ref_audio_paths` are accepted and not needed;
//! - `text_lang`: `zh`, `en`, `ja`, `ko`, `yue` pass on, `all_zh` and the
//!   other `all_*` forms are their language, `auto` lets the engine choose;
//! - `top_k`, `top_p`, `temperature`, `repetition_penalty` reach engines that
//!   sample; `seed` -1 is random; `speed_factor` is the speed;
//!   `text_split_method` must be `cut0`–`cut5` (vctts splits by sentence);
//! - `media_type` `wav`, `raw` (s16le), `ogg` (Opus in Ogg) or `aac`, answered
//!   as `audio/<media_type>` like upstream; `streaming_mode` true (or 1–3)
//!   streams chunk by chunk, false (or 0) answers the whole clip;
//! - the engine is GPT-SoVITS when a node serves it, else the default engine.
//!
//! Invariant: `/set_refer_audio` changes no state: it checks that the voice
//! exists (upstream preloads it; vctts caches profiles on first use anyway).

use super::synth::{answer_encoded, hv, open_stream, prepare_encoded};
use crate::cluster::CallContext;
use crate::error::{ApiResult, WireError};
use crate::gateway::Gateway;
use crate::http::context::RequestId;
use crate::http::extract::ApiQuery;
use crate::wire::{SamplingDto, SynthesizeRequest};
use axum::Extension;
use axum::Router;
use axum::body::Body;
use axum::extract::{Query, Request, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::Value;
use std::collections::BTreeMap;
use std::sync::Arc;
use vctts::StoreExt;
use vctts_core::{EngineKind, Error, VoiceId};
use vctts_engines::audio::AudioFormat;

/// The routes.
pub fn routes() -> Router<Arc<Gateway>> {
    Router::new()
        .route("/tts", get(tts).post(tts))
        .route("/set_refer_audio", get(set_refer_audio))
        .route("/control", get(control).post(control))
}

/// The engine this API speaks with: GPT-SoVITS when a node serves it, else the default.
fn engine(gw: &Gateway) -> ApiResult<EngineKind> {
    if gw.engine_info(EngineKind::GptSovits).is_some() {
        return Ok(EngineKind::GptSovits);
    }
    Ok(gw.default_engine()?)
}

/// A reference path as a voice id: its file stem.
pub fn ref_voice(path: &str) -> Option<String> {
    let last = path.rsplit(['/', '\\']).next().unwrap_or(path).trim();
    let stem = match last.rfind('.') {
        Some(i) if i > 0 => &last[..i],
        _ => last,
    };
    (!stem.is_empty()).then(|| stem.to_string())
}

/// The parameters of one `/tts` call, as strings or JSON values.
#[derive(Debug, Default)]
pub struct Params(BTreeMap<String, Value>);

impl Params {
    fn from_query(q: BTreeMap<String, String>) -> Self {
        Self(q.into_iter().map(|(k, v)| (k, Value::String(v))).collect())
    }

    fn from_json(v: Value) -> Result<Self, Error> {
        match v {
            Value::Object(m) => Ok(Self(m.into_iter().collect())),
            _ => Err(Error::invalid("body", "must be a JSON object")),
        }
    }

    fn string(&self, key: &str) -> Option<String> {
        match self.0.get(key)? {
            Value::String(s) => Some(s.clone()),
            Value::Null => None,
            other => Some(other.to_string()),
        }
    }

    fn required(&self, key: &str) -> Result<String, Error> {
        self.string(key)
            .filter(|s| !s.trim().is_empty())
            .ok_or_else(|| Error::invalid(key, format!("{key} is required")))
    }

    fn number(&self, key: &str) -> Result<Option<f64>, Error> {
        match self.0.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Number(n)) => Ok(n.as_f64()),
            Some(Value::String(s)) => s
                .trim()
                .parse::<f64>()
                .map(Some)
                .map_err(|_| Error::invalid(key, format!("{s:?} is not a number"))),
            Some(other) => Err(Error::invalid(key, format!("{other} is not a number"))),
        }
    }

    /// `streaming_mode`: booleans, their strings, or upstream's modes 0–3.
    fn streaming(&self) -> Result<bool, Error> {
        match self.0.get("streaming_mode") {
            None | Some(Value::Null) => Ok(false),
            Some(Value::Bool(b)) => Ok(*b),
            Some(Value::Number(n)) if n.as_u64().is_some_and(|m| m <= 3) => Ok(n.as_u64() != Some(0)),
            Some(Value::String(s)) => match s.to_ascii_lowercase().as_str() {
                "true" | "1" | "2" | "3" => Ok(true),
                "false" | "0" | "" => Ok(false),
                _ => Err(Error::invalid(
                    "streaming_mode",
                    format!("{s:?} is not a boolean"),
                )),
            },
            Some(other) => Err(Error::invalid(
                "streaming_mode",
                format!("{other} is not a boolean"),
            )),
        }
    }
}

/// `media_type` as a format (upstream's four).
pub fn media_format(media_type: &str) -> Result<AudioFormat, Error> {
    match media_type.to_ascii_lowercase().as_str() {
        "wav" => Ok(AudioFormat::Wav),
        "raw" => Ok(AudioFormat::Pcm),
        "ogg" => Ok(AudioFormat::Opus),
        "aac" => Ok(AudioFormat::Aac),
        other => Err(Error::invalid(
            "media_type",
            format!("{other:?} is not supported (wav, raw, ogg, aac)"),
        )),
    }
}

/// `text_lang` as a vctts language (`None`: the engine chooses).
pub fn language(text_lang: &str) -> Option<String> {
    let l = text_lang.trim().to_ascii_lowercase();
    let l = l.strip_prefix("all_").unwrap_or(&l).to_string();
    match l.as_str() {
        "" | "auto" | "auto_yue" => None,
        _ => Some(l),
    }
}

/// A validated `/tts` call.
#[derive(Debug)]
pub struct Call {
    /// The vctts request.
    pub request: SynthesizeRequest,
    /// The media type asked for (for the content type).
    pub media_type: String,
    /// Whether to stream.
    pub streaming: bool,
}

/// Checks a `/tts` call as upstream does and maps it onto vctts.
pub fn call(p: &Params, engine: EngineKind) -> Result<Call, Error> {
    let text = p.required("text")?;
    let text_lang = p.required("text_lang")?;
    let reference = p.required("ref_audio_path")?;
    let voice = ref_voice(&reference).ok_or_else(|| Error::invalid("ref_audio_path", "names no file"))?;
    let media_type = p.string("media_type").unwrap_or_else(|| "wav".into());
    let format = media_format(&media_type)?;
    if let Some(m) = p.string("text_split_method") {
        let ok = m.len() == 4 && m.starts_with("cut") && matches!(m.as_bytes()[3], b'0'..=b'5');
        if !ok {
            return Err(Error::invalid(
                "text_split_method",
                format!("{m:?} is not one of cut0..cut5"),
            ));
        }
    }
    let streaming = p.streaming()?;
    let seed = match p.number("seed")? {
        None => None,
        Some(s) if s < 0.0 => None,
        Some(s) => Some(s as u64),
    };
    let samples = matches!(engine, EngineKind::Xtts | EngineKind::GptSovits);
    let sampling = if samples {
        Some(SamplingDto {
            temperature: p.number("temperature")?.map(|x| x as f32),
            top_k: p.number("top_k")?.filter(|k| *k > 0.0).map(|k| k as usize),
            top_p: p.number("top_p")?.map(|x| x as f32),
            repetition_penalty: p.number("repetition_penalty")?.map(|x| x as f32),
            ..SamplingDto::default()
        })
    } else {
        None
    };
    Ok(Call {
        request: SynthesizeRequest {
            text,
            engine: Some(engine.to_string()),
            voice: Some(voice),
            language: language(&text_lang),
            speed: p.number("speed_factor")?.map(|x| x as f32),
            format: Some(format.name().to_string()),
            sample_rate: None,
            seed,
            sampling,
        },
        media_type: media_type.to_ascii_lowercase(),
        streaming,
    })
}

async fn tts(
    State(gw): State<Arc<Gateway>>,
    Extension(rid): Extension<RequestId>,
    req: Request,
) -> ApiResult<Response> {
    let params = if req.method() == Method::GET {
        let q: Query<BTreeMap<String, String>> =
            Query::try_from_uri(req.uri()).map_err(|e| WireError::InvalidQuery(e.to_string()))?;
        Params::from_query(q.0)
    } else {
        let limit = gw.config().limits.max_body_size.0 as usize;
        let bytes = axum::body::to_bytes(req.into_body(), limit)
            .await
            .map_err(|_| WireError::PayloadTooLarge { limit: limit as u64 })?;
        let v: Value = serde_json::from_slice(&bytes).map_err(|e| WireError::MalformedJson(e.to_string()))?;
        Params::from_json(v)?
    };
    let call = call(&params, engine(&gw)?)?;
    let parsed = call.request.to_domain(gw.config().limits.max_text_chars)?;
    let ctx = CallContext { request_id: rid.0 };
    let (prepared, enc) = prepare_encoded(&gw, parsed, &ctx).await?;
    let content_type = hv(format!("audio/{}", call.media_type));
    if call.streaming {
        let s = open_stream(&gw, &prepared, enc, &ctx).await?;
        let mut h = HeaderMap::new();
        s.common_headers(&mut h);
        let mut res = Response::new(Body::from_stream(s.body));
        res.headers_mut().extend(h);
        res.headers_mut().insert(header::CONTENT_TYPE, content_type);
        return Ok(res);
    }
    let (s, out) = answer_encoded(&gw, &prepared, enc, &ctx).await?;
    let mut res = out.into_response(&s);
    res.headers_mut().insert(header::CONTENT_TYPE, content_type);
    Ok(res)
}

async fn set_refer_audio(
    State(gw): State<Arc<Gateway>>,
    ApiQuery(q): ApiQuery<BTreeMap<String, String>>,
) -> ApiResult<Response> {
    let path = q
        .get("refer_audio_path")
        .filter(|s| !s.trim().is_empty())
        .ok_or_else(|| Error::invalid("refer_audio_path", "refer_audio_path is required"))?;
    let id = VoiceId::new(ref_voice(path).unwrap_or_default())?;
    let kind = engine(&gw)?;
    let builtin = gw.engine_info(kind).map(|i| i.builtin_voices).unwrap_or_default();
    let lookup = id.clone();
    let stored = gw.store().run(move |s| s.exists(&lookup)).await?;
    if !stored && !builtin.iter().any(|b| b == id.as_str()) {
        return Err(Error::VoiceNotFound(id.to_string()).into());
    }
    Ok(axum::Json(serde_json::json!({ "message": "success" })).into_response())
}

async fn control() -> Response {
    (
        StatusCode::FORBIDDEN,
        axum::Json(serde_json::json!({
            "message": "control commands (restart, exit) are not accepted: vctts is managed by its operator"
        })),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(pairs: &[(&str, &str)]) -> Params {
        Params::from_query(
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        )
    }

    #[test]
    fn the_documented_get_call_maps_onto_vctts() {
        let p = q(&[
            ("text", "先帝创业未半而中道崩殂"),
            ("text_lang", "zh"),
            ("ref_audio_path", "archive_jingyuan_1.wav"),
            ("prompt_lang", "zh"),
            ("prompt_text", "我是「罗浮」云骑将军景元。"),
            ("text_split_method", "cut5"),
            ("batch_size", "1"),
            ("media_type", "wav"),
            ("streaming_mode", "true"),
            ("top_k", "5"),
            ("seed", "-1"),
            ("speed_factor", "1.2"),
        ]);
        let c = call(&p, EngineKind::GptSovits).unwrap();
        assert!(c.streaming);
        assert_eq!(c.media_type, "wav");
        assert_eq!(c.request.voice.as_deref(), Some("archive_jingyuan_1"));
        assert_eq!(c.request.language.as_deref(), Some("zh"));
        assert_eq!(c.request.seed, None);
        assert_eq!(c.request.speed, Some(1.2));
        assert_eq!(c.request.sampling.unwrap().top_k, Some(5));
        let ov = call(&p, EngineKind::OpenVoice).unwrap();
        assert!(ov.request.sampling.is_none(), "OpenVoice takes no sampling");
    }

    #[test]
    fn upstream_checks_are_kept() {
        let base = [("text", "hi"), ("text_lang", "en"), ("ref_audio_path", "a.wav")];
        assert!(call(&q(&base), EngineKind::OpenVoice).is_ok());
        for (drop, field) in [(0, "text"), (1, "text_lang"), (2, "ref_audio_path")] {
            let mut v = base.to_vec();
            v.remove(drop);
            let e = call(&q(&v), EngineKind::OpenVoice).unwrap_err();
            assert_eq!(e.code(), "invalid_input");
            assert!(e.to_string().contains(field), "{e}");
        }
        for (k, v) in [
            ("media_type", "mp4"),
            ("text_split_method", "cut9"),
            ("streaming_mode", "maybe"),
            ("top_k", "many"),
        ] {
            let mut p = base.to_vec();
            p.push((k, v));
            assert!(call(&q(&p), EngineKind::Xtts).is_err(), "{k}={v}");
        }
        assert_eq!(media_format("raw").unwrap(), AudioFormat::Pcm);
        assert_eq!(media_format("ogg").unwrap(), AudioFormat::Opus);
        assert_eq!(language("all_zh").as_deref(), Some("zh"));
        assert_eq!(language("auto"), None);
        assert_eq!(ref_voice("参考音频/bob.wav").as_deref(), Some("bob"));
        assert_eq!(ref_voice("dir/"), None);
        let json = Params::from_json(serde_json::json!({
            "text": "hi", "text_lang": "en", "ref_audio_path": "a.wav", "streaming_mode": 0, "seed": 7
        }))
        .unwrap();
        let c = call(&json, EngineKind::OpenVoice).unwrap();
        assert!(!c.streaming);
        assert_eq!(c.request.seed, Some(7));
    }
}
