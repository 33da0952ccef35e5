//! The concurrency cap: at most `limit` requests in flight, at most
//! `queue_size` more waiting (first come, first served) for up to
//! `queue_timeout`.
//!
//! Invariants:
//! - `in_flight` counts exactly the live [`ConcurrencyPermit`]s; a permit
//!   releases its slot when dropped, whichever configuration is in force then;
//! - a freed slot goes straight to the oldest waiter (no barging), so a
//!   waiter never starves behind newcomers;
//! - a waiter that gives up (timeout, or its future is dropped) leaves the
//!   queue; a permit handed to a waiter that has just gone is released again;
//! - limits change live ([`Gate::set_limits`]): raising the cap admits
//!   waiters at once, lowering it lets the extra permits finish.
//!
//! The wait uses `tokio::time`, so tests drive it with `tokio::time::pause`.

use parking_lot::Mutex;
use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::oneshot;

/// Why a permit was not granted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum GateRefusal {
    /// The wait queue was full.
    QueueFull,
    /// Waited `queue_timeout` without a slot.
    TimedOut,
}

/// Limits of the gate. `limit == 0` means no cap.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct GateLimits {
    pub(crate) limit: u32,
    pub(crate) queue_size: u32,
    pub(crate) queue_timeout: Duration,
}

#[derive(Debug)]
struct Waiter {
    id: u64,
    tx: oneshot::Sender<ConcurrencyPermit>,
}

#[derive(Debug)]
struct State {
    limits: GateLimits,
    in_flight: u32,
    waiters: VecDeque<Waiter>,
    next_id: u64,
}

impl State {
    fn has_room(&self) -> bool {
        self.limits.limit == 0 || self.in_flight < self.limits.limit
    }
}

/// The shared state behind permits.
#[derive(Debug)]
pub(crate) struct Gate {
    state: Mutex<State>,
}

/// One admitted request's slot under the concurrency cap; dropping it frees
/// the slot (and hands it to the oldest waiter).
#[derive(Debug)]
pub struct ConcurrencyPermit {
    gate: Option<Arc<Gate>>,
}

impl Drop for ConcurrencyPermit {
    fn drop(&mut self) {
        if let Some(gate) = self.gate.take() {
            Gate::release(&gate);
        }
    }
}

/// Removes a waiter from the queue if its future is dropped before it got a
/// permit.
struct WaitGuard<'a> {
    gate: &'a Gate,
    id: u64,
    armed: bool,
}

impl Drop for WaitGuard<'_> {
    fn drop(&mut self) {
        if self.armed {
            self.gate.state.lock().waiters.retain(|w| w.id != self.id);
        }
    }
}

impl Gate {
    pub(crate) fn new(limits: GateLimits) -> Arc<Self> {
        Arc::new(Self {
            state: Mutex::new(State {
                limits,
                in_flight: 0,
                waiters: VecDeque::new(),
                next_id: 0,
            }),
        })
    }

    pub(crate) fn in_flight(&self) -> u32 {
        self.state.lock().in_flight
    }

    pub(crate) fn queued(&self) -> u32 {
        self.state.lock().waiters.len() as u32
    }

    /// Changes the limits; waiters that now fit are admitted.
    pub(crate) fn set_limits(self: &Arc<Self>, limits: GateLimits) {
        let mut st = self.state.lock();
        st.limits = limits;
        Self::dispatch(self, &mut st);
        // Waiters beyond a smaller queue keep their place: they were
        // accepted under the old size and leave by permit or timeout.
    }

    /// A permit now, or a place in the queue, or a refusal.
    pub(crate) async fn acquire(self: &Arc<Self>) -> Result<ConcurrencyPermit, GateRefusal> {
        let (id, rx, timeout) = {
            let mut st = self.state.lock();
            if st.waiters.is_empty() && st.has_room() {
                st.in_flight += 1;
                return Ok(ConcurrencyPermit {
                    gate: Some(self.clone()),
                });
            }
            if st.waiters.len() >= st.limits.queue_size as usize {
                return Err(GateRefusal::QueueFull);
            }
            let id = st.next_id;
            st.next_id += 1;
            let (tx, rx) = oneshot::channel();
            st.waiters.push_back(Waiter { id, tx });
            (id, rx, st.limits.queue_timeout)
        };
        let mut guard = WaitGuard {
            gate: self,
            id,
            armed: true,
        };
        let outcome = tokio::time::timeout(timeout, rx).await;
        match outcome {
            Ok(Ok(permit)) => {
                guard.armed = false;
                Ok(permit)
            }
            // The sender is only dropped after leaving the queue without a
            // permit, which happens to timed-out waiters: treat alike.
            Ok(Err(_)) | Err(_) => {
                drop(guard);
                Err(GateRefusal::TimedOut)
            }
        }
    }

