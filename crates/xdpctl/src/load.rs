//! `xdpctl load` and `xdpctl unload`: BPF objects in, pins out, and back.

use std::{
    borrow::Cow,
    fs,
    os::{fd::AsFd, unix::fs::MetadataExt},
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
    describe::{self, Described},
    output::{self, Human, Tabular},
    verifier::Rejection,
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
    let info = crate::sys::map_info(fd.as_fd()).with_context(|| {
        format!(
            "--map {}: reading the map at {}",
            reuse.name,
            path.display()
        )
    })?;
    let want = [
        ("type", def.map_type(), info.type_, true),
        ("key size", def.key_size(), info.key_size, false),
        ("value size", def.value_size(), info.value_size, false),
        ("max entries", def.max_entries(), info.max_entries, false),
        ("flags", def.map_flags(), info.map_flags, false),
    ];
    for (what, expected, found, is_type) in want {
        if expected != found {
            let show = |v: u32| {
                if is_type {
                    crate::sys::map_type_name(v)
                } else {
                    v.to_string()
                }
            };
            bail!(
                "--map {}: the map pinned at {} does not match {}'s definition: {what} is {}, \
                 the object wants {}",
                reuse.name,
                path.display(),
                obj.label,
                show(found),
                show(expected)
            );
        }
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
        let (name, type_) = match describe::describe(pin.kind, pin.id) {
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
        output::table(&self.objects)
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
        reuse.push((m.name.as_str(), check_reuse(ctx, &object, m)?));
    }

    let mut loader = EbpfLoader::new();
    for (name, path) in &reuse {
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
            return Err(rejection(name, err, args.verifier_log.as_deref()));
        }
    }

    let mut staging = pinfs::Staging::begin(&target)?;
    for name in &names {
        let fd = ebpf.program(name).expect("listed above").fd()?;
        staging.pin(name, fd.as_fd())?;
    }
    let mut maps: Vec<(&str, &aya::maps::Map)> = ebpf.maps().collect();
    maps.sort_by_key(|(n, _)| *n);
    for (name, map) in maps {
        // NB: global data maps are named `.rodata`, `.data`, `.bss`; pinned
        // as `_rodata` etc. so they are not hidden files.
        let file = name.replace('.', "_");
        let staged = staging.prepare(&format!("{MAPS_SUBDIR}/{file}"))?;
        map.pin(&staged)
            .with_context(|| format!("pinning map {name} at {}", staged.display()))?;
    }
    let dir = staging.commit()?;

    let objects = pinfs::list(&dir)?
        .into_iter()
        .map(PinRow::from_pin)
        .collect();
    eprintln!(
        "xdpctl: loaded {} and pinned it at {}",
        object.label,
        dir.display()
    );
    output::print(ctx.format, &Loaded { dir, objects })?;
    Ok(())
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

/// What an unload removed.
#[derive(Debug, Serialize)]
pub struct Unloaded {
    /// The directory.
    pub dir: PathBuf,
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
            output::table(&self.removed)
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
            eprintln!("xdpctl: nothing is pinned at {}", dir.display());
            return output::print(
                ctx.format,
                &Unloaded {
                    dir,
                    removed: Vec::new(),
                },
            )
            .map_err(Into::into);
        }
        Err(e) => return Err(e.into()),
    };
    if !target.exists() {
        eprintln!("xdpctl: nothing is pinned at {}", target.path.display());
        let unloaded = Unloaded {
            dir: target.path,
            removed: Vec::new(),
        };
        return output::print(ctx.format, &unloaded).map_err(Into::into);
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
    output::print(
        ctx.format,
        &Unloaded {
            dir: target.path,
            removed,
        },
    )?;
    Ok(())
}
