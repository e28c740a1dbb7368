//! A packet pays only for the kinds of rules in use: each kind's mode word
//! says "empty" while its maps hold no rule (the datapath skips it), and
//! every write path keeps that word right. A rule another tool (bpftool)
//! writes into an empty kind, or behind an index in use, is found by the
//! datapath's sampled check, reported by `doctor --check`, and enforced at
//! once by `doctor`.

use aya::programs::Xdp;
use aya_obj::programs::XdpAttachType;
use xdp_progs::xdpfw::{Ctl, INDEX_EMPTY, INDEX_OFF, INDEX_ON};
use xdpctl_tests::{Bpffs, flood, require_privileges, sh, xdpctl};

const XDP_DROP: u32 = 1;
const XDP_PASS: u32 = 2;

/// The five kinds' mode words.
const KINDS: [Ctl; 5] = [
    Ctl::PortsMode,
    Ctl::BloomMode,
    Ctl::Blocklist6Mode,
    Ctl::Cidr4Mode,
    Ctl::Cidr6Mode,
];

/// The firewall `fw`'s control word `word`.
fn ctl(fs: &Bpffs, word: Ctl) -> u64 {
    xdpctl_tests::fw_ctl(fs, "fw", word as u32)
}

fn modes(fs: &Bpffs) -> Vec<u64> {
    KINDS.iter().map(|w| ctl(fs, *w)).collect()
}

fn udp(src: [u8; 4], dport: u16) -> Vec<u8> {
    flood::udp64([2; 6], [4; 6], src, [192, 0, 2, 1], dport)
}

fn run(prog: &Xdp, f: &[u8]) -> u32 {
    flood::verdict(prog, f)
}

fn bpftool_update(fs: &Bpffs, map: &str, key: &[&str], value: &[&str]) {
    let pin = fs.path().join(map);
    let mut args = vec!["map", "update", "pinned", pin.to_str().unwrap(), "key"];
    args.extend(key);
    args.push("value");
    args.extend(value);
    sh("bpftool", &args);
}

#[test]
fn every_write_path_keeps_the_empty_kinds_right() {
    require_privileges!();
    let fs = Bpffs::new();
    xdpctl(&fs, ["load", "--pin", "fw"]).ok();
    assert_eq!(modes(&fs), vec![INDEX_EMPTY; 5], "a fresh load: all empty");
    let prog = Xdp::from_pin(fs.path().join("fw/xdp_fw"), XdpAttachType::Interface).unwrap();

    // map update fills a kind, map delete empties it again.
    xdpctl(&fs, ["map", "update", "udp_ports", "7777", "1"]).ok();
    assert_eq!(ctl(&fs, Ctl::PortsMode), INDEX_ON);
    assert_eq!(run(&prog, &udp([10, 0, 0, 1], 7777)), XDP_DROP);
    xdpctl(&fs, ["map", "delete", "udp_ports", "7777"]).ok();
    assert_eq!(ctl(&fs, Ctl::PortsMode), INDEX_EMPTY);
    assert_eq!(run(&prog, &udp([10, 0, 0, 1], 7777)), XDP_PASS);

    // apply fills and empties kinds too.
    let dir = tempfile::tempdir().unwrap();
    let policy = dir.path().join("p.yaml");
    std::fs::write(
        &policy,
        "version: 1\nload:\n  pin: fw\nrules:\n  blocklist: [203.0.113.5, 2001:db8::5]\n  cidr: [198.51.100.0/24]\n",
    )
    .unwrap();
    xdpctl(&fs, ["apply", "-f", policy.to_str().unwrap()]).ok();
    assert_eq!(
        modes(&fs),
        vec![INDEX_EMPTY, INDEX_ON, INDEX_ON, INDEX_ON, INDEX_EMPTY]
    );
    assert_eq!(run(&prog, &udp([203, 0, 113, 5], 53)), XDP_DROP);
    assert_eq!(run(&prog, &udp([198, 51, 100, 9], 53)), XDP_DROP);
    std::fs::write(
        &policy,
        "version: 1\nload:\n  pin: fw\nrules:\n  blocklist: []\n  cidr: []\n",
    )
    .unwrap();
    xdpctl(&fs, ["apply", "-f", policy.to_str().unwrap()]).ok();
    assert_eq!(modes(&fs), vec![INDEX_EMPTY; 5], "emptied by apply");
    assert_eq!(run(&prog, &udp([203, 0, 113, 5], 53)), XDP_PASS);

    // load --replace keeps the words right for the rules it keeps.
    xdpctl(&fs, ["map", "update", "cidr4", "198.51.100.0/24", "1"]).ok();
    xdpctl(&fs, ["load", "--pin", "fw", "--replace"]).ok();
    assert_eq!(ctl(&fs, Ctl::Cidr4Mode), INDEX_ON);
    assert_eq!(ctl(&fs, Ctl::PortsMode), INDEX_EMPTY);
    let prog = Xdp::from_pin(fs.path().join("fw/xdp_fw"), XdpAttachType::Interface).unwrap();
    assert_eq!(run(&prog, &udp([198, 51, 100, 9], 53)), XDP_DROP);
    xdpctl(&fs, ["doctor", "--check"]).ok();
}

