//! An embedder plugs its own engine into vctts.
//!
//! `Beeper` is a small but genuine TTS engine: it "speaks" text as tones, one
//! per character (letters and digits on a pentatonic scale, pauses for spaces
//! and punctuation), in the pitch of a cloned voice. Voice extraction
//! measures the fundamental frequency of the reference audio by
//! autocorrelation. Like vctts' own engines it does its work on a thread it
//! owns, streams through a bounded channel, and stops when the stream is
//! dropped.
//!
//! The program registers two in-process Beeper nodes with a [`Registry`],
//! picks nodes with the power-of-two-choices and voice-affinity policies,
//! synthesizes on the picked node, reports the outcome to the registry and
//! prints what happened.
//!
//! vctts' [`EngineKind`] names the built-in engine families and the registry
//! keeps one pool per family, so the Beeper nodes are registered in the
//! `openvoice` pool here.
//!
//! Run: `cargo run --example custom_engine`

use async_trait::async_trait;
use std::collections::HashMap;
use std::f32::consts::TAU;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, mpsc};
use std::time::Instant;
use tokio::sync::oneshot;
use vctts::core::balance::PolicyKind;
use vctts::core::clock::SystemClock;
use vctts::core::engine::DEFAULT_STREAM_BOUND;
use vctts::core::registry::{NodeId, NodeInfo, NodeState, Outcome, Registry, RegistryConfig, SelectContext};
use vctts::core::{
    Audio, AudioChunk, AudioStream, AudioStreamSender, Engine, EngineInfo, EngineKind, Error, ModelState,
    ReferenceAudio, Result, SynthesisRequest, VoiceId, VoiceProfile,
};

const SAMPLE_RATE: u32 = 16_000;
/// Seconds per spoken character at speed 1.0.
const TONE_SECONDS: f32 = 0.09;
const PROFILE_VERSION: u32 = 1;
const DEFAULT_PITCH_HZ: f32 = 220.0;
/// Semitone steps of the major pentatonic scale over two octaves.
const SCALE: [i32; 10] = [0, 2, 4, 7, 9, 12, 14, 16, 19, 21];

/// Work for the Beeper's own thread.
enum Job {
    Speak {
        text: String,
        pitch_hz: f32,
        speed: f32,
        reply: oneshot::Sender<Audio>,
    },
    Stream {
        text: String,
        pitch_hz: f32,
        speed: f32,
        tx: AudioStreamSender,
    },
    Pitch {
        audio: Audio,
        reply: oneshot::Sender<Result<f32>>,
    },
}

/// The tone engine.
struct Beeper {
    name: String,
    loaded: AtomicBool,
    jobs: mpsc::Sender<Job>,
}

impl Beeper {
    fn new(name: &str) -> Self {
        let (tx, rx) = mpsc::channel::<Job>();
        // The engine's own thread; it ends when the engine (the sender) is dropped.
        std::thread::Builder::new()
            .name(format!("beeper-{name}"))
            .spawn(move || {
                for job in rx {
                    run(job);
                }
            })
            .expect("spawn the beeper thread");
        Self {
            name: name.to_string(),
            loaded: AtomicBool::new(false),
            jobs: tx,
        }
    }

    fn submit(&self, job: Job) -> Result<()> {
        self.jobs
            .send(job)
            .map_err(|_| Error::Internal(format!("beeper {} thread has stopped", self.name)))
    }

    fn ensure_loaded(&self) -> Result<()> {
        if self.loaded.load(Ordering::Acquire) {
            Ok(())
        } else {
            Err(Error::ModelNotLoaded(format!(
                "beeper {} is in standby",
                self.name
            )))
        }
    }

    fn pitch_of(profile: Option<&VoiceProfile>) -> Result<f32> {
        let Some(p) = profile else {
            return Ok(DEFAULT_PITCH_HZ);
        };
        let data = p.expect(EngineKind::OpenVoice, PROFILE_VERSION)?;
        let bytes: [u8; 4] = data.try_into().map_err(|_| Error::ProfileMismatch {
            expected: "a 4-byte beeper pitch profile".into(),
            found: format!("{} bytes", data.len()),
        })?;
        Ok(f32::from_le_bytes(bytes))
    }
}

