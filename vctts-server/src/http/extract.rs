//! Request body extractors with the API's own errors.
//!
//! [`JsonBody`] checks the content type (`415 unsupported_media_type`), reads
//! the body up to a limit (`413 payload_too_large`), and decodes it:
//! a syntax error is `400 malformed_json`, a well-formed body with a wrong
//! shape (unknown field, wrong type, missing field) is `422 invalid_input`
//! naming the problem. The limit comes from the [`BodyLimit`] extension (set
//! per router), else [`DEFAULT_JSON_LIMIT`].

use crate::error::{ApiError, WireError};
use axum::body::Body;
use axum::extract::{FromRequest, Request};
use axum::http::{HeaderMap, header};
use bytes::{Bytes, BytesMut};
use futures::StreamExt;
use serde::de::DeserializeOwned;
use vctts_core::Error;

/// Default largest JSON body.
pub const DEFAULT_JSON_LIMIT: u64 = 1 << 20;

/// Largest JSON body accepted by the routes below the layer that inserts it.
#[derive(Debug, Clone, Copy)]
pub struct BodyLimit(pub u64);

/// A JSON body decoded into `T`.
#[derive(Debug, Clone)]
pub struct JsonBody<T>(pub T);

/// Whether the content type is JSON (`application/json` or `…+json`).
pub fn is_json(headers: &HeaderMap) -> bool {
    content_type(headers)
        .map(|ct| {
            let essence = ct.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
            essence == "application/json"
                || (essence.starts_with("application/") && essence.ends_with("+json"))
        })
        .unwrap_or(false)
}

/// The content type header, if readable.
pub fn content_type(headers: &HeaderMap) -> Option<&str> {
    headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok())
}

/// Reads a body up to `limit` bytes.
pub async fn read_body(body: Body, limit: u64) -> Result<Bytes, ApiError> {
    let mut out = BytesMut::new();
    let mut stream = body.into_data_stream();
    while let Some(chunk) = stream.next().await {
        let chunk =
            chunk.map_err(|e| Error::invalid("body", format!("could not read the request body: {e}")))?;
        if (out.len() + chunk.len()) as u64 > limit {
            return Err(WireError::PayloadTooLarge { limit }.into());
        }
        out.extend_from_slice(&chunk);
    }
    Ok(out.freeze())
}

/// Decodes JSON bytes, classifying errors.
///
/// A number with a zero fraction (`9193.0`) is an integer to JSON Schema,
/// and some clients write integers that way; such numbers are read as
/// integers, so they fit integer fields (float fields take integers too).
pub fn decode_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let classify = |e: serde_json::Error| -> ApiError {
        use serde_json::error::Category;
        match e.classify() {
            Category::Syntax | Category::Eof | Category::Io => WireError::MalformedJson(e.to_string()).into(),
            Category::Data => Error::invalid("body", e.to_string()).into(),
        }
    };
    match serde_json::from_slice(bytes) {
        Ok(v) => Ok(v),
        Err(e) if e.classify() == serde_json::error::Category::Data => {
            let mut value: serde_json::Value = serde_json::from_slice(bytes).map_err(classify)?;
            if !integral_floats_to_integers(&mut value) {
                return Err(classify(e));
            }
            serde_json::from_value(value).map_err(classify)
        }
        Err(e) => Err(classify(e)),
    }
}

