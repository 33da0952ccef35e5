//! The OpenVoice v2 tone color converter, in the layout of the public ONNX
//! export (`converter/` folder):
//! - `tone_color_extract_model.onnx`: `input` f32 [1,T,513] (the linear
//!   spectrogram, transposed) → tone color f32 [1,256];
//! - `tone_clone_model.onnx`: `audio` f32 [1,513,T], `audio_length` i64 [1],
//!   `src_tone` f32 [1,256,1], `dest_tone` f32 [1,256,1], `tau` f32 [1] →
//!   waveform f32 [1,1,N] at 22.05 kHz.
//!
//! Noise: upstream's posterior encoder adds `randn · tau · exp(logs)`. The
//! public export draws that noise inside the graph (`RandomNormalLike`), so
//! its output at `tau > 0` changes from run to run and no seed reaches it.
//! Graphs written by `scripts/export/openvoice_export.py` take it as one more
//! input, `noise` f32 [1,C,T] (standard normal, C = the converter's
//! `inter_channels`); the input is detected by name at load, and then the
//! caller's random generator fills it, so a seed fixes the output exactly.
//! A graph without that input but with `RandomNormalLike` nodes (the public
//! export) is rewritten in memory at load so the nodes follow a seed input
//! ([`super::noise`], the file is untouched); a graph with neither is
//! deterministic. [`Converter::follows_seed`] says whether one of these holds.
//!
//! Spectrograms use the OpenVoice preset (1024/256/1024, periodic Hann,
//! reflect pad 384, eps 1e-6) from [`crate::spectral::presets`].

use ndarray::Array2;
use rand::RngCore;
use std::path::{Path, PathBuf};
use vctts_core::{Error, Result};

/// Rate the converter works at.
pub const CONVERTER_RATE: u32 = 22_050;
/// Size of a tone color vector.
pub const TONE_DIM: usize = 256;
/// Frequency bins of the converter's spectrogram.
pub const BINS: usize = 513;

/// File names inside `converter/`.
pub const EXTRACT_FILE: &str = "tone_color_extract_model.onnx";
/// File names inside `converter/`.
pub const CLONE_FILE: &str = "tone_clone_model.onnx";

/// Paths of an installed converter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConverterFiles {
    /// The tone color extractor.
    pub extract: PathBuf,
    /// The tone clone (conversion) model.
    pub clone: PathBuf,
}

impl ConverterFiles {
    /// The converter in `dir`, if both files are there.
    pub fn find(dir: &Path) -> Option<Self> {
        let extract = dir.join(EXTRACT_FILE);
        let clone = dir.join(CLONE_FILE);
        (extract.is_file() && clone.is_file()).then_some(Self { extract, clone })
    }
}

/// Name of the optional noise input of the clone graph.
pub const NOISE_INPUT: &str = "noise";

/// Loaded converter sessions (owned by one inference thread).
pub struct Converter {
    extract: ort::session::Session,
    clone: ort::session::Session,
    /// Channels of the `noise` input, when the clone graph takes one.
    noise_channels: Option<usize>,
    /// Whether the clone graph's random nodes were rewritten to take [`super::noise::SEED_INPUT`].
    seed_input: bool,
    /// Whether the same generator state always gives the same output.
    follows_seed: bool,
    /// Options of every run (their terminate flag stops a cancelled request).
    run_options: std::sync::Arc<ort::session::RunOptions>,
}

fn ort_err(what: &'static str) -> impl Fn(ort::Error) -> Error {
    move |e| Error::Inference(format!("tone color {what}: {e}"))
}

