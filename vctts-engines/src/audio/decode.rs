//! Decoding uploaded or stored audio into mono `f32`.
//!
//! WAV (8/16/24/32-bit integer PCM and 32-bit float) goes through `hound`;
//! everything else (FLAC, MP3, OGG Vorbis, AAC in ADTS, and the WAV codecs or headers hound lacks
//! such as ADPCM or A-law) through `symphonia`. The format is found from the
//! content: the caller's hint (an extension or MIME type) only breaks ties
//! and names the expectation in error messages.
//!
//! Invariants:
//! - no input bytes make this panic: malformed data is
//!   [`Error::AudioDecode`], usable-but-refused audio (empty, too many
//!   channels, too long, too large) is [`Error::AudioRejected`] naming the
//!   limit; a panic inside a third-party decoder is caught and reported as
//!   [`Error::AudioDecode`] as a last line of defence;
//! - limits are checked from the container header before anything is
//!   decoded when the header states the length (WAV, FLAC, Xing/Info MP3,
//!   OGG), and again while decoding, so a 3-hour file costs a header parse;
//! - channels are averaged into one (`mean`, as torchaudio-based upstream
//!   loaders do); integer PCM is scaled by `1 / 2^(bits-1)`;
//! - a WAV whose RIFF and data sizes are `0xFFFFFFFF` (a stream header, see
//!   [`super::encode::wav_stream_header`]) is read to the end of the bytes;
//!   any other data chunk that claims more bytes than exist is truncated and
//!   refused.

use std::io::{Cursor, Read};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::Path;

use symphonia::core::audio::SampleBuffer;
use symphonia::core::codecs::{CODEC_TYPE_FLAC, CODEC_TYPE_NULL, DecoderOptions};
use symphonia::core::errors::Error as SymphoniaError;
use symphonia::core::formats::FormatOptions;
use symphonia::core::io::MediaSourceStream;
use symphonia::core::meta::MetadataOptions;
use symphonia::core::probe::Hint;
use vctts_core::{Audio, Error, Result};

/// Lowest sample rate accepted.
pub const MIN_SAMPLE_RATE: u32 = 4_000;
/// Highest sample rate accepted.
pub const MAX_SAMPLE_RATE: u32 = 384_000;

/// What a decode accepts. Defaults: 600 s, 2 channels, 100 MB.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DecodeLimits {
    /// Longest accepted duration in seconds.
    pub max_seconds: f32,
    /// Most channels accepted (they are mixed down to mono).
    pub max_channels: u16,
    /// Largest accepted input in bytes.
    pub max_bytes: usize,
}

impl Default for DecodeLimits {
    fn default() -> Self {
        Self {
            max_seconds: 600.0,
            max_channels: 2,
            max_bytes: 100 * 1000 * 1000,
        }
    }
}

impl DecodeLimits {
    fn check_bytes(&self, len: u64) -> Result<()> {
        if len > self.max_bytes as u64 {
            return Err(Error::AudioRejected(format!(
                "the file is {} bytes ({:.1} MB); the limit is {} bytes ({:.1} MB)",
                len,
                len as f64 / 1e6,
                self.max_bytes,
                self.max_bytes as f64 / 1e6
            )));
        }
        Ok(())
    }

    fn check_channels(&self, channels: usize) -> Result<()> {
        if channels == 0 {
            return Err(Error::AudioDecode("the stream declares 0 channels".into()));
        }
        if channels > self.max_channels as usize {
            return Err(Error::AudioRejected(format!(
                "the audio has {channels} channels; at most {} are accepted",
                self.max_channels
            )));
        }
        Ok(())
    }

    fn check_rate(rate: u32) -> Result<()> {
        if rate == 0 {
            return Err(Error::AudioDecode(
                "the stream declares a sample rate of 0 Hz".into(),
            ));
        }
        if !(MIN_SAMPLE_RATE..=MAX_SAMPLE_RATE).contains(&rate) {
            return Err(Error::AudioRejected(format!(
                "the sample rate is {rate} Hz; {MIN_SAMPLE_RATE}–{MAX_SAMPLE_RATE} Hz is accepted"
            )));
        }
        Ok(())
    }

