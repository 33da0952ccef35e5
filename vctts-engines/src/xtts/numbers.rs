//! Numbers spelled out the way Coqui's XTTS cleaner does it (num2words).
//!
//! Implemented: English (thousands separators, decimals "point", ordinals
//! 1st/2nd/3rd/4th, cardinals with num2words' "and" and comma rules),
//! German, French and Spanish integer cardinals below one million.
//! Everything else keeps its digits (the XTTS BPE then reads them as
//! characters): other languages' numbers, currencies, decimals outside
//! English, German/French/Spanish numbers of a million or more.
//!
//! Invariant: [`expand`] is total; text without ASCII digits comes back unchanged.

const EN_ONES: [&str; 20] = [
    "zero",
    "one",
    "two",
    "three",
    "four",
    "five",
    "six",
    "seven",
    "eight",
    "nine",
    "ten",
    "eleven",
    "twelve",
    "thirteen",
    "fourteen",
    "fifteen",
    "sixteen",
    "seventeen",
    "eighteen",
    "nineteen",
];
const EN_TENS: [&str; 10] = [
    "", "", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety",
];
const EN_SCALES: [&str; 7] = [
    "",
    "thousand",
    "million",
    "billion",
    "trillion",
    "quadrillion",
    "quintillion",
];

fn en_below_100(n: u64) -> String {
    if n < 20 {
        EN_ONES[n as usize].to_string()
    } else if n % 10 == 0 {
        EN_TENS[(n / 10) as usize].to_string()
    } else {
        format!("{}-{}", EN_TENS[(n / 10) as usize], EN_ONES[(n % 10) as usize])
    }
}

fn en_below_1000(n: u64) -> String {
    let (h, r) = (n / 100, n % 100);
    match (h, r) {
        (0, r) => en_below_100(r),
        (h, 0) => format!("{} hundred", EN_ONES[h as usize]),
        (h, r) => format!("{} hundred and {}", EN_ONES[h as usize], en_below_100(r)),
    }
}

/// num2words `to_cardinal` for English.
pub fn en_cardinal(n: u64) -> String {
    if n < 1000 {
        return en_below_1000(n);
    }
    let mut groups = Vec::new();
    let mut x = n;
    while x > 0 {
        groups.push(x % 1000);
        x /= 1000;
    }
    let mut out = String::new();
    for (i, &g) in groups.iter().enumerate().rev() {
        if g == 0 {
            continue;
        }
        let part = if i == 0 {
            en_below_1000(g)
        } else {
            format!("{} {}", en_below_1000(g), EN_SCALES[i])
        };
        if !out.is_empty() {
            // num2words joins a lower part below 100 with "and", else ", ".
            out.push_str(if i == 0 && g < 100 { " and " } else { ", " });
        }
        out.push_str(&part);
    }
    out
}

/// num2words `to_ordinal` for English.
pub fn en_ordinal(n: u64) -> String {
    let card = en_cardinal(n);
    let cut = card.rfind([' ', '-']).map_or(0, |i| i + 1);
    let (head, last) = card.split_at(cut);
    let last = match last {
        "one" => "first".to_string(),
        "two" => "second".to_string(),
        "three" => "third".to_string(),
        "five" => "fifth".to_string(),
        "eight" => "eighth".to_string(),
        "nine" => "ninth".to_string(),
        "twelve" => "twelfth".to_string(),
        w if w.ends_with('y') => format!("{}ieth", &w[..w.len() - 1]),
        w => format!("{w}th"),
    };
    format!("{head}{last}")
}

const DE_ONES: [&str; 20] = [
    "null",
    "eins",
    "zwei",
    "drei",
    "vier",
    "fünf",
    "sechs",
    "sieben",
    "acht",
    "neun",
    "zehn",
    "elf",
    "zwölf",
    "dreizehn",
    "vierzehn",
    "fünfzehn",
    "sechzehn",
    "siebzehn",
    "achtzehn",
    "neunzehn",
];
const DE_TENS: [&str; 10] = [
    "", "", "zwanzig", "dreißig", "vierzig", "fünfzig", "sechzig", "siebzig", "achtzig", "neunzig",
];

