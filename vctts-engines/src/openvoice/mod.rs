//! The OpenVoice v2 engine: a base TTS plus the tone color converter.
//!
//! Model folder (`models/openvoice/`, see its README):
//! - `base/<name>.onnx` + `<name>.onnx.json`: base voices in Piper's VITS
//!   format ([`piper`]); the default is `en_US-joe-medium`;
//! - `converter/`: the tone color converter ([`converter`]); optional —
//!   without it the engine speaks with its base voices and cannot clone.
//!
//! Pipeline of one request: normalise → split into sentences → espeak-ng
//! phonemes (the first sentence on its own so the first chunk is quick, the
//! rest in one batch) → ids → VITS → (with a cloned voice) 22.05 kHz →
//! spectrogram → converter from the base voice's tone color (extracted once
//! per base voice and cached) to the target's → audio, sentence by sentence.
//!
//! Invariants: inference runs on the engine's own lanes
//! ([`crate::runtime::InferencePool`]), one per admitted request, so
//! `max_concurrency` bounds the work and `queue_size` the waiting; a request
//! alone lends its later sentences to idle lanes and emits them in order
//! ([`crate::schedule`]); each sentence's noise follows the seed and its own
//! index, so the audio does not depend on the lane that made it; every job
//! owns its buffers; a stream stops between sentences once its reader is gone.
//!
//! Sampling parameters, honoured or refused (never silently ignored):
//! - `noise_scale`, `noise_scale_w` drive the base voice, `tau` the converter;
//! - `temperature`, `top_k`, `top_p`, `repetition_penalty` do not exist in a
//!   VITS voice: a request that sets one gets [`Error::InvalidInput`] naming it;
//! - `seed` fixes every random draw, so the same seed gives byte-identical
//!   audio; without one each request draws a random seed. Piper voices draw
//!   their noise inside the graph (`RandomNormalLike`); at load the graph is
//!   rewritten in memory so those nodes follow a seed input ([`noise`]; the
//!   file is untouched), and each utterance gets a seed from the request's
//!   generator. The converter's noise follows the seed too: through its
//!   `noise` input (graphs from `scripts/export/openvoice_export.py`), or,
//!   for the public export that draws it inside, through the same in-memory
//!   rewrite. A seed that cannot hold (a graph that could not be rewritten,
//!   unless its noise is off: noise scales or `tau` at 0) is
//!   [`Error::InvalidInput`] saying which setting to change.
//!
//! espeak-ng data: Piper voices were trained with espeak-ng 1.52's readings
//! (the data piper-tts bundles). `<models_dir>/espeak-ng-data/`, when present
//! (scripts/setup.sh installs it), is used instead of the system's data, which
//! may be older and read some words differently.

pub mod conv2d;
pub mod converter;
pub mod import;
pub mod noise;
pub mod piper;
pub mod split;

use crate::runtime::{IdleWork, InferencePool, Lanes, SessionConfig, Spawner};
use crate::schedule::Board;
use crate::text::phonemize::Espeak;
use async_trait::async_trait;
use converter::{CONVERTER_RATE, Converter, ConverterFiles};
use parking_lot::Mutex;
use piper::{PiperVoice, VitsGraphs};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use vctts_core::engine::DEFAULT_STREAM_BOUND;
use vctts_core::{
    Audio, AudioChunk, AudioStream, AudioStreamSender, Engine, EngineInfo, EngineKind, Error, ModelState,
    ReferenceAudio, Result, SynthesisControl, SynthesisRequest, VoiceProfile,
};

/// Profile format written by this engine: 256 little-endian `f32`.
pub const PROFILE_VERSION: u32 = 1;
/// Default converter temperature.
pub const DEFAULT_TAU: f32 = 0.3;
/// Shortest usable speech in a reference clip, seconds.
pub const MIN_REFERENCE_SPEECH: f32 = 3.0;
/// Longest accepted reference clip, seconds.
pub const MAX_REFERENCE_SECONDS: f32 = 60.0;
/// Length of the segments a reference is cut into for extraction, seconds.
const SEGMENT_SECONDS: f32 = 10.0;
/// The text spoken by a base voice to measure its own tone color.
const CALIBRATION_TEXT: &str = "The north wind and the sun were disputing which was the stronger, when a \
traveler came along wrapped in a warm cloak. They agreed that the one who first succeeded in making the \
traveler take his cloak off should be considered stronger than the other. Then the north wind blew as hard \
as he could, but the more he blew the more closely did the traveler fold his cloak around him.";

/// Settings of the OpenVoice engine.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OpenVoiceConfig {
    /// The model folder (`models/openvoice`).
    pub models_dir: PathBuf,
    /// Default base voice (file stem); `None` = `en_US-joe-medium` if present, else the first.
    pub default_voice: Option<String>,
    /// Session threads, optimisation and device.
    pub session: SessionConfig,
    /// Requests run at once (inference threads).
    pub max_concurrency: usize,
    /// Requests that may wait for a thread before new ones are refused.
    pub queue_size: usize,
    /// Default converter temperature.
    pub tau: f32,
    /// Silence between sentences at speed 1, seconds.
    pub sentence_silence: f32,
    /// Longest text per request, characters.
    pub max_text_chars: usize,
    /// Longest sentence given to the model in one pass, characters.
    pub max_sentence_chars: usize,
    /// The espeak-ng binary; `None` = look it up (`VCTTS_ESPEAK`, `PATH`).
    pub espeak: Option<PathBuf>,
    /// The folder holding the `espeak-ng-data` to use; `None` =
    /// `VCTTS_ESPEAK_DATA`, else `models_dir` if it has `espeak-ng-data/`, else
    /// the system's.
    pub espeak_data: Option<PathBuf>,
    /// How long a lane waits without a job before it gives its arena's
    /// unused regions back ([`ThreadState::tidy`]).
    pub idle_tidy_after: std::time::Duration,
    /// How the base voices' HiFi-GAN decoders size their windows of latent
    /// frames ([`split::WindowBudget`]). The decoder's activations grow with
    /// the audio it makes (about 20 MB per second); in windows, memory stays
    /// bounded whatever the sentence's length, for more decoder time on
    /// sentences longer than one window (the 16 frames of context on each
    /// side: about 16 % at 128 frames, 4 % at 256; [`split`]). Default: the
    /// runs share 256 frames (a run alone decodes windows of 256, two at once
    /// 128 each).
    pub decoder_windows: crate::runtime::DecoderWindows,
}

impl Default for OpenVoiceConfig {
    fn default() -> Self {
        Self {
            models_dir: PathBuf::from("models/openvoice"),
            default_voice: None,
            session: SessionConfig::default(),
            max_concurrency: 1,
            queue_size: 64,
            tau: DEFAULT_TAU,
            sentence_silence: 0.2,
            max_text_chars: 100_000,
            max_sentence_chars: 400,
            espeak: None,
            espeak_data: None,
            idle_tidy_after: IDLE_TIDY_AFTER,
            decoder_windows: crate::runtime::DecoderWindows::default(),
        }
    }
}

impl OpenVoiceConfig {
    /// Defaults with the given model folder.
    pub fn new(models_dir: impl Into<PathBuf>) -> Self {
        Self {
            models_dir: models_dir.into(),
            ..Self::default()
        }
    }
}

/// What the model folder holds, read without loading anything.
#[derive(Debug, Clone)]
pub struct Installation {
    /// Base voices found in `base/`.
    pub voices: Vec<PiperVoice>,
    /// The converter, if installed.
    pub converter: Option<ConverterFiles>,
}

