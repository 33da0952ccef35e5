//! The gateway's operator upkeep: live settings applied to the running
//! gateway (saved ones at start, changes from the admin API, and those other
//! gateways publish in PostgreSQL), node trouble announced and cleared on
//! recovery, supervised local workers launched, and the warning about a
//! default admin password on a public address.
//!
//! Invariants: a settings change reaches the limiter, the balancing policy
//! and the log level at once (the default engine is read at each request);
//! every background task here stops with the gateway.

use crate::announcements::Kind;
use crate::gateway::{Gateway, limiter_config, policy_kind};
use crate::logs::iso8601;
use crate::settings::Settings;
use crate::shared::PgSettings;
use crate::shared::settings::POLL_INTERVAL;
use std::sync::Arc;
use std::time::SystemTime;
use vctts_core::registry::{NodeState, RegistryEvent};

/// Applies live settings to the running gateway: limiter rates and cap,
/// balancing policy, log level (the default engine is read at each request).
pub fn apply_settings(gw: &Gateway, s: &Settings) {
    let mut cfg = gw.config().clone();
    cfg.limiter.enabled = s.limiter.enabled;
    cfg.limiter.global_rpm = s.limiter.global_rpm;
    cfg.limiter.ip_rpm = s.limiter.ip_rpm;
    cfg.limiter.concurrent_limit = s.limiter.concurrent_limit as usize;
    gw.limiter().reconfigure(limiter_config(&cfg));
    gw.set_policy(policy_kind(s.balance_policy).build());
    if let Some(l) = crate::logs::installed() {
        if let Err(e) = l.set_level(s.filter_directive()) {
            tracing::warn!(error = %e, "could not change the log level");
        }
    }
}

fn host_is_loopback(host: &str) -> bool {
    let h = host.trim().trim_start_matches('[').trim_end_matches(']');
    h.eq_ignore_ascii_case("localhost")
        || h.parse::<std::net::IpAddr>()
            .map(|ip| ip.is_loopback())
            .unwrap_or(false)
}

/// The announcement key of a node's condition.
pub fn node_key(id: &str) -> String {
    format!("node:{id}")
}

/// Starts the operator background work: saved settings are applied, node
/// trouble is announced (and cleared on recovery), local workers are
/// launched, and a default admin password on a public address is warned
/// about. Stops with the gateway.
pub fn start(gw: &Arc<Gateway>) {
    let ops = &gw.ops();
    apply_settings(gw, &ops.settings.get());
    if ops.auth.default_password() && !host_is_loopback(&gw.config().server.host) {
        tracing::warn!(
            host = %gw.config().server.host,
            "THE ADMIN PASSWORD IS THE DEFAULT and the gateway listens on a non-loopback address: \
             set auth.admin_password (e.g. ADMIN_PASSWORD) now"
        );
        ops.announcements.raise(
            "auth:default_password",
            Kind::Error,
            "The admin password is the default on a public address; change auth.admin_password.",
        );
    }
    let mut events = gw.registry().subscribe();
    let watcher = gw.clone();
    let stopped = gw.stopped();
    tokio::spawn(async move {
        tokio::pin!(stopped);
        loop {
            tokio::select! {
                ev = events.recv() => match ev {
                    Ok(ev) => announce(&watcher, ev),
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => resync(&watcher),
                    Err(_) => break,
                },
                _ = &mut stopped => break,
            }
        }
    });
    ops.supervisor.start(|| gw.stopped());
}

fn describe(gw: &Gateway, id: &str) -> String {
    gw.registry()
        .snapshot()
        .into_iter()
        .find(|s| s.info.id.as_str() == id)
        .map(|s| format!("{} node {} ({})", s.info.engine, id, s.info.endpoint))
        .unwrap_or_else(|| format!("node {id}"))
}

fn announce(gw: &Gateway, ev: RegistryEvent) {
    let board = &gw.ops().announcements;
    match ev {
        RegistryEvent::Offline(id) => {
            let when = iso8601(SystemTime::now());
            board.raise(
                &node_key(id.as_str()),
                Kind::Warning,
                &format!("{} is offline (since {when})", describe(gw, id.as_str())),
            );
        }
        RegistryEvent::StateChanged { id, to, .. } => match to {
            NodeState::Error => {
                let reason = gw
                    .link(&id)
                    .and_then(|l| l.reason)
                    .unwrap_or_else(|| "no reason given".into());
                board.raise(
                    &node_key(id.as_str()),
                    Kind::Error,
                    &format!("{} failed: {reason}", describe(gw, id.as_str())),
                );
            }
            NodeState::Offline => {}
            _ => {
                board.clear(&node_key(id.as_str()));
            }
        },
        RegistryEvent::Joined(snap) => match snap.state {
            NodeState::Error => announce(
                gw,
                RegistryEvent::StateChanged {
                    id: snap.info.id.clone(),
                    from: NodeState::Offline,
                    to: NodeState::Error,
                },
            ),
            NodeState::Offline => {}
            _ => {
                board.clear(&node_key(snap.info.id.as_str()));
            }
        },
        RegistryEvent::Left(id) => {
            board.clear(&node_key(id.as_str()));
        }
    }
}

/// After missed events: announce from the registry's current view.
fn resync(gw: &Gateway) {
    for s in gw.registry().snapshot() {
        let ev = RegistryEvent::StateChanged {
            id: s.info.id.clone(),
            from: s.state,
            to: s.state,
        };
        if s.state == NodeState::Offline {
            announce(gw, RegistryEvent::Offline(s.info.id.clone()));
        } else {
            announce(gw, ev);
        }
    }
}

/// Follows the shared settings until the gateway stops.
pub fn spawn_follower(gw: &Arc<Gateway>, shared: Arc<PgSettings>) {
    let gw = gw.clone();
    tokio::spawn(async move {
        let stopped = gw.stopped();
        tokio::pin!(stopped);
        let mut tick = tokio::time::interval(POLL_INTERVAL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut failing = false;
        loop {
            tokio::select! {
                _ = tick.tick() => {
                    match shared.follow_once(|version, doc| apply_shared(&gw, version, doc)).await {
                        Ok(_) => failing = false,
                        Err(e) if !failing => {
                            failing = true;
                            tracing::warn!(error = %e, "cannot read the shared live settings; keeping these until the database answers");
                        }
                        Err(_) => {}
                    }
                }
                _ = &mut stopped => break,
            }
        }
    });
}

/// Applies a live settings document another gateway published (`version`
/// of the shared row), through the same validation as a local change.
fn apply_shared(gw: &Gateway, version: i64, doc: &serde_json::Value) {
    match gw.ops().settings.update(doc) {
        Ok(s) => {
            apply_settings(gw, &s);
            tracing::info!(version, "applied live settings changed through another gateway");
        }
        Err(e) => {
            tracing::warn!(version, error = ?e, "the shared live settings were not applied here");
        }
    }
}
