//! The GPT-SoVITS v2 model folder and its graphs, as written by
//! `scripts/export/gpt_sovits_export.py`.
//!
//! Folder contents (names and sizes from `metadata.json`):
//! - `ssl.onnx`: `audio16k` f32 [1,N] → `ssl_content` f32 [1,768,S] (HuBERT on the raw wave);
//! - `vq_encode.onnx`: `ssl_content` → `prompts` i64 [1,P] (ssl_proj + nearest code);
//! - `bert.onnx` + `vocab.txt`: `input_ids`, `attention_mask`, `token_type_ids` i64 [1,L]
//!   → `bert_feature` f32 [L-2,1024] (hidden_states[-3] without CLS/SEP);
//! - `t2s_encoder.onnx`: `ref_seq`, `text_seq` i64, `ref_bert`, `text_bert` f32 [*,1024] → `x` f32 [1,L,512];
//! - `t2s_prefill.onnx`: `x`, `prompts` → `logits` f32 [1,1025] and `present_{k,v}_layer_i` [L+P,1,512];
//! - `t2s_step.onnx`: `token` i64 [1,1], `position` i64 [1], `past_{k,v}_layer_i` → `logits`, presents;
//! - `vits.onnx`: `text_seq` i64 [1,N], `pred_semantic` i64 [1,1,T], `refer` f32 [1,1025,F],
//!   `noise` f32 [1,192,L] → `audio` f32 [L·640] at 32 kHz, where the latent
//!   is resized to the noise length `L` ([`Metadata::latent_frames`]: `2T`
//!   at speed 1, upstream's `int(2T / speed) + 1` otherwise);
//! - the external weight files named in `metadata.json` (`weights`, with their sizes).
//!
//! Invariants: [`ModelFiles::scan`] reads no graph and fails on the first
//! missing or mis-sized file, naming it; [`Graphs::load`] checks every
//! graph's declared inputs and outputs (names, element types, fixed sizes)
//! against the metadata and names the file and tensor that differ. Every
//! run of [`Graphs`] uses the current job's run options ([`Graphs::arm`]).

use ort::session::Session;
use ort::value::{DynValue, Tensor, TensorElementType, ValueType};
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use vctts_core::{CancelHookGuard, Error, Result, SynthesisControl};

use crate::runtime::{JobRunOptions, SessionConfig};

/// The `format` value of a vctts GPT-SoVITS folder.
pub const FORMAT: &str = "vctts-gpt-sovits";
/// The folder format version this build reads.
/// Version 2: `vits.onnx` resizes its latent to the noise length (speed).
pub const FORMAT_VERSION: u32 = 2;

/// `metadata.json`: every size the engine needs.
#[derive(Debug, Clone, PartialEq, serde::Deserialize, serde::Serialize)]
pub struct Metadata {
    /// Always [`FORMAT`].
    pub format: String,
    /// Folder format version ([`FORMAT_VERSION`]).
    pub format_version: u32,
    /// GPT-SoVITS model version (`v2`).
    pub model_version: String,
    /// Output rate (32000).
    pub sample_rate: u32,
    /// Rate the SSL model takes (16000).
    pub ssl_sample_rate: u32,
    /// SSL feature width (768).
    pub ssl_dim: usize,
    /// BERT feature width (1024).
    pub bert_dim: usize,
    /// Longest BERT input in tokens, CLS and SEP included.
    #[serde(default = "default_bert_positions")]
    pub bert_max_positions: usize,
    /// T2S decoder layers.
    pub n_layer: usize,
    /// T2S width (512).
    pub d_model: usize,
    /// Phone symbols (732 for v2).
    pub phone_vocab: usize,
    /// Semantic vocabulary including EOS (1025).
    pub semantic_vocab: usize,
    /// The end-of-speech token (1024).
    pub eos: u32,
    /// Spectrogram bins of the reference (1025).
    pub spec_bins: usize,
    /// STFT size of the reference spectrogram (2048).
    pub n_fft: usize,
    /// Hop of the reference spectrogram (640).
    pub hop: usize,
    /// Channels of the VITS prior noise (192).
    pub noise_channels: usize,
    /// Output samples per semantic token (1280).
    pub samples_per_token: usize,
    /// Frames of the VITS prior per semantic token (2).
    pub ssl_frames_per_token: usize,
    /// Graph file names by role.
    pub files: BTreeMap<String, String>,
    /// External weight files and their sizes in bytes.
    #[serde(default)]
    pub weights: BTreeMap<String, u64>,
}

