//! Encoders for every [`AudioFormat`], whole or streamed: WAV (16-bit and
//! float), raw PCM, MP3, Ogg Opus, AAC (ADTS) and FLAC.
//!
//! A [`StreamEncoder`] is built for a format, the rate of the samples it will
//! be fed and an optional requested output rate; [`StreamEncoder::push`]
//! returns the bytes that can be sent now and [`StreamEncoder::finish`] the
//! rest. [`encode_all`] encodes a whole clip.
//!
//! Invariants:
//! - the concatenation of every `push` and the `finish` output is one valid
//!   file of the format, whatever the sizes of the pushed pieces;
//! - streamed headers cannot know the length: a streamed WAV states
//!   `0xFFFFFFFF` as its RIFF and data sizes (as common streaming servers do;
//!   decoders read such a file to its end), a streamed FLAC states 0 total
//!   samples and a zero MD5 (both "unknown" in the FLAC format), a streamed
//!   MP3 has no LAME/Info tag (so players do not trim the codec delay);
//!   [`encode_all`] writes exact headers instead;
//! - samples are mono `f32`; NaN is coded as silence and values are clamped
//!   to `[-1, 1]` before integer conversion;
//! - when the output rate differs from the input rate the audio is
//!   resampled with [`super::resample::StreamResampler`] (rubato), whose
//!   streamed output equals whole-clip resampling;
//! - no input panics: bad rates and formats give
//!   [`vctts_core::Error::InvalidInput`] at construction, codec failures
//!   [`vctts_core::Error::Internal`].
//!
//! Per format (the crates and why they were chosen are in the commit that
//! added them and in `ARCHITECTURE.md`):
//! - `wav`/`wav_f32`/`pcm`: written here; `pcm` is s16le at the output rate;
//! - `mp3`: `rusty_mp3` (pure Rust, Apache-2.0); the output rate must be one
//!   of [`super::format::MP3_RATES`];
//! - `opus`: libopus through the `opus` crate (built from bundled sources),
//!   in Ogg pages from the `ogg` crate; always coded at 48 kHz;
//! - `aac`: `rusty_aac` (pure Rust AAC-LC, Apache-2.0) in ADTS framing;
//!   the output rate must be one of [`super::format::AAC_RATES`]. Its encoder
//!   needs the whole clip, so a streamed AAC gets all its bytes at `finish`;
//! - `flac`: `flacenc` (pure Rust, Apache-2.0), 16-bit, 4096-sample blocks.

mod aac;
mod flac;
mod mp3;
mod opus;
mod wav;

use vctts_core::{Audio, Error, Result};

use super::format::{AAC_RATES, AudioFormat, FLAC_MAX_RATE, MP3_RATES, OPUS_RATE};
use super::resample::{MAX_RATIO, StreamResampler};

/// Options beyond the format. `Default` is "the input's rate (or the nearest
/// one the codec accepts) and the format's default bitrate".
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EncodeOptions {
    /// The requested rate of the encoded audio. `None`: the input rate when
    /// the codec accepts it, else the lowest accepted rate above it (mp3,
    /// aac). Opus always codes at 48 kHz and stores this rate (or the input
    /// rate) as the "input sample rate" of its header.
    pub sample_rate: Option<u32>,
    /// Target bitrate in kbit/s for mp3, opus and aac; `None`: the format's
    /// default ([`default_bitrate_kbps`]). Ignored by lossless formats.
    pub bitrate_kbps: Option<u32>,
}

/// The default bitrate (kbit/s, mono) of a lossy format at an output rate:
/// mp3 128 (32–48 kHz), 64 (16–24 kHz) or 32 (8–12 kHz); opus 48; aac 64
/// (96 above 32 kHz). `None` for lossless formats.
pub fn default_bitrate_kbps(format: AudioFormat, output_rate: u32) -> Option<u32> {
    match format {
        AudioFormat::Mp3 => Some(match output_rate {
            r if r >= 32_000 => 128,
            r if r >= 16_000 => 64,
            _ => 32,
        }),
        AudioFormat::Opus => Some(48),
        AudioFormat::Aac => Some(if output_rate > 32_000 { 96 } else { 64 }),
        _ => None,
    }
}

