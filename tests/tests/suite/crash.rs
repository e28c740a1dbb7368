//! Crash safety, tested by killing: every state-changing command is run
//! with `XDPCTL_FAILPOINT=N` for N = 1, 2, 3... — SIGKILL right before its
//! N-th state-changing system call (pin, rename, unlink, mkdir, link
//! update, XDP attach, map write) — until it completes. After each kill,
//! the next ordinary command runs, and the state must be exactly the
//! before or the after: attached iff it was attached before or after, the
//! blocklist intact, nothing left in xdpctl's state directory, no pin of a
//! dead link, and the device can be attached again.
//!
//! Each scenario prints `crash points: K, before: B, after: A` (with
//! `--nocapture`): the counts the closing notes quote.

use std::{
    collections::BTreeSet,
    os::unix::process::ExitStatusExt,
    path::Path,
    process::Command,
    thread,
    time::{Duration, Instant},
};

use serde_json::Value;
use xdpctl_tests::{
    Bpffs, VethPair, attach_generic, command, fixture, require_privileges, run, xdpctl,
};

const BLOCKED: &str = "203.0.113.5";

/// Runs xdpctl with the crash point armed; true if it was killed there.
fn killed_at(fs: &Bpffs, n: u32, env: &str, args: &[&str]) -> bool {
    let mut cmd = command(fs);
    cmd.env(env, n.to_string()).args(args);
    let out = cmd.output().expect("running xdpctl");
    match out.status.signal() {
        Some(9) => true,
        Some(sig) => panic!("xdpctl {} died of signal {sig}", args.join(" ")),
        None => {
            assert!(
                out.status.success(),
                "xdpctl {} failed without a crash (N={n}):\n{}",
                args.join(" "),
                String::from_utf8_lossy(&out.stderr)
            );
            false
        }
    }
}

/// What a check needs to know of the state.
#[derive(Debug, PartialEq, Eq)]
struct State {
    /// The XDP program on the device, by name, if any.
    attached: Option<String>,
    /// Whether the device runs the program pinned at fw/xdp_fw (never one
    /// pinned only in a staging directory).
    runs_the_pinned: bool,
    /// Whether fw/xdp_fw is another program than before the command.
    new_program: Option<bool>,
    /// Pins outside the state directory: `d path` / `f path kind`.
    pins: BTreeSet<String>,
}

fn pinned_prog(fs: &Bpffs) -> Option<u32> {
    pinfs::pin_info(&fs.path().join("fw/xdp_fw"))
        .ok()
        .map(|p| p.id)
}

fn state(fs: &Bpffs, pair: &VethPair, pre: Option<u32>) -> State {
    let show = xdpctl(
        fs,
        ["-j", "net", "show", &pair.dev_b, "--netns", pair.b.name()],
    );
    let xdp = if show.code == 0 {
        let v: Value = show.json();
        v["devices"][0]["xdp"]
            .as_array()
            .and_then(|a| a.first())
            .cloned()
    } else {
        None
    };
    let pinned = pinned_prog(fs);
    let pins = fs
        .snapshot()
        .into_iter()
        .filter(|e| !e.contains("_xdpctl"))
        .map(|e| {
            // `f path kind id`: ids change across generations; keep path and kind.
            let mut parts = e.split(' ');
            let (t, p, k) = (parts.next(), parts.next(), parts.next());
            // Link pins are named after the device of this iteration.
            let p = match p.unwrap_or("").split_once("links/") {
                Some((dir, _)) => format!("{dir}links/<dev>@<netns>"),
                None => p.unwrap_or("").to_owned(),
            };
            format!("{} {p} {}", t.unwrap_or(""), k.unwrap_or(""))
        })
        .collect();
    State {
        attached: xdp
            .as_ref()
            .map(|x| x["prog_name"].as_str().unwrap_or("?").to_owned()),
        runs_the_pinned: xdp
            .as_ref()
            .is_none_or(|x| x["prog_id"].as_u64().map(|id| id as u32) == pinned),
        new_program: pinned.map(|id| Some(id) != pre),
        pins,
    }
}

/// Nothing of an unfinished change is left: xdpctl's state directory
/// holds its empty subdirectories only, and no older-style leftovers.
fn settled(fs: &Bpffs, context: &str) {
    let left: Vec<String> = fs
        .snapshot()
        .into_iter()
        .filter(|e| {
            let path = e.split(' ').nth(1).unwrap_or("");
            (path.starts_with("_xdpctl/") && path.matches('/').count() > 1)
                || (path.starts_with("_xdpctl/") && e.starts_with("f "))
                || path.contains("_xdpctl-")
        })
        .collect();
    assert!(left.is_empty(), "{context}: left behind: {left:?}");
}

