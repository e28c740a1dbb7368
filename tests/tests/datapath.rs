//! The built-in firewall's datapath, run on crafted frames with
//! `BPF_PROG_TEST_RUN`: verdicts and counters.

use std::net::Ipv4Addr;

use aya::{
    Ebpf,
    maps::{Array, HashMap, PerCpuArray, PerCpuHashMap},
    programs::{TestRun, TestRunOptions, Xdp},
};
use xdp_progs::xdpfw::{self, Config, Counter, Outcome};
use xdpctl_tests::require_privileges;

const XDP_DROP: u32 = 1;
const XDP_PASS: u32 = 2;

const SRC: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 7);
const DST: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);

/// Builds Ethernet + IPv4 (+ L4 bytes) with the given protocol.
fn frame(src: Ipv4Addr, proto: u8, l4: &[u8]) -> Vec<u8> {
    let mut f = Vec::new();
    f.extend_from_slice(&[0x02, 0, 0, 0, 0, 2, 0x02, 0, 0, 0, 0, 1, 0x08, 0x00]);
    let total = (20 + l4.len()) as u16;
    f.extend_from_slice(&[
        0x45,
        0,
        (total >> 8) as u8,
        total as u8,
        0,
        1,
        0,
        0,
        64,
        proto,
        0,
        0,
    ]);
    f.extend_from_slice(&src.octets());
    f.extend_from_slice(&DST.octets());
    f.extend_from_slice(l4);
    f
}

fn udp(src: Ipv4Addr, dport: u16) -> Vec<u8> {
    let mut l4 = vec![0x30, 0x39];
    l4.extend_from_slice(&dport.to_be_bytes());
    l4.extend_from_slice(&[0, 12, 0, 0, b'p', b'i', b'n', b'g']);
    frame(src, 17, &l4)
}

fn icmp_echo(src: Ipv4Addr) -> Vec<u8> {
    frame(src, 1, &[8, 0, 0, 0, 0, 1, 0, 1])
}

fn tcp(src: Ipv4Addr) -> Vec<u8> {
    let mut l4 = vec![0u8; 20];
    l4[2..4].copy_from_slice(&22u16.to_be_bytes());
    l4[12] = 0x50;
    frame(src, 6, &l4)
}

struct Fw {
    ebpf: Ebpf,
}

impl Fw {
    fn load() -> Self {
        let mut ebpf = Ebpf::load(xdpfw::OBJECT).expect("loading xdpfw");
        let prog: &mut Xdp = ebpf
            .program_mut(xdpfw::PROGRAM)
            .unwrap()
            .try_into()
            .unwrap();
        prog.load().expect("the verifier accepts xdp_fw");
        Fw { ebpf }
    }

    fn run(&self, data: &[u8]) -> u32 {
        let prog: &Xdp = self
            .ebpf
            .program(xdpfw::PROGRAM)
            .unwrap()
            .try_into()
            .unwrap();
        let opts = TestRunOptions {
            data_in: Some(data),
            ..Default::default()
        };
        prog.test_run(opts).expect("BPF_PROG_TEST_RUN").return_value
    }

    fn stats(&self, outcome: Outcome) -> Counter {
        let map: PerCpuArray<_, Counter> =
            PerCpuArray::try_from(self.ebpf.map(xdpfw::maps::STATS).unwrap()).unwrap();
        let values = map.get(&outcome.index(), 0).unwrap();
        values.iter().fold(Counter::default(), |acc, c| Counter {
            packets: acc.packets + c.packets,
            bytes: acc.bytes + c.bytes,
        })
    }

    fn icmp_drops(&self) -> u64 {
        let map: PerCpuArray<_, u64> =
            PerCpuArray::try_from(self.ebpf.map(xdpfw::maps::ICMP_DROPS).unwrap()).unwrap();
        map.get(&0, 0).unwrap().iter().sum()
    }

