//! Looking objects up by id or pinned path, for the show commands and for
//! describing what a load pinned.

use std::{
    collections::HashMap,
    ffi::OsStr,
    os::fd::{AsFd, OwnedFd},
    path::{Path, PathBuf},
};

use anyhow::{Context as _, Result, bail};
use pinfs::Kind;

use crate::{
    kernel::sys::{self, IdKind},
    model::handle::Handle,
};

/// Pinned paths by object kind and kernel id.
pub type PinIndex = HashMap<(Kind, u32), Vec<PathBuf>>;

/// The pins below `root` whose file name `wanted` accepts, by kind and id.
/// Empty when `root` is not a bpffs (nothing can be pinned there).
pub fn pin_index(root: &Path, wanted: impl Fn(&OsStr) -> bool + Copy) -> Result<PinIndex> {
    pin_index_pruned(root, wanted, |_, _| true)
}

/// [`pin_index`], walking into a subdirectory only when `descend` (see
/// [`pinfs::list_pruned`]) accepts it.
pub fn pin_index_pruned(
    root: &Path,
    wanted: impl Fn(&OsStr) -> bool + Copy,
    descend: impl Fn(&[std::ffi::OsString], &OsStr) -> bool + Copy,
) -> Result<PinIndex> {
    let mut index = PinIndex::new();
    if !root.is_dir() || !pinfs::is_bpffs(root)? {
        return Ok(index);
    }
    let pins = pinfs::list_pruned(root, wanted, descend)
        .with_context(|| format!("listing pins under {}", root.display()))?;
    for pin in pins {
        index.entry((pin.kind, pin.id)).or_default().push(pin.path);
    }
    Ok(index)
}

/// An object's kernel name and type name.
#[derive(Debug)]
pub struct Described {
    /// The kernel's (15-character) name.
    pub name: String,
    /// Program or map type, as the kernel names it.
    pub type_: String,
}

/// Name and type of the object of `kind` with this id.
pub fn describe(kind: Kind, id: u32) -> Result<Described> {
    match kind {
        Kind::Prog => {
            let fd = sys::fd_by_id(IdKind::Prog, id)?;
            let (info, _) = sys::prog_info(fd.as_fd())?;
            Ok(Described {
                name: sys::c_name(&info.name),
                type_: sys::prog_type_name(info.type_),
            })
        }
        Kind::Map => {
            let fd = sys::fd_by_id(IdKind::Map, id)?;
            let info = sys::map_info(fd.as_fd())?;
            Ok(Described {
                name: sys::c_name(&info.name),
                type_: sys::map_type_name(info.type_),
            })
        }
        Kind::Link | Kind::Btf => Ok(Described {
            name: "-".into(),
            type_: kind.as_str().into(),
        }),
    }
}

/// Opens the object of `kind` by id, with an error that names it.
pub fn open_id(kind: IdKind, id: u32) -> Result<OwnedFd> {
    let what = match kind {
        IdKind::Prog => "program",
        IdKind::Map => "map",
        IdKind::Link => "link",
    };
    sys::fd_by_id(kind, id).map_err(|e| match e.raw_os_error() {
        Some(libc::ENOENT) => anyhow::anyhow!("no {what} has id {id}"),
        _ => anyhow::Error::new(e).context(format!("opening {what} id {id}")),
    })
}

