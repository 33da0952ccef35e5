//! The node registry of the gateway: which workers exist, what state they
//! are in, and which one gets the next request.
//!
//! Workers [`register`](Registry::register), send a
//! [`heartbeat`](Registry::heartbeat) every `heartbeat_interval` with their
//! state and metrics, and [`deregister`](Registry::deregister) on the way
//! out. [`sweep`](Registry::sweep) (called periodically by the gateway) marks
//! nodes without a heartbeat for `dead_threshold` offline, and removes them
//! once they have been offline for `retention`; all of it on the injected
//! clock. [`select`](Registry::select) asks a [`BalancePolicy`] for a node
//! and returns a [`Lease`] on it. Changes are published as
//! [`RegistryEvent`]s to [`subscribe`](Registry::subscribe)rs.
//!
//! Invariants:
//! - nodes are kept per engine in a list sorted by id; a selection reads one
//!   list under a shared lock and allocates nothing in the common case;
//! - a node is *selectable* when its state is `ready`, the gateway has fewer
//!   than `capacity` requests in flight on it, its breaker admits a request,
//!   and the caller did not exclude it. `busy` (the worker says it is full)
//!   is not selectable;
//! - a node is *serving* when its state is `ready` or `busy` and its breaker
//!   is not open: it takes requests now or once a slot frees. Readiness
//!   (health, the choice of an engine) reads serving, never selectable,
//!   which flips with every request on a full node;
//! - one endpoint is one node: a registration from an endpoint that already
//!   has a node replaces it (`Left` for the old id when the id differs, then
//!   `Joined`); a registration with a known id replaces that node too;
//! - every membership change of an engine's list gives it a new generation
//!   number, unique across engines, so policies can cache per generation.

mod lease;
pub(crate) mod node;

pub use crate::balance::SelectContext;
pub use lease::{Lease, Outcome};
pub use node::{MAX_NODE_ID_LEN, NodeId, NodeInfo, NodeMetrics, NodeSnapshot, NodeState};

use crate::balance::{BalancePolicy, Candidates};
use crate::breaker::{BreakerConfig, CircuitBreaker};
use crate::clock::SharedClock;
use crate::engine::EngineKind;
use crate::error::{Error, Result};
use crate::limit::serde_secs;
use node::NodeEntry;
use parking_lot::RwLock;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::sync::broadcast;

/// How many events a slow subscriber may fall behind before it misses some
/// (it then gets `RecvError::Lagged` and should re-read a snapshot).
pub const EVENT_BUFFER: usize = 1024;

/// Picks a policy makes (and the registry re-checks) before giving up.
const SELECT_ATTEMPTS: usize = 4;

/// Registry timing, breaker and latency settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RegistryConfig {
    /// How often workers are asked to heartbeat.
    #[serde(with = "serde_secs")]
    pub heartbeat_interval: Duration,
    /// A node without a heartbeat for this long is offline.
    #[serde(with = "serde_secs")]
    pub dead_threshold: Duration,
    /// An offline node is forgotten after this long.
    #[serde(with = "serde_secs")]
    pub retention: Duration,
    /// Each node's circuit breaker.
    pub breaker: BreakerConfig,
    /// Weight of a new latency sample in the EWMA (0 < α ≤ 1).
    pub ewma_alpha: f64,
}

impl Default for RegistryConfig {
    fn default() -> Self {
        Self {
            heartbeat_interval: Duration::from_secs(10),
            dead_threshold: Duration::from_secs(30),
            retention: Duration::from_secs(300),
            breaker: BreakerConfig::default(),
            ewma_alpha: 0.3,
        }
    }
}

