//! The [`Engine`] trait every TTS backend implements, and what it reports
//! about itself.
//!
//! Invariants an implementation keeps:
//! - inference never runs on the caller's async runtime: the async methods hand
//!   work to threads the engine owns and await the answer;
//! - every request owns its buffers, so concurrent calls are safe;
//! - [`Engine::synthesize_stream`] produces chunks in order through a bounded
//!   channel, and stops working soon after the [`AudioStream`] is dropped;
//! - [`Engine::synthesize_with`] checks its [`SynthesisControl`] between
//!   sentences: once cancelled it stops before the next sentence and answers
//!   [`Error::Cancelled`]; the audio it made is counted on the control either way.
//!   An engine that can stop a model run midway registers a cancel hook
//!   ([`SynthesisControl::on_cancel`]) for the length of the run.

use crate::audio::{Audio, AudioChunk};
use crate::error::{Error, Result};
pub use crate::kind::EngineKind;
use crate::language::Language;
use crate::request::SynthesisRequest;
use crate::voice::{ReferenceAudio, VoiceProfile};
use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::sync::mpsc;

/// What an engine can do.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EngineInfo {
    /// The family.
    pub kind: EngineKind,
    /// A human name (e.g. "OpenVoice v2 (Piper base + tone color converter)").
    pub name: String,
    /// Language codes it speaks.
    pub languages: Vec<String>,
    /// The default language.
    pub default_language: String,
    /// Rate of the audio it produces.
    pub sample_rate: u32,
    /// Whether `synthesize_stream` yields before the whole text is done.
    pub streaming: bool,
    /// Longest text accepted by one request, in characters.
    pub max_text_chars: usize,
    /// Longest sentence the model takes in one pass, in characters.
    pub max_sentence_chars: usize,
    /// Whether extraction needs a transcript of the reference.
    pub needs_transcript: bool,
    /// Whether it can clone a voice from reference audio right now.
    pub cloning: bool,
    /// Built-in voices, by name; the first is the default.
    pub builtin_voices: Vec<String>,
}

impl EngineInfo {
    /// The one check of a request against an engine, used by the gateway
    /// before routing, by the library and by every engine before it works:
    /// the fields all engines agree on (text not empty, speed and sampling
    /// ranges), the text length limit, and the language ([`Language::matches`]:
    /// by tag or primary subtag, so `en-US` passes where `en` is listed).
    /// The engine then maps the language to its own model or voice.
    pub fn check_request(&self, request: &SynthesisRequest) -> Result<()> {
        request.check_fields()?;
        let len = request.text.chars().count();
        if len > self.max_text_chars {
            return Err(Error::TextTooLong {
                len,
                limit: self.max_text_chars,
            });
        }
        if let Some(lang) = &request.language {
            if !self.speaks(lang) {
                return Err(Error::UnsupportedLanguage {
                    language: lang.to_string(),
                    engine: self.kind.to_string(),
                    supported: self.languages.join(", "),
                });
            }
        }
        Ok(())
    }

    /// Whether this engine speaks `lang` (by tag or primary subtag).
    pub fn speaks(&self, lang: &Language) -> bool {
        self.languages.iter().any(|l| lang.matches(l))
    }
}

/// Where an engine's model is in its life.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", content = "reason", rename_all = "snake_case")]
pub enum ModelState {
    /// Not loaded; uses no model memory.
    Unloaded,
    /// Being loaded.
    Loading,
    /// Loaded and accepting work.
    Ready,
    /// Loading or running failed; the reason says why.
    Failed(String),
}

impl ModelState {
    /// Stable lower-case name.
    pub fn as_str(&self) -> &'static str {
        match self {
            ModelState::Unloaded => "unloaded",
            ModelState::Loading => "loading",
            ModelState::Ready => "ready",
            ModelState::Failed(_) => "failed",
        }
    }
}

