//! `POST /api/v3/synthesize` and `POST /api/v3/synthesize/stream`.
//!
//! Whole answers carry `X-Request-Id`, `X-Node-Id`, `X-Engine`,
//! `X-Queue-Time-Ms`, `X-Inference-Time-Ms`, `X-Sample-Rate` and
//! `X-Audio-Duration-Ms`. The body is in the requested `format` (`wav`,
//! `wav_f32`, `pcm`, `mp3`, `opus`, `aac`, `flac`; see [`super::encoding`])
//! with its `Content-Type` (`audio/wav`, `audio/pcm;rate=N`, `audio/mpeg`,
//! `audio/ogg;codecs=opus`, `audio/aac`, `audio/flac`). A whole answer in
//! the node's own format (`wav`, `wav_f32` or `pcm` at the engine's rate) is
//! relayed from a remote node as it arrives, with the node's
//! `Content-Length` ([`WholeAnswer`]); one the gateway re-encodes is
//! gathered first (bounded by the request's answer cap). A relayed answer
//! the node breaks off after its first bytes ends the body with an error
//! (the client sees a cut transfer, never a short well-formed file). Streams encode each
//! chunk as the engine finishes it and flush the encoder at the end (a
//! streamed `wav` states `0xFFFFFFFF` sizes: read to the end); they carry
//! `X-Accel-Buffering: no` so proxies pass bytes on at once.
//!
//! Invariants: a stream's lease on its node is finished when the stream ends
//! (success) or fails (failure); when the client goes away the body is
//! dropped, which drops the node stream and so cancels the work on the node.

use crate::cluster::proto::{INFERENCE_TIME_HEADER, QUEUE_TIME_HEADER, SAMPLE_RATE_HEADER};
use crate::cluster::{AudioBody, CallContext};
use crate::encoding::{EncodedAudio, Encoding, encode_stream, encode_whole};
use crate::error::{ApiResult, ErrorBody};
use crate::gateway::Gateway;
use crate::http::context::RequestId;
use crate::http::extract::JsonBody;
use crate::synthesis::{Prepared, Synthesized};
use crate::wire::{ParsedSynthesis, SynthesizeRequest};
use axum::Extension;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::Response;
use bytes::Bytes;
use futures::StreamExt;
use futures::stream::BoxStream;
use std::sync::Arc;
use vctts_core::Error;
use vctts_core::registry::Outcome;
use vctts_engines::audio::AudioFormat;

pub(crate) fn hv(v: impl ToString) -> HeaderValue {
    HeaderValue::from_str(&v.to_string()).unwrap_or_else(|_| HeaderValue::from_static("invalid"))
}

/// Headers describing where and how a synthesis ran.
pub(crate) fn synthesis_headers(h: &mut HeaderMap, s: &Synthesized) {
    h.insert(header::CONTENT_TYPE, hv(&s.audio.content_type));
    h.insert("x-node-id", hv(&s.node_id));
    h.insert("x-engine", hv(s.engine));
    h.insert(QUEUE_TIME_HEADER, hv(s.audio.queue_time.as_millis()));
    h.insert(INFERENCE_TIME_HEADER, hv(s.audio.inference_time.as_millis()));
    h.insert(SAMPLE_RATE_HEADER, hv(s.audio.sample_rate));
    h.insert("x-audio-duration-ms", hv(s.audio.duration.as_millis()));
}

