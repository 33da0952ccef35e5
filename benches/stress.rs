//! The reliability suite's driver (issue 16): a stress run and fault runs
//! against real `vctts-server` processes on 127.0.0.1. Not a benchmark and
//! not part of `cargo test`: `scripts/reliability.sh` builds it and runs it
//! with `cargo bench --bench stress --profile dev -- …`, and it writes a
//! Markdown section (figures and verdicts) for `docs/RELIABILITY.md`.
//!
//! Stress: for each topology (a gateway with two OpenVoice workers, and
//! standalone) a warm-up at the highest concurrency and then one phase's
//! worth at concurrency 1 (then the servers' log rings are filled, so the
//! RSS baseline has them at their bound; then 12 s idle, so jemalloc has
//! given back freed pages, as before the end reading), then `--requests`
//! requests of a seeded mix (synthesis whole, streamed, batched as JSON and
//! ZIP, the OpenAI endpoint, voice CRUD with extraction on the fixture tone
//! color converter, health, metrics, and many bad inputs) in phases of
//! concurrency 1 to 32. Every answer's status must be in the expected set of
//! its request kind; the RSS of every server process after the run must be at
//! most 20 % above its RSS after warm-up; no server log may hold a panic.
//! Every server's RSS (and the front server's allocator gauges) is also
//! read after each phase and reported, so the report shows whether memory
//! grows with requests or reaches a size and stays.
//!
//! Faults (each on a fresh cluster): kill -9 of a worker mid-load, SIGSTOP of
//! a worker for 20 s, kill -9 and restart of the gateway, a registered node
//! that answers garbage / too much / broken HTTP, and a client that leaves a
//! stream (the worker's in-flight count must drop to 0).
//!
//! Invariants: every process it starts is killed when it ends (a guard per
//! process); ports are chosen by the OS; the work folder holds every config
//! and log; the run fails (exit 1) on any unexpected status, panic, RSS
//! growth over the bound or failed fault, after writing the report.

use futures::StreamExt;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const TOKEN: &str = "reliability-cluster-token-0123456789abcdef";
const SHORT_TEXTS: [&str; 6] = [
    "Hello there.",
    "Good morning.",
    "Yes, it works.",
    "One more time.",
    "Thank you.",
    "See you soon.",
];

// ------------------------------------------------------------------ options

struct Opts {
    server_bin: PathBuf,
    models: PathBuf,
    reference: PathBuf,
    work: PathBuf,
    out: PathBuf,
    requests: usize,
    duration: Duration,
    seed: u64,
    stress: bool,
    faults: bool,
    topologies: Vec<String>,
}

fn parse_opts() -> Opts {
    let mut o = Opts {
        server_bin: PathBuf::from("target/debug/vctts-server"),
        models: PathBuf::from("models"),
        reference: PathBuf::from("target/reliability/reference.wav"),
        work: PathBuf::from("target/reliability"),
        out: PathBuf::from("target/reliability/report.md"),
        requests: 10_000,
        duration: Duration::from_secs(420),
        seed: 20261206,
        stress: true,
        faults: true,
        topologies: vec!["cluster".into(), "standalone".into()],
    };
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut i = 0;
    while i < args.len() {
        let a = args[i].clone();
        i += 1;
        let mut val = || {
            i += 1;
            args.get(i - 1)
                .cloned()
                .unwrap_or_else(|| usage(&format!("{a} needs a value")))
        };
        match a.as_str() {
            "--bench" => {} // added by `cargo bench`
            "--server-bin" => o.server_bin = val().into(),
            "--models" => o.models = val().into(),
            "--reference" => o.reference = val().into(),
            "--work" => o.work = val().into(),
            "--out" => o.out = val().into(),
            "--requests" => o.requests = val().parse().unwrap_or_else(|_| usage("--requests N")),
            "--duration" => {
                o.duration =
                    Duration::from_secs(val().parse().unwrap_or_else(|_| usage("--duration SECONDS")))
            }
            "--seed" => o.seed = val().parse().unwrap_or_else(|_| usage("--seed N")),
            "--no-stress" => o.stress = false,
            "--no-faults" => o.faults = false,
            "--topology" => o.topologies = vec![val()],
            other => usage(&format!("unknown argument {other}")),
        }
    }
    o
}

fn usage(why: &str) -> ! {
    eprintln!(
        "stress: {why}\nusage: stress --server-bin PATH --models DIR --reference WAV --work DIR --out FILE \
         [--requests N] [--duration SECONDS] [--seed N] [--no-stress] [--no-faults] [--topology cluster|standalone]"
    );
    std::process::exit(2)
}

// ---------------------------------------------------------------- processes

/// A `vctts-server` process with its log file; killed on drop.
struct Proc {
    child: Option<Child>,
    role: String,
    log: PathBuf,
    base: String,
}

