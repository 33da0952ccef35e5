//! A real gateway with real OpenVoice workers, as processes of `vctts-server`.
//!
//! [`Cluster::start`] writes a gateway config and one config per worker into
//! a temp dir (short heartbeats so a killed worker turns offline within
//! seconds), checks them with the crate's own config parser, and starts
//! `vctts-server gateway --config …` and `vctts-server worker --config …` on
//! free ports of 127.0.0.1. Workers use a model folder that links the real
//! default voice (`models/openvoice/base`, from `scripts/setup.sh`) and, when
//! present, the fixture tone color converter
//! (`vctts-engines/tests/fixtures/graphs/openvoice/converter`), so voices can
//! be cloned. Dropping the cluster kills every process; a failed wait prints
//! each process's log. A cluster holds [`crate::inproc::SERVER_SLOT`] for its
//! life: one server (cluster or in-process gateway) at a time per test binary.

use crate::browser::{eventually, free_port};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;
use vctts_server::config::{Env, GatewayConfig, WorkerConfig};

/// The admin password of the test gateway.
pub const ADMIN_PASSWORD: &str = "pages-test-password";
/// The cluster token between the test gateway and its workers.
const TOKEN: &str = "pages-test-cluster-token-0123456789";
/// Heartbeat interval of the test workers, seconds.
const HEARTBEAT: f64 = 0.5;
/// Seconds without a heartbeat before the gateway calls a node offline.
const DEAD_THRESHOLD: f64 = 3.0;
/// How long a killed worker may take to show as offline: the threshold, a
/// sweep, and the page's own refresh.
pub const OFFLINE_DEADLINE: Duration = Duration::from_secs(20);
/// Starting a worker loads the real voice: allow for a slow, busy machine.
const START_DEADLINE: Duration = Duration::from_secs(120);

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_path_buf()
}

/// One child process and its log file.
struct Proc {
    name: String,
    child: Child,
    log: PathBuf,
    port: u16,
}

impl Proc {
    fn spawn(name: &str, role: &str, config: &Path, dir: &Path, port: u16) -> Proc {
        let log = dir.join(format!("{name}.log"));
        let out = std::fs::File::create(&log).expect("log file");
        let child = Command::new(env!("CARGO_BIN_EXE_vctts-server"))
            .arg(role)
            .arg("--config")
            .arg(config)
            .current_dir(dir)
            .stdin(Stdio::null())
            .stdout(out.try_clone().expect("log handle"))
            .stderr(out)
            .spawn()
            .unwrap_or_else(|e| panic!("start vctts-server {role}: {e}"));
        Proc {
            name: name.to_string(),
            child,
            log,
            port,
        }
    }

    fn exited(&mut self) -> Option<String> {
        match self.child.try_wait() {
            Ok(Some(status)) => Some(format!("{} exited with {status}", self.name)),
            _ => None,
        }
    }
}

/// A worker that was killed: where it listened.
#[derive(Debug, Clone)]
pub struct Killed {
    /// Its port on 127.0.0.1.
    pub port: u16,
}

/// A gateway and its workers.
pub struct Cluster {
    /// `http://127.0.0.1:PORT` of the gateway.
    pub url: String,
    gateway: Proc,
    workers: Vec<Proc>,
    dir: tempfile::TempDir,
    _slot: tokio::sync::MutexGuard<'static, ()>,
}

fn model_dir(dir: &Path) -> PathBuf {
    let base = repo().join("models/openvoice/base");
    assert!(
        base.join("en_US-joe-medium.onnx").is_file(),
        "the default voice is missing: run scripts/setup.sh (looked in {})",
        base.display()
    );
    let models = dir.join("models/openvoice");
    std::fs::create_dir_all(&models).expect("model dir");
    std::os::unix::fs::symlink(&base, models.join("base")).expect("link base voice");
    let conv = repo().join("vctts-engines/tests/fixtures/graphs/openvoice/converter");
    if conv.join("tone_clone_model.onnx").is_file() {
        std::os::unix::fs::symlink(&conv, models.join("converter")).expect("link converter");
    }
    models
}

