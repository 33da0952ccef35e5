//! One hosted engine as a node: its lifecycle (standby, loading, ready, busy,
//! error, stopped), admission, counters and resource use.
//!
//! The same [`WorkerNode`] serves a `worker` process (behind
//! [`crate::cluster::worker_api`]) and the in-process nodes of a gateway or
//! standalone server (through its [`NodeApi`] implementation), so both behave
//! alike.
//!
//! Invariants:
//! - work is refused while the node is stopped or draining
//!   ([`Error::NodeUnavailable`], retryable, so the gateway fails over) and
//!   while the model is not loaded ([`Error::ModelNotLoaded`], retryable);
//! - at most `max_concurrency` requests infer at once; up to `queue_size`
//!   wait; more are refused ([`Error::Overloaded`]);
//! - a request holds its admission slot until the engine's work has
//!   actually stopped: a whole synthesis until the engine returns, a stream
//!   until it ends or, when its reader drops it, until the engine has let go
//!   of it (it stops before its next chunk);
//! - a whole synthesis whose caller goes away (the client or the gateway
//!   hung up, which drops the call's future) is cancelled: the engine stops
//!   before its next sentence, and only then is the slot given back;
//! - `audio_seconds` in the metrics counts the audio the engine made,
//!   cancelled work included (what the node actually spent its time on).
//! - an engine that could not be built leaves the node in `error` with the
//!   reason (e.g. what is not installed); it never panics the process.

use super::admission::Admission;
use crate::cluster::proto::{NodeAction, NodeStatus, WireNodeMetrics, WireNodeState};
use crate::cluster::{AudioBody, CallContext, NodeApi, NodeAudio, NodeStream};
use async_trait::async_trait;
use bytes::Bytes;
use futures::StreamExt;
use parking_lot::Mutex;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio::sync::Notify;
use vctts::stream::{AccountedStream, StreamObserver, StreamOutcome, StreamStats};
use vctts_core::{
    Engine, EngineInfo, EngineKind, Error, ModelState, OutputFormat, ReferenceAudio, Result,
    SynthesisControl, SynthesisRequest, VoiceProfile,
};
use vctts_engines::audio::encode;

/// An exponentially weighted moving average.
#[derive(Debug, Clone, Copy, Default)]
struct Ewma {
    value: Option<f64>,
}

impl Ewma {
    const ALPHA: f64 = 0.2;
    fn record(&mut self, x: f64) {
        self.value = Some(match self.value {
            None => x,
            Some(v) => v + Self::ALPHA * (x - v),
        });
    }
}

/// Process CPU and memory, sampled at most once per interval.
struct ResourceProbe {
    system: sysinfo::System,
    pid: Option<sysinfo::Pid>,
    last: Option<(Instant, Option<f32>, Option<u64>)>,
}

impl ResourceProbe {
    fn new() -> Self {
        Self {
            system: sysinfo::System::new(),
            pid: sysinfo::get_current_pid().ok(),
            last: None,
        }
    }

    fn sample(&mut self) -> (Option<f32>, Option<u64>) {
        if let Some((at, cpu, mem)) = self.last {
            if at.elapsed() < Duration::from_millis(500) {
                return (cpu, mem);
            }
        }
        let Some(pid) = self.pid else {
            return (None, None);
        };
        self.system.refresh_processes_specifics(
            sysinfo::ProcessesToUpdate::Some(&[pid]),
            false,
            sysinfo::ProcessRefreshKind::nothing().with_cpu().with_memory(),
        );
        let (cpu, mem) = match self.system.process(pid) {
            Some(p) => (Some(p.cpu_usage()), Some(p.memory())),
            None => (None, None),
        };
        // The first CPU sample has no previous one to compare with.
        let cpu = if self.last.is_none() { None } else { cpu };
        self.last = Some((Instant::now(), cpu, mem));
        (cpu, mem)
    }
}

/// GPU use, read from `nvidia-smi` by a background thread (only for nodes
/// on a CUDA device; the thread ends when the node is dropped).
#[derive(Debug, Default, Clone, Copy, PartialEq)]
pub struct GpuSample {
    /// Utilisation, percent.
    pub percent: Option<f32>,
    /// Memory in use, bytes.
    pub memory_bytes: Option<u64>,
}

