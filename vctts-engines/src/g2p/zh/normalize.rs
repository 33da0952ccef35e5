//! Chinese text normalisation as upstream's `text/zh_normalization`
//! (`TextNormalizer`) followed by `chinese2.text_normalize`'s punctuation
//! mapping: traditional→simplified, full-width→half-width, dates, times,
//! ranges, temperatures, units, arithmetic, fractions, percentages, phone
//! numbers, decimals, quantified numbers, long digit strings, Greek letters
//! and operators; then the punctuation map and the filter that keeps only
//! CJK characters and `! ? … , . -`.
//!
//! Invariants: rules run in upstream's order; numbers are verbalised exactly
//! as `num2str`/`verbalize_cardinal`/`verbalize_digit`. Differences from
//! upstream: `\d` is ASCII here (upstream's Python `\d` also matches other
//! scripts' digits and then fails on them); lookaround patterns
//! (ranges, phone numbers) are matched by hand with the same conditions.

use regex::{Captures, Regex};
use std::sync::OnceLock;

const DIGITS: [&str; 10] = ["零", "一", "二", "三", "四", "五", "六", "七", "八", "九"];

fn re(cell: &'static OnceLock<Regex>, pat: &str) -> &'static Regex {
    cell.get_or_init(|| Regex::new(pat).unwrap_or_else(|_| Regex::new("$^").expect("valid")))
}

macro_rules! regex {
    ($pat:expr) => {{
        static R: OnceLock<Regex> = OnceLock::new();
        re(&R, $pat)
    }};
}

fn digit_of(c: char) -> &'static str {
    c.to_digit(10).map(|d| DIGITS[d as usize]).unwrap_or("")
}

/// `verbalize_digit`: one character per digit, "幺" for one when `alt_one`.
pub(crate) fn verbalize_digit(s: &str, alt_one: bool) -> String {
    let out: String = s.chars().map(digit_of).collect();
    if alt_one { out.replace('一', "幺") } else { out }
}

fn get_value(s: &str, use_zero: bool) -> Vec<&'static str> {
    let stripped = s.trim_start_matches('0');
    let n = stripped.chars().count();
    if n == 0 {
        return vec![];
    }
    if n == 1 {
        let d = digit_of(stripped.chars().next().unwrap_or('0'));
        if use_zero && n < s.chars().count() {
            return vec![DIGITS[0], d];
        }
        return vec![d];
    }
    // largest unit whose power is below the number of significant digits
    let unit = [(8usize, "亿"), (4, "万"), (3, "千"), (2, "百"), (1, "十")]
        .into_iter()
        .find(|(p, _)| *p < n);
    let Some((power, name)) = unit else {
        return vec![];
    };
    let chars: Vec<char> = s.chars().collect();
    let split = chars.len() - power;
    let first: String = chars[..split].iter().collect();
    let second: String = chars[split..].iter().collect();
    let mut out = get_value(&first, true);
    out.push(name);
    out.extend(get_value(&second, true));
    out
}

/// `verbalize_cardinal`.
pub(crate) fn verbalize_cardinal(s: &str) -> String {
    if s.is_empty() {
        return String::new();
    }
    let s = s.trim_start_matches('0');
    if s.is_empty() {
        return DIGITS[0].to_string();
    }
    let mut sym = get_value(s, true);
    if sym.len() >= 2 && sym[0] == "一" && sym[1] == "十" {
        sym.remove(0);
    }
    sym.concat()
}

/// `num2str`: integer part as a cardinal, decimals digit by digit.
pub(crate) fn num2str(s: &str) -> String {
    let parts: Vec<&str> = s.split('.').collect();
    let (int, dec) = match parts.as_slice() {
        [i] => (*i, ""),
        [i, d] => (*i, *d),
        _ => return verbalize_digit(&s.replace('.', ""), false),
    };
    let mut result = verbalize_cardinal(int);
    let dec = if dec.ends_with('0') {
        format!("{}0", dec.trim_end_matches('0'))
    } else {
        dec.trim_end_matches('0').to_string()
    };
    if !dec.is_empty() {
        if result.is_empty() {
            result = "零".to_string();
        }
        result.push('点');
        result.push_str(&verbalize_digit(&dec, false));
    }
    result
}

