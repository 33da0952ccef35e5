//! `vctts models import openvoice <converter>`: turns the upstream OpenVoice
//! converter (`checkpoints_v2/converter`: `config.json` + `checkpoint.pth`)
//! into the ONNX layout of [`super::converter`], with
//! `scripts/export/openvoice_export.py` (embedded here, so the command works
//! from any directory) run by a Python that has torch, onnx and the upstream
//! model code.
//!
//! Invariants: nothing is written unless the export succeeds (the script
//! builds the new folder beside the target and renames it into place); when
//! Python or one of its packages is missing, the error holds the exact
//! commands that set them up; the child's stderr ends up in any other error.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Command;
use vctts_core::{Error, Result};

/// The export script, as committed in `scripts/export/`.
pub const EXPORT_SCRIPT: &str = include_str!("../../../scripts/export/openvoice_export.py");
/// Environment variable naming the Python interpreter to use.
pub const PYTHON_ENV: &str = "VCTTS_PYTHON";
/// The commands that give a Python able to run the export.
pub const SETUP_COMMANDS: &str = "python3 -m venv .vctts/export-venv\n  \
.vctts/export-venv/bin/pip install torch onnx onnxruntime numpy\n  \
.vctts/export-venv/bin/pip install --no-deps openvoice-cli==0.0.5\n  \
then run the import again with VCTTS_PYTHON=.vctts/export-venv/bin/python";

/// What [`import_converter`] needs besides the two folders.
#[derive(Debug, Clone)]
pub struct ImportOptions {
    /// The Python interpreter; `None` = `VCTTS_PYTHON`, else `python3`.
    pub python: Option<PathBuf>,
}

impl Default for ImportOptions {
    fn default() -> Self {
        Self {
            python: std::env::var_os(PYTHON_ENV)
                .filter(|v| !v.is_empty())
                .map(PathBuf::from),
        }
    }
}

/// Converts the upstream converter in `upstream` into
/// `<models_root>/openvoice/converter/` and returns that folder.
///
/// Errors: `upstream` without `config.json` or `checkpoint.pth` is
/// [`Error::InvalidInput`]; a missing Python, torch, onnx or `openvoice-cli`
/// is [`Error::ModelNotInstalled`] whose message lists [`SETUP_COMMANDS`]; a
/// failed export is [`Error::ModelLoad`] with the script's message.
pub fn import_converter(upstream: &Path, models_root: &Path, options: &ImportOptions) -> Result<PathBuf> {
    for file in ["config.json", "checkpoint.pth"] {
        if !upstream.join(file).is_file() {
            return Err(Error::invalid(
                "converter",
                format!(
                    "{} has no {file}; give the upstream converter folder (checkpoints_v2/converter of \
                     OpenVoice v2, with config.json and checkpoint.pth)",
                    upstream.display()
                ),
            ));
        }
    }
    let python = options.python.clone().unwrap_or_else(|| PathBuf::from("python3"));
    check_python(&python)?;
    let out = models_root.join("openvoice").join("converter");
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let work = std::env::temp_dir().join(format!("vctts-openvoice-export-{}-{nanos}", std::process::id()));
    std::fs::create_dir_all(&work).map_err(|e| Error::io(format!("creating {}", work.display()), e))?;
    let script = work.join("openvoice_export.py");
    let output = std::fs::write(&script, EXPORT_SCRIPT)
        .map_err(|e| Error::io(format!("writing {}", script.display()), e))
        .and_then(|()| {
            Command::new(&python)
                .arg(&script)
                .arg(upstream)
                .arg(&out)
                .output()
                .map_err(|e| missing_python(&python, &e.to_string()))
        });
    let _ = std::fs::remove_dir_all(&work);
    let output = output?;
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        let message = stderr
            .lines()
            .filter(|l| l.starts_with("openvoice_export:") || l.contains("Error"))
            .collect::<Vec<_>>()
            .join("; ");
        if output.status.code() == Some(3) {
            return Err(missing_python(&python, &message));
        }
        return Err(Error::ModelLoad(format!(
            "exporting {} failed ({}): {}",
            upstream.display(),
            output.status,
            if message.is_empty() {
                stderr.trim()
            } else {
                &message
            }
        )));
    }
    Ok(out)
}

/// Checks that `python` runs and has torch, onnx and the upstream model code.
fn check_python(python: &Path) -> Result<()> {
    let probe = "import torch, onnx\nfrom openvoice_cli import models";
    let output = Command::new(python)
        .args(["-c", probe])
        .output()
        .map_err(|e| missing_python(python, &e.to_string()))?;
    if output.status.success() {
        return Ok(());
    }
    let stderr = String::from_utf8_lossy(&output.stderr);
    let last = stderr.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or("");
    Err(missing_python(python, last))
}

fn missing_python(python: &Path, why: &str) -> Error {
    let mut shown = OsString::from(python);
    if python.components().count() == 1 {
        shown.push(" (from PATH)");
    }
    Error::ModelNotInstalled(format!(
        "importing the OpenVoice converter needs Python with torch, onnx and openvoice-cli; {} is not usable \
         ({why}). Set it up with:\n  {SETUP_COMMANDS}\nOr skip the import: `vctts models fetch openvoice-converter` \
         downloads the converter already exported.",
        shown.to_string_lossy()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn upstream() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("config.json"), "{}").unwrap();
        std::fs::write(dir.path().join("checkpoint.pth"), "x").unwrap();
        dir
    }

    #[test]
    fn missing_python_names_the_setup_commands() {
        let up = upstream();
        let root = tempfile::tempdir().unwrap();
        let options = ImportOptions {
            python: Some(root.path().join("no-such-python")),
        };
        let err = import_converter(up.path(), root.path(), &options).unwrap_err();
        assert_eq!(err.code(), "model_not_installed");
        let msg = err.to_string();
        assert!(
            msg.contains("pip install --no-deps openvoice-cli==0.0.5"),
            "{msg}"
        );
        assert!(msg.contains("pip install torch onnx"), "{msg}");
        assert!(msg.contains("vctts models fetch openvoice-converter"), "{msg}");
        assert!(!root.path().join("openvoice").exists(), "nothing written");
    }

    #[test]
    fn python_without_torch_names_the_setup_commands() {
        // A Python that cannot import torch: a shell script failing like one.
        let up = upstream();
        let root = tempfile::tempdir().unwrap();
        let fake = root.path().join("python");
        std::fs::write(
            &fake,
            "#!/bin/sh\necho \"ModuleNotFoundError: No module named 'torch'\" >&2\nexit 1\n",
        )
        .unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        let err =
            import_converter(up.path(), root.path(), &ImportOptions { python: Some(fake) }).unwrap_err();
        assert_eq!(err.code(), "model_not_installed");
        let msg = err.to_string();
        assert!(msg.contains("No module named 'torch'"), "{msg}");
        assert!(
            msg.contains(".vctts/export-venv/bin/pip install torch onnx"),
            "{msg}"
        );
        assert!(!root.path().join("openvoice").exists());
    }

    #[test]
    fn a_folder_without_the_checkpoint_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let err = import_converter(dir.path(), dir.path(), &ImportOptions { python: None }).unwrap_err();
        assert_eq!(err.code(), "invalid_input");
        assert!(err.to_string().contains("config.json"));
    }

    #[test]
    fn the_embedded_script_is_the_committed_one() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/export/openvoice_export.py");
        assert_eq!(std::fs::read_to_string(path).unwrap(), EXPORT_SCRIPT);
        assert!(EXPORT_SCRIPT.contains("\"noise\""));
    }
}
