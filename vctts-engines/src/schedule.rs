//! Scheduling one request's sentences over an engine's inference lanes.
//!
//! An engine runs its models on lanes ([`crate::runtime::InferencePool`]
//! threads, each owning its sessions). A request starts on one lane (its
//! *owner*); when lanes are idle and no other request waits ([`Load::spare`]),
//! it may lend its later sentences to *helpers*: jobs on the idle lanes that
//! claim sentences from a shared [`Board`], synthesize them with their own
//! sessions and put the results back. The owner emits them strictly in order.
//!
//! Invariants:
//! - output order and content do not depend on which lane made a sentence
//!   (each sentence draws its randomness from the request's seed and its own
//!   index, never from the sentences before it);
//! - at most `window` sentences are made ahead of the one being emitted, so
//!   the memory of a request does not grow with its length;
//! - a helper yields its lane between sentences as soon as another request
//!   waits: one request alone uses every lane, many get one each;
//! - the owner returns only after every helper that started has left the
//!   board, so a finished (or cancelled) request leaves no work behind;
//! - the owner never waits for a helper that has not started: it makes every
//!   sentence nobody has claimed itself, so queued helpers cannot deadlock it.

use parking_lot::{Condvar, Mutex};
use std::collections::BTreeMap;
use vctts_core::Result;

/// How busy an engine's lanes are at one moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Load {
    /// Inference lanes of the engine.
    pub lanes: usize,
    /// Lanes running a job, or promised to a helper already queued.
    pub busy: usize,
    /// Requests queued for a lane.
    pub waiting: usize,
}

impl Load {
    /// Lanes a running request may borrow for its sentences now: none while
    /// another request waits (then every request keeps to its own lane),
    /// otherwise every idle lane.
    pub fn spare(&self) -> usize {
        if self.waiting > 0 {
            0
        } else {
            self.lanes.saturating_sub(self.busy)
        }
    }

    /// Whether a helper should give its lane back before its next sentence.
    pub fn should_yield(&self) -> bool {
        self.waiting > 0
    }
}

struct Inner<T> {
    /// The next sentence nobody has claimed.
    next: usize,
    /// The next sentence to emit.
    emitted: usize,
    /// Finished sentences not emitted yet.
    done: BTreeMap<usize, Result<T>>,
    /// Set when the owner stops: helpers claim nothing more.
    stopped: bool,
    /// Helpers that entered and have not left.
    helpers: usize,
}

/// The sentences of one request, shared by its owner and its helpers.
pub struct Board<T> {
    n: usize,
    window: usize,
    inner: Mutex<Inner<T>>,
    changed: Condvar,
}

impl<T> std::fmt::Debug for Board<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let g = self.inner.lock();
        f.debug_struct("Board")
            .field("n", &self.n)
            .field("next", &g.next)
            .field("emitted", &g.emitted)
            .field("helpers", &g.helpers)
            .finish()
    }
}

impl<T> Board<T> {
    /// Sentences `first..n` still to make (the ones before were emitted
    /// already), at most `window` (at least 1) ahead of the one being emitted.
    pub fn new(n: usize, first: usize, window: usize) -> Self {
        Self {
            n,
            window: window.max(1),
            inner: Mutex::new(Inner {
                next: first.min(n),
                emitted: first.min(n),
                done: BTreeMap::new(),
                stopped: false,
                helpers: 0,
            }),
            changed: Condvar::new(),
        }
    }

    /// Sentences nobody has claimed yet.
    pub fn unclaimed(&self) -> usize {
        let g = self.inner.lock();
        if g.stopped { 0 } else { self.n - g.next }
    }

    /// A helper arrives; false (and it must not claim) when the owner has
    /// stopped or nothing is left.
    pub fn enter(&self) -> bool {
        let mut g = self.inner.lock();
        if g.stopped || g.next >= self.n {
            return false;
        }
        g.helpers += 1;
        true
    }

    /// A helper that [`enter`](Self::enter)ed leaves.
    pub fn leave(&self) {
        let mut g = self.inner.lock();
        g.helpers = g.helpers.saturating_sub(1);
        drop(g);
        self.changed.notify_all();
    }

    /// The next sentence for a helper: `None` when nothing is left, the
    /// window ahead of the emitted sentence is full, or the owner stopped.
    pub fn claim(&self) -> Option<usize> {
        let mut g = self.inner.lock();
        if g.stopped || g.next >= self.n || g.next >= g.emitted + self.window {
            return None;
        }
        g.next += 1;
        Some(g.next - 1)
    }

    /// Hands in sentence `i`.
    pub fn put(&self, i: usize, result: Result<T>) {
        self.inner.lock().done.insert(i, result);
        self.changed.notify_all();
    }

