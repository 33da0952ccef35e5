//! The real gateway, in process, for the page tests.
//!
//! [`InProc::start`] builds a [`vctts_server::Gateway`] from a YAML config in
//! a temp folder (its own data folder, a cluster token, an admin password and
//! an operator API key), adds the real in-process OpenVoice node (the Piper
//! voice `models/openvoice/base/en_US-joe-medium.onnx`, with the fixture tone
//! color converter of the engines' tests so voices can be cloned) the way
//! `vctts-server gateway` does with `engines:`, and serves
//! [`vctts_server::app::run`] — the whole router, pages included — on a free
//! port of 127.0.0.1 from the test's own runtime. It returns once that node is
//! ready.
//!
//! Everything a test needs to set up goes through the gateway's public HTTP
//! APIs, as an operator or a worker would: other nodes join with
//! [`InProc::register`], which plays the worker side of the cluster protocol
//! (`register`, then `heartbeat` on a timer with the state and metrics the
//! test chooses, `deregister`) with the cluster token; announcements, logs,
//! settings and node states are read and changed through the admin API with
//! the operator's API key; voices are cloned through `/api/v3/extract_voice`.
//!
//! Invariants: one gateway at a time per test binary (a slot held for the
//! harness's life, shared with [`crate::cluster::Cluster`]), so tests do not
//! starve each other on a small machine; the gateway's log records (access,
//! audit, the rest at INFO and above) reach its own log hub through a
//! subscriber scoped to the test's thread — the tests run on a
//! current-thread runtime, so every task of the gateway runs there; dropping
//! the harness stops the simulated workers' heartbeats and shuts the gateway
//! down; a failed wait says what it waited for and what it last saw.

use crate::browser::eventually;
use parking_lot::Mutex;
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tracing_subscriber::layer::SubscriberExt as _;
use vctts_core::clock::SystemClock;
use vctts_server::config::{Env, GatewayConfig};
use vctts_server::gateway::Gateway;

/// The admin password of the test gateway.
pub const ADMIN_PASSWORD: &str = "pages-inproc-password";
/// An API key with the `admin` scope: the test acting as a second operator.
const OPERATOR_KEY: &str = "pages-inproc-operator-key-0123456789";
/// The cluster token the simulated workers present.
const TOKEN: &str = "pages-inproc-cluster-token-0123456789";
/// Heartbeat interval of the gateway's registry (and the simulated workers).
const HEARTBEAT: Duration = Duration::from_millis(250);
/// Seconds without a heartbeat before a node is offline.
const DEAD_THRESHOLD_SECS: f64 = 3.0;
/// Loading the real voice on a slow, busy machine.
const START_DEADLINE: Duration = Duration::from_secs(120);
/// How long a node may take to show a state through the API.
const STATE_DEADLINE: Duration = Duration::from_secs(20);
/// The id the gateway gives its in-process OpenVoice node.
pub const LOCAL_NODE: &str = "openvoice-local";

/// One server (gateway or cluster) at a time in this test binary.
pub static SERVER_SLOT: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_path_buf()
}

/// A models folder in `dir` linking the real default voice and the fixture converter.
fn models_in(dir: &Path) -> PathBuf {
    let base = repo().join("models/openvoice/base");
    assert!(
        base.join("en_US-joe-medium.onnx").is_file(),
        "the default voice is missing: run scripts/setup.sh (looked in {})",
        base.display()
    );
    let conv = repo().join("vctts-engines/tests/fixtures/graphs/openvoice/converter");
    assert!(
        conv.join("tone_clone_model.onnx").is_file(),
        "the fixture converter is missing at {}",
        conv.display()
    );
    let models = dir.join("models");
    let ov = models.join("openvoice");
    std::fs::create_dir_all(&ov).expect("models dir");
    std::os::unix::fs::symlink(&base, ov.join("base")).expect("link the base voice");
    std::os::unix::fs::symlink(&conv, ov.join("converter")).expect("link the converter");
    models
}

