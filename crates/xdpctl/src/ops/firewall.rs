//! A load of the built-in firewall, read through its pinned maps: the
//! counters `stats` shows, and the per-source counts and their rates that
//! `top`, `guard` and the agent share.

use std::{
    collections::HashMap,
    path::{Path, PathBuf},
};

use anyhow::{Context as _, Result, bail};
use xdp_progs::xdpfw::{self, Outcome};

use crate::{
    ctx::Ctx,
    model::manifest::MAPS_SUBDIR,
    ops::{loaddir, openmap::OpenMap},
};

/// Packet counts by source, in the order the kernel hands them out.
///
/// NB: not sorted, and not a hash map: guard and top read up to a million
/// sources every interval. A hash map's batch order is its bucket order,
/// which does not change between two samples except where sources came or
/// went, so [`rates`] pairs two samples by walking them side by side, and
/// only the few sources that do not line up are looked up by hashing. The
/// vectors are reused from one interval to the next.
#[derive(Debug, Default, PartialEq)]
pub struct Counts {
    v4: Vec<([u8; 4], u64)>,
    v6: Vec<([u8; 16], u64)>,
}

impl Counts {
    /// How many sources.
    pub fn len(&self) -> usize {
        self.v4.len() + self.v6.len()
    }

    /// The count of one source.
    #[cfg(test)]
    pub fn get(&self, src: &Source) -> Option<u64> {
        match src {
            Source::V4(a) => self.v4.iter().find(|(k, _)| k == a).map(|e| e.1),
            Source::V6(a) => self.v6.iter().find(|(k, _)| k == a).map(|e| e.1),
        }
    }

    fn clear(&mut self) {
        self.v4.clear();
        self.v6.clear();
    }
}

impl FromIterator<(Source, u64)> for Counts {
    fn from_iter<I: IntoIterator<Item = (Source, u64)>>(iter: I) -> Self {
        let mut c = Counts::default();
        for (src, n) in iter {
            match src {
                Source::V4(a) => c.v4.push((a, n)),
                Source::V6(a) => c.v6.push((a, n)),
            }
        }
        c
    }
}

pub use crate::model::guard::Source;

/// The built-in firewall's object, parsed once: its map definitions are
/// what a firewall load's pinned maps must look like.
pub(crate) fn firewall_object() -> Result<&'static aya_obj::Object> {
    static OBJECT: std::sync::OnceLock<Option<aya_obj::Object>> = std::sync::OnceLock::new();
    OBJECT
        .get_or_init(|| aya_obj::Object::parse(xdpfw::OBJECT).ok())
        .as_ref()
        .ok_or_else(|| anyhow::anyhow!("the built-in firewall object does not parse"))
}

/// The native-endian u64 at the start of `bytes` (zero-padded if shorter:
/// the map shapes were checked, so it never is).
pub fn ne_u64(bytes: &[u8]) -> u64 {
    let mut b = [0u8; 8];
    let n = bytes.len().min(8);
    b[..n].copy_from_slice(&bytes[..n]);
    u64::from_ne_bytes(b)
}

/// A load of the built-in firewall, by its pinned maps.
pub struct Firewall {
    /// The load directory.
    pub dir: PathBuf,
    maps: HashMap<&'static str, OpenMap>,
}

/// The load directories on the bpffs at `root` whose manifest says they
/// hold the firewall's maps (found as every load is: by its manifest).
pub fn find_loads(root: &Path) -> Result<Vec<PathBuf>> {
    let mut dirs: Vec<PathBuf> = loaddir::all(root)
        .with_context(|| format!("looking for firewall loads under {}", root.display()))?
        .into_iter()
        .filter(|l| xdpfw::maps::is_firewall(|n| l.manifest.maps.iter().any(|m| m.name == n)))
        .map(|l| l.path)
        .collect();
    dirs.sort();
    Ok(dirs)
}

