//! The one parser for sizes and durations written by people: configuration
//! files, live settings and command-line flags all read them here.
//!
//! Sizes go through `bytesize`, so the units mean what they say: `KB`, `MB`,
//! `GB`, `TB` are powers of 1000 and `KiB`, `MiB`, `GiB`, `TiB` powers of
//! 1024. A bare letter (`K`, `M`, `G`, `T`) is binary, as in GNU `split -b`
//! and `dd`, which `vctts models pack --part-size` mirrors. A plain number is
//! bytes. Durations go through `humantime` (`500ms`, `10s`, `2m`, `1h 30m`);
//! a plain number (`10`, `2.5`) is seconds.
//!
//! Invariant: negative, non-finite, unit-less garbage and out-of-range values
//! are errors whose message quotes the value and shows the accepted forms.

use std::time::Duration;

/// Largest size accepted (1 PB): anything above is a typo, not a limit.
const MAX_BYTES: u64 = 1_000_000_000_000_000;
/// Longest duration accepted (about 31 years).
const MAX_SECONDS: f64 = 1.0e9;

/// Parses a size: `4096`, `512KB` (512,000), `64KiB` (65,536), `100M`
/// (100 MiB), `1.5 GB`.
pub fn parse_size(text: &str) -> Result<u64, String> {
    let bad = || {
        format!(
            "{text:?} is not a size: use bytes, or a number with KB, MB, GB, TB \
             (powers of 1000), KiB, MiB, GiB, TiB (powers of 1024) or K, M, G, T \
             (powers of 1024), e.g. 10MB or 64KiB"
        )
    };
    let t = text.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (number, unit) = t.split_at(split);
    if number.is_empty() || number.starts_with('.') && number.len() == 1 {
        return Err(bad());
    }
    let unit = unit.trim();
    // A bare binary letter, as GNU tools read it; bytesize would read it
    // as decimal.
    let unit = match unit.to_ascii_uppercase().as_str() {
        "K" | "M" | "G" | "T" => format!("{unit}iB"),
        "" => "B".to_string(),
        _ => unit.to_string(),
    };
    let size: bytesize::ByteSize = format!("{number} {unit}").parse().map_err(|_| bad())?;
    if size.as_u64() > MAX_BYTES {
        return Err(format!("{text:?} is out of range (at most 1 PB)"));
    }
    Ok(size.as_u64())
}

