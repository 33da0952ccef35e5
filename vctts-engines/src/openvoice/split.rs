//! Bounded decoder memory for Piper VITS voices: the graph split in two at
//! load, and the decoder run over overlapping windows of latent frames.
//!
//! A Piper voice is one ONNX graph per sentence. Its HiFi-GAN decoder (the
//! nodes named `/dec/...`) upsamples the latent by the hop (256 samples per
//! frame for the medium voices) and holds activations in proportion to the
//! audio length, about 20 MB per second of audio in ONNX Runtime's arena, so
//! one long sentence costs hundreds of MB. [`split_decoder`] cuts the model
//! once into a *front* (text encoder, duration predictor, flow: everything
//! the decoder needs) and the *decoder*; [`decode_in_windows`] runs the
//! decoder over windows of at most `chunk + 2·overlap` frames and stitches
//! the windows' cores, so a run's activations are bounded by the window, not
//! by the sentence.
//!
//! Invariants of the split (anything else gives `None`, and the caller runs
//! the whole graph as before):
//! - decoder nodes are the nodes whose name starts with [`DEC_PREFIX`];
//!   nodes that read a decoder output (the final `Unsqueeze`) must be layout
//!   ops ([`LAYOUT_OPS`]) that only lead to the graph outputs: they are
//!   dropped, so the decoder's output holds the same samples as the graph's;
//! - the cut is the tensors decoder nodes read that front nodes produce
//!   (never initializers); each is a front output and a decoder input,
//!   declared float and rank 3 with symbolic dims. The latent
//!   ([`SplitVits::latent`], `[1, C, frames]`) is the one `/dec/conv_pre`
//!   reads; the others (a speaker embedding `g`, `[1, gin, 1]`) go whole to
//!   every window;
//! - the front keeps only the nodes the cut depends on and the whole graph's
//!   inputs those nodes read; each part keeps only the initializers (and
//!   `Constant` nodes) its own nodes read, so no weight is stored twice;
//! - model-level fields (ir_version, opset_import, producer, metadata) are
//!   copied byte for byte into both parts, and each part is built in one
//!   buffer of its final size (the model is tens of MB).
//!
//! It works the same on the voice file's bytes and on the output of
//! [`super::noise::seed_random_nodes`] (the noise generators sit in the
//! front, so a fixed seed gives the same latent on every path).
//!
//! Windows: [`windows`] splits `frames` into `ceil(frames / chunk)` cores of
//! near-equal length, each widened by `overlap` frames of context on both
//! sides (clipped to the sentence). A latent of at most `chunk` frames runs
//! once, whole, with no extra work. The engine's [`WindowBudget`] sets
//! `chunk` before each window: by default its runs share 256 frames, so a
//! run alone decodes in windows of 256 frames (most sentences of up to 3 s
//! in one) and two runs at once in windows of 128 each; a server keeps
//! fixed windows per run (see below). [`decode_in_parts`] cuts a latent the
//! same way into as many parts as there are threads for it and decodes them
//! at once, one per thread (a run alone on the 2-D decoder of
//! [`super::conv2d`], see `piper::Decoders`).
//!
//! Measured on `en_US-joe-medium` (hop 256, 22.05 kHz; ONNX Runtime 1.32 CPU,
//! the parts this module writes, run from Python):
//! - receptive field: adding 1.0 to one latent frame changes output samples
//!   up to 11 frames away on either side ([`MEASURED_REACH`]; changes above
//!   1e-4 reach 6 to 9 frames), the same at the start, middle and end of a
//!   283-frame latent. Windowed against whole (chunk 40) differs by at most
//!   0.45 with no overlap, 0.026 with 4 frames, 7e-4 with 8, and 1.2e-6
//!   (float rounding of convolutions over other lengths) from 12 frames on;
//!   [`DEFAULT_OVERLAP`] is 16 for margin;
//! - memory of one decoder run on a 797-frame latent (9.3 s of audio),
//!   VmHWM growth over the loaded session: whole +184 MB; chunk 256 / overlap
//!   16 +101 MB; chunk 128 / 16 +57 MB; chunk 64 / 16 +43 MB. On 1171 frames
//!   (13.6 s) whole +299 MB, chunk 256 +114 MB, chunk 128 +59 MB: windowed
//!   memory stays flat with the sentence's length;
//! - decoder CPU time for those 797 frames (one thread, median of 10):
//!   whole 0.338 s; chunk 256 / overlap 16 0.352 s (+4 %); chunk 128 / 16
//!   0.391 s (+16 %); chunk 256 without overlap 0.333 s (smaller windows are
//!   friendlier to the caches, which pays for part of the overlap).
//!   On a two-lane standalone server under 8 concurrent requests (release
//!   build, default voice) the peak was 264 MB with windows of 128 frames
//!   per run, 313 MB at 192 and 324 MB at 256, against a 300 MB target: hence
//!   windows of 128 per run for a server then. In process, one request alone (a
//!   10 s text on two threads) took 14 % more time per audio-second in
//!   windows of 128 than whole, and the same as whole in windows of 256:
//!   hence a shared budget of 256 frames for the library and the CLI. On a
//!   server alternating between one request and eight at once, the shared
//!   budget gave about 10 % more throughput at one request but a peak 45 MB
//!   higher (349 against 304 MB): the allocator keeps the arena regions of
//!   both window shapes. All of these peaks were taken with ONNX Runtime's
//!   memory pattern on, which kept a planned block per window shape on top
//!   of the tensors' own; without it
//!   ([`crate::runtime::SessionConfig::memory_pattern`]) windows of 256 per
//!   run peaked at 281–305 MB on the same two-lane server (and 210 MB on a
//!   one-lane worker node, against 245 MB at 128 with the pattern), with
//!   less CPU per audio-second than 128: hence 256 per run for a server,
//!   then 192 once runs decoded on the 2-D decoder and in parts (paired
//!   runs: 25 MB lower than 256 at the same throughput; docs/PERFORMANCE.md,
//!   notes part 9).

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicUsize, Ordering};

use vctts_core::{Error, Result};

use super::noise::{Dim, FLOAT, Field, parse, put_bytes, put_varint, string_field, strings, value_info};

/// Name prefix of the decoder's nodes in a Piper export.
pub const DEC_PREFIX: &str = "/dec/";
/// Ops allowed downstream of the decoder (they change no sample).
pub const LAYOUT_OPS: [&str; 5] = ["Unsqueeze", "Squeeze", "Reshape", "Identity", "Flatten"];
/// Farthest a latent frame's influence reaches in the decoder's output,
/// in frames, measured on `en_US-joe-medium` (see the module docs).
pub const MEASURED_REACH: usize = 11;
/// Frames of context on each side of a window's core.
pub const DEFAULT_OVERLAP: usize = 16;
/// The smallest window core a run gets, however many share a budget.
pub const MIN_CHUNK: usize = 64;

