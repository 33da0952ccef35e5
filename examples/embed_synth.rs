//! Embedding vctts: speak a sentence with the default voice into a WAV file.
//!
//! `cargo run --example embed_synth -- out.wav` (after `scripts/setup.sh`).

use vctts::engines::{audio::encode::wav_i16, catalog};
use vctts::{EngineKind, SynthesisRequest};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let out = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "embed_synth.wav".into());
    let engine = catalog::build(EngineKind::OpenVoice, "models".as_ref(), &Default::default())?;
    engine.load().await?;
    let audio = engine
        .synthesize(&SynthesisRequest::new("Hello from an embedded vctts."), None)
        .await?;
    std::fs::write(&out, wav_i16(&audio))?;
    println!(
        "{out}: {:.2} s at {} Hz",
        audio.duration().as_secs_f32(),
        audio.sample_rate
    );
    Ok(())
}
