//! Base voices in Piper's VITS format: `<name>.onnx` plus `<name>.onnx.json`.
//!
//! The JSON gives the phoneme-id map, the espeak-ng voice, the sample rate,
//! the inference scales and the speakers. Ids follow Piper's convention: BOS
//! `^`, then each phoneme's ids followed by the pad `_`, then EOS `$` (pad also
//! follows BOS). Symbols missing from the map are dropped and counted.
//! The graph takes `input` i64 [1,N], `input_lengths` i64 [1], `scales` f32 [3]
//! (noise, length, noise_w) and `sid` i64 [1] for multi-speaker voices, and
//! returns `output` f32 [1,1,1,T] (or [1,1,T]).
//!
//! Text front end (the same as piper-tts, the reference implementation of
//! the format; `tests/piper_ids.rs` holds it to piper-tts's ids): the text
//! goes to espeak-ng as written, apart from whitespace cleanup, because
//! espeak-ng reads numbers, abbreviations and symbols itself and the voices
//! were trained on exactly that reading ([`sentences`]); espeak-ng's clauses
//! keep their punctuation (`, ; : . ! ?` reach the model, so it pauses at
//! commas and raises questions), and every clause espeak-ng ends as a
//! sentence starts a new model input ([`utterance_ids`]).

use super::split::WindowBudget;
use crate::concurrent::ConcurrentSession;
use serde::Deserialize;
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use vctts_core::{Error, Result};

const BOS: char = '^';
const EOS: char = '$';
const PAD: char = '_';

#[derive(Debug, Deserialize)]
struct RawConfig {
    audio: RawAudio,
    espeak: RawEspeak,
    #[serde(default)]
    inference: RawInference,
    phoneme_id_map: HashMap<String, Vec<i64>>,
    #[serde(default)]
    num_speakers: u32,
    #[serde(default)]
    speaker_id_map: BTreeMap<String, i64>,
    #[serde(default)]
    language: Option<RawLanguage>,
}

#[derive(Debug, Deserialize)]
struct RawAudio {
    sample_rate: u32,
}

#[derive(Debug, Deserialize)]
struct RawEspeak {
    voice: String,
}

#[derive(Debug, Deserialize)]
#[serde(default)]
struct RawInference {
    noise_scale: f32,
    length_scale: f32,
    noise_w: f32,
}

impl Default for RawInference {
    fn default() -> Self {
        Self {
            noise_scale: 0.667,
            length_scale: 1.0,
            noise_w: 0.8,
        }
    }
}

#[derive(Debug, Deserialize)]
struct RawLanguage {
    #[serde(default)]
    family: Option<String>,
    #[serde(default)]
    code: Option<String>,
}

/// A base voice's configuration.
#[derive(Debug, Clone)]
pub struct PiperVoice {
    /// File stem, e.g. `en_US-joe-medium`.
    pub name: String,
    /// The `.onnx` graph.
    pub model_path: PathBuf,
    /// Output sample rate.
    pub sample_rate: u32,
    /// espeak-ng voice for phonemes, e.g. `en-us`.
    pub espeak_voice: String,
    /// Language family code, e.g. `en`.
    pub language: String,
    /// Default noise scale.
    pub noise_scale: f32,
    /// Default length scale (1 / speed).
    pub length_scale: f32,
    /// Default duration noise.
    pub noise_w: f32,
    /// Number of speakers (1 = single speaker, no `sid` input).
    pub num_speakers: u32,
    /// Speaker names to ids.
    pub speakers: BTreeMap<String, i64>,
    ids: HashMap<char, Vec<i64>>,
}

/// Phoneme ids and what was dropped on the way.
#[derive(Debug, Clone, PartialEq)]
pub struct PhonemeIds {
    /// The ids, BOS to EOS.
    pub ids: Vec<i64>,
    /// Symbols that the voice's map lacks, dropped.
    pub dropped: usize,
}

