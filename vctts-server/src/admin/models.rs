//! The admin API's model fetches: start downloading a model from the hub
//! into the gateway's models folder and follow its progress.
//!
//! - `GET  /admin/api/models`: the catalog, what is installed, the jobs;
//! - `POST /admin/api/models/fetch` `{"name": "...", "force": false}`:
//!   `202 {"id", "job"}` (starting a name that is already being fetched
//!   returns that job);
//! - `GET  /admin/api/models/fetch/{id}`: the job's progress;
//!   `?wait=true` answers only when the job has finished.
//!
//! The work is `vctts::hub` ([`FetchJobs`]); this file only parses, calls and
//! renders. The hub is `HF_ENDPOINT` / `HF_TOKEN` of the gateway's
//! environment; the catalog is the built-in one or `VCTTS_CATALOG`; the
//! models folder is the first configured engine's, else `VCTTS_MODELS`, else
//! `./models`. Every route is behind the admin guard (session or admin key,
//! CSRF header for cookie-authenticated changes, an audit record per call).
//! A fetched model is used by an engine once its node is restarted.

use super::guard::admin_guard;
use crate::gateway::Gateway;
use crate::http::context::RequestId;
use crate::http::extract::JsonBody;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};
use std::path::PathBuf;
use std::sync::Arc;
use vctts::hub::{Catalog, FetchError, FetchJobs, HubConfig};

/// Where fetched models go for this gateway.
pub fn models_root(gw: &Gateway, env: &crate::config::Env) -> PathBuf {
    const ENGINE_DIRS: [&str; 3] = ["openvoice", "xtts_v2", "gpt_sovits"];
    if let Some(e) = gw.config().engines.first() {
        let p = &e.model.path;
        let is_engine_dir = p
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| ENGINE_DIRS.contains(&n));
        return match (is_engine_dir, p.parent()) {
            (true, Some(parent)) => parent.to_path_buf(),
            _ => p.clone(),
        };
    }
    env.get("VCTTS_MODELS")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("models"))
}

/// The fetch jobs of a gateway, from its environment.
fn jobs_for(gw: &Gateway) -> Result<FetchJobs, FetchError> {
    let env = crate::config::Env::from_process();
    let catalog = match env.get("VCTTS_CATALOG").filter(|v| !v.is_empty()) {
        Some(p) => Catalog::load(std::path::Path::new(p))?,
        None => Catalog::builtin()?,
    };
    let hub = vctts::hub::default_hub(HubConfig::from_lookup(|k| env.get(k).map(str::to_string)))?;
    Ok(FetchJobs::new(catalog, hub, models_root(gw, &env)))
}

/// The routes, behind the admin guard.
pub fn routes(gw: &Arc<Gateway>) -> Router<Arc<Gateway>> {
    let jobs = match jobs_for(gw) {
        Ok(j) => Some(j),
        Err(e) => {
            tracing::warn!(error = %e, "model fetching is unavailable");
            None
        }
    };
    let state = Arc::new(jobs);
    Router::new()
        .route("/admin/api/models", get(overview))
        .route("/admin/api/models/fetch", post(start))
        .route("/admin/api/models/fetch/{id}", get(progress))
        .layer(Extension(state))
        .route_layer(axum::middleware::from_fn_with_state(gw.clone(), admin_guard))
}

type Jobs = Arc<Option<FetchJobs>>;

fn error(status: StatusCode, code: &str, message: String, rid: &RequestId) -> Response {
    (
        status,
        Json(json!({"error": {"code": code, "message": message, "request_id": rid.0}})),
    )
        .into_response()
}

fn unavailable(rid: &RequestId) -> Response {
    error(
        StatusCode::SERVICE_UNAVAILABLE,
        "fetch_unavailable",
        "model fetching is unavailable on this gateway (see its log: the catalog or the HTTP client failed to load)"
            .into(),
        rid,
    )
}

async fn overview(
    State(_gw): State<Arc<Gateway>>,
    Extension(jobs): Extension<Jobs>,
    Extension(rid): Extension<RequestId>,
) -> Response {
    let Some(jobs) = jobs.as_ref() else {
        return unavailable(&rid);
    };
    let catalog = jobs.catalog();
    let models: Vec<Value> = vctts::hub::status(catalog, jobs.root())
        .into_iter()
        .map(|s| {
            let m = &s.model;
            json!({
                "name": m.name,
                "engine": m.engine,
                "description": m.description,
                "licence": m.licence,
                "repo": m.repo,
                "revision": m.revision,
                "target": m.target,
                "gated": m.gated,
                "size": m.size(),
                "fetchable": m.repo.is_some(),
                "import": m.import,
                "installed": s.installed,
                "commit": s.record.as_ref().and_then(|r| r.commit.clone()),
            })
        })
        .collect();
    let p = &catalog.piper;
    Json(json!({
        "models_root": jobs.root().display().to_string(),
        "catalog": catalog.origin,
        "models": models,
        "piper": {
            "description": p.description,
            "repo": p.repo,
            "revision": p.revision,
            "target": p.target,
            "licence": p.licence,
        },
        "jobs": jobs.list(),
    }))
    .into_response()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct StartBody {
    name: String,
    #[serde(default)]
    force: bool,
}

async fn start(
    Extension(jobs): Extension<Jobs>,
    Extension(rid): Extension<RequestId>,
    JsonBody(body): JsonBody<StartBody>,
) -> Response {
    let Some(jobs) = jobs.as_ref() else {
        return unavailable(&rid);
    };
    match jobs.start(body.name.trim(), body.force) {
        Ok(id) => (StatusCode::ACCEPTED, Json(json!({"id": id, "job": jobs.get(id)}))).into_response(),
        Err(e) => error(StatusCode::UNPROCESSABLE_ENTITY, e.code(), e.to_string(), &rid),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ProgressQuery {
    #[serde(default)]
    wait: bool,
}

async fn progress(
    Extension(jobs): Extension<Jobs>,
    Extension(rid): Extension<RequestId>,
    Path(id): Path<String>,
    Query(q): Query<ProgressQuery>,
) -> Response {
    let Some(jobs) = jobs.as_ref() else {
        return unavailable(&rid);
    };
    let found = match id.parse::<u64>() {
        Ok(n) if q.wait => jobs.wait(n).await,
        Ok(n) => jobs.get(n),
        Err(_) => None,
    };
    match found {
        Some(s) => Json(s).into_response(),
        None => error(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("no model fetch job {id}"),
            &rid,
        ),
    }
}
