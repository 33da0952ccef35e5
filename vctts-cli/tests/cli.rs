//! The `vctts` binary end to end: real processes, the real default voice,
//! the fixture converter for cloning.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

fn vctts(dir: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_vctts"));
    c.current_dir(dir)
        .env("VCTTS_MODELS", repo().join("models"))
        .env_remove("VCTTS_DATA")
        .arg("--quiet");
    c
}

fn run(c: &mut Command) -> Output {
    c.output().expect("vctts runs")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn read_wav(path: &Path) -> (hound::WavSpec, Vec<i16>) {
    let mut r = hound::WavReader::open(path).expect("a WAV file");
    let spec = r.spec();
    let s: Vec<i16> = r.samples::<i16>().map(|s| s.unwrap()).collect();
    (spec, s)
}

fn rms(s: &[i16]) -> f64 {
    (s.iter().map(|&x| (x as f64 / 32768.0).powi(2)).sum::<f64>() / s.len().max(1) as f64).sqrt()
}

#[test]
fn synth_writes_a_real_wav() {
    let dir = tempfile::tempdir().unwrap();
    let o = run(vctts(dir.path()).args(["synth", "--text", "Hello from the command line.", "-o", "out.wav"]));
    assert!(o.status.success(), "{}", stderr(&o));
    let (spec, s) = read_wav(&dir.path().join("out.wav"));
    assert_eq!(
        (spec.sample_rate, spec.channels, spec.bits_per_sample),
        (22050, 1, 16)
    );
    let secs = s.len() as f64 / 22050.0;
    assert!((1.0..6.0).contains(&secs), "{secs}");
    assert!(rms(&s) > 0.01);
}

#[test]
fn the_output_extension_or_format_picks_the_encoding() {
    let dir = tempfile::tempdir().unwrap();
    // Each file starts with its container's magic bytes, never a RIFF header.
    for (file, flag, magic) in [
        ("out.mp3", None, &[0xFF][..]), // an MPEG audio frame header
        ("out.flac", None, &b"fLaC"[..]),
        ("out.opus", None, &b"OggS"[..]),
        ("out.audio", Some("flac"), &b"fLaC"[..]),
        ("out.wav", None, &b"RIFF"[..]),
    ] {
        let mut c = vctts(dir.path());
        c.args(["synth", "--text", "Hello.", "-o", file]);
        if let Some(f) = flag {
            c.args(["--format", f]);
        }
        let o = run(&mut c);
        assert!(o.status.success(), "{file}: {}", stderr(&o));
        let bytes = std::fs::read(dir.path().join(file)).unwrap();
        assert!(
            bytes.starts_with(magic),
            "{file}: starts with {:?}",
            &bytes[..4.min(bytes.len())]
        );
        assert!(bytes.len() > 500, "{file}: {} bytes", bytes.len());
    }
    let o = run(vctts(dir.path()).args(["synth", "--text", "Hi.", "--format", "wma", "-o", "x"]));
    assert!(!o.status.success());
    assert!(stderr(&o).contains("wma"), "{}", stderr(&o));
}

#[test]
fn text_from_stdin_audio_to_stdout_and_seeded_repeatability() {
    let dir = tempfile::tempdir().unwrap();
    let synth = || {
        let mut child = vctts(dir.path())
            .args([
                "synth",
                "--text",
                "-",
                "-o",
                "-",
                "--noise-scale",
                "0",
                "--noise-w",
                "0",
                "--seed",
                "3",
            ])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(b"Read from standard input.")
            .unwrap();
        child.wait_with_output().unwrap()
    };
    let a = synth();
    assert!(a.status.success(), "{}", stderr(&a));
    assert_eq!(&a.stdout[0..4], b"RIFF");
    let b = synth();
    assert_eq!(
        a.stdout, b.stdout,
        "same seed and zero noise must give identical bytes"
    );
    // Raw PCM is the WAV's data without the header.
    let p = run(vctts(dir.path()).args([
        "synth",
        "--text",
        "Read from standard input.",
        "--format",
        "pcm",
        "--noise-scale",
        "0",
        "--noise-w",
        "0",
        "-o",
        "out.pcm",
    ]));
    assert!(p.status.success(), "{}", stderr(&p));
    let pcm = std::fs::read(dir.path().join("out.pcm")).unwrap();
    assert_eq!(pcm, a.stdout[44..]);
}

#[test]
fn text_file_input() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("t.txt"),
        "First line of the file. Second sentence.",
    )
    .unwrap();
    let o = run(vctts(dir.path()).args(["synth", "--text-file", "t.txt", "-o", "f.wav"]));
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(read_wav(&dir.path().join("f.wav")).1.len() > 22050);
}

