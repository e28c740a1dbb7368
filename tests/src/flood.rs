//! In-kernel traffic generators for the benchmark and the flood tests
//! (tests/bpf/trafficgen.bpf.c):
//!
//! - [`TestRunFlood`], portable: a program run with plain
//!   `BPF_PROG_TEST_RUN` and `repeat` rewrites the frame's source and
//!   tail-calls the program under test (a pinned program, in slot 0 of a
//!   one-slot program array), so every repeat is one packet judged by that
//!   program, with its maps, and the kernel times it. Works on a locked-down
//!   kernel, where live frames are refused to root too.
//! - [`Flood`]: an XDP program that returns XDP_TX, run with
//!   `BPF_F_TEST_XDP_LIVE_FRAMES`, sends each frame out of a device for
//!   real, where the kernel allows it ([`live_frames_allowed`]).
//!
//! The IPv4 source can vary per packet ([`Sources`]): one address,
//! round-robin over N, or random bits under a base (a spoofed flood). The
//! program rewrites the source and the header checksum, so a packet the
//! receiver passes reaches its stack intact.
//!
//! NB: written here because Debian's xdp-trafficgen 1.3.1 fails to start on
//! newer kernels (a tracepoint it needs is gone); the kernel mechanism is
//! the same one it uses.

use std::{
    net::Ipv4Addr,
    time::{Duration, Instant},
};

use std::path::Path;

use aya::{
    Ebpf,
    maps::{Array, ProgramArray},
    programs::{TestRun, TestRunAttrs, TestRunOptions, Xdp},
};

use crate::{NetNs, fixture};

/// The IPv4 sources of a flood.
#[derive(Clone, Copy, Debug)]
pub enum Sources {
    /// The frame's own source, untouched.
    AsIs,
    /// `count` addresses from `base` on, in turn.
    RoundRobin {
        /// The first address.
        base: Ipv4Addr,
        /// How many (at least 1).
        count: u32,
    },
    /// `base` with its low `bits` bits random per packet.
    Random {
        /// The fixed high bits.
        base: Ipv4Addr,
        /// How many low bits are random (at most 32).
        bits: u32,
    },
}

impl Sources {
    /// One fixed address, rewritten into every packet like the others (so
    /// the generator does the same work for one source as for many).
    pub fn one(addr: Ipv4Addr) -> Self {
        Sources::RoundRobin {
            base: addr,
            count: 1,
        }
    }
}

/// The generator's `config` (struct trafficgen_config in
/// tests/bpf/trafficgen.bpf.c).
#[derive(Clone, Copy, Default)]
#[repr(C)]
struct Config {
    mode: u32,
    base: u32,
    count: u32,
    mask: u32,
    sum: u32,
    seq: u32,
}

// SAFETY: repr(C), only u32 fields, no padding: any bytes are a valid value.
unsafe impl aya::Pod for Config {}

impl Config {
    fn new(frame: &[u8], sources: Sources) -> Self {
        let (mode, base, count, mask) = match sources {
            Sources::AsIs => (0, 0, 0, 0),
            Sources::RoundRobin { base, count } => (1, u32::from(base), count.max(1), 0),
            Sources::Random { base, bits } => {
                let mask = if bits >= 32 {
                    u32::MAX
                } else {
                    (1 << bits) - 1
                };
                (2, u32::from(base), 0, mask)
            }
        };
        Config {
            mode,
            base,
            count,
            mask,
            sum: header_sum_without_source(frame),
            seq: 0,
        }
    }
}

