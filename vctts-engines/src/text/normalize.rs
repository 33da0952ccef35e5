//! Text normalisation: writes numbers and symbols the way they are spoken.
//!
//! English (`en`, `en-US`, ...) and Chinese (`zh`, `zh-CN`, `cmn`, ...) get
//! the full treatment: integers, decimals, ordinals (en), years, ISO dates,
//! times, currency, percent, temperatures and a few symbols. Every language
//! gets whitespace cleanup: runs of whitespace become one space, the ends are
//! trimmed. Full-width digits and symbols (`１２３％`) are folded to ASCII first.
//!
//! Invariants: the function is total (any input gives an output, never a
//! panic); text that contains no digits, no handled symbols and no
//! full-width forms comes back with only its whitespace changed; numbers too
//! long to read as quantities (more than 19 digits in English; 11 or more
//! ungrouped digits in Chinese, i.e. phone numbers; leading zeros such as `007`)
//! are read digit by digit.
//!
//! Long digit runs (item of the cost bound): an ungrouped run of more than
//! [`LONG_RUN`] (15) digits is an identifier, not a quantity. English reads
//! it digit by digit in comma-separated groups of [`DIGIT_GROUP`]
//! ("one two three, four five six, ..."), as it does any digit string of
//! that length (a long fraction too); languages without number rules (the
//! Piper voices, whose espeak-ng reads digits itself) get the same groups as
//! spaced digits (`1 2 3, 4 5 6, ...`). Numbers up to 15 digits, or written
//! with thousands separators, keep their cardinal reading. The commas give
//! [`crate::text::split`] a place to cut, so a run of any length becomes
//! sentences of at most the engine's character limit, and the output grows
//! linearly with the run (`"1234567890" * 500` is about 33,000 characters of
//! English words, split in well under a second).

/// Spoken form for `lang` ("en" or "zh"; other languages: whitespace cleanup only): integers, decimals,
/// ordinals (1st), years (1999 → nineteen ninety-nine in a date context), dates (2024-03-05), times (10:30),
/// currency ($3.50 → three dollars fifty cents, €, £, ¥), percent, common symbols (&, @, +, =, °C); zh:
/// 数字 → 中文读法, 百分号, 货币. Collapses whitespace.
///
/// Examples: `normalize("It costs $3.50.", "en")` is `"It costs three dollars fifty cents."`;
/// `normalize("增长了50%", "zh")` is `"增长了百分之五十"`.
pub fn normalize(text: &str, lang: &str) -> String {
    let chars: Vec<char> = text.chars().map(fold_width).collect();
    let expanded = match Lang::of(lang) {
        Lang::En => Scanner::new(&chars, Lang::En).run(),
        Lang::Zh => Scanner::new(&chars, Lang::Zh).run(),
        Lang::Other => group_long_runs(&chars),
    };
    collapse_whitespace(&expanded)
}

/// Digit runs up to this length are numbers (read as quantities where the
/// language has number rules); longer ungrouped runs are read digit by digit.
pub const LONG_RUN: usize = 15;

/// Digits per group when a long run is read digit by digit; groups are
/// separated by commas (a short pause, and a place where
/// [`crate::text::split`] may cut), so no clause grows with the run.
pub const DIGIT_GROUP: usize = 3;

