//! GPT-SoVITS v2 speed of vctts on a full-size random-weight model folder:
//! T2S step time per token, time to the first streamed audio, and the
//! real-time factor of a whole sentence, next to Genie-TTS's figures on the
//! same weights.
//!
//! The model (24 T2S layers, full VITS; not committed) and the Genie-TTS
//! column come from
//! `python scripts/fixtures/make_gpt_sovits_bench.py OUT --threads 2 --tokens 150`,
//! which exports `OUT/model`, writes `OUT/ref.wav` and `OUT/bench.json`
//! (token count, threads, texts) and prints Genie's figures. Then:
//!
//!     VCTTS_GPT_SOVITS_BENCH=OUT cargo test --workspace --bench gpt_sovits
//!
//! The model's EOS row is zero, so every run generates exactly the token
//! count (the engine's `max_steps`). Without `VCTTS_GPT_SOVITS_BENCH` the
//! bench says so and exits.

use std::path::PathBuf;
use std::time::Instant;
use vctts::core::{Engine, ReferenceAudio, SynthesisRequest};
use vctts::engines::audio::decode::{DecodeLimits, decode_file};
use vctts::engines::gpt_sovits::model::{Graphs, ModelFiles};
use vctts::engines::gpt_sovits::profile::Voice;
use vctts::engines::gpt_sovits::t2s::{Generation, T2sParams};
use vctts::engines::gpt_sovits::{GptSovitsConfig, GptSovitsEngine, text};
use vctts::engines::runtime::{self, RuntimeConfig, SessionConfig};

fn main() {
    let Some(dir) = std::env::var_os("VCTTS_GPT_SOVITS_BENCH").map(PathBuf::from) else {
        println!(
            "VCTTS_GPT_SOVITS_BENCH not set: make the model with scripts/fixtures/make_gpt_sovits_bench.py OUT"
        );
        return;
    };
    if let Err(e) = runtime::init(&RuntimeConfig::default()) {
        eprintln!("ONNX Runtime not found (run scripts/setup.sh): {e}");
        return;
    }
    let spec: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("bench.json")).expect("bench.json")).unwrap();
    let tokens = spec["tokens"].as_u64().unwrap() as usize;
    let threads = spec["threads"].as_u64().unwrap() as usize;
    let text_en = spec["text"].as_str().unwrap().to_string();
    let transcript = spec["transcript"].as_str().unwrap().to_string();
    let session = SessionConfig {
        intra_threads: threads,
        inter_threads: 1,
        ..SessionConfig::default()
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let audio = decode_file(&dir.join("ref.wav"), &DecodeLimits::default()).expect("ref.wav");
    let reference = ReferenceAudio {
        audio,
        transcript: Some(transcript),
        language: Some("en".parse().unwrap()),
    };
    let config = |chunk: usize| GptSovitsConfig {
        session,
        max_steps: tokens,
        stream_chunk_tokens: chunk,
        ..GptSovitsConfig::new(dir.join("model"))
    };
    let mut request = SynthesisRequest::new(&text_en);
    request.language = Some("en".parse().unwrap());
    request.seed = Some(1);

    rt.block_on(async {
        let t = Instant::now();
        let engine = GptSovitsEngine::new(config(0)).expect("model folder");
        engine.load().await.expect("load");
        println!(
            "vctts  load: {:.2} s ({threads} threads)",
            t.elapsed().as_secs_f64()
        );
        let t = Instant::now();
        let profile = engine.extract_voice(&reference).await.expect("voice");
        println!(
            "vctts  voice extraction (tiny HuBERT): {:.3} s",
            t.elapsed().as_secs_f64()
        );
        let voice = Voice::decode(&profile.data).expect("profile");

        // T2S step time on the graphs directly.
        let files = ModelFiles::scan(&dir.join("model")).expect("folder");
        let mut g = Graphs::load(&files, &session).expect("graphs");
        let vocab = text::Vocab::load(&files.vocab).expect("vocab");
        let ph = text::phones(&mut g, &vocab, &text_en, vctts::engines::g2p::Lang::En).expect("phones");
        let x = g
            .encode(&voice.phones, &voice.bert, &ph.ids, &ph.bert)
            .expect("encode");
        let params = T2sParams::from_request(&Default::default(), tokens).expect("params");
        for round in 0..2 {
            let t = Instant::now();
            let mut run = Generation::start(&mut g, &x, &voice.prompt_codes, &params, 1).expect("prefill");
            let prefill = t.elapsed().as_secs_f64();
            let mut steps = Vec::new();
            let mut last = Instant::now();
            while run.next(&mut g).expect("step").is_some() {
                let now = Instant::now();
                steps.push((now - last).as_secs_f64());
                last = now;
            }
            if round == 1 {
                let mean = steps[1..].iter().sum::<f64>() / (steps.len() - 1).max(1) as f64;
                let mut sorted = steps[1..].to_vec();
                sorted.sort_by(f64::total_cmp);
                let median = sorted.get(sorted.len() / 2).copied().unwrap_or(f64::NAN);
                println!("vctts  tokens: {}  phones: {}", run.tokens.len(), ph.ids.len());
                println!(
                    "vctts  prefill (+ first sample): {:.1} ms",
                    (prefill + steps[0]) * 1000.0
                );
                println!(
                    "vctts  T2S step: median {:.2} ms/token, mean {:.2} (first {:.1}, last {:.1})",
                    median * 1000.0,
                    mean * 1000.0,
                    steps[1] * 1000.0,
                    steps[steps.len() - 1] * 1000.0
                );
            }
        }
        drop(g);

        // Whole sentence (warm-up first), then the stream.
        engine
            .synthesize(&request, Some(&profile))
            .await
            .expect("warm-up");
        let t = Instant::now();
        let whole = engine
            .synthesize(&request, Some(&profile))
            .await
            .expect("synthesize");
        let total = t.elapsed().as_secs_f64();
        // Without the 0.3 s fragment interval, as Genie's figure.
        let dur = whole.samples.len() as f64 / 32_000.0 - 0.3;
        let first = first_audio(&engine, &request, &profile).await;
        println!("vctts  audio: {dur:.2} s");
        println!("vctts  time to first audio (stream, whole sentence): {first:.3} s");
        println!("vctts  RTF {total:.2} s / {dur:.2} s = {:.3}", total / dur);
        drop(engine);

        let engine = GptSovitsEngine::new(config(25)).expect("model folder");
        engine.load().await.expect("load");
        engine
            .synthesize(&request, Some(&profile))
            .await
            .expect("warm-up");
        let first = first_audio(&engine, &request, &profile).await;
        println!("vctts  time to first audio (stream, opt-in 25-token chunks): {first:.3} s");
    });
}

async fn first_audio(
    engine: &GptSovitsEngine,
    request: &SynthesisRequest,
    profile: &vctts::core::VoiceProfile,
) -> f64 {
    let t = Instant::now();
    let mut stream = engine
        .synthesize_stream(request, Some(profile))
        .await
        .expect("stream");
    let mut first = None;
    while let Some(chunk) = stream.next_chunk().await {
        chunk.expect("chunk");
        first.get_or_insert(t.elapsed().as_secs_f64());
    }
    first.unwrap_or(f64::NAN)
}
