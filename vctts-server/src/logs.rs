//! Logging of the server (SPEC §5.2): structured records by category, JSON
//! lines in rotated files, a human console format, run-time level changes,
//! an in-memory ring buffer for `GET /admin/api/logs` and a broadcast for the
//! live tail.
//!
//! Categories come from the `tracing` target: `access` (every request, from
//! the request-context middleware), `audit` (admin actions), `metrics`
//! (periodic performance records); any other record of level WARN or ERROR is
//! `error`, and the rest is `app`. Each category has its own file in the
//! folder of `logging.file` (`access.log`, `error.log`, `audit.log`,
//! `metrics.log`; `app` goes to `logging.file` itself), rotated when a write
//! would pass `max_size`, keeping `backup_count` older files (`x.log.1` is
//! the newest backup).
//!
//! A record is `{timestamp, level, category, target, request_id, client_ip,
//! endpoint, method, status_code, duration_ms, message, extra}` with
//! `timestamp` in ISO 8601 (UTC) and `level` one of DEBUG, INFO, WARNING,
//! ERROR (TRACE shows as DEBUG).
//!
//! Invariants:
//! - secrets never leave this module: fields whose name says secret
//!   (`password`, `token`, `secret`, `api_key`, `authorization`, `cookie`, …)
//!   are replaced by `[REDACTED]`, `Bearer <x>` and `key=value` forms of those
//!   names are masked in text, and every registered secret value
//!   ([`LogHub::add_secret`]) is replaced wherever it appears — before the
//!   record reaches the console, a file, the ring buffer or the tail;
//! - `access`, `audit` and `metrics` records are kept at any level setting
//!   (the level applies to the rest);
//! - a failing log file never fails a request: the error is reported once on
//!   stderr and the record still reaches the other outputs;
//! - no request writes to a file or the console: one writer thread does,
//!   fed by a bounded queue ([`WRITE_QUEUE`]); when it is full a record skips
//!   the files and the console (ring buffer and tail still get it), is
//!   counted ([`LogHub::dropped`]) and the skip is reported on stderr;
//!   [`flush`] waits for the queue to drain (before the process exits);
//! - health, readiness and metrics requests are logged at DEBUG (not INFO),
//!   so probes and scrapers do not fill the access log.

use crate::config::LoggingSection;
use parking_lot::{Mutex, RwLock};
use serde::{Deserialize, Serialize};
use std::collections::VecDeque;
use std::fs::{File, OpenOptions};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::SystemTime;
use tokio::sync::broadcast;
use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::layer::{Context, SubscriberExt as _};
use tracing_subscriber::util::SubscriberInitExt as _;
use tracing_subscriber::{EnvFilter, Layer, reload};
use vctts_core::{Error, Result};

/// Records kept in memory for the logs API.
pub const RING_CAPACITY: usize = 5000; // benches/stress.rs fills this many records before its RSS baseline
/// Most records one query returns.
pub const MAX_QUERY_LIMIT: usize = 1000;
/// The replacement of a secret.
pub const REDACTED: &str = "[REDACTED]";
/// Categories with a file of their own.
pub const CATEGORIES: [&str; 5] = ["access", "error", "audit", "metrics", "app"];

// ------------------------------------------------------------------ time

