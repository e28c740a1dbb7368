//! `xdpctl prog`: programs.

use std::{os::fd::AsFd, path::PathBuf};

use anyhow::{Context as _, Result, bail};
use pinfs::Kind;
use serde::Serialize;

use crate::{
    cli::{Handle, ProgCommand},
    ctx::{Ctx, PinIndex},
    kernel::objects,
    kernel::sys::{self, IdKind},
    render::{self, Tabular},
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
    // NB: the firewall's eleven map ids alone take 65 characters.
    const OPTIONAL: &'static [&'static str] = &["MAPS", "TAG"];
    fn cells(&self, view: &render::View) -> Vec<String> {
        vec![
            self.id.to_string(),
            self.type_.clone(),
            self.name.clone(),
            self.tag.clone(),
            render::list(&self.map_ids),
            view.paths(&self.pinned),
        ]
    }
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
        ProgCommand::Run(args) => test_run(ctx, args),
    }
}

/// The name of an XDP verdict.
fn verdict_name(v: u32) -> String {
    match v {
        0 => "XDP_ABORTED".into(),
        1 => "XDP_DROP".into(),
        2 => "XDP_PASS".into(),
        3 => "XDP_TX".into(),
        4 => "XDP_REDIRECT".into(),
        other => format!("verdict {other}"),
    }
}

/// One test run, as `prog run` prints it.
#[derive(Debug, Serialize)]
pub struct RunRow {
    /// Which packet (from 1; a pcap may hold several).
    pub packet: usize,
    /// The verdict's name.
    pub verdict: String,
    /// The program's return value.
    pub retval: u32,
    /// Average nanoseconds per run, as the kernel measured it.
    pub ns_per_run: u32,
    /// Runs.
    pub repeat: u32,
    /// Bytes in.
    pub len: usize,
    /// Whether the program changed the packet.
    pub modified: bool,
    /// The packet it returned, hex, when it changed it.
    pub data_out_hex: Option<String>,
}

impl Tabular for RunRow {
    const HEADERS: &'static [&'static str] =
        &["PACKET", "VERDICT", "NS/RUN", "RUNS", "LEN", "OUTPUT"];
    fn cells(&self, _view: &render::View) -> Vec<String> {
        vec![
            self.packet.to_string(),
            self.verdict.clone(),
            self.ns_per_run.to_string(),
            self.repeat.to_string(),
            self.len.to_string(),
            self.data_out_hex
                .clone()
                .unwrap_or_else(|| "unchanged".into()),
        ]
    }
}

fn test_run(ctx: &Ctx, args: &crate::cli::RunArgs) -> Result<()> {
    let packets = match (&args.packet, &args.data) {
        (Some(spec), _) => vec![spec.build()],
        (None, Some(file)) => {
            let bytes =
                std::fs::read(file).with_context(|| format!("cannot read {}", file.display()))?;
            crate::model::packet::from_file(&bytes)
                .map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?
        }
        (None, None) => bail!("give --packet SPEC or --data FILE"),
    };
    // The same program handles as attach: a pin, a load directory, an id or a name.
    let prog = crate::ops::attach::resolve_prog(ctx, &args.prog)?;
    let (fd, label) = (prog.fd, format!("program {} ({})", prog.id, prog.name));
    // Every packet is checked before the first run: a run counts in the
    // program's maps, so a refusal halfway would leave some counted.
    // NB: the kernel runs an XDP test on one page: 4096 bytes less its
    // headroom (256) and the skb_shared_info it reserves (320).
    const MAX_LEN: usize = 3520;
    for (i, data) in packets.iter().enumerate() {
        if data.len() < 14 {
            bail!(
                "packet {} has {} bytes; XDP needs at least an Ethernet header (14)",
                i + 1,
                data.len()
            );
        }
        if data.len() > MAX_LEN {
            bail!(
                "packet {} has {} bytes; an XDP test run takes at most {MAX_LEN} (one page less \
                 headroom); cut the frame shorter",
                i + 1,
                data.len()
            );
        }
    }
    let mut rows = Vec::new();
    for (i, data) in packets.iter().enumerate() {
        let r = sys::prog_test_run(fd.as_fd(), data, args.repeat)
            .with_context(|| format!("running {label} on packet {}", i + 1))?;
        let modified = r.data_out != *data;
        rows.push(RunRow {
            packet: i + 1,
            verdict: verdict_name(r.retval),
            retval: r.retval,
            ns_per_run: r.duration_ns,
            repeat: args.repeat,
            len: data.len(),
            modified,
            data_out_hex: modified.then(|| crate::model::codec::hex(&r.data_out)),
        });
    }
    let runs = u64::from(args.repeat) * packets.len() as u64;
    ctx.out.note(format_args!(
        "note: {label} ran on its real maps; its counters now include {} of these packets",
        render::count(runs, "run", "runs")
    ));
    ctx.out.result(&rows)?;
    Ok(())
}

fn show(ctx: &Ctx, handle: Option<&Handle>) -> Result<()> {
    let pins = ctx.pin_index()?;
    let rows = match handle {
        Some(handle) => vec![row(
            objects::resolve(&ctx.bpffs, handle, Kind::Prog)?.0.as_fd(),
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
    ctx.out.result(&rows)?;
    Ok(())
}
