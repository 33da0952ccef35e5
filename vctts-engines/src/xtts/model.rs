//! The XTTS-v2 model folder: metadata, embedding tables, `mel_stats`, and the
//! four ONNX graphs, checked against each other at load.
//!
//! Layout (the public export pltobing/XTTSv2-Streaming-ONNX, which
//! `scripts/export/xtts_export.py` also writes): `metadata.json` (sizes,
//! special tokens, `files`), `vocab.json`, `mel_stats.npy`,
//! `embeddings/{text_embedding,text_pos_embedding,mel_embedding,mel_pos_embedding}.npy`,
//! `conditioning_encoder.onnx` (`mel_spectrogram` [B,80,T] → [B,32,D]),
//! `speaker_encoder.onnx` (`mel_spec` [B,64,T] → [B,E,1]), `gpt_model.onnx`
//! (`inputs_embeds`, `attention_mask`, `past_key_i`/`past_value_i` →
//! `logits`, `hidden_states`, `present_key_i`/`present_value_i`) and
//! `hifigan_vocoder.onnx` (`latents` [1,T,D], `speaker_embedding` [1,E,1] →
//! [1,1,N]).
//!
//! Invariants: every size (layers, heads, width, vocabularies, position
//! tables, embedding size) comes from the folder, never from constants; the
//! tables agree with the metadata and with the graphs' declared shapes; a
//! missing file is [`Error::ModelNotInstalled`] naming it, a mis-shaped one
//! [`Error::ModelLoad`] naming the file and the tensor. [`Assets`] is
//! immutable and shared; [`Sessions`] belong to one inference thread, and
//! every run they make uses the current job's run options ([`Sessions::arm`]).

use crate::runtime::{JobRunOptions, SessionConfig};
use ndarray::{Array1, Array2};
use ort::session::{RunOptions, Session};
use ort::value::{DynValue, Tensor};
use std::path::{Path, PathBuf};
use vctts_core::{CancelHookGuard, Error, Result, SynthesisControl};

use super::tokenizer::XttsTokenizer;

/// The graph file names, from `metadata.json` `files`.
#[derive(Debug, Clone, serde::Deserialize)]
pub struct Files {
    /// Conditioning encoder (+ perceiver).
    pub conditioning_encoder: String,
    /// H/ASP speaker encoder.
    pub speaker_encoder: String,
    /// The GPT-2 with KV cache.
    pub gpt_model: String,
    /// HiFi-GAN decoder.
    pub hifigan_vocoder: String,
}

/// `metadata.json`. Keys the public export has are required; the others
/// (written by `scripts/export/xtts_export.py`) have the XTTS-v2 values as
/// defaults, and the tables and graphs are checked against all of them.
#[derive(Debug, Clone, serde::Deserialize)]
pub struct Metadata {
    /// Graph files.
    pub files: Files,
    /// GPT layers.
    pub n_layer: usize,
    /// GPT width.
    pub embed_dim: usize,
    /// Attention heads.
    pub num_heads: usize,
    /// Width of one head.
    pub head_dim: usize,
    /// Audio vocabulary (codes + start + stop).
    pub num_audio_tokens: usize,
    /// The start-of-audio token.
    pub start_audio_token: u32,
    /// The stop token.
    pub stop_audio_token: u32,
    /// Conditioning latents per reference.
    pub perceiver_output_len: usize,
    /// `[START]` id; the tokenizer's own wins when it has the token.
    #[serde(default)]
    pub start_text_token: Option<u32>,
    /// `[STOP]` id; the tokenizer's own wins when it has the token.
    #[serde(default)]
    pub stop_text_token: Option<u32>,
    /// Text tokens per sentence must stay below this (Coqui's assert).
    #[serde(default)]
    pub max_text_tokens: Option<usize>,
    /// Most audio tokens generated per sentence.
    #[serde(default)]
    pub max_gen_mel_tokens: Option<usize>,
    /// Output rate of the vocoder.
    #[serde(default)]
    pub output_sample_rate: Option<u32>,
    /// Rate of the conditioning audio (and the GPT's time base).
    #[serde(default)]
    pub input_sample_rate: Option<u32>,
    /// Rate of the speaker encoder's audio.
    #[serde(default)]
    pub speaker_sample_rate: Option<u32>,
}