impl Metadata {
    /// Latent frames VITS decodes for `tokens` semantic tokens at `speed`:
    /// `tokens · ssl_frames_per_token` at speed 1; otherwise upstream's
    /// `int(frames / speed) + 1` (its TextEncoder resizes only when the
    /// speed differs from 1).
    pub fn latent_frames(&self, tokens: usize, speed: f32) -> usize {
        let frames = tokens * self.ssl_frames_per_token;
        if speed == 1.0 || frames == 0 {
            frames
        } else {
            // Upstream divides by a Python float: widen the f32 through
            // its shortest decimal form (0.8f32 → 0.8, not 0.800000011…),
            // so int(48 / 0.8) is 60 here too.
            let speed: f64 = speed.to_string().parse().unwrap_or(speed as f64);
            (frames as f64 / speed).floor() as usize + 1
        }
    }
}

fn default_bert_positions() -> usize {
    512
}

/// The graph roles every folder must have.
pub const ROLES: [&str; 7] = [
    "ssl",
    "vq_encode",
    "bert",
    "t2s_encoder",
    "t2s_prefill",
    "t2s_step",
    "vits",
];

/// The files of an installed model, checked but not loaded.
#[derive(Debug, Clone)]
pub struct ModelFiles {
    /// The folder.
    pub dir: PathBuf,
    /// Its metadata.
    pub meta: Metadata,
    /// Graph paths by role.
    pub graphs: HashMap<String, PathBuf>,
    /// The BERT vocabulary.
    pub vocab: PathBuf,
}

fn not_installed(dir: &Path, what: String) -> Error {
    Error::ModelNotInstalled(format!(
        "GPT-SoVITS model folder {}: {what}; create it with `vctts models import gpt-sovits` \
         (see models/gpt_sovits/README.md)",
        dir.display()
    ))
}

impl ModelFiles {
    /// Reads `metadata.json` and checks that every file it names exists
    /// (weights with the recorded size).
    pub fn scan(dir: &Path) -> Result<Self> {
        let meta_path = dir.join("metadata.json");
        let text = std::fs::read_to_string(&meta_path)
            .map_err(|e| not_installed(dir, format!("metadata.json cannot be read ({e})")))?;
        let meta: Metadata = serde_json::from_str(&text)
            .map_err(|e| Error::ModelLoad(format!("{}: {e}", meta_path.display())))?;
        if meta.format != FORMAT || meta.format_version != FORMAT_VERSION {
            return Err(Error::ModelLoad(format!(
                "{}: format {:?} v{} is not {FORMAT} v{FORMAT_VERSION}",
                meta_path.display(),
                meta.format,
                meta.format_version
            )));
        }
        if meta.model_version != "v2" {
            return Err(Error::ModelLoad(format!(
                "{}: model version {:?}; this engine runs GPT-SoVITS v2",
                meta_path.display(),
                meta.model_version
            )));
        }
        let checks = [
            ("n_layer", meta.n_layer > 0),
            ("d_model", meta.d_model > 0),
            ("semantic_vocab", meta.semantic_vocab > meta.eos as usize),
            ("spec_bins", meta.spec_bins == meta.n_fft / 2 + 1),
            ("hop", meta.hop > 0 && meta.hop < meta.n_fft),
            ("samples_per_token", meta.samples_per_token > 0),
            ("ssl_frames_per_token", meta.ssl_frames_per_token > 0),
            ("sample_rate", meta.sample_rate > 0 && meta.ssl_sample_rate > 0),
        ];
        if let Some((name, _)) = checks.iter().find(|(_, ok)| !ok) {
            return Err(Error::ModelLoad(format!(
                "{}: {name} is out of range",
                meta_path.display()
            )));
        }
        let mut graphs = HashMap::new();
        for role in ROLES {
            let name = meta.files.get(role).ok_or_else(|| {
                Error::ModelLoad(format!("{}: files.{role} is missing", meta_path.display()))
            })?;
            let p = dir.join(name);
            if !p.is_file() {
                return Err(not_installed(dir, format!("{name} is missing")));
            }
            graphs.insert(role.to_string(), p);
        }
        let vocab = dir.join(meta.files.get("vocab").map_or("vocab.txt", String::as_str));
        if !vocab.is_file() {
            return Err(not_installed(dir, format!("{} is missing", vocab.display())));
        }
        for (name, size) in &meta.weights {
            let p = dir.join(name);
            match std::fs::metadata(&p) {
                Ok(m) if m.len() == *size => {}
                Ok(m) => {
                    return Err(Error::ModelLoad(format!(
                        "{}: {} bytes, metadata.json says {size} (an incomplete copy?)",
                        p.display(),
                        m.len()
                    )));
                }
                Err(_) => return Err(not_installed(dir, format!("{name} is missing"))),
            }
        }
        Ok(Self {
            dir: dir.to_path_buf(),
            meta,
            graphs,
            vocab,
        })
    }

