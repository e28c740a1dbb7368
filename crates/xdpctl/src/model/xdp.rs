//! XDP attach modes: one type for the command line (`--mode`), policies,
//! the attach flags the kernel takes and rtnetlink's attached modes, with
//! one name each in every output.

use std::{fmt, path::PathBuf, str::FromStr};

use aya_obj::generated as g;
use serde::Serialize;

/// XDP attach modes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, clap::ValueEnum)]
pub enum XdpMode {
    /// In the driver (xdpdrv); fastest, needs driver support.
    #[value(alias = "drv", alias = "driver")]
    Native,
    /// After skb allocation (xdpgeneric); works on every device.
    #[value(alias = "skb")]
    Generic,
    /// On the NIC (xdpoffload); needs an offload-capable NIC.
    #[value(alias = "hw")]
    Offload,
}

impl XdpMode {
    /// Every mode.
    pub const ALL: [XdpMode; 3] = [XdpMode::Native, XdpMode::Generic, XdpMode::Offload];

    /// The attach flag (`XDP_FLAGS_DRV_MODE` and the like).
    pub const fn flag(self) -> u32 {
        match self {
            XdpMode::Native => g::XDP_FLAGS_DRV_MODE,
            XdpMode::Generic => g::XDP_FLAGS_SKB_MODE,
            XdpMode::Offload => g::XDP_FLAGS_HW_MODE,
        }
    }

    /// The mode of an attach flag.
    pub fn from_flag(flag: u32) -> Option<Self> {
        Self::ALL.into_iter().find(|m| m.flag() == flag)
    }

    /// Its one name, printed in tables, JSON and saved policies: the one
    /// `--mode` takes (`native`, not rtnetlink's `driver`).
    pub const fn name(self) -> &'static str {
        match self {
            XdpMode::Native => "native",
            XdpMode::Generic => "generic",
            XdpMode::Offload => "offload",
        }
    }
}

impl fmt::Display for XdpMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for XdpMode {
    type Err = String;

    /// Every name a mode goes by, on the command line (clap's aliases say
    /// the same) and in a policy: its own, and the kernel's and
    /// iproute2's (`driver`, `drv`, `skb`, `hw`).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "native" | "driver" | "drv" => Ok(XdpMode::Native),
            "generic" | "skb" => Ok(XdpMode::Generic),
            "offload" | "hw" => Ok(XdpMode::Offload),
            _ => Err(format!(
                "{s:?} is not an XDP mode: native (or driver), generic or offload"
            )),
        }
    }
}

impl Serialize for XdpMode {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

/// An XDP program on a device and how it got there: the row `net show`
/// lists for each mode in use, and the one attach, detach and unload report
/// (with the device around it).
#[derive(Clone, Debug, Serialize)]
pub struct XdpAttachment {
    /// `native`, `generic` or `offload`: the mode in effect.
    pub mode: String,
    /// Program id.
    pub prog_id: u32,
    /// Program name.
    pub prog_name: String,
    /// `link` or `netlink`.
    pub attach: &'static str,
    /// The bpf_link id, for a link.
    pub link_id: Option<u32>,
    /// Where the link is pinned.
    pub link_pinned: Vec<PathBuf>,
    /// When the program is libxdp's multi-program dispatcher (xdp-loader,
    /// xdp-filter and other libxdp users): the programs it runs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dispatcher: Option<Dispatcher>,
    /// When the program chains to another (`xdpctl chain`): the program
    /// that gets what it passes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub chain: Option<ChainNext>,
}

/// A program by id and (kernel) name.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ProgRef {
    /// Program id.
    pub prog_id: u32,
    /// Program name.
    pub prog_name: String,
}

impl std::fmt::Display for ProgRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({})", self.prog_id, self.prog_name)
    }
}

/// The program behind a firewall (its `chain` map's slot).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ChainNext {
    /// Program id.
    pub prog_id: u32,
    /// Program name.
    pub prog_name: String,
    /// The chain map's pin, when the program's load is known.
    pub map: Option<PathBuf>,
    /// The program behind this one, when it chains too (a firewall in
    /// front of another): the chain in the order its packets take.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub then: Option<Box<ChainNext>>,
}

