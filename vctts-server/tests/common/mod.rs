//! Test harness: real `vctts-server` processes on 127.0.0.1 with ephemeral
//! ports and temp folders, an HTTP client, polling with deadlines, a real
//! speech reference clip, and a WAV reader that accepts streamed headers.
//!
//! Processes print `vctts-server <role> listening on http://ADDR` on stdout;
//! [`Server::start`] waits for that line. Their logs are kept and printed
//! when a test fails (on drop while panicking). Tests that start clusters
//! hold [`cluster_lock`] so that only one cluster runs at a time on this
//! small machine (timing assertions stay meaningful).

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The shared cluster token of test clusters.
pub const TOKEN: &str = "test-cluster-token-0123456789";

/// The repository root.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// The models folder (`scripts/setup.sh` fetches the OpenVoice base voice).
pub fn models_dir() -> PathBuf {
    repo_root().join("models")
}

/// Serialises tests that start clusters.
pub fn cluster_lock() -> &'static tokio::sync::Mutex<()> {
    static LOCK: std::sync::OnceLock<tokio::sync::Mutex<()>> = std::sync::OnceLock::new();
    LOCK.get_or_init(|| tokio::sync::Mutex::new(()))
}

/// A running `vctts-server` process.
pub struct Server {
    child: Option<Child>,
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    /// The bound address.
    pub addr: SocketAddr,
    /// Which role.
    pub role: String,
    logs: Arc<Mutex<Vec<String>>>,
}

impl Server {
    /// Starts `vctts-server ARGS...` and waits until it listens.
    pub fn start(args: &[&str]) -> Server {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_vctts-server"));
        cmd.args(args)
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("spawn vctts-server");
        let logs = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = std::sync::mpsc::channel::<String>();
        let stdout = child.stdout.take().unwrap();
        let l = logs.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(rest) = line.split("listening on http://").nth(1) {
                    let _ = tx.send(rest.trim().to_string());
                }
                l.lock().unwrap().push(format!("[stdout] {line}"));
            }
        });
        let stderr = child.stderr.take().unwrap();
        let l = logs.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                l.lock().unwrap().push(line);
            }
        });
        let role = args.first().copied().unwrap_or("?").to_string();
        let deadline = Instant::now() + Duration::from_secs(60);
        let addr = loop {
            match rx.recv_timeout(Duration::from_millis(50)) {
                Ok(a) => break a,
                Err(_) => {
                    if let Ok(Some(status)) = child.try_wait() {
                        panic!(
                            "vctts-server {role} exited with {status} before listening:\n{}",
                            logs.lock().unwrap().join("\n")
                        );
                    }
                    if Instant::now() > deadline {
                        let _ = child.kill();
                        panic!("vctts-server {role} did not listen within 60 s");
                    }
                }
            }
        };
        let addr: SocketAddr = addr.parse().expect("bound address");
        Server {
            child: Some(child),
            base: format!("http://{addr}"),
            addr,
            role,
            logs,
        }
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map(|c| c.id()).unwrap_or(0)
    }

    /// `kill -9`.
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Sends SIGTERM.
    pub fn terminate(&self) {
        let status = Command::new("kill")
            .args(["-TERM", &self.pid().to_string()])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -TERM failed");
    }

    /// Waits for the process to exit; its exit code. Blocks on the process
    /// itself (a thread waits for it), bounded by `timeout`.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<i32> {
        let mut child = self.child.take()?;
        let pid = child.id();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let _ = tx.send(child.wait());
        });
        match rx.recv_timeout(timeout) {
            Ok(status) => status.ok().and_then(|s| s.code()),
            Err(_) => {
                // The waiting thread owns the child now: end it by its pid.
                let _ = Command::new("kill").args(["-KILL", &pid.to_string()]).status();
                panic!("{} did not exit within {timeout:?}:\n{}", self.role, self.logs());
            }
        }
    }

    /// Whether it still runs.
    pub fn running(&mut self) -> bool {
        matches!(self.child.as_mut().map(|c| c.try_wait()), Some(Ok(None)))
    }

    /// Everything it logged so far.
    pub fn logs(&self) -> String {
        self.logs.lock().unwrap().join("\n")
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!(
                "---- logs of {} at {} ----\n{}",
                self.role,
                self.base,
                self.logs()
            );
        }
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// An HTTP client for tests.
pub fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(120))
        .pool_max_idle_per_host(0)
        .build()
        .unwrap()
}

