//! Map verbs with typed keys and values, against real maps.

use std::{fmt::Write as _, fs};

use serde_json::{Value, json};
use xdpctl_tests::{Bpffs, VethPair, fixture, require_privileges, xdpctl};

fn load_typed(fs: &Bpffs) {
    xdpctl(
        fs,
        [
            "load",
            fixture("typed_maps").to_str().unwrap(),
            "--pin",
            "t",
        ],
    )
    .ok();
}

fn dump(fs: &Bpffs, map: &str) -> Value {
    let mut v = xdpctl(fs, ["-j", "map", "dump", map]).ok().json();
    // Order of hash iteration is not part of the contract.
    v.as_array_mut()
        .unwrap()
        .sort_by_key(|e| e["key_hex"].as_str().unwrap().to_owned());
    v
}

#[test]
fn blocklist_update_writes_network_order_and_drops_that_source() {
    require_privileges!();
    let fs = Bpffs::new();
    let pair = VethPair::new();
    xdpctl(&fs, ["load", "--pin", "xdpfw"]).ok();
    xdpctl(&fs, ["map", "update", "blocklist", "203.0.113.5", "1"]).ok();
    // The raw key is the address's bytes in order: network order.
    let raw = xdpctl(&fs, ["map", "lookup", "blocklist", "203 0 113 5", "--raw"]).ok();
    assert_eq!(raw.stdout.trim(), "01");
    let typed = xdpctl(&fs, ["-j", "map", "lookup", "blocklist", "203.0.113.5"])
        .ok()
        .json();
    assert_eq!(typed["key"], "203.0.113.5");
    assert_eq!(typed["key_hex"], "cb 00 71 05");

    xdpctl(
        &fs,
        [
            "attach",
            "xdpfw",
            &pair.dev_b,
            "--mode",
            "generic",
            "--netns",
            pair.b.name(),
        ],
    )
    .ok();
    assert_eq!(pair.ping_b_from_a(2), 2);
    xdpctl(&fs, ["map", "update", "blocklist", &pair.ip_a, "1"]).ok();
    assert_eq!(
        pair.ping_b_from_a(3),
        0,
        "traffic from a blocklisted source must be dropped"
    );
    let stats = xdpctl(&fs, ["-j", "map", "lookup", "stats", "1"])
        .ok()
        .json();
    assert!(stats["value"]["packets"].as_u64().unwrap() >= 3, "{stats}");
    // The firewall's stats and ctl keys are named as `xdpctl stats` names
    // outcomes, and names are taken as keys.
    assert_eq!(stats["key"], "drop_blocklist", "{stats}");
    let by_name = xdpctl(&fs, ["-j", "map", "lookup", "stats", "drop_blocklist"])
        .ok()
        .json();
    assert_eq!(by_name["value"], stats["value"]);
    let dumped = xdpctl(&fs, ["map", "dump", "stats"]).ok().stdout;
    assert!(
        dumped.lines().any(|l| l.starts_with("unparsed ")),
        "{dumped}"
    );
    assert!(
        dumped.lines().any(|l| l.starts_with("15 ")),
        "unnamed slots stay numbers:\n{dumped}"
    );
    let ctl = xdpctl(&fs, ["-j", "map", "dump", "ctl"]).ok().json();
    assert!(
        ctl.as_array()
            .unwrap()
            .iter()
            .any(|e| e["key"] == "capture"),
        "{ctl}"
    );
    xdpctl(&fs, ["map", "delete", "blocklist", &pair.ip_a]).ok();
    assert_eq!(
        pair.ping_b_from_a(2),
        2,
        "deleting the entry lets it through again"
    );
    // Per-source counters saw the pings that passed.
    let pps = xdpctl(&fs, ["-j", "map", "lookup", "pps", &pair.ip_a, "--sum"])
        .ok()
        .json();
    assert!(pps["value"].as_u64().unwrap() >= 4, "{pps}");
}

