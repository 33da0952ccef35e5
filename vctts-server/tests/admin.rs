//! Operating a gateway across real processes: admin auth, API keys and
//! scopes, CSRF, audit records, live settings (validation, live effect,
//! persistence), announcements, node actions on a real worker, a supervised
//! local worker restarted after `kill -9`, Prometheus metrics, log files and
//! secret redaction.
//!
//! Each test starts `vctts-server` binaries on 127.0.0.1 with ports the OS
//! picked and waits for conditions with a deadline (never fixed sleeps).
//! Workers run without models (they register in `error`), which is enough
//! for lifecycle actions.

use reqwest::{Client, StatusCode};
use serde_json::{Value, json};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

// The tests' one polling helper (shared with `tests/common`).
#[path = "common/eventually.rs"]
mod polling;
use polling::eventually;

const BIN: &str = env!("CARGO_BIN_EXE_vctts-server");
const PASSWORD: &str = "pw-Adm1n-s3cret";
const SYNTH_KEY: &str = "synth-key-aaaaaaaaaaaaaaaa";
const ADMIN_KEY: &str = "admin-key-bbbbbbbbbbbbbbbb";
const CLUSTER_TOKEN: &str = "cluster-token-cccccccccccccccc";

/// A child process killed when dropped.
struct Proc {
    child: Child,
    url: String,
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn spawn(args: &[&str], env: &[(&str, &str)]) -> Proc {
    let mut child = Command::new(BIN)
        .args(args)
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn vctts-server");
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Some(i) = line.find("listening on ") {
                let _ = tx.send(line[i + "listening on ".len()..].trim().to_string());
            }
        }
    });
    let url = rx
        .recv_timeout(Duration::from_secs(60))
        .expect("server printed its address");
    Proc { child, url }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn gateway_yaml(dir: &Path, port: u16, extra: &str) -> PathBuf {
    let text = format!(
        r#"server: {{ host: 127.0.0.1, port: {port} }}
registry: {{ heartbeat_interval: 0.2, dead_threshold: 1.0 }}
cluster: {{ token: "{CLUSTER_TOKEN}" }}
limiter: {{ enabled: true, global_rpm: 10000, ip_rpm: 10000, concurrent_limit: 50 }}
storage: {{ data_dir: "{data}" }}
logging: {{ level: INFO, file: "{logs}", max_size: 64KB, backup_count: 2 }}
auth:
  admin_password: "{PASSWORD}"
  api_key_enabled: true
  api_keys:
    - {{ name: synth, key: "{SYNTH_KEY}", scopes: [synthesize] }}
    - {{ name: ops, key: "{ADMIN_KEY}", scopes: [admin] }}
{extra}"#,
        data = dir.join("data").display(),
        logs = dir.join("logs").join("gateway.log").display(),
    );
    let path = dir.join("gateway.yaml");
    std::fs::write(&path, text).unwrap();
    path
}

/// How long a condition of these tests may take.
const DEADLINE: Duration = Duration::from_secs(30);

struct Admin {
    http: Client,
    url: String,
    cookie: String,
}

impl Admin {
    async fn login(http: &Client, url: &str) -> Self {
        let res = http
            .post(format!("{url}/admin/api/login"))
            .json(&json!({"username": "admin", "password": PASSWORD}))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
        let set = res.headers()["set-cookie"].to_str().unwrap().to_string();
        assert!(
            set.contains("HttpOnly") && set.contains("SameSite=Strict") && set.contains("Max-Age="),
            "{set}"
        );
        let cookie = set.split(';').next().unwrap().to_string();
        let body: Value = res.json().await.unwrap();
        assert_eq!(body["username"], "admin");
        Self {
            http: http.clone(),
            url: url.to_string(),
            cookie,
        }
    }

