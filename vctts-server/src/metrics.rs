//! Prometheus metrics of the server, rendered as text exposition format 0.0.4.
//!
//! One [`Metrics`] value per process holds every family; families are plain
//! fields, so adding one is: declare a field, create it in [`Metrics::new`],
//! and render it in [`Metrics::render`]. Gauges that mirror other state (node
//! states, voice count) are computed at scrape time from a [`ScrapeState`]
//! the caller passes in, so they never go stale.
//!
//! Invariants: label values are escaped; counters only go up; recording is a
//! read-locked map lookup plus an atomic add once a label set exists.

use parking_lot::RwLock;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

fn escape(v: &str) -> String {
    v.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

fn labels_text(names: &[&str], values: &[String]) -> String {
    if names.is_empty() {
        return String::new();
    }
    let parts: Vec<String> = names
        .iter()
        .zip(values)
        .map(|(n, v)| format!("{n}=\"{}\"", escape(v)))
        .collect();
    format!("{{{}}}", parts.join(","))
}

/// A counter family with labels.
#[derive(Debug)]
pub struct CounterVec {
    name: &'static str,
    help: &'static str,
    labels: &'static [&'static str],
    values: RwLock<BTreeMap<Vec<String>, Arc<AtomicU64>>>,
}

impl CounterVec {
    /// A new family.
    pub fn new(name: &'static str, help: &'static str, labels: &'static [&'static str]) -> Self {
        Self {
            name,
            help,
            labels,
            values: RwLock::new(BTreeMap::new()),
        }
    }

    fn cell(&self, values: &[&str]) -> Arc<AtomicU64> {
        debug_assert_eq!(values.len(), self.labels.len(), "{}: label count", self.name);
        let key: Vec<String> = values.iter().map(|s| s.to_string()).collect();
        if let Some(c) = self.values.read().get(&key) {
            return c.clone();
        }
        self.values.write().entry(key).or_default().clone()
    }

    /// Adds one.
    pub fn inc(&self, values: &[&str]) {
        self.add(values, 1);
    }

    /// Adds `n`.
    pub fn add(&self, values: &[&str], n: u64) {
        self.cell(values).fetch_add(n, Ordering::Relaxed);
    }

    /// The current value of one label set.
    pub fn get(&self, values: &[&str]) -> u64 {
        let key: Vec<String> = values.iter().map(|s| s.to_string()).collect();
        self.values
            .read()
            .get(&key)
            .map(|c| c.load(Ordering::Relaxed))
            .unwrap_or(0)
    }

    fn render(&self, out: &mut String) {
        let _ = writeln!(out, "# HELP {} {}", self.name, self.help);
        let _ = writeln!(out, "# TYPE {} counter", self.name);
        for (k, v) in self.values.read().iter() {
            let _ = writeln!(
                out,
                "{}{} {}",
                self.name,
                labels_text(self.labels, k),
                v.load(Ordering::Relaxed)
            );
        }
    }
}

/// A counter of seconds (or any float quantity), stored as micro-units.
#[derive(Debug)]
pub struct FloatCounterVec {
    inner: CounterVec,
}

impl FloatCounterVec {
    /// A new family.
    pub fn new(name: &'static str, help: &'static str, labels: &'static [&'static str]) -> Self {
        Self {
            inner: CounterVec::new(name, help, labels),
        }
    }

    /// Adds a non-negative amount.
    pub fn add(&self, values: &[&str], amount: f64) {
        if amount.is_finite() && amount > 0.0 {
            self.inner.add(values, (amount * 1e6).round() as u64);
        }
    }

    fn render(&self, out: &mut String) {
        let c = &self.inner;
        let _ = writeln!(out, "# HELP {} {}", c.name, c.help);
        let _ = writeln!(out, "# TYPE {} counter", c.name);
        for (k, v) in c.values.read().iter() {
            let _ = writeln!(
                out,
                "{}{} {}",
                c.name,
                labels_text(c.labels, k),
                v.load(Ordering::Relaxed) as f64 / 1e6
            );
        }
    }
}

