//! The GPT-SoVITS v2 text front end against upstream's own output.
//!
//! `tests/fixtures/g2p/corpus.json` holds sentences (Chinese, English, mixed)
//! with the phones, `word2ph` and normalised text that upstream GPT-SoVITS's
//! `text/` package produced for them (made by
//! `scripts/fixtures/make_g2p_corpus.py`). The Rust front end must match at
//! least 99% of the sentences exactly; every mismatch is printed.
#![cfg(feature = "gpt-sovits")]

use serde::Deserialize;
use vctts_engines::g2p::{Cut, Lang, SYMBOLS_V2, cut_lang, phone_ids, segments};

#[derive(Deserialize)]
struct Seg {
    lang: String,
    phones: Vec<String>,
    word2ph: Vec<usize>,
    norm_text: String,
}

#[derive(Deserialize)]
struct Sentence {
    text: String,
    lang: String,
    segments: Vec<Seg>,
}

#[derive(Deserialize)]
struct CutCase {
    text: String,
    lang: String,
    method: String,
    pieces: Vec<String>,
}

#[derive(Deserialize)]
struct Corpus {
    sentences: Vec<Sentence>,
    cuts: Vec<CutCase>,
}

fn corpus() -> Corpus {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/g2p/corpus.json");
    let text = std::fs::read_to_string(path).expect("corpus fixture");
    serde_json::from_str(&text).expect("corpus json")
}

fn render(lang: &str, phones: &[String], w2p: &[usize], norm: &str) -> String {
    format!("{lang}[{norm}] {} | {:?}", phones.join(" "), w2p)
}

#[test]
fn corpus_matches_upstream() {
    let c = corpus();
    assert!(
        c.sentences.len() >= 300,
        "corpus has {} sentences",
        c.sentences.len()
    );
    let mut ok = 0usize;
    let mut mismatches = Vec::new();
    for s in &c.sentences {
        let lang = if s.lang == "en" { Lang::En } else { Lang::Zh };
        let want: Vec<String> = s
            .segments
            .iter()
            .map(|g| render(&g.lang, &g.phones, &g.word2ph, &g.norm_text))
            .collect();
        let got: Vec<String> = match segments(&s.text, lang) {
            Ok(segs) => segs
                .iter()
                .map(|g| render(g.lang.code(), &g.phones, &g.word2ph, &g.norm_text))
                .collect(),
            Err(e) => vec![format!("error: {e}")],
        };
        if got == want {
            ok += 1;
        } else {
            mismatches.push(format!(
                "{}\n  upstream: {}\n  vctts:    {}",
                s.text,
                want.join(" || "),
                got.join(" || ")
            ));
        }
    }
    let rate = ok as f64 / c.sentences.len() as f64;
    for m in &mismatches {
        println!("MISMATCH {m}");
    }
    println!(
        "g2p corpus: {ok}/{} sentences equal to upstream ({:.2}%)",
        c.sentences.len(),
        rate * 100.0
    );
    assert!(
        rate >= 0.99,
        "only {:.2}% of sentences match upstream",
        rate * 100.0
    );
}

#[test]
fn cut_methods_match_upstream() {
    let c = corpus();
    assert!(c.cuts.len() >= 60);
    let mut bad = Vec::new();
    for k in &c.cuts {
        let method = Cut::from_name(&k.method).expect("method name");
        let lang = if k.lang == "en" { Lang::En } else { Lang::Zh };
        let got = cut_lang(&k.text, method, lang);
        if got != k.pieces {
            bad.push(format!(
                "{} {:?}\n  upstream: {:?}\n  vctts:    {:?}",
                k.method, k.text, k.pieces, got
            ));
        }
    }
    for b in &bad {
        println!("CUT MISMATCH {b}");
    }
    assert!(
        bad.is_empty(),
        "{} of {} cut cases differ from upstream",
        bad.len(),
        c.cuts.len()
    );
}

#[test]
fn phone_ids_cover_every_corpus_phone() {
    let c = corpus();
    let unk = SYMBOLS_V2.iter().position(|s| *s == "UNK").unwrap() as i64;
    for s in &c.sentences {
        for g in &s.segments {
            for (p, id) in g.phones.iter().zip(phone_ids(&g.phones)) {
                assert!(id != unk || p == "UNK", "{p} maps to UNK");
                assert_eq!(SYMBOLS_V2[id as usize], p);
            }
        }
    }
}

mod no_panics {
    use proptest::prelude::*;
    use vctts_engines::g2p::{Cut, Lang, cut, cut_lang, segments};

    fn text() -> impl Strategy<Value = String> {
        // Chinese, Latin, digits, marks, symbols and some odd characters.
        proptest::collection::vec(
            prop_oneof![
                proptest::char::range('\u{4e00}', '\u{4fff}'),
                proptest::char::range('a', 'z'),
                proptest::char::range('A', 'Z'),
                proptest::char::range('0', '9'),
                proptest::sample::select(vec![
                    '，', '。', '！', '？', '、', '：', '；', '…', '~', '-', '.', ',', '!', '?', ' ', '\n',
                    '%', '/', '°', '℃', '$', '£', ':', '儿', '一', '不', '个', 'か', '한', '😀', '\u{0301}',
                    'é'
                ]),
            ],
            0..40,
        )
        .prop_map(|v| v.into_iter().collect())
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 200, failure_persistence: None, ..ProptestConfig::default() })]
        #[test]
        fn front_end_never_panics_and_keeps_its_invariants(t in text()) {
            for lang in [Lang::Zh, Lang::En] {
                if let Ok(segs) = segments(&t, lang) {
                    for s in segs {
                        if s.lang == Lang::Zh {
                            prop_assert_eq!(s.word2ph.len(), s.norm_text.chars().count());
                            prop_assert_eq!(s.word2ph.iter().sum::<usize>(), s.phones.len());
                        } else {
                            prop_assert!(s.word2ph.is_empty());
                        }
                    }
                }
            }
            for m in [Cut::Cut0, Cut::Cut1, Cut::Cut2, Cut::Cut3, Cut::Cut4, Cut::Cut5] {
                let _ = cut(&t, m);
                let _ = cut_lang(&t, m, Lang::En);
            }
        }
    }
}
