//! Decoding: every supported format of the fixture clip, WAV sample
//! formats, and each kind of bad input.

use std::io::Cursor;

use vctts_core::{Audio, Error};
use vctts_engines::audio::{DecodeLimits, decode, decode_file, wav_i16};

use crate::common::fixture;

fn bytes(name: &str) -> Vec<u8> {
    std::fs::read(fixture(name)).unwrap_or_else(|e| panic!("reading {name}: {e}"))
}

fn reference() -> Audio {
    decode(&bytes("clip.wav"), Some("wav"), &DecodeLimits::default()).unwrap()
}

/// Best normalised correlation of `b` against `a` over lags in `-max..=max`,
/// and the lag.
fn best_alignment(a: &[f32], b: &[f32], max: isize) -> (f64, isize) {
    let mut best = (f64::MIN, 0);
    for lag in -max..=max {
        let (mut ab, mut aa, mut bb) = (0.0f64, 0.0f64, 0.0f64);
        for (i, &x) in a.iter().enumerate() {
            let j = i as isize + lag;
            if j < 0 || j as usize >= b.len() {
                continue;
            }
            let y = b[j as usize] as f64;
            ab += x as f64 * y;
            aa += (x as f64).powi(2);
            bb += y * y;
        }
        let c = ab / (aa.sqrt() * bb.sqrt()).max(1e-12);
        if c > best.0 {
            best = (c, lag);
        }
    }
    best
}

fn energy(x: &[f32]) -> f64 {
    x.iter().map(|&v| (v as f64).powi(2)).sum()
}

#[test]
fn wav_fixture_is_the_espeak_clip() {
    let a = reference();
    assert_eq!(a.sample_rate, 22050);
    assert_eq!(a.samples.len(), 26460);
    assert!(a.peak() > 0.5 && a.peak() <= 1.0);
}

#[test]
fn flac_decodes_to_the_same_samples() {
    let want = reference();
    let got = decode(&bytes("clip.flac"), Some("flac"), &DecodeLimits::default()).unwrap();
    assert_eq!(got.sample_rate, want.sample_rate);
    assert_eq!(got.samples.len(), want.samples.len());
    for (a, b) in got.samples.iter().zip(&want.samples) {
        assert!((a - b).abs() <= 1.0 / 32768.0, "{a} vs {b}");
    }
}

#[test]
fn lossy_formats_match_after_alignment() {
    let want = reference();
    for (name, hint) in [("clip.mp3", "mp3"), ("clip.ogg", "audio/ogg")] {
        let got = decode(&bytes(name), Some(hint), &DecodeLimits::default()).unwrap();
        assert_eq!(got.sample_rate, 22050, "{name}");
        // Encoder delay and padding: allow up to 3000 samples either way.
        assert!(
            (got.samples.len() as isize - want.samples.len() as isize).abs() < 3000,
            "{name}: {} samples",
            got.samples.len()
        );
        let (corr, lag) = best_alignment(&want.samples, &got.samples, 3000);
        assert!(corr > 0.95, "{name}: correlation {corr} at lag {lag}");
        let ratio_db = 10.0 * (energy(&got.samples) / energy(&want.samples)).log10();
        assert!(ratio_db.abs() < 1.0, "{name}: energy differs by {ratio_db} dB");
    }
}

#[test]
fn content_wins_over_a_wrong_hint() {
    let a = decode(&bytes("clip.flac"), Some("mp3"), &DecodeLimits::default()).unwrap();
    assert_eq!(a.samples.len(), 26460);
    let a = decode(&bytes("clip.ogg"), Some("audio/wav"), &DecodeLimits::default()).unwrap();
    assert_eq!(a.sample_rate, 22050);
    let a = decode(&bytes("clip.wav"), Some("ogg"), &DecodeLimits::default()).unwrap();
    assert_eq!(a.samples.len(), 26460);
}

fn write_wav(spec: hound::WavSpec, frames: &[Vec<f64>]) -> Vec<u8> {
    let mut cur = Cursor::new(Vec::new());
    {
        let mut w = hound::WavWriter::new(&mut cur, spec).unwrap();
        for frame in frames {
            for &v in frame {
                match spec.sample_format {
                    hound::SampleFormat::Float => w.write_sample(v as f32).unwrap(),
                    hound::SampleFormat::Int => {
                        let full = (1i64 << (spec.bits_per_sample - 1)) as f64;
                        let q = (v * full).round().clamp(-full, full - 1.0) as i32;
                        if spec.bits_per_sample == 8 {
                            w.write_sample(q as i8).unwrap()
                        } else {
                            w.write_sample(q).unwrap()
                        }
                    }
                }
            }
        }
        w.finalize().unwrap();
    }
    cur.into_inner()
}

