//! ONNX Runtime: finding and loading the library, building sessions, and the
//! inference threads engines own.
//!
//! - [`init`] loads `libonnxruntime` once per process with `ort::init_from`
//!   (never the panicking default path). It searches, in order: the explicit
//!   [`RuntimeConfig::library_path`], `VCTTS_ORT_LIB`, `ORT_DYLIB_PATH`, the
//!   executable's folder (and `lib/` beside it), and the setup folder
//!   `.vctts/lib/` found from the working directory or the executable upwards.
//!   A failure names every place tried and why it was rejected.
//! - [`load_session`] builds a session with the configured threads,
//!   optimisation level and execution provider: on the environment's shared
//!   pool (which never spins), or on a pool of its own that spins only while
//!   a run of the session is under way ([`SPINNING_STOP`]); without ONNX
//!   Runtime's memory pattern unless asked ([`SessionConfig::memory_pattern`]).
//! - [`Lanes`]: an engine's [`InferencePool`] through load and unload, and
//!   the model state users see (one type for every engine).
//! - [`InferencePool`] runs blocking model work on threads it owns: each thread
//!   builds its own state (its sessions) once, then drains a bounded queue of
//!   jobs; async callers await a oneshot and never block a tokio worker.
//!   `Session::run` takes `&mut self`, so a session belongs to one thread,
//!   unless it is a [`crate::concurrent::ConcurrentSession`] (OpenVoice's
//!   base voices, shared by every lane).
//! - [`DecoderWindows`]: how a vocoder that decodes in windows sizes them
//!   (a budget the runs share, or fixed windows per run).
//! - [`JobRunOptions`] and [`cancel_when_reader_leaves`]: a cancelled request
//!   (or a stream whose reader left) terminates the model run under way.

use parking_lot::Mutex;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, OnceLock};
use std::thread::JoinHandle;
use vctts_core::{Error, Result};

/// The ONNX Runtime file names searched in each folder, most specific first.
pub const LIBRARY_NAMES: [&str; 3] = [
    "libonnxruntime.so.1.32.0",
    "libonnxruntime.so.1",
    "libonnxruntime.so",
];

/// Where the setup script puts the library, relative to the project root.
pub const SETUP_LIB_DIR: &str = ".vctts/lib";

/// How to find ONNX Runtime.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RuntimeConfig {
    /// An explicit library file; when set, it is tried first.
    pub library_path: Option<PathBuf>,
}

/// The environment and the path it was loaded from.
struct Loaded {
    path: PathBuf,
    _env: ort::environment::Environment,
    /// Threads of the environment's shared intra-op pool.
    pool_threads: usize,
}

/// The environment's shared intra-op thread pool: one thread per core (the
/// threads running sessions take part as well: ONNX Runtime makes
/// `threads - 1` workers), not spinning while idle, so that several lanes
/// sharing it do not burn cores waiting for work. Sessions built with
/// [`SessionConfig::shared_pool`] run their operators on it: one run alone
/// uses every thread, concurrent runs share them.
fn global_pool(threads: usize) -> ort::Result<ort::environment::GlobalThreadPoolOptions> {
    ort::environment::GlobalThreadPoolOptions::default()
        .with_intra_threads(threads)?
        .with_inter_threads(1)?
        .with_spin_control(false)
}

/// Threads of the shared intra-op pool (0 before [`init`]).
pub fn shared_pool_threads() -> usize {
    LOADED.get().map(|l| l.pool_threads).unwrap_or(0)
}

static LOADED: OnceLock<Loaded> = OnceLock::new();
static INIT_LOCK: Mutex<()> = Mutex::new(());

/// Candidate library paths in search order. `env` looks up environment
/// variables (injected so tests never touch the process environment).
pub fn candidates(config: &RuntimeConfig, env: &dyn Fn(&str) -> Option<String>) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Some(p) = &config.library_path {
        out.push(p.clone());
    }
    for var in ["VCTTS_ORT_LIB", "ORT_DYLIB_PATH"] {
        if let Some(v) = env(var).filter(|v| !v.is_empty()) {
            out.push(PathBuf::from(v));
        }
    }
    let mut dirs: Vec<PathBuf> = Vec::new();
    if let Ok(exe) = std::env::current_exe() {
        if let Some(dir) = exe.parent() {
            dirs.push(dir.to_path_buf());
            dirs.push(dir.join("lib"));
            dirs.push(dir.join("../lib"));
        }
    }
    if let Some(home) = env("VCTTS_HOME").filter(|v| !v.is_empty()) {
        dirs.push(PathBuf::from(home).join("lib"));
    }
    // The setup folder, looked for upwards from the working directory and from
    // the executable (a `target/debug/` binary finds the project's `.vctts`).
    let mut roots: Vec<PathBuf> = Vec::new();
    if let Ok(cwd) = std::env::current_dir() {
        roots.extend(cwd.ancestors().map(Path::to_path_buf));
    }
    if let Ok(exe) = std::env::current_exe() {
        roots.extend(exe.ancestors().skip(1).map(Path::to_path_buf));
    }
    for root in roots {
        let dir = root.join(SETUP_LIB_DIR);
        if !dirs.contains(&dir) {
            dirs.push(dir);
        }
    }
    for dir in dirs {
        for name in LIBRARY_NAMES {
            let p = dir.join(name);
            if !out.contains(&p) {
                out.push(p);
            }
        }
    }
    out
}

/// Loads ONNX Runtime once per process and returns the path it came from.
/// Later calls return the first path (a process has one runtime).
pub fn init(config: &RuntimeConfig) -> Result<PathBuf> {
    init_with_env(config, &|k| std::env::var(k).ok())
}