impl PiperVoice {
    /// Reads `<dir>/<name>.onnx.json`.
    pub fn load(model_path: &Path) -> Result<Self> {
        let name = model_path
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.strip_suffix(".onnx"))
            .ok_or_else(|| {
                Error::ModelNotInstalled(format!("{} is not an .onnx file", model_path.display()))
            })?
            .to_string();
        let json_path = model_path.with_file_name(format!("{name}.onnx.json"));
        let text = std::fs::read_to_string(&json_path).map_err(|e| {
            Error::ModelNotInstalled(format!(
                "voice config {} unreadable ({e}); every base voice needs its .onnx.json",
                json_path.display()
            ))
        })?;
        Self::parse(&name, model_path, &text)
            .map_err(|e| Error::ModelLoad(format!("voice config {}: {e}", json_path.display())))
    }

    fn parse(name: &str, model_path: &Path, text: &str) -> std::result::Result<Self, String> {
        let raw: RawConfig = serde_json::from_str(text).map_err(|e| e.to_string())?;
        let mut ids = HashMap::with_capacity(raw.phoneme_id_map.len());
        for (k, v) in raw.phoneme_id_map {
            let mut chars = k.chars();
            match (chars.next(), chars.next()) {
                (Some(c), None) => {
                    ids.insert(c, v);
                }
                _ => return Err(format!("phoneme_id_map key {k:?} is not one character")),
            }
        }
        for needed in [BOS, EOS, PAD] {
            if !ids.contains_key(&needed) {
                return Err(format!("phoneme_id_map lacks {needed:?}"));
            }
        }
        if raw.audio.sample_rate == 0 {
            return Err("audio.sample_rate is 0".into());
        }
        let language = raw
            .language
            .and_then(|l| {
                l.family.or_else(|| {
                    l.code
                        .map(|c| c.split(['_', '-']).next().unwrap_or("").to_string())
                })
            })
            .filter(|l| !l.is_empty())
            .unwrap_or_else(|| raw.espeak.voice.split('-').next().unwrap_or("en").to_string())
            .to_ascii_lowercase();
        Ok(Self {
            name: name.to_string(),
            model_path: model_path.to_path_buf(),
            sample_rate: raw.audio.sample_rate,
            espeak_voice: raw.espeak.voice,
            language,
            noise_scale: raw.inference.noise_scale,
            length_scale: raw.inference.length_scale,
            noise_w: raw.inference.noise_w,
            num_speakers: raw.num_speakers.max(1),
            speakers: raw.speaker_id_map,
            ids,
        })
    }

    /// Maps a phoneme string to ids.
    pub fn phoneme_ids(&self, phonemes: &str) -> PhonemeIds {
        let pad = &self.ids[&PAD];
        let mut ids = Vec::with_capacity(phonemes.len() * 2 + 4);
        ids.extend_from_slice(&self.ids[&BOS]);
        ids.extend_from_slice(pad);
        let mut dropped = 0;
        for c in phonemes.chars() {
            match self.ids.get(&c) {
                Some(v) => {
                    ids.extend_from_slice(v);
                    ids.extend_from_slice(pad);
                }
                None => dropped += 1,
            }
        }
        ids.extend_from_slice(&self.ids[&EOS]);
        PhonemeIds { ids, dropped }
    }
}

/// The text of a request cut into sentences of at most `max_chars`
/// characters, for a Piper voice: only whitespace is normalised (runs become
/// one space, the ends are trimmed; full-width digits fold to ASCII), since
/// espeak-ng reads numbers and symbols the way the voice was trained.
pub fn sentences(text: &str, max_chars: usize) -> Vec<String> {
    // A language tag with no number rules: whitespace cleanup only.
    let cleaned = crate::text::normalize::normalize(text, "und");
    crate::text::split::split_sentences(&cleaned, max_chars)
}

/// Phoneme ids of each sentence (from [`sentences`]), one entry per Piper
/// utterance: what piper-tts would feed the model for the same text.
pub fn utterance_ids(
    espeak: &crate::text::phonemize::Espeak,
    voice: &PiperVoice,
    sentences: &[String],
) -> Result<Vec<Vec<PhonemeIds>>> {
    Ok(espeak
        .phonemize_utterances(&voice.espeak_voice, sentences)?
        .iter()
        .map(|u| u.iter().map(|p| voice.phoneme_ids(p)).collect())
        .collect())
}

