//! What the registry knows about one node: its identity ([`NodeId`],
//! [`NodeInfo`]), its reported life ([`NodeState`], [`NodeMetrics`]), the
//! gateway's own view of it ([`NodeSnapshot`]), and the shared entry that
//! selections and leases update without taking the registry's lock.
//!
//! Invariants of an entry: `in_flight` counts the live leases on it and
//! never exceeds the capacity through [`NodeEntry::try_reserve`]; the state
//! is kept under the entry's mutex and mirrored in an atomic so eligibility
//! checks are lock-free; the latency EWMA is the gateway's own measurement
//! once it has one sample, and the worker's reported figure before that.

use crate::breaker::{BreakerState, CircuitBreaker};
use crate::engine::EngineKind;
use crate::error::{Error, Result};
use crate::limit::serde_secs;
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU8, AtomicU32, AtomicU64, Ordering};
use std::time::Duration;

/// Longest accepted node id, in bytes.
pub const MAX_NODE_ID_LEN: usize = 128;

/// A node's id, unique in the registry. [`NodeId::new`] takes any string
/// (for ids the program made); parse untrusted ids with `str::parse`, which
/// checks them.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct NodeId(String);

impl NodeId {
    /// Wraps an id as is.
    pub fn new(id: impl Into<String>) -> Self {
        Self(id.into())
    }

    /// The id as a string.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Checks the id: 1–128 bytes, no whitespace or control characters.
    pub fn validate(&self) -> Result<()> {
        let bad = |why: &str| Err(Error::invalid("node_id", format!("{:?} {why}", self.0)));
        if self.0.is_empty() {
            return bad("is empty");
        }
        if self.0.len() > MAX_NODE_ID_LEN {
            return bad(&format!("is longer than {MAX_NODE_ID_LEN} bytes"));
        }
        if self.0.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return bad("contains whitespace or control characters");
        }
        Ok(())
    }
}

impl std::fmt::Display for NodeId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::str::FromStr for NodeId {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        let id = Self(s.to_string());
        id.validate()?;
        Ok(id)
    }
}

impl std::borrow::Borrow<str> for NodeId {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl From<&str> for NodeId {
    fn from(s: &str) -> Self {
        Self::new(s)
    }
}

impl From<String> for NodeId {
    fn from(s: String) -> Self {
        Self::new(s)
    }
}

fn one() -> u32 {
    1
}

/// What a node says about itself when it registers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NodeInfo {
    /// Its id.
    pub id: NodeId,
    /// The engine it hosts.
    pub engine: EngineKind,
    /// Where it is reached: a base URL, or `inproc://name` in-process.
    pub endpoint: String,
    /// Requests it takes at once (≥ 1).
    #[serde(default = "one")]
    pub capacity: u32,
    /// Weight for weighted balancing (≥ 1).
    #[serde(default = "one")]
    pub weight: u32,
    /// Free-form labels (zone, GPU model, ...).
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// The node's software version.
    #[serde(default)]
    pub version: String,
}

impl NodeInfo {
    /// A node with capacity 1, weight 1, no labels and no version.
    pub fn new(id: impl Into<NodeId>, engine: EngineKind, endpoint: impl Into<String>) -> Self {
        Self {
            id: id.into(),
            engine,
            endpoint: endpoint.into(),
            capacity: 1,
            weight: 1,
            labels: BTreeMap::new(),
            version: String::new(),
        }
    }

    /// Checks id, endpoint, capacity and weight; the error names the field.
    pub fn validate(&self) -> Result<()> {
        self.id.validate()?;
        let ep = self.endpoint.trim();
        if ep.is_empty() || ep.len() != self.endpoint.len() || ep.contains(char::is_whitespace) {
            return Err(Error::invalid(
                "endpoint",
                format!(
                    "{:?} must be a URL or inproc://name without spaces",
                    self.endpoint
                ),
            ));
        }
        if self.capacity == 0 {
            return Err(Error::invalid("capacity", "must be at least 1"));
        }
        if self.weight == 0 {
            return Err(Error::invalid("weight", "must be at least 1"));
        }
        Ok(())
    }

