//! The CLI's local voice folder: one JSON file per voice (`<id>.json`) with
//! a profile per engine. Writes go to a temporary file and are renamed into
//! place, so a crash never leaves half a voice.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use vctts_core::{EngineKind, Error, Result, Voice, VoiceId, VoiceProfile};

#[derive(Debug, Serialize, Deserialize)]
struct Stored {
    id: VoiceId,
    created_at: u64,
    reference_seconds: f32,
    language: Option<String>,
    transcript: Option<String>,
    profiles: BTreeMap<EngineKind, StoredProfile>,
}

#[derive(Debug, Serialize, Deserialize)]
struct StoredProfile {
    format_version: u32,
    data: Vec<u8>,
}

/// A folder of voices.
#[derive(Debug, Clone)]
pub struct VoiceFolder {
    dir: PathBuf,
}

impl VoiceFolder {
    /// The folder at `dir` (created on first save).
    pub fn new(dir: PathBuf) -> Self {
        Self { dir }
    }

    /// Where the voices are.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn path(&self, id: &VoiceId) -> PathBuf {
        // VoiceId is validated: no separators, no "..", safe as a file name.
        self.dir.join(format!("{id}.json"))
    }

    fn read(&self, id: &VoiceId) -> Result<Option<Stored>> {
        let path = self.path(id);
        match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map(Some).map_err(|e| {
                Error::invalid(
                    "voice",
                    format!("{} is not a vctts voice file: {e}", path.display()),
                )
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(Error::io(format!("reading {}", path.display()), e)),
        }
    }

    /// The profile of voice `id` for `engine`, if stored.
    pub fn profile(&self, id: &VoiceId, engine: EngineKind) -> Result<Option<VoiceProfile>> {
        Ok(self.read(id)?.and_then(|s| {
            s.profiles.get(&engine).map(|p| VoiceProfile {
                engine,
                format_version: p.format_version,
                data: p.data.clone(),
            })
        }))
    }

    /// Stores (or adds) the profile of voice `id`.
    pub fn save(
        &self,
        id: &VoiceId,
        profile: &VoiceProfile,
        reference_seconds: f32,
        language: Option<&str>,
        transcript: Option<&str>,
    ) -> Result<()> {
        std::fs::create_dir_all(&self.dir)
            .map_err(|e| Error::io(format!("creating {}", self.dir.display()), e))?;
        let mut stored = self.read(id)?.unwrap_or_else(|| Stored {
            id: id.clone(),
            created_at: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0),
            reference_seconds,
            language: language.map(str::to_string),
            transcript: transcript.map(str::to_string),
            profiles: BTreeMap::new(),
        });
        stored.profiles.insert(
            profile.engine,
            StoredProfile {
                format_version: profile.format_version,
                data: profile.data.clone(),
            },
        );
        let bytes = serde_json::to_vec_pretty(&stored).map_err(|e| Error::Internal(e.to_string()))?;
        let path = self.path(id);
        let tmp = self.dir.join(format!(".{id}.json.tmp"));
        std::fs::write(&tmp, bytes).map_err(|e| Error::io(format!("writing {}", tmp.display()), e))?;
        std::fs::rename(&tmp, &path).map_err(|e| Error::io(format!("writing {}", path.display()), e))
    }

    /// All voices, sorted by id.
    pub fn list(&self) -> Result<Vec<Voice>> {
        let entries = match std::fs::read_dir(&self.dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(Error::io(format!("reading {}", self.dir.display()), e)),
        };
        let mut out = Vec::new();
        for entry in entries.flatten() {
            let name = entry.file_name();
            let Some(stem) = name.to_str().and_then(|n| n.strip_suffix(".json")) else {
                continue;
            };
            let Ok(id) = VoiceId::new(stem) else { continue };
            if let Some(s) = self.read(&id)? {
                out.push(Voice {
                    id: s.id,
                    name: stem.to_string(),
                    language: s.language,
                    transcript: s.transcript,
                    engines: s.profiles.keys().copied().collect(),
                    reference_seconds: s.reference_seconds,
                    created_at: s.created_at,
                });
            }
        }
        out.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn save_then_find_and_list() {
        let dir = tempfile::tempdir().unwrap();
        let f = VoiceFolder::new(dir.path().join("voices"));
        let id = VoiceId::new("alice").unwrap();
        assert!(f.profile(&id, EngineKind::OpenVoice).unwrap().is_none());
        let p = VoiceProfile {
            engine: EngineKind::OpenVoice,
            format_version: 1,
            data: vec![1, 2, 3],
        };
        f.save(&id, &p, 12.5, Some("en"), None).unwrap();
        assert_eq!(f.profile(&id, EngineKind::OpenVoice).unwrap().unwrap(), p);
        assert!(f.profile(&id, EngineKind::Xtts).unwrap().is_none());
        let l = f.list().unwrap();
        assert_eq!(l.len(), 1);
        assert_eq!(l[0].engines, vec![EngineKind::OpenVoice]);
        std::fs::write(dir.path().join("voices/bob.json"), "not json").unwrap();
        assert_eq!(
            f.profile(&VoiceId::new("bob").unwrap(), EngineKind::OpenVoice)
                .unwrap_err()
                .code(),
            "invalid_input"
        );
    }
}
