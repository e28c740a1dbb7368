//! Attach: an XDP program on a device (`xdpctl attach`, `apply`).
//!
//! An attachment must outlive xdpctl. By default it is a bpf_link pinned at
//! `<load dir>/links/<device>@<netns inode>`: a link cannot be replaced by
//! other tools behind our back, and detaching is removing it; `unload`
//! detaches it with the load. A program no load directory holds (another
//! tool's) gets its link pinned in xdpctl's own `_xdpctl/links/` at the root
//! of the bpffs, never in the other tool's directory. `--netlink` attaches
//! the legacy way instead, visible to and removable by `ip link`.
//!
//! A link is created, then pinned: killed before the pin, the kernel drops
//! the link with the process. The journal record written first lets the
//! next command remove what a crash could leave (an empty `links/`);
//! detach removes `links/` with its last link.

use std::{
    os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd},
    path::Path,
};

use anyhow::{Context as _, Result, bail};
use pinfs::Kind;
use serde::Serialize;

use crate::{
    ctx::Ctx,
    kernel::{
        links::{self, XdpAttach},
        netlink::{Device, Rtnl},
        netns, objects,
        sys::{self, IdKind, PROG_TYPE_SCHED_CLS, PROG_TYPE_XDP, xdp_flags},
    },
    model::{
        change::{Change, Dev, Step},
        duration::humane,
        handle::Handle,
        linkpin::{LinkPin, Owner},
        manifest,
        xdp::{XdpAttachment, XdpMode},
    },
    ops::{self, loaddir::LoadDir, pending, watcher},
    render::Tabular,
};

/// A program to attach, resolved from the command line.
pub struct Prog {
    pub fd: OwnedFd,
    pub id: u32,
    pub name: String,
    /// The load directory it belongs to, if any: links go there.
    load: Option<LoadDir>,
}

impl Prog {
    /// The load directory that holds it, if any.
    pub fn load_dir(&self) -> Option<&Path> {
        self.load.as_ref().map(|l| l.path.as_path())
    }
}

/// The load directory a pinned program belongs to: it is pinned directly
/// in a load directory whose manifest lists it.
fn load_of(pin: &Path) -> Option<LoadDir> {
    let dir = pin.parent()?;
    let load = LoadDir::open(dir).ok()?;
    let name = pin.file_name()?.to_str()?;
    load.manifest
        .programs
        .iter()
        .any(|p| p.name == name)
        .then_some(load)
}

/// Resolves a program handle (a load directory, a pinned path, `id N`,
/// `name N`) to an XDP program.
pub fn resolve_prog(ctx: &Ctx, handle: &Handle) -> Result<Prog> {
    resolve_typed(ctx, handle, false)
}

/// Resolves a program handle to a `sched_cls` program, for tcx.
pub fn resolve_tc_prog(ctx: &Ctx, handle: &Handle) -> Result<Prog> {
    resolve_typed(ctx, handle, true)
}

/// Resolves a program handle to an XDP program.
pub fn resolve_xdp_prog(ctx: &Ctx, handle: &Handle) -> Result<Prog> {
    resolve_typed(ctx, handle, false)
}

