//! Faults on the serving path (issue 16, items 2, 4, 8 and 9), with real
//! processes on 127.0.0.1: a frozen worker (SIGSTOP) is abandoned within the
//! request's progress deadline, failed over, counted on its breaker and
//! avoided until it shows progress; a node answering garbage is cut off with
//! a code while other nodes keep serving; a whole request whose client
//! leaves stops the engine at the next sentence, through the gateway and on
//! a standalone server; a worker started with `--port` from a copied config
//! advertises its own address and gets its own node id.

use crate::common::{
    Server, TOKEN, cluster_lock, error_code, eventually, gateway_nodes, gateway_yaml, http, models_dir,
    parse_wav, worker_yaml, write,
};
use serde_json::{Value, json};
use std::time::Duration;

fn signal(s: &Server, sig: &str) {
    let ok = std::process::Command::new("kill")
        .args([sig, &s.pid().to_string()])
        .status()
        .expect("run kill")
        .success();
    assert!(ok, "kill {sig} {}", s.pid());
}

/// Continues a stopped process when the test ends, passed or not.
struct Frozen<'a>(&'a Server);

impl Drop for Frozen<'_> {
    fn drop(&mut self) {
        signal(self.0, "-CONT");
    }
}

async fn node_at(c: &reqwest::Client, gw: &str, endpoint: &str) -> Option<Value> {
    gateway_nodes(c, gw)
        .await?
        .into_iter()
        .find(|n| n["endpoint"] == endpoint)
}

/// A gateway whose registry keeps a silent node `ready` for a minute (so
/// only stall detection can take a frozen node out of routing), with a
/// breaker that opens on one failure, and short progress deadlines.
fn stall_gateway(dir: &std::path::Path) -> Server {
    let cfg = write(
        dir,
        "gateway.yaml",
        &format!(
            "server: {{ host: 127.0.0.1, port: 0, workers: 2 }}\n\
             registry: {{ heartbeat_interval: 0.2, dead_threshold: 60, retention: 120, policy: round_robin,\n\
               breaker: {{ failure_threshold: 1, cool_down: 1 }} }}\n\
             cluster: {{ token: \"{TOKEN}\", connect_timeout: 1, first_byte_timeout: 300, request_timeout: 300,\n\
               max_retries: 2, stall_timeout: 10, stall_per_char: 0.05 }}\n\
             storage: {{ data_dir: \"{}\" }}\n",
            dir.join("data").display()
        ),
    );
    Server::start(&["gateway", "--config", &cfg])
}

