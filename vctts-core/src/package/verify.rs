//! Verifying a package without extracting it: the manifest and its seal, the
//! presence and size of every part, no stray part that `cat NAME.pkg.part_*`
//! would pick up, the generated checksum lists, and the SHA-256 of every
//! part, read in one streaming pass.

use super::hash::sha256_file;
use super::manifest::{Manifest, locate};
use super::progress::{Meter, NoProgress, Progress, Stage};
use super::readme::{file_checksums, part_checksums};
use super::{Compression, checksums_file_name, part_checksums_file_name};
use crate::engine::EngineKind;
use crate::error::{Error, Result};
use std::collections::HashSet;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

/// What [`verify()`] checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyReport {
    /// The package folder.
    pub dir: PathBuf,
    /// The manifest file.
    pub manifest_path: PathBuf,
    /// The package name.
    pub name: String,
    /// The engine recorded in the manifest.
    pub engine: Option<EngineKind>,
    /// The compression of the stream.
    pub compression: Compression,
    /// Number of parts checked.
    pub parts: usize,
    /// Bytes of all parts.
    pub total_size: u64,
    /// Number of files the package restores.
    pub files: usize,
    /// Bytes the package restores.
    pub unpacked_size: u64,
}

/// A package folder with its validated manifest.
pub(crate) struct Package {
    pub(crate) dir: PathBuf,
    pub(crate) manifest_path: PathBuf,
    pub(crate) manifest: Manifest,
}

impl Package {
    /// Finds and loads the manifest (`pkg` is the folder or the manifest file).
    pub(crate) fn open(pkg: &Path) -> Result<Package> {
        let (dir, manifest_path) = locate(pkg)?;
        let manifest = Manifest::load(&manifest_path)?;
        Ok(Package {
            dir,
            manifest_path,
            manifest,
        })
    }

    /// Every part is present with the right size, and no other part file
    /// of this package name lies in the folder.
    pub(crate) fn check_part_files(&self) -> Result<()> {
        let m = &self.manifest;
        let mut missing = Vec::new();
        for part in &m.parts {
            let path = self.dir.join(&part.name);
            match fs::metadata(&path) {
                Err(e) if e.kind() == io::ErrorKind::NotFound => missing.push(part.name.as_str()),
                Err(e) => return Err(Error::io(format!("reading part {}", path.display()), e)),
                Ok(meta) if !meta.is_file() => {
                    return Err(Error::Package(format!(
                        "part {} is not a regular file",
                        part.name
                    )));
                }
                Ok(meta) if meta.len() != part.size => {
                    let how = if meta.len() < part.size {
                        "truncated"
                    } else {
                        "too long"
                    };
                    return Err(Error::Package(format!(
                        "part {} is {how}: it has {} bytes, the manifest says {}; copy it again",
                        part.name,
                        meta.len(),
                        part.size
                    )));
                }
                Ok(_) => {}
            }
        }
        let shown = self.dir.display();
        match missing.as_slice() {
            [] => {}
            [one] => {
                return Err(Error::Package(format!(
                    "part {one} is missing from {shown}; copy it from the original package"
                )));
            }
            many => {
                return Err(Error::Package(format!(
                    "parts {} are missing from {shown} ({} of {}); copy them from the original package",
                    many.join(", "),
                    many.len(),
                    m.parts.len()
                )));
            }
        }
        let known: HashSet<&str> = m.parts.iter().map(|p| p.name.as_str()).collect();
        let prefix = format!("{}.pkg.part_", m.name);
        let listing = fs::read_dir(&self.dir).map_err(|e| Error::io(format!("listing {shown}"), e))?;
        let mut extra = Vec::new();
        for entry in listing {
            let entry = entry.map_err(|e| Error::io(format!("listing {shown}"), e))?;
            let file_name = entry.file_name();
            let n = file_name.to_string_lossy();
            if n.starts_with(&prefix) && !known.contains(n.as_ref()) {
                extra.push(n.into_owned());
            }
        }
        extra.sort();
        if let Some(first) = extra.first() {
            return Err(Error::Package(format!(
                "unexpected part {first} in {shown}: the manifest lists {} parts and `cat {prefix}*` would \
                 include it; remove it",
                m.parts.len()
            )));
        }
        Ok(())
    }

    /// Reads every part once and compares its SHA-256 with the manifest.
    pub(crate) fn hash_parts(&self, meter: &mut Meter<'_>) -> Result<()> {
        for part in &self.manifest.parts {
            meter.item(&part.name);
            let path = self.dir.join(&part.name);
            let (size, sha256) = sha256_file(&path, Some(meter))
                .map_err(|e| Error::io(format!("reading part {}", path.display()), e))?;
            if size != part.size {
                return Err(Error::Package(format!(
                    "part {} changed while it was being verified ({size} bytes, the manifest says {})",
                    part.name, part.size
                )));
            }
            if sha256 != part.sha256 {
                return Err(Error::Package(format!(
                    "part {} is corrupt: sha256 mismatch (expected {}, found {sha256}); copy it again",
                    part.name, part.sha256
                )));
            }
        }
        Ok(())
    }

    /// The generated checksum lists, where present, still match the manifest.
    fn check_lists(&self) -> Result<()> {
        let m = &self.manifest;
        for (file_name, expected) in [
            (checksums_file_name(&m.name), file_checksums(m)),
            (part_checksums_file_name(&m.name), part_checksums(m)),
        ] {
            let path = self.dir.join(&file_name);
            match fs::read_to_string(&path) {
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(Error::io(format!("reading {}", path.display()), e)),
                Ok(text) if text != expected => {
                    return Err(Error::Package(format!(
                        "{file_name} does not match the manifest; copy it again from the original package \
                         (or delete it: the manifest alone is enough for vctts)"
                    )));
                }
                Ok(_) => {}
            }
        }
        Ok(())
    }
}

/// Verifies the package in `pkg` (its folder or its manifest file). Fails
/// with [`Error::Package`] naming the first problem: a damaged or edited
/// manifest, a missing part ("part NAME.pkg.part_ac is missing …"), a part of
/// the wrong size, a corrupt part ("part NAME.pkg.part_ac is corrupt: sha256
/// mismatch …"), a stray part, or a checksum list that disagrees.
pub fn verify(pkg: &Path) -> Result<VerifyReport> {
    verify_with_progress(pkg, &mut NoProgress)
}

/// [`verify()`], reporting [`Stage::Verify`] progress over the part bytes.
pub fn verify_with_progress(pkg: &Path, progress: &mut dyn Progress) -> Result<VerifyReport> {
    let package = Package::open(pkg)?;
    package.check_part_files()?;
    package.check_lists()?;
    let m = &package.manifest;
    let mut meter = Meter::start(progress, Stage::Verify, m.total_size);
    package.hash_parts(&mut meter)?;
    meter.finish();
    Ok(VerifyReport {
        dir: package.dir.clone(),
        manifest_path: package.manifest_path.clone(),
        name: m.name.clone(),
        engine: m.engine,
        compression: m.compression,
        parts: m.parts.len(),
        total_size: m.total_size,
        files: m.files.len(),
        unpacked_size: m.unpacked_size,
    })
}
