//! English normalisation as upstream's `english.text_normalize`: the
//! punctuation map, `en_normalization/expend.py` (ordinals, arithmetic,
//! negative numbers, thousands commas, times, measurements, pounds, dollars,
//! decimals, fractions, numbers, accents, percent, the character filter,
//! "i.e."/"e.g." and splitting capitals) and the collapse of repeated marks.
//!
//! Differences: accents are stripped for the Latin-1 and Latin Extended-A
//! letters only (upstream uses Unicode NFD for any letter).

use super::numbers::{cardinal, ordinal_suffix, ordinal_words, year_pairs};
use regex::{Captures, Regex};
use std::sync::OnceLock;

fn compile(cell: &'static OnceLock<Regex>, pat: &str) -> &'static Regex {
    cell.get_or_init(|| Regex::new(pat).unwrap_or_else(|_| Regex::new("$^").expect("valid")))
}

macro_rules! regex {
    ($pat:expr) => {{
        static R: OnceLock<Regex> = OnceLock::new();
        compile(&R, $pat)
    }};
}

fn g<'a>(c: &'a Captures, i: usize) -> &'a str {
    c.get(i).map(|m| m.as_str()).unwrap_or("")
}

/// `_expand_number`.
fn expand_number(digits: &str) -> String {
    let n: u64 = match digits.parse() {
        Ok(n) => n,
        Err(_) => return cardinal(digits),
    };
    if n > 1000 && n < 3000 {
        if n == 2000 {
            "two thousand".to_string()
        } else if n > 2000 && n < 2010 {
            format!("two thousand {}", cardinal(&(n % 100).to_string()))
        } else if n % 100 == 0 {
            format!("{} hundred", cardinal(&(n / 100).to_string()))
        } else {
            year_pairs(digits.trim_start_matches('0')).replace(", ", " ")
        }
    } else {
        cardinal(digits)
    }
}

fn money(amount: &str, unit: (&str, &str), sub: (&str, &str), zero: &str) -> String {
    let parts: Vec<&str> = amount.split('.').collect();
    if parts.len() > 2 {
        return format!("{amount} {}", unit.1);
    }
    let whole: u64 = parts[0].parse().unwrap_or(0);
    let frac: u64 = match parts.get(1) {
        Some(p) if !p.is_empty() => format!("{p:0<2}").parse().unwrap_or(0),
        _ => 0,
    };
    let u = if whole == 1 { unit.0 } else { unit.1 };
    let s = if frac == 1 { sub.0 } else { sub.1 };
    match (whole, frac) {
        (0, 0) => zero.to_string(),
        (w, 0) => format!("{w} {u}"),
        (0, f) => format!("{f} {s}"),
        (w, f) => format!("{w} {u} and {f} {s}"),
    }
}

fn strip_accent(c: char) -> Option<char> {
    let base = match c {
        'À'..='Å' => 'A',
        'Ç' => 'C',
        'È'..='Ë' => 'E',
        'Ì'..='Ï' => 'I',
        'Ñ' => 'N',
        'Ò'..='Ö' => 'O',
        'Ù'..='Ü' => 'U',
        'Ý' => 'Y',
        'à'..='å' => 'a',
        'ç' => 'c',
        'è'..='ë' => 'e',
        'ì'..='ï' => 'i',
        'ñ' => 'n',
        'ò'..='ö' => 'o',
        'ù'..='ü' => 'u',
        'ý' | 'ÿ' => 'y',
        _ => return None,
    };
    Some(base)
}

const SUP: &str = "[⁰¹²³⁴⁵⁶⁷⁸⁹ˣʸⁿ]";

