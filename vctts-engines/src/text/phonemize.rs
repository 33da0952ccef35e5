//! IPA phonemes from espeak-ng, run as a subprocess (so the library stays
//! MIT/Apache: espeak-ng is GPL and is never linked).
//!
//! The output follows Piper's convention: words separated by spaces, stress
//! marks kept, and each clause's punctuation (`, . ; : ! ?`) kept in place,
//! e.g. `"Hello, world!"` → `"həlˈoʊ, wˈɜːld!"`.
//!
//! How a batch maps back (the invariant everything here protects): espeak-ng
//! prints one line per clause and drops punctuation, and it may cut a line
//! into several clauses of its own (`Mr. Smith` → two lines). So each
//! sentence is split into clauses here, each clause's trailing punctuation is
//! remembered, and the clauses go to a long-lived espeak-ng process one line
//! each, each followed by a sentinel line ([`super::espeak_pool`]), which maps
//! every clause's output back to it exactly. Clauses too long for one line
//! (or a voice the pool cannot serve) go to a one-off process instead,
//! separated by blank lines. A blank input line always comes out as exactly one empty
//! output line, and espeak-ng never joins text across it, so the output splits
//! back into one group per clause at the empty lines (a group of several lines
//! is one clause that espeak-ng cut further: its lines are joined with spaces).
//! Clauses without any letter or digit are not sent at all (espeak-ng would
//! answer them with an empty line, which would read as a separator). If the
//! number of groups still differs from the number of clauses, the batch is
//! redone with one process per clause, which cannot misalign. Every clause's
//! text is sanitised first: line breaks and control characters become
//! spaces, and `[`/`]` are removed (espeak-ng reads `[[...]]` as raw phoneme
//! codes).
//!
//! Equal to piper-tts (the reference of Piper's voice format; checked on a
//! 339-sentence corpus by `tests/piper_ids.rs`), given espeak-ng 1.52's data
//! ([`Espeak::with_data`]): clause breaks follow espeak-ng's reading (a full
//! stop before a lower-case word or followed by `, ; :` is an abbreviation's;
//! an ellipsis ends a clause with no mark and no space after it), every
//! clause ending in `. ! ?` closes an utterance
//! ([`Espeak::phonemize_utterances`]), and for English the link phoneme that
//! espeak-ng 1.51's `--ipa` leaves out is restored as `ʲ` from its `-x`
//! mnemonics (a second reading of the same batch, by a second process at
//! the same time).
//!
//! These functions block (they wait for a child process): call them from the
//! engine's own threads, never from an async task.

use std::ffi::OsString;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::{Arc, OnceLock};

use vctts_core::{Error, Result};

use super::espeak_pool::{MAX_LINE_BYTES, Pool};
use super::split::is_closer;

/// Environment variable naming the espeak-ng binary to use.
pub const ESPEAK_ENV: &str = "VCTTS_ESPEAK";
/// Environment variable naming the folder that holds the `espeak-ng-data` to use.
pub const ESPEAK_DATA_ENV: &str = "VCTTS_ESPEAK_DATA";

/// espeak-ng's speaking rate (words per minute, `-s`) while it reads for
/// phonemes. `-q` keeps espeak-ng from playing its speech but not from
/// making it: every clause read is also synthesized, and that synthesis was
/// most of the time espeak-ng took. The phonemes it prints are fixed before
/// the rate is used (the rate sets lengths and pitch, never which phonemes),
/// so the fastest rate below 450, where espeak-ng starts a second speed-up
/// pass over the wave, changes nothing that is read and makes less wave.
/// Measured with a pooled process (one line and its sentinel line): a short
/// sentence took 1.8 ms at espeak-ng's default rate (175) and 0.6 ms at
/// 400, a line of 800 characters 25 and 12 ms.
pub(crate) const READING_RATE: &str = "400";

/// The arguments of one espeak-ng reading in `mode` (`--ipa`, or `-x` for
/// its own mnemonics) with `voice`, one line in and its answer out.
fn reading_args<'a>(mode: &'a str, voice: &'a str) -> [&'a str; 8] {
    ["-q", "-b", "1", "-s", READING_RATE, mode, "-v", voice]
}

/// Hint appended to "not found" errors.
const INSTALL_HINT: &str = "run scripts/setup.sh or apt-get install espeak-ng";

/// A located espeak-ng binary.
#[derive(Debug, Clone)]
pub struct Espeak {
    binary: PathBuf,
    /// The folder holding `espeak-ng-data` (`--path`); `None` = the binary's own.
    data: Option<PathBuf>,
    /// `espeak-ng --voices`, read once on first use.
    voices: OnceLock<Vec<VoiceEntry>>,
    /// Long-lived processes for this binary and data (shared by clones).
    pool: Arc<Pool>,
}

/// One row of `espeak-ng --voices`: every name espeak-ng accepts for `-v`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct VoiceEntry {
    language: String,
    name: String,
    file: String,
    other_languages: Vec<String>,
}

impl VoiceEntry {
    fn matches(&self, wanted: &str) -> bool {
        let eq = |s: &str| s.eq_ignore_ascii_case(wanted);
        eq(&self.language)
            || eq(&self.name)
            || eq(&self.file)
            || self.file.rsplit('/').next().is_some_and(eq)
            || self.other_languages.iter().any(|l| eq(l))
    }
}

impl Espeak {
    /// Finds espeak-ng: env VCTTS_ESPEAK (injected through a lookup fn for tests, see STYLE.md), then PATH.
    /// Error::ModelNotInstalled("espeak-ng not found (tried ...): run scripts/setup.sh or apt-get install espeak-ng").
    pub fn locate() -> Result<Self> {
        Self::locate_with(|key| std::env::var_os(key))
    }

