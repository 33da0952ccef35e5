//! `vctts models …`: pack, verify, restore and list split-volume model
//! packages (SPEC §6); `fetch` (in `models_fetch.rs`) downloads from a hub. A thin layer over `vctts_core::package`: parse the
//! arguments, call the library, print the result. Progress goes to stderr:
//! bars with bytes and ETA when stderr is a terminal, a plain line every 10 %
//! otherwise (logs, CI). Results go to stdout.

use clap::{Subcommand, ValueEnum};
use indicatif::{HumanBytes, ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use vctts_core::package::{
    self, Compression, InstallState, PackOptions, Progress, ProgressEvent, RestoreOptions, Stage,
};
use vctts_core::{EngineKind, Error};

/// Pack, verify, restore and list model packages.
#[derive(Debug, Subcommand)]
pub enum ModelsCommand {
    /// Convert an engine's upstream checkpoint into its model folder (runs the
    /// project's conversion script, which needs Python with torch; without it
    /// the command prints the exact set-up commands).
    #[command(subcommand)]
    Import(ImportCommand),
    /// Pack a model folder into compressed parts with a manifest, checksum
    /// lists and a README that explains how to restore it.
    Pack {
        /// The model folder to pack, e.g. models/openvoice.
        dir: PathBuf,
        /// Bytes per part: a number with an optional unit, K, M, G, T
        /// (powers of 1024, like split(1)) or KB, MB, GB, TB (powers of 1000).
        #[arg(long, default_value = "100M", value_parser = parse_size)]
        part_size: u64,
        /// How to compress the archive: gzip restores with `tar -xz` alone,
        /// zstd is faster and needs the `zstd` tool.
        #[arg(long, value_enum, default_value_t = CompressionArg::Gzip)]
        compression: CompressionArg,
        /// Compression level: gzip 0–9 (default 6), zstd 1–19 (default 3).
        #[arg(long)]
        level: Option<i32>,
        /// The folder to write the package to (created if missing; use one
        /// folder per package, outside the model folder).
        #[arg(long, value_name = "OUTDIR")]
        out: PathBuf,
        /// The package name used in the file names. Default: the model
        /// folder's name.
        #[arg(long)]
        name: Option<String>,
        /// The engine the model is for (xtts, openvoice, gpt-sovits), recorded
        /// in the manifest. Default: guessed from the name.
        #[arg(long)]
        engine: Option<EngineKind>,
        /// Replace a package of the same name already in OUTDIR.
        #[arg(long)]
        force: bool,
    },
    /// Check a package without extracting it: the manifest, and every part's
    /// size and SHA-256.
    Verify {
        /// The package folder, or its NAME.pkg.manifest.json.
        pkgdir: PathBuf,
    },
    /// Restore a package: check the parts, extract into a temporary folder
    /// beside DEST checking every file's SHA-256, then move it into place.
    Restore {
        /// The package folder, or its NAME.pkg.manifest.json.
        pkgdir: PathBuf,
        /// The model folder to create, e.g. models/openvoice.
        #[arg(long = "to", value_name = "DEST")]
        to: PathBuf,
        /// Replace DEST if it exists and is not empty; the old folder is
        /// removed only after the new one is complete and in place.
        #[arg(long)]
        replace: bool,
        /// Skip the separate pass that checks every part before extracting
        /// (parts are still checked as they stream, before anything is moved
        /// into place).
        #[arg(long)]
        no_verify: bool,
        /// Do not leave NAME.pkg.sha256 in DEST (it lets `vctts models list`
        /// check the files later).
        #[arg(long)]
        no_checksums: bool,
    },
    /// Show which engine models a models folder holds, and what each still
    /// needs. Files are checked against a NAME.pkg.sha256 or manifest when
    /// the engine folder has one (that reads every file).
    List {
        /// The models folder, with one folder per engine: xtts_v2/,
        /// openvoice/, gpt_sovits/.
        #[arg(long, env = "VCTTS_MODELS", default_value = "./models")]
        models: PathBuf,
        /// A model catalog to list instead of the built-in one.
        #[arg(long, env = "VCTTS_CATALOG")]
        catalog: Option<PathBuf>,
    },
    /// Download models from a Hugging Face compatible hub (HF_ENDPOINT,
    /// default https://huggingface.co; HF_TOKEN for gated repositories),
    /// verify every file's checksum and install them atomically. An
    /// interrupted fetch resumes where it stopped.
    Fetch {
        /// Catalog names (see `vctts models list`: openvoice-converter,
        /// xtts-v2, …) or Piper voices as lang_REGION-name-quality
        /// (e.g. de_DE-thorsten-medium).
        #[arg(required = true, value_name = "NAME")]
        names: Vec<String>,
        /// The models folder to install into. Default: --models
        /// (VCTTS_MODELS, ./models).
        #[arg(long = "to", value_name = "ROOT")]
        to: Option<PathBuf>,
        /// Download again even if the model is installed.
        #[arg(long)]
        force: bool,
        /// A model catalog to use instead of the built-in one (e.g. an
        /// organisation's mirror with its own revisions).
        #[arg(long, env = "VCTTS_CATALOG")]
        catalog: Option<PathBuf>,
    },
}

/// `--compression` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum CompressionArg {
    /// gzip (DEFLATE).
    Gzip,
    /// Zstandard.
    Zstd,
}

