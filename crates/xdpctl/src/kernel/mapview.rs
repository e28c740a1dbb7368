//! Reading an array map through `mmap(2)` instead of `bpf(2)`: the maps the
//! firewall declares `BPF_F_MMAPABLE` (the indexes that `doctor --check`
//! and the agent compare whole) read in microseconds, where
//! `BPF_MAP_LOOKUP_BATCH` copies them to userspace element by element
//! (about 260 ns each here: 17 ms for `cidr4_l1`'s 65,536).
//!
//! NB: the view is a snapshot of nothing: the datapath may write while it
//! is read, as with a batch lookup (each 8-byte-aligned value is read whole).

use std::{ffi::c_void, io, num::NonZeroUsize, os::fd::AsFd, ptr::NonNull};

use aya_obj::generated::{BPF_F_MMAPABLE, bpf_map_type};
use nix::sys::mman::{MapFlags, ProtFlags, mmap, munmap};

use super::{map::MapHandle, netdev::page_size};

/// The values of an mmapable array map, mapped read-only.
pub struct ArrayView {
    ptr: NonNull<c_void>,
    len: usize,
    /// Bytes from one value to the next (the value size rounded up to 8).
    elem: usize,
    value_size: usize,
    entries: usize,
}

impl ArrayView {
    /// The view of `map`'s values, if it is an array map (keys: `u32`
    /// indices) created with `BPF_F_MMAPABLE` (else `None`: read it with
    /// `bpf(2)`).
    pub fn of(map: &MapHandle) -> io::Result<Option<ArrayView>> {
        let info = map.info();
        if info.type_ != bpf_map_type::BPF_MAP_TYPE_ARRAY as u32
            || info.map_flags & BPF_F_MMAPABLE == 0
            || info.key_size != 4
            || info.max_entries == 0
        {
            return Ok(None);
        }
        let value_size = info.value_size as usize;
        let elem = value_size.div_ceil(8) * 8;
        let entries = info.max_entries as usize;
        let page = page_size() as usize;
        let len = (elem * entries).div_ceil(page) * page;
        let Some(size) = NonZeroUsize::new(len) else {
            return Ok(None);
        };
        // SAFETY: a fresh shared read-only mapping of the map's value area
        // (offset 0, whole pages, as the kernel sizes it); nothing else in
        // this process aliases it, and it is unmapped in Drop.
        let ptr = unsafe {
            mmap(
                None,
                size,
                ProtFlags::PROT_READ,
                MapFlags::MAP_SHARED,
                map.fd().as_fd(),
                0,
            )
        }
        .map_err(|e| {
            io::Error::new(
                io::Error::from(e).kind(),
                format!("map {} (id {}): mmap: {e}", map.name(), info.id),
            )
        })?;
        Ok(Some(ArrayView {
            ptr,
            len,
            elem,
            value_size,
            entries,
        }))
    }

    /// How many values (the map's max_entries).
    pub fn entries(&self) -> usize {
        self.entries
    }

    /// The value at index `i` (`i < entries()`).
    pub fn value(&self, i: usize) -> &[u8] {
        assert!(i < self.entries, "index {i} past {} values", self.entries);
        // SAFETY: the mapping is `len` readable bytes, and i * elem +
        // value_size <= entries * elem <= len; it lives as long as self.
        unsafe {
            std::slice::from_raw_parts(
                (self.ptr.as_ptr() as *const u8).add(i * self.elem),
                self.value_size,
            )
        }
    }
}

impl Drop for ArrayView {
    fn drop(&mut self) {
        // SAFETY: the mapping made in `of`, unmapped once.
        let _ = unsafe { munmap(self.ptr, self.len) };
    }
}