fn g<'a>(c: &'a Captures, i: usize) -> &'a str {
    c.get(i).map(|m| m.as_str()).unwrap_or("")
}

fn replace_date(c: &Captures) -> String {
    let mut r = String::new();
    let (year, month, day) = (g(c, 1), g(c, 3), g(c, 5));
    if !year.is_empty() {
        r += &format!("{}年", verbalize_digit(year, false));
    }
    if !month.is_empty() {
        r += &format!("{}月", verbalize_cardinal(month));
    }
    if !day.is_empty() {
        r += &format!("{}{}", verbalize_cardinal(day), g(c, 9));
    }
    r
}

fn replace_date2(c: &Captures) -> String {
    let mut r = String::new();
    let (year, month, day) = (g(c, 1), g(c, 3), g(c, 4));
    if !year.is_empty() {
        r += &format!("{}年", verbalize_digit(year, false));
    }
    if !month.is_empty() {
        r += &format!("{}月", verbalize_cardinal(month));
    }
    if !day.is_empty() {
        r += &format!("{}日", verbalize_cardinal(day));
    }
    r
}

fn time_num2str(s: &str) -> String {
    let mut r = num2str(s.trim_start_matches('0'));
    if s.starts_with('0') {
        r.insert_str(0, DIGITS[0]);
    }
    r
}

/// `replace_time`; `range` as upstream's `len(match.groups()) > 5`.
fn replace_time(c: &Captures, range: bool) -> String {
    let (hour, minute, second) = (g(c, 1), g(c, 2), g(c, 4));
    let mut r = format!("{}点", num2str(hour));
    if !minute.trim_start_matches('0').is_empty() {
        if minute.parse::<u32>().ok() == Some(30) {
            r.push('半');
        } else {
            r += &format!("{}分", time_num2str(minute));
        }
    }
    if !second.trim_start_matches('0').is_empty() {
        r += &format!("{}秒", time_num2str(second));
    }
    if range {
        let (hour2, minute2, second2) = (g(c, 6), g(c, 7), g(c, 9));
        r += "至";
        r += &format!("{}点", num2str(hour2));
        if !minute2.trim_start_matches('0').is_empty() {
            // upstream tests the first minute here
            if minute.parse::<u32>().ok() == Some(30) {
                r.push('半');
            } else {
                r += &format!("{}分", time_num2str(minute2));
            }
        }
        if !second2.trim_start_matches('0').is_empty() {
            r += &format!("{}秒", time_num2str(second2));
        }
    }
    r
}

const UNITS_RE: &str = "(%|°C|℃|度|摄氏度|cm2|cm²|cm3|cm³|cm|db|ds|kg|km|m2|m²|m³|m3|ml|m|mm|s)";

const MEASURES: &[(&str, &str)] = &[
    ("cm2", "平方厘米"),
    ("cm²", "平方厘米"),
    ("cm3", "立方厘米"),
    ("cm³", "立方厘米"),
    ("cm", "厘米"),
    ("db", "分贝"),
    ("ds", "毫秒"),
    ("kg", "千克"),
    ("km", "千米"),
    ("m2", "平方米"),
    ("m²", "平方米"),
    ("m³", "立方米"),
    ("m3", "立方米"),
    ("ml", "毫升"),
    ("m", "米"),
    ("mm", "毫米"),
    ("s", "秒"),
];

