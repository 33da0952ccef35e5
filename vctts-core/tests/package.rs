//! Integration tests of split-volume model packages: pack → verify →
//! restore round trips, damaged and tampered packages, hostile archives,
//! restores with the standard tools, atomic replacement, and the installed
//! model report.

use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, UNIX_EPOCH};
use vctts_core::EngineKind;
use vctts_core::package::{
    self, Compression, FileEntry, InstallState, LinkEntry, Manifest, PackOptions, PackOutput, PartEntry,
    ProgressEvent, RestoreOptions, Stage,
};

const PART: u64 = 8192;

/// Deterministic incompressible bytes (xorshift64*).
fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x >> 12;
            x ^= x << 25;
            x ^= x >> 27;
            (x.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 56) as u8
        })
        .collect()
}

/// A model folder with nested folders, an empty file, an empty folder, an
/// executable, a symlink and a file several parts long.
fn model_tree(root: &Path) {
    fs::create_dir_all(root.join("base")).unwrap();
    fs::create_dir_all(root.join("converter/deep/deeper")).unwrap();
    fs::create_dir_all(root.join("empty_dir")).unwrap();
    fs::write(root.join("base/en_US-test.onnx"), noise(5000, 1)).unwrap();
    fs::write(
        root.join("base/en_US-test.onnx.json"),
        br#"{"audio":{"sample_rate":22050}}"#,
    )
    .unwrap();
    fs::write(
        root.join("converter/tone_clone_model.onnx"),
        noise(3 * PART as usize + 123, 2),
    )
    .unwrap();
    fs::write(root.join("converter/deep/deeper/empty.bin"), b"").unwrap();
    fs::write(
        root.join("converter/deep/notes.txt"),
        "zeros follow\n".repeat(500),
    )
    .unwrap();
    fs::write(root.join("README.txt"), b"model readme\n").unwrap();
    let long = format!("converter/{}.onnx", "long_name_".repeat(12));
    fs::write(root.join(long), noise(100, 3)).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        fs::write(root.join("run.sh"), b"#!/bin/sh\necho hi\n").unwrap();
        fs::set_permissions(root.join("run.sh"), fs::Permissions::from_mode(0o755)).unwrap();
        std::os::unix::fs::symlink("../base/en_US-test.onnx", root.join("converter/base_link.onnx")).unwrap();
    }
}

#[derive(Debug, PartialEq, Eq)]
enum Node {
    Dir,
    File { sha256: String, executable: bool },
    Link(PathBuf),
}

/// Every entry below `root` (symlinks not followed), by relative path.
fn snapshot(root: &Path, ignore: &[&str]) -> BTreeMap<String, Node> {
    let mut out = BTreeMap::new();
    let mut pending = vec![root.to_path_buf()];
    while let Some(dir) = pending.pop() {
        for entry in fs::read_dir(&dir).unwrap() {
            let entry = entry.unwrap();
            let path = entry.path();
            let rel = path
                .strip_prefix(root)
                .unwrap()
                .to_string_lossy()
                .replace('\\', "/");
            if ignore.contains(&rel.as_str()) {
                continue;
            }
            let meta = fs::symlink_metadata(&path).unwrap();
            let node = if meta.file_type().is_symlink() {
                Node::Link(fs::read_link(&path).unwrap())
            } else if meta.is_dir() {
                pending.push(path.clone());
                Node::Dir
            } else {
                Node::File {
                    sha256: hex::encode(Sha256::digest(fs::read(&path).unwrap())),
                    executable: is_executable(&meta),
                }
            };
            out.insert(rel, node);
        }
    }
    out
}

#[cfg(unix)]
fn is_executable(meta: &fs::Metadata) -> bool {
    use std::os::unix::fs::PermissionsExt;
    meta.permissions().mode() & 0o111 != 0
}

#[cfg(not(unix))]
fn is_executable(_meta: &fs::Metadata) -> bool {
    false
}

struct Fixture {
    _tmp: tempfile::TempDir,
    src: PathBuf,
    pkg: PathBuf,
    root: PathBuf,
    out: PackOutput,
}

