//! Every input bounded: each value a command takes — every option with an
//! argument and every positional, of every command — is fed its extremes
//! (0, negative, NaN, huge, empty, control characters). Each must be
//! refused cleanly: exit status ≠ 0, no panic, an error on stderr, JSON on
//! stdout under -j, and the bpffs and the devices exactly as before.
//!
//! A second test reads every command's `--help` and fails when a value it
//! lists is missing from the table below, so a new option cannot skip
//! this.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;
use xdpctl_tests::{Bpffs, VethPair, require_privileges, xdpctl};

const NUMERIC: &[&str] = &[
    "0",
    "-1",
    "NaN",
    "inf",
    "99999999999999999999999",
    "99999999999999999999999h",
    "1e400",
];
const TEXT: &[&str] = &["", "a\nb", "\u{1}", "x\u{7f}"];

/// Which extremes a value gets.
#[derive(Clone, Copy)]
enum Kind {
    /// Numbers and durations: every extreme.
    Number,
    /// Names, paths, handles, keys: the text extremes, and the numeric ones
    /// that cannot name anything here.
    Text,
    /// Only the text extremes ("0" is a fine file name, say).
    TextOnly,
}

/// One value of one command: the arguments with `{}` where the value goes,
/// the `--help` name it is listed as, and its extremes.
struct Case {
    command: &'static str,
    value: &'static str,
    args: &'static [&'static str],
    kind: Kind,
}

const fn case(
    command: &'static str,
    value: &'static str,
    args: &'static [&'static str],
    kind: Kind,
) -> Case {
    Case {
        command,
        value,
        args,
        kind,
    }
}

