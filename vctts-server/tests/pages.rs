//! Browser tests of the three pages (`/status`, `/admin`, `/playground`) in
//! headless Chromium driven over chromedriver, always against the real
//! gateway — its handlers, its node registry, its admin API.
//!
//! Two kinds of test:
//! - the page tests (`status_*`, `admin_*`, `playground_*`, `pages_*`): the
//!   real gateway served in process with its real in-process OpenVoice node
//!   (`pages/inproc.rs`); other nodes join through the cluster protocol as
//!   simulated workers whose state and metrics the test chooses (nodes that
//!   report nothing, fail, fall silent or leave), and announcements, voices,
//!   logs and settings are made through the public and admin APIs — every
//!   page feature, missing fields, 401/422 handling;
//! - `gateway_*`: the real pages on a gateway with two real OpenVoice
//!   workers (`pages/cluster.rs`, processes of `vctts-server`) — what an
//!   operator does: watch, kill a worker, log in, put a node on standby,
//!   change a setting, synthesize, clone a voice, run the copied cURL.
//!
//! Each test checks the browser console for errors, and saves screenshots
//! under `target/screenshots/`. Conditions are awaited with a deadline
//! ([`browser::eventually`], the tests' one polling helper), never with fixed
//! sleeps. The tests run on a current-thread runtime: the in-process gateway
//! runs on it too (see `pages/inproc.rs`).

#[path = "pages/browser.rs"]
mod browser;
#[path = "pages/cluster.rs"]
mod cluster;
#[path = "pages/inproc.rs"]
mod inproc;

use browser::{Browser, DEADLINE, eventually};
use inproc::{InProc, LOCAL_NODE};
use serde_json::{Value, json};
use std::path::Path;

/// Console messages the admin flow provokes on purpose (a 401 before login
/// and after a session ends, a 422 from the validation check).
const ADMIN_EXPECTED: &[&str] = &[
    "/admin/api/me - Failed to load resource: the server responded with a status of 401",
    "/admin/api/login - Failed to load resource: the server responded with a status of 401",
    "/admin/api/nodes - Failed to load resource: the server responded with a status of 401",
    "/admin/api/config - Failed to load resource: the server responded with a status of 422",
];

/// `(METHOD path)` of every operation the playground must offer.
fn operations(doc: &Value) -> Vec<String> {
    let mut out = Vec::new();
    for (path, item) in doc["paths"].as_object().expect("paths").iter() {
        if !(path.starts_with("/api/v3") || path.starts_with("/v1/")) {
            continue;
        }
        for m in ["get", "post", "put", "patch", "delete"] {
            if item.get(m).is_some() {
                out.push(format!("{} {path}", m.to_uppercase()));
            }
        }
    }
    out
}

/// Runs a command in `dir` the way a user would paste it (asynchronously: the
/// in-process gateway answering it runs on this test's runtime).
async fn run_in(dir: &Path, program: &str, script: &str) -> std::process::Output {
    let run = tokio::process::Command::new(program)
        .arg("-c")
        .arg(script)
        .current_dir(dir)
        .output();
    tokio::time::timeout(std::time::Duration::from_secs(120), run)
        .await
        .unwrap_or_else(|_| panic!("{program} did not finish in 120 s:\n{script}"))
        .unwrap_or_else(|e| panic!("run {program}: {e}"))
}

/// Asserts `path` is a WAV with at least `min_seconds` of audio.
fn assert_wav(path: &Path, min_seconds: f64) {
    let r = hound::WavReader::open(path).unwrap_or_else(|e| panic!("{} is not a WAV: {e}", path.display()));
    let secs = r.duration() as f64 / r.spec().sample_rate as f64;
    assert!(
        secs >= min_seconds,
        "{} holds {secs} s of audio, expected at least {min_seconds}",
        path.display()
    );
}

/// Whether a response line of the playground starts with an HTTP status.
fn has_status(line: &str) -> bool {
    line.len() > 3 && line.as_bytes()[..3].iter().all(u8::is_ascii_digit) && line.as_bytes()[3] == b' '
}

/// Whether `t` is a duration as the pages format it (`870 ms`, `1.50 s`).
fn is_duration(t: &str) -> bool {
    let Some((n, unit)) = t.split_once(' ') else {
        return false;
    };
    matches!(unit, "ms" | "s") && n.parse::<f64>().is_ok_and(|v| v >= 0.0)
}

async fn state_of(b: &Browser, node: &str) -> String {
    b.text(&format!(
        "#engines tr[data-node-id=\"{node}\"] [data-field=state]"
    ))
    .await
}

async fn wait_state(b: &Browser, node: &str, want: &str) {
    eventually(
        DEADLINE,
        &format!("{node} to show {want} on /status"),
        || async move {
            let s = state_of(b, node).await;
            if s == want {
                Ok(())
            } else {
                Err(format!("state {s:?}"))
            }
        },
    )
    .await
}

async fn audio_duration(b: &Browser, css: &str) -> f64 {
    let css = css.to_string();
    eventually(DEADLINE, &format!("{css} to have a positive duration"), || {
        let css = css.clone();
        async move {
            let v = b
                .js(
                    "const a = document.querySelector(arguments[0]); return a && a.src ? [a.duration, a.readyState, a.error ? a.error.message : ''] : null;",
                    vec![json!(css)],
                )
                .await;
            match v[0].as_f64() {
                Some(d) if d.is_finite() && d > 0.0 => Ok(d),
                _ => Err(v.to_string()),
            }
        }
    })
    .await
}

