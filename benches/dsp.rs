//! DSP throughput of vctts-engines, in input samples per second:
//! resampling (48 kHz -> 22.05 kHz, 22.05 kHz -> 16 kHz) and every spectral
//! preset, on 5 s of a deterministic test signal (a chirp over a pulse
//! train). Run with `cargo bench --bench dsp`.

use std::f64::consts::PI;
use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use vctts_core::Audio;
use vctts_engines::audio::resample;
use vctts_engines::spectral::presets;

const SECONDS: f64 = 5.0;

/// A chirp from 80 Hz to 0.4 × rate plus a 120 Hz pulse train.
fn signal(rate: u32) -> Vec<f32> {
    let n = (SECONDS * rate as f64) as usize;
    let f1 = 0.4 * rate as f64;
    let period = (rate / 120) as usize;
    (0..n)
        .map(|i| {
            let t = i as f64 / rate as f64;
            let chirp = 0.4 * (2.0 * PI * (80.0 * t + (f1 - 80.0) * t * t / (2.0 * SECONDS))).sin();
            let pulse = if i % period == 0 { 0.3 } else { 0.0 };
            (chirp + pulse) as f32
        })
        .collect()
}

fn bench_resample(c: &mut Criterion) {
    let mut g = c.benchmark_group("resample");
    for (from, to) in [(48000u32, 22050u32), (22050, 16000)] {
        let a = Audio::new(signal(from), from);
        // Warm the resampler pool so construction is not measured.
        let _ = resample(&a, to);
        g.throughput(Throughput::Elements(a.samples.len() as u64));
        g.bench_function(format!("{from}_to_{to}"), |b| {
            b.iter(|| resample(black_box(&a), to).expect("valid rates"))
        });
    }
    g.finish();
}

fn bench_presets(c: &mut Criterion) {
    let mut g = c.benchmark_group("spectral");
    // Each case returns the element count so the output is used.
    type Preset = fn(&[f32]) -> usize;
    let cases: [(&str, u32, Preset); 4] = [
        ("openvoice_spectrogram_22k", 22050, |x| {
            presets::openvoice_spectrogram(x).len()
        }),
        ("gpt_sovits_spectrogram_32k", 32000, |x| {
            presets::gpt_sovits_spectrogram(x).len()
        }),
        ("xtts_conditioning_mel_22k", 22050, |x| {
            presets::xtts_conditioning_mel(x).len()
        }),
        ("xtts_speaker_mel_16k", 16000, |x| {
            presets::xtts_speaker_mel(x).len()
        }),
    ];
    for (name, rate, f) in cases {
        let x = signal(rate);
        let _ = f(&x);
        g.throughput(Throughput::Elements(x.len() as u64));
        g.bench_function(name, |b| b.iter(|| f(black_box(&x))));
    }
    g.finish();
}

criterion_group!(benches, bench_resample, bench_presets);
criterion_main!(benches);
