//! The tiny ONNX fixture graphs under `tests/fixtures/graphs/` (written by
//! `scripts/fixtures/make_graphs.py`) run under ONNX Runtime with the
//! input/output contract of the real exports and the behaviour their README
//! promises: time means, frame locality, KV caches that grow, and greedy
//! decoding that stops after a known number of steps.
//!
//! Needs ONNX Runtime (`scripts/setup.sh` fetches it); without it every test
//! fails with a message saying so.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use ndarray::Array2;
use ort::session::Session;
use ort::value::{DynValue, Tensor, TensorElementType};
use vctts_engines::runtime::{self, RuntimeConfig, SessionConfig};

const F32: TensorElementType = TensorElementType::Float32;
const I64: TensorElementType = TensorElementType::Int64;

// ---------------------------------------------------------------- harness

fn graphs() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/graphs")
}

fn session(rel: &str) -> Session {
    runtime::init(&RuntimeConfig::default())
        .unwrap_or_else(|e| panic!("the fixture graph tests need ONNX Runtime (run scripts/setup.sh): {e}"));
    let config = SessionConfig {
        intra_threads: 1,
        ..SessionConfig::default()
    };
    runtime::load_session(&graphs().join(rel), &config).unwrap_or_else(|e| panic!("loading {rel}: {e}"))
}

fn metadata(engine: &str) -> serde_json::Value {
    let path = graphs().join(engine).join("metadata.json");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn meta_usize(meta: &serde_json::Value, pointer: &str) -> usize {
    meta.pointer(pointer)
        .and_then(serde_json::Value::as_u64)
        .unwrap_or_else(|| panic!("metadata lacks {pointer}")) as usize
}

/// One output tensor, copied out of the session.
#[derive(Debug, Clone, PartialEq)]
struct Out {
    shape: Vec<i64>,
    f: Vec<f32>,
    i: Vec<i64>,
}

fn f32s(shape: &[usize], data: Vec<f32>) -> DynValue {
    assert_eq!(
        shape.iter().product::<usize>(),
        data.len(),
        "tensor data does not fit {shape:?}"
    );
    Tensor::from_array((shape.to_vec(), data))
        .expect("f32 tensor")
        .into_dyn()
}

fn i64s(shape: &[usize], data: Vec<i64>) -> DynValue {
    assert_eq!(
        shape.iter().product::<usize>(),
        data.len(),
        "tensor data does not fit {shape:?}"
    );
    Tensor::from_array((shape.to_vec(), data))
        .expect("i64 tensor")
        .into_dyn()
}

fn run(session: &mut Session, inputs: Vec<(String, DynValue)>) -> BTreeMap<String, Out> {
    let outputs = session.run(inputs).unwrap_or_else(|e| panic!("run failed: {e}"));
    outputs
        .iter()
        .map(|(name, value)| {
            let out = match value.dtype().tensor_type() {
                Some(TensorElementType::Float32) => {
                    let (shape, data) = value.try_extract_tensor::<f32>().expect("f32 output");
                    Out {
                        shape: shape.to_vec(),
                        f: data.to_vec(),
                        i: Vec::new(),
                    }
                }
                Some(TensorElementType::Int64) => {
                    let (shape, data) = value.try_extract_tensor::<i64>().expect("i64 output");
                    Out {
                        shape: shape.to_vec(),
                        f: Vec::new(),
                        i: data.to_vec(),
                    }
                }
                other => panic!("output {name} has unexpected type {other:?}"),
            };
            (name.to_owned(), out)
        })
        .collect()
}

fn named(pairs: Vec<(&str, DynValue)>) -> Vec<(String, DynValue)> {
    pairs.into_iter().map(|(n, v)| (n.to_owned(), v)).collect()
}

/// A deterministic non-negative "spectrum" value for frame `t`, bin `b`.
fn spectral(t: usize, b: usize, seed: f32) -> f32 {
    0.5 + 0.45 * (1.3 * t as f32 + 0.7 * b as f32 + seed).sin() * (0.11 * b as f32 + seed).cos()
}

fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max)
}

