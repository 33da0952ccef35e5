//! The XTTS-v2 engine on ONNX Runtime.
//!
//! - [`model`]: the model folder (public export layout), checked at load;
//! - [`tokenizer`] + [`numbers`]: Coqui's text cleaning, pinyin, BPE;
//! - [`resample`]: torchaudio's sinc resampler (reference audio);
//! - [`pipeline`]: voice latents, the GPT loop, HiFi-GAN, streaming;
//! - [`import`]: converting a user's Coqui checkpoint (runs the export script).
//!
//! A request: split the text into sentences within the language's
//! character limit → per sentence tokens (refused at the 402-token limit) →
//! codes sampled in Rust (shipped defaults T 0.75, repetition penalty 5.0,
//! top-k 50, top-p 0.85; the request's `sampling` overrides each; `seed`
//! makes it reproducible, the default seed is 0) → latents → 24 kHz audio.
//!
//! Invariants: inference runs on the engine's own threads
//! ([`crate::runtime::InferencePool`]), never on a tokio worker; a voice
//! profile holds the latents and the speaker embedding, so synthesis from a
//! profile never touches reference audio; every job runs its models with
//! its own run options ([`Xtts::arm`]), so a cancelled request (or a stream
//! whose reader is gone) stops inside the model run under way, its job
//! answers [`Error::Cancelled`] (or the stream ends) without the unfinished
//! sentence's audio, and the thread's next job starts with fresh options.

pub mod import;
pub mod japanese;
pub mod model;
pub mod numbers;
pub mod pipeline;
pub mod resample;
pub mod tokenizer;

use crate::runtime::{InferencePool, Lanes, SessionConfig};
use crate::sampling::SamplingConfig;
use async_trait::async_trait;
use parking_lot::Mutex;
use pipeline::{ConditioningConfig, GenOptions, VoiceLatents, Xtts};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use vctts_core::engine::DEFAULT_STREAM_BOUND;
use vctts_core::{
    Audio, AudioChunk, AudioStream, AudioStreamSender, Engine, EngineInfo, EngineKind, Error, ModelState,
    ReferenceAudio, Result, SynthesisControl, SynthesisRequest, VoiceProfile,
};

/// Profile format written by this engine (see [`encode_profile`]).
pub const PROFILE_VERSION: u32 = 1;
const PROFILE_MAGIC: &[u8; 4] = b"XTVP";

/// Settings of the XTTS engine.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct XttsConfig {
    /// The model folder (`models/xtts_v2`).
    pub models_dir: PathBuf,
    /// Session threads, optimisation and device.
    pub session: SessionConfig,
    /// Requests run at once (inference threads).
    pub max_concurrency: usize,
    /// Requests that may wait for a thread.
    pub queue_size: usize,
    /// Longest text per request, characters.
    pub max_text_chars: usize,
    /// Tokens per streamed chunk (Coqui's `stream_chunk_size`).
    pub stream_chunk_size: usize,
    /// Reference handling.
    pub conditioning: ConditioningConfig,
    /// Cap on codes per sentence (`None`: the model's maximum).
    pub max_tokens: Option<usize>,
}

impl Default for XttsConfig {
    fn default() -> Self {
        Self {
            models_dir: PathBuf::from("models/xtts_v2"),
            session: SessionConfig::default(),
            max_concurrency: 1,
            queue_size: 64,
            max_text_chars: 100_000,
            stream_chunk_size: 20,
            conditioning: ConditioningConfig::default(),
            max_tokens: None,
        }
    }
}

impl XttsConfig {
    /// Defaults with the given model folder.
    pub fn new(models_dir: impl Into<PathBuf>) -> Self {
        Self {
            models_dir: models_dir.into(),
            ..Self::default()
        }
    }
}

/// Whether `dir` holds an XTTS model folder; `Err` says what is missing.
pub fn scan(dir: &Path) -> Result<()> {
    let meta = dir.join("metadata.json");
    if !meta.is_file() {
        return Err(Error::ModelNotInstalled(format!(
            "no XTTS-v2 model in {} (metadata.json missing): import a checkpoint with \
             `vctts models import xtts <checkpoint_dir>`, see models/xtts_v2/README.md",
            dir.display()
        )));
    }
    Ok(())
}

/// Profile bytes: `XTVP`, then little-endian u32 cond rows, width, speaker
/// size, then the f32 values (latents row-major, then the embedding).
pub fn encode_profile(v: &VoiceLatents) -> Vec<u8> {
    let mut out = Vec::with_capacity(16 + 4 * (v.cond.len() + v.speaker.len()));
    out.extend_from_slice(PROFILE_MAGIC);
    for n in [v.cond_len, v.dim, v.speaker.len()] {
        out.extend_from_slice(&(n as u32).to_le_bytes());
    }
    for x in v.cond.iter().chain(&v.speaker) {
        out.extend_from_slice(&x.to_le_bytes());
    }
    out
}

