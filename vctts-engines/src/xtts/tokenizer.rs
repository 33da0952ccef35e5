//! XTTS-v2 text front end: the 17 languages, their sentence limits, Coqui's
//! cleaning (`multilingual_cleaners`), Chinese pinyin, the `[lang]` prefix,
//! `[SPACE]`, and the BPE of `vocab.json` (HF `tokenizers`).
//!
//! Cleaning per sentence, in Coqui's order: strip and lowercase, drop `"`,
//! the Turkish `İ Ö Ü` fixes, numbers ([`super::numbers`]), abbreviations
//! (the per-language `xx.` table, matched at a word start), symbols (`& @ %
//! # $ £ °` spoken per language), collapse whitespace. Chinese then becomes
//! pinyin with tone digits (TONE3, neutral tone 5).
//!
//! Korean is romanised with hangul-romanize's academic rule, as Coqui does.
//!
//! Invariants: [`clean`] and [`XttsTokenizer::encode`] are total for the
//! supported languages (no panic on any input); an unsupported language is
//! [`Error::UnsupportedLanguage`]. Japanese goes through
//! [`super::japanese`] (MeCab + UniDic + cutlet, as Coqui's
//! `japanese_cleaners`) when the model folder (or `$VCTTS_UNIDIC_DIR`) has
//! the unidic-lite dictionary; without it, kana and kanji are refused with a
//! message naming where the dictionary goes and romaji passes.

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use tokenizers::Tokenizer;
use vctts_core::{Error, Result};

/// The XTTS-v2 languages (Coqui's codes; `zh-cn` is also accepted as `zh`).
pub const LANGUAGES: [&str; 17] = [
    "en", "es", "fr", "de", "it", "pt", "pl", "tr", "ru", "nl", "cs", "ar", "zh-cn", "hu", "ko", "ja", "hi",
];

/// Coqui's per-language character limits (`char_limits`): longer sentences
/// risk truncated audio, so the engine splits text to fit them.
pub fn char_limit(lang: &str) -> usize {
    match base_language(lang) {
        "en" => 250,
        "de" => 253,
        "fr" => 273,
        "es" => 239,
        "it" => 213,
        "pt" => 203,
        "pl" => 224,
        "zh" => 82,
        "ar" => 166,
        "cs" => 186,
        "ru" => 182,
        "nl" => 251,
        "tr" => 226,
        "ja" => 71,
        "hu" => 224,
        "ko" => 95,
        "hi" => 150,
        _ => 250,
    }
}

/// `zh-CN` → `zh`, `EN` → `en`: the part before `-`/`_`, lowercased.
pub fn base_language(lang: &str) -> &'static str {
    let primary = lang
        .trim()
        .split(['-', '_'])
        .next()
        .unwrap_or("")
        .to_ascii_lowercase();
    LANGUAGES
        .iter()
        .map(|l| l.split('-').next().unwrap_or(l))
        .find(|l| *l == primary)
        .unwrap_or("")
}

/// Checks a language code; returns its base form (`zh` for `zh-cn`).
pub fn check_language(lang: &str) -> Result<&'static str> {
    match base_language(lang) {
        "" => Err(Error::UnsupportedLanguage {
            language: lang.to_string(),
            engine: "xtts".into(),
            supported: LANGUAGES.join(", "),
        }),
        l => Ok(l),
    }
}

fn symbols(lang: &str) -> [&'static str; 7] {
    // & @ % # $ £ °
    match lang {
        "en" => ["and", "at", "percent", "hash", "dollar", "pound", "degree"],
        "es" => ["y", "arroba", "por ciento", "numeral", "dolar", "libra", "grados"],
        "fr" => ["et", "arobase", "pour cent", "dièse", "dollar", "livre", "degrés"],
        "de" => ["und", "at", "prozent", "raute", "dollar", "pfund", "grad"],
        "pt" => ["e", "arroba", "por cento", "cardinal", "dólar", "libra", "graus"],
        "it" => [
            "e",
            "chiocciola",
            "per cento",
            "cancelletto",
            "dollaro",
            "sterlina",
            "gradi",
        ],
        "pl" => ["i", "małpa", "procent", "krzyżyk", "dolar", "funt", "stopnie"],
        "ar" => ["و", "على", "في المئة", "رقم", "دولار", "جنيه", "درجة"],
        "zh" => ["和", "在", "百分之", "号", "美元", "英镑", "度"],
        "cs" => ["a", "na", "procento", "křížek", "dolar", "libra", "stupně"],
        "ru" => ["и", "собака", "процентов", "номер", "доллар", "фунт", "градус"],
        "nl" => ["en", "bij", "procent", "hekje", "dollar", "pond", "graden"],
        "tr" => ["ve", "at", "yüzde", "diyez", "dolar", "sterlin", "derece"],
        "hu" => [
            "és",
            "kukac",
            "százalék",
            "kettőskereszt",
            "dollár",
            "font",
            "fok",
        ],
        "ko" => ["그리고", "에", "퍼센트", "번호", "달러", "파운드", "도"],
        "hi" => ["और", "ऐट दी रेट", "प्रतिशत", "हैश", "डॉलर", "पाउंड", "डिग्री"],
        _ => ["", "", "", "", "", "", ""],
    }
}

