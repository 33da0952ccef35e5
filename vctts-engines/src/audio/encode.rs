//! Building blocks for the uncompressed formats: RIFF WAV (16-bit PCM or
//! 32-bit float), streaming WAV headers, and raw signed 16-bit little-endian
//! PCM. Every format, compressed ones included, whole or streamed, is
//! written by [`super::encoders`] ([`super::StreamEncoder`],
//! [`super::encode_all`]); [`encode`] here is the older entry point for the
//! three formats of [`OutputFormat`].
//!
//! Invariants: output is always mono at the clip's rate; float samples are
//! clamped to `[-1, 1]` and rounded (`x * 32767`, NaN as 0) for 16-bit
//! output; 32-bit float output writes finite samples unchanged and
//! non-finite ones as 0; RIFF sizes saturate at `u32::MAX` for clips too long
//! for a 32-bit header. Encoding cannot fail.

use vctts_core::{Audio, OutputFormat};

/// Size of the canonical 16-bit PCM header ([`wav_i16`], [`wav_stream_header`]).
pub const WAV_HEADER_LEN: usize = 44;

const FORMAT_PCM: u16 = 1;
const FORMAT_IEEE_FLOAT: u16 = 3;

fn push_u16(out: &mut Vec<u8>, v: u16) {
    out.extend_from_slice(&v.to_le_bytes());
}

fn push_u32(out: &mut Vec<u8>, v: u32) {
    out.extend_from_slice(&v.to_le_bytes());
}

fn sat_u32(v: usize) -> u32 {
    u32::try_from(v).unwrap_or(u32::MAX)
}

/// The 44-byte header of a 16-bit mono PCM WAV whose data chunk holds
/// `data_len` bytes (`None`: unknown length, both sizes `0xFFFFFFFF`).
fn pcm16_header(sample_rate: u32, data_len: Option<usize>) -> Vec<u8> {
    let mut h = Vec::with_capacity(WAV_HEADER_LEN);
    let (riff, data) = match data_len {
        Some(n) => (sat_u32(n.saturating_add(36)), sat_u32(n)),
        None => (u32::MAX, u32::MAX),
    };
    h.extend_from_slice(b"RIFF");
    push_u32(&mut h, riff);
    h.extend_from_slice(b"WAVEfmt ");
    push_u32(&mut h, 16);
    push_u16(&mut h, FORMAT_PCM);
    push_u16(&mut h, 1);
    push_u32(&mut h, sample_rate);
    push_u32(&mut h, sample_rate.saturating_mul(2));
    push_u16(&mut h, 2);
    push_u16(&mut h, 16);
    h.extend_from_slice(b"data");
    push_u32(&mut h, data);
    h
}

/// One float sample as a 16-bit PCM value: clamped, scaled by 32767, rounded.
#[inline]
pub fn f32_to_i16(x: f32) -> i16 {
    if x.is_nan() {
        return 0;
    }
    (x.clamp(-1.0, 1.0) * 32767.0).round() as i16
}

/// Raw signed 16-bit little-endian PCM.
pub fn pcm_s16le(samples: &[f32]) -> Vec<u8> {
    let mut out = Vec::with_capacity(samples.len() * 2);
    for &s in samples {
        out.extend_from_slice(&f32_to_i16(s).to_le_bytes());
    }
    out
}

/// A complete 16-bit PCM mono WAV file.
pub fn wav_i16(audio: &Audio) -> Vec<u8> {
    let mut out = pcm16_header(audio.sample_rate, Some(audio.samples.len() * 2));
    out.reserve(audio.samples.len() * 2);
    for &s in &audio.samples {
        out.extend_from_slice(&f32_to_i16(s).to_le_bytes());
    }
    out
}

/// The 58-byte header of a 32-bit float mono WAV (`WAVE_FORMAT_IEEE_FLOAT`
/// with the `fact` chunk non-PCM formats require) holding `n` samples
/// (`None`: unknown length, the RIFF, `fact` and data sizes `0xFFFFFFFF`).
fn f32_header(sample_rate: u32, n: Option<usize>) -> Vec<u8> {
    // RIFF payload: "WAVE" + fmt (8 + 18) + fact (8 + 4) + data (8 + n).
    let (riff, frames, data) = match n {
        Some(n) => (
            sat_u32((n * 4).saturating_add(4 + 26 + 12 + 8)),
            sat_u32(n),
            sat_u32(n * 4),
        ),
        None => (u32::MAX, u32::MAX, u32::MAX),
    };
    let mut out = Vec::with_capacity(WAV_F32_HEADER_LEN);
    out.extend_from_slice(b"RIFF");
    push_u32(&mut out, riff);
    out.extend_from_slice(b"WAVEfmt ");
    push_u32(&mut out, 18);
    push_u16(&mut out, FORMAT_IEEE_FLOAT);
    push_u16(&mut out, 1);
    push_u32(&mut out, sample_rate);
    push_u32(&mut out, sample_rate.saturating_mul(4));
    push_u16(&mut out, 4);
    push_u16(&mut out, 32);
    push_u16(&mut out, 0);
    out.extend_from_slice(b"fact");
    push_u32(&mut out, 4);
    push_u32(&mut out, frames);
    out.extend_from_slice(b"data");
    push_u32(&mut out, data);
    out
}