/// upstream's COM_QUANTIFIERS alternation (measure words after a number).
const QUANTIFIERS: &str = "(处|台|架|枚|趟|幅|平|方|堵|间|床|株|批|项|例|列|篇|栋|注|亩|封|艘|把|目|套|段|人|所|朵|匹|张|座|回|场|尾|条|个|首|阙|阵|网|炮|顶|丘|棵|只|支|袭|辆|挑|担|颗|壳|窠|曲|墙|群|腔|砣|座|客|贯|扎|捆|刀|令|打|手|罗|坡|山|岭|江|溪|钟|队|单|双|对|出|口|头|脚|板|跳|枝|件|贴|针|线|管|名|位|身|堂|课|本|页|家|户|层|丝|毫|厘|分|钱|两|斤|担|铢|石|钧|锱|忽|(千|毫|微)克|毫|厘|(公)分|分|寸|尺|丈|里|寻|常|铺|程|(千|分|厘|毫|微)米|米|撮|勺|合|升|斗|石|盘|碗|碟|叠|桶|笼|盆|盒|杯|钟|斛|锅|簋|篮|盘|桶|罐|瓶|壶|卮|盏|箩|箱|煲|啖|袋|钵|年|月|日|季|刻|时|周|天|秒|分|小时|旬|纪|岁|世|更|夜|春|夏|秋|冬|代|伏|辈|丸|泡|粒|颗|幢|堆|条|根|支|道|面|片|张|颗|块|元|(亿|千万|百万|万|千|百)|(亿|千万|百万|万|千|百|美|)元|(亿|千万|百万|万|千|百|十|)吨|(亿|千万|百万|万|千|百|)块|角|毛|分)";

const SUP: &str = "[⁰¹²³⁴⁵⁶⁷⁸⁹ˣʸⁿ]";

fn number_re() -> &'static Regex {
    regex!(r"(-?)(([0-9]+)(\.[0-9]+)?)|(\.([0-9]+))")
}

/// `replace_number` for RE_NUMBER / RE_DECIMAL_NUM matches.
fn replace_number(c: &Captures) -> String {
    let pure = g(c, 5);
    if !pure.is_empty() {
        return num2str(pure);
    }
    let sign = if g(c, 1).is_empty() { "" } else { "负" };
    format!("{sign}{}", num2str(g(c, 2)))
}

/// RE_RANGE: `(?<![\d+\-×÷=])(-?\d+(\.\d+)?)[-~](-?\d+(\.\d+)?)(?![\d+\-×÷=])`
/// matched by hand (the `regex` crate has no lookaround).
fn replace_ranges(s: &str) -> String {
    let inner = regex!(r"^(-?[0-9]+(\.[0-9]+)?)[-~](-?[0-9]+(\.[0-9]+)?)");
    let bad = |c: char| c.is_ascii_digit() || "+-×÷=".contains(c);
    let chars: Vec<char> = s.chars().collect();
    let mut out = String::new();
    let mut i = 0;
    'outer: while i < chars.len() {
        let before_ok = i == 0 || !bad(chars[i - 1]);
        if before_ok && (chars[i].is_ascii_digit() || chars[i] == '-') {
            let rest: String = chars[i..].iter().collect();
            // try the longest candidate first, then backtrack as Python would
            if let Some(c) = inner.captures(&rest) {
                let full = g(&c, 0);
                // Python backtracks the second number's digits when the
                // lookahead fails; try successively shorter ends.
                let first = g(&c, 1).to_string();
                let sep_at = first.chars().count();
                let full_chars: Vec<char> = full.chars().collect();
                let mut end = full_chars.len();
                while end > sep_at + 1 {
                    let after = chars.get(i + end).copied();
                    let cand: String = full_chars[sep_at + 1..end].iter().collect();
                    let cand_ok = regex!(r"^-?[0-9]+(\.[0-9]+)?$").is_match(&cand);
                    if cand_ok && !after.is_some_and(bad) {
                        let a = number_re().replace_all(&first, |c: &Captures| replace_number(c));
                        let b = number_re().replace_all(&cand, |c: &Captures| replace_number(c));
                        out += &format!("{a}到{b}");
                        i += end;
                        continue 'outer;
                    }
                    end -= 1;
                }
            }
        }
        out.push(chars[i]);
        i += 1;
    }
    out
}

