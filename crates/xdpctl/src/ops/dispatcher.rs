//! A program of an xdpctl load in libxdp's dispatcher (`attach
//! --dispatcher`), beside the programs of xdp-loader, xdp-filter and other
//! libxdp users, the way libxdp's protocol (version 2) adds and removes
//! programs: under libxdp's lock (`flock` on `<bpffs>/xdp`), a new
//! dispatcher is loaded with every program in run-priority order, each
//! attached to its slot as an `freplace` program (the programs already
//! there re-attached, ours loaded from its load's object with the load's
//! maps), pinned where libxdp pins them (`xdp/dispatch-IFINDEX-DID/
//! progN-prog`, `progN-link`), and swapped for the old dispatcher in one
//! netlink replace; then the old one's pins go. xdpctl's record of its
//! program is the freplace copy pinned in the load's `links/` as
//! `libxdp:<prog>:<dev>@<netns inode>`: `unload` takes it out again.
//!
//! The switch is one journaled change (`Step::DispatcherSettle`): killed
//! anywhere, the next command removes the new dispatcher's pins if it
//! never got attached, or the old one's if it did.
//!
//! NB: `freplace` programs are refused by a kernel in lockdown (this
//! project's test machine): there the new dispatcher loads, and the first
//! component is refused with EPERM; nothing is changed.

use std::{
    os::fd::{AsFd, AsRawFd},
    path::{Path, PathBuf},
};

use anyhow::{Context as _, Result, bail};
use serde::Serialize;

use crate::{
    ctx::Ctx,
    kernel::{dispatcher, netlink::Rtnl, netns, sys},
    model::{
        change::{Change, Dev, Step},
        dispatcher::{Component, config, order},
        handle::Handle,
        linkpin::{Hook, LinkPin, Owner},
        xdp::XdpMode,
    },
    ops::{self, attach::device, loaddir::LoadDir},
    render::Tabular,
};

/// `attach --dispatcher`'s options.
#[derive(Clone, Debug)]
pub struct JoinOptions {
    /// The XDP program (of an xdpctl load).
    pub prog: Handle,
    /// The device.
    pub dev: String,
    /// Its namespace.
    pub netns: Option<String>,
    /// The dispatcher's mode.
    pub mode: XdpMode,
    /// Run priority (lower runs first).
    pub priority: u32,
    /// The actions after which the next program runs (a bitmap).
    pub chain_call_actions: u32,
}

/// A program put into a dispatcher. This is the documented JSON shape.
#[derive(Debug, Serialize)]
pub struct Joined {
    /// The device.
    pub device: String,
    /// Its namespace.
    pub netns: Option<String>,
    /// The dispatcher's mode.
    pub mode: &'static str,
    /// The new dispatcher.
    pub dispatcher_id: u32,
    /// The program's slot (its place in the run order).
    pub slot: usize,
    /// Programs the dispatcher runs.
    pub programs: usize,
    /// The freplace copy of the program that runs in the slot.
    pub prog_id: u32,
    /// Its name.
    pub prog_name: String,
    /// xdpctl's record of it.
    pub pinned: PathBuf,
}

impl Tabular for Joined {
    const HEADERS: &'static [&'static str] =
        &["DEVICE", "MODE", "DISPATCHER", "SLOT", "PROG", "NAME"];
    fn cells(&self, _: &crate::render::View) -> Vec<String> {
        vec![
            self.device.clone(),
            self.mode.to_owned(),
            self.dispatcher_id.to_string(),
            format!("{} of {}", self.slot, self.programs),
            self.prog_id.to_string(),
            self.prog_name.clone(),
        ]
    }
}