fn packed(compression: Compression) -> Fixture {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().to_path_buf();
    let src = root.join("openvoice");
    model_tree(&src);
    let pkg = root.join("pkg");
    let opts = PackOptions {
        part_size: PART,
        compression,
        created_at: Some(UNIX_EPOCH + Duration::from_secs(1_700_000_000)),
        ..PackOptions::new(&pkg)
    };
    let out = package::pack(&src, &opts).unwrap();
    Fixture {
        _tmp: tmp,
        src,
        pkg,
        root,
        out,
    }
}

fn part_path(f: &Fixture, index: usize) -> PathBuf {
    f.pkg.join(&f.out.manifest.parts[index].name)
}

fn package_error(r: vctts_core::Result<impl std::fmt::Debug>) -> String {
    match r {
        Err(e @ vctts_core::Error::Package(_)) => e.to_string(),
        other => panic!("expected a package error, got {other:?}"),
    }
}

/// Hidden temporary folders a restore may leave beside its destination.
fn leftovers(dir: &Path) -> Vec<String> {
    fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains(".restore-") || n.contains(".old-"))
        .collect()
}

#[test]
fn round_trip_restores_every_file_folder_and_link() {
    let f = packed(Compression::Gzip);
    let m = &f.out.manifest;
    assert_eq!(m.name, "openvoice");
    assert_eq!(m.engine, Some(EngineKind::OpenVoice));
    assert_eq!(m.created_at, "2023-11-14T22:13:20Z");
    assert!(m.tool.starts_with("vctts "));
    assert!(
        m.parts.len() >= 4,
        "the big file spans several parts: {}",
        m.parts.len()
    );
    assert!(
        m.files
            .iter()
            .any(|e| e.path == "converter/deep/deeper/empty.bin" && e.size == 0)
    );
    assert!(m.dirs.contains(&"empty_dir".to_string()));
    let paths: Vec<&str> = m.files.iter().map(|e| e.path.as_str()).collect();
    let mut sorted = paths.clone();
    sorted.sort_unstable();
    assert_eq!(paths, sorted, "files are listed sorted");

    let report = package::verify(&f.pkg).unwrap();
    assert_eq!(report.parts, m.parts.len());
    assert_eq!(report.files, m.files.len());

    let dest = f.root.join("models/openvoice");
    let mut events: Vec<(Stage, u64, u64)> = Vec::new();
    let mut record = |e: &ProgressEvent<'_>| events.push((e.stage, e.bytes_done, e.bytes_total));
    let r = package::restore_with_progress(&f.pkg, &dest, &RestoreOptions::default(), &mut record).unwrap();
    assert_eq!(r.files, m.files.len());
    assert_eq!(r.bytes, m.unpacked_size);
    assert!(!r.replaced);
    assert_eq!(snapshot(&dest, &["openvoice.pkg.sha256"]), snapshot(&f.src, &[]));
    let sums = fs::read_to_string(dest.join("openvoice.pkg.sha256")).unwrap();
    assert_eq!(
        sums,
        fs::read_to_string(f.pkg.join("openvoice.pkg.sha256")).unwrap()
    );
    assert!(leftovers(&f.root.join("models")).is_empty());

    // Progress: verify over the part bytes, then restore over the file bytes,
    // never going backwards, ending at the total.
    for (stage, total) in [(Stage::Verify, m.total_size), (Stage::Restore, m.unpacked_size)] {
        let mine: Vec<_> = events.iter().filter(|e| e.0 == stage).collect();
        assert!(mine.iter().all(|e| e.2 == total));
        assert!(mine.windows(2).all(|w| w[0].1 <= w[1].1));
        assert_eq!(mine.last().unwrap().1, total);
    }
}

#[test]
fn parts_have_exactly_the_part_size() {
    let f = packed(Compression::Gzip);
    let m = &f.out.manifest;
    let mut sum = 0;
    for (i, part) in m.parts.iter().enumerate() {
        assert_eq!(part.name, package::part_file_name("openvoice", i as u64));
        let bytes = fs::read(f.pkg.join(&part.name)).unwrap();
        assert_eq!(bytes.len() as u64, part.size);
        assert_eq!(hex::encode(Sha256::digest(&bytes)), part.sha256);
        if i + 1 < m.parts.len() {
            assert_eq!(part.size, PART, "part {i}");
        } else {
            assert!(part.size > 0 && part.size <= PART);
        }
        sum += part.size;
    }
    assert_eq!(sum, m.total_size);
    // Nothing but the documented files.
    let mut names: Vec<String> = fs::read_dir(&f.pkg)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    let mut expected: Vec<String> = m.parts.iter().map(|p| p.name.clone()).collect();
    expected.extend(
        [
            "README.md",
            "openvoice.pkg.manifest.json",
            "openvoice.pkg.parts.sha256",
            "openvoice.pkg.sha256",
        ]
        .map(String::from),
    );
    expected.sort();
    assert_eq!(names, expected);
    let readme = fs::read_to_string(f.pkg.join("README.md")).unwrap();
    assert!(readme.contains("vctts models restore"));
    assert!(readme.contains("cat openvoice.pkg.part_* | tar -xz -C"));
    assert!(readme.contains("sha256sum -c"));
}

