//! Guard's side of the kernel: its record of its blocks (`DIR/guard`,
//! source → expiry), and the firewall's blocklist as
//! [`Guard`](crate::model::guard::Guard)'s rules
//! read and write it, through the one protocol of rule changes. The loop
//! that runs it is `xdpctl guard`'s.
//!
//! Guard's own blocks are told apart from an operator's: they carry the
//! value [`GUARD_MARK`] in the blocklist and are recorded, with their expiry,
//! in a small map pinned in the load directory. So guard never removes an
//! entry an operator added, and a restarted guard picks up its unexpired
//! blocks. With `--limit`, a block is a rate limit of the source's own
//! (a /32 or /128 in `rate4`/`rate6`, `owner` the mark) instead; an
//! unblock removes guard's entry from either, so a guard restarted in the
//! other mode still ends what it started.

use std::{collections::HashMap, os::fd::AsFd};

use anyhow::{Context as _, Result, bail};
use xdp_progs::xdpfw;

use crate::{
    kernel::{
        fwindex,
        sys::{self, update_flags},
    },
    model::{
        guard::{Blocklist, Cidr, GUARD_MARK, Inserted, Source},
        rate,
    },
    ops::{firewall::Firewall, openmap::OpenMap},
};

/// The pin of guard's state in the load directory.
pub const STATE_PIN: &str = "guard";

/// Guard's record of its blocks: source → expiry (Unix ms), pinned.
pub struct State {
    map: OpenMap,
}

fn state_key(src: Source) -> [u8; 16] {
    match src {
        Source::V4(a) => {
            // IPv4-mapped IPv6: ::ffff:a.b.c.d
            let mut k = [0u8; 16];
            k[10] = 0xff;
            k[11] = 0xff;
            k[12..].copy_from_slice(&a);
            k
        }
        Source::V6(a) => a,
    }
}

fn from_state_key(k: &[u8]) -> Source {
    if k[..10].iter().all(|b| *b == 0) && k[10] == 0xff && k[11] == 0xff {
        Source::V4(
            k.get(12..16)
                .and_then(|s| s.try_into().ok())
                .unwrap_or_default(),
        )
    } else {
        Source::V6(k.try_into().unwrap_or_default())
    }
}

impl State {
    /// Opens guard's state in `dir`, creating (and pinning) it the first
    /// time; none in a dry run, which changes nothing.
    pub fn open(dir: &std::path::Path, dry_run: bool) -> Result<Option<Self>> {
        if dry_run {
            return Ok(None);
        }
        let path = dir.join(STATE_PIN);
        if !path.exists() {
            let fd = sys::map_create(
                aya_obj::generated::bpf_map_type::BPF_MAP_TYPE_HASH,
                "xdpctl_guard",
                16,
                8,
                65_536,
            )
            .context("creating guard's state map")?;
            pinfs::failpoint::step("BPF_OBJ_PIN");
            pinfs::obj_pin(fd.as_fd(), &path)?;
        }
        let map = OpenMap::at(&path)?;
        let info = map.handle().info();
        if info.key_size != 16 || info.value_size != 8 || map.handle().per_cpu() {
            bail!(
                "{} is not guard's state map (key {} bytes, value {} bytes; guard's has 16 and 8); \
                 move it away, or name another load directory",
                path.display(),
                info.key_size,
                info.value_size
            );
        }
        Ok(Some(State { map }))
    }

    pub fn all(&self) -> Result<HashMap<Source, u64>> {
        let mut out = HashMap::new();
        self.map.for_each(|k, v| {
            out.insert(from_state_key(k), crate::ops::firewall::ne_u64(v));
            Ok(true)
        })?;
        Ok(out)
    }

    fn set(&self, src: Source, expiry: u64) -> Result<()> {
        self.map
            .handle()
            .update(&state_key(src), &expiry.to_ne_bytes(), update_flags::ANY)?;
        Ok(())
    }

    fn remove(&self, src: Source) -> Result<()> {
        self.map.handle().delete(&state_key(src))?;
        Ok(())
    }
}

fn blocklist_for(fw: &Firewall, src: Source) -> (&OpenMap, Vec<u8>) {
    match src {
        Source::V4(a) => (fw.map(xdpfw::maps::BLOCKLIST), a.to_vec()),
        Source::V6(a) => (fw.map(xdpfw::maps::BLOCKLIST6), a.to_vec()),
    }
}