/// The rate a stream of `format` will be coded at, for input at
/// `input_rate` and an optional requested rate.
///
/// # Errors
/// [`Error::InvalidInput`] (field `sample_rate`) for a zero rate, a rate
/// the format cannot carry, or a conversion ratio over the resampler's limit.
pub fn output_rate(format: AudioFormat, input_rate: u32, requested: Option<u32>) -> Result<u32> {
    if input_rate == 0 {
        return Err(Error::invalid("sample_rate", "the input rate is 0 Hz"));
    }
    if requested == Some(0) {
        return Err(Error::invalid("sample_rate", "the requested rate is 0 Hz"));
    }
    let from_table = |table: &[u32], name: &str| -> Result<u32> {
        match requested {
            Some(r) if table.contains(&r) => Ok(r),
            Some(r) => Err(Error::invalid(
                "sample_rate",
                format!("{name} cannot be coded at {r} Hz; accepted rates: {table:?}"),
            )),
            None => Ok(table
                .iter()
                .copied()
                .find(|&r| r >= input_rate)
                .unwrap_or(table[table.len() - 1])),
        }
    };
    let rate = match format {
        AudioFormat::Wav | AudioFormat::WavF32 | AudioFormat::Pcm => requested.unwrap_or(input_rate),
        AudioFormat::Flac => {
            let r = requested.unwrap_or(input_rate);
            if r > FLAC_MAX_RATE {
                return Err(Error::invalid(
                    "sample_rate",
                    format!("flac cannot be coded at {r} Hz (at most {FLAC_MAX_RATE} Hz)"),
                ));
            }
            r
        }
        AudioFormat::Mp3 => from_table(&MP3_RATES, "mp3")?,
        AudioFormat::Aac => from_table(&AAC_RATES, "aac")?,
        AudioFormat::Opus => OPUS_RATE,
    };
    let (hi, lo) = (rate.max(input_rate), rate.min(input_rate));
    if hi / lo > MAX_RATIO || (hi / lo == MAX_RATIO && hi % lo != 0) {
        return Err(Error::invalid(
            "sample_rate",
            format!("{input_rate} Hz to {rate} Hz is a ratio over {MAX_RATIO}"),
        ));
    }
    Ok(rate)
}

/// Whether a codec writes a stream (headers of unknown length, bytes as they
/// come) or a whole file (exact headers, bytes at the end where needed).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    Stream,
    Whole,
}

/// One codec fed samples at its own rate.
trait Codec: Send {
    /// Encodes `samples`, appending the bytes that are ready to `out`.
    fn push(&mut self, samples: &[f32], out: &mut Vec<u8>) -> Result<()>;
    /// Flushes the codec and appends the last bytes (and, for a whole file,
    /// anything held back for its header) to `out`.
    fn finish(&mut self, out: &mut Vec<u8>) -> Result<()>;
}

/// An encoder that turns mono `f32` pieces into the bytes of one file.
///
/// ```
/// use vctts_engines::audio::{AudioFormat, StreamEncoder};
/// let mut enc = StreamEncoder::new(AudioFormat::Pcm, 22_050, Some(24_000)).unwrap();
/// let mut bytes = enc.push(&[0.0; 2205]).unwrap();
/// bytes.extend(enc.finish().unwrap());
/// assert_eq!(bytes.len(), 2400 * 2);
/// ```
pub struct StreamEncoder {
    format: AudioFormat,
    input_rate: u32,
    output_rate: u32,
    resampler: Option<StreamResampler>,
    codec: Box<dyn Codec>,
}

impl std::fmt::Debug for StreamEncoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StreamEncoder")
            .field("format", &self.format)
            .field("input_rate", &self.input_rate)
            .field("output_rate", &self.output_rate)
            .finish_non_exhaustive()
    }
}

impl StreamEncoder {
    /// A streaming encoder for samples at `input_rate`, coding at
    /// `output_rate` (see [`EncodeOptions::sample_rate`]).
    ///
    /// # Errors
    /// [`Error::InvalidInput`] for a rate the format cannot use.
    pub fn new(format: AudioFormat, input_rate: u32, output_rate: Option<u32>) -> Result<Self> {
        Self::with_options(
            format,
            input_rate,
            EncodeOptions {
                sample_rate: output_rate,
                bitrate_kbps: None,
            },
        )
    }

