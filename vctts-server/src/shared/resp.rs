//! A small Redis client: RESP2 over TCP, enough for the shared limiter (one
//! `EVALSHA`/`EVAL` round trip per decision, `PING`, `AUTH`, `SELECT`).
//!
//! It is written here rather than taken from a crate because the limiter
//! needs four commands and a hard deadline on each; the full clients pull in
//! far more code than that on a machine where every crate is compiled.
//!
//! Invariants:
//! - a connection that failed in any way (I/O, a protocol error, a deadline)
//!   is dropped, never reused, so a reply can never be read by the wrong
//!   request; the next use of its slot reconnects;
//! - every round trip, connecting included, ends within the client's timeout;
//! - a kept connection that fails with an I/O error (the server restarted)
//!   is replaced and the command sent once more, within the same timeout;
//! - replies are bounded: bulk strings over 16 MiB and arrays nested deeper
//!   than 8 are protocol errors.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::sync::Mutex;

/// Largest bulk reply accepted.
const MAX_BULK: usize = 16 << 20;
/// Deepest nesting of arrays accepted.
const MAX_DEPTH: usize = 8;

/// A reply.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// `+OK`
    Status(String),
    /// `-ERR ...`
    Error(String),
    /// `:1`
    Int(i64),
    /// `$3\r\nabc`, or a nil bulk.
    Bulk(Option<Vec<u8>>),
    /// `*2 ...`, or a nil array.
    Array(Option<Vec<Value>>),
}

/// Why a command failed.
#[derive(Debug, thiserror::Error)]
pub enum RedisError {
    /// Connecting, reading or writing failed.
    #[error("redis I/O: {0}")]
    Io(#[from] std::io::Error),
    /// No answer within the timeout.
    #[error("redis did not answer within {0:?}")]
    Timeout(Duration),
    /// The server sent something that is not RESP.
    #[error("redis protocol: {0}")]
    Protocol(String),
    /// The server answered with an error.
    #[error("redis error: {0}")]
    Server(String),
    /// The URL is not `redis://[[user]:password@]host[:port][/db]`.
    #[error("not a redis URL: {0}")]
    Url(String),
}

/// Where and how to connect.
#[derive(Clone, PartialEq, Eq)]
pub struct RedisTarget {
    /// `host:port`.
    pub addr: String,
    /// User for `AUTH` (Redis 6 ACLs).
    pub user: Option<String>,
    /// Password for `AUTH`.
    pub password: Option<String>,
    /// Database number for `SELECT`.
    pub db: u32,
}

impl std::fmt::Debug for RedisTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisTarget")
            .field("addr", &self.addr)
            .field("user", &self.user)
            .field("password", &self.password.as_ref().map(|_| "***"))
            .field("db", &self.db)
            .finish()
    }
}

impl RedisTarget {
    /// Parses `redis://[[user]:password@]host[:port][/db]`.
    pub fn parse(url: &str) -> Result<Self, RedisError> {
        let bad =
            |why: &str| RedisError::Url(format!("{why} (expected redis://[:password@]host[:port][/db])"));
        let rest = url
            .strip_prefix("redis://")
            .ok_or_else(|| bad("no redis:// scheme"))?;
        let (auth, rest) = match rest.rfind('@') {
            Some(at) => (Some(&rest[..at]), &rest[at + 1..]),
            None => (None, rest),
        };
        let (hostport, db) = match rest.split_once('/') {
            Some((h, "")) => (h, 0),
            Some((h, db)) => (h, db.parse().map_err(|_| bad("the database is not a number"))?),
            None => (rest, 0),
        };
        if hostport.is_empty() {
            return Err(bad("no host"));
        }
        let addr = if hostport.starts_with('[') {
            if hostport.ends_with(']') {
                format!("{hostport}:6379")
            } else {
                hostport.to_string()
            }
        } else if hostport.contains(':') {
            hostport.to_string()
        } else {
            format!("{hostport}:6379")
        };
        let (user, password) = match auth {
            None => (None, None),
            Some(a) => match a.split_once(':') {
                Some((u, p)) => ((!u.is_empty()).then(|| u.to_string()), Some(p.to_string())),
                None => (None, Some(a.to_string())),
            },
        };
        Ok(Self {
            addr,
            user,
            password,
            db,
        })
    }
}

/// One connection.
#[derive(Debug)]
struct Conn {
    io: BufReader<TcpStream>,
}