fn abbreviations(lang: &str) -> &'static [(&'static str, &'static str)] {
    match lang {
        "en" => &[
            ("mrs.", "misess"),
            ("mr.", "mister"),
            ("dr.", "doctor"),
            ("st.", "saint"),
            ("co.", "company"),
            ("jr.", "junior"),
            ("maj.", "major"),
            ("gen.", "general"),
            ("drs.", "doctors"),
            ("rev.", "reverend"),
            ("lt.", "lieutenant"),
            ("hon.", "honorable"),
            ("sgt.", "sergeant"),
            ("capt.", "captain"),
            ("esq.", "esquire"),
            ("ltd.", "limited"),
            ("col.", "colonel"),
            ("ft.", "fort"),
        ],
        "es" => &[
            ("sra.", "señora"),
            ("sr.", "señor"),
            ("dr.", "doctor"),
            ("dra.", "doctora"),
            ("st.", "santo"),
            ("co.", "compañía"),
            ("jr.", "junior"),
            ("ltd.", "limitada"),
        ],
        "fr" => &[
            ("mme.", "madame"),
            ("mr.", "monsieur"),
            ("dr.", "docteur"),
            ("st.", "saint"),
            ("co.", "compagnie"),
            ("jr.", "junior"),
            ("ltd.", "limitée"),
        ],
        "de" => &[
            ("fr.", "frau"),
            ("dr.", "doktor"),
            ("st.", "sankt"),
            ("co.", "firma"),
            ("jr.", "junior"),
        ],
        "pt" => &[
            ("sra.", "senhora"),
            ("sr.", "senhor"),
            ("dr.", "doutor"),
            ("dra.", "doutora"),
            ("st.", "santo"),
            ("co.", "companhia"),
            ("jr.", "júnior"),
            ("ltd.", "limitada"),
        ],
        "it" => &[
            ("sig.", "signore"),
            ("dr.", "dottore"),
            ("st.", "santo"),
            ("co.", "compagnia"),
            ("jr.", "junior"),
            ("ltd.", "limitata"),
        ],
        "pl" => &[
            ("p.", "pani"),
            ("m.", "pan"),
            ("dr.", "doktor"),
            ("sw.", "święty"),
            ("jr.", "junior"),
        ],
        "cs" => &[("dr.", "doktor"), ("ing.", "inženýr"), ("p.", "pan")],
        "nl" => &[
            ("dhr.", "de heer"),
            ("mevr.", "mevrouw"),
            ("dr.", "dokter"),
            ("jhr.", "jonkheer"),
        ],
        "tr" => &[("b.", "bay"), ("byk.", "büyük"), ("dr.", "doktor")],
        "hu" => &[("dr.", "doktor"), ("b.", "bácsi"), ("nőv.", "nővér")],
        _ => &[],
    }
}