/// A Piper graph cut in two: run [`SplitVits::front`] with the whole graph's
/// inputs, then [`SplitVits::decoder`] on its outputs (same names).
#[derive(Debug)]
pub struct SplitVits {
    /// The front model: the whole graph's inputs (those it reads) in, the
    /// latent and the [`SplitVits::extra`] tensors out.
    pub front: Vec<u8>,
    /// The decoder model: the latent and the extra tensors in,
    /// [`SplitVits::output`] out.
    pub decoder: Vec<u8>,
    /// The latent, `[1, C, frames]`: the tensor windows slice.
    pub latent: String,
    /// The other decoder inputs (a speaker embedding), passed whole.
    pub extra: Vec<String>,
    /// The decoder's output: the audio, `hop` samples per latent frame.
    pub output: String,
}

/// One decoder run: the core `[start, end)` it contributes and the context
/// `[lo, hi)` it is given, in latent frames (`lo ≤ start < end ≤ hi`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    pub start: usize,
    pub end: usize,
    pub lo: usize,
    pub hi: usize,
}

impl Window {
    /// Frames the decoder runs on.
    pub fn len(&self) -> usize {
        self.hi - self.lo
    }

    /// Whether the window has no frames (never, from [`windows`]).
    pub fn is_empty(&self) -> bool {
        self.hi == self.lo
    }
}

/// The window that starts at `start` of `frames` latent frames when cores
/// are at most `chunk` frames: the remaining frames are cut into
/// `ceil(rest / chunk)` near-equal cores and this is the first of them, with
/// `overlap` frames of context on both sides clipped to `[0, frames)`.
/// `start` must be below `frames`; a `chunk` of 0 counts as 1.
pub fn next_window(start: usize, frames: usize, chunk: usize, overlap: usize) -> Window {
    let rest = frames - start;
    let n = rest.div_ceil(chunk.max(1));
    let end = start + rest / n;
    Window {
        start,
        end,
        lo: start.saturating_sub(overlap),
        hi: end.saturating_add(overlap).min(frames),
    }
}

/// The windows covering `frames` latent frames: `ceil(frames / chunk)` cores
/// of near-equal length (at most `chunk`, at least 1) that cover every frame
/// once, in order, each with `overlap` frames of context on both sides
/// clipped to `[0, frames)` ([`next_window`] from frame 0 on). One window
/// `[0, frames)` when `frames ≤ chunk`; none for 0 frames. A `chunk` of 0
/// counts as 1.
pub fn windows(frames: usize, chunk: usize, overlap: usize) -> Vec<Window> {
    let mut out = Vec::new();
    let mut start = 0;
    while start < frames {
        let w = next_window(start, frames, chunk, overlap);
        start = w.end;
        out.push(w);
    }
    out
}

/// Decodes `latent` (`[1, channels, frames]`, row-major) window by window:
/// before each window `chunk()` says how many core frames it may have (read
/// again at every window, so a run's windows follow a [`WindowBudget`] as
/// other runs come and go; the frames left are cut as by [`next_window`]);
/// `run(slice, len)` gets each window's `[1, channels, len]` slice and
/// returns its mono audio, a whole multiple `hop` of `len` samples (the same
/// `hop` for every window); the cores' samples are concatenated. A latent
/// that fits one window is passed to `run` once, as is. Errors: a latent
/// whose length is not `channels × frames`, an output that is empty or not a
/// whole multiple of its window, a hop that changes between windows, and
/// whatever `run` returns.
pub fn decode_in_windows(
    latent: &[f32],
    channels: usize,
    frames: usize,
    mut chunk: impl FnMut() -> usize,
    overlap: usize,
    mut run: impl FnMut(&[f32], usize) -> Result<Vec<f32>>,
) -> Result<Vec<f32>> {
    if channels.checked_mul(frames) != Some(latent.len()) {
        return Err(Error::Inference(format!(
            "decoder latent holds {} values, not {channels} channels × {frames} frames",
            latent.len()
        )));
    }
    if frames == 0 {
        return Ok(Vec::new());
    }
    let first = next_window(0, frames, chunk(), overlap);
    if first.end == frames {
        let out = run(latent, frames)?;
        hop_of(out.len(), frames)?;
        return Ok(out);
    }
    let mut stitched = Stitched::new(frames);
    let mut slice = Vec::new();
    let mut w = first;
    loop {
        slice.clear();
        for c in 0..channels {
            slice.extend_from_slice(&latent[c * frames + w.lo..c * frames + w.hi]);
        }
        let out = run(&slice, w.len())?;
        let hop = stitched.hop(hop_of(out.len(), w.len())?, "window")?;
        stitched
            .audio
            .extend_from_slice(&out[(w.start - w.lo) * hop..(w.end - w.lo) * hop]);
        if w.end == frames {
            return Ok(stitched.audio);
        }
        w = next_window(w.end, frames, chunk(), overlap);
    }
}

/// Decodes `latent` (`[1, channels, frames]`) in `parts` near-equal parts
/// at once, each with `overlap` frames of context on both sides (clipped to
/// the sentence, as by [`windows`]): part 0 on the calling thread, the
/// others on the threads of [`part_threads`]. `decode(k, slice, len)` decodes
/// part `k`'s `[1, channels, len]` slice (its core and context) and returns
/// its audio, a whole multiple `hop` of `len`; the parts' cores are
/// concatenated in order. One part (or a latent shorter than `parts`)
/// decodes whole on the calling thread. Errors: those of
/// [`decode_in_windows`] for a part and a hop that differs between parts.
pub fn decode_in_parts(
    latent: &[f32],
    channels: usize,
    frames: usize,
    parts: usize,
    overlap: usize,
    decode: impl Fn(usize, &[f32], usize) -> Result<Vec<f32>> + Sync,
) -> Result<Vec<f32>> {
    if channels.checked_mul(frames) != Some(latent.len()) {
        return Err(Error::Inference(format!(
            "decoder latent holds {} values, not {channels} channels × {frames} frames",
            latent.len()
        )));
    }
    if parts <= 1 || frames < parts {
        return decode(0, latent, frames);
    }
    let cut = windows(frames, frames.div_ceil(parts), overlap);
    let part = |k: usize, w: &Window| -> Result<(usize, Vec<f32>)> {
        let mut slice = Vec::with_capacity(channels * w.len());
        for c in 0..channels {
            slice.extend_from_slice(&latent[c * frames + w.lo..c * frames + w.hi]);
        }
        let out = decode(k, &slice, w.len())?;
        let hop = hop_of(out.len(), w.len())?;
        Ok((hop, out[(w.start - w.lo) * hop..(w.end - w.lo) * hop].to_vec()))
    };
    // Each part's hop and the samples of its core, once decoded.
    type Decoded = Result<(usize, Vec<f32>)>;
    let mut results: Vec<Option<Decoded>> = (0..cut.len()).map(|_| None).collect();
    let (first, others) = results.split_at_mut(1);
    match part_threads() {
        Some(threads) => threads.in_place_scope(|scope| {
            for ((k, w), slot) in cut.iter().enumerate().skip(1).zip(others.iter_mut()) {
                let part = &part;
                scope.spawn(move |_| *slot = Some(part(k, w)));
            }
            first[0] = Some(part(0, &cut[0]));
        }),
        None => {
            for (k, (w, slot)) in cut.iter().zip(results.iter_mut()).enumerate() {
                *slot = Some(part(k, w));
            }
        }
    }
    let results = results
        .into_iter()
        .map(|r| r.unwrap_or_else(|| Err(Error::Inference("a decoder part did not run".into()))));
    let mut stitched = Stitched::new(frames);
    for r in results {
        let (hop, samples) = r?;
        stitched.hop(hop, "part")?;
        stitched.audio.extend_from_slice(&samples);
    }
    Ok(stitched.audio)
}

