//! Ogg Opus (RFC 7845): libopus through the `opus` crate, pages written by
//! the `ogg` crate.
//!
//! Invariants:
//! - mono, coded at 48 kHz in 20 ms packets (960 samples);
//! - page 1 holds only the `OpusHead` packet (version 1, one channel, the
//!   encoder's lookahead as pre-skip, the caller's rate as "input sample
//!   rate", gain 0, mapping family 0) and is flagged beginning-of-stream;
//!   page 2 holds only `OpusTags`; audio starts on page 3;
//! - every audio page's granule position is the number of 48 kHz samples
//!   decodable from the packets finished on it, pre-skip included; the last
//!   page is flagged end-of-stream and its granule position is
//!   `pre_skip + n` for `n` input samples, so decoders trim the padding of
//!   the last packet and return exactly `n` samples;
//! - a stream ends a page after each push that coded a packet (bytes go out
//!   at once); a whole file ends a page every second of audio;
//! - the stream serial number is fixed, so output is deterministic.

use ogg::writing::{PacketWriteEndInfo, PacketWriter};
use opus::{Application, Bitrate, Channels, Encoder};
use vctts_core::{Error, Result};

use super::{Codec, Mode};

/// Samples per packet at 48 kHz (20 ms).
pub(crate) const FRAME: usize = 960;
/// Packets per page in a whole file (one second).
const PACKETS_PER_PAGE: usize = 50;
/// Serial number of the single logical stream ("vcts").
const SERIAL: u32 = 0x7663_7473;
/// Largest packet libopus is asked to write.
const MAX_PACKET: usize = 4000;

fn fail(e: opus::Error) -> Error {
    Error::Internal(format!("opus encoding failed: {e}"))
}

fn io_fail(e: std::io::Error) -> Error {
    Error::Internal(format!("ogg page writing failed: {e}"))
}

pub(crate) struct OpusCodec {
    enc: Encoder,
    writer: PacketWriter<'static, Vec<u8>>,
    mode: Mode,
    pre_skip: u16,
    input_rate: u32,
    headers_sent: bool,
    /// 48 kHz samples not yet coded.
    pending: Vec<f32>,
    /// 48 kHz samples received.
    n_in: u64,
    /// 48 kHz samples coded into packets (multiples of [`FRAME`]).
    coded: u64,
    /// Packets on the page being filled (whole mode).
    on_page: usize,
    packet: Vec<u8>,
}

impl OpusCodec {
    /// `input_rate` is stored in `OpusHead` only; samples arrive at 48 kHz.
    pub(crate) fn new(input_rate: u32, kbps: u32, mode: Mode) -> Result<Self> {
        let mut enc = Encoder::new(48_000, Channels::Mono, Application::Audio).map_err(fail)?;
        enc.set_bitrate(Bitrate::Bits((kbps * 1000) as i32))
            .map_err(fail)?;
        let lookahead = enc.get_lookahead().map_err(fail)?;
        let pre_skip = u16::try_from(lookahead)
            .map_err(|_| Error::Internal(format!("opus lookahead {lookahead} out of range")))?;
        Ok(Self {
            enc,
            writer: PacketWriter::new(Vec::new()),
            mode,
            pre_skip,
            input_rate,
            headers_sent: false,
            pending: Vec::new(),
            n_in: 0,
            coded: 0,
            on_page: 0,
            packet: vec![0; MAX_PACKET],
        })
    }

    /// The `OpusHead` identification header (RFC 7845 §5.1).
    fn opus_head(&self) -> Vec<u8> {
        let mut h = Vec::with_capacity(19);
        h.extend_from_slice(b"OpusHead");
        h.push(1); // version
        h.push(1); // channels
        h.extend_from_slice(&self.pre_skip.to_le_bytes());
        h.extend_from_slice(&self.input_rate.to_le_bytes());
        h.extend_from_slice(&0i16.to_le_bytes()); // output gain
        h.push(0); // channel mapping family
        h
    }

