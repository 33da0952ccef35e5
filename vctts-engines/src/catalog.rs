//! Which engines exist, whether their models are installed, and how to build
//! one from a models root (`models/` with one folder per engine).
//!
//! The server and the CLI go through here so that "what is installed and what
//! is missing" has one answer.

use crate::runtime::{Device, RuntimeConfig, SessionConfig};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use vctts_core::{Engine, EngineKind, Error, Result};

/// The cores this process may use (cgroup quotas and CPU affinity counted).
pub fn available_cores() -> usize {
    std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)
}

/// How an engine's inference work is spread over the cores: `inferences`
/// runs at once (inference threads, each owning its sessions), each with
/// `intra_threads` threads inside an operator.
///
/// The rule it keeps: `inferences × intra_threads ≤ cores`, so the machine
/// is never oversubscribed (ONNX Runtime's threads spin while they wait for
/// work, so oversubscription costs more than idle cores). One inference at a
/// time gets every core (up to the configured threads); `n ≥ cores`
/// inferences get one core each; requests beyond `inferences` wait in the
/// engine's queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ThreadPlan {
    /// Inference threads (concurrent model runs).
    pub inferences: usize,
    /// Intra-op threads of each session.
    pub intra_threads: usize,
}

impl ThreadPlan {
    /// The plan for `max_concurrency` requests at once with at most
    /// `threads` intra-op threads each (0 = as many as the cores allow) on
    /// `cores` cores.
    pub fn new(threads: usize, max_concurrency: usize, cores: usize) -> Self {
        let cores = cores.max(1);
        let inferences = max_concurrency.clamp(1, cores);
        let fair = (cores / inferences).max(1);
        let intra_threads = if threads == 0 { fair } else { threads.min(fair) };
        Self {
            inferences,
            intra_threads,
        }
    }

    /// Threads busy when every inference runs: never above the cores.
    pub fn busy_threads(&self) -> usize {
        self.inferences * self.intra_threads
    }
}

/// Engine-independent settings for building an engine.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EngineOptions {
    /// Intra-op threads per session, at most (0 = as many as the cores
    /// allow); lowered so that threads × concurrent runs ≤ cores ([`ThreadPlan`]).
    pub threads: usize,
    /// Requests run at once (at most one per core; more wait in the queue).
    pub max_concurrency: usize,
    /// Requests that may wait.
    pub queue_size: usize,
    /// Execution provider.
    pub device: Device,
    /// Where ONNX Runtime is.
    pub runtime: RuntimeConfig,
}

impl EngineOptions {
    /// The thread plan of these options on `cores` cores.
    pub fn thread_plan(&self, cores: usize) -> ThreadPlan {
        ThreadPlan::new(self.threads, self.max_concurrency, cores)
    }
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
    let plan = match options.device {
        Device::Cpu => options.thread_plan(available_cores()),
        // On a GPU the CPU threads only feed it; the cores do not bound them.
        Device::Cuda { .. } => ThreadPlan {
            inferences: options.max_concurrency.max(1),
            intra_threads: options.threads.max(1),
        },
    };
    if plan.intra_threads < options.threads || plan.inferences < options.max_concurrency {
        tracing::info!(
            threads = options.threads,
            max_concurrency = options.max_concurrency,
            inferences = plan.inferences,
            intra_threads = plan.intra_threads,
            cores = available_cores(),
            "inference threads fitted to the cores (threads × concurrent runs ≤ cores)"
        );
    }
    let session = SessionConfig {
        intra_threads: plan.intra_threads,
        device: options.device,
        ..SessionConfig::default()
    };
    match kind {
        #[cfg(feature = "openvoice")]
        EngineKind::OpenVoice => {
            let config = crate::openvoice::OpenVoiceConfig {
                session,
                max_concurrency: plan.inferences,
                queue_size: options.queue_size,
                ..crate::openvoice::OpenVoiceConfig::new(model_dir(kind, models_root))
            };
            Ok(Arc::new(crate::openvoice::OpenVoiceEngine::new(config)?))
        }
        #[cfg(feature = "xtts")]
        EngineKind::Xtts => {
            let config = crate::xtts::XttsConfig {
                session,
                max_concurrency: plan.inferences,
                queue_size: options.queue_size,
                ..crate::xtts::XttsConfig::new(model_dir(kind, models_root))
            };
            Ok(Arc::new(crate::xtts::XttsEngine::new(config)?))
        }
        #[cfg(feature = "gpt-sovits")]
        EngineKind::GptSovits => {
            let config = crate::gpt_sovits::GptSovitsConfig {
                session,
                max_concurrency: plan.inferences,
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
    fn threads_times_concurrent_runs_never_exceed_the_cores() {
        for cores in 1..=16 {
            for threads in 0..=20 {
                for concurrency in 0..=40 {
                    let p = ThreadPlan::new(threads, concurrency, cores);
                    assert!(
                        p.busy_threads() <= cores,
                        "{threads} × {concurrency} on {cores}: {p:?}"
                    );
                    assert!(p.inferences >= 1 && p.intra_threads >= 1);
                    assert!(threads == 0 || p.intra_threads <= threads);
                }
            }
        }
    }

    #[test]
    fn one_request_gets_every_core_and_many_get_one_each() {
        // Alone: every core (or the configured threads, when fewer).
        assert_eq!(
            ThreadPlan::new(0, 1, 8),
            ThreadPlan {
                inferences: 1,
                intra_threads: 8
            }
        );
        assert_eq!(
            ThreadPlan::new(4, 1, 8),
            ThreadPlan {
                inferences: 1,
                intra_threads: 4
            }
        );
        // As many requests as cores, or more: one core each, the rest queue.
        assert_eq!(
            ThreadPlan::new(0, 8, 8),
            ThreadPlan {
                inferences: 8,
                intra_threads: 1
            }
        );
        assert_eq!(
            ThreadPlan::new(2, 32, 2),
            ThreadPlan {
                inferences: 2,
                intra_threads: 1
            }
        );
        // In between: the cores shared evenly.
        assert_eq!(
            ThreadPlan::new(0, 3, 8),
            ThreadPlan {
                inferences: 3,
                intra_threads: 2
            }
        );
        // The defaults on this machine keep the rule.
        let o = EngineOptions::default();
        assert!(o.thread_plan(available_cores()).busy_threads() <= available_cores());
        // (The default threads are the cores up to 4: 4 on a bigger machine.)
        let o = EngineOptions { threads: 4, ..o };
        assert_eq!(
            o.thread_plan(2),
            ThreadPlan {
                inferences: 1,
                intra_threads: 2
            }
        );
    }

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
