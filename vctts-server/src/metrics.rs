//! Prometheus metrics of the server, on the `prometheus-client` crate and
//! served in its Prometheus text format 0.0.4 encoder.
//!
//! One [`Metrics`] value per process holds every family in a
//! [`prometheus_client::registry::Registry`]; families are fields wrapped in
//! the small label-slice API the handlers use ([`CounterVec`],
//! [`FloatCounterVec`], [`HistogramVec`]), so adding one is: declare a field,
//! create and register it in [`Metrics::new`]. Gauges that mirror other state
//! (node states, voice count) are built at scrape time from a [`ScrapeState`]
//! the caller passes in, so they never go stale. The registry also carries
//! `vctts_build_info` (the crate version, and the git commit when the build
//! set `VCTTS_GIT_COMMIT`) and, on Linux, the standard `process_*` metrics
//! read from `/proc` at each scrape (other systems omit them). The
//! allocator gauges (`vctts_allocator_*_bytes`) are there when the binary
//! installed an allocator probe ([`crate::allocator`]).
//!
//! Invariants: every series name, label and HELP text is the one the server
//! exposed before the move to the crate (dashboards and alerts rely on them);
//! label values are escaped by the encoder; counters only go up; recording is
//! a read-locked map lookup plus an atomic add once a label set exists.

use prometheus_client::encoding::prometheus_text;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::{Family, MetricConstructor};
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::metrics::info::Info;
use prometheus_client::registry::{Metric, Registry};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// The label set of one series: (label name, value) in declaration order.
type Labels = Vec<(&'static str, String)>;

/// Pairs a family's label names with one call's values.
fn label_set(names: &'static [&'static str], values: &[&str]) -> Labels {
    debug_assert_eq!(values.len(), names.len(), "label count");
    names
        .iter()
        .zip(values)
        .map(|(n, v)| (*n, (*v).to_string()))
        .collect()
}

/// Registers `metric` under the series name users see: the crate appends
/// `_total` to counters and a full stop to HELP, so both are taken off here.
fn register(registry: &mut Registry, name: &'static str, help: &'static str, metric: impl Metric) {
    let name = name.strip_suffix("_total").unwrap_or(name);
    let help = help.strip_suffix('.').unwrap_or(help);
    registry.register(name, help, metric);
}

/// A family with labels, registered under the name users see: the part
/// every family wrapper below shares.
#[derive(Debug)]
struct Labelled<M, C = fn() -> M> {
    labels: &'static [&'static str],
    family: Family<Labels, M, C>,
}

impl<M, C> Labelled<M, C>
where
    Family<Labels, M, C>: Metric + Clone,
    C: MetricConstructor<M>,
{
    fn new(
        registry: &mut Registry,
        name: &'static str,
        help: &'static str,
        labels: &'static [&'static str],
        family: Family<Labels, M, C>,
    ) -> Self {
        register(registry, name, help, family.clone());
        Self { labels, family }
    }

    /// The series of one label set, made on first use.
    fn series(&self, values: &[&str]) -> impl std::ops::Deref<Target = M> + '_ {
        self.family.get_or_create(&label_set(self.labels, values))
    }

    /// The series of one label set, if it has been made.
    fn find(&self, values: &[&str]) -> Option<impl std::ops::Deref<Target = M> + '_> {
        self.family.get(&label_set(self.labels, values))
    }
}

/// A counter family with labels.
#[derive(Debug)]
pub struct CounterVec {
    family: Labelled<Counter>,
    /// Sum over every label set, for the status summary.
    total: AtomicU64,
}

impl CounterVec {
    fn new(
        registry: &mut Registry,
        name: &'static str,
        help: &'static str,
        labels: &'static [&'static str],
    ) -> Self {
        Self {
            family: Labelled::new(registry, name, help, labels, Family::default()),
            total: AtomicU64::new(0),
        }
    }

    /// Adds one.
    pub fn inc(&self, values: &[&str]) {
        self.add(values, 1);
    }

    /// Adds `n`.
    pub fn add(&self, values: &[&str], n: u64) {
        self.family.series(values).inc_by(n);
        self.total.fetch_add(n, Ordering::Relaxed);
    }

    /// The current value of one label set.
    pub fn get(&self, values: &[&str]) -> u64 {
        self.family.find(values).map(|c| c.get()).unwrap_or(0)
    }

    /// The sum over every label set.
    pub fn total(&self) -> u64 {
        self.total.load(Ordering::Relaxed)
    }
}