    /// [`Espeak::locate`] with the environment read through `env`. When
    /// `VCTTS_ESPEAK` is set it must name an executable file: a wrong explicit
    /// setting is an error, not a reason to pick some other binary from `PATH`.
    /// `VCTTS_ESPEAK_DATA`, when set, is passed as `--path` ([`Espeak::with_data`]).
    pub fn locate_with(env: impl Fn(&str) -> Option<OsString>) -> Result<Self> {
        let found = Self::locate_binary(&env)?;
        Ok(match env(ESPEAK_DATA_ENV).filter(|v| !v.is_empty()) {
            Some(data) => found.with_data(PathBuf::from(data)),
            None => found,
        })
    }

    fn locate_binary(env: &impl Fn(&str) -> Option<OsString>) -> Result<Self> {
        if let Some(value) = env(ESPEAK_ENV).filter(|v| !v.is_empty()) {
            let path = PathBuf::from(value);
            if is_executable(&path) {
                return Ok(Self::with_binary(path));
            }
            return Err(not_found(&format!(
                "{ESPEAK_ENV}={} (not an executable file)",
                path.display()
            )));
        }
        let mut tried = format!("{ESPEAK_ENV} (unset)");
        match env("PATH").filter(|p| !p.is_empty()) {
            Some(path) => {
                for dir in std::env::split_paths(&path) {
                    let candidate = dir.join("espeak-ng");
                    if !dir.as_os_str().is_empty() && is_executable(&candidate) {
                        return Ok(Self::with_binary(candidate));
                    }
                }
                tried.push_str(&format!(", espeak-ng in PATH={}", path.to_string_lossy()));
            }
            None => tried.push_str(", PATH (unset)"),
        }
        Err(not_found(&tried))
    }

    /// Uses `path` as the espeak-ng binary, unchecked (a wrong path fails on first use).
    pub fn with_binary(path: PathBuf) -> Self {
        Espeak {
            binary: path,
            data: None,
            voices: OnceLock::new(),
            pool: Arc::new(new_pool()),
        }
    }

    /// Uses the `espeak-ng-data` folder inside `parent` (espeak-ng's `--path`)
    /// instead of the one the binary was built with, e.g. the data Piper
    /// voices were trained with (see `models/openvoice/README.md`).
    pub fn with_data(mut self, parent: PathBuf) -> Self {
        self.data = Some(parent);
        self.voices = OnceLock::new();
        self.pool = Arc::new(new_pool());
        self
    }

    /// The `--path` given to espeak-ng, if any.
    pub fn data(&self) -> Option<&Path> {
        self.data.as_deref()
    }

    /// The espeak-ng binary this uses.
    pub fn binary(&self) -> &Path {
        &self.binary
    }

    /// IPA phonemes of each sentence, in Piper's convention: words separated by spaces, stress marks kept, and
    /// the sentence's punctuation (, . ; : ! ? and the like) kept in place, e.g. "Hello, world!" ->
    /// "həlˈoʊ, wˈɜːld!". One espeak-ng process serves the whole batch (`espeak-ng -q --ipa -v <voice>`
    /// reading stdin); see the module docs for how output lines are mapped back to clauses.
    ///
    /// The result has one entry per sentence, in order; a sentence without
    /// anything to pronounce gives an empty string. Errors: a malformed voice
    /// name is [`Error::InvalidInput`], a voice espeak-ng does not know is
    /// [`Error::UnsupportedLanguage`], a failing process is [`Error::Inference`]
    /// with its stderr.
    pub fn phonemize(&self, voice: &str, sentences: &[String]) -> Result<Vec<String>> {
        Ok(self
            .phonemize_utterances(voice, sentences)?
            .into_iter()
            .map(|u| u.join(" "))
            .collect())
    }

    /// Like [`Espeak::phonemize`], but each sentence's phonemes are further
    /// cut into utterances the way Piper cuts them: after every clause that
    /// espeak-ng ends as a sentence (a clause ending in `.`, `!` or `?`).
    /// Piper speaks each utterance as one model input (BOS … EOS), so a text
    /// such as `Mr. Smith left.` is two utterances, `mˈɪstɚ.` and
    /// `smˈɪθ lˈɛft.`, as espeak-ng reads it. A sentence with nothing to say
    /// gives an empty list.
    pub fn phonemize_utterances(&self, voice: &str, sentences: &[String]) -> Result<Vec<Vec<String>>> {
        validate_voice(voice)?;
        let clauses: Vec<Vec<Clause>> = sentences.iter().map(|s| split_clauses(s)).collect();
        let spoken: Vec<&str> = clauses
            .iter()
            .flatten()
            .filter(|c| !c.text.is_empty())
            .map(|c| c.text.as_str())
            .collect();
        let mut phonemes = if spoken.is_empty() {
            Vec::new()
        } else {
            self.phonemize_batch(voice, &spoken)?
        };
        if phonemes.len() != spoken.len() {
            tracing::warn!(
                clauses = spoken.len(),
                groups = phonemes.len(),
                voice,
                "espeak-ng output did not map back to the clauses of the batch; phonemizing clause by clause"
            );
            phonemes = spoken
                .iter()
                .map(|clause| self.phonemize_one(voice, clause))
                .collect::<Result<_>>()?;
        }
        let mut phonemes = phonemes.into_iter();
        Ok(clauses
            .iter()
            .map(|sentence| {
                let mut utterances = Vec::new();
                let mut out = String::new();
                let mut glued = false;
                for clause in sentence {
                    let ipa = if clause.text.is_empty() {
                        String::new()
                    } else {
                        phonemes.next().unwrap_or_default()
                    };
                    if ipa.is_empty() {
                        // Punctuation with nothing spoken before it in this clause.
                        if !out.is_empty() {
                            out.push_str(&clause.punct);
                        }
                    } else {
                        if !out.is_empty() && !glued {
                            out.push(' ');
                        }
                        out.push_str(&ipa);
                        out.push_str(&clause.punct);
                    }
                    glued = clause.glue;
                    if !out.is_empty() && clause.punct.contains(['.', '!', '?']) {
                        utterances.push(std::mem::take(&mut out));
                    }
                }
                if !out.is_empty() {
                    utterances.push(out);
                }
                utterances
            })
            .collect())
    }

