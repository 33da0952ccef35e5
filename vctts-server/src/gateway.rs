//! The gateway role: the registry of nodes, routing, limits, the voice store,
//! and the public API on top.
//!
//! A [`Gateway`] is built from a [`GatewayConfig`] and an injected clock
//! ([`Gateway::new`]); [`crate::app::run`] serves it on an injected listener until an
//! injected shutdown future resolves. Nodes join through the cluster
//! protocol ([`crate::cluster::gateway_api`]) or are added in-process
//! ([`Gateway::add_local_node`], used by standalone mode and by gateways with
//! `engines:` configured).
//!
//! Invariants:
//! - every registered node has a link (how to reach it) and the registry
//!   entry (its state); links are removed when the registry forgets a node;
//! - node ids are derived from the endpoint, so a worker that registers again
//!   (after a gateway restart) keeps its id;
//! - background work (sweeping dead nodes, limiter housekeeping, heartbeats
//!   of in-process nodes) stops when the shutdown future resolves.

use crate::cluster::NodeApi;
use crate::cluster::auth::ClusterToken;
use crate::cluster::client::{NodeTimeouts, RemoteNode};
use crate::cluster::proto::{WireNodeMetrics, WireNodeState};
use crate::config::{GatewayConfig, LimiterBackend, PolicyName, StorageBackend};
use crate::metrics::{Metrics, ScrapeState};
use crate::wire::{NodeDto, NodeMetricsDto, NodesResponse};
use crate::worker::node::WorkerNode;
use parking_lot::RwLock;
use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::watch;
use vctts::store::{SharedVoiceStore, SqliteVoiceStore};
use vctts::voices::Profiles;
use vctts_core::balance::{BalancePolicy, PolicyKind};
use vctts_core::clock::SharedClock;
use vctts_core::limit::{Limiter, LimiterConfig};
use vctts_core::registry::{
    NodeId, NodeInfo, NodeMetrics, NodeState, Registry, RegistryConfig, RegistryEvent,
};
use vctts_core::{EngineInfo, EngineKind, Error, Result};

/// The engine requests go to when nothing else says: the one a fresh
/// install has (`scripts/setup.sh` fetches its voice).
pub const FALLBACK_ENGINE: EngineKind = EngineKind::OpenVoice;

/// How the gateway reaches one node.
#[derive(Clone)]
pub struct NodeLink {
    /// The transport.
    pub api: Arc<dyn NodeApi>,
    /// The engine facts it last reported.
    pub info: Option<EngineInfo>,
    /// Why it is in `error`, as it last reported.
    pub reason: Option<String>,
    /// The in-process node, for local links.
    pub local: Option<Arc<WorkerNode>>,
}

/// The running gateway. Shared behind an `Arc` by every handler.
pub struct Gateway {
    config: GatewayConfig,
    registry: Arc<Registry>,
    policy: RwLock<Arc<dyn BalancePolicy>>,
    limiter: Arc<Limiter>,
    store: SharedVoiceStore,
    metrics: Arc<Metrics>,
    token: ClusterToken,
    http: reqwest::Client,
    timeouts: NodeTimeouts,
    links: RwLock<HashMap<NodeId, NodeLink>>,
    started: Instant,
    /// Requests waiting in the routing queue for a full node's slot.
    route_waiting: std::sync::atomic::AtomicUsize,
    /// Nodes that stalled on a request (avoided until they show progress).
    suspects: Arc<crate::suspects::Suspects>,
    /// Profiles of stored voices: made once per engine, stored, cached.
    profiles: Profiles,
    shutdown: watch::Sender<bool>,
    /// Operator state: auth, live settings, announcements, logs, supervisor.
    ops: crate::ops::Ops,
    /// Rate budgets shared with other gateways in Redis (`limiter.backend:
    /// redis`); `None` counts in `limiter` alone.
    shared_limiter: Option<Arc<crate::shared::SharedLimiter>>,
    /// Admin sessions shared with other gateways in PostgreSQL (with
    /// `storage.backend: postgres`).
    shared_sessions: Option<Arc<crate::shared::PgSessions>>,
    /// Live settings shared with other gateways in PostgreSQL (with
    /// `storage.backend: postgres`).
    shared_settings: Option<Arc<crate::shared::PgSettings>>,
    /// Operator announcements shared with other gateways in PostgreSQL
    /// (with `storage.backend: postgres`).
    shared_announcements: Option<Arc<crate::shared::PgAnnouncements>>,
}

