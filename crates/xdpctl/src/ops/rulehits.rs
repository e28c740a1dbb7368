//! The firewall's counters per rule, read from a load's maps: `rule_hits`
//! first, then every CPU's `hit_cache` (so a rule moving from the cache to
//! the hash in between is missed until the next read, never counted
//! twice), joined with the rules the rule maps hold ([`model::rulehits`]).
//! Also turns the counting on and off (`ctl[rule_hits_on]`).

use std::path::Path;

use anyhow::{Context as _, Result};
use xdp_progs::xdpfw::{Ctl, HitSlot, Hits, RuleKey};

use crate::{
    kernel::{
        clock::unix_offset_ns,
        fwindex::{ctl_word, set_ctl_word},
        map::MapHandle,
    },
    model::{
        rulehits::{self, RuleHit, Totals},
        rulemaps::zero_is_rule,
    },
};

/// The rule maps whose rules are counted, in the firewall's order
/// (`syn_ports` where the firewall has it: an older load has not).
const RULE_MAPS: [&str; 7] = [
    "udp_ports",
    "tcp_ports",
    "blocklist",
    "blocklist6",
    "cidr4",
    "cidr6",
    "syn_ports",
];

/// What a load counted.
#[derive(Debug)]
pub struct Report {
    /// Every rule the maps hold, and counted rules they no longer hold.
    pub rows: Vec<RuleHit>,
    /// Whether the datapath counts (`ctl[rule_hits_on]` is not 0).
    pub counting: bool,
    /// Hits not counted because `rule_hits` was full.
    pub lost: u64,
    /// Rules with counts in `rule_hits` and its room.
    pub stored: (usize, u32),
    /// When it was read, ns since the Unix epoch.
    pub now_unix_ns: i128,
}

fn open(maps_dir: &Path, name: &str) -> Result<MapHandle> {
    let path = maps_dir.join(name);
    MapHandle::open_pinned(&path).map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound && matches!(name, "rule_hits" | "hit_cache") {
            anyhow::anyhow!(
                "{} has no per-rule counters (no map {name}: loaded by an older xdpctl); \
                 `xdpctl load --replace --pin DIR` loads the firewall with them, rules kept",
                maps_dir.parent().unwrap_or(maps_dir).display()
            )
        } else {
            anyhow::Error::new(e).context(format!("opening {}", path.display()))
        }
    })
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    b.get(at..at + 8)
        .and_then(|s| s.try_into().ok())
        .map_or(0, u64::from_ne_bytes)
}

fn hits_at(b: &[u8], at: usize) -> Hits {
    Hits {
        packets: u64_at(b, at),
        bytes: u64_at(b, at + 8),
        last_ns: u64_at(b, at + 16),
    }
}

/// Every rule's counts, summed over CPUs: the hash, then the cache; and
/// how many rules the hash holds.
pub fn totals(maps_dir: &Path) -> Result<(Totals, usize)> {
    let hash = open(maps_dir, "rule_hits")?;
    let cache = open(maps_dir, "hit_cache")?;
    let mut t = Totals::default();
    let mut stored = 0;
    let stride = hash.stride();
    hash.for_each(|k, v| {
        stored += 1;
        let key = rulehits::key_from_bytes(k);
        for cpu in v.chunks_exact(stride) {
            t.add(key, &hits_at(cpu, 0));
        }
        Ok(true)
    })
    .with_context(|| format!("reading {}", maps_dir.join("rule_hits").display()))?;
    let stride = cache.stride();
    cache
        .for_each(|_, v| {
            for cpu in v.chunks_exact(stride) {
                t.add_slot(&HitSlot {
                    rule: rulehits::key_from_bytes(&cpu[..20]),
                    jiffies: 0,
                    hits: hits_at(cpu, 24),
                });
            }
            Ok(true)
        })
        .with_context(|| format!("reading {}", maps_dir.join("hit_cache").display()))?;
    Ok((t, stored))
}

/// The `rule_hits` keys of every rule the rule maps hold, with its value.
pub fn rules(maps_dir: &Path) -> Result<Vec<(RuleKey, u8)>> {
    let mut out = Vec::new();
    for name in RULE_MAPS {
        if name == "syn_ports" && !maps_dir.join(name).exists() {
            continue;
        }
        let map = open(maps_dir, name)?;
        map.for_each(|k, v| {
            if zero_is_rule(name) || v.iter().any(|b| *b != 0) {
                let value = v.first().copied().unwrap_or(0);
                out.extend(rulehits::key_of(name, k).map(|key| (key, value)));
            }
            Ok(true)
        })
        .with_context(|| format!("reading {}", maps_dir.join(name).display()))?;
    }
    Ok(out)
}

