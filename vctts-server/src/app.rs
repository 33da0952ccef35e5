//! The top of the gateway: the one place that assembles its HTTP surface —
//! the cluster control plane, the public API ([`crate::api`]), the admin API
//! ([`crate::admin`]), the pages ([`crate::pages`]) and the middlewares
//! around them — and serves it ([`run`]).
//!
//! Invariants: nothing below imports this module; the gateway
//! ([`crate::gateway`]) and its use cases know no router, so they are built
//! and tested without HTTP; every answer of the router, unknown routes and
//! wrong methods included, is an endpoint's success type or the JSON error
//! body.

use crate::api::{self, forwarded, status};
use crate::gateway::Gateway;
use crate::http::extract::BodyLimit;
use axum::routing::get;
use axum::{Extension, Router};
use std::future::Future;
use std::sync::Arc;
use vctts_core::{Error, Result};

/// The whole gateway router.
pub fn router(gw: Arc<Gateway>) -> Router {
    let cluster = crate::cluster::gateway_api::router()
        .layer(Extension(BodyLimit(
            crate::cluster::gateway_api::CONTROL_BODY_LIMIT,
        )))
        .layer(axum::middleware::from_fn_with_state(
            gw.clone(),
            crate::cluster::gateway_api::guard,
        ));
    let mut app = Router::new();
    if gw.control_plane() {
        app = app.nest(crate::cluster::proto::PREFIX, cluster);
    }
    let app = app
        .merge(api::public_routes(&gw))
        .route("/api/v3/events", get(status::events))
        .route("/api/v3/status/endpoints", get(status::endpoints))
        .merge(crate::admin::router(&gw))
        .merge(crate::pages::router())
        .fallback(api::not_found)
        .method_not_allowed_fallback(api::method_not_allowed)
        .layer(axum::middleware::from_fn_with_state(
            gw.clone(),
            crate::admin::guard::api_guard,
        ))
        .layer(axum::middleware::from_fn(api::request_shape))
        .layer(axum::middleware::from_fn_with_state(
            gw.metrics().clone(),
            crate::http::context::request_context,
        ))
        .layer(crate::http::context::request_id_layer())
        .layer(axum::middleware::from_fn_with_state(
            Arc::new(forwarded::TrustedProxies(
                gw.config()
                    .server
                    .trusted_proxies
                    .iter()
                    .filter_map(|e| forwarded::parse_proxy(e).ok())
                    .collect(),
            )),
            forwarded::forwarded,
        ))
        .with_state(gw);
    // The checks run through the router without the results extension, so
    // their task ends when the served router (which owns the results) is dropped.
    let probes = Arc::new(status::Probes::default());
    status::spawn_checks(app.clone(), Arc::downgrade(&probes));
    app.layer(Extension(probes))
}

/// Serves a gateway on `listener` until `shutdown` resolves, then finishes
/// in-flight requests and stops its background work.
pub async fn run(
    gateway: Arc<Gateway>,
    listener: tokio::net::TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<()> {
    gateway.spawn_background();
    crate::upkeep::start(&gateway);
    if let Some(shared) = gateway.shared_settings() {
        crate::upkeep::spawn_follower(&gateway, shared.clone());
    }
    let app = router(gateway.clone());
    let gw = gateway.clone();
    let limits = gateway.config().server.connection_limits();
    let result = crate::serve::serve(listener, app, limits, async move {
        shutdown.await;
        tracing::info!("gateway shutting down; finishing in-flight requests");
        gw.signal_shutdown();
    })
    .await
    .map_err(|e| Error::io("serving the gateway", e));
    gateway.signal_shutdown();
    result
}