/// Languages without number rules (the reader, e.g. espeak-ng, says the
/// digits): a run of more than [`LONG_RUN`] ASCII digits becomes single
/// digits separated by spaces, [`DIGIT_GROUP`] per comma-separated group
/// (`1 2 3, 4 5 6, ...`), so the reader says them one by one and the
/// splitter can cut between groups; shorter runs are left as written.
fn group_long_runs(chars: &[char]) -> String {
    let mut out = String::with_capacity(chars.len());
    let mut i = 0;
    while i < chars.len() {
        let end = digits_from(chars, i);
        if end - i > LONG_RUN {
            for (k, group) in chars[i..end].chunks(DIGIT_GROUP).enumerate() {
                if k > 0 {
                    out.push_str(", ");
                }
                for (j, d) in group.iter().enumerate() {
                    if j > 0 {
                        out.push(' ');
                    }
                    out.push(*d);
                }
            }
            i = end;
        } else if end > i {
            out.extend(&chars[i..end]);
            i = end;
        } else {
            out.push(chars[i]);
            i += 1;
        }
    }
    out
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Lang {
    En,
    Zh,
    Other,
}

impl Lang {
    fn of(tag: &str) -> Lang {
        let primary = tag
            .trim()
            .split(['-', '_'])
            .next()
            .unwrap_or("")
            .to_ascii_lowercase();
        match primary.as_str() {
            "en" => Lang::En,
            "zh" | "cmn" => Lang::Zh,
            _ => Lang::Other,
        }
    }
}

/// Full-width digits and the symbols this module reads, folded to ASCII.
fn fold_width(c: char) -> char {
    match c {
        '０'..='９' => char::from_u32(c as u32 - '０' as u32 + '0' as u32).unwrap_or(c),
        '％' => '%',
        '＋' => '+',
        '＝' => '=',
        '＆' => '&',
        '＠' => '@',
        '＄' => '$',
        '\u{2212}' => '-',
        _ => c,
    }
}

fn collapse_whitespace(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for word in s.split_whitespace() {
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(word);
    }
    out
}

// ------------------------------------------------------------------ numbers

/// A decimal number as written: integer digits (grouping commas removed) and
/// optional fraction digits. `chars[start..end]` is its text.
#[derive(Debug, Clone)]
struct Num {
    int: String,
    frac: Option<String>,
    grouped: bool,
    end: usize,
}

impl Num {
    fn value(&self) -> Option<u64> {
        if self.int.len() > 19 {
            return None;
        }
        self.int.parse().ok()
    }

    fn is_plain_int(&self) -> bool {
        self.frac.is_none() && !self.grouped
    }

    /// Leading zeros (`007`), a run of more than [`LONG_RUN`] digits without
    /// thousands separators (phone numbers, IDs, card numbers), or too many
    /// digits to be a quantity: read digit by digit.
    fn read_as_digits(&self) -> bool {
        (self.int.len() > 1 && self.int.starts_with('0') && !self.grouped)
            || (self.int.len() > LONG_RUN && !self.grouped)
            || self.value().is_none()
    }

    fn is_one(&self) -> bool {
        self.value() == Some(1) && self.frac.as_deref().is_none_or(|f| f.bytes().all(|b| b == b'0'))
    }
}

fn is_digit_at(c: &[char], i: usize) -> bool {
    c.get(i).is_some_and(|ch| ch.is_ascii_digit())
}

fn is_alnum_at(c: &[char], i: usize) -> bool {
    c.get(i).is_some_and(|ch| ch.is_alphanumeric())
}

fn digits_from(c: &[char], i: usize) -> usize {
    let mut j = i;
    while is_digit_at(c, j) {
        j += 1;
    }
    j
}

/// Parses `1234`, `1,234,567`, `3.14`, `1,234.5` at `i`.
fn parse_num(c: &[char], i: usize) -> Option<Num> {
    if !is_digit_at(c, i) {
        return None;
    }
    let mut j = digits_from(c, i);
    let mut int: String = c[i..j].iter().collect();
    let mut grouped = false;
    if j - i <= 3 {
        let mut k = j;
        let mut groups = String::new();
        while c.get(k) == Some(&',') && digits_from(c, k + 1) == k + 4 {
            groups.extend(&c[k + 1..k + 4]);
            k += 4;
        }
        if !groups.is_empty() {
            int.push_str(&groups);
            j = k;
            grouped = true;
        }
    }
    let mut frac = None;
    if c.get(j) == Some(&'.') && is_digit_at(c, j + 1) {
        let k = digits_from(c, j + 1);
        frac = Some(c[j + 1..k].iter().collect());
        j = k;
    }
    Some(Num {
        int,
        frac,
        grouped,
        end: j,
    })
}

fn two_digits(c: &[char], i: usize) -> Option<u32> {
    if is_digit_at(c, i) && is_digit_at(c, i + 1) {
        Some(c[i].to_digit(10)? * 10 + c[i + 1].to_digit(10)?)
    } else {
        None
    }
}

/// `YYYY-MM-DD` (or `YYYY/MM/DD`) at `i`: (year, month, day, end).
fn parse_iso_date(c: &[char], i: usize) -> Option<(u32, u32, u32, usize)> {
    if digits_from(c, i) != i + 4 {
        return None;
    }
    let sep = *c.get(i + 4)?;
    if sep != '-' && sep != '/' {
        return None;
    }
    let year: u32 = c[i..i + 4].iter().collect::<String>().parse().ok()?;
    let month = two_digits(c, i + 5)?;
    if c.get(i + 7) != Some(&sep) {
        return None;
    }
    let day = two_digits(c, i + 8)?;
    let end = i + 10;
    if is_digit_at(c, end) || !(1..=12).contains(&month) || !(1..=31).contains(&day) {
        return None;
    }
    Some((year, month, day, end))
}

/// Half-day marker of a 12-hour time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum HalfDay {
    Am,
    Pm,
}

/// `am`, `pm`, `a.m.`, `P.M.` after optional spaces at `i`: (marker, end).
fn parse_half_day(c: &[char], i: usize) -> Option<(HalfDay, usize)> {
    let mut j = i;
    while c.get(j) == Some(&' ') {
        j += 1;
    }
    let half = match c.get(j)?.to_ascii_lowercase() {
        'a' => HalfDay::Am,
        'p' => HalfDay::Pm,
        _ => return None,
    };
    j += 1;
    let dotted = c.get(j) == Some(&'.');
    if dotted {
        j += 1;
    }
    if !c.get(j)?.eq_ignore_ascii_case(&'m') {
        return None;
    }
    j += 1;
    if dotted && c.get(j) == Some(&'.') {
        j += 1;
    }
    if is_alnum_at(c, j) {
        return None;
    }
    Some((half, j))
}

/// A clock time `H:MM` or `H:MM:SS` at `i`: (hours, minutes, seconds, end).
fn parse_time(c: &[char], i: usize) -> Option<(u32, u32, Option<u32>, usize)> {
    let h_end = digits_from(c, i);
    if h_end == i || h_end - i > 2 || c.get(h_end) != Some(&':') {
        return None;
    }
    let hours: u32 = c[i..h_end].iter().collect::<String>().parse().ok()?;
    let minutes = two_digits(c, h_end + 1)?;
    let mut end = h_end + 3;
    let mut seconds = None;
    if c.get(end) == Some(&':') {
        seconds = Some(two_digits(c, end + 1)?);
        end += 3;
    }
    if is_digit_at(c, end) || (c.get(end) == Some(&':') && is_digit_at(c, end + 1)) {
        return None;
    }
    if hours > 24 || minutes > 59 || seconds.is_some_and(|s| s > 59) {
        return None;
    }
    Some((hours, minutes, seconds, end))
}

/// A temperature or angle unit right after a number: (unit, end).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Degree {
    Celsius,
    Fahrenheit,
    Plain,
}

fn parse_degree(c: &[char], i: usize) -> Option<(Degree, usize)> {
    let mut j = i;
    if c.get(j) == Some(&' ') && matches!(c.get(j + 1), Some('°' | '℃' | '℉')) {
        j += 1;
    }
    match c.get(j)? {
        '℃' => Some((Degree::Celsius, j + 1)),
        '℉' => Some((Degree::Fahrenheit, j + 1)),
        '°' => {
            let mut k = j + 1;
            if c.get(k) == Some(&' ') && matches!(c.get(k + 1), Some('C' | 'F')) {
                k += 1;
            }
            match c.get(k) {
                Some('C') if !is_alnum_at(c, k + 1) => Some((Degree::Celsius, k + 1)),
                Some('F') if !is_alnum_at(c, k + 1) => Some((Degree::Fahrenheit, k + 1)),
                _ => Some((Degree::Plain, j + 1)),
            }
        }
        _ => None,
    }
}