    /// A copy that passes [`validate`](Self::validate) where it can be
    /// repaired: an empty id becomes `engine@endpoint`, a zero capacity or
    /// weight becomes 1. (Other faults are left for `validate` to report.)
    pub fn normalized(mut self) -> Self {
        if self.id.as_str().trim().is_empty() {
            self.id = NodeId::new(format!("{}@{}", self.engine, self.endpoint.trim()));
        }
        self.capacity = self.capacity.max(1);
        self.weight = self.weight.max(1);
        self
    }
}

/// Where a node is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NodeState {
    /// Up, model not loaded.
    Standby,
    /// Loading its model.
    Loading,
    /// Accepting requests.
    Ready,
    /// At capacity (as the worker reports it); not selectable.
    Busy,
    /// Failed; not selectable.
    Error,
    /// Stopped by an operator.
    Stopped,
    /// No heartbeat for the dead threshold.
    Offline,
}

impl NodeState {
    /// All states, in a fixed order.
    pub const ALL: [NodeState; 7] = [
        NodeState::Standby,
        NodeState::Loading,
        NodeState::Ready,
        NodeState::Busy,
        NodeState::Error,
        NodeState::Stopped,
        NodeState::Offline,
    ];

    /// Stable lower-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            NodeState::Standby => "standby",
            NodeState::Loading => "loading",
            NodeState::Ready => "ready",
            NodeState::Busy => "busy",
            NodeState::Error => "error",
            NodeState::Stopped => "stopped",
            NodeState::Offline => "offline",
        }
    }

    fn code(self) -> u8 {
        self as u8
    }

    fn from_code(code: u8) -> Self {
        Self::ALL
            .get(code as usize)
            .copied()
            .unwrap_or(NodeState::Offline)
    }
}

impl std::fmt::Display for NodeState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for NodeState {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        let norm = s.trim().to_ascii_lowercase();
        Self::ALL
            .into_iter()
            .find(|st| st.as_str() == norm)
            .ok_or_else(|| {
                Error::invalid(
                    "state",
                    format!(
                        "unknown node state {s:?} (standby, loading, ready, busy, error, stopped, offline)"
                    ),
                )
            })
    }
}

/// What a worker reports with each heartbeat.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct NodeMetrics {
    /// CPU use of the worker process, percent of one core × cores.
    pub cpu_percent: f32,
    /// Resident memory, bytes.
    pub memory_bytes: u64,
    /// GPU use, percent, when a GPU is used.
    pub gpu_percent: Option<f32>,
    /// GPU memory in use, bytes.
    pub gpu_memory_bytes: Option<u64>,
    /// Requests running on the worker.
    pub in_flight: u32,
    /// Requests waiting on the worker.
    pub queue: u32,
    /// Requests served since the worker started.
    pub requests_total: u64,
    /// Requests failed since the worker started.
    pub errors_total: u64,
    /// The worker's own latency EWMA, milliseconds.
    pub latency_ewma_ms: f64,
    /// Time to first audio of streamed requests, milliseconds.
    pub ttfa_ms: Option<f64>,
}

/// The registry's view of one node at one moment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NodeSnapshot {
    /// What it registered with.
    pub info: NodeInfo,
    /// Its state.
    pub state: NodeState,
    /// Its last reported metrics, as reported.
    pub metrics: NodeMetrics,
    /// Requests the gateway has in flight on it now.
    pub in_flight: u32,
    /// Time since its last heartbeat (or registration).
    #[serde(with = "serde_secs")]
    pub since_heartbeat: Duration,
    /// Its circuit breaker.
    pub breaker: BreakerState,
    /// The gateway's latency EWMA for it, milliseconds.
    pub latency_ewma_ms: f64,
    /// Requests the gateway finished on it.
    pub requests_total: u64,
    /// Of those, failures counted against it.
    pub failures_total: u64,
}

#[derive(Debug)]
struct Live {
    state: NodeState,
    metrics: NodeMetrics,
    last_heartbeat: Duration,
    offline_since: Option<Duration>,
    /// The newest state sequence number applied (see [`NodeEntry::heartbeat`]).
    seq: u64,
}

/// One registered node, shared by the registry, selections and leases.
#[derive(Debug)]
pub(crate) struct NodeEntry {
    pub(crate) info: NodeInfo,
    pub(crate) id_hash: u64,
    pub(crate) breaker: CircuitBreaker,
    pub(crate) ewma_alpha: f64,
    state: AtomicU8,
    in_flight: AtomicU32,
    latency_bits: AtomicU64,
    samples: AtomicU64,
    requests_total: AtomicU64,
    failures_total: AtomicU64,
    live: Mutex<Live>,
}

