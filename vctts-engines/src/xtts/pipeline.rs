//! The XTTS-v2 pipeline on one thread: reference audio → voice latents,
//! text → audio codes (GPT loop with KV cache and Rust sampling) → latents →
//! HiFi-GAN, whole or streamed.
//!
//! Upstream facts it follows (Coqui `xtts.py`, `gpt.py`, `gpt_inference.py`):
//! - references: resampled to 22.05 kHz (torchaudio sinc), clipped to ±1,
//!   cut to `max_ref_length`; the speaker embedding is the mean over clips of
//!   the L2-normalised embedding of each clip at 16 kHz; the conditioning
//!   latents are the mean over `chunk_seconds` chunks (shorter than 0.33 s
//!   skipped) of the concatenated clips' first `cond_seconds`;
//! - prefix: latents, then `text_emb + text_pos[0..]` over `[START] ids
//!   [STOP]`, then `mel_emb[start] + mel_pos[0]`; the k-th generated code is
//!   embedded with `mel_pos[k]` (k from 1: the mel positions restart at the
//!   start token);
//! - sampling: repetition penalty over the fake prefix of 1s, the start token
//!   and every generated code, then temperature, top-k, top-p (HF order);
//! - latents: Coqui runs a second GPT pass over `[start] codes [stop]*4` and
//!   keeps all but the last 5 positions: the `final_norm` hidden states at
//!   `[start, c0, …, c_{n-2}]` for n codes (the stop code counted). Under the
//!   causal mask those are exactly the hidden states the generation loop
//!   already computed at the same positions, so they are collected there
//!   instead of paying for a second pass (the parity test checks them
//!   against Coqui's second pass);
//! - speed: latents are interpolated linearly by `1/speed` (`F.interpolate`,
//!   half-pixel); HiFi-GAN runs on the result.
//!
//! Streaming vocodes a bounded window (the new latents plus
//! [`STREAM_CONTEXT`] before them) and crossfades [`STREAM_OVERLAP`] samples
//! with the previous chunk's tail, so each chunk costs the same however long
//! the text is.

use super::model::{Assets, KvCache, Sessions};
use super::tokenizer;
use crate::sampling::{FilterOrder, Sampler, SamplingConfig};
use crate::spectral::presets::{divide_rows, xtts_conditioning_mel, xtts_speaker_mel};
use ndarray::Array2;
use std::sync::Arc;
use vctts_core::{Audio, Error, Result};

/// Shortest usable reference (and conditioning chunk), seconds (Coqui's `MIN_AUDIO_SECONDS`).
pub const MIN_REFERENCE_SECONDS: f32 = 0.33;
/// Latents of left context vocoded with each streamed chunk.
pub const STREAM_CONTEXT: usize = 12;
/// Crossfade length between streamed chunks, samples (Coqui's `overlap_wav_len`).
pub const STREAM_OVERLAP: usize = 1024;
/// A reference whose peak stays below this is silence.
const SILENCE_PEAK: f32 = 1e-3;

/// Reference handling (the shipped `config.json` values by default).
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ConditioningConfig {
    /// Seconds of each clip used (`max_ref_len`).
    pub max_ref_seconds: f32,
    /// Seconds of the joined clips used for the GPT latents (`gpt_cond_len`).
    pub cond_seconds: f32,
    /// Chunk length for the GPT latents (`gpt_cond_chunk_len`).
    pub chunk_seconds: f32,
}

impl Default for ConditioningConfig {
    fn default() -> Self {
        Self {
            max_ref_seconds: 30.0,
            cond_seconds: 30.0,
            chunk_seconds: 4.0,
        }
    }
}

/// A voice: conditioning latents `[L * D]` and speaker embedding `[E]`.
#[derive(Debug, Clone, PartialEq)]
pub struct VoiceLatents {
    /// Rows of `cond`.
    pub cond_len: usize,
    /// GPT width.
    pub dim: usize,
    /// Conditioning latents, row-major `[cond_len, dim]`.
    pub cond: Vec<f32>,
    /// Speaker embedding.
    pub speaker: Vec<f32>,
}

