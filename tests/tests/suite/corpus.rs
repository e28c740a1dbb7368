//! Third-party BPF objects: xdp-tools' (Debian's xdp-tools package, in
//! /usr/lib/<triplet>/bpf) and cilium/ebpf's test ELFs (Debian's
//! golang-github-cilium-ebpf-dev, unpacked into target/corpus by
//! scripts/deps.sh). Each one either loads — programs and maps pinned,
//! `map show` and `map dump` of each map valid JSON — or is refused with one
//! line naming the object, the section and the reason; either way the bpffs
//! is exactly as before once it is unloaded. The expected outcome of every
//! object is listed below, so a regression (or a new object) fails.
//!
//! Also here: maps the objects pin by name (`LIBBPF_PIN_BY_NAME`, all of
//! xdp-filter's), shared under --bpffs between loads.

use std::{
    os::unix::process::ExitStatusExt,
    path::{Path, PathBuf},
};

use xdpctl_tests::{Bpffs, command, require_privileges, run, sh, xdpctl, xdpctl_bin};

/// What an object should do.
#[derive(Clone, Copy, Debug)]
enum Expect {
    /// Loads.
    Loads,
    /// Is refused with an error containing each of these.
    Refused(&'static [&'static str]),
}
use Expect::{Loads, Refused};

const BIG_ENDIAN: Expect = Refused(&["big-endian BPF object", "this host is little-endian"]);
const NO_PROGRAMS: Expect = Refused(&["contains no programs"]);
const SOCKET: Expect = Refused(&["section `socket`", "is a socketfilter program"]);
const STATIC_SECTION: Expect = Refused(&[
    "section `static` is not a program type that aya knows",
    "xdpctl loads XDP",
]);

/// xdp-tools 1.3 (Debian), by file name.
const XDP_TOOLS: &[(&str, Expect)] = &[
    ("xdp-dispatcher.o", Loads),
    (
        "xdpdump_bpf.o",
        Refused(&["section `fentry/func`", "is a fentry program"]),
    ),
    ("xdpdump_xdp.o", Loads),
    ("xdpfilt_alw_all.o", Loads),
    ("xdpfilt_alw_eth.o", Loads),
    ("xdpfilt_alw_ip.o", Loads),
    ("xdpfilt_alw_tcp.o", Loads),
    ("xdpfilt_alw_udp.o", Loads),
    ("xdpfilt_dny_all.o", Loads),
    ("xdpfilt_dny_eth.o", Loads),
    ("xdpfilt_dny_ip.o", Loads),
    ("xdpfilt_dny_tcp.o", Loads),
    ("xdpfilt_dny_udp.o", Loads),
    ("xsk_def_xdp_prog.o", Loads),
    ("xsk_def_xdp_prog_5.3.o", Loads),
];

