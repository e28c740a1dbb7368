//! The XDP programs that xdpctl ships, compiled from C by `build.rs` and
//! embedded in the binary, with the names of their programs and maps.
//!
//! Why C and not Rust: operators read and audit the datapath, and BPF C is
//! what they know; it is also what the verifier messages refer to.
//!
//! The names below are xdpctl's user interface (`xdpctl map dump pps`): they
//! must match the C sources, which a test checks against the object itself.

/// The built-in firewall: object bytes and the names inside it.
pub mod xdpfw {
    /// The compiled BPF object (ELF), aligned for parsing in place.
    pub static OBJECT: &[u8] =
        aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/xdpfw.bpf.o"));

    /// Name of the object, used as the default pin directory name.
    pub const NAME: &str = "xdpfw";
    /// The XDP program.
    pub const PROGRAM: &str = "xdp_fw";

    /// Map names. Keys and values are declared with their wire types in BTF.
    pub mod maps {
        /// HASH `__be32` source address → `__u8` (non-zero: drop).
        pub const BLOCKLIST: &str = "blocklist";
        /// HASH `struct in6_addr` source address → `__u8` (non-zero: drop).
        pub const BLOCKLIST6: &str = "blocklist6";
        /// LPM_TRIE `{prefixlen, __be32}` source prefix → `__u8` (non-zero: drop).
        pub const CIDR4: &str = "cidr4";
        /// LPM_TRIE `{prefixlen, struct in6_addr}` source prefix → `__u8`.
        pub const CIDR6: &str = "cidr6";
        /// LRU_PERCPU_HASH `__be32` source address → `__u64` packets.
        pub const PPS: &str = "pps";
        /// LRU_PERCPU_HASH `struct in6_addr` source address → `__u64` packets.
        pub const PPS6: &str = "pps6";
        /// HASH `__be16` UDP destination port → `__u8` (non-zero: drop).
        pub const UDP_PORTS: &str = "udp_ports";
        /// HASH `__be16` TCP destination port → `__u8` (non-zero: drop).
        pub const TCP_PORTS: &str = "tcp_ports";
        /// PERCPU_ARRAY, one `__u64`: ICMPv4 packets dropped.
        pub const ICMP_DROPS: &str = "icmp_drops";
        /// ARRAY, one [`Config`](super::Config).
        pub const CONFIG: &str = "config";
        /// PERCPU_ARRAY indexed by [`Outcome`](super::Outcome), value [`Counter`](super::Counter).
        pub const STATS: &str = "stats";
        /// ARRAY `__u32` → `__u32`: the CIDR index's first level (see [`cidr4_index`](super::cidr4_index)).
        pub const CIDR4_L1: &str = "cidr4_l1";
        /// ARRAY `__u32` → `__u32`: the CIDR index's chunks of 256 entries.
        pub const CIDR4_CHUNKS: &str = "cidr4_chunks";
        /// ARRAY, one `struct xdpfw_cidr6_lens`: the prefix lengths in
        /// `cidr6` (see [`cidr6_index`](super::cidr6_index)).
        pub const CIDR6_LENS: &str = "cidr6_lens";
        /// HASH `{prefixlen, struct in6_addr}` → `__u32`: the IPv6 CIDR
        /// index's prefixes and markers.
        pub const CIDR6_INDEX: &str = "cidr6_index";
        /// ARRAY of u64: a one-hash filter of `cidr6_index`'s keys.
        pub const CIDR6_FILTER: &str = "cidr6_filter";
        /// PERCPU_ARRAY of [`HitSlot`](super::HitSlot): the counters per
        /// rule of the rules hit last on each CPU.
        pub const HIT_CACHE: &str = "hit_cache";
        /// HASH [`RuleKey`](super::RuleKey) → [`Hits`](super::Hits):
        /// the counters per rule moved out of `hit_cache`.
        pub const RULE_HITS: &str = "rule_hits";
        /// ARRAY `__u32` → `__u64`: control words, indexed by [`Ctl`](super::Ctl).
        pub const CTL: &str = "ctl";
        /// PERCPU_ARRAY, one entry: the per-source sketch's epoch and totals.
        pub const SKETCH_HDR: &str = "sketch_hdr";
        /// PERCPU_ARRAY: the per-source sketch.
        pub const SKETCH: &str = "sketch";
        /// ARRAY: a direct-mapped cache of the sources in `pps`/`pps6`.
        pub const HEAVY: &str = "heavy";
        /// ARRAY of two bitmaps: the port index (UDP, TCP).
        pub const PORT_BITS: &str = "port_bits";
        /// ARRAY: a direct-mapped cache of blocklisted IPv4 sources.
        pub const DROP_CACHE: &str = "drop_cache";
        /// ARRAY of u64: a one-hash Bloom filter of `blocklist`.
        pub const BLOOM: &str = "bloom";
        /// HASH: the CIDR index's chunks past `cidr4_chunks`' room.
        pub const CIDR4_SPILL: &str = "cidr4_spill";
        /// ARRAY, one [`CaptureCfg`](super::CaptureCfg): what a capture wants.
        pub const CAPTURE_CFG: &str = "capture_cfg";
        /// PERCPU_ARRAY, one `struct xdpfw_capture_slot`: a capture's
        /// counts per CPU and the record being built.
        pub const CAPTURE_SLOT: &str = "capture_slot";
        /// RINGBUF: captured packets, each a [`CaptureRec`](super::CaptureRec)
        /// and its bytes.
        pub const CAPTURE_RB: &str = "capture_rb";
        /// PROG_ARRAY, one slot: the XDP program the firewall hands the
        /// packets it passes to (`xdpctl chain`); empty, they pass.
        pub const CHAIN: &str = "chain";
        /// LPM_TRIE `{prefixlen, __be32}` source prefix → [`Rate`](super::Rate):
        /// its rate limit.
        pub const RATE4: &str = "rate4";
        /// LPM_TRIE `{prefixlen, struct in6_addr}` source prefix → [`Rate`](super::Rate).
        pub const RATE6: &str = "rate6";
        /// LRU_HASH `struct xdpfw_rate_key` → the buckets of a source under
        /// a per-source rate limit.
        pub const RATE_STATE: &str = "rate_state";
        /// HASH `__be16` TCP port → `__u8` (non-zero: SYNs answered with
        /// SYN cookies).
        pub const SYN_PORTS: &str = "syn_ports";
        /// ARRAY, one `struct xdpfw_port_bits`: `syn_ports` as a bitmap.
        pub const SYN_BITS: &str = "syn_bits";
        /// ARRAY, one [`SynCfg`](super::SynCfg): how SYN-ACKs are made.
        pub const SYN_CFG: &str = "syn_cfg";
        /// ARRAY of 2 x 65,536 `__u64`: when a SYN to each port (IPv4, then IPv6) last went to
        /// the kernel.
        pub const SYN_KEEP: &str = "syn_keep";
        /// Every map of the object.
        pub const ALL: &[&str] = &[
            BLOCKLIST,
            BLOCKLIST6,
            CIDR4,
            CIDR6,
            PPS,
            PPS6,
            UDP_PORTS,
            TCP_PORTS,
            ICMP_DROPS,
            CONFIG,
            STATS,
            CIDR4_L1,
            CIDR4_CHUNKS,
            CIDR6_LENS,
            CIDR6_INDEX,
            CIDR6_FILTER,
            CTL,
            SKETCH_HDR,
            SKETCH,
            HEAVY,
            PORT_BITS,
            DROP_CACHE,
            BLOOM,
            CIDR4_SPILL,
            CAPTURE_CFG,
            CAPTURE_SLOT,
            CAPTURE_RB,
            HIT_CACHE,
            RULE_HITS,
            CHAIN,
            RATE4,
            RATE6,
            RATE_STATE,
            SYN_PORTS,
            SYN_BITS,
            SYN_CFG,
            SYN_KEEP,
        ];
        /// Whether an object with these maps is the firewall (of this
        /// version or another): it has the firewall's control words and
        /// CIDR index.
        pub fn is_firewall(has: impl Fn(&str) -> bool) -> bool {
            has(CTL) && has(CIDR4_L1)
        }
        /// The maps of [`INTERNAL`] whose size the operator may choose
        /// (`load --max-entries`): the room of the CIDR indexes.
        pub const TUNABLE: &[&str] = &[CIDR4_CHUNKS, CIDR6_INDEX, RULE_HITS, RATE_STATE];
        /// Whether the operator may give the firewall's map `name` another
        /// size (`load --max-entries`): its rule maps, the per-source
        /// tables, the [`TUNABLE`] indexes, and `ctl` (fewer words: an
        /// older firewall's shape, which works); not the maps whose size
        /// its program is built for.
        pub fn sizeable(name: &str) -> bool {
            name == CTL
                || TUNABLE.contains(&name)
                || !(INTERNAL.contains(&name) || [STATS, CONFIG, ICMP_DROPS].contains(&name))
        }
        /// Maps the firewall derives or keeps for itself: no rules in them.
        pub const INTERNAL: &[&str] = &[
            CIDR4_L1,
            CIDR4_CHUNKS,
            CIDR6_LENS,
            CIDR6_INDEX,
            CIDR6_FILTER,
            CTL,
            SKETCH_HDR,
            SKETCH,
            HEAVY,
            PORT_BITS,
            DROP_CACHE,
            BLOOM,
            CIDR4_SPILL,
            CAPTURE_CFG,
            CAPTURE_SLOT,
            CAPTURE_RB,
            HIT_CACHE,
            RULE_HITS,
            RATE_STATE,
            SYN_BITS,
            SYN_KEEP,
        ];
    }

