//! The SQLite implementation of [`VoiceStore`]: SQLite (WAL) for metadata and
//! profiles, plus one reference WAV per voice, under the data folder:
//!
//! ```text
//! <data>/voices.db          voices(id, name, ...), profiles(voice_id, engine, ...)
//! <data>/voices/<id>.wav    the reference audio profiles are made from
//! ```
//!
//! Invariants:
//! - a voice is visible only once both its file and its rows exist: the file is
//!   written to a temporary name, fsynced and renamed (and the folder fsynced)
//!   before the one transaction that inserts the voice and its first profiles
//!   commits; a crash in between leaves an orphan file, removed at the next open;
//! - deleting a voice removes its rows (one transaction) and then its file;
//! - writes are serialised by one lock, so two uploads of the same id cannot
//!   both win; reads go through the same connection and are short;
//! - a profile is stored once per (voice, engine): [`VoiceStore::add_profile`]
//!   keeps the first one, so a profile is computed once and reused;
//! - all methods block (disk I/O); async callers go through [`StoreExt::run`],
//!   which runs them on the blocking pool;
//! - voices of the CLI's former JSON folder (`<data>/voices/<id>.json`) are
//!   imported once at open (without reference audio, which that folder never
//!   kept) and their files renamed to `<id>.json.imported`; a file that is not
//!   a voice is left alone with a warning.

use parking_lot::Mutex;
use rusqlite::{Connection, OptionalExtension, params};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};
use vctts_core::{
    EngineKind, Error, NewVoice, Result, StoredVoice, Voice, VoiceId, VoiceProfile, VoiceStore,
};

/// A shared voice store, as the library, the CLI and the server hold it.
pub type SharedVoiceStore = Arc<dyn VoiceStore>;

/// Runs store operations off the async runtime.
#[allow(async_fn_in_trait)]
pub trait StoreExt {
    /// Runs `f` on the blocking pool with the store.
    async fn run<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&dyn VoiceStore) -> Result<T> + Send + 'static;
}

impl StoreExt for SharedVoiceStore {
    async fn run<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&dyn VoiceStore) -> Result<T> + Send + 'static,
    {
        let store = self.clone();
        tokio::task::spawn_blocking(move || f(store.as_ref()))
            .await
            .map_err(|e| Error::Internal(format!("voice store task failed: {e}")))?
    }
}

struct Inner {
    conn: Mutex<Connection>,
    voices_dir: PathBuf,
    /// Serialises writers (check-then-write of ids).
    write: Mutex<()>,
}

/// The SQLite voice store. Cheap to clone.
#[derive(Clone)]
pub struct SqliteVoiceStore {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for SqliteVoiceStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteVoiceStore")
            .field("voices_dir", &self.inner.voices_dir)
            .finish()
    }
}