/// Parses one line of `nvidia-smi --query-gpu=utilization.gpu,memory.used
/// --format=csv,noheader,nounits` (`"37, 1024"`: percent, MiB).
pub fn parse_nvidia_smi(line: &str) -> Option<GpuSample> {
    let mut parts = line.split(',').map(str::trim);
    let percent = parts.next()?.parse::<f32>().ok();
    let mib = parts.next()?.parse::<f64>().ok();
    if percent.is_none() && mib.is_none() {
        return None;
    }
    Some(GpuSample {
        percent,
        memory_bytes: mib.map(|m| (m * 1024.0 * 1024.0) as u64),
    })
}

fn sample_gpu(index: u32) -> Option<GpuSample> {
    let out = std::process::Command::new("nvidia-smi")
        .args([
            "--query-gpu=utilization.gpu,memory.used",
            "--format=csv,noheader,nounits",
            "-i",
            &index.to_string(),
        ])
        .stdin(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    parse_nvidia_smi(String::from_utf8_lossy(&out.stdout).lines().next()?)
}

/// How a node is set up.
#[derive(Debug, Clone, Default)]
pub struct NodeOptions {
    /// Requests inferring at once.
    pub max_concurrency: usize,
    /// Requests waiting for a slot.
    pub queue_size: usize,
    /// The CUDA device index, when the engine runs on a GPU (GPU use is then
    /// reported with the heartbeats).
    pub gpu: Option<u32>,
}

/// A hosted engine as a node.
pub struct WorkerNode {
    kind: EngineKind,
    engine: std::result::Result<Arc<dyn Engine>, String>,
    admission: Admission,
    stopped: AtomicBool,
    draining: AtomicBool,
    requests: AtomicU64,
    errors: AtomicU64,
    /// Audio the engine made, microseconds (cancelled work included).
    audio_us: AtomicU64,
    latency: Mutex<Ewma>,
    first_audio: Mutex<Ewma>,
    probe: Mutex<ResourceProbe>,
    changed: Notify,
    /// Cached `info()` (engines compute it on each call).
    info: Mutex<Option<EngineInfo>>,
    /// Latest GPU sample (nodes on a GPU only).
    gpu: Arc<Mutex<GpuSample>>,
    /// Reports of the state made so far: the number of the next one
    /// ([`WorkerNode::numbered_state`]).
    reports: Mutex<u64>,
}

impl std::fmt::Debug for WorkerNode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WorkerNode")
            .field("kind", &self.kind)
            .field("state", &self.state())
            .finish_non_exhaustive()
    }
}

impl WorkerNode {
    /// A node around an engine, or around the reason it could not be built.
    pub fn new(
        kind: EngineKind,
        engine: std::result::Result<Arc<dyn Engine>, String>,
        options: &NodeOptions,
    ) -> Arc<Self> {
        let info = engine.as_ref().ok().map(|e| e.info());
        let gpu = Arc::new(Mutex::new(GpuSample::default()));
        if let Some(index) = options.gpu {
            let sample = Arc::downgrade(&gpu);
            let spawned = std::thread::Builder::new()
                .name(format!("gpu-probe-{index}"))
                .spawn(move || {
                    while let Some(slot) = sample.upgrade() {
                        let s = sample_gpu(index).unwrap_or_default();
                        *slot.lock() = s;
                        drop(slot);
                        std::thread::sleep(Duration::from_secs(2));
                    }
                });
            if let Err(e) = spawned {
                tracing::warn!(error = %e, "could not start the GPU probe; GPU use is not reported");
            }
        }
        Arc::new(Self {
            kind,
            engine,
            admission: Admission::new(options.max_concurrency, options.queue_size),
            stopped: AtomicBool::new(false),
            draining: AtomicBool::new(false),
            requests: AtomicU64::new(0),
            audio_us: AtomicU64::new(0),
            errors: AtomicU64::new(0),
            latency: Mutex::new(Ewma::default()),
            first_audio: Mutex::new(Ewma::default()),
            probe: Mutex::new(ResourceProbe::new()),
            changed: Notify::new(),
            info: Mutex::new(info),
            gpu,
            reports: Mutex::new(0),
        })
    }

