//! Enumerating and removing pins.

use std::{
    fs, io,
    os::fd::AsFd,
    path::{Path, PathBuf},
};

use std::os::unix::fs::MetadataExt;

use crate::{Error, Kind, Result, failpoint, obj_get, obj_info};

/// The name of the directory a tool keeps its own state in on each bpffs
/// (its journal, staging, pins kept for a rollback), which listings of
/// pins leave out. The tool says it once ([`keep_private`]); this crate
/// knows no tool.
static PRIVATE: std::sync::OnceLock<std::ffi::OsString> = std::sync::OnceLock::new();

/// Names the directory listings of pins leave out, wherever it is (the
/// caller's state directory); once per process, before any listing.
pub fn keep_private(name: &str) {
    let _ = PRIVATE.set(name.into());
}

fn is_internal_name(name: &std::ffi::OsStr) -> bool {
    PRIVATE.get().is_some_and(|p| p == name)
}

/// One pinned object.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pin {
    /// Where it is pinned.
    pub path: PathBuf,
    /// Program, map, link or BTF.
    pub kind: Kind,
    /// Its kernel id.
    pub id: u32,
}

/// Opens the object pinned at `path` and says what it is.
pub fn pin_info(path: &Path) -> Result<Pin> {
    let fd = obj_get(path)?;
    let info =
        obj_info(fd.as_fd()).map_err(|e| Error::syscall("BPF_OBJ_GET_INFO_BY_FD", path, e))?;
    Ok(Pin {
        path: path.to_owned(),
        kind: info.kind,
        id: info.id,
    })
}

/// Every object pinned at or below `path`, sorted by path.
///
/// Staging directories of unfinished xdpctl changes are skipped, as are
/// entries that vanish while walking. An entry that cannot be opened for
/// lack of permission is an error: a partial listing would mislead.
pub fn list(path: &Path) -> Result<Vec<Pin>> {
    list_matching(path, |_| true)
}

/// Like [`list`], but opens only the pins whose file name `wanted` accepts:
/// a cheap search when the names tell (every other pin costs a readdir
/// entry, not four syscalls).
pub fn list_matching(
    path: &Path,
    wanted: impl Fn(&std::ffi::OsStr) -> bool + Copy,
) -> Result<Vec<Pin>> {
    list_pruned(path, wanted, |_, _| true)
}

/// Like [`list_matching`], and walks into a subdirectory only when
/// `descend(names, sub)` accepts it, `names` being the entries of the
/// directory that holds it: a walk that knows where its pins cannot be
/// reads no more of the bpffs than it must.
pub fn list_pruned(
    path: &Path,
    wanted: impl Fn(&std::ffi::OsStr) -> bool + Copy,
    descend: impl Fn(&[std::ffi::OsString], &std::ffi::OsStr) -> bool + Copy,
) -> Result<Vec<Pin>> {
    let mut pins = Vec::new();
    let meta = fs::symlink_metadata(path).map_err(|e| Error::syscall("stat", path, e))?;
    if meta.is_dir() {
        walk(path, &mut pins, wanted, descend)?;
    } else if meta.is_file() {
        pins.push(pin_info(path)?);
    } else {
        return Err(Error::NotAnObject {
            path: path.to_owned(),
        });
    }
    pins.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(pins)
}

fn walk(
    dir: &Path,
    pins: &mut Vec<Pin>,
    wanted: impl Fn(&std::ffi::OsStr) -> bool + Copy,
    descend: impl Fn(&[std::ffi::OsString], &std::ffi::OsStr) -> bool + Copy,
) -> Result<()> {
    // The names first: whether to walk into a subdirectory may depend on
    // its siblings.
    let mut entries = Vec::new();
    for entry in fs::read_dir(dir).map_err(|e| Error::syscall("opendir", dir, e))? {
        let entry = entry.map_err(|e| Error::syscall("readdir", dir, e))?;
        let Ok(file_type) = entry.file_type() else {
            continue;
        };
        entries.push((entry.file_name(), file_type));
    }
    let names: Vec<std::ffi::OsString> = entries.iter().map(|(n, _)| n.clone()).collect();
    for (name, file_type) in &entries {
        if file_type.is_dir() {
            if is_internal_name(name) || !descend(&names, name) {
                continue;
            }
            match walk(&dir.join(name), pins, wanted, descend) {
                Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {}
                other => other?,
            }
        } else if file_type.is_file() && wanted(name) {
            match pin_info(&dir.join(name)) {
                Ok(pin) => pins.push(pin),
                Err(e) if matches!(e.raw_os_error(), Some(libc::EPERM | libc::EACCES)) => {
                    return Err(e);
                }
                // Vanished, or not a BPF object: not a pin to report.
                Err(_) => {}
            }
        }
    }
    Ok(())
}

/// Whether `dir` is a directory with no entries at all.
pub fn is_empty_dir(dir: &Path) -> Result<bool> {
    let mut entries = fs::read_dir(dir).map_err(|e| Error::syscall("opendir", dir, e))?;
    Ok(entries.next().is_none())
}

/// Removes `path` and everything below it; returns the pins it removed.
/// A path that does not exist is not an error: nothing is removed.
///
/// Never leaves the filesystem `path` is on: a symlink is removed, not
/// followed, and a directory that is another mount is refused.
pub fn remove_all(path: &Path) -> Result<Vec<Pin>> {
    let meta = match fs::symlink_metadata(path) {
        Ok(meta) => meta,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(Error::syscall("stat", path, e)),
    };
    let mut removed = Vec::new();
    if meta.is_dir() {
        remove_dir(path, meta.dev(), &mut removed)?;
    } else {
        let pin = pin_info(path).ok();
        failpoint::step("unlink");
        fs::remove_file(path).map_err(|e| Error::syscall("unlink", path, e))?;
        removed.extend(pin);
    }
    removed.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(removed)
}

fn remove_dir(dir: &Path, dev: u64, removed: &mut Vec<Pin>) -> Result<()> {
    let meta = fs::symlink_metadata(dir).map_err(|e| Error::syscall("stat", dir, e))?;
    if meta.dev() != dev {
        return Err(Error::OtherMount {
            path: dir.to_owned(),
        });
    }
    let entries = fs::read_dir(dir).map_err(|e| Error::syscall("opendir", dir, e))?;
    for entry in entries {
        let entry = entry.map_err(|e| Error::syscall("readdir", dir, e))?;
        let path = entry.path();
        if entry.file_type().is_ok_and(|t| t.is_dir()) {
            remove_dir(&path, dev, removed)?;
        } else {
            let pin = pin_info(&path).ok();
            failpoint::step("unlink");
            match fs::remove_file(&path) {
                Ok(()) => removed.extend(pin),
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(Error::syscall("unlink", &path, e)),
            }
        }
    }
    failpoint::step("rmdir");
    match fs::remove_dir(dir) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(Error::syscall("rmdir", dir, e)),
    }
}