impl Converter {
    /// Loads both sessions.
    pub fn load(files: &ConverterFiles, config: &crate::runtime::SessionConfig) -> Result<Self> {
        let mut clone = crate::runtime::load_session(&files.clone, config)?;
        let noise_channels = noise_channels(&clone)
            .map_err(|e| Error::ModelLoad(format!("{}: {e}", files.clone.display())))?;
        let mut seed_input = false;
        let mut follows_seed = true;
        if noise_channels.is_none() {
            let bytes = std::fs::read(&files.clone)
                .map_err(|e| Error::io(format!("reading {}", files.clone.display()), e))?;
            let random = super::noise::has_random_nodes(&bytes);
            if random != Some(false) {
                let name = files.clone.display().to_string();
                match super::noise::seed_random_nodes(&bytes)
                    .map(|(seeded, _)| crate::runtime::load_session_from_memory(&seeded, &name, config))
                {
                    Some(Ok(session)) => {
                        clone = session;
                        seed_input = true;
                    }
                    Some(Err(e)) => {
                        tracing::warn!(error = %e, "seeded converter graph refused; its noise ignores seeds");
                        follows_seed = false;
                    }
                    None => follows_seed = false,
                }
            }
        }
        Ok(Self {
            extract: crate::runtime::load_session(&files.extract, config)?,
            clone,
            noise_channels,
            seed_input,
            follows_seed,
            run_options: std::sync::Arc::new(crate::runtime::run_options()?),
        })
    }

    /// The options the next runs use (the engine gives each request its own,
    /// so that cancelling one terminates its run and nothing else).
    pub fn set_run_options(&mut self, options: std::sync::Arc<ort::session::RunOptions>) {
        self.run_options = options;
    }

    /// Whether a seeded generator fixes the conversion's output (a `noise`
    /// input, random nodes rewritten to a seed input, or no randomness).
    pub fn follows_seed(&self) -> bool {
        self.follows_seed
    }

    /// Whether the clone graph takes its noise as an input (and so follows a seed).
    pub fn takes_noise(&self) -> bool {
        self.noise_channels.is_some()
    }

    /// Tone color of one spectrogram `[513, T]`.
    pub fn tone_color(&mut self, spec: &Array2<f32>) -> Result<Vec<f32>> {
        use ort::value::Tensor;
        let (bins, frames) = spec.dim();
        if bins != BINS || frames == 0 {
            return Err(Error::Internal(format!(
                "spectrogram has shape [{bins},{frames}], expected [513,T>0]"
            )));
        }
        // [1, T, 513]: the transpose, laid out frame by frame.
        let data: Vec<f32> = spec.t().iter().copied().collect();
        let input = Tensor::from_array(([1usize, frames, BINS], data)).map_err(ort_err("extraction"))?;
        let out = self
            .extract
            .run(ort::inputs!["input" => input])
            .map_err(ort_err("extraction"))?;
        let (_, tone) = out[0]
            .try_extract_tensor::<f32>()
            .map_err(ort_err("extraction"))?;
        if tone.len() != TONE_DIM {
            return Err(Error::Inference(format!(
                "tone color extractor returned {} values, expected {TONE_DIM}",
                tone.len()
            )));
        }
        Ok(tone.to_vec())
    }

    /// Converts speech with spectrogram `spec` [513,T] from `src` to `dest`
    /// tone color. When the graph takes its noise as an input, the noise is
    /// drawn from `rng` (standard normal, [`standard_normal`]); when its random
    /// nodes take a seed input, the seed is drawn from `rng`.
    pub fn convert(
        &mut self,
        spec: &Array2<f32>,
        src: &[f32],
        dest: &[f32],
        tau: f32,
        rng: &mut dyn RngCore,
    ) -> Result<Vec<f32>> {
        let noise = self
            .noise_channels
            .map(|c| standard_normal(rng, c * spec.dim().1));
        let seed = super::noise::seed_value(rng.next_u64());
        self.run_clone(spec, src, dest, tau, noise, seed)
    }