/// Speaks the text and answers the whole clip.
#[utoipa::path(
    post,
    path = "/api/v3/synthesize",
    tag = "synthesis",
    request_body = SynthesizeRequest,
    responses(
        (status = 200, description = "The audio in the requested format, with X-Request-Id, X-Node-Id, X-Engine, X-Queue-Time-Ms, X-Inference-Time-Ms, X-Sample-Rate", content(("audio/wav"), ("audio/pcm"), ("audio/mpeg"), ("audio/ogg"), ("audio/aac"), ("audio/flac"))),
        (status = 400, description = "Malformed JSON or voice id", body = ErrorBody),
        (status = 404, description = "Unknown voice", body = ErrorBody),
        (status = 413, description = "Body too large", body = ErrorBody),
        (status = 415, description = "Not JSON", body = ErrorBody),
        (status = 422, description = "A field is invalid (empty or long text, unknown engine or language, unknown field)", body = ErrorBody),
        (status = 429, description = "Rate limited; see Retry-After and RateLimit-*", body = ErrorBody),
        (status = 503, description = "No ready node for the engine; see Retry-After", body = ErrorBody),
    )
)]
pub async fn synthesize(
    State(gw): State<Arc<Gateway>>,
    Extension(rid): Extension<RequestId>,
    JsonBody(req): JsonBody<SynthesizeRequest>,
) -> ApiResult<Response> {
    let parsed = req.to_domain(gw.config().limits.max_text_chars)?;
    let ctx = CallContext { request_id: rid.0 };
    let (prepared, enc) = prepare_encoded(&gw, parsed, &ctx).await?;
    let (s, out) = answer_encoded(&gw, &prepared, enc, &ctx).await?;
    Ok(out.into_response(&s))
}

/// Chooses the engine and voice of a parsed request, checks that the
/// requested encoding can carry the engine's audio, and sets what the node
/// is asked for.
pub(crate) async fn prepare_encoded(
    gw: &Arc<Gateway>,
    parsed: ParsedSynthesis,
    ctx: &CallContext,
) -> ApiResult<(Prepared, Encoding)> {
    let enc = parsed.encoding;
    let mut prepared = gw.prepare(parsed, ctx).await?;
    let rate = prepared.info.sample_rate;
    enc.check(rate)?;
    prepared.format = enc.node_format(rate);
    Ok((prepared, enc))
}

/// A whole answer on its way to the client: the node's bytes relayed as
/// they arrive when they already are the answer (the client's format at the
/// engine's rate), else gathered (bounded by the request's answer cap) and
/// encoded here.
pub(crate) struct WholeAnswer {
    /// The bytes.
    pub body: Body,
    /// Their length, when known before they are sent (`Content-Length`).
    pub len: Option<u64>,
    /// Their `Content-Type`.
    pub content_type: String,
    /// The rate of the audio.
    pub sample_rate: u32,
}

impl WholeAnswer {
    /// The answer with the synthesis headers of `s` (the content type and
    /// rate are the answer's own).
    pub(crate) fn into_response(self, s: &Synthesized) -> Response {
        let mut res = Response::new(self.body);
        let h = res.headers_mut();
        synthesis_headers(h, s);
        h.insert(header::CONTENT_TYPE, hv(&self.content_type));
        h.insert(SAMPLE_RATE_HEADER, hv(self.sample_rate));
        if let Some(n) = self.len {
            h.insert(header::CONTENT_LENGTH, hv(n));
        }
        res
    }
}

/// Checks that a node answered what it was asked for: raw PCM where the
/// gateway re-encodes.
fn check_node_format(s: &Synthesized, enc: Encoding) -> ApiResult<()> {
    let a = &s.audio;
    if !enc.passthrough(a.sample_rate) && !a.content_type.starts_with("audio/pcm") {
        return Err(Error::Internal(format!(
            "node {} answered {} where raw PCM was asked for",
            s.node_id, a.content_type
        ))
        .into());
    }
    Ok(())
}

/// A whole synthesis on a routed node, as the client will get it: relayed
/// when the node's bytes already are the answer ([`WholeAnswer`]).
pub(crate) async fn answer_encoded(
    gw: &Arc<Gateway>,
    prepared: &Prepared,
    enc: Encoding,
    ctx: &CallContext,
) -> ApiResult<(Synthesized, WholeAnswer)> {
    let mut s = gw.synthesize_prepared(prepared, ctx).await?;
    check_node_format(&s, enc)?;
    let sample_rate = s.audio.sample_rate;
    if enc.passthrough(sample_rate) {
        let content_type = s.audio.content_type.clone();
        let body = std::mem::replace(&mut s.audio.body, AudioBody::Whole(Bytes::new()));
        let (body, len) = match body {
            // In memory already: axum states its length.
            AudioBody::Whole(b) => (Body::from(b), None),
            relayed => {
                let len = relayed.len();
                let chunks = relayed
                    .into_stream()
                    .map(|r| r.map_err(|e| std::io::Error::other(e.to_string())));
                (Body::from_stream(chunks), len)
            }
        };
        let answer = WholeAnswer {
            body,
            len,
            content_type,
            sample_rate,
        };
        return Ok((s, answer));
    }
    let out = encode_answer(&mut s, enc).await?;
    let answer = WholeAnswer {
        body: Body::from(out.bytes),
        len: None,
        content_type: out.content_type,
        sample_rate: out.sample_rate,
    };
    Ok((s, answer))
}

