//! Keeping the firewall's derived indexes in step with its rule maps, and
//! its other control words.
//!
//! The datapath reads three kinds of rules from indexes xdpctl derives from
//! the rule maps: `cidr4`'s verdicts from the CIDR index (`cidr4_l1`,
//! `cidr4_chunks`: at most three array reads), `cidr6`'s from the IPv6 CIDR
//! index (`cidr6_lens`, `cidr6_index`: at most eight hash lookups),
//! `udp_ports`' and `tcp_ports`' from the port index (`port_bits`: a bit
//! test); and `blocklist`'s through a filter and a cache. It reads an
//! index only while its mode word in `ctl` says the index matches the
//! rules. Every change xdpctl makes to a rule map goes: [`Indexes::suspend`]
//! (mode: off), the change, [`Indexes::sync`] (index rebuilt from the rule
//! map, then mode: on). A crash anywhere in between leaves the datapath on
//! the rule map, which is always right, only slower; the next change,
//! `xdpctl doctor` or `apply` rebuilds the index.
//!
//! Sync also decides what a kind costs the datapath: a kind whose rule
//! maps hold no rule is marked empty ([`xdpfw::INDEX_EMPTY`]) and skipped,
//! so a packet pays only for the kinds of rules in use (`blocklist6`,
//! which has no index, has a mode word for this alone). A rule written by
//! another tool (bpftool) is found by the datapath's sampled check (one
//! packet in 128 per CPU is judged by the rule maps too), which turns the
//! index off or the kind on and counts the drift; `xdpctl stats` and
//! `doctor --check` compare the rule maps with the mode words, and
//! `doctor` repairs.

use std::{
    path::{Path, PathBuf},
    time::Duration,
};

use anyhow::{Context as _, Result, bail};
use pinfs::Kind;
use xdp_progs::{
    cidr4_index::{self, Index},
    cidr6_index,
    xdpfw::{self, Ctl},
};

use super::{map::MapHandle, objects, sys::update_flags};
use crate::model::policy::Entries;

use crate::kernel::map::LPM_TRIE;
const HASH: u32 = aya_obj::generated::bpf_map_type::BPF_MAP_TYPE_HASH as u32;

/// Which rules an index is derived from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rules {
    /// `cidr4`, into `cidr4_l1` and `cidr4_chunks`.
    Cidr4,
    /// `cidr6`, into `cidr6_lens` and `cidr6_index`.
    Cidr6,
    /// `udp_ports` and `tcp_ports`, into `port_bits`.
    Ports,
    /// `blocklist`, into `bloom` (a filter: bits are added for
    /// new entries, and cleared only by a rebuild) and `drop_cache` (a
    /// cache: a removal changes its generation).
    Blocklist,
    /// `blocklist6`: no index (one hash lookup), only the mode word that
    /// lets the datapath skip it while it is empty.
    Blocklist6,
    /// `rate4` and `rate6`: no index (one trie lookup), only the mode word
    /// that lets the datapath skip them while they are empty.
    Rate,
}

impl Rules {
    /// All of them.
    pub const ALL: [Rules; 6] = [
        Rules::Cidr4,
        Rules::Cidr6,
        Rules::Ports,
        Rules::Blocklist,
        Rules::Blocklist6,
        Rules::Rate,
    ];

    /// The rules a map of this name and type holds, if any index is
    /// derived from it.
    fn of(name: &str, map_type: u32) -> Option<Rules> {
        match name {
            xdpfw::maps::CIDR4 if map_type == LPM_TRIE => Some(Rules::Cidr4),
            xdpfw::maps::CIDR6 if map_type == LPM_TRIE => Some(Rules::Cidr6),
            xdpfw::maps::UDP_PORTS | xdpfw::maps::TCP_PORTS | xdpfw::maps::SYN_PORTS
                if map_type == HASH =>
            {
                Some(Rules::Ports)
            }
            xdpfw::maps::BLOCKLIST if map_type == HASH => Some(Rules::Blocklist),
            xdpfw::maps::BLOCKLIST6 if map_type == HASH => Some(Rules::Blocklist6),
            xdpfw::maps::RATE4 | xdpfw::maps::RATE6 if map_type == LPM_TRIE => Some(Rules::Rate),
            _ => None,
        }
    }

