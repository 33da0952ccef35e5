//! Which engine models a models directory holds, and in what state.
//!
//! For each engine folder ([`ENGINE_LAYOUTS`]: `xtts_v2/`, `openvoice/`,
//! `gpt_sovits/`) the required files are checked, and when the folder holds
//! a checksum source — a `*.pkg.sha256` list (a restore leaves one) or a
//! `*.pkg.manifest.json` — every file it lists is hashed and compared, so a
//! check reads the whole model (streaming, constant memory). A folder that
//! holds a package manifest but not the model files is reported as
//! [`InstallState::Packaged`]: it still has to be restored.

use super::hash::{is_sha256_hex, sha256_file};
use super::layout::ENGINE_LAYOUTS;
use super::manifest::Manifest;
use super::paths::check_package_path;
use crate::engine::EngineKind;
use serde::Serialize;
use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

/// The state of one engine folder.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum InstallState {
    /// The folder does not exist.
    NotInstalled,
    /// The folder holds a package (parts and manifest) but no restored model.
    Packaged,
    /// Required files, or files a checksum list names, are absent.
    MissingFiles,
    /// Every file is present but at least one fails its checksum.
    ChecksumMismatch,
    /// Every required file is present and every checked file matches.
    Complete,
}

impl InstallState {
    /// A lower-case label (`not installed`, `packaged`, `missing files`,
    /// `checksum mismatch`, `complete`).
    pub fn label(self) -> &'static str {
        match self {
            InstallState::NotInstalled => "not installed",
            InstallState::Packaged => "packaged",
            InstallState::MissingFiles => "missing files",
            InstallState::ChecksumMismatch => "checksum mismatch",
            InstallState::Complete => "complete",
        }
    }
}

/// One engine folder of a models directory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct InstalledModel {
    /// The engine.
    pub engine: EngineKind,
    /// Its folder.
    pub dir: PathBuf,
    /// The verdict.
    pub state: InstallState,
    /// Required items that are absent, and files a checksum source lists
    /// that are absent.
    pub missing: Vec<String>,
    /// Optional items that are absent (the engine runs without them).
    pub missing_optional: Vec<String>,
    /// Files that fail their checksum or cannot be read, with the reason.
    pub corrupt: Vec<String>,
    /// The checksum sources used (file names in the folder).
    pub checked_against: Vec<String>,
    /// Regular files in the folder, recursively.
    pub files: usize,
    /// Their total size in bytes.
    pub size_bytes: u64,
}

impl InstalledModel {
    /// What the state means and what to do about it, in one sentence.
    pub fn advice(&self) -> String {
        let folder = self.dir.display();
        match self.state {
            InstallState::NotInstalled => {
                format!("not installed: restore its package with `vctts models restore PKGDIR --to {folder}`")
            }
            InstallState::Packaged => format!(
                "{folder} holds a package, not a restored model: run `vctts models restore {folder} --to DEST` \
                 with DEST outside it, then point the engine at DEST"
            ),
            InstallState::MissingFiles => format!(
                "missing {}; copy the files in or restore the model package again",
                self.missing.join(", ")
            ),
            InstallState::ChecksumMismatch => format!(
                "corrupt: {}; restore the model package again",
                self.corrupt.join(", ")
            ),
            InstallState::Complete if self.missing_optional.is_empty() => "complete".to_string(),
            InstallState::Complete => format!(
                "complete; optional files absent: {}",
                self.missing_optional.join(", ")
            ),
        }
    }
}

/// Reports every engine folder of `models_dir`, in [`EngineKind::ALL`] order.
/// Never fails: unreadable files show up in [`InstalledModel::corrupt`].
pub fn list_installed(models_dir: &Path) -> Vec<InstalledModel> {
    ENGINE_LAYOUTS
        .iter()
        .map(|layout| {
            let dir = models_dir.join(layout.folder);
            let mut model = InstalledModel {
                engine: layout.kind,
                dir: dir.clone(),
                state: InstallState::NotInstalled,
                missing: Vec::new(),
                missing_optional: Vec::new(),
                corrupt: Vec::new(),
                checked_against: Vec::new(),
                files: 0,
                size_bytes: 0,
            };
            if !dir.is_dir() {
                model.missing = layout.required.iter().map(|r| r.describe()).collect();
                return model;
            }
            model.missing = layout.missing(&dir);
            model.missing_optional = layout.missing_optional(&dir);
            (model.files, model.size_bytes) = folder_size(&dir);
            let sources = checksum_sources(&dir);
            let holds_package = sources.iter().any(|s| s.ends_with(".pkg.manifest.json"));
            if holds_package && !model.missing.is_empty() {
                model.state = InstallState::Packaged;
                return model;
            }
            check_sums(&dir, &sources, &mut model);
            model.state = if !model.missing.is_empty() {
                InstallState::MissingFiles
            } else if !model.corrupt.is_empty() {
                InstallState::ChecksumMismatch
            } else {
                InstallState::Complete
            };
            model
        })
        .collect()
}

