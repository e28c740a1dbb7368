//! Rate limits (`rate4`/`rate6`, the policy's `rules.rate_limits`): real
//! UDP between two namespaces at twice and at half a source's limit, the
//! GCRA's arithmetic against a reference with known rates, per prefix and
//! IPv6 through `prog run`, and every way of writing a limit refusing the
//! same bad ones with nothing changed.

use std::{
    net::UdpSocket,
    time::{Duration, Instant},
};

use serde_json::Value;
use xdpctl_tests::{Bpffs, VethPair, attach_generic, fw_ctl, require_privileges, xdpctl};

/// `ctl`'s rate limits' mode word, and its value when they are empty.
const RATE_MODE: u32 = 15;
const EMPTY: u64 = 2;

/// The firewall's count of an outcome.
fn outcome(fs: &Bpffs, name: &str) -> u64 {
    xdpctl_tests::fw_outcome(fs, "fw", name)
}

/// Sends `count` datagrams from A to B's `port`, `rate` a second (paced
/// against the clock, not by sleeps that add up); returns the time from
/// the first to the last and how many B received.
fn paced(pair: &VethPair, port: u16, rate: f64, count: u32) -> (Duration, u32) {
    let rx = {
        let _in = pair.b.enter();
        UdpSocket::bind((pair.ip_b.as_str(), port)).unwrap()
    };
    rx.set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    let tx = {
        let _in = pair.a.enter();
        UdpSocket::bind((pair.ip_a.as_str(), 0)).unwrap()
    };
    // Neighbour resolution first, so the first datagram is not queued.
    tx.send_to(b"warm", (pair.ip_b.as_str(), port + 1)).unwrap();
    std::thread::sleep(Duration::from_millis(200));
    let receiver = std::thread::spawn(move || {
        let mut buf = [0u8; 64];
        let mut got = 0;
        while rx.recv(&mut buf).is_ok() {
            got += 1;
        }
        got
    });
    let start = Instant::now();
    for i in 0..count {
        let due = start + Duration::from_secs_f64(f64::from(i) / rate);
        let now = Instant::now();
        if due > now {
            std::thread::sleep(due - now);
        }
        tx.send_to(b"rate-limited?", (pair.ip_b.as_str(), port))
            .unwrap();
    }
    let took = start.elapsed();
    (took, receiver.join().unwrap())
}

