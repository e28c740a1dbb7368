//! `xdpctl load` and `xdpctl unload`: BPF objects in, pins out, and back.

use std::{
    borrow::Cow,
    collections::HashMap,
    fs,
    os::{
        fd::{AsFd, AsRawFd, OwnedFd},
        unix::fs::MetadataExt,
    },
    path::{Path, PathBuf},
};

use anyhow::{Context as _, Result, bail};
use aya::{EbpfLoader, programs::Program};
use aya_obj::{Object, ProgramSection};
use serde::Serialize;
use xdp_progs::xdpfw;

use crate::{
    cli::{LoadArgs, MapReuse, UnloadArgs},
    ctx::Ctx,
    kernel::objects::{self, Described},
    model::verifier::Rejection,
    render::{self, Human, Tabular},
};

/// Where a load puts its maps, relative to the load directory.
pub const MAPS_SUBDIR: &str = "maps";

const EM_BPF: u16 = 247;

/// A BPF object from the command line or the built-in firewall, checked.
struct ObjectFile<'a> {
    label: String,
    bytes: Cow<'a, [u8]>,
    parsed: Object,
}

fn read_object(path: Option<&Path>) -> Result<ObjectFile<'static>> {
    let (label, bytes) = match path {
        None => (
            format!("built-in {}", xdpfw::NAME),
            Cow::Borrowed(xdpfw::OBJECT),
        ),
        Some(path) => {
            let bytes =
                fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
            (path.display().to_string(), Cow::Owned(bytes))
        }
    };
    if bytes.len() < 20 || &bytes[..4] != b"\x7fELF" {
        bail!(
            "{label} is not an ELF file; give a BPF object compiled with `clang -O2 -g -target bpf -c`"
        );
    }
    let machine = u16::from_le_bytes([bytes[18], bytes[19]]);
    let machine_be = u16::from_be_bytes([bytes[18], bytes[19]]);
    if machine != EM_BPF && machine_be != EM_BPF {
        bail!(
            "{label} is an ELF file for another machine (e_machine {machine}), not a BPF object; \
             compile it with `clang -target bpf`"
        );
    }
    let parsed = Object::parse(&bytes).map_err(|e| {
        anyhow::anyhow!("{label} is not a valid BPF object (truncated or corrupt?): {e}")
    })?;
    if parsed.programs.is_empty() {
        bail!("{label} contains no programs; put the XDP function in a SEC(\"xdp\") section");
    }
    let mut names: Vec<&String> = parsed.programs.keys().collect();
    names.sort();
    for name in names {
        let section = &parsed.programs[name].section;
        if !matches!(
            section,
            ProgramSection::Xdp { .. } | ProgramSection::SchedClassifier
        ) {
            bail!(
                "{label}: program {name} is a {} program; xdpctl loads XDP (SEC(\"xdp\")) and \
                 tc (SEC(\"classifier\")) programs",
                section_kind(section)
            );
        }
    }
    Ok(ObjectFile {
        label,
        bytes,
        parsed,
    })
}

fn section_kind(section: &ProgramSection) -> String {
    let debug = format!("{section:?}");
    debug
        .split([' ', '{', '('])
        .next()
        .unwrap_or("unknown")
        .to_lowercase()
}