#[tokio::test]
async fn a_frozen_worker_is_abandoned_failed_over_and_avoided_until_it_moves() {
    let _g = cluster_lock().lock().await;
    let dir = tempfile::tempdir().unwrap();
    let gw = stall_gateway(dir.path());
    let workers: Vec<Server> = (0..2)
        .map(|i| {
            let cfg = write(dir.path(), &format!("worker{i}.yaml"), &worker_yaml(&gw.base, ""));
            Server::start(&["worker", "--config", &cfg])
        })
        .collect();
    let c = http();
    eventually(Duration::from_secs(90), "two ready workers", || async {
        let n = gateway_nodes(&c, &gw.base).await?;
        (n.iter().filter(|n| n["state"] == "ready").count() == 2).then_some(())
    })
    .await;
    let frozen = &workers[0];
    let frozen_id = node_at(&c, &gw.base, &frozen.base).await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let live_id = node_at(&c, &gw.base, &workers[1].base).await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();

    signal(frozen, "-STOP");
    let thaw = Frozen(frozen);
    // Round robin sends half of these to the frozen node: each one is
    // abandoned there within its deadline (about 11 s) and served by the other.
    let speak = |i: usize| {
        let c = c.clone();
        let base = gw.base.clone();
        async move {
            let path = if i == 3 { "synthesize/stream" } else { "synthesize" };
            let r = c
                .post(format!("{base}/api/v3/{path}"))
                .json(&json!({ "text": format!("Hello number {i}.") }))
                .send()
                .await
                .unwrap();
            let status = r.status().as_u16();
            let node = r
                .headers()
                .get("x-node-id")
                .map(|v| v.to_str().unwrap().to_string());
            let body = r.bytes().await.unwrap();
            (status, node, body.len())
        }
    };
    let all = futures::future::join_all((0..4).map(speak));
    let results = tokio::time::timeout(Duration::from_secs(120), all)
        .await
        .expect("requests routed to the frozen node must fail over, not wait for it");
    for (status, node, len) in &results {
        assert_eq!(*status, 200, "{results:?}");
        assert_eq!(node.as_deref(), Some(live_id.as_str()), "{results:?}");
        assert!(*len > 44, "{results:?}");
    }
    // The stall counted against the frozen node's breaker, which opened.
    let n = node_at(&c, &gw.base, &frozen.base).await.unwrap();
    assert!(n["metrics"]["errors"].as_u64().unwrap() >= 1, "{n}");
    assert_ne!(n["breaker"], "closed", "{n}");
    assert_eq!(
        n["state"], "ready",
        "the registry alone still thinks it is fine: {n}"
    );
    let metrics = c
        .get(format!("{}/api/v3/metrics", gw.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics
            .lines()
            .any(|l| l.contains("breaker") && l.contains(&frozen_id)),
        "{metrics}"
    );
    // New requests avoid the suspect node while it is frozen.
    for i in 10..12 {
        let (status, node, _) = speak(i).await;
        assert_eq!((status, node.as_deref()), (200, Some(live_id.as_str())));
    }

    // Thawed, it shows progress in its heartbeats and is used again.
    drop(thaw);
    eventually(Duration::from_secs(90), "the thawed node to serve again", || {
        let frozen_id = frozen_id.clone();
        async move {
            let (status, node, _) = speak(20).await;
            (status == 200 && node.as_deref() == Some(frozen_id.as_str())).then_some(())
        }
    })
    .await;
    let n = node_at(&c, &gw.base, &frozen.base).await.unwrap();
    assert_eq!(n["breaker"], "closed", "{n}");
}

/// A node that registers with the token and answers every synthesis with
/// bytes that are not audio.
async fn garbage_node(gateway: &str) -> (String, tokio::task::JoinHandle<()>) {
    use axum::routing::{get, post};
    let garbage = || async {
        axum::response::Response::builder()
            .header("content-type", "audio/wav")
            .header("x-sample-rate", "22050")
            .body(axum::body::Body::from(
                "<html>this is not audio at all</html>".repeat(100),
            ))
            .unwrap()
    };
    let garbage_stream = || async {
        axum::response::Response::builder()
            .header("content-type", "text/html")
            .header("x-sample-rate", "22050")
            .body(axum::body::Body::from("<html>nor is this</html>"))
            .unwrap()
    };
    let status = || async {
        axum::Json(json!({
            "engine": "openvoice", "state": "ready", "reason": null, "info": crate::hardening::engine_info(),
            "metrics": {}
        }))
    };
    let app = axum::Router::new()
        .route("/cluster/v1/synthesize", post(garbage))
        .route("/cluster/v1/synthesize/stream", post(garbage_stream))
        .route("/cluster/v1/health", get(status));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    let r = http()
        .post(format!("{gateway}/cluster/v1/register"))
        .header("x-cluster-token", TOKEN)
        .json(&crate::hardening::register_body(&endpoint))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    (endpoint, task)
}

#[tokio::test]
async fn a_node_answering_garbage_is_cut_off_and_others_keep_serving() {
    let _g = cluster_lock().lock().await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = write(
        dir.path(),
        "gateway.yaml",
        &gateway_yaml(
            &dir.path().join("data"),
            "heartbeat_interval: 5, dead_threshold: 60, retention: 120, policy: round_robin",
            "",
        ),
    );
    let gw = Server::start(&["gateway", "--config", &cfg]);
    let (endpoint, node) = garbage_node(&gw.base).await;
    let c = http();
    // Alone, the garbage node's answers never reach the client as audio.
    for path in ["synthesize", "synthesize/stream"] {
        let r = c
            .post(format!("{}/api/v3/{path}", gw.base))
            .json(&json!({ "text": "Hello there." }))
            .send()
            .await
            .unwrap();
        let (s, code, v) = error_code(r).await;
        assert_eq!((s, code.as_str()), (502, "node_unavailable"), "{path}: {v}");
        assert!(
            v["error"]["message"].as_str().unwrap().contains("not"),
            "{path}: {v}"
        );
    }
    let n = node_at(&c, &gw.base, &endpoint).await.unwrap();
    assert!(
        n["metrics"]["errors"].as_u64().unwrap() >= 2,
        "counted against it: {n}"
    );

    // With a real worker beside it, every request is served (failed over).
    let w_cfg = write(dir.path(), "worker.yaml", &worker_yaml(&gw.base, ""));
    let w = Server::start(&["worker", "--config", &w_cfg]);
    eventually(Duration::from_secs(90), "the worker to be ready", || async {
        (node_at(&c, &gw.base, &w.base).await?["state"] == "ready").then_some(())
    })
    .await;
    for i in 0..4 {
        let r = c
            .post(format!("{}/api/v3/synthesize", gw.base))
            .json(&json!({ "text": format!("Still working, {i}.") }))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let wav = parse_wav(&r.bytes().await.unwrap());
        assert!(wav.seconds() > 0.3);
    }
    node.abort();
}

/// The resident memory of a process, bytes.
fn rss(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap();
    kb * 1024
}

#[tokio::test]
async fn floods_from_a_node_leave_the_gateways_memory_bounded() {
    let _g = cluster_lock().lock().await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = write(
        dir.path(),
        "gateway.yaml",
        &gateway_yaml(
            &dir.path().join("data"),
            "heartbeat_interval: 5, dead_threshold: 60, retention: 120, policy: round_robin",
            "",
        ),
    );
    let gw = Server::start(&["gateway", "--config", &cfg]);
    let (_endpoint, node) = crate::hardening::flooding_node(&gw.base).await;
    let c = http();
    let before = rss(gw.pid());
    // Three floods of 150 MB each at once, whole and streamed.
    let flood = |path: &'static str| {
        let c = c.clone();
        let url = format!("{}/api/v3/{path}", gw.base);
        async move {
            let r = c
                .post(url)
                .json(&json!({ "text": "Hello there." }))
                .send()
                .await
                .unwrap();
            let status = r.status().as_u16();
            let mut got = 0usize;
            let mut body = r.bytes_stream();
            use futures::StreamExt;
            while let Some(Ok(chunk)) = body.next().await {
                got += chunk.len();
            }
            (status, got)
        }
    };
    let results = futures::future::join_all([
        flood("synthesize"),
        flood("synthesize"),
        flood("synthesize/stream"),
    ])
    .await;
    for (status, got) in &results {
        assert!(*got < 100 << 20, "relayed {got} bytes ({status})");
    }
    assert_eq!(results[0].0, 502, "{results:?}");
    let after = rss(gw.pid());
    assert!(
        after < before + (200 << 20),
        "gateway RSS went from {before} to {after} bytes"
    );
    node.abort();
}

