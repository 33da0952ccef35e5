//! Numbers read out the way Coqui's XTTS cleaner does it
//! (`expand_numbers_multilingual` over num2words 0.5.14).
//!
//! The pass follows Coqui's order on lowercased text: thousands separators
//! are dropped (`,` in en/ru, `.` elsewhere, with Coqui's own patterns),
//! then `£ $ €` amounts become currency words, then decimals (`12.5`,
//! `12,5`; not in tr), then ordinals by the language's suffixes (`1st`,
//! `1er`, `5.` ...), then every remaining digit run becomes a cardinal.
//! The words are num2words' rules, rewritten here: the generic
//! split-and-merge of num2words' base class with each language's merge
//! (en, de, fr, es, nl, pt, ko), and the languages with their own
//! converters (it; pl and cs; ru with its genders and cases; hu), plus
//! their ordinal, decimal and currency rules. All of it is checked line by
//! line against Coqui's own output on the corpus
//! `tests/fixtures/xtts/numbers_corpus.json`
//! (`scripts/fixtures/make_xtts_numbers.py`), including num2words'
//! oddities (English currency words in Hungarian, a Czech or Polish `$`
//! left in place because num2words has no such currency there).
//!
//! Languages read out: [`READ_OUT`] (14 of the 15 that Coqui sends through
//! num2words). Turkish and Arabic follow num2words' own converters there,
//! quirks included: Turkish words are written without spaces
//! ("ikibinyirmidört"), an integer past 2^53 that a float cannot hold reads
//! as nothing, there is no decimal pass (`3.5` is the ordinal "üçüncü" then
//! "beş") and no currency words (num2words-TR refuses Coqui's `currency`
//! argument, so `$20` keeps its sign); Arabic reads every currency as Saudi
//! riyals and halalas, decimals as "اثنا عشر  , خمسون", and past 28 digits
//! repeats the rounding of Python's `decimal` (whose precision num2words
//! widens process-wide; vctts starts each text as a fresh process does).
//! Hindi keeps its digits, and there Coqui itself fails (num2words 0.5.14 has
//! no Hindi). Chinese numbers are read by [`crate::text::normalize`];
//! Japanese is romanised first (cutlet's rules, [`super::japanese`]), and Coqui
//! does not read numbers in it: its digits pass through as cutlet leaves them.
//!
//! Where Coqui raises (a number past num2words' largest word, Czech
//! ordinals, Korean ordinals of 100 and more, an amount it cannot parse),
//! the whole of Coqui's cleaner fails; vctts instead keeps that match as
//! written and goes on (a currency failure ends the currency step, as
//! Coqui's `suppress` does). A digit run of more than [`LONG_RUN`] digits
//! that num2words cannot read (e.g. `"1234567890" * 500`, where Coqui fails
//! on Python's 4,300-digit `int()` limit) is read digit by digit in the
//! language's words, three digits per comma-separated group, so the
//! sentence splitter cuts it at the language's character limit and no
//! sentence grows with the run.
//!
//! Invariant: [`expand`] is total (no panic on any input); text without
//! ASCII digits comes back unchanged.

use regex::{Captures, Regex};
use std::sync::OnceLock;

/// The languages whose numbers are read out (base codes).
pub const READ_OUT: [&str; 14] = [
    "en", "de", "fr", "es", "nl", "it", "pt", "pl", "cs", "ru", "hu", "ko", "tr", "ar",
];

/// A word with the value it stands for (num2words' `(text, num)` pairs).
type Pair = (String, u128);

/// num2words' `merge`: joins two neighbouring pairs of the split tree.
type Merge = fn(Pair, Pair) -> Pair;

/// A node of num2words' split tree: a word with its value, or a group.
#[derive(Debug, Clone)]
enum Node {
    Word(String, u128),
    Group(Vec<Node>),
}

/// The number words of a language that uses num2words' generic
/// split-and-merge (`Num2Word_Base.splitnum` / `clean`).
struct Cards {
    /// (value, word), largest first.
    cards: Vec<(u128, String)>,
    /// num2words' `MAXVAL`: 1000 × the largest card.
    maxval: u128,
    merge: Merge,
}

impl Cards {
    /// `high` are num2words' `high_numwords` prefixes; `giga`/`mega` the
    /// suffixes (`None`: the family has no such words); `en_style`: English
    /// steps by 10^3 with one suffix instead of num2words-EU's 10^6 pairs.
    fn new(
        high: &[String],
        giga: Option<&str>,
        mega: &str,
        en_style: bool,
        mid: &[(u128, &str)],
        low: &[&str],
        merge: Merge,
    ) -> Cards {
        let mut cards: Vec<(u128, String)> = Vec::new();
        let pow = |n: usize| -> Option<u128> { 10u128.checked_pow(n as u32) };
        if en_style {
            let max = 3 + 3 * high.len();
            for (i, word) in high.iter().enumerate() {
                if let Some(v) = pow(max - 3 * i) {
                    cards.push((v, format!("{word}{mega}")));
                }
            }
        } else {
            let cap = 3 + 6 * high.len();
            for (i, word) in high.iter().enumerate() {
                let n = cap - 6 * i;
                if let (Some(g), Some(v)) = (giga, pow(n)) {
                    cards.push((v, format!("{word}{g}")));
                }
                if let Some(v) = pow(n - 3) {
                    cards.push((v, format!("{word}{mega}")));
                }
            }
        }
        for (v, w) in mid {
            cards.push((*v, w.to_string()));
        }
        for (i, w) in low.iter().enumerate() {
            cards.push(((low.len() - 1 - i) as u128, w.to_string()));
        }
        cards.sort_by_key(|c| std::cmp::Reverse(c.0));
        cards.dedup_by_key(|c| c.0);
        // num2words' MAXVAL is 1000 × its largest card; cards past u128 are
        // left out here, so numbers that large are refused (None) instead.
        let largest = match (en_style, giga) {
            (true, _) => 3 + 3 * high.len(),
            (false, Some(_)) => 3 + 6 * high.len(),
            (false, None) => 6 * high.len(),
        };
        let maxval = if largest + 3 <= 38 {
            10u128.pow((largest + 3) as u32)
        } else {
            u128::MAX
        };
        Cards { cards, maxval, merge }
    }

    fn word(&self, v: u128) -> String {
        self.cards
            .iter()
            .find(|c| c.0 == v)
            .map(|c| c.1.clone())
            .unwrap_or_default()
    }

    fn splitnum(&self, value: u128) -> Vec<Node> {
        for (elem, word) in &self.cards {
            if *elem > value {
                continue;
            }
            let (div, rem) = if value == 0 {
                (1, 0)
            } else {
                (value / elem, value % elem)
            };
            let mut out = Vec::new();
            if div == 1 {
                out.push(Node::Word(self.word(1), 1));
            } else {
                out.push(Node::Group(self.splitnum(div)));
            }
            out.push(Node::Word(word.clone(), *elem));
            if rem > 0 {
                out.push(Node::Group(self.splitnum(rem)));
            }
            return out;
        }
        Vec::new()
    }

    fn clean(&self, val: Vec<Node>) -> Node {
        let mut val = val;
        let mut out = val.clone();
        while val.len() != 1 {
            out = Vec::new();
            match (&val[0], &val[1]) {
                (Node::Word(a, x), Node::Word(b, y)) => {
                    let (w, v) = (self.merge)((a.clone(), *x), (b.clone(), *y));
                    out.push(Node::Word(w, v));
                    if val.len() > 2 {
                        out.push(Node::Group(val[2..].to_vec()));
                    }
                }
                _ => {
                    for elem in &val {
                        match elem {
                            Node::Group(g) if g.len() == 1 => out.push(g[0].clone()),
                            Node::Group(g) => out.push(self.clean(g.clone())),
                            w => out.push(w.clone()),
                        }
                    }
                }
            }
            val = out.clone();
        }
        out.into_iter().next().unwrap_or(Node::Word(String::new(), 0))
    }

    /// `to_cardinal` for an integer (`None` past num2words' MAXVAL).
    fn cardinal(&self, value: u128) -> Option<String> {
        if value >= self.maxval || self.cards.is_empty() {
            return None;
        }
        match self.clean(self.splitnum(value)) {
            Node::Word(w, _) => Some(w),
            Node::Group(_) => None,
        }
    }
}

/// num2words-EU's `gen_high_numwords`: the Latin prefixes, largest first.
fn eu_high(lows: &[&str], units: &[&str], tens: &[&str], first: &str) -> Vec<String> {
    let mut combos: Vec<String> = Vec::new();
    for t in tens {
        for u in units {
            combos.push(format!("{u}{t}"));
        }
    }
    combos.reverse();
    let mut out = vec![first.to_string()];
    out.extend(combos);
    out.extend(lows.iter().map(|s| s.to_string()));
    out
}

const EU_UNITS: [&str; 10] = [
    "", "un", "duo", "tre", "quattuor", "quin", "sex", "sept", "octo", "novem",
];
const EU_TENS: [&str; 9] = [
    "dec",
    "vigint",
    "trigint",
    "quadragint",
    "quinquagint",
    "sexagint",
    "septuagint",
    "octogint",
    "nonagint",
];
const EU_LOWS: [&str; 9] = ["non", "oct", "sept", "sext", "quint", "quadr", "tr", "b", "m"];
const DE_UNITS: [&str; 10] = [
    "", "un", "duo", "tre", "quattuor", "quin", "sex", "sept", "okto", "novem",
];
const DE_TENS: [&str; 9] = [
    "dez",
    "vigint",
    "trigint",
    "quadragint",
    "quinquagint",
    "sexagint",
    "septuagint",
    "oktogint",
    "nonagint",
];

// ---------------------------------------------------------------- English

fn en_merge((lt, ln): (String, u128), (rt, rn): (String, u128)) -> (String, u128) {
    if ln == 1 && rn < 100 {
        (rt, rn)
    } else if 100 > ln && ln > rn {
        (format!("{lt}-{rt}"), ln + rn)
    } else if ln >= 100 && 100 > rn {
        (format!("{lt} and {rt}"), ln + rn)
    } else if rn > ln {
        (format!("{lt} {rt}"), ln * rn)
    } else {
        (format!("{lt}, {rt}"), ln + rn)
    }
}

fn en() -> &'static Cards {
    static C: OnceLock<Cards> = OnceLock::new();
    C.get_or_init(|| {
        Cards::new(
            &eu_high(&EU_LOWS, &EU_UNITS, &EU_TENS, "cent"),
            None,
            "illion",
            true,
            &[
                (1000, "thousand"),
                (100, "hundred"),
                (90, "ninety"),
                (80, "eighty"),
                (70, "seventy"),
                (60, "sixty"),
                (50, "fifty"),
                (40, "forty"),
                (30, "thirty"),
            ],
            &[
                "twenty",
                "nineteen",
                "eighteen",
                "seventeen",
                "sixteen",
                "fifteen",
                "fourteen",
                "thirteen",
                "twelve",
                "eleven",
                "ten",
                "nine",
                "eight",
                "seven",
                "six",
                "five",
                "four",
                "three",
                "two",
                "one",
                "zero",
            ],
            en_merge,
        )
    })
}

fn en_ordinal_words(value: u128) -> Option<String> {
    let card = en().cardinal(value)?;
    let (head, last) = match card.rfind([' ', '-']) {
        Some(i) => card.split_at(i + 1),
        None => ("", card.as_str()),
    };
    let last = match last {
        "one" => "first".to_string(),
        "two" => "second".to_string(),
        "three" => "third".to_string(),
        "four" => "fourth".to_string(),
        "five" => "fifth".to_string(),
        "six" => "sixth".to_string(),
        "seven" => "seventh".to_string(),
        "eight" => "eighth".to_string(),
        "nine" => "ninth".to_string(),
        "ten" => "tenth".to_string(),
        "eleven" => "eleventh".to_string(),
        "twelve" => "twelfth".to_string(),
        w if w.ends_with('y') => format!("{}ieth", &w[..w.len() - 1]),
        w => format!("{w}th"),
    };
    Some(format!("{head}{last}"))
}

/// num2words `to_ordinal` for English.
pub fn en_ordinal(n: u64) -> String {
    en_ordinal_words(n.into()).unwrap_or_default()
}

/// num2words `to_cardinal` for English.
pub fn en_cardinal(n: u64) -> String {
    en().cardinal(n.into()).unwrap_or_default()
}

// ----------------------------------------------------------------- German

fn de_merge((mut ct, cn): (String, u128), (mut nt, nn): (String, u128)) -> (String, u128) {
    if cn == 1 {
        if nn == 100 || nn == 1000 {
            return (format!("ein{nt}"), nn);
        } else if nn < 1_000_000 {
            return (nt, nn);
        }
        ct = "eine".into();
    }
    let val;
    if nn > cn {
        if nn >= 1_000_000 {
            if cn > 1 {
                nt.push_str(if nt.ends_with('e') { "n" } else { "en" });
            }
            ct.push(' ');
        }
        val = cn * nn;
    } else {
        if nn < 10 && 10 < cn && cn < 100 {
            if nn == 1 {
                nt = "ein".into();
            }
            let c = std::mem::take(&mut ct);
            ct = format!("{nt}und");
            nt = c;
        } else if cn >= 1_000_000 {
            ct.push(' ');
        }
        val = cn + nn;
    }
    (ct + &nt, val)
}

fn de() -> &'static Cards {
    static C: OnceLock<Cards> = OnceLock::new();
    C.get_or_init(|| {
        let lows = ["Non", "Okt", "Sept", "Sext", "Quint", "Quadr", "Tr", "B", "M"];
        Cards::new(
            &eu_high(&lows, &DE_UNITS, &DE_TENS, "zent"),
            Some("illiarde"),
            "illion",
            false,
            &[
                (1000, "tausend"),
                (100, "hundert"),
                (90, "neunzig"),
                (80, "achtzig"),
                (70, "siebzig"),
                (60, "sechzig"),
                (50, "fünfzig"),
                (40, "vierzig"),
                (30, "dreißig"),
            ],
            &[
                "zwanzig",
                "neunzehn",
                "achtzehn",
                "siebzehn",
                "sechzehn",
                "fünfzehn",
                "vierzehn",
                "dreizehn",
                "zwölf",
                "elf",
                "zehn",
                "neun",
                "acht",
                "sieben",
                "sechs",
                "fünf",
                "vier",
                "drei",
                "zwei",
                "eins",
                "null",
            ],
            de_merge,
        )
    })
}