fn spec(channels: u16, bits: u16, float: bool) -> hound::WavSpec {
    hound::WavSpec {
        channels,
        sample_rate: 16000,
        bits_per_sample: bits,
        sample_format: if float {
            hound::SampleFormat::Float
        } else {
            hound::SampleFormat::Int
        },
    }
}

fn ramp(n: usize) -> Vec<f64> {
    (0..n).map(|i| (i as f64 * 0.013).sin() * 0.8).collect()
}

#[test]
fn wav_sample_formats_decode_to_the_same_signal() {
    let x = ramp(800);
    for (bits, float, tol) in [
        (8u16, false, 1.0 / 128.0),
        (16, false, 1.0 / 32768.0),
        (24, false, 1.0 / 8388608.0),
        (32, false, 1e-7),
        (32, true, 1e-7),
    ] {
        let frames: Vec<Vec<f64>> = x.iter().map(|&v| vec![v]).collect();
        let a = decode(
            &write_wav(spec(1, bits, float), &frames),
            None,
            &DecodeLimits::default(),
        )
        .unwrap_or_else(|e| panic!("{bits}-bit float={float}: {e}"));
        assert_eq!(a.samples.len(), x.len());
        for (g, w) in a.samples.iter().zip(&x) {
            assert!(
                (*g as f64 - w).abs() <= tol,
                "{bits}-bit float={float}: {g} vs {w}"
            );
        }
    }
}

/// A mono WAV built by hand: a fmt chunk of any format tag (16 bytes, plus
/// `cb_size` and `extra` when `extra` is `Some`), then the data.
fn raw_wav(format_tag: u16, bits: u16, block: u16, rate: u32, extra: Option<&[u8]>, data: &[u8]) -> Vec<u8> {
    let mut fmt = Vec::new();
    fmt.extend(format_tag.to_le_bytes());
    fmt.extend(1u16.to_le_bytes());
    fmt.extend(rate.to_le_bytes());
    fmt.extend((rate * block as u32).to_le_bytes());
    fmt.extend(block.to_le_bytes());
    fmt.extend(bits.to_le_bytes());
    if let Some(extra) = extra {
        fmt.extend((extra.len() as u16).to_le_bytes());
        fmt.extend(extra);
    }
    let mut b = b"RIFF".to_vec();
    b.extend((20 + fmt.len() as u32 + data.len() as u32).to_le_bytes());
    b.extend(b"WAVEfmt ");
    b.extend((fmt.len() as u32).to_le_bytes());
    b.extend(fmt);
    b.extend(b"data");
    b.extend((data.len() as u32).to_le_bytes());
    b.extend(data);
    b
}

#[test]
fn wavs_hound_cannot_read_go_to_symphonia() {
    // 64-bit float: hound refuses the header, symphonia decodes it.
    let x = ramp(300);
    let data: Vec<u8> = x.iter().flat_map(|v| v.to_le_bytes()).collect();
    let b = raw_wav(3, 64, 8, 16000, None, &data);
    let a = decode(&b, Some("wav"), &DecodeLimits::default()).unwrap();
    assert_eq!(a.samples.len(), 300);
    for (g, w) in a.samples.iter().zip(&x) {
        assert!((*g as f64 - w).abs() < 1e-6);
    }
    // G.711 mu-law (format 7): 0xFF is zero, 0x80 the positive and 0x00 the
    // negative maximum.
    let b = raw_wav(7, 8, 1, 8000, Some(&[]), &[0xFF, 0x80, 0x00, 0xFF]);
    let a = decode(&b, None, &DecodeLimits::default()).unwrap();
    assert_eq!(a.samples.len(), 4);
    assert!(
        a.samples[0].abs() < 1e-3 && a.samples[1] > 0.9 && a.samples[2] < -0.9,
        "{:?}",
        a.samples
    );
    // An unknown format tag is a clear decode error.
    let e = decode(
        &raw_wav(0x1234, 16, 2, 16000, None, &[0; 64]),
        None,
        &DecodeLimits::default(),
    )
    .unwrap_err();
    assert!(matches!(e, Error::AudioDecode(_)), "{e:?}");
}

