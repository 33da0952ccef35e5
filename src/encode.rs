//! Encoding by output format: the one place where finished audio becomes the
//! bytes a caller asked for, with the content type that names them.
//!
//! Invariant: engines never encode; the output format belongs to this step.

use std::time::Duration;
use vctts_core::{Audio, OutputFormat};
use vctts_engines::audio::encode as enc;

/// Encoded audio and what describes it.
#[derive(Debug, Clone, PartialEq)]
pub struct Encoded {
    /// The file (or raw PCM) bytes.
    pub bytes: Vec<u8>,
    /// Its MIME type (`audio/wav`, `audio/pcm;rate=22050`, ...).
    pub content_type: String,
    /// Sample rate of the audio.
    pub sample_rate: u32,
    /// Length of the audio.
    pub duration: Duration,
}

/// Encodes `audio` as `format`.
///
/// ```
/// use vctts::{Audio, OutputFormat};
/// let audio = Audio::new(vec![0.0, 0.5, -0.5, 0.0], 8_000);
/// let wav = vctts::encode(&audio, OutputFormat::Wav);
/// assert_eq!(&wav.bytes[..4], b"RIFF");
/// assert_eq!(wav.content_type, "audio/wav");
/// let pcm = vctts::encode(&audio, OutputFormat::Pcm);
/// assert_eq!(pcm.bytes.len(), 8); // 16-bit samples, no header
/// ```
pub fn encode(audio: &Audio, format: OutputFormat) -> Encoded {
    Encoded {
        bytes: enc::encode(audio, format),
        content_type: enc::content_type(format, audio.sample_rate),
        sample_rate: audio.sample_rate,
        duration: audio.duration(),
    }
}