/// A histogram family with fixed buckets (seconds).
#[derive(Debug)]
pub struct HistogramVec {
    name: &'static str,
    help: &'static str,
    labels: &'static [&'static str],
    buckets: &'static [f64],
    values: RwLock<BTreeMap<Vec<String>, Arc<HistCell>>>,
}

#[derive(Debug)]
struct HistCell {
    counts: Vec<AtomicU64>,
    sum_micros: AtomicU64,
    count: AtomicU64,
}

/// Latency buckets in seconds, from 1 ms to 60 s.
pub const LATENCY_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
];

impl HistogramVec {
    /// A new family.
    pub fn new(
        name: &'static str,
        help: &'static str,
        labels: &'static [&'static str],
        buckets: &'static [f64],
    ) -> Self {
        Self {
            name,
            help,
            labels,
            buckets,
            values: RwLock::new(BTreeMap::new()),
        }
    }

    /// Records one unitless observation (e.g. a real-time factor).
    pub fn observe_value(&self, values: &[&str], v: f64) {
        self.observe(values, Duration::from_secs_f64(v.clamp(0.0, 1e9)));
    }

    /// Records one observation.
    pub fn observe(&self, values: &[&str], d: Duration) {
        let key: Vec<String> = values.iter().map(|s| s.to_string()).collect();
        // Read in its own statement: a guard in the match scrutinee would
        // live into the `None` arm and deadlock against the write lock.
        let existing = self.values.read().get(&key).cloned();
        let cell = match existing {
            Some(c) => c,
            None => self
                .values
                .write()
                .entry(key)
                .or_insert_with(|| {
                    Arc::new(HistCell {
                        counts: self.buckets.iter().map(|_| AtomicU64::new(0)).collect(),
                        sum_micros: AtomicU64::new(0),
                        count: AtomicU64::new(0),
                    })
                })
                .clone(),
        };
        let secs = d.as_secs_f64();
        for (i, b) in self.buckets.iter().enumerate() {
            if secs <= *b {
                cell.counts[i].fetch_add(1, Ordering::Relaxed);
            }
        }
        cell.sum_micros.fetch_add(d.as_micros() as u64, Ordering::Relaxed);
        cell.count.fetch_add(1, Ordering::Relaxed);
    }

    fn render(&self, out: &mut String) {
        let _ = writeln!(out, "# HELP {} {}", self.name, self.help);
        let _ = writeln!(out, "# TYPE {} histogram", self.name);
        for (k, cell) in self.values.read().iter() {
            let base: Vec<String> = self
                .labels
                .iter()
                .zip(k)
                .map(|(n, v)| format!("{n}=\"{}\"", escape(v)))
                .collect();
            for (i, b) in self.buckets.iter().enumerate() {
                let mut l = base.clone();
                l.push(format!("le=\"{b}\""));
                let _ = writeln!(
                    out,
                    "{}_bucket{{{}}} {}",
                    self.name,
                    l.join(","),
                    cell.counts[i].load(Ordering::Relaxed)
                );
            }
            let mut l = base.clone();
            l.push("le=\"+Inf\"".into());
            let count = cell.count.load(Ordering::Relaxed);
            let _ = writeln!(out, "{}_bucket{{{}}} {}", self.name, l.join(","), count);
            let lt = if base.is_empty() {
                String::new()
            } else {
                format!("{{{}}}", base.join(","))
            };
            let _ = writeln!(
                out,
                "{}_sum{} {}",
                self.name,
                lt,
                cell.sum_micros.load(Ordering::Relaxed) as f64 / 1e6
            );
            let _ = writeln!(out, "{}_count{} {}", self.name, lt, count);
        }
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
}

