//! Smooth weighted round robin (nginx's algorithm): over any run of
//! `W = Σ weights` picks among a stable set of eligible nodes, node `i` is
//! picked exactly `weight(i)` times, and the picks are spread out rather than
//! bunched (weights 5, 1, 1 give `a a b a c a a`, not `a a a a a b c`).
//!
//! Each pick adds every eligible node's weight to its running score, picks
//! the highest score and subtracts the total weight from it. Ineligible
//! nodes keep their score. The scores belong to one generation of the pool
//! and are reset when its membership changes.

use super::SelectContext;
use super::{BalancePolicy, Candidates, POOL_SLOTS};
use parking_lot::Mutex;

/// Smooth weighted round robin.
#[derive(Debug)]
pub struct WeightedRoundRobin {
    slots: [Mutex<Scores>; POOL_SLOTS],
}

#[derive(Debug, Default)]
struct Scores {
    pool: usize,
    generation: u64,
    current: Vec<i64>,
}

impl WeightedRoundRobin {
    /// A new policy.
    pub fn new() -> Self {
        Self {
            slots: std::array::from_fn(|_| Mutex::new(Scores::default())),
        }
    }
}

impl Default for WeightedRoundRobin {
    fn default() -> Self {
        Self::new()
    }
}

impl BalancePolicy for WeightedRoundRobin {
    fn name(&self) -> &'static str {
        "weighted_round_robin"
    }

    fn pick(&self, c: &dyn Candidates, _ctx: &SelectContext<'_>) -> Option<usize> {
        let n = c.len();
        if n == 0 {
            return None;
        }
        let pool = c.pool();
        let mut s = self.slots[pool % POOL_SLOTS].lock();
        if s.pool != pool || s.generation != c.generation() || s.current.len() != n {
            s.pool = pool;
            s.generation = c.generation();
            s.current.clear();
            s.current.resize(n, 0);
        }
        let mut total: i64 = 0;
        let mut best: Option<usize> = None;
        for i in 0..n {
            if !c.eligible(i) {
                continue;
            }
            let w = c.weight(i).max(1) as i64;
            s.current[i] += w;
            total += w;
            if best.is_none_or(|b| s.current[i] > s.current[b]) {
                best = Some(i);
            }
        }
        let b = best?;
        s.current[b] -= total;
        Some(b)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::balance::testing::View;

    #[test]
    fn nginx_sequence() {
        let p = WeightedRoundRobin::new();
        let mut v = View::new(3);
        v.nodes[0].weight = 5;
        let picks: Vec<_> = (0..7)
            .map(|_| p.pick(&v, &SelectContext::default()).unwrap())
            .collect();
        assert_eq!(picks, [0, 0, 1, 0, 2, 0, 0]);
    }

    #[test]
    fn exact_counts_per_period_and_reset_on_new_generation() {
        let p = WeightedRoundRobin::new();
        let mut v = View::new(3);
        v.nodes[0].weight = 3;
        v.nodes[1].weight = 2;
        v.nodes[2].weight = 1;
        let mut counts = [0; 3];
        for _ in 0..60 {
            counts[p.pick(&v, &SelectContext::default()).unwrap()] += 1;
        }
        assert_eq!(counts, [30, 20, 10]);
        let w = View::new(2);
        assert!(p.pick(&w, &SelectContext::default()).unwrap() < 2);
    }

    #[test]
    fn none_when_nothing_eligible() {
        let p = WeightedRoundRobin::new();
        let mut v = View::new(2);
        v.nodes.iter_mut().for_each(|n| n.eligible = false);
        assert_eq!(p.pick(&v, &SelectContext::default()), None);
    }
}
