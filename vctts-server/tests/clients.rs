//! The APIs users' clients speak, against a live `vctts-server standalone`:
//! - the official `openai` Python client: `tests/openai_client.py` speaks
//!   every `response_format` whole, streamed and as server-sent events (and
//!   checks the SDK's error classes, models and voices); the test decodes
//!   everything it saved and checks codec, rate and duration against the
//!   same seed spoken through `/api/v3/synthesize`;
//! - `/api/v3` in every format and rate, and OpenAI's error shape on `/v1`;
//! - xtts-api-server's endpoints, replaying the requests SillyTavern's XTTS
//!   provider sends.
//!
//! Needs `scripts/setup.sh` (the default Piper voice, and the pinned client
//! in `.vctts/openai-client`); fails with that hint when either is missing.

mod common;

use serde_json::Value;
use std::io::Cursor;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;
use symphonia::core::audio::SampleBuffer;
use symphonia::core::codecs::{CODEC_TYPE_AAC, CODEC_TYPE_FLAC, CODEC_TYPE_MP3, CodecType, DecoderOptions};
use symphonia::core::formats::FormatOptions;
use symphonia::core::io::MediaSourceStream;
use symphonia::core::meta::MetadataOptions;
use symphonia::core::probe::Hint;

/// Three sentences, so engines stream more than one chunk.
const TEXT: &str = "The quick brown fox jumps over the lazy dog. \
                    Streams arrive piece by piece. Every format decodes back.";
const SEED: u64 = 7;
/// The rate of every OpenAI answer.
const RATE: u32 = 24_000;

/// The Python of the pinned client's virtual environment.
fn client_python() -> PathBuf {
    let py = common::repo_root().join(".vctts/openai-client/bin/python");
    assert!(
        py.is_file(),
        "the openai client is missing: run scripts/setup.sh (looked for {})",
        py.display()
    );
    py
}

/// Starts a standalone server with the real default voice.
async fn start(dir: &Path) -> common::Server {
    start_with(dir, "").await
}

/// [`start`] with more gateway YAML.
async fn start_with(dir: &Path, extra: &str) -> common::Server {
    let base = common::models_dir().join("openvoice/base");
    assert!(
        base.join("en_US-joe-medium.onnx").is_file(),
        "the default voice is missing: run scripts/setup.sh (looked in {})",
        base.display()
    );
    let models = dir.join("models");
    std::fs::create_dir_all(models.join("openvoice")).expect("models dir");
    std::os::unix::fs::symlink(&base, models.join("openvoice/base")).expect("link the default voice");
    let yaml = format!(
        "server: {{ host: 127.0.0.1, port: 0 }}\n\
         limiter: {{ enabled: false }}\n\
         default_engine: openvoice\n{extra}"
    );
    let config = common::write(dir, "gateway.yaml", &yaml);
    let data = dir.join("data");
    let server = common::Server::start(&[
        "standalone",
        "--config",
        &config,
        "--models",
        &models.to_string_lossy(),
        "--data",
        &data.to_string_lossy(),
    ]);
    let http = common::http();
    let health = format!("{}/api/v3/health", server.base);
    common::eventually(Duration::from_secs(120), "the server to be ready", || {
        let req = http.get(&health).send();
        async move { matches!(req.await, Ok(r) if r.status() == 200).then_some(()) }
    })
    .await;
    server
}

/// What a decoder found in a file.
#[derive(Debug)]
struct Decoded {
    /// The codec, or `None` for formats decoded here (wav, pcm, opus).
    codec: Option<CodecType>,
    /// The stated rate (Opus: the input rate of its header).
    rate: u32,
    /// Seconds of audio.
    seconds: f64,
    /// RMS of the samples, in [0, 1].
    rms: f64,
}

fn rms(x: &[f32]) -> f64 {
    if x.is_empty() {
        return 0.0;
    }
    (x.iter().map(|&s| (s as f64).powi(2)).sum::<f64>() / x.len() as f64).sqrt()
}

