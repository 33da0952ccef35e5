//! Restoring a package: parts → decompressor → tar reader → a temporary
//! folder beside the destination, every file checked as it is written, then
//! one rename into place.
//!
//! What is refused, with an error naming the archive entry: absolute paths,
//! `..` components, entries below a symlink, symlinks whose target leaves the
//! package or goes through another symlink, hard links (vctts never writes
//! them; one whose target leaves the destination is reported as such),
//! devices and FIFOs, and any entry the manifest does not list or lists
//! differently (size, SHA-256, kind, link target). Every file, folder and
//! symlink of the manifest must appear. Symlinks are created only after every
//! file is written, so no write ever goes through one.
//!
//! The guarantee, given a destination `DEST` in folder `P`:
//! - until the restored tree is complete, fsynced and checked, nothing in `P`
//!   changes except a hidden `.DEST.restore-*` folder; any failure removes it
//!   and leaves `DEST` exactly as it was;
//! - if `DEST` does not exist, one `rename` moves the new tree in: `DEST`
//!   then either does not exist or is complete;
//! - if `DEST` exists (and is empty, or [`RestoreOptions::replace`] is set),
//!   it is renamed to a hidden `.DEST.old-*` in `P`, the new tree is renamed
//!   to `DEST`, and the old tree is removed. Between the two renames (two
//!   system calls, no data written) `DEST` does not exist; should the process
//!   die there, the old model is intact under `.DEST.old-*`. If the second
//!   rename fails, the old folder is renamed back;
//! - `P` is fsynced after the swap, so the new name survives a crash.

use super::hash::{BUF_SIZE, hex_digest};
use super::manifest::{FileEntry, Manifest};
use super::pack::sync_dir;
use super::paths::{ancestors, normalize_entry_path, resolve_link_target};
use super::progress::{Meter, NoProgress, Progress, Stage};
use super::readme::file_checksums;
use super::split::PartReader;
use super::verify::Package;
use super::{Compression, checksums_file_name, take_problem};
use crate::error::{Error, Result};
use sha2::{Digest, Sha256};
use std::collections::{HashMap, HashSet};
use std::fs::{self, File};
use std::io::{self, BufRead, BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, UNIX_EPOCH};

/// The largest zstd window a restore accepts (2^24 = 16 MiB; [`pack()`]
/// levels up to 19 use at most 2^23).
///
/// [`pack()`]: super::pack()
const ZSTD_WINDOW_LOG_MAX: u32 = 24;

/// How to restore.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RestoreOptions {
    /// Replace a destination folder that exists and is not empty (an empty
    /// one is always replaced). Default: false.
    pub replace: bool,
    /// Check every part's SHA-256 before extracting anything. Parts are
    /// checked again while they stream either way; without this a corrupt
    /// part is found only when the stream reaches its end (still before
    /// anything is moved into place). Default: true.
    pub verify_parts: bool,
    /// Leave `NAME.pkg.sha256` in the restored folder so it can be checked
    /// later (`vctts models list`, `sha256sum -c`). Default: true.
    pub write_checksums: bool,
}

impl Default for RestoreOptions {
    fn default() -> Self {
        RestoreOptions {
            replace: false,
            verify_parts: true,
            write_checksums: true,
        }
    }
}

/// What [`restore()`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RestoreReport {
    /// The package name.
    pub name: String,
    /// The restored folder (absolute).
    pub dest: PathBuf,
    /// Files written and checked.
    pub files: usize,
    /// Folders created.
    pub dirs: usize,
    /// Symlinks created.
    pub links: usize,
    /// Bytes of file content written.
    pub bytes: u64,
    /// Whether an existing folder was replaced.
    pub replaced: bool,
    /// Where the replaced folder was left because removing it failed (the
    /// new model is in place regardless); `None` normally.
    pub old_left_at: Option<PathBuf>,
}

