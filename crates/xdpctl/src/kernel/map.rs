//! Maps as typed handles: an open map that knows its `bpf_map_info` and
//! checks every buffer against it before a syscall (aya's `check_kv_size`).
//! A caller that passes a key or value of the wrong length gets an error
//! naming the map and both sizes, never a kernel write past a buffer.

use std::{
    io,
    os::fd::{AsFd, BorrowedFd, OwnedFd},
    path::Path,
};

use aya_obj::generated::{bpf_map_info, bpf_map_type};

use crate::{
    kernel::{mapview::ArrayView, sys},
    model::policy::Entries,
};

/// `BPF_MAP_TYPE_LPM_TRIE`: keys are prefixes, lookups the longest match.
pub const LPM_TRIE: u32 = bpf_map_type::BPF_MAP_TYPE_LPM_TRIE as u32;

/// Map types whose values have one slot per possible CPU.
pub fn is_per_cpu(map_type: u32) -> bool {
    use bpf_map_type::*;
    [
        BPF_MAP_TYPE_PERCPU_HASH,
        BPF_MAP_TYPE_PERCPU_ARRAY,
        BPF_MAP_TYPE_LRU_PERCPU_HASH,
        bpf_map_type::BPF_MAP_TYPE_PERCPU_CGROUP_STORAGE,
    ]
    .iter()
    .any(|t| *t as u32 == map_type)
}

/// An open map.
#[derive(Debug)]
pub struct MapHandle {
    fd: OwnedFd,
    info: bpf_map_info,
    /// Possible CPUs for per-CPU maps, else 1.
    cpus: usize,
    /// Bytes per CPU slot (the value size rounded up to 8 for per-CPU maps).
    stride: usize,
}

fn size_error(map: &MapHandle, what: &str, have: usize, want: usize) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidInput,
        format!(
            "map {} (id {}): {what} is {have} bytes, the map's is {want}",
            map.name(),
            map.info.id
        ),
    )
}

impl MapHandle {
    /// A handle for the map behind `fd` (fails if it is not a map).
    pub fn from_fd(fd: OwnedFd) -> io::Result<Self> {
        let info = sys::map_info(fd.as_fd())?;
        let value_size = info.value_size as usize;
        let (cpus, stride) = if is_per_cpu(info.type_) {
            (sys::possible_cpus()?, value_size.div_ceil(8) * 8)
        } else {
            (1, value_size)
        };
        Ok(MapHandle {
            fd,
            info,
            cpus,
            stride,
        })
    }

    /// The map pinned at `path`.
    pub fn open_pinned(path: &Path) -> io::Result<Self> {
        let fd = pinfs::obj_get(path).map_err(io::Error::other)?;
        Self::from_fd(fd)
    }

    /// The kernel's info on the map.
    pub fn info(&self) -> &bpf_map_info {
        &self.info
    }

    /// The map's fd, for aya and for pinning.
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    /// The kernel's name for the map.
    pub fn name(&self) -> String {
        sys::c_name(&self.info.name)
    }

    /// Bytes of a key.
    pub fn key_size(&self) -> usize {
        self.info.key_size as usize
    }

    /// Possible CPUs, for per-CPU maps (1 otherwise).
    pub fn cpus(&self) -> usize {
        self.cpus
    }

    /// Bytes between two CPUs' slots of a per-CPU value.
    pub fn stride(&self) -> usize {
        self.stride
    }

    /// Whether values have a slot per CPU.
    pub fn per_cpu(&self) -> bool {
        is_per_cpu(self.info.type_)
    }

    /// Bytes of a whole value as the syscalls move it (all CPUs).
    pub fn value_len(&self) -> usize {
        self.stride * self.cpus
    }

    fn check_key(&self, key: &[u8]) -> io::Result<()> {
        if key.len() != self.key_size() {
            return Err(size_error(self, "the key", key.len(), self.key_size()));
        }
        Ok(())
    }

    fn check_value(&self, value: &[u8]) -> io::Result<()> {
        if value.len() != self.value_len() {
            return Err(size_error(self, "the value", value.len(), self.value_len()));
        }
        Ok(())
    }

    /// The next element of a queue or stack into `value`, without taking
    /// it; `Ok(false)` when empty.
    pub fn peek(&self, value: &mut [u8]) -> io::Result<bool> {
        self.check_value(value)?;
        sys::map_peek(self.fd(), value)
    }

    /// A ring buffer's consumer and producer positions (bytes), read
    /// without consuming anything.
    pub fn ring_positions(&self) -> io::Result<(u64, u64)> {
        sys::ringbuf_positions(self.fd())
    }

    /// Looks `key` up into `value`; `Ok(false)` when absent.
    pub fn lookup(&self, key: &[u8], value: &mut [u8]) -> io::Result<bool> {
        self.check_key(key)?;
        self.check_value(value)?;
        sys::map_lookup(self.fd(), key, value)
    }

