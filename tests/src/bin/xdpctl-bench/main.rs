//! xdpctl's benchmarks, side by side with what a user would pick instead,
//! on this machine, in one run: one table, and BENCHMARKS.md.
//!
//! - per-packet cost with BPF_PROG_TEST_RUN: bare XDP_DROP vs the firewall's
//!   paths, and a passed packet with 10,000 CIDR rules vs none;
//! - floods on any kernel (floods.rs): a test-run generator rewrites each
//!   packet's source and tail-calls the program under test, ns per packet
//!   as the kernel times them: the firewall against the seed's two
//!   programs, a bare XDP_DROP/XDP_PASS and xdp-filter;
//! - where the kernel allows live frames (a locked-down one refuses them
//!   to root too): packets per second on a veth pair flooded by an
//!   in-kernel generator from one, 256, 65,536 or 2^24 spoofed sources: the
//!   firewall, nftables netdev ingress and xdp-filter, each as a ratio to a
//!   bare XDP_DROP (or, for passed packets, a bare XDP_PASS) under the same
//!   flood, measured in turn in the same runs;
//! - control plane: dumping a million entries and one top/guard interval
//!   as ratios to a raw BPF_MAP_LOOKUP_BATCH of the same map, bulk-loading,
//!   apply, net show and load, against Debian's bpftool or a raw floor.
//!
//! It changes no kernel-wide setting and works in namespaces and a private
//! bpffs it creates and removes. `--smoke` runs it with tiny sizes, for the
//! test suite.

use std::{
    fmt::Write as _,
    fs,
    net::Ipv4Addr,
    path::{Path, PathBuf},
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use serde_json::Value;

mod floods;
mod ratelimit;
mod syncookie;

use xdpctl_tests::{Bpffs, VethPair, attach_generic, fixture, flood, xdpctl, xdpctl_bin};

struct Sizes {
    flood: u32,
    runs: usize,
    test_run_repeat: u32,
    entries: u32,
    cli_runs: usize,
    load_runs: usize,
}

struct Row {
    what: String,
    ours: String,
    peer: String,
    ratio: String,
    goal: String,
    met: Option<bool>,
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    if v.is_empty() {
        f64::NAN
    } else {
        v[v.len() / 2]
    }
}

fn secs(d: Duration) -> f64 {
    d.as_secs_f64()
}

/// Runs a command `runs` times; the median wall time in seconds. Panics
/// with its output if it fails.
fn time_cmd(runs: usize, mut make: impl FnMut() -> Command, mut between: impl FnMut()) -> f64 {
    let mut times = Vec::new();
    for _ in 0..runs {
        let mut cmd = make();
        let start = Instant::now();
        let out = cmd
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .output()
            .expect("running a benchmarked command");
        times.push(secs(start.elapsed()));
        assert!(
            out.status.success(),
            "{cmd:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        between();
    }
    median(times)
}

/// Runs a command once under /usr/bin/time; its peak RSS in KiB.
///
/// NB: not wait4's rusage of a child of this process: Linux carries the
/// maximum RSS across exec, so a child forked from this (large) process
/// would report this process's size.
fn peak_rss(cmd: &Command) -> u64 {
    let out = Command::new("/usr/bin/time")
        .args(["-f", "%M"])
        .arg(cmd.get_program())
        .args(cmd.get_args())
        .envs(cmd.get_envs().filter_map(|(k, v)| v.map(|v| (k, v))))
        .stdout(Stdio::null())
        .output()
        .expect("running /usr/bin/time (Debian package time)");
    assert!(out.status.success(), "{cmd:?} failed");
    let err = String::from_utf8_lossy(&out.stderr);
    err.lines()
        .last()
        .and_then(|l| l.trim().parse().ok())
        .expect("time -f %M prints the peak RSS")
}

fn ratio_row(what: &str, ours: f64, peer: f64, unit: &str, goal: &str, met: Option<bool>) -> Row {
    Row {
        what: what.to_owned(),
        ours: format!("{ours:.3} {unit}"),
        peer: format!("{peer:.3} {unit}"),
        ratio: format!("{:.2}x", peer / ours),
        goal: goal.to_owned(),
        met,
    }
}

/// A row of a wall time against bpftool's doing the same: the ratio is
/// ours over theirs, so that under 1 is faster.
fn time_ratio_row(what: &str, ours: f64, bpftool: f64, goal: &str) -> Row {
    Row {
        what: what.to_owned(),
        ours: format!("{ours:.4} s"),
        peer: format!("bpftool {bpftool:.4} s"),
        ratio: format!("{:.2}x bpftool's time", ours / bpftool),
        goal: goal.to_owned(),
        met: Some(ours <= bpftool),
    }
}

fn per_packet_cost(fs: &Bpffs, sizes: &Sizes, rows: &mut Vec<Row>) {
    // NB: every test run on the same CPU (the xdpctl children inherit the
    // affinity), or two runs that land on differently busy CPUs are not
    // comparable.
    let _pinned = flood::Pinned::last_cpu();
    xdpctl(
        fs,
        [
            "load",
            fixture("xdp_drop").to_str().unwrap(),
            "--pin",
            "bare",
        ],
    )
    .ok();
    xdpctl(fs, ["load", "--pin", "fw"]).ok();
    xdpctl(fs, ["map", "update", "blocklist", "203.0.113.5", "1"]).ok();
    xdpctl(fs, ["map", "update", "cidr4", "198.51.100.0/24", "1"]).ok();
    let repeat = sizes.test_run_repeat.to_string();
    let ns_once = |prog: &str, spec: &str| -> f64 {
        let out = xdpctl(
            fs,
            [
                "-j", "prog", "run", prog, "--packet", spec, "--repeat", &repeat,
            ],
        )
        .ok()
        .json();
        out[0]["ns_per_run"].as_f64().unwrap()
    };
    let ns = |prog: &str, spec: &str| -> f64 {
        median(
            (0..sizes.runs.max(3))
                .map(|_| ns_once(prog, spec))
                .collect(),
        )
    };
    let bare = ns("bare", "udp src=203.0.113.5 dport=53");
    rows.push(Row {
        what: "test-run ns/packet: bare XDP_DROP".into(),
        ours: format!("{bare:.0} ns"),
        peer: "-".into(),
        ratio: "1.00x".into(),
        goal: "baseline".into(),
        met: None,
    });
    for (what, spec, goal) in [
        (
            "firewall, blocked source",
            "udp src=203.0.113.5 dport=53",
            Some(1.5),
        ),
        (
            "firewall, CIDR-blocked source",
            "udp src=198.51.100.7 dport=53",
            None,
        ),
        (
            "firewall, passed packet",
            "udp src=192.0.2.1 dport=53",
            Some(3.0),
        ),
    ] {
        let v = ns("fw", spec);
        let r = v / bare;
        rows.push(Row {
            what: format!("test-run ns/packet: {what}"),
            ours: format!("{v:.0} ns"),
            peer: format!("{bare:.0} ns (bare)"),
            ratio: format!("{r:.2}x of bare"),
            goal: goal.map_or_else(|| "-".into(), |g| format!("<= {g}x")),
            met: goal.map(|g| r <= g),
        });
    }

    // A passed packet walks every source rule: with 10,000 CIDRs in
    // `cidr4` (none matching) against a firewall with none, run in turn.
    xdpctl(fs, ["load", "--pin", "fw0"]).ok();
    xdpctl(fs, ["load", "--pin", "fwc"]).ok();
    let dir = tempfile::tempdir().unwrap();
    let cidr = dir.path().join("cidr.txt");
    fs::write(&cidr, cidr_rules(10_000)).unwrap();
    xdpctl(
        fs,
        [
            "map",
            "update",
            "fwc/maps/cidr4",
            "--from-file",
            cidr.to_str().unwrap(),
        ],
    )
    .ok();
    let passed = "udp src=192.0.2.1 dport=53";
    let (mut none, mut with) = (Vec::new(), Vec::new());
    for _ in 0..sizes.runs.max(3) {
        none.push(ns_once("fw0", passed));
        with.push(ns_once("fwc", passed));
    }
    let r = ratio_of(&with, &none);
    rows.push(Row {
        what: "test-run ns/packet: firewall, passed packet, 10,000 CIDR rules".into(),
        ours: format!("{:.0} ns", median(with)),
        peer: format!("{:.0} ns (no rules)", median(none)),
        ratio: format!("{r:.2}x no rules"),
        goal: "<= 1.1x".into(),
        met: Some(r <= 1.1),
    });

    // The same for IPv6: 10,000 prefixes of four lengths in `cidr6`.
    let cidr6 = dir.path().join("cidr6.txt");
    fs::write(&cidr6, cidr6_rules(10_000)).unwrap();
    xdpctl(
        fs,
        [
            "map",
            "update",
            "fwc/maps/cidr6",
            "--from-file",
            cidr6.to_str().unwrap(),
        ],
    )
    .ok();
    let passed6 = "udp src=2001:db8::1 dport=53";
    let (mut none, mut with) = (Vec::new(), Vec::new());
    for _ in 0..sizes.runs.max(3) {
        none.push(ns_once("fw0", passed6));
        with.push(ns_once("fwc", passed6));
    }
    let r = ratio_of(&with, &none);
    rows.push(Row {
        what: "test-run ns/packet: firewall, passed IPv6 packet, 10,000 CIDR6 rules".into(),
        ours: format!("{:.0} ns", median(with)),
        peer: format!("{:.0} ns (no rules)", median(none)),
        ratio: format!("{r:.2}x no rules"),
        goal: "<= 1.1x".into(),
        met: Some(r <= 1.1),
    });
}

/// `n` prefixes under 2001:db8:8000::/33 for `cidr6`, of /48, /56, /64
/// and /128 in turn, one `PREFIX 1` a line: none holds a source the bench
/// sends from.
fn cidr6_rules(n: u32) -> String {
    let mut text = String::new();
    for i in 0..n {
        let net = 0x8000 | (i & 0x7fff);
        let prefix = match i % 4 {
            0 => format!("2001:db8:{net:x}::/48"),
            1 => format!("2001:db8:{net:x}:ab00::/56"),
            2 => format!("2001:db8:{net:x}:cd::/64"),
            _ => format!("2001:db8:{net:x}::{i:x}/128"),
        };
        writeln!(text, "{prefix} 1").unwrap();
    }
    text
}

/// `n` /24 prefixes of 100.0.0.0/10 for `cidr4`, one `PREFIX 1` a line:
/// none holds a source the bench sends from.
fn cidr_rules(n: u32) -> String {
    let mut text = String::new();
    for i in 0..n {
        let [_, _, c, d] = i.to_be_bytes();
        writeln!(text, "100.{c}.{d}.0/24 1").unwrap();
    }
    text
}

/// What receives a flood on the B side of the pair: set up before each
/// run and removed after it, so that receivers take turns run by run and
/// share whatever the machine is doing meanwhile.
struct Receiver<'a> {
    setup: Box<dyn Fn() -> Result<(), String> + 'a>,
    teardown: Box<dyn Fn() + 'a>,
    /// The packets it dropped (or delivered) so far.
    count: Box<dyn Fn() -> u64 + 'a>,
}

fn xdp_receiver<'a>(
    setup: impl Fn() -> Result<(), String> + 'a,
    teardown: impl Fn() + 'a,
    count: impl Fn() -> u64 + 'a,
) -> Receiver<'a> {
    Receiver {
        setup: Box::new(setup),
        teardown: Box::new(teardown),
        count: Box::new(count),
    }
}

