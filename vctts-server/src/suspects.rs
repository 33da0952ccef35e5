//! [`Suspects`]: nodes that stalled on a request (stall detection, see
//! `routing.rs`), kept apart from the routing code so the gateway's state can
//! hold them without importing the routing module that uses the gateway.
//!
//! Invariant: a node is suspect from the stall until a heartbeat shows
//! progress (a request finished since the mark, or nothing in flight), or
//! until it leaves.

use parking_lot::Mutex;
use std::collections::HashMap;
use vctts_core::registry::{NodeId, NodeMetrics, Registry};

/// Nodes that stalled on a request, with what they had done by then.
#[derive(Debug, Default)]
pub struct Suspects {
    nodes: Mutex<HashMap<NodeId, u64>>,
}

impl Suspects {
    /// Marks `id` suspect; `requests_total` is what its last heartbeat said
    /// it had served.
    pub fn mark(&self, id: &NodeId, requests_total: u64) {
        let mut nodes = self.nodes.lock();
        if !nodes.contains_key(id) {
            tracing::warn!(node_id = %id, "node stalled on a request; new requests avoid it until it shows progress");
        }
        nodes.entry(id.clone()).or_insert(requests_total);
    }

    /// Reads a heartbeat of `id`: progress (a request finished since it was
    /// marked, or nothing in flight) clears the mark.
    pub fn heartbeat(&self, id: &NodeId, m: &NodeMetrics) {
        let mut nodes = self.nodes.lock();
        if let Some(before) = nodes.get(id) {
            if m.requests_total > *before || m.in_flight == 0 {
                nodes.remove(id);
                tracing::info!(node_id = %id, "suspect node shows progress again");
            }
        }
    }

    /// Forgets a node (it left).
    pub fn forget(&self, id: &NodeId) {
        self.nodes.lock().remove(id);
    }

    /// Whether `id` is suspect.
    pub fn contains(&self, id: &NodeId) -> bool {
        self.nodes.lock().contains_key(id)
    }

    /// The suspect nodes.
    pub fn list(&self) -> Vec<NodeId> {
        self.nodes.lock().keys().cloned().collect()
    }

    /// Marks `id` as stalled: suspect, with the requests its last heartbeat
    /// reported as the mark progress is measured from.
    pub fn stalled(&self, registry: &Registry, id: &NodeId) {
        let done = registry.node(id).map(|s| s.metrics.requests_total).unwrap_or(0);
        self.mark(id, done);
    }
}