#[test]
fn a_rule_bpftool_writes_into_an_empty_kind_is_found_reported_and_enforced() {
    require_privileges!();
    let fs = Bpffs::new();
    xdpctl(&fs, ["load", "--pin", "fw"]).ok();
    let prog = Xdp::from_pin(fs.path().join("fw/xdp_fw"), XdpAttachType::Interface).unwrap();
    // UDP port 7777 = 0x1e61, in network order.
    bpftool_update(&fs, "fw/maps/udp_ports", &["0x1e", "0x61"], &["1"]);
    assert_eq!(ctl(&fs, Ctl::PortsMode), INDEX_EMPTY, "bpftool left it");
    let check = xdpctl(&fs, ["doctor", "--check"]);
    assert_ne!(check.code, 0, "doctor --check finds it: {}", check.stdout);
    assert!(
        check
            .stdout
            .contains("udp_ports/tcp_ports/syn_ports holds rules written outside xdpctl"),
        "{}",
        check.stdout
    );
    // Unrepaired, the datapath's sampled check finds it within 128 packets
    // of the stream (one CPU here), and the rule holds from then on.
    let verdicts: Vec<u32> = (0..1000)
        .map(|_| run(&prog, &udp([10, 0, 0, 1], 7777)))
        .collect();
    let first = verdicts
        .iter()
        .position(|v| *v == XDP_DROP)
        .expect("the datapath found the rule bpftool wrote");
    assert!(first < 128, "after {first} packets");
    assert!(verdicts[first..].iter().all(|v| *v == XDP_DROP));
    assert_eq!(ctl(&fs, Ctl::PortsMode), INDEX_OFF, "the rule map decides");
    assert!(ctl(&fs, Ctl::PortsDrift) >= 1, "and the drift is counted");
    xdpctl(&fs, ["doctor"]).ok();
    assert_eq!(ctl(&fs, Ctl::PortsMode), INDEX_ON);

    // blocklist6, repaired by doctor before any packet: enforced at once.
    let mut key: Vec<String> = vec!["0x20", "0x01", "0x0d", "0xb8"]
        .into_iter()
        .map(String::from)
        .collect();
    key.extend((0..11).map(|_| "0".to_owned()));
    key.push("5".into());
    let key: Vec<&str> = key.iter().map(String::as_str).collect();
    bpftool_update(&fs, "fw/maps/blocklist6", &key, &["1"]);
    assert_ne!(xdpctl(&fs, ["doctor", "--check"]).code, 0);
    xdpctl(&fs, ["doctor"]).ok();
    assert_eq!(ctl(&fs, Ctl::Blocklist6Mode), INDEX_ON);
    xdpctl(&fs, ["doctor", "--check"]).ok();
    let got = xdpctl(
        &fs,
        [
            "-j",
            "prog",
            "run",
            "fw/xdp_fw",
            "--packet",
            "udp src=2001:db8::5 dport=53",
        ],
    )
    .ok()
    .json();
    assert_eq!(got[0]["verdict"], "XDP_DROP", "{got}");
}

#[test]
fn a_port_bpftool_adds_behind_an_index_in_use_is_reported_and_repaired() {
    require_privileges!();
    let fs = Bpffs::new();
    xdpctl(&fs, ["load", "--pin", "fw"]).ok();
    xdpctl(&fs, ["map", "update", "udp_ports", "53", "1"]).ok();
    xdpctl(&fs, ["doctor", "--check"]).ok();
    bpftool_update(&fs, "fw/maps/udp_ports", &["0x1e", "0x61"], &["1"]);
    let check = xdpctl(&fs, ["doctor", "--check"]);
    assert_ne!(check.code, 0);
    assert!(
        check
            .stdout
            .contains("port index differs from udp_ports/tcp_ports/syn_ports in 1 port:"),
        "{}",
        check.stdout
    );
    assert!(
        check.stdout.contains("`xdpctl doctor` rebuilds it"),
        "{}",
        check.stdout
    );
    // The repair says what it did, not what to do.
    let fixed = xdpctl(&fs, ["doctor"]).ok();
    assert!(
        fixed.stdout.contains("rebuilt the index") && !fixed.stdout.contains("rebuilds it"),
        "{}",
        fixed.stdout
    );
    xdpctl(&fs, ["doctor", "--check"]).ok();
    // Enforced at once, through the rebuilt index.
    let prog = Xdp::from_pin(fs.path().join("fw/xdp_fw"), XdpAttachType::Interface).unwrap();
    assert_eq!(run(&prog, &udp([10, 0, 0, 1], 7777)), XDP_DROP);
    assert_eq!(ctl(&fs, Ctl::PortsMode), INDEX_ON);
}
