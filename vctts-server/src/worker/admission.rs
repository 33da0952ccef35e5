//! Admission of work on a node: at most `max_concurrency` requests infer at
//! once, at most `queue_size` wait for a slot, and the rest are refused at
//! once with [`Error::Overloaded`] (back-pressure is an error, not a timeout).
//!
//! Invariants: a [`Slot`] is held for the whole inference (for streams, until
//! the stream ends or its reader goes away) and gives its place back when
//! dropped; the counters never go negative; a waiter that is cancelled (its
//! request dropped) leaves the queue.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use vctts_core::{Error, Result};

/// The admission gate of one node.
#[derive(Debug)]
pub struct Admission {
    slots: Arc<Semaphore>,
    max_concurrency: usize,
    queue_size: usize,
    waiting: AtomicUsize,
    running: Arc<AtomicUsize>,
}

/// Permission to run one request; dropping it frees the slot.
#[derive(Debug)]
pub struct Slot {
    _permit: OwnedSemaphorePermit,
    running: Arc<AtomicUsize>,
    /// How long the request waited for the slot.
    pub queued_for: Duration,
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.running.fetch_sub(1, Ordering::AcqRel);
    }
}

struct WaitGuard<'a>(&'a AtomicUsize);

impl Drop for WaitGuard<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Admission {
    /// A gate with `max_concurrency` slots (at least 1) and `queue_size` waiters.
    pub fn new(max_concurrency: usize, queue_size: usize) -> Self {
        let max_concurrency = max_concurrency.max(1);
        Self {
            slots: Arc::new(Semaphore::new(max_concurrency)),
            max_concurrency,
            queue_size,
            waiting: AtomicUsize::new(0),
            running: Arc::new(AtomicUsize::new(0)),
        }
    }

    fn slot(&self, permit: OwnedSemaphorePermit, since: Instant) -> Slot {
        self.running.fetch_add(1, Ordering::AcqRel);
        Slot {
            _permit: permit,
            running: self.running.clone(),
            queued_for: since.elapsed(),
        }
    }

    /// A slot now, or after waiting in the queue; refused when the queue is full.
    pub async fn admit(&self) -> Result<Slot> {
        let since = Instant::now();
        if let Ok(p) = self.slots.clone().try_acquire_owned() {
            return Ok(self.slot(p, since));
        }
        let before = self.waiting.fetch_add(1, Ordering::AcqRel);
        let guard = WaitGuard(&self.waiting);
        if before >= self.queue_size {
            drop(guard);
            return Err(Error::Overloaded(format!(
                "{} requests running and {} waiting (queue size {})",
                self.running(),
                before,
                self.queue_size
            )));
        }
        let permit = self
            .slots
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| Error::Internal("admission gate closed".into()))?;
        drop(guard);
        Ok(self.slot(permit, since))
    }

    /// Requests running now.
    pub fn running(&self) -> usize {
        self.running.load(Ordering::Acquire)
    }

    /// Requests waiting now.
    pub fn waiting(&self) -> usize {
        self.waiting.load(Ordering::Acquire)
    }

    /// Slots.
    pub fn max_concurrency(&self) -> usize {
        self.max_concurrency
    }

    /// Queue places.
    pub fn queue_size(&self) -> usize {
        self.queue_size
    }

    /// Whether every slot is taken.
    pub fn saturated(&self) -> bool {
        self.running() >= self.max_concurrency
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn admits_up_to_capacity_queues_then_refuses() {
        let a = Arc::new(Admission::new(1, 1));
        let s1 = a.admit().await.unwrap();
        assert_eq!(a.running(), 1);
        assert!(a.saturated());
        let a2 = a.clone();
        let waiter = tokio::spawn(async move { a2.admit().await.map(|s| s.queued_for) });
        // Let the waiter enqueue.
        while a.waiting() == 0 {
            tokio::task::yield_now().await;
        }
        let e = a.admit().await.unwrap_err();
        assert_eq!(e.code(), "overloaded");
        assert!(e.retryable());
        assert_eq!(a.waiting(), 1);
        drop(s1);
        waiter.await.unwrap().unwrap();
        assert_eq!(a.running(), 0);
        assert_eq!(a.waiting(), 0);
    }

    #[tokio::test]
    async fn cancelled_waiter_leaves_the_queue() {
        let a = Arc::new(Admission::new(1, 4));
        let _s = a.admit().await.unwrap();
        let a2 = a.clone();
        let h = tokio::spawn(async move { a2.admit().await.map(|_| ()) });
        while a.waiting() == 0 {
            tokio::task::yield_now().await;
        }
        h.abort();
        let _ = h.await;
        assert_eq!(a.waiting(), 0);
    }

    #[tokio::test]
    async fn zero_queue_refuses_when_busy() {
        let a = Admission::new(2, 0);
        let _x = a.admit().await.unwrap();
        let _y = a.admit().await.unwrap();
        assert_eq!(a.admit().await.unwrap_err().code(), "overloaded");
    }
}