/// A counter of seconds (or any float quantity).
#[derive(Debug)]
pub struct FloatCounterVec {
    family: Labelled<Counter<f64, AtomicU64>>,
}

impl FloatCounterVec {
    fn new(
        registry: &mut Registry,
        name: &'static str,
        help: &'static str,
        labels: &'static [&'static str],
    ) -> Self {
        Self {
            family: Labelled::new(registry, name, help, labels, Family::default()),
        }
    }

    /// Adds a non-negative amount; others are ignored.
    pub fn add(&self, values: &[&str], amount: f64) {
        if amount.is_finite() && amount > 0.0 {
            self.family.series(values).inc_by(amount);
        }
    }

    /// The current value of one label set.
    pub fn get(&self, values: &[&str]) -> f64 {
        self.family.find(values).map(|c| c.get()).unwrap_or(0.0)
    }
}

/// Makes each new series of a histogram family with the family's buckets.
#[derive(Debug, Clone, Copy)]
struct Buckets(&'static [f64]);

impl MetricConstructor<Histogram> for Buckets {
    fn new_metric(&self) -> Histogram {
        Histogram::new(self.0.iter().copied())
    }
}

/// A histogram family with fixed buckets.
#[derive(Debug)]
pub struct HistogramVec {
    family: Labelled<Histogram, Buckets>,
    /// Sum of every observation in microseconds, over every label set.
    sum_micros: AtomicU64,
    /// Observations over every label set.
    count: AtomicU64,
}

/// Latency buckets in seconds, from 1 ms to 60 s.
pub const LATENCY_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
];

impl HistogramVec {
    fn new(
        registry: &mut Registry,
        name: &'static str,
        help: &'static str,
        labels: &'static [&'static str],
        buckets: &'static [f64],
    ) -> Self {
        let family = Family::new_with_constructor(Buckets(buckets));
        Self {
            family: Labelled::new(registry, name, help, labels, family),
            sum_micros: AtomicU64::new(0),
            count: AtomicU64::new(0),
        }
    }

    /// Records one unitless observation (e.g. a real-time factor); a value
    /// that is not a number is ignored, others are clamped to `0..=1e9`.
    pub fn observe_value(&self, values: &[&str], v: f64) {
        if !v.is_nan() {
            self.record(values, v.clamp(0.0, 1e9));
        }
    }

    /// Records one observation.
    pub fn observe(&self, values: &[&str], d: Duration) {
        self.record(values, d.as_secs_f64());
    }

    fn record(&self, values: &[&str], v: f64) {
        self.family.series(values).observe(v);
        self.sum_micros
            .fetch_add((v * 1e6).round() as u64, Ordering::Relaxed);
        self.count.fetch_add(1, Ordering::Relaxed);
    }
}

/// Real-time factor buckets (synthesis time / audio time).
pub const RTF_BUCKETS: &[f64] = &[0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0];

/// One node's gauges at scrape time.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct NodeGauges {
    /// Node id.
    pub node: String,
    /// Its engine.
    pub engine: String,
    /// CPU use reported by the node, percent.
    pub cpu_percent: f32,
    /// Resident memory reported by the node, bytes.
    pub memory_bytes: u64,
    /// GPU use, percent, when the node has one.
    pub gpu_percent: Option<f32>,
    /// GPU memory in use, bytes, when the node has a GPU.
    pub gpu_memory_bytes: Option<u64>,
    /// Requests waiting on the node.
    pub queue: u32,
    /// Breaker state: closed, half_open or open.
    pub breaker: String,
}

/// State read at scrape time for gauges.
#[derive(Debug, Clone, Default)]
pub struct ScrapeState {
    /// Per-node gauges.
    pub node_gauges: Vec<NodeGauges>,
    /// Requests holding a gateway concurrency slot.
    pub in_flight: u32,
    /// Requests waiting for a gateway concurrency slot.
    pub queued: u32,
    /// Requests waiting in the routing queue for a slot on a full node.
    pub route_queued: u32,
    /// Nodes per (engine, state).
    pub nodes: BTreeMap<(String, String), usize>,
    /// Requests in flight per node id.
    pub node_in_flight: BTreeMap<String, u32>,
    /// Stored voices.
    pub voices: Option<usize>,
    /// The global allocator's statistics, when the binary installed a probe
    /// ([`crate::allocator`]).
    pub allocator: Option<crate::allocator::AllocatorStats>,
}