#[test]
fn typed_round_trips() {
    require_privileges!();
    let fs = Bpffs::new();
    load_typed(&fs);
    let cases = [
        (
            "t/maps/cidr4",
            "203.0.113.0/24",
            "1",
            json!("203.0.113.0/24"),
            json!(1),
        ),
        (
            "t/maps/cidr6",
            "2001:db8::/32",
            "7",
            json!("2001:db8::/32"),
            json!(7),
        ),
        (
            "t/maps/addr6",
            "2001:db8::1",
            "0x10",
            json!("2001:db8::1"),
            json!(16),
        ),
        (
            "t/maps/rules",
            "3",
            r#"{"verdict":"VERDICT_DROP","weight":65535,"offset":-4,"label":"web","ports":[80,443]}"#,
            json!(3),
            json!({"verdict":"VERDICT_DROP","weight":65535,"offset":-4,"label":"web","ports":[80,443]}),
        ),
        ("t/maps/percpu", "8080", "5", json!(8080), json!(5)),
    ];
    for (map, key, value, jkey, jvalue) in cases {
        xdpctl(&fs, ["map", "update", map, key, value]).ok();
        // A per-CPU value is summed when asked, and says so.
        let sum = map == "t/maps/percpu";
        let mut args = vec!["-j", "map", "lookup", map, key];
        if sum {
            args.push("--sum");
        }
        let got = xdpctl(&fs, args).ok().json();
        assert_eq!(got["key"], jkey, "{map}");
        assert_eq!(got["value"], jvalue, "{map}: {got}");
        assert_eq!(got.get("summed"), sum.then_some(&json!(true)), "{got}");
    }
    // Per-CPU: CPU 0 got the value and the others 0, so the sum reads what
    // was written; shown one by one; a bare integer is no counter, so
    // without --sum there is no "value" to mistake for what the map holds.
    let mut one_cpu = vec![json!(0); num_cpus() as usize];
    one_cpu[0] = json!(5);
    for flags in [&["--per-cpu"][..], &[]] {
        let mut args = vec!["-j", "map", "lookup", "t/maps/percpu", "8080"];
        args.extend(flags);
        let per = xdpctl(&fs, args).ok().json();
        assert_eq!(per["values"], Value::Array(one_cpu.clone()));
        assert!(per.get("value").is_none(), "{per}");
    }
    // LPM lookups are by prefix, as the kernel matches them.
    xdpctl(&fs, ["map", "lookup", "t/maps/cidr4", "203.0.113.0/24"]).ok();
    // map show names the types.
    let shown = xdpctl(&fs, ["-j", "map", "show", "t/maps/cidr4"])
        .ok()
        .json();
    assert_eq!(shown[0]["key"], "ipv4 cidr");
    assert_eq!(shown[0]["entries"], 1);
}

