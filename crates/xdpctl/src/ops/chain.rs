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
    kernel::{
        chain,
        sys::{self, IdKind},
    },
    model::{
        change::{Change, Step},
        handle::Handle,
        manifest::MAPS_SUBDIR,
    },
    ops::{self, attach, loaddir::LoadDir},
};

/// A program, by id and kernel name.
#[derive(Clone, Debug, Serialize)]
pub struct ProgRef {
    pub prog_id: u32,
    pub prog_name: String,
}

impl ProgRef {
    fn of(id: u32) -> ProgRef {
        let name = sys::fd_by_id(IdKind::Prog, id)
            .and_then(|fd| sys::prog_info(std::os::fd::AsFd::as_fd(&fd)))
            .map_or_else(|_| "?".to_owned(), |(info, _)| sys::c_name(&info.name));
        ProgRef {
            prog_id: id,
            prog_name: name,
        }
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
    /// The one before this command, if it changed the chain.
    #[serde(skip_serializing_if = "Option::is_none")]
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

/// Shows or changes the chain of the load at `dir`.
pub fn chain(ctx: &Ctx, dir: &Path, set: Set<'_>) -> Result<Chained> {
    let load = LoadDir::open(&ctx.resolve(dir))?;
    let map = chain_map(&load)?;
    let handle = chain::open(&map)
        .with_context(|| format!("opening {}", map.display()))?
        .with_context(|| format!("{} is not a program array", map.display()))?;
    let now = chain::next(&handle).with_context(|| format!("reading {}", map.display()))?;
    let next = match set {
        Set::Show => {
            return Ok(Chained {
                dir: load.path,
                map,
                next: now.map(ProgRef::of),
                previous: None,
            });
        }
        Set::Clear => None,
        Set::Next(h) => Some(attach::resolve_prog(ctx, h)?),
    };
    if let Some(p) = &next {
        let own = load.manifest.programs.iter().any(|own| {
            pinfs::obj_get(&load.path.join(&own.name))
                .ok()
                .and_then(|fd| pinfs::obj_info(std::os::fd::AsFd::as_fd(&fd)).ok())
                .is_some_and(|info| info.id == p.id)
        });
        if own {
            bail!(
                "program {} ({}) is {}'s own: a program cannot follow itself",
                p.id,
                p.name,
                load.path.display()
            );
        }
    }
    let to = next.as_ref().map(|p| p.id);
    if now != to {
        let (mut journal, notes) = ops::begin(&map)?;
        ctx.out.notes(notes);
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
        previous: now.filter(|&n| Some(n) != to).map(ProgRef::of),
    })
}

/// The kernel's refusal of a program in the chain, explained.
fn refused(e: std::io::Error, next: Option<&attach::Prog>, dir: &Path) -> anyhow::Error {
    match (e.raw_os_error(), next) {
        (Some(libc::EINVAL), Some(p)) => anyhow::anyhow!(
            "the kernel refuses program {} ({}) behind {}: a tail call goes only to an XDP \
             program like the firewall, JIT-compiled, not offloaded and without frags \
             (xdp.frags); attach it on its own instead",
            p.id,
            p.name,
            dir.display()
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
    let map = load.join(MAPS_SUBDIR).join(xdpfw::maps::CHAIN);
    let handle = chain::open(&map).ok()??;
    Some((map, chain::next(&handle).ok()??))
}
