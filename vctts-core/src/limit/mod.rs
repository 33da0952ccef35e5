//! The layered limiter of the gateway: rate limits per client IP, per API
//! key, per endpoint, globally and per node (GCRA on governor, configured in
//! requests per minute), and a concurrency cap with a bounded wait queue.
//!
//! How a decision is made ([`Limiter::check`]): the layers are checked one
//! after another and the first that refuses answers, naming itself in the
//! [`Refusal`] with the time after which a retry would pass. Each layer keeps
//! its own budget. A request refused by a layer has used one unit of the
//! layers checked before it, so the order puts the layers that belong to the
//! caller first: **IP, then API key, then endpoint, then global**. A client
//! refused for its own excess therefore never spends the shared endpoint and
//! global budgets that other clients depend on. The node layer is separate
//! ([`Limiter::check_node`]): the gateway asks it for the node it picked.
//!
//! Invariants:
//! - 0 requests per minute means no limit for that layer; a missing burst
//!   means one minute's worth (`rpm`);
//! - keyed layers (IP, key, node) track at most `max_tracked_keys` keys each
//!   (see [`rate`]); IPv6 clients are limited per /64 prefix (one subscriber's
//!   allocation), IPv4-mapped IPv6 addresses as the IPv4 address;
//! - [`Limiter::reconfigure`] takes effect on the next decision; layers whose
//!   rate did not change keep their state, changed layers start fresh, and
//!   concurrency permits already held stay valid and are counted;
//! - `enabled: false` turns every rate limit and the concurrency cap off
//!   (permits are still counted, for metrics).

mod concurrency;
mod rate;
pub mod serde_secs;

pub use concurrency::ConcurrencyPermit;

use crate::clock::SharedClock;
use crate::error::{Error, LimitLayer, Result};
use concurrency::{Gate, GateLimits, GateRefusal};
use parking_lot::RwLock;
use rate::{Denied, DirectRate, GovClock, KeyedRate, Rate};
use serde::{Deserialize, Serialize};
use std::collections::hash_map::RandomState;
use std::collections::{BTreeMap, HashMap};
use std::hash::BuildHasher;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

/// How long a caller refused by the concurrency cap is told to wait.
pub const CONCURRENCY_RETRY_AFTER: Duration = Duration::from_secs(1);

/// Most distinct per-key rates (API key tiers) tracked at once; a new tier
/// beyond this replaces the tier that tracks the fewest keys.
pub const MAX_KEY_RATES: usize = 64;

/// Limiter settings (SPEC §9 defaults: global 1000 rpm, per IP 100 rpm,
/// 50 concurrent requests).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LimiterConfig {
    /// Whether any limit applies.
    pub enabled: bool,
    /// Requests per minute for the whole service; 0 = unlimited.
    pub global_rpm: u32,
    /// Burst of the global limit; `None` = `global_rpm`.
    pub global_burst: Option<u32>,
    /// Requests per minute per client IP; 0 = unlimited.
    pub ip_rpm: u32,
    /// Burst of the per-IP limit; `None` = `ip_rpm`.
    pub ip_burst: Option<u32>,
    /// Requests per minute per endpoint path (e.g. `/api/v3/synthesize`);
    /// endpoints not listed (or listed with 0) are not limited here.
    pub endpoint_rpm: BTreeMap<String, u32>,
    /// Requests per minute per worker node; 0 = unlimited.
    pub node_rpm: u32,
    /// Requests in flight at once; 0 = no cap.
    pub concurrent_limit: u32,
    /// Requests that may wait for a slot when the cap is reached.
    pub queue_size: u32,
    /// How long a request waits for a slot before it is refused.
    #[serde(with = "serde_secs")]
    pub queue_timeout: Duration,
    /// Most keys each keyed layer (IP, API key, node) tracks.
    pub max_tracked_keys: usize,
}

impl Default for LimiterConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            global_rpm: 1000,
            global_burst: None,
            ip_rpm: 100,
            ip_burst: None,
            endpoint_rpm: BTreeMap::new(),
            node_rpm: 0,
            concurrent_limit: 50,
            queue_size: 100,
            queue_timeout: Duration::from_secs(30),
            max_tracked_keys: 10_000,
        }
    }
}

