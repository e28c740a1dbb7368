//! Dynamic shell completion: the shell calls back into xdpctl, which offers
//! what exists on this system — map and program names and pinned paths
//! under the bpffs root, load directories, devices of the namespace named
//! by `--netns` on the same line, namespace names.
//!
//! Completion only reads: it opens pins and asks netlink, never changes
//! anything. Errors (no privileges, no bpffs) just mean no candidates.
//!
//! bash splits `--netns=blue` and `id:42` into several words before it asks
//! (at the `=` and `:` in its `COMP_WORDBREAKS`); requests from bash are
//! answered here, on the words glued back together (see [`rejoin`]), so
//! that the registration script stays clap's own.

use std::{
    collections::BTreeSet,
    ffi::{OsStr, OsString},
    fs,
    os::{fd::AsFd, unix::fs::MetadataExt},
    path::{Path, PathBuf},
    sync::OnceLock,
};

use clap_complete::engine::CompletionCandidate;
use pinfs::Kind;

use crate::kernel::{
    steps::read_manifest,
    sys::{self, IdKind},
};

/// The environment variable that turns a run into a completion request.
pub const ENV: &str = "XDPCTL_COMPLETE";

/// The words of the command line being completed (after `--`).
static WORDS: OnceLock<Vec<OsString>> = OnceLock::new();

/// Remembers the line being completed, so completers can see options given
/// on it (`--netns`, `--bpffs`), which clap's engine does not pass them.
///
/// A request from bash is answered here, in full, and the process exits:
/// see [`answer_bash`].
pub fn remember_line() {
    let Some(shell) = std::env::var_os(ENV) else {
        return;
    };
    let args: Vec<OsString> = std::env::args_os().collect();
    let Some(i) = args.iter().position(|a| a == "--") else {
        // A request for the registration script: clap's engine writes it.
        let _ = WORDS.set(Vec::new());
        return;
    };
    let words = args[i + 1..].to_vec();
    if shell == "bash" {
        answer_bash(words);
    }
    let _ = WORDS.set(words);
}

/// The characters of bash's default `COMP_WORDBREAKS` that occur inside
/// xdpctl's arguments: `--netns=blue`, `id:42`, IPv6 addresses,
/// `links/eth0@4026531840`. (The rest are quotes and shell operators.)
const BASH_BREAKS: &[char] = &['=', ':', '@'];

/// Whether bash made `word` from a run of word-break characters alone.
fn is_break(word: &OsStr) -> bool {
    word.to_str()
        .is_some_and(|w| !w.is_empty() && w.chars().all(|c| BASH_BREAKS.contains(&c)))
}

/// Undoes bash's word splitting at `COMP_WORDBREAKS`.
///
/// bash hands a completion function `--netns=bl` as three words, `--netns`,
/// `=` and `bl`, and replaces only `bl` with what it gets back; clap's
/// engine would take `=` for the value of `--netns` and `bl` for the next
/// argument. So the pieces are glued back together (a word of break
/// characters joins its neighbours: nobody types `=` or `:` as an argument
/// of its own), and the completions lose the part of the glued word that
/// bash keeps (`--netns=`).
///
/// Returns the words, the index of the word being completed among them,
/// and the part to take off the completions.
///
/// NB: clap's bash script hands over the text after the last break
/// character for the word under the cursor, so `id:` arrives as `id`
/// followed by an empty word, exactly as `id <TAB>` would. Both mean the
/// same for `--opt=`; for `id:`, the one name xdpctl gives a meaning before
/// a colon, the colon is put back (nobody names a program or map `id`).
fn rejoin(words: &[OsString], index: usize) -> (Vec<OsString>, usize, String) {
    let mut out: Vec<OsString> = Vec::new();
    let mut glue = false;
    let mut target = (0, String::new());
    for (i, word) in words.iter().enumerate() {
        let current = i == index;
        let word = if current
            && word.is_empty()
            && !glue
            && out.len() >= 2
            && out.last().is_some_and(|w| w == "id")
        {
            OsStr::new(":")
        } else {
            word.as_os_str()
        };
        let brk = is_break(word);
        let joins = (brk || glue) && !out.is_empty();
        if current {
            let mut prefix = match out.last() {
                Some(last) if joins => last.to_string_lossy().into_owned(),
                _ => String::new(),
            };
            if brk {
                prefix.push_str(&word.to_string_lossy());
            }
            target = (if joins { out.len() - 1 } else { out.len() }, prefix);
        }
        match out.last_mut() {
            Some(last) if joins => last.push(word),
            _ => out.push(word.to_owned()),
        }
        glue = brk;
    }
    (out, target.0, target.1)
}

