//! The progress bar of a long `vctts synth`, with an ETA.
//!
//! Engines stream audio sentence by sentence (or token window by token
//! window), so the work left is not known exactly. The bar counts seconds of
//! audio made against an estimate of the whole clip from the text (speaking
//! rate × length), and the estimate grows when the audio outruns it, so the
//! bar never sits at 100 % while work goes on. The ETA is indicatif's, from
//! the rate at which audio is being made.
//!
//! Invariant: it draws only on a terminal (stderr), never with `--quiet`,
//! and only for texts long enough to take a while; otherwise it is inert.

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::IsTerminal;

/// Characters per second of speech at speed 1: about 15 for English read
/// aloud; the estimate only scales the bar.
const CHARS_PER_SECOND: f32 = 15.0;
/// Shorter texts finish before a bar would help.
const MIN_CHARS: usize = 200;
/// The bar counts milliseconds of audio.
const MS: f32 = 1000.0;

/// A progress bar over seconds of audio made.
pub struct Progress {
    bar: Option<ProgressBar>,
    estimate_ms: u64,
}

/// The estimated length of the spoken text, in milliseconds.
pub fn estimate_ms(chars: usize, speed: f32) -> u64 {
    let speed = if speed.is_finite() && speed > 0.0 {
        speed
    } else {
        1.0
    };
    (chars as f32 / CHARS_PER_SECOND / speed * MS).max(1.0) as u64
}

/// The bar's length after `made_ms` of audio against `estimate_ms`: the
/// estimate, or a tenth more than what is made once that outruns it.
pub fn grown_length(estimate_ms: u64, made_ms: u64) -> u64 {
    if made_ms < estimate_ms {
        estimate_ms
    } else {
        made_ms + made_ms / 10 + 1
    }
}

impl Progress {
    /// A bar for `text`, drawn only when `show` and stderr is a terminal.
    pub fn new(text: &str, speed: f32, show: bool) -> Self {
        let chars = text.chars().count();
        let estimate_ms = estimate_ms(chars, speed);
        if !show || chars < MIN_CHARS || !std::io::stderr().is_terminal() {
            return Self {
                bar: None,
                estimate_ms,
            };
        }
        let bar = ProgressBar::with_draw_target(Some(estimate_ms), ProgressDrawTarget::stderr());
        let style =
            ProgressStyle::with_template("{spinner} [{bar:30}] {msg} of ≈{len_secs} s audio, ETA {eta}")
                .map(|s| {
                    s.with_key(
                        "len_secs",
                        |state: &indicatif::ProgressState, w: &mut dyn std::fmt::Write| {
                            let _ = write!(w, "{:.0}", state.len().unwrap_or(0) as f32 / MS);
                        },
                    )
                    .progress_chars("=> ")
                })
                .unwrap_or_else(|_| ProgressStyle::default_bar());
        bar.set_style(style);
        bar.set_message("0.0 s");
        Self {
            bar: Some(bar),
            estimate_ms,
        }
    }

    /// Records that `seconds` of audio exist so far.
    pub fn made(&self, seconds: f32) {
        if let Some(bar) = &self.bar {
            let made = (seconds * MS) as u64;
            bar.set_length(grown_length(self.estimate_ms, made));
            bar.set_position(made);
            bar.set_message(format!("{seconds:.1} s"));
        }
    }

    /// Removes the bar (before the final message is printed).
    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_estimate_follows_length_and_speed() {
        assert_eq!(estimate_ms(150, 1.0), 10_000);
        assert_eq!(estimate_ms(150, 2.0), 5_000);
        assert_eq!(estimate_ms(150, f32::NAN), 10_000);
        assert_eq!(estimate_ms(0, 1.0), 1);
    }

    #[test]
    fn the_bar_grows_when_audio_outruns_the_estimate() {
        assert_eq!(grown_length(10_000, 4_000), 10_000);
        assert_eq!(grown_length(10_000, 10_000), 11_001);
        assert!(grown_length(10_000, 20_000) > 20_000);
    }

    #[test]
    fn off_a_terminal_it_draws_nothing() {
        // Test runs have no terminal on stderr (cargo captures it).
        let p = Progress::new(&"word ".repeat(100), 1.0, true);
        assert!(p.bar.is_none() || std::io::stderr().is_terminal());
        p.made(1.0);
        p.finish();
    }
}
