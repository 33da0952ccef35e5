//! MP3 through `rusty_mp3`, a pure-Rust Layer III encoder (Apache-2.0).
//!
//! Invariants:
//! - mono, at one of the nine MPEG rates (checked by the caller);
//! - a whole file starts with the LAME-style Info tag frame that states the
//!   encoder delay and padding (gapless players trim them) and uses CBR with
//!   the bit reservoir where `rusty_mp3` applies it (MPEG-1 rates);
//! - a stream drops the tag frame (its counts are only known at the end and
//!   a placeholder would tell players the stream is empty) and never uses
//!   the bit reservoir, which `rusty_mp3` assembles only at `finish`: at the
//!   MPEG-1 rates (32–48 kHz) it codes VBR around the target bitrate, at the
//!   MPEG-2/2.5 rates CBR, so every frame is sent as soon as it is coded;
//! - the first frame of a stream is sent once 1152 (MPEG-1) or 576 samples
//!   have been pushed.

use rusty_mp3::{Mp3Encoder, Mp3EncoderConfig};
use vctts_core::{Error, Result};

use super::{Codec, Mode};

pub(crate) struct Mp3Codec {
    enc: Mp3Encoder,
    rate: u32,
    mode: Mode,
    pushed: bool,
    /// Stream mode: whether the leading tag frame was dropped.
    tag_dropped: bool,
}

fn fail(e: rusty_mp3::Error) -> Error {
    Error::Internal(format!("mp3 encoding failed: {e}"))
}

impl Mp3Codec {
    pub(crate) fn new(rate: u32, kbps: u32, mode: Mode) -> Self {
        let mpeg1 = rate >= 32_000;
        let config = if mode == Mode::Stream && mpeg1 {
            Mp3EncoderConfig {
                bitrate_kbps: kbps,
                vbr_quality: Some(kbps as f32),
            }
        } else {
            Mp3EncoderConfig {
                bitrate_kbps: kbps,
                vbr_quality: None,
            }
        };
        Self {
            enc: Mp3Encoder::new(config),
            rate,
            mode,
            pushed: false,
            tag_dropped: false,
        }
    }

    fn drain(&mut self, out: &mut Vec<u8>) {
        while let Ok(packet) = self.enc.next_packet() {
            if self.mode == Mode::Stream && !self.tag_dropped {
                self.tag_dropped = true;
                if is_tag_frame(&packet) {
                    continue;
                }
            }
            out.extend_from_slice(&packet);
        }
    }
}

/// Whether an MP3 frame is a Xing/Info tag: the tag's magic sits right
/// after the (empty) side information, at most 4 + 32 bytes in.
fn is_tag_frame(frame: &[u8]) -> bool {
    let head = &frame[..frame.len().min(48)];
    head.windows(4).any(|w| w == b"Info" || w == b"Xing")
}

impl Codec for Mp3Codec {
    fn push(&mut self, samples: &[f32], out: &mut Vec<u8>) -> Result<()> {
        if samples.is_empty() && self.pushed {
            return Ok(());
        }
        self.pushed = true;
        self.enc.push_pcm_f32(samples, 1, self.rate).map_err(fail)?;
        if self.mode == Mode::Stream {
            self.drain(out);
        }
        Ok(())
    }

    fn finish(&mut self, out: &mut Vec<u8>) -> Result<()> {
        if !self.pushed {
            // The first push fixes the stream header; an empty clip still
            // becomes a valid (silent) file.
            self.push(&[], out)?;
        }
        self.enc.finish();
        self.drain(out);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whole_files_lead_with_the_tag_and_streams_do_not() {
        let x: Vec<f32> = (0..5000).map(|i| (i as f32 * 0.05).sin() * 0.5).collect();
        for rate in [24_000, 44_100] {
            let mut whole = Vec::new();
            let mut c = Mp3Codec::new(rate, 64, Mode::Whole);
            c.push(&x, &mut whole).unwrap();
            c.finish(&mut whole).unwrap();
            assert!(is_tag_frame(&whole), "{rate}: whole file starts with its tag");
            let mut stream = Vec::new();
            let mut c = Mp3Codec::new(rate, 64, Mode::Stream);
            c.push(&x, &mut stream).unwrap();
            c.finish(&mut stream).unwrap();
            assert!(!is_tag_frame(&stream), "{rate}: stream has no tag");
            assert_eq!(stream[0], 0xFF, "{rate}: stream starts on a frame sync");
        }
    }
}