fn de_below_1000(n: u64, final_eins: bool) -> String {
    let (h, r) = (n / 100, n % 100);
    let mut out = String::new();
    if h > 0 {
        out.push_str(if h == 1 { "ein" } else { DE_ONES[h as usize] });
        out.push_str("hundert");
    }
    if r == 0 && h > 0 {
        return out;
    }
    if r < 20 {
        if r == 1 && !final_eins {
            out.push_str("ein");
        } else {
            out.push_str(DE_ONES[r as usize]);
        }
    } else {
        let o = r % 10;
        if o > 0 {
            out.push_str(if o == 1 { "ein" } else { DE_ONES[o as usize] });
            out.push_str("und");
        }
        out.push_str(DE_TENS[(r / 10) as usize]);
    }
    out
}

fn de_cardinal(n: u64) -> Option<String> {
    if n >= 1_000_000 {
        return None;
    }
    let (t, r) = (n / 1000, n % 1000);
    if t == 0 {
        return Some(de_below_1000(r, true));
    }
    let mut out = if t == 1 {
        "eintausend".to_string()
    } else {
        de_below_1000(t, false) + "tausend"
    };
    if r > 0 {
        out.push_str(&de_below_1000(r, true));
    }
    Some(out)
}

const FR_ONES: [&str; 17] = [
    "zéro", "un", "deux", "trois", "quatre", "cinq", "six", "sept", "huit", "neuf", "dix", "onze", "douze",
    "treize", "quatorze", "quinze", "seize",
];

fn fr_below_100(n: u64) -> String {
    match n {
        0..=16 => FR_ONES[n as usize].to_string(),
        17..=19 => format!("dix-{}", FR_ONES[(n - 10) as usize]),
        20..=69 => {
            let tens = ["", "", "vingt", "trente", "quarante", "cinquante", "soixante"][(n / 10) as usize];
            match n % 10 {
                0 => tens.to_string(),
                1 => format!("{tens} et un"),
                o => format!("{tens}-{}", FR_ONES[o as usize]),
            }
        }
        70..=79 => {
            if n == 71 {
                "soixante et onze".to_string()
            } else {
                format!("soixante-{}", fr_below_100(n - 60))
            }
        }
        80 => "quatre-vingts".to_string(),
        _ => format!("quatre-vingt-{}", fr_below_100(n - 80)),
    }
}

/// `final_` is false before "mille": then 80 and the hundreds take no plural s.
fn fr_below_1000(n: u64, final_: bool) -> String {
    let (h, r) = (n / 100, n % 100);
    let mut out = match h {
        0 => String::new(),
        1 => "cent".to_string(),
        h if r == 0 && final_ => format!("{} cents", FR_ONES[h as usize]),
        h => format!("{} cent", FR_ONES[h as usize]),
    };
    if r > 0 || h == 0 {
        if !out.is_empty() {
            out.push(' ');
        }
        if r == 80 && !final_ {
            out.push_str("quatre-vingt");
        } else {
            out.push_str(&fr_below_100(r));
        }
    }
    out
}

fn fr_cardinal(n: u64) -> Option<String> {
    if n >= 1_000_000 {
        return None;
    }
    let (t, r) = (n / 1000, n % 1000);
    if t == 0 {
        return Some(fr_below_1000(r, true));
    }
    let mut out = if t == 1 {
        "mille".to_string()
    } else {
        format!("{} mille", fr_below_1000(t, false))
    };
    if r > 0 {
        out.push(' ');
        out.push_str(&fr_below_1000(r, true));
    }
    Some(out)
}

