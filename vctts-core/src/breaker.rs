//! The per-node circuit breaker: stop sending work to a node that keeps
//! failing, and probe it again after a cool-down.
//!
//! States and transitions (time is read from the injected [`SharedClock`]):
//! - **closed**: everything is admitted. It opens after
//!   [`BreakerConfig::failure_threshold`] consecutive failures, or when at
//!   least [`BreakerConfig::min_requests`] of the last
//!   [`BreakerConfig::window`] outcomes are recorded and the share of failures
//!   among them is at least [`BreakerConfig::failure_ratio`];
//! - **open**: nothing is admitted until [`BreakerConfig::cool_down`] has
//!   passed since it opened; then it is half-open;
//! - **half-open**: at most [`BreakerConfig::half_open_probes`] requests are in
//!   flight at once. A failed probe re-opens it (and restarts the cool-down);
//!   once `half_open_probes` probes have succeeded it closes with a fresh
//!   window.
//!
//! Invariants: every transition starts a new *epoch*. A [`BreakerTicket`]
//! remembers the epoch it was issued in, and outcomes of tickets from an
//! earlier epoch are ignored, so a slow request started before the breaker
//! opened can neither re-open nor close it later. Probe slots are only held by
//! tickets; [`CircuitBreaker::cancel`] gives one back without an outcome.
//! Admission in the closed state is one atomic load and takes no lock.

use crate::clock::SharedClock;
use crate::error::{Error, Result};
use crate::limit::serde_secs;
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Largest accepted [`BreakerConfig::window`].
pub const MAX_WINDOW: u32 = 10_000;

/// When a breaker opens and how it recovers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BreakerConfig {
    /// Consecutive failures that open the breaker; 0 turns this rule off.
    pub failure_threshold: u32,
    /// Share of failures in the window (0 < ratio ≤ 1) that opens the breaker.
    pub failure_ratio: f64,
    /// How many of the latest outcomes the ratio rule looks at; 0 turns the
    /// ratio rule off.
    pub window: u32,
    /// Outcomes the window must hold before the ratio rule applies.
    pub min_requests: u32,
    /// How long the breaker stays open before it lets probes through.
    #[serde(with = "serde_secs")]
    pub cool_down: Duration,
    /// Probes admitted at once when half-open, and successes needed to close.
    pub half_open_probes: u32,
}

impl Default for BreakerConfig {
    fn default() -> Self {
        Self {
            failure_threshold: 5,
            failure_ratio: 0.5,
            window: 20,
            min_requests: 10,
            cool_down: Duration::from_secs(10),
            half_open_probes: 1,
        }
    }
}

impl BreakerConfig {
    /// Checks the values; the error names the field (`breaker.<field>`).
    pub fn validate(&self) -> Result<()> {
        if !(self.failure_ratio > 0.0 && self.failure_ratio <= 1.0) {
            return Err(Error::Config(format!(
                "breaker.failure_ratio must be in (0, 1], got {}",
                self.failure_ratio
            )));
        }
        if self.window > MAX_WINDOW {
            return Err(Error::Config(format!(
                "breaker.window must be at most {MAX_WINDOW}, got {}",
                self.window
            )));
        }
        if self.window > 0 && self.min_requests > self.window {
            return Err(Error::Config(format!(
                "breaker.min_requests ({}) must not exceed breaker.window ({})",
                self.min_requests, self.window
            )));
        }
        if self.half_open_probes == 0 {
            return Err(Error::Config(
                "breaker.half_open_probes must be at least 1, got 0".into(),
            ));
        }
        Ok(())
    }

    /// A copy with out-of-range values replaced by the nearest valid ones, so
    /// a breaker can always be built. Use [`validate`](Self::validate) to
    /// reject bad configuration at load time instead.
    pub fn normalized(&self) -> Self {
        let mut c = self.clone();
        if !(c.failure_ratio > 0.0 && c.failure_ratio <= 1.0) {
            c.failure_ratio = if c.failure_ratio > 1.0 {
                1.0
            } else {
                Self::default().failure_ratio
            };
        }
        c.window = c.window.min(MAX_WINDOW);
        if c.window > 0 {
            c.min_requests = c.min_requests.min(c.window);
        }
        c.half_open_probes = c.half_open_probes.max(1);
        c
    }
}

