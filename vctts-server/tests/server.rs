//! Integration tests of vctts-server: handler-level tests on an in-process
//! gateway (`handlers`), and tests that start real gateway and worker
//! processes on 127.0.0.1 (`cluster`, `synthesis`).

#[path = "common/mod.rs"]
mod common;

#[path = "server/cluster.rs"]
mod cluster;
#[path = "server/handlers.rs"]
mod handlers;
#[path = "server/hardening.rs"]
mod hardening;
#[path = "server/synthesis.rs"]
mod synthesis;
