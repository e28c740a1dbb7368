//! Unload: detach everything a load directory attached, then
//! remove its pins — as one journaled change. The directory is moved into
//! `_xdpctl/trash/` in one rename before its pins are removed, so it
//! vanishes whole; a crash anywhere is finished by the next command.

use std::path::PathBuf;

use anyhow::{Result, bail};
use serde::Serialize;

use crate::{
    ctx::Ctx,
    kernel::{
        layout, objects,
        sys::{self, IdKind},
    },
    model::{
        change::{Change, SharedPin},
        linkpin::LinkPin,
        xdp::XdpAttachment,
    },
    ops::attach::Attachment,
    ops::{
        self,
        live::{NetlinkAttachment, netlink_attachments},
        loaddir::LoadDir,
        pending,
    },
    render::{self, Human, Tabular},
};

/// What an unload detached and removed.
#[derive(Debug, Serialize)]
pub struct Unloaded {
    /// The directory.
    pub dir: PathBuf,
    /// Attachments taken off devices first.
    pub detached: Vec<Attachment>,
    /// The pins removed.
    pub removed: Vec<RemovedRow>,
    /// Firewalls whose chain held one of its programs: emptied first.
    pub unchained: Vec<PathBuf>,
    /// What other tools attached with its programs, which keeps them
    /// running: named, left alone.
    pub still_running: Vec<String>,
}

/// One removed pin.
#[derive(Debug, Serialize)]
pub struct RemovedRow {
    /// `prog`, `map` or `link`.
    pub kind: &'static str,
    /// The kernel id it had.
    pub id: u32,
    /// Where it was pinned.
    pub pinned: PathBuf,
}

impl Tabular for RemovedRow {
    const HEADERS: &'static [&'static str] = &["KIND", "ID", "UNPINNED"];
    fn cells(&self, view: &render::View) -> Vec<String> {
        vec![
            self.kind.to_owned(),
            self.id.to_string(),
            view.path(&self.pinned),
        ]
    }
}

impl Human for Unloaded {
    fn human(&self, view: &render::View) -> String {
        if self.removed.is_empty() {
            String::new()
        } else {
            view.table(&self.removed)
        }
    }
}