/// `2025-06-15T14:26:40.123Z`: RFC 3339 in UTC with milliseconds.
const RFC3339_MILLIS_UTC: &[time::format_description::BorrowedFormatItem<'static>] =
    time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z");

/// ISO 8601 UTC with milliseconds: `2025-06-15T14:26:40.123Z` (times before
/// 1970 show as the epoch).
pub fn iso8601(t: SystemTime) -> String {
    let t = t.max(SystemTime::UNIX_EPOCH);
    time::OffsetDateTime::from(t)
        .format(RFC3339_MILLIS_UTC)
        .unwrap_or_else(|_| "1970-01-01T00:00:00.000Z".to_string())
}

/// Parses an RFC 3339 time, `YYYY-MM-DDTHH:MM:SS[.fff](Z|±HH:MM)`; a space
/// may stand for the `T`, and a time without an offset is UTC. Times before
/// 1970 are refused.
pub fn parse_iso8601(s: &str) -> Option<SystemTime> {
    use time::format_description::well_known::Rfc3339;
    let s = s.trim();
    let mut text = s.to_string();
    if text.as_bytes().get(10) == Some(&b' ') {
        text.replace_range(10..11, "T");
    }
    let parsed = time::OffsetDateTime::parse(&text, &Rfc3339).or_else(|e| {
        // Without an offset (`…:SS` or `…:SS.fff` at the end) the time is UTC.
        let bare = text
            .get(19..)
            .is_some_and(|r| r.bytes().all(|c| c == b'.' || c.is_ascii_digit()));
        if bare {
            time::OffsetDateTime::parse(&format!("{text}Z"), &Rfc3339)
        } else {
            Err(e)
        }
    });
    let t = parsed.ok()?;
    (t.unix_timestamp() >= 0).then(|| SystemTime::from(t))
}

// ------------------------------------------------------------- redaction

const SECRET_WORDS: [&str; 9] = [
    "password",
    "passwd",
    "secret",
    "token",
    "api_key",
    "apikey",
    "authorization",
    "cookie",
    "session",
];

/// Whether a field of this name holds a secret.
pub fn is_secret_field(name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    SECRET_WORDS.iter().any(|w| n.contains(w)) || n == "key" || n.ends_with("_key") || n.ends_with("-key")
}

/// Masks `Bearer <x>` and `name=value` / `name: value` / `"name":"value"`
/// forms of secret names in free text.
pub fn redact_text(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let lower = text.to_ascii_lowercase();
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < text.len() {
        // "bearer " followed by a token
        if lower[i..].starts_with("bearer ") {
            out.push_str(&text[i..i + 7]);
            i += 7;
            let end = token_end(bytes, i);
            if end > i {
                out.push_str(REDACTED);
                i = end;
            }
            continue;
        }
        let word = SECRET_WORDS
            .iter()
            .copied()
            .chain(["key"])
            .find(|w| lower[i..].starts_with(w) && (i == 0 || !bytes[i - 1].is_ascii_alphanumeric()));
        if let Some(w) = word {
            // Extend over the rest of the identifier (password_hash, api_key_x, ...).
            let mut j = i + w.len();
            while j < bytes.len()
                && (bytes[j].is_ascii_alphanumeric() || bytes[j] == b'_' || bytes[j] == b'-')
            {
                j += 1;
            }
            let mut k = j;
            if k < bytes.len() && bytes[k] == b'"' {
                k += 1;
            }
            while k < bytes.len() && bytes[k] == b' ' {
                k += 1;
            }
            if k < bytes.len() && (bytes[k] == b'=' || bytes[k] == b':') {
                k += 1;
                while k < bytes.len() && bytes[k] == b' ' {
                    k += 1;
                }
                let quoted = k < bytes.len() && (bytes[k] == b'"' || bytes[k] == b'\'');
                let mut start = if quoted { k + 1 } else { k };
                if lower[start..].starts_with("bearer ") {
                    start += 7;
                }
                let end = if quoted {
                    let q = bytes[k];
                    (start..bytes.len())
                        .find(|&x| bytes[x] == q)
                        .unwrap_or(bytes.len())
                } else {
                    token_end(bytes, start)
                };
                if end > start {
                    out.push_str(&text[i..start]);
                    out.push_str(REDACTED);
                    i = end;
                    continue;
                }
            }
            out.push_str(&text[i..j]);
            i = j;
            continue;
        }
        let ch = text[i..].chars().next().unwrap_or(' ');
        out.push(ch);
        i += ch.len_utf8();
    }
    out
}

fn token_end(bytes: &[u8], start: usize) -> usize {
    let mut e = start;
    while e < bytes.len() && !matches!(bytes[e], b' ' | b',' | b';' | b'"' | b'\'' | b'}' | b'&' | b'\n') {
        e += 1;
    }
    e
}

// ---------------------------------------------------------------- record

/// One log record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LogRecord {
    /// Sequence number in this process (for the live tail's resume).
    pub seq: u64,
    /// ISO 8601 UTC.
    pub timestamp: String,
    /// DEBUG, INFO, WARNING or ERROR.
    pub level: String,
    /// access, error, audit, metrics or app.
    pub category: String,
    /// The `tracing` target.
    pub target: String,
    /// The request id, when the record belongs to a request.
    pub request_id: Option<String>,
    /// The client address.
    pub client_ip: Option<String>,
    /// The path.
    pub endpoint: Option<String>,
    /// The HTTP method.
    pub method: Option<String>,
    /// The answer's status.
    pub status_code: Option<u16>,
    /// How long the request took.
    pub duration_ms: Option<f64>,
    /// The sentence.
    pub message: String,
    /// Every other field.
    pub extra: serde_json::Map<String, serde_json::Value>,
}

fn level_name(l: &Level) -> &'static str {
    match *l {
        Level::ERROR => "ERROR",
        Level::WARN => "WARNING",
        Level::INFO => "INFO",
        _ => "DEBUG",
    }
}

fn level_rank(name: &str) -> u8 {
    match name.to_ascii_uppercase().as_str() {
        "TRACE" | "DEBUG" => 0,
        "INFO" => 1,
        "WARNING" | "WARN" => 2,
        _ => 3,
    }
}

/// The category of a record.
pub fn category_of(target: &str, level: &Level) -> &'static str {
    match target {
        "access" => "access",
        "audit" => "audit",
        "metrics" => "metrics",
        _ if *level <= Level::WARN => "error",
        _ => "app",
    }
}

// ------------------------------------------------------------- rotation

