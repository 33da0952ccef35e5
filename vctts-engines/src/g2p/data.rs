//! The dictionaries of the front end, compiled into the binary and parsed on
//! first use. They are generated from upstream's own data by
//! `scripts/fixtures/make_g2p_corpus.py --data` (pypinyin 0.55 readings,
//! GPT-SoVITS's CMU dictionary cache and hot words, its name dictionary, the
//! tone-sandhi word lists, opencpop's pinyin table, the zh_normalization
//! traditional→simplified table and g2p_en's homographs).
//!
//! Invariant: parsing never fails on the committed data (unit tests parse
//! every table); a malformed line would be skipped, not panic.

use std::collections::{HashMap, HashSet};
use std::io::Read;
use std::sync::OnceLock;

pub(crate) fn gunzip(bytes: &[u8]) -> String {
    let mut out = String::new();
    let mut dec = flate2::read::GzDecoder::new(bytes);
    if dec.read_to_string(&mut out).is_err() {
        out.clear();
    }
    out
}

/// Initial and final (tone 1-5) of one syllable, in pypinyin's strict style.
pub(crate) type Syllable = (String, String);

/// First reading of every CJK character (pypinyin `PINYIN_DICT`).
pub(crate) fn zh_chars() -> &'static HashMap<char, Syllable> {
    static T: OnceLock<HashMap<char, Syllable>> = OnceLock::new();
    T.get_or_init(|| {
        let text = gunzip(include_bytes!("data/zh_chars.tsv.gz"));
        let mut m = HashMap::with_capacity(21000);
        for line in text.lines() {
            let mut it = line.split('\t');
            let (Some(c), Some(i), Some(f)) = (it.next(), it.next(), it.next()) else {
                continue;
            };
            if let Some(ch) = c.chars().next() {
                m.insert(ch, (i.to_string(), f.to_string()));
            }
        }
        m
    })
}

/// pypinyin's phrase dictionary: every phrase, with its reading when it differs
/// from the characters' first readings; and the set of all phrase prefixes.
pub(crate) struct Phrases {
    pub readings: HashMap<String, Vec<Syllable>>,
    pub phrases: HashSet<String>,
    pub prefixes: HashSet<String>,
}

pub(crate) fn zh_phrases() -> &'static Phrases {
    static T: OnceLock<Phrases> = OnceLock::new();
    T.get_or_init(|| {
        let text = gunzip(include_bytes!("data/zh_phrases.tsv.gz"));
        let mut p = Phrases {
            readings: HashMap::new(),
            phrases: HashSet::with_capacity(48000),
            prefixes: HashSet::with_capacity(90000),
        };
        for line in text.lines() {
            let mut it = line.split('\t');
            let Some(word) = it.next() else { continue };
            if word.is_empty() {
                continue;
            }
            if let (Some(ini), Some(fin)) = (it.next(), it.next()) {
                let ini: Vec<&str> = ini.split(' ').collect();
                let fin: Vec<&str> = fin.split(' ').collect();
                if ini.len() == fin.len() && ini.len() == word.chars().count() {
                    let r = ini
                        .iter()
                        .zip(&fin)
                        .map(|(a, b)| (a.to_string(), b.to_string()))
                        .collect();
                    p.readings.insert(word.to_string(), r);
                }
            }
            let mut prefix = String::new();
            for c in word.chars() {
                prefix.push(c);
                p.prefixes.insert(prefix.clone());
            }
            p.phrases.insert(word.to_string());
        }
        p
    })
}

/// opencpop-strict: toneless pinyin → (initial symbol, final symbol).
pub(crate) fn zh_opencpop() -> &'static HashMap<String, (String, String)> {
    static T: OnceLock<HashMap<String, (String, String)>> = OnceLock::new();
    T.get_or_init(|| {
        let mut m = HashMap::new();
        for line in include_str!("data/zh_opencpop.tsv").lines() {
            let mut it = line.split('\t');
            let (Some(py), Some(ph)) = (it.next(), it.next()) else {
                continue;
            };
            if let Some((c, v)) = ph.trim().split_once(' ') {
                m.insert(py.to_string(), (c.to_string(), v.to_string()));
            }
        }
        m
    })
}