fn de_ordinal(value: u128) -> Option<String> {
    let mut w = de().cardinal(value)?.to_lowercase();
    const ORDS: [(&str, &str); 11] = [
        ("eins", "ers"),
        ("drei", "drit"),
        ("acht", "ach"),
        ("sieben", "sieb"),
        ("ig", "igs"),
        ("ert", "erts"),
        ("end", "ends"),
        ("ion", "ions"),
        ("nen", "ns"),
        ("rde", "rds"),
        ("rden", "rds"),
    ];
    if let Some((k, v)) = ORDS.iter().find(|(k, _)| w.ends_with(k)) {
        w.truncate(w.len() - k.len());
        w.push_str(v);
    }
    let mut res = w + "te";
    if res == "eintausendste" || res == "einhundertste" {
        res = res.replacen("ein", "", 1);
    }
    // num2words then drops "eine " and the space before a final
    // "...millionste"/"...milliardste".
    static BIG: OnceLock<[Regex; 2]> = OnceLock::new();
    let big = BIG.get_or_init(|| {
        [
            Regex::new(r"eine ([a-z]+(?:illion|illiard)ste)$").expect("static pattern"),
            Regex::new(r" ([a-z]+(?:illion|illiard)ste)$").expect("static pattern"),
        ]
    });
    for re in big {
        res = re.replace(&res, "$1").into_owned();
    }
    Some(res)
}

// ------------------------------------------------------------------ Dutch

fn nl_merge((mut ct, cn): (String, u128), (mut nt, nn): (String, u128)) -> (String, u128) {
    if cn == 1 {
        if nn < 1_000_000 {
            return (nt, nn);
        }
        ct = "een".into();
    }
    let val;
    if nn > cn {
        if nn >= 1_000_000 {
            ct.push(' ');
        }
        val = cn * nn;
    } else {
        if nn < 10 && 10 < cn && cn < 100 {
            if nn == 1 {
                nt = "een".into();
            }
            nt.push_str(if nt.ends_with('e') { "ën" } else { "en" });
            std::mem::swap(&mut nt, &mut ct);
        } else if cn >= 1_000_000 {
            ct.push(' ');
        }
        val = cn + nn;
    }
    (ct + &nt, val)
}

fn nl() -> &'static Cards {
    static C: OnceLock<Cards> = OnceLock::new();
    C.get_or_init(|| {
        let lows = ["non", "okt", "sept", "sext", "quint", "quadr", "tr", "b", "m"];
        Cards::new(
            &eu_high(&lows, &DE_UNITS, &DE_TENS, "zend"),
            Some("iljard"),
            "iljoen",
            false,
            &[
                (1000, "duizend"),
                (100, "honderd"),
                (90, "negentig"),
                (80, "tachtig"),
                (70, "zeventig"),
                (60, "zestig"),
                (50, "vijftig"),
                (40, "veertig"),
                (30, "dertig"),
            ],
            &[
                "twintig",
                "negentien",
                "achttien",
                "zeventien",
                "zestien",
                "vijftien",
                "veertien",
                "dertien",
                "twaalf",
                "elf",
                "tien",
                "negen",
                "acht",
                "zeven",
                "zes",
                "vijf",
                "vier",
                "drie",
                "twee",
                "één",
                "nul",
            ],
            nl_merge,
        )
    })
}

fn nl_ordinal(value: u128) -> Option<String> {
    let mut w = nl().cardinal(value)?;
    const ORDS: [(&str, &str); 18] = [
        ("nul", "nuld"),
        ("één", "eerst"),
        ("twee", "tweed"),
        ("drie", "derd"),
        ("vier", "vierd"),
        ("vijf", "vijfd"),
        ("zes", "zesd"),
        ("zeven", "zevend"),
        ("acht", "achtst"),
        ("negen", "negend"),
        ("tien", "tiend"),
        ("elf", "elfd"),
        ("twaalf", "twaalfd"),
        ("ig", "igst"),
        ("erd", "erdst"),
        ("end", "endst"),
        ("joen", "joenst"),
        ("rd", "rdst"),
    ];
    if let Some((k, v)) = ORDS.iter().find(|(k, _)| w.ends_with(k)) {
        w.truncate(w.len() - k.len());
        w.push_str(v);
    }
    Some(w + "e")
}

// ---------------------------------------------------------------- Spanish

fn es_merge((mut ct, cn): (String, u128), (mut nt, nn): (String, u128)) -> (String, u128) {
    if cn == 1 {
        if nn < 1_000_000 {
            return (nt, nn);
        }
        ct = "un".into();
    } else if cn == 100 && nn % 1000 != 0 {
        ct.push_str("to");
    }
    if nn < cn {
        if cn < 100 {
            return (format!("{ct} y {nt}"), cn + nn);
        }
        return (format!("{ct} {nt}"), cn + nn);
    } else if nn % 1_000_000 == 0 && cn > 1 {
        let keep = nt.chars().count().saturating_sub(3);
        nt = nt.chars().take(keep).collect::<String>() + "lones";
    }
    if nn == 100 {
        match cn {
            5 => {
                ct = "quinien".into();
                nt = String::new();
            }
            7 => ct = "sete".into(),
            9 => ct = "nove".into(),
            _ => {}
        }
        nt.push_str("tos");
    } else {
        nt = format!(" {nt}");
    }
    (ct + &nt, cn * nn)
}

fn es() -> &'static Cards {
    static C: OnceLock<Cards> = OnceLock::new();
    C.get_or_init(|| {
        let high: Vec<String> = ["cuatr", "tr", "b", "m"].iter().map(|s| s.to_string()).collect();
        Cards::new(
            &high,
            None,
            "illón",
            false,
            &[
                (1000, "mil"),
                (100, "cien"),
                (90, "noventa"),
                (80, "ochenta"),
                (70, "setenta"),
                (60, "sesenta"),
                (50, "cincuenta"),
                (40, "cuarenta"),
                (30, "treinta"),
            ],
            &[
                "veintinueve",
                "veintiocho",
                "veintisiete",
                "veintiséis",
                "veinticinco",
                "veinticuatro",
                "veintitrés",
                "veintidós",
                "veintiuno",
                "veinte",
                "diecinueve",
                "dieciocho",
                "diecisiete",
                "dieciséis",
                "quince",
                "catorce",
                "trece",
                "doce",
                "once",
                "diez",
                "nueve",
                "ocho",
                "siete",
                "seis",
                "cinco",
                "cuatro",
                "tres",
                "dos",
                "uno",
                "cero",
            ],
            es_merge,
        )
    })
}

fn es_ord_stem(v: u128) -> &'static str {
    match v {
        1 => "primer",
        2 => "segund",
        3 => "tercer",
        4 => "cuart",
        5 => "quint",
        6 => "sext",
        7 => "séptim",
        8 => "octav",
        9 => "noven",
        10 => "décim",
        20 => "vigésim",
        30 => "trigésim",
        40 => "quadragésim",
        50 => "quincuagésim",
        60 => "sexagésim",
        70 => "septuagésim",
        80 => "octogésim",
        90 => "nonagésim",
        100 => "centésim",
        200 => "ducentésim",
        300 => "tricentésim",
        400 => "cuadrigentésim",
        500 => "quingentésim",
        600 => "sexcentésim",
        700 => "septigentésim",
        800 => "octigentésim",
        900 => "noningentésim",
        1_000 => "milésim",
        1_000_000 => "millonésim",
        1_000_000_000 => "billonésim",
        1_000_000_000_000 => "trillonésim",
        1_000_000_000_000_000 => "cuadrillonésim",
        _ => "",
    }
}

fn es_ordinal(value: u128) -> Option<String> {
    let text = if value == 0 {
        String::new()
    } else if value <= 10 {
        format!("{}o", es_ord_stem(value))
    } else if value <= 12 {
        format!("{}o{}", es_ord_stem(10), es_ordinal(value - 10)?)
    } else if value <= 100 {
        let dec = value / 10 * 10;
        format!("{}o {}", es_ord_stem(dec), es_ordinal(value - dec)?)
    } else if value <= 1000 {
        let cen = value / 100 * 100;
        format!("{}o {}", es_ord_stem(cen), es_ordinal(value - cen)?)
    } else if value < 1_000_000_000_000_000_000 {
        let mut dec: u128 = 1;
        while dec * 1000 <= value {
            dec *= 1000;
        }
        let (high, low) = (value / dec, value % dec);
        let card = if high != 1 {
            es().cardinal(high)?
        } else {
            String::new()
        };
        format!("{card}{}o {}", es_ord_stem(dec), es_ordinal(low)?)
    } else {
        es().cardinal(value)?
    };
    Some(text.trim().to_string())
}

// ----------------------------------------------------------------- French

fn fr_merge((mut ct, cn): (String, u128), (mut nt, nn): (String, u128)) -> (String, u128) {
    if cn == 1 {
        if nn < 1_000_000 {
            return (nt, nn);
        }
    } else {
        let eighty = cn >= 80 && (cn - 80) % 100 == 0;
        if (eighty || (cn % 100 == 0 && cn < 1000)) && nn < 1_000_000 && ct.ends_with('s') {
            ct.pop();
        }
        if cn < 1000 && nn != 1000 && !nt.ends_with('s') && nn % 100 == 0 {
            nt.push('s');
        }
    }
    if nn < cn && cn < 100 {
        if nn % 10 == 1 && cn != 80 {
            return (format!("{ct} et {nt}"), cn + nn);
        }
        return (format!("{ct}-{nt}"), cn + nn);
    }
    if nn > cn {
        return (format!("{ct} {nt}"), cn * nn);
    }
    (format!("{ct} {nt}"), cn + nn)
}

fn fr() -> &'static Cards {
    static C: OnceLock<Cards> = OnceLock::new();
    C.get_or_init(|| {
        Cards::new(
            &eu_high(&EU_LOWS, &EU_UNITS, &EU_TENS, "cent"),
            Some("illiard"),
            "illion",
            false,
            &[
                (1000, "mille"),
                (100, "cent"),
                (80, "quatre-vingts"),
                (60, "soixante"),
                (50, "cinquante"),
                (40, "quarante"),
                (30, "trente"),
            ],
            &[
                "vingt", "dix-neuf", "dix-huit", "dix-sept", "seize", "quinze", "quatorze", "treize",
                "douze", "onze", "dix", "neuf", "huit", "sept", "six", "cinq", "quatre", "trois", "deux",
                "un", "zéro",
            ],
            fr_merge,
        )
    })
}

fn fr_ordinal(value: u128) -> Option<String> {
    if value == 1 {
        return Some("premier".into());
    }
    let mut w = fr().cardinal(value)?;
    if let Some(s) = w.strip_suffix("cinq") {
        w = format!("{s}cinquième");
    } else if let Some(s) = w.strip_suffix("neuf") {
        w = format!("{s}neuvième");
    } else {
        if w.ends_with('e') {
            w.pop();
        }
        w.push_str("ième");
    }
    Some(w)
}

// ---------------------------------------------------------------- Italian

const IT_CARD: [&str; 20] = [
    "zero",
    "uno",
    "due",
    "tre",
    "quattro",
    "cinque",
    "sei",
    "sette",
    "otto",
    "nove",
    "dieci",
    "undici",
    "dodici",
    "tredici",
    "quattordici",
    "quindici",
    "sedici",
    "diciassette",
    "diciotto",
    "diciannove",
];
const IT_ORD: [&str; 20] = [
    "zero",
    "primo",
    "secondo",
    "terzo",
    "quarto",
    "quinto",
    "sesto",
    "settimo",
    "ottavo",
    "nono",
    "decimo",
    "undicesimo",
    "dodicesimo",
    "tredicesimo",
    "quattordicesimo",
    "quindicesimo",
    "sedicesimo",
    "diciassettesimo",
    "diciottesimo",
    "diciannovesimo",
];
const IT_EXP: [&str; 11] = [
    "zero", "m", "b", "tr", "quadr", "quint", "sest", "sett", "ott", "nov", "dec",
];

/// Python's `s[:-n]` on characters.
fn drop_last(s: &str, n: usize) -> String {
    let count = s.chars().count();
    s.chars().take(count.saturating_sub(n)).collect()
}

fn it_contract(s: &str) -> String {
    s.replace("oo", "o")
        .replace("ao", "o")
        .replace("io", "o")
        .replace("au", "u")
        .replace("iu", "u")
}

fn it_omit_zero(s: String) -> String {
    if s == "zero" { String::new() } else { s }
}