mod eventually;
#[allow(unused_imports)]
pub use eventually::{Outcome, eventually, eventually_blocking};

/// Gateway YAML for tests: fast heartbeats, generous limits, the test token.
pub fn gateway_yaml(data_dir: &Path, registry: &str, extra: &str) -> String {
    format!(
        "server: {{ host: 127.0.0.1, port: 0, workers: 2 }}\n\
         registry: {{ {registry} }}\n\
         cluster: {{ token: \"{TOKEN}\", connect_timeout: 1, first_byte_timeout: 30, request_timeout: 60, max_retries: 2 }}\n\
         storage: {{ data_dir: \"{}\" }}\n\
         {extra}\n",
        data_dir.display()
    )
}

/// The default registry section of test gateways.
pub const FAST_REGISTRY: &str =
    "heartbeat_interval: 0.2, dead_threshold: 1.0, retention: 60, policy: round_robin";

/// Worker YAML for tests: OpenVoice on one thread, one slot, the test token.
pub fn worker_yaml(gateway: &str, extra: &str) -> String {
    worker_yaml_with_models(gateway, &models_dir(), extra)
}

/// [`worker_yaml`] with another models folder.
pub fn worker_yaml_with_models(gateway: &str, models: &Path, extra: &str) -> String {
    format!(
        "worker: {{ type: openvoice, host: 127.0.0.1, port: 0 }}\n\
         gateway: {{ url: \"{gateway}\" }}\n\
         cluster: {{ token: \"{TOKEN}\", heartbeat_interval: 0.2, request_timeout: 2, drain_timeout: 30 }}\n\
         model: {{ path: \"{}\", auto_load: true, threads: 1 }}\n\
         resources: {{ max_concurrent: 1, queue_size: 32 }}\n\
         {extra}\n",
        models.display()
    )
}

/// A models folder in `dir` with the real default voice and the fixture tone
/// color converter of the engines' tests, so voices can be cloned.
pub fn models_with_converter(dir: &Path) -> PathBuf {
    let base = models_dir().join("openvoice/base");
    assert!(
        base.join("en_US-joe-medium.onnx").is_file(),
        "the default voice is missing: run scripts/setup.sh (looked in {})",
        base.display()
    );
    let conv = repo_root().join("vctts-engines/tests/fixtures/graphs/openvoice/converter");
    assert!(
        conv.join("tone_clone_model.onnx").is_file(),
        "fixture converter missing at {}",
        conv.display()
    );
    let models = dir.join("models");
    let ov = models.join("openvoice");
    std::fs::create_dir_all(&ov).unwrap();
    std::os::unix::fs::symlink(&base, ov.join("base")).unwrap();
    std::os::unix::fs::symlink(&conv, ov.join("converter")).unwrap();
    models
}

/// Writes a file into `dir` and returns its path as a string.
pub fn write(dir: &Path, name: &str, text: &str) -> String {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p.to_string_lossy().into_owned()
}

/// A gateway and its workers.
pub struct Cluster {
    /// Temp folder holding configs and data.
    pub dir: tempfile::TempDir,
    /// The gateway.
    pub gateway: Server,
    /// The workers.
    pub workers: Vec<Server>,
    /// The gateway config file.
    pub gateway_config: String,
}