fn parse_percent(c: &[char], i: usize) -> Option<usize> {
    match (c.get(i), c.get(i + 1)) {
        (Some('%'), _) => Some(i + 1),
        (Some(' '), Some('%')) => Some(i + 2),
        _ => None,
    }
}

fn is_currency(c: char) -> bool {
    matches!(c, '$' | '€' | '£' | '¥' | '￥')
}

/// Start of the amount after a currency sign at `i` (one optional space).
fn currency_amount_start(c: &[char], i: usize) -> Option<usize> {
    if is_digit_at(c, i + 1) {
        Some(i + 1)
    } else if c.get(i + 1) == Some(&' ') && is_digit_at(c, i + 2) {
        Some(i + 2)
    } else {
        None
    }
}

// ------------------------------------------------------------------ scanner

/// Walks the text once, copying ordinary characters and expanding what it recognises.
struct Scanner<'a> {
    c: &'a [char],
    i: usize,
    lang: Lang,
    out: String,
    /// The last thing written was an expansion: a following letter or digit needs a space.
    after_expansion: bool,
}

impl<'a> Scanner<'a> {
    fn new(c: &'a [char], lang: Lang) -> Self {
        Scanner {
            c,
            i: 0,
            lang,
            out: String::with_capacity(c.len() * 2),
            after_expansion: false,
        }
    }

    fn run(mut self) -> String {
        while self.i < self.c.len() {
            if !self.try_expand() {
                let ch = self.c[self.i];
                self.push_char(ch);
                self.i += 1;
            }
        }
        self.out
    }

    fn push_char(&mut self, ch: char) {
        // English words need a space before a following letter or digit; Chinese needs none.
        if self.after_expansion && self.lang != Lang::Zh && ch.is_alphanumeric() {
            self.out.push(' ');
        }
        self.after_expansion = false;
        self.out.push(ch);
    }

    /// Writes spoken words, spaced from their neighbours as the language needs.
    fn push_words(&mut self, words: &str) {
        if words.is_empty() {
            return;
        }
        if self.lang != Lang::Zh && self.out.chars().last().is_some_and(char::is_alphanumeric) {
            self.out.push(' ');
        }
        self.out.push_str(words);
        self.after_expansion = true;
    }

    fn prev_char(&self) -> Option<char> {
        self.i.checked_sub(1).map(|p| self.c[p])
    }

    /// Whether a `-` or `.` at the cursor may start a number (`-5`, `.5`) rather than join
    /// two words (`x-5`, `v.5`): English wants a space or an opening bracket before it,
    /// Chinese anything but a Latin letter, digit or dot.
    fn sign_may_follow(&self) -> bool {
        self.prev_char().is_none_or(|p| match self.lang {
            Lang::Zh => !(p.is_ascii_alphanumeric() || p == '.'),
            _ => p.is_whitespace() || matches!(p, '(' | '=' | '[' | ':'),
        })
    }

    fn try_expand(&mut self) -> bool {
        let c = self.c;
        let i = self.i;
        let ch = c[i];
        // parse_num consumes whole numbers, so a digit here always starts one (`A4` → A four).
        if ch.is_ascii_digit() {
            return self.number(false);
        }
        if ch == '-' && is_digit_at(c, i + 1) && self.sign_may_follow() {
            self.i += 1;
            return self.number(true) || {
                self.i = i;
                false
            };
        }
        if let Some(start) = currency_amount_start(c, i).filter(|_| is_currency(ch)) {
            return self.currency(ch, start);
        }
        if ch == '.' && is_digit_at(c, i + 1) && self.sign_may_follow() {
            // ".5" → "point five"
            let end = digits_from(c, i + 1);
            let digits: String = c[i + 1..end].iter().collect();
            let words = match self.lang {
                Lang::Zh => format!("零点{}", zh_digits(&digits)),
                _ => format!("point {}", en_digits(&digits)),
            };
            self.push_words(&words);
            self.i = end;
            return true;
        }
        self.symbol()
    }

    fn symbol(&mut self) -> bool {
        let c = self.c;
        let i = self.i;
        let next_is_digit = is_digit_at(c, i + 1) || (c.get(i + 1) == Some(&' ') && is_digit_at(c, i + 2));
        let words = match (self.lang, c[i]) {
            (Lang::Zh, '&') => "和",
            (Lang::Zh, '@') => "艾特",
            (Lang::Zh, '+') => "加",
            (Lang::Zh, '=') => "等于",
            (Lang::Zh, '%') => "百分号",
            (Lang::Zh, '℃') => "摄氏度",
            (Lang::Zh, '℉') => "华氏度",
            (Lang::Zh, '°') => "度",
            (Lang::Zh, '×') => "乘",
            (Lang::Zh, '÷') => "除以",
            (_, '&') => "and",
            (_, '@') => "at",
            (_, '+') => "plus",
            (_, '=') => "equals",
            (_, '%') => "percent",
            (_, '℃') => "degrees Celsius",
            (_, '℉') => "degrees Fahrenheit",
            (_, '°') => "degrees",
            (_, '×') => "times",
            (_, '÷') => "divided by",
            (_, '#') if next_is_digit => "number",
            _ => return false,
        };
        self.push_words(words);
        self.i += 1;
        true
    }

    /// A number at `self.i` (a minus sign, if `negative`, was just consumed).
    fn number(&mut self, negative: bool) -> bool {
        match self.lang {
            Lang::Zh => self.number_zh(negative),
            _ => self.number_en(negative),
        }
    }

    // ------------------------------------------------------------- English

