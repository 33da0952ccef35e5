//! The hardened serving path (issue 16): a control plane that is never
//! anonymous, bodies bounded before and after authentication, node answers
//! capped by what the request can produce, and the output-duration budget.
//!
//! Handler-level checks use an in-process gateway with `Router::oneshot`;
//! cluster checks start real processes on 127.0.0.1, plus, where a
//! misbehaving node is needed, a small HTTP node inside the test that
//! registers itself with the token like a worker would.

use crate::common::{Server, TOKEN, cluster_lock, error_code, http, models_dir, write};
use axum::body::Body;
use axum::extract::connect_info::MockConnectInfo;
use axum::http::{Request, StatusCode};
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tower::ServiceExt;
use vctts_core::clock::ManualClock;
use vctts_core::registry::{NodeInfo, NodeState};
use vctts_core::{EngineInfo, EngineKind};
use vctts_server::config::{Env, GatewayConfig};
use vctts_server::gateway::Gateway;
use vctts_server::logs::LogQuery;

pub(crate) fn engine_info() -> EngineInfo {
    EngineInfo {
        kind: EngineKind::OpenVoice,
        name: "OpenVoice v2".into(),
        languages: vec!["en".into()],
        default_language: "en".into(),
        sample_rate: 22050,
        streaming: true,
        max_text_chars: 5000,
        max_sentence_chars: 400,
        needs_transcript: false,
        cloning: false,
        builtin_voices: vec!["en_US-joe-medium".into()],
    }
}

/// An in-process gateway built from `yaml` (plus the data folder).
struct Local {
    dir: tempfile::TempDir,
    gw: Arc<Gateway>,
}

impl Local {
    fn new(yaml: &str) -> Local {
        let dir = tempfile::tempdir().unwrap();
        let yaml = format!(
            "storage: {{ data_dir: \"{}\" }}\n{yaml}\n",
            dir.path().join("data").display()
        );
        let cfg = GatewayConfig::parse(&yaml, &Env::empty()).unwrap();
        let clock = ManualClock::new();
        clock.set(Duration::from_secs(1000));
        let gw = Gateway::new(cfg, Arc::new(clock)).unwrap();
        Local { dir, gw }
    }

    /// Registers an OpenVoice node that accepts no connections.
    fn with_dead_node(self) -> Local {
        let mut node = NodeInfo::new("openvoice-dead", EngineKind::OpenVoice, "http://127.0.0.1:9");
        node.capacity = 4;
        self.gw
            .register_remote(node, NodeState::Ready, Some(engine_info()), None)
            .unwrap();
        self
    }

    async fn send(&self, req: Request<Body>) -> (StatusCode, Value) {
        let app = vctts_server::app::router(self.gw.clone())
            .layer(MockConnectInfo(SocketAddr::from(([10, 0, 0, 1], 40000))));
        let res = app.oneshot(req).await.unwrap();
        let status = res.status();
        let body = axum::body::to_bytes(res.into_body(), usize::MAX).await.unwrap();
        (status, serde_json::from_slice(&body).unwrap_or(Value::Null))
    }

    async fn post(&self, uri: &str, token: Option<&str>, body: Value) -> (StatusCode, Value) {
        let mut req = Request::builder()
            .method("POST")
            .uri(uri)
            .header("content-type", "application/json");
        if let Some(t) = token {
            req = req.header("x-cluster-token", t);
        }
        self.send(req.body(Body::from(body.to_string())).unwrap()).await
    }

    fn audit(&self) -> Vec<String> {
        let q = LogQuery {
            category: Some("audit".into()),
            ..LogQuery::default()
        };
        self.gw
            .ops()
            .logs
            .query(&q)
            .into_iter()
            .map(|r| r.message)
            .collect()
    }
}

pub(crate) fn register_body(endpoint: &str) -> Value {
    json!({
        "protocol": 1, "endpoint": endpoint, "engine": "openvoice", "info": engine_info(),
        "capacity": 4, "queue_size": 0, "weight": 1, "labels": {}, "version": "t",
        "state": "ready", "reason": null, "metrics": {}
    })
}

