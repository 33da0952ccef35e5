//! Sizing figures for docs/DEPLOYMENT.md ("Many gateways"): the tier of the
//! other tier tests (PostgreSQL, Redis, two gateways, one OpenVoice worker
//! with the real default voice, nginx) under a small load driver, printing
//! requests per second, latencies, connections and memory. It asserts only
//! that requests succeed; it is `#[ignore]`d (a measurement, not a test):
//!
//! ```text
//! cargo test --workspace --test tier -- --ignored --nocapture sizing
//! ```
//!
//! `VCTTS_SIZING_SECS` sets the seconds of each cheap-endpoint run (default 5).

use crate::common::{Server, TOKEN, repo_root, write};
use crate::services::{Nginx, Postgres, Redis, repo_path};
use serde_json::json;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

fn keep_alive() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(120))
        .build()
        .unwrap()
}

/// Resident and peak resident memory of a process, in MB.
fn memory(pid: u32) -> (f64, f64) {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let kb = |key: &str| {
        s.lines()
            .find(|l| l.starts_with(key))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
            / 1000.0
    };
    (kb("VmRSS:"), kb("VmHWM:"))
}

/// Established TCP connections whose local port is `port` (IPv4).
fn established_to(port: u16) -> usize {
    let t = std::fs::read_to_string("/proc/net/tcp").unwrap_or_default();
    t.lines()
        .skip(1)
        .filter(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            f.len() > 3
                && f[3] == "01"
                && f[1]
                    .rsplit(':')
                    .next()
                    .and_then(|p| u16::from_str_radix(p, 16).ok())
                    == Some(port)
        })
        .count()
}

