//! Live settings: the part of the gateway configuration an operator changes
//! at run time through `GET|PUT /admin/api/config` — limiter rates and the
//! concurrency cap, the default engine, the balancing policy, the log level
//! and the defaults of new announcements.
//!
//! The starting values come from the config file; a saved `settings.json`
//! in the data folder (written by every accepted PUT) overrides them, so a
//! restart keeps what the operator chose.
//!
//! Invariants:
//! - an update is validated as a whole before anything changes; a refusal
//!   names the field (`limiter.ip_rpm`) and leaves the settings untouched;
//! - updates are partial: only the fields given change; nested objects
//!   (`{"limiter":{"ip_rpm":5}}`) and dotted keys (`{"limiter.ip_rpm":5}`)
//!   are both accepted; unknown fields are refused;
//! - the file is written atomically (temporary file, then rename).

use crate::config::{GatewayConfig, PolicyName};
use parking_lot::RwLock;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::path::{Path, PathBuf};
use vctts_core::{EngineKind, Error, Result};

/// The file the settings are saved in, inside the data folder.
pub const SETTINGS_FILE: &str = "settings.json";

/// Log levels an operator may choose.
pub const LOG_LEVELS: [&str; 6] = ["TRACE", "DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"];

/// Limiter settings that can change at run time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LimiterSettings {
    /// Whether limits apply.
    pub enabled: bool,
    /// Requests per minute for the whole service (0 = unlimited).
    pub global_rpm: u32,
    /// Requests per minute per client IP (0 = unlimited).
    pub ip_rpm: u32,
    /// Requests in flight at once (at least 1).
    pub concurrent_limit: u32,
}

/// Defaults of announcements posted without them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AnnouncementDefaults {
    /// `info`, `warning` or `error`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Lifetime in seconds of an announcement posted without `expires_at`
    /// (0 = until deleted).
    pub ttl_seconds: u64,
}

/// The live settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Settings {
    /// Rate limits.
    pub limiter: LimiterSettings,
    /// Engine used when a request names none (`null`: the first available).
    pub default_engine: Option<EngineKind>,
    /// Node selection policy.
    pub balance_policy: PolicyName,
    /// Log level (DEBUG, INFO, WARNING, ERROR, CRITICAL).
    pub log_level: String,
    /// Announcement defaults.
    pub announcements: AnnouncementDefaults,
}

impl Settings {
    /// The settings a config file starts with.
    pub fn from_config(cfg: &GatewayConfig) -> Self {
        Self {
            limiter: LimiterSettings {
                enabled: cfg.limiter.enabled,
                global_rpm: cfg.limiter.global_rpm,
                ip_rpm: cfg.limiter.ip_rpm,
                concurrent_limit: cfg.limiter.concurrent_limit.min(u32::MAX as usize) as u32,
            },
            default_engine: cfg.default_engine,
            balance_policy: cfg.registry.policy,
            log_level: cfg.logging.level.to_ascii_uppercase(),
            announcements: AnnouncementDefaults {
                kind: "info".into(),
                ttl_seconds: 0,
            },
        }
    }

    /// The `tracing` filter directive of the log level.
    pub fn filter_directive(&self) -> &'static str {
        level_directive(&self.log_level)
    }
}

/// The `tracing` directive of an operator log level.
pub fn level_directive(level: &str) -> &'static str {
    match level.to_ascii_uppercase().as_str() {
        "TRACE" => "trace",
        "DEBUG" => "debug",
        "WARNING" | "WARN" => "warn",
        "ERROR" | "CRITICAL" => "error",
        _ => "info",
    }
}

/// A refused update: the field and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidSetting {
    /// The dotted path of the field (`limiter.ip_rpm`).
    pub field: String,
    /// Why.
    pub message: String,
}

impl std::fmt::Display for InvalidSetting {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}

fn bad(field: &str, message: impl Into<String>) -> InvalidSetting {
    InvalidSetting {
        field: field.to_string(),
        message: message.into(),
    }
}