fn it_accentuate(s: &str) -> String {
    s.split_whitespace()
        .map(|w| {
            if w.ends_with("tre") && w.chars().count() > 3 {
                format!("{}tré", drop_last(&w.replace("tré", "tre"), 3))
            } else {
                w.replace("tré", "tre")
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

fn it_cardinal(n: u128) -> Option<String> {
    let s = if n < 20 {
        IT_CARD[n as usize].to_string()
    } else if n < 100 {
        let (tens, units) = ((n / 10) as usize, (n % 10) as usize);
        let prefix = match tens {
            2 => "venti".to_string(),
            3 => "trenta".to_string(),
            4 => "quaranta".to_string(),
            6 => "sessanta".to_string(),
            t => format!("{}anta", drop_last(IT_CARD[t], 1)),
        };
        it_contract(&(prefix + &it_omit_zero(IT_CARD[units].to_string())))
    } else if n < 1000 {
        let h = (n / 100) as usize;
        let prefix = if h == 1 {
            "cento".to_string()
        } else {
            format!("{}cento", IT_CARD[h])
        };
        it_contract(&(prefix + &it_omit_zero(it_cardinal(n % 100)?)))
    } else if n < 1_000_000 {
        let t = n / 1000;
        let prefix = if t == 1 {
            "mille".to_string()
        } else {
            it_cardinal(t)? + "mila"
        };
        prefix + &it_omit_zero(it_cardinal(n % 1000)?)
    } else {
        let digits = n.to_string();
        let len = digits.len();
        if len >= 66 {
            return None;
        }
        let pre = if len % 3 == 0 { 3 } else { len % 3 };
        let (mult, exp) = digits.split_at(pre);
        let e = exp.len();
        let mut infix = format!(
            "{}{}",
            IT_EXP[e / 6],
            if e % 6 == 0 { "ilione" } else { "iliardo" }
        );
        let prefix = if mult == "1" {
            "un ".to_string()
        } else {
            infix = format!(" {}i", drop_last(&infix, 1));
            it_cardinal(mult.parse().ok()?)?
        };
        let postfix = if exp.chars().any(|c| c != '0') {
            let p = it_cardinal(exp.parse().ok()?)?;
            infix.push_str(if p.contains(" e ") { ", " } else { " e " });
            p
        } else {
            String::new()
        };
        prefix + &infix + &postfix
    };
    Some(it_accentuate(&s))
}

fn it_ordinal(n: u128) -> Option<String> {
    let tens = n % 100;
    let outside_teens = !(10 < tens && tens < 20);
    if n < 20 {
        return Some(IT_ORD[n as usize].to_string());
    }
    let card = it_cardinal(n)?;
    Some(if outside_teens && tens % 10 == 3 {
        drop_last(&card, 1) + "eesimo"
    } else if outside_teens && tens % 10 == 6 {
        card + "esimo"
    } else {
        let mut s = drop_last(&card, 1);
        if s.ends_with("mil") {
            s.push('l');
        }
        s + "esimo"
    })
}

// ------------------------------------------------------------- Portuguese

fn pt_hundreds(n: u128) -> &'static str {
    match n {
        1 => "cento",
        2 => "duzentos",
        3 => "trezentos",
        4 => "quatrocentos",
        5 => "quinhentos",
        6 => "seiscentos",
        7 => "setecentos",
        8 => "oitocentos",
        _ => "novecentos",
    }
}

fn pt_merge((mut ct, cn): (String, u128), (mut nt, nn): (String, u128)) -> (String, u128) {
    if cn == 1 {
        if nn < 1_000_000 {
            return (nt, nn);
        }
        ct = "um".into();
    } else if cn == 100 && nn % 1000 != 0 {
        ct = "cento".into();
    }
    if nn < cn {
        return (format!("{ct} e {nt}"), cn + nn);
    } else if nn % 1_000_000_000 == 0 && cn > 1 {
        nt = drop_last(&nt, 4) + "liões";
    } else if nn % 1_000_000 == 0 && cn > 1 {
        nt = drop_last(&nt, 4) + "lhões";
    }
    if nt == "milião" {
        nt = "milhão".into();
    }
    if nn == 100 {
        ct = pt_hundreds(cn).to_string();
        nt = String::new();
    } else {
        nt = format!(" {nt}");
    }
    (ct + &nt, cn * nn)
}

fn pt() -> &'static Cards {
    static C: OnceLock<Cards> = OnceLock::new();
    C.get_or_init(|| {
        let high: Vec<String> = ["quatr", "tr", "b", "m"].iter().map(|s| s.to_string()).collect();
        Cards::new(
            &high,
            None,
            "ilião",
            false,
            &[
                (1000, "mil"),
                (100, "cem"),
                (90, "noventa"),
                (80, "oitenta"),
                (70, "setenta"),
                (60, "sessenta"),
                (50, "cinquenta"),
                (40, "quarenta"),
                (30, "trinta"),
            ],
            &[
                "vinte",
                "dezanove",
                "dezoito",
                "dezassete",
                "dezasseis",
                "quinze",
                "catorze",
                "treze",
                "doze",
                "onze",
                "dez",
                "nove",
                "oito",
                "sete",
                "seis",
                "cinco",
                "quatro",
                "três",
                "dois",
                "um",
                "zero",
            ],
            pt_merge,
        )
    })
}

fn pt_cardinal(n: u128) -> Option<String> {
    let mut result = pt().cardinal(n)?;
    // num2words-PT drops the "e" after a scale word when a hundreds word
    // follows and another "e" comes later.
    static RES: OnceLock<Vec<(String, Regex)>> = OnceLock::new();
    let res = RES.get_or_init(|| {
        [
            "mil",
            "milhão",
            "milhões",
            "mil milhões",
            "bilião",
            "biliões",
            "mil biliões",
        ]
        .iter()
        .map(|ext| {
            let re = Regex::new(&format!(r"^.*{ext} e \w*entos? .*e")).expect("static pattern");
            (ext.to_string(), re)
        })
        .collect()
    });
    for (ext, re) in res {
        if re.is_match(&result) {
            result = result.replace(&format!("{ext} e"), ext);
        }
    }
    Some(result)
}

fn pt_ordinal(n: u128) -> Option<String> {
    const ORDS: [[&str; 10]; 3] = [
        [
            "", "primeiro", "segundo", "terceiro", "quarto", "quinto", "sexto", "sétimo", "oitavo", "nono",
        ],
        [
            "",
            "décimo",
            "vigésimo",
            "trigésimo",
            "quadragésimo",
            "quinquagésimo",
            "sexagésimo",
            "septuagésimo",
            "octogésimo",
            "nonagésimo",
        ],
        [
            "",
            "centésimo",
            "ducentésimo",
            "tricentésimo",
            "quadrigentésimo",
            "quingentésimo",
            "seiscentésimo",
            "septigentésimo",
            "octigentésimo",
            "nongentésimo",
        ],
    ];
    let value = n.to_string();
    let mut result: Vec<&str> = Vec::new();
    let mut sep = "";
    for (idx, ch) in value.chars().rev().enumerate() {
        if idx > 0 && idx % 3 == 0 {
            sep = match idx {
                3 => "milésimo",
                6 => "milionésimo",
                9 => "milésimo milionésimo",
                12 => "bilionésimo",
                15 => "milésimo bilionésimo",
                _ => return None,
            };
        }
        if ch != '0' && !sep.is_empty() {
            result.push(sep);
            sep = "";
        }
        result.push(ORDS[idx % 3][ch.to_digit(10)? as usize]);
    }
    result.reverse();
    let joined = result.join(" ");
    let mut out = joined.split_whitespace().collect::<Vec<_>>().join(" ");
    if out.starts_with("primeiro") && value != "1" {
        out = out.chars().skip(9).collect();
    }
    Some(out)
}

// ------------------------------------------------- Polish, Czech (shared)

/// The word tables of num2words' Polish and Czech (`_int2word`).
struct SlavicTables {
    zero: &'static str,
    ones: [&'static str; 10],
    tens: [&'static str; 10],
    twenties: [&'static str; 10],
    hundreds: [&'static str; 10],
    /// Scale words for 10^(3i), i ≥ 1: (one, few, many).
    thousands: fn(usize) -> Option<[String; 3]>,
}

/// Python's `splitbyx(str(n), 3)`: groups of three digits, the first
/// group shorter.
fn split3(n: u128) -> Vec<u32> {
    let s = n.to_string();
    let len = s.len();
    let mut out = Vec::new();
    if len > 3 {
        let start = len % 3;
        if start > 0 {
            out.push(s[..start].parse().unwrap_or(0));
        }
        let mut i = start;
        while i < len {
            out.push(s[i..i + 3].parse().unwrap_or(0));
            i += 3;
        }
    } else {
        out.push(s.parse().unwrap_or(0));
    }
    out
}

/// (units, tens, hundreds) digits of a group.
fn digits3(x: u32) -> (usize, usize, usize) {
    ((x % 10) as usize, (x / 10 % 10) as usize, (x / 100 % 10) as usize)
}

/// Polish and Czech plural choice: one, few (2–4 but not 12–14), many.
fn pl_plural(n: u128) -> usize {
    if n == 1 {
        0
    } else if (2..5).contains(&(n % 10)) && (n % 100 < 10 || n % 100 > 20) {
        1
    } else {
        2
    }
}

fn slavic_int2word(t: &SlavicTables, n: u128) -> Option<String> {
    if n == 0 {
        return Some(t.zero.to_string());
    }
    let chunks = split3(n);
    let mut i = chunks.len();
    let mut words: Vec<String> = Vec::new();
    for &x in &chunks {
        i -= 1;
        if x == 0 {
            continue;
        }
        let (n1, n2, n3) = digits3(x);
        if n3 > 0 {
            words.push(t.hundreds[n3].into());
        }
        if n2 > 1 {
            words.push(t.twenties[n2].into());
        }
        if n2 == 1 {
            words.push(t.tens[n1].into());
        } else if n1 > 0 && !(i > 0 && x == 1) {
            words.push(t.ones[n1].into());
        }
        if i > 0 {
            let forms = (t.thousands)(i)?;
            words.push(forms[pl_plural(x as u128)].clone());
        }
    }
    Some(words.join(" "))
}

/// num2words-PL/CS/RU `to_cardinal` of a float: its repr split at the
/// point, each side read as an integer (`int2word`).
fn slavic_float(
    v: f64,
    point: &str,
    zero: &str,
    int2word: impl Fn(u128) -> Option<String>,
) -> Option<String> {
    let repr = format!("{v:?}");
    let (left, right) = repr.split_once('.')?;
    if right.contains('e') {
        return None;
    }
    let zeros = right.len() - right.trim_start_matches('0').len();
    let dec = format!(
        "{}{}",
        format!("{zero} ").repeat(zeros),
        int2word(right.parse().ok()?)?
    );
    Some(format!("{} {point} {dec}", int2word(left.parse().ok()?)?))
}

fn pl_thousands(i: usize) -> Option<[String; 3]> {
    if i == 1 {
        return Some(["tysiąc".into(), "tysiące".into(), "tysięcy".into()]);
    }
    const PREFIXES: [&str; 10] = [
        "mi", "bi", "try", "kwadry", "kwinty", "seksty", "septy", "okty", "nony", "decy",
    ];
    let idx = i - 2;
    let name = format!("{}{}", PREFIXES.get(idx / 2)?, ["lion", "liard"][idx % 2]);
    Some([name.clone(), format!("{name}y"), format!("{name}ów")])
}

const PL: SlavicTables = SlavicTables {
    zero: "zero",
    ones: [
        "",
        "jeden",
        "dwa",
        "trzy",
        "cztery",
        "pięć",
        "sześć",
        "siedem",
        "osiem",
        "dziewięć",
    ],
    tens: [
        "dziesięć",
        "jedenaście",
        "dwanaście",
        "trzynaście",
        "czternaście",
        "piętnaście",
        "szesnaście",
        "siedemnaście",
        "osiemnaście",
        "dziewiętnaście",
    ],
    twenties: [
        "",
        "",
        "dwadzieścia",
        "trzydzieści",
        "czterdzieści",
        "pięćdziesiąt",
        "sześćdziesiąt",
        "siedemdziesiąt",
        "osiemdziesiąt",
        "dziewięćdziesiąt",
    ],
    hundreds: [
        "",
        "sto",
        "dwieście",
        "trzysta",
        "czterysta",
        "pięćset",
        "sześćset",
        "siedemset",
        "osiemset",
        "dziewięćset",
    ],
    thousands: pl_thousands,
};

fn cs_thousands(i: usize) -> Option<[String; 3]> {
    let f = |a: &str, b: &str, c: &str| Some([a.to_string(), b.to_string(), c.to_string()]);
    match i {
        1 => f("tisíc", "tisíce", "tisíc"),
        2 => f("milion", "miliony", "milionů"),
        3 => f("miliarda", "miliardy", "miliard"),
        4 => f("bilion", "biliony", "bilionů"),
        5 => f("biliarda", "biliardy", "biliard"),
        6 => f("trilion", "triliony", "trilionů"),
        7 => f("triliarda", "triliardy", "triliard"),
        8 => f("kvadrilion", "kvadriliony", "kvadrilionů"),
        9 => f("kvadriliarda", "kvadriliardy", "kvadriliard"),
        10 => f("quintillion", "quintilliony", "quintillionů"),
        _ => None,
    }
}

const CS: SlavicTables = SlavicTables {
    zero: "nula",
    ones: [
        "", "jedna", "dva", "tři", "čtyři", "pět", "šest", "sedm", "osm", "devět",
    ],
    tens: [
        "deset",
        "jedenáct",
        "dvanáct",
        "třináct",
        "čtrnáct",
        "patnáct",
        "šestnáct",
        "sedmnáct",
        "osmnáct",
        "devatenáct",
    ],
    twenties: [
        "",
        "",
        "dvacet",
        "třicet",
        "čtyřicet",
        "padesát",
        "šedesát",
        "sedmdesát",
        "osmdesát",
        "devadesát",
    ],
    hundreds: [
        "",
        "sto",
        "dvěstě",
        "třista",
        "čtyřista",
        "pětset",
        "šestset",
        "sedmset",
        "osmset",
        "devětset",
    ],
    thousands: cs_thousands,
};

/// num2words-PL `to_ordinal`.
fn pl_ordinal(n: u128) -> Option<String> {
    const ONES_ORD: [[&str; 2]; 20] = [
        ["", ""],
        ["pierwszy", "pierwszo"],
        ["drugi", "dwu"],
        ["trzeci", "trzy"],
        ["czwarty", "cztero"],
        ["piąty", "pięcio"],
        ["szósty", "sześcio"],
        ["siódmy", "siedmio"],
        ["ósmy", "ośmio"],
        ["dziewiąty", "dziewięcio"],
        ["dziesiąty", "dziesięcio"],
        ["jedenasty", "jedenasto"],
        ["dwunasty", "dwunasto"],
        ["trzynasty", "trzynasto"],
        ["czternasty", "czternasto"],
        ["piętnasty", "piętnasto"],
        ["szesnasty", "szesnasto"],
        ["siedemnasty", "siedemnasto"],
        ["osiemnasty", "osiemnasto"],
        ["dziewiętnasty", "dziewiętnasto"],
    ];
    const TWENTIES_ORD: [[&str; 2]; 10] = [
        ["", ""],
        ["", ""],
        ["dwudziesty", "dwudziesto"],
        ["trzydziesty", "trzydiesto"],
        ["czterdziesty", "czterdziesto"],
        ["pięćdziesiąty", "pięćdziesięcio"],
        ["sześćdziesiąty", "sześćdziesięcio"],
        ["siedemdziesiąty", "siedemdziesięcio"],
        ["osiemdziesiąty", "osiemdziesięcio"],
        ["dziewięćdziesiąty", "dziewięćdziesięcio"],
    ];
    const HUNDREDS_ORD: [[&str; 2]; 10] = [
        ["", ""],
        ["setny", "stu"],
        ["dwusetny", "dwustu"],
        ["trzysetny", "trzystu"],
        ["czterysetny", "czterystu"],
        ["pięćsetny", "pięcset"],
        ["sześćsetny", "sześćset"],
        ["siedemsetny", "siedemset"],
        ["osiemsetny", "ośiemset"],
        ["dziewięćsetny", "dziewięćset"],
    ];
    let mut fragments = split3(n);
    let mut level = 0usize;
    let mut last = *fragments.last()?;
    while last == 0 {
        level += 1;
        fragments.pop();
        last = *fragments.last()?;
    }
    let mut words: Vec<String> = Vec::new();
    if fragments.len() > 1 {
        let pre = n - (last as u128) * 1000u128.checked_pow(level as u32)?;
        words.push(slavic_int2word(&PL, pre)?);
    }
    let lv = if level == 0 { 0 } else { 1 };
    let (n1, n2, n3) = digits3(last);
    let last_two = n2 * 10 + n1;
    if last_two == 0 {
        words.push(HUNDREDS_ORD[n3][lv].into());
    } else if lv == 1 && last == 1 {
        // nothing: "tysięczny" alone
    } else if last_two < 20 {
        if n3 > 0 {
            // num2words indexes the one-form HUNDREDS tuple with the level
            // here and fails past level 0.
            if lv != 0 {
                return None;
            }
            words.push(PL.hundreds[n3].into());
        }
        words.push(ONES_ORD[last_two][lv].into());
    } else if last_two % 10 == 0 {
        if n3 > 0 {
            if lv != 0 {
                return None;
            }
            words.push(PL.hundreds[n3].into());
        }
        words.push(TWENTIES_ORD[n2][lv].into());
    } else {
        if n3 > 0 {
            words.push(PL.hundreds[n3].into());
        }
        words.push(TWENTIES_ORD[n2][0].into());
        words.push(ONES_ORD[n1][0].into());
    }
    let mut out = words.join(" ");
    if last == 1 && level > 0 && !out.is_empty() {
        out.push(' ');
    }
    if level > 0 {
        out.push_str(match level {
            1 => "tysięczny",
            2 => "milionowy",
            3 => "milairdowy",
            _ => return None,
        });
    }
    Some(out)
}

// ---------------------------------------------------------------- Russian

#[derive(Clone, Copy, PartialEq)]
enum RuForm {
    /// Nominative; gender 0 m, 1 f, 2 n.
    Nom(usize),
    /// Genitive (masculine/any).
    Gen,
}

fn ru_ones(d: usize, form: RuForm) -> &'static str {
    const NOM: [&str; 10] = [
        "ноль",
        "один",
        "два",
        "три",
        "четыре",
        "пять",
        "шесть",
        "семь",
        "восемь",
        "девять",
    ];
    const GEN: [&str; 10] = [
        "ноля",
        "одного",
        "двух",
        "трёх",
        "четырёх",
        "пяти",
        "шести",
        "семи",
        "восьми",
        "девяти",
    ];
    match form {
        RuForm::Nom(1) if d == 1 => "одна",
        RuForm::Nom(1) if d == 2 => "две",
        RuForm::Nom(2) if d == 1 => "одно",
        RuForm::Nom(_) => NOM[d],
        RuForm::Gen => GEN[d],
    }
}

fn ru_tens(d: usize, genitive: bool) -> String {
    const PREFIX: [&str; 10] = [
        "",
        "один",
        "две",
        "три",
        "четыр",
        "пят",
        "шест",
        "сем",
        "восем",
        "девят",
    ];
    match (d, genitive) {
        (0, false) => "десять".into(),
        (0, true) => "десяти".into(),
        (d, false) => format!("{}надцать", PREFIX[d]),
        (d, true) => format!("{}надцати", PREFIX[d]),
    }
}

fn ru_twenties(d: usize, genitive: bool) -> &'static str {
    const NOM: [&str; 10] = [
        "",
        "",
        "двадцать",
        "тридцать",
        "сорок",
        "пятьдесят",
        "шестьдесят",
        "семьдесят",
        "восемьдесят",
        "девяносто",
    ];
    const GEN: [&str; 10] = [
        "",
        "",
        "двадцати",
        "тридцати",
        "сорока",
        "пятидесяти",
        "шестидесяти",
        "семидесяти",
        "восьмидесяти",
        "девяноста",
    ];
    if genitive { GEN[d] } else { NOM[d] }
}

fn ru_hundreds(d: usize, genitive: bool) -> &'static str {
    const NOM: [&str; 10] = [
        "",
        "сто",
        "двести",
        "триста",
        "четыреста",
        "пятьсот",
        "шестьсот",
        "семьсот",
        "восемьсот",
        "девятьсот",
    ];
    const GEN: [&str; 10] = [
        "",
        "ста",
        "двухсот",
        "трёхсот",
        "четырёхсот",
        "пятисот",
        "шестисот",
        "семисот",
        "восьмисот",
        "девятисот",
    ];
    if genitive { GEN[d] } else { NOM[d] }
}

const RU_SCALES: [&str; 11] = [
    "",
    "",
    "миллион",
    "миллиард",
    "триллион",
    "квадриллион",
    "квинтиллион",
    "секстиллион",
    "септиллион",
    "октиллион",
    "нониллион",
];

/// Nominative scale word for 10^(3i) after `x`.
fn ru_thousands(i: usize, x: u128) -> Option<String> {
    let k = ru_plural(x);
    if i == 1 {
        return Some(["тысяча", "тысячи", "тысяч"][k].into());
    }
    Some(format!("{}{}", RU_SCALES.get(i)?, ["", "а", "ов"][k]))
}

fn ru_plural(n: u128) -> usize {
    if [11, 12, 13, 14].contains(&(n % 100)) {
        2
    } else if n % 10 == 1 {
        0
    } else if [2, 3, 4].contains(&(n % 10)) {
        1
    } else {
        2
    }
}

/// Ordinal adjective: the stem plus the ending of the form asked:
/// `group` picks -ой/-ый for the masculine nominative.
#[derive(Clone, Copy, PartialEq)]
enum RuOrd {
    /// Masculine nominative.
    Masc,
    /// Feminine nominative.
    Fem,
    /// Genitive plural.
    GenPl,
}

fn ru_ord_ending(stem: &str, group: usize, form: RuOrd) -> String {
    match form {
        RuOrd::Masc => format!("{stem}{}", ["ой", "ый"][group]),
        RuOrd::Fem => format!("{stem}ая"),
        RuOrd::GenPl => format!("{stem}ых"),
    }
}

fn ru_ones_ord(d: usize, form: RuOrd) -> String {
    if d == 3 {
        return match form {
            RuOrd::Masc => "третий",
            RuOrd::Fem => "третья",
            RuOrd::GenPl => "третьих",
        }
        .into();
    }
    const STEM: [&str; 10] = [
        "нулев",
        "перв",
        "втор",
        "",
        "четвёрт",
        "пят",
        "шест",
        "седьм",
        "восьм",
        "девят",
    ];
    const GROUP: [usize; 10] = [0, 1, 0, 0, 1, 1, 0, 0, 0, 1];
    ru_ord_ending(STEM[d], GROUP[d], form)
}

fn ru_tens_ord(d: usize, form: RuOrd) -> String {
    const PREFIX: [&str; 10] = [
        "",
        "один",
        "две",
        "три",
        "четыр",
        "пят",
        "шест",
        "сем",
        "восем",
        "девят",
    ];
    let stem = if d == 0 {
        "десят".to_string()
    } else {
        format!("{}надцат", PREFIX[d])
    };
    ru_ord_ending(&stem, 1, form)
}

fn ru_twenties_ord(d: usize, form: RuOrd) -> String {
    const STEM: [&str; 10] = [
        "",
        "",
        "двадцат",
        "тридцат",
        "сороков",
        "пятидесят",
        "шестидесят",
        "семидесят",
        "восьмидесят",
        "девяност",
    ];
    ru_ord_ending(STEM[d], if d == 4 { 0 } else { 1 }, form)
}

fn ru_hundreds_ord(d: usize, form: RuOrd) -> String {
    let stem = if d == 1 { "сот" } else { ru_hundreds(d, true) };
    ru_ord_ending(stem, 1, form)
}

fn ru_thousands_ord(i: usize, form: RuOrd) -> Option<String> {
    let stem = if i == 1 {
        "тысячн".to_string()
    } else {
        format!("{}н", RU_SCALES.get(i)?)
    };
    Some(ru_ord_ending(&stem, 1, form))
}

/// num2words-RU `_int2word` for the forms the cleaner uses: a cardinal in
/// the nominative of `gender`, or an ordinal of `form`.
fn ru_int2word(n: u128, ordinal: Option<RuOrd>, gender: usize) -> Option<String> {
    if n == 0 {
        return Some(match ordinal {
            None => "ноль".into(),
            Some(f) => ru_ones_ord(0, f),
        });
    }
    let chunks = split3(n);
    let ord_join = *chunks.last()? == 0;
    let mut i = chunks.len();
    let last_nonzero = chunks.iter().rposition(|&e| e != 0)?;
    let rightmost = chunks.len() - 1 - last_nonzero;
    let mut words: Vec<String> = Vec::new();
    for &x in &chunks {
        i -= 1;
        if x == 0 {
            continue;
        }
        let (ones, tens, hundreds) = digits3(x);
        match ordinal {
            None => {
                if hundreds > 0 {
                    words.push(ru_hundreds(hundreds, false).into());
                }
                if tens > 1 {
                    words.push(ru_twenties(tens, false).into());
                }
                if tens == 1 {
                    words.push(ru_tens(ones, false));
                } else if ones > 0 {
                    let g = if i == 1 { 1 } else { gender };
                    words.push(ru_ones(ones, RuForm::Nom(g)).into());
                }
                if i > 0 {
                    words.push(ru_thousands(i, x as u128)?);
                }
            }
            Some(form) if !(ord_join && rightmost == i) => {
                if hundreds > 0 {
                    if tens == 0 && ones == 0 {
                        words.push(ru_hundreds_ord(hundreds, form));
                    } else {
                        words.push(ru_hundreds(hundreds, false).into());
                    }
                }
                if tens > 1 {
                    if ones == 0 {
                        words.push(ru_twenties_ord(tens, form));
                    } else {
                        words.push(ru_twenties(tens, false).into());
                    }
                }
                if tens == 1 {
                    words.push(ru_tens_ord(ones, form));
                } else if ones > 0 {
                    if i == 0 {
                        words.push(ru_ones_ord(ones, form));
                    } else if ones == 1 && hundreds == 0 && tens == 0 {
                        // "тысяча", not "одна тысяча"
                    } else if i == 1 {
                        words.push(ru_ones(ones, RuForm::Nom(1)).into());
                    } else {
                        words.push(ru_ones(ones, RuForm::Nom(0)).into());
                    }
                }
                if i > 0 {
                    words.push(ru_thousands(i, x as u128)?);
                }
            }
            Some(form) => {
                let mut w = String::new();
                if hundreds > 1 {
                    w.push_str(ru_hundreds(hundreds, true));
                } else if hundreds == 1 {
                    w.push_str(ru_hundreds(1, false));
                }
                if tens == 9 {
                    w.push_str(ru_twenties(9, false));
                } else if tens > 1 {
                    w.push_str(ru_twenties(tens, true));
                }
                if tens == 1 {
                    w.push_str(&ru_tens(ones, true));
                } else if ones > 0 {
                    if i == 0 {
                        w.push_str(&ru_ones_ord(ones, form));
                    } else if ones == 1 {
                        if tens != 0 || hundreds != 0 {
                            w.push_str(ru_ones(1, RuForm::Nom(2)));
                        }
                    } else {
                        w.push_str(ru_ones(ones, RuForm::Gen));
                    }
                }
                if i > 0 {
                    w.push_str(&ru_thousands_ord(i, form)?);
                }
                words.push(w);
            }
        }
    }
    Some(words.join(" "))
}

fn ru_cardinal(n: u128) -> Option<String> {
    ru_int2word(n, None, 0)
}

fn ru_ordinal(n: u128) -> Option<String> {
    ru_int2word(n, Some(RuOrd::Masc), 0)
}

/// num2words-RU `to_cardinal` of a float: feminine integer part, "целая/
/// целых", the fraction digits as a feminine number and the fraction's
/// denominator as an ordinal ("пять десятых").
fn ru_float(v: f64) -> Option<String> {
    let repr = format!("{v:?}");
    let (left, right) = repr.split_once('.')?;
    if right.contains('e') || right.is_empty() {
        return None;
    }
    let l: u128 = left.parse().ok()?;
    let r: u128 = right.parse().ok()?;
    let point = ["целая", "целых", "целых"][ru_plural(l)];
    let denom = 10u128.checked_pow(right.len() as u32)?;
    let bitness = if right.ends_with('1') && !right.ends_with("11") {
        ru_int2word(denom, Some(RuOrd::Fem), 1)?
    } else {
        ru_int2word(denom, Some(RuOrd::GenPl), 0)?
    };
    Some(format!(
        "{} {point} {} {bitness}",
        ru_int2word(l, None, 1)?,
        ru_int2word(r, None, 1)?
    ))
}

// -------------------------------------------------------------- Hungarian

fn hu_cards() -> &'static Cards {
    static C: OnceLock<Cards> = OnceLock::new();
    C.get_or_init(|| {
        let low = [
            "kilenc", "nyolc", "hét", "hat", "öt", "négy", "három", "kettő", "egy",
        ];
        let mut lows: Vec<String> = low.iter().map(|w| format!("huszon{w}")).collect();
        lows.push("húsz".into());
        lows.extend(low.iter().map(|w| format!("tizen{w}")));
        lows.push("tíz".into());
        lows.extend(low.iter().map(|w| w.to_string()));
        lows.push("nulla".into());
        let lows: Vec<&str> = lows.iter().map(String::as_str).collect();
        Cards::new(
            &eu_high(&EU_LOWS, &EU_UNITS, &EU_TENS, "cent"),
            Some("illiárd"),
            "illió",
            false,
            &[
                (1000, "ezer"),
                (100, "száz"),
                (90, "kilencven"),
                (80, "nyolcvan"),
                (70, "hetven"),
                (60, "hatvan"),
                (50, "ötven"),
                (40, "negyven"),
                (30, "harminc"),
            ],
            &lows,
            en_merge,
        )
    })
}

/// num2words-HU `to_cardinal`; `zero` is what 0 reads as ("" inside a
/// longer number, where 2 also becomes "két").
fn hu_cardinal_z(n: u128, zero: &str) -> Option<String> {
    let c = hu_cards();
    Some(if n == 0 {
        zero.to_string()
    } else if zero.is_empty() && n == 2 {
        "két".into()
    } else if n < 30 {
        c.word(n)
    } else if n < 100 {
        if n % 10 == 0 {
            c.word(n)
        } else {
            c.word(n / 10 * 10) + &hu_cardinal_z(n % 10, "nulla")?
        }
    } else if n < 1000 {
        let h = n / 100;
        let prefix = if h == 1 {
            "száz".to_string()
        } else {
            hu_cardinal_z(h, "")? + "száz"
        };
        prefix + &hu_cardinal_z(n % 100, "")?
    } else if n < 1_000_000 {
        let t = n / 1000;
        let prefix = if t == 1 {
            "ezer".to_string()
        } else {
            hu_cardinal_z(t, "")? + "ezer"
        };
        let postfix = hu_cardinal_z(n % 1000, "")?;
        let dash = if n <= 2000 || postfix.is_empty() { "" } else { "-" };
        prefix + dash + &postfix
    } else {
        let mut digits = n.to_string().len() as u32;
        if digits % 3 == 0 {
            digits -= 2;
        }
        let exp = 10u128.checked_pow(digits / 3 * 3)?;
        let word = c.cards.iter().find(|x| x.0 == exp)?.1.clone();
        let rest = hu_cardinal_z(n % exp, "")?;
        let rest = if rest.is_empty() { rest } else { format!("-{rest}") };
        hu_cardinal_z(n / exp, "")? + &word + &rest
    })
}

fn hu_partial_ord(word: &str) -> Option<&'static str> {
    const ORDS: [(&str, &str); 23] = [
        ("nulla", "nullad"),
        ("egy", "egyed"),
        ("kettő", "ketted"),
        ("három", "harmad"),
        ("négy", "negyed"),
        ("öt", "ötöd"),
        ("hat", "hatod"),
        ("hét", "heted"),
        ("nyolc", "nyolcad"),
        ("kilenc", "kilenced"),
        ("tíz", "tized"),
        ("húsz", "huszad"),
        ("harminc", "harmincad"),
        ("negyven", "negyvened"),
        ("ötven", "ötvened"),
        ("hatvan", "hatvanad"),
        ("hetven", "hetvened"),
        ("nyolcvan", "nyolcvanad"),
        ("kilencven", "kilencvened"),
        ("száz", "század"),
        ("ezer", "ezred"),
        ("illió", "milliomod"),
        ("illiárd", "milliárdod"),
    ];
    ORDS.iter().find(|(k, _)| *k == word).map(|(_, v)| *v)
}

fn hu_ordinal(n: u128) -> Option<String> {
    match n {
        1 => return Some("első".into()),
        2 => return Some("második".into()),
        _ => {}
    }
    let mut out = hu_cardinal_z(n, "nulla")?;
    const KEYS: [&str; 23] = [
        "nulla",
        "egy",
        "kettő",
        "három",
        "négy",
        "öt",
        "hat",
        "hét",
        "nyolc",
        "kilenc",
        "tíz",
        "húsz",
        "harminc",
        "negyven",
        "ötven",
        "hatvan",
        "hetven",
        "nyolcvan",
        "kilencven",
        "száz",
        "ezer",
        "illió",
        "illiárd",
    ];
    if let Some(k) = KEYS.iter().find(|k| out.ends_with(*k)) {
        out.truncate(out.len() - k.len());
        out.push_str(hu_partial_ord(k)?);
    }
    Some(out + "ik")
}

/// num2words-HU `to_cardinal_float`: "x egész y tized/század/ezred".
fn hu_float(v: f64) -> Option<String> {
    if v.fract() == 0.0 {
        return hu_cardinal_z(v as u128, "nulla");
    }
    let repr = format!("{v:?}");
    let (left, right) = repr.split_once('.')?;
    if right.contains('e') {
        return None;
    }
    let denom = 10u128.checked_pow(right.len() as u32)?;
    let word = hu_cards().cards.iter().find(|x| x.0 == denom)?.1.clone();
    Some(format!(
        "{} egész {} {}",
        hu_cardinal_z(left.parse().ok()?, "nulla")?,
        hu_cardinal_z(right.parse().ok()?, "nulla")?,
        hu_partial_ord(&word)?
    ))
}

// ----------------------------------------------------------------- Korean

fn ko_merge((lt, ln): (String, u128), (rt, rn): (String, u128)) -> (String, u128) {
    if ln == 1 && rn <= 10_000 {
        (rt, rn)
    } else if 10_000 > ln && ln > rn {
        (format!("{lt}{rt}"), ln + rn)
    } else if ln >= 10_000 && ln > rn {
        (format!("{lt} {rt}"), ln + rn)
    } else {
        (format!("{lt}{rt}"), ln * rn)
    }
}

fn ko() -> &'static Cards {
    static C: OnceLock<Cards> = OnceLock::new();
    C.get_or_init(|| {
        // Myriads: 만 10^4, 억 10^8, ... (num2words-KO steps by 4 digits).
        const HIGH: [&str; 17] = [
            "무량대수",
            "불가사의",
            "나유타",
            "아승기",
            "항하사",
            "극",
            "재",
            "정",
            "간",
            "구",
            "양",
            "자",
            "해",
            "경",
            "조",
            "억",
            "만",
        ];
        let mut cards: Vec<(u128, String)> = Vec::new();
        for (i, w) in HIGH.iter().enumerate() {
            if let Some(v) = 10u128.checked_pow((4 * (HIGH.len() - i)) as u32) {
                cards.push((v, w.to_string()));
            }
        }
        cards.push((1000, "천".into()));
        cards.push((100, "백".into()));
        let low = ["십", "구", "팔", "칠", "육", "오", "사", "삼", "이", "일", "영"];
        for (i, w) in low.iter().enumerate() {
            cards.push(((low.len() - 1 - i) as u128, w.to_string()));
        }
        cards.sort_by_key(|c| std::cmp::Reverse(c.0));
        Cards {
            cards,
            maxval: u128::MAX,
            merge: ko_merge,
        }
    })
}