    fn number_en(&mut self, negative: bool) -> bool {
        let c = self.c;
        let i = self.i;
        let sign = if negative { "minus " } else { "" };
        if !negative {
            if let Some((y, m, d, end)) = parse_iso_date(c, i) {
                let words = format!(
                    "{} {}, {}",
                    MONTHS[m as usize - 1],
                    en_ordinal(d as u64),
                    en_year(y)
                );
                self.push_words(&words);
                self.i = end;
                return true;
            }
            if let Some((h, m, s, end)) = parse_time(c, i) {
                let (half, end) = match parse_half_day(c, end) {
                    Some((half, e)) => (Some(half), e),
                    None => (None, end),
                };
                self.push_words(&en_time(h, m, s, half));
                self.i = end;
                return true;
            }
            if let Some((a, b, end)) = self.year_range(i) {
                self.push_words(&format!("{} to {}", en_year(a), en_year(b)));
                self.i = end;
                return true;
            }
        }
        let Some(num) = parse_num(c, i) else { return false };
        let mut end = num.end;
        let words = if let Some(p) = parse_percent(c, end) {
            end = p;
            format!("{sign}{} percent", en_number(&num))
        } else if let Some((unit, e)) = parse_degree(c, end) {
            end = e;
            let deg = if num.is_one() { "degree" } else { "degrees" };
            let unit = match unit {
                Degree::Celsius => " Celsius",
                Degree::Fahrenheit => " Fahrenheit",
                Degree::Plain => "",
            };
            format!("{sign}{} {deg}{unit}", en_number(&num))
        } else if let Some(e) = ordinal_suffix(c, end).filter(|_| num.is_plain_int() && !negative) {
            end = e;
            match num.value() {
                Some(v) if !num.read_as_digits() => en_ordinal(v),
                _ => en_number(&num),
            }
        } else if let Some((half, e)) = parse_half_day(c, end)
            .filter(|_| num.is_plain_int() && !negative && matches!(num.value(), Some(1..=12)))
        {
            end = e;
            en_time(num.value().unwrap_or(0) as u32, 0, None, Some(half))
        } else if let Some(v) = self.decade(&num) {
            end += 1;
            v
        } else if let Some(v) = self.day_of_month(&num).filter(|_| !negative) {
            v
        } else if !negative && self.is_year(&num, i) {
            en_year(num.value().unwrap_or(0) as u32)
        } else if let Some(e) = currency_suffix(c, end) {
            let sym = c[e - 1];
            end = e;
            format!("{sign}{}", en_money(sym, &num, None))
        } else {
            format!("{sign}{}", en_number_dotted(c, &num, &mut end))
        };
        self.push_words(&words);
        self.i = end;
        true
    }

    /// `1999-2005`: two years joined by a dash.
    fn year_range(&self, i: usize) -> Option<(u32, u32, usize)> {
        let c = self.c;
        if digits_from(c, i) != i + 4 || !matches!(c.get(i + 4), Some('-' | '–')) {
            return None;
        }
        if digits_from(c, i + 5) != i + 9 || is_alnum_at(c, i + 9) {
            return None;
        }
        let a: u32 = c[i..i + 4].iter().collect::<String>().parse().ok()?;
        let b: u32 = c[i + 5..i + 9].iter().collect::<String>().parse().ok()?;
        (is_year_value(a) && is_year_value(b) && a < b).then_some((a, b, i + 9))
    }

    /// `1990s` → nineteen nineties, `80s` → eighties.
    fn decade(&self, num: &Num) -> Option<String> {
        let c = self.c;
        if !num.is_plain_int() || c.get(num.end) != Some(&'s') || is_alnum_at(c, num.end + 1) {
            return None;
        }
        let v = num.value()?;
        let words = match num.int.len() {
            4 if v % 10 == 0 && is_year_value(v as u32) => en_year(v as u32),
            2 if v % 10 == 0 && v >= 10 => en_cardinal(v),
            _ => return None,
        };
        Some(pluralize(&words))
    }

    /// `March 5` → March fifth; `5 March` → the fifth of March.
    fn day_of_month(&self, num: &Num) -> Option<String> {
        let v = num
            .value()
            .filter(|v| num.is_plain_int() && num.int.len() <= 2 && (1..=31).contains(v))?;
        if prev_word(self.c, self.i).is_some_and(|(word, _)| month_index(&word).is_some()) {
            return Some(en_ordinal(v));
        }
        let c = self.c;
        if c.get(num.end) == Some(&' ') {
            let word: String = c[num.end + 1..]
                .iter()
                .take_while(|ch| ch.is_alphabetic())
                .collect();
            if month_index(&word).is_some() {
                return Some(format!("the {} of", en_ordinal(v)));
            }
        }
        None
    }

    /// A four-digit number in a date context: after `in`, `since`, a month, a
    /// day of a month, before `AD`/`BC`.
    fn is_year(&self, num: &Num, start: usize) -> bool {
        if !num.is_plain_int() || num.int.len() != 4 || !num.value().is_some_and(|v| is_year_value(v as u32))
        {
            return false;
        }
        let c = self.c;
        let after: String = c[num.end..].iter().take(5).collect();
        let after = after.trim_start();
        for era in ["AD", "BC", "BCE", "CE", "A.D.", "B.C."] {
            if after
                .strip_prefix(era)
                .is_some_and(|rest| !rest.starts_with(char::is_alphanumeric))
            {
                return true;
            }
        }
        let Some((word, word_start)) = prev_word(c, start) else {
            return false;
        };
        let lower = word.to_lowercase();
        if YEAR_CUES.contains(&lower.as_str()) || month_index(&word).is_some() {
            return true;
        }
        // "March 5, 1999" and "5 March 1999"
        if word.chars().all(|ch| ch.is_ascii_digit()) && word.len() <= 2 {
            return prev_word(c, word_start).is_some_and(|(w, _)| month_index(&w).is_some());
        }
        false
    }