/// `expend.normalize`.
pub(crate) fn expand(text: &str) -> String {
    let mut t = regex!(r"\b([0-9]+)\. ")
        .replace_all(text, |c: &Captures| format!("{}, ", ordinal_suffix(g(c, 1))))
        .into_owned();
    {
        static R: OnceLock<Regex> = OnceLock::new();
        let op = format!(r"((-?)(([0-9]+)(\.[0-9]+)?{SUP}*)|(\.[0-9]+{SUP}*)|([A-Za-z]{SUP}*))");
        let asmd = compile(&R, &format!(r"{op}\s+([\+\-×÷=])\s+{op}"));
        while asmd.is_match(&t) {
            t = asmd
                .replace_all(&t, |c: &Captures| {
                    let w = match g(c, 8) {
                        "+" => " plus ",
                        "-" => " minus ",
                        "×" => " times ",
                        "÷" => " divided by ",
                        _ => " Equals ",
                    };
                    format!("{}{w}{}", g(c, 1), g(c, 9))
                })
                .into_owned();
        }
    }
    t = regex!(r"(?:^|\s+)(-)([0-9]+)")
        .replace_all(&t, |c: &Captures| format!("negative {}", g(c, 2)))
        .into_owned();
    t = regex!(r"([0-9][0-9,]+[0-9])")
        .replace_all(&t, |c: &Captures| g(c, 1).replace(',', ""))
        .into_owned();
    t = regex!(r"\b([01]?[0-9]|2[0-3]):([0-5][0-9])\b")
        .replace_all(&t, |c: &Captures| {
            let mut h: u64 = g(c, 1).parse().unwrap_or(0);
            let m: u64 = g(c, 2).parse().unwrap_or(0);
            let period = if h < 12 { "a.m." } else { "p.m." };
            if h > 12 {
                h -= 12;
            }
            let hw = cardinal(&h.to_string());
            if m == 0 {
                format!("{hw} o'clock {period}")
            } else {
                format!("{hw} {} {period}", cardinal(&m.to_string()))
            }
        })
        .into_owned();
    t = regex!(r"\b([0-9]+(\.[0-9]+)?(m|km|km/h|ft|L|tbsp|tsp|h|min|s|°C|°F))\b")
        .replace_all(&t, |c: &Captures| {
            let unit = g(c, 3);
            let names = match unit {
                "m" => ("meter", "meters"),
                "km" => ("kilometer", "kilometers"),
                "km/h" => ("kilometer per hour", "kilometers per hour"),
                "ft" => ("feet", "feet"),
                "L" => ("liter", "liters"),
                "tbsp" => ("tablespoon", "tablespoons"),
                "tsp" => ("teaspoon", "teaspoons"),
                "h" => ("hour", "hours"),
                "min" => ("minute", "minutes"),
                "s" => ("second", "seconds"),
                "°C" => ("degree celsius", "degrees celsius"),
                _ => ("degree fahrenheit", "degrees fahrenheit"),
            };
            let whole = g(c, 1);
            let num: u64 = whole.replace(unit, "").replace('.', "").parse().unwrap_or(0);
            let singular = c.get(2).is_none() && num == 1;
            whole.replace(unit, &format!(" {}", if singular { names.0 } else { names.1 }))
        })
        .into_owned();
    let pounds = |c: &Captures| money(g(c, 1), ("pound", "pounds"), ("penny", "pence"), "zero pounds");
    t = regex!(r"£([0-9.,]*[0-9]+)").replace_all(&t, pounds).into_owned();
    t = regex!(r"([0-9.,]*[0-9]+)£").replace_all(&t, pounds).into_owned();
    let dollars = |c: &Captures| money(g(c, 1), ("dollar", "dollars"), ("cent", "cents"), "zero dollars");
    t = regex!(r"\$([0-9.,]*[0-9]+)")
        .replace_all(&t, dollars)
        .into_owned();
    t = regex!(r"([(0-9.,]*[0-9]+)\$")
        .replace_all(&t, dollars)
        .into_owned();
    t = regex!(r"([0-9]+\.\s*[0-9]+)")
        .replace_all(&t, |c: &Captures| {
            let parts: Vec<&str> = g(c, 1).split('.').collect();
            let digits: Vec<String> = parts[1].chars().map(|ch| ch.to_string()).collect();
            format!("{} point {}", parts[0], digits.join(" "))
        })
        .into_owned();
    t = regex!(r"([0-9]+/[0-9]+)")
        .replace_all(&t, |c: &Captures| {
            let (a, b) = g(c, 0).split_once('/').unwrap_or(("0", "1"));
            let num: u64 = a.parse().unwrap_or(0);
            let den: u64 = b.parse().unwrap_or(1);
            let np = cardinal(a);
            let dp = match den {
                2 => (if num == 1 { "half" } else { "halves" }).to_string(),
                1 => return np,
                _ => {
                    let mut o = ordinal_words(&cardinal(b));
                    if num > 1 {
                        o.push('s');
                    }
                    o
                }
            };
            format!("{np} {dp}")
        })
        .into_owned();
    t = regex!(r"[0-9]+(st|nd|rd|th)")
        .replace_all(&t, |c: &Captures| {
            let m = g(c, 0);
            ordinal_words(&cardinal(&m[..m.len() - 2]))
        })
        .into_owned();
    t = regex!(r"[0-9]+")
        .replace_all(&t, |c: &Captures| expand_number(g(c, 0)))
        .into_owned();
    t = t.chars().map(|c| strip_accent(c).unwrap_or(c)).collect();
    t = t.replace('%', " percent");
    t.retain(|c| c.is_ascii_alphabetic() || " '.,?!-".contains(c));
    t = regex!(r"(?i)i\.e\.").replace_all(&t, "that is").into_owned();
    t = regex!(r"(?i)e\.g\.").replace_all(&t, "for example").into_owned();
    // a space before every capital that is not first and not after whitespace
    let mut out = String::with_capacity(t.len() + 8);
    let mut prev: Option<char> = None;
    for c in t.chars() {
        if c.is_ascii_uppercase() && prev.is_some_and(|p| !p.is_whitespace()) {
            out.push(' ');
        }
        out.push(c);
        prev = Some(c);
    }
    out
}

