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
use xdp_progs::{
    cidr4_index, cidr6_index,
    xdpfw::{self, Ctl},
};

use super::map::MapHandle;
use crate::model::policy::Entries;

use crate::kernel::map::LPM_TRIE;

mod derive;
mod indexes;
mod verify;
mod words;

use derive::PORT_BITS_LEN;
pub use indexes::{Indexes, rebuild, too_big};
pub use words::{admit_cap, admit_cap_of, ctl_word, set_admit_cap, set_ctl_word};
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
}

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