impl NodeEntry {
    pub(crate) fn new(
        info: NodeInfo,
        state: NodeState,
        now: Duration,
        breaker: CircuitBreaker,
        ewma_alpha: f64,
    ) -> Self {
        Self {
            id_hash: crate::hash::stable_hash(info.id.as_str().as_bytes()),
            info,
            breaker,
            ewma_alpha,
            state: AtomicU8::new(state.code()),
            in_flight: AtomicU32::new(0),
            latency_bits: AtomicU64::new(0f64.to_bits()),
            samples: AtomicU64::new(0),
            requests_total: AtomicU64::new(0),
            failures_total: AtomicU64::new(0),
            live: Mutex::new(Live {
                state,
                metrics: NodeMetrics::default(),
                last_heartbeat: now,
                offline_since: (state == NodeState::Offline).then_some(now),
                seq: 0,
            }),
        }
    }

    pub(crate) fn id(&self) -> &NodeId {
        &self.info.id
    }

    pub(crate) fn state(&self) -> NodeState {
        NodeState::from_code(self.state.load(Ordering::Acquire))
    }

    pub(crate) fn in_flight(&self) -> u32 {
        self.in_flight.load(Ordering::Acquire)
    }

    pub(crate) fn latency_ewma_ms(&self) -> f64 {
        f64::from_bits(self.latency_bits.load(Ordering::Relaxed))
    }

    /// Ready, below capacity and admitted by the breaker (no reservation).
    pub(crate) fn selectable(&self) -> bool {
        self.state() == NodeState::Ready
            && self.in_flight() < self.info.capacity
            && self.breaker.would_admit()
    }

    /// Whether it serves requests now or once a slot frees: ready or busy,
    /// breaker not open.
    pub(crate) fn serving(&self) -> bool {
        matches!(self.state(), NodeState::Ready | NodeState::Busy)
            && self.breaker.state() != BreakerState::Open
    }