/// Answers a completion request from clap's bash script, as clap's engine
/// would, but on the words bash split at `=`, `:` and `@` glued back
/// together (see [`rejoin`]); then exits.
fn answer_bash(words: Vec<OsString>) -> ! {
    use std::io::Write as _;

    use clap::CommandFactory as _;

    let index: usize = std::env::var("_CLAP_COMPLETE_INDEX")
        .ok()
        .and_then(|i| i.parse().ok())
        .unwrap_or_default();
    let ifs = std::env::var("_CLAP_IFS").unwrap_or_else(|_| "\n".to_owned());
    let index = index.min(words.len().saturating_sub(1));
    let (words, index, prefix) = rejoin(&words, index);
    let _ = WORDS.set(words.clone());
    let mut cmd = super::Cli::command();
    let cwd = std::env::current_dir().ok();
    let Ok(candidates) = clap_complete::engine::complete(&mut cmd, words, index, cwd.as_deref())
    else {
        std::process::exit(1);
    };
    let values: Vec<String> = candidates
        .iter()
        .filter_map(|c| {
            let value = c.get_value().to_string_lossy();
            value.strip_prefix(prefix.as_str()).map(str::to_owned)
        })
        .collect();
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(values.join(&ifs).as_bytes());
    let _ = out.flush();
    std::process::exit(0)
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

/// `path` as the user writes it: absolute if `current` is, else relative to
/// the root.
fn shown(path: &Path, root: &Path, current: &OsStr) -> String {
    if current.to_string_lossy().starts_with('/') {
        path.display().to_string()
    } else {
        path.strip_prefix(root)
            .unwrap_or(path)
            .display()
            .to_string()
    }
}

/// The type of the program with kernel id `id`.
fn prog_type(id: u32) -> Option<u32> {
    let fd = sys::fd_by_id(IdKind::Prog, id).ok()?;
    sys::prog_info(fd.as_fd()).ok().map(|(info, _)| info.type_)
}

/// Pinned objects of `kind`; programs only of type `only` if given.
fn pins_of(kind: Kind, only: Option<u32>) -> Vec<pinfs::Pin> {
    pins()
        .into_iter()
        .filter(|p| p.kind == kind && only.is_none_or(|t| prog_type(p.id) == Some(t)))
        .collect()
}

/// Pinned paths of `kind` (relative to the root when `current` is).
fn pinned_paths(current: &OsStr, kind: Kind, only: Option<u32>) -> Vec<(String, Option<String>)> {
    let root = bpffs_root();
    pins_of(kind, only)
        .into_iter()
        .map(|p| {
            (
                shown(&p.path, &root, current),
                Some(format!("{kind} id {}", p.id)),
            )
        })
        .collect()
}

/// Kernel names of maps or programs (programs only of type `only` if
/// given), with their type and id as help.
fn kernel_names(kind: IdKind, only: Option<u32>) -> Vec<(String, Option<String>)> {
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
                _ => {
                    let (info, _) = sys::prog_info(fd.as_fd()).ok()?;
                    if only.is_some_and(|t| t != info.type_) {
                        return None;
                    }
                    (sys::c_name(&info.name), sys::prog_type_name(info.type_))
                }
            };
            (!name.is_empty()).then(|| (name, Some(format!("{ty} id {id}"))))
        })
        .collect()
}

