//! `xdpctl stats`: the built-in firewall's counters, read from a load
//! directory's pinned maps — and the reading of those maps that `top` and
//! `guard` share (per-source counts and their rates).

use std::{
    collections::HashMap,
    io::Write,
    path::{Path, PathBuf},
    sync::atomic::Ordering,
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use anyhow::{Context as _, Result, bail};
use serde::Serialize;
use serde_json::json;
use xdp_progs::xdpfw::{self, Outcome};

use crate::{
    cli::StatsArgs,
    cmd::map::OpenMap,
    ctx::Ctx,
    render::{self, Format, Tabular},
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

/// Load directories under the root that hold the firewall's maps.
fn find_loads(root: &Path) -> Result<Vec<PathBuf>> {
    let mut dirs: Vec<PathBuf> = pinfs::list_matching(root, |n| n == "stats")
        .with_context(|| format!("looking for firewall loads under {}", root.display()))?
        .into_iter()
        .filter_map(|p| {
            let maps = p.path.parent()?;
            (maps.file_name()? == "maps" && maps.join("pps").exists())
                .then(|| maps.parent().map(Path::to_owned))?
        })
        .collect();
    dirs.sort();
    dirs.dedup();
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
        let mut maps = HashMap::new();
        for name in [
            xdpfw::maps::STATS,
            xdpfw::maps::PPS,
            xdpfw::maps::PPS6,
            xdpfw::maps::BLOCKLIST,
            xdpfw::maps::BLOCKLIST6,
        ] {
            let path = dir.join("maps").join(name);
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
                && let Some(diff) = crate::cmd::object::map_mismatch(
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
        Ok(Firewall { dir, maps })
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

pub use crate::kernel::process::{STOP, handle_signals};

/// Sleeps until `deadline` or a stop signal; false when stopped.
pub fn sleep_until(deadline: Instant) -> bool {
    while Instant::now() < deadline {
        if STOP.load(Ordering::SeqCst) {
            return false;
        }
        std::thread::sleep((deadline - Instant::now()).min(Duration::from_millis(100)));
    }
    !STOP.load(Ordering::SeqCst)
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// RFC 3339 UTC time (`2026-11-22T04:10:00Z`) of Unix milliseconds.
pub fn rfc3339(ms: u64) -> String {
    let secs = ms / 1000;
    let (days, rem) = (secs / 86_400, secs % 86_400);
    // Howard Hinnant's civil_from_days.
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

/// One outcome in a stats sample.
#[derive(Debug, Serialize)]
struct OutcomeRow {
    outcome: &'static str,
    packets: u64,
    bytes: u64,
    pps: Option<f64>,
    bps: Option<f64>,
}

impl Tabular for OutcomeRow {
    const HEADERS: &'static [&'static str] = &["OUTCOME", "PACKETS", "BYTES", "PPS", "BITS/S"];
    fn cells(&self, _view: &render::View) -> Vec<String> {
        let rate = |v: Option<f64>| v.map_or_else(|| "-".to_owned(), |v| format!("{v:.0}"));
        vec![
            self.outcome.to_owned(),
            self.packets.to_string(),
            self.bytes.to_string(),
            rate(self.pps),
            rate(self.bps),
        ]
    }
}

/// The Prometheus text exposition format of the counters.
pub fn prometheus(dir: &Path, outcomes: &[(Outcome, u64, u64)]) -> String {
    let dir = dir
        .display()
        .to_string()
        .replace('\\', "\\\\")
        .replace('"', "\\\"");
    let mut out = String::new();
    for (metric, help, pick) in [
        (
            "xdpctl_firewall_packets_total",
            "Packets seen by the xdpctl firewall, by outcome.",
            0,
        ),
        (
            "xdpctl_firewall_bytes_total",
            "Bytes seen by the xdpctl firewall, by outcome.",
            1,
        ),
    ] {
        out.push_str(&format!(
            "# HELP {metric} {help}\n# TYPE {metric} counter\n"
        ));
        for (o, packets, bytes) in outcomes {
            let v = if pick == 0 { packets } else { bytes };
            out.push_str(&format!(
                "{metric}{{dir=\"{dir}\",outcome=\"{}\"}} {v}\n",
                o.name()
            ));
        }
    }
    out
}

/// `xdpctl stats`.
pub fn stats(ctx: &Ctx, args: &StatsArgs) -> Result<()> {
    if args.prometheus && ctx.format != Format::Human {
        bail!("--prometheus prints Prometheus text, -j JSON: choose one");
    }
    let fw = Firewall::open(ctx, args.dir.as_deref())?;
    if let Some(t) = crate::kernel::fwindex::Target::open(&fw.dir.join("maps"))? {
        ctx.out.notes(t.warnings()?);
    }
    if args.prometheus {
        ctx.out.text(&prometheus(&fw.dir, &fw.outcomes()?))?;
        return Ok(());
    }
    let Some(interval) = args.interval else {
        let rows: Vec<OutcomeRow> = fw
            .outcomes()?
            .into_iter()
            .map(|(o, packets, bytes)| OutcomeRow {
                outcome: o.name(),
                packets,
                bytes,
                pps: None,
                bps: None,
            })
            .collect();
        return ctx.out.result(&rows).map_err(Into::into);
    };
    handle_signals()?;
    let period = Duration::from_secs_f64(interval);
    let mut prev = fw.outcomes()?;
    let mut prev_at = Instant::now();
    let mut samples = 0u64;
    while args.count.is_none_or(|c| samples < c) && sleep_until(prev_at + period) {
        let now = fw.outcomes()?;
        let dt = prev_at.elapsed().as_secs_f64();
        prev_at = Instant::now();
        let rows: Vec<OutcomeRow> = now
            .iter()
            .map(|(o, p, b)| {
                let (pp, pb) = prev
                    .iter()
                    .find(|(x, _, _)| x == o)
                    .map_or((0, 0), |(_, p, b)| (*p, *b));
                OutcomeRow {
                    outcome: o.name(),
                    packets: *p,
                    bytes: *b,
                    pps: Some(p.saturating_sub(pp) as f64 / dt),
                    bps: Some(b.saturating_sub(pb) as f64 * 8.0 / dt),
                }
            })
            .collect();
        let mut out = ctx.out.stdout();
        match ctx.format {
            Format::Human => {
                writeln!(out, "{}", rfc3339(now_ms()))?;
                out.write_all(ctx.out.view().table(&rows).as_bytes())?;
            }
            _ => {
                // JSON lines: one object per interval.
                let outcomes: serde_json::Map<String, serde_json::Value> = rows
                    .iter()
                    .map(|r| (r.outcome.to_owned(), json!({"packets": r.packets, "bytes": r.bytes, "pps": r.pps, "bps": r.bps})))
                    .collect();
                let line = json!({"time": rfc3339(now_ms()), "interval": dt, "dir": fw.dir, "outcomes": outcomes});
                writeln!(out, "{line}")?;
            }
        }
        out.flush()?;
        prev = now;
        samples += 1;
    }
    Ok(())
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
    fn times_are_rfc3339_utc() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_795_316_766_000), "2026-11-22T03:06:06Z");
        assert_eq!(rfc3339(951_782_400_000), "2000-02-29T00:00:00Z");
    }

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

    #[test]
    fn prometheus_text_has_help_type_and_labels() {
        let text = prometheus(Path::new("/sys/fs/bpf/xdpfw"), &[(Outcome::Passed, 5, 300)]);
        assert!(text.contains("# TYPE xdpctl_firewall_packets_total counter\n"));
        assert!(text.contains(
            "xdpctl_firewall_packets_total{dir=\"/sys/fs/bpf/xdpfw\",outcome=\"passed\"} 5\n"
        ));
        assert!(text.contains(
            "xdpctl_firewall_bytes_total{dir=\"/sys/fs/bpf/xdpfw\",outcome=\"passed\"} 300\n"
        ));
    }
}