/// Everything of the folder that is not a session: shared by all threads.
#[derive(Debug)]
pub struct Assets {
    /// The folder.
    pub dir: PathBuf,
    /// Parsed metadata.
    pub meta: Metadata,
    /// BPE tokenizer.
    pub tokenizer: XttsTokenizer,
    /// `[V_text, D]`.
    pub text_embedding: Array2<f32>,
    /// `[P_text, D]`.
    pub text_pos_embedding: Array2<f32>,
    /// `[A, D]`.
    pub mel_embedding: Array2<f32>,
    /// `[P_mel, D]`.
    pub mel_pos_embedding: Array2<f32>,
    /// Divisors of the conditioning log-mel rows.
    pub mel_stats: Vec<f32>,
    /// `[START]`, `[STOP]` ids.
    pub start_text_token: u32,
    /// See `start_text_token`.
    pub stop_text_token: u32,
    /// Text tokens per sentence must be below this.
    pub max_text_tokens: usize,
    /// Most generated audio tokens per sentence.
    pub max_gen_tokens: usize,
    /// Vocoder output rate.
    pub output_rate: u32,
    /// Conditioning rate.
    pub cond_rate: u32,
    /// Speaker encoder rate.
    pub speaker_rate: u32,
    /// Speaker embedding size (from the vocoder graph or the speaker encoder).
    pub speaker_dim: usize,
}

const MEL_CHANNELS: usize = 80;
const SPEAKER_MELS: usize = 64;

fn shape_err(file: &str, tensor: &str, msg: impl std::fmt::Display) -> Error {
    Error::ModelLoad(format!("{file}: tensor {tensor} {msg}"))
}

fn load_table(dir: &Path, rel: &str) -> Result<Array2<f32>> {
    let path = dir.join(rel);
    if !path.is_file() {
        return Err(Error::ModelNotInstalled(format!("{} is missing", path.display())));
    }
    ndarray_npy::read_npy::<_, Array2<f32>>(&path)
        .map_err(|e| Error::ModelLoad(format!("{rel}: not a 2-D float32 .npy table: {e}")))
}

fn check_table(rel: &str, t: &Array2<f32>, rows: Option<usize>, cols: usize) -> Result<()> {
    let (r, c) = t.dim();
    if c != cols || rows.is_some_and(|want| want != r) || r == 0 {
        let want_rows = rows.map_or("N".to_string(), |r| r.to_string());
        return Err(shape_err(
            rel,
            "(table)",
            format!("has shape [{r}, {c}], expected [{want_rows}, {cols}]"),
        ));
    }
    Ok(())
}