/// The standard `process_*` metrics, read from `/proc` at each scrape through
/// `metrics-process` (the Prometheus Go client's process collector ported to
/// Rust). A value the system does not give is left out.
#[cfg(target_os = "linux")]
#[derive(Debug)]
struct ProcessCollector;

#[cfg(target_os = "linux")]
impl prometheus_client::collector::Collector for ProcessCollector {
    fn encode(
        &self,
        mut encoder: prometheus_client::encoding::DescriptorEncoder,
    ) -> Result<(), std::fmt::Error> {
        use prometheus_client::encoding::EncodeMetric;
        use prometheus_client::metrics::counter::ConstCounter;
        use prometheus_client::metrics::gauge::ConstGauge;
        let p = metrics_process::collector::collect();
        if let Some(v) = p.cpu_seconds_total {
            let c = ConstCounter::new(v);
            c.encode(encoder.encode_descriptor(
                "process_cpu_seconds",
                "Total user and system CPU time spent in seconds.",
                None,
                c.metric_type(),
            )?)?;
        }
        let gauges = [
            (
                "process_resident_memory_bytes",
                "Resident memory size in bytes.",
                p.resident_memory_bytes,
            ),
            (
                "process_virtual_memory_bytes",
                "Virtual memory size in bytes.",
                p.virtual_memory_bytes,
            ),
            ("process_open_fds", "Number of open file descriptors.", p.open_fds),
            (
                "process_max_fds",
                "Maximum number of open file descriptors (0: unlimited).",
                p.max_fds,
            ),
            (
                "process_start_time_seconds",
                "Start time of the process since the Unix epoch in seconds.",
                p.start_time_seconds,
            ),
            (
                "process_threads",
                "Number of OS threads in the process.",
                p.threads,
            ),
        ];
        for (name, help, value) in gauges {
            if let Some(v) = value {
                let g = ConstGauge::new(i64::try_from(v).unwrap_or(i64::MAX));
                g.encode(encoder.encode_descriptor(name, help, None, g.metric_type())?)?;
            }
        }
        Ok(())
    }
}