fn handle_candidates(
    current: &OsStr,
    kind: Kind,
    id_kind: IdKind,
    only: Option<u32>,
) -> Vec<(String, Option<String>)> {
    let mut names = Vec::new();
    if current.to_string_lossy().starts_with("id:") {
        // Kernel ids, with the object's name and type as help.
        return kernel_names(id_kind, only)
            .into_iter()
            .filter_map(|(name, help)| {
                let help = help?;
                let id = help.rsplit(' ').next()?.to_owned();
                Some((format!("id:{id}"), Some(format!("{name} ({help})"))))
            })
            .collect();
    }
    if current.to_string_lossy().contains('/') {
        names.extend(pinned_paths(current, kind, only));
        return names;
    }
    // Names of pins first (what xdpctl resolves first), then kernel names.
    for (path, help) in pinned_paths(current, kind, only) {
        if let Some(file) = Path::new(&path).file_name() {
            names.push((file.to_string_lossy().into_owned(), help));
        }
    }
    names.extend(kernel_names(id_kind, only));
    names
}

/// The subcommand on the line being completed (`attach`, `load`, `map`).
fn subcommand() -> Option<String> {
    let words = WORDS.get()?;
    let mut it = words.iter().skip(1).map(|w| w.to_string_lossy());
    while let Some(w) = it.next() {
        if w == "--bpffs" {
            it.next();
        } else if !w.starts_with('-') {
            return Some(w.into_owned());
        }
    }
    None
}

/// Whether `flag` is on the line being completed.
fn has_flag(flag: &str) -> bool {
    WORDS
        .get()
        .is_some_and(|words| words.iter().any(|w| w == flag))
}

/// Map names and pinned map paths.
pub fn maps(current: &OsStr) -> Vec<CompletionCandidate> {
    matching(
        current,
        handle_candidates(current, Kind::Map, IdKind::Map, None),
    )
}

/// Program names, pinned program paths and load directories; for `attach`,
/// XDP programs only.
///
/// NB: `attach`, `prog show` and `prog run` share this completer, so it asks
/// the line which one it completes for.
pub fn progs(current: &OsStr) -> Vec<CompletionCandidate> {
    let only = (subcommand().as_deref() == Some("attach")).then_some(sys::PROG_TYPE_XDP);
    let mut names = handle_candidates(current, Kind::Prog, IdKind::Prog, only);
    names.extend(load_dirs(current, only));
    matching(current, names)
}

/// Whether `dir` is an xdpctl load directory (it has a manifest).
fn is_load_dir(dir: &Path) -> bool {
    matches!(read_manifest(dir), Ok(Some(_)))
}

/// Load directories under the root (that hold a program of type `only`,
/// if given).
fn load_dirs(current: &OsStr, only: Option<u32>) -> Vec<(String, Option<String>)> {
    let root = bpffs_root();
    let mut dirs = BTreeSet::new();
    for pin in pins_of(Kind::Prog, only) {
        if let Some(dir) = pin.path.parent()
            && dir != root
            && is_load_dir(dir)
        {
            dirs.insert(shown(dir, &root, current));
        }
    }
    dirs.into_iter()
        .map(|d| (d, Some("load directory".to_owned())))
        .collect()
}

/// Directories `load --pin` takes as they are: empty ones, not inside a
/// load directory, not in xdpctl's state directory, not another mount. (A
/// new name is taken too; that is for the user to type.)
fn free_dirs(current: &OsStr) -> Vec<(String, Option<String>)> {
    fn walk(dir: &Path, root: &Path, dev: u64, out: &mut Vec<PathBuf>) {
        let Ok(entries) = fs::read_dir(dir) else {
            return;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if dir == root && entry.file_name() == crate::model::manifest::STATE_DIR {
                continue;
            }
            // NB: symlink_metadata: a symlink is never a directory load takes.
            let Ok(meta) = fs::symlink_metadata(&path) else {
                continue;
            };
            if !meta.is_dir() || meta.dev() != dev {
                continue;
            }
            if pinfs::is_empty_dir(&path).unwrap_or(false) {
                out.push(path);
            } else if !is_load_dir(&path) {
                walk(&path, root, dev, out);
            }
        }
    }
    let root = bpffs_root();
    if !pinfs::is_bpffs(&root).unwrap_or(false) {
        return Vec::new();
    }
    let Ok(meta) = fs::metadata(&root) else {
        return Vec::new();
    };
    let mut found = Vec::new();
    walk(&root, &root, meta.dev(), &mut found);
    found.sort();
    found
        .iter()
        .map(|d| (shown(d, &root, current), Some("empty directory".to_owned())))
        .collect()
}