    /// What the firewall did with a packet: the index into the `stats` map.
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
    #[repr(u32)]
    pub enum Outcome {
        /// Passed: matched no rule.
        Passed = 0,
        /// Dropped: source in `blocklist`.
        DropBlocklist = 1,
        /// Dropped: UDP destination port in `udp_ports`.
        DropUdpPort = 2,
        /// Dropped: ICMP while `config.drop_icmp` is set.
        DropIcmp = 3,
        /// Passed: truncated or inconsistent headers.
        Malformed = 4,
        /// Dropped: source in `cidr4` / `cidr6`.
        DropCidr = 5,
        /// Dropped: TCP destination port in `tcp_ports`.
        DropTcpPort = 6,
        /// Dropped: ICMPv6 echo while `config.drop_icmp6_echo` is set.
        DropIcmp6 = 7,
        /// Passed: not IPv4/IPv6, or deeper than the parser goes.
        Unparsed = 8,
        /// Dropped: over the rate limit of its source's prefix in `rate4` / `rate6`.
        DropRate = 9,
        /// A SYN to a port of `syn_ports`, answered with a SYN cookie (XDP_TX).
        SynCookie = 10,
        /// Dropped: an ACK to a port of `syn_ports` that no connection
        /// has, with a wrong cookie.
        DropCookie = 11,
    }

    impl Outcome {
        /// Every outcome, in `stats` index order.
        pub const ALL: [Outcome; 12] = [
            Outcome::Passed,
            Outcome::DropBlocklist,
            Outcome::DropUdpPort,
            Outcome::DropIcmp,
            Outcome::Malformed,
            Outcome::DropCidr,
            Outcome::DropTcpPort,
            Outcome::DropIcmp6,
            Outcome::Unparsed,
            Outcome::DropRate,
            Outcome::SynCookie,
            Outcome::DropCookie,
        ];

        /// The outcome's name as xdpctl prints it.
        pub const fn name(self) -> &'static str {
            match self {
                Outcome::Passed => "passed",
                Outcome::DropBlocklist => "drop_blocklist",
                Outcome::DropUdpPort => "drop_udp_port",
                Outcome::DropIcmp => "drop_icmp",
                Outcome::Malformed => "malformed",
                Outcome::DropCidr => "drop_cidr",
                Outcome::DropTcpPort => "drop_tcp_port",
                Outcome::DropIcmp6 => "drop_icmp6",
                Outcome::Unparsed => "unparsed",
                Outcome::DropRate => "drop_rate",
                Outcome::SynCookie => "syn_cookie",
                Outcome::DropCookie => "drop_cookie",
            }
        }

        /// Whether packets with this outcome are dropped.
        pub const fn drops(self) -> bool {
            matches!(
                self,
                Outcome::DropBlocklist
                    | Outcome::DropUdpPort
                    | Outcome::DropIcmp
                    | Outcome::DropCidr
                    | Outcome::DropTcpPort
                    | Outcome::DropIcmp6
                    | Outcome::DropRate
                    | Outcome::DropCookie
            )
        }