fn resolve_typed(ctx: &Ctx, handle: &Handle, tc: bool) -> Result<Prog> {
    let (kind, what) = if tc { ("tc", "tc") } else { ("xdp", "XDP") };
    // A bare name that is a path under the bpffs root is that path.
    let as_path;
    let handle = match handle {
        Handle::Name(name) if ctx.bpffs.join(name).exists() => {
            as_path = Handle::Path(name.into());
            &as_path
        }
        other => other,
    };
    let (fd, load) = match handle {
        Handle::Path(path) if ctx.resolve(path).is_dir() => {
            let load = LoadDir::open(&ctx.resolve(path))?;
            let xdp: Vec<&manifest::ProgEntry> = load
                .manifest
                .programs
                .iter()
                .filter(|p| p.kind == kind)
                .collect();
            let prog = match xdp.as_slice() {
                [one] => load.path.join(&one.name),
                [] => bail!("{} holds no {what} program", load.path.display()),
                many => bail!(
                    "{} holds {} {what} programs ({}); name one of them",
                    load.path.display(),
                    many.len(),
                    many.iter()
                        .map(|p| load.path.join(&p.name).display().to_string())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            };
            (objects::open_pinned(&prog, Kind::Prog)?, Some(load))
        }
        Handle::Path(path) => {
            let path = ctx.resolve(path);
            // An object file given where a loaded program goes.
            if path.is_file() && !pinfs::is_bpffs(&path).unwrap_or(false) {
                bail!(
                    "{} is a file, not a pinned program: load it first (xdpctl load {} --pin \
                     NAME), then name NAME/PROGRAM",
                    path.display(),
                    path.display()
                );
            }
            (objects::open_pinned(&path, Kind::Prog)?, load_of(&path))
        }
        Handle::Id(_) | Handle::Name(_) => {
            let (fd, _) = objects::resolve(&ctx.bpffs, handle, Kind::Prog)?;
            let id = pinfs::obj_info(fd.as_fd())?.id;
            let pins = ctx.pin_index()?;
            let load = pins
                .get(&(Kind::Prog, id))
                .into_iter()
                .flatten()
                .find_map(|p| load_of(p));
            (fd, load)
        }
    };
    let (info, _) = sys::prog_info(fd.as_fd()).context("reading the program's info")?;
    let want = if tc {
        PROG_TYPE_SCHED_CLS
    } else {
        PROG_TYPE_XDP
    };
    if info.type_ != want {
        let hint = match (tc, info.type_) {
            (false, PROG_TYPE_SCHED_CLS) => {
                "; attach it at tcx instead (--tcx ingress or --tcx egress), or as a tc filter on \
                 a kernel before 6.6 (--tc ingress or --tc egress)"
            }
            (true, PROG_TYPE_XDP) => "; attach it at XDP (without --tcx or --tc)",
            _ => "",
        };
        let type_name = sys::prog_type_name(info.type_);
        bail!(
            "program {} ({}) is {} {type_name} program, not {}; this takes {} programs{hint}",
            info.id,
            sys::c_name(&info.name),
            if type_name.starts_with(['a', 'e', 'i', 'o', 'u', 'x']) {
                "an"
            } else {
                "a"
            },
            if tc { "sched_cls" } else { "XDP" },
            if tc { "sched_cls (tc)" } else { "XDP" },
        );
    }
    Ok(Prog {
        fd,
        id: info.id,
        name: sys::c_name(&info.name),
        load,
    })
}

/// The device named `name` in the current namespace, or a clear error.
pub(crate) fn device(rtnl: &mut Rtnl, name: &str, netns: Option<&str>) -> Result<Device> {
    let found = rtnl
        .device(name)
        .with_context(|| format!("looking up device {name}"))?;
    found.ok_or_else(|| match netns {
        Some(ns) => anyhow::anyhow!("no device named {name} in network namespace {ns}"),
        None => anyhow::anyhow!(
            "no device named {name} (see `ip link`; use --netns for another namespace)"
        ),
    })
}

pub(crate) fn mode_of(dev: &Device, prog_id: u32) -> Option<XdpMode> {
    dev.xdp
        .attached()
        .into_iter()
        .find(|(_, id)| *id == prog_id)
        .map(|(m, _)| m)
}

/// The result of attach, or one entry of detach.
#[derive(Debug, Serialize)]
pub struct Attachment {
    /// Device name.
    pub device: String,
    /// Interface index.
    pub ifindex: u32,
    /// Network namespace as given with --netns, if any.
    pub netns: Option<String>,
    /// The program and how it is attached.
    #[serde(flatten)]
    pub xdp: XdpAttachment,
}

impl Attachment {
    /// A netlink attachment of `prog_id` on `dev` in `mode`.
    pub(crate) fn netlink(dev: &Device, netns: Option<&str>, mode: XdpMode, prog_id: u32) -> Self {
        Attachment {
            device: dev.name.clone(),
            ifindex: dev.ifindex,
            netns: netns.map(netns::display),
            xdp: XdpAttachment {
                mode: mode.to_string(),
                prog_id,
                prog_name: objects::describe(Kind::Prog, prog_id)
                    .map_or_else(|_| "?".into(), |d| d.name),
                attach: "netlink",
                link_id: None,
                link_pinned: Vec::new(),
                dispatcher: None,
                chain: None,
            },
        }
    }
}

/// Takes a netlink-attached program off a device.
pub(crate) fn detach_netlink(
    rtnl: &mut Rtnl,
    dev: &Device,
    mode: XdpMode,
    prog_id: u32,
) -> Result<()> {
    rtnl.set_xdp(dev.ifindex, -1, mode.flag(), None)
        .with_context(|| {
            format!(
                "detaching program {prog_id} from {} ({mode} mode)",
                dev.name
            )
        })
}

impl Tabular for Attachment {
    const HEADERS: &'static [&'static str] =
        &["DEVICE", "MODE", "PROG", "NAME", "ATTACH", "LINK", "PINNED"];
    // NB: LINK says it: an id for a link, `-` for netlink.
    const OPTIONAL: &'static [&'static str] = &["ATTACH"];
    fn cells(&self, view: &crate::render::View) -> Vec<String> {
        vec![
            self.device.clone(),
            self.xdp.mode.clone(),
            self.xdp.prog_id.to_string(),
            self.xdp.prog_name.clone(),
            self.xdp.attach.to_owned(),
            self.xdp
                .link_id
                .map_or_else(|| "-".to_owned(), |id| id.to_string()),
            view.paths(&self.xdp.link_pinned),
        ]
    }
}

