//! xdpctl's entry point to the kernel's `bpf(2)`: the raw call, and the
//! typed calls that aya 0.14 does not offer, built on aya-obj's `bpf_attr`
//! bindings: enumerating objects by id, reading their info, links, map
//! elements, test runs. (pinfs makes its own three bpffs calls: pin, get,
//! info.) The raw call is private to this file;
//! map element access is `pub(super)`: the rest of xdpctl goes through
//! `kernel::map::MapHandle`, which checks every buffer against
//! the map's info first.

use std::{
    io,
    os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd},
};

use aya_obj::generated::{
    bpf_attach_type, bpf_attr, bpf_btf_info, bpf_cmd, bpf_link_info, bpf_map_info, bpf_prog_info,
};

/// Calls `bpf(cmd, attr)`: xdpctl's one raw `bpf(2)` call. Commands that
/// change state outside the process (links, attachments, map contents)
/// pass a crash point of the fault-injection tests first.
///
/// # Safety
///
/// Every pointer in the members of `attr` that `cmd` reads must be valid for
/// the reads and writes the kernel makes for `cmd` (buffers as long as the
/// sizes given next to them, NUL-terminated paths, live fds).
unsafe fn bpf(cmd: bpf_cmd, attr: &mut bpf_attr) -> io::Result<libc::c_long> {
    use bpf_cmd::*;
    if matches!(
        cmd,
        BPF_OBJ_PIN
            | BPF_LINK_CREATE
            | BPF_LINK_UPDATE
            | BPF_LINK_DETACH
            | BPF_MAP_UPDATE_ELEM
            | BPF_MAP_DELETE_ELEM
            | BPF_MAP_UPDATE_BATCH
            | BPF_MAP_DELETE_BATCH
            | BPF_PROG_ATTACH
            | BPF_PROG_DETACH
    ) {
        pinfs::failpoint::step("bpf");
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

/// Takes ownership of a new fd the kernel returned.
fn owned(fd: libc::c_long) -> OwnedFd {
    // SAFETY: bpf(2) returned a new file descriptor that nothing else owns.
    unsafe { OwnedFd::from_raw_fd(fd as i32) }
}

/// Kinds of object that have ids.
#[derive(Clone, Copy, Debug)]
pub enum IdKind {
    Prog,
    Map,
    Link,
}

/// The id after `start` (`BPF_*_GET_NEXT_ID`), or `None` at the end.
pub fn next_id(kind: IdKind, start: u32) -> io::Result<Option<u32>> {
    let mut attr = zeroed_attr();
    attr.__bindgen_anon_6.__bindgen_anon_1.start_id = start;
    let cmd = match kind {
        IdKind::Prog => bpf_cmd::BPF_PROG_GET_NEXT_ID,
        IdKind::Map => bpf_cmd::BPF_MAP_GET_NEXT_ID,
        IdKind::Link => bpf_cmd::BPF_LINK_GET_NEXT_ID,
    };
    // SAFETY: no pointers in attr.
    match unsafe { bpf(cmd, &mut attr) } {
        // SAFETY: the kernel filled next_id.
        Ok(_) => Ok(Some(unsafe { attr.__bindgen_anon_6.next_id })),
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => Ok(None),
        Err(e) => Err(e),
    }
}

/// Every id of `kind`, in ascending order.
pub fn ids(kind: IdKind) -> io::Result<Vec<u32>> {
    let mut ids = Vec::new();
    let mut id = 0;
    while let Some(next) = next_id(kind, id)? {
        ids.push(next);
        id = next;
    }
    Ok(ids)
}

/// Opens the object with this id (`BPF_*_GET_FD_BY_ID`).
pub fn fd_by_id(kind: IdKind, id: u32) -> io::Result<OwnedFd> {
    let mut attr = zeroed_attr();
    attr.__bindgen_anon_6.__bindgen_anon_1.prog_id = id;
    let cmd = match kind {
        IdKind::Prog => bpf_cmd::BPF_PROG_GET_FD_BY_ID,
        IdKind::Map => bpf_cmd::BPF_MAP_GET_FD_BY_ID,
        IdKind::Link => bpf_cmd::BPF_LINK_GET_FD_BY_ID,
    };
    // SAFETY: no pointers in attr.
    let fd = unsafe { bpf(cmd, &mut attr) }?;
    Ok(owned(fd))
}

/// Info structs the kernel fills for `BPF_OBJ_GET_INFO_BY_FD`.
///
/// # Safety
///
/// Implemented only for the plain-old-data `bpf_*_info` structs, for which
/// all-zero is a valid value and the kernel writes at most their size.
unsafe trait Info: Sized {
    fn zeroed() -> Self {
        // SAFETY: guaranteed by the implementor (plain old data).
        unsafe { std::mem::MaybeUninit::zeroed().assume_init() }
    }
}
// SAFETY: plain old data from the UAPI bindings.
unsafe impl Info for bpf_map_info {}
// SAFETY: plain old data from the UAPI bindings.
unsafe impl Info for bpf_prog_info {}
// SAFETY: plain old data from the UAPI bindings.
unsafe impl Info for bpf_link_info {}
// SAFETY: plain old data from the UAPI bindings.
unsafe impl Info for bpf_btf_info {}

fn info_by_fd<T: Info>(fd: BorrowedFd<'_>, info: &mut T) -> io::Result<()> {
    let mut attr = zeroed_attr();
    attr.info.bpf_fd = fd.as_raw_fd() as u32;
    attr.info.info_len = size_of::<T>() as u32;
    attr.info.info = info as *mut T as u64;
    // SAFETY: `info` is a live T of info_len bytes; the pointers set inside
    // it by the callers below point at live buffers of the sizes given.
    unsafe { bpf(bpf_cmd::BPF_OBJ_GET_INFO_BY_FD, &mut attr) }?;
    Ok(())
}

/// `bpf_map_info` of the map behind `fd`.
pub fn map_info(fd: BorrowedFd<'_>) -> io::Result<bpf_map_info> {
    let mut info = bpf_map_info::zeroed();
    info_by_fd(fd, &mut info)?;
    Ok(info)
}

/// `bpf_prog_info` of the program behind `fd`, with its map ids.
pub fn prog_info(fd: BorrowedFd<'_>) -> io::Result<(bpf_prog_info, Vec<u32>)> {
    let mut info = bpf_prog_info::zeroed();
    info_by_fd(fd, &mut info)?;
    let mut map_ids = vec![0u32; info.nr_map_ids as usize];
    if !map_ids.is_empty() {
        // Second call: the same struct, with only the map id buffer set.
        let mut again = bpf_prog_info::zeroed();
        again.nr_map_ids = map_ids.len() as u32;
        again.map_ids = map_ids.as_mut_ptr() as u64;
        info_by_fd(fd, &mut again)?;
        map_ids.truncate(again.nr_map_ids.min(map_ids.len() as u32) as usize);
    }
    Ok((info, map_ids))
}

/// `bpf_link_info` of the link behind `fd`.
pub fn link_info(fd: BorrowedFd<'_>) -> io::Result<bpf_link_info> {
    let mut info = bpf_link_info::zeroed();
    info_by_fd(fd, &mut info)?;
    Ok(info)
}

/// The ifindex an XDP link is attached to (0 once it is detached), or
/// `None` for another kind of link.
pub fn xdp_link_ifindex(info: &bpf_link_info) -> Option<u32> {
    if info.type_ == LINK_TYPE_XDP {
        // SAFETY: the union member read matches the link type the kernel reported.
        Some(unsafe { info.__bindgen_anon_1.xdp.ifindex })
    } else {
        None
    }
}

/// A tcx link's device (0 once detached) and whether it is at egress, or
/// `None` for another kind.
pub fn tcx_link(info: &bpf_link_info) -> Option<(u32, bool)> {
    (info.type_ == LINK_TYPE_TCX).then(|| {
        // SAFETY: the union member read matches the link type the kernel reported.
        let t = unsafe { info.__bindgen_anon_1.tcx };
        (t.ifindex, t.attach_type == tcx_attach_type(true) as u32)
    })
}

/// The device of a link to one (XDP or tcx; 0 once detached), or `None`
/// for a link of another kind.
pub fn device_link_ifindex(info: &bpf_link_info) -> Option<u32> {
    xdp_link_ifindex(info).or_else(|| tcx_link(info).map(|(i, _)| i))
}

/// A netfilter link's family, hook and priority, or `None` for another kind.
pub fn netfilter_link(info: &bpf_link_info) -> Option<(u32, u32, i32)> {
    (info.type_ == LINK_TYPE_NETFILTER).then(|| {
        // SAFETY: the union member read matches the link type the kernel reported.
        let nf = unsafe { info.__bindgen_anon_1.netfilter };
        (nf.pf, nf.hooknum, nf.priority)
    })
}

/// The raw BTF blob with this id (`BPF_BTF_GET_FD_BY_ID`, then its info).
pub fn btf_data(btf_id: u32) -> io::Result<Vec<u8>> {
    let mut attr = zeroed_attr();
    attr.__bindgen_anon_6.__bindgen_anon_1.btf_id = btf_id;
    // SAFETY: no pointers in attr.
    let fd = owned(unsafe { bpf(bpf_cmd::BPF_BTF_GET_FD_BY_ID, &mut attr) }?);
    let mut info = bpf_btf_info::zeroed();
    info_by_fd(fd.as_fd(), &mut info)?;
    let mut data = vec![0u8; info.btf_size as usize];
    let mut again = bpf_btf_info::zeroed();
    again.btf = data.as_mut_ptr() as u64;
    again.btf_size = data.len() as u32;
    info_by_fd(fd.as_fd(), &mut again)?;
    data.truncate(again.btf_size.min(data.len() as u32) as usize);
    Ok(data)
}

/// `BPF_LINK_TYPE_XDP`.
pub const LINK_TYPE_XDP: u32 = aya_obj::generated::bpf_link_type::BPF_LINK_TYPE_XDP as u32;
/// `BPF_PROG_TYPE_SCHED_CLS`.
pub const PROG_TYPE_SCHED_CLS: u32 =
    aya_obj::generated::bpf_prog_type::BPF_PROG_TYPE_SCHED_CLS as u32;
/// `BPF_LINK_TYPE_TCX`.
pub const LINK_TYPE_TCX: u32 = aya_obj::generated::bpf_link_type::BPF_LINK_TYPE_TCX as u32;
/// `BPF_LINK_TYPE_NETFILTER`.
pub const LINK_TYPE_NETFILTER: u32 =
    aya_obj::generated::bpf_link_type::BPF_LINK_TYPE_NETFILTER as u32;
/// `BPF_PROG_TYPE_XDP`.
pub const PROG_TYPE_XDP: u32 = aya_obj::generated::bpf_prog_type::BPF_PROG_TYPE_XDP as u32;

/// XDP attach mode flags (`XDP_FLAGS_*`).
pub mod xdp_flags {
    use aya_obj::generated as g;
    /// Fail if a program is already attached (netlink only).
    pub const UPDATE_IF_NOEXIST: u32 = g::XDP_FLAGS_UPDATE_IF_NOEXIST;
    /// Replace the program given as expected (netlink only).
    pub const REPLACE: u32 = g::XDP_FLAGS_REPLACE;
}

/// Turns the kernel's run-time statistics of every program on
/// (`BPF_ENABLE_STATS`, `BPF_STATS_RUN_TIME`) for as long as the returned
/// fd is open: closing it (or the process ending, killed or not) turns
/// them off again, unlike the `kernel.bpf_stats_enabled` sysctl.
pub fn enable_stats() -> io::Result<OwnedFd> {
    let mut attr = zeroed_attr();
    attr.enable_stats.type_ = 0; // BPF_STATS_RUN_TIME
    // SAFETY: no pointers in attr.
    let fd = unsafe { bpf(bpf_cmd::BPF_ENABLE_STATS, &mut attr) }?;
    Ok(owned(fd))
}

/// The `memlock:` bytes the kernel charges for the BPF object behind `fd`
/// (from /proc/self/fdinfo, as bpftool reads it).
pub fn memlock(fd: BorrowedFd<'_>) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/self/fdinfo/{}", fd.as_raw_fd())).ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix("memlock:"))
        .and_then(|v| v.trim().parse().ok())
}

/// Attaches the XDP program `prog` to `ifindex` as a bpf_link
/// (`BPF_LINK_CREATE`, attach type `BPF_XDP`) in the mode of `flags`.
pub fn link_create_xdp(prog: BorrowedFd<'_>, ifindex: u32, flags: u32) -> io::Result<OwnedFd> {
    let mut attr = zeroed_attr();
    attr.link_create.__bindgen_anon_1.prog_fd = prog.as_raw_fd() as u32;
    attr.link_create.__bindgen_anon_2.target_ifindex = ifindex;
    attr.link_create.attach_type = bpf_attach_type::BPF_XDP as u32;
    attr.link_create.flags = flags;
    // SAFETY: no pointers in attr; `prog` is a live fd.
    let fd = unsafe { bpf(bpf_cmd::BPF_LINK_CREATE, &mut attr) }?;
    Ok(owned(fd))
}

/// Where a tcx program goes among the programs of its hook (the kernel's
/// multi-program API: `BPF_F_BEFORE`/`BPF_F_AFTER`, relative to a program
/// or a link by id).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TcxPlace {
    /// Before every other.
    First,
    /// After every other (the kernel's default).
    Last,
    /// Right before program (or, `link`, the link) `id`.
    Before { id: u32, link: bool },
    /// Right after program (or link) `id`.
    After { id: u32, link: bool },
}

/// The attach type of tcx egress, or ingress.
pub fn tcx_attach_type(egress: bool) -> bpf_attach_type {
    if egress {
        bpf_attach_type::BPF_TCX_EGRESS
    } else {
        bpf_attach_type::BPF_TCX_INGRESS
    }
}

/// Attaches a `sched_cls` program at tcx ingress or egress of `ifindex`
/// with a bpf_link (`BPF_LINK_CREATE`), at `place`; `expected_revision`
/// (non-zero) makes the kernel refuse (ESTALE) if the hook changed since.
pub fn link_create_tcx(
    prog: BorrowedFd<'_>,
    ifindex: u32,
    egress: bool,
    place: TcxPlace,
    expected_revision: u64,
) -> io::Result<OwnedFd> {
    use aya_obj::generated::{BPF_F_AFTER, BPF_F_BEFORE, BPF_F_ID, BPF_F_LINK};
    let mut attr = zeroed_attr();
    attr.link_create.__bindgen_anon_1.prog_fd = prog.as_raw_fd() as u32;
    attr.link_create.__bindgen_anon_2.target_ifindex = ifindex;
    attr.link_create.attach_type = tcx_attach_type(egress) as u32;
    let (flags, relative) = match place {
        TcxPlace::First => (BPF_F_BEFORE, 0),
        TcxPlace::Last => (BPF_F_AFTER, 0),
        TcxPlace::Before { id, link } => (
            BPF_F_BEFORE | BPF_F_ID | if link { BPF_F_LINK } else { 0 },
            id,
        ),
        TcxPlace::After { id, link } => (
            BPF_F_AFTER | BPF_F_ID | if link { BPF_F_LINK } else { 0 },
            id,
        ),
    };
    attr.link_create.flags = flags;
    attr.link_create
        .__bindgen_anon_3
        .tcx
        .__bindgen_anon_1
        .relative_id = relative;
    attr.link_create.__bindgen_anon_3.tcx.expected_revision = expected_revision;
    // SAFETY: no pointers in attr; `prog` is a live fd.
    let fd = unsafe { bpf(bpf_cmd::BPF_LINK_CREATE, &mut attr) }?;
    Ok(owned(fd))
}

/// Swaps the program of a link atomically (`BPF_LINK_UPDATE`); with `old`,
/// only if the link still runs that program (`BPF_F_REPLACE`).
pub fn link_update(
    link: BorrowedFd<'_>,
    new: BorrowedFd<'_>,
    old: Option<BorrowedFd<'_>>,
) -> io::Result<()> {
    let mut attr = zeroed_attr();
    attr.link_update.link_fd = link.as_raw_fd() as u32;
    attr.link_update.__bindgen_anon_1.new_prog_fd = new.as_raw_fd() as u32;
    if let Some(old) = old {
        attr.link_update.flags = aya_obj::generated::BPF_F_REPLACE;
        attr.link_update.__bindgen_anon_2.old_prog_fd = old.as_raw_fd() as u32;
    }
    // SAFETY: no pointers in attr; the fds are live.
    unsafe { bpf(bpf_cmd::BPF_LINK_UPDATE, &mut attr) }?;
    Ok(())
}

/// Detaches a link from its hook (`BPF_LINK_DETACH`), even while other fds
/// or pins still hold the link object.
pub fn link_detach(link: BorrowedFd<'_>) -> io::Result<()> {
    let mut attr = zeroed_attr();
    attr.link_detach.link_fd = link.as_raw_fd() as u32;
    // SAFETY: no pointers in attr; the fd is live.
    unsafe { bpf(bpf_cmd::BPF_LINK_DETACH, &mut attr) }?;
    Ok(())
}

/// Where a `BPF_PROG_QUERY` looks.
#[derive(Clone, Copy, Debug)]
pub enum QueryTarget<'a> {
    /// A network device.
    Ifindex(u32),
    /// An object by fd (a network namespace for the flow dissector).
    Fd(BorrowedFd<'a>),
}

/// Programs (and links, where the hook has them) attached at a hook, in
/// order (`BPF_PROG_QUERY`).
pub fn prog_query(
    target: QueryTarget<'_>,
    attach_type: bpf_attach_type,
) -> io::Result<(Vec<u32>, Vec<u32>)> {
    prog_query_full(target, attach_type).map(|(p, l, _)| (p, l))
}

/// The programs of a device's multi-program hook (tcx) in run order, and
/// the hook's revision (what `--expected-revision` compares with).
pub fn prog_query_revision(
    ifindex: u32,
    attach_type: bpf_attach_type,
) -> io::Result<(Vec<u32>, u64)> {
    prog_query_full(QueryTarget::Ifindex(ifindex), attach_type).map(|(p, _, r)| (p, r))
}

/// [`prog_query`], and the hook's revision.
pub fn prog_query_full(
    target: QueryTarget<'_>,
    attach_type: bpf_attach_type,
) -> io::Result<(Vec<u32>, Vec<u32>, u64)> {
    const MAX: usize = 64;
    let mut prog_ids = vec![0u32; MAX];
    let mut link_ids = vec![0u32; MAX];
    let mut attr = zeroed_attr();
    match target {
        QueryTarget::Ifindex(ifindex) => attr.query.__bindgen_anon_1.target_ifindex = ifindex,
        QueryTarget::Fd(fd) => attr.query.__bindgen_anon_1.target_fd = fd.as_raw_fd() as u32,
    }
    attr.query.attach_type = attach_type as u32;
    attr.query.prog_ids = prog_ids.as_mut_ptr() as u64;
    attr.query.__bindgen_anon_2.prog_cnt = MAX as u32;
    let with_links = matches!(
        attach_type,
        bpf_attach_type::BPF_TCX_INGRESS | bpf_attach_type::BPF_TCX_EGRESS
    );
    if with_links {
        attr.query.link_ids = link_ids.as_mut_ptr() as u64;
    }
    // SAFETY: both id buffers hold prog_cnt (MAX) u32s and outlive the call.
    unsafe { bpf(bpf_cmd::BPF_PROG_QUERY, &mut attr) }?;
    // SAFETY: the kernel wrote the count into this member.
    let count = (unsafe { attr.query.__bindgen_anon_2.prog_cnt } as usize).min(MAX);
    prog_ids.truncate(count);
    link_ids.truncate(if with_links { count } else { 0 });
    // SAFETY: the kernel wrote the revision into this member.
    let revision = unsafe { attr.query.revision };
    Ok((prog_ids, link_ids, revision))
}

/// `BPF_ANY`, `BPF_NOEXIST`, `BPF_EXIST`: when an update may write.
pub mod update_flags {
    use aya_obj::generated as g;
    /// Create or overwrite.
    pub const ANY: u64 = g::BPF_ANY as u64;
    /// Only create.
    pub const NOEXIST: u64 = g::BPF_NOEXIST as u64;
    /// Only overwrite.
    pub const EXIST: u64 = g::BPF_EXIST as u64;
}

fn elem_attr(map: BorrowedFd<'_>, key: *const u8, value: *mut u8, flags: u64) -> bpf_attr {
    let mut attr = zeroed_attr();
    attr.__bindgen_anon_2.map_fd = map.as_raw_fd() as u32;
    attr.__bindgen_anon_2.key = key as u64;
    attr.__bindgen_anon_2.__bindgen_anon_1.value = value as u64;
    attr.__bindgen_anon_2.flags = flags;
    attr
}

// NB: the element calls below trust their buffers' lengths; only
// `MapHandle`, which checks them against the map's info first, calls them.

/// Looks `key` up into `value`; `Ok(false)` when absent.
pub(super) fn map_lookup(map: BorrowedFd<'_>, key: &[u8], value: &mut [u8]) -> io::Result<bool> {
    let mut attr = elem_attr(map, key.as_ptr(), value.as_mut_ptr(), 0);
    // SAFETY: MapHandle checked key and value against the map's sizes.
    match unsafe { bpf(bpf_cmd::BPF_MAP_LOOKUP_ELEM, &mut attr) } {
        Ok(_) => Ok(true),
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => Ok(false),
        Err(e) => Err(e),
    }
}

/// Writes one element (`BPF_MAP_UPDATE_ELEM`).
pub(super) fn map_update(
    map: BorrowedFd<'_>,
    key: &[u8],
    value: &[u8],
    flags: u64,
) -> io::Result<()> {
    let mut attr = elem_attr(map, key.as_ptr(), value.as_ptr() as *mut u8, flags);
    // SAFETY: MapHandle checked key and value against the map's sizes; the
    // kernel only reads them.
    unsafe { bpf(bpf_cmd::BPF_MAP_UPDATE_ELEM, &mut attr) }.map(drop)
}

/// Deletes one element; `Ok(false)` when it was absent.
pub(super) fn map_delete(map: BorrowedFd<'_>, key: &[u8]) -> io::Result<bool> {
    let mut attr = elem_attr(map, key.as_ptr(), std::ptr::null_mut(), 0);
    // SAFETY: MapHandle checked the key against the map's key size.
    match unsafe { bpf(bpf_cmd::BPF_MAP_DELETE_ELEM, &mut attr) } {
        Ok(_) => Ok(true),
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => Ok(false),
        Err(e) => Err(e),
    }
}

/// The next element of a queue or stack, left in place (a lookup without
/// a key is a peek); `Ok(false)` when it is empty.
pub(super) fn map_peek(map: BorrowedFd<'_>, value: &mut [u8]) -> io::Result<bool> {
    let mut attr = elem_attr(map, std::ptr::null(), value.as_mut_ptr(), 0);
    // SAFETY: MapHandle checked the value against the map's value size.
    match unsafe { bpf(bpf_cmd::BPF_MAP_LOOKUP_ELEM, &mut attr) } {
        Ok(_) => Ok(true),
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => Ok(false),
        Err(e) => Err(e),
    }
}

/// A ring buffer's consumer and producer positions, read from its first
/// two pages mapped read-only: nothing is consumed.
pub(super) fn ringbuf_positions(map: BorrowedFd<'_>) -> io::Result<(u64, u64)> {
    // SAFETY: sysconf has no preconditions.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) } as usize;
    let read_at = |offset: usize| -> io::Result<u64> {
        // SAFETY: a fresh read-only shared mapping of one page of the map,
        // unmapped below; the kernel keeps the position at its start.
        unsafe {
            let p = libc::mmap(
                std::ptr::null_mut(),
                page,
                libc::PROT_READ,
                libc::MAP_SHARED,
                map.as_raw_fd(),
                offset as libc::off_t,
            );
            if p == libc::MAP_FAILED {
                return Err(io::Error::last_os_error());
            }
            let v = std::ptr::read_volatile(p as *const u64);
            libc::munmap(p, page);
            Ok(v)
        }
    };
    Ok((read_at(0)?, read_at(page)?))
}

/// The name of the device with this index in this network namespace.
pub fn ifname(ifindex: u32) -> Option<String> {
    let mut buf = [0 as libc::c_char; libc::IF_NAMESIZE];
    // SAFETY: buf holds IF_NAMESIZE bytes, as if_indextoname needs.
    let p = unsafe { libc::if_indextoname(ifindex, buf.as_mut_ptr()) };
    (!p.is_null()).then(|| c_name(&buf))
}

/// The key after `key` (the first key with `None`); `Ok(false)` at the end.
pub(super) fn map_next_key(
    map: BorrowedFd<'_>,
    key: Option<&[u8]>,
    next: &mut [u8],
) -> io::Result<bool> {
    let key = key.map_or(std::ptr::null(), <[u8]>::as_ptr);
    let mut attr = elem_attr(map, key, next.as_mut_ptr(), 0);
    // SAFETY: MapHandle checked both buffers against the key size.
    match unsafe { bpf(bpf_cmd::BPF_MAP_GET_NEXT_KEY, &mut attr) } {
        Ok(_) => Ok(true),
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => Ok(false),
        Err(e) => Err(e),
    }
}

/// One `BPF_MAP_LOOKUP_BATCH` call: fills up to `count` keys and values,
/// continuing from `token` (`None` to start), and returns how many it
/// filled and whether the map is exhausted.
pub(super) fn map_lookup_batch(
    map: BorrowedFd<'_>,
    token: Option<&[u8]>,
    next: &mut [u8],
    keys: &mut [u8],
    values: &mut [u8],
    count: u32,
) -> io::Result<(u32, bool)> {
    let mut attr = zeroed_attr();
    attr.batch.in_batch = token.map_or(0, |t| t.as_ptr() as u64);
    attr.batch.out_batch = next.as_mut_ptr() as u64;
    attr.batch.keys = keys.as_mut_ptr() as u64;
    attr.batch.values = values.as_mut_ptr() as u64;
    attr.batch.count = count;
    attr.batch.map_fd = map.as_raw_fd() as u32;
    // SAFETY: MapHandle checked that keys and values hold `count` elements
    // and that the cursors hold a key (and at least 8 bytes).
    let result = unsafe { bpf(bpf_cmd::BPF_MAP_LOOKUP_BATCH, &mut attr) };
    // SAFETY: the kernel wrote back how many elements it filled.
    let filled = unsafe { attr.batch.count };
    match result {
        Ok(_) => Ok((filled, false)),
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => Ok((filled, true)),
        Err(e) => Err(e),
    }
}

/// `BPF_MAP_UPDATE_BATCH` of `count` packed keys and values; returns how
/// many were written before an error, with the error.
pub(super) fn map_update_batch(
    map: BorrowedFd<'_>,
    keys: &[u8],
    values: &[u8],
    count: u32,
    flags: u64,
) -> (u32, io::Result<()>) {
    let mut attr = zeroed_attr();
    attr.batch.keys = keys.as_ptr() as u64;
    attr.batch.values = values.as_ptr() as u64;
    attr.batch.count = count;
    attr.batch.map_fd = map.as_raw_fd() as u32;
    attr.batch.elem_flags = flags;
    // SAFETY: MapHandle checked that keys and values hold `count` elements;
    // the kernel only reads them.
    let result = unsafe { bpf(bpf_cmd::BPF_MAP_UPDATE_BATCH, &mut attr) };
    // SAFETY: the kernel wrote back how many elements it wrote.
    let written = unsafe { attr.batch.count };
    match result {
        Ok(_) => (count, Ok(())),
        Err(e) => (written, Err(e)),
    }
}

/// Creates a map (`BPF_MAP_CREATE`) of this type and these sizes.
pub fn map_create(
    map_type: aya_obj::generated::bpf_map_type,
    name: &str,
    key_size: u32,
    value_size: u32,
    max_entries: u32,
) -> io::Result<OwnedFd> {
    let mut attr = zeroed_attr();
    // SAFETY: a zeroed bpf_attr is a valid value of every member.
    let create = unsafe { &mut attr.__bindgen_anon_1 };
    create.map_type = map_type as u32;
    create.key_size = key_size;
    create.value_size = value_size;
    create.max_entries = max_entries;
    for (dst, src) in create.map_name.iter_mut().zip(name.bytes().take(15)) {
        *dst = src as libc::c_char;
    }
    // SAFETY: no pointers in attr.
    let fd = unsafe { bpf(bpf_cmd::BPF_MAP_CREATE, &mut attr) }?;
    Ok(owned(fd))
}

/// Loads BTF into the kernel (`BPF_BTF_LOAD`).
pub fn btf_load(data: &[u8]) -> io::Result<OwnedFd> {
    let mut attr = zeroed_attr();
    // SAFETY: a zeroed bpf_attr is a valid value of every member.
    let load = unsafe { &mut attr.__bindgen_anon_7 };
    load.btf = data.as_ptr() as u64;
    load.btf_size =
        u32::try_from(data.len()).map_err(|_| io::Error::from_raw_os_error(libc::E2BIG))?;
    // SAFETY: `data` outlives the call; the kernel only reads it.
    let fd = unsafe { bpf(bpf_cmd::BPF_BTF_LOAD, &mut attr) }?;
    Ok(owned(fd))
}

/// What [`map_create_typed`] creates.
#[derive(Debug)]
pub struct MapSpec<'a> {
    /// `bpf_map_type`.
    pub map_type: u32,
    /// The kernel's name (15 bytes are kept).
    pub name: &'a str,
    /// Key bytes.
    pub key_size: u32,
    /// Value bytes.
    pub value_size: u32,
    /// Capacity.
    pub max_entries: u32,
    /// `map_flags`.
    pub flags: u32,
    /// The BTF the types are in.
    pub btf: BorrowedFd<'a>,
    /// Key type id (0: none, as for global data).
    pub key_type: u32,
    /// Value type id.
    pub value_type: u32,
}