/// A flood: the frame's destination port and the sources.
struct FloodSpec {
    what: String,
    dport: u16,
    sources: flood::Sources,
}

/// The pair, the generator and the flood's frame for a port.
struct Bench<'a> {
    pair: &'a VethPair,
    generator: flood::Flood,
    sizes: &'a Sizes,
}

/// Per-run Mpps of one receiver: `None` if it could not be set up.
type Rates = Option<Vec<f64>>;

impl Bench<'_> {
    fn frame(&self, dport: u16) -> Vec<u8> {
        let pair = self.pair;
        flood::udp64(
            flood::mac(&pair.b, &pair.dev_b),
            flood::mac(&pair.a, &pair.dev_a),
            pair.ip_a.parse::<Ipv4Addr>().unwrap().octets(),
            pair.ip_b.parse::<Ipv4Addr>().unwrap().octets(),
            dport,
        )
    }

    /// Sends the flood `runs` times to each receiver in turn; per receiver
    /// the Mpps of each run (what it counted over the sender's time).
    fn race(&mut self, spec: &FloodSpec, receivers: &[&Receiver]) -> Vec<Rates> {
        eprintln!("xdpctl-bench:   {}", spec.what);
        let frame = self.frame(spec.dport);
        let mut rates: Vec<Rates> = vec![Some(Vec::new()); receivers.len()];
        for _ in 0..self.sizes.runs {
            for (rx, rate) in receivers.iter().zip(rates.iter_mut()) {
                let Some(runs) = rate else { continue };
                if let Err(why) = (rx.setup)() {
                    eprintln!("xdpctl-bench:   skipped a receiver: {why}");
                    *rate = None;
                    continue;
                }
                let before = (rx.count)();
                let took = self.generator.send(
                    &self.pair.a,
                    &self.pair.dev_a,
                    &frame,
                    spec.sources,
                    self.sizes.flood,
                );
                // Let the receiver's NAPI finish what is queued.
                std::thread::sleep(Duration::from_millis(20));
                let counted = (rx.count)() - before;
                (rx.teardown)();
                runs.push(counted as f64 / secs(took) / 1e6);
            }
        }
        rates
    }
}

/// The median of per-run ratios `a / b`: both measured in the same run,
/// so a slow moment of the machine affects both.
fn ratio_of(a: &[f64], b: &[f64]) -> f64 {
    median(a.iter().zip(b).map(|(a, b)| a / b).collect())
}

fn stat_packets(fs: &Bpffs, dir: &str, outcome: u32) -> u64 {
    let out = xdpctl(
        fs,
        [
            "-j",
            "map",
            "lookup",
            &format!("{dir}/maps/stats"),
            &outcome.to_string(),
        ],
    )
    .ok()
    .json();
    out["value"]["packets"].as_u64().unwrap()
}

/// The firewall's `stats` outcomes the bench reads (xdpfw.h).
const PASSED: u32 = 0;
const DROP_BLOCKLIST: u32 = 1;
const DROP_UDP_PORT: u32 = 2;

const BLOCKED_PORT: u16 = 9;
const OPEN_PORT: u16 = 7777;