/// Coqui's Russian abbreviations, whole words without a dot (`\bг-жа\b`).
fn russian_abbreviations(text: &str) -> String {
    static RU: std::sync::OnceLock<Vec<(regex::Regex, &'static str)>> = std::sync::OnceLock::new();
    let table = RU.get_or_init(|| {
        [("г-жа", "госпожа"), ("г-н", "господин"), ("д-р", "доктор")]
            .into_iter()
            .map(|(p, w)| {
                (
                    regex::Regex::new(&format!(r"(?i)\b{p}\b")).expect("static pattern"),
                    w,
                )
            })
            .collect()
    });
    let mut t = text.to_string();
    for (re, with) in table {
        t = re.replace_all(&t, *with).into_owned();
    }
    t
}

fn is_word(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// Replaces `pat` where it starts a word (`\bpat`), like Coqui's abbreviation regexes.
fn replace_at_word_start(text: &str, pat: &str, with: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    let mut prev: Option<char> = None;
    while let Some(pos) = rest.find(pat) {
        let before = rest[..pos].chars().next_back().or(prev);
        if before.is_some_and(is_word) {
            let step = pos + pat.chars().next().map_or(1, char::len_utf8);
            out.push_str(&rest[..step]);
            prev = rest[..step].chars().next_back();
            rest = &rest[step..];
            continue;
        }
        out.push_str(&rest[..pos]);
        out.push_str(with);
        prev = with.chars().next_back().or(before);
        rest = &rest[pos + pat.len()..];
    }
    out.push_str(rest);
    out
}

fn collapse_whitespace(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut space = false;
    for c in text.chars() {
        if c.is_whitespace() {
            space = true;
        } else {
            if space {
                out.push(' ');
            }
            space = false;
            out.push(c);
        }
    }
    if space {
        out.push(' ');
    }
    out
}

/// Coqui's cleaning of one sentence for `lang` (a base code from
/// [`check_language`]); Chinese comes back as pinyin. Japanese needs the
/// analyzer ([`clean_with`]); here only romaji passes.
pub fn clean(sentence: &str, lang: &str) -> Result<String> {
    clean_with(sentence, lang, None)
}

/// [`clean`], with the Japanese analyzer when there is one: then Japanese is
/// Coqui's `japanese_cleaners` (cutlet's romaji, lowercased) on the sentence
/// as given, and nothing else of the multilingual cleaning applies.
pub fn clean_with(
    sentence: &str,
    lang: &str,
    ja: Option<&super::japanese::mecab::Analyzer>,
) -> Result<String> {
    if lang == "ja" {
        if let Some(analyzer) = ja {
            return super::japanese::clean(analyzer, sentence);
        }
        if !sentence.is_ascii() {
            return Err(super::japanese::find_dictionary(None).unwrap_err());
        }
    }
    let mut t = sentence.trim().replace('"', "");
    if lang == "tr" {
        // As Coqui: before lowercasing. (Its `inference` lowercases the
        // sentence before cleaning, so there `İ` has already become "i̇" and
        // stays so; [`XttsTokenizer::encode`] callers do the same.)
        t = t.replace('İ', "i").replace('Ö', "ö").replace('Ü', "ü");
    }
    let mut t = t.to_lowercase();
    if lang == "zh" {
        // Coqui's zh_num2words: numbers in Chinese, then every Chinese or
        // ASCII punctuation mark becomes ",".
        t = crate::text::normalize::normalize(&t, "zh")
            .chars()
            .map(|c| if is_zh_punct(c) { ',' } else { c })
            .collect();
    } else {
        t = super::numbers::expand(&t, lang);
    }
    for (pat, with) in abbreviations(lang) {
        t = replace_at_word_start(&t, pat, with);
    }
    if lang == "ru" {
        t = russian_abbreviations(&t);
    }
    for (sym, word) in ['&', '@', '%', '#', '$', '£', '°'].iter().zip(symbols(lang)) {
        if !word.is_empty() && t.contains(*sym) {
            t = t.replace(*sym, &format!(" {word} ")).replace("  ", " ");
        }
    }
    let t = collapse_whitespace(t.trim());
    Ok(match lang {
        "zh" => to_pinyin(&t),
        "ko" => romanize_hangul(&t),
        _ => t,
    })
}

/// The punctuation Coqui's `zh_num2words` turns into `,` (its Chinese list
/// and Python's `string.punctuation`).
fn is_zh_punct(c: char) -> bool {
    const CN: &str = "！？｡。＂＃＄％＆＇（）＊＋，－／：；＜＝＞＠［＼］＾＿｀｛｜｝～｟｠｢｣､、〃《》「」『』【】〔〕〖〗〘〙〚〛〜〝〞〟〰〾〿–—‘’‛“”„‟…‧﹏·〈〉-";
    c.is_ascii_punctuation() || CN.contains(c)
}

const KO_INITIALS: [&str; 19] = [
    "g", "kk", "n", "d", "tt", "l", "m", "b", "pp", "s", "ss", "", "j", "jj", "ch", "k", "t", "p", "h",
];
const KO_VOWELS: [&str; 21] = [
    "a", "ae", "ya", "yae", "eo", "e", "yeo", "ye", "o", "wa", "wae", "oe", "yo", "u", "wo", "we", "wi",
    "yu", "eu", "ui", "i",
];
const KO_FINALS: [&str; 28] = [
    "", "g", "kk", "gs", "n", "nj", "nh", "d", "l", "lg", "lm", "lb", "ls", "lt", "lp", "lh", "m", "b", "bs",
    "s", "ss", "ng", "j", "ch", "k", "t", "p", "h",
];

/// Whether final + initial can be split into a final and an initial in
/// more than one way (then the academic rule writes a `-` between them).
fn ko_ambiguous(final_: usize, initial: usize) -> bool {
    let combined = format!("{}{}", KO_FINALS[final_], KO_INITIALS[initial]);
    let splits = (0..combined.len())
        .filter(|&i| KO_FINALS.contains(&&combined[..i]) && KO_INITIALS.contains(&&combined[i..]))
        .count();
    splits > 1
}

/// hangul-romanize's `academic` rule (what Coqui uses for Korean): each
/// syllable as initial + vowel + final in the Revised Romanization letters,
/// with `-` before a syllable that follows another one when it starts with
/// the silent ㅇ or when the letters at the joint are ambiguous.
pub fn romanize_hangul(text: &str) -> String {
    let mut out = String::with_capacity(text.len() * 2);
    let mut prev_final: Option<usize> = None;
    for c in text.chars() {
        let code = c as u32;
        if !(0xAC00..=0xD7A3).contains(&code) {
            out.push(c);
            prev_final = None;
            continue;
        }
        let idx = (code - 0xAC00) as usize;
        let (initial, vowel, final_) = (idx / 588, (idx / 28) % 21, idx % 28);
        if let Some(pf) = prev_final {
            if initial == 11 || ko_ambiguous(pf, initial) {
                out.push('-');
            }
        }
        out.push_str(KO_INITIALS[initial]);
        out.push_str(KO_VOWELS[vowel]);
        out.push_str(KO_FINALS[final_]);
        prev_final = Some(final_);
    }
    out
}

/// Han characters → pinyin with the tone digit at the end (TONE3) and 5 for
/// the neutral tone; everything else is kept. Differences from pypinyin,
/// which Coqui uses: the `pinyin` crate reads every character alone with its
/// most common reading (pypinyin picks polyphone readings from a phrase
/// dictionary, e.g. 银行 → yin2hang2, here yin2xing2), and ü is written `v`
/// as pypinyin's TONE3 does.
pub fn to_pinyin(text: &str) -> String {
    use pinyin::ToPinyin;
    let mut out = String::with_capacity(text.len() * 3);
    for c in text.chars() {
        match c.to_pinyin() {
            Some(p) => {
                let s = p.with_tone_num_end().replace('ü', "v");
                let toned = s.ends_with(|c: char| c.is_ascii_digit());
                out.push_str(&s);
                if !toned {
                    out.push('5');
                }
            }
            None => out.push(c),
        }
    }
    out
}

/// The BPE tokenizer of `vocab.json`.
pub struct XttsTokenizer {
    inner: Tokenizer,
    max_id: u32,
    /// The model folder (where `ja/unidic/` is looked for).
    model_dir: Option<PathBuf>,
    /// The Japanese analyzer, loaded on the first Japanese sentence.
    ja: OnceLock<Arc<super::japanese::mecab::Analyzer>>,
}

impl std::fmt::Debug for XttsTokenizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("XttsTokenizer")
            .field("max_id", &self.max_id)
            .finish()
    }
}