    /// An encoder fed in pieces whose concatenated output is exactly
    /// [`encode_all`] of the concatenated pieces (exact headers), for writing a
    /// file as the audio is made. WAV and PCM give their samples back at once
    /// (a WAV's header then states unknown sizes, which the file's writer
    /// replaces by the real ones at the end, as `vctts synth` does); the other
    /// formats hold only their coded frames (or, for AAC, the samples) until
    /// [`finish`](Self::finish).
    ///
    /// # Errors
    /// As [`StreamEncoder::new`].
    pub fn file(format: AudioFormat, input_rate: u32, output_rate: Option<u32>) -> Result<Self> {
        let mode = match format {
            AudioFormat::Wav | AudioFormat::WavF32 | AudioFormat::Pcm => Mode::Stream,
            _ => Mode::Whole,
        };
        let opts = EncodeOptions {
            sample_rate: output_rate,
            bitrate_kbps: None,
        };
        Self::build(format, input_rate, opts, mode)
    }

    /// [`StreamEncoder::new`] with a bitrate.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] for a rate the format cannot use or a bitrate
    /// outside 6–512 kbit/s.
    pub fn with_options(format: AudioFormat, input_rate: u32, opts: EncodeOptions) -> Result<Self> {
        Self::build(format, input_rate, opts, Mode::Stream)
    }

    fn build(format: AudioFormat, input_rate: u32, opts: EncodeOptions, mode: Mode) -> Result<Self> {
        let rate = output_rate(format, input_rate, opts.sample_rate)?;
        let kbps = match opts.bitrate_kbps {
            Some(b) if !(6..=512).contains(&b) => {
                return Err(Error::invalid(
                    "bitrate",
                    format!("{b} kbit/s is outside 6..=512"),
                ));
            }
            Some(b) => b,
            None => default_bitrate_kbps(format, rate).unwrap_or(0),
        };
        let codec: Box<dyn Codec> = match format {
            AudioFormat::Wav => Box::new(wav::WavCodec::new(rate, wav::Sample::I16, mode)),
            AudioFormat::WavF32 => Box::new(wav::WavCodec::new(rate, wav::Sample::F32, mode)),
            AudioFormat::Pcm => Box::new(wav::PcmCodec),
            AudioFormat::Mp3 => Box::new(mp3::Mp3Codec::new(rate, kbps, mode)),
            AudioFormat::Opus => Box::new(opus::OpusCodec::new(
                opts.sample_rate.unwrap_or(input_rate),
                kbps,
                mode,
            )?),
            AudioFormat::Aac => Box::new(aac::AacCodec::new(rate, kbps)),
            AudioFormat::Flac => Box::new(flac::FlacCodec::new(rate, mode)?),
        };
        let resampler = if rate == input_rate {
            None
        } else {
            Some(StreamResampler::new(input_rate, rate)?)
        };
        Ok(Self {
            format,
            input_rate,
            output_rate: rate,
            resampler,
            codec,
        })
    }

    /// The format being written.
    pub fn format(&self) -> AudioFormat {
        self.format
    }

    /// The rate of the samples [`StreamEncoder::push`] expects.
    pub fn input_rate(&self) -> u32 {
        self.input_rate
    }

    /// The rate of the encoded audio (48 kHz for Opus).
    pub fn output_rate(&self) -> u32 {
        self.output_rate
    }

    /// The HTTP `Content-Type` of the bytes ([`AudioFormat::content_type`]
    /// at the output rate).
    pub fn content_type(&self) -> String {
        self.format.content_type(self.output_rate)
    }

    /// Encodes a piece of the clip; returns the bytes ready now (possibly
    /// none: codecs work in frames, and AAC only writes at `finish`). The
    /// first call of a streamable format returns at least its header.
    ///
    /// # Errors
    /// [`Error::Internal`] when a codec fails.
    pub fn push(&mut self, samples: &[f32]) -> Result<Vec<u8>> {
        let mut out = Vec::new();
        match self.resampler.as_mut() {
            Some(r) => {
                let converted = r.push(samples)?;
                self.codec.push(&converted, &mut out)?;
            }
            None => self.codec.push(samples, &mut out)?,
        }
        Ok(out)
    }

    /// Flushes resampler and codec; returns the last bytes of the file.
    ///
    /// # Errors
    /// [`Error::Internal`] when a codec fails.
    pub fn finish(mut self) -> Result<Vec<u8>> {
        let mut out = Vec::new();
        if let Some(r) = self.resampler.take() {
            let tail = r.finish()?;
            self.codec.push(&tail, &mut out)?;
        }
        self.codec.finish(&mut out)?;
        Ok(out)
    }
}