/// Every metric family of the server.
#[derive(Debug)]
pub struct Metrics {
    started: Instant,
    /// The families below, `vctts_build_info` and the process collector.
    registry: Registry,
    /// HTTP requests by route, method and status.
    pub http_requests: CounterVec,
    /// HTTP request durations by route.
    pub http_duration: HistogramVec,
    /// Syntheses by engine and outcome (`ok`, or the error code).
    pub syntheses: CounterVec,
    /// Seconds of audio produced, by engine.
    pub audio_seconds: FloatCounterVec,
    /// Node calls retried on another node, by engine.
    pub failovers: CounterVec,
    /// Refusals by limiter layer.
    pub rate_limited: CounterVec,
    /// Time from request start to the first audio byte of streams, by engine.
    pub first_audio: HistogramVec,
    /// Voices extracted, by outcome.
    pub extractions: CounterVec,
    /// Real-time factor of whole syntheses, by engine.
    pub rtf: HistogramVec,
    /// Wall time of whole syntheses, by engine.
    pub synthesis_duration: HistogramVec,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

/// The labels of `vctts_build_info`: the crate version, and the git commit
/// when the build environment set `VCTTS_GIT_COMMIT`.
fn build_labels() -> Vec<(&'static str, &'static str)> {
    let mut labels = vec![("version", env!("CARGO_PKG_VERSION"))];
    if let Some(git) = option_env!("VCTTS_GIT_COMMIT").filter(|g| !g.is_empty()) {
        labels.push(("git", git));
    }
    labels
}

impl Metrics {
    /// Empty families, build info and (where supported) process metrics.
    pub fn new() -> Self {
        let mut r = Registry::default();
        let started = Instant::now();
        // Registration order is exposition order: the uptime gauge is added
        // at scrape time, ahead of these.
        let http_requests = CounterVec::new(
            &mut r,
            "vctts_http_requests_total",
            "HTTP requests by route, method and status.",
            &["route", "method", "status"],
        );
        let http_duration = HistogramVec::new(
            &mut r,
            "vctts_http_request_duration_seconds",
            "Time to the response head, by route.",
            &["route"],
            LATENCY_BUCKETS,
        );
        let syntheses = CounterVec::new(
            &mut r,
            "vctts_syntheses_total",
            "Syntheses by engine and outcome (ok or the error code).",
            &["engine", "outcome"],
        );
        let audio_seconds = FloatCounterVec::new(
            &mut r,
            "vctts_audio_seconds_total",
            "Seconds of audio produced, by engine.",
            &["engine"],
        );
        let failovers = CounterVec::new(
            &mut r,
            "vctts_failovers_total",
            "Node calls retried on another node after a retryable failure, by engine.",
            &["engine"],
        );
        let rate_limited = CounterVec::new(
            &mut r,
            "vctts_rate_limited_total",
            "Requests refused by a limiter, by layer.",
            &["layer"],
        );
        let first_audio = HistogramVec::new(
            &mut r,
            "vctts_stream_first_audio_seconds",
            "Time from request start to the first audio chunk of a stream, by engine.",
            &["engine"],
            LATENCY_BUCKETS,
        );
        let extractions = CounterVec::new(
            &mut r,
            "vctts_voice_extractions_total",
            "Voice extractions by outcome.",
            &["outcome"],
        );
        let rtf = HistogramVec::new(
            &mut r,
            "vctts_real_time_factor",
            "Synthesis time divided by audio time of whole syntheses, by engine.",
            &["engine"],
            RTF_BUCKETS,
        );
        let synthesis_duration = HistogramVec::new(
            &mut r,
            "vctts_synthesis_duration_seconds",
            "Wall time of whole syntheses (routing included), by engine.",
            &["engine"],
            LATENCY_BUCKETS,
        );
        r.register(
            "vctts_build",
            "Build of the running server: always 1, the version in its labels",
            Info::new(build_labels()),
        );
        #[cfg(target_os = "linux")]
        r.register_collector(Box::new(ProcessCollector));
        Self {
            started,
            registry: r,
            http_requests,
            http_duration,
            syntheses,
            audio_seconds,
            failovers,
            rate_limited,
            first_audio,
            extractions,
            rtf,
            synthesis_duration,
        }
    }

    /// A JSON summary for the status page: totals and averages.
    pub fn summary(&self, state: &ScrapeState) -> serde_json::Value {
        let count = self.http_duration.count.load(Ordering::Relaxed);
        let sum = self.http_duration.sum_micros.load(Ordering::Relaxed);
        let avg_latency_ms = if count == 0 {
            None
        } else {
            Some(sum as f64 / count as f64 / 1000.0)
        };
        serde_json::json!({
            "uptime_seconds": self.started.elapsed().as_secs_f64(),
            "requests_total": self.http_requests.total(),
            "in_flight": state.in_flight,
            "queued": state.queued,
            "avg_latency_ms": avg_latency_ms,
            "nodes": state.node_gauges,
            "voices": state.voices,
        })
    }

