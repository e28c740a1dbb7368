//! Dynamic shell completion: the shell calls back into xdpctl, which offers
//! what exists on this system — map and program names and pinned paths
//! under the bpffs root, load directories, devices of the namespace named
//! by `--netns` on the same line, namespace names.
//!
//! Completion only reads: it opens pins and asks netlink, never changes
//! anything. Errors (no privileges, no bpffs) just mean no candidates.

use std::{
    collections::BTreeSet,
    ffi::{OsStr, OsString},
    fs,
    os::fd::AsFd,
    path::{Path, PathBuf},
    sync::OnceLock,
};

use clap_complete::engine::CompletionCandidate;
use pinfs::Kind;

use crate::kernel::sys::{self, IdKind};

/// The environment variable that turns a run into a completion request.
pub const ENV: &str = "XDPCTL_COMPLETE";

/// The words of the command line being completed (after `--`).
static WORDS: OnceLock<Vec<OsString>> = OnceLock::new();

/// Remembers the line being completed, so completers can see options given
/// on it (`--netns`, `--bpffs`), which clap's engine does not pass them.
pub fn remember_line() {
    if std::env::var_os(ENV).is_none() {
        return;
    }
    let args: Vec<OsString> = std::env::args_os().collect();
    let words = match args.iter().position(|a| a == "--") {
        Some(i) => args[i + 1..].to_vec(),
        None => Vec::new(),
    };
    let _ = WORDS.set(words);
}

/// The value of `--flag VALUE` or `--flag=VALUE` on the line.
fn option(flag: &str) -> Option<String> {
    let words = WORDS.get()?;
    let mut it = words.iter().map(|w| w.to_string_lossy());
    while let Some(w) = it.next() {
        if w == flag {
            return it.next().map(|v| v.into_owned());
        }
        if let Some(v) = w.strip_prefix(&format!("{flag}=")) {
            return Some(v.to_owned());
        }
    }
    None
}

fn bpffs_root() -> PathBuf {
    option("--bpffs")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("XDPCTL_BPFFS").map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from(pinfs::DEFAULT_ROOT))
}

fn pins() -> Vec<pinfs::Pin> {
    let root = bpffs_root();
    if !pinfs::is_bpffs(&root).unwrap_or(false) {
        return Vec::new();
    }
    pinfs::list(&root).unwrap_or_default()
}

/// `prefix`-matching candidates from names, sorted and deduplicated.
fn matching(
    current: &OsStr,
    names: impl IntoIterator<Item = (String, Option<String>)>,
) -> Vec<CompletionCandidate> {
    let current = current.to_string_lossy();
    let mut seen = BTreeSet::new();
    names
        .into_iter()
        .filter(|(n, _)| n.starts_with(current.as_ref()) && seen.insert(n.clone()))
        .map(|(n, help)| {
            let c = CompletionCandidate::new(n);
            match help {
                Some(h) => c.help(Some(h.into())),
                None => c,
            }
        })
        .collect()
}

/// Pinned paths of `kind` (relative to the root when `current` is).
fn pinned_paths(current: &OsStr, kind: Kind) -> Vec<(String, Option<String>)> {
    let root = bpffs_root();
    let absolute = current.to_string_lossy().starts_with('/');
    pins()
        .into_iter()
        .filter(|p| p.kind == kind)
        .map(|p| {
            let shown = if absolute {
                p.path.display().to_string()
            } else {
                p.path
                    .strip_prefix(&root)
                    .unwrap_or(&p.path)
                    .display()
                    .to_string()
            };
            (shown, Some(format!("{kind} id {}", p.id)))
        })
        .collect()
}

