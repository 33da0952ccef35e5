//! The text front ends that take user text: normalisation and sentence
//! splitting (`vctts_engines::text`), the Piper voice's sentence preparation
//! (OpenVoice), XTTS-v2's number expansion and per-language cleaning, and
//! GPT-SoVITS's cuts and grapheme-to-phoneme front end. No panic on any
//! Unicode; outputs stay bounded (no piece longer than asked for, no output
//! more than a fixed factor of the input).
#![no_main]

use libfuzzer_sys::fuzz_target;
use vctts_engines::g2p::{self, Cut, Lang};
use vctts_engines::text::{normalize, split_sentences};
use vctts_engines::{openvoice::piper, xtts};

const LANGS: [&str; 8] = ["en", "zh", "fr", "de", "und", "ja", "ko", "ru"];
const CUTS: [Cut; 6] = [Cut::Cut0, Cut::Cut1, Cut::Cut2, Cut::Cut3, Cut::Cut4, Cut::Cut5];

fn bounded(input: &str, output: &str, what: &str) {
    let (i, o) = (input.chars().count(), output.chars().count());
    assert!(o <= 100 * i + 100, "{what}: {i} chars in, {o} out");
}

fuzz_target!(|data: &[u8]| {
    let Some((&sel, rest)) = data.split_first() else {
        return;
    };
    if rest.len() > 4096 {
        return;
    }
    let text = String::from_utf8_lossy(rest);
    let lang = LANGS[sel as usize % LANGS.len()];
    let max = 1 + (sel as usize >> 3) % 400;

    let n = normalize(&text, lang);
    bounded(&text, &n, "normalize");
    for piece in split_sentences(&n, max) {
        assert!(
            piece.chars().count() <= max,
            "a piece of {} chars over {max}",
            piece.chars().count()
        );
        assert!(!piece.trim().is_empty());
    }
    for s in piper::sentences(&text, 400) {
        assert!(s.chars().count() <= 400);
    }

    let xl = xtts::tokenizer::base_language(lang);
    let xl = if xl.is_empty() { "en" } else { xl };
    let expanded = xtts::numbers::expand(&text, xl);
    bounded(&text, &expanded, "xtts expand");
    if let Ok(clean) = xtts::tokenizer::clean(&text, xl) {
        bounded(&text, &clean, "xtts clean");
    }

    let glang = if sel & 1 == 0 { Lang::Zh } else { Lang::En };
    for piece in g2p::cut_lang(&text, CUTS[sel as usize % CUTS.len()], glang) {
        if let Ok(phones) = g2p::phones(&piece, glang) {
            assert!(phones.len() <= 100 * piece.chars().count() + 100);
        }
    }
});
