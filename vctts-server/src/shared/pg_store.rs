//! The PostgreSQL implementation of [`VoiceStore`], for several gateways
//! sharing one set of voices (`storage: { backend: postgres, url: ... }`).
//!
//! Tables (see [`super::pg::MIGRATIONS`]): `vctts_voices` (metadata),
//! `vctts_profiles` (one row per voice and engine, with its format version)
//! and `vctts_voice_audio` (the reference WAV, `BYTEA`).
//!
//! The reference audio is kept **in the database**, not in a shared folder:
//! the voice, its audio and its first profiles are then written by one
//! transaction, so the store's first invariant (nothing half visible) holds
//! across gateways without a network file system, with no orphan files to
//! sweep, and one PostgreSQL backup holds every voice whole. A reference is
//! small (at most `limits.max_audio_seconds`, 120 s of 16-bit mono: about
//! 5 MB; a typical 10–30 s clip is under 1.5 MB), read only when a missing
//! profile is made, and kept in its own table so listing never reads it.
//!
//! Invariants (the same as the SQLite store's, enforced by the database
//! rather than a process lock, so they hold across gateways):
//! - one transaction per voice: the voice row, its audio and its first
//!   profiles commit together or not at all;
//! - ids are unique: an insert of an existing id changes nothing and is
//!   refused (`invalid_input` on `voice_id`), whichever gateway tried first;
//! - a profile is kept once per (voice, engine): the first committed wins
//!   (`ON CONFLICT DO NOTHING`) and [`VoiceStore::add_profile`] returns the
//!   stored one; adding to a deleted voice is `voice_not_found`;
//! - deleting a voice deletes its audio and profiles (`ON DELETE CASCADE`)
//!   in the same transaction;
//! - voices are listed newest first, ties in insertion order reversed (as
//!   SQLite's `rowid`), by an identity column.

use super::pg::{PgOptions, PgPool, pg_err, pool_err};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};
use tokio_postgres::Row;
use tokio_postgres::error::SqlState;
use vctts_core::{
    EngineKind, Error, NewVoice, Result, StoredVoice, Voice, VoiceId, VoiceProfile, VoiceStore,
};

/// The PostgreSQL voice store. Cheap to clone.
#[derive(Clone, Debug)]
pub struct PgVoiceStore {
    pg: Arc<PgPool>,
}

fn now_secs() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

const VOICE_COLUMNS: &str = "v.id, v.name, v.language, v.transcript, v.reference_seconds, v.sample_rate, v.quality_json, v.created_at,
     COALESCE((SELECT array_agg(p.engine ORDER BY p.engine) FROM vctts_profiles p WHERE p.voice_id = v.id), '{}')";

fn row_to_voice(r: &Row) -> Result<StoredVoice> {
    let id: String = r.get(0);
    let id = VoiceId::new(id).map_err(|e| Error::Internal(format!("a stored voice id is invalid: {e}")))?;
    let engines: Vec<String> = r.get(8);
    let sample_rate: i64 = r.get(5);
    let created: i64 = r.get(7);
    let secs: f64 = r.get(4);
    Ok(StoredVoice {
        voice: Voice {
            id,
            name: r.get(1),
            language: r.get(2),
            transcript: r.get(3),
            engines: engines
                .iter()
                .filter_map(|n| n.parse::<EngineKind>().ok())
                .collect(),
            reference_seconds: secs as f32,
            created_at: created.max(0) as u64,
        },
        sample_rate: u32::try_from(sample_rate).unwrap_or(0),
        quality_json: r.get(6),
    })
}

impl PgVoiceStore {
    /// Connects, applies the migrations and returns the store. Blocks.
    pub fn open(url: &str, opts: &PgOptions) -> Result<Self> {
        Ok(Self::with_pool(Arc::new(PgPool::open(url, opts)?)))
    }

    /// A store on an open pool (shared with other PostgreSQL state).
    pub fn with_pool(pg: Arc<PgPool>) -> Self {
        Self { pg }
    }

