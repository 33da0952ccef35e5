//! A contract fake of the gateway's HTTP surface, for testing the pages alone.
//!
//! It serves the real [`vctts_server::pages::router`] plus the endpoints the
//! pages call, answering with the shapes of the public API (`wire.rs`) and of
//! the admin API contract (issue 6) from in-memory state a test can change
//! ([`FakeGateway`]): nodes change state or disappear, log records arrive,
//! sessions expire. Audio is a generated tone, not speech: these tests check
//! the pages, not the engines (the tests against real processes do that).
//!
//! Invariants: admin calls need the session cookie a login set (401
//! otherwise) and state-changing admin calls need `X-Requested-With: vctts`
//! (403 otherwise), like the real gateway, so a page that forgets either
//! fails here; every node action and config change is recorded for the test
//! to assert on.

// The early-return helpers hand back the error answer itself; boxing it
// would only add noise to a test double.
#![allow(clippy::result_large_err)]

use axum::Json;
use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Multipart, Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use parking_lot::Mutex;
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashMap};
use std::convert::Infallible;
use std::sync::Arc;
use tokio::sync::broadcast;

/// The admin password the fake accepts.
pub const PASSWORD: &str = "s3cret-pass";
const SESSION_COOKIE: &str = "vctts_session";
const RATE: u32 = 22_050;

/// What the fake knows.
#[derive(Debug, Default)]
pub struct FakeState {
    /// Nodes as `GET /api/v3/nodes` reports them.
    pub nodes: Vec<Value>,
    /// Stored voices (`VoiceDto`).
    pub voices: Vec<Value>,
    /// Announcements (admin shape, with ids).
    pub announcements: Vec<Value>,
    /// Live settings (the `GET /admin/api/config` body).
    pub config: Value,
    /// Log records, oldest first.
    pub logs: Vec<Value>,
    /// Valid session tokens.
    pub sessions: Vec<String>,
    /// `(node id, action)` of every node action, in order.
    pub actions: Vec<(String, String)>,
    /// Every accepted `PUT /admin/api/config` body.
    pub config_puts: Vec<Value>,
    /// State-changing admin calls refused for a missing CSRF header.
    pub csrf_refusals: usize,
    /// Whether `/api/v3/events` exists (false: 404, the page must poll).
    pub events_enabled: bool,
    /// Requests to the public API, by path.
    pub hits: BTreeMap<String, usize>,
    next_id: u64,
}

/// A running fake, with handles to change it.
#[derive(Clone)]
pub struct FakeGateway {
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    /// The state.
    pub state: Arc<Mutex<FakeState>>,
    events: broadcast::Sender<(String, Value)>,
}

type Shared = (Arc<Mutex<FakeState>>, broadcast::Sender<(String, Value)>);

fn node(id: &str, endpoint: &str, state: &str, requests: u64, latency: f64) -> Value {
    json!({
        "id": id, "engine": "openvoice", "endpoint": endpoint, "state": state,
        "capacity": 2, "weight": 1, "labels": {}, "version": "0.1.0",
        "last_seen_seconds": 1.5, "breaker": "closed",
        "metrics": {
            "cpu_percent": 12.5, "memory_bytes": 512u64 << 20, "gpu_percent": null, "gpu_memory_bytes": null,
            "in_flight": 1, "queued": 0, "requests": requests, "errors": 0, "latency_ms": latency
        }
    })
}