/// Explains a failed attach in the operator's terms.
fn attach_error(
    err: impl std::error::Error + Send + Sync + 'static,
    errno: Option<i32>,
    dev: &str,
    mode: XdpMode,
    netns: Option<&str>,
) -> anyhow::Error {
    // A refused native attach says why, from the device's facts (`net
    // explain`): the kernel's errno alone (EOPNOTSUPP, ERANGE, EINVAL)
    // does not, and a link's attach carries no kernel message.
    let in_ns = crate::model::error_text::netns_arg(netns);
    let see = format!("see `xdpctl net explain {dev}{in_ns}`");
    let explained = match (errno, mode) {
        (Some(libc::EPERM | libc::EACCES), _) => None,
        // The kernel's EEXIST is also its answer for a device whose upper
        // device (bridge, bond, macvlan) runs a program.
        (Some(libc::EBUSY | libc::EEXIST), _) => crate::ops::explain::why_upper(dev, netns)
            .map(|why| format!("XDP refused on {why}; {see}")),
        (Some(_), XdpMode::Native) => crate::ops::explain::why_native_refused(dev, netns)
            .map(|why| format!("native XDP refused on {why}; {see}")),
        _ => None,
    };
    let hint = match (errno, mode) {
        _ if explained.is_some() => explained,
        (Some(libc::EOPNOTSUPP), XdpMode::Native) => Some(format!(
            "native XDP is not supported by the driver of {dev}; use --mode generic"
        )),
        (Some(libc::EINVAL | libc::EOPNOTSUPP), XdpMode::Offload) => Some(format!(
            "{dev} cannot run this program offloaded (it needs an offload-capable NIC and a program \
             loaded for it); use --mode native or --mode generic"
        )),
        (Some(libc::EBUSY | libc::EEXIST), _) => Some(format!(
            "{dev} got an XDP program from someone else meanwhile, or has one in another mode; \
             see `xdpctl net show {dev}{in_ns}`"
        )),
        _ => None,
    };
    let base = anyhow::Error::new(err).context(format!("attaching to {dev} in {mode} mode"));
    match hint {
        Some(h) => base.context(h),
        None => base,
    }
}

/// What to attach where, and how: `xdpctl attach`'s options, `apply`'s
/// attachments.
#[derive(Clone, Debug)]
pub struct AttachOptions {
    /// The program.
    pub prog: Handle,
    /// The device.
    pub dev: String,
    /// The XDP mode.
    pub mode: XdpMode,
    /// The device's namespace (a name under /run/netns, or a path).
    pub netns: Option<String>,
    /// Replace the XDP program the device runs, atomically.
    pub replace: bool,
    /// Attach over netlink instead of by a pinned link.
    pub netlink: bool,
    /// Rolled back unless confirmed within this.
    pub confirm_within: Option<std::time::Duration>,
    /// Tell the operator what the device's facts say of the mode chosen
    /// (`attach` does; `apply`, which the agent runs on every resync,
    /// does not).
    pub advise: bool,
}

