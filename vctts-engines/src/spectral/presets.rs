//! The exact spectral front ends of the upstream models.
//!
//! Each preset names the upstream function it reproduces; the conformance
//! test (`tests/dsp`, fixtures from `scripts/fixtures/make_dsp_refs.py`)
//! checks all of them against float64 references. The STFT plans and
//! filterbanks are built once per process and shared.
//!
//! Invariants: inputs are mono samples at the rate in the function's name
//! (resample first); outputs are `[bins_or_mels, frames]`; an input too
//! short for one frame gives zero frames.

use std::sync::OnceLock;

use ndarray::Array2;
use vctts_core::{Error, Result};

use super::mel::{MelConfig, MelScale, apply_mel, log_clamp, mel_filterbank};
use super::stft::{Padding, Stft, StftConfig};
use super::window::WindowKind;

fn openvoice_stft() -> &'static Stft {
    static S: OnceLock<Stft> = OnceLock::new();
    S.get_or_init(|| {
        Stft::new(StftConfig {
            n_fft: 1024,
            hop: 256,
            win_length: 1024,
            window: WindowKind::Hann,
            periodic: true,
            padding: Padding::Reflect((1024 - 256) / 2),
        })
    })
}

/// OpenVoice v2 tone-colour converter input (`openvoice/mel_processing.py`
/// `spectrogram_torch`): 22.05 kHz, n_fft 1024, hop 256, win 1024, periodic
/// Hann, reflect pad 384 each side, `center=False`,
/// `sqrt(re² + im² + 1e-6)`. Shape `[513, T]`.
pub fn openvoice_spectrogram(samples_22k: &[f32]) -> Array2<f32> {
    openvoice_stft().magnitude(samples_22k, 1e-6)
}

fn gpt_sovits_stft() -> &'static Stft {
    static S: OnceLock<Stft> = OnceLock::new();
    S.get_or_init(|| {
        Stft::new(StftConfig {
            n_fft: 2048,
            hop: 640,
            win_length: 2048,
            window: WindowKind::Hann,
            periodic: true,
            padding: Padding::Reflect((2048 - 640) / 2),
        })
    })
}

/// GPT-SoVITS v2 reference spectrogram (`module/mel_processing.py`
/// `spectrogram_torch` as `_get_ref_spec` calls it): 32 kHz, n_fft 2048,
/// hop 640, win 2048, periodic Hann, reflect pad 704 each side,
/// `center=False`, `sqrt(re² + im² + 1e-8)`. Shape `[1025, T]`.
pub fn gpt_sovits_spectrogram(samples_32k: &[f32]) -> Array2<f32> {
    gpt_sovits_stft().magnitude(samples_32k, 1e-8)
}

struct MelPreset {
    stft: Stft,
    filterbank: Array2<f32>,
}

fn xtts_cond() -> &'static MelPreset {
    static S: OnceLock<MelPreset> = OnceLock::new();
    S.get_or_init(|| MelPreset {
        stft: Stft::new(StftConfig {
            n_fft: 2048,
            hop: 256,
            win_length: 1024,
            window: WindowKind::Hann,
            periodic: true,
            padding: Padding::Center,
        }),
        filterbank: mel_filterbank(&MelConfig {
            sample_rate: 22050,
            n_fft: 2048,
            n_mels: 80,
            fmin: 0.0,
            fmax: 8000.0,
            scale: MelScale::Htk,
            slaney_norm: true,
        }),
    })
}

/// XTTS-v2 GPT conditioning mel (`TTS/tts/models/xtts.py`
/// `wav_to_mel_cloning` as `get_gpt_cond_latents` calls it): torchaudio
/// `MelSpectrogram(n_fft=2048, hop_length=256, win_length=1024, power=2,
/// n_mels=80, f_min=0, f_max=8000, sample_rate=22050, norm="slaney")` with
/// torchaudio's defaults (HTK mel scale, periodic Hann, `center=True` with
/// reflect padding), then `log(clamp(mel, min=1e-5))`. Shape `[80, T]`.
///
/// Upstream then divides row `i` by `mel_stats[i]` (an 80-value buffer of
/// the model checkpoint); that belongs to the model, see
/// [`divide_rows`].
pub fn xtts_conditioning_mel(samples_22k: &[f32]) -> Array2<f32> {
    let p = xtts_cond();
    let power = p.stft.power(samples_22k);
    let mut mel = apply_mel(p.filterbank.view(), power.view()).expect("preset shapes agree");
    log_clamp(&mut mel, 1e-5);
    mel
}

