//! The shared limiter against a real Redis: budgets shared by two gateways,
//! the same decisions as the local limiter, and the local fallback while
//! Redis is down or silent.
//!
//! Rates are per minute with small bursts, so a budget refills only after
//! seconds: each test runs its requests well within one emission interval
//! and the outcomes do not depend on timing.

use crate::services::Redis;
use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;
use vctts_core::error::LimitLayer;
use vctts_core::limit::{LimitRequest, Limiter, LimiterConfig};
use vctts_server::shared::{SharedLimiter, SharedLimiterOptions};

fn config() -> LimiterConfig {
    LimiterConfig {
        enabled: true,
        global_rpm: 1,
        global_burst: Some(8),
        ip_rpm: 1,
        ip_burst: Some(3),
        endpoint_rpm: BTreeMap::from([("/api/v3/synthesize".to_string(), 4)]),
        concurrent_limit: 0,
        ..LimiterConfig::default()
    }
}

fn gateway(url: &str, config: LimiterConfig, opts: SharedLimiterOptions) -> SharedLimiter {
    SharedLimiter::new(url, Arc::new(Limiter::new(config)), opts).unwrap()
}

fn opts(prefix: &str) -> SharedLimiterOptions {
    SharedLimiterOptions {
        prefix: prefix.into(),
        retry_interval: Duration::ZERO,
        ..SharedLimiterOptions::default()
    }
}

fn ip(n: u8) -> Option<IpAddr> {
    Some(IpAddr::from([10, 0, 0, n]))
}