impl Conn {
    async fn open(t: &RedisTarget) -> Result<Self, RedisError> {
        let stream = TcpStream::connect(&t.addr).await?;
        stream.set_nodelay(true)?;
        let mut c = Self {
            io: BufReader::new(stream),
        };
        if let Some(pw) = &t.password {
            let mut args: Vec<&[u8]> = vec![b"AUTH"];
            if let Some(u) = &t.user {
                args.push(u.as_bytes());
            }
            args.push(pw.as_bytes());
            c.call(&args).await?.ok()?;
        }
        if t.db != 0 {
            let db = t.db.to_string();
            c.call(&[b"SELECT", db.as_bytes()]).await?.ok()?;
        }
        Ok(c)
    }

    async fn call(&mut self, args: &[&[u8]]) -> Result<Value, RedisError> {
        let mut out = Vec::with_capacity(64);
        out.extend_from_slice(format!("*{}\r\n", args.len()).as_bytes());
        for a in args {
            out.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
            out.extend_from_slice(a);
            out.extend_from_slice(b"\r\n");
        }
        self.io.get_mut().write_all(&out).await?;
        read_value(&mut self.io, 0).await
    }
}

async fn read_line<R: AsyncBufReadExt + Unpin>(r: &mut R) -> Result<String, RedisError> {
    let mut line = Vec::new();
    let n = r.read_until(b'\n', &mut line).await?;
    if n == 0 {
        return Err(RedisError::Io(std::io::ErrorKind::UnexpectedEof.into()));
    }
    if !line.ends_with(b"\r\n") {
        return Err(RedisError::Protocol("a line without CRLF".into()));
    }
    line.truncate(line.len() - 2);
    String::from_utf8(line).map_err(|_| RedisError::Protocol("a line that is not UTF-8".into()))
}

fn int(s: &str) -> Result<i64, RedisError> {
    s.parse()
        .map_err(|_| RedisError::Protocol(format!("not an integer: {s:?}")))
}

/// Reads one reply.
fn read_value<'a, R: AsyncBufReadExt + Unpin + Send>(
    r: &'a mut R,
    depth: usize,
) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<Value, RedisError>> + Send + 'a>> {
    Box::pin(async move {
        let line = read_line(r).await?;
        let (kind, rest) = line.split_at(line.len().min(1));
        match kind {
            "+" => Ok(Value::Status(rest.to_string())),
            "-" => Ok(Value::Error(rest.to_string())),
            ":" => Ok(Value::Int(int(rest)?)),
            "$" => {
                let n = int(rest)?;
                if n < 0 {
                    return Ok(Value::Bulk(None));
                }
                let n = n as usize;
                if n > MAX_BULK {
                    return Err(RedisError::Protocol(format!("a bulk reply of {n} bytes")));
                }
                let mut buf = vec![0u8; n + 2];
                r.read_exact(&mut buf).await?;
                if !buf.ends_with(b"\r\n") {
                    return Err(RedisError::Protocol("a bulk reply without CRLF".into()));
                }
                buf.truncate(n);
                Ok(Value::Bulk(Some(buf)))
            }
            "*" => {
                let n = int(rest)?;
                if n < 0 {
                    return Ok(Value::Array(None));
                }
                if depth >= MAX_DEPTH || n as usize > MAX_BULK {
                    return Err(RedisError::Protocol(
                        "an array nested too deep or too long".into(),
                    ));
                }
                let mut items = Vec::with_capacity((n as usize).min(1024));
                for _ in 0..n {
                    items.push(read_value(r, depth + 1).await?);
                }
                Ok(Value::Array(Some(items)))
            }
            _ => Err(RedisError::Protocol(format!("unknown reply type in {line:?}"))),
        }
    })
}

impl Value {
    /// The reply, or the server's error as an error.
    pub fn ok(self) -> Result<Value, RedisError> {
        match self {
            Value::Error(e) => Err(RedisError::Server(e)),
            v => Ok(v),
        }
    }

    /// An integer reply (or a bulk holding one).
    pub fn as_int(&self) -> Option<i64> {
        match self {
            Value::Int(i) => Some(*i),
            Value::Bulk(Some(b)) => std::str::from_utf8(b).ok()?.parse().ok(),
            _ => None,
        }
    }
}

