//! Voice resolution and profile caching, shared by [`crate::Tts`] (engines in
//! this process) and the server's gateway (engines on routed nodes).
//!
//! A name resolves in this order: a stored voice (its profile for the engine,
//! made from the stored reference on first use), then a built-in voice of
//! the engine; anything else is `voice_not_found`. A reference clip is cloned
//! on the fly and never stored.
//!
//! Invariants:
//! - a profile is made at most once per (voice, engine) even under
//!   concurrent requests: one maker runs, the others wait and read the
//!   stored result;
//! - made profiles are stored ([`VoiceStore::add_profile`], first one wins)
//!   and kept in a bounded in-memory cache; [`Profiles::forget`] drops a
//!   deleted voice from the cache;
//! - a failed extraction stores nothing and leaves the next request free to
//!   try again.

use crate::store::{SharedVoiceStore, StoreExt};
use parking_lot::Mutex;
use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use vctts_core::{EngineKind, Error, Language, ReferenceAudio, Result, VoiceId, VoiceProfile};
use vctts_engines::audio::decode::{DecodeLimits, decode};

/// Which voice to speak with.
#[derive(Debug, Clone, Default, PartialEq)]
pub enum VoiceChoice {
    /// The engine's default voice.
    #[default]
    Default,
    /// A stored voice id or a built-in voice name.
    Named(String),
    /// A reference clip to clone on the fly (not stored).
    Reference(ReferenceAudio),
}

impl From<&str> for VoiceChoice {
    fn from(s: &str) -> Self {
        VoiceChoice::Named(s.to_string())
    }
}
impl From<String> for VoiceChoice {
    fn from(s: String) -> Self {
        VoiceChoice::Named(s)
    }
}
impl From<&VoiceId> for VoiceChoice {
    fn from(id: &VoiceId) -> Self {
        VoiceChoice::Named(id.to_string())
    }
}
impl From<VoiceId> for VoiceChoice {
    fn from(id: VoiceId) -> Self {
        VoiceChoice::Named(id.to_string())
    }
}
impl From<ReferenceAudio> for VoiceChoice {
    fn from(r: ReferenceAudio) -> Self {
        VoiceChoice::Reference(r)
    }
}

/// Most profiles kept in memory.
pub const PROFILE_CACHE_CAPACITY: usize = 256;

type Key = (VoiceId, EngineKind);

/// Profiles of stored voices: looked up, made once when missing, stored and
/// cached. Cheap to share behind an `Arc`.
pub struct Profiles {
    store: SharedVoiceStore,
    cache: Mutex<HashMap<Key, Arc<VoiceProfile>>>,
    making: Mutex<HashMap<Key, Arc<tokio::sync::Mutex<()>>>>,
}

impl std::fmt::Debug for Profiles {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Profiles")
            .field("cached", &self.cache.lock().len())
            .finish()
    }
}

impl Profiles {
    /// Profiles of the voices in `store`.
    pub fn new(store: SharedVoiceStore) -> Self {
        Self {
            store,
            cache: Mutex::new(HashMap::new()),
            making: Mutex::new(HashMap::new()),
        }
    }

    /// The store behind.
    pub fn store(&self) -> &SharedVoiceStore {
        &self.store
    }

    /// Drops a voice's profiles from the cache (after it was deleted).
    pub fn forget(&self, voice: &VoiceId) {
        self.cache.lock().retain(|(v, _), _| v != voice);
    }

    fn cached(&self, key: &Key) -> Option<Arc<VoiceProfile>> {
        self.cache.lock().get(key).cloned()
    }

    fn remember(&self, key: Key, profile: VoiceProfile) -> Arc<VoiceProfile> {
        let profile = Arc::new(profile);
        let mut cache = self.cache.lock();
        if cache.len() >= PROFILE_CACHE_CAPACITY {
            cache.clear();
        }
        cache.insert(key, profile.clone());
        profile
    }

    /// The profile of `voice` for `engine`: `Some` for a stored voice (made
    /// with `make` from the stored reference when missing), `None` when
    /// `voice` is one of `builtin_voices`, else `voice_not_found`.
    pub async fn resolve<F, Fut>(
        &self,
        voice: &VoiceId,
        engine: EngineKind,
        builtin_voices: &[String],
        make: F,
    ) -> Result<Option<Arc<VoiceProfile>>>
    where
        F: FnOnce(ReferenceAudio) -> Fut,
        Fut: Future<Output = Result<VoiceProfile>>,
    {
        let key = (voice.clone(), engine);
        if let Some(p) = self.cached(&key) {
            return Ok(Some(p));
        }
        let v = voice.clone();
        let (stored, profile) = self
            .store
            .run(move |s| Ok((s.exists(&v)?, s.profile(&v, engine)?)))
            .await?;
        if let Some(p) = profile {
            return Ok(Some(self.remember(key, p)));
        }
        if !stored {
            if builtin_voices.iter().any(|b| b == voice.as_str()) {
                return Ok(None);
            }
            return Err(Error::VoiceNotFound(voice.to_string()));
        }
        // One maker per (voice, engine); later callers find it stored.
        let lock = self.making.lock().entry(key.clone()).or_default().clone();
        let _guard = lock.lock().await;
        let made = self.make_locked(&key, make).await;
        self.making.lock().remove(&key);
        made.map(Some)
    }

    async fn make_locked<F, Fut>(&self, key: &Key, make: F) -> Result<Arc<VoiceProfile>>
    where
        F: FnOnce(ReferenceAudio) -> Fut,
        Fut: Future<Output = Result<VoiceProfile>>,
    {
        let (voice, engine) = key.clone();
        let v = voice.clone();
        if let Some(p) = self.store.run(move |s| s.profile(&v, engine)).await? {
            return Ok(self.remember(key.clone(), p));
        }
        let reference = self.stored_reference(&voice, engine).await?;
        let profile = make(reference).await?;
        let v = voice.clone();
        let stored = self.store.run(move |s| s.add_profile(&v, &profile)).await?;
        tracing::info!(voice_id = %voice, engine = %engine, "made a missing voice profile");
        Ok(self.remember(key.clone(), stored))
    }

    /// The stored reference of a voice, decoded, with its transcript and language.
    pub async fn stored_reference(&self, voice: &VoiceId, engine: EngineKind) -> Result<ReferenceAudio> {
        let v = voice.clone();
        let (meta, wav) = self
            .store
            .run(move |s| Ok((s.get(&v)?, s.reference_audio(&v)?)))
            .await?;
        let meta = meta.ok_or_else(|| Error::VoiceNotFound(voice.to_string()))?;
        let wav = wav.ok_or_else(|| {
            Error::invalid(
                "voice",
                format!(
                    "voice {voice} has no stored reference audio, so no {engine} profile can be made; \
                     extract it again from its reference"
                ),
            )
        })?;
        let audio = tokio::task::spawn_blocking(move || decode(&wav, Some("wav"), &DecodeLimits::default()))
            .await
            .map_err(|e| Error::Internal(format!("decoder task failed: {e}")))??;
        Ok(ReferenceAudio {
            audio,
            transcript: meta.voice.transcript,
            // Stored as the tag `Language` wrote; a value an older version
            // stored unchecked that does not parse counts as unknown.
            language: meta
                .voice
                .language
                .as_deref()
                .and_then(|l| Language::parse(l).ok()),
        })
    }
}
