//! From a validated request to audio: choosing the engine, checking the
//! request against the engine's facts, resolving the voice to a profile, and
//! running the synthesis on a routed node (whole, or streamed).
//!
//! Voice resolution: a stored voice uses its profile for the engine; when the
//! voice has none for that engine yet, one is made from the stored reference
//! on a node of the engine, stored, and reused from then on (one extraction
//! per voice and engine, even under concurrent requests). A name that is not
//! a stored voice may be a built-in voice of the engine; anything else is
//! `voice_not_found`.
//!
//! Stall detection: a whole answer must come within the request's progress
//! deadline, a stream's first chunk too, and each later chunk within one
//! sentence's deadline of the last ([`Gateway::stall_deadlines`]); a node that
//! misses it is marked suspect and the request failed over (before any audio
//! was sent) or the stream ended with an error (after).
//!
//! Relay: a remote node's whole answer is passed on as it arrives (see
//! [`Gateway::synthesize_prepared`]); its lease is finished when the last
//! byte has passed, as a stream's is.
//!
//! Errors: every use case here returns [`vctts_core::Error`] (never the
//! HTTP error type); the handlers in `api/` convert and render them.
//!
//! Invariants: everything that can be checked at the gateway is checked
//! before a node is involved (text length, output duration budget, language,
//! voice); a stream, and a relayed whole answer, is committed to the client
//! only once its first bytes are in hand (and checked), so failover never
//! happens after audio bytes were sent.

use crate::cluster::{AudioBody, CallContext, NodeAudio, NodeStream};
use crate::gateway::Gateway;
use crate::routing::{Routed, outcome_of, stall_error, watch_stream, within_deadline};
use crate::wire::ParsedSynthesis;
use bytes::Bytes;
use futures::StreamExt;
use futures::stream::BoxStream;
use std::sync::Arc;
use std::time::{Duration, Instant};
use vctts_core::registry::{Lease, NodeId, Outcome};
use vctts_core::{
    EngineInfo, EngineKind, Error, OutputFormat, ReferenceAudio, Result, SynthesisRequest, VoiceId,
    VoiceProfile,
};

/// A request ready to be routed.
#[derive(Debug, Clone)]
pub struct Prepared {
    /// The engine.
    pub engine: EngineKind,
    /// The engine's facts.
    pub info: EngineInfo,
    /// What the node gets.
    pub request: SynthesisRequest,
    /// The stored voice's profile, if the request names one.
    pub profile: Option<Arc<VoiceProfile>>,
    /// How the node encodes a whole answer (the edge re-encodes from it).
    pub format: OutputFormat,
}

impl Prepared {
    /// The voice key for affinity routing.
    pub fn voice_key(&self) -> Option<&str> {
        self.request.voice.as_ref().map(VoiceId::as_str)
    }
}

/// A finished synthesis.
#[derive(Debug)]
pub struct Synthesized {
    /// The audio and its timings.
    pub audio: NodeAudio,
    /// The node that made it.
    pub node_id: NodeId,
    /// The engine.
    pub engine: EngineKind,
}

/// A stream committed to the client: its first chunk is in hand.
pub struct StartedStream {
    /// The rest of the node stream.
    pub routed: Routed<(NodeStream, Bytes)>,
    /// The engine.
    pub engine: EngineKind,
    /// Time from the request start to the first chunk.
    pub first_audio: Duration,
}

impl Gateway {
    /// Chooses the engine, checks the request against it and resolves the voice.
    pub async fn prepare(&self, parsed: ParsedSynthesis, ctx: &CallContext) -> Result<Prepared> {
        let engine = match parsed.engine {
            Some(e) => e,
            None => self.default_engine()?,
        };
        let info = self.engine_info(engine).ok_or_else(|| Error::NoNodeAvailable {
            engine: engine.to_string(),
        })?;
        info.check_request(&parsed.request)?;
        crate::budget::check(&parsed.request, 0.0, self.config().limits.max_output_duration.0)?;
        let profile = match &parsed.voice {
            None => None,
            Some(v) => self.profile_for(v, engine, &info, ctx).await?,
        };
        Ok(Prepared {
            engine,
            info,
            request: parsed.request,
            profile,
            format: OutputFormat::Wav,
        })
    }