    fn graph(&self, role: &str) -> &Path {
        &self.graphs[role]
    }
}

/// What a graph must declare for one input or output: name, element type
/// and the fixed sizes (`None` = any).
struct Port {
    name: String,
    ty: TensorElementType,
    dims: Vec<Option<i64>>,
}

fn port(name: impl Into<String>, ty: TensorElementType, dims: &[Option<usize>]) -> Port {
    Port {
        name: name.into(),
        ty,
        dims: dims.iter().map(|d| d.map(|v| v as i64)).collect(),
    }
}

const F32: TensorElementType = TensorElementType::Float32;
const I64: TensorElementType = TensorElementType::Int64;

fn check_ports(path: &Path, kind: &str, have: &[ort::value::Outlet], want: &[Port]) -> Result<()> {
    let file = path.file_name().map_or_else(
        || path.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    );
    for w in want {
        let Some(h) = have.iter().find(|h| h.name() == w.name) else {
            return Err(Error::ModelLoad(format!(
                "{file}: {kind} {} is missing (has: {})",
                w.name,
                have.iter().map(|h| h.name()).collect::<Vec<_>>().join(", ")
            )));
        };
        let (ty, shape) = match h.dtype() {
            ValueType::Tensor { ty, shape, .. } => (*ty, shape.to_vec()),
            other => {
                return Err(Error::ModelLoad(format!(
                    "{file}: {kind} {} is {other:?}, not a tensor",
                    w.name
                )));
            }
        };
        let fits = ty == w.ty
            && shape.len() == w.dims.len()
            && shape
                .iter()
                .zip(&w.dims)
                .all(|(h, w)| w.is_none() || *h < 0 || Some(*h) == *w);
        if !fits {
            let want_dims: Vec<String> = w
                .dims
                .iter()
                .map(|d| d.map_or_else(|| "?".to_string(), |v| v.to_string()))
                .collect();
            return Err(Error::ModelLoad(format!(
                "{file}: {kind} {} is {ty:?} {shape:?}, expected {:?} [{}]",
                w.name,
                w.ty,
                want_dims.join(",")
            )));
        }
    }
    Ok(())
}

fn load_checked(path: &Path, config: &SessionConfig, inputs: &[Port], outputs: &[Port]) -> Result<Session> {
    let s = crate::runtime::load_session(path, config)?;
    check_ports(path, "input", s.inputs(), inputs)?;
    check_ports(path, "output", s.outputs(), outputs)?;
    Ok(s)
}

/// The loaded graphs (owned by one inference thread).
pub struct Graphs {
    /// The metadata they were checked against.
    pub meta: Metadata,
    ssl: Session,
    vq: Session,
    bert: Session,
    encoder: Session,
    prefill: Session,
    step: Session,
    vits: Session,
    prefill_kv: Vec<String>,
    step_past: Vec<String>,
    bert_extra: Vec<String>,
    /// Options of every run: the job's own, so that cancelling its request
    /// terminates the run under way ([`Graphs::arm`]).
    run: JobRunOptions,
}

fn e(what: &'static str) -> impl Fn(ort::Error) -> Error {
    move |err| Error::Inference(format!("gpt-sovits {what}: {err}"))
}

fn kv_names(prefix: &str, n: usize) -> Vec<String> {
    (0..n)
        .flat_map(|i| [format!("{prefix}_k_layer_{i}"), format!("{prefix}_v_layer_{i}")])
        .collect()
}

/// The KV cache of a generation: one K and one V tensor per layer, each
/// `[len, 1, d_model]`, as the last graph run returned them.
pub struct KvCache {
    values: Vec<DynValue>,
    /// Positions held.
    pub len: usize,
}