/// `[rows, cols]` row-major data of a `[1, rows, cols]` tensor transposed to `[1, cols, rows]`.
fn transpose(data: &[f32], rows: usize, cols: usize) -> Vec<f32> {
    let mut out = vec![0.0; data.len()];
    for r in 0..rows {
        for c in 0..cols {
            out[c * rows + r] = data[r * cols + c];
        }
    }
    out
}

// ------------------------------------------------------------ I/O contract

#[track_caller]
fn check_io(
    rel: &str,
    inputs: &[(&str, TensorElementType, usize)],
    outputs: &[(&str, TensorElementType, usize)],
) {
    let s = session(rel);
    let describe = |outlets: &[ort::value::Outlet]| -> Vec<(String, Option<TensorElementType>, usize)> {
        outlets
            .iter()
            .map(|o| {
                let rank = o.dtype().tensor_shape().map_or(usize::MAX, |s| s.len());
                (o.name().to_owned(), o.dtype().tensor_type(), rank)
            })
            .collect()
    };
    let want =
        |list: &[(&str, TensorElementType, usize)]| -> Vec<(String, Option<TensorElementType>, usize)> {
            list.iter().map(|&(n, t, r)| (n.to_owned(), Some(t), r)).collect()
        };
    assert_eq!(describe(s.inputs()), want(inputs), "{rel}: inputs");
    assert_eq!(describe(s.outputs()), want(outputs), "{rel}: outputs");
}

#[test]
fn openvoice_graphs_have_the_export_contract() {
    check_io(
        "openvoice/converter/tone_color_extract_model.onnx",
        &[("input", F32, 3)],
        &[("output", F32, 2)],
    );
    check_io(
        "openvoice/converter/tone_clone_model.onnx",
        &[
            ("audio", F32, 3),
            ("audio_length", I64, 1),
            ("src_tone", F32, 3),
            ("dest_tone", F32, 3),
            ("tau", F32, 1),
        ],
        &[("output", F32, 3)],
    );
}

#[test]
fn xtts_graphs_have_the_export_contract() {
    let meta = metadata("xtts");
    let layers = meta_usize(&meta, "/n_layer");
    check_io(
        "xtts/conditioning_encoder.onnx",
        &[("mel_spectrogram", F32, 3)],
        &[("output", F32, 3)],
    );
    check_io(
        "xtts/speaker_encoder.onnx",
        &[("mel_spec", F32, 3)],
        &[("output", F32, 3)],
    );
    check_io(
        "xtts/hifigan_vocoder.onnx",
        &[("latents", F32, 3), ("speaker_embedding", F32, 3)],
        &[("output", F32, 3)],
    );
    let names: Vec<String> = (0..layers)
        .flat_map(|i| [format!("key_{i}"), format!("value_{i}")])
        .collect();
    let past: Vec<String> = names.iter().map(|n| format!("past_{n}")).collect();
    let present: Vec<String> = names.iter().map(|n| format!("present_{n}")).collect();
    let mut inputs = vec![("inputs_embeds", F32, 3), ("attention_mask", F32, 2)];
    inputs.extend(past.iter().map(|n| (n.as_str(), F32, 4)));
    let mut outputs = vec![("logits", F32, 3), ("hidden_states", F32, 3)];
    outputs.extend(present.iter().map(|n| (n.as_str(), F32, 4)));
    check_io("xtts/gpt_model.onnx", &inputs, &outputs);
}

// --------------------------------------------------------------- OpenVoice

const BINS: usize = 513;

/// `[1, T, 513]` frames of the spectral pattern.
fn frames(t: usize, seed: f32) -> Vec<f32> {
    (0..t)
        .flat_map(|f| (0..BINS).map(move |b| spectral(f, b, seed)))
        .collect()
}

fn tone_color(s: &mut Session, frames_tb: &[f32]) -> Vec<f32> {
    let t = frames_tb.len() / BINS;
    let out = run(s, named(vec![("input", f32s(&[1, t, BINS], frames_tb.to_vec()))]));
    assert_eq!(out["output"].shape, [1, 256]);
    out["output"].f.clone()
}

