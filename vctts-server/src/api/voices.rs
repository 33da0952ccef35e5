//! Voices: `POST /api/v3/extract_voice`, `GET /api/v3/voices` (paged),
//! `GET|DELETE /api/v3/voices/{id}`, `GET /api/v3/voices/{id}/audio`.
//!
//! Extraction: the upload is decoded and measured at the gateway; a profile
//! is made on a node of each requested engine (default: every engine with a
//! ready node that can clone); the voice is stored with the profiles that
//! were made, in one transaction. A profile for another engine is made later,
//! on first use, from the stored reference.
//!
//! Invariants: bad input (wrong content type, corrupt or oversized audio,
//! path-like ids, unknown engines, an id in use) is refused before anything
//! is stored; when no requested engine could make a profile nothing is
//! stored and the first engine's error is the answer.

use super::upload::{Upload, read_upload};
use crate::cluster::CallContext;
use crate::error::{ApiError, ApiResult, ErrorBody, ErrorObject};
use crate::gateway::Gateway;
use crate::http::context::RequestId;
use crate::http::extract::ApiQuery;
use crate::wire::{
    ExtractEngineResult, ExtractVoiceForm, ExtractVoiceResponse, QualityDto, VoiceDto, VoicesPage,
    VoicesQuery,
};
use axum::Extension;
use axum::Json;
use axum::body::Body;
use axum::extract::multipart::MultipartRejection;
use axum::extract::{Multipart, Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use std::sync::Arc;
use vctts::{Reference, StoreExt};
use vctts_core::StoredVoice;
use vctts_core::{EngineKind, Error, VoiceId, VoiceProfile};
use vctts_engines::audio::decode::DecodeLimits;

/// Longest voice name, characters.
pub const MAX_NAME_CHARS: usize = 200;

pub(crate) fn voice_dto(v: &StoredVoice) -> VoiceDto {
    VoiceDto {
        id: v.voice.id.to_string(),
        name: v.voice.name.clone(),
        language: v.voice.language.clone(),
        transcript: v.voice.transcript.clone(),
        engines: v.voice.engines.iter().map(|e| e.to_string()).collect(),
        reference_seconds: v.voice.reference_seconds,
        created_at: v.voice.created_at,
        quality: v
            .quality_json
            .as_deref()
            .and_then(|q| serde_json::from_str::<QualityDto>(q).ok()),
    }
}

fn error_object(e: &ApiError, request_id: &str) -> ErrorObject {
    ErrorObject {
        code: e.code().to_string(),
        message: e.to_string(),
        request_id: Some(request_id.to_string()),
        limit_layer: None,
        engine: None,
        details: e.core().and_then(crate::error::details_of),
    }
}

fn requested_engines(upload: &Upload) -> ApiResult<Option<Vec<EngineKind>>> {
    let Some(list) = upload.text("engines") else {
        return Ok(None);
    };
    let mut out = Vec::new();
    for name in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let kind = name.parse::<EngineKind>()?;
        if !out.contains(&kind) {
            out.push(kind);
        }
    }
    if out.is_empty() {
        return Err(Error::invalid("engines", "names no engine").into());
    }
    Ok(Some(out))
}

