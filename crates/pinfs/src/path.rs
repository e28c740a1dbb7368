//! Finding bpffs and validating paths on it.

use std::{
    ffi::{CString, OsString},
    fs, io,
    os::unix::ffi::OsStrExt,
    path::{Component, Path, PathBuf},
};

use crate::{Error, Result};

/// `f_type` of a bpffs in `statfs(2)`.
pub const BPF_FS_MAGIC: i64 = 0xcafe_4a11;

/// Where bpffs is mounted by convention, and where xdpctl mounts it if
/// nothing is.
pub const DEFAULT_ROOT: &str = "/sys/fs/bpf";

/// Whether `path` (which must exist) is on a bpffs.
pub fn is_bpffs(path: &Path) -> Result<bool> {
    let c = CString::new(path.as_os_str().as_bytes()).map_err(|_| Error::NotBpffs {
        path: path.to_owned(),
        mountpoint: None,
    })?;
    let mut st = std::mem::MaybeUninit::<libc::statfs>::zeroed();
    // SAFETY: `c` is a valid C string and `st` is large enough for statfs.
    if unsafe { libc::statfs(c.as_ptr(), st.as_mut_ptr()) } != 0 {
        return Err(Error::syscall("statfs", path, io::Error::last_os_error()));
    }
    // SAFETY: statfs succeeded and filled the struct.
    let st = unsafe { st.assume_init() };
    #[allow(
        clippy::unnecessary_cast,
        reason = "f_type is not i64 on every architecture"
    )]
    Ok(st.f_type as i64 == BPF_FS_MAGIC)
}

/// Mounts a fresh bpffs on `dir` (which must exist), mode 0700.
pub fn mount_bpffs(dir: &Path) -> Result<()> {
    nix::mount::mount(
        Some("bpf"),
        dir,
        Some("bpf"),
        nix::mount::MsFlags::empty(),
        Some("mode=0700"),
    )
    .map_err(|e| Error::syscall("mount -t bpf", dir, e.into()))
}

/// Makes sure `root` is on a bpffs. If it is not and `may_mount` is set,
/// mounts one there (creating the directory), as bpftool does for
/// `/sys/fs/bpf`. Returns whether a bpffs was mounted by this call.
pub fn ensure_mounted(root: &Path, may_mount: bool) -> Result<bool> {
    let exists = root.is_dir();
    if exists && is_bpffs(root)? {
        return Ok(false);
    }
    if !may_mount {
        return Err(Error::NotBpffs {
            path: root.to_owned(),
            mountpoint: safe_mountpoint(root),
        });
    }
    if !exists {
        fs::create_dir_all(root).map_err(|e| Error::syscall("mkdir", root, e))?;
    }
    mount_bpffs(root)?;
    Ok(true)
}

/// `dir` if mounting a bpffs on it hides nothing: it is the conventional
/// root, or an empty directory, or does not exist yet.
fn safe_mountpoint(dir: &Path) -> Option<PathBuf> {
    let empty = match fs::read_dir(dir) {
        Ok(mut entries) => entries.next().is_none(),
        Err(e) => e.kind() == io::ErrorKind::NotFound,
    };
    (empty || dir == Path::new(DEFAULT_ROOT)).then(|| dir.to_owned())
}

/// A pin path that was checked to lie on bpffs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PinPath {
    /// The full path, with the existing part resolved (no symlinks, no `.`).
    pub path: PathBuf,
    /// The deepest part of the path that exists, resolved.
    pub existing: PathBuf,
    /// The names below `existing` that do not exist yet, in order.
    pub missing: Vec<OsString>,
}

impl PinPath {
    /// Whether the whole path exists.
    pub fn exists(&self) -> bool {
        self.missing.is_empty()
    }
}

