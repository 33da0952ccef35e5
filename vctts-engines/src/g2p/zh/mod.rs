//! Chinese G2P as upstream's `text/chinese2.py` on its pypinyin path:
//! normalise, split after each punctuation mark, drop Latin letters, cut and
//! POS-tag words with jieba, merge words for tone sandhi, read each word with
//! pypinyin, apply tone sandhi and erhua, and map initials/finals to the v2
//! opencpop symbols. `word2ph` counts the phones of each character of the
//! normalised text (2 per syllable, 1 per punctuation mark).
//!
//! Differences from upstream, by design or necessity:
//! - upstream v2 resolves polyphones with the g2pW neural model when its
//!   weights are installed (`is_g2pw = True` at HEAD); its weights come from a
//!   model hub and are not part of any package, so this follows upstream's
//!   pypinyin path (`is_g2pw = False`), which is what the corpus records;
//! - word segmentation follows jieba_fast's `posseg` (see `posseg.rs`): the
//!   dictionary route comes from `jieba-rs` (same dictionary), unknown runs
//!   from jieba's POS HMM tables.

pub(crate) mod normalize;
pub(crate) mod pinyin;
mod posseg;
pub(crate) mod sandhi;

use crate::g2p::data::zh_opencpop;
use std::sync::OnceLock;

pub use normalize::text_normalize;

pub(crate) fn jieba() -> &'static jieba_rs::Jieba {
    static J: OnceLock<jieba_rs::Jieba> = OnceLock::new();
    J.get_or_init(jieba_rs::Jieba::new)
}

const PUNCT: &[char] = &['!', '?', '…', ',', '.', '-'];

/// Splits after every punctuation mark (and the spaces after it), dropping
/// pieces that are only whitespace.
fn split_clauses(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut after_punct = false;
    for c in text.chars() {
        if after_punct && c.is_whitespace() {
            continue;
        }
        if after_punct {
            out.push(std::mem::take(&mut cur));
            after_punct = false;
        }
        cur.push(c);
        if PUNCT.contains(&c) {
            after_punct = true;
        }
    }
    out.push(cur);
    out.into_iter().filter(|s| !s.trim().is_empty()).collect()
}

/// Maps an initial and a toned final to the two v2 symbols.
fn to_symbols(c: &str, v: &str) -> Option<[String; 2]> {
    let tone = v.chars().last()?;
    if !('1'..='5').contains(&tone) {
        return None;
    }
    let bare = &v[..v.len() - 1];
    let pinyin = if !c.is_empty() {
        let f = match bare {
            "uei" => "ui",
            "iou" => "iu",
            "uen" => "un",
            f => f,
        };
        format!("{c}{f}")
    } else {
        match bare {
            "ing" => "ying".to_string(),
            "i" => "yi".to_string(),
            "in" => "yin".to_string(),
            "u" => "wu".to_string(),
            _ => {
                let mut it = bare.chars();
                match it.next() {
                    Some('v') => format!("yu{}", it.as_str()),
                    Some('i') => format!("y{}", it.as_str()),
                    Some('u') => format!("w{}", it.as_str()),
                    _ => bare.to_string(),
                }
            }
        }
    };
    let (ic, fv) = zh_opencpop().get(&pinyin)?;
    Some([ic.clone(), format!("{fv}{tone}")])
}

/// Phones and `word2ph` of normalised Chinese text (`chinese2.g2p`).
pub fn g2p(norm_text: &str) -> vctts_core::Result<(Vec<String>, Vec<usize>)> {
    let mut phones = Vec::new();
    let mut word2ph = Vec::new();
    for clause in split_clauses(norm_text) {
        let seg: String = clause.chars().filter(|c| !c.is_ascii_alphabetic()).collect();
        let words: Vec<sandhi::Word> = posseg::lcut(&seg);
        let words = sandhi::pre_merge(words);
        let mut initials = Vec::new();
        let mut finals = Vec::new();
        for (word, pos) in &words {
            if pos == "eng" {
                continue;
            }
            let (ini, fin): (Vec<String>, Vec<String>) = pinyin::lazy_pinyin(word).into_iter().unzip();
            let fin = sandhi::modified_tone(word, pos, fin);
            let (ini, fin) = sandhi::merge_erhua(ini, fin, word, pos);
            initials.extend(ini);
            finals.extend(fin);
        }
        for (c, v) in initials.iter().zip(&finals) {
            if c == v {
                phones.push(c.clone());
                word2ph.push(1);
            } else {
                let pair = to_symbols(c, v).ok_or_else(|| {
                    vctts_core::Error::invalid(
                        "text",
                        format!("no v2 phones for the pinyin {c}{v} in {clause:?}"),
                    )
                })?;
                phones.extend(pair);
                word2ph.push(2);
            }
        }
    }
    Ok((phones, word2ph))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clause_split_after_marks() {
        assert_eq!(split_clauses("你好,世界.再见"), vec!["你好,", "世界.", "再见"]);
    }

    #[test]
    fn symbols_follow_opencpop() {
        assert_eq!(
            to_symbols("zh", "ong1").unwrap(),
            ["zh".to_string(), "ong1".to_string()]
        );
        assert_eq!(to_symbols("", "i1").unwrap(), ["y".to_string(), "i1".to_string()]);
        assert_eq!(
            to_symbols("sh", "i4").unwrap(),
            ["sh".to_string(), "ir4".to_string()]
        );
        assert_eq!(
            to_symbols("", "a1").unwrap(),
            ["AA".to_string(), "a1".to_string()]
        );
        assert!(to_symbols("x", "zz9").is_none());
    }

    #[test]
    fn g2p_counts_phones_per_character() {
        let norm = text_normalize("你好，世界。");
        let (p, w) = g2p(&norm).unwrap();
        assert_eq!(w.len(), norm.chars().count());
        assert_eq!(w.iter().sum::<usize>(), p.len());
        assert_eq!(p[..4], ["n", "i2", "h", "ao3"]);
    }
}