/// cilium/ebpf 0.9.1's testdata and btf/testdata, by file name.
const CILIUM: &[(&str, Expect)] = &[
    ("btf_map_init-eb.elf", BIG_ENDIAN),
    (
        "btf_map_init-el.elf",
        Refused(&["section `.BTF`", "unexpected BTF type id"]),
    ),
    ("freplace-eb.elf", BIG_ENDIAN),
    (
        "freplace-el.elf",
        Refused(&["section `freplace/subprog`", "is an extension program"]),
    ),
    ("fwd_decl-eb.elf", BIG_ENDIAN),
    ("fwd_decl-el.elf", SOCKET),
    ("invalid_btf_map_init-eb.elf", BIG_ENDIAN),
    ("invalid_btf_map_init-el.elf", NO_PROGRAMS),
    ("invalid_map-eb.elf", BIG_ENDIAN),
    ("invalid_map-el.elf", NO_PROGRAMS),
    ("invalid_map_static-eb.elf", BIG_ENDIAN),
    (
        "invalid_map_static-el.elf",
        Refused(&[
            "section `maps`",
            "legacy map definition without a symbol name",
        ]),
    ),
    ("iproute2_map_compat-eb.elf", BIG_ENDIAN),
    ("iproute2_map_compat-el.elf", NO_PROGRAMS),
    ("loader-clang-14-eb.elf", BIG_ENDIAN),
    ("loader-clang-14-el.elf", STATIC_SECTION),
    ("loader-clang-7-eb.elf", BIG_ENDIAN),
    (
        "loader-clang-7-el.elf",
        Refused(&["section `.text`", "has no function symbol", "clang"]),
    ),
    ("loader-clang-9-eb.elf", BIG_ENDIAN),
    ("loader-clang-9-el.elf", STATIC_SECTION),
    ("loader-eb.elf", BIG_ENDIAN),
    ("loader-el.elf", STATIC_SECTION),
    ("map_spin_lock-eb.elf", BIG_ENDIAN),
    ("map_spin_lock-el.elf", NO_PROGRAMS),
    ("raw_tracepoint-eb.elf", BIG_ENDIAN),
    (
        "raw_tracepoint-el.elf",
        Refused(&[
            "section `raw_tracepoint/sched_process_exec`",
            "is a rawtracepoint program",
        ]),
    ),
    ("relocs-eb.elf", BIG_ENDIAN),
    (
        "relocs-el.elf",
        Refused(&["section `socket_filter/type_ids` is not a program type"]),
    ),
    ("relocs_read-eb.elf", BIG_ENDIAN),
    ("relocs_read-el.elf", SOCKET),
    ("relocs_read_tgt-eb.elf", BIG_ENDIAN),
    ("relocs_read_tgt-el.elf", NO_PROGRAMS),
    ("strings-eb.elf", BIG_ENDIAN),
    ("strings-el.elf", SOCKET),
    ("subprog_reloc-eb.elf", BIG_ENDIAN),
    ("subprog_reloc-el.elf", Loads),
];

/// Maps whose entries the kernel does not let user space read: `map dump`
/// refuses them in one line naming the map, its type and why.
const REFUSED_DUMPS: &[(&str, &str, &str)] = &[
    (
        "xdpdump_xdp.o",
        "xdpdump_perf_map",
        "a perf event array cannot be read",
    ),
    ("xsk_def_xdp_prog.o", "xsks_map", "an XSKMAP cannot be read"),
    (
        "xsk_def_xdp_prog_5.3.o",
        "xsks_map",
        "an XSKMAP cannot be read",
    ),
];

/// Whether the corpus may be missing here (a developer's machine without
/// scripts/deps.sh run); under CI=true it must be there.
fn corpus_required() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}

/// xdp-tools' objects directory.
fn xdp_tools_dir() -> Option<PathBuf> {
    let lib = Path::new("/usr/lib");
    std::fs::read_dir(lib)
        .ok()?
        .flatten()
        .map(|e| e.path().join("bpf"))
        .find(|p| p.join("xdpfilt_dny_tcp.o").exists())
}

/// cilium/ebpf's objects, by file name.
fn cilium_objects() -> Option<Vec<PathBuf>> {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"));
    let root = target.join("corpus/cilium-ebpf/usr/share/gocode/src/github.com/cilium/ebpf");
    let mut out = Vec::new();
    for sub in ["testdata", "btf/testdata"] {
        for e in std::fs::read_dir(root.join(sub)).ok()?.flatten() {
            if e.path().extension().is_some_and(|x| x == "elf") {
                out.push(e.path());
            }
        }
    }
    out.sort();
    Some(out)
}

/// The objects and what each should do; panics if the directory holds an
/// object the table does not list, or lacks one it lists.
fn plan(found: &[PathBuf], table: &[(&str, Expect)], what: &str) -> Vec<(PathBuf, Expect)> {
    let names: Vec<String> = found
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    for n in &names {
        assert!(
            table.iter().any(|(t, _)| t == n),
            "{what}: {n} is not in the table of expected outcomes; add it"
        );
    }
    table
        .iter()
        .map(|(name, expect)| {
            let i = names
                .iter()
                .position(|n| n == name)
                .unwrap_or_else(|| panic!("{what}: {name} is missing (found: {names:?})"));
            (found[i].clone(), *expect)
        })
        .collect()
}

