//! A thread that cancels a request as soon as its job has armed its run
//! options (its cancel hook is registered), for the engines' cancel tests.
//! It gives up without cancelling once the test says the request finished.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use vctts_core::SynthesisControl;

pub struct Canceller {
    finished: Arc<AtomicBool>,
    thread: std::thread::JoinHandle<()>,
}

impl Canceller {
    /// Starts the thread for `control`.
    pub fn once_armed(control: &SynthesisControl) -> Self {
        let finished = Arc::new(AtomicBool::new(false));
        let (control, done) = (control.clone(), finished.clone());
        let thread = std::thread::spawn(move || {
            while control.hooks_registered() == 0 && !done.load(Ordering::Acquire) {
                std::thread::yield_now();
            }
            control.cancel();
        });
        Self { finished, thread }
    }

    /// Called once the request returned: stops the thread and waits for it.
    pub fn join(self) {
        self.finished.store(true, Ordering::Release);
        self.thread.join().unwrap();
    }
}