fn ko_ord_word(w: &str) -> Option<&'static str> {
    const ORDS: [(&str, &str); 18] = [
        ("일", "한"),
        ("이", "두"),
        ("삼", "세"),
        ("사", "네"),
        ("오", "다섯"),
        ("육", "여섯"),
        ("칠", "일곱"),
        ("팔", "여덟"),
        ("구", "아홉"),
        ("십", "열"),
        ("이십", "스물"),
        ("삼십", "서른"),
        ("사십", "마흔"),
        ("오십", "쉰"),
        ("육십", "예순"),
        ("칠십", "일흔"),
        ("팔십", "여든"),
        ("구십", "아흔"),
    ];
    ORDS.iter().find(|(k, _)| *k == w).map(|(_, v)| *v)
}

fn ko_ordinal(n: u128) -> Option<String> {
    if n == 1 {
        return Some("첫 번째".into());
    }
    let card = ko().cardinal(n)?;
    let mut outwords: Vec<String> = card.split(' ').map(str::to_string).collect();
    let last = outwords.pop()?;
    let mut lastwords: Vec<String> = last.split('백').map(str::to_string).collect();
    let lw = lastwords.pop()?;
    let lw = if lw.contains('십') {
        let mut ten_one: Vec<String> = lw.split('십').map(str::to_string).collect();
        ten_one[0] = ko_ord_word(&format!("{}십", ten_one[0]))?.to_string();
        if let Some(o) = ten_one.get(1).and_then(|o| ko_ord_word(o)) {
            ten_one[1] = o.to_string();
            ten_one[0] = ten_one[0].replace("스무", "스물");
        }
        ten_one.concat()
    } else {
        ko_ord_word(&lw)?.to_string()
    };
    lastwords.push(lw);
    outwords.push(lastwords.join("백 "));
    Some(outwords.join(" ") + " 번째")
}