impl FakeGateway {
    /// Starts the fake on a free port with two ready nodes (and one node that
    /// reports nothing but its id, engine and state, to exercise missing fields).
    pub async fn start(events_enabled: bool) -> FakeGateway {
        let state = FakeState {
            nodes: vec![
                node("node-a", "http://127.0.0.1:18002", "ready", 40, 850.0),
                node("node-b", "http://127.0.0.1:18012", "ready", 25, 910.0),
                json!({"id": "node-x", "engine": "xtts", "state": "standby"}),
            ],
            voices: vec![json!({
                "id": "alice", "name": "Alice", "language": "en", "transcript": null, "engines": ["openvoice"],
                "reference_seconds": 9.5, "created_at": 1_764_000_000u64, "quality": null
            })],
            announcements: vec![
                json!({"id": "1", "type": "warning", "message": "Maintenance tonight at 22:00",
                "created_at": "2026-12-01T08:00:00Z", "expires_at": null}),
            ],
            config: json!({
                "limiter": {"enabled": true, "global_rpm": 1000, "ip_rpm": 100, "concurrent_limit": 50},
                "announcements": {"type": "info", "ttl_seconds": 0},
                "default_engine": "openvoice", "balance_policy": "p2c", "log_level": "INFO"
            }),
            logs: vec![
                json!({"seq": 1, "timestamp": "2026-12-01T08:00:01Z", "level": "INFO", "category": "access", "message": "request served",
                    "method": "POST", "endpoint": "/api/v3/synthesize", "status_code": 200, "duration_ms": 812.0, "request_id": "r-1"}),
                json!({"seq": 2, "timestamp": "2026-12-01T08:00:02Z", "level": "INFO", "category": "audit", "message": "admin logged in"}),
                json!({"seq": 3, "timestamp": "2026-12-01T08:00:03Z", "level": "ERROR", "category": "error", "message": "node node-b failed a request"}),
            ],
            events_enabled,
            next_id: 2,
            ..FakeState::default()
        };
        let state = Arc::new(Mutex::new(state));
        let (events, _) = broadcast::channel(64);
        let app = router((state.clone(), events.clone()));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind fake");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        tokio::spawn(async move {
            axum::serve(listener, app).await.expect("fake gateway");
        });
        FakeGateway { url, state, events }
    }

    /// Sets a node's state and pushes the node list to event listeners.
    pub fn set_node_state(&self, id: &str, state: &str) {
        let nodes = {
            let mut s = self.state.lock();
            for n in s.nodes.iter_mut().filter(|n| n["id"] == id) {
                n["state"] = json!(state);
            }
            s.nodes.clone()
        };
        let _ = self.events.send(("nodes".into(), json!({ "nodes": nodes })));
    }

    /// Removes a node (it deregistered) and pushes the node list.
    pub fn remove_node(&self, id: &str) {
        let nodes = {
            let mut s = self.state.lock();
            s.nodes.retain(|n| n["id"] != id);
            s.nodes.clone()
        };
        let _ = self.events.send(("nodes".into(), json!({ "nodes": nodes })));
    }

    /// Appends a log record and pushes it to the live tail.
    pub fn push_log(&self, mut record: Value) {
        {
            let mut s = self.state.lock();
            record["seq"] = json!(s.logs.len() + 1);
            s.logs.push(record.clone());
        }
        let _ = self.events.send(("log".into(), record));
    }

    /// Forgets every session (as when they expire).
    pub fn expire_sessions(&self) {
        self.state.lock().sessions.clear();
    }

    /// The state of one node.
    pub fn node_state(&self, id: &str) -> Option<String> {
        let s = self.state.lock();
        s.nodes
            .iter()
            .find(|n| n["id"] == id)
            .and_then(|n| n["state"].as_str().map(String::from))
    }
}

fn router(shared: Shared) -> Router {
    let api = Router::new()
        .route("/api/v3/nodes", get(nodes))
        .route("/api/v3/engines", get(engines))
        .route("/api/v3/health", get(health))
        .route("/api/v3/metrics", get(metrics))
        .route("/api/v3/announcements", get(public_announcements))
        .route("/api/v3/status/endpoints", get(endpoint_checks))
        .route("/api/v3/events", get(events))
        .route("/api/v3/openapi.json", get(|| async { Json(openapi()) }))
        .route("/api/v3/voices", get(voices))
        .route("/api/v3/voices/{id}", get(voice).delete(delete_voice))
        .route("/api/v3/voices/{id}/audio", get(voice_audio))
        .route("/api/v3/synthesize", post(synthesize))
        .route("/api/v3/synthesize/stream", post(synthesize_stream))
        .route("/api/v3/synthesize/batch", post(batch))
        .route("/api/v3/extract_voice", post(extract_voice))
        .route("/api/v3/preprocess", post(preprocess))
        .route("/v1/audio/speech", post(speech))
        .route("/admin/api/login", post(login))
        .route("/admin/api/logout", post(logout))
        .route("/admin/api/me", get(me))
        .route("/admin/api/nodes", get(admin_nodes))
        .route("/admin/api/nodes/{id}/{action}", post(node_action))
        .route("/admin/api/config", get(get_config).put(put_config))
        .route("/admin/api/logs", get(logs))
        .route("/admin/api/logs/stream", get(log_stream))
        .route(
            "/admin/api/announcements",
            get(announcements).post(create_announcement),
        )
        .route("/admin/api/announcements/{id}", delete(delete_announcement))
        .with_state(shared);
    api.merge(vctts_server::pages::router())
}

fn error(status: StatusCode, code: &str, message: &str) -> Response {
    (
        status,
        Json(json!({"error": {"code": code, "message": message, "request_id": "fake"}})),
    )
        .into_response()
}

fn count(s: &Shared, path: &str) {
    *s.0.lock().hits.entry(path.to_string()).or_default() += 1;
}

// ---- public API -------------------------------------------------------------

async fn nodes(State(s): State<Shared>) -> Json<Value> {
    count(&s, "/api/v3/nodes");
    Json(json!({ "nodes": s.0.lock().nodes }))
}

async fn engines(State(s): State<Shared>) -> Json<Value> {
    let st = s.0.lock();
    let ready = |e: &str| {
        st.nodes
            .iter()
            .filter(|n| n["engine"] == e && n["state"] == "ready")
            .count()
    };
    let total = |e: &str| st.nodes.iter().filter(|n| n["engine"] == e).count();
    Json(json!({"engines": [
        {"engine": "openvoice", "name": "OpenVoice v2", "nodes": total("openvoice"), "ready_nodes": ready("openvoice"),
         "available": ready("openvoice") > 0, "default": true, "languages": ["en", "en-us"], "default_language": "en",
         "sample_rate": RATE, "streaming": true, "cloning": true, "needs_transcript": false, "max_text_chars": 5000,
         "builtin_voices": ["en_US-joe-medium"]},
        {"engine": "xtts", "name": null, "nodes": total("xtts"), "ready_nodes": ready("xtts"), "available": false,
         "default": false, "languages": [], "default_language": null, "sample_rate": null, "streaming": false,
         "cloning": true, "needs_transcript": false, "max_text_chars": null, "builtin_voices": []}
    ]}))
}

