//! Authentication of operators and API clients.
//!
//! - **Admin sessions**: `POST /admin/api/login` checks the password against
//!   an argon2 hash made at start-up (the plain password is never kept by
//!   this module nor logged) and issues a random session token, sent as the
//!   `vctts_session` cookie (`HttpOnly; SameSite=Strict; Path=/`). Sessions
//!   expire on the injected clock.
//! - **API keys** (`auth.api_keys`): only a SHA-256 digest of each key is
//!   kept (keys are long random strings, so a fast hash is enough and keeps
//!   every request cheap); a key has scopes ([`Scope`]) and an optional rate
//!   (`rpm`) enforced by the core limiter's key layer. Keys come as
//!   `Authorization: Bearer <key>` or `X-API-Key: <key>`.
//! - **Failed logins** are limited per client IP through
//!   [`vctts_core::limit::Limiter`]: once the budget of failures is spent, the
//!   IP is refused (429) until the limiter would let it through again, without
//!   the password being checked.
//!
//! Invariants:
//! - secrets (passwords, session tokens, keys) never appear in a log record,
//!   an error message or a `Debug` output of this module's types;
//! - comparisons of secrets go through a hash (argon2 for the password,
//!   SHA-256 digests compared in constant time for tokens and keys);
//! - an expired session is refused and forgotten at the next look-up.

use crate::config::{AuthSection, DEFAULT_ADMIN_PASSWORD};
use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use axum::http::HeaderMap;
use parking_lot::Mutex;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::net::IpAddr;
use std::time::Duration;
use vctts_core::clock::SharedClock;
use vctts_core::error::LimitLayer;
use vctts_core::limit::{LimitRequest, Limiter, LimiterConfig};
use vctts_core::{Error, Result};

/// Name of the session cookie.
pub const SESSION_COOKIE: &str = "vctts_session";
/// Header a cookie-authenticated state-changing call must carry (CSRF guard).
pub const CSRF_HEADER: &str = "x-requested-with";
/// Value of [`CSRF_HEADER`].
pub const CSRF_VALUE: &str = "vctts";
/// The admin user name.
pub const ADMIN_USER: &str = "admin";
/// How long a session lasts.
pub const SESSION_TTL: Duration = Duration::from_secs(12 * 3600);
/// Failed logins allowed per client IP per minute.
pub const LOGIN_FAILURES_PER_MINUTE: u32 = 10;
/// Most sessions kept at once; the oldest is dropped beyond this.
pub const MAX_SESSIONS: usize = 1024;

/// What an API key may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Scope {
    /// Synthesis and preprocessing endpoints.
    Synthesize,
    /// Voice listing, extraction and deletion.
    Voices,
    /// The admin API (implies every other scope).
    Admin,
}

impl Scope {
    /// Stable name.
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Synthesize => "synthesize",
            Scope::Voices => "voices",
            Scope::Admin => "admin",
        }
    }

    /// Parses a configured scope name.
    pub fn parse(s: &str) -> Option<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "synthesize" => Some(Scope::Synthesize),
            "voices" => Some(Scope::Voices),
            "admin" => Some(Scope::Admin),
            _ => None,
        }
    }
}

/// A 32-byte SHA-256 digest.
type Digest32 = [u8; 32];

fn digest(secret: &str) -> Digest32 {
    Sha256::digest(secret.as_bytes()).into()
}

/// The hex SHA-256 digest of a session token: what shared sessions store.
pub fn token_digest(token: &str) -> String {
    hex::encode(digest(token))
}

/// Constant-time equality of two digests.
fn same(a: &Digest32, b: &Digest32) -> bool {
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Hashes a password with argon2id and a random salt (PHC string).
pub fn hash_password(password: &str) -> Result<String> {
    use rand::RngCore;
    let mut raw = [0u8; 16];
    rand::rng().fill_bytes(&mut raw);
    let salt = SaltString::encode_b64(&raw).map_err(|e| Error::Internal(format!("making a salt: {e}")))?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| Error::Internal(format!("hashing the admin password: {e}")))
}

