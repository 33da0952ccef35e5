//! English G2P as upstream's `text/english.py` (`en_G2p`, built on g2p_en):
//! normalise, tokenise like nltk's `TweetTokenizer`, and read each token from
//! GPT-SoVITS's CMU dictionary (its cache, hot words, minus the entries it
//! deletes), the name dictionary for title-case words, letter by letter for
//! unknown words of up to three letters, with the possessive rule, and by
//! splitting compounds at hyphens/apostrophes.
//!
//! Differences from upstream:
//! - g2p_en's neural model reads unknown words of four letters or more; it is
//!   not ported: such a word is spelled letter by letter here (the corpus
//!   generator refuses sentences that reach the model, so the rate is honest);
//! - compounds are split at non-letters only, where upstream asks
//!   `wordsegment` (unigram/bigram statistics) and may split inside letters;
//! - homographs (g2p_en's list, e.g. "read", "use", "project") are chosen by
//!   nltk's averaged-perceptron POS tagger upstream, whose data is not on
//!   PyPI; here the reading for the noun/other sense (g2p_en's second
//!   reading) is used unless the homograph's first POS is a noun.

mod normalize;
mod numbers;

pub use normalize::text_normalize;

use crate::g2p::data::{en_dict, en_homographs, en_names};
use crate::g2p::symbols::symbol_id;

fn is_letter(c: char) -> bool {
    c.is_alphabetic()
}

/// nltk `TweetTokenizer` for the characters left after normalisation
/// (ASCII letters, space and `' . , ? ! -`): words with inner apostrophes,
/// hyphens or underscores, plain words, runs of dots, and single marks.
pub(crate) fn tokenize(text: &str) -> Vec<String> {
    let c: Vec<char> = text.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < c.len() {
        if c[i].is_whitespace() {
            i += 1;
            continue;
        }
        if is_letter(c[i]) {
            // longest letter ( letter | ' - _ )+ letter
            let mut j = i + 1;
            let mut last_letter = i;
            while j < c.len() && (is_letter(c[j]) || "'-_".contains(c[j])) {
                if is_letter(c[j]) {
                    last_letter = j;
                }
                j += 1;
            }
            if last_letter > i && last_letter + 1 - i >= 3 {
                out.push(c[i..=last_letter].iter().collect());
                i = last_letter + 1;
                continue;
            }
        }
        if c[i].is_alphanumeric() || c[i] == '_' {
            let mut j = i;
            while j < c.len() && (c[j].is_alphanumeric() || c[j] == '_') {
                j += 1;
            }
            out.push(c[i..j].iter().collect());
            i = j;
            continue;
        }
        if c[i] == '.' {
            // ellipsis: a dot followed by (spaces and a dot) at least once
            let mut j = i + 1;
            let mut end = i + 1;
            loop {
                let mut k = j;
                while k < c.len() && c[k].is_whitespace() {
                    k += 1;
                }
                if k < c.len() && c[k] == '.' {
                    end = k + 1;
                    j = k + 1;
                } else {
                    break;
                }
            }
            out.push(c[i..end].iter().collect());
            i = end;
            continue;
        }
        out.push(c[i].to_string());
        i += 1;
    }
    out
}

fn letter_phones(c: char) -> Vec<String> {
    en_dict()
        .get(&c.to_ascii_lowercase().to_string())
        .cloned()
        .unwrap_or_default()
}

fn is_title(w: &str) -> bool {
    // Python str.istitle for a single word: first cased letter upper, the
    // rest lower (case-less characters may separate words).
    let mut prev_cased = false;
    let mut any = false;
    for c in w.chars() {
        if c.is_uppercase() {
            if prev_cased {
                return false;
            }
            prev_cased = true;
            any = true;
        } else if c.is_lowercase() {
            if !prev_cased {
                return false;
            }
            prev_cased = true;
            any = true;
        } else {
            prev_cased = false;
        }
    }
    any
}

