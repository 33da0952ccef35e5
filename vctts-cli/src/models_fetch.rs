//! `vctts models fetch NAME…` and the "fetchable" part of `vctts models
//! list`: a thin layer over `vctts::hub`. Progress goes to stderr (a bar per
//! file on a terminal, a line every 10 % otherwise); results to stdout.

use indicatif::{HumanBytes, ProgressBar, ProgressDrawTarget, ProgressStyle};
use parking_lot::Mutex;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use vctts::hub::catalog::Catalog;
use vctts::hub::fetch::{FetchEvent, FetchProgress};
use vctts::hub::{FetchError, HubConfig};

/// The catalog: `path` if given, else the built-in one.
pub fn load_catalog(path: Option<&Path>) -> Result<Catalog, FetchError> {
    match path {
        Some(p) => Catalog::load(p),
        None => Catalog::builtin(),
    }
}

/// Fetches every name into `root`; returns whether all succeeded.
pub fn fetch(names: &[String], root: &Path, force: bool, catalog: Option<&Path>) -> bool {
    let catalog = match load_catalog(catalog) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            return false;
        }
    };
    let config = HubConfig::from_env();
    let hub = match vctts::hub::default_hub(config.clone()) {
        Ok(h) => h,
        Err(e) => {
            eprintln!("error: {e}");
            return false;
        }
    };
    let rt = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return false;
        }
    };
    let mut ok = true;
    for name in names {
        let progress = CliProgress::new();
        let result = rt.block_on(vctts::hub::fetch(&catalog, &hub, root, name, force, &progress));
        progress.clear();
        match result {
            Ok(r) if r.already_installed => {
                println!(
                    "{name}: already installed in {} (use --force to fetch it again)",
                    r.target.display()
                );
            }
            Ok(r) => {
                let rec = r.record.as_ref();
                let files = rec.map(|x| x.files.len()).unwrap_or(0);
                let bytes: u64 = rec.map(|x| x.files.iter().map(|f| f.size).sum()).unwrap_or(0);
                let commit = rec
                    .and_then(|x| x.commit.as_deref())
                    .map(|c| format!(", commit {}", &c[..c.len().min(12)]))
                    .unwrap_or_default();
                println!(
                    "{name}: installed in {}: {files} files, {} from {}@{}{commit}; every file verified",
                    r.target.display(),
                    HumanBytes(bytes),
                    rec.map(|x| x.repo.as_str()).unwrap_or(""),
                    rec.map(|x| x.revision.as_str()).unwrap_or(""),
                );
                if let Some(rec) = rec {
                    println!("  licence: {}", rec.licence);
                }
                if name == "openvoice-converter" {
                    println!("  voice cloning is ready: vctts extract REF.wav --name ID");
                } else if vctts::hub::catalog::PiperName::parse(name).is_some() {
                    println!("  base voice ready: vctts synth --voice {name} --text … -o out.wav");
                }
            }
            Err(e) => {
                ok = false;
                eprintln!("error: {e}");
                if let Some(h) = e.hint() {
                    eprintln!("hint: {h}");
                }
                if e.code() == "hub_not_found" && config.endpoint != vctts::hub::DEFAULT_ENDPOINT {
                    eprintln!("hint: HF_ENDPOINT is {}", config.endpoint);
                }
            }
        }
    }
    ok
}