#[test]
fn bad_input_names_the_problem() {
    let dir = tempfile::tempdir().unwrap();
    let cases: &[(&[&str], &str)] = &[
        (&["synth", "--text", "  ", "-o", "x.wav"], "text is empty"),
        (
            &["synth", "--text", "hi", "--voice", "nobody", "-o", "x.wav"],
            "voice not found",
        ),
        (
            &["synth", "--text", "hi", "--voice", "../etc/passwd", "-o", "x.wav"],
            "invalid voice id",
        ),
        (&["synth", "--text", "hi", "--speed", "9", "-o", "x.wav"], "speed"),
        (
            &["synth", "--text", "hi", "--language", "xx", "-o", "x.wav"],
            "not supported",
        ),
        (
            &["synth", "--text", "hi", "--engine", "melo", "-o", "x.wav"],
            "unknown engine",
        ),
        (
            &["synth", "--text", "hi", "--format", "wma", "-o", "x.wav"],
            "unknown format",
        ),
        (
            &["synth", "--text-file", "missing.txt", "-o", "x.wav"],
            "missing.txt",
        ),
        (
            &["synth", "--text", "hi", "--engine", "xtts", "-o", "x.wav"],
            "xtts",
        ),
        (&["synth", "-o", "x.wav"], "--text"),
    ];
    for (args, needle) in cases {
        let o = run(vctts(dir.path()).args(*args));
        assert!(!o.status.success(), "{args:?} succeeded");
        let e = stderr(&o);
        assert!(e.contains(needle), "{args:?}: {e:?} lacks {needle:?}");
        assert!(!e.contains("panicked"), "{args:?} panicked: {e}");
    }
    assert!(
        !dir.path().join("x.wav").exists(),
        "a failed run left an output file"
    );
}

#[test]
fn extract_refuses_bad_references() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("fake.mp3"), "this is not audio").unwrap();
    let o = run(vctts(dir.path()).args(["extract", "fake.mp3", "--name", "x"]));
    assert!(!o.status.success());
    assert!(stderr(&o).contains("decode"), "{}", stderr(&o));
    let o = run(vctts(dir.path()).args(["extract", "nothing.wav", "--name", "x"]));
    assert!(!o.status.success());
    assert!(stderr(&o).contains("nothing.wav"), "{}", stderr(&o));
    let o = run(vctts(dir.path()).args(["extract", "fake.mp3", "--name", "a/b"]));
    assert!(stderr(&o).contains("path separator"), "{}", stderr(&o));
}

/// A models root with the real base voice and the fixture converter.
fn cloning_models(dir: &Path) -> PathBuf {
    let root = dir.join("models");
    std::fs::create_dir_all(root.join("openvoice")).unwrap();
    std::os::unix::fs::symlink(repo().join("models/openvoice/base"), root.join("openvoice/base")).unwrap();
    std::os::unix::fs::symlink(
        repo().join("vctts-engines/tests/fixtures/graphs/openvoice/converter"),
        root.join("openvoice/converter"),
    )
    .unwrap();
    root
}

