//! What each engine's model folder must hold. These lists live here and only
//! here; [`list_installed`](super::list_installed) and anything else that
//! asks "is this model complete?" read them.

use crate::engine::EngineKind;
use std::path::Path;

/// One thing a model folder must (or may) hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Requirement {
    /// A regular file at this `/`-separated path.
    File(&'static str),
    /// At least one `*.onnx` model in this folder, each with its `.onnx.json`
    /// config beside it (Piper voices).
    OnnxWithConfig(&'static str),
}

impl Requirement {
    /// A short human description, e.g. `base/*.onnx + .onnx.json`.
    pub fn describe(&self) -> String {
        match self {
            Requirement::File(p) => (*p).to_string(),
            Requirement::OnnxWithConfig(d) => format!("{d}/*.onnx + .onnx.json"),
        }
    }

    /// What of this requirement is absent in the model folder `dir`; empty
    /// when it is met.
    pub fn missing_in(&self, dir: &Path) -> Vec<String> {
        match self {
            Requirement::File(p) => {
                if dir.join(p).is_file() {
                    Vec::new()
                } else {
                    vec![(*p).to_string()]
                }
            }
            Requirement::OnnxWithConfig(d) => {
                let mut models: Vec<String> = std::fs::read_dir(dir.join(d))
                    .into_iter()
                    .flatten()
                    .flatten()
                    .filter_map(|e| e.file_name().to_str().map(str::to_string))
                    .filter(|n| n.ends_with(".onnx") && dir.join(d).join(n).is_file())
                    .collect();
                models.sort();
                if models.is_empty() {
                    return vec![format!(
                        "{d}/*.onnx (a base voice model with its .onnx.json config)"
                    )];
                }
                models
                    .iter()
                    .map(|m| format!("{d}/{m}.json"))
                    .filter(|config| !dir.join(config).is_file())
                    .collect()
            }
        }
    }
}

/// The folder name and file requirements of one engine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EngineLayout {
    /// The engine.
    pub kind: EngineKind,
    /// Its folder under the models directory.
    pub folder: &'static str,
    /// What it cannot run without.
    pub required: &'static [Requirement],
    /// What it can use when present.
    pub optional: &'static [Requirement],
}

impl EngineLayout {
    /// Required items absent from `dir`.
    pub fn missing(&self, dir: &Path) -> Vec<String> {
        self.required.iter().flat_map(|r| r.missing_in(dir)).collect()
    }

    /// Optional items absent from `dir`.
    pub fn missing_optional(&self, dir: &Path) -> Vec<String> {
        self.optional.iter().flat_map(|r| r.missing_in(dir)).collect()
    }
}

/// Every engine's layout, in [`EngineKind::ALL`] order.
pub static ENGINE_LAYOUTS: [EngineLayout; 3] = [
    EngineLayout {
        kind: EngineKind::Xtts,
        folder: "xtts_v2",
        required: &[
            Requirement::File("conditioning_encoder.onnx"),
            Requirement::File("speaker_encoder.onnx"),
            Requirement::File("gpt_model.onnx"),
            Requirement::File("hifigan_vocoder.onnx"),
            Requirement::File("metadata.json"),
        ],
        optional: &[],
    },
    EngineLayout {
        kind: EngineKind::OpenVoice,
        folder: "openvoice",
        required: &[Requirement::OnnxWithConfig("base")],
        optional: &[
            Requirement::File("converter/tone_color_extract_model.onnx"),
            Requirement::File("converter/tone_clone_model.onnx"),
        ],
    },
    EngineLayout {
        kind: EngineKind::GptSovits,
        folder: "gpt_sovits",
        required: &[
            Requirement::File("ssl.onnx"),
            Requirement::File("bert.onnx"),
            Requirement::File("t2s_encoder.onnx"),
            Requirement::File("t2s_fs_decoder.onnx"),
            Requirement::File("t2s_s_decoder.onnx"),
            Requirement::File("vits.onnx"),
        ],
        optional: &[],
    },
];

/// The layout of `kind`.
pub fn layout(kind: EngineKind) -> &'static EngineLayout {
    ENGINE_LAYOUTS
        .iter()
        .find(|l| l.kind == kind)
        .expect("ENGINE_LAYOUTS covers every EngineKind")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_has_one_layout() {
        for kind in EngineKind::ALL {
            assert_eq!(layout(kind).kind, kind);
            assert_eq!(ENGINE_LAYOUTS.iter().filter(|l| l.kind == kind).count(), 1);
        }
        assert_eq!(layout(EngineKind::Xtts).folder, "xtts_v2");
        assert_eq!(layout(EngineKind::GptSovits).folder, "gpt_sovits");
    }

    #[test]
    fn piper_voices_need_their_configs() {
        let dir = tempfile::tempdir().unwrap();
        let ov = layout(EngineKind::OpenVoice);
        assert_eq!(
            ov.missing(dir.path()),
            ["base/*.onnx (a base voice model with its .onnx.json config)"]
        );
        std::fs::create_dir(dir.path().join("base")).unwrap();
        std::fs::write(dir.path().join("base/en.onnx"), b"m").unwrap();
        std::fs::write(dir.path().join("base/de.onnx"), b"m").unwrap();
        std::fs::write(dir.path().join("base/de.onnx.json"), b"{}").unwrap();
        assert_eq!(ov.missing(dir.path()), ["base/en.onnx.json"]);
        std::fs::write(dir.path().join("base/en.onnx.json"), b"{}").unwrap();
        assert!(ov.missing(dir.path()).is_empty());
        assert_eq!(ov.missing_optional(dir.path()).len(), 2);
    }

    #[test]
    fn plain_files() {
        let dir = tempfile::tempdir().unwrap();
        let xtts = layout(EngineKind::Xtts);
        assert_eq!(xtts.missing(dir.path()).len(), 5);
        std::fs::write(dir.path().join("metadata.json"), b"{}").unwrap();
        std::fs::create_dir(dir.path().join("gpt_model.onnx")).unwrap();
        let missing = xtts.missing(dir.path());
        assert_eq!(missing.len(), 4);
        assert!(
            missing.contains(&"gpt_model.onnx".to_string()),
            "a folder is not the file"
        );
    }
}
