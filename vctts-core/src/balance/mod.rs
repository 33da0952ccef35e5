//! Balancing policies: which of an engine's nodes gets the next request.
//!
//! The [`Registry`](crate::registry::Registry) hands a policy a read-only,
//! allocation-free view of one engine's nodes ([`Candidates`]); the policy
//! returns the index of an eligible one, or `None`. A candidate is eligible
//! when it is ready, below its capacity, admitted by its circuit breaker and
//! not excluded by the caller; policies must only return eligible indices,
//! and the registry re-checks (and retries) anyway.
//!
//! The policies (one file each):
//! - [`RoundRobin`]: each eligible node in turn;
//! - [`WeightedRoundRobin`]: smooth weighted round robin (nginx);
//! - [`LeastInFlight`]: the node with the fewest requests in flight;
//! - [`PowerOfTwoChoices`] (the default): two random nodes, the one with the
//!   lower expected latency (EWMA latency × load) wins;
//! - [`VoiceAffinity`]: consistent hashing with bounded loads, so a voice's
//!   cached profile stays warm on one node.
//!
//! Policies keep their own small state (rotation, weights, hash rings) per
//! *pool* ([`Candidates::pool`]) and rebuild it when the pool's
//! [`Candidates::generation`] changes; they are `Send + Sync` and shared by
//! all selections.

mod affinity;
mod least_in_flight;
mod p2c;
mod round_robin;
mod weighted;

pub use affinity::VoiceAffinity;
pub use least_in_flight::LeastInFlight;
pub use p2c::PowerOfTwoChoices;
pub use round_robin::RoundRobin;
pub use weighted::WeightedRoundRobin;

use crate::error::Error;
use crate::registry::node::NodeId;
use serde::{Deserialize, Serialize};
use std::fmt::Debug;
use std::sync::Arc;

/// What a selection is for.
#[derive(Debug, Clone, Copy, Default)]
pub struct SelectContext<'a> {
    /// The voice of the request (for voice affinity).
    pub voice: Option<&'a str>,
    /// Nodes not to pick (e.g. ones that already failed this request).
    pub exclude: &'a [NodeId],
}

/// A read-only view of one pool of nodes, as a policy sees it. Indices run
/// from 0 to `len() - 1`; their order is fixed for one
/// [`generation`](Candidates::generation).
pub trait Candidates {
    /// Number of nodes in the pool (eligible or not).
    fn len(&self) -> usize;
    /// Whether the pool is empty.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Whether node `i` may take a request now.
    fn eligible(&self, i: usize) -> bool;
    /// Requests the gateway has in flight on node `i`.
    fn in_flight(&self, i: usize) -> u32;
    /// Requests node `i` takes at once.
    fn capacity(&self, i: usize) -> u32;
    /// Node `i`'s weight (≥ 1) for weighted policies.
    fn weight(&self, i: usize) -> u32;
    /// Node `i`'s latency EWMA in milliseconds (0 when nothing is known yet).
    fn latency_ewma_ms(&self, i: usize) -> f64;
    /// Node `i`'s id.
    fn id(&self, i: usize) -> &NodeId;
    /// A stable hash of node `i`'s id (see [`stable_hash`]); views may
    /// precompute it.
    fn id_hash(&self, i: usize) -> u64 {
        stable_hash(self.id(i).as_str().as_bytes())
    }
    /// Identifies the pool (the registry uses one pool per engine), so a
    /// policy shared by several pools keeps separate state for each.
    fn pool(&self) -> usize {
        0
    }
    /// Changes whenever the set or order of nodes in this view changes (never
    /// for state or load changes); unique across pools. Policies cache
    /// per-generation state (rings, weights) under it.
    fn generation(&self) -> u64;
}

/// A way to pick a node.
pub trait BalancePolicy: Send + Sync + Debug {
    /// Stable name (as accepted by [`PolicyKind`]'s `FromStr`).
    fn name(&self) -> &'static str;
    /// The index of an eligible candidate, or `None` when none is eligible.
    fn pick(&self, candidates: &dyn Candidates, ctx: &SelectContext<'_>) -> Option<usize>;
}

/// The policies, by name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub enum PolicyKind {
    /// [`RoundRobin`].
    #[serde(rename = "round_robin")]
    RoundRobin,
    /// [`WeightedRoundRobin`].
    #[serde(rename = "weighted_round_robin")]
    WeightedRoundRobin,
    /// [`LeastInFlight`].
    #[serde(rename = "least_inflight")]
    LeastInFlight,
    /// [`PowerOfTwoChoices`], the default.
    #[default]
    #[serde(rename = "p2c")]
    PowerOfTwo,
    /// [`VoiceAffinity`] with the default load factor.
    #[serde(rename = "voice_affinity")]
    VoiceAffinity,
}

impl PolicyKind {
    /// All kinds, in a fixed order.
    pub const ALL: [PolicyKind; 5] = [
        PolicyKind::RoundRobin,
        PolicyKind::WeightedRoundRobin,
        PolicyKind::LeastInFlight,
        PolicyKind::PowerOfTwo,
        PolicyKind::VoiceAffinity,
    ];

