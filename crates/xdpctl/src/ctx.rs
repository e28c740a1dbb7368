//! What every command needs: the output format and the bpffs root.

use std::{
    collections::HashMap,
    path::{Path, PathBuf},
};

use anyhow::{Context as _, Result};
use pinfs::Kind;

use crate::{
    cli::Cli,
    render::{Format, Out},
};

/// Pinned paths by object kind and kernel id.
pub type PinIndex = HashMap<(Kind, u32), Vec<PathBuf>>;

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
    /// From the parsed command line.
    pub fn new(cli: &Cli) -> Self {
        let format = if cli.pretty {
            Format::PrettyJson
        } else if cli.json {
            Format::Json
        } else {
            Format::Human
        };
        Ctx {
            format,
            out: Out::new(format),
            bpffs: cli.bpffs.clone(),
            // NB: only the conventional root is ever mounted automatically;
            // a --bpffs that is not a bpffs is a mistake to report.
            may_mount: !cli.no_mount && cli.bpffs == Path::new(pinfs::DEFAULT_ROOT),
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
        self.pin_index_matching(|_| true)
    }

    /// The pins of links xdpctl made (`<dev>@<netns inode>`): found without
    /// opening every other pin on the bpffs.
    pub fn link_pin_index(&self) -> Result<PinIndex> {
        self.pin_index_matching(|name| name.as_encoded_bytes().contains(&b'@'))
    }

    fn pin_index_matching(
        &self,
        wanted: impl Fn(&std::ffi::OsStr) -> bool + Copy,
    ) -> Result<PinIndex> {
        let mut index = PinIndex::new();
        if !self.bpffs.is_dir() || !pinfs::is_bpffs(&self.bpffs)? {
            return Ok(index);
        }
        let pins = pinfs::list_matching(&self.bpffs, wanted)
            .with_context(|| format!("listing pins under {}", self.bpffs.display()))?;
        for pin in pins {
            index.entry((pin.kind, pin.id)).or_default().push(pin.path);
        }
        Ok(index)
    }
}
