//! Fetches running in the background, with progress anyone can read: what
//! the server's admin API starts and shows.
//!
//! Invariants: at most one running job per model name (a second start of
//! the same name returns the running job's id); a job's snapshot is always
//! consistent (one lock); finished jobs are kept (the last
//! [`MAX_FINISHED`]) so their outcome can still be read.

use super::catalog::Catalog;
use super::download::Hub;
use super::error::FetchError;
use super::fetch::{FetchEvent, FetchProgress, fetch};
use parking_lot::Mutex;
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

/// Finished jobs kept for reading.
pub const MAX_FINISHED: usize = 32;

/// A job's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum JobState {
    /// Downloading or verifying.
    Running,
    /// Installed (or already there).
    Done,
    /// Failed; see `error`.
    Failed,
}

/// One file's progress.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FileProgress {
    /// Path in the repository.
    pub file: String,
    /// Bytes on disk.
    pub done: u64,
    /// Size, when known.
    pub size: Option<u64>,
    /// Downloaded and checked.
    pub verified: bool,
}

/// The error of a failed job.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct JobError {
    /// [`FetchError::code`].
    pub code: String,
    /// The message (names the file).
    pub message: String,
}

/// What a job is doing, as the admin API shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct JobSnapshot {
    /// Job id.
    pub id: u64,
    /// Model name.
    pub name: String,
    /// State.
    pub state: JobState,
    /// Files seen so far.
    pub files: Vec<FileProgress>,
    /// Number of files of the model (once resolved).
    pub file_count: Option<usize>,
    /// Bytes on disk over all files.
    pub bytes_done: u64,
    /// Total bytes, when known.
    pub bytes_total: Option<u64>,
    /// Where the model was installed.
    pub target: Option<String>,
    /// Whether it was already installed.
    pub already_installed: bool,
    /// Last retry message, if any.
    pub last_retry: Option<String>,
    /// Why it failed.
    pub error: Option<JobError>,
}

struct Job {
    snapshot: Mutex<JobSnapshot>,
    done: tokio::sync::watch::Sender<bool>,
}

impl FetchProgress for Job {
    fn event(&self, e: FetchEvent) {
        let mut s = self.snapshot.lock();
        match e {
            FetchEvent::Planned { files, total, .. } => {
                s.file_count = Some(files);
                s.bytes_total = total;
            }
            FetchEvent::Bytes { file, done, size } => {
                match s.files.iter_mut().find(|f| f.file == file) {
                    Some(f) => {
                        f.done = done;
                        f.size = size.or(f.size);
                    }
                    None => s.files.push(FileProgress {
                        file,
                        done,
                        size,
                        verified: false,
                    }),
                }
                s.bytes_done = s.files.iter().map(|f| f.done).sum();
                if s.file_count == Some(s.files.len()) {
                    let total: Option<u64> = s.files.iter().map(|f| f.size).sum();
                    if total.is_some() {
                        s.bytes_total = total;
                    }
                }
            }
            FetchEvent::Retry {
                file, attempt, error, ..
            } => {
                s.last_retry = Some(format!("{file}: attempt {attempt} after {error}"));
            }
            FetchEvent::Verified { file, .. } => {
                if let Some(f) = s.files.iter_mut().find(|f| f.file == file) {
                    f.verified = true;
                }
            }
            FetchEvent::Verifying { .. } | FetchEvent::Installed { .. } => {}
        }
    }
}

/// The background fetches of one models folder.
#[derive(Clone)]
pub struct FetchJobs {
    catalog: Arc<Catalog>,
    hub: Hub,
    root: PathBuf,
    jobs: Arc<Mutex<BTreeMap<u64, Arc<Job>>>>,
    next: Arc<Mutex<u64>>,
}

impl std::fmt::Debug for FetchJobs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FetchJobs").field("root", &self.root).finish()
    }
}