/// The values of the options of a `<select>`.
async fn options(b: &Browser, css: &str) -> Vec<String> {
    let v = b
        .js(
            "return [...document.querySelectorAll(arguments[0] + ' option')].map(o => o.value);",
            vec![json!(css)],
        )
        .await;
    serde_json::from_value(v).unwrap_or_default()
}

/// Metrics of a simulated worker: some fields, as a worker reports them.
fn worker_metrics(cpu: f64, memory_mb: u64) -> Value {
    json!({"cpu_percent": cpu, "memory_bytes": memory_mb << 20, "in_flight": 0, "queued": 0, "requests": 40, "errors": 0})
}

/// Audit records (messages) that name `needle`.
async fn audited(g: &InProc, needle: &str) -> Vec<String> {
    g.logs("audit")
        .await
        .iter()
        .filter_map(|r| r["message"].as_str())
        .filter(|m| m.contains(needle))
        .map(String::from)
        .collect()
}

// ---------------------------------------------------------------- in-process gateway

#[tokio::test]
async fn status_page_shows_everything_and_follows_nodes_live() {
    let g = InProc::start().await;
    // Workers join through the cluster protocol: two ready xtts nodes with
    // metrics, one gpt-sovits node in standby that reports nothing else.
    let a = g
        .register(
            "xtts",
            "http://127.0.0.1:18002",
            "ready",
            worker_metrics(12.5, 512),
        )
        .await;
    let b2 = g
        .register(
            "xtts",
            "http://127.0.0.1:18012",
            "ready",
            worker_metrics(40.0, 700),
        )
        .await;
    let x = g
        .register("gpt-sovits", "http://127.0.0.1:18022", "standby", json!({}))
        .await;
    g.announce("warning", "Maintenance tonight at 22:00").await;

    let b = Browser::start().await;
    b.goto(&format!("{}/", g.url)).await;
    let here = b.client.current_url().await.expect("url");
    assert_eq!(here.path(), "/status", "/ redirects to /status");

    wait_state(&b, LOCAL_NODE, "ready").await;
    wait_state(&b, &a.id, "ready").await;
    wait_state(&b, &b2.id, "ready").await;
    wait_state(&b, &x.id, "standby").await;
    b.wait_text("the live mode", "#live-mode", |t| t.starts_with("live"))
        .await;
    assert_eq!(b.text("#card-online").await, "4 / 4");
    // The overview comes from the gateway's own metrics (the test's API calls count).
    let latency = b
        .wait_text("the latency card", "#card-latency", is_duration)
        .await;
    assert!(is_duration(&latency), "{latency}");
    let concurrency = b.text("#card-concurrency").await;
    let (running, queued) = concurrency
        .split_once(" (+")
        .map(|(r, q)| (r.to_string(), q.trim_end_matches(" queued)").to_string()))
        .unwrap_or((concurrency.clone(), "0".into()));
    assert!(
        running.parse::<u32>().is_ok() && queued.parse::<u32>().is_ok(),
        "concurrency {concurrency:?}"
    );
    let total = b.text("#card-requests").await;
    assert!(
        !total.is_empty() && total.chars().all(|c| c.is_ascii_digit() || c == ',') && total != "0",
        "total requests {total:?}"
    );
    // A node that reports nothing else shows dashes, not "undefined".
    let bare = b.text(&format!("#engines tr[data-node-id=\"{}\"]", x.id)).await;
    assert!(
        bare.contains('\u{2014}') && !bare.contains("undefined") && !bare.contains("NaN"),
        "{bare}"
    );
    let a_row = b.text(&format!("#engines tr[data-node-id=\"{}\"]", a.id)).await;
    assert!(
        a_row.contains(&a.endpoint) && a_row.contains("13%") && a_row.contains("512 MB"),
        "{a_row}"
    );
    let local_row = b
        .text(&format!("#engines tr[data-node-id=\"{LOCAL_NODE}\"]"))
        .await;
    assert!(local_row.contains("inproc://openvoice"), "{local_row}");
    for (engine, line) in [
        ("openvoice", "1 of 1 nodes ready"),
        ("xtts", "2 of 2 nodes ready"),
        ("gpt-sovits", "0 of 1 nodes ready"),
    ] {
        let block = b.text(&format!("#engines section[data-engine={engine}]")).await;
        assert!(block.contains(line), "{engine}: {block}");
    }
    // The gateway's own endpoint checks.
    for endpoint in ["/api/v3/health", "/api/v3/voices"] {
        let row = b
            .wait_text(
                &format!("the check of {endpoint}"),
                &format!("#endpoints tr[data-endpoint=\"{endpoint}\"]"),
                |t| t.contains("200 OK"),
            )
            .await;
        assert!(row.contains(" ms") || row.contains(" s"), "{row}");
    }
    let notices = b.text("#announcements").await;
    assert!(
        notices.contains("[warning]") && notices.contains("Maintenance tonight"),
        "{notices}"
    );
    assert!(
        b.text("#footer-line")
            .await
            .contains(&format!("version {}", env!("CARGO_PKG_VERSION")))
    );
    // The chart samples every 2 s: after two samples it has a line and a current value.
    b.wait_text("a chart sample", "#chart-latency-now", |t| {
        t.strip_prefix("now ").is_some_and(is_duration)
    })
    .await;
    eventually(DEADLINE, "the latency chart to draw its line", || async {
        let drawn = b
            .js(
                "const c = document.getElementById('chart-latency'); const g = c.getContext('2d'); \
                 const d = g.getImageData(0, 0, c.width, c.height).data; let n = 0; \
                 for (let i = 0; i < d.length; i += 4) if (d[i + 2] > 120 && d[i] < 60) n += 1; return n;",
                vec![],
            )
            .await;
        if drawn.as_u64().unwrap_or(0) > 20 {
            Ok(())
        } else {
            Err(format!("{drawn} line pixels"))
        }
    })
    .await;
    b.screenshot("inproc-status-1440").await;

    // Live: no reload between these changes (the marker would be gone).
    b.js("window.__sameDocument = 42; return null;", vec![]).await;
    x.set_state("loading", None).await;
    wait_state(&b, &x.id, "loading").await;
    // A worker that stops heartbeating turns offline, and the gateway announces it.
    b2.fall_silent();
    wait_state(&b, &b2.id, "offline").await;
    assert_eq!(b.text("#card-online").await, "3 / 4");
    let notices = b
        .wait_text("the offline announcement", "#announcements", |t| {
            t.contains(b2.id.as_str())
        })
        .await;
    assert!(notices.contains("offline"), "{notices}");
    // A worker that leaves stays listed, as offline, instead of vanishing.
    b2.deregister().await;
    eventually(DEADLINE, "the vanished node to stay listed as offline", || async {
        let cls = b
            .js_str(
                "const r = document.querySelector(`#engines tr[data-node-id=\"${arguments[0]}\"]`); return r ? r.className : 'missing';",
                vec![json!(b2.id)],
            )
            .await;
        if cls == "gone" { Ok(()) } else { Err(cls) }
    })
    .await;
    assert_eq!(state_of(&b, &b2.id).await, "offline");
    assert!(
        g.node_state(&b2.id).await.is_none(),
        "the gateway forgot the node"
    );
    assert_eq!(
        b.js("return window.__sameDocument;", vec![]).await,
        json!(42),
        "the page reloaded"
    );

    b.size(375, 812).await;
    b.assert_no_horizontal_overflow("/status").await;
    b.screenshot("inproc-status-375").await;

    b.click("#live-toggle").await;
    b.wait_text("the paused mode", "#live-mode", |t| t == "paused")
        .await;
    b.assert_console_clean("/status", &[]).await;
}