    fn currency(&mut self, sym: char, start: usize) -> bool {
        let c = self.c;
        let Some(num) = parse_num(c, start) else {
            return false;
        };
        let mut end = num.end;
        let mut scale = None;
        let rest: String = c[end..].iter().take(12).collect();
        if let Some(after_space) = rest.strip_prefix(' ') {
            for s in SCALES {
                if after_space
                    .strip_prefix(s)
                    .is_some_and(|tail| !tail.starts_with(char::is_alphanumeric))
                {
                    scale = Some(*s);
                    end += 1 + s.chars().count();
                    break;
                }
            }
        }
        let words = match self.lang {
            Lang::Zh => zh_money(sym, &num, scale),
            _ => en_money(sym, &num, scale),
        };
        self.push_words(&words);
        self.i = end;
        true
    }

    // ------------------------------------------------------------- Chinese

    fn number_zh(&mut self, negative: bool) -> bool {
        let c = self.c;
        let i = self.i;
        if !negative {
            if let Some((y, m, d, end)) = parse_iso_date(c, i) {
                let words = format!(
                    "{}年{}月{}日",
                    zh_digits(&y.to_string()),
                    zh_int(m as u64),
                    zh_int(d as u64)
                );
                self.push_words(&words);
                self.i = end;
                return true;
            }
            if let Some((h, m, s, end)) = parse_time(c, i) {
                let mut words = format!("{}点", zh_int(h as u64));
                if m > 0 || s.is_some_and(|s| s > 0) {
                    words.push_str(&zh_two_digit(m));
                    words.push('分');
                }
                if let Some(s) = s.filter(|&s| s > 0) {
                    words.push_str(&zh_two_digit(s));
                    words.push('秒');
                }
                self.push_words(&words);
                self.i = end;
                return true;
            }
        }
        let Some(num) = parse_num(c, i) else { return false };
        let mut end = num.end;
        let next = c.get(end).copied();
        let words = if let Some(p) = parse_percent(c, end) {
            end = p;
            format!("百分之{}{}", if negative { "负" } else { "" }, zh_number(&num))
        } else if let Some((unit, e)) = parse_degree(c, end) {
            end = e;
            let unit = match unit {
                Degree::Celsius => "摄氏度",
                Degree::Fahrenheit => "华氏度",
                Degree::Plain => "度",
            };
            let sign = if negative { "零下" } else { "" };
            format!("{sign}{}{unit}", zh_number(&num))
        } else if next == Some('年') && num.is_plain_int() && (2..=4).contains(&num.int.len()) && !negative {
            zh_digits(&num.int)
        } else if num.int == "2"
            && num.is_plain_int()
            && next.is_some_and(is_zh_measure_word)
            && !negative
            && self.prev_char() != Some('第')
        {
            "两".to_owned()
        } else if let Some(e) = currency_suffix(c, end) {
            let sym = c[e - 1];
            end = e;
            format!(
                "{}{}",
                if negative { "负" } else { "" },
                zh_money(sym, &num, None)
            )
        } else {
            let mut s = if negative { "负".to_owned() } else { String::new() };
            s.push_str(&zh_number(&num));
            // "1.2.3": more dotted parts
            while c.get(end) == Some(&'.') && is_digit_at(c, end + 1) {
                let e = digits_from(c, end + 1);
                s.push('点');
                s.push_str(&zh_digits(&c[end + 1..e].iter().collect::<String>()));
                end = e;
            }
            s
        };
        self.push_words(&words);
        self.i = end;
        true
    }
}

/// `st`, `nd`, `rd`, `th` (any case) ending a word at `i`.
fn ordinal_suffix(c: &[char], i: usize) -> Option<usize> {
    let a = c.get(i)?.to_ascii_lowercase();
    let b = c.get(i + 1)?.to_ascii_lowercase();
    let ok = matches!((a, b), ('s', 't') | ('n', 'd') | ('r', 'd') | ('t', 'h'));
    (ok && !is_alnum_at(c, i + 2)).then_some(i + 2)
}

/// A currency sign written after the amount (`5€`, `5 €`): its end.
fn currency_suffix(c: &[char], i: usize) -> Option<usize> {
    match (c.get(i), c.get(i + 1)) {
        (Some(&s), _) if is_currency(s) && s != '$' => Some(i + 1),
        (Some(' '), Some(&s)) if is_currency(s) && s != '$' => Some(i + 2),
        _ => None,
    }
}

/// The word (letters or digits) before `i`, skipping spaces and commas: (word, start).
fn prev_word(c: &[char], i: usize) -> Option<(String, usize)> {
    let mut j = i;
    while j > 0 && (c[j - 1].is_whitespace() || c[j - 1] == ',') {
        j -= 1;
    }
    let end = j;
    // Allow a trailing period of an abbreviated month ("Jan.").
    let end_word = if end > 0 && c[end - 1] == '.' {
        end - 1
    } else {
        end
    };
    let mut start = end_word;
    while start > 0 && c[start - 1].is_alphanumeric() {
        start -= 1;
    }
    (start < end_word).then(|| (c[start..end_word].iter().collect(), start))
}

const YEAR_CUES: &[&str] = &[
    "in", "since", "from", "until", "till", "by", "during", "before", "after", "circa", "year",
];

const SCALES: &[&str] = &["thousand", "million", "billion", "trillion"];

const MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];

/// Month number (0-based) of a full or abbreviated English month name. "May"
/// only counts capitalised, since "may" is a common verb.
fn month_index(word: &str) -> Option<usize> {
    if word.is_empty() || !word.starts_with(|ch: char| ch.is_uppercase()) {
        return None;
    }
    let lower = word.to_lowercase();
    MONTHS.iter().position(|m| {
        let m = m.to_lowercase();
        m == lower || (lower.len() >= 3 && m.starts_with(&lower) && lower != "ma")
    })
}

fn is_year_value(v: u32) -> bool {
    (1000..=2099).contains(&v)
}

fn is_zh_measure_word(c: char) -> bool {
    "个只位次本件条张种天周岁人块辆台双对份杯瓶名首部层".contains(c)
}

