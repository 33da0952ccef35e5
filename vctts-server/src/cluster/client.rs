//! The gateway's HTTP client to one worker: [`RemoteNode`] implements
//! [`NodeApi`] over the cluster protocol.
//!
//! Failure classification (what failover reads):
//! - cannot connect, connection reset, body cut short → [`Error::NodeUnavailable`];
//! - a stream with no answer head (or, at the gateway, no first chunk) within
//!   `first_byte_timeout`, or a whole synthesis, extraction or action with no
//!   complete answer within `request_timeout` (a node sends their head only
//!   when the work is done) → [`Error::Timeout`];
//! - an error body → the worker's own error, rebuilt from its code.
//!
//! - a whole answer that is not the audio it claims to be ([`check_audio`]),
//!   or a stream that is not 16-bit PCM → [`Error::NodeUnavailable`];
//! - an answer larger than the request can legitimately produce
//!   ([`crate::budget::answer_cap_bytes`]), an error body over
//!   [`ERROR_BODY_LIMIT`] or a JSON answer over [`JSON_BODY_LIMIT`] →
//!   [`Error::NodeUnavailable`] (the gateway never buffers an answer without
//!   a limit; a stream is cut at the same cap).
//!
//! A whole synthesis answer is not gathered here: its front (a WAV header's
//! worth) is read and checked, then the rest is handed on as
//! [`AudioBody::Relayed`], capped chunk by chunk ([`relay_answer`]). A
//! failure before the front is in hand is an error of the call (failed
//! over); after it, an error that ends the relayed body.
//!
//! All of these are retryable; so are the worker's retryable codes.
//! Invariant: dropping a returned [`NodeStream`] closes its connection, which
//! cancels the work on the worker.

use super::proto::{
    self, AUDIO_DURATION_HEADER, ExtractCall, ExtractResult, INFERENCE_TIME_HEADER, NodeAction, NodeStatus,
    QUEUE_TIME_HEADER, REQUEST_ID_HEADER, SAMPLE_RATE_HEADER, SynthesizeCall, TOKEN_HEADER, WireProfile,
};
use super::{AudioBody, CallContext, NodeApi, NodeAudio, NodeStream};
use crate::error::ErrorBody;
use async_trait::async_trait;
use futures::StreamExt;
use std::time::Duration;
use vctts_core::{Error, OutputFormat, ReferenceAudio, Result, SynthesisRequest, VoiceProfile};

/// Timeouts of node calls.
#[derive(Debug, Clone, Copy)]
pub struct NodeTimeouts {
    /// Until the answer head (and, for streams, the first chunk).
    pub first_byte: Duration,
    /// For a whole non-streamed call.
    pub request: Duration,
    /// Most audio one request may make (`limits.max_output_duration`): bounds
    /// what a node may send back.
    pub max_output: Duration,
}

/// Largest error body read from a node.
pub const ERROR_BODY_LIMIT: u64 = 64 << 10;
/// Largest JSON answer read from a node (a voice profile, a status).
pub const JSON_BODY_LIMIT: u64 = 32 << 20;

/// Reads a body of at most `cap` bytes within `wait`; a longer one is an
/// error as soon as it passes the cap (nothing beyond it is buffered).
async fn read_capped(node: &str, resp: reqwest::Response, cap: u64, wait: Duration) -> Result<bytes::Bytes> {
    if resp.content_length().is_some_and(|n| n > cap) {
        return Err(too_large(node, cap));
    }
    let read = async {
        let mut buf = bytes::BytesMut::new();
        let mut body = resp.bytes_stream();
        while let Some(chunk) = body.next().await {
            let chunk = chunk.map_err(|e| transport_error(node, &e))?;
            if (buf.len() + chunk.len()) as u64 > cap {
                return Err(too_large(node, cap));
            }
            buf.extend_from_slice(&chunk);
        }
        Ok(buf.freeze())
    };
    match tokio::time::timeout(wait, read).await {
        Err(_) => Err(body_timeout(node, wait)),
        Ok(r) => r,
    }
}