/// The phone-number rules (mobile, landline, 400 numbers) with their
/// `(?<!\d)`/`(?!\d)` guards.
fn replace_phones(s: &str) -> String {
    let mobile = regex!(r"(\+?86 ?)?1([38][0-9]|5[0-35-9]|7[678]|9[89])[0-9]{8}");
    let tel = regex!(r"(0(10|2[1-3]|[3-9][0-9]{2})-?)?[1-9][0-9]{6,7}");
    let s = guarded(s, mobile, |m| {
        m.trim_matches('+')
            .split_whitespace()
            .map(|p| verbalize_digit(p, true))
            .collect::<Vec<_>>()
            .join("，")
    });
    let s = guarded(&s, tel, |m| {
        m.split('-')
            .map(|p| verbalize_digit(p, true))
            .collect::<Vec<_>>()
            .join("，")
    });
    regex!(r"(400)(-)?[0-9]{3}(-)?[0-9]{4}")
        .replace_all(&s, |c: &Captures| {
            g(c, 0)
                .split('-')
                .map(|p| verbalize_digit(p, true))
                .collect::<Vec<_>>()
                .join("，")
        })
        .into_owned()
}

/// Replace matches of `re` that are not preceded or followed by a digit,
/// scanning left to right as Python's `sub` does. A match rejected by the
/// guard is retried at the next start position (greedy counts shrink only
/// for `{6,7}`, handled by trying the shorter match).
fn guarded(s: &str, re: &Regex, f: impl Fn(&str) -> String) -> String {
    let bytes = s.as_bytes();
    let mut out = String::new();
    let mut pos = 0;
    let mut start = 0;
    while start <= s.len() {
        let Some(m) = re.find_at(s, start) else { break };
        let ms = m.start();
        let prev_digit = ms > 0 && bytes[ms - 1].is_ascii_digit();
        let mut end = m.end();
        let mut ok = false;
        if !prev_digit {
            // allow a shorter match (one less digit) when the longer one is
            // followed by a digit, as backtracking would
            for e in [end, end.saturating_sub(1)] {
                if e <= ms {
                    break;
                }
                let after_digit = e < s.len() && bytes[e].is_ascii_digit();
                if !after_digit
                    && re
                        .find_at(&s[..e], ms)
                        .is_some_and(|m2| m2.start() == ms && m2.end() == e)
                {
                    end = e;
                    ok = true;
                    break;
                }
            }
        }
        if ok {
            out.push_str(&s[pos..ms]);
            out.push_str(&f(&s[ms..end]));
            pos = end;
            start = end;
        } else {
            // advance one character
            let next = s[ms..]
                .chars()
                .next()
                .map(|c| ms + c.len_utf8())
                .unwrap_or(s.len() + 1);
            start = next;
        }
    }
    out.push_str(&s[pos.min(s.len())..]);
    out
}

fn post_replace(s: &str) -> String {
    let mut s = s.replace('/', "每");
    for (a, b) in [
        ("①", "一"),
        ("②", "二"),
        ("③", "三"),
        ("④", "四"),
        ("⑤", "五"),
        ("⑥", "六"),
        ("⑦", "七"),
        ("⑧", "八"),
        ("⑨", "九"),
        ("⑩", "十"),
        ("α", "阿尔法"),
        ("β", "贝塔"),
        ("γ", "伽玛"),
        ("Γ", "伽玛"),
        ("δ", "德尔塔"),
        ("Δ", "德尔塔"),
        ("ε", "艾普西龙"),
        ("ζ", "捷塔"),
        ("η", "依塔"),
        ("θ", "西塔"),
        ("Θ", "西塔"),
        ("ι", "艾欧塔"),
        ("κ", "喀帕"),
        ("λ", "拉姆达"),
        ("Λ", "拉姆达"),
        ("μ", "缪"),
        ("ν", "拗"),
        ("ξ", "克西"),
        ("Ξ", "克西"),
        ("ο", "欧米克伦"),
        ("π", "派"),
        ("Π", "派"),
        ("ρ", "肉"),
        ("ς", "西格玛"),
        ("Σ", "西格玛"),
        ("σ", "西格玛"),
        ("τ", "套"),
        ("υ", "宇普西龙"),
        ("φ", "服艾"),
        ("Φ", "服艾"),
        ("χ", "器"),
        ("ψ", "普赛"),
        ("Ψ", "普赛"),
        ("ω", "欧米伽"),
        ("Ω", "欧米伽"),
        ("+", "加"),
        ("-", "减"),
        ("×", "乘"),
        ("÷", "除"),
        ("=", "等"),
    ] {
        s = s.replace(a, b);
    }
    s.chars()
        .filter(|c| !"-—《》【】<=>{}()（）#&@“”^_|\\".contains(*c))
        .collect()
}