/// Creates a map whose key and value types are in `spec.btf`, as libbpf
/// does, so every tool that reads the map sees its types.
pub fn map_create_typed(spec: &MapSpec<'_>) -> io::Result<OwnedFd> {
    let mut attr = zeroed_attr();
    // SAFETY: a zeroed bpf_attr is a valid value of every member.
    let create = unsafe { &mut attr.__bindgen_anon_1 };
    create.map_type = spec.map_type;
    create.key_size = spec.key_size;
    create.value_size = spec.value_size;
    create.max_entries = spec.max_entries;
    create.map_flags = spec.flags;
    create.btf_fd = spec.btf.as_raw_fd() as u32;
    create.btf_key_type_id = spec.key_type;
    create.btf_value_type_id = spec.value_type;
    for (dst, src) in create.map_name.iter_mut().zip(spec.name.bytes().take(15)) {
        *dst = src as libc::c_char;
    }
    // SAFETY: no pointers in attr; the BTF fd is open for the call.
    let fd = unsafe { bpf(bpf_cmd::BPF_MAP_CREATE, &mut attr) }?;
    Ok(owned(fd))
}

/// What one `BPF_PROG_TEST_RUN` returned.
#[derive(Debug)]
pub struct TestRun {
    /// The program's return value (the XDP verdict).
    pub retval: u32,
    /// Average nanoseconds per run, as the kernel measured it.
    pub duration_ns: u32,
    /// The packet after the program (it may have changed it).
    pub data_out: Vec<u8>,
}