impl Installation {
    /// Reads `models_dir`. No base voice is [`Error::ModelNotInstalled`] with the fix.
    pub fn scan(models_dir: &std::path::Path) -> Result<Self> {
        let base = models_dir.join("base");
        let voices = piper::discover(&base)?;
        if voices.is_empty() {
            return Err(Error::ModelNotInstalled(format!(
                "no OpenVoice base voice in {} (expected <name>.onnx + <name>.onnx.json): run scripts/setup.sh, \
                 see models/openvoice/README.md",
                base.display()
            )));
        }
        Ok(Self {
            voices,
            converter: ConverterFiles::find(&models_dir.join("converter")),
        })
    }
}

struct Shared {
    config: OpenVoiceConfig,
    voices: Vec<PiperVoice>,
    default_voice: usize,
    converter: Option<ConverterFiles>,
    espeak: Espeak,
    /// Tone color of each base voice, measured once.
    source_tones: Mutex<HashMap<String, Arc<Vec<f32>>>>,
    /// Whether the loaded converter's output follows the seed (known once loaded).
    converter_noise_input: std::sync::OnceLock<bool>,
    /// Per base voice: whether its noise follows [`noise::SEED_INPUT`] (known once loaded).
    base_seedable: Vec<std::sync::OnceLock<bool>>,
    /// Sentences made by helper lanes for another lane's request, ever.
    lent_sentences: std::sync::atomic::AtomicUsize,
}

/// What one inference thread owns.
struct ThreadState {
    shared: Arc<Shared>,
    /// The base voices' sessions, shared by every lane (runs overlap on the
    /// CPU: one copy of the weights and one arena per voice).
    base: Arc<Vec<VitsGraphs>>,
    converter: Option<Converter>,
    /// Options of the runs of the job under way: its own per request, so
    /// that cancelling it terminates the run going on ([`ThreadState::arm`]).
    run: Arc<ort::session::RunOptions>,
    /// Per base voice: whether it ran since this lane last gave its arena's
    /// unused regions back ([`ThreadState::tidy`]).
    used: Vec<bool>,
}

/// The OpenVoice v2 engine. Cheap to share behind an `Arc`.
pub struct OpenVoiceEngine {
    shared: Arc<Shared>,
    lanes: Lanes<ThreadState>,
}

impl std::fmt::Debug for OpenVoiceEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpenVoiceEngine")
            .field("state", &self.lanes.state())
            .finish()
    }
}

/// A planned synthesis: everything the inference thread needs.
struct Plan {
    voice: usize,
    sentences: Vec<String>,
    scales: [f32; 3],
    target: Option<Vec<f32>>,
    tau: f32,
    /// Silence after each piece of `sentences`, seconds (the last is unused).
    pauses: Vec<f32>,
    /// Seeds the converter's noise (the request's seed, else a random one).
    seed: u64,
}

/// Sentences a request may have made ahead of the one it emits, per lane.
const SENTENCE_WINDOW_PER_LANE: usize = 2;

/// The part of a request its helper lanes need.
struct SentenceJob {
    plan: Arc<Plan>,
    /// espeak-ng utterances of every sentence.
    phonemes: Vec<Vec<String>>,
    /// The base voice's tone color (cloning only).
    source: Option<Arc<Vec<f32>>>,
    control: SynthesisControl,
    board: Board<Audio>,
}

/// The random generator of sentence `i` of a request seeded with `seed`:
/// its own stream of the seed, so no sentence depends on the others.
/// How long a lane waits by default without a job before it gives its
/// arena's unused regions back ([`ThreadState::tidy`]): longer than the gap
/// between a client's requests in a row, short enough that an idle server
/// is small.
const IDLE_TIDY_AFTER: std::time::Duration = std::time::Duration::from_secs(2);

/// The utterance of the tidying run: one vowel, the smallest real input.
const TIDY_PHONEMES: &str = "a";

fn sentence_rng(seed: u64, i: usize) -> rand_chacha::ChaCha8Rng {
    let mut rng = <rand_chacha::ChaCha8Rng as rand::SeedableRng>::seed_from_u64(seed);
    rng.set_stream(i as u64);
    rng
}

/// A streamed first sentence longer than this is cut at its first clause,
/// so the first chunk arrives after a clause rather than a whole sentence.
const FIRST_CLAUSE_MIN_SENTENCE: usize = 60;
/// The shortest first clause worth cutting off.
const FIRST_CLAUSE_MIN: usize = 12;

/// Splits `sentence` after its first clause punctuation (`,` `;` `:` and the
/// Chinese `，；：`) when the clause has at least [`FIRST_CLAUSE_MIN`] characters.
fn first_clause(sentence: &str) -> Option<(String, String)> {
    if sentence.chars().count() <= FIRST_CLAUSE_MIN_SENTENCE {
        return None;
    }
    let mut count = 0;
    for (i, c) in sentence.char_indices() {
        count += 1;
        if count >= FIRST_CLAUSE_MIN && matches!(c, ',' | ';' | ':' | '，' | '；' | '：') {
            let cut = i + c.len_utf8();
            let (head, tail) = sentence.split_at(cut);
            let tail = tail.trim();
            if tail.chars().count() >= FIRST_CLAUSE_MIN {
                return Some((head.trim().to_string(), tail.to_string()));
            }
            return None;
        }
    }
    None
}

