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

use crate::kernel::map::MapHandle;

/// `BPF_MAP_TYPE_PROG_ARRAY`.
pub const PROG_ARRAY: u32 = 3;

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
