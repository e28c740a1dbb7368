//! `doctor --check`'s question: does an index the datapath trusts still
//! match the rule maps it was derived from?

use anyhow::Result;
use xdp_progs::{cidr4_index, cidr6_index, xdpfw};

use super::{PORT_BITS_LEN, Rules, Target};
use crate::kernel::map::MapHandle;

impl Target {
    /// Whether the index of `rules`, which the datapath trusts (mode on),
    /// still matches the rule maps: `Some(why)` if another tool changed
    /// the rules since xdpctl derived it and the datapath has not noticed
    /// yet. An index that is off, or a kind marked empty, is not compared
    /// (see [`Status`] and [`skipped_rules`]).
    pub fn verify(&self, rules: Rules) -> Result<Option<String>> {
        let status = self.status(rules)?;
        if !self.has_index(rules) || !status.in_use || status.empty {
            return Ok(None);
        }
        let differ = |n: usize, one: &str, many: &str| {
            (n > 0).then(|| {
                format!(
                    "the {} differs from {} in {n} {}: changed outside xdpctl, and the \
                     datapath's sampled check has not met them yet",
                    rules.index_name(),
                    rules.rules_name(),
                    if n == 1 { one } else { many }
                )
            })
        };
        Ok(match rules {
            Rules::Cidr4 => {
                let want = self.cidr4_wanted()?;
                let mut have = vec![0u32; cidr4_index::L1];
                self.l1.for_each(|k, v| {
                    let i = u32::from_ne_bytes(k.try_into()?) as usize;
                    if let Some(slot) = have.get_mut(i) {
                        *slot = u32::from_ne_bytes(v[..4].try_into()?);
                    }
                    Ok(true)
                })?;
                let mut n = want.l1.iter().zip(&have).filter(|(a, b)| a != b).count();
                // The chunks the wanted first level points to.
                let room = self.chunks.info().max_entries as usize / cidr4_index::CHUNK;
                let mut entry = [0u8; 4];
                let mut chunk = vec![0u8; 4 * cidr4_index::CHUNK];
                for (c, wanted) in want.chunks.chunks_exact(cidr4_index::CHUNK).enumerate() {
                    let got: Vec<u32> = if c < room {
                        (0..cidr4_index::CHUNK)
                            .map(|i| {
                                let key = ((c * cidr4_index::CHUNK + i) as u32).to_ne_bytes();
                                self.chunks.lookup(&key, &mut entry)?;
                                Ok(u32::from_ne_bytes(entry))
                            })
                            .collect::<Result<_>>()?
                    } else {
                        let found = match &self.spill {
                            Some(spill) => spill.lookup(&(c as u32).to_ne_bytes(), &mut chunk)?,
                            None => false,
                        };
                        if !found {
                            n += cidr4_index::CHUNK;
                            continue;
                        }
                        chunk
                            .chunks_exact(4)
                            .map(|b| u32::from_ne_bytes(b.try_into().unwrap_or_default()))
                            .collect()
                    };
                    n += wanted.iter().zip(&got).filter(|(a, b)| a != b).count();
                }
                differ(n, "entry", "entries")
            }
            Rules::Cidr6 => {
                let Some(six) = &self.cidr6 else {
                    return Ok(None);
                };
                let want = self.cidr6_wanted()?;
                let mut n = 0;
                let mut seen = 0;
                six.index.for_each(|k, v| {
                    let len = u32::from_ne_bytes(k[..4].try_into()?);
                    let addr = u128::from_be_bytes(k[4..20].try_into()?);
                    let got = u32::from_ne_bytes(v[..4].try_into()?);
                    match want.entries.get(&(len.min(255) as u8, addr)) {
                        Some(&e) if e == got && len <= 128 => seen += 1,
                        _ => n += 1,
                    }
                    Ok(true)
                })?;
                n += want.entries.len() - seen;
                let mut lens = vec![0u8; cidr6_index::LENS_VALUE];
                six.lens.lookup(&0u32.to_ne_bytes(), &mut lens)?;
                if lens[..] != want.lens_value()[..] {
                    n += 1;
                }
                differ(n, "entry", "entries")
            }
            Rules::Ports => {
                let mut n = 0;
                let bits_differ = |map: &MapHandle, slot: u32, want: &[u8]| -> Result<usize> {
                    let mut have = vec![0u8; PORT_BITS_LEN];
                    map.lookup(&slot.to_ne_bytes(), &mut have)?;
                    Ok(want
                        .iter()
                        .zip(&have)
                        .map(|(a, b)| (a ^ b).count_ones() as usize)
                        .sum::<usize>())
                };
                for (slot, want) in self.port_bits_wanted()?.iter().enumerate() {
                    n += bits_differ(&self.bits, slot as u32, want)?;
                }
                if let Some(syn) = &self.syn_bits {
                    n += bits_differ(syn, 0, &self.syn_bits_wanted()?.0)?;
                }
                differ(n, "port", "ports")
            }
            Rules::Blocklist => {
                // A filter: every blocklisted source's bit must be set
                // (bits of removed entries may stay).
                let bloom = self.rule_map(xdpfw::maps::BLOOM)?;
                let mut words = vec![0u64; (xdpfw::BLOOM_BITS / 64) as usize];
                bloom.for_each(|k, v| {
                    let i = u32::from_ne_bytes(k.try_into()?) as usize;
                    if let Some(w) = words.get_mut(i) {
                        *w = u64::from_ne_bytes(v[..8].try_into()?);
                    }
                    Ok(true)
                })?;
                let mut n = 0;
                self.rule_map(xdpfw::maps::BLOCKLIST)?.for_each(|k, v| {
                    if let Ok(src) = <[u8; 4]>::try_from(k) {
                        let bit = xdpfw::bloom_bit(src) as usize;
                        if v[0] != 0 && words[bit / 64] >> (bit % 64) & 1 == 0 {
                            n += 1;
                        }
                    }
                    Ok(true)
                })?;
                differ(n, "source", "sources")
            }
            Rules::Blocklist6 | Rules::Rate => None,
        })
    }
}
