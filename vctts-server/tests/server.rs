//! Integration tests of vctts-server: handler-level tests on an in-process
//! gateway (`handlers`), and tests that start real gateway and worker
//! processes on 127.0.0.1 (`cluster`, `synthesis`, `gpt_sovits`, `faults`:
//! frozen, garbage and flooding nodes, dropped requests, copied configs;
//! `relay`: whole answers passed through the gateway as they arrive; and `xtts`:
//! the XTTS engine on its fixture model through a worker and standalone).

#[path = "common/mod.rs"]
mod common;

#[path = "server/cluster.rs"]
mod cluster;
#[path = "server/faults.rs"]
mod faults;
#[path = "server/gpt_sovits.rs"]
mod gpt_sovits;
#[path = "server/handlers.rs"]
mod handlers;
#[path = "server/hardening.rs"]
mod hardening;
#[path = "server/relay.rs"]
mod relay;
#[path = "server/synthesis.rs"]
mod synthesis;
#[path = "server/xtts.rs"]
mod xtts;