#[tokio::test]
async fn status_page_polls_when_the_event_stream_is_blocked() {
    let g = InProc::start().await;
    let w = g
        .register(
            "xtts",
            "http://127.0.0.1:18003",
            "ready",
            worker_metrics(5.0, 300),
        )
        .await;
    let b = Browser::start().await;
    // As behind a proxy that drops event streams: the browser cannot open /api/v3/events.
    b.block_urls(&["*/api/v3/events*"]).await;
    b.goto(&format!("{}/status", g.url)).await;
    wait_state(&b, LOCAL_NODE, "ready").await;
    wait_state(&b, &w.id, "ready").await;
    b.wait_text("the polling mode", "#live-mode", |t| t.starts_with("polling"))
        .await;
    let polled = g.served("/api/v3/nodes").await;
    w.set_state("error", Some("the engine crashed")).await;
    wait_state(&b, &w.id, "error").await;
    assert!(
        g.served("/api/v3/nodes").await > polled,
        "the page learned the new state without polling /api/v3/nodes"
    );
    assert_eq!(g.served("/api/v3/events").await, 0, "an event stream got through");
    b.assert_console_clean("/status (polling)", &["/api/v3/events"])
        .await;
}

#[tokio::test]
async fn admin_page_logs_in_acts_on_nodes_and_edits_settings_logs_and_announcements() {
    let g = InProc::start().await;
    let sim = g
        .register(
            "xtts",
            "http://127.0.0.1:18004",
            "ready",
            worker_metrics(12.5, 512),
        )
        .await;
    g.announce("warning", "Maintenance tonight at 22:00").await;
    let b = Browser::start().await;
    b.goto(&format!("{}/admin", g.url)).await;

    // Nothing but the login form without a session; the API refuses too.
    b.wait_text("the login form", "#login-title", |t| t.contains("Sign in"))
        .await;
    assert!(b.visible("#login-form").await && !b.visible("#app-view").await);
    let status = b
        .js("return fetch('/admin/api/nodes').then(r => r.status);", vec![])
        .await;
    assert_eq!(status, json!(401));
    b.screenshot("inproc-admin-login").await;

    b.fill("#login-password", "wrong-password").await;
    b.click("#login-submit").await;
    b.wait_text("the login error", "#login-error", |t| {
        t.contains("Wrong user name or password")
    })
    .await;
    b.fill("#login-password", inproc::ADMIN_PASSWORD).await;
    b.click("#login-submit").await;
    b.wait_text("the signed-in user", "#whoami", |t| t == "admin")
        .await;
    assert!(!b.visible("#login-form").await);
    b.wait_text("the node rows", "#node-rows", |t| {
        t.contains(LOCAL_NODE) && t.contains(sim.id.as_str())
    })
    .await;
    let local_model = format!("#node-rows tr[data-node-id=\"{LOCAL_NODE}\"] [data-field=model]");
    assert_eq!(b.text(&local_model).await, "Loaded");

    // Destructive actions ask first; cancelling sends nothing.
    let standby = format!("button[data-action=standby][data-node-id=\"{LOCAL_NODE}\"]");
    b.click(&standby).await;
    assert!(b.visible("#confirm").await, "standby asks for confirmation");
    assert!(b.text("#confirm-text").await.contains(LOCAL_NODE));
    b.click("#confirm-cancel").await;
    b.wait_text("the cancel notice", "#node-result", |t| t.contains("cancelled"))
        .await;
    assert!(
        audited(&g, "standby").await.is_empty(),
        "a cancelled action reached the gateway"
    );
    assert_eq!(g.node_state(LOCAL_NODE).await.as_deref(), Some("ready"));
    b.click(&standby).await;
    b.click("#confirm-ok").await;
    b.wait_text("the action result", "#node-result", |t| t.contains("done"))
        .await;
    assert_eq!(g.node_state(LOCAL_NODE).await.as_deref(), Some("standby"));
    let actions = audited(&g, "standby").await;
    assert!(
        actions.len() == 1 && actions[0].starts_with("admin ") && actions[0].contains(LOCAL_NODE),
        "{actions:?}"
    );
    b.wait_text("the model column", &local_model, |t| t == "Unloaded")
        .await;
    // Activate is offered only when the model is not loaded.
    let disabled = format!(
        "return document.querySelector('button[data-action=activate][data-node-id=\"{}\"]').disabled;",
        sim.id
    );
    assert_eq!(b.js(&disabled, vec![]).await, json!(true));
    b.screenshot("inproc-admin-1440").await;

    b.note_console("/admin").await;
    // The standby shows on /status.
    b.goto(&format!("{}/status", g.url)).await;
    wait_state(&b, LOCAL_NODE, "standby").await;
    b.note_console("/status after standby").await;
    b.goto(&format!("{}/admin", g.url)).await;
    b.wait_text("the signed-in user after navigation", "#whoami", |t| t == "admin")
        .await;
    // Activate needs no confirmation: the real node loads its voice again.
    b.click(&format!(
        "button[data-action=activate][data-node-id=\"{LOCAL_NODE}\"]"
    ))
    .await;
    b.wait_text("the activate result", "#node-result", |t| {
        t.contains(&format!("Activate on {LOCAL_NODE}: done"))
    })
    .await;
    assert_eq!(g.node_state(LOCAL_NODE).await.as_deref(), Some("ready"));
    b.wait_text("the model column after activation", &local_model, |t| {
        t == "Loaded"
    })
    .await;

    // Settings: the 422 is shown beside its field, then good values save.
    eventually(DEADLINE, "the settings to load", || async {
        let v = b
            .js_str(
                "return document.querySelector('[name=\"limiter.ip_rpm\"]').value;",
                vec![],
            )
            .await;
        if v == "10000" { Ok(()) } else { Err(v) }
    })
    .await;
    b.fill("[name=\"limiter.ip_rpm\"]", "-5").await;
    b.click("#settings-save").await;
    let msg = b
        .wait_text("the field error", "#err-ip-rpm", |t| !t.is_empty())
        .await;
    assert!(msg.contains("limiter.ip_rpm"), "{msg}");
    assert_eq!(
        b.js_str(
            "return document.querySelector('[name=\"limiter.ip_rpm\"]').getAttribute('aria-invalid');",
            vec![]
        )
        .await,
        "true"
    );
    assert_eq!(
        g.settings().await["limiter"]["ip_rpm"],
        json!(10000),
        "a refused update changed the settings"
    );
    b.fill("[name=\"limiter.ip_rpm\"]", "4200").await;
    b.select("[name=balance_policy]", "round_robin").await;
    b.select("[name=log_level]", "WARNING").await;
    b.click("#settings-save").await;
    b.wait_text("the saved notice", "#settings-result", |t| t.contains("saved"))
        .await;
    assert_eq!(b.text("#err-ip-rpm").await, "");
    let s = g.settings().await;
    assert_eq!(s["limiter"]["ip_rpm"], json!(4200), "{s}");
    assert_eq!(s["limiter"]["global_rpm"], json!(100000), "{s}");
    assert_eq!(s["balance_policy"], json!("round_robin"), "{s}");
    assert_eq!(s["log_level"], json!("WARNING"), "{s}");
    assert_eq!(s["default_engine"], json!("openvoice"), "{s}");

    // Logs: filters and the live tail.
    b.wait_text("the log records", "#log-list", |t| {
        t.contains("login") && t.contains("request served")
    })
    .await;
    b.wait_text("the live tail", "#log-mode", |t| t == "live tail")
        .await;
    b.select("#log-category", "audit").await;
    eventually(DEADLINE, "only audit records", || async {
        let cats = b
            .js(
                "return [...document.querySelectorAll('#log-list li')].map(li => li.dataset.category);",
                vec![],
            )
            .await;
        let cats: Vec<String> = serde_json::from_value(cats).unwrap_or_default();
        if !cats.is_empty() && cats.iter().all(|c| c == "audit") {
            Ok(())
        } else {
            Err(format!("{cats:?}"))
        }
    })
    .await;
    b.wait_text("the live tail after the filter", "#log-mode", |t| {
        t == "live tail"
    })
    .await;
    // An access record (a request the filter hides), then an audit record (one it shows).
    let probe = "/api/v3/voices/filtered-out-probe";
    let r = reqwest::get(format!("{}{probe}", g.url)).await.expect("GET");
    assert_eq!(r.status().as_u16(), 404);
    assert!(g.served(probe).await >= 1, "the request left no access record");
    g.announce("info", "Operator note from the API").await;
    let records = g.logs("audit").await;
    // The page shows each record's request id, which tells this record from older ones.
    let note = records
        .iter()
        .rfind(|r| r["extra"]["action"] == "POST /admin/api/announcements")
        .and_then(|r| r["request_id"].as_str())
        .map(|rid| format!("req {rid}"))
        .unwrap_or_else(|| panic!("no audit record of the operator's announcement: {records:?}"));
    b.wait_text("the new audit record", "#log-list", |t| t.contains(&note))
        .await;
    assert!(!b.text("#log-list").await.contains("filtered-out-probe"));

    // Announcements.
    b.wait_text("the announcements", "#ann-list", |t| {
        t.contains("Maintenance tonight")
    })
    .await;
    b.select("#ann-type", "error").await;
    b.fill("#ann-message", "Disk almost full on a worker").await;
    b.click("#ann-create").await;
    b.wait_text("the new announcement", "#ann-list", |t| {
        t.contains("Disk almost full on a worker")
    })
    .await;
    let stored = g.announcements().await;
    let made = stored
        .iter()
        .find(|a| a["message"] == "Disk almost full on a worker")
        .unwrap_or_else(|| panic!("not stored: {stored:?}"));
    assert_eq!(made["type"], json!("error"));
    let id = made["id"].as_str().expect("id").to_string();
    b.click(&format!("#ann-list li[data-announcement-id=\"{id}\"] button"))
        .await;
    b.wait_text("the deleted announcement to go", "#ann-list", |t| {
        !t.contains("Disk almost full")
    })
    .await;
    assert!(
        !g.announcements().await.iter().any(|a| a["id"] == id.as_str()),
        "the announcement is still stored"
    );

    b.size(375, 812).await;
    b.assert_no_horizontal_overflow("/admin").await;
    b.screenshot("inproc-admin-375").await;
    b.size(1440, 900).await;

    // A session that ends (here: signed out from another tab) sends the page
    // back to the login form.
    let status = b
        .js(
            "return fetch('/admin/api/logout', {method: 'POST', headers: {'X-Requested-With': 'vctts'}}).then(r => r.status);",
            vec![],
        )
        .await;
    assert_eq!(status, json!(200));
    b.wait_text("the session-ended notice", "#login-error", |t| {
        t.contains("session has ended")
    })
    .await;
    assert!(!b.visible("#app-view").await);
    b.fill("#login-password", inproc::ADMIN_PASSWORD).await;
    b.click("#login-submit").await;
    b.wait_text("the signed-in user again", "#whoami", |t| t == "admin")
        .await;
    b.click("#logout").await;
    b.wait_text("the signed-out notice", "#login-error", |t| {
        t.contains("Signed out")
    })
    .await;
    let status = b
        .js("return fetch('/admin/api/me').then(r => r.status);", vec![])
        .await;
    assert_eq!(status, json!(401));
    // Every state change the page sent carried the CSRF header.
    let refused = audited(&g, "X-Requested-With").await;
    assert!(refused.is_empty(), "{refused:?}");
    b.assert_console_clean("/admin", ADMIN_EXPECTED).await;
}

