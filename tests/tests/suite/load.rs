//! `xdpctl load`, `unload`, `prog show`, `map show` against the real kernel.

use std::{fs, os::unix::fs::symlink, process::Stdio};

use serde_json::Value;
use xdp_progs::xdpfw;
use xdpctl_tests::{
    Bpffs, TEST_SIZES, command, fixture, pins_below, require_privileges, run, xdpctl,
};

/// What a load of the built-in firewall pins: its program and every map.
fn xdpfw_pins() -> Vec<String> {
    let mut pins: Vec<String> = xdpfw::maps::ALL
        .iter()
        .map(|m| format!("maps/{m}"))
        .collect();
    pins.push(xdpfw::PROGRAM.to_owned());
    // The load directory's manifest: what was loaded, pinned with it.
    pins.push("manifest".to_owned());
    pins.sort();
    pins
}

fn occupied(n: usize) -> String {
    format!("already holds {n} pinned object(s)")
}

#[test]
fn builtin_firewall_is_pinned_like_loadall_and_matches_show() {
    require_privileges!();
    let fs = Bpffs::new();
    let dir = fs.path().join("xdpfw");
    // The object's own sizes: without the tests' XDPCTL_MAX_ENTRIES.
    let mut cmd = command(&fs);
    cmd.env_remove("XDPCTL_MAX_ENTRIES")
        .args(["-j", "load", "--pin", dir.to_str().unwrap()]);
    let out = run(cmd).ok();
    let loaded = out.json();
    assert_eq!(loaded["dir"], Value::from(dir.to_str().unwrap()));

    let pins = pins_below(&dir);
    let names: Vec<&str> = pins.keys().map(String::as_str).collect();
    assert_eq!(names, xdpfw_pins(), "pins under {}", dir.display());

    // What load reported is what is pinned.
    for obj in loaded["objects"].as_array().unwrap() {
        let path = obj["pinned"].as_str().unwrap();
        let rel = path.strip_prefix(&format!("{}/", dir.display())).unwrap();
        assert_eq!(obj["id"].as_u64().unwrap() as u32, pins[rel].1, "{rel}");
        assert_eq!(obj["kind"].as_str().unwrap(), pins[rel].0, "{rel}");
    }

    // prog show by pinned path and by id agree with the pin.
    let prog_id = pins["xdp_fw"].1;
    let shown = xdpctl(
        &fs,
        ["-j", "prog", "show", dir.join("xdp_fw").to_str().unwrap()],
    )
    .ok()
    .json();
    let prog = &shown[0];
    assert_eq!(prog["id"], prog_id);
    assert_eq!(prog["type"], "xdp");
    assert_eq!(prog["name"], "xdp_fw");
    assert_eq!(prog["pinned"][0], dir.join("xdp_fw").to_str().unwrap());
    let by_id = xdpctl(&fs, ["-j", "prog", "show", &prog_id.to_string()])
        .ok()
        .json();
    assert_eq!(by_id, shown);

    // The program uses exactly the six pinned maps.
    let mut map_ids: Vec<u64> = prog["map_ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_u64().unwrap())
        .collect();
    map_ids.sort_unstable();
    let mut pinned_map_ids: Vec<u64> = pins
        .iter()
        .filter(|(k, _)| k.starts_with("maps/"))
        .map(|(_, v)| u64::from(v.1))
        .collect();
    pinned_map_ids.sort_unstable();
    assert_eq!(map_ids, pinned_map_ids);

    // map show by path: the definitions the firewall promises.
    let expect = [
        ("blocklist", "hash", 4, 1, 65536),
        ("pps", "lru_percpu_hash", 4, 8, 1_000_000),
        ("udp_ports", "hash", 2, 1, 65536),
        ("icmp_drops", "percpu_array", 4, 8, 1),
        ("config", "array", 4, 2, 1),
        ("stats", "percpu_array", 4, 16, 16),
    ];
    for (name, ty, key, value, max) in expect {
        let path = dir.join("maps").join(name);
        let m = &xdpctl(&fs, ["-j", "map", "show", path.to_str().unwrap()])
            .ok()
            .json()[0];
        assert_eq!(m["name"], name);
        assert_eq!(m["type"], ty, "{name}");
        assert_eq!(m["key_size"], key, "{name}");
        assert_eq!(m["value_size"], value, "{name}");
        assert_eq!(m["max_entries"], max, "{name}");
        assert_eq!(m["id"], pins[&format!("maps/{name}")].1);
        assert_eq!(m["pinned"][0], path.to_str().unwrap());
    }

    // Every map listed by `map show` with a pin under this bpffs is ours.
    let all = xdpctl(&fs, ["-j", "map", "show"]).ok().json();
    let pinned_here = all
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| !m["pinned"].as_array().unwrap().is_empty())
        .count();
    assert_eq!(
        pinned_here,
        xdpfw::maps::ALL.len() + 1,
        "the maps and the manifest"
    );

    // The human table names the same objects.
    let table = xdpctl(&fs, ["prog", "show", "xdpfw/xdp_fw"]).ok().stdout;
    assert!(table.starts_with("ID"), "{table}");
    assert!(
        table.contains("xdp_fw") && table.contains(&prog_id.to_string()),
        "{table}"
    );
}

