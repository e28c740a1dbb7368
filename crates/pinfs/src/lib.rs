//! bpffs as a library: find or mount it, validate pin paths, pin a set of
//! BPF objects atomically, enumerate pins with their kind and kernel id, and
//! remove them.
//!
//! Why a crate of its own: every xdpctl command that touches bpffs goes
//! through these few operations, and their guarantees are the point — a
//! failed load leaves nothing behind (not even the empty directories that
//! bpftool leaves), two loads into one directory never interleave, and a path
//! that leaves bpffs through `..` or a symlink is refused before anything is
//! created. It does no printing and knows nothing of the CLI; errors name the
//! path and the syscall.

mod error;
pub mod failpoint;
mod lock;
mod path;
mod stage;
mod sys;
mod walk;

pub use error::{Error, Result};
pub use lock::DirLock;
pub use path::{
    BPF_FS_MAGIC, DEFAULT_ROOT, PinPath, ensure_mounted, is_bpffs, mount_bpffs, validate,
};
pub use stage::{
    Staging, check_free, exchange_dirs, mkdir_0700, remove_dir_if_empty, rename_noreplace,
    rename_replace,
};
pub use sys::{Kind, ObjectInfo, obj_get, obj_info, obj_pin};
pub use walk::{
    Pin, is_empty_dir, keep_private, list, list_matching, list_pruned, pin_info, remove_all,
};