/// Reads [`encode_profile`]'s bytes.
pub fn decode_profile(bytes: &[u8]) -> Result<VoiceLatents> {
    let bad = |m: &str| Error::invalid("voice", format!("not an XTTS voice profile: {m}"));
    if bytes.len() < 16 || &bytes[..4] != PROFILE_MAGIC {
        return Err(bad("wrong header"));
    }
    let u = |i: usize| u32::from_le_bytes([bytes[i], bytes[i + 1], bytes[i + 2], bytes[i + 3]]) as usize;
    let (rows, dim, spk) = (u(4), u(8), u(12));
    let n = rows
        .checked_mul(dim)
        .and_then(|c| c.checked_add(spk))
        .ok_or_else(|| bad("sizes overflow"))?;
    if bytes.len() != 16 + 4 * n || rows == 0 || dim == 0 || spk == 0 {
        return Err(bad("length does not match its sizes"));
    }
    let vals: Vec<f32> = bytes[16..]
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect();
    if vals.iter().any(|v| !v.is_finite()) {
        return Err(bad("non-finite values"));
    }
    Ok(VoiceLatents {
        cond_len: rows,
        dim,
        cond: vals[..rows * dim].to_vec(),
        speaker: vals[rows * dim..].to_vec(),
    })
}

/// A planned request.
struct Plan {
    sentences: Vec<String>,
    lang: String,
    voice: Option<VoiceLatents>,
    opts: GenOptions,
}

/// The XTTS-v2 engine. Cheap to share behind an `Arc`.
pub struct XttsEngine {
    config: XttsConfig,
    assets: Mutex<Option<Arc<model::Assets>>>,
    lanes: Lanes<Xtts>,
}

impl std::fmt::Debug for XttsEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("XttsEngine")
            .field("state", &self.lanes.state())
            .finish()
    }
}

impl XttsEngine {
    /// Checks that the model folder exists; loads nothing yet.
    pub fn new(config: XttsConfig) -> Result<Self> {
        scan(&config.models_dir)?;
        Ok(Self {
            config,
            assets: Mutex::new(None),
            lanes: Lanes::new("xtts"),
        })
    }

    fn pool(&self) -> Result<Arc<InferencePool<Xtts>>> {
        self.lanes.get()
    }

    fn plan(&self, request: &SynthesisRequest, profile: Option<&VoiceProfile>) -> Result<Plan> {
        self.info().check_request(request)?;
        let lang =
            tokenizer::check_language(request.language.as_ref().map_or("en", |l| l.as_str()))?.to_string();
        let Some(profile) = profile else {
            return Err(Error::invalid(
                "voice",
                "XTTS has no built-in voice: give a reference clip or a stored voice",
            ));
        };
        let voice = decode_profile(profile.expect(EngineKind::Xtts, PROFILE_VERSION)?)?;
        let sentences =
            crate::text::split::split_sentences(request.text.trim(), tokenizer::char_limit(&lang));
        if sentences.is_empty() {
            return Err(Error::EmptyText);
        }
        let s = &request.sampling;
        let mut opts = GenOptions::shipped(request.seed.unwrap_or(0));
        let c: &mut SamplingConfig = &mut opts.sampling;
        if let Some(t) = s.temperature {
            c.temperature = t;
        }
        if let Some(k) = s.top_k {
            c.top_k = Some(k);
        }
        if let Some(p) = s.top_p {
            c.top_p = Some(p);
        }
        if let Some(r) = s.repetition_penalty {
            c.repetition_penalty = r;
        }
        c.validate()?;
        opts.speed = request.speed;
        opts.max_tokens = self.config.max_tokens;
        Ok(Plan {
            sentences,
            lang,
            voice: Some(voice),
            opts,
        })
    }

    /// Voice profile from several reference clips of one voice (speaker
    /// embeddings averaged, audio joined for the GPT latents, as upstream).
    pub async fn extract_voice_multi(&self, references: &[ReferenceAudio]) -> Result<VoiceProfile> {
        let pool = self.pool()?;
        let clips: Vec<Audio> = references.iter().map(|r| r.audio.clone()).collect();
        let cfg = self.config.conditioning;
        let voice = pool
            .run(move |x: &mut Xtts| {
                // Fresh run options: a cancelled request before must not stop this one.
                x.disarm()?;
                x.voice(&clips, &cfg)
            })
            .await?;
        Ok(VoiceProfile {
            engine: EngineKind::Xtts,
            format_version: PROFILE_VERSION,
            data: encode_profile(&voice),
        })
    }
}

