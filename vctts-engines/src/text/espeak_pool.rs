//! Long-lived espeak-ng processes, fed one clause per line, so a request
//! does not pay for starting espeak-ng (loading its dictionaries) each time.
//! espeak-ng stays a separate GPL process: it is talked to over pipes only.
//!
//! Framing (the invariant everything here protects): espeak-ng without
//! `--stdin` reads its standard input line by line and answers each line
//! before reading the next, flushing its output. Every clause is written as
//! one line followed by a *sentinel* line: raw phoneme input (`[[...]]`, which
//! clause text can never contain because the phonemizer strips `[`/`]`) made
//! of random phonemes chosen when the process starts. Its output line is
//! learnt then, so a clause's output is exactly the lines before the next
//! sentinel line, whatever espeak-ng prints or leaves out for the clause.
//! Text cannot forge the sentinel: it is random per process and never shown.
//!
//! Failure handling: a process that died (its pipes close) is replaced and
//! the batch retried once on a fresh one; one that does not answer within
//! the time limit is killed and the call fails with [`Error::Timeout`]; a
//! process is only put back into the pool after a batch that ended cleanly,
//! so nothing of one batch can leak into the next. A process that cannot
//! start (a voice espeak-ng refuses makes it exit; a binary that does not
//! answer line by line never answers its first line) is reported as
//! [`Error::Inference`]; the caller then uses a one-off process, which gives
//! the detailed error.
//!
//! Lines are cut by espeak-ng at about 1000 bytes; [`MAX_LINE_BYTES`] is the
//! longest clause sent here (the caller uses a one-off process for longer).

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use vctts_core::{Error, Result};

/// The longest clause (in bytes, without its line break) one line may carry:
/// espeak-ng reads lines with a 1000-byte buffer and would cut longer ones.
pub const MAX_LINE_BYTES: usize = 900;

/// Time allowed for one batch: this plus [`TIME_PER_KB`] per KiB of text.
const BASE_TIMEOUT: Duration = Duration::from_secs(10);
const TIME_PER_KB: Duration = Duration::from_millis(200);
/// Time a new process has to answer its first (sentinel) line.
const START_TIMEOUT: Duration = Duration::from_secs(3);

/// Phoneme letters the sentinel is drawn from: present in espeak-ng's
/// phoneme tables of every language tried (en, de, fr, ru, cmn, ja, es).
const SENTINEL_PHONEMES: &[&str] = &["a", "i", "u", "e", "o", "m", "n", "p", "t", "k", "s"];
const SENTINEL_LEN: usize = 14;

/// Pool of idle espeak-ng processes, keyed by (voice, output mode).
#[derive(Debug)]
pub struct Pool {
    idle: Mutex<HashMap<(String, String), Vec<Worker>>>,
    max_idle: usize,
    timeout: Duration,
}

impl Pool {
    /// A pool keeping at most `max_idle` idle processes per voice and mode.
    pub fn new(max_idle: usize) -> Self {
        Pool {
            idle: Mutex::new(HashMap::new()),
            max_idle: max_idle.max(1),
            timeout: BASE_TIMEOUT,
        }
    }

    /// The same pool with another base time limit per batch (tests use a short one).
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The output lines of each clause (one entry per clause, in order), from
    /// a pooled process started by `command` (which must already carry the
    /// mode and voice arguments). Every clause must be a single line of at most
    /// [`MAX_LINE_BYTES`] without `[`/`]` (the phonemizer's sanitised clauses).
    pub fn lines(
        &self,
        voice: &str,
        mode: &str,
        command: impl Fn() -> Command,
        clauses: &[&str],
    ) -> Result<Vec<Vec<String>>> {
        if let Some(bad) = clauses
            .iter()
            .find(|c| c.len() > MAX_LINE_BYTES || c.contains(['\n', '\r', '[', ']']))
        {
            return Err(Error::Internal(format!(
                "clause not fit for a pooled espeak-ng line ({} bytes)",
                bad.len()
            )));
        }
        let key = (voice.to_owned(), mode.to_owned());
        let bytes: usize = clauses.iter().map(|c| c.len()).sum();
        let limit = self.timeout + TIME_PER_KB * (bytes / 1024 + 1) as u32;
        let pooled = self.idle.lock().get_mut(&key).and_then(Vec::pop);
        let (mut worker, fresh) = match pooled {
            Some(w) => (w, false),
            None => (Worker::start(command(), self.timeout)?, true),
        };
        let result = match worker.run(clauses, limit) {
            Err(Outcome::Died) if !fresh => {
                // Died while idle (or crashed on this batch): one retry on a new process.
                worker = Worker::start(command(), self.timeout)?;
                worker.run(clauses, limit)
            }
            other => other,
        };
        match result {
            Ok(lines) => {
                let mut idle = self.idle.lock();
                let slot = idle.entry(key).or_default();
                if slot.len() < self.max_idle {
                    slot.push(worker);
                }
                Ok(lines)
            }
            Err(Outcome::Died) => Err(Error::Inference(format!(
                "espeak-ng (-v {voice} {mode}) exited while phonemizing"
            ))),
            Err(Outcome::TimedOut) => Err(Error::Timeout(format!(
                "espeak-ng (-v {voice} {mode}) did not answer within {:.1} s; the process was replaced",
                limit.as_secs_f32()
            ))),
        }
    }

