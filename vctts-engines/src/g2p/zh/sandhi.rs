//! Tone sandhi and erhua as upstream's `text/tone_sandhi.py` (`ToneSandhi`,
//! from PaddleSpeech) and `chinese2._merge_erhua`: word merging before the
//! rules (不, 一, reduplication, runs of third tones, 儿), then per word the
//! 不 rules, the 一 rules, the neutral-tone rules (particles, suffixes,
//! reduplication, the must-neutral word list) and third-tone sandhi.
//!
//! Invariant: `modified_tone` returns as many finals as it was given; a final
//! is a pinyin final with its tone digit last (punctuation finals are the mark
//! itself and are never turned into a tone).

use super::pinyin::finals as word_finals;
use crate::g2p::data::zh_sandhi_lists;

/// A word with its jieba part-of-speech tag.
pub(crate) type Word = (String, String);

/// Python's `str.isnumeric` for one character (CJK numerals included).
pub(crate) fn py_isnumeric(c: char) -> bool {
    c.is_numeric()
        || "一七万三九二五亖亿什仟仨伍佰億兆兩八六十千卄卅卌叁参參叄四壱壹幺廾廿弌弍弎弐拾捌柒漆玖百肆萬貮貳贰阡陆陌陸零〇"
            .contains(c)
}

fn set_tone(f: &mut String, tone: char) {
    f.pop();
    f.push(tone);
}

fn tone(f: &str) -> Option<char> {
    f.chars().last()
}

fn all_tone_three(fs: &[String]) -> bool {
    fs.iter().all(|f| tone(f) == Some('3'))
}

fn chars(s: &str) -> Vec<char> {
    s.chars().collect()
}

fn last2(w: &[char]) -> String {
    w[w.len().saturating_sub(2)..].iter().collect()
}

fn in_must_neutral(w: &str) -> bool {
    let l = zh_sandhi_lists();
    let c = chars(w);
    l.must_neutral.contains(w) || l.must_neutral.contains(&last2(&c))
}

/// `_split_word`: the shortest `cut_for_search` piece and the rest.
fn split_word(word: &str) -> (String, String) {
    let pieces: Vec<String> = super::jieba()
        .cut_for_search(word, true)
        .into_iter()
        .map(|t| t.word.to_string())
        .collect();
    let mut first = word.to_string();
    let mut best = usize::MAX;
    for p in &pieces {
        let n = p.chars().count();
        if n < best {
            best = n;
            first = p.clone();
        }
    }
    let wc = chars(word);
    let fc = first.chars().count();
    if word.starts_with(first.as_str()) {
        (first.clone(), wc[fc.min(wc.len())..].iter().collect())
    } else {
        (wc[..wc.len().saturating_sub(fc)].iter().collect(), first)
    }
}

fn bu_sandhi(word: &[char], f: &mut [String]) {
    if word.len() == 3 && word[1] == '不' {
        set_tone(&mut f[1], '5');
    } else {
        for i in 0..word.len() {
            if word[i] == '不' && i + 1 < word.len() && tone(&f[i + 1]) == Some('4') {
                set_tone(&mut f[i], '2');
            }
        }
    }
}

fn yi_sandhi(word: &[char], f: &mut [String]) {
    let punc = &zh_sandhi_lists().punc;
    if word.contains(&'一') && word.iter().filter(|c| **c != '一').all(|c| py_isnumeric(*c)) {
        return;
    }
    if word.len() == 3 && word[1] == '一' && word[0] == word[2] {
        set_tone(&mut f[1], '5');
    } else if word.len() >= 2 && word[0] == '第' && word[1] == '一' {
        set_tone(&mut f[1], '1');
    } else {
        for i in 0..word.len() {
            if word[i] == '一' && i + 1 < word.len() {
                if tone(&f[i + 1]) == Some('4') {
                    set_tone(&mut f[i], '2');
                } else if !punc.contains(&word[i + 1]) {
                    set_tone(&mut f[i], '4');
                }
            }
        }
    }
}

