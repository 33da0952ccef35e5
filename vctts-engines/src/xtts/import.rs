//! Importing a user's Coqui XTTS-v2 checkpoint (`model.pth`, `config.json`,
//! `vocab.json`, optionally `mel_stats.pth`/`speakers_xtts.pth`) into the
//! model folder `models/xtts_v2/` by running the project's conversion script
//! `scripts/export/xtts_export.py` (torch + `coqui-tts`).
//!
//! Invariants: the source folder is checked before Python is started; when
//! no Python with torch and `coqui-tts` is found, the error message holds
//! the exact commands that set one up; the output folder is written to a
//! temporary sibling and renamed into place only after the export succeeded.
//! The script also copies unidic-lite's MeCab dictionary to `ja/unidic/`
//! when that package is installed (Japanese needs it, see
//! [`super::japanese`]); the set-up commands install it.

use std::path::{Path, PathBuf};
use std::process::Command;
use vctts_core::{Error, Result};

/// The conversion script, relative to the project root.
pub const EXPORT_SCRIPT: &str = "scripts/export/xtts_export.py";

/// The commands that set up a Python able to run the import.
pub fn setup_commands() -> String {
    "python3 -m venv .venv-xtts && \
     .venv-xtts/bin/pip install torch onnx coqui-tts==0.28.0 'transformers>=4.57,<5' torchcodec six unidic-lite==1.0.8 && \
     export VCTTS_PYTHON=$PWD/.venv-xtts/bin/python"
        .to_string()
}

/// Python to use: `VCTTS_PYTHON`, else `.venv-xtts/bin/python` under the
/// project root, else `python3` on the PATH.
fn python_candidates(root: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Some(p) = std::env::var_os("VCTTS_PYTHON").filter(|p| !p.is_empty()) {
        out.push(PathBuf::from(p));
    }
    out.push(root.join(".venv-xtts/bin/python"));
    out.push(PathBuf::from("python3"));
    out
}

fn has_deps(python: &Path) -> bool {
    Command::new(python)
        .args(["-c", "import torch, onnx, TTS.tts.models.xtts"])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}

/// Checks that `src` looks like an XTTS-v2 checkpoint folder.
pub fn check_source(src: &Path) -> Result<()> {
    let missing: Vec<&str> = ["model.pth", "config.json", "vocab.json"]
        .into_iter()
        .filter(|f| !src.join(f).is_file())
        .collect();
    if !missing.is_empty() {
        return Err(Error::invalid(
            "checkpoint",
            format!(
                "{} lacks {} (an XTTS-v2 checkpoint folder has model.pth, config.json and vocab.json)",
                src.display(),
                missing.join(", ")
            ),
        ));
    }
    Ok(())
}

/// Converts the checkpoint in `src` into `<models_root>/xtts_v2` and returns
/// that folder. `project_root` is where `scripts/` is (the CLI passes the
/// folder it finds upwards from the working directory or the executable).
pub fn import_checkpoint(src: &Path, models_root: &Path, project_root: &Path) -> Result<PathBuf> {
    check_source(src)?;
    let script = project_root.join(EXPORT_SCRIPT);
    if !script.is_file() {
        return Err(Error::Config(format!(
            "the conversion script {} is not there; run the import from a vctts source checkout",
            script.display()
        )));
    }
    let python = python_candidates(project_root)
        .into_iter()
        .find(|p| has_deps(p))
        .ok_or_else(|| {
            Error::Config(format!(
                "importing an XTTS checkpoint needs Python with torch and coqui-tts; set it up from {} with:\n  {}",
                project_root.display(),
                setup_commands()
            ))
        })?;
    let dest = crate::catalog::model_dir(vctts_core::EngineKind::Xtts, models_root);
    let tmp = dest.with_extension("importing");
    if tmp.exists() {
        std::fs::remove_dir_all(&tmp).map_err(|e| Error::io(tmp.display().to_string(), e))?;
    }
    let out = Command::new(&python)
        .arg(&script)
        .arg(src)
        .arg(&tmp)
        .output()
        .map_err(|e| Error::io(python.display().to_string(), e))?;
    if !out.status.success() {
        let _ = std::fs::remove_dir_all(&tmp);
        let err = String::from_utf8_lossy(&out.stderr);
        let last: Vec<&str> = err.lines().rev().take(5).collect();
        return Err(Error::ModelLoad(format!(
            "the XTTS export failed: {}",
            last.into_iter().rev().collect::<Vec<_>>().join(" | ")
        )));
    }
    if dest.exists() {
        std::fs::remove_dir_all(&dest).map_err(|e| Error::io(dest.display().to_string(), e))?;
    }
    std::fs::rename(&tmp, &dest).map_err(|e| Error::io(dest.display().to_string(), e))?;
    Ok(dest)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_folder_without_a_checkpoint_is_refused_before_python() {
        let dir = tempfile::tempdir().unwrap();
        let e = import_checkpoint(dir.path(), dir.path(), dir.path()).unwrap_err();
        assert!(e.to_string().contains("model.pth"), "{e}");
        assert!(setup_commands().contains("coqui-tts==0.28.0"));
        assert!(setup_commands().contains(&format!(
            "unidic-lite=={}",
            super::super::japanese::UNIDIC_LITE_VERSION
        )));
    }
}
