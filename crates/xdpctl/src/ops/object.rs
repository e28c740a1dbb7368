//! BPF objects for `load` and `load --replace`: reading and checking an
//! ELF, loading it into the kernel with aya, staging its pins and its
//! manifest, and the rows that report a load.

use std::{
    borrow::Cow,
    collections::BTreeMap,
    fs,
    os::fd::AsFd,
    path::{Path, PathBuf},
};

use anyhow::{Context as _, Result, bail};
use aya::{EbpfLoader, programs::Program};
use aya_obj::{Object, ProgramSection};
use serde::Serialize;
use xdp_progs::xdpfw;

use crate::{
    ctx::Ctx,
    kernel::{
        datamaps,
        map::MapHandle,
        objects::{self, Described},
        store, sys,
    },
    model::{
        change::{Change, Step},
        error_text::chain,
        handle::MapReuse,
        manifest::{self, LINKS_SUBDIR, MAPS_SUBDIR, Manifest, MapEntry, ProgEntry},
        verifier::Rejection,
    },
    ops::Journal,
    render::{self, Human, Tabular},
};

const EM_BPF: u16 = 247;

/// A BPF object from the command line or the built-in firewall, checked.
pub(crate) struct ObjectFile<'a> {
    /// The object as given, for messages.
    pub(crate) label: String,
    /// The object as the manifest records it: `built-in xdpfw`, or the
    /// file's canonical path, which names it from any directory.
    pub(crate) source: String,
    pub(crate) bytes: Cow<'a, [u8]>,
    pub(crate) parsed: Object,
}

/// The object file at `path` as a manifest records it: its canonical
/// path, so that `save` writes a path `apply` reads from any directory.
pub(crate) fn object_source(path: &Path) -> String {
    fs::canonicalize(path)
        .unwrap_or_else(|_| path.to_owned())
        .display()
        .to_string()
}

pub(crate) fn read_object(path: Option<&Path>) -> Result<ObjectFile<'static>> {
    let (label, source, bytes) = match path {
        None => {
            let label = format!("built-in {}", xdpfw::NAME);
            (label.clone(), label, Cow::Borrowed(xdpfw::OBJECT))
        }
        Some(path) => {
            let bytes =
                fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
            (
                path.display().to_string(),
                object_source(path),
                Cow::Owned(bytes),
            )
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
    match bytes[4] {
        2 => {}
        1 => bail!(
            "{label} is a 32-bit ELF file; BPF objects are 64-bit ELF (compile with `clang -target bpf`)"
        ),
        class => bail!("{label} is not a valid ELF file (ELF class {class}); is it truncated?"),
    }
    let host_le = cfg!(target_endian = "little");
    if (bytes[5] == 1) != host_le {
        bail!(
            "{label} is a {}-endian BPF object, and this host is {}-endian; compile it with \
             `clang -target {}`",
            if bytes[5] == 1 { "little" } else { "big" },
            if host_le { "little" } else { "big" },
            if host_le { "bpfel" } else { "bpfeb" }
        );
    }
    let parsed = Object::parse(&bytes).map_err(|e| parse_error(&label, &bytes, e))?;
    if parsed.programs.is_empty() {
        bail!("{label} contains no programs; put the XDP function in a SEC(\"xdp\") section");
    }
    let mut names: Vec<&String> = parsed.programs.keys().collect();
    names.sort();
    for name in names {
        if manifest::RESERVED.contains(&name.as_str()) {
            bail!(
                "{label}: a program is named {name}, which a load directory keeps for itself \
                 ({}); rename the function",
                manifest::RESERVED.join(", ")
            );
        }
        let program = &parsed.programs[name];
        if !matches!(
            program.section,
            ProgramSection::Xdp { .. } | ProgramSection::SchedClassifier
        ) {
            let kind = section_kind(&program.section);
            bail!(
                "{label}: section `{}`: program {name} is {} {kind} program; xdpctl loads XDP \
                 (SEC(\"xdp\")) and tc (SEC(\"classifier\")) programs",
                section_name(&bytes, program.section_index),
                article(&kind)
            );
        }
    }
    Ok(ObjectFile {
        label,
        source,
        bytes,
        parsed,
    })
}

/// "a" or "an", for a word.
fn article(word: &str) -> &'static str {
    if word.starts_with(['a', 'e', 'i', 'o', 'u']) {
        "an"
    } else {
        "a"
    }
}