    async fn send(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> (StatusCode, Value) {
        let mut req = self
            .http
            .request(method, format!("{}{path}", self.url))
            .header("cookie", &self.cookie)
            .header("x-requested-with", "vctts");
        if let Some(b) = body {
            req = req.json(&b);
        }
        let res = req.send().await.unwrap();
        let status = res.status();
        let text = res.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    async fn get(&self, path: &str) -> Value {
        let (s, v) = self.send(reqwest::Method::GET, path, None).await;
        assert_eq!(s, 200, "GET {path}: {v}");
        v
    }
}

const ADMIN_ROUTES: [(&str, &str); 12] = [
    ("POST", "/admin/api/logout"),
    ("GET", "/admin/api/me"),
    ("GET", "/admin/api/nodes"),
    ("POST", "/admin/api/nodes/x/start"),
    ("POST", "/admin/api/nodes/x/standby"),
    ("GET", "/admin/api/config"),
    ("PUT", "/admin/api/config"),
    ("GET", "/admin/api/logs"),
    ("GET", "/admin/api/logs/stream"),
    ("GET", "/admin/api/announcements"),
    ("POST", "/admin/api/announcements"),
    ("DELETE", "/admin/api/announcements/a-1"),
];

fn all_log_text(dir: &Path) -> String {
    let mut text = String::new();
    for e in std::fs::read_dir(dir.join("logs")).unwrap().flatten() {
        text.push_str(&std::fs::read_to_string(e.path()).unwrap_or_default());
    }
    text
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auth_settings_announcements_metrics_and_logs() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = gateway_yaml(dir.path(), 0, "");
    let gw = spawn(&["gateway", "--config", cfg.to_str().unwrap()], &[]);
    let http = Client::new();
    let url = gw.url.clone();

    // Every admin route: 401 without auth, 403 with a non-admin key.
    for (m, path) in ADMIN_ROUTES {
        let m: reqwest::Method = m.parse().unwrap();
        let res = http
            .request(m.clone(), format!("{url}{path}"))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 401, "{m} {path} without auth");
        let body: Value = res.json().await.unwrap();
        assert_eq!(body["error"]["code"], "unauthorized");
        let res = http
            .request(m.clone(), format!("{url}{path}"))
            .bearer_auth(SYNTH_KEY)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 403, "{m} {path} with a synthesize key");
    }
    // An admin key works without the CSRF header (it is not a cookie).
    let res = http
        .get(format!("{url}/admin/api/config"))
        .header("x-api-key", ADMIN_KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);

