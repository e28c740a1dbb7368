//! The data plane, measured on any kernel: floods of 64-byte frames run
//! through each program with `BPF_PROG_TEST_RUN` (flood::TestRunFlood: a
//! generator rewrites the source and tail-calls the program under test),
//! ns per packet, the generator's few ns on both sides of every ratio.
//!
//! Every contender of a row runs in turn in each of `runs` rounds, on one
//! CPU; a ratio is the median of the per-round ratios.

use std::{fmt::Write as _, fs, net::Ipv4Addr, path::Path};

use xdpctl_tests::{Bpffs, fixture, flood, xdpctl};

use super::{BLOCKED_PORT, OPEN_PORT, Row, Sizes, cidr6_rules, median, ratio_of};

/// The blocklisted source of the blocklist rows.
const BAD: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 5);

/// xdp-tools' xdp-filter objects (Debian's xdp-tools), loaded and
/// configured by hand: libxdp's dispatcher needs `freplace`, which a
/// locked-down kernel refuses, so xdp-filter's own loader cannot run here.
const XDP_FILTER_DIR: &str = "/usr/lib/x86_64-linux-gnu/bpf";

/// A contender: a pinned program and what it is called in the table.
struct Prog {
    pin: &'static str,
    what: &'static str,
}

/// One row's contenders measured in turn: per contender, ns per packet of
/// each round.
fn race(
    fs: &Bpffs,
    generator: &mut flood::TestRunFlood,
    sizes: &Sizes,
    frame: &[u8],
    sources: flood::Sources,
    progs: &[&Prog],
    want: u32,
) -> Vec<Vec<f64>> {
    let mut ns = vec![Vec::new(); progs.len()];
    for _ in 0..sizes.runs.max(3) {
        for (p, out) in progs.iter().zip(ns.iter_mut()) {
            generator
                .target(&fs.path().join(p.pin))
                .unwrap_or_else(|e| panic!("{}: {e}", p.what));
            let judged = generator.run(frame, sources, sizes.flood);
            assert_eq!(
                judged.verdict, want,
                "{} gave verdict {} to the flood, not {want}",
                p.what, judged.verdict
            );
            if std::env::var_os("XDPCTL_BENCH_DEBUG").is_some() {
                eprintln!(
                    "{}: {:.1} ns (wall {:.1})",
                    p.what, judged.ns, judged.wall_ns
                );
            }
            out.push(judged.ns);
        }
    }
    ns
}

fn ns_row(what: String, ns: &[f64], against: Option<(&str, &[f64])>, goal: Option<f64>) -> Row {
    let v = median(ns.to_vec());
    match against {
        None => Row {
            what,
            ours: format!("{v:.1} ns"),
            peer: "-".into(),
            ratio: "1.00x".into(),
            goal: "floor".into(),
            met: None,
        },
        Some((name, other)) => {
            let r = ratio_of(ns, other);
            Row {
                what,
                ours: format!("{v:.1} ns"),
                peer: format!("{:.1} ns {name}", median(other.to_vec())),
                ratio: format!("{r:.2}x"),
                goal: goal.map_or_else(|| "-".into(), |g| format!("<= {g}x")),
                met: goal.map(|g| r <= g),
            }
        }
    }
}

/// A 64-byte IPv6/UDP frame from `src` to 2001:db8::2.
fn udp6_64(src: [u8; 16], dport: u16) -> Vec<u8> {
    let mut f = vec![2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 0x86, 0xdd];
    f.extend_from_slice(&[0x60, 0, 0, 0, 0, 10, 17, 64]);
    f.extend_from_slice(&src);
    let mut dst = [0u8; 16];
    dst[..4].copy_from_slice(&[0x20, 0x01, 0x0d, 0xb8]);
    dst[15] = 2;
    f.extend_from_slice(&dst);
    f.extend_from_slice(&[0x30, 0x39]);
    f.extend_from_slice(&dport.to_be_bytes());
    f.extend_from_slice(&[0, 10, 0, 0, 0, 0]);
    f.resize(64, 0);
    f
}

