//! The model catalog: which models `vctts models fetch` knows, where on the
//! hub they live, which files they are, what they must hash to, their
//! licence and the folder they are installed into.
//!
//! The built-in catalog is `models/catalog.json`, compiled in. Piper voices
//! are not listed one by one: any name of the form `lang_REGION-name-quality`
//! is a Piper voice, and its files and sums come from the voice repository's
//! own `voices.json` (fetched from the hub at the same revision).
//!
//! Invariants (checked by [`Catalog::parse`]): names are unique; every target
//! and destination is a relative path inside the models root with no `..`;
//! a SHA-256 is 64 lowercase hex digits; a hub model has a repository, a
//! revision and at least one file; a model without a repository says how to
//! get it instead (`import`).

use super::error::FetchError;
use serde::{Deserialize, Serialize};
use std::collections::HashSet;
use std::path::{Component, Path, PathBuf};
use vctts_core::EngineKind;

/// The catalog compiled into vctts.
pub const BUILTIN: &str = include_str!("../../models/catalog.json");

/// One file of a catalog model.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileSpec {
    /// Path inside the repository.
    pub path: String,
    /// Path inside the model's target folder (default: the file name of `path`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dest: Option<String>,
    /// Size in bytes, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
    /// SHA-256 (lowercase hex), when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
}

impl FileSpec {
    /// Where the file goes inside the target folder.
    pub fn dest(&self) -> &str {
        match &self.dest {
            Some(d) => d,
            None => self.path.rsplit('/').next().unwrap_or(&self.path),
        }
    }
}

/// One named model of the catalog.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelEntry {
    /// The name users type (`openvoice-converter`).
    pub name: String,
    /// The engine it is for (`openvoice`, `xtts`, `gpt-sovits`).
    pub engine: String,
    /// One line for `vctts models list`.
    pub description: String,
    /// Licence of the files.
    pub licence: String,
    /// `owner/name` on the hub; absent for models that are imported.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repo: Option<String>,
    /// A commit, tag or branch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revision: Option<String>,
    /// Folder under the models root that the model owns (installed as a whole).
    pub target: String,
    /// Whether the repository needs an access token.
    #[serde(default)]
    pub gated: bool,
    /// Where the sizes and sums come from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provenance: Option<String>,
    /// The files.
    #[serde(default)]
    pub files: Vec<FileSpec>,
    /// For models not on a hub: the command that makes them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub import: Option<String>,
}

impl ModelEntry {
    /// The engine, parsed.
    pub fn engine_kind(&self) -> Option<EngineKind> {
        self.engine.parse().ok()
    }

    /// Total size, when the model has files and every size is known.
    pub fn size(&self) -> Option<u64> {
        if self.files.is_empty() {
            return None;
        }
        self.files.iter().map(|f| f.size).sum()
    }
}

/// Where Piper voices come from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PiperSource {
    /// One line for `vctts models list`.
    pub description: String,
    /// `rhasspy/piper-voices`.
    pub repo: String,
    /// The revision (a tag or commit).
    pub revision: String,
    /// The index file in the repository (`voices.json`).
    pub index: String,
    /// The folder voices go to (`openvoice/base`).
    pub target: String,
    /// Licence note.
    pub licence: String,
    /// Where the sizes and sums come from.
    pub provenance: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CatalogFile {
    #[serde(default)]
    #[allow(dead_code)]
    about: Vec<String>,
    models: Vec<ModelEntry>,
    piper: PiperSource,
}

/// The parsed catalog.
#[derive(Debug, Clone)]
pub struct Catalog {
    /// Where it came from (`built-in` or a file path), for messages.
    pub origin: String,
    /// Named models.
    pub models: Vec<ModelEntry>,
    /// Piper voices.
    pub piper: PiperSource,
}

/// What a name refers to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resolved<'a> {
    /// A named catalog model.
    Model(&'a ModelEntry),
    /// A Piper voice (its files come from the voice index).
    Piper(PiperName),
}

/// A parsed Piper voice name, `lang_REGION-name-quality`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PiperName {
    /// The whole name, e.g. `zh_CN-huayan-medium`.
    pub key: String,
    /// `zh`.
    pub family: String,
    /// `zh_CN`.
    pub locale: String,
    /// `huayan`.
    pub speaker: String,
    /// `medium`.
    pub quality: String,
}