fn code(v: &Value) -> &str {
    v["error"]["code"].as_str().unwrap_or("")
}

#[tokio::test]
async fn a_gateway_without_a_token_generates_one_and_audits_cluster_calls() {
    let l = Local::new("");
    // The token was generated into the data folder, private to the owner.
    let path = l.dir.path().join("data/cluster.token");
    let token = std::fs::read_to_string(&path).unwrap().trim().to_string();
    assert_eq!(token.len(), 64);
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }
    // Anonymous membership and node actions are refused.
    let (s, v) = l
        .post("/cluster/v1/register", None, register_body("http://127.0.0.1:9"))
        .await;
    assert_eq!((s.as_u16(), code(&v)), (401, "unauthorized"), "{v}");
    let (s, _) = l.post("/cluster/v1/nodes/x/standby", None, json!({})).await;
    assert_eq!(s, 401);
    assert!(l.gw.registry().is_empty());
    // With the generated token a worker registers.
    let (s, v) = l
        .post(
            "/cluster/v1/register",
            Some(&token),
            register_body("http://127.0.0.1:9"),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(l.gw.registry().len(), 1);
    let id = v["node_id"].as_str().unwrap().to_string();
    // A restart keeps the same token.
    let again = Gateway::new(l.gw.config().clone(), Arc::new(ManualClock::new())).unwrap();
    drop(again);
    assert_eq!(std::fs::read_to_string(&path).unwrap().trim(), token);
    // Node actions through /cluster are audited like admin actions: the refused ones too.
    let (s, v) = l
        .post(&format!("/cluster/v1/nodes/{id}/stop"), Some(&token), json!({}))
        .await;
    assert!(s == 503 || s == 502, "the node is unreachable: {s} {v}");
    let audit = l.audit();
    assert!(
        audit
            .iter()
            .any(|m| m.starts_with("anonymous POST /cluster/v1/register") && m.contains("denied")),
        "{audit:?}"
    );
    assert!(
        audit
            .iter()
            .any(|m| m.starts_with("anonymous POST /cluster/v1/nodes/x/standby")),
        "{audit:?}"
    );
    assert!(
        audit
            .iter()
            .any(|m| m.starts_with("cluster-token POST /cluster/v1/register") && m.ends_with(": ok")),
        "{audit:?}"
    );
    assert!(
        audit
            .iter()
            .any(|m| m.starts_with(&format!("cluster-token POST /cluster/v1/nodes/{id}/stop"))),
        "{audit:?}"
    );
}

#[tokio::test]
async fn control_messages_are_small_and_refused_before_their_body_is_read() {
    let l = Local::new(&format!("cluster: {{ token: \"{TOKEN}\" }}"));
    // An anonymous body that never ends is answered at once: the token is
    // checked before anything is read.
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<bytes::Bytes, std::io::Error>>(1);
    tx.send(Ok(bytes::Bytes::from(vec![b' '; 1024]))).await.unwrap();
    let body = Body::from_stream(tokio_stream::wrappers::ReceiverStream::new(rx));
    let req = Request::builder()
        .method("POST")
        .uri("/cluster/v1/register")
        .header("content-type", "application/json")
        .body(body)
        .unwrap();
    let (s, v) = tokio::time::timeout(Duration::from_secs(20), l.send(req))
        .await
        .expect("the refusal must not wait for the body");
    assert_eq!((s.as_u16(), code(&v)), (401, "unauthorized"));
    drop(tx);
    // With the token, a control message over the limit is refused.
    let mut big = register_body("http://127.0.0.1:9");
    big["labels"] = json!({ "pad": "x".repeat(1 << 20) });
    let (s, v) = l.post("/cluster/v1/register", Some(TOKEN), big).await;
    assert_eq!((s.as_u16(), code(&v)), (413, "payload_too_large"), "{v}");
    assert!(l.gw.registry().is_empty());
}

