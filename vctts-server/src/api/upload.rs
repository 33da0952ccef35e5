//! Reading the multipart forms of `extract_voice` and `preprocess`.
//!
//! Invariants: the content type must be `multipart/form-data`
//! (`415 unsupported_media_type`); the whole upload is bounded by the route's
//! body limit (`413 payload_too_large`); unknown, repeated or non-UTF-8 text
//! fields are `422 invalid_input` naming the field; the audio part is
//! required and non-empty. Nothing is decoded or stored here.

use crate::error::{ApiError, ApiResult, WireError};
use axum::extract::Multipart;
use axum::extract::multipart::MultipartRejection;
use bytes::Bytes;
use std::collections::BTreeMap;
use vctts_core::Error;

/// Longest accepted text field, bytes.
pub const MAX_TEXT_FIELD: usize = 64 << 10;

/// A read form.
#[derive(Debug, Clone)]
pub struct Upload {
    /// The `audio` part.
    pub audio: Bytes,
    /// Its file name, if given.
    pub audio_name: Option<String>,
    /// Its content type, if given.
    pub audio_type: Option<String>,
    /// The text fields.
    pub fields: BTreeMap<String, String>,
}

impl Upload {
    /// A text field, trimmed; empty counts as absent.
    pub fn text(&self, name: &str) -> Option<&str> {
        self.fields.get(name).map(|s| s.trim()).filter(|s| !s.is_empty())
    }

    /// A hint for the decoder: the file extension or the content type.
    pub fn hint(&self) -> Option<&str> {
        self.audio_name
            .as_deref()
            .and_then(|n| n.rsplit_once('.').map(|(_, ext)| ext))
            .or(self.audio_type.as_deref())
    }

    /// A boolean field (`true/false/1/0/yes/no/on/off`), or `default`.
    pub fn flag(&self, name: &str, default: bool) -> ApiResult<bool> {
        match self.text(name) {
            None => Ok(default),
            Some(v) => match v.to_ascii_lowercase().as_str() {
                "true" | "1" | "yes" | "on" => Ok(true),
                "false" | "0" | "no" | "off" => Ok(false),
                other => Err(Error::invalid(name, format!("{other:?} is not true or false")).into()),
            },
        }
    }
}

fn multipart_error(e: axum::extract::multipart::MultipartError, limit: u64) -> ApiError {
    if e.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
        WireError::PayloadTooLarge { limit }.into()
    } else {
        WireError::MalformedMultipart(e.body_text()).into()
    }
}

/// Reads a form with an `audio` part and the named text fields.
pub async fn read_upload(
    mp: Result<Multipart, MultipartRejection>,
    text_fields: &[&str],
    limit: u64,
) -> ApiResult<Upload> {
    let mut mp = mp.map_err(|e| match e {
        MultipartRejection::InvalidBoundary(_) => ApiError::from(WireError::UnsupportedMediaType {
            found: "a body that is not multipart/form-data".into(),
            expected: "multipart/form-data".into(),
        }),
        other => WireError::MalformedMultipart(other.body_text()).into(),
    })?;
    let mut audio: Option<(Bytes, Option<String>, Option<String>)> = None;
    let mut fields = BTreeMap::new();
    while let Some(field) = mp.next_field().await.map_err(|e| multipart_error(e, limit))? {
        let name = field.name().unwrap_or("").to_string();
        if name == "audio" {
            if audio.is_some() {
                return Err(Error::invalid("audio", "given more than once").into());
            }
            let file = field.file_name().map(str::to_string);
            let ct = field.content_type().map(str::to_string);
            let bytes = field.bytes().await.map_err(|e| multipart_error(e, limit))?;
            audio = Some((bytes, file, ct));
        } else if text_fields.contains(&name.as_str()) {
            if fields.contains_key(&name) {
                return Err(Error::invalid(name.as_str(), "given more than once").into());
            }
            let bytes = field.bytes().await.map_err(|e| multipart_error(e, limit))?;
            if bytes.len() > MAX_TEXT_FIELD {
                return Err(
                    Error::invalid(name.as_str(), format!("longer than {MAX_TEXT_FIELD} bytes")).into(),
                );
            }
            let text = String::from_utf8(bytes.to_vec())
                .map_err(|_| Error::invalid(name.as_str(), "is not valid UTF-8"))?;
            fields.insert(name, text);
        } else {
            return Err(Error::invalid(
                "form",
                format!(
                    "unknown field {name:?}; expected audio, {}",
                    text_fields.join(", ")
                ),
            )
            .into());
        }
    }
    let (audio, audio_name, audio_type) =
        audio.ok_or_else(|| Error::invalid("audio", "is required (a file part named \"audio\")"))?;
    if audio.is_empty() {
        return Err(Error::AudioDecode("the audio part is empty".into()).into());
    }
    Ok(Upload {
        audio,
        audio_name,
        audio_type,
        fields,
    })
}
