//! Server bench: starts a real gateway and an OpenVoice worker (release
//! builds of `vctts-server`) on 127.0.0.1 and prints
//!
//! - throughput of `POST /api/v3/synthesize` with the default voice at
//!   concurrency 1 and 8 (audio seconds per wall second, p50/p95 latency);
//! - the gateway's added latency over calling the worker directly;
//! - `GET /api/v3/health` requests per second;
//! - resident memory of the idle gateway (and of the worker).
//!
//! It prints figures; it asserts nothing (targets from the issue are printed
//! next to them). Run it with
//!
//! ```text
//! cargo build --release -p vctts-server && cargo bench --bench server
//! ```
//!
//! (`VCTTS_SERVER_BIN` points at another binary; `BENCH_REQUESTS` scales the
//! request counts.) The HTTP client is a minimal keep-alive HTTP/1.1 client
//! on `std::net`, so the client adds as little as possible to the figures.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const TOKEN: &str = "bench-cluster-token-0123456789";
const SENTENCE: &str = "The quick brown fox jumps over the lazy dog.";

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn server_bin() -> PathBuf {
    if let Ok(p) = std::env::var("VCTTS_SERVER_BIN") {
        return PathBuf::from(p);
    }
    // The bench runs from target/release/deps/; the server is next to it.
    let exe = std::env::current_exe().expect("current exe");
    let candidates = [
        exe.parent()
            .and_then(Path::parent)
            .map(|d| d.join("vctts-server")),
        Some(repo_root().join("target/release/vctts-server")),
    ];
    for c in candidates.into_iter().flatten() {
        if c.is_file() {
            return c;
        }
    }
    eprintln!(
        "server bench: no release vctts-server binary found; build it first:\n  \
         cargo build --release -p vctts-server && cargo bench --bench server"
    );
    std::process::exit(2);
}

/// A child process that is killed on drop.
struct Proc {
    child: Child,
    addr: SocketAddr,
}

impl Proc {
    fn start(bin: &Path, args: &[&str]) -> Proc {
        let mut child = Command::new(bin)
            .args(args)
            .args(["--log-level", "warning"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start vctts-server");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(a) = line.split("listening on http://").nth(1) {
                    let _ = tx.send(a.trim().to_string());
                }
            }
        });
        let addr = rx
            .recv_timeout(Duration::from_secs(60))
            .expect("the server did not start listening");
        Proc {
            child,
            addr: addr.parse().expect("address"),
        }
    }

    fn rss_bytes(&self) -> Option<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).ok()?;
        let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
        let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
        Some(kb * 1024)
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A keep-alive HTTP/1.1 connection.
struct Conn {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
}

struct Answer {
    status: u16,
    headers: HashMap<String, String>,
    body: Vec<u8>,
}

impl Conn {
    fn open(addr: SocketAddr) -> Conn {
        let s = TcpStream::connect(addr).expect("connect");
        s.set_nodelay(true).expect("nodelay");
        Conn {
            reader: BufReader::new(s.try_clone().expect("clone")),
            writer: s,
        }
    }

