//! The journal's steps against the real kernel: [`model::change::Kernel`]
//! implemented with `bpf(2)`, rtnetlink and bpffs renames.
//!
//! Before it renames or removes anything it checks that the path's parent
//! has no symlink in it: a record (validated to lie inside the bpffs) can
//! then not be turned into a removal elsewhere by a symlink on the way.

use std::{
    fs,
    os::fd::{AsFd, AsRawFd},
    path::Path,
};

use anyhow::{Context as _, Result, bail};

use crate::{
    kernel::{
        chain, fwindex,
        map::MapHandle,
        netlink::{self, Rtnl},
        netns, store,
        sys::{self, IdKind, xdp_flags},
    },
    model::{
        change::{Dev, Kernel, LinkState},
        linkpin::{Hook, LinkPin},
        manifest::{self, Manifest},
        policy,
        xdp::XdpMode,
    },
};

/// The real kernel.
#[derive(Debug, Default)]
pub struct Real;

/// Where a tc record's filter is, in its namespace (entered while this
/// lives): the device's ifindex (`None`: the device went), the parent and
/// the priority.
struct TcPlace {
    _in: Option<netns::Entered>,
    rtnl: Rtnl,
    ifindex: Option<u32>,
    parent: netlink_packet_route::tc::TcHandle,
    prio: u16,
}

/// What [`TcPlace::of`] found.
enum Found {
    /// The pin is no tc filter's record.
    NotTc,
    /// Its namespace has no name to enter it by.
    OutOfReach,
    /// Its place.
    At(TcPlace),
}

impl TcPlace {
    fn of(at: &LinkPin) -> Result<Found> {
        let Hook::Tc { egress, prio, .. } = at.hook else {
            return Ok(Found::NotTc);
        };
        let Ok(entered) = netns::enter_inode(at.netns)? else {
            return Ok(Found::OutOfReach);
        };
        let mut rtnl = Rtnl::open().context("opening rtnetlink")?;
        let ifindex = rtnl.device_of_pin(&at.dev)?.map(|d| d.ifindex);
        Ok(Found::At(TcPlace {
            _in: entered,
            rtnl,
            ifindex,
            parent: netlink::clsact_parent(egress),
            prio,
        }))
    }
}

/// Refuses a path whose parent resolves elsewhere (a symlink on the way).
fn plain(path: &Path) -> Result<()> {
    let Some(parent) = path.parent() else {
        bail!("{} has no parent", path.display());
    };
    let resolved =
        fs::canonicalize(parent).with_context(|| format!("resolving {}", parent.display()))?;
    if resolved != parent {
        bail!(
            "{} leads through a symlink to {}; refusing to change it",
            path.display(),
            resolved.display()
        );
    }
    Ok(())
}

/// The manifest of the load directory `dir`, if it is one.
pub fn read_manifest(dir: &Path) -> Result<Option<Manifest>> {
    let Some(bytes) = store::read(&dir.join(manifest::PIN), store::Kind::Manifest)? else {
        return Ok(None);
    };
    Manifest::from_bytes(&bytes)
        .map(Some)
        .map_err(|e| anyhow::anyhow!("the manifest of {} is {e}", dir.display()))
}

impl Kernel for Real {
    fn link(&mut self, link: u32) -> Result<Option<LinkState>> {
        let fd = match sys::fd_by_id(IdKind::Link, link) {
            Ok(fd) => fd,
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => return Ok(None),
            Err(e) => return Err(e).with_context(|| format!("opening link {link}")),
        };
        let info = sys::link_info(fd.as_fd()).with_context(|| format!("reading link {link}"))?;
        Ok(Some(LinkState {
            prog: info.prog_id,
            // NB: a detached XDP link keeps existing while held, with
            // ifindex 0 and no program.
            attached: sys::device_link_ifindex(&info).is_none_or(|i| i != 0) && info.prog_id != 0,
        }))
    }

    fn link_update(&mut self, link: u32, to: u32, from: u32) -> Result<()> {
        let l =
            sys::fd_by_id(IdKind::Link, link).with_context(|| format!("opening link {link}"))?;
        let new =
            sys::fd_by_id(IdKind::Prog, to).with_context(|| format!("opening program {to}"))?;
        let old =
            sys::fd_by_id(IdKind::Prog, from).with_context(|| format!("opening program {from}"))?;
        sys::link_update(l.as_fd(), new.as_fd(), Some(old.as_fd()))
            .with_context(|| format!("switching link {link} from program {from} to {to}"))
    }

    fn link_detach(&mut self, link: u32) -> Result<()> {
        let l =
            sys::fd_by_id(IdKind::Link, link).with_context(|| format!("opening link {link}"))?;
        sys::link_detach(l.as_fd()).with_context(|| format!("detaching link {link}"))
    }

