//! Guard's decisions, without a kernel: given the per-source rates of an
//! interval and what the blocklist holds, which sources to block, which to
//! unblock, which to leave alone and why. `cmd/guard.rs` applies them
//! through the firewall's maps; the tests below through a fake blocklist.
//!
//! The rules: a source over the threshold is blocked for `block_for`
//! unless it is allowed (`--allow`, the SSH client), already blocked by
//! guard, or has a blocklist entry of an operator's (blocking or not: it is
//! theirs); no more than `max_blocks` at once; expired blocks go first, so
//! they free room. Guard's entries carry [`GUARD_MARK`]; guard removes an
//! entry only while it still carries it.

use std::{
    collections::HashMap,
    fmt,
    net::{IpAddr, Ipv4Addr, Ipv6Addr},
    str::FromStr,
};

use anyhow::Result;

/// The blocklist value guard writes: non-zero (drops), and not the `1` an
/// operator types.
pub const GUARD_MARK: u8 = 0x67;

/// A source address, as the per-source counters key it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Source {
    /// IPv4.
    V4([u8; 4]),
    /// IPv6.
    V6([u8; 16]),
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::V4(a) => Ipv4Addr::from(*a).fmt(f),
            Source::V6(a) => Ipv6Addr::from(*a).fmt(f),
        }
    }
}

impl Source {
    /// The address.
    pub fn ip(self) -> IpAddr {
        match self {
            Source::V4(a) => IpAddr::from(a),
            Source::V6(a) => IpAddr::from(a),
        }
    }
}

/// An address or CIDR.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Cidr {
    /// The address.
    pub addr: IpAddr,
    /// Prefix length.
    pub len: u8,
}

impl FromStr for Cidr {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (addr, len) = s.split_once('/').map_or((s, None), |(a, l)| (a, Some(l)));
        let addr: IpAddr = addr
            .parse()
            .map_err(|_| format!("'{s}' is not an address or CIDR (like 10.0.0.0/8)"))?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let len = match len {
            None => max,
            Some(l) => l
                .parse::<u8>()
                .ok()
                .filter(|l| *l <= max)
                .ok_or_else(|| format!("'{s}': prefix length must be 0 to {max}"))?,
        };
        Ok(Cidr { addr, len })
    }
}

impl Cidr {
    /// Its LPM-trie key: the prefix length (host order), then the address
    /// (what [`Cidr::from_lpm_key`] reads back).
    pub fn lpm_key(&self) -> Vec<u8> {
        let mut key = u32::from(self.len).to_ne_bytes().to_vec();
        match self.addr {
            IpAddr::V4(a) => key.extend(a.octets()),
            IpAddr::V6(a) => key.extend(a.octets()),
        }
        key
    }

    /// The prefix of an LPM-trie key (`{prefixlen, address}`: 8 bytes for
    /// IPv4, 20 for IPv6), if it is one.
    pub fn from_lpm_key(key: &[u8]) -> Option<Cidr> {
        let len = u32::from_ne_bytes(key.get(..4)?.try_into().ok()?);
        let addr = match key.len() {
            8 => IpAddr::from(<[u8; 4]>::try_from(&key[4..]).ok()?),
            20 => IpAddr::from(<[u8; 16]>::try_from(&key[4..]).ok()?),
            _ => return None,
        };
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let len = u8::try_from(len).ok().filter(|l| *l <= max)?;
        Some(Cidr { addr, len })
    }

    /// The rule for a prefix in a rule (the policy's, `map update`'s): no
    /// host bits set, which a trie keeps but never matches on. The error
    /// names the prefix, the reason and the fix.
    pub fn check_rule(&self) -> Result<(), String> {
        let canon = self.canonical();
        if canon == *self {
            return Ok(());
        }
        Err(format!(
            "{}/{} has host bits set; use {}/{}",
            self.addr, self.len, canon.addr, canon.len
        ))
    }

    /// The prefix with its host bits cleared.
    pub fn canonical(&self) -> Cidr {
        let addr = match self.addr {
            IpAddr::V4(a) => {
                let bits = u32::from(self.len);
                let mask = if bits == 0 {
                    0
                } else {
                    u32::MAX << (32 - bits)
                };
                IpAddr::V4(Ipv4Addr::from(u32::from(a) & mask))
            }
            IpAddr::V6(a) => {
                let bits = u32::from(self.len);
                let mask = if bits == 0 {
                    0
                } else {
                    u128::MAX << (128 - bits)
                };
                IpAddr::V6(Ipv6Addr::from(u128::from(a) & mask))
            }
        };
        Cidr {
            addr,
            len: self.len,
        }
    }

