//! The OpenVoice v2 tone color converter, in the layout of the public ONNX
//! export (`converter/` folder):
//! - `tone_color_extract_model.onnx`: `input` f32 [1,T,513] (the linear
//!   spectrogram, transposed) → tone color f32 [1,256];
//! - `tone_clone_model.onnx`: `audio` f32 [1,513,T], `audio_length` i64 [1],
//!   `src_tone` f32 [1,256,1], `dest_tone` f32 [1,256,1], `tau` f32 [1] →
//!   waveform f32 [1,1,N] at 22.05 kHz.
//!
//! Spectrograms use the OpenVoice preset (1024/256/1024, periodic Hann,
//! reflect pad 384, eps 1e-6) from [`crate::spectral::presets`].

use ndarray::Array2;
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

/// Loaded converter sessions (owned by one inference thread).
pub struct Converter {
    extract: ort::session::Session,
    clone: ort::session::Session,
}

fn ort_err(what: &'static str) -> impl Fn(ort::Error) -> Error {
    move |e| Error::Inference(format!("tone color {what}: {e}"))
}

impl Converter {
    /// Loads both sessions.
    pub fn load(files: &ConverterFiles, config: &crate::runtime::SessionConfig) -> Result<Self> {
        Ok(Self {
            extract: crate::runtime::load_session(&files.extract, config)?,
            clone: crate::runtime::load_session(&files.clone, config)?,
        })
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

    /// Converts speech with spectrogram `spec` [513,T] from `src` to `dest` tone color.
    pub fn convert(&mut self, spec: &Array2<f32>, src: &[f32], dest: &[f32], tau: f32) -> Result<Vec<f32>> {
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
        let out = self
            .clone
            .run(ort::inputs![
                "audio" => audio,
                "audio_length" => length,
                "src_tone" => src,
                "dest_tone" => dest,
                "tau" => tau
            ])
            .map_err(&e)?;
        let (_, wav) = out[0].try_extract_tensor::<f32>().map_err(&e)?;
        Ok(wav.to_vec())
    }
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
}
