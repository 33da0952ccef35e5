//! `vctts models fetch` and `vctts models list` end to end: the real binary
//! against a local hub (HF_ENDPOINT) that serves the fixture converter
//! graphs in the layout of the OpenVoice converter repository; then
//! `vctts extract` clones a voice with what was fetched.

#[path = "../../tests/support/local_hub.rs"]
mod local_hub;

use local_hub::{LocalHub, sha256};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const REPO: &str = "seasonstudio/openvoice_tone_clone_onnx";
const FILES: [&str; 2] = ["tone_color_extract_model.onnx", "tone_clone_model.onnx"];

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

fn fixture_graph(name: &str) -> Vec<u8> {
    std::fs::read(
        repo()
            .join("vctts-engines/tests/fixtures/graphs/openvoice/converter")
            .join(name),
    )
    .unwrap()
}

fn vctts(dir: &Path, hub: &LocalHub) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_vctts"));
    c.current_dir(dir)
        .env("HF_ENDPOINT", &hub.endpoint)
        .env_remove("HF_TOKEN")
        .env_remove("HUGGING_FACE_HUB_TOKEN")
        .env_remove("VCTTS_CATALOG")
        .env("VCTTS_MODELS", dir.join("models"))
        .env("VCTTS_LOG", "error");
    c
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn run(c: &mut Command) -> Output {
    c.output().expect("vctts runs")
}

/// The built-in catalog with the converter's sums replaced by the fixture
/// graphs' (what an organisation's own catalog for its mirror looks like).
fn fixture_catalog(dir: &Path) -> PathBuf {
    let mut cat: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(repo().join("models/catalog.json")).unwrap()).unwrap();
    let conv = cat["models"]
        .as_array_mut()
        .unwrap()
        .iter_mut()
        .find(|m| m["name"] == "openvoice-converter")
        .unwrap();
    for f in conv["files"].as_array_mut().unwrap() {
        let bytes = fixture_graph(f["path"].as_str().unwrap());
        f["sha256"] = sha256(&bytes).into();
        f["size"] = bytes.len().into();
    }
    let path = dir.join("catalog.json");
    std::fs::write(&path, cat.to_string()).unwrap();
    path
}

/// A few seconds of speech, spoken by the real base voice.
fn reference_clip(dir: &Path, hub: &LocalHub) -> PathBuf {
    let path = dir.join("ref.wav");
    let o = run(vctts(dir, hub)
        .args([
            "synth",
            "--text",
            "The quick brown fox jumps over the lazy dog, and then it runs far away into the quiet forest.",
            "-o",
        ])
        .arg(&path));
    assert!(o.status.success(), "{}", text(&o.stderr));
    path
}

fn hub_with_converter() -> LocalHub {
    let hub = LocalHub::start();
    for f in FILES {
        hub.add(REPO, "main", f, &fixture_graph(f), true);
    }
    hub
}