    /// [`Converter::convert`] with the noise given: `noise` holds C × T
    /// standard normal values, channel-major. Only for graphs that take noise.
    pub fn convert_with_noise(
        &mut self,
        spec: &Array2<f32>,
        src: &[f32],
        dest: &[f32],
        tau: f32,
        noise: &[f32],
    ) -> Result<Vec<f32>> {
        let Some(c) = self.noise_channels else {
            return Err(Error::Internal(
                "this tone clone graph draws its own noise; it has no noise input".into(),
            ));
        };
        if noise.len() != c * spec.dim().1 {
            return Err(Error::Internal(format!(
                "noise has {} values, the graph wants {c} × {}",
                noise.len(),
                spec.dim().1
            )));
        }
        self.run_clone(spec, src, dest, tau, Some(noise.to_vec()), 1)
    }

    fn run_clone(
        &mut self,
        spec: &Array2<f32>,
        src: &[f32],
        dest: &[f32],
        tau: f32,
        noise: Option<Vec<f32>>,
        seed: i64,
    ) -> Result<Vec<f32>> {
        use ort::value::Tensor;
        let (bins, frames) = spec.dim();
        if bins != BINS || frames == 0 || src.len() != TONE_DIM || dest.len() != TONE_DIM {
            return Err(Error::Internal("converter inputs have the wrong shape".into()));
        }
        let data: Vec<f32> = spec.iter().copied().collect();
        let e = ort_err("conversion");
        let audio = Tensor::from_array(([1usize, BINS, frames], data)).map_err(&e)?;
        let length = Tensor::from_array(([1usize], vec![frames as i64])).map_err(&e)?;
        let src = Tensor::from_array(([1usize, TONE_DIM, 1], src.to_vec())).map_err(&e)?;
        let dest = Tensor::from_array(([1usize, TONE_DIM, 1], dest.to_vec())).map_err(&e)?;
        let tau = Tensor::from_array(([1usize], vec![tau])).map_err(&e)?;
        let out = match (self.noise_channels, noise) {
            (Some(c), Some(noise)) => {
                let noise = Tensor::from_array(([1usize, c, frames], noise)).map_err(&e)?;
                self.clone
                    .run_with_options(
                        ort::inputs![
                            "audio" => audio,
                            "audio_length" => length,
                            "src_tone" => src,
                            "dest_tone" => dest,
                            "tau" => tau,
                            NOISE_INPUT => noise
                        ],
                        &self.run_options,
                    )
                    .map_err(&e)?
            }
            (None, None) if self.seed_input => {
                let seed = Tensor::from_array(([1usize], vec![seed])).map_err(&e)?;
                self.clone
                    .run_with_options(
                        ort::inputs![
                            "audio" => audio,
                            "audio_length" => length,
                            "src_tone" => src,
                            "dest_tone" => dest,
                            "tau" => tau,
                            super::noise::SEED_INPUT => seed
                        ],
                        &self.run_options,
                    )
                    .map_err(&e)?
            }
            (None, None) => self
                .clone
                .run_with_options(
                    ort::inputs![
                        "audio" => audio,
                        "audio_length" => length,
                        "src_tone" => src,
                        "dest_tone" => dest,
                        "tau" => tau
                    ],
                    &self.run_options,
                )
                .map_err(&e)?,
            _ => return Err(Error::Internal("converter noise does not match its graph".into())),
        };
        let (_, wav) = out[0].try_extract_tensor::<f32>().map_err(&e)?;
        Ok(wav.to_vec())
    }
}

/// The channel count of the clone graph's `noise` input [1,C,T], if it has one.
fn noise_channels(session: &ort::session::Session) -> std::result::Result<Option<usize>, String> {
    let Some(input) = session.inputs().iter().find(|i| i.name() == NOISE_INPUT) else {
        return Ok(None);
    };
    let shape = input
        .dtype()
        .tensor_shape()
        .ok_or_else(|| format!("input {NOISE_INPUT:?} is not a tensor"))?;
    match shape.iter().copied().collect::<Vec<i64>>().as_slice() {
        [_, c, _] if *c > 0 => Ok(Some(*c as usize)),
        other => Err(format!(
            "input {NOISE_INPUT:?} has shape {other:?}; expected [1, channels, frames] with fixed channels"
        )),
    }
}

