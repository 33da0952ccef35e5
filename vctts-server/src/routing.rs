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
//! - when no node is selectable the answer is `no_node_available` naming the
//!   engine (or, if every node was skipped by its rate limit, `rate_limited`
//!   at the node layer).

use crate::cluster::NodeApi;
use crate::error::{ApiError, ApiResult, RateLimitInfo};
use crate::gateway::Gateway;
use std::future::Future;
use std::sync::Arc;
use std::time::Instant;
use vctts_core::registry::{Lease, NodeId, Outcome, SelectContext};
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

impl Gateway {
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
        loop {
            let ctx = SelectContext {
                voice,
                exclude: &exclude,
            };
            let lease = match self.registry.select(engine, &*self.policy(), &ctx) {
                Ok(l) => l,
                Err(none) => {
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
