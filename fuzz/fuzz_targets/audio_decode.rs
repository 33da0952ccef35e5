//! Reference clip decoding (`vctts_engines::audio::decode`) on arbitrary
//! bytes: WAV (hound), MP3, FLAC, OGG (symphonia), with or without a
//! (possibly wrong) hint. Any result is fine; a panic that escapes `decode`
//! is a crash.
//!
//! `decode` turns a panic inside a third-party decoder into
//! `audio_decode_failed` on purpose, so this target installs a panic hook that
//! does not abort (libfuzzer-sys's hook would abort even on a caught panic);
//! a panic that `decode` lets out still reaches libfuzzer-sys's own
//! `catch_unwind`, which aborts, and the input is kept as a crash.
#![no_main]

use libfuzzer_sys::fuzz_target;
use vctts_engines::audio::decode::{DecodeLimits, decode};

const HINTS: [Option<&str>; 8] = [
    None,
    Some("wav"),
    Some("mp3"),
    Some("flac"),
    Some("ogg"),
    Some("audio/mpeg"),
    Some(".WAV"),
    Some("x"),
];

fuzz_target!(
    init: {
        std::panic::set_hook(Box::new(|info| {
            use std::sync::atomic::{AtomicUsize, Ordering};
            static SHOWN: AtomicUsize = AtomicUsize::new(0);
            if SHOWN.fetch_add(1, Ordering::Relaxed) < 3 {
                // Not the default "panicked at" wording: scripts/fuzz.sh looks
                // for that one, and a panic caught by `decode` is no crash.
                let at = info.location().map(|l| l.to_string()).unwrap_or_default();
                eprintln!("decoder panic at {at} (caught by decode unless the run aborts)");
            }
        }));
    },
    |data: &[u8]| {
        let Some((&sel, bytes)) = data.split_first() else {
            return;
        };
        let limits = DecodeLimits {
            max_seconds: 30.0,
            max_channels: 2,
            max_bytes: 1 << 20,
        };
        if let Ok(audio) = decode(bytes, HINTS[sel as usize % HINTS.len()], &limits) {
            assert!(!audio.samples.is_empty());
            assert!(audio.sample_rate > 0);
            assert!(audio.samples.len() as f64 <= 30.0 * audio.sample_rate as f64 + 1.0);
        }
    }
);
