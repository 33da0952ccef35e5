//! Fetching models from a Hugging Face compatible hub into a models folder
//! (`vctts models fetch`, the admin API's model fetches).
//!
//! - [`catalog`]: which models exist (`models/catalog.json`, compiled in),
//!   Piper voices by name, and the plan of files for a name;
//! - [`download`]: the hub client: metadata (`HEAD`), resumable downloads
//!   with HTTP Range into `.part` files, digests; `HF_ENDPOINT`/`HF_TOKEN`;
//! - [`fetch`]: one model end to end: download, verify, install atomically;
//! - [`jobs`]: fetches in the background with readable progress.
//!
//! Invariants:
//! - nothing is installed before every file of the model has been checked
//!   against a checksum (the catalog's SHA-256, the Piper index's MD5 and
//!   size, or the hub's own SHA-256 / git blob id), and a model never
//!   appears half-installed: partial downloads live only in the staging
//!   folder `<models root>/.fetch/`;
//! - this is the only module of vctts that does network I/O outside the
//!   server; `vctts-core` does none.

pub mod catalog;
pub mod download;
mod error;
pub mod fetch;
pub mod jobs;

pub use catalog::{Catalog, ModelEntry, Plan};
pub use download::{DEFAULT_ENDPOINT, Hub, HubConfig, LocalDisk, Storage};
pub use error::{FetchError, is_disk_full};
pub use fetch::{FetchEvent, FetchProgress, FetchReport, NoProgress, fetch};
pub use jobs::{FetchJobs, JobSnapshot, JobState};

use std::sync::Arc;
use std::time::Duration;

/// A hub client with the defaults for interactive use: the real disk, three
/// retries of a cut download, a growing pause between them.
pub fn default_hub(config: HubConfig) -> Result<Hub, FetchError> {
    Hub::new(config, Arc::new(LocalDisk), 3, Duration::from_secs(2))
}

/// How a catalog model stands in a models folder, for listings.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct CatalogStatus {
    /// The entry.
    pub model: ModelEntry,
    /// Every file is in place.
    pub installed: bool,
    /// The `FETCHED.json` record, when it was fetched by vctts.
    pub record: Option<fetch::FetchedRecord>,
}

/// The catalog's named models and whether each is installed under `root`.
pub fn status(catalog: &Catalog, root: &std::path::Path) -> Vec<CatalogStatus> {
    catalog
        .models
        .iter()
        .map(|m| {
            let target = root.join(&m.target);
            let installed = match Plan::from_entry(m) {
                Ok(plan) => plan.is_installed(root),
                // Imported models: the folder exists and is not empty.
                Err(_) => std::fs::read_dir(&target).is_ok_and(|mut d| d.next().is_some()),
            };
            CatalogStatus {
                model: m.clone(),
                installed,
                record: fetch::read_record(&target.join(fetch::RECORD)),
            }
        })
        .collect()
}
