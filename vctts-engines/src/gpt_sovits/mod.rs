//! The GPT-SoVITS v2 engine on ONNX Runtime, on a graph split that returns
//! logits: sampling, the KV cache and positions are here in Rust
//! ([`t2s`]), the reference spectrogram too ([`crate::spectral::presets`]).
//!
//! Model folder (`models/gpt_sovits/`, made by `vctts models import
//! gpt-sovits`, see [`import`] and [`model`] for the files).
//!
//! Voice extraction (a 3–10 s reference with its transcript and language):
//! - 16 kHz branch: the clip with 9600 zeros appended (upstream's 0.3 s at
//!   32 kHz, 0.6 s here) → HuBERT → prompt codes (25/s);
//! - 32 kHz branch: the clip divided by `min(2, peak)` when its peak
//!   exceeds 1; kept in the profile, its spectrogram (2048/640, eps 1e-8)
//!   is made per request;
//! - the transcript, with a final "。" (or "." in English) when it ends
//!   without punctuation, → phones and BERT features.
//!
//! Synthesis: the text is cut with upstream's cut5 (punctuation), each
//! piece → phones/BERT → T2S (prompt first) → VITS with the piece's phones,
//! the generated codes, the reference spectrogram and seeded prior noise
//! (scale 0.5 in the graph) → 32 kHz; every piece is followed by
//! `fragment_interval` (0.3 s) of silence, as upstream's post-processing.
//! `speed` is upstream's `speed_factor`: VITS resizes its latent to
//! `int(2T / speed) + 1` frames (the graph takes the length from the noise,
//! see [`model::Metadata::latent_frames`]), so pitch is kept.
//! VITS ends in `tanh`, so upstream's per-fragment peak normalisation never
//! applies and is not repeated here.
//!
//! Streaming: each piece's audio leaves as soon as it is decoded, followed
//! by its silence. With the default `stream_chunk_tokens = 0` a piece is
//! decoded whole, exactly as without streaming, so the joined chunks equal
//! the non-streamed output sample for sample (upstream's api_v2 streams by
//! fragment the same way). Opt-in: `stream_chunk_tokens > 0` decodes a long
//! piece (speed 1 only) in token chunks while it is generated, each with
//! `stream_overlap_tokens` of earlier tokens as left context,
//! `stream_lookahead_tokens` of later tokens as right context (they leave
//! with the next chunk) and a linear crossfade of one token (1280 samples)
//! into the previous chunk. The prior noise of frame `f` depends only on the
//! seed and `f`, so the chunks see the same noise as the whole piece; but
//! VITS's encoders attend over the whole piece, so chunked audio is only
//! close to the whole (about 16 dB SNR on the random-weight fixture).
//!
//! Invariants: inference runs on the engine's own threads
//! ([`InferencePool`]), one per admitted request; the same seed gives the
//! same audio; synthesis from a profile never runs SSL or BERT on the
//! reference; every job runs its graphs with its own run options
//! ([`Graphs::arm`]), so a cancelled request (or a stream whose reader is
//! gone) stops inside the graph run under way, its job answers
//! [`Error::Cancelled`] (or the stream ends) without the unfinished piece's
//! audio, and the thread's next job starts with fresh options.

pub mod import;
pub mod model;
pub mod profile;
pub mod t2s;
pub mod text;

use crate::runtime::{InferencePool, Lanes, SessionConfig};
use async_trait::async_trait;
use model::{Graphs, ModelFiles};
use profile::{PROFILE_VERSION, Voice};
use std::path::PathBuf;
use std::sync::Arc;
use t2s::{Generation, T2sParams};
use text::Vocab;
use vctts_core::engine::DEFAULT_STREAM_BOUND;
use vctts_core::{
    Audio, AudioChunk, AudioStream, AudioStreamSender, Engine, EngineInfo, EngineKind, Error, ModelState,
    ReferenceAudio, Result, SynthesisControl, SynthesisRequest, VoiceProfile,
};