impl LimiterConfig {
    /// Checks the values; the error names the field (`limiter.<field>`).
    pub fn validate(&self) -> Result<()> {
        for (name, burst) in [("global_burst", self.global_burst), ("ip_burst", self.ip_burst)] {
            if burst == Some(0) {
                return Err(Error::Config(format!(
                    "limiter.{name} must be at least 1 (or left out for one minute's worth), got 0"
                )));
            }
        }
        if self.max_tracked_keys == 0 {
            return Err(Error::Config(
                "limiter.max_tracked_keys must be at least 1, got 0".into(),
            ));
        }
        if let Some(bad) = self.endpoint_rpm.keys().find(|e| e.trim().is_empty()) {
            return Err(Error::Config(format!(
                "limiter.endpoint_rpm has an empty endpoint name {bad:?}"
            )));
        }
        Ok(())
    }
}

/// What a request is, for the limiter.
#[derive(Debug, Clone, Copy, Default)]
pub struct LimitRequest<'a> {
    /// The client address, when known.
    pub ip: Option<IpAddr>,
    /// The endpoint path, matched exactly against
    /// [`LimiterConfig::endpoint_rpm`].
    pub endpoint: &'a str,
    /// The API key (any stable identifier of it) and its own requests per
    /// minute (0 = unlimited).
    pub key: Option<(&'a str, u32)>,
}

/// A refused request: which layer, and when to retry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Refusal {
    /// The layer that refused.
    pub layer: LimitLayer,
    /// How long until a retry would pass this layer.
    pub retry_after: Duration,
    /// That layer's limit in requests per minute (for
    /// [`LimitLayer::Concurrency`]: the concurrency cap).
    pub limit_rpm: u32,
    /// Requests left in that layer's budget now (0 when refused).
    pub remaining: u32,
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.layer == LimitLayer::Concurrency {
            write!(
                f,
                "the concurrency limit of {} is reached and the wait queue is full or the wait timed out",
                self.limit_rpm
            )
        } else {
            write!(
                f,
                "the {} limit of {} requests per minute is reached, retry in {:.1}s",
                self.layer,
                self.limit_rpm,
                self.retry_after.as_secs_f64()
            )
        }
    }
}

impl std::error::Error for Refusal {}

impl From<Refusal> for Error {
    fn from(r: Refusal) -> Self {
        match r.layer {
            LimitLayer::Concurrency => Error::Overloaded(r.to_string()),
            layer => Error::RateLimited {
                layer,
                retry_after: r.retry_after,
                limit_rpm: r.limit_rpm,
                remaining: r.remaining,
            },
        }
    }
}

/// Per-key rates, one keyed limit per distinct rpm.
#[derive(Debug)]
struct KeyRates {
    max_keys: usize,
    by_rpm: RwLock<HashMap<u32, Arc<KeyedRate<u64>>>>,
}

impl KeyRates {
    fn new(max_keys: usize) -> Self {
        Self {
            max_keys,
            by_rpm: RwLock::new(HashMap::new()),
        }
    }

    fn get(&self, rpm: u32, clock: &GovClock) -> Arc<KeyedRate<u64>> {
        if let Some(r) = self.by_rpm.read().get(&rpm) {
            return r.clone();
        }
        let mut map = self.by_rpm.write();
        if let Some(r) = map.get(&rpm) {
            return r.clone();
        }
        if map.len() >= MAX_KEY_RATES {
            if let Some(smallest) = map.iter().min_by_key(|(_, r)| r.len()).map(|(k, _)| *k) {
                map.remove(&smallest);
            }
        }
        let rate = Rate::new(rpm, None).unwrap_or(Rate {
            rpm,
            burst: rpm.max(1),
        });
        let r = Arc::new(KeyedRate::new(rate, self.max_keys, clock.clone()));
        map.insert(rpm, r.clone());
        r
    }

    fn len(&self) -> usize {
        self.by_rpm.read().values().map(|r| r.len()).sum()
    }

    fn retain_recent(&self) {
        let mut map = self.by_rpm.write();
        map.values().for_each(|r| r.retain_recent());
        map.retain(|_, r| r.len() > 0);
    }
}

/// The rate layers of one configuration.
#[derive(Debug)]
struct Layers {
    config: LimiterConfig,
    global: Option<Arc<DirectRate>>,
    ip: Option<Arc<KeyedRate<IpAddr>>>,
    endpoints: HashMap<String, Arc<DirectRate>>,
    node: Option<Arc<KeyedRate<u64>>>,
    keys: Arc<KeyRates>,
}

