//! Packing a model folder: walk it, stream it as `tar` through the
//! compressor into a [`SplitWriter`], hashing every file in the same pass
//! that archives it, then write the manifest, the checksum lists and the
//! README.
//!
//! What goes in: every folder, regular file and symlink below the source
//! folder, sorted by path. Symlinks are stored as symlinks only when their
//! target (relative, resolved lexically) stays inside the folder and does not
//! go through another symlink; any other symlink is refused with an error
//! naming it, as are FIFOs, sockets and devices, and names that are not valid
//! UTF-8 or hold control characters or backslashes. A top-level
//! `NAME.pkg.sha256` (the checksum list a restore leaves in a model folder)
//! is not packed: it describes the folder and is regenerated. File modes are
//! reduced to 0644 or 0755, owners to 0.
//!
//! The output folder must not lie inside the source. Existing package files
//! of the same name (`NAME.pkg.*`, `README.md`) are an error unless
//! [`PackOptions::overwrite`] is set. If packing fails, every file it wrote
//! is removed (and the output folder too, when packing created it).

use super::hash::{BUF_SIZE, HashReader};
use super::manifest::{FileEntry, LinkEntry, Manifest, format_utc};
use super::paths::{check_package_path, resolve_link_target};
use super::progress::{Meter, NoProgress, Progress, Stage};
use super::readme::{file_checksums, part_checksums, readme};
use super::split::SplitWriter;
use super::{
    Compression, DEFAULT_PART_SIZE, FORMAT_VERSION, MIN_PART_SIZE, README_FILE, checksums_file_name,
    io_error, manifest_file_name, part_checksums_file_name, validate_name,
};
use crate::engine::EngineKind;
use crate::error::{Error, Result};
use std::collections::HashSet;
use std::fs::{self, File};
use std::io::{self, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

/// How to pack.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PackOptions {
    /// The folder the package is written to (created if missing).
    pub out_dir: PathBuf,
    /// The package name; default: the source folder's name.
    pub name: Option<String>,
    /// The engine to record; default: the one the name (or folder name)
    /// spells (`xtts_v2`, `openvoice`, `gpt_sovits`, …), if any.
    pub engine: Option<EngineKind>,
    /// Bytes per part (at least [`MIN_PART_SIZE`]); default 100 MiB.
    pub part_size: u64,
    /// gzip (default) or zstd.
    pub compression: Compression,
    /// Compression level; default [`Compression::default_level`].
    pub level: Option<i32>,
    /// Replace an existing package of the same name in `out_dir`.
    pub overwrite: bool,
    /// The `created_at` to record; default: now.
    pub created_at: Option<SystemTime>,
}

impl PackOptions {
    /// Defaults, writing to `out_dir`.
    pub fn new(out_dir: impl Into<PathBuf>) -> Self {
        PackOptions {
            out_dir: out_dir.into(),
            name: None,
            engine: None,
            part_size: DEFAULT_PART_SIZE,
            compression: Compression::Gzip,
            level: None,
            overwrite: false,
            created_at: None,
        }
    }
}

/// What [`pack()`] wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PackOutput {
    /// The package folder.
    pub dir: PathBuf,
    /// The manifest file.
    pub manifest_path: PathBuf,
    /// The manifest written.
    pub manifest: Manifest,
}

/// Packs the folder `dir` as described in the module docs.
pub fn pack(dir: &Path, opts: &PackOptions) -> Result<PackOutput> {
    pack_with_progress(dir, opts, &mut NoProgress)
}

