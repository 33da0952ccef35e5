//! The shipped Kubernetes manifests (`config/kubernetes/`) against the code:
//! the ConfigMap's `gateway.yaml` and `worker.yaml` go through the server's
//! own config parser with the environment each pod gets (its literal env,
//! `$(POD_IP)` expanded, secrets taken from the Secret template), and the
//! figures that must agree across files do (ports, drain and grace periods,
//! gateway names against the HPA's maximum, kustomization's resources).
//!
//! The schema of every object is checked by `kubernetes-validate` in
//! `scripts/test.sh`; this file checks what a schema cannot.

use crate::services::repo_path;
use serde_yaml_ng::Value;
use std::collections::BTreeMap;
use std::time::Duration;
use vctts_core::EngineKind;
use vctts_server::config::{Env, GatewayConfig, LimiterBackend, StorageBackend, WorkerConfig};

const DIR: &str = "config/kubernetes";
/// The pod address the test gives `$(POD_IP)`.
const POD_IP: &str = "10.1.2.3";

/// Every object of a manifest file.
fn objects(file: &str) -> Vec<Value> {
    let text = std::fs::read_to_string(repo_path(&format!("{DIR}/{file}")))
        .unwrap_or_else(|e| panic!("{DIR}/{file}: {e}"));
    serde_yaml_ng::Deserializer::from_str(&text)
        .map(|d| serde::Deserialize::deserialize(d).unwrap_or_else(|e| panic!("{file}: {e}")))
        .filter(|v: &Value| !v.is_null())
        .collect()
}

/// The one object of `kind` named `name` in `file`.
fn object(file: &str, kind: &str, name: &str) -> Value {
    objects(file)
        .into_iter()
        .find(|o| o["kind"] == kind && o["metadata"]["name"] == name)
        .unwrap_or_else(|| panic!("{file}: no {kind} {name}"))
}

fn str_of<'a>(v: &'a Value, what: &str) -> &'a str {
    v.as_str()
        .unwrap_or_else(|| panic!("{what} is not a string: {v:?}"))
}

fn int_of(v: &Value, what: &str) -> u64 {
    v.as_u64()
        .unwrap_or_else(|| panic!("{what} is not a number: {v:?}"))
}

/// The Secret template's values, by key.
fn secret_values() -> BTreeMap<String, String> {
    let s = object("secrets.yaml", "Secret", "vctts-secrets");
    s["stringData"]
        .as_mapping()
        .expect("stringData")
        .iter()
        .map(|(k, v)| (str_of(k, "key").to_string(), str_of(v, "value").to_string()))
        .collect()
}

/// The environment a container gets: literal values with `$(VAR)` of
/// earlier entries expanded, `status.podIP` as [`POD_IP`], secrets from the
/// template. Every secret key it names must exist.
fn container_env(container: &Value) -> Vec<(String, String)> {
    let secrets = secret_values();
    let mut env: Vec<(String, String)> = Vec::new();
    for e in container["env"].as_sequence().expect("env") {
        let name = str_of(&e["name"], "env name").to_string();
        let value = if let Some(v) = e["value"].as_str() {
            let mut v = v.to_string();
            for (k, val) in &env {
                v = v.replace(&format!("$({k})"), val);
            }
            assert!(!v.contains("$("), "{name}: {v} names an unknown variable");
            v
        } else if let Some(f) = e["valueFrom"]["fieldRef"]["fieldPath"].as_str() {
            assert_eq!(f, "status.podIP", "{name}");
            POD_IP.to_string()
        } else {
            let r = &e["valueFrom"]["secretKeyRef"];
            assert_eq!(r["name"], "vctts-secrets", "{name}");
            let key = str_of(&r["key"], "secret key");
            secrets
                .get(key)
                .unwrap_or_else(|| panic!("{name}: secret key {key} is not in secrets.yaml"))
                .clone()
        };
        env.push((name, value));
    }
    env
}

/// The ConfigMap's file `key`.
fn config_file(key: &str) -> String {
    let cm = object("configmap.yaml", "ConfigMap", "vctts-config");
    str_of(&cm["data"][key], key).to_string()
}

/// The first container of a workload's pod template.
fn container(workload: &Value) -> &Value {
    &workload["spec"]["template"]["spec"]["containers"][0]
}

fn container_port(c: &Value) -> u64 {
    int_of(&c["ports"][0]["containerPort"], "containerPort")
}

fn grace(workload: &Value) -> Duration {
    Duration::from_secs(int_of(
        &workload["spec"]["template"]["spec"]["terminationGracePeriodSeconds"],
        "terminationGracePeriodSeconds",
    ))
}