    fn xdp(&mut self, dev: &Dev) -> Result<Option<u32>> {
        let Ok(_entered) = netns::enter_inode(dev.netns)? else {
            return Ok(None);
        };
        let mut rtnl = Rtnl::open().context("opening rtnetlink")?;
        let Some(d) = rtnl
            .devices()
            .context("listing devices")?
            .into_iter()
            .find(|d| d.ifindex == dev.ifindex)
        else {
            return Ok(None);
        };
        Ok(d.xdp
            .attached()
            .into_iter()
            .find(|(mode, _)| Some(*mode) == XdpMode::from_flag(dev.mode))
            .map(|(_, id)| id))
    }

    fn xdp_replace(&mut self, dev: &Dev, to: Option<u32>, from: u32) -> Result<()> {
        let Ok(_entered) = netns::enter_inode(dev.netns)? else {
            bail!("network namespace {} is gone", dev.netns);
        };
        let old =
            sys::fd_by_id(IdKind::Prog, from).with_context(|| format!("opening program {from}"))?;
        let new = to
            .map(|id| {
                sys::fd_by_id(IdKind::Prog, id).with_context(|| format!("opening program {id}"))
            })
            .transpose()?;
        let mut rtnl = Rtnl::open().context("opening rtnetlink")?;
        rtnl.set_xdp(
            dev.ifindex,
            new.as_ref().map_or(-1, |fd| fd.as_raw_fd()),
            dev.mode | xdp_flags::REPLACE,
            Some(old.as_raw_fd()),
        )
        .with_context(|| format!("replacing program {from} on ifindex {}", dev.ifindex))
    }

    fn generation(&mut self, dir: &Path) -> Result<Option<u64>> {
        if !dir.is_dir() {
            return Ok(None);
        }
        Ok(read_manifest(dir)?.map(|m| m.generation))
    }

    fn exists(&mut self, path: &Path) -> Result<bool> {
        Ok(fs::symlink_metadata(path).is_ok())
    }

    fn exchange(&mut self, a: &Path, b: &Path) -> Result<()> {
        plain(a)?;
        plain(b)?;
        Ok(pinfs::exchange_dirs(a, b)?)
    }

    fn rename(&mut self, from: &Path, to: &Path) -> Result<()> {
        plain(from)?;
        plain(to)?;
        Ok(pinfs::rename_noreplace(from, to)?)
    }

    fn remove_tree(&mut self, path: &Path) -> Result<()> {
        if fs::symlink_metadata(path).is_err() {
            return Ok(());
        }
        plain(path)?;
        pinfs::remove_all(path)?;
        Ok(())
    }

    fn rmdir_if_empty(&mut self, path: &Path) -> Result<()> {
        if fs::symlink_metadata(path).is_err() {
            return Ok(());
        }
        plain(path)?;
        pinfs::remove_dir_if_empty(path)?;
        Ok(())
    }