impl Cluster {
    /// Starts a gateway (with `registry`/`extra` config) and `n` OpenVoice
    /// workers, and waits until all workers are ready.
    pub async fn start(n: usize, registry: &str, extra: &str) -> Cluster {
        Self::start_with(n, registry, extra, false).await
    }

    /// [`Cluster::start`]; with `cloning` the workers get the fixture tone
    /// color converter next to the real voice.
    pub async fn start_with(n: usize, registry: &str, extra: &str, cloning: bool) -> Cluster {
        let dir = tempfile::tempdir().unwrap();
        let models = if cloning {
            models_with_converter(dir.path())
        } else {
            models_dir()
        };
        let gateway_config = write(
            dir.path(),
            "gateway.yaml",
            &gateway_yaml(&dir.path().join("data"), registry, extra),
        );
        let gateway = Server::start(&["gateway", "--config", &gateway_config]);
        let mut workers = Vec::new();
        for i in 0..n {
            let cfg = write(
                dir.path(),
                &format!("worker{i}.yaml"),
                &worker_yaml_with_models(&gateway.base, &models, ""),
            );
            workers.push(Server::start(&["worker", "--config", &cfg]));
        }
        let c = Cluster {
            dir,
            gateway,
            workers,
            gateway_config,
        };
        c.wait_ready(n).await;
        c
    }

    /// Waits until `n` nodes are ready.
    pub async fn wait_ready(&self, n: usize) {
        let client = http();
        let url = format!("{}/api/v3/nodes", self.gateway.base);
        eventually(Duration::from_secs(60), "workers to be ready", || {
            let client = client.clone();
            let url = url.clone();
            async move {
                let nodes = nodes(&client, &url).await?;
                let ready = nodes.iter().filter(|n| n["state"] == "ready").count();
                (ready >= n).then_some(())
            }
        })
        .await;
    }

    /// The node list of the gateway.
    pub async fn nodes(&self) -> Vec<serde_json::Value> {
        nodes(&http(), &format!("{}/api/v3/nodes", self.gateway.base))
            .await
            .unwrap_or_default()
    }
}

async fn nodes(client: &reqwest::Client, url: &str) -> Option<Vec<serde_json::Value>> {
    let r = client.get(url).send().await.ok()?;
    let v: serde_json::Value = r.json().await.ok()?;
    v["nodes"].as_array().cloned()
}

/// A decoded 16-bit mono WAV (streamed headers with 0xFFFFFFFF sizes too).
#[derive(Debug, Clone)]
pub struct Wav {
    /// Sample rate.
    pub rate: u32,
    /// Samples.
    pub samples: Vec<i16>,
    /// Whether the header had streaming (0xFFFFFFFF) sizes.
    pub streamed: bool,
}

impl Wav {
    /// Seconds of audio.
    pub fn seconds(&self) -> f64 {
        self.samples.len() as f64 / self.rate as f64
    }

    /// RMS in [0, 1].
    pub fn rms(&self) -> f64 {
        if self.samples.is_empty() {
            return 0.0;
        }
        let s: f64 = self.samples.iter().map(|&x| (x as f64 / 32768.0).powi(2)).sum();
        (s / self.samples.len() as f64).sqrt()
    }
}

