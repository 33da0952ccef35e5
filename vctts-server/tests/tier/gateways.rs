//! The whole tier: two gateway processes on one PostgreSQL (voices) and one
//! Redis (rate limits), one worker registered with both, nginx in front with
//! the shipped `config/nginx-gateways.conf`.

use crate::common::parse_wav;
use crate::services::{Postgres, Redis};
use crate::topology::{Tier, gateway_head, ready};
use serde_json::{Value, json};
use std::net::IpAddr;
use std::path::Path;
use std::time::Duration;

/// Every client of the per-IP check may make this many requests in all,
/// across both gateways (1 per minute afterwards).
const IP_BURST: usize = 40;

const ADMIN_PASSWORD: &str = "tier-admin-password";

fn gateway_yaml(dir: &Path, name: &str, db: &str, redis: &str) -> String {
    format!(
        "{}storage: {{ data_dir: \"{}\", backend: postgres, url: \"{db}\" }}\n\
         limiter: {{ ip_rpm: 1, ip_burst: {IP_BURST}, global_rpm: 0, backend: redis, redis_url: \"{redis}\" }}\n\
         auth: {{ admin_password: \"{ADMIN_PASSWORD}\" }}\n",
        gateway_head(),
        dir.join(name).display()
    )
}

fn from(ip: &str) -> reqwest::Client {
    reqwest::Client::builder()
        .local_address(ip.parse::<IpAddr>().unwrap())
        .timeout(Duration::from_secs(120))
        .build()
        .unwrap()
}