    /// Opens the store and shares it.
    pub fn open_shared(url: &str, opts: &PgOptions) -> Result<Arc<dyn VoiceStore>> {
        Ok(Arc::new(Self::open(url, opts)?))
    }

    /// The pool.
    pub fn pool(&self) -> &Arc<PgPool> {
        &self.pg
    }

    async fn client(&self) -> Result<deadpool_postgres::Object> {
        self.pg.pool().get().await.map_err(pool_err)
    }

    async fn get_async(&self, id: &VoiceId) -> Result<Option<StoredVoice>> {
        let c = self.client().await?;
        let sql = format!("SELECT {VOICE_COLUMNS} FROM vctts_voices v WHERE v.id = $1");
        let row = c
            .query_opt(&sql, &[&id.as_str()])
            .await
            .map_err(|e| pg_err("get", e))?;
        row.as_ref().map(row_to_voice).transpose()
    }

    async fn profile_async(&self, id: &VoiceId, engine: EngineKind) -> Result<Option<VoiceProfile>> {
        let c = self.client().await?;
        let row = c
            .query_opt(
                "SELECT format_version, data FROM vctts_profiles WHERE voice_id = $1 AND engine = $2",
                &[&id.as_str(), &engine.as_str()],
            )
            .await
            .map_err(|e| pg_err("profile", e))?;
        Ok(row.map(|r| VoiceProfile {
            engine,
            format_version: u32::try_from(r.get::<_, i64>(0)).unwrap_or(0),
            data: r.get(1),
        }))
    }

    async fn insert_async(&self, v: NewVoice) -> Result<()> {
        let mut c = self.client().await?;
        let tx = c.transaction().await.map_err(|e| pg_err("begin", e))?;
        let created = now_secs();
        let inserted = tx
            .execute(
                "INSERT INTO vctts_voices (id, name, language, transcript, reference_seconds, sample_rate, quality_json, created_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (id) DO NOTHING",
                &[
                    &v.id.as_str(),
                    &v.name,
                    &v.language,
                    &v.transcript,
                    &(v.reference_seconds as f64),
                    &(v.sample_rate as i64),
                    &v.quality_json,
                    &created,
                ],
            )
            .await
            .map_err(|e| pg_err("insert voice", e))?;
        if inserted == 0 {
            // Dropping the transaction rolls it back.
            return Err(Error::invalid(
                "voice_id",
                format!("voice {:?} already exists", v.id.as_str()),
            ));
        }
        if let Some(wav) = &v.reference_wav {
            tx.execute(
                "INSERT INTO vctts_voice_audio (voice_id, wav) VALUES ($1, $2)",
                &[&v.id.as_str(), wav],
            )
            .await
            .map_err(|e| pg_err("insert reference audio", e))?;
        }
        for p in &v.profiles {
            tx.execute(
                "INSERT INTO vctts_profiles (voice_id, engine, format_version, data, created_at)
                 VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
                &[
                    &v.id.as_str(),
                    &p.engine.as_str(),
                    &(p.format_version as i64),
                    &p.data,
                    &created,
                ],
            )
            .await
            .map_err(|e| pg_err("insert profile", e))?;
        }
        tx.commit().await.map_err(|e| pg_err("commit", e))
    }

    async fn add_profile_async(&self, id: &VoiceId, p: &VoiceProfile) -> Result<()> {
        let c = self.client().await?;
        let res = c
            .execute(
                "INSERT INTO vctts_profiles (voice_id, engine, format_version, data, created_at)
                 SELECT $1, $2, $3, $4, $5 WHERE EXISTS (SELECT 1 FROM vctts_voices WHERE id = $1)
                 ON CONFLICT DO NOTHING",
                &[
                    &id.as_str(),
                    &p.engine.as_str(),
                    &(p.format_version as i64),
                    &p.data,
                    &now_secs(),
                ],
            )
            .await;
        match res {
            Ok(_) => Ok(()),
            // The voice was deleted between the check and the insert.
            Err(e) if e.code() == Some(&SqlState::FOREIGN_KEY_VIOLATION) => {
                Err(Error::VoiceNotFound(id.to_string()))
            }
            Err(e) => Err(pg_err("add profile", e)),
        }
    }
}

