//! Programs as `prog show` and `prog top` see them: everything bpftool's
//! `prog show` prints, and the processes that hold each one.

use std::{
    collections::HashMap,
    os::fd::{AsFd, BorrowedFd},
    path::PathBuf,
};

use anyhow::Result;
use pinfs::Kind;
use serde::Serialize;

use crate::{
    ctx::{Ctx, PinIndex},
    kernel::{
        clock,
        holders::{self, Holder},
        objects,
        sys::{self, IdKind},
    },
    model::handle::Handle,
};

/// One program. The JSON field names are bpftool's (`bpftool -j prog
/// show`) where it prints the same thing.
#[derive(Clone, Debug, Serialize)]
pub struct Program {
    /// Kernel id.
    pub id: u32,
    /// Program type (`xdp`, `sched_cls`, ...).
    #[serde(rename = "type")]
    pub type_: String,
    /// The kernel's name (15 characters at most).
    pub name: String,
    /// The program tag (hash of its instructions), hex.
    pub tag: String,
    /// Whether it is GPL compatible.
    pub gpl_compatible: bool,
    /// Unix time it was loaded at, in seconds.
    pub loaded_at: u64,
    /// The same, RFC 3339 UTC.
    pub loaded: String,
    /// The uid that loaded it.
    pub uid: u32,
    /// Bytes of its instructions after the verifier's rewrites.
    pub bytes_xlated: u32,
    /// Whether it is JIT-compiled.
    pub jited: bool,
    /// Bytes of its machine code.
    pub bytes_jited: u32,
    /// Bytes charged to memlock.
    pub bytes_memlock: u64,
    /// Instructions the verifier processed to load it.
    pub verified_insns: u32,
    /// Ids of the maps it uses.
    pub map_ids: Vec<u32>,
    /// BTF object id, 0 if none.
    pub btf_id: u32,
    /// Nanoseconds spent running it while statistics were on (see `prog top`).
    pub run_time_ns: u64,
    /// Runs counted while statistics were on.
    pub run_cnt: u64,
    /// Where it is pinned (absolute paths).
    pub pinned: Vec<PathBuf>,
    /// The processes that hold it open.
    pub pids: Vec<Holder>,
}

/// Unix time in seconds of a `load_time` (ns since boot), computed as
/// bpftool computes it: wall clock minus boot clock, in nanoseconds, plus
/// the load time, then whole seconds.
fn loaded_at(load_time: u64) -> u64 {
    let boot = clock::unix_offset_ns(nix::time::ClockId::CLOCK_BOOTTIME);
    u64::try_from((boot + i128::from(load_time)) / 1_000_000_000).unwrap_or(0)
}

fn describe(
    fd: BorrowedFd<'_>,
    pins: &PinIndex,
    holders: &HashMap<u32, Vec<Holder>>,
) -> std::io::Result<Program> {
    let (info, map_ids) = sys::prog_info(fd)?;
    let loaded_at = loaded_at(info.load_time);
    Ok(Program {
        id: info.id,
        type_: sys::prog_type_name(info.type_),
        name: sys::c_name(&info.name),
        tag: info.tag.iter().map(|b| format!("{b:02x}")).collect(),
        gpl_compatible: info.gpl_compatible() != 0,
        loaded_at,
        loaded: clock::rfc3339(loaded_at * 1000),
        uid: info.created_by_uid,
        bytes_xlated: info.xlated_prog_len,
        jited: info.jited_prog_len > 0,
        bytes_jited: info.jited_prog_len,
        bytes_memlock: sys::memlock(fd).unwrap_or(0),
        verified_insns: info.verified_insns,
        map_ids,
        btf_id: info.btf_id,
        run_time_ns: info.run_time_ns,
        run_cnt: info.run_cnt,
        pinned: pins
            .get(&(Kind::Prog, info.id))
            .cloned()
            .unwrap_or_default(),
        pids: holders.get(&info.id).cloned().unwrap_or_default(),
    })
}

/// The program `handle` names, or every program.
pub fn show(ctx: &Ctx, handle: Option<&Handle>) -> Result<Vec<Program>> {
    let pins = ctx.pin_index()?;
    let held = holders::programs();
    match handle {
        Some(handle) => {
            let fd = objects::resolve(&ctx.bpffs, handle, Kind::Prog)?.0;
            Ok(vec![describe(fd.as_fd(), &pins, &held)?])
        }
        None => {
            let mut out = Vec::new();
            for id in sys::ids(IdKind::Prog)? {
                // A program can go away between listing and opening it.
                let Ok(fd) = sys::fd_by_id(IdKind::Prog, id) else {
                    continue;
                };
                out.push(describe(fd.as_fd(), &pins, &held)?);
            }
            Ok(out)
        }
    }
}

/// Run time and runs of a program, as the kernel counts them while
/// statistics are on.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RunTime {
    /// Nanoseconds.
    pub ns: u64,
    /// Runs.
    pub runs: u64,
}

/// Run time and runs of every program (or those of `only`), with their
/// names and types.
pub fn run_times(only: Option<&[u32]>) -> Result<HashMap<u32, (String, String, RunTime)>> {
    let mut out = HashMap::new();
    let ids = match only {
        Some(ids) => ids.to_vec(),
        None => sys::ids(IdKind::Prog)?,
    };
    for id in ids {
        let Ok(fd) = sys::fd_by_id(IdKind::Prog, id) else {
            continue;
        };
        let Ok((info, _)) = sys::prog_info(fd.as_fd()) else {
            continue;
        };
        out.insert(
            id,
            (
                sys::c_name(&info.name),
                sys::prog_type_name(info.type_),
                RunTime {
                    ns: info.run_time_ns,
                    runs: info.run_cnt,
                },
            ),
        );
    }
    Ok(out)
}

/// The id of the program `handle` names: a pin, a load directory (its
/// one program), an id or a name, as `attach` and `prog run` take them.
pub fn id_of(ctx: &Ctx, handle: &Handle) -> Result<u32> {
    Ok(super::attach::resolve_prog(ctx, handle)?.id)
}