/// The name of section `index` of the ELF file, for messages.
fn section_name(bytes: &[u8], index: usize) -> String {
    use object::{Object as _, ObjectSection as _};
    object::File::parse(bytes)
        .ok()
        .and_then(|f| {
            f.section_by_index(object::SectionIndex(index))
                .ok()
                .and_then(|s| s.name().ok().map(str::to_owned))
        })
        .unwrap_or_else(|| format!("#{index}"))
}

/// An error and its sources, on one line.
/// aya's parse errors, said in terms of the object: the section, what is
/// wrong with it, and what to do.
fn parse_error(label: &str, bytes: &[u8], e: aya_obj::ParseError) -> anyhow::Error {
    use aya_obj::ParseError as P;
    match e {
        P::UnknownSymbol {
            section_index,
            address,
        } => anyhow::anyhow!(
            "{label}: section `{}`: the code at offset {address:#x} has no function symbol \
             with a size (clang before 10 marks functions NOTYPE with size 0, and aya needs \
             FUNC symbols); rebuild the object with a current clang",
            section_name(bytes, section_index)
        ),
        P::InvalidProgramSection { section } => anyhow::anyhow!(
            "{label}: section `{section}` is not a program type that aya knows; xdpctl loads \
             XDP (SEC(\"xdp\")) and tc (SEC(\"classifier\")) programs"
        ),
        P::InvalidMapDefinition { name } => anyhow::anyhow!(
            "{label}: section `maps`: the legacy map definition {} cannot be read (each must \
             be a global, named struct bpf_map_def); declare maps with BTF in SEC(\".maps\")",
            if name.is_empty() {
                "without a symbol name".to_owned()
            } else {
                format!("`{name}`")
            }
        ),
        P::MapSymbolNameNotFound { i } => anyhow::anyhow!(
            "{label}: section `maps`: legacy map number {i} has no symbol name; declare maps \
             with BTF in SEC(\".maps\")"
        ),
        P::BtfError(e) => anyhow::anyhow!(
            "{label}: section `.BTF`: its type information cannot be used ({}); rebuild the \
             object with a current clang and `-g`",
            chain(&e)
        ),
        e @ (P::ElfError(_) | P::SectionError { .. }) => anyhow::anyhow!(
            "{label} is not a valid BPF object (truncated or corrupt?): {}",
            chain(&e)
        ),
        e => anyhow::anyhow!("{label} is not a BPF object xdpctl can load: {}", chain(&e)),
    }
}

fn section_kind(section: &ProgramSection) -> String {
    let debug = format!("{section:?}");
    debug
        .split([' ', '{', '('])
        .next()
        .unwrap_or("unknown")
        .to_lowercase()
}

/// The sizes given with `--max-entries`, checked: each a map of the object,
/// each once.
pub(crate) fn sizes_plan(
    obj: &ObjectFile<'_>,
    sizes: &[(String, u32)],
) -> Result<BTreeMap<String, u32>> {
    let mut out = BTreeMap::new();
    for (name, n) in sizes {
        if !obj.parsed.maps.contains_key(name) {
            let mut names: Vec<&str> = obj.parsed.maps.keys().map(String::as_str).collect();
            names.sort_unstable();
            bail!(
                "--max-entries {name}: {} has no map named {name}; its maps are: {}",
                obj.label,
                names.join(", ")
            );
        }
        if let Some(why) = fixed_size(obj, name) {
            bail!("--max-entries {name}: {why}");
        }
        if out.insert(name.clone(), *n).is_some() {
            bail!("--max-entries {name} is given twice; give each map once");
        }
    }
    Ok(out)
}

/// Why the map `name` of `obj` cannot be given a size, if it cannot: the
/// firewall's own maps have the sizes its program is built for (only the
/// rule maps, the per-source tables and the CIDR indexes' room may change).
fn fixed_size(obj: &ObjectFile<'_>, name: &str) -> Option<String> {
    let firewall = xdpfw::maps::is_firewall(|n| obj.parsed.maps.contains_key(n));
    firewall.then(|| firewall_fixed_size(name)).flatten()
}

