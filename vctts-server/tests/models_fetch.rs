//! The admin API's model fetch against a local hub: a real gateway process
//! (HF_ENDPOINT pointing at the hub, VCTTS_MODELS at a temporary folder)
//! fetches a Piper voice by name; the routes are guarded like every admin
//! route; bad names are a 422 naming the problem. The test waits with the
//! endpoint's own `?wait=true`, never with sleeps. The `/admin` page's
//! Models section does the same in a headless Chromium (as the page tests).

#[path = "../../tests/support/local_hub.rs"]
mod local_hub;

#[allow(dead_code)]
#[path = "pages/browser.rs"]
mod browser;

use local_hub::LocalHub;
use reqwest::Client;
use serde_json::{Value, json};
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

const ADMIN_KEY: &str = "admin-key-bbbbbbbbbbbbbbbb";
const SYNTH_KEY: &str = "synth-key-aaaaaaaaaaaaaaaa";
const PASSWORD: &str = "pw-Adm1n-s3cret";

struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn gateway(dir: &Path, hub: &LocalHub) -> (Proc, String) {
    let cfg = dir.join("gateway.yaml");
    std::fs::write(
        &cfg,
        format!(
            r#"server: {{ host: 127.0.0.1, port: 0 }}
cluster: {{ token: "cluster-token-cccccccccccccccc" }}
storage: {{ data_dir: "{data}" }}
auth:
  admin_password: "{PASSWORD}"
  api_key_enabled: true
  api_keys:
    - {{ name: synth, key: "{SYNTH_KEY}", scopes: [synthesize] }}
    - {{ name: ops, key: "{ADMIN_KEY}", scopes: [admin] }}
"#,
            data = dir.join("data").display()
        ),
    )
    .unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_vctts-server"))
        .args(["gateway", "--config", cfg.to_str().unwrap()])
        .env("HF_ENDPOINT", &hub.endpoint)
        .env_remove("HF_TOKEN")
        .env_remove("VCTTS_CATALOG")
        .env("VCTTS_MODELS", dir.join("models"))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn vctts-server");
    let stdout = child.stdout.take().unwrap();
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
        .expect("the gateway printed its address");
    (Proc(child), url)
}

fn md5_hex(bytes: &[u8]) -> String {
    // The server crate has no md5; run the system's md5sum.
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("f");
    std::fs::write(&p, bytes).unwrap();
    let out = Command::new("md5sum").arg(&p).output().expect("md5sum");
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .unwrap()
        .to_string()
}