/// A map given with `--map`, checked against the object's definition.
fn check_reuse(ctx: &Ctx, obj: &ObjectFile<'_>, reuse: &MapReuse) -> Result<PathBuf> {
    let Some(def) = obj.parsed.maps.get(&reuse.name) else {
        let mut names: Vec<&str> = obj.parsed.maps.keys().map(String::as_str).collect();
        names.sort_unstable();
        bail!(
            "--map {}: {} has no map named {}; its maps are: {}",
            reuse.name,
            obj.label,
            reuse.name,
            names.join(", ")
        );
    };
    let path = ctx.resolve(&reuse.path);
    let pin = pinfs::validate(&path).with_context(|| format!("--map {}", reuse.name))?;
    if !pin.exists() {
        bail!(
            "--map {}: nothing is pinned at {}",
            reuse.name,
            path.display()
        );
    }
    let fd = pinfs::obj_get(&pin.path).with_context(|| format!("--map {}", reuse.name))?;
    let kind = pinfs::obj_info(fd.as_fd())
        .with_context(|| format!("--map {}: {}", reuse.name, path.display()))?
        .kind;
    if kind != pinfs::Kind::Map {
        bail!(
            "--map {}: {} is a pinned {kind}, not a map",
            reuse.name,
            path.display()
        );
    }
    let info = crate::kernel::sys::map_info(fd.as_fd()).with_context(|| {
        format!(
            "--map {}: reading the map at {}",
            reuse.name,
            path.display()
        )
    })?;
    if let Some(diff) = map_mismatch(def, &info) {
        bail!(
            "--map {}: the map pinned at {} does not match {}'s definition: {diff}",
            reuse.name,
            path.display(),
            obj.label
        );
    }
    Ok(pin.path)
}

/// What a load pinned.
#[derive(Debug, Serialize)]
pub struct Loaded {
    /// The load directory.
    pub dir: PathBuf,
    /// Every object pinned there.
    pub objects: Vec<PinRow>,
}

/// One pinned object.
#[derive(Debug, Serialize)]
pub struct PinRow {
    /// `prog`, `map` or `link`.
    pub kind: &'static str,
    /// The kernel id.
    pub id: u32,
    /// The kernel's name for the object.
    pub name: String,
    /// Program or map type.
    #[serde(rename = "type")]
    pub type_: String,
    /// Where it is pinned.
    pub pinned: PathBuf,
}

impl Tabular for PinRow {
    const HEADERS: &'static [&'static str] = &["KIND", "ID", "NAME", "TYPE", "PINNED"];
    fn cells(&self) -> Vec<String> {
        vec![
            self.kind.to_owned(),
            self.id.to_string(),
            self.name.clone(),
            self.type_.clone(),
            self.pinned.display().to_string(),
        ]
    }
}

impl PinRow {
    fn from_pin(pin: pinfs::Pin) -> Self {
        let (name, type_) = match objects::describe(pin.kind, pin.id) {
            Ok(Described { name, type_ }) => (name, type_),
            Err(_) => ("-".into(), "-".into()),
        };
        PinRow {
            kind: pin.kind.as_str(),
            id: pin.id,
            name,
            type_,
            pinned: pin.path,
        }
    }
}

impl Human for Loaded {
    fn human(&self) -> String {
        render::table(&self.objects)
    }
}

/// `xdpctl load`.
pub fn load(ctx: &Ctx, args: &LoadArgs) -> Result<()> {
    let object = read_object(args.object.as_deref())?;

    let dir = ctx.resolve(&args.pin);
    if dir.starts_with(&ctx.bpffs) {
        ctx.ensure_bpffs()?;
    }
    let target = pinfs::validate(&dir).context("--pin")?;
    if args.replace {
        return upgrade(ctx, args, &object, &target);
    }
    if target.exists() && fs::symlink_metadata(&target.path).is_ok_and(|m| m.is_dir()) {
        // Fail before the (slow) load; Staging checks again under the lock.
        let pins = pinfs::list(&target.path)?;
        if !pins.is_empty() {
            return Err(pinfs::Error::Occupied {
                path: target.path,
                pins: pins.len(),
            }
            .into());
        }
    }
    let mut reuse = Vec::new();
    for m in &args.maps {
        reuse.push((m.name.clone(), check_reuse(ctx, &object, m)?));
    }
    let (ebpf, names) = load_into_kernel(&object, &reuse, args.verifier_log.as_deref())?;

    let mut staging = pinfs::Staging::begin(&target)?;
    stage_object(&mut staging, &ebpf, &names)?;
    let dir = staging.commit()?;
    eprintln!(
        "xdpctl: loaded {} and pinned it at {}",
        object.label,
        dir.display()
    );
    print_loaded(ctx, dir)
}

