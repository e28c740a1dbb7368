//! Small documents kept on bpffs: a load's manifest, journal records,
//! pending confirmations.
//!
//! bpffs holds no regular files, so each document is the one value of a
//! pinned `BPF_MAP_TYPE_ARRAY` (one 64 KiB element: a little-endian length,
//! then JSON). A new document is written completely into a fresh map
//! before that map is pinned, so it appears whole or not at all; a document
//! is replaced by pinning the new map beside it and renaming it over the
//! old one. Reading checks the map's type, sizes and name first: a foreign
//! or damaged pin is refused, never trusted.

use std::{
    io,
    path::{Path, PathBuf},
};

use anyhow::{Context as _, Result, bail};
use aya_obj::generated::bpf_map_type;

use crate::kernel::{map::MapHandle, sys};

/// Bytes of the one value of a document map.
pub const VALUE_SIZE: u32 = 64 * 1024;

/// The kinds of document, by the kernel name of their maps.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// A load directory's manifest.
    Manifest,
    /// A journal record.
    Journal,
    /// A change waiting for confirmation.
    Pending,
    /// What an apply writes into the rule maps (many chunks).
    Desired,
}

impl Kind {
    fn map_name(self) -> &'static str {
        match self {
            Kind::Manifest => "xdpctl_manifest",
            Kind::Journal => "xdpctl_journal",
            Kind::Pending => "xdpctl_pending",
            Kind::Desired => "xdpctl_desired",
        }
    }
}

fn create(kind: Kind, doc: &[u8]) -> Result<MapHandle> {
    if doc.len() + 4 > VALUE_SIZE as usize {
        bail!(
            "{} too large to keep ({} bytes, at most {})",
            kind.map_name(),
            doc.len(),
            VALUE_SIZE - 4
        );
    }
    let fd = sys::map_create(
        bpf_map_type::BPF_MAP_TYPE_ARRAY,
        kind.map_name(),
        4,
        VALUE_SIZE,
        1,
    )
    .with_context(|| format!("creating a map for {}", kind.map_name()))?;
    let map = MapHandle::from_fd(fd)?;
    let mut value = vec![0u8; VALUE_SIZE as usize];
    value[..4].copy_from_slice(&(doc.len() as u32).to_le_bytes());
    value[4..4 + doc.len()].copy_from_slice(doc);
    // NB: not a state change yet: nothing outside this process sees the map.
    map.update(&0u32.to_ne_bytes(), &value, sys::update_flags::ANY)?;
    Ok(map)
}

/// Pins a new document at `path`, which must not exist.
pub fn write_new(path: &Path, kind: Kind, doc: &[u8]) -> Result<()> {
    let map = create(kind, doc)?;
    pinfs::obj_pin(map.fd(), path)?;
    Ok(())
}

/// Replaces the document at `path` (or creates it) in one rename.
pub fn replace(path: &Path, kind: Kind, doc: &[u8]) -> Result<()> {
    let map = create(kind, doc)?;
    let mut next = path.as_os_str().to_owned();
    next.push("_next");
    let next = PathBuf::from(next);
    let _ = pinfs::remove_all(&next);
    pinfs::obj_pin(map.fd(), &next)?;
    pinfs::rename_replace(&next, path)?;
    Ok(())
}

