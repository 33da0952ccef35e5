//! `vctts models import gpt-sovits`: turns a trained GPT-SoVITS v2 pair
//! (`*.ckpt` GPT, `*.pth` SoVITS) plus the pretrained `chinese-hubert-base`
//! and `chinese-roberta-wwm-ext-large` folders into the model folder, by
//! running `scripts/export/gpt_sovits_export.py` with a Python that has
//! torch, onnx, transformers and genie-tts.
//!
//! Invariants: nothing is written into the destination unless the export
//! succeeded and the result passes [`ModelFiles::scan`]; an existing model
//! folder is never overwritten; without a usable Python the error holds the
//! exact commands that set one up.

use super::model::ModelFiles;
use std::path::{Path, PathBuf};
use std::process::Command;
use vctts_core::{EngineKind, Error, Result};

/// The export script, relative to the project root.
pub const SCRIPT: &str = "scripts/export/gpt_sovits_export.py";

/// What to import and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportRequest {
    /// The trained GPT checkpoint (`*.ckpt`).
    pub gpt: PathBuf,
    /// The trained SoVITS weights (`*.pth`).
    pub sovits: PathBuf,
    /// The `chinese-hubert-base` folder.
    pub hubert: PathBuf,
    /// The `chinese-roberta-wwm-ext-large` folder.
    pub bert: PathBuf,
    /// The models root; the folder goes to `<root>/gpt_sovits`.
    pub models_root: PathBuf,
    /// The Python to run; `None`: `VCTTS_PYTHON`, else `python3`.
    pub python: Option<PathBuf>,
    /// The export script; `None`: [`SCRIPT`] found upwards from the working
    /// directory and the executable.
    pub script: Option<PathBuf>,
}

/// The commands that prepare a Python for the export.
pub fn setup_commands() -> String {
    "python3 -m venv .venv-gpt-sovits\n\
     .venv-gpt-sovits/bin/pip install torch onnx numpy transformers genie-tts==2.0.2\n\
     export VCTTS_PYTHON=$PWD/.venv-gpt-sovits/bin/python"
        .to_string()
}

fn find_script() -> Option<PathBuf> {
    let mut roots: Vec<PathBuf> = Vec::new();
    if let Ok(cwd) = std::env::current_dir() {
        roots.extend(cwd.ancestors().map(Path::to_path_buf));
    }
    if let Ok(exe) = std::env::current_exe() {
        roots.extend(exe.ancestors().skip(1).map(Path::to_path_buf));
    }
    roots.into_iter().map(|r| r.join(SCRIPT)).find(|p| p.is_file())
}

/// Checks that `python` can run the export; the error says how to fix it.
pub fn check_python(python: &Path) -> Result<()> {
    let probe = "import importlib.util as u, sys\n\
                 missing = [m for m in ('torch', 'onnx', 'numpy', 'transformers', 'genie_tts') if u.find_spec(m) is None]\n\
                 print(','.join(missing))\n\
                 sys.exit(1 if missing else 0)";
    let out = Command::new(python).arg("-c").arg(probe).output();
    match out {
        Ok(o) if o.status.success() => Ok(()),
        Ok(o) => Err(Error::Config(format!(
            "{} lacks the Python packages {} needed to convert GPT-SoVITS weights; set one up with:\n{}",
            python.display(),
            String::from_utf8_lossy(&o.stdout).trim(),
            setup_commands()
        ))),
        Err(e) => Err(Error::Config(format!(
            "cannot run {} ({e}); converting GPT-SoVITS weights needs Python with torch; set one up with:\n{}",
            python.display(),
            setup_commands()
        ))),
    }
}

fn need_file(p: &Path, what: &str) -> Result<()> {
    if p.is_file() {
        Ok(())
    } else {
        Err(Error::invalid(what, format!("{} is not a file", p.display())))
    }
}

fn need_dir(p: &Path, what: &str) -> Result<()> {
    if p.is_dir() {
        Ok(())
    } else {
        Err(Error::invalid(what, format!("{} is not a folder", p.display())))
    }
}

/// Runs the import; returns the model folder it wrote.
pub fn import(req: &ImportRequest) -> Result<PathBuf> {
    need_file(&req.gpt, "gpt")?;
    need_file(&req.sovits, "sovits")?;
    need_dir(&req.hubert, "hubert")?;
    need_dir(&req.bert, "bert")?;
    let dest = crate::catalog::model_dir(EngineKind::GptSovits, &req.models_root);
    if dest.join("metadata.json").exists() {
        return Err(Error::invalid(
            "to",
            format!(
                "{} already holds a GPT-SoVITS model; move it away first",
                dest.display()
            ),
        ));
    }
    let python = req
        .python
        .clone()
        .or_else(|| std::env::var_os("VCTTS_PYTHON").map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from("python3"));
    check_python(&python)?;
    let script = match &req.script {
        Some(s) => s.clone(),
        None => find_script().ok_or_else(|| {
            Error::Config(format!(
                "{SCRIPT} not found from the working directory or the executable; run from the vctts checkout"
            ))
        })?,
    };
    std::fs::create_dir_all(&req.models_root).map_err(|e| Error::Io {
        context: req.models_root.display().to_string(),
        source: e,
    })?;
    let staging = req.models_root.join(".gpt_sovits.importing");
    let _ = std::fs::remove_dir_all(&staging);
    let out = Command::new(&python)
        .arg(&script)
        .arg("--gpt")
        .arg(&req.gpt)
        .arg("--sovits")
        .arg(&req.sovits)
        .arg("--hubert")
        .arg(&req.hubert)
        .arg("--bert")
        .arg(&req.bert)
        .arg("--out")
        .arg(&staging)
        .output()
        .map_err(|e| Error::Config(format!("cannot run {}: {e}", python.display())))?;
    if !out.status.success() {
        let _ = std::fs::remove_dir_all(&staging);
        let stderr = String::from_utf8_lossy(&out.stderr);
        let tail: Vec<&str> = stderr.lines().rev().take(12).collect();
        return Err(Error::ModelLoad(format!(
            "the GPT-SoVITS export failed: {}",
            tail.into_iter().rev().collect::<Vec<_>>().join("\n")
        )));
    }
    ModelFiles::scan(&staging)?;
    if dest.exists() {
        // An empty or partial folder without metadata: replace it.
        std::fs::remove_dir_all(&dest).map_err(|e| Error::Io {
            context: dest.display().to_string(),
            source: e,
        })?;
    }
    std::fs::rename(&staging, &dest).map_err(|e| Error::Io {
        context: dest.display().to_string(),
        source: e,
    })?;
    Ok(dest)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_inputs_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let req = ImportRequest {
            gpt: dir.path().join("x.ckpt"),
            sovits: dir.path().join("y.pth"),
            hubert: dir.path().to_path_buf(),
            bert: dir.path().to_path_buf(),
            models_root: dir.path().join("models"),
            python: None,
            script: None,
        };
        let e = import(&req).unwrap_err();
        assert!(e.to_string().contains("x.ckpt"), "{e}");
    }

    #[test]
    fn a_python_that_cannot_run_gives_the_setup_commands() {
        let e = check_python(Path::new("/nonexistent/python-for-vctts")).unwrap_err();
        assert_eq!(e.code(), "invalid_config");
        assert!(
            e.to_string()
                .contains("pip install torch onnx numpy transformers genie-tts==2.0.2"),
            "{e}"
        );
    }
}