/// Whether `password` matches an argon2 PHC string.
pub fn verify_password(hash: &str, password: &str) -> bool {
    match PasswordHash::new(hash) {
        Ok(parsed) => Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok(),
        Err(_) => false,
    }
}

/// One configured API key, as kept in memory (digest only).
#[derive(Clone)]
pub struct ApiKey {
    /// Its name (for logs and audit records).
    pub name: String,
    /// What it may do.
    pub scopes: Vec<Scope>,
    /// Its own requests per minute (0 = no own limit).
    pub rpm: u32,
    digest: Digest32,
}

impl std::fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiKey")
            .field("name", &self.name)
            .field("scopes", &self.scopes)
            .field("rpm", &self.rpm)
            .finish_non_exhaustive()
    }
}

impl ApiKey {
    /// A key from its secret (only the digest is kept).
    pub fn new(name: impl Into<String>, secret: &str, scopes: Vec<Scope>, rpm: u32) -> Self {
        Self {
            name: name.into(),
            scopes,
            rpm,
            digest: digest(secret),
        }
    }

    /// Whether the key grants `scope` (`admin` grants all).
    pub fn allows(&self, scope: Scope) -> bool {
        self.scopes.contains(&scope) || self.scopes.contains(&Scope::Admin)
    }

    /// A stable identifier for rate limiting (not the secret).
    pub fn limit_id(&self) -> String {
        format!("key:{}", hex::encode(&self.digest[..8]))
    }
}

/// Who is calling.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Principal {
    /// A logged-in operator (session cookie).
    Session {
        /// The user.
        username: String,
    },
    /// A client with an API key.
    Key {
        /// The key's name.
        name: String,
        /// Its scopes.
        scopes: Vec<Scope>,
        /// Its own requests per minute.
        rpm: u32,
        /// Rate-limit identifier (see [`ApiKey::limit_id`]).
        limit_id: String,
    },
}

impl Principal {
    /// Whether this principal may use `scope`. Operators may do everything.
    pub fn allows(&self, scope: Scope) -> bool {
        match self {
            Principal::Session { .. } => true,
            Principal::Key { scopes, .. } => scopes.contains(&scope) || scopes.contains(&Scope::Admin),
        }
    }

    /// Who, for audit records (`admin`, `key/<name>`). Not `key:<name>`:
    /// the log redactor reads `key:` as a secret about to follow, and the
    /// name of a key is no secret.
    pub fn actor(&self) -> String {
        match self {
            Principal::Session { username } => username.clone(),
            Principal::Key { name, .. } => format!("key/{name}"),
        }
    }

    /// Whether this came from the session cookie (CSRF applies).
    pub fn is_session(&self) -> bool {
        matches!(self, Principal::Session { .. })
    }

    /// The key's rate-limit identity and rate, for the limiter's key layer.
    pub fn rate_key(&self) -> Option<(&str, u32)> {
        match self {
            Principal::Key { limit_id, rpm, .. } => Some((limit_id.as_str(), *rpm)),
            Principal::Session { .. } => None,
        }
    }
}

#[derive(Debug, Clone)]
struct Session {
    username: String,
    created: Duration,
    expires: Duration,
}

/// A freshly issued session.
pub struct IssuedSession {
    /// The token (goes only into the `Set-Cookie` header).
    pub token: String,
    /// The user.
    pub username: String,
    /// How long it lasts.
    pub ttl: Duration,
}

impl std::fmt::Debug for IssuedSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IssuedSession")
            .field("username", &self.username)
            .field("ttl", &self.ttl)
            .finish_non_exhaustive()
    }
}

impl IssuedSession {
    /// The `Set-Cookie` value that stores it.
    pub fn cookie(&self) -> String {
        format!(
            "{SESSION_COOKIE}={}; HttpOnly; SameSite=Strict; Path=/; Max-Age={}",
            self.token,
            self.ttl.as_secs()
        )
    }
}