/// Output rate.
pub const SAMPLE_RATE: u32 = 32_000;
/// Rate of the SSL branch.
pub const SSL_RATE: u32 = 16_000;
/// Zeros appended to the 16 kHz reference (upstream's `int(32000 * 0.3)`).
pub const SSL_PAD: usize = 9_600;
/// Shortest reference, seconds (upstream: 48000 samples at 16 kHz).
pub const MIN_REFERENCE_SECONDS: f32 = 3.0;
/// Longest reference, seconds (upstream: 160000 samples at 16 kHz).
pub const MAX_REFERENCE_SECONDS: f32 = 10.0;
/// Scale of the VITS prior noise, baked into the exported graph.
pub const NOISE_SCALE: f32 = 0.5;

/// Settings of the GPT-SoVITS engine.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GptSovitsConfig {
    /// The model folder (`models/gpt_sovits`).
    pub models_dir: PathBuf,
    /// Session threads, optimisation and device.
    pub session: SessionConfig,
    /// Requests run at once (inference threads).
    pub max_concurrency: usize,
    /// Requests that may wait for a thread.
    pub queue_size: usize,
    /// Longest text per request, characters.
    pub max_text_chars: usize,
    /// Most semantic tokens per piece (upstream: 1500, 60 s).
    pub max_steps: usize,
    /// Silence after each piece, seconds (api_v2 `fragment_interval`).
    pub fragment_interval: f32,
    /// Streaming: decode a piece in chunks of this many tokens (0, the
    /// default: whole pieces, the streamed audio equals the non-streamed).
    pub stream_chunk_tokens: usize,
    /// Streaming: earlier tokens decoded again as context for a chunk.
    pub stream_overlap_tokens: usize,
    /// Streaming: tokens held back at the end of a chunk as right context
    /// (they leave with the next chunk).
    pub stream_lookahead_tokens: usize,
}

impl Default for GptSovitsConfig {
    fn default() -> Self {
        Self {
            models_dir: PathBuf::from("models/gpt_sovits"),
            session: SessionConfig::default(),
            max_concurrency: 1,
            queue_size: 64,
            max_text_chars: 20_000,
            max_steps: t2s::MAX_STEPS,
            fragment_interval: 0.3,
            stream_chunk_tokens: 0,
            stream_overlap_tokens: 8,
            stream_lookahead_tokens: 4,
        }
    }
}

impl GptSovitsConfig {
    /// Defaults with the given model folder.
    pub fn new(models_dir: impl Into<PathBuf>) -> Self {
        Self {
            models_dir: models_dir.into(),
            ..Self::default()
        }
    }
}

struct Shared {
    config: GptSovitsConfig,
    files: ModelFiles,
    vocab: Vocab,
}

/// What one inference thread owns.
struct ThreadState {
    shared: Arc<Shared>,
    graphs: Graphs,
}

/// The GPT-SoVITS v2 engine. Cheap to share behind an `Arc`.
pub struct GptSovitsEngine {
    shared: Arc<Shared>,
    lanes: Lanes<ThreadState>,
}

impl std::fmt::Debug for GptSovitsEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GptSovitsEngine")
            .field("models_dir", &self.shared.config.models_dir)
            .field("state", &self.lanes.state())
            .finish()
    }
}

/// A checked request, ready for an inference thread.
struct Plan {
    voice: Voice,
    lang: crate::g2p::Lang,
    pieces: Vec<String>,
    params: T2sParams,
    seed: u64,
    /// Upstream's `speed_factor`.
    speed: f32,
    /// Chunk size for streaming (0: whole pieces).
    chunk_tokens: usize,
}

/// Punctuation that may end a prompt text (upstream's `splits`).
const ENDINGS: [char; 13] = [
    '，', '。', '？', '！', ',', '.', '?', '!', '~', ':', '：', '—', '…',
];

/// The transcript as upstream feeds it: trimmed, with a final "。" (or "."
/// in English) when it ends without punctuation.
pub fn prompt_text(transcript: &str, lang: crate::g2p::Lang) -> String {
    let t = transcript.trim();
    let mut out = t.to_string();
    if !t.ends_with(ENDINGS) {
        out.push(if matches!(lang, crate::g2p::Lang::En) {
            '.'
        } else {
            '。'
        });
    }
    out
}