/// Generation settings of one request.
#[derive(Debug, Clone)]
pub struct GenOptions {
    /// Temperature, top-k, top-p, repetition penalty.
    pub sampling: SamplingConfig,
    /// Seed of the sampler.
    pub seed: u64,
    /// Speaking rate.
    pub speed: f32,
    /// Cap on generated codes per sentence (`None`: the model's maximum).
    pub max_tokens: Option<usize>,
}

impl GenOptions {
    /// The shipped `config.json` defaults: T 0.75, repetition penalty 5.0,
    /// top-k 50, top-p 0.85.
    pub fn shipped(seed: u64) -> Self {
        Self {
            sampling: SamplingConfig {
                temperature: 0.75,
                top_k: Some(50),
                top_p: Some(0.85),
                repetition_penalty: 5.0,
                ..SamplingConfig::default()
            },
            seed,
            speed: 1.0,
            max_tokens: None,
        }
    }
}

/// Codes and latents of one sentence.
#[derive(Debug, Clone, PartialEq)]
pub struct Generated {
    /// Generated codes, the stop token included when it came.
    pub codes: Vec<u32>,
    /// Latents `[n * D]`, one per code (see the module docs).
    pub latents: Vec<f32>,
}

/// One inference thread's XTTS: the shared assets and its own sessions.
pub struct Xtts {
    assets: Arc<Assets>,
    sessions: Sessions,
}

impl std::fmt::Debug for Xtts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Xtts").field("dir", &self.assets.dir).finish()
    }
}

fn mean_rows(parts: &[Vec<f32>]) -> Vec<f32> {
    let mut out = vec![0f32; parts.first().map_or(0, Vec::len)];
    for p in parts {
        for (o, v) in out.iter_mut().zip(p) {
            *o += v;
        }
    }
    let n = parts.len().max(1) as f32;
    out.iter_mut().for_each(|v| *v /= n);
    out
}

/// `F.interpolate(x, scale_factor=1/speed, mode="linear")` over time for
/// latents `[T * D]` (speed clamped to ≥ 0.05 as Coqui does).
pub fn scale_latents(latents: &[f32], dim: usize, speed: f32) -> Vec<f32> {
    let length_scale = 1.0 / f64::from(speed.max(0.05));
    if length_scale == 1.0 || dim == 0 {
        return latents.to_vec();
    }
    let t = latents.len() / dim;
    let out_t = (t as f64 * length_scale).floor() as usize;
    let step = (1.0 / length_scale) as f32;
    let mut out = Vec::with_capacity(out_t * dim);
    for i in 0..out_t {
        let src = (step * (i as f32 + 0.5) - 0.5).max(0.0);
        let i0 = (src.floor() as usize).min(t.saturating_sub(1));
        let i1 = if i0 + 1 < t { i0 + 1 } else { i0 };
        let l1 = src - i0 as f32;
        let l0 = 1.0 - l1;
        let (a, b) = (
            &latents[i0 * dim..(i0 + 1) * dim],
            &latents[i1 * dim..(i1 + 1) * dim],
        );
        out.extend(a.iter().zip(b).map(|(x, y)| l0 * x + l1 * y));
    }
    out
}

impl Xtts {
    /// Loads the sessions for `assets`.
    pub fn new(assets: Arc<Assets>, session: &crate::runtime::SessionConfig) -> Result<Self> {
        let sessions = Sessions::load(&assets, session)?;
        Ok(Self { assets, sessions })
    }

    /// Gives the job that starts its own run options, terminated when
    /// `control` is cancelled while the guard lives (see [`Sessions::arm`]).
    /// Every job of an engine arms (or [`disarm`](Self::disarm)s) first.
    pub fn arm(&mut self, control: &vctts_core::SynthesisControl) -> Result<vctts_core::CancelHookGuard> {
        self.sessions.arm(control)
    }

    /// Gives the job that starts fresh run options that nothing terminates.
    pub fn disarm(&mut self) -> Result<()> {
        self.sessions.disarm()
    }

    /// The shared assets.
    pub fn assets(&self) -> &Arc<Assets> {
        &self.assets
    }