fn serve_voice(hub: &LocalHub) -> (Vec<u8>, usize) {
    let onnx: Vec<u8> = (0..30_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let config = br#"{"audio": {"sample_rate": 22050}}"#;
    let dir = "de/de_DE/thorsten/medium";
    let index = json!({
        "de_DE-thorsten-medium": {"files": {
            format!("{dir}/de_DE-thorsten-medium.onnx"): {"size_bytes": onnx.len(), "md5_digest": md5_hex(&onnx)},
            format!("{dir}/de_DE-thorsten-medium.onnx.json"): {"size_bytes": config.len(), "md5_digest": md5_hex(config)}
        }}
    });
    let repo = "rhasspy/piper-voices";
    hub.add(repo, "v1.0.0", "voices.json", index.to_string().as_bytes(), false);
    hub.add(
        repo,
        "v1.0.0",
        &format!("{dir}/de_DE-thorsten-medium.onnx"),
        &onnx,
        true,
    );
    hub.add(
        repo,
        "v1.0.0",
        &format!("{dir}/de_DE-thorsten-medium.onnx.json"),
        config,
        false,
    );
    (onnx, config.len())
}

#[tokio::test]
async fn admins_fetch_a_model_and_follow_its_progress() {
    let dir = tempfile::tempdir().unwrap();
    let hub = LocalHub::start();
    let (onnx, config_len) = serve_voice(&hub);
    let (_gw, url) = gateway(dir.path(), &hub);
    let http = Client::new();
    let admin = |r: reqwest::RequestBuilder| r.header("x-api-key", ADMIN_KEY);

    // Guarded like every admin route.
    for (method, path) in [
        ("GET", "/admin/api/models"),
        ("POST", "/admin/api/models/fetch"),
        ("GET", "/admin/api/models/fetch/1"),
    ] {
        let m: reqwest::Method = method.parse().unwrap();
        let r = http
            .request(m.clone(), format!("{url}{path}"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401, "{method} {path}");
        let r = http
            .request(m, format!("{url}{path}"))
            .header("x-api-key", SYNTH_KEY)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 403, "{method} {path} with a synthesize key");
    }

    let r = admin(http.get(format!("{url}/admin/api/models")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    let names: Vec<&str> = v["models"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|m| m["name"].as_str())
        .collect();
    assert!(
        names.contains(&"openvoice-converter") && names.contains(&"xtts-v2"),
        "{v}"
    );
    assert_eq!(v["piper"]["repo"], "rhasspy/piper-voices");

    // A bad name is refused at once.
    let r = admin(http.post(format!("{url}/admin/api/models/fetch")))
        .json(&json!({"name": "no-such-model"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 422);
    let e: Value = r.json().await.unwrap();
    assert_eq!(e["error"]["code"], "unknown_model");
    let r = admin(http.post(format!("{url}/admin/api/models/fetch")))
        .json(&json!({"name": "gpt-sovits"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 422);

    // A Piper voice by name.
    let r = admin(http.post(format!("{url}/admin/api/models/fetch")))
        .json(&json!({"name": "de_DE-thorsten-medium"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    let started: Value = r.json().await.unwrap();
    let id = started["id"].as_u64().unwrap();
    let r = admin(http.get(format!("{url}/admin/api/models/fetch/{id}?wait=true")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let job: Value = r.json().await.unwrap();
    assert_eq!(job["state"], "done", "{job}");
    assert_eq!(
        job["bytes_done"].as_u64(),
        Some((onnx.len() + config_len) as u64),
        "{job}"
    );
    let base = dir.path().join("models/openvoice/base");
    assert_eq!(
        std::fs::read(base.join("de_DE-thorsten-medium.onnx")).unwrap(),
        onnx
    );
    assert!(base.join("de_DE-thorsten-medium.onnx.json").is_file());

    // The overview lists the job; an unknown job is a 404.
    let v: Value = admin(http.get(format!("{url}/admin/api/models")))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["jobs"][0]["name"], "de_DE-thorsten-medium", "{v}");
    let r = admin(http.get(format!("{url}/admin/api/models/fetch/999")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);

    // A failing fetch ends as `failed` with the file named.
    let r = admin(http.post(format!("{url}/admin/api/models/fetch")))
        .json(&json!({"name": "de_DE-karl-medium"}))
        .send()
        .await
        .unwrap();
    let id = r.json::<Value>().await.unwrap()["id"].as_u64().unwrap();
    let job: Value = admin(http.get(format!("{url}/admin/api/models/fetch/{id}?wait=true")))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(job["state"], "failed", "{job}");
    assert_eq!(job["error"]["code"], "unknown_model", "{job}");
    assert!(
        job["error"]["message"]
            .as_str()
            .unwrap()
            .contains("de_DE-thorsten-medium"),
        "{job}"
    );
}

#[tokio::test]
async fn the_admin_page_fetches_a_voice_and_shows_the_progress() {
    let dir = tempfile::tempdir().unwrap();
    let hub = LocalHub::start();
    let (onnx, _) = serve_voice(&hub);
    let (_gw, url) = gateway(dir.path(), &hub);
    let b = browser::Browser::start().await;
    b.goto(&format!("{url}/admin")).await;
    b.wait_text("the login form", "#login-title", |t| t.contains("Sign in"))
        .await;
    b.fill("#login-password", PASSWORD).await;
    b.click("#login-submit").await;
    b.wait_text("the signed-in user", "#whoami", |t| t == "admin")
        .await;
    b.click("#models-details summary").await;
    let rows = b
        .wait_text("the catalog", "#model-rows", |t| {
            t.contains("openvoice-converter")
        })
        .await;
    assert!(
        rows.contains("xtts-v2") && rows.contains("not installed"),
        "{rows}"
    );
    b.fill("#piper-name", "de_DE-thorsten-medium").await;
    b.click("#piper-fetch").await;
    let jobs = b
        .wait_text("the finished fetch", "#fetch-jobs", |t| {
            t.contains("installed in")
        })
        .await;
    assert!(jobs.contains("de_DE-thorsten-medium"), "{jobs}");
    assert_eq!(
        std::fs::read(
            dir.path()
                .join("models/openvoice/base/de_DE-thorsten-medium.onnx")
        )
        .unwrap(),
        onnx
    );
    // A bad name is explained beside the field, nothing is started.
    b.fill("#piper-name", "thorsten").await;
    b.click("#piper-fetch").await;
    b.wait_text("the field error", "#err-piper-name", |t| {
        t.contains("de_DE-thorsten-medium")
    })
    .await;
    // The 401 of the session check before signing in is expected.
    b.assert_console_clean("/admin", &["/admin/api/me"]).await;
}