    /// Renders the uptime, every family, the build info, the process metrics
    /// and the scrape-time gauges of `state`, in the Prometheus text format
    /// 0.0.4 ([`prometheus_text::CONTENT_TYPE`]).
    pub fn render(&self, state: &ScrapeState) -> String {
        let mut out = String::with_capacity(8192);
        let mut head = Registry::default();
        let uptime = Gauge::<f64, AtomicU64>::default();
        uptime.set(self.started.elapsed().as_secs_f64());
        register(
            &mut head,
            "vctts_uptime_seconds",
            "Seconds since the process started.",
            uptime,
        );
        // Writing into a String cannot fail.
        let _ = prometheus_text::encode(&mut out, &head);
        let _ = prometheus_text::encode(&mut out, &self.registry);
        let _ = prometheus_text::encode(&mut out, &scrape_registry(state));
        out
    }
}

/// A gauge family with labels whose series are set once, at scrape time.
fn int_family(
    r: &mut Registry,
    name: &'static str,
    help: &'static str,
    rows: impl IntoIterator<Item = (Labels, i64)>,
) {
    let family: Family<Labels, Gauge> = Family::default();
    for (labels, v) in rows {
        family.get_or_create(&labels).set(v);
    }
    register(r, name, help, family);
}

/// [`int_family`] for fractional values.
fn float_family(
    r: &mut Registry,
    name: &'static str,
    help: &'static str,
    rows: impl IntoIterator<Item = (Labels, f64)>,
) {
    let family: Family<Labels, Gauge<f64, AtomicU64>> = Family::default();
    for (labels, v) in rows {
        family.get_or_create(&labels).set(v);
    }
    register(r, name, help, family);
}

/// A gauge without labels, set once, at scrape time.
fn int_gauge(r: &mut Registry, name: &'static str, help: &'static str, v: i64) {
    let g: Gauge = Gauge::default();
    g.set(v);
    register(r, name, help, g);
}

/// The gauges that mirror `state`.
fn scrape_registry(state: &ScrapeState) -> Registry {
    let mut r = Registry::default();
    int_gauge(
        &mut r,
        "vctts_in_flight",
        "Requests holding a gateway concurrency slot.",
        i64::from(state.in_flight),
    );
    int_gauge(
        &mut r,
        "vctts_queue_depth",
        "Requests waiting for a gateway concurrency slot.",
        i64::from(state.queued),
    );
    int_gauge(
        &mut r,
        "vctts_route_queue_waiting",
        "Requests waiting at the gateway for a slot on a full node.",
        i64::from(state.route_queued),
    );
    let node = |g: &NodeGauges| vec![("node", g.node.clone()), ("engine", g.engine.clone())];
    let nodes = &state.node_gauges;
    float_family(
        &mut r,
        "vctts_node_cpu_percent",
        "CPU use reported by each node.",
        nodes.iter().map(|g| (node(g), f64::from(g.cpu_percent))),
    );
    int_family(
        &mut r,
        "vctts_node_memory_bytes",
        "Resident memory reported by each node.",
        nodes.iter().map(|g| (node(g), saturating_i64(g.memory_bytes))),
    );
    float_family(
        &mut r,
        "vctts_node_gpu_percent",
        "GPU use reported by each node that has one.",
        nodes
            .iter()
            .filter_map(|g| g.gpu_percent.map(|v| (node(g), f64::from(v)))),
    );
    int_family(
        &mut r,
        "vctts_node_gpu_memory_bytes",
        "GPU memory in use on each node that has a GPU.",
        nodes
            .iter()
            .filter_map(|g| g.gpu_memory_bytes.map(|v| (node(g), saturating_i64(v)))),
    );
    int_family(
        &mut r,
        "vctts_node_queue",
        "Requests waiting on each node.",
        nodes.iter().map(|g| (node(g), i64::from(g.queue))),
    );
    int_family(
        &mut r,
        "vctts_node_breaker_state",
        "Circuit breaker of each node: 1 for its current state.",
        nodes.iter().flat_map(|g| {
            ["closed", "half_open", "open"].map(|st| {
                (
                    vec![("node", g.node.clone()), ("state", st.to_string())],
                    i64::from(g.breaker == st),
                )
            })
        }),
    );
    int_family(
        &mut r,
        "vctts_nodes",
        "Registered nodes by engine and state.",
        state.nodes.iter().map(|((engine, st), n)| {
            (
                vec![("engine", engine.clone()), ("state", st.clone())],
                saturating_i64(*n as u64),
            )
        }),
    );
    int_family(
        &mut r,
        "vctts_node_in_flight",
        "Requests in flight per node.",
        state
            .node_in_flight
            .iter()
            .map(|(node, n)| (vec![("node", node.clone())], i64::from(*n))),
    );
    if let Some(v) = state.voices {
        int_gauge(&mut r, "vctts_voices", "Stored voices.", saturating_i64(v as u64));
    }
    if let Some(a) = state.allocator {
        int_gauge(
            &mut r,
            "vctts_allocator_allocated_bytes",
            "Bytes the process holds in blocks of its global allocator (the live heap).",
            saturating_i64(a.allocated),
        );
        int_gauge(
            &mut r,
            "vctts_allocator_resident_bytes",
            "Bytes of the global allocator's pages resident in RAM (live, free and metadata).",
            saturating_i64(a.resident),
        );
    }
    r
}

fn saturating_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_gauges_rtf_and_summary() {
        let m = Metrics::new();
        m.rtf.observe_value(&["openvoice"], 0.04);
        m.synthesis_duration
            .observe(&["openvoice"], Duration::from_millis(120));
        m.http_requests.inc(&["/api/v3/synthesize", "POST", "200"]);
        m.http_duration
            .observe(&["/api/v3/synthesize"], Duration::from_millis(100));
        let state = ScrapeState {
            node_gauges: vec![NodeGauges {
                node: "n1".into(),
                engine: "openvoice".into(),
                cpu_percent: 12.5,
                memory_bytes: 1000,
                gpu_percent: None,
                gpu_memory_bytes: None,
                queue: 3,
                breaker: "open".into(),
            }],
            in_flight: 2,
            queued: 1,
            ..Default::default()
        };
        let text = m.render(&state);
        let lines = text.lines().map(|l| Ok(l.to_string()));
        let scrape = prometheus_parse::Scrape::parse(lines).expect("valid exposition");
        let value = |name: &str, label: Option<(&str, &str)>| {
            scrape
                .samples
                .iter()
                .find(|s| s.metric == name && label.is_none_or(|(k, v)| s.labels.get(k) == Some(v)))
                .map(|s| match s.value {
                    prometheus_parse::Value::Gauge(v) | prometheus_parse::Value::Counter(v) => v,
                    _ => f64::NAN,
                })
        };
        assert_eq!(value("vctts_node_queue", Some(("node", "n1"))), Some(3.0));
        assert_eq!(value("vctts_node_cpu_percent", Some(("node", "n1"))), Some(12.5));
        assert_eq!(
            value("vctts_node_breaker_state", Some(("state", "open"))),
            Some(1.0)
        );
        assert_eq!(
            value("vctts_node_breaker_state", Some(("state", "closed"))),
            Some(0.0)
        );
        assert_eq!(value("vctts_in_flight", None), Some(2.0));
        assert_eq!(value("vctts_queue_depth", None), Some(1.0));
        assert!(value("vctts_node_gpu_percent", Some(("node", "n1"))).is_none());
        assert!(
            scrape
                .samples
                .iter()
                .any(|s| s.metric == "vctts_real_time_factor_count")
        );
        let j = m.summary(&state);
        assert_eq!(j["requests_total"], 1);
        assert_eq!(j["in_flight"], 2);
        assert!((j["avg_latency_ms"].as_f64().unwrap() - 100.0).abs() < 0.5);
    }

