//! GPT-SoVITS served by real processes on the tiny fixture model (its
//! weights rebuilt from seeds, `vctts-engines/tests/support/`): a standalone
//! server and a gateway with a `worker.type: gpt-sovits` worker extract a
//! voice from a reference with its transcript and synthesize through
//! `/api/v3/synthesize` and `/stream`; every bad input of the engine gives
//! its clear error code; an incomplete model folder leaves the engine listed
//! but unavailable.

#[path = "../../../vctts-engines/tests/support/gpt_sovits_model.rs"]
mod model;

use crate::common::{Server, TOKEN, cluster_lock, error_code, eventually, http, parse_wav, write};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// A models root with the materialized tiny model in `gpt_sovits/`.
fn models_root(dir: &Path) -> PathBuf {
    let root = dir.join("models");
    let m = root.join("gpt_sovits");
    std::fs::create_dir_all(&m).unwrap();
    model::materialize(&m);
    root
}

/// `seconds` of the fixture's voiced reference at 32 kHz as a 16-bit WAV.
fn reference_wav(seconds: f32) -> Vec<u8> {
    let r = model::read_f32_npy("ref32k.npy");
    let n = (seconds * 32_000.0) as usize;
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: 32_000,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut out = std::io::Cursor::new(Vec::new());
    {
        let mut w = hound::WavWriter::new(&mut out, spec).unwrap();
        for i in 0..n {
            w.write_sample((r[i % r.len()] * 32767.0) as i16).unwrap();
        }
        w.finalize().unwrap();
    }
    out.into_inner()
}

async fn extract(
    c: &reqwest::Client,
    base: &str,
    wav: Vec<u8>,
    fields: &[(&str, &str)],
) -> reqwest::Response {
    let mut form = reqwest::multipart::Form::new()
        .part("audio", reqwest::multipart::Part::bytes(wav).file_name("ref.wav"))
        .text("engines", "gpt-sovits");
    for (k, v) in fields {
        form = form.text(k.to_string(), v.to_string());
    }
    c.post(format!("{base}/api/v3/extract_voice"))
        .multipart(form)
        .send()
        .await
        .unwrap()
}

async fn wait_healthy(base: &str) {
    let c = http();
    eventually(Duration::from_secs(120), "the server to be ready", || async {
        let r = c.get(format!("{base}/api/v3/health")).send().await.ok()?;
        (r.status() == 200).then_some(())
    })
    .await;
}

