//! The indexes of one rule map, across every firewall load that pins it
//! (a map shared with `load --map`), and rebuilding a load's indexes.

use std::path::{Path, PathBuf};

use anyhow::Result;
use pinfs::Kind;
use xdp_progs::cidr4_index;

use super::{Change, Rules, Synced, Target};
use crate::kernel::{map::MapHandle, objects};

/// The indexes derived from one rule map: one per firewall load directory
/// under `root` that pins it (a map shared with `load --map` is pinned in
/// each), changed through [`Target::begin`] and [`Change::finish`].
pub struct Indexes {
    rules: Option<Rules>,
    /// Each firewall.
    targets: Vec<Target>,
    /// The changes begun, one per firewall.
    changes: std::cell::RefCell<Vec<Change>>,
}

impl Indexes {
    /// Finds them for `map`, under `root` and at `pinned` (where the user
    /// named the map, if by path); none if `map` is no rule map an index
    /// is derived from.
    pub fn of(root: &Path, map: &MapHandle, pinned: Option<&Path>) -> Result<Indexes> {
        let info = map.info();
        let name = map.name();
        let Some(rules) = Rules::of(&name, info.type_) else {
            return Ok(Indexes {
                rules: None,
                targets: Vec::new(),
                changes: Default::default(),
            });
        };
        let pins = objects::pin_index(root, |n| n == name.as_str())?;
        let mut paths: Vec<PathBuf> = pins.get(&(Kind::Map, info.id)).cloned().unwrap_or_default();
        paths.extend(pinned.map(Path::to_path_buf));
        let mut dirs: Vec<PathBuf> = paths
            .iter()
            .filter_map(|p| {
                let parent = p.parent()?;
                Some(std::fs::canonicalize(parent).unwrap_or_else(|_| parent.to_path_buf()))
            })
            .collect();
        dirs.sort();
        dirs.dedup();
        let mut targets = Vec::new();
        for dir in dirs {
            if let Some(t) = Target::open(&dir)? {
                targets.push(t);
            }
        }
        Ok(Indexes {
            rules: Some(rules),
            targets,
            changes: Default::default(),
        })
    }

    /// The load directories of the firewalls using the map.
    pub fn load_dirs(&self) -> Vec<PathBuf> {
        (self.targets.iter())
            .filter_map(|t| t.dir.parent().map(Path::to_path_buf))
            .collect()
    }

    /// Right before the change's first write, which will write the keys
    /// `added` (packed): [`Target::begin`] on every firewall using the map.
    pub fn begin(&self, added: &[u8]) -> Result<()> {
        let Some(rules) = self.rules else {
            return Ok(());
        };
        let mut changes = self.changes.borrow_mut();
        for t in &self.targets {
            let blocklist = if rules == Rules::Blocklist {
                added
            } else {
                &[]
            };
            changes.push(t.begin(&[rules], blocklist)?);
        }
        Ok(())
    }

    /// After the change's last write: [`Change::finish`] on each firewall.
    /// Returns a note for each index that could not be turned on.
    pub fn finish(&self) -> Result<Vec<String>> {
        let mut notes = Vec::new();
        let changes = self.changes.take();
        for (t, c) in self.targets.iter().zip(changes) {
            for (rules, synced) in c.finish(t)? {
                if let Synced::TooBig { needed, room } = synced {
                    notes.push(too_big(&t.dir, rules, needed, room));
                }
            }
        }
        Ok(notes)
    }
}

/// Rebuilds the indexes of the firewall whose maps are pinned in `maps`
/// (if it is one): all of them, or (`all` false) those whose rules are not
/// empty. Returns a note for each that does not fit, naming `dir`.
pub fn rebuild(maps: &Path, dir: &Path, all: bool) -> Result<Vec<String>> {
    let mut notes = Vec::new();
    let Some(index) = Target::open(maps)? else {
        return Ok(notes);
    };
    for rules in Rules::ALL {
        // Empty rules need no index: the datapath skips the kind.
        if !all && index.mark_if_empty(rules)? {
            continue;
        }
        if let Synced::TooBig { needed, room } = index.sync(rules)? {
            notes.push(too_big(dir, rules, needed, room));
        }
    }
    Ok(notes)
}

/// The note for a CIDR index that does not fit.
pub fn too_big(dir: &Path, rules: Rules, needed: usize, room: usize) -> String {
    if rules == Rules::Cidr6 {
        return format!(
            "{}: cidr6's prefixes need {needed} entries of the IPv6 CIDR index, which has room \
             for {room}: the firewall looks them up in the trie (slower with many prefixes); \
             load with `--max-entries cidr6_index={}` to index them",
            dir.display(),
            needed.next_power_of_two()
        );
    }
    format!(
        "{}: cidr4's prefixes need {needed} chunks of the CIDR index, which has room for {room}: \
         the firewall looks them up in the trie (slower with many prefixes); \
         load with `--max-entries cidr4_chunks={}` to index them",
        dir.display(),
        needed.next_power_of_two() * cidr4_index::CHUNK
    )
}
