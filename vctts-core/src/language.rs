//! [`Language`]: the one type for a language a request, a reference clip or
//! an engine names.
//!
//! A language is a BCP 47-shaped tag: a primary subtag of 2–3 letters, then
//! optional subtags of 1–8 letters or digits, separated by `-` or `_`
//! (`en`, `en-US`, `en_us`, `zh-CN`, `pt-BR`, `sr-Latn-RS`). Parsing
//! normalises it the way BCP 47 writes it: primary lowercase, a 4-letter
//! script titlecase, a 2-letter region uppercase, `-` as the separator.
//!
//! Invariants:
//! - every `Language` value is well formed (the constructor is [`Language::parse`],
//!   and deserialisation goes through it), so code holding one never re-checks it;
//! - [`Language::matches`] is the only rule for "does this engine speak it":
//!   equal tags, or equal primary subtags (`en-US` is spoken by an engine that
//!   lists `en`, and `en` by one that lists `en_US`); the engine then picks
//!   its closest voice or model variant.

use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};
use std::fmt;

/// Longest tag accepted, in bytes (BCP 47 tags in practice stay far below).
const MAX_LEN: usize = 35;

/// A well-formed, normalised language tag.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Language(String);

impl Language {
    /// Parses and normalises a tag; the error names the `language` field.
    pub fn parse(tag: &str) -> Result<Self> {
        let tag = tag.trim();
        let bad = |why: &str| Error::invalid("language", format!("{tag:?} is not a language code: {why}"));
        if tag.is_empty() {
            return Err(bad("it is empty"));
        }
        if tag.len() > MAX_LEN {
            return Err(bad(&format!("longer than {MAX_LEN} characters")));
        }
        let mut out = String::with_capacity(tag.len());
        for (i, part) in tag.split(['-', '_']).enumerate() {
            if i == 0 {
                if !(2..=3).contains(&part.len()) || !part.chars().all(|c| c.is_ascii_alphabetic()) {
                    return Err(bad("it must start with 2 or 3 letters (`en`, `zh`, `yue`)"));
                }
                out.push_str(&part.to_ascii_lowercase());
                continue;
            }
            if part.is_empty() || part.len() > 8 || !part.chars().all(|c| c.is_ascii_alphanumeric()) {
                return Err(bad("each part after the first is 1 to 8 letters or digits"));
            }
            out.push('-');
            if part.len() == 2 && part.chars().all(|c| c.is_ascii_alphabetic()) {
                out.push_str(&part.to_ascii_uppercase());
            } else if part.len() == 4 && part.chars().all(|c| c.is_ascii_alphabetic()) {
                let lower = part.to_ascii_lowercase();
                out.push_str(&lower[..1].to_ascii_uppercase());
                out.push_str(&lower[1..]);
            } else {
                out.push_str(&part.to_ascii_lowercase());
            }
        }
        Ok(Self(out))
    }

    /// The normalised tag (`en-US`).
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The primary subtag, lowercase (`en` for `en-US`).
    pub fn primary(&self) -> &str {
        self.0.split('-').next().unwrap_or(&self.0)
    }

    /// Whether an engine that lists `supported` (any spelling: `en`, `en_US`,
    /// `zh-cn`) speaks this language: equal tags or equal primary subtags.
    pub fn matches(&self, supported: &str) -> bool {
        match Language::parse(supported) {
            Ok(s) => s == *self || s.primary() == self.primary(),
            Err(_) => false,
        }
    }

    /// The first of `supported` this language [`matches`](Self::matches),
    /// preferring an exact tag over a primary-subtag match.
    pub fn best_match<'a, S: AsRef<str>>(&self, supported: &'a [S]) -> Option<&'a str> {
        let exact = supported
            .iter()
            .map(AsRef::as_ref)
            .find(|s| Language::parse(s).is_ok_and(|l| l == *self));
        exact.or_else(|| supported.iter().map(AsRef::as_ref).find(|s| self.matches(s)))
    }
}

impl fmt::Display for Language {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::str::FromStr for Language {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        Self::parse(s)
    }
}

impl TryFrom<String> for Language {
    type Error = Error;
    fn try_from(s: String) -> Result<Self> {
        Self::parse(&s)
    }
}

impl TryFrom<&str> for Language {
    type Error = Error;
    fn try_from(s: &str) -> Result<Self> {
        Self::parse(s)
    }
}

impl From<Language> for String {
    fn from(l: Language) -> String {
        l.0
    }
}

impl AsRef<str> for Language {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lang(s: &str) -> Language {
        Language::parse(s).unwrap()
    }

    #[test]
    fn parsing_normalises_like_bcp47() {
        assert_eq!(lang("en").as_str(), "en");
        assert_eq!(lang("EN").as_str(), "en");
        assert_eq!(lang("en_us").as_str(), "en-US");
        assert_eq!(lang(" zh-cn ").as_str(), "zh-CN");
        assert_eq!(lang("sr_latn_rs").as_str(), "sr-Latn-RS");
        assert_eq!(lang("es-419").as_str(), "es-419");
        assert_eq!(lang("yue").primary(), "yue");
        assert_eq!(lang("pt-BR").primary(), "pt");
    }

    #[test]
    fn malformed_tags_are_refused_naming_the_field() {
        for bad in [
            "",
            "e",
            "english",
            "en--US",
            "en-",
            "1en",
            "en-US!",
            "zh/cn",
            &"x".repeat(40),
        ] {
            let e = Language::parse(bad).unwrap_err();
            assert_eq!(e.code(), "invalid_input", "{bad:?}");
            assert!(e.to_string().contains("language"), "{e}");
        }
    }

    #[test]
    fn matching_is_by_tag_or_primary_subtag_in_any_spelling() {
        assert!(lang("en-US").matches("en"));
        assert!(lang("en").matches("en_US"));
        assert!(lang("zh").matches("zh-cn"));
        assert!(lang("ZH-CN").matches("zh-cn"));
        assert!(!lang("de").matches("en"));
        assert!(!lang("en").matches("not a tag"));
        let supported = ["en_GB", "en_US", "de"];
        assert_eq!(lang("en-US").best_match(&supported), Some("en_US"));
        assert_eq!(lang("en").best_match(&supported), Some("en_GB"));
        assert_eq!(lang("fr").best_match(&supported), None);
    }

    #[test]
    fn serde_goes_through_parse() {
        let l: Language = serde_json::from_str("\"en_us\"").unwrap();
        assert_eq!(l.as_str(), "en-US");
        assert_eq!(serde_json::to_string(&l).unwrap(), "\"en-US\"");
        assert!(serde_json::from_str::<Language>("\"??\"").is_err());
    }
}
