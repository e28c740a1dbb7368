//! The firewall's rule maps as data: packed entries, what a value means
//! (a value 0 is a rule only in the LPM tries), the difference between
//! what a map holds and what it should, and that difference as bytes for
//! the journal. `apply`, `save` and the agent decide through these.

use std::{collections::BTreeMap, net::IpAddr};

use crate::model::guard::Cidr;

/// A map's entries, packed: keys of one size, values of one size, in two
/// buffers (as `BPF_MAP_*_BATCH` takes them). Sorted by key once
/// [`sorted`](Entries::sorted).
///
/// NB: packed rather than a vector of small vectors: a million-entry
/// blocklist is then two allocations, not two million.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Entries {
    /// Bytes of a key.
    pub key_size: usize,
    /// Bytes of a value (0 for a list of keys).
    pub value_size: usize,
    /// The keys, back to back.
    pub keys: Vec<u8>,
    /// The values, back to back.
    pub values: Vec<u8>,
}

impl Entries {
    /// No entries yet.
    pub fn new(key_size: usize, value_size: usize) -> Self {
        Entries {
            key_size,
            value_size,
            keys: Vec::new(),
            values: Vec::new(),
        }
    }

    /// How many.
    pub fn len(&self) -> usize {
        self.keys.len().checked_div(self.key_size).unwrap_or(0)
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// The `i`th key.
    pub fn key(&self, i: usize) -> &[u8] {
        &self.keys[i * self.key_size..(i + 1) * self.key_size]
    }

    /// The `i`th value.
    pub fn value(&self, i: usize) -> &[u8] {
        &self.values[i * self.value_size..(i + 1) * self.value_size]
    }

    /// Appends one.
    pub fn push(&mut self, key: &[u8], value: &[u8]) {
        self.keys.extend_from_slice(key);
        self.values.extend_from_slice(value);
    }

    /// Every entry.
    pub fn iter(&self) -> impl Iterator<Item = (&[u8], &[u8])> {
        (0..self.len()).map(|i| (self.key(i), self.value(i)))
    }

    /// Sorted by key; of equal keys, the last pushed stays.
    pub fn sorted(self) -> Self {
        let n = self.len();
        let mut order: Vec<u32> = (0..n as u32).collect();
        if self.key_size <= 8 {
            // Keys as big-endian integers: no byte-by-byte compare.
            let num = |i: u32| {
                let mut b = [0u8; 8];
                b[..self.key_size].copy_from_slice(self.key(i as usize));
                u64::from_be_bytes(b)
            };
            let mut keyed: Vec<(u64, std::cmp::Reverse<u32>)> = order
                .iter()
                .map(|&i| (num(i), std::cmp::Reverse(i)))
                .collect();
            keyed.sort_unstable();
            keyed.dedup_by_key(|(k, _)| *k);
            order = keyed
                .into_iter()
                .map(|(_, std::cmp::Reverse(i))| i)
                .collect();
        } else {
            order.sort_unstable_by(|&a, &b| {
                self.key(a as usize)
                    .cmp(self.key(b as usize))
                    .then(b.cmp(&a))
            });
            order.dedup_by(|a, b| self.key(*a as usize) == self.key(*b as usize));
        }
        let mut out = Entries::new(self.key_size, self.value_size);
        out.keys.reserve(order.len() * self.key_size);
        out.values.reserve(order.len() * self.value_size);
        for i in order {
            out.push(self.key(i as usize), self.value(i as usize));
        }
        out
    }
}

/// The firewall's maps whose keys are ports, which [`check_rule_port`]
/// rules.
pub const PORT_MAPS: [&str; 3] = ["udp_ports", "tcp_ports", "syn_ports"];

/// The firewall's rule maps that a policy sets.
pub const RULE_MAPS: [&str; 10] = [
    "blocklist",
    "blocklist6",
    "cidr4",
    "cidr6",
    "udp_ports",
    "tcp_ports",
    "config",
    "rate4",
    "rate6",
    "syn_ports",
];

/// The rule maps a firewall loaded by an older xdpctl may lack (it has
/// none of their rules, and takes none until `load --replace`).
pub const OPTIONAL_RULE_MAPS: [&str; 3] = ["rate4", "rate6", "syn_ports"];

/// Map name → entries.
pub type RuleMaps = BTreeMap<String, Entries>;

/// Whether a rule map's entry of value 0 is a rule: in the LPM tries it
/// passes a prefix a shorter one drops (the policy's `cidr_except`);
/// elsewhere it drops nothing and is as good as absent.
pub fn zero_is_rule(map: &str) -> bool {
    map.starts_with("cidr")
}

/// Whether an entry of rule map `map` of value `value` is a rule (see
/// [`zero_is_rule`]): a port of `syn_ports` written 0 protects nothing.
pub fn is_rule(map: &str, value: &[u8]) -> bool {
    zero_is_rule(map) || value.iter().any(|b| *b != 0)
}

/// A rule map's entry as a policy says it: `203.0.113.5`,
/// `198.51.100.0/24`, `53`, `drop_icmp=1 drop_icmp6_echo=0`; a value other
/// than 1 follows (`= 0`, an exception or no rule). Bytes it cannot read
/// show as hex.
pub fn entry_text(map: &str, key: &[u8], value: &[u8]) -> String {
    let hex = |b: &[u8]| b.iter().map(|x| format!("{x:02x}")).collect::<String>();
    let key_text = match (map, key.len()) {
        ("blocklist", 4) => <[u8; 4]>::try_from(key)
            .ok()
            .map(|a| IpAddr::from(a).to_string()),
        ("blocklist6", 16) => <[u8; 16]>::try_from(key)
            .ok()
            .map(|a| IpAddr::from(a).to_string()),
        ("cidr4" | "cidr6", _) => Cidr::from_lpm_key(key).map(|c| format!("{}/{}", c.addr, c.len)),
        ("udp_ports" | "tcp_ports" | "syn_ports", 2) => {
            Some(u16::from_be_bytes([key[0], key[1]]).to_string())
        }
        ("rate4" | "rate6", _) => {
            // A removal has no value: the prefix says which.
            if value.is_empty() {
                return Cidr::from_lpm_key(key).map_or_else(
                    || format!("0x{}", hex(key)),
                    |c| format!("{}/{}", c.addr, c.len),
                );
            }
            return crate::model::rate::RateLimit::of_entry(key, value).map_or_else(
                || format!("0x{} = 0x{}", hex(key), hex(value)),
                |l| serde_json::to_string(&l).unwrap_or_default(),
            );
        }
        ("config", _) if value.len() == 2 => {
            return format!("drop_icmp={} drop_icmp6_echo={}", value[0], value[1]);
        }
        _ => None,
    }
    .unwrap_or_else(|| format!("0x{}", hex(key)));
    match value {
        [] | [1] => key_text,
        [v] => format!("{key_text} = {v}"),
        v => format!("{key_text} = 0x{}", hex(v)),
    }
}

/// How one map must change to hold what the policy says.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MapDelta {
    /// Entries to write (new or changed).
    pub put: Entries,
    /// Keys to remove (`value_size` 0).
    pub remove: Entries,
}