fn print_loaded(ctx: &Ctx, dir: PathBuf) -> Result<()> {
    let objects = pinfs::list(&dir)?
        .into_iter()
        .map(PinRow::from_pin)
        .collect();
    render::print(ctx.format, &Loaded { dir, objects })?;
    Ok(())
}

/// Loads the object's maps (reusing the pinned ones in `reuse`) and
/// programs; returns them with the program names, sorted.
fn load_into_kernel(
    object: &ObjectFile<'_>,
    reuse: &[(String, PathBuf)],
    verifier_log: Option<&Path>,
) -> Result<(aya::Ebpf, Vec<String>)> {
    let mut loader = EbpfLoader::new();
    // The kernel's BTF (parsing /sys/kernel/btf/vmlinux takes a while) is
    // only needed to relocate CO-RE accesses; most XDP objects have none.
    if !object.parsed.has_btf_relocations() {
        loader.btf(None);
    }
    for (name, path) in reuse {
        loader.map_pin_path(name, path.as_path());
    }
    let mut ebpf = loader
        .load(&object.bytes)
        .with_context(|| format!("loading {} into the kernel", object.label))?;

    let mut names: Vec<String> = ebpf.programs().map(|(n, _)| n.to_owned()).collect();
    names.sort();
    for name in &names {
        let program = ebpf.program_mut(name).expect("listed above");
        let result = match program {
            Program::Xdp(p) => p.load(),
            Program::SchedClassifier(p) => p.load(),
            _ => unreachable!("read_object admits only XDP and tc programs"),
        };
        if let Err(err) = result {
            return Err(rejection(name, err, verifier_log));
        }
    }
    Ok((ebpf, names))
}

/// Pins programs at `<name>` and maps at `maps/<name>` in a staged change.
fn stage_object(staging: &mut pinfs::Staging, ebpf: &aya::Ebpf, names: &[String]) -> Result<()> {
    for name in names {
        let fd = ebpf.program(name).expect("loaded").fd()?;
        staging.pin(name, fd.as_fd())?;
    }
    let mut maps: Vec<(&str, &aya::maps::Map)> = ebpf.maps().collect();
    maps.sort_by_key(|(n, _)| *n);
    for (name, map) in maps {
        // NB: global data maps are named `.rodata`, `.data`, `.bss`; bpffs
        // refuses dots, so they are pinned as `_rodata` etc.
        let file = name.replace('.', "_");
        let staged = staging.prepare(&format!("{MAPS_SUBDIR}/{file}"))?;
        map.pin(&staged)
            .with_context(|| format!("pinning map {name} at {}", staged.display()))?;
    }
    Ok(())
}

/// A link or netlink attachment to move to the new program.
enum Swap {
    Link {
        pin: PathBuf,
        fd: OwnedFd,
        old: OwnedFd,
        new: String,
    },
    Netlink {
        ifindex: u32,
        device: String,
        flag: u32,
        old: OwnedFd,
        new: String,
    },
}

