//! bpf_links: enumerating them, and what they are attached to.

use std::os::fd::AsFd;

use anyhow::Result;

use crate::sys::{self, IdKind};

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
#[derive(Clone, Copy, Debug)]
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
        // SAFETY: the union member read matches the link type the kernel reported.
        let target = unsafe {
            match info.type_ {
                sys::LINK_TYPE_XDP => Target::Xdp {
                    ifindex: info.__bindgen_anon_1.xdp.ifindex,
                },
                sys::LINK_TYPE_NETFILTER => {
                    let nf = info.__bindgen_anon_1.netfilter;
                    Target::Netfilter {
                        pf: nf.pf,
                        hooknum: nf.hooknum,
                        priority: nf.priority,
                    }
                }
                other => Target::Other { link_type: other },
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

/// The XDP link that runs `prog_id` on `ifindex`, if the program is
/// attached by a link (rather than over netlink).
///
/// NB: XDP link info has the ifindex but not the namespace; a link in
/// another namespace with the same ifindex would also need the same program
/// to be mistaken for this one.
pub fn xdp_link_for(links: &[LinkEntry], ifindex: u32, prog_id: u32) -> Option<LinkEntry> {
    links
        .iter()
        .find(|l| l.prog_id == prog_id && l.target == Target::Xdp { ifindex })
        .copied()
}
