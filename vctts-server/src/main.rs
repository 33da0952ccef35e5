//! `vctts-server`: parses arguments, builds the role's configuration and
//! calls the library. Prints `vctts-server <role> listening on http://ADDR` on
//! stdout once the socket is bound (with `--port 0` the port is the one the
//! OS picked); logs go to stderr.
//!
//! The binary's global allocator is jemalloc (not on MSVC): under mixed
//! serving load glibc's malloc kept freed memory in fragmented arenas, and a
//! gateway's RSS grew by 70 % over 10,000 requests while its live heap did
//! not (docs/RELIABILITY.md). jemalloc returns freed pages after a decay
//! time, purged by its background thread. Its symbols are prefixed, so
//! native libraries (ONNX Runtime, loaded with dlopen) keep the C library's
//! malloc. The library crate stays allocator-neutral: the binary installs a
//! probe ([`vctts_server::allocator`]) for the allocator gauges of `/metrics`.

use clap::{Args, Parser, Subcommand};
use std::io::Write;
use std::path::PathBuf;
use vctts_server::config::{Env, GatewayConfig, WorkerConfig};
use vctts_server::standalone::StandaloneOptions;

#[cfg(not(target_env = "msvc"))]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// Makes jemalloc purge freed pages on its own thread (after its decay time,
/// 10 s by default) instead of only when a thread next allocates, so an idle
/// server gives memory back; installs the statistics probe and the purge
/// run after a model load.
#[cfg(not(target_env = "msvc"))]
fn set_up_allocator() {
    // A failure leaves purging to the allocating threads: still bounded.
    let _ = tikv_jemalloc_ctl::background_thread::write(true);
    vctts_core::memory::install_release(|| {
        // `arena.<i>.purge` with jemalloc 5's MALLCTL_ARENAS_ALL (4096) as
        // `i`: every arena. It takes no value: every pointer null, as
        // jemalloc requires of a void control.
        const NAME: &[u8] = b"arena.4096.purge\0";
        // SAFETY: a NUL-terminated control name, and null old and new
        // values with zero length, which is what a void control takes.
        let _ = unsafe {
            tikv_jemalloc_sys::mallctl(
                NAME.as_ptr().cast(),
                std::ptr::null_mut(),
                std::ptr::null_mut(),
                std::ptr::null_mut(),
                0,
            )
        };
    });
    vctts_server::allocator::install(|| {
        // Statistics are a snapshot refreshed by advancing the epoch.
        tikv_jemalloc_ctl::epoch::advance().ok()?;
        Some(vctts_server::allocator::AllocatorStats {
            allocated: tikv_jemalloc_ctl::stats::allocated::read().ok()? as u64,
            resident: tikv_jemalloc_ctl::stats::resident::read().ok()? as u64,
        })
    });
}

#[cfg(target_env = "msvc")]
fn set_up_allocator() {}

/// vctts voice-clone TTS server: a gateway, a worker, or both in one process.
#[derive(Debug, Parser)]
#[command(name = "vctts-server", version, about)]
struct Cli {
    #[command(subcommand)]
    role: Role,
}

#[derive(Debug, Subcommand)]
enum Role {
    /// Public API, node registry and routing (workers register with it).
    Gateway(GatewayArgs),
    /// Hosts one engine and registers with one or more gateways.
    Worker(WorkerArgs),
    /// A gateway with in-process engines for every installed model; no config needed.
    Standalone(StandaloneArgs),
    /// Validates a gateway or worker config file without starting anything.
    CheckConfig {
        /// The file.
        file: PathBuf,
    },
}

#[derive(Debug, Args)]
struct Common {
    /// Configuration file (YAML); settings also come from VCTTS_<SECTION>__<KEY> variables.
    #[arg(long, env = "VCTTS_CONFIG")]
    config: Option<PathBuf>,
    /// Address to bind (overrides the file).
    #[arg(long, env = "VCTTS_HOST")]
    host: Option<String>,
    /// Port to bind, 0 for any free port (overrides the file).
    #[arg(long, env = "VCTTS_PORT")]
    port: Option<u16>,
    /// Log level: debug, info, warning, error (overrides the file; RUST_LOG wins over both).
    #[arg(long, env = "VCTTS_LOG_LEVEL")]
    log_level: Option<String>,
}