/// Runs a program `repeat` times on `data` in the kernel
/// (`BPF_PROG_TEST_RUN`), with its real maps.
pub fn prog_test_run(prog: BorrowedFd<'_>, data: &[u8], repeat: u32) -> io::Result<TestRun> {
    // Room for programs that grow the packet (bpf_xdp_adjust_tail).
    let mut out = vec![0u8; data.len() + 4096];
    let mut attr = zeroed_attr();
    attr.test.prog_fd = prog.as_raw_fd() as u32;
    attr.test.data_in = data.as_ptr() as u64;
    attr.test.data_size_in = data.len() as u32;
    attr.test.data_out = out.as_mut_ptr() as u64;
    attr.test.data_size_out = out.len() as u32;
    attr.test.repeat = repeat;
    // SAFETY: data_in and data_out point at live buffers of the sizes given.
    unsafe { bpf(bpf_cmd::BPF_PROG_TEST_RUN, &mut attr) }?;
    // SAFETY: the kernel filled these in.
    let (retval, duration, size) = unsafe {
        (
            attr.test.retval,
            attr.test.duration,
            attr.test.data_size_out,
        )
    };
    out.truncate(size as usize);
    Ok(TestRun {
        retval,
        duration_ns: duration,
        data_out: out,
    })
}

