//! Mel filterbanks (HTK or Slaney scale, optional Slaney area
//! normalisation) and the log compression the models expect.
//!
//! The filterbank follows `librosa.filters.mel` and torchaudio's
//! `melscale_fbanks` (they agree): FFT bin `k` sits at `k * sr / n_fft`,
//! `n_mels + 2` points are spaced evenly on the mel scale between `fmin` and
//! `fmax`, filter `m` is the triangle over points `m, m+1, m+2`, and Slaney
//! normalisation scales it by `2 / (f[m+2] - f[m])` so each has unit area.
//! Note that "slaney" names two different things: the *scale* ([`MelScale`])
//! and the *normalisation* ([`MelConfig::slaney_norm`]); XTTS uses the HTK
//! scale with Slaney normalisation.
//!
//! Invariants: weights are computed in `f64` and stored as `f32`; a
//! filterbank is `[n_mels, n_fft / 2 + 1]`; [`apply_mel`] gives the same
//! result as the matrix product but only visits the non-zero span of each
//! filter.

use ndarray::{Array2, ArrayView2};
use vctts_core::{Error, Result};

/// The frequency-to-mel mapping.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MelScale {
    /// `2595 log10(1 + f / 700)` (torchaudio's default).
    Htk,
    /// Linear below 1 kHz, logarithmic above (librosa's default, Slaney's
    /// Auditory Toolbox).
    Slaney,
}

/// The shape of a mel filterbank.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MelConfig {
    /// Sample rate of the analysed signal.
    pub sample_rate: u32,
    /// FFT length of the spectrogram the filters apply to.
    pub n_fft: usize,
    /// Number of filters.
    pub n_mels: usize,
    /// Lowest edge in Hz.
    pub fmin: f32,
    /// Highest edge in Hz.
    pub fmax: f32,
    /// Mel scale.
    pub scale: MelScale,
    /// Slaney area normalisation (`norm="slaney"`); `false` keeps peak 1.
    pub slaney_norm: bool,
}

impl MelConfig {
    /// Checks the configuration: positive sizes and `0 <= fmin < fmax`.
    pub fn validate(&self) -> Result<()> {
        if self.sample_rate == 0 {
            return Err(Error::invalid("mel.sample_rate", "must be > 0"));
        }
        if self.n_fft == 0 {
            return Err(Error::invalid("mel.n_fft", "must be > 0"));
        }
        if self.n_mels == 0 {
            return Err(Error::invalid("mel.n_mels", "must be > 0"));
        }
        if !(self.fmin.is_finite() && self.fmax.is_finite() && self.fmin >= 0.0 && self.fmin < self.fmax) {
            return Err(Error::invalid(
                "mel.fmin/fmax",
                format!("need 0 <= fmin < fmax, got {} and {}", self.fmin, self.fmax),
            ));
        }
        Ok(())
    }
}

/// Hz to mel on the given scale.
pub fn hz_to_mel(hz: f64, scale: MelScale) -> f64 {
    match scale {
        MelScale::Htk => 2595.0 * (1.0 + hz / 700.0).log10(),
        MelScale::Slaney => {
            let f_sp = 200.0 / 3.0;
            let min_log_hz = 1000.0;
            let min_log_mel = min_log_hz / f_sp;
            let logstep = 6.4f64.ln() / 27.0;
            if hz >= min_log_hz {
                min_log_mel + (hz / min_log_hz).ln() / logstep
            } else {
                hz / f_sp
            }
        }
    }
}

/// Mel to Hz on the given scale (inverse of [`hz_to_mel`]).
pub fn mel_to_hz(mel: f64, scale: MelScale) -> f64 {
    match scale {
        MelScale::Htk => 700.0 * (10f64.powf(mel / 2595.0) - 1.0),
        MelScale::Slaney => {
            let f_sp = 200.0 / 3.0;
            let min_log_hz = 1000.0;
            let min_log_mel = min_log_hz / f_sp;
            let logstep = 6.4f64.ln() / 27.0;
            if mel >= min_log_mel {
                min_log_hz * (logstep * (mel - min_log_mel)).exp()
            } else {
                f_sp * mel
            }
        }
    }
}

/// The filterbank, `[n_mels, n_fft / 2 + 1]`.
///
/// # Panics
/// If the configuration is invalid (see [`MelConfig::validate`]); use
/// [`try_mel_filterbank`] for configurations from outside the code.
pub fn mel_filterbank(cfg: &MelConfig) -> Array2<f32> {
    match try_mel_filterbank(cfg) {
        Ok(fb) => fb,
        Err(e) => panic!("invalid mel configuration: {e}"),
    }
}