/// Lists the base voices in `dir` (`*.onnx` with a matching `.onnx.json`),
/// sorted by name.
pub fn discover(dir: &Path) -> Result<Vec<PiperVoice>> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(Error::io(format!("reading {}", dir.display()), e)),
    };
    let mut out = Vec::new();
    for entry in entries.flatten() {
        let path = entry.path();
        if path.extension().and_then(|e| e.to_str()) == Some("onnx") && path.is_file() {
            out.push(PiperVoice::load(&path)?);
        }
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

/// A base voice's graph as loaded: whole, or split at its HiFi-GAN decoder
/// ([`super::split`]) so that the decoder runs over windows of the latent
/// frames and a run's activation memory is bounded by the window, not by
/// the sentence; the windows' size follows the engine's [`WindowBudget`]
/// (every voice of an engine shares one). Shared by every lane
/// ([`ConcurrentSession`]).
#[derive(Debug)]
pub enum VitsGraphs {
    /// The voice's graph as one session.
    Whole(ConcurrentSession),
    /// Front (text encoder, durations, flow) and decoder.
    Split {
        /// Everything before the decoder; its outputs are the decoder's inputs.
        front: ConcurrentSession,
        /// The HiFi-GAN decoder, as exported and in two dimensions.
        decoders: Box<Decoders>,
        /// The frames-axis input of the decoder (`[1, C, frames]`).
        latent: String,
        /// Other decoder inputs (a speaker embedding), given whole to every window.
        extra: Vec<String>,
        /// The frames decoded at once, shared with the engine's other runs:
        /// each window's core ([`super::split::DEFAULT_OVERLAP`] frames of
        /// context on each side come on top).
        budget: Arc<WindowBudget>,
    },
}

impl VitsGraphs {
    /// Whether the graph takes [`super::noise::SEED_INPUT`].
    pub fn seedable(&self) -> bool {
        let front = match self {
            Self::Whole(s) => s,
            Self::Split { front, .. } => front,
        };
        front.has_input(super::noise::SEED_INPUT)
    }
}

/// Loads a voice's graph with its random nodes made seedable
/// ([`super::noise`]) and, given a window budget, split at its decoder
/// ([`super::split`]); runs overlap on the CPU (`overlap`). A graph
/// that cannot be rewritten (or that ONNX Runtime refuses once rewritten)
/// is loaded as it is, unseedable; one that cannot be split is loaded whole.
pub fn load_vits(
    voice: &PiperVoice,
    config: &crate::runtime::SessionConfig,
    budget: Option<Arc<WindowBudget>>,
    overlap: bool,
) -> Result<VitsGraphs> {
    let name = voice.model_path.display().to_string();
    let whole = |session| ConcurrentSession::new(session, overlap, format!("base voice {}", voice.name));
    let bytes = std::fs::read(&voice.model_path).map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            Error::ModelNotInstalled(format!("{} is missing", voice.model_path.display()))
        } else {
            Error::io(format!("reading {}", voice.model_path.display()), e)
        }
    })?;
    let model = match super::noise::seed_random_nodes(&bytes) {
        Some((seeded, nodes)) => {
            drop(bytes);
            tracing::debug!(voice = %voice.name, nodes, "random nodes follow the request seed");
            seeded
        }
        None => bytes,
    };
    if let Some(budget) = budget {
        if let Some(parts) = super::split::split_decoder(&model) {
            drop(model);
            match load_split(voice, config, parts, budget, overlap) {
                Ok(graphs) => return Ok(graphs),
                Err(e) => {
                    tracing::warn!(voice = %voice.name, error = %e, "split graph refused; loading it whole")
                }
            }
            // The split was refused: read the file again for the whole graph.
            return load_whole(voice, config, overlap);
        }
    }
    match crate::runtime::ParkedModel::park(model).load(&name, config) {
        Ok(session) => Ok(VitsGraphs::Whole(whole(session)?)),
        Err(e) => {
            tracing::warn!(voice = %voice.name, error = %e, "seeded graph refused; loading it unchanged");
            Ok(VitsGraphs::Whole(whole(crate::runtime::load_session(
                &voice.model_path,
                config,
            )?)?))
        }
    }
}