/// What the load at `maps_dir` counted, per rule.
pub fn read(maps_dir: &Path) -> Result<Report> {
    let (totals, stored) = totals(maps_dir)?;
    let rules = rules(maps_dir)?;
    let ctl = open(maps_dir, "ctl")?;
    let offset = unix_offset_ns(nix::time::ClockId::CLOCK_MONOTONIC_COARSE);
    let room = open(maps_dir, "rule_hits")?.info().max_entries;
    Ok(Report {
        rows: rulehits::join(&rules, &totals, offset),
        counting: ctl_word(&ctl, Ctl::RuleHitsOn)? != 0,
        lost: ctl_word(&ctl, Ctl::RuleHitsLost)?,
        stored: (stored, room),
        now_unix_ns: crate::kernel::clock::unix_ns(),
    })
}

/// Sets every counter per rule to zero, and forgets the rules no map holds
/// any more. Hits counted while it runs may be lost with the rest.
pub fn reset(maps_dir: &Path) -> Result<()> {
    let hash = open(maps_dir, "rule_hits")?;
    let mut keys = Vec::new();
    hash.for_each(|k, _| {
        keys.push(k.to_vec());
        Ok(true)
    })?;
    for k in keys {
        hash.delete(&k)?;
    }
    let cache = open(maps_dir, "hit_cache")?;
    let zero = vec![0u8; cache.value_len()];
    for slot in 0..cache.info().max_entries {
        cache.update(
            &slot.to_ne_bytes(),
            &zero,
            crate::kernel::sys::update_flags::ANY,
        )?;
    }
    set_ctl_word(&open(maps_dir, "ctl")?, Ctl::RuleHitsLost, 0)?;
    Ok(())
}

/// Turns the counting on or off; returns whether it was on.
pub fn set_counting(maps_dir: &Path, on: bool) -> Result<bool> {
    let ctl = open(maps_dir, "ctl")?;
    if !maps_dir.join("rule_hits").exists() {
        open(maps_dir, "rule_hits")?;
    }
    let was = ctl_word(&ctl, Ctl::RuleHitsOn)? != 0;
    set_ctl_word(&ctl, Ctl::RuleHitsOn, u64::from(on))?;
    Ok(was)
}

/// Moves the counts of the load at `from` into the load at `to` (a
/// `load --replace`): each rule's totals into `to`'s `rule_hits`, on its
/// first CPU's slot, the most hit first. Rules `to` has no room for (a
/// smaller `rule_hits`) are left out, their hits counted in its
/// `rule_hits_lost`, and said in the notes returned; the switch carries
/// over too.
pub fn carry(from: &Path, to: &Path) -> Result<Vec<String>> {
    if !from.join("rule_hits").exists() {
        return Ok(Vec::new());
    }
    let (totals, _) = totals(from)?;
    let hash = open(to, "rule_hits")?;
    let cpus = hash.cpus();
    let stride = hash.stride();
    let mut lost = 0u64;
    let mut left_out = 0usize;
    let mut order: Vec<(&RuleKey, &Hits)> = totals.iter().collect();
    order.sort_by_key(|b| std::cmp::Reverse(b.1.packets));
    for (key, h) in order {
        let k = rulehits::key_bytes(key);
        let mut v = vec![0u8; stride * cpus];
        v[..8].copy_from_slice(&h.packets.to_ne_bytes());
        v[8..16].copy_from_slice(&h.bytes.to_ne_bytes());
        v[16..24].copy_from_slice(&h.last_ns.to_ne_bytes());
        if hash
            .update(&k, &v, crate::kernel::sys::update_flags::ANY)
            .is_err()
        {
            lost += h.packets;
            left_out += 1;
        }
    }
    let (old, new) = (open(from, "ctl")?, open(to, "ctl")?);
    set_ctl_word(&new, Ctl::RuleHitsOn, ctl_word(&old, Ctl::RuleHitsOn)?)?;
    let before = ctl_word(&old, Ctl::RuleHitsLost)?;
    set_ctl_word(&new, Ctl::RuleHitsLost, lost + before)?;
    let mut notes = Vec::new();
    if left_out > 0 {
        notes.push(format!(
            "the new rule_hits holds {} rules: the counts of the {left_out} least hit of {} counted \
             rules ({lost} hits) were left out (load with a larger --max-entries rule_hits=N to \
             keep them all)",
            hash.info().max_entries,
            totals.iter().count()
        ));
    }
    Ok(notes)
}