#[tokio::test]
async fn one_request_cannot_ask_for_more_audio_than_the_budget() {
    let l = Local::new("limits: { max_output_duration: 60 }").with_dead_node();
    // 500 characters of digits read one by one: minutes of speech.
    let digits = "1234567890".repeat(50);
    for uri in ["/api/v3/synthesize", "/api/v3/synthesize/stream"] {
        let (s, v) = l.post(uri, None, json!({ "text": digits })).await;
        assert_eq!((s.as_u16(), code(&v)), (413, "output_too_long"), "{uri}: {v}");
    }
    // Batch items share one budget: each fits, together they do not.
    let prose = "The quick brown fox jumps over the lazy dog. ".repeat(12);
    let items: Vec<Value> = (0..3).map(|_| json!({ "text": prose })).collect();
    let (s, v) = l
        .post("/api/v3/synthesize/batch", None, json!({ "items": items }))
        .await;
    assert_eq!((s.as_u16(), code(&v)), (413, "output_too_long"), "{v}");
    // One such item passes the budget (and fails only at the dead node).
    let (s, v) = l.post("/api/v3/synthesize", None, json!({ "text": prose })).await;
    assert_ne!(code(&v), "output_too_long", "{s} {v}");
    // Punctuation has nothing to say.
    let (s, v) = l
        .post("/api/v3/synthesize", None, json!({ "text": "?!... ,;" }))
        .await;
    assert_eq!((s.as_u16(), code(&v)), (422, "empty_text"), "{v}");
}

#[tokio::test]
async fn standalone_serves_no_control_plane() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(&[
        "standalone",
        "--host",
        "127.0.0.1",
        "--port",
        "0",
        "--models",
        dir.path().join("no-models").to_str().unwrap(),
        "--data",
        dir.path().join("data").to_str().unwrap(),
    ]);
    let c = http();
    for path in ["nodes/openvoice-local/standby", "register", "deregister"] {
        let r = c
            .post(format!("{}/cluster/v1/{path}", s.base))
            .json(&json!({}))
            .send()
            .await
            .unwrap();
        assert_eq!(error_code(r).await.1, "not_found", "{path}");
    }
    assert!(!dir.path().join("data/cluster.token").exists());
}

#[tokio::test]
async fn a_worker_does_not_start_without_a_token_and_reads_the_gateways_file() {
    let _g = cluster_lock().lock().await;
    // No token: refused at start, naming the setting.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_vctts-server"))
        .args([
            "worker",
            "--engine",
            "openvoice",
            "--host",
            "127.0.0.1",
            "--port",
            "0",
            "--gateway",
            "http://127.0.0.1:9",
        ])
        .env_remove("VCTTS_CLUSTER__TOKEN")
        .env_remove("VCTTS_CONFIG")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("cluster.token"), "{err}");

    // A gateway without a configured token, and a worker given its file.
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let gw_cfg = write(
        dir.path(),
        "gateway.yaml",
        &format!(
            "server: {{ host: 127.0.0.1, port: 0 }}\n\
             registry: {{ heartbeat_interval: 0.2, dead_threshold: 2.0, retention: 60 }}\n\
             storage: {{ data_dir: \"{}\" }}\n",
            data.display()
        ),
    );
    let gw = Server::start(&["gateway", "--config", &gw_cfg]);
    let token_file = data.join("cluster.token");
    // The gateway logs where its token is (it binds first, then builds).
    let shown = token_file.display().to_string();
    crate::common::eventually(Duration::from_secs(30), "the token file to be announced", || {
        let found = gw.logs().contains(&shown) && token_file.is_file();
        async move { found.then_some(()) }
    })
    .await;
    let w_cfg = write(
        dir.path(),
        "worker.yaml",
        &format!(
            "worker: {{ type: openvoice, host: 127.0.0.1, port: 0 }}\n\
             gateway: {{ url: \"{}\" }}\n\
             cluster: {{ token_file: \"{}\", heartbeat_interval: 0.2 }}\n\
             model: {{ path: \"{}\", auto_load: false }}\n",
            gw.base,
            token_file.display(),
            dir.path().join("no-models").display()
        ),
    );
    let w = Server::start(&["worker", "--config", &w_cfg]);
    let c = http();
    crate::common::eventually(Duration::from_secs(30), "the worker to register", || {
        let c = c.clone();
        let url = format!("{}/api/v3/nodes", gw.base);
        let endpoint = w.base.clone();
        async move {
            let v: Value = c.get(&url).send().await.ok()?.json().await.ok()?;
            v["nodes"]
                .as_array()?
                .iter()
                .any(|n| n["endpoint"] == endpoint.as_str())
                .then_some(())
        }
    })
    .await;
    // The worker's own control plane refuses anonymous calls.
    let r = c
        .post(format!("{}/cluster/v1/stop", w.base))
        .send()
        .await
        .unwrap();
    assert_eq!(error_code(r).await.0, 401);
    let _ = models_dir();
}

