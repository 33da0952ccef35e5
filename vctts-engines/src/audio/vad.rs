//! Energy-based voice activity detection: where in a clip someone speaks.
//!
//! The clip is cut into frames of `frame_ms`; each frame's energy is taken
//! in dB. The "loud" level is the 99th percentile of frame energies (robust
//! to a lone click), the noise floor the 10th percentile. A frame is speech
//! when it is above all of
//! - `loud + threshold_db` (relative to the clip's loud frames),
//! - `floor + `[`NOISE_MARGIN_DB`] (above the clip's own noise),
//! - [`ABSOLUTE_FLOOR_DBFS`] (digital silence is never speech).
//!
//! Runs of speech separated by less than `min_silence_ms` are merged, runs
//! shorter than `min_speech_ms` dropped, and the rest padded by `pad_ms`.
//!
//! Invariants: ranges are sorted, disjoint, non-empty and within
//! `0..samples.len()`; an all-zero clip, a clip of steady noise (whose loud
//! and floor levels are within the margin) and an empty clip give no
//! segments; the result depends only on the samples, the rate and the config.

use std::ops::Range;

use vctts_core::Audio;

/// Frames quieter than this (dB relative to full scale) are never speech.
pub const ABSOLUTE_FLOOR_DBFS: f32 = -60.0;
/// Speech must rise this far above the clip's noise floor.
pub const NOISE_MARGIN_DB: f32 = 10.0;

/// Detector settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct VadConfig {
    /// Analysis frame length in milliseconds.
    pub frame_ms: f32,
    /// Speech threshold relative to the loud frames, in dB (negative).
    pub threshold_db: f32,
    /// Shorter bursts are not speech.
    pub min_speech_ms: f32,
    /// Shorter pauses do not split speech.
    pub min_silence_ms: f32,
    /// Kept around each segment.
    pub pad_ms: f32,
}

impl Default for VadConfig {
    /// 20 ms frames, 35 dB below the loud frames, 100 ms minimum speech,
    /// 300 ms minimum pause, 50 ms padding.
    fn default() -> Self {
        Self {
            frame_ms: 20.0,
            threshold_db: -35.0,
            min_speech_ms: 100.0,
            min_silence_ms: 300.0,
            pad_ms: 50.0,
        }
    }
}

fn ms_to_samples(ms: f32, rate: u32) -> usize {
    if !ms.is_finite() || ms <= 0.0 {
        return 0;
    }
    (ms as f64 * rate as f64 / 1000.0).round() as usize
}

fn percentile(sorted: &[f32], q: f32) -> f32 {
    let idx = ((sorted.len() - 1) as f32 * q).round() as usize;
    sorted[idx.min(sorted.len() - 1)]
}

/// Energy of each frame in dBFS (`10 log10(mean square)`, floored at -120).
pub fn frame_energies_db(samples: &[f32], frame_len: usize) -> Vec<f32> {
    if frame_len == 0 {
        return Vec::new();
    }
    samples
        .chunks(frame_len)
        .map(|f| {
            let ms = f.iter().map(|&s| (s as f64) * (s as f64)).sum::<f64>() / f.len() as f64;
            if ms.is_finite() {
                (10.0 * ms.max(1e-12).log10()) as f32
            } else {
                0.0
            }
        })
        .collect()
}

