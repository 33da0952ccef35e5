//! Request body extractors with the API's own errors.
//!
//! [`JsonBody`] checks the content type (`415 unsupported_media_type`), reads
//! the body up to a limit (`413 payload_too_large`), and decodes it:
//! a syntax error is `400 malformed_json`, a well-formed body with a wrong
//! shape (unknown field, wrong type, missing field) is `422 invalid_input`
//! naming the problem. The limit comes from the [`BodyLimit`] extension (set
//! per router), else [`DEFAULT_JSON_LIMIT`].
//!
//! Invariant: a body over its limit by at most [`DRAIN_LIMIT`] bytes is read
//! to its end (and dropped) before the `413` answer. Answering while the
//! client is still sending leaves unread data on the connection, which the
//! server then closes with a reset: the client sees a broken pipe, sometimes
//! before it has read the `413`, or on its next request on that connection
//! (the reliability suite's occasional transport errors). Larger bodies are
//! refused at once.

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

/// How far past its limit a body is still read (and dropped) before the
/// `413` answer, so the connection stays usable (see the module docs).
pub const DRAIN_LIMIT: u64 = 8 << 20;

/// Reads and drops the rest of a body, at most `budget` bytes; whether it
/// reached the end.
async fn drain(stream: &mut axum::body::BodyDataStream, mut budget: u64) -> bool {
    while let Some(chunk) = stream.next().await {
        let Ok(chunk) = chunk else { return false };
        match budget.checked_sub(chunk.len() as u64) {
            Some(left) => budget = left,
            None => return false,
        }
    }
    true
}

