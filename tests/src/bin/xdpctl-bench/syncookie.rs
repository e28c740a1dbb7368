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

/// Spoofed SYNs (10.128.0.0/9) to B.
fn syn_frames(pair: &VethPair, n: u32) -> Vec<Vec<u8>> {
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
            flood::tcp_frame(ends, 1024 + (i % 60000) as u16, PORT, 0x02, seq, 0)
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

fn syn_cookies(fs: &Bpffs) -> u64 {
    let stats = xdpctl(fs, ["-j", "stats", "fw"]).ok().json();
    stats
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["outcome"] == "syn_cookie")
        .unwrap()["packets"]
        .as_u64()
        .unwrap()
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
    xdpctl(
        &fs,
        [
            "load",
            fixture("xdp_drop").to_str().unwrap(),
            "--pin",
            "bare",
        ],
    )
    .ok();
    xdpctl(&fs, ["load", "--pin", "fw"]).ok();
    xdpctl(
        &fs,
        [
            "load",
            fixture("xdp_drop").to_str().unwrap(),
            "--pin",
            "sink",
        ],
    )
    .ok();
    xdpctl(
        &fs,
        [
            "load",
            fixture("xdp_pass").to_str().unwrap(),
            "--pin",
            "pass",
        ],
    )
    .ok();
    // What comes back to A (SYN-ACKs to spoofed sources) is dropped at
    // once, the same for every contender.
    attach(&fs, "sink", &pair.a, &pair.dev_a);
    let frames = syn_frames(&pair, 65_536);
    let secs = if sizes.runs <= 1 { 0.3 } else { 1.5 };

    // CPU ns per SYN: each contender in turn, `runs` rounds.
    let mut per = [Vec::new(), Vec::new(), Vec::new()];
    for _ in 0..sizes.runs.clamp(1, 5) {
        for (i, per) in per.iter_mut().enumerate() {
            match i {
                0 => attach(&fs, "bare", &pair.b, &pair.dev_b),
                1 => {}
                _ => {
                    attach(&fs, "fw", &pair.b, &pair.dev_b);
                    xdpctl(&fs, ["map", "update", "syn_ports", &PORT.to_string(), "1"]).ok();
                }
            }
            let (k0, x0, j0) = (
                tcp_ext(&pair.b, "SyncookiesSent"),
                if i == 2 { syn_cookies(&fs) } else { 0 },
                busy_jiffies(cpu),
            );
            let sent = send_for(&pair, &frames, secs, None);
            std::thread::sleep(Duration::from_millis(20));
            let busy_ns = (busy_jiffies(cpu) - j0) as f64 * 1e7;
            let answered = match i {
                0 => sent,
                1 => tcp_ext(&pair.b, "SyncookiesSent") - k0,
                _ => syn_cookies(&fs) - x0,
            };
            per.push((busy_ns / sent as f64, answered as f64 / sent as f64));
            if i != 1 {
                detach(&fs, &pair.b, &pair.dev_b);
            }
        }
    }
    let med =
        |v: &[(f64, f64)], f: fn(&(f64, f64)) -> f64| super::median(v.iter().map(f).collect());
    let base = med(&per[0], |p| p.0);
    let kernel = med(&per[1], |p| p.0) - base;
    let xdp = med(&per[2], |p| p.0) - base;
    let (k_share, x_share) = (med(&per[1], |p| p.1), med(&per[2], |p| p.1));
    rows.push(Row {
        what: "SYN flood, CPU ns per SYN answered with a cookie (less the frame's delivery): \
               firewall from XDP vs the kernel's own cookies"
            .into(),
        ours: format!("{xdp:.0} ns ({:.0}% answered)", x_share * 100.0),
        peer: format!(
            "kernel {kernel:.0} ns ({:.0}% answered); delivery {base:.0} ns",
            k_share * 100.0
        ),
        ratio: format!("{:.1}x the kernel's rate per CPU", kernel / xdp),
        goal: ">= 5x".into(),
        met: Some(kernel / xdp >= 5.0 && x_share > 0.99),
    });

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
            xdpctl(&fs, ["map", "update", "syn_ports", &PORT.to_string(), "1"]).ok();
        } else {
            xdpctl(&fs, ["map", "delete", "syn_ports", &PORT.to_string()]).ok();
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