    /// Output sample rate.
    pub fn sample_rate(&self) -> u32 {
        self.assets.output_rate
    }

    /// Voice latents from one or more reference clips.
    ///
    /// # Errors
    /// [`Error::AudioRejected`] for no clip, a clip shorter than 0.33 s or
    /// one that is silent.
    pub fn voice(&mut self, refs: &[Audio], cfg: &ConditioningConfig) -> Result<VoiceLatents> {
        if refs.is_empty() {
            return Err(Error::AudioRejected("no reference audio".into()));
        }
        let rate = self.assets.cond_rate;
        let mut clips = Vec::with_capacity(refs.len());
        for (i, r) in refs.iter().enumerate() {
            if r.sample_rate == 0 {
                return Err(Error::AudioRejected(format!(
                    "reference {} has no sample rate",
                    i + 1
                )));
            }
            let mut x = super::resample::resample(&r.samples, r.sample_rate, rate);
            for v in &mut x {
                *v = if v.is_nan() { 0.0 } else { v.clamp(-1.0, 1.0) };
            }
            x.truncate((cfg.max_ref_seconds * rate as f32) as usize);
            let secs = x.len() as f32 / rate as f32;
            if secs < MIN_REFERENCE_SECONDS {
                return Err(Error::AudioRejected(format!(
                    "reference {} is {secs:.2} s long; XTTS needs at least {MIN_REFERENCE_SECONDS} s of speech",
                    i + 1
                )));
            }
            let peak = x.iter().fold(0f32, |m, v| m.max(v.abs()));
            if peak < SILENCE_PEAK {
                return Err(Error::AudioRejected(format!("reference {} is silent", i + 1)));
            }
            clips.push(x);
        }
        let mut speakers = Vec::with_capacity(clips.len());
        for c in &clips {
            let x16 = super::resample::resample(c, rate, self.assets.speaker_rate);
            let mel = xtts_speaker_mel(&x16);
            speakers.push(self.sessions.speaker_embedding(&mel)?);
        }
        let speaker = mean_rows(&speakers);
        let joined: Vec<f32> = clips.concat();
        let used = &joined[..joined.len().min((cfg.cond_seconds * rate as f32) as usize)];
        let chunk = ((cfg.chunk_seconds * rate as f32) as usize).max(1);
        let min_len = (MIN_REFERENCE_SECONDS * rate as f32) as usize;
        let mut conds = Vec::new();
        for c in used.chunks(chunk) {
            if c.len() < min_len {
                continue;
            }
            let mut mel = xtts_conditioning_mel(c);
            divide_rows(&mut mel, &self.assets.mel_stats)?;
            conds.push(self.sessions.conditioning(&mel)?);
        }
        if conds.is_empty() {
            return Err(Error::AudioRejected(format!(
                "reference too short (at least {MIN_REFERENCE_SECONDS} s)"
            )));
        }
        let cond = mean_rows(&conds);
        let dim = self.assets.meta.embed_dim;
        Ok(VoiceLatents {
            cond_len: cond.len() / dim,
            dim,
            cond,
            speaker,
        })
    }

    /// Checks that `voice` fits this model.
    pub fn check_voice(&self, voice: &VoiceLatents) -> Result<()> {
        let m = &self.assets.meta;
        if voice.dim != m.embed_dim || voice.cond.len() != voice.cond_len * voice.dim || voice.cond_len == 0 {
            return Err(Error::invalid(
                "voice",
                format!(
                    "the voice was made for a model {} wide, this one is {} wide: extract it again",
                    voice.dim, m.embed_dim
                ),
            ));
        }
        if self.assets.speaker_dim > 0 && voice.speaker.len() != self.assets.speaker_dim {
            return Err(Error::invalid(
                "voice",
                format!(
                    "speaker embedding has {} values, the model takes {}: extract it again",
                    voice.speaker.len(),
                    self.assets.speaker_dim
                ),
            ));
        }
        Ok(())
    }

