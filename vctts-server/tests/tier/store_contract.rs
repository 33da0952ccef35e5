//! One behavioural suite for every [`VoiceStore`]: the same cases run on the
//! SQLite store (in a temp folder) and on the PostgreSQL store (a fresh
//! database of the shared test server), so both keep the trait's contract.

use crate::services::Postgres;
use std::sync::{Arc, Barrier};
use vctts::store::SqliteVoiceStore;
use vctts_core::{EngineKind, NewVoice, VoiceId, VoiceProfile, VoiceStore};
use vctts_server::shared::{PgOptions, PgVoiceStore};

/// A place a store lives in; `open` opens (again) the same store.
pub trait Backend {
    fn open(&self) -> Arc<dyn VoiceStore>;
}

struct Sqlite(tempfile::TempDir);

impl Backend for Sqlite {
    fn open(&self) -> Arc<dyn VoiceStore> {
        Arc::new(SqliteVoiceStore::open(self.0.path()).unwrap())
    }
}

struct Pg(String);

impl Backend for Pg {
    fn open(&self) -> Arc<dyn VoiceStore> {
        let opts = PgOptions {
            max_connections: 8,
            ..Default::default()
        };
        Arc::new(PgVoiceStore::open(&self.0, &opts).unwrap())
    }
}

fn sqlite() -> Sqlite {
    Sqlite(tempfile::tempdir().unwrap())
}

fn postgres() -> Pg {
    Pg(Postgres::shared().database())
}

fn id(s: &str) -> VoiceId {
    VoiceId::new(s).unwrap()
}

fn profile(engine: EngineKind, version: u32, data: &[u8]) -> VoiceProfile {
    VoiceProfile {
        engine,
        format_version: version,
        data: data.to_vec(),
    }
}

fn voice(name: &str) -> NewVoice {
    NewVoice {
        id: id(name),
        name: format!("name {name}"),
        language: Some("en".into()),
        transcript: Some("a transcript".into()),
        reference_seconds: 10.5,
        sample_rate: 22050,
        reference_wav: Some(format!("RIFF {name} WAVE").into_bytes()),
        quality_json: Some("{\"usable\":true}".into()),
        profiles: vec![profile(EngineKind::OpenVoice, 1, &[1, 2, 3])],
    }
}

pub mod cases {
    use super::*;

    pub fn insert_get_list_delete(b: &dyn Backend) {
        let s = b.open();
        let a = s.insert(voice("alice")).unwrap();
        assert_eq!(a.voice.engines, vec![EngineKind::OpenVoice]);
        assert_eq!(a.voice.reference_seconds, 10.5);
        assert_eq!(a.voice.name, "name alice");
        assert_eq!(a.voice.language.as_deref(), Some("en"));
        assert_eq!(a.voice.transcript.as_deref(), Some("a transcript"));
        assert_eq!(a.sample_rate, 22050);
        assert_eq!(a.quality_json.as_deref(), Some("{\"usable\":true}"));
        assert!(a.voice.created_at > 0);
        assert_eq!(s.get(&id("alice")).unwrap().unwrap(), a);
        assert!(s.exists(&id("alice")).unwrap());
        assert!(!s.exists(&id("nobody")).unwrap());
        assert!(s.get(&id("nobody")).unwrap().is_none());
        s.insert(voice("bob")).unwrap();
        let (page, total) = s.list(0, 1).unwrap();
        assert_eq!((page.len(), total), (1, 2));
        let (page, _) = s.list(1, 10).unwrap();
        assert_eq!(page.len(), 1);
        let (page, _) = s.list(5, 10).unwrap();
        assert!(page.is_empty());
        assert_eq!(
            s.reference_audio(&id("alice")).unwrap().unwrap(),
            b"RIFF alice WAVE"
        );
        let p = s.profile(&id("alice"), EngineKind::OpenVoice).unwrap().unwrap();
        assert_eq!(p, profile(EngineKind::OpenVoice, 1, &[1, 2, 3]));
        assert!(s.profile(&id("alice"), EngineKind::Xtts).unwrap().is_none());
        assert!(s.delete(&id("alice")).unwrap());
        assert!(!s.delete(&id("alice")).unwrap());
        assert!(s.get(&id("alice")).unwrap().is_none());
        assert!(s.reference_audio(&id("alice")).unwrap().is_none());
        assert!(s.profile(&id("alice"), EngineKind::OpenVoice).unwrap().is_none());
        assert_eq!(s.count().unwrap(), 1);
    }