/// [`init`] with an injected environment lookup.
pub fn init_with_env(config: &RuntimeConfig, env: &dyn Fn(&str) -> Option<String>) -> Result<PathBuf> {
    if let Some(l) = LOADED.get() {
        return Ok(l.path.clone());
    }
    let _guard = INIT_LOCK.lock();
    if let Some(l) = LOADED.get() {
        return Ok(l.path.clone());
    }
    let mut tried = Vec::new();
    for path in candidates(config, env) {
        if !path.is_file() {
            tried.push(format!("{} (not found)", path.display()));
            continue;
        }
        let pool_threads = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
        // The pool's options come from the library: only after `init_from`.
        let built = ort::init_from(&path).map(|builder| {
            global_pool(pool_threads)
                .and_then(|pool| builder.with_name("vctts").with_global_thread_pool(pool).build())
        });
        match built {
            Ok(env) => match env {
                Ok(env) => {
                    let loaded = LOADED.get_or_init(|| Loaded {
                        path: path.clone(),
                        _env: env,
                        pool_threads,
                    });
                    tracing::info!(path = %loaded.path.display(), "loaded ONNX Runtime");
                    return Ok(loaded.path.clone());
                }
                Err(e) => tried.push(format!("{} (environment failed: {e})", path.display())),
            },
            Err(e) => tried.push(format!("{} ({e})", path.display())),
        }
    }
    Err(Error::Runtime(format!(
        "libonnxruntime 1.32 not found; run scripts/setup.sh or set VCTTS_ORT_LIB. Tried: {}",
        tried.join("; ")
    )))
}

/// The loaded environment, or an error telling how to load it.
fn environment() -> Result<&'static ort::environment::Environment> {
    match LOADED.get() {
        Some(l) => Ok(&l._env),
        None => {
            init(&RuntimeConfig::default())?;
            LOADED
                .get()
                .map(|l| &l._env)
                .ok_or_else(|| Error::Runtime("ONNX Runtime did not initialise".into()))
        }
    }
}

/// How an engine's vocoder sizes the windows of latent frames it decodes.
/// Its activation memory follows the frames in flight (about 0.2 MB per
/// frame on the medium Piper voices); smaller windows cost time (each
/// carries context frames on both sides).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DecoderWindows {
    /// The runs under way share this many frames: a run alone decodes
    /// windows of all of them, `n` runs at once `1/n` each (at least 64).
    /// Fastest for one request at a time; the frames in flight stay within
    /// the budget, but a process that alternates between one run and several
    /// holds more memory than with fixed windows (its allocator keeps both
    /// shapes).
    Shared(usize),
    /// Every run decodes windows of this many frames, whatever else runs: the
    /// steadiest memory under a changing load.
    PerRun(usize),
    /// Whole sentences (memory grows with the sentence's length).
    Whole,
}

impl Default for DecoderWindows {
    /// Shared, 256 frames (about 3 s of audio at a hop of 256 samples).
    fn default() -> Self {
        Self::Shared(256)
    }
}

/// Graph optimisation level of a session.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum OptLevel {
    /// No graph rewrites.
    Disable,
    /// Semantics-preserving rewrites (constant folding, redundant nodes).
    Basic,
    /// Basic plus node fusions.
    Extended,
    /// Everything ONNX Runtime offers.
    #[default]
    All,
}

/// Where inference runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum Device {
    /// The CPU execution provider.
    #[default]
    Cpu,
    /// The CUDA execution provider on a GPU (needs the `cuda` feature and a
    /// CUDA build of ONNX Runtime); falls back to CPU for unsupported nodes.
    Cuda {
        /// The GPU index.
        device_id: i32,
    },
}

impl std::str::FromStr for Device {
    type Err = Error;
    /// Parses `cpu`, `cuda` or `cuda:N`.
    fn from_str(s: &str) -> Result<Self> {
        let s = s.trim().to_ascii_lowercase();
        match s.as_str() {
            "cpu" => Ok(Device::Cpu),
            "cuda" | "gpu" => Ok(Device::Cuda { device_id: 0 }),
            _ => match s.strip_prefix("cuda:").map(str::parse::<i32>) {
                Some(Ok(id)) if id >= 0 => Ok(Device::Cuda { device_id: id }),
                _ => Err(Error::invalid(
                    "device",
                    format!("expected cpu, cuda or cuda:N, got {s:?}"),
                )),
            },
        }
    }
}

/// How to build a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SessionConfig {
    /// Threads inside one operator.
    pub intra_threads: usize,
    /// Threads across independent operators (1 = sequential execution).
    pub inter_threads: usize,
    /// Graph optimisation level.
    pub optimization: OptLevel,
    /// Execution provider.
    pub device: Device,
    /// Run operators on the environment's shared intra-op pool (one thread
    /// per core, shared by every session that sets this) instead of the
    /// session's own `intra_threads` threads; `intra_threads` and
    /// `inter_threads` are then unused.
    pub shared_pool: bool,
    /// ONNX Runtime's memory pattern: after a run, plan one block for all of
    /// a run's intermediate tensors at that input shape and allocate it on
    /// the next run of the same shape. Off by default: the arena then
    /// reuses the tensors' own blocks, while with it on it keeps those
    /// blocks and the planned one (a block per input shape it has seen),
    /// and no run was faster for it. Measured on the default voice's
    /// HiFi-GAN decoder (ONNX Runtime 1.32 CPU, 12 runs): on windows of 160
    /// frames the process grew by 94 MB with the pattern and 44 MB without
    /// (77 and 43 MB at one fixed shape), on windows of 288 by 123 and
    /// 82 MB, each run within 3 % of the same time; a one-lane worker
    /// node, decoding in windows of 128 frames behind a gateway, under the
    /// requests of `scripts/bench/load.py` peaked at 193 MB instead of
    /// 245 MB.
    pub memory_pattern: bool,
}

impl Default for SessionConfig {
    fn default() -> Self {
        Self {
            intra_threads: std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1)
                .min(4),
            inter_threads: 1,
            optimization: OptLevel::All,
            device: Device::Cpu,
            shared_pool: false,
            memory_pattern: false,
        }
    }
}