fn symphonia_decode(bytes: &[u8], ext: &str) -> Decoded {
    let mss = MediaSourceStream::new(Box::new(Cursor::new(bytes.to_vec())), Default::default());
    let mut hint = Hint::new();
    hint.with_extension(ext);
    let probed = symphonia::default::get_probe()
        .format(&hint, mss, &FormatOptions::default(), &MetadataOptions::default())
        .unwrap_or_else(|e| panic!("{ext}: probe failed: {e}"));
    let mut format = probed.format;
    let track = format.default_track().expect("a track").clone();
    assert_eq!(
        track.codec_params.channels.map(|c| c.count()),
        Some(1),
        "{ext}: mono"
    );
    let mut dec = symphonia::default::get_codecs()
        .make(&track.codec_params, &DecoderOptions::default())
        .unwrap_or_else(|e| panic!("{ext}: no decoder: {e}"));
    let mut samples = Vec::new();
    loop {
        let packet = match format.next_packet() {
            Ok(p) => p,
            Err(symphonia::core::errors::Error::IoError(e))
                if e.kind() == std::io::ErrorKind::UnexpectedEof =>
            {
                break;
            }
            Err(e) => panic!("{ext}: demux error: {e}"),
        };
        let buf = dec
            .decode(&packet)
            .unwrap_or_else(|e| panic!("{ext}: decode error: {e}"));
        let mut sb = SampleBuffer::<f32>::new(buf.capacity() as u64, *buf.spec());
        sb.copy_interleaved_ref(buf);
        samples.extend_from_slice(sb.samples());
    }
    let rate = track.codec_params.sample_rate.expect("a rate");
    Decoded {
        codec: Some(track.codec_params.codec),
        rate,
        seconds: samples.len() as f64 / rate as f64,
        rms: rms(&samples),
    }
}

/// Ogg Opus: the header's input rate, and the samples up to the last
/// granule position less the pre-skip (RFC 7845), decoded with libopus.
fn opus_decode(bytes: &[u8]) -> Decoded {
    let mut reader = ogg::reading::PacketReader::new(Cursor::new(bytes.to_vec()));
    let head = reader.read_packet_expected().expect("OpusHead packet");
    assert_eq!(&head.data[..8], b"OpusHead");
    assert_eq!(head.data[9], 1, "mono");
    let pre_skip = u16::from_le_bytes([head.data[10], head.data[11]]) as usize;
    let input_rate = u32::from_le_bytes(head.data[12..16].try_into().unwrap());
    let tags = reader.read_packet_expected().expect("OpusTags packet");
    assert_eq!(&tags.data[..8], b"OpusTags");
    let mut dec = opus::Decoder::new(48_000, opus::Channels::Mono).unwrap();
    let mut out = Vec::new();
    let mut buf = vec![0f32; 5760];
    let mut last_gp = 0;
    let mut ended = false;
    while let Some(p) = reader.read_packet().expect("ogg page") {
        let n = dec.decode_float(&p.data, &mut buf, false).expect("opus packet");
        out.extend_from_slice(&buf[..n]);
        if p.last_in_page() {
            last_gp = p.absgp_page() as usize;
        }
        ended |= p.last_in_stream();
    }
    assert!(ended, "the Opus stream ends with an EOS page");
    out.truncate(last_gp.min(out.len()));
    out.drain(..pre_skip.min(out.len()));
    Decoded {
        codec: None,
        rate: input_rate,
        seconds: out.len() as f64 / 48_000.0,
        rms: rms(&out),
    }
}

fn decode(bytes: &[u8], format: &str) -> Decoded {
    match format {
        "wav" => {
            let w = common::parse_wav(bytes);
            Decoded {
                codec: None,
                rate: w.rate,
                seconds: w.seconds(),
                rms: w.rms(),
            }
        }
        "pcm" => {
            assert_eq!(bytes.len() % 2, 0, "pcm: whole 16-bit samples");
            let x: Vec<f32> = bytes
                .chunks_exact(2)
                .map(|b| f32::from(i16::from_le_bytes([b[0], b[1]])) / 32768.0)
                .collect();
            Decoded {
                codec: None,
                rate: RATE,
                seconds: x.len() as f64 / RATE as f64,
                rms: rms(&x),
            }
        }
        "opus" => opus_decode(bytes),
        other => symphonia_decode(bytes, other),
    }
}