impl MapDelta {
    fn new(key_size: usize, value_size: usize) -> Self {
        MapDelta {
            put: Entries::new(key_size, value_size),
            remove: Entries::new(key_size, 0),
        }
    }

    /// Whether nothing changes.
    pub fn is_empty(&self) -> bool {
        self.put.is_empty() && self.remove.is_empty()
    }
}

/// The byte of a rule map's value that says who wrote it (guard's entries
/// carry its mark there): a rate limit's `owner`, else the first byte.
fn owner(value: &[u8]) -> Option<u8> {
    if value.len() == crate::model::rate::VALUE_LEN {
        value.get(crate::model::rate::OWNER_AT).copied()
    } else {
        value.first().copied()
    }
}

/// Whether two values of a rule map mean the same rule: every byte of a
/// rule's value is a switch, on when it is not 0.
fn same_rule(live: &[u8], want: &[u8], keep: Option<u8>) -> bool {
    // A rate limit's value: the rule, then the datapath's buckets.
    if want.len() == crate::model::rate::VALUE_LEN {
        return crate::model::rate::same_rule(live, want)
            && keep.is_none_or(|m| owner(live) != Some(m));
    }
    live == want
        || (live.len() == want.len()
            && keep.is_none_or(|m| live.first() != Some(&m))
            && live.iter().zip(want).all(|(a, b)| (*a != 0) == (*b != 0)))
}

