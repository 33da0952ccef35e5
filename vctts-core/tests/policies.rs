//! Property tests of the balancing policies, on a plain candidate view and
//! through the real registry.

use proptest::prelude::*;
use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use vctts_core::EngineKind;
use vctts_core::balance::{
    BalancePolicy, Candidates, LeastInFlight, PolicyKind, PowerOfTwoChoices, RoundRobin, VoiceAffinity,
    WeightedRoundRobin,
};
use vctts_core::clock::ManualClock;
use vctts_core::registry::{
    Lease, NodeId, NodeInfo, NodeMetrics, NodeState, Registry, RegistryConfig, SelectContext,
};

static GENERATION: AtomicU64 = AtomicU64::new(1);

#[derive(Debug, Clone)]
struct Node {
    id: NodeId,
    eligible: bool,
    in_flight: u32,
    capacity: u32,
    weight: u32,
    latency: f64,
}

/// A candidate view over plain data.
#[derive(Debug)]
struct View {
    nodes: Vec<Node>,
    generation: u64,
}

impl View {
    fn new(nodes: Vec<Node>) -> Self {
        Self {
            nodes,
            generation: GENERATION.fetch_add(1, Ordering::Relaxed),
        }
    }

    fn uniform(n: usize) -> Self {
        Self::new((0..n).map(|i| node(i, true, 0, 1, 100.0)).collect())
    }
}

fn node(i: usize, eligible: bool, in_flight: u32, weight: u32, latency: f64) -> Node {
    Node {
        id: NodeId::new(format!("node-{i}")),
        eligible,
        in_flight,
        capacity: u32::MAX,
        weight,
        latency,
    }
}