    /// The most frames accepted at `rate`.
    fn max_frames(&self, rate: u32) -> u64 {
        (self.max_seconds.max(0.0) as f64 * rate as f64).floor() as u64
    }

    fn check_frames(&self, frames: u64, rate: u32, declared: bool) -> Result<()> {
        if frames > self.max_frames(rate) {
            let limit = fmt_secs(self.max_seconds);
            return Err(Error::AudioRejected(if declared {
                let secs = frames as f64 / rate as f64;
                format!("the header declares {secs:.1} s of audio; the limit is {limit} s")
            } else {
                format!("the audio is longer than the limit of {limit} s")
            }));
        }
        Ok(())
    }
}

fn fmt_secs(s: f32) -> String {
    if s.fract() == 0.0 {
        format!("{s:.0}")
    } else {
        format!("{s}")
    }
}

/// Decodes a complete file held in memory into mono `f32` at its own rate.
///
/// `hint` is a file extension (`"mp3"`, `".flac"`) or a MIME type
/// (`"audio/ogg"`); it may be wrong and is never trusted over the content.
pub fn decode(bytes: &[u8], hint: Option<&str>, limits: &DecodeLimits) -> Result<Audio> {
    if bytes.is_empty() {
        return Err(Error::AudioRejected("the audio file is empty (0 bytes)".into()));
    }
    limits.check_bytes(bytes.len() as u64)?;
    let audio = match catch_unwind(AssertUnwindSafe(|| decode_any(bytes, hint, limits))) {
        Ok(r) => r?,
        Err(_) => {
            return Err(Error::AudioDecode(
                "the decoder failed on malformed data (internal decoder panic)".into(),
            ));
        }
    };
    if audio.samples.is_empty() {
        return Err(Error::AudioRejected("the audio has no samples (0 s)".into()));
    }
    Ok(audio)
}

/// Reads and decodes a file; the size limit is checked before reading.
pub fn decode_file(path: &Path, limits: &DecodeLimits) -> Result<Audio> {
    let meta = std::fs::metadata(path).map_err(|e| Error::io(format!("reading {}", path.display()), e))?;
    limits.check_bytes(meta.len())?;
    let bytes = std::fs::read(path).map_err(|e| Error::io(format!("reading {}", path.display()), e))?;
    let ext = path.extension().and_then(|e| e.to_str());
    decode(&bytes, ext, limits)
}

fn decode_any(bytes: &[u8], hint: Option<&str>, limits: &DecodeLimits) -> Result<Audio> {
    if is_riff_wave(bytes) {
        match decode_wav(bytes, limits) {
            Ok(a) => return Ok(a),
            Err(WavError::Unsupported) => {}
            // A header hound finds odd (64-bit float, an unusual fmt size)
            // may still be a WAV symphonia reads; if not, hound's reason is
            // the better message.
            Err(WavError::Format(e)) => return decode_symphonia(bytes, hint, limits).map_err(|_| e),
            Err(WavError::Fatal(e)) => return Err(e),
        }
    }
    decode_symphonia(bytes, hint, limits)
}

fn is_riff_wave(bytes: &[u8]) -> bool {
    bytes.len() >= 12 && &bytes[0..4] == b"RIFF" && &bytes[8..12] == b"WAVE"
}

enum WavError {
    /// A valid WAV of a codec hound does not read: try symphonia.
    Unsupported,
    /// A header hound rejects: symphonia gets a try.
    Format(Error),
    /// Refused or corrupt: no other decoder is tried.
    Fatal(Error),
}

impl From<Error> for WavError {
    fn from(e: Error) -> Self {
        WavError::Fatal(e)
    }
}

/// Where the data chunk is and what the fmt chunk says about framing.
struct WavLayout {
    data_start: usize,
    declared_len: u32,
    block_align: u16,
}

