//! Japanese in the XTTS engine against upstream, on the committed fixture
//! `tests/fixtures/xtts/japanese.json` of `scripts/fixtures/xtts_japanese.py`
//! (cutlet 0.5.2 + fugashi + unidic-lite 1.0.8, and Coqui's own
//! `VoiceBpeTokenizer` on the tiny vocab): cutlet's romaji, Coqui's cleaned
//! text and the token ids, every line exactly; then synthesis of a Japanese
//! sentence on the tiny model, and the refusal without a dictionary.
//!
//! Needs the unidic-lite dictionary at `.vctts/unidic/` and ONNX Runtime,
//! both from `scripts/setup.sh`; without them the tests fail saying so.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use vctts_core::{EngineKind, ReferenceAudio, SynthesisRequest};
use vctts_engines::runtime::{self, RuntimeConfig, SessionConfig};
use vctts_engines::xtts::japanese::{self, cutlet, mecab::Analyzer};
use vctts_engines::xtts::model::Assets;
use vctts_engines::xtts::pipeline::Xtts;

/// Lines where vctts knowingly differs from upstream, with the reason.
/// Empty: every line of the corpus matches.
const KNOWN_DIFFERENCES: &[(&str, &str)] = &[];

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/xtts")
}

fn dicdir() -> PathBuf {
    let dir = root().join(".vctts/unidic");
    assert!(
        dir.join("sys.dic").is_file(),
        "the Japanese tests need unidic-lite's dictionary at {} (run scripts/setup.sh)",
        dir.display()
    );
    dir
}

fn analyzer() -> Arc<Analyzer> {
    japanese::load(&dicdir()).unwrap()
}

fn cases() -> Vec<serde_json::Value> {
    let text = std::fs::read_to_string(fixtures().join("japanese.json")).unwrap();
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    v["cases"].as_array().unwrap().clone()
}

fn known(text: &str) -> bool {
    KNOWN_DIFFERENCES.iter().any(|(t, _)| *t == text)
}

