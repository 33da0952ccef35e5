//! Fetching one model: resolve the name to files, download each into the
//! staging folder, verify it, and install the model atomically.
//!
//! Staging is `<models root>/.fetch/<name>/` (same file system as the
//! models, so installing is a rename). Each file is downloaded to
//! `files/<dest>.part`, verified, and renamed to `files/<dest>`; only when
//! every file is verified is the model moved into its target:
//! - a model that owns a folder ([`Layout::Folder`]) is assembled complete
//!   in staging (with `FETCHED.json` and any files the old folder had that
//!   the model does not provide) and swapped in with renames, so the folder
//!   is either the old one or the complete new one, never half of either;
//! - a Piper voice ([`Layout::Files`]) is moved file by file into the shared
//!   folder, the `.onnx` last: the engine only sees a voice once its `.onnx`
//!   exists, and by then its config is already there.
//!
//! A failed fetch leaves its `.part` files in staging (never in a model
//! folder); the next fetch of the same name resumes them. A file that fails
//! its checksum is deleted.

use super::catalog::{Catalog, Expected, Layout, Plan, PlannedFile, Resolved};
use super::download::{ByteProgress, Hub, RemoteFile, digests};
use super::error::FetchError;
use serde::Serialize;
use std::path::{Path, PathBuf};

/// The staging folder under a models root.
pub const STAGING: &str = ".fetch";

/// The record of a fetched model, written beside it.
pub const RECORD: &str = "FETCHED.json";

/// Largest index file accepted (`voices.json` is about 1 MB).
const INDEX_LIMIT: u64 = 64 << 20;

/// What happens during a fetch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FetchEvent {
    /// The model was resolved: `files` files, `total` bytes if known.
    Planned {
        /// Model name.
        name: String,
        /// Number of files.
        files: usize,
        /// Total size, when every size is known.
        total: Option<u64>,
    },
    /// A file's bytes: `done` of `size`.
    Bytes {
        /// Path in the repository.
        file: String,
        /// Bytes on disk.
        done: u64,
        /// Size, when known.
        size: Option<u64>,
    },
    /// A connection was cut; the next attempt resumes at `done`.
    Retry {
        /// Path in the repository.
        file: String,
        /// Attempt number (1 = first retry).
        attempt: u32,
        /// Bytes kept.
        done: u64,
        /// What went wrong.
        error: String,
    },
    /// A file is being checked.
    Verifying {
        /// Path in the repository.
        file: String,
    },
    /// A file is downloaded and verified.
    Verified {
        /// Path in the repository.
        file: String,
        /// Its SHA-256.
        sha256: String,
    },
    /// The model is installed.
    Installed {
        /// Model name.
        name: String,
        /// Its folder.
        target: PathBuf,
    },
}

/// Receives [`FetchEvent`]s.
pub trait FetchProgress: Send + Sync {
    /// One event.
    fn event(&self, e: FetchEvent);
}

/// Ignores progress.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoProgress;

impl FetchProgress for NoProgress {
    fn event(&self, _: FetchEvent) {}
}

struct Bytes<'a>(&'a dyn FetchProgress);

impl ByteProgress for Bytes<'_> {
    fn bytes(&self, file: &str, done: u64, size: Option<u64>) {
        self.0.event(FetchEvent::Bytes {
            file: file.to_string(),
            done,
            size,
        });
    }
    fn retry(&self, file: &str, attempt: u32, done: u64, error: &str) {
        self.0.event(FetchEvent::Retry {
            file: file.to_string(),
            attempt,
            done,
            error: error.to_string(),
        });
    }
}

/// One installed file, as recorded in `FETCHED.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct FetchedFile {
    /// Path in the repository.
    pub path: String,
    /// Path inside the target folder.
    pub dest: String,
    /// Bytes.
    pub size: u64,
    /// SHA-256.
    pub sha256: String,
    /// What it was checked against.
    pub verified_against: String,
}

/// The record of a fetched model.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct FetchedRecord {
    /// Model name.
    pub name: String,
    /// Engine.
    pub engine: String,
    /// `owner/name`.
    pub repo: String,
    /// The revision asked for.
    pub revision: String,
    /// The commit it resolved to, when the hub said.
    pub commit: Option<String>,
    /// Licence.
    pub licence: String,
    /// The files.
    pub files: Vec<FetchedFile>,
}

/// The outcome of a fetch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FetchReport {
    /// Model name.
    pub name: String,
    /// The folder it is in.
    pub target: PathBuf,
    /// Whether it was already there (nothing downloaded).
    pub already_installed: bool,
    /// What was installed (empty when already installed).
    pub record: Option<FetchedRecord>,
}