// The rules keep upstream's `elif` chain; several branches do the same thing.
#[allow(clippy::if_same_then_else)]
fn neutral_sandhi(word: &str, pos: &str, f: &mut [String]) {
    let l = zh_sandhi_lists();
    let w = chars(word);
    let n = w.len();
    let p0 = pos.chars().next().unwrap_or(' ');
    for j in 1..n {
        if w[j] == w[j - 1] && "nva".contains(p0) && !l.must_not_neutral.contains(word) {
            set_tone(&mut f[j], '5');
        }
    }
    let ge = w.iter().position(|c| *c == '个');
    let last = w[n - 1];
    if "吧呢哈啊呐噻嘛吖嗨呐哦哒额滴哩哟喽啰耶喔诶".contains(last) || "的地得".contains(last)
    {
        set_tone(&mut f[n - 1], '5');
    } else if n == 1 && "了着过".contains(last) && ["ul", "uz", "ug"].contains(&pos) {
        set_tone(&mut f[n - 1], '5');
    } else if n > 1
        && "们子".contains(last)
        && ["r", "n"].contains(&pos)
        && !l.must_not_neutral.contains(word)
    {
        set_tone(&mut f[n - 1], '5');
    } else if n > 1 && "上下里".contains(last) && ["s", "l", "f"].contains(&pos) {
        set_tone(&mut f[n - 1], '5');
    } else if n > 1 && "来去".contains(last) && "上下进出回过起开".contains(w[n - 2]) {
        set_tone(&mut f[n - 1], '5');
    } else if ge
        .is_some_and(|g| g >= 1 && (py_isnumeric(w[g - 1]) || "几有两半多各整每做是".contains(w[g - 1])))
        || word == "个"
    {
        if let Some(g) = ge {
            set_tone(&mut f[g], '5');
        }
    } else if in_must_neutral(word) {
        set_tone(&mut f[n - 1], '5');
    }
    let (a, b) = split_word(word);
    let la = a.chars().count().min(n);
    for (i, sub) in [a, b].iter().enumerate() {
        if in_must_neutral(sub) {
            let range = if i == 0 { 0..la } else { la..n };
            if let Some(k) = range.last() {
                set_tone(&mut f[k], '5');
            }
        }
    }
}

fn three_sandhi(word: &str, f: &mut [String]) {
    let n = word.chars().count();
    if n == 2 && all_tone_three(f) {
        set_tone(&mut f[0], '2');
    } else if n == 3 {
        let (a, _) = split_word(word);
        let la = a.chars().count().min(n);
        if all_tone_three(f) {
            if la == 2 {
                set_tone(&mut f[0], '2');
                set_tone(&mut f[1], '2');
            } else if la == 1 {
                set_tone(&mut f[1], '2');
            }
        } else {
            // the two sub-words [0, la) and [la, n)
            for i in 0..2 {
                let (s, e) = if i == 0 { (0, la) } else { (la, n) };
                let sub_all3 = all_tone_three(&f[s..e]);
                if sub_all3 && e - s == 2 {
                    set_tone(&mut f[s], '2');
                } else if i == 1
                    && !sub_all3
                    && tone(&f[s]) == Some('3')
                    && la >= 1
                    && tone(&f[la - 1]) == Some('3')
                {
                    set_tone(&mut f[la - 1], '2');
                }
            }
        }
    } else if n == 4 {
        for s in [0, 2] {
            if all_tone_three(&f[s..s + 2]) {
                set_tone(&mut f[s], '2');
            }
        }
    }
}

/// `ToneSandhi.modified_tone`.
pub(crate) fn modified_tone(word: &str, pos: &str, mut f: Vec<String>) -> Vec<String> {
    let w = chars(word);
    if w.is_empty() || f.len() != w.len() {
        return f;
    }
    bu_sandhi(&w, &mut f);
    yi_sandhi(&w, &mut f);
    neutral_sandhi(word, pos, &mut f);
    three_sandhi(word, &mut f);
    f
}

fn merge_bu(seg: Vec<Word>) -> Vec<Word> {
    let mut out = Vec::new();
    let mut last = String::new();
    for (mut w, p) in seg {
        if last == "不" {
            w = format!("不{w}");
        }
        if w != "不" {
            out.push((w.clone(), p));
        }
        last = w;
    }
    if last == "不" {
        out.push((last, "d".to_string()));
    }
    out
}