/// Attaches a program to a device through the journal: the attachment.
pub fn attach(ctx: &Ctx, args: &AttachOptions) -> Result<Attachment> {
    let prog = resolve_prog(ctx, &args.prog)?;
    // Where a link is pinned: in the load directory that holds the program,
    // or, for a program no load holds (another tool's), in xdpctl's own
    // `_xdpctl/links/` at the root of the bpffs. Never in another tool's
    // directory.
    let owner = match (&prog.load, args.netlink) {
        (_, true) => None,
        (Some(load), false) => Some(Owner::Load(load.path.clone())),
        (None, false) => {
            ctx.ensure_bpffs()?;
            Some(ctx.own_links()?)
        }
    };
    let links_dir = owner.as_ref().map(Owner::links_dir);
    let lock_on = match &prog.load {
        Some(load) if !args.netlink => load.path.clone(),
        _ => {
            ctx.ensure_bpffs()?;
            ctx.bpffs.clone()
        }
    };
    let (mut journal, notes) = ops::begin(&lock_on)?;
    ctx.out.notes(notes);
    if args.confirm_within.is_some() {
        pending::check_none(&journal)?;
    }

    let ns = netns::Netns::of(args.netns.as_deref())?;
    let jit = crate::kernel::netdev::jit_enable();
    let entered = netns::enter(args.netns.as_deref())?;
    let ns_ino = netns::current_inode()?;
    let mut rtnl = Rtnl::open().context("opening rtnetlink")?;
    let dev = device(&mut rtnl, &args.dev, args.netns.as_deref())?;
    // NB: named `<dev>@<netns inode>`: link info does not say the namespace.
    let new_pin = owner.map(|o| LinkPin::new(o, &dev.name, ns_ino));
    let link_pin = new_pin.as_ref().map(LinkPin::path);
    let pins = ctx.pin_index()?;
    let links = links::XdpLinks::load(&pins)?;
    let flag = args.mode.flag();
    let ndev = Dev {
        netns: ns_ino,
        ifindex: dev.ifindex,
        mode: flag,
    };

    // A pin of ours whose link is no longer attached is stale: remove it.
    if let Some(pin) = &link_pin {
        journal.run(&[Step::UnpinIfDetached { path: pin.clone() }])?;
    }

    let existing = dev.xdp.attached();
    let mut previous = None;
    let (link_id, link_pinned, rollback, expect) = if let Some(&(mode, old_id)) = existing.first() {
        let old_name =
            objects::describe(Kind::Prog, old_id).map_or_else(|_| "?".into(), |d| d.name);
        let (old_link, how) = match links.find(dev.ifindex, mode, old_id)? {
            XdpAttach::Link(l) => (Some(l), format!("a bpf_link (link {})", l.id)),
            XdpAttach::Netlink => (None, "netlink".to_owned()),
            XdpAttach::UnknownLink => bail!(
                "{} runs program {old_id} ({old_name}) by a bpf_link, but several links of \
                 devices with its ifindex in other namespaces run that program and the kernel \
                 does not say which is this one's; detach it with the tool that attached it",
                dev.name
            ),
        };
        let in_ns = crate::model::error_text::netns_arg(args.netns.as_deref());
        if !args.replace && mode != args.mode {
            bail!(
                "{} already has XDP program {old_id} ({old_name}) attached in {mode} mode by \
                 {how}, and a device runs one mode at a time; `xdpctl detach {}{in_ns}` first, \
                 or use --mode {mode} --replace to swap it in that mode",
                dev.name,
                dev.name
            );
        }
        if !args.replace {
            bail!(
                "{} already has XDP program {old_id} ({old_name}) attached in {mode} mode by \
                 {how}; use --replace to swap it, or `xdpctl detach {}{in_ns}` first",
                dev.name,
                dev.name
            );
        }
        if existing.len() > 1 || mode != args.mode {
            bail!(
                "{} runs program {old_id} in {mode} mode, and --replace swaps within one mode; \
                 detach it first (xdpctl detach {}{in_ns}) or use --mode {}",
                dev.name,
                dev.name,
                mode
            );
        }
        previous = Some(old_id);
        let old_fd =
            sys::fd_by_id(IdKind::Prog, old_id).context("opening the program being replaced")?;
        match old_link {
            Some(l) => {
                let link_fd =
                    sys::fd_by_id(IdKind::Link, l.id).context("opening the link being updated")?;
                // The link now belongs to the new program's owner: its
                // xdpctl pin moves there (from the replaced load's links/,
                // or from `_xdpctl/links/`) as one journaled change with
                // the update, so unloading the replaced load leaves it be.
                let mut pinned = pins.get(&(Kind::Link, l.id)).cloned().unwrap_or_default();
                // NB: the link stays a link under --netlink too: its pin
                // goes to the program's owner all the same.
                let link_owner_pin = match (&new_pin, &prog.load) {
                    (Some(p), _) => Some(p.clone()),
                    (None, Some(load)) => Some(LinkPin::new(
                        Owner::Load(load.path.clone()),
                        &dev.name,
                        ns_ino,
                    )),
                    (None, None) => Some(LinkPin::new(ctx.own_links()?, &dev.name, ns_ino)),
                };
                let moving = match &link_owner_pin {
                    Some(to) => pinned
                        .iter()
                        .find_map(|p| own_pin(ctx, p))
                        .filter(|from| from.owner != to.owner)
                        .map(|from| (from, to.clone())),
                    None => None,
                };
                let moved = match &moving {
                    Some((from, to)) => Some(begin_pin_move(
                        &mut journal,
                        from,
                        to,
                        l.id,
                        prog.id,
                        args.confirm_within.is_none(),
                    )?),
                    None => None,
                };
                let updated =
                    sys::link_update(link_fd.as_fd(), prog.fd.as_fd(), Some(old_fd.as_fd()))
                        .with_context(|| {
                            format!("swapping the program of link {} on {}", l.id, dev.name)
                        });
                if let Some((entry, steps)) = moved {
                    if let Err(e) = updated {
                        journal.abandon(entry, &steps)?;
                        return Err(e);
                    }
                    journal.run_forward(&entry)?;
                    journal.finish(entry)?;
                }
                updated?;
                let mut rollback = vec![Step::LinkSwap {
                    link: l.id,
                    from: prog.id,
                    to: old_id,
                }];
                if let Some((from, to)) = &moving {
                    for p in &mut pinned {
                        if *p == from.path() {
                            *p = to.path();
                        }
                    }
                    // A rollback gives the link back to the replaced
                    // program's owner.
                    rollback.push(Step::MoveLinkPin {
                        from: to.path(),
                        to: from.path(),
                        link: l.id,
                        prog: old_id,
                    });
                    rollback.push(Step::RmdirIfEmpty {
                        path: to.owner.links_dir(),
                    });
                }
                (
                    Some(l.id),
                    pinned,
                    rollback,
                    pending::Expect::Link {
                        link: l.id,
                        prog: prog.id,
                    },
                )
            }
            None => {
                rtnl.set_xdp(
                    dev.ifindex,
                    prog.fd.as_raw_fd(),
                    flag | xdp_flags::REPLACE,
                    Some(old_fd.as_raw_fd()),
                )
                .map_err(|e| {
                    let errno = e.errno;
                    attach_error(e, Some(errno), &dev.name, args.mode, args.netns.as_deref())
                })?;
                (
                    None,
                    Vec::new(),
                    vec![Step::XdpSwap {
                        dev: ndev.clone(),
                        from: prog.id,
                        to: Some(old_id),
                    }],
                    pending::Expect::Netlink {
                        dev: ndev.clone(),
                        prog: prog.id,
                    },
                )
            }
        }
    } else if let (Some(links_dir), Some(pin)) = (&links_dir, &link_pin) {
        let links_dir = links_dir.clone();
        let entry = journal.begin(Change::Attach {
            pin: pin.clone(),
            links_dir: links_dir.clone(),
            undo: args.confirm_within.is_some(),
        })?;
        let made = (|| -> Result<u32> {
            if !links_dir.exists() {
                pinfs::mkdir_0700(&links_dir)
                    .with_context(|| format!("mkdir {}", links_dir.display()))?;
            }
            let link_fd =
                sys::link_create_xdp(prog.fd.as_fd(), dev.ifindex, flag).map_err(|e| {
                    let errno = e.raw_os_error();
                    attach_error(e, errno, &dev.name, args.mode, args.netns.as_deref())
                })?;
            pin_link(link_fd.as_fd(), pin)?;
            Ok(pinfs::obj_info(link_fd.as_fd())?.id)
        })();
        let id = match made {
            Ok(id) => id,
            Err(e) => {
                journal.abandon(entry, &[])?;
                return Err(e);
            }
        };
        if let Some(within) = args.confirm_within {
            arm_attach(
                ctx,
                &journal,
                &ndev,
                &dev.name,
                within,
                pending::Expect::Link {
                    link: id,
                    prog: prog.id,
                },
                vec![
                    Step::LinkDetach { link: id },
                    Step::UnpinLink {
                        path: pin.clone(),
                        link: id,
                    },
                    Step::RmdirIfEmpty { path: links_dir },
                ],
                None,
                args.netns.as_deref(),
            )?;
        }
        journal.finish(entry)?;
        (
            Some(id),
            vec![pin.clone()],
            Vec::new(),
            pending::Expect::Link {
                link: id,
                prog: prog.id,
            },
        )
    } else {
        rtnl.set_xdp(
            dev.ifindex,
            prog.fd.as_raw_fd(),
            flag | xdp_flags::UPDATE_IF_NOEXIST,
            None,
        )
        .map_err(|e| {
            let errno = e.errno;
            attach_error(e, Some(errno), &dev.name, args.mode, args.netns.as_deref())
        })?;
        (
            None,
            Vec::new(),
            vec![Step::XdpSwap {
                dev: ndev.clone(),
                from: prog.id,
                to: None,
            }],
            pending::Expect::Netlink {
                dev: ndev.clone(),
                prog: prog.id,
            },
        )
    };

    // A replace or a netlink attach under --confirm-within: one syscall
    // made the change; the record of how to undo it follows, with the
    // replaced program kept alive for the rollback.
    if let (Some(within), false) = (args.confirm_within, rollback.is_empty()) {
        arm_attach(
            ctx,
            &journal,
            &ndev,
            &dev.name,
            within,
            expect,
            rollback,
            previous,
            args.netns.as_deref(),
        )?;
    }

    let after = device(&mut rtnl, &args.dev, args.netns.as_deref())?;
    let mode = mode_of(&after, prog.id).map_or_else(|| "unknown".to_owned(), |m| m.to_string());
    let advice = if args.advise {
        crate::ops::explain::advice(
            &after.name,
            args.mode == XdpMode::Generic,
            jit,
            args.netns.as_deref(),
        )
    } else {
        Vec::new()
    };
    drop(entered);
    let load_dir = prog.load_dir().map(Path::to_path_buf);
    let row = Attachment {
        device: after.name,
        ifindex: after.ifindex,
        netns: ns.name,
        xdp: XdpAttachment {
            mode,
            prog_id: prog.id,
            prog_name: prog.name,
            attach: if link_id.is_some() { "link" } else { "netlink" },
            link_id,
            link_pinned,
            dispatcher: None,
            chain: None,
        },
    };
    ctx.out.note(format_args!(
        "{} program {} ({}) on {} in {} mode{}",
        if args.replace {
            "attached (replacing)"
        } else {
            "attached"
        },
        row.xdp.prog_id,
        row.xdp.prog_name,
        row.device,
        row.xdp.mode,
        match (&row.xdp.link_id, row.xdp.link_pinned.first()) {
            (Some(id), Some(pin)) => format!(" as bpf_link {id}, pinned at {}", pin.display()),
            (Some(id), None) => format!(" as bpf_link {id}"),
            _ => " over netlink".to_owned(),
        }
    ));
    ctx.out.notes(advice);
    // A firewall that protects ports, now also where listeners would not
    // take its cookies' ACKs: said (as doctor says it), not refused.
    if let Some(dir) = load_dir
        && let Ok(Some(why)) = crate::ops::syncookie::unready(ctx, &dir)
    {
        ctx.out.note(format_args!("warning: {why}"));
    }
    Ok(row)
}

