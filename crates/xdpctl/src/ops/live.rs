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
        netns,
        objects::PinIndex,
        sys,
    },
    model::{
        change::Dev,
        manifest::MAPS_SUBDIR,
        policy::{RULE_MAPS, RuleMaps},
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
    /// Its namespace as outputs name it (`None`: xdpctl's own).
    pub netns: Option<String>,
    /// The program.
    pub prog: u32,
}

/// Every netlink attachment of a program in `progs`, in this namespace
/// and every one under /run/netns: the device and the program.
pub fn netlink_attachments(link_pins: &PinIndex, progs: &[u32]) -> Result<Vec<NetlinkAttachment>> {
    // Link pins name their namespace: they tell a link from netlink.
    let links = links::XdpLinks::load(link_pins)?;
    let mut out = Vec::new();
    for ns in netns::all()? {
        // A namespace deleted meanwhile holds nothing.
        let Ok(entered) = netns::enter(ns.as_deref()) else {
            continue;
        };
        let ino = netns::current_inode()?;
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
                        netns: ino,
                        ifindex: dev.ifindex,
                        mode: mode.flag(),
                    },
                    name: dev.name.clone(),
                    netns: ns.as_deref().map(netns::display),
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
    /// Its namespace as outputs name it (`None`: xdpctl's own).
    pub netns: Option<String>,
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

/// The namespaces xdpctl knows (its own and those under /run/netns), by
/// inode, with how outputs name them.
pub fn namespaces() -> Result<Vec<(u64, Option<String>)>> {
    let mut out = Vec::new();
    for ns in netns::all()? {
        let ino = match &ns {
            None => netns::current_inode()?,
            Some(path) => match netns::inode_of(Path::new(path)) {
                Ok(ino) => ino,
                Err(_) => continue,
            },
        };
        out.push((ino, ns.as_deref().map(netns::display)));
    }
    Ok(out)
}

/// Where the load's programs are attached: its pinned links (their pins
/// name the device and the namespace) and netlink attachments of its
/// programs in every known namespace.
pub fn devices(load: &LoadDir, link_pins: &PinIndex) -> Result<Vec<LiveDevice>> {
    let progs: Vec<u32> = load.manifest.programs.iter().map(|p| p.id).collect();
    let spaces = namespaces()?;
    let mut out = Vec::new();
    for pin in pinfs::list(&load.links_dir()).unwrap_or_default() {
        if pin.kind != pinfs::Kind::Link {
            continue;
        }
        let Some(name) = pin.path.file_name().and_then(|n| n.to_str()) else {
            continue;
        };
        let Some((dev, ino)) = name.rsplit_once('@') else {
            continue;
        };
        let Ok(ino) = ino.parse::<u64>() else {
            continue;
        };
        let Ok(fd) = sys::fd_by_id(sys::IdKind::Link, pin.id) else {
            continue;
        };
        let info = sys::link_info(std::os::fd::AsFd::as_fd(&fd))?;
        if sys::xdp_link_ifindex(&info).is_none_or(|i| i == 0) {
            continue; // detached: not an attachment
        }
        let netns = spaces
            .iter()
            .find(|(i, _)| *i == ino)
            .map(|(_, n)| n.clone());
        let mode = match &netns {
            Some(ns) => mode_of(ns.as_deref(), dev, info.prog_id)?,
            None => None,
        };
        out.push(LiveDevice {
            name: dev.to_owned(),
            netns: netns.flatten(),
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
    out.sort_by(|a, b| (&a.netns, &a.name).cmp(&(&b.netns, &b.name)));
    Ok(out)
}

/// The mode `prog` runs in on `dev` of namespace `ns`.
fn mode_of(ns: Option<&str>, dev: &str, prog: u32) -> Result<Option<XdpMode>> {
    let spec = ns.map(|n| netns::path_of(n).display().to_string());
    let Ok(_entered) = netns::enter(spec.as_deref()) else {
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
