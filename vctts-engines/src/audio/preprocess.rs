//! Clean-up of reference clips before feature extraction: rate conversion,
//! DC removal, silence trimming, loudness normalisation, peak limiting and
//! duration limits.
//!
//! [`preprocess`] applies the enabled steps in a fixed order:
//! 1. `max_seconds` on the input (refused before any work);
//! 2. resampling to `sample_rate`;
//! 3. DC removal;
//! 4. silence trimming (speech segments, joined);
//! 5. `min_seconds` on what is left;
//! 6. loudness normalisation (EBU R128 integrated loudness);
//! 7. peak limiting.
//!
//! Invariants: every step keeps the rate (except 2) and the clip mono; the
//! defaults of [`PreprocessOptions`] change nothing; non-finite samples are
//! refused with [`Error::AudioRejected`].

use ebur128::{EbuR128, Mode};
use vctts_core::{Audio, Error, Result};

use super::resample::resample;
use super::vad::{VadConfig, speech_segments};

/// Which clean-up steps to run. The default runs none.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PreprocessOptions {
    /// Resample to this rate.
    pub sample_rate: Option<u32>,
    /// Subtract the mean.
    pub remove_dc: bool,
    /// Keep only the speech segments (default [`VadConfig`]).
    pub trim_silence: bool,
    /// Target integrated loudness in LUFS (e.g. -23).
    pub loudness_lufs: Option<f32>,
    /// Linear peak ceiling (e.g. 0.98).
    pub peak_limit: Option<f32>,
    /// Shortest clip accepted after trimming, in seconds.
    pub min_seconds: Option<f32>,
    /// Longest clip accepted, in seconds (checked on the input).
    pub max_seconds: Option<f32>,
}

fn seconds(audio: &Audio) -> f32 {
    audio.duration().as_secs_f32()
}

/// Runs the enabled steps (see the module docs for the order).
///
/// # Errors
/// [`Error::AudioRejected`] naming the limit when the clip is too long or
/// (after trimming) too short, when it has no speech to keep, when it holds
/// non-finite samples, or when its loudness cannot be measured;
/// [`Error::InvalidInput`] for a bad option value.
pub fn preprocess(audio: Audio, opts: &PreprocessOptions) -> Result<Audio> {
    if audio.samples.iter().any(|s| !s.is_finite()) {
        return Err(Error::AudioRejected(
            "the audio contains NaN or infinite samples".into(),
        ));
    }
    if let Some(max) = opts.max_seconds {
        let len = seconds(&audio);
        if len > max {
            return Err(Error::AudioRejected(format!(
                "the audio is {len:.1} s long; the limit is {max} s"
            )));
        }
    }
    let mut audio = match opts.sample_rate {
        Some(rate) if rate != audio.sample_rate => resample(&audio, rate)?,
        _ => audio,
    };
    if opts.remove_dc {
        remove_dc(&mut audio);
    }
    if opts.trim_silence {
        let trimmed = trim_silence(&audio, &VadConfig::default());
        if trimmed.is_empty() && !audio.is_empty() {
            return Err(Error::AudioRejected(
                "no speech found: the audio is silent or only noise".into(),
            ));
        }
        audio = trimmed;
    }
    if let Some(min) = opts.min_seconds {
        let len = seconds(&audio);
        if len < min {
            let what = if opts.trim_silence { "of speech" } else { "long" };
            return Err(Error::AudioRejected(format!(
                "the audio is {len:.1} s {what}; at least {min} s is needed"
            )));
        }
    }
    if let Some(target) = opts.loudness_lufs {
        normalize_loudness(&mut audio, target)?;
    }
    if let Some(ceiling) = opts.peak_limit {
        if !(ceiling.is_finite() && ceiling > 0.0) {
            return Err(Error::invalid(
                "peak_limit",
                format!("must be > 0, got {ceiling}"),
            ));
        }
        limit_peak(&mut audio, ceiling);
    }
    Ok(audio)
}

/// Subtracts the mean (computed in `f64`), removing a constant offset
/// without the start-up transient of a high-pass filter.
pub fn remove_dc(audio: &mut Audio) {
    if audio.samples.is_empty() {
        return;
    }
    let mean = audio.samples.iter().map(|&s| s as f64).sum::<f64>() / audio.samples.len() as f64;
    let mean = mean as f32;
    if mean != 0.0 && mean.is_finite() {
        for s in &mut audio.samples {
            *s -= mean;
        }
    }
}

