//! From text to what the T2S model takes: phone ids and, per phone, a BERT
//! feature row.
//!
//! The G2P is [`crate::g2p`] (upstream's front end in Rust). As upstream's
//! `TextPreprocessor`: Chinese segments get chinese-roberta features
//! (hidden_states[-3] of the characters of `norm_text`, without CLS/SEP,
//! each character's row repeated `word2ph[i]` times); other segments get
//! zero rows; segments are concatenated in order.
//!
//! The BERT tokenizer here maps each character of a Chinese `norm_text` to
//! one vocabulary entry (as BERT's basic tokenizer does for CJK characters
//! and punctuation; ASCII is lower-cased; unknown characters are `[UNK]`),
//! which is what upstream relies on when it asserts one token per
//! character.
//!
//! Invariants: `bert.len() == ids.len() * bert_dim`; a segment whose
//! `word2ph` does not add up to its phones is an error, never a panic.

use super::model::Graphs;
use crate::g2p::{self, Lang};
use std::collections::HashMap;
use std::path::Path;
use vctts_core::{Error, Result};

/// The languages this engine speaks.
pub const LANGUAGES: [&str; 2] = ["zh", "en"];

/// Parses a request's language code (`zh`, `zh-CN`, `cmn`, `en`, `en-US`...).
pub fn parse_language(code: &str) -> Option<Lang> {
    let family = code.split(['-', '_']).next().unwrap_or("").to_ascii_lowercase();
    match family.as_str() {
        "zh" | "cmn" | "all_zh" => Some(Lang::Zh),
        "en" => Some(Lang::En),
        _ => None,
    }
}

/// The canonical code of a language.
pub fn language_code(lang: Lang) -> &'static str {
    match lang {
        Lang::Zh => "zh",
        Lang::En => "en",
    }
}

/// Whether `c` is a CJK ideograph.
pub fn is_han(c: char) -> bool {
    matches!(c as u32, 0x3400..=0x4DBF | 0x4E00..=0x9FFF | 0xF900..=0xFAFF | 0x20000..=0x2FA1F)
}

/// The BERT vocabulary (`vocab.txt`, one token a line).
#[derive(Debug, Clone)]
pub struct Vocab {
    ids: HashMap<String, i64>,
    unk: i64,
    cls: i64,
    sep: i64,
}

impl Vocab {
    /// Reads `vocab.txt`.
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| Error::ModelLoad(format!("{}: {e}", path.display())))?;
        Self::parse(&text).map_err(|m| Error::ModelLoad(format!("{}: {m}", path.display())))
    }

    /// Parses the lines of a vocabulary.
    pub fn parse(text: &str) -> std::result::Result<Self, String> {
        let ids: HashMap<String, i64> = text
            .lines()
            .enumerate()
            .map(|(i, l)| (l.trim_end_matches('\r').to_string(), i as i64))
            .collect();
        let get = |t: &str| {
            ids.get(t)
                .copied()
                .ok_or_else(|| format!("{t} is not in the vocabulary"))
        };
        Ok(Self {
            unk: get("[UNK]")?,
            cls: get("[CLS]")?,
            sep: get("[SEP]")?,
            ids,
        })
    }

    /// `[CLS]`, one id per character, `[SEP]`.
    pub fn encode_chars(&self, text: &str) -> Vec<i64> {
        let mut out = vec![self.cls];
        for c in text.chars() {
            let key = c.to_lowercase().collect::<String>();
            out.push(self.ids.get(&key).copied().unwrap_or(self.unk));
        }
        out.push(self.sep);
        out
    }
}

/// Phones and their BERT rows.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Phones {
    /// Phone ids (v2 symbol table).
    pub ids: Vec<i64>,
    /// `ids.len() × bert_dim` features, row-major.
    pub bert: Vec<f32>,
}

/// Phones and BERT features of `text` in `lang`.
pub fn phones(graphs: &mut Graphs, vocab: &Vocab, text: &str, lang: Lang) -> Result<Phones> {
    let dim = graphs.meta.bert_dim;
    let max_chars = graphs.meta.bert_max_positions.saturating_sub(2);
    let mut out = Phones::default();
    for seg in g2p::segments(text, lang)? {
        let ids = g2p::phone_ids(&seg.phones);
        if ids.is_empty() {
            continue;
        }
        let chinese = matches!(seg.lang, Lang::Zh) && !seg.word2ph.is_empty();
        if chinese {
            let chars = seg.norm_text.chars().count();
            let total: usize = seg.word2ph.iter().sum();
            if chars != seg.word2ph.len() || total != ids.len() {
                return Err(Error::Internal(format!(
                    "front end: {:?} has {chars} characters, {} word2ph entries for {} phones (sum {total})",
                    seg.norm_text,
                    seg.word2ph.len(),
                    ids.len()
                )));
            }
            if chars > max_chars {
                return Err(Error::invalid(
                    "text",
                    format!("a Chinese sentence of {chars} characters is longer than BERT's {max_chars}"),
                ));
            }
            let feats = graphs.bert(&vocab.encode_chars(&seg.norm_text))?;
            for (row, &n) in feats.chunks_exact(dim).zip(&seg.word2ph) {
                for _ in 0..n {
                    out.bert.extend_from_slice(row);
                }
            }
        } else {
            out.bert.extend(std::iter::repeat_n(0.0, ids.len() * dim));
        }
        out.ids.extend(ids);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn languages_parse() {
        assert!(matches!(parse_language("zh-CN"), Some(Lang::Zh)));
        assert!(matches!(parse_language("EN_us"), Some(Lang::En)));
        assert!(parse_language("ja").is_none());
        assert!(parse_language("").is_none());
        assert!(is_han('你') && !is_han('a') && !is_han('。'));
    }

    #[test]
    fn vocab_maps_characters_one_to_one() {
        let v = Vocab::parse("[PAD]\n[UNK]\n[CLS]\n[SEP]\n你\n好\na\n。\n").unwrap();
        assert_eq!(v.encode_chars("你好A。x"), vec![2, 4, 5, 6, 7, 1, 3]);
        assert!(Vocab::parse("[PAD]\n").is_err());
    }
}
