//! Text segmentation before G2P, as upstream GPT-SoVITS's
//! `TTS_infer_pack/TextPreprocessor.pre_seg_text` with the `cut0`..`cut5`
//! methods of `text_segmentation_method.py`.
//!
//! Invariants (all as upstream):
//! - runs of the punctuation `! ? … , . -` collapse to their first mark first;
//! - a text whose first clause is shorter than 4 characters gets "。" in front
//!   ("." for English);
//! - pieces shorter than 5 characters merge with the following ones;
//! - pieces made of non-word characters only are dropped;
//! - every piece ends with one of upstream's `splits` marks ("。" or "." added);
//! - pieces over 510 characters are split again at punctuation.
//!
//! Lengths are counted in Unicode scalar values, as Python counts `len(str)`.

use super::Lang;

/// How a long text is split into pieces synthesized one after another.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Cut {
    /// No split.
    Cut0,
    /// Every four sentences (`TTS.run`'s default).
    Cut1,
    /// About 50 characters per piece.
    Cut2,
    /// On the Chinese full stop "。".
    Cut3,
    /// On "." that is not between digits.
    Cut4,
    /// On any punctuation (`api_v2`'s default).
    #[default]
    Cut5,
}

impl Cut {
    /// Parses upstream's method name ("cut0".."cut5").
    pub fn from_name(name: &str) -> Option<Cut> {
        Some(match name {
            "cut0" => Cut::Cut0,
            "cut1" => Cut::Cut1,
            "cut2" => Cut::Cut2,
            "cut3" => Cut::Cut3,
            "cut4" => Cut::Cut4,
            "cut5" => Cut::Cut5,
            _ => return None,
        })
    }
}

/// upstream `splits`: the marks that end a sentence for `split()`/`get_first`.
const SPLITS: &[char] = &[
    '，', '。', '？', '！', ',', '.', '?', '!', '~', ':', '：', '—', '…',
];
/// upstream `text_segmentation_method.punctuation` (note: includes the space).
const SEG_PUNCT: &[char] = &['!', '?', '…', ',', '.', '-', ' '];
/// upstream `TextPreprocessor.punctuation` for collapsing repeated marks.
const PRE_PUNCT: &[char] = &['!', '?', '…', ',', '.', '-'];
/// `cut5`'s marks.
const CUT5_PUNDS: &[char] = &[',', '.', ';', '?', '!', '、', '，', '。', '？', '！', '：', '…'];

fn is_split(c: char) -> bool {
    SPLITS.contains(&c)
}

/// `set(item).issubset(punctuation)` (true for the empty string).
fn only_of(s: &str, set: &[char]) -> bool {
    s.chars().all(|c| set.contains(&c))
}

fn nchars(s: &str) -> usize {
    s.chars().count()
}

/// Collapses a run of marks from `PRE_PUNCT` to its first mark.
pub(crate) fn collapse_punct(text: &str, set: &[char]) -> String {
    let mut out = String::with_capacity(text.len());
    let mut prev_punct = false;
    for c in text.chars() {
        let p = set.contains(&c);
        if p && prev_punct {
            continue;
        }
        prev_punct = p;
        out.push(c);
    }
    out
}

/// Python's `str.strip()` whitespace set is close to Rust's `char::is_whitespace`.
fn py_strip(s: &str) -> &str {
    s.trim_matches(|c: char| c.is_whitespace())
}

fn get_first(text: &str) -> String {
    let first = text.split(is_split).next().unwrap_or("");
    py_strip(first).to_string()
}

/// upstream `split()`: sentences, each ending with its mark.
fn split_sentences(text: &str) -> Vec<String> {
    let mut t = text.replace("……", "。").replace("——", "，");
    match t.chars().last() {
        Some(c) if is_split(c) => {}
        _ => t.push('。'),
    }
    let mut out = Vec::new();
    let mut cur = String::new();
    for c in t.chars() {
        cur.push(c);
        if is_split(c) {
            out.push(std::mem::take(&mut cur));
        }
    }
    out
}

fn cut0(inp: &str) -> String {
    if !only_of(inp, SEG_PUNCT) {
        inp.to_string()
    } else {
        "\n".to_string()
    }
}