#[test]
fn a_corrupt_byte_in_part_3_is_named() {
    let f = packed(Compression::Gzip);
    let p = part_path(&f, 2);
    let mut bytes = fs::read(&p).unwrap();
    bytes[100] ^= 0x01;
    fs::write(&p, bytes).unwrap();
    let e = package_error(package::verify(&f.pkg));
    assert!(
        e.contains("part openvoice.pkg.part_ac is corrupt: sha256 mismatch"),
        "{e}"
    );
    let dest = f.root.join("dest");
    let e = package_error(package::restore(&f.pkg, &dest, &RestoreOptions::default()));
    assert!(e.contains("part openvoice.pkg.part_ac is corrupt"), "{e}");
    assert!(!dest.exists());
    // Without the separate pass the streaming check still catches it.
    let opts = RestoreOptions {
        verify_parts: false,
        ..RestoreOptions::default()
    };
    let e = package_error(package::restore(&f.pkg, &dest, &opts));
    assert!(
        e.contains("openvoice.pkg.part_ac") || e.contains("damaged"),
        "{e}"
    );
    assert!(!dest.exists());
    assert!(leftovers(&f.root).is_empty());
}

#[test]
fn a_missing_last_part_is_named() {
    let f = packed(Compression::Gzip);
    let last = f.out.manifest.parts.last().unwrap().name.clone();
    fs::remove_file(f.pkg.join(&last)).unwrap();
    let e = package_error(package::verify(&f.pkg));
    assert!(e.contains(&format!("part {last} is missing")), "{e}");
    let e = package_error(package::restore(
        &f.pkg,
        &f.root.join("dest"),
        &RestoreOptions::default(),
    ));
    assert!(e.contains(&format!("part {last} is missing")), "{e}");
}

#[test]
fn a_truncated_or_stray_part_is_named() {
    let f = packed(Compression::Gzip);
    let p = part_path(&f, 1);
    let bytes = fs::read(&p).unwrap();
    fs::write(&p, &bytes[..bytes.len() - 1]).unwrap();
    let e = package_error(package::verify(&f.pkg));
    assert!(e.contains("part openvoice.pkg.part_ab is truncated"), "{e}");
    fs::write(&p, &bytes).unwrap();
    package::verify(&f.pkg).unwrap();
    let stray = package::part_file_name("openvoice", f.out.manifest.parts.len() as u64);
    fs::write(f.pkg.join(&stray), b"left over from an older pack").unwrap();
    let e = package_error(package::verify(&f.pkg));
    assert!(e.contains(&format!("unexpected part {stray}")), "{e}");
}

#[test]
fn a_tampered_manifest_is_detected() {
    let f = packed(Compression::Gzip);
    let path = &f.out.manifest_path;
    let original = fs::read_to_string(path).unwrap();
    let m = &f.out.manifest;
    // Claim a different checksum for one file, keeping everything else.
    let tampered = original.replacen(&m.files[0].sha256, &"0".repeat(64), 1);
    assert_ne!(tampered, original);
    fs::write(path, &tampered).unwrap();
    let e = package_error(package::verify(&f.pkg));
    assert!(e.contains("manifest has been modified"), "{e}");
    let e = package_error(package::restore(
        &f.pkg,
        &f.root.join("dest"),
        &RestoreOptions::default(),
    ));
    assert!(e.contains("manifest has been modified"), "{e}");
    // A checksum list that disagrees with the manifest is reported too.
    fs::write(path, &original).unwrap();
    package::verify(&f.pkg).unwrap();
    fs::write(f.pkg.join("openvoice.pkg.sha256"), "junk\n").unwrap();
    let e = package_error(package::verify(&f.pkg));
    assert!(
        e.contains("openvoice.pkg.sha256 does not match the manifest"),
        "{e}"
    );
}

