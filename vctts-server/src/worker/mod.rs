//! The worker role: hosts one engine, serves the node side of the cluster
//! protocol, and keeps its membership with one or more gateways.
//!
//! - [`admission`]: concurrency slots and the bounded queue;
//! - [`node`]: the hosted engine as a node ([`WorkerNode`]), shared with the
//!   in-process nodes of gateways and standalone mode;
//! - [`build_node`]: builds a node from model and resource settings (an
//!   engine that is not installed or fails to build gives a node in `error`);
//! - [`run`]: serves a worker on an injected listener until an injected
//!   shutdown future resolves.
//!
//! A worker does not start without a cluster token (`cluster.token`,
//! `VCTTS_CLUSTER__TOKEN` or `cluster.token_file`).
//!
//! Shutdown (SIGTERM in the binary): the node stops taking work (new calls
//! are refused as retryable, so gateways fail over), the agent deregisters
//! from every gateway, in-flight work finishes (at most
//! `cluster.drain_timeout`), then `run` returns.

pub mod admission;
pub mod node;

pub use node::{NodeOptions, WorkerNode};

use crate::cluster::agent::{self, AgentConfig};
use crate::cluster::auth::ClusterToken;
use crate::cluster::worker_api;
use crate::config::{ModelSection, ResourcesSection, WorkerConfig};
use crate::metrics::Metrics;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use vctts_core::{EngineKind, Error, Result};
use vctts_engines::catalog::{self, DecoderWindows, EngineOptions};

/// The models root for `kind` given a configured path: the path itself when
/// it holds the engine's folder, or its parent when the path *is* the
/// engine's folder (`./models/xtts_v2`).
pub fn models_root(kind: EngineKind, path: &Path) -> PathBuf {
    let inside = catalog::model_dir(kind, path);
    if inside.is_dir() {
        return path.to_path_buf();
    }
    if let (Some(parent), Some(name)) = (path.parent(), path.file_name()) {
        if catalog::model_dir(kind, parent).file_name() == Some(name) {
            return parent.to_path_buf();
        }
    }
    path.to_path_buf()
}

/// The engine options of a node's settings.
pub fn engine_options(model: &ModelSection, resources: &ResourcesSection) -> Result<EngineOptions> {
    let mut opts = EngineOptions::default();
    if model.threads > 0 {
        opts.threads = model.threads;
    }
    if resources.max_concurrent > 0 {
        opts.max_concurrency = resources.max_concurrent;
    }
    opts.queue_size = resources.queue_size;
    opts.device = model.device.parse()?;
    opts.runtime.library_path = model.runtime.clone();
    // A server's memory must hold under any mix of load: fixed windows per
    // run (a shared budget, whose windows change size with the load, left
    // the allocator holding blocks of every size: a 45 MB higher peak on a
    // server alternating between one request and eight). 192 frames: since
    // the sessions run without ONNX Runtime's memory pattern
    // (`SessionConfig::memory_pattern`) 256 gave a one-lane worker 210 MB
    // at less CPU per audio-second than 128 (each window carrying relatively
    // less context); with the 2-D decoder and runs decoding in parts at
    // once, a two-lane standalone peaked at 310 MB with 224 in
    // `scripts/bench.sh`, and 25 MB lower at 192 than at 256 in paired runs
    // with the same throughput (docs/PERFORMANCE.md, notes part 9).
    opts.decoder_windows = DecoderWindows::PerRun(192);
    Ok(opts)
}

/// The options the engine itself is built with: the node's admission bounds
/// the work (`max_concurrency` running, `queue_size` waiting), so the
/// engine's own queue must never refuse a request the node admitted. With
/// room for only `queue_size`, a request admitted in the instant a lane was
/// handing back its last answer found no lane receiving yet and was refused
/// (with `queue_size: 0`, a client's next request right after an answer got
/// 503 now and then); the engine gets room for every slot on top.
fn engine_queue_room(opts: &EngineOptions) -> EngineOptions {
    EngineOptions {
        queue_size: opts.queue_size + opts.max_concurrency.max(1),
        ..opts.clone()
    }
}

