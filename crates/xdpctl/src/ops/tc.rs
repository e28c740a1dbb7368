//! Legacy tc: a `sched_cls` program attached as a direct-action `cls_bpf`
//! filter at a device's clsact ingress or egress (`tc filter add ... bpf
//! da`), for kernels without tcx (before 6.6), and detached again.
//!
//! A filter has no bpf_link, so nothing of the kernel's says whose it is.
//! Its record is the program pinned in the owner's `links/` as
//! `tc_<hook>:<prog>:<priority>:<dev>@<netns inode>`: the load directory
//! owns the filter (`unload` deletes it) and the name is its place
//! (device, namespace, hook, priority; handle 1). The record is pinned
//! before the filter is added and unpinned after it is deleted, each
//! change in the journal, so a SIGKILL at any point leaves a record and
//! its filter, or neither, once the next command recovers (a record whose
//! filter is missing is unpinned).

use std::{
    os::fd::{AsFd, AsRawFd},
    path::{Path, PathBuf},
};

use anyhow::{Context as _, Result, bail};
use pinfs::Kind;
use serde::Serialize;

use crate::{
    ctx::Ctx,
    kernel::{
        netlink::{self, IngressQdisc, Rtnl},
        netns,
    },
    model::{
        change::{Change, Step},
        handle::Handle,
        linkpin::{Hook, LinkPin, pin_name},
        policy::{TcSpec, TcxHook},
    },
    ops::{
        self,
        attach::{device, resolve_tc_prog},
    },
    render::Tabular,
};

/// `xdpctl attach --tc`'s options.
#[derive(Clone, Debug)]
pub struct TcOptions {
    /// The `sched_cls` program.
    pub prog: Handle,
    /// The device.
    pub dev: String,
    /// Its namespace.
    pub netns: Option<String>,
    /// Egress, or ingress.
    pub egress: bool,
    /// The filter's priority (1-65535; lower runs first); `None`: after
    /// every `cls_bpf` filter there.
    pub priority: Option<u16>,
}

/// A tc filter made or removed. This is the documented JSON shape.
#[derive(Debug, Serialize)]
pub struct TcAttachment {
    /// The device.
    pub device: String,
    /// Its ifindex.
    pub ifindex: u32,
    /// Its namespace, named as outputs name namespaces.
    pub netns: Option<String>,
    /// `tc-ingress` or `tc-egress`.
    pub hook: &'static str,
    /// The program.
    pub prog_id: u32,
    /// Its name.
    pub prog_name: String,
    /// The filter's priority.
    pub priority: u16,
    /// Its handle (always 1).
    pub handle: u32,
    /// The record: the program pinned under the filter's place.
    pub pinned: PathBuf,
}

impl Tabular for TcAttachment {
    const HEADERS: &'static [&'static str] = &["DEVICE", "HOOK", "PRIO", "PROG", "NAME", "PINNED"];
    const OPTIONAL: &'static [&'static str] = &["PINNED"];
    fn cells(&self, view: &crate::render::View) -> Vec<String> {
        vec![
            self.device.clone(),
            self.hook.to_owned(),
            self.priority.to_string(),
            self.prog_id.to_string(),
            self.prog_name.clone(),
            view.path(&self.pinned),
        ]
    }
}

/// The tc filter records in a links directory: (path, record, program).
pub fn records(links_dir: &Path) -> Vec<(PathBuf, LinkPin, u32)> {
    super::live::program_records(links_dir, Hook::is_tc)
}

/// The load's tc filters that run (a record whose filter is gone is
/// none), each as a policy's `tc` entry, by device, hook and priority;
/// and the records of filters in namespaces that have no name (a policy
/// cannot name them).
pub type Specs = (Vec<(LinkPin, TcSpec)>, Vec<PathBuf>);

/// See [`Specs`].
pub fn specs(load: &crate::ops::loaddir::LoadDir) -> Result<Specs> {
    use crate::model::change::Kernel as _;
    let spaces = netns::known()?;
    let mut out = Vec::new();
    let mut unnamed = Vec::new();
    for (path, pin, prog) in records(&load.links_dir()) {
        match crate::kernel::steps::Real.tc_filter(&pin)? {
            None => {
                unnamed.push(path);
                continue;
            }
            Some(runs) if runs != Some(prog) => continue,
            Some(_) => {}
        }
        let Hook::Tc {
            egress,
            prog: name,
            prio,
        } = &pin.hook
        else {
            continue;
        };
        let spec = TcSpec {
            name: pin.dev.clone(),
            netns: netns::Netns::by_inode(pin.netns, &spaces).name,
            hook: TcxHook::of(*egress),
            prog: name.clone(),
            priority: Some(*prio),
        };
        out.push((pin, spec));
    }
    out.sort_by(|(_, a), (_, b)| {
        (&a.name, &a.netns, a.hook, a.priority).cmp(&(&b.name, &b.netns, b.hook, b.priority))
    });
    Ok((out, unnamed))
}