        /// The index of this outcome in the `stats` map.
        pub const fn index(self) -> u32 {
            self as u32
        }
    }

    /// Slots in the `stats` map (room for outcomes added later).
    pub const OUTCOME_SLOTS: u32 = 16;

    /// One `stats` entry (per CPU), as `struct xdpfw_counter` in C.
    #[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
    #[repr(C)]
    pub struct Counter {
        /// Packets.
        pub packets: u64,
        /// Bytes, counted from the start of the Ethernet header.
        pub bytes: u64,
    }

    // SAFETY: plain old data of two u64 with no padding.
    unsafe impl aya::Pod for Counter {}

    /// The `config` entry, as `struct xdpfw_config` in C.
    #[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
    #[repr(C)]
    pub struct Config {
        /// Non-zero: drop ICMPv4 and count it in `icmp_drops`.
        pub drop_icmp: u8,
        /// Non-zero: drop ICMPv6 echo request and reply (never neighbour discovery).
        pub drop_icmp6_echo: u8,
    }

    // SAFETY: plain old data of two u8.
    unsafe impl aya::Pod for Config {}

    /// A `rate4`/`rate6` entry, as `struct xdpfw_rate` in C: a source
    /// prefix's rate limit (see xdpfw.h).
    #[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
    #[repr(C)]
    pub struct Rate {
        /// Packets per second; 0: no packet limit.
        pub pps: u64,
        /// Packets at once; 0: a tenth of a second of `pps` (at least 1).
        pub burst: u64,
        /// Bytes per second (frames as received); 0: no byte limit.
        pub bytes_per_sec: u64,
        /// Bytes at once; 0: a tenth of a second of `bytes_per_sec` (at
        /// least the frame).
        pub burst_bytes: u64,
        /// 0: a bucket per source; 1: one bucket for the prefix.
        pub per_prefix: u32,
        /// 0: the operator's limit; 0x67: guard's (`guard --limit`),
        /// removed when it expires.
        pub owner: u32,
        /// Per prefix: the packet bucket, the datapath's (written 0).
        pub tat: u64,
        /// Per prefix: the byte bucket, the datapath's (written 0).
        pub tat_bytes: u64,
    }

    /// The `syn_cfg` entry, as `struct xdpfw_syn_cfg` in C.
    #[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
    #[repr(C)]
    pub struct SynCfg {
        /// The MSS a SYN-ACK offers over IPv4 (0: 1460).
        pub mss4: u16,
        /// Over IPv6 (0: 1440).
        pub mss6: u16,
        /// The window scale the listener will use.
        pub wscale: u8,
        /// Non-zero: timestamps, window scale and SACK in the cookie.
        pub ts: u8,
        /// The SYN-ACK's TTL (0: 64).
        pub ttl: u8,
        /// Non-zero: ACKs with a wrong cookie that no connection has are dropped.
        pub check_ack: u8,
    }

    /// Bytes of a [`Rate`] that are the rule (what `save` keeps and
    /// `apply` compares); the rest is the datapath's buckets.
    pub const RATE_RULE_BYTES: usize = 40;

    /// Sizes of the `rate_state` map's key and value.
    pub const RATE_STATE_KEY: usize = 20;

    /// Words of the `ctl` map, as `enum xdpfw_ctl` in C.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    #[repr(u32)]
    pub enum Ctl {
        /// [`INDEX_ON`] (the CIDR index) or [`INDEX_OFF`] (`cidr4` itself).
        Cidr4Mode = 0,
        /// Differences between the index and `cidr4` the datapath found.
        Cidr4Drift = 1,
        /// 0, or the most packets per epoch a new source needs to be
        /// counted in `pps` under a flood (guard sets it from its threshold).
        AdmitCap = 2,
        /// [`INDEX_ON`] (`port_bits`) or [`INDEX_OFF`] (`udp_ports`/`tcp_ports`).
        PortsMode = 3,
        /// Differences between `port_bits` and the port maps the datapath found.
        PortsDrift = 4,
        /// Changed whenever blocklist entries go: `drop_cache` is stale.
        BlockGen = 5,
        /// [`INDEX_ON`] (`bloom` filters lookups) or [`INDEX_OFF`].
        BloomMode = 6,
        /// Blocklisted sources the filter missed, found by the datapath.
        BloomDrift = 7,
        /// [`INDEX_ON`] (the IPv6 CIDR index) or [`INDEX_OFF`] (`cidr6` itself).
        Cidr6Mode = 8,
        /// Differences between the IPv6 index and `cidr6` the datapath found.
        Cidr6Drift = 9,
        /// [`INDEX_EMPTY`] (the datapath skips `blocklist6`) or not (it
        /// looks it up).
        Blocklist6Mode = 10,
        /// Rules the datapath found in a `blocklist6` marked empty.
        Blocklist6Drift = 11,
        /// 0, or the `bpf_ktime_get_ns` time until which a capture reads
        /// `capture_rb` (a lease the capture renews; the datapath clears it
        /// once it lapses).
        Capture = 12,
        /// Non-zero: the rules' hits are counted (they are not after load).
        RuleHitsOn = 13,
        /// Hits not counted because `rule_hits` was full.
        RuleHitsLost = 14,
        /// [`INDEX_EMPTY`]: `rate4` and `rate6` hold no rule and the
        /// datapath skips them; otherwise it looks them up.
        RateMode = 15,
    }

    /// The `capture_cfg` entry, as `struct xdpfw_capture_cfg` in C.
    #[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
    #[repr(C)]
    pub struct CaptureCfg {
        /// A bit per [`Outcome`] index: the outcomes to capture.
        pub outcomes: u32,
        /// Capture one matching packet in this many, on each CPU.
        pub every: u32,
        /// Bytes of each packet wanted ([`CAPTURE_HEAD`] are copied at least).
        pub snaplen: u32,
        /// The pid of the capturing xdpctl.
        pub owner: u32,
        /// 0, or the only ingress device to capture.
        pub ifindex: u32,
        /// Padding.
        pub pad: u32,
        /// Packets still to capture before the next refill.
        pub tokens: i64,
    }

    // SAFETY: plain old data: six u32 and an i64, no padding.
    unsafe impl aya::Pod for CaptureCfg {}

    /// The header of a record in `capture_rb`, as `struct xdpfw_capture_rec`
    /// in C; `caplen` bytes of the packet follow it.
    #[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
    #[repr(C)]
    pub struct CaptureRec {
        /// `bpf_ktime_get_ns` (CLOCK_MONOTONIC) when it was captured.
        pub ts_ns: u64,
        /// The ingress device.
        pub ifindex: u32,
        /// Its RX queue.
        pub rx_queue: u32,
        /// The CPU that ran the firewall.
        pub cpu: u32,
        /// The frame's length.
        pub len: u32,
        /// Bytes of it that follow.
        pub caplen: u32,
        /// The [`Outcome`] index.
        pub outcome: u32,
    }

    /// Slots of `hit_cache` on each CPU (`1 << XDPFW_HIT_CACHE_BITS`).
    pub const HIT_CACHE: u32 = 1 << 10;
    /// Entries of `rule_hits` as compiled (`load --max-entries` may change it).
    pub const RULE_HITS_MAX: u32 = 65_536;
    /// A CIDR hit's prefix length when the trie, not the index, decided it.
    pub const RULE_LEN_UNKNOWN: u8 = 255;

    /// The kinds of rule counted per rule, as `enum xdpfw_rule_kind` in C.
    #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
    #[repr(u8)]
    pub enum RuleKind {
        /// A port of `udp_ports`.
        UdpPort = 1,
        /// A port of `tcp_ports`.
        TcpPort = 2,
        /// An address of `blocklist`.
        Blocklist = 3,
        /// An address of `blocklist6`.
        Blocklist6 = 4,
        /// A prefix of `cidr4`.
        Cidr4 = 5,
        /// A prefix of `cidr6`.
        Cidr6 = 6,
        /// A port of `syn_ports` (the SYNs to it).
        SynPort = 7,
    }

    impl RuleKind {
        /// Every kind, in the firewall's order of maps.
        pub const ALL: [RuleKind; 7] = [
            RuleKind::UdpPort,
            RuleKind::TcpPort,
            RuleKind::Blocklist,
            RuleKind::Blocklist6,
            RuleKind::Cidr4,
            RuleKind::Cidr6,
            RuleKind::SynPort,
        ];

        /// The kind of `struct xdpfw_rule`'s `kind` byte.
        pub fn from_u8(v: u8) -> Option<RuleKind> {
            RuleKind::ALL.into_iter().find(|k| *k as u8 == v)
        }

        /// The rule map of the kind.
        pub const fn map(self) -> &'static str {
            match self {
                RuleKind::UdpPort => "udp_ports",
                RuleKind::TcpPort => "tcp_ports",
                RuleKind::Blocklist => "blocklist",
                RuleKind::Blocklist6 => "blocklist6",
                RuleKind::Cidr4 => "cidr4",
                RuleKind::Cidr6 => "cidr6",
                RuleKind::SynPort => "syn_ports",
            }
        }
    }

    /// A key of `rule_hits`, as `struct xdpfw_rule` in C.
    #[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
    #[repr(C, align(4))]
    pub struct RuleKey {
        /// A [`RuleKind`] as a byte (0: a free `hit_cache` slot).
        pub kind: u8,
        /// CIDR: the prefix's length ([`RULE_LEN_UNKNOWN`] if not known);
        /// 32 or 128 for a blocklist entry.
        pub prefixlen: u8,
        /// Port rules: the port, network order bytes.
        pub port: [u8; 2],
        /// Source rules: the address or prefix (IPv4 in the first 4 bytes).
        pub addr: [u8; 16],
    }

    // SAFETY: plain old data of 20 bytes, no padding.
    unsafe impl aya::Pod for RuleKey {}

    /// A value of `rule_hits`, as `struct xdpfw_hits` in C.
    #[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
    #[repr(C)]
    pub struct Hits {
        /// Packets the rule matched.
        pub packets: u64,
        /// Their bytes, from the start of the Ethernet header.
        pub bytes: u64,
        /// `bpf_ktime_get_coarse_ns` (CLOCK_MONOTONIC_COARSE) of the last one.
        pub last_ns: u64,
    }

    // SAFETY: plain old data of three u64.
    unsafe impl aya::Pod for Hits {}

    /// A slot of `hit_cache`, as `struct xdpfw_hit_slot` in C.
    #[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
    #[repr(C)]
    pub struct HitSlot {
        /// The rule counted here (kind 0: none).
        pub rule: RuleKey,
        /// Low bits of jiffies when `hits.last_ns` was read.
        pub jiffies: u32,
        /// Its hits since it took the slot.
        pub hits: Hits,
    }

    // SAFETY: plain old data, 48 bytes without padding.
    unsafe impl aya::Pod for HitSlot {}

    /// The start of each CPU's `capture_slot` entry: its counts, and the
    /// capture's settings copied to each CPU (so that a packet that is
    /// not sampled costs one per-CPU read, not two).
    #[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
    #[repr(C)]
    pub struct CaptureHead {
        /// Matching packets that ended a countdown (one in `every`).
        pub sampled: u64,
        /// Sampled packets over the cap.
        pub capped: u64,
        /// Sampled packets the ring buffer had no room for.
        pub lost: u64,
        /// Matching packets this CPU skips before its next sample.
        pub skip: u32,
        /// [`CaptureCfg::every`], copied.
        pub every: u32,
        /// [`CaptureCfg::outcomes`], copied.
        pub outcomes: u32,
        /// [`CaptureCfg::ifindex`], copied.
        pub ifindex: u32,
    }

    impl CaptureHead {
        /// The matching packets this CPU has seen since its head was
        /// written with `sampled` and `skip` zero: each sample ends a
        /// countdown of `every`, and `skip` are still to come.
        pub fn matched(&self) -> u64 {
            (self.sampled * u64::from(self.every.max(1))).saturating_sub(u64::from(self.skip))
        }
    }

    /// Bytes the datapath copies of a captured packet at most.
    pub const CAPTURE_SNAP_MAX: u32 = 4096;
    /// Bytes it copies at least (the headers the rule is told from).
    pub const CAPTURE_HEAD: u32 = 192;

    impl Ctl {
        /// Every word, in index order.
        pub const ALL: [Ctl; 16] = [
            Ctl::Cidr4Mode,
            Ctl::Cidr4Drift,
            Ctl::AdmitCap,
            Ctl::PortsMode,
            Ctl::PortsDrift,
            Ctl::BlockGen,
            Ctl::BloomMode,
            Ctl::BloomDrift,
            Ctl::Cidr6Mode,
            Ctl::Cidr6Drift,
            Ctl::Blocklist6Mode,
            Ctl::Blocklist6Drift,
            Ctl::Capture,
            Ctl::RuleHitsOn,
            Ctl::RuleHitsLost,
            Ctl::RateMode,
        ];

        /// The word's name as xdpctl prints it (`map dump ctl`).
        pub const fn name(self) -> &'static str {
            match self {
                Ctl::Cidr4Mode => "cidr4_mode",
                Ctl::Cidr4Drift => "cidr4_drift",
                Ctl::AdmitCap => "admit_cap",
                Ctl::PortsMode => "ports_mode",
                Ctl::PortsDrift => "ports_drift",
                Ctl::BlockGen => "block_gen",
                Ctl::BloomMode => "bloom_mode",
                Ctl::BloomDrift => "bloom_drift",
                Ctl::Cidr6Mode => "cidr6_mode",
                Ctl::Cidr6Drift => "cidr6_drift",
                Ctl::Blocklist6Mode => "blocklist6_mode",
                Ctl::Blocklist6Drift => "blocklist6_drift",
                Ctl::Capture => "capture",
                Ctl::RuleHitsOn => "rule_hits_on",
                Ctl::RuleHitsLost => "rule_hits_lost",
                Ctl::RateMode => "rate_mode",
            }
        }
    }

    /// `ctl[Cidr4Mode]`: the datapath uses the index, which matches `cidr4`
    /// (both are empty after load).
    pub const INDEX_ON: u64 = 0;
    /// `ctl[Cidr4Mode]`: the datapath looks up `cidr4` itself (while xdpctl
    /// changes it, and after the datapath found a rule the index lacks).
    pub const INDEX_OFF: u64 = 1;
    /// A mode word: the kind's rule maps hold no rule, and the datapath
    /// skips the kind (but for its sampled check of the rule maps).
    pub const INDEX_EMPTY: u64 = 2;
    /// Bits in `bloom`.
    pub const BLOOM_BITS: u32 = 1 << 20;

    /// The bit of `bloom` for an IPv4 source (network order
    /// bytes), as the datapath computes it.
    pub fn bloom_bit(src: [u8; 4]) -> u32 {
        u32::from_ne_bytes(src).wrapping_mul(0x9e37_79b1) >> (32 - 20)
    }

    /// The slot of `drop_cache` for an IPv4 source (network order bytes),
    /// as the datapath computes it (`XDPFW_BLOCKED_BITS` bits).
    pub fn drop_cache_slot(src: [u8; 4]) -> u32 {
        u32::from_ne_bytes(src).wrapping_mul(2_654_435_761) >> (32 - 10)
    }

    /// Nanoseconds in the sketch's epoch (`1 << XDPFW_EPOCH_SHIFT`).
    pub const EPOCH_NS: u64 = 1 << 30;
}

