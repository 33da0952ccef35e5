//! Text front end shared by the engines: what happens to text before a model sees it.
//!
//! - [`split`]: sentences (UAX #29 plus Chinese terminators), each within an
//!   engine's character limit, with a hard fallback for unpunctuated text;
//! - [`normalize`]: numbers, dates, times, currency and symbols written out as
//!   spoken (English and Chinese; whitespace cleanup for everything else);
//! - [`phonemize`]: IPA phonemes from espeak-ng as a subprocess, in Piper's
//!   convention (punctuation kept in place);
//! - [`espeak_pool`]: long-lived espeak-ng processes fed one clause per line
//!   (sentinel-framed), reused across requests, replaced when they die or hang.
//!
//! Invariants: nothing here panics on user text; splitting and normalisation
//! are pure functions; only [`phonemize`] and [`espeak_pool`] do I/O (they talk to child processes,
//! so call it from the engine's own threads, never on an async runtime).

pub mod espeak_pool;
pub mod normalize;
pub mod phonemize;
pub mod split;

pub use normalize::normalize;
pub use phonemize::Espeak;
pub use split::split_sentences;

#[cfg(test)]
mod proptests;