    fn release(gate: &Arc<Self>) {
        let mut st = gate.state.lock();
        st.in_flight = st.in_flight.saturating_sub(1);
        Self::dispatch(gate, &mut st);
    }

    /// Hands free slots to waiters, oldest first.
    fn dispatch(gate: &Arc<Self>, st: &mut State) {
        while st.has_room() {
            let Some(waiter) = st.waiters.pop_front() else {
                break;
            };
            st.in_flight += 1;
            let permit = ConcurrencyPermit {
                gate: Some(gate.clone()),
            };
            if let Err(mut unsent) = waiter.tx.send(permit) {
                // The waiter is gone: take the slot back without recursing
                // into `release` while the lock is held.
                unsent.gate = None;
                st.in_flight -= 1;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gate(limit: u32, queue_size: u32) -> Arc<Gate> {
        Gate::new(GateLimits {
            limit,
            queue_size,
            queue_timeout: Duration::from_secs(5),
        })
    }

    #[tokio::test(start_paused = true)]
    async fn caps_and_queues_then_times_out() {
        let g = gate(1, 1);
        let p1 = g.acquire().await.unwrap();
        assert_eq!(g.in_flight(), 1);
        let g2 = g.clone();
        let waiter = tokio::spawn(async move { g2.acquire().await.map(|_| ()) });
        tokio::task::yield_now().await;
        assert_eq!(g.queued(), 1);
        // The queue (size 1) is full now.
        assert_eq!(g.acquire().await.unwrap_err(), GateRefusal::QueueFull);
        // Nobody releases: the waiter times out after 5 s of paused time.
        assert_eq!(waiter.await.unwrap().unwrap_err(), GateRefusal::TimedOut);
        assert_eq!(g.queued(), 0);
        drop(p1);
        assert_eq!(g.in_flight(), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn release_hands_slot_to_oldest_waiter() {
        let g = gate(1, 4);
        let p1 = g.acquire().await.unwrap();
        let (ga, gb) = (g.clone(), g.clone());
        let a = tokio::spawn(async move { ga.acquire().await });
        tokio::task::yield_now().await;
        let b = tokio::spawn(async move { gb.acquire().await });
        tokio::task::yield_now().await;
        assert_eq!(g.queued(), 2);
        drop(p1);
        let pa = a.await.unwrap().expect("oldest waiter gets the slot");
        assert_eq!(g.in_flight(), 1);
        assert_eq!(g.queued(), 1);
        drop(pa);
        let pb = b.await.unwrap().unwrap();
        drop(pb);
        assert_eq!(g.in_flight(), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn dropped_waiter_leaves_queue() {
        let g = gate(1, 4);
        let p1 = g.acquire().await.unwrap();
        let ga = g.clone();
        let a = tokio::spawn(async move { ga.acquire().await.map(|_| ()) });
        tokio::task::yield_now().await;
        assert_eq!(g.queued(), 1);
        a.abort();
        let _ = a.await;
        assert_eq!(g.queued(), 0);
        drop(p1);
        assert_eq!(g.in_flight(), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn raising_the_limit_admits_waiters_and_lowering_keeps_permits() {
        let g = gate(1, 4);
        let p1 = g.acquire().await.unwrap();
        let ga = g.clone();
        let a = tokio::spawn(async move { ga.acquire().await });
        tokio::task::yield_now().await;
        g.set_limits(GateLimits {
            limit: 2,
            queue_size: 4,
            queue_timeout: Duration::from_secs(5),
        });
        let pa = a.await.unwrap().unwrap();
        assert_eq!(g.in_flight(), 2);
        g.set_limits(GateLimits {
            limit: 1,
            queue_size: 0,
            queue_timeout: Duration::from_secs(5),
        });
        assert_eq!(g.in_flight(), 2, "held permits keep working");
        assert_eq!(g.acquire().await.unwrap_err(), GateRefusal::QueueFull);
        drop(p1);
        assert_eq!(
            g.acquire().await.unwrap_err(),
            GateRefusal::QueueFull,
            "still at 1 of 1"
        );
        drop(pa);
        let p = g.acquire().await.unwrap();
        drop(p);
        assert_eq!(g.in_flight(), 0);
    }

    #[tokio::test]
    async fn zero_limit_is_uncapped() {
        let g = gate(0, 0);
        let permits: Vec<_> = futures::future::join_all((0..100).map(|_| g.acquire())).await;
        assert!(permits.iter().all(Result::is_ok));
        assert_eq!(g.in_flight(), 100);
        drop(permits);
        assert_eq!(g.in_flight(), 0);
    }
}