/// `clients` keep-alive clients GET `url` for `secs`: requests per second.
async fn rps(url: &str, clients: usize, secs: f64) -> f64 {
    let done = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let tasks: Vec<_> = (0..clients)
        .map(|_| {
            let (url, done) = (url.to_string(), done.clone());
            tokio::spawn(async move {
                let c = keep_alive();
                while started.elapsed().as_secs_f64() < secs {
                    let r = c.get(&url).send().await.unwrap();
                    assert_eq!(r.status(), 200, "{url}");
                    r.bytes().await.unwrap();
                    done.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    done.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64()
}

fn pct(sorted: &[Duration], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i].as_secs_f64() * 1000.0
}

/// `n` syntheses from `clients` clients at `base`: (requests/s, audio
/// seconds per wall second, sorted latencies).
async fn synth_load(base: &str, clients: usize, n: usize) -> (f64, f64, Vec<Duration>) {
    let started = Instant::now();
    let per = n.div_ceil(clients);
    let tasks: Vec<_> = (0..clients)
        .map(|_| {
            let base = base.to_string();
            tokio::spawn(async move {
                let c = keep_alive();
                let mut out = Vec::new();
                for _ in 0..per {
                    let t = Instant::now();
                    let r = c
                        .post(format!("{base}/api/v3/synthesize"))
                        .json(&json!({"text": "The quick brown fox jumps over the lazy dog."}))
                        .send()
                        .await
                        .unwrap();
                    assert_eq!(r.status(), 200);
                    let audio: f64 = r.headers()["x-audio-duration-ms"]
                        .to_str()
                        .unwrap()
                        .parse()
                        .unwrap();
                    r.bytes().await.unwrap();
                    out.push((t.elapsed(), audio / 1000.0));
                }
                out
            })
        })
        .collect();
    let mut lat = Vec::new();
    let mut audio = 0.0;
    for t in tasks {
        for (l, a) in t.await.unwrap() {
            lat.push(l);
            audio += a;
        }
    }
    let wall = started.elapsed().as_secs_f64();
    lat.sort();
    (lat.len() as f64 / wall, audio / wall, lat)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement for docs/DEPLOYMENT.md, not a test"]
async fn sizing() {
    let _one_cluster = crate::common::cluster_lock().lock().await;
    let secs: f64 = std::env::var("VCTTS_SIZING_SECS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5.0);
    let models = repo_root().join("models");
    assert!(
        models.join("openvoice/base/en_US-joe-medium.onnx").is_file(),
        "the default voice is missing: run scripts/setup.sh"
    );
    let db = Postgres::shared().database();
    let redis = Redis::start();
    let dir = tempfile::tempdir().unwrap();
    let mut gateways = Vec::new();
    for name in ["a", "b"] {
        let cfg = write(
            dir.path(),
            &format!("gateway-{name}.yaml"),
            &format!(
                "server: {{ host: 127.0.0.1, port: 0, workers: 2 }}\n\
                 registry: {{ heartbeat_interval: 1, dead_threshold: 5, policy: p2c }}\n\
                 cluster: {{ token: \"{TOKEN}\" }}\n\
                 storage: {{ data_dir: \"{}\", backend: postgres, url: \"{db}\" }}\n\
                 limiter: {{ ip_rpm: 100000000, global_rpm: 100000000, concurrent_limit: 1000, backend: redis, redis_url: \"{}\" }}\n",
                dir.path().join(name).display(),
                redis.url()
            ),
        );
        gateways.push(Server::start(&["gateway", "--config", &cfg]));
    }
    let (a, b) = (gateways[0].base.clone(), gateways[1].base.clone());
    let idle = memory(gateways[0].pid());
    let worker_cfg = write(
        dir.path(),
        "worker.yaml",
        &format!(
            "worker: {{ type: openvoice, host: 127.0.0.1, port: 0 }}\n\
             gateway: {{ url: [\"{a}\", \"{b}\"] }}\n\
             cluster: {{ token: \"{TOKEN}\", heartbeat_interval: 1 }}\n\
             model: {{ path: \"{}\", auto_load: true, threads: 2 }}\n\
             resources: {{ max_concurrent: 1, queue_size: 64 }}\n",
            models.display()
        ),
    );
    let worker = Server::start(&["worker", "--config", &worker_cfg]);
    let upstreams = [gateways[0].addr.to_string(), gateways[1].addr.to_string()];
    let nginx = Nginx::start(&repo_path(""), &[&upstreams[0], &upstreams[1]]);
    for base in [&a, &b] {
        crate::common::eventually(Duration::from_secs(120), "the worker ready", || async {
            let r = keep_alive()
                .get(format!("{base}/api/v3/health/ready"))
                .send()
                .await
                .ok()?;
            (r.status() == 200).then_some(())
        })
        .await;
    }
    let worker_loaded = memory(worker.pid());
    println!(
        "load: {}",
        std::fs::read_to_string("/proc/loadavg")
            .unwrap_or_default()
            .trim()
    );
    println!(
        "idle gateway: RSS {:.1} MB; worker with the model loaded: RSS {:.1} MB",
        idle.0, worker_loaded.0
    );

    // Cheap endpoints, one gateway and both through nginx.
    for clients in [1, 8] {
        for (name, url) in [
            (
                "GET /api/v3/health/live, gateway A",
                format!("{a}/api/v3/health/live"),
            ),
            ("GET /api/v3/voices, gateway A", format!("{a}/api/v3/voices")),
            (
                "GET /api/v3/voices, nginx over A+B",
                format!("{}/api/v3/voices", nginx.base()),
            ),
        ] {
            let r = rps(&url, clients, secs).await;
            println!("{name}, {clients} clients: {r:.0} requests/s");
        }
    }

    // Synthesis through a gateway, and the gateway hop: the same request
    // through gateway A and straight to the worker's node endpoint,
    // interleaved, paired differences.
    synth_load(&a, 1, 3).await;
    for clients in [1, 4] {
        let sampling = Arc::new(AtomicBool::new(true));
        let port = worker.addr.port();
        let s = sampling.clone();
        let peak_conns = tokio::spawn(async move {
            let mut peak = 0;
            while s.load(Ordering::SeqCst) {
                peak = peak.max(established_to(port));
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            peak
        });
        let (rps, rtf, lat) = synth_load(&a, clients, 12 * clients).await;
        sampling.store(false, Ordering::SeqCst);
        println!(
            "synthesis via gateway A, {clients} clients: {rps:.2} requests/s, {rtf:.2} audio s per s, \
             p50 {:.0} ms, p95 {:.0} ms, peak {} connections at the worker",
            pct(&lat, 0.5),
            pct(&lat, 0.95),
            peak_conns.await.unwrap()
        );
    }
    let c = keep_alive();
    let node_body = json!({"request": {"text": "Hi.", "language": null, "voice": null, "speed": 1.0,
        "sampling": {}, "seed": null, "format": "wav"}, "profile": null});
    let (mut via, mut direct, mut diff) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..30 {
        let t = Instant::now();
        let r = c
            .post(format!("{a}/api/v3/synthesize"))
            .json(&json!({"text": "Hi."}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        r.bytes().await.unwrap();
        let tg = t.elapsed();
        let t = Instant::now();
        let r = c
            .post(format!("{}/cluster/v1/synthesize", worker.base))
            .header("x-cluster-token", TOKEN)
            .json(&node_body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        r.bytes().await.unwrap();
        let td = t.elapsed();
        via.push(tg);
        direct.push(td);
        diff.push(tg.as_secs_f64() - td.as_secs_f64());
    }
    via.sort();
    direct.sort();
    diff.sort_by(|x, y| x.total_cmp(y));
    println!(
        "gateway hop: p50 via gateway {:.1} ms, direct to the worker {:.1} ms, median paired difference {:.2} ms",
        pct(&via, 0.5),
        pct(&direct, 0.5),
        diff[diff.len() / 2] * 1000.0
    );
    let (g, w) = (memory(gateways[0].pid()), memory(worker.pid()));
    println!(
        "after the runs: gateway A RSS {:.1} MB (peak {:.1}); worker RSS {:.1} MB (peak {:.1})",
        g.0, g.1, w.0, w.1
    );
    println!(
        "load: {}",
        std::fs::read_to_string("/proc/loadavg")
            .unwrap_or_default()
            .trim()
    );
    drop(nginx);
}