/// Checks that a node's whole answer is what it says it is: a WAV file
/// starts with its RIFF/WAVE header, raw PCM has whole 16-bit samples, the
/// content type is audio and the sample rate is one an engine makes. Anything
/// else is garbage, [`Error::NodeUnavailable`] (a node fault, failed over).
pub fn check_audio(node: &str, content_type: &str, bytes: &[u8], sample_rate: u32) -> Result<()> {
    check_start(node, content_type, bytes, Some(bytes.len() as u64), sample_rate)
}

/// The bytes [`check_start`] needs from the front of an answer (a WAV header).
pub const HEAD_BYTES: usize = 44;

/// [`check_audio`] on the first bytes of an answer (at least
/// [`HEAD_BYTES`] of them, or all of it) whose whole length is `total` when
/// known: what can be told from the front is told before any byte is relayed.
pub fn check_start(
    node: &str,
    content_type: &str,
    head: &[u8],
    total: Option<u64>,
    sample_rate: u32,
) -> Result<()> {
    let garbage = |why: String| Error::NodeUnavailable {
        node: node.to_string(),
        message: format!("answered something that is not audio: {why}"),
    };
    let ct = content_type.to_ascii_lowercase();
    if !(1..=crate::budget::MAX_SAMPLE_RATE as u32 * 4).contains(&sample_rate) {
        return Err(garbage(format!("sample rate {sample_rate}")));
    }
    if is_wav(&ct) {
        if head.len() < HEAD_BYTES || &head[0..4] != b"RIFF" || &head[8..12] != b"WAVE" {
            return Err(garbage("a WAV answer without a RIFF/WAVE header".into()));
        }
    } else if is_pcm(&ct) {
        if total.is_some_and(|n| n % 2 != 0) {
            return Err(garbage("16-bit PCM with an odd number of bytes".into()));
        }
    } else if !ct.starts_with("audio/") {
        return Err(garbage(format!("content type {content_type:?}")));
    }
    Ok(())
}

fn is_wav(ct: &str) -> bool {
    ct.starts_with("audio/wav") || ct.starts_with("audio/x-wav") || ct.starts_with("audio/wave")
}

fn is_pcm(ct: &str) -> bool {
    ct.starts_with("audio/pcm") || ct.starts_with("audio/l16")
}

/// The error of a node that sent more than `cap` bytes.
fn too_large(node: &str, cap: u64) -> Error {
    Error::NodeUnavailable {
        node: node.to_string(),
        message: format!("answered more than the {cap} bytes this call can legitimately produce"),
    }
}

/// The error of a node whose answer did not end by `deadline`.
fn body_timeout(node: &str, wait: Duration) -> Error {
    Error::Timeout(format!(
        "node {node} did not finish its answer within {:.1}s",
        wait.as_secs_f64()
    ))
}