    /// The rules a firewall's map of this name holds, if any index (or
    /// cache) is derived from it.
    pub fn of_name(name: &str) -> Option<Rules> {
        Rules::of(
            name,
            if [
                xdpfw::maps::CIDR4,
                xdpfw::maps::CIDR6,
                xdpfw::maps::RATE4,
                xdpfw::maps::RATE6,
            ]
            .contains(&name)
            {
                LPM_TRIE
            } else {
                HASH
            },
        )
    }

    fn mode(self) -> Ctl {
        match self {
            Rules::Cidr4 => Ctl::Cidr4Mode,
            Rules::Cidr6 => Ctl::Cidr6Mode,
            Rules::Ports => Ctl::PortsMode,
            Rules::Blocklist => Ctl::BloomMode,
            Rules::Blocklist6 => Ctl::Blocklist6Mode,
            Rules::Rate => Ctl::RateMode,
        }
    }

    /// The word counting the drift the datapath found, if the kind has
    /// one (`ctl` has no room left for the rate limits': a rate rule
    /// written by another tool turns their mode word on, uncounted).
    fn drift(self) -> Option<Ctl> {
        match self {
            Rules::Cidr4 => Some(Ctl::Cidr4Drift),
            Rules::Cidr6 => Some(Ctl::Cidr6Drift),
            Rules::Ports => Some(Ctl::PortsDrift),
            Rules::Blocklist => Some(Ctl::BloomDrift),
            Rules::Blocklist6 => Some(Ctl::Blocklist6Drift),
            Rules::Rate => None,
        }
    }

    /// The rule maps, by pin name.
    fn maps(self) -> &'static [&'static str] {
        match self {
            Rules::Cidr4 => &[xdpfw::maps::CIDR4],
            Rules::Cidr6 => &[xdpfw::maps::CIDR6],
            Rules::Ports => &[
                xdpfw::maps::UDP_PORTS,
                xdpfw::maps::TCP_PORTS,
                xdpfw::maps::SYN_PORTS,
            ],
            Rules::Blocklist => &[xdpfw::maps::BLOCKLIST],
            Rules::Blocklist6 => &[xdpfw::maps::BLOCKLIST6],
            Rules::Rate => &[xdpfw::maps::RATE4, xdpfw::maps::RATE6],
        }
    }

    /// What the index is called in messages.
    pub fn index_name(self) -> &'static str {
        match self {
            Rules::Cidr4 => "CIDR index",
            Rules::Cidr6 => "IPv6 CIDR index",
            Rules::Ports => "port index",
            Rules::Blocklist => "blocklist filter",
            Rules::Blocklist6 => "blocklist6 switch",
            Rules::Rate => "rate limit switch",
        }
    }

    /// The rule maps, for messages.
    pub fn rules_name(self) -> &'static str {
        match self {
            Rules::Cidr4 => "cidr4",
            Rules::Cidr6 => "cidr6",
            Rules::Ports => "udp_ports/tcp_ports/syn_ports",
            Rules::Blocklist => "blocklist",
            Rules::Blocklist6 => "blocklist6",
            Rules::Rate => "rate4/rate6",
        }
    }
}