async fn health() -> Json<Value> {
    Json(
        json!({"status": "ok", "live": true, "ready": true, "engines": {"openvoice": 2}, "version": "0.1.0-fake", "uptime_seconds": 3725.0}),
    )
}

async fn metrics(State(s): State<Shared>, Query(q): Query<HashMap<String, String>>) -> Response {
    if q.get("format").map(String::as_str) != Some("json") {
        return (
            [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
            "vctts_requests_total 65\n",
        )
            .into_response();
    }
    let n = s.0.lock().hits.values().sum::<usize>() as u64;
    Json(json!({"requests_total": 65 + n, "in_flight": 2, "queued": 1, "avg_latency_ms": 870.0}))
        .into_response()
}

async fn public_announcements(State(s): State<Shared>) -> Json<Value> {
    Json(json!({"announcements": s.0.lock().announcements}))
}

async fn endpoint_checks() -> Json<Value> {
    Json(json!({"endpoints": [
        {"endpoint": "/api/v3/synthesize", "method": "POST", "status": 200, "avg_ms": 1500.0, "checked_at": "2026-12-01T08:00:00Z"},
        {"endpoint": "/api/v3/health", "method": "GET", "status": 200, "avg_ms": 1.2, "checked_at": "2026-12-01T08:00:00Z"},
        {"endpoint": "/api/v3/extract_voice", "method": "POST", "status": 503, "avg_ms": null, "checked_at": "2026-12-01T08:00:00Z"}
    ]}))
}

type EventStream = std::pin::Pin<Box<dyn futures::Stream<Item = Result<Event, Infallible>> + Send>>;

fn event_stream(
    first: Vec<Event>,
    rx: broadcast::Receiver<(String, Value)>,
    only: &'static str,
) -> EventStream {
    let head = futures::stream::iter(first.into_iter().map(Ok));
    let tail = futures::stream::unfold(rx, move |mut rx| async move {
        loop {
            match rx.recv().await {
                Ok((name, data)) if name == only => {
                    let ev = Event::default().event(name).data(data.to_string());
                    return Some((Ok(ev), rx));
                }
                Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => continue,
                Err(broadcast::error::RecvError::Closed) => return None,
            }
        }
    });
    Box::pin(futures::StreamExt::chain(head, tail))
}

async fn events(State(s): State<Shared>) -> Response {
    if !s.0.lock().events_enabled {
        return error(StatusCode::NOT_FOUND, "not_found", "no route for /api/v3/events");
    }
    let first = Event::default()
        .event("nodes")
        .data(json!({"nodes": s.0.lock().nodes}).to_string());
    Sse::new(event_stream(vec![first], s.1.subscribe(), "nodes"))
        .keep_alive(KeepAlive::default())
        .into_response()
}

async fn voices(State(s): State<Shared>) -> Json<Value> {
    let v = s.0.lock().voices.clone();
    Json(json!({"voices": v, "total": v.len(), "offset": 0, "limit": 200, "next_offset": null}))
}

async fn voice(State(s): State<Shared>, Path(id): Path<String>) -> Response {
    match s.0.lock().voices.iter().find(|v| v["id"] == id.as_str()) {
        Some(v) => Json(v.clone()).into_response(),
        None => error(
            StatusCode::NOT_FOUND,
            "voice_not_found",
            &format!("voice {id:?} not found"),
        ),
    }
}

async fn delete_voice(State(s): State<Shared>, Path(id): Path<String>) -> Response {
    let mut st = s.0.lock();
    let before = st.voices.len();
    st.voices.retain(|v| v["id"] != id.as_str());
    if st.voices.len() == before {
        return error(
            StatusCode::NOT_FOUND,
            "voice_not_found",
            &format!("voice {id:?} not found"),
        );
    }
    Json(json!({"deleted": id})).into_response()
}

async fn voice_audio(State(s): State<Shared>, Path(id): Path<String>) -> Response {
    if !s.0.lock().voices.iter().any(|v| v["id"] == id.as_str()) {
        return error(
            StatusCode::NOT_FOUND,
            "voice_not_found",
            &format!("voice {id:?} not found"),
        );
    }
    wav_response(tone(0.5, 330.0))
}

/// A mono tone, 16-bit samples.
fn tone(seconds: f32, hz: f32) -> Vec<i16> {
    let n = (seconds * RATE as f32) as usize;
    (0..n)
        .map(|i| ((i as f32 * hz * std::f32::consts::TAU / RATE as f32).sin() * 8000.0) as i16)
        .collect()
}

fn wav_header(data_len: u32) -> Vec<u8> {
    let mut h = Vec::with_capacity(44);
    h.extend_from_slice(b"RIFF");
    h.extend_from_slice(&data_len.saturating_add(36).to_le_bytes());
    h.extend_from_slice(b"WAVEfmt ");
    h.extend_from_slice(&16u32.to_le_bytes());
    h.extend_from_slice(&1u16.to_le_bytes());
    h.extend_from_slice(&1u16.to_le_bytes());
    h.extend_from_slice(&RATE.to_le_bytes());
    h.extend_from_slice(&(RATE * 2).to_le_bytes());
    h.extend_from_slice(&2u16.to_le_bytes());
    h.extend_from_slice(&16u16.to_le_bytes());
    h.extend_from_slice(b"data");
    h.extend_from_slice(&data_len.to_le_bytes());
    h
}

fn pcm_bytes(samples: &[i16]) -> Vec<u8> {
    samples.iter().flat_map(|s| s.to_le_bytes()).collect()
}

fn wav_bytes(samples: &[i16]) -> Vec<u8> {
    let pcm = pcm_bytes(samples);
    let mut out = wav_header(pcm.len() as u32);
    out.extend_from_slice(&pcm);
    out
}

fn wav_response(samples: Vec<i16>) -> Response {
    ([(header::CONTENT_TYPE, "audio/wav")], wav_bytes(&samples)).into_response()
}

fn check_text(body: &Value, key: &str) -> Result<String, Response> {
    match body.get(key).and_then(Value::as_str) {
        Some(t) if !t.trim().is_empty() => Ok(t.to_string()),
        Some(_) => Err(error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "empty_text",
            "text is empty",
        )),
        None => Err(error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_input",
            &format!("{key} is required"),
        )),
    }
}

