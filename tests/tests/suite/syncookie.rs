//! SYN cookies from XDP (`syn_ports`): real clients complete handshakes
//! and move data through the firewall; a spoofed SYN flood is answered
//! with SYN-ACKs and leaves no state in the kernel; an ACK with a wrong
//! cookie is dropped and counted; protection turned off and on under a
//! connection breaks nothing; a host that would not take the cookies is
//! refused before anything changes.

use std::{
    io::{Read, Write},
    net::{Ipv4Addr, TcpListener, TcpStream},
    thread,
    time::Duration,
};

use serde_json::Value;
use xdpctl_tests::{Bpffs, NetNs, VethPair, attach_generic, flood, require_privileges, xdpctl};

const PORT: u16 = 8443;

/// The firewall's count of an outcome.
fn outcome(fs: &Bpffs, name: &str) -> u64 {
    xdpctl_tests::fw_outcome(fs, "fw", name)
}

/// A counter of `/proc/net/netstat` (`TcpExt`) in `ns`.
fn tcp_ext(ns: &NetNs, field: &str) -> u64 {
    flood::tcp_ext(ns, field)
}

/// A segment to the protected port (see `flood::tcp_frame`).
fn tcp_frame(ends: flood::Ends, sport: u16, flags: u8, seq: u32, ack: u32) -> Vec<u8> {
    flood::tcp_frame(ends, sport, PORT, flags, seq, ack)
}

/// A listener on `ip` in B that echoes what each connection sends.
fn echo_server(pair: &VethPair, ip: &str, seen: Options) -> thread::JoinHandle<()> {
    let listener = {
        let _in = pair.b.enter();
        TcpListener::bind((ip, PORT)).unwrap()
    };
    thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut c) = conn else { break };
            let port = c.peer_addr().map_or(0, |a| a.port());
            seen.lock().unwrap().insert(port, tcp_options(&c));
            thread::spawn(move || {
                let mut buf = [0u8; 65536];
                while let Ok(n) = c.read(&mut buf) {
                    if n == 0 || c.write_all(&buf[..n]).is_err() {
                        break;
                    }
                }
            });
        }
    })
}

/// The TCP options of each accepted connection, by the client's port
/// (`tcpi_options`: 1 timestamps, 2 SACK, 4 window scaling).
type Options = std::sync::Arc<std::sync::Mutex<std::collections::HashMap<u16, u8>>>;

/// `tcpi_options` of a connected socket (TCP_INFO).
fn tcp_options(s: &TcpStream) -> u8 {
    use std::os::fd::AsRawFd;
    let mut info = [0u8; 256];
    let mut len = info.len() as libc::socklen_t;
    // SAFETY: TCP_INFO into a buffer of `len` bytes we own.
    let rc = unsafe {
        libc::getsockopt(
            s.as_raw_fd(),
            libc::IPPROTO_TCP,
            libc::TCP_INFO,
            info.as_mut_ptr().cast(),
            &mut len,
        )
    };
    assert_eq!(rc, 0, "TCP_INFO: {}", std::io::Error::last_os_error());
    // struct tcp_info: state, ca_state, retransmits, probes, backoff, options.
    info[5]
}

/// Connects from A to `ip`, sends `bytes` and reads them back.
fn round_trip(pair: &VethPair, ip: &str, bytes: usize) -> TcpStream {
    let _in = pair.a.enter();
    let addr = std::net::SocketAddr::new(ip.parse().unwrap(), PORT);
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(3))
        .unwrap_or_else(|e| panic!("connecting through the SYN cookies: {e}"));
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let data: Vec<u8> = (0..bytes).map(|i| (i % 251) as u8).collect();
    s.write_all(&data).unwrap();
    let mut back = vec![0u8; bytes];
    s.read_exact(&mut back).unwrap();
    assert_eq!(back, data, "the echo");
    s
}