/// The tone of one character, if it has one (`None` = a pause).
fn tone_for(c: char, base_hz: f32) -> Option<f32> {
    let step = if c.is_ascii_alphabetic() {
        (c.to_ascii_lowercase() as u8 - b'a') as usize % SCALE.len()
    } else if let Some(d) = c.to_digit(10) {
        d as usize
    } else if c.is_alphanumeric() {
        (c as u32 as usize) % SCALE.len()
    } else {
        return None;
    };
    Some(base_hz * 2f32.powf(SCALE[step] as f32 / 12.0))
}

/// Speaks one piece of text: a tone with a short fade per character.
fn render(text: &str, base_hz: f32, speed: f32) -> Vec<f32> {
    let per_char = (TONE_SECONDS / speed * SAMPLE_RATE as f32) as usize;
    let fade = per_char / 8;
    let mut out = Vec::with_capacity(per_char * text.chars().count());
    for c in text.chars() {
        let pause = match c {
            '.' | '!' | '?' => 3,
            ',' | ';' | ':' => 2,
            _ => 1,
        };
        match tone_for(c, base_hz) {
            Some(hz) => out.extend((0..per_char).map(|n| {
                let env = (n.min(per_char - n) as f32 / fade.max(1) as f32).min(1.0);
                0.4 * env * (TAU * hz * n as f32 / SAMPLE_RATE as f32).sin()
            })),
            None => out.extend(std::iter::repeat_n(0.0, per_char * pause)),
        }
    }
    out
}

/// The fundamental frequency of a voice, 60–400 Hz, by autocorrelation.
fn estimate_pitch(audio: &Audio) -> Result<f32> {
    let rate = audio.sample_rate as usize;
    if rate == 0 {
        return Err(Error::AudioRejected("sample rate is 0".into()));
    }
    let x: Vec<f32> = audio.samples.iter().take(rate * 2).copied().collect();
    let (min_lag, max_lag) = (rate / 400, rate / 60);
    if x.len() < max_lag * 2 || audio.rms() < 1e-3 {
        return Err(Error::AudioRejected(
            "the reference is too short or silent to measure a pitch".into(),
        ));
    }
    let energy: f32 = x.iter().map(|s| s * s).sum();
    let corr = |lag: usize| x.iter().zip(&x[lag..]).map(|(a, b)| a * b).sum::<f32>();
    let (best_lag, best) = (min_lag..=max_lag)
        .map(|lag| (lag, corr(lag)))
        .fold((0, f32::MIN), |acc, it| if it.1 > acc.1 { it } else { acc });
    if best < 0.3 * energy {
        return Err(Error::AudioRejected("no clear pitch in the reference".into()));
    }
    Ok(rate as f32 / best_lag as f32)
}

/// Sentences of the text, ending at . ! ? (the rest is the last one).
fn sentences(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    for c in text.chars() {
        cur.push(c);
        if matches!(c, '.' | '!' | '?') {
            out.push(std::mem::take(&mut cur));
        }
    }
    if !cur.trim().is_empty() {
        out.push(cur);
    }
    out
}

fn run(job: Job) {
    match job {
        Job::Speak {
            text,
            pitch_hz,
            speed,
            reply,
        } => {
            let _ = reply.send(Audio::new(render(&text, pitch_hz, speed), SAMPLE_RATE));
        }
        Job::Stream {
            text,
            pitch_hz,
            speed,
            tx,
        } => {
            let parts = sentences(&text);
            let last = parts.len().saturating_sub(1);
            for (index, part) in parts.iter().enumerate() {
                let chunk = AudioChunk {
                    index,
                    audio: Audio::new(render(part, pitch_hz, speed), SAMPLE_RATE),
                    is_last: index == last,
                };
                // The reader went away: stop working.
                if !tx.blocking_send(Ok(chunk)) {
                    return;
                }
            }
        }
        Job::Pitch { audio, reply } => {
            let _ = reply.send(estimate_pitch(&audio));
        }
    }
}

