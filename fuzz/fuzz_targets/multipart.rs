//! The multipart upload reader of `extract_voice` and `preprocess`
//! (`vctts_server::api::upload::read_upload`) on arbitrary bodies, behind
//! axum's own `Multipart` extractor with a fixed boundary (or, when the first
//! byte says so, a content type taken from the input). Every refusal is a
//! client error; a form that is read has a non-empty `audio` part, only the
//! allowed text fields, each within its size limit.
#![no_main]

use axum::body::Body;
use axum::extract::{FromRequest, Multipart, Request};
use libfuzzer_sys::fuzz_target;
use vctts_server::api::upload::{MAX_TEXT_FIELD, read_upload};

const FIELDS: [&str; 5] = ["name", "voice_id", "transcript", "language", "engines"];
const LIMIT: u64 = 64 << 10;

fuzz_target!(|data: &[u8]| {
    let Some((&sel, rest)) = data.split_first() else {
        return;
    };
    let (content_type, body) = if sel & 1 == 0 {
        ("multipart/form-data; boundary=XyZ".to_string(), rest)
    } else {
        // The first line is the content type.
        let cut = rest.iter().position(|&b| b == b'\n').unwrap_or(rest.len());
        let ct = String::from_utf8_lossy(&rest[..cut]).into_owned();
        (ct, rest.get(cut + 1..).unwrap_or(&[]))
    };
    let Ok(req) = Request::builder()
        .method("POST")
        .uri("/api/v3/extract_voice")
        .header("content-type", content_type)
        .body(Body::from(body.to_vec()))
    else {
        return;
    };
    let outcome = futures::executor::block_on(async {
        let mp = Multipart::from_request(req, &()).await;
        read_upload(mp, &FIELDS, LIMIT).await
    });
    match outcome {
        Ok(upload) => {
            assert!(!upload.audio.is_empty());
            for (name, value) in &upload.fields {
                assert!(FIELDS.contains(&name.as_str()), "{name}");
                assert!(value.len() <= MAX_TEXT_FIELD);
            }
            let _ = upload.hint();
        }
        Err(e) => {
            let s = e.status().as_u16();
            assert!((400..500).contains(&s), "{} answered {s}: {e}", e.code());
        }
    }
});
