//! The gateway relays a node's whole answer as it arrives (issue 16, item
//! 2), with a real gateway process on 127.0.0.1 and scripted nodes in the
//! test (registered with the cluster token, as a worker registers): the
//! client gets the node's bytes unchanged with the node's `Content-Length`
//! (or, when the gateway re-encodes, the node's samples); a node that sends
//! more than the request can produce is cut off at the cap and counted as a
//! node fault; eight large answers at once are not held by the gateway; a
//! node that fails before its first bytes is failed over, one that fails
//! after them ends the client's answer with an error (never a spliced one).

use crate::common::{Server, TOKEN, cluster_lock, gateway_yaml, http, parse_wav, write};
use axum::body::Body;
use axum::response::Response;
use bytes::Bytes;
use futures::StreamExt;
use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use tokio::sync::{Notify, Semaphore};

/// The engine rate of the scripted nodes (OpenVoice's).
const RATE: u32 = 22_050;
/// The most bytes a node may send for a short text (`answer_cap_bytes`:
/// 60 s at 48 kHz, 4 bytes a sample, plus 64 KiB of container slack).
const SHORT_TEXT_CAP: u64 = 60 * 48_000 * 4 + (64 << 10);

/// Deterministic 16-bit samples (a stepped saw, never silent).
fn samples(n: usize) -> Vec<i16> {
    (0..n).map(|i| ((i * 37) % 20_000) as i16 - 10_000).collect()
}

fn pcm_bytes(s: &[i16]) -> Vec<u8> {
    s.iter().flat_map(|x| x.to_le_bytes()).collect()
}

/// A 16-bit mono WAV of `s` at [`RATE`], with exact sizes.
fn wav_bytes(s: &[i16]) -> Vec<u8> {
    let data = pcm_bytes(s);
    let mut w = Vec::with_capacity(44 + data.len());
    w.extend_from_slice(b"RIFF");
    w.extend_from_slice(&(36 + data.len() as u32).to_le_bytes());
    w.extend_from_slice(b"WAVEfmt ");
    w.extend_from_slice(&16u32.to_le_bytes());
    w.extend_from_slice(&1u16.to_le_bytes());
    w.extend_from_slice(&1u16.to_le_bytes());
    w.extend_from_slice(&RATE.to_le_bytes());
    w.extend_from_slice(&(RATE * 2).to_le_bytes());
    w.extend_from_slice(&2u16.to_le_bytes());
    w.extend_from_slice(&16u16.to_le_bytes());
    w.extend_from_slice(b"data");
    w.extend_from_slice(&(data.len() as u32).to_le_bytes());
    w.extend_from_slice(&data);
    w
}

/// What a scripted node does with a whole synthesis call.
#[derive(Clone, Copy)]
enum Script {
    /// Answers `n` samples as the format asked (WAV or raw PCM), in one
    /// body with its `Content-Length`, as a worker does.
    Honest { n: usize },
    /// Sends a WAV header and then zeros without end (chunked, no length).
    Flood,
    /// States a length, sends 20 bytes, and breaks the connection.
    BreaksBeforeTheFront,
    /// States a length, sends a WAV header and 256 KiB, and breaks.
    BreaksAfterTheFront,
    /// Answers `n` samples as a WAV with its length, but holds its last
    /// 64 KiB until the test releases it; tells the test when it got there.
    Held { n: usize },
}

struct Node {
    script: Script,
    /// Whole synthesis calls received.
    calls: AtomicUsize,
    /// Calls that reached their held tail (`Held`).
    at_tail: AtomicUsize,
    /// Wakes the test when a call reaches its tail.
    reached: Notify,
    /// Permits to send the tail.
    release: Semaphore,
}

fn audio_response(content_type: &str, len: Option<usize>, body: Body) -> Response {
    let mut b = Response::builder()
        .header("content-type", content_type)
        .header("x-sample-rate", RATE.to_string())
        .header("x-audio-duration-ms", "1000");
    if let Some(n) = len {
        b = b.header("content-length", n.to_string());
    }
    b.body(body).unwrap()
}