    /// The engine it hosts.
    pub fn kind(&self) -> EngineKind {
        self.kind
    }

    /// What the engine can do (none when it could not be built).
    pub fn info(&self) -> Option<EngineInfo> {
        self.info.lock().clone()
    }

    /// Requests it takes at once, waiting ones included (what the gateway
    /// may have in flight on it).
    pub fn capacity(&self) -> u32 {
        (self.admission.max_concurrency() + self.admission.queue_size()).min(u32::MAX as usize) as u32
    }

    /// Inference slots.
    pub fn max_concurrency(&self) -> usize {
        self.admission.max_concurrency()
    }

    /// Queue places.
    pub fn queue_size(&self) -> usize {
        self.admission.queue_size()
    }

    /// Resolves when the state may have changed (for prompt heartbeats).
    pub async fn changed(&self) {
        self.changed.notified().await;
    }

    fn notify(&self) {
        self.changed.notify_waiters();
    }

    /// Current state and, for `error`, why.
    pub fn state(&self) -> (WireNodeState, Option<String>) {
        if self.draining.load(Ordering::Acquire) || self.stopped.load(Ordering::Acquire) {
            return (WireNodeState::Stopped, None);
        }
        match &self.engine {
            Err(reason) => (WireNodeState::Error, Some(reason.clone())),
            Ok(e) => match e.state() {
                ModelState::Unloaded => (WireNodeState::Standby, None),
                ModelState::Loading => (WireNodeState::Loading, None),
                ModelState::Failed(r) => (WireNodeState::Error, Some(r)),
                ModelState::Ready => {
                    if self.admission.full() {
                        (WireNodeState::Busy, None)
                    } else {
                        (WireNodeState::Ready, None)
                    }
                }
            },
        }
    }

    /// Current state with its report number. Numbers rise in the order the
    /// state was read (the read and the count share one lock), so of two
    /// reports the higher-numbered one never shows an older state; the
    /// gateway ignores a report older than one it applied.
    pub fn numbered_state(&self) -> (WireNodeState, Option<String>, u64) {
        let mut reports = self.reports.lock();
        let (state, reason) = self.state();
        *reports += 1;
        (state, reason, *reports)
    }

    /// Current metrics.
    pub fn metrics(&self) -> WireNodeMetrics {
        let (cpu, mem) = self.probe.lock().sample();
        let gpu = *self.gpu.lock();
        WireNodeMetrics {
            cpu_percent: cpu,
            memory_bytes: mem,
            gpu_percent: gpu.percent,
            gpu_memory_bytes: gpu.memory_bytes,
            in_flight: self.admission.running() as u32,
            queued: self.admission.waiting() as u32,
            requests: self.requests.load(Ordering::Relaxed),
            errors: self.errors.load(Ordering::Relaxed),
            latency_ewma_ms: self.latency.lock().value,
            first_audio_ewma_ms: self.first_audio.lock().value,
            audio_seconds: self.audio_us.load(Ordering::Acquire) as f64 / 1e6,
        }
    }

    /// The full status.
    pub fn status(&self) -> NodeStatus {
        let (state, reason, seq) = self.numbered_state();
        NodeStatus {
            engine: self.kind,
            state,
            seq: Some(seq),
            reason,
            info: self.info(),
            metrics: self.metrics(),
            capacity: self.capacity(),
        }
    }

    /// Stops taking new work for good (shutdown); in-flight work finishes.
    pub fn drain(&self) {
        self.draining.store(true, Ordering::Release);
        self.notify();
    }

    /// Requests inferring or waiting.
    pub fn busy_requests(&self) -> usize {
        self.admission.running() + self.admission.waiting()
    }

    fn engine(&self) -> Result<&Arc<dyn Engine>> {
        self.engine
            .as_ref()
            .map_err(|reason| Error::ModelNotInstalled(reason.clone()))
    }

