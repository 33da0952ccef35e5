//! Throughput of split-volume model packages: packing (gzip and zstd) and
//! restoring a generated model of about 300 MiB, as MiB/s of model bytes
//! (criterion `Throughput::Bytes`), and the peak resident memory of one pack
//! and one restore of each kind.
//!
//! The model is "sparse-ish": 64 KiB blocks of pseudo-random bytes alternate
//! with runs of zeros, so compression has work to do and the stream is still
//! large. Peak RSS is the kernel's high-water mark (`VmHWM` in
//! `/proc/self/status`), reset before each measured run through
//! `/proc/self/clear_refs`; it includes the benchmark process itself, so it
//! is an upper bound for the package code. The target is under 64 MiB for
//! any model size (packing and restoring stream through fixed buffers).
//!
//! Run: `cargo bench --bench package`; `VCTTS_BENCH_MB=64` makes a smaller
//! model, `-- --quick` a shorter run.

use criterion::{Criterion, Throughput};
use rand::{RngCore, SeedableRng};
use std::fs::{self, File};
use std::io::{BufWriter, Write};
use std::path::Path;
use std::time::{Duration, Instant};
use vctts::core::package::{self, Compression, PackOptions, RestoreOptions};

/// The RSS target for packing and restoring.
const RSS_LIMIT_MIB: f64 = 64.0;

/// Writes a model folder of about `mib` MiB: one large graph, a few smaller
/// ones and configs. Returns the bytes written.
fn make_model(dir: &Path, mib: u64) -> u64 {
    fs::create_dir_all(dir.join("converter")).unwrap();
    let mut rng = rand::rngs::StdRng::seed_from_u64(0x5EED);
    let mut block = vec![0u8; 64 << 10];
    let zeros = vec![0u8; 64 << 10];
    let mut written = 0;
    let big = mib * 3 / 4;
    let files = [
        ("gpt_model.onnx", big),
        ("converter/tone_clone_model.onnx", (mib - big) / 2),
        (
            "converter/tone_color_extract_model.onnx",
            mib - big - (mib - big) / 2,
        ),
    ];
    for (name, size_mib) in files {
        let mut out = BufWriter::with_capacity(1 << 20, File::create(dir.join(name)).unwrap());
        for i in 0..size_mib * 16 {
            if i % 3 == 2 {
                out.write_all(&zeros).unwrap();
            } else {
                rng.fill_bytes(&mut block);
                out.write_all(&block).unwrap();
            }
            written += block.len() as u64;
        }
        out.flush().unwrap();
    }
    fs::write(dir.join("metadata.json"), br#"{"sample_rate":24000}"#).unwrap();
    written
}

/// Resets the peak-RSS counter; false where the kernel does not allow it.
fn reset_peak_rss() -> bool {
    fs::write("/proc/self/clear_refs", "5").is_ok()
}

/// The peak resident set size in MiB, if the platform reports it.
fn peak_rss_mib() -> Option<f64> {
    let status = fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

fn report_rss(what: &str, run: impl FnOnce()) {
    let reset = reset_peak_rss();
    run();
    match peak_rss_mib() {
        Some(mib) => {
            let note = if !reset {
                " (peak since process start; could not reset)"
            } else {
                ""
            };
            let verdict = if mib <= RSS_LIMIT_MIB {
                "ok"
            } else {
                "OVER THE LIMIT"
            };
            println!("peak RSS {what}: {mib:.1} MiB{note} — {verdict} (limit {RSS_LIMIT_MIB} MiB)");
        }
        None => println!("peak RSS {what}: not available on this platform"),
    }
}

fn pack_opts(out: &Path, compression: Compression) -> PackOptions {
    PackOptions {
        compression,
        overwrite: true,
        ..PackOptions::new(out)
    }
}

fn benches(c: &mut Criterion) {
    let mib: u64 = std::env::var("VCTTS_BENCH_MB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(300);
    let tmp = tempfile::tempdir().unwrap();
    let model = tmp.path().join("xtts_v2");
    let bytes = make_model(&model, mib);
    let restore_opts = RestoreOptions {
        replace: true,
        ..RestoreOptions::default()
    };

    for compression in [Compression::Gzip, Compression::Zstd] {
        let pkg = tmp.path().join(format!("pkg-{compression}"));
        let dest = tmp.path().join(format!("restored-{compression}"));
        report_rss(&format!("packing {mib} MiB ({compression})"), || {
            package::pack(&model, &pack_opts(&pkg, compression)).unwrap();
        });
        report_rss(&format!("restoring {mib} MiB ({compression})"), || {
            package::restore(&pkg, &dest, &restore_opts).unwrap();
        });
        let total = package::verify(&pkg).unwrap().total_size;
        println!(
            "{compression}: {} MiB of model in {} MiB of parts",
            bytes >> 20,
            total >> 20
        );

        let mut group = c.benchmark_group(format!("package_{compression}"));
        group.throughput(Throughput::Bytes(bytes));
        group.sample_size(10);
        group.measurement_time(Duration::from_secs(30));
        group.warm_up_time(Duration::from_secs(1));
        group.bench_function("pack", |b| {
            b.iter_custom(|iters| {
                let mut spent = Duration::ZERO;
                for _ in 0..iters {
                    let start = Instant::now();
                    package::pack(&model, &pack_opts(&pkg, compression)).unwrap();
                    spent += start.elapsed();
                }
                spent
            })
        });
        group.bench_function("restore", |b| {
            b.iter_custom(|iters| {
                let mut spent = Duration::ZERO;
                for _ in 0..iters {
                    let start = Instant::now();
                    package::restore(&pkg, &dest, &restore_opts).unwrap();
                    spent += start.elapsed();
                }
                spent
            })
        });
        group.finish();
        fs::remove_dir_all(&pkg).unwrap();
        fs::remove_dir_all(&dest).unwrap();
    }
}

fn main() {
    let mut c = Criterion::default().configure_from_args();
    benches(&mut c);
    c.final_summary();
}
