//! Announcements shown on the status page: posted by operators
//! (`POST /admin/api/announcements`), listed in the config file, or raised by
//! the gateway itself when a node goes offline or into error (and cleared
//! when it recovers), or when the admin password is the default on a
//! non-loopback address.
//!
//! Invariants:
//! - every announcement has a unique id (`a-<n>`), a type (`info`,
//!   `warning`, `error`) and a non-empty message of at most
//!   [`MAX_MESSAGE_CHARS`] characters;
//! - expired announcements are never listed and are dropped on the next
//!   change; time is the injected monotonic clock plus a wall-clock origin,
//!   so tests control both;
//! - a system announcement has a key (`node:<id>`); raising it again
//!   replaces it, clearing it removes it, so one condition shows once.

use crate::logs::{iso8601, parse_iso8601};
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use std::time::{Duration, SystemTime};
use vctts_core::clock::SharedClock;
use vctts_core::{Error, Result};

/// Longest message accepted.
pub const MAX_MESSAGE_CHARS: usize = 2000;
/// Most announcements kept; posting beyond this is refused.
pub const MAX_ANNOUNCEMENTS: usize = 200;

/// Severity of an announcement.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// Informational.
    Info,
    /// Something degraded.
    Warning,
    /// Something failed.
    Error,
}

impl Kind {
    /// Parses `info`, `warning`, `error`.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "info" => Some(Kind::Info),
            "warning" => Some(Kind::Warning),
            "error" => Some(Kind::Error),
            _ => None,
        }
    }
}

/// Where an announcement came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    /// The config file.
    Config,
    /// An operator.
    Operator,
    /// The gateway itself.
    System,
}

/// One announcement as the API shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Announcement {
    /// Its id.
    pub id: String,
    /// Severity.
    #[serde(rename = "type")]
    pub kind: Kind,
    /// The text.
    pub message: String,
    /// When it was posted (ISO 8601).
    pub created_at: String,
    /// When it stops being shown (ISO 8601), if ever.
    pub expires_at: Option<String>,
    /// Who posted it.
    pub source: Source,
    /// The condition a system announcement is about (`node:<id>`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
}

#[derive(Debug, Clone)]
struct Entry {
    public: Announcement,
    expires: Option<SystemTime>,
}

/// The announcements of one gateway.
#[derive(Debug)]
pub struct Announcements {
    clock: SharedClock,
    origin: SystemTime,
    inner: Mutex<(u64, Vec<Entry>)>,
}

/// Parses an `expires_at` given as ISO 8601 text (a date means the end of
/// that day, UTC) or Unix seconds.
pub fn parse_expiry(v: &serde_json::Value) -> Result<Option<SystemTime>> {
    match v {
        serde_json::Value::Null => Ok(None),
        serde_json::Value::Number(n) => {
            let secs = n
                .as_f64()
                .filter(|s| s.is_finite() && *s >= 0.0 && *s < 1e11)
                .ok_or_else(|| Error::invalid("expires_at", format!("{n} is not a valid Unix time")))?;
            Ok(Some(SystemTime::UNIX_EPOCH + Duration::from_secs_f64(secs)))
        }
        serde_json::Value::String(s) if s.len() == 10 => parse_iso8601(&format!("{s}T23:59:59Z"))
            .map(Some)
            .ok_or_else(|| Error::invalid("expires_at", format!("{s:?} is not a date (YYYY-MM-DD)"))),
        serde_json::Value::String(s) => parse_iso8601(s).map(Some).ok_or_else(|| {
            Error::invalid(
                "expires_at",
                format!("{s:?} is not an ISO 8601 time (e.g. 2025-12-01T12:00:00Z)"),
            )
        }),
        other => Err(Error::invalid(
            "expires_at",
            format!("must be an ISO 8601 time or Unix seconds, got {other}"),
        )),
    }
}

impl Announcements {
    /// An empty board. Wall time is `origin + clock.now()`.
    pub fn new(clock: SharedClock, origin: SystemTime) -> Self {
        Self {
            clock,
            origin,
            inner: Mutex::new((0, Vec::new())),
        }
    }

    /// The board's wall time now.
    pub fn now(&self) -> SystemTime {
        self.origin + self.clock.now()
    }

    fn sweep(&self, entries: &mut Vec<Entry>) {
        let now = self.now();
        entries.retain(|e| e.expires.is_none_or(|x| x > now));
    }