fn ort_err(context: &str) -> impl Fn(ort::Error<ort::session::builder::SessionBuilder>) -> Error + '_ {
    move |e| Error::ModelLoad(format!("{context}: {e}"))
}

/// Builds a session for the model file at `path`. A missing file is
/// [`Error::ModelNotInstalled`] naming it; a file ONNX Runtime rejects is
/// [`Error::ModelLoad`].
pub fn load_session(path: &Path, config: &SessionConfig) -> Result<ort::session::Session> {
    if !path.is_file() {
        return Err(Error::ModelNotInstalled(format!("{} is missing", path.display())));
    }
    let ctx = path.display().to_string();
    builder(config, &ctx)?
        .commit_from_file(path)
        .map_err(|e| Error::ModelLoad(format!("{ctx}: {e}")))
}

/// [`load_session`] for a model held in memory (e.g. one rewritten after
/// reading it); `name` stands for it in errors.
pub fn load_session_from_memory(
    model: &[u8],
    name: &str,
    config: &SessionConfig,
) -> Result<ort::session::Session> {
    builder(config, name)?
        .commit_from_memory(model)
        .map_err(|e| Error::ModelLoad(format!("{name}: {e}")))
}

/// A model built in memory, parked in a private temporary file so that the
/// bytes can be dropped before ONNX Runtime loads it: loading from memory
/// holds the caller's copy of the weights while ONNX Runtime builds its own
/// two (the parsed model, then the session's tensors), one copy more at the
/// peak than loading from a file. Where no temporary file can be written (a
/// read-only file system), the bytes stay in memory and load from there.
#[derive(Debug)]
pub enum ParkedModel {
    /// In a temporary file, removed when this is dropped.
    File(tempfile::TempPath),
    /// Kept in memory.
    Memory(Vec<u8>),
}

impl ParkedModel {
    /// Writes `model` to a temporary file, or keeps it when that fails.
    pub fn park(model: Vec<u8>) -> Self {
        use std::io::Write;
        let written = tempfile::Builder::new()
            .prefix("vctts-model-")
            .suffix(".onnx")
            .tempfile()
            .and_then(|mut f| {
                f.write_all(&model)?;
                f.flush()?;
                Ok(f.into_temp_path())
            });
        match written {
            Ok(path) => Self::File(path),
            Err(e) => {
                tracing::debug!(error = %e, "no temporary file for a rewritten model; loading it from memory");
                Self::Memory(model)
            }
        }
    }

    /// Loads the session; `name` stands for the model in errors.
    pub fn load(&self, name: &str, config: &SessionConfig) -> Result<ort::session::Session> {
        match self {
            Self::File(path) => builder(config, name)?
                .commit_from_file(path)
                .map_err(|e| Error::ModelLoad(format!("{name}: {e}"))),
            Self::Memory(bytes) => load_session_from_memory(bytes, name, config),
        }
    }
}

fn builder(config: &SessionConfig, ctx: &str) -> Result<ort::session::builder::SessionBuilder> {
    let env = environment()?;
    let builder = ort::session::Session::builder(env).map_err(|e| Error::Runtime(e.to_string()))?;
    let level = match config.optimization {
        OptLevel::Disable => ort::session::builder::GraphOptimizationLevel::Disable,
        OptLevel::Basic => ort::session::builder::GraphOptimizationLevel::Level1,
        OptLevel::Extended => ort::session::builder::GraphOptimizationLevel::Level2,
        OptLevel::All => ort::session::builder::GraphOptimizationLevel::All,
    };
    let ctx = ctx.to_string();
    // Sessions take the environment's shared pool unless told otherwise.
    let builder = if config.shared_pool {
        builder
    } else {
        // A pool of the session's own spins while a run of the session is
        // under way and stops when the last one ends: the sessions of a lane
        // run in turn, and a pool left spinning took the core from the next.
        builder
            .with_independent_thread_pool()
            .map_err(ort_err(&ctx))?
            .with_intra_threads(config.intra_threads.max(1))
            .map_err(ort_err(&ctx))?
            .with_inter_threads(config.inter_threads.max(1))
            .map_err(ort_err(&ctx))?
            .with_intra_op_spinning(true)
            .map_err(ort_err(&ctx))?
            .with_config_entry(SPINNING_STOP.0, SPINNING_STOP.1)
            .map_err(ort_err(&ctx))?
    };
    let builder = builder
        .with_memory_pattern(config.memory_pattern)
        .map_err(ort_err(&ctx))?
        .with_parallel_execution(!config.shared_pool && config.inter_threads > 1)
        .map_err(ort_err(&ctx))?
        .with_optimization_level(level)
        .map_err(ort_err(&ctx))?;
    Ok(match config.device {
        Device::Cpu => builder
            .with_execution_providers([cpu_provider().build()])
            .map_err(ort_err(&ctx))?,
        Device::Cuda { device_id } => with_cuda(builder, device_id, &ctx)?,
    })
}

/// The CPU execution provider with ONNX Runtime's memory arena on, as ORT
/// itself (and piper-tts through it) defaults to. The `ort` crate's default
/// turns the arena off, which made every run map fresh memory: about three
/// times piper's page faults and twice its system CPU time on the same voice.
fn cpu_provider() -> ort::ep::CPU {
    ort::ep::CPU::default().with_arena_allocator(true)
}

#[cfg(feature = "cuda")]
fn with_cuda(
    builder: ort::session::builder::SessionBuilder,
    device_id: i32,
    ctx: &str,
) -> Result<ort::session::builder::SessionBuilder> {
    builder
        .with_execution_providers([
            ort::ep::CUDA::default()
                .with_device_id(device_id)
                .build()
                .error_on_failure(),
            ort::ep::CPU::default().build(),
        ])
        .map_err(|e| Error::ModelLoad(format!("{ctx}: CUDA execution provider unavailable: {e}")))
}