/// Every metric family of the server.
#[derive(Debug)]
pub struct Metrics {
    started: Instant,
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

impl Metrics {
    /// Empty families.
    pub fn new() -> Self {
        Self {
            started: Instant::now(),
            http_requests: CounterVec::new(
                "vctts_http_requests_total",
                "HTTP requests by route, method and status.",
                &["route", "method", "status"],
            ),
            http_duration: HistogramVec::new(
                "vctts_http_request_duration_seconds",
                "Time to the response head, by route.",
                &["route"],
                LATENCY_BUCKETS,
            ),
            syntheses: CounterVec::new(
                "vctts_syntheses_total",
                "Syntheses by engine and outcome (ok or the error code).",
                &["engine", "outcome"],
            ),
            audio_seconds: FloatCounterVec::new(
                "vctts_audio_seconds_total",
                "Seconds of audio produced, by engine.",
                &["engine"],
            ),
            failovers: CounterVec::new(
                "vctts_failovers_total",
                "Node calls retried on another node after a retryable failure, by engine.",
                &["engine"],
            ),
            rate_limited: CounterVec::new(
                "vctts_rate_limited_total",
                "Requests refused by a limiter, by layer.",
                &["layer"],
            ),
            first_audio: HistogramVec::new(
                "vctts_stream_first_audio_seconds",
                "Time from request start to the first audio chunk of a stream, by engine.",
                &["engine"],
                LATENCY_BUCKETS,
            ),
            extractions: CounterVec::new(
                "vctts_voice_extractions_total",
                "Voice extractions by outcome.",
                &["outcome"],
            ),
            rtf: HistogramVec::new(
                "vctts_real_time_factor",
                "Synthesis time divided by audio time of whole syntheses, by engine.",
                &["engine"],
                RTF_BUCKETS,
            ),
            synthesis_duration: HistogramVec::new(
                "vctts_synthesis_duration_seconds",
                "Wall time of whole syntheses (routing included), by engine.",
                &["engine"],
                LATENCY_BUCKETS,
            ),
        }
    }

    /// A JSON summary for the status page: totals and averages.
    pub fn summary(&self, state: &ScrapeState) -> serde_json::Value {
        let requests_total: u64 = self
            .http_requests
            .values
            .read()
            .values()
            .map(|c| c.load(Ordering::Relaxed))
            .sum();
        let (sum, count) = self
            .http_duration
            .values
            .read()
            .values()
            .fold((0u64, 0u64), |(s, c), cell| {
                (
                    s + cell.sum_micros.load(Ordering::Relaxed),
                    c + cell.count.load(Ordering::Relaxed),
                )
            });
        let avg_latency_ms = if count == 0 {
            None
        } else {
            Some(sum as f64 / count as f64 / 1000.0)
        };
        serde_json::json!({
            "uptime_seconds": self.started.elapsed().as_secs_f64(),
            "requests_total": requests_total,
            "in_flight": state.in_flight,
            "queued": state.queued,
            "avg_latency_ms": avg_latency_ms,
            "nodes": state.node_gauges,
            "voices": state.voices,
        })
    }