#[test]
fn relative_pin_dir_is_under_the_bpffs_root() {
    require_privileges!();
    let fs = Bpffs::new();
    xdpctl(&fs, ["load", "--pin", "fw/one"]).ok();
    assert_eq!(
        pins_below(&fs.path().join("fw/one")).len(),
        xdpfw_pins().len()
    );
}

#[test]
fn user_object_is_loaded_and_pinned() {
    require_privileges!();
    let fs = Bpffs::new();
    let obj = fixture("user_xdp");
    let out = xdpctl(&fs, ["-j", "load", obj.to_str().unwrap(), "--pin", "mine"]).ok();
    let names: Vec<String> = pins_below(&fs.path().join("mine")).into_keys().collect();
    assert_eq!(
        names,
        [
            "count_types",
            "manifest",
            "maps/blocklist",
            "maps/ethertypes"
        ]
    );
    let objects = out.json()["objects"].as_array().unwrap().clone();
    let prog = objects.iter().find(|o| o["kind"] == "prog").unwrap();
    assert_eq!(prog["name"], "count_types");
    assert_eq!(prog["type"], "xdp");
}

#[test]
fn loading_into_an_occupied_dir_fails_and_changes_nothing() {
    require_privileges!();
    let fs = Bpffs::new();
    xdpctl(&fs, ["load", "--pin", "xdpfw"]).ok();
    let before = fs.snapshot();
    xdpctl(&fs, ["load", "--pin", "xdpfw"])
        .fails_with(&[&occupied(xdpfw_pins().len()), "xdpctl unload"]);
    // A user object into the same place: refused the same way.
    xdpctl(
        &fs,
        [
            "load",
            fixture("user_xdp").to_str().unwrap(),
            "--pin",
            "xdpfw",
        ],
    )
    .fails_with(&["already holds"]);
    assert_eq!(fs.snapshot(), before);
}

#[test]
fn an_existing_empty_dir_is_used() {
    require_privileges!();
    let fs = Bpffs::new();
    fs::create_dir(fs.path().join("empty")).unwrap();
    xdpctl(&fs, ["load", "--pin", "empty"]).ok();
    assert_eq!(
        pins_below(&fs.path().join("empty")).len(),
        xdpfw_pins().len()
    );
}