/// [`pack()`], reporting [`Stage::Pack`] progress over the file bytes.
pub fn pack_with_progress(dir: &Path, opts: &PackOptions, progress: &mut dyn Progress) -> Result<PackOutput> {
    if opts.part_size < MIN_PART_SIZE {
        return Err(Error::invalid(
            "part_size",
            format!(
                "{} bytes is too small; use at least {MIN_PART_SIZE}",
                opts.part_size
            ),
        ));
    }
    let level = opts.level.unwrap_or(opts.compression.default_level());
    if !opts.compression.level_range().contains(&level) {
        let r = opts.compression.level_range();
        return Err(Error::invalid(
            "level",
            format!(
                "{} level {level} is out of range {}..={}",
                opts.compression,
                r.start(),
                r.end()
            ),
        ));
    }
    let src = fs::canonicalize(dir).map_err(|e| match e.kind() {
        io::ErrorKind::NotFound => {
            Error::invalid("dir", format!("model folder {} does not exist", dir.display()))
        }
        _ => Error::io(format!("opening model folder {}", dir.display()), e),
    })?;
    if !src.is_dir() {
        return Err(Error::invalid(
            "dir",
            format!("{} is not a folder", dir.display()),
        ));
    }
    let folder_name = src.file_name().and_then(|n| n.to_str()).unwrap_or("").to_string();
    let name = opts.name.clone().unwrap_or_else(|| folder_name.clone());
    validate_name(&name)?;
    let engine = opts
        .engine
        .or_else(|| name.parse().ok())
        .or_else(|| folder_name.parse().ok());

    let out_existed = opts.out_dir.exists();
    fs::create_dir_all(&opts.out_dir)
        .map_err(|e| Error::io(format!("creating output folder {}", opts.out_dir.display()), e))?;
    let out = fs::canonicalize(&opts.out_dir)
        .map_err(|e| Error::io(format!("opening output folder {}", opts.out_dir.display()), e))?;
    if out.starts_with(&src) {
        if !out_existed {
            let _ = fs::remove_dir(&out);
        }
        return Err(Error::invalid(
            "out_dir",
            format!(
                "the output folder {} is inside the model folder {}; choose one outside it",
                opts.out_dir.display(),
                dir.display()
            ),
        ));
    }
    let stale = existing_outputs(&out, &name)?;
    if !stale.is_empty() {
        if !opts.overwrite {
            return Err(Error::invalid(
                "out_dir",
                format!(
                    "{} already holds {} ({}); remove it, choose another output folder \
                     (one per package), or pass --force to replace it",
                    opts.out_dir.display(),
                    if stale.len() == 1 {
                        "a package file"
                    } else {
                        "package files"
                    },
                    stale.join(", ")
                ),
            ));
        }
        for f in &stale {
            fs::remove_file(out.join(f)).map_err(|e| Error::io(format!("removing old {f}"), e))?;
        }
    }

    let items = walk(&src, &name)?;
    let total = items.iter().map(|i| i.size).sum();
    let mut meter = Meter::start(progress, Stage::Pack, total);
    let created_at = format_utc(opts.created_at.unwrap_or_else(SystemTime::now));
    let job = Job {
        out: &out,
        name: &name,
        engine,
        compression: opts.compression,
        level,
        part_size: opts.part_size,
        created_at,
    };
    match job.write(&items, &mut meter) {
        Ok(manifest) => {
            meter.finish();
            Ok(PackOutput {
                dir: opts.out_dir.clone(),
                manifest_path: opts.out_dir.join(manifest_file_name(&name)),
                manifest,
            })
        }
        Err(e) => {
            remove_outputs(&out, &name);
            if !out_existed {
                let _ = fs::remove_dir(&out);
            }
            Err(e)
        }
    }
}

/// The names in `out` a package called `name` would write.
fn existing_outputs(out: &Path, name: &str) -> Result<Vec<String>> {
    let prefix = format!("{name}.pkg.");
    let mut found = Vec::new();
    let entries = fs::read_dir(out).map_err(|e| Error::io(format!("listing {}", out.display()), e))?;
    for entry in entries {
        let entry = entry.map_err(|e| Error::io(format!("listing {}", out.display()), e))?;
        let file_name = entry.file_name();
        let Some(n) = file_name.to_str() else { continue };
        if n.starts_with(&prefix) || n == README_FILE {
            found.push(n.to_string());
        }
    }
    found.sort();
    Ok(found)
}

/// Best-effort removal of everything a failed pack may have written.
fn remove_outputs(out: &Path, name: &str) {
    if let Ok(found) = existing_outputs(out, name) {
        for f in found {
            let _ = fs::remove_file(out.join(f));
        }
    }
}

#[derive(Debug)]
enum Kind {
    Dir,
    File,
    Link(String),
}

#[derive(Debug)]
struct Item {
    path: String,
    fs_path: PathBuf,
    kind: Kind,
    mode: u32,
    mtime: u64,
    size: u64,
}

#[cfg(unix)]
fn is_executable(meta: &fs::Metadata) -> bool {
    use std::os::unix::fs::PermissionsExt;
    meta.permissions().mode() & 0o111 != 0
}

#[cfg(not(unix))]
fn is_executable(_meta: &fs::Metadata) -> bool {
    false
}