fn reference_clip(dir: &Path) -> PathBuf {
    let mut spec = None;
    let mut all = Vec::new();
    for n in [
        "Front_Center",
        "Front_Left",
        "Front_Right",
        "Rear_Center",
        "Rear_Left",
        "Rear_Right",
        "Side_Left",
        "Side_Right",
    ] {
        let mut r =
            hound::WavReader::open(format!("/usr/share/sounds/alsa/{n}.wav")).expect("alsa-utils clips");
        spec = Some(r.spec());
        all.extend(r.samples::<i16>().map(|s| s.unwrap()));
    }
    let path = dir.join("ref.wav");
    let mut w = hound::WavWriter::create(&path, spec.unwrap()).unwrap();
    for s in all {
        w.write_sample(s).unwrap();
    }
    w.finalize().unwrap();
    path
}

#[test]
fn extract_then_synth_with_the_voice() {
    let dir = tempfile::tempdir().unwrap();
    let models = cloning_models(dir.path());
    let reference = reference_clip(dir.path());
    let cmd = || {
        let mut c = vctts(dir.path());
        c.env("VCTTS_MODELS", &models);
        c
    };
    let o = run(cmd().args(["extract", reference.to_str().unwrap(), "--name", "alice"]));
    assert!(o.status.success(), "{}", stderr(&o));
    // The voice is in the store the server shares: its rows and its reference.
    assert!(dir.path().join("data/voices.db").is_file());
    assert!(dir.path().join("data/voices/alice.wav").is_file());
    let o = run(cmd().args(["extract", reference.to_str().unwrap(), "--name", "alice"]));
    assert!(stderr(&o).contains("--force"), "{}", stderr(&o));
    let o = run(cmd().arg("voices"));
    assert!(String::from_utf8_lossy(&o.stdout).contains("alice"));
    let o = run(cmd().args([
        "synth",
        "--text",
        "Now in the new voice.",
        "--voice",
        "alice",
        "-o",
        "a.wav",
    ]));
    assert!(o.status.success(), "{}", stderr(&o));
    let (spec, s) = read_wav(&dir.path().join("a.wav"));
    assert_eq!(spec.sample_rate, 22050);
    assert!(!s.is_empty());
    // A reference file as --voice clones on the fly.
    let o = run(cmd().args([
        "synth",
        "--text",
        "On the fly.",
        "--voice",
        reference.to_str().unwrap(),
        "-o",
        "b.wav",
    ]));
    assert!(o.status.success(), "{}", stderr(&o));
}

