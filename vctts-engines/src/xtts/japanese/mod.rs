//! Japanese for XTTS, as Coqui does it: `cutlet.Cutlet().romaji(text)`
//! (MeCab with the UniDic of the PyPI package `unidic-lite`, then cutlet's
//! Hepburn rules), lowercased.
//!
//! - [`mecab`]: a MeCab-compatible analyzer reading the compiled dictionary
//!   folder (`dicdir`) that `unidic-lite` ships.
//! - [`cutlet`]: cutlet's romanisation over the analyzer's words.
//!
//! Where the dictionary comes from: [`find_dictionary`] looks at
//! `$VCTTS_UNIDIC_DIR`, then `<xtts model folder>/ja/unidic/`
//! (`vctts models import xtts` copies `unidic_lite/dicdir` there;
//! `scripts/setup.sh` unpacks the one of the pinned source archive (`unidic-lite` ships no wheel) for the tests). The
//! dictionary is about 250 MB, so it is read once per process on the first
//! Japanese sentence and shared ([`load`]), never per request.
//!
//! Invariants: without a dictionary, Japanese in kana or kanji is refused
//! with a message naming where to put it; nothing here panics on any text.

pub mod cutlet;
pub mod mecab;

use mecab::Analyzer;
use parking_lot::Mutex;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use vctts_core::{Error, Result};

/// The `unidic-lite` version the fixtures were made with (its UniDic is 2.1.2).
pub const UNIDIC_LITE_VERSION: &str = "1.0.8";

/// The environment variable that names a dictionary folder explicitly.
pub const DICTIONARY_ENV: &str = "VCTTS_UNIDIC_DIR";

/// The dictionary folder inside an XTTS model folder.
pub const MODEL_SUBDIR: &str = "ja/unidic";

fn is_dicdir(dir: &Path) -> bool {
    ["sys.dic", "unk.dic", "matrix.bin", "char.bin"]
        .iter()
        .all(|f| dir.join(f).is_file())
}

/// Where the dictionary is for a model folder: `$VCTTS_UNIDIC_DIR` when set
/// (and it must then hold the dictionary), else `<model_dir>/ja/unidic/`.
pub fn find_dictionary(model_dir: Option<&Path>) -> Result<PathBuf> {
    if let Some(dir) = std::env::var_os(DICTIONARY_ENV).filter(|v| !v.is_empty()) {
        let dir = PathBuf::from(dir);
        return if is_dicdir(&dir) {
            Ok(dir)
        } else {
            Err(missing(&format!("{DICTIONARY_ENV}={}", dir.display())))
        };
    }
    match model_dir.map(|m| m.join(MODEL_SUBDIR)) {
        Some(dir) if is_dicdir(&dir) => Ok(dir),
        Some(dir) => Err(missing(&dir.display().to_string())),
        None => Err(missing(&format!("<xtts model folder>/{MODEL_SUBDIR}"))),
    }
}

fn missing(place: &str) -> Error {
    Error::invalid(
        "text",
        format!(
            "Japanese text in kana or kanji needs romanisation with MeCab's UniDic dictionary (the `dicdir` of the \
             Python package unidic-lite=={UNIDIC_LITE_VERSION}: sys.dic, unk.dic, matrix.bin, char.bin), which is \
             not at {place}; copy it into the XTTS model folder as `{MODEL_SUBDIR}/` (`vctts models import xtts` \
             does this when unidic-lite is installed) or set {DICTIONARY_ENV}; or give the text in romaji"
        ),
    )
}

/// The analyzer of a dictionary folder, read once per process and shared.
pub fn load(dicdir: &Path) -> Result<Arc<Analyzer>> {
    static CACHE: OnceLock<Mutex<HashMap<PathBuf, Arc<Analyzer>>>> = OnceLock::new();
    let key = dicdir.canonicalize().unwrap_or_else(|_| dicdir.to_path_buf());
    let cache = CACHE.get_or_init(Default::default);
    let mut map = cache.lock();
    if let Some(a) = map.get(&key) {
        return Ok(a.clone());
    }
    let a = Arc::new(Analyzer::open(&key)?);
    map.insert(key, a.clone());
    Ok(a)
}

/// Coqui's `japanese_cleaners`: cutlet's romaji, lowercased.
pub fn clean(analyzer: &Analyzer, text: &str) -> Result<String> {
    Ok(cutlet::romaji(analyzer, text)?.to_lowercase())
}
