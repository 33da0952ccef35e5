//! The registry's life cycle on a manual clock: registration, heartbeats,
//! sweeps, events, snapshots and concurrent selection.

use std::sync::Arc;
use std::time::Duration;
use tokio::sync::broadcast::Receiver;
use tokio::sync::broadcast::error::TryRecvError;
use vctts_core::EngineKind;
use vctts_core::balance::{LeastInFlight, PolicyKind};
use vctts_core::clock::ManualClock;
use vctts_core::registry::{
    NodeId, NodeInfo, NodeMetrics, NodeState, Outcome, Registry, RegistryConfig, RegistryEvent, SelectContext,
};

fn setup() -> (Arc<Registry>, ManualClock) {
    let clock = ManualClock::new();
    let r = Registry::new(RegistryConfig::default(), Arc::new(clock.clone()));
    (Arc::new(r), clock)
}

fn info(id: &str, engine: EngineKind, endpoint: &str) -> NodeInfo {
    NodeInfo::new(id, engine, endpoint)
}

fn drain(rx: &mut Receiver<RegistryEvent>) -> Vec<RegistryEvent> {
    let mut out = Vec::new();
    loop {
        match rx.try_recv() {
            Ok(e) => out.push(e),
            Err(TryRecvError::Empty) => return out,
            Err(e) => panic!("event channel: {e}"),
        }
    }
}

fn kinds(events: &[RegistryEvent]) -> Vec<String> {
    events
        .iter()
        .map(|e| match e {
            RegistryEvent::Joined(s) => format!("joined {}", s.info.id),
            RegistryEvent::Left(id) => format!("left {id}"),
            RegistryEvent::StateChanged { id, from, to } => format!("{id} {from}->{to}"),
            RegistryEvent::Offline(id) => format!("offline {id}"),
        })
        .collect()
}

#[test]
fn heartbeats_sweep_offline_and_retention() {
    let (r, clock) = setup();
    let mut rx = r.subscribe();
    let a = r.register(info("a", EngineKind::Xtts, "http://a:8001"), NodeState::Standby);
    let b = r.register(info("b", EngineKind::Xtts, "http://b:8001"), NodeState::Ready);
    assert_eq!(kinds(&drain(&mut rx)), ["joined a", "joined b"]);

    clock.advance(Duration::from_secs(10));
    r.heartbeat(&a, NodeState::Ready, NodeMetrics::default()).unwrap();
    assert_eq!(kinds(&drain(&mut rx)), ["a standby->ready"]);

    // b's last sign of life was at 0 s: at 29.999 s it is alive, at 30 s dead.
    clock.set(Duration::from_millis(29_999));
    assert!(r.sweep().is_empty());
    clock.set(Duration::from_secs(30));
    assert_eq!(r.sweep(), std::slice::from_ref(&b));
    assert_eq!(kinds(&drain(&mut rx)), ["offline b"]);
    assert_eq!(r.node(&b).unwrap().state, NodeState::Offline);
    assert_eq!(r.node(&b).unwrap().since_heartbeat, Duration::from_secs(30));
    assert!(r.sweep().is_empty(), "offline only once");

    // An offline node that heartbeats comes back.
    r.heartbeat(&b, NodeState::Ready, NodeMetrics::default()).unwrap();
    assert_eq!(kinds(&drain(&mut rx)), ["b offline->ready"]);

    // Silent again: offline at 60 s, forgotten 5 min later.
    clock.set(Duration::from_secs(60));
    r.heartbeat(&a, NodeState::Ready, NodeMetrics::default()).unwrap();
    assert_eq!(r.sweep(), std::slice::from_ref(&b));
    clock.set(Duration::from_secs(60 + 299));
    r.heartbeat(&a, NodeState::Ready, NodeMetrics::default()).unwrap();
    r.sweep();
    assert!(r.node(&b).is_some());
    clock.set(Duration::from_secs(60 + 300));
    r.sweep();
    assert!(r.node(&b).is_none());
    assert_eq!(kinds(&drain(&mut rx)), ["offline b", "left b"]);
    assert_eq!(
        r.heartbeat(&b, NodeState::Ready, NodeMetrics::default())
            .unwrap_err()
            .code(),
        "unknown_node",
        "a forgotten node must register again"
    );
}

