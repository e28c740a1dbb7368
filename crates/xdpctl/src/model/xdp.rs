//! XDP attach modes: one type for the command line (`--mode`), the attach
//! flags the kernel takes, and the names rtnetlink reports (`IFLA_XDP`'s
//! attached mode) and `net show` prints.

use std::path::PathBuf;

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

    /// The name rtnetlink's state gives it, as `net show` prints it.
    pub const fn state_name(self) -> &'static str {
        match self {
            XdpMode::Native => "driver",
            XdpMode::Generic => "generic",
            XdpMode::Offload => "offload",
        }
    }

    /// The mode of a state name.
    pub fn from_state_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|m| m.state_name() == name)
    }

    /// The name `--mode` takes.
    pub const fn arg_name(self) -> &'static str {
        match self {
            XdpMode::Native => "native",
            XdpMode::Generic => "generic",
            XdpMode::Offload => "offload",
        }
    }
}

/// An XDP program on a device and how it got there: the row `net show`
/// lists for each mode in use, and the one attach, detach and unload report
/// (with the device around it).
#[derive(Clone, Debug, Serialize)]
pub struct XdpAttachment {
    /// `driver`, `generic` or `offload`: the mode in effect.
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
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_mode_round_trips_through_its_flag_and_name() {
        for m in XdpMode::ALL {
            assert_eq!(XdpMode::from_flag(m.flag()), Some(m));
            assert_eq!(XdpMode::from_state_name(m.state_name()), Some(m));
        }
        assert_eq!(XdpMode::Native.flag(), 4);
        assert_eq!(XdpMode::from_flag(0), None);
    }
}