impl RegistryConfig {
    /// Checks the values; the error names the field (`registry.<field>`).
    pub fn validate(&self) -> Result<()> {
        if self.heartbeat_interval.is_zero() {
            return Err(Error::Config(
                "registry.heartbeat_interval must be above 0".into(),
            ));
        }
        if self.dead_threshold <= self.heartbeat_interval {
            return Err(Error::Config(format!(
                "registry.dead_threshold ({:?}) must be longer than registry.heartbeat_interval ({:?})",
                self.dead_threshold, self.heartbeat_interval
            )));
        }
        if !(self.ewma_alpha > 0.0 && self.ewma_alpha <= 1.0) {
            return Err(Error::Config(format!(
                "registry.ewma_alpha must be in (0, 1], got {}",
                self.ewma_alpha
            )));
        }
        self.breaker.validate()
    }
}

/// A change in the registry.
// `Joined` carries a whole snapshot by design (subscribers render it without
// a second lookup); events are rare, so the size does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", content = "data", rename_all = "snake_case")]
pub enum RegistryEvent {
    /// A node registered (or re-registered).
    Joined(NodeSnapshot),
    /// A node deregistered, was replaced, or was forgotten after retention.
    Left(NodeId),
    /// A node's state changed (heartbeat or admin action).
    StateChanged {
        /// The node.
        id: NodeId,
        /// Its previous state.
        from: NodeState,
        /// Its new state.
        to: NodeState,
    },
    /// A node missed its heartbeats for the dead threshold (this replaces
    /// `StateChanged` for that transition).
    Offline(NodeId),
}

#[derive(Debug, Default)]
struct Pool {
    generation: u64,
    nodes: Vec<Arc<NodeEntry>>,
}

#[derive(Debug, Default)]
struct Inner {
    nodes: HashMap<NodeId, Arc<NodeEntry>>,
    endpoints: HashMap<String, NodeId>,
    pools: [Pool; EngineKind::ALL.len()],
}

fn pool_index(kind: EngineKind) -> usize {
    match kind {
        EngineKind::Xtts => 0,
        EngineKind::OpenVoice => 1,
        EngineKind::GptSovits => 2,
    }
}

/// The registry. `Send + Sync`; share it behind an `Arc`.
#[derive(Debug)]
pub struct Registry {
    config: RegistryConfig,
    clock: SharedClock,
    inner: RwLock<Inner>,
    events: broadcast::Sender<RegistryEvent>,
    generations: AtomicU64,
}

impl Registry {
    /// An empty registry. A bad `ewma_alpha` is replaced by the default and
    /// breaker values are normalized; use [`RegistryConfig::validate`] to
    /// reject bad configuration at load time.
    pub fn new(mut config: RegistryConfig, clock: SharedClock) -> Self {
        if !(config.ewma_alpha > 0.0 && config.ewma_alpha <= 1.0) {
            config.ewma_alpha = RegistryConfig::default().ewma_alpha;
        }
        config.breaker = config.breaker.normalized();
        let (events, _) = broadcast::channel(EVENT_BUFFER);
        Self {
            config,
            clock,
            inner: RwLock::new(Inner::default()),
            events,
            generations: AtomicU64::new(0),
        }
    }

    /// The configuration in force.
    pub fn config(&self) -> &RegistryConfig {
        &self.config
    }