/// One firewall's indexes: the maps in its `DIR/maps`.
pub struct Target {
    /// `DIR/maps`.
    pub dir: PathBuf,
    l1: MapHandle,
    chunks: MapHandle,
    /// `cidr4_spill`, unless the firewall was loaded before it existed.
    spill: Option<MapHandle>,
    bits: MapHandle,
    ctl: MapHandle,
    /// `cidr6_lens`, `cidr6_index` and `cidr6_filter`, unless the
    /// firewall was loaded before they existed.
    cidr6: Option<Cidr6Maps>,
    /// Whether it has the rate limits (`rate4`, `rate6` and their mode
    /// word), unless it was loaded before they existed.
    rate: bool,
    /// `syn_bits`, the bitmap of `syn_ports`, unless the firewall was
    /// loaded before SYN cookies.
    syn_bits: Option<MapHandle>,
}

struct Cidr6Maps {
    lens: MapHandle,
    index: MapHandle,
    filter: MapHandle,
}

/// What [`Target::sync`] did.
#[derive(Debug, PartialEq, Eq)]
pub enum Synced {
    /// The index matches the rules and is in use.
    InUse {
        /// Rules indexed.
        rules: usize,
    },
    /// The rules need more room than the index has (chunks of
    /// `cidr4_chunks`, entries of `cidr6_index`): the datapath keeps
    /// looking up the trie.
    TooBig {
        /// Chunks (entries) needed.
        needed: usize,
        /// Chunks (entries) there is room for.
        room: usize,
    },
    /// The firewall was loaded before this index existed: the datapath
    /// looks up the rule map (`load --replace` adds the index).
    Absent,
}

/// The state of one index, for `stats` and `doctor`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Status {
    /// Whether the datapath uses the index (or, marked empty, skips the
    /// kind: what xdpctl decided last, which matches the rules unless
    /// another tool changed them since).
    pub in_use: bool,
    /// Whether the kind is marked empty: the datapath skips it.
    pub empty: bool,
    /// Differences between the index and its rules the datapath found.
    pub drift: u64,
}

impl Target {
    /// The indexes in the load directory whose maps are pinned in `maps`,
    /// if it is a firewall with them.
    pub fn open(maps: &Path) -> Result<Option<Target>> {
        let pin = |name: &str| maps.join(name);
        let names = [
            xdpfw::maps::CIDR4_L1,
            xdpfw::maps::CIDR4_CHUNKS,
            xdpfw::maps::PORT_BITS,
            xdpfw::maps::CTL,
        ];
        if !names.iter().all(|n| pin(n).exists()) {
            return Ok(None);
        }
        let open = |name: &str| {
            MapHandle::open_pinned(&pin(name))
                .with_context(|| format!("opening {}", pin(name).display()))
        };
        let t = Target {
            dir: maps.to_path_buf(),
            l1: open(xdpfw::maps::CIDR4_L1)?,
            chunks: open(xdpfw::maps::CIDR4_CHUNKS)?,
            spill: None,
            bits: open(xdpfw::maps::PORT_BITS)?,
            ctl: open(xdpfw::maps::CTL)?,
            cidr6: None,
            rate: false,
            syn_bits: None,
        };
        let fits = |m: &MapHandle, key: usize, value: usize| {
            m.key_size() == key && m.value_len() == value && !m.per_cpu()
        };
        if !fits(&t.l1, 4, 4)
            || t.l1.info().max_entries as usize != cidr4_index::L1
            || !fits(&t.chunks, 4, 4)
            || !fits(&t.bits, 4, PORT_BITS_LEN)
            || t.bits.info().max_entries < 2
            || !fits(&t.ctl, 4, 8)
            || t.ctl.info().max_entries <= Ctl::BlockGen as u32
        {
            bail!(
                "{} holds index maps of other shapes than xdpctl's firewall; load the \
                 firewall again (`xdpctl load --replace`)",
                maps.display()
            );
        }
        let mut t = t;
        if pin(xdpfw::maps::CIDR4_SPILL).exists() {
            let spill = open(xdpfw::maps::CIDR4_SPILL)?;
            if fits(&spill, 4, 4 * cidr4_index::CHUNK) {
                t.spill = Some(spill);
            }
        }
        let six = [
            xdpfw::maps::CIDR6_LENS,
            xdpfw::maps::CIDR6_INDEX,
            xdpfw::maps::CIDR6_FILTER,
        ];
        if six.iter().all(|n| pin(n).exists()) && t.ctl.info().max_entries > Ctl::Cidr6Drift as u32
        {
            let six = Cidr6Maps {
                lens: open(xdpfw::maps::CIDR6_LENS)?,
                index: open(xdpfw::maps::CIDR6_INDEX)?,
                filter: open(xdpfw::maps::CIDR6_FILTER)?,
            };
            // Of other shapes (loaded with odd sizes): as if absent, the
            // datapath looks cidr6 up in the trie.
            if fits(&six.lens, 4, cidr6_index::LENS_VALUE)
                && fits(&six.index, 20, 4)
                && fits(&six.filter, 4, 8)
                && six.filter.info().max_entries == cidr6_index::FILTER_BITS / 64
            {
                t.cidr6 = Some(six);
            }
        }
        if pin(xdpfw::maps::SYN_BITS).exists() && pin(xdpfw::maps::SYN_PORTS).exists() {
            let bits = open(xdpfw::maps::SYN_BITS)?;
            if fits(&bits, 4, PORT_BITS_LEN) {
                t.syn_bits = Some(bits);
            }
        }
        t.rate = t.ctl.info().max_entries > Ctl::RateMode as u32
            && [xdpfw::maps::RATE4, xdpfw::maps::RATE6]
                .iter()
                .all(|n| pin(n).exists());
        Ok(Some(t))
    }