async fn engine_entry(c: &reqwest::Client, base: &str) -> Value {
    let v: Value = c
        .get(format!("{base}/api/v3/engines"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    v["engines"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["engine"] == "gpt-sovits")
        .cloned()
        .unwrap_or_else(|| panic!("gpt-sovits is not listed: {v}"))
}

async fn synth(c: &reqwest::Client, base: &str, path: &str, body: Value) -> reqwest::Response {
    c.post(format!("{base}/api/v3/{path}"))
        .json(&body)
        .send()
        .await
        .unwrap()
}

/// Extracts voice `bob` and speaks with it, whole and streamed; then the
/// bad inputs.
async fn speak_and_refuse(base: &str) {
    let c = http();
    let e = engine_entry(&c, base).await;
    assert_eq!(e["available"], true, "{e}");
    assert_eq!(e["sample_rate"], 32_000, "{e}");
    assert_eq!(e["needs_transcript"], true, "{e}");
    assert_eq!(e["languages"], json!(["zh", "en"]), "{e}");

    // Missing transcript.
    let (s, code, v) = error_code(extract(&c, base, reference_wav(4.0), &[("language", "zh")]).await).await;
    assert_eq!((s, code.as_str()), (422, "invalid_input"), "{v}");
    assert!(
        v["error"]["message"].as_str().unwrap().contains("transcript"),
        "{v}"
    );
    // A reference outside 3–10 s.
    for seconds in [2.0, 11.0] {
        let r = extract(
            &c,
            base,
            reference_wav(seconds),
            &[("transcript", "你好世界"), ("language", "zh")],
        )
        .await;
        let (s, code, v) = error_code(r).await;
        assert_eq!(code, "audio_rejected", "{seconds} s: {s} {v}");
        assert!(v["error"]["message"].as_str().unwrap().contains("3–10 s"), "{v}");
    }
    // A transcript in another language than declared.
    let r = extract(
        &c,
        base,
        reference_wav(4.0),
        &[("transcript", "你好世界"), ("language", "en")],
    )
    .await;
    assert_eq!(error_code(r).await.1, "invalid_input");

    let r = extract(
        &c,
        base,
        reference_wav(4.0),
        &[
            ("transcript", "你好世界"),
            ("language", "zh"),
            ("voice_id", "bob"),
        ],
    )
    .await;
    assert_eq!(r.status(), 201, "{:?}", r.text().await);

    let ask = json!({ "text": "你好。我们一起去学校吧。", "engine": "gpt-sovits", "voice": "bob",
                      "language": "zh", "seed": 7 });
    let r = synth(&c, base, "synthesize", ask.clone()).await;
    assert_eq!(r.status(), 200);
    let whole = parse_wav(&r.bytes().await.unwrap());
    assert_eq!(whole.rate, 32_000);
    assert!(
        whole.rms() > 1e-4 && whole.seconds() > 0.6,
        "{} s",
        whole.seconds()
    );
    let r = synth(&c, base, "synthesize/stream", ask.clone()).await;
    assert_eq!(r.status(), 200);
    let streamed = parse_wav(&r.bytes().await.unwrap());
    assert!(streamed.streamed);
    assert_eq!(
        streamed.samples, whole.samples,
        "the stream differs from the whole answer"
    );
    let mut fast = ask.clone();
    fast["speed"] = json!(1.25);
    let r = synth(&c, base, "synthesize", fast).await;
    assert_eq!(r.status(), 200);
    let fast = parse_wav(&r.bytes().await.unwrap());
    assert!(fast.samples.len() < whole.samples.len());

    // Nothing to say; an unsupported language; no voice.
    let r = synth(
        &c,
        base,
        "synthesize",
        json!({ "text": "。。。！", "engine": "gpt-sovits", "voice": "bob" }),
    )
    .await;
    assert_eq!(error_code(r).await.1, "empty_text");
    let r = synth(
        &c,
        base,
        "synthesize",
        json!({ "text": "こんにちは", "engine": "gpt-sovits", "voice": "bob", "language": "ja" }),
    )
    .await;
    assert_eq!(error_code(r).await.1, "unsupported_language");
    let r = synth(
        &c,
        base,
        "synthesize/stream",
        json!({ "text": "你好。", "engine": "gpt-sovits" }),
    )
    .await;
    let (s, code, v) = error_code(r).await;
    assert_eq!((s, code.as_str()), (422, "invalid_input"), "{v}");
}

#[tokio::test]
async fn gpt_sovits_standalone_speaks_from_the_tiny_model() {
    let _g = cluster_lock().lock().await;
    let dir = tempfile::tempdir().unwrap();
    let models = models_root(dir.path());
    let data = dir.path().join("data");
    let server = Server::start(&[
        "standalone",
        "--port",
        "0",
        "--models",
        models.to_str().unwrap(),
        "--data",
        data.to_str().unwrap(),
    ]);
    wait_healthy(&server.base).await;
    speak_and_refuse(&server.base).await;
}

#[tokio::test]
async fn gpt_sovits_worker_behind_a_gateway() {
    let _g = cluster_lock().lock().await;
    let dir = tempfile::tempdir().unwrap();
    let models = models_root(dir.path());
    let gw_cfg = write(
        dir.path(),
        "gateway.yaml",
        &crate::common::gateway_yaml(&dir.path().join("data"), crate::common::FAST_REGISTRY, ""),
    );
    let gateway = Server::start(&["gateway", "--config", &gw_cfg]);
    let worker_cfg = write(
        dir.path(),
        "worker.yaml",
        &format!(
            "worker: {{ type: gpt-sovits, host: 127.0.0.1, port: 0 }}\n\
             gateway: {{ url: \"{}\" }}\n\
             cluster: {{ token: \"{TOKEN}\", heartbeat_interval: 0.2, request_timeout: 60, drain_timeout: 30 }}\n\
             model: {{ path: \"{}\", auto_load: true, threads: 2 }}\n\
             resources: {{ max_concurrent: 1, queue_size: 32 }}\n",
            gateway.base,
            models.display()
        ),
    );
    let _worker = Server::start(&["worker", "--config", &worker_cfg]);
    let c = http();
    let base = gateway.base.clone();
    eventually(Duration::from_secs(120), "the gpt-sovits worker", || {
        let c = c.clone();
        let base = base.clone();
        async move {
            let v: Value = c
                .get(format!("{base}/api/v3/nodes"))
                .send()
                .await
                .ok()?
                .json()
                .await
                .ok()?;
            v["nodes"]
                .as_array()?
                .iter()
                .any(|n| n["engine"] == "gpt-sovits" && n["state"] == "ready")
                .then_some(())
        }
    })
    .await;
    speak_and_refuse(&gateway.base).await;
}

#[tokio::test]
async fn an_incomplete_gpt_sovits_folder_leaves_the_engine_unavailable() {
    let _g = cluster_lock().lock().await;
    let dir = tempfile::tempdir().unwrap();
    let models = dir.path().join("models");
    let m = models.join("gpt_sovits");
    std::fs::create_dir_all(&m).unwrap();
    // The graphs and metadata without their weight files.
    for entry in std::fs::read_dir(model::fixture_dir().join("model")).unwrap() {
        let p = entry.unwrap().path();
        std::fs::copy(&p, m.join(p.file_name().unwrap())).unwrap();
    }
    let data = dir.path().join("data");
    let server = Server::start(&[
        "standalone",
        "--port",
        "0",
        "--models",
        models.to_str().unwrap(),
        "--data",
        data.to_str().unwrap(),
    ]);
    let c = http();
    // Nothing is installed: the server still answers, without the engine.
    eventually(Duration::from_secs(60), "the server to answer", || async {
        c.get(format!("{}/api/v3/engines", server.base))
            .send()
            .await
            .ok()
            .map(|_| ())
    })
    .await;
    let e = engine_entry(&c, &server.base).await;
    assert_eq!(e["available"], false, "{e}");
    let r = synth(
        &c,
        &server.base,
        "synthesize",
        json!({ "text": "你好。", "engine": "gpt-sovits" }),
    )
    .await;
    let (s, code, v) = error_code(r).await;
    assert_eq!((s, code.as_str()), (503, "no_node_available"), "{v}");
}
