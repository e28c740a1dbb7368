//! Crash points for the fault-injection tests.
//!
//! Every state-changing system call in xdpctl (a pin, a rename, an unlink,
//! a link update, an XDP attach over netlink, a map write...) first calls
//! [`step`]. With `XDPCTL_FAILPOINT=N` in the environment, the process kills
//! itself with SIGKILL right before its N-th such call — the same as
//! `strace -e inject=SYSCALL:signal=KILL:when=N`, but counted across every
//! syscall that changes state and independent of how libc names them. The
//! tests run a command with N = 1, 2, 3... until it completes, and check
//! after each kill that the next ordinary command finds the state whole.
//!
//! Only in builds with the `failpoints` feature (the tests' build,
//! `scripts/test.sh`); elsewhere [`step`] is empty and [`COMPILED`] false.
//! With the feature and without the variable it is one relaxed atomic load
//! per call.

#[cfg(feature = "failpoints")]
use std::sync::{
    OnceLock,
    atomic::{AtomicU32, Ordering},
};

/// Whether crash points are compiled in (the `failpoints` feature).
pub const COMPILED: bool = cfg!(feature = "failpoints");

/// The environment variable that arms the crash point.
pub const ENV: &str = "XDPCTL_FAILPOINT";
/// Passed on as [`ENV`] to the `--confirm-within` watcher only (and not to
/// the command that starts it).
pub const WATCHER_ENV: &str = "XDPCTL_FAILPOINT_WATCHER";

#[cfg(feature = "failpoints")]
static ARMED: OnceLock<Option<u32>> = OnceLock::new();
#[cfg(feature = "failpoints")]
static COUNT: AtomicU32 = AtomicU32::new(0);

/// Marks the point right before a state-changing system call: without the
/// `failpoints` feature, nothing.
#[cfg(not(feature = "failpoints"))]
#[inline(always)]
pub fn step(_what: &str) {}

/// Marks the point right before a state-changing system call; dies there
/// when this is the N-th one and `XDPCTL_FAILPOINT=N`.
#[cfg(feature = "failpoints")]
pub fn step(_what: &str) {
    let armed = ARMED.get_or_init(|| std::env::var(ENV).ok().and_then(|v| v.parse().ok()));
    let Some(at) = *armed else {
        return;
    };
    if COUNT.fetch_add(1, Ordering::Relaxed) + 1 == at {
        // SAFETY: kill(2) on our own pid has no memory-safety preconditions.
        unsafe {
            libc::kill(libc::getpid(), libc::SIGKILL);
        }
    }
}
