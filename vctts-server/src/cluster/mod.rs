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
//! 16-bit PCM, wrapped by the gateway).

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
#[derive(Debug, Clone)]
pub struct NodeAudio {
    /// The encoded audio.
    pub bytes: Bytes,
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