/// `TextNormalizer.normalize_sentence`.
pub(crate) fn normalize_sentence(s: &str) -> String {
    let t2s = crate::g2p::data::zh_t2s();
    let mut s: String = s
        .chars()
        .map(|c| {
            let c = t2s.get(&c).copied().unwrap_or(c);
            match c {
                '\u{3000}' => ' ',
                'Ａ'..='Ｚ' | 'ａ'..='ｚ' | '０'..='９' => {
                    char::from_u32(c as u32 - 65248).unwrap_or(c)
                }
                _ => c,
            }
        })
        .collect();
    s = regex!(r"([0-9]{4}|[0-9]{2})年((0?[1-9]|1[0-2])月)?(((0?[1-9])|((1|2)[0-9])|30|31)([日号]))?")
        .replace_all(&s, |c: &Captures| replace_date(c))
        .into_owned();
    // RE_DATE2 with its backreference spelled out per separator.
    static DATE2: OnceLock<Vec<Regex>> = OnceLock::new();
    let date2 = DATE2.get_or_init(|| {
        ["-", " ", "/", r"\."]
            .iter()
            .filter_map(|sep| {
                Regex::new(&format!(
                    r"([0-9]{{4}})({sep})(0[1-9]|1[012]){sep}(0[1-9]|[12][0-9]|3[01])"
                ))
                .ok()
            })
            .collect()
    });
    for r in date2 {
        s = r.replace_all(&s, |c: &Captures| replace_date2(c)).into_owned();
    }
    s = regex!(r"([0-1]?[0-9]|2[0-3]):([0-5][0-9])(:([0-5][0-9]))?(~|-)([0-1]?[0-9]|2[0-3]):([0-5][0-9])(:([0-5][0-9]))?")
        .replace_all(&s, |c: &Captures| replace_time(c, true))
        .into_owned();
    s = regex!(r"([0-1]?[0-9]|2[0-3]):([0-5][0-9])(:([0-5][0-9]))?")
        .replace_all(&s, |c: &Captures| replace_time(c, false))
        .into_owned();
    {
        static R: OnceLock<Regex> = OnceLock::new();
        let pat = format!(
            r"((-?)(([0-9]+)(\.[0-9]+)?)|(\.([0-9]+))){UNITS_RE}[~]((-?)(([0-9]+)(\.[0-9]+)?)|(\.([0-9]+))){UNITS_RE}"
        );
        s = re(&R, &pat)
            .replace_all(&s, |c: &Captures| g(c, 0).replace('~', "至"))
            .into_owned();
    }
    s = regex!(r"(-?)([0-9]+(\.[0-9]+)?)(°C|℃|度|摄氏度)")
        .replace_all(&s, |c: &Captures| {
            let sign = if g(c, 1).is_empty() { "" } else { "零下" };
            // upstream compares the decimal group (group 3) with "摄氏度",
            // so the unit is always read "度"
            format!("{sign}{}度", num2str(g(c, 2)))
        })
        .into_owned();
    for (k, v) in MEASURES {
        if s.contains(k) {
            s = s.replace(k, v);
        }
    }
    {
        static R: OnceLock<Regex> = OnceLock::new();
        let operand = format!(r"((-?)(([0-9]+)(\.[0-9]+)?{SUP}*)|(\.[0-9]+{SUP}*)|([A-Za-z]{SUP}*))");
        let pat = format!(r"{operand}([\+\-×÷=]){operand}");
        let asmd = re(&R, &pat);
        while asmd.is_match(&s) {
            s = asmd
                .replace_all(&s, |c: &Captures| {
                    let op = match g(c, 8) {
                        "+" => "加",
                        "-" => "减",
                        "×" => "乘",
                        "÷" => "除",
                        _ => "等于",
                    };
                    format!("{}{}{}", g(c, 1), op, g(c, 9))
                })
                .into_owned();
        }
    }
    s = regex!(r"[⁰¹²³⁴⁵⁶⁷⁸⁹ˣʸⁿ]+")
        .replace_all(&s, |c: &Captures| {
            let p: String = g(c, 0)
                .chars()
                .map(|ch| match ch {
                    '⁰' => '0',
                    '¹' => '1',
                    '²' => '2',
                    '³' => '3',
                    '⁴' => '4',
                    '⁵' => '5',
                    '⁶' => '6',
                    '⁷' => '7',
                    '⁸' => '8',
                    '⁹' => '9',
                    'ˣ' => 'x',
                    'ʸ' => 'y',
                    _ => 'n',
                })
                .collect();
            format!("的{p}次方")
        })
        .into_owned();
    s = regex!(r"(-?)([0-9]+)/([0-9]+)")
        .replace_all(&s, |c: &Captures| {
            let sign = if g(c, 1).is_empty() { "" } else { "负" };
            format!("{sign}{}分之{}", num2str(g(c, 3)), num2str(g(c, 2)))
        })
        .into_owned();
    s = regex!(r"(-?)([0-9]+(\.[0-9]+)?)%")
        .replace_all(&s, |c: &Captures| {
            let sign = if g(c, 1).is_empty() { "" } else { "负" };
            format!("{sign}百分之{}", num2str(g(c, 2)))
        })
        .into_owned();
    s = replace_phones(&s);
    s = replace_ranges(&s);
    s = regex!(r"(-)([0-9]+)")
        .replace_all(&s, |c: &Captures| format!("负{}", num2str(g(c, 2))))
        .into_owned();
    s = regex!(r"(([0-9]+)(\.[0-9]+)(\.[0-9]+)?(\.[0-9]+)+)")
        .replace_all(&s, |c: &Captures| {
            g(c, 1)
                .chars()
                .map(|ch| {
                    if ch == '.' {
                        "点".to_string()
                    } else {
                        num2str(&ch.to_string())
                    }
                })
                .collect::<String>()
        })
        .into_owned();
    s = regex!(r"(-?)(([0-9]+)(\.[0-9]+))|(\.([0-9]+))")
        .replace_all(&s, |c: &Captures| replace_number(c))
        .into_owned();
    {
        static R: OnceLock<Regex> = OnceLock::new();
        let pat = format!(r"([0-9]+)([多余几\+])?{QUANTIFIERS}");
        s = re(&R, &pat)
            .replace_all(&s, |c: &Captures| {
                let more = match g(c, 2) {
                    "+" => "多",
                    m => m,
                };
                let mut n = num2str(g(c, 1));
                if n == "二" {
                    n = "两".to_string();
                }
                format!("{n}{more}{}", g(c, 3))
            })
            .into_owned();
    }
    s = regex!(r"[0-9]{3}[0-9]*")
        .replace_all(&s, |c: &Captures| verbalize_digit(g(c, 0), true))
        .into_owned();
    s = number_re()
        .replace_all(&s, |c: &Captures| replace_number(c))
        .into_owned();
    post_replace(&s)
}