/// Number of possible CPUs: per-CPU map values hold one slot for each.
pub fn possible_cpus() -> io::Result<usize> {
    let text = std::fs::read_to_string("/sys/devices/system/cpu/possible")?;
    let mut n = 0;
    for part in text.trim().split(',') {
        let (lo, hi) = part.split_once('-').unwrap_or((part, part));
        let lo: usize = lo
            .parse()
            .map_err(|_| io::Error::other("bad /sys/devices/system/cpu/possible"))?;
        let hi: usize = hi
            .parse()
            .map_err(|_| io::Error::other("bad /sys/devices/system/cpu/possible"))?;
        n = n.max(hi + 1).max(lo + 1);
    }
    Ok(n)
}

/// The text of an errno, without io::Error's "(os error N)" suffix.
pub fn errno_text(errno: i32) -> String {
    let text = io::Error::from_raw_os_error(errno).to_string();
    match text.rfind(" (os error ") {
        Some(at) => text[..at].to_owned(),
        None => text,
    }
}

/// A NUL-padded kernel object name as a string.
pub fn c_name(name: &[libc::c_char]) -> String {
    let bytes: Vec<u8> = name
        .iter()
        .take_while(|&&c| c != 0)
        .map(|&c| c as u8)
        .collect();
    String::from_utf8_lossy(&bytes).into_owned()
}

