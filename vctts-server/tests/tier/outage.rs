//! PostgreSQL and Redis restarted under load: clients keep sending requests
//! through nginx and straight to both gateways while PostgreSQL is stopped
//! and started again on the same data folder, then Redis. Every answer is
//! recorded; afterwards nothing may be lost (voice and profile, admin
//! session, API key, live setting, announcement), no answer may be a 500 or
//! a non-JSON error, every refusal must be a retryable error with
//! `Retry-After`, and both gateways must serve again without a restart.
//!
//! Progress is awaited with the polling helpers (`eventually`), never slept.

use crate::common::{error_code, eventually, parse_wav};
use crate::services::{Postgres, Redis};
use crate::topology::{Tier, gateway_head};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const KEY: &str = "outage-load-key-0123456789";
const ADMIN_PASSWORD: &str = "outage-admin-password";
const VOICE: &str = "outage-voice";

/// What the test is doing while a request is sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
#[repr(u8)]
enum Phase {
    Before = 0,
    PostgresDown = 1,
    PostgresBack = 2,
    RedisDown = 3,
    RedisBack = 4,
}

impl Phase {
    fn of(v: u8) -> Phase {
        [
            Phase::Before,
            Phase::PostgresDown,
            Phase::PostgresBack,
            Phase::RedisDown,
            Phase::RedisBack,
        ][v as usize]
    }
}

/// One answer the load got.
#[derive(Debug, Clone)]
struct Outcome {
    /// The phase when the request was sent...
    phase: Phase,
    /// ...and when its answer was read.
    answered: Phase,
    what: &'static str,
    status: u16,
    code: String,
    retry_after: bool,
    scope: Option<String>,
    /// A transport failure (no HTTP answer at all).
    transport: Option<String>,
}

fn gateway_yaml(dir: &Path, name: &str, db: &str, redis: &str) -> String {
    format!(
        "{}storage: {{ data_dir: \"{}\", backend: postgres, url: \"{db}\", max_connections: 4 }}\n\
         limiter: {{ ip_rpm: 1000000, global_rpm: 0, backend: redis, redis_url: \"{redis}\", redis_timeout: 250ms }}\n\
         auth: {{ admin_password: \"{ADMIN_PASSWORD}\", api_key_enabled: true,\n\
                  api_keys: [ {{ name: load, key: \"{KEY}\", scopes: [synthesize, voices], rpm: 1000000 }} ] }}\n",
        gateway_head(),
        dir.join(name).display()
    )
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .build()
        .unwrap()
}

async fn record(
    phase: &AtomicU8,
    what: &'static str,
    sent: reqwest::RequestBuilder,
    log: &Mutex<Vec<Outcome>>,
) -> u16 {
    let at = Phase::of(phase.load(Ordering::SeqCst));
    let outcome = match sent.header("x-api-key", KEY).send().await {
        Ok(r) => {
            let retry_after = r.headers().contains_key("retry-after");
            let scope = r
                .headers()
                .get("x-ratelimit-scope")
                .and_then(|v| v.to_str().ok())
                .map(str::to_string);
            let status = r.status().as_u16();
            let code = if status < 300 {
                // Read the whole answer: a cut body is a failure too.
                match r.bytes().await {
                    Ok(_) => String::new(),
                    Err(e) => format!("body cut: {e}"),
                }
            } else {
                let (_, code, body) = error_code(r).await;
                if code.is_empty() {
                    format!("not a JSON error: {body}")
                } else {
                    code
                }
            };
            Outcome {
                phase: at,
                answered: at,
                what,
                status,
                code,
                retry_after,
                scope,
                transport: None,
            }
        }
        Err(e) => Outcome {
            phase: at,
            answered: at,
            what,
            status: 0,
            code: String::new(),
            retry_after: false,
            scope: None,
            transport: Some(e.to_string()),
        },
    };
    let outcome = Outcome {
        answered: Phase::of(phase.load(Ordering::SeqCst)),
        ..outcome
    };
    let status = outcome.status;
    log.lock().unwrap().push(outcome);
    status
}

/// `base`'s answer to `GET path` when its status is `status`.
async fn answers(base: &str, path: &str, status: u16) -> Option<reqwest::Response> {
    let r = client()
        .get(format!("{base}{path}"))
        .header("x-api-key", KEY)
        .send()
        .await
        .ok()?;
    (r.status().as_u16() == status).then_some(r)
}