fn file_name(p: &Path) -> String {
    p.file_name().unwrap().to_string_lossy().into_owned()
}

/// Loads one object into `fs` at `t` and checks the outcome; leaves `fs` as
/// it found it.
fn check_object(fs: &Bpffs, object: &Path, expect: Expect) {
    let before = fs.snapshot();
    let name = file_name(object);
    let obj = object.to_str().unwrap();
    let load = xdpctl(fs, ["-j", "load", obj, "--pin", "t"]);
    match expect {
        Refused(needles) => {
            let load = load.fails_with(needles);
            let err = load.stderr.trim_end();
            assert_eq!(
                err.lines().count(),
                1,
                "{name}: the refusal is not one line:\n{err}"
            );
            assert!(
                err.contains(obj),
                "{name}: the refusal does not name the object:\n{err}"
            );
            // With -j the error is also on stdout, as JSON.
            let v = load.json();
            assert!(
                v["error"]["message"]
                    .as_str()
                    .is_some_and(|m| m.contains(obj)),
                "{name}: stdout: {}",
                load.stdout
            );
        }
        Loads => {
            let load = load.ok();
            let v = load.json();
            let objects = v["objects"].as_array().expect("objects");
            assert!(
                objects.iter().any(|o| o["kind"] == "prog"),
                "{name}: no program pinned: {v}"
            );
            let maps_dir = fs.path().join("t/maps");
            let mut maps: Vec<PathBuf> = std::fs::read_dir(&maps_dir)
                .map(|d| d.flatten().map(|e| e.path()).collect())
                .unwrap_or_default();
            maps.sort();
            for map in &maps {
                let pin = map.to_str().unwrap();
                let show = xdpctl(fs, ["-j", "map", "show", pin]).ok();
                show.json();
                let dump = xdpctl(fs, ["-j", "map", "dump", pin]);
                let refused = REFUSED_DUMPS
                    .iter()
                    .find(|(o, m, _)| *o == name && map.ends_with(m));
                if let Some((_, m, why)) = refused {
                    assert_ne!(dump.code, 0, "{name}: `map dump` of {pin}");
                    let line = dump.stderr.trim_end();
                    assert!(
                        line.lines().count() == 1 && line.contains(m) && line.contains(why),
                        "{name}: {line}"
                    );
                    assert_eq!(
                        dump.json()["error"]["message"].as_str(),
                        line.strip_prefix("xdpctl: "),
                        "{name}: the same refusal in JSON"
                    );
                } else {
                    let dump = dump.ok();
                    dump.json();
                }
            }
            xdpctl(fs, ["unload", "t"]).ok();
        }
    }
    assert_eq!(
        fs.snapshot(),
        before,
        "{name}: the bpffs is not as before after the {}",
        match expect {
            Loads => "load and unload",
            Refused(_) => "refused load",
        }
    );
}

#[test]
fn xdp_tools_objects_load_or_are_refused_in_one_line() {
    require_privileges!();
    let Some(dir) = xdp_tools_dir() else {
        assert!(
            !corpus_required(),
            "xdp-tools' objects are missing: run scripts/deps.sh"
        );
        eprintln!("skipping: xdp-tools' objects are missing (run scripts/deps.sh)");
        return;
    };
    let mut found: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "o"))
        .collect();
    found.sort();
    let fs = Bpffs::new();
    for (object, expect) in plan(&found, XDP_TOOLS, "xdp-tools") {
        check_object(&fs, &object, expect);
    }
}

