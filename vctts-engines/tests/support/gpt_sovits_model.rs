//! The tiny GPT-SoVITS test model folder, shared by the engine tests
//! (`vctts-engines/tests/gpt_sovits.rs`) and the server tests
//! (`vctts-server/tests/gpt_sovits.rs`, included by path).
//!
//! `vctts-engines/tests/fixtures/gpt_sovits/model/` holds the exported
//! graphs without their weights (about 200 MB); `weights.json` says how to
//! rebuild each weight file bit-exactly from seeds with the generator of
//! `scripts/fixtures/make_gpt_sovits_parity.py`:
//! `((splitmix64(seed << 32 | i) >> 40) · 2⁻²³ − 1) · scale + bias` in f32.

#![allow(dead_code)]

use std::path::{Path, PathBuf};

/// `vctts-engines/tests/fixtures/gpt_sovits`.
pub fn fixture_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .join("vctts-engines/tests/fixtures/gpt_sovits")
}

fn splitmix64(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Writes the model folder (graphs + rebuilt weights) into `dir`.
pub fn materialize(dir: &Path) {
    let src = fixture_dir().join("model");
    for entry in std::fs::read_dir(&src).unwrap() {
        let p = entry.unwrap().path();
        std::fs::copy(&p, dir.join(p.file_name().unwrap())).unwrap();
    }
    let spec: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(fixture_dir().join("weights.json")).unwrap()).unwrap();
    assert_eq!(spec["generator"], "splitmix64-f32-v1");
    for (name, file) in spec["files"].as_object().unwrap() {
        let size = file["size"].as_u64().unwrap() as usize;
        let mut blob = vec![0u8; size];
        for t in file["tensors"].as_array().unwrap() {
            let off = t["offset"].as_u64().unwrap() as usize;
            let count = t["count"].as_u64().unwrap() as usize;
            let seed = t["seed"].as_u64().unwrap();
            let scale = t["scale"].as_f64().unwrap() as f32;
            let bias = t["bias"].as_f64().unwrap() as f32;
            let out = &mut blob[off..off + 4 * count];
            for (i, chunk) in out.chunks_exact_mut(4).enumerate() {
                let h = splitmix64((seed << 32) | i as u64);
                let u = (h >> 40) as f32 * (2.0f32).powi(-23) - 1.0;
                chunk.copy_from_slice(&(u * scale + bias).to_le_bytes());
            }
        }
        std::fs::write(dir.join(name), blob).unwrap();
    }
}

/// Reads a 1-D little-endian f32 `.npy` of the fixture folder.
pub fn read_f32_npy(name: &str) -> Vec<f32> {
    let bytes = std::fs::read(fixture_dir().join(name)).unwrap();
    assert_eq!(&bytes[..6], b"\x93NUMPY", "{name}: not .npy");
    let header_len = u16::from_le_bytes([bytes[8], bytes[9]]) as usize;
    let header = std::str::from_utf8(&bytes[10..10 + header_len]).unwrap();
    assert!(
        header.contains("'<f4'") && header.contains("False"),
        "{name}: {header}"
    );
    bytes[10 + header_len..]
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect()
}