impl Assets {
    /// Reads and checks the folder's data files (not the graphs).
    pub fn load(dir: &Path) -> Result<Self> {
        let meta_path = dir.join("metadata.json");
        if !meta_path.is_file() {
            return Err(Error::ModelNotInstalled(format!(
                "{} is missing: no XTTS-v2 model folder at {} (see models/xtts_v2/README.md)",
                meta_path.display(),
                dir.display()
            )));
        }
        let text =
            std::fs::read_to_string(&meta_path).map_err(|e| Error::io(meta_path.display().to_string(), e))?;
        let meta: Metadata =
            serde_json::from_str(&text).map_err(|e| Error::ModelLoad(format!("metadata.json: {e}")))?;
        if meta.n_layer == 0 || meta.num_heads == 0 || meta.num_heads * meta.head_dim != meta.embed_dim {
            return Err(Error::ModelLoad(format!(
                "metadata.json: n_layer {}, num_heads {} x head_dim {} must be positive and equal embed_dim {}",
                meta.n_layer, meta.num_heads, meta.head_dim, meta.embed_dim
            )));
        }
        for (name, tok) in [
            ("start_audio_token", meta.start_audio_token),
            ("stop_audio_token", meta.stop_audio_token),
        ] {
            if tok as usize >= meta.num_audio_tokens {
                return Err(Error::ModelLoad(format!(
                    "metadata.json: {name} {tok} is outside num_audio_tokens {}",
                    meta.num_audio_tokens
                )));
            }
        }
        let d = meta.embed_dim;
        let text_embedding = load_table(dir, "embeddings/text_embedding.npy")?;
        check_table("embeddings/text_embedding.npy", &text_embedding, None, d)?;
        let text_pos_embedding = load_table(dir, "embeddings/text_pos_embedding.npy")?;
        check_table("embeddings/text_pos_embedding.npy", &text_pos_embedding, None, d)?;
        let mel_embedding = load_table(dir, "embeddings/mel_embedding.npy")?;
        check_table(
            "embeddings/mel_embedding.npy",
            &mel_embedding,
            Some(meta.num_audio_tokens),
            d,
        )?;
        let mel_pos_embedding = load_table(dir, "embeddings/mel_pos_embedding.npy")?;
        check_table("embeddings/mel_pos_embedding.npy", &mel_pos_embedding, None, d)?;

        let stats_path = dir.join("mel_stats.npy");
        if !stats_path.is_file() {
            return Err(Error::ModelNotInstalled(format!(
                "{} is missing",
                stats_path.display()
            )));
        }
        let stats: Array1<f32> = ndarray_npy::read_npy(&stats_path)
            .map_err(|e| Error::ModelLoad(format!("mel_stats.npy: not a 1-D float32 array: {e}")))?;
        if stats.len() != MEL_CHANNELS || stats.iter().any(|s| !s.is_finite() || *s == 0.0) {
            return Err(shape_err(
                "mel_stats.npy",
                "mel_stats",
                format!(
                    "must be {MEL_CHANNELS} finite non-zero values, has {}",
                    stats.len()
                ),
            ));
        }

        let tokenizer = XttsTokenizer::load(&dir.join("vocab.json"))?;
        let start_text_token = tokenizer
            .token_id("[START]")
            .or(meta.start_text_token)
            .ok_or_else(|| {
                Error::ModelLoad(
                    "vocab.json has no [START] token and metadata.json no start_text_token".into(),
                )
            })?;
        let stop_text_token = tokenizer
            .token_id("[STOP]")
            .or(meta.stop_text_token)
            .ok_or_else(|| {
                Error::ModelLoad("vocab.json has no [STOP] token and metadata.json no stop_text_token".into())
            })?;
        let vocab = text_embedding.nrows();
        if tokenizer.max_id() as usize >= vocab {
            return Err(shape_err(
                "embeddings/text_embedding.npy",
                "text_embedding",
                format!(
                    "has {vocab} rows but vocab.json has ids up to {}",
                    tokenizer.max_id()
                ),
            ));
        }
        // Coqui: the text position table has max_text_tokens + 2 rows
        // ([START] and [STOP]); the mel table max_audio + 3 and generation
        // stops 6 short of it (start, stop and the conditioning slot, twice).
        let max_text_tokens = meta
            .max_text_tokens
            .unwrap_or(text_pos_embedding.nrows().saturating_sub(2))
            .min(text_pos_embedding.nrows().saturating_sub(2));
        let max_gen_tokens = meta
            .max_gen_mel_tokens
            .unwrap_or(mel_pos_embedding.nrows().saturating_sub(6))
            .min(mel_pos_embedding.nrows().saturating_sub(2));
        if max_text_tokens == 0 || max_gen_tokens == 0 {
            return Err(Error::ModelLoad(
                "the position tables are too short for any text or audio".into(),
            ));
        }
        Ok(Self {
            dir: dir.to_path_buf(),
            start_text_token,
            stop_text_token,
            max_text_tokens,
            max_gen_tokens,
            output_rate: meta.output_sample_rate.unwrap_or(24_000),
            cond_rate: meta.input_sample_rate.unwrap_or(22_050),
            speaker_rate: meta.speaker_sample_rate.unwrap_or(16_000),
            speaker_dim: 0,
            meta,
            tokenizer,
            text_embedding,
            text_pos_embedding,
            mel_embedding,
            mel_pos_embedding,
            mel_stats: stats.to_vec(),
        })
    }

    /// [`Assets::load`], then the speaker embedding size measured by running
    /// the speaker encoder once on a short constant mel (the graphs declare
    /// it in different ways); [`Sessions::load`] then checks the vocoder
    /// takes that size.
    pub fn load_probed(dir: &Path, config: &SessionConfig) -> Result<Self> {
        let mut assets = Self::load(dir)?;
        let file = assets.meta.files.speaker_encoder.clone();
        let mut speaker = crate::runtime::load_session(&assets.graph_path(&file), config)?;
        expect_io(
            &file,
            speaker.inputs(),
            "mel_spec",
            &[None, Some(SPEAKER_MELS), None],
            "power mel input",
        )?;
        let mel = Array2::from_elem((SPEAKER_MELS, 64), 1e-3f32);
        let e = run_speaker(&mut speaker, &crate::runtime::run_options()?, &mel)?;
        if e.is_empty() {
            return Err(shape_err(&file, "(output)", "is empty"));
        }
        assets.speaker_dim = e.len();
        Ok(assets)
    }