impl std::fmt::Debug for Gateway {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gateway")
            .field("nodes", &self.registry.len())
            .field("store", &self.store)
            .finish_non_exhaustive()
    }
}

/// The policy of a configured name.
pub fn policy_kind(name: PolicyName) -> PolicyKind {
    match name {
        PolicyName::RoundRobin => PolicyKind::RoundRobin,
        PolicyName::WeightedRoundRobin => PolicyKind::WeightedRoundRobin,
        PolicyName::LeastInflight => PolicyKind::LeastInFlight,
        PolicyName::P2c => PolicyKind::PowerOfTwo,
        PolicyName::VoiceAffinity => PolicyKind::VoiceAffinity,
    }
}

/// The core limiter settings of a gateway config.
pub fn limiter_config(cfg: &GatewayConfig) -> LimiterConfig {
    let l = &cfg.limiter;
    LimiterConfig {
        enabled: l.enabled,
        global_rpm: l.global_rpm,
        global_burst: l.global_burst,
        ip_rpm: l.ip_rpm,
        ip_burst: l.ip_burst,
        endpoint_rpm: l.endpoints.clone(),
        node_rpm: l.node_rpm,
        concurrent_limit: l.concurrent_limit as u32,
        queue_size: l.queue_size as u32,
        queue_timeout: l.queue_timeout.0,
        ..LimiterConfig::default()
    }
}

/// Opens the configured voice store: SQLite under `storage.data_dir`, or
/// PostgreSQL at `storage.url` (shared by several gateways; its pool is
/// returned for the other shared state).
pub fn open_store(config: &GatewayConfig) -> Result<(SharedVoiceStore, Option<Arc<crate::shared::PgPool>>)> {
    match config.storage.backend {
        StorageBackend::Sqlite => {
            let store = SqliteVoiceStore::open_shared(&config.storage.data_dir).map_err(|e| {
                let db = config.storage.data_dir.join("voices.db");
                if db.exists() {
                    Error::Config(format!(
                        "{}: the voice database cannot be opened ({e}); restore it from a backup, or move it \
                         aside to start with no stored voices",
                        db.display()
                    ))
                } else {
                    e
                }
            })?;
            Ok((store, None))
        }
        StorageBackend::Postgres => {
            let url = config.storage.url.as_deref().unwrap_or_default();
            let opts = crate::shared::PgOptions {
                max_connections: config.storage.max_connections,
                ..Default::default()
            };
            let pg = Arc::new(crate::shared::PgPool::open(url, &opts)?);
            Ok((
                Arc::new(crate::shared::PgVoiceStore::with_pool(pg.clone())),
                Some(pg),
            ))
        }
    }
}

/// The Redis limiter of `limiter.backend: redis`, deciding with `local`
/// while Redis is unreachable.
fn shared_limiter(
    config: &GatewayConfig,
    local: &Arc<Limiter>,
) -> Result<Option<Arc<crate::shared::SharedLimiter>>> {
    if config.limiter.backend != LimiterBackend::Redis {
        return Ok(None);
    }
    let url = config.limiter.redis_url.as_deref().unwrap_or_default();
    let opts = crate::shared::SharedLimiterOptions {
        timeout: config.limiter.redis_timeout.0,
        ..Default::default()
    };
    let shared = crate::shared::SharedLimiter::new(url, local.clone(), opts)?;
    tracing::info!(redis = %shared.redis_addr(), "rate limits are shared through Redis");
    Ok(Some(Arc::new(shared)))
}

/// Maps the protocol's state to the registry's.
pub fn node_state(s: WireNodeState) -> NodeState {
    match s {
        WireNodeState::Standby => NodeState::Standby,
        WireNodeState::Loading => NodeState::Loading,
        WireNodeState::Ready => NodeState::Ready,
        WireNodeState::Busy => NodeState::Busy,
        WireNodeState::Error => NodeState::Error,
        WireNodeState::Stopped => NodeState::Stopped,
    }
}

