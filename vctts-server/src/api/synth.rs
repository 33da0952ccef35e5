//! `POST /api/v3/synthesize` and `POST /api/v3/synthesize/stream`.
//!
//! Whole answers carry `X-Request-Id`, `X-Node-Id`, `X-Engine`,
//! `X-Queue-Time-Ms`, `X-Inference-Time-Ms`, `X-Sample-Rate` and
//! `X-Audio-Duration-Ms`. Streams answer `audio/wav` with a header whose sizes
//! are `0xFFFFFFFF` (read to the end), or `audio/pcm;rate=N`, and send each
//! chunk as the engine finishes it.
//!
//! Invariants: a stream's lease on its node is finished when the stream ends
//! (success) or fails (failure); when the client goes away the body is
//! dropped, which drops the node stream and so cancels the work on the node.

use super::context::RequestId;
use super::extract::JsonBody;
use crate::cluster::CallContext;
use crate::cluster::proto::{INFERENCE_TIME_HEADER, QUEUE_TIME_HEADER, SAMPLE_RATE_HEADER};
use crate::error::{ApiResult, ErrorBody};
use crate::gateway::Gateway;
use crate::synthesis::Synthesized;
use crate::wire::SynthesizeRequest;
use axum::Extension;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::Response;
use bytes::Bytes;
use futures::StreamExt;
use std::sync::Arc;
use vctts_core::registry::Outcome;
use vctts_core::{Error, OutputFormat};
use vctts_engines::audio::encode::wav_stream_header;

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
        (status = 200, description = "The audio (`audio/wav`, or `audio/pcm;rate=N` for `pcm`), with X-Request-Id, X-Node-Id, X-Engine, X-Queue-Time-Ms, X-Inference-Time-Ms", content_type = "audio/wav"),
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
    let prepared = gw.prepare(parsed, &ctx).await?;
    let s = gw.synthesize_prepared(&prepared, &ctx).await?;
    let mut res = Response::new(Body::from(s.audio.bytes.clone()));
    synthesis_headers(res.headers_mut(), &s);
    Ok(res)
}

/// Speaks the text as a stream, each chunk sent as soon as it is ready.
#[utoipa::path(
    post,
    path = "/api/v3/synthesize/stream",
    tag = "synthesis",
    request_body = SynthesizeRequest,
    responses(
        (status = 200, description = "Chunked audio: `audio/wav` with 0xFFFFFFFF sizes (format `wav`), or `audio/pcm;rate=N` (format `pcm`)", content_type = "audio/wav"),
        (status = 422, description = "A field is invalid (`wav_f32` cannot be streamed)", body = ErrorBody),
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
    let format = parsed.request.format;
    if format == OutputFormat::WavF32 {
        return Err(Error::invalid("format", "wav_f32 cannot be streamed; use wav or pcm").into());
    }
    let ctx = CallContext {
        request_id: rid.0.clone(),
    };
    let prepared = gw.prepare(parsed, &ctx).await?;
    let started = gw.start_stream(&prepared, &ctx).await?;
    let engine = started.engine;
    let routed = started.routed;
    let node_id = routed.node_id.clone();
    let (stream, first) = routed.value;
    let rate = stream.sample_rate;
    let queue_time = stream.queue_time;
    let lease = routed.lease;
    let begun = routed.started;

    let head: Vec<Bytes> = match format {
        OutputFormat::Pcm => vec![first],
        _ => vec![Bytes::from(wav_stream_header(rate)), first],
    };
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
        bytes: 0,
        rate,
        request_id: rid.0,
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
                t.gw.metrics.syntheses.inc(&[t.engine.as_str(), e.code()]);
                Some((Err(std::io::Error::other(e.to_string())), t))
            }
            None => {
                if let Some(l) = t.lease.take() {
                    l.finish(Outcome::Success, t.begun.elapsed());
                    t.gw.metrics.syntheses.inc(&[t.engine.as_str(), "ok"]);
                    if t.rate > 0 {
                        t.gw.metrics
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
    let body = futures::stream::iter(head.into_iter().map(Ok::<Bytes, std::io::Error>)).chain(rest);
    let mut res = Response::new(Body::from_stream(body));
    let h = res.headers_mut();
    let ct = match format {
        OutputFormat::Pcm => format!("audio/pcm;rate={rate}"),
        _ => "audio/wav".to_string(),
    };
    h.insert(header::CONTENT_TYPE, hv(ct));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert("x-node-id", hv(&node_id));
    h.insert("x-engine", hv(engine));
    h.insert(QUEUE_TIME_HEADER, hv(queue_time.as_millis()));
    h.insert(SAMPLE_RATE_HEADER, hv(rate));
    h.insert("x-first-audio-ms", hv(started.first_audio.as_millis()));
    Ok(res)
}
