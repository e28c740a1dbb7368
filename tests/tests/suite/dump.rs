//! How maps made by other tools read: global data by variable, unions by
//! every member, per-CPU values CPU by CPU unless they are counters, and
//! map types that are not keys and values described or refused. Where
//! bpftool decodes the same map from its BTF, xdpctl's typed JSON is
//! compared with bpftool's `formatted` output value by value.

use std::{
    fs,
    net::Ipv6Addr,
    path::Path,
    process::{Child, Command},
    time::Duration,
};

use serde_json::{Map, Value, json};
use xdpctl_tests::{Bpffs, Run, fixture, require_privileges, run, sh, xdpctl, xdpctl_bin};

/// xdp-tools' objects, as Debian installs them.
const XDP_TOOLS: &str = "/usr/lib/x86_64-linux-gnu/bpf";

fn num_cpus() -> usize {
    let text = fs::read_to_string("/sys/devices/system/cpu/possible").unwrap();
    let last = text.trim().rsplit(['-', ',']).next().unwrap();
    last.parse::<usize>().unwrap() + 1
}

/// A private mount namespace, held by a sleeping process and gone with it:
/// xdp-filter's objects pin maps by name under /sys/fs/bpf, which must not
/// be the host's.
struct MountNs {
    holder: Child,
}