#[async_trait]
impl Engine for XttsEngine {
    fn info(&self) -> EngineInfo {
        let rate = self.assets.lock().as_ref().map_or(24_000, |a| a.output_rate);
        EngineInfo {
            kind: EngineKind::Xtts,
            name: "XTTS-v2 (Coqui) on ONNX Runtime".into(),
            languages: tokenizer::LANGUAGES.iter().map(|s| s.to_string()).collect(),
            default_language: "en".into(),
            sample_rate: rate,
            streaming: true,
            max_text_chars: self.config.max_text_chars,
            max_sentence_chars: 273,
            needs_transcript: false,
            cloning: true,
            builtin_voices: Vec::new(),
        }
    }

    fn state(&self) -> ModelState {
        self.lanes.state()
    }

    async fn load(&self) -> Result<()> {
        let dir = self.config.models_dir.clone();
        let session = self.config.session;
        let threads = self.config.max_concurrency.max(1);
        let queue = self.config.queue_size;
        let start = move || -> Result<(InferencePool<Xtts>, Arc<model::Assets>)> {
            let assets = Arc::new(model::Assets::load_probed(&dir, &session)?);
            let shared = assets.clone();
            let pool = InferencePool::start("xtts", threads, queue, move |_| {
                Xtts::new(shared.clone(), &session)
            })?;
            Ok((pool, assets))
        };
        self.lanes
            .load(start, |assets| *self.assets.lock() = Some(assets))
            .await
    }

    async fn unload(&self) -> Result<()> {
        self.lanes.unload().await;
        Ok(())
    }

    async fn extract_voice(&self, reference: &ReferenceAudio) -> Result<VoiceProfile> {
        self.extract_voice_multi(std::slice::from_ref(reference)).await
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
        let plan = self.plan(request, profile)?;
        let pool = self.pool()?;
        let control = control.clone();
        pool.run(move |x: &mut Xtts| {
            // A job whose caller left while it was queued does nothing.
            if control.is_cancelled() {
                return Err(Error::Cancelled);
            }
            let voice = plan
                .voice
                .as_ref()
                .ok_or_else(|| Error::Internal("plan without voice".into()))?;
            // Cancelling the request terminates the model run under way.
            let _armed = x.arm(&control)?;
            let audio = x.synthesize_until(voice, &plan.sentences, &plan.lang, &plan.opts, &mut |a| {
                control.advance(a)
            });
            // A terminated run fails; that failure is the cancellation.
            if control.is_cancelled() {
                return Err(Error::Cancelled);
            }
            audio
        })
        .await
    }

    async fn synthesize_stream(
        &self,
        request: &SynthesisRequest,
        profile: Option<&VoiceProfile>,
    ) -> Result<AudioStream> {
        let plan = self.plan(request, profile)?;
        let pool = self.pool()?;
        let chunk = self.config.stream_chunk_size;
        let (tx, rx) = AudioStream::channel(DEFAULT_STREAM_BOUND);
        // A reader that goes away cancels the stream's control, which
        // terminates the model run under way (not only the next chunk).
        let control = SynthesisControl::new();
        let watch = crate::runtime::cancel_when_reader_leaves(&tx, &control);
        let done = pool.submit(move |x: &mut Xtts| {
            // Held until the job ends (or is dropped unrun).
            let _watch = watch;
            match x.arm(&control) {
                Ok(_armed) => stream_plan(x, &plan, chunk, &tx),
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

fn stream_plan(x: &mut Xtts, plan: &Plan, chunk: usize, tx: &AudioStreamSender) {
    let Some(voice) = plan.voice.as_ref() else {
        return;
    };
    let rate = x.sample_rate();
    let mut index = 0;
    let n = plan.sentences.len();
    for (i, s) in plan.sentences.iter().enumerate() {
        if tx.is_closed() {
            return;
        }
        let result = x.stream_sentence(voice, s, &plan.lang, &plan.opts, chunk, &mut |audio, end| {
            let ok = tx.blocking_send(Ok(AudioChunk {
                index,
                audio: Audio::new(audio, rate),
                is_last: end && i + 1 == n,
            }));
            index += 1;
            ok
        });
        match result {
            Ok(true) => {}
            Ok(false) => return,
            Err(e) => {
                let _ = tx.blocking_send(Err(e));
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn profile_round_trip_and_rejects_garbage() {
        let v = VoiceLatents {
            cond_len: 2,
            dim: 3,
            cond: vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0],
            speaker: vec![0.5, -0.5],
        };
        let b = encode_profile(&v);
        assert_eq!(decode_profile(&b).unwrap(), v);
        assert!(decode_profile(&b[..b.len() - 1]).is_err());
        assert!(decode_profile(b"nope").is_err());
        let mut nan = b.clone();
        let n = nan.len();
        nan[n - 4..].copy_from_slice(&f32::NAN.to_le_bytes());
        assert!(decode_profile(&nan).is_err());
    }
}