    fn pps(&self, src: Ipv4Addr) -> Option<u64> {
        let map: PerCpuHashMap<_, [u8; 4], u64> =
            PerCpuHashMap::try_from(self.ebpf.map(xdpfw::maps::PPS).unwrap()).unwrap();
        map.get(&src.octets(), 0).ok().map(|v| v.iter().sum())
    }

    fn block(&mut self, src: Ipv4Addr) {
        let mut map: HashMap<_, [u8; 4], u8> =
            HashMap::try_from(self.ebpf.map_mut(xdpfw::maps::BLOCKLIST).unwrap()).unwrap();
        // The key is the address in network order: its octets as they are.
        map.insert(src.octets(), 1, 0).unwrap();
    }

    fn drop_udp_port(&mut self, port: u16) {
        let mut map: HashMap<_, [u8; 2], u8> =
            HashMap::try_from(self.ebpf.map_mut(xdpfw::maps::UDP_PORTS).unwrap()).unwrap();
        map.insert(port.to_be_bytes(), 1, 0).unwrap();
    }

    fn set_drop_icmp(&mut self, on: bool) {
        let mut map: Array<_, Config> =
            Array::try_from(self.ebpf.map_mut(xdpfw::maps::CONFIG).unwrap()).unwrap();
        map.set(
            0,
            Config {
                drop_icmp: u8::from(on),
            },
            0,
        )
        .unwrap();
    }

    /// Packets per outcome, for whole-table assertions.
    fn outcome_packets(&self) -> Vec<(&'static str, u64)> {
        Outcome::ALL
            .iter()
            .map(|o| (o.name(), self.stats(*o).packets))
            .collect()
    }
}

#[test]
fn fresh_load_drops_nothing() {
    require_privileges!();
    let fw = Fw::load();
    for f in [udp(SRC, 9999), icmp_echo(SRC), tcp(SRC)] {
        assert_eq!(fw.run(&f), XDP_PASS);
    }
    assert_eq!(
        fw.outcome_packets(),
        [
            ("passed", 3),
            ("drop_blocklist", 0),
            ("drop_udp_port", 0),
            ("drop_icmp", 0),
            ("malformed", 0)
        ]
    );
}

#[test]
fn blocked_source_is_dropped_before_counting() {
    require_privileges!();
    let mut fw = Fw::load();
    let other = Ipv4Addr::new(203, 0, 113, 9);
    fw.block(SRC);
    for _ in 0..3 {
        assert_eq!(fw.run(&udp(SRC, 53)), XDP_DROP);
    }
    assert_eq!(fw.run(&tcp(SRC)), XDP_DROP);
    assert_eq!(fw.run(&udp(other, 53)), XDP_PASS);
    assert_eq!(
        fw.pps(SRC),
        None,
        "a blocked source must not be counted in pps"
    );
    assert_eq!(fw.pps(other), Some(1));
    let dropped = fw.stats(Outcome::DropBlocklist);
    assert_eq!(dropped.packets, 4);
    assert_eq!(
        dropped.bytes,
        3 * udp(SRC, 53).len() as u64 + tcp(SRC).len() as u64
    );
}

#[test]
fn udp_port_rule_drops_only_that_port() {
    require_privileges!();
    let mut fw = Fw::load();
    fw.drop_udp_port(9999);
    assert_eq!(fw.run(&udp(SRC, 9999)), XDP_DROP);
    assert_eq!(fw.run(&udp(SRC, 9998)), XDP_PASS);
    // TCP to the same port number is not UDP.
    let mut t = tcp(SRC);
    t[34 + 2..34 + 4].copy_from_slice(&9999u16.to_be_bytes());
    assert_eq!(fw.run(&t), XDP_PASS);
    assert_eq!(fw.stats(Outcome::DropUdpPort).packets, 1);
    assert_eq!(
        fw.pps(SRC),
        Some(3),
        "passed and port-dropped packets are counted per source"
    );
}