fn cut1(inp: &str) -> String {
    let inp = inp.trim_matches('\n');
    let inps = split_sentences(inp);
    // upstream: starts = range(0, n, 4) with the last start replaced by None,
    // so the last group of (up to) four joins the group before it.
    let mut starts: Vec<Option<usize>> = (0..inps.len()).step_by(4).map(Some).collect();
    if let Some(last) = starts.last_mut() {
        *last = None;
    }
    let opts: Vec<String> = if starts.len() > 1 {
        (0..starts.len() - 1)
            .map(|i| {
                let a = starts[i].unwrap_or(inps.len());
                let b = starts[i + 1].unwrap_or(inps.len());
                inps[a..b].concat()
            })
            .collect()
    } else {
        vec![inp.to_string()]
    };
    opts.into_iter()
        .filter(|o| !only_of(o, SEG_PUNCT))
        .collect::<Vec<_>>()
        .join("\n")
}

fn cut2(inp: &str) -> String {
    let inp = inp.trim_matches('\n');
    let inps = split_sentences(inp);
    if inps.len() < 2 {
        return inp.to_string();
    }
    let mut opts: Vec<String> = Vec::new();
    let mut summ = 0usize;
    let mut tmp = String::new();
    for s in &inps {
        summ += nchars(s);
        tmp.push_str(s);
        if summ > 50 {
            summ = 0;
            opts.push(std::mem::take(&mut tmp));
        }
    }
    if !tmp.is_empty() {
        opts.push(tmp);
    }
    if opts.len() > 1 && nchars(opts.last().map(String::as_str).unwrap_or("")) < 50 {
        let last = opts.pop().unwrap_or_default();
        if let Some(prev) = opts.last_mut() {
            prev.push_str(&last);
        }
    }
    opts.into_iter()
        .filter(|o| !only_of(o, SEG_PUNCT))
        .collect::<Vec<_>>()
        .join("\n")
}

fn cut3(inp: &str) -> String {
    let inp = inp.trim_matches('\n');
    inp.trim_matches('。')
        .split('。')
        .filter(|o| !only_of(o, SEG_PUNCT))
        .collect::<Vec<_>>()
        .join("\n")
}