/// The firewall's CIDR index: `cidr4`'s longest-prefix matches expanded into
/// a three-level table (the address's top 16 bits, then 8, then 8), which
/// the datapath reads in at most three array lookups whatever the number of
/// prefixes. Its layout is `xdpfw.h`'s; xdpctl builds it here and writes it.
/// xdpctl's dispatcher for libxdp's multi-program protocol (version 2):
/// `xdp_dispatcher`, its slots `prog0`..`prog9`, and `conf`, its
/// configuration, set before the load (see `src/bpf/xdp_dispatcher.bpf.c`).
pub mod dispatcher {
    /// The object, as built by this crate.
    pub static OBJECT: &[u8] =
        aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/xdp_dispatcher.bpf.o"));
    /// The entry point's name, which libxdp looks for.
    pub const PROGRAM: &str = "xdp_dispatcher";
    /// The configuration global (`struct xdp_dispatcher_config`).
    pub const CONF: &str = "conf";
}

pub mod cidr4_index {
    use std::collections::BTreeMap;

    /// Entries in the first level (`cidr4_l1`).
    pub const L1: usize = 65_536;
    /// Entries per chunk of `cidr4_chunks`.
    pub const CHUNK: usize = 256;
    /// Chunks in `cidr4_chunks` as compiled (`load --max-entries` may change it).
    pub const CHUNKS: usize = 4096;
    /// An entry covered by a prefix: `MATCH | length << LEN_SHIFT | value`.
    pub const MATCH: u32 = 0x8000_0000;
    /// An entry that continues in chunk `n`: `POINTER | n`.
    pub const POINTER: u32 = 0x4000_0000;
    /// The bits of a chunk number.
    pub const POINTER_MASK: u32 = 0x00ff_ffff;

