//! Pinning a set of objects so that they appear all at once or not at all.
//!
//! The objects are pinned into a staging directory next to the target, on
//! the same bpffs, which is then renamed onto the target. bpffs
//! supports `rename(2)`, so the directory appears whole in one step. If
//! anything fails before that, the staging directory and every parent that
//! this change created are removed again.

use std::{
    ffi::{CString, OsStr, OsString},
    fs::{self, DirBuilder},
    io,
    os::{
        fd::BorrowedFd,
        unix::{ffi::OsStrExt, fs::DirBuilderExt},
    },
    path::{Component, Path, PathBuf},
};

use crate::{DirLock, Error, PinPath, Result, list, obj_pin, remove_all, walk::is_empty_dir};

/// Staging directories are named `_xdpctl-stage-<pid>-<target name>`.
///
/// NB: they cannot be hidden dot-files: bpffs refuses every name with a dot
/// in it (EPERM), keeping those for its own special files.
const STAGING_PREFIX: &str = "_xdpctl-stage-";

/// Directories kept for rolling an upgrade back: `_xdpctl-rollback-<name>`.
pub const ROLLBACK_PREFIX: &str = "_xdpctl-rollback-";

/// Whether a directory name is one of ours for staging.
pub(crate) fn is_staging_name(name: &OsStr) -> bool {
    name.as_bytes().starts_with(STAGING_PREFIX.as_bytes())
}

/// Whether a directory is xdpctl's bookkeeping (staging or rollback), which
/// listings leave out.
pub(crate) fn is_internal_name(name: &OsStr) -> bool {
    is_staging_name(name) || name.as_bytes().starts_with(ROLLBACK_PREFIX.as_bytes())
}

/// The pid in a staging directory's name.
fn staging_pid(name: &OsStr) -> Option<i32> {
    let rest = name.to_str()?.strip_prefix(STAGING_PREFIX)?;
    rest.split('-').next()?.parse().ok()
}

fn mkdir_0700(path: &Path) -> io::Result<()> {
    DirBuilder::new().mode(0o700).create(path)
}

/// A change in progress: objects pinned into a hidden sibling of the target
/// directory. [`commit`](Staging::commit) makes them appear at the target;
/// dropping it without committing removes all trace of it.
#[derive(Debug)]
pub struct Staging {
    target: PathBuf,
    dir: PathBuf,
    created_parents: Vec<PathBuf>,
    committed: bool,
    replacing: bool,
    lock: Option<DirLock>,
}

impl Staging {
    /// Starts a change that will create the directory `target`.
    ///
    /// Creates the missing parents (mode 0700), locks the parent, and fails
    /// with [`Error::Occupied`] if `target` already holds pins. An existing
    /// empty directory at `target` is fine: it is replaced.
    pub fn begin(target: &PinPath) -> Result<Self> {
        Self::start(target, false)
    }

    /// Starts a change that will replace the directory `target`, which must
    /// exist: [`commit`](Staging::commit) swaps the staged directory with it
    /// in one `rename(2)` (`RENAME_EXCHANGE`) and then removes the old pins.
    pub fn begin_replacing(target: &PinPath) -> Result<Self> {
        if !target.exists() {
            return Err(Error::syscall(
                "stat",
                &target.path,
                io::Error::from_raw_os_error(libc::ENOENT),
            ));
        }
        Self::start(target, true)
    }

    fn start(target: &PinPath, replacing: bool) -> Result<Self> {
        let Some(name) = target.path.file_name().map(OsStr::to_owned) else {
            return Err(Error::NotADirectory {
                path: target.path.clone(),
            });
        };
        let mut staging = Staging {
            target: target.path.clone(),
            dir: PathBuf::new(),
            created_parents: Vec::new(),
            committed: false,
            replacing,
            lock: None,
        };
        // Create missing parents; on failure, Drop removes what was created.
        let mut parent = target.existing.clone();
        let parents_missing = target.missing.len().saturating_sub(1);
        for missing in &target.missing[..parents_missing] {
            parent.push(missing);
            match mkdir_0700(&parent) {
                Ok(()) => staging.created_parents.push(parent.clone()),
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
                Err(e) => return Err(Error::syscall("mkdir", &parent, e)),
            }
        }
        let parent = target.path.parent().unwrap_or(Path::new("/")).to_owned();
        staging.lock = Some(DirLock::exclusive(&parent)?);
        if !replacing {
            staging.check_target()?;
        }
        remove_stale(&parent);

        let mut staged_name = OsString::from(format!("{STAGING_PREFIX}{}-", std::process::id()));
        staged_name.push(&name);
        staging.dir = parent.join(staged_name);
        // A leftover of this very pid (pid reuse) is stale too.
        remove_all(&staging.dir)?;
        mkdir_0700(&staging.dir).map_err(|e| Error::syscall("mkdir", &staging.dir, e))?;
        Ok(staging)
    }

