//! [`EngineKind`]: the engine families vctts knows, with their canonical
//! names. A leaf module, so voices, requests and engines can all name a kind
//! without importing each other.

use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};

/// The engine families vctts knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum EngineKind {
    /// Coqui XTTS-v2.
    #[serde(rename = "xtts")]
    Xtts,
    /// OpenVoice v2: base TTS plus tone color converter.
    #[serde(rename = "openvoice")]
    OpenVoice,
    /// GPT-SoVITS v2.
    #[serde(rename = "gpt-sovits")]
    GptSovits,
}

impl EngineKind {
    /// All kinds, in a fixed order.
    pub const ALL: [EngineKind; 3] = [EngineKind::Xtts, EngineKind::OpenVoice, EngineKind::GptSovits];

    /// The canonical name (`xtts`, `openvoice`, `gpt-sovits`).
    pub fn as_str(self) -> &'static str {
        match self {
            EngineKind::Xtts => "xtts",
            EngineKind::OpenVoice => "openvoice",
            EngineKind::GptSovits => "gpt-sovits",
        }
    }
}

impl std::fmt::Display for EngineKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad(self.as_str())
    }
}

impl std::str::FromStr for EngineKind {
    type Err = Error;
    /// Accepts the canonical names and common spellings (`xtts_v2`,
    /// `gpt_sovits`, `gptsovits`, any case).
    fn from_str(s: &str) -> Result<Self> {
        match s.trim().to_ascii_lowercase().replace('_', "-").as_str() {
            "xtts" | "xtts-v2" | "xttsv2" => Ok(EngineKind::Xtts),
            "openvoice" | "open-voice" | "openvoice-v2" => Ok(EngineKind::OpenVoice),
            "gpt-sovits" | "gptsovits" | "gpt-sovits-v2" => Ok(EngineKind::GptSovits),
            _ => Err(Error::UnknownEngine(s.to_string())),
        }
    }
}
