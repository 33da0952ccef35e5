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
//! Invariants: everything that can be checked at the gateway is checked
//! before a node is involved (text length, output duration budget, language,
//! voice); a stream is
//! committed to the client only once its first chunk is in hand, so failover
//! never happens after audio bytes were sent.

use crate::cluster::{CallContext, NodeAudio, NodeStream};
use crate::error::ApiResult;
use crate::gateway::Gateway;
use crate::routing::{Routed, watch_stream, within_deadline};
use crate::wire::ParsedSynthesis;
use bytes::Bytes;
use futures::StreamExt;
use std::sync::Arc;
use std::time::{Duration, Instant};
use vctts_core::registry::NodeId;
use vctts_core::{
    EngineInfo, EngineKind, Error, OutputFormat, ReferenceAudio, SynthesisRequest, VoiceId, VoiceProfile,
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
    pub async fn prepare(&self, parsed: ParsedSynthesis, ctx: &CallContext) -> ApiResult<Prepared> {
        let engine = match parsed.engine {
            Some(e) => e,
            None => self.default_engine()?,
        };
        let info = self.engine_info(engine).ok_or_else(|| Error::NoNodeAvailable {
            engine: engine.to_string(),
        })?;
        info.check_request(&parsed.request)?;
        crate::budget::check(&parsed.request, 0.0, self.config.limits.max_output_duration.0)?;
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
    ) -> ApiResult<Option<Arc<VoiceProfile>>> {
        let made = self
            .profiles
            .resolve(voice, engine, &info.builtin_voices, |reference| async move {
                let (profile, node) = self
                    .extract_on(engine, &reference, Some(voice.as_str()), ctx)
                    .await
                    .map_err(crate::error::ApiError::into_core)?;
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
    ) -> ApiResult<(VoiceProfile, NodeId)> {
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
        let c = &self.config.cluster;
        let chars = p.request.text.chars().count();
        let piece = chars.min(p.info.max_sentence_chars.max(1));
        (
            crate::budget::stall_deadline(chars, c.stall_timeout.0, c.stall_per_char.0),
            crate::budget::stall_deadline(piece, c.stall_timeout.0, c.stall_per_char.0),
        )
    }

    /// Runs a whole synthesis on a routed node (a node that makes no
    /// progress within the request's deadline is abandoned and failed over).
    pub async fn synthesize_prepared(&self, p: &Prepared, ctx: &CallContext) -> ApiResult<Synthesized> {
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
                    within_deadline(&self.suspects, &self.registry, &node, deadline, call).await
                }
            })
            .await;
        let outcome = match &routed {
            Ok(_) => "ok",
            Err(e) => e.code(),
        };
        self.metrics.syntheses.inc(&[p.engine.as_str(), outcome]);
        let (audio, node_id) = routed?.succeed();
        self.metrics
            .audio_seconds
            .add(&[p.engine.as_str()], audio.duration.as_secs_f64());
        let took = started.elapsed();
        self.metrics
            .synthesis_duration
            .observe(&[p.engine.as_str()], took);
        if audio.duration > std::time::Duration::ZERO {
            self.metrics.rtf.observe_value(
                &[p.engine.as_str()],
                took.as_secs_f64() / audio.duration.as_secs_f64(),
            );
        }
        Ok(Synthesized {
            audio,
            node_id,
            engine: p.engine,
        })
    }

    /// Starts a streamed synthesis on a routed node and waits for its first
    /// chunk (a node that fails before it is failed over).
    pub async fn start_stream(&self, p: &Prepared, ctx: &CallContext) -> ApiResult<StartedStream> {
        let started = Instant::now();
        let request = Arc::new(p.request.clone());
        let profile = p.profile.clone();
        let first_byte = self.timeouts.first_byte;
        let (deadline, gap) = self.stall_deadlines(p);
        let routed = self
            .route(p.engine, p.voice_key(), |api, node| {
                let request = request.clone();
                let profile = profile.clone();
                let ctx = ctx.clone();
                let (suspects, registry) = (self.suspects.clone(), self.registry.clone());
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
                async move { within_deadline(&self.suspects, &self.registry, &node2, deadline, opened).await }
            })
            .await;
        if let Err(e) = &routed {
            self.metrics.syntheses.inc(&[p.engine.as_str(), e.code()]);
        }
        let routed = routed?;
        let first_audio = started.elapsed();
        self.metrics
            .first_audio
            .observe(&[p.engine.as_str()], first_audio);
        Ok(StartedStream {
            routed,
            engine: p.engine,
            first_audio,
        })
    }
}
