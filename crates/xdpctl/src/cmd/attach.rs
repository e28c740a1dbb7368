//! `xdpctl attach` and `xdpctl detach`: XDP programs on devices.
//!
//! An attachment must outlive xdpctl. By default it is a bpf_link pinned at
//! `<load dir>/links/<device>`: a link cannot be replaced by other tools
//! behind our back, and detaching is removing it. `--netlink` attaches the
//! legacy way instead, visible to and removable by `ip link`.

use std::{
    collections::HashMap,
    fs,
    os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd},
    path::{Path, PathBuf},
};

use anyhow::{Context as _, Result, bail};
use pinfs::Kind;
use serde::Serialize;

use crate::{
    cli::{AttachArgs, DetachArgs, Handle, XdpMode},
    cmd::load::MAPS_SUBDIR,
    ctx::Ctx,
    kernel::links::{self, LinkEntry, XdpAttach},
    kernel::netlink::{Device, Rtnl},
    kernel::netns,
    kernel::objects,
    kernel::sys::{self, IdKind, xdp_flags},
    render::{self, Tabular},
};

/// Where attach pins links, relative to the load directory.
pub const LINKS_SUBDIR: &str = "links";

const PROG_TYPE_XDP: u32 = 6;

/// A program to attach, resolved from the command line.
pub struct Prog {
    pub fd: OwnedFd,
    pub id: u32,
    pub name: String,
    /// The load directory it is pinned in, if any: links go there.
    load_dir: Option<PathBuf>,
}

pub fn resolve_prog(ctx: &Ctx, handle: &Handle) -> Result<Prog> {
    // A bare name that is a path under the bpffs root is that path.
    let as_path;
    let handle = match handle {
        Handle::Name(name) if ctx.bpffs.join(name).exists() => {
            as_path = Handle::Path(name.into());
            &as_path
        }
        other => other,
    };
    let (fd, load_dir) = match handle {
        Handle::Path(path) if ctx.resolve(path).is_dir() => {
            let dir = ctx.resolve(path);
            let prog = only_xdp_program_in(&dir)?;
            (objects::open_pinned(&prog, Kind::Prog)?, Some(dir))
        }
        Handle::Path(path) => {
            let path = ctx.resolve(path);
            (
                objects::open_pinned(&path, Kind::Prog)?,
                path.parent().map(Path::to_owned),
            )
        }
        Handle::Id(_) | Handle::Name(_) => {
            let (fd, _) = objects::resolve(ctx, handle, Kind::Prog)?;
            let id = pinfs::obj_info(fd.as_fd())?.id;
            let pins = ctx.pin_index()?;
            let dir = pins
                .get(&(Kind::Prog, id))
                .and_then(|paths| paths.first())
                .and_then(|p| p.parent())
                .map(Path::to_owned);
            (fd, dir)
        }
    };
    let (info, _) = sys::prog_info(fd.as_fd()).context("reading the program's info")?;
    if info.type_ != PROG_TYPE_XDP {
        bail!(
            "program {} ({}) is a {} program, not XDP; this takes XDP programs",
            info.id,
            sys::c_name(&info.name),
            sys::prog_type_name(info.type_)
        );
    }
    Ok(Prog {
        fd,
        id: info.id,
        name: sys::c_name(&info.name),
        load_dir,
    })
}