#[async_trait]
impl Engine for Beeper {
    fn info(&self) -> EngineInfo {
        EngineInfo {
            kind: EngineKind::OpenVoice,
            name: format!("Beeper tone speaker ({})", self.name),
            languages: vec!["en".into()],
            default_language: "en".into(),
            sample_rate: SAMPLE_RATE,
            streaming: true,
            max_text_chars: 2_000,
            max_sentence_chars: 400,
            needs_transcript: false,
            cloning: true,
            builtin_voices: vec!["a440".into()],
        }
    }

    fn state(&self) -> ModelState {
        if self.loaded.load(Ordering::Acquire) {
            ModelState::Ready
        } else {
            ModelState::Unloaded
        }
    }

    async fn load(&self) -> Result<()> {
        self.loaded.store(true, Ordering::Release);
        Ok(())
    }

    async fn unload(&self) -> Result<()> {
        self.loaded.store(false, Ordering::Release);
        Ok(())
    }

    async fn extract_voice(&self, reference: &ReferenceAudio) -> Result<VoiceProfile> {
        self.ensure_loaded()?;
        let (reply, rx) = oneshot::channel();
        self.submit(Job::Pitch {
            audio: reference.audio.clone(),
            reply,
        })?;
        let pitch = rx
            .await
            .map_err(|_| Error::Inference("beeper thread dropped the job".into()))??;
        Ok(VoiceProfile {
            engine: EngineKind::OpenVoice,
            format_version: PROFILE_VERSION,
            data: pitch.to_le_bytes().to_vec(),
        })
    }

    async fn synthesize(&self, request: &SynthesisRequest, profile: Option<&VoiceProfile>) -> Result<Audio> {
        self.ensure_loaded()?;
        self.info().check_request(request)?;
        let pitch_hz = match (&request.voice, profile) {
            (Some(v), None) if v.as_str() == "a440" => 440.0,
            (Some(v), None) => return Err(Error::VoiceNotFound(v.to_string())),
            (_, p) => Self::pitch_of(p)?,
        };
        let (reply, rx) = oneshot::channel();
        self.submit(Job::Speak {
            text: request.text.clone(),
            pitch_hz,
            speed: request.speed,
            reply,
        })?;
        rx.await
            .map_err(|_| Error::Inference("beeper thread dropped the job".into()))
    }

    async fn synthesize_stream(
        &self,
        request: &SynthesisRequest,
        profile: Option<&VoiceProfile>,
    ) -> Result<AudioStream> {
        self.ensure_loaded()?;
        self.info().check_request(request)?;
        let pitch_hz = Self::pitch_of(profile)?;
        let (tx, stream) = AudioStream::channel(DEFAULT_STREAM_BOUND);
        self.submit(Job::Stream {
            text: request.text.clone(),
            pitch_hz,
            speed: request.speed,
            tx,
        })?;
        Ok(stream)
    }
}

/// A hummed reference: a 150 Hz voice with two harmonics, 1.5 s.
fn hummed_reference() -> Audio {
    let n = (SAMPLE_RATE as f32 * 1.5) as usize;
    let samples = (0..n)
        .map(|i| {
            let t = i as f32 / SAMPLE_RATE as f32;
            0.5 * (TAU * 150.0 * t).sin() + 0.2 * (TAU * 300.0 * t).sin() + 0.1 * (TAU * 450.0 * t).sin()
        })
        .collect();
    Audio::new(samples, SAMPLE_RATE)
}