/// A TTS backend.
#[async_trait]
pub trait Engine: Send + Sync {
    /// What it can do.
    fn info(&self) -> EngineInfo;
    /// Where its model is.
    fn state(&self) -> ModelState;
    /// Loads the model (idempotent). Fails with the reason, and `state`
    /// reports [`ModelState::Failed`] with it.
    async fn load(&self) -> Result<()>;
    /// Frees the model (idempotent); later work fails with
    /// [`Error::ModelNotLoaded`] until `load` is called again.
    async fn unload(&self) -> Result<()>;
    /// Makes a profile of the voice in `reference`.
    async fn extract_voice(&self, reference: &ReferenceAudio) -> Result<VoiceProfile>;
    /// Speaks the whole request. `profile` is the stored voice's profile, or
    /// `None` for a built-in voice (`request.voice`) or the default voice.
    async fn synthesize(&self, request: &SynthesisRequest, profile: Option<&VoiceProfile>) -> Result<Audio>;
    /// Speaks the request as a stream of chunks, yielding each as soon as it
    /// is ready. Dropping the stream cancels the rest of the work.
    async fn synthesize_stream(
        &self,
        request: &SynthesisRequest,
        profile: Option<&VoiceProfile>,
    ) -> Result<AudioStream>;
    /// [`synthesize`](Self::synthesize) under a [`SynthesisControl`]: an
    /// engine that overrides this stops before its next sentence once the
    /// control is cancelled (answering [`Error::Cancelled`]) and counts the
    /// audio of every finished sentence on it. The default runs the whole
    /// request and counts its audio at the end.
    async fn synthesize_with(
        &self,
        request: &SynthesisRequest,
        profile: Option<&VoiceProfile>,
        control: &SynthesisControl,
    ) -> Result<Audio> {
        if control.is_cancelled() {
            return Err(Error::Cancelled);
        }
        let audio = self.synthesize(request, profile).await?;
        control.produced(&audio);
        Ok(audio)
    }
}

/// The caller's hold on one whole synthesis: a cancel flag the engine reads
/// between sentences, hooks that stop work already running (an engine
/// registers one around each model run, e.g. ONNX Runtime's run
/// termination), and the audio made so far (what the engine actually did,
/// cancelled work included). Clones share the same state.
#[derive(Debug, Clone, Default)]
pub struct SynthesisControl {
    inner: Arc<ControlState>,
}

/// What [`SynthesisControl::on_cancel`] calls.
pub type CancelHook = Arc<dyn Fn() + Send + Sync>;

#[derive(Default)]
struct ControlState {
    cancelled: AtomicBool,
    produced_us: AtomicU64,
    hooks: std::sync::Mutex<Vec<(u64, CancelHook)>>,
    next_hook: AtomicU64,
}

impl std::fmt::Debug for ControlState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ControlState")
            .field("cancelled", &self.cancelled)
            .field("produced_us", &self.produced_us)
            .finish_non_exhaustive()
    }
}

impl ControlState {
    fn hooks(&self) -> std::sync::MutexGuard<'_, Vec<(u64, CancelHook)>> {
        // A hook never panics while the lock is held (they run outside it).
        self.hooks
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// A registered cancel hook; dropping it unregisters the hook.
#[must_use = "the hook is unregistered when this guard is dropped"]
#[derive(Debug)]
pub struct CancelHookGuard {
    inner: Arc<ControlState>,
    id: u64,
}

impl Drop for CancelHookGuard {
    fn drop(&mut self) {
        self.inner.hooks().retain(|(id, _)| *id != self.id);
    }
}

impl SynthesisControl {
    /// A control that is not cancelled and has counted nothing.
    pub fn new() -> Self {
        Self::default()
    }

    /// Asks the engine to stop: before its next sentence, and, through the
    /// registered hooks, inside the model run going on now.
    pub fn cancel(&self) {
        self.inner.cancelled.store(true, Ordering::Release);
        let hooks: Vec<CancelHook> = self.inner.hooks().iter().map(|(_, h)| h.clone()).collect();
        for hook in hooks {
            hook();
        }
    }

    /// Whether [`cancel`](Self::cancel) was called.
    pub fn is_cancelled(&self) -> bool {
        self.inner.cancelled.load(Ordering::Acquire)
    }

    /// Registers `hook`, called by [`cancel`](Self::cancel) (at once if the
    /// control is already cancelled) until the guard is dropped. A hook may be
    /// called more than once and must not block.
    pub fn on_cancel(&self, hook: CancelHook) -> CancelHookGuard {
        let id = self.inner.next_hook.fetch_add(1, Ordering::Relaxed);
        self.inner.hooks().push((id, hook.clone()));
        // Registered before this check, so a concurrent cancel calls it
        // either there or here.
        if self.is_cancelled() {
            hook();
        }
        CancelHookGuard {
            inner: self.inner.clone(),
            id,
        }
    }

    /// How many cancel hooks are registered now (a model run under way, for
    /// an engine that registers one per run).
    pub fn hooks_registered(&self) -> usize {
        self.inner.hooks().len()
    }