#[test]
fn verifier_rejection_shows_where_and_why_and_pins_nothing() {
    require_privileges!();
    let fs = Bpffs::new();
    let log = tempfile::NamedTempFile::new().unwrap();
    let before = fs.snapshot();
    let out = xdpctl(
        &fs,
        [
            "load",
            fixture("bad_bounds").to_str().unwrap(),
            "--pin",
            "a/b/bad",
            "--verifier-log",
            log.path().to_str().unwrap(),
        ],
    )
    .fails_with(&[
        "the verifier rejected program no_bounds",
        "invalid access to packet",
        "hint:",
        "data_end",
    ]);
    assert!(
        out.stderr.contains(&format!(
            "the full verifier log is in {}",
            log.path().display()
        )),
        "{}",
        out.stderr
    );
    let full = fs::read_to_string(log.path()).unwrap();
    assert!(
        full.contains("invalid access to packet"),
        "full log:\n{full}"
    );
    assert!(full.lines().count() > out.stderr.lines().filter(|l| l.starts_with("  |")).count());
    // Not even the parent directories are left behind.
    assert_eq!(fs.snapshot(), before);
}

#[test]
fn unchecked_map_lookup_gets_the_null_hint() {
    require_privileges!();
    let fs = Bpffs::new();
    let before = fs.snapshot();
    let out = xdpctl(
        &fs,
        [
            "load",
            fixture("bad_null").to_str().unwrap(),
            "--pin",
            "bad",
        ],
    )
    .fails_with(&[
        "the verifier rejected program no_null_check",
        "NULL check",
        "--verifier-log FILE",
    ]);
    assert!(out.stderr.contains("or_null"), "{}", out.stderr);
    assert_eq!(fs.snapshot(), before);
}

#[test]
fn a_value_size_overrun_gets_the_value_size_hint_not_the_null_one() {
    require_privileges!();
    let fs = Bpffs::new();
    let before = fs.snapshot();
    let out = xdpctl(
        &fs,
        [
            "load",
            fixture("bad_value_size").to_str().unwrap(),
            "--pin",
            "bad",
        ],
    )
    .fails_with(&[
        "the verifier rejected program value_overrun",
        "value_size=4",
        "hint: a map value is accessed out of its bounds",
    ]);
    assert!(!out.stderr.contains("NULL check"), "{}", out.stderr);
    assert_eq!(fs.snapshot(), before);
}