/// Where libxdp pins: `LIBXDP_BPFFS`, else xdpctl's bpffs. It must be the
/// bpffs xdpctl uses (its journal removes pins there).
fn libxdp_root(ctx: &Ctx) -> Result<PathBuf> {
    let root = std::env::var_os("LIBXDP_BPFFS").map_or_else(|| ctx.bpffs.clone(), PathBuf::from);
    if crate::kernel::layout::mount_root(&root).ok()
        != crate::kernel::layout::mount_root(&ctx.bpffs).ok()
    {
        bail!(
            "LIBXDP_BPFFS ({}) is not on xdpctl's bpffs ({}): give both the same (--bpffs)",
            root.display(),
            ctx.bpffs.display()
        );
    }
    Ok(root)
}

/// libxdp's lock: `flock(LOCK_EX)` on `<root>/xdp`, which is made if
/// missing (and removed again if this leaves it empty); held while alive.
struct LibxdpLock {
    _file: std::fs::File,
    dir: PathBuf,
    made: bool,
}

impl Drop for LibxdpLock {
    fn drop(&mut self) {
        if self.made {
            // Only when nothing was pinned in it (a refused change).
            let _ = std::fs::remove_dir(&self.dir);
        }
    }
}

fn lock(root: &Path) -> Result<LibxdpLock> {
    let dir = root.join("xdp");
    let made = !dir.is_dir();
    if made {
        pinfs::mkdir_0700(&dir).with_context(|| format!("mkdir {}", dir.display()))?;
    }
    let f = std::fs::File::open(&dir).with_context(|| format!("opening {}", dir.display()))?;
    // SAFETY: flock on an fd this function owns.
    if unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX) } != 0 {
        return Err(std::io::Error::last_os_error())
            .with_context(|| format!("locking {} (libxdp's lock)", dir.display()));
    }
    Ok(LibxdpLock {
        _file: f,
        dir,
        made,
    })
}

/// The dispatcher a device runs in `mode`, with its programs' pins: `None`
/// when nothing runs there; refused when another program does.
fn current(
    dev: &crate::kernel::netlink::Device,
    mode: XdpMode,
    root: &Path,
) -> Result<Option<(u32, crate::model::xdp::Dispatcher)>> {
    let Some((_, id)) = dev.xdp.attached().into_iter().find(|(m, _)| *m == mode) else {
        return Ok(None);
    };
    match dispatcher::read(id, dev.ifindex, root)? {
        Some(d) if d.version == 2 => Ok(Some((id, d))),
        Some(d) => bail!(
            "{} runs a libxdp dispatcher of version {} (program {id}); libxdp's protocol \
             leaves an older dispatcher to the programs in it: unload them first",
            dev.name,
            d.version
        ),
        None => {
            let name = crate::kernel::objects::describe(pinfs::Kind::Prog, id)
                .map_or_else(|_| "?".into(), |d| d.name);
            bail!(
                "{} runs program {id} ({name}) in {} mode, not a libxdp dispatcher: detach it \
                 first (xdpctl detach {}), or replace it (attach with --replace instead of \
                 --dispatcher)",
                dev.name,
                mode.name(),
                dev.name
            )
        }
    }
}

/// The programs of a dispatcher as components, each with its pin.
fn components(d: &crate::model::xdp::Dispatcher, dir: &Path) -> Result<Vec<(Component, PathBuf)>> {
    d.programs
        .iter()
        .map(|p| {
            let Some(id) = p.prog_id else {
                bail!(
                    "libxdp's pin of slot {} of the dispatcher is missing (under {}): xdpctl \
                     cannot carry that program into a new dispatcher",
                    p.slot,
                    dir.display()
                );
            };
            Ok((
                Component {
                    name: p.prog_name.clone().unwrap_or_default(),
                    existing: Some(id),
                    priority: p.priority,
                    chain_call_actions: p.chain_call_bits,
                    frags: p.frags,
                },
                dir.join(format!("prog{}-prog", p.slot)),
            ))
        })
        .collect()
}