/// Flattens nested objects into dotted keys (`limiter.ip_rpm`).
fn flatten(prefix: &str, obj: &Map<String, Value>, out: &mut Vec<(String, Value)>) {
    for (k, v) in obj {
        let key = if prefix.is_empty() {
            k.clone()
        } else {
            format!("{prefix}.{k}")
        };
        match v {
            Value::Object(inner) if matches!(key.as_str(), "limiter" | "announcements") => {
                flatten(&key, inner, out)
            }
            other => out.push((key, other.clone())),
        }
    }
}

fn as_u32(field: &str, v: &Value) -> std::result::Result<u32, InvalidSetting> {
    match v {
        Value::Number(n) => match n.as_u64() {
            Some(x) if x <= u32::MAX as u64 => Ok(x as u32),
            _ => Err(bad(
                field,
                format!("must be a whole number from 0 to {}, got {n}", u32::MAX),
            )),
        },
        other => Err(bad(field, format!("must be a number, got {other}"))),
    }
}

fn as_str<'a>(field: &str, v: &'a Value) -> std::result::Result<&'a str, InvalidSetting> {
    v.as_str()
        .ok_or_else(|| bad(field, format!("must be a string, got {v}")))
}

/// Applies a partial update to a copy of `current` and validates it.
pub fn apply_update(current: &Settings, update: &Value) -> std::result::Result<Settings, InvalidSetting> {
    let obj = update
        .as_object()
        .ok_or_else(|| bad("body", "must be a JSON object"))?;
    let mut fields = Vec::new();
    flatten("", obj, &mut fields);
    let mut s = current.clone();
    for (field, v) in &fields {
        let f = field.as_str();
        match f {
            "limiter.enabled" => {
                s.limiter.enabled = v
                    .as_bool()
                    .ok_or_else(|| bad(f, format!("must be true or false, got {v}")))?
            }
            "limiter.global_rpm" => s.limiter.global_rpm = as_u32(f, v)?,
            "limiter.ip_rpm" => s.limiter.ip_rpm = as_u32(f, v)?,
            "limiter.concurrent_limit" => {
                let n = as_u32(f, v)?;
                if n == 0 {
                    return Err(bad(f, "must be at least 1, got 0"));
                }
                s.limiter.concurrent_limit = n;
            }
            "default_engine" => {
                s.default_engine = match v {
                    Value::Null => None,
                    Value::String(name) if name.is_empty() => None,
                    Value::String(name) => Some(name.parse::<EngineKind>().map_err(|_| {
                        bad(
                            f,
                            format!("unknown engine {name:?} (xtts, openvoice, gpt-sovits)"),
                        )
                    })?),
                    other => return Err(bad(f, format!("must be an engine name or null, got {other}"))),
                }
            }
            "balance_policy" => {
                let name = as_str(f, v)?;
                s.balance_policy = serde_json::from_value(Value::String(name.to_string())).map_err(|_| {
                    bad(
                        f,
                        format!(
                            "unknown policy {name:?} (round_robin, weighted_round_robin, least_inflight, p2c, voice_affinity)"
                        ),
                    )
                })?;
            }
            "log_level" => {
                let level = as_str(f, v)?.to_ascii_uppercase();
                let level = if level == "WARN" {
                    "WARNING".to_string()
                } else {
                    level
                };
                if !LOG_LEVELS.contains(&level.as_str()) {
                    return Err(bad(
                        f,
                        format!("must be one of {}, got {v}", LOG_LEVELS.join(", ")),
                    ));
                }
                s.log_level = level;
            }
            "announcements.type" => {
                let kind = as_str(f, v)?;
                if !["info", "warning", "error"].contains(&kind) {
                    return Err(bad(f, format!("must be info, warning or error, got {kind:?}")));
                }
                s.announcements.kind = kind.to_string();
            }
            "announcements.ttl_seconds" => {
                let n = as_u32(f, v)?;
                s.announcements.ttl_seconds = n as u64;
            }
            other => return Err(bad(other, "unknown setting")),
        }
    }
    Ok(s)
}