/// A sentence's audio put together from windows or parts that must all give
/// the same samples per frame.
struct Stitched {
    audio: Vec<f32>,
    frames: usize,
    hop: usize,
}

impl Stitched {
    fn new(frames: usize) -> Self {
        Self {
            audio: Vec::new(),
            frames,
            hop: 0,
        }
    }

    /// Takes the hop `h` of the next window or part (`what`): the first sets
    /// it (and reserves the sentence's samples), a later one must equal it.
    fn hop(&mut self, h: usize, what: &str) -> Result<usize> {
        if self.hop == 0 {
            self.hop = h;
            self.audio.reserve_exact(self.frames * h);
        } else if h != self.hop {
            return Err(Error::Inference(format!(
                "the decoder gave {h} samples per frame on one {what} and {} on another",
                self.hop
            )));
        }
        Ok(h)
    }
}

/// The threads that decode the parts of [`decode_in_parts`] beyond the
/// first: one per core but one (the caller decodes the first), at least
/// one, made on first use and kept for the process (no thread is started
/// per sentence); `None` when they could not be started (the parts then
/// decode in turn on the caller). A part's panic unwinds into the caller.
pub fn part_threads() -> Option<&'static rayon::ThreadPool> {
    static POOL: std::sync::OnceLock<Option<rayon::ThreadPool>> = std::sync::OnceLock::new();
    POOL.get_or_init(|| {
        let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
        rayon::ThreadPoolBuilder::new()
            .num_threads(cores.saturating_sub(1).max(1))
            .thread_name(|i| format!("vctts-decode-part-{i}"))
            .build()
            .map_err(|e| tracing::warn!(error = %e, "no threads for decoder parts; they decode in turn"))
            .ok()
    })
    .as_ref()
}

/// The window sizes of an engine's decoder runs
/// ([`crate::runtime::DecoderWindows`]), read anew before each window
/// ([`decode_in_windows`]). Shared: the runs under way share `frames`
/// latent frames, a run alone gets all of them as its window's core and
/// `n` runs at once `frames / n` each (at least [`MIN_CHUNK`]); the frames
/// in flight stay within the budget while a request alone decodes in fewer,
/// larger windows (less overlap, less time). Per run: every run gets
/// `frames`, whatever else runs.
#[derive(Debug)]
pub struct WindowBudget {
    frames: usize,
    shared: bool,
    decoding: AtomicUsize,
}

impl WindowBudget {
    /// The budget of a setting; `None` for whole sentences (or 0 frames).
    pub fn new(windows: crate::runtime::DecoderWindows) -> Option<Self> {
        use crate::runtime::DecoderWindows;
        let (frames, shared) = match windows {
            DecoderWindows::Shared(f) => (f, true),
            DecoderWindows::PerRun(f) => (f, false),
            DecoderWindows::Whole => return None,
        };
        (frames > 0).then(|| Self {
            frames,
            shared,
            decoding: AtomicUsize::new(0),
        })
    }

    /// The frames of the budget.
    pub fn frames(&self) -> usize {
        self.frames
    }

    /// Counts one more run under way until the returned share is dropped.
    pub fn enter(&self) -> BudgetShare<'_> {
        self.decoding.fetch_add(1, Ordering::AcqRel);
        BudgetShare { budget: self }
    }

    /// Runs under way now (each counted from [`WindowBudget::enter`] until
    /// its share is dropped).
    pub fn running(&self) -> usize {
        self.decoding.load(Ordering::Acquire)
    }

    /// Core frames per window for each of the runs under way now.
    pub fn chunk(&self) -> usize {
        if !self.shared {
            return self.frames;
        }
        let n = self.decoding.load(Ordering::Acquire).max(1);
        (self.frames / n).max(MIN_CHUNK.min(self.frames))
    }
}

/// One run's place in a [`WindowBudget`] (see [`WindowBudget::enter`]).
#[derive(Debug)]
pub struct BudgetShare<'a> {
    budget: &'a WindowBudget,
}

impl BudgetShare<'_> {
    /// The core frames this run's next window may have.
    pub fn chunk(&self) -> usize {
        self.budget.chunk()
    }
}

impl Drop for BudgetShare<'_> {
    fn drop(&mut self) {
        self.budget.decoding.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Samples per frame of a decoder output, or an error if it is empty or not
/// a whole multiple of the frames.
fn hop_of(samples: usize, frames: usize) -> Result<usize> {
    if samples == 0 || samples % frames != 0 {
        return Err(Error::Inference(format!(
            "the decoder gave {samples} samples for {frames} latent frames, not a whole number per frame"
        )));
    }
    Ok(samples / frames)
}

// ------------------------------------------------------------ the split

struct Node<'a> {
    raw: &'a [u8],
    name: &'a str,
    op: &'a str,
    inputs: Vec<&'a str>,
    outputs: Vec<&'a str>,
}

