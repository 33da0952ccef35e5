//! In-process synthesis time of vctts through the embedding API, for
//! `scripts/bench.sh` (its counterpart is `scripts/bench/piper_inproc.py`,
//! piper-tts's `PiperVoice.synthesize`).
//!
//! Builds a [`Tts`] with only the default engine (OpenVoice, the Piper
//! voice) and the library's default lanes (one per core: a sentence alone
//! decodes on every thread, two sentences side by side on one each), loads
//! it, speaks the text once to warm up, then times `RUNS` more
//! [`Tts::speak`] calls (text to whole audio in memory, no encoding) and
//! prints one JSON line: `{"audio_s": seconds of audio of one call,
//! "synth_s": [seconds per call], "rtf": total time / total audio,
//! "threads": the threads asked for}`.
//!
//! ```text
//! cargo build --release --workspace --example bench_inproc
//! target/release/examples/bench_inproc TEXT_FILE THREADS RUNS [MODELS [DATA]]
//! ```
//! MODELS defaults to `models`, DATA (an empty voice store is created there)
//! to `.bench/data`. Needs `scripts/setup.sh` (the default voice).

use std::time::Instant;
use vctts::{EngineKind, Speech, Tts};

fn usage() -> String {
    "usage: bench_inproc TEXT_FILE THREADS RUNS [MODELS [DATA]]".into()
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if !(3..=5).contains(&args.len()) {
        return Err(usage().into());
    }
    let text = std::fs::read_to_string(&args[0])
        .map_err(|e| format!("reading {}: {e}", args[0]))?
        .trim()
        .to_string();
    let threads: usize = args[1].parse().map_err(|_| usage())?;
    let runs: usize = args[2].parse().map_err(|_| usage())?;
    if threads == 0 || runs == 0 {
        return Err("THREADS and RUNS must be at least 1".into());
    }
    let models = args.get(3).map(String::as_str).unwrap_or("models");
    let data = args.get(4).map(String::as_str).unwrap_or(".bench/data");

    let tts = Tts::builder(models, data)
        .engines([EngineKind::OpenVoice])
        .threads(threads)
        .preload(true)
        .build()
        .await?;
    let speech = Speech::new(text);
    tts.speak(&speech).await?; // warm-up

    let mut times = Vec::with_capacity(runs);
    let mut audio_s = 0.0;
    for _ in 0..runs {
        let start = Instant::now();
        let audio = tts.speak(&speech).await?;
        times.push(start.elapsed().as_secs_f64());
        audio_s = audio.duration().as_secs_f64();
    }
    if audio_s <= 0.0 {
        return Err("the engine returned no audio".into());
    }
    let total: f64 = times.iter().sum();
    println!(
        "{}",
        serde_json::json!({
            "audio_s": audio_s,
            "synth_s": times,
            "rtf": total / (audio_s * runs as f64),
            "threads": threads,
        })
    );
    Ok(())
}