    /// Counts a finished piece of audio.
    pub fn produced(&self, audio: &Audio) {
        let us = audio.duration().as_micros().min(u64::MAX as u128) as u64;
        self.inner.produced_us.fetch_add(us, Ordering::AcqRel);
    }

    /// Audio made so far.
    pub fn produced_total(&self) -> Duration {
        Duration::from_micros(self.inner.produced_us.load(Ordering::Acquire))
    }

    /// For an engine's sentence loop: counts `audio` and says whether to go on.
    pub fn advance(&self, audio: &Audio) -> bool {
        self.produced(audio);
        !self.is_cancelled()
    }
}

/// Default bound of an [`AudioStream`]: how many finished chunks may wait
/// for a slow reader before the producer blocks.
pub const DEFAULT_STREAM_BOUND: usize = 4;

/// The receiving end of a streamed synthesis: a bounded stream of chunks.
/// Dropping it closes the channel, which tells the producer to stop.
#[derive(Debug)]
pub struct AudioStream {
    rx: mpsc::Receiver<Result<AudioChunk>>,
}

/// The producing end of an [`AudioStream`].
#[derive(Debug, Clone)]
pub struct AudioStreamSender {
    tx: mpsc::Sender<Result<AudioChunk>>,
}

impl AudioStream {
    /// A bounded channel of chunks.
    pub fn channel(bound: usize) -> (AudioStreamSender, AudioStream) {
        let (tx, rx) = mpsc::channel(bound.max(1));
        (AudioStreamSender { tx }, AudioStream { rx })
    }

    /// The next chunk, `None` at the end.
    pub async fn next_chunk(&mut self) -> Option<Result<AudioChunk>> {
        self.rx.recv().await
    }

    /// Stops the producer and waits until it has let go of the stream: the
    /// channel is closed (its next send fails, so an engine stops before its
    /// next chunk) and the chunks already made are discarded. Returns once
    /// every sender is dropped, i.e. the work has actually stopped.
    pub async fn stop(mut self) {
        self.rx.close();
        // After `close` the buffer drains to `None` even while a sender is
        // alive, so wait for the senders themselves to go.
        loop {
            while self.rx.try_recv().is_ok() {}
            if self.rx.sender_strong_count() == 0 {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
    }

    /// Reads the whole stream into one clip.
    pub async fn collect_audio(mut self) -> Result<Audio> {
        let mut out: Option<Audio> = None;
        while let Some(chunk) = self.next_chunk().await {
            let chunk = chunk?;
            match &mut out {
                Some(a) => a.append(&chunk.audio),
                None => out = Some(chunk.audio),
            }
        }
        out.ok_or_else(|| Error::Inference("stream ended without audio".into()))
    }
}

impl futures::Stream for AudioStream {
    type Item = Result<AudioChunk>;
    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.rx.poll_recv(cx)
    }
}

impl AudioStreamSender {
    /// Sends a chunk from async code; `false` when the reader is gone.
    pub async fn send(&self, item: Result<AudioChunk>) -> bool {
        self.tx.send(item).await.is_ok()
    }

    /// Sends a chunk from a blocking (inference) thread, waiting while the
    /// channel is full; `false` when the reader is gone and work should stop.
    /// Must not be called on an async runtime thread.
    pub fn blocking_send(&self, item: Result<AudioChunk>) -> bool {
        self.tx.blocking_send(item).is_ok()
    }

    /// Whether the reader has gone away.
    pub fn is_closed(&self) -> bool {
        self.tx.is_closed()
    }

