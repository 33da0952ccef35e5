//! `POST /api/v3/synthesize/batch`: up to `limits.max_batch_items` requests,
//! run in parallel across nodes, each with its own status.
//!
//! Invariants: one failing item (malformed, unknown voice, node failure)
//! never fails the batch — it gets its own status and error body; the answer
//! lists items in request order; `format=zip` answers one audio file per
//! successful item (`item-000.wav`, `item-001.mp3`, ...: each item's own
//! `format`, encoded as on `/synthesize`) plus `manifest.json`
//! (the JSON answer without the base64 audio).

use super::synth::{prepare_encoded, synthesize_encoded};
use crate::cluster::CallContext;
use crate::error::{ApiError, ApiResult, ErrorBody, ErrorObject, WireError};
use crate::gateway::Gateway;
use crate::http::context::RequestId;
use crate::http::extract::{ApiQuery, JsonBody};
use crate::wire::{BatchItemResult, BatchQuery, BatchRequest, BatchResponse, SynthesizeRequest};
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use base64::Engine as _;
use std::io::Write;
use std::sync::Arc;
use vctts_core::Error;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Container {
    Json,
    Zip,
}

fn container(query: &BatchQuery, body: &BatchRequest) -> ApiResult<Container> {
    let name = query
        .format
        .as_deref()
        .or(body.format.as_deref())
        .unwrap_or("json");
    match name.to_ascii_lowercase().as_str() {
        "json" => Ok(Container::Json),
        "zip" => Ok(Container::Zip),
        other => Err(Error::invalid("format", format!("{other:?} is not json or zip")).into()),
    }
}

fn error_object(e: &ApiError, request_id: &str) -> ErrorObject {
    ErrorObject {
        code: e.code().to_string(),
        message: e.to_string(),
        request_id: Some(request_id.to_string()),
        limit_layer: e.rate_limit.as_ref().map(|r| r.layer.as_str().to_string()),
        engine: match e.core() {
            Some(Error::NoNodeAvailable { engine }) => Some(engine.clone()),
            _ => None,
        },
        details: e.core().and_then(crate::error::details_of),
    }
}

struct ItemOk {
    result: BatchItemResult,
    audio: bytes::Bytes,
    extension: &'static str,
}

async fn run_item(
    gw: Arc<Gateway>,
    index: usize,
    value: serde_json::Value,
    request_id: String,
) -> Result<ItemOk, BatchItemResult> {
    let fail = |e: ApiError| BatchItemResult {
        index,
        status: e.status().as_u16(),
        node_id: None,
        engine: None,
        content_type: None,
        sample_rate: None,
        duration_seconds: None,
        audio_base64: None,
        file: None,
        error: Some(error_object(&e, &request_id)),
    };
    let item: SynthesizeRequest = serde_json::from_value(value)
        .map_err(|e| fail(Error::invalid(format!("items[{index}]"), e.to_string()).into()))?;
    let parsed = item
        .to_domain(gw.config().limits.max_text_chars)
        .map_err(|e| fail(e.into()))?;
    let ctx = CallContext {
        request_id: format!("{request_id}.{index}"),
    };
    let (prepared, enc) = prepare_encoded(&gw, parsed, &ctx).await.map_err(fail)?;
    let extension = enc.extension();
    let (s, out) = synthesize_encoded(&gw, &prepared, enc, &ctx)
        .await
        .map_err(fail)?;
    Ok(ItemOk {
        result: BatchItemResult {
            index,
            status: 200,
            node_id: Some(s.node_id.to_string()),
            engine: Some(s.engine.to_string()),
            content_type: Some(out.content_type),
            sample_rate: Some(out.sample_rate),
            duration_seconds: Some(s.audio.duration.as_secs_f64()),
            audio_base64: None,
            file: None,
            error: None,
        },
        audio: out.bytes,
        extension,
    })
}

