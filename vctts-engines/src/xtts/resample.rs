//! torchaudio's `functional.resample` (the default `sinc_interp_hann`,
//! `lowpass_filter_width` 6, `rolloff` 0.99), which Coqui uses for XTTS
//! reference audio (load at 22.05 kHz, 16 kHz for the speaker encoder).
//! Reproducing it exactly keeps the conditioning latents and the speaker
//! embedding within float rounding of Coqui's.
//!
//! Invariants: output length is `ceil(len * new / orig)`; equal rates return
//! the input; the kernel is built in f64 (the phase term in f32, as torch
//! does) and applied in f32.

const WIDTH: f64 = 6.0;
const ROLLOFF: f64 = 0.99;

fn gcd(a: u32, b: u32) -> u32 {
    if b == 0 { a } else { gcd(b, a % b) }
}

/// Resamples mono `x` from `orig` Hz to `new` Hz like torchaudio.
pub fn resample(x: &[f32], orig: u32, new: u32) -> Vec<f32> {
    if orig == new || x.is_empty() || orig == 0 || new == 0 {
        return x.to_vec();
    }
    let g = gcd(orig, new);
    let (o, n) = ((orig / g) as usize, (new / g) as usize);
    let base = (o.min(n) as f64) * ROLLOFF;
    let width = (WIDTH * o as f64 / base).ceil() as usize;
    let klen = 2 * width + o;
    let scale = base / o as f64;
    // kernel[j][k]
    let mut kernel = vec![0f32; n * klen];
    for j in 0..n {
        let phase = (-(j as f32) / n as f32) as f64;
        for k in 0..klen {
            let idx = (k as f64 - width as f64) / o as f64;
            let t = ((phase + idx) * base).clamp(-WIDTH, WIDTH);
            let window = (t * std::f64::consts::PI / WIDTH / 2.0).cos().powi(2);
            let t = t * std::f64::consts::PI;
            let sinc = if t == 0.0 { 1.0 } else { t.sin() / t };
            kernel[j * klen + k] = (sinc * window * scale) as f32;
        }
    }
    let len = x.len();
    let mut padded = vec![0f32; width + len + width + o];
    padded[width..width + len].copy_from_slice(x);
    let frames = (padded.len() - klen) / o + 1;
    let target = (n as u64 * len as u64).div_ceil(o as u64) as usize;
    let mut out = Vec::with_capacity(target);
    'outer: for f in 0..frames {
        let seg = &padded[f * o..f * o + klen];
        for j in 0..n {
            if out.len() == target {
                break 'outer;
            }
            let kr = &kernel[j * klen..(j + 1) * klen];
            let acc: f32 = kr.iter().zip(seg).map(|(a, b)| a * b).sum();
            out.push(acc);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lengths_and_identity() {
        let x: Vec<f32> = (0..22050).map(|i| (i as f32 * 0.01).sin()).collect();
        assert_eq!(resample(&x, 22050, 16000).len(), 16000);
        assert_eq!(
            resample(&x[..1001], 22050, 16000).len(),
            (1001u64 * 320).div_ceil(441) as usize
        );
        assert_eq!(resample(&x, 16000, 16000), x);
        assert!(resample(&[], 48000, 22050).is_empty());
    }

    #[test]
    fn a_low_tone_survives() {
        let sr = 48000;
        let x: Vec<f32> = (0..sr)
            .map(|i| (2.0 * std::f32::consts::PI * 440.0 * i as f32 / sr as f32).sin())
            .collect();
        let y = resample(&x, sr, 22050);
        let want: Vec<f32> = (0..y.len())
            .map(|i| (2.0 * std::f32::consts::PI * 440.0 * i as f32 / 22050.0).sin())
            .collect();
        let err = crate::audio::max_abs_diff(&y[100..y.len() - 100], &want[100..want.len() - 100]);
        assert!(err < 0.02, "{err}");
    }
}