#[cfg(not(feature = "cuda"))]
fn with_cuda(
    _builder: ort::session::builder::SessionBuilder,
    device_id: i32,
    _ctx: &str,
) -> Result<ort::session::builder::SessionBuilder> {
    Err(Error::Config(format!(
        "device cuda:{device_id} requested, but vctts was built without the `cuda` feature; \
         rebuild with `--features cuda` and use the onnxruntime-gpu library, or set device: cpu"
    )))
}

/// Fresh options for session runs: a run given them stops early (with an
/// error) once [`terminate`](ort::session::RunOptions::terminate) is called on
/// them, from any thread. The flag stays set, so each request gets its own.
pub fn run_options() -> Result<ort::session::RunOptions> {
    environment()?;
    ort::session::RunOptions::new().map_err(|e| Error::Runtime(format!("run options: {e}")))
}

/// [`run_options`] that also hand the regions of the CPU arena left unused
/// back to the system at the end of the run. Given to the last run of a
/// request, they keep a server's memory at what its work needs instead of
/// the size of the largest request it ever had (measured: 213 MB between
/// requests instead of 430 MB); given to every run, they would cost a page
/// fault per arena page per sentence (4× the system CPU time of a long text).
pub fn shrinking_run_options() -> Result<ort::session::RunOptions> {
    let mut options = run_options()?;
    options
        .set(ARENA_SHRINKAGE.0, ARENA_SHRINKAGE.1)
        .map_err(|e| Error::Runtime(format!("run options: {e}")))?;
    Ok(options)
}

/// ONNX Runtime's session option that stops a session's own pool from
/// spinning as soon as its last run under way returns (it spins again at the
/// next run).
pub const SPINNING_STOP: (&str, &str) = ("session.force_spinning_stop", "1");

/// ONNX Runtime's run option that shrinks the CPU arena after a run.
pub const ARENA_SHRINKAGE: (&str, &str) = ("memory.enable_memory_arena_shrinkage", "cpu:0");

/// Run options terminated when `control` is cancelled, for as long as
/// the returned guard lives: cancelling a request stops the model run under
/// way instead of waiting for it to end. `shrink` picks
/// [`shrinking_run_options`].
pub fn cancellable_run(
    control: &vctts_core::SynthesisControl,
    shrink: bool,
) -> Result<(
    std::sync::Arc<ort::session::RunOptions>,
    vctts_core::CancelHookGuard,
)> {
    let options = std::sync::Arc::new(if shrink {
        shrinking_run_options()?
    } else {
        run_options()?
    });
    let hook = options.clone();
    let guard = control.on_cancel(std::sync::Arc::new(move || {
        let _ = hook.terminate();
    }));
    Ok((options, guard))
}

/// A job for a pool thread: gets the thread's state.
type Job<S> = Box<dyn FnOnce(&mut S) + Send>;

/// What a pool's threads are doing, for [`crate::schedule::Load`].
#[derive(Debug, Default)]
struct Counters {
    /// Threads running a job.
    running: AtomicUsize,
    /// Requests queued ([`InferencePool::submit`]).
    requests: AtomicUsize,
    /// Helper jobs queued ([`Spawner::try_spawn`]).
    helpers: AtomicUsize,
}

/// An engine's lanes through load and unload, and the model state users
/// see: what every engine's `load`, `unload` and `state` share.
///
/// Invariants: loads and unloads take turns; loading loaded lanes does
/// nothing; the state reads `Ready` only once the lanes (and whatever the
/// load's `keep` stored) are in place, and `Failed(reason)` after a failed
/// load; unloading drops the engine's handle only, so queued and running
/// jobs keep theirs and finish, then the threads exit and free their state.
pub struct Lanes<S: 'static> {
    /// The engine's name in errors (`xtts is unloaded`).
    name: &'static str,
    pool: Mutex<Option<Arc<InferencePool<S>>>>,
    state: Mutex<vctts_core::ModelState>,
    load_lock: tokio::sync::Mutex<()>,
}

impl<S: 'static> std::fmt::Debug for Lanes<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lanes")
            .field("engine", &self.name)
            .field("state", &*self.state.lock())
            .finish()
    }
}

impl<S: 'static> Lanes<S> {
    /// Unloaded lanes of the engine `name`.
    pub fn new(name: &'static str) -> Self {
        Self {
            name,
            pool: Mutex::new(None),
            state: Mutex::new(vctts_core::ModelState::Unloaded),
            load_lock: tokio::sync::Mutex::new(()),
        }
    }

    /// The model state.
    pub fn state(&self) -> vctts_core::ModelState {
        self.state.lock().clone()
    }

    /// The running lanes, or [`Error::ModelNotLoaded`] naming the state
    /// (and a failed load's reason).
    pub fn get(&self) -> Result<Arc<InferencePool<S>>> {
        self.pool.lock().clone().ok_or_else(|| {
            Error::ModelNotLoaded(match &*self.state.lock() {
                vctts_core::ModelState::Failed(r) => format!("{} failed to load: {r}", self.name),
                s => format!("{} is {}", self.name, s.as_str()),
            })
        })
    }

    /// Starts the lanes with `start` on a blocking thread, unless they run
    /// already; `keep` gets what `start` made beside the lanes before the
    /// state reads `Ready`.
    pub async fn load<T: Send + 'static>(
        &self,
        start: impl FnOnce() -> Result<(InferencePool<S>, T)> + Send + 'static,
        keep: impl FnOnce(T),
    ) -> Result<()> {
        let _turn = self.load_lock.lock().await;
        if self.pool.lock().is_some() {
            return Ok(());
        }
        *self.state.lock() = vctts_core::ModelState::Loading;
        let started = tokio::task::spawn_blocking(start)
            .await
            .map_err(|e| Error::Internal(format!("loader thread failed: {e}")))
            .and_then(|r| r);
        match started {
            Ok((pool, made)) => {
                keep(made);
                *self.pool.lock() = Some(Arc::new(pool));
                *self.state.lock() = vctts_core::ModelState::Ready;
                Ok(())
            }
            Err(e) => {
                *self.state.lock() = vctts_core::ModelState::Failed(e.to_string());
                Err(e)
            }
        }
    }

    /// Drops the engine's handle on the lanes (see the type's invariants).
    pub async fn unload(&self) {
        let _turn = self.load_lock.lock().await;
        self.pool.lock().take();
        *self.state.lock() = vctts_core::ModelState::Unloaded;
    }
}