fn data_plane(sizes: &Sizes, rows: &mut Vec<Row>) {
    let fs = Bpffs::new();
    let pair = VethPair::new();
    let ns = pair.b.name();
    let dev = pair.dev_b.as_str();
    // NB: a veth only takes frames sent with XDP_TX (ndo_xdp_xmit) when
    // its peer has native XDP or GRO on; GRO on makes every receiver see
    // the flood, the generic-mode and nftables ones included.
    pair.b.exec(&["ethtool", "-K", dev, "gro", "on"]);
    // Spoofed sources have no route back: reverse-path filtering (off in a
    // new namespace, but said here) would drop them before delivery.
    for conf in ["all", "default", dev] {
        pair.b.exec(&[
            "sysctl",
            "-q",
            "-w",
            &format!("net.ipv4.conf.{conf}.rp_filter=0"),
        ]);
    }
    // The open port is open: passed packets end in a socket, not in an
    // ICMP port unreachable.
    let _socket = {
        let _inside = pair.b.enter();
        std::net::UdpSocket::bind(("0.0.0.0", OPEN_PORT)).expect("binding the open port")
    };

    let dir = tempfile::tempdir().unwrap();
    let (block, cidr) = (dir.path().join("block.txt"), dir.path().join("cidr.txt"));
    let mut text = String::new();
    for i in 0..65_536u32 {
        let [_, b, c, d] = i.to_be_bytes();
        writeln!(text, "172.{}.{c}.{d} 1", 16 + b).unwrap();
    }
    fs::write(&block, &text).unwrap();
    fs::write(&cidr, cidr_rules(10_000)).unwrap();

    // Programs: the floors and three firewalls, all dropping UDP to
    // BLOCKED_PORT: `fw` without source rules, `fwr` with 65,536 blocklist
    // entries and 10,000 CIDRs (none matching a flood's sources), and
    // `fwb` blocklisting `bad`.
    let bad = Ipv4Addr::new(203, 0, 113, 5);
    for (prog, pin) in [("xdp_drop", "bare"), ("xdp_pass", "pass")] {
        xdpctl(&fs, ["load", fixture(prog).to_str().unwrap(), "--pin", pin]).ok();
    }
    for pin in ["fw", "fwr", "fwb"] {
        xdpctl(&fs, ["load", "--pin", pin]).ok();
        let ports = format!("{pin}/maps/udp_ports");
        xdpctl(
            &fs,
            ["map", "update", &ports, &BLOCKED_PORT.to_string(), "1"],
        )
        .ok();
    }
    xdpctl(
        &fs,
        ["map", "update", "fwb/maps/blocklist", &bad.to_string(), "1"],
    )
    .ok();
    for (map, file) in [("fwr/maps/blocklist", &block), ("fwr/maps/cidr4", &cidr)] {
        xdpctl(
            &fs,
            ["map", "update", map, "--from-file", file.to_str().unwrap()],
        )
        .ok();
    }

    let attach = |pin: &'static str, mode: &'static str| {
        let fs = &fs;
        move || {
            let run = xdpctl(fs, ["attach", pin, dev, "--netns", ns, "--mode", mode]);
            if run.code == 0 {
                Ok(())
            } else {
                Err(run.stderr.trim().to_owned())
            }
        }
    };
    let detach = || {
        xdpctl(&fs, ["detach", dev, "--netns", ns]).ok();
    };
    let xdp_drops = || flood::ethtool_sum(&pair.b, dev, "xdp_drops");
    let delivered = || flood::snmp(&pair.b, "Ip", "InDelivers");
    let stat = |pin: &'static str, outcome: u32| {
        let fs = &fs;
        move || stat_packets(fs, pin, outcome)
    };
    let bare_drop = xdp_receiver(attach("bare", "native"), detach, xdp_drops);
    let bare_pass = xdp_receiver(attach("pass", "native"), detach, delivered);
    let fw_port = xdp_receiver(attach("fw", "native"), detach, stat("fw", DROP_UDP_PORT));
    let fwr_port = xdp_receiver(attach("fwr", "native"), detach, stat("fwr", DROP_UDP_PORT));
    let fw_blocklist = xdp_receiver(attach("fwb", "native"), detach, stat("fwb", DROP_BLOCKLIST));
    let fw_generic = xdp_receiver(
        attach("fwb", "generic"),
        detach,
        stat("fwb", DROP_BLOCKLIST),
    );
    // The firewall's passes are counted where the bare XDP_PASS's are: IP
    // delivered to UDP in the receiver's stack. Its own `passed` counter
    // is checked against that below.
    let fw_pass = xdp_receiver(attach("fw", "native"), detach, delivered);
    let fwr_pass = xdp_receiver(attach("fwr", "native"), detach, delivered);
    let nft = nft_receiver(&pair, dir.path(), &format!("udp dport {BLOCKED_PORT}"));
    let xdp_filter = xdp_filter_receiver(&pair, &bad);

    let mut bench = Bench {
        pair: &pair,
        generator: flood::Flood::new(),
        sizes,
    };
    let one = Ipv4Addr::new(10, 1, 0, 0);
    let port_floods = [
        ("one source", flood::Sources::one(one)),
        (
            "256 sources",
            flood::Sources::RoundRobin {
                base: one,
                count: 256,
            },
        ),
        (
            "65,536 sources",
            flood::Sources::RoundRobin {
                base: one,
                count: 65_536,
            },
        ),
        (
            "spoofed 2^24 sources",
            flood::Sources::Random {
                base: Ipv4Addr::new(10, 0, 0, 0),
                bits: 24,
            },
        ),
    ];
    let mpps = |r: &Rates| r.as_ref().map_or(f64::NAN, |r| median(r.clone()));
    for (i, (what, sources)) in port_floods.into_iter().enumerate() {
        let spoofed = i == port_floods.len() - 1;
        let spec = FloodSpec {
            what: format!("{what}, UDP to blocked port {BLOCKED_PORT}"),
            dport: BLOCKED_PORT,
            sources,
        };
        let mut receivers = vec![&bare_drop, &fw_port, &nft];
        if spoofed {
            receivers.push(&fwr_port);
        }
        let r = bench.race(&spec, &receivers);
        let (bare, fw, nft) = (
            r[0].clone().unwrap_or_default(),
            r[1].clone().unwrap_or_default(),
            r[2].clone().unwrap_or_default(),
        );
        let peer = format!("bare {:.2} / nft {:.2}", mpps(&r[0]), mpps(&r[2]));
        rows.push(Row {
            what: format!("veth Mpps, {}: bare XDP_DROP (floor)", spec.what),
            ours: format!("{:.2} Mpps", mpps(&r[0])),
            peer: "-".into(),
            ratio: "1.00x".into(),
            goal: "ceiling".into(),
            met: None,
        });
        let (to_bare, to_nft) = (ratio_of(&fw, &bare), ratio_of(&fw, &nft));
        rows.push(Row {
            what: format!("veth Mpps, {}: firewall, no source rules", spec.what),
            ours: format!("{:.2} Mpps", mpps(&r[1])),
            peer: peer.clone(),
            ratio: format!("{to_bare:.2}x bare, {to_nft:.2}x nft"),
            goal: if spoofed {
                ">= 0.6x bare, >= 2x nft".into()
            } else {
                "-".into()
            },
            met: spoofed.then_some(to_bare >= 0.6 && to_nft >= 2.0),
        });
        rows.push(Row {
            what: format!(
                "veth Mpps, {}: nftables netdev ingress `udp dport {BLOCKED_PORT} drop`",
                spec.what
            ),
            ours: format!("{:.2} Mpps", mpps(&r[2])),
            peer: format!("bare {:.2}", mpps(&r[0])),
            ratio: format!("{:.2}x bare", ratio_of(&nft, &bare)),
            goal: "-".into(),
            met: None,
        });
        if spoofed {
            let loaded = r[3].clone().unwrap_or_default();
            let to_empty = ratio_of(&loaded, &fw);
            rows.push(Row {
                what: format!(
                    "veth Mpps, {}: firewall + 65,536 blocklist + 10,000 CIDR",
                    spec.what
                ),
                ours: format!("{:.2} Mpps", mpps(&r[3])),
                peer: format!("no rules {:.2}", mpps(&r[1])),
                ratio: format!("{to_empty:.2}x no rules"),
                goal: ">= 0.9x no rules".into(),
                met: Some(to_empty >= 0.9),
            });
        }
    }

    // Passed: a spoofed flood to the open port, vs a bare XDP_PASS.
    let spec = FloodSpec {
        what: format!("spoofed 2^24 sources, UDP to open port {OPEN_PORT}"),
        dport: OPEN_PORT,
        sources: port_floods[3].1,
    };
    let passed_before = stat_packets(&fs, "fw", PASSED);
    let delivered_before = delivered();
    let r = bench.race(&spec, &[&bare_pass, &fw_pass, &fwr_pass]);
    let fw_passed = stat_packets(&fs, "fw", PASSED) - passed_before;
    let all_delivered = delivered() - delivered_before;
    // NB: the stack must deliver what XDP passed (right checksums, no
    // reverse-path drops), or these rows measure the stack's drops.
    assert!(
        fw_passed > 0 && all_delivered as f64 >= fw_passed as f64 * 0.95,
        "the receiver's stack delivered {all_delivered} packets in all runs, fewer than the \
         {fw_passed} the firewall alone passed: are the generator's checksums or rp_filter wrong?"
    );
    let (bare, fw) = (
        r[0].clone().unwrap_or_default(),
        r[1].clone().unwrap_or_default(),
    );
    rows.push(Row {
        what: format!("veth Mpps delivered, {}: bare XDP_PASS (floor)", spec.what),
        ours: format!("{:.2} Mpps", mpps(&r[0])),
        peer: "-".into(),
        ratio: "1.00x".into(),
        goal: "ceiling".into(),
        met: None,
    });
    let to_bare = ratio_of(&fw, &bare);
    rows.push(Row {
        what: format!("veth Mpps delivered, {}: firewall", spec.what),
        ours: format!("{:.2} Mpps", mpps(&r[1])),
        peer: format!("bare pass {:.2}", mpps(&r[0])),
        ratio: format!("{to_bare:.2}x bare pass"),
        goal: ">= 0.9x bare XDP_PASS".into(),
        met: Some(to_bare >= 0.9),
    });
    // Where the source rules are looked up for every packet: the flood
    // is passed, so each packet misses the blocklist and the CIDR index.
    let loaded = r[2].clone().unwrap_or_default();
    let to_empty = ratio_of(&loaded, &fw);
    rows.push(Row {
        what: format!(
            "veth Mpps delivered, {}: firewall + 65,536 blocklist + 10,000 CIDR",
            spec.what
        ),
        ours: format!("{:.2} Mpps", mpps(&r[2])),
        peer: format!("no rules {:.2}", mpps(&r[1])),
        ratio: format!("{to_empty:.2}x no rules"),
        goal: ">= 0.9x no rules".into(),
        met: Some(to_empty >= 0.9),
    });

    // One blocklisted source, native and generic, and xdp-filter.
    let spec = FloodSpec {
        what: format!("one blocklisted source {bad}"),
        // To the open port: the row is about the blocklist alone.
        dport: OPEN_PORT,
        sources: flood::Sources::one(bad),
    };
    let r = bench.race(
        &spec,
        &[&bare_drop, &fw_blocklist, &fw_generic, &xdp_filter],
    );
    let bare = r[0].clone().unwrap_or_default();
    rows.push(Row {
        what: format!("veth Mpps, {}: bare XDP_DROP (floor)", spec.what),
        ours: format!("{:.2} Mpps", mpps(&r[0])),
        peer: "-".into(),
        ratio: "1.00x".into(),
        goal: "ceiling".into(),
        met: None,
    });
    for (i, what, goal) in [
        (1, "firewall, native", Some(0.9)),
        (2, "firewall, generic mode", None),
        (3, "xdp-filter (Debian xdp-tools), native", None),
    ] {
        let row_what = format!("veth Mpps, {}: {what}", spec.what);
        match &r[i] {
            Some(v) => {
                let to_bare = ratio_of(v, &bare);
                rows.push(Row {
                    what: row_what,
                    ours: format!("{:.2} Mpps", mpps(&r[i])),
                    peer: format!("bare {:.2}", mpps(&r[0])),
                    ratio: format!("{to_bare:.2}x bare"),
                    goal: goal.map_or_else(|| "-".into(), |g| format!(">= {g}x bare")),
                    met: goal.map(|g| to_bare >= g),
                });
            }
            None => rows.push(Row {
                what: row_what,
                ours: "-".into(),
                peer: "did not run (see stderr)".into(),
                ratio: "-".into(),
                goal: "-".into(),
                met: None,
            }),
        }
    }
}