/// Parses a duration: `10` or `2.5` (seconds), `500ms`, `10s`, `2m`, `1h`,
/// `1h 30m`.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    let out_of_range = || format!("{text:?} is out of range");
    if let Ok(secs) = t.parse::<f64>() {
        if !secs.is_finite() || !(0.0..=MAX_SECONDS).contains(&secs) {
            return Err(out_of_range());
        }
        return Ok(Duration::from_secs_f64(secs));
    }
    let d = humantime::parse_duration(t)
        .map_err(|e| format!("{text:?} is not a duration ({e}): use seconds, or e.g. 500ms, 10s, 2m, 1h"))?;
    if d.as_secs_f64() > MAX_SECONDS {
        return Err(out_of_range());
    }
    Ok(d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimal_and_binary_units_mean_what_they_say() {
        assert_eq!(parse_size("4096"), Ok(4096));
        assert_eq!(parse_size("512KB"), Ok(512_000));
        assert_eq!(parse_size("512kb"), Ok(512_000));
        assert_eq!(parse_size("64KiB"), Ok(64 << 10));
        assert_eq!(parse_size("10MB"), Ok(10_000_000));
        assert_eq!(parse_size("10MiB"), Ok(10 << 20));
        assert_eq!(parse_size(" 2 GB "), Ok(2_000_000_000));
        assert_eq!(parse_size("1.5GiB"), Ok(3 << 29));
        assert_eq!(parse_size("7B"), Ok(7));
    }

    #[test]
    fn a_bare_letter_is_binary_as_in_gnu_split() {
        assert_eq!(parse_size("100M"), Ok(100 << 20));
        assert_eq!(parse_size("100m"), Ok(100 << 20));
        assert_eq!(parse_size("1G"), Ok(1 << 30));
        assert_eq!(parse_size("1.5G"), Ok(3 << 29));
        assert_eq!(parse_size("8k"), Ok(8 << 10));
    }

    #[test]
    fn bad_sizes_are_refused_with_the_value() {
        for bad in ["", "lots", "-3MB", "MB", "1.2.3M", "10 parsecs", ".", "1e3"] {
            let err = parse_size(bad).unwrap_err();
            assert!(err.contains(&format!("{bad:?}")), "{bad:?}: {err}");
        }
        assert!(parse_size("2EB").unwrap_err().contains("out of range"));
    }

    #[test]
    fn durations_take_seconds_or_units() {
        assert_eq!(parse_duration("10"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("2.5"), Ok(Duration::from_millis(2500)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("1h 30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_duration(" 1h "), Ok(Duration::from_secs(3600)));
    }

    #[test]
    fn bad_durations_are_refused_with_the_value() {
        for bad in ["", "soon", "-1", "-5s", "NaN", "inf", "10 parsecs"] {
            let err = parse_duration(bad).unwrap_err();
            assert!(err.contains(&format!("{bad:?}")), "{bad:?}: {err}");
        }
        assert!(parse_duration("1e12").unwrap_err().contains("out of range"));
    }
}

/// Properties on arbitrary input: the parsers never panic, answer within
/// their ranges, and read back what a plain writer writes.
#[cfg(test)]
mod proptests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig { cases: 512, failure_persistence: None, ..ProptestConfig::default() })]

        #[test]
        fn any_text_is_a_size_in_range_or_an_error_quoting_it(text in "\\PC{0,24}") {
            match parse_size(&text) {
                Ok(n) => prop_assert!(n <= MAX_BYTES),
                Err(e) => {
                    let quoted = format!("{text:?}");
                    prop_assert!(e.contains(&quoted), "{} does not quote the input", e);
                }
            }
        }

        #[test]
        fn size_like_text_never_panics(number in "[0-9.]{0,30}", space in " ?", unit in "(|[kKmMgGtTpP]|[kKmMgGtT][iI]?[bB]|[bB]|xB|KiBB)") {
            let text = format!("{number}{space}{unit}");
            if let Ok(n) = parse_size(&text) {
                prop_assert!(n <= MAX_BYTES);
            }
        }

        #[test]
        fn sizes_read_back(n in 0u64..1_000_000, unit in prop::sample::select(vec![("", 1u64), ("KB", 1000), ("KiB", 1024), ("K", 1024), ("MB", 1_000_000), ("MiB", 1 << 20)])) {
            let (suffix, factor) = unit;
            prop_assert_eq!(parse_size(&format!("{n}{suffix}")), Ok(n * factor));
            prop_assert_eq!(parse_size(&format!(" {n} {suffix} ")), Ok(n * factor));
        }

        #[test]
        fn any_text_is_a_duration_in_range_or_an_error_quoting_it(text in "\\PC{0,24}") {
            match parse_duration(&text) {
                Ok(d) => prop_assert!(d.as_secs_f64() <= MAX_SECONDS),
                Err(e) => {
                    let quoted = format!("{text:?}");
                    prop_assert!(e.contains(&quoted), "{} does not quote the input", e);
                }
            }
        }

        #[test]
        fn duration_like_text_never_panics(parts in prop::collection::vec(("[0-9.e+-]{0,25}", "(|ns|us|ms|s|m|h|d|w|M|y|sec|min|hours)"), 0..4)) {
            let text = parts.iter().map(|(n, u)| format!("{n}{u}")).collect::<Vec<_>>().join(" ");
            if let Ok(d) = parse_duration(&text) {
                prop_assert!(d.as_secs_f64() <= MAX_SECONDS);
            }
        }

        #[test]
        fn durations_read_back(ms in 0u64..1_000_000_000) {
            prop_assert_eq!(parse_duration(&format!("{ms}ms")), Ok(Duration::from_millis(ms)));
            let secs = ms / 1000;
            prop_assert_eq!(parse_duration(&secs.to_string()), Ok(Duration::from_secs(secs)));
        }
    }
}
