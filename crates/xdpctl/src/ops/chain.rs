//! Chain: the XDP program a firewall hands the packets it passes to
//! (`xdpctl chain`). The firewall ends with a tail call through its
//! one-slot program array `chain`; setting the slot puts a program behind
//! it, on every device the firewall runs on, without detaching anything,
//! and swapping it is one atomic write. The slot holds the program itself:
//! `unload` of the program's load empties the slot first, and `load
//! --replace` of either end keeps the chain (the firewall's map carries
//! over; the next program's slot is switched with its links).
//!
//! Any load whose object has a one-slot `PROG_ARRAY` named `chain` and
//! tail-calls it can be chained this way, not only the built-in firewall.

use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result, bail};
use serde::Serialize;
use xdp_progs::xdpfw;

use crate::{
    ctx::Ctx,
    kernel::{chain, objects},
    model::{
        change::{Change, Step},
        handle::Handle,
        manifest::MAPS_SUBDIR,
    },
    ops::{self, attach, loaddir::LoadDir},
};

pub use crate::model::xdp::ProgRef;

/// Program `id` by its kernel name (`?` once it is gone).
fn prog_ref(id: u32) -> ProgRef {
    ProgRef {
        prog_id: id,
        prog_name: objects::describe(pinfs::Kind::Prog, id).map_or_else(|_| "?".into(), |d| d.name),
    }
}

/// A load's chain, as `xdpctl chain` shows it.
#[derive(Debug, Serialize)]
pub struct Chained {
    /// The load directory of the firewall.
    pub dir: PathBuf,
    /// Its chain map's pin.
    pub map: PathBuf,
    /// The program now behind it, if any.
    pub next: Option<ProgRef>,
    /// The one before this command, when it changed the chain (null
    /// otherwise).
    pub previous: Option<ProgRef>,
}

/// What to do with a load's chain.
pub enum Set<'a> {
    /// Show it.
    Show,
    /// Put this program behind the firewall (replacing any).
    Next(&'a Handle),
    /// Empty it: the firewall passes what it passes.
    Clear,
}

/// The chain map of the load at `dir`, or why it has none.
fn chain_map(dir: &LoadDir) -> Result<PathBuf> {
    let Some(entry) = dir.manifest.map(xdpfw::maps::CHAIN) else {
        let fix = if dir
            .manifest
            .programs
            .iter()
            .any(|p| p.name == xdpfw::PROGRAM)
        {
            format!(
                "it was loaded by an older xdpctl; upgrade it in place first (xdpctl load \
                 --replace --pin {})",
                dir.path.display()
            )
        } else {
            "only a load whose object has a one-slot PROG_ARRAY named chain, which its program \
             tail-calls, can be chained (the built-in firewall has one)"
                .to_owned()
        };
        bail!("{} has no chain map: {fix}", dir.path.display());
    };
    Ok(dir.path.join(MAPS_SUBDIR).join(&entry.pin))
}

/// The kernel id of the chain map of the load `dir`.
pub fn map_id(dir: &LoadDir) -> Result<u32> {
    let map = chain_map(dir)?;
    let handle =
        chain::open(&map)?.with_context(|| format!("{} is not a program array", map.display()))?;
    Ok(handle.info().id)
}

/// Shows or changes the chain of the load at `dir`.
pub fn chain(ctx: &Ctx, dir: &Path, set: Set<'_>) -> Result<Chained> {
    let load = LoadDir::open(&ctx.resolve(dir))?;
    let map = chain_map(&load)?;
    let handle = chain::open(&map)
        .with_context(|| format!("opening {}", map.display()))?
        .with_context(|| format!("{} is not a program array", map.display()))?;
    let read = || chain::next(&handle).with_context(|| format!("reading {}", map.display()));
    let next = match set {
        Set::Show => {
            return Ok(Chained {
                next: read()?.map(prog_ref),
                dir: load.path,
                map,
                previous: None,
            });
        }
        Set::Clear => None,
        Set::Next(h) => Some(attach::resolve_prog(ctx, h)?),
    };
    if let Some(p) = &next {
        refuse_loop(handle.info().id, p, &load.path)?;
    }
    let to = next.as_ref().map(|p| p.id);
    // Under the change lock, the slot read again: what another command
    // changed meanwhile is what this one replaces.
    let (mut journal, notes) = ops::begin(&map)?;
    ctx.out.notes(notes);
    let now = read()?;
    // Named now: a program only the chain held is gone once swapped out.
    let was = now.filter(|&n| Some(n) != to).map(prog_ref);
    if now != to {
        // One write, journaled like every change (a record left by a
        // command killed before it does nothing: the slot still holds what
        // it held, or already what it was to).
        let entry = journal.begin(Change::Steps {
            what: format!("chain of {}", load.path.display()),
            steps: vec![Step::ChainSwap {
                map: map.clone(),
                from: now,
                to,
            }],
        })?;
        // NB: set from the fd resolved here, not by the id the step names:
        // the same program, without a lookup by id in between.
        if let Err(e) = chain::set(
            &handle,
            next.as_ref().map(|p| std::os::fd::AsFd::as_fd(&p.fd)),
        ) {
            journal.abandon(entry, &[])?;
            return Err(refused(e, next.as_ref(), &load.path));
        }
        journal.finish(entry)?;
    }
    Ok(Chained {
        dir: load.path,
        map,
        next: next.map(|p| ProgRef {
            prog_id: p.id,
            prog_name: p.name,
        }),
        previous: was,
    })
}