/// Restores the package `pkg` (its folder or its manifest file) into `dest`,
/// as described in the module docs.
pub fn restore(pkg: &Path, dest: &Path, opts: &RestoreOptions) -> Result<RestoreReport> {
    restore_with_progress(pkg, dest, opts, &mut NoProgress)
}

/// [`restore()`], reporting [`Stage::Verify`] progress over the part bytes
/// (when [`RestoreOptions::verify_parts`] is set), then [`Stage::Restore`]
/// over the file bytes.
pub fn restore_with_progress(
    pkg: &Path,
    dest: &Path,
    opts: &RestoreOptions,
    progress: &mut dyn Progress,
) -> Result<RestoreReport> {
    let package = Package::open(pkg)?;
    package.check_part_files()?;
    let target = Target::prepare(dest, &package.dir, opts.replace)?;
    if opts.verify_parts {
        let mut meter = Meter::start(progress, Stage::Verify, package.manifest.total_size);
        package.hash_parts(&mut meter)?;
        meter.finish();
    }
    let m = &package.manifest;
    let tmp = tempfile::Builder::new()
        .prefix(&format!(".{}.restore-", target.file_name))
        .tempdir_in(&target.parent)
        .map_err(|e| {
            Error::io(
                format!("creating a temporary folder in {}", target.parent.display()),
                e,
            )
        })?;
    let mut meter = Meter::start(progress, Stage::Restore, m.unpacked_size);
    let stats = Extractor::new(m, tmp.path()).run(&package.dir, &mut meter)?;
    let sums = checksums_file_name(&m.name);
    if opts.write_checksums && !m.files.iter().any(|f| f.path == sums) {
        write_synced(&tmp.path().join(&sums), file_checksums(m).as_bytes())?;
    }
    sync_tree(tmp.path(), m)?;
    let (replaced, old_left_at) = target.swap_in(tmp)?;
    meter.finish();
    Ok(RestoreReport {
        name: m.name.clone(),
        dest: target.dest,
        files: stats.files,
        dirs: stats.dirs,
        links: stats.links,
        bytes: stats.bytes,
        replaced,
        old_left_at,
    })
}

/// The destination, checked and made absolute.
struct Target {
    dest: PathBuf,
    parent: PathBuf,
    file_name: String,
    existed: bool,
    mode: u32,
}