const ES_ONES: [&str; 30] = [
    "cero",
    "uno",
    "dos",
    "tres",
    "cuatro",
    "cinco",
    "seis",
    "siete",
    "ocho",
    "nueve",
    "diez",
    "once",
    "doce",
    "trece",
    "catorce",
    "quince",
    "dieciséis",
    "diecisiete",
    "dieciocho",
    "diecinueve",
    "veinte",
    "veintiuno",
    "veintidós",
    "veintitrés",
    "veinticuatro",
    "veinticinco",
    "veintiséis",
    "veintisiete",
    "veintiocho",
    "veintinueve",
];

fn es_below_100(n: u64) -> String {
    if n < 30 {
        return ES_ONES[n as usize].to_string();
    }
    let tens = [
        "",
        "",
        "",
        "treinta",
        "cuarenta",
        "cincuenta",
        "sesenta",
        "setenta",
        "ochenta",
        "noventa",
    ][(n / 10) as usize];
    match n % 10 {
        0 => tens.to_string(),
        o => format!("{tens} y {}", ES_ONES[o as usize]),
    }
}

fn es_below_1000(n: u64) -> String {
    let (h, r) = (n / 100, n % 100);
    let hundreds = [
        "",
        "ciento",
        "doscientos",
        "trescientos",
        "cuatrocientos",
        "quinientos",
        "seiscientos",
        "setecientos",
        "ochocientos",
        "novecientos",
    ];
    match (h, r) {
        (0, r) => es_below_100(r),
        (1, 0) => "cien".to_string(),
        (h, 0) => hundreds[h as usize].to_string(),
        (h, r) => format!("{} {}", hundreds[h as usize], es_below_100(r)),
    }
}

fn es_cardinal(n: u64) -> Option<String> {
    if n >= 1_000_000 {
        return None;
    }
    let (t, r) = (n / 1000, n % 1000);
    if t == 0 {
        return Some(es_below_1000(r));
    }
    let mut out = if t == 1 {
        "mil".to_string()
    } else {
        format!("{} mil", es_below_1000(t))
    };
    if r > 0 {
        out.push(' ');
        out.push_str(&es_below_1000(r));
    }
    Some(out)
}

/// Cardinal words for `n` in `lang` (`None` where not implemented).
pub fn cardinal(n: u64, lang: &str) -> Option<String> {
    match lang {
        "en" => Some(en_cardinal(n)),
        "de" => de_cardinal(n),
        "fr" => fr_cardinal(n),
        "es" => es_cardinal(n),
        _ => None,
    }
}

/// English: drops thousands commas in `1,234,567(.89)` (Coqui's
/// `_comma_number_re`), as the other steps read plain digit runs.
fn remove_en_commas(chars: &[char]) -> Vec<char> {
    let mut out = Vec::with_capacity(chars.len());
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c == ',' && i > 0 && chars[i - 1].is_ascii_digit() {
            let next3 = chars
                .get(i + 1..i + 4)
                .is_some_and(|s| s.iter().all(char::is_ascii_digit));
            let after = chars.get(i + 4).is_none_or(|c| !c.is_ascii_digit());
            if next3 && after {
                i += 1;
                continue;
            }
        }
        out.push(c);
        i += 1;
    }
    out
}

