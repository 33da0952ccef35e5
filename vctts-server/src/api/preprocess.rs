//! `POST /api/v3/preprocess`: cleans up a clip (resample, DC removal, silence
//! trim, loudness normalisation, peak limit) and reports its quality.
//!
//! Answers the processed 16-bit WAV with the output's quality report in the
//! `X-Quality-Report` header (ASCII JSON), or with `response=json` a JSON body
//! holding the base64 WAV and both reports. Nothing is stored.

use super::upload::read_upload;
use crate::error::{ApiResult, ErrorBody};
use crate::gateway::Gateway;
use crate::wire::{PreprocessForm, PreprocessResponse, QualityDto};
use axum::Json;
use axum::body::Body;
use axum::extract::multipart::MultipartRejection;
use axum::extract::{Multipart, State};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use std::sync::Arc;
use vctts_core::Error;
use vctts_engines::audio::decode::{DecodeLimits, decode};
use vctts_engines::audio::encode::wav_i16;
use vctts_engines::audio::preprocess::{PreprocessOptions, preprocess as run_preprocess};
use vctts_engines::audio::quality::analyze;

/// Default loudness target, LUFS.
pub const DEFAULT_LOUDNESS_LUFS: f32 = -20.0;

/// JSON with every non-ASCII character escaped, safe for a header value.
pub fn ascii_json<T: serde::Serialize>(v: &T) -> String {
    let s = serde_json::to_string(v).unwrap_or_else(|_| "{}".into());
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if c.is_ascii() && !c.is_ascii_control() {
            out.push(c);
        } else {
            let mut buf = [0u16; 2];
            for u in c.encode_utf16(&mut buf) {
                out.push_str(&format!("\\u{u:04x}"));
            }
        }
    }
    out
}

/// Cleans up a clip and reports its quality.
#[utoipa::path(
    post,
    path = "/api/v3/preprocess",
    tag = "audio",
    request_body(content = PreprocessForm, content_type = "multipart/form-data"),
    responses(
        (status = 200, description = "The processed WAV (quality in X-Quality-Report), or JSON with `response=json`",
            content(("audio/wav"), ("application/json"))),
        (status = 413, description = "Upload too large", body = ErrorBody),
        (status = 415, description = "Not multipart/form-data", body = ErrorBody),
        (status = 422, description = "Corrupt or unusable audio, or a bad option", body = ErrorBody),
    )
)]
pub async fn preprocess(
    State(gw): State<Arc<Gateway>>,
    mp: Result<Multipart, MultipartRejection>,
) -> ApiResult<Response> {
    let limits = gw.config().limits.clone();
    let upload = read_upload(
        mp,
        &["sample_rate", "mono", "trim", "loudness", "response"],
        limits.max_upload_size.0,
    )
    .await?;
    let sample_rate = match upload.text("sample_rate") {
        None => None,
        Some(s) => {
            let r: u32 = s
                .parse()
                .map_err(|_| Error::invalid("sample_rate", format!("{s:?} is not a number")))?;
            if !(8_000..=192_000).contains(&r) {
                return Err(Error::invalid("sample_rate", format!("must be 8000..=192000, got {r}")).into());
            }
            Some(r)
        }
    };
    if !upload.flag("mono", true)? {
        return Err(Error::invalid("mono", "only mono output is supported").into());
    }
    let trim = upload.flag("trim", true)?;
    let loudness = match upload.text("loudness") {
        None => Some(DEFAULT_LOUDNESS_LUFS),
        Some(s) if s.eq_ignore_ascii_case("none") => None,
        Some(s) => {
            let l: f32 = s
                .parse()
                .map_err(|_| Error::invalid("loudness", format!("{s:?} is not a number or none")))?;
            if !(-70.0..=0.0).contains(&l) {
                return Err(Error::invalid("loudness", format!("must be -70..=0 LUFS, got {l}")).into());
            }
            Some(l)
        }
    };
    let json = match upload.text("response").unwrap_or("wav") {
        "wav" => false,
        "json" => true,
        other => return Err(Error::invalid("response", format!("{other:?} is not wav or json")).into()),
    };
    let bytes = upload.audio.clone();
    let hint = upload.hint().map(str::to_string);
    let max_seconds = limits.max_audio_seconds.0.as_secs_f32();
    let dl = DecodeLimits {
        max_seconds,
        max_bytes: limits.max_upload_size.0 as usize,
        ..DecodeLimits::default()
    };
    let opts = PreprocessOptions {
        sample_rate,
        remove_dc: true,
        trim_silence: trim,
        loudness_lufs: loudness,
        peak_limit: Some(0.98),
        min_seconds: None,
        max_seconds: Some(max_seconds),
    };
    let (input_q, out_q, wav) = tokio::task::spawn_blocking(move || {
        let audio = decode(&bytes, hint.as_deref(), &dl)?;
        let input_q = analyze(&audio);
        let out = run_preprocess(audio, &opts)?;
        let out_q = analyze(&out);
        Ok::<_, Error>((input_q, out_q, wav_i16(&out)))
    })
    .await
    .map_err(|e| Error::Internal(format!("preprocess task failed: {e}")))??;
    let input_quality = QualityDto::from(&input_q);
    let quality = QualityDto::from(&out_q);
    if json {
        return Ok(Json(PreprocessResponse {
            audio_base64: base64::engine::general_purpose::STANDARD.encode(&wav),
            input_quality,
            quality,
        })
        .into_response());
    }
    let mut res = Response::new(Body::from(wav));
    res.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("audio/wav"));
    if let Ok(v) = HeaderValue::from_str(&ascii_json(&quality)) {
        res.headers_mut().insert("x-quality-report", v);
    }
    Ok(res)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ascii_json_escapes() {
        let s = ascii_json(&vec!["3–4 s", "ok\n"]);
        assert!(s.is_ascii());
        assert!(HeaderValue::from_str(&s).is_ok());
        let back: Vec<String> = serde_json::from_str(&s).unwrap();
        assert_eq!(back, vec!["3–4 s", "ok\n"]);
    }
}
