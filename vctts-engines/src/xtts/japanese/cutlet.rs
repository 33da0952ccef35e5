//! cutlet's romanisation (`cutlet.Cutlet().romaji(text)`, cutlet 0.5 with
//! its defaults, as Coqui's XTTS tokenizer builds it): Hepburn, foreign
//! spellings from UniDic lemmas (`カツ` → `cutlet`), `ensure_ascii`
//! (unromanisable characters become `?`), particles `は`/`へ` read `wa`/`e`
//! and `を` kept as `wo`, small `っ` doubling the next consonant (also across
//! words), `ー` repeating the vowel, digits and ASCII passed through with
//! their original spacing, cutlet's spacing rules and its capitalisation of
//! the first letter and of proper nouns.
//!
//! The input is normalised as cutlet does (NFKC, then mojimoji's full- to
//! half-width mapping, which after NFKC only turns `‘ ’ ”` into `` ` ' " ``)
//! and cut into words by [`super::mecab::Analyzer`] (fugashi's view of a
//! MeCab node: surface, the spaces before it, UniDic features, unknown or
//! not, character category).
//!
//! Invariants: [`romaji`] never panics. Where cutlet itself raises (a kana in
//! a reading that its table lacks), this returns `invalid_input` naming the
//! character instead of guessing.

use super::mecab::{Analyzer, Morpheme};
use unicode_normalization::UnicodeNormalization;
use vctts_core::{Error, Result};

const SUTEGANA: &str = "ゃゅょぁぃぅぇぉ";
const ODORI: &str = "々〃ゝゞヽゞ";
/// `char.def` categories cutlet checks (constant across UniDic versions).
const CHAR_ALPHA: u8 = 5;
const CHAR_HIRAGANA: u8 = 6;
const CHAR_KATAKANA: u8 = 7;

/// cutlet's `exceptions.tsv`: whole tokens with a fixed spelling.
const EXCEPTIONS: [(&str, &str); 8] = [
    ("ホッピー", "Hoppy"),
    ("東京", "Tokyo"),
    ("大阪", "Osaka"),
    ("京都", "Kyoto"),
    ("柔道", "judo"),
    ("弁当", "bento"),
    ("ヒルズ", "hills"),
    ("カービィ", "Kirby"),
];

