//! The sound core from outside: load directories that know themselves,
//! foreign and forged state refused cleanly, rollbacks that act only on
//! their own change, and a real-syscall crash (strace's fault injection).

use std::{fs, path::Path, process::Command, thread, time::Duration};

use serde_json::json;
use xdpctl_tests::{Bpffs, VethPair, attach_generic, fixture, require_privileges, sh, xdpctl};

/// Creates a map pinned at `path` with bpftool.
fn bpftool_map(path: &Path, kind: &str, key: u32, value: u32, entries: u32, name: &str) {
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    sh(
        "bpftool",
        &[
            "map",
            "create",
            path.to_str().unwrap(),
            "type",
            kind,
            "key",
            &key.to_string(),
            "value",
            &value.to_string(),
            "entries",
            &entries.to_string(),
            "name",
            name,
        ],
    );
}

/// Pins a document as xdpctl stores one (a 64 KiB array map holding a
/// length and JSON) — here, to forge one.
fn forge(path: &Path, map_name: &str, doc: &serde_json::Value) {
    bpftool_map(path, "array", 4, 65536, 1, map_name);
    let bytes = serde_json::to_vec(doc).unwrap();
    let mut value = vec![0u8; 65536];
    value[..4].copy_from_slice(&(bytes.len() as u32).to_le_bytes());
    value[4..4 + bytes.len()].copy_from_slice(&bytes);
    let mut args: Vec<String> = [
        "map",
        "update",
        "pinned",
        path.to_str().unwrap(),
        "key",
        "0",
        "0",
        "0",
        "0",
        "value",
        "hex",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    args.extend(value.iter().map(|b| format!("{b:02x}")));
    let out = Command::new("bpftool").args(&args).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn a_load_directory_with_the_firewalls_map_names_but_other_shapes_is_refused() {
    require_privileges!();
    let fs = Bpffs::new();
    let fake = fixture("fake_fw");
    xdpctl(&fs, ["load", fake.to_str().unwrap(), "--pin", "fake"]).ok();
    let before = fs.snapshot();
    for args in [
        vec!["stats", "fake"],
        vec!["top", "fake", "--count", "1"],
        vec![
            "guard",
            "fake",
            "--threshold",
            "100",
            "--count",
            "1",
            "--interval",
            "0.1",
        ],
        vec!["load", "--pin", "fake", "--replace"],
    ] {
        let out = xdpctl(&fs, &args).fails_with(&["fake"]);
        assert_eq!(out.stderr.lines().count(), 1, "{args:?}: {}", out.stderr);
        assert!(
            out.stderr.contains("blocklist")
                || out.stderr.contains("stats")
                || out.stderr.contains("pps"),
            "{args:?}: names no map: {}",
            out.stderr
        );
        assert!(
            out.stderr.contains("size") || out.stderr.contains("type"),
            "{args:?}: names no field: {}",
            out.stderr
        );
        assert_eq!(fs.snapshot(), before, "{args:?} changed the bpffs");
    }
}

#[test]
fn directories_that_are_not_load_directories_are_refused() {
    require_privileges!();
    let fs = Bpffs::new();
    let pair = VethPair::new();
    let ns = pair.b.name();
    xdpctl(&fs, ["load", "--pin", "fw"]).ok();
    xdpctl(
        &fs,
        ["map", "update", "fw/maps/blocklist", "203.0.113.5", "1"],
    )
    .ok();
    // Another tool's directory with the firewall's map names.
    for name in ["blocklist", "blocklist6", "stats", "pps", "pps6"] {
        bpftool_map(
            &fs.path().join("other/maps").join(name),
            "hash",
            4,
            1,
            16,
            name,
        );
    }
    let before = fs.snapshot();
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (vec!["unload", "other"], "not an xdpctl load directory"),
        (
            vec!["load", "--pin", "other", "--replace"],
            "not an xdpctl load directory",
        ),
        (
            vec!["attach", "other", &pair.dev_b, "--netns", ns],
            "not an xdpctl load directory",
        ),
        (vec!["stats", "other"], "other"),
        // Inside a load directory: refused, naming it.
        (
            vec!["load", "--pin", "fw/maps", "--replace"],
            "inside the load directory",
        ),
        (vec!["unload", "fw/maps"], "inside the load directory"),
        (
            vec!["load", "--pin", "fw/maps/x"],
            "inside the load directory",
        ),
        (
            vec!["unload", "fw/maps/blocklist"],
            "inside the load directory",
        ),
        (
            vec!["load", "--pin", "_xdpctl/x"],
            "xdpctl's own state directory",
        ),
    ];
    for (args, needle) in cases {
        let out = xdpctl(&fs, &args).fails_with(&[needle]);
        assert_eq!(out.stderr.lines().count(), 1, "{args:?}: {}", out.stderr);
        assert_eq!(fs.snapshot(), before, "{args:?} changed the bpffs");
    }
    // The firewall still has its blocklist.
    xdpctl(&fs, ["map", "lookup", "fw/maps/blocklist", "203.0.113.5"]).ok();
}

#[test]
fn unload_never_follows_a_symlink_out_of_its_bpffs() {
    require_privileges!();
    let fs = Bpffs::new();
    let other = Bpffs::new();
    let xdpctl_other = |args: &[&str]| {
        let mut cmd = xdpctl_tests::command(&other);
        cmd.args(args);
        xdpctl_tests::run(cmd)
    };
    xdpctl_other(&["load", "--pin", "fw"]).ok();
    std::os::unix::fs::symlink(other.path().join("fw"), fs.path().join("link")).unwrap();
    let theirs = other.snapshot();
    xdpctl(&fs, ["unload", "link"]).fails_with(&["symlink"]);
    assert_eq!(other.snapshot(), theirs);
}

#[test]
fn forged_traversing_and_colliding_records_are_refused() {
    require_privileges!();
    let fs = Bpffs::new();
    xdpctl(&fs, ["load", "--pin", "fw"]).ok();
    let victim = tempfile::tempdir().unwrap();
    fs::write(victim.path().join("precious"), "x").unwrap();
    let state = fs.path().join("_xdpctl");
    let root = fs.path().display().to_string();
    // A pending change whose rollback removes a directory outside bpffs.
    forge(
        &state.join("pending/load-0000000000000001"),
        "xdpctl_pending",
        &json!({
            "key": "load-0000000000000001", "what": "forged", "deadline_ms": 0,
            "watcher": 1, "expect": [], "keep": [],
            "rollback": [{"step": "remove_tree", "path": victim.path()}],
        }),
    );
    // One named for a device, saying it is another change.
    forge(
        &state.join("pending/dev-1-2"),
        "xdpctl_pending",
        &json!({
            "key": "load-0000000000000002", "what": "colliding", "deadline_ms": 0,
            "watcher": 1, "expect": [], "keep": [], "rollback": [],
        }),
    );
    // A journal record that traverses out of the bpffs.
    forge(
        &state.join("journal/0000000000000003"),
        "xdpctl_journal",
        &json!({
            "id": "0000000000000003", "pid": 1, "started_ms": 0,
            "change": {"op": "unload", "dir": format!("{root}/../../{}", victim.path().display()),
                       "generation": 1, "trash": format!("{root}/_xdpctl/trash/x"),
                       "links": [], "netlink": []},
        }),
    );
    // A journal record that keeps its scratch directory outside the state.
    forge(
        &state.join("journal/0000000000000004"),
        "xdpctl_journal",
        &json!({
            "id": "0000000000000004", "pid": 1, "started_ms": 0,
            "change": {"op": "load", "dir": format!("{root}/x"), "generation": 1,
                       "stage": format!("{root}/fw"), "parents": []},
        }),
    );
    let out = xdpctl(&fs, ["prog", "show"]).ok();
    assert!(out.stderr.contains("refusing"), "{}", out.stderr);
    assert!(victim.path().join("precious").exists(), "removed outside");
    assert!(fs.path().join("fw/xdp_fw").exists(), "removed the load");
    let doctor = xdpctl(&fs, ["doctor", "--check"]);
    assert_eq!(doctor.code, 1, "{}", doctor.stdout);
    for needle in ["not a plain absolute path", "outside", "says it is"] {
        assert!(
            doctor.stdout.contains(needle) || doctor.stderr.contains(needle),
            "doctor does not say {needle:?}:\n{}{}",
            doctor.stdout,
            doctor.stderr
        );
    }
    // Confirm and the watcher refuse keys that are paths.
    xdpctl(&fs, ["confirm", "../../etc"]).fails_with(&["neither"]);
    assert!(victim.path().join("precious").exists());
}

#[test]
fn a_rollback_leaves_an_attachment_that_was_remade_alone() {
    require_privileges!();
    let fs = Bpffs::new();
    let pair = VethPair::new();
    let ns = pair.b.name();
    xdpctl(&fs, ["load", "--pin", "fw"]).ok();
    let attach = |extra: &[&str]| {
        let mut args = vec![
            "attach",
            "fw",
            &pair.dev_b,
            "--netns",
            ns,
            "--mode",
            "generic",
        ];
        args.extend_from_slice(extra);
        xdpctl(&fs, &args).ok()
    };
    attach(&["--confirm-within", "2s"]);
    // A second pending change on the bpffs is refused.
    xdpctl(
        &fs,
        ["load", "--pin", "fw", "--replace", "--confirm-within", "2s"],
    )
    .fails_with(&["waiting for confirmation"]);
    xdpctl(&fs, ["detach", &pair.dev_b, "--netns", ns]).ok();
    attach(&[]);
    thread::sleep(Duration::from_secs(4));
    let shown = xdpctl(&fs, ["-j", "net", "show", &pair.dev_b, "--netns", ns])
        .ok()
        .json();
    assert_eq!(
        shown["devices"][0]["xdp"][0]["prog_name"], "xdp_fw",
        "the watcher took off an attachment that was not its own"
    );
    assert!(
        fs.snapshot().iter().all(|e| !e.starts_with("f _xdpctl/")),
        "{:?}",
        fs.snapshot()
    );
}

/// A change undone before it is confirmed (its load unloaded) has nothing
/// to keep: confirm says so and drops its record, never "it stays".
#[test]
fn confirming_a_change_undone_meanwhile_says_so() {
    require_privileges!();
    let fs = Bpffs::new();
    let pair = VethPair::new();
    let ns = pair.b.name();
    xdpctl(&fs, ["load", "--pin", "fw"]).ok();
    xdpctl(
        &fs,
        [
            "attach",
            "fw",
            &pair.dev_b,
            "--netns",
            ns,
            "--mode",
            "generic",
            "--confirm-within",
            "30s",
        ],
    )
    .ok();
    xdpctl(&fs, ["unload", "fw"]).ok();
    xdpctl(&fs, ["confirm", &pair.dev_b, "--netns", ns])
        .fails_with(&["was undone or changed since", "nothing to keep"]);
    let doctor = xdpctl(&fs, ["doctor", "--check"]).ok();
    assert!(!doctor.stdout.contains("pending"), "{}", doctor.stdout);
}

/// The issue's own reproduction: strace kills `load --replace` right before
/// a renameat2 — a real syscall, not a crash point of ours.
#[test]
fn a_replace_killed_by_strace_at_each_rename_keeps_the_firewall_armed() {
    require_privileges!();
    for n in 1..=3 {
        let fs = Bpffs::new();
        let pair = VethPair::new();
        let ns = pair.b.name();
        xdpctl(&fs, ["load", "--pin", "fw"]).ok();
        xdpctl(
            &fs,
            ["map", "update", "fw/maps/blocklist", "203.0.113.5", "1"],
        )
        .ok();
        attach_generic(&fs, "fw", &pair);
        let out = Command::new("strace")
            .args([
                "-f",
                "-qq",
                "-o",
                "/dev/null",
                "-e",
                "trace=renameat2",
                "-e",
                &format!("inject=renameat2:signal=KILL:when={n}"),
            ])
            .arg(xdpctl_tests::xdpctl_bin())
            .args(["load", "--pin", "fw", "--replace"])
            .env("XDPCTL_BPFFS", fs.path())
            .output()
            .expect("running strace (apt-get install strace)");
        let _ = out;
        let next = xdpctl(&fs, ["load", "--pin", "fw", "--replace"]).ok();
        assert!(
            next.stderr.contains("1 attachment(s) switched"),
            "rename {n}: {}",
            next.stderr
        );
        let shown = xdpctl(&fs, ["-j", "net", "show", &pair.dev_b, "--netns", ns])
            .ok()
            .json();
        assert_eq!(shown["devices"][0]["xdp"][0]["prog_name"], "xdp_fw");
        xdpctl(&fs, ["map", "lookup", "fw/maps/blocklist", "203.0.113.5"]).ok();
        assert!(
            fs.snapshot().iter().all(|e| !e.starts_with("f _xdpctl/")),
            "{:?}",
            fs.snapshot()
        );
    }
}

/// `doctor --check` reports a pin of a link that is no longer attached as
/// what it would do, and leaves it; `doctor` unpins it and says so.
#[test]
fn doctor_check_says_what_it_would_unpin_and_unpins_nothing() {
    require_privileges!();
    let fs = Bpffs::new();
    xdpctl(&fs, ["load", "--pin", "fw"]).ok();
    let pair = VethPair::new();
    attach_generic(&fs, "fw", &pair);
    // The device goes with its namespaces (the kernel tears them down in
    // the background); the link stays pinned, detached.
    drop(pair);
    let links = fs.path().join("fw/links");
    let pins = || fs::read_dir(&links).map_or(0, |d| d.count());
    assert_eq!(pins(), 1);
    let mut check = xdpctl(&fs, ["doctor", "--check"]);
    for _ in 0..100 {
        if check.code != 0 {
            break;
        }
        thread::sleep(Duration::from_millis(100));
        check = xdpctl(&fs, ["doctor", "--check"]);
    }
    assert_eq!(check.code, 1, "{}{}", check.stdout, check.stderr);
    assert!(
        check.stdout.contains("would unpin") && !check.stdout.contains("unpinned"),
        "{}",
        check.stdout
    );
    assert_eq!(pins(), 1, "--check unpinned the link");
    let repair = xdpctl(&fs, ["doctor"]).ok();
    assert!(repair.stdout.contains("unpinned"), "{}", repair.stdout);
    assert_eq!(pins(), 0);
}