impl OpenVoiceEngine {
    /// Reads the model folder and finds espeak-ng; loads nothing yet.
    pub fn new(config: OpenVoiceConfig) -> Result<Self> {
        let install = Installation::scan(&config.models_dir)?;
        let espeak = espeak_for(&config)?;
        let wanted = config
            .default_voice
            .clone()
            .unwrap_or_else(|| "en_US-joe-medium".to_string());
        let default_voice = match install.voices.iter().position(|v| v.name == wanted) {
            Some(i) => i,
            None if config.default_voice.is_some() => {
                return Err(Error::Config(format!(
                    "default_voice {wanted:?} is not in {}/base (have: {})",
                    config.models_dir.display(),
                    install
                        .voices
                        .iter()
                        .map(|v| v.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                )));
            }
            None => 0,
        };
        let voice_count = install.voices.len();
        Ok(Self {
            shared: Arc::new(Shared {
                config,
                voices: install.voices,
                default_voice,
                converter: install.converter,
                espeak,
                source_tones: Mutex::new(HashMap::new()),
                converter_noise_input: std::sync::OnceLock::new(),
                base_seedable: (0..voice_count).map(|_| std::sync::OnceLock::new()).collect(),
                lent_sentences: std::sync::atomic::AtomicUsize::new(0),
            }),
            lanes: Lanes::new("openvoice"),
        })
    }

    /// Whether the tone color converter is installed (voice cloning works).
    pub fn has_converter(&self) -> bool {
        self.shared.converter.is_some()
    }

    fn pool(&self) -> Result<Arc<InferencePool<ThreadState>>> {
        self.lanes.get()
    }

    fn no_converter() -> Error {
        Error::ModelNotInstalled(
            "tone color converter not installed (converter/tone_color_extract_model.onnx and \
             converter/tone_clone_model.onnx): see models/openvoice/README.md"
                .into(),
        )
    }

    /// Checks the request and turns it into a plan.
    fn plan(&self, request: &SynthesisRequest, profile: Option<&VoiceProfile>, stream: bool) -> Result<Plan> {
        let shared = &self.shared;
        self.info().check_request(request)?;
        refuse_unsupported(request)?;
        let voice = self.pick_voice(request, profile.is_some())?;
        let mut sentences = piper::sentences(&request.text, shared.config.max_sentence_chars);
        if sentences.is_empty() {
            return Err(Error::EmptyText);
        }
        let silence = shared.config.sentence_silence / request.speed;
        let mut pauses = vec![silence; sentences.len()];
        if stream {
            if let Some((head, tail)) = first_clause(&sentences[0]) {
                sentences[0] = tail;
                sentences.insert(0, head);
                // A clause pause, shorter than between sentences.
                pauses.insert(0, silence / 2.0);
            }
        }
        let target = match profile {
            Some(p) => {
                if shared.converter.is_none() {
                    return Err(Self::no_converter());
                }
                Some(converter::decode_tone(
                    p.expect(EngineKind::OpenVoice, PROFILE_VERSION)?,
                )?)
            }
            None => None,
        };
        let v = &shared.voices[voice];
        let s = &request.sampling;
        let scales = [
            s.noise_scale.unwrap_or(v.noise_scale),
            v.length_scale / request.speed,
            s.noise_scale_w.unwrap_or(v.noise_w),
        ];
        let tau = s.tau.unwrap_or(shared.config.tau);
        if request.seed.is_some() {
            let base_seedable = shared
                .base_seedable
                .get(voice)
                .and_then(|f| f.get().copied())
                .unwrap_or(true);
            if !base_seedable && (scales[0] != 0.0 || scales[2] != 0.0) {
                return Err(Error::invalid(
                    "seed",
                    format!(
                        "the base voice {} draws its noise inside its graph, where a seed cannot reach it; \
                         for reproducible audio set noise_scale and noise_scale_w to 0 (or leave seed unset)",
                        v.name
                    ),
                ));
            }
            // Unknown until loaded; a request then fails on "not loaded" anyway.
            let converter_seedable = shared.converter_noise_input.get().copied().unwrap_or(true);
            if target.is_some() && tau != 0.0 && !converter_seedable {
                return Err(Error::invalid(
                    "seed",
                    "this tone color converter draws its noise in a way a seed cannot reach; set tau to 0, \
                     or re-export the converter with `vctts models import openvoice` (its graph takes the \
                     noise as an input and follows the seed)",
                ));
            }
        }
        Ok(Plan {
            voice,
            sentences,
            scales,
            target,
            tau,
            pauses,
            seed: request.seed.unwrap_or_else(rand::random),
        })
    }

    /// The base voice for a request: the built-in voice it names, else the
    /// first voice of its language, else the default.
    fn pick_voice(&self, request: &SynthesisRequest, cloned: bool) -> Result<usize> {
        let voices = &self.shared.voices;
        let family = request.language.as_ref().map(|l| l.primary().to_string());
        if let (Some(family), Some(lang)) = (&family, &request.language) {
            if !voices.iter().any(|v| &v.language == family) {
                return Err(Error::UnsupportedLanguage {
                    language: lang.to_string(),
                    engine: "openvoice".into(),
                    supported: self.languages().join(", "),
                });
            }
        }
        if !cloned {
            if let Some(id) = &request.voice {
                let i = voices.iter().position(|v| v.name == id.as_str()).ok_or_else(|| {
                    Error::VoiceNotFound(format!(
                        "{id} (built-in openvoice voices: {})",
                        voices
                            .iter()
                            .map(|v| v.name.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ))
                })?;
                if let Some(family) = &family {
                    if &voices[i].language != family {
                        return Err(Error::invalid(
                            "language",
                            format!(
                                "voice {} speaks {}, not {family}",
                                voices[i].name, voices[i].language
                            ),
                        ));
                    }
                }
                return Ok(i);
            }
        }
        let default = self.shared.default_voice;
        Ok(match family {
            Some(f) if voices[default].language != f => {
                voices.iter().position(|v| v.language == f).unwrap_or(default)
            }
            _ => default,
        })
    }

    fn languages(&self) -> Vec<String> {
        let mut l: Vec<String> = self.shared.voices.iter().map(|v| v.language.clone()).collect();
        l.sort();
        l.dedup();
        l
    }
}

/// The espeak-ng the engine uses: the configured or located binary, with the
/// configured data folder, else `VCTTS_ESPEAK_DATA`, else `models_dir` when it
/// holds `espeak-ng-data/` (the data Piper voices were trained with).
pub fn espeak_for(config: &OpenVoiceConfig) -> Result<Espeak> {
    let espeak = match &config.espeak {
        Some(p) => Espeak::with_binary(p.clone()),
        None => Espeak::locate()?,
    };
    Ok(match &config.espeak_data {
        Some(d) => espeak.with_data(d.clone()),
        None if espeak.data().is_none() && config.models_dir.join("espeak-ng-data").is_dir() => {
            espeak.with_data(config.models_dir.clone())
        }
        None => espeak,
    })
}

/// Sampling parameters of autoregressive engines: OpenVoice has no token
/// sampling, so a request that sets one gets [`Error::InvalidInput`] naming
/// it rather than having it silently ignored.
pub const UNSUPPORTED_SAMPLING: [&str; 4] = ["temperature", "top_k", "top_p", "repetition_penalty"];

fn refuse_unsupported(request: &SynthesisRequest) -> Result<()> {
    let s = &request.sampling;
    let set = [
        s.temperature.is_some(),
        s.top_k.is_some(),
        s.top_p.is_some(),
        s.repetition_penalty.is_some(),
    ];
    match UNSUPPORTED_SAMPLING.iter().zip(set).find(|(_, set)| *set) {
        Some((name, _)) => Err(Error::invalid(
            *name,
            format!(
                "openvoice does not support {name}: it is a VITS voice plus a converter, with no token \
                 sampling (its parameters are noise_scale, noise_scale_w, tau and seed)"
            ),
        )),
        None => Ok(()),
    }
}

/// Phonemizes a plan's sentences after the first on a thread of their own
/// (espeak-ng takes about a millisecond per clause: 10 ms for a 10 s text),
/// while the first is spoken. `None` when no thread could start: the caller
/// phonemizes them itself.
fn phonemize_rest(
    espeak: &Espeak,
    voice: &str,
    plan: &Arc<Plan>,
) -> Option<std::thread::JoinHandle<Result<Vec<Vec<String>>>>> {
    let (espeak, voice, plan) = (espeak.clone(), voice.to_string(), plan.clone());
    std::thread::Builder::new()
        .name("phonemize".into())
        .spawn(move || espeak.phonemize_utterances(&voice, &plan.sentences[1..]))
        .ok()
}

/// Starts the default voice's espeak-ng processes on a thread of their own
/// (a few tens of ms: process start and its dictionaries); they join the
/// phonemizer's pool. A failure here is the first request's to report;
/// `None` when no thread could start (the first request starts them).
fn warm_phonemizer(shared: &Shared) -> Option<std::thread::JoinHandle<()>> {
    let espeak = shared.espeak.clone();
    let voice = shared
        .voices
        .get(shared.default_voice)
        .map(|v| v.espeak_voice.clone());
    std::thread::Builder::new()
        .name("espeak-warm-up".into())
        .spawn(move || {
            if let Some(voice) = voice {
                if let Err(e) = espeak.phonemize_utterances(&voice, &["Ready.".to_string()]) {
                    tracing::debug!(error = %e, voice, "warming espeak-ng up failed");
                }
            }
        })
        .ok()
}

/// Loads every base voice once, for all lanes; records which follow the seed.
fn load_bases(shared: &Shared) -> Result<Vec<VitsGraphs>> {
    let overlap = matches!(shared.config.session.device, crate::runtime::Device::Cpu);
    let mut base = Vec::with_capacity(shared.voices.len());
    // One budget for every voice: it bounds what all the runs decode at once.
    let budget = split::WindowBudget::new(shared.config.decoder_windows).map(Arc::new);
    for (i, v) in shared.voices.iter().enumerate() {
        let graphs = piper::load_vits(v, &shared.config.session, budget.clone(), overlap)?;
        if let Some(flag) = shared.base_seedable.get(i) {
            let _ = flag.set(graphs.seedable());
        }
        base.push(graphs);
    }
    Ok(base)
}

impl ThreadState {
    fn load(shared: Arc<Shared>, base: Arc<Vec<VitsGraphs>>) -> Result<Self> {
        let converter = match &shared.converter {
            Some(files) => Some(Converter::load(files, &shared.config.session)?),
            None => None,
        };
        if let Some(c) = &converter {
            let _ = shared.converter_noise_input.set(c.follows_seed());
        }
        Ok(Self {
            shared,
            used: vec![false; base.len()],
            base,
            converter,
            run: Arc::new(crate::runtime::run_options()?),
        })
    }

    /// Gives the job that starts its own run options, terminated when
    /// `control` is cancelled: a dropped request stops inside the sentence
    /// being synthesized, not after it.
    fn arm(&mut self, control: &SynthesisControl) -> Result<vctts_core::CancelHookGuard> {
        let (options, guard) = crate::runtime::cancellable_run(control, false)?;
        if let Some(c) = self.converter.as_mut() {
            c.set_run_options(options.clone());
        }
        self.run = options;
        Ok(guard)
    }

    /// Hands the unused regions of the arenas of the base voices that ran
    /// since the last call back to the system, with one short run of each
    /// (ONNX Runtime shrinks an arena only at the end of a run). Called by
    /// the pool once the lane has been idle for `idle_tidy_after` (2 s by default); doing
    /// it after every request instead made the next request fault the same
    /// pages in again (a page fault per arena page: system CPU time).
    fn tidy(&mut self) {
        if let Err(e) = self.shrink_arenas() {
            tracing::debug!(error = %e, "giving the arena's unused memory back failed");
        }
    }

    /// [`ThreadState::tidy`]'s work; the number of sessions shrunk.
    fn shrink_arenas(&mut self) -> Result<usize> {
        let options = crate::runtime::shrinking_run_options()?;
        let mut shrunk = 0;
        for i in 0..self.base.len() {
            if !std::mem::take(&mut self.used[i]) {
                continue;
            }
            let v = &self.shared.voices[i];
            let ids = v.phoneme_ids(TIDY_PHONEMES);
            let speaker = v.speakers.values().next().copied().unwrap_or(0);
            let scales = [v.noise_scale, v.length_scale, v.noise_w];
            piper::run_vits(&self.base[i], &options, v, &ids.ids, scales, speaker, 0)?;
            shrunk += 1;
        }
        Ok(shrunk)
    }

    /// Speaks one sentence with the base voice.
    fn base_sentence(
        &mut self,
        voice: usize,
        phonemes: &str,
        scales: [f32; 3],
        noise_seed: i64,
    ) -> Result<Vec<f32>> {
        let v = &self.shared.voices[voice];
        let ids = v.phoneme_ids(phonemes);
        if ids.dropped > 0 {
            tracing::warn!(voice = %v.name, dropped = ids.dropped, "phonemes missing from the voice's map were dropped");
        }
        // BOS, pad and EOS only: nothing to say.
        if ids.ids.len() <= 3 {
            return Ok(Vec::new());
        }
        let speaker = v.speakers.values().next().copied().unwrap_or(0);
        self.used[voice] = true;
        piper::run_vits(
            &self.base[voice],
            &self.run,
            v,
            &ids.ids,
            scales,
            speaker,
            noise_seed,
        )
    }

    /// The base voice's own tone color, measured once and cached.
    fn source_tone(&mut self, voice: usize) -> Result<Arc<Vec<f32>>> {
        let name = self.shared.voices[voice].name.clone();
        if let Some(t) = self.shared.source_tones.lock().get(&name) {
            return Ok(t.clone());
        }
        let v = &self.shared.voices[voice];
        let sentences =
            crate::text::split::split_sentences(CALIBRATION_TEXT, self.shared.config.max_sentence_chars);
        let phonemes = self
            .shared
            .espeak
            .phonemize_utterances(&v.espeak_voice, &sentences)?;
        let scales = [v.noise_scale, v.length_scale, v.noise_w];
        let rate = v.sample_rate;
        let mut samples = Vec::new();
        // A fixed seed: the base voice's tone color is the same in every process.
        let mut rng = <rand_chacha::ChaCha8Rng as rand::SeedableRng>::seed_from_u64(0x0be5_ca1e);
        for p in phonemes.iter().flatten() {
            let seed = noise::seed_value(rand::RngCore::next_u64(&mut rng));
            samples.extend(self.base_sentence(voice, p, scales, seed)?);
        }
        let audio = to_converter_rate(Audio::new(samples, rate))?;
        let tone = Arc::new(self.extract_tone(&audio.samples)?);
        self.shared.source_tones.lock().insert(name, tone.clone());
        Ok(tone)
    }

    /// Tone color of speech at 22.05 kHz: ~10 s segments, mean of their colors.
    fn extract_tone(&mut self, speech: &[f32]) -> Result<Vec<f32>> {
        let conv = self
            .converter
            .as_mut()
            .ok_or_else(OpenVoiceEngine::no_converter)?;
        let seconds = speech.len() as f32 / CONVERTER_RATE as f32;
        let n = ((seconds / SEGMENT_SECONDS).round() as usize).max(1);
        let seg = speech.len().div_ceil(n);
        let mut colors = Vec::with_capacity(n);
        for chunk in speech.chunks(seg) {
            if chunk.len() < 1024 {
                continue;
            }
            let spec = crate::spectral::presets::openvoice_spectrogram(chunk);
            colors.push(conv.tone_color(&spec)?);
        }
        if colors.is_empty() {
            return Err(Error::AudioRejected(
                "reference speech is too short to measure".into(),
            ));
        }
        Ok(converter::mean(&colors))
    }

    /// Runs a plan, handing each sentence's audio to `emit` as it is ready
    /// and in order; stops early (without error) when `emit` returns false.
    ///
    /// The first sentence is made here, alone, so the first audio comes as
    /// soon as one sentence allows. The rest go on a [`Board`]: this thread
    /// makes them in order, and after each emitted sentence it lends the
    /// next ones to the pool's idle lanes (`spawner`) while no other request
    /// waits ([`crate::schedule::Load::spare`]). Each sentence draws its
    /// randomness from the plan's seed and its own index, so the audio is
    /// the same whichever lane made it.
    fn run_plan(
        &mut self,
        plan: &Arc<Plan>,
        control: &SynthesisControl,
        spawner: Option<&Spawner<ThreadState>>,
        emit: &mut dyn FnMut(Audio, bool) -> bool,
    ) -> Result<()> {
        let shared = self.shared.clone();
        let voice = &shared.voices[plan.voice];
        let source = match plan.target {
            Some(_) => Some(self.source_tone(plan.voice)?),
            None => None,
        };
        let n = plan.sentences.len();
        let lanes = spawner.map(|s| s.load().lanes).unwrap_or(1);
        // The first sentence alone, so the first chunk does not wait for the
        // rest; the rest are phonemized on a thread of their own meanwhile.
        let first = shared
            .espeak
            .phonemize_utterances(&voice.espeak_voice, &plan.sentences[..1])?;
        let rest = (n > 1).then(|| phonemize_rest(&shared.espeak, &voice.espeak_voice, plan));
        let utterances = first
            .first()
            .ok_or_else(|| Error::Internal("phonemizer lost a sentence".into()))?;
        let audio = self.sentence(plan, utterances, 0, source.as_deref().map(Vec::as_slice))?;
        if !emit(audio, n == 1) || n == 1 {
            return Ok(());
        }
        let mut phonemes = first;
        phonemes.extend(match rest {
            Some(Some(thread)) => thread
                .join()
                .map_err(|_| Error::Internal("the phonemizer thread panicked".into()))??,
            _ => shared
                .espeak
                .phonemize_utterances(&voice.espeak_voice, &plan.sentences[1..])?,
        });
        if phonemes.len() != n {
            return Err(Error::Internal("phonemizer lost a sentence".into()));
        }
        let job = Arc::new(SentenceJob {
            plan: plan.clone(),
            phonemes,
            source,
            control: control.clone(),
            board: Board::new(n, 1, SENTENCE_WINDOW_PER_LANE * lanes),
        });
        let mut lend = || {
            if let Some(spawner) = spawner {
                let spare = spawner.load().spare().min(job.board.unclaimed());
                for _ in 0..spare {
                    let (job, helper_spawner) = (job.clone(), spawner.clone());
                    let queued = spawner.try_spawn(move |t: &mut ThreadState| {
                        t.help(&job, &helper_spawner);
                    });
                    if !queued {
                        break;
                    }
                }
            }
        };
        lend();
        let source = job.source.as_deref().map(Vec::as_slice);
        job.board.drive(
            &mut |i| self.sentence(plan, &job.phonemes[i], i, source),
            &mut |i, audio| emit(audio, i + 1 == n),
            &mut lend,
        )
    }

    /// A helper job: makes sentences of `job` on this lane, with this lane's
    /// sessions, until none is left or another request waits for the lane.
    /// Its runs are terminated with the request's, on cancel.
    fn help(&mut self, job: &SentenceJob, spawner: &Spawner<ThreadState>) {
        if job.control.is_cancelled() || !job.board.enter() {
            return;
        }
        // Armed inside the visit: the owner, which waits for its helpers to
        // leave, returns after this lane's cancel hooks are gone.
        if let Ok(armed) = self.arm(&job.control) {
            let source = job.source.as_deref().map(Vec::as_slice);
            job.board.serve(
                &mut || !job.control.is_cancelled() && !spawner.load().should_yield(),
                &mut |i| {
                    let made = self.sentence(&job.plan, &job.phonemes[i], i, source);
                    self.shared
                        .lent_sentences
                        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    made
                },
            );
            drop(armed);
        }
        job.board.leave();
    }

    /// Makes sentence `i` of `plan` from its espeak-ng utterances: base voice,
    /// then (cloning) the converter, then the pause after it. Its random
    /// draws come from the plan's seed and `i` alone.
    fn sentence(
        &mut self,
        plan: &Plan,
        utterances: &[String],
        i: usize,
        source: Option<&[f32]>,
    ) -> Result<Audio> {
        let shared = self.shared.clone();
        let voice = &shared.voices[plan.voice];
        let n = plan.sentences.len();
        let out_rate = if plan.target.is_some() {
            CONVERTER_RATE
        } else {
            voice.sample_rate
        };
        let mut rng = sentence_rng(plan.seed, i);
        // Piper speaks each espeak-ng utterance as one model input.
        let mut samples = Vec::new();
        for p in utterances {
            let seed = noise::seed_value(rand::RngCore::next_u64(&mut rng));
            samples.extend(self.base_sentence(plan.voice, p, plan.scales, seed)?);
        }
        let mut audio = Audio::new(samples, voice.sample_rate);
        if let (Some(target), Some(source)) = (&plan.target, source) {
            if !audio.is_empty() {
                audio = to_converter_rate(audio)?;
                let spec = crate::spectral::presets::openvoice_spectrogram(&audio.samples);
                let conv = self
                    .converter
                    .as_mut()
                    .ok_or_else(OpenVoiceEngine::no_converter)?;
                audio = Audio::new(
                    conv.convert(&spec, source, target, plan.tau, &mut rng)?,
                    CONVERTER_RATE,
                );
            }
        }
        if i + 1 < n {
            audio.samples.extend(std::iter::repeat_n(
                0.0,
                (plan.pauses[i] * out_rate as f32) as usize,
            ));
        }
        audio.sample_rate = out_rate;
        Ok(audio)
    }

    fn extract(&mut self, reference: Audio) -> Result<Vec<f32>> {
        let seconds = reference.duration().as_secs_f32();
        if reference.is_empty() {
            return Err(Error::AudioRejected("reference audio is empty".into()));
        }
        if seconds > MAX_REFERENCE_SECONDS + 0.5 {
            return Err(Error::AudioRejected(format!(
                "reference is {seconds:.1} s long; give {MIN_REFERENCE_SPEECH:.0}–{MAX_REFERENCE_SECONDS:.0} s"
            )));
        }
        let audio = to_converter_rate(reference)?;
        let segments = crate::audio::vad::speech_segments(&audio, &crate::audio::vad::VadConfig::default());
        let mut speech = Vec::with_capacity(audio.samples.len());
        for r in segments {
            speech.extend_from_slice(&audio.samples[r]);
        }
        let speech_seconds = speech.len() as f32 / CONVERTER_RATE as f32;
        if speech_seconds < MIN_REFERENCE_SPEECH {
            return Err(Error::AudioRejected(format!(
                "only {speech_seconds:.1} s of speech in the reference; at least {MIN_REFERENCE_SPEECH:.0} s are needed"
            )));
        }
        self.extract_tone(&speech)
    }
}

fn to_converter_rate(audio: Audio) -> Result<Audio> {
    if audio.sample_rate == CONVERTER_RATE {
        Ok(audio)
    } else {
        crate::audio::resample::resample(&audio, CONVERTER_RATE)
    }
}

#[async_trait]
impl Engine for OpenVoiceEngine {
    fn info(&self) -> EngineInfo {
        let s = &self.shared;
        let default = &s.voices[s.default_voice];
        let mut builtin: Vec<String> = vec![default.name.clone()];
        builtin.extend(
            s.voices
                .iter()
                .filter(|v| v.name != default.name)
                .map(|v| v.name.clone()),
        );
        EngineInfo {
            kind: EngineKind::OpenVoice,
            name: "OpenVoice v2 (Piper VITS base + tone color converter)".into(),
            languages: self.languages(),
            default_language: default.language.clone(),
            sample_rate: if s.converter.is_some() {
                CONVERTER_RATE
            } else {
                default.sample_rate
            },
            streaming: true,
            max_text_chars: s.config.max_text_chars,
            max_sentence_chars: s.config.max_sentence_chars,
            needs_transcript: false,
            cloning: s.converter.is_some(),
            builtin_voices: builtin,
        }
    }

    fn state(&self) -> ModelState {
        self.lanes.state()
    }

    async fn load(&self) -> Result<()> {
        let shared = self.shared.clone();
        let threads = shared.config.max_concurrency.max(1);
        let queue = shared.config.queue_size;
        let idle_after = shared.config.idle_tidy_after;
        let start = move || {
            // espeak-ng starts (its processes stay pooled) while the
            // sessions build, so the first request does not wait for it.
            let warm = warm_phonemizer(&shared);
            let bases = load_bases(&shared);
            if warm.is_some_and(|w| w.join().is_err()) {
                tracing::debug!("the phonemizer warm-up thread panicked");
            }
            let bases = Arc::new(bases?);
            let pool = InferencePool::start_with_idle(
                "openvoice",
                threads,
                queue,
                move |_| ThreadState::load(shared.clone(), bases.clone()),
                Some(IdleWork {
                    after: idle_after,
                    work: Box::new(ThreadState::tidy),
                }),
            )?;
            Ok((pool, ()))
        };
        self.lanes.load(start, |()| {}).await
    }

    async fn unload(&self) -> Result<()> {
        self.lanes.unload().await;
        Ok(())
    }

    async fn extract_voice(&self, reference: &ReferenceAudio) -> Result<VoiceProfile> {
        if self.shared.converter.is_none() {
            return Err(Self::no_converter());
        }
        let pool = self.pool()?;
        let audio = reference.audio.clone();
        let tone = pool
            .run(move |t: &mut ThreadState| {
                // Fresh run options: a cancelled request before must not stop this one.
                let _armed = t.arm(&SynthesisControl::new())?;
                t.extract(audio)
            })
            .await?;
        Ok(VoiceProfile {
            engine: EngineKind::OpenVoice,
            format_version: PROFILE_VERSION,
            data: converter::encode_tone(&tone),
        })
    }

    async fn synthesize(&self, request: &SynthesisRequest, profile: Option<&VoiceProfile>) -> Result<Audio> {
        self.synthesize_with(request, profile, &SynthesisControl::new())
            .await
    }

    async fn synthesize_with(
        &self,
        request: &SynthesisRequest,
        profile: Option<&VoiceProfile>,
        control: &SynthesisControl,
    ) -> Result<Audio> {
        let plan = Arc::new(self.plan(request, profile, false)?);
        let pool = self.pool()?;
        let control = control.clone();
        let spawner = pool.spawner();
        pool.run(move |t: &mut ThreadState| {
            // A job whose caller left while it was queued does nothing.
            if control.is_cancelled() {
                return Err(Error::Cancelled);
            }
            let _armed = t.arm(&control)?;
            let mut out: Option<Audio> = None;
            let ran = t.run_plan(&plan, &control, spawner.as_ref(), &mut |a, _| {
                let go_on = control.advance(&a);
                match &mut out {
                    Some(o) => o.append(&a),
                    None => out = Some(a),
                }
                go_on
            });
            // A terminated run fails; that failure is the cancellation.
            if control.is_cancelled() {
                return Err(Error::Cancelled);
            }
            ran?;
            out.ok_or(Error::EmptyText)
        })
        .await
    }

    async fn synthesize_stream(
        &self,
        request: &SynthesisRequest,
        profile: Option<&VoiceProfile>,
    ) -> Result<AudioStream> {
        let plan = Arc::new(self.plan(request, profile, true)?);
        let pool = self.pool()?;
        let spawner = pool.spawner();
        let (tx, rx) = AudioStream::channel(DEFAULT_STREAM_BOUND);
        // A reader that goes away cancels the stream's control, which
        // terminates the model run under way (not only the next sentence).
        let control = SynthesisControl::new();
        let (finished, watch_done) = tokio::sync::oneshot::channel::<()>();
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            let (watch_tx, watch_control) = (tx.clone(), control.clone());
            rt.spawn(async move {
                tokio::select! {
                    _ = watch_tx.closed() => watch_control.cancel(),
                    _ = watch_done => {}
                }
            });
        }
        let done = pool.submit(move |t: &mut ThreadState| {
            // Dropped when the job ends (or is dropped unrun): the watcher then
            // lets go of its sender, so the reader sees the end of the stream.
            let _finished = finished;
            let armed = t.arm(&control);
            match armed {
                Ok(_armed) => stream_plan(t, &plan, &control, spawner.as_ref(), &tx),
                Err(e) => {
                    let _ = tx.blocking_send(Err(e));
                }
            }
            Ok(())
        })?;
        drop(done);
        Ok(rx)
    }
}

fn stream_plan(
    t: &mut ThreadState,
    plan: &Arc<Plan>,
    control: &SynthesisControl,
    spawner: Option<&Spawner<ThreadState>>,
    tx: &AudioStreamSender,
) {
    if tx.is_closed() {
        return;
    }
    let mut index = 0;
    let result = t.run_plan(plan, control, spawner, &mut |audio, is_last| {
        let ok = tx.blocking_send(Ok(AudioChunk {
            index,
            audio,
            is_last,
        }));
        index += 1;
        ok
    });
    if let Err(e) = result {
        let _ = tx.blocking_send(Err(e));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn engine() -> OpenVoiceEngine {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../models/openvoice");
        OpenVoiceEngine::new(OpenVoiceConfig::new(dir)).expect("default voice: run scripts/setup.sh")
    }

    /// The real voice loaded on `lanes` lanes of one intra-op thread each.
    async fn loaded(lanes: usize) -> OpenVoiceEngine {
        crate::runtime::init(&Default::default()).expect("ONNX Runtime: run scripts/setup.sh");
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../models/openvoice");
        let config = OpenVoiceConfig {
            max_concurrency: lanes,
            session: SessionConfig {
                intra_threads: 1,
                ..SessionConfig::default()
            },
            ..OpenVoiceConfig::new(dir)
        };
        let e = OpenVoiceEngine::new(config).expect("default voice: run scripts/setup.sh");
        e.load().await.unwrap();
        e
    }

    /// Loading starts the default voice's espeak-ng processes: the first
    /// request finds them running.
    #[tokio::test]
    async fn loading_starts_the_phonemizer() {
        let e = loaded(1).await;
        assert!(
            !e.shared.espeak.idle_process_ids().is_empty(),
            "no espeak-ng process was started by the load"
        );
    }

    const EIGHT_SENTENCES: &str = "One short sentence comes first. Another one follows it closely. \
A third sentence keeps going. The fourth is rather brief. Then there is a fifth. And a sixth one, \
with a clause. Seven comes next in line. Eight ends it all.";

    fn seeded(text: &str) -> SynthesisRequest {
        let mut r = SynthesisRequest::new(text);
        r.seed = Some(41);
        r
    }

    /// With a second lane idle, a request lends sentences to it; the audio
    /// is the same, sample for sample, as one lane making every sentence in
    /// turn, whole and streamed.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn parallel_sentences_equal_sequential_synthesis_sample_for_sample() {
        let one = loaded(1).await;
        let two = loaded(2).await;
        let request = seeded(EIGHT_SENTENCES);
        let alone = one.synthesize(&request, None).await.unwrap();
        let parallel = two.synthesize(&request, None).await.unwrap();
        let lent = two
            .shared
            .lent_sentences
            .load(std::sync::atomic::Ordering::Relaxed);
        assert_eq!(
            one.shared
                .lent_sentences
                .load(std::sync::atomic::Ordering::Relaxed),
            0
        );
        assert!(lent > 0, "the idle lane made none of the sentences");
        assert_eq!(alone.sample_rate, parallel.sample_rate);
        assert_eq!(alone.samples, parallel.samples);
        // Streamed: the chunks come in order and match too.
        let mut chunks = Vec::new();
        for e in [&one, &two] {
            let mut rx = e.synthesize_stream(&request, None).await.unwrap();
            let mut got = Vec::new();
            while let Some(c) = rx.next_chunk().await {
                got.push(c.unwrap());
            }
            assert!(got.iter().enumerate().all(|(i, c)| c.index == i));
            assert!(got.last().unwrap().is_last);
            chunks.push(got.into_iter().map(|c| c.audio.samples).collect::<Vec<_>>());
        }
        assert_eq!(chunks[0].len(), 8, "one chunk per sentence");
        assert_eq!(chunks[0], chunks[1]);
    }

    /// Cancelling a request whose sentences are on two lanes stops both: it
    /// ends `cancelled` once its helper has let go, and both lanes serve again.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn cancelling_a_parallel_request_stops_every_lane() {
        use std::sync::atomic::{AtomicBool, Ordering};
        let e = loaded(2).await;
        let text = EIGHT_SENTENCES.repeat(3);
        let control = SynthesisControl::new();
        let finished = std::sync::Arc::new(AtomicBool::new(false));
        // One hook per armed lane: cancel once the helper lane has armed too.
        let canceller = {
            let (control, finished) = (control.clone(), finished.clone());
            std::thread::spawn(move || {
                while control.hooks_registered() < 2 && !finished.load(Ordering::Acquire) {
                    std::thread::yield_now();
                }
                control.cancel();
            })
        };
        let result = e.synthesize_with(&seeded(&text), None, &control).await;
        finished.store(true, Ordering::Release);
        canceller.join().unwrap();
        assert_eq!(result.unwrap_err().code(), "cancelled");
        assert_eq!(control.hooks_registered(), 0, "a lane kept its cancel hook");
        // Both lanes are free: two requests at once both finish.
        let (ra, rb) = (seeded("Still here."), seeded("Me too."));
        let (a, b) = tokio::join!(e.synthesize(&ra, None), e.synthesize(&rb, None));
        assert!(!a.unwrap().is_empty() && !b.unwrap().is_empty());
    }

