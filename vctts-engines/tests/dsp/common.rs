//! Shared helpers: fixture paths, `.npy` loading, the comparison rule.

use std::path::PathBuf;

use ndarray::{Array1, Array2, ArrayD};
use ndarray_npy::read_npy;

/// `vctts-engines/tests/fixtures/dsp/<name>`.
pub fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/dsp")
        .join(name)
}

pub fn npy1(name: &str) -> Array1<f32> {
    read_npy(fixture(&format!("{name}.npy"))).unwrap_or_else(|e| panic!("reading {name}.npy: {e}"))
}

pub fn npy2(name: &str) -> Array2<f32> {
    read_npy(fixture(&format!("{name}.npy"))).unwrap_or_else(|e| panic!("reading {name}.npy: {e}"))
}

#[allow(dead_code)]
pub fn npyd(name: &str) -> ArrayD<f32> {
    read_npy(fixture(&format!("{name}.npy"))).unwrap_or_else(|e| panic!("reading {name}.npy: {e}"))
}

/// Relative tolerance of the conformance rule.
pub const RTOL: f32 = 1e-4;
/// Absolute tolerance, as a fraction of the reference's largest magnitude.
pub const ATOL_OF_MAX: f32 = 1e-5;

/// The conformance rule: every element satisfies
/// `|got - want| <= RTOL * |want| + ATOL_OF_MAX * max|want|`.
///
/// The relative term is the 1e-4 the upstream match asks for; the absolute
/// term (1e-5 of the array's peak) admits the rounding of an `f32` FFT in
/// bins that are 80+ dB below the loudest one, where a relative bound is
/// meaningless.
pub fn assert_close(name: &str, got: &[f32], want: &[f32]) {
    assert_eq!(
        got.len(),
        want.len(),
        "{name}: length {} vs {}",
        got.len(),
        want.len()
    );
    let max = want.iter().fold(0.0f32, |m, v| m.max(v.abs()));
    let atol = ATOL_OF_MAX * max;
    let mut worst = (0usize, 0.0f32);
    for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
        let excess = (g - w).abs() / (RTOL * w.abs() + atol);
        if (excess.is_nan() || excess > 1.0) && (excess.is_nan() || excess > worst.1) {
            worst = (i, if excess.is_nan() { f32::INFINITY } else { excess });
        }
    }
    if worst.1 > 0.0 {
        let i = worst.0;
        panic!(
            "{name}: element {i} is {} but the reference is {} ({}x over the tolerance)",
            got[i], want[i], worst.1
        );
    }
}

/// Largest relative and peak-relative errors, for diagnostics.
#[allow(dead_code)]
pub fn errors(got: &[f32], want: &[f32]) -> (f32, f32) {
    let max = want.iter().fold(0.0f32, |m, v| m.max(v.abs()));
    let mut rel = 0.0f32;
    let mut abs = 0.0f32;
    for (&g, &w) in got.iter().zip(want) {
        rel = rel.max((g - w).abs() / w.abs().max(f32::MIN_POSITIVE));
        abs = abs.max((g - w).abs() / max);
    }
    (rel, abs)
}
