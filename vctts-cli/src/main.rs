//! `vctts`: the command-line tool. Parses arguments and calls the library:
//! `synth`, `extract` and `voices` go through [`vctts::Tts`] (engines in this
//! process, voices in the shared SQLite store of the data folder), `engines`
//! through the engine catalog, and model packages through
//! `vctts_core::package` (`models`).
#![forbid(unsafe_code)]

// The tool's global allocator: jemalloc, as in vctts-server (the library
// crates leave the choice to their embedders); not on MSVC.
#[cfg(not(target_env = "msvc"))]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

mod models;
mod models_fetch;
mod output;
mod progress;

use clap::{CommandFactory, Parser, Subcommand};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use vctts::{CloneVoice, Speech, StoreExt, Tts, VoiceChoice};
use vctts_core::{EngineKind, Error, VoiceId};
use vctts_engines::audio::encoders::StreamEncoder;
use vctts_engines::audio::format::AudioFormat;
use vctts_engines::catalog::{self, EngineOptions};

/// The help heading of the options every command takes: listed once, after
/// the command's own.
const GLOBAL: &str = "Global options";

/// Voice-clone text-to-speech on this machine.
#[derive(Debug, Parser)]
#[command(name = "vctts", version, about, long_about = None)]
struct Cli {
    /// Models root: one folder per engine (openvoice/, xtts_v2/, gpt_sovits/).
    #[arg(
        long,
        global = true,
        env = "VCTTS_MODELS",
        default_value = "models",
        help_heading = GLOBAL
    )]
    models: PathBuf,
    /// Data folder: the voice store (voices.db and voices/), shared with the server.
    #[arg(
        long,
        global = true,
        env = "VCTTS_DATA",
        default_value = "data",
        help_heading = GLOBAL
    )]
    data: PathBuf,
    /// Print only errors.
    #[arg(long, short, global = true, help_heading = GLOBAL)]
    quiet: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Speak text into an audio file.
    Synth(SynthArgs),
    /// Make a voice from reference audio and keep it in the voice store.
    Extract(ExtractArgs),
    /// Show which engines are installed, and what the others are missing.
    Engines,
    /// List the voices in the voice store.
    Voices,
    /// Fetch models from a hub; pack, verify, restore and list model packages.
    #[command(subcommand)]
    Models(models::ModelsCommand),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    ///
    /// bash: `vctts completions bash > ~/.local/share/bash-completion/completions/vctts`;
    /// zsh: `vctts completions zsh > ~/.zfunc/_vctts`;
    /// fish: `vctts completions fish > ~/.config/fish/completions/vctts.fish`.
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
}

