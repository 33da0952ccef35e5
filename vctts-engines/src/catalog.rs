//! Which engines exist, whether their models are installed, and how to build
//! one from a models root (`models/` with one folder per engine).
//!
//! The server and the CLI go through here so that "what is installed and what
//! is missing" has one answer.

use crate::runtime::{Device, RuntimeConfig, SessionConfig};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use vctts_core::{Engine, EngineKind, Error, Result};

/// Engine-independent settings for building an engine.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EngineOptions {
    /// Intra-op threads per session.
    pub threads: usize,
    /// Requests run at once.
    pub max_concurrency: usize,
    /// Requests that may wait.
    pub queue_size: usize,
    /// Execution provider.
    pub device: Device,
    /// Where ONNX Runtime is.
    pub runtime: RuntimeConfig,
}

impl Default for EngineOptions {
    fn default() -> Self {
        let s = SessionConfig::default();
        Self {
            threads: s.intra_threads,
            max_concurrency: 1,
            queue_size: 64,
            device: Device::Cpu,
            runtime: RuntimeConfig::default(),
        }
    }
}

/// The folder of an engine's models under a models root.
pub fn model_dir(kind: EngineKind, models_root: &Path) -> PathBuf {
    models_root.join(match kind {
        EngineKind::Xtts => "xtts_v2",
        EngineKind::OpenVoice => "openvoice",
        EngineKind::GptSovits => "gpt_sovits",
    })
}

/// Whether an engine can be built here; `Err` says what is missing and how
/// to fix it.
pub fn installed(kind: EngineKind, models_root: &Path) -> std::result::Result<(), String> {
    match kind {
        #[cfg(feature = "openvoice")]
        EngineKind::OpenVoice => crate::openvoice::Installation::scan(&model_dir(kind, models_root))
            .map(|_| ())
            .map_err(|e| e.to_string()),
        #[cfg(feature = "xtts")]
        EngineKind::Xtts => crate::xtts::scan(&model_dir(kind, models_root)).map_err(|e| e.to_string()),
        #[cfg(feature = "gpt-sovits")]
        EngineKind::GptSovits => crate::gpt_sovits::model::ModelFiles::scan(&model_dir(kind, models_root))
            .map(|_| ())
            .map_err(|e| e.to_string()),
        #[allow(unreachable_patterns)] // every engine feature on
        other => Err(format!(
            "the {other} engine is not available in this build of vctts yet; \
             its models would go in {}",
            model_dir(other, models_root).display()
        )),
    }
}

/// Builds an engine (not loaded yet: call [`Engine::load`]).
pub fn build(kind: EngineKind, models_root: &Path, options: &EngineOptions) -> Result<Arc<dyn Engine>> {
    crate::runtime::init(&options.runtime)?;
    let session = SessionConfig {
        intra_threads: options.threads.max(1),
        device: options.device,
        ..SessionConfig::default()
    };
    match kind {
        #[cfg(feature = "openvoice")]
        EngineKind::OpenVoice => {
            let config = crate::openvoice::OpenVoiceConfig {
                session,
                max_concurrency: options.max_concurrency.max(1),
                queue_size: options.queue_size,
                ..crate::openvoice::OpenVoiceConfig::new(model_dir(kind, models_root))
            };
            Ok(Arc::new(crate::openvoice::OpenVoiceEngine::new(config)?))
        }
        #[cfg(feature = "xtts")]
        EngineKind::Xtts => {
            let config = crate::xtts::XttsConfig {
                session,
                max_concurrency: options.max_concurrency.max(1),
                queue_size: options.queue_size,
                ..crate::xtts::XttsConfig::new(model_dir(kind, models_root))
            };
            Ok(Arc::new(crate::xtts::XttsEngine::new(config)?))
        }
        #[cfg(feature = "gpt-sovits")]
        EngineKind::GptSovits => {
            let config = crate::gpt_sovits::GptSovitsConfig {
                session,
                max_concurrency: options.max_concurrency.max(1),
                queue_size: options.queue_size,
                ..crate::gpt_sovits::GptSovitsConfig::new(model_dir(kind, models_root))
            };
            Ok(Arc::new(crate::gpt_sovits::GptSovitsEngine::new(config)?))
        }
        #[allow(unreachable_patterns)] // every engine feature on
        other => Err(Error::ModelNotInstalled(
            installed(other, models_root).unwrap_err(),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn model_dirs_follow_the_spec_layout() {
        let root = Path::new("models");
        assert_eq!(model_dir(EngineKind::Xtts, root), Path::new("models/xtts_v2"));
        assert_eq!(
            model_dir(EngineKind::OpenVoice, root),
            Path::new("models/openvoice")
        );
        assert_eq!(
            model_dir(EngineKind::GptSovits, root),
            Path::new("models/gpt_sovits")
        );
    }

    #[test]
    fn missing_models_say_where_they_go() {
        let dir = tempfile::tempdir().unwrap();
        let e = installed(EngineKind::OpenVoice, dir.path()).unwrap_err();
        assert!(e.contains("setup.sh"), "{e}");
        let e = installed(EngineKind::Xtts, dir.path()).unwrap_err();
        assert!(e.contains("xtts_v2"), "{e}");
        let e = installed(EngineKind::GptSovits, dir.path()).unwrap_err();
        assert!(e.contains("gpt_sovits") && e.contains("import gpt-sovits"), "{e}");
    }
}
