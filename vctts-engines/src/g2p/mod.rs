//! The GPT-SoVITS v2 text front end: segmentation, Chinese and English G2P,
//! mixed-language splitting and the v2 phone symbol table, written to match
//! upstream GPT-SoVITS's `text/` package phone for phone.
//!
//! Entry points: [`cut`] splits a long text into the pieces synthesized one by
//! one; [`segments`] turns one piece into language segments with phones,
//! `word2ph` and the normalised text; [`phone_ids`] maps phones to model ids.
//!
//! Invariants: for a Chinese segment `word2ph.len()` equals the number of
//! characters of `norm_text` and `word2ph` sums to `phones.len()`; English
//! segments have an empty `word2ph`. No function panics on any input.
//!
//! Proof: `tests/g2p.rs` compares every sentence of
//! `tests/fixtures/g2p/corpus.json` (upstream's output, made by
//! `scripts/fixtures/make_g2p_corpus.py`) and every cut method on a set of
//! paragraphs. Known differences from upstream (details in each module):
//! - polyphones follow upstream's pypinyin path, not the g2pW neural model
//!   (its weights come from a model hub, see `zh`);
//! - the zh/en split approximates `split-lang` + fastText (`langseg`); text
//!   that upstream's detector calls neither language can lose punctuation
//!   upstream (its `full_cjk` filter) and keeps it here;
//! - English words outside the dictionary that upstream reads with g2p_en's
//!   neural model are spelled letter by letter, compounds split at
//!   non-letters only, homographs read without nltk's POS tagger (`en`);
//! - `clean_text`'s special marks ("￥" → SP2, "^" → SP3 pauses) are not
//!   handled; they are dropped like other symbols.

mod cut;
mod data;
pub mod en;
mod langseg;
mod symbols;
pub mod zh;

pub use cut::{Cut, cut, cut_lang};
pub use symbols::{SYMBOLS_V2, UNK, phone_ids, symbol_id};

/// A language the front end speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Lang {
    /// Mandarin Chinese (mixed with English words, as upstream's "zh").
    Zh,
    /// English.
    En,
}

impl Lang {
    /// Upstream's language code.
    pub fn code(self) -> &'static str {
        match self {
            Lang::Zh => "zh",
            Lang::En => "en",
        }
    }
}

/// One language run of a text piece after G2P.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Segment {
    /// The language the run was converted in.
    pub lang: Lang,
    /// v2 phone symbols.
    pub phones: Vec<String>,
    /// Phones per character of `norm_text` (Chinese only; empty for English).
    pub word2ph: Vec<usize>,
    /// The normalised text the phones were made from.
    pub norm_text: String,
}

fn convert(text: &str, lang: Lang) -> vctts_core::Result<Segment> {
    match lang {
        Lang::Zh => {
            let norm = zh::text_normalize(text);
            let (phones, word2ph) = zh::g2p(&norm)?;
            Ok(Segment {
                lang,
                phones,
                word2ph,
                norm_text: norm,
            })
        }
        Lang::En => {
            let norm = en::text_normalize(text);
            let mut phones = en::g2p(&norm);
            if phones.len() < 4 {
                phones.insert(0, ",".to_string());
            }
            Ok(Segment {
                lang,
                phones,
                word2ph: Vec::new(),
                norm_text: norm,
            })
        }
    }
}

fn segments_once(text: &str, lang: Lang) -> vctts_core::Result<Vec<Segment>> {
    let parts: Vec<(Lang, String)> = match lang {
        Lang::En => vec![(Lang::En, text.to_string())],
        Lang::Zh => langseg::split(text)
            .into_iter()
            .map(|(en, t)| (if en { Lang::En } else { Lang::Zh }, t))
            .collect(),
    };
    parts.iter().map(|(l, t)| convert(t, *l)).collect()
}

/// Converts one text piece (one item of [`cut`]) to language segments with
/// phones, as upstream's `TextPreprocessor.get_phones_and_bert` does without
/// the BERT features: for [`Lang::Zh`] the text is split into English and
/// non-English runs, each converted in its language; when all segments
/// together have fewer than 6 phones the text is converted again with "."
/// in front. Runs of two or more spaces collapse to one first.
pub fn segments(text: &str, lang: Lang) -> vctts_core::Result<Vec<Segment>> {
    if text.trim().is_empty() {
        return Err(vctts_core::Error::EmptyText);
    }
    let mut t = String::with_capacity(text.len());
    for c in text.chars() {
        if c == ' ' && t.ends_with(' ') {
            continue;
        }
        t.push(c);
    }
    let segs = segments_once(&t, lang)?;
    let n: usize = segs.iter().map(|s| s.phones.len()).sum();
    if n < 6 {
        return segments_once(&format!(".{t}"), lang);
    }
    Ok(segs)
}

/// All phones of [`segments`], concatenated (what the model reads).
pub fn phones(text: &str, lang: Lang) -> vctts_core::Result<Vec<String>> {
    Ok(segments(text, lang)?.into_iter().flat_map(|s| s.phones).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zh_segment_invariants() {
        let segs = segments("银行的行长走在人行道上。", Lang::Zh).unwrap();
        assert_eq!(segs.len(), 1);
        let s = &segs[0];
        assert_eq!(s.word2ph.len(), s.norm_text.chars().count());
        assert_eq!(s.word2ph.iter().sum::<usize>(), s.phones.len());
        assert_eq!(s.phones[2..4], ["h", "ang2"]);
    }

    #[test]
    fn mixed_text_gives_en_segments() {
        let segs = segments("我们用Python写程序。", Lang::Zh).unwrap();
        let langs: Vec<Lang> = segs.iter().map(|s| s.lang).collect();
        assert_eq!(langs, vec![Lang::Zh, Lang::En, Lang::Zh]);
        assert!(segs[1].word2ph.is_empty());
    }

    #[test]
    fn short_english_gets_a_comma_and_short_text_a_dot() {
        let segs = segments("Hi.", Lang::En).unwrap();
        assert!(segs[0].norm_text.starts_with('.'));
        let segs = segments("我", Lang::Zh).unwrap();
        assert_eq!(segs[0].phones[0], ".");
    }

    #[test]
    fn empty_text_is_an_error() {
        assert_eq!(segments("  ", Lang::Zh).unwrap_err().code(), "empty_text");
    }
}
