//! Serde for [`Duration`] fields of configuration as seconds.
//!
//! Written as a number of seconds (`10`, `2.5`); read from a number of
//! seconds or from a string with a unit (`"500ms"`, `"10s"`, `"5m"`, `"1h"`).
//! Negative, non-finite and unreadable values are errors naming the value.
//! Used by the limiter, breaker and registry configurations; usable by any
//! config type with `#[serde(with = "vctts_core::limit::serde_secs")]`.

use serde::de::{self, Deserializer, Visitor};
use serde::ser::Serializer;
use std::time::Duration;

/// Writes the duration as (fractional) seconds.
pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    if d.subsec_nanos() == 0 {
        s.serialize_u64(d.as_secs())
    } else {
        s.serialize_f64(d.as_secs_f64())
    }
}

/// Reads seconds (a number) or a string with a unit.
pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    d.deserialize_any(SecsVisitor)
}

/// Parses `"1.5"`, `"500ms"`, `"10s"`, `"5m"` or `"1h"`: the one duration
/// parser, [`crate::units::parse_duration`].
pub fn parse(text: &str) -> Result<Duration, String> {
    crate::units::parse_duration(text)
}

fn secs(v: f64) -> Result<Duration, String> {
    Duration::try_from_secs_f64(v).map_err(|_| format!("{v} is not a valid number of seconds"))
}

struct SecsVisitor;

impl Visitor<'_> for SecsVisitor {
    type Value = Duration;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a number of seconds or a string such as \"500ms\" or \"10s\"")
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Duration, E> {
        Ok(Duration::from_secs(v))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Duration, E> {
        u64::try_from(v)
            .map(Duration::from_secs)
            .map_err(|_| E::custom(format!("{v} is not a valid number of seconds")))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Duration, E> {
        secs(v).map_err(E::custom)
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Duration, E> {
        parse(v).map_err(E::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Serialize, serde::Deserialize, PartialEq)]
    struct T {
        #[serde(with = "super")]
        d: Duration,
    }

    fn read(json: &str) -> Result<Duration, String> {
        serde_json::from_str::<T>(json)
            .map(|t| t.d)
            .map_err(|e| e.to_string())
    }

    #[test]
    fn reads_numbers_and_units() {
        assert_eq!(read(r#"{"d": 10}"#).unwrap(), Duration::from_secs(10));
        assert_eq!(read(r#"{"d": 0.25}"#).unwrap(), Duration::from_millis(250));
        assert_eq!(read(r#"{"d": "500ms"}"#).unwrap(), Duration::from_millis(500));
        assert_eq!(read(r#"{"d": "5 m"}"#).unwrap(), Duration::from_secs(300));
        assert_eq!(read(r#"{"d": "1h"}"#).unwrap(), Duration::from_secs(3600));
        assert_eq!(read(r#"{"d": "3"}"#).unwrap(), Duration::from_secs(3));
    }

    #[test]
    fn rejects_bad_values() {
        assert!(read(r#"{"d": -1}"#).unwrap_err().contains("-1"));
        assert!(read(r#"{"d": -0.5}"#).is_err());
        assert!(read(r#"{"d": "10 parsecs"}"#).unwrap_err().contains("unit"));
        assert!(read(r#"{"d": "soon"}"#).unwrap_err().contains("soon"));
        assert!(read(r#"{"d": true}"#).is_err());
    }

    #[test]
    fn writes_seconds() {
        let s = serde_json::to_string(&T {
            d: Duration::from_secs(30),
        })
        .unwrap();
        assert_eq!(s, r#"{"d":30}"#);
        let s = serde_json::to_string(&T {
            d: Duration::from_millis(1500),
        })
        .unwrap();
        assert_eq!(s, r#"{"d":1.5}"#);
    }
}
