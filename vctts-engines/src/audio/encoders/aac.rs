//! AAC-LC in ADTS framing through `rusty_aac`, a pure-Rust encoder
//! (Apache-2.0).
//!
//! Invariants:
//! - mono AAC-LC (object type 2) at one of the rates of the AAC
//!   sampling-frequency table (checked by the caller), one ADTS header (7
//!   bytes, no CRC) per 1024-sample access unit;
//! - `rusty_aac` chooses window sequences over the whole clip and encodes
//!   only at its `finish`, so every byte is written at `finish`, streamed or
//!   not ([`crate::audio::AudioFormat::streams_incrementally`] is false);
//! - an empty clip is coded as one silent sample (a file with no frame
//!   is not playable);
//! - decoders output the usual AAC priming (1024 samples) before the audio
//!   and pad the last frame; ADTS has no field to trim them.

use rusty_aac::{AacEncoder, AacEncoderConfig, AdtsHeader, write_adts_header};
use vctts_core::{Error, Result};

use super::Codec;

/// Largest frame an ADTS header can state (13-bit length).
const MAX_ADTS_FRAME: usize = 8191;

pub(crate) struct AacCodec {
    rate: u32,
    kbps: u32,
    held: Vec<f32>,
}

impl AacCodec {
    pub(crate) fn new(rate: u32, kbps: u32) -> Self {
        Self {
            rate,
            kbps,
            held: Vec::new(),
        }
    }
}

fn fail(e: rusty_aac::Error) -> Error {
    Error::Internal(format!("aac encoding failed: {e}"))
}

impl Codec for AacCodec {
    fn push(&mut self, samples: &[f32], _out: &mut Vec<u8>) -> Result<()> {
        self.held.extend_from_slice(samples);
        Ok(())
    }

    fn finish(&mut self, out: &mut Vec<u8>) -> Result<()> {
        let mut enc = AacEncoder::new(AacEncoderConfig {
            bitrate_bps: self.kbps * 1000,
            ..AacEncoderConfig::default()
        });
        // rusty_aac writes no frame for an empty clip; one silent sample
        // makes it a playable (silent) file.
        if self.held.is_empty() {
            self.held.push(0.0);
        }
        enc.push_pcm(&std::mem::take(&mut self.held), 1, self.rate)
            .map_err(fail)?;
        enc.finish();
        while let Ok(packet) = enc.next_packet() {
            let frame_length = 7 + packet.data.len();
            if frame_length > MAX_ADTS_FRAME {
                return Err(Error::Internal(format!(
                    "aac frame of {frame_length} bytes does not fit an ADTS header"
                )));
            }
            out.extend(write_adts_header(&AdtsHeader {
                object_type: 2,
                sample_rate: self.rate,
                channels: 1,
                frame_length,
                header_len: 7,
            }));
            out.extend_from_slice(&packet.data);
        }
        Ok(())
    }
}
