//! Voice affinity: consistent hashing with bounded loads (Mirrokni, Thorup
//! and Zadimoghaddam, 2018), so requests for one voice keep landing on the
//! node that has its profile cached, without overloading that node.
//!
//! Every node owns [`VIRTUAL_NODES`] points on a hash ring (by
//! [`stable_hash`] of its id, the same on every gateway). A voice hashes to a
//! point and takes the first node clockwise that is eligible and whose load
//! after taking the request stays within `⌈c · (m + 1) / n⌉` (`m` requests in
//! flight on the `n` eligible nodes, `c` the load factor, 1.25 by default).
//! So a voice keeps its node while that node is eligible and not more than
//! `c` times as loaded as the average; otherwise it walks on along the ring,
//! and comes back once the load evens out. Requests without a voice go to
//! [`PowerOfTwoChoices`].
//!
//! Invariants: the ring of a pool is built once per generation of the pool
//! and shared by all selections; a selection allocates nothing.

use super::SelectContext;
use super::{BalancePolicy, Candidates, POOL_SLOTS, PowerOfTwoChoices, stable_hash};
use crate::error::{Error, Result};
use parking_lot::RwLock;
use std::sync::Arc;

/// Points each node owns on the ring.
pub const VIRTUAL_NODES: usize = 64;

/// The default load factor `c`.
pub const DEFAULT_LOAD_FACTOR: f64 = 1.25;

#[derive(Debug)]
struct Ring {
    pool: usize,
    generation: u64,
    len: usize,
    /// (point, candidate index), sorted by point.
    points: Vec<(u64, u32)>,
}

impl Ring {
    fn build(c: &dyn Candidates) -> Self {
        let n = c.len();
        let mut points = Vec::with_capacity(n * VIRTUAL_NODES);
        for i in 0..n {
            let base = c.id_hash(i);
            for v in 0..VIRTUAL_NODES as u64 {
                points.push((
                    super::mix64(base ^ v.wrapping_mul(0x9e37_79b9_7f4a_7c15)),
                    i as u32,
                ));
            }
        }
        points.sort_unstable();
        Self {
            pool: c.pool(),
            generation: c.generation(),
            len: n,
            points,
        }
    }

    fn matches(&self, c: &dyn Candidates) -> bool {
        self.pool == c.pool() && self.generation == c.generation() && self.len == c.len()
    }
}

/// Consistent hashing with bounded loads, keyed by voice.
#[derive(Debug)]
pub struct VoiceAffinity {
    load_factor: f64,
    rings: [RwLock<Option<Arc<Ring>>>; POOL_SLOTS],
    fallback: PowerOfTwoChoices,
}

impl VoiceAffinity {
    /// Load factor 1.25.
    pub fn new() -> Self {
        Self::build(DEFAULT_LOAD_FACTOR)
    }

    /// A custom load factor `c` (finite, ≥ 1): a node may carry up to `c`
    /// times the average load before its voices move on.
    pub fn with_load_factor(c: f64) -> Result<Self> {
        if !c.is_finite() || c < 1.0 {
            return Err(Error::invalid(
                "load_factor",
                format!("must be a finite number of at least 1.0, got {c}"),
            ));
        }
        Ok(Self::build(c))
    }

    fn build(load_factor: f64) -> Self {
        Self {
            load_factor,
            rings: std::array::from_fn(|_| RwLock::new(None)),
            fallback: PowerOfTwoChoices::new(),
        }
    }

    /// The load factor `c`.
    pub fn load_factor(&self) -> f64 {
        self.load_factor
    }

    fn ring(&self, c: &dyn Candidates) -> Arc<Ring> {
        let slot = &self.rings[c.pool() % POOL_SLOTS];
        if let Some(r) = slot.read().as_ref().filter(|r| r.matches(c)) {
            return r.clone();
        }
        let ring = Arc::new(Ring::build(c));
        *slot.write() = Some(ring.clone());
        ring
    }

    /// The most a node may carry after taking one more request (a node is
    /// acceptable when `in_flight + 1 <= bound`, i.e. `in_flight < bound`).
    fn bound(&self, c: &dyn Candidates) -> Option<u64> {
        let (mut eligible, mut load) = (0u64, 0u64);
        for i in 0..c.len() {
            if c.eligible(i) {
                eligible += 1;
                load += c.in_flight(i) as u64;
            }
        }
        if eligible == 0 {
            return None;
        }
        Some((self.load_factor * (load + 1) as f64 / eligible as f64).ceil() as u64)
    }
}

