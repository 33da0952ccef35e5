//! Statistics of the process's global allocator, for the allocator gauges
//! of `/metrics` (`vctts_allocator_allocated_bytes`,
//! `vctts_allocator_resident_bytes`).
//!
//! The library never chooses an allocator: the `vctts-server` binary sets
//! jemalloc as its global allocator and installs a [`Probe`] that reads its
//! statistics here, at start-up. An embedder that keeps the system
//! allocator installs none, and the gauges are then left out.
//!
//! What the two numbers tell apart: `allocated` is the live heap (bytes in
//! blocks the program holds now), `resident` the allocator's pages that are
//! in RAM (live blocks, free blocks not yet returned, metadata). A growing
//! `allocated` is memory the program keeps (a cache, a map, a buffer); a
//! growing gap between the two is the allocator keeping freed memory.
//! Memory that native libraries take with their own `malloc` (ONNX Runtime
//! in a worker) is in neither: it goes to the C library's allocator.
//!
//! The binary also installs the process's release hook
//! (`vctts_core::memory`): the worker calls [`purge`] once a model has
//! loaded, to return the load's garbage at once.
//!
//! Invariants: the probe is set once per process and never replaced;
//! reading it takes no lock the serving path holds.

use std::sync::OnceLock;

/// One reading of the allocator's statistics, in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct AllocatorStats {
    /// Bytes in blocks the program holds (the live heap).
    pub allocated: u64,
    /// Bytes of the allocator's pages resident in RAM.
    pub resident: u64,
}

/// Reads the global allocator's statistics; `None` when it cannot now.
pub type Probe = fn() -> Option<AllocatorStats>;

static PROBE: OnceLock<Probe> = OnceLock::new();

/// Installs the probe of the process's global allocator. Returns false (and
/// keeps the first) when one is already installed.
pub fn install(probe: Probe) -> bool {
    PROBE.set(probe).is_ok()
}

/// The global allocator's statistics now, when a probe is installed.
pub fn read() -> Option<AllocatorStats> {
    PROBE.get().and_then(|p| p())
}

/// Gives the allocator's free pages back to the system, where the binary
/// installed a hook for it ([`vctts_core::memory::install_release`]; else
/// nothing). Called after a model load: reading, rewriting and splitting a
/// voice frees a few copies of its weights (about 150 MB for the default
/// voice), which the allocator would otherwise keep for its decay time, on
/// top of the first requests' memory. (The engines also call it between
/// their own load steps.)
pub fn purge() {
    vctts_core::memory::release();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn without_a_probe_nothing_is_read() {
        // The test binary uses the system allocator and installs no probe.
        assert_eq!(read(), None);
    }
}