/// Checks that `path` lies on a bpffs: it must be absolute and have no `..`;
/// the part of it that exists is resolved (symlinks included) and must be on
/// a bpffs. Nothing is created.
pub fn validate(path: &Path) -> Result<PinPath> {
    if !path.is_absolute() {
        return Err(Error::Relative {
            path: path.to_owned(),
        });
    }
    let mut lexical = PathBuf::from("/");
    let mut names = Vec::new();
    for component in path.components() {
        match component {
            Component::RootDir | Component::CurDir => {}
            Component::ParentDir => {
                return Err(Error::ParentComponent {
                    path: path.to_owned(),
                });
            }
            Component::Normal(name) => names.push(name.to_owned()),
            Component::Prefix(_) => unreachable!("no path prefixes on Linux"),
        }
    }

    // The deepest existing ancestor (the path itself if it exists).
    let mut split = 0;
    for (i, name) in names.iter().enumerate() {
        let next = lexical.join(name);
        match fs::symlink_metadata(&next) {
            Ok(_) => {
                lexical = next;
                split = i + 1;
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => break,
            // bpffs answers EPERM for any name with a dot in it.
            Err(e) if e.raw_os_error() == Some(libc::EPERM) && name.as_bytes().contains(&b'.') => {
                return Err(Error::DotInName {
                    path: path.to_owned(),
                    name: name.to_string_lossy().into_owned(),
                });
            }
            Err(e) => return Err(Error::syscall("stat", next, e)),
        }
    }
    let missing = names.split_off(split);
    if let Some(name) = missing.iter().find(|n| n.as_bytes().contains(&b'.')) {
        return Err(Error::DotInName {
            path: path.to_owned(),
            name: name.to_string_lossy().into_owned(),
        });
    }
    let existing =
        fs::canonicalize(&lexical).map_err(|e| Error::syscall("realpath", &lexical, e))?;
    if !is_bpffs(&existing)? {
        return Err(if existing != lexical {
            Error::SymlinkEscape {
                path: path.to_owned(),
                resolved: existing,
            }
        } else {
            Error::NotBpffs {
                path: path.to_owned(),
                mountpoint: safe_mountpoint(&existing),
            }
        });
    }
    let mut full = existing.clone();
    full.extend(&missing);
    Ok(PinPath {
        path: full,
        existing,
        missing,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_relative_and_dotdot_before_touching_anything() {
        assert!(matches!(
            validate(Path::new("xdpfw")),
            Err(Error::Relative { .. })
        ));
        assert!(matches!(
            validate(Path::new("/sys/fs/bpf/../../tmp/x")),
            Err(Error::ParentComponent { .. })
        ));
    }

    #[test]
    fn rejects_dots_in_new_names() {
        // bpffs itself refuses them with a bare EPERM.
        let dir = tempfile::tempdir().unwrap();
        match validate(&dir.path().join("v1.2")) {
            Err(Error::DotInName { name, .. }) => assert_eq!(name, "v1.2"),
            other => panic!("expected DotInName, got {other:?}"),
        }
    }

    #[test]
    fn rejects_paths_off_bpffs() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("a/b");
        match validate(&target) {
            Err(Error::NotBpffs { mountpoint, .. }) => {
                assert_eq!(mountpoint, Some(fs::canonicalize(dir.path()).unwrap()))
            }
            other => panic!("expected NotBpffs, got {other:?}"),
        }
    }

    #[test]
    fn error_messages_name_the_path_and_the_fix() {
        let err = Error::NotBpffs {
            path: "/tmp/x/y".into(),
            mountpoint: Some("/tmp/x".into()),
        };
        assert_eq!(
            err.to_string(),
            "/tmp/x/y is not on a bpffs mount (mount one with: mount -t bpf bpf /tmp/x)"
        );
        // Never over a directory with contents.
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("precious"), "x").unwrap();
        match validate(&dir.path().join("fw")) {
            Err(
                e @ Error::NotBpffs {
                    mountpoint: None, ..
                },
            ) => {
                assert!(!e.to_string().contains("mount -t bpf"), "{e}")
            }
            other => panic!("expected NotBpffs without a mount point, got {other:?}"),
        }
    }
}