impl PiperName {
    /// Parses `lang_REGION-name-quality`; `None` when the name has another shape.
    pub fn parse(name: &str) -> Option<Self> {
        let (locale, rest) = name.split_once('-')?;
        let (speaker, quality) = rest.rsplit_once('-')?;
        let (family, region) = locale.split_once('_')?;
        let family_ok = (2..=3).contains(&family.len()) && family.bytes().all(|b| b.is_ascii_lowercase());
        let region_ok = region.len() == 2 && region.bytes().all(|b| b.is_ascii_uppercase());
        let speaker_ok =
            !speaker.is_empty() && speaker.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
        let quality_ok = matches!(quality, "x_low" | "low" | "medium" | "high");
        (family_ok && region_ok && speaker_ok && quality_ok).then(|| PiperName {
            key: name.to_string(),
            family: family.to_string(),
            locale: locale.to_string(),
            speaker: speaker.to_string(),
            quality: quality.to_string(),
        })
    }

    /// The folder of the voice in the repository: `zh/zh_CN/huayan/medium`.
    pub fn repo_dir(&self) -> String {
        format!(
            "{}/{}/{}/{}",
            self.family, self.locale, self.speaker, self.quality
        )
    }
}

fn bad(origin: &str, message: String) -> FetchError {
    FetchError::Catalog {
        origin: origin.to_string(),
        message,
    }
}

/// Whether `p` is a relative path that stays inside its base.
pub fn is_safe_relative(p: &str) -> bool {
    !p.is_empty()
        && !p.contains('\\')
        && Path::new(p)
            .components()
            .all(|c| matches!(c, Component::Normal(_)))
}

fn is_sha256(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

impl Catalog {
    /// The catalog compiled into vctts.
    pub fn builtin() -> Result<Self, FetchError> {
        Self::parse(BUILTIN, "built-in")
    }

    /// Reads a catalog file (an organisation's own, e.g. for a mirror).
    pub fn load(path: &Path) -> Result<Self, FetchError> {
        let text = std::fs::read_to_string(path).map_err(|e| FetchError::Io {
            context: format!("reading the model catalog {}", path.display()),
            source: e,
        })?;
        Self::parse(&text, &path.display().to_string())
    }

    /// Parses and checks a catalog.
    pub fn parse(text: &str, origin: &str) -> Result<Self, FetchError> {
        let file: CatalogFile = serde_json::from_str(text).map_err(|e| bad(origin, e.to_string()))?;
        let mut names = HashSet::new();
        for m in &file.models {
            let at = |what: String| bad(origin, format!("model {:?}: {what}", m.name));
            if m.name.is_empty() || !names.insert(m.name.as_str()) {
                return Err(at("empty or duplicate name".into()));
            }
            if PiperName::parse(&m.name).is_some() {
                return Err(at("the name has the shape of a Piper voice name".into()));
            }
            if m.engine_kind().is_none() {
                return Err(at(format!("unknown engine {:?}", m.engine)));
            }
            if !is_safe_relative(&m.target) {
                return Err(at(format!(
                    "target {:?} is not a relative path inside the models root",
                    m.target
                )));
            }
            match (&m.repo, &m.import) {
                (Some(repo), _) => {
                    if repo.split('/').count() != 2 || !is_safe_relative(repo) {
                        return Err(at(format!("repo {repo:?} is not owner/name")));
                    }
                    if m.revision
                        .as_deref()
                        .is_none_or(|r| r.is_empty() || r.contains('/'))
                    {
                        return Err(at("a hub model needs a revision (a commit, tag or branch)".into()));
                    }
                    if m.files.is_empty() {
                        return Err(at("a hub model needs files".into()));
                    }
                }
                (None, Some(_)) => {}
                (None, None) => return Err(at("needs a repo or an import command".into())),
            }
            let mut dests = HashSet::new();
            for f in &m.files {
                if !is_safe_relative(&f.path) || !is_safe_relative(f.dest()) {
                    return Err(at(format!("file {:?}: unsafe path", f.path)));
                }
                if !dests.insert(f.dest()) {
                    return Err(at(format!("two files go to {:?}", f.dest())));
                }
                if f.sha256.as_deref().is_some_and(|s| !is_sha256(s)) {
                    return Err(at(format!(
                        "file {:?}: sha256 must be 64 lowercase hex digits",
                        f.path
                    )));
                }
            }
        }
        let p = &file.piper;
        if !is_safe_relative(&p.target) || !is_safe_relative(&p.index) || p.repo.split('/').count() != 2 {
            return Err(bad(origin, "piper: bad target, index or repo".into()));
        }
        Ok(Catalog {
            origin: origin.to_string(),
            models: file.models,
            piper: file.piper,
        })
    }

    /// The model called `name`.
    pub fn get(&self, name: &str) -> Option<&ModelEntry> {
        self.models.iter().find(|m| m.name == name)
    }

    /// What `name` refers to, or an error listing what exists.
    pub fn resolve(&self, name: &str) -> Result<Resolved<'_>, FetchError> {
        if let Some(m) = self.get(name) {
            return Ok(Resolved::Model(m));
        }
        if let Some(p) = PiperName::parse(name) {
            return Ok(Resolved::Piper(p));
        }
        let names: Vec<&str> = self.models.iter().map(|m| m.name.as_str()).collect();
        Err(FetchError::UnknownModel {
            name: name.to_string(),
            known: format!(
                "the catalog has {}, and any Piper voice as lang_REGION-name-quality (e.g. de_DE-thorsten-medium)",
                names.join(", ")
            ),
        })
    }
}

