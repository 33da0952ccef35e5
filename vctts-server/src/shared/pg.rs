//! A PostgreSQL connection pool for the state several gateways share (the
//! voice store today), with the schema migrations run at open.
//!
//! The pool is `deadpool-postgres` over `tokio-postgres`. It lives on a small
//! runtime of its own (one worker thread) so that blocking callers — the
//! [`VoiceStore`](vctts_core::VoiceStore) trait is blocking, and async code
//! reaches it through `spawn_blocking` — can wait on it from any thread, and
//! so that its connections outlive whichever runtime opened it (tests open
//! one per test).
//!
//! Invariants:
//! - [`PgPool::open`] returns only once the database answers and every
//!   migration is applied; migrations are numbered and run once, all in one
//!   transaction under a transaction-level advisory lock, so gateways
//!   starting together apply each exactly once and none sees a half-made
//!   schema;
//! - a migration already applied is never edited: schema changes are new
//!   entries at the end of [`MIGRATIONS`];
//! - [`PgPool::block_on`] must not be called from inside an async task (it
//!   blocks the thread); async callers use `spawn_blocking` as for every
//!   blocking store;
//! - failing to reach the database is `overloaded` (retryable, 503), an SQL
//!   error is `internal`.

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};
use std::future::Future;
use std::str::FromStr;
use std::time::Duration;
use tokio_postgres::NoTls;
use vctts_core::{Error, Result};

/// The lock key gateways take while migrating ("vctts" in ASCII).
const MIGRATION_LOCK: i64 = 0x0076_6374_7473;

/// Schema migrations, in order; the number is the version.
pub const MIGRATIONS: &[(i32, &str)] = &[
    (
        1,
        "CREATE TABLE vctts_voices (
        id TEXT PRIMARY KEY,
        seq BIGINT GENERATED ALWAYS AS IDENTITY,
        name TEXT NOT NULL,
        language TEXT,
        transcript TEXT,
        reference_seconds DOUBLE PRECISION NOT NULL,
        sample_rate BIGINT NOT NULL,
        quality_json TEXT,
        created_at BIGINT NOT NULL
    );
    CREATE INDEX vctts_voices_by_age ON vctts_voices (created_at DESC, seq DESC);
    CREATE TABLE vctts_voice_audio (
        voice_id TEXT PRIMARY KEY REFERENCES vctts_voices(id) ON DELETE CASCADE,
        wav BYTEA NOT NULL
    );
    CREATE TABLE vctts_profiles (
        voice_id TEXT NOT NULL REFERENCES vctts_voices(id) ON DELETE CASCADE,
        engine TEXT NOT NULL,
        format_version BIGINT NOT NULL,
        data BYTEA NOT NULL,
        created_at BIGINT NOT NULL,
        PRIMARY KEY (voice_id, engine)
    );",
    ),
    (
        2,
        "CREATE TABLE vctts_admin_sessions (
        token_digest TEXT PRIMARY KEY,
        username TEXT NOT NULL,
        expires_at TIMESTAMPTZ NOT NULL
    );
    CREATE INDEX vctts_admin_sessions_by_expiry ON vctts_admin_sessions (expires_at);",
    ),
    (
        3,
        "CREATE TABLE vctts_settings (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        doc TEXT NOT NULL,
        version BIGINT NOT NULL
    );",
    ),
    (
        4,
        "CREATE TABLE vctts_announcements (
        id TEXT PRIMARY KEY,
        seq BIGINT GENERATED ALWAYS AS IDENTITY,
        doc TEXT NOT NULL,
        expires_at TIMESTAMPTZ
    );",
    ),
];

/// Pool settings.
#[derive(Debug, Clone)]
pub struct PgOptions {
    /// Connections at most.
    pub max_connections: usize,
    /// How long to wait for a connection (to open one, or for a free one).
    pub connect_timeout: Duration,
}

impl Default for PgOptions {
    fn default() -> Self {
        Self {
            max_connections: 16,
            connect_timeout: Duration::from_secs(5),
        }
    }
}

/// A pool of connections to one database, on its own runtime.
pub struct PgPool {
    runtime: Option<tokio::runtime::Runtime>,
    handle: tokio::runtime::Handle,
    pool: Pool,
    /// The URL without its password, for logs.
    shown: String,
}

impl std::fmt::Debug for PgPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgPool")
            .field("url", &self.shown)
            .field("status", &self.pool.status())
            .finish()
    }
}

impl Drop for PgPool {
    fn drop(&mut self) {
        // Dropping a runtime blocks, which is refused inside async code.
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_background();
        }
    }
}

