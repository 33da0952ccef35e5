//! Headless Chromium over chromedriver, for the page tests.
//!
//! [`Browser::start`] launches `chromedriver` on a free port (the binary from
//! `CHROMEDRIVER`, else `/usr/bin/chromedriver`) and opens one Chromium
//! session (`CHROMIUM`, else `/usr/bin/chromium`) with a throw-away profile.
//! Dropping the [`Browser`] ends the session (synchronously, so a panicking
//! test leaves no Chromium behind) and kills chromedriver.
//!
//! Invariants: nothing waits a fixed time; [`eventually`] polls a condition
//! until a deadline and fails with the last observation; the browser console
//! is read through chromedriver's log endpoint and every `SEVERE` entry that a
//! test did not expect fails it; screenshots land in `target/screenshots/`.

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// How long a page condition may take before a test fails.
pub const DEADLINE: Duration = Duration::from_secs(20);

/// Chromium is heavy on a 2-core machine: one browser at a time per test binary.
/// (An async mutex: each test has its own runtime, and the guard lives across awaits.)
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// A free TCP port on 127.0.0.1 (bound, then released for the child to take).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("bind an ephemeral port")
}

// The tests' one polling helper (shared with `tests/common`).
#[path = "../common/eventually.rs"]
mod polling;
pub use polling::eventually;

/// Where the screenshots go: `target/screenshots/`.
pub fn screenshot_dir() -> PathBuf {
    let tmp = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    tmp.parent()
        .map(|t| t.join("screenshots"))
        .unwrap_or_else(|| tmp.join("screenshots"))
}

/// One browser console entry.
#[derive(Debug, Clone)]
pub struct ConsoleEntry {
    /// `SEVERE`, `WARNING`, `INFO`, ...
    pub level: String,
    /// `javascript`, `network`, `console-api`, ...
    pub source: String,
    /// The text.
    pub message: String,
}

/// A Chromium session and its chromedriver.
pub struct Browser {
    /// The WebDriver client.
    pub client: Client,
    driver: Child,
    driver_port: u16,
    session: String,
    _profile: tempfile::TempDir,
    _slot: tokio::sync::MutexGuard<'static, ()>,
    /// Console entries read so far and not yet checked, with the page they came from.
    console_seen: std::sync::Mutex<Vec<(String, ConsoleEntry)>>,
}

fn binary(var: &str, default: &str) -> String {
    std::env::var(var).unwrap_or_else(|_| default.to_string())
}