    /// The profile of a stored voice for `engine` (made once on a routed
    /// node if missing, then stored), or `None` for a built-in voice.
    pub async fn profile_for(
        &self,
        voice: &VoiceId,
        engine: EngineKind,
        info: &EngineInfo,
        ctx: &CallContext,
    ) -> Result<Option<Arc<VoiceProfile>>> {
        let made = self
            .profiles()
            .resolve(voice, engine, &info.builtin_voices, |reference| async move {
                let (profile, node) = self
                    .extract_on(engine, &reference, Some(voice.as_str()), ctx)
                    .await?;
                tracing::info!(voice_id = %voice, engine = %engine, node_id = %node,
                    request_id = %ctx.request_id, "made a missing voice profile on a node");
                Ok(profile)
            })
            .await?;
        Ok(made)
    }

    /// Makes a profile on a routed node of `engine`.
    pub async fn extract_on(
        &self,
        engine: EngineKind,
        reference: &ReferenceAudio,
        voice_key: Option<&str>,
        ctx: &CallContext,
    ) -> Result<(VoiceProfile, NodeId)> {
        let reference = Arc::new(reference.clone());
        let routed = self
            .route(engine, voice_key, |api, _| {
                let reference = reference.clone();
                let ctx = ctx.clone();
                async move { api.extract_voice(&ctx, &reference).await }
            })
            .await?;
        Ok(routed.succeed())
    }

    /// The progress deadlines of a request (see [`crate::budget::stall_deadline`]):
    /// for the whole text, and for one piece (a sentence) of it.
    pub fn stall_deadlines(&self, p: &Prepared) -> (Duration, Duration) {
        let c = &self.config().cluster;
        let chars = p.request.text.chars().count();
        let piece = chars.min(p.info.max_sentence_chars.max(1));
        (
            crate::budget::stall_deadline(chars, c.stall_timeout.0, c.stall_per_char.0),
            crate::budget::stall_deadline(piece, c.stall_timeout.0, c.stall_per_char.0),
        )
    }

    /// Runs a whole synthesis on a routed node (a node that makes no
    /// progress within the request's deadline is abandoned and failed over).
    ///
    /// A remote node's answer comes back relayed ([`AudioBody::Relayed`]):
    /// the call succeeds once the answer's front is in hand and checked, and
    /// the node's lease and the synthesis metrics are finished when the body
    /// has passed through (a success), or ends with an error (counted
    /// against the node; the body's deadline is the rest of the request's
    /// progress deadline). A body dropped unread (the client went away)
    /// records nothing.
    pub async fn synthesize_prepared(&self, p: &Prepared, ctx: &CallContext) -> Result<Synthesized> {
        let started = std::time::Instant::now();
        let request = Arc::new(p.request.clone());
        let profile = p.profile.clone();
        let format = p.format;
        let (deadline, _) = self.stall_deadlines(p);
        let routed = self
            .route(p.engine, p.voice_key(), |api, node| {
                let request = request.clone();
                let profile = profile.clone();
                let ctx = ctx.clone();
                async move {
                    let call = api.synthesize(&ctx, &request, profile.as_deref(), format);
                    within_deadline(self.suspects(), self.registry(), &node, deadline, call).await
                }
            })
            .await;
        let routed = match routed {
            Ok(r) => r,
            Err(e) => {
                self.metrics().syntheses.inc(&[p.engine.as_str(), e.code()]);
                return Err(e);
            }
        };
        let Routed {
            value: mut audio,
            lease,
            node_id,
            started: begun,
            ..
        } = routed;
        let done = Finished {
            metrics: self.metrics().clone(),
            engine: p.engine,
            started,
            duration: audio.duration,
        };
        audio.body = match audio.body {
            AudioBody::Whole(bytes) => {
                lease.finish(Outcome::Success, begun.elapsed());
                done.succeeded();
                AudioBody::Whole(bytes)
            }
            AudioBody::Relayed { len, chunks } => {
                let tail = Tail {
                    chunks,
                    len,
                    sent: 0,
                    lease: Some(lease),
                    begun,
                    done: Some(done),
                    deadline: tokio::time::Instant::from_std(begun + deadline),
                    within: deadline,
                    node: node_id.clone(),
                    suspects: self.suspects().clone(),
                    registry: self.registry().clone(),
                };
                AudioBody::Relayed {
                    len,
                    chunks: tail.into_stream(),
                }
            }
        };
        Ok(Synthesized {
            audio,
            node_id,
            engine: p.engine,
        })
    }