/// Encodes a whole clip as one file of `format`, with exact headers (WAV
/// sizes, FLAC length and MD5, the MP3 LAME/Info tag that lets players trim
/// the codec delay). `output_rate` as in [`EncodeOptions::sample_rate`].
///
/// # Errors
/// As [`StreamEncoder::new`] and [`StreamEncoder::push`].
pub fn encode_all(audio: &Audio, format: AudioFormat, output_rate: Option<u32>) -> Result<Vec<u8>> {
    encode_all_with(
        audio,
        format,
        EncodeOptions {
            sample_rate: output_rate,
            bitrate_kbps: None,
        },
    )
}

/// [`encode_all`] with a bitrate.
///
/// # Errors
/// As [`StreamEncoder::with_options`].
pub fn encode_all_with(audio: &Audio, format: AudioFormat, opts: EncodeOptions) -> Result<Vec<u8>> {
    let mut enc = StreamEncoder::build(format, audio.sample_rate, opts, Mode::Whole)?;
    let mut out = enc.push(&audio.samples)?;
    out.extend(enc.finish()?);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_rates() {
        use AudioFormat::*;
        assert_eq!(output_rate(Wav, 22050, None).unwrap(), 22050);
        assert_eq!(output_rate(Pcm, 22050, Some(24000)).unwrap(), 24000);
        assert_eq!(output_rate(Opus, 22050, Some(24000)).unwrap(), 48000);
        assert_eq!(output_rate(Mp3, 22050, None).unwrap(), 22050);
        assert_eq!(output_rate(Mp3, 20000, None).unwrap(), 22050);
        assert_eq!(output_rate(Mp3, 96000, None).unwrap(), 48000);
        assert_eq!(output_rate(Aac, 96000, None).unwrap(), 96000);
        assert_eq!(output_rate(Aac, 5000, None).unwrap(), 7350);
        assert_eq!(output_rate(Flac, 16000, None).unwrap(), 16000);
        for (f, inp, req) in [
            (Mp3, 22050, Some(22000)),
            (Aac, 24000, Some(23000)),
            (Flac, 24000, Some(700_000)),
            (Wav, 0, None),
            (Pcm, 24000, Some(0)),
            (Pcm, 100, Some(48000)),
        ] {
            let e = output_rate(f, inp, req).unwrap_err();
            assert_eq!(e.code(), "invalid_input", "{f} {inp} {req:?}");
        }
    }

    #[test]
    fn bad_bitrate_is_refused() {
        let opts = EncodeOptions {
            sample_rate: None,
            bitrate_kbps: Some(2),
        };
        assert!(StreamEncoder::with_options(AudioFormat::Mp3, 24000, opts).is_err());
    }

    #[test]
    fn a_file_encoder_fed_in_pieces_writes_what_encode_all_writes() {
        // Uneven pieces, as sentences come; WAV's header sizes are the
        // writer's to fix (checked in the CLI), so its data must match.
        let samples: Vec<f32> = (0..30_000).map(|i| (i as f32 * 0.013).sin() * 0.4).collect();
        let cuts = [0, 1, 4_097, 4_100, 17_000, 30_000];
        for format in AudioFormat::ALL {
            let whole = encode_all(&Audio::new(samples.clone(), 22_050), format, None).unwrap();
            let mut enc = StreamEncoder::file(format, 22_050, None).unwrap();
            let mut out = Vec::new();
            for w in cuts.windows(2) {
                out.extend(enc.push(&samples[w[0]..w[1]]).unwrap());
            }
            out.extend(enc.finish().unwrap());
            match format {
                AudioFormat::Wav | AudioFormat::WavF32 => {
                    let data = whole.windows(4).position(|w| w == b"data").unwrap() + 8;
                    assert_eq!(out.len(), whole.len(), "{format}");
                    assert_eq!(out[data..], whole[data..], "{format}: samples");
                }
                _ => assert_eq!(out, whole, "{format}"),
            }
        }
    }

    #[test]
    fn encoders_are_send() {
        fn is_send<T: Send>() {}
        is_send::<StreamEncoder>();
    }
}