    fn check_target(&self) -> Result<()> {
        match fs::symlink_metadata(&self.target) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(Error::syscall("stat", &self.target, e)),
            Ok(meta) if !meta.is_dir() => Err(Error::NotADirectory {
                path: self.target.clone(),
            }),
            Ok(_) if is_empty_dir(&self.target)? => Ok(()),
            Ok(_) => Err(Error::Occupied {
                path: self.target.clone(),
                pins: list(&self.target)?.len(),
            }),
        }
    }

    /// Makes room for a pin at `name` (a relative path such as
    /// `maps/blocklist`) inside the change, and returns the staged path to
    /// pin at. For objects pinned by their own API (aya's `Map::pin`).
    pub fn prepare(&mut self, name: &str) -> Result<PathBuf> {
        let rel = Path::new(name);
        if name.is_empty() || !rel.components().all(|c| matches!(c, Component::Normal(_))) {
            return Err(Error::InvalidName {
                name: name.to_owned(),
            });
        }
        let staged = self.dir.join(rel);
        if let Some(parent) = staged.parent() {
            DirBuilder::new()
                .mode(0o700)
                .recursive(true)
                .create(parent)
                .map_err(|e| Error::syscall("mkdir", parent, e))?;
        }
        Ok(staged)
    }

    /// Pins `fd` at `name` (a relative path such as `maps/blocklist`) inside
    /// the change; returns where it will be once committed.
    pub fn pin(&mut self, name: &str, fd: BorrowedFd<'_>) -> Result<PathBuf> {
        let staged = self.prepare(name)?;
        obj_pin(fd, &staged)?;
        Ok(self.target.join(name))
    }

    /// The directory the change will create.
    pub fn target(&self) -> &Path {
        &self.target
    }

    /// Replaces the target like [`commit`](Staging::commit), but keeps the
    /// old pins, moved to `keep_as` (a sibling), for a rollback.
    pub fn commit_keeping_old(mut self, keep_as: &Path) -> Result<PathBuf> {
        if !self.replacing {
            return self.commit();
        }
        remove_all(keep_as)?;
        rename_exchange(&self.dir, &self.target)
            .map_err(|e| Error::syscall("rename", &self.target, e))?;
        self.committed = true;
        rename_noreplace(&self.dir, keep_as).map_err(|e| Error::syscall("rename", keep_as, e))?;
        Ok(self.target.clone())
    }

    /// Makes the staged pins appear at the target, all at once. When
    /// replacing, returns once the old pins are removed.
    pub fn commit(mut self) -> Result<PathBuf> {
        if self.replacing {
            rename_exchange(&self.dir, &self.target)
                .map_err(|e| Error::syscall("rename", &self.target, e))?;
            self.committed = true;
            // The old pins are now in the staging directory.
            remove_all(&self.dir)?;
            return Ok(self.target.clone());
        }
        // Under the lock, only a non-xdpctl writer can have filled the target
        // since `begin`; check again so the error is the helpful one.
        self.check_target()?;
        if self.target.exists() {
            fs::remove_dir(&self.target).map_err(|e| Error::syscall("rmdir", &self.target, e))?;
        }
        rename_noreplace(&self.dir, &self.target).map_err(|e| match e.raw_os_error() {
            Some(libc::EEXIST | libc::ENOTEMPTY) => Error::Occupied {
                path: self.target.clone(),
                pins: list(&self.target).map_or(0, |p| p.len()),
            },
            _ => Error::syscall("rename", &self.target, e),
        })?;
        self.committed = true;
        Ok(self.target.clone())
    }
}

impl Drop for Staging {
    fn drop(&mut self) {
        if self.committed {
            return;
        }
        if !self.dir.as_os_str().is_empty() {
            let _ = remove_all(&self.dir);
        }
        for dir in self.created_parents.iter().rev() {
            // Fails harmlessly if another change put something there meanwhile.
            let _ = fs::remove_dir(dir);
        }
    }
}

fn rename_noreplace(from: &Path, to: &Path) -> io::Result<()> {
    renameat2(from, to, libc::RENAME_NOREPLACE)
}

/// Swaps two directories on one bpffs in one step (`RENAME_EXCHANGE`).
pub fn exchange_dirs(a: &Path, b: &Path) -> Result<()> {
    rename_exchange(a, b).map_err(|e| Error::syscall("rename", b, e))
}

fn rename_exchange(a: &Path, b: &Path) -> io::Result<()> {
    renameat2(a, b, libc::RENAME_EXCHANGE)
}

fn renameat2(from: &Path, to: &Path, flags: libc::c_uint) -> io::Result<()> {
    let from = CString::new(from.as_os_str().as_bytes())?;
    let to = CString::new(to.as_os_str().as_bytes())?;
    // SAFETY: valid C strings; AT_FDCWD with absolute paths.
    let ret = unsafe {
        libc::renameat2(
            libc::AT_FDCWD,
            from.as_ptr(),
            libc::AT_FDCWD,
            to.as_ptr(),
            flags,
        )
    };
    if ret == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Removes staging directories in `parent` left by xdpctl processes that
/// died mid-change (their pid no longer exists).
fn remove_stale(parent: &Path) {
    let Ok(entries) = fs::read_dir(parent) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        if !is_staging_name(&name) {
            continue;
        }
        let pid = staging_pid(&name);
        let alive = pid.is_some_and(|pid| Path::new(&format!("/proc/{pid}")).exists());
        if !alive {
            let _ = remove_all(&entry.path());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn staging_names_are_recognised() {
        let name = OsStr::new("_xdpctl-stage-123-xdp-fw");
        assert!(is_staging_name(name));
        assert_eq!(staging_pid(name), Some(123));
        assert!(!is_staging_name(OsStr::new("xdpfw")));
    }
}