impl Proc {
    fn start(bin: &Path, args: &[&str], log: &Path) -> Proc {
        let file = std::fs::File::create(log).expect("create log");
        let child = Command::new(bin)
            .args(args)
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(file.try_clone().unwrap())
            .stderr(file)
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {}: {e}", bin.display()));
        let mut p = Proc {
            child: Some(child),
            role: args[0].to_string(),
            log: log.to_path_buf(),
            base: String::new(),
        };
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            let text = std::fs::read_to_string(log).unwrap_or_default();
            if let Some(rest) = text.split("listening on http://").nth(1) {
                let addr = rest.split_whitespace().next().unwrap_or("").to_string();
                p.base = format!("http://{addr}");
                return p;
            }
            if let Some(c) = p.child.as_mut() {
                if let Ok(Some(status)) = c.try_wait() {
                    panic!("{} exited with {status} before listening:\n{text}", p.role);
                }
            }
            if Instant::now() > deadline {
                panic!("{} did not listen within 120 s:\n{text}", p.role);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn pid(&self) -> u32 {
        self.child.as_ref().map(|c| c.id()).unwrap_or(0)
    }

    fn signal(&self, sig: &str) {
        let _ = Command::new("kill").args([sig, &self.pid().to_string()]).status();
    }

    fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Resident set size in KiB (`VmRSS`).
    fn rss_kib(&self) -> u64 {
        let s = std::fs::read_to_string(format!("/proc/{}/status", self.pid())).unwrap_or_default();
        s.lines()
            .find(|l| l.starts_with("VmRSS:"))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    }

    fn panics(&self) -> Vec<String> {
        log_panics(&self.log)
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if let Some(c) = self.child.as_ref() {
            // A stopped process must be continued to die cleanly.
            let _ = Command::new("kill").args(["-CONT", &c.id().to_string()]).status();
        }
        self.kill9();
    }
}

fn log_panics(log: &Path) -> Vec<String> {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .filter(|l| l.contains("panicked at") || l.contains("RUST_BACKTRACE"))
        .map(|l| l.chars().take(300).collect())
        .collect()
}

fn write(dir: &Path, name: &str, text: &str) -> String {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p.to_string_lossy().into_owned()
}

/// `stall`: extra `cluster` keys (`, stall_timeout: 4`), empty for the defaults.
fn gateway_yaml(data: &Path, port: u16, heartbeat: f64, dead: f64, stall: &str) -> String {
    // The registry keeps an offline node at least as long as it waits to call it dead.
    let retention = (dead * 2.0).max(600.0);
    format!(
        "server: {{ host: 127.0.0.1, port: {port} }}\n\
         registry: {{ heartbeat_interval: {heartbeat}, dead_threshold: {dead}, retention: {retention}, policy: least_inflight }}\n\
         cluster: {{ token: \"{TOKEN}\", connect_timeout: 1, first_byte_timeout: 30, request_timeout: 120, max_retries: 2{stall} }}\n\
         limiter: {{ enabled: false }}\n\
         storage: {{ data_dir: \"{}\" }}\n",
        data.display()
    )
}

fn worker_yaml(gateway: &str, models: &Path, heartbeat: f64) -> String {
    format!(
        "worker: {{ type: openvoice, host: 127.0.0.1, port: 0 }}\n\
         gateway: {{ url: \"{gateway}\" }}\n\
         cluster: {{ token: \"{TOKEN}\", heartbeat_interval: {heartbeat}, drain_timeout: 10 }}\n\
         model: {{ path: \"{}\", auto_load: true, threads: 1 }}\n\
         resources: {{ max_concurrent: 2, queue_size: 64 }}\n",
        models.display()
    )
}

/// A gateway and its workers in `dir`.
struct Cluster {
    dir: PathBuf,
    gateway: Proc,
    workers: Vec<Proc>,
    gateway_config: String,
}

impl Cluster {
    async fn start(o: &Opts, name: &str, workers: usize, heartbeat: f64, dead: f64, stall: &str) -> Cluster {
        let dir = o.work.join(name);
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let dir = std::fs::canonicalize(&dir).unwrap();
        let data = dir.join("data");
        let cfg = write(
            &dir,
            "gateway.yaml",
            &gateway_yaml(&data, 0, heartbeat, dead, stall),
        );
        let gateway = Proc::start(
            &o.server_bin,
            &["gateway", "--config", &cfg],
            &dir.join("gateway.log"),
        );
        // Later restarts listen on the same port.
        let port: u16 = gateway.base.rsplit(':').next().unwrap().parse().unwrap();
        let cfg = write(
            &dir,
            "gateway.yaml",
            &gateway_yaml(&data, port, heartbeat, dead, stall),
        );
        let mut c = Cluster {
            dir: dir.clone(),
            gateway,
            workers: Vec::new(),
            gateway_config: cfg,
        };
        for i in 0..workers {
            let wcfg = write(
                &dir,
                &format!("worker{i}.yaml"),
                &worker_yaml(&c.gateway.base, &o.models, heartbeat),
            );
            c.workers.push(Proc::start(
                &o.server_bin,
                &["worker", "--config", &wcfg],
                &dir.join(format!("worker{i}.log")),
            ));
        }
        c.wait_ready(workers, Duration::from_secs(120))
            .await
            .expect("workers ready");
        wait_healthy(&c.gateway.base, Duration::from_secs(120)).await;
        c
    }

    async fn ready(&self) -> usize {
        ready_nodes(&self.gateway.base).await
    }

    async fn wait_ready(&self, n: usize, within: Duration) -> Option<Duration> {
        let t = Instant::now();
        while t.elapsed() < within {
            if self.ready().await >= n {
                return Some(t.elapsed());
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        None
    }

    fn procs(&self) -> Vec<&Proc> {
        std::iter::once(&self.gateway)
            .chain(self.workers.iter())
            .collect()
    }
}

/// Waits until the server says it is ready (`/api/v3/health/ready` 200):
/// the stress phases start on a server that has finished starting, so an
/// answer of a server still loading is not counted against it.
async fn wait_healthy(base: &str, within: Duration) {
    let t = Instant::now();
    while t.elapsed() < within {
        if let Ok(r) = client().get(format!("{base}/api/v3/health/ready")).send().await {
            if r.status() == 200 {
                return;
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{base} was not ready within {within:?}");
}

async fn ready_nodes(base: &str) -> usize {
    let Ok(r) = client().get(format!("{base}/api/v3/nodes")).send().await else {
        return 0;
    };
    let v: Value = r.json().await.unwrap_or(Value::Null);
    v["nodes"]
        .as_array()
        .map(|a| a.iter().filter(|n| n["state"] == "ready").count())
        .unwrap_or(0)
}

/// The driver's HTTP client. Idle pooled connections are dropped after 5 s:
/// the server closes a keep-alive connection that has been idle for its
/// `server.header_read_timeout` (10 s; the deadline for the next request's
/// head starts when the previous answer is done), and a client that keeps
/// idle connections longer (reqwest's default is 90 s) may send a request
/// on one in the instant the server closes it — a transport error that no
/// server could avoid (RFC 9112 §9.3.1: the client may retry it).
/// The servers' in-memory log ring, in records (`vctts_server::logs::RING_CAPACITY`;
/// this driver does not link the server crate).
const LOG_RING_CAPACITY: usize = 5000;

/// Requests of the warm-up's second part (at concurrency 1): one phase's
/// worth of a 10,000-request run.
const WARM_UP_PASS: usize = 1250;

/// Idle time before the baseline and the end readings of memory: longer
/// than jemalloc's decay time (10 s), after which its background thread has
/// given back the pages freed by the last requests.
const SETTLE: Duration = Duration::from_secs(12);

/// Sends `n` voice-list requests (each logged once at INFO by every server
/// on its path) at concurrency 32; their statuses are not counted.
async fn fill_log_ring(c: &reqwest::Client, base: &str, n: usize) {
    eprintln!("stress: filling the servers' log rings ({n} logged requests)");
    futures::stream::iter(0..n)
        .for_each_concurrent(32, |_| async move {
            let _ = c.get(format!("{base}/api/v3/voices?limit=1")).send().await;
        })
        .await;
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(180))
        .pool_max_idle_per_host(64)
        .pool_idle_timeout(Duration::from_secs(5))
        .build()
        .unwrap()
}

// ----------------------------------------------------------------- requests

/// One request of the mix: what to send and which statuses are right.
struct Req {
    kind: &'static str,
    method: reqwest::Method,
    path: String,
    headers: Vec<(String, String)>,
    body: Body,
    expect: &'static [u16],
}

enum Body {
    None,
    Json(String),
    Raw(&'static str, Vec<u8>),
    Form(Vec<(&'static str, FormPart)>),
}

enum FormPart {
    Text(String),
    File(Vec<u8>, &'static str),
}

fn json_req(kind: &'static str, path: &str, body: impl Into<String>, expect: &'static [u16]) -> Req {
    Req {
        kind,
        method: reqwest::Method::POST,
        path: path.into(),
        headers: vec![],
        body: Body::Json(body.into()),
        expect,
    }
}

fn get(kind: &'static str, path: &str, expect: &'static [u16]) -> Req {
    Req {
        kind,
        method: reqwest::Method::GET,
        path: path.into(),
        headers: vec![],
        body: Body::None,
        expect,
    }
}

/// Picks one request of the mix. Weights: about 30 % synthesis of some form,
/// the rest cheap (state endpoints and bad input).
fn pick(rng: &mut StdRng, reference: &Arc<Vec<u8>>, voices: &[String]) -> Req {
    let text = SHORT_TEXTS[rng.random_range(0..SHORT_TEXTS.len())];
    let r = rng.random_range(0..1000);
    match r {
        // ---- valid synthesis
        0..=99 => {
            let fmt = ["wav", "pcm", "mp3", "flac", "opus", "wav_f32", "aac"][rng.random_range(0..7)];
            json_req(
                "synthesize",
                "/api/v3/synthesize",
                json!({"text": text, "format": fmt, "seed": rng.random_range(0..1000), "speed": 1.1})
                    .to_string(),
                &[200],
            )
        }
        100..=159 => {
            let fmt = ["wav", "pcm", "mp3", "flac", "opus"][rng.random_range(0..5)];
            json_req(
                "stream",
                "/api/v3/synthesize/stream",
                json!({"text": text, "format": fmt}).to_string(),
                &[200],
            )
        }
        160..=184 => json_req(
            "batch_json",
            "/api/v3/synthesize/batch",
            json!({"items": [{"text": text}, {"text": ""}, {"text": "Two.", "format": "pcm"}]}).to_string(),
            &[200],
        ),
        185..=204 => json_req(
            "batch_zip",
            "/api/v3/synthesize/batch?format=zip",
            json!({"items": [{"text": text}, {"text": "Two.", "format": "flac"}]}).to_string(),
            &[200],
        ),
        205..=244 => {
            let (fmt, sse) = [
                ("mp3", "audio"),
                ("pcm", "audio"),
                ("wav", "sse"),
                ("opus", "audio"),
            ][rng.random_range(0..4)];
            json_req(
                "openai_speech",
                "/v1/audio/speech",
                json!({"model": "tts-1", "input": text, "voice": "alloy", "response_format": fmt, "stream_format": sse})
                    .to_string(),
                &[200],
            )
        }
        245..=264 if !voices.is_empty() => {
            let v = &voices[rng.random_range(0..voices.len())];
            json_req(
                "synthesize_cloned",
                "/api/v3/synthesize",
                json!({"text": text, "voice": v, "format": "pcm"}).to_string(),
                &[200],
            )
        }
        // ---- state endpoints
        265..=314 => get(
            "health",
            ["/api/v3/health", "/api/v3/health/live", "/api/v3/health/ready"][rng.random_range(0..3)],
            &[200],
        ),
        315..=344 => get("metrics", "/api/v3/metrics", &[200]),
        345..=369 => get(
            "engines_nodes",
            [
                "/api/v3/engines",
                "/api/v3/nodes",
                "/v1/models",
                "/v1/audio/voices",
            ][rng.random_range(0..4)],
            &[200],
        ),
        370..=374 => get("openapi", "/api/v3/openapi.json", &[200]),
        375..=404 => get("voices_list", "/api/v3/voices?limit=10", &[200]),
        405..=424 if !voices.is_empty() => {
            let v = &voices[rng.random_range(0..voices.len())];
            get("voice_get", &format!("/api/v3/voices/{v}"), &[200])
        }
        // ---- bad input
        425..=454 => json_req(
            "bad_malformed_json",
            "/api/v3/synthesize",
            "{\"text\": \"Hello\",",
            &[400],
        ),
        455..=479 => json_req(
            "bad_wrong_types",
            "/api/v3/synthesize",
            [
                r#"{"text": 5}"#,
                r#"{"text": "Hi", "speed": "fast"}"#,
                r#"{"text": ["a"]}"#,
                r#"{"text": "Hi", "seed": -1}"#,
                r#"{"text":"Hi","colour":"blue"}"#,
                "[]",
                "null",
            ][rng.random_range(0..7)],
            &[422],
        ),
        480..=494 => json_req(
            "bad_huge_text",
            "/api/v3/synthesize",
            json!({"text": "a".repeat(5001)}).to_string(),
            &[422],
        ),
        495..=504 => json_req(
            "bad_body_too_large",
            "/api/v3/synthesize",
            json!({"text": "b ".repeat(600_000)}).to_string(),
            &[413],
        ),
        505..=529 => json_req(
            "bad_empty_text",
            "/api/v3/synthesize",
            [
                r#"{"text": ""}"#,
                r#"{"text": "   "}"#,
                r#"{"text": "...!?"}"#,
                "{}",
            ][rng.random_range(0..4)],
            &[422],
        ),
        530..=549 => json_req(
            "bad_output_too_long",
            "/api/v3/synthesize",
            json!({"text": "1234567890".repeat(500)}).to_string(),
            &[413],
        ),
        550..=574 => json_req(
            "bad_unknown_voice",
            "/api/v3/synthesize",
            json!({"text": text, "voice": format!("nobody-{}", rng.random_range(0..1000))}).to_string(),
            &[404],
        ),
        575..=589 => json_req(
            "bad_voice_id",
            "/api/v3/synthesize",
            json!({"text": text, "voice": "../etc/passwd"}).to_string(),
            &[400],
        ),
        590..=609 => json_req(
            "bad_unknown_engine",
            "/api/v3/synthesize",
            json!({"text": text, "engine": "melo"}).to_string(),
            &[422],
        ),
        610..=629 => json_req(
            "bad_language",
            "/api/v3/synthesize",
            [
                r#"{"text":"Bonjour","language":"fr"}"#,
                r#"{"text":"Hi","language":"en US!"}"#,
            ][rng.random_range(0..2)],
            &[422],
        ),
        630..=644 => json_req(
            "bad_options",
            "/api/v3/synthesize",
            [
                r#"{"text":"Hi","format":"mp3","sample_rate":23000}"#,
                r#"{"text":"Hi","speed":9}"#,
                r#"{"text":"Hi","format":"wma"}"#,
                r#"{"text":"Hi","sampling":{"temperature":0.7}}"#,
            ][rng.random_range(0..4)],
            &[422],
        ),
        645..=654 => json_req(
            "bad_stream_format",
            "/api/v3/synthesize/stream",
            r#"{"text":"Hi","format":"wav_f32"}"#,
            &[422],
        ),
        655..=669 => json_req(
            "bad_batch",
            "/api/v3/synthesize/batch",
            if rng.random_range(0..2) == 0 {
                r#"{"items": []}"#.to_string()
            } else {
                json!({"items": vec![json!({"text": "x"}); 17]}).to_string()
            },
            &[413, 422],
        ),
        670..=689 => json_req(
            "bad_openai",
            "/v1/audio/speech",
            [
                r#"{"model":"tts-1","input":"Hi","voice":"alloy","response_format":"ogg"}"#,
                r#"{"model":"tts-1","input":"Hi","voice":"nobody-here"}"#,
                r#"{"model":"tts-1","input":"","voice":"alloy"}"#,
                r#"{"model":"dall-e","input":"Hi","voice":"alloy"}"#,
            ][rng.random_range(0..4)],
            &[400, 404],
        ),
        690..=709 => Req {
            kind: "bad_content_type",
            method: reqwest::Method::POST,
            path: "/api/v3/synthesize".into(),
            headers: vec![],
            body: Body::Raw("text/plain", b"Hello".to_vec()),
            expect: &[415],
        },
        710..=724 => Req {
            kind: "bad_headers",
            method: reqwest::Method::GET,
            path: "/api/v3/health".into(),
            headers: vec![("x-padding".into(), "p".repeat(40 * 1024))],
            body: Body::None,
            expect: &[431],
        },
        725..=734 => get(
            "bad_long_uri",
            &format!("/api/v3/voices/{}", "u".repeat(9000)),
            &[414],
        ),
        735..=744 => get("bad_path_utf8", "/api/v3/voices/%FF%FE", &[400]),
        745..=769 => get(
            "bad_route",
            ["/api/v3/nope", "/api/v4/synthesize", "/cluster/v1/nodes"][rng.random_range(0..3)],
            &[401, 404],
        ),
        770..=784 => Req {
            kind: "bad_method",
            method: reqwest::Method::DELETE,
            path: "/api/v3/synthesize".into(),
            headers: vec![],
            body: Body::None,
            expect: &[405],
        },
        785..=799 => get(
            "bad_query",
            [
                "/api/v3/voices?limit=500",
                "/api/v3/voices?page=2",
                "/api/v3/voices?limit=x",
            ][rng.random_range(0..3)],
            &[400, 422],
        ),
        800..=829 => get(
            "bad_voice_lookup",
            &format!("/api/v3/voices/ghost-{}", rng.random_range(0..100)),
            &[404],
        ),
        830..=839 => Req {
            kind: "bad_delete",
            method: reqwest::Method::DELETE,
            path: format!("/api/v3/voices/ghost-{}", rng.random_range(0..100)),
            headers: vec![],
            body: Body::None,
            expect: &[404],
        },
        840..=869 => {
            let (name, audio): (&'static str, Vec<u8>) = match rng.random_range(0..4) {
                0 => ("noise.wav", (0..2000).map(|i| (i * 7 % 251) as u8).collect()),
                1 => ("short.wav", reference[..reference.len().min(4000)].to_vec()),
                2 => (
                    "truncated.mp3",
                    b"ID3\x04\x00\x00\x00\x00\x00\x21garbage".to_vec(),
                ),
                _ => ("empty.wav", Vec::new()),
            };
            Req {
                kind: "bad_upload",
                method: reqwest::Method::POST,
                path: "/api/v3/extract_voice".into(),
                headers: vec![],
                body: Body::Form(vec![
                    ("audio", FormPart::File(audio, name)),
                    ("name", FormPart::Text("x".into())),
                ]),
                expect: &[422],
            }
        }
        870..=884 => Req {
            kind: "bad_upload_form",
            method: reqwest::Method::POST,
            path: "/api/v3/extract_voice".into(),
            headers: vec![],
            body: [
                Body::Raw(
                    "multipart/form-data; boundary=XyZ",
                    b"--XyZ\r\nContent-Disposition: form-da".to_vec(),
                ),
                Body::Json(r#"{"audio": "not a form"}"#.into()),
                Body::Form(vec![("name", FormPart::Text("no audio".into()))]),
                Body::Form(vec![
                    ("audio", FormPart::File(vec![1, 2, 3], "a.wav")),
                    ("colour", FormPart::Text("blue".into())),
                ]),
            ]
            .into_iter()
            .nth(rng.random_range(0..4))
            .unwrap(),
            expect: &[400, 415, 422],
        },
        885..=899 => Req {
            kind: "bad_request_id",
            method: reqwest::Method::GET,
            path: "/api/v3/health".into(),
            headers: vec![("x-request-id".into(), "bad id with spaces & symbols!".into())],
            body: Body::None,
            expect: &[200],
        },
        900..=919 => json_req("bad_cluster_anonymous", "/cluster/v1/register", "{}", &[401, 404]),
        _ => get("health", "/api/v3/health/live", &[200]),
    }
}

fn content_type(body: &Body) -> Option<&'static str> {
    match body {
        Body::Json(_) => Some("application/json"),
        Body::Raw(ct, _) => Some(*ct),
        _ => None,
    }
}

/// What one request gave.
struct Outcome {
    status: u16,
    code: String,
    millis: f64,
    ok: bool,
    detail: String,
}

async fn send(c: &reqwest::Client, base: &str, req: Req) -> Outcome {
    let t = Instant::now();
    let mut b = c.request(req.method.clone(), format!("{base}{}", req.path));
    if let Some(ct) = content_type(&req.body) {
        b = b.header("content-type", ct);
    }
    for (k, v) in &req.headers {
        b = b.header(k.as_str(), v.as_str());
    }
    b = match req.body {
        Body::None => b,
        Body::Json(s) => b.body(s),
        Body::Raw(_, bytes) => b.body(bytes),
        Body::Form(parts) => {
            let mut form = reqwest::multipart::Form::new();
            for (name, p) in parts {
                form = match p {
                    FormPart::Text(t) => form.text(name, t),
                    FormPart::File(bytes, file) => {
                        form.part(name, reqwest::multipart::Part::bytes(bytes).file_name(file))
                    }
                };
            }
            b.multipart(form)
        }
    };
    match b.send().await {
        Ok(r) => {
            let status = r.status().as_u16();
            let mut body = Vec::new();
            let mut stream = r.bytes_stream();
            let mut read_err = None;
            while let Some(chunk) = stream.next().await {
                match chunk {
                    Ok(c) => body.extend_from_slice(&c),
                    Err(e) => {
                        read_err = Some(e.to_string());
                        break;
                    }
                }
            }
            let v: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
            let code = v["error"]["code"].as_str().unwrap_or("").to_string();
            let mut ok = req.expect.contains(&status) && read_err.is_none();
            // A 200 that is audio must carry some.
            if ok && status == 200 && body.is_empty() {
                ok = false;
            }
            let detail = if ok {
                String::new()
            } else {
                format!(
                    "{} {} {}: {status} {code} {}{}",
                    req.kind,
                    req.method,
                    req.path.chars().take(80).collect::<String>(),
                    String::from_utf8_lossy(&body[..body.len().min(200)]),
                    read_err.map(|e| format!(" (body cut: {e})")).unwrap_or_default()
                )
            };
            Outcome {
                status,
                code,
                millis: t.elapsed().as_secs_f64() * 1000.0,
                ok,
                detail,
            }
        }
        Err(e) => Outcome {
            status: 0,
            code: "transport".into(),
            millis: t.elapsed().as_secs_f64() * 1000.0,
            ok: false,
            detail: format!(
                "{} {} {}: transport error {}",
                req.kind,
                req.method,
                req.path.chars().take(80).collect::<String>(),
                error_chain(&e)
            ),
        },
    }
}

/// An error with its causes (`a: b: c`): reqwest's own message only says
/// "error sending request", the cause says why (reset, closed, timed out).
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        let _ = write!(out, ": {c}");
        cause = c.source();
    }
    out
}

// -------------------------------------------------------------------- stats

#[derive(Default)]
struct KindStats {
    count: u64,
    statuses: BTreeMap<String, u64>,
    millis: Vec<f64>,
    unexpected: u64,
}

#[derive(Default)]
struct Stats {
    kinds: BTreeMap<&'static str, KindStats>,
    unexpected: Vec<String>,
}

impl Stats {
    fn add(&mut self, kind: &'static str, o: &Outcome) {
        let k = self.kinds.entry(kind).or_default();
        k.count += 1;
        let key = if o.code.is_empty() {
            o.status.to_string()
        } else {
            format!("{} {}", o.status, o.code)
        };
        *k.statuses.entry(key).or_default() += 1;
        k.millis.push(o.millis);
        if !o.ok {
            k.unexpected += 1;
            if self.unexpected.len() < 30 {
                self.unexpected.push(o.detail.clone());
            }
        }
    }

    fn total(&self) -> u64 {
        self.kinds.values().map(|k| k.count).sum()
    }

    fn total_unexpected(&self) -> u64 {
        self.kinds.values().map(|k| k.unexpected).sum()
    }
}

fn pct(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

// ------------------------------------------------------------------- stress

/// Creates `n` voices by extraction (counted as requests of the run).
async fn make_voices(
    c: &reqwest::Client,
    base: &str,
    reference: &[u8],
    tag: &str,
    n: usize,
    stats: &Mutex<Stats>,
) -> Vec<String> {
    let mut ids = Vec::new();
    for i in 0..n {
        let id = format!("stress-{tag}-{i}");
        let o = send(
            c,
            base,
            Req {
                kind: "voice_extract",
                method: reqwest::Method::POST,
                path: "/api/v3/extract_voice".into(),
                headers: vec![],
                body: Body::Form(vec![
                    ("audio", FormPart::File(reference.to_vec(), "reference.wav")),
                    ("voice_id", FormPart::Text(id.clone())),
                    ("name", FormPart::Text(format!("Stress {i}"))),
                ]),
                expect: &[201],
            },
        )
        .await;
        let ok = o.ok;
        stats.lock().unwrap().add("voice_extract", &o);
        if ok {
            ids.push(id);
        }
    }
    ids
}

/// One CRUD round: extract, get, audio, synthesize with it, delete, get.
async fn crud_round(c: &reqwest::Client, base: &str, reference: &[u8], id: String, stats: &Mutex<Stats>) {
    let steps: Vec<Req> = vec![
        Req {
            kind: "voice_extract",
            method: reqwest::Method::POST,
            path: "/api/v3/extract_voice".into(),
            headers: vec![],
            body: Body::Form(vec![
                ("audio", FormPart::File(reference.to_vec(), "reference.wav")),
                ("voice_id", FormPart::Text(id.clone())),
            ]),
            expect: &[201],
        },
        get("voice_get", &format!("/api/v3/voices/{id}"), &[200]),
        get("voice_audio", &format!("/api/v3/voices/{id}/audio"), &[200]),
        json_req(
            "synthesize_cloned",
            "/api/v3/synthesize",
            json!({"text": "Cloned.", "voice": id}).to_string(),
            &[200],
        ),
        Req {
            kind: "voice_delete",
            method: reqwest::Method::DELETE,
            path: format!("/api/v3/voices/{id}"),
            headers: vec![],
            body: Body::None,
            expect: &[204],
        },
        get("voice_get_deleted", &format!("/api/v3/voices/{id}"), &[404]),
    ];
    for r in steps {
        let kind = r.kind;
        let o = send(c, base, r).await;
        stats.lock().unwrap().add(kind, &o);
    }
}

/// Sends `n` requests of the mix at concurrency `conc`; stops early at `until`.
#[allow(clippy::too_many_arguments)]
async fn phase(
    base: &str,
    n: usize,
    conc: usize,
    seed: u64,
    reference: Arc<Vec<u8>>,
    voices: Arc<Vec<String>>,
    stats: Arc<Mutex<Stats>>,
    until: Instant,
    crud_counter: Arc<AtomicU64>,
) {
    let next = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for w in 0..conc {
        let (base, reference, voices, stats, next, crud) = (
            base.to_string(),
            reference.clone(),
            voices.clone(),
            stats.clone(),
            next.clone(),
            crud_counter.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let c = client();
            let mut rng = StdRng::seed_from_u64(seed ^ (w as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15));
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= n || Instant::now() > until {
                    break;
                }
                // About one request in 150 starts a CRUD round (6 requests).
                if rng.random_range(0..150) == 0 {
                    let id = format!("crud-{}", crud.fetch_add(1, Ordering::Relaxed));
                    crud_round(&c, &base, &reference, id, &stats).await;
                    next.fetch_add(5, Ordering::Relaxed);
                    continue;
                }
                let req = pick(&mut rng, &reference, &voices);
                let kind = req.kind;
                let o = send(&c, &base, req).await;
                stats.lock().unwrap().add(kind, &o);
            }
        }));
    }
    for t in tasks {
        let _ = t.await;
    }
}

/// One reading of every server's memory during a stress run.
struct Sample {
    /// When: "after warm-up" or the phase just finished.
    at: String,
    /// Requests counted so far (warm-up excluded).
    requests: u64,
    /// Per process: (`VmRSS`, `RssAnon`) in KiB.
    rss: Vec<(u64, u64)>,
    /// The front server's allocator gauges (allocated, resident bytes), when
    /// its `/metrics` has them.
    heap: Option<(u64, u64)>,
}

/// `VmRSS` and `RssAnon` of a process, in KiB (0 when it is gone).
fn proc_memory(pid: u32) -> (u64, u64) {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        s.lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    (field("VmRSS:"), field("RssAnon:"))
}

/// The allocator gauges of the server at `base` (its `/metrics`), if any.
async fn heap_gauges(c: &reqwest::Client, base: &str) -> Option<(u64, u64)> {
    let text = c
        .get(format!("{base}/api/v3/metrics"))
        .send()
        .await
        .ok()?
        .text()
        .await
        .ok()?;
    let gauge = |name: &str| {
        text.lines()
            .find_map(|l| {
                l.strip_prefix(name)?
                    .strip_prefix(' ')?
                    .trim()
                    .parse::<f64>()
                    .ok()
            })
            .map(|v| v as u64)
    };
    Some((
        gauge("vctts_allocator_allocated_bytes")?,
        gauge("vctts_allocator_resident_bytes")?,
    ))
}

async fn sample(c: &reqwest::Client, base: &str, pids: &[u32], at: String, requests: u64) -> Sample {
    // The scrape first: its own allocations are then in the RSS read after it.
    let heap = heap_gauges(c, base).await;
    Sample {
        at,
        requests,
        rss: pids.iter().map(|p| proc_memory(*p)).collect(),
        heap,
    }
}

struct TopologyResult {
    name: String,
    stats: Stats,
    rss: Vec<(String, u64, u64)>,
    /// Memory after warm-up and after each phase.
    samples: Vec<Sample>,
    panics: Vec<String>,
    elapsed: Duration,
    completed: bool,
    warmup: u64,
}

impl TopologyResult {
    fn passed(&self) -> bool {
        self.stats.total_unexpected() == 0
            && self.panics.is_empty()
            && self.completed
            && self
                .rss
                .iter()
                .all(|(_, before, after)| *after as f64 <= *before as f64 * 1.2)
    }
}

async fn stress(o: &Opts, topology: &str, reference: Arc<Vec<u8>>) -> TopologyResult {
    eprintln!("stress: starting {topology}");
    let mut _cluster = None;
    let mut _standalone = None;
    let (base, procs): (String, Vec<(String, u32, PathBuf)>) = if topology == "cluster" {
        let c = Cluster::start(o, "stress-cluster", 2, 1.0, 5.0, "").await;
        let base = c.gateway.base.clone();
        let procs = c
            .procs()
            .iter()
            .enumerate()
            .map(|(i, p)| {
                (
                    if i == 0 {
                        "gateway".to_string()
                    } else {
                        format!("worker {i}")
                    },
                    p.pid(),
                    p.log.clone(),
                )
            })
            .collect();
        _cluster = Some(c);
        (base, procs)
    } else {
        let dir = o.work.join("stress-standalone");
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let dir = std::fs::canonicalize(&dir).unwrap();
        let cfg = write(&dir, "gateway.yaml", "limiter: { enabled: false }\n");
        let models = o.models.to_string_lossy().into_owned();
        let data = dir.join("data").to_string_lossy().into_owned();
        let p = Proc::start(
            &o.server_bin,
            &[
                "standalone",
                "--config",
                &cfg,
                "--host",
                "127.0.0.1",
                "--port",
                "0",
                "--models",
                &models,
                "--data",
                &data,
            ],
            &dir.join("standalone.log"),
        );
        let base = p.base.clone();
        let t = Instant::now();
        while ready_nodes(&base).await < 1 && t.elapsed() < Duration::from_secs(120) {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        wait_healthy(&base, Duration::from_secs(120)).await;
        let procs = vec![("standalone".to_string(), p.pid(), p.log.clone())];
        _standalone = Some(p);
        (base, procs)
    };
    let pids: Vec<u32> = procs.iter().map(|(_, pid, _)| *pid).collect();
    let c = client();
    let stats = Arc::new(Mutex::new(Stats::default()));
    let crud = Arc::new(AtomicU64::new(0));
    let voices = Arc::new(make_voices(&c, &base, &reference, topology, 3, &stats).await);
    // Warm-up, so arenas, pools and caches reach their size: the highest
    // concurrency, then one phase's worth of the mix one request at a time.
    // A run with 400 requests at 32 only measured the gateway's live heap
    // (its allocator gauges) at 17 MiB after warm-up and 32-37 MiB after
    // every later phase: it reaches its size during the first 1,250
    // requests of the mix and then stays (docs/RELIABILITY.md).
    let warm = Arc::new(Mutex::new(Stats::default()));
    let far = Instant::now() + Duration::from_secs(3600);
    for (n, conc, seed) in [(400, 32, 0xABCD), (WARM_UP_PASS, 1, 0xABCE)] {
        eprintln!("stress: {topology}: warm-up, {n} requests at concurrency {conc}");
        phase(
            &base,
            n,
            conc,
            o.seed ^ seed,
            reference.clone(),
            voices.clone(),
            warm.clone(),
            far,
            crud.clone(),
        )
        .await;
    }
    let warmup = warm.lock().unwrap().total();
    {
        // Warm-up answers count too: a wrong status is wrong at any time.
        let w = std::mem::take(&mut *warm.lock().unwrap());
        let mut s = stats.lock().unwrap();
        s.unexpected.extend(w.unexpected);
        for (k, v) in w.kinds {
            let e = s.kinds.entry(k).or_default();
            e.count += v.count;
            e.unexpected += v.unexpected;
            for (st, n) in v.statuses {
                *e.statuses.entry(st).or_default() += n;
            }
            e.millis.extend(v.millis);
        }
    }
    // Bounded buffers at their bound before the baseline: the in-memory log
    // ring keeps the last `RING_CAPACITY` records (one per logged request),
    // so a baseline taken with it part-full counts its filling as growth.
    // Cheap logged requests (a voice list) fill it; they are not counted.
    fill_log_ring(&c, &base, LOG_RING_CAPACITY + 100).await;
    // The baseline and the end are read the same way: after the servers
    // have been idle for SETTLE (longer than jemalloc's 10 s decay, so the
    // pages freed by the last requests are given back in both). The reading
    // after each phase is taken at once (with such pages in it).
    tokio::time::sleep(SETTLE).await;
    let mut samples = vec![sample(&c, &base, &pids, "warm-up, then idle 12 s".into(), 0).await];
    let before: Vec<u64> = samples[0].rss.iter().map(|r| r.0).collect();
    let start = Instant::now();
    let until = start + o.duration;
    let levels = [1usize, 8, 32, 4, 16, 2, 24, 12];
    let per = o.requests.div_ceil(levels.len());
    for (i, &conc) in levels.iter().enumerate() {
        eprintln!("stress: {topology}: {per} requests at concurrency {conc}");
        phase(
            &base,
            per,
            conc,
            o.seed.wrapping_add(i as u64),
            reference.clone(),
            voices.clone(),
            stats.clone(),
            until,
            crud.clone(),
        )
        .await;
        let done = stats.lock().unwrap().total() - warmup;
        samples.push(
            sample(
                &c,
                &base,
                &pids,
                format!("phase {} (concurrency {conc})", i + 1),
                done,
            )
            .await,
        );
    }
    let elapsed = start.elapsed();
    tokio::time::sleep(SETTLE).await;
    let done = stats.lock().unwrap().total() - warmup;
    samples.push(sample(&c, &base, &pids, "the run, then idle 12 s".into(), done).await);
    let after: Vec<u64> = samples.last().unwrap().rss.iter().map(|r| r.0).collect();
    let stats = std::mem::take(&mut *stats.lock().unwrap());
    let counted = stats.total() - warmup;
    let panics = procs
        .iter()
        .flat_map(|(n, _, log)| log_panics(log).into_iter().map(move |l| format!("{n}: {l}")))
        .collect();
    TopologyResult {
        name: topology.to_string(),
        completed: counted as usize >= o.requests,
        stats,
        rss: procs
            .iter()
            .zip(before.iter().zip(after.iter()))
            .map(|((n, _, _), (b, a))| (n.clone(), *b, *a))
            .collect(),
        samples,
        panics,
        elapsed,
        warmup,
    }
}

fn report_topology(md: &mut String, r: &TopologyResult, requests: usize) {
    let total = r.stats.total();
    let _ = writeln!(
        md,
        "\n### Stress: {} — {}\n\n{} requests ({} of them warm-up at concurrency 32 then 1, then {} in phases at concurrency 1, 8, 32, 4, 16, 2, 24, 12) in {:.0} s after warm-up ({:.1} requests/s); {} unexpected statuses; {} panic lines in the server logs.\n",
        if r.name == "cluster" {
            "a gateway with two workers"
        } else {
            "standalone"
        },
        if r.passed() { "**pass**" } else { "**FAIL**" },
        total,
        r.warmup,
        requests,
        r.elapsed.as_secs_f64(),
        (total - r.warmup) as f64 / r.elapsed.as_secs_f64().max(0.001),
        r.stats.total_unexpected(),
        r.panics.len()
    );
    if !r.completed {
        let _ = writeln!(
            md,
            "The run stopped at its time limit before all {requests} requests were sent.\n"
        );
    }
    let _ = writeln!(
        md,
        "| kind | requests | statuses | p50 ms | p95 ms | p99 ms | max ms | unexpected |"
    );
    let _ = writeln!(md, "|---|---:|---|---:|---:|---:|---:|---:|");
    for (kind, k) in &r.stats.kinds {
        let mut m = k.millis.clone();
        m.sort_by(|a, b| a.partial_cmp(b).unwrap());
        let statuses = k
            .statuses
            .iter()
            .map(|(s, n)| format!("{s} ×{n}"))
            .collect::<Vec<_>>()
            .join(", ");
        let _ = writeln!(
            md,
            "| {kind} | {} | {statuses} | {:.0} | {:.0} | {:.0} | {:.0} | {} |",
            k.count,
            pct(&m, 0.5),
            pct(&m, 0.95),
            pct(&m, 0.99),
            m.last().copied().unwrap_or(0.0),
            k.unexpected
        );
    }
    let _ = writeln!(
        md,
        "\n| process | RSS after warm-up (idle 12 s) | RSS after the run (idle 12 s) | change |\n|---|---:|---:|---:|"
    );
    for (n, b, a) in &r.rss {
        let _ = writeln!(
            md,
            "| {n} | {:.1} MiB | {:.1} MiB | {:+.1} % |",
            *b as f64 / 1024.0,
            *a as f64 / 1024.0,
            (*a as f64 / (*b).max(1) as f64 - 1.0) * 100.0
        );
    }
    report_samples(md, r);
    if !r.stats.unexpected.is_empty() {
        let _ = writeln!(md, "\nFirst unexpected answers:\n");
        for u in &r.stats.unexpected {
            let _ = writeln!(md, "- `{}`", u.replace('`', "'").replace('\n', " "));
        }
    }
    for p in r.panics.iter().take(10) {
        let _ = writeln!(md, "- panic: `{}`", p.replace('`', "'"));
    }
}

/// The memory series: RSS (and its anonymous part) of every process after
/// warm-up and after each phase, and the front server's allocator gauges.
fn report_samples(md: &mut String, r: &TopologyResult) {
    let mib = |kib: u64| kib as f64 / 1024.0;
    let _ = writeln!(
        md,
        "\nMemory after warm-up, after each phase (read at once) and after the run (RSS, its anonymous part in brackets; heap: the {} allocator's live bytes / resident bytes, from its `/metrics`):\n",
        r.rss.first().map(|x| x.0.as_str()).unwrap_or("server")
    );
    let mut head = String::from("| after | requests |");
    let mut rule = String::from("|---|---:|");
    for (n, _, _) in &r.rss {
        let _ = write!(head, " {n} MiB |");
        rule.push_str("---:|");
    }
    head.push_str(" heap MiB |");
    rule.push_str("---:|");
    let _ = writeln!(md, "{head}\n{rule}");
    for s in &r.samples {
        let mut row = format!("| {} | {} |", s.at, s.requests);
        for (rss, anon) in &s.rss {
            let _ = write!(row, " {:.1} ({:.1}) |", mib(*rss), mib(*anon));
        }
        match s.heap {
            Some((a, res)) => {
                let _ = write!(
                    row,
                    " {:.1} / {:.1} |",
                    a as f64 / 1048576.0,
                    res as f64 / 1048576.0
                );
            }
            None => row.push_str(" – |"),
        }
        let _ = writeln!(md, "{row}");
    }
}

// ------------------------------------------------------------------- faults

struct Fault {
    name: &'static str,
    passed: bool,
    figures: String,
}

/// Valid whole synthesis requests at concurrency `conc` until `n` are done;
/// returns (status, millis) per request.
async fn synth_load(base: String, n: usize, conc: usize, done: Arc<AtomicUsize>) -> Vec<(u16, String, f64)> {
    let next = Arc::new(AtomicUsize::new(0));
    let out = Arc::new(Mutex::new(Vec::new()));
    let mut tasks = Vec::new();
    for w in 0..conc {
        let (base, next, out, done) = (base.clone(), next.clone(), out.clone(), done.clone());
        tasks.push(tokio::spawn(async move {
            let c = client();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= n {
                    break;
                }
                let text = SHORT_TEXTS[(i + w) % SHORT_TEXTS.len()];
                let o = send(
                    &c,
                    &base,
                    json_req(
                        "synthesize",
                        "/api/v3/synthesize",
                        json!({"text": text, "format": "pcm"}).to_string(),
                        &[200],
                    ),
                )
                .await;
                out.lock().unwrap().push((o.status, o.code, o.millis));
                done.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    for t in tasks {
        let _ = t.await;
    }
    std::mem::take(&mut *out.lock().unwrap())
}

fn summarize(results: &[(u16, String, f64)]) -> (usize, String, f64) {
    let mut by: BTreeMap<String, usize> = BTreeMap::new();
    for (s, c, _) in results {
        *by.entry(if c.is_empty() {
            s.to_string()
        } else {
            format!("{s} {c}")
        })
        .or_default() += 1;
    }
    let lost = results.iter().filter(|(s, _, _)| *s != 200).count();
    let max = results.iter().map(|r| r.2).fold(0.0, f64::max);
    (
        lost,
        by.iter()
            .map(|(k, v)| format!("{k} ×{v}"))
            .collect::<Vec<_>>()
            .join(", "),
        max,
    )
}

async fn wait_done(done: &AtomicUsize, n: usize) {
    while done.load(Ordering::Relaxed) < n {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

async fn fault_kill_worker(o: &Opts) -> Fault {
    let mut c = Cluster::start(o, "fault-kill9", 2, 0.5, 2.0, "").await;
    let done = Arc::new(AtomicUsize::new(0));
    let load = tokio::spawn(synth_load(c.gateway.base.clone(), 200, 8, done.clone()));
    wait_done(&done, 40).await;
    c.workers[0].kill9();
    let results = load.await.unwrap();
    let (lost, statuses, max) = summarize(&results);
    let panics: Vec<String> = c.procs().iter().flat_map(|p| p.panics()).collect();
    Fault {
        name: "kill -9 of a worker mid-load",
        passed: lost == 0 && panics.is_empty(),
        figures: format!(
            "200 synthesis requests at concurrency 8, worker 1 killed after 40 answers: {lost} lost ({statuses}); slowest {max:.0} ms; {} panic lines",
            panics.len()
        ),
    }
}

async fn fault_sigstop(o: &Opts) -> Fault {
    let c = Cluster::start(
        o,
        "fault-sigstop",
        2,
        0.5,
        30.0,
        ", stall_timeout: 4, stall_per_char: 0.02",
    )
    .await;
    let done = Arc::new(AtomicUsize::new(0));
    let load = tokio::spawn(synth_load(c.gateway.base.clone(), 120, 4, done.clone()));
    wait_done(&done, 20).await;
    c.workers[0].signal("-STOP");
    let stopped = Instant::now();
    // The load runs on while the worker is frozen; continue it after 20 s.
    while stopped.elapsed() < Duration::from_secs(20) && !load.is_finished() {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let remaining = Duration::from_secs(20).saturating_sub(stopped.elapsed());
    tokio::time::sleep(remaining).await;
    c.workers[0].signal("-CONT");
    let results = load.await.unwrap();
    let (lost, statuses, max) = summarize(&results);
    let slow = results.iter().filter(|r| r.2 > 15_000.0).count();
    let panics: Vec<String> = c.procs().iter().flat_map(|p| p.panics()).collect();
    // Failed over within the stall deadline: no request waited for the whole
    // freeze (a request held by the frozen worker takes ≥ 20 s).
    Fault {
        name: "SIGSTOP of a worker for 20 s",
        passed: lost == 0 && slow == 0 && panics.is_empty(),
        figures: format!(
            "120 synthesis requests at concurrency 4, worker 1 stopped for 20 s after 20 answers, stall deadline 4 s + 0.02 s per character: {lost} failed ({statuses}); {slow} took over 15 s; slowest {max:.0} ms"
        ),
    }
}

async fn fault_gateway_restart(o: &Opts) -> Fault {
    let heartbeat = 1.0;
    let mut c = Cluster::start(o, "fault-gateway", 2, heartbeat, 5.0, "").await;
    c.gateway.kill9();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let restarted = Instant::now();
    c.gateway = Proc::start(
        &o.server_bin,
        &["gateway", "--config", &c.gateway_config],
        &c.dir.join("gateway-restarted.log"),
    );
    let listening = restarted.elapsed();
    let back = c.wait_ready(2, Duration::from_secs(30)).await;
    let done = Arc::new(AtomicUsize::new(0));
    let results = synth_load(c.gateway.base.clone(), 20, 4, done).await;
    let (lost, statuses, _) = summarize(&results);
    let panics: Vec<String> = c.procs().iter().flat_map(|p| p.panics()).collect();
    // Within one heartbeat of the gateway listening again (+ 0.5 s for the
    // register round trip and this poll).
    let within = back.map(|b| b.as_secs_f64() <= heartbeat + 0.5).unwrap_or(false);
    Fault {
        name: "kill -9 and restart of the gateway",
        passed: within && lost == 0 && panics.is_empty(),
        figures: format!(
            "heartbeat {heartbeat} s; the new gateway listened after {:.2} s; both workers ready again {} after it listened; then 20 requests: {lost} failed ({statuses})",
            listening.as_secs_f64(),
            back.map(|b| format!("{:.2} s", b.as_secs_f64()))
                .unwrap_or_else(|| "not within 30 s".into())
        ),
    }
}

/// A node that registers with the token and answers synthesis calls badly.
async fn bad_node(gateway: &str, mode: &'static str) -> (tokio::task::JoinHandle<()>, Arc<AtomicU64>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    let calls = Arc::new(AtomicU64::new(0));
    let counter = calls.clone();
    let task = tokio::spawn(async move {
        loop {
            let Ok((mut s, _)) = listener.accept().await else {
                return;
            };
            let counter = counter.clone();
            tokio::spawn(async move {
                let mut buf = vec![0u8; 64 * 1024];
                let mut head = Vec::new();
                // Read the head (and whatever body came with it).
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match s.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                let text = String::from_utf8_lossy(&head).to_string();
                if text.starts_with("GET /cluster/v1/health") {
                    let body = json!({"engine": "openvoice", "state": "ready", "reason": null, "info": engine_info(), "metrics": {}}).to_string();
                    let _ = s.write_all(format!("HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}", body.len()).as_bytes()).await;
                    return;
                }
                counter.fetch_add(1, Ordering::Relaxed);
                match mode {
                    "garbage" => {
                        let junk: Vec<u8> = (0..5000u32)
                            .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
                            .collect();
                        let _ = s.write_all(format!("HTTP/1.1 200 OK\r\ncontent-type: audio/wav\r\nx-sample-rate: 22050\r\ncontent-length: {}\r\nconnection: close\r\n\r\n", junk.len()).as_bytes()).await;
                        let _ = s.write_all(&junk).await;
                    }
                    "too_much" => {
                        let _ = s.write_all(b"HTTP/1.1 200 OK\r\ncontent-type: audio/pcm\r\nx-sample-rate: 22050\r\nconnection: close\r\n\r\n").await;
                        let chunk = vec![0u8; 1 << 20];
                        for _ in 0..400 {
                            if s.write_all(&chunk).await.is_err() {
                                break;
                            }
                        }
                    }
                    _ => {
                        let _ = s.write_all(b"HTTP/1.1 2\x00\xff garbage\r\n\r\n\x01\x02").await;
                    }
                }
                let _ = s.shutdown().await;
            });
        }
    });
    let r = client()
        .post(format!("{gateway}/cluster/v1/register"))
        .header("x-cluster-token", TOKEN)
        .json(&json!({
            "protocol": 1, "endpoint": endpoint, "engine": "openvoice", "info": engine_info(),
            "capacity": 8, "queue_size": 0, "weight": 1, "labels": {}, "version": "bad-node",
            "state": "ready", "reason": null, "metrics": {}
        }))
        .send()
        .await
        .unwrap();
    let status = r.status();
    assert!(
        status.is_success(),
        "the bad node could not register: {status} {}",
        r.text().await.unwrap_or_default()
    );
    (task, calls)
}

fn engine_info() -> Value {
    json!({
        "kind": "openvoice", "name": "OpenVoice v2", "languages": ["en"], "default_language": "en",
        "sample_rate": 22050, "streaming": true, "max_text_chars": 5000, "max_sentence_chars": 400,
        "needs_transcript": false, "cloning": false, "builtin_voices": ["en_US-joe-medium"]
    })
}

async fn fault_bad_node(o: &Opts, mode: &'static str) -> Fault {
    let c = Cluster::start(o, &format!("fault-node-{mode}"), 1, 0.5, 3600.0, "").await;
    let before = c.gateway.rss_kib();
    let (task, calls) = bad_node(&c.gateway.base, mode).await;
    let done = Arc::new(AtomicUsize::new(0));
    let results = synth_load(c.gateway.base.clone(), 40, 4, done).await;
    let after = c.gateway.rss_kib();
    task.abort();
    let (lost, statuses, max) = summarize(&results);
    let panics: Vec<String> = c.procs().iter().flat_map(|p| p.panics()).collect();
    let grew = after.saturating_sub(before) as f64 / 1024.0;
    Fault {
        name: match mode {
            "garbage" => "a registered node answering garbage audio",
            "too_much" => "a registered node answering 400 MB",
            _ => "a registered node answering broken HTTP",
        },
        passed: lost == 0 && grew < 200.0 && panics.is_empty(),
        figures: format!(
            "40 requests at concurrency 4 with one real worker beside it: {lost} failed ({statuses}); the bad node got {} calls; gateway RSS {:.0} → {:.0} MiB; slowest {max:.0} ms",
            calls.load(Ordering::Relaxed),
            before as f64 / 1024.0,
            after as f64 / 1024.0
        ),
    }
}

async fn worker_in_flight(worker: &str) -> Option<u64> {
    let v: Value = client()
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

fn cpu_ticks(pid: u32) -> u64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let rest = s.rsplit(')').next().unwrap_or("");
    let f: Vec<&str> = rest.split_whitespace().collect();
    f.get(11).and_then(|x| x.parse::<u64>().ok()).unwrap_or(0)
        + f.get(12).and_then(|x| x.parse::<u64>().ok()).unwrap_or(0)
}

async fn fault_disconnect(o: &Opts) -> Fault {
    let c = Cluster::start(o, "fault-disconnect", 1, 0.5, 30.0, "").await;
    let worker = c.workers[0].base.clone();
    let text = "This is a long sentence that keeps the engine busy for a while. ".repeat(60);
    let r = client()
        .post(format!("{}/api/v3/synthesize/stream", c.gateway.base))
        .json(&json!({"text": text, "format": "pcm"}))
        .send()
        .await;
    let mut first = 0usize;
    if let Ok(r) = r {
        let mut s = r.bytes_stream();
        if let Some(Ok(chunk)) = s.next().await {
            first = chunk.len();
        }
        // Dropping the stream closes the connection.
    }
    let busy = worker_in_flight(&worker).await.unwrap_or(0);
    let left = Instant::now();
    let mut zero_after = None;
    while left.elapsed() < Duration::from_secs(30) {
        if worker_in_flight(&worker).await == Some(0) {
            zero_after = Some(left.elapsed());
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // And the engine's CPU use stops: ticks over one second after the slot was freed.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let t0 = cpu_ticks(c.workers[0].pid());
    tokio::time::sleep(Duration::from_secs(1)).await;
    let ticks = cpu_ticks(c.workers[0].pid()).saturating_sub(t0);
    let panics: Vec<String> = c.procs().iter().flat_map(|p| p.panics()).collect();
    Fault {
        name: "a client leaving a stream",
        passed: first > 0
            && zero_after.map(|z| z < Duration::from_secs(10)).unwrap_or(false)
            && ticks < 30
            && panics.is_empty(),
        figures: format!(
            "a {}-character stream left after its first chunk ({first} bytes); in-flight on the worker {busy} when it left, 0 {}; the worker used {ticks} CPU ticks (1/100 s) in the next second",
            text.chars().count(),
            zero_after
                .map(|z| format!("after {:.2} s", z.as_secs_f64()))
                .unwrap_or_else(|| "not within 30 s".into())
        ),
    }
}

// --------------------------------------------------------------------- main

fn main() {
    let o = parse_opts();
    std::fs::create_dir_all(&o.work).unwrap();
    let reference = Arc::new(
        std::fs::read(&o.reference).unwrap_or_else(|e| panic!("reading {}: {e}", o.reference.display())),
    );
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()
        .unwrap();
    let mut md = String::new();
    let mut failed = Vec::new();
    rt.block_on(async {
        if o.stress {
            for t in o.topologies.clone() {
                let r = stress(&o, &t, reference.clone()).await;
                report_topology(&mut md, &r, o.requests);
                if !r.passed() {
                    failed.push(format!("stress {t}"));
                }
                eprintln!(
                    "stress: {t}: {} requests, {} unexpected",
                    r.stats.total(),
                    r.stats.total_unexpected()
                );
            }
        }
        if o.faults {
            let _ = writeln!(md, "\n### Faults\n\n| fault | result | figures |\n|---|---|---|");
            let mut faults = Vec::new();
            eprintln!("faults: kill -9 of a worker");
            faults.push(fault_kill_worker(&o).await);
            eprintln!("faults: SIGSTOP of a worker");
            faults.push(fault_sigstop(&o).await);
            eprintln!("faults: gateway restart");
            faults.push(fault_gateway_restart(&o).await);
            for mode in ["garbage", "too_much", "broken_http"] {
                eprintln!("faults: bad node ({mode})");
                faults.push(fault_bad_node(&o, mode).await);
            }
            eprintln!("faults: client leaving a stream");
            faults.push(fault_disconnect(&o).await);
            for f in &faults {
                let _ = writeln!(
                    md,
                    "| {} | {} | {} |",
                    f.name,
                    if f.passed { "pass" } else { "**FAIL**" },
                    f.figures
                );
                eprintln!(
                    "fault: {}: {} — {}",
                    f.name,
                    if f.passed { "pass" } else { "FAIL" },
                    f.figures
                );
                if !f.passed {
                    failed.push(format!("fault: {}", f.name));
                }
            }
        }
    });
    std::fs::write(&o.out, &md).unwrap();
    eprintln!("stress: report written to {}", o.out.display());
    if !failed.is_empty() {
        eprintln!("stress: FAILED: {}", failed.join("; "));
        std::process::exit(1);
    }
}