    /// Voices espeak-ng knows (`espeak-ng --voices`), to validate a language early.
    ///
    /// Matches, ignoring ASCII case, a voice's language (`en-us`), name,
    /// file (`gmw/en-US` or `en-US`) or one of its other languages (`en`); a
    /// variant suffix (`en-us+f3`) is ignored. The list is read once.
    pub fn has_voice(&self, voice: &str) -> Result<bool> {
        validate_voice(voice)?;
        let base = voice.split('+').next().unwrap_or(voice);
        Ok(self.voices()?.iter().any(|v| v.matches(base)))
    }

    fn voices(&self) -> Result<&[VoiceEntry]> {
        if let Some(v) = self.voices.get() {
            return Ok(v);
        }
        let output = self
            .command()
            .arg("--voices")
            .stdin(Stdio::null())
            .output()
            .map_err(|e| self.spawn_error(e))?;
        if !output.status.success() {
            return Err(self.process_error("--voices", &output));
        }
        let parsed = parse_voices(&String::from_utf8_lossy(&output.stdout));
        Ok(self.voices.get_or_init(|| parsed))
    }

    /// Phonemes of the `clauses`, one entry per output group (the caller
    /// checks the count): one process reads them, or two at once where the
    /// voice needs the `-x` mnemonics too.
    fn phonemize_batch(&self, voice: &str, clauses: &[&str]) -> Result<Vec<String>> {
        if !links_voice(voice) {
            return self.groups(voice, clauses, "--ipa");
        }
        // The two readings come from two processes at once: espeak-ng takes
        // about a millisecond per clause, so a 10 s text waited 20 ms for
        // both in turn and 10 ms now.
        let (groups, mnemonics) = std::thread::scope(|s| {
            let x = s.spawn(|| self.groups(voice, clauses, "-x"));
            let ipa = self.groups(voice, clauses, "--ipa");
            let x = x
                .join()
                .unwrap_or_else(|_| Err(Error::Internal("espeak-ng -x reader panicked".into())));
            (ipa, x)
        });
        let (groups, mnemonics) = (groups?, mnemonics?);
        if mnemonics.len() != groups.len() {
            return Ok(groups);
        }
        Ok(groups
            .iter()
            .zip(&mnemonics)
            .map(|(ipa, x)| add_links(ipa, x))
            .collect())
    }

    /// The output of `clauses` in `mode` (`--ipa` or `-x`), one group per
    /// clause: from a pooled process when every clause fits one line (exact by
    /// construction), else from a one-off process reading the clauses separated
    /// by blank lines (the caller checks the count). A pooled process that does
    /// not answer in time is an error; any other pool failure (e.g. a voice
    /// espeak-ng refuses) falls back to a one-off process, which reports it.
    fn groups(&self, voice: &str, clauses: &[&str], mode: &str) -> Result<Vec<String>> {
        if clauses.iter().all(|c| c.len() <= MAX_LINE_BYTES) {
            let command = || {
                let mut cmd = self.command();
                cmd.args(reading_args(mode, voice));
                cmd
            };
            match self.pool.lines(voice, mode, command, clauses) {
                Ok(lines) => return Ok(lines.iter().map(|l| clean_ipa(&l.join(" "))).collect()),
                Err(e @ Error::Timeout(_)) => return Err(e),
                Err(e) => {
                    tracing::debug!(error = %e, voice, mode, "pooled espeak-ng failed; using a one-off process")
                }
            }
        }
        let mut input = String::with_capacity(clauses.iter().map(|c| c.len() + 2).sum());
        for (i, clause) in clauses.iter().enumerate() {
            if i > 0 {
                input.push_str("\n\n");
            }
            input.push_str(clause);
        }
        input.push('\n');
        Ok(group_lines(&self.run_mode(voice, &input, mode)?))
    }

    /// Process ids of the idle pooled espeak-ng processes (tests kill one to
    /// check that it is replaced).
    pub fn idle_process_ids(&self) -> Vec<u32> {
        self.pool.idle_pids()
    }

    /// One clause alone (the fallback path), with the same link marks as a batch.
    fn phonemize_one(&self, voice: &str, clause: &str) -> Result<String> {
        let input = format!("{clause}\n");
        let ipa = join_lines(&self.run(voice, &input)?);
        if !links_voice(voice) {
            return Ok(ipa);
        }
        let x = join_lines(&self.run_mode(voice, &input, "-x")?);
        Ok(add_links(&ipa, &x))
    }

    fn command(&self) -> Command {
        let mut cmd = Command::new(&self.binary);
        if let Some(data) = &self.data {
            let mut arg = OsString::from("--path=");
            arg.push(data);
            cmd.arg(arg);
        }
        cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
        cmd
    }

    /// Runs `espeak-ng -q -b 1 -s 400 --ipa -v <voice>` on `input`, returning stdout.
    fn run(&self, voice: &str, input: &str) -> Result<String> {
        self.run_mode(voice, input, "--ipa")
    }

