//! [`Tts`]: the use cases of vctts in one value — engines built from a models
//! folder, voices kept in a data folder, and the steps between text and
//! encoded audio (resolve the voice, check, synthesize or stream, encode).
//!
//! Invariants:
//! - engines are built once by [`TtsBuilder::build`] and loaded on first use
//!   (or at build with [`TtsBuilder::preload`]); an engine that was asked for
//!   by name and cannot be built fails the build with the reason, one that
//!   was merely installed-or-not is listed in [`Tts::missing`];
//! - a request is validated before any engine work;
//! - a stored voice's profile is made once per engine and stored
//!   ([`crate::Profiles`]); a reference clip is cloned per request and never stored;
//! - cloning stores nothing unless every requested engine made its profile.

use crate::encode::{Encoded, encode};
use crate::store::{SharedVoiceStore, SqliteVoiceStore, StoreExt};
use crate::stream::AccountedStream;
use crate::voices::{Profiles, VoiceChoice};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;
use vctts_core::{
    Audio, Engine, EngineInfo, EngineKind, Error, Language, ModelState, NewVoice, OutputFormat,
    ReferenceAudio, Result, StoredVoice, SynthesisRequest, VoiceId, VoiceProfile,
};
use vctts_engines::audio::decode::{DecodeLimits, decode, decode_file};
use vctts_engines::audio::preprocess::remove_dc;
use vctts_engines::audio::quality::{QualityReport, analyze};
use vctts_engines::catalog::{self, EngineOptions};

/// Builds a [`Tts`]; see [`Tts::builder`].
#[derive(Clone)]
pub struct TtsBuilder {
    models: PathBuf,
    data: PathBuf,
    kinds: Option<Vec<EngineKind>>,
    options: EngineOptions,
    custom: Vec<Arc<dyn Engine>>,
    store: Option<SharedVoiceStore>,
    default_engine: Option<EngineKind>,
    decode_limits: DecodeLimits,
    preload: bool,
}

impl std::fmt::Debug for TtsBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TtsBuilder")
            .field("models", &self.models)
            .field("data", &self.data)
            .field("kinds", &self.kinds)
            .field("options", &self.options)
            .field("custom", &self.custom.len())
            .finish()
    }
}

impl TtsBuilder {
    /// Inference threads per engine session.
    pub fn threads(mut self, threads: usize) -> Self {
        self.options.threads = threads.max(1);
        self
    }

    /// Inference lanes per engine: requests (or sentences of one request)
    /// made at once, at most one per core; 0 = one per core (the default,
    /// for many requests at a time, and for one text at a time: its
    /// sentences are spoken side by side, and a sentence alone decodes on
    /// every thread). With 1, runs get pools that spin only while they work
    /// ([`vctts_engines::catalog::ThreadPlan`]); on the default voice and a
    /// 2-core machine that was 13 % slower on a 10 s text in process, and
    /// 13 % and 35 % slower on 30 s and 126 s of audio (`vctts synth`;
    /// docs/PERFORMANCE.md, notes part 10).
    pub fn max_concurrency(mut self, lanes: usize) -> Self {
        self.options.max_concurrency = lanes;
        self
    }

    /// Engine settings (threads, concurrency, queue, device, runtime).
    pub fn engine_options(mut self, options: EngineOptions) -> Self {
        self.options = options;
        self
    }

    /// Builds only these engines (each must be installed). Default: every
    /// installed engine.
    pub fn engines(mut self, kinds: impl IntoIterator<Item = EngineKind>) -> Self {
        self.kinds = Some(kinds.into_iter().collect());
        self
    }

    /// Adds an engine built elsewhere (an embedder's own); it replaces a
    /// catalog engine of the same kind.
    pub fn with_engine(mut self, engine: Arc<dyn Engine>) -> Self {
        self.custom.push(engine);
        self
    }