fn blocked(fs: &Bpffs) -> bool {
    xdpctl(fs, ["map", "lookup", "fw/maps/blocklist", BLOCKED]).code == 0
}

fn setup(fs: &Bpffs, pair: &VethPair, attach: bool) {
    xdpctl(fs, ["load", "--pin", "fw"]).ok();
    xdpctl(fs, ["map", "update", "fw/maps/blocklist", BLOCKED, "1"]).ok();
    if attach {
        attach_generic(fs, "fw", pair);
    }
}

/// The counts of one scenario.
struct Counts {
    points: u32,
    before: u32,
    after: u32,
}

/// Kills `args` before each state change in turn on a fresh setup; after
/// each kill runs `next` (an ordinary command) and checks the state is
/// `before` or `after`, then `also`.
fn crash_everywhere(
    name: &str,
    prepare: impl Fn(&Bpffs, &VethPair),
    args: &[&str],
    also: impl Fn(&Bpffs, &VethPair, &State),
) -> Counts {
    // The before and the after, from a run without a crash.
    let (before, after) = {
        let fs = Bpffs::new();
        let pair = VethPair::new();
        prepare(&fs, &pair);
        let pre = pinned_prog(&fs);
        let before = state(&fs, &pair, pre);
        let args = substitute(args, &pair);
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        xdpctl(&fs, &refs).ok();
        (before, state(&fs, &pair, pre))
    };
    let mut counts = Counts {
        points: 0,
        before: 0,
        after: 0,
    };
    for n in 1.. {
        assert!(n < 200, "{name}: more than 200 crash points?");
        let fs = Bpffs::new();
        let pair = VethPair::new();
        prepare(&fs, &pair);
        let pre = pinned_prog(&fs);
        let args = substitute(args, &pair);
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        let was_killed = killed_at(&fs, n, "XDPCTL_FAILPOINT", &refs);
        // The next ordinary command settles the bpffs.
        xdpctl(&fs, ["prog", "show"]).ok();
        let now = state(&fs, &pair, pre);
        let context = format!("{name}, killed before state change {n}");
        if now == before {
            counts.before += 1;
        } else if now == after {
            counts.after += 1;
        } else {
            panic!(
                "{context}: neither before nor after:\nnow {now:#?}\nbefore {before:#?}\nafter {after:#?}"
            );
        }
        settled(&fs, &context);
        also(&fs, &pair, &now);
        counts.points += 1;
        if !was_killed {
            break;
        }
    }
    eprintln!(
        "{name}: crash points: {}, before: {}, after: {}",
        counts.points, counts.before, counts.after
    );
    counts
}

fn substitute(args: &[&str], pair: &VethPair) -> Vec<String> {
    args.iter()
        .map(|a| a.replace("DEV", &pair.dev_b).replace("NS", pair.b.name()))
        .collect()
}

/// Detach and attach again work (no stale pin in the way).
fn reattach(fs: &Bpffs, pair: &VethPair) {
    xdpctl(fs, ["detach", &pair.dev_b, "--netns", pair.b.name()]).ok();
    attach_generic(fs, "fw", pair);
}

#[test]
fn a_killed_load_leaves_nothing_or_the_whole_load() {
    require_privileges!();
    let c = crash_everywhere(
        "load",
        |_, _| {},
        &["load", "--pin", "a/fw"],
        |fs, _, now| {
            if !now.pins.is_empty() {
                assert!(xdpctl(fs, ["doctor", "--check"]).code == 0);
            }
        },
    );
    assert!(c.points > 10 && c.before > 0 && c.after > 0);
}

#[test]
fn a_killed_replace_never_disarms_the_firewall() {
    require_privileges!();
    let c = crash_everywhere(
        "replace",
        |fs, pair| setup(fs, pair, true),
        &["load", "--pin", "fw", "--replace"],
        |fs, pair, now| {
            assert_eq!(now.attached.as_deref(), Some("xdp_fw"), "disarmed");
            assert!(
                now.runs_the_pinned,
                "runs a program that is not pinned in fw/"
            );
            assert!(blocked(fs), "the blocklist entry was lost");
            reattach(fs, pair);
        },
    );
    assert!(c.points > 10 && c.after > 0);
}

#[test]
fn a_killed_attach_is_attached_or_not_and_leaves_no_dead_pin() {
    require_privileges!();
    let c = crash_everywhere(
        "attach",
        |fs, pair| setup(fs, pair, false),
        &["attach", "fw", "DEV", "--netns", "NS", "--mode", "generic"],
        |fs, pair, _| reattach(fs, pair),
    );
    assert!(c.points >= 3 && c.before > 0 && c.after > 0);
}

