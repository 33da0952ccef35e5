//! The cost bound of one request: how much audio a text may produce.
//!
//! The gateway estimates the speech length of a request from its text as the
//! engines read it (numbers, dates and symbols expanded by the front end's
//! normaliser, so `"1234567890" * 500` counts as the thousands of words it
//! becomes) and refuses a request whose estimate exceeds
//! `limits.max_output_duration` with `413 output_too_long`; the items of a
//! batch share one budget. What a node may send back is capped by the same
//! bound ([`answer_cap_bytes`]): a node cannot make the gateway hold or relay
//! more than the request can legitimately produce.
//!
//! The same text sets a request's progress deadline for stall detection
//! ([`stall_deadline`]): `cluster.stall_timeout` plus `cluster.stall_per_char`
//! for every character (of the whole text for a whole answer, of at most one
//! sentence between the chunks of a stream).
//!
//! Invariants: the refusal estimate uses a fast speaking rate, so text that
//! would fit is not refused for being read slowly; the answer cap uses a slow
//! rate, the highest sample rate and 4 bytes per sample, and never exceeds
//! what `max_output_duration` allows; text without any speakable character
//! is refused as `empty_text` before a node is involved.

use std::time::Duration;
use vctts_core::{Error, Result, SynthesisRequest};

/// Characters per second of a fast reader of alphabetic scripts (spaces and
/// punctuation included).
pub const FAST_CHARS_PER_SEC: f64 = 18.0;
/// Characters per second of a fast reader of Chinese, Japanese or Korean.
pub const FAST_CJK_PER_SEC: f64 = 7.0;
/// A slow reader, for the answer cap.
pub const SLOW_CHARS_PER_SEC: f64 = 4.0;
/// A slow reader of CJK scripts, for the answer cap.
pub const SLOW_CJK_PER_SEC: f64 = 1.5;
/// The shortest answer cap in seconds (short texts with long pauses).
pub const MIN_CAP_SECONDS: f64 = 60.0;
/// The highest sample rate an engine produces.
pub const MAX_SAMPLE_RATE: u64 = 48_000;
/// Bytes per sample at most (32-bit float WAV).
pub const MAX_BYTES_PER_SAMPLE: u64 = 4;
/// Room for container headers and metadata.
pub const CONTAINER_SLACK: u64 = 64 << 10;

fn is_cjk(c: char) -> bool {
    matches!(c as u32,
        0x3040..=0x30FF       // kana
        | 0x3400..=0x4DBF     // CJK extension A
        | 0x4E00..=0x9FFF     // CJK unified
        | 0xAC00..=0xD7AF     // Hangul syllables
        | 0xF900..=0xFAFF     // CJK compatibility
        | 0x20000..=0x2FFFF)
}

/// The text as an engine would read it (the shared normaliser).
fn spoken(text: &str, language: Option<&str>) -> String {
    let lang = language.unwrap_or_else(|| if text.chars().any(is_cjk) { "zh" } else { "en" });
    vctts_engines::text::normalize(text, lang)
}

/// Whether `text` has anything to say: a letter or digit of any script.
pub fn has_speech(text: &str) -> bool {
    text.chars().any(char::is_alphanumeric)
}

fn counts(text: &str, language: Option<&str>) -> (f64, f64) {
    let s = spoken(text, language);
    let cjk = s.chars().filter(|c| is_cjk(*c)).count() as f64;
    let other = s.chars().count() as f64 - cjk;
    (other, cjk)
}

fn speed_of(req: &SynthesisRequest) -> f64 {
    let s = req.speed as f64;
    if s.is_finite() && s > 0.0 {
        s.clamp(0.25, 4.0)
    } else {
        1.0
    }
}

/// Seconds of speech a fast reader needs for the request's text (the
/// estimate requests are refused by).
pub fn estimate_seconds(req: &SynthesisRequest) -> f64 {
    let (other, cjk) = counts(&req.text, req.language.as_ref().map(|l| l.as_str()));
    (other / FAST_CHARS_PER_SEC + cjk / FAST_CJK_PER_SEC) / speed_of(req)
}

/// Refuses a request whose estimate (plus `already` seconds of a batch)
/// exceeds `max`, or that has nothing to say.
///
/// # Errors
/// [`Error::EmptyText`], [`Error::OutputTooLong`].
pub fn check(req: &SynthesisRequest, already: f64, max: Duration) -> Result<f64> {
    if !has_speech(&req.text) {
        return Err(Error::EmptyText);
    }
    let secs = estimate_seconds(req);
    let total = already + secs;
    if total > max.as_secs_f64() {
        return Err(output_too_long(total, max));
    }
    Ok(secs)
}