/// Reads the front of a whole answer and returns it with the rest as a
/// relayed body: the front is checked ([`check_start`]) before anything is
/// returned, so a node that fails before its first bytes can still be failed
/// over; the rest is passed on chunk by chunk (never gathered), ended with
/// an error when it passes `cap`, when the transfer breaks, when it does not
/// end within `wait` of the answer head, or (raw PCM of unknown length) when
/// it ends on half a sample.
async fn relay_answer(
    node: &str,
    resp: reqwest::Response,
    content_type: &str,
    sample_rate: u32,
    cap: u64,
    wait: Duration,
) -> Result<AudioBody> {
    let declared = resp.content_length();
    if declared.is_some_and(|n| n > cap) {
        return Err(too_large(node, cap));
    }
    let deadline = tokio::time::Instant::now() + wait;
    let mut body = resp.bytes_stream();
    // The front: chunks until a WAV header's worth has come (usually the
    // first chunk), or the end.
    let mut head = bytes::BytesMut::new();
    let mut ended = false;
    while head.len() < HEAD_BYTES {
        match tokio::time::timeout_at(deadline, body.next()).await {
            Err(_) => return Err(body_timeout(node, wait)),
            Ok(None) => {
                ended = true;
                break;
            }
            Ok(Some(Err(e))) => return Err(transport_error(node, &e)),
            Ok(Some(Ok(chunk))) => {
                if (head.len() + chunk.len()) as u64 > cap {
                    return Err(too_large(node, cap));
                }
                head.extend_from_slice(&chunk);
            }
        }
    }
    let total = if ended { Some(head.len() as u64) } else { declared };
    check_start(node, content_type, &head, total, sample_rate)?;
    let head = head.freeze();
    if ended {
        return Ok(AudioBody::Whole(head));
    }
    struct Rest {
        body: futures::stream::BoxStream<'static, reqwest::Result<bytes::Bytes>>,
        node: String,
        sent: u64,
        check_parity: bool,
        done: bool,
    }
    let rest = Rest {
        body: body.boxed(),
        node: node.to_string(),
        sent: head.len() as u64,
        // Raw PCM of unknown length is checked for whole samples at its end.
        check_parity: declared.is_none() && is_pcm(&content_type.to_ascii_lowercase()),
        done: false,
    };
    let rest = futures::stream::unfold(rest, move |mut r| async move {
        if r.done {
            return None;
        }
        let item = match tokio::time::timeout_at(deadline, r.body.next()).await {
            Err(_) => Err(body_timeout(&r.node, wait)),
            Ok(None) if r.check_parity && r.sent % 2 != 0 => Err(Error::NodeUnavailable {
                node: r.node.clone(),
                message: "answered something that is not audio: 16-bit PCM with an odd number of bytes"
                    .into(),
            }),
            Ok(None) => return None,
            Ok(Some(Err(e))) => Err(transport_error(&r.node, &e)),
            Ok(Some(Ok(chunk))) => {
                r.sent += chunk.len() as u64;
                if r.sent > cap {
                    Err(too_large(&r.node, cap))
                } else {
                    Ok(chunk)
                }
            }
        };
        // The body ends at its first error (dropping the node's connection).
        r.done = item.is_err();
        if r.done {
            r.body = futures::stream::empty().boxed();
        }
        Some((item, r))
    });
    let chunks = futures::stream::once(futures::future::ready(Ok(head)))
        .chain(rest)
        .boxed();
    Ok(AudioBody::Relayed {
        len: declared,
        chunks,
    })
}

/// A worker reached over HTTP.
#[derive(Debug, Clone)]
pub struct RemoteNode {
    node_id: String,
    endpoint: String,
    http: reqwest::Client,
    token: Option<String>,
    timeouts: NodeTimeouts,
}

/// Maps a transport error to the error failover understands.
pub fn transport_error(node: &str, e: &reqwest::Error) -> Error {
    if e.is_timeout() {
        return Error::Timeout(format!("node {node} did not answer in time"));
    }
    let what = if e.is_connect() {
        "cannot connect"
    } else if e.is_body() || e.is_decode() {
        "the answer was cut short"
    } else {
        "the call failed"
    };
    // The source chain says why (refused, reset, ...).
    let mut cause = String::new();
    let mut src: Option<&dyn std::error::Error> = std::error::Error::source(e);
    while let Some(s) = src {
        cause = s.to_string();
        src = s.source();
    }
    Error::NodeUnavailable {
        node: node.to_string(),
        message: if cause.is_empty() {
            what.to_string()
        } else {
            format!("{what}: {cause}")
        },
    }
}

fn header_u64(h: &reqwest::header::HeaderMap, name: &str) -> Option<u64> {
    h.get(name)?.to_str().ok()?.parse().ok()
}

impl RemoteNode {
    /// A client for the node at `endpoint` (e.g. `http://10.0.0.5:8002`).
    pub fn new(
        node_id: impl Into<String>,
        endpoint: impl Into<String>,
        http: reqwest::Client,
        token: Option<String>,
        timeouts: NodeTimeouts,
    ) -> Self {
        Self {
            node_id: node_id.into(),
            endpoint: endpoint.into().trim_end_matches('/').to_string(),
            http,
            token,
            timeouts,
        }
    }