/// Resolves `name` to a plan, reading the Piper index from the hub when the
/// name is a Piper voice.
pub async fn plan(catalog: &Catalog, hub: &Hub, name: &str) -> Result<Plan, FetchError> {
    match catalog.resolve(name)? {
        Resolved::Model(m) => Plan::from_entry(m),
        Resolved::Piper(p) => {
            let src = &catalog.piper;
            let index = hub
                .get_small(&src.repo, &src.revision, &src.index, INDEX_LIMIT)
                .await?;
            Plan::from_piper_index(src, &p, &index)
        }
    }
}

/// Fetches `name` into `root` (a models folder). Unless `force`, a model
/// whose files are all in place is left alone.
pub async fn fetch(
    catalog: &Catalog,
    hub: &Hub,
    root: &Path,
    name: &str,
    force: bool,
    progress: &dyn FetchProgress,
) -> Result<FetchReport, FetchError> {
    let plan = plan(catalog, hub, name).await?;
    fetch_plan(hub, root, &plan, force, progress).await
}

/// Fetches a resolved plan (see [`fetch`]).
pub async fn fetch_plan(
    hub: &Hub,
    root: &Path,
    plan: &Plan,
    force: bool,
    progress: &dyn FetchProgress,
) -> Result<FetchReport, FetchError> {
    let target = plan.target_dir(root);
    if !force && plan.is_installed(root) {
        return Ok(FetchReport {
            name: plan.name.clone(),
            target,
            already_installed: true,
            record: None,
        });
    }
    progress.event(FetchEvent::Planned {
        name: plan.name.clone(),
        files: plan.files.len(),
        total: plan.files.iter().map(|f| f.expected.size).sum(),
    });
    let staging = root.join(STAGING).join(&plan.name);
    let files_dir = staging.join("files");
    mkdirs(&files_dir)?;
    let mut commit: Option<String> = None;
    let mut fetched = Vec::new();
    for f in &plan.files {
        // Once the hub has said which commit the revision is, every request
        // names that commit, so a branch that moves mid-fetch cannot mix
        // files of two commits.
        let revision = commit.clone().unwrap_or_else(|| plan.revision.clone());
        let remote = hub.head(&plan.repo, &revision, &f.path).await?;
        if commit.is_none() {
            commit = remote
                .commit
                .clone()
                .filter(|c| c.len() == 40 && c.bytes().all(|b| b.is_ascii_hexdigit()));
        }
        let revision = commit.clone().unwrap_or(revision);
        let (expected, against) = expectation(f, &remote)?;
        let done = files_dir.join(&f.dest);
        let part = part_path(&done);
        if let Some(parent) = done.parent() {
            mkdirs(parent)?;
        }
        if !done.is_file() {
            hub.download(
                &plan.repo,
                &revision,
                &f.path,
                &part,
                expected.size,
                &Bytes(progress),
            )
            .await?;
            progress.event(FetchEvent::Verifying { file: f.path.clone() });
            if let Err(e) = verify(&f.path, &part, &expected, &remote, &against).await {
                let _ = std::fs::remove_file(&part);
                return Err(e);
            }
            rename(&f.path, &part, &done)?;
        }
        let d = file_digests(&f.path, &done).await?;
        progress.event(FetchEvent::Verified {
            file: f.path.clone(),
            sha256: d.sha256.clone(),
        });
        fetched.push(FetchedFile {
            path: f.path.clone(),
            dest: f.dest.clone(),
            size: d.size,
            sha256: d.sha256,
            verified_against: against,
        });
    }
    let record = FetchedRecord {
        name: plan.name.clone(),
        engine: plan.engine.clone(),
        repo: plan.repo.clone(),
        revision: plan.revision.clone(),
        commit,
        licence: plan.licence.clone(),
        files: fetched,
    };
    let json = serde_json::to_vec_pretty(&record).unwrap_or_default();
    match plan.layout {
        Layout::Folder => {
            write(&files_dir.join(RECORD), &json)?;
            install_folder(&staging, &files_dir, &target)?;
        }
        Layout::Files => {
            write(&files_dir.join(format!("{}.{RECORD}", plan.name)), &json)?;
            mkdirs(&target)?;
            rename(
                RECORD,
                &files_dir.join(format!("{}.{RECORD}", plan.name)),
                &target.join(format!("{}.{RECORD}", plan.name)),
            )?;
            for f in &plan.files {
                rename(&f.path, &files_dir.join(&f.dest), &target.join(&f.dest))?;
            }
        }
    }
    let _ = std::fs::remove_dir_all(&staging);
    let _ = std::fs::remove_dir(root.join(STAGING));
    progress.event(FetchEvent::Installed {
        name: plan.name.clone(),
        target: target.clone(),
    });
    Ok(FetchReport {
        name: plan.name.clone(),
        target,
        already_installed: false,
        record: Some(record),
    })
}