/// A new dispatcher with every slot's program attached, not yet pinned
/// ([`Built::pin`] does, once the change is in the journal) nor on the
/// device.
struct Built {
    ebpf: aya::Ebpf,
    id: u32,
    dir: PathBuf,
    ours: Option<(aya::Ebpf, u32)>,
    /// Per slot: the program and its link, to pin (once the change is in
    /// the journal).
    links: Vec<(usize, std::os::fd::OwnedFd, aya::programs::links::FdLink)>,
}

impl Built {
    /// Pins every slot's program and link where libxdp pins them.
    fn pin(&mut self) -> Result<()> {
        pinfs::mkdir_0700(&self.dir).with_context(|| format!("mkdir {}", self.dir.display()))?;
        for (k, fd, link) in self.links.drain(..) {
            pinfs::obj_pin(fd.as_fd(), &self.dir.join(format!("prog{k}-prog")))?;
            link.pin(self.dir.join(format!("prog{k}-link")))
                .with_context(|| format!("pinning the link of slot {k}"))?;
        }
        Ok(())
    }
}

/// Loads a dispatcher for `slots` and attaches each slot's program: one
/// already in a dispatcher (its pin) re-attached, ours (`ours`, the one
/// without a pin) loaded from its load's object.
fn build(
    slots: &[(Component, Option<PathBuf>)],
    ours: Option<&Ours>,
    root: &Path,
    ifindex: u32,
) -> Result<Built> {
    let mut conf = config(&slots.iter().map(|(c, _)| c.clone()).collect::<Vec<_>>());
    // The object is built without frags: the dispatcher runs without them.
    conf.is_xdp_frags = false;
    let ebpf = dispatcher::load_new(&conf)?;
    let target = dispatcher::program_fd(&ebpf)?;
    let id = pinfs::obj_info(target.as_fd())?.id;
    let mut links = Vec::new();
    let mut ours_loaded = None;
    for (k, (c, pin)) in slots.iter().enumerate() {
        match (pin, ours) {
            (Some(pin), _) => {
                let link = dispatcher::reattach(pin, &target, k)?;
                links.push((k, pinfs::obj_get(pin)?, link));
            }
            (None, Some(o)) => {
                let (obj, link) = dispatcher::load_component(
                    &o.bytes,
                    &c.name,
                    &o.maps,
                    o.kernel_btf,
                    &target,
                    k,
                )
                .map_err(|e| refused(e, &c.name))?;
                let fd = obj.program(&c.name).expect("loaded").fd()?;
                let prog_id = pinfs::obj_info(fd.as_fd())?.id;
                links.push((k, fd.as_fd().try_clone_to_owned()?, link));
                ours_loaded = Some((obj, prog_id));
            }
            (None, None) => bail!("slot {k} has no program"),
        }
    }
    Ok(Built {
        ebpf,
        id,
        dir: dispatcher::pin_dir(root, ifindex, id),
        ours: ours_loaded,
        links,
    })
}

/// A refused freplace load, in the operator's terms (root was refused: no
/// hint about privileges).
fn refused(e: anyhow::Error, name: &str) -> anyhow::Error {
    let eperm = e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.raw_os_error() == Some(libc::EPERM))
            || c.to_string().contains("Operation not permitted")
    });
    if eperm && nix::unistd::geteuid().is_root() {
        anyhow::anyhow!(
            "this kernel refuses freplace programs (a kernel in lockdown does, for root too), \
             and libxdp's dispatcher is made of them: \
             {name} cannot join one here (its freplace load: Operation not permitted); \
             nothing was changed: attach it alone (xdpctl attach), and put another program \
             behind it with xdpctl chain"
        )
    } else {
        e
    }
}

/// The load's object, to reload a program as an freplace program.
struct Ours {
    bytes: Vec<u8>,
    maps: Vec<(String, PathBuf)>,
    kernel_btf: bool,
}