/// The `Set-Cookie` value that clears the session cookie.
pub fn clear_cookie() -> String {
    format!("{SESSION_COOKIE}=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0")
}

/// The authenticator: admin password hash, sessions, API keys.
pub struct Auth {
    clock: SharedClock,
    admin_user: String,
    admin_hash: String,
    default_password: bool,
    api_key_enabled: bool,
    keys: Vec<ApiKey>,
    session_ttl: Duration,
    sessions: Mutex<HashMap<Digest32, Session>>,
    login_limiter: Limiter,
    blocked: Mutex<HashMap<IpAddr, Block>>,
    account_limiter: Limiter,
    account_block: Mutex<Block>,
}

/// A login block: until when, and how many blocks came before it (each one
/// is twice as long as the one before).
#[derive(Debug, Clone, Copy, Default)]
struct Block {
    until: Duration,
    strikes: u32,
}

/// The first login block.
pub const LOGIN_BLOCK_BASE: Duration = Duration::from_secs(30);
/// The longest login block.
pub const LOGIN_BLOCK_MAX: Duration = Duration::from_secs(3600);
/// Failed logins per minute for the admin account from all addresses
/// together before the account is blocked for a while.
pub const ACCOUNT_FAILURES_PER_MINUTE: u32 = 5 * LOGIN_FAILURES_PER_MINUTE;

impl Block {
    /// Records one more block starting `now`, twice as long as the last.
    fn strike(&mut self, now: Duration, at_least: Duration) {
        let grow = LOGIN_BLOCK_BASE.saturating_mul(1u32 << self.strikes.min(16));
        self.until = now + grow.min(LOGIN_BLOCK_MAX).max(at_least);
        self.strikes = self.strikes.saturating_add(1);
    }

    fn remaining(&self, now: Duration) -> Option<Duration> {
        (self.until > now).then(|| self.until - now)
    }
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Auth")
            .field("admin_user", &self.admin_user)
            .field("default_password", &self.default_password)
            .field("api_key_enabled", &self.api_key_enabled)
            .field("keys", &self.keys)
            .field("sessions", &self.sessions.lock().len())
            .finish_non_exhaustive()
    }
}

impl Auth {
    /// Builds the authenticator from `auth:`; hashes the password (argon2)
    /// and the keys (SHA-256). Unknown scopes are errors naming the key.
    pub fn new(cfg: &AuthSection, clock: SharedClock) -> Result<Self> {
        Self::with_ttl(cfg, clock, SESSION_TTL)
    }

    /// As [`Auth::new`] with another session lifetime.
    pub fn with_ttl(cfg: &AuthSection, clock: SharedClock, session_ttl: Duration) -> Result<Self> {
        let (password, default_password) = match &cfg.admin_password {
            Some(p) => (p.as_str(), p == DEFAULT_ADMIN_PASSWORD),
            None => (DEFAULT_ADMIN_PASSWORD, true),
        };
        let admin_hash = hash_password(password)?;
        let mut keys = Vec::with_capacity(cfg.api_keys.len());
        for (i, k) in cfg.api_keys.iter().enumerate() {
            let mut scopes = Vec::new();
            for s in &k.scopes {
                let scope = Scope::parse(s).ok_or_else(|| {
                    Error::Config(format!(
                        "auth.api_keys[{i}].scopes: unknown scope {s:?} (synthesize, voices, admin)"
                    ))
                })?;
                if !scopes.contains(&scope) {
                    scopes.push(scope);
                }
            }
            let key = ApiKey::new(k.name.clone(), &k.key, scopes, k.rpm.unwrap_or(0));
            if keys.iter().any(|o: &ApiKey| same(&o.digest, &key.digest)) {
                return Err(Error::Config(format!(
                    "auth.api_keys[{i}].key is the same as another key's"
                )));
            }
            keys.push(key);
        }
        let login_limiter = Limiter::with_clock(
            LimiterConfig {
                enabled: true,
                global_rpm: 0,
                ip_rpm: LOGIN_FAILURES_PER_MINUTE,
                concurrent_limit: 0,
                ..LimiterConfig::default()
            },
            clock.clone(),
        );
        let account_limiter = Limiter::with_clock(
            LimiterConfig {
                enabled: true,
                global_rpm: ACCOUNT_FAILURES_PER_MINUTE,
                ip_rpm: 0,
                concurrent_limit: 0,
                ..LimiterConfig::default()
            },
            clock.clone(),
        );
        Ok(Self {
            clock,
            admin_user: ADMIN_USER.to_string(),
            admin_hash,
            default_password,
            api_key_enabled: cfg.api_key_enabled,
            keys,
            session_ttl,
            sessions: Mutex::new(HashMap::new()),
            login_limiter,
            blocked: Mutex::new(HashMap::new()),
            account_limiter,
            account_block: Mutex::new(Block::default()),
        })
    }

