//! Spectral features that match the upstream models bit-for-bit in
//! convention (and to float rounding in value): windows, the STFT, mel
//! filterbanks and the per-model presets.
//!
//! - [`window`]: periodic and symmetric Hann and Hamming;
//! - [`stft`]: the torch.stft framing with `center` or explicit reflect pads;
//! - [`mel`]: HTK/Slaney mel scales, Slaney area normalisation, log clamp;
//! - [`presets`]: OpenVoice, GPT-SoVITS and XTTS front ends.
//!
//! Invariant: every output is an `ndarray::Array2<f32>` shaped
//! `[bins_or_mels, frames]` in standard layout, ready to become an ONNX
//! tensor after adding a batch axis.

pub mod mel;
pub mod presets;
pub mod stft;
pub mod window;

pub use mel::{
    MelConfig, MelScale, apply_mel, hz_to_mel, log_clamp, mel_filterbank, mel_to_hz, try_mel_filterbank,
};
pub use stft::{Padding, Stft, StftConfig, reflect_pad};
pub use window::{WindowKind, window};