/// `attach --replace` over another load's link: the link's pin moves to
/// the firewall's load with the switch. Killed anywhere, the link runs the
/// program of the load whose `links/` holds its pin: unloading the other
/// load never takes the firewall off.
#[test]
fn a_killed_attach_replace_leaves_the_link_with_its_programs_load() {
    require_privileges!();
    let c = crash_everywhere(
        "attach --replace",
        |fs, pair| {
            setup(fs, pair, false);
            let pass = fixture("xdp_pass");
            xdpctl(fs, ["load", pass.to_str().unwrap(), "--pin", "other"]).ok();
            attach_generic(fs, "other", pair);
        },
        &[
            "attach",
            "fw",
            "DEV",
            "--netns",
            "NS",
            "--mode",
            "generic",
            "--replace",
        ],
        |fs, pair, now| {
            let owner = if now.attached.as_deref() == Some("xdp_fw") {
                "fw"
            } else {
                "other"
            };
            assert!(
                now.pins
                    .contains(&format!("f {owner}/links/<dev>@<netns> link")),
                "{now:#?}"
            );
            xdpctl(fs, ["unload", "other"]).ok();
            let left = state(fs, pair, None).attached;
            assert_eq!(
                left.as_deref(),
                (owner == "fw").then_some("xdp_fw"),
                "unload of the other load"
            );
            xdpctl(fs, ["unload", "fw"]).ok();
            assert_eq!(state(fs, pair, None).attached, None, "unload of fw");
        },
    );
    assert!(c.points >= 4 && c.before > 0 && c.after > 0);
}

#[test]
fn a_killed_detach_leaves_no_pin_of_a_dead_link() {
    require_privileges!();
    let c = crash_everywhere(
        "detach",
        |fs, pair| setup(fs, pair, true),
        &["detach", "DEV", "--netns", "NS"],
        |fs, pair, _| reattach(fs, pair),
    );
    assert!(c.points >= 3 && c.after > 0);
}

#[test]
fn a_killed_unload_is_finished() {
    require_privileges!();
    let c = crash_everywhere(
        "unload",
        |fs, pair| setup(fs, pair, true),
        &["unload", "fw"],
        |_, _, now| assert!(now.attached.is_none() || now.pins.len() > 5),
    );
    assert!(c.points > 10 && c.after > 0);
}

/// The watcher of `--confirm-within`, killed before each of its state
/// changes: the rollback still happens, by the next command.
#[test]
fn a_killed_rollback_watcher_still_rolls_back() {
    require_privileges!();
    let mut points = 0;
    for n in 1.. {
        assert!(n < 100, "more than 100 crash points?");
        let fs = Bpffs::new();
        let pair = VethPair::new();
        setup(&fs, &pair, false);
        let pre = pinned_prog(&fs);
        let before = state(&fs, &pair, pre);
        let mut cmd = command(&fs);
        cmd.env("XDPCTL_FAILPOINT_WATCHER", n.to_string()).args([
            "attach",
            "fw",
            &pair.dev_b,
            "--netns",
            pair.b.name(),
            "--mode",
            "generic",
            "--confirm-within",
            "1s",
        ]);
        run(cmd).ok();
        // Past the deadline, wait for the watcher to finish or die.
        let start = Instant::now();
        thread::sleep(Duration::from_millis(1200));
        let watcher_done = loop {
            let busy = watchers_of(fs.path());
            if !busy || start.elapsed() > Duration::from_secs(10) {
                break !busy;
            }
            thread::sleep(Duration::from_millis(50));
        };
        assert!(watcher_done, "the watcher is still running");
        let leftover = fs.snapshot().iter().any(|e| e.starts_with("f _xdpctl/"));
        xdpctl(&fs, ["prog", "show"]).ok();
        let now = state(&fs, &pair, pre);
        assert_eq!(
            now, before,
            "watcher killed before state change {n}: not rolled back"
        );
        settled(&fs, &format!("watcher killed before state change {n}"));
        points += 1;
        if !leftover {
            break;
        }
    }
    eprintln!("rollback watcher: crash points: {points}, before: {points}, after: 0");
    assert!(points >= 3);
}

/// Whether a watcher for this bpffs is running.
fn watchers_of(root: &Path) -> bool {
    let Ok(out) = Command::new("pgrep").args(["-f", "__watch"]).output() else {
        return false;
    };
    String::from_utf8_lossy(&out.stdout).lines().any(|pid| {
        std::fs::read(format!("/proc/{}/cmdline", pid.trim()))
            .is_ok_and(|c| String::from_utf8_lossy(&c).contains(&*root.to_string_lossy()))
    })
}
