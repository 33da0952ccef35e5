//! A quality report on a reference clip: how much speech it holds, whether
//! it clips, how noisy and loud it is, with warnings a person can act on.
//!
//! Measures:
//! - speech: the [`super::vad`] segments with the default config;
//! - clipping: the share of samples at or above [`CLIP_LEVEL`];
//! - SNR: mean power of the speech samples over that of the rest (`None`
//!   when either part is missing; capped at 100 dB for digital silence);
//! - loudness: EBU R128 integrated (`None` when unmeasurable).
//!
//! Invariants: never fails, any clip gets a report; all numbers are finite;
//! warnings are full sentences, each with the number that triggered it.

use serde::Serialize;
use vctts_core::Audio;

use super::preprocess::integrated_loudness;
use super::vad::{VadConfig, speech_segments};

/// Samples at or above this magnitude count as clipped.
pub const CLIP_LEVEL: f32 = 0.999;
/// Less speech than this draws a warning.
pub const MIN_GOOD_SPEECH_SECONDS: f32 = 6.0;
/// A larger share of clipped samples draws a warning.
pub const MAX_CLIPPING_RATIO: f32 = 0.001;
/// A lower SNR draws a warning.
pub const MIN_GOOD_SNR_DB: f32 = 15.0;
/// A quieter clip draws a warning.
pub const MIN_LOUDNESS_LUFS: f32 = -40.0;
/// A lower sample rate draws a warning.
pub const MIN_GOOD_SAMPLE_RATE: u32 = 16_000;

/// What [`analyze`] found.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct QualityReport {
    /// Length of the clip.
    pub duration_seconds: f32,
    /// Length of the detected speech.
    pub speech_seconds: f32,
    /// `speech_seconds / duration_seconds` (0 for an empty clip).
    pub speech_ratio: f32,
    /// Share of samples at full scale.
    pub clipping_ratio: f32,
    /// Speech-to-noise ratio in dB.
    pub snr_db: Option<f32>,
    /// Largest absolute sample.
    pub peak: f32,
    /// RMS level in dBFS (floored at -120).
    pub rms_dbfs: f32,
    /// EBU R128 integrated loudness.
    pub loudness_lufs: Option<f32>,
    /// Rate of the clip.
    pub sample_rate: u32,
    /// Human-readable problems, empty when the clip looks good.
    pub warnings: Vec<String>,
}

fn db(power: f64) -> f32 {
    (10.0 * power.max(1e-12).log10()) as f32
}