    // API keys and scopes on the public API; health stays open.
    let health = http
        .get(format!("{url}/api/v3/health"))
        .send()
        .await
        .unwrap()
        .status();
    assert!(health == 200 || health == 503, "health is open: {health}");
    let voices = format!("{url}/api/v3/voices");
    assert_eq!(http.get(&voices).send().await.unwrap().status(), 401);
    assert_eq!(
        http.get(&voices)
            .bearer_auth("wrong-key-zzzzzzzzzzzzzz")
            .send()
            .await
            .unwrap()
            .status(),
        401
    );
    assert_eq!(
        http.get(&voices)
            .bearer_auth(SYNTH_KEY)
            .send()
            .await
            .unwrap()
            .status(),
        403
    );
    assert_eq!(
        http.get(&voices)
            .header("x-api-key", ADMIN_KEY)
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    let synth = http
        .post(format!("{url}/api/v3/synthesize"))
        .bearer_auth(SYNTH_KEY)
        .json(&json!({"text": "hello"}))
        .send()
        .await
        .unwrap();
    assert!(
        synth.status() != 401 && synth.status() != 403,
        "synthesize scope passes: {}",
        synth.status()
    );

    // Login: a wrong password is refused, then a session.
    let res = http
        .post(format!("{url}/admin/api/login"))
        .json(&json!({"username": "admin", "password": "not-it"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    let admin = Admin::login(&http, &url).await;
    assert_eq!(admin.get("/admin/api/me").await["username"], "admin");

    // CSRF: a cookie-authenticated change without the header is refused.
    let res = http
        .put(format!("{url}/admin/api/config"))
        .header("cookie", &admin.cookie)
        .json(&json!({"limiter": {"ip_rpm": 5}}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);

    // Config: validation names the field.
    let (s, body) = admin
        .send(
            reqwest::Method::PUT,
            "/admin/api/config",
            Some(json!({"limiter": {"ip_rpm": -5}})),
        )
        .await;
    assert_eq!(s, 422);
    assert_eq!(body["error"]["code"], "invalid_config");
    assert_eq!(body["error"]["field"], "limiter.ip_rpm");
    assert!(body["error"]["request_id"].is_string());
    let (s, body) = admin
        .send(
            reqwest::Method::PUT,
            "/admin/api/config",
            Some(json!({"log_level": "LOUD"})),
        )
        .await;
    assert_eq!(
        (s.as_u16(), body["error"]["field"].as_str()),
        (422, Some("log_level"))
    );

    // Live effect: a lowered per-IP rate is enforced on the next requests.
    let (s, body) = admin
        .send(
            reqwest::Method::PUT,
            "/admin/api/config",
            Some(json!({"limiter.ip_rpm": 3, "balance_policy": "round_robin", "log_level": "DEBUG"})),
        )
        .await;
    assert_eq!(s, 200, "{body}");
    assert_eq!(body["limiter"]["ip_rpm"], 3);
    let mut codes = Vec::new();
    for _ in 0..5 {
        let r = http.get(format!("{url}/api/v3/engines")).send().await.unwrap();
        if r.status() == 429 {
            assert_eq!(r.headers()["x-ratelimit-layer"], "ip");
        }
        codes.push(r.status().as_u16());
    }
    assert!(codes.contains(&429), "lowered rate enforced: {codes:?}");
    assert!(dir.path().join("data").join("settings.json").exists());
    let (s, _) = admin
        .send(
            reqwest::Method::PUT,
            "/admin/api/config",
            Some(json!({"limiter": {"ip_rpm": 10000}})),
        )
        .await;
    assert_eq!(s, 200);
    let (s, _) = admin
        .send(
            reqwest::Method::PUT,
            "/admin/api/config",
            Some(json!({"limiter": {"global_rpm": 777}})),
        )
        .await;
    assert_eq!(s, 200);

    // Announcements: post, public list, delete.
    let (s, a) = admin
        .send(
            reqwest::Method::POST,
            "/admin/api/announcements",
            Some(json!({"type": "warning", "message": "maintenance at noon", "expires_at": "2999-01-01"})),
        )
        .await;
    assert_eq!(s, 201, "{a}");
    let (s, bad) = admin
        .send(
            reqwest::Method::POST,
            "/admin/api/announcements",
            Some(json!({"type": "shout", "message": "x"})),
        )
        .await;
    assert_eq!(s, 422, "{bad}");
    let public: Value = http
        .get(format!("{url}/api/v3/announcements"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        public["announcements"]
            .as_array()
            .unwrap()
            .iter()
            .any(|x| x["message"] == "maintenance at noon")
    );
    let id = a["id"].as_str().unwrap();
    let (s, _) = admin
        .send(
            reqwest::Method::DELETE,
            &format!("/admin/api/announcements/{id}"),
            None,
        )
        .await;
    assert_eq!(s, 204);
    let (s, _) = admin
        .send(
            reqwest::Method::DELETE,
            &format!("/admin/api/announcements/{id}"),
            None,
        )
        .await;
    assert_eq!(s, 404);

    // Metrics parse as Prometheus exposition.
    let text = http
        .get(format!("{url}/api/v3/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let lines = text.lines().map(|l| Ok(l.to_string()));
    let scrape = prometheus_parse::Scrape::parse(lines).expect("valid exposition");
    assert!(
        scrape
            .samples
            .iter()
            .any(|s| s.metric == "vctts_http_requests_total")
    );
    assert!(
        scrape
            .samples
            .iter()
            .any(|s| s.metric.starts_with("vctts_rate_limited")),
        "refusals are counted"
    );

    // Audit records for each admin action, with who and what.
    let logs = admin.get("/admin/api/logs?category=audit&limit=1000").await;
    let recs = logs["records"].as_array().unwrap();
    let has = |action: &str, result: &str| {
        recs.iter().any(|r| {
            r["extra"]["action"] == action && r["extra"]["result"].as_str().unwrap_or("").starts_with(result)
        })
    };
    assert!(has("login", "ok"));
    assert!(has("login", "denied"));
    assert!(has("PUT /admin/api/config", "ok"));
    assert!(has("PUT /admin/api/config", "failed: 422"));
    assert!(has("PUT /admin/api/config", "denied"));
    assert!(has("POST /admin/api/announcements", "ok"));
    assert!(has("DELETE /admin/api/announcements/{id}", "ok"));
    assert!(has("GET /admin/api/nodes", "denied"));
    assert!(recs.iter().any(|r| r["extra"]["actor"] == "admin"));
    let bad_q = admin
        .send(reqwest::Method::GET, "/admin/api/logs?category=nope", None)
        .await;
    assert_eq!(bad_q.0, 422);
    let access = admin
        .get("/admin/api/logs?category=access&q=/api/v3/engines")
        .await;
    assert!(!access["records"].as_array().unwrap().is_empty());

    // Logout ends the session.
    let (s, _) = admin.send(reqwest::Method::POST, "/admin/api/logout", None).await;
    assert_eq!(s, 200);
    let (s, _) = admin.send(reqwest::Method::GET, "/admin/api/me", None).await;
    assert_eq!(s, 401);

    // Files per category; no secret anywhere.
    // The writer thread writes the files shortly after the requests.
    eventually(DEADLINE, "access.log and audit.log", || async {
        let files: Vec<String> = std::fs::read_dir(dir.path().join("logs"))
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().to_string())
            .collect();
        if ["access.log", "audit.log"]
            .iter()
            .all(|f| files.contains(&f.to_string()))
        {
            Ok(())
        } else {
            Err(format!("{files:?}"))
        }
    })
    .await;
    let text = all_log_text(dir.path());
    let token = admin.cookie.split('=').nth(1).unwrap();
    for secret in [PASSWORD, SYNTH_KEY, ADMIN_KEY, CLUSTER_TOKEN, token] {
        assert!(!text.contains(secret), "a secret leaked into the logs");
    }
    drop(gw);

    // A restart keeps the settings.
    let gw = spawn(&["gateway", "--config", cfg.to_str().unwrap()], &[]);
    let admin = Admin::login(&http, &gw.url).await;
    let cfg_now = admin.get("/admin/api/config").await;
    assert_eq!(cfg_now["limiter"]["global_rpm"], 777);
    assert_eq!(cfg_now["balance_policy"], "round_robin");
    assert_eq!(cfg_now["log_level"], "DEBUG");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_actions_and_supervised_worker() {
    let dir = tempfile::tempdir().unwrap();
    let gw_port = free_port();
    let sup_port = free_port();
    let gw_url = format!("http://127.0.0.1:{gw_port}");
    let extra = format!(
        r#"local_workers:
  - name: sup1
    program: "{BIN}"
    args: [worker, --engine, openvoice, --host, 127.0.0.1, --port, "{sup_port}", --gateway, "{gw_url}", --models, "{models}"]
    env: {{ VCTTS_CLUSTER__TOKEN: "{CLUSTER_TOKEN}" }}
    endpoint: "http://127.0.0.1:{sup_port}"
    backoff_initial: 0.1
    backoff_max: 1
"#,
        models = dir.path().join("no-models").display(),
    );
    let cfg = gateway_yaml(dir.path(), gw_port, &extra);
    let check = Command::new(BIN)
        .args(["check-config", cfg.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(
        check.status.success(),
        "{}",
        String::from_utf8_lossy(&check.stderr)
    );
    let gw = spawn(&["gateway", "--config", cfg.to_str().unwrap()], &[]);
    assert_eq!(gw.url, gw_url);
    let http = Client::new();
    let admin = Admin::login(&http, &gw.url).await;

    // A plain worker process registers (in error: it has no model).
    let worker = spawn(
        &[
            "worker",
            "--engine",
            "openvoice",
            "--host",
            "127.0.0.1",
            "--port",
            "0",
            "--gateway",
            &gw.url,
            "--models",
            dir.path().join("no-models").to_str().unwrap(),
        ],
        &[("VCTTS_CLUSTER__TOKEN", CLUSTER_TOKEN)],
    );
    let worker_url = worker.url.clone();
    let node_of = |nodes: &Value, endpoint: &str| -> Option<Value> {
        nodes["nodes"]
            .as_array()?
            .iter()
            .find(|n| {
                n["endpoint"].as_str().map(|e| e.trim_end_matches('/'))
                    == Some(endpoint.trim_end_matches('/'))
            })
            .cloned()
    };
    let mut node_id = String::new();
    eventually(DEADLINE, "the worker registers", || {
        let admin = &admin;
        let worker_url = worker_url.clone();
        async move {
            let nodes = admin.get("/admin/api/nodes").await;
            node_of(&nodes, &worker_url).is_some()
        }
    })
    .await;
    let nodes = admin.get("/admin/api/nodes").await;
    let node = node_of(&nodes, &worker_url).unwrap();
    node_id.push_str(node["id"].as_str().unwrap());
    assert_eq!(node["state"], "error");
    // The gateway announces the failed node.
    eventually(DEADLINE, "an announcement of the error", || async {
        let a = admin.get("/admin/api/announcements").await;
        a["announcements"]
            .as_array()
            .unwrap()
            .iter()
            .any(|x| x["key"] == format!("node:{node_id}"))
    })
    .await;

    // Actions change the state the registry (and so routing) sees.
    let state_of = |nodes: &Value| {
        node_of(nodes, &worker_url).unwrap()["state"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let (s, body) = admin
        .send(
            reqwest::Method::POST,
            &format!("/admin/api/nodes/{node_id}/stop"),
            None,
        )
        .await;
    assert_eq!(s, 200, "stop: {body}");
    assert_eq!(body["state"], "stopped");
    let public: Value = http
        .get(format!("{}/api/v3/nodes", gw.url))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        state_of(&public),
        "stopped",
        "the registry takes the state at once"
    );
    let (s, body) = admin
        .send(
            reqwest::Method::POST,
            &format!("/admin/api/nodes/{node_id}/start"),
            None,
        )
        .await;
    assert_eq!(s, 200, "start: {body}");
    assert_ne!(body["state"], "stopped");
    let public: Value = http
        .get(format!("{}/api/v3/nodes", gw.url))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let after = state_of(&public);
    assert_ne!(after, "stopped");
    if after != "error" {
        // Out of error: the announcement is cleared.
        eventually(DEADLINE, "the announcement cleared", || async {
            let a = admin.get("/admin/api/announcements").await;
            !a["announcements"]
                .as_array()
                .unwrap()
                .iter()
                .any(|x| x["key"] == format!("node:{node_id}"))
        })
        .await;
    }
    // Without a model, activation fails with the reason, as an answer or as
    // the error state.
    let (s, body) = admin
        .send(
            reqwest::Method::POST,
            &format!("/admin/api/nodes/{node_id}/activate"),
            None,
        )
        .await;
    if s == 200 {
        assert_eq!(body["state"], "error", "{body}");
        assert!(body["reason"].is_string());
    } else {
        assert_eq!(body["error"]["code"], "model_not_installed", "{body}");
    }
    let (s, _) = admin
        .send(reqwest::Method::POST, "/admin/api/nodes/nope/stop", None)
        .await;
    assert_eq!(s, 404);

    // The worker dies: the node goes offline, actions answer 409 node_offline.
    drop(worker);
    eventually(DEADLINE, "the node is offline", || async {
        let nodes = admin.get("/admin/api/nodes").await;
        node_of(&nodes, &worker_url).is_some_and(|n| n["state"] == "offline")
    })
    .await;
    let (s, body) = admin
        .send(
            reqwest::Method::POST,
            &format!("/admin/api/nodes/{node_id}/activate"),
            None,
        )
        .await;
    assert_eq!(s, 409, "{body}");
    assert_eq!(body["error"]["code"], "node_offline");

    // The supervised worker runs; kill -9 → it is restarted with a new pid.
    let sup_endpoint = format!("http://127.0.0.1:{sup_port}");
    let pid_of = |nodes: &Value| -> Option<u64> {
        nodes["local_workers"]
            .as_array()?
            .iter()
            .find(|w| w["name"] == "sup1")?["pid"]
            .as_u64()
    };
    eventually(DEADLINE, "the supervised worker registers", || async {
        let nodes = admin.get("/admin/api/nodes").await;
        node_of(&nodes, &sup_endpoint).is_some_and(|n| n["state"] != "offline") && pid_of(&nodes).is_some()
    })
    .await;
    let first = pid_of(&admin.get("/admin/api/nodes").await).unwrap();
    let killed = Command::new("kill")
        .args(["-9", &first.to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    eventually(DEADLINE, "a restarted process", || async {
        let nodes = admin.get("/admin/api/nodes").await;
        pid_of(&nodes).is_some_and(|p| p != first)
    })
    .await;
    let nodes = admin.get("/admin/api/nodes").await;
    let w = nodes["local_workers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|w| w["name"] == "sup1")
        .unwrap()
        .clone();
    assert!(w["restarts"].as_u64().unwrap() >= 1);

    // Stop acts on the process and it stays stopped; start brings it back.
    let (s, body) = admin
        .send(reqwest::Method::POST, "/admin/api/nodes/sup1/stop", None)
        .await;
    assert_eq!(s, 200, "{body}");
    eventually(DEADLINE, "the process stopped", || async {
        let nodes = admin.get("/admin/api/nodes").await;
        pid_of(&nodes).is_none()
    })
    .await;
    let (s, _) = admin
        .send(reqwest::Method::POST, "/admin/api/nodes/sup1/start", None)
        .await;
    assert_eq!(s, 200);
    eventually(DEADLINE, "the process started again", || async {
        let nodes = admin.get("/admin/api/nodes").await;
        pid_of(&nodes).is_some()
    })
    .await;

    // Nothing secret in the logs after keys, logins and registrations.
    let text = all_log_text(dir.path());
    for secret in [PASSWORD, CLUSTER_TOKEN, SYNTH_KEY, ADMIN_KEY] {
        assert!(!text.contains(secret), "a secret leaked into the logs");
    }

    // A gateway killed with SIGKILL cleans up nothing itself; the kernel
    // still stops its supervised worker (it asked for a parent-death signal).
    let sup_pid = pid_of(&admin.get("/admin/api/nodes").await).unwrap();
    assert!(process_alive(sup_pid));
    drop(gw);
    eventually(
        DEADLINE,
        "the supervised worker exits with its gateway",
        || async { !process_alive(sup_pid) },
    )
    .await;
}

/// Whether `pid` runs (a zombie waiting for a reaper counts as exited).
fn process_alive(pid: u64) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
        // The state follows the command name in parentheses.
        stat.rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .is_some_and(|state| state != "Z" && state != "X")
    })
}

/// Probes and scrapers do not fill the access log: 1,000 health checks (and
/// readiness and metrics requests) add no INFO line to `access.log`, while an
/// ordinary request after them does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_checks_stay_out_of_the_access_log() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = gateway_yaml(dir.path(), free_port(), "");
    let gw = spawn(&["gateway", "--config", cfg.to_str().unwrap()], &[]);
    let http = Client::new();
    for i in 0..1000 {
        let path = match i % 100 {
            0 => "/api/v3/health/ready",
            1 => "/api/v3/metrics",
            _ => "/api/v3/health",
        };
        let res = http.get(format!("{}{path}", gw.url)).send().await.unwrap();
        assert!(
            res.status() == 200 || res.status() == 503,
            "{path}: {}",
            res.status()
        );
    }
    let marker = "/api/v3/engines";
    http.get(format!("{}{marker}", gw.url))
        .header("x-api-key", SYNTH_KEY)
        .send()
        .await
        .unwrap();
    // The writer thread writes in order: once the ordinary request's line is
    // there, every earlier record has been written too.
    let access = dir.path().join("logs").join("access.log");
    let text = eventually(DEADLINE, "the ordinary request in access.log", || async {
        let text = std::fs::read_to_string(&access).unwrap_or_default();
        if text.contains(marker) {
            Ok(text)
        } else {
            Err(text)
        }
    })
    .await;
    let records: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect();
    let quiet: Vec<&Value> = records
        .iter()
        .filter(|r| {
            let e = r["endpoint"].as_str().unwrap_or("");
            e.starts_with("/api/v3/health") || e == "/api/v3/metrics"
        })
        .collect();
    assert!(
        quiet.is_empty(),
        "{} probe lines, e.g. {:?}",
        quiet.len(),
        quiet.first()
    );
    assert!(
        records
            .iter()
            .any(|r| r["endpoint"] == marker && r["level"] == "INFO"),
        "{text}"
    );
    assert!(records.len() < 20, "{} access lines", records.len());
}