#[test]
fn hostile_adpcm_header_is_an_error_not_a_crash() {
    // MS ADPCM (a codec neither decoder is built with) whose 1-byte block
    // is smaller than the 7-byte ADPCM block preamble.
    let b = raw_wav(2, 4, 1, 16000, Some(&[0; 32]), &[0; 256]);
    match decode(&b, Some("wav"), &DecodeLimits::default()) {
        Err(Error::AudioDecode(_)) | Err(Error::AudioRejected(_)) => {}
        other => panic!("expected an audio error, got {other:?}"),
    }
}

#[test]
fn stereo_is_averaged_to_mono() {
    let frames: Vec<Vec<f64>> = ramp(500).iter().map(|&v| vec![v, -0.5 * v]).collect();
    let a = decode(
        &write_wav(spec(2, 16, false), &frames),
        Some("wav"),
        &DecodeLimits::default(),
    )
    .unwrap();
    for (g, f) in a.samples.iter().zip(&frames) {
        assert!((*g as f64 - (f[0] + f[1]) / 2.0).abs() < 2.0 / 32768.0);
    }
}

fn expect_decode_error(r: vctts_core::Result<Audio>, needle: &str) {
    match r {
        Err(e @ Error::AudioDecode(_)) => {
            assert!(e.to_string().contains(needle), "message {e:?} lacks {needle:?}")
        }
        other => panic!("expected AudioDecode containing {needle:?}, got {other:?}"),
    }
}

fn expect_rejected(r: vctts_core::Result<Audio>, needles: &[&str]) {
    match r {
        Err(e @ Error::AudioRejected(_)) => {
            let m = e.to_string();
            for n in needles {
                assert!(m.contains(n), "message {m:?} lacks {n:?}");
            }
        }
        other => panic!("expected AudioRejected containing {needles:?}, got {other:?}"),
    }
}

#[test]
fn truncated_wav_is_a_decode_error() {
    let b = bytes("clip.wav");
    expect_decode_error(
        decode(&b[..b.len() / 2], Some("wav"), &DecodeLimits::default()),
        "truncated",
    );
    expect_decode_error(
        decode(&b[..30], Some("wav"), &DecodeLimits::default()),
        "truncated",
    );
}

#[test]
fn truncated_flac_is_a_decode_error() {
    let b = bytes("clip.flac");
    expect_decode_error(
        decode(&b[..b.len() / 2], Some("flac"), &DecodeLimits::default()),
        "truncated",
    );
}

#[test]
fn text_named_mp3_is_not_audio() {
    let text = b"This is not an MP3 file, just some text that someone renamed.\n".repeat(20);
    expect_decode_error(
        decode(&text, Some("mp3"), &DecodeLimits::default()),
        "not a recognised audio format",
    );
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("song.mp3");
    std::fs::write(&path, &text).unwrap();
    expect_decode_error(decode_file(&path, &DecodeLimits::default()), "\"mp3\"");
}

#[test]
fn zero_length_audio_is_rejected() {
    let empty = wav_i16(&Audio::new(vec![], 16000));
    expect_rejected(
        decode(&empty, Some("wav"), &DecodeLimits::default()),
        &["no samples"],
    );
    expect_rejected(decode(&[], None, &DecodeLimits::default()), &["empty"]);
}

#[test]
fn eight_channels_are_rejected() {
    let frames: Vec<Vec<f64>> = ramp(100).iter().map(|&v| vec![v; 8]).collect();
    let b = write_wav(spec(8, 16, false), &frames);
    expect_rejected(
        decode(&b, Some("wav"), &DecodeLimits::default()),
        &["8 channels", "at most 2"],
    );
    let limits = DecodeLimits {
        max_channels: 8,
        ..Default::default()
    };
    assert_eq!(decode(&b, Some("wav"), &limits).unwrap().samples.len(), 100);
}

#[test]
fn three_hour_wav_is_refused_from_its_header() {
    // A header that declares 3 hours of 16-bit 22.05 kHz audio, with one
    // second of data behind it.
    let mut b = wav_i16(&Audio::silence(1.0, 22050));
    let data: u32 = 3 * 3600 * 22050 * 2;
    b[40..44].copy_from_slice(&data.to_le_bytes());
    b[4..8].copy_from_slice(&(data + 36).to_le_bytes());
    let t = std::time::Instant::now();
    expect_rejected(
        decode(&b, Some("wav"), &DecodeLimits::default()),
        &["10800.0 s", "600 s"],
    );
    assert!(t.elapsed() < std::time::Duration::from_secs(1));
}

