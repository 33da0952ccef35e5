//! Least in-flight: the eligible node with the fewest requests in flight.
//!
//! Ties go to the node with the most free capacity, then rotate (the scan
//! starts one node further each time), so equal nodes share the load rather
//! than the first one taking it all. Invariant: the pick never has more in
//! flight than any other eligible node.

use super::SelectContext;
use super::{BalancePolicy, Candidates, POOL_SLOTS};
use std::sync::atomic::{AtomicUsize, Ordering};

/// The eligible node with the fewest requests in flight.
#[derive(Debug)]
pub struct LeastInFlight {
    offset: [AtomicUsize; POOL_SLOTS],
}

impl LeastInFlight {
    /// A new policy.
    pub fn new() -> Self {
        Self {
            offset: std::array::from_fn(|_| AtomicUsize::new(0)),
        }
    }
}

impl Default for LeastInFlight {
    fn default() -> Self {
        Self::new()
    }
}

impl BalancePolicy for LeastInFlight {
    fn name(&self) -> &'static str {
        "least_inflight"
    }

    fn pick(&self, c: &dyn Candidates, _ctx: &SelectContext<'_>) -> Option<usize> {
        let n = c.len();
        if n == 0 {
            return None;
        }
        let start = self.offset[c.pool() % POOL_SLOTS].fetch_add(1, Ordering::Relaxed) % n;
        let mut best: Option<(usize, u32, u32)> = None;
        for k in 0..n {
            let i = (start + k) % n;
            if !c.eligible(i) {
                continue;
            }
            let load = c.in_flight(i);
            let free = c.capacity(i).saturating_sub(load);
            let better = match best {
                None => true,
                Some((_, bl, bf)) => load < bl || (load == bl && free > bf),
            };
            if better {
                best = Some((i, load, free));
            }
        }
        best.map(|(i, _, _)| i)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::balance::testing::View;

    #[test]
    fn picks_least_loaded_and_rotates_ties() {
        let p = LeastInFlight::new();
        let ctx = SelectContext::default();
        let mut v = View::new(3);
        v.nodes[0].in_flight = 3;
        v.nodes[1].in_flight = 1;
        v.nodes[2].in_flight = 2;
        assert_eq!(p.pick(&v, &ctx), Some(1));
        v.nodes[1].eligible = false;
        assert_eq!(p.pick(&v, &ctx), Some(2));
        let even = View::new(4);
        let mut seen = [0; 4];
        for _ in 0..8 {
            seen[p.pick(&even, &ctx).unwrap()] += 1;
        }
        assert_eq!(seen, [2, 2, 2, 2]);
    }

    #[test]
    fn tie_prefers_free_capacity() {
        let p = LeastInFlight::new();
        let mut v = View::new(2);
        v.nodes[0].capacity = 2;
        v.nodes[1].capacity = 8;
        for _ in 0..4 {
            assert_eq!(p.pick(&v, &SelectContext::default()), Some(1));
        }
    }
}
