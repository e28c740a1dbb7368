//! The indexes the rule maps call for, and writing them: the IPv4 and IPv6
//! CIDR indexes, the port and SYN-port bitmaps (the blocklist's filter is
//! written in `mod.rs`, beside the cache it empties).

use anyhow::{Result, bail};
use xdp_progs::{
    cidr4_index::{self, Index},
    cidr6_index, xdpfw,
};

use super::{Cidr6Maps, Synced, Target, write_array};
use crate::kernel::map::MapHandle;
use crate::{kernel::sys::update_flags, model::policy::Entries};

impl Target {
    /// The CIDR index `cidr4` calls for.
    pub(super) fn cidr4_wanted(&self) -> Result<Index> {
        Ok(Index::build(&self.cidr4_rules()?))
    }

    pub(super) fn cidr4_rules(&self) -> Result<Vec<cidr4_index::Rule>> {
        let trie = self.rule_map(xdpfw::maps::CIDR4)?;
        if trie.key_size() != 8 || trie.value_len() < 1 {
            bail!(
                "{} is not the firewall's cidr4 (key {} bytes, the firewall's has 8)",
                self.dir.join("cidr4").display(),
                trie.key_size()
            );
        }
        let mut rules = Vec::new();
        trie.for_each(|k, v| {
            let len = u32::from_ne_bytes(k[..4].try_into().unwrap_or_default());
            let addr = u32::from_be_bytes(k[4..8].try_into().unwrap_or_default());
            rules.push((addr, len.min(32) as u8, v[0]));
            Ok(true)
        })?;
        Ok(rules)
    }

    pub(super) fn write_cidr4(&self) -> Result<Synced> {
        let rules = self.cidr4_rules()?;
        let index = Index::build(&rules);
        let room = self.chunks.info().max_entries as usize / cidr4_index::CHUNK;
        let spill_room = self
            .spill
            .as_ref()
            .map_or(0, |s| s.info().max_entries as usize);
        if index.chunk_count() > room + spill_room {
            return Ok(Synced::TooBig {
                needed: index.chunk_count(),
                room: room + spill_room,
            });
        }
        // Chunks first (the array's, then the spilled ones, stale spilled
        // chunks removed), then the first level that points into them; the
        // datapath reads none of it until the mode word is set.
        let split = (room * cidr4_index::CHUNK).min(index.chunks.len());
        let (fixed, spilled) = index.chunks.split_at(split);
        write_array(&self.chunks, fixed.iter().map(|v| v.to_ne_bytes()))?;
        if let Some(spill) = &self.spill {
            let mut entries = Entries::new(4, 4 * cidr4_index::CHUNK);
            let mut value = Vec::with_capacity(4 * cidr4_index::CHUNK);
            for (i, chunk) in spilled.chunks_exact(cidr4_index::CHUNK).enumerate() {
                value.clear();
                chunk.iter().for_each(|v| value.extend(v.to_ne_bytes()));
                entries.push(&((room + i) as u32).to_ne_bytes(), &value);
            }
            let mut stale = Entries::new(4, 0);
            let used = (room + spilled.len() / cidr4_index::CHUNK) as u32;
            spill.for_each(|k, _| {
                if u32::from_ne_bytes(k.try_into()?) >= used {
                    stale.push(k, &[]);
                }
                Ok(true)
            })?;
            pinfs::failpoint::step("BPF_MAP_DELETE_ELEM");
            spill.delete_all(&stale)?;
            pinfs::failpoint::step("BPF_MAP_UPDATE_BATCH");
            spill.put_all(&entries)?;
        }
        write_array(&self.l1, index.l1.iter().map(|v| v.to_ne_bytes()))?;
        Ok(Synced::InUse { rules: rules.len() })
    }

    pub(super) fn write_cidr6(&self) -> Result<Synced> {
        let Some(Cidr6Maps {
            lens,
            index: hash,
            filter,
        }) = &self.cidr6
        else {
            return Ok(Synced::Absent);
        };
        let rules = self.cidr6_rules()?;
        let index = cidr6_index::Index::build(&rules);
        let room = hash.info().max_entries as usize;
        if index.entries.len() > room {
            return Ok(Synced::TooBig {
                needed: index.entries.len(),
                room,
            });
        }
        // Only the difference: entries that went, then every entry (the
        // datapath reads neither until the mode word is set).
        let mut stale = Entries::new(20, 0);
        hash.for_each(|k, _| {
            let len = u32::from_ne_bytes(k[..4].try_into()?);
            let addr = u128::from_be_bytes(k[4..20].try_into()?);
            if len > 128 || !index.entries.contains_key(&(len as u8, addr)) {
                stale.push(k, &[]);
            }
            Ok(true)
        })?;
        pinfs::failpoint::step("BPF_MAP_DELETE_ELEM");
        hash.delete_all(&stale)?;
        let mut entries = Entries::new(20, 4);
        for (&(len, addr), v) in &index.entries {
            entries.push(&cidr6_index::key(len, addr), &v.to_ne_bytes());
        }
        pinfs::failpoint::step("BPF_MAP_UPDATE_BATCH");
        hash.put_all(&entries)?;
        let words = cidr6_index::filter_words(&index);
        write_array(filter, words.iter().map(|w| w.to_ne_bytes()))?;
        pinfs::failpoint::step("BPF_MAP_UPDATE_ELEM");
        lens.update(&0u32.to_ne_bytes(), &index.lens_value(), update_flags::ANY)?;
        Ok(Synced::InUse { rules: rules.len() })
    }

