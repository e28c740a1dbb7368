//! Looking objects up by id or pinned path, for the show commands and for
//! describing what a load pinned.

use std::{
    os::fd::{AsFd, OwnedFd},
    path::Path,
};

use anyhow::{Context as _, Result, bail};
use pinfs::Kind;

use crate::sys::{self, IdKind};

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
    let fd = pinfs::obj_get(&pin.path)?;
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