/// The one's-complement sum (folded to 16 bits) of the IPv4 header's
/// 16-bit words after the Ethernet header, leaving out the checksum and the
/// source address; words are taken in memory order (native endianness),
/// as the program adds the new source.
fn header_sum_without_source(frame: &[u8]) -> u32 {
    let ip = &frame[14..34];
    let mut sum = 0u32;
    for (i, w) in ip.chunks(2).enumerate() {
        // Words 5 (checksum), 6 and 7 (source).
        if !(5..=7).contains(&i) {
            sum += u32::from(u16::from_ne_bytes([w[0], w[1]]));
        }
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    sum
}

/// The generator object with its program `name` loaded.
fn load_generator(name: &str) -> Result<Ebpf, String> {
    let mut ebpf = Ebpf::load_file(fixture("trafficgen"))
        .map_err(|e| format!("loading the traffic generator: {e}"))?;
    let prog: &mut Xdp = ebpf.program_mut(name).unwrap().try_into().unwrap();
    prog.load().map_err(|e| format!("loading {name}: {e}"))?;
    Ok(ebpf)
}

/// Sets the generator's `config` for `frame` and `sources` (a frame that
/// is not Ethernet + IPv4 is sent as it is).
fn write_config(ebpf: &mut Ebpf, frame: &[u8], sources: Sources) {
    let mut config: Array<_, Config> =
        Array::try_from(ebpf.map_mut("config").expect("the generator's config"))
            .expect("config is an array");
    let value = if frame.len() >= 34 && frame[12..14] == [0x08, 0x00] {
        Config::new(frame, sources)
    } else {
        Config::default()
    };
    config
        .set(0, value, 0)
        .expect("writing the generator's config");
}

/// The verdict `prog` gives `frame` (one plain `BPF_PROG_TEST_RUN`).
pub fn verdict(prog: &Xdp, frame: &[u8]) -> u32 {
    let opts = TestRunOptions {
        data_in: Some(frame),
        ..Default::default()
    };
    prog.test_run(opts).expect("BPF_PROG_TEST_RUN").return_value
}

/// The verdict `prog` gives `frame` and the frame as the program left it
/// (one plain `BPF_PROG_TEST_RUN`).
pub fn reply(prog: &Xdp, frame: &[u8]) -> (u32, Vec<u8>) {
    let mut out = vec![0u8; 4096];
    let opts = TestRunOptions {
        data_in: Some(frame),
        data_out: Some(&mut out),
        ..Default::default()
    };
    let result = prog.test_run(opts).expect("BPF_PROG_TEST_RUN");
    out.truncate(result.data_size_out as usize);
    (result.return_value, out)
}

/// The `struct xdp_md` of a live-frames run: data_end the frame's length
/// (NB: the kernel wants it so), ingress_ifindex the sending device.
fn live_ctx(frame: &[u8], ifindex: u32) -> [u8; 24] {
    // data, data_end, data_meta, ingress_ifindex, rx_queue_index, egress_ifindex
    let mut ctx = [0u8; 24];
    ctx[4..8].copy_from_slice(&(frame.len() as u32).to_ne_bytes());
    ctx[12..16].copy_from_slice(&ifindex.to_ne_bytes());
    ctx
}

/// What one [`TestRunFlood::run`] measured.
#[derive(Clone, Copy, Debug)]
pub struct Judged {
    /// The verdict of the last packet (`XDP_DROP` = 1, `XDP_PASS` = 2).
    pub verdict: u32,
    /// Nanoseconds per packet, generator included, as the kernel timed
    /// them: its average is whole ns, truncated, so this is that + 0.5.
    /// The kernel stops its clock while the run is preempted, so another
    /// busy process on the CPU does not count (wall time would).
    pub ns: f64,
    /// The run's wall time over its repeats (preemption included).
    pub wall_ns: f64,
}

/// The portable flood: `floodrun` tail-calls a pinned XDP program for
/// every packet of a `BPF_PROG_TEST_RUN` with `repeat`.
pub struct TestRunFlood {
    ebpf: Ebpf,
    /// `floodrun`, or `synrun` (the frame restored before every packet).
    prog: &'static str,
}

/// The generator's `frame` (struct trafficgen_frame).
#[derive(Clone, Copy)]
#[repr(C)]
struct Frame {
    len: u32,
    bytes: [u8; 128],
}

// SAFETY: repr(C), a u32 then bytes, no padding: any bytes are valid.
unsafe impl aya::Pod for Frame {}

impl TestRunFlood {
    /// Loads the generator, with an empty target slot.
    pub fn new() -> Self {
        TestRunFlood {
            ebpf: load_generator("floodrun").unwrap_or_else(|e| panic!("{e}")),
            prog: "floodrun",
        }
    }

    /// The generator for a program that rewrites the frame it judges (a
    /// SYN answered in place): `synrun` writes the whole frame (at most
    /// 128 bytes) back before every packet, a cost that is the same for
    /// every program compared.
    pub fn restoring() -> Self {
        TestRunFlood {
            ebpf: load_generator("synrun").unwrap_or_else(|e| panic!("{e}")),
            prog: "synrun",
        }
    }

    /// Puts the XDP program pinned at `pin` in the target slot.
    ///
    /// # Errors
    /// Why the kernel refused it (not an XDP program, or one a tail call
    /// cannot reach, e.g. loaded with XDP frags).
    pub fn target(&mut self, pin: &Path) -> Result<(), String> {
        let prog = Xdp::from_pin(pin, aya_obj::programs::XdpAttachType::Interface)
            .map_err(|e| format!("opening {}: {e}", pin.display()))?;
        let fd = prog.fd().map_err(|e| e.to_string())?;
        let mut slot = ProgramArray::try_from(self.ebpf.map_mut("target").expect("target"))
            .expect("target is a program array");
        slot.set(0, fd, 0)
            .map_err(|e| format!("tail-calling {}: {e}", pin.display()))
    }

    /// Runs `repeat` packets: `frame` with sources from `sources`, each
    /// judged by the target program. The calling thread's CPU and
    /// namespace are the packets'.
    pub fn run(&mut self, frame: &[u8], sources: Sources, repeat: u32) -> Judged {
        write_config(&mut self.ebpf, frame, sources);
        if self.prog == "synrun" {
            assert!(
                (14..=128).contains(&frame.len()),
                "synrun restores frames of 14 to 128 bytes"
            );
            let mut bytes = [0u8; 128];
            bytes[..frame.len()].copy_from_slice(frame);
            let mut map: Array<_, Frame> =
                Array::try_from(self.ebpf.map_mut("frame").expect("frame")).expect("array");
            map.set(
                0,
                Frame {
                    len: frame.len() as u32,
                    bytes,
                },
                0,
            )
            .expect("writing the generator's frame");
        }
        let prog: &Xdp = self.ebpf.program(self.prog).unwrap().try_into().unwrap();
        let opts = TestRunOptions {
            data_in: Some(frame),
            repeat,
            ..Default::default()
        };
        let start = Instant::now();
        let result = prog
            .test_run(opts)
            .unwrap_or_else(|e| panic!("BPF_PROG_TEST_RUN of {}: {e}", self.prog));
        let took = start.elapsed();
        assert_ne!(
            result.return_value, 0,
            "{} returned XDP_ABORTED: no program in its target slot",
            self.prog
        );
        Judged {
            verdict: result.return_value,
            ns: result.duration.as_nanos() as f64 + 0.5,
            wall_ns: took.as_secs_f64() * 1e9 / f64::from(repeat.max(1)),
        }
    }
}

impl Default for TestRunFlood {
    fn default() -> Self {
        Self::new()
    }
}

/// Whether this kernel runs `BPF_PROG_TEST_RUN` with live frames (a
/// locked-down kernel refuses them with EPERM, to root too): tried once
/// with one frame out of a loopback device of a fresh namespace.
pub fn live_frames_allowed() -> Result<(), String> {
    let ns = NetNs::new();
    ns.exec(&["ip", "link", "set", "lo", "up"]);
    let ebpf = load_generator("trafficgen")?;
    let prog: &Xdp = ebpf.program("trafficgen").unwrap().try_into().unwrap();
    let frame = udp64([0; 6], [0; 6], [127, 0, 0, 1], [127, 0, 0, 1], 9);
    let _inside = ns.enter();
    let ctx = live_ctx(&frame, 1);
    let opts = TestRunOptions {
        data_in: Some(&frame),
        ctx_in: Some(&ctx),
        repeat: 1,
        attrs: TestRunAttrs::new().xdp_live_frames(1),
        ..Default::default()
    };
    prog.test_run(opts)
        .map(|_| ())
        .map_err(|e| format!("BPF_PROG_TEST_RUN with live frames: {e}"))
}

/// A loaded generator, ready to send from a device in a namespace.
pub struct Flood {
    ebpf: Ebpf,
}

impl Flood {
    /// Loads the generator program.
    pub fn new() -> Self {
        Flood {
            ebpf: load_generator("trafficgen").unwrap_or_else(|e| panic!("{e}")),
        }
    }

    /// Sends `count` copies of `frame` out of `dev` in `ns` as fast as the
    /// kernel can, each from a source of `sources`; returns how long it
    /// took.
    pub fn send(
        &mut self,
        ns: &NetNs,
        dev: &str,
        frame: &[u8],
        sources: Sources,
        count: u32,
    ) -> Duration {
        write_config(&mut self.ebpf, frame, sources);
        let _inside = ns.enter();
        let ifindex = nix::net::if_::if_nametoindex(dev).expect("the sending device");
        let ctx = live_ctx(frame, ifindex);
        let prog: &Xdp = self.ebpf.program("trafficgen").unwrap().try_into().unwrap();
        let opts = TestRunOptions {
            data_in: Some(frame),
            ctx_in: Some(&ctx),
            repeat: count,
            attrs: TestRunAttrs::new().xdp_live_frames(64),
            ..Default::default()
        };
        // NB: the receiver's NAPI runs where the generator runs (veth
        // schedules it on the sending CPU): one fixed CPU for every run, or
        // runs that land on a busier CPU make the floors and the
        // contenders incomparable.
        let pinned = Pinned::last_cpu();
        let start = Instant::now();
        let result = prog
            .test_run(opts)
            .expect("BPF_PROG_TEST_RUN with live frames");
        let took = start.elapsed();
        drop(pinned);
        assert_eq!(
            result.return_value, 0,
            "live frames run returned {}",
            result.return_value
        );
        took
    }
}

/// The calling thread on the last CPU until dropped (then on the CPUs it
/// had before).
pub struct Pinned(Option<nix::sched::CpuSet>);

impl Pinned {
    /// Pins the calling thread to the last CPU.
    pub fn last_cpu() -> Self {
        Self::cpu(std::thread::available_parallelism().map_or(0, |n| n.get() - 1))
    }

    /// Pins the calling thread to `cpu`.
    pub fn cpu(cpu: usize) -> Self {
        let me = nix::unistd::Pid::from_raw(0);
        let before = nix::sched::sched_getaffinity(me).ok();
        let mut one = nix::sched::CpuSet::new();
        if one.set(cpu).is_ok() {
            let _ = nix::sched::sched_setaffinity(me, &one);
        }
        Pinned(before)
    }
}

/// Sends raw Ethernet frames out of `dev` in `ns` (AF_PACKET), each once.
pub fn send_raw(ns: &NetNs, dev: &str, frames: &[Vec<u8>]) {
    let mut socket = RawSender::open(ns, dev);
    for f in frames {
        assert!(
            socket.send(f),
            "sendto: {}",
            std::io::Error::last_os_error()
        );
    }
}

/// An AF_PACKET socket bound for sending out of one device.
pub struct RawSender {
    fd: std::os::fd::OwnedFd,
    addr: libc::sockaddr_ll,
}

impl RawSender {
    /// A socket for `dev` in `ns` (made inside the namespace).
    pub fn open(ns: &NetNs, dev: &str) -> Self {
        use std::os::fd::FromRawFd;
        let _in = ns.enter();
        let ifindex = nix::net::if_::if_nametoindex(dev).expect("the sending device");
        // SAFETY: a plain socket call; the fd is owned from here on.
        let fd = unsafe { libc::socket(libc::AF_PACKET, libc::SOCK_RAW, 0) };
        assert!(fd >= 0, "AF_PACKET: {}", std::io::Error::last_os_error());
        // SAFETY: all zeroes is a valid sockaddr_ll; the fields are set below.
        let mut addr: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
        addr.sll_family = libc::AF_PACKET as u16;
        addr.sll_ifindex = ifindex as i32;
        addr.sll_halen = 6;
        RawSender {
            // SAFETY: `fd` is a new socket nothing else owns.
            fd: unsafe { std::os::fd::OwnedFd::from_raw_fd(fd) },
            addr,
        }
    }

    /// Sends one frame; whether all of it went.
    pub fn send(&mut self, frame: &[u8]) -> bool {
        use std::os::fd::AsRawFd;
        // SAFETY: the frame and the address are ours and live for the call.
        let n = unsafe {
            libc::sendto(
                self.fd.as_raw_fd(),
                frame.as_ptr().cast(),
                frame.len(),
                0,
                (&self.addr as *const libc::sockaddr_ll).cast(),
                size_of::<libc::sockaddr_ll>() as u32,
            )
        };
        n == frame.len() as isize
    }
}

/// A counter of `/proc/net/netstat`'s `TcpExt` in `ns` (0 if absent).
pub fn tcp_ext(ns: &NetNs, field: &str) -> u64 {
    let text = ns.exec(&["cat", "/proc/net/netstat"]);
    let mut lines = text.lines().filter(|l| l.starts_with("TcpExt:"));
    let (Some(names), Some(values)) = (lines.next(), lines.next()) else {
        return 0;
    };
    names
        .split_whitespace()
        .zip(values.split_whitespace())
        .find(|(k, _)| *k == field)
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0)
}