#[test]
fn tone_color_is_tanh_of_a_linear_map_of_the_time_mean() {
    let mut s = session("openvoice/converter/tone_color_extract_model.onnx");
    let a = frames(3, 0.1);
    let b = frames(5, 2.3);
    let ta = tone_color(&mut s, &a);
    let tb = tone_color(&mut s, &b);
    let tab = tone_color(&mut s, &[a.clone(), b.clone()].concat());
    assert!(ta.iter().chain(&tb).all(|v| v.abs() < 1.0));
    assert!(
        max_abs_diff(&ta, &tb) > 1e-2,
        "different spectra must give different tone colors"
    );
    // The time mean of A‖B is (3·mean(A) + 5·mean(B)) / 8, and atanh undoes the tanh.
    for j in 0..256 {
        let expected = (3.0 * ta[j].atanh() + 5.0 * tb[j].atanh()) / 8.0;
        assert!(
            (tab[j].atanh() - expected).abs() < 1e-4,
            "channel {j}: {} vs {expected}",
            tab[j].atanh()
        );
    }
    // Frame order does not matter, repeating every frame neither.
    let reversed: Vec<f32> = a.chunks(BINS).rev().flatten().copied().collect();
    assert!(max_abs_diff(&tone_color(&mut s, &reversed), &ta) < 1e-6);
    let doubled: Vec<f32> = a.chunks(BINS).flat_map(|f| [f, f]).flatten().copied().collect();
    assert!(max_abs_diff(&tone_color(&mut s, &doubled), &ta) < 1e-6);
}

fn convert(s: &mut Session, spec_tb: &[f32], len: i64, src: &[f32], dest: &[f32], tau: f32) -> Vec<f32> {
    let t = spec_tb.len() / BINS;
    let out = run(
        s,
        named(vec![
            ("audio", f32s(&[1, BINS, t], transpose(spec_tb, t, BINS))),
            ("audio_length", i64s(&[1], vec![len])),
            ("src_tone", f32s(&[1, 256, 1], src.to_vec())),
            ("dest_tone", f32s(&[1, 256, 1], dest.to_vec())),
            ("tau", f32s(&[1], vec![tau])),
        ]),
    );
    assert_eq!(out["output"].shape, [1, 1, (t * 256) as i64]);
    out["output"].f.clone()
}

#[test]
fn tone_clone_maps_frames_to_256_samples_and_follows_the_tones() {
    let mut extract = session("openvoice/converter/tone_color_extract_model.onnx");
    let mut s = session("openvoice/converter/tone_clone_model.onnx");
    let t = 6;
    let spec = frames(t, 0.7);
    let a = tone_color(&mut extract, &frames(4, 0.1));
    let b = tone_color(&mut extract, &frames(4, 2.3));
    let same_a = convert(&mut s, &spec, t as i64, &a, &a, 0.0);
    assert!(same_a.iter().all(|v| v.abs() < 1.0) && same_a.iter().any(|v| v.abs() > 1e-3));
    // Equal tones and tau 0: the tones cancel out (identity-like reconstruction).
    assert!(max_abs_diff(&same_a, &convert(&mut s, &spec, t as i64, &b, &b, 0.0)) < 1e-6);
    // Another destination or another tau changes the output; the same inputs do not.
    let a_to_b = convert(&mut s, &spec, t as i64, &a, &b, 0.0);
    assert!(max_abs_diff(&same_a, &a_to_b) > 1e-2);
    let hot = convert(&mut s, &spec, t as i64, &a, &a, 0.9);
    assert!(max_abs_diff(&same_a, &hot) > 1e-2);
    assert_eq!(
        convert(&mut s, &spec, t as i64, &a, &b, 0.3),
        convert(&mut s, &spec, t as i64, &a, &b, 0.3)
    );
    // Frames past audio_length are silent; the others are unchanged.
    let short = convert(&mut s, &spec, t as i64 - 2, &a, &b, 0.0);
    assert_eq!(short[..(t - 2) * 256], a_to_b[..(t - 2) * 256]);
    assert!(short[(t - 2) * 256..].iter().all(|&v| v == 0.0));
    // Each frame makes its own 256 samples: changing frame 2 changes only those.
    let mut spec2 = spec.clone();
    spec2[2 * BINS..3 * BINS].iter_mut().for_each(|v| *v *= 3.0);
    let moved = convert(&mut s, &spec2, t as i64, &a, &b, 0.0);
    for (frame, (x, y)) in a_to_b.chunks(256).zip(moved.chunks(256)).enumerate() {
        assert_eq!(max_abs_diff(x, y) > 0.0, frame == 2, "frame {frame}");
    }
}