/// The live settings and where they are saved.
#[derive(Debug)]
pub struct SettingsStore {
    current: RwLock<Settings>,
    path: PathBuf,
}

impl SettingsStore {
    /// Starts from the config, then a saved file in `data_dir` if there is
    /// one. A saved file that cannot be read as settings (empty, not JSON, no
    /// longer valid) is renamed `settings.json.broken-<unix time>` and the
    /// server starts from the config, logging both names.
    pub fn open(cfg: &GatewayConfig, data_dir: &Path) -> Result<Self> {
        let path = data_dir.join(SETTINGS_FILE);
        let mut current = Settings::from_config(cfg);
        match std::fs::read(&path) {
            Ok(bytes) => {
                let applied = serde_json::from_slice::<Value>(&bytes)
                    .map_err(|e| format!("not valid JSON: {e}"))
                    .and_then(|saved| apply_update(&current, &saved).map_err(|e| e.to_string()));
                match applied {
                    Ok(s) => current = s,
                    Err(why) => {
                        // Start from the config, keeping the broken file for the operator.
                        let aside = set_aside(&path)?;
                        tracing::error!(
                            file = %path.display(),
                            kept_as = %aside.display(),
                            error = %why,
                            "the saved live settings cannot be used; starting from the config file's values"
                        );
                    }
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(Error::io(format!("reading {}", path.display()), e)),
        }
        Ok(Self {
            current: RwLock::new(current),
            path,
        })
    }

    /// The settings now.
    pub fn get(&self) -> Settings {
        self.current.read().clone()
    }

    /// Where they are saved.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Validates and applies an update, saves it, and returns the new
    /// settings. Saving errors leave the old settings in force.
    pub fn update(&self, update: &Value) -> std::result::Result<Settings, UpdateError> {
        let mut cur = self.current.write();
        let next = apply_update(&cur, update).map_err(UpdateError::Invalid)?;
        save(&self.path, &next).map_err(UpdateError::Save)?;
        *cur = next.clone();
        Ok(next)
    }
}

/// Why an update was not applied.
#[derive(Debug)]
pub enum UpdateError {
    /// A field is not acceptable.
    Invalid(InvalidSetting),
    /// The settings could not be saved.
    Save(Error),
}

/// Renames a broken settings file out of the way; its new name.
fn set_aside(path: &Path) -> Result<PathBuf> {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let aside = path.with_extension(format!("json.broken-{secs}"));
    std::fs::rename(path, &aside).map_err(|e| {
        Error::io(
            format!(
                "{} cannot be used and cannot be moved aside to {}; move or delete it",
                path.display(),
                aside.display()
            ),
            e,
        )
    })?;
    Ok(aside)
}

fn save(path: &Path, s: &Settings) -> Result<()> {
    use std::io::Write;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| Error::io(format!("creating {}", dir.display()), e))?;
    }
    let tmp = path.with_extension("json.tmp");
    let text =
        serde_json::to_vec_pretty(s).map_err(|e| Error::Internal(format!("encoding settings: {e}")))?;
    // Written and synced before the rename, so a crash leaves the old file
    // or the new one, never an empty one.
    let write = || -> std::io::Result<()> {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(&text)?;
        f.sync_all()
    };
    write().map_err(|e| Error::io(format!("writing {}", tmp.display()), e))?;
    std::fs::rename(&tmp, path).map_err(|e| Error::io(format!("renaming to {}", path.display()), e))?;
    if let Some(dir) = path.parent() {
        // The rename itself is durable once the folder is synced.
        if let Ok(d) = std::fs::File::open(dir) {
            let _ = d.sync_all();
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn base() -> Settings {
        Settings::from_config(&GatewayConfig::default())
    }

    #[test]
    fn partial_updates_nested_and_dotted() {
        let s = apply_update(&base(), &json!({"limiter": {"ip_rpm": 5}})).unwrap();
        assert_eq!(s.limiter.ip_rpm, 5);
        assert_eq!(s.limiter.global_rpm, base().limiter.global_rpm);
        let s = apply_update(
            &s,
            &json!({"limiter.global_rpm": 7, "default_engine": "openvoice", "balance_policy": "round_robin",
                    "log_level": "debug", "announcements": {"type": "warning", "ttl_seconds": 60}}),
        )
        .unwrap();
        assert_eq!(s.limiter.global_rpm, 7);
        assert_eq!(s.default_engine, Some(EngineKind::OpenVoice));
        assert_eq!(s.balance_policy, PolicyName::RoundRobin);
        assert_eq!(s.log_level, "DEBUG");
        assert_eq!(s.filter_directive(), "debug");
        assert_eq!(s.announcements.kind, "warning");
        let s = apply_update(&s, &json!({"default_engine": null})).unwrap();
        assert_eq!(s.default_engine, None);
    }

    #[test]
    fn refusals_name_the_field() {
        let cases = [
            (json!({"limiter": {"ip_rpm": -5}}), "limiter.ip_rpm"),
            (json!({"limiter.ip_rpm": "many"}), "limiter.ip_rpm"),
            (
                json!({"limiter": {"concurrent_limit": 0}}),
                "limiter.concurrent_limit",
            ),
            (json!({"limiter": {"enabled": 1}}), "limiter.enabled"),
            (json!({"default_engine": "espeak"}), "default_engine"),
            (json!({"balance_policy": "random"}), "balance_policy"),
            (json!({"log_level": "LOUD"}), "log_level"),
            (json!({"announcements": {"type": "shout"}}), "announcements.type"),
            (json!({"limiter": {"ip_rmp": 5}}), "limiter.ip_rmp"),
            (json!({"colour": "red"}), "colour"),
            (json!([1, 2]), "body"),
        ];
        for (update, field) in cases {
            let e = apply_update(&base(), &update).unwrap_err();
            assert_eq!(e.field, field, "{update}: {e}");
        }
    }

    #[test]
    fn persisted_across_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = GatewayConfig::default();
        let store = SettingsStore::open(&cfg, dir.path()).unwrap();
        assert_eq!(store.get(), base());
        store.update(&json!({"limiter": {"ip_rpm": 3}})).unwrap();
        assert!(matches!(
            store.update(&json!({"limiter": {"ip_rpm": 4}, "log_level": "nope"})),
            Err(UpdateError::Invalid(_))
        ));
        assert_eq!(store.get().limiter.ip_rpm, 3, "a refused update changes nothing");
        let again = SettingsStore::open(&cfg, dir.path()).unwrap();
        assert_eq!(again.get().limiter.ip_rpm, 3);
        assert!(!dir.path().join("settings.json.tmp").exists());
    }

    #[test]
    fn a_broken_saved_file_is_set_aside_and_the_config_applies() {
        let cfg = GatewayConfig::default();
        for broken in [&b""[..], b"\0\x01garbage", b"{\"log_level\": 3}"] {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join(SETTINGS_FILE);
            std::fs::write(&path, broken).unwrap();
            let store = SettingsStore::open(&cfg, dir.path()).unwrap();
            assert_eq!(store.get(), base(), "{broken:?}");
            assert!(!path.exists(), "moved away");
            let kept: Vec<_> = std::fs::read_dir(dir.path())
                .unwrap()
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .filter(|n| n.starts_with("settings.json.broken-"))
                .collect();
            assert_eq!(kept.len(), 1, "{kept:?}");
            assert_eq!(std::fs::read(dir.path().join(&kept[0])).unwrap(), broken);
            // Saving works again.
            store.update(&json!({"limiter": {"ip_rpm": 5}})).unwrap();
            assert_eq!(
                SettingsStore::open(&cfg, dir.path())
                    .unwrap()
                    .get()
                    .limiter
                    .ip_rpm,
                5
            );
        }
    }
}