    /// Runs `espeak-ng -q -b 1 -s 400 <mode> -v <voice>` (`--ipa`, or `-x` for
    /// espeak-ng's own phoneme mnemonics) on `input`, returning stdout.
    fn run_mode(&self, voice: &str, input: &str, mode: &str) -> Result<String> {
        let mut child = self
            .command()
            .args(reading_args(mode, voice))
            .stdin(Stdio::piped())
            .spawn()
            .map_err(|e| self.spawn_error(e))?;
        let mut stdin = child
            .stdin
            .take()
            .ok_or_else(|| Error::Internal("espeak-ng stdin was not captured".into()))?;
        let input = input.to_owned();
        // Write on another thread: espeak-ng answers while it reads, and a full stdout pipe would
        // otherwise block both sides.
        let writer = std::thread::spawn(move || stdin.write_all(input.as_bytes()));
        let output = child
            .wait_with_output()
            .map_err(|e| Error::io(format!("waiting for {}", self.binary.display()), e))?;
        let written = writer
            .join()
            .map_err(|_| Error::Internal("espeak-ng stdin writer panicked".into()))?;
        if !output.status.success() {
            if let Ok(false) = self.has_voice(voice) {
                return Err(Error::UnsupportedLanguage {
                    language: voice.to_owned(),
                    engine: "espeak-ng".to_owned(),
                    supported: "the voices `espeak-ng --voices` lists".to_owned(),
                });
            }
            return Err(self.process_error(&format!("-v {voice}"), &output));
        }
        written.map_err(|e| Error::io(format!("writing text to {}", self.binary.display()), e))?;
        String::from_utf8(output.stdout)
            .map_err(|_| Error::Inference(format!("{} printed invalid UTF-8", self.binary.display())))
    }

    fn spawn_error(&self, e: std::io::Error) -> Error {
        if e.kind() == std::io::ErrorKind::NotFound {
            not_found(&self.binary.display().to_string())
        } else {
            Error::io(format!("starting {}", self.binary.display()), e)
        }
    }

    fn process_error(&self, what: &str, output: &Output) -> Error {
        let stderr = String::from_utf8_lossy(&output.stderr);
        let stdout = String::from_utf8_lossy(&output.stdout);
        let detail = if stderr.trim().is_empty() {
            stdout.trim()
        } else {
            stderr.trim()
        };
        Error::Inference(format!(
            "{} {what} failed ({}): {}",
            self.binary.display(),
            output.status,
            if detail.is_empty() { "no output" } else { detail }
        ))
    }
}

/// At most one idle process per core for each voice and mode.
fn new_pool() -> Pool {
    Pool::new(std::thread::available_parallelism().map_or(2, |n| n.get()))
}

fn not_found(tried: &str) -> Error {
    Error::ModelNotInstalled(format!("espeak-ng not found (tried {tried}): {INSTALL_HINT}"))
}

fn is_executable(path: &Path) -> bool {
    let Ok(meta) = std::fs::metadata(path) else {
        return false;
    };
    if !meta.is_file() {
        return false;
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        meta.permissions().mode() & 0o111 != 0
    }
    #[cfg(not(unix))]
    {
        true
    }
}

/// Voice names are passed as one argument; keep them to the characters espeak-ng uses
/// (`en-us`, `gmw/en-US`, `en-us+f3`, `English_(America)`), and never let one look like an option.
fn validate_voice(voice: &str) -> Result<()> {
    let ok_char = |c: char| c.is_ascii_alphanumeric() || "-_+/().,".contains(c);
    if voice.is_empty() || voice.len() > 100 || voice.starts_with('-') || !voice.chars().all(ok_char) {
        return Err(Error::invalid(
            "voice",
            format!("{voice:?} is not an espeak-ng voice name"),
        ));
    }
    Ok(())
}

/// Parses `espeak-ng --voices`: `Pty Language Age/Gender VoiceName File Other Languages`,
/// where other languages are written `(en 10)(en-gb 3)`.
fn parse_voices(listing: &str) -> Vec<VoiceEntry> {
    listing
        .lines()
        .skip(1)
        .filter_map(|line| {
            let mut fields = line.split_whitespace();
            let _priority = fields.next()?;
            let language = fields.next()?.to_owned();
            let _age_gender = fields.next()?;
            let name = fields.next()?.to_owned();
            let file = fields.next()?.to_owned();
            let rest: Vec<&str> = fields.collect();
            let other_languages = rest
                .join(" ")
                .split(')')
                .filter_map(|part| {
                    part.trim()
                        .strip_prefix('(')?
                        .split_whitespace()
                        .next()
                        .map(str::to_owned)
                })
                .collect();
            Some(VoiceEntry {
                language,
                name,
                file,
                other_languages,
            })
        })
        .collect()
}

/// A piece of a sentence that espeak-ng speaks as one clause, and the
/// punctuation that ended it (`""` for none), in Piper's ASCII form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Clause {
    pub(crate) text: String,
    pub(crate) punct: String,
    /// An ellipsis ended the clause: espeak-ng gives it no terminator and
    /// Piper writes the next clause's phonemes straight after, with no space.
    pub(crate) glue: bool,
}

/// Punctuation that can end a clause.
fn is_clause_punct(c: char) -> bool {
    matches!(c, ',' | '.' | ';' | ':' | '!' | '?' | '…') || is_cjk_punct(c)
}

fn is_cjk_punct(c: char) -> bool {
    matches!(c, '，' | '、' | '。' | '｡' | '！' | '？' | '；' | '：' | '．')
}