    /// Whether `addr` is in this prefix.
    pub fn contains(&self, addr: IpAddr) -> bool {
        match (addr, self.addr) {
            (IpAddr::V4(a), IpAddr::V4(n)) => {
                let bits = u32::from(self.len);
                let mask = if bits == 0 {
                    0
                } else {
                    u32::MAX << (32 - bits)
                };
                u32::from(a) & mask == u32::from(n) & mask
            }
            (IpAddr::V6(a), IpAddr::V6(n)) => {
                let bits = u32::from(self.len);
                let mask = if bits == 0 {
                    0
                } else {
                    u128::MAX << (128 - bits)
                };
                u128::from(a) & mask == u128::from(n) & mask
            }
            _ => false,
        }
    }
}

/// What inserting guard's entry did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Inserted {
    /// The source is blocked, by guard.
    Blocked,
    /// Someone else made an entry meanwhile: theirs.
    Taken,
    /// The blocklist is full.
    Full,
}

/// What guard needs of the firewall: its blocklist and guard's records.
pub trait Blocklist {
    /// The blocklist value of `src`, if it has an entry.
    fn entry(&mut self, src: Source) -> Result<Option<u8>>;
    /// Records the block with its expiry, then inserts [`GUARD_MARK`] for
    /// `src` if it has no entry (`BPF_NOEXIST`); forgets the record again
    /// unless it was inserted.
    fn block(&mut self, src: Source, expiry_ms: u64) -> Result<Inserted>;
    /// Removes `src`'s entry if it still carries [`GUARD_MARK`] (returns
    /// whether it did), and guard's record of it.
    fn unblock(&mut self, src: Source) -> Result<bool>;
}

/// Something guard did or decided, for its log.
#[derive(Clone, Debug, PartialEq)]
pub struct Event {
    /// `block`, `would-block`, `unblock` or `skip`.
    pub action: &'static str,
    /// The source.
    pub src: Source,
    /// Its rate, when a rate was the reason.
    pub rate: Option<f64>,
    /// When a block expires, Unix ms.
    pub expiry: Option<u64>,
    /// Why, in a few words (empty for a plain block).
    pub why: &'static str,
}

/// Guard's settings.
#[derive(Clone, Debug)]
pub struct Settings {
    /// Packets per second over which a source is blocked.
    pub threshold: f64,
    /// How long, in ms.
    pub block_for_ms: u64,
    /// Never blocked.
    pub allow: Vec<Cidr>,
    /// At most this many of guard's blocks at once.
    pub max_blocks: usize,
    /// Decide, but change nothing.
    pub dry_run: bool,
}

