//! Admin sessions shared by several gateways, in PostgreSQL: a login made
//! through one gateway is honoured by all, and a logout through one ends
//! the session on all.
//!
//! Table `vctts_admin_sessions` (migration 2): the SHA-256 digest of the
//! token (hex; the token itself is never stored), the user and the expiry
//! (database time).
//!
//! Invariants:
//! - with shared sessions configured, the database is the authority: every
//!   admin request with a session cookie is checked against it (one indexed
//!   look-up; admin traffic is light), so a logout or an expiry holds on
//!   every gateway at once; the gateway's in-memory session map is only the
//!   copy its existing checks read;
//! - expired rows are never honoured and are removed at each login;
//! - a database that cannot be reached refuses the session check (the admin
//!   gets 401 and may log in again once it is back), never grants it.

use super::pg::{PgPool, pg_err, pool_err};
use std::sync::Arc;
use std::time::Duration;
use vctts_core::Result;

/// The shared session table.
#[derive(Debug, Clone)]
pub struct PgSessions {
    pg: Arc<PgPool>,
}

impl PgSessions {
    /// Sessions on an open pool (migrations applied by [`PgPool::open`]).
    pub fn new(pg: Arc<PgPool>) -> Self {
        Self { pg }
    }

    /// Records a session for `ttl` from now.
    pub async fn insert(&self, token_digest: &str, username: &str, ttl: Duration) -> Result<()> {
        let (pg, d, u) = (self.pg.clone(), token_digest.to_string(), username.to_string());
        let secs = ttl.as_secs_f64();
        self.on_pool(async move {
            let c = pg.pool().get().await.map_err(pool_err)?;
            c.execute("DELETE FROM vctts_admin_sessions WHERE expires_at <= now()", &[])
                .await
                .map_err(|e| pg_err("expiring sessions", e))?;
            c.execute(
                "INSERT INTO vctts_admin_sessions (token_digest, username, expires_at)
                 VALUES ($1, $2, now() + make_interval(secs => $3))
                 ON CONFLICT (token_digest) DO UPDATE SET username = EXCLUDED.username, expires_at = EXCLUDED.expires_at",
                &[&d, &u, &secs],
            )
            .await
            .map_err(|e| pg_err("recording a session", e))?;
            Ok(())
        })
        .await
    }

    /// The user of a live session and the time it has left.
    pub async fn lookup(&self, token_digest: &str) -> Result<Option<(String, Duration)>> {
        let (pg, d) = (self.pg.clone(), token_digest.to_string());
        self.on_pool(async move {
            let c = pg.pool().get().await.map_err(pool_err)?;
            let row = c
                .query_opt(
                    "SELECT username, EXTRACT(EPOCH FROM (expires_at - now()))::float8
                     FROM vctts_admin_sessions WHERE token_digest = $1 AND expires_at > now()",
                    &[&d],
                )
                .await
                .map_err(|e| pg_err("reading a session", e))?;
            Ok(row.map(|r| {
                let left: f64 = r.get(1);
                (r.get(0), Duration::from_secs_f64(left.max(0.0)))
            }))
        })
        .await
    }

    /// Ends a session on every gateway.
    pub async fn remove(&self, token_digest: &str) -> Result<()> {
        let (pg, d) = (self.pg.clone(), token_digest.to_string());
        self.on_pool(async move {
            let c = pg.pool().get().await.map_err(pool_err)?;
            c.execute("DELETE FROM vctts_admin_sessions WHERE token_digest = $1", &[&d])
                .await
                .map_err(|e| pg_err("ending a session", e))?;
            Ok(())
        })
        .await
    }

    /// Runs `fut` on the pool's runtime (where its connections live) and
    /// awaits it from the caller's.
    async fn on_pool<T: Send + 'static>(
        &self,
        fut: impl std::future::Future<Output = Result<T>> + Send + 'static,
    ) -> Result<T> {
        self.pg
            .spawn(fut)
            .await
            .map_err(|e| vctts_core::Error::Internal(format!("session task failed: {e}")))?
    }
}
