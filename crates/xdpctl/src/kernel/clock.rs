//! The wall clock and the stop signal, as the commands that run until
//! stopped (`stats`, `top`, `guard`, the agent) use them.

use std::{
    sync::atomic::Ordering,
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use crate::kernel::process::STOP;

/// Sleeps until `deadline` or a stop signal; false when stopped.
pub fn sleep_until(deadline: Instant) -> bool {
    while Instant::now() < deadline {
        if STOP.load(Ordering::SeqCst) {
            return false;
        }
        std::thread::sleep((deadline - Instant::now()).min(Duration::from_millis(100)));
    }
    !STOP.load(Ordering::SeqCst)
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// Nanoseconds of `clock` (0 if it cannot be read).
fn ns(clock: nix::time::ClockId) -> i128 {
    nix::time::clock_gettime(clock).map_or(0, |t| {
        i128::from(t.tv_sec()) * 1_000_000_000 + i128::from(t.tv_nsec())
    })
}

/// CLOCK_MONOTONIC in nanoseconds: the clock of `bpf_ktime_get_ns`.
pub fn monotonic_ns() -> u64 {
    u64::try_from(ns(nix::time::ClockId::CLOCK_MONOTONIC)).unwrap_or(0)
}

/// CLOCK_REALTIME: nanoseconds since the Unix epoch.
pub fn unix_ns() -> i128 {
    ns(nix::time::ClockId::CLOCK_REALTIME)
}

/// What to add to a time of `clock` (nanoseconds) to make it Unix time in
/// nanoseconds: the kernel stamps BPF objects and captured packets with
/// CLOCK_BOOTTIME or CLOCK_MONOTONIC.
pub fn unix_offset_ns(clock: nix::time::ClockId) -> i128 {
    ns(nix::time::ClockId::CLOCK_REALTIME) - ns(clock)
}

/// RFC 3339 UTC time (`2026-11-22T04:10:00Z`) of Unix milliseconds.
pub fn rfc3339(ms: u64) -> String {
    humantime::format_rfc3339_seconds(UNIX_EPOCH + Duration::from_millis(ms)).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_rfc3339_utc() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_795_316_766_000), "2026-11-22T03:06:06Z");
        assert_eq!(rfc3339(951_782_400_000), "2000-02-29T00:00:00Z");
    }
}