#[derive(Debug, Args)]
struct GatewayArgs {
    #[command(flatten)]
    common: Common,
    /// Data folder for voices (overrides storage.data_dir).
    #[arg(long, env = "VCTTS_DATA")]
    data: Option<PathBuf>,
}

#[derive(Debug, Args)]
struct WorkerArgs {
    #[command(flatten)]
    common: Common,
    /// Engine to host: xtts, openvoice or gpt-sovits (overrides worker.type).
    #[arg(long, env = "VCTTS_ENGINE")]
    engine: Option<String>,
    /// Gateway URL to register with (overrides gateway.url; repeat for several).
    #[arg(long = "gateway", env = "VCTTS_GATEWAY", value_delimiter = ',')]
    gateways: Vec<String>,
    /// Models folder (overrides model.path).
    #[arg(long, env = "VCTTS_MODELS")]
    models: Option<PathBuf>,
    /// URL gateways reach this worker at (overrides worker.advertise_url).
    /// Without it, `--port` keeps the file's advertise_url host but takes
    /// the port actually bound, so a copied config cannot advertise another
    /// worker's address.
    #[arg(long, env = "VCTTS_ADVERTISE_URL")]
    advertise_url: Option<String>,
}

#[derive(Debug, Args)]
struct StandaloneArgs {
    #[command(flatten)]
    common: Common,
    /// Models folder.
    #[arg(long, env = "VCTTS_MODELS", default_value = "models")]
    models: PathBuf,
    /// Data folder for voices.
    #[arg(long, env = "VCTTS_DATA")]
    data: Option<PathBuf>,
}

fn fail(msg: impl std::fmt::Display) -> ! {
    // Records still queued for the log writer thread reach their files first.
    vctts_server::logs::flush();
    eprintln!("vctts-server: {msg}");
    std::process::exit(2);
}

fn init_logging(level: &str) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(level));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .try_init();
}

/// Installs the server's logging (categories, rotated files, redaction,
/// run-time level changes) with the level flag applied.
fn init_server_logging(flag: &Option<String>, configured: &vctts_server::config::LoggingSection) {
    let mut section = configured.clone();
    if let Some(l) = flag {
        section.level = l.clone();
    }
    if let Err(e) = vctts_server::logs::init(&section) {
        fail(e);
    }
}

/// `check-config FILE`: a file with a top-level `worker:` section is a worker
/// config, anything else a gateway config.
fn check_config(file: &std::path::Path, env: &Env) -> ! {
    let text =
        std::fs::read_to_string(file).unwrap_or_else(|e| fail(format!("reading {}: {e}", file.display())));
    let is_worker = serde_yaml_ng::from_str::<serde_yaml_ng::Value>(&text)
        .ok()
        .and_then(|v| v.as_mapping().map(|m| m.contains_key("worker")))
        .unwrap_or(false);
    let result = if is_worker {
        WorkerConfig::parse(&text, env).map(|_| "worker")
    } else {
        GatewayConfig::parse(&text, env).map(|_| "gateway")
    };
    match result {
        Ok(role) => {
            println!("{}: valid {role} configuration", file.display());
            std::process::exit(0);
        }
        Err(e) => fail(format!("{}: {e}", file.display())),
    }
}

fn level_of(flag: &Option<String>, configured: &vctts_server::config::LoggingSection) -> String {
    match flag {
        Some(l) => vctts_server::config::LoggingSection {
            level: l.clone(),
            ..configured.clone()
        }
        .filter_directive()
        .to_string(),
        None => configured.filter_directive().to_string(),
    }
}

fn gateway_config(common: &Common, data: &Option<PathBuf>, env: &Env) -> GatewayConfig {
    let mut cfg = match &common.config {
        Some(p) => GatewayConfig::load(p, env),
        None => GatewayConfig::parse("", env),
    }
    .unwrap_or_else(|e| fail(e));
    if let Some(h) = &common.host {
        cfg.server.host = h.clone();
    }
    if let Some(p) = common.port {
        cfg.server.port = p;
    }
    if let Some(d) = data {
        cfg.storage.data_dir = d.clone();
    }
    cfg.validate().unwrap_or_else(|e| fail(e));
    cfg
}

