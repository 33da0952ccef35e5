//! The operator-facing state a gateway carries: admin authentication and API
//! keys, live settings, announcements, the log hub and the supervised local
//! workers ([`Ops`]), and the audit record every admin call leaves.
//!
//! Invariants: every configured secret (admin password, API keys, cluster
//! token) is registered with the log hub for redaction before anything can
//! log it; configured announcements that already expired are not posted.

use crate::announcements::{Announcements, Kind};
use crate::auth::Auth;
use crate::config::GatewayConfig;
use crate::logs::{LogHub, LogRecord, iso8601};
use crate::settings::SettingsStore;
use crate::supervisor::Supervisor;
use std::sync::Arc;
use std::time::SystemTime;
use vctts_core::Result;
use vctts_core::clock::SharedClock;

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