// ---------------------------------------------------------------- Turkish

// num2words-TR writes its words without spaces ("ikibinyirmidört") and reads
// an integer digit by digit in groups of three; these are its tables.
const TR_ONES: [&str; 10] = [
    "", "bir", "iki", "üç", "dört", "beş", "altı", "yedi", "sekiz", "dokuz",
];
const TR_ONES_ORD: [&str; 10] = [
    "",
    "birinci",
    "ikinci",
    "üçüncü",
    "dördüncü",
    "beşinci",
    "altıncı",
    "yedinci",
    "sekizinci",
    "dokuzuncu",
];
const TR_TENS: [&str; 10] = [
    "", "on", "yirmi", "otuz", "kırk", "elli", "altmış", "yetmiş", "seksen", "doksan",
];
const TR_TENS_ORD: [&str; 10] = [
    "",
    "onuncu",
    "yirminci",
    "otuzuncu",
    "kırkıncı",
    "ellinci",
    "altmışıncı",
    "yetmişinci",
    "sekseninci",
    "doksanıncı",
];
const TR_SCALES: [&str; 7] = ["", "bin", "milyon", "milyar", "trilyon", "katrilyon", "kentilyon"];
/// num2words-TR's ordinal scale words; its last one has no ordinal ending.
const TR_SCALES_ORD: [&str; 7] = [
    "",
    "bininci",
    "milyonuncu",
    "milyarıncı",
    "trilyonuncu",
    "katrilyonuncu",
    "kentilyon",
];
/// num2words-TR's `MAXVAL` (10^21 - 1): it raises at this value and above.
const TR_MAXVAL: u128 = 999_999_999_999_999_999_999;

/// num2words-TR's hundreds word prefix: nothing for 1 ("yüz", not "biryüz").
fn tr_hundreds(d: usize) -> &'static str {
    if d <= 1 { "" } else { TR_ONES[d] }
}

/// num2words-TR's `to_cardinal` / `to_ordinal` of a non-negative integer.
///
/// `None` where num2words raises (at [`TR_MAXVAL`] and above). A cardinal
/// that an `f64` cannot hold exactly (past 2^53) is the empty string, as
/// num2words-TR answers (its `verify_cardinal` compares the number with its
/// float and then reads nothing).
fn tr_words(n: u128, ordinal: bool) -> Option<String> {
    if n >= TR_MAXVAL {
        return None;
    }
    if !ordinal && (n as f64) as u128 != n {
        return Some(String::new());
    }
    let d: Vec<usize> = n.to_string().bytes().map(|b| usize::from(b - b'0')).collect();
    let len = d.len();
    let triplets = len.div_ceil(3);
    let lead = len % 3;
    // The trailing zeros, at most all digits but the first.
    let zeros = d.iter().rev().take(len - 1).take_while(|&&x| x == 0).count();
    let ones = |x: usize| if ordinal { TR_ONES_ORD[x] } else { TR_ONES[x] };
    let tens = |x: usize| if ordinal { TR_TENS_ORD[x] } else { TR_TENS[x] };
    let hundred = if ordinal { "yüzüncü" } else { "yüz" };
    let scales = if ordinal { TR_SCALES_ORD } else { TR_SCALES };
    let mut w = String::new();
    if triplets == 1 {
        match (lead, zeros) {
            (2, 1) => w += tens(d[0]),
            (2, _) => {
                w += TR_TENS[d[0]];
                w += ones(d[1]);
            }
            (1, _) if d[0] == 0 => w += if ordinal { "sıfırıncı" } else { "sıfır" },
            (1, _) => w += ones(d[0]),
            (_, 2) => {
                w += tr_hundreds(d[0]);
                w += hundred;
            }
            (_, 1) => {
                w += tr_hundreds(d[0]);
                w += "yüz";
                w += tens(d[1]);
            }
            _ => {
                w += tr_hundreds(d[0]);
                w += "yüz";
                w += TR_TENS[d[1]];
                w += ones(d[2]);
            }
        }
        return Some(w);
    }
    // The leading group (one, two or three digits), then each full group.
    let top = triplets - 1;
    match lead {
        2 => {
            w += TR_TENS[d[0]];
            if zeros == len - 1 {
                return Some(w + scales[top]);
            }
            w += TR_ONES[d[1]];
            if zeros == len - 2 {
                return Some(w + scales[top]);
            }
            w += TR_SCALES[top];
        }
        1 => {
            // "bin", not "birbin"; but "birmilyon".
            if !(triplets == 2 && d[0] == 1) {
                w += TR_ONES[d[0]];
            }
            if zeros == len - 1 {
                return Some(w + scales[top]);
            }
            w += TR_SCALES[top];
        }
        _ => {
            w += tr_hundreds(d[0]);
            w += "yüz";
            if zeros == len - 1 {
                return Some(w + scales[top]);
            }
            w += TR_TENS[d[1]];
            if zeros == len - 2 {
                return Some(w + scales[top]);
            }
            if zeros == len - 3 {
                w += TR_ONES[d[2]];
                return Some(w + scales[top]);
            }
            // num2words drops a "bir" here before "bin" even when it is
            // the last digit of a hundreds group (101001 -> "yüzbinbir").
            if !(triplets == 2 && d[2] == 1) {
                w += TR_ONES[d[2]];
            }
            w += TR_SCALES[top];
        }
    }
    for i in (1..triplets).rev() {
        let pos = if lead == 0 {
            (triplets - i) * 3
        } else {
            (triplets - i - 1) * 3 + lead
        };
        let g = &d[pos..pos + 3];
        if g == [0, 0, 0] {
            continue;
        }
        // `ends_at(k)`: the digit at pos + k is the last non-zero one.
        let ends_at = |k: usize| zeros == len - pos - 1 - k;
        if g[0] != 0 {
            w += tr_hundreds(g[0]);
            if ends_at(0) {
                if i == 1 {
                    return Some(w + hundred);
                }
                return Some(w + "yüz" + scales[i - 1]);
            }
            w += "yüz";
        }
        if g[1] != 0 {
            if ends_at(1) {
                if i == 1 {
                    return Some(w + tens(g[1]));
                }
                return Some(w + TR_TENS[g[1]] + scales[i - 1]);
            }
            w += TR_TENS[g[1]];
        }
        if g[2] != 0 {
            let lone = g[0] == 0 && g[1] == 0;
            if ends_at(2) {
                if i == 1 {
                    return Some(w + ones(g[2]));
                }
                if i > 2 || !lone || g[2] != 1 {
                    w += TR_ONES[g[2]];
                }
                return Some(w + scales[i - 1]);
            }
            // A lone unit in a middle group: num2words' cardinal keeps it
            // only in the thousands (and never "bir"); its ordinal keeps
            // any but "bir".
            if !lone || (g[2] != 1 && (ordinal || i == 2)) {
                w += TR_ONES[g[2]];
            }
        }
        w += TR_SCALES[i - 1];
    }
    Some(w)
}

