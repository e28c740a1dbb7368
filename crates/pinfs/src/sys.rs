//! The three `bpf(2)` commands bpffs work needs: pin, get, and the kind and
//! kernel id of an object. The raw call is private: the rest of the kernel
//! is the core's, not this crate's.

use std::{
    ffi::CString,
    fmt, io,
    os::{
        fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd},
        unix::ffi::OsStrExt,
    },
    path::Path,
};

use aya_obj::generated::{bpf_attr, bpf_cmd};

use crate::{Error, Result};

/// Calls `bpf(cmd, attr)` for the bpffs commands of this file; a pin
/// passes the [`failpoint`](crate::failpoint) first.
///
/// # Safety
///
/// Every pointer in the members of `attr` that `cmd` reads must be valid for
/// the reads and writes the kernel makes for `cmd` (NUL-terminated paths,
/// buffers as long as the sizes given next to them, live fds).
unsafe fn bpf(cmd: bpf_cmd, attr: &mut bpf_attr) -> io::Result<libc::c_long> {
    if cmd == bpf_cmd::BPF_OBJ_PIN {
        crate::failpoint::step("bpf");
    }
    // SAFETY: the caller vouches for the pointers in `attr`; the kernel reads
    // and writes at most size_of::<bpf_attr>() bytes of it.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            cmd as libc::c_long,
            attr as *mut bpf_attr as *mut libc::c_void,
            size_of::<bpf_attr>() as libc::c_uint,
        )
    };
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

/// An all-zero `bpf_attr`, the documented starting point for every command.
fn zeroed_attr() -> bpf_attr {
    // SAFETY: bpf_attr is plain old data; all-zero is a valid value.
    unsafe { std::mem::MaybeUninit::<bpf_attr>::zeroed().assume_init() }
}

fn cpath(path: &Path) -> Result<CString> {
    CString::new(path.as_os_str().as_bytes()).map_err(|_| {
        Error::syscall(
            "BPF_OBJ_PIN",
            path,
            io::Error::new(io::ErrorKind::InvalidInput, "path contains a NUL byte"),
        )
    })
}

/// Pins the object behind `fd` at `path` (`BPF_OBJ_PIN`).
pub fn obj_pin(fd: BorrowedFd<'_>, path: &Path) -> Result<()> {
    let c = cpath(path)?;
    let mut attr = zeroed_attr();
    attr.__bindgen_anon_4.pathname = c.as_ptr() as u64;
    attr.__bindgen_anon_4.bpf_fd = fd.as_raw_fd() as u32;
    // SAFETY: `c` outlives the call; `fd` is a live fd.
    unsafe { bpf(bpf_cmd::BPF_OBJ_PIN, &mut attr) }
        .map_err(|e| Error::syscall("BPF_OBJ_PIN", path, e))?;
    Ok(())
}

/// Opens the object pinned at `path` (`BPF_OBJ_GET`), read-write.
pub fn obj_get(path: &Path) -> Result<OwnedFd> {
    let c = cpath(path)?;
    let mut attr = zeroed_attr();
    attr.__bindgen_anon_4.pathname = c.as_ptr() as u64;
    // SAFETY: `c` outlives the call.
    let fd = unsafe { bpf(bpf_cmd::BPF_OBJ_GET, &mut attr) }
        .map_err(|e| Error::syscall("BPF_OBJ_GET", path, e))?;
    // SAFETY: the kernel returned a new file descriptor that we now own.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

/// The kind of a BPF object.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Kind {
    /// A program.
    Prog,
    /// A map.
    Map,
    /// A link (an attachment that is an object of its own).
    Link,
    /// BTF type information.
    Btf,
}

impl Kind {
    /// Lowercase name, as printed.
    pub const fn as_str(self) -> &'static str {
        match self {
            Kind::Prog => "prog",
            Kind::Map => "map",
            Kind::Link => "link",
            Kind::Btf => "btf",
        }
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What kind of object a BPF fd refers to, and its kernel id.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ObjectInfo {
    /// Program, map, link or BTF.
    pub kind: Kind,
    /// The kernel's id for the object (unique per kind).
    pub id: u32,
}

/// The kind and kernel id of the object behind `fd`.
///
/// NB: the kind comes from the anon inode's name (`bpf-prog`, `bpf-map`,
/// `bpf_link` or `bpf-link` by kernel version, `btf`); the id is the second `u32` of every `bpf_*_info`
/// struct, so a short `BPF_OBJ_GET_INFO_BY_FD` reads it whatever the kind.
pub fn obj_info(fd: BorrowedFd<'_>) -> io::Result<ObjectInfo> {
    let link = std::fs::read_link(format!("/proc/self/fd/{}", fd.as_raw_fd()))?;
    let kind = match link.as_os_str().as_bytes() {
        b"anon_inode:bpf-prog" => Kind::Prog,
        b"anon_inode:bpf-map" => Kind::Map,
        b"anon_inode:bpf_link" | b"anon_inode:bpf-link" => Kind::Link,
        b"anon_inode:btf" => Kind::Btf,
        other => {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("not a BPF object: {}", String::from_utf8_lossy(other)),
            ));
        }
    };
    // The id is the second u32 of bpf_prog_info, bpf_map_info and
    // bpf_link_info; bpf_btf_info starts with a u64 pointer and a u32 size.
    let index = if kind == Kind::Btf { 3 } else { 1 };
    Ok(ObjectInfo {
        kind,
        id: info_u32(fd, index)?,
    })
}

/// The `index`th u32 of the object's info struct, read with a short
/// `BPF_OBJ_GET_INFO_BY_FD` (the kernel copies only what fits).
fn info_u32(fd: BorrowedFd<'_>, index: usize) -> io::Result<u32> {
    let mut info = [0u32; 4];
    let mut attr = zeroed_attr();
    attr.info.bpf_fd = fd.as_raw_fd() as u32;
    attr.info.info_len = (4 * (index + 1)) as u32;
    attr.info.info = info.as_mut_ptr() as u64;
    // SAFETY: `info` holds info_len bytes and outlives the call.
    unsafe { bpf(bpf_cmd::BPF_OBJ_GET_INFO_BY_FD, &mut attr) }?;
    Ok(info[index])
}