/// Maps the protocol's metrics to the registry's.
pub fn node_metrics(m: &WireNodeMetrics) -> NodeMetrics {
    NodeMetrics {
        cpu_percent: m.cpu_percent.unwrap_or(0.0),
        memory_bytes: m.memory_bytes.unwrap_or(0),
        gpu_percent: m.gpu_percent,
        gpu_memory_bytes: m.gpu_memory_bytes,
        in_flight: m.in_flight,
        queue: m.queued,
        requests_total: m.requests,
        errors_total: m.errors,
        latency_ewma_ms: m.latency_ewma_ms.unwrap_or(0.0),
        ttfa_ms: m.first_audio_ewma_ms,
    }
}

/// A node id derived from its endpoint (stable across re-registrations).
pub fn node_id_for(engine: EngineKind, endpoint: &str) -> NodeId {
    // FNV-1a, 64 bit: stable across processes and versions.
    let h = vctts_core::hash::fnv1a64(endpoint.as_bytes());
    NodeId::new(format!("{}-{:08x}", engine.as_str(), (h >> 32) as u32 ^ h as u32))
}

/// Every node as the API reports it.
pub fn nodes_response(gw: &Gateway) -> NodesResponse {
    let nodes = gw
        .registry()
        .snapshot()
        .into_iter()
        .map(|s| {
            let m = &s.metrics;
            NodeDto {
                id: s.info.id.to_string(),
                engine: s.info.engine.to_string(),
                endpoint: s.info.endpoint.clone(),
                state: s.state.to_string(),
                capacity: s.info.capacity,
                weight: s.info.weight,
                labels: s.info.labels.clone(),
                version: s.info.version.clone(),
                last_seen_seconds: s.since_heartbeat.as_secs_f64(),
                breaker: s.breaker.as_str().to_string(),
                metrics: NodeMetricsDto {
                    cpu_percent: Some(m.cpu_percent),
                    memory_bytes: Some(m.memory_bytes),
                    gpu_percent: m.gpu_percent,
                    gpu_memory_bytes: m.gpu_memory_bytes,
                    in_flight: s.in_flight,
                    queued: m.queue,
                    requests: s.requests_total,
                    errors: s.failures_total,
                    latency_ms: (s.latency_ewma_ms > 0.0).then_some(s.latency_ewma_ms),
                },
            }
        })
        .collect();
    NodesResponse { nodes }
}

impl Gateway {
    /// Builds a gateway: opens the voice store, creates the registry, policy
    /// and limiter. Serve it with [`crate::app::run`].
    ///
    /// Without a configured `cluster.token` the gateway uses the token stored
    /// in [`GatewayConfig::cluster_token_path`], generating it (mode 0600) on
    /// first start, and logs where it is: the control plane is never anonymous.
    pub fn new(config: GatewayConfig, clock: SharedClock) -> Result<Arc<Self>> {
        Self::build(config, clock, false)
    }

    /// A gateway for standalone mode: its nodes are in-process, so without a
    /// configured `cluster.token` it serves no `/cluster/v1` control plane at
    /// all (every path under it answers `404`).
    pub fn new_standalone(config: GatewayConfig, clock: SharedClock) -> Result<Arc<Self>> {
        Self::build(config, clock, true)
    }

