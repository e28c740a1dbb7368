//! SYN cookies, measured with real frames between two namespaces (no live
//! frames needed): the CPU time a SYN costs when the firewall answers it
//! from XDP, against the kernel's own SYN-cookie path for the same flood,
//! each less the cost of getting the frame there (the same flood dropped
//! by a bare XDP_DROP); and real connections completed under a spoofed
//! SYN flood, protection on and off.
//!
//! The flood is sent with AF_PACKET from one namespace, pinned to the last
//! CPU; veth delivers it on the same CPU, so that CPU's busy time (user,
//! system, irq, softirq: /proc/stat) is the sender's and the receiver's
//! together, and the baseline takes the sender's out.

use std::{
    net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream},
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use xdpctl_tests::{Bpffs, NetNs, VethPair, fixture, flood, xdpctl};

use super::{Row, Sizes};

const PORT: u16 = 8443;

/// Busy jiffies of `cpu` (/proc/stat: all but idle and iowait).
fn busy_jiffies(cpu: usize) -> u64 {
    let stat = std::fs::read_to_string("/proc/stat").unwrap();
    let line = stat
        .lines()
        .find(|l| l.starts_with(&format!("cpu{cpu} ")))
        .unwrap_or_else(|| panic!("no cpu{cpu} in /proc/stat"));
    let v: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|x| x.parse().ok())
        .collect();
    v.iter().sum::<u64>() - v[3] - v[4]
}

use flood::tcp_ext;

/// Spoofed SYNs (10.128.0.0/9) to B, with the TCP options `opts`.
fn syn_frames(pair: &VethPair, n: u32, opts: &[u8]) -> Vec<Vec<u8>> {
    let macs = (
        flood::mac(&pair.a, &pair.dev_a),
        flood::mac(&pair.b, &pair.dev_b),
    );
    let dst: Ipv4Addr = pair.ip_b.parse().unwrap();
    (0..n)
        .map(|i| {
            let src = Ipv4Addr::from(0x0a80_0000 | (i.wrapping_mul(2_654_435_761) >> 9));
            let ends = ((macs.0, src), (macs.1, dst));
            let seq = u32::from(src).wrapping_mul(2_654_435_761);
            flood::tcp_frame_with(
                ends,
                (1024 + (i % 60000) as u16, PORT),
                0x02,
                (seq, 0),
                opts,
            )
        })
        .collect()
}

/// Sends `frames` round and round out of A's device for `secs`, from the
/// calling thread (AF_PACKET); returns how many it sent.
fn send_for(pair: &VethPair, frames: &[Vec<u8>], secs: f64, stop: Option<&AtomicBool>) -> u64 {
    let mut socket = flood::RawSender::open(&pair.a, &pair.dev_a);
    let mut sent = 0u64;
    let start = Instant::now();
    'out: loop {
        for f in frames {
            if socket.send(f) {
                sent += 1;
            }
            if sent.is_multiple_of(1024)
                && (start.elapsed().as_secs_f64() > secs
                    || stop.is_some_and(|s| s.load(Ordering::Relaxed)))
            {
                break 'out;
            }
        }
    }
    sent
}

fn attach(fs: &Bpffs, pin: &str, ns: &NetNs, dev: &str) {
    xdpctl(
        fs,
        ["attach", pin, dev, "--netns", ns.name(), "--mode", "native"],
    )
    .ok();
}

fn detach(fs: &Bpffs, ns: &NetNs, dev: &str) {
    xdpctl(fs, ["detach", dev, "--netns", ns.name()]).ok();
}

fn syn_cookies(fs: &Bpffs, pin: &str) -> u64 {
    let stats = xdpctl(fs, ["-j", "stats", pin]).ok().json();
    stats
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["outcome"] == "syn_cookie")
        .unwrap()["packets"]
        .as_u64()
        .unwrap()
}

