//! Supervised local workers (`local_workers:` in gateway.yaml): child
//! processes the gateway launches, restarts with exponential backoff when
//! they exit on their own, and stops, starts or restarts when an operator
//! asks through the admin API.
//!
//! Invariants:
//! - a worker the operator stopped stays stopped (no restart) until started;
//! - a crash is followed by a restart after `backoff_initial`, doubling per
//!   consecutive crash up to `backoff_max`; a run longer than
//!   [`STABLE_AFTER`] resets the delay;
//! - stopping sends SIGTERM (the worker drains and deregisters) and SIGKILL
//!   after [`STOP_GRACE`]; children are killed when the gateway stops or the
//!   supervisor is dropped (`kill_on_drop`);
//! - a child outlives no gateway: it is started with [`SUPERVISOR_PID_ENV`]
//!   and, on Linux, [`follow_supervisor`] asks the kernel for SIGTERM when
//!   the gateway dies, even by SIGKILL (where `kill_on_drop` never runs).

use crate::config::LocalWorkerConfig;
use parking_lot::Mutex;
use serde::Serialize;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::Notify;
use vctts_core::{Error, Result};

/// A run this long counts as stable: the next crash restarts after the
/// initial delay again.
pub const STABLE_AFTER: Duration = Duration::from_secs(60);
/// How long a stopping worker may take before it is killed.
pub const STOP_GRACE: Duration = Duration::from_secs(10);
/// Set in a supervised child's environment to the gateway's process id.
pub const SUPERVISOR_PID_ENV: &str = "VCTTS_SUPERVISOR_PID";