    /// A helper's whole visit: [`enter`](Self::enter), [`serve`](Self::serve),
    /// [`leave`](Self::leave). Does nothing when it cannot enter.
    pub fn help(&self, go_on: &mut dyn FnMut() -> bool, work: &mut dyn FnMut(usize) -> Result<T>) {
        if !self.enter() {
            return;
        }
        self.serve(go_on, work);
        self.leave();
    }

    /// A helper's loop, between [`enter`](Self::enter) and
    /// [`leave`](Self::leave): while `go_on()` holds, claims sentences, makes
    /// them with `work` and hands them in.
    pub fn serve(&self, go_on: &mut dyn FnMut() -> bool, work: &mut dyn FnMut(usize) -> Result<T>) {
        while go_on() {
            match self.claim() {
                Some(i) => {
                    let r = work(i);
                    self.put(i, r);
                }
                None => break,
            }
        }
    }

    /// The owner's loop: emits every sentence in order, making each one no
    /// helper has claimed with `work`. `emit(i, value)` returns false to stop
    /// (the request is done with, e.g. its reader left); `after_emit` runs
    /// after each emitted sentence (the moment to lend more sentences). The
    /// first error, in sentence order, ends it. Returns once no helper is
    /// left on the board.
    pub fn drive(
        &self,
        work: &mut dyn FnMut(usize) -> Result<T>,
        emit: &mut dyn FnMut(usize, T) -> bool,
        after_emit: &mut dyn FnMut(),
    ) -> Result<()> {
        let out = self.drive_inner(work, emit, after_emit);
        // Stop the helpers and wait for the ones at work: they finish (or
        // see their run terminated by a cancel) the sentence in hand.
        let mut g = self.inner.lock();
        g.stopped = true;
        while g.helpers > 0 {
            self.changed.wait(&mut g);
        }
        g.done.clear();
        out
    }

