//! The OpenVoice tone color converter against upstream.
//!
//! Fixtures (`tests/fixtures/openvoice/`, written by
//! `scripts/fixtures/make_openvoice_parity.py`): the upstream v2 converter
//! with seeded random weights (v2 structure, narrower layers), exported by
//! `scripts/export/openvoice_export.py`; three 22.05 kHz clips; and
//! upstream's own outputs computed with torch: the tone colours of each clip
//! and the waveform converted with a fixed noise. Here vctts computes the
//! spectrograms itself (its OpenVoice preset), runs the exported graphs and
//! must agree: tone colours within 1e-4, the waveform with an SNR ≥ 40 dB.

#![cfg(feature = "openvoice")]

use ndarray::Array1;
use std::path::{Path, PathBuf};
use vctts_engines::openvoice::converter::{self, Converter, ConverterFiles};
use vctts_engines::runtime::SessionConfig;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/openvoice")
}

fn npy(name: &str) -> Vec<f32> {
    let path = fixtures().join(name);
    let a: ndarray::ArrayD<f32> =
        ndarray_npy::read_npy(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    a.iter().copied().collect()
}

fn clip(name: &str) -> Vec<f32> {
    let a = vctts_engines::audio::decode::decode_file(&fixtures().join(name), &Default::default()).unwrap();
    assert_eq!(a.sample_rate, converter::CONVERTER_RATE, "{name}");
    a.samples
}

fn load() -> Converter {
    vctts_engines::runtime::init(&Default::default()).expect("ONNX Runtime: run scripts/setup.sh");
    let files = ConverterFiles::find(&fixtures().join("converter")).expect("fixture converter");
    let config = SessionConfig {
        intra_threads: 1,
        ..SessionConfig::default()
    };
    Converter::load(&files, &config).unwrap()
}

fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max)
}

fn snr_db(reference: &[f32], got: &[f32]) -> f64 {
    assert_eq!(reference.len(), got.len());
    let signal: f64 = reference.iter().map(|&x| (x as f64).powi(2)).sum();
    let noise: f64 = reference
        .iter()
        .zip(got)
        .map(|(&x, &y)| (x as f64 - y as f64).powi(2))
        .sum();
    10.0 * (signal / noise.max(1e-30)).log10()
}

fn tone_of(conv: &mut Converter, wav: &str) -> Vec<f32> {
    let spec = vctts_engines::spectral::presets::openvoice_spectrogram(&clip(wav));
    conv.tone_color(&spec).unwrap()
}

#[test]
fn tone_colours_match_upstream() {
    let mut conv = load();
    let mut tones = Vec::new();
    for name in ["ref_a", "ref_b", "source"] {
        let got = tone_of(&mut conv, &format!("{name}.wav"));
        let want = npy(&format!("se_{name}.npy"));
        let err = max_abs_diff(&got, &want);
        assert!(
            err <= 1e-4,
            "{name}: tone colour differs from upstream by {err:e}"
        );
        // Not a trivial vector: the test would pass on zeros otherwise.
        assert!(want.iter().map(|v| v * v).sum::<f32>() > 0.1, "{name}");
        tones.push(got);
    }
    assert!(
        max_abs_diff(&tones[0], &tones[1]) > 1e-2,
        "two speakers, two tone colours"
    );
    // Upstream's extract_se on a list of references is the mean of their colours.
    let target = converter::mean(&tones[..2]);
    let err = max_abs_diff(&target, &npy("se_target.npy"));
    assert!(err <= 1e-4, "target tone colour differs by {err:e}");
}