/// DEV and NS stand for the test's device and namespace.
const CASES: &[Case] = &[
    case(
        "load",
        "OBJECT",
        &["load", "{}", "--pin", "new"],
        Kind::Text,
    ),
    case("load", "--pin", &["load", "--pin", "{}"], Kind::TextOnly),
    case(
        "load",
        "--map",
        &["load", "--pin", "new", "--map", "{}"],
        Kind::Text,
    ),
    case(
        "load",
        "--verifier-log",
        &["load", "--pin", "new", "--verifier-log", "{}"],
        Kind::TextOnly,
    ),
    case(
        "load",
        "--confirm-within",
        &["load", "--pin", "fw", "--replace", "--confirm-within", "{}"],
        Kind::Number,
    ),
    case("unload", "DIR", &["unload", "{}"], Kind::TextOnly),
    case(
        "attach",
        "PROG",
        &["attach", "{}", "DEV", "--netns", "NS"],
        Kind::Text,
    ),
    case(
        "attach",
        "DEV",
        &["attach", "fw", "{}", "--netns", "NS"],
        Kind::Text,
    ),
    case(
        "attach",
        "--mode",
        &["attach", "fw", "DEV", "--netns", "NS", "--mode", "{}"],
        Kind::Text,
    ),
    case(
        "attach",
        "--netns",
        &["attach", "fw", "DEV", "--netns", "{}"],
        Kind::Text,
    ),
    case(
        "attach",
        "--confirm-within",
        &[
            "attach",
            "fw",
            "DEV",
            "--netns",
            "NS",
            "--confirm-within",
            "{}",
        ],
        Kind::Number,
    ),
    case(
        "attach",
        "--tcx",
        &["attach", "fw", "DEV", "--netns", "NS", "--tcx", "{}"],
        Kind::Text,
    ),
    case(
        "attach",
        "--before",
        &[
            "attach", "fw", "DEV", "--netns", "NS", "--tcx", "ingress", "--before", "{}",
        ],
        Kind::Text,
    ),
    case(
        "attach",
        "--after",
        &[
            "attach", "fw", "DEV", "--netns", "NS", "--tcx", "ingress", "--after", "{}",
        ],
        Kind::Text,
    ),
    case(
        "attach",
        "--expected-revision",
        &[
            "attach",
            "fw",
            "DEV",
            "--netns",
            "NS",
            "--tcx",
            "ingress",
            "--expected-revision",
            "{}",
        ],
        Kind::Number,
    ),
    case(
        "attach",
        "--tc",
        &["attach", "fw", "DEV", "--netns", "NS", "--tc", "{}"],
        Kind::Text,
    ),
    case(
        "attach",
        "--priority",
        &[
            "attach",
            "fw",
            "DEV",
            "--netns",
            "NS",
            "--tc",
            "ingress",
            "--priority",
            "{}",
        ],
        Kind::Number,
    ),
    case(
        "attach",
        "--run-priority",
        &[
            "attach",
            "fw",
            "DEV",
            "--netns",
            "NS",
            "--dispatcher",
            "--run-priority",
            "{}",
        ],
        Kind::Number,
    ),
    case(
        "attach",
        "--chain-call",
        &[
            "attach",
            "fw",
            "DEV",
            "--netns",
            "NS",
            "--dispatcher",
            "--chain-call",
            "{}",
        ],
        Kind::Text,
    ),
    case(
        "detach",
        "DEV",
        &["detach", "{}", "--netns", "NS"],
        Kind::Text,
    ),
    case(
        "detach",
        "--tcx",
        &["detach", "DEV", "--netns", "NS", "--tcx", "{}"],
        Kind::Text,
    ),
    case(
        "detach",
        "--tc",
        &["detach", "DEV", "--netns", "NS", "--tc", "{}"],
        Kind::Text,
    ),
    case(
        "detach",
        "--prog",
        &[
            "detach", "DEV", "--netns", "NS", "--tcx", "ingress", "--prog", "{}",
        ],
        Kind::Text,
    ),
    case(
        "net explain",
        "DEV",
        &["net", "explain", "{}", "--netns", "NS"],
        Kind::Text,
    ),
    case(
        "net explain",
        "--netns",
        &["net", "explain", "--netns", "{}"],
        Kind::Text,
    ),
    case(
        "detach",
        "--netns",
        &["detach", "DEV", "--netns", "{}"],
        Kind::Text,
    ),
    case(
        "net show",
        "DEV",
        &["net", "show", "{}", "--netns", "NS"],
        Kind::Text,
    ),
    case(
        "net show",
        "--netns",
        &["net", "show", "--netns", "{}"],
        Kind::Text,
    ),
    case("prog show", "PROG", &["prog", "show", "{}"], Kind::Text),
    case(
        "prog run",
        "PROG",
        &["prog", "run", "{}", "--packet", "udp"],
        Kind::Text,
    ),
    case(
        "prog run",
        "--packet",
        &["prog", "run", "fw", "--packet", "{}"],
        Kind::Text,
    ),
    case(
        "prog run",
        "--data",
        &["prog", "run", "fw", "--data", "{}"],
        Kind::Text,
    ),
    case(
        "prog run",
        "--repeat",
        &["prog", "run", "fw", "--packet", "udp", "--repeat", "{}"],
        Kind::Number,
    ),
    case("map show", "MAP", &["map", "show", "{}"], Kind::Text),
    case("map dump", "MAP", &["map", "dump", "{}"], Kind::Text),
    case(
        "map dump",
        "--limit",
        &["map", "dump", "blocklist", "--limit", "{}"],
        Kind::Number,
    ),
    case(
        "map dump",
        "--sort-by",
        &["map", "dump", "blocklist", "--sort-by", "{}"],
        Kind::Text,
    ),
    case(
        "map dump",
        "--top",
        &["map", "dump", "blocklist", "--top", "{}"],
        Kind::Number,
    ),
    case(
        "map lookup",
        "MAP",
        &["map", "lookup", "{}", "1.2.3.4"],
        Kind::Text,
    ),
    case(
        "map lookup",
        "KEY",
        &["map", "lookup", "blocklist", "{}"],
        Kind::Text,
    ),
    case(
        "map update",
        "MAP",
        &["map", "update", "{}", "1.2.3.4", "1"],
        Kind::Text,
    ),
    case(
        "map update",
        "KEY",
        &["map", "update", "blocklist", "{}", "1"],
        Kind::Text,
    ),
    case(
        "map update",
        "VALUE",
        &["map", "update", "blocklist", "1.2.3.4", "{}"],
        // NB: 0 is a fine blocklist value (a non-blocking entry).
        Kind::TextOnly,
    ),
    case(
        "map update",
        "--from-file",
        &["map", "update", "blocklist", "--from-file", "{}"],
        Kind::Text,
    ),
    case(
        "map delete",
        "MAP",
        &["map", "delete", "{}", "1.2.3.4"],
        Kind::Text,
    ),
    case(
        "map delete",
        "KEY",
        &["map", "delete", "blocklist", "{}"],
        Kind::Text,
    ),
    case("map clear", "MAP", &["map", "clear", "{}"], Kind::Text),
    case("stats", "DIR", &["stats", "{}"], Kind::Text),
    case(
        "stats",
        "--interval",
        &["stats", "fw", "--interval", "{}"],
        Kind::Number,
    ),
    case(
        "stats",
        "--count",
        &["stats", "fw", "--interval", "1", "--count", "{}"],
        Kind::Number,
    ),
    case(
        "stats",
        "--idle",
        &["stats", "fw", "--rules", "--idle", "{}"],
        Kind::Number,
    ),
    case(
        "stats",
        "--top",
        &["stats", "fw", "--rules", "--top", "{}"],
        Kind::Number,
    ),
    case(
        "stats",
        "--rule-counters",
        &["stats", "fw", "--rule-counters", "{}"],
        Kind::Text,
    ),
    case("top", "DIR", &["top", "{}", "--count", "1"], Kind::Text),
    case(
        "capture",
        "DIR|DEV",
        &["capture", "{}", "-c", "1"],
        Kind::Text,
    ),
    case(
        "capture",
        "--netns",
        &["capture", "DEV", "--netns", "{}"],
        Kind::Text,
    ),
    case(
        "capture",
        "--write",
        &["capture", "fw", "-w", "{}"],
        Kind::TextOnly,
    ),
    case(
        "capture",
        "--verdict",
        &["capture", "fw", "--verdict", "{}"],
        Kind::Text,
    ),
    case(
        "capture",
        "--rule",
        &["capture", "fw", "--rule", "{}"],
        Kind::Text,
    ),
    case(
        "capture",
        "--sample",
        &["capture", "fw", "--sample", "{}"],
        Kind::Number,
    ),
    case(
        "capture",
        "--max-rate",
        &["capture", "fw", "--max-rate", "{}"],
        Kind::Number,
    ),
    case(
        "capture",
        "--snaplen",
        &["capture", "fw", "--snaplen", "{}"],
        Kind::Number,
    ),
    case(
        "capture",
        "--count",
        &["capture", "fw", "--count", "{}"],
        Kind::Number,
    ),
    case(
        "capture",
        "--duration",
        &["capture", "fw", "--duration", "{}"],
        Kind::Number,
    ),
    case(
        "capture",
        "--filter",
        &["capture", "fw", "--filter", "{}"],
        Kind::TextOnly,
    ),
    case(
        "prog top",
        "PROG",
        &["prog", "top", "{}", "--count", "1"],
        Kind::Text,
    ),
    case(
        "prog top",
        "--interval",
        &["prog", "top", "--interval", "{}", "--count", "1"],
        Kind::Number,
    ),
    case(
        "prog top",
        "--count",
        &["prog", "top", "--count", "{}"],
        Kind::Number,
    ),
    case(
        "prog top",
        "--limit",
        &["prog", "top", "--limit", "{}", "--count", "1"],
        Kind::Number,
    ),
    case(
        "top",
        "--interval",
        &["top", "fw", "--count", "1", "--interval", "{}"],
        Kind::Number,
    ),
    case(
        "top",
        "--limit",
        &["top", "fw", "--count", "1", "--limit", "{}"],
        Kind::Number,
    ),
    case(
        "top",
        "--count",
        &["top", "fw", "--count", "{}"],
        Kind::Number,
    ),
    case(
        "guard",
        "DIR",
        &["guard", "{}", "--threshold", "9", "--count", "1"],
        Kind::Text,
    ),
    case(
        "guard",
        "--threshold",
        &["guard", "fw", "--count", "1", "--threshold", "{}"],
        Kind::Number,
    ),
    case(
        "guard",
        "--interval",
        &[
            "guard",
            "fw",
            "--threshold",
            "9",
            "--count",
            "1",
            "--interval",
            "{}",
        ],
        Kind::Number,
    ),
    case(
        "guard",
        "--limit",
        &[
            "guard",
            "fw",
            "--threshold",
            "9",
            "--count",
            "1",
            "--limit",
            "{}",
        ],
        Kind::Number,
    ),
    case(
        "guard",
        "--block-for",
        &[
            "guard",
            "fw",
            "--threshold",
            "9",
            "--count",
            "1",
            "--block-for",
            "{}",
        ],
        Kind::Number,
    ),
    case(
        "guard",
        "--allow",
        &[
            "guard",
            "fw",
            "--threshold",
            "9",
            "--count",
            "1",
            "--allow",
            "{}",
        ],
        Kind::Text,
    ),
    case(
        "guard",
        "--max-blocks",
        &[
            "guard",
            "fw",
            "--threshold",
            "9",
            "--count",
            "1",
            "--max-blocks",
            "{}",
        ],
        Kind::Number,
    ),
    case(
        "confirm",
        "DEV|DIR",
        &["confirm", "{}", "--netns", "NS"],
        Kind::Text,
    ),
    case(
        "confirm",
        "--netns",
        &["confirm", "DEV", "--netns", "{}"],
        Kind::Text,
    ),
    case("doctor", "DIR", &["doctor", "{}"], Kind::Text),
    case(
        "load",
        "--max-entries",
        &["load", "--pin", "new", "--max-entries", "{}"],
        Kind::Text,
    ),
    case("apply", "--file", &["apply", "--file", "{}"], Kind::Text),
    case(
        "apply",
        "--confirm-within",
        &["apply", "-f", "/nonexistent.yaml", "--confirm-within", "{}"],
        Kind::Number,
    ),
    case("save", "DIR", &["save", "{}"], Kind::Text),
    case(
        "agent",
        "--policy",
        &["agent", "--policy", "{}", "--listen", "127.0.0.1:0"],
        Kind::Text,
    ),
    case(
        "agent",
        "--listen",
        &["agent", "--policy", "/nonexistent.yaml", "--listen", "{}"],
        Kind::Text,
    ),
    case(
        "agent",
        "--resync",
        &["agent", "--policy", "/nonexistent.yaml", "--resync", "{}"],
        Kind::Number,
    ),
    case(
        "agent",
        "--top-rules",
        &[
            "agent",
            "--policy",
            "/nonexistent.yaml",
            "--top-rules",
            "{}",
        ],
        Kind::Number,
    ),
    case("completions", "SHELL", &["completions", "{}"], Kind::Text),
    case(
        "(global)",
        "--bpffs",
        &["--bpffs", "{}", "prog", "show"],
        Kind::TextOnly,
    ),
];