/// Rewrites every float with a zero fraction that fits an `i64`/`u64` as an
/// integer; says whether anything changed.
fn integral_floats_to_integers(v: &mut serde_json::Value) -> bool {
    use serde_json::Value;
    match v {
        Value::Number(n) if n.is_f64() => {
            let f = n.as_f64().unwrap_or(f64::NAN);
            let integer = if f.fract() != 0.0 || !f.is_finite() {
                None
            } else if f >= 0.0 && f < u64::MAX as f64 {
                Some(serde_json::Number::from(f as u64))
            } else if f < 0.0 && f >= i64::MIN as f64 {
                Some(serde_json::Number::from(f as i64))
            } else {
                None
            };
            match integer {
                Some(i) => {
                    *n = i;
                    true
                }
                None => false,
            }
        }
        Value::Array(items) => items
            .iter_mut()
            .fold(false, |c, x| integral_floats_to_integers(x) | c),
        Value::Object(map) => map
            .values_mut()
            .fold(false, |c, x| integral_floats_to_integers(x) | c),
        _ => false,
    }
}

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, _state: &S) -> Result<Self, Self::Rejection> {
        if !is_json(req.headers()) {
            return Err(WireError::UnsupportedMediaType {
                found: content_type(req.headers()).unwrap_or("none").to_string(),
                expected: "application/json".into(),
            }
            .into());
        }
        let limit = req
            .extensions()
            .get::<BodyLimit>()
            .map(|l| l.0)
            .unwrap_or(DEFAULT_JSON_LIMIT);
        if let Some(len) = req
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok())
        {
            if len > limit {
                return Err(WireError::PayloadTooLarge { limit }.into());
            }
        }
        let bytes = read_body(req.into_body(), limit).await?;
        decode_json(&bytes).map(JsonBody)
    }
}

/// Query parameters decoded into `T`; a bad query is `400 invalid_query`.
#[derive(Debug, Clone)]
pub struct ApiQuery<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> axum::extract::FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        _state: &S,
    ) -> Result<Self, Self::Rejection> {
        axum::extract::Query::<T>::try_from_uri(&parts.uri)
            .map(|q| ApiQuery(q.0))
            .map_err(|e| WireError::InvalidQuery(e.body_text()).into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[derive(serde::Deserialize, Debug)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct T {
        a: u32,
    }

    #[test]
    fn integral_floats_fit_integer_fields() {
        assert_eq!(decode_json::<T>(b"{\"a\": 9193.0}").unwrap().a, 9193);
        assert_eq!(
            decode_json::<T>(b"{\"a\": 9193.5}").unwrap_err().code(),
            "invalid_input"
        );
        assert_eq!(
            decode_json::<T>(b"{\"a\": -1.0}").unwrap_err().code(),
            "invalid_input"
        );
        // Other shape errors keep serde's message.
        let e = decode_json::<T>(b"{\"a\": 1.0, \"b\": 2}").unwrap_err();
        assert!(e.to_string().contains("unknown field `b`"), "{e}");
    }

    #[test]
    fn json_errors_are_classified() {
        assert_eq!(decode_json::<T>(b"{\"a\":").unwrap_err().code(), "malformed_json");
        assert_eq!(decode_json::<T>(b"{a:1}").unwrap_err().code(), "malformed_json");
        let e = decode_json::<T>(b"{\"a\":1,\"b\":2}").unwrap_err();
        assert_eq!(e.code(), "invalid_input");
        assert!(e.to_string().contains("unknown field `b`"), "{e}");
        assert_eq!(
            decode_json::<T>(b"{\"a\":\"x\"}").unwrap_err().code(),
            "invalid_input"
        );
        assert_eq!(decode_json::<T>(b"{}").unwrap_err().code(), "invalid_input");
        assert_eq!(decode_json::<T>(b"{\"a\":1}").unwrap().a, 1);
    }

    #[test]
    fn content_types() {
        let mut h = HeaderMap::new();
        assert!(!is_json(&h));
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json; charset=utf-8"),
        );
        assert!(is_json(&h));
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        assert!(is_json(&h));
        h.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
        assert!(!is_json(&h));
    }

    #[tokio::test]
    async fn bodies_over_the_limit_are_refused() {
        let e = read_body(Body::from(vec![0u8; 11]), 10).await.unwrap_err();
        assert_eq!(e.code(), "payload_too_large");
        assert_eq!(read_body(Body::from(vec![0u8; 10]), 10).await.unwrap().len(), 10);
    }
}