impl Cluster {
    /// Starts a gateway and `workers` OpenVoice workers, and waits for the gateway to answer.
    pub async fn start(workers: usize) -> Cluster {
        let slot = crate::inproc::SERVER_SLOT.lock().await;
        let dir = tempfile::tempdir().expect("cluster dir");
        let models = model_dir(dir.path());
        let gw_port = free_port();
        let url = format!("http://127.0.0.1:{gw_port}");
        let gateway_yaml = format!(
            "server: {{ host: 127.0.0.1, port: {gw_port} }}\n\
             registry: {{ heartbeat_interval: {HEARTBEAT}, dead_threshold: {DEAD_THRESHOLD} }}\n\
             cluster: {{ token: \"{TOKEN}\" }}\n\
             limiter: {{ enabled: true, global_rpm: 10000, ip_rpm: 10000, concurrent_limit: 16 }}\n\
             storage: {{ data_dir: \"{data}\" }}\n\
             default_engine: openvoice\n\
             logging: {{ level: INFO }}\n\
             auth: {{ admin_password: \"{ADMIN_PASSWORD}\" }}\n",
            data = dir.path().join("data").display(),
        );
        GatewayConfig::parse(&gateway_yaml, &Env::empty()).expect("the test gateway config is valid");
        let gw_config = dir.path().join("gateway.yaml");
        std::fs::write(&gw_config, &gateway_yaml).expect("write gateway config");
        let gateway = Proc::spawn("gateway", "gateway", &gw_config, dir.path(), gw_port);
        let mut cluster = Cluster {
            url: url.clone(),
            gateway,
            workers: Vec::new(),
            dir,
            _slot: slot,
        };
        cluster.wait_for_gateway().await;
        cluster.check_pages_are_served().await;
        for i in 0..workers {
            let port = free_port();
            let yaml = format!(
                "worker: {{ type: openvoice, host: 127.0.0.1, port: {port} }}\n\
                 gateway: {{ url: \"{url}\" }}\n\
                 cluster: {{ token: \"{TOKEN}\", heartbeat_interval: {HEARTBEAT} }}\n\
                 model: {{ path: \"{models}\", auto_load: true, threads: 1 }}\n\
                 resources: {{ max_concurrent: 1 }}\n\
                 logging: {{ level: INFO }}\n",
                models = models.display(),
            );
            WorkerConfig::parse(&yaml, &Env::empty()).expect("the test worker config is valid");
            let path = cluster.dir.path().join(format!("worker{i}.yaml"));
            std::fs::write(&path, &yaml).expect("write worker config");
            let w = Proc::spawn(&format!("worker{i}"), "worker", &path, cluster.dir.path(), port);
            cluster.workers.push(w);
        }
        cluster
    }

    fn logs(&self) -> String {
        let mut out = String::new();
        for p in std::iter::once(&self.gateway).chain(self.workers.iter()) {
            let text = std::fs::read_to_string(&p.log).unwrap_or_default();
            let tail: Vec<&str> = text.lines().rev().take(40).collect();
            out.push_str(&format!("---- {} (port {}) ----\n", p.name, p.port));
            for l in tail.into_iter().rev() {
                out.push_str(l);
                out.push('\n');
            }
        }
        out
    }

    /// Waits for the gateway to answer its health endpoint (ready or not).
    async fn wait_for_gateway(&mut self) {
        let http = reqwest::Client::new();
        let health = format!("{}/api/v3/health", self.url);
        let gateway = &mut self.gateway;
        let mut exited = None;
        eventually(START_DEADLINE, "the gateway to answer /api/v3/health", || {
            if exited.is_none() {
                exited = gateway.exited();
            }
            let dead = exited.clone();
            let req = http.get(&health).send();
            async move {
                if let Some(e) = dead {
                    panic!("{e} before answering");
                }
                let r = req.await.map_err(|e| e.to_string())?;
                if r.status().is_success() || r.status().as_u16() == 503 {
                    Ok(())
                } else {
                    Err(r.status().to_string())
                }
            }
        })
        .await
    }