    pub fn duplicate_insert_changes_nothing(b: &dyn Backend) {
        let s = b.open();
        let first = s.insert(voice("carol")).unwrap();
        let mut again = voice("carol");
        again.name = "another".into();
        again.reference_wav = Some(b"other".to_vec());
        again.profiles = vec![profile(EngineKind::Xtts, 3, &[9])];
        let e = s.insert(again).unwrap_err();
        assert_eq!(e.code(), "invalid_input");
        assert!(e.to_string().contains("already exists"), "{e}");
        assert_eq!(s.get(&id("carol")).unwrap().unwrap(), first);
        assert_eq!(
            s.reference_audio(&id("carol")).unwrap().unwrap(),
            b"RIFF carol WAVE"
        );
        assert!(s.profile(&id("carol"), EngineKind::Xtts).unwrap().is_none());
        assert_eq!(s.count().unwrap(), 1);
    }

    pub fn first_profile_wins_per_engine(b: &dyn Backend) {
        let s = b.open();
        s.insert(voice("dave")).unwrap();
        let x = profile(EngineKind::Xtts, 2, &[9]);
        assert_eq!(s.add_profile(&id("dave"), &x).unwrap(), x);
        let later = profile(EngineKind::Xtts, 3, &[7]);
        assert_eq!(s.add_profile(&id("dave"), &later).unwrap(), x);
        // The first profile of extraction stays too.
        let ov = profile(EngineKind::OpenVoice, 5, &[0]);
        assert_eq!(s.add_profile(&id("dave"), &ov).unwrap().data, vec![1, 2, 3]);
        let engines = s.get(&id("dave")).unwrap().unwrap().voice.engines;
        assert_eq!(engines.len(), 2);
        assert!(engines.contains(&EngineKind::Xtts) && engines.contains(&EngineKind::OpenVoice));
        s.delete(&id("dave")).unwrap();
        assert_eq!(
            s.add_profile(&id("dave"), &x).unwrap_err().code(),
            "voice_not_found"
        );
        assert_eq!(
            s.add_profile(&id("never"), &x).unwrap_err().code(),
            "voice_not_found"
        );
    }

    pub fn a_voice_without_reference_keeps_its_profiles(b: &dyn Backend) {
        let s = b.open();
        let mut v = voice("erin");
        v.reference_wav = None;
        v.language = None;
        v.transcript = None;
        v.quality_json = None;
        v.profiles.push(profile(EngineKind::GptSovits, 1, &[4, 5]));
        let stored = s.insert(v).unwrap();
        assert_eq!(stored.voice.language, None);
        assert_eq!(stored.quality_json, None);
        assert!(s.reference_audio(&id("erin")).unwrap().is_none());
        assert_eq!(
            s.profile(&id("erin"), EngineKind::GptSovits)
                .unwrap()
                .unwrap()
                .data,
            vec![4, 5]
        );
    }

    pub fn newest_first_and_deleted_ids_are_free_again(b: &dyn Backend) {
        let s = b.open();
        for n in ["v1", "v2", "v3"] {
            s.insert(voice(n)).unwrap();
        }
        let (page, total) = s.list(0, 10).unwrap();
        let ids: Vec<&str> = page.iter().map(|v| v.voice.id.as_str()).collect();
        assert_eq!(ids, vec!["v3", "v2", "v1"]);
        assert_eq!(total, 3);
        s.delete(&id("v2")).unwrap();
        let mut again = voice("v2");
        again.profiles = vec![profile(EngineKind::Xtts, 1, &[8])];
        let stored = s.insert(again).unwrap();
        // Nothing of the deleted voice comes back with the new one.
        assert_eq!(stored.voice.engines, vec![EngineKind::Xtts]);
        assert!(s.profile(&id("v2"), EngineKind::OpenVoice).unwrap().is_none());
        assert_eq!(s.list(0, 1).unwrap().0[0].voice.id.as_str(), "v2");
    }