/// Gathers the node's answer (bounded by its cap) and encodes it as `enc`.
async fn encode_answer(s: &mut Synthesized, enc: Encoding) -> ApiResult<EncodedAudio> {
    let body = std::mem::replace(&mut s.audio.body, AudioBody::Whole(Bytes::new()));
    let bytes = body.collect().await?;
    let a = &s.audio;
    Ok(encode_whole(enc, bytes, &a.content_type, a.sample_rate).await?)
}

/// A whole synthesis on a routed node, encoded as asked, in memory (for
/// answers that carry several clips: a batch).
pub(crate) async fn synthesize_encoded(
    gw: &Arc<Gateway>,
    prepared: &Prepared,
    enc: Encoding,
    ctx: &CallContext,
) -> ApiResult<(Synthesized, EncodedAudio)> {
    let mut s = gw.synthesize_prepared(prepared, ctx).await?;
    check_node_format(&s, enc)?;
    let out = encode_answer(&mut s, enc).await?;
    Ok((s, out))
}

/// Speaks the text as a stream, each chunk sent as soon as it is ready.
#[utoipa::path(
    post,
    path = "/api/v3/synthesize/stream",
    tag = "synthesis",
    request_body = SynthesizeRequest,
    responses(
        (status = 200, description = "Chunked audio in the requested format, encoded chunk by chunk (`wav` states 0xFFFFFFFF sizes; `aac` arrives at the end)", content(("audio/wav"), ("audio/pcm"), ("audio/mpeg"), ("audio/ogg"), ("audio/aac"), ("audio/flac"))),
        (status = 400, description = "Malformed JSON or voice id", body = ErrorBody),
        (status = 404, description = "Unknown voice", body = ErrorBody),
        (status = 415, description = "Not JSON", body = ErrorBody),
        (status = 422, description = "A field is invalid (`wav_f32` cannot be streamed; a rate the format cannot carry)", body = ErrorBody),
        (status = 429, description = "Rate limited", body = ErrorBody),
        (status = 503, description = "No ready node for the engine", body = ErrorBody),
    )
)]
pub async fn synthesize_stream(
    State(gw): State<Arc<Gateway>>,
    Extension(rid): Extension<RequestId>,
    JsonBody(req): JsonBody<SynthesizeRequest>,
) -> ApiResult<Response> {
    let parsed = req.to_domain(gw.config().limits.max_text_chars)?;
    if parsed.encoding.format == AudioFormat::WavF32 {
        return Err(Error::invalid("format", "wav_f32 cannot be streamed; use wav or pcm").into());
    }
    let ctx = CallContext { request_id: rid.0 };
    let (prepared, enc) = prepare_encoded(&gw, parsed, &ctx).await?;
    let s = open_stream(&gw, &prepared, enc, &ctx).await?;
    let mut h = HeaderMap::new();
    s.headers(&mut h);
    let mut res = Response::new(Body::from_stream(s.body));
    res.headers_mut().extend(h);
    Ok(res)
}

/// An encoded stream committed to the client (its first chunk was in hand).
pub(crate) struct OpenedStream {
    /// The encoded bytes; an `Err` ends the body.
    pub body: BoxStream<'static, std::io::Result<Bytes>>,
    /// Its `Content-Type`.
    pub content_type: String,
    /// The rate of the encoded audio.
    pub sample_rate: u32,
    /// The node.
    pub node_id: String,
    /// The engine.
    pub engine: vctts_core::EngineKind,
    /// Queue time on the node.
    pub queue_time: std::time::Duration,
    /// Time to the first chunk.
    pub first_audio: std::time::Duration,
}