/// Threads that own per-thread state (sessions) and run jobs from a bounded
/// queue. Dropping the pool lets queued jobs finish, then the threads exit and
/// free their state.
pub struct InferencePool<S: 'static> {
    name: String,
    tx: Option<mpsc::SyncSender<Job<S>>>,
    threads: Vec<JoinHandle<()>>,
    counters: Arc<Counters>,
}

/// A handle a running job uses to see the pool's load and to queue helper
/// jobs on its other threads ([`crate::schedule`]). It keeps the pool's
/// queue open while it lives, so jobs drop it when they end.
pub struct Spawner<S: 'static> {
    tx: mpsc::SyncSender<Job<S>>,
    counters: Arc<Counters>,
    lanes: usize,
}

impl<S: 'static> Clone for Spawner<S> {
    fn clone(&self) -> Self {
        Self {
            tx: self.tx.clone(),
            counters: self.counters.clone(),
            lanes: self.lanes,
        }
    }
}

impl<S: 'static> std::fmt::Debug for Spawner<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Spawner").field("load", &self.load()).finish()
    }
}

fn load_of(counters: &Counters, lanes: usize) -> crate::schedule::Load {
    crate::schedule::Load {
        lanes,
        busy: counters.running.load(Ordering::SeqCst) + counters.helpers.load(Ordering::SeqCst),
        waiting: counters.requests.load(Ordering::SeqCst),
    }
}

impl<S: 'static> Spawner<S> {
    /// The pool's load now.
    pub fn load(&self) -> crate::schedule::Load {
        load_of(&self.counters, self.lanes)
    }

    /// Queues a helper job (one that serves a running request, not a new
    /// request); false when the queue is full or closed. Helper jobs do not
    /// count as waiting requests, so they never make each other yield.
    pub fn try_spawn<F>(&self, job: F) -> bool
    where
        F: FnOnce(&mut S) + Send + 'static,
    {
        let counters = self.counters.clone();
        let boxed: Job<S> = Box::new(move |state: &mut S| {
            counters.helpers.fetch_sub(1, Ordering::SeqCst);
            // A panicking helper must not take its thread down.
            let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| job(state)));
        });
        self.counters.helpers.fetch_add(1, Ordering::SeqCst);
        match self.tx.try_send(boxed) {
            Ok(()) => true,
            Err(_) => {
                self.counters.helpers.fetch_sub(1, Ordering::SeqCst);
                false
            }
        }
    }
}

/// Work an [`InferencePool`] thread does on its own state when the pool
/// has gone quiet: once, after `after` without a job since its last one
/// (e.g. handing an arena's unused memory back, which done after every
/// request would fault the same pages in again for the next).
pub struct IdleWork<S> {
    /// How long a thread waits without a job first.
    pub after: std::time::Duration,
    /// The work, on the thread's state.
    pub work: Box<dyn Fn(&mut S) + Send + Sync>,
}

impl<S: 'static> std::fmt::Debug for InferencePool<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InferencePool")
            .field("name", &self.name)
            .field("threads", &self.threads.len())
            .finish()
    }
}