/// How a planned model is installed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Layout {
    /// The model owns its target folder: it is built complete beside the
    /// models and renamed into place (files already there that the model
    /// does not provide, such as a README, are kept).
    Folder,
    /// Files dropped into a shared folder (Piper voices in `openvoice/base`);
    /// the file that makes the model visible (the `.onnx`) is moved last.
    Files,
}

/// What a downloaded file must match.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Expected {
    /// SHA-256 hex.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    /// MD5 hex.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub md5: Option<String>,
    /// Size in bytes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
    /// Where these values come from.
    pub source: String,
}

/// One file to fetch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PlannedFile {
    /// Path in the repository.
    pub path: String,
    /// Path inside the target folder.
    pub dest: String,
    /// What it must match (the hub's metadata is added when it is asked).
    pub expected: Expected,
}

/// A model resolved down to files.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Plan {
    /// The name asked for.
    pub name: String,
    /// The engine.
    pub engine: String,
    /// `owner/name`.
    pub repo: String,
    /// The revision.
    pub revision: String,
    /// Licence.
    pub licence: String,
    /// Folder under the models root.
    pub target: String,
    /// How it is installed.
    pub layout: Layout,
    /// Files, in install order (the one that makes the model visible last).
    pub files: Vec<PlannedFile>,
}

impl Plan {
    /// The plan of a named hub model.
    pub fn from_entry(m: &ModelEntry) -> Result<Self, FetchError> {
        let (Some(repo), Some(revision)) = (&m.repo, &m.revision) else {
            return Err(FetchError::NotFetchable {
                name: m.name.clone(),
                how: match &m.import {
                    Some(cmd) => format!("it is made from your own checkpoints with `{cmd}`"),
                    None => "it is not on a hub".into(),
                },
            });
        };
        let source = format!("catalog {}@{revision}", m.name);
        Ok(Plan {
            name: m.name.clone(),
            engine: m.engine.clone(),
            repo: repo.clone(),
            revision: revision.clone(),
            licence: m.licence.clone(),
            target: m.target.clone(),
            layout: Layout::Folder,
            files: m
                .files
                .iter()
                .map(|f| PlannedFile {
                    path: f.path.clone(),
                    dest: f.dest().to_string(),
                    expected: Expected {
                        sha256: f.sha256.clone(),
                        md5: None,
                        size: f.size,
                        source: source.clone(),
                    },
                })
                .collect(),
        })
    }