    /// The IPv6 CIDR index `cidr6` calls for.
    pub(super) fn cidr6_wanted(&self) -> Result<cidr6_index::Index> {
        Ok(cidr6_index::Index::build(&self.cidr6_rules()?))
    }

    pub(super) fn cidr6_rules(&self) -> Result<Vec<cidr6_index::Rule>> {
        let trie = self.rule_map(xdpfw::maps::CIDR6)?;
        if trie.key_size() != 20 || trie.value_len() < 1 {
            bail!(
                "{} is not the firewall's cidr6 (key {} bytes, the firewall's has 20)",
                self.dir.join("cidr6").display(),
                trie.key_size()
            );
        }
        let mut rules = Vec::new();
        trie.for_each(|k, v| {
            let len = u32::from_ne_bytes(k[..4].try_into()?);
            let addr = u128::from_be_bytes(k[4..20].try_into()?);
            rules.push((addr, len.min(128) as u8, v[0]));
            Ok(true)
        })?;
        Ok(rules)
    }

    pub(super) fn write_ports(&self) -> Result<Synced> {
        let (bits, mut count) = self.port_bits_counted()?;
        for (slot, bits) in bits.iter().enumerate() {
            pinfs::failpoint::step("BPF_MAP_UPDATE_ELEM");
            self.bits
                .update(&(slot as u32).to_ne_bytes(), bits, update_flags::ANY)?;
        }
        if let Some(syn) = &self.syn_bits {
            let (bits, n) = self.syn_bits_wanted()?;
            pinfs::failpoint::step("BPF_MAP_UPDATE_ELEM");
            syn.update(&0u32.to_ne_bytes(), &bits, update_flags::ANY)?;
            count += n;
        }
        Ok(Synced::InUse { rules: count })
    }

    /// `syn_ports` as the bitmap `syn_bits` holds, and its entries.
    pub(super) fn syn_bits_wanted(&self) -> Result<(Vec<u8>, usize)> {
        let map = self.rule_map(xdpfw::maps::SYN_PORTS)?;
        if map.key_size() != 2 || map.value_len() < 1 {
            bail!(
                "{} is not the firewall's syn_ports (key {} bytes, the firewall's has 2)",
                self.dir.join(xdpfw::maps::SYN_PORTS).display(),
                map.key_size()
            );
        }
        port_bitmap(&map)
    }

    /// The port index the port maps call for: UDP's bitmap, then TCP's.
    pub(super) fn port_bits_wanted(&self) -> Result<[Vec<u8>; 2]> {
        Ok(self.port_bits_counted()?.0)
    }

    pub(super) fn port_bits_counted(&self) -> Result<([Vec<u8>; 2], usize)> {
        let mut count = 0;
        let mut out = [vec![0u8; PORT_BITS_LEN], vec![0u8; PORT_BITS_LEN]];
        for (slot, name) in [xdpfw::maps::UDP_PORTS, xdpfw::maps::TCP_PORTS]
            .into_iter()
            .enumerate()
        {
            let map = self.rule_map(name)?;
            if map.key_size() != 2 || map.value_len() < 1 {
                bail!(
                    "{} is not the firewall's {name} (key {} bytes, the firewall's has 2)",
                    self.dir.join(name).display(),
                    map.key_size()
                );
            }
            let (bits, n) = port_bitmap(&map)?;
            count += n;
            out[slot] = bits;
        }
        Ok((out, count))
    }
}

/// The ports of a port map whose value is not 0, as a bitmap of
/// `struct xdpfw_port_bits` (word port / 64, native endian; bit port %
/// 64), and the map's entries.
fn port_bitmap(map: &MapHandle) -> Result<(Vec<u8>, usize)> {
    let mut bits = vec![0u8; PORT_BITS_LEN];
    let mut count = 0;
    map.for_each(|k, v| {
        let port = usize::from(u16::from_be_bytes([k[0], k[1]]));
        if v[0] != 0 {
            let word = port / 64 * 8;
            let mut w = u64::from_ne_bytes(bits[word..word + 8].try_into()?);
            w |= 1 << (port % 64);
            bits[word..word + 8].copy_from_slice(&w.to_ne_bytes());
        }
        count += 1;
        Ok(true)
    })?;
    Ok((bits, count))
}

/// Bytes of one `struct xdpfw_port_bits`.
pub(super) const PORT_BITS_LEN: usize = 65_536 / 8;