    /// Posts an announcement and returns it.
    pub fn post(
        &self,
        kind: Kind,
        message: &str,
        expires: Option<SystemTime>,
        source: Source,
        key: Option<String>,
    ) -> Result<Announcement> {
        let message = message.trim();
        if message.is_empty() {
            return Err(Error::invalid("message", "must not be empty"));
        }
        if message.chars().count() > MAX_MESSAGE_CHARS {
            return Err(Error::invalid(
                "message",
                format!("must have at most {MAX_MESSAGE_CHARS} characters"),
            ));
        }
        let now = self.now();
        if let Some(x) = expires {
            if x <= now {
                return Err(Error::invalid("expires_at", "is in the past"));
            }
        }
        let mut inner = self.inner.lock();
        self.sweep(&mut inner.1);
        if let Some(k) = &key {
            inner.1.retain(|e| e.public.key.as_ref() != Some(k));
        }
        if inner.1.len() >= MAX_ANNOUNCEMENTS {
            return Err(Error::invalid(
                "announcements",
                format!("at most {MAX_ANNOUNCEMENTS} announcements can be shown; delete some first"),
            ));
        }
        inner.0 += 1;
        let public = Announcement {
            id: format!("a-{}", inner.0),
            kind,
            message: message.to_string(),
            created_at: iso8601(now),
            expires_at: expires.map(iso8601),
            source,
            key,
        };
        inner.1.push(Entry {
            public: public.clone(),
            expires,
        });
        Ok(public)
    }

    /// Raises (or replaces) the system announcement of a condition.
    pub fn raise(&self, key: &str, kind: Kind, message: &str) {
        if let Err(e) = self.post(kind, message, None, Source::System, Some(key.to_string())) {
            tracing::warn!(error = %e, key, "could not raise an announcement");
        }
    }

    /// Clears the system announcement of a condition; whether there was one.
    pub fn clear(&self, key: &str) -> bool {
        let mut inner = self.inner.lock();
        let before = inner.1.len();
        inner.1.retain(|e| e.public.key.as_deref() != Some(key));
        before != inner.1.len()
    }

    /// Deletes one by id; whether it existed.
    pub fn delete(&self, id: &str) -> bool {
        let mut inner = self.inner.lock();
        let before = inner.1.len();
        inner.1.retain(|e| e.public.id != id);
        before != inner.1.len()
    }

    /// The announcements in force, newest first.
    pub fn list(&self) -> Vec<Announcement> {
        let mut inner = self.inner.lock();
        self.sweep(&mut inner.1);
        inner.1.iter().rev().map(|e| e.public.clone()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use vctts_core::clock::ManualClock;

    fn board() -> (Announcements, Arc<ManualClock>) {
        let clock = Arc::new(ManualClock::new());
        let origin = SystemTime::UNIX_EPOCH + Duration::from_secs(1_750_000_000);
        (Announcements::new(clock.clone(), origin), clock)
    }

    #[test]
    fn post_list_expire_delete() {
        let (b, clock) = board();
        let soon = b.now() + Duration::from_secs(60);
        let a = b
            .post(Kind::Warning, "maintenance", Some(soon), Source::Operator, None)
            .unwrap();
        let c = b.post(Kind::Info, "hello", None, Source::Operator, None).unwrap();
        assert_ne!(a.id, c.id);
        assert_eq!(b.list().len(), 2);
        assert_eq!(b.list()[0].id, c.id, "newest first");
        assert!(a.expires_at.as_deref().unwrap().ends_with('Z'));
        clock.advance(Duration::from_secs(61));
        assert_eq!(b.list().len(), 1, "expired one is gone");
        assert!(b.delete(&c.id));
        assert!(!b.delete(&c.id));
        assert!(b.list().is_empty());
    }

    #[test]
    fn bad_input_is_refused() {
        let (b, _) = board();
        assert!(b.post(Kind::Info, "  ", None, Source::Operator, None).is_err());
        assert!(
            b.post(
                Kind::Info,
                &"x".repeat(MAX_MESSAGE_CHARS + 1),
                None,
                Source::Operator,
                None
            )
            .is_err()
        );
        let past = b.now() - Duration::from_secs(1);
        assert!(
            b.post(Kind::Info, "late", Some(past), Source::Operator, None)
                .is_err()
        );
        assert!(parse_expiry(&serde_json::json!("tomorrow")).is_err());
        assert!(parse_expiry(&serde_json::json!(true)).is_err());
        assert!(parse_expiry(&serde_json::json!(-3)).is_err());
        assert_eq!(parse_expiry(&serde_json::Value::Null).unwrap(), None);
        let d = parse_expiry(&serde_json::json!("2025-12-01")).unwrap().unwrap();
        assert_eq!(iso8601(d), "2025-12-01T23:59:59.000Z");
        let t = parse_expiry(&serde_json::json!(1_750_000_100)).unwrap().unwrap();
        assert_eq!(t, SystemTime::UNIX_EPOCH + Duration::from_secs(1_750_000_100));
    }

    #[test]
    fn system_conditions_show_once() {
        let (b, _) = board();
        b.raise("node:x", Kind::Warning, "node x offline");
        b.raise("node:x", Kind::Error, "node x failed");
        let l = b.list();
        assert_eq!(l.len(), 1);
        assert_eq!(l[0].kind, Kind::Error);
        assert!(b.clear("node:x"));
        assert!(!b.clear("node:x"));
        assert!(b.list().is_empty());
    }
}