impl Candidates for View {
    fn len(&self) -> usize {
        self.nodes.len()
    }
    fn eligible(&self, i: usize) -> bool {
        self.nodes[i].eligible
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

fn policies(seed: u64) -> Vec<Box<dyn BalancePolicy>> {
    vec![
        Box::new(RoundRobin::new()),
        Box::new(WeightedRoundRobin::new()),
        Box::new(LeastInFlight::new()),
        Box::new(PowerOfTwoChoices::with_seed(seed)),
        Box::new(VoiceAffinity::new()),
    ]
}

fn arb_nodes(max: usize) -> impl Strategy<Value = Vec<Node>> {
    prop::collection::vec((any::<bool>(), 0u32..20, 1u32..10, 0.0f64..2000.0), 0..max).prop_map(|v| {
        v.into_iter()
            .enumerate()
            .map(|(i, (e, f, w, l))| node(i, e, f, w, l))
            .collect()
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, .. ProptestConfig::default() })]

    #[test]
    fn round_robin_is_fair(n in 1usize..20, picks in 0usize..300) {
        let rr = RoundRobin::new();
        let v = View::uniform(n);
        let mut counts = vec![0usize; n];
        for _ in 0..picks {
            counts[rr.pick(&v, &SelectContext::default()).unwrap()] += 1;
        }
        let (lo, hi) = (counts.iter().min().unwrap(), counts.iter().max().unwrap());
        prop_assert!(hi - lo <= 1, "{counts:?}");
    }

    #[test]
    fn round_robin_is_fair_among_eligible(eligible in prop::collection::vec(any::<bool>(), 1..20), picks in 0usize..300) {
        let rr = RoundRobin::new();
        let v = View::new(eligible.iter().enumerate().map(|(i, &e)| node(i, e, 0, 1, 1.0)).collect());
        let mut counts = vec![0usize; eligible.len()];
        for _ in 0..picks {
            match rr.pick(&v, &SelectContext::default()) {
                Some(i) => counts[i] += 1,
                None => prop_assert!(eligible.iter().all(|e| !e)),
            }
        }
        let used: Vec<_> = counts.iter().zip(&eligible).filter(|(_, e)| **e).map(|(c, _)| *c).collect();
        if let (Some(lo), Some(hi)) = (used.iter().min(), used.iter().max()) {
            prop_assert!(hi - lo <= 1, "{counts:?}");
        }
    }

    #[test]
    fn weighted_matches_weights(weights in prop::collection::vec(1u32..10, 1..8), rounds in 1usize..5, extra in 0usize..40) {
        let p = WeightedRoundRobin::new();
        let v = View::new(weights.iter().enumerate().map(|(i, &w)| node(i, true, 0, w, 1.0)).collect());
        let total: u32 = weights.iter().sum();
        let k = total as usize * rounds + extra;
        let mut counts = vec![0usize; weights.len()];
        for step in 1..=k {
            counts[p.pick(&v, &SelectContext::default()).unwrap()] += 1;
            if step % total as usize == 0 {
                // Exact after every full period.
                for (c, w) in counts.iter().zip(&weights) {
                    prop_assert_eq!(*c, *w as usize * step / total as usize);
                }
            }
        }
        // Within one pick of the ideal share at any point.
        for (c, w) in counts.iter().zip(&weights) {
            let ideal = k as f64 * *w as f64 / total as f64;
            prop_assert!((*c as f64 - ideal).abs() <= 1.0, "{counts:?} vs weights {weights:?} after {k}");
        }
    }

    #[test]
    fn least_in_flight_never_picks_a_busier_node(nodes in arb_nodes(30)) {
        let p = LeastInFlight::new();
        let v = View::new(nodes);
        match p.pick(&v, &SelectContext::default()) {
            None => prop_assert!(v.nodes.iter().all(|n| !n.eligible)),
            Some(i) => {
                prop_assert!(v.nodes[i].eligible);
                for n in v.nodes.iter().filter(|n| n.eligible) {
                    prop_assert!(v.nodes[i].in_flight <= n.in_flight);
                }
            }
        }
    }

    #[test]
    fn p2c_prefers_the_faster_of_two(seed in any::<u64>(), fast in 1.0f64..1000.0, slower_by in 1.0f64..1000.0, load in 0u32..10, flip in any::<bool>()) {
        let p = PowerOfTwoChoices::with_seed(seed);
        let mut nodes = vec![node(0, true, load, 1, fast), node(1, true, load, 1, fast + slower_by)];
        if flip {
            nodes.swap(0, 1);
        }
        let fast_index = if flip { 1 } else { 0 };
        let v = View::new(nodes);
        for _ in 0..10 {
            prop_assert_eq!(p.pick(&v, &SelectContext::default()), Some(fast_index));
        }
    }

    #[test]
    fn affinity_is_stable_and_bounded(nodes in arb_nodes(24), voice in "[a-z0-9]{1,12}") {
        let p = VoiceAffinity::new();
        let v = View::new(nodes);
        let ctx = SelectContext { voice: Some(&voice), ..SelectContext::default() };
        let first = p.pick(&v, &ctx);
        for _ in 0..5 {
            prop_assert_eq!(p.pick(&v, &ctx), first, "same loads, same node");
        }
        let eligible: Vec<_> = v.nodes.iter().filter(|n| n.eligible).collect();
        match first {
            None => prop_assert!(eligible.is_empty()),
            Some(i) => {
                prop_assert!(v.nodes[i].eligible);
                let m: u64 = eligible.iter().map(|n| n.in_flight as u64).sum();
                let bound = (p.load_factor() * (m + 1) as f64 / eligible.len() as f64).ceil() as u64;
                prop_assert!((v.nodes[i].in_flight as u64) < bound,
                    "load {} over bound {bound}", v.nodes[i].in_flight);
            }
        }
        // A second gateway with its own policy agrees.
        prop_assert_eq!(VoiceAffinity::new().pick(&v, &ctx), first);
    }

    #[test]
    fn every_policy_returns_only_eligible(nodes in arb_nodes(40), seed in any::<u64>(), voice in prop::option::of("[a-z]{1,8}")) {
        let v = View::new(nodes);
        let ctx = SelectContext { voice: voice.as_deref(), ..SelectContext::default() };
        let any_eligible = v.nodes.iter().any(|n| n.eligible);
        for p in policies(seed) {
            for _ in 0..5 {
                match p.pick(&v, &ctx) {
                    Some(i) => prop_assert!(i < v.nodes.len() && v.nodes[i].eligible, "{} picked {i}", p.name()),
                    None => prop_assert!(!any_eligible, "{} found nothing", p.name()),
                }
            }
        }
    }
}

/// One node of a random registry scenario.
#[derive(Debug, Clone)]
struct Spec {
    state: NodeState,
    capacity: u32,
    held: u32,
    excluded: bool,
    silent: bool,
}

fn arb_spec() -> impl Strategy<Value = Spec> {
    (
        prop::sample::select(vec![
            NodeState::Ready,
            NodeState::Ready,
            NodeState::Ready,
            NodeState::Busy,
            NodeState::Standby,
            NodeState::Loading,
            NodeState::Error,
            NodeState::Stopped,
            NodeState::Offline,
        ]),
        1u32..4,
        0u32..4,
        prop::bool::weighted(0.2),
        prop::bool::weighted(0.2),
    )
        .prop_map(|(state, capacity, held, excluded, silent)| Spec {
            state,
            capacity,
            held,
            excluded,
            silent,
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, .. ProptestConfig::default() })]