/// Checks a reference's transcript and language: `(transcript, language)`.
pub fn check_reference_text(reference: &ReferenceAudio) -> Result<(String, crate::g2p::Lang)> {
    let transcript = reference
        .transcript
        .as_deref()
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| {
            Error::invalid(
                "transcript",
                "GPT-SoVITS needs the transcript of the reference clip (what is said in it)",
            )
        })?;
    let has_han = transcript.chars().any(text::is_han);
    let lang = match reference.language.as_ref().map(|l| l.as_str()) {
        Some(code) => text::parse_language(code).ok_or_else(|| Error::UnsupportedLanguage {
            language: code.to_string(),
            engine: "gpt-sovits".into(),
            supported: text::LANGUAGES.join(", "),
        })?,
        None if has_han => crate::g2p::Lang::Zh,
        None => crate::g2p::Lang::En,
    };
    match lang {
        crate::g2p::Lang::En if has_han => Err(Error::invalid(
            "transcript",
            "the transcript contains Chinese characters but its language is en; declare zh (mixed text is read as zh)",
        )),
        crate::g2p::Lang::Zh if !has_han => Err(Error::invalid(
            "transcript",
            "the transcript has no Chinese characters but its language is zh; declare en",
        )),
        _ => Ok((transcript.to_string(), lang)),
    }
}

/// Prompt codes of a 16 kHz reference: SSL over the clip with [`SSL_PAD`]
/// zeros appended, then the quantizer.
pub fn prompt_codes(graphs: &mut Graphs, audio16k: &[f32]) -> Result<Vec<i64>> {
    let mut padded = Vec::with_capacity(audio16k.len() + SSL_PAD);
    padded.extend_from_slice(audio16k);
    padded.resize(audio16k.len() + SSL_PAD, 0.0);
    let (ssl, frames) = graphs.ssl(&padded)?;
    let codes = graphs.vq_encode(&ssl, frames)?;
    if codes.is_empty() {
        return Err(Error::Inference("the reference gave no prompt codes".into()));
    }
    Ok(codes)
}

/// The reference spectrogram `([1025·F] bins × frames, F)`.
pub fn reference_spectrogram(ref32k: &[f32]) -> (Vec<f32>, usize) {
    let spec = crate::spectral::presets::gpt_sovits_spectrogram(ref32k);
    let frames = spec.ncols();
    (spec.iter().copied().collect(), frames)
}