/// The `cls_bpf` filter holding priority `prio` at a hook of device `dev`
/// (of the namespace `netns_spec` names), if any: (its name, program).
pub fn holder(
    dev: &str,
    netns_spec: Option<&str>,
    egress: bool,
    prio: u16,
) -> Result<Option<(String, u32)>> {
    let _in = netns::enter(netns_spec)?;
    let mut rtnl = Rtnl::open().context("opening rtnetlink")?;
    let Some(d) = rtnl.device(dev)? else {
        return Ok(None);
    };
    Ok(rtnl
        .tc_bpf_filters(d.ifindex, netlink::clsact_parent(egress))?
        .into_iter()
        .find(|f| f.priority == prio)
        .map(|f| (f.name, f.prog_id)))
}

/// The records of `links_dir` whose namespace xdpctl cannot enter (no name
/// under /run/netns): their filters can be deleted only from inside.
pub fn out_of_reach(links_dir: &Path) -> Result<Vec<(PathBuf, LinkPin)>> {
    use crate::model::change::Kernel as _;
    let mut out = Vec::new();
    for (path, pin, _) in records(links_dir) {
        if crate::kernel::steps::Real.tc_filter(&pin)?.is_none() {
            out.push((path, pin));
        }
    }
    Ok(out)
}

/// Attaches `opts.prog` as a tc filter, through the journal.
pub fn attach(ctx: &Ctx, opts: &TcOptions) -> Result<TcAttachment> {
    let prog = resolve_tc_prog(ctx, &opts.prog)?;
    let owner = ctx.owner_of(prog.load_dir())?;
    let (mut journal, notes) = ops::begin(&owner.journal_dir(&ctx.bpffs))?;
    ctx.out.notes(notes);
    let ns = netns::Netns::of(opts.netns.as_deref())?;
    let entered = netns::enter(opts.netns.as_deref())?;
    let ns_ino = netns::current_inode()?;
    let mut rtnl = Rtnl::open().context("opening rtnetlink")?;
    let dev = device(&mut rtnl, &opts.dev, opts.netns.as_deref())?;
    let hook_name = if opts.egress {
        "tc-egress"
    } else {
        "tc-ingress"
    };
    let in_ns = crate::model::error_text::netns_arg(opts.netns.as_deref());
    let flag = if opts.egress { "egress" } else { "ingress" };
    // A record of ours whose filter is gone (deleted by tc, or its device
    // went) is stale: settled first.
    let mine: Vec<(PathBuf, LinkPin, u32)> = records(&owner.links_dir())
        .into_iter()
        .filter(|(_, p, _)| p.netns == ns_ino && p.names_device(&dev.name))
        .collect();
    journal.run(
        &mine
            .iter()
            .map(|(path, _, _)| Step::TcSettle { path: path.clone() })
            .collect::<Vec<_>>(),
    )?;
    if let Some((path, _, _)) = mine.iter().find(|(path, p, _)| {
        path.exists()
            && matches!(&p.hook, Hook::Tc { egress, prog: name, .. }
                if *egress == opts.egress && *name == pin_name(&prog.name))
    }) {
        bail!(
            "{} already runs {} at {hook_name} by this load's filter (its record is {}); a \
             program runs once a hook: detach it first (xdpctl detach {} --tc {flag} --prog {}{in_ns})",
            dev.name,
            prog.name,
            path.display(),
            dev.name,
            prog.id,
        );
    }
    let parent = netlink::clsact_parent(opts.egress);
    let qdisc = rtnl
        .ingress_qdiscs()
        .context("listing ingress and clsact qdiscs")?
        .get(&dev.ifindex)
        .copied();
    if qdisc == Some(IngressQdisc::Ingress) && opts.egress {
        bail!(
            "{} has the legacy `ingress` qdisc, which has no egress hook: attach at ingress, or \
             replace it with clsact (`tc qdisc del dev {} ingress`, which drops its filters)",
            dev.name,
            dev.name
        );
    }
    let filters = rtnl
        .tc_bpf_filters(dev.ifindex, parent)
        .context("listing tc filters")?;
    let priority = match opts.priority {
        Some(p) => {
            if let Some(f) = filters.iter().find(|f| f.priority == p) {
                bail!(
                    "priority {p} at {hook_name} of {} holds the filter {} (program {}); give \
                     another --priority (lower runs first)",
                    dev.name,
                    f.name,
                    f.prog_id
                );
            }
            p
        }
        None => match filters.iter().map(|f| f.priority).max() {
            None => 1,
            Some(u16::MAX) => bail!(
                "a filter at {hook_name} of {} has the last priority (65535): give --priority",
                dev.name
            ),
            Some(p) => p + 1,
        },
    };
    let pin = LinkPin::tc(
        owner.clone(),
        &dev.name,
        ns_ino,
        opts.egress,
        &prog.name,
        priority,
    );
    let path = pin.path();
    let links_dir = owner.links_dir();
    let added_clsact = qdisc.is_none();
    if added_clsact {
        rtnl.add_clsact(dev.ifindex)
            .map_err(anyhow::Error::new)
            .with_context(|| format!("adding a clsact qdisc to {}", dev.name))?;
    }
    let entry = journal.begin(Change::Steps {
        what: format!(
            "tc filter of {} at {hook_name} of {}, priority {priority}",
            prog.name, dev.name
        ),
        steps: vec![Step::TcSettle { path: path.clone() }],
    })?;
    let made = (|| -> Result<()> {
        if !links_dir.exists() {
            pinfs::mkdir_0700(&links_dir)
                .with_context(|| format!("mkdir {}", links_dir.display()))?;
        }
        pinfs::obj_pin(prog.fd.as_fd(), &path)?;
        rtnl.put_bpf_filter(
            dev.ifindex,
            parent,
            priority,
            prog.fd.as_raw_fd(),
            &prog.name,
            false,
        )
        .map_err(anyhow::Error::new)
        .with_context(|| {
            format!(
                "adding a tc filter of priority {priority} at {hook_name} of {}",
                dev.name
            )
        })?;
        Ok(())
    })();
    if let Err(e) = made {
        journal.abandon(
            entry,
            &[
                Step::TcSettle { path: path.clone() },
                Step::RmdirIfEmpty {
                    path: links_dir.clone(),
                },
            ],
        )?;
        if added_clsact {
            rtnl.del_clsact(dev.ifindex).ok();
        }
        return Err(e);
    }
    journal.finish(entry)?;
    drop(entered);
    ctx.out.note(format_args!(
        "attached program {} ({}) at {hook_name} of {} as a direct-action tc filter, priority \
         {priority}{}; its record is {}",
        prog.id,
        prog.name,
        dev.name,
        if added_clsact {
            " (added a clsact qdisc)"
        } else {
            ""
        },
        path.display()
    ));
    Ok(TcAttachment {
        device: dev.name.clone(),
        ifindex: dev.ifindex,
        netns: ns.name,
        hook: hook_name,
        prog_id: prog.id,
        prog_name: prog.name.clone(),
        priority,
        handle: netlink::TC_FILTER_HANDLE,
        pinned: path,
    })
}

