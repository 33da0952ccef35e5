//! The Piper front end against piper-tts, the reference implementation of
//! the voice format.
//!
//! Fixture `tests/fixtures/piper/joe_ids.json` (written by
//! `scripts/fixtures/make_piper_ids.py`): over 300 English sentences with
//! punctuation, numbers, abbreviations and quotes, and for each the phoneme
//! ids piper-tts feeds the `en_US-joe-medium` voice, one list per utterance.
//! vctts must produce the same ids for at least 99% of the items. Needs
//! espeak-ng, the voice's `.onnx.json` and the espeak-ng 1.52 data the voice
//! was trained with, `models/openvoice/espeak-ng-data/` (scripts/setup.sh
//! installs all three); the engine finds that data the same way.

#![cfg(feature = "openvoice")]

use std::path::Path;
use vctts_engines::openvoice::piper::{self, PiperVoice};
use vctts_engines::openvoice::{OpenVoiceConfig, espeak_for};
use vctts_engines::text::phonemize::Espeak;

#[derive(serde::Deserialize)]
struct Fixture {
    items: Vec<Item>,
}

#[derive(serde::Deserialize)]
struct Item {
    text: String,
    phonemes: Vec<String>,
    ids: Vec<Vec<i64>>,
}

fn fixture() -> Fixture {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/piper/joe_ids.json");
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
}

/// espeak-ng as the engine sets it up for the repository's model folder.
fn espeak() -> Espeak {
    let models = Path::new(env!("CARGO_MANIFEST_DIR")).join("../models/openvoice");
    assert!(
        models.join("espeak-ng-data/phontab").is_file(),
        "the espeak-ng data of Piper voices is missing: run scripts/setup.sh"
    );
    let e = espeak_for(&OpenVoiceConfig::new(&models)).expect("espeak-ng (run scripts/setup.sh)");
    assert_eq!(e.data(), Some(models.as_path()));
    e
}

fn voice() -> PiperVoice {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../models/openvoice/base/en_US-joe-medium.onnx");
    PiperVoice::load(&path).expect("the default voice: run scripts/setup.sh")
}

/// Each item's sentences, all phonemized in one batch, back to ids per item.
fn vctts_ids(espeak: &Espeak, voice: &PiperVoice, items: &[Item]) -> Vec<(Vec<Vec<i64>>, Vec<String>)> {
    let per_item: Vec<Vec<String>> = items.iter().map(|i| piper::sentences(&i.text, 400)).collect();
    let flat: Vec<String> = per_item.iter().flatten().cloned().collect();
    let utterances = espeak.phonemize_utterances(&voice.espeak_voice, &flat).unwrap();
    let mut u = utterances.into_iter();
    per_item
        .iter()
        .map(|sentences| {
            let mut ids = Vec::new();
            let mut phonemes = Vec::new();
            for _ in sentences {
                for p in u.next().unwrap() {
                    let mapped = voice.phoneme_ids(&p);
                    assert_eq!(mapped.dropped, 0, "{p}: symbols missing from the voice's map");
                    ids.push(mapped.ids);
                    phonemes.push(p);
                }
            }
            (ids, phonemes)
        })
        .collect()
}

#[test]
fn phoneme_ids_equal_piper_tts_for_99_percent() {
    let fixture = fixture();
    assert!(fixture.items.len() >= 300);
    let espeak = espeak();
    let voice = voice();
    let ours = vctts_ids(&espeak, &voice, &fixture.items);
    let mut mismatches = Vec::new();
    for (item, (ids, phonemes)) in fixture.items.iter().zip(&ours) {
        if ids != &item.ids {
            mismatches.push(format!(
                "  {:?}\n    piper-tts: {:?}\n    vctts:     {:?}",
                item.text, item.phonemes, phonemes
            ));
        }
    }
    let n = fixture.items.len();
    let equal = n - mismatches.len();
    let rate = equal as f64 / n as f64;
    eprintln!(
        "{equal}/{n} items equal ({:.1}%); mismatches:\n{}",
        100.0 * rate,
        mismatches.join("\n")
    );
    assert!(
        rate >= 0.99,
        "only {equal}/{n} items have piper-tts's ids; mismatches:\n{}",
        mismatches.join("\n")
    );
}

#[test]
fn punctuation_reaches_the_model() {
    let espeak = espeak();
    let voice = voice();
    let sentences = piper::sentences("Well, is it? Yes; it is: really!", 400);
    let ids = piper::utterance_ids(&espeak, &voice, &sentences).unwrap();
    let flat: Vec<i64> = ids.iter().flatten().flat_map(|p| p.ids.clone()).collect();
    for p in [",", "?", ";", ":", "!"] {
        let id = voice.phoneme_ids(p).ids[2];
        assert!(
            flat.contains(&id),
            "{p} (id {id}) does not reach the model: {flat:?}"
        );
    }
    // A question is its own utterance, ending in `?` then EOS.
    let first = &ids[0][0].ids;
    let q = voice.phoneme_ids("?").ids[2];
    assert_eq!(first[first.len() - 3], q, "{first:?}");
}
