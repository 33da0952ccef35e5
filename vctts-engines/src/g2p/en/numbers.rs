//! English number words as Python `inflect` 7.x writes them for upstream's
//! normaliser: `number_to_words(n, andword="")` (thousands groups joined by
//! ", " except before a final group under one hundred), the year style
//! `number_to_words(n, andword="", zero="oh", group=2)` and `ordinal`.

const ONES: [&str; 20] = [
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
const TENS: [&str; 10] = [
    "", "", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety",
];
const SCALES: [&str; 7] = [
    "",
    "thousand",
    "million",
    "billion",
    "trillion",
    "quadrillion",
    "quintillion",
];

fn under_100(n: u64) -> String {
    if n < 20 {
        ONES[n as usize].to_string()
    } else if n % 10 == 0 {
        TENS[(n / 10) as usize].to_string()
    } else {
        format!("{}-{}", TENS[(n / 10) as usize], ONES[(n % 10) as usize])
    }
}

fn under_1000(n: u64) -> String {
    let (h, r) = (n / 100, n % 100);
    match (h, r) {
        (0, r) => under_100(r),
        (h, 0) => format!("{} hundred", ONES[h as usize]),
        (h, r) => format!("{} hundred {}", ONES[h as usize], under_100(r)),
    }
}

/// `inflect.number_to_words(n, andword="")` for a non-negative integer given
/// as decimal digits (any length up to the quintillions; longer input is read
/// digit by digit).
pub(crate) fn cardinal(digits: &str) -> String {
    let digits = digits.trim_start_matches('0');
    if digits.is_empty() {
        return "zero".to_string();
    }
    if digits.len() > 21 {
        return digits
            .chars()
            .filter_map(|c| c.to_digit(10))
            .map(|d| ONES[d as usize])
            .collect::<Vec<_>>()
            .join(" ");
    }
    let mut groups: Vec<u64> = Vec::new();
    let mut end = digits.len();
    while end > 0 {
        let start = end.saturating_sub(3);
        groups.push(digits[start..end].parse().unwrap_or(0));
        end = start;
    }
    let mut parts: Vec<(usize, String)> = Vec::new();
    for (i, g) in groups.iter().enumerate().rev() {
        if *g == 0 {
            continue;
        }
        let w = under_1000(*g);
        parts.push((i, if i == 0 { w } else { format!("{w} {}", SCALES[i]) }));
    }
    let mut out = String::new();
    let n = parts.len();
    for (k, (scale, w)) in parts.iter().enumerate() {
        if k > 0 {
            let last_small = k == n - 1 && *scale == 0 && groups[0] < 100;
            out.push_str(if last_small { " " } else { ", " });
        }
        out.push_str(w);
    }
    out
}

/// Year style: digit pairs, "oh" for a leading zero in a pair, joined by ", ".
pub(crate) fn year_pairs(digits: &str) -> String {
    let chars: Vec<char> = digits.chars().collect();
    let mut pairs = Vec::new();
    let mut i = 0;
    // inflect chunks pairs from the left
    while i < chars.len() {
        let p: String = chars[i..(i + 2).min(chars.len())].iter().collect();
        pairs.push(p);
        i += 2;
    }
    pairs
        .iter()
        .map(|p| {
            let v: u64 = p.parse().unwrap_or(0);
            if p.len() == 1 {
                if v == 0 {
                    "oh".to_string()
                } else {
                    ONES[v as usize].to_string()
                }
            } else if p.starts_with('0') {
                if v == 0 {
                    "oh oh".to_string()
                } else {
                    format!("oh {}", ONES[v as usize])
                }
            } else {
                under_100(v)
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// `inflect.ordinal` of number words: the last word becomes ordinal.
pub(crate) fn ordinal_words(words: &str) -> String {
    let split = words.rfind([' ', '-']).map(|i| i + 1).unwrap_or(0);
    let (head, last) = words.split_at(split);
    let ord = match last {
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
    format!("{head}{ord}")
}

/// `inflect.ordinal` of a digit string: "1" → "1st", "12" → "12th".
pub(crate) fn ordinal_suffix(digits: &str) -> String {
    let n: u64 = digits.parse().unwrap_or(0);
    let suf = if (11..=13).contains(&(n % 100)) {
        "th"
    } else {
        match n % 10 {
            1 => "st",
            2 => "nd",
            3 => "rd",
            _ => "th",
        }
    };
    format!("{digits}{suf}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cardinals_match_inflect() {
        assert_eq!(cardinal("0"), "zero");
        assert_eq!(cardinal("21"), "twenty-one");
        assert_eq!(cardinal("101"), "one hundred one");
        assert_eq!(cardinal("1001"), "one thousand one");
        assert_eq!(cardinal("1100"), "one thousand, one hundred");
        assert_eq!(cardinal("1234"), "one thousand, two hundred thirty-four");
        assert_eq!(cardinal("5005005"), "five million, five thousand five");
        assert_eq!(cardinal("1001000"), "one million, one thousand");
        assert_eq!(cardinal("120000"), "one hundred twenty thousand");
    }

    #[test]
    fn years_and_ordinals() {
        assert_eq!(year_pairs("1998"), "nineteen, ninety-eight");
        assert_eq!(year_pairs("1905"), "nineteen, oh five");
        assert_eq!(year_pairs("1200"), "twelve, oh oh");
        assert_eq!(ordinal_words("twenty-one"), "twenty-first");
        assert_eq!(ordinal_words("one hundred"), "one hundredth");
        assert_eq!(ordinal_words("twenty"), "twentieth");
        assert_eq!(ordinal_suffix("12"), "12th");
        assert_eq!(ordinal_suffix("22"), "22nd");
    }
}
