//! `vctts models …` end to end: the real binary packs, verifies, restores and
//! lists model folders in a temporary directory.

use std::fs;
use std::path::Path;
use std::process::{Command, Output};

fn vctts(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_vctts"))
        .current_dir(dir)
        .env_remove("VCTTS_MODELS")
        .env("VCTTS_LOG", "error")
        .args(args)
        .output()
        .expect("vctts runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Deterministic incompressible bytes, so a small model spans several parts.
fn noise(len: usize, seed: u32) -> Vec<u8> {
    let mut x = seed.wrapping_mul(2_654_435_761) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            (x >> 24) as u8
        })
        .collect()
}

/// A complete OpenVoice model folder in `root/models/openvoice`.
fn openvoice_model(root: &Path) {
    let m = root.join("models/openvoice");
    fs::create_dir_all(m.join("base")).unwrap();
    fs::create_dir_all(m.join("converter")).unwrap();
    fs::write(m.join("base/en_US-test.onnx"), noise(20_000, 1)).unwrap();
    fs::write(m.join("base/en_US-test.onnx.json"), b"{}").unwrap();
    fs::write(m.join("converter/tone_color_extract_model.onnx"), noise(9_000, 2)).unwrap();
    fs::write(m.join("converter/tone_clone_model.onnx"), noise(9_000, 3)).unwrap();
    fs::write(m.join("converter/empty.txt"), b"").unwrap();
}

fn assert_same_file(a: &Path, b: &Path) {
    assert_eq!(
        fs::read(a).unwrap(),
        fs::read(b).unwrap(),
        "{} differs",
        b.display()
    );
}

#[test]
fn pack_verify_restore_list() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    openvoice_model(root);

    let o = vctts(
        root,
        &[
            "models",
            "pack",
            "models/openvoice",
            "--out",
            "pkg/openvoice",
            "--part-size",
            "8K",
        ],
    );
    assert!(o.status.success(), "{}", text(&o.stderr));
    let out = text(&o.stdout);
    assert!(out.contains("packed openvoice (openvoice): 5 files"), "{out}");
    assert!(
        out.contains("vctts models restore pkg/openvoice --to DEST"),
        "{out}"
    );
    // stderr is not a terminal here: plain progress lines.
    let err = text(&o.stderr);
    assert!(
        err.contains("packing:   0%") && err.contains("packing: 100%"),
        "{err}"
    );
    assert!(
        root.join("pkg/openvoice/openvoice.pkg.part_ad").is_file(),
        "several 8 KiB parts"
    );
    assert!(root.join("pkg/openvoice/README.md").is_file());

    let o = vctts(root, &["models", "verify", "pkg/openvoice"]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert!(
        text(&o.stdout).starts_with("ok: package openvoice (openvoice)"),
        "{}",
        text(&o.stdout)
    );

    let o = vctts(
        root,
        &["models", "restore", "pkg/openvoice", "--to", "restored/openvoice"],
    );
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert!(text(&o.stdout).contains("5 files"), "{}", text(&o.stdout));
    for f in [
        "base/en_US-test.onnx",
        "base/en_US-test.onnx.json",
        "converter/tone_color_extract_model.onnx",
        "converter/tone_clone_model.onnx",
        "converter/empty.txt",
    ] {
        assert_same_file(
            &root.join("models/openvoice").join(f),
            &root.join("restored/openvoice").join(f),
        );
    }

    let o = vctts(root, &["models", "list", "--models", "restored"]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let out = text(&o.stdout);
    assert!(out.contains("openvoice   complete"), "{out}");
    assert!(out.contains("checksums match openvoice.pkg.sha256"), "{out}");
    assert!(out.contains("xtts        not installed"), "{out}");
    assert!(out.contains("gpt-sovits  not installed"), "{out}");
}

#[test]
fn damage_is_named_with_a_fix() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    openvoice_model(root);
    let o = vctts(
        root,
        &[
            "models",
            "pack",
            "models/openvoice",
            "--out",
            "pkg",
            "--part-size",
            "8192",
        ],
    );
    assert!(o.status.success(), "{}", text(&o.stderr));
    let part = root.join("pkg/openvoice.pkg.part_ab");
    let mut bytes = fs::read(&part).unwrap();
    bytes[10] ^= 0x55;
    fs::write(&part, &bytes).unwrap();

    let o = vctts(root, &["models", "verify", "pkg"]);
    assert!(!o.status.success());
    let err = text(&o.stderr);
    assert!(
        err.contains("part openvoice.pkg.part_ab is corrupt: sha256 mismatch"),
        "{err}"
    );
    assert!(err.contains("hint: copy the named part again"), "{err}");

    let o = vctts(root, &["models", "restore", "pkg", "--to", "dest"]);
    assert!(!o.status.success());
    assert!(
        text(&o.stderr).contains("openvoice.pkg.part_ab is corrupt"),
        "{}",
        text(&o.stderr)
    );
    assert!(!root.join("dest").exists());
}