/// The speech segments of `audio` joined end to end (empty when there are
/// none). Padding from the config keeps word edges.
pub fn trim_silence(audio: &Audio, cfg: &VadConfig) -> Audio {
    let segs = speech_segments(audio, cfg);
    let len = segs.iter().map(|r| r.len()).sum();
    let mut out = Vec::with_capacity(len);
    for r in segs {
        out.extend_from_slice(&audio.samples[r]);
    }
    Audio::new(out, audio.sample_rate)
}

/// EBU R128 integrated loudness in LUFS, `None` when it cannot be measured
/// (silent, shorter than one 400 ms gating block, or not finite).
pub fn integrated_loudness(audio: &Audio) -> Option<f64> {
    if audio.samples.is_empty() || audio.sample_rate == 0 {
        return None;
    }
    let mut meter = EbuR128::new(1, audio.sample_rate, Mode::I).ok()?;
    meter.add_frames_f32(&audio.samples).ok()?;
    let l = meter.loudness_global().ok()?;
    l.is_finite().then_some(l)
}

/// Scales the clip to `target_lufs` integrated loudness. Samples may exceed
/// full scale afterwards; follow with [`limit_peak`].
///
/// # Errors
/// [`Error::InvalidInput`] for a non-finite or positive target,
/// [`Error::AudioRejected`] when the loudness cannot be measured (the clip
/// is silent or shorter than 0.4 s).
pub fn normalize_loudness(audio: &mut Audio, target_lufs: f32) -> Result<()> {
    if !target_lufs.is_finite() || target_lufs > 0.0 {
        return Err(Error::invalid(
            "loudness_lufs",
            format!("must be a finite value <= 0, got {target_lufs}"),
        ));
    }
    let Some(measured) = integrated_loudness(audio) else {
        return Err(Error::AudioRejected(format!(
            "the loudness of this {:.2} s clip cannot be measured: it is silent or shorter than 0.4 s",
            seconds(audio)
        )));
    };
    let gain = 10f64.powf((target_lufs as f64 - measured) / 20.0) as f32;
    for s in &mut audio.samples {
        *s *= gain;
    }
    Ok(())
}

/// Look-ahead peak limiter: keeps `|x| <= ceiling` with a smooth gain that
/// only dips around the peaks (5 ms attack and hold), so the rest of the
/// clip keeps its level. A clip already under the ceiling is unchanged.
/// A non-finite or non-positive ceiling leaves the clip as it is.
pub fn limit_peak(audio: &mut Audio, ceiling: f32) {
    if !(ceiling.is_finite() && ceiling > 0.0) || audio.peak() <= ceiling {
        return;
    }
    let n = audio.samples.len();
    // Half-width of the look-ahead window in samples (5 ms, at least 1).
    let w = ((audio.sample_rate as usize * 5) / 1000).max(1);
    let need: Vec<f32> = audio
        .samples
        .iter()
        .map(|&x| {
            let a = x.abs();
            if a > ceiling { ceiling / a } else { 1.0 }
        })
        .collect();
    let held = sliding_min(&need, w);
    // Box-average the held gain over the same window: every value averaged
    // at sample i is at most need[i], so the average is too.
    let mut prefix = Vec::with_capacity(n + 1);
    prefix.push(0.0f64);
    for &g in &held {
        let last = prefix[prefix.len() - 1];
        prefix.push(last + g as f64);
    }
    for (i, s) in audio.samples.iter_mut().enumerate() {
        let lo = i.saturating_sub(w);
        let hi = (i + w + 1).min(n);
        let g = ((prefix[hi] - prefix[lo]) / (hi - lo) as f64) as f32;
        *s = (*s * g).clamp(-ceiling, ceiling);
    }
}

