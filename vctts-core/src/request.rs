//! Synthesis requests as engines receive them (the HTTP wire types live in
//! the server crate).
//!
//! Invariant: the engine-facing [`SynthesisRequest`] says what to speak and
//! how, never how to encode it: [`OutputFormat`] travels beside it to the
//! place that encodes (the worker or the library's encoder), so an engine
//! cannot depend on it. Its one check against an engine is
//! [`crate::EngineInfo::check_request`].

use crate::language::Language;
use crate::voice::VoiceId;
use serde::{Deserialize, Serialize};

/// Output encoding the caller asked for, kept apart from the engine-facing
/// request: engines produce [`crate::Audio`]; the encoder at the edge applies
/// the format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OutputFormat {
    /// RIFF WAV, 16-bit PCM.
    #[default]
    Wav,
    /// RIFF WAV, 32-bit float.
    WavF32,
    /// Raw signed 16-bit little-endian PCM.
    Pcm,
}

impl OutputFormat {
    /// Parses `wav`, `wav_f32` or `pcm`.
    pub fn parse(s: &str) -> Option<Self> {
        match s.to_ascii_lowercase().as_str() {
            "wav" => Some(Self::Wav),
            "wav_f32" | "wavf32" => Some(Self::WavF32),
            "pcm" => Some(Self::Pcm),
            _ => None,
        }
    }
}

/// Sampling and noise parameters. `None` means "the engine's default" (each
/// engine documents its own).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SamplingParams {
    /// Softmax temperature (autoregressive engines).
    pub temperature: Option<f32>,
    /// Keep the k most likely tokens.
    pub top_k: Option<usize>,
    /// Nucleus sampling threshold.
    pub top_p: Option<f32>,
    /// Repetition penalty (> 1 discourages repeats).
    pub repetition_penalty: Option<f32>,
    /// VITS noise scale.
    pub noise_scale: Option<f32>,
    /// VITS duration noise scale.
    pub noise_scale_w: Option<f32>,
    /// OpenVoice converter temperature `tau`.
    pub tau: Option<f32>,
}

/// What to say and how.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SynthesisRequest {
    /// The text to speak.
    pub text: String,
    /// The language; `None` means the engine's default.
    pub language: Option<Language>,
    /// The voice: a stored voice (the caller passes its profile) or an
    /// engine's built-in voice name; `None` means the engine's default voice.
    pub voice: Option<VoiceId>,
    /// Speaking rate, 1.0 is normal (0.25–4.0).
    pub speed: f32,
    /// Sampling parameters.
    pub sampling: SamplingParams,
    /// Seed for every random choice; the same seed gives the same audio.
    pub seed: Option<u64>,
}

impl SynthesisRequest {
    /// A request with defaults for everything but the text.
    pub fn new(text: impl Into<String>) -> Self {
        Self {
            text: text.into(),
            language: None,
            voice: None,
            speed: 1.0,
            sampling: SamplingParams::default(),
            seed: None,
        }
    }

    /// Sets the language from a tag (`en`, `en-US`); a malformed tag is an
    /// `invalid_input` error naming `language`.
    pub fn with_language(mut self, tag: &str) -> crate::Result<Self> {
        self.language = Some(Language::parse(tag)?);
        Ok(self)
    }

    /// The fields every engine agrees on: non-empty text, speed range,
    /// parameter ranges. Part of [`crate::EngineInfo::check_request`], which
    /// adds the engine's own limits.
    pub fn check_fields(&self) -> crate::Result<()> {
        use crate::Error;
        if self.text.trim().is_empty() {
            return Err(Error::EmptyText);
        }
        if !(0.25..=4.0).contains(&self.speed) || !self.speed.is_finite() {
            return Err(Error::invalid(
                "speed",
                format!("must be between 0.25 and 4.0, got {}", self.speed),
            ));
        }
        let s = &self.sampling;
        let check = |name: &str, v: Option<f32>, lo: f32, hi: f32| -> crate::Result<()> {
            match v {
                Some(x) if !(lo..=hi).contains(&x) || !x.is_finite() => Err(Error::invalid(
                    name,
                    format!("must be between {lo} and {hi}, got {x}"),
                )),
                _ => Ok(()),
            }
        };
        check("temperature", s.temperature, 0.01, 5.0)?;
        check("top_p", s.top_p, 0.0, 1.0)?;
        check("repetition_penalty", s.repetition_penalty, 0.1, 20.0)?;
        check("noise_scale", s.noise_scale, 0.0, 2.0)?;
        check("noise_scale_w", s.noise_scale_w, 0.0, 2.0)?;
        check("tau", s.tau, 0.0, 1.0)?;
        if s.top_k == Some(0) {
            return Err(Error::invalid("top_k", "must be at least 1"));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validate_catches_bad_fields() {
        assert!(SynthesisRequest::new("hi").check_fields().is_ok());
        assert_eq!(
            SynthesisRequest::new("  \n").check_fields().unwrap_err().code(),
            "empty_text"
        );
        let mut r = SynthesisRequest::new("hi");
        r.speed = 0.0;
        assert!(r.check_fields().unwrap_err().to_string().contains("speed"));
        let mut r = SynthesisRequest::new("hi");
        r.sampling.tau = Some(3.0);
        assert!(r.check_fields().unwrap_err().to_string().contains("tau"));
        let mut r = SynthesisRequest::new("hi");
        r.sampling.top_k = Some(0);
        assert!(r.check_fields().is_err());
        let mut r = SynthesisRequest::new("hi");
        r.speed = f32::NAN;
        assert!(r.check_fields().is_err());
    }

    #[test]
    fn with_language_parses_the_tag() {
        let r = SynthesisRequest::new("hi").with_language("en_us").unwrap();
        assert_eq!(r.language.unwrap().as_str(), "en-US");
        assert_eq!(
            SynthesisRequest::new("hi")
                .with_language("??")
                .unwrap_err()
                .code(),
            "invalid_input"
        );
    }

    #[test]
    fn output_format_parse() {
        assert_eq!(OutputFormat::parse("WAV"), Some(OutputFormat::Wav));
        assert_eq!(OutputFormat::parse("pcm"), Some(OutputFormat::Pcm));
        assert_eq!(OutputFormat::parse("mp3"), None);
    }
}