/// The one XDP program pinned directly in a load directory.
pub fn only_xdp_program_in(dir: &Path) -> Result<PathBuf> {
    let mut found = Vec::new();
    for pin in pinfs::list(dir)? {
        let rel = pin.path.strip_prefix(dir).unwrap_or(&pin.path);
        if pin.kind != Kind::Prog || rel.starts_with(MAPS_SUBDIR) || rel.starts_with(LINKS_SUBDIR) {
            continue;
        }
        let fd = sys::fd_by_id(IdKind::Prog, pin.id)?;
        if sys::prog_info(fd.as_fd())?.0.type_ == PROG_TYPE_XDP {
            found.push(pin.path);
        }
    }
    match found.len() {
        1 => Ok(found.remove(0)),
        0 => bail!("{} holds no pinned XDP program", dir.display()),
        _ => bail!(
            "{} holds {} XDP programs ({}); name one of them",
            dir.display(),
            found.len(),
            found
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

/// The device named `name` in the current namespace, or a clear error.
fn device(rtnl: &mut Rtnl, name: &str, netns: Option<&str>) -> Result<Device> {
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

fn mode_flag(mode: XdpMode) -> u32 {
    match mode {
        XdpMode::Native => xdp_flags::DRV_MODE,
        XdpMode::Generic => xdp_flags::SKB_MODE,
        XdpMode::Offload => xdp_flags::HW_MODE,
    }
}

/// The mode name as `net show` prints it, for the mode in the device state.
fn mode_name(mode: XdpMode) -> &'static str {
    match mode {
        XdpMode::Native => "driver",
        XdpMode::Generic => "generic",
        XdpMode::Offload => "offload",
    }
}

/// The attach flag for a mode as [`XdpState::attached`](crate::kernel::netlink::XdpState::attached) names it.
pub fn state_mode_flag(mode: &str) -> u32 {
    match mode {
        "driver" => xdp_flags::DRV_MODE,
        "generic" => xdp_flags::SKB_MODE,
        _ => xdp_flags::HW_MODE,
    }
}

fn mode_of(dev: &Device, prog_id: u32) -> Option<&'static str> {
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
    /// `driver`, `generic` or `offload`: the mode in effect.
    pub mode: String,
    /// Program id.
    pub prog_id: u32,
    /// Program name.
    pub prog_name: String,
    /// `link` or `netlink`.
    pub attach: &'static str,
    /// The bpf_link id, for a link.
    pub link_id: Option<u32>,
    /// Where the link is pinned.
    pub link_pinned: Vec<PathBuf>,
}

impl Attachment {
    /// A netlink attachment of `prog_id` on `dev` in `mode`.
    fn netlink(dev: &Device, netns: Option<&str>, mode: &str, prog_id: u32) -> Self {
        Attachment {
            device: dev.name.clone(),
            ifindex: dev.ifindex,
            netns: netns.map(str::to_owned),
            mode: mode.to_owned(),
            prog_id,
            prog_name: objects::describe(Kind::Prog, prog_id)
                .map_or_else(|_| "?".into(), |d| d.name),
            attach: "netlink",
            link_id: None,
            link_pinned: Vec::new(),
        }
    }
}

/// Takes a netlink-attached program off a device.
fn detach_netlink(rtnl: &mut Rtnl, dev: &Device, mode: &str, prog_id: u32) -> Result<()> {
    rtnl.set_xdp(dev.ifindex, -1, state_mode_flag(mode), None)
        .with_context(|| {
            format!(
                "detaching program {prog_id} from {} ({mode} mode)",
                dev.name
            )
        })
}

impl Tabular for Attachment {
    const HEADERS: &'static [&'static str] = &[
        "DEVICE", "MODE", "PROG_ID", "NAME", "ATTACH", "LINK", "PINNED",
    ];
    fn cells(&self) -> Vec<String> {
        vec![
            self.device.clone(),
            self.mode.clone(),
            self.prog_id.to_string(),
            self.prog_name.clone(),
            self.attach.to_owned(),
            self.link_id
                .map_or_else(|| "-".to_owned(), |id| id.to_string()),
            crate::cmd::prog::pinned_cell(&self.link_pinned),
        ]
    }
}

/// Explains a failed attach in the operator's terms.
fn attach_error(
    err: impl std::error::Error + Send + Sync + 'static,
    errno: Option<i32>,
    dev: &str,
    mode: XdpMode,
) -> anyhow::Error {
    let hint = match (errno, mode) {
        (Some(libc::EOPNOTSUPP), XdpMode::Native) => Some(format!(
            "native XDP is not supported by the driver of {dev}; use --mode generic"
        )),
        (Some(libc::EINVAL | libc::EOPNOTSUPP), XdpMode::Offload) => Some(format!(
            "{dev} cannot run this program offloaded (it needs an offload-capable NIC and a program \
             loaded for it); use --mode native or --mode generic"
        )),
        (Some(libc::EBUSY | libc::EEXIST), _) => Some(format!(
            "{dev} got an XDP program from someone else meanwhile, or has one in another mode; \
             see `xdpctl net show {dev}`"
        )),
        _ => None,
    };
    let base =
        anyhow::Error::new(err).context(format!("attaching to {dev} in {} mode", mode_name(mode)));
    match hint {
        Some(h) => base.context(h),
        None => base,
    }
}

/// `xdpctl attach`.
pub fn attach(ctx: &Ctx, args: &AttachArgs) -> Result<()> {
    let prog = resolve_prog(ctx, &args.prog)?;
    let pins = ctx.pin_index()?;
    // Where a link would be pinned; checked before anything changes.
    let links_dir = if args.netlink {
        None
    } else {
        let Some(dir) = &prog.load_dir else {
            bail!(
                "program {} ({}) is not pinned under {}, so its link has nowhere to live; \
                 attach it by its pinned path, or use --netlink",
                prog.id,
                prog.name,
                ctx.bpffs.display()
            );
        };
        Some(dir.join(LINKS_SUBDIR))
    };

    let entered = netns::enter(args.netns.as_deref())?;
    let mut rtnl = Rtnl::open().context("opening rtnetlink")?;
    let dev = device(&mut rtnl, &args.dev, args.netns.as_deref())?;
    // NB: named `<dev>@<netns inode>`: link info does not say the namespace.
    let link_pin = match links_dir {
        Some(dir) => Some(dir.join(format!(
            "{}@{}",
            dev.name.replace('.', "_"),
            netns::current_inode()?
        ))),
        None => None,
    };
    let links = links::XdpLinks::load(&pins)?;
    let flag = mode_flag(args.mode);

    let existing = dev.xdp.attached();
    // With --confirm-within, hold the replaced program so a rollback can
    // put it back even if nothing else keeps it alive.
    let keep_previous = match (args.confirm_within, existing.first()) {
        (Some(_), Some(&(_, old_id))) => Some(sys::fd_by_id(IdKind::Prog, old_id)?),
        _ => None,
    };
    let result = if let Some(&(mode, old_id)) = existing.first() {
        let old_name =
            objects::describe(Kind::Prog, old_id).map_or_else(|_| "?".into(), |d| d.name);
        let (old_link, how) = match links.find(dev.ifindex, old_id)? {
            XdpAttach::Link(l) => (Some(l), format!("a bpf_link (link {})", l.id)),
            XdpAttach::Netlink => (None, "netlink".to_owned()),
            XdpAttach::Ambiguous => bail!(
                "{} runs program {old_id} ({old_name}), but whether by a link or over netlink cannot be \
                 told apart from devices in other namespaces; detach it first",
                dev.name
            ),
        };
        if !args.replace {
            bail!(
                "{} already has XDP program {old_id} ({old_name}) attached in {mode} mode by {how}; \
                 use --replace to swap it, or `xdpctl detach {}` first",
                dev.name,
                dev.name
            );
        }
        if existing.len() > 1 || mode != mode_name(args.mode) {
            bail!(
                "{} runs program {old_id} in {mode} mode, and --replace swaps within one mode; \
                 detach it first (xdpctl detach {}) or use --mode {}",
                dev.name,
                dev.name,
                if mode == "driver" { "native" } else { mode }
            );
        }
        replace(
            &mut rtnl,
            &dev,
            &prog,
            old_id,
            old_link,
            flag,
            link_pin.as_deref(),
            &pins,
            args.mode,
        )?
    } else if args.netlink {
        rtnl.set_xdp(
            dev.ifindex,
            prog.fd.as_raw_fd(),
            flag | xdp_flags::UPDATE_IF_NOEXIST,
            None,
        )
        .map_err(|e| {
            let errno = e.errno;
            attach_error(e, Some(errno), &dev.name, args.mode)
        })?;
        (None, Vec::new())
    } else {
        let link_pin = link_pin.expect("set unless --netlink");
        let link_fd = sys::link_create_xdp(prog.fd.as_fd(), dev.ifindex, flag).map_err(|e| {
            let errno = e.raw_os_error();
            attach_error(e, errno, &dev.name, args.mode)
        })?;
        if let Err(e) = pin_link(link_fd.as_fd(), &link_pin) {
            // Leave nothing attached: the pin is what makes it outlive us.
            let _ = sys::link_detach(link_fd.as_fd());
            return Err(e);
        }
        let id = pinfs::obj_info(link_fd.as_fd())?.id;
        (Some(id), vec![link_pin])
    };

    let (link_id, link_pinned) = result;
    let after = device(&mut rtnl, &args.dev, args.netns.as_deref())?;
    let mode = mode_of(&after, prog.id).unwrap_or("unknown").to_owned();
    if let Some(within) = args.confirm_within {
        let key = crate::cmd::confirm::attach_key(&after.name)?;
        let previous_pin = match &keep_previous {
            Some(fd) => {
                let pin = ctx.bpffs.join(format!(
                    "{}{}",
                    pinfs::ROLLBACK_PREFIX,
                    key.replace('.', "_")
                ));
                pinfs::obj_pin(fd.as_fd(), &pin)?;
                Some(pin)
            }
            None => None,
        };
        let pending = crate::cmd::confirm::Pending::Attach {
            deadline_ms: crate::cmd::stats::now_ms() + within.as_millis() as u64,
            dev: after.name.clone(),
            netns: args.netns.clone(),
            ifindex: after.ifindex,
            mode_flag: flag,
            prog_id: prog.id,
            link_pin: if link_id.is_some() {
                link_pinned.first().cloned()
            } else {
                None
            },
            previous_pin,
        };
        crate::cmd::confirm::arm(&key, &pending, ctx)?;
        eprintln!(
            "xdpctl: this attach is rolled back in {within:?} unless you run: xdpctl confirm {}{}",
            after.name,
            args.netns
                .as_deref()
                .map_or_else(String::new, |n| format!(" --netns {n}"))
        );
    }
    drop(entered);
    let row = Attachment {
        device: after.name,
        ifindex: after.ifindex,
        netns: args.netns.clone(),
        mode,
        prog_id: prog.id,
        prog_name: prog.name,
        attach: if link_id.is_some() { "link" } else { "netlink" },
        link_id,
        link_pinned,
    };
    eprintln!(
        "xdpctl: {} program {} ({}) on {} in {} mode{}",
        if args.replace {
            "attached (replacing)"
        } else {
            "attached"
        },
        row.prog_id,
        row.prog_name,
        row.device,
        row.mode,
        match (&row.link_id, row.link_pinned.first()) {
            (Some(id), Some(pin)) => format!(" as bpf_link {id}, pinned at {}", pin.display()),
            (Some(id), None) => format!(" as bpf_link {id}"),
            _ => " over netlink".to_owned(),
        }
    );
    render::print(ctx.format, &vec![row])?;
    Ok(())
}

/// Swaps the program on a device atomically: `BPF_LINK_UPDATE` for a link,
/// `XDP_FLAGS_REPLACE` with the expected program for netlink.
#[allow(
    clippy::too_many_arguments,
    reason = "one call site; the pieces are all different"
)]
fn replace(
    rtnl: &mut Rtnl,
    dev: &Device,
    prog: &Prog,
    old_id: u32,
    old_link: Option<LinkEntry>,
    flag: u32,
    link_pin: Option<&Path>,
    pins: &crate::ctx::PinIndex,
    mode: XdpMode,
) -> Result<(Option<u32>, Vec<PathBuf>)> {
    let old_fd =
        sys::fd_by_id(IdKind::Prog, old_id).context("opening the program being replaced")?;
    match old_link {
        Some(l) => {
            let link_fd =
                sys::fd_by_id(IdKind::Link, l.id).context("opening the link being updated")?;
            sys::link_update(link_fd.as_fd(), prog.fd.as_fd(), Some(old_fd.as_fd())).with_context(
                || format!("swapping the program of link {} on {}", l.id, dev.name),
            )?;
            let mut pinned = pins.get(&(Kind::Link, l.id)).cloned().unwrap_or_default();
            if pinned.is_empty()
                && let Some(path) = link_pin
            {
                // Someone else's unpinned link: pin it so it outlives them.
                pin_link(link_fd.as_fd(), path)?;
                pinned.push(path.to_owned());
            }
            Ok((Some(l.id), pinned))
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
                attach_error(e, Some(errno), &dev.name, mode)
            })?;
            Ok((None, Vec::new()))
        }
    }
}

