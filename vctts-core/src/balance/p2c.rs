//! Power of two choices over expected latency: draw two distinct eligible
//! nodes at random and take the one with the lower score
//! `(latency EWMA + 1 ms) × (in flight + 1)`, i.e. latency weighted by load.
//!
//! Invariants: the common case draws two indices and allocates nothing; the
//! draw is uniform over the pool and retried a few times when it lands on
//! ineligible nodes, then falls back to a scan from a random offset, so a
//! mostly-unavailable pool still finds its eligible nodes. The random source
//! is a lock-free SplitMix64 sequence: seed it ([`PowerOfTwoChoices::with_seed`])
//! for reproducible tests. A node with no latency sample yet scores as a
//! 0 ms node, so new nodes get traffic (and samples) soon; its load factor
//! still spreads requests.

use super::SelectContext;
use super::{BalancePolicy, Candidates, mix64};
use std::sync::atomic::{AtomicU64, Ordering};

/// Random draws before falling back to a scan.
const DRAWS: usize = 8;

/// Power of two choices (the default policy).
#[derive(Debug)]
pub struct PowerOfTwoChoices {
    state: AtomicU64,
}

impl PowerOfTwoChoices {
    /// A policy seeded from the operating system's randomness.
    pub fn new() -> Self {
        Self::with_seed(rand::random())
    }

    /// A policy whose draws follow from `seed`.
    pub fn with_seed(seed: u64) -> Self {
        Self {
            state: AtomicU64::new(seed),
        }
    }

    fn next(&self) -> u64 {
        mix64(self.state.fetch_add(0x9e37_79b9_7f4a_7c15, Ordering::Relaxed))
    }

    /// A uniform index below `n` (n > 0).
    fn below(&self, n: usize) -> usize {
        ((self.next() as u128 * n as u128) >> 64) as usize
    }

    /// The expected cost of sending one more request to `i`.
    pub fn score(c: &dyn Candidates, i: usize) -> f64 {
        let latency = c.latency_ewma_ms(i);
        let latency = if latency.is_finite() && latency > 0.0 {
            latency
        } else {
            0.0
        };
        (latency + 1.0) * (c.in_flight(i) as f64 + 1.0)
    }

    fn better(&self, c: &dyn Candidates, a: usize, b: usize) -> usize {
        let (sa, sb) = (Self::score(c, a), Self::score(c, b));
        if sa < sb {
            a
        } else if sb < sa {
            b
        } else if c.in_flight(a) != c.in_flight(b) {
            if c.in_flight(a) < c.in_flight(b) { a } else { b }
        } else if self.next() & 1 == 0 {
            a
        } else {
            b
        }
    }
}

impl Default for PowerOfTwoChoices {
    fn default() -> Self {
        Self::new()
    }
}

impl BalancePolicy for PowerOfTwoChoices {
    fn name(&self) -> &'static str {
        "p2c"
    }

    fn pick(&self, c: &dyn Candidates, _ctx: &SelectContext<'_>) -> Option<usize> {
        let n = c.len();
        match n {
            0 => return None,
            1 => return c.eligible(0).then_some(0),
            _ => {}
        }
        let mut first: Option<usize> = None;
        for _ in 0..DRAWS {
            let i = self.below(n);
            if first == Some(i) || !c.eligible(i) {
                continue;
            }
            match first {
                None => first = Some(i),
                Some(f) => return Some(self.better(c, f, i)),
            }
        }
        let start = self.below(n);
        for k in 0..n {
            let i = (start + k) % n;
            if first == Some(i) || !c.eligible(i) {
                continue;
            }
            match first {
                None => first = Some(i),
                Some(f) => return Some(self.better(c, f, i)),
            }
        }
        first
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::balance::testing::View;

    #[test]
    fn prefers_lower_latency_times_load() {
        let p = PowerOfTwoChoices::with_seed(7);
        let ctx = SelectContext::default();
        let mut v = View::new(2);
        v.nodes[0].latency = 300.0;
        v.nodes[1].latency = 100.0;
        for _ in 0..50 {
            assert_eq!(p.pick(&v, &ctx), Some(1));
        }
        // Three in flight on the fast node: 101 × 4 > 301 × 1.
        v.nodes[1].in_flight = 3;
        assert_eq!(p.pick(&v, &ctx), Some(0));
    }

    #[test]
    fn finds_the_few_eligible_nodes_in_a_large_pool() {
        let p = PowerOfTwoChoices::with_seed(1);
        let ctx = SelectContext::default();
        let mut v = View::new(1000);
        v.nodes.iter_mut().for_each(|n| n.eligible = false);
        assert_eq!(p.pick(&v, &ctx), None);
        v.nodes[777].eligible = true;
        assert_eq!(p.pick(&v, &ctx), Some(777));
        v.nodes[3].eligible = true;
        v.nodes[3].latency = 1.0;
        assert_eq!(p.pick(&v, &ctx), Some(3));
    }

    #[test]
    fn same_seed_same_picks_and_spread_over_equal_nodes() {
        let ctx = SelectContext::default();
        let v = View::new(10);
        let a = PowerOfTwoChoices::with_seed(42);
        let b = PowerOfTwoChoices::with_seed(42);
        let pa: Vec<_> = (0..100).map(|_| a.pick(&v, &ctx).unwrap()).collect();
        let pb: Vec<_> = (0..100).map(|_| b.pick(&v, &ctx).unwrap()).collect();
        assert_eq!(pa, pb);
        let mut seen = [0; 10];
        pa.iter().for_each(|&i| seen[i] += 1);
        assert!(seen.iter().all(|&s| s > 0), "{seen:?}");
    }
}