/// `english.text_normalize`.
pub fn text_normalize(text: &str) -> String {
    // upstream escapes its patterns before joining them, so "[;:：，；]" and
    // '["’]' only match those literal bracketed strings; in practice only the
    // three full-width marks are mapped.
    let t = text
        .replace("[;:：，；]", ",")
        .replace("[\"’]", "'")
        .replace('。', ".")
        .replace('！', "!")
        .replace('？', "?");
    let t = expand(&t);
    // ([punct\s])([punct])+ → \1
    let punct = |c: char| "!?…,.-".contains(c);
    let mut out = String::with_capacity(t.len());
    let chars: Vec<char> = t.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        out.push(c);
        if punct(c) || c.is_whitespace() {
            let mut j = i + 1;
            while j < chars.len() && punct(chars[j]) {
                j += 1;
            }
            i = j;
        } else {
            i += 1;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_money_time() {
        assert_eq!(text_normalize("I have 3 apples."), "I have three apples.");
        assert_eq!(text_normalize("It costs $25."), "It costs twenty-five dollars.");
        assert_eq!(expand("at 10:30"), "at ten thirty a.m.");
        assert_eq!(text_normalize("in 1990"), "in nineteen ninety");
        assert_eq!(text_normalize("in 2008"), "in two thousand eight");
        assert_eq!(text_normalize("2,500 people"), "twenty-five hundred people");
        assert_eq!(
            text_normalize("12,345 people"),
            "twelve thousand, three hundred forty-five people"
        );
        assert_eq!(text_normalize("1st place"), "first place");
        assert_eq!(text_normalize("50% off"), "fifty percent off");
    }

    #[test]
    fn capitals_split_and_marks_collapse() {
        assert_eq!(text_normalize("NASA and iPhone"), "N A S A and i Phone");
        assert_eq!(text_normalize("Wait!!! ok ,yes"), "Wait! ok yes");
    }
}