fn check_voice(s: &Shared, body: &Value, key: &str) -> Result<(), Response> {
    let Some(v) = body.get(key).and_then(Value::as_str) else {
        return Ok(());
    };
    let known = s.0.lock().voices.iter().any(|x| x["id"] == v)
        || v == "en_US-joe-medium"
        || vctts_server::wire::OPENAI_VOICES.contains(&v);
    if known {
        Ok(())
    } else {
        Err(error(
            StatusCode::NOT_FOUND,
            "voice_not_found",
            &format!("voice {v:?} not found"),
        ))
    }
}

async fn synthesize(State(s): State<Shared>, Json(body): Json<Value>) -> Response {
    count(&s, "/api/v3/synthesize");
    if let Err(r) = check_text(&body, "text").and_then(|_| check_voice(&s, &body, "voice")) {
        return r;
    }
    let samples = tone(0.8, 220.0);
    if body["format"] == "pcm" {
        return (
            [(header::CONTENT_TYPE, format!("audio/pcm;rate={RATE}"))],
            pcm_bytes(&samples),
        )
            .into_response();
    }
    let mut res = wav_response(samples);
    res.headers_mut()
        .insert("x-node-id", HeaderValue::from_static("node-a"));
    res
}

async fn synthesize_stream(State(s): State<Shared>, Json(body): Json<Value>) -> Response {
    count(&s, "/api/v3/synthesize/stream");
    if let Err(r) = check_text(&body, "text").and_then(|_| check_voice(&s, &body, "voice")) {
        return r;
    }
    // A streaming WAV: unknown sizes, then PCM in uneven chunks (one splits a sample).
    let mut header = wav_header(u32::MAX);
    header[4..8].copy_from_slice(&u32::MAX.to_le_bytes());
    let pcm = pcm_bytes(&tone(1.0, 262.0));
    let mut parts = vec![Bytes::from(header)];
    let cuts = [0usize, 4001, 12_000, 25_001, 33_000, pcm.len()];
    for w in cuts.windows(2) {
        parts.push(Bytes::copy_from_slice(&pcm[w[0]..w[1]]));
    }
    let stream = futures::stream::iter(parts.into_iter().map(Ok::<_, Infallible>));
    ([(header::CONTENT_TYPE, "audio/wav")], Body::from_stream(stream)).into_response()
}

async fn batch(
    State(s): State<Shared>,
    Query(q): Query<HashMap<String, String>>,
    Json(body): Json<Value>,
) -> Response {
    count(&s, "/api/v3/synthesize/batch");
    let Some(items) = body["items"].as_array() else {
        return error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_input",
            "items must be a list",
        );
    };
    if q.get("format").map(String::as_str) == Some("zip") {
        return error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_input",
            "the fake does not make ZIPs",
        );
    }
    use base64::Engine as _;
    let results: Vec<Value> = items
        .iter()
        .enumerate()
        .map(|(i, it)| match check_text(it, "text") {
            Ok(_) => json!({"index": i, "status": 200, "node_id": "node-a", "engine": "openvoice", "content_type": "audio/wav",
                "sample_rate": RATE, "duration_seconds": 0.3,
                "audio_base64": base64::engine::general_purpose::STANDARD.encode(wav_bytes(&tone(0.3, 440.0)))}),
            Err(_) => json!({"index": i, "status": 422, "error": {"code": "empty_text", "message": "text is empty", "request_id": null}}),
        })
        .collect();
    let failed = results.iter().filter(|r| r["status"] != 200).count();
    Json(json!({"items": results, "succeeded": items.len() - failed, "failed": failed})).into_response()
}

