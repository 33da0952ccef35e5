//! vctts-engines: the TTS engines of vctts on ONNX Runtime, and the audio and
//! text front ends they share.
//!
//! - [`runtime`]: finds and loads ONNX Runtime, builds sessions, runs them on
//!   threads the engine owns;
//! - [`audio`]: decode, resample, preprocess, measure, encode;
//! - [`spectral`]: STFT and mel features matching the upstream conventions;
//! - [`text`]: sentence splitting, normalisation, espeak-ng phonemes;
//! - [`sampling`]: seeded token sampling for the autoregressive engines;
//! - [`openvoice`]: the OpenVoice v2 engine (Piper VITS base + tone color converter);
//! - [`xtts`]: the XTTS-v2 engine (Coqui's model exported to ONNX).
//! - `g2p`: the GPT-SoVITS v2 text front end (Chinese, English, mixed; v2 symbols).
//! - `g2p`: the GPT-SoVITS v2 text front end (Chinese, English, mixed; v2 symbols);
//! - [`gpt_sovits`]: the GPT-SoVITS v2 engine (T2S + VITS on a logits split).
//!
//! Invariant: this is the only vctts crate that depends on `ort`.

pub mod audio;
pub mod catalog;
pub mod concurrent;
pub mod runtime;
pub mod sampling;
pub mod schedule;
pub mod spectral;
pub mod text;

#[cfg(feature = "gpt-sovits")]
pub mod g2p;
#[cfg(feature = "openvoice")]
pub mod openvoice;

#[cfg(feature = "gpt-sovits")]
pub mod gpt_sovits;
#[cfg(feature = "xtts")]
pub mod xtts;
