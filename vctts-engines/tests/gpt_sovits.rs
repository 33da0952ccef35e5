//! GPT-SoVITS v2: parity with the upstream references recorded by
//! `scripts/fixtures/make_gpt_sovits_parity.py`, the engine end to end on
//! the tiny exported folder, and bad input.
//!
//! The fixture folder `tests/fixtures/gpt_sovits/model/` holds the exported
//! graphs without their weights; `weights.json` says how to rebuild each
//! weight file bit-exactly from seeds (`support/gpt_sovits_model.rs`), which
//! [`model_dir`] does once per test binary in a temporary folder.
//!
//! Needs ONNX Runtime (`scripts/setup.sh`).

#[path = "support/gpt_sovits_model.rs"]
mod support;

#[path = "support/canceller.rs"]
mod canceller;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use support::materialize;

use ndarray::{Array1, Array2};
use ndarray_npy::read_npy;
use vctts_core::{Audio, Engine, EngineKind, ReferenceAudio, SynthesisRequest, VoiceProfile};
use vctts_engines::gpt_sovits::model::{Graphs, ModelFiles};
use vctts_engines::gpt_sovits::{self as gs, GptSovitsConfig, GptSovitsEngine};
use vctts_engines::runtime::{self, RuntimeConfig, SessionConfig};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/gpt_sovits")
}

/// A models root whose `gpt_sovits/` is the materialized fixture folder.
fn models_root() -> &'static Path {
    static ROOT: OnceLock<tempfile::TempDir> = OnceLock::new();
    ROOT.get_or_init(|| {
        runtime::init(&RuntimeConfig::default())
            .unwrap_or_else(|e| panic!("the GPT-SoVITS tests need ONNX Runtime (run scripts/setup.sh): {e}"));
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("gpt_sovits");
        std::fs::create_dir(&dir).unwrap();
        materialize(&dir);
        root
    })
    .path()
}

fn model_dir() -> PathBuf {
    models_root().join("gpt_sovits")
}

fn session_config() -> SessionConfig {
    SessionConfig {
        intra_threads: 2,
        ..SessionConfig::default()
    }
}

fn graphs() -> Graphs {
    let files = ModelFiles::scan(&model_dir()).unwrap();
    Graphs::load(&files, &session_config()).unwrap()
}

fn npy_f32(name: &str) -> Vec<f32> {
    let a: Array1<f32> = read_npy(fixtures().join(name)).unwrap();
    a.to_vec()
}

fn npy_i64(name: &str) -> Vec<i64> {
    let a: Array1<i64> = read_npy(fixtures().join(name)).unwrap();
    a.to_vec()
}

fn npy_f32_2d(name: &str) -> Array2<f32> {
    read_npy(fixtures().join(name)).unwrap()
}

fn snr_db(reference: &[f32], x: &[f32]) -> f64 {
    assert_eq!(reference.len(), x.len());
    let sig: f64 = reference.iter().map(|&v| (v as f64).powi(2)).sum();
    let err: f64 = reference
        .iter()
        .zip(x)
        .map(|(&a, &b)| (a as f64 - b as f64).powi(2))
        .sum();
    10.0 * (sig / err.max(1e-30)).log10()
}

// ---------------------------------------------------------------- parity

#[test]
fn prompt_codes_equal_upstream() {
    let mut g = graphs();
    let codes = gs::prompt_codes(&mut g, &npy_f32("ref16k.npy")).unwrap();
    assert_eq!(codes, npy_i64("prompt_codes.npy"));
}

#[test]
fn t2s_logits_match_the_pytorch_reference() {
    let mut g = graphs();
    let bert = |n: &str| npy_f32_2d(n).iter().copied().collect::<Vec<f32>>();
    let x = g
        .encode(
            &npy_i64("ref_phones.npy"),
            &bert("ref_bert.npy"),
            &npy_i64("text_phones.npy"),
            &bert("text_bert.npy"),
        )
        .unwrap();
    let prompts = npy_i64("prompt_codes.npy");
    let want = npy_f32_2d("logits.npy");
    let (logits, mut cache) = g.prefill(&x, &prompts).unwrap();
    let mut got = vec![logits];
    for (k, &tok) in npy_i64("continuation.npy").iter().enumerate() {
        got.push(g.step(tok as u32, prompts.len() + k, &mut cache).unwrap());
    }
    assert_eq!(cache.len, x.len() / 512 + prompts.len() + 5);
    for (row, (g_row, w_row)) in got.iter().zip(want.rows()).enumerate() {
        let diff = g_row
            .iter()
            .zip(w_row.iter())
            .map(|(a, b)| (a - b).abs())
            .fold(0.0f32, f32::max);
        assert!(diff < 1e-4, "row {row}: max |diff| {diff}");
    }
}