/// `TextNormalizer._split` for Chinese: drop spaces and brackets, put a line
/// break after sentence punctuation (and a closing quote after it), then
/// split on line breaks and strip each piece.
fn split_sentences(text: &str) -> Vec<String> {
    let chars: Vec<char> = text
        .chars()
        .filter(|c| *c != ' ' && !"—《》【】<>{}()（）#&@“”^_|\\".contains(*c))
        .collect();
    let mut marked = String::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        marked.push(c);
        if "：、，；。？！,;?!".contains(c) {
            if let Some(&q) = chars.get(i + 1) {
                if q == '”' || q == '’' {
                    marked.push(q);
                    i += 1;
                }
            }
            marked.push('\n');
        }
        i += 1;
    }
    marked
        .trim()
        .split('\n')
        .filter(|s| !s.is_empty())
        .map(|s| s.trim().to_string())
        .collect()
}

/// upstream `chinese2.replace_punctuation`.
pub(crate) fn replace_punctuation(s: &str) -> String {
    let s = s.replace('嗯', "恩").replace('呣', "母");
    let mut out = String::new();
    let chars: Vec<char> = s.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let mapped = match c {
            '：' | '；' | '，' | '·' | '、' | '/' => Some(','),
            '。' | '\n' | '$' => Some('.'),
            '！' => Some('!'),
            '？' => Some('?'),
            '—' => Some('-'),
            '~' | '～' => Some('…'),
            '.' if chars.get(i + 1) == Some(&'.') && chars.get(i + 2) == Some(&'.') => {
                i += 2;
                Some('…')
            }
            _ => None,
        };
        out.push(mapped.unwrap_or(c));
        i += 1;
    }
    out.chars()
        .filter(|c| ('\u{4e00}'..='\u{9fa5}').contains(c) || "!?…,.-".contains(*c))
        .collect()
}