/// The ASCII punctuation Piper's phoneme map knows for a clause-ending character.
fn ascii_punct(c: char) -> Option<char> {
    Some(match c {
        ',' | '，' | '、' => ',',
        '.' | '。' | '｡' | '．' | '…' => '.',
        ';' | '；' => ';',
        ':' | '：' => ':',
        '!' | '！' => '!',
        '?' | '？' => '?',
        _ => return None,
    })
}

/// Splits a sentence into clauses at `, . ; : ! ?` (and their CJK forms).
///
/// ASCII punctuation ends a clause only when whitespace or the end follows
/// (`3.5`, `1,000` and `10:30` stay whole); a `.` closing a dotted abbreviation
/// (`a.m.`, `e.g.`) inside the sentence does not end one. The punctuation run
/// becomes the clause's `punct` (repeats collapsed: `...` → `.`, `?!` stays).
pub(crate) fn split_clauses(sentence: &str) -> Vec<Clause> {
    let chars: Vec<char> = sentence.chars().collect();
    let mut clauses = Vec::new();
    let mut text = String::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if !is_clause_punct(c) {
            text.push(c);
            i += 1;
            continue;
        }
        let mut j = i;
        while j < chars.len() && (is_clause_punct(chars[j]) || is_closer(chars[j])) {
            j += 1;
        }
        let run = &chars[i..j];
        let at_end = j == chars.len();
        let spaced = at_end || chars[j].is_whitespace();
        let cjk = run.iter().any(|&p| is_cjk_punct(p));
        let dotted_abbreviation = !at_end && run == ['.'] && current_word(&text).contains('.');
        // espeak-ng reads a full stop followed by a lower-case word as an
        // abbreviation (`Baker St. near`), not as the end of a clause.
        let before_lowercase = run == ['.'] && next_word_is_lowercase(&chars[j..]);
        let marks: Vec<char> = run.iter().copied().filter(|&c| !is_closer(c)).collect();
        let ellipsis = is_ellipsis(&marks);
        // An abbreviation's full stop followed by more punctuation (`p.m.,`,
        // `U.S.;`, `D.C.?`): espeak-ng keeps the stop with the word; a
        // following `, ; :` then ends nothing, and `. ? !` end the sentence
        // as a plain full stop.
        let after_stop = !ellipsis && marks.len() >= 2 && marks[0] == '.';
        let continues = after_stop && marks[1..].iter().all(|&c| matches!(c, ',' | ';' | ':'));
        if (cjk || spaced) && !dotted_abbreviation && !before_lowercase && !continues {
            clauses.push(Clause {
                text: sanitize(&text),
                punct: if ellipsis {
                    String::new()
                } else if after_stop {
                    ".".into()
                } else {
                    normalize_punct(run)
                },
                glue: ellipsis && !at_end,
            });
            text.clear();
        } else if continues {
            // The stop stays with the word; the rest is not read.
            text.extend(run.iter().filter(|&&c| c == '.' || is_closer(c)));
        } else {
            text.extend(run);
        }
        i = j;
    }
    if !text.trim().is_empty() {
        clauses.push(Clause {
            text: sanitize(&text),
            punct: String::new(),
            glue: false,
        });
    }
    clauses
}

/// `...` / `…` (closers already removed): an ellipsis. Two dots are an
/// abbreviation's stop and a full stop (`p.m..`).
fn is_ellipsis(marks: &[char]) -> bool {
    marks == ['…'] || (marks.len() >= 3 && marks.iter().all(|&c| c == '.'))
}

/// Whether the next word (after whitespace) starts with a lower-case letter.
fn next_word_is_lowercase(rest: &[char]) -> bool {
    let mut it = rest.iter().skip_while(|c| c.is_whitespace());
    matches!(it.next(), Some(c) if c.is_lowercase()) && rest.first().is_some_and(|c| c.is_whitespace())
}

/// Voices whose link phoneme `;` is written `ʲ` (English): espeak-ng 1.52,
/// which Piper's voices were trained with, writes it in IPA; 1.51 drops it.
fn links_voice(voice: &str) -> bool {
    let v = voice.to_ascii_lowercase();
    v == "en" || v.starts_with("en-") || v.starts_with("en+") || v.starts_with("gmw/en")
}

/// Adds espeak-ng's link phoneme (`;` in its mnemonics, after an
/// i-vowel before a following vowel: "the answer" → `ðɪʲ ˈænsɚɹ`) to IPA that
/// lacks it. `mnemonics` is the same clause in `-x` form; words pair up by
/// position, and within a word the n-th i-vowel of one is the n-th of the
/// other (`i`, `I` there; `i`, `ɪ`, `ᵻ` here). Anything that does not pair up
/// is left as it is.
fn add_links(ipa: &str, mnemonics: &str) -> String {
    if !mnemonics.contains(';') || ipa.contains('ʲ') {
        return ipa.to_string();
    }
    let words: Vec<&str> = ipa.split(' ').collect();
    let marks: Vec<&str> = mnemonics.split(' ').collect();
    if words.len() != marks.len() {
        return ipa.to_string();
    }
    words
        .iter()
        .zip(&marks)
        .map(|(w, m)| link_word(w, m))
        .collect::<Vec<_>>()
        .join(" ")
}