    /// The engine, if this node takes work now.
    fn accepting(&self) -> Result<&Arc<dyn Engine>> {
        if self.draining.load(Ordering::Acquire) {
            return Err(Error::NodeUnavailable {
                node: self.kind.to_string(),
                message: "shutting down".into(),
            });
        }
        if self.stopped.load(Ordering::Acquire) {
            return Err(Error::NodeUnavailable {
                node: self.kind.to_string(),
                message: "stopped".into(),
            });
        }
        let engine = self.engine()?;
        match engine.state() {
            ModelState::Ready => Ok(engine),
            ModelState::Unloaded => Err(Error::ModelNotLoaded(format!("{} is in standby", self.kind))),
            ModelState::Loading => Err(Error::ModelNotLoaded(format!("{} is loading", self.kind))),
            ModelState::Failed(r) => Err(Error::ModelLoad(r)),
        }
    }

    fn record(&self, ok: bool, took: Duration) {
        self.requests.fetch_add(1, Ordering::Relaxed);
        if ok {
            self.latency.lock().record(took.as_secs_f64() * 1000.0);
        } else {
            self.errors.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Loads the model and takes work.
    pub async fn activate(&self) -> Result<()> {
        let engine = self.engine()?.clone();
        self.stopped.store(false, Ordering::Release);
        self.notify();
        let r = engine.load().await;
        *self.info.lock() = Some(engine.info());
        self.notify();
        match &r {
            Ok(()) => {
                // Loading freed copies of the weights: give them back now
                // rather than after the allocator's decay time.
                crate::allocator::purge();
                tracing::info!(engine = %self.kind, "model loaded")
            }
            Err(e) => tracing::error!(engine = %self.kind, error = %e, "model failed to load"),
        }
        r
    }

    /// Unloads the model (standby).
    pub async fn standby(&self) -> Result<()> {
        let engine = self.engine()?.clone();
        let r = engine.unload().await;
        self.notify();
        tracing::info!(engine = %self.kind, "model unloaded (standby)");
        r
    }

    /// Stops taking work (the model stays as it is).
    pub fn stop(&self) {
        self.stopped.store(true, Ordering::Release);
        self.notify();
        tracing::info!(engine = %self.kind, "node stopped");
    }

    /// Takes work again after [`stop`](Self::stop).
    pub fn start(&self) {
        self.stopped.store(false, Ordering::Release);
        self.notify();
        tracing::info!(engine = %self.kind, "node started");
    }

    /// Runs a lifecycle action.
    pub async fn act(&self, action: NodeAction) -> Result<NodeStatus> {
        match action {
            NodeAction::Activate => self.activate().await?,
            NodeAction::Standby => self.standby().await?,
            NodeAction::Stop => self.stop(),
            NodeAction::Start => self.start(),
        }
        Ok(self.status())
    }

    fn count_audio(&self, d: Duration) {
        let us = d.as_micros().min(u64::MAX as u128) as u64;
        self.audio_us.fetch_add(us, Ordering::AcqRel);
    }

    /// Speaks a whole request, encoded in `format`. Dropping the returned
    /// future cancels the engine's work before its next sentence.
    pub async fn synthesize_local(
        self: &Arc<Self>,
        request: &SynthesisRequest,
        profile: Option<&VoiceProfile>,
        format: OutputFormat,
    ) -> Result<NodeAudio> {
        // The engine checks the request itself (it knows its language
        // families and limits better than its static facts say).
        let engine = self.accepting()?.clone();
        let slot = self.admission.admit().await?;
        let queue_time = slot.queued_for;
        let started = Instant::now();
        // The engine works in its own task, which holds the slot: when the
        // caller goes away (the client hung up) the guard cancels the work,
        // and the slot stays taken until the engine has actually stopped, so
        // dropped requests cannot get around the concurrency limit.
        let control = SynthesisControl::new();
        let guard = CancelOnDrop(Some(control.clone()));
        let (req, prof, node) = (request.clone(), profile.cloned(), self.clone());
        let work = tokio::spawn(async move {
            let result = engine.synthesize_with(&req, prof.as_ref(), &control).await;
            node.count_audio(control.produced_total());
            drop(slot);
            if control.is_cancelled() {
                tracing::info!(engine = %node.kind, made_seconds = control.produced_total().as_secs_f64(),
                    "whole synthesis cancelled (its caller went away); the engine has stopped");
                node.requests.fetch_add(1, Ordering::Relaxed);
                node.notify();
            }
            result
        });
        let result = work
            .await
            .map_err(|e| Error::Internal(format!("the synthesis task failed: {e}")))
            .and_then(|r| r);
        guard.disarm();
        let inference_time = started.elapsed();
        self.record(result.is_ok(), inference_time);
        let audio = result?;
        let encoded = vctts::encode(&audio, format);
        Ok(NodeAudio {
            content_type: encoded.content_type,
            sample_rate: encoded.sample_rate,
            duration: encoded.duration,
            body: AudioBody::Whole(Bytes::from(encoded.bytes)),
            queue_time,
            inference_time,
        })
    }

    /// Speaks a request as a stream of raw 16-bit PCM chunks.
    pub async fn synthesize_stream_local(
        self: &Arc<Self>,
        request: &SynthesisRequest,
        profile: Option<&VoiceProfile>,
    ) -> Result<NodeStream> {
        let engine = self.accepting()?.clone();
        let info = self.info();
        let slot = self.admission.admit().await?;
        let queue_time = slot.queued_for;
        let started = Instant::now();
        let stream = match engine.synthesize_stream(request, profile).await {
            Ok(s) => s,
            Err(e) => {
                self.record(false, started.elapsed());
                return Err(e);
            }
        };
        let sample_rate = info.map(|i| i.sample_rate).unwrap_or(0);
        let chunks = AccountedStream::started_at(stream, started)
            .observe(StreamCounters { node: self.clone() })
            .hold(slot)
            .map(|item| item.map(|chunk| Bytes::from(encode::pcm_s16le(&chunk.audio.samples))));
        Ok(NodeStream {
            sample_rate,
            queue_time,
            chunks: chunks.boxed(),
        })
    }

    /// Makes a profile of a reference.
    pub async fn extract_local(&self, reference: &ReferenceAudio) -> Result<VoiceProfile> {
        let engine = self.accepting()?.clone();
        let slot = self.admission.admit().await?;
        let started = Instant::now();
        let r = engine.extract_voice(reference).await;
        drop(slot);
        self.record(r.is_ok(), started.elapsed());
        r
    }
}

/// Cancels a whole synthesis when its caller's future is dropped before
/// the answer came.
struct CancelOnDrop(Option<SynthesisControl>);

impl CancelOnDrop {
    /// The answer came: nothing to cancel.
    fn disarm(mut self) {
        self.0 = None;
    }
}

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        if let Some(c) = self.0.take() {
            c.cancel();
        }
    }
}