#[derive(Debug, clap::Args)]
struct SynthArgs {
    /// The text to speak; `-` reads it from standard input.
    #[arg(
        long,
        short,
        conflicts_with = "text_file",
        required_unless_present = "text_file"
    )]
    text: Option<String>,
    /// A file holding the text; `-` is standard input.
    #[arg(long)]
    text_file: Option<PathBuf>,
    /// A stored voice id (see `vctts voices`), a built-in voice name, or a
    /// reference audio file to clone on the fly. Default: the engine's default voice.
    #[arg(long)]
    voice: Option<String>,
    /// The engine: openvoice, xtts or gpt-sovits.
    #[arg(long, default_value = "openvoice")]
    engine: EngineKind,
    /// Language code, e.g. en. Default: the voice's language.
    #[arg(long)]
    language: Option<vctts_core::Language>,
    /// Speaking rate, 0.25–4.0.
    #[arg(long, default_value_t = 1.0)]
    speed: f32,
    /// Seed for reproducible output.
    #[arg(long)]
    seed: Option<u64>,
    /// VITS noise scale (0 = deterministic base voice). Default: the voice's.
    #[arg(long)]
    noise_scale: Option<f32>,
    /// VITS duration noise. Default: the voice's.
    #[arg(long)]
    noise_w: Option<f32>,
    /// Tone color converter temperature (OpenVoice), 0–1. Default 0.3.
    #[arg(long)]
    tau: Option<f32>,
    /// Sampling temperature (XTTS, GPT-SoVITS). Default: the engine's.
    #[arg(long, value_name = "T")]
    temperature: Option<f32>,
    /// Keep the k most likely tokens (XTTS, GPT-SoVITS). Default: the engine's.
    #[arg(long, value_name = "K")]
    top_k: Option<usize>,
    /// Nucleus sampling threshold (XTTS, GPT-SoVITS). Default: the engine's.
    #[arg(long, value_name = "P")]
    top_p: Option<f32>,
    /// Repetition penalty (XTTS, GPT-SoVITS). Default: the engine's.
    #[arg(long, value_name = "R")]
    repetition_penalty: Option<f32>,
    /// Reference audio to clone on the fly (instead of a stored --voice).
    #[arg(long, conflicts_with = "voice")]
    reference: Option<PathBuf>,
    /// Transcript of --reference (GPT-SoVITS needs it).
    #[arg(long, requires = "reference")]
    transcript: Option<String>,
    /// Output encoding: wav (16-bit), wav_f32, pcm (raw s16le), mp3, opus, aac
    /// or flac. Default: from the output file's extension, else wav.
    #[arg(long, value_parser = parse_format)]
    format: Option<AudioFormat>,
    /// Inference threads in all. Sentences of a long text are spoken side
    /// by side, in order on the output; at the cores or above, a sentence
    /// alone uses every one.
    #[arg(long, default_value_t = default_threads())]
    threads: usize,
    /// Write audio as it is made instead of all at once at the end (the
    /// file can be played while it grows; `-` sends it down a pipe).
    #[arg(long)]
    stream: bool,
    /// Output file; `-` writes to standard output (never to a terminal).
    #[arg(long, short)]
    output: PathBuf,
}

#[derive(Debug, clap::Args)]
struct ExtractArgs {
    /// Reference audio (WAV, MP3, FLAC or OGG; 3–60 s of one speaker). Give
    /// several clips of the same speaker to make one voice from all of them
    /// (they are joined in order, as XTTS does with several references).
    #[arg(required = true, num_args = 1..)]
    reference: Vec<PathBuf>,
    /// Id of the new voice (letters, digits, - _ .).
    #[arg(long)]
    name: String,
    /// The engine whose profile to make.
    #[arg(long, default_value = "openvoice")]
    engine: EngineKind,
    /// Transcript of the reference (GPT-SoVITS needs it).
    #[arg(long)]
    transcript: Option<String>,
    /// Language of the reference.
    #[arg(long)]
    language: Option<vctts_core::Language>,
    /// Replace a voice of the same id.
    #[arg(long)]
    force: bool,
    /// Inference threads.
    #[arg(long, default_value_t = default_threads())]
    threads: usize,
}

fn default_threads() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
        .min(4)
}