impl ChainNext {
    /// The programs of the chain from this one on, in the order packets
    /// take them.
    pub fn walk(&self) -> impl Iterator<Item = &ChainNext> {
        std::iter::successors(Some(self), |c| c.then.as_deref())
    }
}

/// The kernel name of libxdp's dispatcher program.
pub const DISPATCHER_NAME: &str = "xdp_dispatcher";
/// Program slots in a libxdp dispatcher (`MAX_DISPATCHER_ACTIONS`).
pub const DISPATCHER_SLOTS: usize = 10;
/// `XDP_DISPATCHER_MAGIC`: the first byte of a version 2 (and later)
/// dispatcher's configuration.
pub const DISPATCHER_MAGIC: u8 = 236;
/// `XDP_DISPATCHER_RETVAL`: what an empty slot returns; always a chain
/// call action, so not one of a program's own.
pub const DISPATCHER_RETVAL: u32 = 31;
/// `BPF_F_XDP_HAS_FRAGS` in `program_flags`.
pub const XDP_HAS_FRAGS: u32 = 1 << 5;
/// The XDP actions by number, as chain call actions are named.
pub const XDP_ACTIONS: [&str; 5] = [
    "XDP_ABORTED",
    "XDP_DROP",
    "XDP_PASS",
    "XDP_TX",
    "XDP_REDIRECT",
];

/// A libxdp dispatcher and the programs it runs, in run order.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Dispatcher {
    /// The dispatcher's protocol version (`dispatcher_version`).
    pub version: u8,
    /// The directory libxdp pins its programs and links in
    /// (`<bpffs>/xdp/dispatch-IFINDEX-DID`), if it exists.
    pub pinned: Option<PathBuf>,
    /// The programs, in the order they run.
    pub programs: Vec<Dispatched>,
}

/// A program a libxdp dispatcher runs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Dispatched {
    /// The slot (`progN` in the dispatcher): its place in the run order.
    pub slot: usize,
    /// The program's id (from libxdp's pin `progN-prog`; null without it).
    pub prog_id: Option<u32>,
    /// The program's name.
    pub prog_name: Option<String>,
    /// Its run priority (lower runs first).
    pub priority: u32,
    /// The actions on which the next program runs (`XDP_PASS`, ...).
    pub chain_call_actions: Vec<String>,
    /// Whether it was loaded with XDP frags support.
    pub frags: bool,
    /// The id of the link that attaches it to the dispatcher (`progN-link`).
    pub link_id: Option<u32>,
    /// `chain_call_actions` as the configuration holds it (a bitmap), for
    /// a dispatcher that carries it forward.
    #[serde(skip)]
    pub chain_call_bits: u32,
}

/// Why a dispatcher's configuration could not be read.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum DispatcherError {
    /// The value is shorter than its version's layout.
    #[error("dispatcher configuration of version {version} has {have} bytes, expected {want}")]
    TooShort {
        /// The version it claims.
        version: u8,
        /// Bytes present.
        have: usize,
        /// Bytes the layout needs.
        want: usize,
    },
    /// A version this xdpctl does not know the layout of.
    #[error("dispatcher version {0} is newer than the versions known (1 and 2)")]
    UnknownVersion(u8),
    /// More programs enabled than there are slots.
    #[error("dispatcher enables {0} programs, more than its 10 slots")]
    TooManyPrograms(u8),
}

/// The configuration libxdp writes into a dispatcher's `.rodata` (its
/// `struct xdp_dispatcher_config`), as libxdp's protocol documents it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DispatcherConfig {
    /// Protocol version: 1 (no magic, no flags) or 2.
    pub version: u8,
    /// Slots in use, from 0.
    pub num_progs_enabled: u8,
    /// Whether the dispatcher was loaded with XDP frags support.
    pub is_xdp_frags: bool,
    /// Per slot: a bitmap of the XDP actions that continue the chain.
    pub chain_call_actions: [u32; DISPATCHER_SLOTS],
    /// Per slot: the run priority.
    pub run_prios: [u32; DISPATCHER_SLOTS],
    /// Per slot: load flags (`BPF_F_XDP_HAS_FRAGS`); zero in version 1.
    pub program_flags: [u32; DISPATCHER_SLOTS],
}