    fn build(mut config: GatewayConfig, clock: SharedClock, standalone: bool) -> Result<Arc<Self>> {
        config.validate()?;
        if config.cluster.token.is_none() && !standalone {
            let path = config.cluster_token_path();
            let (token, created) = crate::cluster::auth::load_or_create(&path)?;
            tracing::warn!(
                path = %path.display(),
                created,
                "no cluster.token configured: the cluster control plane uses the token stored in this file \
                 (give it to workers through cluster.token_file or VCTTS_CLUSTER__TOKEN)"
            );
            // Supervised local workers get it through their environment.
            for lw in &mut config.local_workers {
                lw.env
                    .entry("VCTTS_CLUSTER__TOKEN".into())
                    .or_insert_with(|| token.clone());
            }
            config.cluster.token = Some(token);
        }
        let registry_config = RegistryConfig {
            heartbeat_interval: config.registry.heartbeat_interval.0,
            dead_threshold: config.registry.dead_threshold.0,
            retention: config.registry.retention.0,
            breaker: config.registry.breaker.clone(),
            ..RegistryConfig::default()
        };
        registry_config.validate()?;
        let limiter_cfg = limiter_config(&config);
        limiter_cfg.validate()?;
        let (store, shared_pg) = open_store(&config)?;
        let shared_sessions = shared_pg
            .as_ref()
            .map(|pg| Arc::new(crate::shared::PgSessions::new(pg.clone())));
        let shared_announcements = shared_pg
            .as_ref()
            .map(|pg| Arc::new(crate::shared::PgAnnouncements::new(pg.clone())));
        let shared_settings = shared_pg.map(|pg| Arc::new(crate::shared::PgSettings::new(pg)));
        let timeouts = NodeTimeouts {
            first_byte: config.cluster.first_byte_timeout.0,
            request: config.cluster.request_timeout.0,
            max_output: config.limits.max_output_duration.0,
        };
        let http = reqwest::Client::builder()
            .connect_timeout(config.cluster.connect_timeout.0)
            .pool_idle_timeout(Duration::from_secs(60))
            .tcp_nodelay(true)
            .build()
            .map_err(|e| Error::Internal(format!("building the HTTP client: {e}")))?;
        let (shutdown, _) = watch::channel(false);
        let limiter = Arc::new(Limiter::with_clock(limiter_cfg, clock.clone()));
        let shared_limiter = shared_limiter(&config, &limiter)?;
        let gw = Arc::new(Self {
            token: ClusterToken::new(config.cluster.token.clone()),
            policy: RwLock::new(policy_kind(config.registry.policy).build()),
            ops: crate::ops::Ops::new(&config, clock.clone())?,
            registry: Arc::new(Registry::new(registry_config, clock.clone())),
            limiter,
            shared_limiter,
            shared_sessions,
            shared_settings,
            shared_announcements,
            profiles: Profiles::new(store.clone()),
            store,
            metrics: Arc::new(Metrics::new()),
            http,
            timeouts,
            links: RwLock::new(HashMap::new()),
            started: Instant::now(),
            route_waiting: std::sync::atomic::AtomicUsize::new(0),
            suspects: Arc::new(crate::suspects::Suspects::default()),
            shutdown,
            config,
        });
        Ok(gw)
    }

    /// The configuration in force.
    pub fn config(&self) -> &GatewayConfig {
        &self.config
    }

    /// Whether the HTTP control plane (`/cluster/v1`) is served: always but
    /// on a standalone server without a configured token.
    pub fn control_plane(&self) -> bool {
        self.token.value().is_some()
    }

    /// The registry.
    pub fn registry(&self) -> &Arc<Registry> {
        &self.registry
    }

    /// The balancing policy in force (changed by live settings).
    pub fn policy(&self) -> Arc<dyn BalancePolicy> {
        self.policy.read().clone()
    }

    /// Replaces the balancing policy.
    pub fn set_policy(&self, policy: Arc<dyn BalancePolicy>) {
        *self.policy.write() = policy;
    }

    /// The operator state (auth, settings, announcements, logs, supervisor).
    pub fn ops(&self) -> &crate::ops::Ops {
        &self.ops
    }

    /// The Redis limiter, when rate budgets are shared with other gateways.
    pub fn shared_limiter(&self) -> Option<&Arc<crate::shared::SharedLimiter>> {
        self.shared_limiter.as_ref()
    }

    /// The shared admin sessions, when voices are in PostgreSQL.
    pub fn shared_sessions(&self) -> Option<&Arc<crate::shared::PgSessions>> {
        self.shared_sessions.as_ref()
    }

    /// The shared live settings, when voices are in PostgreSQL.
    pub fn shared_settings(&self) -> Option<&Arc<crate::shared::PgSettings>> {
        self.shared_settings.as_ref()
    }

    /// The shared operator announcements, when voices are in PostgreSQL.
    pub fn shared_announcements(&self) -> Option<&Arc<crate::shared::PgAnnouncements>> {
        self.shared_announcements.as_ref()
    }

    /// The voice store.
    /// The local rate limiter (the Redis one decides first when set).
    pub(crate) fn limiter(&self) -> &Arc<Limiter> {
        &self.limiter
    }

    /// The cluster token nodes present.
    pub(crate) fn token(&self) -> &ClusterToken {
        &self.token
    }

    /// How long the gateway waits on a node.
    pub(crate) fn timeouts(&self) -> &NodeTimeouts {
        &self.timeouts
    }

    /// When the gateway started.
    pub(crate) fn started(&self) -> Instant {
        self.started
    }

    /// Requests waiting in the routing queue for a full node's slot.
    pub(crate) fn route_waiting(&self) -> &std::sync::atomic::AtomicUsize {
        &self.route_waiting
    }