/// Load directories (unload, stats, top, guard, doctor, `load --replace
/// --pin`), or the directories a new load may use (`load --pin`).
pub fn dirs(current: &OsStr) -> Vec<CompletionCandidate> {
    if subcommand().as_deref() == Some("load") && !has_flag("--replace") {
        return matching(current, free_dirs(current));
    }
    matching(current, load_dirs(current, None))
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

#[cfg(test)]
mod tests {
    use super::*;

    fn rejoined(words: &[&str], index: usize) -> (Vec<String>, usize, String) {
        let words: Vec<OsString> = words.iter().map(OsString::from).collect();
        let (out, index, prefix) = rejoin(&words, index);
        let out = out
            .iter()
            .map(|w| w.to_string_lossy().into_owned())
            .collect();
        (out, index, prefix)
    }

    #[test]
    fn bash_words_are_glued_back_at_word_breaks() {
        // `xdpctl attach --netns=bl<TAB>`
        assert_eq!(
            rejoined(&["xdpctl", "attach", "--netns", "=", "bl"], 4),
            (
                vec!["xdpctl".into(), "attach".into(), "--netns=bl".into()],
                2,
                "--netns=".into()
            )
        );
        // `xdpctl attach --netns=<TAB>`: clap's script hands over what
        // follows the `=`, nothing.
        assert_eq!(
            rejoined(&["xdpctl", "attach", "--netns", ""], 3),
            (
                vec![
                    "xdpctl".into(),
                    "attach".into(),
                    "--netns".into(),
                    "".into()
                ],
                3,
                String::new()
            )
        );
        // The same from a script that hands over the `=` itself.
        assert_eq!(
            rejoined(&["xdpctl", "attach", "--netns", "="], 3),
            (
                vec!["xdpctl".into(), "attach".into(), "--netns=".into()],
                2,
                "--netns=".into()
            )
        );
        // `xdpctl --bpffs=/x map dump <TAB>`, and `--netns=b=c`.
        assert_eq!(
            rejoined(&["xdpctl", "--bpffs", "=", "/x", "map", "dump", ""], 6),
            (
                vec![
                    "xdpctl".into(),
                    "--bpffs=/x".into(),
                    "map".into(),
                    "dump".into(),
                    "".into()
                ],
                4,
                String::new()
            )
        );
        assert_eq!(
            rejoined(&["xdpctl", "attach", "--netns", "=", "b", "=", "c"], 6).2,
            "--netns=b="
        );
        // Words after the cursor are kept.
        assert_eq!(
            rejoined(&["xdpctl", "attach", "", "--netns", "=", "b"], 2),
            (
                vec![
                    "xdpctl".into(),
                    "attach".into(),
                    "".into(),
                    "--netns=b".into()
                ],
                2,
                String::new()
            )
        );
    }

    #[test]
    fn bash_ids_keep_their_colon() {
        // `xdpctl prog show id:4<TAB>`
        assert_eq!(
            rejoined(&["xdpctl", "prog", "show", "id", ":", "4"], 5),
            (
                vec!["xdpctl".into(), "prog".into(), "show".into(), "id:4".into()],
                3,
                "id:".into()
            )
        );
        // `xdpctl prog show id:<TAB>` arrives as `id` and an empty word.
        assert_eq!(
            rejoined(&["xdpctl", "prog", "show", "id", ""], 4),
            (
                vec!["xdpctl".into(), "prog".into(), "show".into(), "id:".into()],
                3,
                "id:".into()
            )
        );
        // An IPv6 address is one word again.
        assert_eq!(
            rejoined(
                &[
                    "xdpctl", "map", "lookup", "b6", "2001", ":", "db8", "::", "1"
                ],
                8
            )
            .0[4],
            "2001:db8::1"
        );
    }
}