    /// The index for a rule set.
    #[derive(Clone, Debug, PartialEq, Eq)]
    pub struct Index {
        /// `cidr4_l1`, all of it.
        pub l1: Vec<u32>,
        /// `cidr4_chunks`, the chunks in use, one after the other.
        pub chunks: Vec<u32>,
    }

    /// A prefix: address (host order), length in bits, value.
    pub type Rule = (u32, u8, u8);

    impl Index {
        /// Builds the index of `rules` (a prefix given twice: the last wins;
        /// lengths over 32 count as 32, addresses are masked to their length).
        pub fn build(rules: &[Rule]) -> Index {
            let mut sorted: Vec<(u8, u32, u8)> = rules
                .iter()
                .map(|&(addr, len, value)| {
                    let len = len.min(32);
                    (len, addr & mask(len), value)
                })
                .collect();
            // Shorter prefixes first: a longer one overwrites what it covers.
            // Stable, so of duplicates the last given wins.
            sorted.sort_by_key(|&(len, addr, _)| (len, addr));
            let mut dedup: BTreeMap<(u8, u32), u8> = BTreeMap::new();
            for (len, addr, value) in sorted {
                dedup.insert((len, addr), value);
            }
            let mut index = Index {
                l1: vec![0; L1],
                chunks: Vec::new(),
            };
            for ((len, addr), value) in dedup {
                index.paint(addr, len, entry(len, value));
            }
            index
        }

        /// Chunks in use.
        pub fn chunk_count(&self) -> usize {
            self.chunks.len() / CHUNK
        }

        fn new_chunk(&mut self, fill: u32) -> u32 {
            let n = self.chunk_count() as u32;
            self.chunks.extend(std::iter::repeat_n(fill, CHUNK));
            POINTER | n
        }