/// Synthesizes several requests in parallel; each item has its own status.
#[utoipa::path(
    post,
    path = "/api/v3/synthesize/batch",
    tag = "synthesis",
    request_body = BatchRequest,
    params(BatchQuery),
    responses(
        (status = 200, description = "Per-item results (JSON with base64 audio), or a ZIP with `format=zip`",
            content((BatchResponse = "application/json"), ("application/zip"))),
        (status = 413, description = "Too many items (`batch_too_large`), all items together would speak longer than `limits.max_output_duration` (`output_too_long`), or body too large", body = ErrorBody),
        (status = 422, description = "No items, or a bad `format`", body = ErrorBody),
    )
)]
pub async fn synthesize_batch(
    State(gw): State<Arc<Gateway>>,
    Extension(rid): Extension<RequestId>,
    ApiQuery(query): ApiQuery<BatchQuery>,
    JsonBody(body): JsonBody<BatchRequest>,
) -> ApiResult<Response> {
    let container = container(&query, &body)?;
    let limit = gw.config().limits.max_batch_items;
    if body.items.len() > limit {
        return Err(WireError::BatchTooLarge {
            count: body.items.len(),
            limit,
        }
        .into());
    }
    if body.items.is_empty() {
        return Err(Error::invalid("items", "must hold at least one request").into());
    }
    // One output budget for the whole batch (items that do not parse fail on their own).
    let max_output = gw.config().limits.max_output_duration.0;
    let total: f64 = body
        .items
        .iter()
        .filter_map(|v| serde_json::from_value::<SynthesizeRequest>(v.clone()).ok())
        .filter_map(|r| r.to_domain(gw.config().limits.max_text_chars).ok())
        .map(|p| crate::budget::estimate_seconds(&p.request))
        .sum();
    if total > max_output.as_secs_f64() {
        return Err(crate::budget::output_too_long(total, max_output).into());
    }
    let runs = body
        .items
        .into_iter()
        .enumerate()
        .map(|(i, v)| run_item(gw.clone(), i, v, rid.0.clone()));
    let results = futures::future::join_all(runs).await;
    let succeeded = results.iter().filter(|r| r.is_ok()).count();
    let failed = results.len() - succeeded;
    match container {
        Container::Json => {
            let items = results
                .into_iter()
                .map(|r| match r {
                    Ok(ok) => BatchItemResult {
                        audio_base64: Some(base64::engine::general_purpose::STANDARD.encode(&ok.audio)),
                        ..ok.result
                    },
                    Err(e) => e,
                })
                .collect();
            Ok(Json(BatchResponse {
                items,
                succeeded,
                failed,
            })
            .into_response())
        }
        Container::Zip => {
            let zip = tokio::task::spawn_blocking(move || build_zip(results, succeeded, failed))
                .await
                .map_err(|e| Error::Internal(format!("zip task failed: {e}")))??;
            let mut res = Response::new(Body::from(zip));
            let h = res.headers_mut();
            h.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/zip"));
            h.insert(
                header::CONTENT_DISPOSITION,
                HeaderValue::from_static("attachment; filename=\"batch.zip\""),
            );
            Ok(res)
        }
    }
}

fn build_zip(
    results: Vec<Result<ItemOk, BatchItemResult>>,
    succeeded: usize,
    failed: usize,
) -> ApiResult<Vec<u8>> {
    let zerr = |e: zip::result::ZipError| ApiError::from(Error::Internal(format!("writing the zip: {e}")));
    let mut buf = std::io::Cursor::new(Vec::new());
    let mut items = Vec::with_capacity(results.len());
    {
        let mut w = zip::ZipWriter::new(&mut buf);
        let opts =
            zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
        for r in results {
            match r {
                Ok(ok) => {
                    let name = format!("item-{:03}.{}", ok.result.index, ok.extension);
                    w.start_file(name.as_str(), opts).map_err(zerr)?;
                    w.write_all(&ok.audio)
                        .map_err(|e| Error::Internal(format!("writing the zip: {e}")))?;
                    items.push(BatchItemResult {
                        file: Some(name),
                        ..ok.result
                    });
                }
                Err(e) => items.push(e),
            }
        }
        let manifest = serde_json::to_vec_pretty(&BatchResponse {
            items,
            succeeded,
            failed,
        })
        .map_err(|e| Error::Internal(format!("manifest: {e}")))?;
        w.start_file("manifest.json", opts).map_err(zerr)?;
        w.write_all(&manifest)
            .map_err(|e| Error::Internal(format!("writing the zip: {e}")))?;
        w.finish().map_err(zerr)?;
    }
    Ok(buf.into_inner())
}