/// The model cut into front and decoder (see the module docs); `None` when
/// the graph has no decoder or does not fit the invariants, or the bytes
/// cannot be read.
pub fn split_decoder(model: &[u8]) -> Option<SplitVits> {
    let fields = parse(model)?;
    let mut graphs = fields.iter().filter(|f| f.number == 7 && f.wire == 2);
    let graph = parse(graphs.next()?.payload)?;
    if graphs.next().is_some() {
        return None;
    }
    // Quantization annotations and sparse initializers: not in Piper voices.
    if graph.iter().any(|f| f.number == 14 || f.number == 15) {
        return None;
    }
    let mut nodes = Vec::new();
    for f in graph.iter().filter(|f| f.number == 1 && f.wire == 2) {
        let n = parse(f.payload)?;
        // A subgraph attribute (If, Loop) may read outer tensors by name.
        for a in n.iter().filter(|a| a.number == 5 && a.wire == 2) {
            if parse(a.payload)?.iter().any(|x| x.number == 6 || x.number == 11) {
                return None;
            }
        }
        nodes.push(Node {
            raw: f.raw,
            name: string_field(&n, 3).unwrap_or(""),
            op: string_field(&n, 4)?,
            inputs: strings(&n, 1),
            outputs: strings(&n, 2),
        });
    }
    let named = |number: u64, name_field: u64| -> Option<Vec<(&[u8], &str)>> {
        graph
            .iter()
            .filter(|f| f.number == number && f.wire == 2)
            .map(|f| Some((f.raw, string_field(&parse(f.payload)?, name_field)?)))
            .collect()
    };
    let initializers = named(5, 8)?;
    let graph_inputs = named(11, 1)?;
    let graph_outputs = named(12, 1)?;
    let value_info = named(13, 1)?;
    let init_names: HashSet<&str> = initializers.iter().map(|(_, n)| *n).collect();

    let is_dec: Vec<bool> = nodes.iter().map(|n| n.name.starts_with(DEC_PREFIX)).collect();
    if !is_dec.contains(&true) {
        return None;
    }
    let mut producer: HashMap<&str, usize> = HashMap::new();
    for (i, n) in nodes.iter().enumerate() {
        for o in n.outputs.iter().filter(|o| !o.is_empty()) {
            if producer.insert(o, i).is_some() {
                return None;
            }
        }
    }
    let dec_outputs: HashSet<&str> = nodes
        .iter()
        .zip(&is_dec)
        .filter(|(_, d)| **d)
        .flat_map(|(n, _)| n.outputs.iter().copied())
        .collect();
    // Downstream of the decoder: to a fixed point, whatever the node order.
    let mut tainted = dec_outputs.clone();
    let mut downstream = vec![false; nodes.len()];
    loop {
        let mut changed = false;
        for (i, n) in nodes.iter().enumerate() {
            if is_dec[i] || downstream[i] || !n.inputs.iter().any(|x| tainted.contains(x)) {
                continue;
            }
            if !LAYOUT_OPS.contains(&n.op) {
                return None;
            }
            downstream[i] = true;
            tainted.extend(n.outputs.iter().copied());
            changed = true;
        }
        if !changed {
            break;
        }
    }
    // The graph's outputs all come from the decoder, and nothing after the
    // decoder feeds it back.
    if graph_outputs.iter().any(|(_, n)| !tainted.contains(n)) {
        return None;
    }
    let after: HashSet<&str> = tainted.difference(&dec_outputs).copied().collect();
    let read_after: HashSet<&str> = nodes
        .iter()
        .zip(&downstream)
        .filter(|(_, d)| **d)
        .flat_map(|(n, _)| n.inputs.iter().copied())
        .chain(graph_outputs.iter().map(|(_, n)| *n))
        .filter(|x| dec_outputs.contains(x))
        .collect();
    let [output] = read_after.into_iter().collect::<Vec<_>>()[..] else {
        return None;
    };

    // The decoder part: its nodes and the Constant nodes they read.
    let mut dec_read: HashSet<&str> = HashSet::new();
    for (n, _) in nodes.iter().zip(&is_dec).filter(|(_, d)| **d) {
        if n.inputs.iter().any(|x| after.contains(x)) {
            return None;
        }
        dec_read.extend(n.inputs.iter().copied());
    }
    let in_decoder: Vec<bool> = nodes
        .iter()
        .enumerate()
        .map(|(i, n)| {
            is_dec[i]
                || (n.op == "Constant"
                    && n.inputs.is_empty()
                    && n.outputs.iter().any(|o| dec_read.contains(o)))
        })
        .collect();
    let dec_produced: HashSet<&str> = nodes
        .iter()
        .zip(&in_decoder)
        .filter(|(_, d)| **d)
        .flat_map(|(n, _)| n.outputs.iter().copied())
        .collect();
    let mut cut: Vec<&str> = Vec::new();
    let mut latent = None;
    for (n, _) in nodes.iter().zip(&in_decoder).filter(|(_, d)| **d) {
        for (k, x) in n.inputs.iter().enumerate() {
            if x.is_empty() || dec_produced.contains(x) || init_names.contains(x) {
                continue;
            }
            // Produced by a front node (a graph input is not supported).
            let p = *producer.get(x)?;
            if in_decoder[p] || downstream[p] {
                return None;
            }
            if !cut.contains(x) {
                cut.push(x);
            }
            if k == 0 && latent.is_none() && n.name.starts_with("/dec/conv_pre") {
                latent = Some(*x);
            }
        }
    }
    let latent = latent.or_else(|| cut.first().copied())?;
    // A cut tensor that value_info declares non-float cannot be declared float.
    for (raw, name) in &value_info {
        if cut.contains(name) && elem_type(raw).is_some_and(|t| t != 1) {
            return None;
        }
    }

    // The front part: the nodes the cut depends on.
    let mut in_front = vec![false; nodes.len()];
    let mut stack: Vec<&str> = cut.clone();
    while let Some(x) = stack.pop() {
        if let Some(&p) = producer.get(x) {
            if !in_front[p] {
                if is_dec[p] || downstream[p] {
                    return None;
                }
                in_front[p] = true;
                stack.extend(nodes[p].inputs.iter().copied().filter(|x| !x.is_empty()));
            }
        }
    }

    let front = build_part(
        &fields,
        &graph,
        &Part {
            nodes: &nodes,
            keep: &in_front,
            initializers: &initializers,
            graph_inputs: &graph_inputs,
            value_info: &value_info,
            new_inputs: &[],
            new_outputs: &cut.iter().map(|c| rank3_float(c)).collect::<Vec<_>>(),
            declared: &cut,
        },
    );
    let decoder = build_part(
        &fields,
        &graph,
        &Part {
            nodes: &nodes,
            keep: &in_decoder,
            initializers: &initializers,
            graph_inputs: &graph_inputs,
            value_info: &value_info,
            new_inputs: &cut.iter().map(|c| rank3_float(c)).collect::<Vec<_>>(),
            new_outputs: &[float_info(output)],
            declared: &[output],
        },
    );
    Some(SplitVits {
        front,
        decoder,
        latent: latent.to_string(),
        extra: cut
            .iter()
            .filter(|c| **c != latent)
            .map(|c| c.to_string())
            .collect(),
        output: output.to_string(),
    })
}

/// What one part keeps of the whole graph.
struct Part<'p, 'a> {
    nodes: &'p [Node<'a>],
    keep: &'p [bool],
    initializers: &'p [(&'a [u8], &'a str)],
    graph_inputs: &'p [(&'a [u8], &'a str)],
    value_info: &'p [(&'a [u8], &'a str)],
    /// ValueInfoProto bytes of the part's own inputs and outputs.
    new_inputs: &'p [Vec<u8>],
    new_outputs: &'p [Vec<u8>],
    /// Names of the tensors the part declares as inputs or outputs.
    declared: &'p [&'a str],
}

