//! The OpenAPI 3.1 description of the public API, generated from the
//! handlers' `#[utoipa::path]` annotations and the wire types' schemas, and
//! served at `GET /api/v3/openapi.json`.
//!
//! Invariant: every public route of [`crate::api::public_routes`] appears here
//! (the integration test `openapi_document_covers_every_public_route` checks
//! each route, its methods and the shared schemas), except the other servers'
//! APIs of `compat:` ([`crate::api::xtts_compat`]), which are theirs.

use crate::api::{batch, openai, preprocess, synth, system, voices};
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
        synth::synthesize,
        synth::synthesize_stream,
        batch::synthesize_batch,
        voices::extract_voice,
        voices::list_voices,
        voices::get_voice,
        voices::delete_voice,
        voices::voice_audio,
        preprocess::preprocess,
        system::engines,
        system::nodes,
        system::health,
        system::live,
        system::ready,
        system::metrics,
        serve,
        openai::speech,
        openai::list_models,
        openai::get_model,
        openai::list_voices,
        crate::admin::handlers::public_announcements,
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
        wire::EngineName,
        wire::SpeechFormatName,
        wire::AnnouncementDto,
        wire::AnnouncementsResponse,
        wire::BatchFormatName,
        wire::StreamFormatName,
        wire::OpenAiModel,
        wire::OpenAiModelList,
        wire::OpenAiVoice,
        wire::OpenAiVoiceList,
        crate::error::OpenAiErrorBody,
        crate::error::OpenAiError,
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
    let Ok(mut value) = serde_json::to_value(&doc) else {
        return "{}".to_string();
    };
    complete(&mut value);
    serde_json::to_string(&value).unwrap_or_else(|_| "{}".to_string())
}

/// Adds what every operation shares, so generated clients know every answer
/// they can get: the API-key security schemes (keys are optional unless the
/// gateway requires them), `429` on every operation (the limiter is in front
/// of all of them), `400` on every operation with query parameters or a body, `415` on
/// every operation with a body, and `503` on the
/// operations that need a node. Responses an operation documents itself are
/// kept; errors on `/v1/*` refer to OpenAI's error body.
fn complete(doc: &mut serde_json::Value) {
    use serde_json::json;
    if let Some(components) = doc.get_mut("components").and_then(|c| c.as_object_mut()) {
        components.insert(
            "securitySchemes".into(),
            json!({
                "bearer": {"type": "http", "scheme": "bearer",
                           "description": "An API key as `Authorization: Bearer <key>` (required when `auth.api_key_enabled`)"},
                "api_key": {"type": "apiKey", "in": "header", "name": "X-API-Key",
                            "description": "An API key in `X-API-Key` (required when `auth.api_key_enabled`)"}
            }),
        );
    }
    if let Some(obj) = doc.as_object_mut() {
        obj.insert("security".into(), json!([{}, {"bearer": []}, {"api_key": []}]));
    }
    let Some(paths) = doc.get_mut("paths").and_then(|p| p.as_object_mut()) else {
        return;
    };
    for (path, item) in paths.iter_mut() {
        let openai = path.starts_with("/v1/");
        let body = if openai { "OpenAiErrorBody" } else { "ErrorBody" };
        let error = |description: &str| {
            json!({
                "description": description,
                "content": {"application/json": {"schema": {"$ref": format!("#/components/schemas/{body}")}}}
            })
        };
        let needs_node = path.starts_with("/api/v3/synthesize")
            || path == "/api/v3/extract_voice"
            || path == "/v1/audio/speech";
        let voice_path = path.starts_with("/api/v3/voices/{id}");
        let Some(item) = item.as_object_mut() else {
            continue;
        };
        for (method, op) in item.iter_mut() {
            if !matches!(method.as_str(), "get" | "post" | "put" | "delete" | "patch") {
                continue;
            }
            if voice_path {
                voice_id_pattern(op);
            }
            let has_body = op.get("requestBody").is_some();
            let has_query = op
                .get("parameters")
                .and_then(|p| p.as_array())
                .is_some_and(|ps| ps.iter().any(|p| p["in"] == "query"));
            let Some(responses) = op.get_mut("responses").and_then(|r| r.as_object_mut()) else {
                continue;
            };
            responses
                .entry("429")
                .or_insert_with(|| error("Rate limited; see Retry-After and RateLimit-*"));
            if has_query || has_body {
                responses.entry("400").or_insert_with(|| {
                    error(
                        "The query string or the body cannot be read (`invalid_query`, \
                         `malformed_json`, `malformed_multipart`)",
                    )
                });
            }
            if has_body {
                responses
                    .entry("415")
                    .or_insert_with(|| error("The body is not of the content type the operation takes"));
            }
            if needs_node {
                responses
                    .entry("503")
                    .or_insert_with(|| error("No ready node (or all are overloaded); see Retry-After"));
            }
        }
    }
}

/// The voice id path parameter gets the id rule: the ASCII part of what
/// [`vctts_core::VoiceId`] accepts (it also takes letters of any script).
fn voice_id_pattern(op: &mut serde_json::Value) {
    let Some(params) = op.get_mut("parameters").and_then(|p| p.as_array_mut()) else {
        return;
    };
    for p in params
        .iter_mut()
        .filter(|p| p["in"] == "path" && p["name"] == "id")
    {
        if let Some(schema) = p.get_mut("schema").and_then(|s| s.as_object_mut()) {
            schema.insert("pattern".into(), "^[A-Za-z0-9_-]+([.][A-Za-z0-9_-]+)*$".into());
            schema.insert("maxLength".into(), vctts_core::voice::MAX_VOICE_ID_LEN.into());
        }
    }
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