        /// The chunk under the entry at `slot` (in `l1` if `level` is 1,
        /// else in `chunks`), made from the entry's value if needed.
        fn descend(&mut self, level: u8, slot: usize) -> usize {
            let entry = if level == 1 {
                self.l1[slot]
            } else {
                self.chunks[slot]
            };
            let pointer = if entry & POINTER != 0 {
                entry
            } else {
                let p = self.new_chunk(entry);
                if level == 1 {
                    self.l1[slot] = p;
                } else {
                    self.chunks[slot] = p;
                }
                p
            };
            (pointer & POINTER_MASK) as usize * CHUNK
        }

        fn paint(&mut self, addr: u32, len: u8, entry: u32) {
            if len <= 16 {
                let first = (addr >> 16) as usize;
                let count = 1usize << (16 - len);
                // Shortest first: nothing here points to a chunk yet.
                self.l1[first..first + count].fill(entry);
                return;
            }
            let base = self.descend(1, (addr >> 16) as usize);
            if len <= 24 {
                let first = ((addr >> 8) & 0xff) as usize;
                let count = 1usize << (24 - len);
                self.chunks[base + first..base + first + count].fill(entry);
                return;
            }
            let base = self.descend(2, base + ((addr >> 8) & 0xff) as usize);
            let first = (addr & 0xff) as usize;
            let count = 1usize << (32 - len);
            self.chunks[base + first..base + first + count].fill(entry);
        }

        /// The value of the longest prefix covering `addr` (host order).
        pub fn lookup(&self, addr: u32) -> Option<u8> {
            self.longest(addr).map(|(_, v)| v)
        }

        /// The length and value of the longest prefix covering `addr`
        /// (host order), as the datapath finds them.
        pub fn longest(&self, addr: u32) -> Option<(u8, u8)> {
            let mut e = self.l1[(addr >> 16) as usize];
            for shift in [8, 0] {
                if e & POINTER == 0 {
                    break;
                }
                let base = (e & POINTER_MASK) as usize * CHUNK;
                e = self.chunks[base + ((addr >> shift) & 0xff) as usize];
            }
            (e & MATCH != 0).then_some(((e >> LEN_SHIFT) as u8, e as u8))
        }
    }

    /// Where an entry keeps its prefix's length (`XDPFW_CIDR_LEN_SHIFT`).
    pub const LEN_SHIFT: u32 = 8;

    /// The entry of a prefix of length `len` and value `value`.
    pub fn entry(len: u8, value: u8) -> u32 {
        MATCH | u32::from(len) << LEN_SHIFT | u32::from(value)
    }

    /// The netmask of a prefix length, host order.
    pub fn mask(len: u8) -> u32 {
        if len == 0 {
            0
        } else {
            u32::MAX << (32 - u32::from(len.min(32)))
        }
    }
}

/// The firewall's IPv6 CIDR index: a binary search on the prefix lengths
/// present in `cidr6` (Waldvogel et al., SIGCOMM 1997), over a hash of its
/// prefixes and of markers that steer the search towards longer ones. The
/// datapath probes at most [`PROBES`](cidr6_index::PROBES) lengths whatever
/// the number of prefixes (one or two for the usual few lengths). Its
/// layout is `xdpfw.h`'s; xdpctl builds it here and writes it.
pub mod cidr6_index {
    use std::collections::{BTreeMap, BTreeSet, HashMap};

    /// Hash lookups a search needs at most: 129 lengths, a binary search.
    pub const PROBES: usize = 8;
    /// Slots of `struct xdpfw_cidr6_lens`'s `len` array.
    pub const LEN_SLOTS: usize = 256;
    /// Bytes of `struct xdpfw_cidr6_lens`.
    pub const LENS_VALUE: usize = 4 + LEN_SLOTS;
    /// Entries `cidr6_index` holds as compiled (`load --max-entries` may change it).
    /// Every prefix `cidr6` can hold with a marker at each probe: room for any
    /// rule set, allocated only as it fills.
    pub const ENTRIES: usize = 65_536 * PROBES;
    /// An entry covered by a prefix: `MATCH | length << LEN_SHIFT | value`.
    pub const MATCH: u32 = 0x8000_0000;
    /// Where an entry keeps its prefix's length (`XDPFW_CIDR_LEN_SHIFT`).
    pub const LEN_SHIFT: u32 = 8;

    /// The entry of a prefix of length `len` and value `value`.
    pub fn entry(len: u8, value: u8) -> u32 {
        MATCH | u32::from(len) << LEN_SHIFT | u32::from(value)
    }

    /// A prefix: address (as a big-endian number), length in bits, value.
    pub type Rule = (u128, u8, u8);

    /// The index for a rule set.
    #[derive(Clone, Debug, PartialEq, Eq)]
    pub struct Index {
        /// The distinct prefix lengths, ascending.
        pub lens: Vec<u8>,
        /// (length, masked address) → 0 or `MATCH | value` of the longest
        /// prefix covering it.
        pub entries: BTreeMap<(u8, u128), u32>,
    }

    impl Index {
        /// Builds the index of `rules` (a prefix given twice: the last wins;
        /// lengths over 128 count as 128, addresses are masked to their
        /// length).
        pub fn build(rules: &[Rule]) -> Index {
            let mut prefixes: HashMap<(u128, u8), u8> = HashMap::new();
            for &(addr, len, value) in rules {
                let len = len.min(128);
                prefixes.insert((addr & mask(len), len), value);
            }
            let lens: Vec<u8> = prefixes
                .keys()
                .map(|&(_, l)| l)
                .collect::<BTreeSet<_>>()
                .into_iter()
                .collect();
            // By address, then length: a prefix comes after every prefix
            // that covers it, so the ones open on a stack are exactly its
            // covering prefixes, shortest first.
            let mut sorted: Vec<((u128, u8), u8)> = prefixes.into_iter().collect();
            sorted.sort_unstable();
            let mut entries = BTreeMap::new();
            let mut open: Vec<((u128, u8), u8)> = Vec::new();
            for ((addr, len), value) in sorted {
                while open.last().is_some_and(|&((a, l), _)| addr & mask(l) != a) {
                    open.pop();
                }
                // The search's path to `len`: a marker wherever it turns
                // longer, with the value of the longest prefix covering it.
                let (mut lo, mut hi) = (0i32, lens.len() as i32 - 1);
                while lo <= hi {
                    let mid = (lo + hi) / 2;
                    let m = lens[mid as usize];
                    if m == len {
                        break;
                    }
                    if m < len {
                        let covering = open.iter().rev().find(|&&((_, l), _)| l <= m);
                        let e = covering.map_or(0, |&((_, l), v)| entry(l, v));
                        entries.insert((m, addr & mask(m)), e);
                        lo = mid + 1;
                    } else {
                        hi = mid - 1;
                    }
                }
                entries.insert((len, addr), entry(len, value));
                open.push(((addr, len), value));
            }
            Index { lens, entries }
        }