/// The real gateway, served in process.
pub struct InProc {
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    http: reqwest::Client,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    sims: Mutex<Vec<tokio::task::AbortHandle>>,
    _logs: tracing::subscriber::DefaultGuard,
    _dir: tempfile::TempDir,
    _slot: tokio::sync::MutexGuard<'static, ()>,
}

/// What a simulated worker reports on its next heartbeat.
#[derive(Debug, Clone)]
struct Report {
    state: String,
    reason: Option<String>,
    metrics: Value,
}

/// A node that joined through the cluster protocol, driven by the test.
pub struct SimWorker {
    /// The id the gateway gave it.
    pub id: String,
    /// The endpoint it registered (nothing listens there).
    pub endpoint: String,
    report: Arc<Mutex<Report>>,
    beat: tokio::task::AbortHandle,
    url: String,
    http: reqwest::Client,
}

impl InProc {
    /// Starts the gateway with its in-process OpenVoice node and waits for the node to be ready.
    pub async fn start() -> InProc {
        let slot = SERVER_SLOT.lock().await;
        let dir = tempfile::tempdir().expect("temp dir");
        let models = models_in(dir.path());
        let yaml = format!(
            "server: {{ host: 127.0.0.1, port: 0 }}\n\
             registry: {{ heartbeat_interval: {hb}, dead_threshold: {DEAD_THRESHOLD_SECS}, retention: 600 }}\n\
             cluster: {{ token: \"{TOKEN}\" }}\n\
             limiter: {{ enabled: true, global_rpm: 100000, ip_rpm: 10000, concurrent_limit: 16 }}\n\
             storage: {{ data_dir: \"{data}\" }}\n\
             default_engine: openvoice\n\
             auth: {{ admin_password: \"{ADMIN_PASSWORD}\", api_keys: [{{ name: operator, key: \"{OPERATOR_KEY}\", scopes: [admin] }}] }}\n\
             engines:\n\
             \x20 - type: openvoice\n\
             \x20   model: {{ path: \"{models}\", auto_load: true, threads: 1 }}\n\
             \x20   resources: {{ max_concurrent: 1, queue_size: 8 }}\n",
            hb = HEARTBEAT.as_secs_f64(),
            data = dir.path().join("data").display(),
            models = models.display(),
        );
        let cfg = GatewayConfig::parse(&yaml, &Env::empty()).expect("the test gateway config is valid");
        let gw = Gateway::new(cfg.clone(), Arc::new(SystemClock::new())).expect("build the gateway");
        // The gateway's records reach its own hub, as `vctts-server` installs it.
        let subscriber = tracing_subscriber::registry()
            .with(tracing_subscriber::filter::LevelFilter::INFO)
            .with(gw.ops().logs.layer());
        let logs = tracing::subscriber::set_default(subscriber);
        vctts_server::standalone::add_local_engines(&gw, &cfg.engines).expect("add the OpenVoice node");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind a port");
        let url = format!("http://{}", listener.local_addr().expect("bound address"));
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(vctts_server::app::run(gw.clone(), listener, async move {
            let _ = stopped.await;
        }));
        let g = InProc {
            url,
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(120))
                .build()
                .expect("HTTP client"),
            stop: Some(stop),
            sims: Mutex::new(Vec::new()),
            _logs: logs,
            _dir: dir,
            _slot: slot,
        };
        g.check_pages_are_served().await;
        g.wait_node_state_within(LOCAL_NODE, "ready", START_DEADLINE)
            .await;
        g
    }

    /// Fails at once, and says why, when the gateway does not serve the pages.
    async fn check_pages_are_served(&self) {
        for page in ["/status", "/admin", "/playground"] {
            let r = self
                .http
                .get(format!("{}{page}", self.url))
                .send()
                .await
                .expect("GET a page");
            let html = r
                .headers()
                .get("content-type")
                .is_some_and(|v| v.as_bytes().starts_with(b"text/html"));
            assert!(
                r.status().is_success() && html,
                "the gateway answers {page} with {} (not the page)",
                r.status()
            );
        }
    }

    /// `GET /api/v3/nodes`, the node list.
    pub async fn nodes(&self) -> Vec<Value> {
        let v = self.get_json("/api/v3/nodes").await;
        v["nodes"].as_array().cloned().unwrap_or_default()
    }

    /// The state of node `id` as `GET /api/v3/nodes` reports it.
    pub async fn node_state(&self, id: &str) -> Option<String> {
        self.nodes()
            .await
            .iter()
            .find(|n| n["id"] == id)
            .and_then(|n| n["state"].as_str().map(String::from))
    }

    /// Waits until `GET /api/v3/nodes` reports node `id` in `want`.
    pub async fn wait_node_state(&self, id: &str, want: &str) {
        self.wait_node_state_within(id, want, STATE_DEADLINE).await
    }

    async fn wait_node_state_within(&self, id: &str, want: &str, deadline: Duration) {
        eventually(
            deadline,
            &format!("node {id} to be {want} in /api/v3/nodes"),
            || async {
                let s = self.node_state(id).await;
                if s.as_deref() == Some(want) {
                    Ok(())
                } else {
                    Err(format!("{s:?}; nodes: {}", json!(self.nodes().await)))
                }
            },
        )
        .await
    }

    /// A public GET, its JSON body (panics on a non-2xx answer).
    pub async fn get_json(&self, path: &str) -> Value {
        let r = self
            .http
            .get(format!("{}{path}", self.url))
            .send()
            .await
            .unwrap_or_else(|e| panic!("GET {path}: {e}"));
        let status = r.status();
        let body: Value = r.json().await.unwrap_or(Value::Null);
        assert!(status.is_success(), "GET {path}: {status} {body}");
        body
    }

    /// An admin API call with the operator's key: status and JSON body.
    pub async fn admin(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> (u16, Value) {
        let mut req = self
            .http
            .request(method.clone(), format!("{}{path}", self.url))
            .bearer_auth(OPERATOR_KEY);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let r = req
            .send()
            .await
            .unwrap_or_else(|e| panic!("{method} {path}: {e}"));
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    /// Posts an announcement as the operator; its id.
    pub async fn announce(&self, kind: &str, message: &str) -> String {
        let (s, v) = self
            .admin(
                reqwest::Method::POST,
                "/admin/api/announcements",
                Some(json!({"type": kind, "message": message})),
            )
            .await;
        assert_eq!(s, 201, "POST /admin/api/announcements: {v}");
        v["id"].as_str().expect("the announcement's id").to_string()
    }

    /// The operator's announcements list.
    pub async fn announcements(&self) -> Vec<Value> {
        let (s, v) = self
            .admin(reqwest::Method::GET, "/admin/api/announcements", None)
            .await;
        assert_eq!(s, 200, "GET /admin/api/announcements: {v}");
        v["announcements"].as_array().cloned().unwrap_or_default()
    }

    /// The live settings (`GET /admin/api/config`).
    pub async fn settings(&self) -> Value {
        let (s, v) = self.admin(reqwest::Method::GET, "/admin/api/config", None).await;
        assert_eq!(s, 200, "GET /admin/api/config: {v}");
        v
    }

    /// Log records of `category` (`GET /admin/api/logs`), oldest first.
    pub async fn logs(&self, category: &str) -> Vec<Value> {
        let (s, v) = self
            .admin(
                reqwest::Method::GET,
                &format!("/admin/api/logs?category={category}&limit=1000"),
                None,
            )
            .await;
        assert_eq!(s, 200, "GET /admin/api/logs: {v}");
        v["records"].as_array().cloned().unwrap_or_default()
    }

    /// How many requests to `path` the access log holds.
    pub async fn served(&self, path: &str) -> usize {
        self.logs("access")
            .await
            .iter()
            .filter(|r| r["endpoint"] == path)
            .count()
    }

    /// Clones a voice from `wav` through `POST /api/v3/extract_voice`; its id.
    pub async fn clone_voice(&self, name: &str, wav: Vec<u8>) -> String {
        let form = reqwest::multipart::Form::new()
            .part(
                "audio",
                reqwest::multipart::Part::bytes(wav)
                    .file_name("reference.wav")
                    .mime_str("audio/wav")
                    .expect("mime"),
            )
            .text("name", name.to_string());
        let r = self
            .http
            .post(format!("{}/api/v3/extract_voice", self.url))
            .multipart(form)
            .send()
            .await
            .expect("POST extract_voice");
        let status = r.status();
        let v: Value = r.json().await.unwrap_or(Value::Null);
        assert!(status.is_success(), "extract_voice: {status} {v}");
        v["voice"]["id"].as_str().expect("the voice's id").to_string()
    }

    /// A worker joins through the cluster protocol (`POST /cluster/v1/register`)
    /// at `endpoint`, hosting `engine`, in `state` with `metrics`, and keeps
    /// heartbeating until told otherwise.
    pub async fn register(&self, engine: &str, endpoint: &str, state: &str, metrics: Value) -> SimWorker {
        let body = json!({
            "protocol": 1, "endpoint": endpoint, "engine": engine, "info": null,
            "capacity": 2, "queue_size": 4, "weight": 1, "labels": {}, "version": "0.0.0-sim",
            "state": state, "reason": null, "metrics": metrics,
        });
        let r = self
            .http
            .post(format!("{}/cluster/v1/register", self.url))
            .header("x-cluster-token", TOKEN)
            .json(&body)
            .send()
            .await
            .expect("POST register");
        let status = r.status();
        let v: Value = r.json().await.unwrap_or(Value::Null);
        assert!(status.is_success(), "register {endpoint}: {status} {v}");
        let id = v["node_id"].as_str().expect("node_id").to_string();
        let report = Arc::new(Mutex::new(Report {
            state: state.to_string(),
            reason: None,
            metrics,
        }));
        let beat = tokio::spawn(heartbeats(
            self.http.clone(),
            self.url.clone(),
            id.clone(),
            report.clone(),
        ))
        .abort_handle();
        self.sims.lock().push(beat.clone());
        self.wait_node_state(&id, state).await;
        SimWorker {
            id,
            endpoint: endpoint.to_string(),
            report,
            beat,
            url: self.url.clone(),
            http: self.http.clone(),
        }
    }
}

async fn heartbeat(http: &reqwest::Client, url: &str, id: &str, r: &Report) -> Result<(), String> {
    let body =
        json!({"node_id": id, "state": r.state, "reason": r.reason, "metrics": r.metrics, "info": null});
    let res = http
        .post(format!("{url}/cluster/v1/heartbeat"))
        .header("x-cluster-token", TOKEN)
        .json(&body)
        .send()
        .await
        .map_err(|e| e.to_string())?;
    if res.status().is_success() {
        Ok(())
    } else {
        Err(format!("heartbeat of {id}: {}", res.status()))
    }
}

/// A worker's heartbeat timer: what the test set, every [`HEARTBEAT`].
async fn heartbeats(http: reqwest::Client, url: String, id: String, report: Arc<Mutex<Report>>) {
    let mut tick = tokio::time::interval(HEARTBEAT);
    loop {
        tick.tick().await;
        let r = report.lock().clone();
        let _ = heartbeat(&http, &url, &id, &r).await;
    }
}

impl SimWorker {
    /// Reports `state` (with `reason`) from now on, starting with a heartbeat at once.
    pub async fn set_state(&self, state: &str, reason: Option<&str>) {
        let r = {
            let mut r = self.report.lock();
            r.state = state.to_string();
            r.reason = reason.map(String::from);
            r.clone()
        };
        heartbeat(&self.http, &self.url, &self.id, &r)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
    }

    /// Stops heartbeating, as a worker that died (the gateway marks it offline).
    pub fn fall_silent(&self) {
        self.beat.abort();
    }

    /// Leaves the cluster (`POST /cluster/v1/deregister`), as a worker shutting down.
    pub async fn deregister(&self) {
        self.beat.abort();
        let r = self
            .http
            .post(format!("{}/cluster/v1/deregister", self.url))
            .header("x-cluster-token", TOKEN)
            .json(&json!({"node_id": self.id}))
            .send()
            .await
            .expect("POST deregister");
        assert!(r.status().is_success(), "deregister {}: {}", self.id, r.status());
    }
}

impl Drop for InProc {
    fn drop(&mut self) {
        for s in self.sims.lock().drain(..) {
            s.abort();
        }
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}
