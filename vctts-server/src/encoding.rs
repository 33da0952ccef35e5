//! The output encoding of every synthesis path of the HTTP API (`/api/v3`
//! whole, streamed and batched, `/v1/audio/speech`): which bytes the node is
//! asked for, and how the gateway turns them into the format the client
//! asked for (`wav`, `wav_f32`, `pcm`, `mp3`, `opus`, `aac`, `flac`, at an
//! optional sample rate) through `vctts_engines::audio::encoders`.
//!
//! Invariants:
//! - nodes keep speaking the cluster's three native encodings (`wav`,
//!   `wav_f32`, `pcm`); when the client asks for one of those at the
//!   engine's rate the node's bytes are passed through untouched, otherwise
//!   the node is asked for raw s16le PCM and the gateway encodes it;
//! - the requested format and rate are checked against the engine's rate
//!   ([`Encoding::check`]) before any node does work, so a rate a codec
//!   cannot carry is a 422 `invalid_input`, never a failed stream;
//! - a stream is encoded piece by piece as node chunks arrive (a chunk
//!   boundary may split a sample: the odd byte is carried over) and the
//!   encoder is flushed when the node stream ends; an error of the node
//!   stream ends the encoded stream with that error and no flush;
//! - codec work runs on the blocking pool, never on an async worker.

use bytes::Bytes;
use futures::StreamExt;
use futures::stream::BoxStream;
use vctts_core::{Audio, Error, OutputFormat, Result};
use vctts_engines::audio::encoders::output_rate;
use vctts_engines::audio::{AudioFormat, StreamEncoder, encode_all};

/// What the client asked the audio to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Encoding {
    /// The format.
    pub format: AudioFormat,
    /// The rate of the encoded audio; `None`: the engine's rate (or the
    /// nearest rate the codec accepts; Opus is always 48 kHz).
    pub sample_rate: Option<u32>,
}

/// The format names the API accepts, in the order of the OpenAPI enum.
pub const FORMAT_NAMES: [&str; 7] = ["wav", "wav_f32", "pcm", "mp3", "opus", "aac", "flac"];

/// Lowest and highest rate a client may ask for.
pub const RATE_RANGE: std::ops::RangeInclusive<u32> = 8_000..=96_000;

/// Parses a format name (the canonical names and their common aliases).
///
/// # Errors
/// [`Error::InvalidInput`] on `field` for an unknown name.
pub fn parse_format(name: &str, field: &str) -> Result<AudioFormat> {
    AudioFormat::parse(name).ok_or_else(|| {
        Error::invalid(
            field,
            format!("{name:?} is not one of {}", FORMAT_NAMES.join(", ")),
        )
    })
}

impl Encoding {
    /// A format at an optional rate; the rate must be within [`RATE_RANGE`].
    ///
    /// # Errors
    /// [`Error::InvalidInput`] (`sample_rate`) for a rate out of range.
    pub fn new(format: AudioFormat, sample_rate: Option<u32>) -> Result<Self> {
        if let Some(r) = sample_rate {
            if !RATE_RANGE.contains(&r) {
                return Err(Error::invalid(
                    "sample_rate",
                    format!(
                        "must be between {} and {} Hz, got {r}",
                        RATE_RANGE.start(),
                        RATE_RANGE.end()
                    ),
                ));
            }
        }
        Ok(Self { format, sample_rate })
    }

    /// The native encoding a node can produce itself, if this is one.
    fn native(self) -> Option<OutputFormat> {
        match self.format {
            AudioFormat::Wav => Some(OutputFormat::Wav),
            AudioFormat::WavF32 => Some(OutputFormat::WavF32),
            AudioFormat::Pcm => Some(OutputFormat::Pcm),
            _ => None,
        }
    }

    /// Whether the node's bytes for an engine at `engine_rate` are already
    /// the answer.
    pub fn passthrough(self, engine_rate: u32) -> bool {
        self.native().is_some() && self.sample_rate.is_none_or(|r| r == engine_rate)
    }

    /// What the node is asked for when the engine speaks at `engine_rate`.
    pub fn node_format(self, engine_rate: u32) -> OutputFormat {
        match self.native() {
            Some(n) if self.passthrough(engine_rate) => n,
            _ => OutputFormat::Pcm,
        }
    }

    /// Checks that the format can carry the engine's audio at the asked
    /// rate; returns the rate of the encoded audio.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] (`sample_rate`) when it cannot.
    pub fn check(self, engine_rate: u32) -> Result<u32> {
        output_rate(self.format, engine_rate.max(1), self.sample_rate)
    }

    /// The `Content-Type` of the encoded audio for an engine at `engine_rate`.
    pub fn content_type(self, engine_rate: u32) -> String {
        let rate = self.check(engine_rate).unwrap_or(engine_rate);
        self.format.content_type(rate)
    }