    /// The node's base URL.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    fn request(&self, method: reqwest::Method, path: &str, ctx: &CallContext) -> reqwest::RequestBuilder {
        let url = format!("{}{}{}", self.endpoint, proto::PREFIX, path);
        let mut b = self
            .http
            .request(method, url)
            .header(REQUEST_ID_HEADER, &ctx.request_id);
        if let Some(t) = &self.token {
            b = b.header(TOKEN_HEADER, t);
        }
        b
    }

    /// Sends and waits for the answer head within `wait`; error answers
    /// become errors. Streams wait `first_byte` (their head comes as soon as
    /// the node admits the work); whole answers and actions wait `request`
    /// (a node sends their head only when the work is done).
    async fn send(&self, b: reqwest::RequestBuilder, wait: Duration) -> Result<reqwest::Response> {
        let resp = match tokio::time::timeout(wait, b.send()).await {
            Err(_) => {
                return Err(Error::Timeout(format!(
                    "node {} did not answer within {:.1}s",
                    self.node_id,
                    wait.as_secs_f64()
                )));
            }
            Ok(Err(e)) => return Err(transport_error(&self.node_id, &e)),
            Ok(Ok(r)) => r,
        };
        if resp.status().is_success() {
            return Ok(resp);
        }
        let status = resp.status();
        let body = read_capped(&self.node_id, resp, ERROR_BODY_LIMIT, self.timeouts.first_byte)
            .await
            .unwrap_or_default();
        match serde_json::from_slice::<ErrorBody>(&body) {
            Ok(b) => Err(crate::error::error_from_object(&b.error, &self.node_id)),
            Err(_) if status.is_server_error() => Err(Error::NodeUnavailable {
                node: self.node_id.clone(),
                message: format!("answered {status} without an error body"),
            }),
            Err(_) => Err(Error::Internal(format!(
                "node {} answered {status} without an error body",
                self.node_id
            ))),
        }
    }

    async fn json<T: serde::de::DeserializeOwned>(&self, resp: reqwest::Response) -> Result<T> {
        let bytes = read_capped(&self.node_id, resp, JSON_BODY_LIMIT, self.timeouts.request).await?;
        serde_json::from_slice(&bytes)
            .map_err(|e| Error::Internal(format!("node {} answered unreadable JSON: {e}", self.node_id)))
    }
}

#[async_trait]
impl NodeApi for RemoteNode {
    async fn synthesize(
        &self,
        ctx: &CallContext,
        request: &SynthesisRequest,
        profile: Option<&VoiceProfile>,
        format: OutputFormat,
    ) -> Result<NodeAudio> {
        let call = SynthesizeCall {
            request: request.clone(),
            profile: profile.map(WireProfile::from),
            format,
        };
        let resp = self
            .send(
                self.request(reqwest::Method::POST, "/synthesize", ctx)
                    .json(&call),
                self.timeouts.request,
            )
            .await?;
        let h = resp.headers().clone();
        let content_type = h
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("application/octet-stream")
            .to_string();
        let cap = crate::budget::answer_cap_bytes(request, self.timeouts.max_output);
        let sample_rate = header_u64(&h, SAMPLE_RATE_HEADER)
            .unwrap_or(0)
            .min(u32::MAX as u64) as u32;
        let body = relay_answer(
            &self.node_id,
            resp,
            &content_type,
            sample_rate,
            cap,
            self.timeouts.request,
        )
        .await?;
        Ok(NodeAudio {
            body,
            content_type,
            sample_rate,
            duration: Duration::from_millis(header_u64(&h, AUDIO_DURATION_HEADER).unwrap_or(0)),
            queue_time: Duration::from_millis(header_u64(&h, QUEUE_TIME_HEADER).unwrap_or(0)),
            inference_time: Duration::from_millis(header_u64(&h, INFERENCE_TIME_HEADER).unwrap_or(0)),
        })
    }