/// Every folder, file and symlink below `root`, sorted by package path.
fn walk(root: &Path, name: &str) -> Result<Vec<Item>> {
    let skip = checksums_file_name(name);
    let mut items = Vec::new();
    let mut pending: Vec<(PathBuf, String)> = vec![(root.to_path_buf(), String::new())];
    while let Some((dir, prefix)) = pending.pop() {
        let listing = fs::read_dir(&dir).map_err(|e| Error::io(format!("listing {}", dir.display()), e))?;
        for entry in listing {
            let entry = entry.map_err(|e| Error::io(format!("listing {}", dir.display()), e))?;
            let fs_path = entry.path();
            let file_name = entry.file_name();
            let Some(n) = file_name.to_str() else {
                return Err(Error::invalid(
                    "dir",
                    format!(
                        "cannot pack {}: its name is not valid UTF-8; rename it",
                        fs_path.display()
                    ),
                ));
            };
            let path = if prefix.is_empty() {
                n.to_string()
            } else {
                format!("{prefix}/{n}")
            };
            if let Err(why) = check_package_path(&path) {
                return Err(Error::invalid(
                    "dir",
                    format!("cannot pack {path:?}: its name {why}; rename it"),
                ));
            }
            if prefix.is_empty() && n == skip {
                continue;
            }
            let meta = fs::symlink_metadata(&fs_path)
                .map_err(|e| Error::io(format!("reading {}", fs_path.display()), e))?;
            let mtime = meta
                .modified()
                .ok()
                .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
                .map_or(0, |d| d.as_secs());
            let ft = meta.file_type();
            let (kind, mode, size) = if ft.is_dir() {
                pending.push((fs_path.clone(), path.clone()));
                (Kind::Dir, 0o755, 0)
            } else if ft.is_file() {
                let mode = if is_executable(&meta) { 0o755 } else { 0o644 };
                (Kind::File, mode, meta.len())
            } else if ft.is_symlink() {
                let target = fs::read_link(&fs_path)
                    .map_err(|e| Error::io(format!("reading symlink {}", fs_path.display()), e))?;
                let Some(target) = target.to_str() else {
                    return Err(Error::invalid(
                        "dir",
                        format!("cannot pack symlink {path:?}: its target is not valid UTF-8"),
                    ));
                };
                (Kind::Link(target.to_string()), 0o777, 0)
            } else {
                return Err(Error::invalid(
                    "dir",
                    format!(
                        "cannot pack {path:?}: it is a FIFO, socket or device; \
                         a model folder holds only files, folders and symlinks"
                    ),
                ));
            };
            items.push(Item {
                path,
                fs_path,
                kind,
                mode,
                mtime,
                size,
            });
        }
    }
    items.sort_by(|a, b| a.path.cmp(&b.path));
    let links: HashSet<&str> = items
        .iter()
        .filter(|i| matches!(i.kind, Kind::Link(_)))
        .map(|i| i.path.as_str())
        .collect();
    for item in &items {
        let Kind::Link(target) = &item.kind else { continue };
        if let Err(why) = resolve_link_target(&item.path, target, &|p| links.contains(p)) {
            return Err(Error::invalid(
                "dir",
                format!(
                    "cannot pack symlink {:?}: it {why}. Packages keep only symlinks that stay inside \
                     the folder; replace it with the file it points to",
                    item.path
                ),
            ));
        }
    }
    Ok(items)
}

/// The compressing stage of the pipeline.
enum Compressor<W: Write> {
    Gzip(flate2::write::GzEncoder<W>),
    Zstd(zstd::stream::write::Encoder<'static, W>),
}

impl<W: Write> Compressor<W> {
    fn new(compression: Compression, level: i32, inner: W) -> io::Result<Self> {
        Ok(match compression {
            Compression::Gzip => Compressor::Gzip(flate2::write::GzEncoder::new(
                inner,
                flate2::Compression::new(level as u32),
            )),
            Compression::Zstd => {
                let mut encoder = zstd::stream::write::Encoder::new(inner, level)?;
                encoder.include_checksum(true)?;
                Compressor::Zstd(encoder)
            }
        })
    }

    fn finish(self) -> io::Result<W> {
        match self {
            Compressor::Gzip(e) => e.finish(),
            Compressor::Zstd(e) => e.finish(),
        }
    }
}

impl<W: Write> Write for Compressor<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Compressor::Gzip(e) => e.write(buf),
            Compressor::Zstd(e) => e.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Compressor::Gzip(e) => e.flush(),
            Compressor::Zstd(e) => e.flush(),
        }
    }
}

