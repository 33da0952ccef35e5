//! vctts-server: the gateway, worker and standalone roles of vctts, as a
//! library the thin `vctts-server` binary calls.
//!
//! The major components are:
//! - [`config`]: the typed configuration of each role, parsed from an
//!   injected source (YAML text plus an environment snapshot);
//! - [`gateway`]: the registry of nodes, routing ([`routing`]), limits and the
//!   voice store (`vctts::store`, shared with the CLI) behind the public API ([`api`], documented by
//!   [`openapi`], with wire types in [`wire`] and errors in [`error`]);
//! - [`synthesis`]: from a validated request to routed audio (engine choice,
//!   voice resolution, streams);
//! - [`worker`]: one hosted engine as a node, its admission and its process;
//! - [`cluster`]: the worker↔gateway protocol, both sides;
//! - [`standalone`]: a gateway with in-process nodes for every installed engine;
//! - [`budget`]: the cost bound of one request (output duration, answer size);
//! - [`serve`]: the accept loop (connection limit, header and body deadlines);
//! - [`metrics`]: Prometheus metrics;
//! - [`shared`]: state several gateways share (voices in PostgreSQL, rate
//!   budgets in Redis).
//!
//! Every role's entry point takes an injected listener and shutdown future:
//! [`gateway::run`], [`worker::run`], [`standalone::run`].
//!
//! Invariants: only this crate knows HTTP and the JSON wire format; inference
//! never runs on the async runtime (engines own their threads); user input
//! never panics a handler — it gets a 4xx with a stable code.
#![forbid(unsafe_code)]

pub mod admin;
pub mod announcements;
pub mod api;
pub mod auth;
pub mod budget;
pub mod cluster;
pub mod config;
pub mod error;
pub mod gateway;
pub mod logs;
pub mod metrics;
pub mod openapi;
pub mod pages;
pub mod routing;
pub mod serve;
pub mod settings;
pub mod shared;
pub mod standalone;
pub mod supervisor;
pub mod synthesis;
pub mod wire;
pub mod worker;

pub use config::{Env, GatewayConfig, WorkerConfig};
pub use gateway::Gateway;
pub use standalone::StandaloneOptions;

use std::future::Future;
use std::sync::Arc;

/// Builds and serves a gateway (with any in-process engines its config lists).
pub async fn run_gateway(
    config: GatewayConfig,
    listener: tokio::net::TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> vctts_core::Result<()> {
    let engines = config.engines.clone();
    let gw = Gateway::new(config, Arc::new(vctts_core::clock::SystemClock::new()))?;
    standalone::add_local_engines(&gw, &engines)?;
    gateway::run(gw, listener, shutdown).await
}