impl Firewall {
    /// Opens the firewall loaded at `dir`, or the only one under the bpffs
    /// root.
    pub fn open(ctx: &Ctx, dir: Option<&Path>) -> Result<Self> {
        let dir = match dir {
            Some(d) => ctx.resolve(d),
            None => {
                let mut loads = if pinfs::is_bpffs(&ctx.bpffs).unwrap_or(false) {
                    find_loads(&ctx.bpffs)?
                } else {
                    Vec::new()
                };
                match loads.len() {
                    1 => loads.swap_remove(0),
                    0 => bail!(
                        "no firewall is loaded under {}; load it with `xdpctl load --pin DIR`, or name its DIR",
                        ctx.bpffs.display()
                    ),
                    _ => bail!(
                        "{} firewall loads are pinned under {}: {}; name one",
                        loads.len(),
                        ctx.bpffs.display(),
                        loads
                            .iter()
                            .map(|d| d.display().to_string())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                }
            }
        };
        if !dir.exists() {
            bail!(
                "nothing is pinned at {}; load the firewall there (`xdpctl load --pin {}`) or \
                 name its load directory",
                dir.display(),
                dir.display()
            );
        }
        let mut maps = HashMap::new();
        for name in [
            xdpfw::maps::STATS,
            xdpfw::maps::PPS,
            xdpfw::maps::PPS6,
            xdpfw::maps::BLOCKLIST,
            xdpfw::maps::BLOCKLIST6,
        ] {
            let path = dir.join(MAPS_SUBDIR).join(name);
            match std::fs::symlink_metadata(&path) {
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => bail!(
                    "{} holds no firewall map {name}; is it a load of the built-in firewall?",
                    dir.display()
                ),
                Err(e) => {
                    return Err(
                        anyhow::Error::new(e).context(format!("reading {}", path.display()))
                    );
                }
            }
            let map = OpenMap::at(&path)?;
            // NB: a directory with the firewall's map names but other
            // shapes (another object, a forged load) must not be read with
            // the firewall's layouts.
            if let Some(def) = firewall_object()?.maps.get(name)
                && let Some(diff) = super::object::map_mismatch(
                    def,
                    map.handle().info(),
                    // Sizes are the load's to choose (--max-entries).
                    Some(map.handle().info().max_entries),
                )
            {
                bail!(
                    "{}: map {name} is not the built-in firewall's: {diff}; is {} a load of \
                     another object?",
                    path.display(),
                    dir.display()
                );
            }
            maps.insert(name, map);
        }
        // The rate limits, unless loaded by an xdpctl without them.
        for name in [xdpfw::maps::RATE4, xdpfw::maps::RATE6] {
            let path = dir.join(MAPS_SUBDIR).join(name);
            if !path.exists() {
                continue;
            }
            let map = OpenMap::at(&path)?;
            if map.value_len() == crate::model::rate::VALUE_LEN && !map.per_cpu() {
                maps.insert(name, map);
            }
        }
        Ok(Firewall { dir, maps })
    }

    /// A map of the load that an older firewall may lack.
    pub fn try_map(&self, name: &str) -> Option<&OpenMap> {
        self.maps.get(name)
    }

    /// The load's maps directory.
    pub fn maps_dir(&self) -> PathBuf {
        self.dir.join(MAPS_SUBDIR)
    }

    /// A map of the load.
    pub fn map(&self, name: &str) -> &OpenMap {
        &self.maps[name]
    }

    /// Packets and bytes per outcome, summed over CPUs.
    pub fn outcomes(&self) -> Result<Vec<(Outcome, u64, u64)>> {
        let stats = self.map(xdpfw::maps::STATS);
        let mut value = vec![0u8; stats.value_len()];
        let mut out = Vec::new();
        for o in Outcome::ALL {
            if !stats
                .handle()
                .lookup(&o.index().to_ne_bytes(), &mut value)?
            {
                continue;
            }
            let sum = stats.folded(&value);
            let packets = ne_u64(sum.get(0..8).unwrap_or_default());
            let bytes = ne_u64(sum.get(8..16).unwrap_or_default());
            out.push((o, packets, bytes));
        }
        Ok(out)
    }

    /// Packets counted per source (IPv4 and IPv6), summed over CPUs, into
    /// `counts` (emptied first; its room is reused).
    ///
    /// NB: guard and top call this every interval on maps of up to a million
    /// sources: the sums are made while the kernel copies the next batch,
    /// with no allocation per entry.
    pub fn sample(&self, counts: &mut Counts) -> Result<()> {
        counts.clear();
        sample_into(self.map(xdpfw::maps::PPS), &mut counts.v4)?;
        sample_into(self.map(xdpfw::maps::PPS6), &mut counts.v6)
    }
}

/// Every key of a per-CPU `u64` counter map, with its sum over CPUs.
fn sample_into<const N: usize>(map: &OpenMap, out: &mut Vec<([u8; N], u64)>) -> Result<()> {
    let stride = map.handle().stride();
    map.for_each_batch(|batch| {
        out.reserve(batch.len());
        for (k, v) in batch.iter() {
            let total = v
                .chunks_exact(stride)
                .map(ne_u64)
                .fold(0u64, u64::wrapping_add);
            out.push((k.try_into().unwrap_or([0; N]), total));
        }
        Ok(true)
    })
}

/// Per-source rates between two samples of the counters, for the sources
/// whose rate is above `floor`, highest first, at most `limit` of them. A
/// count that went down (the LRU evicted the source, then it came back)
/// counts from zero.
pub fn rates(
    prev: &Counts,
    now: &Counts,
    dt: f64,
    floor: f64,
    limit: usize,
) -> Vec<(Source, f64, u64)> {
    let mut out = Vec::new();
    let mut each = |src: Source, n: u64, was: u64| {
        let delta = if n >= was { n - was } else { n };
        let rate = delta as f64 / dt;
        if rate > floor {
            out.push((src, rate, n));
        }
    };
    pair(&prev.v4, &now.v4, |k, n, was| each(Source::V4(k), n, was));
    pair(&prev.v6, &now.v6, |k, n, was| each(Source::V6(k), n, was));
    let order =
        |a: &(Source, f64, u64), b: &(Source, f64, u64)| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0));
    if out.len() > limit {
        // `top` shows a few of what may be a million sources.
        out.select_nth_unstable_by(limit, order);
        out.truncate(limit);
    }
    out.sort_unstable_by(order);
    out
}