/// Builds a node for `kind`. An engine that cannot be built (not installed,
/// no ONNX Runtime) gives a node in `error` with the reason; the caller
/// decides whether to load it (`auto_load`).
pub fn build_node(
    kind: EngineKind,
    model: &ModelSection,
    resources: &ResourcesSection,
) -> Result<Arc<WorkerNode>> {
    let opts = engine_options(model, resources)?;
    let root = models_root(kind, &model.path);
    let engine = catalog::build(kind, &root, &engine_queue_room(&opts)).map_err(|e| {
        tracing::warn!(engine = %kind, error = %e, "engine not available");
        e.to_string()
    });
    Ok(WorkerNode::new(
        kind,
        engine,
        &NodeOptions {
            max_concurrency: opts.max_concurrency,
            queue_size: opts.queue_size,
            gpu: match opts.device {
                vctts_engines::runtime::Device::Cuda { device_id } => u32::try_from(device_id).ok(),
                _ => None,
            },
        },
    ))
}

/// Loads a node's model in the background.
pub fn spawn_activation(node: Arc<WorkerNode>) {
    tokio::spawn(async move {
        if let Err(e) = node.activate().await {
            tracing::error!(engine = %node.kind(), error = %e, "auto-load failed; the node stays in error");
        }
    });
}

/// The URL gateways reach this worker at.
pub fn advertise_url(cfg: &WorkerConfig, bound: SocketAddr) -> Result<String> {
    if let Some(u) = &cfg.worker.advertise_url {
        return Ok(u.trim_end_matches('/').to_string());
    }
    let ip = bound.ip();
    let ip = if ip.is_unspecified() {
        local_ip_towards(&cfg.gateway.urls()).ok_or_else(|| {
            Error::Config(format!(
                "worker.host is {ip}; set worker.advertise_url to the address gateways reach this worker at"
            ))
        })?
    } else {
        ip
    };
    Ok(match ip {
        IpAddr::V4(v4) => format!("http://{v4}:{}", bound.port()),
        IpAddr::V6(v6) => format!("http://[{v6}]:{}", bound.port()),
    })
}