/// A file that rotates at a size, keeping `backups` older files.
#[derive(Debug)]
pub struct RotatingFile {
    path: PathBuf,
    max_size: u64,
    backups: u32,
    file: Option<File>,
    size: u64,
}

impl RotatingFile {
    /// Opens (appends to) `path`, creating its folder.
    pub fn open(path: &Path, max_size: u64, backups: u32) -> Result<Self> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| Error::io(format!("creating {}", dir.display()), e))?;
        }
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(|e| Error::io(format!("opening {}", path.display()), e))?;
        let size = file.metadata().map(|m| m.len()).unwrap_or(0);
        Ok(Self {
            path: path.to_path_buf(),
            max_size: max_size.max(1),
            backups,
            file: Some(file),
            size,
        })
    }

    fn backup(&self, n: u32) -> PathBuf {
        let mut p = self.path.clone().into_os_string();
        p.push(format!(".{n}"));
        PathBuf::from(p)
    }

    fn rotate(&mut self) -> std::io::Result<()> {
        self.file = None;
        if self.backups == 0 {
            std::fs::remove_file(&self.path).or_else(|e| match e.kind() {
                std::io::ErrorKind::NotFound => Ok(()),
                _ => Err(e),
            })?;
        } else {
            let _ = std::fs::remove_file(self.backup(self.backups));
            for n in (1..self.backups).rev() {
                let from = self.backup(n);
                if from.exists() {
                    std::fs::rename(&from, self.backup(n + 1))?;
                }
            }
            if self.path.exists() {
                std::fs::rename(&self.path, self.backup(1))?;
            }
        }
        self.file = Some(OpenOptions::new().create(true).append(true).open(&self.path)?);
        self.size = 0;
        Ok(())
    }

    /// Writes one line (a newline is added), rotating first when it would
    /// pass the size.
    pub fn write_line(&mut self, line: &str) -> std::io::Result<()> {
        let len = line.len() as u64 + 1;
        if self.size > 0 && self.size + len > self.max_size {
            self.rotate()?;
        }
        let file = match &mut self.file {
            Some(f) => f,
            None => {
                self.file = Some(OpenOptions::new().create(true).append(true).open(&self.path)?);
                self.file.as_mut().expect("just set")
            }
        };
        let mut buf = Vec::with_capacity(line.len() + 1);
        buf.extend_from_slice(line.as_bytes());
        buf.push(b'\n');
        file.write_all(&buf)?;
        self.size += len;
        Ok(())
    }
}

// ------------------------------------------------------------------- hub

/// A filter for [`LogHub::query`].
#[derive(Debug, Clone, Default, Deserialize)]
pub struct LogQuery {
    /// Only this category.
    pub category: Option<String>,
    /// This level or more severe.
    pub level: Option<String>,
    /// Records at or after this time (ISO 8601) or after this sequence number.
    pub since: Option<String>,
    /// Most records (newest kept), default 200, at most [`MAX_QUERY_LIMIT`].
    pub limit: Option<usize>,
    /// Case-insensitive text in the message or fields.
    pub q: Option<String>,
}

impl LogQuery {
    /// Checks the values; errors name the parameter.
    pub fn validate(&self) -> Result<()> {
        if let Some(c) = &self.category {
            if !CATEGORIES.contains(&c.as_str()) {
                return Err(Error::invalid(
                    "category",
                    format!("unknown category {c:?} ({})", CATEGORIES.join(", ")),
                ));
            }
        }
        if let Some(l) = &self.level {
            let ok = ["TRACE", "DEBUG", "INFO", "WARNING", "WARN", "ERROR", "CRITICAL"];
            if !ok.contains(&l.to_ascii_uppercase().as_str()) {
                return Err(Error::invalid(
                    "level",
                    format!("unknown level {l:?} (DEBUG, INFO, WARNING, ERROR)"),
                ));
            }
        }
        if let Some(s) = &self.since {
            if s.parse::<u64>().is_err() && parse_iso8601(s).is_none() {
                return Err(Error::invalid(
                    "since",
                    format!("{s:?} is neither an ISO 8601 time nor a sequence number"),
                ));
            }
        }
        if self.limit == Some(0) {
            return Err(Error::invalid("limit", "must be at least 1"));
        }
        Ok(())
    }

    /// Whether a record passes the filter (the limit aside).
    pub fn matches(&self, r: &LogRecord) -> bool {
        if self.category.as_deref().is_some_and(|c| c != r.category) {
            return false;
        }
        if let Some(l) = &self.level {
            if level_rank(&r.level) < level_rank(l) {
                return false;
            }
        }
        if let Some(s) = &self.since {
            if let Ok(seq) = s.parse::<u64>() {
                if r.seq <= seq {
                    return false;
                }
            } else if let (Some(t), Some(rt)) = (parse_iso8601(s), parse_iso8601(&r.timestamp)) {
                if rt < t {
                    return false;
                }
            }
        }
        if let Some(q) = self.q.as_deref().filter(|q| !q.is_empty()) {
            let q = q.to_lowercase();
            let hay = serde_json::to_string(r).unwrap_or_default().to_lowercase();
            if !hay.contains(&q) {
                return false;
            }
        }
        true
    }
}