/// nftables on the netdev ingress hook of `pair.dev_b` (no XDP): drops
/// what `matches` with a counter; the table is added and deleted per run.
fn nft_receiver<'a>(pair: &'a VethPair, dir: &Path, matches: &str) -> Receiver<'a> {
    let rules = format!(
        "table netdev xdpctl_bench {{\n chain ingress {{\n  type filter hook ingress device \"{}\" priority 0;\n  {matches} counter drop\n }}\n}}\n",
        pair.dev_b
    );
    let file = dir.join("nft.conf");
    fs::write(&file, rules).unwrap();
    let file = file.display().to_string();
    Receiver {
        setup: Box::new(move || {
            pair.b.exec(&["nft", "-f", &file]);
            Ok(())
        }),
        teardown: Box::new(move || {
            pair.b
                .exec(&["nft", "delete", "table", "netdev", "xdpctl_bench"]);
        }),
        count: Box::new(move || {
            let (ok, out) =
                pair.b
                    .try_exec(&["nft", "-j", "list", "table", "netdev", "xdpctl_bench"]);
            if !ok {
                return 0;
            }
            let out: Value = serde_json::from_str(&out).unwrap();
            out["nftables"]
                .as_array()
                .unwrap()
                .iter()
                .filter_map(|e| e["rule"]["expr"].as_array())
                .flatten()
                .find_map(|x| x["counter"]["packets"].as_u64())
                .unwrap_or(0)
        }),
    }
}

