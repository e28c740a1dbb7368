//! bpf_links: enumerating them, and what they are attached to.

use std::os::fd::AsFd;

use anyhow::Result;

use crate::{
    kernel::sys::{self, IdKind},
    model::{linkpin::LinkPin, xdp::XdpMode},
};

/// What a link is attached to, as far as xdpctl needs to know.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    /// XDP on a device (ifindex in the link's network namespace).
    Xdp { ifindex: u32 },
    /// A netfilter hook.
    Netfilter {
        pf: u32,
        hooknum: u32,
        priority: i32,
    },
    /// Something else.
    Other { link_type: u32 },
}

/// A link in the kernel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LinkEntry {
    /// Link id.
    pub id: u32,
    /// The program it runs.
    pub prog_id: u32,
    /// Where it is attached.
    pub target: Target,
}

/// Every link in the kernel. Links that vanish while listing are skipped.
pub fn all() -> Result<Vec<LinkEntry>> {
    let mut links = Vec::new();
    for id in sys::ids(IdKind::Link)? {
        let Ok(fd) = sys::fd_by_id(IdKind::Link, id) else {
            continue;
        };
        let Ok(info) = sys::link_info(fd.as_fd()) else {
            continue;
        };
        let target = if let Some(ifindex) = sys::xdp_link_ifindex(&info) {
            Target::Xdp { ifindex }
        } else if let Some((pf, hooknum, priority)) = sys::netfilter_link(&info) {
            Target::Netfilter {
                pf,
                hooknum,
                priority,
            }
        } else {
            Target::Other {
                link_type: info.type_,
            }
        };
        links.push(LinkEntry {
            id: info.id,
            prog_id: info.prog_id,
            target,
        });
    }
    Ok(links)
}

/// How a device's XDP program is attached.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum XdpAttach {
    /// By this link.
    Link(LinkEntry),
    /// Over netlink (no link holds it).
    Netlink,
    /// By a link, which the kernel says (it refuses a netlink change), but
    /// several links of devices with this ifindex in other namespaces run
    /// the same program and nothing tells which one is this device's.
    UnknownLink,
}

/// The kernel's XDP links, for telling a link attachment from a netlink
/// one.
///
/// NB: XDP link info has the ifindex but not the network namespace, and
/// ifindexes repeat across namespaces (every container's eth0 may be 2).
/// A link pinned by xdpctl carries its namespace in its name
/// (`<dev>@<netns inode>`). For any other link with the device's ifindex
/// and program, the device itself is asked: a netlink request that would
/// replace its program with the same program is refused with EBUSY ("Can't
/// replace active BPF XDP link") exactly when a link holds it, and is a
/// no-op otherwise (the kernel does not even call the driver when the
/// program does not change).
pub struct XdpLinks {
    links: Vec<LinkEntry>,
    pins: crate::kernel::objects::PinIndex,
}

impl XdpLinks {
    /// Reads every link; `pins` tells which are pinned where.
    pub fn load(pins: &crate::kernel::objects::PinIndex) -> Result<Self> {
        Ok(XdpLinks {
            links: all()?,
            pins: pins.clone(),
        })
    }

    /// Every link.
    pub fn all(&self) -> &[LinkEntry] {
        &self.links
    }

    /// How `prog_id` is attached in `mode` to the device `ifindex` of the
    /// calling thread's network namespace.
    pub fn find(&self, ifindex: u32, mode: XdpMode, prog_id: u32) -> Result<XdpAttach> {
        let mut candidates: Vec<LinkEntry> = self
            .links
            .iter()
            .filter(|l| l.prog_id == prog_id && l.target == Target::Xdp { ifindex })
            .copied()
            .collect();
        if candidates.is_empty() {
            return Ok(XdpAttach::Netlink);
        }
        let here = crate::kernel::netns::current_inode()?;
        // Links xdpctl pinned say where they are.
        let mut placed_elsewhere = Vec::new();
        for l in &candidates {
            match self.pinned_ns(l.id) {
                Some(ino) if ino == here => return Ok(XdpAttach::Link(*l)),
                Some(_) => placed_elsewhere.push(l.id),
                None => {}
            }
        }
        candidates.retain(|l| !placed_elsewhere.contains(&l.id));
        if candidates.is_empty() {
            return Ok(XdpAttach::Netlink);
        }
        if !held_by_link(ifindex, mode, prog_id)? {
            return Ok(XdpAttach::Netlink);
        }
        Ok(match candidates.as_slice() {
            [one] => XdpAttach::Link(*one),
            _ => XdpAttach::UnknownLink,
        })
    }

    /// The namespace inode in the name of an xdpctl link pin.
    fn pinned_ns(&self, link_id: u32) -> Option<u64> {
        self.pins
            .get(&(pinfs::Kind::Link, link_id))?
            .iter()
            .find_map(|p| Some(LinkPin::parse(p)?.netns))
    }
}

/// Whether a link holds the XDP program `prog_id` of device `ifindex` (in
/// `mode`) in the calling thread's namespace: asks the kernel to replace
/// the program with itself over netlink (see [`XdpLinks`]).
fn held_by_link(ifindex: u32, mode: XdpMode, prog_id: u32) -> Result<bool> {
    use anyhow::Context as _;
    use std::os::fd::AsRawFd;

    use crate::kernel::netlink::Rtnl;

    let flag = mode.flag();
    let prog = sys::fd_by_id(IdKind::Prog, prog_id)
        .with_context(|| format!("opening program {prog_id}"))?;
    let mut rtnl = Rtnl::open().context("opening rtnetlink")?;
    rtnl.xdp_held_by_link(ifindex, prog.as_raw_fd(), flag)
        .with_context(|| {
            format!("asking device {ifindex} whether a link holds its XDP program {prog_id}")
        })
}
