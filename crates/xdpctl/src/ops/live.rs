//! The live state of a load: what it has attached where, and what its rule
//! maps hold — read for `apply`, `save`, the agent, `unload` and
//! `load --replace`.

use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result, bail};
use serde::Serialize;

use crate::{
    kernel::{
        links::{self, XdpAttach},
        map::MapHandle,
        netlink::Rtnl,
        netns::{self, Netns},
        objects::PinIndex,
        sys,
    },
    model::{
        change::Dev,
        linkpin::{Hook, LinkPin},
        manifest::MAPS_SUBDIR,
        policy::{OPTIONAL_RULE_MAPS, RULE_MAPS, RuleMaps, TcxHook, TcxSpec},
        xdp::XdpMode,
    },
    ops::loaddir::LoadDir,
};

/// A netlink attachment found on a device.
pub struct NetlinkAttachment {
    /// The device, for the journal.
    pub dev: Dev,
    /// Its name.
    pub name: String,
    /// Its namespace.
    pub netns: Netns,
    /// The program.
    pub prog: u32,
}

/// Every netlink attachment of a program in `progs`, in this namespace
/// and every one under /run/netns: the device and the program.
pub fn netlink_attachments(link_pins: &PinIndex, progs: &[u32]) -> Result<Vec<NetlinkAttachment>> {
    // Link pins name their namespace: they tell a link from netlink.
    let links = links::XdpLinks::load(link_pins)?;
    let mut out = Vec::new();
    for ns in netns::known()? {
        // A namespace deleted meanwhile holds nothing.
        let Ok(Ok(entered)) = ns.enter() else {
            continue;
        };
        let mut rtnl = Rtnl::open().context("opening rtnetlink")?;
        for dev in rtnl.devices().context("listing devices")? {
            for (mode, prog) in dev.xdp.attached() {
                if !progs.contains(&prog) {
                    continue;
                }
                match links.find(dev.ifindex, mode, prog)? {
                    XdpAttach::Netlink => {}
                    XdpAttach::Link(_) | XdpAttach::UnknownLink => continue,
                }
                out.push(NetlinkAttachment {
                    dev: Dev {
                        netns: ns.ino,
                        ifindex: dev.ifindex,
                        mode: mode.flag(),
                    },
                    name: dev.name.clone(),
                    netns: ns.clone(),
                    prog,
                });
            }
        }
        drop(entered);
    }
    Ok(out)
}

/// A device a load's program is attached to.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct LiveDevice {
    /// The device.
    pub name: String,
    /// Its namespace (named as outputs name namespaces).
    pub netns: Netns,
    /// The mode in effect.
    #[serde(serialize_with = "mode_name")]
    pub mode: Option<XdpMode>,
    /// `link` or `netlink`.
    pub by: &'static str,
    /// The program.
    pub prog: u32,
}

fn mode_name<S: serde::Serializer>(m: &Option<XdpMode>, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(m.map_or("?", XdpMode::name))
}

/// Where the load's programs are attached: its pinned links (their pins
/// name the device and the namespace) and netlink attachments of its
/// programs in every known namespace.
pub fn devices(load: &LoadDir, link_pins: &PinIndex) -> Result<Vec<LiveDevice>> {
    let progs: Vec<u32> = load.manifest.programs.iter().map(|p| p.id).collect();
    let spaces = netns::known()?;
    let mut out = Vec::new();
    for pin in pinfs::list(&load.links_dir()).unwrap_or_default() {
        if pin.kind != pinfs::Kind::Link {
            continue;
        }
        let Some(LinkPin {
            dev, netns: ino, ..
        }) = LinkPin::parse(&pin.path)
        else {
            continue;
        };
        let Ok(fd) = sys::fd_by_id(sys::IdKind::Link, pin.id) else {
            continue;
        };
        let info = sys::link_info(std::os::fd::AsFd::as_fd(&fd))?;
        if sys::xdp_link_ifindex(&info).is_none_or(|i| i == 0) {
            continue; // detached: not an attachment
        }
        let netns = Netns::by_inode(ino, &spaces);
        let mode = mode_of(&netns, &dev, info.prog_id)?;
        out.push(LiveDevice {
            name: dev,
            netns,
            mode,
            by: "link",
            prog: info.prog_id,
        });
    }
    for a in netlink_attachments(link_pins, &progs)? {
        out.push(LiveDevice {
            name: a.name,
            netns: a.netns,
            mode: XdpMode::from_flag(a.dev.mode),
            by: "netlink",
            prog: a.prog,
        });
    }
    out.sort_by(|a, b| (&a.netns.name, &a.name).cmp(&(&b.netns.name, &b.name)));
    Ok(out)
}

/// The records in a load's links directory that are programs, not links
/// (tc filters', libxdp dispatcher slots'), of the hooks `hook` accepts:
/// (path, record, program id).
pub fn program_records(
    links_dir: &Path,
    hook: impl Fn(&Hook) -> bool,
) -> Vec<(PathBuf, LinkPin, u32)> {
    pinfs::list(links_dir)
        .unwrap_or_default()
        .into_iter()
        .filter(|p| p.kind == pinfs::Kind::Prog)
        .filter_map(|p| {
            let pin = LinkPin::parse(&p.path)?;
            hook(&pin.hook).then_some((p.path, pin, p.id))
        })
        .collect()
}