/// xdp-filter denying `source`, in a private mount namespace with its own
/// bpffs at /sys/fs/bpf (libxdp pins there); counted by veth's
/// `xdp_drops`.
fn xdp_filter_receiver<'a>(pair: &'a VethPair, source: &Ipv4Addr) -> Receiver<'a> {
    let ns = pair.b.path();
    let load = format!(
        "xdp-filter load -m native {} && xdp-filter ip {source} -m src",
        pair.dev_b
    );
    Receiver {
        setup: Box::new(move || {
            if Command::new("xdp-filter").arg("--help").output().is_err() {
                return Err("xdp-filter is not installed".into());
            }
            // NB: the whole setup must happen in one mount namespace, since
            // libxdp keeps its state in the bpffs.
            let script = format!(
                "mount -t bpf bpf /sys/fs/bpf && nsenter --net={} sh -c '{load}'",
                ns.display()
            );
            let out = Command::new("unshare")
                .args(["--mount", "--propagation", "private", "sh", "-c", &script])
                .output()
                .map_err(|e| e.to_string())?;
            if out.status.success() {
                Ok(())
            } else {
                let err = String::from_utf8_lossy(&out.stderr);
                Err(format!(
                    "xdp-filter: {}",
                    err.lines().last().unwrap_or("failed").trim()
                ))
            }
        }),
        teardown: Box::new(move || {
            let _ = Command::new("ip")
                .args([
                    "-n",
                    pair.b.name(),
                    "link",
                    "set",
                    &pair.dev_b,
                    "xdp",
                    "off",
                ])
                .output();
        }),
        count: Box::new(move || flood::ethtool_sum(&pair.b, &pair.dev_b, "xdp_drops")),
    }
}

/// `net show` of one device, in a namespace with an attachment, against
/// `bpftool net show dev`: both commands started by this thread from
/// inside the namespace (not through nsenter, whose own start would be on
/// both sides of the ratio, nor with a hook between fork and exec, which
/// would fork this large process instead of spawning).
fn net_show_cost(fs: &Bpffs, sizes: &Sizes, rows: &mut Vec<Row>) {
    // The bpffs of a host: the device's program in a load, more loads beside.
    for pin in ["a0", "b0", "a1", "b1", "a2", "b2"] {
        if !fs.path().join(pin).exists() {
            xdpctl(
                fs,
                [
                    "load",
                    fixture("typed_maps").to_str().unwrap(),
                    "--pin",
                    pin,
                ],
            )
            .ok();
        }
    }
    let pair = VethPair::new();
    attach_generic(fs, "a0/typed", &pair);
    let dev = pair.dev_b.clone();
    let entered = pair.b.enter();
    // A short command: many runs, the two in turn.
    let (mut ours, mut theirs) = (Vec::new(), Vec::new());
    for _ in 0..sizes.cli_runs * 20 {
        ours.push(time_cmd(
            1,
            || {
                let mut c = Command::new(xdpctl_bin());
                c.args(["net", "show", &dev]).env("XDPCTL_BPFFS", fs.path());
                c
            },
            || {},
        ));
        theirs.push(time_cmd(
            1,
            || {
                let mut c = Command::new("bpftool");
                c.args(["net", "show", "dev", &dev]);
                c
            },
            || {},
        ));
    }
    drop(entered);
    let (o, t) = (median(ours), median(theirs));
    rows.push(time_ratio_row(
        "net show of one device, wall time (s)",
        o,
        t,
        "<= 1x bpftool's",
    ));
}

fn control_plane(sizes: &Sizes, rows: &mut Vec<Row>) {
    let fs = Bpffs::new();
    let dir = tempfile::tempdir().unwrap();
    let typed = fixture("typed_maps");
    let n = sizes.entries;
    let entries = (0..n).map(|i| {
        let [a, b, c, d] = (0x0a00_0000 + i).to_be_bytes();
        ((a, b, c, d), i)
    });
    let text_file = dir.path().join("entries.txt");
    let batch_file = dir.path().join("bpftool.batch");
    let mut text = String::new();
    for ((a, b, c, d), v) in entries.clone() {
        writeln!(text, "{a}.{b}.{c}.{d} {v}").unwrap();
    }
    fs::write(&text_file, &text).unwrap();

    // Bulk load: xdpctl --from-file vs bpftool batch of map update lines.
    let mut ours = Vec::new();
    let mut theirs = Vec::new();
    for run in 0..sizes.load_runs {
        let a = format!("a{run}");
        let b = format!("b{run}");
        xdpctl(&fs, ["load", typed.to_str().unwrap(), "--pin", &a]).ok();
        xdpctl(&fs, ["load", typed.to_str().unwrap(), "--pin", &b]).ok();
        let path_a = fs.path().join(&a).join("maps/big");
        let path_b = fs.path().join(&b).join("maps/big");
        let t = time_cmd(
            1,
            || {
                let mut c = Command::new(xdpctl_bin());
                c.args(["map", "update"])
                    .arg(&path_a)
                    .arg("--from-file")
                    .arg(&text_file);
                c
            },
            || {},
        );
        ours.push(t);
        text.clear();
        for ((a, b, c, d), v) in entries.clone() {
            let value = u64::from(v).to_le_bytes();
            writeln!(
                text,
                "map update pinned {} key {a} {b} {c} {d} value {} {} {} {} {} {} {} {}",
                path_b.display(),
                value[0],
                value[1],
                value[2],
                value[3],
                value[4],
                value[5],
                value[6],
                value[7]
            )
            .unwrap();
        }
        fs::write(&batch_file, &text).unwrap();
        let t = time_cmd(
            1,
            || {
                let mut c = Command::new("bpftool");
                c.args(["batch", "file"]).arg(&batch_file);
                c
            },
            || {},
        );
        theirs.push(t);
    }
    let (o, t) = (median(ours), median(theirs));
    rows.push(ratio_row(
        &format!("bulk load {n} entries (s)"),
        o,
        t,
        "s",
        ">= 10x faster",
        Some(t / o >= 10.0),
    ));

    // Dump: xdpctl map dump (table and JSON, to /dev/null) against the
    // floor, a raw BPF_MAP_LOOKUP_BATCH of every entry printing nothing,
    // run in turn; bpftool map dump for reference. Peak memory.
    let path = fs.path().join("a0/maps/big");
    let dump = |json: bool| {
        let path = &path;
        move || {
            let mut c = Command::new(xdpctl_bin());
            if json {
                c.arg("-j");
            }
            c.args(["map", "dump"]).arg(path);
            c
        }
    };
    let (mut floor, mut table, mut json) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..sizes.cli_runs.min(5) {
        floor.push(raw_batch_lookup(&path, 4, 8, n as usize));
        table.push(time_cmd(1, dump(false), || {}));
        json.push(time_cmd(1, dump(true), || {}));
    }
    let bpftool = time_cmd(
        sizes.cli_runs.min(3),
        || {
            let mut c = Command::new("bpftool");
            c.args(["map", "dump", "pinned"]).arg(&path);
            c
        },
        || {},
    );
    let f = median(floor.clone());
    rows.push(Row {
        what: format!("raw BPF_MAP_LOOKUP_BATCH of a {n}-entry hash, no output (s)"),
        ours: format!("{f:.3} s"),
        peer: "-".into(),
        ratio: "1.00x".into(),
        goal: "floor".into(),
        met: None,
    });
    for (what, times) in [("table", &table), ("-j", &json)] {
        let r = ratio_of(times, &floor);
        rows.push(Row {
            what: format!("xdpctl map dump of a {n}-entry hash, {what}, to /dev/null (s)"),
            ours: format!("{:.3} s", median(times.clone())),
            peer: format!("floor {f:.3} s / bpftool {bpftool:.3} s"),
            ratio: format!(
                "{r:.2}x floor, {:.1}x faster than bpftool",
                bpftool / median(times.clone())
            ),
            goal: "<= 1.15x floor".into(),
            met: Some(r <= 1.15),
        });
    }
    let mut c = Command::new(xdpctl_bin());
    c.args(["map", "dump"]).arg(&path);
    let rss = peak_rss(&c);
    rows.push(Row {
        what: format!("peak memory of xdpctl map dump, {n} entries"),
        ours: format!("{:.1} MB", rss as f64 / 1024.0),
        peer: "-".into(),
        ratio: "-".into(),
        goal: "< 50 MB".into(),
        met: Some(rss < 50 * 1024),
    });

    // guard's and top's interval: reading every per-source counter of the
    // per-CPU LRU map `pps`, against a raw batch lookup of it.
    xdpctl(&fs, ["load", "--pin", "fw"]).ok();
    xdpctl(
        &fs,
        [
            "map",
            "update",
            "fw/maps/pps",
            "--from-file",
            text_file.to_str().unwrap(),
        ],
    )
    .ok();
    let sources = xdpctl(&fs, ["-j", "map", "show", "fw/maps/pps"])
        .ok()
        .json()[0]["entries"]
        .as_u64()
        .unwrap_or(0);
    let cpus = aya::util::nr_cpus().expect("the number of possible CPUs");
    let pps = fs.path().join("fw/maps/pps");
    // NB: top sleeps its interval after each read, so one more sample
    // costs one interval plus one read: the difference of a run with 3
    // samples and one with 1, halved, less the interval, is one read
    // (with its rates and output), process start and setup cancelled out.
    let interval = 0.01;
    let top = |count: u32| {
        let fs = &fs;
        move || {
            let mut c = Command::new(xdpctl_bin());
            c.args(["top", "fw", "--interval", "10ms", "--count"])
                .arg(count.to_string())
                .env("XDPCTL_BPFFS", fs.path());
            c
        }
    };
    let (mut floor, mut ours) = (Vec::new(), Vec::new());
    for _ in 0..sizes.load_runs.max(3) {
        floor.push(raw_batch_lookup(&pps, 4, 8 * cpus, sources as usize));
        let one = time_cmd(1, top(1), || {});
        let three = time_cmd(1, top(3), || {});
        ours.push(((three - one) / 2.0 - interval).max(1e-6));
    }
    let r = ratio_of(&ours, &floor);
    rows.push(Row {
        what: format!(
            "one guard/top interval over {sources} tracked sources, per-CPU LRU `pps` (s)"
        ),
        ours: format!("{:.3} s", median(ours)),
        peer: format!("raw batch lookup {:.3} s", median(floor)),
        ratio: format!("{r:.2}x floor"),
        goal: "<= 1.2x floor".into(),
        met: Some(r <= 1.2),
    });

    net_show_cost(&fs, sizes, rows);

    // load of the built-in firewall vs bpftool prog loadall of the same object.
    let obj = dir.path().join("xdpfw.bpf.o");
    fs::write(&obj, xdp_progs::xdpfw::OBJECT).unwrap();
    let target = fs.path().join("loadbench");
    let cleanup = || {
        let _ = pinfs::remove_all(&target);
    };
    let o = time_cmd(
        sizes.load_runs,
        || {
            let mut c = Command::new(xdpctl_bin());
            c.arg("load")
                .arg(&obj)
                .arg("--pin")
                .arg(&target)
                .env("XDPCTL_BPFFS", fs.path());
            c
        },
        cleanup,
    );
    let t = time_cmd(
        sizes.load_runs,
        || {
            let mut c = Command::new("bpftool");
            c.args(["prog", "loadall"])
                .arg(&obj)
                .arg(&target)
                .arg("pinmaps")
                .arg(target.join("maps"));
            c
        },
        cleanup,
    );
    rows.push(time_ratio_row(
        "load + pin the firewall (s)",
        o,
        t,
        "<= 1x bpftool's",
    ));

    apply_policy(sizes, rows);
}