#[test]
fn cilium_test_objects_load_or_are_refused_in_one_line() {
    require_privileges!();
    let Some(found) = cilium_objects() else {
        assert!(
            !corpus_required(),
            "cilium/ebpf's objects are missing in target/corpus: run scripts/deps.sh"
        );
        eprintln!("skipping: cilium/ebpf's objects are missing (run scripts/deps.sh)");
        return;
    };
    let fs = Bpffs::new();
    for (object, expect) in plan(&found, CILIUM, "cilium/ebpf") {
        check_object(&fs, &object, expect);
    }
}

/// An xdp-filter object, which pins filter_ports and xdp_stats_map by name.
fn xdpfilt(which: &str) -> Option<String> {
    let path = xdp_tools_dir()?.join(format!("xdpfilt_{which}.o"));
    Some(path.to_str()?.to_owned())
}

macro_rules! require_xdp_tools {
    ($obj:expr) => {
        match $obj {
            Some(o) => o,
            None => {
                assert!(!corpus_required(), "xdp-tools is not installed");
                eprintln!("skipping: xdp-tools is not installed (run scripts/deps.sh)");
                return;
            }
        }
    };
}

/// The snapshot, with the empty directories a killed change may leave in
/// xdpctl's state directory left out (and nothing else in there).
fn settled(fs: &Bpffs, context: &str) -> Vec<String> {
    let snap = fs.snapshot();
    let left: Vec<&String> = snap
        .iter()
        .filter(|e| {
            let path = e.split(' ').nth(1).unwrap_or("");
            path.starts_with("_xdpctl/") && (path.matches('/').count() > 1 || e.starts_with("f "))
        })
        .collect();
    assert!(left.is_empty(), "{context}: left behind: {left:?}");
    snap.into_iter()
        .filter(|e| !e.split(' ').nth(1).unwrap_or("").starts_with("_xdpctl"))
        .collect()
}

fn pin_id(path: &Path) -> Option<u32> {
    pinfs::pin_info(path).ok().map(|p| p.id)
}

