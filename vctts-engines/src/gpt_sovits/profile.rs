//! GPT-SoVITS voice profiles: everything synthesis needs from the reference,
//! computed once at extraction so that synthesis never runs SSL again.
//!
//! Layout of [`PROFILE_VERSION`] 1 (little-endian):
//! `b"GSV2"`, then `u32` lengths and data in this order: transcript (UTF-8),
//! language (UTF-8), prompt codes (`i32` each), prompt phones (`i32` each),
//! BERT width `u32` then the prompt's BERT features (`f32`, phones × width),
//! reference sample rate `u32` then the 32 kHz reference (`f32` each).
//!
//! Invariants: decoding checks every length against the bytes left and the
//! BERT size against the phones; trailing bytes are an error.

use vctts_core::{Error, Result};

/// Profile format version written by this engine.
pub const PROFILE_VERSION: u32 = 1;
const MAGIC: &[u8; 4] = b"GSV2";

/// A voice, ready for synthesis.
#[derive(Debug, Clone, PartialEq)]
pub struct Voice {
    /// What the reference says (with the final punctuation added).
    pub transcript: String,
    /// Its language code (`zh` or `en`).
    pub language: String,
    /// Semantic prompt codes (25 per second).
    pub prompt_codes: Vec<i64>,
    /// Phone ids of the transcript.
    pub phones: Vec<i64>,
    /// BERT features of the transcript, phones × `bert_dim`, row-major.
    pub bert: Vec<f32>,
    /// Width of a BERT row.
    pub bert_dim: usize,
    /// The reference at 32 kHz, peak-limited as upstream does.
    pub ref32k: Vec<f32>,
}

fn mismatch(found: impl Into<String>) -> Error {
    Error::ProfileMismatch {
        expected: format!("a GPT-SoVITS v{PROFILE_VERSION} profile"),
        found: found.into(),
    }
}

impl Voice {
    /// The profile bytes.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(64 + self.bert.len() * 4 + self.ref32k.len() * 4);
        out.extend_from_slice(MAGIC);
        let put_bytes = |out: &mut Vec<u8>, b: &[u8]| {
            out.extend_from_slice(&(b.len() as u32).to_le_bytes());
            out.extend_from_slice(b);
        };
        put_bytes(&mut out, self.transcript.as_bytes());
        put_bytes(&mut out, self.language.as_bytes());
        for list in [&self.prompt_codes, &self.phones] {
            out.extend_from_slice(&(list.len() as u32).to_le_bytes());
            for &v in list {
                out.extend_from_slice(&(v as i32).to_le_bytes());
            }
        }
        out.extend_from_slice(&(self.bert_dim as u32).to_le_bytes());
        for v in &self.bert {
            out.extend_from_slice(&v.to_le_bytes());
        }
        out.extend_from_slice(&32_000u32.to_le_bytes());
        out.extend_from_slice(&(self.ref32k.len() as u32).to_le_bytes());
        for v in &self.ref32k {
            out.extend_from_slice(&v.to_le_bytes());
        }
        out
    }

    /// Reads profile bytes.
    pub fn decode(bytes: &[u8]) -> Result<Self> {
        let mut r = Reader { b: bytes, at: 0 };
        if r.take(4)? != MAGIC {
            return Err(mismatch("bytes without the GSV2 magic"));
        }
        let transcript = r.string()?;
        let language = r.string()?;
        let prompt_codes = r.i32s()?;
        let phones = r.i32s()?;
        let bert_dim = r.u32()? as usize;
        let bert = r.f32s(
            phones
                .len()
                .checked_mul(bert_dim)
                .ok_or_else(|| mismatch("a huge BERT size"))?,
        )?;
        let rate = r.u32()?;
        if rate != 32_000 {
            return Err(mismatch(format!("a reference at {rate} Hz")));
        }
        let n = r.u32()? as usize;
        let ref32k = r.f32s(n)?;
        if r.at != bytes.len() {
            return Err(mismatch(format!("{} trailing bytes", bytes.len() - r.at)));
        }
        if prompt_codes.is_empty() || phones.is_empty() || ref32k.is_empty() {
            return Err(mismatch("an empty prompt"));
        }
        if bert.iter().chain(&ref32k).any(|v| !v.is_finite()) {
            return Err(mismatch("NaN or infinite values"));
        }
        Ok(Self {
            transcript,
            language,
            prompt_codes,
            phones,
            bert,
            bert_dim,
            ref32k,
        })
    }
}

struct Reader<'a> {
    b: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        let end = self.at.checked_add(n).filter(|&e| e <= self.b.len());
        match end {
            Some(end) => {
                let s = &self.b[self.at..end];
                self.at = end;
                Ok(s)
            }
            None => Err(mismatch(format!("a profile cut short at byte {}", self.at))),
        }
    }
    fn u32(&mut self) -> Result<u32> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }
    fn string(&mut self) -> Result<String> {
        let n = self.u32()? as usize;
        String::from_utf8(self.take(n)?.to_vec()).map_err(|_| mismatch("text that is not UTF-8"))
    }
    fn i32s(&mut self) -> Result<Vec<i64>> {
        let n = self.u32()? as usize;
        let b = self.take(n.checked_mul(4).ok_or_else(|| mismatch("a huge list"))?)?;
        Ok(b.chunks_exact(4)
            .map(|c| i32::from_le_bytes([c[0], c[1], c[2], c[3]]) as i64)
            .collect())
    }
    fn f32s(&mut self, n: usize) -> Result<Vec<f32>> {
        let b = self.take(n.checked_mul(4).ok_or_else(|| mismatch("a huge list"))?)?;
        Ok(b.chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn voice() -> Voice {
        Voice {
            transcript: "你好。".into(),
            language: "zh".into(),
            prompt_codes: vec![1, 1023, 7],
            phones: vec![5, 6],
            bert: (0..8).map(|i| i as f32 * 0.5).collect(),
            bert_dim: 4,
            ref32k: vec![0.1, -0.2, 0.3],
        }
    }

    #[test]
    fn round_trip() {
        let v = voice();
        assert_eq!(Voice::decode(&v.encode()).unwrap(), v);
    }

    #[test]
    fn damaged_profiles_are_refused_not_panics() {
        let bytes = voice().encode();
        for cut in 0..bytes.len() {
            let e = Voice::decode(&bytes[..cut]).unwrap_err();
            assert_eq!(e.code(), "profile_mismatch");
        }
        let mut extra = bytes.clone();
        extra.push(0);
        assert!(Voice::decode(&extra).is_err());
        let mut magic = bytes.clone();
        magic[0] = b'X';
        assert!(Voice::decode(&magic).is_err());
        let mut v = voice();
        v.bert[0] = f32::NAN;
        assert!(Voice::decode(&v.encode()).is_err());
    }
}