/// `BPF_MAP_UPDATE_BATCH` of `keys` (4 bytes each) with value 1 into the
/// map pinned at `path`, in process: the floor of writing a blocklist.
fn raw_batch_update(path: &std::path::Path, keys: &[u8]) -> f64 {
    use std::os::fd::AsRawFd;
    let fd = pinfs::obj_get(path).expect("opening the map");
    let n = keys.len() / 4;
    let values = vec![1u8; n];
    let start = Instant::now();
    let mut i = 0;
    while i < n {
        let c = 8192.min(n - i);
        let mut attr = xdpctl_tests::zeroed_attr();
        attr.batch.keys = keys[i * 4..].as_ptr() as u64;
        attr.batch.values = values[i..].as_ptr() as u64;
        attr.batch.count = c as u32;
        attr.batch.map_fd = fd.as_raw_fd() as u32;
        // SAFETY: keys and values hold `c` entries from `i` on, and outlive
        // the call.
        unsafe {
            xdpctl_tests::raw_bpf(aya_obj::generated::bpf_cmd::BPF_MAP_UPDATE_BATCH, &mut attr)
        }
        .expect("BPF_MAP_UPDATE_BATCH");
        i += c;
    }
    secs(start.elapsed())
}

/// `BPF_MAP_LOOKUP_BATCH` of every entry of the map pinned at `path`
/// (`key`- and `value`-byte entries, `value` being the whole per-CPU row
/// for a per-CPU map), in process, looking at nothing: the floor of
/// reading a map. Panics unless it saw `expect` entries.
fn raw_batch_lookup(path: &Path, key: usize, value: usize, expect: usize) -> f64 {
    use std::os::fd::AsRawFd;
    let fd = pinfs::obj_get(path).expect("opening the map");
    let mut count = 16_384usize;
    let mut keys = vec![0u8; key * count];
    let mut values = vec![0u8; value * count];
    let (mut token, mut next) = (vec![0u8; key.max(8)], vec![0u8; key.max(8)]);
    let (mut seen, mut started) = (0, false);
    let start = Instant::now();
    loop {
        let mut attr = xdpctl_tests::zeroed_attr();
        attr.batch.in_batch = if started { token.as_ptr() as u64 } else { 0 };
        attr.batch.out_batch = next.as_mut_ptr() as u64;
        attr.batch.keys = keys.as_mut_ptr() as u64;
        attr.batch.values = values.as_mut_ptr() as u64;
        attr.batch.count = count as u32;
        attr.batch.map_fd = fd.as_raw_fd() as u32;
        // SAFETY: keys and values hold `count` entries, the cursors a key
        // and at least 8 bytes; all outlive the call.
        let result = unsafe {
            xdpctl_tests::raw_bpf(aya_obj::generated::bpf_cmd::BPF_MAP_LOOKUP_BATCH, &mut attr)
        };
        // SAFETY: the kernel wrote back how many entries it filled.
        seen += unsafe { attr.batch.count } as usize;
        match result {
            Ok(_) => {}
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => break,
            // A bucket larger than the batch: retry with room.
            Err(e) if e.raw_os_error() == Some(libc::ENOSPC) => {
                count *= 2;
                keys.resize(key * count, 0);
                values.resize(value * count, 0);
                continue;
            }
            Err(e) => panic!("BPF_MAP_LOOKUP_BATCH of {}: {e}", path.display()),
        }
        std::mem::swap(&mut token, &mut next);
        started = true;
    }
    let took = secs(start.elapsed());
    assert_eq!(seen, expect, "entries read from {}", path.display());
    took
}