/// Walks the RIFF chunks up to `data` (hound does the real parsing; this
/// finds the data chunk so stream headers and truncation can be handled).
fn wav_layout(bytes: &[u8]) -> Option<WavLayout> {
    let mut off = 12usize;
    let mut block_align = None;
    loop {
        let head = bytes.get(off..off.checked_add(8)?)?;
        let id = &head[0..4];
        let len = u32::from_le_bytes([head[4], head[5], head[6], head[7]]);
        let body = off + 8;
        if id == b"fmt " {
            let fmt = bytes.get(body..body.checked_add(14)?)?;
            block_align = Some(u16::from_le_bytes([fmt[12], fmt[13]]));
        }
        if id == b"data" {
            return Some(WavLayout {
                data_start: body,
                declared_len: len,
                block_align: block_align?,
            });
        }
        off = body.checked_add(len as usize)?;
    }
}

/// Maps a hound error. Reading from memory cannot fail but by running out
/// of bytes, so every I/O error means the file was cut short.
fn hound_error(e: hound::Error) -> WavError {
    match e {
        hound::Error::Unsupported => WavError::Unsupported,
        hound::Error::FormatError(m) => WavError::Format(Error::AudioDecode(format!("invalid WAV: {m}"))),
        hound::Error::IoError(_) => WavError::Fatal(Error::AudioDecode(
            "truncated WAV: the file ends inside a header".into(),
        )),
        other => WavError::Fatal(Error::AudioDecode(format!("invalid WAV: {other}"))),
    }
}

fn decode_wav(bytes: &[u8], limits: &DecodeLimits) -> std::result::Result<Audio, WavError> {
    let layout = wav_layout(bytes);
    let available = layout.as_ref().map(|l| bytes.len() - l.data_start);
    // A stream header (sizes 0xFFFFFFFF): read what is there, whole frames only.
    let stream_len = match (&layout, available) {
        (Some(l), Some(avail)) if l.declared_len == u32::MAX && l.block_align > 0 => {
            let whole = avail - avail % l.block_align as usize;
            Some(u32::try_from(whole).unwrap_or(u32::MAX - u32::MAX % l.block_align as u32))
        }
        _ => None,
    };
    let reader: Box<dyn Read + '_> = match (&layout, stream_len) {
        (Some(l), Some(len)) => {
            let mut header = bytes[..l.data_start].to_vec();
            let n = header.len();
            header[n - 4..].copy_from_slice(&len.to_le_bytes());
            let end = l.data_start + len as usize;
            Box::new(Cursor::new(header).chain(Cursor::new(&bytes[l.data_start..end])))
        }
        _ => Box::new(Cursor::new(bytes)),
    };
    let mut wav = hound::WavReader::new(reader).map_err(hound_error)?;
    let spec = wav.spec();
    limits.check_channels(spec.channels as usize)?;
    DecodeLimits::check_rate(spec.sample_rate)?;
    limits.check_frames(wav.duration() as u64, spec.sample_rate, true)?;
    if let (Some(l), Some(avail), None) = (&layout, available, stream_len) {
        if (l.declared_len as usize) > avail {
            return Err(Error::AudioDecode(format!(
                "truncated WAV: the data chunk declares {} bytes but only {avail} are present",
                l.declared_len
            ))
            .into());
        }
    }
    let channels = spec.channels as usize;
    let frames = wav.duration() as usize;
    let mut out = Vec::with_capacity(frames);
    let truncated = |e: hound::Error| -> WavError {
        match e {
            hound::Error::IoError(_) => WavError::Fatal(Error::AudioDecode(
                "truncated WAV: the file ends inside the data chunk".into(),
            )),
            other => hound_error(other),
        }
    };
    match spec.sample_format {
        hound::SampleFormat::Int => {
            if !(8..=32).contains(&spec.bits_per_sample) {
                return Err(WavError::Unsupported);
            }
            let scale = 1.0 / (1u64 << (spec.bits_per_sample - 1)) as f64;
            downmix_into(wav.samples::<i32>(), channels, &mut out, |s| {
                (s as f64 * scale) as f32
            })
            .map_err(truncated)?;
        }
        hound::SampleFormat::Float => {
            downmix_into(wav.samples::<f32>(), channels, &mut out, |s| s).map_err(truncated)?;
            if out.iter().any(|s| !s.is_finite()) {
                return Err(Error::AudioDecode("the WAV contains NaN or infinite samples".into()).into());
            }
        }
    }
    Ok(Audio::new(out, spec.sample_rate))
}