#[test]
fn engines_lists_installed_and_missing() {
    let dir = tempfile::tempdir().unwrap();
    let o = run(vctts(dir.path()).arg("engines"));
    assert!(o.status.success(), "{}", stderr(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains("openvoice   installed"), "{out}");
    assert!(out.contains("xtts        missing"), "{out}");
}

#[test]
fn every_flag_has_help() {
    for sub in ["synth", "extract", "engines", "voices", "models"] {
        let o = Command::new(env!("CARGO_BIN_EXE_vctts"))
            .args([sub, "--help"])
            .output()
            .unwrap();
        assert!(o.status.success());
        let text = String::from_utf8_lossy(&o.stdout);
        for line in text.lines().filter(|l| l.trim_start().starts_with("--")) {
            let help = line
                .trim_start()
                .split_once("  ")
                .map(|x| x.1)
                .unwrap_or("")
                .trim();
            assert!(!help.is_empty(), "{sub}: flag without help: {line}");
        }
    }
}

#[test]
fn global_options_are_listed_once_under_their_heading() {
    for args in [
        &["--help"][..],
        &["synth", "--help"],
        &["models", "fetch", "--help"],
    ] {
        let o = Command::new(env!("CARGO_BIN_EXE_vctts"))
            .args(args)
            .output()
            .unwrap();
        assert!(o.status.success());
        let text = String::from_utf8_lossy(&o.stdout);
        let (own, global) = text
            .split_once("Global options:")
            .unwrap_or_else(|| panic!("{args:?}: no global heading\n{text}"));
        for flag in ["--models <MODELS>", "--data <DATA>", "--quiet"] {
            assert!(!own.contains(flag), "{args:?}: {flag} among the command's own");
            assert_eq!(global.matches(flag).count(), 1, "{args:?}: {flag}");
        }
    }
}

#[test]
fn completions_for_each_shell() {
    for (shell, marker) in [
        ("bash", "complete -F _vctts"),
        ("zsh", "#compdef vctts"),
        ("fish", "complete -c vctts"),
    ] {
        let o = Command::new(env!("CARGO_BIN_EXE_vctts"))
            .args(["completions", shell])
            .output()
            .unwrap();
        assert!(o.status.success(), "{shell}");
        let text = String::from_utf8_lossy(&o.stdout);
        assert!(text.contains(marker), "{shell}: {marker}");
        // Subcommands and their flags are completed.
        assert!(
            text.contains("synth") && text.contains("repetition-penalty"),
            "{shell}"
        );
    }
    let o = Command::new(env!("CARGO_BIN_EXE_vctts"))
        .args(["completions", "tcsh"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("tcsh"));
}

#[test]
fn stream_writes_the_same_file_as_a_whole_synthesis() {
    let dir = tempfile::tempdir().unwrap();
    let text = "Streaming writes as it speaks. The second sentence follows the first.";
    for (name, stream) in [
        ("whole.wav", false),
        ("streamed.wav", true),
        ("streamed.mp3", true),
    ] {
        let mut c = vctts(dir.path());
        c.args(["synth", "--seed", "7", "--text", text, "-o", name]);
        if stream {
            c.arg("--stream");
        }
        let o = run(&mut c);
        assert!(o.status.success(), "{name}: {}", stderr(&o));
    }
    let whole = std::fs::read(dir.path().join("whole.wav")).unwrap();
    let streamed = std::fs::read(dir.path().join("streamed.wav")).unwrap();
    // The streamed WAV's header gets its real sizes at the end.
    assert_eq!(whole, streamed);
    let mp3 = std::fs::read(dir.path().join("streamed.mp3")).unwrap();
    assert!(
        mp3.len() > 1000 && (mp3.starts_with(b"ID3") || mp3[0] == 0xFF),
        "not MP3"
    );
    // Streamed to a pipe: the same samples.
    let o = run(vctts(dir.path()).args(["synth", "--seed", "7", "--text", text, "--stream", "-o", "-"]));
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(&o.stdout[..4], b"RIFF");
    assert_eq!(o.stdout[44..], whole[44..]);
}

#[test]
fn output_errors_name_the_users_path_and_leave_nothing_behind() {
    let dir = tempfile::tempdir().unwrap();
    let o = run(vctts(dir.path()).args(["synth", "--text", "Hi.", "-o", "missing/out.wav"]));
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    assert!(
        err.contains("missing/out.wav") && err.contains("does not exist"),
        "{err}"
    );
    assert!(!err.contains(".part"), "{err}");
    std::fs::create_dir(dir.path().join("folder")).unwrap();
    let o = run(vctts(dir.path()).args(["synth", "--text", "Hi.", "-o", "folder"]));
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("folder is a folder"), "{}", stderr(&o));
    // A failed synthesis (unknown voice) leaves no file and no .part.
    for stream in [false, true] {
        let mut c = vctts(dir.path());
        c.args(["synth", "--text", "Hi.", "--voice", "nobody", "-o", "x.wav"]);
        if stream {
            c.arg("--stream");
        }
        let o = run(&mut c);
        assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
        let names: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n != "folder" && n != "data")
            .collect();
        assert!(names.is_empty(), "left behind: {names:?}");
    }
}

/// `script` (util-linux) gives the command a terminal on stdout.
#[test]
fn audio_is_never_written_to_a_terminal() {
    let dir = tempfile::tempdir().unwrap();
    let cmd = format!(
        "{} --models {} synth --text Hi -o -",
        env!("CARGO_BIN_EXE_vctts"),
        repo().join("models").display()
    );
    let o = Command::new("script")
        .current_dir(dir.path())
        .args(["-qec", &cmd, "/dev/null"])
        .stdin(Stdio::null())
        .output()
        .expect("script (util-linux) runs");
    assert_eq!(o.status.code(), Some(1));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains("standard output is a terminal"), "{out}");
    assert!(!out.contains("RIFF"));
}