/// Pins a link at `path`, creating `links/` (0700) if needed.
fn pin_link(fd: BorrowedFd<'_>, path: &Path) -> Result<()> {
    let target = pinfs::validate(path)?;
    if target.exists() {
        bail!(
            "{} already exists; a link for this device is pinned there (see `xdpctl net show`)",
            path.display()
        );
    }
    if let Some(parent) = path.parent()
        && !parent.exists()
    {
        use std::os::unix::fs::DirBuilderExt;
        fs::DirBuilder::new()
            .mode(0o700)
            .create(parent)
            .with_context(|| format!("mkdir {}", parent.display()))?;
    }
    pinfs::obj_pin(fd, path)?;
    Ok(())
}

/// What detach did.
#[derive(Debug, Serialize)]
pub struct Detached {
    /// Device name.
    pub device: String,
    /// Every program taken off.
    pub detached: Vec<Attachment>,
}

impl render::Human for Detached {
    fn human(&self) -> String {
        if self.detached.is_empty() {
            String::new()
        } else {
            render::table(&self.detached)
        }
    }
}

/// Takes every XDP program off `dev` (in the current namespace), whatever
/// attached it; removes the pins of links it detaches. Returns what it did.
pub fn detach_device(
    ctx: &Ctx,
    rtnl: &mut Rtnl,
    dev: &Device,
    netns: Option<&str>,
) -> Result<Vec<Attachment>> {
    let pins = ctx.pin_index()?;
    let links = links::XdpLinks::load(&pins)?;
    let mut done = Vec::new();
    for (mode, prog_id) in dev.xdp.attached() {
        let mut row = Attachment::netlink(dev, netns, mode, prog_id);
        let how = links.find(dev.ifindex, prog_id)?;
        if let XdpAttach::Link(l) = how {
            let fd = sys::fd_by_id(IdKind::Link, l.id)
                .with_context(|| format!("opening link {}", l.id))?;
            sys::link_detach(fd.as_fd())
                .with_context(|| format!("detaching link {} from {}", l.id, dev.name))?;
            let pinned = pins.get(&(Kind::Link, l.id)).cloned().unwrap_or_default();
            for path in &pinned {
                fs::remove_file(path)
                    .with_context(|| format!("unpinning link {} at {}", l.id, path.display()))?;
            }
            row.attach = "link";
            row.link_id = Some(l.id);
            row.link_pinned = pinned;
        } else {
            detach_netlink(rtnl, dev, mode, prog_id)?;
        }
        done.push(row);
    }
    Ok(done)
}