#[test]
fn icmp_switch_drops_and_counts_only_when_on() {
    require_privileges!();
    let mut fw = Fw::load();
    assert_eq!(fw.run(&icmp_echo(SRC)), XDP_PASS);
    fw.set_drop_icmp(true);
    for _ in 0..4 {
        assert_eq!(fw.run(&icmp_echo(SRC)), XDP_DROP);
    }
    assert_eq!(
        fw.run(&udp(SRC, 7)),
        XDP_PASS,
        "the switch is about ICMP only"
    );
    assert_eq!(fw.icmp_drops(), 4);
    assert_eq!(fw.stats(Outcome::DropIcmp).packets, 4);
    fw.set_drop_icmp(false);
    assert_eq!(fw.run(&icmp_echo(SRC)), XDP_PASS);
    assert_eq!(fw.icmp_drops(), 4);
}

#[test]
fn malformed_frames_are_passed_and_counted() {
    require_privileges!();
    let mut fw = Fw::load();
    fw.block(SRC);
    fw.drop_udp_port(53);
    let good = udp(SRC, 53);
    let mut cases: Vec<(&str, Vec<u8>)> = vec![
        // BPF_PROG_TEST_RUN needs at least an Ethernet header, so the
        // shortest frame here is 14 bytes.
        ("ethernet only", good[..14].to_vec()),
        ("ipv4 header cut at 19 bytes", good[..14 + 19].to_vec()),
        ("udp header cut at 7 bytes", {
            let mut f = udp(Ipv4Addr::new(192, 0, 2, 1), 53);
            f.truncate(14 + 20 + 7);
            f
        }),
        ("ihl past the end of the frame", {
            let mut f = udp(Ipv4Addr::new(192, 0, 2, 1), 53);
            f[14] = 0x4f;
            f
        }),
    ];
    for ihl in 0..5u8 {
        let mut f = good.clone();
        f[14] = 0x40 | ihl;
        cases.push(("ihl below 5", f));
    }
    let n = cases.len() as u64;
    for (what, f) in &cases {
        assert_eq!(
            fw.run(f),
            XDP_PASS,
            "{what}: a malformed frame must be passed"
        );
    }
    assert_eq!(fw.stats(Outcome::Malformed).packets, n);
    assert_eq!(fw.stats(Outcome::DropBlocklist).packets, 0);
    assert_eq!(fw.stats(Outcome::DropUdpPort).packets, 0);
}

#[test]
fn ip_options_are_skipped_to_find_the_udp_port() {
    require_privileges!();
    let mut fw = Fw::load();
    fw.drop_udp_port(9999);
    // ihl = 6: four bytes of options (NOP NOP NOP EOL) before UDP.
    let plain = udp(SRC, 9999);
    let mut f = plain[..34].to_vec();
    f[14] = 0x46;
    f.extend_from_slice(&[1, 1, 1, 0]);
    f.extend_from_slice(&plain[34..]);
    assert_eq!(fw.run(&f), XDP_DROP);
}

#[test]
fn non_ipv4_is_passed_untouched() {
    require_privileges!();
    let mut fw = Fw::load();
    fw.set_drop_icmp(true);
    let mut arp = vec![0xffu8; 6];
    arp.extend_from_slice(&[0x02, 0, 0, 0, 0, 1, 0x08, 0x06]);
    arp.extend_from_slice(&[0u8; 28]);
    let mut ipv6 = icmp_echo(SRC);
    ipv6[12..14].copy_from_slice(&[0x86, 0xdd]);
    assert_eq!(fw.run(&arp), XDP_PASS);
    assert_eq!(fw.run(&ipv6), XDP_PASS);
    assert_eq!(fw.stats(Outcome::Passed).packets, 2);
    assert_eq!(fw.icmp_drops(), 0);
}

#[test]
fn pps_counts_each_source() {
    require_privileges!();
    let fw = Fw::load();
    let a = Ipv4Addr::new(192, 0, 2, 10);
    let b = Ipv4Addr::new(192, 0, 2, 11);
    for _ in 0..5 {
        fw.run(&udp(a, 1000));
    }
    fw.run(&tcp(b));
    assert_eq!(fw.pps(a), Some(5));
    assert_eq!(fw.pps(b), Some(1));
}
