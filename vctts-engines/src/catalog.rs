//! Which engines exist, whether their models are installed, and how to build
//! one from a models root (`models/` with one folder per engine).
//!
//! The server and the CLI go through here so that "what is installed and what
//! is missing" has one answer.

pub use crate::runtime::DecoderWindows;
use crate::runtime::{Device, RuntimeConfig, SessionConfig};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use vctts_core::{Engine, EngineKind, Error, Result};

/// The cores this process may use (cgroup quotas and CPU affinity counted).
pub fn available_cores() -> usize {
    std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)
}

/// How an engine's inference work is spread over the cores: `inferences`
/// lanes (inference threads, each owning its sessions) run model work at
/// once, with `intra_threads` threads inside an operator.
///
/// The rule it keeps: the machine is never oversubscribed (ONNX Runtime's
/// threads wait for each other inside every operator, so a preempted thread
/// stalls the rest). Three shapes keep it:
/// - *one lane at every core* (`max_concurrency` 1, threads at the cores):
///   each session has a pool of one thread per core that spins only while
///   a run of that session is under way and stops as the run ends
///   ([`crate::runtime::SessionConfig`]'s own pools). A request runs its
///   sessions in turn (OpenVoice's front and decoder, the converter), so
///   only one pool is awake at a time. Measured on the default voice
///   (2 cores, alternating runs): a one-lane server gave 8 % more
///   throughput at one request at a time and 3 % more at eight than one
///   lane on the shared pool; in process, one text at a time took 4 % less
///   time per audio-second than two lanes on the shared pool. Pools that
///   spun on after their runs (ONNX Runtime's default) cost 35 % more CPU
///   per audio-second instead;
/// - *shared* (`shared_pool`, every core allowed, several lanes): the
///   lanes' sessions run on ONNX Runtime's one intra-op pool of one thread
///   per core ([`crate::runtime::SessionConfig::shared_pool`]), which does not
///   spin. One run alone uses every core; concurrent runs share the same
///   threads instead of each bringing its own. Spinning pools here lost a
///   fifth of the throughput under load: a lane's pool spun while the other
///   lane's run needed the core;
/// - *split* (`threads` below the cores): each session has its own threads
///   and `inferences × intra_threads ≤ cores`.
///
/// Which lanes work is decided per load, between sentences
/// ([`crate::schedule`]): a request alone lends its later sentences to the
/// idle lanes; when requests wait, each keeps to its own lane (one core each
/// once there are as many as cores). Requests beyond the lanes wait in the
/// engine's queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ThreadPlan {
    /// Inference lanes (model runs at once).
    pub inferences: usize,
    /// Intra-op threads a run may use: the shared pool's size, or each
    /// session's own threads.
    pub intra_threads: usize,
    /// Whether the lanes share one intra-op pool (see above).
    pub shared_pool: bool,
}

impl ThreadPlan {
    /// The plan for `max_concurrency` requests at once (0 = one per core)
    /// with at most `threads` intra-op threads each (0 = every core) on
    /// `cores` cores.
    pub fn new(threads: usize, max_concurrency: usize, cores: usize) -> Self {
        let cores = cores.max(1);
        let inferences = if max_concurrency == 0 {
            cores
        } else {
            max_concurrency.clamp(1, cores)
        };
        let width = if threads == 0 { cores } else { threads.min(cores) };
        if width == cores && inferences > 1 {
            return Self {
                inferences,
                intra_threads: cores,
                shared_pool: true,
            };
        }
        let fair = (cores / inferences).max(1);
        Self {
            inferences,
            intra_threads: width.min(fair),
            shared_pool: false,
        }
    }

    /// Intra-op threads that exist for these lanes: the shared pool's, or
    /// every lane's own. Never above the cores.
    pub fn busy_threads(&self) -> usize {
        if self.shared_pool {
            self.intra_threads
        } else {
            self.inferences * self.intra_threads
        }
    }

    /// The threads one run gets when `running` runs are under way: all of
    /// them alone, an even share (at least one) under load.
    pub fn threads_per_run(&self, running: usize) -> usize {
        if self.shared_pool {
            (self.intra_threads / running.max(1)).max(1)
        } else {
            self.intra_threads
        }
    }
}

