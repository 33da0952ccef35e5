//! pypinyin 0.55's `lazy_pinyin(word, style=INITIALS / FINALS_TONE3,
//! neutral_tone_with_five=True)` as upstream calls it per word.
//!
//! pypinyin first splits a word into CJK and other runs; a CJK run is cut by
//! its forward maximum-matching segmenter over the prefixes of its phrase
//! dictionary (a prefix that is not itself a phrase still forms a token); a
//! token that is a phrase takes the phrase reading, any other token takes each
//! character's first reading. A non-CJK run is one item whose initial and
//! final are the run itself (how upstream recognises punctuation).
//!
//! The `pinyin` crate has per-character readings only, no phrases, so it
//! cannot reproduce pypinyin's polyphone choices; the tables here are
//! pypinyin's own (see `data.rs`).

use crate::g2p::data::{Syllable, zh_chars, zh_phrases};

/// pypinyin's `RE_HANS` character classes.
pub(crate) fn is_han(c: char) -> bool {
    matches!(c as u32,
        0x3007 | 0xe815..=0xe864 | 0xfa18 | 0x3400..=0x4dbf | 0x4e00..=0x9fff | 0xf900..=0xfaff
        | 0x20000..=0x2a6df | 0x2a703..=0x2b73f | 0x2b740..=0x2b81d | 0x2f80a..=0x2fa1f)
}

/// pypinyin's `mmseg.seg.cut` as configured (`no_non_phrases = True`):
/// extend the word one character at a time while it is a prefix of some
/// phrase, remember the longest one that is a phrase, and emit it; with no
/// phrase, emit one character.
fn mmseg(text: &str) -> Vec<String> {
    let p = zh_phrases();
    let chars: Vec<char> = text.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let mut best = 0;
        let mut word = String::new();
        for (k, c) in chars[i..].iter().enumerate() {
            word.push(*c);
            if !p.prefixes.contains(&word) {
                break;
            }
            if p.phrases.contains(&word) {
                best = k + 1;
            }
        }
        let take = best.max(1);
        out.push(chars[i..i + take].iter().collect());
        i += take;
    }
    out
}

fn char_reading(c: char) -> Syllable {
    zh_chars()
        .get(&c)
        .cloned()
        .unwrap_or_else(|| (c.to_string(), c.to_string()))
}

/// Initials and finals (tone 1-5) of `word`, one item per character of each
/// CJK run and one per non-CJK run.
pub fn lazy_pinyin(word: &str) -> Vec<Syllable> {
    let mut out = Vec::new();
    let mut run = String::new();
    let mut run_han = None::<bool>;
    for c in word.chars() {
        let h = is_han(c);
        if let Some(r) = run_han {
            if r != h {
                flush(&mut run, r, &mut out);
            }
        }
        run_han = Some(h);
        run.push(c);
    }
    if let Some(h) = run_han {
        flush(&mut run, h, &mut out);
    }
    out
}

fn flush(run: &mut String, han: bool, out: &mut Vec<Syllable>) {
    if run.is_empty() {
        return;
    }
    if han {
        let p = zh_phrases();
        for tok in mmseg(run) {
            if let Some(r) = p.readings.get(&tok) {
                out.extend(r.iter().cloned());
            } else {
                out.extend(tok.chars().map(char_reading));
            }
        }
    } else {
        out.push((run.clone(), run.clone()));
    }
    run.clear();
}

/// Finals only (`Style.FINALS_TONE3`).
pub fn finals(word: &str) -> Vec<String> {
    lazy_pinyin(word).into_iter().map(|(_, f)| f).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fin(w: &str) -> String {
        finals(w).join(" ")
    }

    #[test]
    fn phrase_readings_resolve_polyphones() {
        assert_eq!(fin("银行"), "in2 ang2");
        assert_eq!(fin("行长"), "ang2 ang3");
        assert_eq!(fin("长大"), "ang3 a4");
        // "一百二十" is only a prefix ("一百二十行"): the phrase "一百" is used
        assert_eq!(fin("一百二十"), "i4 ai3 er4 i2");
    }

    #[test]
    fn initials_and_zero_initials() {
        let r = lazy_pinyin("中国");
        assert_eq!(r[0], ("zh".into(), "ong1".into()));
        let r = lazy_pinyin("一");
        assert_eq!(r[0].0, "");
    }

    #[test]
    fn non_han_runs_are_single_items() {
        let r = lazy_pinyin("好,");
        assert_eq!(r.len(), 2);
        assert_eq!(r[1], (",".into(), ",".into()));
    }
}