/// What a file must match: the catalog's values, checked against the hub's.
fn expectation(f: &PlannedFile, remote: &RemoteFile) -> Result<(Expected, String), FetchError> {
    let mut e = f.expected.clone();
    let mismatch = |what: &str, ours: String, theirs: String| FetchError::Checksum {
        file: f.path.clone(),
        what: what.into(),
        expected: ours,
        actual: theirs,
        source_of_truth: format!(
            "{} says one, the hub's metadata the other; nothing was downloaded",
            f.expected.source
        ),
    };
    if let (Some(ours), Some(theirs)) = (&e.sha256, &remote.sha256) {
        if ours != theirs {
            return Err(mismatch("sha256", ours.clone(), theirs.clone()));
        }
    }
    if let (Some(ours), Some(theirs)) = (e.size, remote.size) {
        if ours != theirs {
            return Err(mismatch("size", ours.to_string(), theirs.to_string()));
        }
    }
    let mut against = Vec::new();
    if e.sha256.is_some() {
        against.push(format!("sha256 from {}", e.source));
    } else if let Some(s) = &remote.sha256 {
        e.sha256 = Some(s.clone());
        against.push("sha256 from the hub (X-Linked-Etag)".to_string());
    }
    if e.md5.is_some() {
        against.push(format!("md5 from {}", e.source));
    }
    if remote.git_blob.is_some() && e.sha256.is_none() {
        against.push("git blob id from the hub (ETag)".to_string());
    }
    if e.size.is_none() {
        e.size = remote.size;
    }
    if against.is_empty() {
        return Err(FetchError::Unverifiable { file: f.path.clone() });
    }
    Ok((e, against.join(" + ")))
}

async fn file_digests(file: &str, path: &Path) -> Result<super::download::Digests, FetchError> {
    let p = path.to_path_buf();
    // On disk before it is checked (and later renamed), off the async runtime.
    let r = tokio::task::spawn_blocking(move || {
        std::fs::File::open(&p)?.sync_all()?;
        digests(&p)
    })
    .await;
    match r {
        Ok(Ok(d)) => Ok(d),
        Ok(Err(e)) => Err(FetchError::io(
            file,
            path,
            format!("reading {}", path.display()),
            e,
        )),
        Err(e) => Err(FetchError::Io {
            context: format!("checking {file}"),
            source: std::io::Error::other(e.to_string()),
        }),
    }
}

async fn verify(
    file: &str,
    part: &Path,
    e: &Expected,
    remote: &RemoteFile,
    against: &str,
) -> Result<(), FetchError> {
    let d = file_digests(file, part).await?;
    let fail = |what: &str, expected: &str, actual: &str| FetchError::Checksum {
        file: file.to_string(),
        what: what.into(),
        expected: expected.to_string(),
        actual: actual.to_string(),
        source_of_truth: against.to_string(),
    };
    if let Some(s) = e.size {
        if s != d.size {
            return Err(fail("size", &s.to_string(), &d.size.to_string()));
        }
    }
    if let Some(s) = &e.sha256 {
        if *s != d.sha256 {
            return Err(fail("sha256", s, &d.sha256));
        }
    }
    if let Some(m) = &e.md5 {
        if *m != d.md5 {
            return Err(fail("md5", m, &d.md5));
        }
    }
    if e.sha256.is_none() {
        if let Some(g) = &remote.git_blob {
            if *g != d.git_blob {
                return Err(fail("git blob id", g, &d.git_blob));
            }
        }
    }
    Ok(())
}

fn part_path(done: &Path) -> PathBuf {
    let mut s = done.as_os_str().to_os_string();
    s.push(".part");
    PathBuf::from(s)
}

fn mkdirs(dir: &Path) -> Result<(), FetchError> {
    std::fs::create_dir_all(dir)
        .map_err(|e| FetchError::io("(staging)", dir, format!("creating {}", dir.display()), e))
}

fn write(path: &Path, bytes: &[u8]) -> Result<(), FetchError> {
    std::fs::write(path, bytes)
        .map_err(|e| FetchError::io(RECORD, path, format!("writing {}", path.display()), e))
}