/// Measures a clip.
pub fn analyze(audio: &Audio) -> QualityReport {
    let n = audio.samples.len();
    let rate = audio.sample_rate.max(1) as f32;
    let finite = |s: f32| if s.is_finite() { s } else { 0.0 };
    let duration = n as f32 / rate;
    let segs = speech_segments(audio, &VadConfig::default());
    let speech_n: usize = segs.iter().map(|r| r.len()).sum();
    let speech_seconds = speech_n as f32 / rate;

    let (mut sp, mut np) = (0.0f64, 0.0f64);
    let mut clipped = 0usize;
    let mut peak = 0.0f32;
    let mut total = 0.0f64;
    let mut seg = segs.iter().peekable();
    for (i, &s) in audio.samples.iter().enumerate() {
        let s = finite(s);
        let a = s.abs();
        peak = peak.max(a);
        if a >= CLIP_LEVEL {
            clipped += 1;
        }
        let p = (s as f64) * (s as f64);
        total += p;
        while seg.peek().is_some_and(|r| r.end <= i) {
            seg.next();
        }
        if seg.peek().is_some_and(|r| r.contains(&i)) {
            sp += p;
        } else {
            np += p;
        }
    }
    let noise_n = n - speech_n;
    let snr_db = (speech_n > 0 && noise_n > 0).then(|| {
        let ps = sp / speech_n as f64;
        let pn = np / noise_n as f64;
        if pn <= 1e-12 {
            100.0
        } else {
            // Speech frames hold speech plus noise: subtract the noise part.
            db(((ps - pn) / pn).max(1e-2)).clamp(-20.0, 100.0)
        }
    });
    let rms_dbfs = if n == 0 {
        -120.0
    } else {
        db(total / n as f64).max(-120.0)
    };
    let clipping_ratio = if n == 0 { 0.0 } else { clipped as f32 / n as f32 };
    let loudness_lufs = integrated_loudness(audio).map(|l| l as f32);

    let mut warnings = Vec::new();
    if n == 0 {
        warnings.push("the clip is empty".to_string());
    } else if speech_n == 0 {
        warnings.push("no speech detected: the clip is silent or only noise".to_string());
    } else if speech_seconds < MIN_GOOD_SPEECH_SECONDS {
        warnings.push(format!(
            "only {speech_seconds:.1} s of speech; {MIN_GOOD_SPEECH_SECONDS:.0} s or more clones better"
        ));
    }
    if clipping_ratio > MAX_CLIPPING_RATIO {
        warnings.push(format!("{:.1}% of samples are clipped", clipping_ratio * 100.0));
    }
    if let Some(snr) = snr_db {
        if snr < MIN_GOOD_SNR_DB {
            warnings.push(format!("low SNR ({snr:.0} dB); record in a quieter place"));
        }
    }
    if let Some(l) = loudness_lufs {
        if l < MIN_LOUDNESS_LUFS {
            warnings.push(format!(
                "very quiet ({l:.0} LUFS); record closer to the microphone"
            ));
        }
    }
    if audio.sample_rate < MIN_GOOD_SAMPLE_RATE {
        warnings.push(format!(
            "low sample rate ({} Hz); {} kHz or more clones better",
            audio.sample_rate,
            MIN_GOOD_SAMPLE_RATE / 1000
        ));
    }

    QualityReport {
        duration_seconds: duration,
        speech_seconds,
        speech_ratio: if n == 0 { 0.0 } else { speech_n as f32 / n as f32 },
        clipping_ratio,
        snr_db,
        peak,
        rms_dbfs,
        loudness_lufs,
        sample_rate: audio.sample_rate,
        warnings,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bursts(secs: f32, amp: f32, noise: f32, sr: u32) -> Audio {
        let mut state = 0x9e37_79b9u32;
        let n = (secs * sr as f32) as usize;
        let samples = (0..n)
            .map(|i| {
                state ^= state << 13;
                state ^= state >> 17;
                state ^= state << 5;
                let r = (state as f32 / u32::MAX as f32) * 2.0 - 1.0;
                let t = i as f32 / sr as f32;
                // 0.6 s on, 0.4 s off.
                let on = t.fract() < 0.6;
                let tone = if on {
                    amp * (2.0 * std::f32::consts::PI * 220.0 * t).sin()
                } else {
                    0.0
                };
                tone + noise * r
            })
            .collect();
        Audio::new(samples, sr)
    }

    #[test]
    fn clean_long_speech_has_no_warnings() {
        let r = analyze(&bursts(10.0, 0.3, 0.0005, 22050));
        assert!(r.warnings.is_empty(), "{:?}", r.warnings);
        assert!((r.speech_seconds - 6.0).abs() < 1.0, "{}", r.speech_seconds);
        assert!(r.snr_db.unwrap() > 40.0);
        assert!(r.loudness_lufs.is_some());
        assert!(serde_json::to_string(&r).unwrap().contains("\"speech_seconds\""));
    }

    #[test]
    fn warns_about_short_clipped_noisy_quiet_low_rate() {
        let mut a = bursts(2.0, 0.3, 0.1, 8000);
        for s in a.samples.iter_mut().take(400) {
            *s = 1.0;
        }
        let r = analyze(&a);
        let all = format!("{} | {r:?}", r.warnings.join(" | "));
        assert!(all.contains("s of speech; 6 s or more clones better"), "{all}");
        assert!(all.contains("% of samples are clipped"), "{all}");
        assert!(all.contains("low SNR"), "{all}");
        assert!(all.contains("low sample rate (8000 Hz)"), "{all}");
        let quiet = analyze(&bursts(3.0, 0.003, 0.0, 16000));
        assert!(
            quiet.warnings.iter().any(|w| w.contains("very quiet")),
            "{:?}",
            quiet.warnings
        );
    }

    #[test]
    fn silence_and_empty() {
        let r = analyze(&Audio::silence(1.0, 16000));
        assert_eq!(r.speech_seconds, 0.0);
        assert!(r.snr_db.is_none());
        assert_eq!(r.rms_dbfs, -120.0);
        assert!(r.warnings[0].contains("no speech"));
        let r = analyze(&Audio::new(vec![], 16000));
        assert_eq!(r.duration_seconds, 0.0);
        assert!(r.warnings[0].contains("empty"));
    }
}
