//! Splitting mixed Chinese/English text into language runs, approximating
//! upstream's `text/LangSegmenter` (which wraps the `split-lang` package and
//! a fastText language detector) for the "zh" language, where only English
//! versus non-English matters.
//!
//! Rules: CJK characters are Chinese; runs of Latin letters (with the spaces,
//! apostrophes and symbols such as `° ℃ /` around them) are English;
//! punctuation and spaces join the run before them; digit runs are given a
//! language by upstream's own digit rules (`LangSegmenter.getTexts`,
//! "have_num"). Neighbouring runs of the same kind are merged.
//!
//! This is not `split-lang`'s full heuristic set (it also merges short runs
//! by detector confidence); the corpus measures how often the two agree.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Zh,
    En,
    Digit,
    Punct,
}

fn is_cjk(c: char) -> bool {
    matches!(c as u32, 0x4e00..=0x9fff | 0x3400..=0x4db5 | 0x20000..=0x2a6dd | 0x2a700..=0x2ebef | 0x30000..=0x323af | 0xf900..=0xfaff)
}

const SENT_PUNCT: &[char] = &[',', '.', '!', '?', '，', '。', '！', '？'];

fn is_punct(c: char) -> bool {
    c.is_whitespace()
        || c.is_ascii_punctuation() && !"/&@#$^*+=<>|\\`_".contains(c)
        || matches!(
            c,
            '，' | '。'
                | '！'
                | '？'
                | '、'
                | '；'
                | '：'
                | '“'
                | '”'
                | '‘'
                | '’'
                | '（'
                | '）'
                | '《'
                | '》'
                | '…'
                | '—'
                | '～'
                | '·'
                | '【'
                | '】'
        )
}

fn kind(c: char) -> Kind {
    if is_cjk(c) {
        Kind::Zh
    } else if c.is_ascii_digit() {
        Kind::Digit
    } else if is_punct(c) {
        Kind::Punct
    } else {
        Kind::En
    }
}

/// Language runs of `text`: `(is_english, text)`, in order, covering all of it.
// The digit rules keep upstream's branch order, some branches give the same answer.
#[allow(clippy::if_same_then_else)]
pub(crate) fn split(text: &str) -> Vec<(bool, String)> {
    // 1. raw runs, decimal points kept inside digit runs
    let chars: Vec<char> = text.chars().collect();
    let mut runs: Vec<(Kind, String)> = Vec::new();
    for (i, &c) in chars.iter().enumerate() {
        let mut k = kind(c);
        if c == '.'
            && i > 0
            && chars[i - 1].is_ascii_digit()
            && chars.get(i + 1).is_some_and(|n| n.is_ascii_digit())
        {
            k = Kind::Digit;
        }
        match runs.last_mut() {
            Some((lk, s)) if *lk == k => s.push(c),
            _ => runs.push((k, c.to_string())),
        }
    }
    // 2. punctuation joins the run before it (or the one after, at the start);
    //    spaces between two English runs stay English.
    let mut items: Vec<(Kind, String)> = Vec::new();
    let mut pending = String::new();
    for (k, s) in runs {
        if k == Kind::Punct {
            match items.last_mut() {
                Some((_, prev)) => prev.push_str(&s),
                None => pending.push_str(&s),
            }
            continue;
        }
        let s = if pending.is_empty() {
            s
        } else {
            format!("{}{s}", std::mem::take(&mut pending))
        };
        match items.last_mut() {
            Some((lk, prev)) if *lk == k => prev.push_str(&s),
            _ => items.push((k, s)),
        }
    }
    if !pending.is_empty() {
        items.push((Kind::Zh, pending));
    }
    // 3. upstream's digit rules
    let n = items.len();
    let mut out: Vec<(Kind, String)> = Vec::new();
    for i in 0..n {
        let (k, s) = items[i].clone();
        let k = if k != Kind::Digit {
            k
        } else if let (Some(prev), true) = (out.last(), i == n - 1) {
            prev.0
        } else if out.is_empty() && i + 1 < n {
            items[1].0
        } else if let (Some(prev), true) = (out.last(), i + 1 < n) {
            let next = &items[i + 1];
            if prev.0 == next.0 {
                prev.0
            } else if prev.1.chars().last().is_some_and(|c| SENT_PUNCT.contains(&c)) {
                next.0
            } else if next.1.chars().next().is_some_and(|c| SENT_PUNCT.contains(&c)) {
                prev.0
            } else if s.ends_with(['。', '.']) {
                prev.0
            } else if prev.1.chars().count() >= next.1.chars().count() {
                prev.0
            } else {
                next.0
            }
        } else {
            Kind::Zh
        };
        // a digit item followed by another digit item resolves later
        let k = if k == Kind::Digit { Kind::Zh } else { k };
        match out.last_mut() {
            Some((lk, prev)) if *lk == k => prev.push_str(&s),
            _ => out.push((k, s)),
        }
    }
    out.into_iter().map(|(k, s)| (k == Kind::En, s)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn show(t: &str) -> Vec<String> {
        split(t)
            .into_iter()
            .map(|(en, s)| format!("{}:{s}", if en { "en" } else { "zh" }))
            .collect()
    }

    #[test]
    fn latin_words_split_out_with_following_marks() {
        assert_eq!(
            show("我今天用iPhone拍了照片。"),
            vec!["zh:我今天用", "en:iPhone", "zh:拍了照片。"]
        );
        assert_eq!(show("明天有一个meeting。"), vec!["zh:明天有一个", "en:meeting。"]);
        assert_eq!(show("Hello，你好吗？"), vec!["en:Hello，", "zh:你好吗？"]);
        assert_eq!(
            show("我喜欢Harry Potter这本书。"),
            vec!["zh:我喜欢", "en:Harry Potter", "zh:这本书。"]
        );
    }

    #[test]
    fn digits_follow_upstream_rules() {
        assert_eq!(show("他跑了10km。"), vec!["zh:他跑了10", "en:km。"]);
        assert_eq!(
            show("这里有1/3的人是学生。"),
            vec!["zh:这里有1", "en:/", "zh:3的人是学生。"]
        );
        assert_eq!(show("今天是2024年3月5日。"), vec!["zh:今天是2024年3月5日。"]);
    }
}