/// Records waiting for the writer thread; past this, new records skip the
/// files and the console (see [`LogHub`]'s overflow policy).
pub const WRITE_QUEUE: usize = 16_384;

/// The per-category files, owned by the writer thread.
struct Files {
    dir: PathBuf,
    app: PathBuf,
    max_size: u64,
    backups: u32,
    open: Vec<(String, RotatingFile)>,
    failed: bool,
}

impl Files {
    fn path_of(&self, category: &str) -> PathBuf {
        if category == "app" {
            self.app.clone()
        } else {
            self.dir.join(format!("{category}.log"))
        }
    }

    fn write(&mut self, category: &str, line: &str) {
        let idx = match self.open.iter().position(|(c, _)| c == category) {
            Some(i) => i,
            None => {
                let path = self.path_of(category);
                match RotatingFile::open(&path, self.max_size, self.backups) {
                    Ok(f) => {
                        self.open.push((category.to_string(), f));
                        self.open.len() - 1
                    }
                    Err(e) => {
                        if !self.failed {
                            self.failed = true;
                            eprintln!("vctts: cannot write log file {}: {e}", path.display());
                        }
                        return;
                    }
                }
            }
        };
        if let Err(e) = self.open[idx].1.write_line(line) {
            if !self.failed {
                self.failed = true;
                eprintln!("vctts: cannot write log file: {e}");
            }
        }
    }
}

/// What the writer thread is asked to do.
enum Job {
    /// One record: its JSON line for its category's file (when there are
    /// files) and its human line for the console (when enabled).
    Record {
        category: String,
        json: Option<String>,
        human: Option<String>,
    },
    /// Answer once every job sent before has been written.
    Flush(std::sync::mpsc::SyncSender<()>),
}

/// The one thread that writes log files and the console, fed by a bounded
/// queue so that no request waits on a disk or a terminal.
struct Writer {
    tx: std::sync::mpsc::SyncSender<Job>,
    /// Records that found the queue full (files and console skipped them).
    dropped: Arc<std::sync::atomic::AtomicU64>,
}

impl Writer {
    fn spawn(mut files: Option<Files>) -> Result<Self> {
        let (tx, rx) = std::sync::mpsc::sync_channel::<Job>(WRITE_QUEUE);
        let dropped = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let seen = dropped.clone();
        std::thread::Builder::new()
            .name("vctts-log-writer".into())
            .spawn(move || {
                let mut reported = 0u64;
                let stderr = std::io::stderr();
                for job in rx {
                    match job {
                        Job::Record {
                            category,
                            json,
                            human,
                        } => {
                            if let Some(h) = human {
                                let _ = writeln!(stderr.lock(), "{h}");
                            }
                            if let (Some(files), Some(line)) = (files.as_mut(), json) {
                                files.write(&category, &line);
                            }
                        }
                        Job::Flush(done) => {
                            let _ = done.send(());
                        }
                    }
                    let total = seen.load(std::sync::atomic::Ordering::Relaxed);
                    if total > reported {
                        eprintln!(
                            "vctts: the log writer fell behind; {} record(s) skipped the files and the console",
                            total - reported
                        );
                        reported = total;
                    }
                }
            })
            .map_err(|e| Error::io("starting the log writer thread".to_string(), e))?;
        Ok(Self { tx, dropped })
    }

    /// Queues a job without waiting; a full queue drops it and counts it.
    fn send(&self, job: Job) {
        if let Err(std::sync::mpsc::TrySendError::Full(_)) = self.tx.try_send(job) {
            self.dropped.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
    }
}

/// Where records go: the ring buffer, the live tail, files, the console.
///
/// Files and the console are written by one writer thread (off the async
/// runtime) fed by a queue of [`WRITE_QUEUE`] records. Overflow policy: when
/// the queue is full, the new record skips the files and the console (it is
/// still in the ring buffer and the live tail), is counted
/// ([`LogHub::dropped`]) and the writer says on stderr how many it skipped.
/// A request never waits for a disk.
pub struct LogHub {
    ring: Mutex<VecDeque<LogRecord>>,
    seq: std::sync::atomic::AtomicU64,
    tail: broadcast::Sender<LogRecord>,
    secrets: RwLock<Vec<String>>,
    /// The per-category file paths (folder, `app` file), when there are files.
    paths: Option<(PathBuf, PathBuf)>,
    writer: Option<Writer>,
    console: bool,
}

impl std::fmt::Debug for LogHub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogHub")
            .field("records", &self.ring.lock().len())
            .field("secrets", &self.secrets.read().len())
            .finish_non_exhaustive()
    }
}

