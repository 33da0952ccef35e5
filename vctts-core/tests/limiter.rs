//! The layered limiter on governor's fake clock (rates) and tokio's paused
//! clock (the concurrency queue).

use governor::clock::FakeRelativeClock;
use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Arc;
use std::time::Duration;
use vctts_core::clock::ManualClock;
use vctts_core::error::LimitLayer;
use vctts_core::limit::{LimitRequest, Limiter, LimiterConfig};

/// Every layer off; tests turn on what they test.
fn none() -> LimiterConfig {
    LimiterConfig {
        global_rpm: 0,
        ip_rpm: 0,
        node_rpm: 0,
        concurrent_limit: 0,
        ..LimiterConfig::default()
    }
}

fn limiter(config: LimiterConfig) -> (Limiter, FakeRelativeClock) {
    let clock = FakeRelativeClock::default();
    (Limiter::with_governor_clock(config, clock.clone()), clock)
}

fn v4(n: u32) -> Option<IpAddr> {
    Some(IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + n)))
}

fn req<'a>(ip: Option<IpAddr>, endpoint: &'a str, key: Option<(&'a str, u32)>) -> LimitRequest<'a> {
    LimitRequest { ip, endpoint, key }
}

#[test]
fn gcra_sixty_per_minute_burst_one() {
    let (l, clock) = limiter(LimiterConfig {
        ip_rpm: 60,
        ip_burst: Some(1),
        ..none()
    });
    let r = req(v4(1), "/api/v3/synthesize", None);
    assert!(l.check(&r).is_ok());
    let refusal = l.check(&r).unwrap_err();
    assert_eq!(refusal.layer, LimitLayer::Ip);
    assert_eq!(refusal.retry_after, Duration::from_secs(1));
    assert_eq!(refusal.limit_rpm, 60);
    clock.advance(Duration::from_secs(1));
    assert!(l.check(&r).is_ok());
    assert!(l.check(&r).is_err());
}

#[test]
fn gcra_default_burst_is_a_minute_worth() {
    let (l, clock) = limiter(LimiterConfig {
        global_rpm: 30,
        ..none()
    });
    let r = LimitRequest::default();
    for _ in 0..30 {
        assert!(l.check(&r).is_ok());
    }
    // 30 rpm = one every 2 s.
    assert_eq!(l.check(&r).unwrap_err().retry_after, Duration::from_secs(2));
    clock.advance(Duration::from_secs(2));
    assert!(l.check(&r).is_ok());
    assert!(l.check(&r).is_err());
    // A full minute refills the whole burst.
    clock.advance(Duration::from_secs(60));
    for _ in 0..30 {
        assert!(l.check(&r).is_ok());
    }
}

#[test]
fn each_layer_refuses_independently() {
    let (l, _) = limiter(LimiterConfig {
        global_rpm: 60,
        global_burst: Some(10),
        ip_rpm: 60,
        ip_burst: Some(2),
        endpoint_rpm: BTreeMap::from([("/api/v3/synthesize".to_string(), 60)]),
        node_rpm: 60,
        ..none()
    });
    // IP: the third request from one address is refused, others pass.
    for _ in 0..2 {
        l.check(&req(v4(1), "/x", None)).unwrap();
    }
    assert_eq!(
        l.check(&req(v4(1), "/x", None)).unwrap_err().layer,
        LimitLayer::Ip
    );
    l.check(&req(v4(2), "/x", None)).unwrap();

    // Key: its own rate (1 rpm here), whatever the IP.
    l.check(&req(v4(3), "/x", Some(("key-a", 1)))).unwrap();
    let k = l.check(&req(v4(4), "/x", Some(("key-a", 1)))).unwrap_err();
    assert_eq!((k.layer, k.limit_rpm), (LimitLayer::Key, 1));
    assert_eq!(k.retry_after, Duration::from_secs(60));
    l.check(&req(v4(5), "/x", Some(("key-b", 1)))).unwrap();
    l.check(&req(v4(6), "/x", Some(("key-c", 0)))).unwrap();

    // Node: separate from the request layers.
    for _ in 0..60 {
        l.check_node("n1").unwrap();
    }
    let n = l.check_node("n1").unwrap_err();
    assert_eq!(n.layer, LimitLayer::Node);
    l.check_node("n2").unwrap();

    // Global: 10 requests so far used 6 (refused ones at the IP/key layer
    // never reached it); 4 more pass, the 11th is refused.
    for i in 0..4 {
        l.check(&req(v4(100 + i), "/x", None)).unwrap();
    }
    let g = l.check(&req(v4(200), "/x", None)).unwrap_err();
    assert_eq!((g.layer, g.limit_rpm), (LimitLayer::Global, 60));
}

#[test]
fn endpoint_layer_limits_only_listed_endpoints() {
    let (l, clock) = limiter(LimiterConfig {
        endpoint_rpm: BTreeMap::from([
            ("/api/v3/synthesize".to_string(), 2),
            ("/api/v3/voices".into(), 0),
        ]),
        ..none()
    });
    for i in 0..2 {
        l.check(&req(v4(i), "/api/v3/synthesize", None)).unwrap();
    }
    let e = l.check(&req(v4(9), "/api/v3/synthesize", None)).unwrap_err();
    assert_eq!(e.layer, LimitLayer::Endpoint);
    assert_eq!(e.retry_after, Duration::from_secs(30));
    for _ in 0..100 {
        l.check(&req(v4(9), "/api/v3/voices", None)).unwrap();
        l.check(&req(v4(9), "/api/v3/health", None)).unwrap();
    }
    clock.advance(Duration::from_secs(30));
    l.check(&req(v4(9), "/api/v3/synthesize", None)).unwrap();
}

#[test]
fn refused_client_does_not_spend_shared_budget() {
    let (l, _) = limiter(LimiterConfig {
        global_rpm: 60,
        global_burst: Some(5),
        ip_rpm: 60,
        ip_burst: Some(1),
        ..none()
    });
    l.check(&req(v4(1), "/x", None)).unwrap();
    for _ in 0..1000 {
        assert_eq!(
            l.check(&req(v4(1), "/x", None)).unwrap_err().layer,
            LimitLayer::Ip
        );
    }
    // The abuser spent one global unit; four others still get through.
    for i in 2..6 {
        l.check(&req(v4(i), "/x", None)).unwrap();
    }
}

#[test]
fn reconfiguration_takes_effect_on_next_request() {
    let (l, clock) = limiter(LimiterConfig {
        ip_rpm: 60,
        ip_burst: Some(1),
        ..none()
    });
    let r = req(v4(1), "/x", None);
    l.check(&r).unwrap();
    assert!(l.check(&r).is_err());
    // Switching the IP limit off lets it through at once.
    l.reconfigure(LimiterConfig {
        ip_rpm: 0,
        ..l.config()
    });
    for _ in 0..10 {
        l.check(&r).unwrap();
    }
    // A tighter global limit applies at once.
    l.reconfigure(LimiterConfig {
        global_rpm: 6,
        global_burst: Some(1),
        ..l.config()
    });
    l.check(&r).unwrap();
    let g = l.check(&r).unwrap_err();
    assert_eq!(
        (g.layer, g.retry_after),
        (LimitLayer::Global, Duration::from_secs(10))
    );
    clock.advance(Duration::from_secs(10));
    l.check(&r).unwrap();
    // Disabling everything.
    l.reconfigure(LimiterConfig {
        enabled: false,
        ..l.config()
    });
    l.check(&r).unwrap();
    assert!(!l.config().enabled);
}

#[test]
fn hundred_thousand_ips_stay_bounded() {
    let cap = 10_000;
    let (l, clock) = limiter(LimiterConfig {
        ip_rpm: 10,
        max_tracked_keys: cap,
        ..none()
    });
    for i in 0..100_000u32 {
        if i % 1000 == 0 {
            clock.advance(Duration::from_millis(10));
        }
        l.check(&req(v4(i), "/x", None)).unwrap();
        assert!(l.tracked_keys() <= cap, "{} keys after {i}", l.tracked_keys());
    }
    // IPv6 clients too (distinct /64s), and API keys.
    for i in 0..30_000u64 {
        let ip = IpAddr::V6(Ipv6Addr::from((0x2001_0db8u128 << 96) | ((i as u128) << 64) | 1));
        l.check(&req(Some(ip), "/x", Some((&format!("key-{i}"), 100))))
            .unwrap();
    }
    assert!(l.tracked_keys() <= 2 * cap);
    // After every state is stale, housekeeping returns the memory.
    clock.advance(Duration::from_secs(600));
    l.housekeep();
    assert_eq!(l.tracked_keys(), 0);
}

#[test]
fn vctts_clock_constructor_uses_injected_time() {
    let clock = ManualClock::new();
    let l = Limiter::with_clock(
        LimiterConfig {
            global_rpm: 60,
            global_burst: Some(1),
            ..none()
        },
        Arc::new(clock.clone()),
    );
    l.check(&LimitRequest::default()).unwrap();
    assert_eq!(
        l.check(&LimitRequest::default()).unwrap_err().retry_after,
        Duration::from_secs(1)
    );
    clock.advance(Duration::from_millis(1000));
    l.check(&LimitRequest::default()).unwrap();
}

#[tokio::test(start_paused = true)]
async fn concurrency_cap_queue_and_timeout() {
    let l = Arc::new(Limiter::new(LimiterConfig {
        concurrent_limit: 2,
        queue_size: 1,
        queue_timeout: Duration::from_secs(3),
        ..none()
    }));
    let p1 = l.acquire().await.unwrap();
    let p2 = l.acquire().await.unwrap();
    assert_eq!(l.in_flight(), 2);
    let l2 = l.clone();
    let waiter = tokio::spawn(async move { l2.acquire().await });
    tokio::task::yield_now().await;
    assert_eq!(l.queued(), 1);
    // Queue full: refused at once.
    let full = l.acquire().await.unwrap_err();
    assert_eq!((full.layer, full.limit_rpm), (LimitLayer::Concurrency, 2));
    let e: vctts_core::Error = full.into();
    assert_eq!(e.code(), "overloaded");
    // Nobody finishes within 3 s: the waiter gives up.
    let started = tokio::time::Instant::now();
    let timed_out = waiter.await.unwrap().unwrap_err();
    assert_eq!(timed_out.layer, LimitLayer::Concurrency);
    assert_eq!(started.elapsed(), Duration::from_secs(3));
    assert_eq!(l.queued(), 0);
    // A slot freed while waiting goes to the waiter.
    let l3 = l.clone();
    let waiter = tokio::spawn(async move { l3.acquire().await });
    tokio::task::yield_now().await;
    tokio::time::advance(Duration::from_secs(1)).await;
    drop(p1);
    let p3 = waiter.await.unwrap().unwrap();
    assert_eq!(l.in_flight(), 2);
    drop((p2, p3));
    assert_eq!(l.in_flight(), 0);
}

#[tokio::test(start_paused = true)]
async fn reconfigure_keeps_held_permits() {
    let l = Limiter::new(LimiterConfig {
        concurrent_limit: 2,
        queue_size: 0,
        ..none()
    });
    let p1 = l.acquire().await.unwrap();
    let p2 = l.acquire().await.unwrap();
    assert!(l.acquire().await.is_err());
    // Lower the cap below the held permits: they keep working.
    l.reconfigure(LimiterConfig {
        concurrent_limit: 1,
        ..l.config()
    });
    assert_eq!(l.in_flight(), 2);
    drop(p1);
    assert!(l.acquire().await.is_err(), "1 of 1 still held");
    drop(p2);
    let p = l.acquire().await.unwrap();
    // Raise it: room at once.
    l.reconfigure(LimiterConfig {
        concurrent_limit: 3,
        ..l.config()
    });
    let q = l.acquire().await.unwrap();
    assert_eq!(l.in_flight(), 2);
    drop((p, q));
    // Disabled: no cap, permits still counted.
    l.reconfigure(LimiterConfig {
        enabled: false,
        concurrent_limit: 1,
        ..l.config()
    });
    let many: Vec<_> = futures::future::join_all((0..10).map(|_| l.acquire())).await;
    assert!(many.iter().all(Result::is_ok));
    assert_eq!(l.in_flight(), 10);
}