#[test]
fn long_flac_is_refused_from_its_header() {
    // Patch STREAMINFO's 36-bit total-samples field to 3 hours at 22.05 kHz.
    let mut b = bytes("clip.flac");
    assert_eq!(&b[0..4], b"fLaC");
    // Metadata block header at 4..8, STREAMINFO body from 8; total samples
    // are the low 4 bits of byte 21 and bytes 22..26.
    let total: u64 = 3 * 3600 * 22050;
    b[21] = (b[21] & 0xF0) | ((total >> 32) as u8 & 0x0F);
    b[22..26].copy_from_slice(&(total as u32).to_be_bytes());
    expect_rejected(
        decode(&b, Some("flac"), &DecodeLimits::default()),
        &["header declares", "600 s"],
    );
}

#[test]
fn duration_limit_applies_to_every_format() {
    let limits = DecodeLimits {
        max_seconds: 0.5,
        ..Default::default()
    };
    for name in ["clip.wav", "clip.flac", "clip.mp3", "clip.ogg"] {
        expect_rejected(decode(&bytes(name), None, &limits), &["0.5 s"]);
    }
}

#[test]
fn streams_without_a_declared_length_are_cut_off_while_decoding() {
    // A cut OGG has no final page, so its length is unknown until decoded.
    let b = bytes("clip.ogg");
    let cut = &b[..b.len() * 9 / 10];
    let a = decode(cut, Some("ogg"), &DecodeLimits::default()).unwrap();
    assert!(a.samples.len() > 10000);
    let limits = DecodeLimits {
        max_seconds: 0.3,
        ..Default::default()
    };
    expect_rejected(
        decode(cut, Some("ogg"), &limits),
        &["longer than the limit of 0.3 s"],
    );
}

#[test]
fn oversized_files_are_refused_before_reading() {
    let limits = DecodeLimits {
        max_bytes: 1000,
        ..Default::default()
    };
    expect_rejected(
        decode_file(&fixture("clip.wav"), &limits),
        &["the limit is 1000 bytes"],
    );
    let missing = decode_file(&fixture("no-such-file.wav"), &DecodeLimits::default()).unwrap_err();
    assert!(matches!(missing, Error::Io { .. }), "{missing:?}");
}

#[test]
fn decode_file_reads_every_fixture() {
    for name in ["clip.wav", "clip.flac", "clip.mp3", "clip.ogg"] {
        let a = decode_file(&fixture(name), &DecodeLimits::default()).unwrap();
        assert_eq!(a.sample_rate, 22050, "{name}");
    }
}

mod never_panics {
    use proptest::prelude::*;

    use super::*;

    fn any_result(b: &[u8], hint: Option<&str>) {
        // Any outcome but a panic; errors must be audio errors.
        match decode(b, hint, &DecodeLimits::default()) {
            Ok(a) => assert!(!a.samples.is_empty() && a.sample_rate > 0),
            Err(Error::AudioDecode(_) | Error::AudioRejected(_)) => {}
            Err(other) => panic!("unexpected error kind {other:?}"),
        }
    }

    // 256 cases per property by default; PROPTEST_CASES raises it.
    proptest! {
        #[test]
        fn random_bytes(b in proptest::collection::vec(any::<u8>(), 0..4096)) {
            any_result(&b, None);
            any_result(&b, Some("mp3"));
        }

        #[test]
        fn random_bytes_behind_a_riff_header(tail in proptest::collection::vec(any::<u8>(), 0..512)) {
            let mut b = b"RIFF\xff\xff\xff\xffWAVE".to_vec();
            b.extend(tail);
            any_result(&b, Some("wav"));
        }

        #[test]
        fn truncated_wav(cut in 0usize..52964) {
            let b = bytes("clip.wav");
            any_result(&b[..cut.min(b.len())], Some("wav"));
        }

        #[test]
        fn corrupted_files(which in 0usize..4, at in 0usize..10_000, len in 1usize..64, seed in any::<u64>()) {
            let name = ["clip.wav", "clip.flac", "clip.mp3", "clip.ogg"][which];
            let mut b = bytes(name);
            let start = at % b.len();
            let mut s = seed | 1;
            for v in b.iter_mut().skip(start).take(len) {
                s ^= s << 13;
                s ^= s >> 7;
                s ^= s << 17;
                *v = s as u8;
            }
            any_result(&b, None);
            let cut = start.max(1);
            any_result(&b[..cut], None);
        }
    }
}
