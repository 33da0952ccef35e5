//! Streaming with accounting: one adapter around an engine's [`AudioStream`]
//! that tells an observer when the first chunk came, and how the stream
//! ended, with the audio it carried. The worker node's counters and the
//! library's callers use it, so a streamed request is counted one way.
//!
//! Invariants:
//! - the observer hears [`StreamObserver::finished`] exactly once: when the
//!   engine ends the stream ([`StreamOutcome::Completed`]), when it yields an
//!   error ([`StreamOutcome::Failed`]; the stream ends after that item), or
//!   when the reader drops the stream first ([`StreamOutcome::Abandoned`]);
//! - every chunk handed to the reader is counted in [`StreamStats::audio`],
//!   the last one included;
//! - values handed to [`AccountedStream::hold`] (an admission slot, say) are
//!   released only after the observer has heard the end, and, when the
//!   reader drops the stream early, only after the engine has let go of it
//!   (its work has actually stopped; [`AudioStream::stop`]).

use futures::Stream;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use vctts_core::{AudioChunk, AudioStream, Result};

/// How a stream ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamOutcome {
    /// The engine finished the text.
    Completed,
    /// The engine failed; the error was the last item.
    Failed,
    /// The reader went away before the end.
    Abandoned,
}

/// What a stream carried.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct StreamStats {
    /// Time from the start of the stream to its end.
    pub elapsed: Duration,
    /// Time to the first chunk, if one came.
    pub first_chunk: Option<Duration>,
    /// Chunks handed to the reader.
    pub chunks: usize,
    /// Audio handed to the reader.
    pub audio: Duration,
}

/// Hears how a stream goes. Both methods have defaults that do nothing.
pub trait StreamObserver: Send {
    /// The first chunk arrived `after` the stream started.
    fn first_chunk(&mut self, after: Duration) {
        let _ = after;
    }
    /// The stream ended; called once.
    fn finished(&mut self, outcome: StreamOutcome, stats: &StreamStats) {
        let _ = (outcome, stats);
    }
}

/// An observer that hears nothing.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoObserver;
impl StreamObserver for NoObserver {}

/// An [`AudioStream`] with accounting; a [`Stream`] of chunks.
pub struct AccountedStream {
    stream: AudioStream,
    observer: Box<dyn StreamObserver>,
    started: Instant,
    stats: StreamStats,
    ended: bool,
    held: Vec<Box<dyn Send>>,
}

impl std::fmt::Debug for AccountedStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccountedStream")
            .field("stats", &self.stats)
            .field("ended", &self.ended)
            .finish()
    }
}

impl AccountedStream {
    /// Wraps `stream`, started now, without an observer.
    pub fn new(stream: AudioStream) -> Self {
        Self::started_at(stream, Instant::now())
    }

    /// Wraps `stream` that started at `started` (the moment the request was
    /// admitted, so the first-chunk time includes the engine's start).
    pub fn started_at(stream: AudioStream, started: Instant) -> Self {
        Self {
            stream,
            observer: Box::new(NoObserver),
            started,
            stats: StreamStats::default(),
            ended: false,
            held: Vec::new(),
        }
    }

    /// Sets the observer.
    pub fn observe(mut self, observer: impl StreamObserver + 'static) -> Self {
        self.observer = Box::new(observer);
        self
    }

    /// Keeps `value` alive until the stream has ended (and been reported).
    pub fn hold(mut self, value: impl Send + 'static) -> Self {
        self.held.push(Box::new(value));
        self
    }

    /// What was carried so far.
    pub fn stats(&self) -> StreamStats {
        self.stats
    }

    /// The next chunk, `None` at the end.
    pub async fn next_chunk(&mut self) -> Option<Result<AudioChunk>> {
        futures::StreamExt::next(self).await
    }

    /// Reads the whole stream into one clip.
    pub async fn collect_audio(mut self) -> Result<vctts_core::Audio> {
        let mut out: Option<vctts_core::Audio> = None;
        while let Some(chunk) = self.next_chunk().await {
            let chunk = chunk?;
            match &mut out {
                Some(a) => a.append(&chunk.audio),
                None => out = Some(chunk.audio),
            }
        }
        out.ok_or_else(|| vctts_core::Error::Inference("stream ended without audio".into()))
    }

    fn end(&mut self, outcome: StreamOutcome) {
        if self.ended {
            return;
        }
        self.ended = true;
        self.stats.elapsed = self.started.elapsed();
        self.observer.finished(outcome, &self.stats);
        self.held.clear();
    }
}

