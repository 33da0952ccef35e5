//! `vctts::hub` against a local hub (never the internet): a model is
//! downloaded, verified and installed atomically; every failure names the
//! file and installs nothing; cut downloads resume with HTTP Range.

#[path = "support/local_hub.rs"]
mod local_hub;

use local_hub::{LocalHub, sha256};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use vctts::hub::catalog::Catalog;
use vctts::hub::fetch::{FetchEvent, FetchProgress, FetchedRecord, RECORD, STAGING, fetch, read_record};
use vctts::hub::{FetchJobs, Hub, HubConfig, JobState, LocalDisk, NoProgress, Storage};

const REPO: &str = "acme/converter";
const REV: &str = "main";

/// Deterministic bytes.
fn noise(len: usize, seed: u32) -> Vec<u8> {
    let mut x = seed.wrapping_mul(2_654_435_761) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            (x >> 24) as u8
        })
        .collect()
}

struct Fixture {
    hub: LocalHub,
    big: Vec<u8>,
    small: Vec<u8>,
    config: Vec<u8>,
}

/// A hub serving a three-file model: `big.onnx` (LFS, SHA-256 in the
/// catalog), `small.onnx` (LFS, verified by the hub's X-Linked-Etag) and
/// `config.json` (a git file, verified by its blob id).
fn fixture() -> Fixture {
    let hub = LocalHub::start();
    let f = Fixture {
        hub,
        big: noise(300_000, 1),
        small: noise(5_000, 2),
        config: br#"{"sampling_rate": 22050}"#.to_vec(),
    };
    f.hub.add(REPO, REV, "onnx/big.onnx", &f.big, true);
    f.hub.add(REPO, REV, "small.onnx", &f.small, true);
    f.hub.add(REPO, REV, "config.json", &f.config, false);
    f
}

fn catalog_with(model_files: serde_json::Value) -> Catalog {
    let text = serde_json::json!({
        "models": [
            {
                "name": "conv", "engine": "openvoice", "description": "test converter", "licence": "MIT",
                "repo": REPO, "revision": REV, "target": "openvoice/converter",
                "files": model_files
            },
            {
                "name": "imported", "engine": "gpt-sovits", "description": "d", "licence": "MIT",
                "target": "gpt_sovits", "import": "vctts models import gpt-sovits ..."
            }
        ],
        "piper": {
            "description": "voices", "repo": "rhasspy/piper-voices", "revision": "v1.0.0",
            "index": "voices.json", "target": "openvoice/base", "licence": "per voice",
            "provenance": "voices.json"
        }
    })
    .to_string();
    Catalog::parse(&text, "test").unwrap()
}

fn catalog(f: &Fixture) -> Catalog {
    catalog_with(serde_json::json!([
        {"path": "onnx/big.onnx", "dest": "big.onnx", "size": f.big.len(), "sha256": sha256(&f.big)},
        {"path": "small.onnx"},
        {"path": "config.json"}
    ]))
}

fn hub_client(f: &Fixture, token: Option<&str>, retries: u32, storage: Arc<dyn Storage>) -> Hub {
    Hub::new(
        HubConfig {
            endpoint: f.hub.endpoint.clone(),
            token: token.map(str::to_string),
        },
        storage,
        retries,
        Duration::ZERO,
    )
    .unwrap()
}

fn disk(f: &Fixture, retries: u32) -> Hub {
    hub_client(f, None, retries, Arc::new(LocalDisk))
}

fn target(root: &Path) -> PathBuf {
    root.join("openvoice/converter")
}