/// Collapses a run of `! ? … , . -` to its first mark.
pub(crate) fn replace_consecutive_punctuation(s: &str) -> String {
    crate::g2p::cut::collapse_punct(s, &['!', '?', '…', ',', '.', '-'])
}

/// `chinese2.text_normalize`.
pub fn text_normalize(text: &str) -> String {
    let joined: String = split_sentences(text)
        .iter()
        .map(|s| replace_punctuation(&normalize_sentence(s)))
        .collect();
    replace_consecutive_punctuation(&joined)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cardinals_and_digits() {
        assert_eq!(verbalize_cardinal("10"), "十");
        assert_eq!(verbalize_cardinal("15"), "十五");
        assert_eq!(verbalize_cardinal("105"), "一百零五");
        assert_eq!(verbalize_cardinal("1200"), "一千二百");
        assert_eq!(verbalize_cardinal("100000000"), "一亿");
        assert_eq!(verbalize_cardinal("0"), "零");
        assert_eq!(num2str("3.20"), "三点二零");
        assert_eq!(num2str("5.5"), "五点五");
        assert_eq!(verbalize_digit("110", true), "幺幺零");
    }

    #[test]
    fn dates_times_percent_units() {
        assert_eq!(text_normalize("2024年3月5日"), "二零二四年三月五日");
        assert_eq!(text_normalize("现在是3:30"), "现在是三点半");
        assert_eq!(text_normalize("上涨了15%"), "上涨了百分之十五");
        assert_eq!(text_normalize("气温-5°C"), "气温零下五度");
        assert_eq!(text_normalize("跑了10km"), "跑了十千米");
        assert_eq!(text_normalize("20~25摄氏度"), "二十…二十五度");
        assert_eq!(text_normalize("2022-08-15"), "二零二二年八月十五日");
    }

    #[test]
    fn quantifiers_and_long_numbers() {
        assert_eq!(text_normalize("2个人"), "两个人");
        assert_eq!(text_normalize("编号2024"), "编号二零二四");
        assert_eq!(text_normalize("1/3"), "三分之一");
        assert_eq!(text_normalize("20~25"), "二十到二十五");
    }

    #[test]
    fn punctuation_map() {
        assert_eq!(text_normalize("你好，世界！真的吗？？"), "你好,世界!真的吗?");
        assert_eq!(text_normalize("等等..."), "等等…");
        assert_eq!(text_normalize("《書》"), "书");
    }
}