/// The blocklist value of a source, if it has an entry.
fn blocklist_value(fw: &Firewall, src: Source) -> Result<Option<u8>> {
    let (map, key) = blocklist_for(fw, src);
    let mut value = vec![0u8; map.value_len()];
    Ok(map.handle().lookup(&key, &mut value)?.then(|| value[0]))
}

/// The rate map of `src` and its LPM key for the source alone (a /32 or
/// /128), if the firewall has rate limits.
fn rate_for(fw: &Firewall, src: Source) -> Option<(&OpenMap, Vec<u8>)> {
    let (name, len) = match &src {
        Source::V4(_) => (xdpfw::maps::RATE4, 32),
        Source::V6(_) => (xdpfw::maps::RATE6, 128),
    };
    let map = fw.try_map(name)?;
    Some((
        map,
        Cidr {
            addr: src.ip(),
            len,
        }
        .lpm_key(),
    ))
}

/// The limit that covers `src` (its longest prefix in `rate4`/`rate6`),
/// if any, and whether it is guard's own for the source alone.
fn rate_value(fw: &Firewall, src: Source) -> Result<Option<(xdpfw::Rate, bool)>> {
    let Some((map, key)) = rate_for(fw, src) else {
        return Ok(None);
    };
    let mut value = vec![0u8; map.value_len()];
    if !map.handle().lookup(&key, &mut value)? {
        return Ok(None);
    }
    let Some(r) = rate::decode(&value) else {
        return Ok(None);
    };
    Ok(Some((r, r.owner == u32::from(GUARD_MARK))))
}

/// What guard finds for `src`: in block mode its blocklist entry; limiting
/// to `limit`, also a limit already as strict (an operator's, of the
/// source or a prefix covering it) or guard's own.
fn entry_for(fw: &Firewall, src: Source, limit: Option<u64>) -> Result<Option<u8>> {
    let blocked = blocklist_value(fw, src)?;
    let Some(limit) = limit else {
        return Ok(blocked);
    };
    if blocked.is_some() {
        return Ok(blocked);
    }
    Ok(match rate_value(fw, src)? {
        Some((_, true)) => Some(GUARD_MARK),
        Some((r, false)) if r.pps != 0 && r.pps <= limit => Some(1),
        _ => None,
    })
}

/// The firewall's blocklist and guard's records, for [`Guard`]'s rules.
pub struct Maps<'a> {
    /// The firewall.
    pub fw: &'a Firewall,
    /// Guard's records.
    pub state: &'a State,
    /// Limit instead of block: packets a second.
    pub limit: Option<u64>,
}

impl Maps<'_> {
    /// A limit of `pps` for `src` alone, guard's (`owner` the mark).
    fn limit(&mut self, src: Source, expiry_ms: u64, pps: u64) -> Result<Inserted> {
        let Some((map, key)) = rate_for(self.fw, src) else {
            bail!(
                "{} has no rate limits (loaded by an older xdpctl); `xdpctl load --replace` \
                 adds them, or run guard without --limit",
                self.fw.dir.display()
            );
        };
        self.state.set(src, expiry_ms)?;
        let value = rate::encode(&xdpfw::Rate {
            pps,
            owner: u32::from(GUARD_MARK),
            ..Default::default()
        });
        let change = begin_kind(self.fw, fwindex::Rules::Rate, &[])?;
        let written = map.handle().update(&key, &value, update_flags::NOEXIST);
        if let Some((t, c)) = change {
            c.finish(&t)?;
        }
        self.inserted(src, written)
    }

    /// What a write of guard's entry for `src` came to.
    fn inserted(&mut self, src: Source, written: std::io::Result<()>) -> Result<Inserted> {
        match written {
            Ok(()) => Ok(Inserted::Blocked),
            Err(e) if e.raw_os_error() == Some(libc::EEXIST) => {
                self.state.remove(src)?;
                Ok(Inserted::Taken)
            }
            Err(e) if e.raw_os_error() == Some(libc::E2BIG) => {
                self.state.remove(src)?;
                Ok(Inserted::Full)
            }
            Err(e) => Err(e).context(format!("blocking {src}")),
        }
    }

    /// Removes guard's limit of `src` alone, if there is one.
    fn unlimit(&mut self, src: Source) -> Result<bool> {
        let Some((map, key)) = rate_for(self.fw, src) else {
            return Ok(false);
        };
        let mut value = vec![0u8; map.value_len()];
        let mine = map.handle().lookup(&key, &mut value)?
            && rate::decode(&value).is_some_and(|r| r.owner == u32::from(GUARD_MARK));
        if !mine {
            return Ok(false);
        }
        // A lookup of an LPM trie finds the longest prefix; a delete takes
        // the exact one: guard's own is the source alone, or none.
        let change = begin_kind(self.fw, fwindex::Rules::Rate, &[])?;
        let deleted = map.handle().delete(&key);
        if let Some((t, c)) = change {
            c.finish(&t)?;
        }
        // (false: the limit found is a prefix's, not guard's own.)
        deleted.with_context(|| format!("removing guard's limit of {src}"))
    }
}

