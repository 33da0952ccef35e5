//! State that several gateways share, in the databases operators already
//! run: voices, admin sessions, live settings and operator announcements
//! in PostgreSQL ([`pg_store`], [`sessions`], [`settings`],
//! [`announcements`]) and rate-limit budgets in Redis ([`limit`], on the
//! `redis` crate). A single gateway needs neither: SQLite and the in-memory
//! limiter stay the defaults.
//!
//! Invariants: nothing here is required at start except what the
//! configuration names; a configured PostgreSQL must answer at start (the
//! voices are there), a configured Redis need not (the limiter falls back
//! to local limits and says so).

pub mod announcements;
pub mod limit;
pub mod pg;
pub mod pg_store;
pub mod sessions;
pub mod settings;

pub use announcements::PgAnnouncements;
pub use limit::{SharedLimiter, SharedLimiterOptions};
pub use pg::{PgOptions, PgPool};
pub use pg_store::PgVoiceStore;
pub use sessions::PgSessions;
pub use settings::PgSettings;