async fn worker_health(c: &reqwest::Client, worker: &str) -> Option<Value> {
    c.get(format!("{worker}/cluster/v1/health"))
        .header("x-cluster-token", TOKEN)
        .send()
        .await
        .ok()?
        .json()
        .await
        .ok()
}

/// About five minutes of speech: 80 sentences.
fn long_text() -> String {
    "This sentence is here to keep the engine busy for a while. ".repeat(80)
}

/// The length of one sentence of [`long_text`], spoken through `base`.
async fn one_sentence_seconds(c: &reqwest::Client, base: &str) -> f64 {
    let r = c
        .post(format!("{base}/api/v3/synthesize"))
        .json(&json!({ "text": "This sentence is here to keep the engine busy for a while." }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    parse_wav(&r.bytes().await.unwrap()).seconds()
}

#[tokio::test]
async fn a_dropped_whole_request_stops_the_engine_through_the_gateway() {
    let _g = cluster_lock().lock().await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = write(
        dir.path(),
        "gateway.yaml",
        &gateway_yaml(&dir.path().join("data"), crate::common::FAST_REGISTRY, ""),
    );
    let gw = Server::start(&["gateway", "--config", &cfg]);
    let w_cfg = write(dir.path(), "worker.yaml", &worker_yaml(&gw.base, ""));
    let w = Server::start(&["worker", "--config", &w_cfg]);
    let c = http();
    eventually(Duration::from_secs(90), "the worker to be ready", || async {
        (node_at(&c, &gw.base, &w.base).await?["state"] == "ready").then_some(())
    })
    .await;
    let sentence = one_sentence_seconds(&c, &gw.base).await;
    let made_before = worker_health(&c, &w.base).await.unwrap()["metrics"]["audio_seconds"]
        .as_f64()
        .unwrap();

    let client = c.clone();
    let url = format!("{}/api/v3/synthesize", gw.base);
    let request = tokio::spawn(async move {
        client
            .post(url)
            .json(&json!({ "text": long_text() }))
            .send()
            .await
    });
    // The long text is under way on the worker.
    eventually(
        Duration::from_secs(60),
        "the long request to be under way",
        || async {
            let m = worker_health(&c, &w.base).await?["metrics"].clone();
            (m["in_flight"] == 1).then_some(())
        },
    )
    .await;
    request.abort();
    let _ = request.await;
    // The gateway hung up on the worker, which stopped the engine; only then
    // is its slot free.
    let m = eventually(Duration::from_secs(120), "the slot to come back", || async {
        let m = worker_health(&c, &w.base).await?["metrics"].clone();
        (m["in_flight"] == 0).then_some(m)
    })
    .await;
    let made = m["audio_seconds"].as_f64().unwrap() - made_before;
    let whole = 80.0 * sentence;
    assert!(
        made < whole / 4.0,
        "the engine made {made:.1} s of the text's {whole:.1} s after its client left"
    );
    assert!(w.logs().contains("whole synthesis cancelled"), "{}", w.logs());
}

#[tokio::test]
async fn a_dropped_whole_request_stops_the_engine_on_a_standalone_server() {
    let _g = cluster_lock().lock().await;
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(&[
        "standalone",
        "--host",
        "127.0.0.1",
        "--port",
        "0",
        "--models",
        models_dir().to_str().unwrap(),
        "--data",
        dir.path().join("data").to_str().unwrap(),
    ]);
    let c = http();
    // Standalone answers before its engine has loaded; wait for the node.
    eventually(
        Duration::from_secs(90),
        "the standalone engine to be ready",
        || async {
            let n = gateway_nodes(&c, &s.base).await?;
            n.iter()
                .any(|n| n["engine"] == "openvoice" && n["state"] == "ready")
                .then_some(())
        },
    )
    .await;
    let sentence = one_sentence_seconds(&c, &s.base).await;
    let client = c.clone();
    let url = format!("{}/api/v3/synthesize", s.base);
    let request = tokio::spawn(async move {
        client
            .post(url)
            .json(&json!({ "text": long_text() }))
            .send()
            .await
    });
    eventually(Duration::from_secs(60), "the long request to run", || async {
        let n = gateway_nodes(&c, &s.base).await?;
        n.iter()
            .any(|n| n["engine"] == "openvoice" && n["metrics"]["in_flight"] == 1)
            .then_some(())
    })
    .await;
    request.abort();
    let _ = request.await;
    let line = eventually(Duration::from_secs(120), "the engine to stop", || {
        let logs = s.logs();
        async move {
            logs.lines()
                .find(|l| l.contains("whole synthesis cancelled"))
                .map(str::to_string)
        }
    })
    .await;
    let made: f64 = line
        .split("made_seconds=")
        .nth(1)
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("{line}"));
    let whole = 80.0 * sentence;
    assert!(made < whole / 4.0, "made {made:.1} s of {whole:.1} s: {line}");
}

#[tokio::test]
async fn a_worker_started_with_port_from_a_copied_config_keeps_its_own_address() {
    let _g = cluster_lock().lock().await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = write(
        dir.path(),
        "gateway.yaml",
        &gateway_yaml(&dir.path().join("data"), crate::common::FAST_REGISTRY, ""),
    );
    let gw = Server::start(&["gateway", "--config", &cfg]);
    // The first worker's file names its port and address, as a hand-written
    // config does.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let file = write(
        dir.path(),
        "worker.yaml",
        &format!(
            "worker: {{ type: openvoice, host: 127.0.0.1, port: {port}, advertise_url: \"http://127.0.0.1:{port}\" }}\n\
             gateway: {{ url: \"{}\" }}\n\
             cluster: {{ token: \"{TOKEN}\", heartbeat_interval: 0.2 }}\n\
             model: {{ path: \"{}\", auto_load: false }}\n",
            gw.base,
            models_dir().display()
        ),
    );
    let first = Server::start(&["worker", "--config", &file]);
    assert_eq!(first.base, format!("http://127.0.0.1:{port}"));
    // The same file, another port.
    let second = Server::start(&["worker", "--config", &file, "--port", "0"]);
    let c = http();
    let both = eventually(Duration::from_secs(30), "both workers to register", || async {
        let n = gateway_nodes(&c, &gw.base).await?;
        let a = n.iter().find(|n| n["endpoint"] == first.base.as_str())?.clone();
        let b = n.iter().find(|n| n["endpoint"] == second.base.as_str())?.clone();
        Some((a, b))
    })
    .await;
    assert_ne!(both.0["id"], both.1["id"], "{both:?}");
    // An explicit --advertise-url still wins.
    let third = Server::start(&[
        "worker",
        "--config",
        &file,
        "--port",
        "0",
        "--advertise-url",
        "http://localhost:1",
    ]);
    eventually(
        Duration::from_secs(30),
        "the explicit address to register",
        || async {
            let n = gateway_nodes(&c, &gw.base).await?;
            n.iter()
                .any(|n| n["endpoint"] == "http://localhost:1")
                .then_some(())
        },
    )
    .await;
    drop(third);
}