    /// Uses this voice store instead of the SQLite one in the data folder.
    pub fn store(mut self, store: SharedVoiceStore) -> Self {
        self.store = Some(store);
        self
    }

    /// The engine used when a request names none. Default: OpenVoice when
    /// present, else the first engine.
    pub fn default_engine(mut self, kind: EngineKind) -> Self {
        self.default_engine = Some(kind);
        self
    }

    /// Limits for reference audio (length, channels, bytes).
    pub fn decode_limits(mut self, limits: DecodeLimits) -> Self {
        self.decode_limits = limits;
        self
    }

    /// Loads every engine at build instead of on first use.
    pub fn preload(mut self, preload: bool) -> Self {
        self.preload = preload;
        self
    }

    /// Opens the store and builds the engines.
    pub async fn build(self) -> Result<Tts> {
        let store = match self.store {
            Some(s) => s,
            None => {
                let data = self.data.clone();
                tokio::task::spawn_blocking(move || SqliteVoiceStore::open_shared(&data))
                    .await
                    .map_err(|e| Error::Internal(format!("voice store task failed: {e}")))??
            }
        };
        let mut engines: BTreeMap<EngineKind, Arc<dyn Engine>> = BTreeMap::new();
        let mut missing = BTreeMap::new();
        for e in &self.custom {
            engines.insert(e.info().kind, e.clone());
        }
        let asked = self.kinds.is_some();
        let kinds = self.kinds.unwrap_or_else(|| EngineKind::ALL.to_vec());
        for kind in kinds {
            if engines.contains_key(&kind) {
                continue;
            }
            if let Err(why) = catalog::installed(kind, &self.models) {
                if asked {
                    return Err(Error::ModelNotInstalled(why));
                }
                missing.insert(kind, why);
                continue;
            }
            match catalog::build(kind, &self.models, &self.options) {
                Ok(e) => {
                    engines.insert(kind, e);
                }
                Err(e) if asked => return Err(e),
                Err(e) => {
                    missing.insert(kind, e.to_string());
                }
            }
        }
        if self.preload {
            for e in engines.values() {
                e.load().await?;
            }
        }
        let default_engine = self.default_engine.or_else(|| {
            engines
                .contains_key(&EngineKind::OpenVoice)
                .then_some(EngineKind::OpenVoice)
                .or_else(|| engines.keys().next().copied())
        });
        Ok(Tts {
            inner: Arc::new(Inner {
                profiles: Profiles::new(store.clone()),
                store,
                engines,
                missing,
                default_engine,
                decode_limits: self.decode_limits,
            }),
        })
    }
}

struct Inner {
    store: SharedVoiceStore,
    profiles: Profiles,
    engines: BTreeMap<EngineKind, Arc<dyn Engine>>,
    missing: BTreeMap<EngineKind, String>,
    default_engine: Option<EngineKind>,
    decode_limits: DecodeLimits,
}

/// Voice-clone TTS in this process: engines, voices, synthesis, encoding.
/// Cheap to clone (shared).
///
/// ```no_run
/// # async fn demo() -> vctts::Result<()> {
/// use vctts::{Speech, Tts};
/// let tts = Tts::builder("models", "data").threads(2).build().await?;
/// let audio = tts.speak(&Speech::new("Hello there.")).await?;
/// let wav = vctts::encode(&audio, vctts::OutputFormat::Wav);
/// std::fs::write("hello.wav", &wav.bytes).map_err(|e| vctts::Error::io("writing", e))?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Tts {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Tts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tts")
            .field("engines", &self.inner.engines.keys().collect::<Vec<_>>())
            .field("missing", &self.inner.missing)
            .field("store", &self.inner.store)
            .finish()
    }
}

/// What to say, in which voice, with which engine.
#[derive(Debug, Clone, PartialEq)]
pub struct Speech {
    /// The engine-facing request (text, language, speed, sampling, seed).
    pub request: SynthesisRequest,
    /// The voice.
    pub voice: VoiceChoice,
    /// The engine; `None` is the default engine.
    pub engine: Option<EngineKind>,
}

