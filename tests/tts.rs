//! The library layer end to end: `Tts` over the real default voice and the
//! fixture tone-color converter (no network, no Python).

use std::path::{Path, PathBuf};
use vctts::{CloneVoice, EngineKind, OutputFormat, Speech, StoreExt, Tts, VoiceChoice, VoiceId};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A models root with the real base voice and the fixture converter.
fn cloning_models(dir: &Path) -> PathBuf {
    let root = dir.join("models");
    std::fs::create_dir_all(root.join("openvoice")).unwrap();
    std::os::unix::fs::symlink(repo().join("models/openvoice/base"), root.join("openvoice/base")).unwrap();
    std::os::unix::fs::symlink(
        repo().join("vctts-engines/tests/fixtures/graphs/openvoice/converter"),
        root.join("openvoice/converter"),
    )
    .unwrap();
    root
}

/// Eight seconds of speech-like audio: a vowel-ish tone with a syllable rhythm.
fn reference_audio() -> vctts::Audio {
    let rate = 22_050;
    let samples = (0..rate * 8)
        .map(|i| {
            let t = i as f32 / rate as f32;
            let envelope = (t * 4.0 * std::f32::consts::PI).sin().abs();
            let voice = (t * 2.0 * std::f32::consts::PI * 140.0).sin()
                + 0.5 * (t * 2.0 * std::f32::consts::PI * 280.0).sin()
                + 0.25 * (t * 2.0 * std::f32::consts::PI * 700.0).sin();
            0.3 * envelope * voice
        })
        .collect();
    vctts::Audio::new(samples, rate as u32)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clone_store_and_speak_through_the_library() {
    let dir = tempfile::tempdir().unwrap();
    let tts = Tts::builder(cloning_models(dir.path()), dir.path().join("data"))
        .engines([EngineKind::OpenVoice])
        .threads(1)
        .build()
        .await
        .unwrap();
    assert_eq!(tts.engine_kinds(), vec![EngineKind::OpenVoice]);
    assert_eq!(tts.default_engine().unwrap(), EngineKind::OpenVoice);

    // The default voice, encoded.
    let wav = tts
        .speak_as(&Speech::new("Hello from the library.").seed(1), OutputFormat::Wav)
        .await
        .unwrap();
    assert_eq!(&wav.bytes[..4], b"RIFF");
    assert_eq!(wav.content_type, "audio/wav");
    assert!(wav.duration.as_secs_f32() > 0.5);

    // Clone, store, and speak in the stored voice.
    let reference = vctts::Reference::from_audio(reference_audio());
    let stored = tts
        .clone_voice(CloneVoice::new("alice", reference.clone()).unwrap())
        .await
        .unwrap();
    assert_eq!(stored.voice.engines, vec![EngineKind::OpenVoice]);
    let again = tts
        .clone_voice(CloneVoice::new("alice", reference.clone()).unwrap())
        .await;
    assert_eq!(again.unwrap_err().code(), "invalid_input");
    let id = VoiceId::new("alice").unwrap();
    let wav_in_store = tts.store().run(move |s| s.reference_audio(&id)).await.unwrap();
    assert!(wav_in_store.is_some(), "the reference is kept for other engines");
    let prepared = tts
        .prepare(&Speech::new("In my voice.").voice("alice"))
        .await
        .unwrap();
    assert!(prepared.profile.is_some());
    let audio = tts
        .speak(&Speech::new("In my voice.").voice("alice"))
        .await
        .unwrap();
    assert_eq!(audio.sample_rate, 22_050);

    // A reference clip clones on the fly; nothing is stored.
    let speech = Speech::new("On the fly.").voice(VoiceChoice::Reference(reference.audio.clone()));
    let streamed = tts
        .speak_stream(&speech)
        .await
        .unwrap()
        .collect_audio()
        .await
        .unwrap();
    assert!(!streamed.is_empty());
    assert_eq!(tts.store().run(|s| s.count()).await.unwrap(), 1);

    // A built-in voice by name; an unknown name is voice_not_found.
    let builtin = tts.info(EngineKind::OpenVoice).unwrap().builtin_voices[0].clone();
    let p = tts
        .prepare(&Speech::new("Built in.").voice(builtin.as_str()))
        .await
        .unwrap();
    assert!(p.profile.is_none());
    assert_eq!(p.request.voice.unwrap().as_str(), builtin);
    let e = tts.speak(&Speech::new("Who?").voice("nobody")).await.unwrap_err();
    assert_eq!(e.code(), "voice_not_found");

    // Deleting forgets the cached profile too.
    assert!(tts.delete_voice(&VoiceId::new("alice").unwrap()).await.unwrap());
    let e = tts.speak(&Speech::new("Gone.").voice("alice")).await.unwrap_err();
    assert_eq!(e.code(), "voice_not_found");
}

#[tokio::test]
async fn an_engine_asked_for_must_be_installed() {
    let dir = tempfile::tempdir().unwrap();
    let e = Tts::builder(dir.path().join("models"), dir.path().join("data"))
        .engines([EngineKind::Xtts])
        .build()
        .await
        .unwrap_err();
    assert_eq!(e.code(), "model_not_installed");
    // Without a list, missing engines are reported, not fatal.
    let tts = Tts::builder(dir.path().join("models"), dir.path().join("data"))
        .build()
        .await
        .unwrap();
    assert!(tts.engine_kinds().is_empty());
    assert_eq!(tts.missing().len(), 3);
    assert_eq!(tts.default_engine().unwrap_err().code(), "model_not_installed");
    let e = tts.speak(&Speech::new("hi")).await.unwrap_err();
    assert_eq!(e.code(), "model_not_installed");
}
