//! `xdpctl prog`: programs.

use std::os::fd::AsFd;

use anyhow::{Context as _, Result, bail};
use serde::Serialize;

use crate::{
    cli::{Handle, ProgCommand},
    ctx::Ctx,
    kernel::sys,
    ops::progs::{self, Program},
    render::{self, Tabular},
};

impl Tabular for Program {
    const HEADERS: &'static [&'static str] = &[
        "ID", "TYPE", "NAME", "LOADED", "XLATED", "JITED", "MEMLOCK", "TAG", "MAPS", "PINNED",
        "PIDS",
    ];
    // NB: the firewall's map ids alone take more than 80 characters.
    const OPTIONAL: &'static [&'static str] =
        &["MAPS", "TAG", "PIDS", "MEMLOCK", "XLATED", "LOADED"];
    fn cells(&self, view: &render::View) -> Vec<String> {
        vec![
            self.id.to_string(),
            self.type_.clone(),
            self.name.clone(),
            self.loaded.clone(),
            self.bytes_xlated.to_string(),
            self.bytes_jited.to_string(),
            self.bytes_memlock.to_string(),
            self.tag.clone(),
            render::list(&self.map_ids),
            view.paths(&self.pinned),
            self.pids
                .iter()
                .map(|h| format!("{}({})", h.comm, h.pid))
                .collect::<Vec<_>>()
                .join(","),
        ]
    }
}

/// `xdpctl prog ...`.
pub fn run(ctx: &Ctx, cmd: &ProgCommand) -> Result<()> {
    match cmd {
        ProgCommand::Show { handle } => show(ctx, handle.as_ref()),
        // main dispatches it to cmd::progtop (no command calls another).
        ProgCommand::Top(_) => unreachable!("prog top is dispatched by main"),
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
    // A program behind it in its chain runs too, and decides what it passes.
    let behind = crate::ops::chain::next_of_prog(prog.id);
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
    if let Some(next) = behind {
        ctx.out.note(format_args!(
            "note: what {label} passed went on to program {next} behind it in its chain (xdpctl \
             chain), which ran on its own maps: the verdict of a passed packet is that program's"
        ));
    }
    ctx.out.result(&rows)?;
    Ok(())
}

fn show(ctx: &Ctx, handle: Option<&Handle>) -> Result<()> {
    ctx.out.result(&progs::show(ctx, handle)?)?;
    Ok(())
}