    async fn synthesize_stream(
        &self,
        ctx: &CallContext,
        request: &SynthesisRequest,
        profile: Option<&VoiceProfile>,
    ) -> Result<NodeStream> {
        let call = SynthesizeCall {
            request: request.clone(),
            profile: profile.map(WireProfile::from),
            format: OutputFormat::Pcm,
        };
        let resp = self
            .send(
                self.request(reqwest::Method::POST, "/synthesize/stream", ctx)
                    .json(&call),
                self.timeouts.first_byte,
            )
            .await?;
        let h = resp.headers();
        let sample_rate = header_u64(h, SAMPLE_RATE_HEADER)
            .unwrap_or(0)
            .min(u32::MAX as u64) as u32;
        let queue_time = Duration::from_millis(header_u64(h, QUEUE_TIME_HEADER).unwrap_or(0));
        let content_type = h
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        // A stream is raw 16-bit PCM: a node that says otherwise is not
        // relayed at all.
        if !content_type.to_ascii_lowercase().starts_with("audio/pcm") {
            return Err(Error::NodeUnavailable {
                node: self.node_id.clone(),
                message: format!("answered a stream that is not PCM audio ({content_type:?})"),
            });
        }
        check_audio(&self.node_id, "audio/pcm", &[], sample_rate)?;
        let node = self.node_id.clone();
        let cap = crate::budget::answer_cap_bytes(request, self.timeouts.max_output);
        let mut sent = 0u64;
        let chunks = resp
            .bytes_stream()
            .map(move |r| {
                let chunk = r.map_err(|e| transport_error(&node, &e))?;
                sent += chunk.len() as u64;
                if sent > cap {
                    return Err(Error::NodeUnavailable {
                        node: node.clone(),
                        message: format!("streamed more than the {cap} bytes this request can produce"),
                    });
                }
                Ok(chunk)
            })
            // The stream ends at the first error.
            .scan(false, |failed, item| {
                if *failed {
                    return futures::future::ready(None);
                }
                *failed = item.is_err();
                futures::future::ready(Some(item))
            })
            .boxed();
        Ok(NodeStream {
            sample_rate,
            queue_time,
            chunks,
        })
    }

    async fn extract_voice(&self, ctx: &CallContext, reference: &ReferenceAudio) -> Result<VoiceProfile> {
        let call = ExtractCall::new(reference);
        let resp = self
            .send(
                self.request(reqwest::Method::POST, "/extract_voice", ctx)
                    .json(&call),
                self.timeouts.request,
            )
            .await?;
        let r: ExtractResult = self.json(resp).await?;
        VoiceProfile::try_from(r.profile)
    }

    async fn control(&self, ctx: &CallContext, action: NodeAction) -> Result<NodeStatus> {
        let path = format!("/{}", action.as_str());
        let resp = self
            .send(
                self.request(reqwest::Method::POST, &path, ctx),
                self.timeouts.request,
            )
            .await?;
        self.json(resp).await
    }

    async fn health(&self, ctx: &CallContext) -> Result<NodeStatus> {
        let resp = self
            .send(
                self.request(reqwest::Method::GET, "/health", ctx),
                self.timeouts.first_byte,
            )
            .await?;
        self.json(resp).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn garbage_is_not_audio() {
        let mut wav = b"RIFF\0\0\0\0WAVEfmt ".to_vec();
        wav.resize(64, 0);
        assert!(check_audio("n", "audio/wav", &wav, 22050).is_ok());
        assert!(check_audio("n", "audio/pcm;rate=22050", &[0; 8], 22050).is_ok());
        for (ct, body, rate) in [
            (
                "audio/wav",
                &b"<html>not audio</html> padding padding padding padding"[..],
                22050,
            ),
            ("audio/pcm", &[0u8; 7][..], 22050),
            ("text/html", &[0u8; 8][..], 22050),
            ("audio/wav", &wav[..], 0),
        ] {
            let e = check_audio("n", ct, body, rate).unwrap_err();
            assert_eq!(e.code(), "node_unavailable", "{ct}");
            assert!(e.retryable());
        }
    }
}