/// `*.pkg.sha256` and `*.pkg.manifest.json` files at the top of `dir`, sorted.
fn checksum_sources(dir: &Path) -> Vec<String> {
    let mut found: Vec<String> = fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.file_name().to_str().map(str::to_string))
        .filter(|n| {
            (n.ends_with(".pkg.sha256") || n.ends_with(".pkg.manifest.json")) && dir.join(n).is_file()
        })
        .collect();
    found.sort();
    found
}

/// Regular files below `dir` (symlinks not followed) and their total size.
fn folder_size(dir: &Path) -> (usize, u64) {
    let (mut files, mut bytes) = (0, 0);
    let mut pending = vec![dir.to_path_buf()];
    while let Some(d) = pending.pop() {
        for entry in fs::read_dir(&d).into_iter().flatten().flatten() {
            let Ok(meta) = entry.metadata() else { continue };
            if meta.is_dir() {
                pending.push(entry.path());
            } else if meta.is_file() {
                files += 1;
                bytes += meta.len();
            }
        }
    }
    (files, bytes)
}

/// Collects `path -> (expected sha256, source)` from every source and
/// checks each file.
fn check_sums(dir: &Path, sources: &[String], model: &mut InstalledModel) {
    let mut expected: BTreeMap<String, (String, String)> = BTreeMap::new();
    for source in sources {
        let path = dir.join(source);
        if source.ends_with(".pkg.manifest.json") {
            match Manifest::load(&path) {
                Ok(m) => {
                    for f in m.files {
                        expected.entry(f.path).or_insert((f.sha256, source.clone()));
                    }
                }
                Err(e) => {
                    model.corrupt.push(format!("{source} ({e})"));
                    continue;
                }
            }
        } else {
            let text = match fs::read_to_string(&path) {
                Ok(t) => t,
                Err(e) => {
                    model.corrupt.push(format!("{source} (cannot read: {e})"));
                    continue;
                }
            };
            for (n, line) in text.lines().enumerate() {
                let line = line.trim_end_matches('\r');
                if line.trim().is_empty() || line.starts_with('#') {
                    continue;
                }
                match parse_sum_line(line) {
                    Some((sha, p)) => {
                        expected
                            .entry(p.to_string())
                            .or_insert((sha.to_ascii_lowercase(), source.clone()));
                    }
                    None => model.corrupt.push(format!(
                        "{source} (line {} is not a `HASH  PATH` checksum line)",
                        n + 1
                    )),
                }
            }
        }
        model.checked_against.push(source.clone());
    }
    for (rel, (sha, source)) in expected {
        let file = dir.join(&rel);
        match sha256_file(&file, None) {
            Ok((_, actual)) if actual == sha => {}
            Ok(_) => model.corrupt.push(rel),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                model.missing.push(format!("{rel} (listed in {source})"));
            }
            Err(e) => model.corrupt.push(format!("{rel} (cannot read: {e})")),
        }
    }
}

/// Parses a `sha256sum` line (`HASH  PATH` or `HASH *PATH`) whose path is a
/// valid package path.
fn parse_sum_line(line: &str) -> Option<(&str, &str)> {
    let (sha, rest) = line.split_at_checked(64)?;
    let path = rest.strip_prefix("  ").or_else(|| rest.strip_prefix(" *"))?;
    let sha_ok = is_sha256_hex(&sha.to_ascii_lowercase());
    (sha_ok && check_package_path(path).is_ok()).then_some((sha, path))
}

#[cfg(test)]
mod tests {
    use super::*;

    const H: &str = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";

    #[test]
    fn parses_sum_lines() {
        assert_eq!(parse_sum_line(&format!("{H}  a/b.onnx")), Some((H, "a/b.onnx")));
        assert_eq!(parse_sum_line(&format!("{H} *a")), Some((H, "a")));
        assert_eq!(parse_sum_line(&format!("{H} a")), None);
        assert_eq!(parse_sum_line(&format!("{H}  ../etc/passwd")), None);
        assert_eq!(parse_sum_line(&format!("{H}  /etc/passwd")), None);
        assert_eq!(parse_sum_line("short  a"), None);
    }
}