/// The kernel's name for a program type, as bpftool prints it.
pub fn prog_type_name(t: u32) -> String {
    const NAMES: &[&str] = &[
        "unspec",
        "socket_filter",
        "kprobe",
        "sched_cls",
        "sched_act",
        "tracepoint",
        "xdp",
        "perf_event",
        "cgroup_skb",
        "cgroup_sock",
        "lwt_in",
        "lwt_out",
        "lwt_xmit",
        "sock_ops",
        "sk_skb",
        "cgroup_device",
        "sk_msg",
        "raw_tracepoint",
        "cgroup_sock_addr",
        "lwt_seg6local",
        "lirc_mode2",
        "sk_reuseport",
        "flow_dissector",
        "cgroup_sysctl",
        "raw_tracepoint_writable",
        "cgroup_sockopt",
        "tracing",
        "struct_ops",
        "ext",
        "lsm",
        "sk_lookup",
        "syscall",
        "netfilter",
    ];
    NAMES
        .get(t as usize)
        .map_or_else(|| format!("type {t}"), |s| (*s).to_owned())
}

/// The kernel's name for a map type, as bpftool prints it.
pub fn map_type_name(t: u32) -> String {
    const NAMES: &[&str] = &[
        "unspec",
        "hash",
        "array",
        "prog_array",
        "perf_event_array",
        "percpu_hash",
        "percpu_array",
        "stack_trace",
        "cgroup_array",
        "lru_hash",
        "lru_percpu_hash",
        "lpm_trie",
        "array_of_maps",
        "hash_of_maps",
        "devmap",
        "sockmap",
        "cpumap",
        "xskmap",
        "sockhash",
        "cgroup_storage",
        "reuseport_sockarray",
        "percpu_cgroup_storage",
        "queue",
        "stack",
        "sk_storage",
        "devmap_hash",
        "struct_ops",
        "ringbuf",
        "inode_storage",
        "task_storage",
        "bloom_filter",
        "user_ringbuf",
        "cgrp_storage",
        "arena",
    ];
    NAMES
        .get(t as usize)
        .map_or_else(|| format!("type {t}"), |s| (*s).to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn type_names_follow_the_uapi_numbering() {
        assert_eq!(prog_type_name(6), "xdp");
        assert_eq!(prog_type_name(3), "sched_cls");
        assert_eq!(prog_type_name(99), "type 99");
        assert_eq!(map_type_name(1), "hash");
        assert_eq!(map_type_name(10), "lru_percpu_hash");
        assert_eq!(map_type_name(6), "percpu_array");
    }

    #[test]
    fn c_names_stop_at_nul() {
        let raw: [libc::c_char; 6] = [b'x' as _, b'd' as _, b'p' as _, 0, b'z' as _, 0];
        assert_eq!(c_name(&raw), "xdp");
    }
}