async fn read_multipart(
    mut m: Multipart,
) -> Result<(Option<(String, Bytes)>, HashMap<String, String>), Response> {
    let mut file = None;
    let mut fields = HashMap::new();
    loop {
        let next = m
            .next_field()
            .await
            .map_err(|e| error(StatusCode::BAD_REQUEST, "invalid_input", &e.to_string()))?;
        let Some(f) = next else { break };
        let name = f.name().unwrap_or_default().to_string();
        if name == "audio" {
            let fname = f.file_name().unwrap_or("upload").to_string();
            let data = f
                .bytes()
                .await
                .map_err(|e| error(StatusCode::BAD_REQUEST, "invalid_input", &e.to_string()))?;
            file = Some((fname, data));
        } else {
            let text = f
                .text()
                .await
                .map_err(|e| error(StatusCode::BAD_REQUEST, "invalid_input", &e.to_string()))?;
            fields.insert(name, text);
        }
    }
    Ok((file, fields))
}

async fn extract_voice(State(s): State<Shared>, m: Multipart) -> Response {
    count(&s, "/api/v3/extract_voice");
    let (file, fields) = match read_multipart(m).await {
        Ok(v) => v,
        Err(r) => return r,
    };
    let Some((_, data)) = file else {
        return error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_input",
            "the audio part is required",
        );
    };
    if !data.starts_with(b"RIFF") {
        return error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "audio_decode_failed",
            "not a WAV file",
        );
    }
    let Some(name) = fields.get("name").filter(|n| !n.trim().is_empty()) else {
        return error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_input",
            "name is required",
        );
    };
    let id = fields.get("voice_id").cloned().unwrap_or_else(|| {
        name.to_ascii_lowercase()
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
            .collect()
    });
    let quality = json!({"duration_seconds": 1.0, "sample_rate": RATE, "peak_dbfs": -6.0, "rms_dbfs": -20.0,
        "loudness_lufs": -20.0, "clipping_ratio": 0.0, "silence_ratio": 0.1, "snr_db": 30.0, "warnings": [], "usable": true});
    let voice = json!({"id": id, "name": name, "language": fields.get("language"), "transcript": fields.get("transcript"),
        "engines": ["openvoice"], "reference_seconds": 1.0, "created_at": 1_764_000_100u64, "quality": quality});
    s.0.lock().voices.insert(0, voice.clone());
    Json(json!({"voice": voice, "quality": quality, "engines": [{"engine": "openvoice", "ok": true, "node_id": "node-a", "error": null}]}))
        .into_response()
}

async fn preprocess(State(s): State<Shared>, m: Multipart) -> Response {
    count(&s, "/api/v3/preprocess");
    match read_multipart(m).await {
        Ok((Some((_, data)), _)) if data.starts_with(b"RIFF") => {
            ([(header::CONTENT_TYPE, "audio/wav")], data).into_response()
        }
        Ok(_) => error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "audio_decode_failed",
            "send a WAV file as audio",
        ),
        Err(r) => r,
    }
}

async fn speech(State(s): State<Shared>, Json(body): Json<Value>) -> Response {
    count(&s, "/v1/audio/speech");
    if let Err(r) = check_text(&body, "input").and_then(|_| check_voice(&s, &body, "voice")) {
        return r;
    }
    wav_response(tone(0.6, 247.0))
}

// ---- admin API ----------------------------------------------------------------

fn session_of(headers: &HeaderMap) -> Option<String> {
    let cookies = headers.get(header::COOKIE)?.to_str().ok()?;
    cookies.split(';').find_map(|c| {
        c.trim()
            .strip_prefix(&format!("{SESSION_COOKIE}="))
            .map(String::from)
    })
}

fn authorize(s: &Shared, headers: &HeaderMap, changes_state: bool) -> Result<(), Response> {
    let ok = session_of(headers).is_some_and(|t| s.0.lock().sessions.contains(&t));
    if !ok {
        return Err(error(StatusCode::UNAUTHORIZED, "unauthorized", "sign in first"));
    }
    if changes_state && headers.get("x-requested-with").and_then(|v| v.to_str().ok()) != Some("vctts") {
        s.0.lock().csrf_refusals += 1;
        return Err(error(
            StatusCode::FORBIDDEN,
            "forbidden",
            "missing X-Requested-With: vctts",
        ));
    }
    Ok(())
}

async fn login(State(s): State<Shared>, headers: HeaderMap, Json(body): Json<Value>) -> Response {
    if headers.get("x-requested-with").and_then(|v| v.to_str().ok()) != Some("vctts") {
        s.0.lock().csrf_refusals += 1;
        return error(
            StatusCode::FORBIDDEN,
            "forbidden",
            "missing X-Requested-With: vctts",
        );
    }
    if body["username"] != "admin" || body["password"] != PASSWORD {
        return error(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "wrong user name or password",
        );
    }
    let token = {
        let mut st = s.0.lock();
        st.next_id += 1;
        let t = format!("tok{}x{}", st.next_id, st.sessions.len());
        st.sessions.push(t.clone());
        t
    };
    let cookie = format!("{SESSION_COOKIE}={token}; HttpOnly; SameSite=Strict; Path=/");
    ([(header::SET_COOKIE, cookie)], Json(json!({"username": "admin"}))).into_response()
}