/// A node that registers with the token and answers every synthesis with far
/// more bytes than any request can produce.
pub(crate) async fn flooding_node(gateway: &str) -> (String, tokio::task::JoinHandle<()>) {
    use axum::routing::{get, post};
    const CHUNK: usize = 1 << 20;
    const CHUNKS: usize = 150;
    // Whole answers claim WAV, streams PCM, as a worker's do.
    let flood_as = |content_type: &'static str| {
        let chunks = futures::stream::iter(
            (0..CHUNKS).map(|_| Ok::<_, std::io::Error>(bytes::Bytes::from(vec![0u8; CHUNK]))),
        );
        axum::response::Response::builder()
            .header("content-type", content_type)
            .header("x-sample-rate", "22050")
            .body(Body::from_stream(chunks))
            .unwrap()
    };
    let flood = move || async move { flood_as("audio/wav") };
    let flood_pcm = move || async move { flood_as("audio/pcm;rate=22050") };
    let status = || async {
        axum::Json(json!({
            "engine": "openvoice", "state": "ready", "reason": null, "info": engine_info(),
            "metrics": {}
        }))
    };
    let app = axum::Router::new()
        .route("/cluster/v1/synthesize", post(flood))
        .route("/cluster/v1/synthesize/stream", post(flood_pcm))
        .route("/cluster/v1/health", get(status));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    let r = http()
        .post(format!("{gateway}/cluster/v1/register"))
        .header("x-cluster-token", TOKEN)
        .json(&register_body(&endpoint))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    (endpoint, task)
}

#[tokio::test]
async fn the_gateway_caps_what_a_node_sends_back() {
    let _g = cluster_lock().lock().await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = write(
        dir.path(),
        "gateway.yaml",
        &crate::common::gateway_yaml(
            &dir.path().join("data"),
            "heartbeat_interval: 5, dead_threshold: 60, retention: 120, policy: round_robin",
            "",
        ),
    );
    let gw = Server::start(&["gateway", "--config", &cfg]);
    let (_endpoint, node) = flooding_node(&gw.base).await;
    let c = http();
    // A whole answer over the cap is refused, not buffered and passed on.
    let r = c
        .post(format!("{}/api/v3/synthesize", gw.base))
        .json(&json!({ "text": "Hello there." }))
        .send()
        .await
        .unwrap();
    let (s, code, v) = error_code(r).await;
    assert!(s == 502 || s == 503, "{s} {v}");
    assert_eq!(code, "node_unavailable", "{v}");
    // A stream is cut at the cap: the client never gets the whole flood.
    let r = c
        .post(format!("{}/api/v3/synthesize/stream", gw.base))
        .json(&json!({ "text": "Hello there." }))
        .send()
        .await
        .unwrap();
    let mut got = 0usize;
    let mut body = r.bytes_stream();
    use futures::StreamExt;
    while let Some(Ok(chunk)) = body.next().await {
        got += chunk.len();
    }
    assert!(got < 100 << 20, "relayed {got} bytes");
    node.abort();
}

/// A worker config: OpenVoice with one slot and no queue at the node.
fn one_slot_worker(dir: &std::path::Path, name: &str, gateway: &str) -> String {
    write(
        dir,
        name,
        &format!(
            "worker: {{ type: openvoice, host: 127.0.0.1, port: 0 }}\n\
             gateway: {{ url: \"{gateway}\" }}\n\
             cluster: {{ token: \"{TOKEN}\", heartbeat_interval: 0.2 }}\n\
             model: {{ path: \"{}\", auto_load: true, threads: 1 }}\n\
             resources: {{ max_concurrent: 1, queue_size: 0 }}\n",
            models_dir().display()
        ),
    )
}