#[test]
fn bad_paths_and_files_are_refused_with_nothing_changed() {
    require_privileges!();
    let fs = Bpffs::new();
    xdpctl(&fs, ["load", "--pin", "existing"]).ok();
    let outside = tempfile::tempdir().unwrap();
    symlink(outside.path(), fs.path().join("escape")).unwrap();
    let not_elf = outside.path().join("notes.txt");
    fs::write(&not_elf, "this is not an object\n").unwrap();
    let truncated = outside.path().join("truncated.o");
    let full = fs::read(fixture("user_xdp")).unwrap();
    fs::write(&truncated, &full[..full.len() / 3]).unwrap();
    let before = fs.snapshot();
    let outside_before: Vec<_> = fs::read_dir(outside.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();

    let bpffs = fs.path().to_str().unwrap().to_owned();
    let cases: Vec<(Vec<String>, Vec<&str>)> = vec![
        (
            vec![
                "load".into(),
                "--pin".into(),
                outside.path().join("x").to_str().unwrap().into(),
            ],
            vec!["is not on a bpffs mount"],
        ),
        (
            vec![
                "load".into(),
                "--pin".into(),
                format!("{bpffs}/../../tmp/x"),
            ],
            vec!["may not contain '..'"],
        ),
        (
            vec!["load".into(), "--pin".into(), "escape/x".into()],
            vec!["outside bpffs", "symlink"],
        ),
        (
            vec!["load".into(), "--pin".into(), "v1.2".into()],
            vec!["does not allow '.'"],
        ),
        (
            vec![
                "load".into(),
                not_elf.to_str().unwrap().into(),
                "--pin".into(),
                "n".into(),
            ],
            vec!["is not an ELF file", "clang"],
        ),
        (
            vec![
                "load".into(),
                truncated.to_str().unwrap().into(),
                "--pin".into(),
                "t".into(),
            ],
            vec!["is not a valid BPF object"],
        ),
        (
            vec!["load".into(), "/bin/sh".into(), "--pin".into(), "s".into()],
            vec!["another machine"],
        ),
        (
            vec![
                "load".into(),
                "/nonexistent/x.o".into(),
                "--pin".into(),
                "s".into(),
            ],
            vec!["cannot read /nonexistent/x.o"],
        ),
        (
            vec![
                "load".into(),
                "--pin".into(),
                "m".into(),
                "--map".into(),
                "nosuch=existing/maps/pps".into(),
            ],
            vec!["has no map named nosuch", "blocklist"],
        ),
        (
            vec![
                "load".into(),
                "--pin".into(),
                "m".into(),
                "--map".into(),
                "blocklist=existing/maps/pps".into(),
            ],
            vec![
                "does not match",
                "type is lru_percpu_hash, the object wants hash",
            ],
        ),
        (
            vec![
                "load".into(),
                "--pin".into(),
                "m".into(),
                "--map".into(),
                "blocklist=existing/xdp_fw".into(),
            ],
            vec!["is a pinned prog, not a map"],
        ),
        (
            vec![
                "load".into(),
                "--pin".into(),
                "m".into(),
                "--map".into(),
                "blocklist=existing/maps/nope".into(),
            ],
            vec!["nothing is pinned at"],
        ),
    ];
    for (args, needles) in cases {
        let out = xdpctl(&fs, &args).fails_with(&needles);
        // One line of error: the message, not a backtrace or a log.
        assert_eq!(
            out.stderr.lines().count(),
            1,
            "`xdpctl {}`:\n{}",
            args.join(" "),
            out.stderr
        );
        assert!(
            out.stdout.is_empty(),
            "`xdpctl {}` printed to stdout: {}",
            args.join(" "),
            out.stdout
        );
        assert_eq!(
            fs.snapshot(),
            before,
            "`xdpctl {}` changed bpffs",
            args.join(" ")
        );
    }
    let outside_after: Vec<_> = fs::read_dir(outside.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(
        outside_before, outside_after,
        "something was created outside bpffs"
    );
}

#[test]
fn a_bpffs_root_that_is_not_bpffs_is_refused() {
    require_privileges!();
    let fs = Bpffs::new();
    let plain = tempfile::tempdir().unwrap();
    let mut cmd = command(&fs);
    cmd.env("XDPCTL_BPFFS", plain.path())
        .args(["load", "--pin", "xdpfw"]);
    xdpctl_tests::run(cmd).fails_with(&["is not on a bpffs mount"]);
    assert!(
        fs::read_dir(plain.path()).unwrap().next().is_none(),
        "created something in a plain dir"
    );
}

#[test]
fn reused_map_is_shared_between_loads() {
    require_privileges!();
    let fs = Bpffs::new();
    xdpctl(&fs, ["load", "--pin", "v1"]).ok();
    let obj = fixture("user_xdp");
    xdpctl(
        &fs,
        [
            "load",
            obj.to_str().unwrap(),
            "--pin",
            "v2",
            "--map",
            "blocklist=v1/maps/blocklist",
        ],
    )
    .ok();
    let v1 = pins_below(&fs.path().join("v1"));
    let v2 = pins_below(&fs.path().join("v2"));
    assert_eq!(
        v1["maps/blocklist"].1, v2["maps/blocklist"].1,
        "v2 should reuse v1's blocklist"
    );
    assert_ne!(v1["xdp_fw"].1, v2["count_types"].1);
}

#[test]
fn concurrent_loads_into_one_dir_exactly_one_wins() {
    require_privileges!();
    let fs = Bpffs::new();
    let children: Vec<_> = (0..4)
        .map(|_| {
            let mut cmd = command(&fs);
            cmd.args(["load", "--pin", "race/xdpfw"])
                .stdout(Stdio::null())
                .stderr(Stdio::piped());
            cmd.spawn().expect("spawning xdpctl")
        })
        .collect();
    let outputs: Vec<_> = children
        .into_iter()
        .map(|c| c.wait_with_output().unwrap())
        .collect();
    let winners = outputs.iter().filter(|o| o.status.success()).count();
    assert_eq!(winners, 1, "exactly one load must win: {outputs:?}");
    for loser in outputs.iter().filter(|o| !o.status.success()) {
        assert_eq!(loser.status.code(), Some(1));
        let err = String::from_utf8_lossy(&loser.stderr);
        assert!(err.contains(&occupied(xdpfw_pins().len())), "{err}");
    }
    let snap = fs.snapshot();
    // The winner's pins and their directories, nothing else (no staging dirs).
    assert_eq!(
        snap.iter().filter(|e| e.starts_with("f ")).count(),
        xdpfw_pins().len(),
        "{snap:#?}"
    );
    assert!(
        snap.iter().all(|e| !e.contains("xdpctl-stage")),
        "{snap:#?}"
    );
}

#[test]
fn unload_removes_everything_and_is_idempotent() {
    require_privileges!();
    let fs = Bpffs::new();
    let loaded = xdpctl(&fs, ["-j", "load", "--pin", "fw/xdpfw"]).ok().json();
    let prog_id = loaded["objects"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["kind"] == "prog")
        .unwrap()["id"]
        .clone();
    let out = xdpctl(&fs, ["-j", "unload", "fw/xdpfw"]).ok();
    assert_eq!(
        out.json()["removed"].as_array().unwrap().len(),
        xdpfw_pins().len()
    );
    assert_eq!(
        fs.snapshot(),
        ["d fw"],
        "only the parent the user named stays"
    );
    // The program is gone from the kernel once its last pin is.
    xdpctl(&fs, ["prog", "show", &prog_id.to_string()]).fails_with(&["no program has id"]);
    // Again: nothing to do, not an error.
    let again = xdpctl(&fs, ["-j", "unload", "fw/xdpfw"]).ok();
    assert_eq!(again.json()["removed"], Value::Array(vec![]));
    assert!(
        again.stderr.contains("nothing is pinned at"),
        "{}",
        again.stderr
    );
}

#[test]
fn unload_refuses_the_bpffs_root() {
    require_privileges!();
    let fs = Bpffs::new();
    xdpctl(&fs, ["load", "--pin", "xdpfw"]).ok();
    let before = fs.snapshot();
    xdpctl(&fs, ["unload", fs.path().to_str().unwrap()])
        .fails_with(&["is the root of a bpffs mount"]);
    assert_eq!(fs.snapshot(), before);
}

#[test]
fn show_errors_name_the_object() {
    require_privileges!();
    let fs = Bpffs::new();
    xdpctl(&fs, ["load", "--pin", "xdpfw"]).ok();
    xdpctl(&fs, ["prog", "show", "4000000000"]).fails_with(&["no program has id 4000000000"]);
    xdpctl(&fs, ["map", "show", "xdpfw/xdp_fw"]).fails_with(&["is a pinned prog, not a map"]);
    xdpctl(&fs, ["prog", "show", "xdpfw/maps/pps"]).fails_with(&["is a pinned map, not a prog"]);
    xdpctl(&fs, ["prog", "show", "xdpfw/nope"]).fails_with(&["nothing is pinned at"]);
    xdpctl(&fs, ["prog", "show", "xdpfw"]).fails_with(&["is a directory"]);
}

#[test]
fn without_capabilities_the_error_says_what_is_needed() {
    require_privileges!();
    let fs = Bpffs::new();
    let before = fs.snapshot();
    // Root without any capability: BPF map creation is refused with EPERM.
    let mut cmd = std::process::Command::new("setpriv");
    cmd.args([
        "--inh-caps=-all",
        "--ambient-caps=-all",
        "--bounding-set=-all",
        "--",
    ])
    .arg(xdpctl_tests::xdpctl_bin())
    .args(["load", "--pin", "xdpfw"])
    .env("XDPCTL_BPFFS", fs.path());
    xdpctl_tests::run(cmd).fails_with(&["CAP_BPF", "CAP_NET_ADMIN"]);
    assert_eq!(fs.snapshot(), before);
}

#[test]
fn json_output_is_valid_for_every_command() {
    require_privileges!();
    let fs = Bpffs::new();
    for flag in ["-j", "-p"] {
        let dir = format!("j{}", flag.trim_start_matches('-'));
        for args in [
            vec![flag, "load", "--pin", &dir],
            vec![flag, "prog", "show"],
            vec![flag, "map", "show"],
            vec![flag, "unload", &dir],
            vec![flag, "unload", &dir],
        ] {
            xdpctl(&fs, &args).ok().json();
        }
    }
}

/// XDPCTL_MAX_ENTRIES sizes the maps of those names an object has, for
/// every load; --max-entries wins; a bad value is one line and no load.
#[test]
fn max_entries_from_the_environment_sizes_every_load() {
    require_privileges!();
    let fs = Bpffs::new();
    let max = |pin: &str, map: &str| {
        xdpctl(&fs, ["-j", "map", "show", &format!("{pin}/maps/{map}")])
            .ok()
            .json()[0]["max_entries"]
            .clone()
    };
    // The harness sets XDPCTL_MAX_ENTRIES to TEST_SIZES for every run.
    assert!(TEST_SIZES.contains("pps=65536"), "{TEST_SIZES}");
    xdpctl(&fs, ["load", "--pin", "a"]).ok();
    assert_eq!(max("a", "pps"), 65536);
    assert_eq!(max("a", "blocklist"), 65536);
    xdpctl(&fs, ["load", "--pin", "b", "--max-entries", "pps=4096"]).ok();
    assert_eq!(max("b", "pps"), 4096);
    // An object without such maps loads as it is.
    let pass = fixture("xdp_pass");
    xdpctl(&fs, ["load", pass.to_str().unwrap(), "--pin", "c"]).ok();
    // A replace keeps the load's sizes, whatever the environment says now.
    let mut cmd = command(&fs);
    cmd.env("XDPCTL_MAX_ENTRIES", "pps=8192")
        .args(["load", "--pin", "b", "--replace"]);
    run(cmd).ok();
    assert_eq!(max("b", "pps"), 4096);

    let before = pins_below(fs.path());
    for (value, needles) in [
        (
            "pps=lots",
            &["XDPCTL_MAX_ENTRIES", "pps=lots", "unset it"][..],
        ),
        (
            "pps=1,pps=2",
            &["XDPCTL_MAX_ENTRIES", "pps is given twice"][..],
        ),
        // The firewall's own maps have the sizes its program is built for.
        (
            "heavy=1",
            &["XDPCTL_MAX_ENTRIES", "heavy has the size its program"][..],
        ),
        (
            "stats=1",
            &["XDPCTL_MAX_ENTRIES", "stats has the size its program"][..],
        ),
    ] {
        let mut cmd = command(&fs);
        cmd.env("XDPCTL_MAX_ENTRIES", value)
            .args(["load", "--pin", "d"]);
        let out = run(cmd).fails_with(needles);
        assert_eq!(out.stderr.lines().count(), 1, "{value}: {}", out.stderr);
        assert_eq!(pins_below(fs.path()), before, "{value}");
    }
    xdpctl(&fs, ["load", "--pin", "d", "--max-entries", "bloom=64"]).fails_with(&[
        "--max-entries bloom",
        "bloom has the size its program",
        "pps6",
    ]);
    assert_eq!(pins_below(fs.path()), before);
}
