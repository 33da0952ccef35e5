//! Browser tests of the three pages (`/status`, `/admin`, `/playground`) in
//! headless Chromium driven over chromedriver.
//!
//! Two kinds of test:
//! - `fake_*`: the real pages against a contract fake of the gateway
//!   (`pages/fake.rs`) whose state the test changes at will — every page
//!   feature, missing fields, nodes that fail or vanish, 401/422 handling;
//! - `gateway_*`: the real pages on a real gateway with two real OpenVoice
//!   workers (`pages/cluster.rs`, processes of `vctts-server`) — what an
//!   operator does: watch, kill a worker, log in, put a node on standby,
//!   change a setting, synthesize, clone a voice, run the copied cURL.
//!
//! Each test checks the browser console for errors, and saves screenshots
//! under `target/screenshots/`. Conditions are awaited with a deadline
//! ([`browser::eventually`], the tests' one polling helper), never with fixed sleeps.

#[path = "pages/browser.rs"]
mod browser;
#[path = "pages/cluster.rs"]
mod cluster;
#[path = "pages/fake.rs"]
mod fake;

use browser::{Browser, DEADLINE, eventually};
use fake::FakeGateway;
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
/// fake gateway answering it runs on this test's runtime).
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

/// A short 16-bit mono WAV of a tone, written to `path`.
fn write_tone_wav(path: &Path, seconds: f32, rate: u32) {
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: rate,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut w = hound::WavWriter::create(path, spec).expect("create wav");
    for i in 0..(seconds * rate as f32) as u32 {
        let t = i as f32 / rate as f32;
        let v =
            (t * 180.0 * std::f32::consts::TAU).sin() * 0.3 + (t * 410.0 * std::f32::consts::TAU).sin() * 0.1;
        w.write_sample((v * 32767.0) as i16).expect("sample");
    }
    w.finalize().expect("finish wav");
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

// ---------------------------------------------------------------- fake gateway

#[tokio::test]
async fn fake_status_page_shows_everything_and_follows_nodes_live() {
    let fake = FakeGateway::start(true).await;
    let b = Browser::start().await;
    b.goto(&format!("{}/", fake.url)).await;
    let here = b.client.current_url().await.expect("url");
    assert_eq!(here.path(), "/status", "/ redirects to /status");

    wait_state(&b, "node-a", "ready").await;
    wait_state(&b, "node-b", "ready").await;
    wait_state(&b, "node-x", "standby").await;
    b.wait_text("the live mode", "#live-mode", |t| t.starts_with("live"))
        .await;
    assert_eq!(b.text("#card-online").await, "3 / 3");
    assert_eq!(b.text("#card-latency").await, "870 ms");
    assert_eq!(b.text("#card-concurrency").await, "2 (+1 queued)");
    let total = b.text("#card-requests").await;
    assert!(
        total.chars().all(|c| c.is_ascii_digit() || c == ','),
        "total requests {total:?}"
    );
    // A node that reports nothing else shows dashes, not "undefined".
    let bare = b.text("#engines tr[data-node-id=\"node-x\"]").await;
    assert!(
        bare.contains('\u{2014}') && !bare.contains("undefined") && !bare.contains("NaN"),
        "{bare}"
    );
    let a_row = b.text("#engines tr[data-node-id=\"node-a\"]").await;
    assert!(
        a_row.contains("http://127.0.0.1:18002") && a_row.contains("13%") && a_row.contains("512 MB"),
        "{a_row}"
    );
    assert!(
        b.text("#engines section[data-engine=openvoice]")
            .await
            .contains("2 of 2 nodes ready")
    );
    let checks = b
        .wait_text("endpoint checks", "#endpoints", |t| {
            t.contains("/api/v3/synthesize")
        })
        .await;
    assert!(
        checks.contains("200 OK") && checks.contains("1.50 s") && checks.contains("503"),
        "{checks}"
    );
    let notices = b.text("#announcements").await;
    assert!(
        notices.contains("[warning]") && notices.contains("Maintenance tonight"),
        "{notices}"
    );
    assert!(b.text("#footer-line").await.contains("version 0.1.0-fake"));
    // The chart samples every 2 s: after two samples it has a line and a current value.
    b.wait_text("a chart sample", "#chart-latency-now", |t| t == "now 870 ms")
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
    b.screenshot("fake-status-1440").await;

    // Live: no reload between these changes (the marker would be gone).
    b.js("window.__sameDocument = 42; return null;", vec![]).await;
    fake.set_node_state("node-b", "offline");
    wait_state(&b, "node-b", "offline").await;
    assert_eq!(b.text("#card-online").await, "2 / 3");
    fake.remove_node("node-b");
    eventually(DEADLINE, "the vanished node to stay listed as offline", || async {
        let cls = b
            .js_str("const r = document.querySelector('#engines tr[data-node-id=\"node-b\"]'); return r ? r.className : 'missing';", vec![])
            .await;
        if cls == "gone" { Ok(()) } else { Err(cls) }
    })
    .await;
    assert_eq!(state_of(&b, "node-b").await, "offline");
    assert_eq!(
        b.js("return window.__sameDocument;", vec![]).await,
        json!(42),
        "the page reloaded"
    );

    b.size(375, 812).await;
    b.assert_no_horizontal_overflow("/status").await;
    b.screenshot("fake-status-375").await;

    b.click("#live-toggle").await;
    b.wait_text("the paused mode", "#live-mode", |t| t == "paused")
        .await;
    b.assert_console_clean("/status", &[]).await;
}

#[tokio::test]
async fn fake_status_page_polls_when_the_gateway_has_no_event_stream() {
    let fake = FakeGateway::start(false).await;
    let b = Browser::start().await;
    b.goto(&format!("{}/status", fake.url)).await;
    wait_state(&b, "node-a", "ready").await;
    b.wait_text("the polling mode", "#live-mode", |t| t.starts_with("polling"))
        .await;
    fake.set_node_state("node-a", "error");
    wait_state(&b, "node-a", "error").await;
    b.assert_console_clean("/status (polling)", &["/api/v3/events"])
        .await;
}

#[tokio::test]
async fn fake_admin_page_logs_in_acts_on_nodes_and_edits_settings_logs_and_announcements() {
    let fake = FakeGateway::start(true).await;
    let b = Browser::start().await;
    b.goto(&format!("{}/admin", fake.url)).await;

    // Nothing but the login form without a session; the API refuses too.
    b.wait_text("the login form", "#login-title", |t| t.contains("Sign in"))
        .await;
    assert!(b.visible("#login-form").await && !b.visible("#app-view").await);
    let status = b
        .js("return fetch('/admin/api/nodes').then(r => r.status);", vec![])
        .await;
    assert_eq!(status, json!(401));
    b.screenshot("fake-admin-login").await;

    b.fill("#login-password", "wrong-password").await;
    b.click("#login-submit").await;
    b.wait_text("the login error", "#login-error", |t| {
        t.contains("Wrong user name or password")
    })
    .await;
    b.fill("#login-password", fake::PASSWORD).await;
    b.click("#login-submit").await;
    b.wait_text("the signed-in user", "#whoami", |t| t == "admin")
        .await;
    assert!(!b.visible("#login-form").await);
    b.wait_text("the node rows", "#node-rows", |t| {
        t.contains("node-a") && t.contains("node-b")
    })
    .await;
    assert!(
        b.text("#node-rows tr[data-node-id=\"node-a\"] [data-field=model]")
            .await
            == "Loaded"
    );

    // Destructive actions ask first; cancelling sends nothing.
    b.click("button[data-action=standby][data-node-id=\"node-a\"]")
        .await;
    assert!(b.visible("#confirm").await, "standby asks for confirmation");
    assert!(b.text("#confirm-text").await.contains("node-a"));
    b.click("#confirm-cancel").await;
    b.wait_text("the cancel notice", "#node-result", |t| t.contains("cancelled"))
        .await;
    assert!(fake.state.lock().actions.is_empty());
    b.click("button[data-action=standby][data-node-id=\"node-a\"]")
        .await;
    b.click("#confirm-ok").await;
    b.wait_text("the action result", "#node-result", |t| t.contains("done"))
        .await;
    assert_eq!(fake.node_state("node-a").as_deref(), Some("standby"));
    assert_eq!(
        fake.state.lock().actions,
        vec![("node-a".to_string(), "standby".to_string())]
    );
    b.wait_text(
        "the model column",
        "#node-rows tr[data-node-id=\"node-a\"] [data-field=model]",
        |t| t == "Unloaded",
    )
    .await;
    // Activate needs no confirmation, and is offered only when the model is not loaded.
    let disabled =
        "return document.querySelector('button[data-action=activate][data-node-id=\"node-b\"]').disabled;";
    assert_eq!(b.js(disabled, vec![]).await, json!(true));
    b.click("button[data-action=activate][data-node-id=\"node-x\"]")
        .await;
    b.wait_text("the activate result", "#node-result", |t| {
        t.contains("Activate on node-x: done")
    })
    .await;
    assert_eq!(
        fake.state.lock().csrf_refusals,
        0,
        "every state change carried the CSRF header"
    );
    b.screenshot("fake-admin-1440").await;

    b.note_console("/admin").await;
    // The standby shows on /status.
    b.goto(&format!("{}/status", fake.url)).await;
    wait_state(&b, "node-a", "standby").await;
    b.note_console("/status after standby").await;
    b.goto(&format!("{}/admin", fake.url)).await;
    b.wait_text("the signed-in user after navigation", "#whoami", |t| t == "admin")
        .await;

    // Settings: the 422 is shown beside its field, then a good value saves.
    eventually(DEADLINE, "the settings to load", || async {
        let v = b
            .js_str(
                "return document.querySelector('[name=\"limiter.ip_rpm\"]').value;",
                vec![],
            )
            .await;
        if v == "100" { Ok(()) } else { Err(v) }
    })
    .await;
    b.fill("[name=\"limiter.ip_rpm\"]", "-5").await;
    b.click("#settings-save").await;
    let msg = b
        .wait_text("the field error", "#err-ip-rpm", |t| !t.is_empty())
        .await;
    assert!(msg.contains("limiter.ip_rpm") && msg.contains("-5"), "{msg}");
    assert_eq!(
        b.js_str(
            "return document.querySelector('[name=\"limiter.ip_rpm\"]').getAttribute('aria-invalid');",
            vec![]
        )
        .await,
        "true"
    );
    assert!(fake.state.lock().config_puts.is_empty());
    b.fill("[name=\"limiter.ip_rpm\"]", "42").await;
    b.select("[name=balance_policy]", "round_robin").await;
    b.select("[name=log_level]", "WARNING").await;
    b.click("#settings-save").await;
    b.wait_text("the saved notice", "#settings-result", |t| t.contains("saved"))
        .await;
    assert_eq!(b.text("#err-ip-rpm").await, "");
    {
        let st = fake.state.lock();
        assert_eq!(st.config["limiter"]["ip_rpm"], json!(42));
        assert_eq!(st.config["limiter"]["global_rpm"], json!(1000));
        assert_eq!(st.config["balance_policy"], json!("round_robin"));
        assert_eq!(st.config["log_level"], json!("WARNING"));
        assert_eq!(st.config["default_engine"], json!("openvoice"));
    }

    // Logs: filters and the live tail.
    b.wait_text("the log records", "#log-list", |t| {
        t.contains("admin logged in") && t.contains("request served")
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
    fake.push_log(json!({"timestamp": "2026-12-01T09:30:00Z", "level": "INFO", "category": "audit", "message": "node-a put on standby by admin"}));
    fake.push_log(json!({"timestamp": "2026-12-01T09:30:01Z", "level": "INFO", "category": "access", "message": "filtered out"}));
    b.wait_text("the pushed record", "#log-list", |t| {
        t.contains("node-a put on standby by admin")
    })
    .await;
    assert!(!b.text("#log-list").await.contains("filtered out"));

    // Announcements.
    b.wait_text("the announcements", "#ann-list", |t| {
        t.contains("Maintenance tonight")
    })
    .await;
    b.select("#ann-type", "error").await;
    b.fill("#ann-message", "Disk almost full on node-b").await;
    b.click("#ann-create").await;
    b.wait_text("the new announcement", "#ann-list", |t| {
        t.contains("Disk almost full on node-b")
    })
    .await;
    let id = {
        let st = fake.state.lock();
        let a = st
            .announcements
            .iter()
            .find(|a| a["message"] == "Disk almost full on node-b")
            .expect("stored");
        assert_eq!(a["type"], json!("error"));
        a["id"].as_str().expect("id").to_string()
    };
    b.click(&format!("#ann-list li[data-announcement-id=\"{id}\"] button"))
        .await;
    b.wait_text("the deleted announcement to go", "#ann-list", |t| {
        !t.contains("Disk almost full")
    })
    .await;

    b.size(375, 812).await;
    b.assert_no_horizontal_overflow("/admin").await;
    b.screenshot("fake-admin-375").await;
    b.size(1440, 900).await;

    // A session that ends sends the page back to the login form.
    fake.expire_sessions();
    b.wait_text("the session-ended notice", "#login-error", |t| {
        t.contains("session has ended")
    })
    .await;
    assert!(!b.visible("#app-view").await);
    b.fill("#login-password", fake::PASSWORD).await;
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
    assert_eq!(fake.state.lock().csrf_refusals, 0);
    b.assert_console_clean("/admin", ADMIN_EXPECTED).await;
}

#[tokio::test]
async fn fake_playground_has_a_form_per_endpoint_and_runs_requests_and_code() {
    let fake = FakeGateway::start(true).await;
    let b = Browser::start().await;
    b.goto(&format!("{}/playground", fake.url)).await;
    b.wait_text("the API description", "#spec-status", |t| {
        t.contains("endpoints from")
    })
    .await;
    check_every_operation_has_a_form(&b, &fake::openapi()).await;

    // Synthesize with the default voice.
    b.select("#endpoint", "POST /api/v3/synthesize").await;
    let voices = b
        .js(
            "return [...document.querySelectorAll('#f-body-voice option')].map(o => o.value);",
            vec![],
        )
        .await;
    let voices: Vec<String> = serde_json::from_value(voices).expect("voice options");
    assert!(
        voices.contains(&"alice".to_string()) && voices.contains(&"en_US-joe-medium".to_string()),
        "{voices:?}"
    );
    assert_eq!(
        voices.first().map(String::as_str),
        Some(""),
        "the default voice comes first"
    );
    b.click("#send").await;
    b.wait_text("the synthesis", "#response-status", |t| t.starts_with("200"))
        .await;
    let d = audio_duration(&b, "#response-audio").await;
    assert!((d - 0.8).abs() < 0.05, "duration {d}");
    assert!(
        b.js_str("return document.getElementById('download').href;", vec![])
            .await
            .starts_with("blob:")
    );
    b.screenshot("fake-playground-1440").await;

    // The copied cURL and Python run as shown.
    let dir = tempfile::tempdir().expect("tmp");
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
    assert_wav(&dir.path().join("speech.wav"), 0.5);
    let python = b.text("#code-python").await;
    std::fs::remove_file(dir.path().join("speech.wav")).expect("rm");
    let out = run_in(dir.path(), "python3", &python).await;
    assert!(
        out.status.success(),
        "Python failed: {}\n{python}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_wav(&dir.path().join("speech.wav"), 0.5);

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
    b.wait_text("the end of the stream", "#response-status", |t| {
        t.contains("s of audio")
    })
    .await;
    let d = audio_duration(&b, "#response-audio").await;
    assert!((d - 1.0).abs() < 0.05, "streamed duration {d}");
    assert!(b.text("#code-curl").await.contains(" -N"));

    // extract_voice by upload; the new voice appears in the dropdown.
    let wav = dir.path().join("reference.wav");
    write_tone_wav(&wav, 1.0, 22_050);
    b.select("#endpoint", "POST /api/v3/extract_voice").await;
    let file = b
        .client
        .find(fantoccini::Locator::Css("#f-form-audio"))
        .await
        .expect("file input");
    file.send_keys(wav.to_str().expect("utf-8 path"))
        .await
        .expect("choose file");
    b.fill("#f-form-name", "Bob Smith").await;
    let curl = b.text("#code-curl").await;
    assert!(
        curl.contains("-F 'audio=@reference.wav'") && curl.contains("-F 'name=Bob Smith'"),
        "{curl}"
    );
    b.click("#send").await;
    b.wait_text("the extraction", "#response-status", |t| t.starts_with("200"))
        .await;
    assert!(b.text("#response-body").await.contains("bob-smith"));
    b.select("#endpoint", "POST /api/v3/synthesize").await;
    eventually(DEADLINE, "the new voice in the dropdown", || async {
        let v = b
            .js(
                "return [...document.querySelectorAll('#f-body-voice option')].map(o => o.value);",
                vec![],
            )
            .await;
        let v: Vec<String> = serde_json::from_value(v).unwrap_or_default();
        if v.contains(&"bob-smith".to_string()) {
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
    let before = fake
        .state
        .lock()
        .hits
        .get("/api/v3/synthesize/batch")
        .copied()
        .unwrap_or(0);
    b.click("#send").await;
    b.wait_text("the JSON error", "#f-body-items-err", |t| {
        t.contains("Not valid JSON")
    })
    .await;
    assert_eq!(
        fake.state
            .lock()
            .hits
            .get("/api/v3/synthesize/batch")
            .copied()
            .unwrap_or(0),
        before
    );
    b.fill("#f-body-items", "[{\"text\": \"one\"}, {\"text\": \"\"}]")
        .await;
    b.click("#send").await;
    b.wait_text("the batch", "#response-status", |t| t.starts_with("200"))
        .await;
    audio_duration(&b, "#response-extra audio").await;

    // OpenAI-compatible speech.
    b.select("#endpoint", "POST /v1/audio/speech").await;
    b.click("#send").await;
    b.wait_text("the speech", "#response-status", |t| t.starts_with("200"))
        .await;
    audio_duration(&b, "#response-audio").await;

    b.size(375, 812).await;
    b.assert_no_horizontal_overflow("/playground").await;
    b.screenshot("fake-playground-375").await;
    b.assert_console_clean(
        "/playground",
        &["/api/v3/synthesize - Failed to load resource: the server responded with a status of 404"],
    )
    .await;
}

#[tokio::test]
async fn fake_pages_are_keyboard_reachable() {
    let fake = FakeGateway::start(true).await;
    let b = Browser::start().await;
    b.goto(&format!("{}/admin", fake.url)).await;
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
    b.goto(&format!("{}/playground", fake.url)).await;
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
    let b = Browser::start().await;
    b.goto(&format!("{}/status", c.url)).await;
    let ids = c.wait_for_nodes(2).await;
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
