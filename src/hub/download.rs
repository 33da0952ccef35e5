//! The HTTP side of fetching: asking the hub what a file is (size, SHA-256,
//! commit), downloading it into a `.part` file with HTTP Range resumes, and
//! checking the bytes.
//!
//! URLs are `{endpoint}/{repo}/resolve/{revision}/{path}`. Metadata comes
//! from a `HEAD` without following redirects, as the hub's own clients do: an
//! LFS file answers with a redirect carrying `X-Linked-Etag` (its SHA-256) and
//! `X-Linked-Size`; a small file answers `200` with its git blob id as the
//! `ETag`. `X-Repo-Commit` names the commit a branch resolved to.
//!
//! Invariants:
//! - a `.part` file only ever grows by bytes the server sent for the offset
//!   it was asked for (a `206` must start where the part ends; a `200`
//!   restarts the part from zero);
//! - writes go through a [`Storage`], so a full disk can be simulated;
//! - the token is sent only to the configured endpoint (redirects to another
//!   host, such as a CDN, drop the `Authorization` header).

use super::error::FetchError;
use futures::StreamExt;
use sha2::Digest;
use std::io::Write;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

/// Where the hub is and how to authenticate.
#[derive(Clone, PartialEq, Eq)]
pub struct HubConfig {
    /// Base URL, e.g. `https://huggingface.co` (no trailing slash).
    pub endpoint: String,
    /// Access token sent as `Authorization: Bearer …`.
    pub token: Option<String>,
}

impl std::fmt::Debug for HubConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HubConfig")
            .field("endpoint", &self.endpoint)
            .field("token", &self.token.as_ref().map(|_| "<set>"))
            .finish()
    }
}

/// The public hub.
pub const DEFAULT_ENDPOINT: &str = "https://huggingface.co";

impl HubConfig {
    /// From `HF_ENDPOINT` and `HF_TOKEN` (also `HUGGING_FACE_HUB_TOKEN`) as
    /// returned by `lookup`, so tests need not touch the process environment.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Self {
        let nonempty = |k: &str| lookup(k).map(|v| v.trim().to_string()).filter(|v| !v.is_empty());
        HubConfig {
            endpoint: nonempty("HF_ENDPOINT")
                .unwrap_or_else(|| DEFAULT_ENDPOINT.to_string())
                .trim_end_matches('/')
                .to_string(),
            token: nonempty("HF_TOKEN").or_else(|| nonempty("HUGGING_FACE_HUB_TOKEN")),
        }
    }

    /// From the process environment.
    pub fn from_env() -> Self {
        Self::from_lookup(|k| std::env::var(k).ok())
    }

    /// The URL of a file.
    pub fn url(&self, repo: &str, revision: &str, path: &str) -> String {
        format!("{}/{repo}/resolve/{revision}/{path}", self.endpoint)
    }
}

/// Where downloads are written: the seam that lets tests fill the disk.
pub trait Storage: Send + Sync + std::fmt::Debug {
    /// Opens `path` for appending, creating it if needed.
    fn append(&self, path: &Path) -> std::io::Result<Box<dyn Write + Send>>;
}

/// The real file system.
#[derive(Debug, Default, Clone, Copy)]
pub struct LocalDisk;

impl Storage for LocalDisk {
    fn append(&self, path: &Path) -> std::io::Result<Box<dyn Write + Send>> {
        let f = std::fs::OpenOptions::new().create(true).append(true).open(path)?;
        // Parts are synced to disk before they are verified and renamed
        // (`fetch`), off the async runtime.
        Ok(Box::new(std::io::BufWriter::with_capacity(1 << 18, f)))
    }
}

/// What the hub says about a file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RemoteFile {
    /// Size in bytes (`X-Linked-Size`, else `Content-Length`).
    pub size: Option<u64>,
    /// SHA-256 of an LFS file (`X-Linked-Etag`, or an `ETag` of 64 hex digits).
    pub sha256: Option<String>,
    /// Git blob id of a small file (an `ETag` of 40 hex digits).
    pub git_blob: Option<String>,
    /// The commit the revision resolved to (`X-Repo-Commit`).
    pub commit: Option<String>,
}

/// Progress of one download, reported as bytes arrive.
pub trait ByteProgress: Send + Sync {
    /// `done` of `size` bytes of `file` are on disk (including resumed bytes).
    fn bytes(&self, file: &str, done: u64, size: Option<u64>);
    /// An attempt failed and another one starts from `done`.
    fn retry(&self, file: &str, attempt: u32, done: u64, error: &str);
}