#[test]
fn syn_cookies_answer_floods_and_let_real_clients_through() {
    require_privileges!();
    let fs = Bpffs::new();
    let pair = VethPair::new();
    pair.b.exec(&["sysctl", "-qw", "net.ipv4.tcp_syncookies=2"]);
    // IPv6 too, without duplicate address detection (at once).
    let (_, b6) = pair.add_v6(0x5c);
    let b6 = b6.as_str();
    let seen = Options::default();
    let _server = echo_server(&pair, &pair.ip_b, seen.clone());
    let _server6 = echo_server(&pair, b6, seen.clone());
    xdpctl(&fs, ["load", "--pin", "fw"]).ok();
    attach_generic(&fs, "fw", &pair);
    xdpctl(&fs, ["map", "update", "syn_ports", &PORT.to_string(), "1"]).ok();
    let cfg = xdpctl(&fs, ["-j", "map", "lookup", "fw/maps/syn_cfg", "0"])
        .ok()
        .json();
    assert_eq!(cfg["value"]["check_ack"], 1, "{cfg}");

    // Real clients: one SYN a port and family a second goes to the kernel
    // (which keeps its listener taking cookies) and is answered with the
    // kernel's own cookie; the others are answered from XDP. Every
    // connection moves data both ways.
    let mut open = Vec::new();
    let kernel = || tcp_ext(&pair.b, "SyncookiesSent");
    let (x0, k0) = (outcome(&fs, "syn_cookie"), kernel());
    for _ in 0..20 {
        open.push(round_trip(&pair, &pair.ip_b, 100_000));
    }
    let (x, k) = (outcome(&fs, "syn_cookie") - x0, kernel() - k0);
    assert_eq!(
        x + k,
        20,
        "every SYN answered once: {x} from XDP, {k} by the kernel"
    );
    assert!(x >= 10, "{x} SYNs answered from XDP");
    let (x0, k0) = (outcome(&fs, "syn_cookie"), kernel());
    for _ in 0..5 {
        open.push(round_trip(&pair, b6, 100_000));
    }
    let (x, k) = (outcome(&fs, "syn_cookie") - x0, kernel() - k0);
    assert_eq!(x + k, 5, "IPv6: {x} from XDP, {k} by the kernel");
    assert!(x >= 1, "IPv6 SYNs answered from XDP");
    let answered = outcome(&fs, "syn_cookie");

    // A spoofed flood: answered, and no state in the kernel.
    let (mac_a, mac_b) = (
        flood::mac(&pair.a, &pair.dev_a),
        flood::mac(&pair.b, &pair.dev_b),
    );
    let dst: Ipv4Addr = pair.ip_b.parse().unwrap();
    let sent_before = tcp_ext(&pair.b, "SyncookiesSent");
    // Counted per rule too: the port's SYNs (stats --rules, save --hits).
    xdpctl(&fs, ["stats", "fw", "--rule-counters", "on"]).ok();
    let frames: Vec<Vec<u8>> = (0..5000u32)
        .map(|i| {
            let src = Ipv4Addr::from(0x0a80_0000 + i * 7919 % 0x7f_ffff);
            tcp_frame(
                ((mac_a, src), (mac_b, dst)),
                1024 + (i % 60000) as u16,
                0x02,
                i * 65537,
                0,
            )
        })
        .collect();
    flood::send_raw(&pair.a, &pair.dev_a, &frames);
    thread::sleep(Duration::from_millis(300));
    let flood_answered = outcome(&fs, "syn_cookie") - answered;
    assert!(
        flood_answered >= 4990,
        "{flood_answered} of 5000 spoofed SYNs answered from XDP"
    );
    let rules: Value = xdpctl(&fs, ["-j", "stats", "fw", "--rules"]).ok().json();
    let port_text = PORT.to_string();
    let port = rules
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["map"] == "syn_ports" && r["rule"] == port_text.as_str())
        .unwrap_or_else(|| panic!("syn_ports {PORT} in stats --rules: {rules}"));
    assert!(
        port["packets"].as_u64().unwrap() >= 4990,
        "the port's SYNs counted: {port}"
    );
    let hits = xdpctl(&fs, ["save", "--hits"]).ok().stdout;
    assert!(
        hits.lines()
            .any(|l| l.contains(&format!("- {PORT}")) && l.contains("packets")),
        "{hits}"
    );
    let syn_recv = pair.b.exec(&["ss", "-Htan", "state", "syn-recv"]);
    assert_eq!(syn_recv.trim(), "", "no half-open connection in the kernel");
    assert!(
        tcp_ext(&pair.b, "SyncookiesSent") - sent_before <= 2,
        "the kernel answered the flood itself (beyond a SYN a second)"
    );

    // An ACK with a wrong cookie, from no connection: dropped, counted.
    let bad_before = outcome(&fs, "drop_cookie");
    let acks: Vec<Vec<u8>> = (0..100u32)
        .map(|i| {
            let src = Ipv4Addr::new(10, 200, (i / 200) as u8, (i % 200) as u8 + 1);
            tcp_frame(
                ((mac_a, src), (mac_b, dst)),
                40000 + i as u16,
                0x10,
                1000 + i,
                0xdead_beef,
            )
        })
        .collect();
    flood::send_raw(&pair.a, &pair.dev_a, &acks);
    thread::sleep(Duration::from_millis(200));
    assert_eq!(outcome(&fs, "drop_cookie") - bad_before, 100);

    // Protection off and on again under open connections and a spoofed
    // flood: the connections go on, new ones are made.
    let stop = std::sync::atomic::AtomicBool::new(false);
    thread::scope(|scope| {
        scope.spawn(|| {
            let mut sender = flood::RawSender::open(&pair.a, &pair.dev_a);
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                for f in &frames {
                    sender.send(f);
                }
            }
        });
        for on in [false, true, false, true] {
            if on {
                xdpctl(&fs, ["map", "update", "syn_ports", &PORT.to_string(), "1"]).ok();
            } else {
                xdpctl(&fs, ["map", "delete", "syn_ports", &PORT.to_string()]).ok();
            }
            for s in &mut open {
                s.write_all(b"still there").unwrap();
                let mut back = [0u8; 11];
                s.read_exact(&mut back).unwrap();
            }
            round_trip(&pair, &pair.ip_b, 1000);
        }
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
    });
    round_trip(&pair, &pair.ip_b, 1000);
    round_trip(&pair, b6, 1000);

    // Timestamps without random offsets: window scaling, SACK and
    // timestamps survive in the cookie, as the kernel's own cookies keep
    // them.
    pair.b.exec(&["sysctl", "-qw", "net.ipv4.tcp_timestamps=2"]);
    xdpctl(&fs, ["map", "update", "syn_ports", &PORT.to_string(), "1"]).ok();
    let cfg = xdpctl(&fs, ["-j", "map", "lookup", "fw/maps/syn_cfg", "0"])
        .ok()
        .json();
    assert_eq!(cfg["value"]["ts"], 1, "{cfg}");
    // (A connection whose SYN the kernel answered does not count: the
    // next one, at once, is answered from XDP.)
    let mut tries = 0;
    let kept = loop {
        let before = outcome(&fs, "syn_cookie");
        let c = round_trip(&pair, &pair.ip_b, 1_000_000);
        if outcome(&fs, "syn_cookie") == before + 1 {
            break c;
        }
        tries += 1;
        assert!(tries < 3, "no connection answered from XDP");
    };
    let port = {
        let _in = pair.a.enter();
        kept.local_addr().unwrap().port()
    };
    // The listener's side of the connection: what the kernel took from
    // the cookie's timestamp.
    let options = seen.lock().unwrap().get(&port).copied();
    assert_eq!(
        options,
        Some(1 | 2 | 4),
        "timestamps, SACK and window scaling kept (tcpi_options)"
    );

    // load --replace keeps the protection on.
    xdpctl(&fs, ["load", "--pin", "fw", "--replace"]).ok();
    let before = outcome(&fs, "syn_cookie");
    for _ in 0..3 {
        round_trip(&pair, &pair.ip_b, 1000);
    }
    assert!(
        outcome(&fs, "syn_cookie") >= before + 2,
        "still answered after a replace"
    );

    // save keeps the protected port; its policy applies as a fixed point.
    let saved = xdpctl(&fs, ["save"]).ok().stdout;
    assert!(saved.contains("syn_ports:"), "{saved}");
    let dir = tempfile::tempdir().unwrap();
    let policy = dir.path().join("p.yaml");
    std::fs::write(&policy, &saved).unwrap();
    let plan = xdpctl(&fs, ["apply", "--file", policy.to_str().unwrap()])
        .ok()
        .stdout;
    assert!(plan.contains("nothing to change"), "{plan}");

    // The host set back: doctor says so (nothing it can repair).
    xdpctl(&fs, ["doctor", "--check"]).ok();
    pair.b.exec(&["sysctl", "-qw", "net.ipv4.tcp_syncookies=1"]);
    let check = xdpctl(&fs, ["-j", "doctor", "--check"]);
    assert_ne!(check.code, 0);
    assert!(
        check.stdout.contains("tcp_syncookies is 1"),
        "{}",
        check.stdout
    );
    pair.b.exec(&["sysctl", "-qw", "net.ipv4.tcp_syncookies=2"]);
    xdpctl(&fs, ["doctor", "--check"]).ok();
}

