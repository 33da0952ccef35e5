//! Live settings shared by several gateways through PostgreSQL: a change
//! accepted by one gateway (`PUT /admin/api/config`) reaches every other
//! within about [`POLL_INTERVAL`].
//!
//! Table `vctts_settings` (migration 3): one row, the whole settings
//! document (JSON) and a version that grows by one per change.
//!
//! Invariants:
//! - a change is validated locally first, then published (the version is
//!   bumped in the same statement), then applied locally; if publishing
//!   fails nothing changes anywhere and the caller gets the error;
//! - each gateway follows the row by polling (one tiny query per interval,
//!   no connection held), applying each version newer than the last it saw,
//!   through the same validation and persistence as a local change; a
//!   document that no longer validates is logged and skipped, never half
//!   applied;
//! - a gateway that starts while a document exists adopts it at once;
//!   settings published while the database was unreachable cannot exist, and
//!   a gateway that loses the database keeps its settings and catches up
//!   when it is back.

use super::pg::{PgPool, pg_err, pool_err};
use crate::settings::Settings;
use serde_json::Value;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;
use vctts_core::{Error, Result};

/// How often each gateway looks for a newer settings document.
pub const POLL_INTERVAL: Duration = Duration::from_secs(1);

/// The shared settings row.
#[derive(Debug)]
pub struct PgSettings {
    pg: Arc<PgPool>,
    /// The newest version this gateway applied (0: none).
    seen: AtomicI64,
}

impl PgSettings {
    /// Settings on an open pool (migrations applied by [`PgPool::open`]).
    pub fn new(pg: Arc<PgPool>) -> Self {
        Self {
            pg,
            seen: AtomicI64::new(0),
        }
    }

    async fn on_pool<T: Send + 'static>(
        &self,
        fut: impl std::future::Future<Output = Result<T>> + Send + 'static,
    ) -> Result<T> {
        self.pg
            .spawn(fut)
            .await
            .map_err(|e| Error::Internal(format!("settings task failed: {e}")))?
    }

    /// Publishes a whole settings document; its version.
    pub async fn publish(&self, settings: &Settings) -> Result<i64> {
        let doc =
            serde_json::to_string(settings).map_err(|e| Error::Internal(format!("settings as JSON: {e}")))?;
        let pg = self.pg.clone();
        let version = self
            .on_pool(async move {
                let c = pg.pool().get().await.map_err(pool_err)?;
                let row = c
                    .query_one(
                        "INSERT INTO vctts_settings (id, doc, version) VALUES (1, $1, 1)
                         ON CONFLICT (id) DO UPDATE SET doc = EXCLUDED.doc, version = vctts_settings.version + 1
                         RETURNING version",
                        &[&doc],
                    )
                    .await
                    .map_err(|e| pg_err("publishing settings", e))?;
                Ok(row.get::<_, i64>(0))
            })
            .await?;
        self.seen.fetch_max(version, Ordering::AcqRel);
        Ok(version)
    }

    /// The newest document and its version, if any was published.
    pub async fn latest(&self) -> Result<Option<(i64, Value)>> {
        let pg = self.pg.clone();
        self.on_pool(async move {
            let c = pg.pool().get().await.map_err(pool_err)?;
            let row = c
                .query_opt("SELECT version, doc FROM vctts_settings WHERE id = 1", &[])
                .await
                .map_err(|e| pg_err("reading settings", e))?;
            match row {
                None => Ok(None),
                Some(r) => {
                    let doc: String = r.get(1);
                    let v = serde_json::from_str(&doc)
                        .map_err(|e| Error::Internal(format!("the shared settings are not JSON: {e}")))?;
                    Ok(Some((r.get(0), v)))
                }
            }
        })
        .await
    }

    /// The newest version this gateway applied or published.
    pub fn seen(&self) -> i64 {
        self.seen.load(Ordering::Acquire)
    }

    /// One follow step: hands the shared document (and its version) to
    /// `apply` if it is newer than the last seen. Returns whether it did.
    pub async fn follow_once(&self, apply: impl FnOnce(i64, &Value)) -> Result<bool> {
        let Some((version, doc)) = self.latest().await? else {
            return Ok(false);
        };
        if version <= self.seen() {
            return Ok(false);
        }
        apply(version, &doc);
        self.seen.fetch_max(version, Ordering::AcqRel);
        Ok(true)
    }
}
