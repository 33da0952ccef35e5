//! Handler-level tests with `Router::oneshot`: no process, no engine. A
//! gateway is built in-process on a manual clock; where a check needs an
//! engine's facts (languages, voices, text limits) a node is registered whose
//! endpoint accepts no connections, so anything that passes validation would
//! fail at the node — and these tests assert it never gets that far.

use crate::common::reference_wav;
use axum::body::Body;
use axum::extract::connect_info::MockConnectInfo;
use axum::http::{Request, StatusCode};
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::sync::Arc;
use tower::ServiceExt;
use vctts_core::clock::ManualClock;
use vctts_core::registry::{NodeInfo, NodeState};
use vctts_core::{EngineInfo, EngineKind};
use vctts_server::config::{Env, GatewayConfig};
use vctts_server::gateway::Gateway;

struct Harness {
    dir: tempfile::TempDir,
    gw: Arc<Gateway>,
}

impl Harness {
    fn new(extra: &str) -> Harness {
        let dir = tempfile::tempdir().unwrap();
        let yaml = format!(
            "storage: {{ data_dir: \"{}\" }}\n\
             limits: {{ max_text_chars: 100, max_body_size: 4KB, max_upload_size: 2MB, max_batch_items: 3 }}\n\
             {extra}\n",
            dir.path().join("data").display()
        );
        let cfg = GatewayConfig::parse(&yaml, &Env::empty()).unwrap();
        let clock = ManualClock::new();
        clock.set(std::time::Duration::from_secs(1000));
        let gw = Gateway::new(cfg, Arc::new(clock)).unwrap();
        Harness { dir, gw }
    }

    /// Registers an OpenVoice node that accepts no connections.
    fn with_node(self, cloning: bool) -> Harness {
        let info = EngineInfo {
            kind: EngineKind::OpenVoice,
            name: "OpenVoice v2".into(),
            languages: vec!["en".into()],
            default_language: "en".into(),
            sample_rate: 22050,
            streaming: true,
            max_text_chars: 80,
            max_sentence_chars: 400,
            needs_transcript: false,
            cloning,
            builtin_voices: vec!["en_US-joe-medium".into()],
        };
        let mut node = NodeInfo::new("openvoice-dead", EngineKind::OpenVoice, "http://127.0.0.1:9");
        node.capacity = 4;
        self.gw
            .register_remote(node, NodeState::Ready, Some(info), None)
            .unwrap();
        self
    }

    fn app(&self, ip: [u8; 4]) -> axum::Router {
        vctts_server::app::router(self.gw.clone()).layer(MockConnectInfo(SocketAddr::from((ip, 40000))))
    }

    async fn send(&self, req: Request<Body>) -> (StatusCode, axum::http::HeaderMap, Vec<u8>) {
        let res = self.app([10, 0, 0, 1]).oneshot(req).await.unwrap();
        let status = res.status();
        let headers = res.headers().clone();
        let body = axum::body::to_bytes(res.into_body(), usize::MAX).await.unwrap();
        (status, headers, body.to_vec())
    }

    async fn json(&self, method: &str, uri: &str, body: Value) -> (StatusCode, Value) {
        self.raw(method, uri, "application/json", body.to_string().into_bytes())
            .await
    }

    async fn raw(&self, method: &str, uri: &str, ct: &str, body: Vec<u8>) -> (StatusCode, Value) {
        let req = Request::builder()
            .method(method)
            .uri(uri)
            .header("content-type", ct)
            .body(Body::from(body))
            .unwrap();
        let (status, headers, body) = self.send(req).await;
        let v: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        if !status.is_success() {
            // Every error carries the request id, in the header and the body.
            let rid = headers["x-request-id"].to_str().unwrap();
            assert_eq!(v["error"]["request_id"], rid, "{v}");
        }
        (status, v)
    }

    async fn get(&self, uri: &str) -> (StatusCode, Value) {
        let req = Request::builder().uri(uri).body(Body::empty()).unwrap();
        let (status, _, body) = self.send(req).await;
        (status, serde_json::from_slice(&body).unwrap_or(Value::Null))
    }

    fn stored_files(&self) -> usize {
        std::fs::read_dir(self.dir.path().join("data/voices"))
            .map(|d| d.count())
            .unwrap_or(0)
    }
}