/// Where a breaker is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BreakerState {
    /// Requests flow.
    Closed,
    /// Requests are refused until the cool-down ends.
    Open,
    /// A limited number of probes may go through.
    HalfOpen,
}

impl BreakerState {
    /// Stable lower-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            BreakerState::Closed => "closed",
            BreakerState::Open => "open",
            BreakerState::HalfOpen => "half_open",
        }
    }

    fn code(self) -> u64 {
        match self {
            BreakerState::Closed => 0,
            BreakerState::Open => 1,
            BreakerState::HalfOpen => 2,
        }
    }

    fn from_code(code: u64) -> Self {
        match code & 3 {
            0 => BreakerState::Closed,
            1 => BreakerState::Open,
            _ => BreakerState::HalfOpen,
        }
    }
}

impl std::fmt::Display for BreakerState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Proof of one admission: hand it back with [`CircuitBreaker::record_ticket`]
/// or [`CircuitBreaker::cancel`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BreakerTicket {
    epoch: u64,
    probe: bool,
}

impl BreakerTicket {
    /// Whether this admission holds a half-open probe slot.
    pub fn is_probe(&self) -> bool {
        self.probe
    }
}

/// A circuit breaker for one node. `Send + Sync`; share it by reference.
#[derive(Debug)]
pub struct CircuitBreaker {
    config: BreakerConfig,
    clock: SharedClock,
    /// `epoch << 2 | state code`, mirrored from `inner` for lock-free reads.
    packed: AtomicU64,
    /// When the breaker last opened, in clock nanoseconds.
    opened_at_nanos: AtomicU64,
    inner: Mutex<Inner>,
}

#[derive(Debug)]
struct Inner {
    state: BreakerState,
    epoch: u64,
    opened_at: Duration,
    consecutive_failures: u32,
    /// Ring of the latest outcomes, `true` = failure.
    window: Vec<bool>,
    next: usize,
    filled: usize,
    failures_in_window: usize,
    probes_in_flight: u32,
    probe_successes: u32,
}

impl Inner {
    fn reset_window(&mut self) {
        self.window.iter_mut().for_each(|f| *f = false);
        self.next = 0;
        self.filled = 0;
        self.failures_in_window = 0;
        self.consecutive_failures = 0;
    }

    fn push(&mut self, failure: bool) {
        if failure {
            self.consecutive_failures = self.consecutive_failures.saturating_add(1);
        } else {
            self.consecutive_failures = 0;
        }
        let len = self.window.len();
        if len == 0 {
            return;
        }
        if self.filled == len {
            if self.window[self.next] {
                self.failures_in_window -= 1;
            }
        } else {
            self.filled += 1;
        }
        self.window[self.next] = failure;
        if failure {
            self.failures_in_window += 1;
        }
        self.next = (self.next + 1) % len;
    }
}

impl CircuitBreaker {
    /// A closed breaker. Out-of-range configuration values are normalized
    /// (see [`BreakerConfig::normalized`]).
    pub fn new(config: BreakerConfig, clock: SharedClock) -> Self {
        let config = config.normalized();
        let inner = Inner {
            state: BreakerState::Closed,
            epoch: 0,
            opened_at: Duration::ZERO,
            consecutive_failures: 0,
            window: vec![false; config.window as usize],
            next: 0,
            filled: 0,
            failures_in_window: 0,
            probes_in_flight: 0,
            probe_successes: 0,
        };
        Self {
            config,
            clock,
            packed: AtomicU64::new(BreakerState::Closed.code()),
            opened_at_nanos: AtomicU64::new(0),
            inner: Mutex::new(inner),
        }
    }

    /// The configuration in force.
    pub fn config(&self) -> &BreakerConfig {
        &self.config
    }

    /// The current state (an open breaker whose cool-down has ended reports,
    /// and becomes, half-open).
    pub fn state(&self) -> BreakerState {
        let state = BreakerState::from_code(self.packed.load(Ordering::Acquire));
        if state == BreakerState::Open && self.cooled_down() {
            let mut inner = self.inner.lock();
            self.maybe_half_open(&mut inner);
            return inner.state;
        }
        state
    }