fn build_part(model: &[Field<'_>], graph: &[Field<'_>], part: &Part<'_, '_>) -> Vec<u8> {
    let kept = || {
        part.nodes
            .iter()
            .zip(part.keep)
            .filter(|(_, k)| **k)
            .map(|(n, _)| n)
    };
    let read: HashSet<&str> = kept().flat_map(|n| n.inputs.iter().copied()).collect();
    let produced: HashSet<&str> = kept().flat_map(|n| n.outputs.iter().copied()).collect();
    let new = |number: u64, info: &[u8]| {
        let mut b = Vec::with_capacity(info.len() + 8);
        put_bytes(&mut b, number, info);
        Cow::Owned(b)
    };
    // Graph fields in the usual order: nodes, the rest, initializers,
    // inputs, outputs, value_info.
    let mut pieces: Vec<Cow<'_, [u8]>> = kept().map(|n| Cow::Borrowed(n.raw)).collect();
    for f in graph {
        if !matches!(f.number, 1 | 5 | 11 | 12 | 13) {
            pieces.push(Cow::Borrowed(f.raw));
        }
    }
    for (raw, name) in part.initializers {
        if read.contains(name) {
            pieces.push(Cow::Borrowed(raw));
        }
    }
    for (raw, name) in part.graph_inputs {
        if read.contains(name) && !part.declared.contains(name) {
            pieces.push(Cow::Borrowed(raw));
        }
    }
    pieces.extend(part.new_inputs.iter().map(|i| new(11, i)));
    pieces.extend(part.new_outputs.iter().map(|o| new(12, o)));
    for (raw, name) in part.value_info {
        if produced.contains(name) && !part.declared.contains(name) {
            pieces.push(Cow::Borrowed(raw));
        }
    }
    let graph_len: usize = pieces.iter().map(|p| p.len()).sum();
    let mut header = Vec::with_capacity(12);
    put_varint(&mut header, (7 << 3) | 2);
    put_varint(&mut header, graph_len as u64);
    let total: usize = model
        .iter()
        .map(|f| {
            if f.number == 7 {
                header.len() + graph_len
            } else {
                f.raw.len()
            }
        })
        .sum();
    let mut out = Vec::with_capacity(total);
    for f in model {
        if f.number == 7 {
            out.extend_from_slice(&header);
            for p in &pieces {
                out.extend_from_slice(p);
            }
        } else {
            out.extend_from_slice(f.raw);
        }
    }
    debug_assert_eq!(out.len(), total);
    out
}

/// `elem_type` of a ValueInfoProto's tensor type, if it says.
fn elem_type(value_info: &[u8]) -> Option<u64> {
    let info = parse(value_info)?;
    let body = info.iter().find(|f| f.number == 2 && f.wire == 2)?.payload;
    let ty = parse(body)?;
    let tensor = parse(ty.iter().find(|f| f.number == 1 && f.wire == 2)?.payload)?;
    tensor
        .iter()
        .find(|f| f.number == 1 && f.wire == 0)
        .map(|f| f.value)
}

/// A ValueInfoProto: float tensor named `name`, no shape.
fn float_info(name: &str) -> Vec<u8> {
    value_info(name, FLOAT, None)
}

/// A ValueInfoProto: float tensor `[name_d0, name_d1, name_d2]` (symbolic).
fn rank3_float(name: &str) -> Vec<u8> {
    let dims: Vec<Dim> = (0..3).map(|d| Dim::Param(format!("{name}_d{d}"))).collect();
    value_info(name, FLOAT, Some(&dims))
}

#[cfg(test)]
mod tests {
    use super::super::noise::{SEED_INPUT, put_varint_field, seed_random_nodes, tensor_f32, tensor_i64};
    use super::*;
    use crate::runtime::DecoderWindows;
    use crate::runtime::SessionConfig;
    use ort::value::Tensor;

    // ------------------------------------------------------- windows

    #[test]
    fn windows_cover_every_frame_once_with_clipped_context() {
        for frames in 0..70 {
            for chunk in [0, 1, 2, 7, 16, 40, 69, 100] {
                for overlap in [0, 1, 5, 33] {
                    let plan = windows(frames, chunk, overlap);
                    let mut next = 0;
                    for w in &plan {
                        assert_eq!(w.start, next, "{frames} {chunk} {overlap}: {plan:?}");
                        assert!(w.start < w.end && w.end - w.start <= chunk.max(1));
                        assert_eq!(w.lo, w.start.saturating_sub(overlap));
                        assert_eq!(w.hi, (w.end + overlap).min(frames));
                        assert!(!w.is_empty() && w.len() <= chunk.max(1) + 2 * overlap);
                        next = w.end;
                    }
                    assert_eq!(next, frames);
                    assert_eq!(plan.len(), frames.div_ceil(chunk.max(1)));
                    if frames > 0 && frames <= chunk {
                        assert_eq!(
                            plan,
                            [Window {
                                start: 0,
                                end: frames,
                                lo: 0,
                                hi: frames
                            }]
                        );
                    }
                }
            }
        }
        assert!(windows(0, 40, 8).is_empty());
        assert_eq!(
            windows(1, 40, 8),
            [Window {
                start: 0,
                end: 1,
                lo: 0,
                hi: 1
            }]
        );
        assert_eq!(
            windows(1, 0, 8),
            [Window {
                start: 0,
                end: 1,
                lo: 0,
                hi: 1
            }]
        );
        // Cores of near-equal length: 100 frames in chunks of 40 = 33 + 33 + 34.
        let cores: Vec<usize> = windows(100, 40, 4).iter().map(|w| w.end - w.start).collect();
        assert_eq!(cores, [33, 33, 34]);
    }

    /// A fake decoder: each output sample depends on the frames within
    /// `reach` of its own (zero beyond the latent's edges), `hop` per frame.
    /// `n` values cycling through `-(m / 2)..=m - 1 - m / 2` in steps of
    /// `step` (mod `m`): a latent whose every window differs.
    fn ramp_latent(n: usize, step: usize, m: usize) -> Vec<f32> {
        (0..n).map(|i| ((i * step) % m) as f32 - (m / 2) as f32).collect()
    }

    fn fake_decoder(latent: &[f32], channels: usize, len: usize, hop: usize, reach: usize) -> Vec<f32> {
        let mut out = Vec::with_capacity(len * hop);
        for t in 0..len {
            for k in 0..hop {
                let mut v = k as f32 * 0.01;
                for c in 0..channels {
                    for s in t.saturating_sub(reach)..(t + reach + 1).min(len) {
                        v += latent[c * len + s] * (1.0 + (s + reach - t) as f32);
                    }
                }
                out.push(v);
            }
        }
        out
    }