#[test]
fn restore_into_a_full_folder_needs_replace() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    openvoice_model(root);
    let o = vctts(
        root,
        &[
            "models",
            "pack",
            "models/openvoice",
            "--out",
            "pkg",
            "--part-size",
            "1M",
        ],
    );
    assert!(o.status.success(), "{}", text(&o.stderr));
    fs::create_dir_all(root.join("dest")).unwrap();
    fs::write(root.join("dest/old.onnx"), b"old").unwrap();

    let o = vctts(root, &["models", "restore", "pkg", "--to", "dest"]);
    assert!(!o.status.success());
    assert!(text(&o.stderr).contains("pass --replace"), "{}", text(&o.stderr));
    assert!(root.join("dest/old.onnx").exists());

    let o = vctts(root, &["models", "restore", "pkg", "--to", "dest", "--replace"]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert!(text(&o.stdout).contains("the previous folder was replaced"));
    assert!(!root.join("dest/old.onnx").exists());
    assert!(root.join("dest/base/en_US-test.onnx").is_file());

    // Packing again into the same folder needs --force.
    let o = vctts(root, &["models", "pack", "models/openvoice", "--out", "pkg"]);
    assert!(!o.status.success());
    assert!(text(&o.stderr).contains("--force"), "{}", text(&o.stderr));
    let o = vctts(
        root,
        &[
            "models",
            "pack",
            "models/openvoice",
            "--out",
            "pkg",
            "--force",
            "--compression",
            "zstd",
        ],
    );
    assert!(o.status.success(), "{}", text(&o.stderr));
    let o = vctts(root, &["models", "verify", "pkg/openvoice.pkg.manifest.json"]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert!(text(&o.stdout).contains("zstd"), "{}", text(&o.stdout));
}

#[test]
fn list_reads_vctts_models_and_names_what_is_missing() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    fs::create_dir_all(root.join("m/xtts_v2")).unwrap();
    fs::write(root.join("m/xtts_v2/gpt_model.onnx"), b"x").unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_vctts"))
        .current_dir(root)
        .env("VCTTS_MODELS", root.join("m"))
        .args(["models", "list"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o.stderr));
    let out = text(&o.stdout);
    assert!(out.contains("xtts        missing files"), "{out}");
    assert!(out.contains("speaker_encoder.onnx"), "{out}");
    assert!(
        !out.lines()
            .any(|l| l.contains("missing") && l.contains("gpt_model.onnx")),
        "{out}"
    );
    assert!(out.contains("openvoice   not installed"), "{out}");
}

#[test]
fn bad_arguments_are_explained() {
    let tmp = tempfile::tempdir().unwrap();
    let o = vctts(
        tmp.path(),
        &["models", "pack", "x", "--out", "o", "--part-size", "lots"],
    );
    assert_eq!(o.status.code(), Some(2));
    assert!(
        text(&o.stderr).contains("\"lots\" is not a size"),
        "{}",
        text(&o.stderr)
    );
    let o = vctts(tmp.path(), &["models", "pack", "nope", "--out", "o"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        text(&o.stderr).contains("model folder nope does not exist"),
        "{}",
        text(&o.stderr)
    );
    let o = vctts(tmp.path(), &["models", "verify", "."]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        text(&o.stderr).contains("not a vctts package folder"),
        "{}",
        text(&o.stderr)
    );
}

#[test]
fn every_models_flag_has_help() {
    let tmp = tempfile::tempdir().unwrap();
    for sub in ["pack", "verify", "restore", "list"] {
        let o = vctts(tmp.path(), &["models", sub, "--help"]);
        assert!(o.status.success());
        let help = text(&o.stdout);
        let lines: Vec<&str> = help.lines().collect();
        for (i, line) in lines.iter().enumerate() {
            let flag = line.trim_start();
            let is_flag = flag.starts_with("--") || (flag.starts_with('-') && flag.contains(", --"));
            if !is_flag {
                continue;
            }
            // Help sits after the flag on the same line, or (long help) on the next.
            let inline = flag.split_once("  ").map_or("", |x| x.1).trim();
            let next = lines.get(i + 1).map_or("", |l| l.trim());
            let documented = !inline.is_empty() || (!next.is_empty() && !next.starts_with('-'));
            assert!(documented, "models {sub}: flag without help: {line}");
        }
    }
}
