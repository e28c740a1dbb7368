//! Pinning a set of objects so that they appear all at once or not at all,
//! and the renames that make a change visible in one step.
//!
//! The objects are pinned into a staging directory on the same bpffs (the
//! caller says where: xdpctl keeps them in its state directory, where
//! `xdpctl doctor` sees them), which is then renamed onto the target. bpffs
//! supports `rename(2)`, so the directory appears whole in one step. If
//! anything fails before that, the staging directory and every parent that
//! this change created are removed again. A process killed on the way leaves
//! them for its journal's recovery, which knows both paths.

use std::{
    ffi::CString,
    fs::{self, DirBuilder},
    io,
    os::{
        fd::BorrowedFd,
        unix::{ffi::OsStrExt, fs::DirBuilderExt},
    },
    path::{Component, Path, PathBuf},
};

use crate::{Error, PinPath, Result, failpoint, list, obj_pin, remove_all, walk::is_empty_dir};

/// Creates a directory with mode 0700 (a state change: a crash point).
pub fn mkdir_0700(path: &Path) -> io::Result<()> {
    failpoint::step("mkdir");
    DirBuilder::new().mode(0o700).create(path)
}

/// A change in progress: objects pinned into a staging directory.
/// [`commit`](Staging::commit) makes them appear at the target;
/// [`keep`](Staging::keep) hands the staged directory to the caller; dropping
/// it otherwise removes all trace of it.
#[derive(Debug)]
pub struct Staging {
    target: PathBuf,
    dir: PathBuf,
    created_parents: Vec<PathBuf>,
    done: bool,
}

impl Staging {
    /// Starts a change that will create or replace the directory `target`,
    /// staging its pins in `stage` (which must not exist, and must be on the
    /// same bpffs). Creates the target's missing parents (mode 0700).
    ///
    /// The caller serialises changes (xdpctl holds its state lock).
    pub fn begin(target: &PinPath, stage: &Path) -> Result<Self> {
        if target.path.file_name().is_none() {
            return Err(Error::NotADirectory {
                path: target.path.clone(),
            });
        }
        let mut staging = Staging {
            target: target.path.clone(),
            dir: PathBuf::new(),
            created_parents: Vec::new(),
            done: false,
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
        mkdir_0700(stage).map_err(|e| Error::syscall("mkdir", stage, e))?;
        staging.dir = stage.to_owned();
        Ok(staging)
    }

    /// Fails with [`Error::Occupied`] if the target holds pins, and with
    /// [`Error::NotADirectory`] if it is something else.
    pub fn check_target(&self) -> Result<()> {
        check_free(&self.target)
    }

    /// Makes room for a pin at `name` (a relative path such as
    /// `maps/blocklist`) inside the change, and returns the staged path to
    /// pin at. For objects pinned by their own API (aya's `Map::pin`): call
    /// [`failpoint::step`] before pinning there.
    pub fn prepare(&mut self, name: &str) -> Result<PathBuf> {
        let rel = Path::new(name);
        if name.is_empty() || !rel.components().all(|c| matches!(c, Component::Normal(_))) {
            return Err(Error::InvalidName {
                name: name.to_owned(),
            });
        }
        let staged = self.dir.join(rel);
        if let Some(parent) = staged.parent()
            && !parent.exists()
        {
            failpoint::step("mkdir");
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

    /// The staging directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The parents of the target this change created.
    pub fn created_parents(&self) -> &[PathBuf] {
        &self.created_parents
    }

    /// Hands the staged directory over: dropping no longer removes it.
    pub fn keep(mut self) -> PathBuf {
        self.done = true;
        std::mem::take(&mut self.dir)
    }

    /// Makes the staged pins appear at the target, all at once.
    pub fn commit(mut self) -> Result<PathBuf> {
        self.check_target()?;
        if self.target.exists() {
            failpoint::step("rmdir");
            fs::remove_dir(&self.target).map_err(|e| Error::syscall("rmdir", &self.target, e))?;
        }
        rename_noreplace(&self.dir, &self.target).map_err(|e| match e {
            Error::Syscall { source, .. }
                if matches!(source.raw_os_error(), Some(libc::EEXIST | libc::ENOTEMPTY)) =>
            {
                Error::Occupied {
                    path: self.target.clone(),
                    pins: list(&self.target).map_or(0, |p| p.len()),
                }
            }
            other => other,
        })?;
        self.done = true;
        Ok(self.target.clone())
    }
}

/// Fails with [`Error::Occupied`] if `target` holds pins, and with
/// [`Error::NotADirectory`] if it is something else; an absent or empty
/// directory is free.
pub fn check_free(target: &Path) -> Result<()> {
    match fs::symlink_metadata(target) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(Error::syscall("stat", target, e)),
        Ok(meta) if !meta.is_dir() => Err(Error::NotADirectory {
            path: target.to_owned(),
        }),
        Ok(_) if is_empty_dir(target)? => Ok(()),
        Ok(_) => Err(Error::Occupied {
            path: target.to_owned(),
            pins: list(target)?.len(),
        }),
    }
}

impl Drop for Staging {
    fn drop(&mut self) {
        if self.done {
            return;
        }
        if !self.dir.as_os_str().is_empty() {
            let _ = remove_all(&self.dir);
        }
        for dir in self.created_parents.iter().rev() {
            // Fails harmlessly if another change put something there meanwhile.
            let _ = remove_dir_if_empty(dir);
        }
    }
}

/// Removes `dir` if it is an empty directory; `Ok(false)` if it is not
/// there or not empty.
pub fn remove_dir_if_empty(dir: &Path) -> Result<bool> {
    match fs::symlink_metadata(dir) {
        Ok(m) if m.is_dir() && is_empty_dir(dir)? => {}
        Ok(_) => return Ok(false),
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(Error::syscall("stat", dir, e)),
    }
    failpoint::step("rmdir");
    match fs::remove_dir(dir) {
        Ok(()) => Ok(true),
        Err(e) if matches!(e.raw_os_error(), Some(libc::ENOENT | libc::ENOTEMPTY)) => Ok(false),
        Err(e) => Err(Error::syscall("rmdir", dir, e)),
    }
}

/// Renames `from` to `to`, failing if `to` exists (`RENAME_NOREPLACE`).
pub fn rename_noreplace(from: &Path, to: &Path) -> Result<()> {
    renameat2(from, to, libc::RENAME_NOREPLACE).map_err(|e| Error::syscall("rename", to, e))
}

/// Renames `from` onto `to`, replacing a pin there in one step.
pub fn rename_replace(from: &Path, to: &Path) -> Result<()> {
    renameat2(from, to, 0).map_err(|e| Error::syscall("rename", to, e))
}

/// Swaps two directories on one bpffs in one step (`RENAME_EXCHANGE`).
pub fn exchange_dirs(a: &Path, b: &Path) -> Result<()> {
    renameat2(a, b, libc::RENAME_EXCHANGE).map_err(|e| Error::syscall("rename", b, e))
}

fn renameat2(from: &Path, to: &Path, flags: libc::c_uint) -> io::Result<()> {
    let from = CString::new(from.as_os_str().as_bytes())?;
    let to = CString::new(to.as_os_str().as_bytes())?;
    failpoint::step("renameat2");
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