/// Size of the 32-bit float header ([`wav_f32`], [`wav_f32_stream_header`]).
pub const WAV_F32_HEADER_LEN: usize = 58;

/// A complete 32-bit float mono WAV file (`WAVE_FORMAT_IEEE_FLOAT` with the
/// `fact` chunk non-PCM formats require).
pub fn wav_f32(audio: &Audio) -> Vec<u8> {
    let n = audio.samples.len();
    let mut out = f32_header(audio.sample_rate, Some(n));
    out.reserve(n * 4);
    for &s in &audio.samples {
        let v = if s.is_finite() { s } else { 0.0 };
        out.extend_from_slice(&v.to_le_bytes());
    }
    out
}

/// The header of a 32-bit float mono WAV stream of unknown length
/// ([`WAV_F32_HEADER_LEN`] bytes, sizes `0xFFFFFFFF`), to be followed by
/// little-endian `f32` samples.
pub fn wav_f32_stream_header(sample_rate: u32) -> Vec<u8> {
    f32_header(sample_rate, None)
}

/// The header of a 16-bit mono WAV stream of unknown length: 44 bytes with
/// the RIFF and data sizes set to `0xFFFFFFFF` (the convention of common
/// streaming servers, as the real sizes are unknown when the header is
/// sent), to be followed by [`pcm_s16le`] chunks. Decoders of vctts (and
/// most players) read such a stream to its end.
pub fn wav_stream_header(sample_rate: u32) -> Vec<u8> {
    pcm16_header(sample_rate, None)
}

/// Encodes a clip in the requested format.
pub fn encode(audio: &Audio, format: OutputFormat) -> Vec<u8> {
    match format {
        OutputFormat::Wav => wav_i16(audio),
        OutputFormat::WavF32 => wav_f32(audio),
        OutputFormat::Pcm => pcm_s16le(&audio.samples),
    }
}

/// The HTTP content type of a format: `audio/wav`, or
/// `audio/pcm;rate=<rate>` for raw PCM (whose bytes do not say their rate).
pub fn content_type(format: OutputFormat, sample_rate: u32) -> String {
    match format {
        OutputFormat::Wav | OutputFormat::WavF32 => "audio/wav".to_string(),
        OutputFormat::Pcm => format!("audio/pcm;rate={sample_rate}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pcm_clamps_and_rounds() {
        let b = pcm_s16le(&[0.0, 1.0, -1.0, 2.0, -3.0, 0.5, f32::NAN, 1.0 / 32767.0 * 0.6]);
        let v: Vec<i16> = b.chunks(2).map(|c| i16::from_le_bytes([c[0], c[1]])).collect();
        assert_eq!(v, vec![0, 32767, -32767, 32767, -32767, 16384, 0, 1]);
    }

    #[test]
    fn wav_i16_header_fields() {
        let a = Audio::new(vec![0.25; 10], 22050);
        let w = wav_i16(&a);
        assert_eq!(w.len(), 44 + 20);
        assert_eq!(&w[0..4], b"RIFF");
        assert_eq!(u32::from_le_bytes(w[4..8].try_into().unwrap()), 36 + 20);
        assert_eq!(u32::from_le_bytes(w[24..28].try_into().unwrap()), 22050);
        assert_eq!(u32::from_le_bytes(w[40..44].try_into().unwrap()), 20);
    }

    #[test]
    fn hound_reads_both_wavs() {
        let a = Audio::new(vec![0.0, 0.5, -0.25, 1.5], 16000);
        let r = hound::WavReader::new(std::io::Cursor::new(wav_i16(&a))).unwrap();
        assert_eq!(r.spec().bits_per_sample, 16);
        assert_eq!(r.duration(), 4);
        let mut r = hound::WavReader::new(std::io::Cursor::new(wav_f32(&a))).unwrap();
        assert_eq!(r.spec().sample_format, hound::SampleFormat::Float);
        let s: Vec<f32> = r.samples::<f32>().map(|s| s.unwrap()).collect();
        assert_eq!(s, a.samples);
    }

    #[test]
    fn stream_header_has_unknown_sizes() {
        let h = wav_stream_header(24000);
        assert_eq!(h.len(), WAV_HEADER_LEN);
        assert_eq!(&h[4..8], &[0xFF; 4]);
        assert_eq!(&h[40..44], &[0xFF; 4]);
        assert_eq!(u32::from_le_bytes(h[28..32].try_into().unwrap()), 48000);
    }

    #[test]
    fn content_types() {
        assert_eq!(content_type(OutputFormat::Wav, 22050), "audio/wav");
        assert_eq!(content_type(OutputFormat::WavF32, 22050), "audio/wav");
        assert_eq!(content_type(OutputFormat::Pcm, 22050), "audio/pcm;rate=22050");
        let a = Audio::new(vec![0.1; 3], 8000);
        assert_eq!(encode(&a, OutputFormat::Pcm).len(), 6);
    }
}