    #[test]
    fn stitched_windows_equal_the_whole_run() {
        let (channels, frames, hop, reach) = (3, 97, 4, 2);
        let latent = ramp_latent(channels * frames, 37, 11);
        let whole = fake_decoder(&latent, channels, frames, hop, reach);
        let mut calls = Vec::new();
        let stitched = decode_in_windows(
            &latent,
            channels,
            frames,
            || 20,
            reach,
            |s, len| {
                calls.push(len);
                assert_eq!(s.len(), channels * len);
                Ok(fake_decoder(s, channels, len, hop, reach))
            },
        )
        .unwrap();
        assert_eq!(stitched, whole);
        assert_eq!(calls.len(), 5);
        assert!(calls.iter().all(|&l| l <= 20 + 2 * reach), "{calls:?}");
        // Too little context differs at the seams: the comparison can fail.
        let short = decode_in_windows(
            &latent,
            channels,
            frames,
            || 20,
            reach - 1,
            |s, len| Ok(fake_decoder(s, channels, len, hop, reach)),
        )
        .unwrap();
        assert_ne!(short, whole);
        // A latent that fits runs once, whole.
        let mut runs = 0;
        let once = decode_in_windows(
            &latent,
            channels,
            frames,
            || frames,
            8,
            |s, len| {
                runs += 1;
                assert_eq!((s.as_ptr(), len), (latent.as_ptr(), frames));
                Ok(fake_decoder(s, channels, len, hop, reach))
            },
        )
        .unwrap();
        assert_eq!((once, runs), (whole, 1));
        let empty = decode_in_windows(&[], channels, 0, || 20, 2, |_, _| unreachable!()).unwrap();
        assert!(empty.is_empty());
    }

    #[test]
    fn parts_decoded_at_once_equal_the_whole_run() {
        let (channels, frames, hop, reach) = (3, 97, 4, 2);
        let latent = ramp_latent(channels * frames, 37, 11);
        let whole = fake_decoder(&latent, channels, frames, hop, reach);
        let threads = parking_lot::Mutex::new(Vec::new());
        let parts = decode_in_parts(&latent, channels, frames, 3, reach, |k, s, len| {
            threads.lock().push((k, std::thread::current().id(), len));
            assert_eq!(s.len(), channels * len);
            Ok(fake_decoder(s, channels, len, hop, reach))
        })
        .unwrap();
        assert_eq!(parts, whole);
        let mut seen = threads.into_inner();
        seen.sort_by_key(|(k, ..)| *k);
        assert_eq!(seen.iter().map(|(k, ..)| *k).collect::<Vec<_>>(), [0, 1, 2]);
        // Part 0 on the calling thread, the others on the part threads.
        assert_eq!(seen[0].1, std::thread::current().id());
        assert!(seen[1..].iter().all(|(_, t, _)| *t != seen[0].1), "{seen:?}");
        assert!(seen.iter().all(|(_, _, len)| *len <= 33 + 2 * reach), "{seen:?}");
        // Too little context shows at the seams: the comparison can fail.
        let short = decode_in_parts(&latent, channels, frames, 3, reach - 1, |_, s, len| {
            Ok(fake_decoder(s, channels, len, hop, reach))
        })
        .unwrap();
        assert_ne!(short, whole);
        // One part: the latent as it is, on the calling thread.
        let once = decode_in_parts(&latent, channels, frames, 1, reach, |k, s, len| {
            assert_eq!((k, s.as_ptr(), len), (0, latent.as_ptr(), frames));
            Ok(fake_decoder(s, channels, len, hop, reach))
        })
        .unwrap();
        assert_eq!(once, whole);
        // A part's error, a hop that differs, a latent of the wrong size.
        let failed = decode_in_parts(&latent, channels, frames, 2, reach, |k, s, len| {
            if k == 1 {
                Err(Error::Inference("part 1 failed".into()))
            } else {
                Ok(fake_decoder(s, channels, len, hop, reach))
            }
        });
        assert!(failed.unwrap_err().to_string().contains("part 1 failed"));
        let uneven = decode_in_parts(&latent, channels, frames, 2, reach, |k, s, len| {
            Ok(fake_decoder(s, channels, len, hop + k, reach))
        });
        assert!(uneven.unwrap_err().to_string().contains("samples per frame"));
        assert!(decode_in_parts(&latent[1..], channels, frames, 2, reach, |_, _, _| Ok(vec![])).is_err());
    }

    #[test]
    fn windows_that_change_size_mid_run_still_equal_the_whole_run() {
        let (channels, frames, hop, reach) = (2, 601, 3, 3);
        let latent = ramp_latent(channels * frames, 29, 13);
        let whole = fake_decoder(&latent, channels, frames, hop, reach);
        // Another run joins after the first window and leaves after the third.
        let budget = WindowBudget::new(DecoderWindows::Shared(256)).unwrap();
        let me = budget.enter();
        let mut other = None;
        let mut windows = 0;
        let mut cores = Vec::new();
        let stitched = decode_in_windows(
            &latent,
            channels,
            frames,
            || {
                windows += 1;
                match windows {
                    2 => other = Some(budget.enter()),
                    4 => other = None,
                    _ => {}
                }
                me.chunk()
            },
            reach,
            |s, len| {
                cores.push(len);
                Ok(fake_decoder(s, channels, len, hop, reach))
            },
        )
        .unwrap();
        assert_eq!(stitched, whole);
        assert!(other.is_none());
        // Cores of at most 256 alone (601 = 200 + 401), 128 while shared
        // (100, 100), then 256 again: the last 201 in one; context on top.
        assert_eq!(
            cores,
            [200 + reach, 100 + 2 * reach, 100 + 2 * reach, 201 + reach]
        );
    }

    #[test]
    fn a_window_budget_is_shared_by_the_runs_decoding() {
        let b = WindowBudget::new(DecoderWindows::Shared(256)).unwrap();
        assert_eq!(b.chunk(), 256, "nobody decoding: a run alone would get it all");
        let first = b.enter();
        assert_eq!(first.chunk(), 256);
        let second = b.enter();
        assert_eq!((first.chunk(), second.chunk()), (128, 128));
        let third = b.enter();
        assert_eq!(third.chunk(), 85);
        let more: Vec<_> = (0..5).map(|_| b.enter()).collect();
        assert_eq!(first.chunk(), MIN_CHUNK, "never below the smallest window");
        drop((more, second, third));
        assert_eq!(first.chunk(), 256, "alone again");
        drop(first);
        let small = WindowBudget::new(DecoderWindows::Shared(10)).unwrap();
        assert_eq!(
            small.enter().chunk(),
            10,
            "a budget below the minimum is the window"
        );
        // Per run: the same windows whatever else runs.
        let fixed = WindowBudget::new(DecoderWindows::PerRun(128)).unwrap();
        let runs: Vec<_> = (0..3).map(|_| fixed.enter()).collect();
        assert!(runs.iter().all(|r| r.chunk() == 128));
        assert!(WindowBudget::new(DecoderWindows::Whole).is_none());
        assert!(WindowBudget::new(DecoderWindows::Shared(0)).is_none());
    }

