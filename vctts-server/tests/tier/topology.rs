//! The topology the whole-tier tests share: two gateway processes on one
//! PostgreSQL database and one Redis, one worker registered with both, and
//! nginx in front with the shipped `config/nginx-gateways.conf`.
//!
//! Each test writes its own gateway config (storage, limiter and auth lines
//! differ) after the common [`gateway_head`]; [`Tier::start`] returns once
//! the worker is ready on both gateways.

use crate::common::{
    Server, TOKEN, error_code, eventually, http, models_with_converter, reference_wav, write,
};
use crate::services::{Nginx, repo_path};
use serde_json::Value;
use std::path::Path;
use std::time::Duration;

/// The config lines every tier gateway shares: loopback on an ephemeral
/// port, fast heartbeats, the test cluster token and bounded node timeouts.
pub fn gateway_head() -> String {
    format!(
        "server: {{ host: 127.0.0.1, port: 0, workers: 2 }}\n\
         registry: {{ heartbeat_interval: 0.2, dead_threshold: 1.0, retention: 60, policy: round_robin }}\n\
         cluster: {{ token: \"{TOKEN}\", connect_timeout: 1, first_byte_timeout: 30, request_timeout: 60, max_retries: 2 }}\n"
    )
}

/// Two gateways, one worker registered with both, nginx in front.
pub struct Tier {
    /// Gateway A and gateway B.
    pub gateways: [Server; 2],
    /// The one worker (OpenVoice with the fixture converter, one slot),
    /// kept running for the tier's lifetime.
    _worker: Server,
    /// nginx, balancing over both gateways.
    pub nginx: Nginx,
}

impl Tier {
    /// Starts gateways `a` and `b` with the configs `gateway_yaml(name)`,
    /// a worker with a queue of `worker_queue` registered with both, and
    /// nginx; waits until the worker is ready on both gateways.
    pub async fn start(dir: &Path, gateway_yaml: impl Fn(&str) -> String, worker_queue: usize) -> Tier {
        let gateway = |name: &str| {
            let cfg = write(dir, &format!("gateway-{name}.yaml"), &gateway_yaml(name));
            Server::start(&["gateway", "--config", &cfg])
        };
        let gateways = [gateway("a"), gateway("b")];
        let (a, b) = (&gateways[0].base, &gateways[1].base);
        let models = models_with_converter(dir);
        let worker_cfg = write(
            dir,
            "worker.yaml",
            &format!(
                "worker: {{ type: openvoice, host: 127.0.0.1, port: 0 }}\n\
                 gateway: {{ url: [\"{a}\", \"{b}\"] }}\n\
                 cluster: {{ token: \"{TOKEN}\", heartbeat_interval: 0.2, request_timeout: 2, drain_timeout: 30 }}\n\
                 model: {{ path: \"{}\", auto_load: true, threads: 1 }}\n\
                 resources: {{ max_concurrent: 1, queue_size: {worker_queue} }}\n",
                models.display()
            ),
        );
        let worker = Server::start(&["worker", "--config", &worker_cfg]);
        let upstreams = [gateways[0].addr.to_string(), gateways[1].addr.to_string()];
        let nginx = Nginx::start(&repo_path(""), &[&upstreams[0], &upstreams[1]]);
        let tier = Tier {
            gateways,
            _worker: worker,
            nginx,
        };
        for base in [tier.a(), tier.b()] {
            eventually(
                Duration::from_secs(90),
                "the worker ready on both gateways",
                || async { ready(base).await.then_some(()) },
            )
            .await;
        }
        tier
    }

    /// Gateway A's base URL.
    pub fn a(&self) -> &str {
        &self.gateways[0].base
    }

    /// Gateway B's base URL.
    pub fn b(&self) -> &str {
        &self.gateways[1].base
    }

    /// nginx's base URL.
    pub fn lb(&self) -> String {
        self.nginx.base()
    }

    /// Clones the reference speaker as `voice_id` through nginx (with the
    /// API key `key` where keys are required); the answer's status, error
    /// code and body.
    pub async fn clone_voice(&self, key: Option<&str>, voice_id: &str, name: &str) -> (u16, String, Value) {
        let form = reqwest::multipart::Form::new()
            .part(
                "audio",
                reqwest::multipart::Part::bytes(reference_wav()).file_name("reference.wav"),
            )
            .text("name", name.to_string())
            .text("voice_id", voice_id.to_string())
            .text("language", "en");
        let mut req = http()
            .post(format!("{}/api/v3/extract_voice", self.lb()))
            .multipart(form);
        if let Some(key) = key {
            req = req.header("x-api-key", key);
        }
        error_code(req.send().await.unwrap()).await
    }
}

/// Whether the gateway at `base` answers ready.
pub async fn ready(base: &str) -> bool {
    matches!(http().get(format!("{base}/api/v3/health/ready")).send().await, Ok(r) if r.status() == 200)
}
