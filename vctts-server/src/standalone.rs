//! Standalone mode: a gateway plus in-process nodes for every engine whose
//! models are installed, with default ports and folders and no config file
//! needed. This is what a newcomer runs.
//!
//! Invariants: the in-process nodes need no HTTP control plane, so without a
//! configured `cluster.token` none is served (`/cluster/v1/*` answers 404);
//! engines that are not installed are skipped with a log line
//! saying what is missing (they show as unavailable in `/api/v3/engines`);
//! an engine that is installed but fails to load stays registered in
//! `error`, with the reason, and the rest of the service works.

use crate::config::{GatewayConfig, LocalEngineConfig, ModelSection, ResourcesSection};
use crate::gateway::Gateway;
use crate::worker::{build_node, models_root, spawn_activation};
use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use vctts_core::clock::SystemClock;
use vctts_core::{EngineKind, Result};
use vctts_engines::catalog;

/// Settings of a standalone server on top of an optional gateway config.
#[derive(Debug, Clone)]
pub struct StandaloneOptions {
    /// The gateway part (defaults when no file is given).
    pub gateway: GatewayConfig,
    /// The models folder.
    pub models: PathBuf,
    /// Model settings for the in-process engines (path is replaced by `models`).
    pub model: ModelSection,
    /// Admission settings for the in-process engines.
    pub resources: ResourcesSection,
}

impl Default for StandaloneOptions {
    fn default() -> Self {
        Self {
            gateway: GatewayConfig::default(),
            models: PathBuf::from("models"),
            model: ModelSection::default(),
            resources: ResourcesSection::default(),
        }
    }
}

/// The engines to host: those configured under `engines:`, else every
/// installed one.
pub fn local_engines(opts: &StandaloneOptions) -> Vec<LocalEngineConfig> {
    if !opts.gateway.engines.is_empty() {
        return opts.gateway.engines.clone();
    }
    EngineKind::ALL
        .into_iter()
        .filter_map(|kind| {
            let root = models_root(kind, &opts.models);
            match catalog::installed(kind, &root) {
                Ok(()) => Some(LocalEngineConfig {
                    kind,
                    model: ModelSection {
                        path: opts.models.clone(),
                        ..opts.model.clone()
                    },
                    resources: opts.resources.clone(),
                }),
                Err(why) => {
                    tracing::info!(engine = %kind, reason = %why, "engine not installed; skipping it");
                    None
                }
            }
        })
        .collect()
}

/// Adds in-process nodes for `engines` to a gateway (loading those with
/// `auto_load`).
pub fn add_local_engines(gw: &Arc<Gateway>, engines: &[LocalEngineConfig]) -> Result<()> {
    for e in engines {
        let node = build_node(e.kind, &e.model, &e.resources)?;
        let id = gw.add_local_node(node.clone());
        tracing::info!(engine = %e.kind, node_id = %id, "in-process node added");
        if e.model.auto_load {
            spawn_activation(node);
        }
    }
    Ok(())
}

/// Serves a standalone server on `listener` until `shutdown` resolves.
pub async fn run(
    opts: StandaloneOptions,
    listener: tokio::net::TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<()> {
    let engines = local_engines(&opts);
    if engines.is_empty() {
        tracing::warn!(models = %opts.models.display(),
            "no engine is installed; the API answers no_node_available until one is (run scripts/setup.sh)");
    }
    let gw = Gateway::new_standalone(opts.gateway, Arc::new(SystemClock::new()))?;
    add_local_engines(&gw, &engines)?;
    crate::app::run(gw, listener, shutdown).await
}