/// Turns protection on for PORT in the firewall pinned at `pin` (attached
/// to B for the while: the host check looks at the load's namespaces).
fn protect(fs: &Bpffs, pair: &VethPair, pin: &str) {
    attach(fs, pin, &pair.b, &pair.dev_b);
    xdpctl(
        fs,
        [
            "map",
            "update",
            &format!("{pin}/maps/syn_ports"),
            &PORT.to_string(),
            "1",
        ],
    )
    .ok();
    detach(fs, &pair.b, &pair.dev_b);
}

/// The contenders of the CPU rows, in the order of a round.
#[derive(Clone, Copy, PartialEq)]
enum Who {
    /// A bare XDP_DROP on B: what getting the frame there costs.
    Delivery,
    /// No XDP program on B: the kernel answers with its own cookies.
    Kernel,
    /// The firewall, protection on.
    Firewall,
    /// A bare reflector: the floor of answering from XDP.
    Reflect,
    /// A minimal cookie answerer (bare SYNs only): the floor of answering
    /// with the kernel's cookie from XDP.
    CookieFloor,
    /// One of XDPCTL_BENCH_AB's candidate firewalls (comma-separated
    /// objects), protection on.
    Candidate(usize),
}

/// The pins of up to this many candidates.
const CANDIDATES: [&str; 4] = ["cand0", "cand1", "cand2", "cand3"];
const CANDIDATE_PROGS: [&str; 4] = [
    "cand0/xdp_fw",
    "cand1/xdp_fw",
    "cand2/xdp_fw",
    "cand3/xdp_fw",
];

impl Who {
    fn pin(self) -> &'static str {
        match self {
            Who::Delivery => "bare",
            Who::Kernel => "",
            Who::Firewall => "fw",
            Who::Reflect => "reflect",
            Who::CookieFloor => "cfloor",
            Who::Candidate(i) => CANDIDATES[i],
        }
    }

    fn prog(self) -> &'static str {
        match self {
            Who::Delivery => "bare/xdp_drop",
            Who::Kernel => "",
            Who::Firewall => "fw/xdp_fw",
            Who::Reflect => "reflect/xdp_reflect",
            Who::CookieFloor => "cfloor/xdp_cookie_floor",
            Who::Candidate(i) => CANDIDATE_PROGS[i],
        }
    }
}

/// Test-run: ns per SYN of each XDP contender, the generator restoring the
/// SYN (`frame`) before every packet; medians of alternating runs.
fn test_run_ns(fs: &Bpffs, pair: &VethPair, who: &[Who], frame: &[u8], sizes: &Sizes) -> Vec<f64> {
    let _in = pair.b.enter();
    let mut generator = flood::TestRunFlood::restoring();
    let mut ns = vec![Vec::new(); who.len()];
    let sources = flood::Sources::Random {
        base: Ipv4Addr::new(10, 128, 0, 0),
        bits: 23,
    };
    for _ in 0..sizes.runs.clamp(1, 11) {
        for (w, ns) in who.iter().zip(ns.iter_mut()) {
            generator.target(&fs.path().join(w.prog())).unwrap();
            let judged = generator.run(frame, sources, sizes.test_run_repeat);
            assert_eq!(judged.verdict, if *w == Who::Delivery { 1 } else { 3 });
            ns.push(judged.ns);
        }
    }
    ns.into_iter().map(super::median).collect()
}