#[tokio::test]
async fn playground_has_a_form_per_endpoint_and_runs_requests_and_code() {
    let g = InProc::start().await;
    let dir = tempfile::tempdir().expect("tmp");
    let reference = cluster::reference_clip(dir.path());
    let alice = g
        .clone_voice("Alice", std::fs::read(&reference).expect("reference clip"))
        .await;
    let doc = g.get_json("/api/v3/openapi.json").await;
    let b = Browser::start().await;
    b.goto(&format!("{}/playground", g.url)).await;
    b.wait_text("the API description", "#spec-status", |t| {
        t.contains("endpoints from")
    })
    .await;
    check_every_operation_has_a_form(&b, &doc).await;

    // Synthesize with the default voice.
    b.select("#endpoint", "POST /api/v3/synthesize").await;
    let voices = options(&b, "#f-body-voice").await;
    assert!(
        voices.contains(&alice) && voices.contains(&"en_US-joe-medium".to_string()),
        "{voices:?}"
    );
    assert_eq!(
        voices.first().map(String::as_str),
        Some(""),
        "the default voice comes first"
    );
    b.click("#send").await;
    let line = b.wait_text("the synthesis", "#response-status", has_status).await;
    assert!(
        line.starts_with("200"),
        "synthesis failed: {line}\n{}",
        b.text("#response-body").await
    );
    let d = audio_duration(&b, "#response-audio").await;
    assert!(d > 0.3, "duration {d}");
    assert!(
        b.js_str("return document.getElementById('download').href;", vec![])
            .await
            .starts_with("blob:")
    );
    b.screenshot("inproc-playground-1440").await;

    // The copied cURL and Python run as shown.
    b.click("#copy-curl").await;
    b.wait_text("the copy notice", "#copy-result", |t| t.contains("cURL"))
        .await;
    let curl = b.text("#code-curl").await;
    assert!(curl.contains("-o speech.wav"), "{curl}");
    let out = run_in(dir.path(), "bash", &curl).await;
    assert!(
        out.status.success(),
        "cURL failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_wav(&dir.path().join("speech.wav"), 0.3);
    let python = b.text("#code-python").await;
    std::fs::remove_file(dir.path().join("speech.wav")).expect("rm");
    let out = run_in(dir.path(), "python3", &python).await;
    assert!(
        out.status.success(),
        "Python failed: {}\n{python}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_wav(&dir.path().join("speech.wav"), 0.3);

    // A custom voice id is sent as typed; the server's 404 is shown.
    b.select("#f-body-voice", "__custom__").await;
    b.fill("#f-body-voice-custom", "nobody").await;
    assert!(b.text("#code-curl").await.contains("\"voice\":\"nobody\""));
    b.click("#send").await;
    b.wait_text("the 404", "#response-status", |t| {
        t.starts_with("404") && t.contains("voice_not_found")
    })
    .await;

    // Streaming plays as it arrives and ends as a playable file.
    b.select("#endpoint", "POST /api/v3/synthesize/stream").await;
    b.click("#send").await;
    b.wait_text("the stream progress", "#stream-status", |t| {
        t.contains("Playing as it arrives")
    })
    .await;
    let line = b
        .wait_text("the end of the stream", "#response-status", |t| {
            t.contains("s of audio")
        })
        .await;
    let received: f64 = line
        .trim_end_matches(" s of audio")
        .rsplit(' ')
        .next()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no duration in {line:?}"));
    let d = audio_duration(&b, "#response-audio").await;
    // The file the page assembled from the chunks holds all it received.
    assert!(
        d > 0.3 && (d - received).abs() < 0.05,
        "streamed duration {d}, received {received}"
    );
    assert!(b.text("#code-curl").await.contains(" -N"));

    // extract_voice by upload; the new voice appears in the dropdown.
    b.select("#endpoint", "POST /api/v3/extract_voice").await;
    let file = b
        .client
        .find(fantoccini::Locator::Css("#f-form-audio"))
        .await
        .expect("file input");
    file.send_keys(reference.to_str().expect("utf-8 path"))
        .await
        .expect("choose file");
    b.fill("#f-form-name", "Bob Smith").await;
    let curl = b.text("#code-curl").await;
    assert!(
        curl.contains("-F 'audio=@reference.wav'") && curl.contains("-F 'name=Bob Smith'"),
        "{curl}"
    );
    b.click("#send").await;
    let line = b
        .wait_text("the extraction", "#response-status", has_status)
        .await;
    assert!(
        line.starts_with("200") || line.starts_with("201"),
        "extraction failed: {line}\n{}",
        b.text("#response-body").await
    );
    let answer: Value = serde_json::from_str(&b.text("#response-body").await).expect("a JSON answer");
    assert_eq!(answer["voice"]["name"], json!("Bob Smith"));
    let bob = answer["voice"]["id"]
        .as_str()
        .expect("the stored voice's id")
        .to_string();
    let stored = g.get_json(&format!("/api/v3/voices/{bob}")).await;
    assert_eq!(stored["name"], json!("Bob Smith"), "{stored}");
    b.select("#endpoint", "POST /api/v3/synthesize").await;
    eventually(DEADLINE, "the new voice in the dropdown", || async {
        let v = options(&b, "#f-body-voice").await;
        if v.contains(&bob) {
            Ok(())
        } else {
            Err(format!("{v:?}"))
        }
    })
    .await;
    // The extract cURL runs too (from the folder holding the file).
    let out = run_in(dir.path(), "bash", &curl).await;
    assert!(
        out.status.success(),
        "extract cURL failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let body: Value = serde_json::from_slice(&out.stdout).expect("JSON answer");
    assert_eq!(body["voice"]["name"], json!("Bob Smith"));

    // Bad JSON is caught beside its field; nothing is sent.
    b.select("#endpoint", "POST /api/v3/synthesize/batch").await;
    b.fill("#f-body-items", "[{\"text\": ").await;
    b.click("#send").await;
    b.wait_text("the JSON error", "#f-body-items-err", |t| {
        t.contains("Not valid JSON")
    })
    .await;
    assert_eq!(g.served("/api/v3/synthesize/batch").await, 0, "bad JSON was sent");
    b.fill("#f-body-items", "[{\"text\": \"one\"}, {\"text\": \"\"}]")
        .await;
    b.click("#send").await;
    let line = b.wait_text("the batch", "#response-status", has_status).await;
    assert!(
        line.starts_with("200"),
        "batch failed: {line}\n{}",
        b.text("#response-body").await
    );
    audio_duration(&b, "#response-extra audio").await;
    assert_eq!(g.served("/api/v3/synthesize/batch").await, 1);

    // OpenAI-compatible speech.
    b.select("#endpoint", "POST /v1/audio/speech").await;
    b.click("#send").await;
    let line = b.wait_text("the speech", "#response-status", has_status).await;
    assert!(
        line.starts_with("200"),
        "speech failed: {line}\n{}",
        b.text("#response-body").await
    );
    audio_duration(&b, "#response-audio").await;

    b.size(375, 812).await;
    b.assert_no_horizontal_overflow("/playground").await;
    b.screenshot("inproc-playground-375").await;
    b.assert_console_clean(
        "/playground",
        &["/api/v3/synthesize - Failed to load resource: the server responded with a status of 404"],
    )
    .await;
}

#[tokio::test]
async fn pages_are_keyboard_reachable() {
    let g = InProc::start().await;
    let b = Browser::start().await;
    b.goto(&format!("{}/admin", g.url)).await;
    b.wait_text("the login form", "#login-title", |t| t.contains("Sign in"))
        .await;
    let order = b.tab_order(10).await;
    for id in ["login-username", "login-password", "login-submit"] {
        assert!(
            order.iter().any(|x| x == id),
            "Tab never reaches #{id}: {order:?}"
        );
    }
    // The focus ring is visible.
    let outline = b
        .js_str(
            "document.getElementById('login-username').focus(); return getComputedStyle(document.activeElement).outlineStyle;",
            vec![],
        )
        .await;
    assert_eq!(outline, "solid");
    b.goto(&format!("{}/playground", g.url)).await;
    b.wait_text("the API description", "#spec-status", |t| {
        t.contains("endpoints from")
    })
    .await;
    let order = b.tab_order(30).await;
    for id in ["endpoint", "f-body-text", "send"] {
        assert!(
            order.iter().any(|x| x == id),
            "Tab never reaches #{id}: {order:?}"
        );
    }
    b.assert_console_clean("keyboard walk", ADMIN_EXPECTED).await;
}

/// Every operation of `doc` is in the endpoint selector and gets its form.
async fn check_every_operation_has_a_form(b: &Browser, doc: &Value) {
    let ops = operations(doc);
    assert!(ops.len() >= 10, "the document lists only {ops:?}");
    let offered = b
        .js(
            "return [...document.querySelectorAll('#endpoint option')].map(o => o.value);",
            vec![],
        )
        .await;
    let offered: Vec<String> = serde_json::from_value(offered).expect("options");
    let mut missing: Vec<&String> = ops.iter().filter(|o| !offered.contains(o)).collect();
    missing.sort();
    assert!(
        missing.is_empty(),
        "endpoints without a form in the playground: {missing:?}"
    );
    for op in &ops {
        b.select("#endpoint", op).await;
        let shown = b
            .js_str("return document.getElementById('op-form').dataset.op;", vec![])
            .await;
        assert_eq!(&shown, op, "selecting {op} shows its form");
        let curl = b.text("#code-curl").await;
        let path = op.split(' ').nth(1).expect("path");
        let stem = path.split('{').next().expect("stem");
        assert!(curl.contains(stem), "the cURL of {op} names its path: {curl}");
    }
}

// ---------------------------------------------------------------- real gateway

#[tokio::test]
async fn gateway_status_shows_both_workers_and_a_killed_one_goes_offline() {
    let mut c = cluster::Cluster::start(2).await;
    // Ready first: while no node is, /api/v3/health answers 503 (a console error).
    let ids = c.wait_for_nodes(2).await;
    let b = Browser::start().await;
    b.goto(&format!("{}/status", c.url)).await;
    for id in &ids {
        wait_state(&b, id, "ready").await;
    }
    b.wait_text("the online card", "#card-online", |t| t == "2 / 2")
        .await;
    b.screenshot("gateway-status-1440").await;
    b.js("window.__sameDocument = 7; return null;", vec![]).await;
    let victim = c.kill_worker(1);
    let victim_id = c.node_id_of(&victim, &ids).await;
    eventually(
        cluster::OFFLINE_DEADLINE,
        "the killed worker to turn offline on the open page",
        || async {
            let s = state_of(&b, &victim_id).await;
            if s == "offline" {
                Ok(())
            } else {
                Err(format!("state {s:?}"))
            }
        },
    )
    .await;
    assert_eq!(
        b.js("return window.__sameDocument;", vec![]).await,
        json!(7),
        "the page reloaded"
    );
    b.wait_text("the online card after the kill", "#card-online", |t| {
        t.starts_with("1 /")
    })
    .await;
    // The gateway announces the offline node; the page shows it.
    let notices = b
        .wait_text("the offline announcement", "#announcements", |t| {
            t.contains(victim_id.as_str())
        })
        .await;
    assert!(
        notices.contains("[warning]") && notices.contains("offline"),
        "{notices}"
    );
    b.size(375, 812).await;
    b.assert_no_horizontal_overflow("/status").await;
    b.screenshot("gateway-status-375").await;
    // The worker died on purpose: its calls may fail at the network level once.
    b.assert_console_clean("/status", &[]).await;
}

#[tokio::test]
async fn gateway_admin_standby_shows_on_status_and_a_setting_takes_effect() {
    let c = cluster::Cluster::start(2).await;
    let ids = c.wait_for_nodes(2).await;
    let b = Browser::start().await;
    b.goto(&format!("{}/admin", c.url)).await;
    b.wait_text("the login form", "#login-title", |t| t.contains("Sign in"))
        .await;
    let status = b
        .js("return fetch('/admin/api/nodes').then(r => r.status);", vec![])
        .await;
    assert_eq!(status, json!(401), "the admin API refuses without a session");
    b.fill("#login-password", cluster::ADMIN_PASSWORD).await;
    b.click("#login-submit").await;
    b.wait_text("the signed-in user", "#whoami", |t| t == "admin")
        .await;
    let node = ids[0].clone();
    b.wait_text("the node rows", "#node-rows", |t| t.contains(&node))
        .await;
    b.click(&format!("button[data-action=standby][data-node-id=\"{node}\"]"))
        .await;
    b.click("#confirm-ok").await;
    b.wait_text("the standby result", "#node-result", |t| t.contains("done"))
        .await;
    b.screenshot("gateway-admin-1440").await;
    b.goto(&format!("{}/status", c.url)).await;
    wait_state(&b, &node, "standby").await;
    b.note_console("/status").await;

    // A lower per-IP limit is enforced on the next requests.
    b.goto(&format!("{}/admin", c.url)).await;
    b.wait_text("the signed-in user", "#whoami", |t| t == "admin")
        .await;
    eventually(DEADLINE, "the settings to load", || async {
        let v = b
            .js_str(
                "return document.querySelector('[name=\"limiter.ip_rpm\"]').value;",
                vec![],
            )
            .await;
        if v.is_empty() { Err("empty") } else { Ok(()) }
    })
    .await;
    b.fill("[name=\"limiter.ip_rpm\"]", "-5").await;
    b.click("#settings-save").await;
    let msg = b
        .wait_text("the field error", "#err-ip-rpm", |t| !t.is_empty())
        .await;
    assert!(msg.contains("limiter.ip_rpm"), "the 422 names its field: {msg}");
    b.fill("[name=\"limiter.ip_rpm\"]", "2").await;
    b.click("#settings-save").await;
    b.wait_text("the saved notice", "#settings-result", |t| t.contains("saved"))
        .await;
    let http = reqwest::Client::new();
    let mut codes = Vec::new();
    for _ in 0..4 {
        let r = http
            .get(format!("{}/api/v3/voices", c.url))
            .send()
            .await
            .expect("GET voices");
        codes.push(r.status().as_u16());
    }
    assert!(codes.contains(&429), "ip_rpm=2 is not enforced: {codes:?}");
    // And raising it again lets requests through at once.
    b.fill("[name=\"limiter.ip_rpm\"]", "10000").await;
    b.click("#settings-save").await;
    b.wait_text("the saved notice", "#settings-result", |t| t.contains("saved"))
        .await;
    let r = http
        .get(format!("{}/api/v3/voices", c.url))
        .send()
        .await
        .expect("GET voices");
    assert_eq!(r.status().as_u16(), 200, "ip_rpm=10000 still refuses");
    b.size(375, 812).await;
    b.assert_no_horizontal_overflow("/admin").await;
    b.screenshot("gateway-admin-375").await;
    b.assert_console_clean("/admin", ADMIN_EXPECTED).await;
}

#[tokio::test]
async fn gateway_playground_synthesizes_clones_and_its_curl_runs() {
    let c = cluster::Cluster::start(2).await;
    c.wait_for_nodes(2).await;
    let doc: Value = reqwest::get(format!("{}/api/v3/openapi.json", c.url))
        .await
        .expect("openapi")
        .json()
        .await
        .expect("openapi JSON");
    let b = Browser::start().await;
    b.goto(&format!("{}/playground", c.url)).await;
    b.wait_text("the API description", "#spec-status", |t| {
        t.contains("endpoints from")
    })
    .await;
    let ops = operations(&doc);
    for must in [
        "POST /api/v3/synthesize",
        "POST /api/v3/extract_voice",
        "POST /v1/audio/speech",
    ] {
        assert!(ops.iter().any(|o| o == must), "the OpenAPI document lacks {must}");
    }
    check_every_operation_has_a_form(&b, &doc).await;

    b.select("#endpoint", "POST /api/v3/synthesize").await;
    b.fill("#f-body-text", "Hello from the playground test.").await;
    b.click("#send").await;
    let line = b.wait_text("the synthesis", "#response-status", has_status).await;
    assert!(
        line.starts_with("200"),
        "synthesis failed: {line}\n{}",
        b.text("#response-body").await
    );
    let d = audio_duration(&b, "#response-audio").await;
    assert!(d > 0.5, "duration {d}");
    b.screenshot("gateway-playground-1440").await;

    let dir = tempfile::tempdir().expect("tmp");
    let curl = b.text("#code-curl").await;
    let out = run_in(dir.path(), "bash", &curl).await;
    assert!(
        out.status.success(),
        "cURL failed: {}\n{curl}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_wav(&dir.path().join("speech.wav"), 0.5);

    // Clone a voice from an upload; it appears in the voice dropdown.
    let reference = cluster::reference_clip(dir.path());
    b.select("#endpoint", "POST /api/v3/extract_voice").await;
    let file = b
        .client
        .find(fantoccini::Locator::Css("#f-form-audio"))
        .await
        .expect("file input");
    file.send_keys(reference.to_str().expect("utf-8 path"))
        .await
        .expect("choose file");
    b.fill("#f-form-name", "Playground Clone").await;
    b.click("#send").await;
    let line = b
        .wait_text("the extraction", "#response-status", has_status)
        .await;
    assert!(
        line.starts_with("200") || line.starts_with("201"),
        "extraction failed: {line}\n{}",
        b.text("#response-body").await
    );
    let answer: Value = serde_json::from_str(&b.text("#response-body").await).expect("a JSON answer");
    let id = answer["voice"]["id"]
        .as_str()
        .expect("the stored voice's id")
        .to_string();
    assert_eq!(answer["voice"]["name"], json!("Playground Clone"));
    b.select("#endpoint", "POST /api/v3/synthesize").await;
    let id = &id;
    eventually(DEADLINE, "the cloned voice in the dropdown", || async {
        let v = b
            .js(
                "return [...document.querySelectorAll('#f-body-voice option')].map(o => o.value);",
                vec![],
            )
            .await;
        let v: Vec<String> = serde_json::from_value(v).unwrap_or_default();
        if v.iter().any(|x| x == id) {
            Ok(())
        } else {
            Err(format!("{v:?}"))
        }
    })
    .await;
    b.size(375, 812).await;
    b.assert_no_horizontal_overflow("/playground").await;
    b.screenshot("gateway-playground-375").await;
    b.assert_console_clean("/playground", &[]).await;
}