#[test]
fn converted_waveform_matches_upstream_with_the_same_noise() {
    let mut conv = load();
    assert!(
        conv.takes_noise(),
        "the exported graph takes its noise as an input"
    );
    let source = tone_of(&mut conv, "source.wav");
    let target = converter::mean(&[tone_of(&mut conv, "ref_a.wav"), tone_of(&mut conv, "ref_b.wav")]);
    let params: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(fixtures().join("parity.json")).unwrap()).unwrap();
    let tau = params["tau"].as_f64().unwrap() as f32;
    let spec = vctts_engines::spectral::presets::openvoice_spectrogram(&clip("source.wav"));
    assert_eq!(spec.dim().1 as u64, params["frames"].as_u64().unwrap());
    let noise = npy("noise.npy");
    let got = conv
        .convert_with_noise(&spec, &source, &target, tau, &noise)
        .unwrap();
    let want = npy("converted.npy");
    let snr = snr_db(&want, &got);
    assert!(snr >= 40.0, "converted waveform SNR {snr:.1} dB < 40 dB");
    let rms = (Array1::from(want.clone()).mapv(|x| x * x).mean().unwrap()).sqrt();
    assert!(rms > 1e-3, "reference output is not silent ({rms})");

    // The noise matters: another noise gives another waveform (so the SNR
    // above checks the noise path, not just the deterministic part).
    let other: Vec<f32> = noise.iter().map(|v| -v).collect();
    let flipped = conv
        .convert_with_noise(&spec, &source, &target, tau, &other)
        .unwrap();
    assert!(snr_db(&want, &flipped) < 30.0);
    // A wrong noise length is an error, not a panic.
    assert!(
        conv.convert_with_noise(&spec, &source, &target, tau, &noise[1..])
            .is_err()
    );
}

#[test]
fn seeded_conversion_repeats_exactly() {
    use rand::SeedableRng;
    let mut conv = load();
    let spec = vctts_engines::spectral::presets::openvoice_spectrogram(&clip("source.wav"));
    let src = npy("se_source.npy");
    let dst = npy("se_target.npy");
    let run = |conv: &mut Converter, seed: u64| {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        conv.convert(&spec, &src, &dst, 0.3, &mut rng).unwrap()
    };
    let a = run(&mut conv, 11);
    assert_eq!(a, run(&mut conv, 11), "same seed, same samples");
    assert_ne!(a, run(&mut conv, 12), "another seed, other samples");
}

/// The same converter laid out as the public export: no noise input, the
/// noise drawn inside with `RandomNormalLike`. vctts rewrites the loaded graph
/// so that noise follows the seed, too.
#[test]
fn public_layout_with_in_graph_noise_follows_the_seed() {
    use rand::SeedableRng;
    vctts_engines::runtime::init(&Default::default()).expect("ONNX Runtime");
    let files = ConverterFiles {
        extract: fixtures().join("converter/tone_color_extract_model.onnx"),
        clone: fixtures().join("converter_public/tone_clone_model.onnx"),
    };
    let mut conv = Converter::load(&files, &SessionConfig::default()).unwrap();
    assert!(!conv.takes_noise());
    assert!(conv.follows_seed());
    let spec = vctts_engines::spectral::presets::openvoice_spectrogram(&clip("source.wav"));
    let src = npy("se_source.npy");
    let dst = npy("se_target.npy");
    let run = |conv: &mut Converter, seed: u64, tau: f32| {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        conv.convert(&spec, &src, &dst, tau, &mut rng).unwrap()
    };
    let a = run(&mut conv, 3, 0.3);
    assert_eq!(a, run(&mut conv, 3, 0.3), "same seed, same samples");
    assert_ne!(a, run(&mut conv, 4, 0.3));
    // At tau 0 the noise has no effect: upstream's output without noise.
    let mut flat = Converter::load(
        &ConverterFiles::find(&fixtures().join("converter")).unwrap(),
        &SessionConfig::default(),
    )
    .unwrap();
    let zero = vec![0.0f32; npy("noise.npy").len()];
    let want = flat.convert_with_noise(&spec, &src, &dst, 0.0, &zero).unwrap();
    assert!(snr_db(&want, &run(&mut conv, 3, 0.0)) >= 40.0);
}

#[test]
fn public_export_without_a_noise_input_still_loads() {
    vctts_engines::runtime::init(&Default::default()).expect("ONNX Runtime");
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/graphs/openvoice/converter");
    let files = ConverterFiles::find(&dir).expect("season-studio layout fixture");
    let mut conv = Converter::load(&files, &SessionConfig::default()).unwrap();
    assert!(!conv.takes_noise());
    assert!(conv.follows_seed(), "no random nodes: deterministic");
    let spec = vctts_engines::spectral::presets::openvoice_spectrogram(&clip("source.wav"));
    let tone = conv.tone_color(&spec).unwrap();
    let mut rng = <rand_chacha::ChaCha8Rng as rand::SeedableRng>::seed_from_u64(1);
    let wav = conv.convert(&spec, &tone, &tone, 0.3, &mut rng).unwrap();
    assert!(!wav.is_empty());
    assert!(conv.convert_with_noise(&spec, &tone, &tone, 0.3, &[]).is_err());
}