    /// Path of a graph named in `files`.
    pub fn graph_path(&self, file: &str) -> PathBuf {
        self.dir.join(file)
    }
}

/// Declared shape of a session input or output, if it is a tensor.
fn declared(outlets: &[ort::value::Outlet], name: &str) -> Option<Vec<i64>> {
    outlets
        .iter()
        .find(|o| o.name() == name)
        .map(|o| o.dtype().tensor_shape().map(|s| s.to_vec()).unwrap_or_default())
}

/// Checks that `name` exists with `want.len()` dimensions and that every
/// static dimension equals the wanted one (`None` = any).
fn expect_io(
    file: &str,
    outlets: &[ort::value::Outlet],
    name: &str,
    want: &[Option<usize>],
    what: &str,
) -> Result<()> {
    let Some(shape) = declared(outlets, name) else {
        let have: Vec<&str> = outlets.iter().map(|o| o.name()).collect();
        return Err(shape_err(
            file,
            name,
            format!("is missing ({what}; the graph has {})", have.join(", ")),
        ));
    };
    let bad = shape.len() != want.len()
        || shape
            .iter()
            .zip(want)
            .any(|(&got, w)| got >= 0 && w.is_some_and(|w| got as usize != w));
    if bad {
        let fmt = |v: &[Option<usize>]| {
            v.iter()
                .map(|d| d.map_or("?".to_string(), |d| d.to_string()))
                .collect::<Vec<_>>()
                .join(", ")
        };
        return Err(shape_err(
            file,
            name,
            format!("has shape {shape:?}, expected [{}] ({what})", fmt(want)),
        ));
    }
    Ok(())
}

/// The four sessions of one inference thread.
pub struct Sessions {
    cond: Session,
    speaker: Session,
    gpt: Session,
    vocoder: Session,
    /// `past_key_i`/`past_value_i` names, in layer order.
    past_names: Vec<(String, String)>,
    present_names: Vec<(String, String)>,
    /// Options of every run: the job's own, so that cancelling its request
    /// terminates the run under way ([`Sessions::arm`]).
    run: JobRunOptions,
}

impl std::fmt::Debug for Sessions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sessions")
            .field("layers", &self.past_names.len())
            .finish()
    }
}

/// The KV cache: one key and one value tensor per layer, `[1, H, P, Dh]`.
pub struct KvCache {
    values: Vec<(DynValue, DynValue)>,
    len: usize,
}