impl Speech {
    /// Speech of `text` in the default voice of the default engine.
    pub fn new(text: impl Into<String>) -> Self {
        Self {
            request: SynthesisRequest::new(text),
            voice: VoiceChoice::Default,
            engine: None,
        }
    }
    /// Speaks in a stored voice, a built-in voice or a reference clip.
    pub fn voice(mut self, voice: impl Into<VoiceChoice>) -> Self {
        self.voice = voice.into();
        self
    }
    /// Uses this engine.
    pub fn engine(mut self, kind: EngineKind) -> Self {
        self.engine = Some(kind);
        self
    }
    /// Speaks this language (parse a tag with `"en-US".parse()?`).
    pub fn language(mut self, language: Language) -> Self {
        self.request.language = Some(language);
        self
    }
    /// Speaking rate (1.0 is normal).
    pub fn speed(mut self, speed: f32) -> Self {
        self.request.speed = speed;
        self
    }
    /// Seed for reproducible output.
    pub fn seed(mut self, seed: u64) -> Self {
        self.request.seed = Some(seed);
        self
    }
}

/// Reference audio ready for cloning, with its quality report.
#[derive(Debug, Clone, PartialEq)]
pub struct Reference {
    /// The decoded, DC-free audio with its transcript and language.
    pub audio: ReferenceAudio,
    /// Measurements and warnings.
    pub quality: QualityReport,
}

impl Reference {
    /// Measures decoded audio (removing its DC offset first).
    pub fn from_audio(mut audio: Audio) -> Self {
        remove_dc(&mut audio);
        let quality = analyze(&audio);
        Self {
            audio: ReferenceAudio::new(audio),
            quality,
        }
    }

    /// Decodes and measures an encoded clip (WAV, MP3, FLAC, OGG); blocking.
    pub fn decode(bytes: &[u8], hint: Option<&str>, limits: &DecodeLimits) -> Result<Self> {
        Ok(Self::from_audio(decode(bytes, hint, limits)?))
    }

    /// Sets what is said in the clip.
    pub fn transcript(mut self, transcript: Option<String>) -> Self {
        self.audio.transcript = transcript;
        self
    }

    /// Sets the language spoken in the clip.
    pub fn language(mut self, language: Option<Language>) -> Self {
        self.audio.language = language;
        self
    }

    /// The voice to store, once its profiles are made.
    pub fn new_voice(&self, id: VoiceId, name: String, profiles: Vec<VoiceProfile>) -> NewVoice {
        let audio = &self.audio.audio;
        NewVoice {
            id,
            name,
            language: self.audio.language.as_ref().map(ToString::to_string),
            transcript: self.audio.transcript.clone(),
            reference_seconds: audio.duration().as_secs_f32(),
            sample_rate: audio.sample_rate,
            reference_wav: Some(vctts_engines::audio::encode::wav_i16(audio)),
            quality_json: serde_json::to_string(&self.quality).ok(),
            profiles,
        }
    }
}

/// A voice to clone from a reference and store.
#[derive(Debug, Clone)]
pub struct CloneVoice {
    /// Its id.
    pub id: VoiceId,
    /// Display name (default: the id).
    pub name: Option<String>,
    /// The reference.
    pub reference: Reference,
    /// Engines to make profiles for (default: the default engine); others
    /// are made on first use.
    pub engines: Vec<EngineKind>,
    /// Replace a voice of the same id.
    pub replace: bool,
}

impl CloneVoice {
    /// A voice `id` from `reference`.
    pub fn new(id: &str, reference: Reference) -> Result<Self> {
        Ok(Self {
            id: VoiceId::new(id)?,
            name: None,
            reference,
            engines: Vec::new(),
            replace: false,
        })
    }
    /// Makes the profile of `kind` now.
    pub fn engine(mut self, kind: EngineKind) -> Self {
        self.engines.push(kind);
        self
    }
    /// Replaces a voice of the same id.
    pub fn replace(mut self, replace: bool) -> Self {
        self.replace = replace;
        self
    }
}

