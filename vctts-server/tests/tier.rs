//! Tests of several gateways sharing state: the voice store contract on
//! SQLite and PostgreSQL (`store_contract`), the Redis limiter
//! (`limiter`), two gateways behind nginx (`gateways`), PostgreSQL and
//! Redis restarted under load (`outage`), and the shipped Kubernetes
//! manifests against the config parser (`kubernetes`, no services needed).
//!
//! They start real PostgreSQL 15, Redis and nginx processes from Debian's
//! packages (`apt-get install postgresql redis-server nginx`), unprivileged,
//! in temp folders, on loopback ports (`tier/services.rs`).

#[path = "common/mod.rs"]
mod common;

#[path = "tier/gateways.rs"]
mod gateways;
#[path = "tier/kubernetes.rs"]
mod kubernetes;
#[path = "tier/limiter.rs"]
mod limiter;
#[path = "tier/outage.rs"]
mod outage;
#[path = "tier/services.rs"]
mod services;
#[path = "tier/sizing.rs"]
mod sizing;
#[path = "tier/store_contract.rs"]
mod store_contract;
#[path = "tier/topology.rs"]
mod topology;

/// The shipped nginx config adapts to the test's addresses.
#[test]
fn shipped_nginx_config_adapts() {
    let shipped = std::fs::read_to_string(services::repo_path("config/nginx-gateways.conf")).unwrap();
    let logs = tempfile::tempdir().unwrap();
    let site = services::adapt_site(&shipped, &["127.0.0.1:1111", "127.0.0.1:2222"], 3333, logs.path());
    assert!(site.contains("server 127.0.0.1:1111 max_fails=1"), "{site}");
    assert!(site.contains("server 127.0.0.1:2222 max_fails=1"));
    assert!(site.contains("listen 127.0.0.1:3333;"));
    // The shipped log paths give way to the test's folder.
    assert!(site.contains(&logs.path().display().to_string()), "{site}");
    assert!(!site.contains("/var/log/nginx"));
}
