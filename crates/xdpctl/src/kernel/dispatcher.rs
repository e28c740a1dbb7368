//! libxdp's multi-program dispatcher, read the way libxdp's protocol
//! (xdp-tools, `lib/libxdp/protocol.org`) documents it: an XDP program
//! named `xdp_dispatcher` whose one map, its `.rodata`, holds `struct
//! xdp_dispatcher_config` (programs enabled, per slot the chain call
//! actions and the run priority); the component programs (`freplace`
//! programs in slots `prog0`..`prog9`) and the links that attach them are
//! pinned by libxdp at `<bpffs>/xdp/dispatch-IFINDEX-DID/progN-prog` and
//! `progN-link`, DID being the dispatcher's program id.

use std::{io, os::fd::AsFd, path::Path};

use pinfs::Kind;

use crate::{
    kernel::{
        map::MapHandle,
        sys::{self, IdKind},
    },
    model::xdp::{DISPATCHER_NAME, Dispatcher, DispatcherConfig, DispatcherError},
};

/// What reading a dispatcher can fail on.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A syscall on the dispatcher or its configuration map.
    #[error("reading libxdp dispatcher {prog_id}")]
    Syscall {
        /// The dispatcher's program id.
        prog_id: u32,
        /// What the kernel said.
        #[source]
        source: io::Error,
    },
    /// Its configuration is not one this xdpctl can read.
    #[error("reading libxdp dispatcher {prog_id}")]
    Config {
        /// The dispatcher's program id.
        prog_id: u32,
        /// What is wrong with it.
        #[source]
        source: DispatcherError,
    },
}

/// Whether a program of this (kernel) name may be libxdp's dispatcher:
/// [`read`] tells.
pub fn is_named(name: &str) -> bool {
    name == DISPATCHER_NAME
}

/// The dispatcher `prog_id` attached to device `ifindex`, with its programs;
/// `None` when the program is not a libxdp dispatcher. `bpffs` is where
/// libxdp pins (`LIBXDP_BPFFS`, by default /sys/fs/bpf): without its pins a
/// slot's priority and actions are known but not its program.
pub fn read(prog_id: u32, ifindex: u32, bpffs: &Path) -> Result<Option<Dispatcher>, Error> {
    let syscall = |source| Error::Syscall { prog_id, source };
    let prog = sys::fd_by_id(IdKind::Prog, prog_id).map_err(syscall)?;
    let (info, map_ids) = sys::prog_info(prog.as_fd()).map_err(syscall)?;
    // libxdp's own test: the name, and exactly one map.
    let [map_id] = map_ids.as_slice() else {
        return Ok(None);
    };
    if sys::c_name(&info.name) != DISPATCHER_NAME {
        return Ok(None);
    }
    let map = sys::fd_by_id(IdKind::Map, *map_id)
        .and_then(MapHandle::from_fd)
        .map_err(syscall)?;
    if map.key_size() != 4 || map.info().max_entries != 1 || map.per_cpu() {
        return Ok(None);
    }
    let mut value = vec![0u8; map.value_len()];
    if !map
        .lookup(&0u32.to_ne_bytes(), &mut value)
        .map_err(syscall)?
    {
        return Ok(None);
    }
    let config =
        DispatcherConfig::parse(&value).map_err(|source| Error::Config { prog_id, source })?;
    let dir = bpffs
        .join("xdp")
        .join(format!("dispatch-{ifindex}-{prog_id}"));
    let pinned = dir.is_dir().then(|| dir.clone());
    let mut programs = config.slots();
    for p in &mut programs {
        // A pin that is missing or not what libxdp puts there leaves the
        // slot's program unknown.
        let pin = |suffix: &str, kind: Kind| {
            pinfs::pin_info(&dir.join(format!("prog{}-{suffix}", p.slot)))
                .ok()
                .filter(|pin| pin.kind == kind)
                .map(|pin| pin.id)
        };
        p.prog_id = pin("prog", Kind::Prog);
        p.link_id = pin("link", Kind::Link);
        p.prog_name = p.prog_id.and_then(|id| {
            let fd = sys::fd_by_id(IdKind::Prog, id).ok()?;
            sys::prog_info(fd.as_fd())
                .ok()
                .map(|(info, _)| sys::c_name(&info.name))
        });
    }
    Ok(Some(Dispatcher {
        version: config.version,
        pinned,
        programs,
    }))
}