/// `n` IPv4 prefixes of random length /16, /20, /22 or /24 at random
/// addresses (a fixed seed), none inside 10.0.0.0/8 (the floods' sources)
/// or 203.0.113.0/24; one `PREFIX 1` a line.
pub fn mixed_cidr_rules(n: u32) -> String {
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let mut seen = std::collections::HashSet::new();
    let mut text = String::new();
    while seen.len() < n as usize {
        let r = next();
        let len = [16u32, 20, 22, 24][(r & 3) as usize];
        let addr = ((r >> 32) as u32) & (!0u32 << (32 - len));
        let first = addr >> 24;
        if first == 10 || first == 0 || first >= 224 || addr >> 8 == 0x00cb_0071 {
            continue;
        }
        if seen.insert((addr, len)) {
            writeln!(text, "{}/{len} 1", Ipv4Addr::from(addr)).unwrap();
        }
    }
    text
}

fn update_from_file(fs: &Bpffs, map: &str, dir: &Path, name: &str, text: &str) {
    let file = dir.join(name);
    fs::write(&file, text).unwrap();
    xdpctl(
        fs,
        ["map", "update", map, "--from-file", file.to_str().unwrap()],
    )
    .ok();
}

/// Loads an xdp-filter object under `pin` (its maps under `pin`/maps).
/// None (with why) if xdp-tools is not installed.
fn load_xdp_filter(fs: &Bpffs, variant: &str, pin: &str) -> Result<(), String> {
    let obj = Path::new(XDP_FILTER_DIR).join(format!("xdpfilt_{variant}.o"));
    if !obj.exists() {
        return Err(format!(
            "{} is missing (Debian package xdp-tools)",
            obj.display()
        ));
    }
    let run = xdpctl(fs, ["load", obj.to_str().unwrap(), "--pin", pin]);
    if run.code != 0 {
        return Err(run.stderr.trim().to_owned());
    }
    Ok(())
}