    /// Process ids of the idle processes (for tests that kill one).
    pub fn idle_pids(&self) -> Vec<u32> {
        self.idle
            .lock()
            .values()
            .flatten()
            .map(|w| w.child.id())
            .collect()
    }
}

/// Why a batch did not complete.
#[derive(Debug)]
enum Outcome {
    /// The process closed its output (crashed, killed, or refused the voice).
    Died,
    /// No complete answer in time (the worker is dropped, which kills it).
    TimedOut,
}

/// One running espeak-ng with a writer and a reader thread, so neither side
/// of the pipes can block the caller past its deadline.
#[derive(Debug)]
struct Worker {
    child: Child,
    input: Sender<Vec<u8>>,
    output: Receiver<String>,
    /// The raw phoneme line written after every clause.
    sentinel_in: String,
    /// What espeak-ng prints for it (learnt at start; never empty, as empty lines are skipped).
    sentinel_out: String,
}

impl Worker {
    fn start(mut command: Command, timeout: Duration) -> Result<Self> {
        let mut child = command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| Error::io("starting espeak-ng", e))?;
        let (Some(stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else {
            let _ = child.kill();
            let _ = child.wait();
            return Err(Error::Internal("espeak-ng pipes were not captured".into()));
        };
        let (input, to_write) = mpsc::channel::<Vec<u8>>();
        std::thread::Builder::new()
            .name("espeak-writer".into())
            .spawn(move || {
                let mut stdin = stdin;
                for chunk in to_write {
                    if stdin.write_all(&chunk).and_then(|()| stdin.flush()).is_err() {
                        break;
                    }
                }
            })
            .map_err(|e| Error::io("starting an espeak-ng writer thread", e))?;
        let (line_tx, output) = mpsc::channel::<String>();
        std::thread::Builder::new()
            .name("espeak-reader".into())
            .spawn(move || {
                let mut reader = BufReader::new(stdout);
                let mut buf = Vec::new();
                loop {
                    buf.clear();
                    match reader.read_until(b'\n', &mut buf) {
                        Ok(0) | Err(_) => break,
                        Ok(_) => {
                            let line = String::from_utf8_lossy(&buf).trim().to_owned();
                            // Empty lines carry nothing (the phonemizer drops them too);
                            // some voices print one after every clause in `-x` mode.
                            if !line.is_empty() && line_tx.send(line).is_err() {
                                break;
                            }
                        }
                    }
                }
            })
            .map_err(|e| Error::io("starting an espeak-ng reader thread", e))?;
        let sentinel_in = random_sentinel();
        let mut worker = Worker {
            child,
            input,
            output,
            sentinel_in,
            sentinel_out: String::new(),
        };
        // Learn the sentinel's output: the one line espeak-ng prints for it.
        let _ = worker
            .input
            .send(format!("{}\n", worker.sentinel_in).into_bytes());
        let deadline = Instant::now() + timeout.min(START_TIMEOUT);
        let learnt = match worker.next_line(deadline) {
            Ok(line) => line,
            Err(Outcome::Died) => {
                return Err(Error::Inference("espeak-ng exited at start".into()));
            }
            Err(Outcome::TimedOut) => {
                // Not a timeout of the caller's batch: the caller may still try a one-off process.
                return Err(Error::Inference(
                    "espeak-ng did not answer its start-up line in time".into(),
                ));
            }
        };
        worker.sentinel_out = learnt;
        Ok(worker)
    }

    /// Each clause's non-empty output lines (trimmed).
    fn run(&mut self, clauses: &[&str], limit: Duration) -> std::result::Result<Vec<Vec<String>>, Outcome> {
        let deadline = Instant::now() + limit;
        let mut text = String::with_capacity(clauses.iter().map(|c| c.len() + SENTINEL_LEN * 2 + 8).sum());
        for clause in clauses {
            text.push_str(clause);
            text.push('\n');
            text.push_str(&self.sentinel_in);
            text.push('\n');
        }
        self.input.send(text.into_bytes()).map_err(|_| Outcome::Died)?;
        let mut groups = Vec::with_capacity(clauses.len());
        let mut current = Vec::new();
        while groups.len() < clauses.len() {
            let line = self.next_line(deadline)?;
            if line == self.sentinel_out {
                groups.push(std::mem::take(&mut current));
            } else {
                current.push(line);
            }
        }
        Ok(groups)
    }

    fn next_line(&self, deadline: Instant) -> std::result::Result<String, Outcome> {
        let wait = deadline.saturating_duration_since(Instant::now());
        match self.output.recv_timeout(wait) {
            Ok(line) => Ok(line),
            Err(RecvTimeoutError::Timeout) => Err(Outcome::TimedOut),
            Err(RecvTimeoutError::Disconnected) => Err(Outcome::Died),
        }
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        // Closing stdin (dropping `input`) would end it too; kill so a hung one goes now.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `[[...]]` of random phoneme letters (each with a primary stress mark,
/// which keeps espeak-ng from reading two letters as one phoneme).
fn random_sentinel() -> String {
    use rand::Rng;
    let mut rng = rand::rng();
    let mut s = String::from("[[");
    for _ in 0..SENTINEL_LEN {
        s.push('\'');
        s.push_str(SENTINEL_PHONEMES[rng.random_range(0..SENTINEL_PHONEMES.len())]);
    }
    s.push_str("]]");
    s
}
