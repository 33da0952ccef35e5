//! Node selection and failover.
//!
//! [`Gateway::route`] leases a node of an engine from the registry (policy,
//! per-node capacity and breaker apply there), checks the per-node rate
//! limit, and runs one call on it. A failure that
//! [`vctts_core::Error::retryable`] says another node may not have
//! (connection refused or reset, timeout before the first byte, overloaded,
//! model not loaded, node shutting down) is retried on a node not tried yet,
//! at most `cluster.max_retries` times.
//!
//! Invariants:
//! - the caller gets the lease with the result and finishes it when the
//!   answer is complete (for streams: when the stream ends), so in-flight
//!   counts and the breaker see the whole request;
//! - a retry never happens after audio bytes were sent: calls passed to
//!   `route` return before anything reaches the client (streams return with
//!   their first chunk in hand, not yet sent);
//! - only node faults count against the node's breaker: a request the node
//!   refused as bad, or shed because it was full or in standby, does not;
//! - errors are core errors ([`vctts_core::Error`]); the HTTP layer renders
//!   them (a node-layer `rate_limited` carries its limit and remaining
//!   budget for the `RateLimit-*` headers);
//! - when the engine has a *serving* node (ready or busy, breaker not open;
//!   [`Registry::serving`]) that is not selectable now — full, busy, its
//!   breaker probing, or it just answered `overloaded` — the request waits
//!   in the gateway's queue (`limiter.queue_size` places,
//!   `limiter.queue_timeout`) for a free slot, and is refused `503
//!   overloaded` with `Retry-After` when the queue is full or the wait ends:
//!   a full node is busy, not missing. "Serving" is asked after the selection
//!   failed, so a slot that came free in between is taken on the next turn;
//!   a node's `overloaded` answer is neither a failover nor a fault;
//! - only when no node of the engine serves is the answer
//!   `no_node_available` naming the engine (or the last node fault after
//!   failovers, or, if every node was skipped by its rate limit,
//!   `rate_limited` at the node layer);
//! - a node that stalled on a request (no progress within the request's
//!   deadline, see [`crate::budget::stall_deadline`]) is *suspect*
//!   ([`Suspects`]): new requests avoid it while another node of its engine
//!   is selectable, until one of its heartbeats shows progress (a request
//!   finished since, or nothing in flight). The stall itself is an
//!   [`Error::Timeout`], so it is failed over and counts against the node's
//!   breaker like any node fault.

use crate::cluster::NodeApi;
use crate::gateway::Gateway;
pub use crate::suspects::Suspects;
use bytes::Bytes;
use futures::StreamExt;
use futures::stream::BoxStream;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use vctts_core::registry::{Lease, NodeId, Outcome, Registry, SelectContext};
use vctts_core::{Blame, EngineKind, Error, Result};

/// A call that succeeded on a node.
#[derive(Debug)]
pub struct Routed<T> {
    /// What the call returned.
    pub value: T,
    /// The lease on the node; finish it when the answer is complete.
    pub lease: Lease,
    /// The node's id.
    pub node_id: NodeId,
    /// When the successful attempt started.
    pub started: Instant,
    /// How many nodes were tried before this one.
    pub failovers: usize,
}

impl<T> Routed<T> {
    /// Finishes the lease as a success now.
    pub fn succeed(self) -> (T, NodeId) {
        self.lease.finish(Outcome::Success, self.started.elapsed());
        (self.value, self.node_id)
    }
}

/// How a failed call counts against its node (`None`: not at all — the
/// caller went away).
pub fn outcome_of(e: &Error) -> Option<Outcome> {
    match (e, e.blame()) {
        (Error::Cancelled, _) => None,
        (_, Blame::Node | Blame::Internal) => Some(Outcome::Failure),
        // Shed load, standby, bad requests: not the node's fault.
        (_, Blame::Client | Blame::Capacity) => Some(Outcome::Rejected),
    }
}

/// The error of a node that made no progress within `within`.
pub fn stall_error(node: &NodeId, within: Duration) -> Error {
    Error::Timeout(format!(
        "node {node} made no progress within {:.1} s (stalled)",
        within.as_secs_f64()
    ))
}