impl Target {
    fn prepare(dest: &Path, pkg_dir: &Path, replace: bool) -> Result<Target> {
        let shown = dest.display();
        let abs = std::path::absolute(dest).map_err(|e| Error::io(format!("resolving {shown}"), e))?;
        let (Some(file_name), Some(parent)) = (abs.file_name(), abs.parent()) else {
            return Err(Error::invalid("dest", format!("{shown} does not name a folder")));
        };
        let file_name = file_name.to_string_lossy().into_owned();
        fs::create_dir_all(parent).map_err(|e| Error::io(format!("creating {}", parent.display()), e))?;
        let parent =
            fs::canonicalize(parent).map_err(|e| Error::io(format!("resolving {}", parent.display()), e))?;
        let dest = parent.join(&file_name);
        let (existed, mode) = match fs::symlink_metadata(&dest) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => (false, 0o755),
            Err(e) => return Err(Error::io(format!("reading {shown}"), e)),
            Ok(meta) if meta.file_type().is_symlink() => {
                return Err(Error::invalid(
                    "dest",
                    format!("{shown} is a symlink; restore to the folder it points to instead"),
                ));
            }
            Ok(meta) if !meta.is_dir() => {
                return Err(Error::invalid(
                    "dest",
                    format!("{shown} exists and is not a folder"),
                ));
            }
            Ok(meta) => {
                let mut listing =
                    fs::read_dir(&dest).map_err(|e| Error::io(format!("listing {shown}"), e))?;
                if listing.next().is_some() && !replace {
                    return Err(Error::invalid(
                        "dest",
                        format!(
                            "{shown} exists and is not empty; pass --replace to swap it for the restored \
                             model (the old folder is removed once the new one is in place), or choose \
                             another destination"
                        ),
                    ));
                }
                let pkg = fs::canonicalize(pkg_dir)
                    .map_err(|e| Error::io(format!("resolving {}", pkg_dir.display()), e))?;
                if pkg.starts_with(&dest) {
                    return Err(Error::invalid(
                        "dest",
                        format!(
                            "the package folder {} is inside {shown}, which the restore would replace; \
                             restore to another folder or move the package first",
                            pkg_dir.display()
                        ),
                    ));
                }
                (true, dir_mode(&meta))
            }
        };
        Ok(Target {
            dest,
            parent,
            file_name,
            existed,
            mode,
        })
    }

    /// Moves the finished tree to `dest` (see the module docs). Returns
    /// whether a folder was replaced and where it was left if removing it
    /// failed.
    fn swap_in(&self, tmp: tempfile::TempDir) -> Result<(bool, Option<PathBuf>)> {
        set_dir_mode(tmp.path(), self.mode)?;
        let shown = self.dest.display();
        if !self.existed {
            fs::rename(tmp.path(), &self.dest)
                .map_err(|e| Error::io(format!("moving the model to {shown}"), e))?;
            let _ = tmp.keep();
            sync_dir(&self.parent)?;
            return Ok((false, None));
        }
        let aside = tempfile::Builder::new()
            .prefix(&format!(".{}.old-", self.file_name))
            .tempdir_in(&self.parent)
            .map_err(|e| Error::io(format!("creating a folder in {}", self.parent.display()), e))?
            .keep();
        // POSIX rename replaces the empty `aside` folder atomically; elsewhere
        // the name has to be free first.
        #[cfg(not(unix))]
        let _ = fs::remove_dir(&aside);
        if let Err(e) = fs::rename(&self.dest, &aside) {
            let _ = fs::remove_dir(&aside);
            return Err(Error::io(format!("moving the old {shown} aside"), e));
        }
        if let Err(e) = fs::rename(tmp.path(), &self.dest) {
            return Err(match fs::rename(&aside, &self.dest) {
                Ok(()) => Error::io(format!("moving the model to {shown} (the old folder is back)"), e),
                Err(back) => Error::io(
                    format!(
                        "moving the model to {shown} failed ({e}); the old folder is at {}, moving it \
                         back failed too",
                        aside.display()
                    ),
                    back,
                ),
            });
        }
        let _ = tmp.keep();
        sync_dir(&self.parent)?;
        let left = fs::remove_dir_all(&aside).err().map(|_| aside);
        Ok((true, left))
    }
}

#[cfg(unix)]
fn dir_mode(meta: &fs::Metadata) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    meta.permissions().mode() & 0o7777
}

#[cfg(not(unix))]
fn dir_mode(_meta: &fs::Metadata) -> u32 {
    0o755
}

/// Gives the new root the old folder's mode (0755 when new): temporary
/// folders are created 0700.
fn set_dir_mode(dir: &Path, mode: u32) -> Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(dir, fs::Permissions::from_mode(mode))
            .map_err(|e| Error::io(format!("setting permissions of {}", dir.display()), e))?;
    }
    #[cfg(not(unix))]
    let _ = (dir, mode);
    Ok(())
}

fn write_synced(path: &Path, content: &[u8]) -> Result<()> {
    let write = || -> io::Result<()> {
        let mut f = File::create(path)?;
        f.write_all(content)?;
        f.sync_all()
    };
    write().map_err(|e| Error::io(format!("writing {}", path.display()), e))
}

/// fsyncs every folder of the restored tree, deepest first.
fn sync_tree(root: &Path, m: &Manifest) -> Result<()> {
    for d in m.dirs.iter().rev() {
        sync_dir(&root.join(d))?;
    }
    sync_dir(root)
}