fn u32_array(bytes: &[u8], at: usize) -> [u32; DISPATCHER_SLOTS] {
    std::array::from_fn(|i| {
        let o = at + 4 * i;
        u32::from_ne_bytes([bytes[o], bytes[o + 1], bytes[o + 2], bytes[o + 3]])
    })
}

impl DispatcherConfig {
    /// Byte size of version 1: `__u8 num_progs_enabled`, then two
    /// `__u32[10]` at offset 4.
    pub const V1_SIZE: usize = 4 + 2 * 4 * DISPATCHER_SLOTS;
    /// Byte size of version 2: `magic`, `dispatcher_version`,
    /// `num_progs_enabled`, `is_xdp_frags` (one byte each), then three
    /// `__u32[10]`.
    pub const V2_SIZE: usize = 4 + 3 * 4 * DISPATCHER_SLOTS;

    /// Reads the value of a dispatcher's `.rodata` map. A version 2 value
    /// starts with the magic byte and its version; one without the magic is
    /// version 1 (whose first byte, a program count, is at most 10).
    pub fn parse(value: &[u8]) -> Result<Self, DispatcherError> {
        let (version, want) = match value.first() {
            Some(&DISPATCHER_MAGIC) => match value.get(1).copied() {
                Some(2) => (2, Self::V2_SIZE),
                Some(v) => return Err(DispatcherError::UnknownVersion(v)),
                None => (0, Self::V2_SIZE),
            },
            _ => (1, Self::V1_SIZE),
        };
        if value.len() < want {
            return Err(DispatcherError::TooShort {
                version,
                have: value.len(),
                want,
            });
        }
        let config = if version == 1 {
            DispatcherConfig {
                version,
                num_progs_enabled: value[0],
                is_xdp_frags: false,
                chain_call_actions: u32_array(value, 4),
                run_prios: u32_array(value, 4 + 4 * DISPATCHER_SLOTS),
                program_flags: [0; DISPATCHER_SLOTS],
            }
        } else {
            DispatcherConfig {
                version,
                num_progs_enabled: value[2],
                is_xdp_frags: value[3] != 0,
                chain_call_actions: u32_array(value, 4),
                run_prios: u32_array(value, 4 + 4 * DISPATCHER_SLOTS),
                program_flags: u32_array(value, 4 + 8 * DISPATCHER_SLOTS),
            }
        };
        if usize::from(config.num_progs_enabled) > DISPATCHER_SLOTS {
            return Err(DispatcherError::TooManyPrograms(config.num_progs_enabled));
        }
        Ok(config)
    }

    /// The enabled slots, in run order, without what only pins tell (ids,
    /// names, links).
    pub fn slots(&self) -> Vec<Dispatched> {
        (0..usize::from(self.num_progs_enabled))
            .map(|slot| Dispatched {
                slot,
                prog_id: None,
                prog_name: None,
                priority: self.run_prios[slot],
                chain_call_actions: chain_actions(self.chain_call_actions[slot]),
                chain_call_bits: self.chain_call_actions[slot],
                frags: self.program_flags[slot] & XDP_HAS_FRAGS != 0,
                link_id: None,
            })
            .collect()
    }
}