impl Graphs {
    /// Loads and checks every graph of `files`.
    pub fn load(files: &ModelFiles, config: &SessionConfig) -> Result<Self> {
        let m = &files.meta;
        let (d, n) = (Some(m.d_model), m.n_layer);
        let kv = |prefix: &str| -> Vec<Port> {
            kv_names(prefix, n)
                .into_iter()
                .map(|name| port(name, F32, &[None, Some(1), d]))
                .collect()
        };
        let logits = port("logits", F32, &[Some(1), Some(m.semantic_vocab)]);
        let ssl = load_checked(
            files.graph("ssl"),
            config,
            &[port("audio16k", F32, &[Some(1), None])],
            &[port("ssl_content", F32, &[Some(1), Some(m.ssl_dim), None])],
        )?;
        let vq = load_checked(
            files.graph("vq_encode"),
            config,
            &[port("ssl_content", F32, &[Some(1), Some(m.ssl_dim), None])],
            &[port("prompts", I64, &[Some(1), None])],
        )?;
        let bert = load_checked(
            files.graph("bert"),
            config,
            &[port("input_ids", I64, &[Some(1), None])],
            &[port("bert_feature", F32, &[None, Some(m.bert_dim)])],
        )?;
        // The exporter drops inputs a model does not read (a BERT cut to its
        // embeddings reads no attention mask); feed only what is declared.
        let bert_extra: Vec<String> = ["attention_mask", "token_type_ids"]
            .into_iter()
            .filter(|n| bert.inputs().iter().any(|i| i.name() == *n))
            .map(String::from)
            .collect();
        check_ports(
            files.graph("bert"),
            "input",
            bert.inputs(),
            &bert_extra
                .iter()
                .map(|n| port(n.as_str(), I64, &[Some(1), None]))
                .collect::<Vec<_>>(),
        )?;
        let encoder = load_checked(
            files.graph("t2s_encoder"),
            config,
            &[
                port("ref_seq", I64, &[Some(1), None]),
                port("text_seq", I64, &[Some(1), None]),
                port("ref_bert", F32, &[None, Some(m.bert_dim)]),
                port("text_bert", F32, &[None, Some(m.bert_dim)]),
            ],
            &[port("x", F32, &[Some(1), None, d])],
        )?;
        let mut prefill_out = vec![port("logits", F32, &[Some(1), Some(m.semantic_vocab)])];
        prefill_out.extend(kv("present"));
        let prefill = load_checked(
            files.graph("t2s_prefill"),
            config,
            &[
                port("x", F32, &[Some(1), None, d]),
                port("prompts", I64, &[Some(1), None]),
            ],
            &prefill_out,
        )?;
        let mut step_in = vec![
            port("token", I64, &[Some(1), Some(1)]),
            port("position", I64, &[Some(1)]),
        ];
        step_in.extend(kv("past"));
        let mut step_out = vec![logits];
        step_out.extend(kv("present"));
        let step = load_checked(files.graph("t2s_step"), config, &step_in, &step_out)?;
        let vits = load_checked(
            files.graph("vits"),
            config,
            &[
                port("text_seq", I64, &[Some(1), None]),
                port("pred_semantic", I64, &[Some(1), Some(1), None]),
                port("refer", F32, &[Some(1), Some(m.spec_bins), None]),
                port("noise", F32, &[Some(1), Some(m.noise_channels), None]),
            ],
            &[port("audio", F32, &[None])],
        )?;
        // A decoder with more layers than the metadata says would run with
        // a cache it never fills.
        for (s, path, prefix) in [
            (&prefill, files.graph("t2s_prefill"), "present"),
            (&step, files.graph("t2s_step"), "present"),
        ] {
            let extra = s.outputs().len() - 1;
            if extra != 2 * n {
                return Err(Error::ModelLoad(format!(
                    "{}: has {extra} {prefix} K/V outputs, metadata.json says {n} layers",
                    path.display()
                )));
            }
        }
        Ok(Self {
            meta: m.clone(),
            ssl,
            vq,
            bert,
            encoder,
            prefill,
            step,
            vits,
            prefill_kv: kv_names("present", n),
            step_past: kv_names("past", n),
            bert_extra,
            run: JobRunOptions::new()?,
        })
    }