    /// Takes an in-flight slot if one is free.
    pub(crate) fn try_reserve(&self) -> bool {
        self.in_flight
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < self.info.capacity).then_some(n + 1)
            })
            .is_ok()
    }

    /// Gives an in-flight slot back.
    pub(crate) fn release(&self) {
        let _ = self
            .in_flight
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1));
    }

    fn set_live_state(&self, live: &mut Live, state: NodeState, now: Duration) -> NodeState {
        let prev = live.state;
        if prev != state {
            live.state = state;
            live.offline_since = (state == NodeState::Offline).then_some(now);
            self.state.store(state.code(), Ordering::Release);
        }
        prev
    }

    /// Whether a report numbered `seq` is at least as new as the state held;
    /// records it when it is. Unnumbered reports (`None`) always apply.
    fn newer(live: &mut Live, seq: Option<u64>) -> bool {
        match seq {
            None => true,
            Some(s) if s >= live.seq => {
                live.seq = s;
                true
            }
            Some(_) => false,
        }
    }

    /// Applies a heartbeat; returns the previous state. A node numbers the
    /// states it reports (`seq`, rising with every report it makes): the state
    /// of a heartbeat older than one already applied, such as one sent just
    /// before an admin action's reply and delivered after it, is ignored
    /// (its metrics and its sign of life still count).
    pub(crate) fn heartbeat(
        &self,
        state: NodeState,
        seq: Option<u64>,
        metrics: NodeMetrics,
        now: Duration,
    ) -> NodeState {
        let mut live = self.live.lock();
        if self.samples.load(Ordering::Relaxed) == 0
            && metrics.latency_ewma_ms.is_finite()
            && metrics.latency_ewma_ms >= 0.0
        {
            self.latency_bits
                .store(metrics.latency_ewma_ms.to_bits(), Ordering::Relaxed);
        }
        live.metrics = metrics;
        live.last_heartbeat = now;
        if Self::newer(&mut live, seq) || live.state == NodeState::Offline {
            self.set_live_state(&mut live, state, now)
        } else {
            live.state
        }
    }

    /// Sets the state (an admin action, or a node's reply to one); returns
    /// the previous state. A numbered state older than the one held is
    /// ignored, as for [`NodeEntry::heartbeat`].
    pub(crate) fn set_state(&self, state: NodeState, seq: Option<u64>, now: Duration) -> NodeState {
        let mut live = self.live.lock();
        if Self::newer(&mut live, seq) {
            self.set_live_state(&mut live, state, now)
        } else {
            live.state
        }
    }

    /// Marks the node offline if its heartbeat is older than `dead`; returns
    /// whether it went offline now. An offline node reports how long it has
    /// been offline in the second value.
    pub(crate) fn sweep(&self, now: Duration, dead: Duration) -> (bool, Option<Duration>) {
        let mut live = self.live.lock();
        if live.state == NodeState::Offline {
            let since = live.offline_since.unwrap_or(now);
            return (false, Some(now.saturating_sub(since)));
        }
        if now.saturating_sub(live.last_heartbeat) >= dead {
            self.set_live_state(&mut live, NodeState::Offline, now);
            return (true, Some(Duration::ZERO));
        }
        (false, None)
    }

    /// Records a finished request.
    pub(crate) fn record(&self, latency: Option<Duration>, failure: bool) {
        self.requests_total.fetch_add(1, Ordering::Relaxed);
        if failure {
            self.failures_total.fetch_add(1, Ordering::Relaxed);
        }
        let Some(latency) = latency else { return };
        let sample = latency.as_secs_f64() * 1000.0;
        let first = self.samples.fetch_add(1, Ordering::Relaxed) == 0;
        let alpha = self.ewma_alpha;
        let _ = self
            .latency_bits
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |bits| {
                let old = f64::from_bits(bits);
                // A failure must never make the node look faster.
                let sample = if failure { sample.max(old) } else { sample };
                let new = if first {
                    sample
                } else {
                    alpha * sample + (1.0 - alpha) * old
                };
                Some(new.to_bits())
            });
    }

    pub(crate) fn snapshot(&self, now: Duration) -> NodeSnapshot {
        let live = self.live.lock();
        NodeSnapshot {
            info: self.info.clone(),
            state: live.state,
            metrics: live.metrics.clone(),
            in_flight: self.in_flight(),
            since_heartbeat: now.saturating_sub(live.last_heartbeat),
            breaker: self.breaker.state(),
            latency_ewma_ms: self.latency_ewma_ms(),
            requests_total: self.requests_total.load(Ordering::Relaxed),
            failures_total: self.failures_total.load(Ordering::Relaxed),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_id_parse_validates_new_does_not() {
        assert!("gpu-1".parse::<NodeId>().is_ok());
        for bad in ["", "a b", "a\nb"] {
            assert_eq!(
                bad.parse::<NodeId>().unwrap_err().code(),
                "invalid_input",
                "{bad:?}"
            );
        }
        assert!("x".repeat(129).parse::<NodeId>().is_err());
        assert_eq!(NodeId::new("").as_str(), "");
        assert_eq!(serde_json::to_string(&NodeId::new("n1")).unwrap(), "\"n1\"");
    }

    #[test]
    fn node_state_names() {
        for s in NodeState::ALL {
            assert_eq!(s.as_str().parse::<NodeState>().unwrap(), s);
            assert_eq!(serde_json::to_string(&s).unwrap(), format!("\"{s}\""));
            assert_eq!(NodeState::from_code(s.code()), s);
        }
        assert!("sleeping".parse::<NodeState>().is_err());
    }

    #[test]
    fn node_info_validation_and_normalization() {
        let ok = NodeInfo::new("n1", EngineKind::Xtts, "http://10.0.0.1:8001");
        assert!(ok.validate().is_ok());
        let mut bad = ok.clone();
        bad.capacity = 0;
        assert!(bad.validate().unwrap_err().to_string().contains("capacity"));
        assert_eq!(bad.clone().normalized().capacity, 1);
        bad.endpoint = "http://a b".into();
        assert!(bad.validate().unwrap_err().to_string().contains("endpoint"));
        let anon = NodeInfo::new("", EngineKind::OpenVoice, "inproc://ov").normalized();
        assert_eq!(anon.id.as_str(), "openvoice@inproc://ov");
        let json = r#"{"id":"n2","engine":"gpt-sovits","endpoint":"http://h:9880"}"#;
        let parsed: NodeInfo = serde_json::from_str(json).unwrap();
        assert_eq!((parsed.capacity, parsed.weight), (1, 1));
    }
}