/// The difference between what a rule map holds (`live`) and what it
/// should (`want`), both sorted by key. Entries whose value is `keep` are
/// another writer's (guard's) and stay, and so do entries of value 0 where
/// that is no rule (`zero_is_rule` false); a value that means the same rule
/// as the wanted one (5 for 1: both drop) is left as it is. Also returns
/// the inverse: what puts the map back as it was.
pub fn delta(
    live: &Entries,
    want: &Entries,
    keep: Option<u8>,
    zero_is_rule: bool,
) -> (MapDelta, MapDelta) {
    let (ks, vs) = (
        want.key_size.max(live.key_size),
        want.value_size.max(live.value_size),
    );
    let mut d = MapDelta::new(ks, vs);
    let mut undo = MapDelta::new(ks, vs);
    let (nl, nw) = (live.len(), want.len());
    let (mut i, mut j) = (0, 0);
    while i < nl || j < nw {
        let order = match (i < nl, j < nw) {
            (true, true) => live.key(i).cmp(want.key(j)),
            (true, false) => std::cmp::Ordering::Less,
            _ => std::cmp::Ordering::Greater,
        };
        match order {
            std::cmp::Ordering::Equal => {
                if !same_rule(live.value(i), want.value(j), keep) {
                    d.put.push(want.key(j), want.value(j));
                    undo.put.push(live.key(i), live.value(i));
                }
                i += 1;
                j += 1;
            }
            std::cmp::Ordering::Less => {
                let value = live.value(i);
                let theirs = keep.is_some_and(|m| owner(value) == Some(m));
                let no_rule = !zero_is_rule && value.iter().all(|b| *b == 0);
                if !theirs && !no_rule {
                    d.remove.push(live.key(i), &[]);
                    undo.put.push(live.key(i), live.value(i));
                }
                i += 1;
            }
            std::cmp::Ordering::Greater => {
                d.put.push(want.key(j), want.value(j));
                undo.remove.push(want.key(j), &[]);
                j += 1;
            }
        }
    }
    (d, undo)
}

/// Changes to rule maps as bytes, kept in a journal's scratch while an
/// apply runs: per map `name\0`, then the puts (`key_size value_size count`,
/// the keys, the values) and the removes (`key_size count`, the keys).
pub fn encode(deltas: &[(String, MapDelta)]) -> Vec<u8> {
    let mut out = Vec::new();
    let u32_ = |out: &mut Vec<u8>, n: usize| out.extend((n as u32).to_le_bytes());
    for (name, d) in deltas {
        out.extend(name.as_bytes());
        out.push(0);
        u32_(&mut out, d.put.key_size);
        u32_(&mut out, d.put.value_size);
        u32_(&mut out, d.put.len());
        out.extend(&d.put.keys);
        out.extend(&d.put.values);
        u32_(&mut out, d.remove.key_size);
        u32_(&mut out, d.remove.len());
        out.extend(&d.remove.keys);
    }
    out
}

/// The inverse of [`encode`].
pub fn decode(mut b: &[u8]) -> Option<Vec<(String, MapDelta)>> {
    fn take(b: &mut &[u8], n: usize) -> Option<Vec<u8>> {
        let head = b.get(..n)?.to_vec();
        *b = &b[n..];
        Some(head)
    }
    fn u32_(b: &mut &[u8]) -> Option<usize> {
        Some(u32::from_le_bytes(take(b, 4)?.try_into().ok()?) as usize)
    }
    let mut out = Vec::new();
    while !b.is_empty() {
        let end = b.iter().position(|c| *c == 0)?;
        let name = String::from_utf8(take(&mut b, end)?).ok()?;
        take(&mut b, 1)?;
        let (ks, vs, n) = (u32_(&mut b)?, u32_(&mut b)?, u32_(&mut b)?);
        let put = Entries {
            key_size: ks,
            value_size: vs,
            keys: take(&mut b, ks.checked_mul(n)?)?,
            values: take(&mut b, vs.checked_mul(n)?)?,
        };
        let (ks, n) = (u32_(&mut b)?, u32_(&mut b)?);
        let remove = Entries {
            key_size: ks,
            value_size: 0,
            keys: take(&mut b, ks.checked_mul(n)?)?,
            values: Vec::new(),
        };
        out.push((name, MapDelta { put, remove }));
    }
    Some(out)
}