#[test]
fn romaji_and_cleaning_match_cutlet_on_every_line() {
    let a = analyzer();
    let cases = cases();
    assert!(cases.len() >= 150, "{}", cases.len());
    let mut failures = Vec::new();
    for case in &cases {
        let text = case["text"].as_str().unwrap();
        let got = cutlet::romaji(&a, text);
        if case["error"].as_bool() == Some(true) {
            if got.is_ok() {
                failures.push(format!("{text:?}: cutlet raises, vctts gave {got:?}"));
            }
            continue;
        }
        let want = case["romaji"].as_str().unwrap();
        let cleaned = japanese::clean(&a, &text.trim().to_lowercase());
        let want_clean = case["cleaned"].as_str().unwrap();
        let ok = got.as_deref().ok() == Some(want) && cleaned.as_deref().ok() == Some(want_clean);
        if ok == known(text) {
            failures.push(format!(
                "{text:?}: romaji {got:?} (cutlet {want:?}), cleaned {cleaned:?} (coqui {want_clean:?}){}",
                if ok {
                    " — listed as a known difference but matches"
                } else {
                    ""
                }
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} lines differ:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

#[test]
fn mecab_words_of_a_sentence() {
    let a = analyzer();
    let words: Vec<_> = a
        .analyze("カツカレーを食べた  dog's 😀")
        .into_iter()
        .map(|m| (m.surface, m.white_space, m.is_unk, m.char_type))
        .collect();
    // As fugashi shows them on unidic-lite 1.0.8.
    assert_eq!(
        words,
        vec![
            ("カツ", "", false, 7),
            ("カレー", "", false, 7),
            ("を", "", false, 6),
            ("食べ", "", false, 2),
            ("た", "", false, 6),
            ("dog", "  ", true, 5),
            ("'", "", true, 3),
            ("s", "", true, 5),
            ("😀", " ", true, 0),
        ]
    );
    let f = a.analyze("カツカレー")[0].feature;
    assert!(
        f.starts_with("名詞,普通名詞,一般,") && f.contains("カツ-cutlet"),
        "{f}"
    );
}

fn session_config() -> SessionConfig {
    runtime::init(&RuntimeConfig::default())
        .unwrap_or_else(|e| panic!("the XTTS tests need ONNX Runtime (run scripts/setup.sh): {e}"));
    SessionConfig {
        intra_threads: 1,
        ..SessionConfig::default()
    }
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let p = e.path();
        if p.is_dir() {
            copy_dir(&p, &to.join(e.file_name()));
        } else {
            std::fs::copy(&p, to.join(e.file_name())).unwrap();
        }
    }
}

/// The tiny model in a temporary models root as `xtts_v2/`, with the
/// dictionary linked in as `ja/unidic/` when `with_dictionary`.
fn models_root(with_dictionary: bool) -> tempfile::TempDir {
    let tmp = tempfile::tempdir().unwrap();
    let model = tmp.path().join("xtts_v2");
    copy_dir(&fixtures().join("model"), &model);
    if with_dictionary {
        std::fs::create_dir_all(model.join("ja")).unwrap();
        std::os::unix::fs::symlink(dicdir().canonicalize().unwrap(), model.join("ja/unidic")).unwrap();
    }
    tmp
}

#[test]
fn token_ids_match_coqui_on_the_tiny_vocab() {
    let root = models_root(true);
    let cfg = session_config();
    let assets = Arc::new(Assets::load_probed(&root.path().join("xtts_v2"), &cfg).unwrap());
    let x = Xtts::new(assets, &cfg).unwrap();
    let mut checked = 0;
    for case in cases() {
        let text = case["text"].as_str().unwrap();
        let Some(ids) = case["ids"].as_array() else {
            continue;
        };
        if known(text) {
            continue;
        }
        let want: Vec<u32> = ids.iter().map(|v| v.as_u64().unwrap() as u32).collect();
        assert_eq!(x.tokenize(text, "ja").unwrap(), want, "{text:?}");
        checked += 1;
    }
    assert!(checked >= 150, "{checked}");
}

#[test]
fn without_the_dictionary_japanese_is_refused_naming_where_it_goes() {
    let root = models_root(false);
    let cfg = session_config();
    let dir = root.path().join("xtts_v2");
    let assets = Arc::new(Assets::load_probed(&dir, &cfg).unwrap());
    let x = Xtts::new(assets, &cfg).unwrap();
    if std::env::var_os(japanese::DICTIONARY_ENV).is_some() {
        return; // an explicit dictionary applies to every model folder
    }
    let e = x.tokenize("こんにちは", "ja").unwrap_err();
    assert_eq!(e.code(), "invalid_input");
    assert!(
        e.to_string()
            .contains(&dir.join("ja/unidic").display().to_string()),
        "{e}"
    );
    assert!(e.to_string().contains("unidic-lite"), "{e}");
    // Romaji needs no dictionary.
    assert!(x.tokenize("konnichiwa", "ja").is_ok());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_engine_speaks_japanese() {
    let root = models_root(true);
    let options = vctts_engines::catalog::EngineOptions {
        threads: 1,
        ..Default::default()
    };
    let engine = vctts_engines::catalog::build(EngineKind::Xtts, root.path(), &options).unwrap();
    engine.load().await.unwrap();
    let mut r = hound::WavReader::open(fixtures().join("ref_a.wav")).unwrap();
    let rate = r.spec().sample_rate;
    let s: Vec<f32> = r.samples::<i16>().map(|x| x.unwrap() as f32 / 32768.0).collect();
    let reference = ReferenceAudio {
        audio: vctts_core::Audio::new(s, rate),
        transcript: None,
        language: None,
    };
    let profile = engine.extract_voice(&reference).await.unwrap();
    let mut req = SynthesisRequest::new("私は日本語を勉強しています。カツカレーを食べた。");
    req.language = Some("ja".parse().unwrap());
    req.sampling.top_k = Some(1);
    let audio = engine.synthesize(&req, Some(&profile)).await.unwrap();
    assert_eq!(audio.sample_rate, 24_000);
    assert!(!audio.samples.is_empty() && audio.samples.iter().all(|s| s.is_finite()));
}
