//! Embedding vctts: clone a voice from a reference clip and speak with it.
//!
//! `cargo run --example embed_synth -- reference.wav out.wav` (after
//! `scripts/setup.sh`; cloning needs the OpenVoice converter installed:
//! `vctts models fetch openvoice-converter`). The models and data folders
//! are `models` and `data`, or `VCTTS_MODELS` and `VCTTS_DATA`.

use vctts::{CloneVoice, OutputFormat, Speech, Tts};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let (reference, out) = (
        args.next().ok_or("usage: embed_synth REF.wav [OUT.wav]")?,
        args.next(),
    );
    let folder = |var, default: &str| std::env::var(var).unwrap_or_else(|_| default.to_string());
    let tts = Tts::builder(folder("VCTTS_MODELS", "models"), folder("VCTTS_DATA", "data"))
        .build()
        .await?;
    let reference = tts.read_reference(reference.as_ref()).await?;
    let voice = tts
        .clone_voice(CloneVoice::new("embedded", reference)?.replace(true))
        .await?;
    let speech = Speech::new("Hello from an embedded vctts.").voice(&voice.voice.id);
    let wav = tts.speak_as(&speech, OutputFormat::Wav).await?;
    std::fs::write(out.as_deref().unwrap_or("embed_synth.wav"), &wav.bytes)?;
    println!("{:.2} s at {} Hz", wav.duration.as_secs_f32(), wav.sample_rate);
    Ok(())
}
