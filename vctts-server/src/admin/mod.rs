//! Operating a gateway over HTTP: the admin API (`/admin/api/*`) and the
//! authentication of the public API.
//!
//! - [`guard`]: the middlewares — admin authentication with the CSRF check,
//!   and API-key authentication of the public API with scopes;
//! - [`handlers`]: the admin endpoints and the public
//!   `GET /api/v3/announcements`;
//! - [`models`]: fetching models from the hub and following the progress.
//!
//! The operator state these handlers read and change is [`crate::ops::Ops`];
//! the background work (saved settings applied, node trouble announced, local
//! workers supervised) is [`crate::upkeep`].
//!
//! Invariants:
//! - every admin route except `login` requires an operator session or an API
//!   key with the `admin` scope (401 without, 403 with a weaker key); a
//!   cookie-authenticated call that changes state also needs
//!   `X-Requested-With: vctts` (403 otherwise);
//! - every admin call, allowed or not, leaves one `audit` record: who, what,
//!   target, result;
//! - a settings change is applied to the running gateway (limiter, policy,
//!   default engine, log level) before the answer is sent.

pub mod guard;
pub mod handlers;
pub mod models;

use crate::gateway::Gateway;
use axum::Router;
use std::sync::Arc;

/// The admin routes and the public announcements route.
pub fn router(gw: &Arc<Gateway>) -> Router<Arc<Gateway>> {
    handlers::routes(gw)
}