fn cut4(inp: &str) -> String {
    let inp = inp.trim_matches('\n');
    let s: Vec<char> = inp.trim_matches('.').chars().collect();
    let mut opts: Vec<String> = Vec::new();
    let mut cur = String::new();
    for (i, &c) in s.iter().enumerate() {
        let prev_digit = i > 0 && s[i - 1].is_ascii_digit();
        let next_digit = i + 1 < s.len() && s[i + 1].is_ascii_digit();
        if c == '.' && !prev_digit && !next_digit {
            opts.push(std::mem::take(&mut cur));
        } else {
            cur.push(c);
        }
    }
    opts.push(cur);
    opts.into_iter()
        .filter(|o| !only_of(o, SEG_PUNCT))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Python's `str.isdigit` for the characters that matter here.
fn py_isdigit(c: char) -> bool {
    c.is_numeric() && !('\u{2160}'..='\u{2188}').contains(&c)
}

fn cut5(inp: &str) -> String {
    let inp = inp.trim_matches('\n');
    let s: Vec<char> = inp.chars().collect();
    let mut merged: Vec<String> = Vec::new();
    let mut items = String::new();
    for (i, &c) in s.iter().enumerate() {
        items.push(c);
        if CUT5_PUNDS.contains(&c) {
            let decimal_point =
                c == '.' && i > 0 && i + 1 < s.len() && py_isdigit(s[i - 1]) && py_isdigit(s[i + 1]);
            if !decimal_point {
                merged.push(std::mem::take(&mut items));
            }
        }
    }
    if !items.is_empty() {
        merged.push(items);
    }
    merged
        .into_iter()
        .filter(|o| !only_of(o, CUT5_PUNDS))
        .collect::<Vec<_>>()
        .join("\n")
}

fn merge_short(texts: Vec<String>, threshold: usize) -> Vec<String> {
    if texts.len() < 2 {
        return texts;
    }
    let mut result: Vec<String> = Vec::new();
    let mut text = String::new();
    for t in texts {
        text.push_str(&t);
        if nchars(&text) >= threshold {
            result.push(std::mem::take(&mut text));
        }
    }
    if !text.is_empty() {
        match result.last_mut() {
            Some(last) => last.push_str(&text),
            None => result.push(text),
        }
    }
    result
}

/// upstream `split_big_text`: cut a piece longer than `max_len` at marks.
fn split_big(text: &str, max_len: usize) -> Vec<String> {
    // re.split with a capture group: text pieces and the marks alternate.
    let mut parts: Vec<String> = Vec::new();
    let mut cur = String::new();
    for c in text.chars() {
        if is_split(c) {
            parts.push(std::mem::take(&mut cur));
            parts.push(c.to_string());
        } else {
            cur.push(c);
        }
    }
    parts.push(cur);
    let mut result = Vec::new();
    let mut current = String::new();
    for p in parts {
        if nchars(&current) + nchars(&p) > max_len {
            result.push(std::mem::replace(&mut current, p));
        } else {
            current.push_str(&p);
        }
    }
    if !current.is_empty() {
        result.push(current);
    }
    result
}

/// Python's `\w` (Unicode word characters) approximated by alphanumerics and `_`.
fn has_word_char(s: &str) -> bool {
    s.chars().any(|c| c.is_alphanumeric() || c == '_')
}

/// Splits `text` into the pieces upstream synthesizes one by one, for a
/// Chinese (or mixed) text. See [`cut_lang`] for English.
pub fn cut(text: &str, method: Cut) -> Vec<String> {
    cut_lang(text, method, Lang::Zh)
}

/// As [`cut`], with the language that picks the added mark ("." for English,
/// "。" otherwise).
pub fn cut_lang(text: &str, method: Cut, lang: Lang) -> Vec<String> {
    let end_mark = if lang == Lang::En { '.' } else { '。' };
    let text = collapse_punct(text, PRE_PUNCT);
    let text = text.trim_matches('\n');
    if text.is_empty() {
        return Vec::new();
    }
    let mut text = text.to_string();
    let first = text.chars().next().unwrap_or(' ');
    if !is_split(first) && nchars(&get_first(&text)) < 4 {
        text.insert(0, end_mark);
    }
    let mut t = match method {
        Cut::Cut0 => cut0(&text),
        Cut::Cut1 => cut1(&text),
        Cut::Cut2 => cut2(&text),
        Cut::Cut3 => cut3(&text),
        Cut::Cut4 => cut4(&text),
        Cut::Cut5 => cut5(&text),
    };
    while t.contains("\n\n") {
        t = t.replace("\n\n", "\n");
    }
    let pieces: Vec<String> = t
        .split('\n')
        .filter(|p| !p.is_empty() && *p != " ")
        .map(str::to_string)
        .collect();
    let mut out = Vec::new();
    for mut p in merge_short(pieces, 5) {
        if py_strip(&p).is_empty() || !has_word_char(&p) {
            continue;
        }
        if !p.chars().last().is_some_and(is_split) {
            p.push(end_mark);
        }
        if nchars(&p) > 510 {
            out.extend(split_big(&p, 510));
        } else {
            out.push(p);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cut5_splits_on_punctuation_and_merges_short_pieces() {
        let v = cut("你好，我是小明。你好，我是小红。", Cut::Cut5);
        assert_eq!(v, vec!["你好，我是小明。", "你好，我是小红。"]);
    }

    #[test]
    fn cut5_keeps_decimal_points() {
        let v = cut("价格是3.5元，真的非常便宜", Cut::Cut5);
        assert_eq!(v, vec!["价格是3.5元，", "真的非常便宜。"]);
        // a short last piece joins the one before it
        let v = cut("价格是3.5元，很便宜", Cut::Cut5);
        assert_eq!(v, vec!["价格是3.5元，很便宜。"]);
    }

    #[test]
    fn short_first_clause_gets_a_leading_mark() {
        assert_eq!(cut("你好", Cut::Cut0), vec!["。你好。"]);
        assert_eq!(cut_lang("Hi", Cut::Cut0, Lang::En), vec![".Hi."]);
    }

    #[test]
    fn cut1_groups_four_sentences_and_last_group_joins() {
        let s = "一一一一。二二二二。三三三三。四四四四。五五五五。";
        assert_eq!(cut(s, Cut::Cut1), vec![s.to_string()]);
        let s9 = "一一一一。".repeat(9);
        let v = cut(&s9, Cut::Cut1);
        assert_eq!(v.len(), 2);
        assert_eq!(nchars(&v[0]), 20);
    }

    #[test]
    fn cut4_ignores_decimal_points() {
        let v = cut_lang("It costs 3.5 dollars. Buy it now.", Cut::Cut4, Lang::En);
        assert_eq!(v, vec!["It costs 3.5 dollars.", " Buy it now."]);
    }

    #[test]
    fn repeated_marks_collapse_and_symbol_only_input_is_dropped() {
        assert_eq!(cut("真的吗？？好的!!!!", Cut::Cut5).len(), 1);
        assert!(cut("。。，，", Cut::Cut5).is_empty());
        assert!(cut("", Cut::Cut5).is_empty());
    }

    #[test]
    fn long_pieces_are_split_at_510() {
        let s = "这是一个很长的句子，".repeat(60);
        for p in cut(&s, Cut::Cut0) {
            assert!(nchars(&p) <= 510);
        }
    }
}