#[test]
fn vits_audio_matches_upstream_with_the_spectrogram_made_in_rust() {
    let mut g = graphs();
    let (spec, frames) = gs::reference_spectrogram(&npy_f32("ref32k.npy"));
    let noise = npy_f32_2d("vits_noise.npy");
    let audio = g
        .vits(
            &npy_i64("text_phones.npy"),
            &npy_i64("vits_codes.npy"),
            &spec,
            frames,
            noise.as_slice().unwrap(),
        )
        .unwrap();
    let want = npy_f32("vits_audio.npy");
    let snr = snr_db(&want, &audio);
    assert!(snr >= 40.0, "SNR {snr:.1} dB");
}

#[test]
fn vits_at_speed_1_25_matches_upstreams_latent_interpolation() {
    let mut g = graphs();
    let (spec, frames) = gs::reference_spectrogram(&npy_f32("ref32k.npy"));
    let codes = npy_i64("vits_codes.npy");
    let noise = npy_f32_2d("vits_speed_noise.npy");
    // Upstream: int(2T / 1.25) + 1 latent frames.
    assert_eq!(noise.ncols(), g.meta.latent_frames(codes.len(), 1.25));
    let audio = g
        .vits(
            &npy_i64("text_phones.npy"),
            &codes,
            &spec,
            frames,
            noise.as_slice().unwrap(),
        )
        .unwrap();
    let want = npy_f32("vits_speed_audio.npy");
    assert_eq!(audio.len(), noise.ncols() * 640);
    let snr = snr_db(&want, &audio);
    assert!(snr >= 40.0, "SNR {snr:.1} dB");
}

// ---------------------------------------------------------------- folder checks

fn copy_model(to: &Path) {
    for entry in std::fs::read_dir(model_dir()).unwrap() {
        let p = entry.unwrap().path();
        std::fs::copy(&p, to.join(p.file_name().unwrap())).unwrap();
    }
}

#[test]
fn an_incomplete_or_mis_shaped_folder_is_refused_naming_file_and_tensor() {
    let _ = models_root();
    let dir = tempfile::tempdir().unwrap();
    copy_model(dir.path());
    std::fs::remove_file(dir.path().join("t2s_step.onnx")).unwrap();
    let e = GptSovitsEngine::new(GptSovitsConfig::new(dir.path())).unwrap_err();
    assert_eq!(e.code(), "model_not_installed");
    assert!(e.to_string().contains("t2s_step.onnx"), "{e}");

    copy_model(dir.path());
    let bin = dir.path().join("t2s_decoder.bin");
    let len = std::fs::metadata(&bin).unwrap().len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&bin)
        .unwrap()
        .set_len(len / 2)
        .unwrap();
    let e = GptSovitsEngine::new(GptSovitsConfig::new(dir.path())).unwrap_err();
    assert!(e.to_string().contains("t2s_decoder.bin"), "{e}");

    // A graph with the wrong contract in a role: named with its tensor.
    copy_model(dir.path());
    std::fs::copy(
        dir.path().join("t2s_prefill.onnx"),
        dir.path().join("t2s_step.onnx"),
    )
    .unwrap();
    let files = ModelFiles::scan(dir.path()).unwrap();
    let e = Graphs::load(&files, &session_config()).err().unwrap();
    assert_eq!(e.code(), "model_load_failed");
    assert!(
        e.to_string().contains("t2s_step.onnx: input token is missing"),
        "{e}"
    );

    // Metadata that disagrees with a graph's sizes.
    copy_model(dir.path());
    let meta_path = dir.path().join("metadata.json");
    let mut meta: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&meta_path).unwrap()).unwrap();
    meta["noise_channels"] = 96.into();
    std::fs::write(&meta_path, meta.to_string()).unwrap();
    let files = ModelFiles::scan(dir.path()).unwrap();
    let e = Graphs::load(&files, &session_config()).err().unwrap();
    assert!(e.to_string().contains("vits.onnx: input noise"), "{e}");
}

// ---------------------------------------------------------------- engine

fn engine_config() -> GptSovitsConfig {
    GptSovitsConfig {
        session: session_config(),
        max_steps: 60,
        ..GptSovitsConfig::new(model_dir())
    }
}

