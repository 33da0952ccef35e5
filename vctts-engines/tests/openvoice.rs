//! The OpenVoice engine end to end: the real Piper voice fetched by
//! `scripts/setup.sh` for the base stage, the tiny fixture graphs for the tone
//! color converter, real human speech (alsa-utils clips) as reference audio.

#![cfg(feature = "openvoice")]

#[path = "support/canceller.rs"]
mod canceller;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use vctts_core::{Audio, Engine, EngineKind, ModelState, ReferenceAudio, SynthesisRequest, VoiceProfile};
use vctts_engines::openvoice::{OpenVoiceConfig, OpenVoiceEngine};
use vctts_engines::runtime::SessionConfig;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

fn base_dir() -> PathBuf {
    let dir = repo().join("models/openvoice/base");
    assert!(
        dir.join("en_US-joe-medium.onnx").is_file(),
        "the default voice is missing: run scripts/setup.sh (looked in {})",
        dir.display()
    );
    dir
}

/// A model folder with the real base voice and, optionally, the fixture converter.
fn models(with_converter: bool) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink(base_dir(), dir.path().join("base")).unwrap();
    if with_converter {
        let conv = repo().join("vctts-engines/tests/fixtures/graphs/openvoice/converter");
        assert!(
            conv.join("tone_clone_model.onnx").is_file(),
            "fixture converter missing in {}",
            conv.display()
        );
        std::os::unix::fs::symlink(conv, dir.path().join("converter")).unwrap();
    }
    dir
}

async fn engine(dir: &Path, concurrency: usize) -> Arc<OpenVoiceEngine> {
    vctts_engines::runtime::init(&Default::default()).expect("ONNX Runtime: run scripts/setup.sh");
    let config = OpenVoiceConfig {
        session: SessionConfig {
            intra_threads: 2,
            ..SessionConfig::default()
        },
        max_concurrency: concurrency,
        ..OpenVoiceConfig::new(dir)
    };
    let e = Arc::new(OpenVoiceEngine::new(config).unwrap());
    e.load().await.unwrap();
    e
}

fn quiet(text: &str) -> SynthesisRequest {
    let mut r = SynthesisRequest::new(text);
    r.sampling.noise_scale = Some(0.0);
    r.sampling.noise_scale_w = Some(0.0);
    r.seed = Some(7);
    r
}

/// RMS over 20 ms windows; the fraction of windows above -40 dBFS.
fn voiced_fraction(a: &Audio) -> f32 {
    let w = (a.sample_rate as usize / 50).max(1);
    let frames: Vec<f32> = a
        .samples
        .chunks(w)
        .map(|c| (c.iter().map(|s| s * s).sum::<f32>() / c.len() as f32).sqrt())
        .collect();
    frames.iter().filter(|&&r| r > 0.01).count() as f32 / frames.len().max(1) as f32
}