// ---------------------------------------------------------------- Arabic

const AR_ONES: [&str; 20] = [
    "",
    "واحد",
    "اثنان",
    "ثلاثة",
    "أربعة",
    "خمسة",
    "ستة",
    "سبعة",
    "ثمانية",
    "تسعة",
    "عشرة",
    "أحد عشر",
    "اثنا عشر",
    "ثلاثة عشر",
    "أربعة عشر",
    "خمسة عشر",
    "ستة عشر",
    "سبعة عشر",
    "ثمانية عشر",
    "تسعة عشر",
];
const AR_FEMININE: [&str; 20] = [
    "",
    "إحدى",
    "اثنتان",
    "ثلاث",
    "أربع",
    "خمس",
    "ست",
    "سبع",
    "ثمان",
    "تسع",
    "عشر",
    "إحدى عشرة",
    "اثنتا عشرة",
    "ثلاث عشرة",
    "أربع عشرة",
    "خمس عشرة",
    "ست عشرة",
    "سبع عشرة",
    "ثماني عشرة",
    "تسع عشرة",
];
const AR_ORDINAL: [&str; 20] = [
    "",
    "اول",
    "ثاني",
    "ثالث",
    "رابع",
    "خامس",
    "سادس",
    "سابع",
    "ثامن",
    "تاسع",
    "عاشر",
    "حادي عشر",
    "ثاني عشر",
    "ثالث عشر",
    "رابع عشر",
    "خامس عشر",
    "سادس عشر",
    "سابع عشر",
    "ثامن عشر",
    "تاسع عشر",
];
const AR_TENS: [&str; 8] = [
    "عشرون",
    "ثلاثون",
    "أربعون",
    "خمسون",
    "ستون",
    "سبعون",
    "ثمانون",
    "تسعون",
];
const AR_HUNDREDS: [&str; 10] = [
    "",
    "مائة",
    "مئتان",
    "ثلاثمائة",
    "أربعمائة",
    "خمسمائة",
    "ستمائة",
    "سبعمائة",
    "ثمانمائة",
    "تسعمائة",
];
/// The 17 group levels of num2words-AR (10^0 .. 10^48), in four forms.
/// Two of its entries carry a trailing space, kept as it writes them.
const AR_APPENDED_TWOS: [&str; 17] = [
    "مئتا",
    "ألفا",
    "مليونا",
    "مليارا",
    "تريليونا",
    "كوادريليونا",
    "كوينتليونا",
    "سكستيليونا",
    "سبتيليونا",
    "أوكتيليونا ",
    "نونيليونا",
    "ديسيليونا",
    "أندسيليونا",
    "دوديسيليونا",
    "تريديسيليونا",
    "كوادريسيليونا",
    "كوينتينيليونا",
];
const AR_TWOS: [&str; 17] = [
    "مئتان",
    "ألفان",
    "مليونان",
    "ملياران",
    "تريليونان",
    "كوادريليونان",
    "كوينتليونان",
    "سكستيليونان",
    "سبتيليونان",
    "أوكتيليونان ",
    "نونيليونان ",
    "ديسيليونان",
    "أندسيليونان",
    "دوديسيليونان",
    "تريديسيليونان",
    "كوادريسيليونان",
    "كوينتينيليونان",
];
const AR_GROUP: [&str; 17] = [
    "مائة",
    "ألف",
    "مليون",
    "مليار",
    "تريليون",
    "كوادريليون",
    "كوينتليون",
    "سكستيليون",
    "سبتيليون",
    "أوكتيليون",
    "نونيليون",
    "ديسيليون",
    "أندسيليون",
    "دوديسيليون",
    "تريديسيليون",
    "كوادريسيليون",
    "كوينتينيليون",
];
const AR_APPENDED_GROUP: [&str; 17] = [
    "",
    "ألفاً",
    "مليوناً",
    "ملياراً",
    "تريليوناً",
    "كوادريليوناً",
    "كوينتليوناً",
    "سكستيليوناً",
    "سبتيليوناً",
    "أوكتيليوناً",
    "نونيليوناً",
    "ديسيليوناً",
    "أندسيليوناً",
    "دوديسيليوناً",
    "تريديسيليوناً",
    "كوادريسيليوناً",
    "كوينتينيليوناً",
];
const AR_PLURAL_GROUP: [&str; 17] = [
    "",
    "آلاف",
    "ملايين",
    "مليارات",
    "تريليونات",
    "كوادريليونات",
    "كوينتليونات",
    "سكستيليونات",
    "سبتيليونات",
    "أوكتيليونات",
    "نونيليونات",
    "ديسيليونات",
    "أندسيليونات",
    "دوديسيليونات",
    "تريديسيليونات",
    "كوادريسيليونات",
    "كوينتينيليونات",
];
/// num2words-AR's currency words for every code Coqui passes (it falls back
/// to the Saudi riyal for USD, GBP and EUR): (one, two, 3–10, 11–99).
const AR_RIYAL: [&str; 4] = ["ريال", "ريالان", "ريالات", "ريالاً"];
const AR_HALALA: [&str; 4] = ["هللة", "هللتان", "هللات", "هللة"];

/// The Python `decimal` context precision num2words-AR works under. It is
/// process-wide in Python and only ever widened (for a number of more than
/// 31 digits); vctts keeps one per text, starting as a fresh process does.
#[derive(Debug, Clone, Copy)]
struct ArPrecision(usize);

impl Default for ArPrecision {
    fn default() -> Self {
        ArPrecision(28)
    }
}

/// How num2words-AR is called: the words it appends after the integer part
/// and after the fraction, whether units are feminine, and the separator.
struct ArMode {
    feminine: bool,
    units: Option<[&'static str; 4]>,
    subunits: Option<[&'static str; 4]>,
    separator: &'static str,
    /// The value itself is zero (not a fraction too small for two decimals).
    zero: bool,
}

/// num2words-AR's `process_arabic_group`: one group of three digits at
/// `level` (-1: the fraction). `None` where num2words fails an assertion.
fn ar_group(value: usize, level: i32, whole: &str, mode: &ArMode) -> Option<String> {
    let tens = value % 100;
    let hundreds = value / 100;
    let ones = |d: usize| -> &'static str {
        if level == -1 || (level == 0 && mode.feminine) {
            AR_FEMININE[d]
        } else {
            AR_ONES[d]
        }
    };
    let mut out = String::new();
    if hundreds > 0 {
        if tens == 0 && hundreds == 2 {
            out += AR_APPENDED_TWOS[0];
        } else {
            out += AR_HUNDREDS[hundreds];
            if tens != 0 {
                out += " و ";
            }
        }
    }
    if tens == 0 {
        return Some(out);
    }
    if tens < 20 {
        if level >= 17 {
            return None;
        }
        if tens == 2 && hundreds == 0 && level > 0 {
            // "ألفا" only for exactly 2 × 10^(3k), else "ألفان".
            let exact_two = whole.len() > 3
                && whole.starts_with('2')
                && whole[1..].bytes().all(|b| b == b'0')
                && (whole.len() - 1) % 3 == 0;
            let table = if exact_two { AR_APPENDED_TWOS } else { AR_TWOS };
            return Some(table[level as usize].to_string());
        }
        if tens == 1 && level > 0 {
            out += AR_GROUP[level as usize];
        } else {
            out += ones(tens);
        }
    } else {
        let unit = tens % 10;
        if unit > 0 {
            out += ones(unit);
        }
        if !out.is_empty() && unit != 0 {
            out += " و ";
        }
        out += AR_TENS[tens / 10 - 2];
    }
    Some(out)
}

/// `int(Decimal(digits) / 1000)` under the decimal precision `prec`: the
/// quotient is rounded (half to even) to `prec` significant digits before
/// the fraction is cut, which can carry into the next group.
fn ar_div1000(digits: &str, prec: usize) -> String {
    let len = digits.len();
    if len <= 3 {
        return String::new();
    }
    if len <= prec {
        return digits[..len - 3].to_string();
    }
    // len - prec is 1..=3 here (a longer number widened `prec` first).
    let (kept, rest) = digits.split_at(prec);
    let half = {
        let mut h = String::from("5");
        h.push_str(&"0".repeat(rest.len() - 1));
        h
    };
    let last_odd = kept.bytes().last().is_some_and(|b| (b - b'0') % 2 == 1);
    let up = rest > half.as_str() || (rest == half && last_odd);
    let mut kept: Vec<u8> = kept.bytes().collect();
    if up {
        let mut i = kept.len();
        loop {
            if i == 0 {
                kept.insert(0, b'1');
                break;
            }
            i -= 1;
            if kept[i] == b'9' {
                kept[i] = b'0';
            } else {
                kept[i] += 1;
                break;
            }
        }
    }
    // kept × 10^(len - prec) / 1000, truncated.
    let cut = 3 - (len - prec);
    let keep = kept.len().saturating_sub(cut);
    String::from_utf8_lossy(&kept[..keep]).into_owned()
}

/// num2words-AR's `convert_to_arabic` of an integer (decimal digits, no
/// leading zeros) and a two-digit fraction. `None` where it fails.
fn ar_convert(whole: &str, fraction: usize, mode: &ArMode, prec: &mut ArPrecision) -> Option<String> {
    // num2words says "صفر" only for a zero value, not for a small fraction
    // that its two decimals lose (0.001 reads as nothing).
    if whole == "0" && fraction == 0 && mode.zero {
        return Some("صفر".to_string());
    }
    let fraction_words = ar_group(fraction, -1, whole, mode)?;
    let mut words = String::new();
    let mut rest = whole.to_string();
    let mut level = 0usize;
    loop {
        let len = rest.len();
        if len > 3 && len - 3 > prec.0 {
            // Decimal's remainder fails; num2words widens the precision.
            prec.0 = len;
        }
        let group: usize = rest[len.saturating_sub(3)..].parse().unwrap_or(0);
        rest = ar_div1000(&rest, prec.0);
        let desc = ar_group(group, level as i32, whole, mode)?;
        if !desc.is_empty() {
            if level > 0 {
                if level >= 17 {
                    return None;
                }
                if !words.is_empty() {
                    words = format!("و {words}");
                }
                if group != 1 && group != 2 {
                    let scale = if group % 100 == 1 {
                        AR_GROUP[level]
                    } else if (3..=10).contains(&group) {
                        AR_PLURAL_GROUP[level]
                    } else if words.is_empty() {
                        AR_GROUP[level]
                    } else {
                        AR_APPENDED_GROUP[level]
                    };
                    words = format!("{scale} {words}");
                }
            }
            words = format!("{desc} {words}");
        }
        level += 1;
        if rest.is_empty() || rest.bytes().all(|b| b == b'0') {
            break;
        }
    }
    let form = |forms: [&'static str; 4], n: usize, two: bool| match n {
        0 | 1 => forms[0],
        2 if two => forms[1],
        2 => forms[0],
        3..=10 => forms[2],
        _ => forms[3],
    };
    if whole != "0" {
        if let Some(units) = mode.units {
            let last2: usize = whole[whole.len().saturating_sub(2)..].parse().unwrap_or(0);
            words += form(units, last2, whole == "2");
        }
    }
    if fraction != 0 {
        words += &format!(" {} {fraction_words} ", mode.separator);
        if let Some(subunits) = mode.subunits {
            words += form(subunits, fraction, true);
        }
    }
    Some(words)
}

/// num2words-AR's `to_str` + `extract_integer_and_decimal_parts` of a
/// float: the integer digits and the first two decimals (of at most nine
/// that it keeps, rounded).
fn ar_float_parts(v: f64) -> Option<(String, usize)> {
    if !v.is_finite() || v < 0.0 {
        return None;
    }
    let int = v.trunc();
    let whole = format!("{int:.0}");
    if int == v {
        return Some((whole, 0));
    }
    // Python's round() of (v - int) × 10^9: half to even.
    let scaled = (v - int) * 1e9;
    let nano = scaled.round_ties_even();
    let digits = format!("{:09}", nano as u64);
    let digits = digits.trim_end_matches('0');
    let two = format!("{digits:0<2}");
    Some((whole, two[..2].parse().ok()?))
}

/// The digits of a number as Python's `int()` reads them (leading zeros
/// dropped; `None` past Python's 4,300-digit limit on `int(str)`).
fn py_int_digits(s: &str) -> Option<&str> {
    if s.len() > 4300 || s.is_empty() {
        return None;
    }
    let t = s.trim_start_matches('0');
    Some(if t.is_empty() { "0" } else { t })
}

/// num2words-AR `to_cardinal` of an integer given as decimal digits.
fn ar_cardinal(digits: &str, prec: &mut ArPrecision) -> Option<String> {
    let whole = py_int_digits(digits)?;
    if whole.len() > 51 {
        return None; // num2words-AR's MAXVAL is 10^51.
    }
    let mode = ArMode {
        feminine: false,
        units: None,
        subunits: None,
        separator: ",",
        zero: true,
    };
    Some(ar_convert(whole, 0, &mode, prec)?.trim().to_string())
}

/// num2words-AR `to_cardinal` of a float (Coqui's decimal pass).
fn ar_float(v: f64, prec: &mut ArPrecision) -> Option<String> {
    if v >= 1e51 {
        return None;
    }
    let (whole, fraction) = ar_float_parts(v)?;
    let mode = ArMode {
        feminine: false,
        units: None,
        subunits: None,
        separator: ",",
        zero: v == 0.0,
    };
    Some(ar_convert(&whole, fraction, &mode, prec)?.trim().to_string())
}

/// num2words-AR `to_ordinal`: its own words up to 19 (nothing for 0), the
/// cardinal above (feminine units below 100).
fn ar_ordinal(digits: &str, prec: &mut ArPrecision) -> Option<String> {
    let whole = py_int_digits(digits)?;
    if whole.len() <= 2 && whole.parse::<usize>().ok()? <= 19 {
        return Some(AR_ORDINAL[whole.parse::<usize>().ok()?].to_string());
    }
    let mode = ArMode {
        feminine: whole.len() <= 2,
        units: None,
        subunits: None,
        separator: ",",
        zero: true,
    };
    Some(ar_convert(whole, 0, &mode, prec)?.trim().to_string())
}

/// num2words-AR `to_currency`: riyals and halalas whatever the code (not
/// trimmed: num2words leaves its spaces there).
fn ar_currency(v: f64, prec: &mut ArPrecision) -> Option<String> {
    let (whole, fraction) = ar_float_parts(v)?;
    let mode = ArMode {
        feminine: false,
        units: Some(AR_RIYAL),
        subunits: Some(AR_HALALA),
        separator: "و",
        zero: v == 0.0,
    };
    ar_convert(&whole, fraction, &mode, prec)
}

// ------------------------------------------------------- per-language API

/// Cardinal words for `n` in `lang` (`None` where vctts does not read the
/// language's numbers, or where num2words itself refuses the number).
pub fn cardinal(n: u128, lang: &str) -> Option<String> {
    match lang {
        "it" => it_cardinal(n),
        "pt" => pt_cardinal(n),
        "pl" => slavic_int2word(&PL, n),
        "cs" => slavic_int2word(&CS, n),
        "ru" => ru_cardinal(n),
        "hu" => hu_cardinal_z(n, "nulla"),
        "tr" => tr_words(n, false),
        "ar" => ar_cardinal(&n.to_string(), &mut ArPrecision::default()),
        _ => cards(lang)?.cardinal(n),
    }
}

fn cards(lang: &str) -> Option<&'static Cards> {
    match lang {
        "en" => Some(en()),
        "de" => Some(de()),
        "fr" => Some(fr()),
        "es" => Some(es()),
        "nl" => Some(nl()),
        "ko" => Some(ko()),
        _ => None,
    }
}