/// The voice file as it is, one session (the fallback of [`load_vits`]).
fn load_whole(
    voice: &PiperVoice,
    config: &crate::runtime::SessionConfig,
    overlap: bool,
) -> Result<VitsGraphs> {
    let session = crate::runtime::load_session(&voice.model_path, config)?;
    Ok(VitsGraphs::Whole(ConcurrentSession::new(
        session,
        overlap,
        format!("base voice {}", voice.name),
    )?))
}

/// How the front of a split voice loads: as `config`, with graph rewrites
/// kept to the basic ones (constant folding, redundant nodes).
///
/// The front (text encoder, duration predictor, flow) holds nearly all of
/// a medium voice's weights (56 of 63 MB) and many small operators. On
/// `en_US-joe-medium` (ONNX Runtime 1.32 CPU, 2 threads) building its
/// session took 0.28 s with every rewrite and 0.13 s with the basic ones,
/// while a run of it took the same time (41 ms for 150 phonemes, median of
/// 30, 2 % apart) and gave the same latent: the fusions and layout changes
/// find nothing to speed up there. The decoder keeps every rewrite (its
/// convolutions gain from the layout ONNX Runtime picks).
pub fn front_config(config: &crate::runtime::SessionConfig) -> crate::runtime::SessionConfig {
    crate::runtime::SessionConfig {
        optimization: config.optimization.min(crate::runtime::OptLevel::Basic),
        ..*config
    }
}

fn load_split(
    voice: &PiperVoice,
    config: &crate::runtime::SessionConfig,
    parts: super::split::SplitVits,
    budget: Arc<WindowBudget>,
    overlap: bool,
) -> Result<VitsGraphs> {
    use crate::runtime::ParkedModel;
    let name = voice.model_path.display();
    // The threads a run has, when the 2-D decoder may run.
    let threads = DecoderThreads::of(config, crate::runtime::shared_pool_threads());
    let planar = threads.and_then(|t| Some((ParkedModel::park(super::conv2d::widen(&parts.decoder)?), t)));
    // The decoder as exported is needed unless every run has one thread.
    let exported =
        (!matches!(planar, Some((_, t)) if t.count == 1)).then(|| ParkedModel::park(parts.decoder));
    // Every part is in a file before any loads: none of our copies is
    // alive while ONNX Runtime builds its own.
    let front = ParkedModel::park(parts.front);
    // The file's bytes, the rewritten model and the parts are freed now:
    // hand them back before ONNX Runtime allocates its own copies.
    vctts_core::memory::release();
    let front = front.load(&format!("{name} (front)"), &front_config(config))?;
    // The 2-D decoder runs each part on its caller's thread, no pool.
    let one_thread = crate::runtime::SessionConfig {
        intra_threads: 1,
        shared_pool: false,
        ..*config
    };
    let planar = match planar.map(|(p, t)| (p.load(&format!("{name} (decoder, 2-D)"), &one_thread), t)) {
        Some((Ok(session), t)) => Some((session, t)),
        Some((Err(e), _)) if exported.is_some() => {
            tracing::warn!(voice = %voice.name, error = %e, "2-D decoder refused; the exported one decodes alone");
            None
        }
        // The caller loads the whole graph instead.
        Some((Err(e), _)) => return Err(e),
        None => None,
    };
    let exported = exported
        .map(|p| p.load(&format!("{name} (decoder)"), config))
        .transpose()?;
    let concurrent =
        |s, what: &str| ConcurrentSession::new(s, overlap, format!("base voice {} ({what})", voice.name));
    let decoders = match (planar, exported) {
        (Some((p, threads)), Some(e)) => Decoders::Both {
            exported: concurrent(e, "decoder")?,
            planar: concurrent(p, "decoder, 2-D")?,
            threads,
        },
        (Some((p, _)), None) => Decoders::Planar(concurrent(p, "decoder, 2-D")?),
        (None, Some(e)) => Decoders::Exported(concurrent(e, "decoder")?),
        (None, None) => return Err(Error::ModelLoad(format!("{name}: no decoder loaded"))),
    };
    Ok(VitsGraphs::Split {
        front: concurrent(front, "front")?,
        decoders: Box::new(decoders),
        latent: parts.latent,
        extra: parts.extra,
        budget,
    })
}