impl<S: 'static> InferencePool<S> {
    /// Starts `threads` threads, each building its state with `make` (e.g.
    /// loading its sessions), with room for `queue` waiting jobs. Returns the
    /// first error any thread's `make` returned; then no thread is left running.
    pub fn start<F>(name: &str, threads: usize, queue: usize, make: F) -> Result<Self>
    where
        F: Fn(usize) -> Result<S> + Send + Sync + 'static,
    {
        Self::start_with_idle(name, threads, queue, make, None)
    }

    /// [`InferencePool::start`], and each thread does `idle`'s work on its
    /// state once it has had no job for `idle.after` since its last one.
    pub fn start_with_idle<F>(
        name: &str,
        threads: usize,
        queue: usize,
        make: F,
        idle: Option<IdleWork<S>>,
    ) -> Result<Self>
    where
        F: Fn(usize) -> Result<S> + Send + Sync + 'static,
    {
        let idle = idle.map(Arc::new);
        let threads_n = threads.max(1);
        let (tx, rx) = mpsc::sync_channel::<Job<S>>(queue);
        let rx = std::sync::Arc::new(Mutex::new(rx));
        let make = std::sync::Arc::new(make);
        let (ready_tx, ready_rx) = mpsc::channel::<Result<()>>();
        let mut handles = Vec::with_capacity(threads_n);
        let counters = Arc::new(Counters::default());
        for i in 0..threads_n {
            let rx = rx.clone();
            let counters = counters.clone();
            let make = make.clone();
            let ready_tx = ready_tx.clone();
            let idle = idle.clone();
            let handle = std::thread::Builder::new()
                .name(format!("{name}-{i}"))
                .spawn(move || {
                    let mut state = match make(i) {
                        Ok(s) => {
                            let _ = ready_tx.send(Ok(()));
                            s
                        }
                        Err(e) => {
                            let _ = ready_tx.send(Err(e));
                            return;
                        }
                    };
                    drop(ready_tx);
                    // Whether a job ran since the idle work last did.
                    let mut worked = false;
                    loop {
                        // Hold the lock only while taking a job.
                        let job = match idle.as_deref() {
                            Some(idle) if worked => match rx.lock().recv_timeout(idle.after) {
                                Ok(job) => job,
                                Err(mpsc::RecvTimeoutError::Timeout) => {
                                    (idle.work)(&mut state);
                                    worked = false;
                                    continue;
                                }
                                Err(mpsc::RecvTimeoutError::Disconnected) => break,
                            },
                            _ => match rx.lock().recv() {
                                Ok(job) => job,
                                Err(_) => break,
                            },
                        };
                        counters.running.fetch_add(1, Ordering::SeqCst);
                        job(&mut state);
                        counters.running.fetch_sub(1, Ordering::SeqCst);
                        worked = true;
                    }
                })
                .map_err(|e| Error::Internal(format!("cannot start inference thread: {e}")))?;
            handles.push(handle);
        }
        drop(ready_tx);
        let mut pool = Self {
            name: name.to_string(),
            tx: Some(tx),
            threads: handles,
            counters,
        };
        for _ in 0..threads_n {
            match ready_rx.recv() {
                Ok(Ok(())) => {}
                Ok(Err(e)) => {
                    pool.shutdown();
                    return Err(e);
                }
                Err(_) => {
                    pool.shutdown();
                    return Err(Error::Internal(format!(
                        "{name}: an inference thread died while starting"
                    )));
                }
            }
        }
        Ok(pool)
    }

    /// Number of threads.
    pub fn threads(&self) -> usize {
        self.threads.len()
    }

    /// The pool's load now: its threads, the busy ones, the requests waiting.
    pub fn load(&self) -> crate::schedule::Load {
        load_of(&self.counters, self.threads.len())
    }

    /// A handle for a job to lend work to the pool's other threads; `None`
    /// once the pool is shut down.
    pub fn spawner(&self) -> Option<Spawner<S>> {
        self.tx.as_ref().map(|tx| Spawner {
            tx: tx.clone(),
            counters: self.counters.clone(),
            lanes: self.threads.len(),
        })
    }

    /// Queues `job` and awaits its result. A full queue is
    /// [`Error::Overloaded`] at once (back-pressure is an error, not a wait).
    pub async fn run<T, F>(&self, job: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut S) -> Result<T> + Send + 'static,
    {
        let rx = self.submit(job)?;
        rx.await
            .map_err(|_| Error::Inference(format!("{}: inference thread stopped", self.name)))?
    }

    /// Queues `job` without waiting for it; the receiver gets its result.
    pub fn submit<T, F>(&self, job: F) -> Result<tokio::sync::oneshot::Receiver<Result<T>>>
    where
        T: Send + 'static,
        F: FnOnce(&mut S) -> Result<T> + Send + 'static,
    {
        let (otx, orx) = tokio::sync::oneshot::channel();
        let counters = self.counters.clone();
        let boxed: Job<S> = Box::new(move |state: &mut S| {
            counters.requests.fetch_sub(1, Ordering::SeqCst);
            let out = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| job(state)))
                .unwrap_or_else(|_| Err(Error::Internal("inference job panicked".into())));
            let _ = otx.send(out);
        });
        let tx = self
            .tx
            .as_ref()
            .ok_or_else(|| Error::ModelNotLoaded(self.name.clone()))?;
        self.counters.requests.fetch_add(1, Ordering::SeqCst);
        let sent = tx.try_send(boxed);
        if sent.is_err() {
            self.counters.requests.fetch_sub(1, Ordering::SeqCst);
        }
        match sent {
            Ok(()) => Ok(orx),
            Err(mpsc::TrySendError::Full(_)) => Err(Error::Overloaded(format!(
                "{}: inference queue is full",
                self.name
            ))),
            Err(mpsc::TrySendError::Disconnected(_)) => Err(Error::ModelNotLoaded(self.name.clone())),
        }
    }

    fn shutdown(&mut self) {
        self.tx.take();
        for h in self.threads.drain(..) {
            let _ = h.join();
        }
    }
}

impl<S: 'static> Drop for InferencePool<S> {
    fn drop(&mut self) {
        // Threads finish what is queued, then exit. Joining here would block an
        // async caller; the threads hold nothing the caller waits for.
        self.tx.take();
    }
}

/// The run options of an inference thread's current job: every model run
/// the job makes goes through [`get`](Self::get), and [`arm`](Self::arm)
/// gives each job new options terminated when its request is cancelled.
///
/// Invariants: a job's options are never reused by the next job (ONNX
/// Runtime's terminate flag stays set, and a cancel hook may still fire
/// just after its guard is dropped: it then only touches the old options),
/// so a cancelled request never stops the work of the one after it.
pub struct JobRunOptions {
    current: std::sync::Arc<ort::session::RunOptions>,
}

impl std::fmt::Debug for JobRunOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JobRunOptions").finish_non_exhaustive()
    }
}

impl JobRunOptions {
    /// Options that nothing terminates (for runs outside a request).
    pub fn new() -> Result<Self> {
        Ok(Self {
            current: std::sync::Arc::new(run_options()?),
        })
    }

    /// Gives the job that starts its own options, terminated when `control`
    /// is cancelled while the returned guard lives (at once if it already
    /// is): the model run under way then fails, and every later run of the
    /// job fails before it starts. The job holds the guard until it ends.
    pub fn arm(&mut self, control: &vctts_core::SynthesisControl) -> Result<vctts_core::CancelHookGuard> {
        let (options, guard) = cancellable_run(control, false)?;
        self.current = options;
        Ok(guard)
    }

    /// Gives the job that starts fresh options that nothing terminates (a
    /// job without a [`SynthesisControl`](vctts_core::SynthesisControl),
    /// e.g. voice extraction after a cancelled request).
    pub fn reset(&mut self) -> Result<()> {
        self.current = std::sync::Arc::new(run_options()?);
        Ok(())
    }

    /// The options for the next model run.
    pub fn get(&self) -> &ort::session::RunOptions {
        &self.current
    }
}

/// Cancels a stream's work when its reader goes away, returned by
/// [`cancel_when_reader_leaves`]. The job holds it for as long as it works;
/// dropping it (the job ended, or was dropped without running) ends the watch.
#[derive(Debug)]
pub struct ReaderWatch {
    _done: Option<tokio::sync::oneshot::Sender<()>>,
}