    /// The plan of a Piper voice from the repository's `voices.json`.
    pub fn from_piper_index(
        source: &PiperSource,
        name: &PiperName,
        index: &[u8],
    ) -> Result<Self, FetchError> {
        let origin = format!("{}@{} {}", source.repo, source.revision, source.index);
        let json: serde_json::Value =
            serde_json::from_slice(index).map_err(|e| bad(&origin, format!("not JSON: {e}")))?;
        let voices = json
            .as_object()
            .ok_or_else(|| bad(&origin, "not a JSON object of voices".into()))?;
        let Some(voice) = voices.get(&name.key) else {
            let mut same: Vec<&str> = voices
                .keys()
                .filter(|k| k.starts_with(&name.locale))
                .map(String::as_str)
                .collect();
            same.sort_unstable();
            same.truncate(12);
            return Err(FetchError::UnknownModel {
                name: name.key.clone(),
                known: if same.is_empty() {
                    format!("{origin} has no voice for {}", name.locale)
                } else {
                    format!("not in {origin}; voices for {}: {}", name.locale, same.join(", "))
                },
            });
        };
        let files = voice
            .get("files")
            .and_then(|f| f.as_object())
            .ok_or_else(|| bad(&origin, format!("{}: no files", name.key)))?;
        let dir = name.repo_dir();
        let mut planned = Vec::new();
        // Install order: model card, config, then the model that makes the voice visible.
        for (suffix, dest) in [
            ("MODEL_CARD", format!("{}.MODEL_CARD", name.key)),
            (".onnx.json", format!("{}.onnx.json", name.key)),
            (".onnx", format!("{}.onnx", name.key)),
        ] {
            let path = if suffix == "MODEL_CARD" {
                format!("{dir}/MODEL_CARD")
            } else {
                format!("{dir}/{}{suffix}", name.key)
            };
            let Some(meta) = files.get(&path) else {
                if suffix == "MODEL_CARD" {
                    continue;
                }
                return Err(bad(&origin, format!("{}: {path} is not listed", name.key)));
            };
            let size = meta.get("size_bytes").and_then(|s| s.as_u64());
            let md5 = meta
                .get("md5_digest")
                .and_then(|s| s.as_str())
                .map(str::to_ascii_lowercase);
            if md5
                .as_deref()
                .is_none_or(|m| m.len() != 32 || !m.bytes().all(|b| b.is_ascii_hexdigit()))
            {
                return Err(bad(&origin, format!("{path}: no valid md5_digest")));
            }
            planned.push(PlannedFile {
                path,
                dest,
                expected: Expected {
                    sha256: None,
                    md5,
                    size,
                    source: origin.clone(),
                },
            });
        }
        Ok(Plan {
            name: name.key.clone(),
            engine: "openvoice".into(),
            repo: source.repo.clone(),
            revision: source.revision.clone(),
            licence: source.licence.clone(),
            target: source.target.clone(),
            layout: Layout::Files,
            files: planned,
        })
    }

    /// The target folder under `root`.
    pub fn target_dir(&self, root: &Path) -> PathBuf {
        root.join(&self.target)
    }