/// The Internet checksum's 32-bit sum of `bytes` (big-endian words) on
/// `init`, folded to 16 bits (not complemented).
pub fn ones_sum(bytes: &[u8], init: u32) -> u32 {
    let mut s = init;
    for c in bytes.chunks(2) {
        s += u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)]));
    }
    while s > 0xffff {
        s = (s & 0xffff) + (s >> 16);
    }
    s
}

impl Drop for Pinned {
    fn drop(&mut self) {
        if let Some(before) = &self.0 {
            let _ = nix::sched::sched_setaffinity(nix::unistd::Pid::from_raw(0), before);
        }
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

/// The Ethernet and IP ends of a segment: (MAC, address) of the sender,
/// then of the receiver.
pub type Ends = (([u8; 6], Ipv4Addr), ([u8; 6], Ipv4Addr));

/// A TCP segment from `src:sport` to `dst:dport` in an Ethernet frame,
/// with `flags` (byte 13), `seq` and `ack`; a SYN offers an MSS of 1460.
/// Checksums right.
pub fn tcp_frame(ends: Ends, sport: u16, dport: u16, flags: u8, seq: u32, ack: u32) -> Vec<u8> {
    let opts: &[u8] = if flags & 0x02 != 0 {
        &[2, 4, 0x05, 0xb4]
    } else {
        &[]
    };
    tcp_frame_with(ends, (sport, dport), flags, (seq, ack), opts)
}

/// The options of a Linux client's SYN: MSS 1460, SACK permitted, a
/// timestamp (`tsval`), NOP, window scale 7.
pub fn linux_syn_options(tsval: u32) -> [u8; 20] {
    let mut o = [
        2, 4, 0x05, 0xb4, 4, 2, 8, 10, 0, 0, 0, 0, 0, 0, 0, 0, 1, 3, 3, 7,
    ];
    o[8..12].copy_from_slice(&tsval.to_be_bytes());
    o
}

/// A TCP segment as [`tcp_frame`] makes it, with the TCP options `opts`
/// (a multiple of 4 bytes, at most 40).
pub fn tcp_frame_with(
    ends: Ends,
    (sport, dport): (u16, u16),
    flags: u8,
    (seq, ack): (u32, u32),
    opts: &[u8],
) -> Vec<u8> {
    let ((src_mac, src), (dst_mac, dst)) = ends;
    assert!(
        opts.len().is_multiple_of(4) && opts.len() <= 40,
        "TCP options of {} bytes",
        opts.len()
    );
    let tcp_len = 20 + opts.len();
    let mut ip = vec![0x45, 0, 0, 0, 0, 1, 0x40, 0, 64, 6, 0, 0];
    ip[2..4].copy_from_slice(&((20 + tcp_len) as u16).to_be_bytes());
    ip.extend(src.octets());
    ip.extend(dst.octets());
    let ip_sum = !(ones_sum(&ip, 0) as u16);
    ip[10..12].copy_from_slice(&ip_sum.to_be_bytes());
    let mut tcp = Vec::with_capacity(tcp_len);
    tcp.extend(sport.to_be_bytes());
    tcp.extend(dport.to_be_bytes());
    tcp.extend(seq.to_be_bytes());
    tcp.extend(ack.to_be_bytes());
    tcp.push(((tcp_len / 4) as u8) << 4);
    tcp.push(flags);
    tcp.extend(64240u16.to_be_bytes());
    tcp.extend([0, 0, 0, 0]);
    tcp.extend(opts);
    let mut pseudo = Vec::with_capacity(12);
    pseudo.extend(src.octets());
    pseudo.extend(dst.octets());
    pseudo.extend([0, 6]);
    pseudo.extend((tcp_len as u16).to_be_bytes());
    let tcp_sum = !(ones_sum(&tcp, ones_sum(&pseudo, 0)) as u16);
    tcp[16..18].copy_from_slice(&tcp_sum.to_be_bytes());
    let mut f = Vec::with_capacity(14 + 20 + tcp_len);
    f.extend(dst_mac);
    f.extend(src_mac);
    f.extend([0x08, 0x00]);
    f.extend(ip);
    f.extend(tcp);
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

/// A counter of `/proc/net/snmp` in `ns`: `group` is the line's prefix
/// (`Ip`, `Udp`), `field` the column (`InDelivers`).
pub fn snmp(ns: &NetNs, group: &str, field: &str) -> u64 {
    let text = ns.exec(&["cat", "/proc/net/snmp"]);
    let prefix = format!("{group}:");
    let mut lines = text.lines().filter(|l| l.starts_with(&prefix));
    let (names, values) = (lines.next(), lines.next());
    names
        .zip(values)
        .and_then(|(n, v)| {
            n.split_whitespace()
                .zip(v.split_whitespace())
                .find(|(k, _)| *k == field)
                .and_then(|(_, v)| v.parse().ok())
        })
        .unwrap_or_else(|| panic!("no {group} {field} in /proc/net/snmp:\n{text}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What the program writes: the checksum from the sum userspace gives
    /// it and the new source, as in tests/bpf/trafficgen.bpf.c.
    fn program_checksum(config: &Config, src: Ipv4Addr) -> [u8; 2] {
        let saddr = u32::from_ne_bytes(src.octets());
        let mut sum = config.sum + (saddr & 0xffff) + (saddr >> 16);
        sum = (sum & 0xffff) + (sum >> 16);
        sum = (sum & 0xffff) + (sum >> 16);
        (!(sum as u16)).to_ne_bytes()
    }

    #[test]
    fn rewritten_source_keeps_the_ipv4_checksum_right() {
        let frame = udp64([2; 6], [4; 6], [10, 250, 3, 1], [10, 250, 3, 2], 9);
        let config = Config::new(&frame, Sources::one(Ipv4Addr::new(10, 1, 0, 0)));
        for src in [
            Ipv4Addr::new(10, 250, 3, 1),
            Ipv4Addr::new(10, 1, 0, 0),
            Ipv4Addr::new(10, 255, 255, 255),
            Ipv4Addr::new(203, 0, 113, 5),
            Ipv4Addr::new(0, 0, 0, 0),
            Ipv4Addr::new(255, 255, 255, 255),
        ] {
            let want = udp64([2; 6], [4; 6], src.octets(), [10, 250, 3, 2], 9);
            assert_eq!(
                program_checksum(&config, src),
                [want[24], want[25]],
                "checksum for source {src}"
            );
        }
    }

    #[test]
    fn random_sources_mask_the_low_bits() {
        let frame = udp64([2; 6], [4; 6], [1, 2, 3, 4], [5, 6, 7, 8], 9);
        let c = Config::new(
            &frame,
            Sources::Random {
                base: Ipv4Addr::new(10, 0, 0, 0),
                bits: 24,
            },
        );
        assert_eq!((c.mode, c.base, c.mask), (2, 0x0a00_0000, 0x00ff_ffff));
    }
}