/// A body that sends `front`, then breaks the connection.
fn breaking_body(front: Vec<u8>) -> Body {
    let items: Vec<std::io::Result<Bytes>> = vec![
        Ok(Bytes::from(front)),
        Err(std::io::Error::other("the node breaks off")),
    ];
    Body::from_stream(futures::stream::iter(items).then(|item| async move {
        // Let the server write what came before the error.
        for _ in 0..4 {
            tokio::task::yield_now().await;
        }
        item
    }))
}

async fn synthesize(
    axum::extract::State(node): axum::extract::State<Arc<Node>>,
    axum::Json(call): axum::Json<Value>,
) -> Response {
    node.calls.fetch_add(1, Ordering::SeqCst);
    match node.script {
        Script::Honest { n } => {
            let s = samples(n);
            if call["format"] == "pcm" {
                let b = pcm_bytes(&s);
                audio_response(&format!("audio/pcm;rate={RATE}"), None, Body::from(b))
            } else {
                audio_response("audio/wav", None, Body::from(wav_bytes(&s)))
            }
        }
        Script::Flood => {
            let header = wav_bytes(&[])[..44].to_vec();
            let zeros =
                futures::stream::repeat_with(|| Ok::<_, std::io::Error>(Bytes::from(vec![0u8; 1 << 20])))
                    .take(400);
            let body = futures::stream::once(async move { Ok(Bytes::from(header)) }).chain(zeros);
            audio_response("audio/wav", None, Body::from_stream(body))
        }
        Script::BreaksBeforeTheFront => audio_response(
            "audio/wav",
            Some(1 << 20),
            breaking_body(b"RIFF\0\0\0\0WAVEfmt ....".to_vec()),
        ),
        Script::BreaksAfterTheFront => {
            let mut front = wav_bytes(&samples(1 << 20))[..44].to_vec();
            front.resize(44 + (256 << 10), 7);
            audio_response("audio/wav", Some(44 + (2 << 20)), breaking_body(front))
        }
        Script::Held { n } => {
            let wav = Bytes::from(wav_bytes(&samples(n)));
            let cut = wav.len() - (64 << 10);
            let len = wav.len();
            let (front, tail) = (wav.slice(..cut), wav.slice(cut..));
            let front = futures::stream::iter(
                front
                    .chunks(64 << 10)
                    .map(|c| Ok::<_, std::io::Error>(Bytes::copy_from_slice(c)))
                    .collect::<Vec<_>>(),
            );
            let node2 = node.clone();
            let tail = futures::stream::once(async move {
                node2.at_tail.fetch_add(1, Ordering::SeqCst);
                node2.reached.notify_one();
                node2.release.acquire().await.unwrap().forget();
                Ok::<_, std::io::Error>(tail)
            });
            audio_response("audio/wav", Some(len), Body::from_stream(front.chain(tail)))
        }
    }
}