/// An HTTP client for one hub.
#[derive(Debug, Clone)]
pub struct Hub {
    config: HubConfig,
    /// Does not follow redirects (metadata lives on the redirect).
    meta: reqwest::Client,
    /// Follows redirects (to a CDN).
    data: reqwest::Client,
    storage: Arc<dyn Storage>,
    retries: u32,
    retry_delay: Duration,
}

fn normalize_etag(v: &str) -> String {
    v.trim()
        .trim_start_matches("W/")
        .trim_matches('"')
        .to_ascii_lowercase()
}

fn is_hex(s: &str, len: usize) -> bool {
    s.len() == len && s.bytes().all(|b| b.is_ascii_hexdigit())
}

fn header(r: &reqwest::Response, name: &str) -> Option<String> {
    r.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

impl Hub {
    /// A client for `config`, writing through `storage`; a cut download is
    /// retried `retries` times (waiting `retry_delay` between attempts).
    pub fn new(
        config: HubConfig,
        storage: Arc<dyn Storage>,
        retries: u32,
        retry_delay: Duration,
    ) -> Result<Self, FetchError> {
        let build = |redirect: reqwest::redirect::Policy| {
            reqwest::Client::builder()
                .redirect(redirect)
                .connect_timeout(Duration::from_secs(30))
                .read_timeout(Duration::from_secs(60))
                .user_agent(concat!("vctts/", env!("CARGO_PKG_VERSION")))
                .build()
                .map_err(|e| FetchError::Network {
                    file: "(client)".into(),
                    message: format!("cannot build the HTTP client: {e}"),
                    attempts: 0,
                    done: 0,
                })
        };
        Ok(Hub {
            meta: build(reqwest::redirect::Policy::none())?,
            data: build(reqwest::redirect::Policy::limited(10))?,
            config,
            storage,
            retries,
            retry_delay,
        })
    }

    /// The configuration.
    pub fn config(&self) -> &HubConfig {
        &self.config
    }

    fn authorize(&self, r: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match &self.config.token {
            Some(t) => r.bearer_auth(t),
            None => r,
        }
    }

    fn status_error(&self, file: &str, url: &str, status: reqwest::StatusCode) -> FetchError {
        match status.as_u16() {
            404 => FetchError::NotFound {
                file: file.to_string(),
                url: url.to_string(),
            },
            s @ (401 | 403) => FetchError::Unauthorized {
                file: file.to_string(),
                url: url.to_string(),
                status: s,
                token_sent: self.config.token.is_some(),
            },
            s => FetchError::Http {
                file: file.to_string(),
                url: url.to_string(),
                status: s,
            },
        }
    }

    fn network(&self, file: &str, e: impl std::fmt::Display, attempts: u32, done: u64) -> FetchError {
        FetchError::Network {
            file: file.to_string(),
            message: e.to_string(),
            attempts,
            done,
        }
    }

    /// Asks the hub what `path` at `revision` is.
    pub async fn head(&self, repo: &str, revision: &str, path: &str) -> Result<RemoteFile, FetchError> {
        let mut url = self.config.url(repo, revision, path);
        for _ in 0..4 {
            let r = self
                .authorize(self.meta.head(&url))
                .send()
                .await
                .map_err(|e| self.network(path, e, 1, 0))?;
            let status = r.status();
            let linked = header(&r, "x-linked-etag").map(|v| normalize_etag(&v));
            if status.is_redirection() && linked.is_none() {
                // A same-hub redirect (a renamed repository): follow it here,
                // keeping the metadata semantics.
                match header(&r, "location") {
                    Some(loc) if loc.starts_with('/') => {
                        url = format!("{}{loc}", self.config.endpoint);
                        continue;
                    }
                    _ => {}
                }
            }
            if !(status.is_success() || status.is_redirection()) {
                return Err(self.status_error(path, &url, status));
            }
            let etag = header(&r, "etag").map(|v| normalize_etag(&v));
            let mut out = RemoteFile {
                size: header(&r, "x-linked-size")
                    .or_else(|| {
                        (!status.is_redirection())
                            .then(|| header(&r, "content-length"))
                            .flatten()
                    })
                    .and_then(|v| v.trim().parse().ok()),
                commit: header(&r, "x-repo-commit"),
                ..RemoteFile::default()
            };
            match linked.or(etag) {
                Some(t) if is_hex(&t, 64) => out.sha256 = Some(t),
                Some(t) if is_hex(&t, 40) => out.git_blob = Some(t),
                _ => {}
            }
            return Ok(out);
        }
        Err(self.network(path, format!("too many redirects from {url}"), 1, 0))
    }

    /// Downloads a small file into memory (an index such as `voices.json`),
    /// refusing more than `limit` bytes.
    pub async fn get_small(
        &self,
        repo: &str,
        revision: &str,
        path: &str,
        limit: u64,
    ) -> Result<Vec<u8>, FetchError> {
        let url = self.config.url(repo, revision, path);
        let r = self
            .authorize(self.data.get(&url))
            .send()
            .await
            .map_err(|e| self.network(path, e, 1, 0))?;
        if !r.status().is_success() {
            return Err(self.status_error(path, &url, r.status()));
        }
        let mut out = Vec::new();
        let mut body = r.bytes_stream();
        while let Some(chunk) = body.next().await {
            let chunk = chunk.map_err(|e| self.network(path, e, 1, out.len() as u64))?;
            out.extend_from_slice(&chunk);
            if out.len() as u64 > limit {
                return Err(self.network(path, format!("larger than {limit} bytes"), 1, 0));
            }
        }
        Ok(out)
    }

    /// Downloads `path` into `part`, resuming from what `part` already holds.
    /// `size` (when known) lets a complete part skip the request. Cut
    /// connections are retried with a `Range` request from where the part
    /// ends; HTTP errors are not retried.
    pub async fn download(
        &self,
        repo: &str,
        revision: &str,
        path: &str,
        part: &Path,
        size: Option<u64>,
        progress: &dyn ByteProgress,
    ) -> Result<(), FetchError> {
        let url = self.config.url(repo, revision, path);
        let io = |context: &str, e: std::io::Error| {
            FetchError::io(path, part, format!("{context} {}", part.display()), e)
        };
        let mut attempt: u32 = 0;
        loop {
            let mut have = match std::fs::metadata(part) {
                Ok(m) => m.len(),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => 0,
                Err(e) => return Err(io("reading", e)),
            };
            if let Some(s) = size {
                if have == s {
                    progress.bytes(path, have, size);
                    return Ok(());
                }
                if have > s {
                    truncate(part).map_err(|e| io("truncating", e))?;
                    have = 0;
                }
            }
            let mut req = self.authorize(self.data.get(&url));
            if have > 0 {
                req = req.header(reqwest::header::RANGE, format!("bytes={have}-"));
            }
            let failure = match req.send().await {
                Ok(r) => match self.receive(r, path, &url, part, have, size, progress).await {
                    Ok(()) => return Ok(()),
                    Err(Received::Fatal(e)) => return Err(e),
                    Err(Received::Cut(msg)) => msg,
                },
                Err(e) => e.to_string(),
            };
            attempt += 1;
            let done = std::fs::metadata(part).map(|m| m.len()).unwrap_or(0);
            if attempt > self.retries {
                return Err(self.network(path, failure, attempt, done));
            }
            progress.retry(path, attempt, done, &failure);
            tracing::warn!(file = path, attempt, done, error = %failure, "download cut; resuming");
            if !self.retry_delay.is_zero() {
                tokio::time::sleep(self.retry_delay * attempt).await;
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    async fn receive(
        &self,
        r: reqwest::Response,
        path: &str,
        url: &str,
        part: &Path,
        have: u64,
        size: Option<u64>,
        progress: &dyn ByteProgress,
    ) -> Result<(), Received> {
        let io = |context: &str, e: std::io::Error| {
            Received::Fatal(FetchError::io(
                path,
                part,
                format!("{context} {}", part.display()),
                e,
            ))
        };
        let status = r.status().as_u16();
        let mut done = have;
        match status {
            200 => {
                if have > 0 {
                    // The server ignored the Range: start over.
                    truncate(part).map_err(|e| io("truncating", e))?;
                    done = 0;
                }
            }
            206 => {
                let start = header(&r, "content-range")
                    .and_then(|v| v.strip_prefix("bytes ").map(str::to_string))
                    .and_then(|v| v.split('-').next().and_then(|s| s.trim().parse::<u64>().ok()));
                if start != Some(have) {
                    truncate(part).map_err(|e| io("truncating", e))?;
                    return Err(Received::Cut(format!(
                        "the server resumed at {start:?}, not at byte {have}; starting over"
                    )));
                }
            }
            416 => {
                // The part is at least as long as the file: start over.
                truncate(part).map_err(|e| io("truncating", e))?;
                return Err(Received::Cut("range not satisfiable; starting over".into()));
            }
            s if s >= 500 => return Err(Received::Cut(format!("the hub answered {s}"))),
            _ => {
                return Err(Received::Fatal(self.status_error(path, url, r.status())));
            }
        }
        let total = size.or_else(|| r.content_length().map(|l| l + done));
        let mut out = self.storage.append(part).map_err(|e| io("opening", e))?;
        let mut body = r.bytes_stream();
        progress.bytes(path, done, total);
        while let Some(chunk) = body.next().await {
            let chunk = match chunk {
                Ok(c) => c,
                Err(e) => {
                    out.flush().map_err(|e| io("writing", e))?;
                    return Err(Received::Cut(describe(&e)));
                }
            };
            out.write_all(&chunk).map_err(|e| io("writing", e))?;
            done += chunk.len() as u64;
            progress.bytes(path, done, total);
        }
        out.flush().map_err(|e| io("writing", e))?;
        if let Some(t) = total {
            if done < t {
                return Err(Received::Cut(format!(
                    "the connection closed at byte {done} of {t}"
                )));
            }
        }
        Ok(())
    }
}

enum Received {
    /// Retrying may help.
    Cut(String),
    /// It will not.
    Fatal(FetchError),
}

fn describe(e: &reqwest::Error) -> String {
    let mut s = e.to_string();
    let mut src = std::error::Error::source(e);
    while let Some(inner) = src {
        s.push_str(": ");
        s.push_str(&inner.to_string());
        src = inner.source();
    }
    s
}

fn truncate(path: &Path) -> std::io::Result<()> {
    match std::fs::OpenOptions::new().write(true).truncate(true).open(path) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

/// The digests of a file on disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Digests {
    /// Bytes.
    pub size: u64,
    /// SHA-256 hex.
    pub sha256: String,
    /// MD5 hex.
    pub md5: String,
    /// Git blob id (SHA-1 of `blob <size>\0` + content), hex.
    pub git_blob: String,
}

/// Reads `path` once and computes every digest (blocking: call it off the
/// async runtime for big files).
pub fn digests(path: &Path) -> std::io::Result<Digests> {
    use std::io::Read;
    let size = std::fs::metadata(path)?.len();
    let mut f = std::fs::File::open(path)?;
    let mut sha = sha2::Sha256::new();
    let mut md5 = md5::Md5::new();
    let mut git = sha1::Sha1::new();
    git.update(format!("blob {size}\0").as_bytes());
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        sha.update(&buf[..n]);
        md5.update(&buf[..n]);
        git.update(&buf[..n]);
    }
    Ok(Digests {
        size,
        sha256: hex::encode(sha.finalize()),
        md5: hex::encode(md5.finalize()),
        git_blob: hex::encode(git.finalize()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_reads_the_hub_variables() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |k: &str| pairs.iter().find(|(n, _)| *n == k).map(|(_, v)| v.to_string())
        };
        let c = HubConfig::from_lookup(env(&[]));
        assert_eq!(c.endpoint, "https://huggingface.co");
        assert_eq!(c.token, None);
        let c = HubConfig::from_lookup(env(&[
            ("HF_ENDPOINT", "http://mirror:8080/"),
            ("HF_TOKEN", " t "),
        ]));
        assert_eq!(c.endpoint, "http://mirror:8080");
        assert_eq!(c.token.as_deref(), Some("t"));
        assert_eq!(
            c.url("o/r", "main", "a/b.onnx"),
            "http://mirror:8080/o/r/resolve/main/a/b.onnx"
        );
        assert!(!format!("{c:?}").contains(" t "), "the token is not printed");
        let c = HubConfig::from_lookup(env(&[("HUGGING_FACE_HUB_TOKEN", "x"), ("HF_ENDPOINT", "")]));
        assert_eq!(c.token.as_deref(), Some("x"));
        assert_eq!(c.endpoint, DEFAULT_ENDPOINT);
    }

    #[test]
    fn etags_are_normalised() {
        assert_eq!(normalize_etag("W/\"ABC\""), "abc");
        assert_eq!(normalize_etag("\"abc\""), "abc");
    }

    #[test]
    fn digests_match_known_values() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("hello");
        std::fs::write(&p, b"hello\n").unwrap();
        let d = digests(&p).unwrap();
        assert_eq!(d.size, 6);
        assert_eq!(
            d.sha256,
            "5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03"
        );
        assert_eq!(d.md5, "b1946ac92492d2347c6235b4d2611184");
        // `git hash-object` of the same content.
        assert_eq!(d.git_blob, "ce013625030ba8dba906f756967f9e9ca394464a");
    }
}