fn link_word(ipa: &str, mnemonic: &str) -> String {
    let mut targets = Vec::new();
    let mut vowels = 0;
    let mut prev = ' ';
    for c in mnemonic.chars() {
        match c {
            'i' | 'I' => vowels += 1,
            // Only a link right after an i-vowel (`i;`, `i:;`, `I2;`, `I#;`).
            ';' if vowels > 0 && matches!(prev, 'i' | 'I' | ':' | '2' | '#') => targets.push(vowels),
            _ => {}
        }
        prev = c;
    }
    if targets.is_empty() {
        return ipa.to_string();
    }
    let chars: Vec<char> = ipa.chars().collect();
    let mut out = String::with_capacity(ipa.len() + 2 * targets.len());
    let mut seen = 0;
    let mut pending = false;
    for (k, &c) in chars.iter().enumerate() {
        out.push(c);
        if matches!(c, 'i' | 'ɪ' | 'ᵻ') {
            seen += 1;
            pending = targets.contains(&seen);
        }
        if pending && chars.get(k + 1) != Some(&'ː') {
            out.push('ʲ');
            pending = false;
        }
    }
    out
}

fn current_word(text: &str) -> &str {
    text.rsplit(char::is_whitespace).next().unwrap_or("")
}

/// The clause's mark in Piper's ASCII form. espeak-ng ends a clause with one
/// terminator: the first sentence mark of a run (`?!` → `?`), else the
/// first mark (`...` → `.` is handled as an ellipsis before this).
fn normalize_punct(run: &[char]) -> String {
    let marks: Vec<char> = run.iter().filter_map(|&c| ascii_punct(c)).collect();
    marks
        .iter()
        .find(|&&p| matches!(p, '.' | '!' | '?'))
        .or(marks.first())
        .map(|p| p.to_string())
        .unwrap_or_default()
}

/// What may be written to espeak-ng as one line: no line breaks or control
/// characters, no `[`/`]`, single spaces; empty when nothing is pronounceable.
fn sanitize(text: &str) -> String {
    let cleaned: String = text
        .chars()
        .map(|c| {
            if c.is_control() || c.is_whitespace() || c == '[' || c == ']' {
                ' '
            } else {
                c
            }
        })
        .collect();
    let joined = cleaned.split_whitespace().collect::<Vec<_>>().join(" ");
    if joined.chars().any(char::is_alphanumeric) {
        joined
    } else {
        String::new()
    }
}

/// Output lines grouped at empty lines (trailing empty lines dropped): one group per clause sent.
fn group_lines(out: &str) -> Vec<String> {
    let lines: Vec<&str> = out.lines().map(str::trim).collect();
    let end = lines.iter().rposition(|l| !l.is_empty()).map_or(0, |p| p + 1);
    let mut groups = Vec::new();
    let mut current: Vec<&str> = Vec::new();
    for line in &lines[..end] {
        if line.is_empty() {
            groups.push(clean_ipa(&current.join(" ")));
            current.clear();
        } else {
            current.push(line);
        }
    }
    if end > 0 {
        groups.push(clean_ipa(&current.join(" ")));
    }
    groups
}

/// All non-empty output lines of one clause, joined.
fn join_lines(out: &str) -> String {
    clean_ipa(
        &out.lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .collect::<Vec<_>>()
            .join(" "),
    )
}