/// Deletes the tc filters xdpctl made at `dev`'s hook (those of `prog`
/// only, if given), each with its record as one journaled change.
pub fn detach(
    ctx: &Ctx,
    dev_name: &str,
    netns_spec: Option<&str>,
    egress: bool,
    prog: Option<&Handle>,
) -> Result<Vec<TcAttachment>> {
    let only = prog.map(|h| ops::tcx::relative_id(ctx, h)).transpose()?;
    let ns = netns::Netns::of(netns_spec)?;
    // NB: the steps run in the namespace (one without a name under
    // /run/netns cannot be entered by its inode).
    let entered = netns::enter(netns_spec)?;
    let ns_ino = netns::current_inode()?;
    let mut rtnl = Rtnl::open().context("opening rtnetlink")?;
    // A device that went took its filters: its records are only unpinned.
    let dev = device(&mut rtnl, dev_name, netns_spec);
    let found = our_records(ctx, dev_name, ns_ino, egress)?;
    if let Err(e) = &dev
        && found.is_empty()
    {
        bail!("{e:#}");
    }
    let mut out = Vec::new();
    for (prog_id, path, pin) in found {
        if only.is_some_and(|id| id != prog_id) {
            continue;
        }
        let Hook::Tc { prio, .. } = pin.hook else {
            continue;
        };
        // Another tool may have replaced the filter at that place: it is
        // theirs now, and stays.
        let runs = {
            use crate::model::change::Kernel as _;
            crate::kernel::steps::Real.tc_filter(&pin)?
        };
        let (mut journal, notes) = ops::begin(&pin.owner.journal_dir(&ctx.bpffs))?;
        ctx.out.notes(notes);
        let entry = journal.begin(Change::Steps {
            what: format!("delete of the tc filter recorded at {}", path.display()),
            steps: vec![
                Step::TcDetach { path: path.clone() },
                Step::RmdirIfEmpty {
                    path: pin.owner.links_dir(),
                },
            ],
        })?;
        journal.run_forward(&entry)?;
        journal.finish(entry)?;
        let Ok(dev) = &dev else {
            ctx.out.note(format_args!(
                "{dev_name} is gone, and its filters with it: unpinned {}",
                path.display()
            ));
            continue;
        };
        if runs != Some(Some(prog_id)) {
            ctx.out.note(format_args!(
                "the filter of priority {prio} at {} of {dev_name} is no longer xdpctl's ({}): \
                 left it alone, unpinned its record {}",
                pin.hook.name(),
                match runs.flatten() {
                    Some(other) => format!("it runs program {other}: another tool replaced it"),
                    None => "another tool deleted it".to_owned(),
                },
                path.display()
            ));
            continue;
        }
        let prog_name = crate::kernel::objects::describe(Kind::Prog, prog_id)
            .map_or_else(|_| "?".into(), |d| d.name);
        ctx.out.note(format_args!(
            "detached program {prog_id} ({prog_name}) from {} of {dev_name} (tc filter, \
             priority {prio}; unpinned {})",
            pin.hook.name(),
            path.display()
        ));
        out.push(TcAttachment {
            device: dev.name.clone(),
            ifindex: dev.ifindex,
            netns: ns.name.clone(),
            hook: pin.hook.name(),
            prog_id,
            prog_name,
            priority: prio,
            handle: netlink::TC_FILTER_HANDLE,
            pinned: path,
        });
    }
    drop(entered);
    if out.is_empty() && dev.is_ok() {
        let hook = if egress { "tc-egress" } else { "tc-ingress" };
        ctx.out.note(format_args!(
            "{dev_name} has no tc filter of xdpctl's at {hook}{}; `xdpctl net show {dev_name}{}` \
             lists what runs there",
            only.map_or(String::new(), |id| format!(" running program {id}")),
            crate::model::error_text::netns_arg(netns_spec)
        ));
    }
    Ok(out)
}