        /// The value of the longest prefix covering `addr`, searched as the
        /// datapath searches.
        pub fn lookup(&self, addr: u128) -> Option<u8> {
            self.longest(addr).map(|(_, v)| v)
        }

        /// The length and value of the longest prefix covering `addr`,
        /// searched as the datapath searches.
        pub fn longest(&self, addr: u128) -> Option<(u8, u8)> {
            let (mut lo, mut hi) = (0i32, self.lens.len() as i32 - 1);
            let mut best = None;
            for _ in 0..PROBES {
                if lo > hi {
                    break;
                }
                let mid = (lo + hi) / 2;
                let len = self.lens[mid as usize];
                match self.entries.get(&(len, addr & mask(len))) {
                    Some(&e) => {
                        if e & MATCH != 0 {
                            best = Some(((e >> LEN_SHIFT) as u8, e as u8));
                        }
                        lo = mid + 1;
                    }
                    None => hi = mid - 1,
                }
            }
            best
        }

        /// The `cidr6_lens` value.
        pub fn lens_value(&self) -> [u8; LENS_VALUE] {
            let mut v = [0u8; LENS_VALUE];
            v[..4].copy_from_slice(&(self.lens.len() as u32).to_ne_bytes());
            v[4..4 + self.lens.len()].copy_from_slice(&self.lens);
            v
        }
    }

    /// Bits in `cidr6_filter`.
    pub const FILTER_BITS: u32 = 1 << 20;

    /// The bit of `cidr6_filter` for an index key, as the datapath
    /// computes it.
    pub fn filter_bit(len: u8, addr: u128) -> u32 {
        let b = addr.to_be_bytes();
        let word =
            |i: usize| u32::from_ne_bytes([b[4 * i], b[4 * i + 1], b[4 * i + 2], b[4 * i + 3]]);
        let mut h = u32::from(len).wrapping_mul(0x1656_67b1);
        for (i, k) in [0x9e37_79b1u32, 0x85eb_ca6b, 0xc2b2_ae35, 0x27d4_eb2f]
            .into_iter()
            .enumerate()
        {
            h = h.wrapping_add(word(i).wrapping_mul(k));
        }
        h ^= h >> 15;
        h = h.wrapping_mul(0x2c1b_3c6d);
        h >> (32 - 20)
    }

    /// The length of the filter's cover keys (`XDPFW_CIDR6_COVER_LEN`):
    /// no real length, so they hash apart from the index's keys.
    pub const COVER_LEN: u8 = 200;

    /// The length the cover keys mask addresses to: the shortest in use,
    /// at most 64 (so the datapath hashes two words).
    fn cover_len(index: &Index) -> u8 {
        index.lens.first().copied().unwrap_or(0).min(64)
    }

    /// The `cidr6_filter` words of the index: a bit for each index key, and
    /// a cover bit for each key's address masked to the cover length (a
    /// clear cover bit proves no prefix covers an address).
    pub fn filter_words(index: &Index) -> Vec<u64> {
        let mut words = vec![0u64; (FILTER_BITS / 64) as usize];
        let shortest = cover_len(index);
        for &(len, addr) in index.entries.keys() {
            for bit in [
                filter_bit(len, addr),
                filter_bit(COVER_LEN, addr & mask(shortest)),
            ] {
                let bit = bit as usize;
                words[bit / 64] |= 1 << (bit % 64);
            }
        }
        words
    }

    /// Whether the datapath's cover test lets `addr` through to the search
    /// (false: no prefix covers it), with the filter `words`.
    pub fn may_cover(index: &Index, words: &[u64], addr: u128) -> bool {
        if index.lens.is_empty() {
            return false;
        }
        let shortest = cover_len(index);
        let bit = filter_bit(COVER_LEN, addr & mask(shortest)) as usize;
        words[bit / 64] >> (bit % 64) & 1 == 1
    }

    /// A `cidr6`/`cidr6_index` key: length (native order), then the address.
    pub fn key(len: u8, addr: u128) -> [u8; 20] {
        let mut k = [0u8; 20];
        k[..4].copy_from_slice(&u32::from(len).to_ne_bytes());
        k[4..].copy_from_slice(&addr.to_be_bytes());
        k
    }