#[test]
fn gzip_packages_restore_with_cat_and_tar() {
    let f = packed(Compression::Gzip);
    let dest = f.root.join("by-hand");
    fs::create_dir(&dest).unwrap();
    let status = Command::new("sh")
        .arg("-c")
        .arg("cat openvoice.pkg.part_* | tar -xz -C \"$DEST\"")
        .env("DEST", &dest)
        .current_dir(&f.pkg)
        .status()
        .expect("sh, cat and tar are installed");
    assert!(status.success());
    assert_eq!(snapshot(&dest, &[]), snapshot(&f.src, &[]));
    // The README's checks with sha256sum pass.
    let check = Command::new("sh")
        .arg("-c")
        .arg(
            "sha256sum --quiet -c openvoice.pkg.parts.sha256 && \
             (PKG=\"$PWD\"; cd \"$DEST\" && sha256sum --quiet -c \"$PKG/openvoice.pkg.sha256\")",
        )
        .env("DEST", &dest)
        .current_dir(&f.pkg)
        .status()
        .unwrap();
    assert!(check.success());
}

#[test]
fn zstd_round_trip() {
    let f = packed(Compression::Zstd);
    assert_eq!(f.out.manifest.compression, Compression::Zstd);
    package::verify(&f.pkg).unwrap();
    let dest = f.root.join("zstd-dest");
    package::restore(&f.pkg, &dest, &RestoreOptions::default()).unwrap();
    assert_eq!(snapshot(&dest, &["openvoice.pkg.sha256"]), snapshot(&f.src, &[]));
    let readme = fs::read_to_string(f.pkg.join("README.md")).unwrap();
    assert!(readme.contains("cat openvoice.pkg.part_* | zstd -d | tar -x -C"));
}

#[test]
fn zstd_packages_restore_with_standard_tools_where_zstd_is_installed() {
    if Command::new("zstd").arg("--version").output().is_err() {
        eprintln!("zstd is not installed; the vctts zstd round trip is covered by zstd_round_trip");
        return;
    }
    let f = packed(Compression::Zstd);
    let dest = f.root.join("by-hand");
    fs::create_dir(&dest).unwrap();
    let status = Command::new("sh")
        .arg("-c")
        .arg("cat openvoice.pkg.part_* | zstd -q -d | tar -x -C \"$DEST\"")
        .env("DEST", &dest)
        .current_dir(&f.pkg)
        .status()
        .unwrap();
    assert!(status.success());
    assert_eq!(snapshot(&dest, &[]), snapshot(&f.src, &[]));
}

#[test]
fn a_failed_restore_leaves_an_existing_dest_untouched() {
    let f = packed(Compression::Gzip);
    let models = f.root.join("models");
    let dest = models.join("openvoice");
    fs::create_dir_all(dest.join("old")).unwrap();
    fs::write(dest.join("old/keep.onnx"), b"the old model").unwrap();
    let before = snapshot(&dest, &[]);
    // Damage the last part so the failure comes late, after files were written.
    let p = part_path(&f, f.out.manifest.parts.len() - 1);
    let mut bytes = fs::read(&p).unwrap();
    let n = bytes.len();
    bytes[n / 2] ^= 0xff;
    fs::write(&p, bytes).unwrap();
    let opts = RestoreOptions {
        replace: true,
        verify_parts: false,
        ..RestoreOptions::default()
    };
    package_error(package::restore(&f.pkg, &dest, &opts));
    assert_eq!(snapshot(&dest, &[]), before);
    assert!(leftovers(&models).is_empty(), "{:?}", leftovers(&models));
}