/// cutlet's Hepburn table (its `HEPBURN` dict after Python's
/// later-key-wins for the repeated `ゑ`, `ゐ`, `こ`).
const HEPBURN: &[(&str, &str)] = &[
    ("あ", "a"),
    ("い", "i"),
    ("う", "u"),
    ("え", "e"),
    ("お", "o"),
    ("か", "ka"),
    ("き", "ki"),
    ("く", "ku"),
    ("け", "ke"),
    ("こ", "ko"),
    ("が", "ga"),
    ("ぎ", "gi"),
    ("ぐ", "gu"),
    ("げ", "ge"),
    ("ご", "go"),
    ("さ", "sa"),
    ("し", "shi"),
    ("す", "su"),
    ("せ", "se"),
    ("そ", "so"),
    ("ざ", "za"),
    ("じ", "ji"),
    ("ず", "zu"),
    ("ぜ", "ze"),
    ("ぞ", "zo"),
    ("た", "ta"),
    ("ち", "chi"),
    ("つ", "tsu"),
    ("て", "te"),
    ("と", "to"),
    ("だ", "da"),
    ("ぢ", "ji"),
    ("づ", "zu"),
    ("で", "de"),
    ("ど", "do"),
    ("な", "na"),
    ("に", "ni"),
    ("ぬ", "nu"),
    ("ね", "ne"),
    ("の", "no"),
    ("は", "ha"),
    ("ひ", "hi"),
    ("ふ", "fu"),
    ("へ", "he"),
    ("ほ", "ho"),
    ("ば", "ba"),
    ("び", "bi"),
    ("ぶ", "bu"),
    ("べ", "be"),
    ("ぼ", "bo"),
    ("ぱ", "pa"),
    ("ぴ", "pi"),
    ("ぷ", "pu"),
    ("ぺ", "pe"),
    ("ぽ", "po"),
    ("ま", "ma"),
    ("み", "mi"),
    ("む", "mu"),
    ("め", "me"),
    ("も", "mo"),
    ("や", "ya"),
    ("ゆ", "yu"),
    ("よ", "yo"),
    ("ら", "ra"),
    ("り", "ri"),
    ("る", "ru"),
    ("れ", "re"),
    ("ろ", "ro"),
    ("わ", "wa"),
    ("ゐ", "wi"),
    ("ゑ", "we"),
    ("を", "wo"),
    ("ん", "n"),
    ("ゔ", "vu"),
    ("ヸ", "vi"),
    ("ヷ", "va"),
    ("わ\u{3099}", "va"),
    ("ヹ", "ve"),
    ("ゑ\u{3099}", "ve"),
    ("ヺ", "vo"),
    ("を\u{3099}", "vo"),
    ("ゃ", "ya"),
    ("ゅ", "yu"),
    ("ょ", "yo"),
    ("ぁ", "a"),
    ("ぃ", "i"),
    ("ぅ", "u"),
    ("ぇ", "e"),
    ("ぉ", "o"),
    ("ゕ", "ka"),
    ("ㇰ", "k"),
    ("ゖ", "ke"),
    ("ヶ", "ga"),
    ("ㇱ", "shi"),
    ("ㇲ", "su"),
    ("ㇳ", "to"),
    ("ㇴ", "nu"),
    ("ㇵ", "ha"),
    ("ㇶ", "hi"),
    ("ㇷ", "fu"),
    ("ㇸ", "he"),
    ("ㇹ", "ho"),
    ("ㇺ", "mu"),
    ("ㇻ", "ra"),
    ("ㇼ", "ri"),
    ("ㇽ", "ru"),
    ("ㇾ", "re"),
    ("ㇿ", "ro"),
    ("ゎ", "wa"),
    ("ㇷ\u{309a}", "p"),
    ("\u{1b150}", "wi"),
    ("\u{1b151}", "we"),
    ("\u{1b152}", "wo"),
    ("\u{1b164}", "wi"),
    ("\u{1b165}", "we"),
    ("\u{1b166}", "wo"),
    ("\u{1b167}", "n"),
    ("しゃ", "sha"),
    ("しゅ", "shu"),
    ("しょ", "sho"),
    ("じゃ", "ja"),
    ("じゅ", "ju"),
    ("じょ", "jo"),
    ("ちゃ", "cha"),
    ("ちゅ", "chu"),
    ("ちょ", "cho"),
    ("ー", "-"),
    ("。", "."),
    ("、", ","),
    ("？", "?"),
    ("！", "!"),
    ("「", "\""),
    ("」", "\""),
    ("『", "\""),
    ("』", "\""),
    ("：", ":"),
    ("（", "("),
    ("）", ")"),
    ("《", "("),
    ("》", ")"),
    ("【", "["),
    ("】", "]"),
    ("・", "/"),
    ("，", ","),
    ("\u{309a}", ""),
    ("\u{3099}", ""),
];

fn table(key: &str) -> Option<&'static str> {
    HEPBURN.iter().find(|(k, _)| *k == key).map(|(_, v)| *v)
}

fn table_char(c: char) -> Option<&'static str> {
    let mut buf = [0u8; 4];
    table(c.encode_utf8(&mut buf))
}

/// jaconv's `kata2hira` (its katakana list, including `ヴ ヵ ヶ ヽ ヾ`).
fn kata2hira(s: &str) -> String {
    const KATA: &str = "ァアィイゥウェエォオカガキギクグケゲコゴサザシジスズセゼソゾタダチヂッツヅテデトドナニヌネノハバパヒビピフブプヘベペホボポマミムメモャヤュユョヨラリルレロワヲンーヮヰヱヵヶヴヽヾ";
    const HIRA: &str = "ぁあぃいぅうぇえぉおかがきぎくぐけげこごさざしじすずせぜそぞただちぢっつづてでとどなにぬねのはばぱひびぴふぶぷへべぺほぼぽまみむめもゃやゅゆょよらりるれろわをんーゎゐゑゕゖゔゝゞ";
    s.chars()
        .map(|c| match KATA.chars().position(|k| k == c) {
            Some(i) => HIRA.chars().nth(i).unwrap_or(c),
            None => c,
        })
        .collect()
}