/// What a run must not change: the pins, what is attached, and the
/// firewall's bookkeeping (its control words: index modes, the blocklist
/// cache's generation), which a refused change must not touch either.
fn world(fs: &Bpffs, pair: &VethPair) -> (Vec<String>, String, String) {
    let shown = xdpctl(fs, ["-j", "net", "show", "--netns", pair.b.name()]).stdout;
    let ctl = xdpctl(fs, ["-j", "map", "dump", "fw/maps/ctl"]).ok().stdout;
    (fs.snapshot(), shown, ctl)
}

#[test]
fn every_value_of_every_command_refuses_its_extremes_cleanly() {
    require_privileges!();
    let fs = Bpffs::new();
    let pair = VethPair::new();
    xdpctl(&fs, ["load", "--pin", "fw"]).ok();
    xdpctl(&fs, ["map", "update", "blocklist", "203.0.113.5", "1"]).ok();
    let before = world(&fs, &pair);
    let mut runs = 0;
    for c in CASES {
        let extremes: Vec<&str> = match c.kind {
            Kind::Number => NUMERIC.iter().chain(TEXT).copied().collect(),
            Kind::Text => ["-1", "NaN", "99999999999999999999999"]
                .iter()
                .chain(TEXT)
                .copied()
                .collect(),
            Kind::TextOnly => TEXT.to_vec(),
        };
        for value in extremes {
            for json in [false, true] {
                let mut args: Vec<String> = Vec::new();
                if json {
                    args.push("-j".into());
                }
                args.extend(c.args.iter().map(|a| {
                    a.replace("{}", value)
                        .replace("DEV", &pair.dev_b)
                        .replace("NS", pair.b.name())
                }));
                let run = xdpctl(&fs, &args);
                runs += 1;
                let what = format!("{} {} = {value:?} (-j: {json})", c.command, c.value);
                assert!(
                    run.code == 1 || run.code == 2 || run.code == 3,
                    "{what}: exit status {}\n{}",
                    run.code,
                    run.stderr
                );
                assert!(
                    !run.stderr.contains("panicked") && !run.stderr.is_empty(),
                    "{what}: {}",
                    run.stderr
                );
                if json {
                    let v: Value = serde_json::from_str(&run.stdout).unwrap_or_else(|e| {
                        panic!("{what}: stdout is not JSON ({e}): {:?}", run.stdout)
                    });
                    assert!(v["error"]["message"].is_string(), "{what}: {v}");
                } else {
                    assert!(run.stdout.is_empty(), "{what}: stdout {:?}", run.stdout);
                }
                assert_eq!(world(&fs, &pair), before, "{what} changed something");
            }
        }
    }
    eprintln!("{runs} runs, each refused cleanly");
}

