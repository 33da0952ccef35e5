//! A [`Lease`]: one request's claim on a node picked by the registry.
//!
//! Invariants: a lease holds one of the node's in-flight slots from
//! selection until it is finished or dropped, and possibly a half-open probe
//! slot of the node's breaker. [`Lease::finish`] records the outcome (into
//! the breaker, the counters and, for successes, the latency EWMA); dropping
//! a lease without finishing it releases both slots and records nothing, so
//! an abandoned request (client gone, gateway shutting down) never counts
//! against the node.

use super::node::{NodeEntry, NodeId, NodeInfo};
use crate::breaker::{BreakerState, BreakerTicket};
use std::sync::Arc;
use std::time::Duration;

/// How a request on a leased node ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Outcome {
    /// It succeeded.
    Success,
    /// The node failed it (unreachable, inference error, timeout): counts
    /// against the node's breaker.
    Failure,
    /// The request itself was bad (a client error): not the node's fault,
    /// counted as a request but not against the node.
    Rejected,
}

/// One request's claim on a node.
#[derive(Debug)]
pub struct Lease {
    entry: Arc<NodeEntry>,
    ticket: Option<BreakerTicket>,
}

impl Lease {
    pub(crate) fn new(entry: Arc<NodeEntry>, ticket: BreakerTicket) -> Self {
        Self {
            entry,
            ticket: Some(ticket),
        }
    }

    /// The node.
    pub fn node(&self) -> &NodeInfo {
        &self.entry.info
    }

    /// The node's id.
    pub fn id(&self) -> &NodeId {
        self.entry.id()
    }

    /// Whether this request is a circuit-breaker probe of a recovering node.
    pub fn is_probe(&self) -> bool {
        self.ticket.is_some_and(|t| t.is_probe())
    }

    /// Records how the request ended and how long it took, and releases the
    /// node's slot. Latency feeds the EWMA for successes; a failure can only
    /// raise it (a fast failure must not make a node look fast); a rejected
    /// request leaves it alone.
    pub fn finish(mut self, outcome: Outcome, latency: Duration) {
        let Some(ticket) = self.ticket.take() else { return };
        let e = &self.entry;
        let changed = match outcome {
            Outcome::Success => {
                e.record(Some(latency), false);
                e.breaker.record_ticket(ticket, true)
            }
            Outcome::Failure => {
                e.record(Some(latency), true);
                e.breaker.record_ticket(ticket, false)
            }
            Outcome::Rejected => {
                e.record(None, false);
                e.breaker.cancel(ticket);
                None
            }
        };
        match changed {
            Some(BreakerState::Open) => tracing::warn!(
                node_id = %e.id(),
                engine = %e.info.engine,
                "circuit breaker opened; the node gets no requests until the cool-down ends"
            ),
            Some(BreakerState::Closed) => {
                tracing::info!(node_id = %e.id(), engine = %e.info.engine, "circuit breaker closed")
            }
            _ => {}
        }
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        if let Some(ticket) = self.ticket.take() {
            self.entry.breaker.cancel(ticket);
        }
        self.entry.release();
    }
}