async fn logout(State(s): State<Shared>, headers: HeaderMap) -> Response {
    if let Err(r) = authorize(&s, &headers, true) {
        return r;
    }
    let t = session_of(&headers).unwrap_or_default();
    s.0.lock().sessions.retain(|x| *x != t);
    let cookie = format!("{SESSION_COOKIE}=; Max-Age=0; Path=/");
    ([(header::SET_COOKIE, cookie)], Json(json!({"ok": true}))).into_response()
}

async fn me(State(s): State<Shared>, headers: HeaderMap) -> Response {
    match authorize(&s, &headers, false) {
        Ok(()) => Json(json!({"username": "admin"})).into_response(),
        Err(r) => r,
    }
}

async fn admin_nodes(State(s): State<Shared>, headers: HeaderMap) -> Response {
    if let Err(r) = authorize(&s, &headers, false) {
        return r;
    }
    let nodes: Vec<Value> =
        s.0.lock()
            .nodes
            .iter()
            .map(|n| {
                let mut n = n.clone();
                n["model_loaded"] = json!(matches!(n["state"].as_str(), Some("ready") | Some("busy")));
                n["reason"] = Value::Null;
                n["local"] = json!(false);
                n["supervised"] = Value::Null;
                n
            })
            .collect();
    Json(json!({ "nodes": nodes })).into_response()
}

async fn node_action(
    State(s): State<Shared>,
    headers: HeaderMap,
    Path((id, action)): Path<(String, String)>,
) -> Response {
    if let Err(r) = authorize(&s, &headers, true) {
        return r;
    }
    let next = match action.as_str() {
        "standby" => "standby",
        "activate" | "start" | "restart" => "ready",
        "stop" => "stopped",
        _ => {
            return error(
                StatusCode::NOT_FOUND,
                "not_found",
                &format!("no action {action:?}"),
            );
        }
    };
    let (node, nodes) = {
        let mut st = s.0.lock();
        st.actions.push((id.clone(), action.clone()));
        let Some(n) = st.nodes.iter_mut().find(|n| n["id"] == id.as_str()) else {
            return error(StatusCode::NOT_FOUND, "unknown_node", &format!("no node {id:?}"));
        };
        if n["state"] == "offline" {
            return error(
                StatusCode::CONFLICT,
                "invalid_node_state",
                &format!("node {id} is offline"),
            );
        }
        n["state"] = json!(next);
        (n.clone(), st.nodes.clone())
    };
    let _ = s.1.send(("nodes".into(), json!({ "nodes": nodes })));
    Json(json!({ "node": node })).into_response()
}

async fn get_config(State(s): State<Shared>, headers: HeaderMap) -> Response {
    match authorize(&s, &headers, false) {
        Ok(()) => Json(s.0.lock().config.clone()).into_response(),
        Err(r) => r,
    }
}

fn invalid(field: &str, message: String) -> Response {
    (
        StatusCode::UNPROCESSABLE_ENTITY,
        Json(json!({"error": {"code": "invalid_config", "message": message, "field": field, "request_id": "fake"}})),
    )
        .into_response()
}

async fn put_config(State(s): State<Shared>, headers: HeaderMap, Json(body): Json<Value>) -> Response {
    if let Err(r) = authorize(&s, &headers, true) {
        return r;
    }
    // Partial, as settings.rs: only the fields given change; the whole update is checked first.
    let mut next = s.0.lock().config.clone();
    let Some(obj) = body.as_object() else {
        return invalid("body", "must be a JSON object".into());
    };
    let mut fields = Vec::new();
    for (k, v) in obj {
        match (k.as_str(), v) {
            ("limiter" | "announcements", Value::Object(inner)) => {
                fields.extend(inner.iter().map(|(ik, iv)| (format!("{k}.{ik}"), iv.clone())))
            }
            _ => fields.push((k.clone(), v.clone())),
        }
    }
    for (field, v) in fields {
        let one_of = |list: &[&str]| list.contains(&v.as_str().unwrap_or(""));
        let ok = match field.as_str() {
            "limiter.global_rpm" | "limiter.ip_rpm" | "announcements.ttl_seconds" => v.as_u64().is_some(),
            "limiter.concurrent_limit" => v.as_u64().is_some_and(|n| n >= 1),
            "limiter.enabled" => v.is_boolean(),
            "default_engine" => v.is_null() || one_of(&["openvoice", "xtts", "gpt-sovits"]),
            "balance_policy" => one_of(&[
                "p2c",
                "round_robin",
                "weighted_round_robin",
                "least_inflight",
                "voice_affinity",
            ]),
            "log_level" => one_of(&["TRACE", "DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"]),
            "announcements.type" => one_of(&["info", "warning", "error"]),
            _ => return invalid(&field, format!("{field}: unknown setting")),
        };
        if !ok {
            return invalid(&field, format!("{field}: must be a valid value, got {v}"));
        }
        match field.split_once('.') {
            Some((section, key)) => next[section][key] = v,
            None => next[field.as_str()] = v,
        }
    }
    let mut st = s.0.lock();
    st.config = next.clone();
    st.config_puts.push(body);
    Json(next).into_response()
}