    /// Whether a request would be admitted now, without reserving anything.
    /// Balancing policies use this to filter candidates.
    pub fn would_admit(&self) -> bool {
        match BreakerState::from_code(self.packed.load(Ordering::Acquire)) {
            BreakerState::Closed => true,
            BreakerState::Open if !self.cooled_down() => false,
            _ => {
                let mut inner = self.inner.lock();
                self.maybe_half_open(&mut inner);
                match inner.state {
                    BreakerState::Closed => true,
                    BreakerState::Open => false,
                    BreakerState::HalfOpen => inner.probes_in_flight < self.config.half_open_probes,
                }
            }
        }
    }

    /// Admits a request if the state allows it; in half-open this reserves a
    /// probe slot, held until the ticket is recorded or cancelled.
    pub fn try_admit(&self) -> Option<BreakerTicket> {
        let packed = self.packed.load(Ordering::Acquire);
        match BreakerState::from_code(packed) {
            BreakerState::Closed => {
                return Some(BreakerTicket {
                    epoch: packed >> 2,
                    probe: false,
                });
            }
            BreakerState::Open if !self.cooled_down() => return None,
            _ => {}
        }
        let mut inner = self.inner.lock();
        self.maybe_half_open(&mut inner);
        match inner.state {
            BreakerState::Closed => Some(BreakerTicket {
                epoch: inner.epoch,
                probe: false,
            }),
            BreakerState::Open => None,
            BreakerState::HalfOpen => {
                if inner.probes_in_flight < self.config.half_open_probes {
                    inner.probes_in_flight += 1;
                    Some(BreakerTicket {
                        epoch: inner.epoch,
                        probe: true,
                    })
                } else {
                    None
                }
            }
        }
    }

    /// Admission without a ticket (`true` reserves a probe slot when
    /// half-open; pair it with [`record`](Self::record)).
    pub fn admits(&self) -> bool {
        self.try_admit().is_some()
    }

    /// Records an outcome for the current epoch (the ticket-less form of
    /// [`record_ticket`](Self::record_ticket)). When half-open it releases one
    /// probe slot.
    pub fn record(&self, success: bool) {
        let mut inner = self.inner.lock();
        self.maybe_half_open(&mut inner);
        let ticket = BreakerTicket {
            epoch: inner.epoch,
            probe: inner.state == BreakerState::HalfOpen,
        };
        self.apply(&mut inner, ticket, success);
    }

    /// Records the outcome of an admitted request. Returns the new state when
    /// this outcome changed it. Outcomes from an earlier epoch are ignored.
    pub fn record_ticket(&self, ticket: BreakerTicket, success: bool) -> Option<BreakerState> {
        let mut inner = self.inner.lock();
        self.maybe_half_open(&mut inner);
        self.apply(&mut inner, ticket, success)
    }

    /// Gives back an admission that produced no outcome (the request was
    /// abandoned), releasing its probe slot if it held one.
    pub fn cancel(&self, ticket: BreakerTicket) {
        if !ticket.probe {
            return;
        }
        let mut inner = self.inner.lock();
        if inner.epoch == ticket.epoch && inner.state == BreakerState::HalfOpen {
            inner.probes_in_flight = inner.probes_in_flight.saturating_sub(1);
        }
    }

    fn cooled_down(&self) -> bool {
        let opened = Duration::from_nanos(self.opened_at_nanos.load(Ordering::Acquire));
        self.clock.now() >= opened + self.config.cool_down
    }

    fn maybe_half_open(&self, inner: &mut Inner) {
        if inner.state == BreakerState::Open && self.clock.now() >= inner.opened_at + self.config.cool_down {
            self.transition(inner, BreakerState::HalfOpen);
        }
    }

    fn transition(&self, inner: &mut Inner, to: BreakerState) {
        inner.state = to;
        inner.epoch += 1;
        inner.probes_in_flight = 0;
        inner.probe_successes = 0;
        match to {
            BreakerState::Open => {
                inner.opened_at = self.clock.now();
                self.opened_at_nanos
                    .store(inner.opened_at.as_nanos() as u64, Ordering::Release);
            }
            BreakerState::Closed => inner.reset_window(),
            BreakerState::HalfOpen => {}
        }
        self.packed.store(inner.epoch << 2 | to.code(), Ordering::Release);
    }