/// Counts a streamed request on its node: the first-audio latency, and one
/// request when the stream ends (an error when it failed; a reader that went
/// away is a request, not an error).
struct StreamCounters {
    node: Arc<WorkerNode>,
}

impl StreamObserver for StreamCounters {
    fn first_chunk(&mut self, after: Duration) {
        self.node.first_audio.lock().record(after.as_secs_f64() * 1000.0);
    }

    fn finished(&mut self, outcome: StreamOutcome, stats: &StreamStats) {
        self.node.count_audio(stats.audio);
        match outcome {
            StreamOutcome::Completed => self.node.record(true, stats.elapsed),
            StreamOutcome::Failed => self.node.record(false, stats.elapsed),
            StreamOutcome::Abandoned => {
                self.node.requests.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

/// In-process nodes (standalone, or engines configured on a gateway).
#[async_trait]
impl NodeApi for Arc<WorkerNode> {
    async fn synthesize(
        &self,
        _ctx: &CallContext,
        request: &SynthesisRequest,
        profile: Option<&VoiceProfile>,
        format: OutputFormat,
    ) -> Result<NodeAudio> {
        self.synthesize_local(request, profile, format).await
    }

    async fn synthesize_stream(
        &self,
        _ctx: &CallContext,
        request: &SynthesisRequest,
        profile: Option<&VoiceProfile>,
    ) -> Result<NodeStream> {
        self.synthesize_stream_local(request, profile).await
    }

    async fn extract_voice(&self, _ctx: &CallContext, reference: &ReferenceAudio) -> Result<VoiceProfile> {
        self.extract_local(reference).await
    }

    async fn control(&self, _ctx: &CallContext, action: NodeAction) -> Result<NodeStatus> {
        self.act(action).await
    }

    async fn health(&self, _ctx: &CallContext) -> Result<NodeStatus> {
        Ok(self.status())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn broken() -> Arc<WorkerNode> {
        WorkerNode::new(
            EngineKind::Xtts,
            Err("xtts models missing in models/xtts_v2".into()),
            &NodeOptions {
                max_concurrency: 1,
                queue_size: 2,
                gpu: None,
            },
        )
    }

    #[tokio::test]
    async fn a_node_without_engine_reports_error_and_refuses_work() {
        let n = broken();
        assert_eq!(n.state().0, WireNodeState::Error);
        assert!(n.state().1.unwrap().contains("missing"));
        assert_eq!(n.capacity(), 3);
        let e = n
            .synthesize_local(&SynthesisRequest::new("hi"), None, OutputFormat::Wav)
            .await
            .unwrap_err();
        assert_eq!(e.code(), "model_not_installed");
        assert_eq!(n.activate().await.unwrap_err().code(), "model_not_installed");
        assert!(n.info().is_none());
    }

    #[tokio::test]
    async fn stopped_and_draining_nodes_refuse_with_a_retryable_error() {
        let n = broken();
        n.stop();
        assert_eq!(n.state().0, WireNodeState::Stopped);
        let e = n
            .synthesize_local(&SynthesisRequest::new("hi"), None, OutputFormat::Wav)
            .await
            .unwrap_err();
        assert_eq!(e.code(), "node_unavailable");
        assert!(e.retryable());
        n.start();
        assert_eq!(n.state().0, WireNodeState::Error);
        n.drain();
        assert_eq!(n.state().0, WireNodeState::Stopped);
        n.start();
        assert_eq!(n.state().0, WireNodeState::Stopped, "draining is final");
    }

    #[tokio::test]
    async fn every_report_of_the_state_is_numbered_above_the_ones_before() {
        let n = broken();
        n.start();
        let heartbeat = n.status();
        let reply = n.act(NodeAction::Stop).await.unwrap();
        assert_eq!(reply.state, WireNodeState::Stopped);
        assert!(
            reply.seq.unwrap() > heartbeat.seq.unwrap(),
            "the action's reply is newer than a heartbeat built before it"
        );
        let next = n.numbered_state();
        assert_eq!(next.2, reply.seq.unwrap() + 1);
        // From many threads at once, every number is taken once.
        let mut seen: Vec<u64> = std::thread::scope(|s| {
            let hs: Vec<_> = (0..4)
                .map(|_| s.spawn(|| (0..50).map(|_| n.status().seq.unwrap()).collect::<Vec<_>>()))
                .collect();
            hs.into_iter().flat_map(|h| h.join().unwrap()).collect()
        });
        seen.sort_unstable();
        seen.dedup();
        assert_eq!(seen.len(), 200);
        assert!(seen[0] > next.2);
    }

    #[test]
    fn nvidia_smi_lines_parse() {
        assert_eq!(
            parse_nvidia_smi("37, 1024"),
            Some(GpuSample {
                percent: Some(37.0),
                memory_bytes: Some(1 << 30),
            })
        );
        assert_eq!(
            parse_nvidia_smi("[N/A], 512").unwrap().memory_bytes,
            Some(512 << 20)
        );
        assert_eq!(parse_nvidia_smi("garbage"), None);
        assert_eq!(parse_nvidia_smi(""), None);
    }

    #[test]
    fn ewma_moves_toward_samples() {
        let mut e = Ewma::default();
        e.record(100.0);
        assert_eq!(e.value, Some(100.0));
        e.record(200.0);
        assert!((e.value.unwrap() - 120.0).abs() < 1e-9);
    }
}
