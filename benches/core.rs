//! Benchmarks of the gateway's hot path in vctts-core: registry selection
//! per balancing policy (10, 100 and 1,000 nodes) and one full limiter
//! decision (global + IP + endpoint + node) over 10,000 distinct client IPs.
//!
//! After the criterion groups it prints the targets with a figure measured
//! by a plain timed loop:
//! - p2c select at 1000 nodes <= 1 µs;
//! - limiter decision <= 500 ns.
//!
//! Run: `cargo bench --bench core` (add `-- --quick` for a short run).

use criterion::{BenchmarkId, Criterion, black_box};
use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::time::{Duration, Instant};
use vctts::core::EngineKind;
use vctts::core::balance::{BalancePolicy, PolicyKind, PowerOfTwoChoices};
use vctts::core::clock::SystemClock;
use vctts::core::limit::{LimitRequest, Limiter, LimiterConfig};
use vctts::core::registry::{NodeInfo, NodeState, Outcome, Registry, RegistryConfig, SelectContext};

const SIZES: [usize; 3] = [10, 100, 1000];
const ENDPOINT: &str = "/api/v3/synthesize";

/// A registry with `n` ready XTTS nodes whose latency EWMAs differ.
fn registry(n: usize) -> Registry {
    let r = Registry::new(RegistryConfig::default(), Arc::new(SystemClock::new()));
    for i in 0..n {
        let mut info = NodeInfo::new(
            format!("xtts-{i:04}"),
            EngineKind::Xtts,
            format!("http://10.0.{}.{}:8001", i / 250, i % 250),
        );
        info.capacity = 1_000_000;
        info.weight = 1 + (i % 4) as u32;
        r.register(info, NodeState::Ready);
    }
    // Give every node a latency sample (200–1200 ms) so P2C compares real figures.
    let seed = PowerOfTwoChoices::with_seed(1);
    let exclude = Vec::new();
    for k in 0..n * 4 {
        let lease = r
            .select(
                EngineKind::Xtts,
                &seed,
                &SelectContext {
                    voice: None,
                    exclude: &exclude,
                },
            )
            .expect("a ready node");
        lease.finish(
            Outcome::Success,
            Duration::from_millis(200 + (k as u64 * 37) % 1000),
        );
    }
    r
}

fn voices() -> Vec<String> {
    (0..1024).map(|i| format!("voice-{i}")).collect()
}

fn bench_select(c: &mut Criterion) {
    let voices = voices();
    let mut group = c.benchmark_group("registry_select");
    group.warm_up_time(Duration::from_millis(500));
    group.measurement_time(Duration::from_secs(2));
    for n in SIZES {
        let r = registry(n);
        for kind in PolicyKind::ALL {
            let policy = kind.build();
            let mut k = 0usize;
            group.bench_with_input(BenchmarkId::new(kind.as_str(), n), &n, |b, _| {
                b.iter(|| {
                    k = k.wrapping_add(1);
                    let ctx = SelectContext {
                        voice: Some(&voices[k % voices.len()]),
                        exclude: &[],
                    };
                    let lease = r.select(EngineKind::Xtts, policy.as_ref(), &ctx).expect("a node");
                    black_box(lease.id());
                })
            });
        }
    }
    group.finish();
}

fn limiter() -> Limiter {
    // Generous rates so every decision runs all four layers to the end.
    Limiter::new(LimiterConfig {
        global_rpm: 1_000_000_000,
        ip_rpm: 1_000_000,
        endpoint_rpm: BTreeMap::from([(ENDPOINT.to_string(), 1_000_000_000)]),
        node_rpm: 1_000_000_000,
        max_tracked_keys: 20_000,
        ..LimiterConfig::default()
    })
}

fn ips() -> Vec<IpAddr> {
    (0..10_000u32)
        .map(|i| IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + i)))
        .collect()
}

fn decide(l: &Limiter, ip: IpAddr, node: &str) -> bool {
    let req = LimitRequest {
        ip: Some(ip),
        endpoint: ENDPOINT,
        key: None,
    };
    l.check(&req).is_ok() && l.check_node(node).is_ok()
}

fn bench_limiter(c: &mut Criterion) {
    let l = limiter();
    let ips = ips();
    let nodes: Vec<String> = (0..16).map(|i| format!("xtts-{i:04}")).collect();
    let mut group = c.benchmark_group("limiter");
    group.warm_up_time(Duration::from_millis(500));
    group.measurement_time(Duration::from_secs(2));
    let mut k = 0usize;
    group.bench_function("decision_10k_ips", |b| {
        b.iter(|| {
            k = k.wrapping_add(1);
            black_box(decide(&l, ips[k % ips.len()], &nodes[k % nodes.len()]))
        })
    });
    group.finish();
}

/// Nanoseconds per call of `f` over `iters` calls, after a warm-up.
fn time_per_op(iters: usize, mut f: impl FnMut(usize)) -> f64 {
    for k in 0..iters / 10 {
        f(k);
    }
    let start = Instant::now();
    for k in 0..iters {
        f(k);
    }
    start.elapsed().as_nanos() as f64 / iters as f64
}

fn print_targets() {
    let r = registry(1000);
    let p2c: Arc<dyn BalancePolicy> = PolicyKind::PowerOfTwo.build();
    let select_ns = time_per_op(1_000_000, |_| {
        let lease = r
            .select(EngineKind::Xtts, p2c.as_ref(), &SelectContext::default())
            .expect("a node");
        black_box(lease.id());
    });
    let l = limiter();
    let ips = ips();
    let nodes: Vec<String> = (0..16).map(|i| format!("xtts-{i:04}")).collect();
    let limiter_ns = time_per_op(1_000_000, |k| {
        black_box(decide(&l, ips[k % ips.len()], &nodes[k % nodes.len()]));
    });
    let verdict = |ok: bool| if ok { "met" } else { "MISSED" };
    println!();
    println!(
        "target: p2c select at 1000 nodes <= 1 µs: measured {:.0} ns ({})",
        select_ns,
        verdict(select_ns <= 1000.0)
    );
    println!(
        "target: limiter decision <= 500 ns: measured {:.0} ns ({})",
        limiter_ns,
        verdict(limiter_ns <= 500.0)
    );
}

fn main() {
    let mut c = Criterion::default().configure_from_args();
    bench_select(&mut c);
    bench_limiter(&mut c);
    c.final_summary();
    // `cargo bench` passes --bench; `cargo test --benches` runs each
    // benchmark once and needs no timed figures.
    if std::env::args().any(|a| a == "--bench") {
        print_targets();
    }
}