    #[test]
    fn bad_decoder_outputs_are_errors() {
        let latent = vec![0.5f32; 2 * 50];
        let code = |r: Result<Vec<f32>>| match r {
            Err(e @ Error::Inference(_)) => e.to_string(),
            other => panic!("{other:?}"),
        };
        // Not a whole multiple of the window.
        let e = code(decode_in_windows(
            &latent,
            2,
            50,
            || 10,
            3,
            |_, len| Ok(vec![0.0; len * 4 + 1]),
        ));
        assert!(e.contains("whole number"), "{e}");
        // Empty, on the single-window path too.
        code(decode_in_windows(
            &latent,
            2,
            50,
            || 100,
            3,
            |_, _| Ok(Vec::new()),
        ));
        // The hop changes between windows.
        let mut first = true;
        code(decode_in_windows(
            &latent,
            2,
            50,
            || 10,
            3,
            |_, len| {
                let hop = if first { 4 } else { 2 };
                first = false;
                Ok(vec![0.0; len * hop])
            },
        ));
        // A latent of the wrong size, and run's own error.
        code(decode_in_windows(
            &latent,
            3,
            50,
            || 10,
            3,
            |_, len| Ok(vec![0.0; len]),
        ));
        code(decode_in_windows(
            &latent,
            2,
            50,
            || 10,
            3,
            |_, _| Err(Error::Inference("boom".into())),
        ));
    }

    // ------------------------------------------------------- tiny graphs

    fn named_node(name: &str, op: &str, inputs: &[&str], outputs: &[&str]) -> Vec<u8> {
        let mut n = Vec::new();
        for i in inputs {
            put_bytes(&mut n, 1, i.as_bytes());
        }
        for o in outputs {
            put_bytes(&mut n, 2, o.as_bytes());
        }
        put_bytes(&mut n, 3, name.as_bytes());
        put_bytes(&mut n, 4, op.as_bytes());
        n
    }

    fn named(mut tensor: Vec<u8>, name: &str) -> Vec<u8> {
        put_bytes(&mut tensor, 8, name.as_bytes());
        tensor
    }

    /// A model of `nodes` (name, op, inputs, outputs) with input `x` (float
    /// `[1,2,n]`), output `y`, initializers `w` (2.0) and `axes` ([1]).
    fn tiny(nodes: &[(&str, &str, &[&str], &[&str])]) -> Vec<u8> {
        let mut graph = Vec::new();
        for (name, op, ins, outs) in nodes {
            put_bytes(&mut graph, 1, &named_node(name, op, ins, outs));
        }
        put_bytes(&mut graph, 2, b"tiny");
        put_bytes(&mut graph, 5, &named(tensor_f32(&[], &[2.0]), "w"));
        put_bytes(&mut graph, 5, &named(tensor_i64(&[1], &[1]), "axes"));
        put_bytes(&mut graph, 11, &rank3_float("x"));
        put_bytes(&mut graph, 12, &float_info("y"));
        let mut opset = Vec::new();
        put_bytes(&mut opset, 1, b"");
        put_varint_field(&mut opset, 2, 15);
        let mut model = Vec::new();
        put_varint_field(&mut model, 1, 8); // ir_version
        put_bytes(&mut model, 2, b"tiny-producer");
        put_bytes(&mut model, 7, &graph);
        put_bytes(&mut model, 8, &opset);
        model
    }

    /// Piper's shape: a front, a decoder reading the latent `h`, the
    /// embedding `g` and the weight `w`, then an Unsqueeze to the output.
    const PIPER_LIKE: &[(&str, &str, &[&str], &[&str])] = &[
        ("/enc/Relu", "Relu", &["x"], &["h"]),
        ("/emb/Neg", "Neg", &["x"], &["g"]),
        ("/unused/Abs", "Abs", &["x"], &["dead"]),
        ("/dec/conv_pre/Mul", "Mul", &["h", "w"], &["a"]),
        ("/dec/Add", "Add", &["a", "g"], &["b"]),
        ("/dec/Tanh", "Tanh", &["b"], &["t"]),
        ("/Unsqueeze_11", "Unsqueeze", &["t", "axes"], &["u"]),
        ("/Squeeze", "Squeeze", &["u", "axes"], &["y"]),
    ];