/// Makes a voice from reference audio and stores it.
#[utoipa::path(
    post,
    path = "/api/v3/extract_voice",
    tag = "voices",
    request_body(content = ExtractVoiceForm, content_type = "multipart/form-data"),
    responses(
        (status = 201, description = "The stored voice, its quality report and what each engine did", body = ExtractVoiceResponse),
        (status = 400, description = "Malformed form or voice id", body = ErrorBody),
        (status = 413, description = "Upload too large", body = ErrorBody),
        (status = 415, description = "Not multipart/form-data", body = ErrorBody),
        (status = 422, description = "Corrupt or unusable audio, unknown engine, id in use", body = ErrorBody),
        (status = 503, description = "No ready node can make a profile", body = ErrorBody),
    )
)]
pub async fn extract_voice(
    State(gw): State<Arc<Gateway>>,
    Extension(rid): Extension<RequestId>,
    mp: Result<Multipart, MultipartRejection>,
) -> ApiResult<Response> {
    let limits = gw.config().limits.clone();
    let upload = read_upload(
        mp,
        &["name", "voice_id", "transcript", "language", "engines"],
        limits.max_upload_size.0,
    )
    .await?;
    let id = match upload.text("voice_id") {
        Some(v) => VoiceId::new(v)?,
        None => VoiceId::new(format!("v-{}", &uuid::Uuid::new_v4().simple().to_string()[..16]))?,
    };
    let name = upload.text("name").unwrap_or(id.as_str()).to_string();
    if name.chars().count() > MAX_NAME_CHARS {
        return Err(Error::invalid("name", format!("longer than {MAX_NAME_CHARS} characters")).into());
    }
    let transcript = upload.text("transcript").map(str::to_string);
    if let Some(t) = &transcript {
        if t.chars().count() > limits.max_text_chars {
            return Err(Error::TextTooLong {
                len: t.chars().count(),
                limit: limits.max_text_chars,
            }
            .into());
        }
    }
    let language = upload
        .text("language")
        .filter(|l| !l.trim().is_empty())
        .map(vctts_core::Language::parse)
        .transpose()?;
    let requested = requested_engines(&upload)?;
    let check_id = id.clone();
    if gw.store().run(move |s| s.exists(&check_id)).await? {
        return Err(Error::invalid("voice_id", format!("voice {:?} already exists", id.as_str())).into());
    }

    // Decode and measure off the async runtime.
    let bytes = upload.audio.clone();
    let hint = upload.hint().map(str::to_string);
    let dl = DecodeLimits {
        max_seconds: limits.max_audio_seconds.0.as_secs_f32(),
        max_bytes: limits.max_upload_size.0 as usize,
        ..DecodeLimits::default()
    };
    let prepared = tokio::task::spawn_blocking(move || Reference::decode(&bytes, hint.as_deref(), &dl))
        .await
        .map_err(|e| Error::Internal(format!("decoder task failed: {e}")))??
        .transcript(transcript.clone())
        .language(language.clone());
    let quality = QualityDto::from(&prepared.quality);

    let engines = match requested {
        Some(list) => list,
        None => {
            let able: Vec<EngineKind> = EngineKind::ALL
                .into_iter()
                .filter(|e| gw.registry().serving(*e) > 0)
                .filter(|e| gw.engine_info(*e).is_some_and(|i| i.cloning))
                .collect();
            if able.is_empty() {
                // No engine says it can clone: ask the ready ones anyway, so
                // the answer is each engine's own reason (e.g. a missing
                // converter), and nothing is stored.
                let ready: Vec<EngineKind> = EngineKind::ALL
                    .into_iter()
                    .filter(|e| gw.registry().serving(*e) > 0)
                    .collect();
                if ready.is_empty() {
                    return Err(Error::NoNodeAvailable {
                        engine: gw
                            .default_engine()
                            .unwrap_or(crate::gateway::FALLBACK_ENGINE)
                            .to_string(),
                    }
                    .into());
                }
                ready
            } else {
                able
            }
        }
    };

    let reference = &prepared.audio;
    let ctx = CallContext {
        request_id: rid.0.clone(),
    };
    let mut results = Vec::new();
    let mut profiles: Vec<VoiceProfile> = Vec::new();
    let mut first_error: Option<ApiError> = None;
    for engine in engines {
        let attempt = async {
            let info = gw.engine_info(engine).ok_or_else(|| Error::NoNodeAvailable {
                engine: engine.to_string(),
            })?;
            if info.needs_transcript && reference.transcript.is_none() {
                return Err(ApiError::from(Error::invalid(
                    "transcript",
                    format!("{engine} needs a transcript of the reference"),
                )));
            }
            Ok(gw.extract_on(engine, reference, Some(id.as_str()), &ctx).await?)
        };
        match attempt.await {
            Ok((p, node)) => {
                results.push(ExtractEngineResult {
                    engine: engine.to_string(),
                    ok: true,
                    node_id: Some(node.to_string()),
                    error: None,
                });
                profiles.push(p);
            }
            Err(e) => {
                tracing::warn!(request_id = %rid.0, voice_id = %id, engine = %engine, error = %e,
                    "voice extraction failed on this engine");
                results.push(ExtractEngineResult {
                    engine: engine.to_string(),
                    ok: false,
                    node_id: None,
                    error: Some(error_object(&e, &rid.0)),
                });
                first_error.get_or_insert(e);
            }
        }
    }
    if profiles.is_empty() {
        gw.metrics().extractions.inc(&["failed"]);
        return Err(first_error.unwrap_or_else(|| Error::Internal("no engine was tried".into()).into()));
    }

    let new = prepared.new_voice(id.clone(), name, profiles);
    let stored = gw.store().run(move |s| s.insert(new)).await?;
    gw.metrics().extractions.inc(&["ok"]);
    tracing::info!(request_id = %rid.0, voice_id = %id, engines = ?stored.voice.engines, "voice stored");
    let body = ExtractVoiceResponse {
        voice: voice_dto(&stored),
        quality,
        engines: results,
    };
    let mut res = (StatusCode::CREATED, Json(body)).into_response();
    if let Ok(v) = HeaderValue::from_str(&format!("/api/v3/voices/{id}")) {
        res.headers_mut().insert(header::LOCATION, v);
    }
    Ok(res)
}