/// Engine-independent settings for building an engine.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EngineOptions {
    /// Intra-op threads one model run may use, at most (0 = every core).
    /// At the cores (the default), several lanes share one pool of one
    /// thread per core; below, each session gets its own threads, lowered so
    /// that threads × concurrent runs ≤ cores ([`ThreadPlan`]).
    pub threads: usize,
    /// Inference lanes: requests (or, for a request alone, sentences of one
    /// request) run at once; at most one per core, more wait in the queue.
    /// The default is one per core. OpenVoice's lanes share one session per
    /// voice (`concurrent`); XTTS's and GPT-SoVITS's lanes each hold their own.
    pub max_concurrency: usize,
    /// Requests that may wait.
    pub queue_size: usize,
    /// Execution provider.
    pub device: Device,
    /// Where ONNX Runtime is.
    pub runtime: RuntimeConfig,
    /// How a vocoder that decodes in windows sizes them (OpenVoice's HiFi-GAN
    /// decoder; the others decode as they always do).
    pub decoder_windows: DecoderWindows,
}

impl EngineOptions {
    /// The thread plan of these options on `cores` cores.
    pub fn thread_plan(&self, cores: usize) -> ThreadPlan {
        ThreadPlan::new(self.threads, self.max_concurrency, cores)
    }
}

impl Default for EngineOptions {
    fn default() -> Self {
        Self {
            threads: 0,
            max_concurrency: available_cores(),
            queue_size: 64,
            device: Device::Cpu,
            runtime: RuntimeConfig::default(),
            decoder_windows: DecoderWindows::default(),
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
            shared_pool: false,
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
        shared_pool: plan.shared_pool && crate::runtime::shared_pool_threads() == plan.intra_threads,
        ..SessionConfig::default()
    };
    match kind {
        #[cfg(feature = "openvoice")]
        EngineKind::OpenVoice => {
            let config = crate::openvoice::OpenVoiceConfig {
                session,
                max_concurrency: plan.inferences,
                queue_size: options.queue_size,
                decoder_windows: options.decoder_windows,
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
                    assert!(p.inferences >= 1 && p.inferences <= cores);
                    assert!(p.intra_threads >= 1);
                    assert!(threads == 0 || p.intra_threads <= threads);
                    // Every run under way together never has more than the cores.
                    for running in 1..=p.inferences {
                        assert!(running * p.threads_per_run(running) <= cores, "{p:?} × {running}");
                    }
                }
            }
        }
    }

    #[test]
    fn one_request_gets_every_core_and_many_get_one_each() {
        // The default: a lane per core sharing one pool of every core.
        let p = ThreadPlan::new(0, 0, 8);
        assert_eq!(
            p,
            ThreadPlan {
                inferences: 8,
                intra_threads: 8,
                shared_pool: true
            }
        );
        // Alone: every core; under full load: one core each.
        assert_eq!(p.threads_per_run(1), 8);
        assert_eq!(p.threads_per_run(8), 1);
        assert_eq!(p.threads_per_run(3), 2);
        let p = ThreadPlan::new(2, 32, 2);
        assert_eq!((p.threads_per_run(1), p.threads_per_run(2)), (2, 1));
        assert!(p.shared_pool);
        // One lane at every core: pools of its sessions' own, of every core
        // (each spins only while its session runs). Below the cores, fewer.
        assert_eq!(
            ThreadPlan::new(0, 1, 8),
            ThreadPlan {
                inferences: 1,
                intra_threads: 8,
                shared_pool: false
            }
        );
        assert_eq!(ThreadPlan::new(2, 1, 2).threads_per_run(1), 2);
        assert_eq!(ThreadPlan::new(4, 1, 8).intra_threads, 4);
        assert!(!ThreadPlan::new(4, 1, 8).shared_pool);
        // Threads capped below the cores: split evenly, never shared.
        assert_eq!(
            ThreadPlan::new(4, 3, 8),
            ThreadPlan {
                inferences: 3,
                intra_threads: 2,
                shared_pool: false
            }
        );
        assert_eq!(
            ThreadPlan::new(1, 0, 8),
            ThreadPlan {
                inferences: 8,
                intra_threads: 1,
                shared_pool: false
            }
        );
        // The defaults on this machine keep the rule, with a lane per core.
        let o = EngineOptions::default();
        let p = o.thread_plan(available_cores());
        assert!(p.busy_threads() <= available_cores());
        assert_eq!(p.inferences, available_cores());
        assert_eq!(p.threads_per_run(1), available_cores());
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