/// `apply -f` of a policy with N blocklist entries, against the raw batch
/// update of the same entries (measured in the same run), and a change of
/// N/1000 of them, which must write only those.
fn apply_policy(sizes: &Sizes, rows: &mut Vec<Row>) {
    let n = sizes.entries as usize;
    let fs = Bpffs::new();
    let dir = tempfile::tempdir().unwrap();
    let room = (n.next_power_of_two()).max(65_536).to_string();
    let ips: Vec<[u8; 4]> = (0..n as u32)
        .map(|i| (0x0b00_0000u32 + i * 7).to_be_bytes())
        .collect();
    let mut keys = Vec::with_capacity(n * 4);
    for ip in &ips {
        keys.extend(ip);
    }
    // The list in a feed the policy names, as operators keep them.
    let write_policy = |ips: &[[u8; 4]]| {
        let mut feed = String::with_capacity(ips.len() * 16);
        for [a, b, c, d] in ips {
            writeln!(feed, "{a}.{b}.{c}.{d}").unwrap();
        }
        fs::write(dir.path().join("blocked.txt"), feed).unwrap();
        let text = format!(
            "version: 1\nload:\n  pin: pol\n  max_entries:\n    blocklist: {room}\nrules:\n  \
             blocklist_files: [blocked.txt]\n"
        );
        let path = dir.path().join("policy.yaml");
        fs::write(&path, text).unwrap();
        path
    };
    let policy = write_policy(&ips);
    let (mut ours, mut floor) = (Vec::new(), Vec::new());
    for _ in 0..sizes.load_runs {
        xdpctl(
            &fs,
            [
                "load",
                "--pin",
                "pol",
                "--max-entries",
                &format!("blocklist={room}"),
            ],
        )
        .ok();
        xdpctl(
            &fs,
            [
                "load",
                "--pin",
                "raw",
                "--max-entries",
                &format!("blocklist={room}"),
            ],
        )
        .ok();
        ours.push(time_cmd(
            1,
            || {
                let mut c = Command::new(xdpctl_bin());
                c.args(["apply", "-f"])
                    .arg(&policy)
                    .env("XDPCTL_BPFFS", fs.path())
                    .stdout(Stdio::null());
                c
            },
            || {},
        ));
        floor.push(raw_batch_update(
            &fs.path().join("raw/maps/blocklist"),
            &keys,
        ));
        xdpctl(&fs, ["unload", "pol"]).ok();
        xdpctl(&fs, ["unload", "raw"]).ok();
    }
    let (o, f) = (median(ours), median(floor));
    rows.push(Row {
        what: format!("apply a policy of {n} blocklist entries (s)"),
        ours: format!("{o:.3}"),
        peer: format!("raw batch {f:.3}"),
        ratio: format!("{:.2}x floor", o / f),
        goal: "<= 2x raw batch".into(),
        met: Some(o / f <= 2.0),
    });
    // A change of n/1000 entries writes only those.
    xdpctl(&fs, ["apply", "-f", policy.to_str().unwrap()]).ok();
    let change = (n / 1000).max(1);
    let mut edited = ips.clone();
    for ip in edited.iter_mut().take(change) {
        ip[0] = 12;
    }
    let policy = write_policy(&edited);
    let start = Instant::now();
    let plan = xdpctl(&fs, ["-j", "apply", "-f", policy.to_str().unwrap()])
        .ok()
        .json();
    let took = secs(start.elapsed());
    let written = plan["changes"].as_u64().unwrap_or(0) as usize;
    rows.push(Row {
        what: format!("apply: {change} of {n} entries changed (s)"),
        ours: format!("{took:.3}"),
        peer: "-".into(),
        ratio: format!("{written} writes"),
        goal: format!("writes only the {change} changed (+{change} -{change})"),
        met: Some(written == 2 * change),
    });
}

fn render(rows: &[Row]) -> String {
    let headers = ["what", "xdpctl", "peer", "ratio", "goal", "met"];
    let cells: Vec<[String; 6]> = rows
        .iter()
        .map(|r| {
            [
                r.what.clone(),
                r.ours.clone(),
                r.peer.clone(),
                r.ratio.clone(),
                r.goal.clone(),
                match r.met {
                    Some(true) => "yes".into(),
                    Some(false) => "NO".into(),
                    None => "-".into(),
                },
            ]
        })
        .collect();
    let mut out = format!("| {} |\n|{}\n", headers.join(" | "), "---|".repeat(6));
    for c in cells {
        out.push_str(&format!("| {} |\n", c.join(" | ")));
    }
    out
}