    /// Gives the job that starts its own run options, terminated when
    /// `control` is cancelled while the guard lives: a dropped request stops
    /// inside the graph run under way (BERT, T2S prefill or step, VITS), and
    /// the job's later runs fail at once.
    pub fn arm(&mut self, control: &SynthesisControl) -> Result<CancelHookGuard> {
        self.run.arm(control)
    }

    /// Gives the job that starts fresh options that nothing terminates.
    pub fn disarm(&mut self) -> Result<()> {
        self.run.reset()
    }

    /// SSL features of 16 kHz audio (already padded): `([768·S], S)`.
    pub fn ssl(&mut self, audio16k: &[f32]) -> Result<(Vec<f32>, usize)> {
        let err = e("ssl");
        let input = Tensor::from_array(([1usize, audio16k.len()], audio16k.to_vec())).map_err(&err)?;
        let out = self
            .ssl
            .run_with_options(ort::inputs!["audio16k" => input], self.run.get())
            .map_err(&err)?;
        let (shape, data) = out["ssl_content"].try_extract_tensor::<f32>().map_err(&err)?;
        Ok((data.to_vec(), shape[2] as usize))
    }

    /// Prompt codes of SSL features `[768·S]`.
    pub fn vq_encode(&mut self, ssl: &[f32], frames: usize) -> Result<Vec<i64>> {
        let err = e("vq_encode");
        let input = Tensor::from_array(([1usize, self.meta.ssl_dim, frames], ssl.to_vec())).map_err(&err)?;
        let out = self
            .vq
            .run_with_options(ort::inputs!["ssl_content" => input], self.run.get())
            .map_err(&err)?;
        let (_, data) = out["prompts"].try_extract_tensor::<i64>().map_err(&err)?;
        Ok(data.to_vec())
    }

    /// BERT features `[(ids.len()-2)·1024]` of token ids with CLS and SEP.
    pub fn bert(&mut self, ids: &[i64]) -> Result<Vec<f32>> {
        let err = e("bert");
        let n = ids.len();
        let mut inputs: Vec<(String, DynValue)> = vec![(
            "input_ids".into(),
            Tensor::from_array(([1usize, n], ids.to_vec()))
                .map_err(&err)?
                .into_dyn(),
        )];
        for name in &self.bert_extra {
            // attention_mask: all ones; token_type_ids: all zeros.
            let v = i64::from(name == "attention_mask");
            inputs.push((
                name.clone(),
                Tensor::from_array(([1usize, n], vec![v; n]))
                    .map_err(&err)?
                    .into_dyn(),
            ));
        }
        let out = self.bert.run_with_options(inputs, self.run.get()).map_err(&err)?;
        let (_, data) = out["bert_feature"].try_extract_tensor::<f32>().map_err(&err)?;
        let want = (n - 2) * self.meta.bert_dim;
        if data.len() != want {
            return Err(Error::Inference(format!(
                "bert.onnx returned {} values for {n} tokens, expected {want}",
                data.len()
            )));
        }
        Ok(data.to_vec())
    }

    /// The T2S text side `x` `[L·512]` of prompt and target phones with
    /// their BERT features (`[n·1024]` each).
    pub fn encode(
        &mut self,
        ref_phones: &[i64],
        ref_bert: &[f32],
        phones: &[i64],
        bert: &[f32],
    ) -> Result<Vec<f32>> {
        let err = e("t2s_encoder");
        let b = self.meta.bert_dim;
        if ref_bert.len() != ref_phones.len() * b || bert.len() != phones.len() * b {
            return Err(Error::Internal(
                "phones and BERT features differ in length".into(),
            ));
        }
        let out = self
            .encoder
            .run_with_options(ort::inputs![
                "ref_seq" => Tensor::from_array(([1usize, ref_phones.len()], ref_phones.to_vec())).map_err(&err)?,
                "text_seq" => Tensor::from_array(([1usize, phones.len()], phones.to_vec())).map_err(&err)?,
                "ref_bert" => Tensor::from_array(([ref_phones.len(), b], ref_bert.to_vec())).map_err(&err)?,
                "text_bert" => Tensor::from_array(([phones.len(), b], bert.to_vec())).map_err(&err)?
            ], self.run.get())
            .map_err(&err)?;
        let (_, data) = out["x"].try_extract_tensor::<f32>().map_err(&err)?;
        Ok(data.to_vec())
    }