    /// The netmask of a prefix length.
    pub fn mask(len: u8) -> u128 {
        if len == 0 {
            0
        } else {
            u128::MAX << (128 - u32::from(len.min(128)))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::xdpfw;

    fn object() -> aya_obj::Object {
        aya_obj::Object::parse(xdpfw::OBJECT).expect("the embedded object parses")
    }

    /// The names in this crate are the ones in the compiled object.
    #[test]
    fn names_match_object() {
        let obj = object();
        let mut maps: Vec<&str> = obj.maps.keys().map(String::as_str).collect();
        maps.sort_unstable();
        let mut expected = xdpfw::maps::ALL.to_vec();
        expected.sort_unstable();
        assert_eq!(maps, expected, "maps in the object vs in xdpfw::maps::ALL");
        let progs: Vec<&str> = obj.programs.keys().map(String::as_str).collect();
        assert_eq!(progs, vec![xdpfw::PROGRAM]);
    }

    /// The index agrees with a naive longest-prefix match on random rules,
    /// duplicates and nested prefixes included.
    #[test]
    fn cidr4_index_is_longest_prefix_match() {
        use super::cidr4_index::{Index, Rule, mask};
        let mut state = 0x1234_5678_9abc_def0_u64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for round in 0..20 {
            let n = [0, 1, 10, 300, 3000][round % 5];
            let rules: Vec<Rule> = (0..n)
                .map(|_| {
                    let r = next();
                    // Few /8s, so that prefixes nest.
                    let addr = ((r as u32) & 0x03ff_ffff) | 0x0a00_0000;
                    (addr, (r >> 32) as u8 % 33, (r >> 40) as u8 % 3)
                })
                .collect();
            let index = Index::build(&rules);
            let naive = |a: u32| {
                let mut best: Option<(u8, u8)> = None;
                for &(p, l, v) in &rules {
                    if a & mask(l) == p & mask(l) && best.is_none_or(|(bl, _)| l >= bl) {
                        best = Some((l, v));
                    }
                }
                best.map(|(_, v)| v)
            };
            for _ in 0..5000 {
                let r = next() as u32;
                let a = if r & 1 == 0 {
                    (r & 0x03ff_ffff) | 0x0a00_0000
                } else {
                    r
                };
                assert_eq!(index.lookup(a), naive(a), "round {round}, {a:#x}");
            }
            for &(p, _, _) in &rules {
                assert_eq!(index.lookup(p), naive(p));
            }
        }
        let empty = Index::build(&[]);
        assert_eq!(empty.chunk_count(), 0);
        assert_eq!(empty.lookup(0x0a00_0001), None);
        let one = Index::build(&[(0, 0, 1)]);
        assert_eq!((one.lookup(0), one.lookup(u32::MAX)), (Some(1), Some(1)));
    }

    /// The IPv6 index agrees with a naive longest-prefix match, nested
    /// prefixes of many lengths included, and never needs more probes.
    #[test]
    fn cidr6_index_is_longest_prefix_match() {
        use super::cidr6_index::{Index, Rule, mask};
        let mut state = 0x0fed_cba9_8765_4321_u64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        // Addresses under a few /32s, so that prefixes nest.
        let addr = |r: u64, s: u64| {
            let base = [0x2001_0db8u128, 0xfd00_0000, 0x2a00_1450][(r % 3) as usize] << 96;
            base | (u128::from(r) << 40 | u128::from(s)) & ((1 << 96) - 1)
        };
        for round in 0..20 {
            let n = [0, 1, 10, 300, 3000][round % 5];
            let rules: Vec<Rule> = (0..n)
                .map(|i| {
                    let r = next();
                    let len = if round % 2 == 0 {
                        (r >> 32) as u8 % 129
                    } else {
                        [32, 48, 56, 64, 128][i % 5]
                    };
                    (addr(r, next()), len, (r >> 48) as u8 % 3)
                })
                .collect();
            let index = Index::build(&rules);
            let naive = |a: u128| {
                let mut best: Option<(u8, u8)> = None;
                for &(p, l, v) in &rules {
                    if a & mask(l) == p & mask(l) && best.is_none_or(|(bl, _)| l >= bl) {
                        best = Some((l, v));
                    }
                }
                best.map(|(_, v)| v)
            };
            // The datapath's cover test never turns away a covered address.
            let words = super::cidr6_index::filter_words(&index);
            let covered = |a: u128| rules.iter().any(|&(p, l, _)| a & mask(l) == p & mask(l));
            for _ in 0..3000 {
                let a = addr(next(), next());
                assert_eq!(index.lookup(a), naive(a), "round {round}, {a:#x}");
                if covered(a) {
                    assert!(super::cidr6_index::may_cover(&index, &words, a), "{a:#x}");
                }
            }
            for &(p, l, _) in &rules {
                assert_eq!(index.lookup(p), naive(p), "round {round}, {p:#x}/{l}");
                assert!(
                    super::cidr6_index::may_cover(&index, &words, p),
                    "{p:#x}/{l}"
                );
                // Near a prefix: the markers steer these.
                let near = p ^ (1 << (next() % 128));
                assert_eq!(index.lookup(near), naive(near), "round {round}, {near:#x}");
            }
        }
        let all = Index::build(&(0..=128).map(|l| (u128::MAX, l, l)).collect::<Vec<_>>());
        assert_eq!(
            all.lens.len(),
            129,
            "129 lengths fit {} probes",
            super::cidr6_index::PROBES
        );
        for l in 0..=128u8 {
            let a = if l == 128 {
                u128::MAX
            } else {
                u128::MAX ^ (1 << (127 - l))
            };
            assert_eq!(all.lookup(a), Some(l));
        }
        assert_eq!(Index::build(&[]).lookup(1), None);
    }

    /// The packets matched, told from the countdown as the datapath
    /// keeps it (xdpfw.bpf.c, `capture`), whatever their number.
    #[test]
    fn capture_matched_is_told_from_the_countdown() {
        for every in [1u32, 2, 7, 1000] {
            let mut h = xdpfw::CaptureHead {
                every,
                ..Default::default()
            };
            for m in 0..3000u64 {
                assert_eq!(h.matched(), m, "every {every}");
                if h.skip > 0 {
                    h.skip -= 1;
                } else {
                    h.skip = h.every - 1;
                    h.sampled += 1;
                }
            }
        }
    }

    /// The Rust mirrors of the C structs have the sizes the object declares.
    #[test]
    fn value_sizes_match_object() {
        let obj = object();
        let size = |name: &str| obj.maps[name].value_size() as usize;
        assert_eq!(size(xdpfw::maps::CONFIG), size_of::<xdpfw::Config>());
        assert_eq!(size(xdpfw::maps::STATS), size_of::<xdpfw::Counter>());
        assert_eq!(size(xdpfw::maps::RATE4), size_of::<xdpfw::Rate>());
        assert_eq!(size(xdpfw::maps::RATE6), size_of::<xdpfw::Rate>());
        assert_eq!(
            obj.maps[xdpfw::maps::RATE_STATE].key_size() as usize,
            xdpfw::RATE_STATE_KEY
        );
        assert_eq!(
            size(xdpfw::maps::CAPTURE_CFG),
            size_of::<xdpfw::CaptureCfg>()
        );
        // The slot: the counts, a record's header, then its bytes.
        assert_eq!(
            size(xdpfw::maps::CAPTURE_SLOT),
            size_of::<xdpfw::CaptureHead>()
                + size_of::<xdpfw::CaptureRec>()
                + xdpfw::CAPTURE_SNAP_MAX as usize
        );
        assert_eq!(
            obj.maps[xdpfw::maps::STATS].max_entries(),
            xdpfw::OUTCOME_SLOTS
        );
        assert_eq!(
            size(xdpfw::maps::CIDR6_LENS),
            super::cidr6_index::LENS_VALUE
        );
        assert_eq!(
            obj.maps[xdpfw::maps::CIDR6_INDEX].max_entries() as usize,
            super::cidr6_index::ENTRIES
        );
    }
}