fn machine() -> String {
    let kernel = fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let cpu = fs::read_to_string("/proc/cpuinfo")
        .unwrap_or_default()
        .lines()
        .find_map(|l| {
            l.strip_prefix("model name")
                .map(|v| v.trim_start_matches([' ', '\t', ':']).to_owned())
        })
        .unwrap_or_else(|| "unknown".into());
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let bpftool = Command::new("bpftool").arg("version").output().map_or_else(
        |_| "not installed".into(),
        |o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .next()
                .unwrap_or("")
                .to_owned()
        },
    );
    format!("kernel {}, {cores} x {cpu}, {bpftool}", kernel.trim())
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let smoke = args.iter().any(|a| a == "--smoke");
    if !smoke {
        // The figures are of default loads (the smoke test only checks the
        // harness runs, with the tests' small flow tables).
        xdpctl_tests::use_default_sizes();
    }
    let out = args
        .iter()
        .position(|a| a == "--out")
        .and_then(|i| args.get(i + 1))
        .map(PathBuf::from);
    // One section only, for whoever works on it: test-run, flood,
    // rate-limit, syn-cookie, data-plane, control-plane, or net-show (the control plane's `net
    // show` row alone).
    let only = args
        .iter()
        .position(|a| a == "--only")
        .and_then(|i| args.get(i + 1))
        .map(String::as_str);
    if !nix::unistd::geteuid().is_root() {
        eprintln!("xdpctl-bench: needs root (it creates namespaces, a bpffs and loads programs)");
        std::process::exit(1);
    }
    let sizes = if smoke {
        Sizes {
            flood: 50_000,
            runs: 1,
            test_run_repeat: 1000,
            entries: 5_000,
            cli_runs: 2,
            load_runs: 1,
        }
    } else {
        Sizes {
            flood: std::env::var("XDPCTL_BENCH_FLOOD")
                .ok()
                .and_then(|r| r.parse().ok())
                .unwrap_or(1_000_000),
            // XDPCTL_BENCH_RUNS: more rounds where the machine is noisy.
            runs: std::env::var("XDPCTL_BENCH_RUNS")
                .ok()
                .and_then(|r| r.parse().ok())
                .unwrap_or(9),
            test_run_repeat: 2_000_000,
            entries: 1_000_000,
            cli_runs: 10,
            load_runs: 3,
        }
    };
    let start = Instant::now();
    let mut rows = Vec::new();
    if only.is_none_or(|o| o == "test-run") {
        eprintln!("xdpctl-bench: per-packet cost (BPF_PROG_TEST_RUN)");
        per_packet_cost(&Bpffs::new(), &sizes, &mut rows);
    }
    if only.is_none_or(|o| o == "flood") {
        eprintln!("xdpctl-bench: data plane (test-run floods through a tail call)");
        floods::flood_cost(&sizes, &mut rows);
    }
    if only.is_none_or(|o| o == "rate-limit") {
        eprintln!("xdpctl-bench: rate limits (test-run floods)");
        ratelimit::rate_limit_rows(&sizes, &mut rows);
    }
    if only.is_none_or(|o| o == "syn-cookie") {
        eprintln!("xdpctl-bench: SYN cookies (AF_PACKET floods between namespaces)");
        syncookie::syn_cookie_rows(&sizes, &mut rows);
    }
    if only.is_none_or(|o| o == "data-plane") {
        eprintln!("xdpctl-bench: data plane (veth floods with live frames)");
        match flood::live_frames_allowed() {
            Ok(()) => data_plane(&sizes, &mut rows),
            Err(why) => {
                eprintln!("xdpctl-bench:   not run: {why}");
                rows.push(Row {
                    what: "veth Mpps (live frames)".into(),
                    ours: "-".into(),
                    peer: format!("did not run: this kernel refuses live frames ({why})"),
                    ratio: "-".into(),
                    goal: "-".into(),
                    met: None,
                });
            }
        }
    }
    if only == Some("net-show") {
        // The control plane's `net show` row alone, for whoever works on it.
        net_show_cost(&Bpffs::new(), &sizes, &mut rows);
    }
    if only.is_none_or(|o| o == "control-plane") {
        eprintln!("xdpctl-bench: control plane (against raw batch floors and bpftool)");
        control_plane(&sizes, &mut rows);
    }
    let table = render(&rows);
    print!("{table}");
    let took = start.elapsed();
    eprintln!("xdpctl-bench: done in {:.0} s", took.as_secs_f64());
    if let Some(path) = out {
        let date = Command::new("date")
            .arg("-u")
            .arg("+%Y-%m-%d")
            .output()
            .map_or_else(
                |_| "unknown".into(),
                |o| String::from_utf8_lossy(&o.stdout).trim().to_owned(),
            );
        let doc = format!(
            "# Benchmarks\n\nMeasured {date} on {} by `make bench` in {:.0} s. Ratios compare with the\n\
             floor or peer measured in the same runs; absolute figures depend on the machine.\n\n{table}\n\
             ## How to reproduce\n\n```sh\nmake bench        # as root: builds in release mode, runs tests/src/bin/xdpctl-bench.rs\n```\n\n\
             - Floods (rows `flood ns/pkt`, every kernel): {flood} 64-byte frames per run, each through\n  \
             `floodrun` (tests/bpf/trafficgen.bpf.c), which rewrites the IPv4 source (one address, or 10.0.0.0/8 with\n  \
             24 random bits: spoofed) and tail-calls the program under test from a one-slot program array, run with\n  \
             plain BPF_PROG_TEST_RUN and repeats; ns per packet is the kernel's own average (whole ns, + 0.5), the\n  \
             generator's cost on both sides of every ratio. Contenders: the seed article's `xdp_drop_udp` and\n  \
             `xdp_count_drop` (tests/bpf/seed_*.bpf.c), a bare XDP_DROP/XDP_PASS, xdp-filter's own objects from\n  \
             Debian's xdp-tools (loaded and configured directly: libxdp's dispatcher needs `freplace`, which a\n  \
             locked-down kernel refuses) and the firewall, default loads; `firewall + rules` holds 65,536 blocklist\n  \
             entries and 10,000 prefixes of random /16, /20, /22 and /24 in `cidr4`, none matching. Every contender\n  \
             of a row runs in turn in each of {runs} rounds on one CPU; a ratio is the median of per-round ratios.\n\
             - Per-packet cost: `xdpctl prog run` (BPF_PROG_TEST_RUN) with {repeat} repeats, median of {runs}, all on\n  \
             one CPU; the firewall's\n  \
             blocked path is a blocklisted source, the CIDR path a source in a /24 of `cidr4`, the passed path UDP from\n  \
             a source no rule matches; the 10,000-CIDR row runs that packet through a firewall with 10,000 /24s in\n  \
             `cidr4` and one without, in turn; the IPv6 row the same with 10,000 /48s, /56s, /64s and /128s in `cidr6`.\n\
             - Data plane on veth, only where the kernel allows live frames: two network namespaces joined by a veth pair; {flood} 64-byte UDP frames per run sent from one\n  \
             side by an XDP_TX program (tests/bpf/trafficgen.bpf.c) run with BPF_PROG_TEST_RUN and\n  \
             BPF_F_TEST_XDP_LIVE_FRAMES. The generator rewrites each frame's IPv4 source (and the header checksum):\n  \
             one address, 256 or 65,536 in turn, or 10.0.0.0/8 with 24 random bits (spoofed), set through its config\n  \
             map between runs. Floods go to UDP port {BLOCKED_PORT}, which the firewall (`udp_ports`) and nftables\n  \
             (`udp dport {BLOCKED_PORT} counter drop` on netdev ingress) drop, or to the open port {OPEN_PORT}, bound by a\n  \
             socket in the receiver (rp_filter off). Mpps is what the receiver counted over the sender's time: veth\n  \
             `xdp_drops` for the bare XDP_DROP and xdp-filter, the firewall's `stats` outcome, the nftables rule counter;\n  \
             passed packets are IP deliveries in the receiver's namespace (`InDelivers`) for the bare XDP_PASS and the\n  \
             firewall alike. The floors and the contenders under a flood take turns in each of {runs} runs, each\n  \
             attached natively (unless said) just for its run; Mpps is the median over runs, a ratio the median of the\n  \
             per-run ratios (the machine's speed may differ from run to run, and both of a pair share it, so a\n  \
             ratio of the two medians can differ). The firewall with rules has 65,536 blocklist entries and\n  \
             10,000 CIDRs, none matching. The generator runs pinned to the last CPU, and veth runs the receiver's\n  \
             NAPI on the sending CPU: a rate is the pair's, and a drop ratio to the bare program includes the\n  \
             generator's own cost on both sides.\n\
             - Control plane: {entries} entries; bpftool is Debian's; wall time of the whole process, median of the runs;\n  \
             the dump floor is a raw BPF_MAP_LOOKUP_BATCH (16,384 a call) of the same hash in process with no output,\n  \
             the top/guard floor the same of the per-CPU LRU map `pps`; one top interval is half the difference of\n  \
             `xdpctl top --interval 10ms` with 3 samples and with 1, less the interval; peak memory from the maximum\n  \
             resident set size (`/usr/bin/time`). `--only test-run|flood|rate-limit|syn-cookie|data-plane|control-plane|net-show` runs one section.\n\
             - Rate limits: the same floods from one source under a per-source limit of half (or twice) the rate\n  \
             the flood runs at, alone and while another thread floods 10.0.0.0/8 with 24 random source bits on\n  \
             the other CPU (over a million sources, each under a per-source limit, churning `rate_state`); what\n  \
             passed (sent less `drop_rate`) against the burst plus the limit over the run's wall time.\n\
             - SYN cookies: spoofed SYNs (58-byte frames) sent with AF_PACKET from one namespace to a listener in\n  \
             the other (net.ipv4.tcp_syncookies=2), sender pinned to the last CPU, where veth also delivers them; the\n  \
             CPU's busy time (/proc/stat) per SYN for a bare XDP_DROP (the delivery), the kernel's own cookies\n  \
             (TcpExt SyncookiesSent) and the firewall's (`syn_cookie`, native XDP_TX), each less the delivery; what\n  \
             comes back to the sender is dropped by XDP there. Then 1,000 connections from the sender's namespace\n  \
             (1 s timeout each) while the same flood runs, protection on and off.\n",
            machine(),
            took.as_secs_f64(),
            repeat = sizes.test_run_repeat,
            flood = sizes.flood,
            runs = sizes.runs,
            entries = sizes.entries
        );
        fs::write(&path, doc).unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
        eprintln!("xdpctl-bench: wrote {}", path.display());
    }
}