/// Reads the document at `path`; `Ok(None)` if nothing is pinned there.
/// Anything else pinned there is an error naming what is wrong.
pub fn read(path: &Path, kind: Kind) -> Result<Option<Vec<u8>>> {
    let fd = match pinfs::obj_get(path) {
        Ok(fd) => fd,
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    let map = MapHandle::from_fd(fd).map_err(|e| {
        if e.kind() == io::ErrorKind::InvalidInput || e.raw_os_error() == Some(libc::EINVAL) {
            anyhow::anyhow!("{} is not a map", path.display())
        } else {
            anyhow::Error::new(e).context(format!("reading {}", path.display()))
        }
    })?;
    let info = map.info();
    let name = map.name();
    if info.type_ != bpf_map_type::BPF_MAP_TYPE_ARRAY as u32
        || info.key_size != 4
        || info.value_size != VALUE_SIZE
        || info.max_entries != 1
        || name != kind.map_name()
    {
        bail!(
            "{} is not an xdpctl {} (a map named {name:?} of type {}, key {} bytes, value {} bytes)",
            path.display(),
            kind.map_name(),
            sys::map_type_name(info.type_),
            info.key_size,
            info.value_size
        );
    }
    let mut value = vec![0u8; VALUE_SIZE as usize];
    map.lookup(&0u32.to_ne_bytes(), &mut value)?;
    let len = u32::from_le_bytes(value[..4].try_into().expect("4 bytes")) as usize;
    if len > VALUE_SIZE as usize - 4 {
        bail!("{} is damaged (length {len})", path.display());
    }
    value.truncate(4 + len);
    value.drain(..4);
    Ok(Some(value))
}

/// Reads and parses a JSON document.
pub fn read_json<T: serde::de::DeserializeOwned>(path: &Path, kind: Kind) -> Result<Option<T>> {
    let Some(bytes) = read(path, kind)? else {
        return Ok(None);
    };
    serde_json::from_slice(&bytes)
        .map(Some)
        .with_context(|| format!("{} is damaged or from another version", path.display()))
}

/// Pins a document of any size at `path` (which must not exist): an array
/// of 64 KiB chunks, the first starting with the length. Written whole
/// before it is pinned, like [`write_new`].
pub fn write_big(path: &Path, kind: Kind, doc: &[u8]) -> Result<()> {
    let chunk = VALUE_SIZE as usize;
    let total = doc.len() + 8;
    let chunks = total.div_ceil(chunk).max(1);
    let fd = sys::map_create(
        bpf_map_type::BPF_MAP_TYPE_ARRAY,
        kind.map_name(),
        4,
        VALUE_SIZE,
        chunks as u32,
    )
    .with_context(|| format!("creating a map of {chunks} chunks for {}", kind.map_name()))?;
    let map = MapHandle::from_fd(fd)?;
    let mut all = Vec::with_capacity(chunks * chunk);
    all.extend((doc.len() as u64).to_le_bytes());
    all.extend(doc);
    all.resize(chunks * chunk, 0);
    for (i, part) in all.chunks(chunk).enumerate() {
        map.update(&(i as u32).to_ne_bytes(), part, sys::update_flags::ANY)?;
    }
    pinfs::obj_pin(map.fd(), path)?;
    Ok(())
}

/// Reads a document written by [`write_big`]; `Ok(None)` if nothing is
/// pinned at `path`.
pub fn read_big(path: &Path, kind: Kind) -> Result<Option<Vec<u8>>> {
    let fd = match pinfs::obj_get(path) {
        Ok(fd) => fd,
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    let map = MapHandle::from_fd(fd)?;
    let info = map.info();
    if info.type_ != bpf_map_type::BPF_MAP_TYPE_ARRAY as u32
        || info.key_size != 4
        || info.value_size != VALUE_SIZE
        || map.name() != kind.map_name()
    {
        bail!("{} is not an xdpctl {}", path.display(), kind.map_name());
    }
    let mut all = Vec::with_capacity(info.max_entries as usize * VALUE_SIZE as usize);
    let mut part = vec![0u8; VALUE_SIZE as usize];
    for i in 0..info.max_entries {
        map.lookup(&i.to_ne_bytes(), &mut part)?;
        all.extend_from_slice(&part);
    }
    let len = u64::from_le_bytes(all[..8].try_into().expect("8 bytes")) as usize;
    if len > all.len() - 8 {
        bail!("{} is damaged (length {len})", path.display());
    }
    all.truncate(8 + len);
    all.drain(..8);
    Ok(Some(all))
}