fn worker_config(args: &WorkerArgs, env: &Env) -> WorkerConfig {
    let text = match &args.common.config {
        Some(p) => {
            std::fs::read_to_string(p).unwrap_or_else(|e| fail(format!("reading {}: {e}", p.display())))
        }
        None => {
            let engine = args
                .engine
                .clone()
                .unwrap_or_else(|| fail("worker needs --config FILE, or --engine and --gateway"));
            let gw = args
                .gateways
                .first()
                .cloned()
                .unwrap_or_else(|| fail("worker needs --config FILE, or --engine and --gateway"));
            format!("worker: {{ type: {engine:?} }}\ngateway: {{ url: {gw:?} }}\n")
        }
    };
    let mut cfg = WorkerConfig::parse(&text, env).unwrap_or_else(|e| fail(e));
    if let Some(e) = &args.engine {
        cfg.worker.kind = e.parse().unwrap_or_else(|e| fail(e));
    }
    if !args.gateways.is_empty() {
        cfg.gateway.url = vctts_server::config::GatewayUrls::Many(args.gateways.clone());
    }
    if let Some(h) = &args.common.host {
        cfg.worker.host = h.clone();
    }
    if let Some(p) = args.common.port {
        cfg.worker.port = Some(p);
    }
    if let Some(m) = &args.models {
        cfg.model.path = m.clone();
    }
    if let Some(u) = &args.advertise_url {
        cfg.worker.advertise_url = Some(u.clone());
    }
    cfg.validate().unwrap_or_else(|e| fail(e));
    cfg
}

fn runtime(workers: usize) -> tokio::runtime::Runtime {
    let mut b = tokio::runtime::Builder::new_multi_thread();
    if workers > 0 {
        b.worker_threads(workers);
    }
    b.enable_all()
        .build()
        .unwrap_or_else(|e| fail(format!("starting the async runtime: {e}")))
}

async fn bind(host: &str, port: u16, role: &str) -> tokio::net::TcpListener {
    let addr = if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    };
    let listener = tokio::net::TcpListener::bind(&addr)
        .await
        .unwrap_or_else(|e| fail(format!("cannot bind {addr}: {e}")));
    let local = listener.local_addr().unwrap_or_else(|e| fail(e));
    println!("vctts-server {role} listening on http://{local}");
    let _ = std::io::stdout().flush();
    listener
}

/// Resolves on Ctrl-C or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = term => {}
    }
}

fn main() {
    set_up_allocator();
    let cli = Cli::parse();
    if let Err(e) = vctts_server::supervisor::follow_supervisor() {
        fail(e);
    }
    let env = Env::from_process();
    let result = match cli.role {
        Role::CheckConfig { file } => check_config(&file, &env),
        Role::Gateway(args) => {
            let cfg = gateway_config(&args.common, &args.data, &env);
            init_server_logging(&args.common.log_level, &cfg.logging);
            runtime(cfg.server.workers).block_on(async move {
                let listener = bind(&cfg.server.host, cfg.server.port, "gateway").await;
                vctts_server::run_gateway(cfg, listener, shutdown_signal()).await
            })
        }
        Role::Worker(args) => {
            let mut cfg = worker_config(&args, &env);
            init_logging(&level_of(&args.common.log_level, &cfg.logging));
            runtime(0).block_on(async move {
                let listener = bind(&cfg.worker.host, cfg.port(), "worker").await;
                if args.common.port.is_some() && args.advertise_url.is_none() {
                    // The file's advertise_url names the port in the file;
                    // this worker listens elsewhere.
                    if let (Some(url), Ok(bound)) = (&cfg.worker.advertise_url, listener.local_addr()) {
                        cfg.worker.advertise_url = Some(
                            vctts_server::worker::with_port(url, bound.port()).unwrap_or_else(|e| fail(e)),
                        );
                    }
                }
                vctts_server::worker::run(cfg, listener, shutdown_signal()).await
            })
        }
        Role::Standalone(args) => {
            let cfg = gateway_config(&args.common, &args.data, &env);
            init_server_logging(&args.common.log_level, &cfg.logging);
            let workers = cfg.server.workers;
            let opts = StandaloneOptions {
                gateway: cfg,
                models: args.models,
                ..StandaloneOptions::default()
            };
            runtime(workers).block_on(async move {
                let listener = bind(&opts.gateway.server.host, opts.gateway.server.port, "standalone").await;
                vctts_server::standalone::run(opts, listener, shutdown_signal()).await
            })
        }
    };
    if let Err(e) = result {
        fail(e);
    }
    vctts_server::logs::flush();
}
