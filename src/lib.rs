//! vctts: voice-clone text-to-speech.
//!
//! The facade crate embedders depend on. It re-exports the core types
//! ([`core`]) and the engines ([`engines`]); see `examples/` for programs that
//! synthesize with the default voice or plug in an engine of their own.
#![forbid(unsafe_code)]

pub use vctts_core as core;
pub use vctts_core::*;
pub use vctts_engines as engines;
pub mod hub;