/// The content type each format answers.
fn content_type(format: &str) -> &'static str {
    match format {
        "mp3" => "audio/mpeg",
        "opus" => "audio/ogg;codecs=opus",
        "aac" => "audio/aac",
        "flac" => "audio/flac",
        "wav" => "audio/wav",
        "pcm" => "audio/pcm;rate=24000",
        _ => unreachable!(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_official_openai_client_gets_every_format_whole_streamed_and_as_events() {
    let python = client_python();
    let _guard = common::cluster_lock().lock().await;
    let dir = tempfile::tempdir().expect("temp dir");
    let server = start(dir.path()).await;

    // The same text and seed through /api/v3: the duration every format must have.
    let res = common::http()
        .post(format!("{}/api/v3/synthesize", server.base))
        .json(&serde_json::json!({"text": TEXT, "seed": SEED, "format": "wav"}))
        .send()
        .await
        .expect("reference synthesis");
    assert_eq!(res.status(), 200);
    let reference = common::parse_wav(&res.bytes().await.unwrap());
    let want = reference.seconds();
    assert!(want > 2.0, "three sentences last more than 2 s, got {want}");

    let out = dir.path().join("client");
    std::fs::create_dir_all(&out).unwrap();
    let script = common::repo_root().join("vctts-server/tests/openai_client.py");
    let run = tokio::task::spawn_blocking({
        let (python, out, base) = (python.clone(), out.clone(), server.base.clone());
        move || {
            Command::new(python)
                .arg(script)
                .arg(base)
                .arg(&out)
                .arg(TEXT)
                .arg(SEED.to_string())
                .output()
                .expect("run the openai client script")
        }
    })
    .await
    .unwrap();
    assert!(
        run.status.success(),
        "the openai client script failed ({}):\n{}\n{}",
        run.status,
        String::from_utf8_lossy(&run.stdout),
        String::from_utf8_lossy(&run.stderr)
    );

    let manifest: Value =
        serde_json::from_slice(&std::fs::read(out.join("manifest.json")).expect("manifest")).unwrap();
    let files = manifest["files"].as_array().expect("files");
    assert_eq!(files.len(), 6 * 3, "every format whole, streamed and as events");
    for f in files {
        let format = f["format"].as_str().unwrap();
        let mode = f["mode"].as_str().unwrap();
        let what = format!("{mode} {format}");
        let bytes = std::fs::read(out.join(f["file"].as_str().unwrap())).unwrap();
        let d = decode(&bytes, format);
        let codec = match format {
            "mp3" => Some(CODEC_TYPE_MP3),
            "aac" => Some(CODEC_TYPE_AAC),
            "flac" => Some(CODEC_TYPE_FLAC),
            _ => None,
        };
        assert_eq!(d.codec, codec, "{what}: codec");
        assert_eq!(d.rate, RATE, "{what}: rate");
        // Lossless formats keep the length (resampled to 24 kHz); lossy
        // codecs add their delay and frame padding (under 0.15 s here).
        let tolerance = match format {
            "wav" | "pcm" | "flac" => 0.01,
            _ => 0.15,
        };
        assert!(
            (d.seconds - want).abs() <= tolerance,
            "{what}: {:.3} s decoded, {want:.3} s spoken",
            d.seconds
        );
        assert!(d.rms > 0.01, "{what}: speech, not silence (rms {})", d.rms);
        match mode {
            "whole" => assert_eq!(f["content_type"], content_type(format), "{what}"),
            "stream" => {
                assert_eq!(f["content_type"], content_type(format), "{what}");
                assert_eq!(f["transfer_encoding"], "chunked", "{what}: chunked");
                assert_eq!(f["accel_buffering"], "no", "{what}: X-Accel-Buffering");
            }
            "sse" => {
                // One delta per encoded engine chunk: the sentences arrive
                // one by one (AAC's encoder writes everything at the end).
                let deltas = f["deltas"].as_u64().unwrap();
                if format == "aac" {
                    assert!(deltas >= 1, "{what}: {deltas} deltas");
                } else {
                    assert!(deltas >= 2, "{what}: audio in pieces, got {deltas} deltas");
                }
            }
            other => panic!("unknown mode {other}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v1_errors_have_openai_shape_and_api_v3_speaks_every_format() {
    let _guard = common::cluster_lock().lock().await;
    let dir = tempfile::tempdir().expect("temp dir");
    let server = start(dir.path()).await;
    let http = common::http();

    // Malformed JSON, an unknown field and an unknown route on /v1: OpenAI's shape.
    for (path, body, status, code) in [
        ("/v1/audio/speech", "{\"model\":", 400, "malformed_json"),
        (
            "/v1/audio/speech",
            "{\"model\":\"tts-1\",\"input\":\"hi\",\"voice\":\"alloy\",\"response_format\":\"wav_f32\"}",
            400,
            "invalid_input",
        ),
        ("/v1/nothing", "{}", 404, "not_found"),
    ] {
        let res = http
            .post(format!("{}{path}", server.base))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status().as_u16(), status, "{path} {body}");
        let v: Value = res.json().await.unwrap();
        let e = &v["error"];
        assert_eq!(e["code"], code, "{path} {body}: {v}");
        assert!(e["message"].is_string() && e["type"].is_string(), "{v}");
        assert!(e.as_object().unwrap().contains_key("param"), "{v}");
    }
    // /api/v3 keeps its own shape.
    let res = http
        .post(format!("{}/api/v3/synthesize", server.base))
        .json(&serde_json::json!({"text": "hi", "format": "m4b"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 422);
    let v: Value = res.json().await.unwrap();
    assert_eq!(v["error"]["code"], "invalid_input");
    assert!(v["error"]["request_id"].is_string());

    // /api/v3: every format, whole and streamed, at the engine's rate or another.
    for (format, rate, endpoint) in [
        ("mp3", None, "synthesize"),
        ("opus", None, "synthesize/stream"),
        ("flac", Some(16_000), "synthesize"),
        ("aac", Some(24_000), "synthesize/stream"),
        ("pcm", Some(16_000), "synthesize/stream"),
        ("wav", Some(44_100), "synthesize"),
    ] {
        let res = http
            .post(format!("{}/api/v3/{endpoint}", server.base))
            .json(&serde_json::json!({"text": "Hello there.", "format": format, "sample_rate": rate, "seed": 3}))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200, "{endpoint} {format}");
        let ct = res.headers()["content-type"].to_str().unwrap().to_string();
        let stated: u32 = res.headers()["x-sample-rate"].to_str().unwrap().parse().unwrap();
        let bytes = res.bytes().await.unwrap();
        let d = match format {
            "pcm" => {
                assert_eq!(ct, "audio/pcm;rate=16000");
                Decoded {
                    codec: None,
                    rate: 16_000,
                    seconds: bytes.len() as f64 / 2.0 / 16_000.0,
                    rms: 0.1,
                }
            }
            _ => decode(&bytes, format),
        };
        let engine_rate = 22_050;
        let expect_rate = rate.unwrap_or(engine_rate);
        if format == "opus" {
            assert_eq!(stated, 48_000, "opus is coded at 48 kHz");
            assert_eq!(d.rate, engine_rate, "opus states the input rate");
        } else {
            assert_eq!(d.rate, expect_rate, "{format}: rate");
            assert_eq!(stated, expect_rate, "{format}: X-Sample-Rate");
        }
        assert!(d.seconds > 0.3, "{format}: {:.3} s", d.seconds);
    }
    // A rate the codec cannot carry is refused before any node works.
    let res = http
        .post(format!("{}/api/v3/synthesize", server.base))
        .json(&serde_json::json!({"text": "hi", "format": "mp3", "sample_rate": 23_000}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 422);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sillytavern_xtts_provider_requests_work_unchanged() {
    let _guard = common::cluster_lock().lock().await;
    let dir = tempfile::tempdir().expect("temp dir");
    // Off by default: the paths are not mounted.
    {
        let off = start(dir.path()).await;
        let res = common::http()
            .get(format!("{}/speakers", off.base))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 404);
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let server = start_with(dir.path(), "compat: { xtts_api_server: true }\n").await;
    let http = common::http();
    let base = &server.base;

    // fetchTtsVoiceObjects: GET /speakers.
    let speakers: Value = http
        .get(format!("{base}/speakers"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let joe = speakers
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "en_US-joe-medium")
        .unwrap_or_else(|| panic!("the built-in voice is a speaker: {speakers}"));
    assert_eq!(joe["voice_id"], "en_US-joe-medium");
    assert!(
        joe["preview_url"]
            .as_str()
            .unwrap()
            .ends_with("/sample/en_US-joe-medium.wav")
    );
    let list: Value = http
        .get(format!("{base}/speakers_list"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        list.as_array().unwrap().iter().any(|s| s == "en_US-joe-medium"),
        "{list}"
    );
    let langs: Value = http
        .get(format!("{base}/languages"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(langs["languages"]["English"], "en", "{langs}");

    // changeTTSSettings: the slider values arrive as strings.
    let res = http
        .post(format!("{base}/set_tts_settings"))
        .header("content-type", "application/json")
        .header("cache-control", "no-cache")
        .body(r#"{"temperature":"0.75","speed":"1.5","length_penalty":"1","repetition_penalty":"5","top_p":"0.85","top_k":"50","enable_text_splitting":true,"stream_chunk_size":"100"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let got: Value = http
        .get(format!("{base}/get_tts_settings"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(got["speed"], 1.5, "{got}");
    let res = http
        .post(format!("{base}/set_tts_settings"))
        .json(&serde_json::json!({"speed": "fast"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 422);

    // fetchTtsGeneration without streaming: POST /tts_to_audio/.
    let text = "Hello from the tavern. A second sentence follows.";
    let res = http
        .post(format!("{base}/tts_to_audio/"))
        .header("content-type", "application/json")
        .header("cache-control", "no-cache")
        .json(&serde_json::json!({"text": text, "speaker_wav": "en_US-joe-medium", "language": "en"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["content-type"], "audio/wav");
    let whole = common::parse_wav(&res.bytes().await.unwrap());
    assert!(!whole.streamed && whole.seconds() > 1.5 && whole.rms() > 0.01);

    // The client's speed setting applies to its own requests: the same text
    // at speed 1 (another client's default) is longer.
    let res = http
        .post(format!("{base}/api/v3/synthesize"))
        .json(&serde_json::json!({"text": text, "voice": "en_US-joe-medium"}))
        .send()
        .await
        .unwrap();
    let normal = common::parse_wav(&res.bytes().await.unwrap());
    assert!(
        whole.seconds() < normal.seconds() * 0.85,
        "speed 1.5 from /set_tts_settings: {:.2} s against {:.2} s",
        whole.seconds(),
        normal.seconds()
    );

    // fetchTtsGeneration with streaming: an <audio> element GETs /tts_stream/.
    let res = http
        .get(format!("{base}/tts_stream/"))
        .query(&[
            ("text", text),
            ("speaker_wav", "en_US-joe-medium"),
            ("language", "en"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["content-type"], "audio/x-wav");
    let streamed = common::parse_wav(&res.bytes().await.unwrap());
    assert!(streamed.streamed && streamed.seconds() > 1.0 && streamed.rms() > 0.01);

    // An unknown speaker, a missing sample.
    let res = http
        .post(format!("{base}/tts_to_audio/"))
        .json(&serde_json::json!({"text": "hi", "speaker_wav": "speakers/nobody.wav", "language": "en"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404);
    let res = http
        .get(format!("{base}/sample/nobody.wav"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gpt_sovits_api_v2_calls_work_unchanged() {
    let _guard = common::cluster_lock().lock().await;
    let dir = tempfile::tempdir().expect("temp dir");
    let server = start_with(dir.path(), "compat: { gpt_sovits_api: true }\n").await;
    let http = common::http();
    let base = &server.base;
    let text = "Hello from a script. It streams sentence by sentence.";

    // The GET call of api_v2.py's documentation, streamed.
    let res = http
        .get(format!("{base}/tts"))
        .query(&[
            ("text", text),
            ("text_lang", "en"),
            ("ref_audio_path", "voices/en_US-joe-medium.wav"),
            ("prompt_lang", "en"),
            ("prompt_text", "The reference's transcript."),
            ("text_split_method", "cut5"),
            ("batch_size", "1"),
            ("media_type", "wav"),
            ("streaming_mode", "true"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["content-type"], "audio/wav");
    let wav = common::parse_wav(&res.bytes().await.unwrap());
    assert!(wav.streamed && wav.seconds() > 1.0 && wav.rms() > 0.01);

    // POST with JSON, raw PCM, whole, and ogg.
    let res = http
        .post(format!("{base}/tts"))
        .json(&serde_json::json!({
            "text": text, "text_lang": "en", "ref_audio_path": "en_US-joe-medium.wav",
            "prompt_lang": "en", "media_type": "raw", "streaming_mode": false, "seed": 5
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["content-type"], "audio/raw");
    let rate: f64 = res.headers()["x-sample-rate"].to_str().unwrap().parse().unwrap();
    let raw = res.bytes().await.unwrap();
    assert!((raw.len() as f64 / 2.0 / rate - wav.seconds()).abs() < 1.0);
    let res = http
        .post(format!("{base}/tts"))
        .json(&serde_json::json!({
            "text": "Short.", "text_lang": "en", "ref_audio_path": "en_US-joe-medium.wav",
            "prompt_lang": "en", "media_type": "ogg"
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.headers()["content-type"], "audio/ogg");
    assert!(opus_decode(&res.bytes().await.unwrap()).seconds > 0.2);

    // Upstream's checks, vctts's answers.
    let res = http
        .get(format!("{base}/tts"))
        .query(&[("text", "hi"), ("ref_audio_path", "a.wav")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 422, "text_lang is required");
    let res = http
        .get(format!("{base}/set_refer_audio"))
        .query(&[("refer_audio_path", "en_US-joe-medium.wav")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let res = http
        .get(format!("{base}/set_refer_audio"))
        .query(&[("refer_audio_path", "nobody.wav")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404);
    let res = http
        .get(format!("{base}/control"))
        .query(&[("command", "exit")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);
    // The server is still there.
    let res = http.get(format!("{base}/api/v3/health")).send().await.unwrap();
    assert_eq!(res.status(), 200);
}
