//! Rate limits, measured with the portable flood: a source at twice its
//! limit gets its limit through (within 10%), alone and while a million
//! spoofed sources flood the same firewall on the other CPU (their
//! buckets churn `rate_state`, an LRU smaller than the flood); a source
//! at half its limit loses nothing; and what a limited packet costs.
//!
//! A test-run flood sends as fast as the CPU runs the firewall (millions a
//! second), so a limit is set from that speed: half of it for "twice the
//! limit", twice it for "half". What passed is what was sent less the
//! `drop_rate` count (only the limited source is ever over a limit: each
//! spoofed source sends about once, within its burst), against the GCRA's
//! own reference: the burst, then the rate over the run's wall time (the
//! datapath's clock runs on through preemption, as wall time does).

use std::{
    net::Ipv4Addr,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use xdpctl_tests::{Bpffs, flood, xdpctl};

use super::{OPEN_PORT, Row, Sizes, median, stat_packets};

/// `stats` index of `drop_rate` (xdpfw.h).
const DROP_RATE: u32 = 9;
/// The limited source, under a per-source limit of its own /24.
const LIMITED: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
/// The burst of its limit, as a share of the limit: 200 ms of it, so that
/// the flood's own pauses (the CPU taken for other work: a bucket keeps no
/// credit beyond its burst) do not count against the limit.
const BURST_SHARE: f64 = 0.2;

/// Sets the limited source's limit; returns its burst.
fn set_limit(fs: &Bpffs, pps: u64) -> u64 {
    let burst = ((pps as f64 * BURST_SHARE) as u64).max(1000);
    xdpctl(
        fs,
        [
            "map",
            "update",
            "rl/maps/rate4",
            "192.0.2.0/24",
            &format!(r#"{{"pps":{pps},"burst":{burst},"per_prefix":0}}"#),
        ],
    )
    .ok();
    burst
}

/// One flood of `n` packets from the limited source: (passed, wall time,
/// when it started and ended).
fn limited_run(
    fs: &Bpffs,
    generator: &mut flood::TestRunFlood,
    frame: &[u8],
    n: u32,
) -> (u64, Duration, Instant, Instant) {
    let before = stat_packets(fs, "rl", DROP_RATE);
    let start = Instant::now();
    let judged = generator.run(frame, flood::Sources::one(LIMITED), n);
    let end = Instant::now();
    let took = end - start;
    let dropped = stat_packets(fs, "rl", DROP_RATE) - before;
    if std::env::var_os("XDPCTL_BENCH_DEBUG").is_some() {
        eprintln!(
            "limited run: {n} sent, {} passed, wall {took:?}, kernel {:.1} ms",
            u64::from(n) - dropped,
            judged.ns * f64::from(n) / 1e6
        );
    }
    (u64::from(n) - dropped, took, start, end)
}

/// A spoofed flood of 10.0.0.0/8 (24 random bits: over a million sources
/// a run, each under a per-source limit) on CPU 0 until `stop`.
fn spoofed_flood(
    fs: &Bpffs,
    frame: Vec<u8>,
    stop: Arc<AtomicBool>,
) -> std::thread::JoinHandle<u64> {
    let pin = fs.path().join("rl/xdp_fw");
    std::thread::spawn(move || {
        let _cpu = flood::Pinned::cpu(0);
        let mut generator = flood::TestRunFlood::new();
        generator.target(&pin).unwrap();
        let mut sent = 0u64;
        while !stop.load(Ordering::Relaxed) {
            let sources = flood::Sources::Random {
                base: Ipv4Addr::new(10, 0, 0, 0),
                bits: 24,
            };
            generator.run(&frame, sources, 200_000);
            sent += 200_000;
        }
        sent
    })
}

/// The rows of this section.
pub fn rate_limit_rows(sizes: &Sizes, rows: &mut Vec<Row>) {
    let fs = Bpffs::new();
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let last = cpus - 1;
    let _cpu = flood::Pinned::cpu(last);
    xdpctl(&fs, ["load", "--pin", "rl"]).ok();
    xdpctl(&fs, ["load", "--pin", "nolimit"]).ok();
    // The spoofed sources' own limit: per source, far above one packet.
    xdpctl(
        &fs,
        [
            "map",
            "update",
            "rl/maps/rate4",
            "10.0.0.0/8",
            r#"{"pps":1000,"burst":10}"#,
        ],
    )
    .ok();
    let frame = flood::udp64(
        [2; 6],
        [0xff; 6],
        LIMITED.octets(),
        [10, 255, 255, 1],
        OPEN_PORT,
    );
    let mut generator = flood::TestRunFlood::new();
    let n = sizes.flood.max(100_000);

    // The cost of a packet under a limit (passed: the limit far above the
    // flood) against the same firewall with no limit at all.
    set_limit(&fs, 1_000_000_000);
    let (mut limited, mut free) = (Vec::new(), Vec::new());
    for _ in 0..sizes.runs.max(3) {
        generator.target(&fs.path().join("rl/xdp_fw")).unwrap();
        limited.push(generator.run(&frame, flood::Sources::one(LIMITED), n).ns);
        generator.target(&fs.path().join("nolimit/xdp_fw")).unwrap();
        free.push(generator.run(&frame, flood::Sources::one(LIMITED), n).ns);
    }
    let (ns_limited, ns_free) = (median(limited), median(free));
    rows.push(Row {
        what: "flood ns/pkt, one source under a per-source rate limit, passed".into(),
        ours: format!("{ns_limited:.1} ns"),
        peer: format!("{ns_free:.1} ns no limits"),
        ratio: format!("{:.2}x", ns_limited / ns_free),
        goal: "- (the cost of a limit in use)".into(),
        met: None,
    });
    generator.target(&fs.path().join("rl/xdp_fw")).unwrap();
    let offered = 1e9 / ns_limited;

    // Twice the limit, alone, then under the spoofed flood: the limit is
    // set from the flood's own rate in the same conditions (a flood beside
    // it slows it down), measured unlimited first.
    let mut cases: Vec<(&str, bool)> = vec![("a source at 2x its limit", false)];
    if cpus >= 2 {
        cases.push((
            "a source at 2x its limit, 1M+ spoofed sources flooding the other CPU",
            true,
        ));
    }
    let long = n.saturating_mul(4);
    for (what, spoofed) in cases {
        let stop = Arc::new(AtomicBool::new(false));
        let flood = spoofed.then(|| {
            let h = spoofed_flood(&fs, frame.clone(), stop.clone());
            std::thread::sleep(Duration::from_millis(100));
            h
        });
        set_limit(&fs, 1_000_000_000);
        let (_, took, _, mut last_end) = limited_run(&fs, &mut generator, &frame, long);
        let offered = f64::from(long) / took.as_secs_f64();
        let limit = (offered / 2.0) as u64;
        let burst = set_limit(&fs, limit);
        let mut ratios = Vec::new();
        let mut rates = Vec::new();
        for run in 0..sizes.runs.clamp(3, 5) {
            let (passed, took, start, end) = limited_run(&fs, &mut generator, &frame, long);
            // The reference (GCRA): the credit the bucket holds at the
            // start, then the rate. The first run starts full (the source
            // was under its earlier limit); each later one with what the
            // bucket gathered while idle since the last (at most the burst).
            let idle = (start - last_end).as_secs_f64();
            let credit = if run == 0 {
                burst as f64
            } else {
                (limit as f64 * idle).min(burst as f64)
            };
            last_end = end;
            let want = credit + limit as f64 * took.as_secs_f64();
            if std::env::var_os("XDPCTL_BENCH_DEBUG").is_some() {
                eprintln!(
                    "  limit {limit}, burst {burst}, idle {idle:.3} s, credit {credit:.0}, want \
                     {want:.0}, passed {passed}"
                );
            }
            ratios.push(passed as f64 / want);
            rates.push(f64::from(long) / took.as_secs_f64() / limit as f64);
        }
        stop.store(true, Ordering::Relaxed);
        let spoofed_sent = flood.map_or(0, |h| h.join().unwrap());
        let r = median(ratios.clone());
        let worst = ratios
            .iter()
            .copied()
            .max_by(|a, b| (a - 1.0).abs().total_cmp(&(b - 1.0).abs()))
            .unwrap_or(r);
        rows.push(Row {
            what: format!("rate limit: {what}, passed vs the limit's allowance"),
            ours: format!("{r:.3}x"),
            peer: format!(
                "burst + rate x time; offered {:.2}x the limit{}",
                median(rates),
                if spoofed {
                    format!("; {spoofed_sent} spoofed packets meanwhile")
                } else {
                    String::new()
                }
            ),
            ratio: format!("{r:.3}x (worst run {worst:.3}x)"),
            goal: "0.9x to 1.1x (median of runs)".into(),
            met: Some((0.9..=1.1).contains(&r)),
        });
    }
    // Half the limit: nothing lost.
    let mut lost = 0;
    set_limit(&fs, (offered * 2.0) as u64);
    for _ in 0..3 {
        let (passed, ..) = limited_run(&fs, &mut generator, &frame, n);
        lost += u64::from(n) - passed;
    }
    rows.push(Row {
        what: "rate limit: a source at half its limit, packets lost".into(),
        ours: format!("{lost} of {}", 3 * u64::from(n)),
        peer: "-".into(),
        ratio: "-".into(),
        goal: "0".into(),
        met: Some(lost == 0),
    });
}