/// Removes espeak-ng's language-switch markers (`(en)`, `(cmn)`, `(en-us)`) and extra spaces.
fn clean_ipa(ipa: &str) -> String {
    let mut out = String::with_capacity(ipa.len());
    let mut rest = ipa;
    while let Some(open) = rest.find('(') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        match after.find(')') {
            Some(close) if is_language_code(&after[..close]) => {
                out.push(' ');
                rest = &after[close + 1..];
            }
            _ => {
                out.push('(');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn is_language_code(s: &str) -> bool {
    let mut parts = s.split('-');
    let first = parts.next().unwrap_or("");
    (2..=3).contains(&first.len())
        && first.chars().all(|c| c.is_ascii_lowercase())
        && parts.all(|p| !p.is_empty() && p.len() <= 8 && p.chars().all(|c| c.is_ascii_alphanumeric()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn clause(text: &str, punct: &str) -> Clause {
        Clause {
            text: text.into(),
            punct: punct.into(),
            glue: false,
        }
    }

    #[test]
    fn clauses_keep_their_punctuation() {
        assert_eq!(
            split_clauses("Hello, world!"),
            [clause("Hello", ","), clause("world", "!")]
        );
        assert_eq!(
            split_clauses("Wait... what?!"),
            [
                Clause {
                    text: "Wait".into(),
                    punct: String::new(),
                    glue: true
                },
                clause("what", "?")
            ]
        );
        assert_eq!(split_clauses("no end"), [clause("no end", "")]);
        assert_eq!(
            split_clauses("你好，世界。"),
            [clause("你好", ","), clause("世界", ".")]
        );
        assert_eq!(
            split_clauses("\"Yes,\" she said."),
            [clause("\"Yes", ","), clause("she said", ".")]
        );
    }

    #[test]
    fn clauses_do_not_split_inside_numbers_or_abbreviations() {
        assert_eq!(
            split_clauses("It is 3.5 or 1,000."),
            [clause("It is 3.5 or 1,000", ".")]
        );
        assert_eq!(
            split_clauses("At ten a.m. we left."),
            [clause("At ten a.m. we left", ".")]
        );
        assert_eq!(split_clauses("Say e.g. this"), [clause("Say e.g. this", "")]);
    }

    #[test]
    fn clause_text_is_sanitised() {
        assert_eq!(split_clauses("a\nb\r\nc"), [clause("a b c", "")]);
        assert_eq!(split_clauses("x [[h@l'oU]] y"), [clause("x h@l'oU y", "")]);
        assert_eq!(
            split_clauses("\"...\" ok"),
            [
                Clause {
                    text: String::new(),
                    punct: String::new(),
                    glue: true
                },
                clause("ok", "")
            ]
        );
        // A full stop before a lower-case word is an abbreviation to espeak-ng.
        assert_eq!(
            split_clauses("Baker St. near the park. Mr. Smith"),
            [
                clause("Baker St. near the park", "."),
                clause("Mr", "."),
                clause("Smith", "")
            ]
        );
        assert_eq!(
            split_clauses("Stop... now."),
            [
                Clause {
                    text: "Stop".into(),
                    punct: String::new(),
                    glue: true
                },
                clause("now", ".")
            ]
        );
        assert_eq!(split_clauses("   "), Vec::<Clause>::new());
    }

    #[test]
    fn abbreviation_stops_followed_by_punctuation() {
        assert_eq!(
            split_clauses("At 5 p.m., we left."),
            [clause("At 5 p.m. we left", ".")]
        );
        assert_eq!(
            split_clauses("Is it Washington, D.C.?"),
            [clause("Is it Washington", ","), clause("D.C", ".")]
        );
        assert_eq!(split_clauses("Done at 3 p.m.."), [clause("Done at 3 p.m", ".")]);
    }

    #[test]
    fn link_marks_are_restored_from_mnemonics() {
        assert_eq!(add_links("ðɪ ˈænsɚɹ ɪz", "DI2; 'aans3r- Iz"), "ðɪʲ ˈænsɚɹ ɪz");
        assert_eq!(add_links("hiː ˈæskt", "hi:; 'aaskt"), "hiːʲ ˈæskt");
        assert_eq!(add_links("sˌiːˌaɪˈeɪ", "s,i:;,aI'eI"), "sˌiːʲˌaɪˈeɪ");
        // Second i-vowel of the word: "ratio" → ɹˈeɪʃɪʲˌoʊ.
        assert_eq!(add_links("ɹˈeɪʃɪˌoʊ", "r'eISI2;,oU"), "ɹˈeɪʃɪʲˌoʊ");
        // Words that do not pair up, or no link: unchanged.
        assert_eq!(add_links("ðɪ ˈænsɚɹ", "DI2; 'aans3r- Iz"), "ðɪ ˈænsɚɹ");
        assert_eq!(add_links("hˈaʊs", "h'aUs"), "hˈaʊs");
        assert!(links_voice("en-us") && links_voice("en") && !links_voice("ru"));
    }

    #[test]
    fn output_groups_split_at_empty_lines() {
        assert_eq!(group_lines(" a b\n\n c\n d\n\n e\n"), ["a b", "c d", "e"]);
        assert_eq!(group_lines(" a\n\n\n b\n"), ["a", "", "b"]);
        assert_eq!(group_lines(""), Vec::<String>::new());
        assert_eq!(group_lines(" a\n\n"), ["a"]);
    }

    #[test]
    fn language_markers_are_removed() {
        assert_eq!(clean_ipa("(en)nɪ5 hˌeɪ(cmn) s.ˈi.5"), "nɪ5 hˌeɪ s.ˈi.5");
        assert_eq!(clean_ipa("a (b c) d"), "a (b c) d");
        assert_eq!(clean_ipa("x(en-us)y"), "x y");
    }

    #[test]
    fn voice_names_are_validated() {
        for ok in ["en-us", "gmw/en-US", "en-us+f3", "cmn", "English_(America)"] {
            assert!(validate_voice(ok).is_ok(), "{ok}");
        }
        for bad in ["", "-q", "en us", "en;rm", "x\n", &"a".repeat(101)] {
            let err = validate_voice(bad).expect_err(bad);
            assert_eq!(err.code(), "invalid_input");
        }
    }

    #[test]
    fn voices_listing_is_parsed() {
        let listing = "Pty Language       Age/Gender VoiceName          File                 Other Languages\n \
            5  en-029          --/M      English_(Caribbean) gmw/en-029           (en 10)\n \
            2  en-us           --/M      English_(America)  gmw/en-US            (en 3)\n \
            5  yue             --/M      Chinese_(Cantonese) sit/yue              (zh-yue 5)(zh 8)\n";
        let voices = parse_voices(listing);
        assert_eq!(voices.len(), 3);
        assert_eq!(voices[2].other_languages, ["zh-yue", "zh"]);
        assert!(voices[1].matches("EN-US"));
        assert!(voices[1].matches("en-US"));
        assert!(voices[1].matches("gmw/en-US"));
        assert!(voices[0].matches("en"));
        assert!(!voices[0].matches("fr"));
    }

    #[test]
    fn tricky_batches_align_without_the_fallback() {
        // Needs espeak-ng (scripts/setup.sh installs it). The fallback would hide
        // misalignment, so check the one-process path itself.
        let espeak = Espeak::locate().expect("espeak-ng (run scripts/setup.sh)");
        let sentences = [
            "Mr. Smith went to Washington",
            "Dr. Who",
            "it's 3.5",
            "x \"quoted\" y",
            "U.S.A. now",
        ];
        let clauses: Vec<String> = sentences
            .iter()
            .flat_map(|s| split_clauses(s))
            .map(|c| c.text)
            .filter(|t| !t.is_empty())
            .collect();
        let refs: Vec<&str> = clauses.iter().map(String::as_str).collect();
        let groups = espeak.phonemize_batch("en-us", &refs).expect("batch");
        assert_eq!(groups.len(), refs.len(), "{groups:?}");
        assert!(groups.iter().all(|g| !g.is_empty()), "{groups:?}");
    }

    #[test]
    fn espeak_reads_at_a_fast_rate_without_its_second_speed_up() {
        let args = reading_args("--ipa", "en-us");
        let at = args.iter().position(|a| *a == "-s").expect("a rate is given");
        let rate: u32 = args[at + 1].parse().expect("words per minute");
        assert!((176..450).contains(&rate), "{rate}");
        assert_eq!(&args[args.len() - 3..], ["--ipa", "-v", "en-us"]);
    }

    #[test]
    fn the_reading_rate_changes_no_phoneme() {
        // Needs espeak-ng and its data (scripts/setup.sh). espeak-ng at its
        // default rate, one process per reading, against the rate read at.
        let espeak = Espeak::locate().expect("espeak-ng (run scripts/setup.sh)");
        let texts = [
            (
                "en-us",
                "Hello, world! Mr. Smith paid $3.50 for the 2nd book... didn't he?\nThe quick brown fox jumps over the lazy dog; it's 10:45 now.",
            ),
            (
                "de",
                "Guten Morgen, wie geht es Ihnen? Die Straße ist 12 km lang.",
            ),
            ("fr", "Bonjour, comment allez-vous ? Il est dix heures et demie."),
        ];
        for (voice, text) in texts {
            for mode in ["--ipa", "-x"] {
                let read = |rate: Option<&str>| {
                    let mut cmd = espeak.command();
                    cmd.args(["-q", "-b", "1"]);
                    if let Some(rate) = rate {
                        cmd.args(["-s", rate]);
                    }
                    let out = cmd
                        .args([mode, "-v", voice, text])
                        .output()
                        .expect("espeak-ng runs");
                    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
                    String::from_utf8(out.stdout).expect("utf-8")
                };
                let default = read(None);
                assert!(default.trim().len() > 20, "{voice} {mode}: {default:?}");
                assert_eq!(read(Some(READING_RATE)), default, "{voice} {mode}");
            }
        }
    }

    #[test]
    fn a_killed_pooled_process_is_replaced_with_the_same_output() {
        let espeak = Espeak::locate().expect("espeak-ng (run scripts/setup.sh)");
        let sentences = vec![
            "Mr. Smith, the answer is here.".to_string(),
            "Is it 3.5?".to_string(),
        ];
        let first = espeak.phonemize_utterances("en-us", &sentences).expect("first");
        let pids = espeak.idle_process_ids();
        assert_eq!(pids.len(), 2, "one --ipa and one -x process stay: {pids:?}");
        for pid in &pids {
            let status = Command::new("kill")
                .args(["-9", &pid.to_string()])
                .status()
                .expect("kill");
            assert!(status.success());
        }
        let again = espeak
            .phonemize_utterances("en-us", &sentences)
            .expect("after kill");
        assert_eq!(again, first);
        let fresh = espeak.idle_process_ids();
        assert_eq!(fresh.len(), 2);
        assert!(fresh.iter().all(|p| !pids.contains(p)), "{fresh:?} vs {pids:?}");
        // A one-off process per clause gives the same phonemes.
        let one_off: Vec<String> = ["mˈɪstɚ.", "smˈɪθ, ðɪʲ ˈænsɚɹ ɪz hˈɪɹ."]
            .map(String::from)
            .to_vec();
        assert_eq!(first[0], one_off);
    }

    #[cfg(unix)]
    #[test]
    fn a_hung_pooled_process_times_out_with_a_clear_error() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().expect("tempdir");
        let fake = dir.path().join("espeak-ng");
        // Answers the start-up sentinel, then stops answering.
        std::fs::write(&fake, "#!/bin/sh\nread l; echo \"$l\"; read l; exec sleep 30\n").expect("write");
        std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        let mut espeak = Espeak::with_binary(fake);
        espeak.pool = Arc::new(Pool::new(1).with_timeout(std::time::Duration::from_millis(300)));
        let err = espeak
            .phonemize("ru", &["привет".to_string()])
            .expect_err("no answer");
        assert_eq!(err.code(), "timeout", "{err}");
        assert!(err.to_string().contains("did not answer"), "{err}");
        assert!(espeak.idle_process_ids().is_empty());
    }

    #[test]
    fn locate_reads_the_injected_environment() {
        let dir = tempfile::tempdir().expect("tempdir");
        let fake = dir.path().join("espeak-ng");
        std::fs::write(&fake, "#!/bin/sh\n").expect("write");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        }
        let path = dir.path().as_os_str().to_owned();
        let found = Espeak::locate_with(|k| (k == "PATH").then(|| path.clone())).expect("found on PATH");
        assert_eq!(found.binary(), fake);
        let explicit = fake.clone().into_os_string();
        let found = Espeak::locate_with(|k| (k == ESPEAK_ENV).then(|| explicit.clone())).expect("explicit");
        assert_eq!(found.binary(), fake);
    }

    #[test]
    fn locate_errors_name_what_was_tried() {
        let err = Espeak::locate_with(|_| None).expect_err("nothing to find");
        assert_eq!(err.code(), "model_not_installed");
        let msg = err.to_string();
        assert!(
            msg.contains("VCTTS_ESPEAK (unset)") && msg.contains("PATH (unset)"),
            "{msg}"
        );
        assert!(msg.contains("scripts/setup.sh"), "{msg}");

        let dir = tempfile::tempdir().expect("tempdir");
        let empty = dir.path().as_os_str().to_owned();
        let msg = Espeak::locate_with(|k| (k == "PATH").then(|| empty.clone()))
            .expect_err("empty dir")
            .to_string();
        assert!(msg.contains(&dir.path().display().to_string()), "{msg}");

        let missing = dir.path().join("nope").into_os_string();
        let msg = Espeak::locate_with(|k| (k == ESPEAK_ENV).then(|| missing.clone()))
            .expect_err("explicit path missing")
            .to_string();
        assert!(
            msg.contains("VCTTS_ESPEAK=") && msg.contains("not an executable file"),
            "{msg}"
        );
    }
}