impl XttsTokenizer {
    /// Loads `vocab.json` (an HF tokenizers file).
    pub fn load(path: &Path) -> Result<Self> {
        if !path.is_file() {
            return Err(Error::ModelNotInstalled(format!("{} is missing", path.display())));
        }
        let inner = Tokenizer::from_file(path)
            .map_err(|e| Error::ModelLoad(format!("vocab.json: not a tokenizers file: {e}")))?;
        let max_id = inner.get_vocab(true).values().copied().max().unwrap_or(0);
        Ok(Self {
            inner,
            max_id,
            model_dir: path.parent().map(Path::to_path_buf),
            ja: OnceLock::new(),
        })
    }

    /// The id of a token, if the vocabulary has it.
    pub fn token_id(&self, token: &str) -> Option<u32> {
        self.inner.token_to_id(token)
    }

    /// The Japanese analyzer of this model folder, loaded once. `None` when
    /// there is no dictionary and the text does not need one.
    pub fn japanese(&self, needed: bool) -> Result<Option<Arc<super::japanese::mecab::Analyzer>>> {
        if let Some(a) = self.ja.get() {
            return Ok(Some(a.clone()));
        }
        let dir = match super::japanese::find_dictionary(self.model_dir.as_deref()) {
            Ok(dir) => dir,
            Err(e) if needed => return Err(e),
            Err(_) => return Ok(None),
        };
        let a = super::japanese::load(&dir)?;
        Ok(Some(self.ja.get_or_init(|| a).clone()))
    }