/// A host whose listeners would not take the cookies' ACKs is refused in
/// one line, by `map update` and by `apply`, with nothing written.
#[test]
fn syn_cookies_are_refused_where_the_kernel_would_not_take_them() {
    require_privileges!();
    let fs = Bpffs::new();
    let pair = VethPair::new();
    pair.b.exec(&["sysctl", "-qw", "net.ipv4.tcp_syncookies=1"]);
    xdpctl(&fs, ["load", "--pin", "fw"]).ok();
    attach_generic(&fs, "fw", &pair);
    xdpctl(&fs, ["map", "update", "syn_ports", "443", "1"]).fails_with(&[
        pair.b.name(),
        "net.ipv4.tcp_syncookies is 1",
        "sysctl -w net.ipv4.tcp_syncookies=2",
    ]);
    let dump: Value = xdpctl(&fs, ["-j", "map", "dump", "syn_ports"]).ok().json();
    assert_eq!(dump, Value::Array(vec![]), "nothing was written");
    let dir = tempfile::tempdir().unwrap();
    let policy = dir.path().join("p.yaml");
    std::fs::write(
        &policy,
        format!(
            "version: 1\nload:\n  pin: fw\ndevices:\n  - name: {}\n    netns: {}\n    mode: generic\nrules:\n  syn_ports: [443]\n",
            pair.dev_b,
            pair.b.name()
        ),
    )
    .unwrap();
    xdpctl(&fs, ["apply", "--file", policy.to_str().unwrap()]).fails_with(&[
        "rules.syn_ports",
        "tcp_syncookies is 1",
        "nothing was changed",
    ]);
    let dump: Value = xdpctl(&fs, ["-j", "map", "dump", "syn_ports"]).ok().json();
    assert_eq!(dump, Value::Array(vec![]));
    // A port written off (0) protects nothing: no host to check for it,
    // and attach has nothing to say of it.
    xdpctl(&fs, ["map", "update", "syn_ports", "443", "0"]).ok();
    let reattach = || {
        xdpctl(&fs, ["detach", &pair.dev_b, "--netns", pair.b.name()]).ok();
        attach_generic(&fs, "fw", &pair).stderr
    };
    assert!(!reattach().contains("warning: syn_ports"));
    // A protected port, then the firewall attached where the host was set
    // back: attach says so (as doctor does), and attaches.
    pair.b.exec(&["sysctl", "-qw", "net.ipv4.tcp_syncookies=2"]);
    xdpctl(&fs, ["map", "update", "syn_ports", "443", "1"]).ok();
    pair.b.exec(&["sysctl", "-qw", "net.ipv4.tcp_syncookies=1"]);
    let said = reattach();
    assert!(
        said.contains("warning: syn_ports protects ports, but net.ipv4.tcp_syncookies is 1"),
        "{said}"
    );
}

