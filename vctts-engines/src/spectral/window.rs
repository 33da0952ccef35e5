//! Analysis windows (Hann, Hamming) in the periodic form torch and
//! `scipy.signal.get_window(..., fftbins=True)` use, or the symmetric form of
//! `np.hanning` / `np.hamming`.
//!
//! Invariant: values are computed in `f64` and rounded once to `f32`, so they
//! match the float64 references to the last bit or so.

use std::f64::consts::PI;

/// The window shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum WindowKind {
    /// `0.5 - 0.5 cos(2πn/N)`.
    Hann,
    /// `0.54 - 0.46 cos(2πn/N)` (torch and scipy coefficients).
    Hamming,
}

/// A window of `len` samples.
///
/// `periodic` gives the DFT-even window (denominator `len`, torch's default
/// and what every upstream STFT here uses); otherwise the symmetric window
/// (denominator `len - 1`). `len == 0` gives an empty window and `len == 1`
/// gives `[1.0]`, as numpy and scipy do.
pub fn window(kind: WindowKind, len: usize, periodic: bool) -> Vec<f32> {
    match len {
        0 => return Vec::new(),
        1 => return vec![1.0],
        _ => {}
    }
    let (a0, a1) = match kind {
        WindowKind::Hann => (0.5, 0.5),
        WindowKind::Hamming => (0.54, 0.46),
    };
    let denom = if periodic { len } else { len - 1 } as f64;
    (0..len)
        .map(|n| (a0 - a1 * (2.0 * PI * n as f64 / denom).cos()) as f32)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn degenerate_lengths() {
        assert!(window(WindowKind::Hann, 0, true).is_empty());
        assert_eq!(window(WindowKind::Hamming, 1, false), vec![1.0]);
    }

    #[test]
    fn periodic_hann_is_symmetric_hann_one_longer() {
        let p = window(WindowKind::Hann, 8, true);
        let s = window(WindowKind::Hann, 9, false);
        for (a, b) in p.iter().zip(&s) {
            assert!((a - b).abs() < 1e-7);
        }
        assert_eq!(p[0], 0.0);
        assert!((p[4] - 1.0).abs() < 1e-7);
    }

    #[test]
    fn symmetric_hamming_ends() {
        let w = window(WindowKind::Hamming, 5, false);
        assert!((w[0] - 0.08).abs() < 1e-7 && (w[4] - 0.08).abs() < 1e-7);
        assert!((w[2] - 1.0).abs() < 1e-7);
    }
}
