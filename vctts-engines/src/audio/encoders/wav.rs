//! RIFF WAV (16-bit PCM or 32-bit float) and raw s16le PCM codecs.
//!
//! Invariants: a streamed WAV starts with a header whose RIFF and data sizes
//! (and, for float, the `fact` sample count) are `0xFFFFFFFF`, sent with the
//! first push; a whole WAV is held until `finish` and gets exact sizes
//! (the same bytes as [`crate::audio::encode::wav_i16`] /
//! [`crate::audio::encode::wav_f32`]). Raw PCM has no header, so streamed and
//! whole outputs are identical.

use vctts_core::{Audio, Result};

use super::{Codec, Mode};
use crate::audio::encode::{f32_to_i16, wav_f32, wav_f32_stream_header, wav_i16, wav_stream_header};

/// The sample type of a WAV.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Sample {
    I16,
    F32,
}

pub(crate) struct WavCodec {
    rate: u32,
    sample: Sample,
    mode: Mode,
    header_sent: bool,
    /// Whole mode: every sample, until `finish`.
    held: Vec<f32>,
}

impl WavCodec {
    pub(crate) fn new(rate: u32, sample: Sample, mode: Mode) -> Self {
        Self {
            rate,
            sample,
            mode,
            header_sent: false,
            held: Vec::new(),
        }
    }

    fn header(&mut self, out: &mut Vec<u8>) {
        if !self.header_sent {
            self.header_sent = true;
            out.extend(match self.sample {
                Sample::I16 => wav_stream_header(self.rate),
                Sample::F32 => wav_f32_stream_header(self.rate),
            });
        }
    }
}

fn write_samples(sample: Sample, samples: &[f32], out: &mut Vec<u8>) {
    match sample {
        Sample::I16 => {
            out.reserve(samples.len() * 2);
            for &s in samples {
                out.extend_from_slice(&f32_to_i16(s).to_le_bytes());
            }
        }
        Sample::F32 => {
            out.reserve(samples.len() * 4);
            for &s in samples {
                let v = if s.is_finite() { s } else { 0.0 };
                out.extend_from_slice(&v.to_le_bytes());
            }
        }
    }
}

impl Codec for WavCodec {
    fn push(&mut self, samples: &[f32], out: &mut Vec<u8>) -> Result<()> {
        match self.mode {
            Mode::Whole => self.held.extend_from_slice(samples),
            Mode::Stream => {
                self.header(out);
                write_samples(self.sample, samples, out);
            }
        }
        Ok(())
    }

    fn finish(&mut self, out: &mut Vec<u8>) -> Result<()> {
        match self.mode {
            Mode::Whole => {
                let audio = Audio::new(std::mem::take(&mut self.held), self.rate);
                out.extend(match self.sample {
                    Sample::I16 => wav_i16(&audio),
                    Sample::F32 => wav_f32(&audio),
                });
            }
            Mode::Stream => self.header(out),
        }
        Ok(())
    }
}

/// Raw signed 16-bit little-endian PCM.
pub(crate) struct PcmCodec;

impl Codec for PcmCodec {
    fn push(&mut self, samples: &[f32], out: &mut Vec<u8>) -> Result<()> {
        write_samples(Sample::I16, samples, out);
        Ok(())
    }

    fn finish(&mut self, _out: &mut Vec<u8>) -> Result<()> {
        Ok(())
    }
}
