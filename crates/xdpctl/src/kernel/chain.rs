//! A firewall's chain: the one-slot program array (`chain`) whose program
//! the firewall tail-calls with the packets it passes. Reading the slot
//! gives the program's id; writing it takes the program's fd, and swaps
//! atomically for the packets in flight (an XDP program runs the old or
//! the new one, never neither).

use std::{
    io,
    os::fd::{AsRawFd, BorrowedFd},
    path::Path,
};

use crate::kernel::{
    map::MapHandle,
    sys::{self, IdKind},
};

/// `BPF_MAP_TYPE_PROG_ARRAY`.
pub const PROG_ARRAY: u32 = aya_obj::generated::bpf_map_type::BPF_MAP_TYPE_PROG_ARRAY as u32;

const SLOT: [u8; 4] = 0u32.to_ne_bytes();

/// The chain map pinned at `path`, if a one-slot program array is pinned
/// there (`None`: nothing, or another kind of map).
pub fn open(path: &Path) -> io::Result<Option<MapHandle>> {
    let map = match MapHandle::open_pinned(path) {
        Ok(map) => map,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    let info = map.info();
    Ok((info.type_ == PROG_ARRAY && info.max_entries >= 1 && info.key_size == 4).then_some(map))
}

/// The id of the program in the slot, if any.
pub fn next(map: &MapHandle) -> io::Result<Option<u32>> {
    let mut id = [0u8; 4];
    Ok(map
        .lookup(&SLOT, &mut id)?
        .then(|| u32::from_ne_bytes(id))
        .filter(|&id| id != 0))
}

/// Puts the program `prog` in the slot (or empties it).
pub fn set(map: &MapHandle, prog: Option<BorrowedFd<'_>>) -> io::Result<()> {
    pinfs::failpoint::step("chain");
    match prog {
        Some(fd) => map.update(&SLOT, &fd.as_raw_fd().to_ne_bytes(), 0),
        None => map.delete(&SLOT).map(|_| ()),
    }
}

/// The chain map program `prog` uses, if it has one (a one-slot program
/// array named `chain` among its maps): its id and a handle.
pub fn of_prog(prog: u32) -> io::Result<Option<(u32, MapHandle)>> {
    use std::os::fd::AsFd as _;
    let fd = sys::fd_by_id(IdKind::Prog, prog)?;
    let (_, map_ids) = sys::prog_info(fd.as_fd())?;
    for id in map_ids {
        // NB: the info first; a handle (which reads more for a per-CPU
        // map) only for the chain.
        let Ok(fd) = sys::fd_by_id(IdKind::Map, id) else {
            continue;
        };
        let Ok(info) = sys::map_info(fd.as_fd()) else {
            continue;
        };
        if info.type_ == PROG_ARRAY
            && info.key_size == 4
            && info.max_entries >= 1
            && sys::c_name(&info.name) == NAME
        {
            return Ok(Some((id, MapHandle::from_fd(fd)?)));
        }
    }
    Ok(None)
}

/// The name of a chain map.
pub const NAME: &str = xdp_progs::xdpfw::maps::CHAIN;

/// Why the kernel refuses a program in a chain, for errors.
pub const REFUSAL: &str = "a tail call goes only to an XDP program like the one calling it: \
                           JIT-compiled, not offloaded, and without frags (xdp.frags) when it \
                           has none";