    /// Text ids of one sentence; refuses sentences at the token limit.
    pub fn tokenize(&self, sentence: &str, lang: &str) -> Result<Vec<u32>> {
        let lang = tokenizer::check_language(lang)?;
        let ids = self
            .assets
            .tokenizer
            .encode(&sentence.trim().to_lowercase(), lang)?;
        if ids.len() >= self.assets.max_text_tokens {
            return Err(Error::invalid(
                "text",
                format!(
                    "a sentence has {} tokens; XTTS takes fewer than {} per sentence: split it",
                    ids.len(),
                    self.assets.max_text_tokens
                ),
            ));
        }
        Ok(ids)
    }

    fn row(table: &Array2<f32>, i: usize) -> Result<ndarray::ArrayView1<'_, f32>> {
        if i >= table.nrows() {
            return Err(Error::Inference(format!(
                "index {i} outside a table of {} rows",
                table.nrows()
            )));
        }
        Ok(table.row(i))
    }

    fn prefix(&self, voice: &VoiceLatents, ids: &[u32]) -> Result<Vec<f32>> {
        let a = &self.assets;
        let mut out = voice.cond.clone();
        let mut seq = Vec::with_capacity(ids.len() + 2);
        seq.push(a.start_text_token);
        seq.extend_from_slice(ids);
        seq.push(a.stop_text_token);
        for (pos, &tok) in seq.iter().enumerate() {
            let e = Self::row(&a.text_embedding, tok as usize)?;
            let p = Self::row(&a.text_pos_embedding, pos)?;
            out.extend(e.iter().zip(p.iter()).map(|(x, y)| x + y));
        }
        let start = a.meta.start_audio_token as usize;
        let e = Self::row(&a.mel_embedding, start)?;
        let p = Self::row(&a.mel_pos_embedding, 0)?;
        out.extend(e.iter().zip(p.iter()).map(|(x, y)| x + y));
        Ok(out)
    }

    /// Generates one sentence's codes; `on_latent` sees each latent as soon
    /// as it exists and may stop the loop by returning false.
    pub fn generate(
        &mut self,
        voice: &VoiceLatents,
        ids: &[u32],
        opts: &GenOptions,
        on_latent: &mut dyn FnMut(&[f32]) -> bool,
    ) -> Result<Generated> {
        self.check_voice(voice)?;
        let a = self.assets.clone();
        let d = a.meta.embed_dim;
        let stop = a.meta.stop_audio_token;
        let max_tokens = opts.max_tokens.unwrap_or(a.max_gen_tokens).min(a.max_gen_tokens);
        let mut sampler = Sampler::new(
            SamplingConfig {
                stop_token: Some(stop),
                min_steps_before_stop: 0,
                ..opts.sampling.clone()
            },
            opts.seed,
        )
        .with_order(FilterOrder::TemperatureTopKTopP);
        let mut cache: KvCache = self.sessions.empty_cache(&a)?;
        let out = self.sessions.gpt(&a, self.prefix(voice, ids)?, &mut cache)?;
        let mut logits = out.logits;
        let mut latents = Vec::with_capacity((max_tokens + 1) * d);
        let first = &out.hidden[out.hidden.len() - d..];
        latents.extend_from_slice(first);
        let mut go_on = on_latent(first);
        // HF penalises every input id: the fake prefix of 1s and the start token.
        let mut history: Vec<u32> = vec![1, a.meta.start_audio_token];
        let mut codes = Vec::new();
        let mut step = 0;
        while go_on && codes.len() < max_tokens {
            let tok = sampler.try_sample(&mut logits, &history, step)?;
            step += 1;
            codes.push(tok);
            if tok == stop {
                break;
            }
            history.push(tok);
            if codes.len() == max_tokens {
                break;
            }
            let e = Self::row(&a.mel_embedding, tok as usize)?;
            let p = Self::row(&a.mel_pos_embedding, codes.len())?;
            let emb: Vec<f32> = e.iter().zip(p.iter()).map(|(x, y)| x + y).collect();
            let out = self.sessions.gpt(&a, emb, &mut cache)?;
            logits = out.logits;
            latents.extend_from_slice(&out.hidden);
            go_on = on_latent(&out.hidden);
        }
        // A loop stopped early by its reader keeps what it has; otherwise one
        // latent per code.
        latents.truncate(codes.len().max(1) * d);
        Ok(Generated { codes, latents })
    }

    /// HiFi-GAN over latents (after the speed change).
    pub fn vocode(&mut self, latents: &[f32], speaker: &[f32], speed: f32) -> Result<Vec<f32>> {
        let d = self.assets.meta.embed_dim;
        let scaled = scale_latents(latents, d, speed);
        let a = self.assets.clone();
        self.sessions.vocode(&a, &scaled, speaker)
    }

    /// One sentence to audio samples, whole.
    pub fn sentence(
        &mut self,
        voice: &VoiceLatents,
        sentence: &str,
        lang: &str,
        opts: &GenOptions,
    ) -> Result<Vec<f32>> {
        let ids = self.tokenize(sentence, lang)?;
        let g = self.generate(voice, &ids, opts, &mut |_| true)?;
        self.vocode(&g.latents, &voice.speaker, opts.speed)
    }

    /// Sentences to one audio, sentence after sentence.
    pub fn synthesize(
        &mut self,
        voice: &VoiceLatents,
        sentences: &[String],
        lang: &str,
        opts: &GenOptions,
    ) -> Result<Audio> {
        self.synthesize_until(voice, sentences, lang, opts, &mut |_| true)
    }

    /// [`synthesize`](Self::synthesize), asking `go_on` after every sentence
    /// (with that sentence's audio) whether to do the next one.
    pub fn synthesize_until(
        &mut self,
        voice: &VoiceLatents,
        sentences: &[String],
        lang: &str,
        opts: &GenOptions,
        go_on: &mut dyn FnMut(&Audio) -> bool,
    ) -> Result<Audio> {
        let rate = self.assets.output_rate;
        let mut samples = Vec::new();
        for s in sentences {
            let piece = Audio::new(self.sentence(voice, s, lang, opts)?, rate);
            let more = go_on(&piece);
            samples.extend(piece.samples);
            if !more {
                break;
            }
        }
        Ok(Audio::new(samples, rate))
    }

    /// One sentence streamed: `emit` gets audio after every `chunk_tokens`
    /// latents, and the rest with `true` at the end; `emit` returns false to
    /// stop. Returns whether the reader still wants more.
    pub fn stream_sentence(
        &mut self,
        voice: &VoiceLatents,
        sentence: &str,
        lang: &str,
        opts: &GenOptions,
        chunk_tokens: usize,
        emit: &mut dyn FnMut(Vec<f32>, bool) -> bool,
    ) -> Result<bool> {
        let ids = self.tokenize(sentence, lang)?;
        let d = self.assets.meta.embed_dim;
        let mut streamer = Streamer::new(d);
        let mut failure: Option<Error> = None;
        let mut open = true;
        let speaker = voice.speaker.clone();
        self.generate_streaming(
            voice,
            &ids,
            opts,
            chunk_tokens.max(1),
            &mut |x: &mut Self, lat: &[f32], last: bool| {
                if failure.is_some() || !open {
                    return false;
                }
                match streamer.push(x, lat, &speaker, opts.speed, last) {
                    Ok(audio) => {
                        if !audio.is_empty() || last {
                            open = emit(audio, last);
                        }
                        open
                    }
                    Err(e) => {
                        failure = Some(e);
                        false
                    }
                }
            },
        )?;
        if let Some(e) = failure {
            return Err(e);
        }
        Ok(open)
    }

    /// The generation loop of [`Xtts::generate`], handing every
    /// `chunk_tokens` new latents (and the rest at the end) to `chunk`,
    /// which may vocode with the same sessions.
    fn generate_streaming(
        &mut self,
        voice: &VoiceLatents,
        ids: &[u32],
        opts: &GenOptions,
        chunk_tokens: usize,
        chunk: &mut dyn FnMut(&mut Self, &[f32], bool) -> bool,
    ) -> Result<Generated> {
        self.check_voice(voice)?;
        let a = self.assets.clone();
        let d = a.meta.embed_dim;
        let stop = a.meta.stop_audio_token;
        let max_tokens = opts.max_tokens.unwrap_or(a.max_gen_tokens).min(a.max_gen_tokens);
        let mut sampler = Sampler::new(
            SamplingConfig {
                stop_token: Some(stop),
                min_steps_before_stop: 0,
                ..opts.sampling.clone()
            },
            opts.seed,
        )
        .with_order(FilterOrder::TemperatureTopKTopP);
        let mut cache: KvCache = self.sessions.empty_cache(&a)?;
        let out = self.sessions.gpt(&a, self.prefix(voice, ids)?, &mut cache)?;
        let mut logits = out.logits;
        let mut latents: Vec<f32> = out.hidden[out.hidden.len() - d..].to_vec();
        let mut history: Vec<u32> = vec![1, a.meta.start_audio_token];
        let mut codes = Vec::new();
        let mut sent = 0usize; // latents handed to `chunk`
        let mut step = 0;
        loop {
            if codes.len() >= max_tokens {
                break;
            }
            let tok = sampler.try_sample(&mut logits, &history, step)?;
            step += 1;
            codes.push(tok);
            if tok == stop || codes.len() == max_tokens {
                break;
            }
            history.push(tok);
            let e = Self::row(&a.mel_embedding, tok as usize)?;
            let p = Self::row(&a.mel_pos_embedding, codes.len())?;
            let emb: Vec<f32> = e.iter().zip(p.iter()).map(|(x, y)| x + y).collect();
            let out = self.sessions.gpt(&a, emb, &mut cache)?;
            logits = out.logits;
            latents.extend_from_slice(&out.hidden);
            let have = latents.len() / d;
            if have - sent >= chunk_tokens {
                if !chunk(self, &latents[sent * d..have * d], false) {
                    return Ok(Generated { codes, latents });
                }
                sent = have;
            }
        }
        latents.truncate(codes.len().max(1) * d);
        let have = latents.len() / d;
        let rest = if sent < have {
            &latents[sent * d..]
        } else {
            &[][..]
        };
        chunk(self, rest, true);
        Ok(Generated { codes, latents })
    }
}

