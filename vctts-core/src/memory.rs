//! A process-wide hook that gives the global allocator's free pages back to
//! the system.
//!
//! The library crates never choose an allocator (embedders do). A binary
//! that sets one which keeps freed pages for a while (jemalloc keeps them
//! for its decay time) installs [`install_release`]; code that has just
//! freed a large amount of memory it will not reuse soon (a model load's
//! copies of the weights) calls [`release`], which does nothing where no
//! hook is installed.
//!
//! Invariants: the hook is set once per process and never replaced;
//! [`release`] takes no lock.

use std::sync::OnceLock;

/// Gives the allocator's free pages back to the system.
pub type Release = fn();

static RELEASE: OnceLock<Release> = OnceLock::new();

/// Installs the hook. Returns false (and keeps the first) when one is
/// already installed.
pub fn install_release(hook: Release) -> bool {
    RELEASE.set(hook).is_ok()
}

/// Calls the installed hook, if any.
pub fn release() {
    if let Some(hook) = RELEASE.get() {
        hook();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    static CALLS: AtomicUsize = AtomicUsize::new(0);

    #[test]
    fn release_calls_the_first_hook_installed_and_only_it() {
        release(); // nothing installed yet in this test binary: no effect
        assert!(install_release(|| {
            CALLS.fetch_add(1, Ordering::SeqCst);
        }));
        assert!(!install_release(|| panic!(
            "a second hook must not replace the first"
        )));
        release();
        release();
        assert_eq!(CALLS.load(Ordering::SeqCst), 2);
    }
}