/// How far ahead in the previous sample a source is looked for before it
/// is left to the hash lookup: sources evicted since then, one hash bucket.
const LOOKAHEAD: usize = 8;

/// Calls `f(key, count now, count before)` for every key of `now`, the
/// count before being 0 for a key `prev` does not have. Both samples are
/// in the kernel's order, the same for the keys they share: they are
/// walked side by side, and only keys that do not line up (new, or moved
/// within their bucket) are looked up among the keys of `prev` left over.
/// Keys are unique within a sample (one batch read holds each bucket once).
fn pair<K: Copy + Eq + std::hash::Hash>(
    prev: &[(K, u64)],
    now: &[(K, u64)],
    mut f: impl FnMut(K, u64, u64),
) {
    let mut j = 0;
    let mut unpaired = Vec::new();
    let mut left = Vec::new();
    for (i, &(k, n)) in now.iter().enumerate() {
        let ahead = &prev[j..prev.len().min(j + LOOKAHEAD)];
        match ahead.iter().position(|(p, _)| *p == k) {
            Some(d) => {
                left.extend(j..j + d);
                f(k, n, prev[j + d].1);
                j += d + 1;
            }
            None => unpaired.push(i),
        }
    }
    if unpaired.is_empty() {
        return;
    }
    left.extend(j..prev.len());
    let before: HashMap<K, u64> = left.into_iter().map(|i| prev[i]).collect();
    for i in unpaired {
        let (k, n) = now[i];
        f(k, n, before.get(&k).copied().unwrap_or(0));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_rank_sources_and_survive_lru_eviction() {
        let a = Source::V4([10, 0, 0, 1]);
        let b = Source::V4([10, 0, 0, 2]);
        let c = Source::V6([0x20, 1, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
        let prev = Counts::from_iter([(b, 1000), (a, 100)]);
        let now = Counts::from_iter([(a, 300), (b, 50), (c, 10), (Source::V4([1, 1, 1, 1]), 0)]);
        let r = rates(&prev, &now, 2.0, 0.0, usize::MAX);
        assert_eq!(r, vec![(a, 100.0, 300), (b, 25.0, 50), (c, 5.0, 10)]);
        assert_eq!(
            rates(&prev, &now, 2.0, 30.0, usize::MAX),
            vec![(a, 100.0, 300)]
        );
        assert_eq!(rates(&prev, &now, 2.0, 0.0, 2), r[..2]);
        assert_eq!(now.get(&b), Some(50));
        assert_eq!(now.len(), 4);
        assert_eq!(c.to_string(), "2001:db8::1");
    }

    #[test]
    fn samples_pair_up_whatever_came_went_or_moved() {
        // The kernel's order is kept for shared keys, mostly: keys come
        // and go anywhere, and some move (an LRU re-adds a key at the head
        // of its bucket).
        let before: Vec<(u32, u64)> = (0..10_000u32).map(|k| (k, u64::from(k))).collect();
        let mut after: Vec<(u32, u64)> = before
            .iter()
            .filter(|(k, _)| k % 7 != 3)
            .map(|&(k, n)| (k, n + 5))
            .collect();
        for i in (0..after.len()).step_by(100) {
            after.insert(i, (100_000 + i as u32, 1));
        }
        after.swap(10, 8_000);
        after[20..60].reverse();
        let mut seen = HashMap::new();
        pair(&before, &after, |k, n, was| {
            assert!(seen.insert(k, (n, was)).is_none(), "{k} twice");
        });
        assert_eq!(seen.len(), after.len());
        for (k, (n, was)) in seen {
            if k >= 100_000 {
                assert_eq!((n, was), (1, 0), "{k} is new");
            } else {
                assert_eq!((n, was), (u64::from(k) + 5, u64::from(k)), "{k}");
            }
        }
        // Nothing in common, in no common order.
        let mut count = 0;
        pair(&before[..50], &before[50..100], |_, _, was| {
            assert_eq!(was, 0);
            count += 1;
        });
        assert_eq!(count, 50);
    }
}
