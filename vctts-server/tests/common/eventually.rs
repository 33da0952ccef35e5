//! The one polling helper of the integration tests: wait until a condition
//! holds, or fail after a deadline naming what was awaited (never a fixed
//! sleep that hopes the condition holds by then).
//!
//! Invariants: the probe runs at once, then again after pauses growing from
//! 10 ms to 100 ms; it runs at least once after the deadline has passed
//! (a slow probe is not cut short); the timeout message names `what`, the
//! deadline and the last thing the probe saw.
//!
//! Included by `tests/common/mod.rs` and, through a `#[path]`, by the test
//! binaries that do not use `common` (pages, admin).

#![allow(dead_code)]

use std::future::Future;
use std::time::{Duration, Instant};

/// What a probe answers: `bool` (holds or not), `Option<T>` (a value once it
/// holds) or `Result<T, E>` (a value, or what was seen instead, shown when
/// the deadline passes).
pub trait Outcome {
    /// What [`eventually`] returns once the condition holds.
    type Value;
    /// The value, or a description of what was seen instead.
    fn into_outcome(self) -> Result<Self::Value, String>;
}

impl Outcome for bool {
    type Value = ();
    fn into_outcome(self) -> Result<(), String> {
        if self {
            Ok(())
        } else {
            Err("the condition did not hold".into())
        }
    }
}

impl<T> Outcome for Option<T> {
    type Value = T;
    fn into_outcome(self) -> Result<T, String> {
        self.ok_or_else(|| "nothing yet".into())
    }
}

impl<T, E: std::fmt::Display> Outcome for Result<T, E> {
    type Value = T;
    fn into_outcome(self) -> Result<T, String> {
        self.map_err(|e| e.to_string())
    }
}

const FIRST_PAUSE: Duration = Duration::from_millis(10);
const LONGEST_PAUSE: Duration = Duration::from_millis(100);

fn timed_out(what: &str, deadline: Duration, last: &str) -> ! {
    panic!("timed out after {deadline:?} waiting for {what}; last seen: {last}")
}

/// Runs `probe` until its outcome holds and returns its value; panics after
/// `deadline` with a message naming `what`.
pub async fn eventually<O, F, Fut>(deadline: Duration, what: &str, mut probe: F) -> O::Value
where
    O: Outcome,
    F: FnMut() -> Fut,
    Fut: Future<Output = O>,
{
    let end = Instant::now() + deadline;
    let mut pause = FIRST_PAUSE;
    loop {
        let past = Instant::now() >= end;
        match probe().await.into_outcome() {
            Ok(v) => return v,
            Err(last) if past => timed_out(what, deadline, &last),
            Err(_) => {}
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(LONGEST_PAUSE);
    }
}

/// [`eventually`] for code without a runtime (blocking between probes).
pub fn eventually_blocking<O, F>(deadline: Duration, what: &str, mut probe: F) -> O::Value
where
    O: Outcome,
    F: FnMut() -> O,
{
    let end = Instant::now() + deadline;
    let mut pause = FIRST_PAUSE;
    loop {
        let past = Instant::now() >= end;
        match probe().into_outcome() {
            Ok(v) => return v,
            Err(last) if past => timed_out(what, deadline, &last),
            Err(_) => {}
        }
        std::thread::sleep(pause);
        pause = (pause * 2).min(LONGEST_PAUSE);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn returns_the_value_once_it_holds() {
        let mut n = 0;
        let v = eventually(Duration::from_secs(5), "the third poll", || {
            n += 1;
            let n = n;
            async move { (n >= 3).then_some(n) }
        })
        .await;
        assert_eq!(v, 3);
    }

    #[tokio::test]
    #[should_panic(expected = "waiting for the impossible; last seen: still 7")]
    async fn names_what_was_awaited_on_timeout() {
        eventually(Duration::from_millis(30), "the impossible", || async {
            Err::<(), _>("still 7")
        })
        .await;
    }

    #[test]
    fn blocking_form_accepts_bool() {
        let mut n = 0;
        eventually_blocking(Duration::from_secs(5), "two polls", || {
            n += 1;
            n == 2
        });
        assert_eq!(n, 2);
    }
}