/// The load's tcx link pins (a policy's `tcx` entries).
///
/// Only links still attached: a device that went took its links with it,
/// and a pin left of one is not an attachment (`doctor` removes it).
pub fn tcx_pins(load: &LoadDir) -> Vec<LinkPin> {
    use std::os::fd::AsFd as _;
    let attached = |id: u32| {
        crate::kernel::sys::fd_by_id(crate::kernel::sys::IdKind::Link, id)
            .and_then(|fd| crate::kernel::sys::link_info(fd.as_fd()))
            .is_ok_and(|i| crate::kernel::sys::device_link_ifindex(&i).is_none_or(|x| x != 0))
    };
    pinfs::list(&load.links_dir())
        .unwrap_or_default()
        .into_iter()
        .filter(|p| p.kind == pinfs::Kind::Link && attached(p.id))
        .filter_map(|p| LinkPin::parse(&p.path))
        .filter(|p| p.hook != Hook::Xdp)
        .collect()
}

/// The load's tcx links still attached, with each as a policy's `tcx`
/// entry, in the order each hook runs them.
pub fn tcx_specs(load: &LoadDir) -> Result<Vec<(LinkPin, TcxSpec)>> {
    let spaces = netns::known()?;
    let mut out: Vec<(LinkPin, TcxSpec)> = tcx_pins(load)
        .into_iter()
        .filter_map(|p| {
            let Hook::Tcx { egress, prog } = &p.hook else {
                return None;
            };
            let spec = TcxSpec {
                name: p.dev.clone(),
                netns: Netns::by_inode(p.netns, &spaces).name,
                hook: TcxHook::of(*egress),
                prog: prog.clone(),
            };
            Some((p, spec))
        })
        .collect();
    let mut runs = std::collections::HashMap::new();
    out.sort_by_cached_key(|(_, t)| {
        let order = runs
            .entry((t.name.clone(), t.netns.clone(), t.hook))
            .or_insert_with(|| {
                super::tcx::programs_at(&t.name, t.netns.as_deref(), t.hook.egress())
                    .unwrap_or_default()
            });
        let at = load
            .manifest
            .programs
            .iter()
            .find(|p| p.name == t.prog)
            .and_then(|p| order.iter().position(|&id| id == p.id));
        (t.name.clone(), t.netns.clone(), t.hook, at)
    });
    Ok(out)
}

/// The mode `prog` runs in on `dev` of namespace `ns`; `None` where that
/// namespace cannot be entered (gone, or not named under /run/netns).
pub fn mode_of(ns: &Netns, dev: &str, prog: u32) -> Result<Option<XdpMode>> {
    let Ok(Ok(_entered)) = ns.enter() else {
        return Ok(None);
    };
    let mut rtnl = Rtnl::open().context("opening rtnetlink")?;
    Ok(rtnl.device(dev)?.and_then(|d| {
        d.xdp
            .attached()
            .into_iter()
            .find(|(_, id)| *id == prog)
            .map(|(m, _)| m)
    }))
}

/// What the firewall's rule maps of a load hold.
pub fn rules(dir: &Path) -> Result<RuleMaps> {
    let mut out = RuleMaps::new();
    for name in RULE_MAPS {
        let path = dir.join(MAPS_SUBDIR).join(name);
        // A firewall from before these maps: none of their rules.
        if OPTIONAL_RULE_MAPS.contains(&name) && !path.exists() {
            continue;
        }
        let map = MapHandle::open_pinned(&path)
            .with_context(|| format!("{} has no rule map {name}", dir.display()))?;
        out.insert(name.to_owned(), map.entries()?);
    }
    Ok(out)
}

/// Checks that the rule maps of `dir` can hold `want`: each exists with the
/// key and value sizes the policy's entries have.
pub fn check_rule_maps(dir: &Path, want: &RuleMaps) -> Result<()> {
    for (name, entries) in want {
        let path: PathBuf = dir.join(MAPS_SUBDIR).join(name);
        if OPTIONAL_RULE_MAPS.contains(&name.as_str()) && !path.exists() {
            if entries.is_empty() {
                continue;
            }
            bail!(
                "{} has no map {name}: it was loaded by an xdpctl without rate limits; \
                 `xdpctl load --replace` upgrades it (rules and links kept)",
                dir.display()
            );
        }
        let map = MapHandle::open_pinned(&path).with_context(|| {
            format!(
                "{} has no rule map {name}: the policy's rules need the built-in firewall's maps",
                dir.display()
            )
        })?;
        if !entries.is_empty()
            && (entries.key_size != map.key_size() || entries.value_size != map.value_len())
        {
            bail!(
                "{}: map {name} has keys of {} and values of {} bytes, the policy's rules {} and {}",
                dir.display(),
                map.key_size(),
                map.value_len(),
                entries.key_size,
                entries.value_size
            );
        }
        if entries.len() as u64 > u64::from(map.info().max_entries) {
            bail!(
                "{}: map {name} holds at most {} entries, the policy has {}",
                dir.display(),
                map.info().max_entries,
                entries.len()
            );
        }
    }
    Ok(())
}