/// Averages interleaved frames of `channels` samples into `out`.
fn downmix_into<S, E>(
    samples: impl Iterator<Item = std::result::Result<S, E>>,
    channels: usize,
    out: &mut Vec<f32>,
    convert: impl Fn(S) -> f32,
) -> std::result::Result<(), E> {
    let inv = 1.0 / channels as f32;
    let mut acc = 0.0f32;
    let mut k = 0;
    for s in samples {
        acc += convert(s?);
        k += 1;
        if k == channels {
            out.push(if channels == 1 { acc } else { acc * inv });
            acc = 0.0;
            k = 0;
        }
    }
    Ok(())
}

fn symphonia_error(e: SymphoniaError) -> Error {
    match e {
        SymphoniaError::IoError(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
            Error::AudioDecode("truncated audio: the file ends inside a header".into())
        }
        SymphoniaError::Unsupported(what) => Error::AudioDecode(format!("unsupported audio: {what}")),
        SymphoniaError::LimitError(what) => Error::AudioRejected(format!("decoder limit reached: {what}")),
        other => Error::AudioDecode(other.to_string()),
    }
}

fn decode_symphonia(bytes: &[u8], hint: Option<&str>, limits: &DecodeLimits) -> Result<Audio> {
    let mut h = Hint::new();
    let hint = hint.map(|s| s.trim().trim_start_matches('.').to_ascii_lowercase());
    if let Some(s) = hint.as_deref().filter(|s| !s.is_empty()) {
        if s.contains('/') {
            h.mime_type(s);
        } else {
            h.with_extension(s);
        }
    }
    let mss = MediaSourceStream::new(Box::new(Cursor::new(bytes.to_vec())), Default::default());
    // Gapless trimming stays off: its arithmetic trusts header fields.
    let fmt_opts = FormatOptions::default();
    let probed = symphonia::default::get_probe()
        .format(&h, mss, &fmt_opts, &MetadataOptions::default())
        .map_err(|e| {
            let named = hint
                .as_deref()
                .map(|s| format!(" (named {s:?})"))
                .unwrap_or_default();
            match e {
                SymphoniaError::Unsupported(_) | SymphoniaError::IoError(_) => Error::AudioDecode(format!(
                    "not a recognised audio format{named}; WAV, FLAC, MP3 and OGG Vorbis are accepted"
                )),
                other => symphonia_error(other),
            }
        })?;
    let mut format = probed.format;
    let track = format
        .tracks()
        .iter()
        .find(|t| t.codec_params.codec != CODEC_TYPE_NULL)
        .ok_or_else(|| Error::AudioDecode("the file has no audio track".into()))?;
    let track_id = track.id;
    let params = track.codec_params.clone();
    if let Some(ch) = params.channels {
        limits.check_channels(ch.count())?;
    }
    if let Some(rate) = params.sample_rate {
        DecodeLimits::check_rate(rate)?;
        if let Some(n) = params.n_frames {
            limits.check_frames(n, rate, true)?;
        }
    }
    let mut decoder = symphonia::default::get_codecs()
        .make(&params, &DecoderOptions::default())
        .map_err(symphonia_error)?;

    let mut out: Vec<f32> = Vec::new();
    let mut rate = params.sample_rate;
    let mut buf: Option<SampleBuffer<f32>> = None;
    let mut bad_packets = 0usize;
    loop {
        let packet = match format.next_packet() {
            Ok(p) => p,
            Err(SymphoniaError::IoError(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => break,
            Err(SymphoniaError::ResetRequired) => break,
            Err(e) => return Err(symphonia_error(e)),
        };
        if packet.track_id() != track_id {
            continue;
        }
        let decoded = match decoder.decode(&packet) {
            Ok(d) => d,
            Err(SymphoniaError::DecodeError(_)) => {
                // One corrupt packet in a lossy stream is skipped, as players do.
                bad_packets += 1;
                if bad_packets > 64 && out.is_empty() {
                    return Err(Error::AudioDecode("no decodable audio packets".into()));
                }
                continue;
            }
            Err(SymphoniaError::IoError(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => break,
            Err(e) => return Err(symphonia_error(e)),
        };
        let spec = *decoded.spec();
        let channels = spec.channels.count();
        limits.check_channels(channels)?;
        match rate {
            None => {
                DecodeLimits::check_rate(spec.rate)?;
                rate = Some(spec.rate);
            }
            Some(r) if r != spec.rate => {
                return Err(Error::AudioDecode(format!(
                    "the sample rate changes mid-stream ({r} Hz to {} Hz)",
                    spec.rate
                )));
            }
            Some(_) => {}
        }
        let frames = decoded.frames();
        if frames == 0 {
            continue;
        }
        let needs_new = buf.as_ref().is_none_or(|b| b.capacity() < frames * channels);
        if needs_new {
            buf = Some(SampleBuffer::<f32>::new(decoded.capacity() as u64, spec));
        }
        let Some(b) = buf.as_mut() else { continue };
        b.copy_interleaved_ref(decoded);
        let inter = b.samples();
        if channels == 1 {
            out.extend_from_slice(inter);
        } else {
            let inv = 1.0 / channels as f32;
            out.extend(inter.chunks_exact(channels).map(|f| f.iter().sum::<f32>() * inv));
        }
        if let Some(r) = rate {
            limits.check_frames(out.len() as u64, r, false)?;
        }
    }
    let rate = rate.ok_or_else(|| Error::AudioDecode("the stream has no sample rate".into()))?;
    if out.is_empty() && bad_packets > 0 {
        return Err(Error::AudioDecode("no decodable audio packets".into()));
    }
    // Lossless containers state their exact length; fewer frames means the file was cut.
    if params.codec == CODEC_TYPE_FLAC {
        if let Some(n) = params.n_frames {
            if (out.len() as u64) < n {
                return Err(Error::AudioDecode(format!(
                    "truncated FLAC: the header declares {n} samples but only {} could be decoded",
                    out.len()
                )));
            }
        }
    }
    if out.iter().any(|s| !s.is_finite()) {
        return Err(Error::AudioDecode(
            "the stream contains NaN or infinite samples".into(),
        ));
    }
    Ok(Audio::new(out, rate))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audio::encode::{pcm_s16le, wav_i16, wav_stream_header};

    fn tone(n: usize) -> Vec<f32> {
        (0..n).map(|i| (i as f32 * 0.05).sin() * 0.5).collect()
    }

    #[test]
    fn wav_round_trip_within_one_lsb() {
        let a = Audio::new(tone(1000), 16000);
        let d = decode(&wav_i16(&a), Some("wav"), &DecodeLimits::default()).unwrap();
        assert_eq!(d.sample_rate, 16000);
        assert_eq!(d.samples.len(), 1000);
        for (x, y) in a.samples.iter().zip(&d.samples) {
            assert!((x - y).abs() < 1.5 / 32768.0);
        }
    }

    #[test]
    fn stream_header_reads_to_the_end() {
        let mut bytes = wav_stream_header(22050);
        bytes.extend(pcm_s16le(&tone(301)));
        bytes.push(0x12); // half a sample: dropped
        let d = decode(&bytes, None, &DecodeLimits::default()).unwrap();
        assert_eq!(d.samples.len(), 301);
        assert_eq!(d.sample_rate, 22050);
    }

    #[test]
    fn declared_length_over_the_limit_is_refused_from_the_header() {
        // A header claiming 3 hours of 16 kHz audio, followed by 1 KB of data.
        let mut bytes = wav_i16(&Audio::new(vec![0.0; 512], 16000));
        let claimed: u32 = 3 * 3600 * 16000 * 2;
        bytes[40..44].copy_from_slice(&claimed.to_le_bytes());
        let e = decode(&bytes, Some("wav"), &DecodeLimits::default()).unwrap_err();
        assert!(matches!(e, Error::AudioRejected(_)), "{e}");
        assert!(
            e.to_string().contains("10800.0 s") && e.to_string().contains("600 s"),
            "{e}"
        );
    }

    #[test]
    fn size_and_emptiness() {
        let limits = DecodeLimits {
            max_bytes: 10,
            ..Default::default()
        };
        let e = decode(&[0u8; 11], None, &limits).unwrap_err();
        assert!(
            matches!(e, Error::AudioRejected(_)) && e.to_string().contains("limit"),
            "{e}"
        );
        assert!(matches!(
            decode(&[], None, &DecodeLimits::default()),
            Err(Error::AudioRejected(_))
        ));
    }
}

/// Properties of the decoders on damaged files: real WAV, WAV f32, FLAC, MP3
/// and Ogg Opus clips truncated, overwritten or spliced at random decode or
/// fail with an audio error (`audio_decode_failed` / `audio_rejected`), never
/// with a panic or another kind of error, and never beyond the limits.
#[cfg(test)]
mod proptests {
    use super::*;
    use crate::audio::encoders::encode_all;
    use crate::audio::format::AudioFormat;
    use proptest::prelude::*;
    use std::sync::OnceLock;

    fn clips() -> &'static Vec<(AudioFormat, Vec<u8>)> {
        static CLIPS: OnceLock<Vec<(AudioFormat, Vec<u8>)>> = OnceLock::new();
        CLIPS.get_or_init(|| {
            let tone: Vec<f32> = (0..4000).map(|i| (i as f32 * 0.06).sin() * 0.4).collect();
            let audio = Audio::new(tone, 16000);
            [
                AudioFormat::Wav,
                AudioFormat::WavF32,
                AudioFormat::Flac,
                AudioFormat::Mp3,
                AudioFormat::Opus,
            ]
            .into_iter()
            .map(|f| (f, encode_all(&audio, f, None).expect("encode a test clip")))
            .collect()
        })
    }

    const LIMITS: DecodeLimits = DecodeLimits {
        max_seconds: 5.0,
        max_channels: 2,
        max_bytes: 1 << 20,
    };

    fn check(bytes: &[u8], hint: Option<&str>) -> std::result::Result<(), TestCaseError> {
        match decode(bytes, hint, &LIMITS) {
            Ok(a) => {
                prop_assert!(!a.samples.is_empty());
                prop_assert!(a.samples.len() as f64 <= 5.0 * a.sample_rate as f64 + 1.0);
                prop_assert!(a.samples.iter().all(|s| s.is_finite()));
            }
            Err(e) => prop_assert!(
                matches!(e, Error::AudioDecode(_) | Error::AudioRejected(_)),
                "not an audio error: {e:?}"
            ),
        }
        Ok(())
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 64, failure_persistence: None, ..ProptestConfig::default() })]

        #[test]
        fn damaged_clips_decode_or_fail_with_an_audio_error(
            which in 0usize..5,
            cut in any::<prop::sample::Index>(),
            edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..8),
            splice in prop::collection::vec(any::<u8>(), 0..64),
            hint in prop::sample::select(vec![None, Some("wav"), Some("flac"), Some("mp3"), Some("ogg")]),
        ) {
            let (format, clip) = &clips()[which];
            let mut bytes = clip.clone();
            for (at, b) in &edits {
                let i = at.index(bytes.len());
                bytes[i] = *b;
            }
            let at = cut.index(bytes.len());
            let mut truncated = bytes[..at.max(1)].to_vec();
            check(&truncated, hint)?;
            truncated.extend_from_slice(&splice);
            truncated.extend_from_slice(&bytes[at..]);
            check(&truncated, hint)?;
            check(&bytes, Some(format.extension()))?;
        }
    }
}