// -------------------------------------------------------- English words

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

fn en_below_100(n: u64) -> String {
    if n < 20 {
        ONES[n as usize].to_owned()
    } else if n % 10 == 0 {
        TENS[(n / 10) as usize].to_owned()
    } else {
        format!("{}-{}", TENS[(n / 10) as usize], ONES[(n % 10) as usize])
    }
}

fn en_below_1000(n: u64) -> String {
    match (n / 100, n % 100) {
        (0, r) => en_below_100(r),
        (h, 0) => format!("{} hundred", ONES[h as usize]),
        (h, r) => format!("{} hundred {}", ONES[h as usize], en_below_100(r)),
    }
}

/// Cardinal words, American style ("one hundred twenty-three").
fn en_cardinal(n: u64) -> String {
    if n == 0 {
        return "zero".to_owned();
    }
    const NAMES: [(u64, &str); 6] = [
        (1_000_000_000_000_000_000, "quintillion"),
        (1_000_000_000_000_000, "quadrillion"),
        (1_000_000_000_000, "trillion"),
        (1_000_000_000, "billion"),
        (1_000_000, "million"),
        (1_000, "thousand"),
    ];
    let mut parts = Vec::new();
    let mut rest = n;
    for (scale, name) in NAMES {
        if rest >= scale {
            parts.push(format!("{} {name}", en_below_1000(rest / scale)));
            rest %= scale;
        }
    }
    if rest > 0 {
        parts.push(en_below_1000(rest));
    }
    parts.join(" ")
}