impl KvCache {
    /// Positions cached.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether nothing is cached.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

/// One GPT pass: the last position's logits and every position's hidden state.
pub struct GptOut {
    /// Logits of the last position, `[A]`.
    pub logits: Vec<f32>,
    /// `final_norm` hidden states of the new positions, `[S * D]`.
    pub hidden: Vec<f32>,
}

fn run_err(what: &'static str) -> impl Fn(ort::Error) -> Error {
    move |e| Error::Inference(format!("{what}: {e}"))
}

fn tensor(shape: &[usize], data: Vec<f32>, what: &'static str) -> Result<DynValue> {
    Tensor::from_array((shape.to_vec(), data))
        .map(|t| t.into_dyn())
        .map_err(|e| Error::Internal(format!("{what}: {e}")))
}

fn run_speaker(session: &mut Session, options: &RunOptions, mel: &Array2<f32>) -> Result<Vec<f32>> {
    let (c, t) = mel.dim();
    let data: Vec<f32> = mel.iter().copied().collect();
    let input = tensor(&[1, c, t], data, "speaker input")?;
    let out = session
        .run_with_options(vec![("mel_spec".to_string(), input)], options)
        .map_err(run_err("speaker encoder"))?;
    let (_, v) = out[0]
        .try_extract_tensor::<f32>()
        .map_err(run_err("speaker encoder"))?;
    Ok(v.to_vec())
}

impl Sessions {
    /// Loads the graphs and checks their inputs and outputs against `assets`
    /// (the speaker embedding size too when `assets` came from
    /// [`Assets::load_probed`]).
    pub fn load(assets: &Assets, config: &SessionConfig) -> Result<Self> {
        let m = &assets.meta;
        let f = &m.files;
        let load = |file: &str| crate::runtime::load_session(&assets.graph_path(file), config);
        let cond = load(&f.conditioning_encoder)?;
        expect_io(
            &f.conditioning_encoder,
            cond.inputs(),
            "mel_spectrogram",
            &[None, Some(MEL_CHANNELS), None],
            "log-mel input",
        )?;
        let out = cond
            .outputs()
            .first()
            .map(|o| o.name().to_string())
            .unwrap_or_default();
        expect_io(
            &f.conditioning_encoder,
            cond.outputs(),
            &out,
            &[None, Some(m.perceiver_output_len), Some(m.embed_dim)],
            "conditioning latents",
        )?;
        let speaker = load(&f.speaker_encoder)?;
        expect_io(
            &f.speaker_encoder,
            speaker.inputs(),
            "mel_spec",
            &[None, Some(SPEAKER_MELS), None],
            "power mel input",
        )?;
        let gpt = load(&f.gpt_model)?;
        let (h, dh, d) = (Some(m.num_heads), Some(m.head_dim), Some(m.embed_dim));
        expect_io(
            &f.gpt_model,
            gpt.inputs(),
            "inputs_embeds",
            &[None, None, d],
            "embeddings",
        )?;
        expect_io(
            &f.gpt_model,
            gpt.inputs(),
            "attention_mask",
            &[None, None],
            "mask",
        )?;
        expect_io(
            &f.gpt_model,
            gpt.outputs(),
            "logits",
            &[None, None, Some(m.num_audio_tokens)],
            "audio logits",
        )?;
        expect_io(
            &f.gpt_model,
            gpt.outputs(),
            "hidden_states",
            &[None, None, d],
            "latents",
        )?;
        let mut past_names = Vec::new();
        let mut present_names = Vec::new();
        for i in 0..m.n_layer {
            let (pk, pv) = (format!("past_key_{i}"), format!("past_value_{i}"));
            let (ok, ov) = (format!("present_key_{i}"), format!("present_value_{i}"));
            for n in [&pk, &pv] {
                expect_io(
                    &f.gpt_model,
                    gpt.inputs(),
                    n,
                    &[None, h, None, dh],
                    "KV cache input",
                )?;
            }
            for n in [&ok, &ov] {
                expect_io(
                    &f.gpt_model,
                    gpt.outputs(),
                    n,
                    &[None, h, None, dh],
                    "KV cache output",
                )?;
            }
            past_names.push((pk, pv));
            present_names.push((ok, ov));
        }
        let extra = format!("past_key_{}", m.n_layer);
        if declared(gpt.inputs(), &extra).is_some() {
            return Err(shape_err(
                &f.gpt_model,
                &extra,
                format!("exists but metadata.json says n_layer {}", m.n_layer),
            ));
        }
        let vocoder = load(&f.hifigan_vocoder)?;
        expect_io(
            &f.hifigan_vocoder,
            vocoder.inputs(),
            "latents",
            &[None, None, d],
            "GPT latents",
        )?;
        let spk_dim = (assets.speaker_dim > 0).then_some(assets.speaker_dim);
        expect_io(
            &f.hifigan_vocoder,
            vocoder.inputs(),
            "speaker_embedding",
            &[None, spk_dim, Some(1)],
            "speaker embedding",
        )?;
        Ok(Self {
            cond,
            speaker,
            gpt,
            vocoder,
            past_names,
            present_names,
            run: JobRunOptions::new()?,
        })
    }

    /// Gives the job that starts its own run options, terminated when
    /// `control` is cancelled while the guard lives: a dropped request stops
    /// inside the model run under way (GPT prefill or step, HiFi-GAN), and
    /// the job's later runs fail at once.
    pub fn arm(&mut self, control: &SynthesisControl) -> Result<CancelHookGuard> {
        self.run.arm(control)
    }

    /// Gives the job that starts fresh options that nothing terminates.
    pub fn disarm(&mut self) -> Result<()> {
        self.run.reset()
    }

    /// Conditioning latents `[L * D]` of one normalised log-mel `[80, T]`.
    pub fn conditioning(&mut self, mel: &Array2<f32>) -> Result<Vec<f32>> {
        let (c, t) = mel.dim();
        let data: Vec<f32> = mel.iter().copied().collect();
        let input = tensor(&[1, c, t], data, "conditioning input")?;
        let out = self
            .cond
            .run_with_options(vec![("mel_spectrogram".to_string(), input)], self.run.get())
            .map_err(run_err("conditioning encoder"))?;
        let (_, v) = out[0]
            .try_extract_tensor::<f32>()
            .map_err(run_err("conditioning encoder"))?;
        Ok(v.to_vec())
    }