impl LogHub {
    /// A hub without files or console (tests, embedders).
    pub fn memory() -> Arc<Self> {
        Arc::new(Self::build(false, None, None))
    }

    fn build(console: bool, paths: Option<(PathBuf, PathBuf)>, writer: Option<Writer>) -> Self {
        let (tail, _) = broadcast::channel(1024);
        Self {
            ring: Mutex::new(VecDeque::with_capacity(256)),
            seq: std::sync::atomic::AtomicU64::new(0),
            tail,
            secrets: RwLock::new(Vec::new()),
            paths,
            writer,
            console,
        }
    }

    /// A hub writing per-category files next to `cfg.file` (when set) and,
    /// if `console`, human lines to stderr.
    pub fn new(cfg: &LoggingSection, console: bool) -> Result<Arc<Self>> {
        let mut files = None;
        if let Some(file) = &cfg.file {
            let dir = file
                .parent()
                .filter(|d| !d.as_os_str().is_empty())
                .map(Path::to_path_buf)
                .unwrap_or_else(|| PathBuf::from("."));
            std::fs::create_dir_all(&dir).map_err(|e| Error::io(format!("creating {}", dir.display()), e))?;
            files = Some(Files {
                dir,
                app: file.clone(),
                max_size: cfg.max_size.0,
                backups: cfg.backup_count,
                open: Vec::new(),
                failed: false,
            });
        }
        let paths = files.as_ref().map(|f| (f.dir.clone(), f.app.clone()));
        let writer = if files.is_some() || console {
            Some(Writer::spawn(files)?)
        } else {
            None
        };
        Ok(Arc::new(Self::build(console, paths, writer)))
    }

    /// The file of a category (none when there are no files).
    pub fn file_of(&self, category: &str) -> Option<PathBuf> {
        let (dir, app) = self.paths.as_ref()?;
        Some(if category == "app" {
            app.clone()
        } else {
            dir.join(format!("{category}.log"))
        })
    }

    /// Waits until every record published before has reached the files and
    /// the console (tests, and the process before it exits).
    pub fn flush(&self) {
        if let Some(w) = &self.writer {
            let (done, wait) = std::sync::mpsc::sync_channel(1);
            // A blocking send: a flush waits for room like any caller that
            // wants its records on disk.
            if w.tx.send(Job::Flush(done)).is_ok() {
                let _ = wait.recv();
            }
        }
    }

    /// Records that skipped the files and the console because the writer's
    /// queue was full, since the start.
    pub fn dropped(&self) -> u64 {
        self.writer
            .as_ref()
            .map_or(0, |w| w.dropped.load(std::sync::atomic::Ordering::Relaxed))
    }

    /// Registers a secret value: it is replaced by `[REDACTED]` in every
    /// record from now on. Values shorter than 4 characters are ignored (they
    /// would mask ordinary text).
    pub fn add_secret(&self, secret: &str) {
        if secret.chars().count() < 4 {
            return;
        }
        let mut s = self.secrets.write();
        if !s.iter().any(|x| x == secret) {
            s.push(secret.to_string());
            // Longest first, so a secret containing another is masked whole.
            s.sort_by_key(|x| std::cmp::Reverse(x.len()));
        }
    }

    fn scrub(&self, text: &str) -> String {
        let mut t = text.to_string();
        for s in self.secrets.read().iter() {
            if t.contains(s.as_str()) {
                t = t.replace(s.as_str(), REDACTED);
            }
        }
        redact_text(&t)
    }

    fn scrub_value(&self, v: &mut serde_json::Value) {
        match v {
            serde_json::Value::String(s) => *s = self.scrub(s),
            serde_json::Value::Array(a) => a.iter_mut().for_each(|x| self.scrub_value(x)),
            serde_json::Value::Object(o) => {
                for (k, x) in o.iter_mut() {
                    if is_secret_field(k) {
                        *x = serde_json::Value::String(REDACTED.into());
                    } else {
                        self.scrub_value(x);
                    }
                }
            }
            _ => {}
        }
    }

    /// Redacts, numbers and publishes a record to every output.
    pub fn publish(&self, mut r: LogRecord) {
        r.message = self.scrub(&r.message);
        for f in [
            &mut r.endpoint,
            &mut r.request_id,
            &mut r.client_ip,
            &mut r.method,
        ]
        .into_iter()
        .flatten()
        {
            *f = self.scrub(f);
        }
        for (k, v) in r.extra.iter_mut() {
            if is_secret_field(k) {
                *v = serde_json::Value::String(REDACTED.into());
            } else {
                self.scrub_value(v);
            }
        }
        r.seq = self.seq.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
        if let Some(w) = &self.writer {
            let human = self.console.then(|| human(&r));
            let json = self.paths.as_ref().and_then(|_| serde_json::to_string(&r).ok());
            if human.is_some() || json.is_some() {
                w.send(Job::Record {
                    category: r.category.clone(),
                    json,
                    human,
                });
            }
        }
        {
            let mut ring = self.ring.lock();
            if ring.len() >= RING_CAPACITY {
                ring.pop_front();
            }
            ring.push_back(r.clone());
        }
        let _ = self.tail.send(r);
    }

