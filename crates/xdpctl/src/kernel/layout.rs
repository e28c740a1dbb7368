//! Where xdpctl keeps its own state on a bpffs, and the lock that orders
//! its changes.
//!
//! At the root of each bpffs mount it changes, xdpctl keeps a directory
//! `_xdpctl/` (bpffs allows no dots in names, so it cannot be a dot-file):
//!
//! ```text
//! _xdpctl/journal/<id>   records of changes under way (pinned blob maps)
//! _xdpctl/pending/<key>  changes waiting for `xdpctl confirm`
//! _xdpctl/stage/<id>     pins being staged by a load or replace
//! _xdpctl/trash/<id>     a load being removed by unload
//! _xdpctl/rollback/<id>  the old pins of an upgrade waiting for confirmation
//! _xdpctl/links/<dev>@<netns inode>
//!                        links `attach` made for programs that no load
//!                        directory holds (another tool's, or unpinned)
//! ```
//!
//! Every change holds an exclusive `flock` on the mount point of the bpffs
//! from before its journal record is written until it is removed; a
//! process that dies drops the lock, so the next one to take it finds the
//! record and knows nobody is still working on it. `_xdpctl/` is made when
//! a change first needs it and removed again when a change leaves it empty,
//! so a command that fails leaves the bpffs exactly as it was. Listings of
//! pins leave `_xdpctl/` out; `xdpctl doctor` shows it.

use std::{
    fs,
    io::Read,
    os::unix::fs::MetadataExt,
    path::{Path, PathBuf},
};

use anyhow::{Context as _, Result, bail};

/// The state of one bpffs mount.
#[derive(Clone, Debug)]
pub struct StateDir {
    /// The mount point of the bpffs.
    pub root: PathBuf,
    /// `<root>/_xdpctl`.
    pub dir: PathBuf,
}

/// The mount point of the filesystem `path` (which must exist) is on.
pub fn mount_root(path: &Path) -> Result<PathBuf> {
    let path = fs::canonicalize(path).with_context(|| format!("resolving {}", path.display()))?;
    let dev = fs::metadata(&path)
        .with_context(|| format!("stat {}", path.display()))?
        .dev();
    let mut root = path.clone();
    while let Some(parent) = root.parent() {
        if fs::metadata(parent).map(|m| m.dev()).ok() != Some(dev) {
            break;
        }
        root = parent.to_owned();
    }
    Ok(root)
}

/// The subdirectories of the state directory.
pub const SUBDIRS: [&str; 6] = ["journal", "pending", "stage", "trash", "rollback", "links"];

impl StateDir {
    /// The state directory of the bpffs that `path` (an existing path) is on.
    ///
    /// NB: found once a path for the process (a walk up the path, which
    /// several steps of a command would repeat): a mount point does not
    /// move under a running command (xdpctl mounts a bpffs only where none
    /// is, before it looks for one).
    pub fn of(path: &Path) -> Result<Self> {
        static FOUND: std::sync::Mutex<Vec<(PathBuf, StateDir)>> =
            std::sync::Mutex::new(Vec::new());
        let mut found = FOUND
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some((_, state)) = found.iter().find(|(p, _)| p == path) {
            return Ok(state.clone());
        }
        if !pinfs::is_bpffs(path)? {
            bail!("{} is not on a bpffs", path.display());
        }
        let root = mount_root(path)?;
        let state = StateDir {
            dir: root.join(crate::model::manifest::STATE_DIR),
            root,
        };
        found.push((path.to_owned(), state.clone()));
        Ok(state)
    }

    /// Creates the state directory and its subdirectories if needed.
    pub fn ensure(&self) -> Result<()> {
        for dir in std::iter::once(self.dir.clone()).chain(SUBDIRS.map(|s| self.dir.join(s))) {
            match fs::symlink_metadata(&dir) {
                Ok(m) if m.is_dir() => {}
                Ok(_) => bail!(
                    "{} is not a directory; xdpctl keeps its state there (move it away)",
                    dir.display()
                ),
                Err(_) => pinfs::mkdir_0700(&dir)
                    .or_else(|e| {
                        if e.kind() == std::io::ErrorKind::AlreadyExists {
                            Ok(())
                        } else {
                            Err(e)
                        }
                    })
                    .with_context(|| format!("creating {}", dir.display()))?,
            }
        }
        Ok(())
    }

    /// Takes the exclusive lock; blocks while another xdpctl change on this
    /// bpffs runs.
    ///
    /// NB: on the mount point, not on `_xdpctl/`: a directory that may be
    /// removed cannot be a lock (a waiter would end up holding the lock of
    /// a deleted directory while a newcomer locks its successor).
    pub fn lock(&self) -> Result<pinfs::DirLock> {
        Ok(pinfs::DirLock::exclusive(&self.root)?)
    }

    /// Removes the state directory if nothing is in it (under the lock).
    pub fn remove_if_empty(&self) -> Result<()> {
        if !self.dir.is_dir() {
            return Ok(());
        }
        for sub in SUBDIRS {
            pinfs::remove_dir_if_empty(&self.sub(sub))?;
        }
        pinfs::remove_dir_if_empty(&self.dir)?;
        Ok(())
    }

    /// `_xdpctl/<sub>`.
    pub fn sub(&self, sub: &str) -> PathBuf {
        self.dir.join(sub)
    }

    /// The entries of `_xdpctl/<sub>`, sorted.
    pub fn entries(&self, sub: &str) -> Result<Vec<PathBuf>> {
        let dir = self.sub(sub);
        let Ok(entries) = fs::read_dir(&dir) else {
            return Ok(Vec::new());
        };
        let mut out: Vec<PathBuf> = entries.flatten().map(|e| e.path()).collect();
        out.sort();
        Ok(out)
    }
}

/// A fresh random 64-bit id (for generations and record names).
pub fn random_id() -> u64 {
    let mut buf = [0u8; 8];
    if fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut buf))
        .is_err()
    {
        // NB: no urandom is no reason to fail a load; time and pid are
        // unique enough among the records of one host.
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        return t ^ (u64::from(std::process::id()) << 40);
    }
    u64::from_ne_bytes(buf)
}
