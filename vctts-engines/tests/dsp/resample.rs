//! Resampling quality on tones and sweeps: passband level, stopband
//! (aliasing) floor, exact lengths.

use std::f64::consts::PI;

use vctts_core::Audio;
use vctts_engines::audio::resample;

fn tone(f: f64, rate: u32, seconds: f64) -> Audio {
    let n = (seconds * rate as f64) as usize;
    Audio::new(
        (0..n)
            .map(|i| (2.0 * PI * f * i as f64 / rate as f64).sin() as f32)
            .collect(),
        rate,
    )
}

/// Level of the `f` component of `y` (dB re. a unit sine), by projection
/// away from the edges.
fn level_db(y: &[f32], f: f64, rate: u32) -> f64 {
    let w = 2.0 * PI * f / rate as f64;
    let edge = rate as usize / 20;
    let (mut a, mut b) = (0.0, 0.0);
    let body = &y[edge..y.len() - edge];
    for (k, &v) in body.iter().enumerate() {
        let j = (k + edge) as f64;
        a += v as f64 * (w * j).sin();
        b += v as f64 * (w * j).cos();
    }
    let m = body.len() as f64;
    20.0 * ((2.0 * a / m).hypot(2.0 * b / m)).log10()
}

/// RMS of `y` away from the edges, in dB re. a unit sine (RMS 1/√2).
fn rms_db(y: &[f32], rate: u32) -> f64 {
    let edge = rate as usize / 20;
    let body = &y[edge..y.len() - edge];
    let ms = body.iter().map(|&v| (v as f64).powi(2)).sum::<f64>() / body.len() as f64;
    10.0 * (ms.max(1e-30) / 0.5).log10()
}

#[test]
fn one_khz_keeps_its_level_48k_to_22k() {
    let y = resample(&tone(1000.0, 48000, 1.0), 22050).unwrap();
    assert_eq!(y.sample_rate, 22050);
    assert_eq!(y.samples.len(), 22050);
    let l = level_db(&y.samples, 1000.0, 22050);
    assert!(l.abs() < 0.1, "1 kHz level {l} dB");
}

#[test]
fn fifteen_khz_is_removed_48k_to_16k() {
    let y = resample(&tone(15000.0, 48000, 1.0), 16000).unwrap();
    let r = rms_db(&y.samples, 16000);
    assert!(r < -60.0, "15 kHz leaks at {r} dB");
}

#[test]
fn passband_is_flat_across_a_sweep() {
    for (from, to) in [
        (48000u32, 22050u32),
        (22050, 16000),
        (44100, 22050),
        (16000, 24000),
    ] {
        let nyq = from.min(to) as f64 / 2.0;
        let mut f = 100.0;
        while f < 0.8 * nyq {
            let y = resample(&tone(f, from, 0.5), to).unwrap();
            let l = level_db(&y.samples, f, to);
            assert!(l.abs() < 0.1, "{from}->{to}: {f:.0} Hz at {l:.3} dB");
            f *= 1.5;
        }
    }
}

#[test]
fn stopband_is_below_minus_60_db_across_a_sweep() {
    for (from, to) in [
        (48000u32, 22050u32),
        (22050, 16000),
        (48000, 16000),
        (44100, 22050),
    ] {
        let nyq_out = to as f64 / 2.0;
        let nyq_in = from as f64 / 2.0;
        let mut f = 1.1 * nyq_out;
        while f < 0.98 * nyq_in {
            let y = resample(&tone(f, from, 0.5), to).unwrap();
            let r = rms_db(&y.samples, to);
            assert!(r < -60.0, "{from}->{to}: {f:.0} Hz leaks at {r:.1} dB");
            f += 0.1 * nyq_out;
        }
    }
}

#[test]
fn lengths_are_exact_for_odd_sizes() {
    for n in [1usize, 2, 3, 1023, 1024, 1025, 4097, 22051] {
        for (from, to) in [(48000u32, 22050u32), (22050, 16000), (16000, 44100)] {
            let y = resample(&Audio::new(vec![0.25; n], from), to).unwrap();
            let want = ((n as u128 * to as u128 * 2 + from as u128) / (2 * from as u128)) as usize;
            assert_eq!(y.samples.len(), want, "{n} samples {from}->{to}");
        }
    }
}

#[test]
fn concurrent_calls_agree() {
    let a = tone(440.0, 48000, 0.3);
    let want = resample(&a, 22050).unwrap();
    let handles: Vec<_> = (0..4)
        .map(|_| {
            let a = a.clone();
            std::thread::spawn(move || resample(&a, 22050).unwrap())
        })
        .collect();
    for h in handles {
        assert_eq!(h.join().unwrap(), want);
    }
}