/// Why the firewall's map `name` may not be given another size, if it may
/// not (`--max-entries`, `XDPCTL_MAX_ENTRIES`, a policy's
/// `load.max_entries`).
pub(crate) fn firewall_fixed_size(name: &str) -> Option<String> {
    (!xdpfw::maps::sizeable(name)).then(|| {
        format!(
            "the firewall's {name} has the size its program is built for; size its rule maps, \
             pps, pps6, {} or {} instead",
            xdpfw::maps::TUNABLE[0],
            xdpfw::maps::TUNABLE[1]
        )
    })
}

/// The environment variable with default sizes for every load.
pub(crate) const SIZES_ENV: &str = "XDPCTL_MAX_ENTRIES";

/// Adds the sizes XDPCTL_MAX_ENTRIES gives (`NAME=N,NAME=N`) for the maps
/// of `obj` that `sizes` does not size yet: the operator's defaults for a
/// machine (smaller flow tables on a small one, say). Names the object
/// lacks are skipped: the defaults are for every object.
pub(crate) fn env_sizes(obj: &ObjectFile<'_>, sizes: &mut BTreeMap<String, u32>) -> Result<()> {
    let Some(text) = std::env::var_os(SIZES_ENV) else {
        return Ok(());
    };
    let text = text.to_string_lossy();
    let mut seen = std::collections::HashSet::new();
    for item in text.split(',').map(str::trim).filter(|i| !i.is_empty()) {
        let (name, n) = crate::model::handle::max_entries(item).map_err(|why| {
            anyhow::anyhow!("{SIZES_ENV}: {why}; give NAME=N[,NAME=N...] or unset it")
        })?;
        if !seen.insert(name.clone()) {
            bail!("{SIZES_ENV}: {name} is given twice; give each map once");
        }
        if let Some(why) = fixed_size(obj, &name) {
            bail!("{SIZES_ENV}: {why}");
        }
        if obj.parsed.maps.contains_key(&name) {
            sizes.entry(name).or_insert(n);
        }
    }
    Ok(())
}

/// The maps given with `--map`, checked: each named once, each pinned and
/// fitting the object's definition.
pub(crate) fn reuse_plan(
    ctx: &Ctx,
    obj: &ObjectFile<'_>,
    maps: &[MapReuse],
) -> Result<Vec<(String, PathBuf)>> {
    let mut seen = std::collections::HashSet::new();
    for m in maps {
        if !seen.insert(m.name.as_str()) {
            bail!("--map {} is given twice; give each map once", m.name);
        }
    }
    maps.iter()
        .map(|m| Ok((m.name.clone(), check_reuse(ctx, obj, m)?)))
        .collect()
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
    if xdpfw::maps::is_firewall(|n| obj.parsed.maps.contains_key(n))
        && xdpfw::maps::INTERNAL.contains(&reuse.name.as_str())
    {
        bail!(
            "--map {}: the firewall derives {} from its rules and keeps it itself; \
             share its rule maps (blocklist, cidr4, ...) instead",
            reuse.name,
            reuse.name
        );
    }
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
    let info = sys::map_info(fd.as_fd()).with_context(|| {
        format!(
            "--map {}: reading the map at {}",
            reuse.name,
            path.display()
        )
    })?;
    if let Some(diff) = map_mismatch(def, &info, None) {
        bail!(
            "--map {}: the map pinned at {} does not match {}'s definition: {diff}",
            reuse.name,
            path.display(),
            obj.label
        );
    }
    Ok(pin.path)
}

/// A map the object asks to pin by name (`LIBBPF_PIN_BY_NAME`): shared
/// at `<--bpffs>/<name>` by every load of an object that asks for it, as
/// libbpf shares it at `<pin root>/<name>` (its pin root is /sys/fs/bpf,
/// the default --bpffs, so xdpctl and libbpf tools share the same pins).
#[derive(Clone, Debug)]
pub(crate) struct SharedMap {
    /// The map's name in the object.
    pub(crate) name: String,
    /// `<--bpffs>/<name>`.
    pub(crate) path: PathBuf,
    /// The id of the map already pinned there (then reused), if any.
    pub(crate) existing: Option<u32>,
    /// Whether xdpctl made the pin: this load will, or a load directory
    /// says an xdpctl load did.
    pub(crate) owned: bool,
}