    /// Whether the admin password is the built-in default.
    pub fn default_password(&self) -> bool {
        self.default_password
    }

    /// Whether the public API requires a key.
    pub fn api_key_enabled(&self) -> bool {
        self.api_key_enabled
    }

    /// The configured keys (digests only).
    pub fn keys(&self) -> &[ApiKey] {
        &self.keys
    }

    /// Checks a login. Errors: `rate_limited` when the IP (or the account,
    /// from all addresses together) spent its failure budget — the password
    /// is then not checked, and each new block of the same IP or account is
    /// twice as long as the one before ([`LOGIN_BLOCK_BASE`] up to
    /// [`LOGIN_BLOCK_MAX`]) until a login succeeds — `unauthorized` otherwise.
    pub fn login(&self, ip: Option<IpAddr>, username: &str, password: &str) -> Result<IssuedSession> {
        let now = self.clock.now();
        let refused = |left: Duration| Error::RateLimited {
            layer: LimitLayer::Ip,
            retry_after: left,
            limit_rpm: 0,
            remaining: 0,
        };
        if let Some(ip) = ip {
            if let Some(left) = self.blocked.lock().get(&ip).and_then(|b| b.remaining(now)) {
                return Err(refused(left));
            }
        }
        if username == self.admin_user {
            if let Some(left) = self.account_block.lock().remaining(now) {
                return Err(Error::RateLimited {
                    layer: LimitLayer::Global,
                    retry_after: left,
                    limit_rpm: 0,
                    remaining: 0,
                });
            }
        }
        let user_ok = username == self.admin_user;
        // Always run the hash, so a wrong user name costs as much as a wrong password.
        let pass_ok = verify_password(&self.admin_hash, password);
        if !(user_ok && pass_ok) {
            if let Some(ip) = ip {
                let check = self.login_limiter.check(&LimitRequest {
                    ip: Some(ip),
                    endpoint: "/admin/api/login",
                    key: None,
                });
                if let Err(r) = check {
                    self.blocked
                        .lock()
                        .entry(ip)
                        .or_default()
                        .strike(now, r.retry_after);
                }
            }
            if user_ok {
                let check = self.account_limiter.check(&LimitRequest {
                    ip: None,
                    endpoint: "/admin/api/login",
                    key: None,
                });
                if let Err(r) = check {
                    self.account_block.lock().strike(now, r.retry_after);
                    tracing::warn!(
                        "too many failed admin logins from all addresses; the account is blocked for a while"
                    );
                }
            }
            tracing::warn!(client_ip = ?ip, "failed admin login");
            return Err(Error::Unauthorized("wrong user name or password".into()));
        }
        if let Some(ip) = ip {
            self.blocked.lock().remove(&ip);
        }
        *self.account_block.lock() = Block::default();
        let token = new_token();
        let mut sessions = self.sessions.lock();
        sessions.retain(|_, s| s.expires > now);
        if sessions.len() >= MAX_SESSIONS {
            if let Some(oldest) = sessions.iter().min_by_key(|(_, s)| s.created).map(|(k, _)| *k) {
                sessions.remove(&oldest);
            }
        }
        sessions.insert(
            digest(&token),
            Session {
                username: self.admin_user.clone(),
                created: now,
                expires: now + self.session_ttl,
            },
        );
        Ok(IssuedSession {
            token,
            username: self.admin_user.clone(),
            ttl: self.session_ttl,
        })
    }