async fn node_ids(base: &str) -> Vec<String> {
    let v: Value = from("127.0.0.1")
        .get(format!("{base}/api/v3/nodes"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    v["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|n| n["state"] == "ready")
        .map(|n| n["id"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_gateways_behind_nginx_share_voices_limits_and_workers() {
    let _one_cluster = crate::common::cluster_lock().lock().await;
    let db = Postgres::shared().database();
    let mut redis = Redis::start();
    let dir = tempfile::tempdir().unwrap();
    let mut tier = Tier::start(
        dir.path(),
        |name| gateway_yaml(dir.path(), name, &db, &redis.url()),
        32,
    )
    .await;
    let (a, b, lb) = (tier.a().to_string(), tier.b().to_string(), tier.lb());
    // Both registries see the same worker.
    let (on_a, on_b) = (node_ids(&a).await, node_ids(&b).await);
    assert_eq!(on_a.len(), 1, "{on_a:?}");
    assert_eq!(on_a, on_b);

    // A voice cloned through the balancer...
    let c = from("127.0.0.1");
    let (status, code, v) = tier.clone_voice(None, "front-speaker", "Front speaker").await;
    assert_eq!(status, 201, "{code} {v}");
    // ...is known to both gateways, with its profile...
    for base in [&a, &b] {
        let v: Value = c
            .get(format!("{base}/api/v3/voices/front-speaker"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(v["id"], "front-speaker", "{base}: {v}");
        assert_eq!(v["engines"], json!(["openvoice"]), "{base}: {v}");
    }
    // ...and speaks through either.
    for base in [&a, &b] {
        let r = c
            .post(format!("{base}/api/v3/synthesize"))
            .json(&json!({ "text": "A shared voice speaks.", "voice": "front-speaker", "seed": 7 }))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{base}");
        assert_eq!(r.headers()["x-ratelimit-scope"], "shared");
        let wav = parse_wav(&r.bytes().await.unwrap());
        assert!(wav.seconds() > 0.5, "{} s", wav.seconds());
    }

    // One client's per-IP budget holds across both gateways: alternating
    // between them it gets IP_BURST answers in all, not IP_BURST each.
    let client = from("127.0.0.7");
    let mut passed = 0;
    let refusal = loop {
        let base = if passed % 2 == 0 { &a } else { &b };
        let r = client.get(format!("{base}/api/v3/voices")).send().await.unwrap();
        if r.status() == 429 {
            break r;
        }
        assert_eq!(r.status(), 200);
        passed += 1;
        assert!(passed <= IP_BURST, "more than the shared burst passed");
    };
    assert_eq!(passed, IP_BURST);
    assert_eq!(refusal.headers()["x-ratelimit-layer"], "ip");
    assert_eq!(refusal.headers()["x-ratelimit-scope"], "shared");
    assert!(refusal.headers().contains_key("retry-after"));
    // The other gateway refuses that client too.
    let r = client.get(format!("{a}/api/v3/voices")).send().await.unwrap();
    assert_eq!(r.status(), 429);

    // An admin session opened on gateway A works on gateway B; a node action
    // taken through B reaches the worker, and A sees its effect through the
    // worker's heartbeats.
    let node = &on_a[0];
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
    let act = |action: &'static str| {
        let (c, b, cookie) = (c.clone(), b.clone(), cookie.clone());
        async move {
            c.post(format!("{b}/admin/api/nodes/{node}/{action}"))
                .header("cookie", cookie)
                .header("x-requested-with", "vctts")
                .send()
                .await
                .unwrap()
                .status()
        }
    };
    assert_eq!(act("standby").await, 200);
    crate::common::eventually(
        Duration::from_secs(30),
        "gateway A to see the node in standby",
        || async { (!ready(&a).await).then_some(()) },
    )
    .await;
    assert_eq!(act("activate").await, 200);
    crate::common::eventually(
        Duration::from_secs(60),
        "gateway A to see the node ready again",
        || async { ready(&a).await.then_some(()) },
    )
    .await;
    // A live setting changed through B reaches A.
    let r = c
        .put(format!("{b}/admin/api/config"))
        .header("cookie", cookie.clone())
        .header("x-requested-with", "vctts")
        .json(&json!({"announcements": {"ttl_seconds": 600}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    crate::common::eventually(Duration::from_secs(30), "the setting on gateway A", || {
        let (c, a, cookie) = (c.clone(), a.clone(), cookie.clone());
        async move {
            let v: Value = c
                .get(format!("{a}/admin/api/config"))
                .header("cookie", cookie)
                .send()
                .await
                .ok()?
                .json()
                .await
                .ok()?;
            (v["announcements"]["ttl_seconds"] == 600).then_some(())
        }
    })
    .await;

    // An announcement posted through B shows on A; deleted through A, it is
    // gone from B.
    let r = c
        .post(format!("{b}/admin/api/announcements"))
        .header("cookie", cookie.clone())
        .header("x-requested-with", "vctts")
        .json(&json!({"type": "warning", "message": "Maintenance at noon"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let posted: Value = r.json().await.unwrap();
    let shown = |base: String| {
        let c = c.clone();
        async move {
            let v: Value = c
                .get(format!("{base}/api/v3/announcements"))
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            v["announcements"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|x| x["message"] == "Maintenance at noon")
                .map(|x| x["id"].as_str().unwrap().to_string())
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(
        shown(a.clone()).await,
        vec![posted["id"].as_str().unwrap().to_string()]
    );
    assert_eq!(shown(b.clone()).await.len(), 1);
    let r = c
        .delete(format!(
            "{a}/admin/api/announcements/{}",
            posted["id"].as_str().unwrap()
        ))
        .header("cookie", cookie.clone())
        .header("x-requested-with", "vctts")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    assert!(shown(b.clone()).await.is_empty());

    // Logging out through B ends the session on A too.
    let admin_nodes = |base: String| {
        let (c, cookie) = (c.clone(), cookie.clone());
        async move {
            c.get(format!("{base}/admin/api/nodes"))
                .header("cookie", cookie)
                .send()
                .await
                .unwrap()
                .status()
        }
    };
    assert_eq!(admin_nodes(a.clone()).await, 200);
    let r = c
        .post(format!("{b}/admin/api/logout"))
        .header("cookie", cookie.clone())
        .header("x-requested-with", "vctts")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(admin_nodes(a.clone()).await, 401);
    assert_eq!(admin_nodes(b.clone()).await, 401);

    // Gateway A goes away: nginx sends everything to B, and no voice is lost.
    tier.gateways[0].kill9();
    for _ in 0..4 {
        let r = c
            .get(format!("{lb}/api/v3/voices/front-speaker"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
    }

    // Redis goes away: B limits with its local limiter and says so; when
    // Redis is back, limits are shared again.
    redis.stop();
    let probe = from("127.0.0.9");
    let r = probe.get(format!("{b}/api/v3/voices")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-ratelimit-scope"], "local");
    redis.restart();
    crate::common::eventually(Duration::from_secs(30), "limits shared again", || {
        let probe = probe.clone();
        let b = b.clone();
        async move {
            let r = probe.get(format!("{b}/api/v3/voices")).send().await.ok()?;
            (r.headers().get("x-ratelimit-scope")? == "shared").then_some(())
        }
    })
    .await;
    drop(tier);
}
