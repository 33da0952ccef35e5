//! XTTS-v2 speed of vctts on a model folder: GPT step time per token, time to
//! the first streamed audio, and the real-time factor of a whole sentence.
//!
//! The full-size random-weight model (30 layers x 1024, not committed) and
//! the Coqui PyTorch column come from
//! `python scripts/fixtures/make_xtts_parity.py --alsa DIR --full-size OUT`,
//! which builds the model, exports it to `OUT/model`, writes `OUT/ref.wav`
//! and measures Coqui on the same weights and threads (`OUT/coqui.json`).
//! Then the bench prints both columns side by side (a warning when the
//! threads or token counts of the two runs differ):
//!
//!     VCTTS_XTTS_BENCH=OUT cargo bench --bench xtts
//!
//! Without `VCTTS_XTTS_BENCH` it runs on the tiny fixture model (the figures
//! then only show that the bench works). Threads: `VCTTS_BENCH_THREADS`
//! (default 2), tokens per run: `VCTTS_BENCH_TOKENS` (default 100).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;
use vctts::engines::audio::decode::{DecodeLimits, decode_file};
use vctts::engines::runtime::{self, RuntimeConfig, SessionConfig};
use vctts::engines::xtts::model::Assets;
use vctts::engines::xtts::pipeline::{ConditioningConfig, GenOptions, Xtts};

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let (model, reference) = match std::env::var_os("VCTTS_XTTS_BENCH") {
        Some(dir) => {
            let dir = PathBuf::from(dir);
            (dir.join("model"), dir.join("ref.wav"))
        }
        None => {
            let fx = root.join("vctts-engines/tests/fixtures/xtts");
            println!("VCTTS_XTTS_BENCH not set: using the tiny fixture model");
            (fx.join("model"), fx.join("ref_a.wav"))
        }
    };
    let threads = env_usize("VCTTS_BENCH_THREADS", 2);
    let tokens = env_usize("VCTTS_BENCH_TOKENS", 100);
    if let Err(e) = runtime::init(&RuntimeConfig::default()) {
        eprintln!("ONNX Runtime not found (run scripts/setup.sh): {e}");
        return;
    }
    let session = SessionConfig {
        intra_threads: threads,
        ..SessionConfig::default()
    };
    let t = Instant::now();
    let assets = Arc::new(Assets::load_probed(&model, &session).expect("model folder"));
    let mut x = Xtts::new(assets, &session).expect("sessions");
    println!("load: {:.2} s ({} threads)", t.elapsed().as_secs_f64(), threads);
    let audio = decode_file(&reference, &DecodeLimits::default()).expect("reference");
    let t = Instant::now();
    let voice = x.voice(&[audio], &ConditioningConfig::default()).expect("voice");
    let extraction_s = t.elapsed().as_secs_f64();
    println!("voice extraction: {extraction_s:.3} s");

    let text = "Hello world, this is a test of the speed of the engine.";
    let ids = x.tokenize(text, "en").expect("tokens");
    let mut opts = GenOptions::shipped(0);
    opts.sampling.top_k = Some(1);
    opts.max_tokens = Some(tokens);
    // Warm-up, then the timed runs.
    x.generate(&voice, &ids, &opts, &mut |_| true).expect("generate");
    let mut steps = Vec::new();
    let mut last = Instant::now();
    let t = Instant::now();
    let g = x
        .generate(&voice, &ids, &opts, &mut |_| {
            let now = Instant::now();
            steps.push(now - last);
            last = now;
            true
        })
        .expect("generate");
    let gen_s = t.elapsed().as_secs_f64();
    // steps[0] is the prefill.
    let prefill = steps.first().map_or(0.0, |d| d.as_secs_f64());
    let step_ms = if steps.len() > 1 {
        steps[1..].iter().map(|d| d.as_secs_f64()).sum::<f64>() / (steps.len() - 1) as f64 * 1000.0
    } else {
        0.0
    };
    let t = Instant::now();
    let wav = x.vocode(&g.latents, &voice.speaker, 1.0).expect("vocode");
    let voc_s = t.elapsed().as_secs_f64();
    let dur = wav.len() as f64 / x.sample_rate() as f64;
    let t = Instant::now();
    let mut first: Option<f64> = None;
    x.stream_sentence(&voice, text, "en", &opts, 20, &mut |_, _| {
        first.get_or_insert(t.elapsed().as_secs_f64());
        true
    })
    .expect("stream");
    println!("codes: {}  audio: {:.2} s", g.codes.len(), dur);
    let ours = Figures {
        voice_extraction_s: extraction_s,
        prefill_ms: prefill * 1000.0,
        step_ms,
        first_audio_s: first.unwrap_or(f64::NAN),
        rtf: (gen_s + voc_s) / dur.max(1e-9),
    };
    let coqui = std::env::var_os("VCTTS_XTTS_BENCH")
        .map(|d| PathBuf::from(d).join("coqui.json"))
        .and_then(|p| std::fs::read_to_string(p).ok())
        .and_then(|s| serde_json::from_str::<serde_json::Value>(&s).ok());
    if let Some(c) = &coqui {
        if c["threads"].as_u64() != Some(threads as u64) || c["tokens"].as_u64() != Some(tokens as u64) {
            println!(
                "WARNING: coqui.json was measured with {} threads and {} tokens, this run {threads} and {tokens}",
                c["threads"], c["tokens"]
            );
        }
    }
    let col = |key: &str| coqui.as_ref().and_then(|c| c[key].as_f64());
    let fmt = |v: Option<f64>, unit: &str, digits: usize| match v {
        Some(v) => format!("{v:.digits$} {unit}"),
        None => "(no coqui.json)".to_string(),
    };
    println!(
        "\n{:<44} {:>16} {:>20}",
        format!("XTTS-v2, {threads} threads, {tokens} tokens"),
        "vctts (ORT)",
        "coqui-tts (PyTorch)"
    );
    let rows: [(&str, f64, Option<f64>, &str, usize); 5] = [
        (
            "voice extraction",
            ours.voice_extraction_s,
            col("voice_extraction_s"),
            "s",
            3,
        ),
        (
            "GPT prefill (coqui: + first token)",
            ours.prefill_ms,
            col("prefill_ms"),
            "ms",
            1,
        ),
        ("GPT step per token", ours.step_ms, col("step_ms"), "ms", 2),
        (
            "time to first audio (stream, 20 tokens)",
            ours.first_audio_s,
            col("first_audio_s"),
            "s",
            3,
        ),
        ("real-time factor (whole sentence)", ours.rtf, col("rtf"), "", 3),
    ];
    for (name, v, c, unit, digits) in rows {
        println!(
            "{name:<44} {:>16} {:>20}",
            fmt(Some(v), unit, digits),
            fmt(c, unit, digits)
        );
    }
}

/// The figures of one implementation.
struct Figures {
    voice_extraction_s: f64,
    prefill_ms: f64,
    step_ms: f64,
    first_audio_s: f64,
    rtf: f64,
}
