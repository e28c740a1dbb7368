//! Detach: every XDP program off a device, whoever attached it (`xdpctl
//! detach`, `apply`).
//!
//! A link xdpctl pinned in a load directory is detached and unpinned as a
//! journaled change (killed in between, the next command finishes it: never
//! a pin of a dead link). Another tool's link is detached, and its pin, not
//! being xdpctl's, is left where it is. A netlink attachment is taken off in
//! one call that names the program it expects.

use std::{os::fd::AsFd, path::PathBuf};

use anyhow::{Context as _, Result, bail};
use pinfs::Kind;
use serde::Serialize;

use crate::{
    ctx::Ctx,
    kernel::{
        dispatcher,
        links::{self, XdpAttach},
        netlink::{Device, Rtnl},
        netns,
        sys::{self, IdKind},
    },
    model::change::Change,
    ops::{
        self,
        attach::{Attachment, detach_netlink, device, own_pin},
    },
    render::{self, Human},
};

/// What detach did.
#[derive(Debug, Serialize)]
pub struct Detached {
    /// Device name.
    pub device: String,
    /// Every program taken off.
    pub detached: Vec<Attachment>,
}

impl Human for Detached {
    fn human(&self, view: &render::View) -> String {
        if self.detached.is_empty() {
            String::new()
        } else {
            view.table(&self.detached)
        }
    }
}

/// Whether `path` is a link pin xdpctl made: in a load directory's links,
/// or in `_xdpctl/links/` (links of programs no load holds).
fn ours(ctx: &Ctx, path: &std::path::Path) -> bool {
    own_pin(ctx, path).is_some()
}

/// Takes every XDP program off `dev` (in the current namespace), whatever
/// attached it. Returns what it did, and notes.
pub fn detach_device(
    ctx: &Ctx,
    journal: &mut Option<ops::Journal>,
    rtnl: &mut Rtnl,
    dev: &Device,
    netns: Option<&str>,
) -> Result<(Vec<Attachment>, Vec<String>)> {
    let pins = ctx.pin_index()?;
    let links = links::XdpLinks::load(&pins)?;
    let mut done = Vec::new();
    let mut notes = Vec::new();
    for (mode, prog_id) in dev.xdp.attached() {
        let mut row = Attachment::netlink(dev, netns, mode, prog_id);
        // libxdp's pins of a dispatcher's programs are libxdp's: say so.
        if let Ok(Some(d)) = dispatcher::read(prog_id, dev.ifindex, &ctx.bpffs)
            && let Some(dir) = d.pinned
        {
            notes.push(format!(
                "libxdp's pins of the dispatcher's programs stay at {} (not xdpctl's; remove \
                 them with: xdp-loader clean {})",
                dir.display(),
                dev.name
            ));
        }
        let found = links.find(dev.ifindex, mode, prog_id)?;
        if found == XdpAttach::UnknownLink {
            bail!(
                "{} runs program {prog_id} by a bpf_link, but several links of devices with its \
                 ifindex in other namespaces run that program and the kernel does not say which \
                 is this one's; nothing was detached (detach it with the tool that attached it)",
                dev.name
            );
        }
        if let XdpAttach::Link(l) = found {
            let pinned: Vec<PathBuf> = pins.get(&(Kind::Link, l.id)).cloned().unwrap_or_default();
            let (mine, foreign): (Vec<PathBuf>, Vec<PathBuf>) =
                pinned.iter().cloned().partition(|p| ours(ctx, p));
            match (mine.first(), journal.as_mut()) {
                (Some(pin), Some(journal)) => {
                    let entry = journal.begin(Change::Detach {
                        pin: pin.clone(),
                        link: l.id,
                    })?;
                    journal.run_forward(&entry)?;
                    journal.finish(entry)?;
                }
                _ => {
                    let fd = sys::fd_by_id(IdKind::Link, l.id)
                        .with_context(|| format!("opening link {}", l.id))?;
                    sys::link_detach(fd.as_fd())
                        .with_context(|| format!("detaching link {} from {}", l.id, dev.name))?;
                }
            }
            for p in &foreign {
                notes.push(format!(
                    "link {} stays pinned at {} (not an xdpctl pin; remove it with rm when \
                     nothing needs it)",
                    l.id,
                    p.display()
                ));
            }
            row.xdp.attach = "link";
            row.xdp.link_id = Some(l.id);
            row.xdp.link_pinned = mine;
        } else {
            detach_netlink(rtnl, dev, mode, prog_id)?;
        }
        done.push(row);
    }
    Ok((done, notes))
}

/// Takes every XDP program off the device `name` in the namespace
/// `netns_arg` (a name under /run/netns, a path, or the current one):
/// what it took off.
pub fn detach(ctx: &Ctx, name: &str, netns_arg: Option<&str>) -> Result<Detached> {
    // Settle and lock the bpffs where xdpctl keeps links, if there is one.
    let mut journal = if ctx.bpffs.is_dir() && pinfs::is_bpffs(&ctx.bpffs).unwrap_or(false) {
        let (journal, notes) = ops::begin(&ctx.bpffs)?;
        ctx.out.notes(notes);
        Some(journal)
    } else {
        None
    };
    // Named as outputs name namespaces (the current one included).
    let ns_name = netns::Netns::of(netns_arg)?.name;
    let entered = netns::enter(netns_arg)?;
    let mut rtnl = Rtnl::open().context("opening rtnetlink")?;
    let dev = device(&mut rtnl, name, netns_arg)?;
    let (detached, notes) = detach_device(ctx, &mut journal, &mut rtnl, &dev, ns_name.as_deref())?;
    let after = device(&mut rtnl, name, netns_arg)?;
    drop(entered);
    ctx.out.notes(notes);
    if let Some((mode, id)) = after.xdp.attached().first() {
        bail!(
            "{} still has program {id} in {mode} mode after detaching; it was attached again \
             meanwhile",
            dev.name
        );
    }
    if detached.is_empty() {
        ctx.out.note(format_args!(
            "no XDP program is attached to {}; nothing to detach",
            dev.name
        ));
    } else {
        for d in &detached {
            ctx.out.note(format_args!(
                "detached program {} ({}) from {} ({} mode, {})",
                d.xdp.prog_id, d.xdp.prog_name, d.device, d.xdp.mode, d.xdp.attach
            ));
        }
    }
    Ok(Detached {
        device: dev.name,
        detached,
    })
}
