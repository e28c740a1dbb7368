//! tcx: a `sched_cls` program attached at a device's tcx ingress or egress
//! with a bpf_link owned by its load directory (or xdpctl's own links for
//! another tool's program), placed among the hook's other programs with
//! the kernel's multi-program API, and detached again. The link is pinned
//! as `links/tcx_<hook>:<prog>:<dev>@<netns inode>` through the journal's
//! attach change, so a SIGKILL at any point leaves what the next command
//! finishes or undoes, as for XDP; `unload` detaches a load's tcx links
//! with its XDP ones.

use std::{os::fd::AsFd, path::PathBuf};

use anyhow::{Context as _, Result, bail};
use pinfs::Kind;
use serde::Serialize;

use crate::{
    ctx::Ctx,
    kernel::{
        netlink::Rtnl,
        netns, objects,
        sys::{self, IdKind, TcxPlace},
    },
    model::{
        change::{Change, Step},
        handle::Handle,
        linkpin::{Hook, LinkPin},
    },
    ops::{
        self,
        attach::{device, resolve_tc_prog},
    },
    render::Tabular,
};

/// Where to put the program: a place, relative to a program (or a link)
/// given as a handle.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Place {
    /// Before every other.
    First,
    /// After every other (the default).
    Last,
    /// Right before this program.
    Before(Handle),
    /// Right after this program.
    After(Handle),
}

/// `xdpctl attach --tcx`'s options.
#[derive(Clone, Debug)]
pub struct TcxOptions {
    /// The `sched_cls` program.
    pub prog: Handle,
    /// The device.
    pub dev: String,
    /// Its namespace.
    pub netns: Option<String>,
    /// Egress, or ingress.
    pub egress: bool,
    /// Where among the hook's programs.
    pub place: Place,
    /// Refuse unless the hook is at this revision (0: any).
    pub expected_revision: u64,
}

/// A tcx attachment made or removed. This is the documented JSON shape.
#[derive(Debug, Serialize)]
pub struct TcxAttachment {
    /// The device.
    pub device: String,
    /// Its ifindex.
    pub ifindex: u32,
    /// Its namespace, named as outputs name namespaces.
    pub netns: Option<String>,
    /// `tcx-ingress` or `tcx-egress`.
    pub hook: &'static str,
    /// The program.
    pub prog_id: u32,
    /// Its name.
    pub prog_name: String,
    /// The link.
    pub link_id: u32,
    /// Its pin.
    pub link_pinned: PathBuf,
    /// The program's place in the hook's run order, from 0, after the
    /// change (attach), or where it was (detach).
    pub order: usize,
    /// The hook's revision after the change.
    pub revision: u64,
}

impl Tabular for TcxAttachment {
    const HEADERS: &'static [&'static str] =
        &["DEVICE", "HOOK", "ORDER", "PROG", "NAME", "LINK", "PINNED"];
    const OPTIONAL: &'static [&'static str] = &["PINNED"];
    fn cells(&self, view: &crate::render::View) -> Vec<String> {
        vec![
            self.device.clone(),
            self.hook.to_owned(),
            self.order.to_string(),
            self.prog_id.to_string(),
            self.prog_name.clone(),
            self.link_id.to_string(),
            view.path(&self.link_pinned),
        ]
    }
}

/// The programs of a hook in run order, and its revision.
fn query(ifindex: u32, egress: bool) -> Result<(Vec<u32>, u64)> {
    sys::prog_query_revision(ifindex, sys::tcx_attach_type(egress))
        .context("querying the tcx programs (a kernel before 6.6 has no tcx)")
}

/// The programs at the tcx hook of device `dev` (of the namespace named
/// or at the path `netns`), in run order; empty when the device or the
/// namespace is not there, or the kernel has no tcx.
pub fn programs_at(dev: &str, netns_spec: Option<&str>, egress: bool) -> Result<Vec<u32>> {
    let path = netns_spec.map(|n| netns::path_of(n).display().to_string());
    let Ok(_in) = netns::enter(path.as_deref()) else {
        return Ok(Vec::new());
    };
    let mut rtnl = Rtnl::open().context("opening rtnetlink")?;
    let Some(d) = rtnl.device(dev)? else {
        return Ok(Vec::new());
    };
    Ok(query(d.ifindex, egress)
        .map(|(progs, _)| progs)
        .unwrap_or_default())
}

