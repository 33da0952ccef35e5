//! GCRA rate limits on governor: one unkeyed limit (global, one endpoint) or
//! one limit per key (IP, API key, node) in a memory-bounded store.
//!
//! Invariants:
//! - a keyed limit never tracks more than its `max_keys`: the store is split
//!   into shards, each with a fixed share of the cap; inserting into a full
//!   shard first evicts its least-limited eighth (the keys whose theoretical
//!   arrival time is oldest, i.e. the ones closest to a fresh state), so
//!   memory stays bounded under any number of distinct keys;
//! - [`KeyedRate::retain_recent`] (governor's housekeeping) drops every key
//!   whose state is indistinguishable from a fresh one, losing nothing;
//! - time comes from a [`GovClock`], which adapts either the vctts
//!   [`Clock`](crate::clock::Clock) or a governor clock (tests use
//!   `governor::clock::FakeRelativeClock`).

use crate::clock::SharedClock;
use governor::clock::{Clock as GovernorClock, Reference};
use governor::middleware::NoOpMiddleware;
use governor::nanos::Nanos;
use governor::state::keyed::ShrinkableKeyedStateStore;
use governor::state::{InMemoryState, NotKeyed, StateStore};
use governor::{Quota, RateLimiter};
use parking_lot::Mutex;
use std::collections::HashMap;
use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hash};
use std::num::NonZeroU32;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

/// A clock for governor with nanosecond instants, shared by all layers of
/// one limiter.
#[derive(Clone)]
pub(crate) struct GovClock(Arc<dyn Fn() -> Nanos + Send + Sync>);

impl GovClock {
    /// Reads time from a vctts clock.
    pub(crate) fn from_shared(clock: SharedClock) -> Self {
        Self(Arc::new(move || Nanos::from(clock.now())))
    }

    /// Reads time from any governor clock, as nanoseconds since now.
    pub(crate) fn from_governor<C>(clock: C) -> Self
    where
        C: GovernorClock + Send + Sync + 'static,
    {
        let origin = clock.now();
        Self(Arc::new(move || clock.now().duration_since(origin)))
    }

    pub(crate) fn now_nanos(&self) -> Nanos {
        (self.0)()
    }
}

impl std::fmt::Debug for GovClock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "GovClock({:?})", Duration::from(self.now_nanos()))
    }
}

impl GovernorClock for GovClock {
    type Instant = Nanos;
    fn now(&self) -> Nanos {
        self.now_nanos()
    }
}

/// A rate in requests per minute with a burst, as configured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct Rate {
    pub(crate) rpm: u32,
    pub(crate) burst: u32,
}

impl Rate {
    /// `None` for 0 rpm (unlimited). A missing or zero burst means one
    /// minute's worth (`rpm`).
    pub(crate) fn new(rpm: u32, burst: Option<u32>) -> Option<Self> {
        if rpm == 0 {
            return None;
        }
        let burst = burst.filter(|b| *b > 0).unwrap_or(rpm);
        Some(Self { rpm, burst })
    }

    fn quota(self) -> Quota {
        // Both are non-zero by construction.
        let rpm = NonZeroU32::new(self.rpm).unwrap_or(NonZeroU32::MIN);
        let burst = NonZeroU32::new(self.burst).unwrap_or(NonZeroU32::MIN);
        Quota::per_minute(rpm).allow_burst(burst)
    }
}

/// Why a rate limit refused: how long until a request would conform.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Denied {
    pub(crate) retry_after: Duration,
}

/// One unkeyed GCRA limit.
#[derive(Debug)]
pub(crate) struct DirectRate {
    rate: Rate,
    limiter: RateLimiter<NotKeyed, InMemoryState, GovClock, NoOpMiddleware<Nanos>>,
}

impl DirectRate {
    pub(crate) fn new(rate: Rate, clock: GovClock) -> Self {
        Self {
            rate,
            limiter: RateLimiter::direct_with_clock(rate.quota(), clock),
        }
    }

    pub(crate) fn rate(&self) -> Rate {
        self.rate
    }

