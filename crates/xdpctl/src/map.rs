//! `xdpctl map`: maps.

use std::{os::fd::AsFd, path::PathBuf};

use anyhow::Result;
use pinfs::Kind;
use serde::Serialize;

use crate::{
    cli::{Handle, MapCommand},
    ctx::{Ctx, PinIndex},
    describe,
    output::{self, Tabular},
    prog::pinned_cell,
    sys::{self, IdKind},
};

/// One map, as `map show` prints it.
#[derive(Debug, Serialize)]
pub struct MapRow {
    /// Kernel id.
    pub id: u32,
    /// Map type (`hash`, `lru_percpu_hash`, ...).
    #[serde(rename = "type")]
    pub type_: String,
    /// The kernel's name (15 characters at most).
    pub name: String,
    /// Key size in bytes.
    pub key_size: u32,
    /// Value size in bytes (per CPU for per-CPU maps).
    pub value_size: u32,
    /// Capacity.
    pub max_entries: u32,
    /// `map_flags` as given at creation.
    pub flags: u32,
    /// BTF object id, 0 if none.
    pub btf_id: u32,
    /// Where it is pinned under the bpffs root.
    pub pinned: Vec<PathBuf>,
}

impl Tabular for MapRow {
    const HEADERS: &'static [&'static str] = &[
        "ID",
        "TYPE",
        "NAME",
        "KEY",
        "VALUE",
        "MAX_ENTRIES",
        "FLAGS",
        "PINNED",
    ];
    fn cells(&self) -> Vec<String> {
        vec![
            self.id.to_string(),
            self.type_.clone(),
            self.name.clone(),
            format!("{}B", self.key_size),
            format!("{}B", self.value_size),
            self.max_entries.to_string(),
            format!("{:#x}", self.flags),
            pinned_cell(&self.pinned),
        ]
    }
}

fn row(fd: std::os::fd::BorrowedFd<'_>, pins: &PinIndex) -> std::io::Result<MapRow> {
    let info = sys::map_info(fd)?;
    Ok(MapRow {
        id: info.id,
        type_: sys::map_type_name(info.type_),
        name: sys::c_name(&info.name),
        key_size: info.key_size,
        value_size: info.value_size,
        max_entries: info.max_entries,
        flags: info.map_flags,
        btf_id: info.btf_id,
        pinned: pins.get(&(Kind::Map, info.id)).cloned().unwrap_or_default(),
    })
}

/// `xdpctl map ...`.
pub fn run(ctx: &Ctx, cmd: &MapCommand) -> Result<()> {
    match cmd {
        MapCommand::Show { handle } => show(ctx, handle.as_ref()),
    }
}

fn show(ctx: &Ctx, handle: Option<&Handle>) -> Result<()> {
    let pins = ctx.pin_index()?;
    let rows = match handle {
        Some(Handle::Id(id)) => vec![row(describe::open_id(IdKind::Map, *id)?.as_fd(), &pins)?],
        Some(Handle::Path(path)) => {
            vec![row(
                describe::open_pinned(&ctx.resolve(path), Kind::Map)?.as_fd(),
                &pins,
            )?]
        }
        None => {
            let mut rows = Vec::new();
            for id in sys::ids(IdKind::Map)? {
                let Ok(fd) = sys::fd_by_id(IdKind::Map, id) else {
                    continue;
                };
                rows.push(row(fd.as_fd(), &pins)?);
            }
            rows
        }
    };
    output::print(ctx.format, &rows)?;
    Ok(())
}