/// The decompressing stage of the pipeline.
enum Decoder<R: BufRead> {
    Gzip(Box<flate2::bufread::GzDecoder<R>>),
    Zstd(zstd::stream::read::Decoder<'static, R>),
}

impl<R: BufRead> Decoder<R> {
    fn new(compression: Compression, inner: R) -> io::Result<Self> {
        Ok(match compression {
            Compression::Gzip => Decoder::Gzip(Box::new(flate2::bufread::GzDecoder::new(inner))),
            Compression::Zstd => {
                let mut d = zstd::stream::read::Decoder::with_buffer(inner)?;
                d.window_log_max(ZSTD_WINDOW_LOG_MAX)?;
                Decoder::Zstd(d)
            }
        })
    }

    fn into_inner(self) -> R {
        match self {
            Decoder::Gzip(d) => (*d).into_inner(),
            Decoder::Zstd(d) => d.finish(),
        }
    }
}

impl<R: BufRead> Read for Decoder<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Decoder::Gzip(d) => d.read(buf),
            Decoder::Zstd(d) => d.read(buf),
        }
    }
}

/// An error while reading the package stream: a part problem, a damaged
/// compressed or tar stream, or an OS error reading a part.
fn stream_error(e: io::Error) -> Error {
    if let Some(message) = take_problem(&e) {
        return Error::Package(message);
    }
    match e.kind() {
        io::ErrorKind::InvalidData
        | io::ErrorKind::InvalidInput
        | io::ErrorKind::UnexpectedEof
        | io::ErrorKind::Other => Error::Package(format!("the archive in the parts is damaged: {e}")),
        _ => Error::io("reading the package parts", e),
    }
}

fn refuse(entry: &str, why: impl std::fmt::Display) -> Error {
    Error::Package(format!("archive entry {entry:?} is refused: {why}"))
}

#[derive(Debug, Default)]
struct Stats {
    files: usize,
    dirs: usize,
    links: usize,
    bytes: u64,
}

/// Checks archive entries against the manifest and writes them under `root`.
struct Extractor<'m> {
    manifest: &'m Manifest,
    root: &'m Path,
    files: HashMap<&'m str, (&'m FileEntry, bool)>,
    dirs: HashMap<&'m str, bool>,
    links: HashMap<&'m str, (&'m str, bool)>,
    archive_links: HashSet<String>,
    deferred_links: Vec<(String, String)>,
    buf: Vec<u8>,
    stats: Stats,
}

impl<'m> Extractor<'m> {
    fn new(manifest: &'m Manifest, root: &'m Path) -> Self {
        Extractor {
            manifest,
            root,
            files: manifest
                .files
                .iter()
                .map(|f| (f.path.as_str(), (f, false)))
                .collect(),
            dirs: manifest.dirs.iter().map(|d| (d.as_str(), false)).collect(),
            links: manifest
                .links
                .iter()
                .map(|l| (l.path.as_str(), (l.target.as_str(), false)))
                .collect(),
            archive_links: HashSet::new(),
            deferred_links: Vec::new(),
            buf: vec![0u8; BUF_SIZE],
            stats: Stats::default(),
        }
    }

    fn run(mut self, pkg_dir: &Path, meter: &mut Meter<'_>) -> Result<Stats> {
        let parts = PartReader::new(pkg_dir.to_path_buf(), self.manifest.parts.clone());
        let buffered = BufReader::with_capacity(BUF_SIZE, parts);
        let mut decoder = Decoder::new(self.manifest.compression, buffered).map_err(stream_error)?;
        {
            let mut archive = tar::Archive::new(&mut decoder);
            for entry in archive.entries().map_err(stream_error)? {
                let mut entry = entry.map_err(stream_error)?;
                self.entry(&mut entry, meter)?;
            }
        }
        // Read to the very end, so the last part's checks run too.
        io::copy(&mut decoder, &mut io::sink()).map_err(stream_error)?;
        let mut buffered = decoder.into_inner();
        io::copy(&mut buffered, &mut io::sink()).map_err(stream_error)?;
        if !buffered.get_ref().finished() {
            return Err(Error::Package("the archive ended before the last part".into()));
        }
        self.check_complete()?;
        self.create_links()?;
        Ok(self.stats)
    }