impl MountNs {
    fn new() -> Self {
        let holder = Command::new("unshare")
            .args(["--mount", "--propagation", "private", "sleep", "600"])
            .spawn()
            .expect("running unshare");
        let ns = MountNs { holder };
        let mine = fs::read_link("/proc/self/ns/mnt").unwrap();
        for _ in 0..500 {
            let theirs = fs::read_link(format!("/proc/{}/ns/mnt", ns.holder.id()));
            if theirs.is_ok_and(|t| t != mine) {
                let r = ns.run("mount", &["-t", "bpf", "bpf", "/sys/fs/bpf"]);
                assert_eq!(r.code, 0, "mounting a bpffs in the namespace: {}", r.stderr);
                return ns;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        panic!("unshare did not enter a mount namespace");
    }

    fn run(&self, program: impl AsRef<Path>, args: &[&str]) -> Run {
        let mut cmd = Command::new("nsenter");
        cmd.args(["-t", &self.holder.id().to_string(), "-m", "--"])
            .arg(program.as_ref())
            .args(args)
            .env("XDPCTL_BPFFS", "/sys/fs/bpf");
        run(cmd)
    }

    fn xdpctl(&self, args: &[&str]) -> Run {
        self.run(xdpctl_bin(), args)
    }

    #[track_caller]
    fn bpftool(&self, args: &[&str]) -> String {
        let r = self.run("bpftool", args);
        assert_eq!(r.code, 0, "bpftool {args:?}: {}", r.stderr);
        r.stdout
    }
}

impl Drop for MountNs {
    fn drop(&mut self) {
        // The namespace, its bpffs and every pin in it go with the holder.
        let _ = self.holder.kill();
        let _ = self.holder.wait();
    }
}

/// bpftool's JSON with its anonymous members (`"": {...}`, repeated in one
/// object, which a JSON parser would collapse to the last) merged into
/// their parent, as xdpctl shows them, and its hex bitfields as numbers.
fn bpftool_json(text: &str) -> Value {
    let mut renamed = String::with_capacity(text.len());
    let mut rest = text;
    let mut n = 0;
    // NB: `"":` can only be a key: a string value is followed by , } or ].
    while let Some(i) = rest.find("\"\":") {
        renamed.push_str(&rest[..i]);
        renamed.push_str(&format!("\"\\u0000{n}\":"));
        n += 1;
        rest = &rest[i + 3..];
    }
    renamed.push_str(rest);
    let v: Value = serde_json::from_str(&renamed)
        .unwrap_or_else(|e| panic!("bpftool printed invalid JSON ({e}):\n{text}"));
    merge_anonymous(v)
}

fn merge_anonymous(v: Value) -> Value {
    match v {
        Value::Object(o) => {
            let mut out = Map::new();
            for (k, v) in o {
                match merge_anonymous(v) {
                    Value::Object(inner) if k.starts_with('\0') => out.extend(inner),
                    v => {
                        out.insert(k, v);
                    }
                }
            }
            Value::Object(out)
        }
        Value::Array(a) => Value::Array(a.into_iter().map(merge_anonymous).collect()),
        // bpftool prints bitfields in hex, xdpctl as the integers other
        // fields are.
        Value::String(s) if s.starts_with("0x") && u64::from_str_radix(&s[2..], 16).is_ok() => {
            json!(u64::from_str_radix(&s[2..], 16).unwrap())
        }
        v => v,
    }
}

/// bpftool's value of a global-data map, `{".rodata": [{"a": 1}, {"b":
/// 2}]}`, as one object of variables.
fn datasec_vars(v: &Value) -> Option<Value> {
    let (name, vars) = v.as_object()?.iter().next()?;
    if !name.starts_with('.') {
        return None;
    }
    let mut out = Map::new();
    for var in vars.as_array()? {
        out.extend(var.as_object()?.clone());
    }
    Some(Value::Object(out))
}

/// A key as text both tools' forms map to: an IPv6 address, which
/// bpftool shows as `struct in6_addr`, as its bytes; else the JSON.
fn key_text(k: &Value) -> String {
    if let Some(a) = k.as_str().and_then(|s| s.parse::<Ipv6Addr>().ok()) {
        return json!(a.octets()).to_string();
    }
    match k.pointer("/in6_u/u6_addr8") {
        Some(bytes) => bytes.to_string(),
        None => k.to_string(),
    }
}

/// Compares `xdpctl -j map dump --per-cpu` with `bpftool -j map dump`
/// entry by entry, value by value (every CPU's for per-CPU maps); panics
/// with both on a difference. Returns how many entries were compared.
#[track_caller]
fn compare(map: &str, ours: &Value, theirs: &Value) -> usize {
    let (ours, theirs) = (ours.as_array().unwrap(), theirs.as_array().unwrap());
    let by_key: std::collections::HashMap<String, &Value> =
        ours.iter().map(|o| (key_text(&o["key"]), o)).collect();
    assert_eq!(
        ours.len(),
        theirs.len(),
        "{map}: entries\nxdpctl {ours:?}\nbpftool {theirs:?}"
    );
    for t in theirs {
        let f = t
            .get("formatted")
            .unwrap_or_else(|| panic!("{map}: bpftool has no BTF to format with: {t}"));
        let o = match f.get("key") {
            Some(k) => by_key
                .get(&key_text(k))
                .unwrap_or_else(|| panic!("{map}: xdpctl lacks key {k}")),
            // A global-data map: no key type, one entry.
            None => &ours[0],
        };
        match f.get("values") {
            Some(Value::Array(per_cpu)) => {
                let mine = o["values"].as_array().unwrap();
                assert_eq!(mine.len(), per_cpu.len(), "{map}: CPUs\n{o}\n{t}");
                for (cpu, v) in per_cpu.iter().enumerate() {
                    assert_eq!(
                        mine[cpu], v["value"],
                        "{map}: CPU {cpu} of {}\n{o}\n{t}",
                        o["key"]
                    );
                }
            }
            _ => {
                let want = datasec_vars(&f["value"]).unwrap_or_else(|| f["value"].clone());
                assert_eq!(o["value"], want, "{map}: value of {}", o["key"]);
            }
        }
    }
    theirs.len()
}

#[test]
fn xdp_filter_maps_read_as_bpftool_reads_them() {
    require_privileges!();
    let ns = MountNs::new();
    let cpus = num_cpus();
    let obj = format!("{XDP_TOOLS}/xdpfilt_alw_all.o");
    ns.xdpctl(&["load", &obj, "--pin", "f"]).ok();
    let m = |name: &str| format!("/sys/fs/bpf/f/maps/{name}");

    // A mode flag (xdp-filter's "deny the source") on every CPU.
    ns.bpftool(&[
        "map",
        "update",
        "pinned",
        &m("filter_ipv4"),
        "key",
        "1",
        "2",
        "3",
        "4",
        "value",
        "2",
        "0",
        "0",
        "0",
        "0",
        "0",
        "0",
        "0",
    ]);
    ns.xdpctl(&["map", "update", &m("filter_ipv6"), "2001:db8::1", "1"])
        .ok();
    ns.xdpctl(&[
        "map",
        "update",
        &m("filter_ethernet"),
        r#"{"addr":[2,0,0,0,0,1]}"#,
        "3",
    ])
    .ok();
    // Counters that differ by CPU, written through an anonymous union's
    // member names.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("stats.json");
    let values: Vec<Value> = (0..cpus)
        .map(|c| json!({"packets": 3 + c, "bytes": 180 + 60 * c}))
        .collect();
    fs::write(&file, json!({"key": 1, "values": values}).to_string()).unwrap();
    ns.xdpctl(&[
        "map",
        "update",
        &m("xdp_stats_map"),
        "--from-file",
        file.to_str().unwrap(),
    ])
    .ok();

    let mut compared = 0;
    for name in [
        "xdp_stats_map",
        "filter_ipv4",
        "filter_ipv6",
        "filter_ethernet",
    ] {
        let ours = ns
            .xdpctl(&["-j", "map", "dump", &m(name), "--per-cpu"])
            .ok()
            .json();
        let theirs = bpftool_json(&ns.bpftool(&["-j", "map", "dump", "pinned", &m(name)]));
        compared += compare(name, &ours, &theirs);
    }
    assert_eq!(compared, 5 + 1 + 1 + 1);
    // Every xdp-filter object, every map it has (they share the maps
    // pinned by name, so the entries above are in them too).
    let mut objects: Vec<_> = fs::read_dir(XDP_TOOLS)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.starts_with("xdpfilt_") && n.ends_with(".o"))
        .collect();
    objects.sort();
    assert!(objects.len() >= 5, "{objects:?}");
    let (mut maps, mut ports_done) = (0, false);
    for (i, object) in objects.iter().enumerate() {
        let dir = format!("o{i}");
        ns.xdpctl(&["load", &format!("{XDP_TOOLS}/{object}"), "--pin", &dir])
            .ok();
        let listed = ns.run("ls", &[&format!("/sys/fs/bpf/{dir}/maps")]).stdout;
        for name in listed.split_whitespace() {
            // 65536 entries a CPU: compared once.
            if name == "filter_ports" && std::mem::replace(&mut ports_done, true) {
                continue;
            }
            let path = format!("/sys/fs/bpf/{dir}/maps/{name}");
            let ours = ns
                .xdpctl(&["-j", "map", "dump", &path, "--per-cpu"])
                .ok()
                .json();
            let theirs = bpftool_json(&ns.bpftool(&["-j", "map", "dump", "pinned", &path]));
            compare(&format!("{object}: {name}"), &ours, &theirs);
            maps += 1;
        }
    }
    assert!(maps >= objects.len() && ports_done, "{maps} maps compared");

    // The union reads by every member name.
    let stats = ns
        .xdpctl(&["-j", "map", "lookup", &m("xdp_stats_map"), "1"])
        .ok()
        .json();
    let packets: usize = (0..cpus).map(|c| 3 + c).sum();
    let bytes: usize = (0..cpus).map(|c| 180 + 60 * c).sum();
    // Counters by name: summed, and said to be.
    assert_eq!(
        stats["value"],
        json!({"packets": packets, "rx_packets": packets, "bytes": bytes, "rx_bytes": bytes}),
        "{stats}"
    );
    assert_eq!(stats["summed"], true, "{stats}");
    // A bare __u64 may be a flag: shown CPU by CPU, never added up.
    let flag = ns
        .xdpctl(&["-j", "map", "dump", &m("filter_ipv4")])
        .ok()
        .json();
    assert_eq!(flag[0]["values"], json!(vec![2; cpus]), "{flag}");
    assert!(flag[0].get("value").is_none(), "{flag}");
    let text = ns.xdpctl(&["map", "dump", &m("filter_ipv4")]).ok().stdout;
    let two = format!("[{}]", vec!["2"; cpus].join(", "));
    assert!(
        text.contains("VALUE PER CPU") && text.contains(&two),
        "{text}"
    );
    // --sum adds it up when asked, and says so in the header.
    let text = ns
        .xdpctl(&["map", "dump", &m("filter_ipv4"), "--sum"])
        .ok()
        .stdout;
    assert!(
        text.contains(&format!("VALUE (sum of {cpus} CPUs)"))
            && text.contains(&(2 * cpus).to_string()),
        "{text}"
    );
}

/// Writes an entry of the CIDR index `l1` (the firewall's `cidr4_l1`) with
/// bpftool, as another tool would, and checks `doctor --check` finds it.
#[track_caller]
fn found_behind_our_back(ns: &MountNs, l1: &str) {
    let args = "map update pinned L1 key 1 0 0 0 value 9 0 0 0";
    let args: Vec<&str> = args
        .split(' ')
        .map(|a| if a == "L1" { l1 } else { a })
        .collect();
    ns.bpftool(&args);
    let check = ns.xdpctl(&["doctor", "--check"]);
    assert_ne!(check.code, 0, "{check:?}");
}

/// The firewall's indexes that `doctor --check` reads whole are mmapable
/// arrays, read through the mapping (kernel/mapview.rs): what xdpctl reads
/// so is what bpftool reads with `bpf(2)`, entry by entry, rules and all.
#[test]
fn mmapable_index_maps_read_as_bpftool_reads_them() {
    require_privileges!();
    let ns = MountNs::new();
    ns.xdpctl(&["load", "--pin", "fw"]).ok();
    let m = |name: &str| format!("/sys/fs/bpf/fw/maps/{name}");
    ns.xdpctl(&["map", "update", &m("blocklist"), "203.0.113.5", "1"])
        .ok();
    ns.xdpctl(&["map", "update", &m("cidr4"), "198.51.100.0/24", "1"])
        .ok();
    ns.xdpctl(&["map", "update", &m("cidr4"), "10.0.0.0/8", "1"])
        .ok();
    ns.xdpctl(&["map", "update", &m("cidr6"), "2001:db8::/32", "1"])
        .ok();
    for (name, entries) in [
        ("cidr4_l1", 65536),
        ("bloom", 16384),
        ("cidr6_filter", 16384),
    ] {
        let show = ns.xdpctl(&["-j", "map", "show", &m(name)]).ok().json();
        assert_eq!(
            show[0]["flags"].as_u64().map(|f| f & (1 << 10)),
            Some(1 << 10),
            "{name} is not mmapable: {show}"
        );
        let ours = ns.xdpctl(&["-j", "map", "dump", &m(name)]).ok().json();
        let theirs = bpftool_json(&ns.bpftool(&["-j", "map", "dump", "pinned", &m(name)]));
        assert_eq!(compare(name, &ours, &theirs), entries, "{name}");
        // The rules are in it: not a map of zeroes read twice.
        let set = ours
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["value"] != json!(0))
            .count();
        assert!(set > 0, "{name}: every entry is 0");
    }
    // A rule written behind xdpctl's back is found through the mapping.
    found_behind_our_back(&ns, &m("cidr4_l1"));
}