    /// Fails at once, and says why, when the gateway does not serve the pages.
    async fn check_pages_are_served(&self) {
        for page in ["/status", "/admin", "/playground"] {
            let r = reqwest::get(format!("{}{page}", self.url))
                .await
                .expect("GET a page");
            let html = r
                .headers()
                .get("content-type")
                .is_some_and(|v| v.as_bytes().starts_with(b"text/html"));
            assert!(
                r.status().is_success() && html,
                "the gateway answers {page} with {} (not the page): merge vctts_server::pages::router() into the gateway's router",
                r.status()
            );
        }
    }

    /// Waits until the gateway lists `n` ready nodes; returns their ids.
    pub async fn wait_for_nodes(&self, n: usize) -> Vec<String> {
        let http = reqwest::Client::new();
        let url = format!("{}/api/v3/nodes", self.url);
        eventually(START_DEADLINE, "the workers to register and load", || {
            let req = http.get(&url).send();
            async move {
                let v: Value = req
                    .await
                    .map_err(|e| e.to_string())?
                    .json()
                    .await
                    .map_err(|e| e.to_string())?;
                let ready: Vec<String> = v["nodes"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter(|n| n["state"] == "ready")
                    .filter_map(|n| n["id"].as_str().map(String::from))
                    .collect();
                if ready.len() >= n {
                    Ok(ready)
                } else {
                    Err(v.to_string())
                }
            }
        })
        .await
    }

    /// Kills worker `i` with SIGKILL (no deregistration) and returns where it was.
    pub fn kill_worker(&mut self, i: usize) -> Killed {
        let w = &mut self.workers[i];
        w.child.kill().expect("kill worker");
        let _ = w.child.wait();
        Killed { port: w.port }
    }

    /// The id of the node the killed worker was (by its port in the node's endpoint).
    pub async fn node_id_of(&self, killed: &Killed, ids: &[String]) -> String {
        let v: Value = reqwest::get(format!("{}/api/v3/nodes", self.url))
            .await
            .expect("GET nodes")
            .json()
            .await
            .expect("nodes JSON");
        let port = format!(":{}", killed.port);
        v["nodes"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|n| {
                n["endpoint"]
                    .as_str()
                    .is_some_and(|e| e.ends_with(&port) || e.contains(&format!("{port}/")))
            })
            .and_then(|n| n["id"].as_str().map(String::from))
            .filter(|id| ids.contains(id))
            .unwrap_or_else(|| panic!("no node with an endpoint on port {}: {v}", killed.port))
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for p in self.workers.iter_mut().chain(std::iter::once(&mut self.gateway)) {
            let _ = p.child.kill();
            let _ = p.child.wait();
        }
        if std::thread::panicking() {
            eprintln!("cluster logs:\n{}", self.logs());
        }
    }
}

/// A reference clip of real speech (the alsa-utils voice clips, about 11 s),
/// or espeak-ng speech when those are not installed; written into `dir`.
pub fn reference_clip(dir: &Path) -> PathBuf {
    let out = dir.join("reference.wav");
    let alsa = Path::new("/usr/share/sounds/alsa");
    let names = [
        "Front_Center",
        "Front_Left",
        "Front_Right",
        "Rear_Center",
        "Rear_Left",
        "Rear_Right",
        "Side_Left",
        "Side_Right",
    ];
    let clips: Vec<PathBuf> = names
        .iter()
        .map(|n| alsa.join(format!("{n}.wav")))
        .filter(|p| p.is_file())
        .collect();
    if clips.len() >= 4 {
        let first = hound::WavReader::open(&clips[0]).expect("alsa clip");
        let spec = first.spec();
        drop(first);
        let mut w = hound::WavWriter::create(&out, spec).expect("reference wav");
        for c in &clips {
            let mut r = hound::WavReader::open(c).expect("alsa clip");
            assert_eq!(r.spec(), spec, "{} has another format", c.display());
            for s in r.samples::<i16>() {
                w.write_sample(s.expect("sample")).expect("write");
            }
        }
        w.finalize().expect("finish reference");
        return out;
    }
    let status = Command::new("espeak-ng")
        .arg("-w")
        .arg(&out)
        .arg("This is a reference recording for the voice cloning test. It speaks for several seconds, clearly and evenly.")
        .status()
        .expect("espeak-ng: install alsa-utils or espeak-ng for a reference clip");
    assert!(status.success(), "espeak-ng failed");
    out
}
