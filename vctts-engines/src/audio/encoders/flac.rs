//! FLAC through `flacenc`, a pure-Rust encoder (Apache-2.0).
//!
//! Invariants:
//! - mono, 16-bit, fixed 4096-sample blocks (the last may be shorter),
//!   numbered frames; samples are clamped and rounded like 16-bit WAV, so
//!   decoding gives back exactly the samples a 16-bit WAV would hold;
//! - a stream sends `fLaC` and a STREAMINFO block with the first push and a
//!   frame as soon as 4096 samples are in; its STREAMINFO states 0 total
//!   samples, 0 frame sizes and a zero MD5 (all "unknown" in the format);
//! - a whole file holds its frames until `finish` and states the exact
//!   sample count, frame sizes and the MD5 of the samples.

use flacenc::bitsink::MemSink;
use flacenc::component::{BitRepr, Stream, StreamInfo};
use flacenc::config;
use flacenc::error::{Verified, Verify};
use flacenc::source::{Context, Fill, FrameBuf};
use vctts_core::{Error, Result};

use super::{Codec, Mode};
use crate::audio::encode::f32_to_i16;

/// Samples per FLAC block.
pub(crate) const BLOCK: usize = 4096;

fn fail(what: &str, e: impl std::fmt::Debug) -> Error {
    Error::Internal(format!("flac encoding failed ({what}): {e:?}"))
}

pub(crate) struct FlacCodec {
    config: Verified<config::Encoder>,
    info: StreamInfo,
    mode: Mode,
    header_sent: bool,
    /// Block buffer and running context (frame number, MD5, sample count).
    fill: (FrameBuf, Context),
    pending: Vec<i32>,
    /// Whole mode: the coded frames, until `finish`.
    frames: Vec<u8>,
    frame_count: usize,
}

impl FlacCodec {
    pub(crate) fn new(rate: u32, mode: Mode) -> Result<Self> {
        let config = config::Encoder::default()
            .into_verified()
            .map_err(|(_, e)| fail("config", e))?;
        let mut info = StreamInfo::new(rate as usize, 1, 16).map_err(|e| fail("stream info", e))?;
        info.set_block_sizes(BLOCK, BLOCK)
            .map_err(|e| fail("block size", e))?;
        info.set_frame_sizes(0, 0).map_err(|e| fail("frame size", e))?;
        let buf = FrameBuf::with_size(1, BLOCK).map_err(|e| fail("frame buffer", e))?;
        Ok(Self {
            config,
            info,
            mode,
            header_sent: false,
            fill: (buf, Context::new(16, 1)),
            pending: Vec::new(),
            frames: Vec::new(),
            frame_count: 0,
        })
    }

    fn write_header(info: &StreamInfo, out: &mut Vec<u8>) -> Result<()> {
        let stream = Stream::with_stream_info(info.clone());
        let mut sink = MemSink::<u8>::new();
        stream.write(&mut sink).map_err(|e| fail("header", e))?;
        out.extend(sink.into_inner());
        Ok(())
    }

    /// Codes `pending[..n]` as one frame; appends its bytes to `out` (stream)
    /// or to the held frames (whole).
    fn code_block(&mut self, n: usize, out: &mut Vec<u8>) -> Result<()> {
        self.fill
            .fill_interleaved(&self.pending[..n])
            .map_err(|e| fail("fill", e))?;
        let number = self.fill.1.current_frame_number().unwrap_or(0);
        let frame = flacenc::encode_fixed_size_frame(&self.config, &self.fill.0, number, &self.info)
            .map_err(|e| fail("frame", e))?;
        let mut sink = MemSink::<u8>::new();
        frame.write(&mut sink).map_err(|e| fail("frame bytes", e))?;
        match self.mode {
            Mode::Stream => out.extend(sink.into_inner()),
            Mode::Whole => {
                self.frames.extend(sink.into_inner());
                self.frame_count += 1;
                let bits = frame.count_bits() / 8;
                let (lo, hi) = if self.frame_count == 1 {
                    (bits, bits)
                } else {
                    (
                        self.info.min_frame_size().min(bits),
                        self.info.max_frame_size().max(bits),
                    )
                };
                self.info
                    .set_frame_sizes(lo, hi)
                    .map_err(|e| fail("frame size", e))?;
            }
        }
        self.pending.drain(..n);
        Ok(())
    }
}

impl Codec for FlacCodec {
    fn push(&mut self, samples: &[f32], out: &mut Vec<u8>) -> Result<()> {
        if self.mode == Mode::Stream && !self.header_sent {
            self.header_sent = true;
            Self::write_header(&self.info, out)?;
        }
        self.pending
            .extend(samples.iter().map(|&s| i32::from(f32_to_i16(s))));
        while self.pending.len() >= BLOCK {
            self.code_block(BLOCK, out)?;
        }
        Ok(())
    }

    fn finish(&mut self, out: &mut Vec<u8>) -> Result<()> {
        if self.mode == Mode::Stream && !self.header_sent {
            self.header_sent = true;
            Self::write_header(&self.info, out)?;
        }
        if !self.pending.is_empty() {
            let n = self.pending.len();
            self.code_block(n, out)?;
        }
        if self.mode == Mode::Whole {
            let ctx = &self.fill.1;
            self.info.set_md5_digest(&ctx.md5_digest());
            self.info.set_total_samples(ctx.total_samples());
            Self::write_header(&self.info, out)?;
            out.append(&mut self.frames);
        }
        Ok(())
    }
}
