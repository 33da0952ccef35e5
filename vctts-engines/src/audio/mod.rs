//! Audio front end shared by the engines: decode uploads, convert rates,
//! clean up references, measure their quality, encode results.
//!
//! - [`decode`]: WAV/FLAC/MP3/OGG/AAC bytes to mono `f32`, with limits;
//! - [`resample`]: rubato sinc resampling with pooled resamplers;
//! - [`vad`]: energy-based speech segments;
//! - [`preprocess`]: DC removal, silence trimming, loudness and peak
//!   control, duration limits;
//! - [`quality`]: a report on a reference clip, with human warnings;
//! - [`format`]: [`AudioFormat`], the output formats with their names,
//!   extensions and MIME types;
//! - [`encoders`]: [`StreamEncoder`] and [`encode_all`], every format
//!   (wav, pcm, mp3, opus, aac, flac) whole or streamed;
//! - [`encode`]: WAV (16-bit, float), stream headers and raw PCM building
//!   blocks.
//!
//! Invariant: every clip is a [`vctts_core::Audio`] (mono `f32` at a rate);
//! user input never panics, it returns [`vctts_core::Error::AudioDecode`] or
//! [`vctts_core::Error::AudioRejected`].

pub mod decode;
pub mod encode;
pub mod encoders;
pub mod format;
pub mod preprocess;
pub mod quality;
pub mod resample;
pub mod vad;

/// The largest absolute difference between two runs of samples, over the
/// length they share (for tests that compare two ways of making audio).
#[cfg(test)]
pub(crate) fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max)
}

pub use decode::{DecodeLimits, decode, decode_file};
pub use encode::{content_type, encode, pcm_s16le, wav_f32, wav_i16, wav_stream_header};
pub use encoders::{EncodeOptions, StreamEncoder, encode_all, encode_all_with};
pub use format::AudioFormat;
pub use preprocess::{
    PreprocessOptions, limit_peak, normalize_loudness, preprocess, remove_dc, trim_silence,
};
pub use quality::{QualityReport, analyze};
pub use resample::{StreamResampler, resample};
pub use vad::{VadConfig, speech_segments};