/// The values `xdpctl <command> --help` lists: `--opt <VALUE>` options and
/// `<ARG>` positionals.
fn values_in_help(command: &str) -> BTreeSet<String> {
    let mut args: Vec<&str> = if command == "(global)" {
        vec![]
    } else {
        command.split(' ').collect()
    };
    args.push("--help");
    let fs = Bpffs::new();
    let help = xdpctl(&fs, &args).ok().stdout;
    let mut out = BTreeSet::new();
    let mut section = "";
    for line in help.lines() {
        if !line.starts_with(' ') && line.ends_with(':') {
            section = line;
            continue;
        }
        let t = line.trim_start();
        if section == "Arguments:" && (t.starts_with('<') || t.starts_with('[')) {
            let name = t
                .trim_start_matches(['<', '['])
                .split(['>', ']'])
                .next()
                .unwrap()
                .trim_end_matches("...");
            out.insert(name.to_owned());
        }
        if t.starts_with('-') {
            let long = t.split_whitespace().find(|w| w.starts_with("--"));
            if let Some(long) = long {
                let takes_value = t.contains(&format!("{long} <"));
                let long = long.trim_end_matches(',');
                if takes_value {
                    out.insert(long.to_owned());
                }
            }
        }
    }
    out
}

#[test]
fn every_value_a_help_lists_is_in_the_table() {
    require_privileges!();
    let commands = [
        "load",
        "unload",
        "attach",
        "detach",
        "net show",
        "net explain",
        "prog show",
        "prog run",
        "prog top",
        "capture",
        "map show",
        "map dump",
        "map lookup",
        "map update",
        "map delete",
        "map clear",
        "stats",
        "top",
        "guard",
        "confirm",
        "doctor",
        "apply",
        "save",
        "agent",
        "completions",
    ];
    let mut table: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for c in CASES {
        table.entry(c.command).or_default().insert(c.value);
    }
    for command in commands {
        for value in values_in_help(command) {
            if value == "--bpffs" {
                continue; // global: one case covers it
            }
            assert!(
                table
                    .get(command)
                    .is_some_and(|v| v.contains(value.as_str())),
                "`xdpctl {command}` takes {value}, which this test does not try: add it to CASES"
            );
        }
    }
}