/// A firewall loaded before its indexes were mmapable (the same object
/// without the flag) is still the firewall: its rules are indexed,
/// `doctor --check` reads its indexes with bpf(2) and finds a rule written
/// behind xdpctl's back, `doctor` repairs it, and `load --replace` with
/// the built-in keeps its maps.
#[test]
fn a_firewall_whose_indexes_are_not_mmapable_is_read_with_bpf() {
    require_privileges!();
    let ns = MountNs::new();
    let old = fixture("xdpfw_nommap");
    ns.xdpctl(&["load", old.to_str().unwrap(), "--pin", "fw"])
        .ok();
    let m = |name: &str| format!("/sys/fs/bpf/fw/maps/{name}");
    let mmapable = |name: &str| {
        let show = ns.xdpctl(&["-j", "map", "show", &m(name)]).ok().json();
        show[0]["flags"].as_u64().expect("flags") & (1 << 10) != 0
    };
    assert!(!mmapable("cidr4_l1"));
    ns.xdpctl(&["map", "update", &m("cidr4"), "198.51.100.0/24", "1"])
        .ok();
    let ours = ns
        .xdpctl(&["-j", "map", "dump", &m("cidr4_l1")])
        .ok()
        .json();
    let theirs = bpftool_json(&ns.bpftool(&["-j", "map", "dump", "pinned", &m("cidr4_l1")]));
    assert_eq!(compare("cidr4_l1", &ours, &theirs), 65536);
    ns.xdpctl(&["doctor", "--check"]).ok();
    found_behind_our_back(&ns, &m("cidr4_l1"));
    ns.xdpctl(&["doctor"]).ok();
    ns.xdpctl(&["doctor", "--check"]).ok();
    ns.xdpctl(&["load", "--pin", "fw", "--replace"]).ok();
    assert!(
        !mmapable("cidr4_l1"),
        "load --replace keeps the load's maps"
    );
    ns.xdpctl(&["doctor", "--check"]).ok();
}

