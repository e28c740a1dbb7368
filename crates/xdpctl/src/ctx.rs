//! What every command needs: the output format and the bpffs root.

use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result};

use crate::{
    kernel::objects,
    model::linkpin::{LinkPin, Owner},
    render::{Format, Out},
};

pub use crate::kernel::objects::PinIndex;

/// Global options, validated.
#[derive(Debug)]
pub struct Ctx {
    /// How to print results.
    pub format: Format,
    /// Where results and messages go.
    pub out: Out,
    /// Root of the bpffs in use.
    pub bpffs: PathBuf,
    /// Whether a command that pins may mount a bpffs at the default root.
    pub may_mount: bool,
}

impl Ctx {
    /// Output in `format`, on the bpffs at `bpffs`; `no_mount` forbids
    /// mounting it.
    pub fn new(format: Format, bpffs: PathBuf, no_mount: bool) -> Self {
        Ctx {
            format,
            out: Out::new(format, &bpffs),
            // NB: only the conventional root is ever mounted automatically;
            // a --bpffs that is not a bpffs is a mistake to report.
            may_mount: !no_mount && bpffs == Path::new(pinfs::DEFAULT_ROOT),
            bpffs,
        }
    }

    /// A path from the command line: relative paths are under the bpffs root.
    pub fn resolve(&self, path: &Path) -> PathBuf {
        if path.is_absolute() {
            path.to_owned()
        } else {
            self.bpffs.join(path)
        }
    }

    /// Makes sure the bpffs root is mounted, mounting it if allowed.
    pub fn ensure_bpffs(&self) -> Result<()> {
        if pinfs::ensure_mounted(&self.bpffs, self.may_mount)? {
            self.out
                .note(format_args!("mounted bpffs at {}", self.bpffs.display()));
        }
        Ok(())
    }

    /// Pinned paths below the bpffs root, by object kind and id. Empty when
    /// the root is not a bpffs (nothing can be pinned there).
    pub fn pin_index(&self) -> Result<PinIndex> {
        let mut index = objects::pin_index(&self.bpffs, |_| true)?;
        self.add_own_links(&mut index)?;
        Ok(index)
    }

    /// The pins of links xdpctl made (`<dev>@<netns inode>`): found without
    /// opening every other pin on the bpffs.
    pub fn link_pin_index(&self) -> Result<PinIndex> {
        let mut index =
            objects::pin_index_pruned(&self.bpffs, LinkPin::is_name, LinkPin::may_hold)?;
        self.add_own_links(&mut index)?;
        Ok(index)
    }

    /// Where `attach` pins the links of programs no load directory holds:
    /// `_xdpctl/links/` at the root of the bpffs mount.
    pub fn own_links_dir(&self) -> Result<PathBuf> {
        Ok(self.own_links()?.links_dir())
    }

    /// xdpctl as the owner of the links in [`Self::own_links_dir`].
    pub fn own_links(&self) -> Result<Owner> {
        Ok(Owner::Xdpctl(
            crate::kernel::layout::StateDir::of(&self.bpffs)?.root,
        ))
    }

    /// Who owns an attachment of a program: the load directory that holds
    /// it, else xdpctl (its links in [`Self::own_links_dir`], the bpffs
    /// made ready for them).
    pub fn owner_of(&self, load_dir: Option<&std::path::Path>) -> Result<Owner> {
        match load_dir {
            Some(dir) => Ok(Owner::Load(dir.to_owned())),
            None => {
                self.ensure_bpffs()?;
                self.own_links()
            }
        }
    }

    /// Adds the pins in [`Self::own_links_dir`], which listings of the
    /// bpffs leave out with the rest of `_xdpctl/`.
    fn add_own_links(&self, index: &mut PinIndex) -> Result<()> {
        if !self.bpffs.is_dir() || !pinfs::is_bpffs(&self.bpffs)? {
            return Ok(());
        }
        let dir = self.own_links_dir()?;
        if !dir.is_dir() {
            return Ok(());
        }
        for pin in pinfs::list(&dir).with_context(|| format!("listing {}", dir.display()))? {
            index.entry((pin.kind, pin.id)).or_default().push(pin.path);
        }
        Ok(())
    }
}