/// Files under `dir`, relative, sorted.
fn tree(dir: &Path) -> Vec<String> {
    fn walk(base: &Path, dir: &Path, out: &mut Vec<String>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                walk(base, &p, out);
            } else {
                out.push(p.strip_prefix(base).unwrap().display().to_string());
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
}

/// Records events and checks, at every one, that the target folder shows
/// either nothing / the previous content, or (after `Installed`) the
/// complete model: never a mix.
struct Watch {
    target: PathBuf,
    before: Vec<String>,
    events: Mutex<Vec<FetchEvent>>,
}

impl Watch {
    fn new(target: PathBuf) -> Self {
        let before = tree(&target);
        Watch {
            target,
            before,
            events: Mutex::default(),
        }
    }
    fn installed(&self) -> bool {
        self.events
            .lock()
            .unwrap()
            .iter()
            .any(|e| matches!(e, FetchEvent::Installed { .. }))
    }
}

impl FetchProgress for Watch {
    fn event(&self, e: FetchEvent) {
        let installed = matches!(e, FetchEvent::Installed { .. });
        self.events.lock().unwrap().push(e);
        if !installed {
            assert_eq!(
                tree(&self.target),
                self.before,
                "the model folder changed before the install"
            );
        }
    }
}

#[tokio::test]
async fn fetches_verifies_and_installs_a_model() {
    let f = fixture();
    let root = tempfile::tempdir().unwrap();
    let watch = Watch::new(target(root.path()));
    let report = fetch(&catalog(&f), &disk(&f, 0), root.path(), "conv", false, &watch)
        .await
        .unwrap();
    assert!(!report.already_installed);
    assert!(watch.installed());
    let t = target(root.path());
    assert_eq!(std::fs::read(t.join("big.onnx")).unwrap(), f.big);
    assert_eq!(std::fs::read(t.join("small.onnx")).unwrap(), f.small);
    assert_eq!(std::fs::read(t.join("config.json")).unwrap(), f.config);
    let record: FetchedRecord = read_record(&t.join(RECORD)).unwrap();
    assert_eq!(
        record.commit.as_deref(),
        Some("0123456789abcdef0123456789abcdef01234567")
    );
    let against: Vec<&str> = record.files.iter().map(|x| x.verified_against.as_str()).collect();
    assert!(against[0].contains("catalog"), "{against:?}");
    assert!(against[1].contains("X-Linked-Etag"), "{against:?}");
    assert!(against[2].contains("git blob"), "{against:?}");
    assert_eq!(record.files[1].sha256, sha256(&f.small));
    assert!(!root.path().join(STAGING).exists(), "staging is cleaned up");
    // After the first answer names the commit, every request names it.
    let seen = f.hub.seen();
    let first = seen
        .iter()
        .position(|s| s.path.contains("/resolve/main/"))
        .unwrap();
    assert!(
        seen[first + 1..]
            .iter()
            .filter(|s| s.path.contains("/resolve/"))
            .all(|s| s
                .path
                .contains("/resolve/0123456789abcdef0123456789abcdef01234567/")),
        "{seen:?}"
    );

    // A second fetch finds it installed and downloads nothing.
    let gets = f.hub.seen().iter().filter(|s| s.method == "GET").count();
    let again = fetch(
        &catalog(&f),
        &disk(&f, 0),
        root.path(),
        "conv",
        false,
        &NoProgress,
    )
    .await
    .unwrap();
    assert!(again.already_installed);
    assert_eq!(f.hub.seen().iter().filter(|s| s.method == "GET").count(), gets);
}

#[tokio::test]
async fn a_cut_connection_is_resumed_with_range() {
    let f = fixture();
    f.hub.cut_next_download("onnx/big.onnx", 100_000);
    let root = tempfile::tempdir().unwrap();
    let watch = Watch::new(target(root.path()));
    fetch(&catalog(&f), &disk(&f, 2), root.path(), "conv", false, &watch)
        .await
        .unwrap();
    assert_eq!(
        std::fs::read(target(root.path()).join("big.onnx")).unwrap(),
        f.big
    );
    let ranges: Vec<Option<String>> = f
        .hub
        .seen()
        .into_iter()
        .filter(|s| s.method == "GET" && s.path.ends_with("big.onnx") && s.path.starts_with("/cdn"))
        .map(|s| s.range)
        .collect();
    assert_eq!(ranges, [None, Some("bytes=100000-".to_string())]);
    assert!(
        watch
            .events
            .lock()
            .unwrap()
            .iter()
            .any(|e| matches!(e, FetchEvent::Retry { done: 100_000, .. }))
    );
}

#[tokio::test]
async fn a_server_error_is_retried_and_a_client_error_is_not() {
    let f = fixture();
    let root = tempfile::tempdir().unwrap();
    f.hub.fail_next_download("small.onnx", 503);
    fetch(
        &catalog(&f),
        &disk(&f, 1),
        root.path(),
        "conv",
        false,
        &NoProgress,
    )
    .await
    .unwrap();
    assert_eq!(
        std::fs::read(target(root.path()).join("small.onnx")).unwrap(),
        f.small
    );

    let root = tempfile::tempdir().unwrap();
    f.hub.fail_next_download("small.onnx", 503);
    let e = fetch(
        &catalog(&f),
        &disk(&f, 0),
        root.path(),
        "conv",
        false,
        &NoProgress,
    )
    .await
    .unwrap_err();
    assert_eq!(e.code(), "network_error");
    assert!(
        e.to_string().contains("small.onnx") && e.to_string().contains("503"),
        "{e}"
    );

    f.hub.fail_next_download("small.onnx", 410);
    let e = fetch(
        &catalog(&f),
        &disk(&f, 5),
        root.path(),
        "conv",
        false,
        &NoProgress,
    )
    .await
    .unwrap_err();
    assert_eq!(e.code(), "hub_error");
    assert!(
        e.to_string().contains("small.onnx") && e.to_string().contains("410"),
        "{e}"
    );
    assert!(!target(root.path()).exists());
}

#[tokio::test]
async fn a_failed_fetch_leaves_no_model_and_the_next_run_resumes() {
    let f = fixture();
    f.hub.cut_next_download("onnx/big.onnx", 120_000);
    let root = tempfile::tempdir().unwrap();
    let watch = Watch::new(target(root.path()));
    let e = fetch(&catalog(&f), &disk(&f, 0), root.path(), "conv", false, &watch)
        .await
        .unwrap_err();
    assert_eq!(e.code(), "network_error", "{e}");
    assert!(e.to_string().contains("onnx/big.onnx"), "{e}");
    assert!(e.to_string().contains("run the command again"), "{e}");
    assert!(!target(root.path()).exists(), "nothing is installed");
    let part = root.path().join(STAGING).join("conv/files/big.onnx.part");
    assert_eq!(
        std::fs::metadata(&part).unwrap().len(),
        120_000,
        "the part stays in staging"
    );
    assert!(
        tree(root.path())
            .iter()
            .all(|p| !p.ends_with(".part") || p.starts_with(STAGING)),
        "no .part outside staging"
    );

    fetch(
        &catalog(&f),
        &disk(&f, 0),
        root.path(),
        "conv",
        false,
        &NoProgress,
    )
    .await
    .unwrap();
    assert_eq!(
        std::fs::read(target(root.path()).join("big.onnx")).unwrap(),
        f.big
    );
    let last = f
        .hub
        .seen()
        .into_iter()
        .rfind(|s| s.method == "GET" && s.path.starts_with("/cdn") && s.path.ends_with("big.onnx"))
        .unwrap();
    assert_eq!(last.range.as_deref(), Some("bytes=120000-"));
}

#[tokio::test]
async fn a_wrong_checksum_names_the_file_and_installs_nothing() {
    let f = fixture();
    let root = tempfile::tempdir().unwrap();
    // The hub's metadata claims one SHA-256, the bytes have another.
    f.hub.claim_sha256(REPO, REV, "small.onnx", &"ab".repeat(32));
    let watch = Watch::new(target(root.path()));
    let e = fetch(&catalog(&f), &disk(&f, 0), root.path(), "conv", false, &watch)
        .await
        .unwrap_err();
    assert_eq!(e.code(), "checksum_mismatch");
    let msg = e.to_string();
    assert!(msg.contains("small.onnx") && msg.contains("sha256"), "{msg}");
    assert!(!target(root.path()).exists());
    assert!(
        !root
            .path()
            .join(STAGING)
            .join("conv/files/small.onnx.part")
            .exists(),
        "a bad download is discarded"
    );
}

#[tokio::test]
async fn a_catalog_sum_that_the_hub_contradicts_stops_before_downloading() {
    let f = fixture();
    let root = tempfile::tempdir().unwrap();
    let cat = catalog_with(serde_json::json!([
        {"path": "onnx/big.onnx", "sha256": sha256(b"something else")}
    ]));
    let e = fetch(&cat, &disk(&f, 0), root.path(), "conv", false, &NoProgress)
        .await
        .unwrap_err();
    assert_eq!(e.code(), "checksum_mismatch");
    assert!(e.to_string().contains("onnx/big.onnx"), "{e}");
    assert!(
        !f.hub.seen().iter().any(|s| s.method == "GET"),
        "nothing was downloaded"
    );
    assert!(!target(root.path()).exists());
}

#[tokio::test]
async fn a_missing_file_is_a_404_naming_it() {
    let f = fixture();
    let root = tempfile::tempdir().unwrap();
    let cat = catalog_with(serde_json::json!([
        {"path": "small.onnx"},
        {"path": "nope.onnx"}
    ]));
    let e = fetch(&cat, &disk(&f, 0), root.path(), "conv", false, &NoProgress)
        .await
        .unwrap_err();
    assert_eq!(e.code(), "hub_not_found");
    assert!(
        e.to_string().contains("nope.onnx") && e.to_string().contains("404"),
        "{e}"
    );
    assert!(
        !target(root.path()).exists(),
        "the first file alone is not installed"
    );
}

#[tokio::test]
async fn a_gated_repository_needs_hf_token() {
    let f = fixture();
    f.hub.require_token("secret-token");
    let root = tempfile::tempdir().unwrap();
    let e = fetch(
        &catalog(&f),
        &disk(&f, 0),
        root.path(),
        "conv",
        false,
        &NoProgress,
    )
    .await
    .unwrap_err();
    assert_eq!(e.code(), "hub_unauthorized");
    assert!(
        e.to_string().contains("401") && e.to_string().contains("set HF_TOKEN"),
        "{e}"
    );
    assert!(e.to_string().contains("onnx/big.onnx"), "{e}");

    let wrong = hub_client(&f, Some("wrong"), 0, Arc::new(LocalDisk));
    let e = fetch(&catalog(&f), &wrong, root.path(), "conv", false, &NoProgress)
        .await
        .unwrap_err();
    assert!(e.to_string().contains("not accepted"), "{e}");

    let good = hub_client(&f, Some("secret-token"), 0, Arc::new(LocalDisk));
    fetch(&catalog(&f), &good, root.path(), "conv", false, &NoProgress)
        .await
        .unwrap();
    assert!(target(root.path()).join("big.onnx").is_file());
    // The token went with the metadata and download requests.
    assert!(
        f.hub
            .seen()
            .iter()
            .any(|s| s.path.contains("/resolve/") && s.auth.as_deref() == Some("Bearer secret-token"))
    );
}

/// A disk that fills up after `room` bytes.
#[derive(Debug)]
struct TinyDisk {
    room: Arc<Mutex<u64>>,
}

struct TinyWriter {
    inner: std::fs::File,
    room: Arc<Mutex<u64>>,
}

impl Write for TinyWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let mut room = self.room.lock().unwrap();
        if *room == 0 {
            return Err(std::io::Error::from_raw_os_error(28)); // ENOSPC
        }
        let n = buf.len().min(*room as usize);
        let n = self.inner.write(&buf[..n])?;
        *room -= n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

impl Storage for TinyDisk {
    fn append(&self, path: &Path) -> std::io::Result<Box<dyn Write + Send>> {
        let inner = std::fs::OpenOptions::new().create(true).append(true).open(path)?;
        Ok(Box::new(TinyWriter {
            inner,
            room: self.room.clone(),
        }))
    }
}

#[tokio::test]
async fn a_full_disk_names_the_file_and_the_fetch_resumes_after() {
    let f = fixture();
    let root = tempfile::tempdir().unwrap();
    let tiny = hub_client(
        &f,
        None,
        3,
        Arc::new(TinyDisk {
            room: Arc::new(Mutex::new(50_000)),
        }),
    );
    let e = fetch(&catalog(&f), &tiny, root.path(), "conv", false, &NoProgress)
        .await
        .unwrap_err();
    assert_eq!(e.code(), "disk_full", "{e}");
    assert!(
        e.to_string().contains("onnx/big.onnx") && e.to_string().contains("disk is full"),
        "{e}"
    );
    assert!(!target(root.path()).exists());
    let seen_before = f.hub.seen().len();
    assert!(
        f.hub
            .seen()
            .iter()
            .filter(|s| s.method == "GET" && s.path.starts_with("/cdn"))
            .count()
            == 1,
        "a full disk is not retried"
    );

    fetch(
        &catalog(&f),
        &disk(&f, 0),
        root.path(),
        "conv",
        false,
        &NoProgress,
    )
    .await
    .unwrap();
    assert_eq!(
        std::fs::read(target(root.path()).join("big.onnx")).unwrap(),
        f.big
    );
    let resumed = f.hub.seen()[seen_before..]
        .iter()
        .find(|s| s.method == "GET" && s.path.starts_with("/cdn") && s.path.ends_with("big.onnx"))
        .cloned()
        .unwrap();
    assert_eq!(resumed.range.as_deref(), Some("bytes=50000-"));
}

#[tokio::test]
async fn replacing_a_model_keeps_the_old_one_whole_until_the_swap() {
    let f = fixture();
    let root = tempfile::tempdir().unwrap();
    let t = target(root.path());
    std::fs::create_dir_all(&t).unwrap();
    std::fs::write(t.join("big.onnx"), b"old").unwrap();
    std::fs::write(t.join("NOTES.txt"), b"mine").unwrap();
    // Fails half-way: the old folder is untouched.
    f.hub.cut_next_download("small.onnx", 10);
    let watch = Watch::new(t.clone());
    assert!(
        fetch(&catalog(&f), &disk(&f, 0), root.path(), "conv", false, &watch)
            .await
            .is_err()
    );
    assert_eq!(std::fs::read(t.join("big.onnx")).unwrap(), b"old");
    // Then succeeds: the new model, and the user's own file carried over.
    let watch = Watch::new(t.clone());
    fetch(&catalog(&f), &disk(&f, 0), root.path(), "conv", false, &watch)
        .await
        .unwrap();
    assert_eq!(std::fs::read(t.join("big.onnx")).unwrap(), f.big);
    assert_eq!(std::fs::read(t.join("NOTES.txt")).unwrap(), b"mine");
}

fn md5_of(bytes: &[u8]) -> String {
    use md5::Digest;
    hex::encode(md5::Md5::digest(bytes))
}

fn serve_piper(f: &Fixture, onnx: &[u8], onnx_md5: &str) {
    let dir = "de/de_DE/thorsten/medium";
    let config = br#"{"audio": {"sample_rate": 22050}}"#;
    let card = b"# Model card\nLicense: CC0\n";
    let index = serde_json::json!({
        "de_DE-thorsten-medium": {
            "key": "de_DE-thorsten-medium",
            "files": {
                format!("{dir}/de_DE-thorsten-medium.onnx"): {"size_bytes": onnx.len(), "md5_digest": onnx_md5},
                format!("{dir}/de_DE-thorsten-medium.onnx.json"): {"size_bytes": config.len(), "md5_digest": md5_of(config)},
                format!("{dir}/MODEL_CARD"): {"size_bytes": card.len(), "md5_digest": md5_of(card)}
            }
        }
    });
    let repo = "rhasspy/piper-voices";
    f.hub
        .add(repo, "v1.0.0", "voices.json", index.to_string().as_bytes(), false);
    f.hub.add(
        repo,
        "v1.0.0",
        &format!("{dir}/de_DE-thorsten-medium.onnx"),
        onnx,
        true,
    );
    f.hub.add(
        repo,
        "v1.0.0",
        &format!("{dir}/de_DE-thorsten-medium.onnx.json"),
        config,
        false,
    );
    f.hub
        .add(repo, "v1.0.0", &format!("{dir}/MODEL_CARD"), card, false);
}

#[tokio::test]
async fn a_piper_voice_is_fetched_by_name_and_checked_against_voices_json() {
    let f = fixture();
    let onnx = noise(40_000, 9);
    serve_piper(&f, &onnx, &md5_of(&onnx));
    let root = tempfile::tempdir().unwrap();
    let base = root.path().join("openvoice/base");
    std::fs::create_dir_all(&base).unwrap();
    std::fs::write(base.join("en_US-joe-medium.onnx"), b"joe").unwrap();
    let r = fetch(
        &catalog(&f),
        &disk(&f, 0),
        root.path(),
        "de_DE-thorsten-medium",
        false,
        &NoProgress,
    )
    .await
    .unwrap();
    assert_eq!(r.target, base);
    assert_eq!(
        tree(&base),
        [
            "de_DE-thorsten-medium.FETCHED.json",
            "de_DE-thorsten-medium.MODEL_CARD",
            "de_DE-thorsten-medium.onnx",
            "de_DE-thorsten-medium.onnx.json",
            "en_US-joe-medium.onnx"
        ]
    );
    assert_eq!(
        std::fs::read(base.join("de_DE-thorsten-medium.onnx")).unwrap(),
        onnx
    );
    let rec = read_record(&base.join("de_DE-thorsten-medium.FETCHED.json")).unwrap();
    assert!(rec.files.iter().all(|x| {
        x.verified_against
            .contains("md5 from rhasspy/piper-voices@v1.0.0 voices.json")
    }));
    assert!(
        rec.files[2].verified_against.contains("X-Linked-Etag"),
        "{:?}",
        rec.files[2]
    );

    let e = fetch(
        &catalog(&f),
        &disk(&f, 0),
        root.path(),
        "de_DE-karl-medium",
        false,
        &NoProgress,
    )
    .await
    .unwrap_err();
    assert_eq!(e.code(), "unknown_model");
    assert!(
        e.to_string().contains("de_DE-thorsten-medium"),
        "suggests what exists: {e}"
    );
}

#[tokio::test]
async fn a_piper_voice_with_a_wrong_md5_is_not_installed() {
    let f = fixture();
    let onnx = noise(40_000, 9);
    serve_piper(&f, &onnx, &"0".repeat(32));
    let root = tempfile::tempdir().unwrap();
    let e = fetch(
        &catalog(&f),
        &disk(&f, 0),
        root.path(),
        "de_DE-thorsten-medium",
        false,
        &NoProgress,
    )
    .await
    .unwrap_err();
    assert_eq!(e.code(), "checksum_mismatch");
    assert!(
        e.to_string().contains("de_DE-thorsten-medium.onnx") && e.to_string().contains("md5"),
        "{e}"
    );
    assert!(
        !root
            .path()
            .join("openvoice/base/de_DE-thorsten-medium.onnx")
            .exists()
    );
}

#[tokio::test]
async fn background_jobs_report_progress_and_outcome() {
    let f = fixture();
    let root = tempfile::tempdir().unwrap();
    let jobs = FetchJobs::new(catalog(&f), disk(&f, 0), root.path().to_path_buf());
    assert_eq!(jobs.start("nope", false).unwrap_err().code(), "unknown_model");
    assert_eq!(jobs.start("imported", false).unwrap_err().code(), "not_fetchable");
    let id = jobs.start("conv", false).unwrap();
    let done = jobs.wait(id).await.unwrap();
    assert_eq!(done.state, JobState::Done, "{done:?}");
    assert_eq!(done.file_count, Some(3));
    assert_eq!(
        done.bytes_done,
        (f.big.len() + f.small.len() + f.config.len()) as u64
    );
    assert!(done.files.iter().all(|x| x.verified), "{done:?}");
    assert_eq!(jobs.list().len(), 1);

    let cat = catalog_with(serde_json::json!([{"path": "missing.onnx"}]));
    let jobs = FetchJobs::new(cat, disk(&f, 0), root.path().join("other"));
    let id = jobs.start("conv", false).unwrap();
    let failed = jobs.wait(id).await.unwrap();
    assert_eq!(failed.state, JobState::Failed);
    let err = failed.error.unwrap();
    assert_eq!(err.code, "hub_not_found");
    assert!(err.message.contains("missing.onnx"));
}
