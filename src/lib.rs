//! vctts: voice-clone text-to-speech as a library.
//!
//! This crate is the embedder's entry point, and the layer the `vctts` CLI
//! and the `vctts-server` share: [`Tts`] owns the installed engines (built
//! from a models folder through [`engines::catalog`]) and a voice store (a
//! SQLite [`store::SqliteVoiceStore`] in a data folder), and runs the use
//! cases between text and encoded audio:
//!
//! - **voices**: clone a voice from a reference clip and store it
//!   ([`Tts::clone_voice`]), list and delete stored voices ([`Tts::store`]);
//! - **resolution**: a [`Speech`] names a stored voice, a built-in voice of
//!   the engine, or a reference clip ([`VoiceChoice`]); a stored voice's
//!   profile for an engine is made once, stored and cached ([`Profiles`]);
//! - **synthesis**: whole ([`Tts::speak`]) or streamed sentence by sentence
//!   with accounting ([`Tts::speak_stream`], [`stream::AccountedStream`]);
//! - **encoding** by output format ([`encode()`]).
//!
//! Clone a voice and speak with it (needs the models of `scripts/setup.sh`):
//!
//! ```no_run
//! use vctts::{CloneVoice, Speech, Tts};
//! # async fn demo() -> vctts::Result<()> {
//! let tts = Tts::builder("models", "data").threads(2).build().await?;
//! let reference = tts.read_reference("alice.wav".as_ref()).await?;
//! let alice = tts.clone_voice(CloneVoice::new("alice", reference)?).await?;
//! let audio = tts.speak(&Speech::new("Hello, I am Alice.").voice(&alice.voice.id)).await?;
//! let wav = vctts::encode(&audio, vctts::OutputFormat::Wav);
//! std::fs::write("alice-says-hello.wav", &wav.bytes).map_err(|e| vctts::Error::io("writing", e))?;
//! # Ok(()) }
//! ```
//!
//! The voice store works without any model:
//!
//! ```
//! use vctts::store::SqliteVoiceStore;
//! use vctts::{EngineKind, NewVoice, VoiceId, VoiceProfile, VoiceStore};
//! let dir = tempfile::tempdir()?;
//! let store = SqliteVoiceStore::open(dir.path())?;
//! store.insert(NewVoice {
//!     id: VoiceId::new("bob")?,
//!     name: "Bob".into(),
//!     language: Some("en".into()),
//!     transcript: None,
//!     reference_seconds: 0.0,
//!     sample_rate: 0,
//!     reference_wav: None,
//!     quality_json: None,
//!     profiles: vec![VoiceProfile { engine: EngineKind::OpenVoice, format_version: 1, data: vec![1, 2] }],
//! })?;
//! let (voices, total) = store.list(0, 10)?;
//! assert_eq!((voices[0].voice.name.as_str(), total), ("Bob", 1));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! The lower layers stay reachable: [`core`] (domain types, errors, the
//! [`Engine`] trait for engines of your own) and [`engines`] (the ONNX
//! engines, audio decoding and DSP).
#![forbid(unsafe_code)]

pub mod encode;
pub mod store;
pub mod stream;
pub mod tts;
pub mod voices;

pub use encode::{Encoded, encode};
pub use store::{SharedVoiceStore, SqliteVoiceStore, StoreExt};
pub use tts::{CloneVoice, Prepared, Reference, Speech, Tts, TtsBuilder};
pub use vctts_core as core;
pub use vctts_core::*;
pub use vctts_engines as engines;
pub use voices::{Profiles, VoiceChoice};
pub mod hub;