/// `en_G2p.qryword`.
fn qryword(o_word: &str) -> Vec<String> {
    let word = o_word.to_lowercase();
    let n = word.chars().count();
    if n > 1 {
        if let Some(p) = en_dict().get(&word) {
            return p.clone();
        }
    }
    if is_title(o_word) {
        if let Some(p) = en_names().get(&word) {
            return p.clone();
        }
    }
    if n <= 3 {
        let mut phones = Vec::new();
        for c in word.chars() {
            if c == 'a' {
                phones.push("EY1".to_string());
            } else if !c.is_alphabetic() {
                phones.push(c.to_string());
            } else {
                phones.extend(letter_phones(c));
            }
        }
        return phones;
    }
    if let Some(stem) = word.strip_suffix("'s") {
        if !stem.is_empty() && stem.chars().all(|c| c.is_ascii_lowercase()) {
            let mut phones = qryword(stem);
            match phones.last().map(String::as_str) {
                Some("P" | "T" | "K" | "F" | "TH" | "HH") => phones.push("S".into()),
                Some("S" | "Z" | "SH" | "ZH" | "CH" | "JH") => {
                    phones.push("AH0".into());
                    phones.push("Z".into());
                }
                _ => phones.push("Z".into()),
            }
            return phones;
        }
    }
    let comps: Vec<&str> = word
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|s| !s.is_empty())
        .collect();
    if comps.len() > 1 {
        return comps.into_iter().flat_map(qryword).collect();
    }
    // upstream: g2p_en's neural model; here: letter by letter
    word.chars()
        .filter(|c| c.is_alphabetic())
        .flat_map(letter_phones)
        .collect()
}

/// Phones of normalised English text (`english.g2p`).
pub fn g2p(norm_text: &str) -> Vec<String> {
    let homographs = en_homographs();
    let mut prons: Vec<String> = Vec::new();
    for o_word in tokenize(norm_text) {
        let word = o_word.to_lowercase();
        let pron: Vec<String> = if !word.chars().any(|c| c.is_ascii_lowercase()) {
            vec![word.clone()]
        } else if word.chars().count() == 1 {
            if o_word == "A" {
                vec!["EY1".to_string()]
            } else {
                letter_phones(word.chars().next().unwrap_or('a'))
            }
        } else if let Some(h) = homographs.get(&word) {
            if h.pos.starts_with("NN") {
                h.first.clone()
            } else {
                h.second.clone()
            }
        } else {
            qryword(&o_word)
        };
        prons.extend(pron);
    }
    prons
        .into_iter()
        .filter(|p| !matches!(p.as_str(), " " | "<pad>" | "UW" | "</s>" | "<s>"))
        .map(|p| if p == "<unk>" { "UNK".to_string() } else { p })
        .filter_map(|p| {
            if symbol_id(&p).is_some() {
                Some(p)
            } else if p == "'" {
                Some("-".to_string())
            } else {
                None
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tweet_tokens() {
        assert_eq!(tokenize("don't stop, ok."), vec!["don't", "stop", ",", "ok", "."]);
        assert_eq!(
            tokenize("ninety-eight a.m."),
            vec!["ninety-eight", "a", ".", "m", "."]
        );
    }

    #[test]
    fn dictionary_letters_and_possessive() {
        assert_eq!(g2p("hello"), vec!["HH", "AH0", "L", "OW1"]);
        assert_eq!(g2p("A"), vec!["EY1"]);
        // unknown three-letter word: letters
        assert_eq!(
            g2p("xqz").len(),
            letter_phones('x').len() + letter_phones('q').len() + letter_phones('z').len()
        );
        let cat = qryword("cat");
        let mut cats = cat.clone();
        cats.push("S".into());
        assert_eq!(qryword("cat's"), cats);
    }

    #[test]
    fn punctuation_passes_through() {
        assert_eq!(g2p("yes, no."), vec!["Y", "EH1", "S", ",", "N", "OW1", "."]);
    }
}