impl Layers {
    /// Builds the layers for `config`, reusing those of `old` whose rate and
    /// bounds did not change.
    fn build(config: LimiterConfig, clock: &GovClock, old: Option<&Layers>) -> Self {
        let max_keys = config.max_tracked_keys.max(1);
        let same_bounds = old.is_some_and(|o| o.config.max_tracked_keys.max(1) == max_keys);
        let direct = |rate: Option<Rate>, old: Option<&Arc<DirectRate>>| {
            rate.map(|rate| match old {
                Some(o) if o.rate() == rate => o.clone(),
                _ => Arc::new(DirectRate::new(rate, clock.clone())),
            })
        };
        let global = direct(
            Rate::new(config.global_rpm, config.global_burst.map(|b| b.max(1))),
            old.and_then(|o| o.global.as_ref()),
        );
        let ip = Rate::new(config.ip_rpm, config.ip_burst.map(|b| b.max(1))).map(|rate| {
            match old.and_then(|o| o.ip.as_ref()) {
                Some(o) if o.rate() == rate && same_bounds => o.clone(),
                _ => Arc::new(KeyedRate::new(rate, max_keys, clock.clone())),
            }
        });
        let node = Rate::new(config.node_rpm, None).map(|rate| match old.and_then(|o| o.node.as_ref()) {
            Some(o) if o.rate() == rate && same_bounds => o.clone(),
            _ => Arc::new(KeyedRate::new(rate, max_keys, clock.clone())),
        });
        let endpoints = config
            .endpoint_rpm
            .iter()
            .filter_map(|(name, &rpm)| {
                let old = old.and_then(|o| o.endpoints.get(name));
                direct(Rate::new(rpm, None), old).map(|r| (name.clone(), r))
            })
            .collect();
        let keys = match old {
            Some(o) if same_bounds => o.keys.clone(),
            _ => Arc::new(KeyRates::new(max_keys)),
        };
        Self {
            config,
            global,
            ip,
            endpoints,
            node,
            keys,
        }
    }
}

/// The limiter. `Send + Sync`; share it behind an `Arc`.
pub struct Limiter {
    clock: GovClock,
    hasher: RandomState,
    layers: RwLock<Layers>,
    gate: Arc<Gate>,
}

impl std::fmt::Debug for Limiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Limiter")
            .field("config", &self.layers.read().config)
            .field("in_flight", &self.in_flight())
            .field("queued", &self.queued())
            .finish()
    }
}

fn gate_limits(config: &LimiterConfig) -> GateLimits {
    GateLimits {
        limit: if config.enabled {
            config.concurrent_limit
        } else {
            0
        },
        queue_size: config.queue_size,
        queue_timeout: config.queue_timeout,
    }
}

/// The key a client IP is limited under: IPv4 as is (also when written as
/// IPv4-mapped IPv6), IPv6 by its /64 prefix.
fn ip_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6((u128::from(v6) & !((1u128 << 64) - 1)).into()),
        },
    }
}

fn refusal(layer: LimitLayer, rate: Rate, denied: Denied) -> Refusal {
    Refusal {
        layer,
        retry_after: denied.retry_after,
        limit_rpm: rate.rpm,
        remaining: 0,
    }
}

impl Limiter {
    /// A limiter on the system clock. Out-of-range values (a zero burst or
    /// key cap) are treated as 1; use [`LimiterConfig::validate`] to reject
    /// them at load time.
    pub fn new(config: LimiterConfig) -> Self {
        Self::with_clock(config, Arc::new(crate::clock::SystemClock::new()))
    }

    /// A limiter reading time from a vctts clock (e.g. a `ManualClock`).
    pub fn with_clock(config: LimiterConfig, clock: SharedClock) -> Self {
        Self::build(config, GovClock::from_shared(clock))
    }

    /// A limiter reading time from a governor clock (e.g.
    /// `governor::clock::FakeRelativeClock` in tests).
    pub fn with_governor_clock<C>(config: LimiterConfig, clock: C) -> Self
    where
        C: governor::clock::Clock + Send + Sync + 'static,
    {
        Self::build(config, GovClock::from_governor(clock))
    }

    fn build(config: LimiterConfig, clock: GovClock) -> Self {
        let gate = Gate::new(gate_limits(&config));
        let layers = Layers::build(config, &clock, None);
        Self {
            clock,
            hasher: RandomState::new(),
            layers: RwLock::new(layers),
            gate,
        }
    }

    fn hash(&self, s: &str) -> u64 {
        self.hasher.hash_one(s)
    }