    /// Through the registry: no policy ever leases a node that is offline
    /// (by state or by missed heartbeats), stopped, busy, not ready, full or
    /// excluded, and selection fails only when no node is selectable.
    #[test]
    fn registry_never_leases_an_ineligible_node(specs in prop::collection::vec(arb_spec(), 0..16), seed in any::<u64>(), kind in prop::sample::select(PolicyKind::ALL.to_vec()), voice in prop::option::of("[a-z]{1,6}")) {
        let clock = ManualClock::new();
        let config = RegistryConfig::default();
        let dead = config.dead_threshold;
        let r = Registry::new(config, Arc::new(clock.clone()));
        let mut ids = Vec::new();
        for (i, s) in specs.iter().enumerate() {
            let mut info = NodeInfo::new(format!("n{i:02}"), EngineKind::Xtts, format!("http://n{i}:8001"));
            info.capacity = s.capacity;
            ids.push(r.register(info, NodeState::Ready));
        }
        // Hold leases to fill nodes partly or fully (all nodes are ready and
        // empty now, so least-in-flight with exclusions reaches each one).
        let mut held: Vec<Lease> = Vec::new();
        let filler = LeastInFlight::new();
        for (i, s) in specs.iter().enumerate() {
            let others: Vec<NodeId> = ids.iter().filter(|id| **id != ids[i]).cloned().collect();
            let ctx = SelectContext { voice: None, exclude: &others };
            for _ in 0..s.held.min(s.capacity) {
                held.push(r.select(EngineKind::Xtts, &filler, &ctx).unwrap());
            }
        }
        // Silent nodes miss their heartbeats and go offline in the sweep.
        clock.advance(dead);
        for (s, id) in specs.iter().zip(&ids) {
            if !s.silent {
                r.heartbeat(id, s.state, NodeMetrics::default()).unwrap();
            }
        }
        let offline: HashSet<_> = r.sweep().into_iter().collect();
        let excluded: Vec<NodeId> = specs.iter().zip(&ids).filter(|(s, _)| s.excluded).map(|(_, id)| id.clone()).collect();
        let policy = match kind {
            PolicyKind::PowerOfTwo => Arc::new(PowerOfTwoChoices::with_seed(seed)) as Arc<dyn BalancePolicy>,
            other => other.build(),
        };
        let ctx = SelectContext { voice: voice.as_deref(), exclude: &excluded };
        let mut in_flight: BTreeMap<NodeId, u32> = BTreeMap::new();
        for (s, id) in specs.iter().zip(&ids) {
            in_flight.insert(id.clone(), s.held.min(s.capacity));
        }
        let selectable = |in_flight: &BTreeMap<NodeId, u32>| {
            specs.iter().zip(&ids).any(|(s, id)| {
                s.state == NodeState::Ready && !s.silent && !s.excluded && in_flight[id] < s.capacity
            })
        };
        let mut leases = Vec::new();
        for _ in 0..(specs.len() * 4 + 1) {
            match r.select(EngineKind::Xtts, policy.as_ref(), &ctx) {
                Ok(lease) => {
                    let i = ids.iter().position(|id| id == lease.id()).unwrap();
                    let s = &specs[i];
                    prop_assert_eq!(s.state, NodeState::Ready, "{} leased a {} node", kind, s.state);
                    prop_assert!(!s.silent && !offline.contains(lease.id()), "{} leased an offline node", kind);
                    prop_assert!(!s.excluded, "{} leased an excluded node", kind);
                    let n = in_flight.get_mut(lease.id()).unwrap();
                    prop_assert!(*n < s.capacity, "{} leased a full node", kind);
                    *n += 1;
                    prop_assert_eq!(r.node(lease.id()).unwrap().in_flight, *n);
                    leases.push(lease);
                }
                Err(e) => {
                    prop_assert_eq!(e.code(), "no_node_available");
                    prop_assert!(!selectable(&in_flight), "{} found nothing but a node was selectable", kind);
                }
            }
        }
        drop(leases);
        drop(held);
        for id in &ids {
            prop_assert_eq!(r.node(id).unwrap().in_flight, 0, "leases released their slots");
        }
    }
}

#[test]
fn registry_select_with_affinity_keeps_voice_on_node() {
    let clock = ManualClock::new();
    let r = Registry::new(RegistryConfig::default(), Arc::new(clock));
    for i in 0..6 {
        let mut info = NodeInfo::new(
            format!("ov-{i}"),
            EngineKind::OpenVoice,
            format!("http://ov{i}:8002"),
        );
        info.capacity = 100;
        r.register(info, NodeState::Ready);
    }
    let p = VoiceAffinity::new();
    let ctx = SelectContext {
        voice: Some("narrator"),
        ..SelectContext::default()
    };
    let home = r.select(EngineKind::OpenVoice, &p, &ctx).unwrap().id().clone();
    for _ in 0..50 {
        let lease = r.select(EngineKind::OpenVoice, &p, &ctx).unwrap();
        assert_eq!(lease.id(), &home);
        lease.finish(vctts_core::registry::Outcome::Success, Duration::from_millis(10));
    }
    // Membership changes elsewhere rebuild the ring but keep the voice home.
    r.register(
        NodeInfo::new("ov-new", EngineKind::OpenVoice, "http://ovnew:8002"),
        NodeState::Ready,
    );
    let now_home = r.select(EngineKind::OpenVoice, &p, &ctx).unwrap().id().clone();
    assert!(now_home == home || now_home.as_str() == "ov-new");
}