/// A source at twice its limit gets the limit through (within 10%), and at
/// half its limit loses nothing; the drops are counted as `drop_rate`.
#[test]
fn a_source_gets_its_limit_through_and_loses_nothing_below_it() {
    require_privileges!();
    let fs = Bpffs::new();
    let pair = VethPair::new();
    xdpctl(&fs, ["load", "--pin", "fw"]).ok();
    attach_generic(&fs, "fw", &pair);
    assert_eq!(fw_ctl(&fs, "fw", RATE_MODE), EMPTY, "no limit: skipped");
    let net = format!("{}.0/24", pair.ip_a.rsplit_once('.').unwrap().0);
    let (limit, burst) = (400.0, 40.0);
    xdpctl(
        &fs,
        ["map", "update", "rate4", &net, r#"{"pps":400,"burst":40}"#],
    )
    .ok();
    assert_ne!(fw_ctl(&fs, "fw", RATE_MODE), EMPTY, "a limit: looked up");

    let passed_before = outcome(&fs, "passed");
    let (took, received) = paced(&pair, 9100, 2.0 * limit, 2000);
    let dropped = outcome(&fs, "drop_rate");
    let passed = outcome(&fs, "passed") - passed_before;
    let want = burst + limit * took.as_secs_f64();
    let (lo, hi) = (want * 0.9, want * 1.1);
    eprintln!(
        "2x the limit: {received} arrived, {passed} passed, {dropped} dropped in {took:?}; want {want:.0}"
    );
    assert!(
        (lo..=hi).contains(&f64::from(received)),
        "at twice the limit {received} of 2000 arrived in {took:?}, want {want:.0} +-10%"
    );
    assert!(
        dropped + passed >= 2000,
        "{dropped} dropped, {passed} passed"
    );
    assert!(
        (f64::from(2000 - received) - dropped as f64).abs() <= 0.02 * 2000.0,
        "what did not arrive was dropped for its rate: {dropped} drop_rate, {received} received"
    );

    // At half the limit, after the bucket refilled: nothing lost.
    std::thread::sleep(Duration::from_millis(300));
    let (_, received) = paced(&pair, 9102, limit / 2.0, 400);
    assert_eq!(received, 400, "at half the limit nothing is lost");
    assert_eq!(outcome(&fs, "drop_rate"), dropped, "and nothing dropped");

    // Each source has a bucket of its own.
    let state = xdpctl(&fs, ["-j", "map", "dump", "fw/maps/rate_state"])
        .ok()
        .json();
    assert_eq!(state.as_array().unwrap().len(), 1, "{state}");

    // The limit gone: the kind is skipped again, and the traffic passes.
    xdpctl(&fs, ["map", "delete", "rate4", &net]).ok();
    assert_eq!(fw_ctl(&fs, "fw", RATE_MODE), EMPTY);
    let (_, received) = paced(&pair, 9104, 2.0 * limit, 400);
    assert_eq!(received, 400);
}

/// The packets `prog run` passes of `repeat` runs of `packet`, and the
/// kernel's time for them.
fn run(fs: &Bpffs, packet: &str, repeat: u32) -> (u64, Duration) {
    let before = outcome(fs, "passed");
    let out = xdpctl(
        fs,
        [
            "-j",
            "prog",
            "run",
            "fw",
            "--packet",
            packet,
            "--repeat",
            &repeat.to_string(),
        ],
    )
    .ok()
    .json();
    let row = &out.as_array().map_or(&out, |a| &a[0]);
    let ns = row["ns_per_run"]
        .as_u64()
        .or_else(|| row["results"][0]["ns_per_run"].as_u64())
        .unwrap_or_else(|| panic!("no ns_per_run in {out}"));
    (
        outcome(fs, "passed") - before,
        Duration::from_nanos(ns * u64::from(repeat)),
    )
}

/// Per prefix, the prefix's sources share one bucket; per source, each
/// has its own; IPv6 alike. Checked against the GCRA's reference: a
/// bucket passes `burst` at once and then `rate` a second.
#[test]
fn per_prefix_sources_share_a_bucket_and_per_source_ones_do_not() {
    require_privileges!();
    let fs = Bpffs::new();
    xdpctl(&fs, ["load", "--pin", "fw"]).ok();
    let dir = tempfile::tempdir().unwrap();
    // A rate far below the runs' (millions a second): what passes is the
    // burst and the rate over the run's time, a few packets.
    let policy = dir.path().join("rates.yaml");
    std::fs::write(
        &policy,
        "version: 1\nload:\n  pin: fw\nrules:\n  rate_limits:\n    \
         - cidr: 198.51.100.0/24\n      pps: 10\n      burst: 20\n      per: prefix\n    \
         - cidr: 203.0.113.0/24\n      pps: 10\n      burst: 20\n    \
         - cidr: 2001:db8::/64\n      pps: 10\n      burst: 30\n      per: prefix\n",
    )
    .unwrap();
    xdpctl(&fs, ["apply", "--file", policy.to_str().unwrap()]).ok();
    let udp = |src: &str, dst: &str| format!("udp src={src} dst={dst} dport=7777");
    // Per prefix: two sources, one bucket of 20.
    let (a, t1) = run(&fs, &udp("198.51.100.1", "10.0.0.1"), 5000);
    let (b, t2) = run(&fs, &udp("198.51.100.2", "10.0.0.1"), 5000);
    let refill = |t: Duration| (t.as_secs_f64() * 10.0).ceil() as u64 + 1;
    assert!(
        a + b >= 20 && a + b <= 20 + refill(t1 + t2) + 1,
        "per prefix: {a} + {b} passed, want the shared burst of 20"
    );
    // Per source: each its own 20.
    let (c, _) = run(&fs, &udp("203.0.113.1", "10.0.0.1"), 5000);
    let (d, _) = run(&fs, &udp("203.0.113.2", "10.0.0.1"), 5000);
    assert!((20..=22).contains(&c) && (20..=22).contains(&d), "{c} {d}");
    // IPv6 per prefix.
    let (e, _) = run(&fs, &udp("2001:db8::1", "2001:db8:1::1"), 5000);
    let (f, _) = run(&fs, &udp("2001:db8::2", "2001:db8:1::1"), 5000);
    assert!((30..=32).contains(&(e + f)), "{e} + {f}");
    // A limit raised holds at once: the source's buckets start anew,
    // not after the old limit's backlog.
    xdpctl(
        &fs,
        [
            "map",
            "update",
            "rate4",
            "203.0.113.0/24",
            r#"{"burst":3000}"#,
        ],
    )
    .ok();
    let (c2, _) = run(&fs, &udp("203.0.113.1", "10.0.0.1"), 5000);
    assert!((3000..=3002).contains(&c2), "{c2} passed after the raise");
    // A narrower prefix written in part takes nothing from the one
    // covering it (a trie's lookup finds the covering one).
    xdpctl(
        &fs,
        [
            "map",
            "update",
            "rate4",
            "198.51.100.128/25",
            r#"{"pps":5}"#,
        ],
    )
    .ok();
    let narrow = xdpctl(&fs, ["-j", "map", "lookup", "rate4", "198.51.100.128/25"])
        .ok()
        .json();
    assert_eq!(
        (&narrow["value"]["burst"], &narrow["value"]["per_prefix"]),
        (&Value::from(0), &Value::from(0)),
        "{narrow}"
    );
    xdpctl(&fs, ["map", "delete", "rate4", "198.51.100.128/25"]).ok();
    // A source no limit covers is not limited.
    let (g, _) = run(&fs, &udp("192.0.2.1", "10.0.0.1"), 5000);
    assert_eq!(g, 5000);
    assert!(outcome(&fs, "drop_rate") >= 5 * 5000 - 100);

    // save -> apply is a fixed point, and save says what apply took.
    let saved = xdpctl(&fs, ["save"]).ok().stdout;
    for want in ["cidr: 198.51.100.0/24", "per: prefix", "burst: 30"] {
        assert!(saved.contains(want), "{want} in\n{saved}");
    }
    let again = dir.path().join("saved.yaml");
    std::fs::write(&again, &saved).unwrap();
    let plan = xdpctl(&fs, ["apply", "--file", again.to_str().unwrap()])
        .ok()
        .stdout;
    assert!(plan.contains("nothing to change"), "{plan}");
}

/// A limit that limits nothing, a prefix with host bits, a burst beyond
/// the datapath's bound, a `per_prefix` that is neither: refused in one
/// line by `map update` (one entry and a file) and by `apply`, with the
/// map and the mode word as they were.
#[test]
fn bad_limits_are_refused_the_same_everywhere_and_change_nothing() {
    require_privileges!();
    let fs = Bpffs::new();
    xdpctl(&fs, ["load", "--pin", "fw"]).ok();
    let dir = tempfile::tempdir().unwrap();
    let refused = [
        ("10.0.0.0/8", r#"{"burst":5}"#, "limits nothing"),
        ("10.0.0.1/8", r#"{"pps":5}"#, "host bits"),
        ("10.0.0.0/8", r#"{"pps":5,"burst":4294967297}"#, "burst"),
        ("10.0.0.0/8", r#"{"pps":5,"per_prefix":2}"#, "per_prefix"),
        ("10.0.0.0/8", r#"{"pps":1000000001}"#, "pps"),
        (
            "10.0.0.0/8",
            r#"{"pps":5,"burst_bytes":5}"#,
            "burst_bytes 5 without bytes_per_sec",
        ),
        (
            "fd00::/64",
            r#"{"pps":5}"#,
            "is IPv6, but this map holds IPv4",
        ),
        // The datapath's state is no rule's: named, refused, and the
        // fields offered are the rule's alone.
        (
            "10.0.0.0/8",
            r#"{"pps":5,"tat":9}"#,
            "no field 'tat'; the fields are: pps, burst, bytes_per_sec, burst_bytes, per_prefix",
        ),
    ];
    for (key, value, why) in refused {
        xdpctl(&fs, ["map", "update", "rate4", key, value]).fails_with(&[why]);
        let file = dir.path().join("limits.txt");
        std::fs::write(
            &file,
            format!("192.0.2.0/24 {{\"pps\":5}}\n{key} {value}\n"),
        )
        .unwrap();
        xdpctl(
            &fs,
            [
                "map",
                "update",
                "rate4",
                "--from-file",
                file.to_str().unwrap(),
            ],
        )
        .fails_with(&[why, "nothing was written"]);
    }
    for (limit, why) in [
        ("{cidr: 10.0.0.0/8}", "limits nothing"),
        ("{cidr: 10.0.0.1/8, pps: 5}", "host bits"),
        ("{cidr: 10.0.0.0/8, pps: 5, per: cpu}", "per"),
        (
            "{cidr: 10.0.0.0/8, bytes_per_sec: 5, burst: 9}",
            "burst 9 without pps",
        ),
    ] {
        let policy = dir.path().join("bad.yaml");
        std::fs::write(
            &policy,
            format!("version: 1\nload:\n  pin: fw\nrules:\n  rate_limits:\n    - {limit}\n"),
        )
        .unwrap();
        xdpctl(&fs, ["apply", "--file", policy.to_str().unwrap()])
            .fails_with(&["rules.rate_limits", why]);
    }
    let dump: Value = xdpctl(&fs, ["-j", "map", "dump", "rate4"]).ok().json();
    assert_eq!(dump, Value::Array(vec![]), "nothing was written");
    assert_eq!(fw_ctl(&fs, "fw", RATE_MODE), EMPTY, "nor the mode word");

    // A write that names some fields keeps the others, and says the limit
    // as the map then holds it.
    let update = |value: &str| xdpctl(&fs, ["map", "update", "rate4", "10.0.0.0/8", value]);
    update(r#"{"pps":50,"burst":7}"#).ok();
    let said = update(r#"{"pps":60}"#).ok().stderr;
    assert!(
        said.contains(r#"10.0.0.0/8 = {"pps":60,"burst":7,"#),
        "{said}"
    );
    // What a partial write kept is named when it is what is wrong.
    update(r#"{"pps":0}"#).fails_with(&["limits nothing", "the fields not given"]);
    // A delete names the entry exactly: a prefix with host bits is
    // refused (the trie would delete the prefix it masks to).
    xdpctl(&fs, ["map", "delete", "rate4", "10.0.0.5/8"])
        .fails_with(&["10.0.0.5/8 has host bits set; use 10.0.0.0/8"]);
    xdpctl(&fs, ["map", "lookup", "rate4", "10.0.0.0/8"]).ok();
}

/// A classic pcap of UDP frames from each of `sources`, in order.
fn pcap_of(sources: &[[u8; 4]]) -> Vec<u8> {
    let mut out = Vec::new();
    // Magic, version 2.4, zone, sigfigs, snaplen, Ethernet.
    for v in [0xa1b2_c3d4u32, 0x0004_0002, 0, 0, 65535, 1] {
        out.extend(v.to_le_bytes());
    }
    for (i, src) in sources.iter().enumerate() {
        let frame = xdpctl_tests::flood::udp64([2; 6], [4; 6], *src, [10, 255, 0, 1], 7777);
        for v in [i as u32, 0, frame.len() as u32, frame.len() as u32] {
            out.extend(v.to_le_bytes());
        }
        out.extend(&frame);
    }
    out
}

/// A full `rate_state` (a load sized to 64 sources) under a flood of new
/// spoofed sources keeps the buckets of a steady source: it is never the
/// one used least recently, so it never starts again with a full burst.
#[test]
fn new_sources_filling_the_table_cannot_push_a_steady_source_out() {
    require_privileges!();
    let fs = Bpffs::new();
    xdpctl(
        &fs,
        ["load", "--pin", "fw", "--max-entries", "rate_state=64"],
    )
    .ok();
    xdpctl(
        &fs,
        [
            "map",
            "update",
            "rate4",
            "10.0.0.0/8",
            r#"{"pps":1,"burst":5}"#,
        ],
    )
    .ok();
    // The steady source every other packet, 2,000 new ones in between.
    let mut sources = Vec::new();
    for i in 0..2000u32 {
        sources.push([10, 1, 1, 1]);
        sources.push([10, 200, (i >> 8) as u8, i as u8]);
    }
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("flood.pcap");
    std::fs::write(&file, pcap_of(&sources)).unwrap();
    let passed_before = outcome(&fs, "passed");
    xdpctl(
        &fs,
        ["-j", "prog", "run", "fw", "--data", file.to_str().unwrap()],
    )
    .ok();
    let passed = outcome(&fs, "passed") - passed_before;
    // Each new source passes its one packet (within its own burst); the
    // steady one its burst of 5 and no more (a second at 1 pps is far).
    let steady = passed - 2000;
    assert!(
        (5..=6).contains(&steady),
        "the steady source passed {steady} of 2,000: its buckets were lost"
    );
    let state = xdpctl(&fs, ["-j", "map", "dump", "fw/maps/rate_state"])
        .ok()
        .json();
    assert!(
        state.as_array().unwrap().len() <= 64,
        "bounded by the table"
    );
}