    /// Takes over a live session recorded by another gateway (shared
    /// sessions), with the time it has left; replaces any local copy.
    pub fn adopt_session(&self, token: &str, username: &str, left: Duration) {
        let now = self.clock.now();
        let mut sessions = self.sessions.lock();
        if sessions.len() >= MAX_SESSIONS && !sessions.contains_key(&digest(token)) {
            sessions.retain(|_, s| s.expires > now);
            if let Some(oldest) = sessions.iter().min_by_key(|(_, s)| s.created).map(|(k, _)| *k) {
                sessions.remove(&oldest);
            }
        }
        sessions.insert(
            digest(token),
            Session {
                username: username.to_string(),
                created: now,
                expires: now + left,
            },
        );
    }

    /// Ends a session (unknown tokens are ignored).
    pub fn logout(&self, token: &str) {
        self.sessions.lock().remove(&digest(token));
    }

    /// The user of a live session.
    pub fn session(&self, token: &str) -> Option<String> {
        let now = self.clock.now();
        let key = digest(token);
        let mut sessions = self.sessions.lock();
        match sessions.get(&key) {
            Some(s) if s.expires > now => Some(s.username.clone()),
            Some(_) => {
                sessions.remove(&key);
                None
            }
            None => None,
        }
    }

    /// Live sessions.
    pub fn session_count(&self) -> usize {
        let now = self.clock.now();
        self.sessions.lock().values().filter(|s| s.expires > now).count()
    }

    /// The key matching a presented secret.
    pub fn key(&self, presented: &str) -> Option<&ApiKey> {
        let d = digest(presented);
        // Compare against every key so timing does not depend on the position.
        let mut found = None;
        for k in &self.keys {
            if same(&k.digest, &d) {
                found = Some(k);
            }
        }
        found
    }

    /// Who a request's headers identify: an API key (`Authorization: Bearer`
    /// or `X-API-Key`) or else the session cookie. `Err` when a key is
    /// presented but unknown (a wrong key never falls back to the cookie).
    pub fn identify(&self, headers: &HeaderMap) -> Result<Option<Principal>> {
        if let Some(presented) = presented_key(headers) {
            return match self.key(presented) {
                Some(k) => Ok(Some(Principal::Key {
                    name: k.name.clone(),
                    scopes: k.scopes.clone(),
                    rpm: k.rpm,
                    limit_id: k.limit_id(),
                })),
                None => Err(Error::Unauthorized("unknown API key".into())),
            };
        }
        Ok(session_token(headers)
            .and_then(|t| self.session(t))
            .map(|username| Principal::Session { username }))
    }
}

/// A new random session token (256 bits, hex).
fn new_token() -> String {
    use rand::RngCore;
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    hex::encode(bytes)
}

/// The API key a request presents, if any.
pub fn presented_key(headers: &HeaderMap) -> Option<&str> {
    if let Some(v) = headers.get("x-api-key").and_then(|v| v.to_str().ok()) {
        let v = v.trim();
        if !v.is_empty() {
            return Some(v);
        }
    }
    let auth = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())?;
    let (scheme, rest) = auth.trim().split_once(' ')?;
    let rest = rest.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !rest.is_empty()).then_some(rest)
}