/// A split voice's decoder sessions: the decoder as exported and its 2-D
/// form ([`super::conv2d`]), each loaded only where a run may take it.
///
/// The 2-D form is faster on one thread and slower on two (figures in
/// [`super::conv2d`]), and has one thread of its own and no pool. A run
/// decodes on it with one thread per part: in as many parts at once as the
/// threads it has ([`DecoderThreads::per_run`]: its share of the shared
/// pool, or its session's one thread) when its latent has at least
/// [`SPREAD_FRAMES`] frames per part, whole when it has one thread; a
/// shorter latent with several threads decodes whole on the exported
/// decoder, on the session's threads.
#[derive(Debug)]
pub enum Decoders {
    /// The decoder as exported, for every run.
    Exported(ConcurrentSession),
    /// The 2-D decoder, for every run (each has one thread).
    Planar(ConcurrentSession),
    /// Both, for runs with the threads `threads` gives them.
    Both {
        exported: ConcurrentSession,
        planar: ConcurrentSession,
        threads: DecoderThreads,
    },
}

impl Decoders {
    /// The session the windows of a `frames`-frame latent decode on while
    /// `running` runs (this one included) are under way, and in how many
    /// parts at once ([`super::split::decode_in_parts`]).
    pub fn plan(&self, running: usize, frames: usize) -> (&ConcurrentSession, usize) {
        match self {
            Self::Exported(s) | Self::Planar(s) => (s, 1),
            Self::Both {
                exported,
                planar,
                threads,
            } => match threads.per_run(running) {
                0 | 1 => (planar, 1),
                t if frames >= t * SPREAD_FRAMES => (planar, t),
                _ => (exported, 1),
            },
        }
    }
}

/// Latent frames per part below which a run does not split its decoding
/// over threads ([`Decoders::plan`]): each part costs
/// [`super::split::DEFAULT_OVERLAP`] frames of context more.
pub const SPREAD_FRAMES: usize = 64;

/// The intra-op threads a split voice's runs have, where its decoder may
/// run in two dimensions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DecoderThreads {
    /// The shared pool's threads, or each session's own.
    pub count: usize,
    /// Whether the runs under way share `count` (the environment's pool).
    pub shared: bool,
}

impl DecoderThreads {
    /// The threads of a decoder loaded with `config`, on a shared pool of
    /// `pool_threads`, where the 2-D decoder may run: `None` off the CPU or
    /// below every graph rewrite (ONNX Runtime moves 2-D convolutions to
    /// its blocked layout only at the highest level), and for a session with
    /// several threads of its own.
    pub fn of(config: &crate::runtime::SessionConfig, pool_threads: usize) -> Option<Self> {
        use crate::runtime::{Device, OptLevel};
        if config.device != Device::Cpu || config.optimization != OptLevel::All {
            return None;
        }
        if config.shared_pool {
            Some(Self {
                count: pool_threads.max(1),
                shared: true,
            })
        } else {
            // Several threads of its own: a lane alone (`vctts synth`, the
            // embedding API, a one-lane worker) keeps the exported decoder
            // on its spinning pool. In parts, loading the 2-D decoder beside
            // it cost `synth` more than the parts gained (notes part 9).
            (config.intra_threads <= 1).then_some(Self {
                count: 1,
                shared: false,
            })
        }
    }

    /// The threads one of `running` runs under way has: all of its own, or
    /// an even share of the shared pool (at least one).
    pub fn per_run(&self, running: usize) -> usize {
        if self.shared {
            (self.count / running.max(1)).max(1)
        } else {
            self.count
        }
    }
}