/// xdpctl's own pins of kind `kind` (links, or programs: the records of
/// tc filters) for a device named `dev` of namespace `ino`, whose hook
/// `hook` accepts: (object id, path, pin).
pub(crate) fn own_pins(
    ctx: &Ctx,
    kind: Kind,
    dev: &str,
    ino: u64,
    hook: impl Fn(&crate::model::linkpin::Hook) -> bool,
) -> Result<Vec<(u32, std::path::PathBuf, LinkPin)>> {
    let mut out = Vec::new();
    for ((k, id), paths) in ctx.link_pin_index()? {
        if k != kind {
            continue;
        }
        for path in paths {
            let Some(pin) = LinkPin::parse(&path) else {
                continue;
            };
            if pin.netns == ino
                && pin.names_device(dev)
                && hook(&pin.hook)
                && own_pin(ctx, &path).is_some()
            {
                out.push((id, path, pin));
            }
        }
    }
    Ok(out)
}

/// The link pin xdpctl made at `path`, if it is one: in a load
/// directory's links (the load's manifest says so), or in
/// `_xdpctl/links/` of this bpffs.
pub(crate) fn own_pin(ctx: &Ctx, path: &Path) -> Option<LinkPin> {
    let pin = LinkPin::parse(path)?;
    let ours = match &pin.owner {
        Owner::Xdpctl(_) => ctx.own_links().is_ok_and(|o| o == pin.owner),
        Owner::Load(dir) => {
            LoadDir::open(dir).is_ok_and(|l| Some(l.links_dir().as_path()) == path.parent())
        }
    };
    ours.then_some(pin)
}