/// Parses a 16-bit PCM mono WAV; panics with the reason when it is not one.
pub fn parse_wav(bytes: &[u8]) -> Wav {
    assert!(bytes.len() >= 44, "WAV too short: {} bytes", bytes.len());
    assert_eq!(&bytes[0..4], b"RIFF", "no RIFF");
    assert_eq!(&bytes[8..12], b"WAVE", "no WAVE");
    let riff_size = u32::from_le_bytes(bytes[4..8].try_into().unwrap());
    let mut pos = 12;
    let mut rate = 0;
    loop {
        assert!(pos + 8 <= bytes.len(), "no data chunk");
        let id = &bytes[pos..pos + 4];
        let size = u32::from_le_bytes(bytes[pos + 4..pos + 8].try_into().unwrap());
        let body = pos + 8;
        if id == b"fmt " {
            let fmt = u16::from_le_bytes(bytes[body..body + 2].try_into().unwrap());
            let channels = u16::from_le_bytes(bytes[body + 2..body + 4].try_into().unwrap());
            rate = u32::from_le_bytes(bytes[body + 4..body + 8].try_into().unwrap());
            let bits = u16::from_le_bytes(bytes[body + 14..body + 16].try_into().unwrap());
            assert_eq!((fmt, channels, bits), (1, 1, 16), "not 16-bit PCM mono");
            pos = body + size as usize;
        } else if id == b"data" {
            let streamed = size == u32::MAX;
            let end = if streamed {
                bytes.len()
            } else {
                body + size as usize
            };
            assert!(end <= bytes.len(), "data chunk claims more bytes than exist");
            let data = &bytes[body..end];
            assert_eq!(data.len() % 2, 0, "odd number of data bytes");
            assert!(rate > 0, "data before fmt");
            if streamed {
                assert_eq!(riff_size, u32::MAX, "streamed data size but not RIFF size");
            }
            return Wav {
                rate,
                samples: data
                    .chunks_exact(2)
                    .map(|c| i16::from_le_bytes([c[0], c[1]]))
                    .collect(),
                streamed,
            };
        } else {
            pos = body + size as usize + (size as usize & 1);
        }
    }
}

/// A ≥ 10 s clip of real speech: the alsa-utils channel announcements
/// (`Front_*`, `Rear_*`, `Side_*`, one speaker, 48 kHz) joined, as a 16-bit WAV.
pub fn reference_wav() -> Vec<u8> {
    let dir = Path::new("/usr/share/sounds/alsa");
    let mut names: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("alsa-utils sounds in /usr/share/sounds/alsa")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            let n = p.file_name().unwrap().to_string_lossy().to_string();
            (n.starts_with("Front_") || n.starts_with("Rear_") || n.starts_with("Side_"))
                && n.ends_with(".wav")
        })
        .collect();
    names.sort();
    let mut samples: Vec<i16> = Vec::new();
    let mut rate = 0;
    for p in &names {
        let mut r = hound::WavReader::open(p).unwrap();
        let spec = r.spec();
        rate = spec.sample_rate;
        let ch = spec.channels as usize;
        let s: Vec<i16> = r.samples::<i16>().map(|x| x.unwrap()).collect();
        samples.extend(s.chunks(ch).map(|c| c[0]));
    }
    assert!(
        samples.len() as f64 / rate as f64 >= 10.0,
        "reference shorter than 10 s"
    );
    let mut out = std::io::Cursor::new(Vec::new());
    {
        let spec = hound::WavSpec {
            channels: 1,
            sample_rate: rate,
            bits_per_sample: 16,
            sample_format: hound::SampleFormat::Int,
        };
        let mut w = hound::WavWriter::new(&mut out, spec).unwrap();
        for s in samples {
            w.write_sample(s).unwrap();
        }
        w.finalize().unwrap();
    }
    out.into_inner()
}

/// The error code of a JSON error body.
pub async fn error_code(r: reqwest::Response) -> (u16, String, serde_json::Value) {
    let status = r.status().as_u16();
    let v: serde_json::Value = r.json().await.unwrap_or(serde_json::Value::Null);
    (status, v["error"]["code"].as_str().unwrap_or("").to_string(), v)
}

/// The nodes the gateway at `base` lists (`GET /api/v3/nodes`), or `None`
/// while it does not answer with them.
pub async fn gateway_nodes(c: &reqwest::Client, base: &str) -> Option<Vec<serde_json::Value>> {
    let v: serde_json::Value = c
        .get(format!("{base}/api/v3/nodes"))
        .send()
        .await
        .ok()?
        .json()
        .await
        .ok()?;
    v["nodes"].as_array().cloned()
}