    fn word(&self, w: Ctl) -> Result<u64> {
        ctl_word(&self.ctl, w)
    }

    fn set_word(&self, w: Ctl, value: u64) -> Result<()> {
        set_ctl_word(&self.ctl, w, value)
    }

    /// Whether this firewall has the index of `rules` (one loaded before
    /// the IPv6 CIDR index has no such index, and looks `cidr6` up).
    pub fn has_index(&self, rules: Rules) -> bool {
        match rules {
            Rules::Cidr6 => self.cidr6.is_some(),
            Rules::Blocklist6 => self.ctl.info().max_entries > Ctl::Blocklist6Drift as u32,
            Rules::Rate => self.rate,
            _ => true,
        }
    }

    /// Whether the datapath uses the index of `rules`, and the drift it
    /// found.
    pub fn status(&self, rules: Rules) -> Result<Status> {
        if !self.has_index(rules) {
            return Ok(Status {
                in_use: false,
                empty: false,
                drift: 0,
            });
        }
        let mode = self.word(rules.mode())?;
        Ok(Status {
            in_use: mode == xdpfw::INDEX_ON || mode == xdpfw::INDEX_EMPTY,
            empty: mode == xdpfw::INDEX_EMPTY,
            drift: match rules.drift() {
                Some(w) => self.word(w)?,
                None => 0,
            },
        })
    }

    fn rule_map(&self, name: &str) -> Result<MapHandle> {
        let path = self.dir.join(name);
        MapHandle::open_pinned(&path).with_context(|| format!("opening {}", path.display()))
    }