/// Runs `call` with a progress deadline: when nothing comes back within
/// `within` the node is marked stalled and the call ends as a timeout (the
/// call's future is dropped, which closes its connection and so cancels the
/// work on the node).
pub async fn within_deadline<T>(
    suspects: &Suspects,
    registry: &Registry,
    node: &NodeId,
    within: Duration,
    call: impl Future<Output = Result<T>>,
) -> Result<T> {
    match tokio::time::timeout(within, call).await {
        Ok(r) => r,
        Err(_) => {
            suspects.stalled(registry, node);
            Err(stall_error(node, within))
        }
    }
}

/// Watches the rest of a node stream: a chunk must come within `gap` of the
/// one before, else the node is marked stalled, the stream ends with a
/// timeout and the node stream is dropped (closing its connection).
pub fn watch_stream(
    chunks: BoxStream<'static, Result<Bytes>>,
    gap: Duration,
    node: NodeId,
    suspects: Arc<Suspects>,
    registry: Arc<Registry>,
) -> BoxStream<'static, Result<Bytes>> {
    futures::stream::unfold(Some(chunks), move |state| {
        let (node, suspects, registry) = (node.clone(), suspects.clone(), registry.clone());
        async move {
            let mut chunks = state?;
            match tokio::time::timeout(gap, chunks.next()).await {
                Ok(Some(item)) => Some((item, Some(chunks))),
                Ok(None) => None,
                Err(_) => {
                    suspects.stalled(&registry, &node);
                    Some((Err(stall_error(&node, gap)), None))
                }
            }
        }
    })
    .boxed()
}

/// How often a queued request looks for a free node.
const QUEUE_POLL: Duration = Duration::from_millis(20);

/// A place in the gateway's routing queue, given back on drop.
struct QueueTicket<'a>(&'a AtomicUsize);