    #[test]
    fn renders_counters_histograms_and_gauges() {
        let m = Metrics::new();
        m.http_requests.inc(&["/api/v3/health", "GET", "200"]);
        m.http_requests.inc(&["/api/v3/health", "GET", "200"]);
        m.http_duration
            .observe(&["/api/v3/health"], Duration::from_millis(3));
        m.audio_seconds.add(&["openvoice"], 1.25);
        m.rate_limited.inc(&["ip"]);
        let mut st = ScrapeState::default();
        st.nodes.insert(("openvoice".into(), "ready".into()), 2);
        st.voices = Some(3);
        let text = m.render(&st);
        assert!(
            text.contains(
                "vctts_http_requests_total{route=\"/api/v3/health\",method=\"GET\",status=\"200\"} 2"
            )
        );
        assert!(
            text.contains(
                "vctts_http_request_duration_seconds_bucket{route=\"/api/v3/health\",le=\"0.005\"} 1"
            )
        );
        assert!(text.contains(
            "vctts_http_request_duration_seconds_bucket{route=\"/api/v3/health\",le=\"0.0025\"} 0"
        ));
        assert!(text.contains("vctts_http_request_duration_seconds_count{route=\"/api/v3/health\"} 1"));
        assert!(text.contains("vctts_audio_seconds_total{engine=\"openvoice\"} 1.25"));
        assert!(text.contains("vctts_nodes{engine=\"openvoice\",state=\"ready\"} 2"));
        assert!(text.contains("vctts_voices 3"));
        assert!(text.contains("vctts_rate_limited_total{layer=\"ip\"} 1"));
        assert_eq!(m.http_requests.get(&["/api/v3/health", "GET", "200"]), 2);
    }