    /// Whether every file of the model is in place under `root` (with the
    /// expected size, where known).
    pub fn is_installed(&self, root: &Path) -> bool {
        let dir = self.target_dir(root);
        self.files.iter().all(|f| {
            std::fs::metadata(dir.join(&f.dest))
                .is_ok_and(|m| m.is_file() && f.expected.size.is_none_or(|s| s == m.len()))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_builtin_catalog_parses_and_covers_the_engines() {
        let c = Catalog::builtin().unwrap();
        let conv = c.get("openvoice-converter").unwrap();
        assert_eq!(
            conv.repo.as_deref(),
            Some("seasonstudio/openvoice_tone_clone_onnx")
        );
        assert_eq!(conv.target, "openvoice/converter");
        let dests: Vec<&str> = conv.files.iter().map(|f| f.dest()).collect();
        assert_eq!(dests, ["tone_color_extract_model.onnx", "tone_clone_model.onnx"]);
        assert!(conv.files.iter().all(|f| f.sha256.is_some() && f.size.is_some()));
        let x = c.get("xtts-v2").unwrap();
        assert!(x.gated);
        assert_eq!(x.target, "xtts_v2");
        assert!(
            x.files
                .iter()
                .any(|f| f.dest() == "embeddings/text_embedding.npy")
        );
        let g = c.get("gpt-sovits").unwrap();
        assert!(
            g.import
                .as_deref()
                .unwrap()
                .contains("vctts models import gpt-sovits")
        );
        assert!(matches!(
            Plan::from_entry(g),
            Err(FetchError::NotFetchable { .. })
        ));
        assert_eq!(c.piper.repo, "rhasspy/piper-voices");
    }

    #[test]
    fn piper_names_parse() {
        let p = PiperName::parse("zh_CN-huayan-medium").unwrap();
        assert_eq!(p.repo_dir(), "zh/zh_CN/huayan/medium");
        let p = PiperName::parse("en_GB-southern_english_female-low").unwrap();
        assert_eq!(p.speaker, "southern_english_female");
        assert_eq!(PiperName::parse("de_DE-thorsten-x_low").unwrap().quality, "x_low");
        for bad in [
            "openvoice-converter",
            "zh_CN-huayan",
            "zh-CN-huayan-medium",
            "ZH_CN-huayan-medium",
            "zh_CN-../x-medium",
            "zh_CN-huayan-ultra",
            "zh_CN--medium",
        ] {
            assert!(PiperName::parse(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn resolve_names() {
        let c = Catalog::builtin().unwrap();
        assert!(matches!(c.resolve("openvoice-converter"), Ok(Resolved::Model(_))));
        assert!(matches!(
            c.resolve("de_DE-thorsten-medium"),
            Ok(Resolved::Piper(_))
        ));
        let e = c.resolve("nope").unwrap_err();
        assert_eq!(e.code(), "unknown_model");
        assert!(e.to_string().contains("openvoice-converter"), "{e}");
    }

    #[test]
    fn unsafe_catalogs_are_refused() {
        let base = Catalog::builtin().unwrap();
        let piper = serde_json::to_value(&base.piper).unwrap();
        let with =
            |model: serde_json::Value| serde_json::json!({"models": [model], "piper": piper}).to_string();
        let good = serde_json::json!({"name": "m", "engine": "openvoice", "description": "d", "licence": "l",
            "repo": "o/r", "revision": "main", "target": "openvoice/converter",
            "files": [{"path": "a.onnx"}]});
        assert!(Catalog::parse(&with(good.clone()), "t").is_ok());
        for (key, value) in [
            ("target", serde_json::json!("../etc")),
            ("target", serde_json::json!("/abs")),
            ("engine", serde_json::json!("nope")),
            ("revision", serde_json::json!("")),
            ("repo", serde_json::json!("justone")),
            ("files", serde_json::json!([{"path": "a/../../x"}])),
            ("files", serde_json::json!([{"path": "a", "sha256": "XYZ"}])),
            ("files", serde_json::json!([{"path": "a/x"}, {"path": "b/x"}])),
            ("name", serde_json::json!("en_US-x-medium")),
        ] {
            let mut m = good.clone();
            m[key] = value.clone();
            assert!(Catalog::parse(&with(m), "t").is_err(), "{key}={value}");
        }
    }

    fn index() -> Vec<u8> {
        serde_json::json!({
            "de_DE-thorsten-medium": {
                "key": "de_DE-thorsten-medium",
                "files": {
                    "de/de_DE/thorsten/medium/de_DE-thorsten-medium.onnx": {"size_bytes": 10, "md5_digest": "0123456789abcdef0123456789abcdef"},
                    "de/de_DE/thorsten/medium/de_DE-thorsten-medium.onnx.json": {"size_bytes": 3, "md5_digest": "fedcba9876543210fedcba9876543210"},
                    "de/de_DE/thorsten/medium/MODEL_CARD": {"size_bytes": 4, "md5_digest": "00000000000000000000000000000000"}
                }
            },
            "de_DE-eva_k-x_low": {"files": {}}
        })
        .to_string()
        .into_bytes()
    }

    #[test]
    fn piper_plans_come_from_the_index() {
        let c = Catalog::builtin().unwrap();
        let name = PiperName::parse("de_DE-thorsten-medium").unwrap();
        let plan = Plan::from_piper_index(&c.piper, &name, &index()).unwrap();
        assert_eq!(plan.layout, Layout::Files);
        assert_eq!(plan.target, "openvoice/base");
        let dests: Vec<&str> = plan.files.iter().map(|f| f.dest.as_str()).collect();
        assert_eq!(
            dests,
            [
                "de_DE-thorsten-medium.MODEL_CARD",
                "de_DE-thorsten-medium.onnx.json",
                "de_DE-thorsten-medium.onnx"
            ],
            "the .onnx, which makes the voice visible, goes last"
        );
        assert_eq!(plan.files[2].expected.size, Some(10));
        assert_eq!(
            plan.files[2].expected.md5.as_deref(),
            Some("0123456789abcdef0123456789abcdef")
        );

        let missing = PiperName::parse("de_DE-karl-medium").unwrap();
        let e = Plan::from_piper_index(&c.piper, &missing, &index()).unwrap_err();
        assert!(e.to_string().contains("de_DE-thorsten-medium"), "{e}");
        let broken = PiperName::parse("de_DE-eva_k-x_low").unwrap();
        assert!(Plan::from_piper_index(&c.piper, &broken, &index()).is_err());
    }
}