    /// Writes one element.
    pub fn update(&self, key: &[u8], value: &[u8], flags: u64) -> io::Result<()> {
        self.check_key(key)?;
        self.check_value(value)?;
        sys::map_update(self.fd(), key, value, flags)
    }

    /// Deletes one element; `Ok(false)` when it was absent.
    pub fn delete(&self, key: &[u8]) -> io::Result<bool> {
        self.check_key(key)?;
        sys::map_delete(self.fd(), key)
    }

    /// The key after `key` (the first key with `None`); `Ok(false)` at the end.
    pub fn next_key(&self, key: Option<&[u8]>, next: &mut [u8]) -> io::Result<bool> {
        if let Some(key) = key {
            self.check_key(key)?;
        }
        self.check_key(next)?;
        sys::map_next_key(self.fd(), key, next)
    }

    /// One `BPF_MAP_LOOKUP_BATCH` call of up to `count` elements; see
    /// [`sys`]. The cursors must hold a key and at least 8 bytes.
    pub fn lookup_batch(
        &self,
        token: Option<&[u8]>,
        next: &mut [u8],
        keys: &mut [u8],
        values: &mut [u8],
        count: u32,
    ) -> io::Result<(u32, bool)> {
        let cursor = self.key_size().max(8);
        if token.is_some_and(|t| t.len() < cursor) || next.len() < cursor {
            return Err(size_error(self, "a batch cursor", next.len(), cursor));
        }
        let n = count as usize;
        if keys.len() != n * self.key_size() {
            return Err(size_error(
                self,
                "the keys",
                keys.len(),
                n * self.key_size(),
            ));
        }
        if values.len() != n * self.value_len() {
            return Err(size_error(
                self,
                "the values",
                values.len(),
                n * self.value_len(),
            ));
        }
        sys::map_lookup_batch(self.fd(), token, next, keys, values, count)
    }

    /// `BPF_MAP_UPDATE_BATCH` of `count` packed keys and values; returns how
    /// many were written before an error, with the error.
    pub fn update_batch(
        &self,
        keys: &[u8],
        values: &[u8],
        count: u32,
        flags: u64,
    ) -> (u32, io::Result<()>) {
        let n = count as usize;
        if keys.len() != n * self.key_size() {
            return (
                0,
                Err(size_error(
                    self,
                    "the keys",
                    keys.len(),
                    n * self.key_size(),
                )),
            );
        }
        if values.len() != n * self.value_len() {
            return (
                0,
                Err(size_error(
                    self,
                    "the values",
                    values.len(),
                    n * self.value_len(),
                )),
            );
        }
        sys::map_update_batch(self.fd(), keys, values, count, flags)
    }
}

/// The kernel-internal "not supported" errno that batch operations on map
/// types without batch support return to userspace.
const ENOTSUPP: i32 = 524;

/// Entries read in one go: packed keys and whole (all-CPU) values.
#[derive(Debug)]
pub struct Batch {
    keys: Vec<u8>,
    values: Vec<u8>,
    key_size: usize,
    value_len: usize,
    /// Entries it has room for.
    room: usize,
    len: usize,
}

impl Batch {
    fn new(key_size: usize, value_len: usize, room: usize) -> Self {
        Batch {
            keys: vec![0u8; key_size * room],
            values: vec![0u8; value_len * room],
            key_size,
            value_len,
            room,
            len: 0,
        }
    }

    fn grow(&mut self, room: usize) {
        self.keys.resize(self.key_size * room, 0);
        self.values.resize(self.value_len * room, 0);
        self.room = room;
    }

    /// How many entries.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Entry `i`: its key and whole value.
    pub fn get(&self, i: usize) -> (&[u8], &[u8]) {
        (
            &self.keys[i * self.key_size..(i + 1) * self.key_size],
            &self.values[i * self.value_len..(i + 1) * self.value_len],
        )
    }

    /// Every entry, in the kernel's order.
    pub fn iter(&self) -> impl Iterator<Item = (&[u8], &[u8])> {
        (0..self.len).map(|i| self.get(i))
    }
}

/// Buffers in flight between the reader thread and the caller: one being
/// filled, one waiting, one being processed.
const BUFFERS: usize = 3;

/// The most bytes of entries one batch holds: big enough that the syscalls
/// cost nothing next to the copying, small enough that a map of huge values
/// keeps memory bounded.
const BATCH_BYTES: usize = 2 << 20;

impl MapHandle {
    /// Entries per batch: [`BATCH_BYTES`] worth, from 64 up to 16384.
    fn batch_room(&self) -> usize {
        (BATCH_BYTES / (self.key_size() + self.value_len()).max(1)).clamp(64, 16_384)
    }

