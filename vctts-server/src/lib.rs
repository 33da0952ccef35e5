//! vctts-server: the gateway, worker and standalone roles of vctts, as a
//! library the thin `vctts-server` binary calls.
//!
//! The modules stand on floors (ARCHITECTURE.md, "Floors"); each imports only
//! its own floor or lower ones, and no import circle exists:
//! - roles: [`standalone`] (a gateway with in-process nodes for every
//!   installed engine) and [`run_gateway`];
//! - the HTTP surface: [`app`] (the one place that assembles the gateway's
//!   router and serves it), the public API ([`api`], documented by
//!   [`openapi`]), the admin API ([`admin`]) and [`pages`];
//! - the service: [`gateway`] (the registry of nodes, links, limits, the voice
//!   store `vctts::store`, shared with the CLI), [`routing`] (node selection
//!   and failover), [`synthesis`] (from a validated request to routed audio),
//!   [`upkeep`] (live settings applied, node trouble announced);
//! - nodes and protocol: [`worker`] (one hosted engine as a node) and
//!   [`cluster`] (the worker↔gateway protocol, both sides);
//! - HTTP plumbing: [`http`] (request context, body extractors);
//! - the base: [`allocator`] (the global allocator's statistics, read
//!   through a probe the binary installs), [`config`], [`error`], [`wire`], [`encoding`], [`budget`] (the
//!   cost bound of one request), [`serve`] (the accept loop), [`metrics`],
//!   [`logs`], [`auth`], [`settings`], [`announcements`], [`ops`] (the
//!   operator state), [`supervisor`], [`shared`] (state several gateways
//!   share: voices in PostgreSQL, rate budgets in Redis).
//!
//! Every role's entry point takes an injected listener and shutdown future:
//! [`app::run`], [`worker::run`], [`standalone::run`].
//!
//! Invariants: only this crate knows HTTP and the JSON wire format; inference
//! never runs on the async runtime (engines own their threads); user input
//! never panics a handler — it gets a 4xx with a stable code.
#![forbid(unsafe_code)]

pub mod admin;
pub mod allocator;
pub mod announcements;
pub mod api;
pub mod app;
pub mod auth;
pub mod budget;
pub mod cluster;
pub mod config;
pub mod encoding;
pub mod error;
pub mod gateway;
pub mod http;
pub mod logs;
pub mod metrics;
pub mod openapi;
pub mod ops;
pub mod pages;
pub mod routing;
pub mod serve;
pub mod settings;
pub mod shared;
pub mod standalone;
pub mod supervisor;
pub mod suspects;
pub mod synthesis;
pub mod upkeep;
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
    app::run(gw, listener, shutdown).await
}
