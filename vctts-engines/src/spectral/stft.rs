//! Short-time Fourier transform with the framing conventions of
//! `torch.stft`: a window shorter than `n_fft` is zero-padded to `n_fft`
//! centred (`(n_fft - win_length) / 2` zeros on the left), the signal is
//! reflect-padded either by `n_fft / 2` (`center=True`) or by a fixed amount
//! with `center=False` (the VITS-family `(n_fft - hop) / 2` rule), and the
//! frame count is `1 + (padded_len - n_fft) / hop`.
//!
//! Invariants:
//! - outputs are `[n_fft / 2 + 1, frames]` in standard (row-major) layout;
//! - a signal too short to fill one frame gives zero frames, never a panic;
//! - reflection follows `np.pad(mode="reflect")`, including pads longer than
//!   the signal (the signal is reflected back and forth, period `2(n - 1)`);
//! - the FFT plan and the zero-padded window are built once in [`Stft::new`];
//!   a call allocates its output, the padded signal and one frame buffer, and
//!   nothing per frame.

use std::sync::Arc;

use ndarray::Array2;
use realfft::num_complex::Complex;
use realfft::{RealFftPlanner, RealToComplex};
use vctts_core::{Error, Result};

use super::window::{WindowKind, window};

/// How the signal is padded before framing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Padding {
    /// Reflect-pad `n_fft / 2` on each side (torch `center=True`,
    /// `pad_mode="reflect"`): frame `t` is centred on sample `t * hop`.
    Center,
    /// Reflect-pad this many samples on each side, then frame with
    /// `center=False` (OpenVoice and GPT-SoVITS pad `(n_fft - hop) / 2`).
    Reflect(usize),
}

/// The shape of an STFT.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StftConfig {
    /// FFT length; the output has `n_fft / 2 + 1` bins.
    pub n_fft: usize,
    /// Samples between frame starts.
    pub hop: usize,
    /// Window length, at most `n_fft`.
    pub win_length: usize,
    /// Window shape.
    pub window: WindowKind,
    /// Periodic (torch default) or symmetric window.
    pub periodic: bool,
    /// Padding rule.
    pub padding: Padding,
}

impl StftConfig {
    /// Checks that the shape is usable: `n_fft > 0`, `hop > 0`,
    /// `0 < win_length <= n_fft`.
    pub fn validate(&self) -> Result<()> {
        if self.n_fft == 0 {
            return Err(Error::invalid("stft.n_fft", "must be > 0"));
        }
        if self.hop == 0 {
            return Err(Error::invalid("stft.hop", "must be > 0"));
        }
        if self.win_length == 0 || self.win_length > self.n_fft {
            return Err(Error::invalid(
                "stft.win_length",
                format!(
                    "must be between 1 and n_fft ({}), got {}",
                    self.n_fft, self.win_length
                ),
            ));
        }
        Ok(())
    }

    /// Number of one-sided frequency bins, `n_fft / 2 + 1`.
    pub fn bins(&self) -> usize {
        self.n_fft / 2 + 1
    }

    /// Samples of reflection added on each side.
    pub fn pad(&self) -> usize {
        match self.padding {
            Padding::Center => self.n_fft / 2,
            Padding::Reflect(p) => p,
        }
    }

    /// Number of frames for a signal of `len` samples.
    pub fn frames(&self, len: usize) -> usize {
        if len == 0 {
            return 0;
        }
        let padded = len + 2 * self.pad();
        if padded < self.n_fft {
            0
        } else {
            1 + (padded - self.n_fft) / self.hop
        }
    }
}

/// A planned STFT. Cheap to share: `&self` methods, `Send + Sync`.
#[derive(Clone)]
pub struct Stft {
    cfg: StftConfig,
    fft: Arc<dyn RealToComplex<f32>>,
    /// The window zero-padded (centred) to `n_fft`.
    window: Vec<f32>,
}

impl std::fmt::Debug for Stft {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Stft")
            .field("cfg", &self.cfg)
            .finish_non_exhaustive()
    }
}

impl Stft {
    /// Plans the transform.
    ///
    /// # Panics
    /// If the configuration is invalid (see [`StftConfig::validate`]); use
    /// [`Stft::try_new`] for configurations that come from outside the code.
    pub fn new(cfg: StftConfig) -> Self {
        match Self::try_new(cfg) {
            Ok(s) => s,
            Err(e) => panic!("invalid STFT configuration: {e}"),
        }
    }

    /// Plans the transform, or says which field is invalid.
    pub fn try_new(cfg: StftConfig) -> Result<Self> {
        cfg.validate()?;
        let fft = RealFftPlanner::<f32>::new().plan_fft_forward(cfg.n_fft);
        let mut padded = vec![0.0f32; cfg.n_fft];
        let left = (cfg.n_fft - cfg.win_length) / 2;
        padded[left..left + cfg.win_length].copy_from_slice(&window(
            cfg.window,
            cfg.win_length,
            cfg.periodic,
        ));
        Ok(Self {
            cfg,
            fft,
            window: padded,
        })
    }

    /// The configuration this transform was planned for.
    pub fn config(&self) -> &StftConfig {
        &self.cfg
    }

    /// Magnitude `sqrt(re² + im² + eps)`, shaped `[n_fft / 2 + 1, frames]`.
    pub fn magnitude(&self, samples: &[f32], eps: f32) -> Array2<f32> {
        self.map_bins(samples, |c| (c.re * c.re + c.im * c.im + eps).sqrt())
    }

    /// Power `re² + im²`, shaped `[n_fft / 2 + 1, frames]`.
    pub fn power(&self, samples: &[f32]) -> Array2<f32> {
        self.map_bins(samples, |c| c.re * c.re + c.im * c.im)
    }