impl VoiceStore for PgVoiceStore {
    fn exists(&self, id: &VoiceId) -> Result<bool> {
        self.pg.block_on(async {
            let c = self.client().await?;
            c.query_opt("SELECT 1 FROM vctts_voices WHERE id = $1", &[&id.as_str()])
                .await
                .map(|r| r.is_some())
                .map_err(|e| pg_err("exists", e))
        })
    }

    fn insert(&self, voice: NewVoice) -> Result<StoredVoice> {
        let id = voice.id.clone();
        self.pg.block_on(async {
            self.insert_async(voice).await?;
            self.get_async(&id)
                .await?
                .ok_or_else(|| Error::Internal("voice vanished after insert".into()))
        })
    }

    fn get(&self, id: &VoiceId) -> Result<Option<StoredVoice>> {
        self.pg.block_on(self.get_async(id))
    }

    fn list(&self, offset: usize, limit: usize) -> Result<(Vec<StoredVoice>, usize)> {
        self.pg.block_on(async {
            let c = self.client().await?;
            let total: i64 = c
                .query_one("SELECT COUNT(*) FROM vctts_voices", &[])
                .await
                .map_err(|e| pg_err("count", e))?
                .get(0);
            let sql = format!(
                "SELECT {VOICE_COLUMNS} FROM vctts_voices v ORDER BY v.created_at DESC, v.seq DESC LIMIT $1 OFFSET $2"
            );
            let limit = i64::try_from(limit).unwrap_or(i64::MAX);
            let offset = i64::try_from(offset).unwrap_or(i64::MAX);
            let rows = c
                .query(&sql, &[&limit, &offset])
                .await
                .map_err(|e| pg_err("list", e))?;
            let voices = rows.iter().map(row_to_voice).collect::<Result<Vec<_>>>()?;
            Ok((voices, total.max(0) as usize))
        })
    }

    fn profile(&self, id: &VoiceId, engine: EngineKind) -> Result<Option<VoiceProfile>> {
        self.pg.block_on(self.profile_async(id, engine))
    }

    fn add_profile(&self, id: &VoiceId, profile: &VoiceProfile) -> Result<VoiceProfile> {
        self.pg.block_on(async {
            self.add_profile_async(id, profile).await?;
            self.profile_async(id, profile.engine)
                .await?
                .ok_or_else(|| Error::VoiceNotFound(id.to_string()))
        })
    }

    fn reference_audio(&self, id: &VoiceId) -> Result<Option<Vec<u8>>> {
        self.pg.block_on(async {
            let c = self.client().await?;
            c.query_opt(
                "SELECT wav FROM vctts_voice_audio WHERE voice_id = $1",
                &[&id.as_str()],
            )
            .await
            .map(|r| r.map(|r| r.get(0)))
            .map_err(|e| pg_err("reference audio", e))
        })
    }

    fn delete(&self, id: &VoiceId) -> Result<bool> {
        self.pg.block_on(async {
            let mut c = self.client().await?;
            let tx = c.transaction().await.map_err(|e| pg_err("begin", e))?;
            // Audio and profiles go with the voice (ON DELETE CASCADE).
            let n = tx
                .execute("DELETE FROM vctts_voices WHERE id = $1", &[&id.as_str()])
                .await
                .map_err(|e| pg_err("delete voice", e))?;
            tx.commit().await.map_err(|e| pg_err("commit", e))?;
            Ok(n > 0)
        })
    }

    fn count(&self) -> Result<usize> {
        self.pg.block_on(async {
            let c = self.client().await?;
            let n: i64 = c
                .query_one("SELECT COUNT(*) FROM vctts_voices", &[])
                .await
                .map_err(|e| pg_err("count", e))?
                .get(0);
            Ok(n.max(0) as usize)
        })
    }
}