    /// Records matching a query, oldest first (the newest `limit` of them).
    pub fn query(&self, q: &LogQuery) -> Vec<LogRecord> {
        let limit = q.limit.unwrap_or(200).clamp(1, MAX_QUERY_LIMIT);
        let ring = self.ring.lock();
        let mut out: Vec<LogRecord> = ring
            .iter()
            .rev()
            .filter(|r| q.matches(r))
            .take(limit)
            .cloned()
            .collect();
        out.reverse();
        out
    }

    /// Records from now on (the live tail).
    pub fn subscribe(&self) -> broadcast::Receiver<LogRecord> {
        self.tail.subscribe()
    }

    /// A `tracing` layer feeding this hub.
    pub fn layer(self: &Arc<Self>) -> HubLayer {
        HubLayer { hub: self.clone() }
    }
}

/// The human console line of a record.
pub fn human(r: &LogRecord) -> String {
    let mut line = format!("{} {:<7} {}: {}", r.timestamp, r.level, r.target, r.message);
    let mut kv = |k: &str, v: String| {
        line.push(' ');
        line.push_str(k);
        line.push('=');
        line.push_str(&v);
    };
    if let Some(v) = &r.request_id {
        kv("request_id", v.clone());
    }
    if let Some(v) = &r.method {
        kv("method", v.clone());
    }
    if let Some(v) = &r.endpoint {
        kv("endpoint", v.clone());
    }
    if let Some(v) = r.status_code {
        kv("status_code", v.to_string());
    }
    if let Some(v) = r.duration_ms {
        kv("duration_ms", format!("{v:.1}"));
    }
    if let Some(v) = &r.client_ip {
        kv("client_ip", v.clone());
    }
    for (k, v) in &r.extra {
        kv(k, v.as_str().map(str::to_string).unwrap_or_else(|| v.to_string()));
    }
    line
}

// ----------------------------------------------------------------- layer

/// The `tracing` layer that turns events into [`LogRecord`]s.
pub struct HubLayer {
    hub: Arc<LogHub>,
}

#[derive(Default)]
struct Fields {
    message: String,
    request_id: Option<String>,
    client_ip: Option<String>,
    endpoint: Option<String>,
    method: Option<String>,
    status_code: Option<u16>,
    duration_ms: Option<f64>,
    extra: serde_json::Map<String, serde_json::Value>,
}

impl Fields {
    fn put(&mut self, name: &str, v: serde_json::Value) {
        let text = || v.as_str().map(str::to_string).unwrap_or_else(|| v.to_string());
        match name {
            "message" => self.message = text(),
            "request_id" => self.request_id = Some(text()),
            "client_ip" => self.client_ip = Some(text()).filter(|s| !s.is_empty()),
            "endpoint" => self.endpoint = Some(text()),
            "method" => self.method = Some(text()),
            "status_code" => self.status_code = v.as_u64().and_then(|n| u16::try_from(n).ok()),
            "duration_ms" => self.duration_ms = v.as_f64(),
            other => {
                self.extra.insert(other.to_string(), v);
            }
        }
    }
}

impl Visit for Fields {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.put(field.name(), serde_json::Value::String(format!("{value:?}")));
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.put(field.name(), serde_json::Value::String(value.to_string()));
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.put(field.name(), value.into());
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.put(field.name(), value.into());
    }
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.put(
            field.name(),
            serde_json::Number::from_f64(value)
                .map(Into::into)
                .unwrap_or_default(),
        );
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.put(field.name(), value.into());
    }
}

impl<S: Subscriber> Layer<S> for HubLayer {
    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        let meta = event.metadata();
        let mut f = Fields::default();
        event.record(&mut f);
        self.hub.publish(LogRecord {
            seq: 0,
            timestamp: iso8601(SystemTime::now()),
            level: level_name(meta.level()).to_string(),
            category: category_of(meta.target(), meta.level()).to_string(),
            target: meta.target().to_string(),
            request_id: f.request_id,
            client_ip: f.client_ip,
            endpoint: f.endpoint,
            method: f.method,
            status_code: f.status_code,
            duration_ms: f.duration_ms,
            message: f.message,
            extra: f.extra,
        });
    }
}

// ------------------------------------------------------------ installing