/// Whether program `prog` runs at that hook.
pub fn runs_at(dev: &str, netns_spec: Option<&str>, egress: bool, prog: u32) -> Result<bool> {
    Ok(programs_at(dev, netns_spec, egress)?.contains(&prog))
}

/// Attaches `opts.prog` at tcx, through the journal.
pub fn attach(ctx: &Ctx, opts: &TcxOptions) -> Result<TcxAttachment> {
    let prog = resolve_tc_prog(ctx, &opts.prog)?;
    let hook = Hook::Tcx {
        egress: opts.egress,
        prog: prog.name.clone(),
    };
    let owner = ctx.owner_of(prog.load_dir())?;
    // The place, its program resolved before entering the namespace (pins
    // are paths of this mount namespace; ids are global).
    let place = match &opts.place {
        Place::First => TcxPlace::First,
        Place::Last => TcxPlace::Last,
        Place::Before(h) => TcxPlace::Before {
            id: relative_id(ctx, h)?,
            link: false,
        },
        Place::After(h) => TcxPlace::After {
            id: relative_id(ctx, h)?,
            link: false,
        },
    };
    let (mut journal, notes) = ops::begin(&owner.journal_dir(&ctx.bpffs))?;
    ctx.out.notes(notes);
    let ns = netns::Netns::of(opts.netns.as_deref())?;
    let entered = netns::enter(opts.netns.as_deref())?;
    let ns_ino = netns::current_inode()?;
    let mut rtnl = Rtnl::open().context("opening rtnetlink")?;
    let dev = device(&mut rtnl, &opts.dev, opts.netns.as_deref())?;
    let pin = LinkPin::tcx(owner.clone(), &dev.name, ns_ino, opts.egress, &prog.name);
    let path = pin.path();
    // A pin of ours whose link is detached (its device went) is stale.
    journal.run(&[Step::UnpinIfDetached { path: path.clone() }])?;
    let in_ns = crate::model::error_text::netns_arg(opts.netns.as_deref());
    if path.exists() {
        bail!(
            "{} already runs {} at {} by this load's link (pinned at {}); a program runs once a \
             hook: detach it first (xdpctl detach {} --tcx {} --prog {}{in_ns})",
            dev.name,
            prog.name,
            hook.name(),
            path.display(),
            dev.name,
            if opts.egress { "egress" } else { "ingress" },
            prog.id,
        );
    }
    if let TcxPlace::Before { id, .. } | TcxPlace::After { id, .. } = place
        && !query(dev.ifindex, opts.egress)?.0.contains(&id)
    {
        bail!(
            "program {id} does not run at {} of {}: --before and --after name a program the \
             hook runs (see `xdpctl net show {}{in_ns}`)",
            hook.name(),
            dev.name,
            dev.name
        );
    }
    let links_dir = owner.links_dir();
    let entry = journal.begin(Change::Attach {
        pin: path.clone(),
        links_dir: links_dir.clone(),
        undo: false,
    })?;
    let made = (|| -> Result<u32> {
        if !links_dir.exists() {
            pinfs::mkdir_0700(&links_dir)
                .with_context(|| format!("mkdir {}", links_dir.display()))?;
        }
        let link = sys::link_create_tcx(
            prog.fd.as_fd(),
            dev.ifindex,
            opts.egress,
            place,
            opts.expected_revision,
        )
        .map_err(|e| {
            let now = query(dev.ifindex, opts.egress).map_or(0, |(_, r)| r);
            tcx_error(e, &dev.name, &hook, opts.expected_revision, now, &in_ns)
        })?;
        pinfs::obj_pin(link.as_fd(), &path)?;
        Ok(pinfs::obj_info(link.as_fd())?.id)
    })();
    let link_id = match made {
        Ok(id) => id,
        Err(e) => {
            journal.abandon(entry, &[])?;
            return Err(e);
        }
    };
    journal.finish(entry)?;
    let (after, revision) = query(dev.ifindex, opts.egress)?;
    drop(entered);
    let row = TcxAttachment {
        device: dev.name.clone(),
        ifindex: dev.ifindex,
        netns: ns.name,
        hook: hook.name(),
        prog_id: prog.id,
        prog_name: prog.name.clone(),
        link_id,
        link_pinned: path.clone(),
        order: after.iter().position(|p| *p == prog.id).unwrap_or(0),
        revision,
    };
    ctx.out.note(format_args!(
        "attached program {} ({}) at {} of {} as bpf_link {link_id}, pinned at {}; it runs {} \
         of {}",
        prog.id,
        prog.name,
        row.hook,
        row.device,
        path.display(),
        ordinal(row.order),
        after.len()
    ));
    Ok(row)
}