fn merge_yi(seg: Vec<Word>) -> Vec<Word> {
    let mut out: Vec<Word> = Vec::new();
    let mut i = 0;
    while i < seg.len() {
        let (w, p) = &seg[i];
        if i >= 1 && w == "一" && i + 1 < seg.len() {
            let last = out.last().cloned().unwrap_or_else(|| seg[i - 1].clone());
            if last.0 == seg[i + 1].0 && last.1 == "v" && seg[i + 1].1 == "v" {
                let combined = format!("{}一{}", last.0, seg[i + 1].0);
                if let Some(l) = out.last_mut() {
                    *l = (combined, last.1);
                }
                i += 2;
                continue;
            }
        }
        out.push((w.clone(), p.clone()));
        i += 1;
    }
    let mut res: Vec<Word> = Vec::new();
    for (w, p) in out {
        match res.last_mut() {
            Some(l) if l.0 == "一" => l.0.push_str(&w),
            _ => res.push((w, p)),
        }
    }
    res
}

fn merge_reduplication(seg: Vec<Word>) -> Vec<Word> {
    let mut out: Vec<Word> = Vec::new();
    for (w, p) in seg {
        match out.last_mut() {
            Some(l) if l.0 == w => l.0.push_str(&w),
            _ => out.push((w, p)),
        }
    }
    out
}

fn is_reduplication(w: &str) -> bool {
    let c = chars(w);
    c.len() == 2 && c[0] == c[1]
}

fn merge_three_tones(seg: Vec<Word>, second: bool) -> Vec<Word> {
    let finals: Vec<Vec<String>> = seg.iter().map(|(w, _)| word_finals(w)).collect();
    let mut out: Vec<Word> = Vec::new();
    let mut merged_last = vec![false; seg.len()];
    for i in 0..seg.len() {
        let cond = i >= 1
            && !merged_last[i - 1]
            && if second {
                finals[i - 1].last().and_then(|f| tone(f)) == Some('3')
                    && finals[i].first().and_then(|f| tone(f)) == Some('3')
            } else {
                all_tone_three(&finals[i - 1]) && all_tone_three(&finals[i])
            };
        if cond
            && !is_reduplication(&seg[i - 1].0)
            && seg[i - 1].0.chars().count() + seg[i].0.chars().count() <= 3
        {
            if let Some(l) = out.last_mut() {
                l.0.push_str(&seg[i].0);
            }
            merged_last[i] = true;
        } else {
            out.push(seg[i].clone());
        }
    }
    out
}

fn merge_er(seg: Vec<Word>) -> Vec<Word> {
    let mut out: Vec<Word> = Vec::new();
    for i in 0..seg.len() {
        if i >= 1 && seg[i].0 == "儿" && seg[i - 1].0 != "#" {
            if let Some(l) = out.last_mut() {
                l.0.push('儿');
                continue;
            }
        }
        out.push(seg[i].clone());
    }
    out
}

/// `ToneSandhi.pre_merge_for_modify`.
pub(crate) fn pre_merge(seg: Vec<Word>) -> Vec<Word> {
    let seg = merge_bu(seg);
    let seg = merge_yi(seg);
    let seg = merge_reduplication(seg);
    let seg = merge_three_tones(seg, false);
    let seg = merge_three_tones(seg, true);
    merge_er(seg)
}

const MUST_ERHUA: &[&str] = &[
    "小院儿",
    "胡同儿",
    "范儿",
    "老汉儿",
    "撒欢儿",
    "寻老礼儿",
    "妥妥儿",
    "媳妇儿",
];
const NOT_ERHUA: &[&str] = &[
    "虐儿",
    "为儿",
    "护儿",
    "瞒儿",
    "救儿",
    "替儿",
    "有儿",
    "一儿",
    "我儿",
    "俺儿",
    "妻儿",
    "拐儿",
    "聋儿",
    "乞儿",
    "患儿",
    "幼儿",
    "孤儿",
    "婴儿",
    "婴幼儿",
    "连体儿",
    "脑瘫儿",
    "流浪儿",
    "体弱儿",
    "混血儿",
    "蜜雪儿",
    "舫儿",
    "祖儿",
    "美儿",
    "应采儿",
    "可儿",
    "侄儿",
    "孙儿",
    "侄孙儿",
    "女儿",
    "男儿",
    "红孩儿",
    "花儿",
    "虫儿",
    "马儿",
    "鸟儿",
    "猪儿",
    "猫儿",
    "狗儿",
    "少儿",
];

