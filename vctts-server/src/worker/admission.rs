//! Admission of work on a node: at most `max_concurrency` requests infer at
//! once, at most `queue_size` wait for a slot, and the rest are refused at
//! once with [`Error::Overloaded`] (back-pressure is an error, not a timeout).
//!
//! Invariants: a request holds one *place* (of `max_concurrency +
//! queue_size`, the capacity the node advertises) from the moment it is
//! admitted or queued until its [`Slot`] is dropped, and a request is
//! refused only when every place is held — so a node never refuses a request
//! the gateway may send it (the gateway keeps at most the capacity in
//! flight). The refusal does not read `running` and `waiting` separately: a
//! slot that has just been handed to a queued request that has not run yet
//! still counts as waiting there, and judging by those counts refused
//! requests below the capacity. A [`Slot`] is held for the whole inference
//! (for streams, until the stream ends or its reader goes away) and gives
//! its place back when dropped; the counters never go negative; a waiter
//! that is cancelled (its request dropped) leaves the queue.

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
    /// Places held: requests running or waiting (at most
    /// `max_concurrency + queue_size`).
    places: Arc<AtomicUsize>,
    waiting: AtomicUsize,
    running: Arc<AtomicUsize>,
}

/// One held place, given back on drop.
#[derive(Debug)]
struct Place(Arc<AtomicUsize>);

impl Drop for Place {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Permission to run one request; dropping it frees the slot.
#[derive(Debug)]
pub struct Slot {
    // Field order is drop order: the inference slot first, then the place.
    _permit: OwnedSemaphorePermit,
    running: Arc<AtomicUsize>,
    _place: Place,
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
            places: Arc::new(AtomicUsize::new(0)),
            waiting: AtomicUsize::new(0),
            running: Arc::new(AtomicUsize::new(0)),
        }
    }

    fn slot(&self, permit: OwnedSemaphorePermit, place: Place, since: Instant) -> Slot {
        self.running.fetch_add(1, Ordering::AcqRel);
        Slot {
            _permit: permit,
            running: self.running.clone(),
            _place: place,
            queued_for: since.elapsed(),
        }
    }

    /// A slot now, or after waiting in the queue; refused when every place
    /// (slots and queue) is held.
    pub async fn admit(&self) -> Result<Slot> {
        let since = Instant::now();
        let places = self.places();
        if self
            .places
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < places).then_some(n + 1)
            })
            .is_err()
        {
            return Err(Error::Overloaded(format!(
                "{} requests running and {} waiting (queue size {})",
                self.running(),
                self.waiting(),
                self.queue_size
            )));
        }
        let place = Place(self.places.clone());
        if let Ok(p) = self.slots.clone().try_acquire_owned() {
            return Ok(self.slot(p, place, since));
        }
        self.waiting.fetch_add(1, Ordering::AcqRel);
        let guard = WaitGuard(&self.waiting);
        let permit = self
            .slots
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| Error::Internal("admission gate closed".into()))?;
        drop(guard);
        Ok(self.slot(permit, place, since))
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

    /// Requests it holds at most, running and waiting.
    pub fn places(&self) -> usize {
        self.max_concurrency.saturating_add(self.queue_size)
    }

    /// Whether every slot is taken.
    pub fn saturated(&self) -> bool {
        self.running() >= self.max_concurrency
    }

    /// Whether every place is held: the next request is refused.
    pub fn full(&self) -> bool {
        self.places.load(Ordering::Acquire) >= self.places()
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
        assert!(a.full());
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

    /// A slot freed and handed to a queued request that has not run yet:
    /// that request still counts as waiting, yet the node holds only it, so
    /// a new request must queue, not be refused ("0 running and 1 waiting"
    /// was the refusal before places were counted).
    #[tokio::test]
    async fn a_slot_handed_to_a_waiter_does_not_refuse_the_next_request() {
        use futures::FutureExt;
        let a = Arc::new(Admission::new(1, 1));
        let s1 = a.admit().await.unwrap();
        let a2 = a.clone();
        let waiter = tokio::spawn(async move { a2.admit().await.map(|_| ()) });
        while a.waiting() == 0 {
            tokio::task::yield_now().await;
        }
        // The permit goes to the waiter; its task has not run since.
        drop(s1);
        assert_eq!((a.running(), a.waiting()), (0, 1));
        assert!(!a.full());
        let next = a.admit().now_or_never();
        assert!(
            next.is_none(),
            "refused or admitted at once: {:?}",
            next.map(|r| r.map(|_| ()))
        );
        waiter.await.unwrap().unwrap();
        assert_eq!((a.running(), a.waiting(), a.full()), (0, 0, false));
    }

    #[tokio::test]
    async fn zero_queue_refuses_when_busy() {
        let a = Admission::new(2, 0);
        let _x = a.admit().await.unwrap();
        let _y = a.admit().await.unwrap();
        assert_eq!(a.admit().await.unwrap_err().code(), "overloaded");
    }
}