    pub(crate) fn check(&self) -> Result<(), Denied> {
        self.limiter.check().map_err(|not_until| Denied {
            retry_after: not_until.wait_time_from(self.limiter.clock().now()),
        })
    }
}

/// One GCRA limit per key, tracking at most `max_keys` keys.
#[derive(Debug)]
pub(crate) struct KeyedRate<K: Hash + Eq + Clone> {
    rate: Rate,
    limiter: RateLimiter<K, BoundedStore<K>, GovClock, NoOpMiddleware<Nanos>>,
}

impl<K: Hash + Eq + Clone> KeyedRate<K> {
    pub(crate) fn new(rate: Rate, max_keys: usize, clock: GovClock) -> Self {
        Self {
            rate,
            limiter: RateLimiter::new(rate.quota(), BoundedStore::new(max_keys), clock),
        }
    }

    pub(crate) fn rate(&self) -> Rate {
        self.rate
    }

    pub(crate) fn check(&self, key: &K) -> Result<(), Denied> {
        self.limiter.check_key(key).map_err(|not_until| Denied {
            retry_after: not_until.wait_time_from(self.limiter.clock().now()),
        })
    }

    /// Drops keys whose state equals a fresh one.
    pub(crate) fn retain_recent(&self) {
        self.limiter.retain_recent();
        self.limiter.shrink_to_fit();
    }

    /// Keys tracked now.
    pub(crate) fn len(&self) -> usize {
        self.limiter.len()
    }
}

/// How many shards a store of `max_keys` uses; each holds
/// `max_keys / shards` keys, so the total never exceeds `max_keys`.
fn shard_count(max_keys: usize) -> usize {
    max_keys.clamp(1, 16)
}

/// A sharded map from key to GCRA theoretical arrival time (nanoseconds
/// since the limiter's start; 0 = no state), bounded in size.
pub(crate) struct BoundedStore<K> {
    shards: Box<[Mutex<HashMap<K, u64, RandomState>>]>,
    per_shard: usize,
    hasher: RandomState,
    len: AtomicUsize,
}

impl<K> std::fmt::Debug for BoundedStore<K> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BoundedStore")
            .field("shards", &self.shards.len())
            .field("per_shard", &self.per_shard)
            .field("len", &self.len.load(Ordering::Relaxed))
            .finish()
    }
}

impl<K: Hash + Eq + Clone> BoundedStore<K> {
    pub(crate) fn new(max_keys: usize) -> Self {
        let max_keys = max_keys.max(1);
        let n = shard_count(max_keys);
        Self {
            shards: (0..n).map(|_| Mutex::new(HashMap::default())).collect(),
            per_shard: max_keys / n,
            hasher: RandomState::new(),
            len: AtomicUsize::new(0),
        }
    }

    fn shard(&self, key: &K) -> &Mutex<HashMap<K, u64, RandomState>> {
        let h = self.hasher.hash_one(key) as usize;
        &self.shards[h % self.shards.len()]
    }

    /// Evicts the eighth of `map` (at least one key) with the oldest arrival
    /// times. Returns how many keys went.
    fn evict_oldest(map: &mut HashMap<K, u64, RandomState>) -> usize {
        if map.is_empty() {
            return 0;
        }
        let mut tats: Vec<u64> = map.values().copied().collect();
        let k = (tats.len() / 8).max(1) - 1;
        let (_, threshold, _) = tats.select_nth_unstable(k);
        let threshold = *threshold;
        let before = map.len();
        map.retain(|_, tat| *tat > threshold);
        before - map.len()
    }
}

impl<K: Hash + Eq + Clone> StateStore for BoundedStore<K> {
    type Key = K;

    fn measure_and_replace<T, F, E>(&self, key: &K, f: F) -> Result<T, E>
    where
        F: Fn(Option<Nanos>) -> Result<(T, Nanos), E>,
    {
        let mut map = self.shard(key).lock();
        if let Some(tat) = map.get_mut(key) {
            let prev = (*tat != 0).then(|| Nanos::from(*tat));
            let (out, next) = f(prev)?;
            *tat = next.as_u64();
            return Ok(out);
        }
        // A refused first request stores nothing (it cannot be refused with
        // a fresh state anyway, unless the quota is degenerate).
        let (out, next) = f(None)?;
        if map.len() >= self.per_shard {
            let gone = Self::evict_oldest(&mut map);
            self.len.fetch_sub(gone, Ordering::Relaxed);
        }
        map.insert(key.clone(), next.as_u64());
        self.len.fetch_add(1, Ordering::Relaxed);
        Ok(out)
    }
}