/// `chinese2._merge_erhua`: a final 儿 read "er2"/"er5" takes the tone of the
/// syllable before it (it stays a separate phone pair, as upstream).
pub(crate) fn merge_erhua(
    initials: Vec<String>,
    mut finals: Vec<String>,
    word: &str,
    pos: &str,
) -> (Vec<String>, Vec<String>) {
    let w = chars(word);
    if let Some(last) = finals.len().checked_sub(1) {
        if w.get(last) == Some(&'儿') && finals[last] == "er1" {
            finals[last] = "er2".to_string();
        }
    }
    if !MUST_ERHUA.contains(&word) && (NOT_ERHUA.contains(&word) || ["a", "j", "nr"].contains(&pos)) {
        return (initials, finals);
    }
    if finals.len() != w.len() {
        return (initials, finals);
    }
    let n = finals.len();
    let tail = last2(&w);
    for i in 0..n {
        if i == n - 1
            && w[i] == '儿'
            && (finals[i] == "er2" || finals[i] == "er5")
            && !NOT_ERHUA.contains(&tail.as_str())
            && i >= 1
        {
            if let Some(t) = tone(&finals[i - 1]) {
                finals[i] = format!("er{t}");
            }
        }
    }
    (initials, finals)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mt(word: &str, pos: &str) -> String {
        modified_tone(word, pos, word_finals(word)).join(" ")
    }

    #[test]
    fn bu_before_fourth_tone_becomes_second() {
        assert_eq!(mt("不要", "d"), "u2 iao4");
        assert_eq!(mt("好不好", "v"), "ao3 u5 ao3");
    }

    #[test]
    fn yi_rules() {
        assert_eq!(mt("一个", "m"), "i2 e5");
        assert_eq!(mt("一天", "m"), "i4 ian1");
        assert_eq!(mt("第一", "m"), "i4 i1");
        assert_eq!(mt("看一看", "v"), "an4 i5 an4");
        assert_eq!(mt("十一", "m"), "i2 i1");
    }

    #[test]
    fn neutral_tones() {
        assert_eq!(mt("我们", "r"), "uo3 en5");
        assert_eq!(mt("桌子", "n"), "uo1 i5");
        assert_eq!(mt("看看", "v"), "an4 an5");
        assert_eq!(mt("东西", "n"), "ong1 i5");
        assert_eq!(mt("的", "uj"), "e5");
    }

    #[test]
    fn third_tone_sandhi() {
        assert_eq!(mt("你好", "l"), "i2 ao3");
        assert_eq!(mt("展览馆", "n"), "an2 an2 uan3");
    }

    #[test]
    fn erhua_takes_previous_tone() {
        let (_, f) = merge_erhua(
            vec!["h".into(), "".into()],
            vec!["ua1".into(), "er2".into()],
            "花儿",
            "n",
        );
        assert_eq!(f, vec!["ua1", "er2"]); // in the not-erhua list
        let (_, f) = merge_erhua(
            vec!["w".into(), "".into()],
            vec!["an2".into(), "er2".into()],
            "玩儿",
            "v",
        );
        assert_eq!(f, vec!["an2", "er2"]);
        let (_, f) = merge_erhua(
            vec!["d".into(), "".into()],
            vec!["ian3".into(), "er2".into()],
            "点儿",
            "m",
        );
        assert_eq!(f, vec!["ian3", "er3"]);
    }

    #[test]
    fn pre_merge_joins_bu_and_yi_and_er() {
        let s = |v: &[(&str, &str)]| {
            v.iter()
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .collect::<Vec<_>>()
        };
        let m = pre_merge(s(&[("不", "d"), ("要", "v")]));
        assert_eq!(m[0].0, "不要");
        let m = pre_merge(s(&[("看", "v"), ("一", "m"), ("看", "v")]));
        assert_eq!(m[0].0, "看一看");
        let m = pre_merge(s(&[("小孩", "n"), ("儿", "n")]));
        assert_eq!(m[0].0, "小孩儿");
    }
}
