//! Entering a network namespace in-process with `setns(2)`.
//!
//! NB: never `ip netns exec`: it also enters a new mount namespace and
//! remounts /sys, which hides the pins under /sys/fs/bpf. setns with
//! CLONE_NEWNET changes only the network namespace of this (single) thread,
//! so bpffs stays as it was.

use std::{
    fs::File,
    path::{Path, PathBuf},
};

use anyhow::{Context as _, Result};
use nix::sched::{CloneFlags, setns};

/// A `--netns` argument: a name under /run/netns or a path.
pub fn path_of(spec: &str) -> PathBuf {
    if spec.contains('/') {
        PathBuf::from(spec)
    } else {
        Path::new("/run/netns").join(spec)
    }
}

/// How outputs name a namespace given as `spec`: its name when it is one
/// under /run/netns (given as a name or as that path), else the path.
pub fn display(spec: &str) -> String {
    match Path::new(spec).strip_prefix("/run/netns") {
        Ok(name) if name.components().count() == 1 => name.display().to_string(),
        _ => spec.to_owned(),
    }
}

/// A network namespace: its identity — the inode of its nsfs file (nsfs is
/// one file system, so the inode alone tells namespaces apart, and it is
/// what link pins record) — and how outputs name it: its name under
/// /run/netns when it has one, whether it is the current namespace or
/// another and however it was given, else the path it was given as; an
/// unnamed current namespace has no name (`null`).
///
/// Two `Netns` are equal when they are the same namespace, whatever their
/// names: desired and live attachments are compared by identity.
#[derive(Clone, Debug)]
pub struct Netns {
    /// The inode of the namespace.
    pub ino: u64,
    /// How outputs name it.
    pub name: Option<String>,
}

impl PartialEq for Netns {
    fn eq(&self, other: &Self) -> bool {
        self.ino == other.ino
    }
}

impl Eq for Netns {}

impl serde::Serialize for Netns {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.name.serialize(s)
    }
}

impl Netns {
    /// The calling thread's namespace.
    pub fn current() -> Result<Self> {
        let ino = current_inode()?;
        Ok(Netns {
            ino,
            name: run_netns_name(ino),
        })
    }

    /// The namespace a `--netns` argument (or a policy's `netns:`) names;
    /// `None`, the calling thread's.
    pub fn of(spec: Option<&str>) -> Result<Self> {
        let Some(spec) = spec else {
            return Self::current();
        };
        let path = path_of(spec);
        let ino = inode_of(&path)
            .with_context(|| format!("network namespace {spec} (see `ip netns list`)"))?;
        Ok(Netns {
            ino,
            name: run_netns_name(ino).or_else(|| Some(display(spec))),
        })
    }

    /// The namespace with inode `ino` among `known` (see [`known`]); an
    /// unknown one (gone, or unnamed elsewhere) has no name.
    pub fn by_inode(ino: u64, known: &[Netns]) -> Self {
        known
            .iter()
            .find(|n| n.ino == ino)
            .cloned()
            .unwrap_or(Netns { ino, name: None })
    }

    /// Enters it (nothing to do for the current one); `Ok(Err(()))` when no
    /// known namespace has its inode.
    pub fn enter(&self) -> Result<std::result::Result<Option<Entered>, ()>> {
        enter_inode(self.ino)
    }
}

/// The name under /run/netns of the namespace with inode `ino`, if it has
/// one.
fn run_netns_name(ino: u64) -> Option<String> {
    named()
        .into_iter()
        .find_map(|(path, key)| (key.1 == ino).then(|| display(&path.display().to_string())))
}

/// The entries of /run/netns that are namespaces, sorted, with their nsfs
/// (device, inode).
fn named() -> Vec<(PathBuf, (u64, u64))> {
    use std::os::unix::fs::MetadataExt;
    let Ok(nsfs) = std::fs::metadata("/proc/thread-self/ns/net").map(|m| m.dev()) else {
        return Vec::new();
    };
    let Ok(entries) = std::fs::read_dir("/run/netns") else {
        return Vec::new();
    };
    let mut out: Vec<(PathBuf, (u64, u64))> = entries
        .flatten()
        .filter_map(|e| {
            let path = e.path();
            // A namespace file is on nsfs, like our own; a stale name is not.
            let m = std::fs::metadata(&path).ok()?;
            (m.dev() == nsfs).then(|| (path, (m.dev(), m.ino())))
        })
        .collect();
    out.sort();
    out
}