/// A request resolved against an engine: what the engine gets.
#[derive(Clone)]
pub struct Prepared {
    /// The engine.
    pub engine: Arc<dyn Engine>,
    /// The request.
    pub request: SynthesisRequest,
    /// The voice's profile; `None` for a built-in or the default voice.
    pub profile: Option<Arc<VoiceProfile>>,
}

impl std::fmt::Debug for Prepared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Prepared")
            .field("engine", &self.engine.info().kind)
            .field("request", &self.request)
            .field("profile", &self.profile.as_ref().map(|p| p.engine))
            .finish()
    }
}

impl Tts {
    /// A builder over a models folder (one folder per engine) and a data
    /// folder (the voice store).
    pub fn builder(models: impl Into<PathBuf>, data: impl Into<PathBuf>) -> TtsBuilder {
        TtsBuilder {
            models: models.into(),
            data: data.into(),
            kinds: None,
            options: EngineOptions::default(),
            custom: Vec::new(),
            store: None,
            default_engine: None,
            decode_limits: DecodeLimits::default(),
            preload: false,
        }
    }

    /// The voice store.
    pub fn store(&self) -> &SharedVoiceStore {
        &self.inner.store
    }

    /// Profiles of stored voices.
    pub fn profiles(&self) -> &Profiles {
        &self.inner.profiles
    }

    /// The engines built, in a fixed order.
    pub fn engine_kinds(&self) -> Vec<EngineKind> {
        self.inner.engines.keys().copied().collect()
    }

    /// Engines that were not built, with the reason.
    pub fn missing(&self) -> &BTreeMap<EngineKind, String> {
        &self.inner.missing
    }

    /// The engine used when a request names none.
    pub fn default_engine(&self) -> Result<EngineKind> {
        self.inner
            .default_engine
            .ok_or_else(|| Error::ModelNotInstalled("no engine is installed (run scripts/setup.sh)".into()))
    }

    fn built(&self, kind: EngineKind) -> Result<&Arc<dyn Engine>> {
        self.inner.engines.get(&kind).ok_or_else(|| {
            Error::ModelNotInstalled(
                self.inner
                    .missing
                    .get(&kind)
                    .cloned()
                    .unwrap_or_else(|| format!("the {kind} engine was not built")),
            )
        })
    }

    /// What an engine can do (it need not be loaded).
    pub fn info(&self, kind: EngineKind) -> Result<EngineInfo> {
        Ok(self.built(kind)?.info())
    }

    /// An engine, loaded.
    pub async fn engine(&self, kind: EngineKind) -> Result<Arc<dyn Engine>> {
        let e = self.built(kind)?;
        if e.state() != ModelState::Ready {
            e.load().await?;
        }
        Ok(e.clone())
    }

    /// Decodes and measures a reference clip from a file (off the async runtime).
    pub async fn read_reference(&self, path: &Path) -> Result<Reference> {
        let path = path.to_path_buf();
        let limits = self.inner.decode_limits;
        tokio::task::spawn_blocking(move || Ok(Reference::from_audio(decode_file(&path, &limits)?)))
            .await
            .map_err(|e| Error::Internal(format!("decoder task failed: {e}")))?
    }