fn db_err(context: &str) -> impl Fn(rusqlite::Error) -> Error + '_ {
    move |e| Error::Internal(format!("voice store: {context}: {e}"))
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn fsync_dir(dir: &Path) -> Result<()> {
    let f = std::fs::File::open(dir).map_err(|e| Error::io(format!("opening {}", dir.display()), e))?;
    f.sync_all()
        .map_err(|e| Error::io(format!("syncing {}", dir.display()), e))
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS voices (
    id TEXT PRIMARY KEY NOT NULL,
    name TEXT NOT NULL,
    language TEXT,
    transcript TEXT,
    reference_seconds REAL NOT NULL,
    sample_rate INTEGER NOT NULL,
    quality_json TEXT,
    created_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS profiles (
    voice_id TEXT NOT NULL REFERENCES voices(id) ON DELETE CASCADE,
    engine TEXT NOT NULL,
    format_version INTEGER NOT NULL,
    data BLOB NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (voice_id, engine)
);
CREATE INDEX IF NOT EXISTS voices_by_age ON voices(created_at DESC);
";

impl SqliteVoiceStore {
    /// Opens (creating if needed) the store under `data_dir`, imports the
    /// voices of a former JSON voice folder, and removes voice files no
    /// committed voice owns.
    pub fn open(data_dir: &Path) -> Result<Self> {
        let voices_dir = data_dir.join("voices");
        std::fs::create_dir_all(&voices_dir)
            .map_err(|e| Error::io(format!("creating {}", voices_dir.display()), e))?;
        let db = data_dir.join("voices.db");
        let conn =
            Connection::open(&db).map_err(|e| Error::Internal(format!("opening {}: {e}", db.display())))?;
        conn.busy_timeout(std::time::Duration::from_secs(5))
            .map_err(db_err("busy_timeout"))?;
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(db_err("journal_mode"))?;
        conn.pragma_update(None, "synchronous", "FULL")
            .map_err(db_err("synchronous"))?;
        conn.pragma_update(None, "foreign_keys", "ON")
            .map_err(db_err("foreign_keys"))?;
        conn.execute_batch(SCHEMA).map_err(db_err("schema"))?;
        let store = Self {
            inner: Arc::new(Inner {
                conn: Mutex::new(conn),
                voices_dir,
                write: Mutex::new(()),
            }),
        };
        store.import_json_voices()?;
        store.remove_orphans()?;
        Ok(store)
    }

    /// Opens the store and shares it.
    pub fn open_shared(data_dir: &Path) -> Result<SharedVoiceStore> {
        Ok(Arc::new(Self::open(data_dir)?))
    }

    /// Imports `<id>.json` voices of the CLI's former voice folder.
    fn import_json_voices(&self) -> Result<()> {
        let dir = &self.inner.voices_dir;
        let entries =
            std::fs::read_dir(dir).map_err(|e| Error::io(format!("listing {}", dir.display()), e))?;
        for entry in entries.flatten() {
            let path = entry.path();
            let Some(stem) = path
                .file_name()
                .and_then(|n| n.to_str())
                .and_then(|n| n.strip_suffix(".json"))
            else {
                continue;
            };
            let imported = std::fs::read(&path)
                .map_err(|e| e.to_string())
                .and_then(|bytes| json_voice(stem, &bytes));
            let voice = match imported {
                Ok(v) => v,
                Err(why) => {
                    tracing::warn!(file = %path.display(), reason = %why, "not importing this voice file");
                    continue;
                }
            };
            let id = voice.id.clone();
            if self.exists(&id)? {
                tracing::warn!(voice_id = %id, "a voice of this id exists; not importing its JSON file");
                continue;
            }
            self.insert(voice)?;
            let done = path.with_extension("json.imported");
            std::fs::rename(&path, &done)
                .map_err(|e| Error::io(format!("renaming {}", path.display()), e))?;
            tracing::info!(voice_id = %id, "imported a voice of the former JSON voice folder");
        }
        Ok(())
    }

    fn audio_path(&self, id: &VoiceId) -> PathBuf {
        self.inner.voices_dir.join(format!("{}.wav", id.as_str()))
    }

    fn remove_orphans(&self) -> Result<()> {
        let _w = self.inner.write.lock();
        let dir = &self.inner.voices_dir;
        let entries =
            std::fs::read_dir(dir).map_err(|e| Error::io(format!("listing {}", dir.display()), e))?;
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if !name.ends_with(".wav") {
                // Not a file of ours (an imported JSON voice, a user's note).
                continue;
            }
            let owned = match name.strip_suffix(".wav").map(VoiceId::new) {
                Some(Ok(id)) if !name.starts_with(".tmp-") => self.exists(&id)?,
                _ => false,
            };
            if !owned {
                tracing::info!(file = %name, "removing orphan voice file");
                let _ = std::fs::remove_file(entry.path());
            }
        }
        Ok(())
    }
}

impl VoiceStore for SqliteVoiceStore {
    fn exists(&self, id: &VoiceId) -> Result<bool> {
        let conn = self.inner.conn.lock();
        conn.query_row("SELECT 1 FROM voices WHERE id = ?1", [id.as_str()], |_| Ok(()))
            .optional()
            .map(|r| r.is_some())
            .map_err(db_err("exists"))
    }

    /// Inserts a voice with its reference audio and first profiles; refuses an
    /// existing id. Nothing is visible unless everything was written.
    fn insert(&self, v: NewVoice) -> Result<StoredVoice> {
        let _w = self.inner.write.lock();
        if self.exists(&v.id)? {
            return Err(Error::invalid(
                "voice_id",
                format!("voice {:?} already exists", v.id.as_str()),
            ));
        }
        let final_path = self.audio_path(&v.id);
        let tmp = self
            .inner
            .voices_dir
            .join(format!(".tmp-{}.wav", uuid::Uuid::new_v4().simple()));
        let write = |wav: &[u8]| -> Result<()> {
            let mut f = std::fs::File::create(&tmp)
                .map_err(|e| Error::io(format!("creating {}", tmp.display()), e))?;
            f.write_all(wav)
                .map_err(|e| Error::io(format!("writing {}", tmp.display()), e))?;
            f.sync_all()
                .map_err(|e| Error::io(format!("syncing {}", tmp.display()), e))?;
            std::fs::rename(&tmp, &final_path)
                .map_err(|e| Error::io(format!("renaming to {}", final_path.display()), e))?;
            fsync_dir(&self.inner.voices_dir)
        };
        if let Some(Err(e)) = v.reference_wav.as_deref().map(write) {
            let _ = std::fs::remove_file(&tmp);
            let _ = std::fs::remove_file(&final_path);
            return Err(e);
        }
        let created_at = now_secs();
        let commit = || -> Result<()> {
            let mut conn = self.inner.conn.lock();
            let tx = conn.transaction().map_err(db_err("begin"))?;
            tx.execute(
                "INSERT INTO voices (id, name, language, transcript, reference_seconds, sample_rate, quality_json, created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                params![
                    v.id.as_str(),
                    v.name,
                    v.language,
                    v.transcript,
                    v.reference_seconds as f64,
                    v.sample_rate,
                    v.quality_json,
                    created_at as i64
                ],
            )
            .map_err(db_err("insert voice"))?;
            for p in &v.profiles {
                tx.execute(
                    "INSERT OR IGNORE INTO profiles (voice_id, engine, format_version, data, created_at)
                     VALUES (?1, ?2, ?3, ?4, ?5)",
                    params![
                        v.id.as_str(),
                        p.engine.as_str(),
                        p.format_version,
                        p.data,
                        created_at as i64
                    ],
                )
                .map_err(db_err("insert profile"))?;
            }
            tx.commit().map_err(db_err("commit"))
        };
        if let Err(e) = commit() {
            let _ = std::fs::remove_file(&final_path);
            return Err(e);
        }
        self.get(&v.id)?
            .ok_or_else(|| Error::Internal("voice vanished after insert".into()))
    }

    /// A voice's metadata.
    fn get(&self, id: &VoiceId) -> Result<Option<StoredVoice>> {
        let conn = self.inner.conn.lock();
        let row = conn
            .query_row(
                "SELECT id, name, language, transcript, reference_seconds, sample_rate, quality_json, created_at
                 FROM voices WHERE id = ?1",
                [id.as_str()],
                row_to_voice,
            )
            .optional()
            .map_err(db_err("get"))?;
        match row {
            None => Ok(None),
            Some(mut v) => {
                v.voice.engines = engines_of(&conn, id)?;
                Ok(Some(v))
            }
        }
    }

    /// A page of voices, newest first, and the total count.
    fn list(&self, offset: usize, limit: usize) -> Result<(Vec<StoredVoice>, usize)> {
        let conn = self.inner.conn.lock();
        let total: i64 = conn
            .query_row("SELECT COUNT(*) FROM voices", [], |r| r.get(0))
            .map_err(db_err("count"))?;
        let mut stmt = conn
            .prepare(
                "SELECT id, name, language, transcript, reference_seconds, sample_rate, quality_json, created_at
                 FROM voices ORDER BY created_at DESC, rowid DESC LIMIT ?1 OFFSET ?2",
            )
            .map_err(db_err("list"))?;
        let rows = stmt
            .query_map(params![limit as i64, offset as i64], row_to_voice)
            .map_err(db_err("list"))?
            .collect::<std::result::Result<Vec<_>, _>>()
            .map_err(db_err("list"))?;
        let mut out = Vec::with_capacity(rows.len());
        for mut v in rows {
            v.voice.engines = engines_of(&conn, &v.voice.id)?;
            out.push(v);
        }
        Ok((out, total.max(0) as usize))
    }

    /// The profile of a voice for one engine, if made.
    fn profile(&self, id: &VoiceId, engine: EngineKind) -> Result<Option<VoiceProfile>> {
        let conn = self.inner.conn.lock();
        conn.query_row(
            "SELECT format_version, data FROM profiles WHERE voice_id = ?1 AND engine = ?2",
            params![id.as_str(), engine.as_str()],
            |r| {
                Ok(VoiceProfile {
                    engine,
                    format_version: r.get(0)?,
                    data: r.get(1)?,
                })
            },
        )
        .optional()
        .map_err(db_err("profile"))
    }

    /// Stores a profile unless one exists for that engine; returns the stored
    /// one (the first made wins). Fails with `voice_not_found` if the voice
    /// was deleted meanwhile.
    fn add_profile(&self, id: &VoiceId, profile: &VoiceProfile) -> Result<VoiceProfile> {
        let _w = self.inner.write.lock();
        {
            let conn = self.inner.conn.lock();
            let n = conn
                .execute(
                    "INSERT OR IGNORE INTO profiles (voice_id, engine, format_version, data, created_at)
                     SELECT ?1, ?2, ?3, ?4, ?5 WHERE EXISTS (SELECT 1 FROM voices WHERE id = ?1)",
                    params![
                        id.as_str(),
                        profile.engine.as_str(),
                        profile.format_version,
                        profile.data,
                        now_secs() as i64
                    ],
                )
                .map_err(db_err("add profile"))?;
            if n == 0
                && conn
                    .query_row("SELECT 1 FROM voices WHERE id = ?1", [id.as_str()], |_| Ok(()))
                    .optional()
                    .map_err(db_err("add profile"))?
                    .is_none()
            {
                return Err(Error::VoiceNotFound(id.to_string()));
            }
        }
        self.profile(id, profile.engine)?
            .ok_or_else(|| Error::VoiceNotFound(id.to_string()))
    }

    /// The stored reference WAV.
    fn reference_audio(&self, id: &VoiceId) -> Result<Option<Vec<u8>>> {
        if !self.exists(id)? {
            return Ok(None);
        }
        let path = self.audio_path(id);
        match std::fs::read(&path) {
            Ok(wav) => Ok(Some(wav)),
            // An imported voice without reference audio.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(Error::io(format!("reading {}", path.display()), e)),
        }
    }

    /// Deletes a voice's rows and file; `false` if it did not exist.
    fn delete(&self, id: &VoiceId) -> Result<bool> {
        let _w = self.inner.write.lock();
        let n = {
            let mut conn = self.inner.conn.lock();
            let tx = conn.transaction().map_err(db_err("begin"))?;
            tx.execute("DELETE FROM profiles WHERE voice_id = ?1", [id.as_str()])
                .map_err(db_err("delete profiles"))?;
            let n = tx
                .execute("DELETE FROM voices WHERE id = ?1", [id.as_str()])
                .map_err(db_err("delete voice"))?;
            tx.commit().map_err(db_err("commit"))?;
            n
        };
        let path = self.audio_path(id);
        match std::fs::remove_file(&path) {
            Ok(()) => fsync_dir(&self.inner.voices_dir)?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(Error::io(format!("removing {}", path.display()), e)),
        }
        Ok(n > 0)
    }

    /// Number of voices.
    fn count(&self) -> Result<usize> {
        let conn = self.inner.conn.lock();
        conn.query_row("SELECT COUNT(*) FROM voices", [], |r| r.get::<_, i64>(0))
            .map(|n| n.max(0) as usize)
            .map_err(db_err("count"))
    }
}