/// Refuses to put `next` in the chain `map` when the programs it leads to
/// (it, the one in its own chain, and so on) come back to `map`: a loop,
/// which would run each packet through the firewall again and again (the
/// kernel stops it at 33 tail calls, each counted).
pub fn refuse_loop(map: u32, next: &attach::Prog, dir: &Path) -> Result<()> {
    let Some(path) = loop_back(map, next.id)? else {
        return Ok(());
    };
    bail!(
        "program {} ({}) {} back to {}: a chain cannot loop (each packet would go round until \
         the kernel's limit of {MAX_TAIL_CALLS} tail calls, counted each time)",
        next.id,
        next.name,
        if path.is_empty() {
            "tail-calls this chain itself, and so leads".to_owned()
        } else {
            format!("leads through {}", path.join(" → "))
        },
        dir.display()
    );
}

/// Whether program `prog`, put in the chain map `map`, would lead back to
/// it: the programs on the way after `prog` (empty: `prog` calls `map`
/// itself), or `None` when it does not loop.
pub fn loop_back(map: u32, prog: u32) -> Result<Option<Vec<String>>> {
    let mut path = Vec::new();
    let mut prog = prog;
    for _ in 0..MAX_TAIL_CALLS {
        let Some((id, handle)) =
            chain::of_prog(prog).with_context(|| format!("reading the chain of program {prog}"))?
        else {
            return Ok(None);
        };
        if id == map {
            return Ok(Some(path));
        }
        let Some(after) = chain::next(&handle)? else {
            return Ok(None);
        };
        path.push(prog_ref(after).to_string());
        prog = after;
    }
    Ok(None)
}

/// The kernel's most tail calls in a row (`MAX_TAIL_CALL_CNT`).
const MAX_TAIL_CALLS: usize = 33;

/// The kernel's refusal of a program in the chain, explained.
fn refused(e: std::io::Error, next: Option<&attach::Prog>, dir: &Path) -> anyhow::Error {
    match (e.raw_os_error(), next) {
        (Some(libc::EINVAL), Some(p)) => anyhow::anyhow!(
            "the kernel refuses program {} ({}) behind {}: {}; attach it on its own \
             instead",
            p.id,
            p.name,
            dir.display(),
            chain::REFUSAL
        ),
        _ => anyhow::Error::new(e).context(format!("setting the chain of {}", dir.display())),
    }
}

/// Every chain on the bpffs `root` with a program in it: (load directory,
/// chain map pin, program id).
pub fn all(root: &Path) -> Result<Vec<(PathBuf, PathBuf, u32)>> {
    let mut out = Vec::new();
    if !root.is_dir() || !pinfs::is_bpffs(root)? {
        return Ok(out);
    }
    for load in ops::loaddir::all(root)? {
        let Ok(map) = chain_map(&load) else {
            continue;
        };
        let Some(handle) = chain::open(&map)? else {
            continue;
        };
        if let Some(id) = chain::next(&handle)? {
            out.push((load.path, map, id));
        }
    }
    Ok(out)
}

/// The chain of the load whose links directory holds the link pin `pin`,
/// if it has one with a program in it: (chain map pin, program id).
pub fn next_of_pin(pin: &Path) -> Option<(PathBuf, u32)> {
    let load = pin.parent()?.parent()?;
    let map = load.join(MAPS_SUBDIR).join(chain::NAME);
    let handle = chain::open(&map).ok()??;
    Some((map, chain::next(&handle).ok()??))
}

/// The program in the chain of program `prog`, found by its maps (for a
/// program attached without a pinned link: a few syscalls a map).
pub fn next_of_prog(prog: u32) -> Option<u32> {
    let (_, handle) = chain::of_prog(prog).ok()??;
    chain::next(&handle).ok()?
}