#[test]
fn restore_replaces_only_when_asked() {
    let f = packed(Compression::Gzip);
    let dest = f.root.join("models/openvoice");
    fs::create_dir_all(&dest).unwrap();
    fs::write(dest.join("stale.onnx"), b"old").unwrap();
    let e = package::restore(&f.pkg, &dest, &RestoreOptions::default()).unwrap_err();
    assert_eq!(e.code(), "invalid_input");
    assert!(e.to_string().contains("--replace"), "{e}");
    assert!(dest.join("stale.onnx").exists());
    let opts = RestoreOptions {
        replace: true,
        ..RestoreOptions::default()
    };
    let r = package::restore(&f.pkg, &dest, &opts).unwrap();
    assert!(r.replaced);
    assert_eq!(r.old_left_at, None);
    assert!(!dest.join("stale.onnx").exists());
    assert_eq!(snapshot(&dest, &["openvoice.pkg.sha256"]), snapshot(&f.src, &[]));
    assert!(leftovers(&f.root.join("models")).is_empty());
    // An empty existing folder is replaced without asking.
    let empty = f.root.join("models/empty");
    fs::create_dir(&empty).unwrap();
    package::restore(&f.pkg, &empty, &RestoreOptions::default()).unwrap();
    assert!(empty.join("README.txt").is_file());
}

#[test]
fn restore_refuses_a_dest_holding_the_package() {
    let f = packed(Compression::Gzip);
    let opts = RestoreOptions {
        replace: true,
        ..RestoreOptions::default()
    };
    let e = package::restore(&f.pkg, &f.pkg, &opts).unwrap_err();
    assert!(e.to_string().contains("inside"), "{e}");
    package::verify(&f.pkg).unwrap();
}

#[test]
fn pack_refuses_to_overwrite_unless_forced() {
    let f = packed(Compression::Gzip);
    let opts = PackOptions {
        part_size: PART,
        ..PackOptions::new(&f.pkg)
    };
    let e = package::pack(&f.src, &opts).unwrap_err();
    assert!(e.to_string().contains("--force"), "{e}");
    package::verify(&f.pkg).unwrap();
    // Forced, with a bigger part size: no stale part survives.
    let opts = PackOptions {
        part_size: 1 << 20,
        overwrite: true,
        ..PackOptions::new(&f.pkg)
    };
    let out = package::pack(&f.src, &opts).unwrap();
    assert_eq!(out.manifest.parts.len(), 1);
    package::verify(&f.pkg).unwrap();
}

// ---- hostile archives -------------------------------------------------

/// A gzip package named `evil` around a hand-made tar stream, with a sealed
/// manifest listing `files`, `dirs` and `links`.
fn hostile_package(
    dir: &Path,
    tar_bytes: &[u8],
    files: Vec<FileEntry>,
    dirs: Vec<String>,
    links: Vec<LinkEntry>,
) -> PathBuf {
    let pkg = dir.join("evil-pkg");
    fs::create_dir_all(&pkg).unwrap();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(tar_bytes).unwrap();
    let stream = gz.finish().unwrap();
    fs::write(pkg.join("evil.pkg.part_aa"), &stream).unwrap();
    let mut m = Manifest {
        format_version: package::FORMAT_VERSION,
        name: "evil".into(),
        engine: None,
        tool: "test".into(),
        compression: Compression::Gzip,
        created_at: "2025-01-01T00:00:00Z".into(),
        total_size: stream.len() as u64,
        unpacked_size: files.iter().map(|f| f.size).sum(),
        part_size: stream.len() as u64,
        dirs,
        files,
        links,
        parts: vec![PartEntry {
            name: "evil.pkg.part_aa".into(),
            size: stream.len() as u64,
            sha256: hex::encode(Sha256::digest(&stream)),
        }],
        manifest_sha256: String::new(),
    };
    m.seal();
    fs::write(pkg.join("evil.pkg.manifest.json"), m.to_json()).unwrap();
    pkg
}

/// A header whose name (and link name) bytes are written raw, bypassing the
/// tar crate's own path checks.
fn raw_header(kind: tar::EntryType, path: &[u8], link: &[u8], size: u64) -> tar::Header {
    let mut h = tar::Header::new_old();
    h.as_old_mut().name[..path.len()].copy_from_slice(path);
    h.as_old_mut().linkname[..link.len()].copy_from_slice(link);
    h.set_entry_type(kind);
    h.set_mode(0o644);
    h.set_size(size);
    h.set_cksum();
    h
}

fn tar_of(entries: &[(tar::Header, &[u8])]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (h, data) in entries {
        b.append(h, *data).unwrap();
    }
    b.into_inner().unwrap()
}