    /// Runs `job` on both lanes of a two-lane engine at the same moment (a
    /// barrier holds each job until the other started: they cannot share a
    /// lane).
    async fn on_both_lanes<T: Send + 'static>(
        e: &OpenVoiceEngine,
        job: impl Fn(&mut ThreadState, usize) -> Result<T> + Send + Sync + 'static,
    ) -> (T, T) {
        let pool = e.pool().unwrap();
        let barrier = Arc::new(std::sync::Barrier::new(2));
        let job = Arc::new(job);
        let (b1, j1) = (barrier.clone(), job.clone());
        let first = pool.run(move |t: &mut ThreadState| {
            b1.wait();
            j1(t, 0)
        });
        let second = pool.run(move |t: &mut ThreadState| {
            barrier.wait();
            job(t, 1)
        });
        let (a, b) = tokio::join!(first, second);
        (a.unwrap(), b.unwrap())
    }

    /// The default voice loads split at its decoder, the decoder in two
    /// dimensions ([`super::conv2d`]); with windows small enough that a
    /// sentence takes several, it speaks as the whole graph does (to float
    /// rounding at the seams), whole and streamed.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_windowed_decoder_speaks_as_the_whole_graph() {
        crate::runtime::init(&Default::default()).expect("ONNX Runtime: run scripts/setup.sh");
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../models/openvoice");
        // One thread: the windows decode on the 2-D decoder.
        let with_chunk = |windows| OpenVoiceConfig {
            max_concurrency: 1,
            decoder_windows: windows,
            session: SessionConfig {
                intra_threads: 1,
                ..SessionConfig::default()
            },
            ..OpenVoiceConfig::new(dir.clone())
        };
        use crate::runtime::DecoderWindows;
        let whole = OpenVoiceEngine::new(with_chunk(DecoderWindows::Whole)).unwrap();
        let windowed = OpenVoiceEngine::new(with_chunk(DecoderWindows::PerRun(48))).unwrap();
        whole.load().await.unwrap();
        windowed.load().await.unwrap();
        let kind = |e: &OpenVoiceEngine| {
            let pool = e.pool().unwrap();
            async move {
                pool.run(|t: &mut ThreadState| {
                    Ok(matches!(&t.base[0], VitsGraphs::Split { budget, decoders, .. }
                        if budget.frames() == 48 && matches!(**decoders, super::piper::Decoders::Planar(_))))
                })
                .await
                .unwrap()
            }
        };
        assert!(!kind(&whole).await);
        assert!(kind(&windowed).await);
        let request =
            seeded("This one sentence runs long enough that its decoder needs several windows of frames.");
        let a = whole.synthesize(&request, None).await.unwrap().samples;
        let b = windowed.synthesize(&request, None).await.unwrap().samples;
        assert!(a.len() > 48 * 256 * 3, "the sentence must span several windows");
        assert_eq!(a.len(), b.len());
        let diff = crate::audio::max_abs_diff(&a, &b);
        assert!(diff < 1e-4, "windowed decoding differs by {diff}");
        // Windows that share a budget (a run alone takes it all) too, on
        // the shared pool: this sentence, alone, decodes in a part per
        // thread, each on the 2-D decoder.
        let pool = crate::runtime::shared_pool_threads();
        let shared = OpenVoiceEngine::new(OpenVoiceConfig {
            session: SessionConfig {
                intra_threads: pool,
                shared_pool: true,
                ..SessionConfig::default()
            },
            ..with_chunk(DecoderWindows::Shared(64))
        })
        .unwrap();
        shared.load().await.unwrap();
        let lanes = shared.pool().unwrap();
        let (alone, loaded, long, loaded_long) = lanes
            .run(move |t: &mut ThreadState| {
                let VitsGraphs::Split { decoders, .. } = &t.base[0] else {
                    return Ok((false, false, 0, 0));
                };
                let super::piper::Decoders::Both { planar, threads, .. } = &**decoders else {
                    return Ok((pool <= 1, pool <= 1, 1, 1));
                };
                assert_eq!(threads.count, pool);
                let on_planar =
                    |(s, _): (&crate::concurrent::ConcurrentSession, usize)| std::ptr::eq(s, planar);
                Ok((
                    on_planar(decoders.plan(1, 10)),
                    on_planar(decoders.plan(pool, 10)),
                    decoders.plan(1, 10_000).1,
                    decoders.plan(pool, 10_000).1,
                ))
            })
            .await
            .unwrap();
        // A short latent alone on the exported decoder, any under load on the
        // 2-D one whole, a long one alone in a part per thread.
        assert_eq!(
            (alone, loaded, long, loaded_long),
            (pool <= 1, true, pool.max(1), 1)
        );
        let c = shared.synthesize(&request, None).await.unwrap().samples;
        assert_eq!(a.len(), c.len());
        let diff = crate::audio::max_abs_diff(&a, &c);
        assert!(diff < 1e-4, "decoding in shared windows differs by {diff}");
    }

    /// The lanes run one copy of each base voice: the weights and the arena
    /// are held once, not once per lane.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn every_lane_runs_the_same_base_sessions() {
        let e = loaded(2).await;
        let (a, b) = on_both_lanes(&e, |t, _| Ok(Arc::as_ptr(&t.base) as usize)).await;
        assert_eq!(a, b);
    }

    /// Runs of one session overlapping on two lanes give exactly the samples
    /// that the same runs give one after the other.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn overlapping_runs_of_one_session_equal_runs_in_turn() {
        let e = loaded(2).await;
        let texts = [
            "The first lane reads this sentence aloud.",
            "And the second lane says this other one.",
        ];
        let phonemes: Vec<String> = texts
            .iter()
            .map(|t| {
                let v = &e.shared.voices[e.shared.default_voice];
                e.shared
                    .espeak
                    .phonemize_utterances(&v.espeak_voice, &[t.to_string()])
                    .unwrap()
                    .into_iter()
                    .flatten()
                    .next()
                    .unwrap()
            })
            .collect();
        let voice = e.shared.default_voice;
        let scales = {
            let v = &e.shared.voices[voice];
            [v.noise_scale, v.length_scale, v.noise_w]
        };
        let pool = e.pool().unwrap();
        let mut alone = Vec::new();
        for (i, p) in phonemes.iter().enumerate() {
            let p = p.clone();
            alone.push(
                pool.run(move |t: &mut ThreadState| t.base_sentence(voice, &p, scales, 7 + i as i64))
                    .await
                    .unwrap(),
            );
        }
        assert_ne!(alone[0], alone[1]);
        for _ in 0..3 {
            let p = phonemes.clone();
            let (a, b) = on_both_lanes(&e, move |t, lane| {
                let mut out = Vec::new();
                for _ in 0..2 {
                    out = t.base_sentence(voice, &p[lane], scales, 7 + lane as i64)?;
                }
                Ok(out)
            })
            .await;
            assert_eq!(a, alone[0]);
            assert_eq!(b, alone[1]);
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_idle_lane_shrinks_the_arenas_of_the_voices_that_ran() {
        crate::runtime::init(&Default::default()).expect("ONNX Runtime: run scripts/setup.sh");
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../models/openvoice");
        // No idle tidying on its own during the test: each step is this test's.
        let config = OpenVoiceConfig {
            idle_tidy_after: std::time::Duration::from_secs(3600),
            ..OpenVoiceConfig::new(dir)
        };
        let e = OpenVoiceEngine::new(config).expect("default voice: run scripts/setup.sh");
        e.load().await.unwrap();
        let pool = e.pool().unwrap();
        // Nothing ran yet: nothing to shrink.
        let none = pool.run(|t: &mut ThreadState| t.shrink_arenas()).await.unwrap();
        assert_eq!(none, 0);
        e.synthesize(&seeded("A sentence to make the arena grow."), None)
            .await
            .unwrap();
        // The request itself left its voice's arena as it was, for the next.
        let used = pool.run(|t: &mut ThreadState| Ok(t.used.clone())).await.unwrap();
        assert_eq!(used.iter().filter(|u| **u).count(), 1);
        // The tidying run is a real run of that voice, once.
        let shrunk = pool.run(|t: &mut ThreadState| t.shrink_arenas()).await.unwrap();
        assert_eq!(shrunk, 1);
        let again = pool.run(|t: &mut ThreadState| t.shrink_arenas()).await.unwrap();
        assert_eq!(again, 0);
    }

    #[test]
    fn sentence_randomness_depends_on_the_seed_and_index_only() {
        use rand::RngCore;
        assert_eq!(sentence_rng(9, 3).next_u64(), sentence_rng(9, 3).next_u64());
        assert_ne!(sentence_rng(9, 3).next_u64(), sentence_rng(9, 4).next_u64());
        assert_ne!(sentence_rng(9, 3).next_u64(), sentence_rng(10, 3).next_u64());
    }

    #[test]
    fn long_text_is_split_up_to_the_limit() {
        let e = engine();
        let sentence = "A fairly ordinary sentence that goes on for a while, with a clause or two. ";
        let mut text = String::new();
        while text.len() + sentence.len() <= 100_000 {
            text.push_str(sentence);
        }
        let plan = e.plan(&SynthesisRequest::new(text.clone()), None, false).unwrap();
        assert!(plan.sentences.len() > 1000);
        assert!(plan.sentences.iter().all(|s| s.chars().count() <= 400));
        // Text without any punctuation is split too.
        let words = "word ".repeat(5_000);
        let plan = e.plan(&SynthesisRequest::new(words), None, false).unwrap();
        assert!(plan.sentences.len() >= 60);
        assert!(plan.sentences.iter().all(|s| s.chars().count() <= 400));
        assert_eq!(
            e.plan(&SynthesisRequest::new("x".repeat(100_001)), None, false)
                .err()
                .unwrap()
                .code(),
            "text_too_long"
        );
    }

    #[test]
    fn language_and_voice_choice() {
        let e = engine();
        let mut r = SynthesisRequest::new("Hi.");
        assert_eq!(e.pick_voice(&r, false).unwrap(), e.shared.default_voice);
        r.language = Some("EN_us".parse().unwrap());
        assert!(e.pick_voice(&r, false).is_ok());
        r.language = Some("de".parse().unwrap());
        assert_eq!(
            e.pick_voice(&r, false).unwrap_err().code(),
            "unsupported_language"
        );
    }

    #[test]
    fn streaming_cuts_a_long_first_sentence_at_its_first_clause() {
        let e = engine();
        let text = "Once upon a time, in a small village by the sea, there lived an old fisherman. The end.";
        let p = e.plan(&SynthesisRequest::new(text), None, true).unwrap();
        assert_eq!(p.sentences[0], "Once upon a time,");
        assert!(p.sentences[1].starts_with("in a small village"));
        assert_eq!(p.sentences.len(), 3);
        assert!(p.pauses[0] < p.pauses[1]);
        let whole = e.plan(&SynthesisRequest::new(text), None, false).unwrap();
        assert_eq!(whole.sentences.len(), 2);
        assert_eq!(first_clause("Short, sentence."), None);
        assert_eq!(
            first_clause(&format!(
                "No clause punctuation at all here {}",
                "word ".repeat(12)
            )),
            None
        );
    }

    #[test]
    fn token_sampling_parameters_are_refused_by_name() {
        let e = engine();
        for (name, set) in [
            (
                "temperature",
                (|r: &mut SynthesisRequest| r.sampling.temperature = Some(0.7)) as fn(&mut _),
            ),
            ("top_k", |r| r.sampling.top_k = Some(5)),
            ("top_p", |r| r.sampling.top_p = Some(0.9)),
            ("repetition_penalty", |r| {
                r.sampling.repetition_penalty = Some(1.1)
            }),
        ] {
            let mut r = SynthesisRequest::new("Hi.");
            set(&mut r);
            match e.plan(&r, None, false) {
                Err(Error::InvalidInput { field, message }) => {
                    assert_eq!(field, name);
                    assert!(message.contains(name), "{message}");
                }
                other => panic!("{name}: {:?}", other.map(|p| p.seed)),
            }
        }
    }

    #[test]
    fn a_seed_is_accepted_only_where_it_fixes_the_audio() {
        let e = engine();
        let mut r = SynthesisRequest::new("Hi.");
        r.seed = Some(3);
        // The voice's random nodes take the seed once loaded (noise::seed_random_nodes).
        assert_eq!(e.plan(&r, None, false).unwrap().seed, 3);
        // A voice whose graph could not be rewritten: the seed needs zero noise.
        let _ = e.shared.base_seedable[0].set(false);
        let v = e.shared.default_voice;
        if v == 0 {
            match e.plan(&r, None, false) {
                Err(Error::InvalidInput { field, message }) => {
                    assert_eq!(field, "seed");
                    assert!(message.contains("noise_scale"), "{message}");
                }
                other => panic!("{:?}", other.map(|p| p.seed)),
            }
        }
        r.sampling.noise_scale = Some(0.0);
        r.sampling.noise_scale_w = Some(0.0);
        assert_eq!(e.plan(&r, None, false).unwrap().seed, 3);
        // Without a seed, every plan gets its own.
        let a = e.plan(&SynthesisRequest::new("Hi."), None, false).unwrap().seed;
        let b = e.plan(&SynthesisRequest::new("Hi."), None, false).unwrap().seed;
        assert_ne!(a, b);
    }

    #[test]
    fn piper_text_keeps_numbers_for_espeak() {
        // espeak-ng reads numbers itself, as the voice was trained.
        assert_eq!(piper::sentences("It costs  $4.99.", 400), ["It costs $4.99."]);
    }

    #[test]
    fn speed_and_noise_map_to_scales() {
        let e = engine();
        let mut r = SynthesisRequest::new("Hi.");
        r.speed = 2.0;
        r.sampling.noise_scale = Some(0.1);
        let p = e.plan(&r, None, false).unwrap();
        let v = &e.shared.voices[p.voice];
        assert_eq!(p.scales, [0.1, v.length_scale / 2.0, v.noise_w]);
        assert_eq!(p.tau, DEFAULT_TAU);
        assert!((p.pauses[0] - 0.1).abs() < 1e-6);
    }
}