    /// Nodes that stalled on a request.
    pub(crate) fn suspects(&self) -> &Arc<crate::suspects::Suspects> {
        &self.suspects
    }

    pub fn store(&self) -> &SharedVoiceStore {
        &self.store
    }

    /// Profiles of stored voices.
    pub fn profiles(&self) -> &Profiles {
        &self.profiles
    }

    /// The metrics.
    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    /// The link of a node.
    pub fn link(&self, id: &NodeId) -> Option<NodeLink> {
        self.links.read().get(id).cloned()
    }

    /// Registers (or re-registers) a remote node and its link.
    pub fn register_remote(
        &self,
        info: NodeInfo,
        state: NodeState,
        engine_info: Option<EngineInfo>,
        reason: Option<String>,
    ) -> Result<NodeId> {
        let api: Arc<dyn NodeApi> = Arc::new(RemoteNode::new(
            info.id.as_str(),
            info.endpoint.clone(),
            self.http.clone(),
            self.token.value().map(str::to_string),
            self.timeouts,
        ));
        let id = info.id.clone();
        self.links.write().insert(
            id.clone(),
            NodeLink {
                api,
                info: engine_info,
                reason,
                local: None,
            },
        );
        self.registry.try_register(info, state).inspect_err(|_| {
            // A refused registration leaves no link behind.
            if self.registry.node(&id).is_none() {
                self.links.write().remove(&id);
            }
        })
    }

    /// Records engine facts and the error reason a node reported.
    pub fn update_link(&self, id: &NodeId, engine_info: Option<EngineInfo>, reason: Option<String>) {
        if let Some(l) = self.links.write().get_mut(id) {
            if engine_info.is_some() {
                l.info = engine_info;
            }
            l.reason = reason;
        }
    }

    /// Removes a node's link (the registry entry is removed by the caller).
    pub fn remove_link(&self, id: &NodeId) {
        self.links.write().remove(id);
    }

    /// Adds an in-process node and keeps its registry entry fresh.
    pub fn add_local_node(self: &Arc<Self>, node: Arc<WorkerNode>) -> NodeId {
        let endpoint = format!("inproc://{}", node.kind());
        let id = NodeId::new(format!("{}-local", node.kind()));
        let status = node.status();
        let mut info = NodeInfo::new(id.clone(), node.kind(), endpoint);
        info.capacity = node.capacity();
        info.version = env!("CARGO_PKG_VERSION").to_string();
        let api: Arc<dyn NodeApi> = Arc::new(node.clone());
        self.links.write().insert(
            id.clone(),
            NodeLink {
                api,
                info: status.info.clone(),
                reason: status.reason.clone(),
                local: Some(node.clone()),
            },
        );
        self.registry.register(info.clone(), node_state(status.state));
        let gw = self.clone();
        let mut stop = self.shutdown.subscribe();
        let hb_id = id.clone();
        tokio::spawn(async move {
            loop {
                let status = node.status();
                gw.update_link(&hb_id, status.info.clone(), status.reason.clone());
                let state = node_state(status.state);
                let metrics = node_metrics(&status.metrics);
                gw.suspects.heartbeat(&hb_id, &metrics);
                if let Err(Error::UnknownNode(_)) =
                    gw.registry.report(&hb_id, state, status.seq, Some(metrics))
                {
                    gw.registry.register(info.clone(), state);
                }
                tokio::select! {
                    _ = tokio::time::sleep(gw.config.registry.heartbeat_interval.0) => {}
                    _ = node.changed() => {}
                    _ = stop.changed() => break,
                }
            }
        });
        id
    }

    /// The facts of an engine, from its nodes (a ready node's first).
    pub fn engine_info(&self, engine: EngineKind) -> Option<EngineInfo> {
        let links = self.links.read();
        let mut fallback = None;
        for snap in self.registry.snapshot() {
            if snap.info.engine != engine {
                continue;
            }
            if let Some(info) = links.get(&snap.info.id).and_then(|l| l.info.clone()) {
                if snap.state == NodeState::Ready {
                    return Some(info);
                }
                fallback.get_or_insert(info);
            }
        }
        fallback
    }