    /// Makes a voice's profiles and stores it. Nothing is stored unless every
    /// engine made its profile.
    pub async fn clone_voice(&self, voice: CloneVoice) -> Result<StoredVoice> {
        let id = voice.id.clone();
        let check = id.clone();
        let exists = self.store().run(move |s| s.exists(&check)).await?;
        if exists && !voice.replace {
            return Err(Error::invalid("voice_id", format!("voice {id} already exists")));
        }
        let engines = if voice.engines.is_empty() {
            vec![self.default_engine()?]
        } else {
            voice.engines.clone()
        };
        let mut profiles = Vec::with_capacity(engines.len());
        for kind in engines {
            let engine = self.engine(kind).await?;
            if engine.info().needs_transcript && voice.reference.audio.transcript.is_none() {
                return Err(Error::invalid(
                    "transcript",
                    format!("{kind} needs a transcript of the reference"),
                ));
            }
            profiles.push(engine.extract_voice(&voice.reference.audio).await?);
        }
        let name = voice.name.clone().unwrap_or_else(|| id.to_string());
        let new = voice.reference.new_voice(id.clone(), name, profiles);
        self.inner.profiles.forget(&id);
        self.store()
            .run(move |s| {
                if exists {
                    s.delete(&new.id)?;
                }
                s.insert(new)
            })
            .await
    }

    /// Deletes a stored voice; `false` if there was none.
    pub async fn delete_voice(&self, id: &VoiceId) -> Result<bool> {
        self.inner.profiles.forget(id);
        let id = id.clone();
        self.store().run(move |s| s.delete(&id)).await
    }

    /// Resolves the engine and the voice of `speech` and checks it against
    /// the engine ([`vctts_core::EngineInfo::check_request`]).
    pub async fn prepare(&self, speech: &Speech) -> Result<Prepared> {
        let kind = match speech.engine {
            Some(k) => k,
            None => self.default_engine()?,
        };
        let engine = self.engine(kind).await?;
        engine.info().check_request(&speech.request)?;
        let mut request = speech.request.clone();
        let profile = match &speech.voice {
            VoiceChoice::Default => None,
            VoiceChoice::Reference(r) => Some(Arc::new(engine.extract_voice(r).await?)),
            VoiceChoice::Named(name) => {
                let id = VoiceId::new(name.clone())?;
                let info = engine.info();
                let maker = engine.clone();
                let p = self
                    .inner
                    .profiles
                    .resolve(&id, kind, &info.builtin_voices, |reference| async move {
                        maker.extract_voice(&reference).await
                    })
                    .await?;
                request.voice = Some(id);
                p
            }
        };
        Ok(Prepared {
            engine,
            request,
            profile,
        })
    }

    /// Speaks `speech` whole.
    pub async fn speak(&self, speech: &Speech) -> Result<Audio> {
        let p = self.prepare(speech).await?;
        p.engine.synthesize(&p.request, p.profile.as_deref()).await
    }

    /// Speaks `speech` and encodes it.
    pub async fn speak_as(&self, speech: &Speech, format: OutputFormat) -> Result<Encoded> {
        Ok(encode(&self.speak(speech).await?, format))
    }

    /// Speaks `speech` as a stream of chunks, each yielded when ready; set an
    /// observer on it with [`AccountedStream::observe`].
    pub async fn speak_stream(&self, speech: &Speech) -> Result<AccountedStream> {
        let p = self.prepare(speech).await?;
        let started = Instant::now();
        let stream = p
            .engine
            .synthesize_stream(&p.request, p.profile.as_deref())
            .await?;
        Ok(AccountedStream::started_at(stream, started))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use vctts_engines::catalog::ThreadPlan;

    #[test]
    fn one_lane_asked_of_the_builder_reaches_the_engines_thread_plan() {
        let one = Tts::builder("models", "data").threads(2).max_concurrency(1);
        assert_eq!(
            one.options.thread_plan(2),
            ThreadPlan {
                inferences: 1,
                intra_threads: 2,
                shared_pool: false
            }
        );
        // 0 keeps the engines' meaning: a lane per core.
        let per_core = Tts::builder("models", "data").threads(2).max_concurrency(0);
        assert_eq!(per_core.options.thread_plan(2).inferences, 2);
        assert!(per_core.options.thread_plan(2).shared_pool);
    }
}