/// Counts 200s of each request kind sent in `phase` or later.
fn successes_since(log: &Mutex<Vec<Outcome>>, phase: Phase) -> BTreeMap<&'static str, usize> {
    let mut m = BTreeMap::new();
    for o in log.lock().unwrap().iter() {
        if o.phase >= phase && o.status == 200 {
            *m.entry(o.what).or_default() += 1;
        }
    }
    m
}

const KINDS: [&str; 4] = ["list", "get", "synthesize", "direct"];

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_and_redis_restart_under_load_lose_nothing() {
    let _one_cluster = crate::common::cluster_lock().lock().await;
    let mut pg = Postgres::start_owned();
    let db = pg.database();
    let mut redis = Redis::start();
    let dir = tempfile::tempdir().unwrap();
    let mut tier = Tier::start(
        dir.path(),
        |name| gateway_yaml(dir.path(), name, &db, &redis.url()),
        64,
    )
    .await;
    let (a, b, lb) = (tier.a().to_string(), tier.b().to_string(), tier.lb());
    let pids = [tier.gateways[0].pid(), tier.gateways[1].pid()];
    // The state that must survive: a voice with its profile, an admin
    // session, a live setting and an announcement (the API key is config).
    let c = client();
    let (status, code, v) = tier.clone_voice(Some(KEY), VOICE, "Outage speaker").await;
    assert_eq!(status, 201, "{code} {v}");
    let r = c
        .post(format!("{a}/admin/api/login"))
        .json(&json!({"username": "admin", "password": ADMIN_PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let cookie = r.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_string();
    let admin = |method: reqwest::Method, url: String| {
        c.request(method, url)
            .header("cookie", cookie.clone())
            .header("x-requested-with", "vctts")
    };
    let r = admin(reqwest::Method::PUT, format!("{b}/admin/api/config"))
        .json(&json!({"announcements": {"ttl_seconds": 900}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = admin(reqwest::Method::POST, format!("{a}/admin/api/announcements"))
        .json(&json!({"type": "info", "message": "Survives restarts"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);

    // The load: through nginx (list, get, synthesize) and straight to A and
    // B in turn (get), each on its own task, until told to stop.
    let phase = Arc::new(AtomicU8::new(Phase::Before as u8));
    let stop = Arc::new(AtomicBool::new(false));
    let log = Arc::new(Mutex::new(Vec::<Outcome>::new()));
    let mut load = Vec::new();
    for what in KINDS {
        let (phase, stop, log) = (phase.clone(), stop.clone(), log.clone());
        let (lb, a, b) = (lb.clone(), a.clone(), b.clone());
        load.push(tokio::spawn(async move {
            let c = client();
            let mut n = 0usize;
            while !stop.load(Ordering::SeqCst) {
                let req = match what {
                    "list" => c.get(format!("{lb}/api/v3/voices")),
                    "get" => c.get(format!("{lb}/api/v3/voices/{VOICE}")),
                    "synthesize" => c
                        .post(format!("{lb}/api/v3/synthesize"))
                        .json(&json!({"text": "Still here.", "voice": VOICE, "seed": 3})),
                    _ => {
                        let base = if n % 2 == 0 { &a } else { &b };
                        c.get(format!("{base}/api/v3/voices/{VOICE}"))
                    }
                };
                record(&phase, what, req, &log).await;
                n += 1;
            }
        }));
    }
    let all_served = |since: Phase| {
        let log = log.clone();
        async move {
            let m = successes_since(&log, since);
            KINDS
                .iter()
                .all(|k| m.get(k).copied().unwrap_or(0) >= 2)
                .then_some(())
        }
    };
    eventually(Duration::from_secs(60), "every kind of request served", || {
        all_served(Phase::Before)
    })
    .await;

    // PostgreSQL goes away: both gateways refuse voice requests with a
    // retryable error, and stay alive.
    phase.store(Phase::PostgresDown as u8, Ordering::SeqCst);
    pg.stop();
    for base in [&a, &b] {
        let r = eventually(Duration::from_secs(30), "a voice request refused", || async {
            answers(base, &format!("/api/v3/voices/{VOICE}"), 503).await
        })
        .await;
        assert!(r.headers().contains_key("retry-after"), "{base}");
        let (_, code, body) = error_code(r).await;
        assert_eq!(code, "overloaded", "{base}: {body}");
        assert!(
            answers(base, "/api/v3/health/live", 200).await.is_some(),
            "{base}"
        );
    }
    // Back on the same data: both gateways serve voices again by themselves.
    pg.restart();
    phase.store(Phase::PostgresBack as u8, Ordering::SeqCst);
    for base in [&a, &b] {
        eventually(Duration::from_secs(30), "voices served again", || async {
            answers(base, &format!("/api/v3/voices/{VOICE}"), 200)
                .await
                .map(|_| ())
        })
        .await;
    }
    eventually(Duration::from_secs(60), "the load served again", || {
        all_served(Phase::PostgresBack)
    })
    .await;

    // Redis goes away: limits fall back to each gateway's own, nothing is
    // refused; when it is back, limits are shared again.
    phase.store(Phase::RedisDown as u8, Ordering::SeqCst);
    redis.stop();
    for base in [&a, &b] {
        eventually(Duration::from_secs(30), "local limits", || async {
            let r = answers(base, "/api/v3/voices", 200).await?;
            (r.headers().get("x-ratelimit-scope")? == "local").then_some(())
        })
        .await;
    }
    eventually(Duration::from_secs(60), "the load served on local limits", || {
        all_served(Phase::RedisDown)
    })
    .await;
    redis.restart();
    phase.store(Phase::RedisBack as u8, Ordering::SeqCst);
    for base in [&a, &b] {
        eventually(Duration::from_secs(30), "shared limits again", || async {
            let r = answers(base, "/api/v3/voices", 200).await?;
            (r.headers().get("x-ratelimit-scope")? == "shared").then_some(())
        })
        .await;
    }
    eventually(
        Duration::from_secs(60),
        "the load served on shared limits",
        || all_served(Phase::RedisBack),
    )
    .await;
    stop.store(true, Ordering::SeqCst);
    for t in load {
        t.await.unwrap();
    }

    // Every answer: a success, or a retryable JSON error with Retry-After
    // (only while PostgreSQL was down or coming back). Never a 500, never a
    // transport failure, never an nginx page.
    let log = log.lock().unwrap().clone();
    let mut refused = 0;
    for o in &log {
        assert!(o.transport.is_none(), "no answer: {o:?}");
        if o.status == 200 {
            assert!(o.code.is_empty(), "{o:?}");
            continue;
        }
        refused += 1;
        // Sent before PostgreSQL came back, answered once it was going.
        assert!(
            o.phase <= Phase::PostgresBack && o.answered >= Phase::PostgresDown,
            "refused outside the database outage: {o:?}"
        );
        assert_eq!(o.status, 503, "{o:?}");
        let spec = vctts_core::error::spec_for_code(&o.code)
            .unwrap_or_else(|| panic!("not a vctts error code: {o:?}"));
        assert!(spec.retryable, "not retryable: {o:?}");
        assert!(o.retry_after, "no Retry-After: {o:?}");
    }
    // While Redis was down the limiter answered locally, never refusing.
    assert!(
        log.iter()
            .any(|o| o.phase == Phase::RedisDown && o.scope.as_deref() == Some("local")),
        "no local decision recorded while Redis was down"
    );
    eprintln!(
        "outage load: {} answers, {refused} refused while PostgreSQL was down",
        log.len()
    );

    // Nothing was lost, on either gateway, and neither was restarted.
    assert_eq!([tier.gateways[0].pid(), tier.gateways[1].pid()], pids);
    let [ga, gb] = &mut tier.gateways;
    assert!(ga.running() && gb.running());
    for base in [&a, &b] {
        let v: Value = c
            .get(format!("{base}/api/v3/voices/{VOICE}"))
            .header("x-api-key", KEY)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(v["engines"], json!(["openvoice"]), "{base}: {v}");
        let r = c
            .post(format!("{base}/api/v3/synthesize"))
            .header("x-api-key", KEY)
            .json(&json!({"text": "Nothing was lost.", "voice": VOICE, "seed": 3}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{base}");
        assert!(parse_wav(&r.bytes().await.unwrap()).seconds() > 0.3);
        // The session opened before the outages still holds.
        let r = admin(reqwest::Method::GET, format!("{base}/admin/api/config"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{base}: the admin session");
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["announcements"]["ttl_seconds"], 900, "{base}: the setting");
        let v: Value = c
            .get(format!("{base}/api/v3/announcements"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert!(
            v["announcements"]
                .as_array()
                .unwrap()
                .iter()
                .any(|x| x["message"] == "Survives restarts"),
            "{base}: {v}"
        );
        // The key is still accepted, and without it the API refuses.
        let r = c.get(format!("{base}/api/v3/voices")).send().await.unwrap();
        assert_eq!(r.status(), 401, "{base}: a request without the key");
    }
    drop(tier);
}