    /// The engine of requests that name none: the default in the live
    /// settings, else
    /// the first engine with a serving node (ready or busy: a full node
    /// still counts), else the first with any node,
    /// else [`FALLBACK_ENGINE`] (so a "no node" answer still names an engine).
    pub fn default_engine(&self) -> Result<EngineKind> {
        if let Some(e) = self.ops.settings.get().default_engine {
            return Ok(e);
        }
        if let Some(e) = EngineKind::ALL
            .into_iter()
            .find(|e| self.registry.serving(*e) > 0)
        {
            return Ok(e);
        }
        let snap = self.registry.snapshot();
        Ok(EngineKind::ALL
            .into_iter()
            .find(|e| snap.iter().any(|s| s.info.engine == *e))
            .unwrap_or(FALLBACK_ENGINE))
    }

    /// State for scrape-time gauges.
    pub fn scrape_state(&self) -> ScrapeState {
        let mut st = ScrapeState::default();
        for s in self.registry.snapshot() {
            *st.nodes
                .entry((s.info.engine.to_string(), s.state.to_string()))
                .or_default() += 1;
            st.node_in_flight.insert(s.info.id.to_string(), s.in_flight);
            st.node_gauges.push(crate::metrics::NodeGauges {
                node: s.info.id.to_string(),
                engine: s.info.engine.to_string(),
                cpu_percent: s.metrics.cpu_percent,
                memory_bytes: s.metrics.memory_bytes,
                gpu_percent: s.metrics.gpu_percent,
                gpu_memory_bytes: s.metrics.gpu_memory_bytes,
                queue: s.metrics.queue,
                breaker: serde_json::to_value(s.breaker)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_string))
                    .unwrap_or_default(),
            });
        }
        st.in_flight = self.limiter.in_flight();
        st.queued = self.limiter.queued();
        st.route_queued = self
            .route_waiting
            .load(std::sync::atomic::Ordering::Acquire)
            .min(u32::MAX as usize) as u32;
        st.allocator = crate::allocator::read();
        st
    }

    /// A future that resolves when the gateway shuts down.
    pub fn stopped(&self) -> impl Future<Output = ()> + Send + 'static {
        let mut rx = self.shutdown.subscribe();
        async move {
            while !*rx.borrow() {
                if rx.changed().await.is_err() {
                    break;
                }
            }
        }
    }

    /// Starts the background tasks: sweeping, link clean-up, housekeeping.
    pub(crate) fn spawn_background(self: &Arc<Self>) {
        let hb = self.config.registry.heartbeat_interval.0;
        let dead = self.config.registry.dead_threshold.0;
        let period = (dead / 10)
            .clamp(Duration::from_millis(10), Duration::from_secs(1))
            .min(hb);
        let gw = self.clone();
        let mut stop = self.shutdown.subscribe();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(period);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let mut housekeep = Instant::now();
            loop {
                tokio::select! {
                    _ = tick.tick() => {
                        gw.registry.sweep();
                        if housekeep.elapsed() >= Duration::from_secs(60) {
                            gw.limiter.housekeep();
                            housekeep = Instant::now();
                            // The periodic performance record of the `metrics` log.
                            let summary = gw.metrics.summary(&gw.scrape_state());
                            tracing::info!(
                                target: "metrics",
                                requests_total = summary["requests_total"].as_u64().unwrap_or(0),
                                in_flight = summary["in_flight"].as_u64().unwrap_or(0),
                                queued = summary["queued"].as_u64().unwrap_or(0),
                                avg_latency_ms = summary["avg_latency_ms"].as_f64().unwrap_or(0.0),
                                nodes = gw.registry.len(),
                                extra = %summary["nodes"],
                                "gateway performance"
                            );
                        }
                    }
                    _ = stop.changed() => break,
                }
            }
        });
        let gw = self.clone();
        let mut events = self.registry.subscribe();
        let mut stop = self.shutdown.subscribe();
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    ev = events.recv() => match ev {
                        Ok(RegistryEvent::Left(id)) => {
                            if gw.registry.node(&id).is_none() {
                                gw.remove_link(&id);
                                gw.suspects.forget(&id);
                            }
                        }
                        Ok(_) => {}
                        Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {
                            let known: std::collections::HashSet<NodeId> =
                                gw.registry.snapshot().into_iter().map(|s| s.info.id).collect();
                            gw.links.write().retain(|id, _| known.contains(id));
                        }
                        Err(_) => break,
                    },
                    _ = stop.changed() => break,
                }
            }
        });
    }

    pub(crate) fn signal_shutdown(&self) {
        let _ = self.shutdown.send(true);
    }
}