async fn worker_in_flight(c: &reqwest::Client, worker: &str) -> Option<u64> {
    let v: Value = c
        .get(format!("{worker}/cluster/v1/health"))
        .header("x-cluster-token", TOKEN)
        .send()
        .await
        .ok()?
        .json()
        .await
        .ok()?;
    v["metrics"]["in_flight"].as_u64()
}

#[tokio::test]
async fn a_dropped_request_stops_the_engine_and_keeps_its_slot_until_then() {
    let _g = cluster_lock().lock().await;
    let dir = tempfile::tempdir().unwrap();
    // No gateway is needed: the test talks to the node directly.
    let cfg = one_slot_worker(dir.path(), "worker.yaml", "http://127.0.0.1:9");
    let w = Server::start(&["worker", "--config", &cfg]);
    let c = http();
    crate::common::eventually(Duration::from_secs(60), "the model to load", || {
        let url = format!("{}/api/v3/health", w.base);
        let c = c.clone();
        async move { (c.get(&url).send().await.ok()?.status() == 200).then_some(()) }
    })
    .await;
    let synth = |text: String| {
        let c = c.clone();
        let url = format!("{}/cluster/v1/synthesize", w.base);
        async move {
            c.post(url)
                .header("x-cluster-token", TOKEN)
                .json(&json!({
                    "request": vctts_core::SynthesisRequest::new(text),
                    "profile": null
                }))
                .send()
                .await
        }
    };
    let made = || async {
        let v: Value = c
            .get(format!("{}/cluster/v1/health", w.base))
            .header("x-cluster-token", TOKEN)
            .send()
            .await
            .ok()?
            .json()
            .await
            .ok()?;
        v["metrics"]["audio_seconds"].as_f64()
    };
    // One sentence of the long text, alone.
    let sentence = "This sentence is here to keep the engine busy for a while.";
    let r = synth(sentence.into()).await.unwrap();
    assert_eq!(r.status(), 200);
    let one = crate::common::parse_wav(&r.bytes().await.unwrap()).seconds();
    let before = made().await.unwrap();
    // A long request starts, then its caller goes away.
    let first = tokio::spawn(synth(format!("{sentence} ").repeat(30)));
    crate::common::eventually(Duration::from_secs(30), "the long request to run", || async {
        (worker_in_flight(&c, &w.base).await? == 1).then_some(())
    })
    .await;
    first.abort();
    let _ = first.await;
    // The engine stops at its next sentence; only then is the slot free
    // (the audio it made is counted before the slot is given back).
    crate::common::eventually(Duration::from_secs(120), "the slot to come back", || async {
        (worker_in_flight(&c, &w.base).await? == 0).then_some(())
    })
    .await;
    let spent = made().await.unwrap() - before;
    assert!(
        spent < 30.0 * one / 4.0,
        "the engine made {spent:.1} s of the text's {:.1} s after its caller left",
        30.0 * one
    );
    let r = synth("Hello.".into()).await.unwrap();
    assert_eq!(r.status(), 200);
}