/// Prints the catalog's models and whether each is installed under `root`.
pub fn list(root: &Path, catalog: Option<&Path>) {
    let catalog = match load_catalog(catalog) {
        Ok(c) => c,
        Err(e) => {
            println!("fetchable models: cannot read the catalog: {e}");
            return;
        }
    };
    println!();
    println!(
        "fetchable models (vctts models fetch NAME; {} catalog; hub {}):",
        catalog.origin,
        HubConfig::from_env().endpoint
    );
    for s in vctts::hub::status(&catalog, root) {
        let m = &s.model;
        let size = match (m.size(), &m.repo) {
            (Some(b), _) => HumanBytes(b).to_string(),
            (None, Some(_)) => "size: ask the hub".to_string(),
            (None, None) => "-".to_string(),
        };
        let state = if s.installed { "installed" } else { "not installed" };
        println!(
            "  {:<20} {:<10} {:>12}  {state:<13} {}",
            m.name, m.engine, size, m.target
        );
        println!("      {}", m.description);
        println!("      licence: {}", m.licence);
        match (&m.repo, &m.import) {
            (Some(repo), _) => println!(
                "      from: {repo}@{}{}",
                m.revision.as_deref().unwrap_or("main"),
                if m.gated { " (gated: set HF_TOKEN)" } else { "" }
            ),
            (None, Some(cmd)) => println!("      not on a hub: {cmd}"),
            (None, None) => {}
        }
        if let Some(commit) = s.record.as_ref().and_then(|r| r.commit.as_deref()) {
            println!("      fetched at commit {commit}");
        }
    }
    let p = &catalog.piper;
    println!(
        "  Piper voices: {} from {}@{} into {}",
        p.description, p.repo, p.revision, p.target
    );
    println!("      licence: {}", p.licence);
    let mut voices: Vec<String> = std::fs::read_dir(root.join(&p.target))
        .map(|d| {
            d.flatten()
                .filter_map(|e| {
                    let n = e.file_name().to_string_lossy().into_owned();
                    n.strip_suffix(".onnx").map(str::to_string)
                })
                .collect()
        })
        .unwrap_or_default();
    voices.sort();
    if voices.is_empty() {
        println!("      installed: none");
    } else {
        let sized: Vec<String> = voices
            .iter()
            .map(|v| {
                let size = std::fs::metadata(root.join(&p.target).join(format!("{v}.onnx")))
                    .map(|m| HumanBytes(m.len()).to_string())
                    .unwrap_or_default();
                format!("{v} ({size})")
            })
            .collect();
        println!("      installed: {}", sized.join(", "));
    }
}

/// The default models root for `fetch --to`.
pub fn root_or(to: Option<PathBuf>, models: &Path) -> PathBuf {
    to.unwrap_or_else(|| models.to_path_buf())
}

/// Draws fetch progress on stderr.
struct CliProgress {
    tty: bool,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    bar: Option<(String, ProgressBar)>,
    last_tenth: Option<(String, u64)>,
}

impl CliProgress {
    fn new() -> Self {
        CliProgress {
            tty: std::io::stderr().is_terminal(),
            state: Mutex::default(),
        }
    }

    fn clear(&self) {
        if let Some((_, bar)) = self.state.lock().bar.take() {
            bar.finish_and_clear();
        }
    }

    fn bytes(&self, file: &str, done: u64, size: Option<u64>) {
        let mut s = self.state.lock();
        if self.tty {
            if s.bar.as_ref().is_none_or(|(f, _)| f != file) {
                if let Some((_, bar)) = s.bar.take() {
                    bar.finish_and_clear();
                }
                let bar = ProgressBar::with_draw_target(size, ProgressDrawTarget::stderr());
                let style = ProgressStyle::with_template(
                    "{prefix} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} ETA {eta}",
                )
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> ");
                bar.set_style(style);
                bar.set_prefix(file.to_string());
                s.bar = Some((file.to_string(), bar));
            }
            if let Some((_, bar)) = &s.bar {
                bar.set_position(done);
            }
        } else {
            let tenth = size
                .and_then(|t| done.saturating_mul(10).checked_div(t))
                .unwrap_or(0);
            if s.last_tenth
                .as_ref()
                .is_some_and(|(f, t)| f == file && *t == tenth)
            {
                return;
            }
            s.last_tenth = Some((file.to_string(), tenth));
            match size {
                Some(t) => eprintln!(
                    "fetching {file}: {:>3}% ({} of {})",
                    done.saturating_mul(100).checked_div(t).unwrap_or(100),
                    HumanBytes(done),
                    HumanBytes(t)
                ),
                None => eprintln!("fetching {file}: {}", HumanBytes(done)),
            }
        }
    }
}

impl FetchProgress for CliProgress {
    fn event(&self, e: FetchEvent) {
        match e {
            FetchEvent::Planned { name, files, total } => {
                let total = total.map(|t| format!(", {}", HumanBytes(t))).unwrap_or_default();
                eprintln!("fetching {name}: {files} files{total}");
            }
            FetchEvent::Bytes { file, done, size } => self.bytes(&file, done, size),
            FetchEvent::Retry {
                file,
                attempt,
                done,
                error,
            } => {
                self.clear();
                eprintln!(
                    "{file}: {error}; resuming at {} (retry {attempt})",
                    HumanBytes(done)
                );
            }
            FetchEvent::Verified { file, sha256 } => {
                self.clear();
                eprintln!("verified {file} (sha256 {})", &sha256[..16]);
            }
            FetchEvent::Verifying { .. } | FetchEvent::Installed { .. } => {}
        }
    }
}