    /// The canonical name.
    pub fn as_str(self) -> &'static str {
        match self {
            PolicyKind::RoundRobin => "round_robin",
            PolicyKind::WeightedRoundRobin => "weighted_round_robin",
            PolicyKind::LeastInFlight => "least_inflight",
            PolicyKind::PowerOfTwo => "p2c",
            PolicyKind::VoiceAffinity => "voice_affinity",
        }
    }

    /// A new policy of this kind with default settings.
    pub fn build(&self) -> Arc<dyn BalancePolicy> {
        match self {
            PolicyKind::RoundRobin => Arc::new(RoundRobin::new()),
            PolicyKind::WeightedRoundRobin => Arc::new(WeightedRoundRobin::new()),
            PolicyKind::LeastInFlight => Arc::new(LeastInFlight::new()),
            PolicyKind::PowerOfTwo => Arc::new(PowerOfTwoChoices::new()),
            PolicyKind::VoiceAffinity => Arc::new(VoiceAffinity::new()),
        }
    }
}

impl std::fmt::Display for PolicyKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for PolicyKind {
    type Err = Error;
    /// Accepts the canonical names and common spellings (any case, `-` for
    /// `_`, `least_in_flight`, `power_of_two`, `affinity`, ...).
    fn from_str(s: &str) -> Result<Self, Error> {
        let norm = s.trim().to_ascii_lowercase().replace('-', "_");
        Ok(match norm.as_str() {
            "round_robin" | "roundrobin" | "rr" => PolicyKind::RoundRobin,
            "weighted_round_robin" | "weighted" | "wrr" => PolicyKind::WeightedRoundRobin,
            "least_inflight" | "least_in_flight" | "least_connections" | "least" => PolicyKind::LeastInFlight,
            "p2c" | "power_of_two" | "power_of_two_choices" => PolicyKind::PowerOfTwo,
            "voice_affinity" | "affinity" | "consistent_hash" => PolicyKind::VoiceAffinity,
            _ => {
                return Err(Error::invalid(
                    "policy",
                    format!(
                        "unknown balancing policy {s:?} (known: round_robin, weighted_round_robin, \
                         least_inflight, p2c, voice_affinity)"
                    ),
                ));
            }
        })
    }
}

pub(crate) use crate::hash::mix64;
/// The stable hash of voice ids on the hash rings (see [`crate::hash`]).
pub use crate::hash::stable_hash;

/// How many pools a policy keeps separate rotation state for (pools beyond
/// share slots modulo this).
pub(crate) const POOL_SLOTS: usize = 8;

#[cfg(test)]
pub(crate) mod testing {
    //! A plain in-memory [`Candidates`] for unit tests.
    use super::*;
    use std::sync::atomic::{AtomicU64, Ordering};

    static GENERATION: AtomicU64 = AtomicU64::new(1);

    #[derive(Debug, Clone)]
    pub(crate) struct Node {
        pub(crate) id: NodeId,
        pub(crate) eligible: bool,
        pub(crate) in_flight: u32,
        pub(crate) capacity: u32,
        pub(crate) weight: u32,
        pub(crate) latency: f64,
    }

    #[derive(Debug)]
    pub(crate) struct View {
        pub(crate) nodes: Vec<Node>,
        pub(crate) generation: u64,
    }

    impl View {
        pub(crate) fn new(n: usize) -> Self {
            let nodes = (0..n)
                .map(|i| Node {
                    id: NodeId::new(format!("n{i}")),
                    eligible: true,
                    in_flight: 0,
                    capacity: 1000,
                    weight: 1,
                    latency: 100.0,
                })
                .collect();
            Self {
                nodes,
                generation: GENERATION.fetch_add(1, Ordering::Relaxed),
            }
        }
    }

    impl Candidates for View {
        fn len(&self) -> usize {
            self.nodes.len()
        }
        fn eligible(&self, i: usize) -> bool {
            self.nodes[i].eligible && self.nodes[i].in_flight < self.nodes[i].capacity
        }
        fn in_flight(&self, i: usize) -> u32 {
            self.nodes[i].in_flight
        }
        fn capacity(&self, i: usize) -> u32 {
            self.nodes[i].capacity
        }
        fn weight(&self, i: usize) -> u32 {
            self.nodes[i].weight
        }
        fn latency_ewma_ms(&self, i: usize) -> f64 {
            self.nodes[i].latency
        }
        fn id(&self, i: usize) -> &NodeId {
            &self.nodes[i].id
        }
        fn generation(&self) -> u64 {
            self.generation
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policy_kind_names_round_trip() {
        for k in PolicyKind::ALL {
            assert_eq!(k.as_str().parse::<PolicyKind>().unwrap(), k);
            assert_eq!(serde_json::to_string(&k).unwrap(), format!("\"{k}\""));
            assert_eq!(
                serde_json::from_str::<PolicyKind>(&format!("\"{k}\"")).unwrap(),
                k
            );
            assert_eq!(k.build().name(), k.as_str());
        }
        assert_eq!(PolicyKind::default(), PolicyKind::PowerOfTwo);
        assert_eq!(
            "Least-In-Flight".parse::<PolicyKind>().unwrap(),
            PolicyKind::LeastInFlight
        );
        let e = "random".parse::<PolicyKind>().unwrap_err();
        assert_eq!(e.code(), "invalid_input");
        assert!(e.to_string().contains("p2c"));
    }

    #[test]
    fn stable_hash_is_fixed() {
        // Pinned values: changing the hash would move every voice.
        // (computed independently from the FNV-1a and SplitMix64 definitions)
        assert_eq!(stable_hash(b""), 0xf52a_15e9_a9b5_e89b);
        assert_eq!(stable_hash(b"alice"), 0xc5d1_556d_6677_4a5c);
        assert_ne!(stable_hash(b"alice"), stable_hash(b"alicf"));
    }
}