impl From<CompressionArg> for Compression {
    fn from(c: CompressionArg) -> Self {
        match c {
            CompressionArg::Gzip => Compression::Gzip,
            CompressionArg::Zstd => Compression::Zstd,
        }
    }
}

/// Parses a size such as `4096`, `100M` (MiB, as `split -b`), `100MB`
/// (decimal) or `64KiB` ([`vctts_core::units::parse_size`]).
/// Zero is refused: a part must hold something.
pub fn parse_size(text: &str) -> Result<u64, String> {
    match vctts_core::units::parse_size(text)? {
        0 => Err(format!(
            "{text:?} is not a size a part can have: give at least 1 byte"
        )),
        n => Ok(n),
    }
}

/// Runs one `vctts models` command and prints its result; `models` is the
/// global models folder (`--models`).
pub fn run(cmd: ModelsCommand, models: &Path) -> ExitCode {
    let result = match cmd {
        ModelsCommand::Pack {
            dir,
            part_size,
            compression,
            level,
            out,
            name,
            engine,
            force,
        } => {
            let opts = PackOptions {
                name,
                engine,
                part_size,
                compression: compression.into(),
                level,
                overwrite: force,
                ..PackOptions::new(out)
            };
            pack(&dir, &opts)
        }
        ModelsCommand::Verify { pkgdir } => verify(&pkgdir),
        ModelsCommand::Restore {
            pkgdir,
            to,
            replace,
            no_verify,
            no_checksums,
        } => {
            let opts = RestoreOptions {
                replace,
                verify_parts: !no_verify,
                write_checksums: !no_checksums,
            };
            restore(&pkgdir, &to, &opts)
        }
        ModelsCommand::List { models, catalog } => {
            list(&models);
            crate::models_fetch::list(&models, catalog.as_deref());
            Ok(())
        }
        ModelsCommand::Import(cmd) => import(cmd, models),
        ModelsCommand::Fetch {
            names,
            to,
            force,
            catalog,
        } => {
            let root = crate::models_fetch::root_or(to, models);
            return if crate::models_fetch::fetch(&names, &root, force, catalog.as_deref()) {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            };
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            if let Some(hint) = hint(&e) {
                eprintln!("hint: {hint}");
            }
            ExitCode::FAILURE
        }
    }
}

/// What to do about an error, where the message does not already say.
fn hint(e: &Error) -> Option<&'static str> {
    match e {
        Error::Package(m) if m.starts_with("part") || m.starts_with("unexpected part") => Some(
            "copy the named part again from the original package, then check with `vctts models verify PKGDIR`",
        ),
        Error::Package(m) if m.contains("archive entry") => {
            Some("this package was not written by `vctts models pack`, or was tampered with; do not use it")
        }
        Error::Package(_) => Some("`vctts models verify PKGDIR` checks a package without extracting it"),
        Error::Io { source, .. } if source.kind() == std::io::ErrorKind::NotFound => {
            Some("check the path; `vctts models --help` shows what each command expects")
        }
        Error::Io { source, .. } if source.kind() == std::io::ErrorKind::PermissionDenied => {
            Some("check the permissions of the folder named above")
        }
        Error::Io { .. } => Some("check that the disk has room and the folders are writable"),
        _ => None,
    }
}

fn pack(dir: &Path, opts: &PackOptions) -> vctts_core::Result<()> {
    let mut progress = CliProgress::new();
    let out = package::pack_with_progress(dir, opts, &mut progress);
    progress.clear();
    let out = out?;
    let m = &out.manifest;
    let engine = m.engine.map(|e| format!(" ({e})")).unwrap_or_default();
    println!(
        "packed {}{engine}: {} files, {} → {} parts, {} ({})",
        m.name,
        m.files.len(),
        HumanBytes(m.unpacked_size),
        m.parts.len(),
        HumanBytes(m.total_size),
        m.compression
    );
    println!("  package:  {}", out.dir.display());
    println!("  manifest: {}", out.manifest_path.display());
    println!("  restore:  vctts models restore {} --to DEST", out.dir.display());
    Ok(())
}