fn add_dakuten(c: char) -> Option<char> {
    const UNVOICED: &str = "かきくけこさしすせそたちつてとはひふへほ";
    const VOICED: &str = "がぎぐげござじずぜぞだぢづでどばびぶべぼ";
    let i = UNVOICED.chars().position(|u| u == c)?;
    VOICED.chars().nth(i)
}

/// Non-ASCII characters Python's `str.isdigit` accepts that survive NFKC.
const DIGIT_RANGES: &[(u32, u32)] = &[
    (0x660, 0x669),
    (0x6F0, 0x6F9),
    (0x7C0, 0x7C9),
    (0x966, 0x96F),
    (0x9E6, 0x9EF),
    (0xA66, 0xA6F),
    (0xAE6, 0xAEF),
    (0xB66, 0xB6F),
    (0xBE6, 0xBEF),
    (0xC66, 0xC6F),
    (0xCE6, 0xCEF),
    (0xD66, 0xD6F),
    (0xDE6, 0xDEF),
    (0xE50, 0xE59),
    (0xED0, 0xED9),
    (0xF20, 0xF29),
    (0x1040, 0x1049),
    (0x1090, 0x1099),
    (0x1369, 0x1371),
    (0x17E0, 0x17E9),
    (0x1810, 0x1819),
    (0x1946, 0x194F),
    (0x19D0, 0x19DA),
    (0x1A80, 0x1A89),
    (0x1A90, 0x1A99),
    (0x1B50, 0x1B59),
    (0x1BB0, 0x1BB9),
    (0x1C40, 0x1C49),
    (0x1C50, 0x1C59),
    (0x24F5, 0x24FD),
    (0x24FF, 0x24FF),
    (0x2776, 0x277E),
    (0x2780, 0x2788),
    (0x278A, 0x2792),
    (0xA620, 0xA629),
    (0xA8D0, 0xA8D9),
    (0xA900, 0xA909),
    (0xA9D0, 0xA9D9),
    (0xA9F0, 0xA9F9),
    (0xAA50, 0xAA59),
    (0xABF0, 0xABF9),
    (0x104A0, 0x104A9),
    (0x10A40, 0x10A43),
    (0x10D30, 0x10D39),
    (0x10E60, 0x10E68),
    (0x11052, 0x1105A),
    (0x11066, 0x1106F),
    (0x110F0, 0x110F9),
    (0x11136, 0x1113F),
    (0x111D0, 0x111D9),
    (0x112F0, 0x112F9),
    (0x11450, 0x11459),
    (0x114D0, 0x114D9),
    (0x11650, 0x11659),
    (0x116C0, 0x116C9),
    (0x11730, 0x11739),
    (0x118E0, 0x118E9),
    (0x11950, 0x11959),
    (0x11C50, 0x11C59),
    (0x11D50, 0x11D59),
    (0x11DA0, 0x11DA9),
    (0x16A60, 0x16A69),
    (0x16AC0, 0x16AC9),
    (0x16B50, 0x16B59),
    (0x1E140, 0x1E149),
    (0x1E2F0, 0x1E2F9),
    (0x1E950, 0x1E959),
];

/// Python's `str.isdigit` on NFKC-normalised text.
fn is_digit_str(s: &str) -> bool {
    !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_digit() || DIGIT_RANGES.iter().any(|&(a, b)| (a..=b).contains(&(c as u32))))
}

