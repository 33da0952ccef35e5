//! The shared limiter: the rate layers of [`vctts_core::limit`] (per IP, per
//! API key, per endpoint, global) counted in Redis, so that every gateway
//! behind one load balancer spends the same budgets.
//!
//! Each decision is one atomic Lua script (GCRA, like governor's): for each
//! layer in the local limiter's order — IP, key, endpoint, global — it reads
//! the layer's theoretical arrival time (TAT), refuses with the wait until
//! the request would conform, or stores the new TAT (expiring when it no
//! longer matters) and goes on. Time is Redis's own clock (`TIME`), so the
//! gateways' clocks need not agree.
//!
//! Invariants:
//! - the same semantics as the local limiter: rates from the limiter
//!   configuration in force (live settings included, read from the local
//!   limiter at each decision), 0 rpm = no limit, a missing burst = one
//!   minute's worth, a request refused by a layer has used one unit of the
//!   layers checked before it, IPv6 clients limited per /64; a layer's key
//!   names its rate, so a changed rate starts fresh as it does locally;
//! - API keys are stored in Redis only as a SHA-256 digest of their limit id;
//! - when Redis cannot be reached (or does not answer within the timeout)
//!   the decision is made by the local limiter instead: traffic is neither
//!   refused wholesale nor let through unlimited. The switch is logged at
//!   WARN once when it happens and at INFO when Redis is back, and is visible
//!   through [`SharedLimiter::degraded`]; while degraded, Redis is tried again
//!   at most once per `retry_interval`, so a dead Redis does not add its
//!   timeout to every request;
//! - the concurrency cap and the node layer stay local: they protect this
//!   gateway and the nodes it calls.

use parking_lot::Mutex;
use sha2::{Digest, Sha256};
use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};
use vctts_core::error::LimitLayer;
use vctts_core::limit::{LimitRequest, Limiter, LimiterConfig, Refusal};

/// The GCRA script. KEYS: one per layer, in order. ARGV: per layer, its
/// emission interval in microseconds and its burst. Returns `{0, 0}` when
/// every layer passed, else `{i, wait_us}` for the first refusing layer.
pub const GCRA_SCRIPT: &str = r#"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
for i, key in ipairs(KEYS) do
  local interval = tonumber(ARGV[2 * i - 1])
  local burst = tonumber(ARGV[2 * i])
  local tat = tonumber(redis.call('GET', key) or '0') or 0
  if tat < now then tat = now end
  local new_tat = tat + interval
  local allow_at = new_tat - burst * interval
  if allow_at > now then
    return {i, allow_at - now}
  end
  local ttl_ms = math.floor((new_tat - now) / 1000) + 1
  redis.call('SET', key, string.format('%.0f', new_tat), 'PX', ttl_ms)
end
return {0, 0}
"#;

/// Why Redis gave no decision.
#[derive(Debug, thiserror::Error)]
enum SharedError {
    #[error(transparent)]
    Redis(#[from] redis::RedisError),
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    #[error("{0}")]
    Protocol(String),
}

/// Settings of the shared limiter.
#[derive(Debug, Clone)]
pub struct SharedLimiterOptions {
    /// Prefix of every Redis key (several services may share one Redis).
    pub prefix: String,
    /// Deadline of one decision in Redis, connecting included.
    pub timeout: Duration,
    /// While degraded, how often Redis is tried again.
    pub retry_interval: Duration,
}

impl Default for SharedLimiterOptions {
    fn default() -> Self {
        Self {
            prefix: "vctts:rl".into(),
            timeout: Duration::from_millis(250),
            retry_interval: Duration::from_secs(1),
        }
    }
}

/// One layer of a decision.
#[derive(Debug, Clone, PartialEq)]
struct Layer {
    layer: LimitLayer,
    rpm: u32,
    key: String,
    interval_us: u64,
    burst: u32,
}

/// The shared limiter of one gateway: one multiplexed connection (the
/// `redis` crate pipelines concurrent calls on it), dropped and made again
/// after a failure.
pub struct SharedLimiter {
    client: redis::Client,
    addr: String,
    connection: tokio::sync::Mutex<Option<redis::aio::MultiplexedConnection>>,
    script: redis::Script,
    local: Arc<Limiter>,
    opts: SharedLimiterOptions,
    degraded: AtomicBool,
    retry_at: Mutex<Option<Instant>>,
    fallbacks: AtomicU64,
}

/// The key a client IP is limited under (as the local limiter: IPv4 as is,
/// IPv4-mapped IPv6 as IPv4, other IPv6 by /64).
fn ip_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6((u128::from(v6) & !((1u128 << 64) - 1)).into()),
        },
    }
}