fn parse_format(s: &str) -> Result<AudioFormat, String> {
    AudioFormat::parse(s)
        .ok_or_else(|| format!("unknown format {s:?}: use wav, wav_f32, pcm, mp3, opus, aac or flac"))
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let level = if cli.quiet { "error" } else { "warn" };
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("VCTTS_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level)),
        )
        .with_writer(std::io::stderr)
        .init();
    if let Command::Completions { shell } = cli.command {
        clap_complete::generate(shell, &mut Cli::command(), "vctts", &mut std::io::stdout());
        return ExitCode::SUCCESS;
    }
    if let Command::Models(cmd) = cli.command {
        return models::run(cmd, &cli.models);
    }
    let rt = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = rt.block_on(async {
        match &cli.command {
            Command::Synth(a) => synth(&cli, a).await,
            Command::Extract(a) => extract(&cli, a).await,
            Command::Engines => engines(&cli),
            Command::Voices => voices(&cli).await,
            Command::Models(_) | Command::Completions { .. } => Ok(()),
        }
    });
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

/// What to do about an error, when the message alone does not say.
fn hint(e: &Error) -> Option<&'static str> {
    match e {
        Error::Runtime(_) => Some("run scripts/setup.sh to fetch ONNX Runtime, or set VCTTS_ORT_LIB"),
        Error::ModelNotInstalled(m) if m.contains("espeak") => {
            Some("install espeak-ng (scripts/setup.sh does)")
        }
        Error::ModelNotInstalled(m) if m.contains("converter") => {
            Some("fetch it with `vctts models fetch openvoice-converter`")
        }
        Error::ModelNotInstalled(_) => Some(
            "see `vctts engines`, `vctts models list` (what `vctts models fetch` can download) and the README of the engine's model folder",
        ),
        Error::VoiceNotFound(_) => Some("list voices with `vctts voices`; make one with `vctts extract`"),
        Error::AudioRejected(_) => Some("give 3–60 s of clear speech from one speaker"),
        _ => None,
    }
}

/// The library for one command, given `threads` inference threads in all.
/// The sentences of a long text are spoken side by side, in order on the
/// output ([`lanes`]).
async fn tts(cli: &Cli, kind: EngineKind, threads: usize) -> vctts_core::Result<Tts> {
    let (per_run, lanes) = lanes(threads, vctts_engines::catalog::available_cores());
    Tts::builder(&cli.models, &cli.data)
        .engines([kind])
        .threads(per_run)
        .max_concurrency(lanes)
        .build()
        .await
}

/// Threads per run and lanes for `threads` in all on `cores`: at the cores
/// or above, a lane per core on one shared pool (a sentence alone decodes
/// with every thread, two at once with one each); below them, `threads`
/// lanes of one thread, so the total stays what was asked. On the 2-core
/// machine and the default voice, two lanes took `synth` of 126 s of audio
/// from 1.09 to 0.81 times piper-tts's time and of 30 s from 0.93 to 0.82,
/// and left 10 s as it was (docs/PERFORMANCE.md, notes part 10).
fn lanes(threads: usize, cores: usize) -> (usize, usize) {
    let threads = threads.max(1);
    if threads >= cores {
        (threads, 0)
    } else {
        (1, threads)
    }
}

fn read_text(a: &SynthArgs) -> vctts_core::Result<String> {
    let read_stdin = || {
        let mut s = String::new();
        std::io::stdin()
            .read_to_string(&mut s)
            .map_err(|e| Error::io("reading text from standard input", e))?;
        Ok(s)
    };
    match (&a.text, &a.text_file) {
        (Some(t), _) if t == "-" => read_stdin(),
        (Some(t), _) => Ok(t.clone()),
        (None, Some(p)) if p.as_os_str() == "-" => read_stdin(),
        (None, Some(p)) => {
            std::fs::read_to_string(p).map_err(|e| Error::io(format!("reading {}", p.display()), e))
        }
        (None, None) => Err(Error::invalid("text", "give --text or --text-file")),
    }
}

