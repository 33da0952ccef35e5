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
//! - when the engine's ready nodes are all full, the request waits in the
//!   gateway's queue (`limiter.queue_size` places, `limiter.queue_timeout`)
//!   for a free slot, and is refused `503 overloaded` with `Retry-After` when
//!   the queue is full or the wait ends — a full node is busy, not missing;
//! - when no node is selectable otherwise the answer is `no_node_available`
//!   naming the engine (or, if every node was skipped by its rate limit,
//!   `rate_limited` at the node layer);
//! - a node that stalled on a request (no progress within the request's
//!   deadline, see [`crate::budget::stall_deadline`]) is *suspect*
//!   ([`Suspects`]): new requests avoid it while another node of its engine
//!   is selectable, until one of its heartbeats shows progress (a request
//!   finished since, or nothing in flight). The stall itself is an
//!   [`Error::Timeout`], so it is failed over and counts against the node's
//!   breaker like any node fault.

use crate::cluster::NodeApi;
use crate::error::{ApiError, ApiResult, RateLimitInfo};
use crate::gateway::Gateway;
pub use crate::suspects::Suspects;
use bytes::Bytes;
use futures::StreamExt;
use futures::stream::BoxStream;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use vctts_core::registry::{Lease, NodeId, NodeState, Outcome, Registry, SelectContext};
use vctts_core::{Blame, EngineKind, Error};

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
    call: impl Future<Output = vctts_core::Result<T>>,
) -> vctts_core::Result<T> {
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
    chunks: BoxStream<'static, vctts_core::Result<Bytes>>,
    gap: Duration,
    node: NodeId,
    suspects: Arc<Suspects>,
    registry: Arc<Registry>,
) -> BoxStream<'static, vctts_core::Result<Bytes>> {
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
    /// Whether `engine` has a ready node (not in `exclude`) that is only
    /// unselectable because it is full.
    fn nodes_full(&self, engine: EngineKind, exclude: &[NodeId]) -> bool {
        self.registry.snapshot().iter().any(|n| {
            n.info.engine == engine
                && !exclude.contains(&n.info.id)
                && matches!(n.state, NodeState::Ready | NodeState::Busy)
                && (n.in_flight >= n.info.capacity || n.state == NodeState::Busy)
        })
    }

    /// Takes a place in the routing queue (`limiter.queue_size` places), or
    /// refuses with `overloaded` when it is full.
    fn join_route_queue(&self, engine: EngineKind) -> ApiResult<QueueTicket<'_>> {
        let max = self.config.limiter.queue_size;
        let taken = self
            .route_waiting
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < max).then_some(n + 1)
            });
        match taken {
            Ok(_) => Ok(QueueTicket(&self.route_waiting)),
            Err(_) => Err(Error::Overloaded(format!(
                "every ready {engine} node is busy and the gateway's queue ({max}) is full"
            ))
            .into()),
        }
    }

    /// Runs `call` on a node of `engine`, failing over as the module docs say.
    pub async fn route<T, F, Fut>(
        &self,
        engine: EngineKind,
        voice: Option<&str>,
        mut call: F,
    ) -> ApiResult<Routed<T>>
    where
        F: FnMut(Arc<dyn NodeApi>, NodeId) -> Fut,
        Fut: Future<Output = vctts_core::Result<T>>,
    {
        let max_attempts = 1 + self.config.cluster.max_retries;
        let mut exclude: Vec<NodeId> = Vec::new();
        let mut attempts = 0usize;
        let mut last_error: Option<Error> = None;
        let mut node_limited: Option<vctts_core::limit::Refusal> = None;
        let mut waiting: Option<QueueTicket<'_>> = None;
        let queue_deadline = Instant::now() + self.config.limiter.queue_timeout.0;
        // Suspect nodes are avoided while another node is selectable.
        let mut avoid: Vec<NodeId> = self.suspects.list();
        loop {
            let mut skip = exclude.clone();
            skip.extend(avoid.iter().filter(|id| !exclude.contains(id)).cloned());
            let ctx = SelectContext {
                voice,
                exclude: &skip,
            };
            let lease = match self.registry.select(engine, &*self.policy(), &ctx) {
                Ok(l) => l,
                Err(_) if !avoid.is_empty() => {
                    avoid.clear();
                    continue;
                }
                Err(none) => {
                    if last_error.is_none() && self.nodes_full(engine, &exclude) {
                        // Ready but full: wait in the gateway's queue for a slot.
                        if waiting.is_none() {
                            waiting = Some(self.join_route_queue(engine)?);
                        }
                        if Instant::now() < queue_deadline {
                            tokio::time::sleep(QUEUE_POLL).await;
                            continue;
                        }
                        return Err(Error::Overloaded(format!(
                            "every ready {engine} node is busy and no slot came free within {:.0} s",
                            self.config.limiter.queue_timeout.0.as_secs_f64()
                        ))
                        .into());
                    }
                    if let Some(e) = last_error {
                        return Err(e.into());
                    }
                    if let Some(r) = node_limited {
                        self.metrics.rate_limited.inc(&[r.layer.as_str()]);
                        return Err(ApiError::rate_limited(RateLimitInfo {
                            layer: r.layer,
                            retry_after: r.retry_after,
                            limit_rpm: r.limit_rpm,
                            remaining: r.remaining,
                        }));
                    }
                    return Err(none.into());
                }
            };
            let id = lease.id().clone();
            if let Err(r) = self.limiter.check_node(id.as_str()) {
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
                    if e.retryable() && attempts < max_attempts {
                        tracing::warn!(engine = %engine, node_id = %id, error = %e,
                            "node call failed; retrying on another node");
                        self.metrics.failovers.inc(&[engine.as_str()]);
                        exclude.push(id);
                        last_error = Some(e);
                        continue;
                    }
                    return Err(e.into());
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
