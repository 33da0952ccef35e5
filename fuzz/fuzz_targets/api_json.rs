//! The JSON request extractors of API v3 and `/v1`: `decode_json` into the
//! synthesize, batch and OpenAI speech bodies, then the validation every
//! engine agrees on (`SynthesizeRequest::to_domain`) and the output budget
//! (`budget::check`, `answer_cap_seconds`). Every refusal must be a client
//! error (4xx) with a code, never a panic or a 5xx.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::time::Duration;
use vctts_server::api::extract::decode_json;
use vctts_server::budget;
use vctts_server::error::ApiError;
use vctts_server::wire::{BatchRequest, SpeechRequest, SynthesizeRequest};

const MAX_TEXT: usize = 5000;
const MAX_OUTPUT: Duration = Duration::from_secs(600);

fn client_error(e: ApiError) {
    let s = e.status().as_u16();
    assert!((400..500).contains(&s), "{} answered {s}: {e}", e.code());
    assert!(!e.code().is_empty());
}

fn synthesize(req: &SynthesizeRequest, already: f64) -> f64 {
    match req.to_domain(MAX_TEXT) {
        Ok(p) => {
            assert!(p.request.text.chars().count() <= MAX_TEXT);
            let cap = budget::answer_cap_seconds(&p.request, MAX_OUTPUT);
            assert!(
                cap.is_finite() && cap > 0.0 && cap <= MAX_OUTPUT.as_secs_f64(),
                "cap {cap}"
            );
            match budget::check(&p.request, already, MAX_OUTPUT) {
                Ok(secs) => {
                    assert!(secs.is_finite() && secs >= 0.0, "estimate {secs}");
                    secs
                }
                Err(e) => {
                    client_error(e);
                    0.0
                }
            }
        }
        Err(e) => {
            client_error(e.into());
            0.0
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&sel, body)) = data.split_first() else {
        return;
    };
    match sel % 3 {
        0 => match decode_json::<SynthesizeRequest>(body) {
            Ok(req) => {
                synthesize(&req, 0.0);
            }
            Err(e) => client_error(e),
        },
        1 => match decode_json::<BatchRequest>(body) {
            Ok(batch) => {
                let mut total = 0.0;
                for item in batch.items.iter().take(16) {
                    match serde_json::from_value::<SynthesizeRequest>(item.clone()) {
                        Ok(req) => total += synthesize(&req, total),
                        Err(e) => client_error(vctts_core::Error::invalid("items", e.to_string()).into()),
                    }
                }
            }
            Err(e) => client_error(e),
        },
        _ => match decode_json::<SpeechRequest>(body) {
            Ok(req) => {
                let v3 = SynthesizeRequest {
                    text: req.input,
                    engine: None,
                    voice: None,
                    language: None,
                    speed: req.speed,
                    format: req.response_format,
                    sample_rate: Some(24000),
                    seed: req.seed,
                    sampling: None,
                };
                synthesize(&v3, 0.0);
            }
            Err(e) => client_error(e),
        },
    }
});