    /// Checks a request against the IP, key, endpoint and global limits (in
    /// that order; see the module docs) and counts it in each layer it passes.
    pub fn check(&self, req: &LimitRequest<'_>) -> std::result::Result<(), Refusal> {
        let layers = self.layers.read();
        if !layers.config.enabled {
            return Ok(());
        }
        if let (Some(ip_rate), Some(ip)) = (&layers.ip, req.ip) {
            ip_rate
                .check(&ip_key(ip))
                .map_err(|d| refusal(LimitLayer::Ip, ip_rate.rate(), d))?;
        }
        if let Some((key, rpm)) = req.key {
            if rpm > 0 {
                let group = layers.keys.get(rpm, &self.clock);
                group
                    .check(&self.hash(key))
                    .map_err(|d| refusal(LimitLayer::Key, group.rate(), d))?;
            }
        }
        if let Some(ep) = layers.endpoints.get(req.endpoint) {
            ep.check()
                .map_err(|d| refusal(LimitLayer::Endpoint, ep.rate(), d))?;
        }
        if let Some(global) = &layers.global {
            global
                .check()
                .map_err(|d| refusal(LimitLayer::Global, global.rate(), d))?;
        }
        Ok(())
    }

    /// Checks and counts one request to a worker node (by id).
    pub fn check_node(&self, node: &str) -> std::result::Result<(), Refusal> {
        let layers = self.layers.read();
        if !layers.config.enabled {
            return Ok(());
        }
        match &layers.node {
            Some(n) => n
                .check(&self.hash(node))
                .map_err(|d| refusal(LimitLayer::Node, n.rate(), d)),
            None => Ok(()),
        }
    }

    /// A slot under the concurrency cap: at once, or after waiting in the
    /// bounded queue for up to `queue_timeout`. Refused with
    /// [`LimitLayer::Concurrency`] when the queue is full or the wait ends.
    pub async fn acquire(&self) -> std::result::Result<ConcurrencyPermit, Refusal> {
        self.gate.acquire().await.map_err(|why| {
            let limit = self.layers.read().config.concurrent_limit;
            tracing::debug!(
                limit,
                queue_full = why == GateRefusal::QueueFull,
                "concurrency cap refused a request"
            );
            Refusal {
                layer: LimitLayer::Concurrency,
                retry_after: CONCURRENCY_RETRY_AFTER,
                limit_rpm: limit,
                remaining: 0,
            }
        })
    }

    /// Applies a new configuration from the next decision on. Layers whose
    /// rate is unchanged keep their state; held permits stay valid.
    pub fn reconfigure(&self, config: LimiterConfig) {
        let mut layers = self.layers.write();
        let limits = gate_limits(&config);
        *layers = Layers::build(config, &self.clock, Some(&layers));
        drop(layers);
        self.gate.set_limits(limits);
    }

    /// The configuration in force.
    pub fn config(&self) -> LimiterConfig {
        self.layers.read().config.clone()
    }

    /// Requests holding a concurrency permit now.
    pub fn in_flight(&self) -> u32 {
        self.gate.in_flight()
    }

    /// Requests waiting for a concurrency permit now.
    pub fn queued(&self) -> u32 {
        self.gate.queued()
    }

    /// Keys tracked by the keyed layers (IP, API key, node) together.
    pub fn tracked_keys(&self) -> usize {
        let layers = self.layers.read();
        layers.ip.as_ref().map_or(0, |r| r.len())
            + layers.node.as_ref().map_or(0, |r| r.len())
            + layers.keys.len()
    }

