//! Keeping the firewall's CIDR index in step with `cidr4`.
//!
//! The datapath reads `cidr4`'s verdicts from an index (`cidr4_l1`,
//! `cidr4_chunks`: at most three array lookups) only while `ctl`'s mode
//! word says the index matches the trie. Every change xdpctl makes to
//! `cidr4` goes: [`Indexes::suspend`] (mode: trie), the change,
//! [`Indexes::sync`] (index rebuilt from the trie, then mode: index). A
//! crash anywhere in between leaves the datapath on the trie, which is
//! always right, only slower; the next change, `xdpctl doctor` or `apply`
//! rebuilds the index. A rule written by another tool while the index is
//! in use is found by the datapath's sampled cross-check, which turns the
//! index off and counts the drift (`xdpctl stats` says so).

use std::{
    path::{Path, PathBuf},
    time::Duration,
};

use anyhow::{Context as _, Result};
use pinfs::Kind;
use xdp_progs::{
    cidr4_index::{self, Index},
    xdpfw::{self, Ctl},
};

use super::{map::MapHandle, objects, sys::update_flags};

const LPM_TRIE: u32 = aya_obj::generated::bpf_map_type::BPF_MAP_TYPE_LPM_TRIE as u32;

/// One firewall's index: the maps in its `DIR/maps`.
pub struct Target {
    /// `DIR/maps`.
    pub dir: PathBuf,
    l1: MapHandle,
    chunks: MapHandle,
    ctl: MapHandle,
}

/// What [`Target::sync`] did.
#[derive(Debug, PartialEq, Eq)]
pub enum Synced {
    /// The index matches `cidr4` and is in use.
    InUse {
        /// Prefixes indexed.
        prefixes: usize,
        /// Chunks used, of the map's room.
        chunks: usize,
    },
    /// `cidr4` needs more chunks than `cidr4_chunks` holds: the datapath
    /// keeps looking up the trie.
    TooBig {
        /// Chunks needed.
        needed: usize,
        /// Chunks there is room for.
        room: usize,
    },
}

/// The state of one firewall's index, for `stats` and `doctor`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Status {
    /// Whether the datapath uses the index.
    pub in_use: bool,
    /// Differences between the index and `cidr4` the datapath found.
    pub drift: u64,
}

impl Target {
    /// The index in the load directory whose maps are pinned in `maps`, if
    /// it is a firewall with one.
    pub fn open(maps: &Path) -> Result<Option<Target>> {
        let pin = |name: &str| maps.join(name);
        if !pin(xdpfw::maps::CIDR4_L1).exists() || !pin(xdpfw::maps::CTL).exists() {
            return Ok(None);
        }
        let open = |name: &str| {
            MapHandle::open_pinned(&pin(name))
                .with_context(|| format!("opening {}", pin(name).display()))
        };
        let (l1, chunks, ctl) = (
            open(xdpfw::maps::CIDR4_L1)?,
            open(xdpfw::maps::CIDR4_CHUNKS)?,
            open(xdpfw::maps::CTL)?,
        );
        let fits = |m: &MapHandle, key: usize, value: usize| {
            m.key_size() == key && m.value_len() == value && !m.per_cpu()
        };
        if !fits(&l1, 4, 4)
            || l1.info().max_entries as usize != cidr4_index::L1
            || !fits(&chunks, 4, 4)
            || !fits(&ctl, 4, 8)
            || ctl.info().max_entries <= Ctl::AdmitCap as u32
        {
            anyhow::bail!(
                "{} holds cidr4_l1, cidr4_chunks and ctl maps of other shapes than xdpctl's firewall; \
                 load the firewall again (`xdpctl load --replace`)",
                maps.display()
            );
        }
        Ok(Some(Target {
            dir: maps.to_path_buf(),
            l1,
            chunks,
            ctl,
        }))
    }

    fn word(&self, w: Ctl) -> Result<u64> {
        let mut v = [0u8; 8];
        self.ctl.lookup(&(w as u32).to_ne_bytes(), &mut v)?;
        Ok(u64::from_ne_bytes(v))
    }

    fn set_word(&self, w: Ctl, value: u64) -> Result<()> {
        self.ctl.update(
            &(w as u32).to_ne_bytes(),
            &value.to_ne_bytes(),
            update_flags::ANY,
        )?;
        Ok(())
    }

    /// Whether the datapath uses the index, and the drift it found.
    pub fn status(&self) -> Result<Status> {
        Ok(Status {
            in_use: self.word(Ctl::Cidr4Mode)? == xdpfw::CIDR4_INDEX,
            drift: self.word(Ctl::Cidr4Drift)?,
        })
    }

