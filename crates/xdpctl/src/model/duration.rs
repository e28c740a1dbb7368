//! Durations: the one grammar of every flag and policy field that takes
//! one (`--interval`, `--confirm-within`, `guard.block_for`, ...), and the
//! one way messages say them.
//!
//! The grammar is humantime's (`500ms`, `30s`, `10m`, `1h30m`, `2d`), plus
//! a bare number of seconds (`3`, `0.5`).

use std::time::Duration;

/// The longest duration anything takes: a year.
pub const MAX: Duration = Duration::from_secs(365 * 24 * 3600);

/// Parses a duration of at least `min` and at most a year; the error says
/// what was wrong and what would do.
pub fn parse_within(s: &str, min: Duration) -> Result<Duration, String> {
    let text = s.trim();
    let d = match text.parse::<f64>() {
        Ok(secs) if secs.is_finite() && secs >= 0.0 => Duration::try_from_secs_f64(secs)
            .map_err(|_| format!("'{}' is too long: at most a year (8760h)", s.escape_debug()))?,
        Ok(_) => {
            return Err(format!(
                "'{}' is not a duration (like 500ms, 30s, 10m, 1h)",
                s.escape_debug()
            ));
        }
        Err(_) => humantime::parse_duration(text).map_err(|_| {
            format!(
                "'{}' is not a duration (like 500ms, 30s, 10m, 1h30m)",
                s.escape_debug()
            )
        })?,
    };
    if d > MAX {
        return Err(format!(
            "'{}' is too long: at most a year (8760h)",
            s.escape_debug()
        ));
    }
    if d < min {
        return Err(format!(
            "'{}' is too short: at least {}",
            s.escape_debug(),
            humane(min)
        ));
    }
    Ok(d)
}

/// A duration for messages, to the millisecond: `30s`, `2m 30s`, `500ms`.
pub fn humane(d: Duration) -> String {
    let ms = Duration::from_millis(d.as_millis().min(u128::from(u64::MAX)) as u64);
    humantime::format_duration(ms).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_grammar_for_every_duration() {
        let ok = |s: &str| parse_within(s, Duration::from_millis(10)).unwrap();
        assert_eq!(ok("10m"), Duration::from_secs(600));
        assert_eq!(ok("500ms"), Duration::from_millis(500));
        assert_eq!(ok("3"), Duration::from_secs(3));
        assert_eq!(ok("0.5"), Duration::from_millis(500));
        assert_eq!(ok("1h30m"), Duration::from_secs(5400));
        assert_eq!(ok("1h 30m"), Duration::from_secs(5400));
        let bad = |s: &str, min: Duration| parse_within(s, min).unwrap_err();
        assert!(bad("5x", Duration::ZERO).contains("is not a duration"));
        assert!(bad("-1", Duration::ZERO).contains("is not a duration"));
        assert!(bad("9000h", Duration::ZERO).contains("at most a year"));
        assert_eq!(
            bad("5ms", Duration::from_millis(10)),
            "'5ms' is too short: at least 10ms"
        );
        assert_eq!(humane(Duration::from_secs(150)), "2m 30s");
        assert_eq!(humane(Duration::from_secs(30)), "30s");
        assert_eq!(humane(Duration::from_micros(1500)), "1ms");
    }
}