    fn apply(&self, inner: &mut Inner, ticket: BreakerTicket, success: bool) -> Option<BreakerState> {
        if ticket.epoch != inner.epoch {
            return None;
        }
        match inner.state {
            BreakerState::Closed => {
                inner.push(!success);
                if !success && self.should_trip(inner) {
                    self.transition(inner, BreakerState::Open);
                    return Some(BreakerState::Open);
                }
                None
            }
            BreakerState::HalfOpen => {
                if ticket.probe {
                    inner.probes_in_flight = inner.probes_in_flight.saturating_sub(1);
                }
                if success {
                    inner.probe_successes += 1;
                    if inner.probe_successes >= self.config.half_open_probes {
                        self.transition(inner, BreakerState::Closed);
                        return Some(BreakerState::Closed);
                    }
                    None
                } else {
                    self.transition(inner, BreakerState::Open);
                    Some(BreakerState::Open)
                }
            }
            BreakerState::Open => None,
        }
    }

    fn should_trip(&self, inner: &Inner) -> bool {
        let c = &self.config;
        if c.failure_threshold > 0 && inner.consecutive_failures >= c.failure_threshold {
            return true;
        }
        if c.window > 0 && inner.filled > 0 && inner.filled >= c.min_requests as usize {
            let ratio = inner.failures_in_window as f64 / inner.filled as f64;
            return ratio >= c.failure_ratio;
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;
    use std::sync::Arc;

    fn breaker(config: BreakerConfig) -> (CircuitBreaker, ManualClock) {
        let clock = ManualClock::new();
        (CircuitBreaker::new(config, Arc::new(clock.clone())), clock)
    }

    fn only_consecutive(n: u32) -> BreakerConfig {
        BreakerConfig {
            failure_threshold: n,
            window: 0,
            min_requests: 0,
            ..BreakerConfig::default()
        }
    }

    #[test]
    fn opens_after_consecutive_failures() {
        let (b, _) = breaker(only_consecutive(3));
        b.record(false);
        b.record(false);
        b.record(true); // resets the streak
        b.record(false);
        b.record(false);
        assert_eq!(b.state(), BreakerState::Closed);
        b.record(false);
        assert_eq!(b.state(), BreakerState::Open);
        assert!(!b.admits());
        assert!(!b.would_admit());
    }

    #[test]
    fn opens_on_failure_ratio_once_min_requests_seen() {
        let (b, _) = breaker(BreakerConfig {
            failure_threshold: 0,
            failure_ratio: 0.5,
            window: 10,
            min_requests: 6,
            ..BreakerConfig::default()
        });
        // Two failures in five outcomes: below min_requests -> stays closed.
        for i in 0..5 {
            b.record(i % 2 == 0);
        }
        assert_eq!(b.state(), BreakerState::Closed);
        // Sixth outcome a failure: 3 of 6 failed = 0.5 -> opens.
        b.record(false);
        assert_eq!(b.state(), BreakerState::Open);
    }

    #[test]
    fn ratio_window_forgets_old_outcomes() {
        let (b, _) = breaker(BreakerConfig {
            failure_threshold: 0,
            failure_ratio: 0.5,
            window: 4,
            min_requests: 4,
            ..BreakerConfig::default()
        });
        // f s s s -> 1/4; then s pushes the failure out; then f -> 1/4 again.
        for ok in [false, true, true, true, true, false] {
            b.record(ok);
            assert_eq!(b.state(), BreakerState::Closed);
        }
        // s s f f -> 2/4 = 0.5 -> opens.
        b.record(false);
        assert_eq!(b.state(), BreakerState::Open);
    }

    #[test]
    fn half_open_after_cool_down_then_success_closes() {
        let (b, clock) = breaker(only_consecutive(1));
        b.record(false);
        assert_eq!(b.state(), BreakerState::Open);
        clock.advance(Duration::from_millis(9_999));
        assert!(!b.would_admit());
        assert_eq!(b.state(), BreakerState::Open);
        clock.advance(Duration::from_millis(1));
        assert_eq!(b.state(), BreakerState::HalfOpen);
        let probe = b.try_admit().expect("one probe admitted");
        assert!(probe.is_probe());
        assert!(b.try_admit().is_none(), "only one probe at a time");
        assert!(!b.would_admit());
        assert_eq!(b.record_ticket(probe, true), Some(BreakerState::Closed));
        assert_eq!(b.state(), BreakerState::Closed);
        assert!(b.would_admit());
    }

    #[test]
    fn failed_probe_reopens_and_restarts_cool_down() {
        let (b, clock) = breaker(only_consecutive(1));
        b.record(false);
        clock.advance(Duration::from_secs(10));
        let probe = b.try_admit().unwrap();
        assert_eq!(b.record_ticket(probe, false), Some(BreakerState::Open));
        clock.advance(Duration::from_secs(5));
        assert_eq!(b.state(), BreakerState::Open);
        clock.advance(Duration::from_secs(5));
        assert_eq!(b.state(), BreakerState::HalfOpen);
    }

    #[test]
    fn several_probes_all_must_succeed() {
        let (b, clock) = breaker(BreakerConfig {
            half_open_probes: 2,
            ..only_consecutive(1)
        });
        b.record(false);
        clock.advance(Duration::from_secs(10));
        let p1 = b.try_admit().unwrap();
        let p2 = b.try_admit().unwrap();
        assert!(b.try_admit().is_none());
        assert_eq!(b.record_ticket(p1, true), None);
        assert_eq!(b.state(), BreakerState::HalfOpen);
        assert_eq!(b.record_ticket(p2, true), Some(BreakerState::Closed));
    }

    #[test]
    fn cancelled_probe_frees_its_slot() {
        let (b, clock) = breaker(only_consecutive(1));
        b.record(false);
        clock.advance(Duration::from_secs(10));
        let p = b.try_admit().unwrap();
        assert!(b.try_admit().is_none());
        b.cancel(p);
        assert!(b.try_admit().is_some());
    }

    #[test]
    fn stale_outcomes_are_ignored() {
        let (b, clock) = breaker(only_consecutive(2));
        let old = b.try_admit().unwrap();
        b.record(false);
        b.record(false);
        assert_eq!(b.state(), BreakerState::Open);
        clock.advance(Duration::from_secs(10));
        assert_eq!(b.state(), BreakerState::HalfOpen);
        // A request admitted before the breaker opened succeeds late: it is
        // not a probe and must not close the breaker.
        assert_eq!(b.record_ticket(old, true), None);
        assert_eq!(b.state(), BreakerState::HalfOpen);
        // Nor does cancelling it release a probe slot it never held.
        let p = b.try_admit().unwrap();
        b.cancel(old);
        assert!(b.try_admit().is_none());
        b.record_ticket(p, true);
        assert_eq!(b.state(), BreakerState::Closed);
    }

    #[test]
    fn closing_starts_a_fresh_window() {
        let (b, clock) = breaker(only_consecutive(3));
        b.record(false);
        b.record(false);
        b.record(false);
        clock.advance(Duration::from_secs(10));
        let p = b.try_admit().unwrap();
        b.record_ticket(p, true);
        b.record(false);
        b.record(false);
        assert_eq!(b.state(), BreakerState::Closed, "old failures were forgotten");
    }

    #[test]
    fn config_validation_names_fields() {
        assert!(BreakerConfig::default().validate().is_ok());
        let bad = BreakerConfig {
            failure_ratio: 1.5,
            ..BreakerConfig::default()
        };
        assert!(
            bad.validate()
                .unwrap_err()
                .to_string()
                .contains("breaker.failure_ratio")
        );
        let bad = BreakerConfig {
            half_open_probes: 0,
            ..BreakerConfig::default()
        };
        assert!(
            bad.validate()
                .unwrap_err()
                .to_string()
                .contains("half_open_probes")
        );
        let bad = BreakerConfig {
            min_requests: 30,
            ..BreakerConfig::default()
        };
        assert_eq!(bad.validate().unwrap_err().code(), "invalid_config");
        assert_eq!(bad.normalized().min_requests, 20);
        assert!(
            BreakerConfig {
                failure_ratio: f64::NAN,
                ..BreakerConfig::default()
            }
            .normalized()
            .validate()
            .is_ok()
        );
    }

    #[test]
    fn config_serde_uses_seconds() {
        let c: BreakerConfig = serde_json::from_str(r#"{"cool_down": 2.5, "failure_threshold": 3}"#).unwrap();
        assert_eq!(c.cool_down, Duration::from_millis(2500));
        assert_eq!(c.failure_threshold, 3);
        assert_eq!(c.window, 20);
        let back: BreakerConfig = serde_json::from_str(&serde_json::to_string(&c).unwrap()).unwrap();
        assert_eq!(back, c);
        assert_eq!(
            serde_json::to_string(&BreakerState::HalfOpen).unwrap(),
            "\"half_open\""
        );
    }
}