    fn drive_inner(
        &self,
        work: &mut dyn FnMut(usize) -> Result<T>,
        emit: &mut dyn FnMut(usize, T) -> bool,
        after_emit: &mut dyn FnMut(),
    ) -> Result<()> {
        loop {
            let mut g = self.inner.lock();
            let i = g.emitted;
            if i >= self.n {
                return Ok(());
            }
            if let Some(r) = g.done.remove(&i) {
                g.emitted += 1;
                drop(g);
                // The window moved: a helper may claim again.
                self.changed.notify_all();
                if !emit(i, r?) {
                    return Ok(());
                }
                after_emit();
                continue;
            }
            if g.next < self.n && g.next < g.emitted + self.window {
                let mine = g.next;
                g.next += 1;
                drop(g);
                let r = work(mine);
                self.put(mine, r);
                continue;
            }
            // Sentence `i` is in a helper's hands (claimed, not handed in).
            self.changed.wait(&mut g);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::mpsc;
    use vctts_core::Error;

    #[test]
    fn alone_a_request_borrows_every_idle_lane_and_under_load_none() {
        // Alone on 4 lanes: its own lane busy, three to lend.
        let alone = Load {
            lanes: 4,
            busy: 1,
            waiting: 0,
        };
        assert_eq!(alone.spare(), 3);
        assert!(!alone.should_yield());
        // Another request waiting: keep to one lane, and helpers yield.
        let loaded = Load { waiting: 1, ..alone };
        assert_eq!(loaded.spare(), 0);
        assert!(loaded.should_yield());
        // Every lane busy: nothing to lend.
        assert_eq!(
            Load {
                lanes: 2,
                busy: 2,
                waiting: 0
            }
            .spare(),
            0
        );
        // Never more than the lanes, whatever the counters say.
        assert_eq!(
            Load {
                lanes: 2,
                busy: 5,
                waiting: 0
            }
            .spare(),
            0
        );
    }

    #[test]
    fn alone_the_owner_makes_and_emits_everything_in_order() {
        let b = Board::<usize>::new(5, 0, 2);
        let mut made = Vec::new();
        let mut out = Vec::new();
        b.drive(
            &mut |i| {
                made.push(i);
                Ok(i * 10)
            },
            &mut |i, v| {
                out.push((i, v));
                true
            },
            &mut || {},
        )
        .unwrap();
        assert_eq!(made, [0, 1, 2, 3, 4]);
        assert_eq!(out, [(0, 0), (1, 10), (2, 20), (3, 30), (4, 40)]);
    }

    /// A helper on another thread makes sentence 1 while the owner makes 2;
    /// the helper finishes last, yet the output is in order. The order of
    /// events is forced with channels, not timing.
    #[test]
    fn a_helper_s_sentences_come_out_in_order() {
        let b = Arc::new(Board::<String>::new(4, 0, 4));
        // The owner takes sentence 0 itself before the helper exists.
        let (start_tx, start_rx) = mpsc::channel::<()>();
        let (claimed_tx, claimed_rx) = mpsc::channel::<usize>();
        let (release_tx, release_rx) = mpsc::channel::<()>();
        let helper = {
            let b = b.clone();
            std::thread::spawn(move || {
                start_rx.recv().unwrap();
                let mut made = Vec::new();
                let mut once = true;
                b.help(&mut || std::mem::take(&mut once), &mut |i| {
                    claimed_tx.send(i).unwrap();
                    release_rx.recv().unwrap();
                    made.push(i);
                    Ok(format!("helper {i}"))
                });
                made
            })
        };
        let mut out = Vec::new();
        let mut release = Some(release_tx);
        let mut helper_claim = None;
        b.drive(
            &mut |i| {
                if i == 0 {
                    // Let the helper claim the next one while we work.
                    start_tx.send(()).unwrap();
                    helper_claim = Some(claimed_rx.recv().unwrap());
                }
                if i == 3 {
                    // Sentences 2 and 3 are made, 1 is still in the
                    // helper's hands: release it now.
                    release.take().unwrap().send(()).unwrap();
                }
                Ok(format!("owner {i}"))
            },
            &mut |_, v| {
                out.push(v);
                true
            },
            &mut || {},
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(helper_claim, Some(1));
        assert_eq!(helper.join().unwrap(), [1]);
        assert_eq!(out, ["owner 0", "helper 1", "owner 2", "owner 3"]);
    }

    #[test]
    fn the_window_bounds_the_sentences_made_ahead() {
        let b = Board::<usize>::new(10, 0, 3);
        assert_eq!(b.claim(), Some(0));
        assert_eq!(b.claim(), Some(1));
        assert_eq!(b.claim(), Some(2));
        assert_eq!(b.claim(), None, "three ahead of sentence 0 at most");
        b.put(0, Ok(0));
        assert_eq!(b.unclaimed(), 7);
    }

    #[test]
    fn an_error_stops_in_order_and_a_late_helper_finds_nothing() {
        let b = Board::<usize>::new(4, 0, 4);
        let mut out = Vec::new();
        let e = b
            .drive(
                &mut |i| if i == 2 { Err(Error::Cancelled) } else { Ok(i) },
                &mut |i, _| {
                    out.push(i);
                    true
                },
                &mut || {},
            )
            .unwrap_err();
        assert_eq!(e.code(), "cancelled");
        assert_eq!(out, [0, 1]);
        // The board is stopped: a helper queued before the end does no work.
        let mut worked = false;
        b.help(&mut || true, &mut |_| {
            worked = true;
            Ok(0)
        });
        assert!(!worked);
        assert_eq!(b.unclaimed(), 0);
    }

    #[test]
    fn a_reader_that_stops_ends_the_owner_early() {
        let b = Board::<usize>::new(100, 1, 4);
        let mut made = 0;
        b.drive(
            &mut |i| {
                made += 1;
                Ok(i)
            },
            &mut |i, _| i < 3,
            &mut || {},
        )
        .unwrap();
        assert!(made <= 3 + 4, "made {made} sentences for 3 emitted");
    }

    /// A stopping owner waits for the helper at work before returning.
    #[test]
    fn the_owner_returns_after_its_helpers_leave() {
        let b = Arc::new(Board::<usize>::new(3, 0, 3));
        let (start_tx, start_rx) = mpsc::channel::<()>();
        let (claimed_tx, claimed_rx) = mpsc::channel::<usize>();
        let (go_tx, go_rx) = mpsc::channel::<()>();
        let finished = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let helper = {
            let (b, finished) = (b.clone(), finished.clone());
            std::thread::spawn(move || {
                start_rx.recv().unwrap();
                let mut once = true;
                b.help(&mut || std::mem::take(&mut once), &mut |i| {
                    claimed_tx.send(i).unwrap();
                    go_rx.recv().unwrap();
                    finished.store(true, std::sync::atomic::Ordering::SeqCst);
                    Ok(i)
                });
            })
        };
        let mut go = Some(go_tx);
        b.drive(
            &mut |i| {
                if i == 0 {
                    start_tx.send(()).unwrap();
                    assert_eq!(claimed_rx.recv().unwrap(), 1);
                }
                Ok(i)
            },
            // Release the helper, then stop: sentence 1 is still being made.
            &mut |_, _| {
                go.take().unwrap().send(()).unwrap();
                false
            },
            &mut || {},
        )
        .unwrap();
        assert!(finished.load(std::sync::atomic::Ordering::SeqCst));
        assert_eq!(b.inner.lock().helpers, 0);
        helper.join().unwrap();
    }
}