/// A voice file of the CLI's former JSON folder: id, creation time, reference
/// length, language, transcript and one profile per engine.
fn json_voice(stem: &str, bytes: &[u8]) -> std::result::Result<NewVoice, String> {
    #[derive(serde::Deserialize)]
    struct Stored {
        id: VoiceId,
        reference_seconds: f32,
        language: Option<String>,
        transcript: Option<String>,
        profiles: std::collections::BTreeMap<EngineKind, StoredProfile>,
    }
    #[derive(serde::Deserialize)]
    struct StoredProfile {
        format_version: u32,
        data: Vec<u8>,
    }
    let s: Stored = serde_json::from_slice(bytes).map_err(|e| format!("not a vctts voice file: {e}"))?;
    if s.id.as_str() != stem {
        return Err(format!("the file names voice {:?}", s.id.as_str()));
    }
    Ok(NewVoice {
        name: stem.to_string(),
        id: s.id,
        language: s.language,
        transcript: s.transcript,
        reference_seconds: s.reference_seconds,
        sample_rate: 0,
        reference_wav: None,
        quality_json: None,
        profiles: s
            .profiles
            .into_iter()
            .map(|(engine, p)| VoiceProfile {
                engine,
                format_version: p.format_version,
                data: p.data,
            })
            .collect(),
    })
}