/// Deletes every tc filter the load `dir` made, before `unload` removes
/// its records with the rest of its pins; returns what it detached.
pub fn detach_load(
    journal: &mut ops::journal::Journal,
    links_dir: &Path,
) -> Result<Vec<(LinkPin, u32, u32)>> {
    use crate::model::change::Kernel as _;
    let mut out = Vec::new();
    for (path, pin, prog) in records(links_dir) {
        // Only a filter that still runs the record's program is deleted
        // (and reported); the record goes either way.
        let runs = crate::kernel::steps::Real.tc_filter(&pin)? == Some(Some(prog));
        let ifindex = if runs { ifindex_of(&pin)? } else { 0 };
        let entry = journal.begin(Change::Steps {
            what: format!("delete of the tc filter recorded at {}", path.display()),
            steps: vec![Step::TcDetach { path: path.clone() }],
        })?;
        journal.run_forward(&entry)?;
        journal.finish(entry)?;
        if runs {
            out.push((pin, prog, ifindex));
        }
    }
    Ok(out)
}

/// The ifindex of the device a record names, in its namespace (0 when
/// it cannot be found).
fn ifindex_of(pin: &LinkPin) -> Result<u32> {
    let Ok(_in) = netns::enter_inode(pin.netns)? else {
        return Ok(0);
    };
    let mut rtnl = Rtnl::open().context("opening rtnetlink")?;
    Ok(rtnl.device_of_pin(&pin.dev)?.map_or(0, |d| d.ifindex))
}

/// xdpctl's tc records for a device named `dev` of namespace `ino` at the
/// hook, by priority: (program, path, record).
fn our_records(
    ctx: &Ctx,
    dev: &str,
    ino: u64,
    egress: bool,
) -> Result<Vec<(u32, PathBuf, LinkPin)>> {
    let mut out = crate::ops::attach::own_pins(
        ctx,
        Kind::Prog,
        dev,
        ino,
        |h| matches!(h, Hook::Tc { egress: e, .. } if *e == egress),
    )?;
    out.sort_by_key(|(_, _, p)| match p.hook {
        Hook::Tc { prio, .. } => prio,
        _ => 0,
    });
    Ok(out)
}