/// The gateway pods' config is valid with their environment, on PostgreSQL
/// and Redis with the Secret's URLs, and the pod's figures match it.
#[test]
fn kubernetes_gateway_config_is_valid_for_its_pods() {
    let sts = object("gateway.yaml", "StatefulSet", "vctts-gateway");
    let c = container(&sts);
    let env = container_env(c);
    let text = config_file("gateway.yaml");
    let cfg = GatewayConfig::parse(&text, &Env::from_pairs(env.clone()))
        .unwrap_or_else(|e| panic!("configmap.yaml gateway.yaml: {e}"));
    let secrets = secret_values();
    assert_eq!(cfg.storage.backend, StorageBackend::Postgres);
    assert_eq!(cfg.storage.url.as_deref(), Some(secrets["database-url"].as_str()));
    assert_eq!(cfg.limiter.backend, LimiterBackend::Redis);
    assert_eq!(
        cfg.limiter.redis_url.as_deref(),
        Some(secrets["redis-url"].as_str())
    );
    assert_eq!(
        cfg.cluster.token.as_deref(),
        Some(secrets["cluster-token"].as_str())
    );
    assert_eq!(cfg.server.port as u64, container_port(c));
    assert!(cfg.logging.file.is_none(), "pods log to stderr");
    // The data folder is the pod's writable volume.
    let mounts = c["volumeMounts"].as_sequence().unwrap();
    assert!(
        mounts
            .iter()
            .any(|m| m["mountPath"].as_str() == cfg.storage.data_dir.to_str() && m["readOnly"] != true),
        "storage.data_dir {:?} is not a writable mount",
        cfg.storage.data_dir
    );
    // In-flight requests finish within the grace period, after preStop.
    let pre_stop: u64 = c["lifecycle"]["preStop"]["exec"]["command"][1]
        .as_str()
        .and_then(|s| s.parse().ok())
        .expect("preStop sleep seconds");
    assert!(
        grace(&sts) >= cfg.cluster.request_timeout.0 + Duration::from_secs(pre_stop),
        "terminationGracePeriodSeconds {:?} < request_timeout {:?} + preStop {pre_stop} s",
        grace(&sts),
        cfg.cluster.request_timeout.0
    );
    // Without the secrets the config is refused, naming the variable.
    let bare: Vec<_> = env
        .into_iter()
        .filter(|(k, _)| k != "VCTTS_DATABASE_URL")
        .collect();
    let e = GatewayConfig::parse(&text, &Env::from_pairs(bare)).unwrap_err();
    assert!(e.to_string().contains("VCTTS_DATABASE_URL"), "{e}");
}

/// Each engine's worker pods: the config is valid with their environment,
/// for their engine, on the containerPort, advertising the pod IP, listing
/// every gateway name the HPA may create, with the grace period the drain
/// needs and probes on the right port.
#[test]
fn kubernetes_worker_configs_are_valid_for_their_pods() {
    let text = config_file("worker.yaml");
    let hpa = object("gateway.yaml", "HorizontalPodAutoscaler", "vctts-gateway");
    let max_gateways = int_of(&hpa["spec"]["maxReplicas"], "maxReplicas");
    let headless = object("gateway.yaml", "Service", "vctts-gateway-pods");
    assert_eq!(headless["spec"]["clusterIP"], "None");
    assert_eq!(headless["spec"]["publishNotReadyAddresses"], true);
    let sts = object("gateway.yaml", "StatefulSet", "vctts-gateway");
    assert_eq!(sts["spec"]["serviceName"], "vctts-gateway-pods");
    for (file, kind) in [
        ("worker-openvoice.yaml", EngineKind::OpenVoice),
        ("worker-xtts.yaml", EngineKind::Xtts),
        ("worker-gpt-sovits.yaml", EngineKind::GptSovits),
    ] {
        let name = file.trim_end_matches(".yaml").replace("worker-", "vctts-worker-");
        let dep = object(file, "Deployment", &name);
        let c = container(&dep);
        let cfg = WorkerConfig::parse(&text, &Env::from_pairs(container_env(c)))
            .unwrap_or_else(|e| panic!("configmap.yaml worker.yaml for {file}: {e}"));
        assert_eq!(cfg.worker.kind, kind, "{file}");
        let port = container_port(c);
        assert_eq!(cfg.port() as u64, port, "{file}: the engine's port");
        assert_eq!(
            cfg.worker.advertise_url.as_deref(),
            Some(format!("http://{POD_IP}:{port}").as_str()),
            "{file}"
        );
        let want: Vec<String> = (0..max_gateways)
            .map(|i| format!("http://vctts-gateway-{i}.vctts-gateway-pods:8000"))
            .collect();
        assert_eq!(cfg.gateway.urls(), want, "{file}: one URL per possible gateway");
        assert_eq!(
            grace(&dep),
            cfg.cluster.drain_timeout.0 + Duration::from_secs(10),
            "{file}: terminationGracePeriodSeconds = drain_timeout + 10 s"
        );
        assert_eq!(c["readinessProbe"]["httpGet"]["path"], "/api/v3/health", "{file}");
        assert_eq!(c["readinessProbe"]["httpGet"]["port"], "http", "{file}");
        assert_eq!(c["ports"][0]["name"], "http", "{file}");
        // The models volume is mounted read-only at model.path.
        let mount = c["volumeMounts"]
            .as_sequence()
            .unwrap()
            .iter()
            .find(|m| m["name"] == "models")
            .expect("models mount");
        assert_eq!(mount["mountPath"].as_str(), cfg.model.path.to_str(), "{file}");
        assert_eq!(mount["readOnly"], true, "{file}");
        // Its PodDisruptionBudget selects its pods.
        let pdb = object(file, "PodDisruptionBudget", &name);
        assert_eq!(
            pdb["spec"]["selector"]["matchLabels"], dep["spec"]["selector"]["matchLabels"],
            "{file}"
        );
    }
}

/// kustomization.yaml lists exactly the manifest files of the folder.
#[test]
fn kubernetes_kustomization_lists_every_manifest() {
    let k: Value = serde_yaml_ng::from_str(
        &std::fs::read_to_string(repo_path(&format!("{DIR}/kustomization.yaml"))).unwrap(),
    )
    .unwrap();
    let mut listed: Vec<String> = k["resources"]
        .as_sequence()
        .expect("resources")
        .iter()
        .map(|r| str_of(r, "resource").to_string())
        .collect();
    listed.sort();
    let mut present: Vec<String> = std::fs::read_dir(repo_path(DIR))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".yaml") && n != "kustomization.yaml")
        .collect();
    present.sort();
    assert_eq!(listed, present);
}