    fn request(&mut self, method: &str, path: &str, extra: &[(&str, &str)], body: &[u8]) -> Answer {
        let mut head = format!(
            "{method} {path} HTTP/1.1\r\nHost: bench\r\nContent-Length: {}\r\n",
            body.len()
        );
        if !body.is_empty() {
            head.push_str("Content-Type: application/json\r\n");
        }
        for (k, v) in extra {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
        head.push_str("\r\n");
        self.writer.write_all(head.as_bytes()).expect("write head");
        self.writer.write_all(body).expect("write body");
        let mut line = String::new();
        self.reader.read_line(&mut line).expect("status line");
        let status: u16 = line
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .expect("status");
        let mut headers = HashMap::new();
        loop {
            line.clear();
            self.reader.read_line(&mut line).expect("header");
            let l = line.trim_end();
            if l.is_empty() {
                break;
            }
            if let Some((k, v)) = l.split_once(':') {
                headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
            }
        }
        let mut body = Vec::new();
        if let Some(len) = headers.get("content-length") {
            body.resize(len.parse().expect("length"), 0);
            self.reader.read_exact(&mut body).expect("body");
        } else if headers
            .get("transfer-encoding")
            .is_some_and(|t| t.contains("chunked"))
        {
            loop {
                line.clear();
                self.reader.read_line(&mut line).expect("chunk size");
                let n = usize::from_str_radix(line.trim(), 16).expect("chunk size");
                let mut chunk = vec![0; n + 2];
                self.reader.read_exact(&mut chunk).expect("chunk");
                if n == 0 {
                    break;
                }
                body.extend_from_slice(&chunk[..n]);
            }
        }
        Answer {
            status,
            headers,
            body,
        }
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[i]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

struct Run {
    audio_seconds: f64,
    wall: Duration,
    latencies: Vec<Duration>,
}

fn synth_body() -> Vec<u8> {
    format!("{{\"text\":\"{SENTENCE}\"}}").into_bytes()
}

/// `n` synthesis requests from `concurrency` clients, each on its own connection.
fn throughput(addr: SocketAddr, concurrency: usize, n: usize) -> Run {
    let started = Instant::now();
    let per = n.div_ceil(concurrency);
    let handles: Vec<_> = (0..concurrency)
        .map(|_| {
            std::thread::spawn(move || {
                let mut c = Conn::open(addr);
                let body = synth_body();
                let mut lat = Vec::with_capacity(per);
                let mut audio = 0.0;
                for _ in 0..per {
                    let t = Instant::now();
                    let a = c.request("POST", "/api/v3/synthesize", &[], &body);
                    lat.push(t.elapsed());
                    assert_eq!(a.status, 200, "{}", String::from_utf8_lossy(&a.body));
                    let ms: f64 = a.headers["x-audio-duration-ms"].parse().expect("duration");
                    audio += ms / 1000.0;
                }
                (lat, audio)
            })
        })
        .collect();
    let mut latencies = Vec::new();
    let mut audio_seconds = 0.0;
    for h in handles {
        let (l, a) = h.join().expect("client thread");
        latencies.extend(l);
        audio_seconds += a;
    }
    let wall = started.elapsed();
    latencies.sort();
    Run {
        audio_seconds,
        wall,
        latencies,
    }
}

fn print_run(name: &str, r: &Run) {
    println!(
        "{name}: {} requests of {:.2} s of audio, {:.2} audio s / wall s, p50 {:.0} ms, p95 {:.0} ms",
        r.latencies.len(),
        r.audio_seconds / r.latencies.len().max(1) as f64,
        r.audio_seconds / r.wall.as_secs_f64(),
        ms(percentile(&r.latencies, 0.5)),
        ms(percentile(&r.latencies, 0.95)),
    );
}

fn main() {
    // `cargo bench` passes `--bench`; a filter argument is ignored.
    let bin = server_bin();
    let scale: usize = std::env::var("BENCH_REQUESTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1);
    let models = repo_root().join("models");
    if !models.join("openvoice/base/en_US-joe-medium.onnx").is_file() {
        eprintln!("server bench: the default voice is missing; run scripts/setup.sh");
        std::process::exit(2);
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let gw_cfg = dir.path().join("gateway.yaml");
    std::fs::write(
        &gw_cfg,
        format!(
            "server: {{ host: 127.0.0.1, port: 0, workers: 2 }}\n\
             registry: {{ heartbeat_interval: 1, dead_threshold: 5 }}\n\
             cluster: {{ token: \"{TOKEN}\" }}\n\
             limiter: {{ enabled: false }}\n\
             storage: {{ data_dir: \"{}\" }}\n",
            dir.path().join("data").display()
        ),
    )
    .expect("write gateway config");
    let gateway = Proc::start(&bin, &["gateway", "--config", gw_cfg.to_str().unwrap()]);
    let mut probe = Conn::open(gateway.addr);
    let _ = probe.request("GET", "/api/v3/health/live", &[], b"");
    std::thread::sleep(Duration::from_millis(300));
    let idle_rss = gateway.rss_bytes();

    let threads = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2);
    let w_cfg = dir.path().join("worker.yaml");
    std::fs::write(
        &w_cfg,
        format!(
            "worker: {{ type: openvoice, host: 127.0.0.1, port: 0 }}\n\
             gateway: {{ url: \"http://{}\" }}\n\
             cluster: {{ token: \"{TOKEN}\" }}\n\
             model: {{ path: \"{}\", threads: {threads} }}\n\
             resources: {{ max_concurrent: 1, queue_size: 64 }}\n",
            gateway.addr,
            models.display()
        ),
    )
    .expect("write worker config");
    let worker = Proc::start(&bin, &["worker", "--config", w_cfg.to_str().unwrap()]);
    let ready = Instant::now();
    loop {
        let a = probe.request("GET", "/api/v3/health", &[], b"");
        if a.status == 200 {
            break;
        }
        assert!(
            ready.elapsed() < Duration::from_secs(60),
            "the worker did not become ready"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    println!(
        "server bench: gateway {} + 1 OpenVoice worker ({threads} inference threads, 1 slot), {} cores",
        gateway.addr,
        std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0)
    );
    match idle_rss {
        Some(b) => println!("idle gateway RSS: {:.1} MB (target ≤ 30 MB)", b as f64 / 1e6),
        None => println!("idle gateway RSS: unavailable (no /proc)"),
    }

    // Warm up the engine and the connection pool.
    throughput(gateway.addr, 1, 3);

    let one = throughput(gateway.addr, 1, 20 * scale);
    print_run("concurrency 1", &one);
    let eight = throughput(gateway.addr, 8, 48 * scale);
    print_run("concurrency 8", &eight);
    let r1 = one.audio_seconds / one.wall.as_secs_f64();
    let r8 = eight.audio_seconds / eight.wall.as_secs_f64();
    println!(
        "concurrency 8 / 1 throughput: {:.2}x (target ≥ 0.9x); p95 at 8: {:.0} ms (target ≤ 1200 ms)",
        r8 / r1,
        ms(percentile(&eight.latencies, 0.95))
    );

    // Gateway overhead: the same short request through the gateway and
    // straight to the worker's node endpoint, interleaved.
    let mut via_gw = Conn::open(gateway.addr);
    let mut direct = Conn::open(worker.addr);
    let gw_body = br#"{"text":"Hi."}"#.to_vec();
    let node_body = br#"{"request":{"text":"Hi.","language":null,"voice":null,"speed":1.0,"sampling":{},"seed":null,"format":"wav"},"profile":null}"#.to_vec();
    let (mut g, mut d, mut diff) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..(60 * scale) {
        let t = Instant::now();
        let a = via_gw.request("POST", "/api/v3/synthesize", &[], &gw_body);
        let tg = t.elapsed();
        assert_eq!(a.status, 200);
        let t = Instant::now();
        let b = direct.request(
            "POST",
            "/cluster/v1/synthesize",
            &[("x-cluster-token", TOKEN)],
            &node_body,
        );
        let td = t.elapsed();
        assert_eq!(b.status, 200, "{}", String::from_utf8_lossy(&b.body));
        g.push(tg);
        d.push(td);
        diff.push(tg.as_secs_f64() - td.as_secs_f64());
    }
    g.sort();
    d.sort();
    diff.sort_by(|a, b| a.total_cmp(b));
    println!(
        "gateway overhead: p50 via gateway {:.2} ms, direct {:.2} ms, p50 of paired differences {:.3} ms (target ≤ 1 ms)",
        ms(percentile(&g, 0.5)),
        ms(percentile(&d, 0.5)),
        diff[diff.len() / 2] * 1000.0
    );

    // Health endpoint requests per second.
    let secs = 3.0;
    let clients = 4;
    let started = Instant::now();
    let counts: Vec<_> = (0..clients)
        .map(|_| {
            let addr = gateway.addr;
            std::thread::spawn(move || {
                let mut c = Conn::open(addr);
                let mut n = 0u64;
                while started.elapsed().as_secs_f64() < secs {
                    let a = c.request("GET", "/api/v3/health", &[], b"");
                    assert_eq!(a.status, 200);
                    n += 1;
                }
                n
            })
        })
        .collect();
    let total: u64 = counts.into_iter().map(|h| h.join().expect("client")).sum();
    println!(
        "health: {:.0} requests/s ({clients} keep-alive clients, {secs} s)",
        total as f64 / started.elapsed().as_secs_f64()
    );

    if let Some(b) = gateway.rss_bytes() {
        println!("gateway RSS after the run: {:.1} MB", b as f64 / 1e6);
    }
    if let Some(b) = worker.rss_bytes() {
        println!("worker RSS after the run: {:.1} MB", b as f64 / 1e6);
    }
}