async fn synth(cli: &Cli, a: &SynthArgs) -> vctts_core::Result<()> {
    output::check_stdout_target(&a.output)?;
    let mut speech = Speech::new(read_text(a)?).engine(a.engine).speed(a.speed);
    speech.request.language = a.language.clone();
    speech.request.seed = a.seed;
    speech.request.sampling.noise_scale = a.noise_scale;
    speech.request.sampling.noise_scale_w = a.noise_w;
    speech.request.sampling.tau = a.tau;
    speech.request.sampling.temperature = a.temperature;
    speech.request.sampling.top_k = a.top_k;
    speech.request.sampling.top_p = a.top_p;
    speech.request.sampling.repetition_penalty = a.repetition_penalty;
    let tts = tts(cli, a.engine, a.threads).await?;
    speech.voice = match (&a.reference, &a.voice) {
        (Some(r), _) => {
            let reference = tts
                .read_reference(r)
                .await?
                .transcript(a.transcript.clone())
                .language(a.language.clone());
            reference.audio.into()
        }
        (None, None) => VoiceChoice::Default,
        (None, Some(v)) if Path::new(v).is_file() => tts.read_reference(Path::new(v)).await?.audio.into(),
        (None, Some(v)) => VoiceChoice::Named(v.clone()),
    };
    let progress = progress::Progress::new(&speech.request.text, a.speed, !cli.quiet);
    let mut stream = tts.speak_stream(&speech).await.map_err(|e| match e {
        Error::VoiceNotFound(v) => Error::VoiceNotFound(format!(
            "{v}: not a file, not a stored voice in {}, not a built-in {} voice",
            cli.data.display(),
            a.engine
        )),
        e => e,
    })?;
    // An explicit --format wins; otherwise the output file's extension says
    // (x.mp3 is MP3, never a WAV under another name); otherwise WAV.
    let format = a
        .format
        .or_else(|| AudioFormat::from_path(&a.output))
        .unwrap_or(AudioFormat::Wav);
    let mut out = output::Output::open(&a.output, a.stream)?;
    let written = write_speech(&mut stream, &mut out, format, a.stream, &progress).await;
    progress.finish();
    let (seconds, rate) = match written {
        Ok(w) => w,
        Err(e) => {
            out.abandon();
            return Err(e);
        }
    };
    out.finish()?;
    if !cli.quiet && a.output.as_os_str() != "-" {
        eprintln!(
            "wrote {} ({seconds:.2} s, {rate} Hz, {}, {})",
            a.output.display(),
            format.name(),
            a.engine
        );
    }
    Ok(())
}

/// Pulls the stream and writes it chunk by chunk as the engine makes it, so
/// memory stays flat whatever the length of the text: a `--stream` output
/// through a stream encoder (sent at once), a file through
/// [`StreamEncoder::file`], whose output equals the whole clip's encoding
/// (a WAV's sizes are written into its header by [`output::Output::finish`];
/// compressed formats hold only their coded frames until the end). Returns
/// the seconds of audio and its sample rate.
async fn write_speech(
    stream: &mut vctts::stream::AccountedStream,
    out: &mut output::Output,
    format: AudioFormat,
    streaming: bool,
    progress: &progress::Progress,
) -> vctts_core::Result<(f32, u32)> {
    let mut seconds = 0.0f32;
    let mut rate = 0u32;
    let mut encoder: Option<StreamEncoder> = None;
    while let Some(chunk) = stream.next_chunk().await {
        let chunk = chunk?;
        if encoder.is_some() && chunk.audio.sample_rate != rate {
            return Err(Error::Internal(format!(
                "the engine changed its rate mid-stream ({rate} Hz, then {} Hz)",
                chunk.audio.sample_rate
            )));
        }
        rate = chunk.audio.sample_rate;
        seconds += chunk.audio.duration().as_secs_f32();
        progress.made(seconds);
        if encoder.is_none() {
            encoder = Some(if streaming {
                StreamEncoder::new(format, rate, None)?
            } else {
                StreamEncoder::file(format, rate, None)?
            });
        }
        if let Some(enc) = encoder.as_mut() {
            out.write(&enc.push(&chunk.audio.samples)?)?;
        }
    }
    match encoder {
        Some(enc) => out.write(&enc.finish()?)?,
        None => return Err(Error::Inference("the engine returned no audio".into())),
    }
    Ok((seconds, rate))
}