    pub fn voices_survive_reopening(b: &dyn Backend) {
        {
            let s = b.open();
            s.insert(voice("frank")).unwrap();
            s.add_profile(&id("frank"), &profile(EngineKind::Xtts, 2, &[6]))
                .unwrap();
        }
        let s = b.open();
        let v = s.get(&id("frank")).unwrap().unwrap();
        assert_eq!(v.voice.engines.len(), 2);
        assert_eq!(
            s.reference_audio(&id("frank")).unwrap().unwrap(),
            b"RIFF frank WAVE"
        );
        assert_eq!(s.count().unwrap(), 1);
    }

    /// Two writers (two gateways, or two requests) racing on one id: exactly
    /// one insert wins, and every racer of `add_profile` gets the one stored.
    pub fn racing_writers_agree(b: &dyn Backend) {
        const N: usize = 6;
        let stores: Vec<Arc<dyn VoiceStore>> = (0..2).map(|_| b.open()).collect();
        let barrier = Arc::new(Barrier::new(N));
        let wins: usize = std::thread::scope(|sc| {
            let handles: Vec<_> = (0..N)
                .map(|i| {
                    let s = stores[i % 2].clone();
                    let barrier = barrier.clone();
                    sc.spawn(move || {
                        let mut v = voice("gina");
                        v.name = format!("racer {i}");
                        barrier.wait();
                        s.insert(v).is_ok() as usize
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).sum()
        });
        assert_eq!(wins, 1);
        let got: Vec<VoiceProfile> = std::thread::scope(|sc| {
            let handles: Vec<_> = (0..N)
                .map(|i| {
                    let s = stores[i % 2].clone();
                    let barrier = barrier.clone();
                    sc.spawn(move || {
                        barrier.wait();
                        s.add_profile(&id("gina"), &profile(EngineKind::Xtts, 1, &[i as u8]))
                            .unwrap()
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        assert!(got.windows(2).all(|w| w[0] == w[1]), "{got:?}");
        assert_eq!(s_profile(&stores[0]), Some(got[0].clone()));
        assert_eq!(s_profile(&stores[1]), Some(got[0].clone()));
    }

    fn s_profile(s: &Arc<dyn VoiceStore>) -> Option<VoiceProfile> {
        s.profile(&id("gina"), EngineKind::Xtts).unwrap()
    }
}

macro_rules! contract {
    ($($case:ident),* $(,)?) => {
        mod sqlite {
            $( #[test] fn $case() { super::cases::$case(&super::sqlite()) } )*
        }
        mod postgres {
            $( #[test] fn $case() { super::cases::$case(&super::postgres()) } )*
        }
    };
}

contract!(
    insert_get_list_delete,
    duplicate_insert_changes_nothing,
    first_profile_wins_per_engine,
    a_voice_without_reference_keeps_its_profiles,
    newest_first_and_deleted_ids_are_free_again,
    voices_survive_reopening,
    racing_writers_agree,
);

/// Gateways starting together against an empty database migrate it once.
#[test]
fn concurrent_opens_migrate_once() {
    let url = Postgres::shared().database();
    let opened = std::thread::scope(|sc| {
        let hs: Vec<_> = (0..4)
            .map(|_| sc.spawn(|| PgVoiceStore::open(&url, &PgOptions::default()).map(|_| ())))
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).collect::<Vec<_>>()
    });
    for r in opened {
        r.unwrap();
    }
    let s = PgVoiceStore::open(&url, &PgOptions::default()).unwrap();
    s.insert(voice("hana")).unwrap();
    assert_eq!(s.count().unwrap(), 1);
}

/// An unreachable database is a retryable error at open, not a hang.
#[test]
fn unreachable_database_is_overloaded() {
    let port = crate::services::free_port();
    let opts = PgOptions {
        max_connections: 1,
        connect_timeout: std::time::Duration::from_secs(2),
    };
    let e = PgVoiceStore::open(&format!("postgres://vctts@127.0.0.1:{port}/x"), &opts).unwrap_err();
    assert_eq!(e.code(), "overloaded", "{e}");
}

/// Admin sessions in PostgreSQL: seen by a second pool (another gateway),
/// ended for all by one removal, never honoured once expired.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shared_sessions_live_and_end() {
    use std::time::Duration;
    use vctts_server::shared::{PgPool, PgSessions};
    let url = Postgres::shared().database();
    let open = || {
        let url = url.clone();
        async move {
            tokio::task::spawn_blocking(move || PgPool::open(&url, &PgOptions::default()).unwrap())
                .await
                .unwrap()
        }
    };
    let a = PgSessions::new(Arc::new(open().await));
    let b = PgSessions::new(Arc::new(open().await));
    a.insert("d1", "admin", Duration::from_secs(3600)).await.unwrap();
    let (user, left) = b.lookup("d1").await.unwrap().unwrap();
    assert_eq!(user, "admin");
    assert!(
        left > Duration::from_secs(3500) && left <= Duration::from_secs(3600),
        "{left:?}"
    );
    assert!(b.lookup("other").await.unwrap().is_none());
    b.remove("d1").await.unwrap();
    assert!(a.lookup("d1").await.unwrap().is_none());
    a.insert("d2", "admin", Duration::ZERO).await.unwrap();
    assert!(
        b.lookup("d2").await.unwrap().is_none(),
        "an expired session is refused"
    );
}

/// Live settings in PostgreSQL: each publish is a new version that another
/// pool (another gateway) reads whole.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shared_settings_are_versioned_documents() {
    use vctts_server::GatewayConfig;
    use vctts_server::settings::Settings;
    use vctts_server::shared::{PgPool, PgSettings};
    let url = Postgres::shared().database();
    let open = || {
        let url = url.clone();
        async move {
            tokio::task::spawn_blocking(move || PgPool::open(&url, &PgOptions::default()).unwrap())
                .await
                .unwrap()
        }
    };
    let a = PgSettings::new(Arc::new(open().await));
    let b = PgSettings::new(Arc::new(open().await));
    assert!(b.latest().await.unwrap().is_none());
    let mut s = Settings::from_config(&GatewayConfig::default());
    s.limiter.ip_rpm = 7;
    assert_eq!(a.publish(&s).await.unwrap(), 1);
    assert_eq!(a.seen(), 1);
    s.limiter.ip_rpm = 9;
    assert_eq!(a.publish(&s).await.unwrap(), 2);
    let (version, doc) = b.latest().await.unwrap().unwrap();
    assert_eq!(version, 2);
    assert_eq!(doc["limiter"]["ip_rpm"], 9);
    let back: Settings = serde_json::from_value(doc).unwrap();
    assert_eq!(back, s);
    assert_eq!(b.seen(), 0, "reading is not applying");
}

/// PostgreSQL restarted under a running store: while it is down the store
/// answers `overloaded` (retryable) at once rather than hanging; once it is
/// back the same store serves again, with every voice committed before.
#[test]
fn a_restarted_database_loses_nothing_and_the_store_recovers() {
    let mut pg = Postgres::start_owned();
    let url = pg.database();
    let opts = PgOptions {
        max_connections: 2,
        connect_timeout: std::time::Duration::from_secs(2),
    };
    let s = PgVoiceStore::open(&url, &opts).unwrap();
    s.insert(voice("ivan")).unwrap();
    s.add_profile(&id("ivan"), &profile(EngineKind::Xtts, 2, &[6]))
        .unwrap();
    pg.stop();
    let e = s.get(&id("ivan")).unwrap_err();
    assert_eq!(e.code(), "overloaded", "{e}");
    assert_eq!(s.insert(voice("jane")).unwrap_err().code(), "overloaded");
    pg.restart();
    let v = s.get(&id("ivan")).unwrap().unwrap();
    assert_eq!(v.voice.engines.len(), 2);
    assert_eq!(
        s.reference_audio(&id("ivan")).unwrap().unwrap(),
        b"RIFF ivan WAVE"
    );
    assert!(
        s.get(&id("jane")).unwrap().is_none(),
        "the refused insert left nothing"
    );
    s.insert(voice("jane")).unwrap();
    assert_eq!(s.count().unwrap(), 2);
}