async fn logs(
    State(s): State<Shared>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    if let Err(r) = authorize(&s, &headers, false) {
        return r;
    }
    let cat = q.get("category").cloned().unwrap_or_default();
    let records: Vec<Value> =
        s.0.lock()
            .logs
            .iter()
            .filter(|r| cat.is_empty() || r["category"] == cat.as_str())
            .cloned()
            .collect();
    Json(json!({ "records": records })).into_response()
}

async fn log_stream(
    State(s): State<Shared>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    if let Err(r) = authorize(&s, &headers, false) {
        return r;
    }
    // Like the gateway: a backlog (records after `since`) first, then live ones.
    let since = q.get("since").and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
    let backlog: Vec<Event> =
        s.0.lock()
            .logs
            .iter()
            .filter(|r| r["seq"].as_u64().unwrap_or(0) > since)
            .map(|r| Event::default().event("log").data(r.to_string()))
            .collect();
    Sse::new(event_stream(backlog, s.1.subscribe(), "log"))
        .keep_alive(KeepAlive::default())
        .into_response()
}

async fn announcements(State(s): State<Shared>, headers: HeaderMap) -> Response {
    match authorize(&s, &headers, false) {
        Ok(()) => Json(json!({"announcements": s.0.lock().announcements})).into_response(),
        Err(r) => r,
    }
}

async fn create_announcement(
    State(s): State<Shared>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    if let Err(r) = authorize(&s, &headers, true) {
        return r;
    }
    if !["info", "warning", "error"].contains(&body["type"].as_str().unwrap_or("")) {
        return invalid("type", "type must be info, warning or error".into());
    }
    if body["message"].as_str().is_none_or(|m| m.trim().is_empty()) {
        return invalid("message", "message must not be empty".into());
    }
    let mut st = s.0.lock();
    st.next_id += 1;
    let a = json!({"id": st.next_id.to_string(), "type": body["type"], "message": body["message"],
        "expires_at": body.get("expires_at").cloned().unwrap_or(Value::Null), "created_at": "2026-12-01T09:00:00Z"});
    st.announcements.push(a.clone());
    (StatusCode::CREATED, Json(a)).into_response()
}

async fn delete_announcement(
    State(s): State<Shared>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    if let Err(r) = authorize(&s, &headers, true) {
        return r;
    }
    let mut st = s.0.lock();
    let before = st.announcements.len();
    st.announcements.retain(|a| a["id"] != id.as_str());
    if st.announcements.len() == before {
        return error(
            StatusCode::NOT_FOUND,
            "not_found",
            &format!("no announcement {id:?}"),
        );
    }
    StatusCode::NO_CONTENT.into_response()
}

// ---- the OpenAPI description ---------------------------------------------------

