//! daswer123's xtts-api-server API, so front ends written for it (SillyTavern's
//! XTTS provider above all) work against vctts unchanged: point them at
//! `http://gateway:8000`. Mounted only with `compat.xtts_api_server: true`.
//!
//! Endpoints, as that server names them: `GET /speakers` (SillyTavern's
//! `{name, voice_id, preview_url}` list), `GET /speakers_list` (names),
//! `GET /languages` (`{"languages": {"English": "en", ...}}`),
//! `GET /get_tts_settings`, `POST /set_tts_settings`, `GET /sample/{file}`
//! (a stored voice's reference clip), `POST /tts_to_audio/` (a whole WAV) and
//! `GET /tts_stream` (a streamed WAV; SillyTavern asks for `/tts_stream/`).
//!
//! Mapping: `speaker_wav` names a stored voice id or a built-in voice (a path
//! or a `.wav` name is reduced to its file stem, as that server's speaker
//! folder names voices); the engine is XTTS when a node serves it, else the
//! default engine; `language` is passed on (an engine that does not speak it
//! answers `unsupported_language`).
//!
//! Invariant: `/set_tts_settings` is not global state. The settings are
//! per-request defaults of the client that set them (keyed by its IP address,
//! at most [`MAX_CLIENTS`] clients, the oldest forgotten first): one user's
//! slider never changes another user's voice. Sampling settings reach only
//! engines that sample (XTTS, GPT-SoVITS); `length_penalty`,
//! `enable_text_splitting` and `stream_chunk_size` are kept and echoed but
//! change nothing (vctts always splits by sentence and streams per sentence).

use super::synth::{answer_encoded, hv, open_stream, prepare_encoded};
use crate::cluster::CallContext;
use crate::error::{ApiResult, WireError};
use crate::gateway::Gateway;
use crate::http::context::{RequestId, client_addr};
use crate::http::extract::ApiQuery;
use crate::wire::{SamplingDto, SynthesizeRequest};
use axum::body::Body;
use axum::extract::{Path, Request, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::Response;
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::{BTreeMap, VecDeque};
use std::net::IpAddr;
use std::sync::Arc;
use vctts::StoreExt;
use vctts_core::{EngineKind, Error, VoiceId};
use vctts_engines::audio::AudioFormat;

/// Clients whose settings are remembered.
pub const MAX_CLIENTS: usize = 1024;

/// The settings of `/get_tts_settings` and `/set_tts_settings`, with
/// xtts-api-server's defaults.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TtsSettings {
    /// Sampling temperature.
    pub temperature: f32,
    /// Speaking rate.
    pub speed: f32,
    /// Kept for the client; vctts does no beam search.
    pub length_penalty: f32,
    /// Repetition penalty.
    pub repetition_penalty: f32,
    /// Nucleus sampling.
    pub top_p: f32,
    /// Top-k sampling.
    pub top_k: u32,
    /// Kept for the client; vctts always splits by sentence.
    pub enable_text_splitting: bool,
    /// Kept for the client; vctts streams per sentence.
    pub stream_chunk_size: u32,
}

impl Default for TtsSettings {
    fn default() -> Self {
        Self {
            temperature: 0.75,
            speed: 1.0,
            length_penalty: 1.0,
            repetition_penalty: 5.0,
            top_p: 0.85,
            top_k: 50,
            enable_text_splitting: true,
            stream_chunk_size: 100,
        }
    }
}