/// A few connections to one Redis, used in turn.
#[derive(Debug)]
pub struct RedisClient {
    target: RedisTarget,
    timeout: Duration,
    slots: Vec<Mutex<Option<Conn>>>,
    next: AtomicUsize,
}

impl RedisClient {
    /// A client of at most `connections` connections (opened on first use);
    /// each command, connecting included, must finish within `timeout`.
    pub fn new(target: RedisTarget, connections: usize, timeout: Duration) -> Self {
        Self {
            target,
            timeout,
            slots: (0..connections.max(1)).map(|_| Mutex::new(None)).collect(),
            next: AtomicUsize::new(0),
        }
    }

    /// Where it connects.
    pub fn target(&self) -> &RedisTarget {
        &self.target
    }

    /// Runs one command. A server error reply is returned as
    /// [`Value::Error`]; transport failures are errors.
    pub async fn call(&self, args: &[&[u8]]) -> Result<Value, RedisError> {
        let i = self.next.fetch_add(1, Ordering::Relaxed) % self.slots.len();
        let mut slot = self.slots[i].lock().await;
        let run = async {
            let reused = slot.is_some();
            if !reused {
                *slot = Some(Conn::open(&self.target).await?);
            }
            let Some(c) = slot.as_mut() else {
                return Err(RedisError::Protocol("no connection".into()));
            };
            match c.call(args).await {
                // A kept connection the server closed meanwhile (it
                // restarted, or dropped idle clients): once more on a new one.
                Err(RedisError::Io(_)) if reused => {
                    let c = slot.insert(Conn::open(&self.target).await?);
                    c.call(args).await
                }
                other => other,
            }
        };
        let res = match tokio::time::timeout(self.timeout, run).await {
            Ok(r) => r,
            Err(_) => Err(RedisError::Timeout(self.timeout)),
        };
        if res.is_err() {
            // Never reuse a connection in an unknown state.
            *slot = None;
        }
        res
    }

    /// `PING`: whether the server answers.
    pub async fn ping(&self) -> Result<(), RedisError> {
        match self.call(&[b"PING"]).await?.ok()? {
            Value::Status(s) if s == "PONG" => Ok(()),
            other => Err(RedisError::Protocol(format!("PING answered {other:?}"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        let t = RedisTarget::parse("redis://127.0.0.1:6380/2").unwrap();
        assert_eq!(t.addr, "127.0.0.1:6380");
        assert_eq!(t.db, 2);
        assert_eq!(t.password, None);
        let t = RedisTarget::parse("redis://:s3cret@cache").unwrap();
        assert_eq!(t.addr, "cache:6379");
        assert_eq!(t.password.as_deref(), Some("s3cret"));
        assert_eq!(t.user, None);
        assert!(!format!("{t:?}").contains("s3cret"));
        let t = RedisTarget::parse("redis://app:pw@[::1]/").unwrap();
        assert_eq!(t.addr, "[::1]:6379");
        assert_eq!(t.user.as_deref(), Some("app"));
        assert!(RedisTarget::parse("http://x").is_err());
        assert!(RedisTarget::parse("redis://x/notanumber").is_err());
        assert!(RedisTarget::parse("redis://").is_err());
    }

    async fn parse(bytes: &[u8]) -> Result<Value, RedisError> {
        let mut r = BufReader::new(bytes);
        read_value(&mut r, 0).await
    }

    #[tokio::test]
    async fn replies() {
        assert_eq!(parse(b"+PONG\r\n").await.unwrap(), Value::Status("PONG".into()));
        assert_eq!(
            parse(b"-NOSCRIPT x\r\n").await.unwrap(),
            Value::Error("NOSCRIPT x".into())
        );
        assert_eq!(parse(b":-3\r\n").await.unwrap(), Value::Int(-3));
        assert_eq!(parse(b"$-1\r\n").await.unwrap(), Value::Bulk(None));
        assert_eq!(
            parse(b"*2\r\n:1\r\n$3\r\nabc\r\n").await.unwrap(),
            Value::Array(Some(vec![Value::Int(1), Value::Bulk(Some(b"abc".to_vec()))]))
        );
        assert!(parse(b"$3\r\nabcd\r\n").await.is_err());
        assert!(parse(b"?\r\n").await.is_err());
        assert!(parse(b":1\n").await.is_err());
        assert!(parse(b"").await.is_err());
        assert!(parse(&b"*1\r\n".repeat(20)).await.is_err());
    }
}
