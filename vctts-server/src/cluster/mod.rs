//! The worker↔gateway protocol, both sides.
//!
//! - [`proto`]: the messages and headers;
//! - [`auth`]: the shared cluster token check (both sides);
//! - [`NodeApi`]: what the gateway can ask of a node, implemented over HTTP by
//!   [`client::RemoteNode`] and in-process by [`crate::worker::WorkerNode`]
//!   (standalone mode), so routing does not care where a node lives;
//! - [`client`]: the gateway's HTTP client to workers;
//! - [`agent`]: the worker's side of membership (register, heartbeat,
//!   re-register, deregister);
//! - [`gateway_api`]: the gateway's membership endpoints and node actions;
//! - [`worker_api`]: the worker's node endpoints.
//!
//! Invariant: every call carries its request id ([`CallContext`]); audio from a
//! node is already encoded in the format the request asked for (streams: raw
//! 16-bit PCM, wrapped by the gateway); a remote node's whole answer is
//! relayed as it arrives ([`AudioBody::Relayed`], capped), never held whole
//! unless the gateway must re-encode it.

pub mod agent;
pub mod auth;
pub mod client;
pub mod gateway_api;
pub mod proto;
pub mod worker_api;

use async_trait::async_trait;
use bytes::Bytes;
use futures::stream::BoxStream;
use std::time::Duration;
use vctts_core::{OutputFormat, ReferenceAudio, Result, SynthesisRequest, VoiceProfile};

pub use proto::{NodeAction, NodeStatus};

/// Per-call context passed to nodes.
#[derive(Debug, Clone)]
pub struct CallContext {
    /// The request id (from the client or generated at the edge).
    pub request_id: String,
}

/// A finished synthesis from a node, encoded as the request asked.
#[derive(Debug)]
pub struct NodeAudio {
    /// The encoded audio.
    pub body: AudioBody,
    /// Its content type.
    pub content_type: String,
    /// Its sample rate.
    pub sample_rate: u32,
    /// Its length.
    pub duration: Duration,
    /// Time spent waiting for an inference slot on the node.
    pub queue_time: Duration,
    /// Time the engine took.
    pub inference_time: Duration,
}

/// The bytes of a whole (non-streamed) answer.
///
/// Invariant: a [`AudioBody::Relayed`] body never yields more than the cap
/// of its request ([`crate::budget::answer_cap_bytes`]): a node that sends
/// more ends it with [`vctts_core::Error::NodeUnavailable`]; its first bytes
/// were checked to be the audio the answer claims before it was returned,
/// and dropping it closes the node's connection.
pub enum AudioBody {
    /// All of it, in memory (an in-process node made it here).
    Whole(Bytes),
    /// Arriving from a remote node, relayed as it comes.
    Relayed {
        /// The length the node declared (`Content-Length`), if it did.
        len: Option<u64>,
        /// The bytes in order, from the first; an `Err` ends them.
        chunks: BoxStream<'static, Result<Bytes>>,
    },
}

impl AudioBody {
    /// The whole length, when it is known before the bytes are read.
    pub fn len(&self) -> Option<u64> {
        match self {
            AudioBody::Whole(b) => Some(b.len() as u64),
            AudioBody::Relayed { len, .. } => *len,
        }
    }

    /// Whether the answer is known to be empty.
    pub fn is_empty(&self) -> bool {
        self.len() == Some(0)
    }

    /// The bytes as a stream (one chunk for a whole body).
    pub fn into_stream(self) -> BoxStream<'static, Result<Bytes>> {
        use futures::StreamExt;
        match self {
            AudioBody::Whole(b) => futures::stream::once(futures::future::ready(Ok(b))).boxed(),
            AudioBody::Relayed { chunks, .. } => chunks,
        }
    }

    /// All the bytes in memory (a relayed body is read to its end; it is
    /// capped, so this is bounded by what the request can produce).
    ///
    /// # Errors
    /// The error that ended a relayed body.
    pub async fn collect(self) -> Result<Bytes> {
        use futures::StreamExt;
        match self {
            AudioBody::Whole(b) => Ok(b),
            AudioBody::Relayed { len, mut chunks } => {
                // The declared length is at most the cap (checked before the
                // body was returned), so reserving it is bounded too.
                let mut buf = bytes::BytesMut::with_capacity(len.unwrap_or(0) as usize);
                while let Some(chunk) = chunks.next().await {
                    buf.extend_from_slice(&chunk?);
                }
                Ok(buf.freeze())
            }
        }
    }
}

impl std::fmt::Debug for AudioBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AudioBody::Whole(b) => f.debug_tuple("Whole").field(&b.len()).finish(),
            AudioBody::Relayed { len, .. } => f
                .debug_struct("Relayed")
                .field("len", len)
                .finish_non_exhaustive(),
        }
    }
}

/// A streamed synthesis from a node: raw 16-bit little-endian PCM chunks.
pub struct NodeStream {
    /// Sample rate of the PCM.
    pub sample_rate: u32,
    /// Time spent waiting for an inference slot on the node.
    pub queue_time: Duration,
    /// The chunks, in order; an `Err` ends the stream. Dropping it cancels the
    /// work on the node.
    pub chunks: BoxStream<'static, Result<Bytes>>,
}

impl std::fmt::Debug for NodeStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NodeStream")
            .field("sample_rate", &self.sample_rate)
            .field("queue_time", &self.queue_time)
            .finish_non_exhaustive()
    }
}

/// What the gateway can ask of a node.
#[async_trait]
pub trait NodeApi: Send + Sync {
    /// Speaks a whole request, encoded in `format` by the node.
    async fn synthesize(
        &self,
        ctx: &CallContext,
        request: &SynthesisRequest,
        profile: Option<&VoiceProfile>,
        format: OutputFormat,
    ) -> Result<NodeAudio>;
    /// Speaks a request as a stream (answers once the node has admitted it).
    async fn synthesize_stream(
        &self,
        ctx: &CallContext,
        request: &SynthesisRequest,
        profile: Option<&VoiceProfile>,
    ) -> Result<NodeStream>;
    /// Makes a profile of a reference.
    async fn extract_voice(&self, ctx: &CallContext, reference: &ReferenceAudio) -> Result<VoiceProfile>;
    /// Runs a lifecycle action.
    async fn control(&self, ctx: &CallContext, action: NodeAction) -> Result<NodeStatus>;
    /// The node's status.
    async fn health(&self, ctx: &CallContext) -> Result<NodeStatus>;
}