/// A firewall attached to B (generic) protecting PORT, B's host taking
/// cookies (and, with `timestamps`, keeping the options in them); its
/// program, for test runs.
fn protected(timestamps: bool) -> (Bpffs, VethPair, aya::programs::Xdp) {
    let fs = Bpffs::new();
    let pair = VethPair::new();
    pair.b.exec(&["sysctl", "-qw", "net.ipv4.tcp_syncookies=2"]);
    if timestamps {
        pair.b.exec(&["sysctl", "-qw", "net.ipv4.tcp_timestamps=2"]);
    }
    xdpctl(&fs, ["load", "--pin", "fw"]).ok();
    attach_generic(&fs, "fw", &pair);
    xdpctl(&fs, ["map", "update", "syn_ports", &PORT.to_string(), "1"]).ok();
    let prog = aya::programs::Xdp::from_pin(
        fs.path().join("fw/xdp_fw"),
        aya_obj::programs::XdpAttachType::Interface,
    )
    .unwrap();
    (fs, pair, prog)
}

/// A SYN-ACK's IPv4 header and TCP segment (as long as the IP header
/// says: an Ethernet pad stays), both checksums right, SYN|ACK set.
fn sums_right<'a>(name: &str, out: &'a [u8]) -> (&'a [u8], &'a [u8]) {
    let ip = &out[14..34];
    assert_eq!(flood::ones_sum(ip, 0), 0xffff, "{name}: IPv4 checksum");
    let len = usize::from(u16::from_be_bytes([ip[2], ip[3]]));
    let tcp = &out[34..14 + len];
    let mut pseudo = Vec::new();
    pseudo.extend(&ip[12..20]);
    pseudo.extend([0, 6]);
    pseudo.extend((tcp.len() as u16).to_be_bytes());
    assert_eq!(
        flood::ones_sum(tcp, flood::ones_sum(&pseudo, 0)),
        0xffff,
        "{name}: TCP checksum"
    );
    assert_eq!(tcp[13], 0x12, "{name}: SYN|ACK");
    (ip, tcp)
}