/// Eight spoken clips of one speaker (alsa-utils), concatenated: ~11 s at 48 kHz.
fn human_speech() -> Audio {
    let dir = Path::new("/usr/share/sounds/alsa");
    let names = [
        "Front_Center.wav",
        "Front_Left.wav",
        "Front_Right.wav",
        "Rear_Center.wav",
        "Rear_Left.wav",
        "Rear_Right.wav",
        "Side_Left.wav",
        "Side_Right.wav",
    ];
    let mut out: Option<Audio> = None;
    for n in names {
        let p = dir.join(n);
        assert!(p.is_file(), "{} missing: apt-get install alsa-utils", p.display());
        let a = vctts_engines::audio::decode::decode_file(&p, &Default::default()).unwrap();
        match &mut out {
            Some(o) => o.append(&a),
            None => out = Some(a),
        }
    }
    out.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_voice_speaks_a_sentence() {
    let dir = models(false);
    let e = engine(dir.path(), 1).await;
    assert_eq!(e.state(), ModelState::Ready);
    let info = e.info();
    assert_eq!(info.kind, EngineKind::OpenVoice);
    assert_eq!(info.builtin_voices[0], "en_US-joe-medium");
    assert!(!info.cloning);
    let a = e
        .synthesize(
            &SynthesisRequest::new("Hello world, this is a test of the default voice."),
            None,
        )
        .await
        .unwrap();
    assert_eq!(a.sample_rate, 22050);
    let secs = a.duration().as_secs_f32();
    assert!(
        (1.5..8.0).contains(&secs),
        "duration {secs} s does not fit the text"
    );
    assert!(
        voiced_fraction(&a) > 0.4,
        "mostly silent: {}",
        voiced_fraction(&a)
    );
    assert!(a.peak() <= 1.5);
    // It encodes to a WAV that decodes back to the same length.
    let wav = vctts_engines::audio::encode::wav_i16(&a);
    let back = vctts_engines::audio::decode::decode(&wav, Some("wav"), &Default::default()).unwrap();
    assert_eq!(back.samples.len(), a.samples.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zero_noise_is_byte_identical_and_speed_changes_length() {
    let dir = models(false);
    let e = engine(dir.path(), 1).await;
    let a = e
        .synthesize(&quiet("The same words, twice."), None)
        .await
        .unwrap();
    let b = e
        .synthesize(&quiet("The same words, twice."), None)
        .await
        .unwrap();
    assert_eq!(a, b);
    let mut fast = quiet("The same words, twice.");
    fast.speed = 2.0;
    let f = e.synthesize(&fast, None).await.unwrap();
    let ratio = f.samples.len() as f32 / a.samples.len() as f32;
    assert!((0.35..0.7).contains(&ratio), "speed 2 gave length ratio {ratio}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_sentence_is_streamed_in_order() {
    let dir = models(false);
    let e = engine(dir.path(), 1).await;
    let text = "First sentence here. Second one follows! Is this the third? And the fourth, at last.";
    let mut s = e.synthesize_stream(&quiet(text), None).await.unwrap();
    let mut chunks = Vec::new();
    while let Some(c) = s.next_chunk().await {
        chunks.push(c.unwrap());
    }
    assert_eq!(chunks.len(), 4);
    for (i, c) in chunks.iter().enumerate() {
        assert_eq!(c.index, i);
        assert_eq!(c.is_last, i == 3);
        assert!(voiced_fraction(&c.audio) > 0.25, "sentence {i} is silent");
    }
    // The whole text at once equals the chunks joined.
    let whole = e.synthesize(&quiet(text), None).await.unwrap();
    let joined: Vec<f32> = chunks
        .iter()
        .flat_map(|c| c.audio.samples.iter().copied())
        .collect();
    assert_eq!(whole.samples, joined);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_a_stream_stops_it_and_frees_the_thread() {
    let dir = models(false);
    let e = engine(dir.path(), 1).await;
    let long: String = (0..40)
        .map(|i| format!("This is sentence number {i}. "))
        .collect();
    let mut s = e.synthesize_stream(&quiet(&long), None).await.unwrap();
    let first = s.next_chunk().await.unwrap().unwrap();
    assert_eq!(first.index, 0);
    drop(s);
    // The single inference thread must come free for the next request.
    let a = e.synthesize(&quiet("Still here."), None).await.unwrap();
    assert!(!a.is_empty());
}

/// One sentence of about 350 characters: a single model run of several seconds.
const LONG_SENTENCE: &str = "The old lighthouse keeper climbed the winding stairs every single evening, \
counting each of the worn stone steps aloud while the wind pressed against the narrow windows, and from \
the top he could see the harbour lights, the fishing boats coming slowly home, and the long grey road \
that wound along the cliffs towards the village where nobody remembered the lamp ever failing.";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelling_a_request_terminates_the_run_under_way() {
    let dir = models(false);
    let e = engine(dir.path(), 1).await;
    let control = vctts_core::SynthesisControl::new();
    // Cancel from another thread as soon as the job has armed its run
    // options (its cancel hook is registered), i.e. while the one sentence
    // is being synthesized.
    let canceller = canceller::Canceller::once_armed(&control);
    let result = e.synthesize_with(&quiet(LONG_SENTENCE), None, &control).await;
    canceller.join();
    assert_eq!(result.unwrap_err().code(), "cancelled");
    // Stopping only between sentences would have finished (and counted) it.
    assert_eq!(control.produced_total(), std::time::Duration::ZERO);
    assert_eq!(control.hooks_registered(), 0, "the job let go of its hook");
    // The thread is free and its next request runs with fresh options.
    let a = e.synthesize(&quiet("Still here."), None).await.unwrap();
    assert!(!a.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_stopped_mid_sentence_lets_go_and_frees_the_thread() {
    let dir = models(false);
    let e = engine(dir.path(), 1).await;
    // A short first sentence, then one long one: the reader leaves after the
    // first chunk, while the long run is under way or queued behind it.
    let text = format!("Hello there. {LONG_SENTENCE}");
    let mut s = e.synthesize_stream(&quiet(&text), None).await.unwrap();
    let first = s.next_chunk().await.unwrap().unwrap();
    assert_eq!(first.index, 0);
    // `stop` returns once the producer has let go of the stream.
    s.stop().await;
    let a = e.synthesize(&quiet("Still here."), None).await.unwrap();
    assert!(!a.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_are_clear_errors() {
    let dir = models(false);
    let e = engine(dir.path(), 1).await;
    let code = |r: vctts_core::Result<Audio>| r.unwrap_err().code();
    assert_eq!(
        code(e.synthesize(&SynthesisRequest::new(""), None).await),
        "empty_text"
    );
    assert_eq!(
        code(e.synthesize(&SynthesisRequest::new("  \n\t "), None).await),
        "empty_text"
    );
    assert_eq!(
        code(
            e.synthesize(&SynthesisRequest::new("x".repeat(100_001)), None)
                .await
        ),
        "text_too_long"
    );
    let mut fr = SynthesisRequest::new("Bonjour.");
    fr.language = Some("fr".parse().unwrap());
    assert_eq!(code(e.synthesize(&fr, None).await), "unsupported_language");
    let mut unknown = SynthesisRequest::new("Hi.");
    unknown.voice = Some("nobody".parse().unwrap());
    assert_eq!(code(e.synthesize(&unknown, None).await), "voice_not_found");
    // A cloned voice without the converter says what to install.
    let p = VoiceProfile {
        engine: EngineKind::OpenVoice,
        format_version: 1,
        data: vec![0; 1024],
    };
    let err = e
        .synthesize(&SynthesisRequest::new("Hi."), Some(&p))
        .await
        .unwrap_err();
    assert_eq!(err.code(), "model_not_installed");
    assert!(err.to_string().contains("models/openvoice/README.md"), "{err}");
    // Symbols outside the voice's map are dropped, not fatal.
    let odd = e
        .synthesize(&quiet("Snow ☃ and 雪, then words."), None)
        .await
        .unwrap();
    assert!(voiced_fraction(&odd) > 0.2);
    // en-US is English.
    let mut us = quiet("Hello.");
    us.language = Some("en-US".parse().unwrap());
    assert!(e.synthesize(&us, None).await.is_ok());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unload_frees_and_load_restores() {
    let dir = models(false);
    let e = engine(dir.path(), 1).await;
    e.unload().await.unwrap();
    assert_eq!(e.state(), ModelState::Unloaded);
    let err = e.synthesize(&quiet("Hi."), None).await.unwrap_err();
    assert_eq!(err.code(), "model_not_loaded");
    e.load().await.unwrap();
    assert_eq!(e.state(), ModelState::Ready);
    assert!(e.synthesize(&quiet("Hi."), None).await.is_ok());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_requests_each_get_their_own_audio() {
    let dir = models(false);
    let e = engine(dir.path(), 2).await;
    let texts = [
        "One.",
        "Two words.",
        "Three whole words.",
        "Four words right here.",
    ];
    let mut handles = Vec::new();
    for t in texts {
        let e = e.clone();
        handles.push(tokio::spawn(async move {
            e.synthesize(&quiet(t), None).await.unwrap()
        }));
    }
    let mut outs = Vec::new();
    for h in handles {
        outs.push(h.await.unwrap());
    }
    for (t, o) in texts.iter().zip(&outs) {
        let alone = e.synthesize(&quiet(t), None).await.unwrap();
        assert_eq!(&alone, o, "{t}: concurrent output differs from a lone run");
    }
}

/// [`quiet`] without a seed.
fn quiet_unseeded(text: &str) -> SynthesisRequest {
    let mut r = quiet(text);
    r.seed = None;
    r
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn converter_extracts_and_converts_with_fixture_graphs() {
    let dir = models(true);
    let e = engine(dir.path(), 1).await;
    assert!(e.info().cloning);
    assert_eq!(e.info().sample_rate, 22050);
    let profile = e
        .extract_voice(&ReferenceAudio::new(human_speech()))
        .await
        .unwrap();
    assert_eq!(profile.engine, EngineKind::OpenVoice);
    assert_eq!(profile.data.len(), 256 * 4);
    // Extraction is deterministic.
    let again = e
        .extract_voice(&ReferenceAudio::new(human_speech()))
        .await
        .unwrap();
    assert_eq!(profile, again);

    let base = e
        .synthesize(&quiet_unseeded("Converted speech, one sentence."), None)
        .await
        .unwrap();
    let conv = e
        .synthesize(&quiet_unseeded("Converted speech, one sentence."), Some(&profile))
        .await
        .unwrap();
    assert_eq!(conv.sample_rate, 22050);
    // The clone graph gives 256 samples per spectrogram frame of the base audio.
    let frames = (base.samples.len() + 2 * 384 - 1024) / 256 + 1;
    assert_eq!(conv.samples.len(), frames * 256);
    assert_ne!(conv.samples, base.samples);
    // Same seed, same output; another tau, another output.
    let conv2 = e
        .synthesize(&quiet_unseeded("Converted speech, one sentence."), Some(&profile))
        .await
        .unwrap();
    assert_eq!(conv, conv2);
    let mut hot = quiet_unseeded("Converted speech, one sentence.");
    hot.sampling.tau = Some(0.9);
    let conv3 = e.synthesize(&hot, Some(&profile)).await.unwrap();
    assert_ne!(conv, conv3);
    // Streaming with a cloned voice yields converted chunks too.
    let s = e
        .synthesize_stream(&quiet_unseeded("Converted speech, one sentence."), Some(&profile))
        .await
        .unwrap();
    assert_eq!(s.collect_audio().await.unwrap(), conv);
    // This graph has no random nodes: a seed holds at any tau.
    let seeded = e
        .synthesize(&quiet("Converted speech."), Some(&profile))
        .await
        .unwrap();
    assert_eq!(
        seeded,
        e.synthesize(&quiet("Converted speech."), Some(&profile))
            .await
            .unwrap()
    );
}

/// A request with the voice's own noise (not zero) and a seed.
fn seeded(text: &str, seed: u64) -> SynthesisRequest {
    let mut r = SynthesisRequest::new(text);
    r.seed = Some(seed);
    r
}

/// The Piper graph's random nodes follow the request's seed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seed_drives_the_base_voice_noise() {
    let dir = models(false);
    let e = engine(dir.path(), 1).await;
    let text = "Noise from a seed. Two sentences of it.";
    let a = e.synthesize(&seeded(text, 21), None).await.unwrap();
    let b = e.synthesize(&seeded(text, 21), None).await.unwrap();
    assert_eq!(
        vctts_engines::audio::encode::wav_f32(&a),
        vctts_engines::audio::encode::wav_f32(&b),
        "same seed, same bytes"
    );
    assert!(voiced_fraction(&a) > 0.3, "still speech: {}", voiced_fraction(&a));
    assert_ne!(e.synthesize(&seeded(text, 22), None).await.unwrap(), a);
    // No seed: each request draws its own noise.
    let x = e.synthesize(&SynthesisRequest::new(text), None).await.unwrap();
    let y = e.synthesize(&SynthesisRequest::new(text), None).await.unwrap();
    assert_ne!(x, y);
}

/// The converter exported by scripts/export/openvoice_export.py takes its
/// noise as an input: the request's seed drives it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seed_drives_the_exported_converter_byte_for_byte() {
    let dir = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink(base_dir(), dir.path().join("base")).unwrap();
    std::os::unix::fs::symlink(
        repo().join("vctts-engines/tests/fixtures/openvoice/converter"),
        dir.path().join("converter"),
    )
    .unwrap();
    let e = engine(dir.path(), 1).await;
    let profile = e
        .extract_voice(&ReferenceAudio::new(human_speech()))
        .await
        .unwrap();
    let text = "The same seed gives the same audio.";
    let a = e.synthesize(&seeded(text, 7), Some(&profile)).await.unwrap();
    let b = e.synthesize(&seeded(text, 7), Some(&profile)).await.unwrap();
    assert_eq!(
        vctts_engines::audio::encode::wav_f32(&a),
        vctts_engines::audio::encode::wav_f32(&b)
    );
    assert_ne!(e.synthesize(&seeded(text, 8), Some(&profile)).await.unwrap(), a);
    // Without a seed each request draws its own noise (the base voice's
    // noise is off here, so the difference is the converter's).
    let free = quiet_unseeded(text);
    let x = e.synthesize(&free, Some(&profile)).await.unwrap();
    let y = e.synthesize(&free, Some(&profile)).await.unwrap();
    assert_ne!(x, y);
    // Token sampling does not exist here: refused by name.
    let mut t = quiet(text);
    t.sampling.top_p = Some(0.5);
    let err = e.synthesize(&t, Some(&profile)).await.unwrap_err();
    assert_eq!(err.code(), "invalid_input");
    assert!(err.to_string().contains("top_p"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unusable_references_are_refused() {
    let dir = models(true);
    let e = engine(dir.path(), 1).await;
    let code = |r: vctts_core::Result<VoiceProfile>| r.unwrap_err().code();
    let silent = Audio::silence(10.0, 22050);
    assert_eq!(
        code(e.extract_voice(&ReferenceAudio::new(silent)).await),
        "audio_rejected"
    );
    let mut short = human_speech();
    short.samples.truncate(48_000); // 1 s
    let err = e.extract_voice(&ReferenceAudio::new(short)).await.unwrap_err();
    assert_eq!(err.code(), "audio_rejected");
    assert!(err.to_string().contains("speech"), "{err}");
    assert_eq!(
        code(
            e.extract_voice(&ReferenceAudio::new(Audio::new(vec![], 16000)))
                .await
        ),
        "audio_rejected"
    );
    let long = Audio::silence(120.0, 16000);
    assert_eq!(
        code(e.extract_voice(&ReferenceAudio::new(long)).await),
        "audio_rejected"
    );
    // A profile of another engine or a broken one is refused.
    let xtts = VoiceProfile {
        engine: EngineKind::Xtts,
        format_version: 1,
        data: vec![0; 1024],
    };
    assert_eq!(
        e.synthesize(&quiet("Hi."), Some(&xtts)).await.unwrap_err().code(),
        "profile_mismatch"
    );
    let broken = VoiceProfile {
        engine: EngineKind::OpenVoice,
        format_version: 1,
        data: vec![0; 10],
    };
    assert_eq!(
        e.synthesize(&quiet("Hi."), Some(&broken))
            .await
            .unwrap_err()
            .code(),
        "profile_mismatch"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_models_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let err = OpenVoiceEngine::new(OpenVoiceConfig::new(dir.path())).unwrap_err();
    assert_eq!(err.code(), "model_not_installed");
    assert!(err.to_string().contains("setup.sh"), "{err}");
    // Without the converter, extraction says what is missing.
    let dir = models(false);
    let e = engine(dir.path(), 1).await;
    let err = e
        .extract_voice(&ReferenceAudio::new(human_speech()))
        .await
        .unwrap_err();
    assert_eq!(err.code(), "model_not_installed");
}