/// `url` (`scheme://host[:port][/path]`) with its port replaced by `port`:
/// the advertised URL of a worker whose `--port` overrides its config file.
pub fn with_port(url: &str, port: u16) -> Result<String> {
    let bad = || Error::Config(format!("worker.advertise_url {url:?} is not an http(s) URL"));
    let (scheme, rest) = url.split_once("://").ok_or_else(bad)?;
    let (authority, path) = match rest.find('/') {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    let host = if let Some(end) = authority.find(']') {
        // [v6]:port
        &authority[..=end]
    } else {
        authority.split(':').next().unwrap_or("")
    };
    if host.is_empty() || !(scheme == "http" || scheme == "https") {
        return Err(bad());
    }
    Ok(format!("{scheme}://{host}:{port}{}", path.trim_end_matches('/')))
}

/// The local address the OS would use to reach the first gateway (no packet
/// is sent: connecting a UDP socket only picks a route).
fn local_ip_towards(urls: &[String]) -> Option<IpAddr> {
    let url = urls.first()?;
    let rest = url.split("://").nth(1)?;
    let hostport = rest.split('/').next()?;
    let with_port = if hostport.contains(':') && !hostport.ends_with(']') {
        hostport.to_string()
    } else {
        format!("{hostport}:80")
    };
    use std::net::ToSocketAddrs;
    let target = with_port.to_socket_addrs().ok()?.next()?;
    let bind = if target.is_ipv4() { "0.0.0.0:0" } else { "[::]:0" };
    let sock = std::net::UdpSocket::bind(bind).ok()?;
    sock.connect(target).ok()?;
    Some(sock.local_addr().ok()?.ip())
}

/// Serves a worker on `listener` until `shutdown` resolves.
pub async fn run(
    config: WorkerConfig,
    listener: tokio::net::TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<()> {
    config.validate()?;
    // Never an anonymous control plane: no token, no worker.
    let token = ClusterToken::new(Some(config.cluster_token()?));
    let kind = config.worker.kind;
    let node = build_node(kind, &config.model, &config.resources)?;
    if config.model.auto_load {
        spawn_activation(node.clone());
    } else {
        tracing::info!(engine = %kind, "model.auto_load is false: the node stays in standby until activated");
    }
    let bound = listener
        .local_addr()
        .map_err(|e| Error::io("reading the bound address", e))?;
    let endpoint = advertise_url(&config, bound)?;
    let metrics = Arc::new(Metrics::new());
    let (stop_tx, stop_rx) = watch::channel(false);
    let agent_cfg = AgentConfig {
        gateways: config.gateway.urls(),
        endpoint: endpoint.clone(),
        token: token.clone(),
        weight: config.worker.weight,
        labels: config.worker.labels.clone(),
        default_interval: config.cluster.heartbeat_interval.0,
        request_timeout: config.cluster.request_timeout.0,
    };
    tracing::info!(engine = %kind, endpoint = %endpoint, gateways = ?agent_cfg.gateways, "worker starting");
    let agent = tokio::spawn(agent::run(node.clone(), agent_cfg, stop_rx));
    let app = worker_api::router(node.clone(), token, metrics);

    let (drain_tx, mut drain_rx) = watch::channel(false);
    let drain_node = node.clone();
    let graceful = async move {
        shutdown.await;
        tracing::info!(engine = %kind, in_flight = drain_node.busy_requests(),
            "worker shutting down: no new work, deregistering, finishing in-flight work");
        drain_node.drain();
        let _ = stop_tx.send(true);
        let _ = drain_tx.send(true);
    };
    let serve = crate::serve::serve(listener, app, crate::serve::ConnectionLimits::default(), graceful);
    let drain_timeout = config.cluster.drain_timeout.0;
    let deadline = async move {
        while !*drain_rx.borrow() {
            if drain_rx.changed().await.is_err() {
                std::future::pending::<()>().await;
            }
        }
        tokio::time::sleep(drain_timeout).await;
    };
    let result = tokio::select! {
        r = serve => r.map_err(|e| Error::io("serving the worker", e)),
        _ = deadline => {
            tracing::warn!(engine = %kind, in_flight = node.busy_requests(),
                "drain timeout reached; exiting with work in flight");
            Ok(())
        }
    };
    // The agent deregisters once told to stop; give it a moment to finish.
    let _ = tokio::time::timeout(Duration::from_secs(5), agent).await;
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_port_override_replaces_only_the_port() {
        assert_eq!(
            with_port("http://10.0.0.5:8002", 8003).unwrap(),
            "http://10.0.0.5:8003"
        );
        assert_eq!(
            with_port("http://w1.internal", 9000).unwrap(),
            "http://w1.internal:9000"
        );
        assert_eq!(
            with_port("https://[::1]:8002/tts/", 8010).unwrap(),
            "https://[::1]:8010/tts"
        );
        assert!(with_port("w1:8002", 1).is_err());
        assert!(with_port("ftp://w1:8002", 1).is_err());
    }

    #[test]
    fn a_node_decodes_in_fixed_windows_whatever_the_load() {
        use crate::config::{ModelSection, ResourcesSection};
        let opts = engine_options(&ModelSection::default(), &ResourcesSection::default()).unwrap();
        assert_eq!(opts.decoder_windows, DecoderWindows::PerRun(192));
        assert_ne!(EngineOptions::default().decoder_windows, opts.decoder_windows);
    }

    #[test]
    fn the_engine_queue_has_room_for_every_admitted_request() {
        let no_queue = EngineOptions {
            max_concurrency: 1,
            queue_size: 0,
            ..EngineOptions::default()
        };
        // A node with one slot and no queue still hands its engine one job
        // while the lane is between two.
        assert_eq!(engine_queue_room(&no_queue).queue_size, 1);
        let some = EngineOptions {
            max_concurrency: 4,
            queue_size: 32,
            ..EngineOptions::default()
        };
        let built = engine_queue_room(&some);
        assert_eq!(built.queue_size, 36);
        assert_eq!(built.max_concurrency, 4);
    }
}