/// A struct value given in part sets the fields it names; the others keep
/// their values (a key not there yet: zeros), as global data does.
#[test]
fn a_struct_given_in_part_keeps_the_fields_it_does_not_name() {
    require_privileges!();
    let fs = Bpffs::new();
    xdpctl(&fs, ["load", "--pin", "fw"]).ok();
    xdpctl(
        &fs,
        ["map", "update", "config", "0", r#"{"drop_icmp6_echo":1}"#],
    )
    .ok();
    xdpctl(&fs, ["map", "update", "config", "0", r#"{"drop_icmp":1}"#]).ok();
    let config = xdpctl(&fs, ["-j", "map", "lookup", "config", "0"])
        .ok()
        .json();
    assert_eq!(
        config["value"],
        json!({"drop_icmp": 1, "drop_icmp6_echo": 1}),
        "{config}"
    );
    load_typed(&fs);
    let full =
        json!({"verdict":"VERDICT_DROP","weight":65535,"offset":-4,"label":"web","ports":[80,443]});
    xdpctl(
        &fs,
        ["map", "update", "t/maps/rules", "3", &full.to_string()],
    )
    .ok();
    xdpctl(
        &fs,
        ["map", "update", "t/maps/rules", "3", r#"{"weight":7}"#],
    )
    .ok();
    let mut want = full.clone();
    want["weight"] = json!(7);
    let got = xdpctl(&fs, ["-j", "map", "lookup", "t/maps/rules", "3"])
        .ok()
        .json();
    assert_eq!(got["value"], want, "{got}");
    xdpctl(
        &fs,
        ["map", "update", "t/maps/rules", "4", r#"{"weight":7}"#],
    )
    .ok();
    let got = xdpctl(&fs, ["-j", "map", "lookup", "t/maps/rules", "4"])
        .ok()
        .json();
    assert_eq!(
        (
            &got["value"]["weight"],
            &got["value"]["offset"],
            &got["value"]["label"]
        ),
        (&json!(7), &json!(0), &json!("")),
        "{got}"
    );
}

/// `--from-file` keeps the rules of a single update: a struct given in part
/// keeps the fields it does not name (text and JSON lines), a line may end
/// in a comment, a key given twice is one entry; and a `--raw` dump loads
/// back as it was dumped.
#[test]
fn a_file_writes_what_single_updates_would() {
    require_privileges!();
    let fs = Bpffs::new();
    let dir = tempfile::tempdir().unwrap();
    let file = |name: &str, text: &str| {
        let path = dir.path().join(name);
        fs::write(&path, text).unwrap();
        path.to_str().unwrap().to_owned()
    };
    xdpctl(&fs, ["load", "--pin", "fw"]).ok();
    xdpctl(
        &fs,
        [
            "map",
            "update",
            "config",
            "0",
            r#"{"drop_icmp":1,"drop_icmp6_echo":0}"#,
        ],
    )
    .ok();
    for (name, text) in [
        (
            "part.txt",
            "0 {\"drop_icmp6_echo\":1}   # the echo switch only\n",
        ),
        (
            "part.jsonl",
            "{\"key\":0,\"value\":{\"drop_icmp6_echo\":1}}\n",
        ),
    ] {
        let path = file(name, text);
        xdpctl(&fs, ["map", "update", "config", "--from-file", &path]).ok();
        let config = xdpctl(&fs, ["-j", "map", "lookup", "config", "0"])
            .ok()
            .json();
        assert_eq!(
            config["value"],
            json!({"drop_icmp": 1, "drop_icmp6_echo": 1}),
            "{name}: {config}"
        );
    }
    load_typed(&fs);
    // `tiny` has room for 4: five lines of four keys fit.
    let dup = file(
        "dup.txt",
        "10.0.0.1 1\n10.0.0.2 2\n10.0.0.3 3\n10.0.0.4 4\n10.0.0.1 9 # again\n",
    );
    xdpctl(&fs, ["map", "update", "t/maps/tiny", "--from-file", &dup]).ok();
    let held = dump(&fs, "t/maps/tiny");
    assert_eq!(held.as_array().unwrap().len(), 4, "{held}");
    assert!(
        held.to_string().contains(r#""key":"10.0.0.1","value":9"#),
        "{held}"
    );
    // No room for two more: said with the right numbers.
    xdpctl(&fs, ["map", "delete", "t/maps/tiny", "10.0.0.4"]).ok();
    let two = file("two.txt", "10.0.0.5 5\n10.0.0.6 6\n");
    xdpctl(&fs, ["map", "update", "t/maps/tiny", "--from-file", &two])
        .fails_with(&["has room for 1 more entry", "adds 2 new keys"]);
    // A raw dump loads back byte for byte (its bytes are hex).
    xdpctl(&fs, ["map", "clear", "t/maps/tiny"]).ok();
    xdpctl(&fs, ["map", "update", "t/maps/tiny", "16.32.48.192", "171"]).ok();
    let raw = xdpctl(&fs, ["-j", "map", "dump", "t/maps/tiny", "--raw"]).ok();
    let raw = file("raw.json", &raw.stdout);
    xdpctl(&fs, ["map", "clear", "t/maps/tiny"]).ok();
    xdpctl(
        &fs,
        ["map", "update", "t/maps/tiny", "--from-file", &raw, "--raw"],
    )
    .ok();
    let back = xdpctl(&fs, ["-j", "map", "lookup", "t/maps/tiny", "16.32.48.192"])
        .ok()
        .json();
    assert_eq!(back["value"], 171, "{back}");
}

/// `map lookup` of an LPM trie shows the entry of the key given, not the
/// longest prefix the kernel matched for it (that is a hint).
#[test]
fn an_lpm_lookup_is_of_the_key_itself() {
    require_privileges!();
    let fs = Bpffs::new();
    xdpctl(&fs, ["load", "--pin", "fw"]).ok();
    xdpctl(&fs, ["map", "update", "cidr4", "198.51.100.0/24", "1"]).ok();
    let got = xdpctl(&fs, ["-j", "map", "lookup", "cidr4", "198.51.100.0/24"])
        .ok()
        .json();
    assert_eq!(got["value"], 1, "{got}");
    let miss = xdpctl(&fs, ["-j", "map", "lookup", "cidr4", "198.51.100.0/25"]);
    assert_eq!(miss.code, 3, "{}", miss.stderr);
    assert_eq!(miss.stdout.trim(), "null");
    assert!(
        miss.stderr
            .contains("the longest prefix that holds it is 198.51.100.0/24"),
        "{}",
        miss.stderr
    );
}

/// A per-CPU write means what its sum then reads: the value on CPU 0, 0 on
/// the others (a struct's fields not named keep theirs on every CPU).
#[test]
fn a_per_cpu_write_reads_back_as_its_sum() {
    require_privileges!();
    let fs = Bpffs::new();
    xdpctl(&fs, ["load", "--pin", "fw"]).ok();
    xdpctl(&fs, ["map", "update", "icmp_drops", "0", "5"]).ok();
    let sum = xdpctl(&fs, ["-j", "map", "lookup", "icmp_drops", "0", "--sum"])
        .ok()
        .json();
    assert_eq!(sum["value"], 5, "{sum}");
    let mut one_cpu = vec![json!(0); num_cpus() as usize];
    one_cpu[0] = json!(5);
    let per = xdpctl(&fs, ["-j", "map", "lookup", "icmp_drops", "0"])
        .ok()
        .json();
    assert_eq!(per["values"], Value::Array(one_cpu), "{per}");
    // A flag every CPU must see: --every-cpu.
    xdpctl(
        &fs,
        ["map", "update", "icmp_drops", "0", "2", "--every-cpu"],
    )
    .ok();
    let every = xdpctl(&fs, ["-j", "map", "lookup", "icmp_drops", "0"])
        .ok()
        .json();
    assert_eq!(
        every["values"],
        Value::Array(vec![json!(2); num_cpus() as usize]),
        "{every}"
    );
    // Each CPU's own value, from a file, is written exactly.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("stats.json");
    let values: Vec<Value> = (0..num_cpus())
        .map(|c| json!({"packets": 1 + c, "bytes": 100}))
        .collect();
    fs::write(&file, json!({"key": 1, "values": values}).to_string()).unwrap();
    let file = file.to_str().unwrap();
    xdpctl(&fs, ["map", "update", "stats", "--from-file", file]).ok();
    xdpctl(&fs, ["map", "update", "stats", "1", r#"{"packets":7}"#]).ok();
    let stats = xdpctl(&fs, ["-j", "map", "lookup", "stats", "1"])
        .ok()
        .json();
    assert_eq!(
        stats["value"],
        json!({"packets": 7, "bytes": 100 * num_cpus()}),
        "{stats}"
    );
}

fn num_cpus() -> u64 {
    let text = fs::read_to_string("/sys/devices/system/cpu/possible").unwrap();
    let last = text.trim().rsplit(['-', ',']).next().unwrap();
    last.parse::<u64>().unwrap() + 1
}

#[test]
fn dump_to_file_and_back_reproduces_the_map() {
    require_privileges!();
    let fs = Bpffs::new();
    load_typed(&fs);
    xdpctl(&fs, ["load", "--pin", "fw"]).ok();
    let dir = tempfile::tempdir().unwrap();
    // Text lines, with a comment, into cidr4 and the blocklist.
    let text = dir.path().join("in.txt");
    fs::write(
        &text,
        "# blocked nets\n10.0.0.0/8 1\n192.168.0.0/16 2\n\n203.0.113.7/32 3\n",
    )
    .unwrap();
    let out = xdpctl(
        &fs,
        [
            "-j",
            "map",
            "update",
            "t/maps/cidr4",
            "--from-file",
            text.to_str().unwrap(),
        ],
    )
    .ok();
    assert_eq!(out.json()["written"], 3);
    for (i, ip) in ["198.51.100.1", "198.51.100.2", "2.2.2.2"]
        .iter()
        .enumerate()
    {
        xdpctl(
            &fs,
            ["map", "update", "blocklist", ip, &(i + 1).to_string()],
        )
        .ok();
    }
    xdpctl(&fs, ["map", "update", "t/maps/percpu", "53", "9"]).ok();
    xdpctl(
        &fs,
        [
            "map",
            "update",
            "t/maps/rules",
            "1",
            r#"{"verdict":"VERDICT_PASS","label":"x"}"#,
        ],
    )
    .ok();

    for map in ["t/maps/cidr4", "blocklist", "t/maps/percpu", "t/maps/rules"] {
        let before = dump(&fs, map);
        assert!(!before.as_array().unwrap().is_empty(), "{map}");
        let saved = dir.path().join("saved.json");
        let text = xdpctl(&fs, ["-j", "map", "dump", map]).ok().stdout;
        fs::write(&saved, text).unwrap();
        xdpctl(&fs, ["map", "clear", map]).ok();
        assert_eq!(dump(&fs, map), json!([]), "{map} after clear");
        xdpctl(
            &fs,
            ["map", "update", map, "--from-file", saved.to_str().unwrap()],
        )
        .ok();
        assert_eq!(
            dump(&fs, map),
            before,
            "{map}: dump -> file -> --from-file must reproduce it"
        );
    }
    // JSON lines and stdin.
    let mut cmd = xdpctl_tests::command(&fs);
    cmd.args(["map", "update", "blocklist", "--from-file", "-"])
        .stdin(std::process::Stdio::piped());
    let mut child = cmd
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().unwrap();
        writeln!(stdin, r#"{{"key":"9.9.9.9","value":1}}"#).unwrap();
    }
    assert!(child.wait_with_output().unwrap().status.success());
    xdpctl(&fs, ["map", "lookup", "blocklist", "9.9.9.9"]).ok();
}

#[test]
fn names_resolve_uniquely_or_say_why_not() {
    require_privileges!();
    let fs = Bpffs::new();
    xdpctl(&fs, ["load", "--pin", "a"]).ok();
    xdpctl(&fs, ["map", "update", "blocklist", "1.2.3.4", "1"]).ok();
    xdpctl(&fs, ["map", "lookup", "a/maps/blocklist", "1.2.3.4"]).ok();
    xdpctl(&fs, ["map", "show", "nope"]).fails_with(&["no map named nope", "xdpctl map show"]);
    xdpctl(&fs, ["load", "--pin", "b"]).ok();
    xdpctl(&fs, ["map", "lookup", "blocklist", "1.2.3.4"]).fails_with(&[
        "2 maps are pinned as blocklist",
        "a/maps/blocklist",
        "b/maps/blocklist",
        "(id ",
    ]);
    // A name that is a path under the bpffs root is that path.
    xdpctl(&fs, ["prog", "show", "a"]).fails_with(&["is a directory"]);
}

#[test]
fn bad_input_is_refused_and_changes_nothing() {
    require_privileges!();
    let fs = Bpffs::new();
    xdpctl(&fs, ["load", "--pin", "fw"]).ok();
    load_typed(&fs);
    xdpctl(&fs, ["map", "update", "blocklist", "203.0.113.5", "1"]).ok();
    let dir = tempfile::tempdir().unwrap();
    let bad_file = dir.path().join("bad.txt");
    fs::write(&bad_file, "1.1.1.1 1\n2.2.2.2 1\n3.3.3.300 1\n4.4.4.4 1\n").unwrap();
    let host_bits = dir.path().join("host_bits.txt");
    fs::write(&host_bits, "198.51.100.0/24 1\n198.51.100.7/24 1\n").unwrap();
    let too_many = dir.path().join("many.txt");
    fs::write(
        &too_many,
        (1..=5)
            .map(|i| format!("10.0.0.{i} 1\n"))
            .collect::<String>(),
    )
    .unwrap();
    let snapshot = |fs: &Bpffs| {
        [
            "blocklist",
            "udp_ports",
            "tcp_ports",
            "fw/maps/cidr4",
            "config",
            "t/maps/cidr4",
            "t/maps/cidr6",
            "t/maps/rules",
            "t/maps/tiny",
        ]
        .iter()
        .map(|m| dump(fs, m))
        .collect::<Vec<_>>()
    };
    let before = snapshot(&fs);
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (
            vec!["blocklist", "203.0.113.5", "256"],
            "256 is out of range for a u8 (0 to 255)",
        ),
        (
            vec!["blocklist", "203.0.113", "1"],
            "'203.0.113' is not an IPv4 address",
        ),
        (
            vec!["blocklist", "2001:db8::1", "1"],
            "is not an IPv4 address",
        ),
        (
            vec!["udp_ports", "70000", "1"],
            "70000 is not a port (a number up to 65535)",
        ),
        // Too big is out of range, even past u64 (serde's float 1e+20).
        (
            vec!["t/maps/rules", "1", r#"{"offset":100000000000000000000}"#],
            "field offset: 100000000000000000000 is out of range for an s32",
        ),
        // The rules apply keeps, kept by map update too.
        (
            vec!["fw/maps/cidr4", "198.51.100.7/24", "1"],
            "198.51.100.7/24 has host bits set; use 198.51.100.0/24",
        ),
        (
            vec!["t/maps/cidr6", "2001:db8::1/32", "1"],
            "2001:db8::1/32 has host bits set; use 2001:db8::/32",
        ),
        (
            vec!["fw/maps/cidr4", "--from-file", host_bits.to_str().unwrap()],
            "host_bits.txt:2: key: 198.51.100.7/24 has host bits set; use 198.51.100.0/24",
        ),
        (
            vec!["udp_ports", "0", "1"],
            "port 0 is not a port; give 1 to 65535",
        ),
        (
            vec!["blocklist", "203.0.113.9", "1", "--every-cpu"],
            "is not per-CPU: it holds one value per key",
        ),
        (
            vec!["tcp_ports", "0", "1"],
            "port 0 is not a port; give 1 to 65535",
        ),
        (
            vec!["t/maps/cidr4", "10.0.0.0/33", "1"],
            "prefix length 33 is longer than 32",
        ),
        (
            vec!["t/maps/cidr4", "2001:db8::/32", "1"],
            "is IPv6, but this map holds IPv4 prefixes",
        ),
        (
            vec!["t/maps/cidr6", "10.0.0.0/8", "1"],
            "is IPv4, but this map holds IPv6 prefixes",
        ),
        (
            vec!["t/maps/rules", "1", r#"{"verdikt":1}"#],
            "no field 'verdikt'",
        ),
        (
            vec!["t/maps/rules", "1", r#"{"weight":70000}"#],
            "field weight: 70000 is out of range for a u16",
        ),
        (
            vec!["t/maps/rules", "1", r#"{"verdict":"MAYBE"}"#],
            "not one of VERDICT_PASS, VERDICT_DROP",
        ),
        (vec!["config", "0", "drop_icmp=1"], "is not a JSON object"),
        (
            vec!["config", "1", r#"{"drop_icmp":1}"#],
            "index 1 is out of range",
        ),
        (
            vec!["blocklist", "203 0 113 5", "300", "--raw"],
            "byte '300' is larger than 255",
        ),
        (
            vec!["blocklist", "203 0 113", "1", "--raw"],
            "got 3 byte(s), expected 4",
        ),
        (
            vec!["blocklist", "203.0.113.5", "2", "--if-absent"],
            "already exists",
        ),
        (
            vec!["blocklist", "203.0.113.6", "2", "--if-exists"],
            "is not in map",
        ),
        (
            vec!["blocklist", "--from-file", bad_file.to_str().unwrap()],
            "bad.txt:3: key: '3.3.3.300' is not an IPv4 address",
        ),
        (
            vec!["t/maps/tiny", "--from-file", too_many.to_str().unwrap()],
            "holds at most 4; nothing was written",
        ),
    ];
    for (args, needle) in cases {
        let mut full = vec!["map", "update"];
        full.extend(&args);
        let out = xdpctl(&fs, &full).fails_with(&[needle]);
        assert_eq!(
            out.stderr.lines().count(),
            1,
            "one line of error for {args:?}:\n{}",
            out.stderr
        );
        assert_eq!(snapshot(&fs), before, "{args:?} changed a map");
    }
    // A full map names itself and its size.
    for i in 1..=4 {
        xdpctl(
            &fs,
            ["map", "update", "t/maps/tiny", &format!("10.0.0.{i}"), "1"],
        )
        .ok();
    }
    xdpctl(&fs, ["map", "update", "t/maps/tiny", "10.0.0.9", "1"])
        .fails_with(&["is full (4 entries)"]);
    // Lookup and delete of a missing key: exit status 3; under -j a lookup
    // prints `null` (the value of no entry), a delete the error document
    // every failure prints.
    let miss = xdpctl(&fs, ["-j", "map", "lookup", "blocklist", "8.8.8.8"]);
    assert_eq!(miss.code, 3, "{miss:?}");
    assert_eq!(miss.json(), Value::Null, "{miss:?}");
    assert!(miss.stderr.contains("not found"), "{}", miss.stderr);
    let miss = xdpctl(&fs, ["-j", "map", "delete", "blocklist", "8.8.8.8"]);
    assert_eq!(miss.code, 3, "{miss:?}");
    assert_eq!(miss.json()["error"]["exit_code"], 3);
    assert!(miss.stderr.contains("not found"), "{}", miss.stderr);
    assert_eq!(
        xdpctl(&fs, ["map", "delete", "blocklist", "8.8.8.8"]).code,
        3
    );
    xdpctl(&fs, ["map", "delete", "config", "0"]).fails_with(&["is an array"]);
}

#[test]
fn dump_ranks_top_talkers_and_limits() {
    require_privileges!();
    let fs = Bpffs::new();
    load_typed(&fs);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("counts.txt");
    let mut text = String::new();
    for i in 0..200u32 {
        writeln!(text, "10.1.{}.{} {}", i / 256, i % 256, i * 10).unwrap();
    }
    fs::write(&file, text).unwrap();
    xdpctl(
        &fs,
        [
            "map",
            "update",
            "t/maps/big",
            "--from-file",
            file.to_str().unwrap(),
        ],
    )
    .ok();
    let top = xdpctl(&fs, ["-j", "map", "dump", "t/maps/big", "--top", "3"])
        .ok()
        .json();
    let values: Vec<u64> = top
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["value"].as_u64().unwrap())
        .collect();
    assert_eq!(values, [1990, 1980, 1970]);
    assert_eq!(top[0]["key"], "10.1.0.199");
    let limited = xdpctl(&fs, ["-j", "map", "dump", "t/maps/big", "--limit", "7"])
        .ok()
        .json();
    assert_eq!(limited.as_array().unwrap().len(), 7);
    let sorted = xdpctl(&fs, ["map", "dump", "t/maps/big", "--sort-by", "value"])
        .ok()
        .stdout;
    let first_line = sorted.lines().nth(1).unwrap();
    assert!(
        first_line.starts_with("10.1.0.199") && first_line.ends_with("1990"),
        "{first_line}"
    );
    // A closed pipe is not an error.
    let mut cmd = xdpctl_tests::command(&fs);
    cmd.args(["map", "dump", "t/maps/big"]);
    let out = std::process::Command::new("bash")
        .arg("-c")
        .arg(format!(
            "XDPCTL_BPFFS={} {} map dump t/maps/big | head -1; exit ${{PIPESTATUS[0]}}",
            fs.path().display(),
            xdpctl_tests::xdpctl_bin().display()
        ))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    drop(cmd);
}

/// A million entries: bulk load and dump are complete and correct. (How
/// fast belongs to the benchmark.)
#[test]
fn million_entry_map_bulk_loads_and_dumps() {
    require_privileges!();
    let fs = Bpffs::new();
    load_typed(&fs);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("million.txt");
    let mut text = String::with_capacity(20_000_000);
    for i in 0..1_000_000u32 {
        let [a, b, c, d] = (0x0a00_0000 + i).to_be_bytes();
        writeln!(text, "{a}.{b}.{c}.{d} {i}").unwrap();
    }
    fs::write(&file, text).unwrap();
    let out = xdpctl(
        &fs,
        [
            "-j",
            "map",
            "update",
            "t/maps/big",
            "--from-file",
            file.to_str().unwrap(),
        ],
    )
    .ok();
    assert_eq!(out.json()["written"], 1_000_000);
    let shown = xdpctl(&fs, ["-j", "map", "show", "t/maps/big"]).ok().json();
    assert_eq!(shown[0]["entries"], 1_000_000);
    let dump = xdpctl(&fs, ["map", "dump", "t/maps/big"]).ok().stdout;
    assert_eq!(
        dump.lines().count(),
        1_000_001,
        "header and a million entries"
    );
    for (ip, v) in [
        ("10.0.0.0", 0),
        ("10.15.66.63", 999_999),
        ("10.7.161.32", 500_000),
    ] {
        let got = xdpctl(&fs, ["-j", "map", "lookup", "t/maps/big", ip])
            .ok()
            .json();
        assert_eq!(got["value"], v, "{ip}");
    }
}

/// `map update` says what the map now holds, not what was typed: a port
/// in hex as its number, a prefix length as written canonically, a struct
/// with the fields it was not given.
#[test]
fn an_update_says_the_entry_as_the_map_holds_it() {
    require_privileges!();
    let fs = Bpffs::new();
    xdpctl(&fs, ["load", "--pin", "fw"]).ok();
    for (args, said) in [
        (
            &["map", "update", "udp_ports", "0x10", "1"][..],
            "udp_ports: 16 = 1",
        ),
        (
            &["map", "update", "fw/maps/cidr4", "10.0.0.0/024", "01"][..],
            "cidr4: 10.0.0.0/24 = 1",
        ),
        (
            &["map", "update", "config", "0", r#"{"drop_icmp":1}"#][..],
            r#"config: 0 = {"drop_icmp":1,"drop_icmp6_echo":0}"#,
        ),
    ] {
        let out = xdpctl(&fs, args).ok();
        assert!(out.stderr.contains(said), "{args:?}: {}", out.stderr);
        assert!(!out.stderr.contains("own map"), "{}", out.stderr);
    }
    // The firewall's own maps can be written, as bpftool writes them, but
    // xdpctl says what that does.
    let out = xdpctl(&fs, ["map", "update", "fw/maps/ctl", "0", "1"]).ok();
    assert!(
        out.stderr.contains("ctl is the firewall's own map")
            && out.stderr.contains("`xdpctl doctor` puts it back"),
        "{}",
        out.stderr
    );
}