    fn entry<R: Read>(&mut self, entry: &mut tar::Entry<'_, R>, meter: &mut Meter<'_>) -> Result<()> {
        let raw = entry.path_bytes().into_owned();
        let shown = String::from_utf8_lossy(&raw).into_owned();
        let path = normalize_entry_path(&raw).map_err(|why| refuse(&shown, format!("it {why}")))?;
        if let Some(link) = ancestors(&path).find(|a| self.archive_links.contains(*a)) {
            return Err(refuse(&path, format!("it lies below the symlink {link:?}")));
        }
        use tar::EntryType as T;
        match entry.header().entry_type() {
            T::Regular | T::Continuous => self.file(entry, &path, meter),
            T::Directory => self.dir(&path),
            T::Symlink => self.symlink(entry, &path),
            T::Link => {
                let target = entry
                    .link_name_bytes()
                    .map(|t| t.into_owned())
                    .unwrap_or_default();
                let target_shown = String::from_utf8_lossy(&target).into_owned();
                match normalize_entry_path(&target) {
                    Err(why) => Err(refuse(
                        &path,
                        format!(
                            "it is a hard link whose target {target_shown:?} {why}, outside the destination"
                        ),
                    )),
                    Ok(_) => Err(refuse(
                        &path,
                        "it is a hard link; vctts packages store every file whole (re-pack with vctts)",
                    )),
                }
            }
            T::Char => Err(refuse(&path, "it is a character device")),
            T::Block => Err(refuse(&path, "it is a block device")),
            T::Fifo => Err(refuse(&path, "it is a FIFO")),
            other => Err(refuse(
                &path,
                format!("its type {other:?} is not a file, folder or symlink"),
            )),
        }
    }

    fn not_listed(&self, path: &str, kind: &str) -> Error {
        let listed = if self.files.contains_key(path) {
            "a file"
        } else if self.dirs.contains_key(path) {
            "a folder"
        } else if self.links.contains_key(path) {
            "a symlink"
        } else {
            return refuse(
                path,
                format!("the archive holds it as {kind} but the manifest does not list it"),
            );
        };
        refuse(
            path,
            format!("the archive holds it as {kind} but the manifest lists it as {listed}"),
        )
    }