/// `xdpctl load --replace`: the hitless upgrade.
///
/// The new object reuses the directory's pinned maps where they are
/// compatible, so state such as the blocklist carries over; every link
/// pinned in the directory and every netlink attachment (in this
/// namespace) of its programs is switched to the new program of the same
/// name atomically (`BPF_LINK_UPDATE`, `XDP_FLAGS_REPLACE`), so the device
/// never runs without a program; last, the pins are swapped in one rename.
/// Any failure before the rename puts the old programs back.
fn upgrade(
    ctx: &Ctx,
    args: &LoadArgs,
    object: &ObjectFile<'_>,
    target: &pinfs::PinPath,
) -> Result<()> {
    let dir = &target.path;
    let pins = if target.exists() {
        pinfs::list(dir)?
    } else {
        Vec::new()
    };
    if pins.is_empty() {
        bail!(
            "nothing is loaded at {}; --replace upgrades an existing load (drop it for a first load)",
            dir.display()
        );
    }
    let rel = |p: &pinfs::Pin| p.path.strip_prefix(dir).unwrap_or(&p.path).to_owned();
    let old_maps: HashMap<String, PathBuf> = pins
        .iter()
        .filter(|p| p.kind == pinfs::Kind::Map && rel(p).starts_with(MAPS_SUBDIR))
        .filter_map(|p| {
            Some((
                p.path.file_name()?.to_string_lossy().into_owned(),
                p.path.clone(),
            ))
        })
        .collect();
    let old_progs: HashMap<u32, String> = pins
        .iter()
        .filter(|p| p.kind == pinfs::Kind::Prog && rel(p).components().count() == 1)
        .map(|p| (p.id, rel(p).display().to_string()))
        .collect();

    // Maps: explicit --map first, then the directory's own by name.
    let mut reuse: Vec<(String, PathBuf)> = Vec::new();
    let mut reset = Vec::new();
    for m in &args.maps {
        reuse.push((m.name.clone(), check_reuse(ctx, object, m)?));
    }
    let mut map_names: Vec<&String> = object.parsed.maps.keys().collect();
    map_names.sort();
    for name in map_names {
        if reuse.iter().any(|(n, _)| n == name) {
            continue;
        }
        let Some(path) = old_maps.get(&name.replace('.', "_")) else {
            continue;
        };
        let fd = pinfs::obj_get(path)?;
        let info = crate::kernel::sys::map_info(fd.as_fd())
            .with_context(|| format!("reading the map pinned at {}", path.display()))?;
        match map_mismatch(&object.parsed.maps[name], &info) {
            None => reuse.push((name.clone(), path.clone())),
            Some(diff) if args.reset_maps => reset.push(format!("{name} ({diff})")),
            Some(diff) => bail!(
                "map {name} in {} does not fit {}: {diff}; its contents cannot carry over \
                 (use --reset-maps to start it empty)",
                dir.display(),
                object.label
            ),
        }
    }

    let (ebpf, names) = load_into_kernel(object, &reuse, args.verifier_log.as_deref())?;
    let new_fd = |name: &str| -> Result<OwnedFd> {
        Ok(ebpf
            .program(name)
            .expect("loaded")
            .fd()?
            .as_fd()
            .try_clone_to_owned()?)
    };

    // Plan every swap before touching anything.
    let mut staging = pinfs::Staging::begin_replacing(target)?;
    let mut swaps = Vec::new();
    for pin in pins.iter().filter(|p| p.kind == pinfs::Kind::Link) {
        let fd = pinfs::obj_get(&pin.path)?;
        let info = crate::kernel::sys::link_info(fd.as_fd())
            .with_context(|| format!("reading link {}", pin.path.display()))?;
        let Some(prog) = old_progs.get(&info.prog_id) else {
            continue;
        };
        if !names.contains(prog) {
            bail!(
                "the link pinned at {} runs {prog}, which {} does not have; nothing was changed",
                pin.path.display(),
                object.label
            );
        }
        let old = crate::kernel::sys::fd_by_id(crate::kernel::sys::IdKind::Prog, info.prog_id)?;
        swaps.push(Swap::Link {
            pin: rel(pin),
            fd,
            old,
            new: prog.clone(),
        });
    }
    let mut rtnl = crate::kernel::netlink::Rtnl::open().context("opening rtnetlink")?;
    let links = crate::kernel::links::XdpLinks::load(&ctx.pin_index()?)?;
    for dev in rtnl.devices().context("listing devices")? {
        for (mode, prog_id) in dev.xdp.attached() {
            let Some(prog) = old_progs.get(&prog_id) else {
                continue;
            };
            match links.find(dev.ifindex, prog_id)? {
                crate::kernel::links::XdpAttach::Netlink => {}
                // Links are switched through their pins in the directory.
                crate::kernel::links::XdpAttach::Link(_) => continue,
                crate::kernel::links::XdpAttach::Ambiguous => bail!(
                    "{} runs {prog}, and whether by a link or over netlink cannot be told apart from devices \
                     in other namespaces; nothing was changed",
                    dev.name
                ),
            }
            if !names.contains(prog) {
                bail!(
                    "{} runs {prog}, which {} does not have; nothing was changed",
                    dev.name,
                    object.label
                );
            }
            let old = crate::kernel::sys::fd_by_id(crate::kernel::sys::IdKind::Prog, prog_id)?;
            let flag = crate::cmd::attach::state_mode_flag(mode);
            swaps.push(Swap::Netlink {
                ifindex: dev.ifindex,
                device: dev.name.clone(),
                flag,
                old,
                new: prog.clone(),
            });
        }
    }

    // Stage the new pins (invisible until the rename), links included, and
    // pins that are not the object's (guard's state, say) as they are.
    stage_object(&mut staging, &ebpf, &names)?;
    for pin in &pins {
        let rel_path = rel(pin);
        let first = rel_path
            .components()
            .next()
            .map(|c| c.as_os_str().to_owned());
        let objects = first
            .as_deref()
            .is_some_and(|f| f == MAPS_SUBDIR || f == crate::cmd::attach::LINKS_SUBDIR);
        if objects || (pin.kind == pinfs::Kind::Prog && rel_path.components().count() == 1) {
            continue;
        }
        let fd = pinfs::obj_get(&pin.path)?;
        staging.pin(&rel_path.display().to_string(), fd.as_fd())?;
    }
    for swap in &swaps {
        if let Swap::Link { pin, fd, .. } = swap {
            staging.pin(&pin.display().to_string(), fd.as_fd())?;
        }
    }

    // Switch the programs; on failure switch back what was switched.
    let mut done: Vec<&Swap> = Vec::new();
    let apply =
        |swap: &Swap, rtnl: &mut crate::kernel::netlink::Rtnl, forward: bool| -> Result<()> {
            match swap {
                Swap::Link { pin, fd, old, new } => {
                    let new = new_fd(new)?;
                    let (to, from) = if forward {
                        (new.as_fd(), old.as_fd())
                    } else {
                        (old.as_fd(), new.as_fd())
                    };
                    crate::kernel::sys::link_update(fd.as_fd(), to, Some(from))
                        .with_context(|| format!("updating the link pinned at {}", pin.display()))
                }
                Swap::Netlink {
                    ifindex,
                    device,
                    flag,
                    old,
                    new,
                } => {
                    let new = new_fd(new)?;
                    let (to, from) = if forward {
                        (new.as_raw_fd(), old.as_raw_fd())
                    } else {
                        (old.as_raw_fd(), new.as_raw_fd())
                    };
                    rtnl.set_xdp(
                        *ifindex,
                        to,
                        flag | crate::kernel::sys::xdp_flags::REPLACE,
                        Some(from),
                    )
                    .with_context(|| format!("replacing the program on {device}"))
                }
            }
        };
    for swap in &swaps {
        if let Err(e) = apply(swap, &mut rtnl, true) {
            for undo in done.iter().rev() {
                let _ = apply(undo, &mut rtnl, false);
            }
            return Err(e.context("the old programs are back in place"));
        }
        done.push(swap);
    }
    let backup = target.path.with_file_name(format!(
        "{}{}",
        pinfs::ROLLBACK_PREFIX,
        target
            .path
            .file_name()
            .map_or_else(String::new, |n| n.to_string_lossy().into_owned())
    ));
    let committed = if args.confirm_within.is_some() {
        staging.commit_keeping_old(&backup)
    } else {
        staging.commit()
    };
    let dir = match committed {
        Ok(dir) => dir,
        Err(e) => {
            for undo in done.iter().rev() {
                let _ = apply(undo, &mut rtnl, false);
            }
            return Err(anyhow::Error::new(e).context("the old programs are back in place"));
        }
    };
    if let Some(within) = args.confirm_within {
        let pending = crate::cmd::confirm::Pending::Upgrade {
            deadline_ms: crate::cmd::stats::now_ms() + within.as_millis() as u64,
            dir: dir.clone(),
            backup,
            links: swaps
                .iter()
                .filter_map(|s| match s {
                    Swap::Link { pin, new, .. } => Some((pin.clone(), new.clone())),
                    Swap::Netlink { .. } => None,
                })
                .collect(),
            netlink: swaps
                .iter()
                .filter_map(|s| match s {
                    Swap::Netlink {
                        ifindex, flag, new, ..
                    } => Some((None, *ifindex, *flag, new.clone())),
                    Swap::Link { .. } => None,
                })
                .collect(),
        };
        crate::cmd::confirm::arm(&crate::cmd::confirm::upgrade_key(&dir), &pending, ctx)?;
        eprintln!(
            "xdpctl: this upgrade is rolled back in {within:?} unless you run: xdpctl confirm {}",
            dir.display()
        );
    }
    let kept: Vec<&str> = reuse.iter().map(|(n, _)| n.as_str()).collect();
    eprintln!(
        "xdpctl: upgraded {} to {}: {} attachment(s) switched; maps kept: {}{}",
        dir.display(),
        object.label,
        swaps.len(),
        if kept.is_empty() {
            "none".to_owned()
        } else {
            kept.join(", ")
        },
        if reset.is_empty() {
            String::new()
        } else {
            format!("; maps reset: {}", reset.join(", "))
        }
    );
    print_loaded(ctx, dir)
}