    /// Resolves once the reader has gone away (for a watcher that stops the
    /// work in progress).
    pub async fn closed(&self) {
        self.tx.closed().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cancel_calls_the_hooks_registered_now_and_only_those() {
        let c = SynthesisControl::new();
        let calls = Arc::new(AtomicU64::new(0));
        let hook = |calls: &Arc<AtomicU64>| -> CancelHook {
            let calls = calls.clone();
            Arc::new(move || {
                calls.fetch_add(1, Ordering::SeqCst);
            })
        };
        let gone = c.on_cancel(hook(&calls));
        drop(gone);
        let kept = c.on_cancel(hook(&calls));
        assert_eq!(c.hooks_registered(), 1);
        c.clone().cancel();
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        drop(kept);
        assert_eq!(c.hooks_registered(), 0);
        // Registered after the cancel: called at once.
        let _late = c.on_cancel(hook(&calls));
        assert_eq!(calls.load(Ordering::SeqCst), 2);
    }

    #[test]
    fn engine_kind_parse_display_serde() {
        for k in EngineKind::ALL {
            assert_eq!(k.as_str().parse::<EngineKind>().unwrap(), k);
            assert_eq!(serde_json::to_string(&k).unwrap(), format!("\"{k}\""));
            assert_eq!(
                serde_json::from_str::<EngineKind>(&format!("\"{k}\"")).unwrap(),
                k
            );
        }
        assert_eq!("GPT_SoVITS".parse::<EngineKind>().unwrap(), EngineKind::GptSovits);
        assert_eq!("xtts_v2".parse::<EngineKind>().unwrap(), EngineKind::Xtts);
        assert_eq!("melo".parse::<EngineKind>().unwrap_err().code(), "unknown_engine");
    }

    fn info() -> EngineInfo {
        EngineInfo {
            kind: EngineKind::OpenVoice,
            name: "t".into(),
            languages: vec!["en".into()],
            default_language: "en".into(),
            sample_rate: 22050,
            streaming: true,
            max_text_chars: 10,
            max_sentence_chars: 5,
            needs_transcript: false,
            cloning: false,
            builtin_voices: vec![],
        }
    }

    #[test]
    fn check_request_limits() {
        let i = info();
        assert!(i.check_request(&SynthesisRequest::new("hello")).is_ok());
        assert_eq!(
            i.check_request(&SynthesisRequest::new("x".repeat(11)))
                .unwrap_err()
                .code(),
            "text_too_long"
        );
        let r = SynthesisRequest::new("hi").with_language("fr").unwrap();
        assert_eq!(i.check_request(&r).unwrap_err().code(), "unsupported_language");
        // Any spelling of a listed language, and its regional variants, pass:
        // the same rule everywhere (the gateway used to accept `en-US` where
        // this check refused it).
        for ok in ["EN", "en-US", "en_gb"] {
            let r = SynthesisRequest::new("hi").with_language(ok).unwrap();
            assert!(i.check_request(&r).is_ok(), "{ok}");
        }
        let mut r = SynthesisRequest::new(" ");
        r.language = None;
        assert_eq!(i.check_request(&r).unwrap_err().code(), "empty_text");
    }

    #[tokio::test]
    async fn stop_waits_for_the_producer_to_let_go() {
        use std::sync::atomic::{AtomicBool, Ordering};
        let (tx, rx) = AudioStream::channel(1);
        let exited = std::sync::Arc::new(AtomicBool::new(false));
        let (started_tx, started_rx) = std::sync::mpsc::channel();
        let flag = exited.clone();
        let producer = std::thread::spawn(move || {
            let mut sent = 0;
            loop {
                let chunk = AudioChunk {
                    index: sent,
                    audio: Audio::new(vec![0.0; 4], 16000),
                    is_last: false,
                };
                if !tx.blocking_send(Ok(chunk)) {
                    break;
                }
                sent += 1;
                let _ = started_tx.send(());
                // A "sentence" of work between chunks.
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
            flag.store(true, Ordering::SeqCst);
            drop(tx);
        });
        started_rx.recv().unwrap();
        rx.stop().await;
        assert!(
            exited.load(Ordering::SeqCst),
            "stop returned before the producer let go"
        );
        producer.join().unwrap();
    }

    #[tokio::test]
    async fn stream_is_bounded_and_drop_cancels() {
        let (tx, mut rx) = AudioStream::channel(1);
        let chunk = |i| {
            Ok(AudioChunk {
                index: i,
                audio: Audio::new(vec![0.0; 2], 8),
                is_last: false,
            })
        };
        assert!(tx.send(chunk(0)).await);
        // The channel is full: a second send must wait until the reader reads.
        assert!(tx.tx.try_send(chunk(1)).is_err());
        assert_eq!(rx.next_chunk().await.unwrap().unwrap().index, 0);
        drop(rx);
        assert!(tx.is_closed());
        assert!(!tx.send(chunk(2)).await);
    }

    #[tokio::test]
    async fn collect_audio_joins_chunks() {
        let (tx, rx) = AudioStream::channel(4);
        for i in 0..3 {
            tx.send(Ok(AudioChunk {
                index: i,
                audio: Audio::new(vec![i as f32; 2], 8),
                is_last: i == 2,
            }))
            .await;
        }
        drop(tx);
        let a = rx.collect_audio().await.unwrap();
        assert_eq!(a.samples, vec![0.0, 0.0, 1.0, 1.0, 2.0, 2.0]);
    }
}