    /// Forgets keys whose limit state equals a fresh one (lossless); call it
    /// now and then (e.g. every minute) to return memory after a burst of
    /// distinct clients. The caps hold without it.
    pub fn housekeep(&self) {
        let layers = self.layers.read();
        if let Some(ip) = &layers.ip {
            ip.retain_recent();
        }
        if let Some(node) = &layers.node {
            node.retain_recent();
        }
        layers.keys.retain_recent();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use governor::clock::FakeRelativeClock;
    use std::net::{Ipv4Addr, Ipv6Addr};

    fn ip(last: u8) -> Option<IpAddr> {
        Some(IpAddr::V4(Ipv4Addr::new(10, 0, 0, last)))
    }

    fn only(config: LimiterConfig) -> (Limiter, FakeRelativeClock) {
        let clock = FakeRelativeClock::default();
        (Limiter::with_governor_clock(config, clock.clone()), clock)
    }

    fn off() -> LimiterConfig {
        LimiterConfig {
            global_rpm: 0,
            ip_rpm: 0,
            concurrent_limit: 0,
            ..LimiterConfig::default()
        }
    }

    #[test]
    fn sixty_rpm_burst_one() {
        let (l, clock) = only(LimiterConfig {
            global_rpm: 60,
            global_burst: Some(1),
            ..off()
        });
        let req = LimitRequest::default();
        assert!(l.check(&req).is_ok());
        let r = l.check(&req).unwrap_err();
        assert_eq!(r.layer, LimitLayer::Global);
        assert_eq!(r.retry_after, Duration::from_secs(1));
        assert_eq!(r.limit_rpm, 60);
        assert_eq!(r.remaining, 0);
        clock.advance(Duration::from_millis(999));
        assert_eq!(l.check(&req).unwrap_err().retry_after, Duration::from_millis(1));
        clock.advance(Duration::from_millis(1));
        assert!(l.check(&req).is_ok());
    }

    #[test]
    fn ipv6_is_limited_per_64_and_mapped_v4_as_v4() {
        let a: Ipv6Addr = "2001:db8:1:2::1".parse().unwrap();
        let b: Ipv6Addr = "2001:db8:1:2:ffff::9".parse().unwrap();
        assert_eq!(ip_key(a.into()), ip_key(b.into()));
        let c: Ipv6Addr = "2001:db8:1:3::1".parse().unwrap();
        assert_ne!(ip_key(a.into()), ip_key(c.into()));
        let mapped: Ipv6Addr = "::ffff:10.0.0.1".parse().unwrap();
        assert_eq!(ip_key(mapped.into()), ip(1).unwrap());
    }

    #[test]
    fn refusal_maps_to_errors() {
        let r = Refusal {
            layer: LimitLayer::Ip,
            retry_after: Duration::from_millis(1500),
            limit_rpm: 100,
            remaining: 0,
        };
        assert!(r.to_string().contains("ip limit of 100"));
        let e: Error = r.into();
        assert_eq!(e.code(), "rate_limited");
        let c = Refusal {
            layer: LimitLayer::Concurrency,
            limit_rpm: 50,
            ..r
        };
        let e: Error = c.into();
        assert_eq!(e.code(), "overloaded");
        assert!(e.retryable());
        assert!(e.to_string().contains("50"));
    }

    #[test]
    fn disabled_limits_nothing() {
        let (l, _) = only(LimiterConfig {
            enabled: false,
            global_rpm: 1,
            global_burst: Some(1),
            node_rpm: 1,
            ..LimiterConfig::default()
        });
        for _ in 0..10 {
            assert!(
                l.check(&LimitRequest {
                    ip: ip(1),
                    ..Default::default()
                })
                .is_ok()
            );
            assert!(l.check_node("n1").is_ok());
        }
    }

    #[test]
    fn reconfigure_keeps_unchanged_layers() {
        let (l, _) = only(LimiterConfig {
            global_rpm: 60,
            global_burst: Some(1),
            ip_rpm: 60,
            ip_burst: Some(1),
            ..off()
        });
        let req = LimitRequest {
            ip: ip(1),
            ..Default::default()
        };
        assert!(l.check(&req).is_ok());
        assert_eq!(l.check(&req).unwrap_err().layer, LimitLayer::Ip);
        // Changing the global rate resets it but keeps the IP state.
        l.reconfigure(LimiterConfig {
            global_rpm: 120,
            ..l.config()
        });
        assert_eq!(l.check(&req).unwrap_err().layer, LimitLayer::Ip);
        assert!(
            l.check(&LimitRequest {
                ip: ip(2),
                ..Default::default()
            })
            .is_ok()
        );
    }

    #[test]
    fn validation_names_fields() {
        assert!(LimiterConfig::default().validate().is_ok());
        let e = LimiterConfig {
            ip_burst: Some(0),
            ..LimiterConfig::default()
        }
        .validate()
        .unwrap_err();
        assert!(e.to_string().contains("limiter.ip_burst"), "{e}");
        let e = LimiterConfig {
            max_tracked_keys: 0,
            ..LimiterConfig::default()
        }
        .validate()
        .unwrap_err();
        assert!(e.to_string().contains("limiter.max_tracked_keys"));
    }

    #[test]
    fn config_serde_defaults_and_seconds() {
        let c: LimiterConfig =
            serde_json::from_str(r#"{"global_rpm": 10, "queue_timeout": "2s", "endpoint_rpm": {"/a": 5}}"#)
                .unwrap();
        assert_eq!(c.global_rpm, 10);
        assert_eq!(c.ip_rpm, 100);
        assert_eq!(c.concurrent_limit, 50);
        assert_eq!(c.queue_timeout, Duration::from_secs(2));
        assert_eq!(c.endpoint_rpm["/a"], 5);
        assert!(serde_json::from_str::<LimiterConfig>(r#"{"global_rmp": 1}"#).is_err());
    }
}