    /// Starts a streamed synthesis on a routed node and waits for its first
    /// chunk (a node that fails before it is failed over).
    pub async fn start_stream(&self, p: &Prepared, ctx: &CallContext) -> Result<StartedStream> {
        let started = Instant::now();
        let request = Arc::new(p.request.clone());
        let profile = p.profile.clone();
        let first_byte = self.timeouts().first_byte;
        let (deadline, gap) = self.stall_deadlines(p);
        let routed = self
            .route(p.engine, p.voice_key(), |api, node| {
                let request = request.clone();
                let profile = profile.clone();
                let ctx = ctx.clone();
                let (suspects, registry) = (self.suspects().clone(), self.registry().clone());
                let node2 = node.clone();
                let opened = async move {
                    let mut stream = api.synthesize_stream(&ctx, &request, profile.as_deref()).await?;
                    match tokio::time::timeout(first_byte, stream.chunks.next()).await {
                        Err(_) => Err(Error::Timeout(format!(
                            "node {node} sent no audio within {:.1}s",
                            first_byte.as_secs_f64()
                        ))),
                        Ok(None) => Err(Error::Inference(format!(
                            "node {node} ended the stream before any audio"
                        ))),
                        Ok(Some(Err(e))) => Err(e),
                        Ok(Some(Ok(first))) => {
                            // From here on every chunk must come within one
                            // piece's deadline of the last.
                            stream.chunks = watch_stream(stream.chunks, gap, node, suspects, registry);
                            Ok((stream, first))
                        }
                    }
                };
                async move { within_deadline(self.suspects(), self.registry(), &node2, deadline, opened).await }
            })
            .await;
        if let Err(e) = &routed {
            self.metrics().syntheses.inc(&[p.engine.as_str(), e.code()]);
        }
        let routed = routed?;
        let first_audio = started.elapsed();
        self.metrics()
            .first_audio
            .observe(&[p.engine.as_str()], first_audio);
        Ok(StartedStream {
            routed,
            engine: p.engine,
            first_audio,
        })
    }
}

/// The synthesis metrics of a whole answer, recorded once it has passed.
struct Finished {
    metrics: Arc<crate::metrics::Metrics>,
    engine: EngineKind,
    started: Instant,
    duration: Duration,
}

impl Finished {
    fn succeeded(self) {
        let engine = self.engine.as_str();
        self.metrics.syntheses.inc(&[engine, "ok"]);
        self.metrics
            .audio_seconds
            .add(&[engine], self.duration.as_secs_f64());
        let took = self.started.elapsed();
        self.metrics.synthesis_duration.observe(&[engine], took);
        if self.duration > Duration::ZERO {
            self.metrics
                .rtf
                .observe_value(&[engine], took.as_secs_f64() / self.duration.as_secs_f64());
        }
    }

    fn failed(self, e: &Error) {
        self.metrics.syntheses.inc(&[self.engine.as_str(), e.code()]);
    }
}

/// A relayed whole answer on its way through: finishes the node's lease
/// and the metrics when the last byte has passed or an error ends it, and
/// holds the body to the rest of the request's progress deadline.
struct Tail {
    chunks: BoxStream<'static, vctts_core::Result<Bytes>>,
    len: Option<u64>,
    sent: u64,
    lease: Option<Lease>,
    begun: Instant,
    done: Option<Finished>,
    deadline: tokio::time::Instant,
    within: Duration,
    node: NodeId,
    suspects: Arc<crate::suspects::Suspects>,
    registry: Arc<vctts_core::registry::Registry>,
}

impl Tail {
    fn succeed(&mut self) {
        if let Some(l) = self.lease.take() {
            l.finish(Outcome::Success, self.begun.elapsed());
        }
        if let Some(d) = self.done.take() {
            d.succeeded();
        }
    }

    fn fail(&mut self, e: &Error) {
        if let Some(l) = self.lease.take() {
            match outcome_of(e) {
                Some(o) => l.finish(o, self.begun.elapsed()),
                None => drop(l),
            }
        }
        if let Some(d) = self.done.take() {
            d.failed(e);
        }
    }

    fn into_stream(self) -> BoxStream<'static, vctts_core::Result<Bytes>> {
        futures::stream::unfold(Some(self), |state| async move {
            let mut t = state?;
            let item = match tokio::time::timeout_at(t.deadline, t.chunks.next()).await {
                Ok(None) => {
                    t.succeed();
                    return None;
                }
                Ok(Some(Ok(chunk))) => {
                    t.sent += chunk.len() as u64;
                    // All the declared bytes are here: done, whether or not
                    // the reader polls for the end.
                    if t.len == Some(t.sent) {
                        t.succeed();
                    }
                    return Some((Ok(chunk), Some(t)));
                }
                Ok(Some(Err(e))) => e,
                Err(_) => {
                    t.suspects.stalled(&t.registry, &t.node);
                    stall_error(&t.node, t.within)
                }
            };
            tracing::warn!(node_id = %t.node, error = %item, "a relayed answer failed after it started");
            t.fail(&item);
            // The body ends at its first error; the node's stream is dropped.
            Some((Err(item), None))
        })
        .boxed()
    }
}
