//! bpf_links: enumerating them, and what they are attached to.

use std::os::fd::AsFd;

use anyhow::Result;

use crate::kernel::sys::{self, IdKind};

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
    /// A link with the same ifindex and program exists, but devices in other
    /// namespaces match too, and the kernel does not say which one it is on.
    Ambiguous,
}

/// The kernel's XDP links, for telling a link attachment from a netlink
/// one.
///
/// NB: XDP link info has the ifindex but not the network namespace, and
/// ifindexes repeat across namespaces (every container's eth0 may be 2).
/// A link pinned by xdpctl carries its namespace in its name
/// (`<dev>@<netns inode>`); for other links, the devices in every known
/// namespace (this one and /run/netns) with that ifindex and program are
/// counted against the links.
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

    /// How `prog_id` is attached to the device `ifindex` of the calling
    /// thread's network namespace.
    pub fn find(&self, ifindex: u32, prog_id: u32) -> Result<XdpAttach> {
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
                Some(ino) => placed_elsewhere.push((l.id, ino)),
                None => {}
            }
        }
        candidates.retain(|l| !placed_elsewhere.iter().any(|(id, _)| *id == l.id));
        if candidates.is_empty() {
            return Ok(XdpAttach::Netlink);
        }
        // Devices elsewhere that could own the remaining links.
        let mut elsewhere = 0;
        for ns in crate::kernel::netns::all()?.into_iter().flatten() {
            // A namespace deleted meanwhile has no devices to count.
            let Ok(ino) = crate::kernel::netns::inode_of(std::path::Path::new(&ns)) else {
                continue;
            };
            if ino == here || placed_elsewhere.iter().any(|(_, i)| *i == ino) {
                continue;
            }
            let Ok(_entered) = crate::kernel::netns::enter(Some(&ns)) else {
                continue;
            };
            let Ok(devices) = crate::kernel::netlink::Rtnl::open()
                .map_err(anyhow::Error::from)
                .and_then(|mut r| Ok(r.devices()?))
            else {
                continue;
            };
            elsewhere += devices
                .iter()
                .filter(|d| {
                    d.ifindex == ifindex && d.xdp.attached().iter().any(|(_, id)| *id == prog_id)
                })
                .count();
        }
        Ok(if elsewhere == 0 || candidates.len() > elsewhere {
            XdpAttach::Link(candidates[0])
        } else {
            XdpAttach::Ambiguous
        })
    }

    /// The namespace inode in the name of an xdpctl link pin.
    fn pinned_ns(&self, link_id: u32) -> Option<u64> {
        self.pins
            .get(&(pinfs::Kind::Link, link_id))?
            .iter()
            .find_map(|p| {
                let name = p.file_name()?.to_str()?;
                name.rsplit_once('@')?.1.parse().ok()
            })
    }
}