/// The maps the object pins by name (those not given with `--map`),
/// checked against what is pinned at their shared paths: a pin there is
/// reused only if it is a map that fits the object's definition. They must
/// be on the bpffs of the load `target` (one journal covers both).
pub(crate) fn shared_plan(
    ctx: &Ctx,
    obj: &ObjectFile<'_>,
    reuse: &[(String, PathBuf)],
    sizes: &BTreeMap<String, u32>,
    target: &pinfs::PinPath,
) -> Result<Vec<SharedMap>> {
    let wanted = obj.parsed.maps.iter().any(|(n, m)| {
        m.pinning() == aya_obj::maps::PinningType::ByName && !reuse.iter().any(|(r, _)| r == n)
    });
    if !wanted {
        return Ok(Vec::new());
    }
    let root = crate::kernel::layout::mount_root(&target.existing)?;
    let shared_root = ctx
        .bpffs
        .exists()
        .then(|| crate::kernel::layout::mount_root(&ctx.bpffs).ok())
        .flatten();
    if shared_root.as_deref() != Some(root.as_path()) {
        bail!(
            "{} pins maps by name (LIBBPF_PIN_BY_NAME), which xdpctl shares under --bpffs {}, \
             but --pin {} is on another bpffs; load below {} or give --bpffs on the bpffs of \
             the load",
            obj.label,
            ctx.bpffs.display(),
            target.path.display(),
            ctx.bpffs.display()
        );
    }
    let loads = crate::ops::loaddir::all(&root)?;
    let mut names: Vec<&String> = obj
        .parsed
        .maps
        .iter()
        .filter(|(n, m)| {
            m.pinning() == aya_obj::maps::PinningType::ByName && !reuse.iter().any(|(r, _)| r == *n)
        })
        .map(|(n, _)| n)
        .collect();
    names.sort();
    let mut out = Vec::new();
    for name in names {
        let path = ctx.bpffs.join(name);
        let why = || {
            format!(
                "{}: map {name} is pinned by name (LIBBPF_PIN_BY_NAME) at {}",
                obj.label,
                path.display()
            )
        };
        if name.contains(['.', '/']) || name.is_empty() {
            bail!("{}, which is not a valid pin name", why());
        }
        let pin = pinfs::validate(&path).with_context(why)?;
        if !pin.exists() {
            out.push(SharedMap {
                name: name.clone(),
                path: pin.path,
                existing: None,
                owned: true,
            });
            continue;
        }
        if pin.path.is_dir() {
            bail!(
                "{}, but that is a directory; move it away or load with another --bpffs",
                why()
            );
        }
        let fd = pinfs::obj_get(&pin.path).with_context(why)?;
        let kind = pinfs::obj_info(fd.as_fd()).with_context(why)?.kind;
        if kind != pinfs::Kind::Map {
            bail!(
                "{}, but a {kind} is pinned there; unpin it or load with another --bpffs",
                why()
            );
        }
        let info = sys::map_info(fd.as_fd()).with_context(why)?;
        if let Some(diff) = map_mismatch(&obj.parsed.maps[name], &info, sizes.get(name).copied()) {
            bail!(
                "{}, where another map is pinned whose {diff}; unpin it if nothing uses it, or \
                 load with another --bpffs",
                why()
            );
        }
        let owned = loads.iter().any(|l| {
            l.manifest.maps.iter().any(|m| {
                m.id == info.id
                    && m.shared
                        .as_ref()
                        .is_some_and(|s| s.owned && s.path == pin.path)
            })
        });
        out.push(SharedMap {
            name: name.clone(),
            path: pin.path,
            existing: Some(info.id),
            owned,
        });
    }
    Ok(out)
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
    fn cells(&self, view: &render::View) -> Vec<String> {
        vec![
            self.kind.to_owned(),
            self.id.to_string(),
            self.name.clone(),
            self.type_.clone(),
            view.path(&self.pinned),
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
    fn human(&self, view: &render::View) -> String {
        view.table(&self.objects)
    }
}

/// The pins of a load directory, and the maps it shares outside.
pub fn loaded(dir: PathBuf) -> Result<Loaded> {
    let mut objects: Vec<PinRow> = pinfs::list(&dir)?
        .into_iter()
        .map(PinRow::from_pin)
        .collect();
    if let Some(manifest) = crate::kernel::steps::read_manifest(&dir)? {
        for m in &manifest.maps {
            if let Some(shared) = &m.shared
                && let Ok(pin) = pinfs::pin_info(&shared.path)
            {
                objects.push(PinRow::from_pin(pin));
            }
        }
    }
    Ok(Loaded { dir, objects })
}

/// The manifest of what `names` and the object's maps are, as staged in
/// `staged` (ids are read back from the staged pins).
pub(crate) fn build_manifest(
    object: &ObjectFile<'_>,
    staged: &Path,
    names: &[String],
    load_id: u64,
    generation: u64,
    reused: &[&str],
    shared: &[SharedMap],
) -> Result<Manifest> {
    let mut programs = Vec::new();
    for name in names {
        let pin = pinfs::pin_info(&staged.join(name))?;
        let kind = match object.parsed.programs[name].section {
            ProgramSection::Xdp { .. } => "xdp",
            _ => "tc",
        };
        programs.push(ProgEntry {
            name: name.clone(),
            id: pin.id,
            kind: kind.to_owned(),
        });
    }
    let mut maps = Vec::new();
    let mut map_names: Vec<&String> = object.parsed.maps.keys().collect();
    map_names.sort();
    for name in map_names {
        let pin = name.replace('.', "_");
        let handle = MapHandle::open_pinned(&staged.join(MAPS_SUBDIR).join(&pin))
            .with_context(|| format!("reading back the staged map {name}"))?;
        let info = handle.info();
        maps.push(MapEntry {
            name: name.clone(),
            pin,
            id: info.id,
            map_type: info.type_,
            key_size: info.key_size,
            value_size: info.value_size,
            max_entries: info.max_entries,
            flags: info.map_flags,
            reused: reused.contains(&name.as_str())
                || shared
                    .iter()
                    .any(|s| &s.name == name && s.existing.is_some()),
            shared: shared
                .iter()
                .find(|s| &s.name == name)
                .map(|s| manifest::Shared {
                    path: s.path.clone(),
                    owned: s.owned,
                }),
        });
    }
    Ok(Manifest {
        format: manifest::FORMAT,
        tool: concat!("xdpctl ", env!("CARGO_PKG_VERSION")).to_owned(),
        load_id,
        generation,
        object: object.source.clone(),
        object_digest: manifest::digest(&object.bytes),
        loaded_at_ms: crate::ops::journal::now_ms(),
        programs,
        maps,
        links: LINKS_SUBDIR.to_owned(),
    })
}

/// Pins the manifest into a staged load.
pub(crate) fn write_manifest(staging: &mut pinfs::Staging, manifest: &Manifest) -> Result<()> {
    let path = staging.prepare(manifest::PIN)?;
    store::write_new(&path, store::Kind::Manifest, &manifest.to_bytes())
}

/// Loads the object's maps (reusing the pinned ones in `reuse` and the
/// shared ones that exist) and programs; returns them with the program
/// names, sorted. Maps pinned by name that do not exist yet are created and
/// pinned in `shared_stage` (which must exist if there are any).
///
/// Global-data maps are made with their BTF first (see `kernel::datamaps`)
/// and handed to the loader through scratch pins in the journal's staging
/// area, recorded so that recovery removes them if this dies. What the
/// operator should hear of (global data left untyped) goes to `notes`.
#[allow(clippy::too_many_arguments)]
pub(crate) fn load_into_kernel(
    object: &ObjectFile<'_>,
    reuse: &[(String, PathBuf)],
    sizes: &BTreeMap<String, u32>,
    verifier_log: Option<&Path>,
    shared: &[SharedMap],
    shared_stage: Option<&Path>,
    journal: &mut Journal,
    notes: &mut Vec<String>,
) -> Result<(aya::Ebpf, Vec<String>)> {
    let with = |data_maps: Option<&datamaps::DataMaps>| {
        load_with(
            object,
            reuse,
            sizes,
            verifier_log,
            shared,
            shared_stage,
            data_maps,
        )
    };
    let reused: Vec<&str> = reuse.iter().map(|(n, _)| n.as_str()).collect();
    if !datamaps::wanted(&object.parsed, &reused) {
        return with(None);
    }
    let scratch = journal.scratch("stage")?;
    let entry = journal.begin(Change::Steps {
        what: format!(
            "the global-data maps of {}, made for the loader",
            object.label
        ),
        steps: vec![Step::RemoveTree {
            path: scratch.clone(),
        }],
    })?;
    let loaded = datamaps::create(&object.bytes, &scratch, &reused)
        .with_context(|| format!("creating the global-data maps of {}", object.label))
        .and_then(|maps| {
            for e in maps.untyped() {
                // NB: the maps still work; only their types are missing.
                notes.push(format!(
                    "global data of {} stays untyped: {}",
                    object.label,
                    chain(e)
                ));
            }
            let loaded = with(Some(&maps));
            drop(maps);
            loaded
        });
    journal.finish(entry)?;
    loaded
}

fn load_with(
    object: &ObjectFile<'_>,
    reuse: &[(String, PathBuf)],
    sizes: &BTreeMap<String, u32>,
    verifier_log: Option<&Path>,
    shared: &[SharedMap],
    shared_stage: Option<&Path>,
    data_maps: Option<&datamaps::DataMaps>,
) -> Result<(aya::Ebpf, Vec<String>)> {
    let mut loader = EbpfLoader::new();
    // NB: aya pins maps the object pins by name itself, at
    // /sys/fs/bpf/<name> unless told otherwise: never let it pin outside
    // the stage (a map --map or `shared` names is opened, not pinned).
    let stage_dir = shared_stage.map_or_else(
        || PathBuf::from("/nonexistent/xdpctl-stage"),
        Path::to_path_buf,
    );
    loader.default_map_pin_directory(&stage_dir);
    for s in shared {
        if s.existing.is_some() {
            loader.map_pin_path(&s.name, s.path.as_path());
        }
    }
    for (name, path) in data_maps.map(datamaps::DataMaps::pins).unwrap_or_default() {
        loader.map_pin_path(name, path.as_path());
    }
    for (name, n) in sizes {
        loader.map_max_entries(name, *n);
    }
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
pub(crate) fn stage_object(
    staging: &mut pinfs::Staging,
    ebpf: &aya::Ebpf,
    names: &[String],
) -> Result<()> {
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
        // NB: aya pins with its own bpf(2) call: mark the crash point here.
        pinfs::failpoint::step("BPF_OBJ_PIN");
        map.pin(&staged)
            .with_context(|| format!("pinning map {name} at {}", staged.display()))?;
    }
    Ok(())
}

/// How a pinned map differs from an object's definition, if it does.
pub(crate) fn map_mismatch(
    def: &aya_obj::Map,
    info: &aya_obj::generated::bpf_map_info,
    max_entries: Option<u32>,
) -> Option<String> {
    let fields = [
        ("type", def.map_type(), info.type_, true),
        ("key size", def.key_size(), info.key_size, false),
        ("value size", def.value_size(), info.value_size, false),
        (
            "max entries",
            max_entries.unwrap_or(def.max_entries()),
            info.max_entries,
            false,
        ),
        // NB: BPF_F_MMAPABLE changes how userspace may read a map, not
        // what it holds: a load made before the firewall's indexes had it
        // still fits (and is read with bpf(2)).
        (
            "flags",
            def.map_flags() & !aya_obj::generated::BPF_F_MMAPABLE,
            info.map_flags & !aya_obj::generated::BPF_F_MMAPABLE,
            false,
        ),
    ];
    fields
        .into_iter()
        .find(|(_, want, have, _)| want != have)
        .map(|(what, want, have, is_type)| {
            let show = |v: u32| {
                if is_type {
                    sys::map_type_name(v)
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
    let saved_to = log_file.map(|path| {
        let failed = fs::write(path, &log).err().map(|e| e.to_string());
        (path.to_owned(), failed)
    });
    Rejection {
        program: name.to_owned(),
        error: io_error,
        log,
        saved_to,
    }
    .into()
}