/// The layers a request goes through, in order, under `config`.
fn layers(prefix: &str, config: &LimiterConfig, req: &LimitRequest<'_>) -> Vec<Layer> {
    let mut out = Vec::new();
    let mut push = |layer: LimitLayer, rpm: u32, burst: Option<u32>, name: String| {
        if rpm == 0 {
            return;
        }
        let burst = burst.filter(|b| *b > 0).unwrap_or(rpm);
        out.push(Layer {
            layer,
            rpm,
            key: format!("{prefix}:{}:{rpm}:{burst}:{name}", layer.as_str()),
            interval_us: (60_000_000u64 / rpm as u64).max(1),
            burst,
        });
    };
    if let Some(ip) = req.ip {
        push(
            LimitLayer::Ip,
            config.ip_rpm,
            config.ip_burst,
            ip_key(ip).to_string(),
        );
    }
    if let Some((key, rpm)) = req.key {
        let digest = hex::encode(Sha256::digest(key.as_bytes()));
        push(LimitLayer::Key, rpm, None, digest);
    }
    if let Some(&rpm) = config.endpoint_rpm.get(req.endpoint) {
        push(LimitLayer::Endpoint, rpm, None, req.endpoint.to_string());
    }
    push(
        LimitLayer::Global,
        config.global_rpm,
        config.global_burst,
        "all".into(),
    );
    out
}

impl std::fmt::Debug for SharedLimiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedLimiter")
            .field("redis", &self.addr)
            .field("degraded", &self.degraded())
            .finish_non_exhaustive()
    }
}

impl SharedLimiter {
    /// A shared limiter on Redis at `url`, falling back to `local` (whose
    /// configuration it also follows). Connects lazily: a Redis that is down
    /// at start is a fallback, not a failure to start.
    pub fn new(url: &str, local: Arc<Limiter>, opts: SharedLimiterOptions) -> vctts_core::Result<Self> {
        let client = redis::Client::open(url)
            .map_err(|e| vctts_core::Error::Config(format!("limiter.redis_url: {e}")))?;
        let addr = client.get_connection_info().addr().to_string();
        Ok(Self {
            client,
            addr,
            connection: tokio::sync::Mutex::new(None),
            script: redis::Script::new(GCRA_SCRIPT),
            local,
            opts,
            degraded: AtomicBool::new(false),
            retry_at: Mutex::new(None),
            fallbacks: AtomicU64::new(0),
        })
    }

    /// Whether decisions are being made locally because Redis is unreachable.
    pub fn degraded(&self) -> bool {
        self.degraded.load(Ordering::Acquire)
    }

    /// Decisions made by the local limiter because Redis was unreachable.
    pub fn fallbacks(&self) -> u64 {
        self.fallbacks.load(Ordering::Relaxed)
    }

    /// Where the shared budgets live.
    pub fn redis_addr(&self) -> &str {
        &self.addr
    }

    /// Checks a request against the IP, key, endpoint and global layers,
    /// across every gateway, and counts it in each layer it passes.
    pub async fn check(&self, req: &LimitRequest<'_>) -> Result<(), Refusal> {
        let config = self.local.config();
        if !config.enabled {
            return Ok(());
        }
        let layers = layers(&self.opts.prefix, &config, req);
        if layers.is_empty() {
            return Ok(());
        }
        if self.waiting_to_retry() {
            return self.fallback(req);
        }
        match self.eval(&layers).await {
            Ok(decision) => {
                self.recovered();
                decision
            }
            Err(e) => {
                self.failed(&e);
                self.fallback(req)
            }
        }
    }

    fn fallback(&self, req: &LimitRequest<'_>) -> Result<(), Refusal> {
        self.fallbacks.fetch_add(1, Ordering::Relaxed);
        self.local.check(req)
    }

    fn waiting_to_retry(&self) -> bool {
        if !self.degraded() {
            return false;
        }
        let mut at = self.retry_at.lock();
        match *at {
            Some(t) if Instant::now() < t => true,
            _ => {
                // This request probes Redis; the others wait for its result.
                *at = Some(Instant::now() + self.opts.retry_interval);
                false
            }
        }
    }