    fn logits_of(
        vocab: usize,
        out: &ort::session::SessionOutputs<'_>,
        what: &'static str,
    ) -> Result<Vec<f32>> {
        let (_, l) = out["logits"].try_extract_tensor::<f32>().map_err(e(what))?;
        if l.len() != vocab {
            return Err(Error::Inference(format!(
                "{what} returned {} logits, expected {}",
                l.len(),
                vocab
            )));
        }
        Ok(l.to_vec())
    }

    /// Runs the prompt through the decoder: the logits of the first new
    /// token and the cache.
    pub fn prefill(&mut self, x: &[f32], prompts: &[i64]) -> Result<(Vec<f32>, KvCache)> {
        let err = e("t2s_prefill");
        let d = self.meta.d_model;
        let l = x.len() / d;
        let x = Tensor::from_array(([1usize, l, d], x.to_vec())).map_err(&err)?;
        let p = Tensor::from_array(([1usize, prompts.len()], prompts.to_vec())).map_err(&err)?;
        let mut out = self
            .prefill
            .run_with_options(ort::inputs!["x" => x, "prompts" => p], self.run.get())
            .map_err(&err)?;
        let logits = Self::logits_of(self.meta.semantic_vocab, &out, "t2s_prefill")?;
        let mut values = Vec::with_capacity(self.prefill_kv.len());
        for name in &self.prefill_kv {
            values.push(
                out.remove(name)
                    .ok_or_else(|| Error::Inference(format!("t2s_prefill returned no {name}")))?,
            );
        }
        Ok((
            logits,
            KvCache {
                values,
                len: l + prompts.len(),
            },
        ))
    }

    /// One decoder step: `token` at `position` (its 0-based index among the
    /// audio tokens, prompt included).
    pub fn step(&mut self, token: u32, position: usize, cache: &mut KvCache) -> Result<Vec<f32>> {
        let err = e("t2s_step");
        let tok = Tensor::from_array(([1usize, 1], vec![token as i64])).map_err(&err)?;
        let pos = Tensor::from_array(([1usize], vec![position as i64])).map_err(&err)?;
        let mut inputs: Vec<(std::borrow::Cow<'_, str>, ort::session::SessionInputValue<'_>)> =
            Vec::with_capacity(2 + cache.values.len());
        inputs.push(("token".into(), tok.into()));
        inputs.push(("position".into(), pos.into()));
        for (name, v) in self.step_past.iter().zip(&cache.values) {
            inputs.push((name.as_str().into(), v.into()));
        }
        let mut out = self.step.run_with_options(inputs, self.run.get()).map_err(&err)?;
        let logits = Self::logits_of(self.meta.semantic_vocab, &out, "t2s_step")?;
        let mut values = Vec::with_capacity(cache.values.len());
        for name in &self.prefill_kv {
            values.push(
                out.remove(name)
                    .ok_or_else(|| Error::Inference(format!("t2s_step returned no {name}")))?,
            );
        }
        drop(out);
        cache.values = values;
        cache.len += 1;
        Ok(logits)
    }