/// Starts a scripted node and registers it at `gateway` with `capacity`.
async fn scripted_node(gateway: &str, script: Script, capacity: usize) -> (String, Arc<Node>) {
    use axum::routing::{get, post};
    let node = Arc::new(Node {
        script,
        calls: AtomicUsize::new(0),
        at_tail: AtomicUsize::new(0),
        reached: Notify::new(),
        release: Semaphore::new(0),
    });
    let status = || async {
        axum::Json(json!({
            "engine": "openvoice", "state": "ready", "reason": null,
            "info": crate::hardening::engine_info(), "metrics": {}
        }))
    };
    let app = axum::Router::new()
        .route("/cluster/v1/synthesize", post(synthesize))
        .route("/cluster/v1/health", get(status))
        .with_state(node.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    let mut body = crate::hardening::register_body(&endpoint);
    body["capacity"] = json!(capacity);
    let r = http()
        .post(format!("{gateway}/cluster/v1/register"))
        .header("x-cluster-token", TOKEN)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    (endpoint, node)
}

/// A gateway whose registry keeps silent nodes and never opens a breaker
/// on the few faults of a test.
fn gateway(dir: &std::path::Path) -> Server {
    let cfg = write(
        dir,
        "gateway.yaml",
        &gateway_yaml(
            &dir.join("data"),
            "heartbeat_interval: 5, dead_threshold: 60, retention: 120, policy: round_robin, \
             breaker: { failure_threshold: 100, cool_down: 1 }",
            "",
        ),
    );
    Server::start(&["gateway", "--config", &cfg])
}

async fn node_errors(gw: &str, endpoint: &str) -> u64 {
    let v: Value = http()
        .get(format!("{gw}/api/v3/nodes"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let n = v["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["endpoint"] == endpoint)
        .cloned()
        .unwrap_or_else(|| panic!("node {endpoint} not listed: {v}"));
    n["metrics"]["errors"].as_u64().unwrap_or(0)
}

/// Reads a body to its end: the bytes, and whether it ended cleanly.
async fn read_all(r: reqwest::Response) -> (Vec<u8>, bool) {
    let mut got = Vec::new();
    let mut body = r.bytes_stream();
    while let Some(chunk) = body.next().await {
        match chunk {
            Ok(c) => got.extend_from_slice(&c),
            Err(_) => return (got, false),
        }
    }
    (got, true)
}

fn speak(c: &reqwest::Client, gw: &str, body: Value) -> reqwest::RequestBuilder {
    c.post(format!("{gw}/api/v3/synthesize")).json(&body)
}

/// The resident and peak resident memory of a process, bytes.
fn memory(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let field = |name: &str| -> u64 {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap()
            * 1024
    };
    (field("VmRSS:"), field("VmHWM:"))
}

#[tokio::test]
async fn a_whole_answer_reaches_the_client_as_the_node_sent_it() {
    let _g = cluster_lock().lock().await;
    let dir = tempfile::tempdir().unwrap();
    let gw = gateway(dir.path());
    let n = 600_000; // 1.2 MB: many chunks on the way
    scripted_node(&gw.base, Script::Honest { n }, 4).await;
    let c = http();

    // The node's own format at the engine's rate: relayed byte for byte,
    // with the node's length.
    let r = speak(&c, &gw.base, json!({ "text": "Hello there." }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let expected = wav_bytes(&samples(n));
    assert_eq!(r.content_length(), Some(expected.len() as u64));
    assert_eq!(r.headers()["content-type"], "audio/wav");
    assert_eq!(r.headers()["x-sample-rate"], RATE.to_string().as_str());
    let (got, clean) = read_all(r).await;
    assert!(clean, "the relayed answer ended with an error");
    assert!(got == expected, "the relayed bytes differ from the node's");
    let wav = parse_wav(&got);
    assert_eq!((wav.rate, wav.samples), (RATE, samples(n)));

    // Raw PCM at the engine's rate: relayed too.
    let r = speak(&c, &gw.base, json!({ "text": "Hello there.", "format": "pcm" }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.content_length(), Some(2 * n as u64));
    let (got, clean) = read_all(r).await;
    assert!(clean && got == pcm_bytes(&samples(n)), "the relayed PCM differs");

    // Another rate: the gateway gathers the node's PCM and encodes it.
    let r = speak(
        &c,
        &gw.base,
        json!({ "text": "Hello there.", "sample_rate": 44_100 }),
    )
    .send()
    .await
    .unwrap();
    assert_eq!(r.status(), 200);
    let wav = parse_wav(&r.bytes().await.unwrap());
    assert_eq!(wav.rate, 44_100);
    let ratio = wav.samples.len() as f64 / n as f64;
    assert!(
        (ratio - 2.0).abs() < 0.01,
        "resampled to {ratio} times the samples"
    );
}

#[tokio::test]
async fn a_node_answering_past_the_cap_is_cut_off_as_a_node_fault() {
    let _g = cluster_lock().lock().await;
    let dir = tempfile::tempdir().unwrap();
    let gw = gateway(dir.path());
    let (endpoint, _node) = scripted_node(&gw.base, Script::Flood, 8).await;
    let c = http();
    let (rss_before, _) = memory(gw.pid());
    // Four floods of 400 MB at once: each passes its checked front, is
    // relayed up to the cap and then cut.
    let flood = || async {
        let r = speak(&c, &gw.base, json!({ "text": "Hello there." }))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "the front was audio");
        assert_eq!(r.content_length(), None);
        read_all(r).await
    };
    let results = futures::future::join_all((0..4).map(|_| flood())).await;
    for (got, clean) in &results {
        assert!(!clean, "a cut answer must not end cleanly ({} bytes)", got.len());
        assert!(
            got.len() as u64 <= SHORT_TEXT_CAP,
            "relayed {} bytes past the cap of {SHORT_TEXT_CAP}",
            got.len()
        );
        assert_eq!(&got[..4], b"RIFF");
    }
    assert!(
        node_errors(&gw.base, &endpoint).await >= 4,
        "counted against the node"
    );
    // The gateway held none of the 4 × 11 MB it passed on.
    let (rss_after, _) = memory(gw.pid());
    eprintln!("gateway RSS around four capped floods: {rss_before} -> {rss_after} bytes");
    assert!(
        rss_after < rss_before + (24 << 20),
        "gateway RSS went from {rss_before} to {rss_after} bytes"
    );
}

#[tokio::test]
async fn eight_large_answers_at_once_pass_through_without_being_held() {
    let _g = cluster_lock().lock().await;
    let dir = tempfile::tempdir().unwrap();
    let gw = gateway(dir.path());
    let n = 4_000_000; // 8 MB each, under the cap of a short text
    let (_endpoint, node) = scripted_node(&gw.base, Script::Held { n }, 8).await;
    let c = http();
    let (before, _) = memory(gw.pid());
    let clients: Vec<_> = (0..8)
        .map(|_| {
            let c = c.clone();
            let url = format!("{}/api/v3/synthesize", gw.base);
            tokio::spawn(async move {
                let r = c
                    .post(url)
                    .json(&json!({ "text": "Hello there." }))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(r.status(), 200);
                read_all(r).await
            })
        })
        .collect();
    // All eight answers are in flight, all but their last 64 KiB sent by
    // the node: a gateway that gathered answers would hold 8 × 8 MB now.
    while node.at_tail.load(Ordering::SeqCst) < 8 {
        node.reached.notified().await;
    }
    let (during, _) = memory(gw.pid());
    node.release.add_permits(8);
    let expected = wav_bytes(&samples(n));
    for client in clients {
        let (got, clean) = client.await.unwrap();
        assert!(clean && got == expected, "answer differs ({} bytes)", got.len());
    }
    eprintln!("gateway RSS with eight 8 MB answers in flight: {before} -> {during} bytes");
    assert!(
        during < before + (32 << 20),
        "gateway RSS went from {before} to {during} bytes with 8 answers of 8 MB in flight"
    );
}

#[tokio::test]
async fn a_node_failing_before_its_first_bytes_is_failed_over_and_after_them_is_not() {
    let _g = cluster_lock().lock().await;
    let dir = tempfile::tempdir().unwrap();
    let gw = gateway(dir.path());
    let n = 100_000;
    let (broken, broken_node) = scripted_node(&gw.base, Script::BreaksBeforeTheFront, 4).await;
    let (_good, good_node) = scripted_node(&gw.base, Script::Honest { n }, 4).await;
    let c = http();
    let expected = wav_bytes(&samples(n));
    for _ in 0..4 {
        let r = speak(&c, &gw.base, json!({ "text": "Hello there." }))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let (got, clean) = read_all(r).await;
        assert!(clean && got == expected, "answer differs ({} bytes)", got.len());
    }
    assert!(
        broken_node.calls.load(Ordering::SeqCst) >= 1,
        "round robin tried the broken node"
    );
    assert_eq!(good_node.calls.load(Ordering::SeqCst), 4);
    assert!(node_errors(&gw.base, &broken).await >= 1);

    // A node that breaks off after its checked front: the client already
    // has bytes, so its answer ends with an error; no other node is asked.
    let dir2 = tempfile::tempdir().unwrap();
    let gw2 = gateway(dir2.path());
    let (late, late_node) = scripted_node(&gw2.base, Script::BreaksAfterTheFront, 4).await;
    let (_good, good_node) = scripted_node(&gw2.base, Script::Honest { n }, 4).await;
    let mut cut = 0;
    for _ in 0..2 {
        let r = speak(&c, &gw2.base, json!({ "text": "Hello there." }))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let (got, clean) = read_all(r).await;
        if !clean {
            cut += 1;
            assert!(got.len() < 44 + (2 << 20), "{} bytes", got.len());
        } else {
            assert!(got == expected, "a clean answer is the good node's");
        }
    }
    assert_eq!(late_node.calls.load(Ordering::SeqCst), 1, "round robin");
    assert_eq!(cut, 1, "the late break reached the client as a cut answer");
    assert_eq!(good_node.calls.load(Ordering::SeqCst), 1, "not retried elsewhere");
    assert!(node_errors(&gw2.base, &late).await >= 1);
}