    /// Runs the transform and writes `f(bin)` for every bin of every frame.
    fn map_bins(&self, samples: &[f32], f: impl Fn(Complex<f32>) -> f32) -> Array2<f32> {
        let bins = self.cfg.bins();
        let frames = self.cfg.frames(samples.len());
        let mut out = Array2::<f32>::zeros((bins, frames));
        if frames == 0 {
            return out;
        }
        let padded = reflect_pad(samples, self.cfg.pad());
        let mut frame = vec![0.0f32; self.cfg.n_fft];
        let mut spectrum = vec![Complex::new(0.0f32, 0.0); bins];
        let mut scratch = self.fft.make_scratch_vec();
        for t in 0..frames {
            let start = t * self.cfg.hop;
            let src = &padded[start..start + self.cfg.n_fft];
            for ((dst, &x), &w) in frame.iter_mut().zip(src).zip(&self.window) {
                *dst = x * w;
            }
            self.fft
                .process_with_scratch(&mut frame, &mut spectrum, &mut scratch)
                .expect("buffers have the planned lengths");
            for (dst, &c) in out.column_mut(t).iter_mut().zip(&spectrum) {
                *dst = f(c);
            }
        }
        out
    }
}

/// `np.pad(x, pad, mode="reflect")`: mirrors without repeating the edge
/// sample; pads longer than the signal reflect back and forth. An empty
/// signal stays empty; a one-sample signal is repeated.
pub fn reflect_pad(x: &[f32], pad: usize) -> Vec<f32> {
    let n = x.len();
    if n == 0 {
        return Vec::new();
    }
    let mut out = Vec::with_capacity(n + 2 * pad);
    if n == 1 {
        out.resize(n + 2 * pad, x[0]);
        return out;
    }
    let period = 2 * (n - 1) as i64;
    let at = |i: i64| -> f32 {
        let m = i.rem_euclid(period);
        let idx = if m < n as i64 { m } else { period - m };
        x[idx as usize]
    };
    out.extend((0..pad).map(|k| at(k as i64 - pad as i64)));
    out.extend_from_slice(x);
    out.extend((0..pad).map(|k| at((n + k) as i64)));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(n_fft: usize, hop: usize, padding: Padding) -> StftConfig {
        StftConfig {
            n_fft,
            hop,
            win_length: n_fft,
            window: WindowKind::Hann,
            periodic: true,
            padding,
        }
    }

    #[test]
    fn reflect_pad_matches_numpy() {
        // np.pad([1,2,3], 2, 'reflect') == [3,2,1,2,3,2,1]
        assert_eq!(
            reflect_pad(&[1.0, 2.0, 3.0], 2),
            vec![3.0, 2.0, 1.0, 2.0, 3.0, 2.0, 1.0]
        );
        // np.pad([1,2,3], 5, 'reflect') == [2,1,2,3,2,1,2,3,2,1,2,3,2]
        assert_eq!(
            reflect_pad(&[1.0, 2.0, 3.0], 5),
            vec![2.0, 1.0, 2.0, 3.0, 2.0, 1.0, 2.0, 3.0, 2.0, 1.0, 2.0, 3.0, 2.0]
        );
        assert_eq!(reflect_pad(&[7.0], 2), vec![7.0; 5]);
        assert!(reflect_pad(&[], 3).is_empty());
    }

    #[test]
    fn frame_counts() {
        let c = cfg(1024, 256, Padding::Reflect(384));
        assert_eq!(c.frames(0), 0);
        assert_eq!(c.frames(22050), 1 + (22050 + 768 - 1024) / 256);
        let c = cfg(2048, 256, Padding::Center);
        assert_eq!(c.frames(22050), 1 + 22050 / 256);
        let c = cfg(512, 160, Padding::Reflect(0));
        assert_eq!(c.frames(100), 0);
    }

    #[test]
    fn short_input_gives_zero_frames() {
        let s = Stft::new(cfg(512, 128, Padding::Reflect(0)));
        assert_eq!(s.power(&[0.5; 100]).dim(), (257, 0));
        assert_eq!(s.power(&[]).dim(), (257, 0));
    }

    #[test]
    fn invalid_configs_are_errors() {
        assert!(Stft::try_new(cfg(0, 1, Padding::Center)).is_err());
        assert!(Stft::try_new(cfg(16, 0, Padding::Center)).is_err());
        let mut c = cfg(16, 4, Padding::Center);
        c.win_length = 17;
        assert!(Stft::try_new(c).is_err());
    }

    #[test]
    fn sine_peaks_in_its_bin() {
        let n_fft = 512;
        let sr = 16000.0f32;
        let f = 1000.0f32; // bin 32 exactly
        let x: Vec<f32> = (0..4000)
            .map(|i| (2.0 * std::f32::consts::PI * f * i as f32 / sr).sin())
            .collect();
        let p = Stft::new(cfg(n_fft, 128, Padding::Center)).power(&x);
        let col = p.column(10);
        let argmax = col
            .iter()
            .enumerate()
            .max_by(|a, b| a.1.total_cmp(b.1))
            .map(|(i, _)| i)
            .unwrap_or(0);
        assert_eq!(argmax, 32);
        // Periodic Hann sums to n/2; a unit sine gives |X| = n/4 at its bin.
        assert!((col[32].sqrt() - n_fft as f32 / 4.0).abs() < 0.01 * n_fft as f32 / 4.0);
    }

    #[test]
    fn magnitude_floor_is_sqrt_eps() {
        let s = Stft::new(cfg(64, 16, Padding::Reflect(24)));
        let m = s.magnitude(&[0.0; 200], 1e-6);
        assert!(m.iter().all(|&v| (v - 1e-3).abs() < 1e-9));
    }
}