fn file_entry(path: &str, data: &[u8]) -> FileEntry {
    FileEntry {
        path: path.into(),
        size: data.len() as u64,
        sha256: hex::encode(Sha256::digest(data)),
    }
}

/// Restores a hostile package and returns the error; checks that nothing was
/// written outside the destination and the destination was not created.
fn refused(tar_bytes: Vec<u8>, files: Vec<FileEntry>, dirs: Vec<String>, links: Vec<LinkEntry>) -> String {
    let tmp = tempfile::tempdir().unwrap();
    let pkg = hostile_package(tmp.path(), &tar_bytes, files, dirs, links);
    let area = tmp.path().join("area");
    fs::create_dir(&area).unwrap();
    let dest = area.join("dest");
    let e = package_error(package::restore(&pkg, &dest, &RestoreOptions::default()));
    assert!(!dest.exists(), "{e}");
    assert!(leftovers(&area).is_empty());
    assert_eq!(
        fs::read_dir(&area).unwrap().count(),
        0,
        "nothing escaped into the parent: {e}"
    );
    assert!(!tmp.path().join("evil").exists());
    e
}

#[test]
fn an_absolute_path_is_refused() {
    let data = b"owned";
    let tar = tar_of(&[(
        raw_header(tar::EntryType::Regular, b"/var/vctts-evil", b"", 5),
        data,
    )]);
    let e = refused(tar, vec![], vec![], vec![]);
    assert!(
        e.contains("archive entry \"/var/vctts-evil\" is refused: it is an absolute path"),
        "{e}"
    );
}

#[test]
fn a_dot_dot_path_is_refused() {
    let data = b"owned";
    let tar = tar_of(&[(
        raw_header(tar::EntryType::Regular, b"ok/../../evil", b"", 5),
        data,
    )]);
    let e = refused(tar, vec![], vec![], vec![]);
    assert!(
        e.contains("archive entry \"ok/../../evil\" is refused") && e.contains("'..'"),
        "{e}"
    );
}

#[test]
fn a_symlink_leaving_dest_is_refused() {
    for target in [&b"../../evil"[..], b"/etc/passwd", b"sub/../../.."] {
        let tar = tar_of(&[(raw_header(tar::EntryType::Symlink, b"link", target, 0), &[][..])]);
        let e = refused(tar, vec![], vec![], vec![]);
        assert!(
            e.contains("archive entry \"link\" is refused: it is a symlink that"),
            "{e}"
        );
        assert!(e.contains("outside") || e.contains("absolute"), "{e}");
    }
}

#[test]
fn a_hard_link_leaving_dest_is_refused() {
    let tar = tar_of(&[(
        raw_header(tar::EntryType::Link, b"hard", b"../../etc/passwd", 0),
        &[][..],
    )]);
    let e = refused(tar, vec![], vec![], vec![]);
    assert!(
        e.contains("archive entry \"hard\" is refused: it is a hard link") && e.contains("outside"),
        "{e}"
    );
    // Even one that stays inside: vctts never writes hard links.
    let tar = tar_of(&[(raw_header(tar::EntryType::Link, b"hard", b"a", 0), &[][..])]);
    let e = refused(tar, vec![], vec![], vec![]);
    assert!(e.contains("it is a hard link"), "{e}");
}

#[test]
fn device_files_are_refused() {
    for (kind, what) in [
        (tar::EntryType::Char, "character device"),
        (tar::EntryType::Block, "block device"),
        (tar::EntryType::Fifo, "FIFO"),
    ] {
        let tar = tar_of(&[(raw_header(kind, b"dev", b"", 0), &[][..])]);
        let e = refused(tar, vec![], vec![], vec![]);
        assert!(
            e.contains(&format!("archive entry \"dev\" is refused: it is a {what}")),
            "{e}"
        );
    }
}

#[test]
fn writing_through_a_symlink_is_refused() {
    let data = b"owned";
    let tar = tar_of(&[
        (raw_header(tar::EntryType::Directory, b"sub/", b"", 0), &[][..]),
        (raw_header(tar::EntryType::Symlink, b"link", b"sub", 0), &[][..]),
        (raw_header(tar::EntryType::Regular, b"link/x", b"", 5), data),
    ]);
    let links = vec![LinkEntry {
        path: "link".into(),
        target: "sub".into(),
    }];
    let e = refused(tar, vec![], vec!["sub".into()], links);
    assert!(
        e.contains("archive entry \"link/x\" is refused: it lies below the symlink \"link\""),
        "{e}"
    );
}