fn xtts_speaker() -> &'static MelPreset {
    static S: OnceLock<MelPreset> = OnceLock::new();
    S.get_or_init(|| MelPreset {
        stft: Stft::new(StftConfig {
            n_fft: 512,
            hop: 160,
            win_length: 400,
            window: WindowKind::Hamming,
            periodic: true,
            padding: Padding::Center,
        }),
        filterbank: mel_filterbank(&MelConfig {
            sample_rate: 16000,
            n_fft: 512,
            n_mels: 64,
            fmin: 0.0,
            fmax: 8000.0,
            scale: MelScale::Htk,
            slaney_norm: false,
        }),
    })
}

/// XTTS-v2 speaker-encoder input (`TTS/encoder/models/base_encoder.py`
/// `get_torch_mel_spectrogram_class`): pre-emphasis 0.97 (`PreEmphasis`:
/// reflect-pad one sample on the left, then `x[n] - 0.97 x[n-1]`), then
/// torchaudio `MelSpectrogram(sample_rate=16000, n_fft=512, win_length=400,
/// hop_length=160, window_fn=torch.hamming_window, n_mels=64)` with its
/// defaults (periodic window, `center=True` reflect, power 2, f 0–8000 Hz,
/// HTK scale, no normalisation). The power mel is returned; the model applies
/// `log(x + 1e-6)` and instance norm itself. Shape `[64, T]`.
pub fn xtts_speaker_mel(samples_16k: &[f32]) -> Array2<f32> {
    let p = xtts_speaker();
    let emphasised = pre_emphasis(samples_16k, 0.97);
    let power = p.stft.power(&emphasised);
    apply_mel(p.filterbank.view(), power.view()).expect("preset shapes agree")
}

/// `y[n] = x[n] - coef * x[n-1]` with `x[-1]` taken by reflection (`x[1]`),
/// as Coqui's `PreEmphasis` does. A one-sample clip reflects onto itself.
pub fn pre_emphasis(x: &[f32], coef: f32) -> Vec<f32> {
    let Some(&first) = x.first() else {
        return Vec::new();
    };
    let before = x.get(1).copied().unwrap_or(first);
    let mut out = Vec::with_capacity(x.len());
    out.push(first - coef * before);
    out.extend(x.windows(2).map(|w| w[1] - coef * w[0]));
    out
}

/// Divides row `i` of `x` by `stats[i]` (XTTS `mel / mel_stats`).
///
/// # Errors
/// [`Error::InvalidInput`] when `stats` has another length than the rows of
/// `x` or contains a zero or non-finite value.
pub fn divide_rows(x: &mut Array2<f32>, stats: &[f32]) -> Result<()> {
    if stats.len() != x.nrows() {
        return Err(Error::invalid(
            "mel_stats",
            format!("has {} values, the mel has {} rows", stats.len(), x.nrows()),
        ));
    }
    if let Some(bad) = stats.iter().find(|s| !s.is_finite() || **s == 0.0) {
        return Err(Error::invalid("mel_stats", format!("contains {bad}")));
    }
    for (mut row, &s) in x.rows_mut().into_iter().zip(stats) {
        row.mapv_inplace(|v| v / s);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes() {
        let x = vec![0.1f32; 22050];
        assert_eq!(
            openvoice_spectrogram(&x).dim(),
            (513, 1 + (22050 + 768 - 1024) / 256)
        );
        assert_eq!(xtts_conditioning_mel(&x).dim(), (80, 1 + 22050 / 256));
        let x = vec![0.1f32; 32000];
        assert_eq!(
            gpt_sovits_spectrogram(&x).dim(),
            (1025, 1 + (32000 + 1408 - 2048) / 640)
        );
        let x = vec![0.1f32; 16000];
        assert_eq!(xtts_speaker_mel(&x).dim(), (64, 1 + 16000 / 160));
    }

    #[test]
    fn empty_input_gives_no_frames() {
        assert_eq!(openvoice_spectrogram(&[]).dim(), (513, 0));
        assert_eq!(xtts_speaker_mel(&[]).dim(), (64, 0));
    }

    #[test]
    fn pre_emphasis_reflects_the_first_sample() {
        let y = pre_emphasis(&[1.0, 2.0, 4.0], 0.5);
        assert_eq!(y, vec![1.0 - 0.5 * 2.0, 2.0 - 0.5, 4.0 - 1.0]);
        assert_eq!(pre_emphasis(&[2.0], 0.5), vec![1.0]);
        assert!(pre_emphasis(&[], 0.97).is_empty());
    }

    #[test]
    fn divide_rows_checks_lengths() {
        let mut x = Array2::from_elem((2, 3), 4.0f32);
        divide_rows(&mut x, &[2.0, 4.0]).unwrap();
        assert_eq!(x.row(0).to_vec(), vec![2.0; 3]);
        assert_eq!(x.row(1).to_vec(), vec![1.0; 3]);
        assert!(divide_rows(&mut x, &[1.0]).is_err());
        assert!(divide_rows(&mut x, &[1.0, 0.0]).is_err());
    }
}
