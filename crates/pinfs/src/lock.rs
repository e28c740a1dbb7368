//! Serialising changes to a pin directory with `flock(2)`.

use std::{
    fs::File,
    io,
    os::fd::AsRawFd,
    path::{Path, PathBuf},
};

use crate::{Error, Result};

/// An exclusive `flock` on a directory, released on drop.
///
/// xdpctl takes it on the parent of the directory it changes, so that two
/// invocations changing the same directory run one after the other. The
/// lock is advisory: it orders xdpctl processes (and libxdp, which locks the
/// same way), not arbitrary writers.
#[derive(Debug)]
pub struct DirLock {
    _file: File,
    path: PathBuf,
}

impl DirLock {
    /// Blocks until the exclusive lock on `dir` is ours.
    pub fn exclusive(dir: &Path) -> Result<Self> {
        let file = File::open(dir).map_err(|e| Error::syscall("open", dir, e))?;
        loop {
            // SAFETY: flock on an fd we own.
            if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) } == 0 {
                break;
            }
            let err = io::Error::last_os_error();
            if err.kind() != io::ErrorKind::Interrupted {
                return Err(Error::syscall("flock", dir, err));
            }
        }
        Ok(Self {
            _file: file,
            path: dir.to_owned(),
        })
    }

    /// The directory that is locked.
    pub fn path(&self) -> &Path {
        &self.path
    }
}