/// Sample ranges where speech is, in order.
pub fn speech_segments(audio: &Audio, cfg: &VadConfig) -> Vec<Range<usize>> {
    let n = audio.samples.len();
    if n == 0 || audio.sample_rate == 0 {
        return Vec::new();
    }
    let frame_len = ms_to_samples(cfg.frame_ms, audio.sample_rate).max(1);
    let db = frame_energies_db(&audio.samples, frame_len);
    let mut sorted = db.clone();
    sorted.sort_unstable_by(f32::total_cmp);
    let loud = percentile(&sorted, 0.99);
    let floor = percentile(&sorted, 0.10);
    let rel = if cfg.threshold_db.is_finite() {
        cfg.threshold_db
    } else {
        -35.0
    };
    let threshold = (loud + rel).max(floor + NOISE_MARGIN_DB).max(ABSOLUTE_FLOOR_DBFS);
    if loud <= threshold {
        return Vec::new();
    }

    // Runs of speech frames, as frame ranges.
    let mut runs: Vec<Range<usize>> = Vec::new();
    let mut start = None;
    for (i, &e) in db.iter().enumerate() {
        match (e > threshold, start) {
            (true, None) => start = Some(i),
            (false, Some(s)) => {
                runs.push(s..i);
                start = None;
            }
            _ => {}
        }
    }
    if let Some(s) = start {
        runs.push(s..db.len());
    }

    let min_gap = ms_to_samples(cfg.min_silence_ms, audio.sample_rate).div_ceil(frame_len);
    let min_len = ms_to_samples(cfg.min_speech_ms, audio.sample_rate).div_ceil(frame_len);
    let mut merged: Vec<Range<usize>> = Vec::with_capacity(runs.len());
    for r in runs {
        match merged.last_mut() {
            Some(last) if r.start - last.end < min_gap => last.end = r.end,
            _ => merged.push(r),
        }
    }
    merged.retain(|r| r.len() >= min_len.max(1));

    let pad = ms_to_samples(cfg.pad_ms, audio.sample_rate);
    let mut out: Vec<Range<usize>> = Vec::with_capacity(merged.len());
    for r in merged {
        let s = (r.start * frame_len).saturating_sub(pad);
        let e = (r.end * frame_len).saturating_add(pad).min(n);
        match out.last_mut() {
            Some(last) if s <= last.end => last.end = last.end.max(e),
            _ => out.push(s..e),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A 440 Hz tone gated on during `on` (seconds) in a clip of `len` seconds,
    /// over low noise.
    fn gated(len: f32, on: &[(f32, f32)], noise: f32) -> Audio {
        let sr = 16000u32;
        let n = (len * sr as f32) as usize;
        let mut state = 0x1234_5678u32;
        let samples = (0..n)
            .map(|i| {
                state ^= state << 13;
                state ^= state >> 17;
                state ^= state << 5;
                let r = (state as f32 / u32::MAX as f32) * 2.0 - 1.0;
                let t = i as f32 / sr as f32;
                let voiced = on.iter().any(|&(a, b)| t >= a && t < b);
                let tone = if voiced {
                    0.5 * (2.0 * std::f32::consts::PI * 440.0 * t).sin()
                } else {
                    0.0
                };
                tone + noise * r
            })
            .collect();
        Audio::new(samples, sr)
    }

    #[test]
    fn silence_and_steady_noise_have_no_speech() {
        let cfg = VadConfig::default();
        assert!(speech_segments(&Audio::silence(2.0, 16000), &cfg).is_empty());
        assert!(speech_segments(&gated(2.0, &[], 0.05), &cfg).is_empty());
        assert!(speech_segments(&Audio::new(vec![], 16000), &cfg).is_empty());
    }

    #[test]
    fn finds_gated_bursts_with_padding() {
        let a = gated(3.0, &[(0.5, 1.0), (2.0, 2.5)], 0.001);
        let segs = speech_segments(&a, &VadConfig::default());
        assert_eq!(segs.len(), 2, "{segs:?}");
        let secs = |r: &Range<usize>| (r.start as f32 / 16000.0, r.end as f32 / 16000.0);
        let (s0, e0) = secs(&segs[0]);
        assert!((s0 - 0.45).abs() < 0.03 && (e0 - 1.05).abs() < 0.03, "{s0} {e0}");
        let (s1, e1) = secs(&segs[1]);
        assert!((s1 - 1.95).abs() < 0.03 && (e1 - 2.55).abs() < 0.03, "{s1} {e1}");
    }

    #[test]
    fn short_pauses_merge_and_short_bursts_drop() {
        let a = gated(3.0, &[(0.5, 1.0), (1.1, 1.5), (2.5, 2.54)], 0.001);
        let segs = speech_segments(&a, &VadConfig::default());
        assert_eq!(segs.len(), 1, "{segs:?}");
        assert!(segs[0].start < 8000 && segs[0].end > 24000);
    }

    #[test]
    fn segments_are_sorted_disjoint_and_in_bounds() {
        let a = gated(2.0, &[(0.0, 0.3), (0.7, 0.9), (1.5, 2.0)], 0.002);
        let cfg = VadConfig {
            pad_ms: 400.0,
            ..Default::default()
        };
        let segs = speech_segments(&a, &cfg);
        assert!(!segs.is_empty());
        for w in segs.windows(2) {
            assert!(w[0].end < w[1].start);
        }
        assert!(segs.iter().all(|r| !r.is_empty() && r.end <= a.samples.len()));
    }
}