/// Hides the password of a `postgres://user:pass@host/db` URL.
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => {
            let userinfo = &url[s + 3..at];
            match userinfo.find(':') {
                Some(c) => format!("{}{}:***{}", &url[..s + 3], &userinfo[..c], &url[at..]),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}

/// Maps a database error: unreachable is retryable, the rest is internal.
pub(crate) fn pg_err(context: &str, e: tokio_postgres::Error) -> Error {
    // Unreachable: the connection closed or failed at the socket, or the
    // server says it cannot serve now (SQLSTATE class 08, connection
    // exception; 57P0x, shutting down or starting up).
    let io = std::error::Error::source(&e).is_some_and(|s| s.is::<std::io::Error>());
    let unavailable = e
        .code()
        .is_some_and(|c| c.code().starts_with("08") || c.code().starts_with("57P0"));
    if e.is_closed() || io || unavailable {
        Error::Overloaded(format!("the database is unreachable ({context}): {e}"))
    } else {
        Error::Internal(format!("database: {context}: {e}"))
    }
}

pub(crate) fn pool_err(e: deadpool_postgres::PoolError) -> Error {
    Error::Overloaded(format!("no database connection: {e}"))
}

impl PgPool {
    /// Connects to `url` (`postgres://user:pass@host:port/db` or
    /// `host=... dbname=...`), checks the database answers and applies the
    /// migrations. Blocks; callable from any thread, async or not.
    pub fn open(url: &str, opts: &PgOptions) -> Result<Self> {
        let shown = redact_url(url);
        let mut cfg = tokio_postgres::Config::from_str(url)
            .map_err(|e| Error::Config(format!("storage.url {shown:?} is not a PostgreSQL URL: {e}")))?;
        cfg.connect_timeout(opts.connect_timeout);
        cfg.application_name("vctts-gateway");
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("vctts-pg")
            .enable_all()
            .build()
            .map_err(|e| Error::io("starting the database runtime", e))?;
        let manager = Manager::from_config(
            cfg,
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(opts.max_connections.max(1))
            .runtime(deadpool_postgres::Runtime::Tokio1)
            .wait_timeout(Some(opts.connect_timeout))
            .create_timeout(Some(opts.connect_timeout))
            .recycle_timeout(Some(opts.connect_timeout))
            .build()
            .map_err(|e| Error::Internal(format!("building the database pool: {e}")))?;
        let pg = Self {
            handle: runtime.handle().clone(),
            runtime: Some(runtime),
            pool,
            shown,
        };
        // Opening may happen inside async code (the gateway is built there):
        // wait on a helper thread rather than on this one.
        let applied = std::thread::scope(|s| {
            s.spawn(|| pg.block_on(migrate(&pg.pool)))
                .join()
                .unwrap_or_else(|_| Err(Error::Internal("the migration thread panicked".into())))
        })?;
        tracing::info!(url = %pg.shown, applied, "PostgreSQL is ready");
        Ok(pg)
    }

    /// Runs `fut` on the pool's runtime and waits for it. Not for async
    /// contexts (see the module docs).
    pub fn block_on<F: Future>(&self, fut: F) -> F::Output {
        self.handle.block_on(fut)
    }

    /// Runs `fut` on the pool's runtime; await the handle from any runtime.
    pub fn spawn<F>(&self, fut: F) -> tokio::task::JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        self.handle.spawn(fut)
    }

    /// The pool.
    pub fn pool(&self) -> &Pool {
        &self.pool
    }

    /// The URL, password hidden.
    pub fn url(&self) -> &str {
        &self.shown
    }
}

/// Applies the migrations not applied yet, in one transaction under the
/// migration lock; returns how many ran.
async fn migrate(pool: &Pool) -> Result<usize> {
    let mut client = pool.get().await.map_err(pool_err)?;
    let tx = client.transaction().await.map_err(|e| pg_err("begin", e))?;
    // Gateways starting together wait here for each other.
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
        .await
        .map_err(|e| pg_err("migration lock", e))?;
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS vctts_schema_migrations (
            version INTEGER PRIMARY KEY,
            applied_at TIMESTAMPTZ NOT NULL DEFAULT now()
        )",
    )
    .await
    .map_err(|e| pg_err("creating the migrations table", e))?;
    let done: Vec<i32> = tx
        .query("SELECT version FROM vctts_schema_migrations", &[])
        .await
        .map_err(|e| pg_err("reading migrations", e))?
        .iter()
        .map(|r| r.get(0))
        .collect();
    let mut applied = 0;
    for (version, sql) in MIGRATIONS.iter().filter(|(v, _)| !done.contains(v)) {
        tx.batch_execute(sql)
            .await
            .map_err(|e| pg_err(&format!("migration {version}"), e))?;
        tx.execute(
            "INSERT INTO vctts_schema_migrations (version) VALUES ($1)",
            &[version],
        )
        .await
        .map_err(|e| pg_err("recording a migration", e))?;
        applied += 1;
    }
    tx.commit().await.map_err(|e| pg_err("commit", e))?;
    Ok(applied)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_hidden() {
        assert_eq!(
            redact_url("postgres://vctts:secret@db:5432/vctts"),
            "postgres://vctts:***@db:5432/vctts"
        );
        assert_eq!(
            redact_url("postgres://vctts@db/vctts"),
            "postgres://vctts@db/vctts"
        );
        assert_eq!(redact_url("host=db dbname=x"), "host=db dbname=x");
    }

    #[test]
    fn a_bad_url_is_a_config_error() {
        let e = PgPool::open("postgres://[::1", &PgOptions::default()).unwrap_err();
        assert_eq!(e.code(), "invalid_config", "{e}");
    }

    #[test]
    fn migrations_are_numbered_in_order() {
        for (i, (v, _)) in MIGRATIONS.iter().enumerate() {
            assert_eq!(*v as usize, i + 1);
        }
    }
}