/// How a pinned map differs from an object's definition, if it does.
fn map_mismatch(def: &aya_obj::Map, info: &aya_obj::generated::bpf_map_info) -> Option<String> {
    let fields = [
        ("type", def.map_type(), info.type_, true),
        ("key size", def.key_size(), info.key_size, false),
        ("value size", def.value_size(), info.value_size, false),
        ("max entries", def.max_entries(), info.max_entries, false),
        ("flags", def.map_flags(), info.map_flags, false),
    ];
    fields
        .into_iter()
        .find(|(_, want, have, _)| want != have)
        .map(|(what, want, have, is_type)| {
            let show = |v: u32| {
                if is_type {
                    crate::kernel::sys::map_type_name(v)
                } else {
                    v.to_string()
                }
            };
            format!("{what} is {}, the object wants {}", show(have), show(want))
        })
}

fn rejection(
    name: &str,
    err: aya::programs::ProgramError,
    log_file: Option<&Path>,
) -> anyhow::Error {
    let aya::programs::ProgramError::LoadError {
        io_error,
        verifier_log,
    } = err
    else {
        return anyhow::Error::new(err).context(format!("loading program {name}"));
    };
    let log = verifier_log.to_string();
    let mut saved_to = None;
    if let Some(path) = log_file {
        match fs::write(path, &log) {
            Ok(()) => saved_to = Some(path.to_owned()),
            Err(e) => eprintln!(
                "xdpctl: cannot write the verifier log to {}: {e}",
                path.display()
            ),
        }
    }
    Rejection {
        program: name.to_owned(),
        error: io_error,
        log,
        saved_to,
    }
    .into()
}

