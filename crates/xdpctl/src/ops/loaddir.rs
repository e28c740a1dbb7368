//! Load directories: a directory on bpffs whose manifest (pinned with the
//! pins, see [`manifest`](crate::model::manifest)) says xdpctl loaded it.
//! Commands that change a load work on load directories only; any other
//! directory is refused, naming the nearest load directory if there is one.

use std::{
    fs,
    path::{Component, Path, PathBuf},
};

use anyhow::{Result, bail};

use crate::{
    kernel::{layout, steps::read_manifest},
    model::manifest::Manifest,
};

/// An xdpctl load directory and its manifest.
#[derive(Clone, Debug)]
pub struct LoadDir {
    /// The directory (no symlinks on the way).
    pub path: PathBuf,
    /// Its manifest.
    pub manifest: Manifest,
}

/// `path` without `.` components (it is absolute and has no `..`:
/// [`pinfs::validate`] checked).
fn lexical(path: &Path) -> PathBuf {
    path.components()
        .filter(|c| !matches!(c, Component::CurDir))
        .collect()
}

/// The closest directory at or above `path` (on the same bpffs) that has a
/// manifest.
pub fn nearest(path: &Path) -> Option<PathBuf> {
    let root = layout::mount_root(path.ancestors().find(|p| p.exists())?).ok()?;
    path.ancestors()
        .take_while(|p| p.starts_with(&root) && *p != root)
        .find(|p| p.is_dir() && read_manifest(p).ok().flatten().is_some())
        .map(Path::to_owned)
}

impl LoadDir {
    /// Opens the load directory at `path` (absolute).
    pub fn open(path: &Path) -> Result<Self> {
        let target = pinfs::validate(path)?;
        if target.path != lexical(path) {
            bail!(
                "{} resolves through a symlink to {}; give the load directory's real path",
                path.display(),
                target.path.display()
            );
        }
        if !target.exists() {
            bail!(
                "nothing is loaded at {} (see `xdpctl prog show` for what is)",
                path.display()
            );
        }
        let meta = fs::symlink_metadata(&target.path)?;
        if !meta.is_dir() {
            bail!(
                "{} is a single pin, not a load directory{}",
                path.display(),
                inside(&target.path)
            );
        }
        match read_manifest(&target.path) {
            Ok(Some(manifest)) => Ok(LoadDir {
                path: target.path,
                manifest,
            }),
            Ok(None) => bail!(
                "{} is not an xdpctl load directory (it has no manifest){}",
                path.display(),
                match (nearest(&target.path), all(&target.path).unwrap_or_default()) {
                    (Some(_), _) => inside(&target.path),
                    (None, below) if !below.is_empty() => format!(
                        "; it holds the load director{} {}: name {}",
                        if below.len() == 1 { "y" } else { "ies" },
                        below
                            .iter()
                            .map(|l| l.path.display().to_string())
                            .collect::<Vec<_>>()
                            .join(", "),
                        if below.len() == 1 {
                            "that"
                        } else {
                            "one of those"
                        }
                    ),
                    (None, _) => "; another tool pinned what is there: unload it with that \
                                  tool, or remove its pins by hand"
                        .to_owned(),
                }
            ),
            Err(e) => Err(e.context(format!("{} is not a usable load directory", path.display()))),
        }
    }

    /// Where a link of this load to `name` is pinned.
    pub fn links_dir(&self) -> PathBuf {
        self.path.join(&self.manifest.links)
    }
}

/// `; it is inside the load directory X` when it is.
fn inside(path: &Path) -> String {
    match nearest(path.parent().unwrap_or(path)) {
        Some(dir) => format!(
            "; it is inside the load directory {} (name that instead)",
            dir.display()
        ),
        None => String::new(),
    }
}

/// Refuses a new load directory at `path` if a load directory already
/// holds it.
pub fn check_new(path: &Path) -> Result<()> {
    if let Some(parent) = path.parent()
        && let Some(dir) = nearest(parent)
    {
        bail!(
            "{} is inside the load directory {}; a load cannot hold another (choose a path \
             outside it)",
            path.display(),
            dir.display()
        );
    }
    Ok(())
}

/// Every load directory on the bpffs mounted at `root` (not looking inside
/// load directories, xdpctl's state directory or other mounts).
pub fn all(root: &Path) -> Result<Vec<LoadDir>> {
    use std::os::unix::fs::MetadataExt as _;
    fn walk(dir: &Path, dev: u64, out: &mut Vec<LoadDir>) -> Result<()> {
        let Ok(entries) = fs::read_dir(dir) else {
            return Ok(());
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let Ok(meta) = fs::symlink_metadata(&path) else {
                continue;
            };
            if !meta.is_dir()
                || meta.dev() != dev
                || entry.file_name() == crate::model::manifest::STATE_DIR
            {
                continue;
            }
            match read_manifest(&path) {
                Ok(Some(manifest)) => out.push(LoadDir { path, manifest }),
                // Not allowed to read it: say so, rather than that
                // nothing is loaded.
                Err(e) if crate::model::error_text::denied(&e) => return Err(e),
                // A damaged manifest still marks a load directory.
                Err(_) => {}
                Ok(None) => walk(&path, dev, out)?,
            }
        }
        Ok(())
    }
    let dev = fs::metadata(root)?.dev();
    let mut out = Vec::new();
    walk(root, dev, &mut out)?;
    Ok(out)
}
