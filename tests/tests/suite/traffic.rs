//! Real IPv6 and VLAN-tagged traffic between the test's namespaces, filtered
//! as configured; and `prog run`.

use std::{
    net::{TcpListener, TcpStream, UdpSocket},
    path::Path,
    time::Duration,
};

use serde_json::Value;
use xdpctl_tests::{Bpffs, VethPair, require_privileges, xdpctl};

fn ping6(pair: &VethPair, dst: &str, count: u32) -> u32 {
    let count = count.to_string();
    let (_, out) = pair.a.try_exec(&[
        "ping", "-6", "-n", "-q", "-c", &count, "-i", "0.2", "-W", "1", dst,
    ]);
    xdpctl_tests::parse_received(&out).unwrap_or_else(|| panic!("ping output: {out}"))
}

fn udp_gets_through(pair: &VethPair, src: &str, dst: &str, port: u16) -> bool {
    let rx = {
        let _in = pair.b.enter();
        UdpSocket::bind((dst, port)).unwrap()
    };
    rx.set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    let tx = {
        let _in = pair.a.enter();
        UdpSocket::bind((src, 0)).unwrap()
    };
    tx.send_to(b"hello", (dst, port)).unwrap();
    let mut buf = [0u8; 16];
    rx.recv(&mut buf).is_ok()
}

fn tcp_connects(pair: &VethPair, dst: &str, port: u16) -> bool {
    let listener = {
        let _in = pair.b.enter();
        TcpListener::bind((dst, port)).unwrap()
    };
    let _in = pair.a.enter();
    let addr = std::net::SocketAddr::new(dst.parse().unwrap(), port);
    let ok = TcpStream::connect_timeout(&addr, Duration::from_millis(700)).is_ok();
    drop(listener);
    ok
}