impl Default for VoiceAffinity {
    fn default() -> Self {
        Self::new()
    }
}

impl BalancePolicy for VoiceAffinity {
    fn name(&self) -> &'static str {
        "voice_affinity"
    }

    fn pick(&self, c: &dyn Candidates, ctx: &SelectContext<'_>) -> Option<usize> {
        let Some(voice) = ctx.voice else {
            return self.fallback.pick(c, ctx);
        };
        let bound = self.bound(c)?;
        let ring = self.ring(c);
        let points = &ring.points;
        let start = points.partition_point(|&(p, _)| p < stable_hash(voice.as_bytes()));
        let n = points.len();
        for k in 0..n {
            let i = points[(start + k) % n].1 as usize;
            if i < c.len() && c.eligible(i) && (c.in_flight(i) as u64) < bound {
                return Some(i);
            }
        }
        // Unreachable with a consistent view (some eligible node is at or
        // below the average); a racing view falls back rather than failing.
        self.fallback.pick(c, ctx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::balance::testing::View;

    fn ctx(voice: &str) -> SelectContext<'_> {
        SelectContext {
            voice: Some(voice),
            ..SelectContext::default()
        }
    }

    #[test]
    fn a_voice_keeps_its_node() {
        let p = VoiceAffinity::new();
        let v = View::new(8);
        let first = p.pick(&v, &ctx("alice")).unwrap();
        for _ in 0..20 {
            assert_eq!(p.pick(&v, &ctx("alice")), Some(first));
        }
        // Different voices spread over several nodes.
        let mut used = std::collections::BTreeSet::new();
        for k in 0..64 {
            used.insert(p.pick(&v, &ctx(&format!("voice-{k}"))).unwrap());
        }
        assert!(used.len() >= 5, "{used:?}");
    }

    #[test]
    fn moves_on_when_overloaded_or_ineligible_and_comes_back() {
        let p = VoiceAffinity::new();
        let mut v = View::new(4);
        let home = p.pick(&v, &ctx("bob")).unwrap();
        // Home has 10 in flight, others none: bound = ceil(1.25 * 11 / 4) = 4.
        v.nodes[home].in_flight = 10;
        let away = p.pick(&v, &ctx("bob")).unwrap();
        assert_ne!(away, home);
        v.nodes[home].in_flight = 0;
        v.nodes[home].eligible = false;
        assert_ne!(p.pick(&v, &ctx("bob")).unwrap(), home);
        v.nodes[home].eligible = true;
        assert_eq!(p.pick(&v, &ctx("bob")), Some(home));
    }

    #[test]
    fn consistent_across_gateways_and_membership_changes() {
        let a = VoiceAffinity::new();
        let b = VoiceAffinity::new();
        let v = View::new(10);
        let mut moved = 0;
        let smaller = View::new(9); // n9 left
        for k in 0..200 {
            let voice = format!("v{k}");
            let pa = a.pick(&v, &ctx(&voice)).unwrap();
            assert_eq!(b.pick(&v, &ctx(&voice)), Some(pa));
            let ps = a.pick(&smaller, &ctx(&voice)).unwrap();
            if pa != 9 && ps != pa {
                moved += 1;
            }
        }
        assert_eq!(moved, 0, "only voices of the removed node move");
    }

    #[test]
    fn no_voice_uses_p2c_and_bad_factor_is_refused() {
        let p = VoiceAffinity::new();
        let mut v = View::new(2);
        v.nodes[0].latency = 500.0;
        v.nodes[1].latency = 5.0;
        assert_eq!(p.pick(&v, &SelectContext::default()), Some(1));
        assert!(VoiceAffinity::with_load_factor(0.9).is_err());
        assert!(VoiceAffinity::with_load_factor(f64::NAN).is_err());
        assert_eq!(VoiceAffinity::with_load_factor(2.0).unwrap().load_factor(), 2.0);
        let mut none = View::new(3);
        none.nodes.iter_mut().for_each(|n| n.eligible = false);
        assert_eq!(p.pick(&none, &ctx("x")), None);
    }
}