fn en_digits(digits: &str) -> String {
    let words: Vec<&str> = digits
        .chars()
        .filter_map(|d| d.to_digit(10))
        .map(|d| ONES[d as usize])
        .collect();
    if words.len() <= LONG_RUN {
        return words.join(" ");
    }
    words
        .chunks(DIGIT_GROUP)
        .map(|g| g.join(" "))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Integer and optional fraction: "three point one four".
fn en_number(num: &Num) -> String {
    let int = match num.value() {
        Some(v) if !num.read_as_digits() => en_cardinal(v),
        _ => en_digits(&num.int),
    };
    match &num.frac {
        Some(f) => format!("{int} point {}", en_digits(f)),
        None => int,
    }
}

/// Like [`en_number`], and reads further dotted parts (`1.2.3`, `192.168.0.1`) with "dot".
fn en_number_dotted(c: &[char], num: &Num, end: &mut usize) -> String {
    if num.frac.is_none() || c.get(*end) != Some(&'.') || !is_digit_at(c, *end + 1) {
        return en_number(num);
    }
    let mut parts = vec![num.int.clone()];
    parts.extend(num.frac.clone());
    while c.get(*end) == Some(&'.') && is_digit_at(c, *end + 1) {
        let e = digits_from(c, *end + 1);
        parts.push(c[*end + 1..e].iter().collect());
        *end = e;
    }
    parts
        .iter()
        .map(|p| match p.parse::<u64>() {
            Ok(v) if p.len() <= 19 && !(p.len() > 1 && p.starts_with('0')) => en_cardinal(v),
            _ => en_digits(p),
        })
        .collect::<Vec<_>>()
        .join(" dot ")
}

fn en_ordinal(n: u64) -> String {
    let cardinal = en_cardinal(n);
    let split = cardinal.rfind([' ', '-']).map_or(0, |p| p + 1);
    let (head, last) = cardinal.split_at(split);
    let last = match last {
        "one" => "first".to_owned(),
        "two" => "second".to_owned(),
        "three" => "third".to_owned(),
        "five" => "fifth".to_owned(),
        "eight" => "eighth".to_owned(),
        "nine" => "ninth".to_owned(),
        "twelve" => "twelfth".to_owned(),
        w if w.ends_with('y') => format!("{}ieth", &w[..w.len() - 1]),
        w => format!("{w}th"),
    };
    format!("{head}{last}")
}

/// A year as spoken: 1999 → nineteen ninety-nine, 2005 → two thousand five,
/// 2024 → twenty twenty-four, 1900 → nineteen hundred, 1905 → nineteen oh five.
fn en_year(y: u32) -> String {
    let y = y as u64;
    let (hi, lo) = (y / 100, y % 100);
    if !(1000..10_000).contains(&y) || y % 1000 == 0 || (2000..2010).contains(&y) {
        en_cardinal(y)
    } else if lo == 0 {
        format!("{} hundred", en_below_100(hi))
    } else if lo < 10 {
        format!("{} oh {}", en_below_100(hi), ONES[lo as usize])
    } else {
        format!("{} {}", en_below_100(hi), en_below_100(lo))
    }
}

fn pluralize(words: &str) -> String {
    match words.strip_suffix('y') {
        Some(stem) => format!("{stem}ies"),
        None => format!("{words}s"),
    }
}

fn en_time(h: u32, m: u32, s: Option<u32>, half: Option<HalfDay>) -> String {
    let hour = en_cardinal(h as u64);
    let mut words = match (m, half) {
        (0, None) if s.is_none_or(|s| s == 0) => format!("{hour} o'clock"),
        (0, _) => hour,
        (m, _) if m < 10 => format!("{hour} oh {}", ONES[m as usize]),
        (m, _) => format!("{hour} {}", en_below_100(m as u64)),
    };
    if let Some(s) = s.filter(|&s| s > 0) {
        let unit = if s == 1 { "second" } else { "seconds" };
        words = format!("{words} and {} {unit}", en_below_100(s as u64));
    }
    match half {
        Some(HalfDay::Am) => format!("{words} a.m."),
        Some(HalfDay::Pm) => format!("{words} p.m."),
        None => words,
    }
}

/// (singular, plural, minor singular, minor plural) of a currency sign in English.
fn en_currency_names(sym: char) -> (&'static str, &'static str, Option<(&'static str, &'static str)>) {
    match sym {
        '$' => ("dollar", "dollars", Some(("cent", "cents"))),
        '€' => ("euro", "euros", Some(("cent", "cents"))),
        '£' => ("pound", "pounds", Some(("penny", "pence"))),
        _ => ("yen", "yen", None),
    }
}

/// "$3.50" → three dollars fifty cents; "$2.5 million" → two point five million dollars.
fn en_money(sym: char, num: &Num, scale: Option<&str>) -> String {
    let (one, many, minor) = en_currency_names(sym);
    if let Some(scale) = scale {
        return format!("{} {scale} {many}", en_number(num));
    }
    let major = num.value();
    let cents = match (&num.frac, minor) {
        (None, _) => Some(0),
        (Some(f), Some(_)) if f.len() <= 2 => {
            let v: u64 = f.parse().unwrap_or(0);
            Some(if f.len() == 1 { v * 10 } else { v })
        }
        _ => None,
    };
    match (major, cents, minor) {
        (Some(major), Some(cents), minor) if !num.read_as_digits() => {
            let mut parts = Vec::new();
            if major > 0 || cents == 0 {
                let unit = if major == 1 { one } else { many };
                parts.push(format!("{} {unit}", en_cardinal(major)));
            }
            if let (true, Some((c1, cn))) = (cents > 0, minor) {
                let unit = if cents == 1 { c1 } else { cn };
                parts.push(format!("{} {unit}", en_cardinal(cents)));
            }
            parts.join(" ")
        }
        _ => {
            let unit = if num.is_one() { one } else { many };
            format!("{} {unit}", en_number(num))
        }
    }
}

// -------------------------------------------------------- Chinese words

const ZH_DIGITS: [char; 10] = ['零', '一', '二', '三', '四', '五', '六', '七', '八', '九'];

fn zh_digits(digits: &str) -> String {
    digits
        .chars()
        .filter_map(|d| d.to_digit(10))
        .map(|d| ZH_DIGITS[d as usize])
        .collect()
}

/// 0..=9999 without a leading 零; inner zeros collapse to one 零 (1005 → 一千零五).
fn zh_group(g: u64) -> String {
    const UNITS: [&str; 4] = ["千", "百", "十", ""];
    let digits = [g / 1000 % 10, g / 100 % 10, g / 10 % 10, g % 10];
    let mut s = String::new();
    let mut started = false;
    let mut zero = false;
    for (d, unit) in digits.into_iter().zip(UNITS) {
        if d == 0 {
            zero |= started;
            continue;
        }
        if zero {
            s.push('零');
            zero = false;
        }
        s.push(ZH_DIGITS[d as usize]);
        s.push_str(unit);
        started = true;
    }
    s
}

/// Chinese reading of an integer: 123 → 一百二十三, 10 → 十, 100010000 → 一亿零一万.
fn zh_int(n: u64) -> String {
    if n == 0 {
        return "零".to_owned();
    }
    const UNITS: [&str; 5] = ["", "万", "亿", "万亿", "亿亿"];
    let mut groups = Vec::new();
    let mut rest = n;
    while rest > 0 {
        groups.push(rest % 10_000);
        rest /= 10_000;
    }
    let mut s = String::new();
    let mut first = true;
    let mut zero_pending = false;
    for (idx, &g) in groups.iter().enumerate().rev() {
        if g == 0 {
            zero_pending |= !first;
            continue;
        }
        if !first && (zero_pending || g < 1000) {
            s.push('零');
        }
        zero_pending = false;
        s.push_str(&zh_group(g));
        s.push_str(UNITS[idx]);
        first = false;
    }
    match s.strip_prefix("一十") {
        Some(rest) => format!("十{rest}"),
        None => s,
    }
}

/// Ungrouped integers with this many digits or more (phone numbers, ids) are read digit by digit in Chinese.
const ZH_DIGIT_STRING_LEN: usize = 11;

fn zh_number(num: &Num) -> String {
    let as_digits =
        num.read_as_digits() || num.int.len() > 16 || (!num.grouped && num.int.len() >= ZH_DIGIT_STRING_LEN);
    let int = match num.value() {
        Some(v) if !as_digits => zh_int(v),
        _ => zh_digits(&num.int),
    };
    match &num.frac {
        Some(f) => format!("{int}点{}", zh_digits(f)),
        None => int,
    }
}

/// Minutes or seconds of a clock time: 5 → 零五, 30 → 三十.
fn zh_two_digit(v: u32) -> String {
    if v < 10 {
        format!("零{}", ZH_DIGITS[v as usize])
    } else {
        zh_int(v as u64)
    }
}

/// Yuan amounts use 元/角/分 (¥3.05 → 三元零五分); other currencies read the
/// number and name the currency (＄3.5 → 三点五美元).
fn zh_money(sym: char, num: &Num, scale: Option<&str>) -> String {
    let unit = match sym {
        '$' => "美元",
        '€' => "欧元",
        '£' => "英镑",
        _ => "元",
    };
    let scale = match scale {
        Some("thousand") => "千",
        Some("million") => "百万",
        Some("billion") => "十亿",
        Some("trillion") => "万亿",
        _ => "",
    };
    let trimmed = Num {
        frac: num
            .frac
            .as_ref()
            .map(|f| f.trim_end_matches('0').to_owned())
            .filter(|f| !f.is_empty()),
        ..num.clone()
    };
    if unit == "元" && scale.is_empty() && !num.read_as_digits() {
        if let Some(major) = num.value() {
            let frac = trimmed.frac.as_deref().unwrap_or("");
            if frac.len() <= 2 {
                let jiao = frac.chars().next().and_then(|d| d.to_digit(10)).unwrap_or(0);
                let fen = frac.chars().nth(1).and_then(|d| d.to_digit(10)).unwrap_or(0);
                let mut s = String::new();
                if major > 0 || (jiao == 0 && fen == 0) {
                    s.push_str(&zh_int(major));
                    s.push('元');
                }
                if jiao > 0 {
                    s.push(ZH_DIGITS[jiao as usize]);
                    s.push('角');
                } else if fen > 0 && major > 0 {
                    s.push('零');
                }
                if fen > 0 {
                    s.push(ZH_DIGITS[fen as usize]);
                    s.push('分');
                }
                return s;
            }
        }
    }
    format!("{}{scale}{unit}", zh_number(&trimmed))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn english_cardinals() {
        for (n, words) in [
            (0, "zero"),
            (7, "seven"),
            (13, "thirteen"),
            (40, "forty"),
            (42, "forty-two"),
            (100, "one hundred"),
            (101, "one hundred one"),
            (999, "nine hundred ninety-nine"),
            (1000, "one thousand"),
            (1_000_001, "one million one"),
            (2_500_000_000, "two billion five hundred million"),
            (
                u64::MAX,
                "eighteen quintillion four hundred forty-six quadrillion seven hundred forty-four trillion seventy-three billion seven hundred nine million five hundred fifty-one thousand six hundred fifteen",
            ),
        ] {
            assert_eq!(en_cardinal(n), words, "{n}");
        }
    }

    #[test]
    fn english_ordinals_and_years() {
        for (n, words) in [
            (1, "first"),
            (2, "second"),
            (3, "third"),
            (11, "eleventh"),
            (12, "twelfth"),
            (20, "twentieth"),
            (21, "twenty-first"),
            (100, "one hundredth"),
            (103, "one hundred third"),
        ] {
            assert_eq!(en_ordinal(n), words, "{n}");
        }
        for (y, words) in [
            (1999, "nineteen ninety-nine"),
            (1900, "nineteen hundred"),
            (1905, "nineteen oh five"),
            (2000, "two thousand"),
            (2005, "two thousand five"),
            (2010, "twenty ten"),
            (2024, "twenty twenty-four"),
            (1066, "ten sixty-six"),
        ] {
            assert_eq!(en_year(y), words, "{y}");
        }
    }

    #[test]
    fn chinese_integers() {
        for (n, words) in [
            (0, "零"),
            (10, "十"),
            (15, "十五"),
            (20, "二十"),
            (105, "一百零五"),
            (110, "一百一十"),
            (1005, "一千零五"),
            (1050, "一千零五十"),
            (10_000, "一万"),
            (10_001, "一万零一"),
            (110_000, "十一万"),
            (1_002_000, "一百万二千"),
            (100_000_000, "一亿"),
            (100_010_000, "一亿零一万"),
            (123_456_789, "一亿二千三百四十五万六千七百八十九"),
        ] {
            assert_eq!(zh_int(n), words, "{n}");
        }
    }

    #[test]
    fn parse_num_handles_grouping_and_fractions() {
        let c: Vec<char> = "1,234,567.89 x".chars().collect();
        let n = parse_num(&c, 0).expect("number");
        assert_eq!(n.int, "1234567");
        assert_eq!(n.frac.as_deref(), Some("89"));
        assert!(n.grouped);
        assert_eq!(n.end, 12);
        let c: Vec<char> = "1,23".chars().collect();
        let n = parse_num(&c, 0).expect("number");
        assert_eq!((n.int.as_str(), n.end), ("1", 1));
    }

    #[test]
    fn long_digit_runs_are_read_in_bounded_groups() {
        // Up to 15 digits a number is a quantity; 16 and more are digits.
        assert_eq!(
            normalize("999999999999999", "en"),
            "nine hundred ninety-nine trillion nine hundred ninety-nine billion nine hundred ninety-nine million \
             nine hundred ninety-nine thousand nine hundred ninety-nine"
        );
        assert_eq!(
            normalize("card 1234567812345678", "en"),
            "card one two three, four five six, seven eight one, two three four, five six seven, eight"
        );
        // With thousands separators it stays a quantity.
        assert!(normalize("1,234,567,812,345,678", "en").starts_with("one quadrillion"));
        assert_eq!(
            normalize("call 1234567812345678 now", "und"),
            "call 1 2 3, 4 5 6, 7 8 1, 2 3 4, 5 6 7, 8 now"
        );
        assert_eq!(normalize("id 123456789012345", "und"), "id 123456789012345");
        // The 5,000-digit run of the cost-bound report: output linear in the
        // run, and every sentence within the engine's limit.
        let run = "1234567890".repeat(500);
        for (lang, limit) in [("en", 400), ("und", 400), ("en-US", 250)] {
            let out = normalize(&format!("Read {run} now."), lang);
            assert!(out.chars().count() < 40_000, "{lang}: {}", out.len());
            assert_eq!(out.matches(", ").count(), 1666, "{lang}");
            let pieces = crate::text::split::split_sentences(&out, limit);
            assert!(pieces.iter().all(|p| p.chars().count() <= limit), "{lang}");
            assert!(
                pieces.len() < out.chars().count() / (limit / 2) + 2,
                "{lang}: {}",
                pieces.len()
            );
            assert!(
                pieces
                    .iter()
                    .all(|p| p.split(", ").all(|g| g.split(' ').count() <= 4)),
                "{lang}"
            );
        }
        assert!(
            normalize(&run, "en").starts_with("one two three, four five six, seven eight nine, zero one two")
        );
        // A long fraction is grouped too.
        assert_eq!(
            normalize("0.1234567890123456", "en"),
            "zero point one two three, four five six, seven eight nine, zero one two, three four five, six"
        );
    }

    #[test]
    fn language_tags() {
        assert_eq!(Lang::of("en"), Lang::En);
        assert_eq!(Lang::of("en-US"), Lang::En);
        assert_eq!(Lang::of("zh_CN"), Lang::Zh);
        assert_eq!(Lang::of("cmn"), Lang::Zh);
        assert_eq!(Lang::of("ja"), Lang::Other);
        assert_eq!(Lang::of(""), Lang::Other);
    }
}