/// An OpenAPI 3.1 document in the shape utoipa 5 writes (`$ref`s, nullable
/// unions as type arrays and `oneOf` with `null`), covering the public API.
pub fn openapi() -> Value {
    let audio = json!({"description": "audio", "content": {"audio/wav": {}, "audio/pcm": {}}});
    let json_ok = |schema: &str| json!({"description": "ok", "content": {"application/json": {"schema": {"$ref": format!("#/components/schemas/{schema}")}}}});
    let id_param = json!({"name": "id", "in": "path", "required": true, "schema": {"type": "string"}, "description": "voice id"});
    json!({
        "openapi": "3.1.0",
        "info": {"title": "vctts (fake)", "version": "0.1.0"},
        "paths": {
            "/api/v3/synthesize": {"post": {"tags": ["synthesis"], "summary": "Synthesize speech",
                "requestBody": {"required": true, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/SynthesizeRequest"}}}},
                "responses": {"200": audio}}},
            "/api/v3/synthesize/stream": {"post": {"tags": ["synthesis"], "summary": "Streaming synthesis",
                "requestBody": {"required": true, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/SynthesizeRequest"}}}},
                "responses": {"200": audio}}},
            "/api/v3/synthesize/batch": {"post": {"tags": ["synthesis"], "summary": "Batch synthesis",
                "parameters": [{"name": "format", "in": "query", "required": false, "schema": {"type": ["string", "null"]}, "description": "json or zip"}],
                "requestBody": {"required": true, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/BatchRequest"}}}},
                "responses": {"200": {"description": "results", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/BatchResponse"}}, "application/zip": {}}}}}},
            "/api/v3/extract_voice": {"post": {"tags": ["voices"], "summary": "Extract a voice",
                "requestBody": {"required": true, "content": {"multipart/form-data": {"schema": {"$ref": "#/components/schemas/ExtractVoiceForm"}}}},
                "responses": {"200": json_ok("ExtractVoiceResponse")}}},
            "/api/v3/voices": {"get": {"tags": ["voices"], "summary": "List voices",
                "parameters": [
                    {"name": "offset", "in": "query", "required": false, "schema": {"type": ["integer", "null"], "minimum": 0}},
                    {"name": "limit", "in": "query", "required": false, "schema": {"type": ["integer", "null"], "minimum": 1, "maximum": 200}}],
                "responses": {"200": json_ok("VoicesPage")}}},
            "/api/v3/voices/{id}": {
                "get": {"tags": ["voices"], "summary": "A voice", "parameters": [id_param.clone()], "responses": {"200": json_ok("VoiceDto")}},
                "delete": {"tags": ["voices"], "summary": "Delete a voice", "parameters": [id_param.clone()], "responses": {"200": {"description": "deleted"}}}},
            "/api/v3/voices/{id}/audio": {"get": {"tags": ["voices"], "summary": "Reference audio", "parameters": [id_param],
                "responses": {"200": {"description": "wav", "content": {"audio/wav": {}}}}}},
            "/api/v3/preprocess": {"post": {"tags": ["audio"], "summary": "Preprocess audio",
                "requestBody": {"required": true, "content": {"multipart/form-data": {"schema": {"$ref": "#/components/schemas/PreprocessForm"}}}},
                "responses": {"200": {"description": "processed", "content": {"audio/wav": {}, "application/json": {}}}}}},
            "/api/v3/engines": {"get": {"tags": ["service"], "summary": "Engines", "responses": {"200": json_ok("EnginesResponse")}}},
            "/api/v3/nodes": {"get": {"tags": ["service"], "summary": "Nodes", "responses": {"200": json_ok("NodesResponse")}}},
            "/api/v3/health": {"get": {"tags": ["service"], "summary": "Health", "responses": {"200": json_ok("HealthResponse")}}},
            "/api/v3/metrics": {"get": {"tags": ["service"], "summary": "Metrics",
                "parameters": [{"name": "format", "in": "query", "required": false, "schema": {"type": ["string", "null"], "enum": ["prometheus", "json", null]}}],
                "responses": {"200": {"description": "metrics", "content": {"text/plain": {}, "application/json": {}}}}}},
            "/api/v3/openapi.json": {"get": {"tags": ["service"], "summary": "This document", "responses": {"200": {"description": "OpenAPI", "content": {"application/json": {}}}}}},
            "/v1/audio/speech": {"post": {"tags": ["openai"], "summary": "OpenAI-compatible speech",
                "requestBody": {"required": true, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/SpeechRequest"}}}},
                "responses": {"200": audio}}}
        },
        "components": {"schemas": {
            "SamplingDto": {"type": "object", "properties": {
                "temperature": {"type": ["number", "null"], "format": "float", "description": "Softmax temperature, 0.01–5."},
                "top_k": {"type": ["integer", "null"], "minimum": 0},
                "top_p": {"type": ["number", "null"]},
                "repetition_penalty": {"type": ["number", "null"]},
                "noise_scale": {"type": ["number", "null"]},
                "noise_scale_w": {"type": ["number", "null"]},
                "tau": {"type": ["number", "null"]}}},
            "SynthesizeRequest": {"type": "object", "required": ["text"], "properties": {
                "text": {"type": "string", "description": "The text to speak."},
                "engine": {"type": ["string", "null"], "description": "xtts, openvoice or gpt-sovits"},
                "voice": {"type": ["string", "null"], "description": "A stored voice id or a built-in voice"},
                "language": {"type": ["string", "null"]},
                "speed": {"type": ["number", "null"], "format": "float"},
                "format": {"type": ["string", "null"], "description": "wav, wav_f32 or pcm"},
                "seed": {"type": ["integer", "null"], "format": "int64", "minimum": 0},
                "sampling": {"oneOf": [{"type": "null"}, {"$ref": "#/components/schemas/SamplingDto"}]}}},
            "BatchRequest": {"type": "object", "required": ["items"], "properties": {
                "items": {"type": "array", "items": {}},
                "format": {"type": ["string", "null"]}}},
            "BatchResponse": {"type": "object"},
            "ExtractVoiceForm": {"type": "object", "required": ["audio", "name"], "properties": {
                "audio": {"type": "string", "format": "binary"},
                "name": {"type": "string"},
                "voice_id": {"type": ["string", "null"]},
                "transcript": {"type": ["string", "null"]},
                "language": {"type": ["string", "null"]},
                "engines": {"type": ["string", "null"]}}},
            "PreprocessForm": {"type": "object", "required": ["audio"], "properties": {
                "audio": {"type": "string", "format": "binary"},
                "sample_rate": {"type": ["integer", "null"]},
                "mono": {"type": ["boolean", "null"]},
                "trim": {"type": ["boolean", "null"]},
                "loudness": {"type": ["string", "null"]},
                "response": {"type": ["string", "null"]}}},
            "ExtractVoiceResponse": {"type": "object"},
            "VoicesPage": {"type": "object"},
            "VoiceDto": {"type": "object"},
            "EnginesResponse": {"type": "object"},
            "NodesResponse": {"type": "object"},
            "HealthResponse": {"type": "object"},
            "SpeechRequest": {"type": "object", "required": ["model", "input", "voice"], "properties": {
                "model": {"type": "string"},
                "input": {"type": "string"},
                "voice": {"type": "string"},
                "response_format": {"type": ["string", "null"]},
                "speed": {"type": ["number", "null"]},
                "instructions": {"type": ["string", "null"]},
                "stream_format": {"type": ["string", "null"]}}}
        }}
    })
}