/// `xdpctl detach`.
pub fn detach(ctx: &Ctx, args: &DetachArgs) -> Result<()> {
    let entered = netns::enter(args.netns.as_deref())?;
    let mut rtnl = Rtnl::open().context("opening rtnetlink")?;
    let dev = device(&mut rtnl, &args.dev, args.netns.as_deref())?;
    let detached = detach_device(ctx, &mut rtnl, &dev, args.netns.as_deref())?;
    let after = device(&mut rtnl, &args.dev, args.netns.as_deref())?;
    drop(entered);
    if let Some((mode, id)) = after.xdp.attached().first() {
        bail!(
            "{} still has program {id} in {mode} mode after detaching; it was attached again meanwhile",
            dev.name
        );
    }
    if detached.is_empty() {
        eprintln!(
            "xdpctl: no XDP program is attached to {}; nothing to detach",
            dev.name
        );
    } else {
        for d in &detached {
            eprintln!(
                "xdpctl: detached program {} ({}) from {} ({} mode, {})",
                d.prog_id, d.prog_name, d.device, d.mode, d.attach
            );
        }
    }
    render::print(
        ctx.format,
        &Detached {
            device: dev.name,
            detached,
        },
    )?;
    Ok(())
}

/// Detaches what a load directory attached: every link pinned in it
/// (wherever it is attached) and every netlink attachment of a program in
/// `prog_ids`, in this network namespace and every one under /run/netns. Used by unload before it unpins.
pub fn detach_load(links_pinned: &[pinfs::Pin], prog_ids: &[u32]) -> Result<Vec<Attachment>> {
    let mut done = Vec::new();
    for pin in links_pinned {
        let Ok(fd) = sys::fd_by_id(IdKind::Link, pin.id) else {
            continue;
        };
        let info =
            sys::link_info(fd.as_fd()).with_context(|| format!("reading link {}", pin.id))?;
        sys::link_detach(fd.as_fd()).with_context(|| format!("detaching link {}", pin.id))?;
        let ifindex = if info.type_ == sys::LINK_TYPE_XDP {
            // SAFETY: the member matches the link type.
            unsafe { info.__bindgen_anon_1.xdp.ifindex }
        } else {
            0
        };
        // NB: the link may be in another namespace, where the ifindex means
        // another device; its pin's name is the device as attach named it.
        let device = pin.path.file_name().map_or_else(
            || format!("ifindex {ifindex}"),
            |n| n.to_string_lossy().into_owned(),
        );
        done.push(Attachment {
            device,
            ifindex,
            netns: None,
            mode: "-".into(),
            prog_id: info.prog_id,
            prog_name: objects::describe(Kind::Prog, info.prog_id)
                .map_or_else(|_| "?".into(), |d| d.name),
            attach: "link",
            link_id: Some(pin.id),
            link_pinned: vec![pin.path.clone()],
        });
    }
    // Netlink attachments leave no object behind: look for the load's
    // programs on every device of this namespace and of the named ones.
    let links = links::XdpLinks::load(&HashMap::new())?;
    for ns in netns::all()? {
        // A namespace deleted meanwhile holds nothing to detach.
        let Ok(entered) = netns::enter(ns.as_deref()) else {
            continue;
        };
        let mut rtnl = Rtnl::open().context("opening rtnetlink")?;
        for dev in rtnl.devices().context("listing devices")? {
            for (mode, prog_id) in dev.xdp.attached() {
                if !prog_ids.contains(&prog_id)
                    || links.find(dev.ifindex, prog_id)? != XdpAttach::Netlink
                {
                    continue;
                }
                detach_netlink(&mut rtnl, &dev, mode, prog_id)?;
                done.push(Attachment::netlink(&dev, ns.as_deref(), mode, prog_id));
            }
        }
        drop(entered);
    }
    Ok(done)
}