    fn pinned_link(&mut self, path: &Path) -> Result<Option<u32>> {
        match pinfs::pin_info(path) {
            Ok(pin) if pin.kind == pinfs::Kind::Link => Ok(Some(pin.id)),
            Ok(_) => Ok(None),
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    fn pinned_prog(&mut self, path: &Path) -> Result<Option<u32>> {
        match pinfs::pin_info(path) {
            Ok(pin) if pin.kind == pinfs::Kind::Prog => Ok(Some(pin.id)),
            Ok(_) => Ok(None),
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    fn tc_filter(&mut self, at: &LinkPin) -> Result<Option<Option<u32>>> {
        let mut place = match TcPlace::of(at)? {
            Found::NotTc => return Ok(Some(None)),
            Found::OutOfReach => return Ok(None),
            Found::At(place) => place,
        };
        let Some(ifindex) = place.ifindex else {
            return Ok(Some(None));
        };
        Ok(Some(
            place
                .rtnl
                .tc_bpf_filters(ifindex, place.parent)
                .context("listing tc filters")?
                .into_iter()
                .find(|f| f.priority == place.prio && f.handle == netlink::TC_FILTER_HANDLE)
                .map(|f| f.prog_id),
        ))
    }

    fn tc_filter_del(&mut self, at: &LinkPin) -> Result<()> {
        let Found::At(mut place) = TcPlace::of(at)? else {
            return Ok(());
        };
        let Some(ifindex) = place.ifindex else {
            return Ok(());
        };
        match place.rtnl.del_bpf_filter(ifindex, place.parent, place.prio) {
            Err(e) if e.errno == libc::ENOENT => Ok(()),
            other => other.with_context(|| {
                format!(
                    "deleting the tc filter of priority {} at {} of {}",
                    place.prio,
                    at.hook.name(),
                    at.dev
                )
            }),
        }
    }

    fn tc_filter_replace(&mut self, at: &LinkPin, to: u32) -> Result<()> {
        let mut place = match TcPlace::of(at)? {
            Found::NotTc => return Ok(()),
            Found::OutOfReach => bail!("network namespace {} is gone", at.netns),
            Found::At(place) => place,
        };
        let Some(ifindex) = place.ifindex else {
            bail!("device {} is gone", at.dev);
        };
        let Hook::Tc { prog, .. } = &at.hook else {
            unreachable!("TcPlace::of found a tc record")
        };
        let fd =
            sys::fd_by_id(IdKind::Prog, to).with_context(|| format!("opening program {to}"))?;
        place
            .rtnl
            .put_bpf_filter(
                ifindex,
                place.parent,
                place.prio,
                fd.as_raw_fd(),
                prog,
                true,
            )
            .with_context(|| {
                format!(
                    "replacing the program of the tc filter of priority {} at {} of {}",
                    place.prio,
                    at.hook.name(),
                    at.dev
                )
            })
    }

    fn pinned_map(&mut self, path: &Path) -> Result<Option<u32>> {
        match pinfs::pin_info(path) {
            Ok(pin) if pin.kind == pinfs::Kind::Map => Ok(Some(pin.id)),
            Ok(_) => Ok(None),
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    fn chain(&mut self, map: &Path) -> Result<Option<u32>> {
        let Some(handle) =
            chain::open(map).with_context(|| format!("opening the chain {}", map.display()))?
        else {
            return Ok(None);
        };
        chain::next(&handle).with_context(|| format!("reading the chain {}", map.display()))
    }

    fn chain_set(&mut self, map: &Path, to: Option<u32>) -> Result<()> {
        let Some(handle) =
            chain::open(map).with_context(|| format!("opening the chain {}", map.display()))?
        else {
            bail!("no chain is pinned at {}", map.display());
        };
        let prog = to
            .map(|id| {
                sys::fd_by_id(IdKind::Prog, id).with_context(|| format!("opening program {id}"))
            })
            .transpose()?;
        chain::set(&handle, prog.as_ref().map(|fd| fd.as_fd())).map_err(|e| {
            let refused = e.raw_os_error() == Some(libc::EINVAL);
            anyhow::Error::new(e).context(match (refused, to) {
                (true, Some(id)) => format!(
                    "the kernel refuses program {id} in the chain {}: {}",
                    map.display(),
                    chain::REFUSAL
                ),
                _ => format!("setting the chain {}", map.display()),
            })
        })
    }

    fn sync_rules(&mut self, dir: &Path, desired: &Path) -> Result<()> {
        let Some(bytes) = store::read_big(desired, store::Kind::Desired)? else {
            // Already done and cleaned up.
            return Ok(());
        };
        let deltas =
            policy::decode(&bytes).with_context(|| format!("{} is damaged", desired.display()))?;
        let mut touched: Vec<fwindex::Rules> = deltas
            .iter()
            .filter_map(|(n, _)| fwindex::Rules::of_name(n))
            .collect();
        touched.dedup();
        let index = if touched.is_empty() {
            None
        } else {
            fwindex::Target::open(&dir.join(manifest::MAPS_SUBDIR))?
        };
        let mut added = Vec::new();
        for (name, d) in &deltas {
            if fwindex::Rules::of_name(name) == Some(fwindex::Rules::Blocklist) {
                (0..d.put.len()).for_each(|j| added.extend_from_slice(d.put.key(j)));
            }
        }
        // The one protocol of rule changes (see `fwindex::Target::begin`).
        let change = match &index {
            Some(t) => Some(t.begin(&touched, &added)?),
            None => None,
        };
        for (name, d) in &deltas {
            let path = dir.join(manifest::MAPS_SUBDIR).join(name);
            let map = MapHandle::open_pinned(&path)
                .with_context(|| format!("opening the rule map {}", path.display()))?;
            // Writing a value again and removing a key that is gone are
            // no-ops: the delta can be run again after a crash.
            map.put_all(&d.put)
                .with_context(|| format!("writing map {}", path.display()))?;
            map.delete_all(&d.remove)
                .with_context(|| format!("removing from map {}", path.display()))?;
        }
        if let (Some(t), Some(change)) = (&index, change) {
            // An index too big stays off: the trie it is, as `stats` says.
            change.finish(t)?;
        }
        Ok(())
    }

    fn unpin(&mut self, path: &Path) -> Result<()> {
        plain(path)?;
        pinfs::failpoint::step("unlink");
        match fs::remove_file(path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(e).with_context(|| format!("unpinning {}", path.display())),
        }
    }
}
