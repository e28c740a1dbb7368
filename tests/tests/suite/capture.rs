//! `xdpctl capture`: real traffic between the test's namespaces, captured
//! with its verdicts and rules, checked against the firewall's counters,
//! tcpdump, and libpcap's filter; the cap under a flood; Ctrl-C and
//! SIGKILL.

use std::{
    collections::BTreeMap,
    net::UdpSocket,
    path::{Path, PathBuf},
    process::{Child, Stdio},
    time::{Duration, Instant},
};

use pcap_file::pcapng::{
    Block, PcapNgReader,
    blocks::{
        enhanced_packet::EnhancedPacketOption, interface_description::InterfaceDescriptionOption,
    },
};
use serde_json::Value;
use xdp_progs::xdpfw::Ctl;
use xdpctl_tests::{
    Bpffs, VethPair, attach_generic, command, fw_ctl, require_privileges, sh, xdpctl,
};

/// A capture running in the background; killed on drop (a panicking test
/// leaves no capture behind).
struct Running {
    child: Option<Child>,
    stderr: PathBuf,
    _dir: tempfile::TempDir,
}

impl Running {
    /// Starts `xdpctl ARGS` (stdout to `stdout`, or a file of its own) and
    /// waits until it says it is capturing.
    fn start(fs: &Bpffs, args: &[&str], stdout: Option<&Path>) -> Running {
        let dir = tempfile::tempdir().unwrap();
        let stderr = dir.path().join("stderr");
        let out = stdout.map_or_else(|| dir.path().join("stdout"), Path::to_owned);
        let mut cmd = command(fs);
        cmd.args(args)
            .stdout(std::fs::File::create(&out).unwrap())
            .stderr(std::fs::File::create(&stderr).unwrap())
            .stdin(Stdio::null());
        let child = cmd.spawn().unwrap();
        let r = Running {
            child: Some(child),
            stderr,
            _dir: dir,
        };
        let t0 = Instant::now();
        while !r.err().contains("capturing") {
            assert!(
                t0.elapsed() < Duration::from_secs(10),
                "`xdpctl {}` did not start: {}",
                args.join(" "),
                r.err()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        r
    }

    fn err(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }

    fn pid(&self) -> i32 {
        self.child.as_ref().unwrap().id() as i32
    }

    /// Sends `sig` and waits; the exit status and stderr.
    fn stop(mut self, sig: nix::sys::signal::Signal) -> (std::process::ExitStatus, String) {
        let mut child = self.child.take().unwrap();
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(child.id() as i32), sig).unwrap();
        let status = child.wait().unwrap();
        (status, self.err())
    }

    /// Waits for it to end by itself (count, duration).
    fn wait(mut self) -> (std::process::ExitStatus, String) {
        let mut child = self.child.take().unwrap();
        let t0 = Instant::now();
        loop {
            if let Some(s) = child.try_wait().unwrap() {
                return (s, self.err());
            }
            assert!(
                t0.elapsed() < Duration::from_secs(20),
                "capture did not stop"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// A packet of a pcapng file: its device, bytes, original length and comment.
#[derive(Debug, Clone, PartialEq)]
struct Captured {
    device: String,
    data: Vec<u8>,
    len: u32,
    comment: String,
}

fn read_pcapng(path: &Path) -> Vec<Captured> {
    let bytes = std::fs::read(path).unwrap();
    let mut r = PcapNgReader::new(&bytes[..]).expect("a pcapng section header");
    let (mut devices, mut out) = (Vec::new(), Vec::new());
    while let Some(b) = r.next_block() {
        match b.expect("a whole pcapng block") {
            Block::InterfaceDescription(i) => devices.push(
                i.options
                    .iter()
                    .find_map(|o| match o {
                        InterfaceDescriptionOption::IfName(n) => Some(n.to_string()),
                        _ => None,
                    })
                    .unwrap_or_default(),
            ),
            Block::EnhancedPacket(p) => out.push(Captured {
                device: devices[p.interface_id as usize].clone(),
                data: p.data.to_vec(),
                len: p.original_len,
                comment: p
                    .options
                    .iter()
                    .find_map(|o| match o {
                        EnhancedPacketOption::Comment(c) => Some(c.to_string()),
                        _ => None,
                    })
                    .unwrap_or_default(),
            }),
            _ => {}
        }
    }
    out
}

/// Packets per outcome, from `xdpctl -j stats`.
fn stats(fs: &Bpffs) -> BTreeMap<String, u64> {
    let v = xdpctl(fs, ["-j", "stats", "fw"]).ok().json();
    v.as_array()
        .unwrap()
        .iter()
        .map(|o| {
            (
                o["outcome"].as_str().unwrap().to_owned(),
                o["packets"].as_u64().unwrap(),
            )
        })
        .collect()
}

/// The outcome in a capture's comment (`xdpfw: XDP_DROP drop_udp_port rule=...`).
fn outcome(comment: &str) -> &str {
    comment.split(' ').nth(2).unwrap_or("")
}

/// A capture's summary line (its stderr's last), and the packets it says
/// it captured.
fn summary_of(err: &str) -> (&str, u64) {
    let summary = err.lines().last().unwrap_or_default();
    let n = summary
        .split_once("captured ")
        .and_then(|(_, r)| r.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no summary in {err}"));
    (summary, n)
}

fn send_udp(pair: &VethPair, port: u16, n: usize) {
    let _in = pair.a.enter();
    let tx = UdpSocket::bind((pair.ip_a.as_str(), 0)).unwrap();
    for _ in 0..n {
        tx.send_to(b"hello", (pair.ip_b.as_str(), port)).unwrap();
    }
}

#[test]
fn a_capture_of_real_traffic_holds_every_packet_once_with_its_verdict_and_rule() {
    require_privileges!();
    let fs = Bpffs::new();
    let pair = VethPair::new();
    let ns = pair.b.name();
    // Only the test's own packets reach the firewall while it counts: no
    // IPv6 (router and neighbour solicitations, MLD) and no ARP from A.
    pair.a
        .exec(&["sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1"]);
    let mac = pair
        .b
        .exec(&["cat", &format!("/sys/class/net/{}/address", pair.dev_b)]);
    pair.a.exec(&[
        "ip",
        "neigh",
        "replace",
        &pair.ip_b,
        "lladdr",
        mac.trim(),
        "dev",
        &pair.dev_a,
        "nud",
        "permanent",
    ]);
    xdpctl(&fs, ["load", "--pin", "fw"]).ok();
    attach_generic(&fs, "fw", &pair);
    xdpctl(&fs, ["map", "update", "udp_ports", "9002", "1"]).ok();
    xdpctl(
        &fs,
        ["map", "update", "cidr4", &format!("{}/32", pair.ip_a), "0"],
    )
    .ok();
    assert_eq!(pair.ping_b_from_a(1), 1, "the pair works");

    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("all.pcapng");
    let before = stats(&fs);
    let cap = Running::start(
        &fs,
        &[
            "capture",
            &pair.dev_b,
            "--netns",
            ns,
            "-w",
            file.to_str().unwrap(),
            "--max-rate",
            "unlimited",
        ],
        None,
    );
    send_udp(&pair, 9002, 3);
    send_udp(&pair, 9003, 2);
    assert_eq!(pair.ping_b_from_a(2), 2);
    xdpctl(&fs, ["map", "update", "config", "0", r#"{"drop_icmp":1}"#]).ok();
    assert_eq!(pair.ping_b_from_a(1), 0);
    std::thread::sleep(Duration::from_millis(300));
    // Ctrl-C: a complete file and a summary.
    let (status, err) = cap.stop(nix::sys::signal::Signal::SIGINT);
    let after = stats(&fs);
    assert!(status.success(), "{err}");
    assert!(err.contains("xdpctl: captured "), "{err}");

    let packets = read_pcapng(&file);
    // Every packet the firewall judged, once: the capture's counts per
    // outcome are the counters' deltas.
    let mut by_outcome: BTreeMap<String, u64> = BTreeMap::new();
    for p in &packets {
        *by_outcome
            .entry(outcome(&p.comment).to_owned())
            .or_default() += 1;
        assert_eq!(p.device, pair.dev_b, "{p:?}");
        assert_eq!(p.data.len() as u32, p.len, "whole packets under 4096 bytes");
    }
    for (o, n) in &after {
        let delta = n - before[o];
        assert_eq!(
            by_outcome.get(o).copied().unwrap_or(0),
            delta,
            "outcome {o}: captured {by_outcome:?}, counters moved {delta}"
        );
    }
    let comments: Vec<&str> = packets.iter().map(|p| p.comment.as_str()).collect();
    let with = |needle: &str| comments.iter().filter(|c| c.contains(needle)).count();
    assert_eq!(
        with("XDP_DROP drop_udp_port rule=udp_ports 9002 "),
        3,
        "{comments:#?}"
    );
    assert_eq!(with("XDP_DROP drop_icmp rule=config.drop_icmp "), 1);
    // Two UDP datagrams and two echo requests passed (and the replies'
    // neighbour traffic, if any, as passed or unparsed).
    assert!(with("XDP_PASS passed rule=none ") >= 4, "{comments:#?}");

    // By load directory, a device in another namespace is named with it.
    let lines = dir.path().join("lines");
    let cap = Running::start(
        &fs,
        &["-j", "capture", "fw", "--rule", "udp-port", "-c", "1"],
        Some(&lines),
    );
    send_udp(&pair, 9002, 1);
    let (status, err) = cap.wait();
    assert!(status.success(), "{err}");
    let line: Value =
        serde_json::from_str(std::fs::read_to_string(&lines).unwrap().trim()).unwrap();
    assert_eq!(line["device"], format!("{}@{ns}", pair.dev_b), "{line}");
    assert_eq!(line["rule"], "udp_ports 9002");

    // A capture that caught nothing is still a file tcpdump reads.
    let empty = dir.path().join("empty.pcapng");
    let cap = Running::start(
        &fs,
        &[
            "capture",
            "fw",
            "--rule",
            "icmp6",
            "--duration",
            "200ms",
            "-w",
            empty.to_str().unwrap(),
        ],
        None,
    );
    let (status, err) = cap.wait();
    assert!(status.success(), "{err}");
    assert!(err.contains("captured 0 packets"), "{err}");
    assert_eq!(sh("tcpdump", &["-nr", empty.to_str().unwrap()]), "");

    // tcpdump reads the file, packet for packet.
    let text = sh("tcpdump", &["-nr", file.to_str().unwrap()]);
    assert_eq!(text.lines().count(), packets.len(), "{text}");
    // tshark (Wireshark's) shows each packet's comment.
    let shown = sh(
        "tshark",
        &[
            "-r",
            file.to_str().unwrap(),
            "-T",
            "fields",
            "-e",
            "frame.comment",
        ],
    );
    let shown: Vec<&str> = shown.lines().collect();
    assert_eq!(shown, comments, "tshark's comments");

    // A filter expression keeps exactly what libpcap's reference keeps:
    // replay the capture through the firewall under `capture -f`, and
    // compare with tcpdump's filter of the same file.
    let expr = "udp and dst port 9002 or icmp";
    let want_file = dir.path().join("want.pcap");
    sh(
        "tcpdump",
        &[
            "-r",
            file.to_str().unwrap(),
            "-w",
            want_file.to_str().unwrap(),
            expr,
        ],
    );
    let want: Vec<String> = sh("tcpdump", &["-nr", want_file.to_str().unwrap()])
        .lines()
        .map(|l| l.split_once(' ').unwrap().1.to_owned())
        .collect();
    // Three datagrams to 9002, two echo requests passed, one dropped.
    assert_eq!(want.len(), 3 + 2 + 1, "{want:#?}");
    let got_file = dir.path().join("got.pcapng");
    let cap = Running::start(
        &fs,
        &[
            "capture",
            "fw",
            "-w",
            got_file.to_str().unwrap(),
            "--max-rate",
            "unlimited",
            "-f",
            expr,
        ],
        None,
    );
    xdpctl(
        &fs,
        ["prog", "run", "fw/xdp_fw", "--data", file.to_str().unwrap()],
    )
    .ok();
    std::thread::sleep(Duration::from_millis(300));
    let (status, err) = cap.stop(nix::sys::signal::Signal::SIGTERM);
    assert!(status.success(), "{err}");
    let got: Vec<String> = sh("tcpdump", &["-nr", got_file.to_str().unwrap()])
        .lines()
        .map(|l| l.split_once(' ').unwrap().1.to_owned())
        .collect();
    assert_eq!(got, want);
    assert!(err.contains("left out by the filter expression"), "{err}");

    // The pair's two ends have one ifindex in their two namespaces, and
    // XDP filters by ifindex: a capture of one names the other too.
    xdpctl(
        &fs,
        [
            "attach",
            "fw",
            &pair.dev_a,
            "--netns",
            pair.a.name(),
            "--mode",
            "generic",
        ],
    )
    .ok();
    let index = |ns: &str, dev: &str| {
        xdpctl(&fs, ["-j", "net", "explain", dev, "--netns", ns])
            .ok()
            .json()["devices"][0]["ifindex"]
            .clone()
    };
    assert_eq!(
        index(pair.a.name(), &pair.dev_a),
        index(ns, &pair.dev_b),
        "fresh namespaces number their first veth alike"
    );
    let cap = Running::start(&fs, &["capture", &pair.dev_b, "--netns", ns], None);
    let (_, err) = cap.stop(nix::sys::signal::Signal::SIGINT);
    assert!(
        err.contains("and so has another device this firewall runs on")
            && err.contains(&format!("{}@{}", pair.dev_a, pair.a.name())),
        "{err}"
    );
}

#[test]
fn rules_verdict_and_json_lines_name_what_decided() {
    require_privileges!();
    let fs = Bpffs::new();
    xdpctl(&fs, ["load", "--pin", "fw"]).ok();
    for (map, key) in [
        ("blocklist", "203.0.113.5"),
        ("blocklist6", "2001:db8::5"),
        ("cidr4", "198.51.100.0/24"),
        ("cidr6", "2001:db8:1::/48"),
        ("tcp_ports", "22"),
    ] {
        xdpctl(&fs, ["map", "update", map, key, "1"]).ok();
    }
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("lines");
    let cap = Running::start(
        &fs,
        &["-j", "capture", "fw", "--verdict", "drop", "-c", "5"],
        Some(&out),
    );
    for p in [
        "udp src=10.0.0.1 dst=10.0.0.2",
        "vlan=7 udp src=203.0.113.5 dst=10.0.0.2",
        "udp src=2001:db8::5 dst=2001:db8::2",
        "udp src=198.51.100.9 dst=10.0.0.2",
        "udp src=2001:db8:1::9 dst=2001:db8::2",
        "tcp src=10.0.0.1 dst=10.0.0.2 dport=22",
    ] {
        xdpctl(&fs, ["prog", "run", "fw/xdp_fw", "--packet", p]).ok();
    }
    let (status, err) = cap.wait();
    assert!(status.success(), "{err}");
    let lines: Vec<Value> = std::fs::read_to_string(&out)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect();
    let rules: Vec<(&str, &str)> = lines
        .iter()
        .map(|l| (l["verdict"].as_str().unwrap(), l["rule"].as_str().unwrap()))
        .collect();
    assert_eq!(
        rules,
        [
            ("XDP_DROP", "blocklist 203.0.113.5"),
            ("XDP_DROP", "blocklist6 2001:db8::5"),
            ("XDP_DROP", "cidr4 198.51.100.0/24"),
            ("XDP_DROP", "cidr6 2001:db8:1::/48"),
            ("XDP_DROP", "tcp_ports 22"),
        ]
    );
    assert_eq!(lines[0]["headers"]["vlan"], serde_json::json!([7]));
    assert_eq!(
        lines[0]["device"], "lo",
        "a test run's packets come from lo"
    );
    assert!(
        err.contains("captured 5 packets (5 dropped, 0 passed)"),
        "{err}"
    );
}

#[test]
fn a_flood_capture_stops_at_its_cap_and_a_killed_one_leaves_nothing_on() {
    require_privileges!();
    let fs = Bpffs::new();
    xdpctl(&fs, ["load", "--pin", "fw"]).ok();
    xdpctl(&fs, ["map", "update", "udp_ports", "53", "1"]).ok();
    let pins = fs.snapshot();
    // `n` packets to `port` through the firewall (53 is dropped).
    let send = |port: &str, n: &str| {
        let packet = format!("udp dport={port}");
        xdpctl(
            &fs,
            [
                "prog",
                "run",
                "fw/xdp_fw",
                "--packet",
                &packet,
                "--repeat",
                n,
            ],
        )
        .ok();
    };
    let flood = |n: &str| send("53", n);

    // At most --max-rate a second, all CPUs together; the rest counted.
    // 200/s: refilled every 100 ms in steps of 20; 2/s, below the
    // renewals' ten a second, holds too (not 10/s).
    for (rate, flood_n, min, max) in [("200", "200000", 100, 440), ("2", "20000", 2, 6)] {
        let cap = Running::start(
            &fs,
            &[
                "-j",
                "capture",
                "fw",
                "--max-rate",
                rate,
                "--duration",
                "2s",
            ],
            None,
        );
        let t0 = Instant::now();
        while t0.elapsed() < Duration::from_millis(1500) {
            flood(flood_n);
        }
        let (status, err) = cap.wait();
        assert!(status.success(), "{err}");
        let (summary, captured) = summary_of(&err);
        assert!(
            (min..=max).contains(&captured),
            "--max-rate {rate}: {summary}"
        );
        assert!(summary.contains("over --max-rate"), "{summary}");
    }

    // One in 7 sampled (a countdown per CPU; `prog run` keeps to one):
    // the first, the 8th, ... of the 100 drops, and all 100 counted as
    // matched, none of the 30 passed ones.
    let sampled = Running::start(
        &fs,
        &["capture", "fw", "--verdict", "drop", "--sample", "7"],
        None,
    );
    flood("100");
    send("54", "30");
    std::thread::sleep(Duration::from_millis(300));
    let (status, err) = sampled.stop(nix::sys::signal::Signal::SIGINT);
    assert!(status.success(), "{err}");
    assert!(
        err.contains("captured 15 packets (15 dropped, 0 passed)")
            && err.contains("of 100 packets with the verdicts"),
        "{err}"
    );

    // One capture per load.
    let first = Running::start(&fs, &["capture", "fw", "--verdict", "drop"], None);
    xdpctl(&fs, ["capture", "fw"]).fails_with(&[
        &format!(
            "xdpctl (pid {}) is capturing this firewall already",
            first.pid()
        ),
        "stop it first",
    ]);
    // SIGKILL: the next capture starts at once, and the lease lapses by
    // itself (the datapath turns capture off on the next packet after it).
    let (status, _) = first.stop(nix::sys::signal::Signal::SIGKILL);
    assert!(!status.success());
    assert_ne!(
        fw_ctl(&fs, "fw", Ctl::Capture as u32),
        0,
        "the lease of the killed capture"
    );
    std::thread::sleep(Duration::from_millis(3200));
    flood("1");
    assert_eq!(
        fw_ctl(&fs, "fw", Ctl::Capture as u32),
        0,
        "the lease lapsed and was cleared"
    );
    let next = Running::start(&fs, &["capture", "fw", "-c", "1"], None);
    flood("1");
    let (status, err) = next.wait();
    assert!(status.success(), "{err}");
    assert!(err.contains("captured 1 packet ("), "{err}");
    assert_eq!(fs.snapshot(), pins, "capture pins nothing");
    assert_eq!(
        fw_ctl(&fs, "fw", Ctl::Capture as u32),
        0,
        "a capture that ends gives its lease back"
    );
}

#[test]
fn capture_refuses_what_it_cannot_capture_in_one_line() {
    require_privileges!();
    let fs = Bpffs::new();
    let pair = VethPair::new();
    xdpctl(&fs, ["load", "--pin", "fw"]).ok();
    xdpctl(
        &fs,
        ["capture", "fw", "--verdict", "pass", "--rule", "blocklist"],
    )
    .fails_with(&["no packet has a verdict of pass and a rule of blocklist"]);
    xdpctl(&fs, ["capture", "fw", "-f", "udp prt 53"])
        .fails_with(&["the filter expression \"udp prt 53\" does not compile"]);
    xdpctl(&fs, ["capture", &pair.dev_b, "--netns", pair.b.name()])
        .fails_with(&["runs no XDP program; attach the firewall"]);
    xdpctl(
        &fs,
        [
            "load",
            xdpctl_tests::fixture("xdp_pass").to_str().unwrap(),
            "--pin",
            "other",
        ],
    )
    .ok();
    attach_generic(&fs, "other/xdp_pass", &pair);
    xdpctl(&fs, ["capture", &pair.dev_b, "--netns", pair.b.name()])
        .fails_with(&["not a pinned load of the built-in firewall", "fentry/fexit"]);
    xdpctl(&fs, ["capture", "nosuch"]).fails_with(&["is neither a load directory"]);
}
