use std::{io, path::PathBuf};

/// Everything that can go wrong on bpffs. Each variant names the path.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A syscall on a path failed.
    #[error("{syscall} {path} failed")]
    Syscall {
        /// The syscall, e.g. `mkdir` or `BPF_OBJ_PIN`.
        syscall: &'static str,
        /// The path it was called on.
        path: PathBuf,
        /// What the kernel said.
        #[source]
        source: io::Error,
    },

    /// The path is not on a bpffs mount.
    #[error("{path} is not on a bpffs mount ({})", mount_hint(mountpoint))]
    NotBpffs {
        /// The path as given.
        path: PathBuf,
        /// Where a bpffs would have to be mounted for the path to work, if
        /// mounting one there is safe (an empty directory): never a
        /// directory with contents, which a mount would hide.
        mountpoint: Option<PathBuf>,
    },

    /// The path has a `..` component.
    #[error("{path}: pin paths may not contain '..'; give the path without it")]
    ParentComponent {
        /// The path as given.
        path: PathBuf,
    },

    /// A name to create has a dot, which bpffs refuses.
    #[error("{path}: bpffs does not allow '.' in names ({name:?}); use '_' or '-' instead")]
    DotInName {
        /// The path as given.
        path: PathBuf,
        /// The offending name.
        name: String,
    },

    /// The path is relative where an absolute one is needed.
    #[error("{path}: pin paths must be absolute")]
    Relative {
        /// The path as given.
        path: PathBuf,
    },

    /// A directory to remove is another mount.
    #[error("{path} is another mount; refusing to remove what is below it")]
    OtherMount {
        /// The mount point.
        path: PathBuf,
    },

    /// A symlink on the path leads out of bpffs.
    #[error(
        "{path} resolves to {resolved}, which is outside bpffs; a symlink on the path leads out"
    )]
    SymlinkEscape {
        /// The path as given.
        path: PathBuf,
        /// Where it leads.
        resolved: PathBuf,
    },

    /// The directory already holds pins.
    #[error(
        "{path} already holds {pins} pinned object(s); empty it first or choose another directory"
    )]
    Occupied {
        /// The directory.
        path: PathBuf,
        /// How many pins are below it.
        pins: usize,
    },

    /// Something that is not a directory stands where one is needed.
    #[error("{path} exists and is not a directory")]
    NotADirectory {
        /// The path.
        path: PathBuf,
    },

    /// A pin name is not a plain relative path inside the staging directory.
    #[error("invalid pin name {name:?}: use a relative path of plain names")]
    InvalidName {
        /// The name as given.
        name: String,
    },

    /// The file is on bpffs but is not a BPF object (a directory or symlink).
    #[error("{path} is not a pinned BPF object")]
    NotAnObject {
        /// The path.
        path: PathBuf,
    },
}

/// Result with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

fn mount_hint(mountpoint: &Option<PathBuf>) -> String {
    match mountpoint {
        Some(m) => format!("mount one with: mount -t bpf bpf {}", m.display()),
        None => format!(
            "pin below a bpffs such as {} instead; mounting one here would hide what the \
             directory holds",
            crate::DEFAULT_ROOT
        ),
    }
}

impl Error {
    pub(crate) fn syscall(
        syscall: &'static str,
        path: impl Into<PathBuf>,
        source: io::Error,
    ) -> Self {
        Error::Syscall {
            syscall,
            path: path.into(),
            source,
        }
    }

    /// The OS error behind this error, if a syscall failed.
    pub fn raw_os_error(&self) -> Option<i32> {
        match self {
            Error::Syscall { source, .. } => source.raw_os_error(),
            _ => None,
        }
    }
}
