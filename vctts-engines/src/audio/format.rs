//! The audio formats vctts can write, with their names, file extensions,
//! MIME types and the sample rates each codec accepts.
//!
//! Invariants: every [`AudioFormat`] has exactly one canonical name
//! ([`AudioFormat::name`], the value APIs send and accept) and one canonical
//! file extension; [`AudioFormat::parse`] accepts the canonical names plus
//! the aliases clients use (`ogg`, `mpeg`, `adts`, `s16le`, ...) and
//! [`AudioFormat::from_extension`] the usual extensions, both
//! case-insensitively; neither ever panics. The encoders themselves live in
//! [`super::encoders`].

use std::fmt;
use std::path::Path;

use vctts_core::OutputFormat;

/// An output audio format. All of them are mono.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum AudioFormat {
    /// RIFF WAV, 16-bit PCM.
    #[default]
    Wav,
    /// RIFF WAV, 32-bit IEEE float.
    WavF32,
    /// Raw signed 16-bit little-endian PCM, no header.
    Pcm,
    /// MPEG-1/2/2.5 Layer III.
    Mp3,
    /// Opus in an Ogg container (RFC 7845), coded at 48 kHz.
    Opus,
    /// AAC-LC in ADTS framing (a `.aac` elementary stream).
    Aac,
    /// FLAC, 16-bit.
    Flac,
}

/// MPEG-1 (32–48 kHz), MPEG-2 (16–24 kHz) and MPEG-2.5 (8–12 kHz) Layer III rates.
pub const MP3_RATES: [u32; 9] = [8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100, 48000];

/// The sampling frequencies of the AAC sampling-frequency index table.
pub const AAC_RATES: [u32; 13] = [
    7350, 8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100, 48000, 64000, 88200, 96000,
];

/// The rate every Ogg Opus stream is coded and decoded at.
pub const OPUS_RATE: u32 = 48_000;

/// Highest rate the FLAC frame header can state.
pub const FLAC_MAX_RATE: u32 = 655_350;

impl AudioFormat {
    /// Every format, in a stable order (the order of API enums).
    pub const ALL: [AudioFormat; 7] = [
        AudioFormat::Wav,
        AudioFormat::WavF32,
        AudioFormat::Pcm,
        AudioFormat::Mp3,
        AudioFormat::Opus,
        AudioFormat::Aac,
        AudioFormat::Flac,
    ];

    /// The canonical name: `wav`, `wav_f32`, `pcm`, `mp3`, `opus`, `aac`, `flac`
    /// (OpenAI's `response_format` values are a subset).
    pub fn name(self) -> &'static str {
        match self {
            AudioFormat::Wav => "wav",
            AudioFormat::WavF32 => "wav_f32",
            AudioFormat::Pcm => "pcm",
            AudioFormat::Mp3 => "mp3",
            AudioFormat::Opus => "opus",
            AudioFormat::Aac => "aac",
            AudioFormat::Flac => "flac",
        }
    }

    /// Parses a format name, case-insensitively: the canonical names and the
    /// aliases `wave`, `wavf32`, `raw`, `s16le`, `pcm_s16le`, `mpeg`, `ogg`,
    /// `oga`, `ogg_opus`, `adts`. `None` for anything else.
    pub fn parse(s: &str) -> Option<Self> {
        let lower = s.trim().to_ascii_lowercase();
        Some(match lower.as_str() {
            "wav" | "wave" => AudioFormat::Wav,
            "wav_f32" | "wavf32" => AudioFormat::WavF32,
            "pcm" | "raw" | "s16le" | "pcm_s16le" => AudioFormat::Pcm,
            "mp3" | "mpeg" => AudioFormat::Mp3,
            "opus" | "ogg" | "oga" | "ogg_opus" => AudioFormat::Opus,
            "aac" | "adts" => AudioFormat::Aac,
            "flac" => AudioFormat::Flac,
            _ => return None,
        })
    }

    /// The format a file extension names (with or without the leading dot,
    /// any case): `wav`/`wave`, `pcm`/`raw`, `mp3`, `opus`/`ogg`/`oga`,
    /// `aac`, `flac`. `wav` maps to 16-bit [`AudioFormat::Wav`].
    pub fn from_extension(ext: &str) -> Option<Self> {
        let ext = ext.strip_prefix('.').unwrap_or(ext);
        match ext.to_ascii_lowercase().as_str() {
            "wav" | "wave" => Some(AudioFormat::Wav),
            "pcm" | "raw" => Some(AudioFormat::Pcm),
            "mp3" => Some(AudioFormat::Mp3),
            "opus" | "ogg" | "oga" => Some(AudioFormat::Opus),
            "aac" => Some(AudioFormat::Aac),
            "flac" => Some(AudioFormat::Flac),
            _ => None,
        }
    }

    /// The format a path's extension names (`out.MP3` is mp3); `None` when
    /// the path has no extension or an unknown one.
    pub fn from_path(path: &Path) -> Option<Self> {
        path.extension()
            .and_then(|e| e.to_str())
            .and_then(Self::from_extension)
    }

    /// The canonical file extension, without the dot.
    pub fn extension(self) -> &'static str {
        match self {
            AudioFormat::Wav | AudioFormat::WavF32 => "wav",
            AudioFormat::Pcm => "pcm",
            AudioFormat::Mp3 => "mp3",
            AudioFormat::Opus => "opus",
            AudioFormat::Aac => "aac",
            AudioFormat::Flac => "flac",
        }
    }

    /// The MIME type without parameters: `audio/wav`, `audio/pcm`,
    /// `audio/mpeg`, `audio/ogg`, `audio/aac`, `audio/flac`.
    pub fn mime_type(self) -> &'static str {
        match self {
            AudioFormat::Wav | AudioFormat::WavF32 => "audio/wav",
            AudioFormat::Pcm => "audio/pcm",
            AudioFormat::Mp3 => "audio/mpeg",
            AudioFormat::Opus => "audio/ogg",
            AudioFormat::Aac => "audio/aac",
            AudioFormat::Flac => "audio/flac",
        }
    }

    /// The HTTP `Content-Type` of a stream at `sample_rate` (the rate of the
    /// encoded audio, [`super::StreamEncoder::output_rate`]): the MIME type,
    /// with `;rate=<rate>` for raw PCM (whose bytes do not say their rate)
    /// and `;codecs=opus` for Opus.
    pub fn content_type(self, sample_rate: u32) -> String {
        match self {
            AudioFormat::Pcm => format!("audio/pcm;rate={sample_rate}"),
            AudioFormat::Opus => "audio/ogg;codecs=opus".to_string(),
            other => other.mime_type().to_string(),
        }
    }

    /// Whether a [`super::StreamEncoder`] hands out bytes before `finish`.
    /// False only for AAC, whose encoder decides its window shapes over the
    /// whole clip and so writes every frame at the end.
    pub fn streams_incrementally(self) -> bool {
        !matches!(self, AudioFormat::Aac)
    }

    /// Whether the format loses information (mp3, opus, aac).
    pub fn is_lossy(self) -> bool {
        matches!(self, AudioFormat::Mp3 | AudioFormat::Opus | AudioFormat::Aac)
    }
}