    /// The file extension of the format (`wav`, `mp3`, `opus`, ...).
    pub fn extension(self) -> &'static str {
        self.format.extension()
    }
}

/// Samples of raw s16le PCM (a trailing odd byte is ignored): the inverse
/// of the nodes' conversion (`f32_to_i16` scales by 32767), so re-encoding
/// as 16-bit gives the node's samples back exactly.
pub fn pcm_to_f32(bytes: &[u8]) -> Vec<f32> {
    bytes
        .chunks_exact(2)
        .map(|b| f32::from(i16::from_le_bytes([b[0], b[1]])) / 32767.0)
        .collect()
}

/// Encoded whole audio.
#[derive(Debug, Clone, PartialEq)]
pub struct EncodedAudio {
    /// The file.
    pub bytes: Bytes,
    /// Its `Content-Type`.
    pub content_type: String,
    /// The rate of the encoded audio.
    pub sample_rate: u32,
}

/// Encodes a node's whole answer (`bytes` with `content_type` at
/// `node_rate`) as `enc`: passed through when it already is, else decoded
/// from the s16le PCM the node was asked for and encoded on the blocking pool.
///
/// # Errors
/// [`Error::InvalidInput`] for a rate the format cannot carry,
/// [`Error::Internal`] when a codec fails.
pub async fn encode_whole(
    enc: Encoding,
    bytes: Bytes,
    content_type: &str,
    node_rate: u32,
) -> Result<EncodedAudio> {
    if enc.passthrough(node_rate) {
        return Ok(EncodedAudio {
            bytes,
            content_type: content_type.to_string(),
            sample_rate: node_rate,
        });
    }
    let rate = enc.check(node_rate)?;
    let out = tokio::task::spawn_blocking(move || {
        let audio = Audio::new(pcm_to_f32(&bytes), node_rate);
        encode_all(&audio, enc.format, enc.sample_rate)
    })
    .await
    .map_err(|e| Error::Internal(format!("encoding task failed: {e}")))??;
    Ok(EncodedAudio {
        bytes: Bytes::from(out),
        content_type: enc.format.content_type(rate),
        sample_rate: rate,
    })
}

/// State of [`encode_stream`].
struct Encoder {
    chunks: BoxStream<'static, std::io::Result<Bytes>>,
    encoder: Option<StreamEncoder>,
    carry: Option<u8>,
}

/// Runs one encoder step on the blocking pool and gives the encoder back.
async fn step(
    mut encoder: StreamEncoder,
    samples: Option<Vec<f32>>,
) -> Result<(Option<StreamEncoder>, Vec<u8>)> {
    tokio::task::spawn_blocking(move || match samples {
        Some(s) => encoder.push(&s).map(|out| (Some(encoder), out)),
        None => encoder.finish().map(|out| (None, out)),
    })
    .await
    .map_err(|e| Error::Internal(format!("encoding task failed: {e}")))?
}