/// What an event of `action` (`block`, `would-block`, `unblock`) is
/// called when guard limits rather than blocks (`limiting`).
pub fn action_name(limiting: bool, action: &'static str) -> &'static str {
    match (limiting, action) {
        (true, "block") => "limit",
        (true, "would-block") => "would-limit",
        (true, "unblock") => "unlimit",
        _ => action,
    }
}

/// Guard's state between intervals: its active blocks and their expiry.
#[derive(Clone, Debug, Default)]
pub struct Guard {
    /// Active blocks: source → expiry (Unix ms).
    pub active: HashMap<Source, u64>,
}

impl Guard {
    /// Ends the blocks whose time is up.
    pub fn expire(&mut self, fw: &mut dyn Blocklist, now_ms: u64) -> Result<Vec<Event>> {
        let mut expired: Vec<Source> = self
            .active
            .iter()
            .filter(|(_, e)| **e <= now_ms)
            .map(|(s, _)| *s)
            .collect();
        expired.sort();
        let mut events = Vec::new();
        for src in expired {
            self.active.remove(&src);
            fw.unblock(src)?;
            events.push(Event {
                action: "unblock",
                src,
                rate: None,
                expiry: None,
                why: "expired",
            });
        }
        Ok(events)
    }

    /// One interval: `rates` are the sources over the threshold, highest
    /// first.
    pub fn pass(
        &mut self,
        fw: &mut dyn Blocklist,
        settings: &Settings,
        rates: &[(Source, f64)],
        now_ms: u64,
    ) -> Result<Vec<Event>> {
        let mut events = Vec::new();
        for &(src, rate) in rates {
            if rate < settings.threshold
                || self.active.contains_key(&src)
                || settings.allow.iter().any(|c| c.contains(src.ip()))
            {
                continue;
            }
            // An entry an operator made (blocking or not) is theirs.
            if fw.entry(src)?.is_some() {
                continue;
            }
            let skip = |why| Event {
                action: "skip",
                src,
                rate: Some(rate),
                expiry: None,
                why,
            };
            if self.active.len() >= settings.max_blocks {
                events.push(skip("--max-blocks reached"));
                continue;
            }
            let expiry = now_ms.saturating_add(settings.block_for_ms);
            if settings.dry_run {
                events.push(Event {
                    action: "would-block",
                    src,
                    rate: Some(rate),
                    expiry: Some(expiry),
                    why: "dry run",
                });
                continue;
            }
            match fw.block(src, expiry)? {
                Inserted::Blocked => {
                    self.active.insert(src, expiry);
                    events.push(Event {
                        action: "block",
                        src,
                        rate: Some(rate),
                        expiry: Some(expiry),
                        why: "",
                    });
                }
                Inserted::Taken => {}
                Inserted::Full => events.push(skip("the blocklist is full")),
            }
        }
        Ok(events)
    }

    /// Guard stops: its blocks go, unless kept.
    pub fn stop(&mut self, fw: &mut dyn Blocklist, keep: bool) -> Result<Vec<Event>> {
        if keep {
            return Ok(Vec::new());
        }
        let mut srcs: Vec<Source> = self.active.drain().map(|(s, _)| s).collect();
        srcs.sort();
        let mut events = Vec::new();
        for src in srcs {
            fw.unblock(src)?;
            events.push(Event {
                action: "unblock",
                src,
                rate: None,
                expiry: None,
                why: "guard stopped",
            });
        }
        Ok(events)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    /// The firewall's blocklist and guard's records, in memory.
    #[derive(Default)]
    struct Fake {
        blocklist: BTreeMap<Source, u8>,
        records: BTreeMap<Source, u64>,
        capacity: usize,
    }

    impl Blocklist for Fake {
        fn entry(&mut self, src: Source) -> Result<Option<u8>> {
            Ok(self.blocklist.get(&src).copied())
        }
        fn block(&mut self, src: Source, expiry_ms: u64) -> Result<Inserted> {
            self.records.insert(src, expiry_ms);
            if self.blocklist.contains_key(&src) {
                self.records.remove(&src);
                return Ok(Inserted::Taken);
            }
            if self.blocklist.len() >= self.capacity {
                self.records.remove(&src);
                return Ok(Inserted::Full);
            }
            self.blocklist.insert(src, GUARD_MARK);
            Ok(Inserted::Blocked)
        }
        fn unblock(&mut self, src: Source) -> Result<bool> {
            let mine = self.blocklist.get(&src) == Some(&GUARD_MARK);
            if mine {
                self.blocklist.remove(&src);
            }
            self.records.remove(&src);
            Ok(mine)
        }
    }

    fn v4(last: u8) -> Source {
        Source::V4([203, 0, 113, last])
    }

    fn settings() -> Settings {
        Settings {
            threshold: 1000.0,
            block_for_ms: 60_000,
            allow: vec!["203.0.113.200/30".parse().unwrap()],
            max_blocks: 2,
            dry_run: false,
        }
    }

    fn fake() -> Fake {
        Fake {
            capacity: 100,
            ..Fake::default()
        }
    }

    #[test]
    fn blocks_over_the_threshold_and_never_what_is_allowed_or_an_operators() {
        let mut fw = fake();
        // An operator's entries, one that blocks and one that does not.
        fw.blocklist.insert(v4(7), 1);
        fw.blocklist.insert(v4(8), 0);
        let mut g = Guard::default();
        let rates = [
            (v4(1), 5000.0),
            (v4(201), 4000.0), // allowed
            (v4(7), 3000.0),   // the operator's
            (v4(8), 3000.0),   // the operator's, non-blocking
            (v4(2), 999.0),    // under the threshold
        ];
        let events = g.pass(&mut fw, &settings(), &rates, 1_000).unwrap();
        assert_eq!(events.len(), 1, "{events:?}");
        assert_eq!((events[0].action, events[0].src), ("block", v4(1)));
        assert_eq!(events[0].expiry, Some(61_000));
        assert_eq!(fw.blocklist[&v4(1)], GUARD_MARK);
        assert_eq!(fw.blocklist[&v4(7)], 1, "an operator's entry changed");
        assert_eq!(fw.blocklist[&v4(8)], 0, "an operator's entry changed");
        assert!(!fw.blocklist.contains_key(&v4(201)));
        assert_eq!(fw.records.keys().copied().collect::<Vec<_>>(), [v4(1)]);
    }

    #[test]
    fn max_blocks_and_a_full_blocklist_skip_with_a_reason() {
        let mut fw = fake();
        let mut g = Guard::default();
        let rates: Vec<(Source, f64)> = (1..=4).map(|i| (v4(i), 9000.0)).collect();
        let events = g.pass(&mut fw, &settings(), &rates, 0).unwrap();
        let actions: Vec<(&str, &str)> = events.iter().map(|e| (e.action, e.why)).collect();
        assert_eq!(
            actions,
            [
                ("block", ""),
                ("block", ""),
                ("skip", "--max-blocks reached"),
                ("skip", "--max-blocks reached")
            ]
        );
        let mut fw = Fake {
            capacity: 1,
            ..Fake::default()
        };
        let mut g = Guard::default();
        let events = g.pass(&mut fw, &settings(), &rates, 0).unwrap();
        assert_eq!(events[1].why, "the blocklist is full");
        assert!(fw.records.len() == 1, "a failed block leaves no record");
    }

    #[test]
    fn expiry_frees_room_and_removes_only_guards_own_entries() {
        let mut fw = fake();
        let mut g = Guard::default();
        let s = settings();
        g.pass(&mut fw, &s, &[(v4(1), 5000.0), (v4(2), 5000.0)], 0)
            .unwrap();
        // The operator takes one over meanwhile.
        fw.blocklist.insert(v4(2), 1);
        assert!(g.expire(&mut fw, 59_999).unwrap().is_empty());
        let events = g.expire(&mut fw, 60_000).unwrap();
        assert_eq!(events.len(), 2);
        assert!(!fw.blocklist.contains_key(&v4(1)));
        assert_eq!(fw.blocklist[&v4(2)], 1, "removed the operator's entry");
        assert!(fw.records.is_empty());
        // Room again under --max-blocks.
        let events = g.pass(&mut fw, &s, &[(v4(3), 5000.0)], 60_000).unwrap();
        assert_eq!(events[0].action, "block");
    }

    #[test]
    fn a_dry_run_changes_nothing_and_stop_removes_or_keeps() {
        let mut fw = fake();
        let mut g = Guard::default();
        let dry = Settings {
            dry_run: true,
            ..settings()
        };
        let events = g.pass(&mut fw, &dry, &[(v4(1), 5000.0)], 0).unwrap();
        assert_eq!(events[0].action, "would-block");
        assert!(fw.blocklist.is_empty() && fw.records.is_empty() && g.active.is_empty());

        g.pass(&mut fw, &settings(), &[(v4(1), 5000.0)], 0).unwrap();
        let mut kept = g.clone();
        assert!(kept.stop(&mut fw, true).unwrap().is_empty());
        assert_eq!(fw.blocklist.len(), 1);
        let events = g.stop(&mut fw, false).unwrap();
        assert_eq!(events[0].why, "guard stopped");
        assert!(fw.blocklist.is_empty() && fw.records.is_empty());
    }

    #[test]
    fn cidrs_match_by_prefix_in_both_families() {
        let net: Cidr = "10.1.0.0/16".parse().unwrap();
        assert!(net.contains("10.1.200.3".parse().unwrap()));
        assert!(!net.contains("10.2.0.1".parse().unwrap()));
        assert!(!net.contains("2001:db8::1".parse().unwrap()));
        let all: Cidr = "::/0".parse().unwrap();
        assert!(all.contains("2001:db8::1".parse().unwrap()));
        assert!("10.0.0.0/33".parse::<Cidr>().is_err());
    }
}