/// The rows of this section.
pub fn syn_cookie_rows(sizes: &Sizes, rows: &mut Vec<Row>) {
    let fs = Bpffs::new();
    let pair = VethPair::new();
    let cpu = std::thread::available_parallelism().map_or(1, |n| n.get()) - 1;
    let _pinned = flood::Pinned::last_cpu();
    pair.b.exec(&["sysctl", "-qw", "net.ipv4.tcp_syncookies=2"]);
    pair.b
        .exec(&["sysctl", "-qw", "net.ipv4.tcp_max_syn_backlog=4096"]);
    // As on a host: a way back to any source (SYN-ACKs to spoofed ones go
    // out, to be dropped on the other side), no reverse-path filter.
    pair.b
        .exec(&["ip", "route", "add", "default", "via", &pair.ip_a]);
    for conf in ["all", "default", pair.dev_b.as_str()] {
        pair.b.exec(&[
            "sysctl",
            "-qw",
            &format!("net.ipv4.conf.{conf}.rp_filter=0"),
        ]);
    }
    let listener = {
        let _in = pair.b.enter();
        TcpListener::bind((pair.ip_b.as_str(), PORT)).unwrap()
    };
    xdpctl(&fs, ["load", "--pin", "fw"]).ok();
    for (stem, pin) in [
        ("xdp_drop", "bare"),
        ("xdp_drop", "sink"),
        ("xdp_pass", "pass"),
        ("xdp_reflect", "reflect"),
        ("xdp_cookie_floor", "cfloor"),
    ] {
        xdpctl(&fs, ["load", fixture(stem).to_str().unwrap(), "--pin", pin]).ok();
    }
    let mut who = vec![
        Who::Delivery,
        Who::Kernel,
        Who::Firewall,
        Who::Reflect,
        Who::CookieFloor,
    ];
    protect(&fs, &pair, "fw");
    // XDPCTL_BENCH_AB: candidate firewall objects (comma-separated) raced
    // in the same rounds.
    let candidates: Vec<String> = std::env::var("XDPCTL_BENCH_AB")
        .map(|v| v.split(',').map(str::to_owned).collect())
        .unwrap_or_default();
    for (i, obj) in candidates.iter().take(CANDIDATES.len()).enumerate() {
        xdpctl(&fs, ["load", obj, "--pin", CANDIDATES[i]]).ok();
        protect(&fs, &pair, CANDIDATES[i]);
        who.push(Who::Candidate(i));
    }
    let xdp_who: Vec<Who> = who.iter().copied().filter(|w| *w != Who::Kernel).collect();

    // The program's own CPU per SYN (test-run): a spoofer's bare SYN (an
    // MSS only) and a Linux client's (timestamps, SACK, window scale).
    let frames = syn_frames(&pair, 65_536, &[2, 4, 0x05, 0xb4]);
    let linux = syn_frames(&pair, 1, &flood::linux_syn_options(0x1234_5678));
    for (bare, frame) in [(true, &frames[0]), (false, &linux[0])] {
        let what = if bare {
            "a bare SYN (MSS only)"
        } else {
            "a Linux client's SYN"
        };
        let xdp_who: Vec<Who> = xdp_who
            .iter()
            .copied()
            .filter(|w| bare || *w != Who::CookieFloor)
            .collect();
        let ns = test_run_ns(&fs, &pair, &xdp_who, frame, sizes);
        let own = |w: Who| ns[xdp_who.iter().position(|x| *x == w).unwrap()] - ns[0];
        let floor = if bare {
            format!("{:.0} ns minimal cookie answerer; ", own(Who::CookieFloor))
        } else {
            String::new()
        };
        rows.push(Row {
            what: format!(
                "test-run ns per SYN answered with a cookie, {what}: the firewall's own \
                 (less the generator's: a bare XDP_DROP)"
            ),
            ours: format!("{:.0} ns", own(Who::Firewall)),
            peer: format!(
                "{floor}{:.0} ns bare reflector; generator {:.0} ns",
                own(Who::Reflect),
                ns[0]
            ),
            ratio: if bare {
                format!(
                    "{:.2}x the minimal answerer",
                    own(Who::Firewall) / own(Who::CookieFloor)
                )
            } else {
                "-".into()
            },
            goal: "- (the program's CPU alone)".into(),
            met: None,
        });
        for (i, obj) in candidates.iter().enumerate() {
            let cand = own(Who::Candidate(i));
            rows.push(Row {
                what: format!("test-run ns per SYN, {what}: candidate {obj} vs built-in"),
                ours: format!("{cand:.0} ns"),
                peer: format!("{:.0} ns built-in", own(Who::Firewall)),
                ratio: format!("{:.2}x", cand / own(Who::Firewall)),
                goal: "-".into(),
                met: None,
            });
        }
    }

    // XDPCTL_BENCH_SYN=test-run: the program's own cost alone (a quick
    // comparison of candidates).
    if std::env::var("XDPCTL_BENCH_SYN").as_deref() == Ok("test-run") {
        return;
    }

    // What comes back to A (SYN-ACKs to spoofed sources) is dropped at
    // once, the same for every contender.
    attach(&fs, "sink", &pair.a, &pair.dev_a);
    let secs = if sizes.runs <= 1 { 0.3 } else { 0.6 };

    // CPU ns per SYN on veth: each contender in turn, many short rounds
    // (the host's noise comes in bursts longer than one).
    let mut per = vec![Vec::new(); who.len()];
    for _ in 0..(sizes.runs * 2).clamp(1, 19) {
        for (w, per) in who.iter().zip(per.iter_mut()) {
            if *w != Who::Kernel {
                attach(&fs, w.pin(), &pair.b, &pair.dev_b);
            }
            let cookies = |w: Who| match w {
                Who::Firewall | Who::Candidate(_) => syn_cookies(&fs, w.pin()),
                _ => 0,
            };
            let (k0, x0, j0) = (
                tcp_ext(&pair.b, "SyncookiesSent"),
                cookies(*w),
                busy_jiffies(cpu),
            );
            let sent = send_for(&pair, &frames, secs, None);
            std::thread::sleep(Duration::from_millis(20));
            let busy_ns = (busy_jiffies(cpu) - j0) as f64 * 1e7;
            let answered = match w {
                Who::Kernel => tcp_ext(&pair.b, "SyncookiesSent") - k0,
                Who::Firewall | Who::Candidate(_) => cookies(*w) - x0,
                _ => sent,
            };
            per.push((busy_ns / sent as f64, answered as f64 / sent as f64));
            if *w != Who::Kernel {
                detach(&fs, &pair.b, &pair.dev_b);
            }
        }
    }
    let med = |w: Who, f: fn(&(f64, f64)) -> f64| {
        let i = who.iter().position(|x| *x == w).unwrap();
        super::median(per[i].iter().map(f).collect())
    };
    let base = med(Who::Delivery, |p| p.0);
    let kernel = med(Who::Kernel, |p| p.0) - base;
    let xdp = med(Who::Firewall, |p| p.0) - base;
    let reflect = med(Who::Reflect, |p| p.0) - base;
    let floor = med(Who::CookieFloor, |p| p.0) - base;
    let (k_share, x_share) = (med(Who::Kernel, |p| p.1), med(Who::Firewall, |p| p.1));
    // Ratios of the medians, each less the delivery's: a per-round ratio
    // of two differences of a few hundred ns out of 2-3 µs is mostly noise.
    let (x_rate, floor_rate, x_floor) = (kernel / xdp, kernel / floor, xdp / floor);
    rows.push(Row {
        what: "SYN flood on veth, CPU ns per SYN answered with a cookie (less the frame's \
               delivery): firewall from XDP vs the kernel's own cookies"
            .into(),
        ours: format!("{xdp:.0} ns ({:.0}% answered)", x_share * 100.0),
        peer: format!(
            "kernel {kernel:.0} ns ({:.0}% answered); delivery {base:.0} ns",
            k_share * 100.0
        ),
        ratio: format!("{x_rate:.1}x the kernel's rate per CPU"),
        goal: ">= 5x".into(),
        met: Some(x_rate >= 5.0 && x_share > 0.99),
    });
    rows.push(Row {
        what: "SYN flood on veth, CPU ns per SYN answered by a minimal cookie answerer (the \
               kernel's cookie, XDP_TX; no rules, no options, nothing counted): the floor of \
               answering with cookies from XDP on this device"
            .into(),
        ours: format!("{floor:.0} ns"),
        peer: format!("kernel {kernel:.0} ns; firewall {xdp:.0} ns"),
        ratio: format!(
            "{floor_rate:.1}x the kernel's rate per CPU; firewall {x_floor:.2}x this floor"
        ),
        goal: "floor".into(),
        met: None,
    });
    rows.push(Row {
        what: "SYN flood on veth, CPU ns per SYN sent back by a bare reflector (XDP_TX, no \
               rules, no cookie): the floor of any answer from XDP on this device"
            .into(),
        ours: format!("{reflect:.0} ns"),
        peer: format!("kernel {kernel:.0} ns"),
        ratio: format!("{:.1}x the kernel's rate per CPU", kernel / reflect),
        goal: "floor".into(),
        met: None,
    });
    for (i, obj) in candidates.iter().enumerate() {
        let cand = med(Who::Candidate(i), |p| p.0) - base;
        rows.push(Row {
            what: format!("SYN flood on veth, CPU ns per SYN: candidate {obj} vs built-in"),
            ours: format!("{cand:.0} ns"),
            peer: format!("{xdp:.0} ns built-in"),
            ratio: format!("{:.2}x", cand / xdp),
            goal: "-".into(),
            met: None,
        });
    }

    // Real connections under a spoofed flood, protection on and off. A's
    // device passes what comes back: on veth, a native XDP_TX reaches the
    // peer only if the peer runs an XDP program too.
    detach(&fs, &pair.a, &pair.dev_a);
    attach(&fs, "pass", &pair.a, &pair.dev_a);
    attach(&fs, "fw", &pair.b, &pair.dev_b);
    let accepted = Arc::new(AtomicU64::new(0));
    let count = accepted.clone();
    std::thread::spawn(move || {
        for c in listener.incoming() {
            if c.is_ok() {
                count.fetch_add(1, Ordering::Relaxed);
            }
        }
    });
    let conns = if sizes.runs <= 1 { 100 } else { 1000 };
    let mut done = Vec::new();
    for on in [true, false] {
        if on {
            xdpctl(
                &fs,
                ["map", "update", "fw/maps/syn_ports", &PORT.to_string(), "1"],
            )
            .ok();
        } else {
            xdpctl(
                &fs,
                ["map", "delete", "fw/maps/syn_ports", &PORT.to_string()],
            )
            .ok();
        }
        let stop = AtomicBool::new(false);
        let sender = std::thread::scope(|s| {
            let h = s.spawn(|| send_for(&pair, &frames, 600.0, Some(&stop)));
            std::thread::sleep(Duration::from_millis(200));
            let ok = {
                let _in = pair.a.enter();
                let addr = SocketAddr::new(pair.ip_b.parse().unwrap(), PORT);
                // At most a minute, whatever happens.
                let deadline = Instant::now() + Duration::from_secs(60);
                (0..conns)
                    .take_while(|_| Instant::now() < deadline)
                    .filter(|_| TcpStream::connect_timeout(&addr, Duration::from_secs(1)).is_ok())
                    .count()
            };
            stop.store(true, Ordering::Relaxed);
            (ok, h.join().unwrap())
        });
        done.push(sender);
    }
    let ((on, on_flood), (off, off_flood)) = (done[0], done[1]);
    rows.push(Row {
        what: format!(
            "{conns} real connections under a spoofed SYN flood from the same CPU: completed"
        ),
        ours: format!(
            "{:.1}% ({on_flood} SYNs flooded)",
            on as f64 * 100.0 / conns as f64
        ),
        peer: format!(
            "{:.1}% protection off ({off_flood} SYNs flooded)",
            off as f64 * 100.0 / conns as f64
        ),
        ratio: "-".into(),
        goal: ">= 99% with protection on".into(),
        met: Some(on * 100 >= conns * 99),
    });
}
