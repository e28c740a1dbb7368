//! `xdpctl prog`: programs.

use std::{os::fd::AsFd, path::PathBuf};

use anyhow::Result;
use pinfs::Kind;
use serde::Serialize;

use crate::{
    cli::{Handle, ProgCommand},
    ctx::{Ctx, PinIndex},
    describe,
    output::{self, Tabular},
    sys::{self, IdKind},
};

/// One program, as `prog show` prints it.
#[derive(Debug, Serialize)]
pub struct ProgRow {
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
    /// BTF object id, 0 if none.
    pub btf_id: u32,
    /// Ids of the maps it uses.
    pub map_ids: Vec<u32>,
    /// Where it is pinned under the bpffs root.
    pub pinned: Vec<PathBuf>,
}

impl Tabular for ProgRow {
    const HEADERS: &'static [&'static str] = &["ID", "TYPE", "NAME", "TAG", "MAPS", "PINNED"];
    fn cells(&self) -> Vec<String> {
        vec![
            self.id.to_string(),
            self.type_.clone(),
            self.name.clone(),
            self.tag.clone(),
            output::list(&self.map_ids),
            pinned_cell(&self.pinned),
        ]
    }
}

/// Pinned paths for a table cell.
pub fn pinned_cell(paths: &[PathBuf]) -> String {
    output::list(
        &paths
            .iter()
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>(),
    )
}

/// Boot time in Unix seconds, to turn the kernel's monotonic load time into
/// wall-clock time.
fn boot_time() -> u64 {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let up = nix::time::clock_gettime(nix::time::ClockId::CLOCK_BOOTTIME)
        .map_or(0, |t| t.tv_sec() as u64);
    now.saturating_sub(up)
}

fn row(fd: std::os::fd::BorrowedFd<'_>, ctx_pins: &PinIndex) -> std::io::Result<ProgRow> {
    let (info, map_ids) = sys::prog_info(fd)?;
    Ok(ProgRow {
        id: info.id,
        type_: sys::prog_type_name(info.type_),
        name: sys::c_name(&info.name),
        tag: info.tag.iter().map(|b| format!("{b:02x}")).collect(),
        gpl_compatible: info.gpl_compatible() != 0,
        loaded_at: boot_time() + info.load_time / 1_000_000_000,
        btf_id: info.btf_id,
        map_ids,
        pinned: ctx_pins
            .get(&(Kind::Prog, info.id))
            .cloned()
            .unwrap_or_default(),
    })
}

/// `xdpctl prog ...`.
pub fn run(ctx: &Ctx, cmd: &ProgCommand) -> Result<()> {
    match cmd {
        ProgCommand::Show { handle } => show(ctx, handle.as_ref()),
    }
}

fn show(ctx: &Ctx, handle: Option<&Handle>) -> Result<()> {
    let pins = ctx.pin_index()?;
    let rows = match handle {
        Some(handle) => vec![row(
            describe::resolve(ctx, handle, Kind::Prog)?.0.as_fd(),
            &pins,
        )?],
        None => {
            let mut rows = Vec::new();
            for id in sys::ids(IdKind::Prog)? {
                // A program can go away between listing and opening it.
                let Ok(fd) = sys::fd_by_id(IdKind::Prog, id) else {
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
