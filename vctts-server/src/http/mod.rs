//! HTTP plumbing every router shares, the gateway's and the worker's: the
//! request context (request id, client address, error-body completion,
//! metrics, access log) and the strict body extractors.
//!
//! - [`context`]: the outermost middleware, [`context::RequestId`],
//!   [`context::client_addr`], the [`context::Probe`] mark;
//! - [`extract`]: [`extract::JsonBody`], [`extract::ApiQuery`] and the
//!   per-router [`extract::BodyLimit`].
//!
//! Invariant: this layer knows no gateway, worker or handler: it imports only
//! the bottom floor (errors, metrics),
//! so the cluster protocol and the public API both build on it.

pub mod context;
pub mod extract;