/// Python's `str.title`.
fn py_title(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut prev_cased = false;
    for c in s.chars() {
        if c.is_uppercase() {
            if prev_cased {
                out.extend(c.to_lowercase());
            } else {
                out.push(c);
            }
            prev_cased = true;
        } else if c.is_lowercase() {
            if prev_cased {
                out.push(c);
            } else {
                out.extend(c.to_uppercase());
            }
            prev_cased = true;
        } else {
            out.push(c);
            prev_cased = false;
        }
    }
    out
}

/// cutlet's `normalize_text`.
pub fn normalize(text: &str) -> String {
    text.nfkc()
        .map(|c| match c {
            '\u{2018}' => '`',
            '\u{2019}' => '\'',
            '\u{201d}' => '"',
            c => c,
        })
        .collect()
}

/// The UniDic fields cutlet reads, as fugashi parses a feature string
/// (CSV with quotes when it has a `"`; missing fields are `None`).
struct Features {
    pos1: Option<String>,
    pos2: Option<String>,
    lemma: Option<String>,
    pron: Option<String>,
    kana: Option<String>,
}

fn parse_csv(raw: &str) -> Vec<String> {
    if !raw.contains('"') {
        return raw.split(',').map(str::to_string).collect();
    }
    // Python's csv.reader defaults: `"` quotes a field, `""` inside a quoted
    // field is one `"`, a quote inside an unquoted field is literal.
    let mut fields = Vec::new();
    let mut field = String::new();
    let mut chars = raw.chars().peekable();
    let mut quoted = false;
    let mut at_start = true;
    while let Some(c) = chars.next() {
        if quoted {
            if c == '"' {
                if chars.peek() == Some(&'"') {
                    chars.next();
                    field.push('"');
                } else {
                    quoted = false;
                }
            } else {
                field.push(c);
            }
        } else if c == ',' {
            fields.push(std::mem::take(&mut field));
            at_start = true;
            continue;
        } else if c == '"' && at_start {
            quoted = true;
        } else {
            field.push(c);
        }
        at_start = false;
    }
    fields.push(field);
    fields
}

impl Features {
    fn parse(raw: &str) -> Self {
        let f = parse_csv(raw);
        let get = |i: usize| f.get(i).cloned();
        Self {
            pos1: get(0),
            pos2: get(1),
            lemma: get(7),
            pron: get(9),
            kana: get(17),
        }
    }
}

struct Word<'a> {
    m: Morpheme<'a>,
    f: Features,
}

impl Word<'_> {
    fn pos1_is(&self, p: &str) -> bool {
        self.f.pos1.as_deref() == Some(p)
    }
}

struct Tok {
    surface: String,
    space: bool,
}

fn has_foreign_lemma(w: &Word) -> bool {
    if w.m.surface.contains('-') {
        return false;
    }
    match w.f.lemma.as_deref() {
        Some(lemma) if !lemma.is_empty() && lemma.contains('-') => {
            lemma.split_once('-').map(|(_, c)| c.is_ascii()).unwrap_or(false)
        }
        _ => false,
    }
}

fn bad_kana(c: &str) -> Error {
    Error::invalid(
        "text",
        format!("cannot romanise {c:?} (cutlet, which Coqui uses for Japanese, has no reading for it)"),
    )
}

/// cutlet's `map_kana` over a hiragana string.
fn map_kana(kana: &str) -> Result<String> {
    let chars: Vec<char> = kana.chars().collect();
    let mut out = String::new();
    for (i, &kk) in chars.iter().enumerate() {
        let pk = if i > 0 { Some(chars[i - 1]) } else { None };
        let nk = chars.get(i + 1).copied();
        out.push_str(&single_mapping(pk, kk, nk)?);
    }
    Ok(out)
}

fn pair(a: char, b: char) -> String {
    let mut s = String::with_capacity(8);
    s.push(a);
    s.push(b);
    s
}