fn kernel_names(kind: IdKind) -> Vec<(String, Option<String>)> {
    let Ok(ids) = sys::ids(kind) else {
        return Vec::new();
    };
    ids.into_iter()
        .filter_map(|id| {
            let fd = sys::fd_by_id(kind, id).ok()?;
            let (name, ty) = match kind {
                IdKind::Map => sys::map_info(fd.as_fd())
                    .map(|i| (sys::c_name(&i.name), sys::map_type_name(i.type_)))
                    .ok()?,
                _ => sys::prog_info(fd.as_fd())
                    .map(|(i, _)| (sys::c_name(&i.name), sys::prog_type_name(i.type_)))
                    .ok()?,
            };
            (!name.is_empty()).then(|| (name, Some(format!("{ty} id {id}"))))
        })
        .collect()
}

fn handle_candidates(
    current: &OsStr,
    kind: Kind,
    id_kind: IdKind,
) -> Vec<(String, Option<String>)> {
    let mut names = Vec::new();
    if current.to_string_lossy().starts_with("id:") {
        // Kernel ids, with the object's name and type as help.
        return kernel_names(id_kind)
            .into_iter()
            .filter_map(|(name, help)| {
                let help = help?;
                let id = help.rsplit(' ').next()?.to_owned();
                Some((format!("id:{id}"), Some(format!("{name} ({help})"))))
            })
            .collect();
    }
    if current.to_string_lossy().contains('/') {
        names.extend(pinned_paths(current, kind));
        return names;
    }
    // Names of pins first (what xdpctl resolves first), then kernel names.
    for (path, help) in pinned_paths(current, kind) {
        if let Some(file) = Path::new(&path).file_name() {
            names.push((file.to_string_lossy().into_owned(), help));
        }
    }
    names.extend(kernel_names(id_kind));
    names
}

/// Map names and pinned map paths.
pub fn maps(current: &OsStr) -> Vec<CompletionCandidate> {
    matching(current, handle_candidates(current, Kind::Map, IdKind::Map))
}

/// Program names, pinned program paths and load directories.
pub fn progs(current: &OsStr) -> Vec<CompletionCandidate> {
    let mut names = handle_candidates(current, Kind::Prog, IdKind::Prog);
    names.extend(load_dirs(current));
    matching(current, names)
}

/// Directories under the root that hold pinned programs (load directories).
fn load_dirs(current: &OsStr) -> Vec<(String, Option<String>)> {
    let root = bpffs_root();
    let absolute = current.to_string_lossy().starts_with('/');
    let mut dirs = BTreeSet::new();
    for pin in pins().into_iter().filter(|p| p.kind == Kind::Prog) {
        if let Some(dir) = pin.path.parent()
            && dir != root
        {
            let shown = if absolute {
                dir.to_path_buf()
            } else {
                dir.strip_prefix(&root).unwrap_or(dir).to_path_buf()
            };
            dirs.insert(shown.display().to_string());
        }
    }
    dirs.into_iter()
        .map(|d| (d, Some("load directory".to_owned())))
        .collect()
}

/// Load directories (for unload and load --pin).
pub fn dirs(current: &OsStr) -> Vec<CompletionCandidate> {
    matching(current, load_dirs(current))
}

/// Network devices of the namespace named by `--netns` on the line.
pub fn devices(current: &OsStr) -> Vec<CompletionCandidate> {
    let ns = option("--netns");
    let Ok(entered) = crate::kernel::netns::enter(ns.as_deref()) else {
        return Vec::new();
    };
    let names = crate::kernel::netlink::Rtnl::open()
        .ok()
        .and_then(|mut r| r.devices().ok())
        .unwrap_or_default()
        .into_iter()
        .map(|d| {
            let help = match d.xdp.attached().first() {
                Some((mode, id)) => format!("ifindex {}, xdp {mode} prog {id}", d.ifindex),
                None => format!("ifindex {}", d.ifindex),
            };
            (d.name, Some(help))
        })
        .collect::<Vec<_>>();
    drop(entered);
    matching(current, names)
}

/// Network namespace names under /run/netns.
pub fn namespaces(current: &OsStr) -> Vec<CompletionCandidate> {
    let names = fs::read_dir("/run/netns")
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| (e.file_name().to_string_lossy().into_owned(), None));
    matching(current, names)
}