/// Every namespace xdpctl knows, each once: the current one, then those
/// named under /run/netns.
pub fn known() -> Result<Vec<Netns>> {
    let mut out = vec![Netns::current()?];
    for (path, (_, ino)) in named() {
        if out.iter().any(|n| n.ino == ino) {
            continue;
        }
        out.push(Netns {
            ino,
            name: Some(display(&path.display().to_string())),
        });
    }
    Ok(out)
}

/// While alive, this thread is in another network namespace; dropping it
/// returns to the original one.
pub struct Entered {
    original: File,
}

impl Drop for Entered {
    fn drop(&mut self) {
        // NB: failing to go back would leave later work in the wrong
        // namespace; there is no sane way to continue.
        setns(&self.original, CloneFlags::CLONE_NEWNET)
            .expect("returning to the original network namespace");
    }
}

/// Enters the namespace `spec` names; `None` stays where we are.
pub fn enter(spec: Option<&str>) -> Result<Option<Entered>> {
    let Some(spec) = spec else { return Ok(None) };
    let path = path_of(spec);
    let target = File::open(&path).with_context(|| {
        format!(
            "network namespace {spec}: cannot open {} (see `ip netns list`)",
            path.display()
        )
    })?;
    let original =
        File::open("/proc/thread-self/ns/net").context("opening the current network namespace")?;
    setns(&target, CloneFlags::CLONE_NEWNET).map_err(|e| match e {
        nix::errno::Errno::EINVAL => anyhow::anyhow!(
            "{} is not a network namespace (give a name from `ip netns list` or a path such as \
             /proc/PID/ns/net)",
            path.display()
        ),
        e => anyhow::Error::new(std::io::Error::from(e)).context(format!(
            "entering network namespace {spec} ({})",
            path.display()
        )),
    })?;
    Ok(Some(Entered { original }))
}

/// This namespace (`None`) and every other one named under /run/netns,
/// each once.
pub fn all() -> Result<Vec<Option<String>>> {
    use std::os::unix::fs::MetadataExt;
    let id = |path: &Path| std::fs::metadata(path).map(|m| (m.dev(), m.ino()));
    let mut seen = vec![
        id(Path::new("/proc/thread-self/ns/net"))
            .context("reading the current network namespace")?,
    ];
    let mut all = vec![None];
    let Ok(entries) = std::fs::read_dir("/run/netns") else {
        return Ok(all);
    };
    let mut names: Vec<PathBuf> = entries.flatten().map(|e| e.path()).collect();
    names.sort();
    for path in names {
        // Files there that are not (or no longer) namespaces are skipped.
        let Ok(key) = id(&path) else { continue };
        // A namespace file is on nsfs, like our own; a stale name is not.
        if key.0 != seen[0].0 || seen.contains(&key) {
            continue;
        }
        seen.push(key);
        all.push(Some(path.display().to_string()));
    }
    Ok(all)
}

/// The inode of a network namespace file: its identity.
pub fn inode_of(path: &Path) -> Result<u64> {
    use std::os::unix::fs::MetadataExt;
    Ok(std::fs::metadata(path)
        .with_context(|| format!("reading {}", path.display()))?
        .ino())
}

/// The inode of the calling thread's network namespace.
pub fn current_inode() -> Result<u64> {
    inode_of(Path::new("/proc/thread-self/ns/net"))
}

/// Enters the network namespace whose inode is `ino`: this one (nothing to
/// do), or one named under /run/netns. `Ok(Err(()))` when no known
/// namespace has that inode (it is gone, or unnamed).
pub fn enter_inode(ino: u64) -> Result<std::result::Result<Option<Entered>, ()>> {
    if current_inode()? == ino {
        return Ok(Ok(None));
    }
    for ns in all()?.into_iter().flatten() {
        if inode_of(Path::new(&ns)).is_ok_and(|i| i == ino) {
            return Ok(Ok(enter(Some(&ns))?));
        }
    }
    Ok(Err(()))
}