#[test]
fn same_endpoint_replaces_old_entry() {
    let (r, _) = setup();
    let mut rx = r.subscribe();
    r.register(info("old", EngineKind::Xtts, "http://h:8001"), NodeState::Ready);
    r.register(info("new", EngineKind::Xtts, "http://h:8001"), NodeState::Ready);
    assert_eq!(kinds(&drain(&mut rx)), ["joined old", "left old", "joined new"]);
    assert_eq!(r.len(), 1);
    // The same id again (e.g. the worker restarted): Joined only.
    r.register(info("new", EngineKind::Xtts, "http://h:8001"), NodeState::Loading);
    assert_eq!(kinds(&drain(&mut rx)), ["joined new"]);
    assert_eq!(r.node(&NodeId::new("new")).unwrap().state, NodeState::Loading);
    // The same id from another engine and endpoint moves it.
    r.register(
        info("new", EngineKind::OpenVoice, "http://h:8002"),
        NodeState::Ready,
    );
    let snap = r.snapshot();
    assert_eq!(snap.len(), 1);
    assert_eq!(snap[0].info.engine, EngineKind::OpenVoice);
    let lf = LeastInFlight::new();
    assert!(
        r.select(EngineKind::Xtts, &lf, &SelectContext::default())
            .is_err()
    );
    assert!(
        r.select(EngineKind::OpenVoice, &lf, &SelectContext::default())
            .is_ok()
    );
}

#[test]
fn set_state_deregister_and_snapshot_order() {
    let (r, _) = setup();
    let mut rx = r.subscribe();
    r.register(
        info("z", EngineKind::GptSovits, "http://z:9880"),
        NodeState::Ready,
    );
    r.register(info("b", EngineKind::Xtts, "http://b:8001"), NodeState::Ready);
    r.register(info("a", EngineKind::Xtts, "http://a:8001"), NodeState::Ready);
    r.register(
        info("m", EngineKind::OpenVoice, "http://m:8002"),
        NodeState::Ready,
    );
    let order: Vec<_> = r.snapshot().into_iter().map(|s| s.info.id.to_string()).collect();
    assert_eq!(
        order,
        ["a", "b", "m", "z"],
        "by engine (xtts, openvoice, gpt-sovits), then id"
    );
    drain(&mut rx);
    let m = NodeId::new("m");
    r.set_state(&m, NodeState::Standby).unwrap();
    r.set_state(&m, NodeState::Standby).unwrap(); // no change, no event
    r.deregister(&m).unwrap();
    assert_eq!(kinds(&drain(&mut rx)), ["m ready->standby", "left m"]);
    assert_eq!(r.deregister(&m).unwrap_err().code(), "unknown_node");
    let joined = RegistryEvent::Left(NodeId::new("m"));
    assert_eq!(
        serde_json::to_string(&joined).unwrap(),
        r#"{"event":"left","data":"m"}"#
    );
}

#[test]
fn concurrent_selects_never_exceed_capacity() {
    let (r, _) = setup();
    for i in 0..4 {
        let mut n = info(&format!("n{i}"), EngineKind::Xtts, &format!("http://n{i}:8001"));
        n.capacity = 3;
        r.register(n, NodeState::Ready);
    }
    let policy = PolicyKind::PowerOfTwo.build();
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let (r, policy) = (r.clone(), policy.clone());
            std::thread::spawn(move || {
                let mut max_seen = 0;
                for _ in 0..2_000 {
                    let mut held = Vec::new();
                    while let Ok(l) = r.select(EngineKind::Xtts, policy.as_ref(), &SelectContext::default()) {
                        held.push(l);
                        if held.len() == 4 {
                            break;
                        }
                    }
                    for s in r.snapshot() {
                        max_seen = max_seen.max(s.in_flight);
                    }
                    for (k, l) in held.into_iter().enumerate() {
                        if k % 2 == 0 {
                            l.finish(Outcome::Success, Duration::from_millis(5));
                        }
                    }
                }
                max_seen
            })
        })
        .collect();
    for t in threads {
        assert!(t.join().unwrap() <= 3);
    }
    assert!(r.snapshot().iter().all(|s| s.in_flight == 0));
    let total: u64 = r.snapshot().iter().map(|s| s.requests_total).sum();
    assert!(total > 0);
}

#[test]
fn selection_reads_gateway_in_flight_not_reported() {
    let (r, _) = setup();
    let mut a = info("a", EngineKind::Xtts, "http://a:8001");
    a.capacity = 2;
    let a = r.register(a, NodeState::Ready);
    // The worker reports 2 running requests (from another gateway, say); the
    // gateway's own count decides.
    let m = NodeMetrics {
        in_flight: 2,
        ..NodeMetrics::default()
    };
    r.heartbeat(&a, NodeState::Ready, m).unwrap();
    let lf = LeastInFlight::new();
    let l1 = r
        .select(EngineKind::Xtts, &lf, &SelectContext::default())
        .unwrap();
    let l2 = r
        .select(EngineKind::Xtts, &lf, &SelectContext::default())
        .unwrap();
    assert!(
        r.select(EngineKind::Xtts, &lf, &SelectContext::default())
            .is_err()
    );
    let snap = r.node(&a).unwrap();
    assert_eq!((snap.in_flight, snap.metrics.in_flight), (2, 2));
    drop((l1, l2));
    assert_eq!(r.selectable(EngineKind::Xtts), 1);
}
