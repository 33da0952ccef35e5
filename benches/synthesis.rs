//! Synthesis latency of the real default voice (OpenVoice engine, Piper
//! `en_US-joe-medium`, 2 intra-op threads): a short (~1 s), a medium (~10 s)
//! and a long (~60 s) text, and the time to the first chunk when streaming the
//! long one. After the criterion groups it prints the real-time factor of each
//! text and the targets: RTF <= 0.05 for the medium text, first chunk of the
//! long text in <= 150 ms.
//!
//! Run `scripts/setup.sh` first, then `cargo bench --bench synthesis`.

use criterion::{Criterion, criterion_group, criterion_main};
use std::sync::Arc;
use std::time::{Duration, Instant};
use vctts::engines::openvoice::{OpenVoiceConfig, OpenVoiceEngine};
use vctts::engines::runtime::SessionConfig;
use vctts::{Engine, SynthesisRequest};

const SHORT: &str = "Hello there, friend.";
const MEDIUM: &str = "The quick brown fox jumps over the lazy dog near the riverbank. \
Meanwhile, the farmer walks slowly toward the barn, carrying a basket of apples \
for the horses that wait patiently by the gate.";

fn long_text() -> String {
    let sentences = [
        "Once upon a time, in a small village by the sea, there lived an old fisherman and his wife.",
        "Every morning he rowed his little boat past the lighthouse and cast his nets into the cold water.",
        "Some days the nets came back heavy with silver fish, and on other days they came back empty.",
        "His wife mended the nets by the fire and sang the songs her mother had taught her long ago.",
        "One stormy evening a stranger knocked at the door, soaked to the bone and asking for shelter.",
        "They gave him bread and soup, and he told them stories of cities far beyond the mountains.",
    ];
    sentences
        .iter()
        .cycle()
        .take(15)
        .copied()
        .collect::<Vec<_>>()
        .join(" ")
}

fn engine(rt: &tokio::runtime::Runtime) -> Arc<OpenVoiceEngine> {
    let models = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("models/openvoice");
    vctts::engines::runtime::init(&Default::default()).expect("ONNX Runtime: run scripts/setup.sh");
    let config = OpenVoiceConfig {
        session: SessionConfig {
            intra_threads: 2,
            ..SessionConfig::default()
        },
        ..OpenVoiceConfig::new(models)
    };
    let e = Arc::new(OpenVoiceEngine::new(config).expect("default voice: run scripts/setup.sh"));
    rt.block_on(e.load()).expect("load");
    e
}

fn request(text: &str) -> SynthesisRequest {
    SynthesisRequest::new(text)
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let e = engine(&rt);
    let long = long_text();
    let texts = [
        ("short", SHORT.to_string()),
        ("medium", MEDIUM.to_string()),
        ("long", long.clone()),
    ];

    let mut g = c.benchmark_group("synthesize");
    g.sample_size(10)
        .measurement_time(Duration::from_secs(8))
        .warm_up_time(Duration::from_secs(1));
    for (name, text) in &texts {
        g.bench_function(*name, |b| {
            b.iter(|| rt.block_on(e.synthesize(&request(text), None)).unwrap())
        });
    }
    g.finish();

    let mut g = c.benchmark_group("stream");
    g.sample_size(10)
        .measurement_time(Duration::from_secs(5))
        .warm_up_time(Duration::from_secs(1));
    g.bench_function("first_chunk_long", |b| {
        // Time only the first chunk; after dropping the stream, wait (untimed)
        // until the engine's thread is free again so iterations do not overlap.
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                total += rt.block_on(async {
                    let t = Instant::now();
                    let mut s = e.synthesize_stream(&request(&long), None).await.unwrap();
                    s.next_chunk().await.unwrap().unwrap();
                    let took = t.elapsed();
                    drop(s);
                    e.synthesize(&request("Idle."), None).await.unwrap();
                    took
                });
            }
            total
        })
    });
    g.finish();

    println!("\nreal-time factor (synthesis time / audio time), 2 threads:");
    for (name, text) in &texts {
        let runs = 3;
        let mut best = f64::MAX;
        let mut audio_s = 0.0;
        for _ in 0..runs {
            let t = Instant::now();
            let a = rt.block_on(e.synthesize(&request(text), None)).unwrap();
            best = best.min(t.elapsed().as_secs_f64());
            audio_s = a.duration().as_secs_f64();
        }
        println!(
            "  {name:<6} {audio_s:6.1} s of audio in {best:6.3} s: RTF {:.3}",
            best / audio_s
        );
        if *name == "medium" {
            println!(
                "  target: RTF <= 0.05 for the medium text -> {}",
                verdict(best / audio_s <= 0.05)
            );
        }
    }
    let mut best = Duration::MAX;
    for _ in 0..5 {
        let t = Instant::now();
        let took = rt.block_on(async {
            let mut s = e.synthesize_stream(&request(&long), None).await.unwrap();
            s.next_chunk().await.unwrap().unwrap();
            let took = t.elapsed();
            drop(s);
            e.synthesize(&request("Idle."), None).await.unwrap();
            took
        });
        best = best.min(took);
    }
    println!(
        "  first chunk of the long text: {:.1} ms; target <= 150 ms -> {}",
        best.as_secs_f64() * 1e3,
        verdict(best <= Duration::from_millis(150))
    );
}

fn verdict(ok: bool) -> &'static str {
    if ok { "met" } else { "NOT met" }
}

criterion_group!(benches, bench);
criterion_main!(benches);