/// What an unload detached and removed.
#[derive(Debug, Serialize)]
pub struct Unloaded {
    /// The directory.
    pub dir: PathBuf,
    /// Attachments taken off devices first.
    pub detached: Vec<crate::cmd::attach::Attachment>,
    /// The pins removed.
    pub removed: Vec<RemovedRow>,
}

/// One removed pin.
#[derive(Debug, Serialize)]
pub struct RemovedRow {
    /// `prog`, `map` or `link`.
    pub kind: &'static str,
    /// The kernel id it had.
    pub id: u32,
    /// Where it was pinned.
    pub pinned: PathBuf,
}

impl Tabular for RemovedRow {
    const HEADERS: &'static [&'static str] = &["KIND", "ID", "UNPINNED"];
    fn cells(&self) -> Vec<String> {
        vec![
            self.kind.to_owned(),
            self.id.to_string(),
            self.pinned.display().to_string(),
        ]
    }
}

impl Human for Unloaded {
    fn human(&self) -> String {
        if self.removed.is_empty() {
            String::new()
        } else {
            render::table(&self.removed)
        }
    }
}

/// `xdpctl unload`.
pub fn unload(ctx: &Ctx, args: &UnloadArgs) -> Result<()> {
    let dir = ctx.resolve(&args.dir);
    let target = match pinfs::validate(&dir) {
        Ok(target) => target,
        // A bpffs root that is not mounted holds nothing: nothing to do.
        Err(pinfs::Error::NotBpffs { .. }) if !dir.exists() => {
            return nothing_pinned(ctx, dir);
        }
        Err(e) => return Err(e.into()),
    };
    if !target.exists() {
        return nothing_pinned(ctx, target.path);
    }
    let meta =
        fs::metadata(&target.path).with_context(|| format!("stat {}", target.path.display()))?;
    if !meta.is_dir() {
        bail!(
            "{} is a single pin, not a load directory; remove it with rm if that is what you want",
            target.path.display()
        );
    }
    let parent = target.path.parent().unwrap_or(Path::new("/"));
    let parent_dev = fs::metadata(parent).map(|m| m.dev()).unwrap_or(0);
    if parent_dev != meta.dev() || target.path == Path::new("/") {
        bail!(
            "{} is the root of a bpffs mount; refusing to remove every pin on it (name the load directory instead)",
            target.path.display()
        );
    }

    let _lock = pinfs::DirLock::exclusive(parent)?;
    // Detach first: an attached program keeps running after its pins are gone.
    let pins = pinfs::list(&target.path)?;
    let (links, others): (Vec<_>, Vec<_>) =
        pins.into_iter().partition(|p| p.kind == pinfs::Kind::Link);
    let prog_ids: Vec<u32> = others
        .iter()
        .filter(|p| p.kind == pinfs::Kind::Prog)
        .map(|p| p.id)
        .collect();
    let detached = crate::cmd::attach::detach_load(&links, &prog_ids)?;
    for d in &detached {
        eprintln!(
            "xdpctl: detached program {} ({}) from {} ({})",
            d.prog_id,
            d.prog_name,
            d.device,
            d.link_id.map_or_else(
                || format!("netlink, {} mode", d.mode),
                |l| format!("link {l}")
            )
        );
    }
    let removed = pinfs::remove_all(&target.path)?;
    eprintln!(
        "xdpctl: unpinned {} object(s) from {}",
        removed.len(),
        target.path.display()
    );
    let removed = removed
        .into_iter()
        .map(|p| RemovedRow {
            kind: p.kind.as_str(),
            id: p.id,
            pinned: p.path,
        })
        .collect();
    render::print(
        ctx.format,
        &Unloaded {
            dir: target.path,
            detached,
            removed,
        },
    )?;
    Ok(())
}

/// Unload of a directory that does not exist: nothing to do, not an error.
fn nothing_pinned(ctx: &Ctx, dir: PathBuf) -> Result<()> {
    eprintln!("xdpctl: nothing is pinned at {}", dir.display());
    let unloaded = Unloaded {
        dir,
        detached: Vec::new(),
        removed: Vec::new(),
    };
    render::print(ctx.format, &unloaded)?;
    Ok(())
}