/// Runs xdpctl as an unprivileged user (nobody), with the same bpffs.
fn as_nobody(fs: &Bpffs, args: &[&str]) -> xdpctl_tests::Run {
    let mut cmd = std::process::Command::new("setpriv");
    cmd.args(["--reuid=65534", "--regid=65534", "--clear-groups"])
        .arg(xdpctl_tests::xdpctl_bin())
        .args(args)
        .env("XDPCTL_BPFFS", fs.path());
    xdpctl_tests::run(cmd)
}

#[test]
fn messages_name_the_real_problem() {
    require_privileges!();
    let fs = Bpffs::new();
    let pair = VethPair::new();
    xdpctl(&fs, ["load", "--pin", "fw"]).ok();
    let before = fs.snapshot();
    let dir = tempfile::tempdir().unwrap();

    // Objects that are not for this machine.
    let fixture = std::fs::read(xdpctl_tests::fixture("xdp_drop")).unwrap();
    for (byte, value, needle) in [(4, 1u8, "32-bit ELF"), (5, 2u8, "big-endian BPF object")] {
        let mut bytes = fixture.clone();
        bytes[byte] = value;
        let path = dir.path().join(format!("patched{byte}.o"));
        std::fs::write(&path, &bytes).unwrap();
        xdpctl(&fs, ["load", path.to_str().unwrap(), "--pin", "p"]).fails_with(&[needle]);
    }
    // The same --map twice.
    xdpctl(
        &fs,
        [
            "load",
            "--pin",
            "twice",
            "--map",
            "blocklist=fw/maps/blocklist",
            "--map",
            "blocklist=fw/maps/blocklist",
        ],
    )
    .fails_with(&["--map blocklist is given twice"]);
    // A kernel iterator file is not an object.
    let iter = fs.path().join("progs.debug");
    if iter.exists() {
        xdpctl(&fs, ["prog", "show", iter.to_str().unwrap()])
            .fails_with(&["is not a pinned BPF object"]);
    }
    // A frame too large for a test run.
    let big = dir.path().join("big.bin");
    std::fs::write(&big, vec![0xffu8; 100_000]).unwrap();
    xdpctl(&fs, ["prog", "run", "fw", "--data", big.to_str().unwrap()])
        .fails_with(&["an XDP test run takes at most"]);
    // A file that is not a namespace.
    xdpctl(&fs, ["net", "show", "--netns", "/etc/passwd"])
        .fails_with(&["/etc/passwd is not a network namespace"]);
    // Never the hint to mount over a directory with contents.
    std::fs::write(dir.path().join("precious"), "x").unwrap();
    let out = xdpctl(
        &fs,
        ["load", "--pin", dir.path().join("fw").to_str().unwrap()],
    )
    .fails_with(&["is not on a bpffs mount"]);
    assert!(!out.stderr.contains("mount -t bpf"), "{}", out.stderr);
    // --replace on the root of the bpffs.
    let out = xdpctl(
        &fs,
        ["load", "--pin", fs.path().to_str().unwrap(), "--replace"],
    )
    .fails_with(&["not an xdpctl load directory"]);
    assert!(!out.stderr.contains("CAP_BPF"), "{}", out.stderr);
    assert_eq!(fs.snapshot(), before);

    // Without privileges: told so, not that nothing is there.
    std::fs::set_permissions(
        fs.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let ns = pair.b.name();
    for args in [
        vec!["stats"],
        vec!["prog", "show"],
        vec!["unload", "fw"],
        vec!["confirm", "fw"],
        vec!["doctor"],
        vec!["map", "dump", "fw/maps/blocklist"],
        vec!["detach", &pair.dev_b, "--netns", ns],
    ] {
        let out = as_nobody(&fs, &args);
        assert_eq!(out.code, 1, "{args:?}: {}", out.stderr);
        assert!(
            out.stderr.contains("CAP_BPF") || out.stderr.contains("ermission"),
            "{args:?} does not say it lacks privileges: {}",
            out.stderr
        );
        assert!(
            !out.stderr.contains("no firewall is loaded")
                && !out.stderr.contains("nothing is waiting"),
            "{args:?}: {}",
            out.stderr
        );
    }
    assert_eq!(fs.snapshot(), before);
}

#[test]
fn a_file_that_does_not_fit_a_map_writes_nothing() {
    require_privileges!();
    let fs = Bpffs::new();
    // `tiny`: a hash of IPv4 keys to u8 values with room for 4.
    let typed = xdpctl_tests::fixture("typed_maps");
    xdpctl(&fs, ["load", typed.to_str().unwrap(), "--pin", "t"]).ok();
    xdpctl(&fs, ["map", "update", "t/maps/tiny", "10.0.0.1", "1"]).ok();
    xdpctl(&fs, ["map", "update", "t/maps/tiny", "10.0.0.9", "9"]).ok();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("entries");
    let dump = |fs: &Bpffs| xdpctl(fs, ["-j", "map", "dump", "t/maps/tiny"]).ok().json();
    let before = dump(&fs);
    // Three new keys where there is room for two.
    std::fs::write(&file, "10.0.0.2 2\n10.0.0.3 3\n10.0.0.4 4\n").unwrap();
    xdpctl(
        &fs,
        [
            "map",
            "update",
            "t/maps/tiny",
            "--from-file",
            file.to_str().unwrap(),
        ],
    )
    .fails_with(&["has room for 2 more entries", "nothing was written"]);
    assert_eq!(dump(&fs), before);
    // --if-absent with a key that exists after new ones.
    std::fs::write(&file, "10.0.0.2 2\n10.0.0.1 9\n").unwrap();
    xdpctl(
        &fs,
        [
            "map",
            "update",
            "t/maps/tiny",
            "--if-absent",
            "--from-file",
            file.to_str().unwrap(),
        ],
    )
    .fails_with(&["already exists", "nothing was written"]);
    assert_eq!(dump(&fs), before);
    // --if-exists with a key that does not.
    std::fs::write(&file, "10.0.0.1 5\n10.0.0.7 7\n").unwrap();
    xdpctl(
        &fs,
        [
            "map",
            "update",
            "t/maps/tiny",
            "--if-exists",
            "--from-file",
            file.to_str().unwrap(),
        ],
    )
    .fails_with(&["is not in map", "nothing was written"]);
    assert_eq!(dump(&fs), before);
    // What fits is written whole.
    std::fs::write(&file, "10.0.0.1 5\n10.0.0.2 2\n10.0.0.3 3\n").unwrap();
    xdpctl(
        &fs,
        [
            "map",
            "update",
            "t/maps/tiny",
            "--from-file",
            file.to_str().unwrap(),
        ],
    )
    .ok();
    assert_eq!(dump(&fs).as_array().unwrap().len(), 4);
}