fn row_to_voice(r: &rusqlite::Row<'_>) -> rusqlite::Result<StoredVoice> {
    let id: String = r.get(0)?;
    let id = VoiceId::new(id).map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, Box::new(e))
    })?;
    let created: i64 = r.get(7)?;
    let secs: f64 = r.get(4)?;
    Ok(StoredVoice {
        voice: Voice {
            id,
            name: r.get(1)?,
            language: r.get(2)?,
            transcript: r.get(3)?,
            engines: Vec::new(),
            reference_seconds: secs as f32,
            created_at: created.max(0) as u64,
        },
        sample_rate: r.get(5)?,
        quality_json: r.get(6)?,
    })
}

fn engines_of(conn: &Connection, id: &VoiceId) -> Result<Vec<EngineKind>> {
    let mut stmt = conn
        .prepare_cached("SELECT engine FROM profiles WHERE voice_id = ?1 ORDER BY engine")
        .map_err(db_err("engines"))?;
    let names = stmt
        .query_map([id.as_str()], |r| r.get::<_, String>(0))
        .map_err(db_err("engines"))?
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(db_err("engines"))?;
    Ok(names
        .iter()
        .filter_map(|n| n.parse::<EngineKind>().ok())
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn voice(id: &str) -> NewVoice {
        NewVoice {
            id: VoiceId::new(id).unwrap(),
            name: format!("name {id}"),
            language: Some("en".into()),
            transcript: None,
            reference_seconds: 10.5,
            sample_rate: 22050,
            reference_wav: Some(b"RIFF....WAVE".to_vec()),
            quality_json: Some("{\"usable\":true}".into()),
            profiles: vec![VoiceProfile {
                engine: EngineKind::OpenVoice,
                format_version: 1,
                data: vec![1, 2, 3],
            }],
        }
    }

    #[test]
    fn insert_get_list_delete() {
        let dir = tempfile::tempdir().unwrap();
        let s = SqliteVoiceStore::open(dir.path()).unwrap();
        let a = s.insert(voice("alice")).unwrap();
        assert_eq!(a.voice.engines, vec![EngineKind::OpenVoice]);
        assert_eq!(a.voice.reference_seconds, 10.5);
        s.insert(voice("bob")).unwrap();
        let e = s.insert(voice("bob")).unwrap_err();
        assert!(e.to_string().contains("already exists"));
        let (page, total) = s.list(0, 1).unwrap();
        assert_eq!(total, 2);
        assert_eq!(page.len(), 1);
        let (page, _) = s.list(1, 10).unwrap();
        assert_eq!(page.len(), 1);
        let id = VoiceId::new("alice").unwrap();
        assert_eq!(s.reference_audio(&id).unwrap().unwrap(), b"RIFF....WAVE");
        assert_eq!(
            s.profile(&id, EngineKind::OpenVoice).unwrap().unwrap().data,
            vec![1, 2, 3]
        );
        assert!(s.profile(&id, EngineKind::Xtts).unwrap().is_none());
        assert!(s.delete(&id).unwrap());
        assert!(!s.delete(&id).unwrap());
        assert!(s.get(&id).unwrap().is_none());
        assert!(!dir.path().join("voices/alice.wav").exists());
        assert!(s.reference_audio(&id).unwrap().is_none());
        assert_eq!(s.count().unwrap(), 1);
    }

    #[test]
    fn first_profile_wins_and_deleted_voice_refuses_profiles() {
        let dir = tempfile::tempdir().unwrap();
        let s = SqliteVoiceStore::open(dir.path()).unwrap();
        s.insert(voice("carol")).unwrap();
        let id = VoiceId::new("carol").unwrap();
        let x = VoiceProfile {
            engine: EngineKind::Xtts,
            format_version: 2,
            data: vec![9],
        };
        assert_eq!(s.add_profile(&id, &x).unwrap(), x);
        let later = VoiceProfile {
            data: vec![7],
            ..x.clone()
        };
        assert_eq!(s.add_profile(&id, &later).unwrap().data, vec![9]);
        assert_eq!(s.get(&id).unwrap().unwrap().voice.engines.len(), 2);
        s.delete(&id).unwrap();
        assert_eq!(s.add_profile(&id, &x).unwrap_err().code(), "voice_not_found");
    }

    #[test]
    fn reopen_keeps_voices_and_removes_orphans() {
        let dir = tempfile::tempdir().unwrap();
        {
            let s = SqliteVoiceStore::open(dir.path()).unwrap();
            s.insert(voice("dave")).unwrap();
        }
        // A crash after the rename but before the commit, and a torn temp file.
        std::fs::write(dir.path().join("voices/ghost.wav"), b"x").unwrap();
        std::fs::write(dir.path().join("voices/.tmp-123.wav"), b"x").unwrap();
        let s = SqliteVoiceStore::open(dir.path()).unwrap();
        assert!(s.exists(&VoiceId::new("dave").unwrap()).unwrap());
        assert!(!dir.path().join("voices/ghost.wav").exists());
        assert!(!dir.path().join("voices/.tmp-123.wav").exists());
        assert!(dir.path().join("voices/dave.wav").exists());
        assert!(!s.exists(&VoiceId::new("ghost").unwrap()).unwrap());
    }

    #[test]
    fn json_voices_are_imported_once() {
        let dir = tempfile::tempdir().unwrap();
        let voices = dir.path().join("voices");
        std::fs::create_dir_all(&voices).unwrap();
        std::fs::write(
            voices.join("erin.json"),
            r#"{"id":"erin","created_at":5,"reference_seconds":12.5,"language":"en",
                "transcript":null,"profiles":{"openvoice":{"format_version":1,"data":[4,5]}}}"#,
        )
        .unwrap();
        std::fs::write(voices.join("notes.json"), "not a voice").unwrap();
        let s = SqliteVoiceStore::open(dir.path()).unwrap();
        let id = VoiceId::new("erin").unwrap();
        let v = s.get(&id).unwrap().unwrap();
        assert_eq!(v.voice.engines, vec![EngineKind::OpenVoice]);
        assert_eq!(v.voice.reference_seconds, 12.5);
        assert_eq!(v.voice.language.as_deref(), Some("en"));
        assert_eq!(
            s.profile(&id, EngineKind::OpenVoice).unwrap().unwrap().data,
            vec![4, 5]
        );
        // No reference audio was ever kept for it.
        assert!(s.reference_audio(&id).unwrap().is_none());
        assert!(!voices.join("erin.json").exists());
        assert!(voices.join("erin.json.imported").exists());
        // A file that is not a voice stays as it is.
        assert!(voices.join("notes.json").exists());
        drop(s);
        let s = SqliteVoiceStore::open(dir.path()).unwrap();
        assert_eq!(s.count().unwrap(), 1);
    }
}