#[tokio::test]
async fn a_full_node_is_overloaded_and_the_gateway_queues_first() {
    let _g = cluster_lock().lock().await;
    let dir = tempfile::tempdir().unwrap();
    let gw_cfg = write(
        dir.path(),
        "gateway.yaml",
        &crate::common::gateway_yaml(
            &dir.path().join("data"),
            crate::common::FAST_REGISTRY,
            "limiter: { enabled: false, queue_size: 1, queue_timeout: 120 }",
        ),
    );
    let gw = Server::start(&["gateway", "--config", &gw_cfg]);
    let w_cfg = one_slot_worker(dir.path(), "worker.yaml", &gw.base);
    let _w = Server::start(&["worker", "--config", &w_cfg]);
    let c = http();
    crate::common::eventually(Duration::from_secs(60), "the worker to be ready", || {
        let c = c.clone();
        let url = format!("{}/api/v3/nodes", gw.base);
        async move {
            let v: Value = c.get(&url).send().await.ok()?.json().await.ok()?;
            (v["nodes"].as_array()?.iter().any(|n| n["state"] == "ready")).then_some(())
        }
    })
    .await;
    let speak = |text: &'static str| {
        let c = c.clone();
        let url = format!("{}/api/v3/synthesize", gw.base);
        async move {
            let r = c.post(url).json(&json!({ "text": text })).send().await.unwrap();
            let retry = r.headers().get("retry-after").is_some();
            let (s, code, _) = error_code_or_ok(r).await;
            (s, code, retry)
        }
    };
    // The node holds one request; the gateway queues one more and sheds the third.
    let long: &'static str =
        "A sentence that takes the engine a moment to speak. Another one follows it here. "
            .repeat(12)
            .leak();
    let first = tokio::spawn(speak(long));
    crate::common::eventually(Duration::from_secs(30), "the node to be full", || {
        let c = c.clone();
        let url = format!("{}/api/v3/nodes", gw.base);
        async move {
            let v: Value = c.get(&url).send().await.ok()?.json().await.ok()?;
            (v["nodes"]
                .as_array()?
                .iter()
                .any(|n| n["metrics"]["in_flight"] == 1))
            .then_some(())
        }
    })
    .await;
    let second = tokio::spawn(speak("Queued at the gateway."));
    // Wait until the second one holds the queue's only place.
    crate::common::eventually(Duration::from_secs(30), "the queue to fill", || {
        let c = c.clone();
        let url = format!("{}/api/v3/metrics", gw.base);
        async move {
            let t = c.get(&url).send().await.ok()?.text().await.ok()?;
            t.lines()
                .any(|l| l.starts_with("vctts_route_queue_waiting ") && l.ends_with(" 1"))
                .then_some(())
        }
    })
    .await;
    let third = speak("No room left.").await;
    assert_eq!((third.0, third.1.as_str(), third.2), (503, "overloaded", true));
    assert_eq!(first.await.unwrap().0, 200);
    assert_eq!(second.await.unwrap().0, 200, "the queued request is served");
}

async fn error_code_or_ok(r: reqwest::Response) -> (u16, String, Value) {
    if r.status().is_success() {
        let s = r.status().as_u16();
        let _ = r.bytes().await;
        return (s, String::new(), Value::Null);
    }
    error_code(r).await
}

#[test]
fn a_garbage_voice_database_is_named_in_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    std::fs::write(data.join("voices.db"), vec![0x5au8; 8192]).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_vctts-server"))
        .args([
            "gateway",
            "--host",
            "127.0.0.1",
            "--port",
            "0",
            "--data",
            data.to_str().unwrap(),
        ])
        .env_remove("VCTTS_CONFIG")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    let last = err.lines().last().unwrap_or("");
    assert!(
        last.starts_with("vctts-server: ") && last.contains("voices.db") && last.contains("move it"),
        "{err}"
    );
}

#[tokio::test]
async fn oversized_or_undecodable_requests_get_the_json_error_body() {
    let l = Local::new("");
    let get = |uri: String, header: Option<String>| {
        let mut b = Request::builder().uri(uri);
        if let Some(h) = header {
            b = b.header("x-padding", h);
        }
        b.body(Body::empty()).unwrap()
    };
    let (s, v) = l
        .send(get(format!("/api/v3/voices/{}", "a".repeat(9000)), None))
        .await;
    assert_eq!((s.as_u16(), code(&v)), (414, "uri_too_long"), "{v}");
    let (s, v) = l
        .send(get("/api/v3/health".into(), Some("h".repeat(40_000))))
        .await;
    assert_eq!((s.as_u16(), code(&v)), (431, "headers_too_large"), "{v}");
    let (s, v) = l.send(get("/api/v3/voices/%FF%FE".into(), None)).await;
    assert_eq!((s.as_u16(), code(&v)), (400, "invalid_path"), "{v}");
    assert!(v["error"]["request_id"].is_string(), "{v}");
    // Ordinary escapes still pass.
    let (s, v) = l.send(get("/api/v3/voices/caf%C3%A9".into(), None)).await;
    assert_ne!(code(&v), "invalid_path", "{s} {v}");
}
