//! The spectral presets, windows and filterbanks against the float64
//! references of `scripts/fixtures/make_dsp_refs.py`.

use vctts_engines::spectral::presets::{
    gpt_sovits_spectrogram, openvoice_spectrogram, xtts_conditioning_mel, xtts_speaker_mel,
};
use vctts_engines::spectral::{MelConfig, MelScale, WindowKind, mel_filterbank, window};

use crate::common::{assert_close, errors, npy1, npy2};

fn check2(name: &str, got: ndarray::Array2<f32>) {
    let want = npy2(name);
    assert_eq!(got.dim(), want.dim(), "{name}: shape");
    let (g, w) = (got.as_standard_layout(), want.as_standard_layout());
    let (g, w) = (g.as_slice().unwrap(), w.as_slice().unwrap());
    let (rel, abs) = errors(g, w);
    eprintln!("{name}: max relative error {rel:.2e}, max error / peak {abs:.2e}");
    assert_close(name, g, w);
}

#[test]
fn windows_match_scipy() {
    for (name, kind, len, periodic) in [
        ("window_hann_periodic_1024", WindowKind::Hann, 1024, true),
        ("window_hann_symmetric_1024", WindowKind::Hann, 1024, false),
        ("window_hamming_periodic_400", WindowKind::Hamming, 400, true),
        ("window_hamming_symmetric_400", WindowKind::Hamming, 400, false),
    ] {
        let want = npy1(name);
        assert_close(name, &window(kind, len, periodic), want.as_slice().unwrap());
    }
}

#[test]
fn filterbanks_match_librosa() {
    let cfg = |n_mels, fmin, fmax, scale, slaney_norm| MelConfig {
        sample_rate: 16000,
        n_fft: 512,
        n_mels,
        fmin,
        fmax,
        scale,
        slaney_norm,
    };
    check2(
        "mel_htk_slaney_16k_512_40",
        mel_filterbank(&cfg(40, 20.0, 7600.0, MelScale::Htk, true)),
    );
    check2(
        "mel_slaney_slaney_16k_512_40",
        mel_filterbank(&cfg(40, 0.0, 8000.0, MelScale::Slaney, true)),
    );
    check2(
        "mel_htk_none_16k_512_64",
        mel_filterbank(&cfg(64, 0.0, 8000.0, MelScale::Htk, false)),
    );
}

#[test]
fn openvoice_spectrogram_matches() {
    let x = npy1("signal_22k");
    check2("openvoice_spec", openvoice_spectrogram(x.as_slice().unwrap()));
}

#[test]
fn openvoice_spectrogram_of_a_clip_shorter_than_the_pad() {
    let x = npy1("signal_short_22k");
    check2(
        "openvoice_spec_short",
        openvoice_spectrogram(x.as_slice().unwrap()),
    );
}

#[test]
fn gpt_sovits_spectrogram_matches() {
    let x = npy1("signal_32k");
    check2("gpt_sovits_spec", gpt_sovits_spectrogram(x.as_slice().unwrap()));
}

#[test]
fn xtts_conditioning_mel_matches() {
    let x = npy1("signal_22k");
    check2("xtts_cond_mel", xtts_conditioning_mel(x.as_slice().unwrap()));
}

#[test]
fn xtts_speaker_mel_matches() {
    let x = npy1("signal_16k");
    check2("xtts_speaker_mel", xtts_speaker_mel(x.as_slice().unwrap()));
}