// ------------------------------------------------------------------- XTTS

struct XttsTables {
    text: Array2<f32>,
    text_pos: Array2<f32>,
    mel: Array2<f32>,
    mel_pos: Array2<f32>,
}

fn xtts_tables() -> XttsTables {
    let load = |name: &str| -> Array2<f32> {
        let path = graphs().join("xtts/embeddings").join(format!("{name}.npy"));
        ndarray_npy::read_npy(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    };
    XttsTables {
        text: load("text_embedding"),
        text_pos: load("text_pos_embedding"),
        mel: load("mel_embedding"),
        mel_pos: load("mel_pos_embedding"),
    }
}

fn mel_pattern(channels: usize, t: usize, seed: f32) -> Vec<f32> {
    (0..channels)
        .flat_map(|c| (0..t).map(move |f| spectral(f, c, seed) * 2.0 - 1.5))
        .collect()
}

fn conditioning(s: &mut Session, mel: Vec<f32>, batch: usize, t: usize) -> Out {
    let out = run(s, named(vec![("mel_spectrogram", f32s(&[batch, 80, t], mel))]));
    out["output"].clone()
}

#[test]
fn xtts_encoders_summarise_the_reference() {
    let mut cond = session("xtts/conditioning_encoder.onnx");
    let (a, b) = (mel_pattern(80, 20, 0.3), mel_pattern(80, 20, 1.9));
    let ca = conditioning(&mut cond, a.clone(), 1, 20);
    assert_eq!(ca.shape, [1, 32, 32]);
    assert!(
        ca.f.chunks(32).all(|latent| latent[0] == 0.0),
        "channel 0 must be exactly 0"
    );
    // Time order does not matter (a function of the time mean).
    let reversed: Vec<f32> = a
        .chunks(20)
        .flat_map(|row| row.iter().rev().copied().collect::<Vec<_>>())
        .collect();
    assert!(max_abs_diff(&conditioning(&mut cond, reversed, 1, 20).f, &ca.f) < 1e-5);
    // A batch gives each item what it gives alone.
    let cb = conditioning(&mut cond, b.clone(), 1, 20);
    let both = conditioning(&mut cond, [a, b].concat(), 2, 20);
    assert_eq!(both.shape, [2, 32, 32]);
    assert!(max_abs_diff(&both.f[..1024], &ca.f) < 1e-6 && max_abs_diff(&both.f[1024..], &cb.f) < 1e-6);
    assert!(max_abs_diff(&ca.f, &cb.f) > 1e-3);

    let mut spk = session("xtts/speaker_encoder.onnx");
    let power = |seed| {
        mel_pattern(64, 30, seed)
            .into_iter()
            .map(|v| v * v)
            .collect::<Vec<_>>()
    };
    let embed = |s: &mut Session, mel: Vec<f32>| run(s, named(vec![("mel_spec", f32s(&[1, 64, 30], mel))]));
    let ea = embed(&mut spk, power(0.4))["output"].clone();
    assert_eq!(ea.shape, [1, 512, 1]);
    let norm: f32 = ea.f.iter().map(|v| v * v).sum::<f32>().sqrt();
    assert!(
        (norm - 1.0).abs() < 1e-5,
        "speaker embeddings are L2-normalised, got {norm}"
    );
    let eb = embed(&mut spk, power(2.2))["output"].clone();
    assert!(max_abs_diff(&ea.f, &eb.f) > 1e-3);
}

struct Gpt {
    session: Session,
    layers: usize,
    heads: usize,
    head_dim: usize,
    dim: usize,
}

struct Step {
    logits: Vec<f32>,
    hidden: Vec<f32>,
    seq: usize,
    cache: Vec<Out>,
}

impl Gpt {
    fn new() -> Self {
        let meta = metadata("xtts");
        Gpt {
            session: session("xtts/gpt_model.onnx"),
            layers: meta_usize(&meta, "/n_layer"),
            heads: meta_usize(&meta, "/num_heads"),
            head_dim: meta_usize(&meta, "/head_dim"),
            dim: meta_usize(&meta, "/embed_dim"),
        }
    }

    /// One forward pass over `embeds` ([S, D] rows) after `cache` (empty for prefill).
    fn step(&mut self, embeds: &[Vec<f32>], cache: &[Out], mask: Vec<f32>) -> Step {
        let seq = embeds.len();
        let data: Vec<f32> = embeds.concat();
        let mut inputs = vec![
            ("inputs_embeds".to_owned(), f32s(&[1, seq, self.dim], data)),
            ("attention_mask".to_owned(), f32s(&[1, mask.len()], mask)),
        ];
        for i in 0..self.layers {
            for (j, kind) in ["key", "value"].iter().enumerate() {
                let value = match cache.get(2 * i + j) {
                    Some(c) => {
                        let shape: Vec<usize> = c.shape.iter().map(|&d| d as usize).collect();
                        f32s(&shape, c.f.clone())
                    }
                    None => f32s(&[1, self.heads, 0, self.head_dim], Vec::new()),
                };
                inputs.push((format!("past_{kind}_{i}"), value));
            }
        }
        let out = run(&mut self.session, inputs);
        let cache = (0..self.layers)
            .flat_map(|i| {
                [
                    out[&format!("present_key_{i}")].clone(),
                    out[&format!("present_value_{i}")].clone(),
                ]
            })
            .collect();
        Step {
            logits: out["logits"].f.clone(),
            hidden: out["hidden_states"].f.clone(),
            seq,
            cache,
        }
    }
}

fn argmax(v: &[f32]) -> usize {
    v.iter()
        .enumerate()
        .fold(0, |best, (i, &x)| if x > v[best] { i } else { best })
}

fn row(table: &Array2<f32>, i: usize) -> Vec<f32> {
    table.row(i).to_vec()
}

fn add(a: Vec<f32>, b: Vec<f32>) -> Vec<f32> {
    a.into_iter().zip(b).map(|(x, y)| x + y).collect()
}

/// The XTTS prefix: conditioning latents, `[START] ids [STOP]` with text positions, start-audio at mel position 0.
fn xtts_prefix(tables: &XttsTables, meta: &serde_json::Value) -> Vec<Vec<f32>> {
    let mut cond = session("xtts/conditioning_encoder.onnx");
    let latents = conditioning(&mut cond, mel_pattern(80, 40, 0.8), 1, 40);
    let mut prefix: Vec<Vec<f32>> = latents.f.chunks(32).map(<[f32]>::to_vec).collect();
    let start_text = meta_usize(meta, "/start_text_token");
    let stop_text = meta_usize(meta, "/stop_text_token");
    for (pos, id) in [start_text, 5, 17, 99, 300, stop_text].into_iter().enumerate() {
        prefix.push(add(row(&tables.text, id), row(&tables.text_pos, pos)));
    }
    let start_audio = meta_usize(meta, "/start_audio_token");
    prefix.push(add(row(&tables.mel, start_audio), row(&tables.mel_pos, 0)));
    prefix
}

#[test]
fn xtts_gpt_decodes_greedily_until_the_stop_token() {
    let meta = metadata("xtts");
    let tables = xtts_tables();
    let mut gpt = Gpt::new();
    let vocab = meta_usize(&meta, "/num_audio_tokens");
    let stop = meta_usize(&meta, "/stop_audio_token");
    let expected_steps = meta_usize(&meta, "/behaviour/audio_tokens_before_stop");
    let prefix = xtts_prefix(&tables, &meta);
    let prefix_len = prefix.len();

    let mut step = gpt.step(&prefix, &[], vec![1.0; prefix_len]);
    assert_eq!(step.logits.len(), prefix_len * vocab);
    assert_eq!(step.hidden.len(), prefix_len * gpt.dim);
    let mut tokens = Vec::new();
    let mut latents = Vec::new();
    let mut total = prefix_len;
    loop {
        assert!(
            tokens.len() <= expected_steps,
            "no stop token after {} steps",
            tokens.len()
        );
        for c in &step.cache {
            assert_eq!(c.shape, [1, gpt.heads as i64, total as i64, gpt.head_dim as i64]);
        }
        let last = &step.logits[(step.seq - 1) * vocab..];
        let token = argmax(last);
        latents.push(step.hidden[(step.seq - 1) * gpt.dim..].to_vec());
        if token == stop {
            break;
        }
        tokens.push(token);
        let embed = add(row(&tables.mel, token), row(&tables.mel_pos, tokens.len()));
        let before = step.cache.clone();
        total += 1;
        step = gpt.step(&[embed], &before, vec![1.0; total]);
        // The cache grows by concatenation: the old positions are kept as they were.
        for (old, new) in before.iter().zip(&step.cache) {
            let per_pos = gpt.head_dim;
            for h in 0..gpt.heads {
                let o = &old.f[h * (total - 1) * per_pos..(h + 1) * (total - 1) * per_pos];
                let n = &new.f[h * total * per_pos..h * total * per_pos + (total - 1) * per_pos];
                assert_eq!(o, n, "head {h}: cached positions changed");
            }
        }
    }
    assert_eq!(tokens.len(), expected_steps, "tokens {tokens:?}");
    let rule: Vec<usize> = (1..=expected_steps).map(|c| (13 * c + 7) % 1024).collect();
    assert_eq!(tokens, rule);

    // Incremental decoding agrees with one pass over the whole sequence (causal mask + cache).
    let mut full = prefix.clone();
    for (k, &t) in tokens.iter().enumerate() {
        full.push(add(row(&tables.mel, t), row(&tables.mel_pos, k + 1)));
    }
    let one_pass = gpt.step(&full, &[], vec![1.0; full.len()]);
    let last_hidden = &one_pass.hidden[(full.len() - 1) * gpt.dim..];
    assert!(max_abs_diff(last_hidden, latents.last().expect("latent")) < 1e-4);
    assert_eq!(argmax(&one_pass.logits[(full.len() - 1) * vocab..]), stop);

    // Masked positions are ignored: hiding a text token changes the hidden state.
    let mut mask = vec![1.0; prefix_len];
    mask[33] = 0.0;
    let masked = gpt.step(&prefix, &[], mask);
    assert!(max_abs_diff(&masked.hidden[(prefix_len - 1) * gpt.dim..], &latents[0]) > 1e-5);

    // The vocoder turns the latents into 256 samples each, conditioned on the speaker.
    let mut vocoder = session("xtts/hifigan_vocoder.onnx");
    let per_latent = meta_usize(&meta, "/samples_per_latent");
    let mut spk = session("xtts/speaker_encoder.onnx");
    let speaker = |s: &mut Session, seed| {
        let mel = mel_pattern(64, 30, seed).into_iter().map(|v| v * v).collect();
        run(s, named(vec![("mel_spec", f32s(&[1, 64, 30], mel))]))["output"]
            .f
            .clone()
    };
    let (sa, sb) = (speaker(&mut spk, 0.4), speaker(&mut spk, 2.2));
    let t = latents.len();
    let mut vocode = |lat: Vec<f32>, spk: &[f32]| {
        let out = run(
            &mut vocoder,
            named(vec![
                ("latents", f32s(&[1, t, gpt.dim], lat)),
                ("speaker_embedding", f32s(&[1, 512, 1], spk.to_vec())),
            ]),
        );
        assert_eq!(out["output"].shape, [1, 1, (t * per_latent) as i64]);
        out["output"].f.clone()
    };
    let wav = vocode(latents.concat(), &sa);
    assert!(wav.iter().all(|v| v.abs() < 1.0) && wav.iter().any(|v| v.abs() > 1e-3));
    assert!(
        max_abs_diff(&wav, &vocode(latents.concat(), &sb)) > 1e-3,
        "speaker must matter"
    );
    let mut changed = latents.clone();
    changed[3].iter_mut().for_each(|v| *v += 0.5);
    let moved = vocode(changed.concat(), &sa);
    for (i, (x, y)) in wav.chunks(per_latent).zip(moved.chunks(per_latent)).enumerate() {
        assert_eq!(max_abs_diff(x, y) > 0.0, i == 3, "latent {i}");
    }
}