    /// Speaker embedding of one power mel `[64, T]`.
    pub fn speaker_embedding(&mut self, mel: &Array2<f32>) -> Result<Vec<f32>> {
        run_speaker(&mut self.speaker, self.run.get(), mel)
    }

    /// An empty cache for `assets`' GPT.
    pub fn empty_cache(&self, assets: &Assets) -> Result<KvCache> {
        let m = &assets.meta;
        let mut values = Vec::with_capacity(m.n_layer);
        for _ in 0..m.n_layer {
            values.push((
                tensor(&[1, m.num_heads, 0, m.head_dim], Vec::new(), "KV cache")?,
                tensor(&[1, m.num_heads, 0, m.head_dim], Vec::new(), "KV cache")?,
            ));
        }
        Ok(KvCache { values, len: 0 })
    }

    /// Runs the GPT over `embeds` (`[S * D]`) after `cache`, replacing the cache.
    pub fn gpt(&mut self, assets: &Assets, embeds: Vec<f32>, cache: &mut KvCache) -> Result<GptOut> {
        let d = assets.meta.embed_dim;
        let a = assets.meta.num_audio_tokens;
        let s = embeds.len() / d;
        let total = cache.len + s;
        let mut inputs: Vec<(String, DynValue)> = Vec::with_capacity(2 + 2 * self.past_names.len());
        inputs.push(("inputs_embeds".into(), tensor(&[1, s, d], embeds, "GPT input")?));
        inputs.push((
            "attention_mask".into(),
            tensor(&[1, total], vec![1.0; total], "GPT mask")?,
        ));
        let old = std::mem::take(&mut cache.values);
        for ((k, v), (kn, vn)) in old.into_iter().zip(&self.past_names) {
            inputs.push((kn.clone(), k));
            inputs.push((vn.clone(), v));
        }
        let mut out = self
            .gpt
            .run_with_options(inputs, self.run.get())
            .map_err(run_err("GPT"))?;
        let logits = {
            let (shape, l) = out["logits"]
                .try_extract_tensor::<f32>()
                .map_err(run_err("GPT logits"))?;
            if l.len() != s * a || shape.len() != 3 {
                return Err(Error::Inference(format!(
                    "GPT logits have shape {:?}",
                    &shape[..]
                )));
            }
            l[(s - 1) * a..].to_vec()
        };
        let hidden = {
            let (_, h) = out["hidden_states"]
                .try_extract_tensor::<f32>()
                .map_err(run_err("GPT hidden"))?;
            if h.len() != s * d {
                return Err(Error::Inference("GPT hidden_states have the wrong size".into()));
            }
            h.to_vec()
        };
        let mut values = Vec::with_capacity(self.present_names.len());
        for (kn, vn) in &self.present_names {
            let k = out
                .remove(kn)
                .ok_or_else(|| Error::Inference(format!("GPT gave no {kn}")))?;
            let v = out
                .remove(vn)
                .ok_or_else(|| Error::Inference(format!("GPT gave no {vn}")))?;
            values.push((k, v));
        }
        cache.values = values;
        cache.len = total;
        Ok(GptOut { logits, hidden })
    }

    /// HiFi-GAN over latents `[T * D]` with a speaker embedding.
    pub fn vocode(&mut self, assets: &Assets, latents: &[f32], speaker: &[f32]) -> Result<Vec<f32>> {
        let d = assets.meta.embed_dim;
        let t = latents.len() / d;
        if t == 0 {
            return Ok(Vec::new());
        }
        let lat = tensor(&[1, t, d], latents.to_vec(), "vocoder latents")?;
        let spk = tensor(&[1, speaker.len(), 1], speaker.to_vec(), "vocoder speaker")?;
        let out = self
            .vocoder
            .run_with_options(
                vec![
                    ("latents".to_string(), lat),
                    ("speaker_embedding".to_string(), spk),
                ],
                self.run.get(),
            )
            .map_err(run_err("HiFi-GAN"))?;
        let (_, w) = out[0].try_extract_tensor::<f32>().map_err(run_err("HiFi-GAN"))?;
        Ok(w.to_vec())
    }
}