/// Detaches the tcx links xdpctl pinned for `dev`'s hook (those of `prog`
/// only, if given), through the journal: each link is detached and its
/// pin removed as one change.
pub fn detach(
    ctx: &Ctx,
    dev_name: &str,
    netns_spec: Option<&str>,
    egress: bool,
    prog: Option<&Handle>,
) -> Result<Vec<TcxAttachment>> {
    let only = prog.map(|h| relative_id(ctx, h)).transpose()?;
    let ns = netns::Netns::of(netns_spec)?;
    let entered = netns::enter(netns_spec)?;
    let ns_ino = netns::current_inode()?;
    let mut rtnl = Rtnl::open().context("opening rtnetlink")?;
    let dev = match device(&mut rtnl, dev_name, netns_spec) {
        Ok(dev) => dev,
        // The device went, and its links with it: what is left is pins,
        // which the journal's recovery removes (as `doctor` does).
        Err(e) => {
            drop(entered);
            // The links that went with it (not those of a device that was
            // only renamed).
            let stale: Vec<_> = our_pins(ctx, dev_name, ns_ino, egress)?
                .into_iter()
                .filter(|(id, _, _)| {
                    sys::fd_by_id(IdKind::Link, *id)
                        .ok()
                        .and_then(|fd| sys::link_info(fd.as_fd()).ok())
                        .is_none_or(|i| sys::device_link_ifindex(&i).is_none_or(|x| x == 0))
                })
                .collect();
            if stale.is_empty() {
                return Err(e);
            }
            for (_, path, pin) in &stale {
                let (mut journal, _) = ops::begin(&pin.owner.journal_dir(&ctx.bpffs))?;
                journal.run(&[
                    Step::UnpinIfDetached { path: path.clone() },
                    Step::RmdirIfEmpty {
                        path: pin.owner.links_dir(),
                    },
                ])?;
                ctx.out.note(format_args!(
                    "{dev_name} is gone, and its links with it: unpinned {}",
                    path.display()
                ));
            }
            return Ok(Vec::new());
        }
    };
    let (order, _) = query(dev.ifindex, egress)?;
    let found = our_pins(ctx, dev_name, ns_ino, egress)?;
    let mut out = Vec::new();
    for (link_id, path, pin) in found {
        let fd = match sys::fd_by_id(IdKind::Link, link_id) {
            Ok(fd) => fd,
            Err(_) => continue,
        };
        let info = sys::link_info(fd.as_fd()).context("reading a tcx link")?;
        if only.is_some_and(|id| id != info.prog_id) {
            continue;
        }
        let (mut journal, notes) = ops::begin(&pin.owner.journal_dir(&ctx.bpffs))?;
        ctx.out.notes(notes);
        // Recorded first: killed between the detach and the unpin, the
        // next command finishes both.
        let entry = journal.begin(Change::Steps {
            what: format!("detach of the tcx link pinned at {}", path.display()),
            steps: vec![
                Step::DetachPinned { path: path.clone() },
                Step::RmdirIfEmpty {
                    path: pin.owner.links_dir(),
                },
            ],
        })?;
        journal.run_forward(&entry)?;
        journal.finish(entry)?;
        let prog_name =
            objects::describe(Kind::Prog, info.prog_id).map_or_else(|_| "?".into(), |d| d.name);
        ctx.out.note(format_args!(
            "detached program {} ({prog_name}) from {} of {} (bpf_link {link_id}, unpinned {})",
            info.prog_id,
            pin.hook.name(),
            dev.name,
            path.display()
        ));
        out.push(TcxAttachment {
            device: dev.name.clone(),
            ifindex: dev.ifindex,
            netns: ns.name.clone(),
            hook: pin.hook.name(),
            prog_id: info.prog_id,
            prog_name,
            link_id,
            link_pinned: path,
            order: order.iter().position(|p| *p == info.prog_id).unwrap_or(0),
            revision: 0,
        });
        drop(fd);
    }
    let (_, revision) = query(dev.ifindex, egress)?;
    drop(entered);
    for row in &mut out {
        row.revision = revision;
    }
    if out.is_empty() {
        let hook = if egress { "tcx-egress" } else { "tcx-ingress" };
        ctx.out.note(format_args!(
            "{dev_name} has no tcx link of xdpctl's at {hook}{}; `xdpctl net show {dev_name}{}` \
             lists what runs there",
            only.map_or(String::new(), |id| format!(" running program {id}")),
            crate::model::error_text::netns_arg(netns_spec)
        ));
    }
    Ok(out)
}