/// One packing run's settings.
struct Job<'a> {
    out: &'a Path,
    name: &'a str,
    engine: Option<EngineKind>,
    compression: Compression,
    level: i32,
    part_size: u64,
    created_at: String,
}

impl Job<'_> {
    fn write(&self, items: &[Item], meter: &mut Meter<'_>) -> Result<Manifest> {
        let shown = self.out.display();
        let stream_err = |e: io::Error| io_error(format!("writing the package into {shown}"), e);
        let split = SplitWriter::new(self.out.to_path_buf(), self.name.to_string(), self.part_size);
        let compressor = Compressor::new(self.compression, self.level, split).map_err(stream_err)?;
        let mut builder = tar::Builder::new(compressor);
        let (mut dirs, mut files, mut links) = (Vec::new(), Vec::new(), Vec::new());
        for item in items {
            let mut header = tar::Header::new_gnu();
            header.set_mtime(item.mtime);
            header.set_uid(0);
            header.set_gid(0);
            header.set_mode(item.mode);
            match &item.kind {
                Kind::Dir => {
                    header.set_entry_type(tar::EntryType::Directory);
                    header.set_size(0);
                    builder
                        .append_data(&mut header, format!("{}/", item.path), io::empty())
                        .map_err(stream_err)?;
                    dirs.push(item.path.clone());
                }
                Kind::Link(target) => {
                    header.set_entry_type(tar::EntryType::Symlink);
                    header.set_size(0);
                    builder
                        .append_link(&mut header, &item.path, target)
                        .map_err(stream_err)?;
                    links.push(LinkEntry {
                        path: item.path.clone(),
                        target: target.clone(),
                    });
                }
                Kind::File => {
                    meter.item(&item.path);
                    let entry = self.append_file(&mut builder, &mut header, item, meter)?;
                    files.push(entry);
                }
            }
        }
        let compressor = builder.into_inner().map_err(stream_err)?;
        let split = compressor.finish().map_err(stream_err)?;
        let parts = split.finish().map_err(stream_err)?;
        let mut manifest = Manifest {
            format_version: FORMAT_VERSION,
            name: self.name.to_string(),
            engine: self.engine,
            tool: concat!("vctts ", env!("CARGO_PKG_VERSION")).to_string(),
            compression: self.compression,
            created_at: self.created_at.clone(),
            total_size: parts.iter().map(|p| p.size).sum(),
            unpacked_size: files.iter().map(|f: &FileEntry| f.size).sum(),
            part_size: self.part_size,
            dirs,
            files,
            links,
            parts,
            manifest_sha256: String::new(),
        };
        manifest.seal();
        self.write_small(&checksums_file_name(self.name), &file_checksums(&manifest))?;
        self.write_small(&part_checksums_file_name(self.name), &part_checksums(&manifest))?;
        self.write_small(README_FILE, &readme(&manifest))?;
        // The manifest goes last: its presence marks a complete package.
        self.write_small(&manifest_file_name(self.name), &manifest.to_json())?;
        sync_dir(self.out)?;
        Ok(manifest)
    }

    /// Streams one file into the archive, hashing it on the way.
    fn append_file<W: Write>(
        &self,
        builder: &mut tar::Builder<W>,
        header: &mut tar::Header,
        item: &Item,
        meter: &mut Meter<'_>,
    ) -> Result<FileEntry> {
        let shown = item.fs_path.display();
        let file = File::open(&item.fs_path).map_err(|e| Error::io(format!("reading {shown}"), e))?;
        let size = file
            .metadata()
            .map_err(|e| Error::io(format!("reading {shown}"), e))?
            .len();
        header.set_entry_type(tar::EntryType::Regular);
        header.set_size(size);
        let limited = BufReader::with_capacity(BUF_SIZE, file).take(size);
        let mut reader = HashReader::new(limited, Some(meter));
        builder
            .append_data(header, &item.path, &mut reader)
            .map_err(|e| io_error(format!("packing {shown} into {}", self.out.display()), e))?;
        let (read, sha256) = reader.finish();
        let now = fs::metadata(&item.fs_path).map(|m| m.len()).unwrap_or(u64::MAX);
        if read != size || now != size {
            return Err(Error::invalid(
                "dir",
                format!(
                    "{} changed while it was being packed ({size} bytes at the start); \
                     pack a folder nothing is writing to",
                    item.path
                ),
            ));
        }
        Ok(FileEntry {
            path: item.path.clone(),
            size,
            sha256,
        })
    }

    fn write_small(&self, file_name: &str, content: &str) -> Result<()> {
        let path = self.out.join(file_name);
        let write = || -> io::Result<()> {
            let mut f = File::create(&path)?;
            f.write_all(content.as_bytes())?;
            f.sync_all()
        };
        write().map_err(|e| Error::io(format!("writing {}", path.display()), e))
    }
}