/// The SYN-ACK the firewall makes, checked byte by byte (a plain test run
/// of the pinned program): whatever the order of the client's options,
/// timestamps, SACK and window scale are encoded as the kernel's cookies
/// encode them, the echo is the client's timestamp, both checksums are
/// right, and the frame is the reply's length.
#[test]
fn syn_ack_is_the_same_whatever_the_layout_of_the_options() {
    require_privileges!();
    let (_fs, _pair, prog) = protected(true);
    let ends = (
        ([2, 0, 0, 0, 0, 1], Ipv4Addr::new(192, 0, 2, 7)),
        ([2, 0, 0, 0, 0, 2], Ipv4Addr::new(198, 51, 100, 1)),
    );
    let ts = [0x11, 0x22, 0x33, 0x44];
    let linux = flood::linux_syn_options(0x1122_3344).to_vec();
    // FreeBSD and macOS: MSS, NOP, window scale, NOP, NOP, timestamps,
    // SACK permitted, end of list.
    let mut bsd = vec![2, 4, 0x05, 0xb4, 1, 3, 3, 7, 1, 1, 8, 10];
    bsd.extend(ts);
    bsd.extend([0, 0, 0, 0, 4, 2, 0, 0]);
    // Windows with timestamps: MSS, NOP, window scale, NOP, NOP, SACK
    // permitted, NOP, NOP, timestamps.
    let mut windows = vec![2, 4, 0x05, 0xb4, 1, 3, 3, 7, 1, 1, 4, 2, 1, 1, 8, 10];
    windows.extend(ts);
    windows.extend([0, 0, 0, 0]);
    // No timestamps: nothing but the MSS is kept.
    let no_ts = vec![2, 4, 0x05, 0xb4, 1, 3, 3, 7, 1, 1, 4, 2];
    let bare = vec![2, 4, 0x05, 0xb4];

    let mut encoded = Vec::new();
    for (name, opts) in [
        ("linux", &linux),
        ("bsd", &bsd),
        ("windows", &windows),
        ("no timestamps", &no_ts),
        ("bare", &bare),
    ] {
        let syn = flood::tcp_frame_with(ends, (40000, PORT), 0x02, (1000, 0), opts);
        // (One SYN a second goes to the kernel, which keeps its listener
        // taking cookies: at most one try more.)
        let (mut verdict, mut out) = flood::reply(&prog, &syn);
        if verdict == 2 {
            (verdict, out) = flood::reply(&prog, &syn);
        }
        assert_eq!(verdict, 3, "{name}: XDP_TX");
        assert_eq!(&out[0..6], &syn[6..12], "{name}: back to the sender's MAC");
        assert_eq!(&out[6..12], &syn[0..6], "{name}");
        let (ip, tcp) = sums_right(name, &out);
        assert_eq!(
            tcp.len(),
            out.len() - 34,
            "{name}: the frame is the reply's length"
        );
        assert_eq!(
            &ip[12..16],
            &syn[30..34],
            "{name}: from the SYN's destination"
        );
        assert_eq!(&ip[16..20], &syn[26..30], "{name}: to its source");
        assert_eq!(&tcp[0..2], &PORT.to_be_bytes(), "{name}");
        assert_eq!(&tcp[2..4], &40000u16.to_be_bytes(), "{name}");
        assert_eq!(&tcp[8..12], &1001u32.to_be_bytes(), "{name}: ack = seq + 1");
        assert_eq!(&tcp[20..24], &[2, 4, 0x05, 0xb4], "{name}: the MSS offered");
        let has_ts = opts.windows(2).any(|w| w == [8, 10]);
        assert_eq!(tcp.len(), if has_ts { 40 } else { 24 }, "{name}: {tcp:?}");
        if has_ts {
            let at = tcp[20..].windows(2).position(|w| w == [8, 10]).unwrap() + 20;
            assert_eq!(
                &tcp[at + 6..at + 10],
                &ts,
                "{name}: the client's timestamp echoed"
            );
            let tsval = u32::from_be_bytes(tcp[at + 2..at + 6].try_into().unwrap());
            // cookie_init_timestamp: window scale in the low 4 bits, SACK 0x10.
            assert_eq!(tsval & 0x3f, 7 | 0x10, "{name}: options in the timestamp");
            assert_eq!(&tcp[36..39], &[1, 3, 3], "{name}: a window scale offered");
            assert_eq!(&tcp[24..26], &[4, 2], "{name}: SACK permitted");
            encoded.push(tcp[20..40].to_vec());
        }
    }
    // The same options, so the same reply options (but for the clock).
    let strip = |o: &Vec<u8>| {
        let at = o.windows(2).position(|w| w == [8, 10]).unwrap();
        let mut o = o.clone();
        o[at + 2..at + 6].fill(0);
        o
    };
    assert!(
        encoded.iter().all(|o| strip(o) == strip(&encoded[0])),
        "{encoded:?}"
    );
}