    /// The largest id.
    pub fn max_id(&self) -> u32 {
        self.max_id
    }

    /// Coqui's `VoiceBpeTokenizer.encode`: clean, prefix `[lang]` (`[zh-cn]`
    /// for Chinese), spaces → `[SPACE]`, BPE. `lang` is a base code.
    pub fn encode(&self, sentence: &str, lang: &str) -> Result<Vec<u32>> {
        let cleaned = if lang == "ja" {
            let ja = self.japanese(!sentence.is_ascii())?;
            clean_with(sentence, lang, ja.as_deref())?
        } else {
            clean(sentence, lang)?
        };
        let tag = if lang == "zh" { "zh-cn" } else { lang };
        let text = format!("[{tag}]{cleaned}").replace(' ', "[SPACE]");
        let enc = self
            .inner
            .encode(text.as_str(), true)
            .map_err(|e| Error::Inference(format!("tokenizer: {e}")))?;
        Ok(enc.get_ids().to_vec())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn languages_and_limits() {
        assert_eq!(check_language("zh-CN").unwrap(), "zh");
        assert_eq!(check_language("EN").unwrap(), "en");
        assert_eq!(check_language("pt_BR").unwrap(), "pt");
        assert_eq!(check_language("xx").unwrap_err().code(), "unsupported_language");
        assert_eq!(char_limit("zh-cn"), 82);
        assert_eq!(char_limit("ja"), 71);
        assert_eq!(LANGUAGES.len(), 17);
    }

    #[test]
    fn cleaning_follows_coqui() {
        assert_eq!(
            clean(" He said \"Hi\" & left ", "en").unwrap(),
            "he said hi and left"
        );
        assert_eq!(
            clean("Dr. Who, Mrs. Smith", "en").unwrap(),
            "doctor who, misess smith"
        );
        // Only at a word start.
        assert_eq!(clean("adr. x", "en").unwrap(), "adr. x");
        assert_eq!(clean("14% voll", "de").unwrap(), "vierzehn prozent voll");
        assert_eq!(
            clean("Te veo @ la fiesta", "es").unwrap(),
            "te veo arroba la fiesta"
        );
    }

    #[test]
    fn chinese_becomes_pinyin_with_tone_digits() {
        assert_eq!(to_pinyin("你好"), "ni3hao3");
        assert_eq!(to_pinyin("绿a"), "lv4a");
        assert!(to_pinyin("的").ends_with('5') || to_pinyin("的").ends_with(char::is_numeric));
    }

    #[test]
    fn japanese_script_is_refused_clearly_korean_is_romanised() {
        let e = clean("こんにちは", "ja").unwrap_err();
        assert!(e.to_string().contains("romanisation"), "{e}");
        assert!(e.to_string().contains("ja/unidic"), "{e}");
        assert_eq!(clean("konnichiwa", "ja").unwrap(), "konnichiwa");
        // hangul-romanize academic output.
        assert_eq!(romanize_hangul("안녕하세요 세계"), "annyeonghase-yo segye");
    }

    #[test]
    fn chinese_punctuation_becomes_commas() {
        assert_eq!(clean("你好，世界！", "zh").unwrap(), "ni3hao3,shi4jie4,");
    }
}