    /// Whether `cidr4` holds any prefix.
    pub fn prefixes(&self) -> Result<usize> {
        let trie = MapHandle::open_pinned(&self.dir.join(xdpfw::maps::CIDR4))?;
        let mut key = vec![0u8; trie.key_size()];
        Ok(usize::from(trie.next_key(None, &mut key)?))
    }

    /// What `xdpctl stats` warns about: the index off while `cidr4` holds
    /// prefixes.
    pub fn warning(&self) -> Result<Option<String>> {
        let status = self.status()?;
        if status.in_use || self.prefixes()? == 0 {
            return Ok(None);
        }
        Ok(Some(if status.drift > 0 {
            format!(
                "{}: cidr4 was changed outside xdpctl (differences from the CIDR index the datapath \
                 found: {}) and is looked up as a trie, slower with many prefixes; \
                 `xdpctl doctor` rebuilds the index",
                self.dir.display(),
                status.drift
            )
        } else {
            format!(
                "{}: the CIDR index is off (a change to cidr4 was interrupted, or it outgrew the \
                 index): cidr4 is looked up as a trie, slower with many prefixes; \
                 `xdpctl doctor` rebuilds the index",
                self.dir.display()
            )
        }))
    }

    /// The datapath looks up the trie from now on.
    pub fn suspend(&self) -> Result<()> {
        pinfs::failpoint::step("BPF_MAP_UPDATE_ELEM");
        self.set_word(Ctl::Cidr4Mode, xdpfw::CIDR4_TRIE)
    }

    /// Serializes changes to this firewall's `cidr4` and index: two
    /// xdpctl processes changing rules at once must not turn on an index
    /// built before the other's change.
    fn lock(&self) -> Result<pinfs::DirLock> {
        pinfs::DirLock::exclusive(&self.dir)
            .with_context(|| format!("locking {}", self.dir.display()))
    }

    /// Rebuilds the index from `cidr4` (the trie pinned next to it) and
    /// turns it on if it fits.
    pub fn sync(&self) -> Result<Synced> {
        let _lock = self.lock()?;
        let trie = MapHandle::open_pinned(&self.dir.join(xdpfw::maps::CIDR4))
            .with_context(|| format!("opening {}", self.dir.join("cidr4").display()))?;
        self.sync_from(&trie)
    }

    fn sync_from(&self, trie: &MapHandle) -> Result<Synced> {
        self.suspend()?;
        let mut rules = Vec::new();
        if trie.key_size() != 8 || trie.value_len() < 1 {
            anyhow::bail!(
                "{} is not the firewall's cidr4 (key {} bytes, the firewall's has 8)",
                self.dir.join("cidr4").display(),
                trie.key_size()
            );
        }
        trie.for_each(|k, v| {
            let len = u32::from_ne_bytes(k[..4].try_into().unwrap_or_default());
            let addr = u32::from_be_bytes(k[4..8].try_into().unwrap_or_default());
            rules.push((addr, len.min(32) as u8, v[0]));
            Ok(true)
        })?;
        let index = Index::build(&rules);
        let room = self.chunks.info().max_entries as usize / cidr4_index::CHUNK;
        if index.chunk_count() > room {
            return Ok(Synced::TooBig {
                needed: index.chunk_count(),
                room,
            });
        }
        // Chunks first, then the first level that points into them; the
        // datapath reads neither until the mode word below.
        write_array(&self.chunks, &index.chunks)?;
        write_array(&self.l1, &index.l1)?;
        pinfs::failpoint::step("BPF_MAP_UPDATE_ELEM");
        self.set_word(Ctl::Cidr4Mode, xdpfw::CIDR4_INDEX)?;
        Ok(Synced::InUse {
            prefixes: rules.len(),
            chunks: index.chunk_count(),
        })
    }
}

/// Sets the firewall's admission cap (`ctl[AdmitCap]`, 0: none): under a
/// flood, a new source is counted in `pps` once it sent this many packets
/// in an epoch on one CPU (see `xdpfw.h`).
pub fn set_admit_cap(maps: &Path, packets_per_epoch: u64) -> Result<()> {
    let path = maps.join(xdpfw::maps::CTL);
    if !path.exists() {
        // A firewall from before the sketch counts every source exactly.
        return Ok(());
    }
    let ctl =
        MapHandle::open_pinned(&path).with_context(|| format!("opening {}", path.display()))?;
    if ctl.key_size() != 4 || ctl.value_len() != 8 || ctl.per_cpu() {
        anyhow::bail!("{} is not the firewall's ctl map", path.display());
    }
    ctl.update(
        &(Ctl::AdmitCap as u32).to_ne_bytes(),
        &packets_per_epoch.to_ne_bytes(),
        update_flags::ANY,
    )?;
    Ok(())
}