/// `out[i] = min(x[i-w ..= i+w])` (clipped to the bounds), in O(n).
fn sliding_min(x: &[f32], w: usize) -> Vec<f32> {
    let n = x.len();
    let mut out = vec![0.0f32; n];
    let mut dq: std::collections::VecDeque<usize> = std::collections::VecDeque::new();
    let mut next = 0usize; // next index to push
    for (i, o) in out.iter_mut().enumerate() {
        let hi = (i + w).min(n - 1);
        while next <= hi {
            while dq.back().is_some_and(|&b| x[b] >= x[next]) {
                dq.pop_back();
            }
            dq.push_back(next);
            next += 1;
        }
        while dq.front().is_some_and(|&f| f + w < i) {
            dq.pop_front();
        }
        *o = dq.front().map_or(1.0, |&f| x[f]);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sine(freq: f32, amp: f32, secs: f32, sr: u32) -> Vec<f32> {
        (0..(secs * sr as f32) as usize)
            .map(|i| amp * (2.0 * std::f32::consts::PI * freq * i as f32 / sr as f32).sin())
            .collect()
    }

    #[test]
    fn defaults_change_nothing() {
        let a = Audio::new(sine(300.0, 0.3, 0.5, 16000), 16000);
        assert_eq!(preprocess(a.clone(), &PreprocessOptions::default()).unwrap(), a);
    }

    #[test]
    fn dc_is_removed() {
        let mut a = Audio::new(
            sine(300.0, 0.3, 1.0, 16000).iter().map(|s| s + 0.2).collect(),
            16000,
        );
        remove_dc(&mut a);
        let mean: f64 = a.samples.iter().map(|&s| s as f64).sum::<f64>() / a.samples.len() as f64;
        assert!(mean.abs() < 1e-4);
    }

    #[test]
    fn loudness_reaches_target() {
        let mut a = Audio::new(sine(1000.0, 0.05, 2.0, 48000), 48000);
        normalize_loudness(&mut a, -23.0).unwrap();
        let l = integrated_loudness(&a).unwrap();
        assert!((l + 23.0).abs() < 0.1, "{l}");
        let mut silent = Audio::silence(1.0, 16000);
        assert!(matches!(
            normalize_loudness(&mut silent, -23.0),
            Err(Error::AudioRejected(_))
        ));
        assert!(normalize_loudness(&mut a, f32::NAN).is_err());
    }

    #[test]
    fn limiter_caps_peaks_and_leaves_the_rest() {
        let mut x = sine(200.0, 0.5, 1.0, 16000);
        x[8000] = 3.0;
        x[8001] = -2.5;
        let mut a = Audio::new(x.clone(), 16000);
        limit_peak(&mut a, 0.98);
        assert!(a.peak() <= 0.98 + 1e-6);
        // Far from the click the signal is untouched.
        for i in (0..7000).chain(9000..16000) {
            assert_eq!(a.samples[i], x[i]);
        }
        let mut quiet = Audio::new(sine(200.0, 0.5, 0.1, 16000), 16000);
        let before = quiet.clone();
        limit_peak(&mut quiet, 0.98);
        assert_eq!(quiet, before);
    }

    #[test]
    fn sliding_min_matches_naive() {
        let x: Vec<f32> = (0..50).map(|i| ((i * 37) % 11) as f32).collect();
        for w in [1usize, 3, 7, 60] {
            let fast = sliding_min(&x, w);
            for (i, &got) in fast.iter().enumerate() {
                let lo = i.saturating_sub(w);
                let hi = (i + w).min(x.len() - 1);
                let naive = x[lo..=hi].iter().cloned().fold(f32::INFINITY, f32::min);
                assert_eq!(got, naive, "w {w} i {i}");
            }
        }
    }

    #[test]
    fn duration_limits_name_the_limit() {
        let a = Audio::new(sine(300.0, 0.3, 2.0, 16000), 16000);
        let e = preprocess(
            a.clone(),
            &PreprocessOptions {
                max_seconds: Some(1.5),
                ..Default::default()
            },
        )
        .unwrap_err();
        assert!(
            matches!(e, Error::AudioRejected(_)) && e.to_string().contains("1.5 s"),
            "{e}"
        );
        let e = preprocess(
            a,
            &PreprocessOptions {
                min_seconds: Some(3.0),
                ..Default::default()
            },
        )
        .unwrap_err();
        assert!(e.to_string().contains("at least 3 s"), "{e}");
    }

    #[test]
    fn trimming_silence_only_is_rejected() {
        let e = preprocess(
            Audio::silence(1.0, 16000),
            &PreprocessOptions {
                trim_silence: true,
                ..Default::default()
            },
        )
        .unwrap_err();
        assert!(matches!(e, Error::AudioRejected(_)));
    }

    #[test]
    fn non_finite_samples_are_rejected() {
        let a = Audio::new(vec![0.0, f32::NAN], 16000);
        assert!(matches!(
            preprocess(a, &PreprocessOptions::default()),
            Err(Error::AudioRejected(_))
        ));
    }
}