/// One bad-input case: the status and code it must get.
async fn expect(h: &Harness, method: &str, uri: &str, ct: &str, body: &[u8], status: u16, code: &str) {
    let (s, v) = h.raw(method, uri, ct, body.to_vec()).await;
    assert_eq!(
        (s.as_u16(), v["error"]["code"].as_str().unwrap_or("")),
        (status, code),
        "{method} {uri} {}: {v}",
        String::from_utf8_lossy(&body[..body.len().min(80)])
    );
}

fn multipart(parts: &[(&str, Option<&str>, &[u8])]) -> (String, Vec<u8>) {
    let boundary = "XyZvcttsBoundary";
    let mut body = Vec::new();
    for (name, file, data) in parts {
        body.extend_from_slice(format!("--{boundary}\r\n").as_bytes());
        match file {
            Some(f) => body.extend_from_slice(
                format!(
                    "Content-Disposition: form-data; name=\"{name}\"; filename=\"{f}\"\r\nContent-Type: application/octet-stream\r\n\r\n"
                )
                .as_bytes(),
            ),
            None => body.extend_from_slice(format!("Content-Disposition: form-data; name=\"{name}\"\r\n\r\n").as_bytes()),
        }
        body.extend_from_slice(data);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

#[tokio::test]
async fn synthesis_endpoints_refuse_bad_input_with_their_codes() {
    let h = Harness::new("").with_node(false);
    let long = "a".repeat(101);
    let engine_long = "a".repeat(90);
    for path in ["/api/v3/synthesize", "/api/v3/synthesize/stream"] {
        let j = "application/json";
        expect(
            &h,
            "POST",
            path,
            "text/plain",
            b"{\"text\":\"hi\"}",
            415,
            "unsupported_media_type",
        )
        .await;
        expect(&h, "POST", path, j, b"{\"text\":", 400, "malformed_json").await;
        expect(&h, "POST", path, j, b"not json", 400, "malformed_json").await;
        expect(
            &h,
            "POST",
            path,
            j,
            b"{\"text\":\"hi\",\"colour\":1}",
            422,
            "invalid_input",
        )
        .await;
        expect(&h, "POST", path, j, b"{\"txt\":\"hi\"}", 422, "invalid_input").await;
        expect(&h, "POST", path, j, b"{\"text\":5}", 422, "invalid_input").await;
        expect(&h, "POST", path, j, b"{\"text\":\"   \"}", 422, "empty_text").await;
        let body = json!({ "text": long }).to_string();
        expect(&h, "POST", path, j, body.as_bytes(), 422, "text_too_long").await;
        // The engine's own limit (80) is below the service's (100).
        let body = json!({ "text": engine_long }).to_string();
        expect(&h, "POST", path, j, body.as_bytes(), 422, "text_too_long").await;
        let big = json!({ "text": "x".repeat(5000) }).to_string();
        expect(&h, "POST", path, j, big.as_bytes(), 413, "payload_too_large").await;
        expect(
            &h,
            "POST",
            path,
            j,
            b"{\"text\":\"hi\",\"engine\":\"melo\"}",
            422,
            "unknown_engine",
        )
        .await;
        expect(
            &h,
            "POST",
            path,
            j,
            b"{\"text\":\"hi\",\"voice\":\"nobody\"}",
            404,
            "voice_not_found",
        )
        .await;
        expect(
            &h,
            "POST",
            path,
            j,
            b"{\"text\":\"hi\",\"voice\":\"../../etc/passwd\"}",
            400,
            "invalid_voice_id",
        )
        .await;
        expect(
            &h,
            "POST",
            path,
            j,
            b"{\"text\":\"hi\",\"voice\":\"a/b\"}",
            400,
            "invalid_voice_id",
        )
        .await;
        expect(
            &h,
            "POST",
            path,
            j,
            b"{\"text\":\"hi\",\"language\":\"fr\"}",
            422,
            "unsupported_language",
        )
        .await;
        expect(
            &h,
            "POST",
            path,
            j,
            b"{\"text\":\"hi\",\"format\":\"m4b\"}",
            422,
            "invalid_input",
        )
        .await;
        expect(
            &h,
            "POST",
            path,
            j,
            b"{\"text\":\"hi\",\"speed\":9}",
            422,
            "invalid_input",
        )
        .await;
        expect(
            &h,
            "POST",
            path,
            j,
            b"{\"text\":\"hi\",\"sampling\":{\"heat\":1}}",
            422,
            "invalid_input",
        )
        .await;
        // An engine with no node at all.
        expect(
            &h,
            "POST",
            path,
            j,
            b"{\"text\":\"hi\",\"engine\":\"xtts\"}",
            503,
            "no_node_available",
        )
        .await;
    }
    expect(
        &h,
        "POST",
        "/api/v3/synthesize/stream",
        "application/json",
        b"{\"text\":\"hi\",\"format\":\"wav_f32\"}",
        422,
        "invalid_input",
    )
    .await;
}

#[tokio::test]
async fn openai_speech_refuses_what_it_cannot_do() {
    let h = Harness::new("").with_node(false);
    let j = "application/json";
    let p = "/v1/audio/speech";
    expect(
        &h,
        "POST",
        p,
        j,
        br#"{"model":"tts-1","input":"hi","voice":"alloy","response_format":"ogg"}"#,
        400,
        "invalid_input",
    )
    .await;
    expect(
        &h,
        "POST",
        p,
        j,
        br#"{"model":"melo","input":"hi","voice":"alloy"}"#,
        400,
        "invalid_input",
    )
    .await;
    expect(
        &h,
        "POST",
        p,
        j,
        br#"{"model":"tts-1","input":"hi","voice":"alloy","extra":1}"#,
        400,
        "invalid_input",
    )
    .await;
    expect(
        &h,
        "POST",
        p,
        j,
        br#"{"model":"tts-1","input":"","voice":"alloy"}"#,
        400,
        "empty_text",
    )
    .await;
    expect(
        &h,
        "POST",
        p,
        j,
        br#"{"model":"tts-1","input":"hi","voice":"../x"}"#,
        400,
        "invalid_voice_id",
    )
    .await;
    expect(
        &h,
        "POST",
        p,
        j,
        br#"{"model":"tts-1","input":"hi","voice":"ghost"}"#,
        404,
        "voice_not_found",
    )
    .await;
    expect(&h, "POST", p, "text/plain", b"x", 415, "unsupported_media_type").await;
}

#[tokio::test]
async fn batch_limits_and_per_item_status() {
    let h = Harness::new("").with_node(false);
    let p = "/api/v3/synthesize/batch";
    let j = "application/json";
    let four = json!({ "items": [{"text":"a"},{"text":"b"},{"text":"c"},{"text":"d"}] }).to_string();
    expect(&h, "POST", p, j, four.as_bytes(), 413, "batch_too_large").await;
    expect(&h, "POST", p, j, br#"{"items":[]}"#, 422, "invalid_input").await;
    expect(
        &h,
        "POST",
        p,
        j,
        br#"{"items":[{"text":"a"}],"format":"tar"}"#,
        422,
        "invalid_input",
    )
    .await;
    expect(
        &h,
        "POST",
        &format!("{p}?format=tar"),
        j,
        br#"{"items":[{"text":"a"}]}"#,
        422,
        "invalid_input",
    )
    .await;
    expect(
        &h,
        "POST",
        &format!("{p}?colour=1"),
        j,
        br#"{"items":[{"text":"a"}]}"#,
        400,
        "invalid_query",
    )
    .await;
    expect(
        &h,
        "POST",
        p,
        j,
        br#"{"items":[{"text":"a"}],"x":1}"#,
        422,
        "invalid_input",
    )
    .await;
    // Every item fails in its own way; the batch itself succeeds.
    let (s, v) = h
        .json(
            "POST",
            p,
            json!({ "items": [{"text": ""}, {"text": "hi", "voice": "../x"}, {"text": "hi", "nope": 1}] }),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    let codes: Vec<(u64, &str)> = v["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            (
                i["status"].as_u64().unwrap(),
                i["error"]["code"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        codes,
        vec![
            (422, "empty_text"),
            (400, "invalid_voice_id"),
            (422, "invalid_input")
        ]
    );
    assert_eq!(
        (v["succeeded"].as_u64(), v["failed"].as_u64()),
        (Some(0), Some(3))
    );
}

#[tokio::test]
async fn no_ready_node_is_503_with_retry_after_and_the_engine() {
    let h = Harness::new("");
    let req = Request::builder()
        .method("POST")
        .uri("/api/v3/synthesize")
        .header("content-type", "application/json")
        .body(Body::from(r#"{"text":"hello","engine":"openvoice"}"#))
        .unwrap();
    let (status, headers, body) = h.send(req).await;
    assert_eq!(status, 503);
    assert_eq!(headers["retry-after"], "1");
    assert_eq!(headers["x-engine"], "openvoice");
    let v: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(v["error"]["code"], "no_node_available");
    assert_eq!(v["error"]["engine"], "openvoice");
    // Live but not ready.
    let (s, v) = h.get("/api/v3/health").await;
    assert_eq!(
        (s.as_u16(), v["live"].as_bool(), v["ready"].as_bool()),
        (503, Some(true), Some(false))
    );
    let (s, _) = h.get("/api/v3/health/live").await;
    assert_eq!(s, 200);
    let (s, _) = h.get("/api/v3/health/ready").await;
    assert_eq!(s, 503);
    // Once a node is ready, the service is ready.
    let h = h.with_node(false);
    let (s, v) = h.get("/api/v3/health").await;
    assert_eq!((s.as_u16(), v["engines"]["openvoice"].as_u64()), (200, Some(1)));
}

#[tokio::test]
async fn voice_endpoints_refuse_bad_ids_and_unknown_voices() {
    let h = Harness::new("");
    let (s, v) = h.get("/api/v3/voices").await;
    assert_eq!((s.as_u16(), v["total"].as_u64()), (200, Some(0)));
    for (uri, status, code) in [
        ("/api/v3/voices/..%2F..%2Fetc%2Fpasswd", 400, "invalid_voice_id"),
        ("/api/v3/voices/..", 400, "invalid_voice_id"),
        ("/api/v3/voices/.hidden/audio", 400, "invalid_voice_id"),
        ("/api/v3/voices/nobody", 404, "voice_not_found"),
        ("/api/v3/voices/nobody/audio", 404, "voice_not_found"),
        ("/api/v3/voices?limit=0", 422, "invalid_input"),
        ("/api/v3/voices?limit=lots", 400, "invalid_query"),
        ("/api/v3/voices?colour=red", 400, "invalid_query"),
        ("/api/v3/nowhere", 404, "not_found"),
    ] {
        let (s, v) = h.get(uri).await;
        assert_eq!(
            (s.as_u16(), v["error"]["code"].as_str().unwrap_or("")),
            (status, code),
            "{uri}: {v}"
        );
    }
    expect(
        &h,
        "DELETE",
        "/api/v3/voices/nobody",
        "application/json",
        b"",
        404,
        "voice_not_found",
    )
    .await;
    expect(
        &h,
        "DELETE",
        "/api/v3/voices/a%5Cb",
        "application/json",
        b"",
        400,
        "invalid_voice_id",
    )
    .await;
    expect(
        &h,
        "PUT",
        "/api/v3/voices/nobody",
        "application/json",
        b"",
        405,
        "method_not_allowed",
    )
    .await;
}

#[tokio::test]
async fn extract_voice_refuses_bad_uploads_and_stores_nothing() {
    let h = Harness::new("").with_node(false);
    let p = "/api/v3/extract_voice";
    let speech = reference_wav();
    expect(
        &h,
        "POST",
        p,
        "application/json",
        b"{}",
        415,
        "unsupported_media_type",
    )
    .await;
    let (ct, body) = multipart(&[("audio", Some("x.wav"), b"RIFF\x00\x00garbage that is not audio")]);
    expect(&h, "POST", p, &ct, &body, 422, "audio_decode_failed").await;
    let (ct, body) = multipart(&[("audio", Some("x.mp3"), &[0x55u8; 4096])]);
    expect(&h, "POST", p, &ct, &body, 422, "audio_decode_failed").await;
    let (ct, body) = multipart(&[("audio", Some("x.wav"), b"")]);
    expect(&h, "POST", p, &ct, &body, 422, "audio_decode_failed").await;
    let (ct, body) = multipart(&[("name", None, b"no audio")]);
    expect(&h, "POST", p, &ct, &body, 422, "invalid_input").await;
    let (ct, body) = multipart(&[("audio", Some("a.wav"), &speech), ("colour", None, b"red")]);
    expect(&h, "POST", p, &ct, &body, 422, "invalid_input").await;
    let (ct, body) = multipart(&[
        ("audio", Some("a.wav"), &speech),
        ("voice_id", None, b"../../etc"),
    ]);
    expect(&h, "POST", p, &ct, &body, 400, "invalid_voice_id").await;
    let (ct, body) = multipart(&[
        ("audio", Some("a.wav"), &speech),
        ("engines", None, b"openvoice,melo"),
    ]);
    expect(&h, "POST", p, &ct, &body, 422, "unknown_engine").await;
    let (ct, body) = multipart(&[("audio", Some("a.wav"), &speech), ("language", None, b"e n")]);
    expect(&h, "POST", p, &ct, &body, 422, "invalid_input").await;
    let big = vec![0u8; 3 << 20];
    let (ct, body) = multipart(&[("audio", Some("big.wav"), &big)]);
    expect(&h, "POST", p, &ct, &body, 413, "payload_too_large").await;
    let (ct, mut body) = multipart(&[("audio", Some("a.wav"), &speech)]);
    body.truncate(body.len() / 2);
    expect(&h, "POST", p, &ct, &body, 400, "malformed_multipart").await;
    // Real speech, but the only node cannot be reached: the extraction fails there.
    let (ct, body) = multipart(&[("audio", Some("a.wav"), &speech), ("name", None, b"Front")]);
    expect(&h, "POST", p, &ct, &body, 502, "node_unavailable").await;
    assert_eq!(h.gw.store().count().unwrap(), 0);
    assert_eq!(h.stored_files(), 0);
}

#[tokio::test]
async fn preprocess_cleans_real_speech_and_reports_quality() {
    let h = Harness::new("");
    let speech = reference_wav();
    let (ct, body) = multipart(&[("audio", Some("a.wav"), &speech), ("sample_rate", None, b"16000")]);
    let req = Request::builder()
        .method("POST")
        .uri("/api/v3/preprocess")
        .header("content-type", ct)
        .body(Body::from(body))
        .unwrap();
    let (status, headers, body) = h.send(req).await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    assert_eq!(headers["content-type"], "audio/wav");
    let wav = crate::common::parse_wav(&body);
    assert_eq!(wav.rate, 16000);
    assert!(
        wav.seconds() > 5.0 && wav.rms() > 0.01,
        "{} s, rms {}",
        wav.seconds(),
        wav.rms()
    );
    let q: Value = serde_json::from_str(headers["x-quality-report"].to_str().unwrap()).unwrap();
    assert_eq!(q["sample_rate"], 16000);
    assert!(q["speech_seconds"].as_f64().unwrap() > 3.0, "{q}");

    let (ct, body) = multipart(&[
        ("audio", Some("a.wav"), &speech),
        ("response", None, b"json"),
        ("loudness", None, b"none"),
    ]);
    let (s, v) = h.raw("POST", "/api/v3/preprocess", &ct, body).await;
    assert_eq!(s, 200, "{v}");
    assert!(v["audio_base64"].as_str().unwrap().len() > 1000);
    assert_eq!(v["input_quality"]["sample_rate"], 48000);

    let p = "/api/v3/preprocess";
    let (ct, body) = multipart(&[("audio", Some("a.wav"), &speech), ("mono", None, b"false")]);
    expect(&h, "POST", p, &ct, &body, 422, "invalid_input").await;
    let (ct, body) = multipart(&[("audio", Some("a.wav"), &speech), ("sample_rate", None, b"12")]);
    expect(&h, "POST", p, &ct, &body, 422, "invalid_input").await;
    let (ct, body) = multipart(&[("audio", Some("a.wav"), &speech), ("loudness", None, b"loud")]);
    expect(&h, "POST", p, &ct, &body, 422, "invalid_input").await;
    let (ct, body) = multipart(&[("audio", Some("a.wav"), b"not audio at all")]);
    expect(&h, "POST", p, &ct, &body, 422, "audio_decode_failed").await;
    expect(
        &h,
        "POST",
        p,
        "application/json",
        b"{}",
        415,
        "unsupported_media_type",
    )
    .await;
}

async fn limited(h: &Harness, ip: [u8; 4], uri: &str) -> (u16, axum::http::HeaderMap, Value) {
    let req = Request::builder().uri(uri).body(Body::empty()).unwrap();
    let res = h.app(ip).oneshot(req).await.unwrap();
    let status = res.status().as_u16();
    let headers = res.headers().clone();
    let body = axum::body::to_bytes(res.into_body(), usize::MAX).await.unwrap();
    (
        status,
        headers,
        serde_json::from_slice(&body).unwrap_or(Value::Null),
    )
}

fn assert_429(layer: &str, r: &(u16, axum::http::HeaderMap, Value), limit: u32) {
    let (status, h, v) = r;
    assert_eq!(*status, 429, "{v}");
    assert_eq!(v["error"]["code"], "rate_limited");
    assert_eq!(v["error"]["limit_layer"], layer);
    assert_eq!(h["x-ratelimit-layer"], layer);
    assert_eq!(h["ratelimit-limit"], limit.to_string().as_str());
    assert_eq!(h["ratelimit-remaining"], "0");
    let retry: u64 = h["retry-after"].to_str().unwrap().parse().unwrap();
    let reset: u64 = h["ratelimit-reset"].to_str().unwrap().parse().unwrap();
    assert!(retry >= 1 && reset >= 1);
}

#[tokio::test]
async fn each_rate_limit_layer_answers_429_at_its_rate() {
    // Per IP: 3 per minute for each client; another client is unaffected.
    let h = Harness::new("limiter: { global_rpm: 0, ip_rpm: 3 }");
    for _ in 0..3 {
        assert_eq!(limited(&h, [10, 0, 0, 1], "/api/v3/engines").await.0, 200);
    }
    assert_429("ip", &limited(&h, [10, 0, 0, 1], "/api/v3/engines").await, 3);
    assert_eq!(limited(&h, [10, 0, 0, 2], "/api/v3/engines").await.0, 200);
    // Probes are never limited.
    assert_eq!(limited(&h, [10, 0, 0, 1], "/api/v3/health/live").await.0, 200);
    assert_eq!(limited(&h, [10, 0, 0, 1], "/api/v3/metrics").await.0, 200);

    // Per endpoint: 2 per minute on /engines, other endpoints free.
    let h = Harness::new("limiter: { global_rpm: 0, ip_rpm: 0, endpoints: { /api/v3/engines: 2 } }");
    for ip in [1, 2] {
        assert_eq!(limited(&h, [10, 0, 0, ip], "/api/v3/engines").await.0, 200);
    }
    assert_429(
        "endpoint",
        &limited(&h, [10, 0, 0, 3], "/api/v3/engines").await,
        2,
    );
    assert_eq!(limited(&h, [10, 0, 0, 3], "/api/v3/nodes").await.0, 200);

    // Per voice-id route template: the limit covers every id.
    let h = Harness::new("limiter: { global_rpm: 0, ip_rpm: 0, endpoints: { \"/api/v3/voices/{id}\": 1 } }");
    assert_eq!(limited(&h, [10, 0, 0, 1], "/api/v3/voices/a").await.0, 404);
    assert_429(
        "endpoint",
        &limited(&h, [10, 0, 0, 1], "/api/v3/voices/b").await,
        1,
    );

    // Global: 2 per minute across clients.
    let h = Harness::new("limiter: { global_rpm: 2, ip_rpm: 0 }");
    for ip in [1, 2] {
        assert_eq!(limited(&h, [10, 0, 0, ip], "/api/v3/voices").await.0, 200);
    }
    assert_429("global", &limited(&h, [10, 0, 0, 3], "/api/v3/voices").await, 2);
}

#[tokio::test]
async fn the_concurrency_cap_refuses_when_its_queue_is_full() {
    let h = Harness::new("limiter: { global_rpm: 0, ip_rpm: 0, concurrent_limit: 1, queue_size: 0 }");
    // A first request holds the only slot while its upload is still arriving.
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<bytes::Bytes, std::io::Error>>(1);
    let (ct, body) = multipart(&[("audio", Some("a.wav"), &reference_wav())]);
    tx.send(Ok(bytes::Bytes::copy_from_slice(&body[..100])))
        .await
        .unwrap();
    let slow = Request::builder()
        .method("POST")
        .uri("/api/v3/extract_voice")
        .header("content-type", ct)
        .body(Body::from_stream(tokio_stream::wrappers::ReceiverStream::new(rx)))
        .unwrap();
    let app = h.app([10, 0, 0, 1]);
    let mut first = Box::pin(app.oneshot(slow));
    // Drive it into the handler, where it waits for the rest of its upload.
    for _ in 0..10 {
        assert!(
            futures::poll!(first.as_mut()).is_pending(),
            "the upload is not complete"
        );
        tokio::task::yield_now().await;
    }
    let r = limited(&h, [10, 0, 0, 2], "/api/v3/voices").await;
    assert_429("concurrency", &r, 1);
    // The slot comes back when the first request ends.
    drop(tx);
    let status = first.await.unwrap().status();
    assert_eq!(status, 400, "the truncated upload is malformed");
    assert_eq!(limited(&h, [10, 0, 0, 2], "/api/v3/voices").await.0, 200);
}

#[tokio::test]
async fn cluster_endpoints_need_the_token() {
    let h = Harness::new("cluster: { token: \"0123456789abcdef0123\" }");
    let body = json!({
        "protocol": 1, "endpoint": "http://127.0.0.1:9", "engine": "openvoice", "info": null,
        "capacity": 1, "queue_size": 0, "weight": 1, "labels": {}, "version": "t",
        "state": "ready", "reason": null, "metrics": {}
    });
    for token in [None, Some("wrong-token-wrong-token")] {
        let mut req = Request::builder()
            .method("POST")
            .uri("/cluster/v1/register")
            .header("content-type", "application/json");
        if let Some(t) = token {
            req = req.header("x-cluster-token", t);
        }
        let (s, _, b) = h.send(req.body(Body::from(body.to_string())).unwrap()).await;
        let v: Value = serde_json::from_slice(&b).unwrap();
        assert_eq!(
            (s.as_u16(), v["error"]["code"].as_str().unwrap()),
            (401, "unauthorized"),
            "{v}"
        );
    }
    assert!(h.gw.registry().is_empty(), "nothing registered without the token");
    let req = Request::builder()
        .method("POST")
        .uri("/cluster/v1/register")
        .header("content-type", "application/json")
        .header("x-cluster-token", "0123456789abcdef0123")
        .body(Body::from(body.to_string()))
        .unwrap();
    let (s, _, b) = h.send(req).await;
    assert_eq!(s, 200, "{}", String::from_utf8_lossy(&b));
    assert_eq!(h.gw.registry().len(), 1);
    // A heartbeat for an id the gateway does not know tells the worker to register again.
    let req = Request::builder()
        .method("POST")
        .uri("/cluster/v1/heartbeat")
        .header("content-type", "application/json")
        .header("authorization", "Bearer 0123456789abcdef0123")
        .body(Body::from(
            json!({"node_id": "ghost", "state": "ready", "reason": null, "metrics": {}, "info": null})
                .to_string(),
        ))
        .unwrap();
    let (s, _, b) = h.send(req).await;
    let v: Value = serde_json::from_slice(&b).unwrap();
    assert_eq!(
        (s.as_u16(), v["error"]["code"].as_str().unwrap()),
        (404, "unknown_node")
    );
}

#[tokio::test]
async fn openapi_document_covers_every_public_route() {
    let h = Harness::new("");
    let (s, v) = h.get("/api/v3/openapi.json").await;
    assert_eq!(s, 200);
    assert_eq!(v["openapi"], "3.1.0");
    let paths = v["paths"].as_object().unwrap();
    for p in [
        "/api/v3/synthesize",
        "/api/v3/synthesize/stream",
        "/api/v3/synthesize/batch",
        "/api/v3/extract_voice",
        "/api/v3/voices",
        "/api/v3/voices/{id}",
        "/api/v3/voices/{id}/audio",
        "/api/v3/preprocess",
        "/api/v3/engines",
        "/api/v3/nodes",
        "/api/v3/health",
        "/api/v3/health/live",
        "/api/v3/health/ready",
        "/api/v3/metrics",
        "/api/v3/openapi.json",
        "/v1/audio/speech",
        "/v1/models",
        "/v1/models/{id}",
        "/v1/audio/voices",
    ] {
        assert!(paths.contains_key(p), "{p} missing from the OpenAPI document");
    }
    let schemas = &v["components"]["schemas"];
    let formats = schemas["AudioFormatName"]["enum"]
        .as_array()
        .expect("format enum");
    for f in ["wav", "wav_f32", "pcm", "mp3", "opus", "aac", "flac"] {
        assert!(formats.iter().any(|x| x == f), "{f} missing from {formats:?}");
    }
    let speech = schemas["SpeechFormatName"]["enum"]
        .as_array()
        .expect("response_format enum");
    assert_eq!(speech.len(), 6, "{speech:?}");
    assert!(schemas["OpenAiErrorBody"].is_object());
    let engines = schemas["EngineName"]["enum"].as_array().expect("engine enum");
    assert!(engines.iter().any(|e| e == "gpt-sovits"), "{engines:?}");
    let schemes = &v["components"]["securitySchemes"];
    assert_eq!(schemes["bearer"]["scheme"], "bearer");
    assert_eq!(schemes["api_key"]["name"], "X-API-Key");
    // Every operation documents the limiter's 429; those with a body 415.
    for (path, item) in paths {
        for (method, op) in item.as_object().unwrap() {
            if !["get", "post", "put", "delete", "patch"].contains(&method.as_str()) {
                continue;
            }
            let responses = op["responses"].as_object().unwrap();
            assert!(responses.contains_key("429"), "{method} {path} lacks 429");
            if op.get("requestBody").is_some() {
                assert!(responses.contains_key("415"), "{method} {path} lacks 415");
            }
        }
    }
    assert!(paths["/v1/audio/speech"]["post"]["responses"]["503"].is_object());
    assert!(paths["/api/v3/voices/{id}"].get("delete").is_some());
    assert!(v["components"]["schemas"]["ErrorBody"].is_object());
    assert!(v["components"]["schemas"]["SynthesizeRequest"].is_object());
}

#[tokio::test]
async fn metrics_count_requests_by_route() {
    let h = Harness::new("");
    h.get("/api/v3/voices/nobody").await;
    let req = Request::builder()
        .uri("/api/v3/metrics")
        .body(Body::empty())
        .unwrap();
    let (s, headers, body) = h.send(req).await;
    assert_eq!(s, 200);
    assert!(
        headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain")
    );
    let text = String::from_utf8(body).unwrap();
    assert!(
        text.contains(
            "vctts_http_requests_total{route=\"/api/v3/voices/{id}\",method=\"GET\",status=\"404\"} 1"
        ),
        "{text}"
    );
    assert!(text.contains("vctts_voices 0"), "{text}");
}

/// A request from `peer` carrying `X-Forwarded-For: forwarded`.
async fn forwarded_from(h: &Harness, peer: [u8; 4], forwarded: &str) -> u16 {
    let req = Request::builder()
        .uri("/api/v3/engines")
        .header("x-forwarded-for", forwarded)
        .body(Body::empty())
        .unwrap();
    h.app(peer).oneshot(req).await.unwrap().status().as_u16()
}

#[tokio::test]
async fn clients_behind_a_trusted_proxy_are_limited_by_their_own_address() {
    let h = Harness::new("server: { trusted_proxies: [10.0.0.0/8] }\nlimiter: { global_rpm: 0, ip_rpm: 2 }");
    // Two clients behind the proxy 10.0.0.1 each have their own budget; a
    // forged address on the left of the chain is not believed.
    for _ in 0..2 {
        assert_eq!(
            forwarded_from(&h, [10, 0, 0, 1], "6.6.6.6, 198.51.100.1").await,
            200
        );
    }
    assert_eq!(
        forwarded_from(&h, [10, 0, 0, 1], "7.7.7.7, 198.51.100.1").await,
        429
    );
    assert_eq!(forwarded_from(&h, [10, 0, 0, 1], "198.51.100.2").await, 200);
    // A client that is not a trusted proxy is limited by its own address,
    // whatever it claims.
    let h = Harness::new("limiter: { global_rpm: 0, ip_rpm: 2 }");
    assert_eq!(forwarded_from(&h, [192, 0, 2, 1], "198.51.100.1").await, 200);
    assert_eq!(forwarded_from(&h, [192, 0, 2, 1], "198.51.100.2").await, 200);
    assert_eq!(forwarded_from(&h, [192, 0, 2, 1], "198.51.100.3").await, 429);
}