impl<K: Hash + Eq + Clone> ShrinkableKeyedStateStore<K> for BoundedStore<K> {
    fn retain_recent(&self, drop_below: Nanos) {
        let below = drop_below.as_u64();
        for shard in self.shards.iter() {
            let mut map = shard.lock();
            let before = map.len();
            map.retain(|_, tat| *tat > below);
            self.len.fetch_sub(before - map.len(), Ordering::Relaxed);
        }
    }

    fn shrink_to_fit(&self) {
        for shard in self.shards.iter() {
            shard.lock().shrink_to_fit();
        }
    }

    fn len(&self) -> usize {
        self.len.load(Ordering::Relaxed)
    }

    fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use governor::clock::FakeRelativeClock;

    fn fake() -> (FakeRelativeClock, GovClock) {
        let c = FakeRelativeClock::default();
        (c.clone(), GovClock::from_governor(c))
    }

    #[test]
    fn rate_defaults_burst_to_rpm_and_zero_is_unlimited() {
        assert_eq!(Rate::new(0, Some(5)), None);
        assert_eq!(Rate::new(60, None), Some(Rate { rpm: 60, burst: 60 }));
        assert_eq!(Rate::new(60, Some(0)), Some(Rate { rpm: 60, burst: 60 }));
        assert_eq!(Rate::new(60, Some(3)), Some(Rate { rpm: 60, burst: 3 }));
    }

    #[test]
    fn direct_gcra_arithmetic() {
        let (clock, gov) = fake();
        // 120 rpm = one every 500 ms, burst 2.
        let r = DirectRate::new(Rate::new(120, Some(2)).unwrap(), gov);
        assert!(r.check().is_ok());
        assert!(r.check().is_ok());
        let d = r.check().unwrap_err();
        assert_eq!(d.retry_after, Duration::from_millis(500));
        clock.advance(Duration::from_millis(200));
        assert_eq!(r.check().unwrap_err().retry_after, Duration::from_millis(300));
        clock.advance(Duration::from_millis(300));
        assert!(r.check().is_ok());
        assert!(r.check().is_err());
    }

    #[test]
    fn keyed_limits_are_per_key() {
        let (_clock, gov) = fake();
        let r: KeyedRate<u64> = KeyedRate::new(Rate::new(60, Some(1)).unwrap(), 100, gov);
        assert!(r.check(&1).is_ok());
        assert_eq!(r.check(&1).unwrap_err().retry_after, Duration::from_secs(1));
        assert!(r.check(&2).is_ok());
        assert_eq!(r.len(), 2);
    }

    #[test]
    fn store_stays_bounded_and_evicts_oldest_first() {
        let (clock, gov) = fake();
        let r: KeyedRate<u64> = KeyedRate::new(Rate::new(60, Some(1)).unwrap(), 64, gov);
        for k in 0..10_000u64 {
            clock.advance(Duration::from_millis(1));
            let _ = r.check(&k);
            assert!(r.len() <= 64, "len {} after {k}", r.len());
        }
        // The latest key is still limited: eviction took older keys.
        assert!(r.check(&9_999).is_err());
    }

    #[test]
    fn retain_recent_drops_only_fresh_states() {
        let (clock, gov) = fake();
        let r: KeyedRate<u64> = KeyedRate::new(Rate::new(60, Some(1)).unwrap(), 100, gov);
        r.check(&1).unwrap();
        clock.advance(Duration::from_secs(5));
        r.check(&2).unwrap();
        r.retain_recent();
        assert_eq!(r.len(), 1);
        assert!(r.check(&2).is_err(), "key 2 kept its state");
        assert!(r.check(&1).is_ok());
    }
}