/// Called first thing by a process that may be a supervised child: when
/// [`SUPERVISOR_PID_ENV`] names its parent, the kernel sends it SIGTERM (a
/// drain, as from an operator) when that parent exits. A parent that is
/// already gone (the child was reparented before it got here) is an error:
/// the child should not start at all.
pub fn follow_supervisor() -> Result<()> {
    let Some(pid) = std::env::var(SUPERVISOR_PID_ENV).ok() else {
        return Ok(());
    };
    let Ok(expected) = pid.trim().parse::<u32>() else {
        return Err(Error::Config(format!(
            "{SUPERVISOR_PID_ENV}={pid:?} is not a process id"
        )));
    };
    #[cfg(target_os = "linux")]
    {
        use rustix::process::{Signal, getppid, set_parent_process_death_signal};
        set_parent_process_death_signal(Some(Signal::TERM))
            .map_err(|e| Error::Internal(format!("cannot follow the supervising gateway: {e}")))?;
        // Checked after the request, so a parent that dies in between is seen.
        let parent = getppid().map_or(0, |p| p.as_raw_nonzero().get() as u32);
        if parent != expected {
            return Err(Error::Config(format!(
                "the supervising gateway (pid {expected}) has exited; not starting"
            )));
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = expected;
    Ok(())
}

/// What the admin API shows of one supervised worker.
#[derive(Debug, Clone, Serialize)]
pub struct WorkerStatus {
    /// Its configured name.
    pub name: String,
    /// The endpoint it registers with.
    pub endpoint: String,
    /// Whether a process is running now.
    pub running: bool,
    /// Whether the supervisor keeps it running (false once stopped by an operator).
    pub wanted: bool,
    /// The running process id.
    pub pid: Option<u32>,
    /// Restarts after crashes so far.
    pub restarts: u64,
    /// How the last process ended (`exit status: 1`, `signal: 9`).
    pub last_exit: Option<String>,
}

#[derive(Debug)]
struct State {
    wanted: bool,
    restart_requested: bool,
    running: bool,
    pid: Option<u32>,
    restarts: u64,
    last_exit: Option<String>,
}

/// One supervised worker.
#[derive(Debug)]
pub struct Supervised {
    cfg: LocalWorkerConfig,
    program: PathBuf,
    state: Mutex<State>,
    wake: Notify,
}

impl Supervised {
    /// Its configured name.
    pub fn name(&self) -> &str {
        &self.cfg.name
    }

    /// Its status now.
    pub fn status(&self) -> WorkerStatus {
        let s = self.state.lock();
        WorkerStatus {
            name: self.cfg.name.clone(),
            endpoint: self.cfg.endpoint.clone(),
            running: s.running,
            wanted: s.wanted,
            pid: s.pid,
            restarts: s.restarts,
            last_exit: s.last_exit.clone(),
        }
    }

    /// Stops the process and keeps it stopped.
    pub fn stop(&self) {
        self.state.lock().wanted = false;
        self.wake.notify_one();
    }

    /// Starts it (again) if stopped.
    pub fn start(&self) {
        self.state.lock().wanted = true;
        self.wake.notify_one();
    }

    /// Stops and starts it again at once.
    pub fn restart(&self) {
        {
            let mut s = self.state.lock();
            s.wanted = true;
            s.restart_requested = true;
        }
        self.wake.notify_one();
    }

    fn command(&self) -> tokio::process::Command {
        let mut cmd = tokio::process::Command::new(&self.program);
        cmd.args(&self.cfg.args)
            .envs(&self.cfg.env)
            .env(SUPERVISOR_PID_ENV, std::process::id().to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .kill_on_drop(true);
        cmd
    }

    async fn run(self: Arc<Self>, stopped: impl std::future::Future<Output = ()>) {
        tokio::pin!(stopped);
        let mut delay = self.cfg.backoff_initial.0;
        loop {
            let wanted = self.state.lock().wanted;
            if !wanted {
                tokio::select! {
                    _ = self.wake.notified() => continue,
                    _ = &mut stopped => return,
                }
            }
            let mut child = match self.command().spawn() {
                Ok(c) => c,
                Err(e) => {
                    tracing::error!(worker = %self.cfg.name, program = %self.program.display(), error = %e, "could not start a local worker");
                    self.state.lock().last_exit = Some(format!("spawn failed: {e}"));
                    tokio::select! {
                        _ = tokio::time::sleep(delay) => {}
                        _ = self.wake.notified() => {}
                        _ = &mut stopped => return,
                    }
                    delay = (delay * 2).min(self.cfg.backoff_max.0);
                    continue;
                }
            };
            let started = Instant::now();
            {
                let mut s = self.state.lock();
                s.running = true;
                s.pid = child.id();
                s.restart_requested = false;
            }
            tracing::info!(worker = %self.cfg.name, pid = ?child.id(), "local worker started");
            let crashed = loop {
                tokio::select! {
                    status = child.wait() => {
                        let text = status.map(|s| s.to_string()).unwrap_or_else(|e| e.to_string());
                        let mut s = self.state.lock();
                        s.running = false;
                        s.pid = None;
                        s.last_exit = Some(text.clone());
                        tracing::warn!(worker = %self.cfg.name, exit = %text, "local worker exited");
                        break s.wanted;
                    }
                    _ = self.wake.notified() => {
                        let (wanted, restart) = {
                            let s = self.state.lock();
                            (s.wanted, s.restart_requested)
                        };
                        if !wanted || restart {
                            terminate(&mut child).await;
                            let mut s = self.state.lock();
                            s.running = false;
                            s.pid = None;
                            s.last_exit = Some(if restart { "restarted" } else { "stopped" }.into());
                            s.restart_requested = false;
                            break false;
                        }
                    }
                    _ = &mut stopped => {
                        terminate(&mut child).await;
                        return;
                    }
                }
            };
            if !crashed {
                delay = self.cfg.backoff_initial.0;
                continue;
            }
            if started.elapsed() >= STABLE_AFTER {
                delay = self.cfg.backoff_initial.0;
            }
            self.state.lock().restarts += 1;
            tracing::info!(worker = %self.cfg.name, delay_ms = delay.as_millis() as u64, "restarting local worker after a crash");
            tokio::select! {
                _ = tokio::time::sleep(delay) => {}
                _ = self.wake.notified() => {}
                _ = &mut stopped => return,
            }
            delay = (delay * 2).min(self.cfg.backoff_max.0);
        }
    }
}

/// Asks a child to stop (SIGTERM), then kills it after [`STOP_GRACE`].
async fn terminate(child: &mut tokio::process::Child) {
    if let Some(pid) = child.id() {
        let term = tokio::process::Command::new("kill")
            .arg("-TERM")
            .arg(pid.to_string())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .await;
        if term.is_ok_and(|s| s.success()) && tokio::time::timeout(STOP_GRACE, child.wait()).await.is_ok() {
            return;
        }
    }
    let _ = child.kill().await;
}

/// The supervisor of every local worker.
#[derive(Debug, Default)]
pub struct Supervisor {
    workers: Vec<Arc<Supervised>>,
}

impl Supervisor {
    /// Prepares the configured workers (nothing runs until [`Supervisor::start`]).
    pub fn new(cfgs: &[LocalWorkerConfig]) -> Result<Self> {
        let mut workers = Vec::new();
        for c in cfgs {
            let program = match &c.program {
                Some(p) => p.clone(),
                None => std::env::current_exe()
                    .map_err(|e| Error::io("finding the vctts-server binary for local_workers", e))?,
            };
            workers.push(Arc::new(Supervised {
                cfg: c.clone(),
                program,
                state: Mutex::new(State {
                    wanted: true,
                    restart_requested: false,
                    running: false,
                    pid: None,
                    restarts: 0,
                    last_exit: None,
                }),
                wake: Notify::new(),
            }));
        }
        Ok(Self { workers })
    }

    /// Launches every worker; each stops when its future from `stopped`
    /// resolves (the gateway's shutdown).
    pub fn start<F>(&self, stopped: impl Fn() -> F)
    where
        F: std::future::Future<Output = ()> + Send + 'static,
    {
        for w in &self.workers {
            tokio::spawn(w.clone().run(stopped()));
        }
    }

    /// A worker by name.
    pub fn by_name(&self, name: &str) -> Option<Arc<Supervised>> {
        self.workers.iter().find(|w| w.cfg.name == name).cloned()
    }

    /// The worker that registers from `endpoint`.
    pub fn by_endpoint(&self, endpoint: &str) -> Option<Arc<Supervised>> {
        let norm = |s: &str| s.trim_end_matches('/').to_ascii_lowercase();
        self.workers
            .iter()
            .find(|w| norm(&w.cfg.endpoint) == norm(endpoint))
            .cloned()
    }

    /// Every worker's status.
    pub fn statuses(&self) -> Vec<WorkerStatus> {
        self.workers.iter().map(|w| w.status()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Seconds;

    fn cfg(program: &str, args: &[&str]) -> LocalWorkerConfig {
        LocalWorkerConfig {
            name: "w1".into(),
            program: Some(PathBuf::from(program)),
            args: args.iter().map(|s| s.to_string()).collect(),
            env: Default::default(),
            endpoint: "http://127.0.0.1:9".into(),
            backoff_initial: Seconds(Duration::from_millis(20)),
            backoff_max: Seconds(Duration::from_millis(80)),
        }
    }

    async fn until(what: &str, mut cond: impl FnMut() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while !cond() {
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    #[tokio::test]
    async fn crashing_child_is_restarted_and_stop_sticks() {
        let sup = Supervisor::new(&[cfg("sh", &["-c", "exit 3"])]).unwrap();
        let w = sup.by_name("w1").unwrap();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(w.clone().run(async move {
            let _ = rx.await;
        }));
        until("two restarts", || w.status().restarts >= 2).await;
        assert!(w.status().last_exit.unwrap().contains('3'));
        w.stop();
        until("stopped", || !w.status().running).await;
        let n = w.status().restarts;
        assert!(!w.status().wanted);
        let _ = tx.send(());
        assert!(sup.by_endpoint("http://127.0.0.1:9/").is_some());
        assert!(sup.by_endpoint("http://127.0.0.1:10").is_none());
        assert!(n >= 2);
    }

    #[tokio::test]
    async fn stop_start_restart_act_on_the_process() {
        let sup = Supervisor::new(&[cfg("sleep", &["300"])]).unwrap();
        let w = sup.by_name("w1").unwrap();
        tokio::spawn(w.clone().run(std::future::pending::<()>()));
        until("running", || w.status().pid.is_some()).await;
        let first = w.status().pid.unwrap();
        w.restart();
        until("a new process", || w.status().pid.is_some_and(|p| p != first)).await;
        w.stop();
        until("stopped", || !w.status().running).await;
        assert_eq!(w.status().last_exit.as_deref(), Some("stopped"));
        w.start();
        until("running again", || w.status().running).await;
        assert_eq!(w.status().restarts, 0, "operator actions are not crashes");
        w.stop();
        until("stopped again", || !w.status().running).await;
    }
}
