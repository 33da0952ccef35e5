//! Voices: validated ids, stored metadata, engine-specific profiles and the
//! reference audio they are made from.

use crate::audio::Audio;
use crate::error::{Error, Result};
use crate::kind::EngineKind;
use serde::{Deserialize, Serialize};

/// Longest accepted voice id, in bytes.
pub const MAX_VOICE_ID_LEN: usize = 64;

/// A voice id: 1–64 characters of letters, digits, `-`, `_` and `.`, not
/// starting with `.`, never `..`, no path separators or control characters.
/// Safe to use as a file name.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct VoiceId(String);

impl VoiceId {
    /// Validates and wraps an id.
    pub fn new(id: impl Into<String>) -> Result<Self> {
        let id = id.into();
        let bad = |reason: &str| {
            Err(Error::InvalidVoiceId {
                id: id.clone(),
                reason: reason.to_string(),
            })
        };
        if id.is_empty() {
            return bad("empty");
        }
        if id.len() > MAX_VOICE_ID_LEN {
            return bad(&format!("longer than {MAX_VOICE_ID_LEN} bytes"));
        }
        if id.contains("..") {
            return bad("contains '..'");
        }
        if id.starts_with('.') {
            return bad("starts with '.'");
        }
        if let Some(c) = id
            .chars()
            .find(|c| !(c.is_alphanumeric() || matches!(c, '-' | '_' | '.')))
        {
            return if c == '/' || c == '\\' {
                bad("contains a path separator")
            } else if c.is_control() {
                bad("contains a control character")
            } else {
                bad(&format!("contains {c:?}; use letters, digits, '-', '_' or '.'"))
            };
        }
        Ok(Self(id))
    }

    /// The id as a string.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for VoiceId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::str::FromStr for VoiceId {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        Self::new(s)
    }
}

impl<'de> Deserialize<'de> for VoiceId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        VoiceId::new(s).map_err(serde::de::Error::custom)
    }
}

/// Stored metadata of a voice.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Voice {
    /// Its id.
    pub id: VoiceId,
    /// A display name.
    pub name: String,
    /// Language of the reference, if known.
    pub language: Option<String>,
    /// Transcript of the reference, if given.
    pub transcript: Option<String>,
    /// Engines that already have a profile for this voice.
    pub engines: Vec<EngineKind>,
    /// Seconds of reference audio.
    pub reference_seconds: f32,
    /// Creation time, seconds since the Unix epoch.
    pub created_at: u64,
}

/// An engine's representation of a voice (embeddings, latents, prompt codes),
/// opaque to everything but the engine that made it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VoiceProfile {
    /// The engine that made it and can read it.
    pub engine: EngineKind,
    /// The engine's profile format version; engines refuse versions they do not read.
    pub format_version: u32,
    /// The encoded profile.
    pub data: Vec<u8>,
}

impl VoiceProfile {
    /// Checks that this profile belongs to `engine` at `version`.
    pub fn expect(&self, engine: EngineKind, version: u32) -> Result<&[u8]> {
        if self.engine != engine || self.format_version != version {
            return Err(Error::ProfileMismatch {
                expected: format!("{engine} v{version}"),
                found: format!("{} v{}", self.engine, self.format_version),
            });
        }
        Ok(&self.data)
    }
}

/// Reference audio for voice extraction.
#[derive(Debug, Clone, PartialEq)]
pub struct ReferenceAudio {
    /// The decoded audio, mono.
    pub audio: Audio,
    /// What is said in it, when known (GPT-SoVITS needs it).
    pub transcript: Option<String>,
    /// The language spoken, when known.
    pub language: Option<crate::Language>,
}

impl ReferenceAudio {
    /// Reference audio without transcript or language.
    pub fn new(audio: Audio) -> Self {
        Self {
            audio,
            transcript: None,
            language: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn voice_id_validation() {
        for ok in ["alice", "bob-2", "x_y.z", "Ünïcode", "a"] {
            assert!(VoiceId::new(ok).is_ok(), "{ok}");
        }
        let long = "a".repeat(65);
        for bad in [
            "",
            "..",
            "a/b",
            "a\\b",
            "../etc",
            ".hidden",
            "a\nb",
            "a\u{7}",
            "a b",
            long.as_str(),
            "a..b",
        ] {
            let e = VoiceId::new(bad).unwrap_err();
            assert_eq!(e.code(), "invalid_voice_id", "{bad:?}");
        }
        assert!(
            VoiceId::new("a/b")
                .unwrap_err()
                .to_string()
                .contains("path separator")
        );
        assert!(
            VoiceId::new("a\u{1}")
                .unwrap_err()
                .to_string()
                .contains("control")
        );
    }

    #[test]
    fn voice_id_serde_validates() {
        let v: VoiceId = serde_json::from_str("\"alice\"").unwrap();
        assert_eq!(v.as_str(), "alice");
        assert!(serde_json::from_str::<VoiceId>("\"../x\"").is_err());
    }

    #[test]
    fn profile_expect_checks_engine_and_version() {
        let p = VoiceProfile {
            engine: EngineKind::OpenVoice,
            format_version: 1,
            data: vec![1],
        };
        assert!(p.expect(EngineKind::OpenVoice, 1).is_ok());
        assert_eq!(
            p.expect(EngineKind::Xtts, 1).unwrap_err().code(),
            "profile_mismatch"
        );
        assert_eq!(
            p.expect(EngineKind::OpenVoice, 2).unwrap_err().code(),
            "profile_mismatch"
        );
    }
}