fn single_mapping(pk: Option<char>, kk: char, nk: Option<char>) -> Result<String> {
    let get = |c: char| table_char(c).ok_or_else(|| bad_kana(&c.to_string()));
    if ODORI.contains(kk) {
        if "ゝヽ".contains(kk) {
            return Ok(pk.map(String::from).unwrap_or_default());
        }
        if "ゞヾ".contains(kk) {
            let Some(p) = pk else { return Ok(String::new()) };
            return match add_dakuten(p) {
                Some(v) => Ok(get(v)?.to_string()),
                None => Ok(String::new()),
            };
        }
        return Ok(String::new());
    }
    if let Some(p) = pk {
        if let Some(v) = table(&pair(p, kk)) {
            return Ok(v.to_string());
        }
    }
    if let Some(n) = nk {
        if table(&pair(kk, n)).is_some() {
            return Ok(String::new());
        }
        if SUTEGANA.contains(n) {
            if kk == 'っ' {
                return Ok(String::new());
            }
            let base = get(kk)?;
            let mut s = base[..base.len().saturating_sub(1)].to_string();
            s.push_str(get(n)?);
            return Ok(s);
        }
    }
    if SUTEGANA.contains(kk) {
        return Ok(String::new());
    }
    if kk == 'ー' {
        return Ok(match pk.and_then(table_char) {
            Some(v) => match v.chars().last() {
                Some(c) => c.to_string(),
                None => return Err(bad_kana("ー")),
            },
            None => "-".to_string(),
        });
    }
    if kk == 'っ' {
        return Ok(match nk {
            Some('ち') => "t".to_string(),
            Some(n) if "あいうえおっ".contains(n) => "-".to_string(),
            Some(n) => match get(n)?.chars().next() {
                Some(c) => c.to_string(),
                None => return Err(bad_kana(&n.to_string())),
            },
            None => "っ".to_string(),
        });
    }
    if kk == 'ん' {
        return Ok(match nk {
            Some(n) if "あいうえおやゆよ".contains(n) => "n'".to_string(),
            _ => "n".to_string(),
        });
    }
    Ok(get(kk)?.to_string())
}

fn romaji_word(w: &Word) -> Result<String> {
    let surface = w.m.surface;
    if let Some((_, v)) = EXCEPTIONS.iter().find(|(k, _)| *k == surface) {
        return Ok(v.to_string());
    }
    if is_digit_str(surface) || surface.is_ascii() {
        return Ok(surface.to_string());
    }
    if surface == "€" || surface == "¥" {
        return Ok(String::new());
    }
    if w.m.is_unk {
        if w.m.char_type == CHAR_HIRAGANA || w.m.char_type == CHAR_KATAKANA {
            return map_kana(&kata2hira(surface));
        }
        return Ok("?".repeat(surface.chars().count()));
    }
    let particle = w.pos1_is("助詞");
    if w.pos1_is("補助記号") {
        Ok(table(surface).unwrap_or("").to_string())
    } else if particle && w.f.pron.as_deref() == Some("ワ") {
        Ok("wa".into())
    } else if particle && w.f.pron.as_deref() == Some("エ") {
        Ok("e".into())
    } else if has_foreign_lemma(w) {
        let lemma = w.f.lemma.as_deref().unwrap_or("");
        Ok(lemma.split_once('-').map(|(_, c)| c).unwrap_or(lemma).to_string())
    } else if let Some(kana) = w.f.kana.as_deref().filter(|k| !k.is_empty()) {
        map_kana(&kata2hira(kana))
    } else {
        Ok(surface.to_string())
    }
}

