//! The parsing of values that needs no I/O: durations, rates, counts,
//! sizes, paths and names, each bounded before anything is touched.

use std::path::PathBuf;

use super::{Cidr, bad_text};

/// An address to listen on.
pub(super) fn listen_addr(s: &str) -> Result<std::net::SocketAddr, String> {
    s.parse().map_err(|_| {
        format!(
            "'{}' is not an address and port (like 127.0.0.1:9470)",
            s.escape_debug()
        )
    })
}

/// A duration of at least `min` (and at most a year), in the one grammar
/// of durations ([`crate::model::duration`]).
pub(super) fn duration_within(
    s: &str,
    min: std::time::Duration,
) -> Result<std::time::Duration, String> {
    crate::model::duration::parse_within(s, min)
}

/// Seconds between two reports or samples: 10ms to a year.
pub(super) fn interval_secs(s: &str) -> Result<f64, String> {
    interval(s).map(|d| d.as_secs_f64())
}

/// An interval between two samples: 10ms to a year (shorter ones measure
/// only the timer).
pub(super) fn interval(s: &str) -> Result<std::time::Duration, String> {
    duration_within(s, std::time::Duration::from_millis(10))
}

/// How long a change waits for confirmation, or a block lasts: 1s to a
/// year (no person confirms faster).
pub(super) fn at_least_a_second(s: &str) -> Result<std::time::Duration, String> {
    duration_within(s, std::time::Duration::from_secs(1))
}

/// A packet rate: a finite number above zero, at most 10^12 pps.
pub(super) fn rate(s: &str) -> Result<f64, String> {
    let r: f64 = s
        .trim()
        .parse()
        .map_err(|_| format!("'{}' is not a rate in packets per second", s.escape_debug()))?;
    if !r.is_finite() || r <= 0.0 || r > 1e12 {
        return Err(format!(
            "'{s}': a rate must be a number above 0 and at most 1e12 pps"
        ));
    }
    Ok(r)
}

/// A rate limit's packets per second, as a rate limit takes them: 1 to
/// 10^9 (the rule of `rate4`/`rate6`).
pub(super) fn limit_pps(s: &str) -> Result<u64, String> {
    s.parse::<u64>()
        .ok()
        .filter(|n| (1..=crate::model::rate::MAX_PPS).contains(n))
        .ok_or_else(|| {
            format!(
                "'{}' is not a limit in packets per second from 1 to 10^9",
                s.escape_debug()
            )
        })
}

/// A count: 1 to 10^12.
pub(super) fn count(s: &str) -> Result<u64, String> {
    s.parse::<u64>()
        .ok()
        .filter(|n| (1..=1_000_000_000_000).contains(n))
        .ok_or_else(|| format!("'{}' is not a count from 1 to 10^12", s.escape_debug()))
}

/// A count that sizes something in memory: 1 to 10^8.
pub(super) fn size(s: &str) -> Result<usize, String> {
    s.parse::<usize>()
        .ok()
        .filter(|n| (1..=100_000_000).contains(n))
        .ok_or_else(|| format!("'{}' is not a number from 1 to 10^8", s.escape_debug()))
}

/// A prefix as a rule takes it: no host bits (the rule of `apply` and
/// `map update`).
pub(super) fn rule_cidr(s: &str) -> Result<Cidr, String> {
    let c: Cidr = s.parse()?;
    c.check_rule()?;
    Ok(c)
}

/// A path argument.
pub(super) fn path_arg(s: &str) -> Result<PathBuf, String> {
    match bad_text(s) {
        Some(why) => Err(format!("the path {:?} {why}", s)),
        None => Ok(PathBuf::from(s)),
    }
}

/// A device, namespace or file name argument.
/// `capture --max-rate`: packets a second, or none (`unlimited`).
#[derive(Clone, Copy, Debug)]
pub struct MaxRate(pub Option<u64>);

/// `capture --max-rate`: packets a second (1 to 10^9), or `unlimited`.
pub(super) fn max_rate(s: &str) -> Result<MaxRate, String> {
    if s == "unlimited" {
        return Ok(MaxRate(None));
    }
    s.parse::<u64>()
        .ok()
        .filter(|n| (1..=1_000_000_000).contains(n))
        .map(|n| MaxRate(Some(n)))
        .ok_or_else(|| {
            format!(
                "'{}' is not a rate from 1 to 10^9 packets a second, or 'unlimited'",
                s.escape_debug()
            )
        })
}

/// A pcap-filter expression: text without control characters, not empty.
pub(super) fn expression(s: &str) -> Result<String, String> {
    if s.trim().is_empty() {
        return Err("an empty filter expression: leave -f out to keep every packet".into());
    }
    name_arg(s)
}

pub(super) fn name_arg(s: &str) -> Result<String, String> {
    match bad_text(s) {
        Some(why) => Err(format!("{:?} {why}", s)),
        None if s.len() > 4096 => Err(format!("a name of {} bytes is too long", s.len())),
        None => Ok(s.to_owned()),
    }
}