fn ours(load: &LoadDir) -> Result<Ours> {
    let builtin = load.manifest.object == format!("built-in {}", xdp_progs::xdpfw::NAME);
    let object = ops::object::read_object(if builtin {
        None
    } else {
        Some(Path::new(&load.manifest.object))
    })?;
    if !load.manifest.object_digest.is_empty()
        && crate::model::manifest::digest(&object.bytes) != load.manifest.object_digest
    {
        bail!(
            "{} is no longer the object loaded at {} (it changed since): load it again (xdpctl \
             load --replace) before it joins a dispatcher",
            object.label,
            load.path.display()
        );
    }
    let maps = load
        .manifest
        .maps
        .iter()
        .map(|m| {
            let pin = m.shared.as_ref().map_or_else(
                || {
                    load.path
                        .join(crate::model::manifest::MAPS_SUBDIR)
                        .join(&m.pin)
                },
                |s| s.path.clone(),
            );
            (m.name.clone(), pin)
        })
        .collect();
    Ok(Ours {
        kernel_btf: object.parsed.has_btf_relocations(),
        bytes: object.bytes.to_vec(),
        maps,
    })
}

/// Puts `opts.prog` into the libxdp dispatcher on the device (making one
/// if the device runs nothing in that mode).
pub fn join(ctx: &Ctx, opts: &JoinOptions) -> Result<Joined> {
    let prog = ops::attach::resolve_xdp_prog(ctx, &opts.prog)?;
    let Some(dir) = prog.load_dir() else {
        bail!(
            "program {} is in no xdpctl load directory: a program joins a dispatcher as an \
             freplace copy loaded from its load's object, with its maps",
            prog.id
        );
    };
    let load = LoadDir::open(dir)?;
    let object = ours(&load)?;
    let root = libxdp_root(ctx)?;
    let _libxdp = lock(&root)?;
    let (mut journal, notes) = ops::begin(&load.path)?;
    ctx.out.notes(notes);
    let ns = netns::Netns::of(opts.netns.as_deref())?;
    let _entered = netns::enter(opts.netns.as_deref())?;
    let ns_ino = netns::current_inode()?;
    let mut rtnl = Rtnl::open().context("opening rtnetlink")?;
    let dev = device(&mut rtnl, &opts.dev, opts.netns.as_deref())?;
    let record = LinkPin {
        hook: Hook::Libxdp {
            prog: prog.name.clone(),
        },
        ..LinkPin::new(Owner::Load(load.path.clone()), &dev.name, ns_ino)
    }
    .path();
    if record.exists() {
        bail!(
            "{} is in the dispatcher on {} already (its record is {}); `xdpctl unload` takes \
             it out",
            prog.name,
            dev.name,
            record.display()
        );
    }
    let old = current(&dev, opts.mode, &root)?;
    let old_dir = old
        .as_ref()
        .map(|(id, _)| dispatcher::pin_dir(&root, dev.ifindex, *id));
    let mut all: Vec<(Component, Option<PathBuf>)> = match (&old, &old_dir) {
        (Some((_, d)), Some(dir)) => components(d, dir)?
            .into_iter()
            .map(|(c, p)| (c, Some(p)))
            .collect(),
        _ => Vec::new(),
    };
    all.push((
        Component {
            name: prog.name.clone(),
            existing: None,
            priority: opts.priority,
            chain_call_actions: opts.chain_call_actions,
            frags: false,
        },
        None,
    ));
    let ordered = order(all.iter().map(|(c, _)| c.clone()).collect())?;
    let slots: Vec<(Component, Option<PathBuf>)> = ordered
        .into_iter()
        .map(|c| {
            let pin = all
                .iter()
                .find(|(a, _)| a.existing == c.existing && a.name == c.name)
                .and_then(|(_, p)| p.clone());
            (c, pin)
        })
        .collect();
    let slot = slots.iter().position(|(_, p)| p.is_none()).unwrap_or(0);
    let mut built = build(&slots, Some(&object), &root, dev.ifindex)?;
    let dev_key = Dev {
        netns: ns_ino,
        ifindex: dev.ifindex,
        mode: opts.mode.flag(),
    };
    let entry = journal.begin(Change::Steps {
        what: format!("{} into the libxdp dispatcher on {}", prog.name, dev.name),
        steps: vec![Step::DispatcherSettle {
            dev: dev_key,
            new: built.id,
            new_paths: vec![built.dir.clone(), record.clone()],
            old: old_dir.iter().cloned().collect(),
        }],
    })?;
    let switched = (|| -> Result<()> {
        built.pin()?;
        let (ours_obj, _) = built.ours.as_ref().expect("ours was loaded");
        let links = load.links_dir();
        if !links.exists() {
            pinfs::mkdir_0700(&links).with_context(|| format!("mkdir {}", links.display()))?;
        }
        let fd = ours_obj.program(&prog.name).expect("loaded").fd()?;
        pinfs::obj_pin(fd.as_fd(), &record)?;
        let new_fd = dispatcher::program_fd(&built.ebpf)?;
        let old_fd = old
            .as_ref()
            .map(|(id, _)| sys::fd_by_id(sys::IdKind::Prog, *id))
            .transpose()?;
        let flags = opts.mode.flag()
            | if old_fd.is_some() {
                sys::xdp_flags::REPLACE
            } else {
                sys::xdp_flags::UPDATE_IF_NOEXIST
            };
        rtnl.set_xdp(
            dev.ifindex,
            new_fd.as_fd().as_raw_fd(),
            flags,
            old_fd.as_ref().map(|f| f.as_raw_fd()),
        )
        .map_err(anyhow::Error::new)
        .with_context(|| {
            format!(
                "switching {} to the new dispatcher (another tool changed it meanwhile?)",
                dev.name
            )
        })
    })();
    // Either way the settle step decides what stays.
    journal.run_forward(&entry)?;
    journal.finish(entry)?;
    switched?;
    ctx.out.note(format_args!(
        "{} runs {} in slot {slot} of libxdp dispatcher {} ({} programs, {} mode); xdpctl's \
         record of it is {}",
        dev.name,
        prog.name,
        built.id,
        slots.len(),
        opts.mode.name(),
        record.display()
    ));
    Ok(Joined {
        device: dev.name.clone(),
        netns: ns.name,
        mode: opts.mode.name(),
        dispatcher_id: built.id,
        slot,
        programs: slots.len(),
        prog_id: built.ours.as_ref().map_or(0, |(_, id)| *id),
        prog_name: prog.name.clone(),
        pinned: record,
    })
}