/// xdpctl's tcx link pins for a device named `dev` of namespace `ino`
/// at the hook: (link id, pin path, pin).
fn our_pins(ctx: &Ctx, dev: &str, ino: u64, egress: bool) -> Result<Vec<(u32, PathBuf, LinkPin)>> {
    crate::ops::attach::own_pins(
        ctx,
        Kind::Link,
        dev,
        ino,
        |h| matches!(h, Hook::Tcx { egress: e, .. } if *e == egress),
    )
}

/// The id of the program `h` names (for --before, --after, --prog): a
/// pinned path (under the bpffs root, or absolute), `id N`, `name N`.
pub(crate) fn relative_id(ctx: &Ctx, h: &Handle) -> Result<u32> {
    let as_path;
    let h = match h {
        Handle::Name(n) if ctx.bpffs.join(n).exists() => {
            as_path = Handle::Path(n.into());
            &as_path
        }
        Handle::Path(p) => {
            as_path = Handle::Path(ctx.resolve(p));
            &as_path
        }
        other => other,
    };
    let (fd, _) = objects::resolve(&ctx.bpffs, h, Kind::Prog)?;
    Ok(pinfs::obj_info(fd.as_fd())?.id)
}

/// A refused tcx attach, in the operator's terms.
fn tcx_error(
    e: std::io::Error,
    dev: &str,
    hook: &Hook,
    expected: u64,
    now: u64,
    in_ns: &str,
) -> anyhow::Error {
    let hint = match e.raw_os_error() {
        Some(libc::ESTALE) => Some(format!(
            "{} of {dev} is at revision {now}, not {expected}: it changed since; see what runs \
             there (`xdpctl net show {dev}{in_ns}`) and try again with --expected-revision {now}",
            hook.name()
        )),
        Some(libc::EEXIST) => Some(format!(
            "the program runs at {} of {dev} already (a hook runs a program once)",
            hook.name()
        )),
        Some(libc::EINVAL) => Some(format!(
            "this kernel refused tcx at {dev} (tcx came in Linux 6.6)"
        )),
        _ => None,
    };
    let base = anyhow::Error::new(e).context(format!("attaching at {} of {dev}", hook.name()));
    match hint {
        Some(h) => base.context(h),
        None => base,
    }
}

/// `1st`, `2nd`, `3rd`, `4th`... for position `n` from 0.
fn ordinal(n: usize) -> String {
    let k = n + 1;
    let suffix = match (k % 10, k % 100) {
        (1, 11) | (2, 12) | (3, 13) => "th",
        (1, _) => "st",
        (2, _) => "nd",
        (3, _) => "rd",
        _ => "th",
    };
    format!("{k}{suffix}")
}