impl OpenedStream {
    /// The answer headers of a stream (content type, no caching, no proxy
    /// buffering, where it runs).
    pub(crate) fn headers(&self, h: &mut HeaderMap) {
        h.insert(header::CONTENT_TYPE, hv(&self.content_type));
        self.common_headers(h);
    }

    /// Every header but the content type.
    pub(crate) fn common_headers(&self, h: &mut HeaderMap) {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        h.insert("x-accel-buffering", HeaderValue::from_static("no"));
        h.insert("x-node-id", hv(&self.node_id));
        h.insert("x-engine", hv(self.engine));
        h.insert(QUEUE_TIME_HEADER, hv(self.queue_time.as_millis()));
        h.insert(SAMPLE_RATE_HEADER, hv(self.sample_rate));
        h.insert("x-first-audio-ms", hv(self.first_audio.as_millis()));
    }
}

/// Starts a streamed synthesis on a routed node and encodes it chunk by
/// chunk as `enc` (flushed when the node stream ends).
pub(crate) async fn open_stream(
    gw: &Arc<Gateway>,
    prepared: &Prepared,
    enc: Encoding,
    ctx: &CallContext,
) -> ApiResult<OpenedStream> {
    let started = gw.start_stream(prepared, ctx).await?;
    let engine = started.engine;
    let routed = started.routed;
    let node_id = routed.node_id.clone();
    let (stream, first) = routed.value;
    let rate = stream.sample_rate;
    let queue_time = stream.queue_time;
    let lease = routed.lease;
    let begun = routed.started;

    // Finishes the lease when the node stream ends or fails; a dropped body
    // (client gone) drops the lease unfinished, which records nothing.
    struct Tail {
        chunks: futures::stream::BoxStream<'static, vctts_core::Result<Bytes>>,
        lease: Option<vctts_core::registry::Lease>,
        begun: std::time::Instant,
        gw: Arc<Gateway>,
        engine: vctts_core::EngineKind,
        bytes: u64,
        rate: u32,
        request_id: String,
    }
    let tail = Tail {
        chunks: stream.chunks,
        lease: Some(lease),
        begun,
        gw: gw.clone(),
        engine,
        bytes: first.len() as u64,
        rate,
        request_id: ctx.request_id.clone(),
    };
    let rest = futures::stream::unfold(tail, |mut t| async move {
        let item = t.chunks.next().await;
        match item {
            Some(Ok(b)) => {
                t.bytes += b.len() as u64;
                Some((Ok(b), t))
            }
            Some(Err(e)) => {
                tracing::warn!(request_id = %t.request_id, error = %e, "stream failed after it started");
                if let Some(l) = t.lease.take() {
                    l.finish(Outcome::Failure, t.begun.elapsed());
                }
                t.gw.metrics().syntheses.inc(&[t.engine.as_str(), e.code()]);
                Some((Err(std::io::Error::other(e.to_string())), t))
            }
            None => {
                if let Some(l) = t.lease.take() {
                    l.finish(Outcome::Success, t.begun.elapsed());
                    t.gw.metrics().syntheses.inc(&[t.engine.as_str(), "ok"]);
                    if t.rate > 0 {
                        t.gw.metrics()
                            .audio_seconds
                            .add(&[t.engine.as_str()], t.bytes as f64 / 2.0 / t.rate as f64);
                    }
                }
                None
            }
        }
    });
    let mut failed = false;
    let rest = rest.take_while(move |item| {
        let go = !failed;
        failed = item.is_err();
        futures::future::ready(go)
    });
    let pcm = futures::stream::once(futures::future::ready(Ok::<Bytes, std::io::Error>(first)))
        .chain(rest)
        .boxed();
    let (content_type, body) = encode_stream(enc, rate, pcm)?;
    let sample_rate = enc.check(rate)?;
    Ok(OpenedStream {
        body,
        content_type,
        sample_rate,
        node_id: node_id.to_string(),
        engine,
        queue_time,
        first_audio: started.first_audio,
    })
}