/// Word lists of upstream's `ToneSandhi`.
pub(crate) struct SandhiLists {
    pub must_neutral: HashSet<String>,
    pub must_not_neutral: HashSet<String>,
    pub punc: Vec<char>,
}

pub(crate) fn zh_sandhi_lists() -> &'static SandhiLists {
    static T: OnceLock<SandhiLists> = OnceLock::new();
    T.get_or_init(|| {
        let mut l = SandhiLists {
            must_neutral: HashSet::new(),
            must_not_neutral: HashSet::new(),
            punc: Vec::new(),
        };
        let mut section = "";
        for line in include_str!("data/zh_neutral_words.txt").lines() {
            if let Some(name) = line.strip_prefix("# ") {
                section = match name {
                    "must_neural_tone_words" => "n",
                    "must_not_neural_tone_words" => "nn",
                    "punc" => "p",
                    _ => "",
                };
                continue;
            }
            match section {
                "n" => {
                    l.must_neutral.insert(line.to_string());
                }
                "nn" => {
                    l.must_not_neutral.insert(line.to_string());
                }
                "p" => l.punc.extend(line.chars()),
                _ => {}
            }
        }
        l
    })
}

/// Traditional → simplified characters (zh_normalization/char_convert.py).
pub(crate) fn zh_t2s() -> &'static HashMap<char, char> {
    static T: OnceLock<HashMap<char, char>> = OnceLock::new();
    T.get_or_init(|| {
        let mut lines = include_str!("data/zh_t2s.txt").lines();
        let trad: Vec<char> = lines.next().unwrap_or("").chars().collect();
        let simp: Vec<char> = lines.next().unwrap_or("").chars().collect();
        trad.into_iter().zip(simp).collect()
    })
}

fn parse_dict(text: &str) -> HashMap<String, Vec<String>> {
    let mut m = HashMap::with_capacity(140_000);
    for line in text.lines() {
        if let Some((w, p)) = line.split_once('\t') {
            m.insert(w.to_string(), p.split(' ').map(str::to_string).collect());
        }
    }
    m
}

/// GPT-SoVITS's English dictionary as `english.py` loads it (lower-case keys).
pub(crate) fn en_dict() -> &'static HashMap<String, Vec<String>> {
    static T: OnceLock<HashMap<String, Vec<String>>> = OnceLock::new();
    T.get_or_init(|| parse_dict(&gunzip(include_bytes!("data/en_dict.tsv.gz"))))
}

/// GPT-SoVITS's name dictionary (used for title-case words).
pub(crate) fn en_names() -> &'static HashMap<String, Vec<String>> {
    static T: OnceLock<HashMap<String, Vec<String>>> = OnceLock::new();
    T.get_or_init(|| parse_dict(&gunzip(include_bytes!("data/en_names.tsv.gz"))))
}

/// g2p_en homographs: word → (reading for `pos`, other reading, pos prefix).
pub(crate) struct Homograph {
    pub first: Vec<String>,
    pub second: Vec<String>,
    pub pos: String,
}

pub(crate) fn en_homographs() -> &'static HashMap<String, Homograph> {
    static T: OnceLock<HashMap<String, Homograph>> = OnceLock::new();
    T.get_or_init(|| {
        let mut m = HashMap::new();
        for line in include_str!("data/en_homographs.tsv").lines() {
            let f: Vec<&str> = line.split('\t').collect();
            if f.len() == 4 {
                m.insert(
                    f[0].to_string(),
                    Homograph {
                        first: f[1].split(' ').map(str::to_string).collect(),
                        second: f[2].split(' ').map(str::to_string).collect(),
                        pos: f[3].to_string(),
                    },
                );
            }
        }
        m
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_table_parses() {
        assert!(zh_chars().len() > 20000);
        assert_eq!(zh_chars()[&'好'], ("h".to_string(), "ao3".to_string()));
        assert!(zh_phrases().phrases.len() > 40000);
        assert!(zh_phrases().prefixes.contains("一丁"));
        assert!(zh_opencpop().len() > 400);
        assert!(zh_sandhi_lists().must_neutral.contains("东西"));
        assert!(!zh_sandhi_lists().punc.is_empty());
        assert_eq!(zh_t2s().get(&'書'), Some(&'书'));
        assert!(en_dict().len() > 100_000);
        assert!(en_names().len() > 1000);
        assert!(en_homographs().contains_key("read"));
    }
}
