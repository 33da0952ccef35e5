//! The OpenAPI 3.1 description of the public API, generated from the
//! handlers' `#[utoipa::path]` annotations and the wire types' schemas, and
//! served at `GET /api/v3/openapi.json`.
//!
//! Invariant: every public route of [`crate::api::public_routes`] appears here
//! (the integration test `openapi_document_covers_every_public_route` checks
//! each route, its methods and the shared schemas), except the other servers'
//! APIs of `compat:` ([`crate::api::xtts_compat`]), which are theirs.

use crate::api;
use crate::error::{ErrorBody, ErrorObject};
use crate::wire;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use utoipa::OpenApi;

/// The document.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "vctts API",
        description = "Voice-clone text-to-speech: synthesis (whole, streamed, batched), voices, \
                       audio preprocessing, service state, and an OpenAI-compatible speech endpoint. \
                       Every error answers {\"error\":{\"code\",\"message\",\"request_id\"}}; every \
                       answer carries X-Request-Id."
    ),
    paths(
        api::synth::synthesize,
        api::synth::synthesize_stream,
        api::batch::synthesize_batch,
        api::voices::extract_voice,
        api::voices::list_voices,
        api::voices::get_voice,
        api::voices::delete_voice,
        api::voices::voice_audio,
        api::preprocess::preprocess,
        api::system::engines,
        api::system::nodes,
        api::system::health,
        api::system::live,
        api::system::ready,
        api::system::metrics,
        serve,
        api::openai::speech,
        api::openai::list_models,
        api::openai::get_model,
        api::openai::list_voices,
    ),
    components(schemas(
        ErrorBody,
        ErrorObject,
        wire::SynthesizeRequest,
        wire::SamplingDto,
        wire::BatchRequest,
        wire::BatchResponse,
        wire::BatchItemResult,
        wire::ExtractVoiceForm,
        wire::ExtractVoiceResponse,
        wire::ExtractEngineResult,
        wire::QualityDto,
        wire::VoiceDto,
        wire::VoicesPage,
        wire::PreprocessForm,
        wire::PreprocessResponse,
        wire::EngineDto,
        wire::EnginesResponse,
        wire::NodeDto,
        wire::NodeMetricsDto,
        wire::NodesResponse,
        wire::HealthResponse,
        wire::SpeechRequest,
        wire::SpeechVoice,
        wire::AudioFormatName,
        wire::SpeechFormatName,
        wire::StreamFormatName,
        wire::OpenAiModel,
        wire::OpenAiModelList,
        wire::OpenAiVoice,
        wire::OpenAiVoiceList,
        api::openai::OpenAiErrorBody,
        api::openai::OpenAiError,
    )),
    tags(
        (name = "synthesis", description = "Text to speech"),
        (name = "voices", description = "Cloned voices"),
        (name = "audio", description = "Audio tools"),
        (name = "service", description = "Engines, nodes, health and metrics"),
        (name = "openai", description = "OpenAI-compatible endpoints"),
    )
)]
pub struct ApiDoc;

/// The document as JSON.
pub fn document() -> String {
    let mut doc = ApiDoc::openapi();
    doc.info.version = env!("CARGO_PKG_VERSION").to_string();
    doc.to_json().unwrap_or_else(|_| "{}".to_string())
}

/// This document.
#[utoipa::path(get, path = "/api/v3/openapi.json", tag = "service",
    responses((status = 200, description = "The OpenAPI 3.1 document", content_type = "application/json")))]
pub async fn serve() -> Response {
    let mut res = document().into_response();
    res.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    res
}