    /// Calls `f` for every entry, in batches where the map type allows
    /// (`BPF_MAP_LOOKUP_BATCH`), one by one where it does not (an LPM trie).
    /// `f` returns false to stop.
    pub fn for_each(
        &self,
        mut f: impl FnMut(&[u8], &[u8]) -> anyhow::Result<bool>,
    ) -> anyhow::Result<()> {
        self.for_each_batch(|batch| {
            for (k, v) in batch.iter() {
                if !f(k, v)? {
                    return Ok(false);
                }
            }
            Ok(true)
        })
    }

    /// Calls `f` for every batch of entries, in the kernel's order; `f`
    /// returns false to stop.
    ///
    /// NB: the reading happens on a second thread, into a few reused
    /// buffers handed over a bounded channel, so that `f` works on one
    /// batch while the kernel copies the next: a million-entry dump costs
    /// about what reading the map alone does, and memory stays at
    /// [`BUFFERS`] batches. The reader may read a batch or two past where
    /// `f` stops.
    pub fn for_each_batch(
        &self,
        mut f: impl FnMut(&Batch) -> anyhow::Result<bool>,
    ) -> anyhow::Result<()> {
        if let Some(view) = ArrayView::of(self)? {
            return self.for_each_mapped(&view, f);
        }
        let (full_tx, full_rx) = std::sync::mpsc::sync_channel::<io::Result<Batch>>(BUFFERS - 1);
        let (free_tx, free_rx) = std::sync::mpsc::sync_channel::<Batch>(BUFFERS);
        std::thread::scope(|s| {
            s.spawn(move || self.read_batches(&full_tx, &free_rx));
            let result = (|| {
                for batch in &full_rx {
                    let batch = batch?;
                    if !f(&batch)? {
                        return Ok(());
                    }
                    // The reader may have finished: a buffer it no longer
                    // wants is simply dropped.
                    let _ = free_tx.try_send(batch);
                }
                Ok(())
            })();
            // Stops a reader still at work: its next send or wait fails.
            drop(full_rx);
            drop(free_tx);
            result
        })
    }

    /// [`Self::for_each_batch`] of an mmapable array: batches copied from
    /// the mapping, no system call, no reader thread.
    fn for_each_mapped(
        &self,
        view: &ArrayView,
        mut f: impl FnMut(&Batch) -> anyhow::Result<bool>,
    ) -> anyhow::Result<()> {
        let (key_size, value_len) = (self.key_size(), self.value_len());
        let room = self.batch_room();
        let mut batch = Batch::new(key_size, value_len, room);
        for start in (0..view.entries()).step_by(room) {
            batch.len = 0;
            for i in start..(start + room).min(view.entries()) {
                let n = batch.len;
                // An array's key is its u32 index (ArrayView::of checks).
                batch.keys[n * key_size..(n + 1) * key_size]
                    .copy_from_slice(&(i as u32).to_ne_bytes());
                batch.values[n * value_len..(n + 1) * value_len].copy_from_slice(view.value(i));
                batch.len += 1;
            }
            if !f(&batch)? {
                break;
            }
        }
        Ok(())
    }

    /// The reader thread of [`Self::for_each_batch`]: sends batches until
    /// the map is read, an error (sent too), or the caller hangs up.
    fn read_batches(
        &self,
        full: &std::sync::mpsc::SyncSender<io::Result<Batch>>,
        free: &std::sync::mpsc::Receiver<Batch>,
    ) {
        let (key_size, value_len) = (self.key_size(), self.value_len());
        let mut room = self.batch_room();
        let mut made = 0;
        let mut take = |room: usize| -> Option<Batch> {
            let mut b = match free.try_recv() {
                Ok(b) => b,
                Err(_) if made < BUFFERS => {
                    made += 1;
                    Batch::new(key_size, value_len, room)
                }
                Err(_) => free.recv().ok()?,
            };
            if b.room < room {
                b.grow(room);
            }
            b.len = 0;
            Some(b)
        };
        let cursor_len = key_size.max(8);
        let mut token = vec![0u8; cursor_len];
        let mut next = vec![0u8; cursor_len];
        let mut started = false;
        let Some(mut batch) = take(room) else { return };
        loop {
            let result = self.lookup_batch(
                started.then_some(token.as_slice()),
                &mut next,
                &mut batch.keys[..key_size * room],
                &mut batch.values[..value_len * room],
                room as u32,
            );
            match result {
                Ok((n, done)) => {
                    batch.len = n as usize;
                    if full.send(Ok(batch)).is_err() || done {
                        return;
                    }
                    std::mem::swap(&mut token, &mut next);
                    started = true;
                    match take(room) {
                        Some(b) => batch = b,
                        None => return,
                    }
                }
                // A hash bucket larger than the batch: retry with room.
                Err(e) if e.raw_os_error() == Some(libc::ENOSPC) && room < 1 << 20 => {
                    room *= 2;
                    batch.grow(room);
                }
                // No batch support for this map type (LPM trie, ...).
                Err(e)
                    if !started
                        && matches!(
                            e.raw_os_error(),
                            Some(libc::EINVAL | libc::EOPNOTSUPP | ENOTSUPP)
                        ) =>
                {
                    return self.read_one_by_one(batch, full, take);
                }
                Err(e) => {
                    let _ = full.send(Err(e));
                    return;
                }
            }
        }
    }