/// Runs the VITS graph of a base voice; `noise_seed` ([`super::noise::seed_value`])
/// feeds the seed input when the graph has one. Several lanes may run one
/// voice at once ([`ConcurrentSession`]). A split graph runs its front once
/// and its decoder over windows of its budget's share of latent frames plus
/// their context; the samples equal the whole graph's to float rounding
/// (`split::tests`).
pub fn run_vits(
    graphs: &VitsGraphs,
    options: &ort::session::RunOptions,
    voice: &PiperVoice,
    ids: &[i64],
    scales: [f32; 3],
    speaker: i64,
    noise_seed: i64,
) -> Result<Vec<f32>> {
    use ort::value::Tensor;
    let err = |e: ort::Error| Error::Inference(format!("base voice {}: {e}", voice.name));
    let n = ids.len();
    let input = Tensor::from_array(([1usize, n], ids.to_vec()))
        .map_err(err)?
        .into_dyn();
    let lengths = Tensor::from_array(([1usize], vec![n as i64]))
        .map_err(err)?
        .into_dyn();
    let scales = Tensor::from_array(([3usize], scales.to_vec()))
        .map_err(err)?
        .into_dyn();
    let mut inputs = vec![
        ("input", &input),
        ("input_lengths", &lengths),
        ("scales", &scales),
    ];
    let seed = Tensor::from_array(([1usize], vec![noise_seed]))
        .map_err(err)?
        .into_dyn();
    if graphs.seedable() {
        inputs.push((super::noise::SEED_INPUT, &seed));
    }
    let sid = Tensor::from_array(([1usize], vec![speaker]))
        .map_err(err)?
        .into_dyn();
    if voice.num_speakers > 1 {
        inputs.push(("sid", &sid));
    }
    let (front, decoders, latent_name, extra, budget) = match graphs {
        VitsGraphs::Whole(session) => return session.run_f32(&inputs, options),
        VitsGraphs::Split {
            front,
            decoders,
            latent,
            extra,
            budget,
        } => (front, decoders, latent, extra, budget),
    };
    // The run counts against the budget from its front on: two runs under
    // way share it even while one of them is not decoding yet, so a run
    // alone does not take the whole budget just before the other decodes.
    let share = budget.enter();
    let outputs = front.run(&inputs, options)?;
    let by_name = |wanted: &str| {
        front
            .session()
            .outputs()
            .iter()
            .position(|o| o.name() == wanted)
            .and_then(|i| outputs.get(i))
            .ok_or_else(|| Error::Inference(format!("base voice {}: the front gave no {wanted}", voice.name)))
    };
    let (shape, latent) = by_name(latent_name)?.try_extract_tensor::<f32>().map_err(err)?;
    let (channels, frames) = match **shape {
        [1, c, f] if c > 0 && f >= 0 => (c as usize, f as usize),
        _ => {
            return Err(Error::Inference(format!(
                "base voice {}: the decoder's input has shape {shape:?}, not [1, C, frames]",
                voice.name
            )));
        }
    };
    let extras = extra
        .iter()
        .map(|n| by_name(n).map(|v| (n.as_str(), v)))
        .collect::<Result<Vec<_>>>()?;
    let (decoder, parts) = decoders.plan(budget.running(), frames);
    // Each part decodes in windows of its run's share: a part no longer
    // than that decodes in one window, with context at its seams only.
    // (Parts that split the window between them cut a short sentence into
    // twice the windows: 10-25 % more time alone, no lower peak; notes
    // part 10.)
    let decode = |share: &super::split::BudgetShare<'_>, latent: &[f32], frames: usize| {
        super::split::decode_in_windows(
            latent,
            channels,
            frames,
            || share.chunk(),
            super::split::DEFAULT_OVERLAP,
            |window, len| {
                let z = Tensor::from_array(([1usize, channels, len], window.to_vec()))
                    .map_err(err)?
                    .into_dyn();
                let mut inputs = vec![(latent_name.as_str(), &z)];
                inputs.extend(extras.iter().map(|(n, v)| (*n, *v)));
                decoder.run_f32(&inputs, options)
            },
        )
    };
    if parts <= 1 {
        return decode(&share, latent, frames);
    }
    // Each part beyond the first counts as a run under way while it decodes.
    super::split::decode_in_parts(
        latent,
        channels,
        frames,
        parts,
        super::split::DEFAULT_OVERLAP,
        |k, part, len| match k {
            0 => decode(&share, part, len),
            _ => decode(&budget.enter(), part, len),
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const CONFIG: &str = r#"{
        "audio": {"sample_rate": 22050},
        "espeak": {"voice": "en-us"},
        "inference": {"noise_scale": 0.5, "length_scale": 1.1, "noise_w": 0.7},
        "phoneme_id_map": {"_": [0], "^": [1], "$": [2], " ": [3], "a": [14], "b": [15]},
        "num_speakers": 1,
        "language": {"family": "en", "code": "en_US"}
    }"#;

    fn voice() -> PiperVoice {
        PiperVoice::parse("v", Path::new("v.onnx"), CONFIG).unwrap()
    }

    #[test]
    fn a_run_decodes_with_the_threads_it_has() {
        use crate::runtime::{Device, OptLevel, SessionConfig};
        let own = |threads| SessionConfig {
            intra_threads: threads,
            shared_pool: false,
            ..SessionConfig::default()
        };
        let of = DecoderThreads::of;
        // One thread of its own: the 2-D decoder whatever else runs;
        // several: the exported one only.
        let t = of(&own(1), 8).unwrap();
        assert_eq!((t.count, t.shared), (1, false));
        assert_eq!((t.per_run(1), t.per_run(3)), (1, 1));
        assert_eq!(of(&own(2), 2), None);
        // The shared pool: an even share of it, at least one.
        let shared = SessionConfig {
            shared_pool: true,
            ..own(2)
        };
        let t = of(&shared, 4).unwrap();
        assert_eq!((t.count, t.shared), (4, true));
        assert_eq!(
            (t.per_run(1), t.per_run(2), t.per_run(3), t.per_run(9)),
            (4, 2, 1, 1)
        );
        assert_eq!(of(&shared, 0).unwrap().count, 1);
        // Not below every graph rewrite, nor off the CPU.
        let basic = SessionConfig {
            optimization: OptLevel::Extended,
            ..own(1)
        };
        assert_eq!(of(&basic, 2), None);
        let gpu = SessionConfig {
            device: Device::Cuda { device_id: 0 },
            ..own(1)
        };
        assert_eq!(of(&gpu, 2), None);
    }

    #[test]
    fn the_front_loads_with_basic_rewrites_only() {
        use crate::runtime::{OptLevel, SessionConfig};
        let all = SessionConfig::default();
        let front = front_config(&all);
        assert_eq!(front.optimization, OptLevel::Basic);
        // Everything else as asked; a lower level stays lower.
        assert_eq!(
            SessionConfig {
                optimization: all.optimization,
                ..front
            },
            all
        );
        let none = SessionConfig {
            optimization: OptLevel::Disable,
            ..all
        };
        assert_eq!(front_config(&none).optimization, OptLevel::Disable);
    }

    #[test]
    fn parses_config() {
        let v = voice();
        assert_eq!(v.sample_rate, 22050);
        assert_eq!(v.espeak_voice, "en-us");
        assert_eq!(v.language, "en");
        assert_eq!((v.noise_scale, v.length_scale, v.noise_w), (0.5, 1.1, 0.7));
        assert_eq!(v.num_speakers, 1);
    }

    #[test]
    fn ids_follow_piper_convention_and_count_drops() {
        let v = voice();
        let p = v.phoneme_ids("ab a");
        assert_eq!(p.ids, vec![1, 0, 14, 0, 15, 0, 3, 0, 14, 0, 2]);
        assert_eq!(p.dropped, 0);
        let p = v.phoneme_ids("aΩb");
        assert_eq!(p.ids, vec![1, 0, 14, 0, 15, 0, 2]);
        assert_eq!(p.dropped, 1);
    }

    #[test]
    fn bad_configs_are_named() {
        let no_pad = CONFIG.replace(r#""_": [0], "#, "");
        assert!(
            PiperVoice::parse("v", Path::new("v.onnx"), &no_pad)
                .unwrap_err()
                .contains("'_'")
        );
        let multi = CONFIG.replace(r#""a": [14]"#, r#""ab": [14]"#);
        assert!(
            PiperVoice::parse("v", Path::new("v.onnx"), &multi)
                .unwrap_err()
                .contains("one character")
        );
        assert!(PiperVoice::parse("v", Path::new("v.onnx"), "{").is_err());
    }

    #[test]
    fn missing_json_is_not_installed() {
        let e = PiperVoice::load(Path::new("nowhere/x.onnx")).unwrap_err();
        assert_eq!(e.code(), "model_not_installed");
    }
}
