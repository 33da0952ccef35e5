//! Synthesis through real processes with the real OpenVoice engine and voice:
//! whole answers, streams (valid audio, first bytes before the end, client
//! disconnect frees the node), batches with a bad item (JSON and ZIP), the
//! OpenAI endpoint, voices from real speech, and standalone mode.

use crate::common::{
    Cluster, FAST_REGISTRY, Server, TOKEN, cluster_lock, error_code, eventually, http, models_dir, parse_wav,
    reference_wav,
};
use futures::StreamExt;
use serde_json::{Value, json};
use std::io::Read;
use std::time::{Duration, Instant};

/// Text of `n` short sentences.
fn sentences(n: usize) -> String {
    (0..n)
        .map(|i| format!("This is sentence number {} of the test.", i + 1))
        .collect::<Vec<_>>()
        .join(" ")
}

async fn engine(c: &reqwest::Client, base: &str) -> Value {
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
        .find(|e| e["engine"] == "openvoice")
        .cloned()
        .unwrap()
}

#[tokio::test]
async fn whole_and_streamed_synthesis_of_real_speech() {
    let _g = cluster_lock().lock().await;
    let cluster = Cluster::start(1, FAST_REGISTRY, "").await;
    let c = http();
    let gw = cluster.gateway.base.clone();

    let ov = engine(&c, &gw).await;
    assert_eq!(ov["available"], true);
    assert_eq!(ov["sample_rate"], 22050);
    assert!(
        ov["builtin_voices"]
            .as_array()
            .unwrap()
            .iter()
            .any(|v| v == "en_US-joe-medium"),
        "{ov}"
    );
    assert!(
        ov["languages"].as_array().unwrap().iter().any(|l| l == "en"),
        "{ov}"
    );

    // Whole WAV, with a built-in voice named explicitly.
    let r = c
        .post(format!("{gw}/api/v3/synthesize"))
        .json(&json!({ "text": "The quick brown fox jumps over the lazy dog.", "voice": "en_US-joe-medium", "language": "en-US" }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "audio/wav");
    let duration_ms: u64 = r.headers()["x-audio-duration-ms"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    let wav = parse_wav(&r.bytes().await.unwrap());
    assert_eq!(wav.rate, 22050);
    assert!(!wav.streamed);
    assert!(
        wav.seconds() > 1.0 && wav.rms() > 0.02,
        "{} s rms {}",
        wav.seconds(),
        wav.rms()
    );
    assert!((wav.seconds() * 1000.0 - duration_ms as f64).abs() < 2.0);

    // Raw PCM says its rate in the content type.
    let r = c
        .post(format!("{gw}/api/v3/synthesize"))
        .json(&json!({ "text": "Raw samples, please.", "format": "pcm" }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["content-type"], "audio/pcm;rate=22050");
    let pcm = r.bytes().await.unwrap();
    assert!(pcm.len() > 22050 && pcm.len() % 2 == 0);

    // A stream: valid WAV with streaming sizes; the first bytes arrive well
    // before the synthesis ends.
    let text = sentences(12);
    let started = Instant::now();
    let r = c
        .post(format!("{gw}/api/v3/synthesize/stream"))
        .json(&json!({ "text": text }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "audio/wav");
    assert!(r.headers().contains_key("x-node-id"));
    let mut body = Vec::new();
    let mut first_at = None;
    let mut chunks = 0;
    let mut stream = r.bytes_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.unwrap();
        if first_at.is_none() && !chunk.is_empty() {
            first_at = Some(started.elapsed());
        }
        chunks += 1;
        body.extend_from_slice(&chunk);
    }
    let total = started.elapsed();
    let first_at = first_at.unwrap();
    let wav = parse_wav(&body);
    assert!(wav.streamed, "the stream header has 0xFFFFFFFF sizes");
    assert_eq!(wav.rate, 22050);
    assert!(wav.seconds() > 12.0 && wav.rms() > 0.02, "{} s", wav.seconds());
    assert!(chunks >= 3, "{chunks} chunks");
    assert!(
        first_at.as_secs_f64() < total.as_secs_f64() * 0.5,
        "first bytes at {first_at:?}, end at {total:?}"
    );

    // A PCM stream.
    let r = c
        .post(format!("{gw}/api/v3/synthesize/stream"))
        .json(&json!({ "text": sentences(2), "format": "pcm" }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["content-type"], "audio/pcm;rate=22050");
    let pcm = r.bytes().await.unwrap();
    assert!(pcm.len() > 22050 && pcm.len() % 2 == 0);

    // Without a tone color converter OpenVoice cannot clone: extraction says
    // so (the engine's own reason), and nothing is stored.
    let form = reqwest::multipart::Form::new()
        .part(
            "audio",
            reqwest::multipart::Part::bytes(reference_wav()).file_name("front.wav"),
        )
        .text("name", "Front");
    let r = c
        .post(format!("{gw}/api/v3/extract_voice"))
        .multipart(form)
        .send()
        .await
        .unwrap();
    let (s, code, v) = error_code(r).await;
    assert_eq!((s, code.as_str()), (503, "model_not_installed"), "{v}");
    assert!(
        v["error"]["message"].as_str().unwrap().contains("converter"),
        "{v}"
    );
    let v: Value = c
        .get(format!("{gw}/api/v3/voices"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["total"], 0);
    assert_eq!(
        std::fs::read_dir(cluster.dir.path().join("data/voices"))
            .unwrap()
            .count(),
        0
    );

    // Hanging up mid-stream cancels the work on the node: its slot is free
    // long before the whole text could have been spoken.
    let worker = &cluster.workers[0].base;
    let long = sentences(80);
    let r = c
        .post(format!("{gw}/api/v3/synthesize/stream"))
        .json(&json!({ "text": long }))
        .send()
        .await
        .unwrap();
    let mut stream = r.bytes_stream();
    let first = stream.next().await.unwrap().unwrap();
    assert!(!first.is_empty());
    let first_chunk_at = Instant::now();
    drop(stream);
    let wc = http();
    eventually(
        Duration::from_secs(10),
        "the worker to drop the cancelled stream",
        || {
            let wc = wc.clone();
            let url = format!("{worker}/cluster/v1/health");
            async move {
                let v: Value = wc
                    .get(url)
                    .header("x-cluster-token", TOKEN)
                    .send()
                    .await
                    .ok()?
                    .json()
                    .await
                    .ok()?;
                (v["metrics"]["in_flight"] == 0).then_some(())
            }
        },
    )
    .await;
    let freed_after = first_chunk_at.elapsed();
    // 80 sentences take far longer than this (the 12-sentence stream above took `total`).
    let full_estimate = total.mul_f64(80.0 / 12.0);
    assert!(
        freed_after < full_estimate / 4,
        "slot freed after {freed_after:?}; the whole text takes about {full_estimate:?}"
    );
    // The gateway's lease is gone too.
    eventually(
        Duration::from_secs(2),
        "the gateway lease to be released",
        || async { (cluster.nodes().await[0]["metrics"]["in_flight"] == 0).then_some(()) },
    )
    .await;
    // And the next request is served without waiting for the cancelled one.
    let r = c
        .post(format!("{gw}/api/v3/synthesize"))
        .json(&json!({ "text": "Next please." }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let queued: u64 = r.headers()["x-queue-time-ms"].to_str().unwrap().parse().unwrap();
    assert!(queued < 1000, "queued {queued} ms");
}

#[tokio::test]
async fn batches_openai_and_voices_on_a_two_node_cluster() {
    let _g = cluster_lock().lock().await;
    let cluster = Cluster::start_with(2, FAST_REGISTRY, "", true).await;
    let c = http();
    let gw = cluster.gateway.base.clone();

    // A batch with one bad item: the others succeed, in parallel on both nodes.
    let items = json!({ "items": [
        { "text": "First item." },
        { "text": "Second item.", "voice": "nobody" },
        { "text": "Third item.", "format": "pcm" },
        { "text": "Fourth item." },
    ]});
    let r = c
        .post(format!("{gw}/api/v3/synthesize/batch"))
        .json(&items)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(
        (v["succeeded"].as_u64(), v["failed"].as_u64()),
        (Some(3), Some(1)),
        "{v}"
    );
    let items_out = v["items"].as_array().unwrap();
    let statuses: Vec<u64> = items_out.iter().map(|i| i["status"].as_u64().unwrap()).collect();
    assert_eq!(statuses, vec![200, 404, 200, 200]);
    assert_eq!(items_out[1]["error"]["code"], "voice_not_found");
    use base64::Engine as _;
    let first = base64::engine::general_purpose::STANDARD
        .decode(items_out[0]["audio_base64"].as_str().unwrap())
        .unwrap();
    assert!(parse_wav(&first).rms() > 0.01);
    assert_eq!(items_out[2]["content_type"], "audio/pcm;rate=22050");
    let nodes: std::collections::BTreeSet<&str> =
        items_out.iter().filter_map(|i| i["node_id"].as_str()).collect();
    assert_eq!(nodes.len(), 2, "items ran on both nodes: {v}");

    // The same as a ZIP.
    let r = c
        .post(format!("{gw}/api/v3/synthesize/batch?format=zip"))
        .json(&items)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "application/zip");
    let bytes = r.bytes().await.unwrap();
    let mut zip = zip::ZipArchive::new(std::io::Cursor::new(bytes.to_vec())).unwrap();
    let mut names: Vec<String> = zip.file_names().map(str::to_string).collect();
    names.sort();
    assert_eq!(
        names,
        vec!["item-000.wav", "item-002.pcm", "item-003.wav", "manifest.json"]
    );
    let mut manifest = String::new();
    zip.by_name("manifest.json")
        .unwrap()
        .read_to_string(&mut manifest)
        .unwrap();
    let m: Value = serde_json::from_str(&manifest).unwrap();
    assert_eq!(m["items"][1]["status"], 404);
    assert_eq!(m["items"][0]["file"], "item-000.wav");
    let mut wav = Vec::new();
    zip.by_name("item-003.wav")
        .unwrap()
        .read_to_end(&mut wav)
        .unwrap();
    assert!(parse_wav(&wav).seconds() > 0.3);

    // OpenAI clients work unchanged.
    let r = c
        .post(format!("{gw}/v1/audio/speech"))
        .json(&json!({ "model": "tts-1", "input": "Hello from an OpenAI client.", "voice": "alloy", "response_format": "wav" }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "audio/wav");
    assert!(parse_wav(&r.bytes().await.unwrap()).rms() > 0.01);

    // Voices from real speech (the workers have the fixture converter).
    let ov = engine(&c, &gw).await;
    assert_eq!(ov["cloning"], true, "{ov}");
    let speech = reference_wav();
    let form = || {
        reqwest::multipart::Form::new()
            .part(
                "audio",
                reqwest::multipart::Part::bytes(speech.clone()).file_name("front.wav"),
            )
            .text("name", "Front speaker")
            .text("voice_id", "front-speaker")
            .text("language", "en")
    };
    let r = c
        .post(format!("{gw}/api/v3/extract_voice"))
        .multipart(form())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    assert_eq!(r.headers()["location"], "/api/v3/voices/front-speaker");
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["voice"]["id"], "front-speaker");
    assert_eq!(v["voice"]["name"], "Front speaker");
    assert_eq!(v["voice"]["engines"], json!(["openvoice"]));
    assert_eq!(v["engines"][0]["ok"], true);
    assert!(v["quality"]["speech_seconds"].as_f64().unwrap() > 3.0, "{v}");
    assert!(v["voice"]["reference_seconds"].as_f64().unwrap() > 10.0, "{v}");
    // The same id again is refused, and the first voice is untouched.
    let r = c
        .post(format!("{gw}/api/v3/extract_voice"))
        .multipart(form())
        .send()
        .await
        .unwrap();
    let (s, code, _) = error_code(r).await;
    assert_eq!((s, code.as_str()), (422, "invalid_input"));
    // The voice works on either node: the profile travels with the request.
    let mut on = std::collections::BTreeSet::new();
    let mut plain_rms = 0.0;
    for _ in 0..4 {
        let r = c
            .post(format!("{gw}/api/v3/synthesize"))
            .json(&json!({ "text": "A cloned voice speaks.", "voice": "front-speaker", "seed": 7 }))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        on.insert(r.headers()["x-node-id"].to_str().unwrap().to_string());
        let wav = parse_wav(&r.bytes().await.unwrap());
        assert!(wav.seconds() > 0.5, "{} s", wav.seconds());
        plain_rms = wav.rms();
    }
    assert_eq!(on.len(), 2, "{on:?}");
    assert!(plain_rms.is_finite());
    // A stream with the cloned voice.
    let r = c
        .post(format!("{gw}/api/v3/synthesize/stream"))
        .json(&json!({ "text": sentences(2), "voice": "front-speaker" }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(parse_wav(&r.bytes().await.unwrap()).seconds() > 1.0);
    // Listing, details, reference audio.
    let v: Value = c
        .get(format!("{gw}/api/v3/voices?limit=10"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["total"], 1);
    assert_eq!(v["voices"][0]["id"], "front-speaker");
    let v: Value = c
        .get(format!("{gw}/api/v3/voices/front-speaker"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["quality"]["sample_rate"], 48000);
    let r = c
        .get(format!("{gw}/api/v3/voices/front-speaker/audio"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["content-type"], "audio/wav");
    let reference = parse_wav(&r.bytes().await.unwrap());
    assert_eq!(reference.rate, 48000);
    assert!(reference.seconds() > 10.0);
    // Deleting removes the rows and the file.
    let voices_dir = cluster.dir.path().join("data/voices");
    assert_eq!(std::fs::read_dir(&voices_dir).unwrap().count(), 1);
    let r = c
        .delete(format!("{gw}/api/v3/voices/front-speaker"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    let r = c
        .get(format!("{gw}/api/v3/voices/front-speaker"))
        .send()
        .await
        .unwrap();
    assert_eq!(error_code(r).await.1, "voice_not_found");
    let r = c
        .post(format!("{gw}/api/v3/synthesize"))
        .json(&json!({ "text": "Gone.", "voice": "front-speaker" }))
        .send()
        .await
        .unwrap();
    assert_eq!(error_code(r).await.1, "voice_not_found");
    assert_eq!(std::fs::read_dir(&voices_dir).unwrap().count(), 0);
}

#[tokio::test]
async fn standalone_mode_needs_no_config() {
    let _g = cluster_lock().lock().await;
    let dir = tempfile::tempdir().unwrap();
    let models = models_dir();
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
    let base = &server.base;
    eventually(
        Duration::from_secs(60),
        "the in-process engine to be ready",
        || async {
            let r = c.get(format!("{base}/api/v3/health")).send().await.ok()?;
            (r.status() == 200).then_some(())
        },
    )
    .await;
    let nodes: Value = c
        .get(format!("{base}/api/v3/nodes"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(nodes["nodes"][0]["endpoint"], "inproc://openvoice");
    let engines: Value = c
        .get(format!("{base}/api/v3/engines"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let xtts = engines["engines"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["engine"] == "xtts")
        .unwrap();
    assert_eq!(
        xtts["available"], false,
        "engines without models are listed, unavailable"
    );

    let r = c
        .post(format!("{base}/api/v3/synthesize"))
        .json(&json!({ "text": "Standalone and ready." }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-node-id"], "openvoice-local");
    assert!(parse_wav(&r.bytes().await.unwrap()).rms() > 0.01);
    let r = c
        .post(format!("{base}/api/v3/synthesize/stream"))
        .json(&json!({ "text": sentences(3) }))
        .send()
        .await
        .unwrap();
    let wav = parse_wav(&r.bytes().await.unwrap());
    assert!(wav.streamed && wav.seconds() > 3.0);
    let r = c
        .post(format!("{base}/api/v3/synthesize"))
        .json(&json!({ "text": "Bonjour.", "language": "fr" }))
        .send()
        .await
        .unwrap();
    assert_eq!(error_code(r).await.1, "unsupported_language");
    let r = c
        .post(format!("{base}/api/v3/synthesize"))
        .json(&json!({ "text": "Who?", "engine": "xtts" }))
        .send()
        .await
        .unwrap();
    let (s, code, v) = error_code(r).await;
    assert_eq!(
        (s, code.as_str(), v["error"]["engine"].as_str()),
        (503, "no_node_available", Some("xtts"))
    );
}