/// `bpftool map update` of a 4-byte key and a u64 value (every CPU).
fn bpftool_update(fs: &Bpffs, map: &str, key: &[u8; 4], value: u64) -> Result<(), String> {
    let hex = |b: &[u8]| b.iter().map(|b| format!("0x{b:02x}")).collect::<Vec<_>>();
    let out = std::process::Command::new("bpftool")
        .args(["map", "update", "pinned"])
        .arg(fs.path().join(map))
        .arg("key")
        .args(hex(key))
        .arg("value")
        .args(hex(&value.to_ne_bytes()))
        .output()
        .map_err(|e| format!("bpftool: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).trim().to_owned())
    }
}

pub fn flood_cost(sizes: &Sizes, rows: &mut Vec<Row>) {
    let fs = Bpffs::new();
    let dir = tempfile::tempdir().unwrap();
    // Every round on one CPU: two CPUs of different load are incomparable.
    let _pinned = flood::Pinned::last_cpu();
    for (stem, pin) in [
        ("xdp_drop", "bare"),
        ("xdp_pass", "pass"),
        ("seed_drop_udp", "seed_udp"),
        ("seed_count_drop", "seed_count"),
    ] {
        xdpctl(&fs, ["load", fixture(stem).to_str().unwrap(), "--pin", pin]).ok();
    }
    // Firewalls, default loads: `fw` drops UDP to BLOCKED_PORT and holds
    // no other rule; `fwr` the same with 65,536 blocklist entries and
    // 10,000 mixed-length prefixes (none matching a flood's source);
    // `fwb` blocklists BAD; `fw0` holds no rule at all; `fw6` 10,000
    // IPv6 prefixes.
    // XDPCTL_BENCH_FW_OBJECT: a candidate firewall object (built from a
    // changed xdpfw.bpf.c) measured in place of the built-in one.
    let candidate = std::env::var("XDPCTL_BENCH_FW_OBJECT").ok();
    for pin in ["fw", "fwr", "fwb", "fw0", "fw6"] {
        match &candidate {
            Some(obj) => xdpctl(&fs, ["load", obj, "--pin", pin]).ok(),
            None => xdpctl(&fs, ["load", "--pin", pin]).ok(),
        };
    }
    // XDPCTL_BENCH_AB: candidate objects (comma-separated, built from a
    // changed xdpfw.bpf.c) raced against the built-in firewall in the
    // same rounds (sections 1 to 3), for A/B work.
    let ab: Vec<String> = std::env::var("XDPCTL_BENCH_AB")
        .map(|v| v.split(',').map(str::to_owned).collect())
        .unwrap_or_default();
    let leak = |s: String| -> &'static str { Box::leak(s.into_boxed_str()) };
    let mut ab_fw = Vec::new();
    let mut ab_fwb = Vec::new();
    let mut ab_fw0 = Vec::new();
    for (i, obj) in ab.iter().enumerate() {
        let what = leak(format!("candidate {} ({obj})", i + 1));
        for (kind, list) in [
            ("fw", &mut ab_fw),
            ("fwb", &mut ab_fwb),
            ("fw0", &mut ab_fw0),
        ] {
            let dir = format!("ab{kind}{i}");
            xdpctl(&fs, ["load", obj, "--pin", &dir]).ok();
            list.push(Prog {
                pin: leak(format!("{dir}/xdp_fw")),
                what,
            });
        }
        let ports = format!("abfw{i}/maps/udp_ports");
        xdpctl(
            &fs,
            ["map", "update", &ports, &BLOCKED_PORT.to_string(), "1"],
        )
        .ok();
        let block = format!("abfwb{i}/maps/blocklist");
        xdpctl(&fs, ["map", "update", &block, &BAD.to_string(), "1"]).ok();
    }
    for pin in ["fw", "fwr"] {
        let ports = format!("{pin}/maps/udp_ports");
        xdpctl(
            &fs,
            ["map", "update", &ports, &BLOCKED_PORT.to_string(), "1"],
        )
        .ok();
    }
    xdpctl(
        &fs,
        ["map", "update", "fwb/maps/blocklist", &BAD.to_string(), "1"],
    )
    .ok();
    let mut block = String::new();
    for i in 0..65_536u32 {
        let [_, b, c, d] = i.to_be_bytes();
        writeln!(block, "172.{}.{c}.{d} 1", 16 + b).unwrap();
    }
    update_from_file(&fs, "fwr/maps/blocklist", dir.path(), "block.txt", &block);
    let mixed = mixed_cidr_rules(10_000);
    update_from_file(&fs, "fwr/maps/cidr4", dir.path(), "cidr.txt", &mixed);
    update_from_file(
        &fs,
        "fw6/maps/cidr6",
        dir.path(),
        "cidr6.txt",
        &cidr6_rules(10_000),
    );

    // xdp-filter doing the same jobs: dropping UDP to BLOCKED_PORT and BAD
    // as a source. As `xdp-filter load` runs it (all features: the
    // program `xdp-filter port`/`ip` then configure), and each job's
    // single-feature build (`xdp-filter load -f udp` or `-f ipv4`), which
    // compiles out everything else: that one is a floor of its own, like
    // the seed's single-purpose program. Their maps are per-CPU: bpftool
    // writes a value to every CPU, as xdp-filter does.
    // filter_ports: keyed by the port as the packet holds it (a __be16 in
    // a u32), the flags DST | UDP (xdp-tools' common_kern_user.h);
    // filter_ipv4: the address, the flag SRC.
    let [hi, lo] = BLOCKED_PORT.to_be_bytes();
    let port_key = [hi, lo, 0, 0];
    let xf_all = load_xdp_filter(&fs, "alw_all", "xf_all").and_then(|()| {
        bpftool_update(&fs, "xf_all/maps/filter_ports", &port_key, 10)?;
        bpftool_update(&fs, "xf_all/maps/filter_ipv4", &BAD.octets(), 1)
    });
    let xf_port = load_xdp_filter(&fs, "alw_udp", "xf_udp")
        .and_then(|()| bpftool_update(&fs, "xf_udp/maps/filter_ports", &port_key, 10));
    let xf_ip = load_xdp_filter(&fs, "alw_ip", "xf_ip")
        .and_then(|()| bpftool_update(&fs, "xf_ip/maps/filter_ipv4", &BAD.octets(), 1));

    let mut generator = flood::TestRunFlood::new();
    let frame = |dport| flood::udp64([2; 6], [4; 6], [10, 1, 0, 0], [10, 250, 0, 2], dport);
    let spoofed = flood::Sources::Random {
        base: Ipv4Addr::new(10, 0, 0, 0),
        bits: 24,
    };
    let one = flood::Sources::one(Ipv4Addr::new(10, 1, 0, 0));
    let (drop, pass) = (1, 2);
    let p = |pin, what| Prog { pin, what };
    let (bare, bare_pass) = (
        p("bare/xdp_drop", "bare XDP_DROP"),
        p("pass/xdp_pass", "bare XDP_PASS"),
    );
    let seed_udp = p("seed_udp/seed_drop_udp", "the seed's xdp_drop_udp");
    let seed_count = p("seed_count/seed_count_drop", "the seed's xdp_count_drop");
    let (fw, fwr, fwb, fw0, fw6) = (
        p("fw/xdp_fw", "firewall"),
        p(
            "fwr/xdp_fw",
            "firewall + 65,536 blocklist + 10,000 mixed CIDR",
        ),
        p("fwb/xdp_fw", "firewall"),
        p("fw0/xdp_fw", "firewall"),
        p("fw6/xdp_fw", "firewall + 10,000 CIDR6"),
    );
    let (xf_all_p, xf_udp, xf_ip_p) = (
        p(
            "xf_all/xdpfilt_alw_all",
            "xdp-filter as loaded by default (xdpfilt_alw_all)",
        ),
        p(
            "xf_udp/xdpfilt_alw_udp",
            "xdp-filter built for UDP ports only (xdpfilt_alw_udp)",
        ),
        p(
            "xf_ip/xdpfilt_alw_ip",
            "xdp-filter built for IP addresses only (xdpfilt_alw_ip)",
        ),
    );

    // The generator alone, as near as it gets: a bare XDP_DROP behind it.
    if wanted(1) {
        // 1. Spoofed flood to the dropped port, that rule only.
        let what =
            format!("flood ns/pkt, spoofed 2^24 sources, UDP to dropped port {BLOCKED_PORT}");
        let mut progs = vec![&seed_udp, &bare, &fw, &fwr];
        if xf_all.is_ok() {
            progs.push(&xf_all_p);
        }
        if xf_port.is_ok() {
            progs.push(&xf_udp);
        }
        progs.extend(&ab_fw);
        let ns = race(
            &fs,
            &mut generator,
            sizes,
            &frame(BLOCKED_PORT),
            spoofed,
            &progs,
            drop,
        );
        rows.push(ns_row(
            format!("{what}: {} (floor)", seed_udp.what),
            &ns[0],
            None,
            None,
        ));
        rows.push(ns_row(
            format!("{what}: {}", bare.what),
            &ns[1],
            Some(("seed", &ns[0])),
            None,
        ));
        rows.push(ns_row(
            format!("{what}: firewall, that rule only"),
            &ns[2],
            Some(("seed", &ns[0])),
            Some(1.3),
        ));
        rows.push(ns_row(
            format!("{what}: {}", fwr.what),
            &ns[3],
            Some(("that rule only", &ns[2])),
            Some(1.2),
        ));
        let mut next = 4;
        peer_rows(
            rows, &what, &xf_all, &xf_all_p, &ns, &mut next, &ns[2], true,
        );
        peer_rows(
            rows, &what, &xf_port, &xf_udp, &ns, &mut next, &ns[2], false,
        );
        for (i, cand) in ab_fw.iter().enumerate() {
            ab_rows(rows, &what, cand.what, &ns[next + i], &ns[2], &ns[0]);
        }
    }

    if wanted(2) {
        // 2. One blocklisted source.
        let what = format!("flood ns/pkt, one blocklisted source {BAD}");
        let mut progs = vec![&bare, &fwb];
        if xf_all.is_ok() {
            progs.push(&xf_all_p);
        }
        if xf_ip.is_ok() {
            progs.push(&xf_ip_p);
        }
        progs.extend(&ab_fwb);
        let bad = flood::Sources::one(BAD);
        let ns = race(
            &fs,
            &mut generator,
            sizes,
            &frame(OPEN_PORT),
            bad,
            &progs,
            drop,
        );
        rows.push(ns_row(
            format!("{what}: {} (floor)", bare.what),
            &ns[0],
            None,
            None,
        ));
        rows.push(ns_row(
            format!("{what}: firewall"),
            &ns[1],
            Some(("bare", &ns[0])),
            Some(1.5),
        ));
        let mut next = 2;
        peer_rows(
            rows, &what, &xf_all, &xf_all_p, &ns, &mut next, &ns[1], true,
        );
        peer_rows(rows, &what, &xf_ip, &xf_ip_p, &ns, &mut next, &ns[1], false);
        for (i, cand) in ab_fwb.iter().enumerate() {
            ab_rows(rows, &what, cand.what, &ns[next + i], &ns[1], &ns[0]);
        }
    }

    if wanted(3) {
        // 3. Passed packets, counted per source: one source, then spoofed.
        for (label, sources, goal) in [
            ("one source", one, 1.1),
            ("spoofed 2^24 sources", spoofed, 0.1),
        ] {
            let what = format!("flood ns/pkt, {label}, UDP to open port {OPEN_PORT}, passed");
            let ns = race(
                &fs,
                &mut generator,
                sizes,
                &frame(OPEN_PORT),
                sources,
                &[&seed_count, &fw0, &bare_pass]
                    .into_iter()
                    .chain(&ab_fw0)
                    .collect::<Vec<_>>(),
                pass,
            );
            for (i, cand) in ab_fw0.iter().enumerate() {
                ab_rows(rows, &what, cand.what, &ns[3 + i], &ns[1], &ns[0]);
            }
            rows.push(ns_row(
                format!("{what}: {} (peer)", seed_count.what),
                &ns[0],
                None,
                None,
            ));
            rows.push(ns_row(
                format!("{what}: firewall, no rules"),
                &ns[1],
                Some(("seed count", &ns[0])),
                Some(goal),
            ));
            rows.push(ns_row(
                format!("{what}: {}", bare_pass.what),
                &ns[2],
                Some(("seed count", &ns[0])),
                None,
            ));
        }
    }

    if wanted(4) {
        // 4. IPv6, one source passed, 10,000 prefixes in cidr6 or none.
        let what = "flood ns/pkt, IPv6 one source, passed".to_owned();
        let mut src6 = [0u8; 16];
        src6[..4].copy_from_slice(&[0x20, 0x01, 0x0d, 0xb8]);
        src6[15] = 1;
        let ns = race(
            &fs,
            &mut generator,
            sizes,
            &udp6_64(src6, OPEN_PORT),
            flood::Sources::AsIs,
            &[&fw0, &fw6],
            pass,
        );
        rows.push(ns_row(
            format!("{what}: firewall, no rules"),
            &ns[0],
            None,
            None,
        ));
        rows.push(ns_row(
            format!("{what}: {}", fw6.what),
            &ns[1],
            Some(("no rules", &ns[0])),
            Some(1.05),
        ));
    }

    if wanted(5) {
        capture_cost(
            &fs,
            &mut generator,
            sizes,
            &frame(BLOCKED_PORT),
            spoofed,
            rows,
        );
    }
}

/// Section 5: what capture and the per-rule counters cost the datapath
/// under a spoofed flood to a dropped port. Capture off, against the
/// firewall built without it (tests/bpf/xdpfw_nocapture.bpf.c). Then one
/// load measured three ways in each round: as it is (capture and
/// counters off), with an `xdpctl capture` sampling one packet in 1,000
/// and writing it out, and with the counters per rule on (`stats
/// --rule-counters on`: every packet of the flood is a hit of the port
/// rule). On and off are the same program and the same maps, so the
/// ratios hold the feature's cost and nothing of where another load's
/// maps happened to land.
fn capture_cost(
    fs: &Bpffs,
    generator: &mut flood::TestRunFlood,
    sizes: &Sizes,
    frame: &[u8],
    spoofed: flood::Sources,
    rows: &mut Vec<Row>,
) {
    let nc = fixture("xdpfw_nocapture");
    xdpctl(fs, ["load", nc.to_str().unwrap(), "--pin", "fwnc"]).ok();
    xdpctl(fs, ["load", "--pin", "fwc"]).ok();
    for pin in ["fwnc", "fwc"] {
        let ports = format!("{pin}/maps/udp_ports");
        xdpctl(
            fs,
            ["map", "update", &ports, &BLOCKED_PORT.to_string(), "1"],
        )
        .ok();
    }
    let what = [
        "firewall built without capture",
        "firewall, capture off",
        "firewall, capture on",
        "firewall, per-rule counters on",
    ];
    let mut ns = vec![Vec::new(); what.len()];
    let mut flood = |pin: &str, what: &str| {
        generator
            .target(&fs.path().join(pin))
            .unwrap_or_else(|e| panic!("{what}: {e}"));
        let judged = generator.run(frame, spoofed, sizes.flood);
        assert_eq!(judged.verdict, 1, "{what} did not drop the flood");
        if std::env::var_os("XDPCTL_BENCH_DEBUG").is_some() {
            eprintln!("{what}: {:.1} ns (wall {:.1})", judged.ns, judged.wall_ns);
        }
        judged.ns
    };
    // Three times the other sections' rounds: the costs measured here are
    // a few percent, the noise of this machine's floods more than that
    // (rounds are cheap: about 0.5 s each).
    for round in 0..sizes.runs.max(3) * 3 {
        // The three ways in turn, each round starting from another, so
        // that no way is always the one measured first.
        for k in 0..3 {
            match (round + k) % 3 {
                0 => {
                    ns[0].push(flood("fwnc/xdp_fw", what[0]));
                    ns[1].push(flood("fwc/xdp_fw", what[1]));
                }
                1 => {
                    let mut capture = xdpctl_tests::command(fs)
                        .args([
                            "capture",
                            "fwc",
                            "--sample",
                            "1000",
                            "--max-rate",
                            "unlimited",
                            "-w",
                            "/dev/null",
                        ])
                        .stderr(std::process::Stdio::null())
                        .spawn()
                        .expect("starting xdpctl capture");
                    capture_started(fs, "fwc");
                    ns[2].push(flood("fwc/xdp_fw", what[2]));
                    let _ = nix::sys::signal::kill(
                        nix::unistd::Pid::from_raw(capture.id() as i32),
                        nix::sys::signal::Signal::SIGINT,
                    );
                    let _ = capture.wait();
                }
                _ => {
                    xdpctl(fs, ["stats", "fwc", "--rule-counters", "on"]).ok();
                    ns[3].push(flood("fwc/xdp_fw", what[3]));
                    xdpctl(fs, ["stats", "fwc", "--rule-counters", "off"]).ok();
                }
            }
        }
    }
    rows.push(capture_writer(fs, generator, sizes, frame, spoofed));
    let what_ = format!("flood ns/pkt, spoofed 2^24 sources, UDP to dropped port {BLOCKED_PORT}");
    rows.push(ns_row(
        format!("{what_}: {} (floor)", what[0]),
        &ns[0],
        None,
        None,
    ));
    rows.push(ns_row(
        format!("{what_}: {}", what[1]),
        &ns[1],
        Some(("no capture", &ns[0])),
        Some(1.02),
    ));
    rows.push(ns_row(
        format!("{what_}: capture on, 1 in 1,000 sampled"),
        &ns[2],
        Some(("capture off", &ns[1])),
        Some(1.05),
    ));
    rows.push(ns_row(
        format!("{what_}: {} (every packet a hit of the port rule)", what[3]),
        &ns[3],
        Some(("counters off", &ns[1])),
        Some(1.1),
    ));
}

/// A candidate's rows (XDPCTL_BENCH_AB): against the floor, and against
/// the built-in firewall of the same rounds.
fn ab_rows(
    rows: &mut Vec<Row>,
    what: &str,
    who: &str,
    cand: &[f64],
    built_in: &[f64],
    floor: &[f64],
) {
    rows.push(ns_row(
        format!("{what}: {who}"),
        cand,
        Some(("floor", floor)),
        None,
    ));
    rows.push(ns_row(
        format!("{what}: {who} vs built-in"),
        cand,
        Some(("built-in", built_in)),
        None,
    ));
}

/// Whether section `n` of the floods runs: all, unless
/// XDPCTL_BENCH_SECTIONS lists some (`2,3`), for whoever works on one.
fn wanted(n: u32) -> bool {
    match std::env::var("XDPCTL_BENCH_SECTIONS") {
        Ok(v) => v.split(',').any(|s| s.trim() == n.to_string()),
        Err(_) => true,
    }
}

/// An xdp-filter build's rows, if it ran (its figures at `ns[*next]`):
/// its ns per packet, and the firewall (`ours`) against it, with the goal
/// to be ahead where `goal` (the default build; a single-feature build is
/// a floor of its own, shown as such).
#[allow(clippy::too_many_arguments)]
fn peer_rows(
    rows: &mut Vec<Row>,
    what: &str,
    ran: &Result<(), String>,
    peer: &Prog,
    ns: &[Vec<f64>],
    next: &mut usize,
    ours: &[f64],
    goal: bool,
) {
    match ran {
        Ok(()) => {
            let theirs = &ns[*next];
            *next += 1;
            let mut row = ns_row(format!("{what}: {}", peer.what), theirs, None, None);
            (row.ratio, row.goal) = ("-".into(), "peer".into());
            rows.push(row);
            let mut row = ahead_row(format!("{what}: firewall vs {}", peer.what), ours, theirs);
            if !goal {
                row.goal = "- (a single-feature build: a floor)".into();
                row.met = None;
            }
            rows.push(row);
        }
        Err(why) => rows.push(not_run(format!("{what}: {}", peer.what), why)),
    }
}

/// The firewall against xdp-filter on the same flood: ahead means fewer ns.
fn ahead_row(what: String, ours: &[f64], theirs: &[f64]) -> Row {
    let r = ratio_of(ours, theirs);
    Row {
        what,
        ours: format!("{:.1} ns", median(ours.to_vec())),
        peer: format!("{:.1} ns", median(theirs.to_vec())),
        ratio: format!("{r:.2}x"),
        goal: "< 1x (ahead)".into(),
        met: Some(r < 1.0),
    }
}

fn not_run(what: String, why: &str) -> Row {
    Row {
        what,
        ours: "-".into(),
        peer: format!("did not run: {why}"),
        ratio: "-".into(),
        goal: "-".into(),
        met: None,
    }
}

/// Waits until the capture of the firewall at `dir` holds its lease (it
/// is reading); returns when the wait began.
fn capture_started(fs: &Bpffs, dir: &str) -> std::time::Instant {
    let t0 = std::time::Instant::now();
    while xdpctl_tests::fw_ctl(fs, dir, xdp_progs::xdpfw::Ctl::Capture as u32) == 0 {
        assert!(t0.elapsed().as_secs() < 10, "the capture did not start");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    t0
}

/// User and system CPU seconds `/usr/bin/time -f "%U %S"` printed last.
fn cpu_secs(stderr: &str) -> f64 {
    stderr
        .lines()
        .last()
        .and_then(|l| {
            let mut w = l.split_whitespace().map(|x| x.parse::<f64>().ok());
            Some(w.next()?? + w.next()??)
        })
        .unwrap_or_else(|| panic!("no CPU times in {stderr:?}"))
}

/// The capture's writer: CPU per packet of `xdpctl capture -w` taking
/// N packets the firewall drops under the flood (each one's rule named
/// from its headers, pcapng with comments), against `tcpdump -r | -w` of
/// the same file (the writer alone, no live capture's kernel costs).
fn capture_writer(
    fs: &Bpffs,
    generator: &mut flood::TestRunFlood,
    sizes: &Sizes,
    frame: &[u8],
    spoofed: flood::Sources,
) -> Row {
    let n = sizes.flood.min(1_000_000);
    let dir = tempfile::tempdir().unwrap();
    let (ours, theirs) = (
        dir.path().join("ours.pcapng"),
        dir.path().join("theirs.pcap"),
    );
    let mut capture = std::process::Command::new("/usr/bin/time")
        .args(["-f", "%U %S"])
        .arg(xdpctl_tests::xdpctl_bin())
        .args([
            "capture",
            "fwc",
            "--max-rate",
            "unlimited",
            "-c",
            &n.to_string(),
            "-w",
        ])
        .arg(&ours)
        .env("XDPCTL_BPFFS", fs.path())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("starting xdpctl capture");
    let t0 = capture_started(fs, "fwc");
    generator.target(&fs.path().join("fwc/xdp_fw")).unwrap();
    while capture.try_wait().unwrap().is_none() {
        assert!(
            t0.elapsed().as_secs() < 120,
            "the capture never took {n} packets"
        );
        generator.run(frame, spoofed, n.min(100_000));
    }
    let out = capture.wait_with_output().unwrap();
    let ours_ns = cpu_secs(&String::from_utf8_lossy(&out.stderr)) * 1e9 / f64::from(n);
    let tcpdump = std::process::Command::new("/usr/bin/time")
        .args(["-f", "%U %S", "tcpdump", "-r"])
        .arg(&ours)
        .arg("-w")
        .arg(&theirs)
        .output()
        .expect("running tcpdump");
    let theirs_ns = cpu_secs(&String::from_utf8_lossy(&tcpdump.stderr)) * 1e9 / f64::from(n);
    let r = ours_ns / theirs_ns;
    Row {
        what: format!(
            "capture to pcapng, CPU ns/pkt: xdpctl capture -w of {n} dropped packets (rules named) \
             vs tcpdump -r|-w of them"
        ),
        ours: format!("{ours_ns:.0} ns"),
        peer: format!("{theirs_ns:.0} ns tcpdump"),
        ratio: format!("{r:.2}x"),
        goal: "<= 1x".into(),
        met: Some(r <= 1.0),
    }
}