/// Opens the object pinned at `path`, which must be of `want` kind.
pub fn open_pinned(path: &Path, want: Kind) -> Result<OwnedFd> {
    let pin = pinfs::validate(path)?;
    if !pin.exists() {
        bail!("nothing is pinned at {}", path.display());
    }
    if pin.path.is_dir() {
        bail!("{} is a directory, not a pinned {want}", path.display());
    }
    let fd = match pinfs::obj_get(&pin.path) {
        Ok(fd) => fd,
        // NB: bpffs files that are not pins (the kernel's own `maps.debug`
        // and `progs.debug` iterators) exist but are no objects.
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => bail!(
            "{} exists but is not a pinned BPF object (the kernel's iterator files such as \
             maps.debug are read with cat)",
            path.display()
        ),
        Err(e) => return Err(e.into()),
    };
    let info =
        pinfs::obj_info(fd.as_fd()).with_context(|| format!("reading {}", path.display()))?;
    if info.kind != want {
        let cmd = match info.kind {
            Kind::Prog => " (see: xdpctl prog show PATH)",
            Kind::Map => " (see: xdpctl map show PATH)",
            _ => "",
        };
        bail!(
            "{} is a pinned {}, not a {want}{cmd}",
            path.display(),
            info.kind
        );
    }
    Ok(fd)
}

/// Opens the program or map a handle names, and says how to name it in
/// messages. A name is looked up among the pins under the bpffs root (by
/// file name) first, then among the kernel's object names; several matches
/// are an error that lists them.
pub fn resolve(root: &Path, handle: &Handle, kind: Kind) -> Result<(OwnedFd, String)> {
    let id_kind = match kind {
        Kind::Prog => IdKind::Prog,
        Kind::Map => IdKind::Map,
        Kind::Link => IdKind::Link,
        Kind::Btf => bail!("BTF objects cannot be named here"),
    };
    match handle {
        // A bare name that is a path under the bpffs root is that path.
        Handle::Name(name) if root.join(name).exists() => {
            let path = root.join(name);
            Ok((open_pinned(&path, kind)?, path.display().to_string()))
        }
        Handle::Id(id) => Ok((open_id(id_kind, *id)?, format!("{kind} id {id}"))),
        Handle::Path(path) => {
            let path = root.join(path);
            Ok((open_pinned(&path, kind)?, path.display().to_string()))
        }
        Handle::Name(name) => {
            let what = if kind == Kind::Map { "map" } else { "program" };
            let mut pinned: Vec<(u32, std::path::PathBuf)> = pin_index(root, |_| true)?
                .into_iter()
                .filter(|((k, _), _)| *k == kind)
                .flat_map(|((_, id), paths)| paths.into_iter().map(move |p| (id, p)))
                .filter(|(_, p)| p.file_name().is_some_and(|f| f == name.as_str()))
                .collect();
            pinned.sort();
            let mut ids: Vec<u32> = pinned.iter().map(|(id, _)| *id).collect();
            ids.dedup();
            match ids.len() {
                1 => return Ok((open_id(id_kind, ids[0])?, pinned[0].1.display().to_string())),
                0 => {}
                _ => bail!(
                    "{} {what}s are pinned as {name}: {}; name one by path or id",
                    ids.len(),
                    pinned
                        .iter()
                        .map(|(id, p)| format!("{} (id {id})", p.display()))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            }
            // NB: kernel names are cut at 15 characters.
            let short: String = name.chars().take(15).collect();
            let mut found = Vec::new();
            for id in sys::ids(id_kind)? {
                let Ok(fd) = sys::fd_by_id(id_kind, id) else {
                    continue;
                };
                let kname = match kind {
                    Kind::Map => sys::map_info(fd.as_fd()).map(|i| sys::c_name(&i.name)),
                    _ => sys::prog_info(fd.as_fd()).map(|(i, _)| sys::c_name(&i.name)),
                };
                if kname.is_ok_and(|n| n == short) {
                    found.push((id, fd));
                }
            }
            match found.len() {
                1 => {
                    let (id, fd) = found.remove(0);
                    Ok((fd, format!("{what} {name} (id {id})")))
                }
                0 => bail!(
                    "no {what} named {name}: none is pinned under {} and no loaded {what} has that name \
                     (see `xdpctl {} show`)",
                    root.display(),
                    if kind == Kind::Map { "map" } else { "prog" }
                ),
                n => bail!(
                    "{n} loaded {what}s are named {name} (ids {}); name one by id or pinned path",
                    found
                        .iter()
                        .map(|(id, _)| id.to_string())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            }
        }
    }
}