/// Records the move of link `link`'s pin from `from` to `to`, which
/// happens once the link runs `prog` (`attach --replace`), and makes the
/// directory of `to`. Returns the record and the steps that finish it or,
/// if the link was not switched, undo it. `tidy`: remove the `links/` that
/// the move leaves empty (not under `--confirm-within`, whose rollback
/// moves the pin back).
fn begin_pin_move(
    journal: &mut ops::Journal,
    from: &LinkPin,
    to: &LinkPin,
    link: u32,
    prog: u32,
    tidy: bool,
) -> Result<(ops::journal::Entry, Vec<Step>)> {
    let to_dir = to.owner.links_dir();
    let mut steps = vec![Step::MoveLinkPin {
        from: from.path(),
        to: to.path(),
        link,
        prog,
    }];
    if tidy {
        steps.push(Step::RmdirIfEmpty {
            path: from.owner.links_dir(),
        });
    }
    steps.push(Step::RmdirIfEmpty {
        path: to_dir.clone(),
    });
    let entry = journal.begin(Change::Steps {
        what: format!(
            "replace on link {link}, whose pin moves from {} to {}",
            from.path().display(),
            to.path().display()
        ),
        steps: steps.clone(),
    })?;
    if !to_dir.exists()
        && let Err(e) = pinfs::mkdir_0700(&to_dir)
    {
        journal.abandon(entry, &steps)?;
        return Err(anyhow::Error::new(e).context(format!("mkdir {}", to_dir.display())));
    }
    Ok((entry, steps))
}