/// The error of a request (or batch) that would speak longer than `max`.
pub fn output_too_long(seconds: f64, max: Duration) -> Error {
    Error::OutputTooLong {
        seconds: seconds.ceil() as u64,
        limit: max.as_secs(),
    }
}

/// Seconds of audio a node may legitimately send for the request: a slow
/// reading of its text, at least [`MIN_CAP_SECONDS`], at most `max`.
pub fn answer_cap_seconds(req: &SynthesisRequest, max: Duration) -> f64 {
    let (other, cjk) = counts(&req.text, req.language.as_ref().map(|l| l.as_str()));
    let slow = (other / SLOW_CHARS_PER_SEC + cjk / SLOW_CJK_PER_SEC) / speed_of(req);
    slow.max(MIN_CAP_SECONDS).min(max.as_secs_f64())
}

/// Bytes a node may legitimately send for the request (any format).
pub fn answer_cap_bytes(req: &SynthesisRequest, max: Duration) -> u64 {
    let secs = answer_cap_seconds(req, max);
    (secs * (MAX_SAMPLE_RATE * MAX_BYTES_PER_SAMPLE) as f64) as u64 + CONTAINER_SLACK
}

/// The progress deadline of a node call for `chars` characters of text:
/// `floor` plus `per_char` for each.
pub fn stall_deadline(chars: usize, floor: Duration, per_char: Duration) -> Duration {
    let chars = u32::try_from(chars).unwrap_or(u32::MAX);
    floor.saturating_add(per_char.saturating_mul(chars))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(text: &str) -> SynthesisRequest {
        SynthesisRequest::new(text)
    }

    const TEN_MIN: Duration = Duration::from_secs(600);

    #[test]
    fn long_digit_runs_are_refused_by_their_spoken_length() {
        let digits = "1234567890".repeat(500);
        // Written length 5,000 characters, read digit by digit: far over 10 min.
        let e = check(&req(&digits), 0.0, TEN_MIN).unwrap_err();
        assert_eq!((e.code(), e.http_status()), ("output_too_long", 413));
        assert!(estimate_seconds(&req(&digits)) > 1200.0);
    }

    #[test]
    fn ordinary_text_fits() {
        let prose = "The quick brown fox jumps over the lazy dog. ".repeat(110);
        assert!(prose.len() < 5000);
        let secs = check(&req(&prose), 0.0, TEN_MIN).unwrap();
        assert!(secs > 100.0 && secs < 600.0, "{secs}");
        assert!(check(&req("Hello there."), 0.0, TEN_MIN).unwrap() < 2.0);
        // Chinese counts per character.
        let zh = "今天天气很好。".repeat(100);
        let s = check(&req(&zh), 0.0, TEN_MIN).unwrap();
        assert!(s > 60.0 && s < 600.0, "{s}");
    }

    #[test]
    fn a_batch_shares_one_budget() {
        let prose = "The quick brown fox jumps over the lazy dog. ".repeat(100);
        let one = check(&req(&prose), 0.0, TEN_MIN).unwrap();
        let e = check(&req(&prose), 600.0 - one / 2.0, TEN_MIN).unwrap_err();
        assert_eq!(e.code(), "output_too_long");
    }

    #[test]
    fn the_stall_deadline_grows_with_the_text() {
        let floor = Duration::from_secs(30);
        let per = Duration::from_millis(200);
        assert_eq!(stall_deadline(0, floor, per), floor);
        assert_eq!(stall_deadline(100, floor, per), Duration::from_secs(50));
        assert_eq!(stall_deadline(5000, floor, per), Duration::from_secs(1030));
        assert_eq!(stall_deadline(usize::MAX, Duration::MAX, per), Duration::MAX);
    }

    #[test]
    fn punctuation_only_is_empty() {
        for t in ["...", "?!", " - , ; ", "。！"] {
            assert_eq!(
                check(&req(t), 0.0, TEN_MIN).unwrap_err().code(),
                "empty_text",
                "{t:?}"
            );
        }
    }

    #[test]
    fn slow_speed_costs_more_and_the_cap_is_bounded() {
        let mut r = req(&"Words and more words. ".repeat(40));
        let normal = estimate_seconds(&r);
        r.speed = 0.5;
        assert!((estimate_seconds(&r) - 2.0 * normal).abs() < 1e-6);
        r.speed = f32::NAN;
        assert!((estimate_seconds(&r) - normal).abs() < 1e-6);
        assert_eq!(answer_cap_seconds(&req("Hi."), TEN_MIN), MIN_CAP_SECONDS);
        assert_eq!(
            answer_cap_seconds(&req(&"1234567890".repeat(500)), TEN_MIN),
            600.0
        );
        assert_eq!(
            answer_cap_bytes(&req("Hi."), TEN_MIN),
            60 * 48_000 * 4 + CONTAINER_SLACK
        );
    }
}