/// fsyncs a folder so the names in it are durable (a no-op where folders
/// cannot be opened).
pub(crate) fn sync_dir(dir: &Path) -> Result<()> {
    #[cfg(unix)]
    {
        File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| Error::io(format!("syncing folder {}", dir.display()), e))?;
    }
    #[cfg(not(unix))]
    let _ = dir;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_are_checked_before_any_write() {
        let src = tempfile::tempdir().unwrap();
        let out = src.path().join("never");
        let mut opts = PackOptions::new(&out);
        opts.part_size = 100;
        assert!(
            pack(src.path(), &opts)
                .unwrap_err()
                .to_string()
                .contains("too small")
        );
        opts.part_size = MIN_PART_SIZE;
        opts.level = Some(10);
        assert!(
            pack(src.path(), &opts)
                .unwrap_err()
                .to_string()
                .contains("out of range")
        );
        opts.level = None;
        opts.name = Some("bad name".into());
        assert!(
            pack(src.path(), &opts)
                .unwrap_err()
                .to_string()
                .contains("package name")
        );
        assert!(!out.exists());
        let missing = PackOptions::new(src.path().join("o"));
        assert!(
            pack(&src.path().join("nope"), &missing)
                .unwrap_err()
                .to_string()
                .contains("does not exist")
        );
    }

    #[test]
    fn refuses_output_inside_the_source() {
        let src = tempfile::tempdir().unwrap();
        std::fs::write(src.path().join("a"), b"x").unwrap();
        let mut opts = PackOptions::new(src.path().join("pkg"));
        opts.name = Some("m".into());
        let e = pack(src.path(), &opts).unwrap_err();
        assert!(e.to_string().contains("inside the model folder"), "{e}");
        assert!(
            !src.path().join("pkg").exists(),
            "the refused output folder is not left behind"
        );
    }

    #[test]
    fn walk_sorts_and_skips_a_restored_checksum_list() {
        let src = tempfile::tempdir().unwrap();
        let root = src.path();
        std::fs::create_dir_all(root.join("b/c")).unwrap();
        std::fs::write(root.join("b/c/z"), b"z").unwrap();
        std::fs::write(root.join("a"), b"a").unwrap();
        std::fs::write(root.join("m.pkg.sha256"), b"old").unwrap();
        std::fs::write(root.join("b/m.pkg.sha256"), b"kept").unwrap();
        let items = walk(root, "m").unwrap();
        let paths: Vec<&str> = items.iter().map(|i| i.path.as_str()).collect();
        assert_eq!(paths, ["a", "b", "b/c", "b/c/z", "b/m.pkg.sha256"]);
    }

    #[cfg(unix)]
    #[test]
    fn walk_keeps_inside_symlinks_and_refuses_others() {
        let src = tempfile::tempdir().unwrap();
        let root = src.path();
        std::fs::create_dir(root.join("d")).unwrap();
        std::fs::write(root.join("d/f"), b"f").unwrap();
        std::os::unix::fs::symlink("d/f", root.join("inside")).unwrap();
        let items = walk(root, "m").unwrap();
        assert!(matches!(&items[2].kind, Kind::Link(t) if t == "d/f"));
        std::os::unix::fs::symlink("../../etc/passwd", root.join("d/out")).unwrap();
        let e = walk(root, "m").unwrap_err().to_string();
        assert!(e.contains("symlink \"d/out\"") && e.contains("outside"), "{e}");
    }

    #[cfg(unix)]
    #[test]
    fn walk_refuses_fifos_and_odd_names() {
        let src = tempfile::tempdir().unwrap();
        std::fs::write(src.path().join("a\\b"), b"x").unwrap();
        assert!(
            walk(src.path(), "m")
                .unwrap_err()
                .to_string()
                .contains("backslash")
        );
        let src = tempfile::tempdir().unwrap();
        let status = std::process::Command::new("mkfifo")
            .arg(src.path().join("fifo"))
            .status()
            .unwrap();
        assert!(status.success());
        assert!(walk(src.path(), "m").unwrap_err().to_string().contains("FIFO"));
    }
}