/// Unloads the load directory `dir` (relative: under the bpffs root):
/// what it detached and removed. A directory with nothing pinned is
/// nothing to do, not an error.
pub fn unload(ctx: &Ctx, dir: &std::path::Path) -> Result<Unloaded> {
    let dir = ctx.resolve(dir);
    let target = match pinfs::validate(&dir) {
        Ok(target) => target,
        // A bpffs root that is not mounted holds nothing: nothing to do.
        Err(pinfs::Error::NotBpffs { .. }) if !dir.exists() => {
            return Ok(nothing_pinned(ctx, dir));
        }
        Err(e) => return Err(e.into()),
    };
    if !target.exists() {
        return Ok(nothing_pinned(ctx, target.path));
    }
    if target.path == layout::mount_root(&target.path)? {
        bail!(
            "{} is the root of a bpffs mount; refusing to remove every pin on it (name the load \
             directory instead)",
            target.path.display()
        );
    }
    // A directory without a pin (the parent a load of `x/fw` made, once
    // `x/fw` is unloaded) holds nothing to unload: not an error.
    if target.path.is_dir()
        && pinfs::list(&target.path).is_ok_and(|p| p.is_empty())
        && crate::kernel::steps::read_manifest(&target.path).is_ok_and(|m| m.is_none())
    {
        return Ok(nothing_pinned(ctx, target.path));
    }
    LoadDir::open(&dir)?;
    let (mut journal, notes) = ops::begin(&target.path)?;
    ctx.out.notes(notes);
    let load = LoadDir::open(&dir)?;
    if pending::read(journal.state(), &pending::load_key(load.manifest.load_id))?.is_some() {
        bail!(
            "an upgrade of {} is waiting for confirmation; run `xdpctl confirm {}` (or let it \
             roll back) first",
            load.path.display(),
            load.path.display()
        );
    }

    // Detach first: an attached program keeps running after its pins are gone.
    let pins = pinfs::list(&load.path)?;
    let prog_ids: Vec<u32> = load.manifest.programs.iter().map(|p| p.id).collect();
    let mut detached = Vec::new();
    let mut links = Vec::new();
    let spaces = crate::kernel::netns::known()?;
    let links_dir = load.links_dir();
    // A tc filter in a namespace xdpctl cannot enter would keep running
    // with its record gone: refused, before anything changes.
    let unreachable = crate::ops::tc::out_of_reach(&links_dir)?;
    if !unreachable.is_empty() {
        let each: Vec<String> = unreachable
            .iter()
            .map(|(path, pin)| {
                let hook = if pin.hook.name().ends_with("egress") {
                    "egress"
                } else {
                    "ingress"
                };
                format!(
                    "{} at {} in namespace inode {} (`xdpctl detach {} --tc {hook} --netns \
                     /proc/PID/ns/net`; its record is {})",
                    pin.dev,
                    pin.hook.name(),
                    pin.netns,
                    pin.dev,
                    path.display()
                )
            })
            .collect();
        bail!(
            "{} has tc filters in network namespaces with no name under /run/netns, which \
             xdpctl cannot enter: {}; delete them from there first (PID a process in that \
             namespace); nothing was changed",
            load.path.display(),
            each.join("; ")
        );
    }
    // A program in a dispatcher out of reach, likewise.
    for record in crate::ops::dispatcher::records(&links_dir) {
        if crate::ops::dispatcher::runs(ctx, &record)?.is_none() {
            bail!(
                "{} has a program in a libxdp dispatcher in a network namespace with no name \
                 under /run/netns (its record is {}), which xdpctl cannot enter: give the \
                 namespace a name (`ip netns attach NAME PID`) and unload again; nothing was \
                 changed",
                load.path.display(),
                record.display()
            );
        }
    }
    // Out of libxdp dispatchers first: a dispatcher without its program.
    for record in crate::ops::dispatcher::records(&links_dir) {
        if let Some(dev) = crate::ops::dispatcher::leave(ctx, &mut journal, &record)? {
            ctx.out.note(format_args!(
                "took {} out of the libxdp dispatcher on {dev}",
                record
                    .file_name()
                    .map_or_else(String::new, |n| n.to_string_lossy().into_owned())
            ));
        }
    }
    // Its tc filters first, each with its record: a filter has no link to
    // go with the load's pins.
    for (pin, prog, ifindex) in crate::ops::tc::detach_load(&mut journal, &links_dir)? {
        detached.push(Attachment {
            device: pin.dev.clone(),
            ifindex,
            netns: crate::kernel::netns::Netns::by_inode(pin.netns, &spaces).name,
            xdp: XdpAttachment {
                mode: pin.hook.name().to_owned(),
                prog_id: prog,
                prog_name: objects::describe(pinfs::Kind::Prog, prog)
                    .map_or_else(|_| "?".into(), |d| d.name),
                attach: "tc",
                link_id: None,
                link_pinned: vec![pin.path()],
                dispatcher: None,
                chain: None,
            },
        });
    }
    for pin in pins
        .iter()
        .filter(|p| p.kind == pinfs::Kind::Link && p.path.starts_with(&links_dir))
    {
        let Ok(fd) = sys::fd_by_id(IdKind::Link, pin.id) else {
            continue;
        };
        let info = sys::link_info(std::os::fd::AsFd::as_fd(&fd))?;
        links.push(pin.id);
        // NB: the link may be in another namespace, where the ifindex
        // means another device; its pin's name is the device as attach
        // named it.
        // The pin is `<device>@<netns inode>`: named back as outputs name
        // devices and namespaces.
        // A tcx link says its hook where an XDP one says its mode.
        let (device, netns, mode) = match LinkPin::parse(&pin.path) {
            Some(p) => {
                let ns = crate::kernel::netns::Netns::by_inode(p.netns, &spaces);
                let mode = match p.hook {
                    crate::model::linkpin::Hook::Xdp => {
                        // The mode in effect, as `net show` reads it.
                        crate::ops::live::mode_of(&ns, &p.dev, info.prog_id)
                            .ok()
                            .flatten()
                            .map_or("?", |m| m.name())
                    }
                    ref tcx => tcx.name(),
                };
                (p.dev, ns.name, mode)
            }
            None => (
                pin.path
                    .file_name()
                    .map_or_else(|| "?".to_owned(), |n| n.to_string_lossy().into_owned()),
                None,
                "?",
            ),
        };
        detached.push(Attachment {
            device,
            ifindex: sys::device_link_ifindex(&info).unwrap_or(0),
            netns,
            xdp: XdpAttachment {
                mode: mode.to_owned(),
                prog_id: info.prog_id,
                prog_name: objects::describe(pinfs::Kind::Prog, info.prog_id)
                    .map_or_else(|_| "?".into(), |d| d.name),
                attach: "link",
                link_id: Some(pin.id),
                link_pinned: vec![pin.path.clone()],
                dispatcher: None,
                chain: None,
            },
        });
    }
    let mut netlink = Vec::new();
    for NetlinkAttachment {
        dev,
        name,
        netns,
        prog,
    } in netlink_attachments(&ctx.link_pin_index()?, &prog_ids)?
    {
        detached.push(Attachment {
            device: name,
            ifindex: dev.ifindex,
            netns: netns.name,
            xdp: XdpAttachment {
                mode: crate::model::xdp::XdpMode::from_flag(dev.mode)
                    .map_or("?", |m| m.name())
                    .to_owned(),
                prog_id: prog,
                prog_name: objects::describe(pinfs::Kind::Prog, prog)
                    .map_or_else(|_| "?".into(), |d| d.name),
                attach: "netlink",
                link_id: None,
                link_pinned: Vec::new(),
                dispatcher: None,
                chain: None,
            },
        });
        netlink.push((dev, prog));
    }
    // Maps shared by name: the last load that uses a pin xdpctl made
    // removes it; a pin another tool made, or one another load still uses,
    // stays.
    let others: Vec<LoadDir> = crate::ops::loaddir::all(&layout::mount_root(&load.path)?)?
        .into_iter()
        .filter(|l| l.path != load.path)
        .collect();
    let mut shared = Vec::new();
    for m in &load.manifest.maps {
        let Some(s) = &m.shared else { continue };
        let users: Vec<String> = others
            .iter()
            .filter(|o| {
                o.manifest
                    .maps
                    .iter()
                    .any(|om| om.id == m.id && om.shared.as_ref().is_some_and(|x| x.path == s.path))
            })
            .map(|o| o.path.display().to_string())
            .collect();
        let pinned = pinfs::pin_info(&s.path)
            .ok()
            .filter(|p| p.kind == pinfs::Kind::Map && p.id == m.id);
        if !users.is_empty() {
            ctx.out.note(format_args!(
                "kept the map {} shared at {}: {} uses it",
                m.name,
                s.path.display(),
                users.join(", ")
            ));
        } else if !s.owned {
            ctx.out.note(format_args!(
                "kept the map {} shared at {}: another tool pinned it",
                m.name,
                s.path.display()
            ));
        } else if pinned.is_some() {
            shared.push(SharedPin {
                path: s.path.clone(),
                map: m.id,
            });
        }
    }
    // Out of any firewall's chain first, the way out of a device: the slot
    // holds the program, which would run on after its pins are gone.
    let unchain: Vec<(PathBuf, PathBuf, u32)> = ops::chain::all(&ctx.bpffs)?
        .into_iter()
        .filter(|(fw, _, prog)| *fw != load.path && prog_ids.contains(prog))
        .collect();
    let entry = journal.begin(Change::Unload {
        dir: load.path.clone(),
        generation: load.manifest.generation,
        trash: journal.scratch("trash")?,
        links,
        netlink,
        shared: shared.clone(),
        unchain: unchain
            .iter()
            .map(|(_, map, prog)| (map.clone(), *prog))
            .collect(),
    })?;
    journal.run_forward(&entry)?;
    journal.finish(entry)?;
    for (fw, _, prog) in &unchain {
        ctx.out.note(format_args!(
            "took program {prog} out of the chain of {}: what it passes, passes",
            fw.display()
        ));
    }
    for d in &detached {
        ctx.out.note(format_args!(
            "detached program {} ({}) from {}{}{} ({})",
            d.xdp.prog_id,
            d.xdp.prog_name,
            if d.xdp.mode.starts_with("tc") {
                format!("{} of ", d.xdp.mode)
            } else {
                String::new()
            },
            d.device,
            d.netns
                .as_deref()
                .map_or_else(String::new, |n| format!(" in netns {n}")),
            match d.xdp.link_id {
                Some(l) => format!("link {l}"),
                None if d.xdp.attach == "tc" => "tc filter".to_owned(),
                None => format!("netlink, {} mode", d.xdp.mode),
            }
        ));
    }
    ctx.out.note(format_args!(
        "unpinned {} from {}",
        render::count(pins.len(), "object", "objects"),
        load.path.display()
    ));
    // What other tools attached keeps its programs running: named, left
    // alone (not xdpctl's to remove).
    let still_running = ops::netshow::users(ctx, &prog_ids)?;
    for user in &still_running {
        ctx.out.note(format_args!(
            "still running, attached by another tool: {user}"
        ));
    }
    let removed = pins
        .into_iter()
        .map(|p| RemovedRow {
            kind: p.kind.as_str(),
            id: p.id,
            pinned: p.path,
        })
        .chain(shared.into_iter().map(|s| RemovedRow {
            kind: "map",
            id: s.map,
            pinned: s.path,
        }))
        .collect();
    Ok(Unloaded {
        dir: load.path,
        detached,
        removed,
        unchained: unchain.into_iter().map(|(fw, _, _)| fw).collect(),
        still_running,
    })
}

/// Unload of a directory that does not exist: nothing to do, not an error.
fn nothing_pinned(ctx: &Ctx, dir: PathBuf) -> Unloaded {
    ctx.out
        .note(format_args!("nothing is pinned at {}", dir.display()));
    Unloaded {
        dir,
        detached: Vec::new(),
        removed: Vec::new(),
        unchained: Vec::new(),
        still_running: Vec::new(),
    }
}