/// Encodes a stream of s16le PCM chunks at `node_rate` as `enc`, chunk by
/// chunk, flushing at the end. Pass-through formats are returned unchanged
/// except that a `wav` stream gets its streamed header first.
///
/// # Errors
/// [`Error::InvalidInput`] when the format cannot carry the rate (before
/// anything is sent).
pub fn encode_stream(
    enc: Encoding,
    node_rate: u32,
    chunks: BoxStream<'static, std::io::Result<Bytes>>,
) -> Result<(String, BoxStream<'static, std::io::Result<Bytes>>)> {
    let encoder = StreamEncoder::new(enc.format, node_rate, enc.sample_rate)?;
    let content_type = encoder.content_type();
    if enc.format == AudioFormat::Pcm && encoder.output_rate() == node_rate {
        return Ok((content_type, chunks));
    }
    let state = Encoder {
        chunks,
        encoder: Some(encoder),
        carry: None,
    };
    let out = futures::stream::unfold(state, |mut st| async move {
        loop {
            let encoder = st.encoder.take()?;
            let samples = match st.chunks.next().await {
                Some(Ok(b)) => {
                    let mut raw = Vec::with_capacity(b.len() + 1);
                    raw.extend(st.carry.take());
                    raw.extend_from_slice(&b);
                    if raw.len() % 2 == 1 {
                        st.carry = raw.pop();
                    }
                    Some(pcm_to_f32(&raw))
                }
                Some(Err(e)) => return Some((Err(e), st)),
                None => None,
            };
            let finishing = samples.is_none();
            match step(encoder, samples).await {
                Ok((back, bytes)) => {
                    st.encoder = back;
                    if !bytes.is_empty() {
                        return Some((Ok(Bytes::from(bytes)), st));
                    }
                    if finishing {
                        return None;
                    }
                }
                Err(e) => return Some((Err(std::io::Error::other(e.to_string())), st)),
            }
        }
    });
    Ok((content_type, out.boxed()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pcm(samples: &[i16]) -> Vec<u8> {
        samples.iter().flat_map(|s| s.to_le_bytes()).collect()
    }

    #[test]
    fn native_formats_pass_through_at_the_engine_rate_only() {
        let wav = Encoding::new(AudioFormat::Wav, None).unwrap();
        assert!(wav.passthrough(22050));
        assert_eq!(wav.node_format(22050), OutputFormat::Wav);
        let pcm24 = Encoding::new(AudioFormat::Pcm, Some(24000)).unwrap();
        assert!(!pcm24.passthrough(22050));
        assert_eq!(pcm24.node_format(22050), OutputFormat::Pcm);
        assert!(pcm24.passthrough(24000));
        let mp3 = Encoding::new(AudioFormat::Mp3, None).unwrap();
        assert_eq!(mp3.node_format(22050), OutputFormat::Pcm);
        assert_eq!(mp3.content_type(22050), "audio/mpeg");
        assert_eq!(pcm24.content_type(22050), "audio/pcm;rate=24000");
    }

    #[test]
    fn bad_rates_are_invalid_input() {
        assert_eq!(
            Encoding::new(AudioFormat::Wav, Some(100)).unwrap_err().code(),
            "invalid_input"
        );
        let mp3 = Encoding::new(AudioFormat::Mp3, Some(23000)).unwrap();
        assert_eq!(mp3.check(22050).unwrap_err().code(), "invalid_input");
        assert_eq!(parse_format("ogg", "format").unwrap(), AudioFormat::Opus);
        assert_eq!(parse_format("m4b", "format").unwrap_err().code(), "invalid_input");
    }

    #[tokio::test]
    async fn whole_audio_is_encoded_or_passed_through() {
        let bytes = Bytes::from(pcm(&[0, 1000, -1000, 0]));
        let same = encode_whole(
            Encoding::new(AudioFormat::Pcm, None).unwrap(),
            bytes.clone(),
            "audio/pcm;rate=8000",
            8000,
        )
        .await
        .unwrap();
        assert_eq!(same.bytes, bytes);
        let up = encode_whole(
            Encoding::new(AudioFormat::Pcm, Some(16000)).unwrap(),
            Bytes::from(pcm(&[0; 800])),
            "audio/pcm;rate=8000",
            8000,
        )
        .await
        .unwrap();
        assert_eq!(up.bytes.len(), 1600 * 2);
        assert_eq!(up.content_type, "audio/pcm;rate=16000");
        let flac = encode_whole(
            Encoding::new(AudioFormat::Flac, None).unwrap(),
            Bytes::from(pcm(&[0; 800])),
            "audio/pcm;rate=8000",
            8000,
        )
        .await
        .unwrap();
        assert_eq!(&flac.bytes[..4], b"fLaC");
    }

    #[tokio::test]
    async fn streams_carry_odd_bytes_and_flush_at_the_end() {
        let samples: Vec<i16> = (0..4000).map(|i| ((i % 50) * 300) as i16).collect();
        let all = pcm(&samples);
        // Odd-sized chunks: samples are split across chunk boundaries.
        let chunks: Vec<std::io::Result<Bytes>> =
            all.chunks(333).map(|c| Ok(Bytes::copy_from_slice(c))).collect();
        let (ct, s) = encode_stream(
            Encoding::new(AudioFormat::Wav, None).unwrap(),
            8000,
            futures::stream::iter(chunks).boxed(),
        )
        .unwrap();
        assert_eq!(ct, "audio/wav");
        let out: Vec<Bytes> = s.map(|r| r.unwrap()).collect().await;
        let joined: Vec<u8> = out.concat();
        assert_eq!(&joined[..4], b"RIFF");
        assert_eq!(&joined[44..], &all[..], "every sample, in order");
    }

    #[tokio::test]
    async fn a_failed_node_stream_ends_the_encoded_stream_with_the_error() {
        let chunks: Vec<std::io::Result<Bytes>> = vec![
            Ok(Bytes::from(pcm(&[0; 960]))),
            Err(std::io::Error::other("node died")),
        ];
        let (_, s) = encode_stream(
            Encoding::new(AudioFormat::Mp3, None).unwrap(),
            24000,
            futures::stream::iter(chunks).boxed(),
        )
        .unwrap();
        let items: Vec<std::io::Result<Bytes>> = s.collect().await;
        assert!(items.last().unwrap().is_err());
    }
}