/// Ordinal words (num2words `ordinal=True`).
pub fn ordinal(n: u128, lang: &str) -> Option<String> {
    match lang {
        "en" => en_ordinal_words(n),
        "de" => de_ordinal(n),
        "fr" => fr_ordinal(n),
        "es" => es_ordinal(n),
        "nl" => nl_ordinal(n),
        "it" => it_ordinal(n),
        "pt" => pt_ordinal(n),
        "pl" => pl_ordinal(n),
        "ru" => ru_ordinal(n),
        "hu" => hu_ordinal(n),
        "ko" => ko_ordinal(n),
        "tr" => tr_words(n, true),
        "ar" => ar_ordinal(&n.to_string(), &mut ArPrecision::default()),
        // num2words-CS has no ordinals (Coqui fails on "5." in Czech).
        _ => None,
    }
}

fn point_word(lang: &str) -> &'static str {
    match lang {
        "en" => "point",
        "de" => "Komma",
        "fr" => "virgule",
        "es" => "punto",
        "nl" => "komma",
        "pt" => "vírgula",
        "ko" => "점",
        _ => "",
    }
}

/// The number of decimals of Python's `repr(float)` (num2words' precision).
fn float_precision(v: f64) -> usize {
    // Rust's `{:?}` is the shortest round-trip form, as Python's repr; an
    // exponent form ("1e-5") counts its digits as Decimal's exponent does.
    let s = format!("{v:?}");
    let (mantissa, exp) = match s.split_once('e') {
        Some((m, e)) => (m, e.parse::<i64>().unwrap_or(0)),
        None => (s.as_str(), 0),
    };
    let frac = mantissa.split_once('.').map_or(0, |(_, f)| f.len()) as i64;
    (frac - exp).max(0) as usize
}

/// num2words' `float2tuple`: the integer part and the fraction as an
/// integer of `precision` digits.
fn float2tuple(v: f64) -> (u128, u128, usize) {
    let pre = v.trunc();
    let precision = float_precision(v);
    let post = (v - pre).abs() * 10f64.powi(precision as i32);
    let post = if (post.round() - post).abs() < 0.01 {
        post.round()
    } else {
        post.floor()
    };
    (pre as u128, post as u128, precision)
}

/// num2words(float) (`to_cardinal` on a float): an integral value is read
/// as an integer; otherwise the integer part, the point word and each
/// fraction digit.
pub fn float_words(v: f64, lang: &str) -> Option<String> {
    if !v.is_finite() || !(0.0..1e30).contains(&v) {
        return None;
    }
    if lang == "it" {
        // num2words-IT reads every digit of repr() after the point, even
        // for an integral float ("1.0" -> "uno virgola zero").
        let repr = format!("{v:?}");
        let (_, frac) = repr.split_once('.')?;
        if frac.contains('e') {
            return None;
        }
        let digits: Option<Vec<String>> = frac
            .chars()
            .map(|d| it_cardinal(d.to_digit(10)? as u128))
            .collect();
        return Some(format!(
            "{} virgola {}",
            it_cardinal(v.trunc() as u128)?,
            digits?.join(" ")
        ));
    }
    match lang {
        "pl" => return slavic_float(v, "przecinek", "zero", |n| slavic_int2word(&PL, n)),
        "cs" => return slavic_float(v, "celá", "nula", |n| slavic_int2word(&CS, n)),
        "ru" => return ru_float(v),
        "hu" => return hu_float(v),
        "ar" => return ar_float(v, &mut ArPrecision::default()),
        // Coqui never reads a Turkish decimal (it has no decimal pass there).
        "tr" => return None,
        _ => {}
    }
    if v.fract() == 0.0 {
        return cardinal(v as u128, lang);
    }
    let (pre, post, precision) = float2tuple(v);
    let post = format!("{post:0>precision$}");
    let mut out = vec![cardinal(pre, lang)?];
    if precision > 0 {
        out.push(point_word(lang).to_string());
    }
    for d in post.chars().take(precision) {
        out.push(cardinal(d.to_digit(10)? as u128, lang)?);
    }
    Some(out.join(" "))
}