/// `Cutlet().romaji(text)` (capitalised, not lowercased).
pub fn romaji(analyzer: &Analyzer, text: &str) -> Result<String> {
    if text.is_empty() {
        return Ok(String::new());
    }
    let text = normalize(text);
    let words: Vec<Word> = analyzer
        .analyze(&text)
        .into_iter()
        .map(|m| Word {
            f: Features::parse(m.feature),
            m,
        })
        .collect();
    let mut out: Vec<Tok> = Vec::with_capacity(words.len());
    for (wi, word) in words.iter().enumerate() {
        let nw = words.get(wi + 1);
        let surface = word.m.surface;
        if surface == "'"
            && nw.is_some_and(|n| n.m.char_type == CHAR_ALPHA && n.m.white_space.is_empty())
            && word.m.white_space.is_empty()
        {
            if let Some(po) = out.last_mut() {
                po.space = false;
            }
            out.push(Tok {
                surface: surface.to_string(),
                space: false,
            });
            continue;
        }
        let mut roma = romaji_word(word)?;
        if let (Some(first), Some(po)) = (roma.chars().next(), out.last_mut()) {
            if po.surface.ends_with('っ') {
                po.surface.truncate(po.surface.len() - 'っ'.len_utf8());
                po.surface.push(first);
            }
        }
        if word.f.pos2.as_deref() == Some("固有名詞") {
            roma = py_title(&roma);
        }
        let foreign = has_foreign_lemma(word);
        // Python's `in` on strings: the empty string is "in" any string.
        if "「『".contains(surface) || "([".contains(roma.as_str()) {
            if let Some(po) = out.last_mut() {
                po.space = true;
            }
            out.push(Tok {
                surface: roma,
                space: false,
            });
            continue;
        }
        if roma == "/" {
            out.push(Tok {
                surface: roma,
                space: false,
            });
            continue;
        }
        if surface.is_ascii() && nw.is_some_and(|n| n.m.surface.is_ascii()) {
            out.push(Tok {
                surface: surface.to_string(),
                space: nw.is_some_and(|n| !n.m.white_space.is_empty()),
            });
            continue;
        }
        let no_space = word.pos1_is("接頭辞")
            || nw.is_some_and(|n| n.pos1_is("補助記号") || n.pos1_is("接尾辞"))
            || nw.is_some_and(|n| n.m.surface == ",")
            || (foreign && roma.ends_with('-'))
            || nw.is_some_and(|n| n.f.pos2.as_deref().is_some_and(|p| "接続助詞".contains(p)))
            || (is_digit_str(surface) && nw.is_some_and(|n| is_digit_str(n.m.surface)))
            || (nw.is_some_and(|n| n.pos1_is("助動詞") && n.m.surface != "です")
                && (word.pos1_is("動詞") || word.pos1_is("助動詞") || word.pos1_is("形容詞")));
        out.push(Tok {
            surface: roma,
            space: !no_space,
        });
    }
    for t in &mut out {
        if t.surface.contains('っ') {
            t.surface = t.surface.replace('っ', "");
        }
    }
    if let Some(first) = out.first_mut() {
        if let Some(c) = first.surface.chars().next() {
            let rest = first.surface[c.len_utf8()..].to_string();
            first.surface = c.to_uppercase().chain(rest.chars()).collect();
        }
    }
    let mut s = String::new();
    for t in &out {
        s.push_str(&t.surface);
        if t.space {
            s.push(' ');
        }
    }
    Ok(
        s.trim_matches(|c: char| c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c))
            .to_string(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kana_rules() {
        assert_eq!(map_kana("きゃっと").unwrap(), "kyatto");
        assert_eq!(map_kana("まっちゃ").unwrap(), "matcha");
        assert_eq!(map_kana("こーひー").unwrap(), "koohii");
        assert_eq!(map_kana("しんよう").unwrap(), "shin'you");
        assert_eq!(map_kana("いっ").unwrap(), "iっ");
        assert_eq!(map_kana("ーあ").unwrap(), "-a");
        assert_eq!(kata2hira("カツヴァ"), "かつゔぁ");
        assert!(map_kana("a").is_err());
    }

    #[test]
    fn python_string_helpers() {
        assert_eq!(py_title("they're o'neil"), "They'Re O'Neil");
        assert!(is_digit_str("123") && !is_digit_str("〇") && !is_digit_str(""));
        assert_eq!(normalize("ＡＢＣ１２３ｶﾞ’"), "ABC123ガ'");
        assert_eq!(parse_csv("a,\"b,c\",d\"e"), vec!["a", "b,c", "d\"e"]);
    }
}