/// The filterbank, or which field of the configuration is invalid.
pub fn try_mel_filterbank(cfg: &MelConfig) -> Result<Array2<f32>> {
    cfg.validate()?;
    let bins = cfg.n_fft / 2 + 1;
    let sr = cfg.sample_rate as f64;
    let fft_freqs: Vec<f64> = (0..bins).map(|k| k as f64 * sr / cfg.n_fft as f64).collect();
    let m_min = hz_to_mel(cfg.fmin as f64, cfg.scale);
    let m_max = hz_to_mel(cfg.fmax as f64, cfg.scale);
    let n_pts = cfg.n_mels + 2;
    let f_pts: Vec<f64> = (0..n_pts)
        .map(|i| mel_to_hz(m_min + (m_max - m_min) * i as f64 / (n_pts - 1) as f64, cfg.scale))
        .collect();
    let mut fb = Array2::<f32>::zeros((cfg.n_mels, bins));
    for m in 0..cfg.n_mels {
        let (lo, mid, hi) = (f_pts[m], f_pts[m + 1], f_pts[m + 2]);
        let enorm = if cfg.slaney_norm { 2.0 / (hi - lo) } else { 1.0 };
        for (k, &f) in fft_freqs.iter().enumerate() {
            let lower = (f - lo) / (mid - lo);
            let upper = (hi - f) / (hi - mid);
            let w = lower.min(upper).max(0.0);
            if w > 0.0 {
                fb[[m, k]] = (w * enorm) as f32;
            }
        }
    }
    Ok(fb)
}

/// `filterbank · spectrogram`: `[n_mels, bins] x [bins, frames] -> [n_mels, frames]`.
///
/// Visits only the non-zero span of each filter, which is a small fraction
/// of the bins for typical banks.
///
/// # Errors
/// [`Error::InvalidInput`] when the bin counts differ.
pub fn apply_mel(filterbank: ArrayView2<'_, f32>, spectrogram: ArrayView2<'_, f32>) -> Result<Array2<f32>> {
    let (n_mels, bins) = filterbank.dim();
    let (spec_bins, frames) = spectrogram.dim();
    if bins != spec_bins {
        return Err(Error::invalid(
            "spectrogram",
            format!("has {spec_bins} bins, the filterbank expects {bins}"),
        ));
    }
    let mut out = Array2::<f32>::zeros((n_mels, frames));
    for m in 0..n_mels {
        let row = filterbank.row(m);
        let first = row.iter().position(|&w| w != 0.0);
        let last = row.iter().rposition(|&w| w != 0.0);
        let (Some(first), Some(last)) = (first, last) else {
            continue;
        };
        let mut dst = out.row_mut(m);
        for k in first..=last {
            let w = row[k];
            if w == 0.0 {
                continue;
            }
            dst.zip_mut_with(&spectrogram.row(k), |d, &s| *d += w * s);
        }
    }
    Ok(out)
}

/// `x = ln(max(x, min))` in place (`torch.log(torch.clamp(x, min=min))`).
pub fn log_clamp(x: &mut Array2<f32>, min: f32) {
    x.mapv_inplace(|v| v.max(min).ln());
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::Array2;

    fn cfg(scale: MelScale, norm: bool) -> MelConfig {
        MelConfig {
            sample_rate: 16000,
            n_fft: 512,
            n_mels: 40,
            fmin: 0.0,
            fmax: 8000.0,
            scale,
            slaney_norm: norm,
        }
    }

    #[test]
    fn scales_round_trip_and_anchor() {
        for scale in [MelScale::Htk, MelScale::Slaney] {
            for hz in [0.0, 440.0, 999.0, 1000.0, 4000.0, 11025.0] {
                let back = mel_to_hz(hz_to_mel(hz, scale), scale);
                assert!((back - hz).abs() < 1e-6 * hz.max(1.0));
            }
        }
        assert!((hz_to_mel(1000.0, MelScale::Slaney) - 15.0).abs() < 1e-12);
        assert!((hz_to_mel(700.0, MelScale::Htk) - 2595.0 * 2f64.log10()).abs() < 1e-9);
    }

    #[test]
    fn unnormalised_filters_peak_below_one_and_cover_the_band() {
        let fb = mel_filterbank(&cfg(MelScale::Htk, false));
        assert_eq!(fb.dim(), (40, 257));
        for row in fb.rows() {
            let peak = row.iter().cloned().fold(0.0f32, f32::max);
            assert!(peak > 0.3 && peak <= 1.0, "peak {peak}");
        }
    }

    #[test]
    fn apply_mel_equals_dense_product() {
        let fb = mel_filterbank(&cfg(MelScale::Slaney, true));
        let spec = Array2::from_shape_fn((257, 7), |(k, t)| ((k * 31 + t * 7) % 13) as f32 * 0.1);
        let dense = fb.dot(&spec);
        let sparse = apply_mel(fb.view(), spec.view()).unwrap();
        for (a, b) in dense.iter().zip(sparse.iter()) {
            assert!((a - b).abs() <= 1e-5 * a.abs().max(1.0));
        }
        assert!(apply_mel(fb.view(), Array2::zeros((100, 3)).view()).is_err());
    }

    #[test]
    fn invalid_config_is_an_error() {
        let mut c = cfg(MelScale::Htk, true);
        c.fmin = 9000.0;
        assert!(try_mel_filterbank(&c).is_err());
        c.fmin = 0.0;
        c.n_mels = 0;
        assert!(try_mel_filterbank(&c).is_err());
    }

    #[test]
    fn log_clamp_floors() {
        let mut x = Array2::from_shape_vec((1, 3), vec![0.0, 1.0, std::f32::consts::E]).unwrap();
        log_clamp(&mut x, 1e-5);
        assert!((x[[0, 0]] - 1e-5f32.ln()).abs() < 1e-6);
        assert_eq!(x[[0, 1]], 0.0);
        assert!((x[[0, 2]] - 1.0).abs() < 1e-6);
    }
}