/// (unit forms, cent forms, separator) of num2words' currency tables:
/// forms are (one, few, many); two-form languages repeat the plural.
type CurrencyForms = ([&'static str; 3], [&'static str; 3], &'static str);

fn currency_forms(lang: &str, code: &str) -> Option<CurrencyForms> {
    let two =
        |a: [&'static str; 2], b: [&'static str; 2], sep| Some(([a[0], a[1], a[1]], [b[0], b[1], b[1]], sep));
    match (lang, code) {
        ("en", "USD") => two(["dollar", "dollars"], ["cent", "cents"], ","),
        ("en", "EUR") => two(["euro", "euro"], ["cent", "cents"], ","),
        ("en", "GBP") => two(["pound sterling", "pounds sterling"], ["penny", "pence"], ","),
        ("de", "USD") => two(["Dollar", "Dollar"], ["Cent", "Cent"], " und"),
        ("de", "EUR") => two(["Euro", "Euro"], ["Cent", "Cent"], " und"),
        ("de", "GBP") => two(["Pfund", "Pfund"], ["Penny", "Pence"], " und"),
        ("fr", "USD") => two(["dollar", "dollars"], ["cent", "cents"], " et"),
        ("fr", "EUR") => two(["euro", "euros"], ["centime", "centimes"], " et"),
        ("fr", "GBP") => two(["livre", "livres"], ["penny", "pence"], " et"),
        ("es", "USD") => two(["dólar", "dólares"], ["centavo", "centavos"], " con"),
        ("es", "EUR") => two(["euro", "euros"], ["céntimo", "céntimos"], " con"),
        ("es", "GBP") => two(["libra", "libras"], ["penique", "peniques"], " con"),
        ("nl", "USD") => two(["dollar", "dollar"], ["cent", "cent"], ","),
        ("nl", "EUR") => two(["euro", "euro"], ["cent", "cent"], ","),
        ("nl", "GBP") => two(["pond", "pond"], ["penny", "pence"], ","),
        ("it", "USD") => two(["dollaro", "dollari"], ["centesimo", "centesimi"], " e"),
        ("it", "EUR") => two(["euro", "euro"], ["centesimo", "centesimi"], " e"),
        ("it", "GBP") => two(["sterlina", "sterline"], ["penny", "penny"], " e"),
        ("pt", "USD") => two(["dólar", "dólares"], ["cêntimo", "cêntimos"], " e"),
        ("pt", "EUR") => two(["euro", "euros"], ["cêntimo", "cêntimos"], " e"),
        ("pt", "GBP") => two(["libra", "libras"], ["péni", "pence"], " e"),
        ("pl", "USD") => Some((
            [
                "dolar amerykański",
                "dolary amerykańskie",
                "dolarów amerykańskich",
            ],
            ["cent", "centy", "centów"],
            ",",
        )),
        ("pl", "EUR") => Some((["euro", "euro", "euro"], ["cent", "centy", "centów"], ",")),
        ("cs", "EUR") => Some((["euro", "euro", "euro"], ["cent", "centy", "centů"], ",")),
        ("ru", "USD") => Some((
            ["доллар", "доллара", "долларов"],
            ["цент", "цента", "центов"],
            ",",
        )),
        ("ru", "EUR") => Some((["евро", "евро", "евро"], ["цент", "цента", "центов"], ",")),
        // num2words-HU keeps num2words-EU's English currency names.
        ("hu", "USD") => two(["dollar", "dollars"], ["cent", "cents"], ","),
        ("hu", "EUR") => two(["euro", "euro"], ["cent", "cents"], ","),
        ("hu", "GBP") => two(["pound sterling", "pounds sterling"], ["penny", "pence"], ","),
        _ => None,
    }
}

/// Which of the (one, few, many) forms num2words' `pluralize` picks.
fn plural_index(lang: &str, n: u128) -> usize {
    match lang {
        "nl" => 0,
        "pl" | "cs" => pl_plural(n),
        "ru" => ru_plural(n),
        _ => usize::from(n != 1),
    }
}

/// num2words' `parse_currency_parts` of a float: rounded half up to cents.
fn currency_parts(v: f64) -> Option<(u128, u128)> {
    if !v.is_finite() || !(0.0..1e30).contains(&v) {
        return None;
    }
    // The float's exact decimal expansion, then ROUND_HALF_UP at 0.01.
    let exact = format!("{v:.60}");
    let (int, frac) = exact.split_once('.')?;
    let int: u128 = int.parse().ok()?;
    let digits: Vec<u32> = frac.chars().filter_map(|c| c.to_digit(10)).collect();
    let mut cents = (digits.first().copied().unwrap_or(0) * 10 + digits.get(1).copied().unwrap_or(0)) as u128;
    if digits.get(2).copied().unwrap_or(0) >= 5 {
        cents += 1;
    }
    Some((int + cents / 100, cents % 100))
}

/// num2words `to="currency"` for a float amount.
pub fn currency_words(v: f64, code: &str, lang: &str) -> Option<String> {
    if lang == "ar" {
        return ar_currency(v, &mut ArPrecision::default());
    }
    if lang == "ko" {
        // num2words-KO: only dollars among Coqui's three; no separator.
        if code != "USD" {
            return None;
        }
        let (left, right) = currency_parts(v)?;
        let money: String = ko().cardinal(left)?.split_whitespace().collect();
        return Some(format!("{money}달러 {}센트", ko().cardinal(right)?));
    }
    let (unit, cent, sep) = currency_forms(lang, code)?;
    let (left, right) = currency_parts(v)?;
    let plural = |n: u128, forms: [&'static str; 3]| forms[plural_index(lang, n)];
    let out = format!(
        "{} {}{} {} {}",
        cardinal(left, lang)?,
        plural(left, unit),
        sep,
        cardinal(right, lang)?,
        plural(right, cent)
    );
    Some(match lang {
        "de" => out.replace("eins ", "ein "),
        "es" => {
            let split = format!("{sep} ");
            let parts: Vec<String> = out
                .split(split.as_str())
                .enumerate()
                .map(|(i, p)| {
                    let mut p = p.to_string();
                    if i == 0 && code == "GBP" {
                        p = p.replace("uno", "una").replace("cientos", "cientas");
                    }
                    p.replace("veintiuno", "veintiún").replace("uno", "un")
                })
                .collect();
            parts.join(&split)
        }
        "it" => {
            let mut out = out;
            if code == "GBP" {
                let mut words: Vec<&str> = out.split(' ').collect();
                if words.first() == Some(&"uno") {
                    words[0] = "una";
                }
                out = words.join(" ");
            }
            out.replace("uno", "un")
        }
        "pt" => {
            let mut out = out;
            for ext in ["milhão", "milhões", "bilião", "biliões", "trilião", "triliões"] {
                if out.contains(&format!("{ext} {}", unit[1])) {
                    out = out.replacen(ext, &format!("{ext} de"), 1);
                }
            }
            out.replace(" e zero cêntimos", "")
        }
        _ => out,
    })
}

/// Coqui's `and_equivalents`: where an integral amount's "zero cents" is cut.
fn and_equivalent(lang: &str) -> &'static str {
    match lang {
        "es" => " con ",
        "fr" => " et ",
        "de" => " und ",
        "pt" | "it" => " e ",
        _ => ", ",
    }
}

/// Python's `float()` of a string of ASCII digits and dots.
fn py_float(s: &str) -> Option<f64> {
    if s.is_empty() || s.matches('.').count() > 1 || s == "." {
        return None;
    }
    s.parse().ok()
}

fn expand_currency(m: &str, code: &str, lang: &str, prec: &mut ArPrecision) -> Option<String> {
    let cleaned: String = m
        .replace(',', ".")
        .chars()
        .filter(|c| c.is_numeric() || *c == '.')
        .collect();
    let amount = py_float(&cleaned)?;
    let mut full = if lang == "ar" {
        ar_currency(amount, prec)?
    } else {
        currency_words(amount, code, lang)?
    };
    if amount.fract() == 0.0 {
        if let Some(i) = full.rfind(and_equivalent(lang)) {
            full.truncate(i);
        }
    }
    Some(full)
}

struct Patterns {
    comma_number: Regex,
    dot_number: Regex,
    currency: [(&'static str, Regex); 3],
    decimal: Regex,
    number: Regex,
}

fn patterns() -> &'static Patterns {
    static P: OnceLock<Patterns> = OnceLock::new();
    P.get_or_init(|| {
        let re = |s: &str| Regex::new(s).expect("static pattern");
        Patterns {
            comma_number: re(r"\b\d{1,3}(?:,\d{3})*(?:\.\d+)?\b"),
            dot_number: re(r"\b\d{1,3}(?:.\d{3})*(?:,\d+)?\b"),
            currency: [
                ("GBP", re(r"(?:£[0-9.,]*[0-9]+)|(?:[0-9.,]*[0-9]+£)")),
                ("USD", re(r"(?:\$[0-9.,]*[0-9]+)|(?:[0-9.,]*[0-9]+\$)")),
                ("EUR", re(r"(?:[0-9.,]*[0-9]+€)|(?:€[0-9.,]*[0-9]+)")),
            ],
            decimal: re(r"[0-9]+[.,][0-9]+"),
            number: re(r"[0-9]+"),
        }
    })
}

/// Coqui's `_ordinal_re` suffixes (in its alternation order) and whether a
/// lone `.` suffix needs whitespace or the end after it (`(?=\s|$)`).
fn ordinal_pattern(lang: &str) -> Option<&'static Regex> {
    static P: OnceLock<Vec<(&'static str, Regex)>> = OnceLock::new();
    let all = P.get_or_init(|| {
        [
            ("en", r"([0-9]+)(st|nd|rd|th)"),
            ("es", r"([0-9]+)(º|ª|er|o|a|os|as)"),
            ("fr", r"([0-9]+)(º|ª|er|re|e|ème)"),
            ("de", r"([0-9]+)(st|nd|rd|th|º|ª|\.)"),
            ("nl", r"([0-9]+)(de|ste|e)"),
            ("it", r"([0-9]+)(º|°|ª|o|a|i|e)"),
            ("pt", r"([0-9]+)(º|ª|o|a|os|as)"),
            ("pl", r"([0-9]+)(º|ª|st|nd|rd|th)"),
            ("cs", r"([0-9]+)(\.)"),
            ("ru", r"([0-9]+)(-й|-я|-е|-ое|-ье|-го)"),
            ("hu", r"([0-9]+)(\.|adik|edik|odik|edik|ödik|ödike|ik)"),
            ("ko", r"([0-9]+)(번째|번|차|째)"),
            ("tr", r"([0-9]+)(\.|inci|nci|uncu|üncü)"),
            ("ar", r"([0-9]+)(ون|ين|ث|ر|ى)"),
        ]
        .into_iter()
        .map(|(l, p)| (l, Regex::new(p).expect("static pattern")))
        .collect()
    });
    all.iter().find(|(l, _)| *l == lang).map(|(_, r)| r)
}

/// `re.sub` with a replacement that may fail: `None` keeps the match.
fn sub(re: &Regex, text: &str, mut f: impl FnMut(&Captures) -> Option<String>) -> String {
    re.replace_all(text, |c: &Captures| f(c).unwrap_or_else(|| c[0].to_string()))
        .into_owned()
}

/// Spells out the numbers of lowercased text for `lang` (a base code).
pub fn expand(text: &str, lang: &str) -> String {
    if !text.bytes().any(|b| b.is_ascii_digit()) || !READ_OUT.contains(&lang) {
        return text.to_string();
    }
    let p = patterns();
    // num2words-AR's decimal precision, carried from number to number.
    let mut prec = ArPrecision::default();
    let mut t = if lang == "en" || lang == "ru" {
        sub(&p.comma_number, text, |c| Some(c[0].replace(',', "")))
    } else {
        sub(&p.dot_number, text, |c| Some(c[0].replace('.', "")))
    };
    // Currency: Coqui runs the three substitutions under one
    // `suppress(Exception)`, so the first failing amount ends the step
    // with that substitution undone.
    for (code, re) in &p.currency {
        let mut failed = false;
        let next = re
            .replace_all(&t, |c: &Captures| {
                match expand_currency(&c[0], code, lang, &mut prec) {
                    Some(s) => s,
                    None => {
                        failed = true;
                        c[0].to_string()
                    }
                }
            })
            .into_owned();
        if failed {
            break;
        }
        t = next;
    }
    if lang != "tr" {
        t = sub(&p.decimal, &t, |c| {
            let v = py_float(&c[0].replace(',', "."))?;
            if lang == "ar" {
                ar_float(v, &mut prec)
            } else {
                float_words(v, lang)
            }
        });
    }
    if let Some(re) = ordinal_pattern(lang) {
        // `\.` only before whitespace or the end (Coqui's lookahead); a
        // match that fails it is left for the cardinal pass.
        let needs_space = lang == "de" || lang == "cs";
        let mut out = String::with_capacity(t.len());
        let mut last = 0;
        for c in re.captures_iter(&t) {
            let m = c.get(0).expect("match");
            if needs_space && &c[2] == "." {
                let after = t[m.end()..].chars().next();
                if after.is_some_and(|ch| !ch.is_whitespace()) {
                    continue;
                }
            }
            let words = if lang == "ar" {
                ar_ordinal(&c[1], &mut prec)
            } else {
                c[1].parse::<u128>().ok().and_then(|n| ordinal(n, lang))
            };
            let Some(words) = words else {
                continue;
            };
            out.push_str(&t[last..m.start()]);
            out.push_str(&words);
            last = m.end();
        }
        out.push_str(&t[last..]);
        t = out;
    }
    sub(&p.number, &t, |c| {
        let words = if lang == "ar" {
            ar_cardinal(&c[0], &mut prec)
        } else {
            c[0].parse::<u128>().ok().and_then(|n| cardinal(n, lang))
        };
        words.or_else(|| digit_groups(&c[0], lang))
    })
}

/// Digit runs longer than this that num2words cannot read (Coqui fails on
/// them) are read three digits at a time instead of being kept as digits.
pub const LONG_RUN: usize = 15;

/// A long digit run that Coqui cannot read (past num2words' largest number,
/// or past Python's 4,300-digit `int()` limit): vctts reads it digit by digit
/// in the language's words, in groups of three separated by commas, so the
/// sentence splitter can cut it like any long clause. `None` (kept as
/// written) for shorter runs.
fn digit_groups(run: &str, lang: &str) -> Option<String> {
    if run.len() <= LONG_RUN {
        return None;
    }
    let words: Vec<String> = (0..10u128)
        .map(|d| cardinal(d, lang).unwrap_or_else(|| d.to_string()))
        .collect();
    let digits: Vec<&str> = run
        .bytes()
        .map(|b| words[usize::from(b.wrapping_sub(b'0')).min(9)].as_str())
        .collect();
    Some(
        digits
            .chunks(3)
            .map(|g| g.join(" "))
            .collect::<Vec<_>>()
            .join(", "),
    )
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
        assert_eq!(en_ordinal(21), "twenty-first");
        assert_eq!(en_ordinal(20), "twentieth");
        assert_eq!(expand("in 12.5 seconds", "en"), "in twelve point five seconds");
        assert_eq!(expand("this is a 1st test", "en"), "this is a first test");
        assert_eq!(
            expand("that will be $20.15 sir", "en"),
            "that will be twenty dollars, fifteen cents sir"
        );
        assert_eq!(
            expand("that's 100,000.5.", "en"),
            "that's one hundred thousand point five."
        );
    }

    #[test]
    fn other_european_languages() {
        assert_eq!(expand("il 21º posto", "it"), "il ventunesimo posto");
        assert_eq!(
            expand("1.234.567", "pt"),
            "um milhão duzentos e trinta e quatro mil quinhentos e sessenta e sete"
        );
        assert_eq!(expand("2024", "ru"), "две тысячи двадцать четыре");
        assert_eq!(expand("21-й", "ru"), "двадцать первый");
        assert_eq!(expand("22 zł", "pl"), "dwadzieścia dwa zł");
        assert_eq!(expand("2,5", "cs"), "dva celá pět");
        assert_eq!(expand("3. fejezet", "hu"), "harmadik fejezet");
        assert_eq!(expand("$20", "ko"), "이십달러 영센트");
    }

    #[test]
    fn german_french_spanish_dutch() {
        assert_eq!(expand("in 12,5 sekunden.", "de"), "in zwölf Komma fünf sekunden.");
        assert_eq!(expand("der 2. platz", "de"), "der zweite platz");
        assert_eq!(expand("ceci est un 1er test", "fr"), "ceci est un premier test");
        assert_eq!(
            expand("cela vous fera 20,15€", "fr"),
            "cela vous fera vingt euros et quinze centimes"
        );
        assert_eq!(cardinal(1001, "es").unwrap(), "mil uno");
        assert_eq!(cardinal(21, "nl").unwrap(), "eenentwintig");
    }

    #[test]
    fn five_thousand_digits_are_read_in_bounded_groups() {
        let run = "1234567890".repeat(500);
        for lang in READ_OUT {
            let out = expand(&run, lang);
            assert!(!out.bytes().any(|b| b.is_ascii_digit()), "{lang}");
            // Three digits per group, so 1,667 groups, each a few words.
            assert_eq!(out.matches(", ").count(), 1666, "{lang}");
            assert!(out.chars().count() < 5000 * 12, "{lang}");
            let pieces = crate::text::split::split_sentences(&out, 250);
            assert!(pieces.iter().all(|p| p.chars().count() <= 250), "{lang}");
        }
        assert!(
            expand(&run, "en").starts_with("one two three, four five six, seven eight nine, zero one two")
        );
        assert!(expand(&run, "tr").starts_with("bir iki üç, dört beş altı"));
    }

    #[test]
    fn turkish_follows_num2words() {
        assert_eq!(expand("bu 1. test", "tr"), "bu birinci test");
        assert_eq!(expand("2024 yılı", "tr"), "ikibinyirmidört yılı");
        assert_eq!(cardinal(0, "tr").unwrap(), "sıfır");
        assert_eq!(cardinal(1000, "tr").unwrap(), "bin");
        assert_eq!(cardinal(1_000_000, "tr").unwrap(), "birmilyon");
        // num2words' quirks, kept: a lost "bir", and nothing at all for an
        // integer past 2^53 that a float cannot hold.
        assert_eq!(cardinal(101_001, "tr").unwrap(), "yüzbinbir");
        assert_eq!(cardinal(9_007_199_254_740_993, "tr").unwrap(), "");
        assert_eq!(ordinal(100, "tr").unwrap(), "yüzüncü");
        assert_eq!(ordinal(0, "tr").unwrap(), "sıfırıncı");
        // No decimal pass in Turkish; "3.5" is an ordinal and a cardinal.
        assert_eq!(expand("3.5 ve 3,5", "tr"), "üçüncübeş ve üç,beş");
        // num2words-TR has no currency words Coqui can ask for.
        assert_eq!(expand("$20", "tr"), "$yirmi");
        assert_eq!(cardinal(TR_MAXVAL, "tr"), None);
    }

    #[test]
    fn arabic_follows_num2words() {
        assert_eq!(expand("كان هناك 50 جنديًا.", "ar"), "كان هناك خمسون جنديًا.");
        assert_eq!(
            expand("في الـ 12,5 ثانية.", "ar"),
            "في الـ اثنا عشر  , خمسون ثانية."
        );
        assert_eq!(cardinal(2000, "ar").unwrap(), "ألفا");
        assert_eq!(cardinal(2002, "ar").unwrap(), "ألفان و اثنان");
        assert_eq!(cardinal(0, "ar").unwrap(), "صفر");
        assert_eq!(ordinal(3, "ar").unwrap(), "ثالث");
        assert_eq!(
            currency_words(20.15, "USD", "ar").unwrap(),
            "عشرون ريالاً و خمس عشرة هللة"
        );
        // Past 28 digits Python's Decimal rounds 10^29 + 999 / 1000 up into
        // the thousands group.
        let n = format!("1{}999", "0".repeat(26));
        assert_eq!(
            ar_cardinal(&n, &mut ArPrecision::default()).unwrap(),
            "مائة أوكتيليوناً و ألف و تسعمائة و تسعة و تسعون"
        );
        assert_eq!(ar_cardinal(&"9".repeat(52), &mut ArPrecision::default()), None);
    }

    #[test]
    fn other_languages_keep_digits_and_nothing_panics() {
        assert_eq!(expand("50 katona", "hu"), "ötven katona");
        assert_eq!(expand("50 asker", "tr"), "elli asker");
        assert_eq!(expand("५० 50", "hi"), "५० 50");
        assert_eq!(expand("no digits", "en"), "no digits");
        // Past num2words' range (Coqui fails), a long run is read in groups.
        let long = "9".repeat(60);
        let read = expand(&long, "en");
        assert!(read.starts_with("nine nine nine, nine nine nine, "), "{read}");
        for lang in READ_OUT {
            for s in [
                "1,",
                "$.5",
                "€1.2.3",
                "1.0e5",
                "٣ 5th 1. 2.",
                "$99999999999999999999999999999999999999999",
            ] {
                let _ = expand(s, lang);
            }
        }
    }
}