impl Stream for AccountedStream {
    type Item = Result<AudioChunk>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.ended {
            return Poll::Ready(None);
        }
        let this = &mut *self;
        match Pin::new(&mut this.stream).poll_next(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(None) => {
                this.end(StreamOutcome::Completed);
                Poll::Ready(None)
            }
            Poll::Ready(Some(Err(e))) => {
                this.end(StreamOutcome::Failed);
                Poll::Ready(Some(Err(e)))
            }
            Poll::Ready(Some(Ok(chunk))) => {
                if this.stats.first_chunk.is_none() {
                    let after = this.started.elapsed();
                    this.stats.first_chunk = Some(after);
                    this.observer.first_chunk(after);
                }
                this.stats.chunks += 1;
                this.stats.audio += chunk.audio.duration();
                if chunk.is_last {
                    this.end(StreamOutcome::Completed);
                }
                Poll::Ready(Some(Ok(chunk)))
            }
        }
    }
}

impl Drop for AccountedStream {
    fn drop(&mut self) {
        if self.ended {
            return;
        }
        // Abandoned: the engine stops before its next chunk, and what is
        // held (the admission slot) is let go only once it has actually
        // stopped, so a client that hangs up cannot free a slot early.
        let held = std::mem::take(&mut self.held);
        self.end(StreamOutcome::Abandoned);
        let stream = std::mem::replace(&mut self.stream, AudioStream::channel(1).1);
        match tokio::runtime::Handle::try_current() {
            Ok(rt) if !held.is_empty() => {
                rt.spawn(async move {
                    stream.stop().await;
                    drop(held);
                });
            }
            _ => drop(stream),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::StreamExt;
    use std::sync::{Arc, Mutex};
    use vctts_core::{Audio, Error};

    #[derive(Clone, Default)]
    struct Log(Arc<Mutex<Vec<(StreamOutcome, StreamStats)>>>, Arc<Mutex<usize>>);
    impl StreamObserver for Log {
        fn first_chunk(&mut self, _after: Duration) {
            *self.1.lock().unwrap() += 1;
        }
        fn finished(&mut self, outcome: StreamOutcome, stats: &StreamStats) {
            self.0.lock().unwrap().push((outcome, *stats));
        }
    }

    fn chunk(index: usize, last: bool) -> Result<AudioChunk> {
        Ok(AudioChunk {
            index,
            audio: Audio::new(vec![0.0; 8], 8),
            is_last: last,
        })
    }

    #[tokio::test]
    async fn completed_streams_count_every_chunk_once() {
        let (tx, rx) = AudioStream::channel(4);
        tx.send(chunk(0, false)).await;
        tx.send(chunk(1, true)).await;
        drop(tx);
        let log = Log::default();
        let s = AccountedStream::new(rx).observe(log.clone());
        let chunks: Vec<_> = s.collect().await;
        assert_eq!(chunks.len(), 2);
        let seen = log.0.lock().unwrap().clone();
        assert_eq!(seen.len(), 1);
        assert_eq!(seen[0].0, StreamOutcome::Completed);
        assert_eq!(seen[0].1.chunks, 2);
        assert_eq!(seen[0].1.audio, Duration::from_secs(2));
        assert_eq!(*log.1.lock().unwrap(), 1);
    }

    #[tokio::test]
    async fn an_error_ends_the_stream_and_a_drop_is_abandoned() {
        let (tx, rx) = AudioStream::channel(4);
        tx.send(chunk(0, false)).await;
        tx.send(Err(Error::Inference("boom".into()))).await;
        tx.send(chunk(2, true)).await;
        let log = Log::default();
        let mut s = AccountedStream::new(rx).observe(log.clone());
        assert!(s.next_chunk().await.unwrap().is_ok());
        assert!(s.next_chunk().await.unwrap().is_err());
        assert!(s.next_chunk().await.is_none(), "nothing after an error");
        drop(s);
        let seen = log.0.lock().unwrap().clone();
        assert_eq!(seen.len(), 1);
        assert_eq!(seen[0].0, StreamOutcome::Failed);

        let (tx, rx) = AudioStream::channel(4);
        tx.send(chunk(0, false)).await;
        let held = Arc::new(());
        let log = Log::default();
        let mut s = AccountedStream::new(rx).observe(log.clone()).hold(held.clone());
        assert!(s.next_chunk().await.unwrap().is_ok());
        assert_eq!(Arc::strong_count(&held), 2);
        drop(s);
        assert_eq!(log.0.lock().unwrap()[0].0, StreamOutcome::Abandoned);
        assert_eq!(log.0.lock().unwrap()[0].1.chunks, 1);
        // The producer has not let go yet: the slot stays taken.
        for _ in 0..10 {
            tokio::task::yield_now().await;
        }
        assert_eq!(Arc::strong_count(&held), 2, "held until the engine stops");
        assert!(tx.is_closed(), "the engine is told to stop");
        drop(tx);
        tokio::time::timeout(Duration::from_secs(10), async {
            while Arc::strong_count(&held) != 1 {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        })
        .await
        .expect("released once the engine let go");
    }
}