/// Cancels `control` as soon as the reader of the stream `tx` feeds goes
/// away (the stream dropped or stopped), so a job armed with it
/// ([`JobRunOptions::arm`]) stops inside the model run under way rather than
/// at its next chunk. Watches from a task on the current tokio runtime;
/// without one there is no watch and the job stops at its next chunk.
///
/// The watcher holds a clone of `tx` until the reader leaves or the
/// returned [`ReaderWatch`] is dropped, so the stream ends for its reader
/// only once the job has let go of both.
pub fn cancel_when_reader_leaves(
    tx: &vctts_core::AudioStreamSender,
    control: &vctts_core::SynthesisControl,
) -> ReaderWatch {
    let Ok(rt) = tokio::runtime::Handle::try_current() else {
        return ReaderWatch { _done: None };
    };
    let (done, finished) = tokio::sync::oneshot::channel::<()>();
    let (tx, control) = (tx.clone(), control.clone());
    rt.spawn(async move {
        tokio::select! {
            _ = tx.closed() => control.cancel(),
            _ = finished => {}
        }
    });
    ReaderWatch { _done: Some(done) }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_parked_model_lives_in_a_private_file_until_dropped() {
        let bytes: Vec<u8> = (0..=255u8).cycle().take(10_000).collect();
        let parked = super::ParkedModel::park(bytes.clone());
        let path = match &parked {
            super::ParkedModel::File(path) => path.to_path_buf(),
            super::ParkedModel::Memory(_) => panic!("the temporary directory is writable here"),
        };
        assert_eq!(std::fs::read(&path).unwrap(), bytes);
        drop(parked);
        assert!(!path.exists(), "the file goes with the parked model");
    }

    use super::*;

    #[test]
    fn the_cpu_memory_arena_is_on() {
        // `ort` turns it off unless asked; ONNX Runtime's default is on.
        assert!(format!("{:?}", cpu_provider()).contains("use_arena: true"));
    }

    #[tokio::test]
    async fn lanes_load_once_report_their_state_and_unload() {
        use vctts_core::ModelState;
        let lanes: Lanes<usize> = Lanes::new("test-engine");
        assert_eq!(lanes.state(), ModelState::Unloaded);
        let e = lanes.get().unwrap_err().to_string();
        assert!(e.contains("test-engine is unloaded"), "{e}");

        // A failed load leaves its reason in the state and in later errors.
        let failed = lanes
            .load(|| Err(Error::ModelLoad("no weights".into())), |(): ()| {})
            .await;
        assert!(failed.is_err());
        assert!(matches!(lanes.state(), ModelState::Failed(r) if r.contains("no weights")));
        let e = lanes.get().unwrap_err().to_string();
        assert!(
            e.contains("test-engine failed to load") && e.contains("no weights"),
            "{e}"
        );

        // What the load made beside the lanes is kept before they read Ready.
        let kept = Mutex::new(None);
        let start = || Ok((InferencePool::start("test-lane", 2, 1, Ok)?, "assets"));
        lanes
            .load(start, |made| {
                assert_eq!(lanes.state(), ModelState::Loading);
                *kept.lock() = Some(made);
            })
            .await
            .unwrap();
        assert_eq!(*kept.lock(), Some("assets"));
        assert_eq!(lanes.state(), ModelState::Ready);
        let pool = lanes.get().unwrap();

        // Loading loaded lanes starts nothing.
        lanes
            .load(
                || -> Result<(InferencePool<usize>, ())> { panic!("started twice") },
                |()| {},
            )
            .await
            .unwrap();
        assert!(Arc::ptr_eq(&pool, &lanes.get().unwrap()));

        // Unloading drops the engine's handle; one held elsewhere still works.
        lanes.unload().await;
        assert_eq!(lanes.state(), ModelState::Unloaded);
        assert!(lanes.get().is_err());
        assert_eq!(Arc::strong_count(&pool), 1);
        let lane = pool.run(|state: &mut usize| Ok(*state)).await.unwrap();
        assert!(lane < 2, "{lane}");
    }

    #[test]
    fn sessions_leave_the_memory_pattern_off_unless_asked() {
        // Every engine builds its sessions from these defaults (with
        // `..SessionConfig::default()`); the pattern held a planned block
        // per input shape on top of the tensors' own (see the field).
        assert!(!SessionConfig::default().memory_pattern);
        crate::runtime::init(&Default::default()).expect("ONNX Runtime: run scripts/setup.sh");
        for memory_pattern in [false, true] {
            let config = SessionConfig {
                memory_pattern,
                ..SessionConfig::default()
            };
            builder(&config, "either setting").expect("a session builder with the setting");
        }
    }

    #[test]
    fn candidates_follow_the_documented_order() {
        let cfg = RuntimeConfig {
            library_path: Some(PathBuf::from("explicit.so")),
        };
        let env = |k: &str| match k {
            "VCTTS_ORT_LIB" => Some("from-vctts.so".to_string()),
            "ORT_DYLIB_PATH" => Some("from-ort.so".to_string()),
            _ => None,
        };
        let c = candidates(&cfg, &env);
        assert_eq!(c[0], PathBuf::from("explicit.so"));
        assert_eq!(c[1], PathBuf::from("from-vctts.so"));
        assert_eq!(c[2], PathBuf::from("from-ort.so"));
        let exe_dir = std::env::current_exe().unwrap().parent().unwrap().to_path_buf();
        assert_eq!(c[3], exe_dir.join(LIBRARY_NAMES[0]));
        assert!(
            c.iter()
                .any(|p| p.ends_with(".vctts/lib/libonnxruntime.so.1.32.0"))
        );
    }

    #[test]
    fn a_thread_does_its_idle_work_once_after_a_job_and_not_before() {
        let (done_tx, done_rx) = mpsc::channel::<usize>();
        let done_tx = Mutex::new(done_tx);
        let idle = IdleWork {
            after: std::time::Duration::from_millis(20),
            work: Box::new(move |s: &mut Vec<&'static str>| {
                s.push("idle");
                let _ = done_tx.lock().send(s.len());
            }),
        };
        let pool = InferencePool::start_with_idle("t", 1, 4, |_| Ok(Vec::new()), Some(idle)).unwrap();
        // No job yet: the idle work does not run on its own.
        assert!(
            done_rx
                .recv_timeout(std::time::Duration::from_millis(200))
                .is_err()
        );
        let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
        let len = rt.block_on(pool.run(|s: &mut Vec<&'static str>| {
            s.push("job");
            Ok(s.len())
        }));
        assert_eq!(len.unwrap(), 1);
        // After the job, once: the state shows the job, then the idle work.
        let wait = std::time::Duration::from_secs(30);
        assert_eq!(done_rx.recv_timeout(wait).unwrap(), 2);
        assert!(
            done_rx
                .recv_timeout(std::time::Duration::from_millis(200))
                .is_err()
        );
        // A second job makes it due again.
        let log = rt.block_on(pool.run(|s: &mut Vec<&'static str>| {
            s.push("job");
            Ok(s.clone())
        }));
        assert_eq!(log.unwrap(), ["job", "idle", "job"]);
        assert_eq!(done_rx.recv_timeout(wait).unwrap(), 4);
    }

    #[test]
    fn device_parse() {
        assert_eq!("cpu".parse::<Device>().unwrap(), Device::Cpu);
        assert_eq!("CUDA".parse::<Device>().unwrap(), Device::Cuda { device_id: 0 });
        assert_eq!("cuda:2".parse::<Device>().unwrap(), Device::Cuda { device_id: 2 });
        assert!("tpu".parse::<Device>().is_err());
        assert!("cuda:-1".parse::<Device>().is_err());
    }

    #[tokio::test(flavor = "current_thread")]
    async fn pool_runs_jobs_on_its_own_threads_with_their_state() {
        let pool = InferencePool::start("t", 2, 8, |i| Ok(vec![i])).unwrap();
        let caller = std::thread::current().id();
        let (tid, state) = pool
            .run(|s: &mut Vec<usize>| Ok((std::thread::current().id(), s.clone())))
            .await
            .unwrap();
        assert_ne!(tid, caller);
        assert!(state == vec![0] || state == vec![1]);
    }

    #[tokio::test(flavor = "current_thread")]
    async fn pool_start_reports_the_first_error() {
        let e = InferencePool::<()>::start("t", 2, 1, |i| {
            if i == 1 {
                Err(Error::ModelLoad("bad file".into()))
            } else {
                Ok(())
            }
        })
        .unwrap_err();
        assert_eq!(e.code(), "model_load_failed");
    }

    #[tokio::test(flavor = "current_thread")]
    async fn full_queue_is_overloaded_not_a_wait() {
        let (block_tx, block_rx) = std::sync::mpsc::channel::<()>();
        let block_rx = std::sync::Arc::new(Mutex::new(block_rx));
        let pool = InferencePool::start("t", 1, 1, |_| Ok(())).unwrap();
        // Occupy the thread until released.
        let (started_tx, started_rx) = tokio::sync::oneshot::channel();
        let br = block_rx.clone();
        let first = pool
            .submit(move |_: &mut ()| {
                let _ = started_tx.send(());
                let _ = br.lock().recv();
                Ok(1)
            })
            .unwrap();
        started_rx.await.unwrap();
        let second = pool.submit(|_: &mut ()| Ok(2)).unwrap(); // fills the queue of 1
        let third = pool.submit(|_: &mut ()| Ok(3));
        assert_eq!(third.unwrap_err().code(), "overloaded");
        block_tx.send(()).unwrap();
        assert_eq!(first.await.unwrap().unwrap(), 1);
        assert_eq!(second.await.unwrap().unwrap(), 2);
    }

    #[tokio::test(flavor = "current_thread")]
    async fn panicking_job_is_an_error_and_the_thread_survives() {
        let pool = InferencePool::start("t", 1, 4, |_| Ok(())).unwrap();
        let e = pool
            .run(|_: &mut ()| -> Result<()> { panic!("boom") })
            .await
            .unwrap_err();
        assert_eq!(e.code(), "internal_error");
        assert_eq!(pool.run(|_: &mut ()| Ok(5)).await.unwrap(), 5);
    }

    #[test]
    fn missing_model_file_is_not_installed() {
        let e = load_session(Path::new("does/not/exist.onnx"), &SessionConfig::default()).unwrap_err();
        assert_eq!(e.code(), "model_not_installed");
        assert!(e.to_string().contains("does/not/exist.onnx"));
    }

    /// Lets the current-thread runtime's other tasks run until `done` holds
    /// (a bounded number of turns, no clock).
    async fn turns_until(mut done: impl FnMut() -> bool) -> bool {
        for _ in 0..1000 {
            if done() {
                return true;
            }
            tokio::task::yield_now().await;
        }
        done()
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_reader_that_leaves_cancels_the_work() {
        let control = vctts_core::SynthesisControl::new();
        let (tx, rx) = vctts_core::AudioStream::channel(2);
        let _watch = cancel_when_reader_leaves(&tx, &control);
        tokio::task::yield_now().await;
        assert!(!control.is_cancelled(), "the reader is still there");
        drop(rx);
        assert!(turns_until(|| control.is_cancelled()).await);
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_finished_job_ends_the_watch_and_the_stream() {
        use futures::FutureExt;
        let control = vctts_core::SynthesisControl::new();
        let (tx, mut rx) = vctts_core::AudioStream::channel(2);
        let watch = cancel_when_reader_leaves(&tx, &control);
        tokio::task::yield_now().await;
        // The job ends: its sender and its watch go; the reader sees the end
        // once the watcher has let go of its sender too.
        drop(tx);
        drop(watch);
        assert!(turns_until(|| matches!(rx.next_chunk().now_or_never(), Some(None))).await);
        assert!(!control.is_cancelled(), "a job that finished is not cancelled");
    }
}
