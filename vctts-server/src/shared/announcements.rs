//! Operator announcements shared by several gateways, in PostgreSQL: one
//! posted or deleted through any gateway is shown or gone on all of them.
//!
//! Table `vctts_announcements` (migration 4): id, the announcement as the
//! API shows it (JSON), its expiry (database time) and an identity column
//! for the order.
//!
//! Invariants:
//! - only operator posts are shared; announcements from the config file and
//!   the gateway's own (node trouble, raised by each gateway as it sees
//!   every worker) stay local and are listed with the shared ones;
//! - ids are `a-<random>`, unique across gateways;
//! - expired rows are never listed and are removed at each post;
//! - posting or deleting while the database is unreachable is refused
//!   (`overloaded`); listing then shows the local announcements only.

use super::pg::{PgPool, pg_err, pool_err};
use crate::announcements::Announcement;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};
use vctts_core::{Error, Result};

/// The shared announcements table.
#[derive(Debug, Clone)]
pub struct PgAnnouncements {
    pg: Arc<PgPool>,
}

/// A new shared announcement id.
pub fn new_id() -> String {
    format!("a-{}", &uuid::Uuid::new_v4().simple().to_string()[..12])
}

impl PgAnnouncements {
    /// Announcements on an open pool (migrations applied by [`PgPool::open`]).
    pub fn new(pg: Arc<PgPool>) -> Self {
        Self { pg }
    }

    async fn on_pool<T: Send + 'static>(
        &self,
        fut: impl std::future::Future<Output = Result<T>> + Send + 'static,
    ) -> Result<T> {
        self.pg
            .spawn(fut)
            .await
            .map_err(|e| Error::Internal(format!("announcement task failed: {e}")))?
    }

    /// Stores an announcement for every gateway.
    pub async fn insert(&self, a: &Announcement, expires: Option<SystemTime>) -> Result<()> {
        let doc =
            serde_json::to_string(a).map_err(|e| Error::Internal(format!("announcement as JSON: {e}")))?;
        let id = a.id.clone();
        let expires: Option<f64> = expires.map(|t| {
            t.duration_since(UNIX_EPOCH)
                .map(|d| d.as_secs_f64())
                .unwrap_or(0.0)
        });
        let pg = self.pg.clone();
        self.on_pool(async move {
            let c = pg.pool().get().await.map_err(pool_err)?;
            c.execute("DELETE FROM vctts_announcements WHERE expires_at <= now()", &[])
                .await
                .map_err(|e| pg_err("expiring announcements", e))?;
            c.execute(
                "INSERT INTO vctts_announcements (id, doc, expires_at) VALUES ($1, $2, to_timestamp($3))",
                &[&id, &doc, &expires],
            )
            .await
            .map_err(|e| pg_err("posting an announcement", e))?;
            Ok(())
        })
        .await
    }

    /// The shared announcements in force, newest first.
    pub async fn list(&self) -> Result<Vec<Announcement>> {
        let pg = self.pg.clone();
        self.on_pool(async move {
            let c = pg.pool().get().await.map_err(pool_err)?;
            let rows = c
                .query(
                    "SELECT doc FROM vctts_announcements
                     WHERE expires_at IS NULL OR expires_at > now() ORDER BY seq DESC",
                    &[],
                )
                .await
                .map_err(|e| pg_err("listing announcements", e))?;
            Ok(rows
                .iter()
                .filter_map(|r| serde_json::from_str(&r.get::<_, String>(0)).ok())
                .collect())
        })
        .await
    }

    /// Deletes one for every gateway; whether it existed.
    pub async fn delete(&self, id: &str) -> Result<bool> {
        let (pg, id) = (self.pg.clone(), id.to_string());
        self.on_pool(async move {
            let c = pg.pool().get().await.map_err(pool_err)?;
            let n = c
                .execute("DELETE FROM vctts_announcements WHERE id = $1", &[&id])
                .await
                .map_err(|e| pg_err("deleting an announcement", e))?;
            Ok(n > 0)
        })
        .await
    }
}
