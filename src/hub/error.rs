//! What can go wrong while fetching a model, each case naming the file (or
//! model) it is about and saying what to do.
//!
//! Every variant has a stable [`FetchError::code`]; the server maps codes to
//! HTTP statuses, the CLI prints the message and [`FetchError::hint`].

use std::path::PathBuf;

/// A failed fetch.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    /// The name is neither in the catalog nor a Piper voice name.
    #[error("unknown model {name:?}: {known}")]
    UnknownModel {
        /// The name asked for.
        name: String,
        /// What can be fetched instead.
        known: String,
    },
    /// The model exists but does not come from a hub.
    #[error("{name} cannot be downloaded: {how}")]
    NotFetchable {
        /// The catalog name.
        name: String,
        /// How to get it instead.
        how: String,
    },
    /// The catalog (built in or given) is malformed.
    #[error("model catalog {origin}: {message}")]
    Catalog {
        /// Which catalog.
        origin: String,
        /// What is wrong.
        message: String,
    },
    /// The hub has no such file at that revision (404).
    #[error("{file}: not found on the hub ({url} answered 404)")]
    NotFound {
        /// The file in the repository.
        file: String,
        /// The URL asked.
        url: String,
    },
    /// The hub refused access (401/403).
    #[error("{file}: the hub refused access ({status}) at {url}{}", token_advice(.token_sent))]
    Unauthorized {
        /// The file in the repository.
        file: String,
        /// The URL asked.
        url: String,
        /// 401 or 403.
        status: u16,
        /// Whether an HF_TOKEN was sent.
        token_sent: bool,
    },
    /// Any other HTTP failure status.
    #[error("{file}: the hub answered {status} at {url}")]
    Http {
        /// The file in the repository.
        file: String,
        /// The URL asked.
        url: String,
        /// The status code.
        status: u16,
    },
    /// The connection failed or was cut (after the retries).
    #[error(
        "{file}: network error after {attempts} attempt(s): {message}; run the command again to resume (the {done} bytes already fetched are kept)"
    )]
    Network {
        /// The file in the repository.
        file: String,
        /// What the transport said.
        message: String,
        /// Attempts made.
        attempts: u32,
        /// Bytes kept in the partial file.
        done: u64,
    },
    /// A file's checksum or size is not what the catalog or the hub says.
    #[error(
        "{file}: {what} mismatch: expected {expected}, got {actual} ({source_of_truth}); the download was discarded and nothing was installed"
    )]
    Checksum {
        /// The file in the repository.
        file: String,
        /// `sha256`, `md5`, `git blob id` or `size`.
        what: String,
        /// The expected value.
        expected: String,
        /// What the bytes gave.
        actual: String,
        /// Where the expected value came from.
        source_of_truth: String,
    },
    /// No checksum is known for a file, so it cannot be verified.
    #[error(
        "{file}: no checksum to verify it against (the catalog has none and the hub sent no ETag); refusing to install an unverified file"
    )]
    Unverifiable {
        /// The file in the repository.
        file: String,
    },
    /// The disk is full.
    #[error("{file}: the disk is full while writing {}; free some space and run the command again (the download resumes)", .path.display())]
    DiskFull {
        /// The file in the repository.
        file: String,
        /// The file being written.
        path: PathBuf,
    },
    /// Another I/O failure.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
}

fn token_advice(sent: &bool) -> &'static str {
    if *sent {
        "; the HF_TOKEN sent was not accepted (check it, and that you accepted the repository's terms on the hub)"
    } else {
        "; the repository may be gated or private: set HF_TOKEN to a hub access token"
    }
}

impl FetchError {
    /// A stable, machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            FetchError::UnknownModel { .. } => "unknown_model",
            FetchError::NotFetchable { .. } => "not_fetchable",
            FetchError::Catalog { .. } => "invalid_catalog",
            FetchError::NotFound { .. } => "hub_not_found",
            FetchError::Unauthorized { .. } => "hub_unauthorized",
            FetchError::Http { .. } => "hub_error",
            FetchError::Network { .. } => "network_error",
            FetchError::Checksum { .. } => "checksum_mismatch",
            FetchError::Unverifiable { .. } => "unverifiable",
            FetchError::DiskFull { .. } => "disk_full",
            FetchError::Io { .. } => "io_error",
        }
    }

    /// What to do about it, where the message alone does not say.
    pub fn hint(&self) -> Option<&'static str> {
        match self {
            FetchError::UnknownModel { .. } => Some("`vctts models list` shows what can be fetched"),
            FetchError::NotFound { .. } => Some(
                "check the name and HF_ENDPOINT; a mirror must serve the same repositories and revisions",
            ),
            FetchError::Checksum { .. } => Some(
                "run the command again; if it fails the same way, the hub's file changed: report it, do not use the file",
            ),
            FetchError::Io { .. } => Some("check that the models folder is writable"),
            _ => None,
        }
    }

    /// I/O failure with context; a full disk becomes [`FetchError::DiskFull`].
    pub(crate) fn io(file: &str, path: &std::path::Path, context: String, source: std::io::Error) -> Self {
        if is_disk_full(&source) {
            FetchError::DiskFull {
                file: file.to_string(),
                path: path.to_path_buf(),
            }
        } else {
            FetchError::Io { context, source }
        }
    }
}

/// Whether an I/O error means "no space left on the device" (or quota).
pub fn is_disk_full(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::StorageFull | std::io::ErrorKind::QuotaExceeded
    )
}

impl From<FetchError> for vctts_core::Error {
    fn from(e: FetchError) -> Self {
        match e {
            FetchError::UnknownModel { .. } => vctts_core::Error::invalid("name", e.to_string()),
            FetchError::NotFetchable { .. } => vctts_core::Error::invalid("name", e.to_string()),
            FetchError::Io { context, source } => vctts_core::Error::io(context, source),
            other => vctts_core::Error::ModelNotInstalled(other.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn enospc_is_disk_full() {
        let e = std::io::Error::from_raw_os_error(28);
        assert!(is_disk_full(&e));
        let f = FetchError::io(
            "a.onnx",
            std::path::Path::new("x/a.onnx.part"),
            "writing".into(),
            e,
        );
        assert_eq!(f.code(), "disk_full");
        assert!(f.to_string().contains("a.onnx"), "{f}");
        assert!(!is_disk_full(&std::io::Error::from(
            std::io::ErrorKind::PermissionDenied
        )));
    }

    #[test]
    fn unauthorized_says_what_to_do() {
        let e = FetchError::Unauthorized {
            file: "m.onnx".into(),
            url: "http://h/r/resolve/main/m.onnx".into(),
            status: 401,
            token_sent: false,
        };
        assert!(e.to_string().contains("set HF_TOKEN"), "{e}");
        let e = FetchError::Unauthorized {
            file: "m.onnx".into(),
            url: "u".into(),
            status: 403,
            token_sent: true,
        };
        assert!(e.to_string().contains("not accepted"), "{e}");
    }
}
