//! Operating a gateway: the admin API (`/admin/api/*`), authentication of
//! the public API, live settings, announcements, logs and supervised local
//! workers.
//!
//! - [`Ops`]: the operator-facing state a [`Gateway`] carries (auth, live
//!   settings, announcements, the log hub, the supervisor);
//! - [`guard`]: the middlewares — admin authentication with the CSRF check,
//!   and API-key authentication of the public API with scopes;
//! - [`handlers`]: the admin endpoints and the public
//!   `GET /api/v3/announcements`;
//! - [`models`]: fetching models from the hub and following the progress;
//! - [`start`]: the background work (applying saved settings, announcing
//!   node trouble, supervising local workers, the default-password warning).
//!
//! Invariants:
//! - every admin route except `login` requires an operator session or an API
//!   key with the `admin` scope (401 without, 403 with a weaker key); a
//!   cookie-authenticated call that changes state also needs
//!   `X-Requested-With: vctts` (403 otherwise);
//! - every admin call, allowed or not, leaves one `audit` record: who, what,
//!   target, result;
//! - a settings change is applied to the running gateway (limiter, policy,
//!   default engine, log level) before the answer is sent.

pub mod guard;
pub mod handlers;
pub mod models;

use crate::announcements::{Announcements, Kind};
use crate::auth::Auth;
use crate::config::GatewayConfig;
use crate::gateway::{Gateway, limiter_config, policy_kind};
use crate::logs::{LogHub, LogRecord, iso8601};
use crate::settings::{Settings, SettingsStore};
use crate::supervisor::Supervisor;
use axum::Router;
use std::sync::Arc;
use std::time::SystemTime;
use vctts_core::Result;
use vctts_core::clock::SharedClock;
use vctts_core::registry::{NodeState, RegistryEvent};

/// The operator-facing state of a gateway.
#[derive(Debug)]
pub struct Ops {
    /// Admin login and API keys.
    pub auth: Auth,
    /// Live settings.
    pub settings: SettingsStore,
    /// Announcements.
    pub announcements: Announcements,
    /// Log records (the process's hub when logging is installed).
    pub logs: Arc<LogHub>,
    /// Supervised local workers.
    pub supervisor: Supervisor,
}

impl Ops {
    /// Builds the operator state from the config: hashes the secrets,
    /// registers them with the log hub for redaction, loads saved settings
    /// and the configured announcements.
    pub fn new(cfg: &GatewayConfig, clock: SharedClock) -> Result<Self> {
        let logs = crate::logs::installed()
            .map(|l| l.hub().clone())
            .unwrap_or_else(LogHub::memory);
        Self::with_logs(cfg, clock, logs)
    }

    /// As [`Ops::new`] with a given log hub.
    pub fn with_logs(cfg: &GatewayConfig, clock: SharedClock, logs: Arc<LogHub>) -> Result<Self> {
        if let Some(p) = &cfg.auth.admin_password {
            logs.add_secret(p);
        }
        for k in &cfg.auth.api_keys {
            logs.add_secret(&k.key);
        }
        if let Some(t) = &cfg.cluster.token {
            logs.add_secret(t);
        }
        let auth = Auth::new(&cfg.auth, clock.clone())?;
        let settings = SettingsStore::open(cfg, &cfg.storage.data_dir)?;
        let announcements = Announcements::new(clock, SystemTime::now());
        for (i, a) in cfg.announcements.iter().enumerate() {
            let kind = Kind::parse(&a.kind)
                .ok_or_else(|| vctts_core::Error::Config(format!("announcements[{i}].type {:?}", a.kind)))?;
            let expires = match &a.expires {
                Some(e) => crate::announcements::parse_expiry(&serde_json::Value::String(e.clone()))
                    .map_err(|e| vctts_core::Error::Config(format!("announcements[{i}].expires: {e}")))?,
                None => None,
            };
            if expires.is_some_and(|x| x <= announcements.now()) {
                continue;
            }
            announcements.post(
                kind,
                &a.message,
                expires,
                crate::announcements::Source::Config,
                Some(format!("config:{i}")),
            )?;
        }
        let supervisor = Supervisor::new(&cfg.local_workers)?;
        Ok(Self {
            auth,
            settings,
            announcements,
            logs,
            supervisor,
        })
    }

    /// Writes one audit record: who did what to which target, and how it went.
    pub fn audit(
        &self,
        actor: &str,
        action: &str,
        target: &str,
        result: &str,
        request_id: Option<&str>,
        client_ip: Option<String>,
    ) {
        let mut extra = serde_json::Map::new();
        extra.insert("actor".into(), actor.into());
        extra.insert("action".into(), action.into());
        extra.insert("target".into(), target.into());
        extra.insert("result".into(), result.into());
        self.logs.publish(LogRecord {
            seq: 0,
            timestamp: iso8601(SystemTime::now()),
            level: if result == "ok" { "INFO" } else { "WARNING" }.into(),
            category: "audit".into(),
            target: "audit".into(),
            request_id: request_id.map(str::to_string),
            client_ip,
            endpoint: None,
            method: None,
            status_code: None,
            duration_ms: None,
            message: format!("{actor} {action} {target}: {result}"),
            extra,
        });
    }
}

/// Applies live settings to the running gateway: limiter rates and cap,
/// balancing policy, log level (the default engine is read at each request).
pub fn apply_settings(gw: &Gateway, s: &Settings) {
    let mut cfg = gw.config().clone();
    cfg.limiter.enabled = s.limiter.enabled;
    cfg.limiter.global_rpm = s.limiter.global_rpm;
    cfg.limiter.ip_rpm = s.limiter.ip_rpm;
    cfg.limiter.concurrent_limit = s.limiter.concurrent_limit as usize;
    gw.limiter.reconfigure(limiter_config(&cfg));
    gw.set_policy(policy_kind(s.balance_policy).build());
    if let Some(l) = crate::logs::installed() {
        if let Err(e) = l.set_level(s.filter_directive()) {
            tracing::warn!(error = %e, "could not change the log level");
        }
    }
}

/// The admin routes and the public announcements route.
pub fn router(gw: &Arc<Gateway>) -> Router<Arc<Gateway>> {
    handlers::routes(gw)
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
    let ops = &gw.ops;
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
    ops.supervisor.start(gw.clone());
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
    let board = &gw.ops.announcements;
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
