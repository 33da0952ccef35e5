//! Round robin: every eligible node in turn.
//!
//! Invariant: the rotation remembers the last index it picked per pool and
//! continues after it, skipping ineligible nodes, so over a stable set of
//! eligible nodes the counts of any two differ by at most one (a skipped
//! node does not hand its turn to its neighbour twice).

use super::SelectContext;
use super::{BalancePolicy, Candidates, POOL_SLOTS};
use std::sync::atomic::{AtomicUsize, Ordering};

/// Each eligible node in turn.
#[derive(Debug)]
pub struct RoundRobin {
    /// Per pool slot: the next index to consider.
    next: [AtomicUsize; POOL_SLOTS],
}

impl RoundRobin {
    /// A rotation starting at the first node.
    pub fn new() -> Self {
        Self {
            next: std::array::from_fn(|_| AtomicUsize::new(0)),
        }
    }
}

impl Default for RoundRobin {
    fn default() -> Self {
        Self::new()
    }
}

impl BalancePolicy for RoundRobin {
    fn name(&self) -> &'static str {
        "round_robin"
    }

    fn pick(&self, c: &dyn Candidates, _ctx: &SelectContext<'_>) -> Option<usize> {
        let n = c.len();
        if n == 0 {
            return None;
        }
        let slot = &self.next[c.pool() % POOL_SLOTS];
        let mut start = slot.load(Ordering::Relaxed);
        loop {
            let found = (0..n).map(|k| (start + k) % n).find(|&i| c.eligible(i))?;
            match slot.compare_exchange_weak(start, found + 1, Ordering::Relaxed, Ordering::Relaxed) {
                Ok(_) => return Some(found),
                // Another selection moved the rotation: continue from there.
                Err(now) => start = now,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::balance::testing::View;

    #[test]
    fn cycles_and_skips_ineligible() {
        let rr = RoundRobin::new();
        let mut v = View::new(3);
        let ctx = SelectContext::default();
        let picks: Vec<_> = (0..6).map(|_| rr.pick(&v, &ctx).unwrap()).collect();
        assert_eq!(picks, [0, 1, 2, 0, 1, 2]);
        v.nodes[1].eligible = false;
        let picks: Vec<_> = (0..4).map(|_| rr.pick(&v, &ctx).unwrap()).collect();
        assert_eq!(picks, [0, 2, 0, 2]);
        v.nodes.iter_mut().for_each(|n| n.eligible = false);
        assert_eq!(rr.pick(&v, &ctx), None);
        assert_eq!(rr.pick(&View::new(0), &ctx), None);
    }

    #[test]
    fn shrinking_pool_stays_in_range() {
        let rr = RoundRobin::new();
        let ctx = SelectContext::default();
        let big = View::new(10);
        for _ in 0..9 {
            rr.pick(&big, &ctx);
        }
        let small = View::new(2);
        assert!(rr.pick(&small, &ctx).unwrap() < 2);
    }
}