    /// Renders every family plus the scrape-time gauges.
    pub fn render(&self, state: &ScrapeState) -> String {
        let mut out = String::with_capacity(4096);
        let _ = writeln!(
            out,
            "# HELP vctts_uptime_seconds Seconds since the process started."
        );
        let _ = writeln!(out, "# TYPE vctts_uptime_seconds gauge");
        let _ = writeln!(
            out,
            "vctts_uptime_seconds {}",
            self.started.elapsed().as_secs_f64()
        );
        self.http_requests.render(&mut out);
        self.http_duration.render(&mut out);
        self.syntheses.render(&mut out);
        self.audio_seconds.render(&mut out);
        self.failovers.render(&mut out);
        self.rate_limited.render(&mut out);
        self.first_audio.render(&mut out);
        self.extractions.render(&mut out);
        self.rtf.render(&mut out);
        self.synthesis_duration.render(&mut out);
        let _ = writeln!(
            out,
            "# HELP vctts_in_flight Requests holding a gateway concurrency slot."
        );
        let _ = writeln!(out, "# TYPE vctts_in_flight gauge");
        let _ = writeln!(out, "vctts_in_flight {}", state.in_flight);
        let _ = writeln!(
            out,
            "# HELP vctts_queue_depth Requests waiting for a gateway concurrency slot."
        );
        let _ = writeln!(out, "# TYPE vctts_queue_depth gauge");
        let _ = writeln!(out, "vctts_queue_depth {}", state.queued);
        let _ = writeln!(
            out,
            "# HELP vctts_route_queue_waiting Requests waiting at the gateway for a slot on a full node."
        );
        let _ = writeln!(out, "# TYPE vctts_route_queue_waiting gauge");
        let _ = writeln!(out, "vctts_route_queue_waiting {}", state.route_queued);
        let gauge = |out: &mut String, name: &str, help: &str, rows: Vec<(String, String, f64)>| {
            let _ = writeln!(out, "# HELP {name} {help}");
            let _ = writeln!(out, "# TYPE {name} gauge");
            for (node, engine, v) in rows {
                let _ = writeln!(
                    out,
                    "{name}{{node=\"{}\",engine=\"{}\"}} {v}",
                    escape(&node),
                    escape(&engine)
                );
            }
        };
        let rows = |f: &dyn Fn(&NodeGauges) -> Option<f64>| -> Vec<(String, String, f64)> {
            state
                .node_gauges
                .iter()
                .filter_map(|g| f(g).map(|v| (g.node.clone(), g.engine.clone(), v)))
                .collect()
        };
        gauge(
            &mut out,
            "vctts_node_cpu_percent",
            "CPU use reported by each node.",
            rows(&|g| Some(g.cpu_percent as f64)),
        );
        gauge(
            &mut out,
            "vctts_node_memory_bytes",
            "Resident memory reported by each node.",
            rows(&|g| Some(g.memory_bytes as f64)),
        );
        gauge(
            &mut out,
            "vctts_node_gpu_percent",
            "GPU use reported by each node that has one.",
            rows(&|g| g.gpu_percent.map(f64::from)),
        );
        gauge(
            &mut out,
            "vctts_node_gpu_memory_bytes",
            "GPU memory in use on each node that has a GPU.",
            rows(&|g| g.gpu_memory_bytes.map(|b| b as f64)),
        );
        gauge(
            &mut out,
            "vctts_node_queue",
            "Requests waiting on each node.",
            rows(&|g| Some(g.queue as f64)),
        );
        let _ = writeln!(
            out,
            "# HELP vctts_node_breaker_state Circuit breaker of each node: 1 for its current state."
        );
        let _ = writeln!(out, "# TYPE vctts_node_breaker_state gauge");
        for g in &state.node_gauges {
            for st in ["closed", "half_open", "open"] {
                let v = u8::from(g.breaker == st);
                let _ = writeln!(
                    out,
                    "vctts_node_breaker_state{{node=\"{}\",state=\"{st}\"}} {v}",
                    escape(&g.node)
                );
            }
        }
        let _ = writeln!(out, "# HELP vctts_nodes Registered nodes by engine and state.");
        let _ = writeln!(out, "# TYPE vctts_nodes gauge");
        for ((engine, st), n) in &state.nodes {
            let _ = writeln!(
                out,
                "vctts_nodes{{engine=\"{}\",state=\"{}\"}} {n}",
                escape(engine),
                escape(st)
            );
        }
        let _ = writeln!(out, "# HELP vctts_node_in_flight Requests in flight per node.");
        let _ = writeln!(out, "# TYPE vctts_node_in_flight gauge");
        for (node, n) in &state.node_in_flight {
            let _ = writeln!(out, "vctts_node_in_flight{{node=\"{}\"}} {n}", escape(node));
        }
        if let Some(v) = state.voices {
            let _ = writeln!(out, "# HELP vctts_voices Stored voices.");
            let _ = writeln!(out, "# TYPE vctts_voices gauge");
            let _ = writeln!(out, "vctts_voices {v}");
        }
        out
    }
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

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(
            labels_text(&["a"], &["x\"y\\z\n".into()]),
            "{a=\"x\\\"y\\\\z\\n\"}"
        );
    }
}