/// The filter of an operator level: that level for ordinary records, with
/// the access, audit and metrics categories always kept at INFO (and below
/// when the operator asks for DEBUG or TRACE, which shows the access records
/// of health, readiness and metrics requests).
pub fn filter_for(directive: &str) -> EnvFilter {
    let access = match directive {
        "debug" | "trace" => directive,
        _ => "info",
    };
    EnvFilter::new(format!(
        "{directive},access={access},audit=info,metrics=info,hyper=warn,reqwest=warn,h2=warn,tower=warn"
    ))
}

type ReloadHandle = reload::Handle<EnvFilter, tracing_subscriber::Registry>;

/// The installed logging of the process.
pub struct Logging {
    hub: Arc<LogHub>,
    reload: Option<ReloadHandle>,
}

impl std::fmt::Debug for Logging {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Logging")
            .field("hub", &self.hub)
            .finish_non_exhaustive()
    }
}

impl Logging {
    /// The hub.
    pub fn hub(&self) -> &Arc<LogHub> {
        &self.hub
    }

    /// Changes the level at run time (a `tracing` directive: `debug`, `info`, …).
    pub fn set_level(&self, directive: &str) -> Result<()> {
        match &self.reload {
            Some(h) => h
                .reload(filter_for(directive))
                .map_err(|e| Error::Internal(format!("changing the log level: {e}"))),
            None => Ok(()),
        }
    }
}

static GLOBAL: OnceLock<Logging> = OnceLock::new();

/// Installs the process-wide subscriber: level filter (reloadable), the hub
/// with its files and the human console. A second call returns the first
/// installation.
pub fn init(cfg: &LoggingSection) -> Result<&'static Logging> {
    if let Some(l) = GLOBAL.get() {
        return Ok(l);
    }
    let hub = LogHub::new(cfg, true)?;
    let (filter, handle) = reload::Layer::new(filter_for(cfg.filter_directive()));
    tracing_subscriber::registry()
        .with(filter)
        .with(hub.layer())
        .try_init()
        .map_err(|e| Error::Internal(format!("installing logging: {e}")))?;
    let _ = GLOBAL.set(Logging {
        hub,
        reload: Some(handle),
    });
    GLOBAL
        .get()
        .ok_or_else(|| Error::Internal("logging was not installed".into()))
}

/// The installed logging, if [`init`] ran in this process.
pub fn installed() -> Option<&'static Logging> {
    GLOBAL.get()
}