    /// The `OpusTags` comment header (RFC 7845 §5.2).
    fn opus_tags() -> Vec<u8> {
        let vendor = opus::version();
        let comment = format!("ENCODER=vctts {}", env!("CARGO_PKG_VERSION"));
        let mut t = Vec::new();
        t.extend_from_slice(b"OpusTags");
        t.extend_from_slice(&(vendor.len() as u32).to_le_bytes());
        t.extend_from_slice(vendor.as_bytes());
        t.extend_from_slice(&1u32.to_le_bytes());
        t.extend_from_slice(&(comment.len() as u32).to_le_bytes());
        t.extend_from_slice(comment.as_bytes());
        t
    }

    fn headers(&mut self) -> Result<()> {
        if self.headers_sent {
            return Ok(());
        }
        self.headers_sent = true;
        let head = self.opus_head();
        self.writer
            .write_packet(head, SERIAL, PacketWriteEndInfo::EndPage, 0)
            .map_err(io_fail)?;
        self.writer
            .write_packet(Self::opus_tags(), SERIAL, PacketWriteEndInfo::EndPage, 0)
            .map_err(io_fail)
    }

    /// Codes every whole frame of `pending`; the last one coded ends with
    /// `last` (and the page/stream end it asks for) at granule `last_gp`
    /// when given, else at its cumulative position.
    fn code_frames(&mut self, last: Option<(PacketWriteEndInfo, u64)>) -> Result<()> {
        let frames = self.pending.len() / FRAME;
        for k in 0..frames {
            let input = &self.pending[k * FRAME..(k + 1) * FRAME];
            let len = self.enc.encode_float(input, &mut self.packet).map_err(fail)?;
            self.coded += FRAME as u64;
            self.on_page += 1;
            let is_last = k + 1 == frames;
            let (info, gp) = match (is_last, last) {
                (true, Some((info, gp))) => (info, gp),
                _ if self.mode == Mode::Whole && self.on_page >= PACKETS_PER_PAGE => {
                    (PacketWriteEndInfo::EndPage, self.coded)
                }
                _ => (PacketWriteEndInfo::NormalPacket, self.coded),
            };
            if info != PacketWriteEndInfo::NormalPacket {
                self.on_page = 0;
            }
            self.writer
                .write_packet(self.packet[..len].to_vec(), SERIAL, info, gp)
                .map_err(io_fail)?;
        }
        self.pending.drain(..frames * FRAME);
        Ok(())
    }

    fn take_bytes(&mut self, out: &mut Vec<u8>) {
        out.append(self.writer.inner_mut());
    }
}

impl Codec for OpusCodec {
    fn push(&mut self, samples: &[f32], out: &mut Vec<u8>) -> Result<()> {
        self.headers()?;
        self.n_in += samples.len() as u64;
        self.pending.extend(
            samples
                .iter()
                .map(|&s| if s.is_finite() { s.clamp(-1.0, 1.0) } else { 0.0 }),
        );
        if self.mode == Mode::Stream && self.pending.len() >= FRAME {
            let gp = self.coded + (self.pending.len() / FRAME * FRAME) as u64;
            self.code_frames(Some((PacketWriteEndInfo::EndPage, gp)))?;
        } else {
            self.code_frames(None)?;
        }
        self.take_bytes(out);
        Ok(())
    }

    fn finish(&mut self, out: &mut Vec<u8>) -> Result<()> {
        self.headers()?;
        // Pad with silence so the packets cover the pre-skip and every
        // input sample, with at least one packet left to end the stream.
        let end = u64::from(self.pre_skip) + self.n_in;
        let have = self.coded + self.pending.len() as u64;
        let mut total = end.max(have).max(self.coded + 1);
        total = total.div_ceil(FRAME as u64) * FRAME as u64;
        let pad = (total - have) as usize;
        self.pending.resize(self.pending.len() + pad, 0.0);
        self.code_frames(Some((PacketWriteEndInfo::EndStream, end)))?;
        self.take_bytes(out);
        Ok(())
    }
}