/// `n` standard normal values from `rng` (Box–Muller in f64, so the values
/// depend only on the generator's output, never on the platform's libm
/// rounding of `f32`).
pub fn standard_normal(rng: &mut dyn RngCore, n: usize) -> Vec<f32> {
    let mut out = Vec::with_capacity(n + 1);
    while out.len() < n {
        // 53 random bits in (0, 1]: never 0, so ln is finite.
        let u1 = ((rng.next_u64() >> 11) + 1) as f64 / (1u64 << 53) as f64;
        let u2 = (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
        let r = (-2.0 * u1.ln()).sqrt();
        let t = std::f64::consts::TAU * u2;
        out.push((r * t.cos()) as f32);
        out.push((r * t.sin()) as f32);
    }
    out.truncate(n);
    out
}

/// Averages tone colors.
pub fn mean(colors: &[Vec<f32>]) -> Vec<f32> {
    let mut out = vec![0.0f32; TONE_DIM];
    if colors.is_empty() {
        return out;
    }
    for c in colors {
        for (o, v) in out.iter_mut().zip(c) {
            *o += v;
        }
    }
    let n = colors.len() as f32;
    out.iter_mut().for_each(|o| *o /= n);
    out
}

/// Encodes a tone color as the bytes of a v1 profile (256 little-endian f32).
pub fn encode_tone(tone: &[f32]) -> Vec<u8> {
    tone.iter().flat_map(|v| v.to_le_bytes()).collect()
}

/// Decodes the bytes of a v1 profile.
pub fn decode_tone(bytes: &[u8]) -> Result<Vec<f32>> {
    if bytes.len() != TONE_DIM * 4 {
        return Err(Error::ProfileMismatch {
            expected: format!("{} bytes of tone color", TONE_DIM * 4),
            found: format!("{} bytes", bytes.len()),
        });
    }
    let tone: Vec<f32> = bytes
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect();
    if tone.iter().any(|v| !v.is_finite()) {
        return Err(Error::ProfileMismatch {
            expected: "finite tone color".into(),
            found: "NaN or inf".into(),
        });
    }
    Ok(tone)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tone_round_trip_and_mean() {
        let a: Vec<f32> = (0..TONE_DIM).map(|i| i as f32).collect();
        let b = vec![1.0f32; TONE_DIM];
        assert_eq!(decode_tone(&encode_tone(&a)).unwrap(), a);
        let m = mean(&[a.clone(), b]);
        assert_eq!(m[0], 0.5);
        assert_eq!(m[10], 5.5);
        assert_eq!(decode_tone(&[0u8; 3]).unwrap_err().code(), "profile_mismatch");
        let mut nan = encode_tone(&a);
        nan[0..4].copy_from_slice(&f32::NAN.to_le_bytes());
        assert!(decode_tone(&nan).is_err());
    }

    #[test]
    fn standard_normal_is_seeded_and_normal() {
        use rand::SeedableRng;
        let mut a = rand_chacha::ChaCha8Rng::seed_from_u64(5);
        let mut b = rand_chacha::ChaCha8Rng::seed_from_u64(5);
        let x = standard_normal(&mut a, 20_001);
        assert_eq!(x, standard_normal(&mut b, 20_001));
        assert_eq!(x.len(), 20_001);
        let mean = x.iter().map(|&v| v as f64).sum::<f64>() / x.len() as f64;
        let var = x.iter().map(|&v| (v as f64 - mean).powi(2)).sum::<f64>() / x.len() as f64;
        assert!(mean.abs() < 0.03, "{mean}");
        assert!((var - 1.0).abs() < 0.05, "{var}");
        assert!(x.iter().all(|v| v.is_finite()));
        let mut c = rand_chacha::ChaCha8Rng::seed_from_u64(6);
        assert_ne!(x[..8], standard_normal(&mut c, 8)[..]);
    }
}