/// Lists stored voices, newest first.
#[utoipa::path(
    get,
    path = "/api/v3/voices",
    tag = "voices",
    params(VoicesQuery),
    responses(
        (status = 200, description = "A page of voices", body = VoicesPage),
        (status = 400, description = "Bad query string", body = ErrorBody),
        (status = 422, description = "Bad limit", body = ErrorBody),
    )
)]
pub async fn list_voices(
    State(gw): State<Arc<Gateway>>,
    ApiQuery(q): ApiQuery<VoicesQuery>,
) -> ApiResult<Json<VoicesPage>> {
    let offset = q.offset.unwrap_or(0);
    let limit = q.limit.unwrap_or(50);
    if !(1..=200).contains(&limit) {
        return Err(Error::invalid("limit", format!("must be 1..=200, got {limit}")).into());
    }
    let (voices, total) = gw.store().run(move |s| s.list(offset, limit)).await?;
    let next = offset + voices.len();
    Ok(Json(VoicesPage {
        voices: voices.iter().map(voice_dto).collect(),
        total,
        offset,
        limit,
        next_offset: (next < total).then_some(next),
    }))
}

/// One voice.
#[utoipa::path(
    get,
    path = "/api/v3/voices/{id}",
    tag = "voices",
    params(("id" = String, Path, description = "Voice id")),
    responses(
        (status = 200, description = "The voice", body = VoiceDto),
        (status = 400, description = "Malformed id", body = ErrorBody),
        (status = 404, description = "No such voice", body = ErrorBody),
    )
)]
pub async fn get_voice(State(gw): State<Arc<Gateway>>, Path(id): Path<String>) -> ApiResult<Json<VoiceDto>> {
    let id = VoiceId::new(id)?;
    let lookup = id.clone();
    let v = gw
        .store()
        .run(move |s| s.get(&lookup))
        .await?
        .ok_or_else(|| Error::VoiceNotFound(id.to_string()))?;
    Ok(Json(voice_dto(&v)))
}

/// Deletes a voice, its profiles and its reference audio.
#[utoipa::path(
    delete,
    path = "/api/v3/voices/{id}",
    tag = "voices",
    params(("id" = String, Path, description = "Voice id")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 400, description = "Malformed id", body = ErrorBody),
        (status = 404, description = "No such voice", body = ErrorBody),
    )
)]
pub async fn delete_voice(
    State(gw): State<Arc<Gateway>>,
    Extension(rid): Extension<RequestId>,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    let id = VoiceId::new(id)?;
    let target = id.clone();
    gw.profiles().forget(&id);
    if gw.store().run(move |s| s.delete(&target)).await? {
        tracing::info!(request_id = %rid.0, voice_id = %id, "voice deleted");
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(Error::VoiceNotFound(id.to_string()).into())
    }
}

/// The stored reference audio of a voice (16-bit WAV).
#[utoipa::path(
    get,
    path = "/api/v3/voices/{id}/audio",
    tag = "voices",
    params(("id" = String, Path, description = "Voice id")),
    responses(
        (status = 200, description = "The reference audio", content_type = "audio/wav"),
        (status = 400, description = "Malformed id", body = ErrorBody),
        (status = 404, description = "No such voice", body = ErrorBody),
    )
)]
pub async fn voice_audio(State(gw): State<Arc<Gateway>>, Path(id): Path<String>) -> ApiResult<Response> {
    let id = VoiceId::new(id)?;
    let lookup = id.clone();
    let wav = gw
        .store()
        .run(move |s| s.reference_audio(&lookup))
        .await?
        .ok_or_else(|| Error::VoiceNotFound(id.to_string()))?;
    let mut res = Response::new(Body::from(wav));
    res.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("audio/wav"));
    Ok(res)
}