impl Drop for QueueTicket<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Gateway {
    /// Takes a place in the routing queue (`limiter.queue_size` places), or
    /// refuses with `overloaded` when it is full.
    fn join_route_queue(&self, engine: EngineKind) -> Result<QueueTicket<'_>> {
        let max = self.config().limiter.queue_size;
        let taken = self
            .route_waiting()
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < max).then_some(n + 1)
            });
        match taken {
            Ok(_) => Ok(QueueTicket(self.route_waiting())),
            Err(_) => Err(Error::Overloaded(format!(
                "every ready {engine} node is busy and the gateway's queue ({max}) is full"
            ))),
        }
    }

    /// Runs `call` on a node of `engine`, failing over as the module docs say.
    pub async fn route<T, F, Fut>(
        &self,
        engine: EngineKind,
        voice: Option<&str>,
        mut call: F,
    ) -> Result<Routed<T>>
    where
        F: FnMut(Arc<dyn NodeApi>, NodeId) -> Fut,
        Fut: Future<Output = Result<T>>,
    {
        let max_attempts = 1 + self.config().cluster.max_retries;
        // Nodes that failed or were refused by their rate limit: not tried again.
        let mut exclude: Vec<NodeId> = Vec::new();
        // Nodes that answered `overloaded` (full): skipped until the next
        // turn in the queue.
        let mut shed: Vec<NodeId> = Vec::new();
        let mut attempts = 0usize;
        let mut last_error: Option<Error> = None;
        let mut node_limited: Option<vctts_core::limit::Refusal> = None;
        let mut waiting: Option<QueueTicket<'_>> = None;
        let queue_deadline = Instant::now() + self.config().limiter.queue_timeout.0;
        // Suspect nodes are avoided while another node is selectable.
        let mut avoid: Vec<NodeId> = self.suspects().list();
        loop {
            let mut skip = exclude.clone();
            for id in shed.iter().chain(avoid.iter()) {
                if !skip.contains(id) {
                    skip.push(id.clone());
                }
            }
            let ctx = SelectContext {
                voice,
                exclude: &skip,
            };
            let lease = match self.registry().select(engine, &*self.policy(), &ctx) {
                Ok(l) => l,
                Err(_) if !avoid.is_empty() => {
                    avoid.clear();
                    continue;
                }
                Err(none) => {
                    // A node that serves but has no free slot now (full, busy,
                    // its breaker probing, or it just shed this request) is
                    // waited for in the gateway's queue: busy, not missing.
                    // Asked after the selection failed, so a slot that came
                    // free in between is simply taken on the next turn.
                    if self.registry().has_serving(engine, &exclude) {
                        if waiting.is_none() {
                            waiting = Some(self.join_route_queue(engine)?);
                        }
                        if Instant::now() < queue_deadline {
                            tokio::time::sleep(QUEUE_POLL).await;
                            shed.clear();
                            continue;
                        }
                        return Err(Error::Overloaded(format!(
                            "every ready {engine} node is busy and no slot came free within {:.0} s",
                            self.config().limiter.queue_timeout.0.as_secs_f64()
                        )));
                    }
                    if let Some(e) = last_error {
                        return Err(e);
                    }
                    if let Some(r) = node_limited {
                        self.metrics().rate_limited.inc(&[r.layer.as_str()]);
                        return Err(Error::RateLimited {
                            layer: r.layer,
                            retry_after: r.retry_after,
                            limit_rpm: r.limit_rpm,
                            remaining: r.remaining,
                        });
                    }
                    return Err(none);
                }
            };
            let id = lease.id().clone();
            if let Err(r) = self.limiter().check_node(id.as_str()) {
                drop(lease);
                exclude.push(id);
                node_limited = Some(r);
                continue;
            }
            let Some(link) = self.link(&id) else {
                drop(lease);
                exclude.push(id);
                continue;
            };
            attempts += 1;
            let started = Instant::now();
            match call(link.api.clone(), id.clone()).await {
                Ok(value) => {
                    return Ok(Routed {
                        value,
                        lease,
                        node_id: id,
                        started,
                        failovers: attempts - 1,
                    });
                }
                Err(e) => {
                    match outcome_of(&e) {
                        Some(o) => lease.finish(o, started.elapsed()),
                        None => drop(lease),
                    }
                    if matches!(e, Error::Overloaded(_)) {
                        // The node is full (its own queue included): another
                        // node may take it, else the request waits in the
                        // gateway's queue for this one. Not a failover.
                        tracing::debug!(engine = %engine, node_id = %id, error = %e,
                            "node shed the request; trying another or queueing");
                        attempts -= 1;
                        shed.push(id);
                        continue;
                    }
                    if e.retryable() && attempts < max_attempts {
                        tracing::warn!(engine = %engine, node_id = %id, error = %e,
                            "node call failed; retrying on another node");
                        self.metrics().failovers.inc(&[engine.as_str()]);
                        exclude.push(id);
                        last_error = Some(e);
                        continue;
                    }
                    return Err(e);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Env, GatewayConfig};
    use vctts_core::clock::ManualClock;
    use vctts_core::registry::{NodeInfo, NodeState};

    /// A gateway on a manual clock with one OpenVoice node of `capacity`
    /// (its address accepts no connections: the tests' calls never use it),
    /// a breaker that opens at the first fault and cools down in 5 s.
    fn gateway(capacity: u32) -> (tempfile::TempDir, Arc<Gateway>, ManualClock, NodeId) {
        let dir = tempfile::tempdir().unwrap();
        let yaml = format!(
            "storage: {{ data_dir: \"{}\" }}\n\
             registry: {{ breaker: {{ failure_threshold: 1, cool_down: 5, half_open_probes: 1 }} }}\n\
             limiter: {{ enabled: false, queue_size: 4, queue_timeout: 60 }}\n",
            dir.path().join("data").display()
        );
        let cfg = GatewayConfig::parse(&yaml, &Env::empty()).unwrap();
        let clock = ManualClock::new();
        clock.set(Duration::from_secs(1000));
        let gw = Gateway::new_standalone(cfg, Arc::new(clock.clone())).unwrap();
        let mut node = NodeInfo::new("openvoice-a", EngineKind::OpenVoice, "http://127.0.0.1:9");
        node.capacity = capacity;
        let id = gw.register_remote(node, NodeState::Ready, None, None).unwrap();
        (dir, gw, clock, id)
    }

    async fn queued(gw: &Gateway) {
        while gw.route_waiting().load(Ordering::Acquire) == 0 {
            tokio::task::yield_now().await;
        }
    }

    /// A node that answers `overloaded` (its own queue is full) is waited
    /// for in the gateway's queue and then serves the request; before, the
    /// shed was treated as a failover, the only node was excluded and the
    /// user got `503 overloaded` from a node with room a moment later.
    #[tokio::test]
    async fn a_node_that_sheds_a_request_is_queued_for_not_given_up() {
        let (_dir, gw, _clock, id) = gateway(2);
        let calls = AtomicUsize::new(0);
        let routed = gw
            .route(EngineKind::OpenVoice, None, |_, _| {
                let n = calls.fetch_add(1, Ordering::AcqRel);
                async move {
                    if n == 0 {
                        Err(Error::Overloaded("0 requests running and 2 waiting".into()))
                    } else {
                        Ok(n)
                    }
                }
            })
            .await
            .unwrap();
        assert_eq!((routed.value, routed.failovers), (1, 0));
        let (_, node) = routed.succeed();
        assert_eq!(node, id);
        let snap = gw.registry().node(&id).unwrap();
        assert_eq!(snap.failures_total, 0, "a shed is not a node fault");
        assert_eq!(gw.route_waiting().load(Ordering::Acquire), 0);
    }

    /// A node whose breaker is half-open with its probe out has no slot
    /// now but serves: the request queues and is served once the probe
    /// closed the breaker (before: `no_node_available`, "no ready node").
    #[tokio::test]
    async fn a_probing_node_is_busy_not_missing() {
        let (_dir, gw, clock, id) = gateway(4);
        let policy = gw.policy();
        let ctx = SelectContext::default();
        gw.registry()
            .select(EngineKind::OpenVoice, &*policy, &ctx)
            .unwrap()
            .finish(Outcome::Failure, Duration::from_millis(5));
        clock.advance(Duration::from_secs(6));
        let probe = gw
            .registry()
            .select(EngineKind::OpenVoice, &*policy, &ctx)
            .unwrap();
        assert!(probe.is_probe());
        assert_eq!(gw.registry().selectable(EngineKind::OpenVoice), 0);
        let gw2 = gw.clone();
        let waiter = tokio::spawn(async move {
            gw2.route(EngineKind::OpenVoice, None, |_, node| async move { Ok(node) })
                .await
                .map(|r| r.succeed().0)
        });
        queued(&gw).await;
        probe.finish(Outcome::Success, Duration::from_millis(5));
        assert_eq!(waiter.await.unwrap().unwrap(), id);
    }

    /// A full node: the request waits for its slot, then is served.
    #[tokio::test]
    async fn a_full_node_queues_the_request_until_a_slot_frees() {
        let (_dir, gw, _clock, id) = gateway(1);
        let held = gw
            .registry()
            .select(EngineKind::OpenVoice, &*gw.policy(), &SelectContext::default())
            .unwrap();
        let gw2 = gw.clone();
        let waiter = tokio::spawn(async move {
            gw2.route(EngineKind::OpenVoice, None, |_, node| async move { Ok(node) })
                .await
                .map(|r| r.succeed().0)
        });
        queued(&gw).await;
        held.finish(Outcome::Success, Duration::from_millis(5));
        assert_eq!(waiter.await.unwrap().unwrap(), id);
    }

    /// Only when no node serves (an open breaker, standby) is the answer
    /// `no_node_available`, at once.
    #[tokio::test]
    async fn no_serving_node_is_no_node_available() {
        let (_dir, gw, _clock, id) = gateway(4);
        gw.registry()
            .select(EngineKind::OpenVoice, &*gw.policy(), &SelectContext::default())
            .unwrap()
            .finish(Outcome::Failure, Duration::from_millis(5));
        let e = gw
            .route(EngineKind::OpenVoice, None, |_, node| async move { Ok(node) })
            .await
            .unwrap_err();
        assert_eq!(e.code(), "no_node_available");
        gw.registry().set_state(&id, NodeState::Standby).unwrap();
        let e = gw
            .route(EngineKind::OpenVoice, None, |_, node| async move { Ok(node) })
            .await
            .unwrap_err();
        assert_eq!(e.code(), "no_node_available");
    }

    #[test]
    fn only_node_faults_count_against_the_node() {
        let fault = Error::NodeUnavailable {
            node: "n".into(),
            message: "reset".into(),
        };
        assert_eq!(outcome_of(&fault), Some(Outcome::Failure));
        assert_eq!(outcome_of(&Error::Timeout("t".into())), Some(Outcome::Failure));
        assert_eq!(
            outcome_of(&Error::Overloaded("q".into())),
            Some(Outcome::Rejected)
        );
        assert_eq!(
            outcome_of(&Error::ModelNotLoaded("s".into())),
            Some(Outcome::Rejected)
        );
        assert_eq!(outcome_of(&Error::EmptyText), Some(Outcome::Rejected));
        assert_eq!(outcome_of(&Error::Cancelled), None);
    }
}