    /// Scrapes `m` and parses the text back.
    fn scrape(m: &Metrics, st: &ScrapeState) -> (String, prometheus_parse::Scrape) {
        let text = m.render(st);
        let lines = text.lines().map(|l| Ok(l.to_string()));
        let scrape = prometheus_parse::Scrape::parse(lines).expect("valid exposition");
        (text, scrape)
    }

    #[test]
    fn label_values_are_escaped() {
        let m = Metrics::new();
        m.http_requests.inc(&["x\"y\\z\nw", "GET", "200"]);
        let (text, scrape) = scrape(&m, &ScrapeState::default());
        assert!(
            text.contains(
                "vctts_http_requests_total{route=\"x\\\"y\\\\z\\nw\",method=\"GET\",status=\"200\"} 1"
            ),
            "{text}"
        );
        assert!(
            scrape
                .samples
                .iter()
                .any(|s| s.metric == "vctts_http_requests_total")
        );
    }

    /// Every family keeps the name, type and HELP text it had before the
    /// move to `prometheus-client`: dashboards and alerts read these. (A
    /// family with no series yet is left out of the exposition, so each gets
    /// one here.)
    #[test]
    fn names_types_and_help_are_unchanged() {
        let m = Metrics::new();
        let d = Duration::from_millis(5);
        m.http_requests.inc(&["/r", "GET", "200"]);
        m.http_duration.observe(&["/r"], d);
        m.syntheses.inc(&["openvoice", "ok"]);
        m.audio_seconds.add(&["openvoice"], 1.0);
        m.failovers.inc(&["openvoice"]);
        m.rate_limited.inc(&["ip"]);
        m.first_audio.observe(&["openvoice"], d);
        m.extractions.inc(&["ok"]);
        m.rtf.observe_value(&["openvoice"], 0.1);
        m.synthesis_duration.observe(&["openvoice"], d);
        let st = ScrapeState {
            node_gauges: vec![NodeGauges {
                node: "n1".into(),
                engine: "openvoice".into(),
                gpu_percent: Some(50.0),
                gpu_memory_bytes: Some(1 << 30),
                breaker: "closed".into(),
                ..Default::default()
            }],
            nodes: [(("openvoice".to_string(), "ready".to_string()), 1)].into(),
            node_in_flight: [("n1".to_string(), 0)].into(),
            voices: Some(0),
            allocator: Some(crate::allocator::AllocatorStats {
                allocated: 1,
                resident: 2,
            }),
            ..Default::default()
        };
        let text = m.render(&st);
        let expected = [
            (
                "vctts_uptime_seconds",
                "gauge",
                "Seconds since the process started.",
            ),
            (
                "vctts_http_requests_total",
                "counter",
                "HTTP requests by route, method and status.",
            ),
            (
                "vctts_http_request_duration_seconds",
                "histogram",
                "Time to the response head, by route.",
            ),
            (
                "vctts_syntheses_total",
                "counter",
                "Syntheses by engine and outcome (ok or the error code).",
            ),
            (
                "vctts_audio_seconds_total",
                "counter",
                "Seconds of audio produced, by engine.",
            ),
            (
                "vctts_failovers_total",
                "counter",
                "Node calls retried on another node after a retryable failure, by engine.",
            ),
            (
                "vctts_rate_limited_total",
                "counter",
                "Requests refused by a limiter, by layer.",
            ),
            (
                "vctts_stream_first_audio_seconds",
                "histogram",
                "Time from request start to the first audio chunk of a stream, by engine.",
            ),
            (
                "vctts_voice_extractions_total",
                "counter",
                "Voice extractions by outcome.",
            ),
            (
                "vctts_real_time_factor",
                "histogram",
                "Synthesis time divided by audio time of whole syntheses, by engine.",
            ),
            (
                "vctts_synthesis_duration_seconds",
                "histogram",
                "Wall time of whole syntheses (routing included), by engine.",
            ),
            (
                "vctts_in_flight",
                "gauge",
                "Requests holding a gateway concurrency slot.",
            ),
            (
                "vctts_queue_depth",
                "gauge",
                "Requests waiting for a gateway concurrency slot.",
            ),
            (
                "vctts_route_queue_waiting",
                "gauge",
                "Requests waiting at the gateway for a slot on a full node.",
            ),
            (
                "vctts_node_cpu_percent",
                "gauge",
                "CPU use reported by each node.",
            ),
            (
                "vctts_node_memory_bytes",
                "gauge",
                "Resident memory reported by each node.",
            ),
            (
                "vctts_node_gpu_percent",
                "gauge",
                "GPU use reported by each node that has one.",
            ),
            (
                "vctts_node_gpu_memory_bytes",
                "gauge",
                "GPU memory in use on each node that has a GPU.",
            ),
            ("vctts_node_queue", "gauge", "Requests waiting on each node."),
            (
                "vctts_node_breaker_state",
                "gauge",
                "Circuit breaker of each node: 1 for its current state.",
            ),
            ("vctts_nodes", "gauge", "Registered nodes by engine and state."),
            ("vctts_node_in_flight", "gauge", "Requests in flight per node."),
            ("vctts_voices", "gauge", "Stored voices."),
            (
                "vctts_allocator_allocated_bytes",
                "gauge",
                "Bytes the process holds in blocks of its global allocator (the live heap).",
            ),
            (
                "vctts_allocator_resident_bytes",
                "gauge",
                "Bytes of the global allocator's pages resident in RAM (live, free and metadata).",
            ),
            (
                "vctts_build_info",
                "gauge",
                "Build of the running server: always 1, the version in its labels.",
            ),
        ];
        for (name, kind, help) in expected {
            assert!(
                text.contains(&format!("# HELP {name} {help}\n")),
                "{name}: {text}"
            );
            assert!(
                text.contains(&format!("# TYPE {name} {kind}\n")),
                "{name}: {text}"
            );
        }
    }