/// A number given as a JSON number or as a string (SillyTavern sends the
/// values of its sliders as strings).
fn number(body: &serde_json::Map<String, Value>, key: &str) -> Result<Option<f64>, Error> {
    match body.get(key) {
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

fn ranged(v: Option<f64>, key: &str, lo: f64, hi: f64) -> Result<Option<f64>, Error> {
    match v {
        Some(x) if !(lo..=hi).contains(&x) || !x.is_finite() => Err(Error::invalid(
            key,
            format!("must be between {lo} and {hi}, got {x}"),
        )),
        other => Ok(other),
    }
}

impl TtsSettings {
    /// These settings with the fields of a `/set_tts_settings` body applied
    /// (numbers or numeric strings; unknown keys refused).
    pub fn updated(&self, body: &Value) -> Result<Self, Error> {
        let Some(map) = body.as_object() else {
            return Err(Error::invalid("body", "must be a JSON object"));
        };
        const KEYS: [&str; 8] = [
            "temperature",
            "speed",
            "length_penalty",
            "repetition_penalty",
            "top_p",
            "top_k",
            "enable_text_splitting",
            "stream_chunk_size",
        ];
        if let Some(k) = map.keys().find(|k| !KEYS.contains(&k.as_str())) {
            return Err(Error::invalid(k.clone(), "unknown setting"));
        }
        let mut s = self.clone();
        if let Some(x) = ranged(number(map, "temperature")?, "temperature", 0.01, 5.0)? {
            s.temperature = x as f32;
        }
        if let Some(x) = ranged(number(map, "speed")?, "speed", 0.25, 4.0)? {
            s.speed = x as f32;
        }
        if let Some(x) = ranged(number(map, "length_penalty")?, "length_penalty", -10.0, 10.0)? {
            s.length_penalty = x as f32;
        }
        if let Some(x) = ranged(
            number(map, "repetition_penalty")?,
            "repetition_penalty",
            0.1,
            20.0,
        )? {
            s.repetition_penalty = x as f32;
        }
        if let Some(x) = ranged(number(map, "top_p")?, "top_p", 0.0, 1.0)? {
            s.top_p = x as f32;
        }
        if let Some(x) = ranged(number(map, "top_k")?, "top_k", 0.0, 1000.0)? {
            s.top_k = x.round() as u32;
        }
        if let Some(x) = ranged(
            number(map, "stream_chunk_size")?,
            "stream_chunk_size",
            1.0,
            10_000.0,
        )? {
            s.stream_chunk_size = x.round() as u32;
        }
        match map.get("enable_text_splitting") {
            None | Some(Value::Null) => {}
            Some(Value::Bool(b)) => s.enable_text_splitting = *b,
            Some(Value::String(t)) if t == "true" || t == "false" => s.enable_text_splitting = t == "true",
            Some(other) => {
                return Err(Error::invalid(
                    "enable_text_splitting",
                    format!("{other} is not a boolean"),
                ));
            }
        }
        Ok(s)
    }

    /// The sampling parameters an engine that samples gets (`top_k` 0 means
    /// "no top-k" upstream, so it is left to the engine).
    fn sampling(&self, engine: EngineKind) -> Option<SamplingDto> {
        match engine {
            EngineKind::Xtts | EngineKind::GptSovits => Some(SamplingDto {
                temperature: Some(self.temperature),
                top_k: (self.top_k > 0).then_some(self.top_k as usize),
                top_p: Some(self.top_p),
                repetition_penalty: Some(self.repetition_penalty),
                ..SamplingDto::default()
            }),
            _ => None,
        }
    }
}

/// Settings per client address, the oldest client forgotten first.
#[derive(Debug, Default)]
pub struct ClientSettings {
    inner: Mutex<(BTreeMap<IpAddr, TtsSettings>, VecDeque<IpAddr>)>,
}

impl ClientSettings {
    /// The settings of a client (the defaults when it set none).
    pub fn get(&self, ip: Option<IpAddr>) -> TtsSettings {
        let g = self.inner.lock();
        ip.and_then(|ip| g.0.get(&ip).cloned()).unwrap_or_default()
    }

    /// Remembers a client's settings.
    pub fn set(&self, ip: Option<IpAddr>, s: TtsSettings) {
        let Some(ip) = ip else { return };
        let mut g = self.inner.lock();
        let (map, order) = &mut *g;
        if map.insert(ip, s).is_none() {
            order.push_back(ip);
            while order.len() > MAX_CLIENTS {
                if let Some(old) = order.pop_front() {
                    map.remove(&old);
                }
            }
        }
    }
}

/// The routes, with their settings store.
pub fn routes() -> Router<Arc<Gateway>> {
    Router::new()
        .route("/speakers", get(speakers))
        .route("/speakers_list", get(speakers_list))
        .route("/languages", get(languages))
        .route("/get_tts_settings", get(get_settings))
        .route("/set_tts_settings", post(set_settings))
        .route("/sample/{file}", get(sample))
        .route("/tts_to_audio", post(tts_to_audio))
        .route("/tts_to_audio/", post(tts_to_audio))
        .route("/tts_stream", get(tts_stream))
        .route("/tts_stream/", get(tts_stream))
        .layer(Extension(Arc::new(ClientSettings::default())))
}

/// The engine this API speaks with: XTTS when a node serves it, else the default.
fn engine(gw: &Gateway) -> ApiResult<EngineKind> {
    if gw.engine_info(EngineKind::Xtts).is_some() {
        return Ok(EngineKind::Xtts);
    }
    Ok(gw.default_engine()?)
}

/// A `speaker_wav` as a voice id: the file stem of a path or `.wav` name.
pub fn speaker_voice(speaker: &str) -> Option<String> {
    let last = speaker.rsplit(['/', '\\']).next().unwrap_or(speaker).trim();
    let stem = last
        .strip_suffix(".wav")
        .or_else(|| last.strip_suffix(".WAV"))
        .unwrap_or(last);
    (!stem.is_empty()).then(|| stem.to_string())
}

/// Every voice: stored voices (newest first), then the engine's built-in ones.
async fn voice_names(gw: &Gateway) -> ApiResult<Vec<(String, String)>> {
    let (stored, _) = gw.store().run(|s| s.list(0, 1000)).await?;
    let mut out: Vec<(String, String)> = stored
        .iter()
        .map(|v| (v.voice.id.as_str().to_string(), v.voice.name.clone()))
        .collect();
    if let Some(info) = gw.engine_info(engine(gw)?) {
        for b in info.builtin_voices {
            if !out.iter().any(|(id, _)| *id == b) {
                out.push((b.clone(), b));
            }
        }
    }
    Ok(out)
}

/// One speaker of `/speakers`.
#[derive(Debug, Serialize)]
struct Speaker {
    name: String,
    voice_id: String,
    preview_url: String,
}

async fn speakers(State(gw): State<Arc<Gateway>>, headers: HeaderMap) -> ApiResult<Json<Vec<Speaker>>> {
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("127.0.0.1:8000")
        .to_string();
    let out = voice_names(&gw)
        .await?
        .into_iter()
        .map(|(id, _)| Speaker {
            name: id.clone(),
            preview_url: format!("http://{host}/sample/{id}.wav"),
            voice_id: id,
        })
        .collect();
    Ok(Json(out))
}

async fn speakers_list(State(gw): State<Arc<Gateway>>) -> ApiResult<Json<Vec<String>>> {
    Ok(Json(
        voice_names(&gw).await?.into_iter().map(|(id, _)| id).collect(),
    ))
}

/// XTTS's language names, for the codes the engine speaks.
const LANGUAGE_NAMES: [(&str, &str); 17] = [
    ("ar", "Arabic"),
    ("pt", "Brazilian Portuguese"),
    ("zh-cn", "Chinese"),
    ("cs", "Czech"),
    ("nl", "Dutch"),
    ("en", "English"),
    ("fr", "French"),
    ("de", "German"),
    ("it", "Italian"),
    ("pl", "Polish"),
    ("ru", "Russian"),
    ("es", "Spanish"),
    ("tr", "Turkish"),
    ("ja", "Japanese"),
    ("ko", "Korean"),
    ("hu", "Hungarian"),
    ("hi", "Hindi"),
];

async fn languages(State(gw): State<Arc<Gateway>>) -> ApiResult<Json<Value>> {
    let info = gw.engine_info(engine(&gw)?);
    let mut map = serde_json::Map::new();
    for code in info.map(|i| i.languages).unwrap_or_default() {
        let name = LANGUAGE_NAMES
            .iter()
            .find(|(c, _)| c.eq_ignore_ascii_case(&code))
            .map(|(_, n)| n.to_string())
            .unwrap_or_else(|| code.clone());
        map.insert(name, Value::String(code));
    }
    Ok(Json(serde_json::json!({ "languages": map })))
}

fn ip_of(req: &Request) -> Option<IpAddr> {
    client_addr(req.extensions()).map(|a| a.ip())
}

async fn get_settings(Extension(store): Extension<Arc<ClientSettings>>, req: Request) -> Json<TtsSettings> {
    Json(store.get(ip_of(&req)))
}

async fn set_settings(
    State(gw): State<Arc<Gateway>>,
    Extension(store): Extension<Arc<ClientSettings>>,
    req: Request,
) -> ApiResult<Json<Value>> {
    let ip = ip_of(&req);
    let limit = gw.config().limits.max_body_size.0 as usize;
    let bytes = axum::body::to_bytes(req.into_body(), limit)
        .await
        .map_err(|_| WireError::PayloadTooLarge { limit: limit as u64 })?;
    let body: Value = serde_json::from_slice(&bytes).map_err(|e| WireError::MalformedJson(e.to_string()))?;
    let updated = store.get(ip).updated(&body)?;
    store.set(ip, updated);
    Ok(Json(
        serde_json::json!({ "message": "Settings successfully applied" }),
    ))
}

async fn sample(State(gw): State<Arc<Gateway>>, Path(file): Path<String>) -> ApiResult<Response> {
    let id = VoiceId::new(speaker_voice(&file).unwrap_or_default())?;
    let lookup = id.clone();
    let wav = gw
        .store()
        .run(move |s| s.reference_audio(&lookup))
        .await?
        .ok_or_else(|| Error::VoiceNotFound(id.to_string()))?;
    let mut res = Response::new(Body::from(wav));
    res.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("audio/wav"));
    Ok(res)
}

/// The body of `/tts_to_audio/` and the query of `/tts_stream`.
#[derive(Debug, Clone, Deserialize)]
pub struct XttsSynthesis {
    /// The text.
    pub text: String,
    /// The speaker (a voice id, a built-in voice, or a `.wav` name or path).
    #[serde(default)]
    pub speaker_wav: Option<String>,
    /// The language code.
    #[serde(default)]
    pub language: Option<String>,
    /// Accepted for compatibility; vctts writes no files for callers.
    #[serde(default)]
    pub save_path: Option<String>,
}

fn to_v3(gw: &Gateway, req: XttsSynthesis, s: &TtsSettings) -> ApiResult<SynthesizeRequest> {
    let engine = engine(gw)?;
    Ok(SynthesizeRequest {
        text: req.text,
        engine: Some(engine.to_string()),
        voice: req.speaker_wav.as_deref().and_then(speaker_voice),
        language: req
            .language
            .map(|l| l.trim().to_ascii_lowercase())
            .filter(|l| !l.is_empty()),
        speed: Some(s.speed),
        format: Some(AudioFormat::Wav.name().to_string()),
        sample_rate: None,
        seed: None,
        sampling: s.sampling(engine),
    })
}

async fn tts_to_audio(
    State(gw): State<Arc<Gateway>>,
    Extension(store): Extension<Arc<ClientSettings>>,
    Extension(rid): Extension<RequestId>,
    req: Request,
) -> ApiResult<Response> {
    let settings = store.get(ip_of(&req));
    let limit = gw.config().limits.max_body_size.0 as usize;
    let bytes = axum::body::to_bytes(req.into_body(), limit)
        .await
        .map_err(|_| WireError::PayloadTooLarge { limit: limit as u64 })?;
    let body: XttsSynthesis =
        serde_json::from_slice(&bytes).map_err(|e| WireError::MalformedJson(e.to_string()))?;
    let v3 = to_v3(&gw, body, &settings)?;
    let parsed = v3.to_domain(gw.config().limits.max_text_chars)?;
    let ctx = CallContext { request_id: rid.0 };
    let (prepared, enc) = prepare_encoded(&gw, parsed, &ctx).await?;
    let (s, out) = answer_encoded(&gw, &prepared, enc, &ctx).await?;
    let mut res = out.into_response(&s);
    res.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("audio/wav"));
    Ok(res)
}