#[test]
fn entries_must_match_the_manifest() {
    let data = b"hello";
    let tar = || tar_of(&[(raw_header(tar::EntryType::Regular, b"a.onnx", b"", 5), &data[..])]);
    // Not listed at all.
    let e = refused(tar(), vec![], vec![], vec![]);
    assert!(e.contains("the manifest does not list it"), "{e}");
    // Listed with another checksum.
    let e = refused(tar(), vec![file_entry("a.onnx", b"HELLO")], vec![], vec![]);
    assert!(e.contains("file a.onnx is corrupt: sha256 mismatch"), "{e}");
    // A listed file the archive lacks.
    let e = refused(
        tar(),
        vec![file_entry("a.onnx", data), file_entry("b.onnx", b"")],
        vec![],
        vec![],
    );
    assert!(
        e.contains("file b.onnx is listed in the manifest but missing from the archive"),
        "{e}"
    );
    // And the honest version restores.
    let tmp = tempfile::tempdir().unwrap();
    let pkg = hostile_package(
        tmp.path(),
        &tar(),
        vec![file_entry("a.onnx", data)],
        vec![],
        vec![],
    );
    let dest = tmp.path().join("dest");
    package::restore(&pkg, &dest, &RestoreOptions::default()).unwrap();
    assert_eq!(fs::read(dest.join("a.onnx")).unwrap(), data);
}

// ---- installed models -------------------------------------------------

#[test]
fn list_installed_reports_each_engine() {
    let f = packed(Compression::Gzip);
    let models = f.root.join("models");
    fs::create_dir_all(models.join("xtts_v2")).unwrap();
    fs::write(models.join("xtts_v2/gpt_model.onnx"), b"gpt").unwrap();
    package::restore(&f.pkg, &models.join("openvoice"), &RestoreOptions::default()).unwrap();

    let list = package::list_installed(&models);
    let kinds: Vec<EngineKind> = list.iter().map(|m| m.engine).collect();
    assert_eq!(kinds, EngineKind::ALL);
    let [xtts, openvoice, sovits] = &list[..] else {
        panic!()
    };
    assert_eq!(xtts.state, InstallState::MissingFiles);
    assert!(xtts.missing.contains(&"speaker_encoder.onnx".to_string()));
    assert!(!xtts.missing.contains(&"gpt_model.onnx".to_string()));
    assert_eq!(openvoice.state, InstallState::Complete, "{openvoice:?}");
    assert_eq!(openvoice.checked_against, ["openvoice.pkg.sha256"]);
    assert_eq!(
        openvoice.missing_optional,
        ["converter/tone_color_extract_model.onnx"]
    );
    assert_eq!(sovits.state, InstallState::NotInstalled);
    assert!(sovits.advice().contains("vctts models restore"));

    // One flipped byte is a checksum mismatch; a deleted file is missing.
    let onnx = models.join("openvoice/converter/tone_clone_model.onnx");
    let mut bytes = fs::read(&onnx).unwrap();
    bytes[7] ^= 1;
    fs::write(&onnx, &bytes).unwrap();
    let openvoice = &package::list_installed(&models)[1];
    assert_eq!(openvoice.state, InstallState::ChecksumMismatch);
    assert_eq!(openvoice.corrupt, ["converter/tone_clone_model.onnx"]);
    fs::remove_file(models.join("openvoice/converter/deep/notes.txt")).unwrap();
    let openvoice = &package::list_installed(&models)[1];
    assert_eq!(openvoice.state, InstallState::MissingFiles);
    assert!(
        openvoice.missing[0].starts_with("converter/deep/notes.txt"),
        "{:?}",
        openvoice.missing
    );

    // A folder that holds only a package still has to be restored.
    let packaged = f.root.join("packaged");
    fs::create_dir_all(&packaged).unwrap();
    fs::rename(&f.pkg, packaged.join("openvoice")).unwrap();
    let openvoice = &package::list_installed(&packaged)[1];
    assert_eq!(openvoice.state, InstallState::Packaged);
    assert!(openvoice.advice().contains("vctts models restore"));
}