/// Every drop rule comes before the cookie: a SYN to a protected port from
/// a blocklisted source, from a blocked prefix, over its rate limit, or to
/// a port `tcp_ports` drops, is dropped and counted as that rule's drop,
/// whichever way the SYN is answered otherwise (a spoofer's bare SYN, read
/// in place, or a Linux client's); with the rules gone, both are answered
/// again, an Ethernet-padded SYN too, in a reply that keeps the frame's
/// length and sums right.
#[test]
fn syn_cookies_come_after_every_drop_rule() {
    require_privileges!();
    let (fs, _pair, prog) = protected(false);
    let src = Ipv4Addr::new(192, 0, 2, 7);
    let ends = (
        ([2, 0, 0, 0, 0, 1], src),
        ([2, 0, 0, 0, 0, 2], Ipv4Addr::new(198, 51, 100, 1)),
    );
    let bare = tcp_frame(ends, 40000, 0x02, 1000, 0);
    let linux = flood::tcp_frame_with(
        ends,
        (40001, PORT),
        0x02,
        (2000, 0),
        &flood::linux_syn_options(7),
    );
    let mut padded = bare.clone();
    padded.extend([0, 0]);
    // (One SYN a port a second goes to the kernel: at most one try more.)
    let answer = |frame: &[u8]| {
        let (verdict, out) = flood::reply(&prog, frame);
        if verdict == 2 {
            return flood::reply(&prog, frame);
        }
        (verdict, out)
    };
    let answered = |what: &str| {
        for (name, frame) in [("bare", &bare), ("linux", &linux), ("padded", &padded)] {
            let (verdict, out) = answer(frame);
            assert_eq!(verdict, 3, "{what}, {name}: XDP_TX");
            sums_right(name, &out);
        }
    };
    answered("no rule");
    // The port's own counter counts the SYNs the port decided, never one a
    // rule before it dropped.
    xdpctl(&fs, ["stats", "fw", "--rule-counters", "on"]).ok();
    let port_hits = || {
        let rules: Value = xdpctl(&fs, ["-j", "stats", "fw", "--rules"]).ok().json();
        rules
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["map"] == "syn_ports")
            .map_or(0, |r| r["packets"].as_u64().unwrap())
    };
    let rate = r#"{"pps":1,"burst":1}"#;
    for (map, key, value, drop) in [
        ("blocklist", "192.0.2.7", "1", "drop_blocklist"),
        ("cidr4", "192.0.2.0/24", "1", "drop_cidr"),
        ("tcp_ports", PORT.to_string().as_str(), "1", "drop_tcp_port"),
        ("rate4", "192.0.2.0/24", rate, "drop_rate"),
    ] {
        xdpctl(&fs, ["map", "update", map, key, value]).ok();
        for (name, frame) in [("bare", &bare), ("linux", &linux)] {
            let (before, hits) = (outcome(&fs, drop), port_hits());
            // A limit lets its burst through first.
            let verdicts: Vec<u32> = (0..3).map(|_| flood::reply(&prog, frame).0).collect();
            assert_eq!(
                verdicts[2], 1,
                "{map} {key}, {name}: XDP_DROP ({verdicts:?})"
            );
            assert!(
                outcome(&fs, drop) > before,
                "{map} {key}, {name}: counted as {drop}"
            );
            let decided = verdicts.iter().filter(|v| **v != 1).count() as u64;
            assert_eq!(
                port_hits() - hits,
                decided,
                "{map} {key}, {name}: the port's hits ({verdicts:?})"
            );
        }
        xdpctl(&fs, ["map", "delete", map, key]).ok();
        answered(&format!("{map} {key} deleted"));
    }
}