/// Takes the program recorded at `record` (a `libxdp:` record of the
/// load) out of the dispatcher it runs in: a new dispatcher without it,
/// or none when it was the last. Returns the device's name; a record whose
/// program runs in no dispatcher any more is only unpinned.
pub fn leave(
    ctx: &Ctx,
    journal: &mut ops::journal::Journal,
    record: &Path,
) -> Result<Option<String>> {
    let Some(pin) = LinkPin::parse(record) else {
        return Ok(None);
    };
    let ours = pinfs::pin_info(record)?.id;
    let root = libxdp_root(ctx)?;
    let _libxdp = lock(&root)?;
    let Ok(_entered) = netns::enter_inode(pin.netns)? else {
        bail!(
            "{} runs in a libxdp dispatcher on {} in a network namespace with no name under \
             /run/netns (inode {}), which xdpctl cannot enter; nothing was changed (give the \
             namespace a name: `ip netns attach NAME PID`)",
            record.display(),
            pin.dev,
            pin.netns
        );
    };
    let mut rtnl = Rtnl::open().context("opening rtnetlink")?;
    let Some((dev, mode, old_id, d)) = running(&mut rtnl, &root, &pin.dev, ours)? else {
        // Its dispatcher (or device) went: only the record is left.
        journal.run(&[Step::RemoveTree {
            path: record.to_owned(),
        }])?;
        return Ok(None);
    };
    let old_dir = dispatcher::pin_dir(&root, dev.ifindex, old_id);
    let rest: Vec<(Component, Option<PathBuf>)> = components(&d, &old_dir)?
        .into_iter()
        .filter(|(c, _)| c.existing != Some(ours))
        .map(|(c, p)| (c, Some(p)))
        .collect();
    let dev_key = Dev {
        netns: pin.netns,
        ifindex: dev.ifindex,
        mode: mode.flag(),
    };
    let old_fd = sys::fd_by_id(sys::IdKind::Prog, old_id)?;
    if rest.is_empty() {
        // The last program: the dispatcher goes, with its pins.
        let entry = journal.begin(Change::Steps {
            what: format!(
                "the libxdp dispatcher on {}, its last program out",
                dev.name
            ),
            steps: vec![
                Step::XdpSwap {
                    dev: dev_key,
                    from: old_id,
                    to: None,
                },
                Step::RemoveTree { path: old_dir },
                Step::RemoveTree {
                    path: record.to_owned(),
                },
            ],
        })?;
        journal.run_forward(&entry)?;
        journal.finish(entry)?;
        return Ok(Some(dev.name));
    }
    let mut built = build(&rest, None, &root, dev.ifindex)?;
    let entry = journal.begin(Change::Steps {
        what: format!(
            "the libxdp dispatcher on {} without {}",
            dev.name,
            record.display()
        ),
        steps: vec![Step::DispatcherSettle {
            dev: dev_key,
            new: built.id,
            new_paths: vec![built.dir.clone()],
            old: vec![old_dir, record.to_owned()],
        }],
    })?;
    let new_fd = dispatcher::program_fd(&built.ebpf)?;
    let switched = built.pin().and_then(|()| {
        rtnl.set_xdp(
            dev.ifindex,
            new_fd.as_fd().as_raw_fd(),
            mode.flag() | sys::xdp_flags::REPLACE,
            Some(old_fd.as_raw_fd()),
        )
        .map_err(anyhow::Error::new)
    });
    journal.run_forward(&entry)?;
    journal.finish(entry)?;
    switched.with_context(|| format!("switching {} to a dispatcher without it", dev.name))?;
    Ok(Some(dev.name))
}