impl Browser {
    /// Starts chromedriver and a headless Chromium at 1440×900.
    pub async fn start() -> Browser {
        let slot = ONE_AT_A_TIME.lock().await;
        let chromedriver = binary("CHROMEDRIVER", "/usr/bin/chromedriver");
        let chromium = binary("CHROMIUM", "/usr/bin/chromium");
        for b in [&chromedriver, &chromium] {
            assert!(
                std::path::Path::new(b).exists(),
                "{b} is missing: install Debian's chromium and chromium-driver (CI does), or set CHROMIUM / CHROMEDRIVER"
            );
        }
        let profile = tempfile::tempdir().expect("profile dir");
        let log = std::fs::File::create(profile.path().join("chromedriver.log")).expect("driver log");
        let port = free_port();
        let driver = Command::new(&chromedriver)
            .arg(format!("--port={port}"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log handle"))
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("start {chromedriver}: {e}"));
        let url = format!("http://127.0.0.1:{port}");
        let http = reqwest::Client::new();
        let status_url = format!("{url}/status");
        eventually(DEADLINE, "chromedriver to answer", || {
            let req = http.get(&status_url).send();
            async move {
                let r = req.await.map_err(|e| e.to_string())?;
                let v: Value = r.json().await.map_err(|e| e.to_string())?;
                if v["value"]["ready"] == json!(true) {
                    Ok(())
                } else {
                    Err(v.to_string())
                }
            }
        })
        .await;
        let args = vec![
            "--headless".to_string(),
            "--no-sandbox".into(),
            "--disable-gpu".into(),
            "--no-first-run".into(),
            "--disable-background-networking".into(),
            "--disable-component-update".into(),
            "--disable-sync".into(),
            "--disable-dev-shm-usage".into(),
            "--autoplay-policy=no-user-gesture-required".into(),
            "--window-size=1440,900".into(),
            format!("--user-data-dir={}", profile.path().join("chromium").display()),
        ];
        let caps = json!({
            "browserName": "chrome",
            "goog:chromeOptions": { "binary": chromium, "args": args },
            "goog:loggingPrefs": { "browser": "ALL" },
        });
        let caps = caps.as_object().cloned().expect("capabilities object");
        let connector = hyper_util::client::legacy::connect::HttpConnector::new();
        let client = ClientBuilder::new(connector)
            .capabilities(caps)
            .connect(&url)
            .await
            .unwrap_or_else(|e| {
                let log =
                    std::fs::read_to_string(profile.path().join("chromedriver.log")).unwrap_or_default();
                panic!("open a Chromium session: {e}\nchromedriver log:\n{log}")
            });
        let session = client.session_id().await.ok().flatten().expect("session id");
        let b = Browser {
            client,
            driver,
            driver_port: port,
            session,
            _profile: profile,
            _slot: slot,
            console_seen: std::sync::Mutex::new(Vec::new()),
        };
        b.size(1440, 900).await;
        b
    }

    /// Resizes the viewport's window (headless: the window is the viewport).
    pub async fn size(&self, width: u32, height: u32) {
        self.client
            .set_window_size(width, height)
            .await
            .expect("resize window");
    }

    /// Opens `url` and waits for the document to load.
    pub async fn goto(&self, url: &str) {
        self.client
            .goto(url)
            .await
            .unwrap_or_else(|e| panic!("open {url}: {e}"));
    }

    /// Runs a script (`return ...;`) in the page.
    pub async fn js(&self, script: &str, args: Vec<Value>) -> Value {
        self.client
            .execute(script, args)
            .await
            .unwrap_or_else(|e| panic!("run script {script:?}: {e}"))
    }

    /// Runs a script and returns its string result ("" for anything else).
    pub async fn js_str(&self, script: &str, args: Vec<Value>) -> String {
        self.js(script, args)
            .await
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    /// `textContent` of the first element matching `css` ("" when none).
    pub async fn text(&self, css: &str) -> String {
        self.js_str(
            "const n = document.querySelector(arguments[0]); return n ? n.textContent : '';",
            vec![json!(css)],
        )
        .await
    }

    /// Whether an element matching `css` exists and is displayed.
    pub async fn visible(&self, css: &str) -> bool {
        match self.client.find(Locator::Css(css)).await {
            Ok(e) => e.is_displayed().await.unwrap_or(false),
            Err(_) => false,
        }
    }

    /// Waits for `css` to be displayed, then clicks it as a user would.
    pub async fn click(&self, css: &str) {
        let b = self;
        eventually(DEADLINE, &format!("{css} to be clickable"), || async move {
            let e = b
                .client
                .find(Locator::Css(css))
                .await
                .map_err(|e| e.to_string())?;
            if !e.is_displayed().await.map_err(|e| e.to_string())? {
                return Err("not displayed".into());
            }
            if !e.is_enabled().await.map_err(|e| e.to_string())? {
                return Err("disabled".into());
            }
            e.click().await.map_err(|e| e.to_string())
        })
        .await
    }

    /// Replaces the value of an input or textarea by typing into it.
    pub async fn fill(&self, css: &str, value: &str) {
        let e = self
            .client
            .find(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("find {css}: {e}"));
        e.clear().await.unwrap_or_else(|e| panic!("clear {css}: {e}"));
        if !value.is_empty() {
            e.send_keys(value)
                .await
                .unwrap_or_else(|e| panic!("type into {css}: {e}"));
        }
    }

    /// Chooses the option with `value` in a `<select>`.
    pub async fn select(&self, css: &str, value: &str) {
        let e = self
            .client
            .find(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("find {css}: {e}"));
        e.select_by_value(value)
            .await
            .unwrap_or_else(|e| panic!("select {value:?} in {css}: {e}"));
    }

    /// Waits until the text of `css` satisfies `pred`, and returns it.
    pub async fn wait_text(&self, what: &str, css: &str, pred: impl Fn(&str) -> bool) -> String {
        let pred = &pred;
        eventually(DEADLINE, what, || async move {
            let t = self.text(css).await;
            if pred(&t) {
                Ok(t)
            } else {
                Err(format!("{css}: {t:?}"))
            }
        })
        .await
    }

    /// Saves a PNG of the top of the page as `target/screenshots/<name>.png`.
    pub async fn screenshot(&self, name: &str) -> PathBuf {
        self.js("window.scrollTo(0, 0); return null;", vec![]).await;
        let png = self.client.screenshot().await.expect("screenshot");
        let dir = screenshot_dir();
        std::fs::create_dir_all(&dir).expect("screenshot dir");
        let path = dir.join(format!("{name}.png"));
        std::fs::write(&path, png).expect("write screenshot");
        path
    }

    /// Console entries since the last call (chromedriver drains its buffer).
    pub async fn console(&self) -> Vec<ConsoleEntry> {
        let url = format!(
            "http://127.0.0.1:{}/session/{}/se/log",
            self.driver_port, self.session
        );
        let v: Value = reqwest::Client::new()
            .post(&url)
            .json(&json!({"type": "browser"}))
            .send()
            .await
            .expect("read the browser log")
            .json()
            .await
            .expect("browser log JSON");
        v["value"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .iter()
            .map(|e| ConsoleEntry {
                level: e["level"].as_str().unwrap_or_default().to_string(),
                source: e["source"].as_str().unwrap_or_default().to_string(),
                message: e["message"].as_str().unwrap_or_default().to_string(),
            })
            .collect()
    }

    /// Reads the console now (before leaving `page`), to be checked later by
    /// [`assert_console_clean`](Self::assert_console_clean).
    pub async fn note_console(&self, page: &str) {
        let entries = self.console().await;
        let mut seen = self.console_seen.lock().unwrap_or_else(|p| p.into_inner());
        seen.extend(entries.into_iter().map(|e| (page.to_string(), e)));
    }

    /// Fails when the console had a `SEVERE` entry containing none of
    /// `expected`, since the last check (entries noted with
    /// [`note_console`](Self::note_console) included, so a test reports every
    /// console error of every page at its end, after all its other checks).
    ///
    /// `expected` names entries a test provoked on purpose (a 401 before
    /// login, a 422 from a validation test), as substrings of the message.
    pub async fn assert_console_clean(&self, page: &str, expected: &[&str]) {
        self.note_console(page).await;
        let all = std::mem::take(&mut *self.console_seen.lock().unwrap_or_else(|p| p.into_inner()));
        let mut bad: Vec<String> = all
            .into_iter()
            .filter(|(_, e)| e.level == "SEVERE")
            .filter(|(_, e)| !expected.iter().any(|x| e.message.contains(x)))
            .map(|(page, e)| format!("{page}: [{}] {}", e.source, e.message))
            .collect();
        bad.dedup();
        assert!(bad.is_empty(), "console errors:\n{}", bad.join("\n"));
    }

    /// Runs a Chrome DevTools Protocol command through chromedriver's
    /// `goog/cdp/execute`; its result.
    pub async fn cdp(&self, cmd: &str, params: Value) -> Value {
        let url = format!(
            "http://127.0.0.1:{}/session/{}/goog/cdp/execute",
            self.driver_port, self.session
        );
        let res = reqwest::Client::new()
            .post(&url)
            .json(&json!({"cmd": cmd, "params": params}))
            .send()
            .await
            .unwrap_or_else(|e| panic!("CDP {cmd}: {e}"));
        let status = res.status();
        let v: Value = res.json().await.unwrap_or(Value::Null);
        assert!(status.is_success(), "CDP {cmd}: {status} {v}");
        v["value"].clone()
    }

    /// Makes the browser fail every request whose URL matches one of
    /// `patterns` (`*` is a wildcard), as a proxy that drops them would.
    pub async fn block_urls(&self, patterns: &[&str]) {
        self.cdp("Network.enable", json!({})).await;
        self.cdp("Network.setBlockedURLs", json!({ "urls": patterns }))
            .await;
    }

    /// Fails when the page is wider than the viewport (horizontal scrolling).
    pub async fn assert_no_horizontal_overflow(&self, page: &str) {
        let v = self
            .js(
                "return [document.documentElement.scrollWidth, window.innerWidth];",
                vec![],
            )
            .await;
        let (scroll, inner) = (v[0].as_f64().unwrap_or(0.0), v[1].as_f64().unwrap_or(0.0));
        assert!(inner > 0.0, "{page}: no viewport width");
        assert!(
            scroll <= inner + 1.0,
            "{page} scrolls sideways at {inner} px: content is {scroll} px wide"
        );
    }

    /// Walks the page with Tab from its top and returns the ids (or names, texts) focused, `max` steps.
    pub async fn tab_order(&self, max: usize) -> Vec<String> {
        // Start from the top of the document, as a user arriving on the page.
        self.js(
            "if (document.activeElement) document.activeElement.blur(); return null;",
            vec![],
        )
        .await;
        let body = self.client.find(Locator::Css("body")).await.expect("body");
        let mut seen = Vec::new();
        for _ in 0..max {
            body.send_keys("\u{E004}").await.expect("press Tab");
            let id = self
                .js_str(
                    "const a = document.activeElement; return a ? (a.id || a.getAttribute('name') || a.textContent.trim().slice(0, 30) || a.tagName) : '';",
                    vec![],
                )
                .await;
            seen.push(id);
        }
        seen
    }

    fn delete_session(&self) {
        // A raw HTTP/1.1 DELETE: works in Drop, with or without a runtime.
        let Ok(mut s) = TcpStream::connect(("127.0.0.1", self.driver_port)) else {
            return;
        };
        let _ = s.set_read_timeout(Some(Duration::from_secs(10)));
        let req = format!(
            "DELETE /session/{} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            self.session, self.driver_port
        );
        if s.write_all(req.as_bytes()).is_ok() {
            let mut buf = Vec::new();
            let _ = s.read_to_end(&mut buf);
        }
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        self.delete_session();
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}