/// Reads a body up to `limit` bytes; a longer one is `413
/// payload_too_large`, answered after reading up to [`DRAIN_LIMIT`] more.
pub async fn read_body(body: Body, limit: u64) -> Result<Bytes, ApiError> {
    let mut out = BytesMut::new();
    let mut stream = body.into_data_stream();
    while let Some(chunk) = stream.next().await {
        let chunk =
            chunk.map_err(|e| Error::invalid("body", format!("could not read the request body: {e}")))?;
        if (out.len() + chunk.len()) as u64 > limit {
            let past = (out.len() + chunk.len()) as u64 - limit;
            drop(out);
            drain(&mut stream, DRAIN_LIMIT.saturating_sub(past)).await;
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
                if len - limit <= DRAIN_LIMIT {
                    drain(&mut req.into_body().into_data_stream(), len).await;
                }
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

    /// A body a little over its limit is read to its end before the 413 (the
    /// connection stays usable); one far over it is not read further.
    #[tokio::test]
    async fn a_body_over_its_limit_is_drained_within_a_bound() {
        use std::sync::Arc;
        use std::sync::atomic::{AtomicUsize, Ordering};
        let body = |chunks: usize, read: Arc<AtomicUsize>| {
            Body::from_stream(futures::stream::iter((0..chunks).map(move |_| {
                read.fetch_add(1, Ordering::SeqCst);
                Ok::<_, std::io::Error>(Bytes::from(vec![0u8; 1 << 20]))
            })))
        };
        let read = Arc::new(AtomicUsize::new(0));
        let e = read_body(body(4, read.clone()), 1 << 20).await.unwrap_err();
        assert_eq!(e.code(), "payload_too_large");
        assert_eq!(read.load(Ordering::SeqCst), 4, "read to the end");
        let read = Arc::new(AtomicUsize::new(0));
        let e = read_body(body(64, read.clone()), 1 << 20).await.unwrap_err();
        assert_eq!(e.code(), "payload_too_large");
        let n = read.load(Ordering::SeqCst);
        assert!((8..=11).contains(&n), "stopped near the drain bound: {n} chunks");
    }
}

/// Properties of the JSON extractors on arbitrary bodies (issue 16): any
/// bytes, and any JSON value built from the request fields, decode into the
/// synthesize, batch and OpenAI speech requests and validate, or are refused
/// with a client error (400 or 422 here) and a code; never a panic or a 5xx.
#[cfg(test)]
mod proptests {
    use super::*;
    use crate::wire::{BatchRequest, SpeechRequest, SynthesizeRequest};
    use proptest::prelude::*;
    use serde_json::{Value, json};

    const FIELDS: [&str; 14] = [
        "text",
        "engine",
        "voice",
        "language",
        "speed",
        "format",
        "sample_rate",
        "seed",
        "sampling",
        "items",
        "model",
        "input",
        "response_format",
        "stream_format",
    ];

    fn value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::from),
            any::<i64>().prop_map(Value::from),
            any::<f64>().prop_map(|f| json!(f)),
            prop_oneof![Just(9193.0f64), Just(-1.0), Just(1e300), Just(0.25), Just(4.5)]
                .prop_map(|f| json!(f)),
            "\\PC{0,12}".prop_map(Value::from),
            prop::sample::select(vec![
                "wav",
                "mp3",
                "pcm",
                "wav_f32",
                "openvoice",
                "xtts",
                "en",
                "tts-1",
                "alloy",
                "../x"
            ])
            .prop_map(Value::from),
        ];
        leaf.prop_recursive(3, 24, 6, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                prop::collection::btree_map(
                    prop::sample::select(FIELDS.to_vec()).prop_map(String::from),
                    inner,
                    0..6
                )
                .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    fn client_error(e: ApiError) -> std::result::Result<(), TestCaseError> {
        let s = e.status().as_u16();
        prop_assert!(s == 400 || s == 413 || s == 422, "{} answered {s}: {e}", e.code());
        Ok(())
    }

    fn synthesize(req: &SynthesizeRequest) -> std::result::Result<(), TestCaseError> {
        match req.to_domain(5000) {
            Ok(p) => {
                prop_assert!(p.request.text.chars().count() <= 5000);
                let max = std::time::Duration::from_secs(600);
                if let Err(e) = crate::budget::check(&p.request, 0.0, max) {
                    client_error(e.into())?;
                }
                let cap = crate::budget::answer_cap_seconds(&p.request, max);
                prop_assert!(cap.is_finite() && cap > 0.0 && cap <= 600.0);
                Ok(())
            }
            Err(e) => client_error(e.into()),
        }
    }

    fn all(bytes: &[u8]) -> std::result::Result<(), TestCaseError> {
        match decode_json::<SynthesizeRequest>(bytes) {
            Ok(r) => synthesize(&r)?,
            Err(e) => client_error(e)?,
        }
        match decode_json::<BatchRequest>(bytes) {
            Ok(b) => {
                for item in b.items {
                    if let Ok(r) = serde_json::from_value::<SynthesizeRequest>(item) {
                        synthesize(&r)?;
                    }
                }
            }
            Err(e) => client_error(e)?,
        }
        if let Err(e) = decode_json::<SpeechRequest>(bytes) {
            client_error(e)?;
        }
        Ok(())
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 256, failure_persistence: None, ..ProptestConfig::default() })]

        #[test]
        fn any_bytes_are_a_request_or_a_client_error(bytes in prop::collection::vec(any::<u8>(), 0..200)) {
            all(&bytes)?;
        }

        #[test]
        fn any_json_of_request_fields_is_a_request_or_a_client_error(v in value()) {
            all(v.to_string().as_bytes())?;
        }

        #[test]
        fn valid_requests_with_odd_values_validate_or_are_refused(
            text in "\\PC{0,300}",
            speed in prop_oneof![Just(None), any::<f32>().prop_map(Some)],
            rate in prop_oneof![Just(None), any::<u32>().prop_map(Some)],
            format in prop::sample::select(vec![None, Some("wav"), Some("mp3"), Some("opus"), Some("aac"), Some("ogg")]),
        ) {
            let body = json!({"text": text, "speed": speed, "sample_rate": rate, "format": format});
            all(body.to_string().as_bytes())?;
        }
    }
}