    /// The reader for map types without batch lookups: `next_key` and
    /// `lookup`, gathered into batches all the same.
    fn read_one_by_one(
        &self,
        mut batch: Batch,
        full: &std::sync::mpsc::SyncSender<io::Result<Batch>>,
        mut take: impl FnMut(usize) -> Option<Batch>,
    ) {
        let (key_size, value_len) = (self.key_size(), self.value_len());
        let room = batch.room;
        let mut key = vec![0u8; key_size];
        let mut next = key.clone();
        let mut first = true;
        loop {
            let found = match self.next_key((!first).then_some(key.as_slice()), &mut next) {
                Ok(found) => found,
                Err(e) => {
                    let _ = full.send(Err(e));
                    return;
                }
            };
            first = false;
            if found {
                std::mem::swap(&mut key, &mut next);
                let i = batch.len;
                let value = &mut batch.values[i * value_len..(i + 1) * value_len];
                // An entry deleted between the two calls is skipped.
                match self.lookup(&key, value) {
                    Ok(true) => {
                        batch.keys[i * key_size..(i + 1) * key_size].copy_from_slice(&key);
                        batch.len += 1;
                    }
                    Ok(false) => {}
                    Err(e) => {
                        let _ = full.send(Err(e));
                        return;
                    }
                }
            }
            if !found || batch.len == room {
                if full.send(Ok(batch)).is_err() || !found {
                    return;
                }
                match take(room) {
                    Some(b) => batch = b,
                    None => return,
                }
            }
        }
    }

    /// Every entry, packed and sorted by key.
    pub fn entries(&self) -> anyhow::Result<Entries> {
        let mut out = Entries::new(self.key_size(), self.value_len());
        self.for_each(|k, v| {
            out.push(k, v);
            Ok(true)
        })?;
        Ok(out.sorted())
    }

    /// Writes packed entries: in batches where the map type allows, one by
    /// one where it does not.
    pub fn put_all(&self, entries: &Entries) -> io::Result<()> {
        self.put_all_with(entries, sys::update_flags::ANY)
            .map_err(|(e, _)| e)
    }

    /// Writes packed entries with `flags` (`BPF_ANY`, `BPF_NOEXIST`,
    /// `BPF_EXIST`): in batches of 8,192 where the map type allows, one by
    /// one where it does not (the kernel refuses the first batch whole).
    /// On failure: the error, and how many entries were written before it
    /// (the entry at that index is the one refused).
    pub fn put_all_with(&self, entries: &Entries, flags: u64) -> Result<(), (io::Error, usize)> {
        const CHUNK: usize = 8192;
        let n = entries.len();
        let (ks, vs) = (entries.key_size, entries.value_size);
        let mut i = 0;
        let mut batch = true;
        while i < n {
            let c = CHUNK.min(n - i);
            if batch {
                let keys = &entries.keys[i * ks..(i + c) * ks];
                let values = &entries.values[i * vs..(i + c) * vs];
                match self.update_batch(keys, values, c as u32, flags) {
                    (_, Ok(())) => {
                        i += c;
                        continue;
                    }
                    (0, Err(e))
                        if i == 0
                            && matches!(
                                e.raw_os_error(),
                                Some(libc::EINVAL | libc::EOPNOTSUPP | ENOTSUPP)
                            ) =>
                    {
                        batch = false;
                    }
                    (done, Err(e)) => return Err((e, i + done as usize)),
                }
            }
            for j in i..i + c {
                self.update(entries.key(j), entries.value(j), flags)
                    .map_err(|e| (e, j))?;
            }
            i += c;
        }
        Ok(())
    }

    /// Removes packed keys: in batches where the map type allows, one by
    /// one where it does not; a key that is not there is no error.
    pub fn delete_all(&self, keys: &Entries) -> io::Result<()> {
        for j in 0..keys.len() {
            self.delete(keys.key(j))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn per_cpu_types_follow_the_uapi() {
        assert!(is_per_cpu(5) && is_per_cpu(6) && is_per_cpu(10) && is_per_cpu(21));
        assert!(!is_per_cpu(1) && !is_per_cpu(2) && !is_per_cpu(11));
    }
}