fn verify(pkg: &Path) -> vctts_core::Result<()> {
    let mut progress = CliProgress::new();
    let report = package::verify_with_progress(pkg, &mut progress);
    progress.clear();
    let r = report?;
    let engine = r.engine.map(|e| format!(" ({e})")).unwrap_or_default();
    println!(
        "ok: package {}{engine} in {}: {} parts ({}, {}) verified; restores {} files ({})",
        r.name,
        r.dir.display(),
        r.parts,
        HumanBytes(r.total_size),
        r.compression,
        r.files,
        HumanBytes(r.unpacked_size)
    );
    Ok(())
}

fn restore(pkg: &Path, dest: &Path, opts: &RestoreOptions) -> vctts_core::Result<()> {
    let mut progress = CliProgress::new();
    let report = package::restore_with_progress(pkg, dest, opts, &mut progress);
    progress.clear();
    let r = report?;
    println!(
        "restored {} to {}: {} files ({}), every SHA-256 checked{}",
        r.name,
        r.dest.display(),
        r.files,
        HumanBytes(r.bytes),
        if r.replaced {
            "; the previous folder was replaced"
        } else {
            ""
        }
    );
    if let Some(old) = r.old_left_at {
        eprintln!(
            "warning: the previous folder could not be removed and is left at {}; delete it by hand",
            old.display()
        );
    }
    Ok(())
}

fn list(models: &Path) {
    println!("models folder: {}", models.display());
    if !models.is_dir() {
        println!("  (it does not exist; pass --models DIR or set VCTTS_MODELS)");
    }
    for m in package::list_installed(models) {
        let label = m.state.label();
        println!("{:<11} {label:<17} {}", m.engine.as_str(), m.dir.display());
        match m.state {
            InstallState::Complete => {
                let checked = if m.checked_against.is_empty() {
                    "required files present (no checksum list to check against)".to_string()
                } else {
                    format!("checksums match {}", m.checked_against.join(", "))
                };
                println!("    {} files, {}; {checked}", m.files, HumanBytes(m.size_bytes));
                if !m.missing_optional.is_empty() {
                    println!("    optional files absent: {}", m.missing_optional.join(", "));
                }
            }
            _ => println!("    {}", m.advice()),
        }
    }
}

/// Draws [`ProgressEvent`]s on stderr.
struct CliProgress {
    tty: bool,
    bar: Option<(Stage, ProgressBar)>,
    last_plain: Option<(Stage, u64)>,
}

impl CliProgress {
    fn new() -> Self {
        CliProgress {
            tty: std::io::stderr().is_terminal(),
            bar: None,
            last_plain: None,
        }
    }

    fn clear(&mut self) {
        if let Some((_, bar)) = self.bar.take() {
            bar.finish_and_clear();
        }
    }

    fn draw_bar(&mut self, e: &ProgressEvent<'_>) {
        if self.bar.as_ref().is_none_or(|(stage, _)| *stage != e.stage) {
            self.clear();
            let bar = ProgressBar::with_draw_target(Some(e.bytes_total), ProgressDrawTarget::stderr());
            let style = ProgressStyle::with_template(
                "{prefix:>9} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} ETA {eta} {wide_msg}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> ");
            bar.set_style(style);
            bar.set_prefix(e.stage.verb());
            self.bar = Some((e.stage, bar));
        }
        if let Some((_, bar)) = &self.bar {
            bar.set_position(e.bytes_done);
            bar.set_message(e.item.to_string());
        }
    }

    fn print_line(&mut self, e: &ProgressEvent<'_>) {
        let tenth = (e.bytes_done.saturating_mul(10))
            .checked_div(e.bytes_total)
            .unwrap_or(10);
        if self.last_plain == Some((e.stage, tenth)) {
            return;
        }
        self.last_plain = Some((e.stage, tenth));
        let percent = (e.bytes_done.saturating_mul(100))
            .checked_div(e.bytes_total)
            .unwrap_or(100);
        eprintln!(
            "{}: {percent:>3}% ({} of {})",
            e.stage.verb(),
            HumanBytes(e.bytes_done),
            HumanBytes(e.bytes_total)
        );
    }
}