    /// Events from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<RegistryEvent> {
        self.events.subscribe()
    }

    fn emit(&self, event: RegistryEvent) {
        // No subscribers is fine.
        let _ = self.events.send(event);
    }

    fn bump(&self, pool: &mut Pool) {
        pool.generation = self.generations.fetch_add(1, Ordering::Relaxed) + 1;
    }

    /// Removes a node from all maps; the caller emits the event.
    fn remove_locked(&self, inner: &mut Inner, id: &NodeId) -> Option<Arc<NodeEntry>> {
        let entry = inner.nodes.remove(id)?;
        if inner.endpoints.get(&entry.info.endpoint) == Some(id) {
            inner.endpoints.remove(&entry.info.endpoint);
        }
        let pool = &mut inner.pools[pool_index(entry.info.engine)];
        if let Ok(pos) = pool.nodes.binary_search_by(|e| e.id().cmp(id)) {
            pool.nodes.remove(pos);
            self.bump(pool);
        }
        Some(entry)
    }

    /// Registers a node in `state` and returns its id. The info is
    /// normalized first (see [`NodeInfo::normalized`]); use
    /// [`try_register`](Self::try_register) to refuse bad info instead.
    pub fn register(&self, info: NodeInfo, state: NodeState) -> NodeId {
        let fixed = info.clone().normalized();
        if fixed != info {
            tracing::warn!(
                node_id = %fixed.id,
                engine = %fixed.engine,
                "registration had an empty id or a zero capacity or weight; using id, capacity {} and weight {}",
                fixed.capacity,
                fixed.weight
            );
        }
        self.insert(fixed, state)
    }

    /// Registers a node after checking its info ([`NodeInfo::validate`]).
    pub fn try_register(&self, info: NodeInfo, state: NodeState) -> Result<NodeId> {
        info.validate()?;
        Ok(self.insert(info, state))
    }

    fn insert(&self, info: NodeInfo, state: NodeState) -> NodeId {
        let now = self.clock.now();
        let id = info.id.clone();
        let breaker = CircuitBreaker::new(self.config.breaker.clone(), self.clock.clone());
        let entry = Arc::new(NodeEntry::new(info, state, now, breaker, self.config.ewma_alpha));
        let mut inner = self.inner.write();
        if let Some(old_id) = inner.endpoints.get(&entry.info.endpoint).cloned() {
            if old_id != id && self.remove_locked(&mut inner, &old_id).is_some() {
                tracing::info!(node_id = %old_id, endpoint = %entry.info.endpoint, new_node_id = %id,
                    "node replaced by a new registration from its endpoint");
                self.emit(RegistryEvent::Left(old_id));
            }
        }
        self.remove_locked(&mut inner, &id);
        inner.endpoints.insert(entry.info.endpoint.clone(), id.clone());
        inner.nodes.insert(id.clone(), entry.clone());
        let pool = &mut inner.pools[pool_index(entry.info.engine)];
        let pos = pool
            .nodes
            .binary_search_by(|e| e.id().cmp(&id))
            .unwrap_or_else(|p| p);
        pool.nodes.insert(pos, entry.clone());
        self.bump(pool);
        tracing::info!(node_id = %id, engine = %entry.info.engine, endpoint = %entry.info.endpoint,
            state = %state, "node registered");
        self.emit(RegistryEvent::Joined(entry.snapshot(now)));
        id
    }

    fn entry(&self, id: &NodeId) -> Result<Arc<NodeEntry>> {
        self.inner
            .read()
            .nodes
            .get(id)
            .cloned()
            .ok_or_else(|| Error::UnknownNode(id.to_string()))
    }

    /// Applies a heartbeat. An unknown id is [`Error::UnknownNode`] (the
    /// worker should register again); an offline node that heartbeats is
    /// back in the reported state.
    pub fn heartbeat(&self, id: &NodeId, state: NodeState, metrics: NodeMetrics) -> Result<()> {
        self.report(id, state, None, Some(metrics))
    }

    /// Sets a node's state (admin actions).
    pub fn set_state(&self, id: &NodeId, state: NodeState) -> Result<()> {
        self.report(id, state, None, None)
    }

    /// Applies a state a node reported, numbered by the node (`seq` rises
    /// with every report it makes), with its metrics when it is a heartbeat.
    /// Reports can arrive out of order: a heartbeat built before an admin
    /// action may be delivered after the action's reply. A numbered state
    /// older than one already applied is therefore ignored (a heartbeat's
    /// metrics and its sign of life still count); an unnumbered one always
    /// applies. A new registration starts the numbering again.
    pub fn report(
        &self,
        id: &NodeId,
        state: NodeState,
        seq: Option<u64>,
        metrics: Option<NodeMetrics>,
    ) -> Result<()> {
        let entry = self.entry(id)?;
        let now = self.clock.now();
        let heartbeat = metrics.is_some();
        let prev = match metrics {
            Some(m) => entry.heartbeat(state, seq, m, now),
            None => entry.set_state(state, seq, now),
        };
        let held = entry.state();
        if prev != held {
            let by = if heartbeat { "heartbeat" } else { "action" };
            tracing::info!(node_id = %id, from = %prev, to = %held, by, "node state changed");
            self.emit(RegistryEvent::StateChanged {
                id: id.clone(),
                from: prev,
                to: held,
            });
        } else if held != state {
            tracing::debug!(node_id = %id, reported = %state, held = %held, ?seq,
                "an older report of the node's state was ignored");
        }
        Ok(())
    }

    /// Removes a node.
    pub fn deregister(&self, id: &NodeId) -> Result<()> {
        let mut inner = self.inner.write();
        self.remove_locked(&mut inner, id)
            .ok_or_else(|| Error::UnknownNode(id.to_string()))?;
        tracing::info!(node_id = %id, "node deregistered");
        self.emit(RegistryEvent::Left(id.clone()));
        Ok(())
    }

    /// Marks nodes without a heartbeat for `dead_threshold` offline (event
    /// `Offline`) and forgets nodes offline for `retention` (event `Left`).
    /// Returns the ids that went offline in this sweep.
    pub fn sweep(&self) -> Vec<NodeId> {
        let now = self.clock.now();
        let mut newly = Vec::new();
        let mut expired = Vec::new();
        {
            let inner = self.inner.read();
            for entry in inner.nodes.values() {
                match entry.sweep(now, self.config.dead_threshold) {
                    (true, _) => {
                        tracing::warn!(node_id = %entry.id(), engine = %entry.info.engine,
                            "node missed its heartbeats and is offline");
                        self.emit(RegistryEvent::Offline(entry.id().clone()));
                        newly.push(entry.id().clone());
                    }
                    (false, Some(offline_for)) if offline_for >= self.config.retention => {
                        expired.push(entry.id().clone());
                    }
                    _ => {}
                }
            }
        }
        if !expired.is_empty() {
            let mut inner = self.inner.write();
            for id in expired {
                // It may have come back between the two locks.
                let still = inner.nodes.get(&id).is_some_and(|e| {
                    matches!(e.sweep(now, self.config.dead_threshold), (false, Some(d)) if d >= self.config.retention)
                });
                if still && self.remove_locked(&mut inner, &id).is_some() {
                    tracing::info!(node_id = %id, "offline node forgotten after retention");
                    self.emit(RegistryEvent::Left(id));
                }
            }
        }
        newly.sort();
        newly
    }

    /// Picks a selectable node of `engine` with `policy` and leases it.
    /// [`Error::NoNodeAvailable`] when none is selectable.
    pub fn select(
        &self,
        engine: EngineKind,
        policy: &dyn BalancePolicy,
        ctx: &SelectContext<'_>,
    ) -> Result<Lease> {
        let inner = self.inner.read();
        let index = pool_index(engine);
        let pool = &inner.pools[index];
        let mut view = PoolView {
            nodes: &pool.nodes,
            pool: index,
            generation: pool.generation,
            exclude: ctx.exclude,
            skipped: [usize::MAX; SELECT_ATTEMPTS],
        };
        for attempt in 0..SELECT_ATTEMPTS {
            let Some(i) = policy.pick(&view, ctx) else { break };
            view.skipped[attempt] = i;
            let Some(entry) = pool.nodes.get(i) else { continue };
            if !(view.allowed(entry) && entry.selectable() && entry.try_reserve()) {
                continue;
            }
            match entry.breaker.try_admit() {
                Some(ticket) => return Ok(Lease::new(entry.clone(), ticket)),
                None => entry.release(),
            }
        }
        Err(Error::NoNodeAvailable {
            engine: engine.to_string(),
        })
    }

    /// Every node, sorted by engine then id.
    pub fn snapshot(&self) -> Vec<NodeSnapshot> {
        let now = self.clock.now();
        let inner = self.inner.read();
        inner
            .pools
            .iter()
            .flat_map(|p| p.nodes.iter())
            .map(|e| e.snapshot(now))
            .collect()
    }

    /// One node.
    pub fn node(&self, id: &NodeId) -> Option<NodeSnapshot> {
        let now = self.clock.now();
        self.inner.read().nodes.get(id).map(|e| e.snapshot(now))
    }

    /// Number of registered nodes (any state).
    pub fn len(&self) -> usize {
        self.inner.read().nodes.len()
    }

    /// Whether no node is registered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Number of selectable nodes of `engine` now: ready, with a free slot,
    /// breaker admitting. This changes with every request; health and
    /// routing decisions that ask "is there a node at all" use
    /// [`serving`](Self::serving).
    pub fn selectable(&self, engine: EngineKind) -> usize {
        let inner = self.inner.read();
        inner.pools[pool_index(engine)]
            .nodes
            .iter()
            .filter(|e| e.selectable())
            .count()
    }

    /// Number of nodes of `engine` that serve requests now or as soon as one
    /// of their slots frees: state `ready` or `busy` (full is busy, not
    /// missing), breaker not open (half-open counts: its probe ends soon).
    /// What health readiness and the choice of an engine read.
    pub fn serving(&self, engine: EngineKind) -> usize {
        let inner = self.inner.read();
        inner.pools[pool_index(engine)]
            .nodes
            .iter()
            .filter(|e| e.serving())
            .count()
    }

    /// Whether `engine` has a serving node (see [`serving`](Self::serving))
    /// that is not in `exclude`.
    pub fn has_serving(&self, engine: EngineKind, exclude: &[NodeId]) -> bool {
        let inner = self.inner.read();
        inner.pools[pool_index(engine)]
            .nodes
            .iter()
            .any(|e| e.serving() && !exclude.contains(e.id()))
    }
}

