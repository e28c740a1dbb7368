//! An in-kernel traffic generator for the benchmark: an XDP program that
//! returns XDP_TX, run with `BPF_PROG_TEST_RUN` and
//! `BPF_F_TEST_XDP_LIVE_FRAMES`, sends each frame out of a device for real.
//!
//! NB: written here because Debian's xdp-trafficgen 1.3.1 fails to start on
//! newer kernels (a tracepoint it needs is gone); the kernel mechanism is
//! the same one it uses.

use std::time::{Duration, Instant};

use aya::{
    Ebpf,
    programs::{TestRun, TestRunAttrs, TestRunOptions, Xdp},
};

use crate::{NetNs, fixture};

/// A loaded generator, ready to send from a device in a namespace.
pub struct Flood {
    ebpf: Ebpf,
}

impl Flood {
    /// Loads the generator program.
    pub fn new() -> Self {
        let mut ebpf =
            Ebpf::load_file(fixture("trafficgen")).expect("loading the traffic generator");
        let prog: &mut Xdp = ebpf.program_mut("trafficgen").unwrap().try_into().unwrap();
        prog.load().expect("loading trafficgen");
        Flood { ebpf }
    }

    /// Sends `count` copies of `frame` out of `dev` in `ns` as fast as the
    /// kernel can; returns how long it took.
    pub fn send(&self, ns: &NetNs, dev: &str, frame: &[u8], count: u32) -> Duration {
        let _inside = ns.enter();
        let ifindex = nix::net::if_::if_nametoindex(dev).expect("the sending device");
        // struct xdp_md: data, data_end, data_meta, ingress_ifindex, rx_queue_index, egress_ifindex
        // NB: the kernel wants data_end to be the frame's length.
        let mut ctx = [0u8; 24];
        ctx[4..8].copy_from_slice(&(frame.len() as u32).to_ne_bytes());
        ctx[12..16].copy_from_slice(&ifindex.to_ne_bytes());
        let prog: &Xdp = self.ebpf.program("trafficgen").unwrap().try_into().unwrap();
        let opts = TestRunOptions {
            data_in: Some(frame),
            ctx_in: Some(&ctx),
            repeat: count,
            attrs: TestRunAttrs::new().xdp_live_frames(64),
            ..Default::default()
        };
        let start = Instant::now();
        let result = prog
            .test_run(opts)
            .expect("BPF_PROG_TEST_RUN with live frames");
        assert_eq!(
            result.return_value, 0,
            "live frames run returned {}",
            result.return_value
        );
        start.elapsed()
    }
}

impl Default for Flood {
    fn default() -> Self {
        Self::new()
    }
}

/// A 64-byte Ethernet/IPv4/UDP frame from `src` to `dst`, addressed to
/// `dst_mac`.
pub fn udp64(
    dst_mac: [u8; 6],
    src_mac: [u8; 6],
    src: [u8; 4],
    dst: [u8; 4],
    dport: u16,
) -> Vec<u8> {
    let mut f = Vec::with_capacity(64);
    f.extend_from_slice(&dst_mac);
    f.extend_from_slice(&src_mac);
    f.extend_from_slice(&[0x08, 0x00]);
    let mut ip = vec![0x45, 0, 0, 46, 0, 1, 0, 0, 64, 17, 0, 0];
    ip.extend_from_slice(&src);
    ip.extend_from_slice(&dst);
    let mut sum = 0u32;
    for c in ip.chunks(2) {
        sum += u32::from(u16::from_be_bytes([c[0], c[1]]));
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    ip[10..12].copy_from_slice(&(!(sum as u16)).to_be_bytes());
    f.extend_from_slice(&ip);
    f.extend_from_slice(&[0x30, 0x39]);
    f.extend_from_slice(&dport.to_be_bytes());
    f.extend_from_slice(&[0, 26, 0, 0]);
    f.resize(64, 0);
    f
}

/// A device's MAC address, in its namespace.
pub fn mac(ns: &NetNs, dev: &str) -> [u8; 6] {
    let out = ns.exec(&["cat", &format!("/sys/class/net/{dev}/address")]);
    let mut mac = [0u8; 6];
    for (i, part) in out.trim().split(':').enumerate().take(6) {
        mac[i] = u8::from_str_radix(part, 16).expect("a MAC address");
    }
    mac
}

/// The sum of a device's ethtool counters whose names end with `suffix`.
pub fn ethtool_sum(ns: &NetNs, dev: &str, suffix: &str) -> u64 {
    ns.exec(&["ethtool", "-S", dev])
        .lines()
        .filter_map(|l| l.trim().split_once(": "))
        .filter(|(k, _)| k.ends_with(suffix))
        .filter_map(|(_, v)| v.trim().parse::<u64>().ok())
        .sum()
}