#[tokio::main]
async fn main() -> Result<()> {
    let registry = Registry::new(RegistryConfig::default(), Arc::new(SystemClock::new()));
    let mut engines: HashMap<NodeId, Arc<dyn Engine>> = HashMap::new();
    for name in ["beeper-a", "beeper-b"] {
        let engine = Arc::new(Beeper::new(name));
        engine.load().await?;
        let mut info = NodeInfo::new(name, EngineKind::OpenVoice, format!("inproc://{name}"));
        info.capacity = 2;
        info.version = env!("CARGO_PKG_VERSION").into();
        let id = registry.try_register(info, NodeState::Ready)?;
        println!("registered {id} ({})", engine.info().name);
        engines.insert(id, engine);
    }

    // Clone a voice once; any node can use the profile.
    let any = engines.values().next().expect("two engines");
    let profile = any
        .extract_voice(&ReferenceAudio::new(hummed_reference()))
        .await?;
    println!(
        "cloned voice \"hum\": base pitch {:.1} Hz",
        Beeper::pitch_of(Some(&profile))?
    );

    // Power of two choices: latency decides once the registry has measured some.
    let p2c = PolicyKind::PowerOfTwo.build();
    let texts = ["Hello there.", "Tones for every letter!", "vctts 123", "Bye."];
    for text in texts {
        let lease = registry.select(EngineKind::OpenVoice, p2c.as_ref(), &SelectContext::default())?;
        let engine = &engines[lease.id()];
        let mut request = SynthesisRequest::new(text);
        request.voice = Some(VoiceId::new("hum")?);
        let started = Instant::now();
        match engine.synthesize(&request, Some(&profile)).await {
            Ok(audio) => {
                println!(
                    "p2c    -> {:<9} {:>5.2} s of audio, peak {:.2}, for {text:?}",
                    lease.id().as_str(),
                    audio.duration().as_secs_f32(),
                    audio.peak()
                );
                lease.finish(Outcome::Success, started.elapsed());
            }
            Err(e) => {
                let outcome = if e.retryable() {
                    Outcome::Failure
                } else {
                    Outcome::Rejected
                };
                println!("p2c    -> {} failed: {e}", lease.id());
                lease.finish(outcome, started.elapsed());
            }
        }
    }

    // Voice affinity: one voice keeps landing on the same node, streaming.
    let affinity = PolicyKind::VoiceAffinity.build();
    let ctx = SelectContext {
        voice: Some("hum"),
        ..SelectContext::default()
    };
    for round in 0..3 {
        let lease = registry.select(EngineKind::OpenVoice, affinity.as_ref(), &ctx)?;
        let engine = &engines[lease.id()];
        let started = Instant::now();
        let request = SynthesisRequest::new("One. Two. Three.");
        let mut stream = engine.synthesize_stream(&request, Some(&profile)).await?;
        let mut chunks = 0;
        let mut seconds = 0.0;
        let mut first_audio = None;
        while let Some(chunk) = stream.next_chunk().await {
            let chunk = chunk?;
            first_audio.get_or_insert_with(|| started.elapsed());
            chunks += 1;
            seconds += chunk.audio.duration().as_secs_f32();
        }
        println!(
            "affinity round {round} -> {:<9} {chunks} chunks, {seconds:.2} s, first audio after {:?}",
            lease.id().as_str(),
            first_audio.unwrap_or_default()
        );
        lease.finish(Outcome::Success, started.elapsed());
    }

    // A client error is not the node's fault.
    let lease = registry.select(EngineKind::OpenVoice, p2c.as_ref(), &SelectContext::default())?;
    let mut bad = SynthesisRequest::new("Parlez-vous?");
    bad.language = Some("fr".parse().unwrap());
    let started = Instant::now();
    if let Err(e) = engines[lease.id()].synthesize(&bad, None).await {
        println!("rejected by {}: {e} (code {})", lease.id(), e.code());
        lease.finish(Outcome::Rejected, started.elapsed());
    }

    println!("\nnodes:");
    for s in registry.snapshot() {
        println!(
            "  {:<9} {:<6} breaker {:<6} requests {} failures {} latency EWMA {:.2} ms",
            s.info.id.as_str(),
            s.state.as_str(),
            s.breaker.as_str(),
            s.requests_total,
            s.failures_total,
            s.latency_ewma_ms
        );
    }
    Ok(())
}