    fn file<R: Read>(
        &mut self,
        entry: &mut tar::Entry<'_, R>,
        path: &str,
        meter: &mut Meter<'_>,
    ) -> Result<()> {
        let Some(&(expected, seen)) = self.files.get(path) else {
            return Err(self.not_listed(path, "a file"));
        };
        if seen {
            return Err(refuse(path, "the archive holds it twice"));
        }
        if entry.size() != expected.size {
            return Err(Error::Package(format!(
                "file {path} has {} bytes in the archive, the manifest says {}",
                entry.size(),
                expected.size
            )));
        }
        meter.item(path);
        let out_path = self.root.join(path);
        if let Some(parent) = out_path.parent() {
            fs::create_dir_all(parent).map_err(|e| Error::io(format!("creating {}", parent.display()), e))?;
        }
        let executable = entry.header().mode().map(|m| m & 0o111 != 0).unwrap_or(false);
        let mut options = File::options();
        options.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(if executable { 0o755 } else { 0o644 });
        }
        #[cfg(not(unix))]
        let _ = executable;
        let write_err = |e: io::Error| Error::io(format!("writing {}", out_path.display()), e);
        let file = options.open(&out_path).map_err(write_err)?;
        let mut out = BufWriter::with_capacity(BUF_SIZE, file);
        let mut hasher = Sha256::new();
        let mut written: u64 = 0;
        loop {
            let n = entry.read(&mut self.buf).map_err(stream_error)?;
            if n == 0 {
                break;
            }
            hasher.update(&self.buf[..n]);
            out.write_all(&self.buf[..n]).map_err(write_err)?;
            written += n as u64;
            meter.add(n as u64);
        }
        if written != expected.size {
            return Err(Error::Package(format!(
                "the archive ends inside file {path} ({written} of {} bytes)",
                expected.size
            )));
        }
        let sha256 = hex_digest(hasher);
        if sha256 != expected.sha256 {
            return Err(Error::Package(format!(
                "file {path} is corrupt: sha256 mismatch (the manifest says {}, the archive holds {sha256})",
                expected.sha256
            )));
        }
        let file = out.into_inner().map_err(|e| write_err(e.into_error()))?;
        if let Ok(mtime) = entry.header().mtime() {
            let _ = file.set_modified(UNIX_EPOCH + Duration::from_secs(mtime));
        }
        file.sync_all().map_err(write_err)?;
        self.files.insert(expected.path.as_str(), (expected, true));
        self.stats.files += 1;
        self.stats.bytes += written;
        Ok(())
    }

    fn dir(&mut self, path: &str) -> Result<()> {
        let Some((&key, seen)) = self.dirs.get_key_value(path) else {
            return Err(self.not_listed(path, "a folder"));
        };
        if *seen {
            return Err(refuse(path, "the archive holds it twice"));
        }
        let out_path = self.root.join(path);
        fs::create_dir_all(&out_path)
            .map_err(|e| Error::io(format!("creating {}", out_path.display()), e))?;
        self.dirs.insert(key, true);
        self.stats.dirs += 1;
        Ok(())
    }

    fn symlink<R: Read>(&mut self, entry: &tar::Entry<'_, R>, path: &str) -> Result<()> {
        let Some(raw) = entry.link_name_bytes() else {
            return Err(refuse(path, "it is a symlink without a target"));
        };
        let Ok(target) = std::str::from_utf8(&raw) else {
            return Err(refuse(path, "it is a symlink whose target is not valid UTF-8"));
        };
        let links = &self.links;
        resolve_link_target(path, target, &|p| links.contains_key(p))
            .map_err(|why| refuse(path, format!("it is a symlink that {why}")))?;
        let Some((&key, &(expected, seen))) = self.links.get_key_value(path) else {
            return Err(self.not_listed(path, "a symlink"));
        };
        if seen {
            return Err(refuse(path, "the archive holds it twice"));
        }
        if expected != target {
            return Err(refuse(
                path,
                format!("the archive's symlink points to {target:?}, the manifest says {expected:?}"),
            ));
        }
        self.links.insert(key, (expected, true));
        self.archive_links.insert(path.to_string());
        self.deferred_links.push((path.to_string(), target.to_string()));
        Ok(())
    }

    fn check_complete(&self) -> Result<()> {
        let missing = |kind: &str, path: &str| {
            Error::Package(format!(
                "{kind} {path} is listed in the manifest but missing from the archive"
            ))
        };
        if let Some(f) = self
            .manifest
            .files
            .iter()
            .find(|f| !self.files[f.path.as_str()].1)
        {
            return Err(missing("file", &f.path));
        }
        for d in &self.manifest.dirs {
            if !self.dirs[d.as_str()] && !self.root.join(d).is_dir() {
                return Err(missing("folder", d));
            }
        }
        if let Some(l) = self
            .manifest
            .links
            .iter()
            .find(|l| !self.links[l.path.as_str()].1)
        {
            return Err(missing("symlink", &l.path));
        }
        Ok(())
    }

    fn create_links(&mut self) -> Result<()> {
        for (path, target) in &self.deferred_links {
            let out_path = self.root.join(path);
            if let Some(parent) = out_path.parent() {
                fs::create_dir_all(parent)
                    .map_err(|e| Error::io(format!("creating {}", parent.display()), e))?;
            }
            #[cfg(unix)]
            std::os::unix::fs::symlink(target, &out_path)
                .map_err(|e| Error::io(format!("creating symlink {}", out_path.display()), e))?;
            #[cfg(not(unix))]
            {
                let _ = target;
                return Err(Error::Package(format!(
                    "symlink {path} cannot be restored on this platform"
                )));
            }
            self.stats.links += 1;
        }
        Ok(())
    }
}