    #[test]
    fn allocator_gauges_only_with_a_probe_reading() {
        let m = Metrics::new();
        let (text, _) = scrape(&m, &ScrapeState::default());
        assert!(!text.contains("vctts_allocator_"), "{text}");
        let st = ScrapeState {
            allocator: Some(crate::allocator::AllocatorStats {
                allocated: 40 << 20,
                resident: 52 << 20,
            }),
            ..Default::default()
        };
        let (text, scrape) = scrape(&m, &st);
        let value = |name: &str| {
            scrape
                .samples
                .iter()
                .find(|s| s.metric == name)
                .map(|s| s.value.clone())
                .unwrap_or_else(|| panic!("{name} missing: {text}"))
        };
        assert_eq!(
            value("vctts_allocator_allocated_bytes"),
            prometheus_parse::Value::Gauge((40u64 << 20) as f64)
        );
        assert_eq!(
            value("vctts_allocator_resident_bytes"),
            prometheus_parse::Value::Gauge((52u64 << 20) as f64)
        );
    }

    #[test]
    fn build_info_carries_the_version() {
        let (_, scrape) = scrape(&Metrics::new(), &ScrapeState::default());
        let info = scrape
            .samples
            .iter()
            .find(|s| s.metric == "vctts_build_info")
            .expect("vctts_build_info");
        assert_eq!(info.labels.get("version"), Some(env!("CARGO_PKG_VERSION")));
        assert!(matches!(info.value, prometheus_parse::Value::Gauge(v) if v == 1.0));
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn process_metrics_describe_this_process() {
        let (text, scrape) = scrape(&Metrics::new(), &ScrapeState::default());
        let value = |name: &str| {
            scrape
                .samples
                .iter()
                .find(|s| s.metric == name)
                .map(|s| match s.value {
                    prometheus_parse::Value::Gauge(v) | prometheus_parse::Value::Counter(v) => v,
                    _ => f64::NAN,
                })
                .unwrap_or_else(|| panic!("{name} missing: {text}"))
        };
        assert!(text.contains("# TYPE process_cpu_seconds_total counter\n"));
        assert!(value("process_cpu_seconds_total") >= 0.0);
        assert!(value("process_resident_memory_bytes") > 0.0);
        assert!(value("process_virtual_memory_bytes") >= value("process_resident_memory_bytes"));
        // The test binary has at least stdin, stdout and stderr open.
        assert!(value("process_open_fds") >= 3.0);
        let max = value("process_max_fds");
        assert!(max == 0.0 || max >= value("process_open_fds"));
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs_f64();
        let start = value("process_start_time_seconds");
        assert!(start > 1.0e9 && start <= now + 1.0, "{start} vs {now}");
    }
}