    fn failed(&self, e: &SharedError) {
        *self.retry_at.lock() = Some(Instant::now() + self.opts.retry_interval);
        if !self.degraded.swap(true, Ordering::AcqRel) {
            tracing::warn!(
                redis = %self.addr,
                error = %e,
                "the shared rate limiter's Redis is unreachable: limiting with this gateway's local limiter until it is back"
            );
        }
    }

    fn recovered(&self) {
        if self.degraded.swap(false, Ordering::AcqRel) {
            tracing::info!(
                redis = %self.addr,
                "the shared rate limiter's Redis is reachable again: limits are shared across gateways again"
            );
        }
    }

    /// The connection, made on first use or after a failure dropped it.
    async fn connect(&self) -> Result<redis::aio::MultiplexedConnection, SharedError> {
        let mut slot = self.connection.lock().await;
        if let Some(c) = slot.as_ref() {
            return Ok(c.clone());
        }
        let c = self.client.get_multiplexed_async_connection().await?;
        *slot = Some(c.clone());
        Ok(c)
    }

    /// Runs the script (EVALSHA, loading it on NOSCRIPT) within the timeout,
    /// connecting included; a failed connection is dropped.
    async fn eval(&self, layers: &[Layer]) -> Result<Result<(), Refusal>, SharedError> {
        let call = async {
            let mut c = self.connect().await?;
            let mut invocation = self.script.prepare_invoke();
            for l in layers {
                invocation.key(&l.key);
            }
            for l in layers {
                invocation.arg(l.interval_us).arg(l.burst);
            }
            Ok::<(i64, i64), SharedError>(invocation.invoke_async(&mut c).await?)
        };
        let reply = match tokio::time::timeout(self.opts.timeout, call).await {
            Ok(Ok(reply)) => reply,
            Ok(Err(e)) => {
                *self.connection.lock().await = None;
                return Err(e);
            }
            Err(_) => {
                *self.connection.lock().await = None;
                return Err(SharedError::Timeout(self.opts.timeout));
            }
        };
        let (i, wait_us) = reply;
        if i == 0 {
            return Ok(Ok(()));
        }
        let layer = usize::try_from(i - 1)
            .ok()
            .and_then(|i| layers.get(i))
            .ok_or_else(|| SharedError::Protocol(format!("the limiter script named layer {i}")))?;
        Ok(Err(Refusal {
            layer: layer.layer,
            retry_after: Duration::from_micros(wait_us.max(0) as u64),
            limit_rpm: layer.rpm,
            remaining: 0,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    #[test]
    fn layers_follow_the_local_order_and_rates() {
        let config = LimiterConfig {
            global_rpm: 1000,
            ip_rpm: 120,
            ip_burst: Some(2),
            endpoint_rpm: BTreeMap::from([("/api/v3/synthesize".to_string(), 30)]),
            ..LimiterConfig::default()
        };
        let req = LimitRequest {
            ip: Some("2001:db8:1:2::7".parse().unwrap()),
            endpoint: "/api/v3/synthesize",
            key: Some(("key-1", 60)),
        };
        let l = layers("p", &config, &req);
        let names: Vec<_> = l.iter().map(|l| l.layer).collect();
        assert_eq!(
            names,
            vec![
                LimitLayer::Ip,
                LimitLayer::Key,
                LimitLayer::Endpoint,
                LimitLayer::Global
            ]
        );
        assert_eq!(l[0].key, "p:ip:120:2:2001:db8:1:2::");
        assert_eq!(l[0].interval_us, 500_000);
        assert_eq!(l[0].burst, 2);
        assert!(!l[1].key.contains("key-1"), "API keys are digested");
        assert_eq!(l[2].burst, 30);
        assert_eq!(l[3].key, "p:global:1000:1000:all");
        // 0 rpm layers and unknown endpoints are not limited.
        let l = layers(
            "p",
            &LimiterConfig {
                global_rpm: 0,
                ..config
            },
            &LimitRequest {
                ip: None,
                endpoint: "/other",
                key: Some(("k", 0)),
            },
        );
        assert!(l.is_empty());
    }

    #[test]
    fn mapped_ipv4_is_limited_as_ipv4() {
        assert_eq!(
            ip_key("::ffff:10.0.0.1".parse().unwrap()),
            "10.0.0.1".parse::<IpAddr>().unwrap()
        );
    }

    #[test]
    fn a_bad_url_is_a_config_error() {
        let local = Arc::new(Limiter::new(LimiterConfig::default()));
        let e = SharedLimiter::new("http://x", local, SharedLimiterOptions::default()).unwrap_err();
        assert_eq!(e.code(), "invalid_config");
    }
}