/// Waits until the installed logging has written every record so far (call
/// before the process exits).
pub fn flush() {
    if let Some(l) = GLOBAL.get() {
        l.hub.flush();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn iso_round_trip() {
        let t = SystemTime::UNIX_EPOCH + Duration::from_millis(1_750_000_000_123);
        let s = iso8601(t);
        assert_eq!(s, "2025-06-15T15:06:40.123Z");
        assert_eq!(parse_iso8601(&s), Some(t));
        assert_eq!(
            parse_iso8601("2025-06-15T17:06:40.123+02:00"),
            Some(t),
            "offsets are applied"
        );
        assert_eq!(iso8601(SystemTime::UNIX_EPOCH), "1970-01-01T00:00:00.000Z");
        assert_eq!(
            parse_iso8601("2025-06-15 15:06:40.123"),
            Some(t),
            "a space and no offset"
        );
        assert_eq!(
            iso8601(SystemTime::UNIX_EPOCH + Duration::from_nanos(1_999_999_999)),
            "1970-01-01T00:00:01.999Z",
            "milliseconds are truncated"
        );
        assert_eq!(
            parse_iso8601("2024-02-29T00:00:00Z").map(iso8601).unwrap(),
            "2024-02-29T00:00:00.000Z"
        );
        for bad in [
            "",
            "yesterday",
            "2025-13-01T00:00:00Z",
            "2025-06-15T15:06:40+2",
            "2025-06-15T25:00:00Z",
        ] {
            assert_eq!(parse_iso8601(bad), None, "{bad}");
        }
    }

    #[test]
    fn redaction_of_text() {
        let cases = [
            (
                "Authorization: Bearer abc.def-123",
                "Authorization: Bearer [REDACTED]",
            ),
            ("sent Bearer abcdef to it", "sent Bearer [REDACTED] to it"),
            ("password=hunter22&user=x", "password=[REDACTED]&user=x"),
            (
                r#"{"password":"hunter22","username":"admin"}"#,
                r#"{"password":"[REDACTED]","username":"admin"}"#,
            ),
            ("api_key: 'k-123' ok", "api_key: '[REDACTED]' ok"),
            ("cluster token=abcd1234", "cluster token=[REDACTED]"),
            ("nothing to hide, monkey=1", "nothing to hide, monkey=1"),
        ];
        for (input, want) in cases {
            assert_eq!(redact_text(input), want, "{input}");
        }
        assert!(is_secret_field("admin_password"));
        assert!(is_secret_field("x_api_key"));
        assert!(is_secret_field("key"));
        assert!(!is_secret_field("node_id"));
    }

    fn record(category: &str, level: &str, message: &str) -> LogRecord {
        LogRecord {
            seq: 0,
            timestamp: iso8601(SystemTime::now()),
            level: level.into(),
            category: category.into(),
            target: "t".into(),
            request_id: None,
            client_ip: None,
            endpoint: None,
            method: None,
            status_code: None,
            duration_ms: None,
            message: message.into(),
            extra: Default::default(),
        }
    }

    #[test]
    fn hub_query_and_secrets() {
        let hub = LogHub::memory();
        hub.add_secret("very-secret-value");
        hub.publish(record("access", "INFO", "GET / very-secret-value"));
        let mut r = record("error", "ERROR", "boom");
        r.extra.insert("password".into(), "pw-1234".into());
        r.extra
            .insert("detail".into(), "had very-secret-value inside".into());
        hub.publish(r);
        hub.publish(record("audit", "INFO", "node stopped"));
        let all = hub.query(&LogQuery::default());
        assert_eq!(all.len(), 3);
        assert!(all.windows(2).all(|w| w[0].seq < w[1].seq));
        let text = serde_json::to_string(&all).unwrap();
        assert!(
            !text.contains("very-secret-value") && !text.contains("pw-1234"),
            "{text}"
        );
        let q = |c: Option<&str>, l: Option<&str>, q: Option<&str>| LogQuery {
            category: c.map(Into::into),
            level: l.map(Into::into),
            q: q.map(Into::into),
            ..Default::default()
        };
        assert_eq!(hub.query(&q(Some("audit"), None, None)).len(), 1);
        assert_eq!(hub.query(&q(None, Some("warning"), None)).len(), 1);
        assert_eq!(hub.query(&q(None, None, Some("STOPPED"))).len(), 1);
        let since = LogQuery {
            since: Some(all[0].seq.to_string()),
            ..Default::default()
        };
        assert_eq!(hub.query(&since).len(), 2);
        let lim = LogQuery {
            limit: Some(1),
            ..Default::default()
        };
        assert_eq!(hub.query(&lim)[0].message, "node stopped", "the newest are kept");
        assert!(q(Some("nope"), None, None).validate().is_err());
        assert!(q(None, Some("loud"), None).validate().is_err());
        assert!(
            LogQuery {
                since: Some("later".into()),
                ..Default::default()
            }
            .validate()
            .is_err()
        );
    }

    #[test]
    fn rotation_keeps_backups() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.log");
        let mut f = RotatingFile::open(&path, 100, 2).unwrap();
        let line = "a".repeat(39); // 40 bytes with the newline
        for _ in 0..10 {
            f.write_line(&line).unwrap();
        }
        let size = |p: &Path| std::fs::metadata(p).unwrap().len();
        assert!(size(&path) <= 100);
        assert_eq!(size(&dir.path().join("x.log.1")), 80);
        assert_eq!(size(&dir.path().join("x.log.2")), 80);
        assert!(!dir.path().join("x.log.3").exists());
        let names = std::fs::read_dir(dir.path()).unwrap().count();
        assert_eq!(names, 3);
    }

    #[test]
    fn layer_categorises_and_writes_files() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = LoggingSection {
            file: Some(dir.path().join("gateway.log")),
            ..LoggingSection::default()
        };
        let hub = LogHub::new(&cfg, false).unwrap();
        let sub = tracing_subscriber::registry().with(hub.layer());
        tracing::subscriber::with_default(sub, || {
            tracing::info!(target: "access", request_id = "r-1", method = "GET", endpoint = "/x", status_code = 200u16, duration_ms = 1.5, "request served");
            tracing::warn!(password = "pw-9999", node_id = "n1", "node went away");
            tracing::info!(target: "audit", actor = "admin", action = "stop", "admin action");
            tracing::info!("hello");
        });
        hub.flush();
        assert_eq!(hub.dropped(), 0);
        let recs = hub.query(&LogQuery::default());
        let cats: Vec<&str> = recs.iter().map(|r| r.category.as_str()).collect();
        assert_eq!(cats, ["access", "error", "audit", "app"]);
        assert_eq!(recs[0].status_code, Some(200));
        assert_eq!(recs[0].request_id.as_deref(), Some("r-1"));
        assert_eq!(recs[1].extra["password"], REDACTED);
        assert_eq!(recs[1].level, "WARNING");
        let access = std::fs::read_to_string(dir.path().join("access.log")).unwrap();
        let v: serde_json::Value = serde_json::from_str(access.lines().next().unwrap()).unwrap();
        assert_eq!(v["endpoint"], "/x");
        assert!(parse_iso8601(v["timestamp"].as_str().unwrap()).is_some());
        let err = std::fs::read_to_string(dir.path().join("error.log")).unwrap();
        assert!(!err.contains("pw-9999"));
        assert!(dir.path().join("audit.log").exists());
        assert!(dir.path().join("gateway.log").exists());
        assert!(human(&recs[0]).contains("status_code=200"));
    }
}