async fn tts_stream(
    State(gw): State<Arc<Gateway>>,
    Extension(store): Extension<Arc<ClientSettings>>,
    Extension(rid): Extension<RequestId>,
    ApiQuery(q): ApiQuery<XttsSynthesis>,
    req: Request,
) -> ApiResult<Response> {
    let settings = store.get(ip_of(&req));
    let v3 = to_v3(&gw, q, &settings)?;
    let parsed = v3.to_domain(gw.config().limits.max_text_chars)?;
    let ctx = CallContext { request_id: rid.0 };
    let (prepared, enc) = prepare_encoded(&gw, parsed, &ctx).await?;
    let s = open_stream(&gw, &prepared, enc, &ctx).await?;
    let mut h = HeaderMap::new();
    s.common_headers(&mut h);
    let mut res = Response::new(Body::from_stream(s.body));
    res.headers_mut().extend(h);
    res.headers_mut().insert(header::CONTENT_TYPE, hv("audio/x-wav"));
    Ok(res)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn speakers_are_file_stems() {
        assert_eq!(speaker_voice("alice").as_deref(), Some("alice"));
        assert_eq!(speaker_voice("speakers/alice.wav").as_deref(), Some("alice"));
        assert_eq!(speaker_voice("C:\\voices\\bob.WAV").as_deref(), Some("bob"));
        assert_eq!(speaker_voice(""), None);
        assert_eq!(speaker_voice("dir/"), None);
    }

    #[test]
    fn settings_take_sillytaverns_strings_and_refuse_nonsense() {
        let base = TtsSettings::default();
        let body = serde_json::json!({
            "temperature": "0.6", "speed": "1.25", "length_penalty": "1", "repetition_penalty": "7",
            "top_p": "0.9", "top_k": "40", "enable_text_splitting": true, "stream_chunk_size": "150"
        });
        let s = base.updated(&body).unwrap();
        assert_eq!(s.temperature, 0.6);
        assert_eq!(s.speed, 1.25);
        assert_eq!(s.top_k, 40);
        assert_eq!(s.stream_chunk_size, 150);
        for bad in [
            serde_json::json!({"temperature": "hot"}),
            serde_json::json!({"speed": 9}),
            serde_json::json!({"colour": 1}),
            serde_json::json!({"enable_text_splitting": 3}),
            serde_json::json!([1]),
        ] {
            assert_eq!(base.updated(&bad).unwrap_err().code(), "invalid_input", "{bad}");
        }
        assert!(s.sampling(EngineKind::OpenVoice).is_none());
        let x = s.sampling(EngineKind::Xtts).unwrap();
        assert_eq!(x.top_k, Some(40));
        assert_eq!(x.repetition_penalty, Some(7.0));
    }

    #[test]
    fn settings_are_per_client_and_bounded() {
        let store = ClientSettings::default();
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "10.0.0.2".parse().unwrap();
        let fast = TtsSettings {
            speed: 2.0,
            ..TtsSettings::default()
        };
        store.set(Some(a), fast.clone());
        assert_eq!(store.get(Some(a)), fast);
        assert_eq!(store.get(Some(b)), TtsSettings::default());
        assert_eq!(store.get(None), TtsSettings::default());
        for i in 0..MAX_CLIENTS as u32 {
            store.set(Some(IpAddr::from(i.to_be_bytes())), TtsSettings::default());
        }
        assert_eq!(
            store.get(Some(a)),
            TtsSettings::default(),
            "the oldest client is forgotten"
        );
        assert_eq!(store.inner.lock().0.len(), MAX_CLIENTS);
    }
}
