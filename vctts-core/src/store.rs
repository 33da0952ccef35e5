//! The voice store contract: where voices, their reference audio and their
//! per-engine profiles are kept. One trait, implemented once (SQLite, in the
//! root `vctts` crate) and used by the CLI, the server and embedders.
//!
//! Invariants every implementation keeps:
//! - a voice is visible only once its metadata, its reference audio (if any)
//!   and its first profiles are all written; nothing is half visible;
//! - ids are unique: [`VoiceStore::insert`] refuses an existing id;
//! - a profile is kept once per (voice, engine): [`VoiceStore::add_profile`]
//!   keeps the first one and returns the stored one, so a profile is computed
//!   once and reused;
//! - methods block (disk I/O); async callers run them on a blocking pool.

use crate::error::Result;
use crate::kind::EngineKind;
use crate::voice::{Voice, VoiceId, VoiceProfile};

/// A voice to insert.
#[derive(Debug, Clone)]
pub struct NewVoice {
    /// Its id.
    pub id: VoiceId,
    /// Display name.
    pub name: String,
    /// Language of the reference.
    pub language: Option<String>,
    /// Transcript of the reference.
    pub transcript: Option<String>,
    /// Seconds of reference audio.
    pub reference_seconds: f32,
    /// Sample rate of the stored reference.
    pub sample_rate: u32,
    /// The reference as a WAV file; `None` for voices imported without one
    /// (their missing profiles cannot be made later).
    pub reference_wav: Option<Vec<u8>>,
    /// The quality report, as JSON.
    pub quality_json: Option<String>,
    /// Profiles made at extraction.
    pub profiles: Vec<VoiceProfile>,
}

/// A voice as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredVoice {
    /// Metadata (with the engines that have profiles).
    pub voice: Voice,
    /// Sample rate of the stored reference.
    pub sample_rate: u32,
    /// The quality report, as JSON.
    pub quality_json: Option<String>,
}

/// Where voices live. Object safe: callers hold an `Arc<dyn VoiceStore>`.
pub trait VoiceStore: Send + Sync + std::fmt::Debug {
    /// Whether a voice exists.
    fn exists(&self, id: &VoiceId) -> Result<bool>;
    /// Inserts a voice with its reference and first profiles; refuses an
    /// existing id (`invalid_input` on `voice_id`).
    fn insert(&self, voice: NewVoice) -> Result<StoredVoice>;
    /// A voice's metadata.
    fn get(&self, id: &VoiceId) -> Result<Option<StoredVoice>>;
    /// A page of voices, newest first, and the total count.
    fn list(&self, offset: usize, limit: usize) -> Result<(Vec<StoredVoice>, usize)>;
    /// The profile of a voice for one engine, if made.
    fn profile(&self, id: &VoiceId, engine: EngineKind) -> Result<Option<VoiceProfile>>;
    /// Stores a profile unless one exists for that engine; returns the stored
    /// one. Fails with `voice_not_found` if the voice is gone.
    fn add_profile(&self, id: &VoiceId, profile: &VoiceProfile) -> Result<VoiceProfile>;
    /// The stored reference WAV; `None` if the voice or its reference is missing.
    fn reference_audio(&self, id: &VoiceId) -> Result<Option<Vec<u8>>>;
    /// Deletes a voice; `false` if it did not exist.
    fn delete(&self, id: &VoiceId) -> Result<bool>;
    /// Number of voices.
    fn count(&self) -> Result<usize>;
}
