//! Properties of every text front end that takes user text, on arbitrary
//! Unicode (issue 16): normalisation and sentence splitting, the Piper
//! voice's sentences (OpenVoice), XTTS-v2's number expansion and cleaning,
//! GPT-SoVITS's cuts and grapheme-to-phoneme conversion. None panics, and
//! none makes more than a fixed factor of its input: text is spoken once, so
//! a short request can never turn into minutes of speech here (long digit
//! runs included, which are read in groups).

use super::{normalize, split_sentences};
use proptest::prelude::*;

/// At most this many output characters per input character (plus a constant).
const FACTOR: usize = 100;

fn bounded(input: &str, output_chars: usize) -> bool {
    output_chars <= FACTOR * input.chars().count() + 100
}

fn any_text() -> impl Strategy<Value = String> {
    prop_oneof![
        "\\PC{0,160}",
        "[0-9.,:/$€£%-]{1,200}",
        "[a-zA-Z0-9 ,.;:!?'\"()\\-\n\u{4e00}-\u{4e20}。！？，、$%€]{0,200}",
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn normalisation_is_bounded_and_splitting_respects_its_limit(
        text in any_text(),
        lang in prop::sample::select(vec!["en", "zh", "fr", "und", "de"]),
        max in 1usize..400,
    ) {
        let n = normalize(&text, lang);
        prop_assert!(bounded(&text, n.chars().count()), "{} chars from {}", n.chars().count(), text.chars().count());
        for piece in split_sentences(&n, max) {
            prop_assert!(piece.chars().count() <= max);
            prop_assert!(!piece.trim().is_empty());
        }
    }

    #[test]
    fn long_digit_runs_stay_bounded(digits in "[0-9]{1,600}", lang in prop::sample::select(vec!["en", "zh"])) {
        let n = normalize(&digits, lang);
        prop_assert!(bounded(&digits, n.chars().count()));
    }
}

#[cfg(feature = "openvoice")]
proptest! {
    #![proptest_config(ProptestConfig { cases: 128, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn piper_sentences_fit_the_limit(text in any_text(), max in 1usize..400) {
        for s in crate::openvoice::piper::sentences(&text, max) {
            prop_assert!(s.chars().count() <= max);
        }
    }
}

#[cfg(feature = "xtts")]
proptest! {
    #![proptest_config(ProptestConfig { cases: 64, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn xtts_expansion_and_cleaning_are_total_and_bounded(text in any_text()) {
        use crate::xtts::{numbers, tokenizer};
        for lang in tokenizer::LANGUAGES {
            let base = tokenizer::base_language(lang);
            let expanded = numbers::expand(&text, base);
            prop_assert!(bounded(&text, expanded.chars().count()), "{lang}: {}", expanded.chars().count());
            if let Ok(clean) = tokenizer::clean(&text, base) {
                prop_assert!(bounded(&text, clean.chars().count()), "{lang}: {}", clean.chars().count());
            }
        }
    }
}

#[cfg(feature = "gpt-sovits")]
proptest! {
    #![proptest_config(ProptestConfig { cases: 48, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn gpt_sovits_cuts_and_phones_are_total_and_bounded(
        text in any_text(),
        method in prop::sample::select(vec!["cut0", "cut1", "cut2", "cut3", "cut4", "cut5"]),
        zh in any::<bool>(),
    ) {
        use crate::g2p::{self, Cut, Lang};
        let lang = if zh { Lang::Zh } else { Lang::En };
        let cut = Cut::from_name(method).unwrap();
        for piece in g2p::cut_lang(&text, cut, lang) {
            if let Ok(phones) = g2p::phones(&piece, lang) {
                prop_assert!(phones.len() <= FACTOR * piece.chars().count() + 100);
            }
        }
    }
}