/// Spells out the numbers of lowercased text for `lang` (a base code).
pub fn expand(text: &str, lang: &str) -> String {
    if !text.bytes().any(|b| b.is_ascii_digit()) {
        return text.to_string();
    }
    let chars: Vec<char> = text.chars().collect();
    let chars = if lang == "en" {
        remove_en_commas(&chars)
    } else {
        chars
    };
    let mut out = String::with_capacity(text.len() * 2);
    let mut i = 0;
    while i < chars.len() {
        if !chars[i].is_ascii_digit() {
            out.push(chars[i]);
            i += 1;
            continue;
        }
        let start = i;
        while i < chars.len() && chars[i].is_ascii_digit() {
            i += 1;
        }
        let digits: String = chars[start..i].iter().collect();
        let Ok(n) = digits.parse::<u64>() else {
            out.push_str(&digits);
            continue;
        };
        if lang == "en" {
            // Decimal: "12.5" -> "twelve point five".
            if i + 1 < chars.len() && chars[i] == '.' && chars[i + 1].is_ascii_digit() {
                let fs = i + 1;
                let mut j = fs;
                while j < chars.len() && chars[j].is_ascii_digit() {
                    j += 1;
                }
                out.push_str(&en_cardinal(n));
                out.push_str(" point");
                // num2words reads the fraction digit by digit, without trailing zeros.
                let frac: String = chars[fs..j].iter().collect();
                let frac = frac.trim_end_matches('0');
                let frac = if frac.is_empty() { "0" } else { frac };
                for d in frac.chars() {
                    out.push(' ');
                    out.push_str(EN_ONES[d.to_digit(10).unwrap_or(0) as usize]);
                }
                i = j;
                continue;
            }
            let suffix: String = chars[i..chars.len().min(i + 2)].iter().collect();
            if ["st", "nd", "rd", "th"].contains(&suffix.as_str()) {
                out.push_str(&en_ordinal(n));
                i += 2;
                continue;
            }
        }
        match cardinal(n, lang) {
            Some(words) => out.push_str(&words),
            None => out.push_str(&digits),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn english_follows_num2words() {
        assert_eq!(en_cardinal(0), "zero");
        assert_eq!(en_cardinal(21), "twenty-one");
        assert_eq!(en_cardinal(123), "one hundred and twenty-three");
        assert_eq!(en_cardinal(1001), "one thousand and one");
        assert_eq!(en_cardinal(1100), "one thousand, one hundred");
        assert_eq!(
            en_cardinal(1_234_567),
            "one million, two hundred and thirty-four thousand, five hundred and sixty-seven"
        );
        assert_eq!(en_ordinal(1), "first");
        assert_eq!(en_ordinal(21), "twenty-first");
        assert_eq!(en_ordinal(20), "twentieth");
        assert_eq!(en_ordinal(12), "twelfth");
        assert_eq!(expand("in 12.5 seconds", "en"), "in twelve point five seconds");
        assert_eq!(expand("this is a 1st test", "en"), "this is a first test");
        assert_eq!(
            expand("that's 100,000 people", "en"),
            "that's one hundred thousand people"
        );
    }

    #[test]
    fn german_french_spanish_cardinals() {
        assert_eq!(expand("es gab 50 soldaten", "de"), "es gab fünfzig soldaten");
        assert_eq!(de_cardinal(21).unwrap(), "einundzwanzig");
        assert_eq!(de_cardinal(101).unwrap(), "einhunderteins");
        assert_eq!(de_cardinal(1000).unwrap(), "eintausend");
        assert_eq!(fr_cardinal(21).unwrap(), "vingt et un");
        assert_eq!(fr_cardinal(80).unwrap(), "quatre-vingts");
        assert_eq!(fr_cardinal(91).unwrap(), "quatre-vingt-onze");
        assert_eq!(fr_cardinal(200).unwrap(), "deux cents");
        assert_eq!(fr_cardinal(2001).unwrap(), "deux mille un");
        assert_eq!(es_cardinal(21).unwrap(), "veintiuno");
        assert_eq!(es_cardinal(100).unwrap(), "cien");
        assert_eq!(es_cardinal(101).unwrap(), "ciento uno");
        assert_eq!(es_cardinal(1001).unwrap(), "mil uno");
    }

    #[test]
    fn other_languages_keep_digits_and_nothing_panics() {
        assert_eq!(expand("50 katona", "hu"), "50 katona");
        assert_eq!(expand("no digits", "en"), "no digits");
        let long = "9".repeat(40);
        assert_eq!(expand(&long, "en"), long);
        assert_eq!(expand("1,", "en"), "one,");
    }
}