fn req(ip_n: u8, endpoint: &str) -> LimitRequest<'_> {
    LimitRequest {
        ip: ip(ip_n),
        endpoint,
        key: None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn budgets_are_shared_between_gateways() {
    let redis = Redis::start();
    let a = gateway(&redis.url(), config(), opts("t1"));
    let b = gateway(&redis.url(), config(), opts("t1"));
    // One client's burst of 3 is spent across both gateways...
    assert!(a.check(&req(1, "/x")).await.is_ok());
    assert!(b.check(&req(1, "/x")).await.is_ok());
    assert!(a.check(&req(1, "/x")).await.is_ok());
    for g in [&a, &b] {
        let r = g.check(&req(1, "/x")).await.unwrap_err();
        assert_eq!(r.layer, LimitLayer::Ip);
        assert_eq!(r.limit_rpm, 1);
        assert_eq!(r.remaining, 0);
        assert!(
            r.retry_after > Duration::ZERO && r.retry_after <= Duration::from_secs(60),
            "{r:?}"
        );
    }
    // ...while another client has its own.
    assert!(b.check(&req(2, "/x")).await.is_ok());
    // The global budget of 8 is shared too: 4 passed so far (3 + 1; refused
    // requests stop at the IP layer and spend no global budget).
    for n in 3..7 {
        assert!(a.check(&req(n, "/x")).await.is_ok(), "client {n}");
    }
    let r = b.check(&req(9, "/x")).await.unwrap_err();
    assert_eq!(r.layer, LimitLayer::Global);
    assert!(!a.degraded() && !b.degraded());
    assert_eq!(a.fallbacks() + b.fallbacks(), 0);
}

/// The same sequence through the local limiter and through Redis gives the
/// same layer and limit for every decision.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn decisions_match_the_local_limiter() {
    let redis = Redis::start();
    let shared = gateway(&redis.url(), config(), opts("t2"));
    let local = Limiter::new(config());
    let mut seq = Vec::new();
    for i in 0..14u8 {
        let endpoint = if i % 3 == 0 {
            "/api/v3/synthesize"
        } else {
            "/api/v3/voices"
        };
        let key = (i % 4 == 1).then_some(("key-a", 2));
        seq.push((i % 3, endpoint, key));
    }
    for (n, (ip_n, endpoint, key)) in seq.into_iter().enumerate() {
        let r = LimitRequest {
            ip: ip(ip_n),
            endpoint,
            key,
        };
        let want = local.check(&r).map_err(|e| (e.layer, e.limit_rpm));
        let got = shared.check(&r).await.map_err(|e| (e.layer, e.limit_rpm));
        assert_eq!(got, want, "decision {n}");
    }
    assert!(!shared.degraded());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_keys_have_their_own_shared_budget() {
    let redis = Redis::start();
    let a = gateway(&redis.url(), config(), opts("t3"));
    let b = gateway(&redis.url(), config(), opts("t3"));
    let with_key = |n| LimitRequest {
        ip: ip(n),
        endpoint: "/x",
        key: Some(("tenant-key", 2)),
    };
    assert!(a.check(&with_key(1)).await.is_ok());
    assert!(b.check(&with_key(2)).await.is_ok());
    let r = a.check(&with_key(3)).await.unwrap_err();
    assert_eq!((r.layer, r.limit_rpm), (LimitLayer::Key, 2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn endpoint_budgets_are_shared() {
    let redis = Redis::start();
    let a = gateway(&redis.url(), config(), opts("t4"));
    let b = gateway(&redis.url(), config(), opts("t4"));
    for n in 0..4 {
        let g = if n % 2 == 0 { &a } else { &b };
        assert!(g.check(&req(n + 1, "/api/v3/synthesize")).await.is_ok());
    }
    let r = b.check(&req(7, "/api/v3/synthesize")).await.unwrap_err();
    assert_eq!((r.layer, r.limit_rpm), (LimitLayer::Endpoint, 4));
    // Other endpoints are not limited by it.
    assert!(b.check(&req(7, "/api/v3/voices")).await.is_ok());
}

/// Redis down: the local limiter decides (neither all refused nor all let
/// through), the limiter says it is degraded, and when Redis is back the
/// budgets are shared again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn falls_back_to_local_limits_while_redis_is_down() {
    let mut redis = Redis::start();
    let g = gateway(&redis.url(), config(), opts("t5"));
    assert!(g.check(&req(1, "/x")).await.is_ok());
    redis.stop();
    // Locally, client 1 has a fresh burst of 3; a 4th request is refused.
    for _ in 0..3 {
        assert!(g.check(&req(1, "/x")).await.is_ok());
        assert!(g.degraded());
    }
    let r = g.check(&req(1, "/x")).await.unwrap_err();
    assert_eq!(r.layer, LimitLayer::Ip);
    assert!(g.fallbacks() >= 4);
    // Redis is back (empty): the next decision is shared again.
    redis.restart();
    assert!(g.check(&req(2, "/x")).await.is_ok());
    assert!(!g.degraded());
    let other = gateway(&redis.url(), config(), opts("t5"));
    assert!(other.check(&req(2, "/x")).await.is_ok());
    assert!(g.check(&req(2, "/x")).await.is_ok());
    assert_eq!(g.check(&req(2, "/x")).await.unwrap_err().layer, LimitLayer::Ip);
}

/// A Redis that accepts connections but never answers costs one timeout,
/// then the local limiter decides; nothing waits forever.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_redis_times_out_into_the_fallback() {
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("redis://{}", silent.local_addr().unwrap());
    let g = gateway(
        &url,
        config(),
        SharedLimiterOptions {
            timeout: Duration::from_millis(200),
            retry_interval: Duration::from_secs(3600),
            ..opts("t6")
        },
    );
    assert!(g.check(&req(1, "/x")).await.is_ok());
    assert!(g.degraded());
    // Within the retry interval Redis is not tried: local decisions at once.
    for _ in 0..2 {
        assert!(g.check(&req(1, "/x")).await.is_ok());
    }
    assert_eq!(g.check(&req(1, "/x")).await.unwrap_err().layer, LimitLayer::Ip);
    assert_eq!(g.fallbacks(), 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disabled_limits_never_touch_redis() {
    let url = format!("redis://127.0.0.1:{}", crate::services::free_port());
    let g = gateway(
        &url,
        LimiterConfig {
            enabled: false,
            ..config()
        },
        opts("t7"),
    );
    for _ in 0..10 {
        assert!(g.check(&req(1, "/x")).await.is_ok());
    }
    assert!(!g.degraded());
    assert_eq!(g.fallbacks(), 0);
}