/// The [`Candidates`] view of one pool during one selection.
struct PoolView<'a> {
    nodes: &'a [Arc<NodeEntry>],
    pool: usize,
    generation: u64,
    exclude: &'a [NodeId],
    /// Indices already tried in this selection.
    skipped: [usize; SELECT_ATTEMPTS],
}

impl PoolView<'_> {
    fn allowed(&self, e: &NodeEntry) -> bool {
        !self.exclude.iter().any(|x| x == e.id())
    }
}

impl Candidates for PoolView<'_> {
    fn len(&self) -> usize {
        self.nodes.len()
    }
    fn eligible(&self, i: usize) -> bool {
        let Some(e) = self.nodes.get(i) else { return false };
        !self.skipped.contains(&i) && self.allowed(e) && e.selectable()
    }
    fn in_flight(&self, i: usize) -> u32 {
        self.nodes.get(i).map_or(0, |e| e.in_flight())
    }
    fn capacity(&self, i: usize) -> u32 {
        self.nodes.get(i).map_or(0, |e| e.info.capacity)
    }
    fn weight(&self, i: usize) -> u32 {
        self.nodes.get(i).map_or(1, |e| e.info.weight)
    }
    fn latency_ewma_ms(&self, i: usize) -> f64 {
        self.nodes.get(i).map_or(0.0, |e| e.latency_ewma_ms())
    }
    fn id(&self, i: usize) -> &NodeId {
        self.nodes[i].id()
    }
    fn id_hash(&self, i: usize) -> u64 {
        self.nodes.get(i).map_or(0, |e| e.id_hash)
    }
    fn pool(&self) -> usize {
        self.pool
    }
    fn generation(&self) -> u64 {
        self.generation
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::balance::{LeastInFlight, PowerOfTwoChoices, RoundRobin};
    use crate::breaker::BreakerState;
    use crate::clock::ManualClock;

    fn registry() -> (Registry, ManualClock) {
        let clock = ManualClock::new();
        (
            Registry::new(RegistryConfig::default(), Arc::new(clock.clone())),
            clock,
        )
    }

    fn info(id: &str, capacity: u32) -> NodeInfo {
        NodeInfo {
            capacity,
            ..NodeInfo::new(id, EngineKind::Xtts, format!("http://{id}:8001"))
        }
    }

    #[test]
    fn select_respects_state_capacity_and_exclusion() {
        let (r, _) = registry();
        let ctx = SelectContext::default();
        let p = RoundRobin::new();
        assert_eq!(
            r.select(EngineKind::Xtts, &p, &ctx).unwrap_err().code(),
            "no_node_available"
        );
        let a = r.register(info("a", 1), NodeState::Ready);
        let b = r.register(info("b", 1), NodeState::Standby);
        let l1 = r.select(EngineKind::Xtts, &p, &ctx).unwrap();
        assert_eq!(l1.id(), &a);
        // a is full, b is in standby.
        assert!(r.select(EngineKind::Xtts, &p, &ctx).is_err());
        r.set_state(&b, NodeState::Ready).unwrap();
        let l2 = r.select(EngineKind::Xtts, &p, &ctx).unwrap();
        assert_eq!(l2.id(), &b);
        drop(l1);
        let exclude = [a.clone()];
        let ex = SelectContext {
            exclude: &exclude,
            ..SelectContext::default()
        };
        assert!(r.select(EngineKind::Xtts, &p, &ex).is_err(), "a excluded, b full");
        assert_eq!(r.select(EngineKind::Xtts, &p, &ctx).unwrap().id(), &a);
        assert!(r.select(EngineKind::OpenVoice, &p, &ctx).is_err());
    }

    #[test]
    fn busy_is_not_selectable() {
        let (r, _) = registry();
        let a = r.register(info("a", 4), NodeState::Ready);
        r.heartbeat(&a, NodeState::Busy, NodeMetrics::default()).unwrap();
        assert!(
            r.select(EngineKind::Xtts, &LeastInFlight::new(), &SelectContext::default())
                .is_err()
        );
        assert_eq!(r.selectable(EngineKind::Xtts), 0);
        assert_eq!(r.serving(EngineKind::Xtts), 1, "busy is serving, only full");
    }

    #[test]
    fn a_full_or_probing_node_is_serving_an_open_breaker_or_standby_is_not() {
        let clock = ManualClock::new();
        let config = RegistryConfig {
            breaker: BreakerConfig {
                failure_threshold: 1,
                ..BreakerConfig::default()
            },
            ..RegistryConfig::default()
        };
        let r = Registry::new(config, Arc::new(clock.clone()));
        let p = RoundRobin::new();
        let ctx = SelectContext::default();
        let a = r.register(info("a", 1), NodeState::Ready);
        r.register(info("b", 1), NodeState::Standby);
        let lease = r.select(EngineKind::Xtts, &p, &ctx).unwrap();
        // Full: not selectable, still serving.
        assert_eq!(r.selectable(EngineKind::Xtts), 0);
        assert_eq!(r.serving(EngineKind::Xtts), 1);
        assert!(r.has_serving(EngineKind::Xtts, &[]));
        assert!(!r.has_serving(EngineKind::Xtts, std::slice::from_ref(&a)));
        lease.finish(Outcome::Failure, Duration::from_millis(1));
        // Open breaker: a fault, not serving.
        assert_eq!(r.node(&a).unwrap().breaker, BreakerState::Open);
        assert_eq!(r.serving(EngineKind::Xtts), 0);
        // Half-open with its probe out: serving.
        clock.advance(Duration::from_secs(10));
        let probe = r.select(EngineKind::Xtts, &p, &ctx).unwrap();
        assert!(probe.is_probe());
        assert_eq!(r.selectable(EngineKind::Xtts), 0);
        assert_eq!(r.serving(EngineKind::Xtts), 1);
    }

    #[test]
    fn lease_finish_feeds_ewma_counters_and_breaker() {
        let clock = ManualClock::new();
        let config = RegistryConfig {
            ewma_alpha: 0.5,
            breaker: BreakerConfig {
                failure_threshold: 2,
                ..BreakerConfig::default()
            },
            ..RegistryConfig::default()
        };
        let r = Registry::new(config, Arc::new(clock.clone()));
        let id = r.register(info("a", 8), NodeState::Ready);
        let p = PowerOfTwoChoices::with_seed(3);
        let ctx = SelectContext::default();
        r.select(EngineKind::Xtts, &p, &ctx)
            .unwrap()
            .finish(Outcome::Success, Duration::from_millis(100));
        r.select(EngineKind::Xtts, &p, &ctx)
            .unwrap()
            .finish(Outcome::Success, Duration::from_millis(200));
        let s = r.node(&id).unwrap();
        assert_eq!(s.latency_ewma_ms, 150.0);
        assert_eq!((s.requests_total, s.failures_total, s.in_flight), (2, 0, 0));
        // A fast failure does not lower the EWMA; rejected requests do not count.
        r.select(EngineKind::Xtts, &p, &ctx)
            .unwrap()
            .finish(Outcome::Failure, Duration::from_millis(1));
        r.select(EngineKind::Xtts, &p, &ctx)
            .unwrap()
            .finish(Outcome::Rejected, Duration::from_millis(1));
        let s = r.node(&id).unwrap();
        assert_eq!(s.latency_ewma_ms, 150.0);
        assert_eq!((s.requests_total, s.failures_total), (4, 1));
        assert_eq!(s.breaker, BreakerState::Closed);
        r.select(EngineKind::Xtts, &p, &ctx)
            .unwrap()
            .finish(Outcome::Failure, Duration::from_millis(1));
        assert_eq!(r.node(&id).unwrap().breaker, BreakerState::Open);
        assert!(r.select(EngineKind::Xtts, &p, &ctx).is_err(), "breaker open");
        clock.advance(Duration::from_secs(10));
        let probe = r.select(EngineKind::Xtts, &p, &ctx).unwrap();
        assert!(probe.is_probe());
        assert!(
            r.select(EngineKind::Xtts, &p, &ctx).is_err(),
            "one probe at a time"
        );
        drop(probe); // abandoned: releases the probe slot
        let probe = r.select(EngineKind::Xtts, &p, &ctx).unwrap();
        probe.finish(Outcome::Success, Duration::from_millis(100));
        assert_eq!(r.node(&id).unwrap().breaker, BreakerState::Closed);
    }

    #[test]
    fn heartbeat_seeds_latency_until_gateway_measures() {
        let (r, _) = registry();
        let id = r.register(info("a", 2), NodeState::Ready);
        let m = NodeMetrics {
            latency_ewma_ms: 800.0,
            ..NodeMetrics::default()
        };
        r.heartbeat(&id, NodeState::Ready, m.clone()).unwrap();
        assert_eq!(r.node(&id).unwrap().latency_ewma_ms, 800.0);
        r.select(EngineKind::Xtts, &RoundRobin::new(), &SelectContext::default())
            .unwrap()
            .finish(Outcome::Success, Duration::from_millis(50));
        r.heartbeat(&id, NodeState::Ready, m).unwrap();
        assert_eq!(r.node(&id).unwrap().latency_ewma_ms, 50.0);
    }

    #[test]
    fn an_older_numbered_state_never_overwrites_a_newer_one() {
        let (r, clock) = registry();
        let id = r.register(info("a", 2), NodeState::Ready);
        let m = |in_flight| NodeMetrics {
            in_flight,
            ..NodeMetrics::default()
        };
        r.report(&id, NodeState::Stopped, Some(5), Some(m(0))).unwrap();
        // The reply to `start` (numbered 7) is applied before a heartbeat the
        // node built earlier (numbered 6) arrives.
        r.report(&id, NodeState::Ready, Some(7), None).unwrap();
        clock.advance(Duration::from_secs(1));
        r.report(&id, NodeState::Stopped, Some(6), Some(m(1))).unwrap();
        let n = r.node(&id).unwrap();
        assert_eq!(
            n.state,
            NodeState::Ready,
            "the stale heartbeat's state is ignored"
        );
        assert_eq!(n.metrics.in_flight, 1, "its metrics still count");
        assert_eq!(n.since_heartbeat, Duration::ZERO, "and its sign of life");
        // Newer and equal numbers apply; unnumbered reports always do.
        r.report(&id, NodeState::Busy, Some(7), Some(m(2))).unwrap();
        assert_eq!(r.node(&id).unwrap().state, NodeState::Busy);
        r.set_state(&id, NodeState::Standby).unwrap();
        assert_eq!(r.node(&id).unwrap().state, NodeState::Standby);
        r.report(&id, NodeState::Ready, Some(3), None).unwrap();
        assert_eq!(r.node(&id).unwrap().state, NodeState::Standby);
        // A node marked offline is back on any heartbeat.
        clock.advance(Duration::from_secs(60));
        r.sweep();
        assert_eq!(r.node(&id).unwrap().state, NodeState::Offline);
        r.report(&id, NodeState::Ready, Some(4), Some(m(0))).unwrap();
        assert_eq!(r.node(&id).unwrap().state, NodeState::Ready);
        // A new registration starts the numbering again.
        let id = r.register(info("a", 2), NodeState::Standby);
        r.report(&id, NodeState::Ready, Some(1), Some(m(0))).unwrap();
        assert_eq!(r.node(&id).unwrap().state, NodeState::Ready);
    }

    #[test]
    fn unknown_ids_are_errors() {
        let (r, _) = registry();
        let ghost = NodeId::new("ghost");
        for e in [
            r.heartbeat(&ghost, NodeState::Ready, NodeMetrics::default())
                .unwrap_err(),
            r.set_state(&ghost, NodeState::Stopped).unwrap_err(),
            r.deregister(&ghost).unwrap_err(),
        ] {
            assert_eq!(e.code(), "unknown_node");
        }
        assert!(r.node(&ghost).is_none());
    }

    #[test]
    fn try_register_refuses_bad_info_register_repairs_it() {
        let (r, _) = registry();
        let e = r.try_register(info("a", 0), NodeState::Ready).unwrap_err();
        assert!(e.to_string().contains("capacity"));
        assert!(r.is_empty());
        let id = r.register(info("a", 0), NodeState::Ready);
        assert_eq!(r.node(&id).unwrap().info.capacity, 1);
    }

    #[test]
    fn config_validation() {
        assert!(RegistryConfig::default().validate().is_ok());
        let bad = RegistryConfig {
            dead_threshold: Duration::from_secs(5),
            ..RegistryConfig::default()
        };
        assert!(
            bad.validate()
                .unwrap_err()
                .to_string()
                .contains("registry.dead_threshold")
        );
        let bad = RegistryConfig {
            ewma_alpha: 0.0,
            ..RegistryConfig::default()
        };
        assert!(bad.validate().unwrap_err().to_string().contains("ewma_alpha"));
        let c: RegistryConfig =
            serde_json::from_str(r#"{"heartbeat_interval": 5, "dead_threshold": 15}"#).unwrap();
        assert_eq!(c.dead_threshold, Duration::from_secs(15));
        assert_eq!(c.retention, Duration::from_secs(300));
    }
}