impl FetchJobs {
    /// Jobs fetching from `hub` into the models folder `root`.
    pub fn new(catalog: Catalog, hub: Hub, root: PathBuf) -> Self {
        FetchJobs {
            catalog: Arc::new(catalog),
            hub,
            root,
            jobs: Arc::default(),
            next: Arc::new(Mutex::new(1)),
        }
    }

    /// The catalog.
    pub fn catalog(&self) -> &Catalog {
        &self.catalog
    }

    /// The models folder.
    pub fn root(&self) -> &std::path::Path {
        &self.root
    }

    /// Starts fetching `name` (must run inside a tokio runtime). The name is
    /// checked at once: an unknown or import-only model is an error here,
    /// not a failed job. Starting a name that is already running returns
    /// the running job.
    pub fn start(&self, name: &str, force: bool) -> Result<u64, FetchError> {
        match self.catalog.resolve(name)? {
            super::catalog::Resolved::Model(m) => {
                super::catalog::Plan::from_entry(m)?;
            }
            super::catalog::Resolved::Piper(_) => {}
        }
        let mut jobs = self.jobs.lock();
        if let Some((id, _)) = jobs.iter().find(|(_, j)| {
            let s = j.snapshot.lock();
            s.name == name && s.state == JobState::Running
        }) {
            return Ok(*id);
        }
        let id = {
            let mut n = self.next.lock();
            let id = *n;
            *n += 1;
            id
        };
        let job = Arc::new(Job {
            snapshot: Mutex::new(JobSnapshot {
                id,
                name: name.to_string(),
                state: JobState::Running,
                files: Vec::new(),
                file_count: None,
                bytes_done: 0,
                bytes_total: None,
                target: None,
                already_installed: false,
                last_retry: None,
                error: None,
            }),
            done: tokio::sync::watch::channel(false).0,
        });
        jobs.insert(id, job.clone());
        // Forget the oldest finished jobs.
        let finished: Vec<u64> = jobs
            .iter()
            .filter(|(_, j)| j.snapshot.lock().state != JobState::Running)
            .map(|(id, _)| *id)
            .collect();
        for old in finished.iter().take(finished.len().saturating_sub(MAX_FINISHED)) {
            jobs.remove(old);
        }
        drop(jobs);
        let me = self.clone();
        let name = name.to_string();
        tokio::spawn(async move {
            let result = fetch(&me.catalog, &me.hub, &me.root, &name, force, job.as_ref()).await;
            {
                let mut s = job.snapshot.lock();
                match result {
                    Ok(r) => {
                        s.state = JobState::Done;
                        s.target = Some(r.target.display().to_string());
                        s.already_installed = r.already_installed;
                        tracing::info!(model = %name, target = %r.target.display(), "model fetched");
                    }
                    Err(e) => {
                        tracing::warn!(model = %name, error = %e, "model fetch failed");
                        s.state = JobState::Failed;
                        s.error = Some(JobError {
                            code: e.code().to_string(),
                            message: e.to_string(),
                        });
                    }
                }
            }
            job.done.send_replace(true);
        });
        Ok(id)
    }

    /// A job's progress.
    pub fn get(&self, id: u64) -> Option<JobSnapshot> {
        self.jobs.lock().get(&id).map(|j| j.snapshot.lock().clone())
    }

    /// Every kept job, oldest first.
    pub fn list(&self) -> Vec<JobSnapshot> {
        self.jobs
            .lock()
            .values()
            .map(|j| j.snapshot.lock().clone())
            .collect()
    }

    /// Waits until job `id` has finished and returns its snapshot (`None`
    /// for an unknown id).
    pub async fn wait(&self, id: u64) -> Option<JobSnapshot> {
        let job = self.jobs.lock().get(&id).cloned()?;
        let mut rx = job.done.subscribe();
        let _ = rx.wait_for(|d| *d).await;
        let s = job.snapshot.lock().clone();
        Some(s)
    }
}