fn rename(file: &str, from: &Path, to: &Path) -> Result<(), FetchError> {
    std::fs::rename(from, to).map_err(|e| {
        FetchError::io(
            file,
            to,
            format!("moving {} to {}", from.display(), to.display()),
            e,
        )
    })
}

/// Moves the complete `files` tree into `target` with renames. Files of an
/// existing target that the new tree lacks are carried over first; the old
/// folder is parked in staging during the swap and removed afterwards.
fn install_folder(staging: &Path, files: &Path, target: &Path) -> Result<(), FetchError> {
    if let Some(parent) = target.parent() {
        mkdirs(parent)?;
    }
    if target.is_dir() {
        carry_over(target, files)?;
        let old = staging.join("old");
        let _ = std::fs::remove_dir_all(&old);
        rename("(previous model folder)", target, &old)?;
        if let Err(e) = rename("(model folder)", files, target) {
            // Put the previous folder back.
            let _ = std::fs::rename(&old, target);
            return Err(e);
        }
        let _ = std::fs::remove_dir_all(&old);
    } else {
        rename("(model folder)", files, target)?;
    }
    Ok(())
}

/// Copies (hard-links where possible) files of `old` that `new` lacks.
fn carry_over(old: &Path, new: &Path) -> Result<(), FetchError> {
    let entries = std::fs::read_dir(old)
        .map_err(|e| FetchError::io("(model folder)", old, format!("reading {}", old.display()), e))?;
    for entry in entries.flatten() {
        let from = entry.path();
        let to = new.join(entry.file_name());
        let Ok(kind) = entry.file_type() else { continue };
        if kind.is_dir() {
            if !to.exists() {
                mkdirs(&to)?;
            }
            if to.is_dir() {
                carry_over(&from, &to)?;
            }
        } else if kind.is_file() && !to.exists() && std::fs::hard_link(&from, &to).is_err() {
            std::fs::copy(&from, &to).map_err(|e| {
                FetchError::io("(model folder)", &to, format!("copying {}", from.display()), e)
            })?;
        }
    }
    Ok(())
}

/// Reads the `FETCHED.json` record of a model folder, if there is one.
pub fn read_record(path: &Path) -> Option<FetchedRecord> {
    serde_json::from_slice(&std::fs::read(path).ok()?).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn planned(sha256: Option<&str>, size: Option<u64>) -> PlannedFile {
        PlannedFile {
            path: "m.onnx".into(),
            dest: "m.onnx".into(),
            expected: Expected {
                sha256: sha256.map(str::to_string),
                md5: None,
                size,
                source: "catalog m@main".into(),
            },
        }
    }

    #[test]
    fn the_catalog_and_the_hub_must_agree() {
        let a = "a".repeat(64);
        let b = "b".repeat(64);
        let hub = RemoteFile {
            sha256: Some(b.clone()),
            size: Some(5),
            ..Default::default()
        };
        let e = expectation(&planned(Some(&a), None), &hub).unwrap_err();
        assert_eq!(e.code(), "checksum_mismatch");
        assert!(e.to_string().contains("m.onnx"), "{e}");
        let e = expectation(&planned(None, Some(6)), &hub).unwrap_err();
        assert!(e.to_string().contains("size"), "{e}");
        let (x, against) = expectation(&planned(None, None), &hub).unwrap();
        assert_eq!(x.sha256, Some(b));
        assert_eq!(x.size, Some(5));
        assert!(against.contains("X-Linked-Etag"), "{against}");
        let e = expectation(&planned(None, None), &RemoteFile::default()).unwrap_err();
        assert_eq!(e.code(), "unverifiable");
    }

    #[test]
    fn folder_install_keeps_other_files_and_swaps_whole() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("xtts_v2");
        std::fs::create_dir_all(target.join("embeddings")).unwrap();
        std::fs::write(target.join("README.md"), b"readme").unwrap();
        std::fs::write(target.join("gpt.onnx"), b"old").unwrap();
        let staging = dir.path().join(".fetch/m");
        let files = staging.join("files");
        std::fs::create_dir_all(files.join("embeddings")).unwrap();
        std::fs::write(files.join("gpt.onnx"), b"new").unwrap();
        std::fs::write(files.join("embeddings/t.npy"), b"t").unwrap();
        install_folder(&staging, &files, &target).unwrap();
        assert_eq!(std::fs::read(target.join("gpt.onnx")).unwrap(), b"new");
        assert_eq!(std::fs::read(target.join("README.md")).unwrap(), b"readme");
        assert_eq!(std::fs::read(target.join("embeddings/t.npy")).unwrap(), b"t");
        assert!(!files.exists());
        assert!(!staging.join("old").exists());
    }
}