/// The admission cap for guard's `threshold` (packets per second): a source
/// at the threshold reaches it within a quarter of an epoch even if its
/// packets are spread over all `cpus`.
pub fn admit_cap(threshold: f64, cpus: usize) -> u64 {
    let per_epoch = threshold * xdpfw::EPOCH_NS as f64 / 1e9;
    ((per_epoch / (4.0 * cpus.max(1) as f64)).floor() as u64).max(1)
}

/// Writes `values` at indices 0.. of an array of u32, in batches.
fn write_array(map: &MapHandle, values: &[u32]) -> Result<()> {
    const BATCH: usize = 65_536;
    let mut keys = Vec::with_capacity(BATCH * 4);
    let mut vals = Vec::with_capacity(BATCH * 4);
    for (n, part) in values.chunks(BATCH).enumerate() {
        keys.clear();
        vals.clear();
        for (i, v) in part.iter().enumerate() {
            keys.extend_from_slice(&((n * BATCH + i) as u32).to_ne_bytes());
            vals.extend_from_slice(&v.to_ne_bytes());
        }
        pinfs::failpoint::step("BPF_MAP_UPDATE_BATCH");
        let (_, result) = map.update_batch(&keys, &vals, part.len() as u32, update_flags::ANY);
        if let Err(e) = result {
            if !matches!(e.raw_os_error(), Some(libc::EINVAL | libc::EOPNOTSUPP)) {
                return Err(e.into());
            }
            for (i, v) in part.iter().enumerate() {
                map.update(
                    &((n * BATCH + i) as u32).to_ne_bytes(),
                    &v.to_ne_bytes(),
                    update_flags::ANY,
                )?;
            }
        }
    }
    Ok(())
}

/// The indexes derived from the LPM trie `trie`: one per firewall load
/// directory under `root` that pins it as `cidr4` (a map shared with
/// `load --map` is pinned in each).
pub struct Indexes(Vec<(Target, pinfs::DirLock)>);

impl Indexes {
    /// Finds them, under `root` and at `pinned` (where the user named the
    /// map, if by path); none if `trie` is not a firewall's `cidr4`.
    pub fn of(root: &Path, trie: &MapHandle, pinned: Option<&Path>) -> Result<Indexes> {
        let info = trie.info();
        if info.type_ != LPM_TRIE || trie.name() != xdpfw::maps::CIDR4 {
            return Ok(Indexes(Vec::new()));
        }
        let pins = objects::pin_index(root, |n| n == xdpfw::maps::CIDR4)?;
        let mut paths: Vec<PathBuf> = pins.get(&(Kind::Map, info.id)).cloned().unwrap_or_default();
        paths.extend(pinned.map(Path::to_path_buf));
        let mut dirs: Vec<PathBuf> = paths
            .iter()
            .filter_map(|p| Some(std::fs::canonicalize(p.parent()?).unwrap_or(p.parent()?.into())))
            .collect();
        dirs.sort();
        dirs.dedup();
        let mut out = Vec::new();
        for dir in dirs {
            if let Some(t) = Target::open(&dir)? {
                let lock = t.lock()?;
                out.push((t, lock));
            }
        }
        Ok(Indexes(out))
    }

    /// Before a change to the trie: every firewall using it looks up the
    /// trie itself until [`sync`](Self::sync).
    pub fn suspend(&self) -> Result<()> {
        for (t, _) in &self.0 {
            t.suspend()?;
        }
        if !self.0.is_empty() {
            // A packet that read the mode word just before is done long
            // before this: the datapath's cross-check will not see the
            // change half made and call it drift.
            std::thread::sleep(Duration::from_millis(2));
        }
        Ok(())
    }

    /// After a change: rebuilds each index. Returns a note for each one that
    /// could not be turned on.
    pub fn sync(&self, trie: &MapHandle) -> Result<Vec<String>> {
        let mut notes = Vec::new();
        for (t, _) in &self.0 {
            if let Synced::TooBig { needed, room } = t.sync_from(trie)? {
                notes.push(too_big(&t.dir, needed, room));
            }
        }
        Ok(notes)
    }
}

/// The note for an index that does not fit.
pub fn too_big(dir: &Path, needed: usize, room: usize) -> String {
    format!(
        "{}: cidr4's prefixes need {needed} chunks of the CIDR index, which has room for {room}: \
         the firewall looks them up in the trie (slower with many prefixes); \
         load with `--max-entries cidr4_chunks={}` to index them",
        dir.display(),
        needed.next_power_of_two() * cidr4_index::CHUNK
    )
}