/// The XDP actions in a chain call bitmap, by name; the dispatcher's own
/// return value (bit 31, always set) is left out.
pub fn chain_actions(mask: u32) -> Vec<String> {
    (0..32)
        .filter(|&bit| bit != DISPATCHER_RETVAL && mask & (1 << bit) != 0)
        .map(|bit| {
            XDP_ACTIONS
                .get(bit as usize)
                .map_or_else(|| format!("action {bit}"), |n| (*n).to_owned())
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn put(buf: &mut [u8], at: usize, values: &[u32]) {
        for (i, v) in values.iter().enumerate() {
            buf[at + 4 * i..at + 4 * i + 4].copy_from_slice(&v.to_ne_bytes());
        }
    }

    #[test]
    fn dispatcher_v2_config_reads_slots_priorities_and_actions() {
        let mut v = vec![0u8; DispatcherConfig::V2_SIZE];
        v[..4].copy_from_slice(&[236, 2, 2, 0]);
        // XDP_PASS | retval; XDP_PASS | XDP_DROP | retval
        put(&mut v, 4, &[(1 << 2) | (1 << 31), 0b110 | (1 << 31)]);
        put(&mut v, 44, &[10, 50]);
        put(&mut v, 84, &[0, 1 << 5]);
        let c = DispatcherConfig::parse(&v).unwrap();
        assert_eq!(
            (c.version, c.num_progs_enabled, c.is_xdp_frags),
            (2, 2, false)
        );
        let slots = c.slots();
        assert_eq!(slots.len(), 2);
        assert_eq!(slots[0].priority, 10);
        assert_eq!(slots[0].chain_call_actions, ["XDP_PASS"]);
        assert!(!slots[0].frags);
        assert_eq!(slots[1].priority, 50);
        assert_eq!(slots[1].chain_call_actions, ["XDP_DROP", "XDP_PASS"]);
        assert!(slots[1].frags);
    }

    #[test]
    fn dispatcher_v1_config_has_no_magic() {
        let mut v = vec![0u8; DispatcherConfig::V1_SIZE];
        v[0] = 1;
        put(&mut v, 4, &[(1 << 2) | (1 << 31)]);
        put(&mut v, 44, &[20]);
        let c = DispatcherConfig::parse(&v).unwrap();
        assert_eq!((c.version, c.num_progs_enabled), (1, 1));
        assert_eq!(c.slots()[0].priority, 20);
        assert_eq!(c.slots()[0].chain_call_actions, ["XDP_PASS"]);
    }

    #[test]
    fn bad_dispatcher_configs_are_errors_not_guesses() {
        let short = [236u8, 2, 1, 0, 0, 0];
        assert_eq!(
            DispatcherConfig::parse(&short),
            Err(DispatcherError::TooShort {
                version: 2,
                have: 6,
                want: 124
            })
        );
        let mut v3 = vec![0u8; 200];
        v3[..2].copy_from_slice(&[236, 3]);
        assert_eq!(
            DispatcherConfig::parse(&v3),
            Err(DispatcherError::UnknownVersion(3))
        );
        let mut many = vec![0u8; DispatcherConfig::V2_SIZE];
        many[..3].copy_from_slice(&[236, 2, 11]);
        assert_eq!(
            DispatcherConfig::parse(&many),
            Err(DispatcherError::TooManyPrograms(11))
        );
        assert_eq!(chain_actions(1 << 31), Vec::<String>::new());
        assert_eq!(chain_actions(1 << 7), ["action 7"]);
    }

    #[test]
    fn every_mode_round_trips_through_its_flag_and_name() {
        for m in XdpMode::ALL {
            assert_eq!(XdpMode::from_flag(m.flag()), Some(m));
            assert_eq!(m.to_string().parse::<XdpMode>(), Ok(m));
            // The command line and a policy take the same names.
            let value = clap::ValueEnum::to_possible_value(&m).unwrap();
            assert_eq!(value.get_name(), m.name());
            for name in value.get_name_and_aliases() {
                assert_eq!(name.parse::<XdpMode>(), Ok(m), "{name}");
            }
        }
        assert_eq!("driver".parse::<XdpMode>(), Ok(XdpMode::Native));
        assert_eq!(XdpMode::Native.to_string(), "native");
        assert!("turbo".parse::<XdpMode>().is_err());
        assert_eq!(XdpMode::Native.flag(), 4);
        assert_eq!(XdpMode::from_flag(0), None);
    }
}