fn reference(seconds: f32, transcript: Option<&str>) -> ReferenceAudio {
    let r = npy_f32("ref32k.npy");
    let n = (seconds * 32_000.0) as usize;
    let samples: Vec<f32> = (0..n).map(|i| r[i % r.len()]).collect();
    ReferenceAudio {
        audio: Audio::new(samples, 32_000),
        transcript: transcript.map(Into::into),
        language: Some("zh".parse().unwrap()),
    }
}

async fn loaded(config: GptSovitsConfig) -> GptSovitsEngine {
    let e = GptSovitsEngine::new(config).unwrap();
    e.load().await.unwrap();
    e
}

fn request(text: &str) -> SynthesisRequest {
    let mut r = SynthesisRequest::new(text);
    r.language = Some("zh".parse().unwrap());
    r.seed = Some(7);
    r
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn catalog_builds_the_engine_and_it_speaks_from_text() {
    let options = vctts_engines::catalog::EngineOptions {
        threads: 2,
        ..Default::default()
    };
    vctts_engines::catalog::installed(EngineKind::GptSovits, models_root()).unwrap();
    let engine = vctts_engines::catalog::build(EngineKind::GptSovits, models_root(), &options).unwrap();
    let info = engine.info();
    assert_eq!(info.kind, EngineKind::GptSovits);
    assert_eq!(info.languages, vec!["zh".to_string(), "en".to_string()]);
    assert!(info.needs_transcript && info.cloning);
    assert_eq!(info.sample_rate, 32_000);
    engine.load().await.unwrap();
    let profile = engine
        .extract_voice(&reference(3.5, Some("你好世界")))
        .await
        .unwrap();
    assert_eq!(profile.engine, EngineKind::GptSovits);
    let audio = engine
        .synthesize(&request("你好。"), Some(&profile))
        .await
        .unwrap();
    assert_eq!(audio.sample_rate, 32_000);
    // At least the 0.3 s fragment interval plus one token of speech.
    assert!(audio.samples.len() >= 9_600 + 1_280, "{}", audio.samples.len());
    assert!(audio.samples.iter().all(|v| v.is_finite()));
    assert!(audio.rms() > 1e-4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn same_seed_same_audio_and_profiles_round_trip() {
    let engine = loaded(engine_config()).await;
    let profile = engine
        .extract_voice(&reference(4.0, Some("今天天气很不错")))
        .await
        .unwrap();
    let voice = gs::profile::Voice::decode(&profile.data).unwrap();
    assert_eq!(voice.transcript, "今天天气很不错。");
    assert_eq!(voice.ref32k.len(), 4 * 32_000);
    // 25 codes a second over the clip plus its 0.6 s of padding.
    assert!(
        (voice.prompt_codes.len() as i64 - 115).abs() <= 2,
        "{}",
        voice.prompt_codes.len()
    );
    let stored = VoiceProfile {
        data: voice.encode(),
        ..profile.clone()
    };
    let r = request("我们一起去学校吧。你好！");
    let a = engine.synthesize(&r, Some(&profile)).await.unwrap();
    let b = engine.synthesize(&r, Some(&stored)).await.unwrap();
    assert_eq!(a.samples, b.samples);
    let mut other = r.clone();
    other.seed = Some(8);
    let c = engine.synthesize(&other, Some(&profile)).await.unwrap();
    assert_ne!(a.samples, c.samples);
    // Two pieces, each followed by 0.3 s of silence.
    assert!(a.samples[a.samples.len() - 9_600..].iter().all(|&v| v == 0.0));
}

/// Joins a stream, checking the chunk order: `(samples, chunks)`.
async fn join_stream(
    engine: &GptSovitsEngine,
    r: &SynthesisRequest,
    profile: &VoiceProfile,
) -> (Vec<f32>, usize) {
    let mut stream = engine.synthesize_stream(r, Some(profile)).await.unwrap();
    let mut joined = Vec::new();
    let mut chunks = 0;
    let mut last_seen = false;
    while let Some(chunk) = stream.next_chunk().await {
        let chunk = chunk.unwrap();
        assert!(!last_seen, "a chunk after the last");
        assert_eq!(chunk.index, chunks, "chunk index");
        last_seen = chunk.is_last;
        assert_eq!(chunk.audio.sample_rate, 32_000);
        joined.extend_from_slice(&chunk.audio.samples);
        chunks += 1;
    }
    assert!(last_seen, "no last chunk");
    (joined, chunks)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streamed_chunks_join_to_exactly_the_whole_output() {
    let engine = loaded(engine_config()).await;
    let profile = engine
        .extract_voice(&reference(3.2, Some("你好世界")))
        .await
        .unwrap();
    for (text, speed) in [
        ("今天天气很不错，我们一起去学校吧。你好！", 1.0),
        ("今天天气很不错，我们一起去学校吧。", 1.25),
    ] {
        let mut r = request(text);
        r.speed = speed;
        let whole = engine.synthesize(&r, Some(&profile)).await.unwrap();
        let (joined, chunks) = join_stream(&engine, &r, &profile).await;
        // One chunk per piece (cut5, with upstream's merging of short pieces).
        let pieces = vctts_engines::g2p::cut(text, vctts_engines::g2p::Cut::Cut5)
            .into_iter()
            .filter(|p| !p.trim().is_empty())
            .count();
        assert!(pieces >= 2, "{text}: {pieces} pieces");
        assert_eq!(chunks, pieces, "{text}");
        assert_eq!(
            joined, whole.samples,
            "speed {speed}: joined chunks differ from the whole"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn opt_in_token_chunks_stay_close_to_the_whole_output() {
    let engine = loaded(GptSovitsConfig {
        stream_chunk_tokens: 12,
        stream_overlap_tokens: 8,
        stream_lookahead_tokens: 4,
        ..engine_config()
    })
    .await;
    let profile = engine
        .extract_voice(&reference(3.2, Some("你好世界")))
        .await
        .unwrap();
    let r = request("今天天气很不错，我们一起去学校吧。");
    let whole = engine.synthesize(&r, Some(&profile)).await.unwrap();
    let (joined, chunks) = join_stream(&engine, &r, &profile).await;
    assert!(chunks >= 3, "{chunks} chunks");
    assert_eq!(joined.len(), whole.samples.len());
    // VITS attends over the whole piece, so chunks are only close: about
    // 16 dB on these random weights (the floor guards the overlap logic).
    let snr = snr_db(&whole.samples, &joined);
    assert!(snr >= 12.0, "joined chunks vs whole: {snr:.1} dB");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn speed_resizes_the_latent_by_upstreams_rule() {
    let engine = loaded(engine_config()).await;
    let profile = engine
        .extract_voice(&reference(3.5, Some("你好世界")))
        .await
        .unwrap();
    let r = request("我们一起去学校吧。");
    let normal = engine.synthesize(&r, Some(&profile)).await.unwrap();
    let gap = 9_600;
    let tokens = (normal.samples.len() - gap) / 1280;
    assert_eq!((normal.samples.len() - gap) % 1280, 0);
    // (the request's f32, the Python float upstream divides by)
    for (speed, upstream) in [(1.25f32, 1.25f64), (0.8, 0.8)] {
        let mut fast = r.clone();
        fast.speed = speed;
        // The same seed gives the same tokens; only VITS's length changes.
        let a = engine.synthesize(&fast, Some(&profile)).await.unwrap();
        let frames = (2.0 * tokens as f64 / upstream).floor() as usize + 1;
        assert_eq!(a.samples.len(), frames * 640 + gap, "speed {speed}");
        assert!(a.rms() > 1e-4);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_gives_clear_errors() {
    let engine = loaded(engine_config()).await;
    let e = engine.extract_voice(&reference(4.0, None)).await.unwrap_err();
    assert_eq!(e.code(), "invalid_input");
    assert!(e.to_string().contains("transcript"), "{e}");
    for seconds in [2.0, 11.0] {
        let e = engine
            .extract_voice(&reference(seconds, Some("你好")))
            .await
            .unwrap_err();
        assert_eq!(e.code(), "audio_rejected", "{seconds} s");
        assert!(e.to_string().contains("3–10 s"), "{e}");
    }
    let mut en = reference(4.0, Some("你好"));
    en.language = Some("en".parse().unwrap());
    assert_eq!(
        engine.extract_voice(&en).await.unwrap_err().code(),
        "invalid_input"
    );

    let profile = engine
        .extract_voice(&reference(3.5, Some("你好世界")))
        .await
        .unwrap();
    let e = engine
        .synthesize(&request("。。。！"), Some(&profile))
        .await
        .unwrap_err();
    assert_eq!(e.code(), "empty_text", "{e}");
    let mut ja = request("こんにちは");
    ja.language = Some("ja".parse().unwrap());
    let e = engine.synthesize(&ja, Some(&profile)).await.unwrap_err();
    assert_eq!(e.code(), "unsupported_language");
    assert!(e.to_string().contains("zh, en"), "{e}");
    let e = engine.synthesize(&request("你好。"), None).await.unwrap_err();
    assert!(e.to_string().contains("reference"), "{e}");
    let mut fast = request("你好。");
    fast.speed = 0.0;
    let e = engine.synthesize(&fast, Some(&profile)).await.unwrap_err();
    assert_eq!(e.code(), "invalid_input");
    assert!(e.to_string().contains("speed"), "{e}");
    let broken = VoiceProfile {
        data: profile.data[..profile.data.len() / 2].to_vec(),
        ..profile.clone()
    };
    assert_eq!(
        engine
            .synthesize(&request("你好。"), Some(&broken))
            .await
            .unwrap_err()
            .code(),
        "profile_mismatch"
    );
}

// ---------------------------------------------------------------- cancellation

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_request_stops_inside_its_piece_and_the_next_is_unchanged() {
    // Upstream's cap on tokens: one long piece (no punctuation to cut at)
    // takes long enough for another thread to cancel it midway.
    let engine = loaded(GptSovitsConfig {
        session: session_config(),
        max_concurrency: 1,
        ..GptSovitsConfig::new(model_dir())
    })
    .await;
    let profile = engine
        .extract_voice(&reference(3.5, Some("你好世界")))
        .await
        .unwrap();
    let next = request("我们一起去学校吧。你好！");
    let fresh = engine.synthesize(&next, Some(&profile)).await.unwrap();
    let long = request(&"今天天气很不错我们一起去学校吧".repeat(4));
    let control = vctts_core::SynthesisControl::new();
    // Cancel from another thread as soon as the job has armed its run
    // options (its cancel hook is registered): the one piece is then being
    // made.
    let canceller = canceller::Canceller::once_armed(&control);
    let result = engine.synthesize_with(&long, Some(&profile), &control).await;
    canceller.join();
    assert_eq!(result.unwrap_err().code(), "cancelled");
    // Stopping only between pieces would have finished (and counted) it.
    assert_eq!(control.produced_total(), std::time::Duration::ZERO);
    assert_eq!(control.hooks_registered(), 0, "the job let go of its hook");
    // The thread's next job runs with fresh options: the same seed gives
    // the same samples as before the cancelled one.
    let after = engine.synthesize(&next, Some(&profile)).await.unwrap();
    assert_eq!(after.samples, fresh.samples);
    // So does a voice extraction, and a stream read to its end.
    let again = engine
        .extract_voice(&reference(3.5, Some("你好世界")))
        .await
        .unwrap();
    assert_eq!(again.data, profile.data);
    let (joined, _) = join_stream(&engine, &next, &profile).await;
    assert_eq!(joined, fresh.samples);
}

#[test]
fn a_cancelled_generation_fails_at_its_next_graph_run_and_the_next_is_unchanged() {
    let mut g = graphs();
    let bert = |n: &str| npy_f32_2d(n).iter().copied().collect::<Vec<f32>>();
    let phones = npy_i64("text_phones.npy");
    let x = g
        .encode(
            &npy_i64("ref_phones.npy"),
            &bert("ref_bert.npy"),
            &phones,
            &bert("text_bert.npy"),
        )
        .unwrap();
    let prompts = npy_i64("prompt_codes.npy");
    let params = gs::t2s::T2sParams {
        max_steps: 20,
        ..Default::default()
    };
    let want = gs::t2s::generate(&mut g, &x, &prompts, &params, 5).unwrap();
    // EOS is masked for the first steps: these tokens always come.
    assert!(want.len() > 3);
    let control = vctts_core::SynthesisControl::new();
    let armed = g.arm(&control).unwrap();
    let mut generation = gs::t2s::Generation::start(&mut g, &x, &prompts, &params, 5).unwrap();
    for _ in 0..3 {
        assert!(generation.next(&mut g).unwrap().is_some());
    }
    // Cancelled between two steps: the next step's run is terminated, and
    // so is any later run of the job (VITS here).
    control.cancel();
    assert!(generation.next(&mut g).is_err(), "a step ran after the cancel");
    let (spec, frames) = gs::reference_spectrogram(&npy_f32("ref32k.npy"));
    let noise = npy_f32_2d("vits_noise.npy");
    let vits = g.vits(
        &phones,
        &npy_i64("vits_codes.npy"),
        &spec,
        frames,
        noise.as_slice().unwrap(),
    );
    assert!(vits.is_err(), "VITS ran after the cancel");
    drop(armed);
    // Re-armed for the next job, the same seed gives the same tokens.
    let _armed = g.arm(&vctts_core::SynthesisControl::new()).unwrap();
    assert_eq!(gs::t2s::generate(&mut g, &x, &prompts, &params, 5).unwrap(), want);
}