/// Records a pending attach and starts its watcher; `previous` is the
/// program it replaced, kept pinned for the rollback.
#[expect(
    clippy::too_many_arguments,
    reason = "one record, assembled from the attach's pieces"
)]
fn arm_attach(
    ctx: &Ctx,
    journal: &ops::Journal,
    dev: &Dev,
    name: &str,
    within: std::time::Duration,
    expect: pending::Expect,
    rollback: Vec<Step>,
    previous: Option<u32>,
    netns_arg: Option<&str>,
) -> Result<()> {
    let mut keep = Vec::new();
    if let Some(old) = previous {
        let path = journal.scratch("rollback")?;
        let fd = sys::fd_by_id(IdKind::Prog, old)?;
        pinfs::obj_pin(fd.as_fd(), &path)?;
        keep.push(path);
    }
    watcher::arm(
        journal,
        pending::dev_key(dev.netns, dev.ifindex),
        format!(
            "attach to {name}{}",
            netns_arg.map_or_else(String::new, |n| format!(" in netns {n}"))
        ),
        within,
        vec![expect],
        rollback,
        keep,
    )?;
    ctx.out.note(format_args!(
        "this attach is rolled back in {} unless you run: xdpctl confirm {name}{}",
        humane(within),
        crate::model::error_text::netns_arg(netns_arg)
    ));
    Ok(())
}

/// Pins a link at `path` (whose directory exists).
fn pin_link(fd: BorrowedFd<'_>, path: &Path) -> Result<()> {
    if path.exists() {
        bail!(
            "{} already exists; a link for this device is pinned there (see `xdpctl net show`)",
            path.display()
        );
    }
    pinfs::obj_pin(fd, path)?;
    Ok(())
}
