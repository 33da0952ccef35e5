//! The reference-clip front end on real (espeak-ng) speech: VAD, the
//! preprocessing chain, the quality report, and encode/decode round trips.

use vctts_core::{Audio, Error, OutputFormat};
use vctts_engines::audio::preprocess::integrated_loudness;
use vctts_engines::audio::{
    DecodeLimits, PreprocessOptions, VadConfig, analyze, decode, encode, pcm_s16le, preprocess,
    speech_segments, trim_silence, wav_stream_header,
};

use crate::common::fixture;

fn speech() -> Audio {
    let b = std::fs::read(fixture("clip.wav")).unwrap();
    decode(&b, Some("wav"), &DecodeLimits::default()).unwrap()
}

/// The clip with `pad` seconds of silence on each side.
fn padded(pad: f32) -> Audio {
    let a = speech();
    let mut out = Audio::silence(pad, a.sample_rate);
    out.append(&a);
    out.append(&Audio::silence(pad, a.sample_rate));
    out
}

#[test]
fn vad_finds_the_words_and_not_the_padding() {
    let a = padded(1.0);
    let segs = speech_segments(&a, &VadConfig::default());
    assert!(!segs.is_empty());
    let first = segs[0].start as f32 / a.sample_rate as f32;
    let last = segs[segs.len() - 1].end as f32 / a.sample_rate as f32;
    // The words sit between 1.0 s and 2.2 s; padding is 50 ms.
    assert!((0.9..1.3).contains(&first), "speech starts at {first}");
    assert!((1.9..2.3).contains(&last), "speech ends at {last}");
    let trimmed = trim_silence(&a, &VadConfig::default());
    let secs = trimmed.samples.len() as f32 / a.sample_rate as f32;
    assert!((0.6..1.35).contains(&secs), "{secs} s of speech kept");
}

#[test]
fn preprocessing_chain_on_speech() {
    let opts = PreprocessOptions {
        sample_rate: Some(16000),
        remove_dc: true,
        trim_silence: true,
        loudness_lufs: Some(-23.0),
        peak_limit: Some(0.98),
        min_seconds: Some(0.5),
        max_seconds: Some(30.0),
    };
    let out = preprocess(padded(1.0), &opts).unwrap();
    assert_eq!(out.sample_rate, 16000);
    assert!(out.peak() <= 0.98 + 1e-6);
    let secs = out.samples.len() as f32 / 16000.0;
    assert!((0.6..1.35).contains(&secs), "{secs}");
    let l = integrated_loudness(&out).unwrap();
    assert!((l + 23.0).abs() < 1.0, "loudness {l}");

    let too_short = PreprocessOptions {
        trim_silence: true,
        min_seconds: Some(6.0),
        ..Default::default()
    };
    match preprocess(padded(1.0), &too_short) {
        Err(e @ Error::AudioRejected(_)) => assert!(e.to_string().contains("at least 6 s"), "{e}"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn quality_report_on_speech() {
    let r = analyze(&padded(1.0));
    assert!((3.1..3.3).contains(&r.duration_seconds));
    assert!(
        r.speech_seconds > 0.6 && r.speech_seconds < 1.4,
        "{}",
        r.speech_seconds
    );
    assert_eq!(r.clipping_ratio, 0.0);
    assert!(r.snr_db.unwrap() > 40.0, "{:?}", r.snr_db);
    assert!(
        r.warnings.iter().any(|w| w.contains("6 s or more clones better")),
        "{:?}",
        r.warnings
    );
    assert_eq!(r.sample_rate, 22050);
}

#[test]
fn every_output_format_round_trips() {
    let a = speech();
    for format in [OutputFormat::Wav, OutputFormat::WavF32] {
        let back = decode(&encode(&a, format), Some("wav"), &DecodeLimits::default()).unwrap();
        assert_eq!(back.sample_rate, a.sample_rate);
        assert_eq!(back.samples.len(), a.samples.len());
        let worst = a
            .samples
            .iter()
            .zip(&back.samples)
            .map(|(x, y)| (x - y).abs())
            .fold(0.0, f32::max);
        assert!(worst <= 2.0 / 32768.0, "{format:?}: {worst}");
    }
    // A streamed response: header, then PCM chunks, read back as one WAV.
    let mut stream = wav_stream_header(a.sample_rate);
    for chunk in a.samples.chunks(4096) {
        stream.extend(pcm_s16le(chunk));
    }
    let back = decode(&stream, Some("audio/wav"), &DecodeLimits::default()).unwrap();
    assert_eq!(back.samples.len(), a.samples.len());
    assert_eq!(encode(&a, OutputFormat::Pcm), pcm_s16le(&a.samples));
}
