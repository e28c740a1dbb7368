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
        /// Every map of the object.
        pub const ALL: &[&str] = &[
            BLOCKLIST, BLOCKLIST6, CIDR4, CIDR6, PPS, PPS6, UDP_PORTS, TCP_PORTS, ICMP_DROPS,
            CONFIG, STATS,
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
    }

    impl Outcome {
        /// Every outcome, in `stats` index order.
        pub const ALL: [Outcome; 9] = [
            Outcome::Passed,
            Outcome::DropBlocklist,
            Outcome::DropUdpPort,
            Outcome::DropIcmp,
            Outcome::Malformed,
            Outcome::DropCidr,
            Outcome::DropTcpPort,
            Outcome::DropIcmp6,
            Outcome::Unparsed,
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

    /// The Rust mirrors of the C structs have the sizes the object declares.
    #[test]
    fn value_sizes_match_object() {
        let obj = object();
        let size = |name: &str| obj.maps[name].value_size() as usize;
        assert_eq!(size(xdpfw::maps::CONFIG), size_of::<xdpfw::Config>());
        assert_eq!(size(xdpfw::maps::STATS), size_of::<xdpfw::Counter>());
        assert_eq!(
            obj.maps[xdpfw::maps::STATS].max_entries(),
            xdpfw::OUTCOME_SLOTS
        );
    }
}