    /// Whether the rule maps of `rules` hold any entry.
    pub fn has_rules(&self, rules: Rules) -> Result<bool> {
        for name in rules.maps() {
            // A map of a later kind than the load has (`syn_ports`): none.
            if *name == xdpfw::maps::SYN_PORTS && self.syn_bits.is_none() {
                continue;
            }
            let map = self.rule_map(name)?;
            let mut key = vec![0u8; map.key_size()];
            if map.next_key(None, &mut key)? {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// What `xdpctl stats` warns about: an index off while its rule maps
    /// hold entries.
    pub fn warnings(&self) -> Result<Vec<String>> {
        let mut out = Vec::new();
        if !self.has_index(Rules::Cidr6) && self.has_rules(Rules::Cidr6)? {
            out.push(format!(
                "{}: cidr6 is looked up in its trie, whose cost grows with its prefixes: this \
                 firewall has no IPv6 CIDR index (loaded by an older xdpctl, or with odd map \
                 sizes); `xdpctl load --replace` adds it",
                self.dir.display()
            ));
        }
        for rules in Rules::ALL {
            let status = self.status(rules)?;
            if status.empty && self.has_rules(rules)? {
                out.push(format!("{}: {}", self.dir.display(), skipped_rules(rules)));
                continue;
            }
            if !self.has_index(rules) || status.in_use || !self.has_rules(rules)? {
                continue;
            }
            out.push(format!(
                "{}: the {} is off ({}): {} is looked up directly, which is slower; \
                 `xdpctl doctor` rebuilds the index",
                self.dir.display(),
                rules.index_name(),
                why_off(rules, status),
                rules.rules_name(),
            ));
        }
        Ok(out)
    }

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
        let differ = |n: usize, what: &str| {
            (n > 0).then(|| {
                format!(
                    "the {} differs from {} in {n} {what}: changed outside xdpctl, and the \
                     datapath's sampled check has not met them yet; `xdpctl doctor` rebuilds it",
                    rules.index_name(),
                    rules.rules_name()
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
                differ(n, "entries")
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
                differ(n, "entries")
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
                differ(n, "ports")
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
                differ(n, "sources")
            }
            Rules::Blocklist6 | Rules::Rate => None,
        })
    }

    /// Serializes changes to this firewall's rules and indexes: two xdpctl
    /// processes changing rules at once must not turn on an index built
    /// before the other's change.
    fn lock(&self) -> Result<pinfs::DirLock> {
        pinfs::DirLock::exclusive(&self.dir)
            .with_context(|| format!("locking {}", self.dir.display()))
    }

    /// The datapath looks up the rule maps of `rules` from now on.
    pub fn suspend(&self, rules: Rules) -> Result<()> {
        if !self.has_index(rules) {
            return Ok(());
        }
        pinfs::failpoint::step("BPF_MAP_UPDATE_ELEM");
        self.set_word(rules.mode(), xdpfw::INDEX_OFF)
    }

    /// Rebuilds the index of `rules` from its rule maps and turns it on if
    /// it fits.
    pub fn sync(&self, rules: Rules) -> Result<Synced> {
        let _lock = self.lock()?;
        self.sync_locked(rules)
    }

    fn sync_locked(&self, rules: Rules) -> Result<Synced> {
        if !self.has_index(rules) {
            return Ok(Synced::Absent);
        }
        self.suspend(rules)?;
        let synced = match rules {
            Rules::Cidr4 => self.write_cidr4()?,
            Rules::Cidr6 => self.write_cidr6()?,
            Rules::Ports => self.write_ports()?,
            Rules::Blocklist => self.write_bloom(None)?,
            // No index: the datapath looks them up unless they are empty.
            Rules::Blocklist6 | Rules::Rate => Synced::InUse { rules: 0 },
        };
        if let Synced::InUse { .. } = synced {
            self.turn_on(rules)?;
        }
        Ok(synced)
    }

    /// The end of every change: the datapath reads the index from now on,
    /// or skips the kind if its rule maps hold no rule.
    fn turn_on(&self, rules: Rules) -> Result<()> {
        let mode = if self.has_rules(rules)? {
            xdpfw::INDEX_ON
        } else {
            xdpfw::INDEX_EMPTY
        };
        pinfs::failpoint::step("BPF_MAP_UPDATE_ELEM");
        self.set_word(rules.mode(), mode)
    }

    /// Marks `rules` empty if their maps hold no rule (the index need not
    /// be built: the datapath does not read it); true if it did.
    fn mark_if_empty(&self, rules: Rules) -> Result<bool> {
        if !self.has_index(rules) || self.has_rules(rules)? {
            return Ok(false);
        }
        let _lock = self.lock()?;
        if self.has_rules(rules)? {
            return Ok(false);
        }
        pinfs::failpoint::step("BPF_MAP_UPDATE_ELEM");
        self.set_word(rules.mode(), xdpfw::INDEX_EMPTY)?;
        Ok(true)
    }

    /// After blocklist entries went (or may have): the datapath's cache of
    /// blocked sources is stale from now on.
    fn forget_blocked(&self) -> Result<()> {
        let generation = self.word(Ctl::BlockGen)?;
        pinfs::failpoint::step("BPF_MAP_UPDATE_ELEM");
        self.set_word(Ctl::BlockGen, generation.wrapping_add(1))
    }

    /// After blocklist entries were written (`added`; or, with `None`,
    /// from scratch: every entry of the blocklist): their filter bits are
    /// set and the cache forgets what it held.
    fn write_bloom(&self, added: Option<&[u8]>) -> Result<Synced> {
        let bloom = self.rule_map(xdpfw::maps::BLOOM)?;
        let words = (xdpfw::BLOOM_BITS / 64) as usize;
        if bloom.key_size() != 4
            || bloom.value_len() != 8
            || bloom.info().max_entries as usize != words
        {
            bail!(
                "{} is not the firewall's filter",
                self.dir.join(xdpfw::maps::BLOOM).display()
            );
        }
        let mut bits = vec![0u64; words];
        if added.is_some() {
            bloom.for_each(|k, v| {
                let i = u32::from_ne_bytes(k.try_into()?) as usize;
                if let Some(w) = bits.get_mut(i) {
                    *w = u64::from_ne_bytes(v.try_into()?);
                }
                Ok(true)
            })?;
        }
        let mut set = |k: &[u8]| {
            if let Ok(src) = <[u8; 4]>::try_from(k) {
                let bit = xdpfw::bloom_bit(src) as usize;
                bits[bit / 64] |= 1 << (bit % 64);
            }
        };
        let count = match added {
            Some(keys) => {
                keys.chunks_exact(4).for_each(&mut set);
                keys.len() / 4
            }
            None => {
                let list = self.rule_map(xdpfw::maps::BLOCKLIST)?;
                let mut n = 0;
                list.for_each(|k, _| {
                    set(k);
                    n += 1;
                    Ok(true)
                })?;
                n
            }
        };
        write_array(&bloom, bits.iter().map(|w| w.to_ne_bytes()))?;
        self.forget_blocked()?;
        Ok(Synced::InUse { rules: count })
    }

    /// Begins a change to the rule maps of `kinds` (the one protocol of
    /// every writer of rules: `map update/delete/clear`, `apply`, guard),
    /// `added` being the IPv4 blocklist keys it will write (packed). Call it
    /// right before the first write, and [`Change::finish`] after the last;
    /// this firewall's rules are locked in between (a `load --replace`
    /// meanwhile would build its indexes without the change).
    ///
    /// The blocklists keep their filter in use (no window where every
    /// packet pays a lookup): the bits of the keys to add are set first (a
    /// removal leaves its bits: a false positive costs one lookup), a kind
    /// marked empty is read from now on, and the datapath's cache of
    /// blocked sources forgets what it held (an entry may go). Every other
    /// kind touched, or a blocklist whose filter is off, has its index
    /// turned off (the datapath reads the rule maps) until `finish`
    /// rebuilds it. Killed in between, the rule maps are right; an index
    /// left off is only slower, and `doctor` rebuilds it.
    pub fn begin(&self, kinds: &[Rules], added: &[u8]) -> Result<Change> {
        let lock = self.lock()?;
        let mut out: Vec<(Rules, bool)> = Vec::new();
        let mut suspended = false;
        for &r in kinds {
            if out.iter().any(|(k, _)| *k == r) {
                continue;
            }
            let extend = matches!(r, Rules::Blocklist | Rules::Blocklist6 | Rules::Rate)
                && self.has_index(r)
                && self.status(r)?.in_use;
            if extend {
                if r == Rules::Blocklist {
                    if added.is_empty() {
                        self.forget_blocked()?;
                    } else {
                        // (Forgets the cache too.)
                        self.write_bloom(Some(added))?;
                    }
                }
                self.adding(r)?;
            } else {
                self.suspend(r)?;
                suspended = true;
            }
            out.push((r, extend));
        }
        if suspended {
            // A packet that read the mode word just before is done long
            // before this: the datapath's cross-check will not see the
            // change half made and call it drift.
            std::thread::sleep(Duration::from_millis(2));
        }
        Ok(Change {
            _lock: lock,
            dir: self.dir.clone(),
            kinds: out,
        })
    }

    /// After entries went from a kind whose index stayed in use: the kind
    /// is skipped from now on if its maps hold no rule left.
    fn settle_locked(&self, rules: Rules) -> Result<()> {
        if self.has_index(rules) && self.status(rules)?.in_use {
            self.turn_on(rules)?;
        }
        Ok(())
    }

    /// A kind marked empty is about to get rules: the datapath reads it
    /// from now on (its index, built or extended before this, holds them).
    fn adding(&self, rules: Rules) -> Result<()> {
        if self.has_index(rules) && self.status(rules)?.empty {
            pinfs::failpoint::step("BPF_MAP_UPDATE_ELEM");
            self.set_word(rules.mode(), xdpfw::INDEX_ON)?;
        }
        Ok(())
    }

    /// The CIDR index `cidr4` calls for.
    fn cidr4_wanted(&self) -> Result<Index> {
        Ok(Index::build(&self.cidr4_rules()?))
    }

    fn cidr4_rules(&self) -> Result<Vec<cidr4_index::Rule>> {
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

    fn write_cidr4(&self) -> Result<Synced> {
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

    fn write_cidr6(&self) -> Result<Synced> {
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
    fn cidr6_wanted(&self) -> Result<cidr6_index::Index> {
        Ok(cidr6_index::Index::build(&self.cidr6_rules()?))
    }

    fn cidr6_rules(&self) -> Result<Vec<cidr6_index::Rule>> {
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

    fn write_ports(&self) -> Result<Synced> {
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
    fn syn_bits_wanted(&self) -> Result<(Vec<u8>, usize)> {
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
    fn port_bits_wanted(&self) -> Result<[Vec<u8>; 2]> {
        Ok(self.port_bits_counted()?.0)
    }

    fn port_bits_counted(&self) -> Result<([Vec<u8>; 2], usize)> {
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
const PORT_BITS_LEN: usize = 65_536 / 8;

/// What `stats` and `doctor --check` say of a kind marked empty whose
/// rule maps hold rules (written by another tool since xdpctl's last change).
pub fn skipped_rules(rules: Rules) -> String {
    format!(
        "{} holds rules written outside xdpctl, which the datapath skips but for its sampled \
         check (one packet in 128 per CPU) until `xdpctl doctor` turns them on",
        rules.rules_name()
    )
}

/// Why an index is off, for messages.
pub fn why_off(rules: Rules, status: Status) -> String {
    if status.drift > 0 {
        format!(
            "{} was changed outside xdpctl; differences from the index the datapath found: {}",
            rules.rules_name(),
            status.drift
        )
    } else {
        format!(
            "a change to {} was interrupted, or the rules outgrew the index",
            rules.rules_name()
        )
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
        bail!("{} is not the firewall's ctl map", path.display());
    }
    set_ctl_word(&ctl, Ctl::AdmitCap, packets_per_epoch)
}

/// The firewall's admission cap (0: none, or a firewall without one).
pub fn admit_cap_of(maps: &Path) -> Result<u64> {
    let path = maps.join(xdpfw::maps::CTL);
    if !path.exists() {
        return Ok(0);
    }
    let ctl =
        MapHandle::open_pinned(&path).with_context(|| format!("opening {}", path.display()))?;
    if ctl.key_size() != 4 || ctl.value_len() != 8 || ctl.per_cpu() {
        return Ok(0);
    }
    ctl_word(&ctl, Ctl::AdmitCap)
}

/// Word `w` of a firewall's `ctl` map.
pub fn ctl_word(ctl: &MapHandle, w: Ctl) -> Result<u64> {
    let mut v = [0u8; 8];
    ctl.lookup(&(w as u32).to_ne_bytes(), &mut v)?;
    Ok(u64::from_ne_bytes(v))
}

/// Sets word `w` of a firewall's `ctl` map.
pub fn set_ctl_word(ctl: &MapHandle, w: Ctl, value: u64) -> Result<()> {
    ctl.update(
        &(w as u32).to_ne_bytes(),
        &value.to_ne_bytes(),
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

/// Writes `values` at indices 0.. of an array, in batches
/// ([`MapHandle::put_all`]).
fn write_array<const N: usize>(
    map: &MapHandle,
    values: impl Iterator<Item = [u8; N]>,
) -> Result<()> {
    let mut entries = Entries::new(4, N);
    for (i, v) in values.enumerate() {
        entries.push(&(i as u32).to_ne_bytes(), &v);
    }
    pinfs::failpoint::step("BPF_MAP_UPDATE_BATCH");
    map.put_all(&entries)?;
    Ok(())
}

/// A change to a firewall's rule maps under way, from [`Target::begin`]
/// to [`Change::finish`]; holds the firewall's lock.
#[must_use = "finish the change after its writes"]
pub struct Change {
    _lock: pinfs::DirLock,
    /// The firewall's maps directory.
    dir: PathBuf,
    /// Each kind touched, and whether its filter stayed in use.
    kinds: Vec<(Rules, bool)>,
}

impl Change {
    /// After the change's last write to the firewall at `target` (the one
    /// that began it): a blocklist whose filter stayed in use has the cache
    /// forget again and the kind settled (skipped if left empty); every
    /// other index is rebuilt and turned on (or marked empty). Returns what
    /// each rebuilt index became.
    pub fn finish(self, target: &Target) -> Result<Vec<(Rules, Synced)>> {
        debug_assert_eq!(self.dir, target.dir, "finished on another firewall");
        let mut out = Vec::new();
        for (r, extended) in &self.kinds {
            if *extended {
                if *r == Rules::Blocklist {
                    target.forget_blocked()?;
                }
                target.settle_locked(*r)?;
            } else {
                out.push((*r, target.sync_locked(*r)?));
            }
        }
        Ok(out)
    }
}

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_admission_cap_is_a_quarter_of_the_threshold_per_epoch_and_cpu() {
        // 1000 pps: 1073 packets per epoch; a quarter over 2 CPUs: 134.
        assert_eq!(admit_cap(1000.0, 2), 134);
        assert_eq!(admit_cap(1.0, 64), 1);
        assert_eq!(admit_cap(1e9, 0), 268_435_456);
    }

    #[test]
    fn rule_maps_are_told_by_name_and_type() {
        assert_eq!(Rules::of("cidr4", LPM_TRIE), Some(Rules::Cidr4));
        assert_eq!(Rules::of("cidr4", HASH), None);
        assert_eq!(Rules::of("udp_ports", HASH), Some(Rules::Ports));
        assert_eq!(Rules::of("tcp_ports", HASH), Some(Rules::Ports));
        assert_eq!(Rules::of("blocklist", HASH), Some(Rules::Blocklist));
        assert_eq!(Rules::of("blocklist6", HASH), Some(Rules::Blocklist6));
        assert_eq!(Rules::of("pps", HASH), None);
        assert_eq!(Rules::of("cidr6", LPM_TRIE), Some(Rules::Cidr6));
        assert_eq!(Rules::of_name("cidr6"), Some(Rules::Cidr6));
    }
}