#[test]
fn global_data_is_typed_for_xdpctl_and_for_bpftool() {
    require_privileges!();
    let fs_ = Bpffs::new();
    let before = fs_.snapshot();
    xdpctl(
        &fs_,
        ["load", fixture("globals").to_str().unwrap(), "--pin", "g"],
    )
    .ok();
    let pin = |name: &str| fs_.path().join("g/maps").join(name);

    let rodata = xdpctl(&fs_, ["-j", "map", "dump", "g/maps/_rodata"])
        .ok()
        .json();
    let rodata_value = json!({
        "refcnt": 1,
        "conf": {"port": 53, "name": "dns", "packets": 9, "rx_packets": 9},
        "mode": 2,
        "opts": {"verbose": 1, "level": 5, "queue": 300, "rest": 4},
    });
    assert_eq!(rodata[0]["value"], rodata_value, "{rodata}");
    let data = xdpctl(&fs_, ["-j", "map", "dump", "g/maps/_data"])
        .ok()
        .json();
    assert_eq!(
        data[0]["value"],
        json!({"hits": 7, "ports": [80, 443, 8080]})
    );
    // A variable is written by name; the others keep their values.
    xdpctl(&fs_, ["map", "update", "g/maps/_bss", "0", r#"{"seen":5}"#]).ok();
    xdpctl(
        &fs_,
        ["map", "update", "g/maps/_data", "0", r#"{"hits":100}"#],
    )
    .ok();
    let data = xdpctl(&fs_, ["-j", "map", "dump", "g/maps/_data"])
        .ok()
        .json();
    assert_eq!(
        data[0]["value"],
        json!({"hits": 100, "ports": [80, 443, 8080]})
    );

    let mut compared = 0;
    for name in ["_rodata", "_data", "_bss"] {
        let path = pin(name);
        let path = path.to_str().unwrap();
        let shown: Value =
            serde_json::from_str(&sh("bpftool", &["-j", "map", "show", "pinned", path])).unwrap();
        assert_ne!(
            shown["btf_id"].as_u64().unwrap_or(0),
            0,
            "{name} has BTF: {shown}"
        );
        let ours = xdpctl(&fs_, ["-j", "map", "dump", path]).ok().json();
        let theirs = bpftool_json(&sh("bpftool", &["-j", "map", "dump", "pinned", path]));
        compared += compare(name, &ours, &theirs);
        if name == "_rodata" {
            // Still frozen, as the loader leaves a constant section.
            assert_eq!(shown["frozen"], 1, "{shown}");
        }
    }
    assert_eq!(compared, 3);
    // libbpf makes the same maps (bpftool prog loadall), and they read
    // the same: the decoding is the DATASEC's, not xdpctl's own making.
    let (lb, lb_maps) = (fs_.path().join("lb"), fs_.path().join("lbmaps"));
    let obj = fixture("globals");
    let args = [&obj, &lb, Path::new("pinmaps"), &lb_maps].map(|p| p.to_str().unwrap());
    sh(
        "bpftool",
        &["prog", "loadall", args[0], args[1], args[2], args[3]],
    );
    let pinned: Vec<String> = fs::read_dir(&lb_maps)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    for (suffix, want) in [
        ("_rodata", rodata_value.clone()),
        ("_data", json!({"hits": 7, "ports": [80, 443, 8080]})),
    ] {
        let name = pinned
            .iter()
            .find(|n| n.ends_with(suffix))
            .unwrap_or_else(|| panic!("bpftool pinned no {suffix} map: {pinned:?}"));
        let path = lb_maps.join(name);
        let by_libbpf = xdpctl(&fs_, ["-j", "map", "dump", path.to_str().unwrap()])
            .ok()
            .json();
        assert_eq!(by_libbpf[0]["value"], want, "{name}, made by libbpf");
    }
    // Out of the snapshot below: not xdpctl's.
    sh("rm", &["-r", args[1], args[3]]);
    // The scratch pins that handed the typed maps to the loader are gone.
    let after = fs_.snapshot();
    let made: Vec<&String> = after.iter().filter(|e| !before.contains(e)).collect();
    assert!(
        made.iter()
            .all(|e| e.contains(" g") || e.starts_with("d g") || e.starts_with("f g/")),
        "only the load directory is new: {made:?}"
    );
}

#[test]
fn map_types_that_are_not_keys_and_values_are_described_or_refused() {
    require_privileges!();
    let fs_ = Bpffs::new();
    xdpctl(
        &fs_,
        ["load", fixture("xdp_pass").to_str().unwrap(), "--pin", "p"],
    )
    .ok();
    let at = |name: &str| fs_.path().join(name).to_str().unwrap().to_owned();
    let create = |name: &str, spec: &[&str]| {
        let mut args = vec!["map", "create"];
        let path = at(name);
        args.push(&path);
        args.extend(spec);
        sh("bpftool", &args);
    };
    create(
        "xsk",
        &[
            "type", "xskmap", "key", "4", "value", "4", "entries", "4", "name", "xsks_map",
        ],
    );
    create(
        "perf",
        &[
            "type",
            "perf_event_array",
            "key",
            "4",
            "value",
            "4",
            "entries",
            "2",
            "name",
            "events",
        ],
    );
    create(
        "bloom",
        &[
            "type",
            "bloom_filter",
            "key",
            "0",
            "value",
            "4",
            "entries",
            "16",
            "name",
            "bl",
        ],
    );
    create(
        "jmp",
        &[
            "type",
            "prog_array",
            "key",
            "4",
            "value",
            "4",
            "entries",
            "4",
            "name",
            "jmp",
        ],
    );
    create(
        "inner",
        &[
            "type", "array", "key", "4", "value", "4", "entries", "1", "name", "inner",
        ],
    );
    let inner = at("inner");
    create(
        "outer",
        &[
            "type",
            "array_of_maps",
            "key",
            "4",
            "value",
            "4",
            "entries",
            "2",
            "name",
            "outer",
            "inner_map",
            "pinned",
            &inner,
        ],
    );
    create(
        "tx",
        &[
            "type", "devmap", "key", "4", "value", "8", "entries", "4", "name", "tx_ports",
        ],
    );
    create(
        "q",
        &[
            "type", "queue", "key", "0", "value", "4", "entries", "4", "name", "q",
        ],
    );
    create(
        "rb",
        &[
            "type", "ringbuf", "key", "0", "value", "0", "entries", "4096", "name", "rb",
        ],
    );
    let prog = at("p/xdp_pass");
    for (map, args) in [
        (
            "jmp",
            vec!["key", "2", "0", "0", "0", "value", "pinned", prog.as_str()],
        ),
        (
            "outer",
            vec!["key", "1", "0", "0", "0", "value", "pinned", inner.as_str()],
        ),
        (
            "tx",
            vec![
                "key", "0", "0", "0", "0", "value", "1", "0", "0", "0", "0", "0", "0", "0",
            ],
        ),
    ] {
        let path = at(map);
        let mut all = vec!["map", "update", "pinned", path.as_str()];
        all.extend(args);
        sh("bpftool", &all);
    }
    for v in ["7", "8"] {
        sh(
            "bpftool",
            &["map", "push", "pinned", &at("q"), "value", v, "0", "0", "0"],
        );
    }
    let snapshot = fs_.snapshot();

    // Refused: one line naming the map, its type and why; valid JSON.
    for (map, needles) in [
        (
            "xsk",
            &[
                "xsks_map",
                "an XSKMAP cannot be read from user space",
                "EOPNOTSUPP",
                "queue ids",
            ][..],
        ),
        (
            "perf",
            &["events", "a perf event array cannot be read", "ENOTSUPP"],
        ),
        (
            "bloom",
            &["a Bloom filter cannot be listed", "map lookup MAP VALUE"],
        ),
    ] {
        let r = xdpctl(&fs_, ["map", "dump", map]).fails_with(needles);
        assert_eq!(r.stderr.trim().lines().count(), 1, "{}", r.stderr);
        assert!(!r.stderr.contains("os error"), "{}", r.stderr);
        xdpctl(&fs_, ["-j", "map", "dump", map]).json();
    }
    xdpctl(&fs_, ["map", "lookup", "xsk", "0"]).fails_with(&["an XSKMAP cannot be read"]);
    // A Bloom filter answers for one value at a time.
    sh(
        "bpftool",
        &[
            "map",
            "push",
            "pinned",
            &at("bloom"),
            "value",
            "1",
            "2",
            "3",
            "4",
        ],
    );
    let maybe = xdpctl(&fs_, ["-j", "map", "lookup", "bloom", "1 2 3 4"])
        .ok()
        .json();
    assert_eq!(maybe["maybe_present"], true, "{maybe}");
    let absent = xdpctl(&fs_, ["map", "lookup", "bloom", "9 9 9 9"]);
    assert_eq!(absent.code, 3, "{absent:?}");

    let pid = xdpctl(&fs_, ["-j", "prog", "show", "p/xdp_pass"])
        .ok()
        .json()[0]["id"]
        .clone();
    let jmp = xdpctl(&fs_, ["-j", "map", "dump", "jmp"]).ok().json();
    assert_eq!(
        jmp,
        json!([{"key": 2, "value": {"prog_id": pid, "prog_name": "xdp_pass", "prog_type": "xdp"}}])
    );
    let outer = xdpctl(&fs_, ["-j", "map", "dump", "outer"]).ok().json();
    assert_eq!(outer[0]["key"], 1);
    assert_eq!(outer[0]["value"]["map_name"], "inner", "{outer}");
    let tx = xdpctl(&fs_, ["-j", "map", "dump", "tx"]).ok().json();
    assert_eq!(
        tx,
        json!([{"key": 0, "value": {"ifindex": 1, "dev": "lo"}}])
    );
    let text = xdpctl(&fs_, ["map", "dump", "jmp"]).ok().stdout;
    assert!(text.contains("xdp_pass"), "{text}");
    let one = xdpctl(&fs_, ["-j", "map", "lookup", "jmp", "2"])
        .ok()
        .json();
    assert_eq!(one, jmp[0]);
    let empty = xdpctl(&fs_, ["map", "lookup", "jmp", "1"]);
    assert_eq!(empty.code, 3, "an empty slot is not found: {empty:?}");
    xdpctl(&fs_, ["map", "lookup", "q", "0"]).fails_with(&["a queue: it has no keys"]);

    // A queue's head is peeked, not taken: twice the same, then bpftool
    // still pops it.
    for _ in 0..2 {
        let q = xdpctl(&fs_, ["-j", "map", "dump", "q"]).ok().json();
        assert_eq!(q["head"], "07 00 00 00", "{q}");
    }
    let popped = sh("bpftool", &["-j", "map", "pop", "pinned", &at("q")]);
    assert!(popped.contains("\"0x07\""), "{popped}");
    let rb = xdpctl(&fs_, ["-j", "map", "dump", "rb"]).ok().json();
    assert_eq!(rb["size"], 4096);
    assert_eq!(rb["pending_bytes"], 0, "{rb}");
    assert_eq!(fs_.snapshot(), snapshot, "reading changed nothing");
}

/// Whether `xdpctl ARGS` died at its `n`-th state change
/// (`XDPCTL_FAILPOINT`, see `tests/crash.rs`).
fn killed_at(fs: &Bpffs, n: u32, args: &[&str]) -> bool {
    use std::os::unix::process::ExitStatusExt;
    let mut cmd = xdpctl_tests::command(fs);
    let out = cmd
        .env("XDPCTL_FAILPOINT", n.to_string())
        .args(args)
        .output()
        .unwrap();
    match out.status.signal() {
        Some(9) => true,
        _ => {
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            false
        }
    }
}

#[test]
fn a_killed_load_of_global_data_leaves_nothing_or_the_whole_load() {
    require_privileges!();
    let obj = fixture("globals");
    let obj = obj.to_str().unwrap();
    for n in 1.. {
        assert!(n < 100, "more than 100 crash points?");
        let fs_ = Bpffs::new();
        let was_killed = killed_at(&fs_, n, &["load", obj, "--pin", "g"]);
        // The next ordinary command settles the bpffs.
        xdpctl(&fs_, ["prog", "show"]).ok();
        let left: Vec<String> = fs_
            .snapshot()
            .into_iter()
            .filter(|e| {
                e.contains("_xdpctl/")
                    && e.split(' ')
                        .nth(1)
                        .is_some_and(|p| p.matches('/').count() > 1)
            })
            .collect();
        assert!(
            left.is_empty(),
            "killed before state change {n}: left behind {left:?}"
        );
        let loaded = fs_.path().join("g").exists();
        if loaded {
            let data = xdpctl(&fs_, ["-j", "map", "dump", "g/maps/_data"])
                .ok()
                .json();
            assert_eq!(
                data[0]["value"]["hits"], 7,
                "killed before state change {n}"
            );
        }
        if !was_killed {
            assert!(loaded);
            // The journal record, the typed maps' scratch pins and their
            // removal, the staged load and its commit.
            assert!(n > 10, "only {n} crash points");
            break;
        }
    }
}