impl fmt::Display for AudioFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for AudioFormat {
    type Err = vctts_core::Error;

    /// [`AudioFormat::parse`], with an [`vctts_core::Error::InvalidInput`]
    /// on field `format` naming the accepted values.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s).ok_or_else(|| {
            vctts_core::Error::invalid(
                "format",
                format!(
                    "unknown audio format {s:?}; expected one of wav, wav_f32, pcm, mp3, opus, aac, flac"
                ),
            )
        })
    }
}

impl serde::Serialize for AudioFormat {
    /// The canonical name.
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

impl<'de> serde::Deserialize<'de> for AudioFormat {
    /// Any name [`AudioFormat::parse`] accepts.
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        Self::parse(&s).ok_or_else(|| {
            serde::de::Error::invalid_value(
                serde::de::Unexpected::Str(&s),
                &"one of wav, wav_f32, pcm, mp3, opus, aac, flac",
            )
        })
    }
}

impl From<OutputFormat> for AudioFormat {
    fn from(f: OutputFormat) -> Self {
        match f {
            OutputFormat::Wav => AudioFormat::Wav,
            OutputFormat::WavF32 => AudioFormat::WavF32,
            OutputFormat::Pcm => AudioFormat::Pcm,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for f in AudioFormat::ALL {
            assert_eq!(AudioFormat::parse(f.name()), Some(f));
            assert_eq!(f.name().parse::<AudioFormat>().unwrap(), f);
            assert_eq!(f.to_string(), f.name());
        }
        assert_eq!(AudioFormat::parse(" MP3 "), Some(AudioFormat::Mp3));
        assert_eq!(AudioFormat::parse("ogg"), Some(AudioFormat::Opus));
        assert_eq!(AudioFormat::parse("adts"), Some(AudioFormat::Aac));
        assert_eq!(AudioFormat::parse("s16le"), Some(AudioFormat::Pcm));
        assert_eq!(AudioFormat::parse("vorbis"), None);
        assert_eq!(AudioFormat::parse(""), None);
        let e = "m4a".parse::<AudioFormat>().unwrap_err();
        assert_eq!(e.code(), "invalid_input");
    }

    #[test]
    fn extensions_round_trip() {
        for f in AudioFormat::ALL {
            let back = AudioFormat::from_extension(f.extension()).unwrap();
            // wav_f32 shares `.wav`, which means 16-bit.
            let expect = if f == AudioFormat::WavF32 {
                AudioFormat::Wav
            } else {
                f
            };
            assert_eq!(back, expect);
        }
        assert_eq!(AudioFormat::from_extension(".OGG"), Some(AudioFormat::Opus));
        assert_eq!(
            AudioFormat::from_path(Path::new("out/Speech.Mp3")),
            Some(AudioFormat::Mp3)
        );
        assert_eq!(AudioFormat::from_path(Path::new("speech")), None);
        assert_eq!(AudioFormat::from_path(Path::new("a.m4a")), None);
    }

    #[test]
    fn serde_uses_the_names() {
        let v = serde_json::to_value(AudioFormat::WavF32).unwrap();
        assert_eq!(v, serde_json::json!("wav_f32"));
        let f: AudioFormat = serde_json::from_str("\"OGG\"").unwrap();
        assert_eq!(f, AudioFormat::Opus);
        assert!(serde_json::from_str::<AudioFormat>("\"m4a\"").is_err());
    }

    #[test]
    fn mime_types() {
        assert_eq!(AudioFormat::Mp3.mime_type(), "audio/mpeg");
        assert_eq!(AudioFormat::Flac.content_type(22050), "audio/flac");
        assert_eq!(AudioFormat::Pcm.content_type(24000), "audio/pcm;rate=24000");
        assert_eq!(AudioFormat::Opus.content_type(48000), "audio/ogg;codecs=opus");
        assert!(!AudioFormat::Aac.streams_incrementally());
        assert!(AudioFormat::Opus.streams_incrementally() && AudioFormat::Opus.is_lossy());
        assert_eq!(AudioFormat::from(OutputFormat::WavF32), AudioFormat::WavF32);
    }
}