#[test]
fn fetch_the_converter_then_extract_a_voice() {
    let dir = tempfile::tempdir().unwrap();
    let hub = hub_with_converter();
    let models = dir.path().join("models");
    std::fs::create_dir_all(models.join("openvoice")).unwrap();
    std::os::unix::fs::symlink(
        repo().join("models/openvoice/base"),
        models.join("openvoice/base"),
    )
    .unwrap();
    let catalog = fixture_catalog(dir.path());
    let reference = reference_clip(dir.path(), &hub);

    // Before: no converter, so no cloning.
    let o = run(vctts(dir.path(), &hub).args(["extract", reference.to_str().unwrap(), "--name", "me"]));
    assert!(!o.status.success());
    assert!(
        text(&o.stderr).contains("vctts models fetch openvoice-converter"),
        "the error says the one command that fixes it: {}",
        text(&o.stderr)
    );

    let o = run(vctts(dir.path(), &hub)
        .args(["models", "fetch", "openvoice-converter", "--catalog"])
        .arg(&catalog));
    assert!(o.status.success(), "{}", text(&o.stderr));
    let out = text(&o.stdout);
    assert!(out.contains("openvoice-converter: installed in"), "{out}");
    assert!(out.contains("every file verified"), "{out}");
    let err = text(&o.stderr);
    assert!(err.contains("verified tone_clone_model.onnx"), "{err}");
    for f in FILES {
        assert_eq!(
            std::fs::read(models.join("openvoice/converter").join(f)).unwrap(),
            fixture_graph(f)
        );
    }
    assert!(!models.join(".fetch").exists());

    // The fetched converter clones.
    let o = run(vctts(dir.path(), &hub).args(["extract", reference.to_str().unwrap(), "--name", "me"]));
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert!(dir.path().join("data/voices.db").is_file());
    let o = run(vctts(dir.path(), &hub).args(["voices"]));
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert!(text(&o.stdout).contains("me "), "{}", text(&o.stdout));

    // A second fetch downloads nothing; list shows it installed.
    let o = run(vctts(dir.path(), &hub)
        .args(["models", "fetch", "openvoice-converter", "--catalog"])
        .arg(&catalog));
    assert!(
        text(&o.stdout).contains("already installed"),
        "{}",
        text(&o.stdout)
    );
    let o = run(vctts(dir.path(), &hub)
        .args(["models", "list", "--catalog"])
        .arg(&catalog));
    assert!(o.status.success(), "{}", text(&o.stderr));
    let out = text(&o.stdout);
    let line = out
        .lines()
        .find(|l| l.trim_start().starts_with("openvoice-converter"))
        .unwrap_or_else(|| panic!("{out}"));
    assert!(
        line.contains(" installed") && !line.contains("not installed"),
        "{line}"
    );
    assert!(out.contains("licence: MIT"), "{out}");
    assert!(
        out.contains("xtts-v2") && out.contains("gated: set HF_TOKEN"),
        "{out}"
    );
    assert!(out.contains("vctts models import gpt-sovits"), "{out}");
    assert!(
        out.contains("en_US-joe-medium"),
        "installed Piper voices are listed: {out}"
    );
}

#[test]
fn the_builtin_catalog_refuses_files_that_do_not_match_its_sums() {
    let dir = tempfile::tempdir().unwrap();
    let hub = hub_with_converter();
    let o = run(vctts(dir.path(), &hub).args(["models", "fetch", "openvoice-converter"]));
    assert!(!o.status.success());
    let err = text(&o.stderr);
    assert!(
        err.contains("tone_color_extract_model.onnx") && err.contains("mismatch"),
        "{err}"
    );
    assert!(!dir.path().join("models/openvoice/converter").exists());
}

#[test]
fn unknown_names_gated_repositories_and_a_missing_hub_fail_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let hub = hub_with_converter();
    let o = run(vctts(dir.path(), &hub).args(["models", "fetch", "no-such-model"]));
    assert!(!o.status.success());
    let err = text(&o.stderr);
    assert!(
        err.contains("unknown model") && err.contains("openvoice-converter"),
        "{err}"
    );
    assert!(err.contains("vctts models list"), "{err}");

    let o = run(vctts(dir.path(), &hub).args(["models", "fetch", "gpt-sovits"]));
    assert!(
        text(&o.stderr).contains("vctts models import gpt-sovits"),
        "{}",
        text(&o.stderr)
    );

    // A gated repository without a token.
    hub.require_token("t0k3n");
    let o = run(vctts(dir.path(), &hub).args(["models", "fetch", "xtts-v2"]));
    assert!(!o.status.success());
    let err = text(&o.stderr);
    assert!(
        err.contains("xtts_onnx/metadata.json") && err.contains("HF_TOKEN"),
        "{err}"
    );

    // With the token the hub lets it through (and then has no such file).
    let o = run(vctts(dir.path(), &hub)
        .env("HF_TOKEN", "t0k3n")
        .args(["models", "fetch", "xtts-v2"]));
    let err = text(&o.stderr);
    assert!(err.contains("404") && err.contains("HF_ENDPOINT is"), "{err}");
    assert!(!dir.path().join("models/xtts_v2").exists());
}