/// The load's records of programs in dispatchers.
pub fn records(links_dir: &Path) -> Vec<PathBuf> {
    super::live::program_records(links_dir, Hook::is_libxdp)
        .into_iter()
        .map(|(path, _, _)| path)
        .collect()
}

/// Whether the freplace copy recorded at `record` runs in a dispatcher on
/// the device the record names; `None` when its namespace cannot be
/// entered (no name under /run/netns).
pub fn runs(ctx: &Ctx, record: &Path) -> Result<Option<bool>> {
    let Some(pin) = LinkPin::parse(record) else {
        return Ok(Some(false));
    };
    let ours = pinfs::pin_info(record)?.id;
    let root = libxdp_root(ctx)?;
    let Ok(_entered) = netns::enter_inode(pin.netns)? else {
        return Ok(None);
    };
    let mut rtnl = Rtnl::open().context("opening rtnetlink")?;
    Ok(Some(running(&mut rtnl, &root, &pin.dev, ours)?.is_some()))
}

/// The device a record names (`.` in its name is `_` in a pin's) and the
/// dispatcher on it that runs program `ours`: its mode, id and programs.
fn running(
    rtnl: &mut Rtnl,
    root: &Path,
    pin_dev: &str,
    ours: u32,
) -> Result<
    Option<(
        crate::kernel::netlink::Device,
        XdpMode,
        u32,
        crate::model::xdp::Dispatcher,
    )>,
> {
    let Some(dev) = rtnl.device_of_pin(pin_dev)? else {
        return Ok(None);
    };
    for (mode, id) in dev.xdp.attached() {
        if let Ok(Some(d)) = dispatcher::read(id, dev.ifindex, root)
            && d.programs.iter().any(|p| p.prog_id == Some(ours))
        {
            return Ok(Some((dev, mode, id, d)));
        }
    }
    Ok(None)
}