impl Progress for CliProgress {
    fn report(&mut self, e: &ProgressEvent<'_>) {
        if self.tty {
            self.draw_bar(e);
        } else {
            self.print_line(e);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse() {
        assert_eq!(parse_size("4096"), Ok(4096));
        assert_eq!(parse_size("100M"), Ok(100 << 20));
        assert_eq!(parse_size("100m"), Ok(100 << 20));
        assert_eq!(parse_size("1G"), Ok(1 << 30));
        assert_eq!(parse_size("1.5G"), Ok(3 << 29));
        assert_eq!(parse_size("64KiB"), Ok(64 << 10));
        assert_eq!(parse_size("100MB"), Ok(100_000_000));
        assert_eq!(parse_size(" 2 GB "), Ok(2_000_000_000));
        for bad in [
            "",
            "M",
            "abc",
            "10X",
            "-5",
            "0",
            "1.2.3M",
            "99999999999999999999T",
        ] {
            assert!(parse_size(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn command_line_parses() {
        use clap::Parser;
        #[derive(Debug, Parser)]
        struct Cli {
            #[command(subcommand)]
            cmd: ModelsCommand,
        }
        let cli = Cli::try_parse_from([
            "models",
            "pack",
            "m/openvoice",
            "--out",
            "pkg",
            "--part-size",
            "1G",
            "--compression",
            "zstd",
        ])
        .unwrap();
        match cli.cmd {
            ModelsCommand::Pack {
                part_size,
                compression,
                out,
                force,
                ..
            } => {
                assert_eq!(part_size, 1 << 30);
                assert_eq!(compression, CompressionArg::Zstd);
                assert_eq!(out, PathBuf::from("pkg"));
                assert!(!force);
            }
            other => panic!("{other:?}"),
        }
        let cli = Cli::try_parse_from(["models", "restore", "pkg", "--to", "dest", "--replace"]).unwrap();
        assert!(matches!(cli.cmd, ModelsCommand::Restore { replace: true, .. }));
        assert!(
            Cli::try_parse_from(["models", "restore", "pkg"]).is_err(),
            "--to is required"
        );
        assert!(Cli::try_parse_from(["models", "pack", "d", "--out", "o", "--part-size", "lots"]).is_err());
    }
}

/// `vctts models import ENGINE …`: upstream checkpoints → model folders.
#[derive(Debug, clap::Subcommand)]
pub enum ImportCommand {
    /// Coqui XTTS-v2: the folder users download (`model.pth`, `config.json`,
    /// `vocab.json`, `speakers_xtts.pth`, optional `mel_stats.pth`) →
    /// `<ROOT>/xtts_v2/`.
    Xtts {
        /// The upstream checkpoint folder.
        dir: PathBuf,
        /// Models root to write into. Default: --models.
        #[arg(long)]
        to: Option<PathBuf>,
    },
    /// OpenVoice v2 tone color converter: `checkpoints_v2/converter`
    /// (`config.json` + `checkpoint.pth`) → `<ROOT>/openvoice/converter/`.
    Openvoice {
        /// The upstream converter folder.
        dir: PathBuf,
        /// Models root to write into. Default: --models.
        #[arg(long)]
        to: Option<PathBuf>,
    },
    /// GPT-SoVITS v2: a trained pair plus the pretrained HuBERT and RoBERTa
    /// folders → `<ROOT>/gpt_sovits/`.
    #[command(name = "gpt-sovits")]
    GptSovits {
        /// The GPT (text-to-semantic) checkpoint, `*.ckpt`.
        #[arg(long)]
        gpt: PathBuf,
        /// The SoVITS checkpoint, `*.pth`.
        #[arg(long)]
        sovits: PathBuf,
        /// The `chinese-hubert-base` folder.
        #[arg(long)]
        hubert: PathBuf,
        /// The `chinese-roberta-wwm-ext-large` folder.
        #[arg(long)]
        bert: PathBuf,
        /// Models root to write into. Default: --models.
        #[arg(long)]
        to: Option<PathBuf>,
    },
}

/// The folder holding `scripts/export/`: the working directory or one of its
/// parents, else the executable's folder or one of its parents.
fn project_root() -> PathBuf {
    let has_scripts = |d: &Path| d.join("scripts/export").is_dir();
    let from_cwd = std::env::current_dir().ok();
    let from_exe = std::env::current_exe()
        .ok()
        .and_then(|p| p.parent().map(Path::to_path_buf));
    for start in [from_cwd, from_exe].into_iter().flatten() {
        if let Some(found) = start.ancestors().find(|d| has_scripts(d)) {
            return found.to_path_buf();
        }
    }
    PathBuf::from(".")
}

fn import(cmd: ImportCommand, models: &Path) -> vctts_core::Result<()> {
    let root = |to: Option<PathBuf>| to.unwrap_or_else(|| models.to_path_buf());
    let written = match cmd {
        ImportCommand::Xtts { dir, to } => {
            vctts_engines::xtts::import::import_checkpoint(&dir, &root(to), &project_root())?
        }
        ImportCommand::Openvoice { dir, to } => vctts_engines::openvoice::import::import_converter(
            &dir,
            &root(to),
            &vctts_engines::openvoice::import::ImportOptions::default(),
        )?,
        ImportCommand::GptSovits {
            gpt,
            sovits,
            hubert,
            bert,
            to,
        } => vctts_engines::gpt_sovits::import::import(&vctts_engines::gpt_sovits::import::ImportRequest {
            gpt,
            sovits,
            hubert,
            bert,
            models_root: root(to),
            python: None,
            script: None,
        })?,
    };
    println!("imported into {}", written.display());
    Ok(())
}
