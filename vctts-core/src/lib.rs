//! vctts-core: the types every other vctts crate speaks.
//!
//! The major components are:
//! - [`engine`]: the [`Engine`] trait a TTS backend implements, [`EngineKind`],
//!   [`EngineInfo`] and [`ModelState`];
//! - [`audio`], [`voice`], [`request`], [`language`]: domain types (mono `f32`
//!   audio, voice ids and profiles, synthesis requests, language tags);
//! - [`registry`] and [`balance`]: the node registry of the gateway and the
//!   policies that pick a node;
//! - [`limit`] and [`breaker`]: the layered rate limiter, concurrency limits and
//!   the per-node circuit breaker;
//! - [`store`]: the [`VoiceStore`] contract (the SQLite implementation is in
//!   the root `vctts` crate);
//! - [`package`]: split-volume model packages (pack, verify, restore, list);
//! - [`clock`]: an injectable clock so time-driven behaviour is testable;
//! - [`error`]: one error enum and the one table that classifies it (code,
//!   HTTP status, retryable, blame, Retry-After);
//! - [`kind`]: [`EngineKind`], a leaf every other module may name;
//! - [`hash`]: the one stable hash helper (FNV-1a, SplitMix64).
//!
//! Invariant: this crate does no network I/O and knows neither HTTP nor ONNX.
#![forbid(unsafe_code)]

pub mod audio;
pub mod balance;
pub mod breaker;
pub mod clock;
pub mod engine;
pub mod error;
pub mod hash;
pub mod kind;
pub mod language;
pub mod limit;
pub mod memory;
pub mod package;
pub mod registry;
pub mod request;
pub mod store;
pub mod units;
pub mod voice;

pub use audio::{Audio, AudioChunk};
pub use engine::{
    AudioStream, AudioStreamSender, CancelHook, CancelHookGuard, Engine, EngineInfo, EngineKind, ModelState,
    SynthesisControl,
};
pub use error::{Blame, Error, ErrorSpec, Result};
pub use language::Language;
pub use request::{OutputFormat, SamplingParams, SynthesisRequest};
pub use store::{NewVoice, StoredVoice, VoiceStore};
pub use voice::{ReferenceAudio, Voice, VoiceId, VoiceProfile};