#[test]
fn maps_pinned_by_name_are_shared_and_go_with_the_last_load() {
    require_privileges!();
    let deny = require_xdp_tools!(xdpfilt("dny_tcp"));
    let allow = require_xdp_tools!(xdpfilt("alw_tcp"));
    let fs = Bpffs::new();
    let p = fs.path();
    xdpctl(&fs, ["load", &deny, "--pin", "a"]).ok();
    // Under --bpffs (the private mount), not /sys/fs/bpf.
    let shared = pin_id(&p.join("filter_ports")).expect("filter_ports shared under --bpffs");
    assert_eq!(pin_id(&p.join("a/maps/filter_ports")), Some(shared));
    assert!(pin_id(&p.join("xdp_stats_map")).is_some());
    // A second load shares the same map.
    let b = xdpctl(&fs, ["load", &allow, "--pin", "b"]).ok();
    assert!(
        b.stderr
            .contains("reused the map filter_ports pinned by name at"),
        "{}",
        b.stderr
    );
    assert_eq!(pin_id(&p.join("b/maps/filter_ports")), Some(shared));
    // doctor knows the shared pins for what they are.
    let doctor = xdpctl(&fs, ["-j", "doctor"]).ok().json();
    let finding = doctor
        .as_array()
        .or_else(|| doctor["findings"].as_array())
        .and_then(|f| {
            f.iter()
                .find(|x| {
                    x["path"]
                        .as_str()
                        .is_some_and(|p| p.ends_with("/filter_ports") || p == "filter_ports")
                })
                .cloned()
        })
        .unwrap_or_else(|| panic!("doctor does not list filter_ports: {doctor}"));
    assert_eq!(finding["status"], "ok", "{finding}");
    // An upgrade keeps sharing them.
    xdpctl(&fs, ["load", &deny, "--pin", "b", "--replace"]).ok();
    assert_eq!(pin_id(&p.join("b/maps/filter_ports")), Some(shared));
    assert_eq!(pin_id(&p.join("filter_ports")), Some(shared));
    // Unloading one keeps what the other uses.
    let a = xdpctl(&fs, ["unload", "a"]).ok();
    assert!(
        a.stderr.contains("kept the map filter_ports"),
        "{}",
        a.stderr
    );
    assert_eq!(pin_id(&p.join("filter_ports")), Some(shared));
    // The last one takes it away.
    let b = xdpctl(&fs, ["-j", "unload", "b"]).ok();
    let removed: Vec<String> = b.json()["removed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["pinned"].as_str().unwrap().to_owned())
        .collect();
    assert!(
        removed
            .iter()
            .any(|r| r.ends_with("/filter_ports") && !r.contains("/b/")),
        "{removed:?}"
    );
    assert_eq!(fs.snapshot(), Vec::<String>::new());
}

#[test]
fn a_pin_by_name_of_another_layout_is_refused_and_another_tools_pin_stays() {
    require_privileges!();
    let deny = require_xdp_tools!(xdpfilt("dny_tcp"));
    let fs = Bpffs::new();
    let p = fs.path();
    let foreign = p.join("filter_ports");
    let foreign_s = foreign.to_str().unwrap();
    sh(
        "bpftool",
        &[
            "map",
            "create",
            foreign_s,
            "type",
            "array",
            "key",
            "4",
            "value",
            "4",
            "entries",
            "1",
            "name",
            "filter_ports",
        ],
    );
    let before = fs.snapshot();
    xdpctl(&fs, ["load", &deny, "--pin", "a"]).fails_with(&[
        &deny,
        "map filter_ports is pinned by name (LIBBPF_PIN_BY_NAME) at",
        "type is array, the object wants percpu_array",
    ]);
    assert_eq!(fs.snapshot(), before, "a refused load changed the bpffs");
    std::fs::remove_file(&foreign).unwrap();

    // A compatible pin another tool made (here: a copy of ours) is reused,
    // and stays after the unload.
    xdpctl(&fs, ["load", &deny, "--pin", "a"]).ok();
    let id = pin_id(&foreign).unwrap();
    sh(
        "bpftool",
        &[
            "map",
            "pin",
            "id",
            &id.to_string(),
            p.join("keep").to_str().unwrap(),
        ],
    );
    xdpctl(&fs, ["unload", "a"]).ok();
    assert_eq!(pin_id(&foreign), None);
    sh("bpftool", &["map", "pin", "id", &id.to_string(), foreign_s]);
    std::fs::remove_file(p.join("keep")).unwrap();
    xdpctl(&fs, ["load", &deny, "--pin", "a"]).ok();
    assert_eq!(pin_id(&p.join("a/maps/filter_ports")), Some(id));
    let out = xdpctl(&fs, ["unload", "a"]).ok();
    assert!(
        out.stderr.contains("another tool pinned it"),
        "{}",
        out.stderr
    );
    assert_eq!(pin_id(&foreign), Some(id), "another tool's pin was removed");
}

#[test]
fn a_load_sharing_maps_killed_anywhere_leaves_nothing_or_the_load() {
    require_privileges!();
    let deny = require_xdp_tools!(xdpfilt("dny_tcp"));
    let fs = Bpffs::new();
    let empty = fs.snapshot();
    let mut points = 0;
    let (mut befores, mut afters) = (0, 0);
    for n in 1.. {
        let mut cmd = command(&fs);
        cmd.env("XDPCTL_FAILPOINT", n.to_string())
            .args(["load", &deny, "--pin", "a"]);
        let out = cmd.output().unwrap();
        let killed = out.status.signal() == Some(9);
        assert!(
            killed || out.status.success(),
            "N={n}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        // The next ordinary command settles it.
        xdpctl(&fs, ["prog", "show"]).ok();
        let state = settled(&fs, &format!("load killed at {n}"));
        points += 1;
        if state == empty {
            befores += 1;
        } else {
            let a = pin_id(&fs.path().join("a/maps/filter_ports"));
            assert!(a.is_some(), "N={n}: neither before nor after: {state:#?}");
            assert_eq!(pin_id(&fs.path().join("filter_ports")), a, "N={n}");
            assert_eq!(
                pin_id(&fs.path().join("xdp_stats_map")),
                pin_id(&fs.path().join("a/maps/xdp_stats_map")),
                "N={n}"
            );
            assert!(
                !state.iter().any(|s| s.contains("_xdpctl")),
                "N={n}: {state:#?}"
            );
            afters += 1;
            // Unload, killed anywhere, ends with the load whole or nothing.
            for m in 1.. {
                let mut cmd = command(&fs);
                cmd.env("XDPCTL_FAILPOINT", m.to_string())
                    .args(["unload", "a"]);
                let out = cmd.output().unwrap();
                let killed = out.status.signal() == Some(9);
                xdpctl(&fs, ["prog", "show"]).ok();
                let now = settled(&fs, &format!("load killed at {n}, unload at {m}"));
                if now == empty {
                    break;
                }
                assert_eq!(now, state, "N={n}, unload killed at {m}");
                assert!(killed, "N={n}: unload did not unload");
            }
        }
        if !killed {
            break;
        }
    }
    println!("crash points: {points}, before: {befores}, after: {afters}");
    assert!(points > 5 && afters >= 1 && befores >= 1);
}

#[test]
fn a_load_failing_at_any_bpf_call_leaves_no_shared_pin() {
    require_privileges!();
    let deny = require_xdp_tools!(xdpfilt("dny_tcp"));
    let fs = Bpffs::new();
    let empty = fs.snapshot();
    let log = tempfile::NamedTempFile::new().unwrap();
    let (mut failed, mut n) = (0, 0);
    loop {
        n += 1;
        let mut cmd = std::process::Command::new("strace");
        cmd.args(["-f", "-qq", "-o"])
            .arg(log.path())
            .args(["-e", "trace=bpf", "-e"])
            .arg(format!("inject=bpf:error=EPERM:when={n}"))
            .arg(xdpctl_bin())
            .args(["load", &deny, "--pin", "a"])
            .env("XDPCTL_BPFFS", fs.path());
        let out = run(cmd);
        let injected = std::fs::read_to_string(log.path())
            .unwrap()
            .contains("INJECTED");
        if out.code == 0 {
            xdpctl(&fs, ["unload", "a"]).ok();
        } else {
            assert_eq!(out.code, 1, "bpf call {n} failed: {}", out.stderr);
            if fs.path().join("a").exists() {
                // Failed after the commit (printing what it pinned): the
                // load is whole, and said so.
                assert!(out.stderr.contains("xdpctl: loaded "), "{}", out.stderr);
                xdpctl(&fs, ["unload", "a"]).ok();
            } else {
                failed += 1;
            }
        }
        assert_eq!(
            settled(&fs, &format!("bpf call {n} failed")),
            empty,
            "bpf call {n} failed: {}",
            out.stderr
        );
        if !injected {
            break;
        }
    }
    println!("bpf calls: {}, loads that failed: {failed}", n - 1);
    assert!(
        failed >= 5,
        "only {failed} of {n} injected failures failed the load"
    );
}

#[test]
fn shared_maps_that_would_land_on_another_bpffs_are_refused() {
    require_privileges!();
    let deny = require_xdp_tools!(xdpfilt("dny_tcp"));
    let fs = Bpffs::new();
    let other = Bpffs::new();
    let before = (fs.snapshot(), other.snapshot());
    // --bpffs is the other mount: the load directory is not on it.
    let dir = fs.path().join("a");
    xdpctl(
        &fs,
        [
            "--bpffs",
            other.path().to_str().unwrap(),
            "load",
            &deny,
            "--pin",
            dir.to_str().unwrap(),
        ],
    )
    .fails_with(&[
        &deny,
        "pins maps by name (LIBBPF_PIN_BY_NAME)",
        "is on another bpffs",
    ]);
    assert_eq!((fs.snapshot(), other.snapshot()), before);
}