fn splitmix64(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Standard normal prior noise `[channels × frames]` (row-major) for frames
/// `start..start+frames`: the value of (channel, frame) depends only on the
/// seed, the channel and the frame, so any window of a piece matches the
/// whole piece.
pub fn prior_noise(seed: u64, channels: usize, start: usize, frames: usize) -> Vec<f32> {
    let mut out = Vec::with_capacity(channels * frames);
    let base = splitmix64(seed ^ 0x6e6f_6973_6500_0000);
    for c in 0..channels {
        for f in start..start + frames {
            let h = splitmix64(base ^ ((c as u64) << 40) ^ f as u64);
            // Box–Muller from two 26-bit uniforms in (0, 1].
            let u1 = (((h >> 38) + 1) as f64) / (1u64 << 26) as f64;
            let u2 = ((h >> 12) & ((1 << 26) - 1)) as f64 / (1u64 << 26) as f64;
            out.push(((-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()) as f32);
        }
    }
    out
}

/// Linear crossfade of `tail` (the end of the previous chunk) into the start
/// of `next`, in place.
fn crossfade(tail: &[f32], next: &mut [f32]) {
    let n = tail.len().min(next.len());
    for i in 0..n {
        let w = (i as f32 + 0.5) / n as f32;
        next[i] = tail[i] * (1.0 - w) + next[i] * w;
    }
}

impl ThreadState {
    fn load(shared: Arc<Shared>) -> Result<Self> {
        let graphs = Graphs::load(&shared.files, &shared.config.session)?;
        Ok(Self { shared, graphs })
    }

    fn extract(&mut self, reference: ReferenceAudio) -> Result<Voice> {
        let (transcript, lang) = check_reference_text(&reference)?;
        let audio = reference.audio;
        if audio.is_empty() || audio.sample_rate == 0 {
            return Err(Error::AudioRejected("the reference audio is empty".into()));
        }
        let a16 = crate::audio::resample::resample(&audio, SSL_RATE)?;
        let seconds = a16.samples.len() as f32 / SSL_RATE as f32;
        let (min, max) = (
            (MIN_REFERENCE_SECONDS * SSL_RATE as f32) as usize,
            (MAX_REFERENCE_SECONDS * SSL_RATE as f32) as usize,
        );
        if a16.samples.len() < min || a16.samples.len() > max {
            return Err(Error::AudioRejected(format!(
                "the reference is {seconds:.2} s long; GPT-SoVITS needs {MIN_REFERENCE_SECONDS:.0}–{MAX_REFERENCE_SECONDS:.0} s"
            )));
        }
        if a16.samples.iter().any(|v| !v.is_finite()) {
            return Err(Error::AudioRejected(
                "the reference has NaN or infinite samples".into(),
            ));
        }
        let prompt_codes = prompt_codes(&mut self.graphs, &a16.samples)?;
        let mut ref32k = crate::audio::resample::resample(&audio, SAMPLE_RATE)?.samples;
        let peak = ref32k.iter().fold(0.0f32, |m, v| m.max(v.abs()));
        if peak > 1.0 {
            let d = peak.min(2.0);
            ref32k.iter_mut().for_each(|v| *v /= d);
        }
        let text = prompt_text(&transcript, lang);
        let shared = self.shared.clone();
        let ph = text::phones(&mut self.graphs, &shared.vocab, &text, lang)?;
        if ph.ids.is_empty() {
            return Err(Error::invalid(
                "transcript",
                format!("{transcript:?} gives no phones (nothing that can be read)"),
            ));
        }
        Ok(Voice {
            transcript: text,
            language: text::language_code(lang).into(),
            prompt_codes,
            phones: ph.ids,
            bert: ph.bert,
            bert_dim: self.graphs.meta.bert_dim,
            ref32k,
        })
    }

    /// Runs a plan; `emit` gets each piece of audio (`true` on the last) and
    /// returns false to stop.
    fn run_plan(&mut self, plan: &Plan, emit: &mut dyn FnMut(Audio, bool) -> bool) -> Result<()> {
        let shared = self.shared.clone();
        let voice = &plan.voice;
        if voice.bert_dim != self.graphs.meta.bert_dim {
            return Err(Error::ProfileMismatch {
                expected: format!("BERT width {}", self.graphs.meta.bert_dim),
                found: format!("BERT width {}", voice.bert_dim),
            });
        }
        let (spec, spec_frames) = reference_spectrogram(&voice.ref32k);
        if spec_frames == 0 {
            return Err(Error::ProfileMismatch {
                expected: "a reference of at least one spectrogram frame".into(),
                found: "a shorter one".into(),
            });
        }
        let gap = (shared.config.fragment_interval.max(0.0) * SAMPLE_RATE as f32) as usize;
        let mut spoken = false;
        let mut next_piece = 0usize;
        // The next piece with phones (found lazily so the first starts at once).
        let find_next = |graphs: &mut Graphs, from: &mut usize| -> Result<Option<(usize, text::Phones)>> {
            while *from < plan.pieces.len() {
                let i = *from;
                *from += 1;
                let ph = text::phones(graphs, &shared.vocab, &plan.pieces[i], plan.lang)?;
                if !ph.ids.is_empty() {
                    return Ok(Some((i, ph)));
                }
            }
            Ok(None)
        };
        let mut current = find_next(&mut self.graphs, &mut next_piece)?;
        while let Some((index, ph)) = current {
            let seed = plan.seed.wrapping_add(index as u64);
            let mut rest: Vec<f32> = Vec::new();
            let mut stop = false;
            self.speak_piece(
                plan,
                voice,
                &ph,
                &spec,
                spec_frames,
                seed,
                &mut |samples, piece_done| {
                    if piece_done {
                        rest = samples;
                        true
                    } else {
                        // A chunk inside the piece: it leaves now.
                        let ok = emit(Audio::new(samples, SAMPLE_RATE), false);
                        stop |= !ok;
                        ok
                    }
                },
            )?;
            if stop {
                return Ok(());
            }
            spoken = true;
            let next = find_next(&mut self.graphs, &mut next_piece)?;
            rest.extend(std::iter::repeat_n(0.0, gap));
            if !emit(Audio::new(rest, SAMPLE_RATE), next.is_none()) {
                return Ok(());
            }
            current = next;
        }
        if !spoken {
            return Err(Error::EmptyText);
        }
        Ok(())
    }

    /// Generates and decodes one piece. `emit(samples, false)` gets the
    /// chunks that can leave early; `emit(samples, true)` the rest once the
    /// piece is done (possibly empty).
    #[allow(clippy::too_many_arguments)]
    fn speak_piece(
        &mut self,
        plan: &Plan,
        voice: &Voice,
        ph: &text::Phones,
        spec: &[f32],
        spec_frames: usize,
        seed: u64,
        emit: &mut dyn FnMut(Vec<f32>, bool) -> bool,
    ) -> Result<()> {
        let g = &mut self.graphs;
        let x = g.encode(&voice.phones, &voice.bert, &ph.ids, &ph.bert)?;
        let mut generation = Generation::start(g, &x, &voice.prompt_codes, &plan.params, seed)?;
        let spt = g.meta.samples_per_token;
        let overlap = self.shared.config.stream_overlap_tokens.max(1);
        let lookahead = self
            .shared
            .config
            .stream_lookahead_tokens
            .min(plan.chunk_tokens.saturating_sub(1));
        let mut dec = ChunkDecoder {
            seed,
            spt,
            overlap,
            lookahead,
            speed: plan.speed,
            start: 0,
            held: Vec::new(),
        };
        while generation.next(g)?.is_some() {
            if plan.chunk_tokens > 0 && generation.tokens.len() - dec.start >= plan.chunk_tokens {
                let samples = dec.decode(g, &ph.ids, &generation.tokens, spec, spec_frames, false)?;
                if !emit(samples, false) {
                    return Ok(());
                }
            }
        }
        if generation.tokens.is_empty() {
            tracing::warn!("gpt-sovits: a piece ended before its first token; it is left silent");
            emit(Vec::new(), true);
            return Ok(());
        }
        let samples = dec.decode(g, &ph.ids, &generation.tokens, spec, spec_frames, true)?;
        emit(samples, true);
        Ok(())
    }
}

/// Decodes the tokens of one piece in chunks with overlap and crossfade.
struct ChunkDecoder {
    seed: u64,
    spt: usize,
    overlap: usize,
    lookahead: usize,
    /// Speed of a whole-piece decode (chunks run at 1 only).
    speed: f32,
    /// First token not yet emitted.
    start: usize,
    /// Samples held back for the crossfade into the next chunk.
    held: Vec<f32>,
}

impl ChunkDecoder {
    fn decode(
        &mut self,
        g: &mut Graphs,
        phones: &[i64],
        tokens: &[u32],
        spec: &[f32],
        spec_frames: usize,
        last: bool,
    ) -> Result<Vec<f32>> {
        let (s, e) = (self.start, tokens.len());
        if s == 0 && last {
            // The whole piece at once: the only path that applies the speed.
            let codes: Vec<i64> = tokens.iter().map(|&t| t as i64).collect();
            let frames = g.meta.latent_frames(codes.len(), self.speed);
            let noise = prior_noise(self.seed, g.meta.noise_channels, 0, frames);
            return g.vits(phones, &codes, spec, spec_frames, &noise);
        }
        let c = s.saturating_sub(self.overlap);
        let codes: Vec<i64> = tokens[c..e].iter().map(|&t| t as i64).collect();
        let fpt = g.meta.ssl_frames_per_token;
        let noise = prior_noise(self.seed, g.meta.noise_channels, c * fpt, (e - c) * fpt);
        let audio = g.vits(phones, &codes, spec, spec_frames, &noise)?;
        if audio.len() != codes.len() * self.spt {
            return Err(Error::Inference(format!(
                "vits returned {} samples for {} tokens, expected {}",
                audio.len(),
                codes.len(),
                codes.len() * self.spt
            )));
        }
        let begin = (s - c) * self.spt - self.held.len();
        let end_token = if last {
            e
        } else {
            e.saturating_sub(self.lookahead).max(s)
        };
        let mut seg = audio[begin..(end_token - c) * self.spt].to_vec();
        crossfade(&self.held, &mut seg);
        self.start = end_token;
        if last {
            self.held.clear();
            return Ok(seg);
        }
        let keep = self.spt.min(seg.len());
        self.held = seg.split_off(seg.len() - keep);
        Ok(seg)
    }
}

impl GptSovitsEngine {
    /// Checks the model folder; loads nothing yet.
    pub fn new(config: GptSovitsConfig) -> Result<Self> {
        let files = ModelFiles::scan(&config.models_dir)?;
        let vocab = Vocab::load(&files.vocab)?;
        Ok(Self {
            shared: Arc::new(Shared { config, files, vocab }),
            lanes: Lanes::new("gpt-sovits"),
        })
    }

    /// The folder's metadata.
    pub fn metadata(&self) -> &model::Metadata {
        &self.shared.files.meta
    }

    fn pool(&self) -> Result<Arc<InferencePool<ThreadState>>> {
        self.lanes.get()
    }

    fn plan(&self, request: &SynthesisRequest, profile: Option<&VoiceProfile>, stream: bool) -> Result<Plan> {
        let cfg = &self.shared.config;
        self.info().check_request(request)?;
        let lang = match request.language.as_ref().map(|l| l.as_str()) {
            None => crate::g2p::Lang::Zh,
            Some(code) => text::parse_language(code).ok_or_else(|| Error::UnsupportedLanguage {
                language: code.to_string(),
                engine: "gpt-sovits".into(),
                supported: text::LANGUAGES.join(", "),
            })?,
        };
        let profile = profile.ok_or_else(|| {
            Error::invalid(
                "voice",
                "GPT-SoVITS has no built-in voice: extract one from a 3–10 s reference clip with its transcript",
            )
        })?;
        let voice = Voice::decode(profile.expect(EngineKind::GptSovits, PROFILE_VERSION)?)?;
        let pieces: Vec<String> = crate::g2p::cut(&request.text, crate::g2p::Cut::Cut5)
            .into_iter()
            .filter(|p| !p.trim().is_empty())
            .collect();
        if pieces.is_empty() {
            return Err(Error::EmptyText);
        }
        let params = T2sParams::from_request(&request.sampling, cfg.max_steps)?;
        Ok(Plan {
            voice,
            lang,
            pieces,
            params,
            seed: request.seed.unwrap_or_else(rand::random),
            speed: request.speed,
            // Chunks assume one token = `samples_per_token` samples: speed 1.
            chunk_tokens: if stream && request.speed == 1.0 {
                cfg.stream_chunk_tokens
            } else {
                0
            },
        })
    }
}

#[async_trait]
impl Engine for GptSovitsEngine {
    fn info(&self) -> EngineInfo {
        EngineInfo {
            kind: EngineKind::GptSovits,
            name: "GPT-SoVITS v2 (T2S + VITS, logits split)".into(),
            languages: text::LANGUAGES.iter().map(|s| s.to_string()).collect(),
            default_language: "zh".into(),
            sample_rate: SAMPLE_RATE,
            streaming: true,
            max_text_chars: self.shared.config.max_text_chars,
            max_sentence_chars: 510,
            needs_transcript: true,
            cloning: true,
            builtin_voices: Vec::new(),
        }
    }

    fn state(&self) -> ModelState {
        self.lanes.state()
    }

    async fn load(&self) -> Result<()> {
        let shared = self.shared.clone();
        let threads = shared.config.max_concurrency.max(1);
        let queue = shared.config.queue_size;
        let start = move || {
            let pool = InferencePool::start("gpt-sovits", threads, queue, move |_| {
                ThreadState::load(shared.clone())
            })?;
            Ok((pool, ()))
        };
        self.lanes.load(start, |()| {}).await
    }

    async fn unload(&self) -> Result<()> {
        self.lanes.unload().await;
        Ok(())
    }

    async fn extract_voice(&self, reference: &ReferenceAudio) -> Result<VoiceProfile> {
        // Cheap checks before queueing.
        check_reference_text(reference)?;
        let pool = self.pool()?;
        let reference = reference.clone();
        let voice = pool
            .run(move |t: &mut ThreadState| {
                // Fresh run options: a cancelled request before must not stop this one.
                t.graphs.disarm()?;
                t.extract(reference)
            })
            .await?;
        Ok(VoiceProfile {
            engine: EngineKind::GptSovits,
            format_version: PROFILE_VERSION,
            data: voice.encode(),
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
        let plan = self.plan(request, profile, false)?;
        let pool = self.pool()?;
        let control = control.clone();
        pool.run(move |t: &mut ThreadState| {
            // A job whose caller left while it was queued does nothing.
            if control.is_cancelled() {
                return Err(Error::Cancelled);
            }
            // Cancelling the request terminates the graph run under way.
            let _armed = t.graphs.arm(&control)?;
            let mut out = Audio::new(Vec::new(), SAMPLE_RATE);
            let ran = t.run_plan(&plan, &mut |a, _| {
                let go_on = control.advance(&a);
                out.append(&a);
                go_on
            });
            // A terminated run fails; that failure is the cancellation.
            if control.is_cancelled() {
                return Err(Error::Cancelled);
            }
            ran?;
            if out.is_empty() {
                return Err(Error::EmptyText);
            }
            Ok(out)
        })
        .await
    }

    async fn synthesize_stream(
        &self,
        request: &SynthesisRequest,
        profile: Option<&VoiceProfile>,
    ) -> Result<AudioStream> {
        let plan = self.plan(request, profile, true)?;
        let pool = self.pool()?;
        let (tx, rx) = AudioStream::channel(DEFAULT_STREAM_BOUND);
        // A reader that goes away cancels the stream's control, which
        // terminates the graph run under way (not only the next piece).
        let control = SynthesisControl::new();
        let watch = crate::runtime::cancel_when_reader_leaves(&tx, &control);
        let done = pool.submit(move |t: &mut ThreadState| {
            // Held until the job ends (or is dropped unrun).
            let _watch = watch;
            match t.graphs.arm(&control) {
                Ok(_armed) => stream_plan(t, &plan, &tx),
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

fn stream_plan(t: &mut ThreadState, plan: &Plan, tx: &AudioStreamSender) {
    if tx.is_closed() {
        return;
    }
    let mut index = 0;
    let result = t.run_plan(plan, &mut |audio, is_last| {
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
    use crate::g2p::Lang;

    #[test]
    fn prompt_text_gets_final_punctuation() {
        assert_eq!(prompt_text(" 你好 ", Lang::Zh), "你好。");
        assert_eq!(prompt_text("你好！", Lang::Zh), "你好！");
        assert_eq!(prompt_text("hello", Lang::En), "hello.");
        assert_eq!(prompt_text("hello?", Lang::En), "hello?");
    }

    fn reference(transcript: Option<&str>, language: Option<&str>) -> ReferenceAudio {
        ReferenceAudio {
            audio: Audio::new(vec![0.0; 16_000 * 4], 16_000),
            transcript: transcript.map(Into::into),
            language: language.map(|l| l.parse().unwrap()),
        }
    }

    #[test]
    fn reference_text_checks() {
        let e = check_reference_text(&reference(None, Some("zh"))).unwrap_err();
        assert_eq!(e.code(), "invalid_input");
        assert!(e.to_string().contains("transcript"), "{e}");
        assert!(check_reference_text(&reference(Some("  "), None)).is_err());
        let e = check_reference_text(&reference(Some("你好"), Some("ja"))).unwrap_err();
        assert_eq!(e.code(), "unsupported_language");
        assert!(check_reference_text(&reference(Some("你好"), Some("en"))).is_err());
        assert!(check_reference_text(&reference(Some("hello there"), Some("zh"))).is_err());
        assert!(matches!(
            check_reference_text(&reference(Some("你好 world"), None))
                .unwrap()
                .1,
            Lang::Zh
        ));
        assert!(matches!(
            check_reference_text(&reference(Some("hello"), None)).unwrap().1,
            Lang::En
        ));
    }

    #[test]
    fn prior_noise_windows_match_the_whole_and_look_normal() {
        let whole = prior_noise(9, 3, 0, 4000);
        let part = prior_noise(9, 3, 1000, 50);
        for c in 0..3 {
            assert_eq!(
                &whole[c * 4000 + 1000..c * 4000 + 1050],
                &part[c * 50..c * 50 + 50]
            );
        }
        let n = whole.len() as f64;
        let mean = whole.iter().map(|&v| v as f64).sum::<f64>() / n;
        let var = whole.iter().map(|&v| (v as f64 - mean).powi(2)).sum::<f64>() / n;
        assert!(mean.abs() < 0.05 && (var - 1.0).abs() < 0.05, "{mean} {var}");
        assert_ne!(prior_noise(10, 3, 0, 10), prior_noise(9, 3, 0, 10));
    }

    #[test]
    fn crossfade_goes_from_tail_to_next() {
        let mut next = vec![1.0; 4];
        crossfade(&[0.0; 4], &mut next);
        assert!(next.windows(2).all(|w| w[0] < w[1]));
        assert!(next[0] > 0.0 && next[3] < 1.0);
    }
}