async fn extract(cli: &Cli, a: &ExtractArgs) -> vctts_core::Result<()> {
    let id = VoiceId::new(a.name.clone())?;
    let tts = tts(cli, a.engine, a.threads).await?;
    let check = id.clone();
    if !a.force && tts.store().run(move |s| s.exists(&check)).await? {
        return Err(Error::invalid(
            "name",
            format!("voice {id} exists; use --force to replace it"),
        ));
    }
    let mut clips = a.reference.iter();
    let first = clips
        .next()
        .ok_or_else(|| Error::invalid("reference", "give a reference clip"))?;
    let mut joined = tts.read_reference(first).await?.audio.audio;
    for path in clips {
        let clip = tts.read_reference(path).await?.audio.audio;
        let clip = if clip.sample_rate == joined.sample_rate {
            clip
        } else {
            vctts_engines::audio::resample::resample(&clip, joined.sample_rate)?
        };
        joined.append(&clip);
    }
    let reference = vctts::Reference::from_audio(joined)
        .transcript(a.transcript.clone())
        .language(a.language.clone());
    let warnings = reference.quality.warnings.clone();
    let speech_seconds = reference.quality.speech_seconds;
    let voice = CloneVoice::new(id.as_str(), reference)?
        .engine(a.engine)
        .replace(a.force);
    let stored = tts.clone_voice(voice).await?;
    if !cli.quiet {
        for w in &warnings {
            eprintln!("warning: {w}");
        }
        eprintln!(
            "voice {id} saved in {} ({} profile, {:.1} s reference, {speech_seconds:.1} s speech)",
            cli.data.display(),
            a.engine,
            stored.voice.reference_seconds,
        );
    }
    Ok(())
}

fn engines(cli: &Cli) -> vctts_core::Result<()> {
    let runtime = vctts_engines::runtime::init(&Default::default());
    match &runtime {
        Ok(p) => println!("ONNX Runtime: {}", p.display()),
        Err(e) => println!("ONNX Runtime: missing — {e}"),
    }
    for kind in EngineKind::ALL {
        match catalog::installed(kind, &cli.models) {
            Ok(()) => {
                let detail = if runtime.is_ok() {
                    match catalog::build(kind, &cli.models, &EngineOptions::default()) {
                        Ok(e) => {
                            let i = e.info();
                            format!(
                                "voices: {}; languages: {}; {} Hz; cloning: {}",
                                i.builtin_voices.join(", "),
                                i.languages.join(", "),
                                i.sample_rate,
                                if i.cloning {
                                    "yes"
                                } else if kind == EngineKind::OpenVoice {
                                    "no (run `vctts models fetch openvoice-converter`)"
                                } else {
                                    "no"
                                }
                            )
                        }
                        Err(e) => format!("cannot start: {e}"),
                    }
                } else {
                    "models present".to_string()
                };
                println!("{kind:<11} installed — {detail}");
            }
            Err(why) => println!("{kind:<11} missing — {why}"),
        }
    }
    Ok(())
}

async fn voices(cli: &Cli) -> vctts_core::Result<()> {
    let data = cli.data.clone();
    // Listing never creates a store where there is none.
    let list = if data.join("voices.db").exists() || data.join("voices").is_dir() {
        let store = vctts::SqliteVoiceStore::open_shared(&data)?;
        store.run(|s| s.list(0, i64::MAX as usize)).await?.0
    } else {
        Vec::new()
    };
    if list.is_empty() {
        println!(
            "no voices in {} (make one with `vctts extract REF --name ID`)",
            data.display()
        );
    }
    for v in list {
        let engines: Vec<String> = v.voice.engines.iter().map(|e| e.to_string()).collect();
        println!(
            "{:<24} {:>5.1} s  {}",
            v.voice.id,
            v.voice.reference_seconds,
            engines.join(", ")
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::lanes;

    #[test]
    fn a_command_spreads_its_threads_over_lanes() {
        // At the cores or above: a lane per core on the shared pool.
        assert_eq!(lanes(2, 2), (2, 0));
        assert_eq!(lanes(8, 4), (8, 0));
        // Below them: one lane per thread, one thread each.
        assert_eq!(lanes(2, 8), (1, 2));
        assert_eq!(lanes(1, 8), (1, 1));
        assert_eq!(lanes(0, 8), (1, 1));
    }
}