    fn graph_of(model: &[u8]) -> Vec<Field<'_>> {
        let fields = parse(model).unwrap();
        let g = fields.iter().find(|f| f.number == 7).unwrap().payload;
        parse(g).unwrap()
    }

    /// (node names, initializer names, input names, output names).
    fn summary(model: &[u8]) -> [Vec<String>; 4] {
        let graph = graph_of(model);
        let names = |number: u64, name_field: u64| -> Vec<String> {
            graph
                .iter()
                .filter(|f| f.number == number)
                .map(|f| {
                    string_field(&parse(f.payload).unwrap(), name_field)
                        .unwrap_or("")
                        .to_string()
                })
                .collect()
        };
        [names(1, 3), names(5, 8), names(11, 1), names(12, 1)]
    }

    fn session(model: &[u8], name: &str) -> ort::session::Session {
        crate::runtime::init(&Default::default()).expect("ONNX Runtime: run scripts/setup.sh");
        let config = SessionConfig {
            intra_threads: 1,
            ..SessionConfig::default()
        };
        crate::runtime::load_session_from_memory(model, name, &config).unwrap()
    }

    fn f32_out(out: &ort::session::SessionOutputs<'_>, name: &str) -> (Vec<i64>, Vec<f32>) {
        let (shape, data) = out[name].try_extract_tensor::<f32>().unwrap();
        (shape.to_vec(), data.to_vec())
    }

    #[test]
    fn a_piper_shaped_graph_splits_and_runs_the_same() {
        let model = tiny(PIPER_LIKE);
        let split = split_decoder(&model).expect("splits");
        assert_eq!((split.latent.as_str(), split.output.as_str()), ("h", "t"));
        assert_eq!(split.extra, ["g"]);
        let [nodes, inits, inputs, outputs] = summary(&split.front);
        assert_eq!(nodes, ["/enc/Relu", "/emb/Neg"]);
        assert!(inits.is_empty(), "{inits:?}");
        assert_eq!(
            (inputs, outputs),
            (vec!["x".to_string()], vec!["h".to_string(), "g".to_string()])
        );
        let [nodes, inits, inputs, outputs] = summary(&split.decoder);
        assert_eq!(nodes, ["/dec/conv_pre/Mul", "/dec/Add", "/dec/Tanh"]);
        assert_eq!(inits, ["w"]);
        assert_eq!(
            (inputs, outputs),
            (vec!["h".to_string(), "g".to_string()], vec!["t".to_string()])
        );
        // Model-level fields are kept.
        for part in [&split.front, &split.decoder] {
            let fields = parse(part).unwrap();
            let kept: Vec<u64> = fields.iter().map(|f| f.number).collect();
            assert_eq!(kept, [1, 2, 7, 8]);
        }

        let n = 6;
        let x: Vec<f32> = (0..2 * n).map(|i| i as f32 * 0.3 - 1.5).collect();
        let input = || Tensor::from_array(([1usize, 2, n], x.clone())).unwrap();
        let mut whole = session(&model, "whole");
        let out = whole.run(ort::inputs!["x" => input()]).unwrap();
        let (_, expected) = f32_out(&out, "y");
        let mut front = session(&split.front, "front");
        let out = front.run(ort::inputs!["x" => input()]).unwrap();
        let (hs, h) = f32_out(&out, "h");
        let (gs, g) = f32_out(&out, "g");
        let mut decoder = session(&split.decoder, "decoder");
        let h = Tensor::from_array((hs.iter().map(|&d| d as usize).collect::<Vec<_>>(), h)).unwrap();
        let g = Tensor::from_array((gs.iter().map(|&d| d as usize).collect::<Vec<_>>(), g)).unwrap();
        let out = decoder.run(ort::inputs!["h" => h, "g" => g]).unwrap();
        let (shape, audio) = f32_out(&out, "t");
        assert_eq!(shape, [1, 2, n as i64]);
        assert_eq!(audio, expected);
    }

    #[test]
    fn graphs_that_do_not_fit_are_not_split() {
        // No decoder nodes.
        assert!(split_decoder(&tiny(&[("/enc/Relu", "Relu", &["x"], &["y"])])).is_none());
        // A front node reads a decoder output (not a layout op).
        let mut post = PIPER_LIKE.to_vec();
        post[7] = ("/post/Mul", "Mul", &["u", "w"], &["y"]);
        assert!(split_decoder(&tiny(&post)).is_none());
        // The decoder reads a tensor nothing produces.
        let mut orphan = PIPER_LIKE.to_vec();
        orphan[4] = ("/dec/Add", "Add", &["a", "nowhere"], &["b"]);
        assert!(split_decoder(&tiny(&orphan)).is_none());
        // The decoder reads a graph input directly.
        let mut direct = PIPER_LIKE.to_vec();
        direct[4] = ("/dec/Add", "Add", &["a", "x"], &["b"]);
        assert!(split_decoder(&tiny(&direct)).is_none());
        // Two decoder outputs leave the decoder.
        let mut two = PIPER_LIKE.to_vec();
        two[7] = ("/Concat", "Identity", &["a"], &["y"]);
        assert!(split_decoder(&tiny(&two)).is_none());
        // Not a model.
        assert!(split_decoder(b"\xff\xff").is_none());
        assert!(split_decoder(&[]).is_none());
        // The unchanged shape still splits (the cases above are the cause).
        assert!(split_decoder(&tiny(PIPER_LIKE)).is_some());
    }

    // ------------------------------------------------------- the real voice

    fn joe() -> Vec<u8> {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../models/openvoice/base/en_US-joe-medium.onnx");
        std::fs::read(path).expect("the default voice: run scripts/setup.sh")
    }

    #[test]
    fn the_default_voice_decodes_the_same_whole_split_and_windowed() {
        let (seeded, _) = seed_random_nodes(&joe()).expect("seedable");
        let split = split_decoder(&seeded).expect("the default voice splits");
        assert_eq!(split.latent, "/Mul_7_output_0");
        assert!(split.extra.is_empty(), "{:?}", split.extra);
        assert_eq!(split.output, "/dec/Tanh_output_0");
        let [front_nodes, front_inits, front_inputs, _] = summary(&split.front);
        let [dec_nodes, dec_inits, ..] = summary(&split.decoder);
        assert_eq!(front_inputs, ["input", "input_lengths", "scales", SEED_INPUT]);
        assert_eq!(dec_nodes.len(), 67);
        assert!(front_nodes.iter().all(|n| !n.starts_with(DEC_PREFIX)));
        assert!(
            front_inits.iter().all(|i| !dec_inits.contains(i)),
            "a weight stored twice"
        );
        // No weight is lost or copied: the parts together are the model's size, give or take the graph's framing.
        let whole_len = seeded.len() as i64;
        let parts_len = (split.front.len() + split.decoder.len()) as i64;
        assert!(
            (parts_len - whole_len).abs() < 64 * 1024,
            "{parts_len} vs {whole_len}"
        );

        // Ids from the voice's range: ~60 phonemes, several seconds.
        let mut ids = vec![1i64, 0];
        for k in 0..60 {
            ids.extend([14 + (k * 7) % 40, 0]);
        }
        ids.push(2);
        let n = ids.len();
        let inputs = || {
            ort::inputs![
                "input" => Tensor::from_array(([1usize, n], ids.clone())).unwrap(),
                "input_lengths" => Tensor::from_array(([1usize], vec![n as i64])).unwrap(),
                "scales" => Tensor::from_array(([3usize], vec![0.667f32, 1.0, 0.8])).unwrap(),
                SEED_INPUT => Tensor::from_array(([1usize], vec![12_345i64])).unwrap(),
            ]
        };
        let mut whole = session(&seeded, "whole");
        let out = whole.run(inputs()).unwrap();
        let (_, expected) = f32_out(&out, "output");
        drop(out);
        let mut front = session(&split.front, "front");
        let out = front.run(inputs()).unwrap();
        let (shape, latent) = f32_out(&out, &split.latent);
        drop(out);
        let (channels, frames) = (shape[1] as usize, shape[2] as usize);
        assert_eq!((shape[0], channels), (1, 192));
        assert!(frames > 3 * 40, "{frames} frames");
        let mut decoder = session(&split.decoder, "decoder");
        let mut run = |slice: &[f32], len: usize| -> Result<Vec<f32>> {
            let t = Tensor::from_array(([1usize, channels, len], slice.to_vec())).unwrap();
            let out = decoder.run(ort::inputs![split.latent.as_str() => t]).unwrap();
            Ok(f32_out(&out, &split.output).1)
        };
        let hop = expected.len() / frames;
        assert_eq!(expected.len(), hop * frames);
        assert_eq!(hop, 256);
        let at_once = run(&latent, frames).unwrap();
        assert_eq!(at_once, expected, "front + decoder = the whole graph");
        let windowed =
            decode_in_windows(&latent, channels, frames, || 40, DEFAULT_OVERLAP, &mut run).unwrap();
        assert_eq!(windowed.len(), expected.len());
        let diff = crate::audio::max_abs_diff(&windowed, &expected);
        eprintln!(
            "{frames} frames, windowed (chunk 40, overlap {DEFAULT_OVERLAP}) vs whole: max |diff| {diff:e}"
        );
        assert!(diff <= WINDOW_TOLERANCE, "windowed decoder differs by {diff}");
        // Less context than the decoder's reach shows at the seams: the
        // comparison above can fail.
        let short = decode_in_windows(&latent, channels, frames, || 40, 2, &mut run).unwrap();
        let diff = crate::audio::max_abs_diff(&short, &expected);
        assert!(diff > 1e-3, "overlap 2 differs by only {diff}");
    }

    /// Largest sample difference allowed between windowed and whole decoding.
    const WINDOW_TOLERANCE: f32 = 1e-5;

    #[test]
    fn the_unseeded_voice_splits_the_same_way() {
        let split = split_decoder(&joe()).expect("the voice file splits");
        assert_eq!(split.latent, "/Mul_7_output_0");
        assert_eq!(split.output, "/dec/Tanh_output_0");
        let [_, _, inputs, _] = summary(&split.front);
        assert_eq!(inputs, ["input", "input_lengths", "scales"]);
        session(&split.front, "front");
        session(&split.decoder, "decoder");
    }
}