    /// VITS: target phones, semantic codes, the reference spectrogram
    /// `[1025·F]` (row-major, bins × frames) and the prior noise
    /// `[192·L]` → `L·640` samples at 32 kHz. `L` sets the speed: pass
    /// [`Metadata::latent_frames`] frames of noise.
    pub fn vits(
        &mut self,
        phones: &[i64],
        codes: &[i64],
        refer: &[f32],
        refer_frames: usize,
        noise: &[f32],
    ) -> Result<Vec<f32>> {
        let err = e("vits");
        let m = &self.meta;
        let frames = noise.len() / m.noise_channels.max(1);
        if codes.is_empty()
            || frames == 0
            || noise.len() != m.noise_channels * frames
            || refer.len() != m.spec_bins * refer_frames
        {
            return Err(Error::Internal("vits inputs have the wrong size".into()));
        }
        let out = self
            .vits
            .run_with_options(ort::inputs![
                "text_seq" => Tensor::from_array(([1usize, phones.len()], phones.to_vec())).map_err(&err)?,
                "pred_semantic" => Tensor::from_array(([1usize, 1, codes.len()], codes.to_vec())).map_err(&err)?,
                "refer" => Tensor::from_array(([1usize, m.spec_bins, refer_frames], refer.to_vec())).map_err(&err)?,
                "noise" => Tensor::from_array(([1usize, m.noise_channels, frames], noise.to_vec())).map_err(&err)?
            ], self.run.get())
            .map_err(&err)?;
        let (_, audio) = out["audio"].try_extract_tensor::<f32>().map_err(&err)?;
        if audio.len() != frames * m.hop {
            return Err(Error::Inference(format!(
                "vits returned {} samples for {frames} latent frames, expected {}",
                audio.len(),
                frames * m.hop
            )));
        }
        Ok(audio.to_vec())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write_meta(dir: &Path, meta: &serde_json::Value) {
        std::fs::write(dir.join("metadata.json"), meta.to_string()).unwrap();
    }

    fn meta_json() -> serde_json::Value {
        serde_json::json!({
            "format": FORMAT, "format_version": FORMAT_VERSION, "model_version": "v2",
            "sample_rate": 32000, "ssl_sample_rate": 16000, "ssl_dim": 768, "bert_dim": 1024,
            "n_layer": 2, "d_model": 512, "phone_vocab": 732, "semantic_vocab": 1025, "eos": 1024,
            "spec_bins": 1025, "n_fft": 2048, "hop": 640, "noise_channels": 192,
            "samples_per_token": 1280, "ssl_frames_per_token": 2,
            "files": {"ssl": "ssl.onnx", "vq_encode": "vq_encode.onnx", "bert": "bert.onnx",
                      "vocab": "vocab.txt", "t2s_encoder": "t2s_encoder.onnx",
                      "t2s_prefill": "t2s_prefill.onnx", "t2s_step": "t2s_step.onnx", "vits": "vits.onnx"},
            "weights": {"vits.bin": 8}
        })
    }

    #[test]
    fn latent_frames_follow_upstreams_speed_rule() {
        let meta: Metadata = serde_json::from_value(meta_json()).unwrap();
        assert_eq!(meta.latent_frames(24, 1.0), 48);
        // int(48 / 1.25) + 1, int(48 / 0.8) + 1
        assert_eq!(meta.latent_frames(24, 1.25), 39);
        assert_eq!(meta.latent_frames(24, 0.8), 61);
        assert_eq!(meta.latent_frames(0, 1.5), 0);
    }

    #[test]
    fn scan_names_the_missing_file() {
        let dir = tempfile::tempdir().unwrap();
        let err = ModelFiles::scan(dir.path()).unwrap_err();
        assert_eq!(err.code(), "model_not_installed");
        assert!(err.to_string().contains("metadata.json"), "{err}");
        write_meta(dir.path(), &meta_json());
        for f in ROLES {
            if f != "t2s_step" {
                std::fs::write(dir.path().join(format!("{f}.onnx")), b"x").unwrap();
            }
        }
        std::fs::write(dir.path().join("vocab.txt"), b"[PAD]\n").unwrap();
        let err = ModelFiles::scan(dir.path()).unwrap_err();
        assert!(err.to_string().contains("t2s_step.onnx is missing"), "{err}");
        std::fs::write(dir.path().join("t2s_step.onnx"), b"x").unwrap();
        let err = ModelFiles::scan(dir.path()).unwrap_err();
        assert!(err.to_string().contains("vits.bin is missing"), "{err}");
        std::fs::write(dir.path().join("vits.bin"), [0u8; 4]).unwrap();
        let err = ModelFiles::scan(dir.path()).unwrap_err();
        assert!(err.to_string().contains("4 bytes, metadata.json says 8"), "{err}");
        std::fs::write(dir.path().join("vits.bin"), [0u8; 8]).unwrap();
        let files = ModelFiles::scan(dir.path()).unwrap();
        assert_eq!(files.meta.n_layer, 2);
    }

    #[test]
    fn scan_refuses_other_formats_and_bad_sizes() {
        let dir = tempfile::tempdir().unwrap();
        let mut m = meta_json();
        m["model_version"] = "v4".into();
        write_meta(dir.path(), &m);
        assert!(
            ModelFiles::scan(dir.path())
                .unwrap_err()
                .to_string()
                .contains("v2")
        );
        let mut m = meta_json();
        m["spec_bins"] = 513.into();
        write_meta(dir.path(), &m);
        assert!(
            ModelFiles::scan(dir.path())
                .unwrap_err()
                .to_string()
                .contains("spec_bins")
        );
    }
}