#[test]
fn ipv6_traffic_is_filtered_as_configured() {
    require_privileges!();
    let fs = Bpffs::new();
    let pair = VethPair::new();
    let (a6, b6) = pair.add_v6(std::process::id() % 200);
    let ns = pair.b.name();
    assert_eq!(ping6(&pair, &b6, 2), 2, "baseline IPv6 ping");
    xdpctl(&fs, ["load", "--pin", "fw"]).ok();
    xdpctl(&fs, ["attach", "fw", &pair.dev_b, "--netns", ns]).ok();
    assert_eq!(ping6(&pair, &b6, 2), 2, "a fresh firewall passes IPv6");

    xdpctl(&fs, ["map", "update", "blocklist6", &a6, "1"]).ok();
    assert_eq!(ping6(&pair, &b6, 2), 0, "blocklist6 drops the source");
    xdpctl(&fs, ["map", "delete", "blocklist6", &a6]).ok();

    let net = format!("{}/48", a6.trim_end_matches("::1").to_owned() + "::");
    xdpctl(&fs, ["map", "update", "cidr6", &net, "1"]).ok();
    assert_eq!(ping6(&pair, &b6, 2), 0, "cidr6 {net} drops the source");
    xdpctl(&fs, ["map", "clear", "cidr6"]).ok();
    assert_eq!(ping6(&pair, &b6, 2), 2);

    // Echo dropped, neighbour discovery never: with the neighbour caches
    // flushed, UDP only works if NS/NA get through.
    xdpctl(
        &fs,
        ["map", "update", "config", "0", r#"{"drop_icmp6_echo":1}"#],
    )
    .ok();
    assert_eq!(ping6(&pair, &b6, 2), 0, "echo requests are dropped");
    pair.a.exec(&["ip", "-6", "neigh", "flush", "all"]);
    pair.b.exec(&["ip", "-6", "neigh", "flush", "all"]);
    assert!(
        udp_gets_through(&pair, &a6, &b6, 9001),
        "neighbour discovery must pass"
    );
    xdpctl(
        &fs,
        ["map", "update", "config", "0", r#"{"drop_icmp6_echo":0}"#],
    )
    .ok();

    xdpctl(&fs, ["map", "update", "udp_ports", "9002", "1"]).ok();
    assert!(
        !udp_gets_through(&pair, &a6, &b6, 9002),
        "UDP to a dropped port over IPv6"
    );
    assert!(udp_gets_through(&pair, &a6, &b6, 9003));
    xdpctl(&fs, ["map", "update", "tcp_ports", "9004", "1"]).ok();
    assert!(
        !tcp_connects(&pair, &b6, 9004),
        "TCP to a dropped port over IPv6"
    );
    assert!(tcp_connects(&pair, &b6, 9005));
    assert!(!tcp_connects(&pair, &pair.ip_b, 9004), "and over IPv4");

    let pps6 = xdpctl(&fs, ["-j", "map", "lookup", "pps6", &a6, "--sum"])
        .ok()
        .json();
    assert!(pps6["value"].as_u64().unwrap() > 5, "{pps6}");
}

fn packets(fs: &Bpffs, outcome: u32) -> u64 {
    xdpctl(fs, ["-j", "map", "lookup", "stats", &outcome.to_string()])
        .ok()
        .json()["value"]["packets"]
        .as_u64()
        .unwrap()
}

#[test]
fn vlan_tagged_frames_are_filtered_as_configured() {
    require_privileges!();
    // This kernel may have no VLAN devices (CONFIG_VLAN_8021Q): tagged
    // frames are sent raw, and the firewall's counters say what it did.
    let fs = Bpffs::new();
    let pair = VethPair::new();
    xdpctl(&fs, ["load", "--pin", "fw"]).ok();
    xdpctl(&fs, ["attach", "fw", &pair.dev_b, "--netns", pair.b.name()]).ok();
    xdpctl(&fs, ["map", "update", "udp_ports", "9999", "1"]).ok();
    let verdicts = std::cell::RefCell::new(Vec::new());
    let frame = |vlans: &[u16], dport: u16| -> Vec<u8> {
        let spec = format!(
            "{} udp src={} dst={} dport={dport}",
            vlans
                .iter()
                .map(|v| format!("vlan={v}"))
                .collect::<Vec<_>>()
                .join(" "),
            pair.ip_a,
            pair.ip_b
        );
        // prog run judges it first (and counts it): the same verdict.
        let run = xdpctl(&fs, ["-j", "prog", "run", "fw", "--packet", &spec])
            .ok()
            .json();
        verdicts
            .borrow_mut()
            .push(run[0]["verdict"].as_str().unwrap().to_owned());
        build(&spec)
    };
    let before_drop = packets(&fs, 2);
    let before_pass = packets(&fs, 0);
    let frames = vec![
        frame(&[100], 9999),
        frame(&[100, 200], 9999),
        frame(&[100], 53),
        frame(&[7, 8], 53),
    ];
    // Counters after the prog runs above, before the wire.
    let run_drop = packets(&fs, 2);
    let run_pass = packets(&fs, 0);
    assert_eq!(
        *verdicts.borrow(),
        ["XDP_DROP", "XDP_DROP", "XDP_PASS", "XDP_PASS"],
        "prog run judged the frames"
    );
    // The passed count may also hold what the link itself sends meanwhile
    // (IPv6 neighbour discovery on a new veth): at least the two.
    assert_eq!(run_drop - before_drop, 2, "prog run counted its drops");
    assert!(run_pass - before_pass >= 2, "prog run counted its passes");
    xdpctl_tests::flood::send_raw(&pair.a, &pair.dev_a, &frames);
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(
        packets(&fs, 2) - run_drop,
        2,
        "tagged UDP to 9999 is dropped, one and two tags"
    );
    assert!(packets(&fs, 0) - run_pass >= 2, "tagged UDP to 53 passes");
}

/// The verdicts of `prog run fw --data FILE`, packet by packet.
fn verdicts_of(fs: &Bpffs, file: &Path) -> Vec<String> {
    let out = xdpctl(
        fs,
        ["-j", "prog", "run", "fw", "--data", file.to_str().unwrap()],
    )
    .ok()
    .json();
    out.as_array()
        .unwrap()
        .iter()
        .map(|r| r["verdict"].as_str().unwrap().to_owned())
        .collect()
}

/// The frame `xdpctl prog run --packet SPEC` would run, built the same way
/// from the printed description (the test builds it independently).
fn build(spec: &str) -> Vec<u8> {
    let mut vlans = Vec::new();
    let (mut src, mut dst, mut dport) = ([0u8; 4], [0u8; 4], 0u16);
    for w in spec.split_whitespace() {
        match w.split_once('=') {
            Some(("vlan", v)) => vlans.push(v.parse::<u16>().unwrap()),
            Some(("src", v)) => src = v.parse::<std::net::Ipv4Addr>().unwrap().octets(),
            Some(("dst", v)) => dst = v.parse::<std::net::Ipv4Addr>().unwrap().octets(),
            Some(("dport", v)) => dport = v.parse().unwrap(),
            _ => {}
        }
    }
    let mut f = vec![0xff; 6];
    f.extend_from_slice(&[0x02, 0, 0, 0, 0, 1]);
    for (i, v) in vlans.iter().enumerate() {
        f.extend_from_slice(if i + 1 < vlans.len() {
            &[0x88, 0xa8]
        } else {
            &[0x81, 0x00]
        });
        f.extend_from_slice(&v.to_be_bytes());
    }
    f.extend_from_slice(&[0x08, 0x00, 0x45, 0, 0, 36, 0, 1, 0, 0, 64, 17, 0, 0]);
    f.extend_from_slice(&src);
    f.extend_from_slice(&dst);
    f.extend_from_slice(&[0x30, 0x39]);
    f.extend_from_slice(&dport.to_be_bytes());
    f.extend_from_slice(&[0, 16, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8]);
    f
}

#[test]
fn prog_run_reports_verdicts_and_takes_raw_and_pcap_data() {
    require_privileges!();
    let fs = Bpffs::new();
    xdpctl(&fs, ["load", "--pin", "fw"]).ok();
    xdpctl(&fs, ["map", "update", "blocklist", "203.0.113.5", "1"]).ok();
    xdpctl(&fs, ["map", "update", "cidr4", "198.51.100.0/24", "1"]).ok();
    let run = |spec: &str| -> Value {
        let out = xdpctl(&fs, ["-j", "prog", "run", "fw", "--packet", spec]).ok();
        assert!(
            out.stderr.contains("ran on its real maps"),
            "{}",
            out.stderr
        );
        out.json()[0].clone()
    };
    assert_eq!(
        run("udp src=203.0.113.5 dst=10.0.0.1 dport=9999")["verdict"],
        "XDP_DROP"
    );
    assert_eq!(run("tcp src=198.51.100.77 dport=22")["verdict"], "XDP_DROP");
    assert_eq!(run("tcp src=192.0.2.77 dport=22")["verdict"], "XDP_PASS");
    assert_eq!(run("icmp6 src=2001:db8::1")["verdict"], "XDP_PASS");
    assert_eq!(run("arp")["verdict"], "XDP_PASS");
    let many = xdpctl(
        &fs,
        [
            "-j",
            "prog",
            "run",
            "fw",
            "--packet",
            "udp dport=53",
            "--repeat",
            "1000",
        ],
    )
    .ok()
    .json();
    assert_eq!(many[0]["repeat"], 1000);
    assert!(many[0]["ns_per_run"].as_u64().unwrap() > 0);
    assert_eq!(many[0]["modified"], false);
    // The runs were counted: they ran on the real maps.
    let passed = xdpctl(&fs, ["-j", "map", "lookup", "stats", "0"])
        .ok()
        .json();
    // tcp from 192.0.2.77, icmp6 and 1000 x udp passed; arp is unparsed.
    assert_eq!(passed["value"]["packets"], 1002, "{passed}");
    let unparsed = xdpctl(&fs, ["-j", "map", "lookup", "stats", "8"])
        .ok()
        .json();
    assert_eq!(unparsed["value"]["packets"], 1, "{unparsed}");

    let dir = tempfile::tempdir().unwrap();
    let raw = dir.path().join("frame.bin");
    let frame = build("udp src=203.0.113.5 dst=10.0.0.1 dport=1");
    std::fs::write(&raw, &frame).unwrap();
    let out = xdpctl(
        &fs,
        ["-j", "prog", "run", "fw", "--data", raw.to_str().unwrap()],
    )
    .ok()
    .json();
    assert_eq!(out[0]["verdict"], "XDP_DROP");
    // A pcap of two packets: one blocked, one not.
    let mut pcap = Vec::new();
    for v in [0xa1b2_c3d4u32, 0x0004_0002, 0, 0, 65535, 1] {
        pcap.extend_from_slice(&v.to_le_bytes());
    }
    for f in [
        frame.clone(),
        build("udp src=192.0.2.1 dst=10.0.0.1 dport=1"),
    ] {
        for v in [0u32, 0, f.len() as u32, f.len() as u32] {
            pcap.extend_from_slice(&v.to_le_bytes());
        }
        pcap.extend_from_slice(&f);
    }
    let cap = dir.path().join("two.pcap");
    std::fs::write(&cap, pcap).unwrap();
    assert_eq!(verdicts_of(&fs, &cap), ["XDP_DROP", "XDP_PASS"]);
    // The same two as pcapng (what tcpdump and Wireshark write today),
    // written here block by block: section header, interface (Ethernet),
    // two enhanced packet blocks.
    let mut ng = Vec::new();
    let block = |ng: &mut Vec<u8>, kind: u32, body: &[u8]| {
        let len = (12 + body.len().div_ceil(4) * 4) as u32;
        ng.extend(kind.to_le_bytes());
        ng.extend(len.to_le_bytes());
        ng.extend(body);
        ng.resize(ng.len() + (4 - body.len() % 4) % 4, 0);
        ng.extend(len.to_le_bytes());
    };
    let mut shb = Vec::new();
    shb.extend(0x1a2b_3c4du32.to_le_bytes());
    shb.extend(1u16.to_le_bytes());
    shb.extend(0u16.to_le_bytes());
    shb.extend((-1i64).to_le_bytes());
    block(&mut ng, 0x0a0d_0d0a, &shb);
    block(&mut ng, 1, &[1, 0, 0, 0, 0, 0, 0, 0]);
    for f in [
        frame.clone(),
        build("udp src=192.0.2.1 dst=10.0.0.1 dport=1"),
    ] {
        let mut epb = Vec::new();
        for v in [0u32, 0, 0, f.len() as u32, f.len() as u32] {
            epb.extend(v.to_le_bytes());
        }
        epb.extend(&f);
        block(&mut ng, 6, &epb);
    }
    let cap = dir.path().join("two.pcapng");
    std::fs::write(&cap, ng).unwrap();
    assert_eq!(
        verdicts_of(&fs, &cap),
        ["XDP_DROP", "XDP_PASS"],
        "from pcapng"
    );

    let short = dir.path().join("short.bin");
    std::fs::write(&short, [0u8; 10]).unwrap();
    xdpctl(
        &fs,
        ["prog", "run", "fw", "--data", short.to_str().unwrap()],
    )
    .fails_with(&["at least an Ethernet header"]);
    xdpctl(&fs, ["prog", "run", "fw/maps/pps", "--packet", "udp"])
        .fails_with(&["is a pinned map, not a prog"]);
    let bad = xdpctl(&fs, ["prog", "run", "fw", "--packet", "udp dport=70000"]);
    assert_eq!(bad.code, 2, "a bad packet description is a usage error");
}