impl Blocklist for Maps<'_> {
    fn entry(&mut self, src: Source) -> Result<Option<u8>> {
        entry_for(self.fw, src, self.limit)
    }

    fn block(&mut self, src: Source, expiry_ms: u64) -> Result<Inserted> {
        if let Some(pps) = self.limit {
            return self.limit(src, expiry_ms, pps);
        }
        let (map, key) = blocklist_for(self.fw, src);
        // The record first: a guard killed in between resumes a block it
        // may not have made, and removes it at expiry only if it carries
        // guard's mark.
        self.state.set(src, expiry_ms)?;
        let mut value = vec![0u8; map.value_len()];
        value[0] = GUARD_MARK;
        // The one protocol of rule changes: the datapath's blocklist filter
        // learns the source first, or it would not look the new entry up
        // (blocklist6, if marked empty, is looked up from now on).
        let change = begin(self.fw, src, &key)?;
        let written = map.handle().update(&key, &value, update_flags::NOEXIST);
        if let Some((t, c)) = change {
            c.finish(&t)?;
        }
        self.inserted(src, written)
    }

    fn unblock(&mut self, src: Source) -> Result<bool> {
        let limited = self.unlimit(src)?;
        let mine = blocklist_value(self.fw, src)? == Some(GUARD_MARK);
        if mine {
            let (map, key) = blocklist_for(self.fw, src);
            // The datapath forgets it as cached blocked; the last block
            // gone, the kind is skipped again.
            let change = begin(self.fw, src, &[])?;
            let deleted = map.handle().delete(&key);
            if let Some((t, c)) = change {
                c.finish(&t)?;
            }
            deleted?;
        }
        self.state.remove(src)?;
        Ok(mine || limited)
    }
}

/// Begins a change to the blocklist of `src` that adds `key` (if not
/// empty): `fwindex`'s one protocol, finished after the write.
fn begin(
    fw: &Firewall,
    src: Source,
    key: &[u8],
) -> Result<Option<(fwindex::Target, fwindex::Change)>> {
    let (kind, added) = match src {
        Source::V4(_) => (fwindex::Rules::Blocklist, key),
        _ => (fwindex::Rules::Blocklist6, &[][..]),
    };
    begin_kind(fw, kind, added)
}

/// Begins a change to the rules of `kind`: `fwindex`'s one protocol.
fn begin_kind(
    fw: &Firewall,
    kind: fwindex::Rules,
    added: &[u8],
) -> Result<Option<(fwindex::Target, fwindex::Change)>> {
    let Some(t) = fwindex::Target::open(&fw.maps_dir())? else {
        return Ok(None);
    };
    let change = t.begin(&[kind], added)?;
    Ok(Some((t, change)))
}

/// A dry run reads the blocklist (and, limiting, the rate limits) and
/// changes nothing.
pub struct ReadOnly<'a>(pub &'a Firewall, pub Option<u64>);

impl Blocklist for ReadOnly<'_> {
    fn entry(&mut self, src: Source) -> Result<Option<u8>> {
        entry_for(self.0, src, self.1)
    }
    fn block(&mut self, _: Source, _: u64) -> Result<Inserted> {
        bail!("a dry run blocks nothing")
    }
    fn unblock(&mut self, _: Source) -> Result<bool> {
        Ok(false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_keys_round_trip_both_families() {
        for src in [
            Source::V4([203, 0, 113, 5]),
            Source::V6([0x20, 1, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 9]),
        ] {
            assert_eq!(from_state_key(&state_key(src)), src);
        }
    }
}