/// The session token in a request's cookies, if any.
pub fn session_token(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(axum::http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().split_once('='))
        .find(|(name, _)| *name == SESSION_COOKIE)
        .map(|(_, value)| value.trim())
        .filter(|v| !v.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ApiKeyEntry;
    use axum::http::HeaderValue;
    use std::sync::Arc;
    use vctts_core::clock::ManualClock;

    fn section() -> AuthSection {
        AuthSection {
            admin_password: Some("s3cret-pass".into()),
            api_key_enabled: true,
            api_keys: vec![
                ApiKeyEntry {
                    name: "synth".into(),
                    key: "synth-key-0123456789".into(),
                    scopes: vec!["synthesize".into()],
                    rpm: Some(2),
                },
                ApiKeyEntry {
                    name: "ops".into(),
                    key: "admin-key-0123456789".into(),
                    scopes: vec!["admin".into()],
                    rpm: None,
                },
            ],
        }
    }

    fn auth() -> (Auth, Arc<ManualClock>) {
        let clock = Arc::new(ManualClock::new());
        let a = Auth::with_ttl(&section(), clock.clone(), Duration::from_secs(60)).unwrap();
        (a, clock)
    }

    #[test]
    fn password_hash_round_trip() {
        let h = hash_password("pw-1").unwrap();
        assert!(h.starts_with("$argon2"));
        assert!(!h.contains("pw-1"));
        assert!(verify_password(&h, "pw-1"));
        assert!(!verify_password(&h, "pw-2"));
        assert!(!verify_password("not a hash", "pw-1"));
    }

    #[test]
    fn login_session_expiry_logout() {
        let (a, clock) = auth();
        assert!(matches!(
            a.login(None, "admin", "wrong"),
            Err(Error::Unauthorized(_))
        ));
        assert!(matches!(
            a.login(None, "root", "s3cret-pass"),
            Err(Error::Unauthorized(_))
        ));
        let s = a.login(None, "admin", "s3cret-pass").unwrap();
        assert!(
            s.cookie()
                .contains("HttpOnly; SameSite=Strict; Path=/; Max-Age=60")
        );
        assert!(!format!("{s:?}").contains(&s.token));
        assert_eq!(a.session(&s.token).as_deref(), Some("admin"));
        clock.advance(Duration::from_secs(59));
        assert!(a.session(&s.token).is_some());
        clock.advance(Duration::from_secs(1));
        assert!(a.session(&s.token).is_none(), "expired at the ttl");
        let s2 = a.login(None, "admin", "s3cret-pass").unwrap();
        a.logout(&s2.token);
        assert!(a.session(&s2.token).is_none());
        assert!(a.session("bogus").is_none());
    }

    #[test]
    fn failed_logins_are_limited_per_ip() {
        let (a, clock) = auth();
        let ip: IpAddr = "10.0.0.7".parse().unwrap();
        let other: IpAddr = "10.0.0.8".parse().unwrap();
        let mut limited = false;
        for _ in 0..(LOGIN_FAILURES_PER_MINUTE + 2) {
            if let Err(Error::RateLimited { .. }) = a.login(Some(ip), "admin", "nope") {
                limited = true;
                break;
            }
        }
        assert!(limited, "failures must be limited");
        // Even the right password is refused while blocked, other IPs are not.
        assert!(matches!(
            a.login(Some(ip), "admin", "s3cret-pass"),
            Err(Error::RateLimited { .. })
        ));
        assert!(a.login(Some(other), "admin", "s3cret-pass").is_ok());
        clock.advance(Duration::from_secs(61));
        assert!(a.login(Some(ip), "admin", "s3cret-pass").is_ok());
    }

    /// Fails logins from `ip` until blocked; the block's length.
    fn block_of(a: &Auth, ip: IpAddr) -> Duration {
        for _ in 0..(LOGIN_FAILURES_PER_MINUTE * 3) {
            if let Err(Error::RateLimited { retry_after, .. }) = a.login(Some(ip), "admin", "nope") {
                return retry_after;
            }
        }
        panic!("never blocked");
    }

    #[test]
    fn login_blocks_grow_until_a_login_succeeds() {
        let (a, clock) = auth();
        let ip: IpAddr = "10.0.0.9".parse().unwrap();
        let mut last = Duration::ZERO;
        for round in 0..4 {
            let b = block_of(&a, ip);
            assert!(b >= LOGIN_BLOCK_BASE, "round {round}: {b:?}");
            assert!(b > last, "round {round}: {b:?} after {last:?}");
            last = b;
            clock.advance(b + Duration::from_secs(61));
        }
        assert!(last >= LOGIN_BLOCK_BASE * 8);
        // A success forgives.
        assert!(a.login(Some(ip), "admin", "s3cret-pass").is_ok());
        assert!(block_of(&a, ip) <= LOGIN_BLOCK_BASE + Duration::from_secs(60));
    }

    #[test]
    fn the_account_is_blocked_when_failures_come_from_many_addresses() {
        let (a, _clock) = auth();
        let mut blocked = false;
        for i in 0..(ACCOUNT_FAILURES_PER_MINUTE * 2) {
            // A fresh address each time: the per-IP limit never triggers.
            let ip: IpAddr = format!("10.1.{}.{}", i / 250, i % 250 + 1).parse().unwrap();
            if let Err(Error::RateLimited { retry_after, .. }) = a.login(Some(ip), "admin", "nope") {
                assert!(retry_after >= LOGIN_BLOCK_BASE);
                blocked = true;
                break;
            }
        }
        assert!(blocked, "the account must be blocked");
        // Even the right password, from a new address, waits.
        let fresh: IpAddr = "10.9.9.9".parse().unwrap();
        assert!(matches!(
            a.login(Some(fresh), "admin", "s3cret-pass"),
            Err(Error::RateLimited { .. })
        ));
    }

    #[test]
    fn keys_and_scopes() {
        let (a, _) = auth();
        let mut h = HeaderMap::new();
        assert_eq!(a.identify(&h).unwrap(), None);
        h.insert(
            "authorization",
            HeaderValue::from_static("Bearer synth-key-0123456789"),
        );
        let p = a.identify(&h).unwrap().unwrap();
        assert!(p.allows(Scope::Synthesize));
        assert!(!p.allows(Scope::Voices));
        assert!(!p.allows(Scope::Admin));
        assert_eq!(p.rate_key().unwrap().1, 2);
        assert!(!p.rate_key().unwrap().0.contains("synth-key"));
        let mut h = HeaderMap::new();
        h.insert("x-api-key", HeaderValue::from_static("admin-key-0123456789"));
        let p = a.identify(&h).unwrap().unwrap();
        assert!(p.allows(Scope::Admin) && p.allows(Scope::Voices));
        assert_eq!(p.actor(), "key/ops");
        // The audit names the key: redaction leaves the actor as it is.
        assert_eq!(crate::logs::redact_text(&p.actor()), "key/ops");
        let mut h = HeaderMap::new();
        h.insert("x-api-key", HeaderValue::from_static("wrong-key-0123456789"));
        assert!(matches!(a.identify(&h), Err(Error::Unauthorized(_))));
        assert!(!format!("{a:?}").contains("0123456789"));
    }

    #[test]
    fn cookie_parsing() {
        let (a, _) = auth();
        let s = a.login(None, "admin", "s3cret-pass").unwrap();
        let mut h = HeaderMap::new();
        h.insert(
            "cookie",
            HeaderValue::from_str(&format!("theme=dark; {SESSION_COOKIE}={}", s.token)).unwrap(),
        );
        assert_eq!(
            a.identify(&h).unwrap(),
            Some(Principal::Session {
                username: "admin".into()
            })
        );
    }

    #[test]
    fn bad_scope_names_the_key() {
        let mut cfg = section();
        cfg.api_keys[1].scopes = vec!["root".into()];
        let err = Auth::new(&cfg, Arc::new(ManualClock::new())).unwrap_err();
        assert!(err.to_string().contains("auth.api_keys[1].scopes"), "{err}");
        let mut cfg = section();
        cfg.api_keys[1].key = cfg.api_keys[0].key.clone();
        assert!(Auth::new(&cfg, Arc::new(ManualClock::new())).is_err());
    }

    #[test]
    fn default_password_is_flagged() {
        let cfg = AuthSection::default();
        let a = Auth::new(&cfg, Arc::new(ManualClock::new())).unwrap();
        assert!(a.default_password());
        assert!(a.login(None, "admin", DEFAULT_ADMIN_PASSWORD).is_ok());
    }
}
