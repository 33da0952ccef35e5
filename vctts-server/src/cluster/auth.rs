//! The shared cluster token: checked on every cluster endpoint of both roles,
//! sent on every cluster call.
//!
//! Invariants: the control plane is never anonymous — with no token every
//! cluster call is refused (a gateway without a configured token generates
//! one with [`load_or_create`]; a worker refuses to start without one;
//! standalone servers serve no control plane at all); the check runs before
//! any body is read; the comparison takes the same time for every token of a
//! given length; a refused call is answered `401 unauthorized` and logged with
//! the caller's address and path (never the token).

use crate::error::ApiError;
use axum::extract::{Request, State};
use axum::http::HeaderMap;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::path::Path;
use std::sync::Arc;
use vctts_core::{Error, Result};

/// Shortest accepted token.
pub const MIN_TOKEN_LEN: usize = 16;

/// The configured token, if any.
#[derive(Clone, Default)]
pub struct ClusterToken(Option<Arc<str>>);

impl std::fmt::Debug for ClusterToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_some() {
            "ClusterToken(set)"
        } else {
            "ClusterToken(none)"
        })
    }
}

impl ClusterToken {
    /// A token (or none).
    pub fn new(token: Option<String>) -> Self {
        Self(token.filter(|t| !t.is_empty()).map(Arc::from))
    }

    /// The token to send, if any.
    pub fn value(&self) -> Option<&str> {
        self.0.as_deref()
    }

    /// Whether the headers carry the right token (never when none is set:
    /// the control plane is never anonymous).
    pub fn accepts(&self, headers: &HeaderMap) -> bool {
        let Some(expected) = &self.0 else {
            return false;
        };
        let given = headers
            .get(super::proto::TOKEN_HEADER)
            .and_then(|v| v.to_str().ok())
            .or_else(|| {
                headers
                    .get(axum::http::header::AUTHORIZATION)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.strip_prefix("Bearer "))
            });
        match given {
            Some(g) => constant_time_eq(g.as_bytes(), expected.as_bytes()),
            None => false,
        }
    }
}

/// A fresh random token (32 bytes from the OS generator, hex).
pub fn generate() -> String {
    use rand::RngCore;
    let mut raw = [0u8; 32];
    rand::rng().fill_bytes(&mut raw);
    hex::encode(raw)
}

/// Reads a token file: its first line, trimmed; at least [`MIN_TOKEN_LEN`]
/// characters.
pub fn read_token_file(path: &Path) -> Result<String> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        Error::Config(format!(
            "cannot read the cluster token file {}: {e}",
            path.display()
        ))
    })?;
    let token = text.lines().next().unwrap_or("").trim().to_string();
    if token.len() < MIN_TOKEN_LEN {
        return Err(Error::Config(format!(
            "the cluster token file {} holds no token of at least {MIN_TOKEN_LEN} characters; \
             delete it to have the gateway generate a new one",
            path.display()
        )));
    }
    Ok(token)
}

/// The token stored at `path`, or a fresh one written there (mode 0600,
/// synced) when the file does not exist. The flag says whether it was created.
pub fn load_or_create(path: &Path) -> Result<(String, bool)> {
    if path.exists() {
        return Ok((read_token_file(path)?, false));
    }
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| Error::io(format!("creating {}", dir.display()), e))?;
    }
    let token = generate();
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let write = |opts: &std::fs::OpenOptions| -> std::io::Result<()> {
        use std::io::Write;
        let mut f = opts.open(path)?;
        f.write_all(format!("{token}\n").as_bytes())?;
        f.sync_all()
    };
    write(&opts).map_err(|e| Error::io(format!("writing the cluster token to {}", path.display()), e))?;
    Ok((token, true))
}

/// Equality whose time depends only on the lengths.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Middleware refusing cluster calls without the right token.
pub async fn require_token(State(token): State<ClusterToken>, req: Request, next: Next) -> Response {
    if token.accepts(req.headers()) {
        return next.run(req).await;
    }
    refuse(&req)
}

/// The answer to a call without the right token (logged, never the token).
pub fn refuse(req: &Request) -> Response {
    let peer = crate::http::context::client_addr(req.extensions())
        .map(|a| a.to_string())
        .unwrap_or_else(|| "unknown".into());
    let had_token = req.headers().contains_key(super::proto::TOKEN_HEADER)
        || req.headers().contains_key(axum::http::header::AUTHORIZATION);
    tracing::warn!(
        client_ip = %peer,
        endpoint = %req.uri().path(),
        token_present = had_token,
        "refused a cluster call with a missing or wrong token"
    );
    let why = if had_token {
        "wrong cluster token"
    } else {
        "missing cluster token"
    };
    ApiError::from(Error::Unauthorized(why.into())).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn token_checks() {
        let t = ClusterToken::new(Some("0123456789abcdef".into()));
        let mut h = HeaderMap::new();
        assert!(!t.accepts(&h));
        h.insert("x-cluster-token", HeaderValue::from_static("0123456789abcdeX"));
        assert!(!t.accepts(&h));
        h.insert("x-cluster-token", HeaderValue::from_static("0123456789abcdef"));
        assert!(t.accepts(&h));
        let mut h = HeaderMap::new();
        h.insert(
            "authorization",
            HeaderValue::from_static("Bearer 0123456789abcdef"),
        );
        assert!(t.accepts(&h));
        // No token: nothing is accepted (never anonymous).
        assert!(!ClusterToken::new(None).accepts(&HeaderMap::new()));
        assert!(!ClusterToken::new(Some(String::new())).accepts(&HeaderMap::new()));
        let mut h = HeaderMap::new();
        h.insert("x-cluster-token", HeaderValue::from_static(""));
        assert!(!ClusterToken::new(None).accepts(&h));
        assert!(!constant_time_eq(b"a", b"ab"));
    }

    #[test]
    fn token_file_is_created_private_and_reused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("data/cluster.token");
        let (t, created) = load_or_create(&path).unwrap();
        assert!(created);
        assert_eq!(t.len(), 64);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600);
        }
        let (again, created) = load_or_create(&path).unwrap();
        assert_eq!((again.as_str(), created), (t.as_str(), false));
        assert_eq!(read_token_file(&path).unwrap(), t);
        std::fs::write(&path, "short\n").unwrap();
        let e = load_or_create(&path).unwrap_err().to_string();
        assert!(e.contains("cluster.token") && e.contains("delete it"), "{e}");
        assert!(read_token_file(&dir.path().join("none")).is_err());
        assert_ne!(generate(), generate());
    }
}