/// Windowed vocoding with a crossfade for streams.
struct Streamer {
    dim: usize,
    /// The last latents vocoded (left context of the next window).
    context: Vec<f32>,
    /// Samples held back for the crossfade.
    tail: Vec<f32>,
}

impl Streamer {
    fn new(dim: usize) -> Self {
        Self {
            dim,
            context: Vec::new(),
            tail: Vec::new(),
        }
    }

    /// Vocodes `new` latents after the kept context; returns the samples
    /// that are final now.
    fn push(
        &mut self,
        x: &mut Xtts,
        new: &[f32],
        speaker: &[f32],
        speed: f32,
        last: bool,
    ) -> Result<Vec<f32>> {
        let d = self.dim;
        let ctx_n = self.context.len() / d;
        let new_n = new.len() / d;
        let mut out = Vec::new();
        if new_n > 0 {
            let mut window = self.context.clone();
            window.extend_from_slice(new);
            let wav = x.vocode(&window, speaker, speed)?;
            let total = ctx_n + new_n;
            let per = wav.len() as f64 / total as f64;
            let start = ((ctx_n as f64 * per).round() as usize).min(wav.len());
            // The samples before `start` overlap the previous chunk; its tail
            // (computed without right context) fades into these.
            let fade = self.tail.len().min(start);
            let mut fresh = wav[start - fade..].to_vec();
            for (i, (f, t)) in fresh.iter_mut().zip(&self.tail).take(fade).enumerate() {
                let w = (i as f32 + 0.5) / fade as f32;
                *f = t * (1.0 - w) + *f * w;
            }
            if last {
                out = fresh;
                self.tail.clear();
            } else {
                let keep = STREAM_OVERLAP.min(fresh.len());
                self.tail = fresh.split_off(fresh.len() - keep);
                out = fresh;
            }
            let all_n = window.len() / d;
            let keep_from = all_n.saturating_sub(STREAM_CONTEXT);
            self.context = window[keep_from * d..].to_vec();
        } else if last {
            out = std::mem::take(&mut self.tail);
        }
        Ok(out)
    }
}
