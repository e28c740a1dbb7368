//! Counters per rule (`stats --rules`, `save --hits`, the agent): what the
//! datapath counted in `rule_hits` and `hit_cache` (see `xdpfw.h`), added
//! up per rule and joined with the rules the maps hold, so a rule never
//! hit shows as such. Pure: the reads are `ops::rulehits`'.

use std::{collections::HashMap, net::IpAddr};

use serde::Serialize;
use xdp_progs::xdpfw::{HitSlot, Hits, RULE_LEN_UNKNOWN, RuleKey, RuleKind};

use crate::model::guard::Cidr;

/// Hits per rule, summed over CPUs and over the hash and the cache.
#[derive(Debug, Default)]
pub struct Totals(HashMap<RuleKey, Hits>);

impl Totals {
    /// Adds one CPU's counts for `key` (from `rule_hits` or a cache slot).
    pub fn add(&mut self, key: RuleKey, hits: &Hits) {
        if key.kind == 0 || hits.packets == 0 {
            return;
        }
        let t = self.0.entry(key).or_default();
        t.packets = t.packets.wrapping_add(hits.packets);
        t.bytes = t.bytes.wrapping_add(hits.bytes);
        t.last_ns = t.last_ns.max(hits.last_ns);
    }

    /// Adds one CPU's `hit_cache` slot.
    pub fn add_slot(&mut self, slot: &HitSlot) {
        self.add(slot.rule, &slot.hits);
    }

    /// The counts of a rule (zero if never hit).
    pub fn get(&self, key: &RuleKey) -> Hits {
        self.0.get(key).copied().unwrap_or_default()
    }

    /// Every rule with hits.
    pub fn iter(&self) -> impl Iterator<Item = (&RuleKey, &Hits)> {
        self.0.iter()
    }
}

/// The `rule_hits` key of a rule map's entry (`map`'s key bytes), if the
/// map is a rule map.
pub fn key_of(map: &str, key: &[u8]) -> Option<RuleKey> {
    let mut k = RuleKey::default();
    match (map, key.len()) {
        ("udp_ports" | "tcp_ports" | "syn_ports", 2) => {
            k.kind = match map {
                "udp_ports" => RuleKind::UdpPort,
                "tcp_ports" => RuleKind::TcpPort,
                _ => RuleKind::SynPort,
            } as u8;
            k.port = [key[0], key[1]];
        }
        ("blocklist", 4) => {
            k.kind = RuleKind::Blocklist as u8;
            k.prefixlen = 32;
            k.addr[..4].copy_from_slice(key);
        }
        ("blocklist6", 16) => {
            k.kind = RuleKind::Blocklist6 as u8;
            k.prefixlen = 128;
            k.addr.copy_from_slice(key);
        }
        ("cidr4" | "cidr6", _) => {
            let c = Cidr::from_lpm_key(key)?.canonical();
            k.prefixlen = c.len;
            match c.addr {
                IpAddr::V4(a) => {
                    k.kind = RuleKind::Cidr4 as u8;
                    k.addr[..4].copy_from_slice(&a.octets());
                }
                IpAddr::V6(a) => {
                    k.kind = RuleKind::Cidr6 as u8;
                    k.addr.copy_from_slice(&a.octets());
                }
            }
        }
        _ => return None,
    }
    Some(k)
}

/// A rule as a policy and `capture` name it, without its map: `53`,
/// `203.0.113.5`, `198.51.100.0/24`; a CIDR hit the trie decided while
/// the index was off is `(prefix not known)`.
pub fn rule_text(key: &RuleKey) -> String {
    match (RuleKind::from_u8(key.kind), map_key(key)) {
        (Some(kind), Some(k)) => crate::model::rulemaps::entry_text(kind.map(), &k, &[1]),
        (Some(RuleKind::Cidr4 | RuleKind::Cidr6), None) => "(prefix not known)".into(),
        _ => format!("kind {}", key.kind),
    }
}

/// The key of the rule map entry a `rule_hits` key counts (the inverse of
/// [`key_of`]); `None` for a CIDR hit whose prefix is not known.
pub fn map_key(key: &RuleKey) -> Option<Vec<u8>> {
    let lpm = |n: usize| {
        let mut k = u32::from(key.prefixlen).to_ne_bytes().to_vec();
        k.extend_from_slice(&key.addr[..n]);
        k
    };
    Some(match RuleKind::from_u8(key.kind)? {
        RuleKind::UdpPort | RuleKind::TcpPort | RuleKind::SynPort => key.port.to_vec(),
        RuleKind::Blocklist => key.addr[..4].to_vec(),
        RuleKind::Blocklist6 => key.addr.to_vec(),
        _ if key.prefixlen == RULE_LEN_UNKNOWN => return None,
        RuleKind::Cidr4 => lpm(4),
        RuleKind::Cidr6 => lpm(16),
    })
}

/// A `struct xdpfw_rule` from its 20 bytes (zeros if fewer).
pub fn key_from_bytes(b: &[u8]) -> RuleKey {
    let mut k = RuleKey::default();
    if b.len() >= 20 {
        k.kind = b[0];
        k.prefixlen = b[1];
        k.port = [b[2], b[3]];
        k.addr.copy_from_slice(&b[4..20]);
    }
    k
}

/// The 20 bytes of a `struct xdpfw_rule`.
pub fn key_bytes(k: &RuleKey) -> [u8; 20] {
    let mut b = [0u8; 20];
    b[0] = k.kind;
    b[1] = k.prefixlen;
    b[2..4].copy_from_slice(&k.port);
    b[4..].copy_from_slice(&k.addr);
    b
}

/// What a rule does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Drops what it matches.
    Drop,
    /// A CIDR prefix of value 0: passes what it matches (a shorter prefix
    /// would drop it).
    Exception,
    /// A blocklist entry guard made (it goes when the block expires).
    Guard,
}

/// One rule with its counts.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RuleHit {
    /// The rule map.
    pub map: &'static str,
    /// The rule as a policy writes it.
    pub rule: String,
    /// What it does.
    pub role: Role,
    /// Its `rule_hits` key (the order of the list).
    #[serde(skip)]
    pub key: RuleKey,
    /// Whether a rule map holds it now (a rule removed since keeps its
    /// counts until the load goes).
    pub present: bool,
    /// Packets it matched.
    pub packets: u64,
    /// Their bytes.
    pub bytes: u64,
    /// When it matched last, ns since the Unix epoch; `None`: never.
    pub last_unix_ns: Option<i128>,
}

/// The role of a rule map's entry of value `value`.
pub fn role_of(key: &RuleKey, value: u8) -> Role {
    match RuleKind::from_u8(key.kind) {
        Some(RuleKind::Cidr4 | RuleKind::Cidr6) if value == 0 => Role::Exception,
        Some(RuleKind::Blocklist | RuleKind::Blocklist6)
            if value == crate::model::guard::GUARD_MARK =>
        {
            Role::Guard
        }
        _ => Role::Drop,
    }
}

/// Joins the rules the maps hold (`rule_hits` keys and their values) with
/// the counts: every rule once, never-hit ones with zeros, and counted
/// rules no map holds any more (or not attributable) marked absent.
/// `offset_ns` turns the datapath's CLOCK_MONOTONIC_COARSE times into Unix
/// times.
pub fn join(rules: &[(RuleKey, u8)], totals: &Totals, offset_ns: i128) -> Vec<RuleHit> {
    let mut out = Vec::with_capacity(rules.len());
    let mut seen = std::collections::HashSet::with_capacity(rules.len());
    let row = |key: &RuleKey, h: Hits, present: bool, role: Role| RuleHit {
        map: RuleKind::from_u8(key.kind).map_or("?", RuleKind::map),
        rule: rule_text(key),
        role,
        key: *key,
        present,
        packets: h.packets,
        bytes: h.bytes,
        last_unix_ns: (h.packets > 0).then(|| i128::from(h.last_ns) + offset_ns),
    };
    for (key, value) in rules {
        if seen.insert(*key) {
            out.push(row(key, totals.get(key), true, role_of(key, *value)));
        }
    }
    for (key, h) in totals.iter() {
        if !seen.contains(key) {
            out.push(row(key, *h, false, Role::Drop));
        }
    }
    out
}

/// Which rules to list.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Select {
    /// Only rules never hit.
    pub unused: bool,
    /// Only rules not hit in this many ns before `now_unix_ns` (never-hit
    /// ones included).
    pub idle_ns: Option<u64>,
    /// At most this many, the most hit first.
    pub top: Option<usize>,
    /// Also rules no map holds any more (their counts stay until the load
    /// goes, or a reset).
    pub removed: bool,
}

/// The rules `sel` wants, ordered: the most packets first, then by map
/// and rule (never-hit rules in map order, addresses in numeric order, so
/// a list to prune reads well).
pub fn select(mut rows: Vec<RuleHit>, sel: Select, now_unix_ns: i128) -> Vec<RuleHit> {
    rows.retain(|r| {
        (sel.removed || r.present)
            && (!sel.unused || r.packets == 0)
            && sel.idle_ns.is_none_or(|idle| {
                r.last_unix_ns
                    .is_none_or(|t| now_unix_ns - t >= i128::from(idle))
            })
    });
    let kind_order = |m: &str| RuleKind::ALL.iter().position(|k| k.map() == m);
    rows.sort_by(|a, b| {
        b.packets
            .cmp(&a.packets)
            .then(kind_order(a.map).cmp(&kind_order(b.map)))
            .then(a.key.addr.cmp(&b.key.addr))
            .then(a.key.prefixlen.cmp(&b.key.prefixlen))
            .then(u16::from_be_bytes(a.key.port).cmp(&u16::from_be_bytes(b.key.port)))
    });
    if let Some(n) = sel.top {
        rows.truncate(n);
    }
    rows
}

/// Per-rule rates between two samples (packets per second; 0 where `dt`
/// is 0: no earlier sample), the highest `limit` first, then the most
/// hit: the agent's bounded series.
pub fn top_rates(
    prev: &HashMap<(&'static str, String), u64>,
    now: &[RuleHit],
    dt: f64,
    limit: usize,
) -> Vec<(RuleHit, f64)> {
    let mut out: Vec<(RuleHit, f64)> = now
        .iter()
        .filter(|r| r.packets > 0)
        .map(|r| {
            let was = prev.get(&(r.map, r.rule.clone())).copied().unwrap_or(0);
            let delta = r.packets.checked_sub(was).unwrap_or(r.packets);
            let rate = if dt > 0.0 { delta as f64 / dt } else { 0.0 };
            (r.clone(), rate)
        })
        .collect();
    out.sort_by(|a, b| {
        b.1.total_cmp(&a.1)
            .then(b.0.packets.cmp(&a.0.packets))
            .then(a.0.rule.cmp(&b.0.rule))
    });
    out.truncate(limit);
    out
}

/// "never", or how long ago: `12s`, `5m`, `3h`, `2d` (rounded down).
pub fn ago(last_unix_ns: Option<i128>, now_unix_ns: i128) -> String {
    let Some(t) = last_unix_ns else {
        return "never".into();
    };
    let s = ((now_unix_ns - t).max(0) / 1_000_000_000) as u64;
    match s {
        0..60 => format!("{s}s ago"),
        60..3600 => format!("{}m ago", s / 60),
        3600..86_400 => format!("{}h ago", s / 3600),
        _ => format!("{}d ago", s / 86_400),
    }
}

/// The policy section a rule map's rules are saved under (`blocklist` for
/// both blocklists, `cidr` for both tries; value-0 prefixes are under
/// `cidr_except`, looked up as `cidr`).
fn section(map: &str) -> &str {
    match map {
        "blocklist6" => "blocklist",
        "cidr4" | "cidr6" => "cidr",
        m => m,
    }
}

/// A saved policy's YAML with each rule's counts as a comment at the end of
/// its line (`save --hits`): `- 203.0.113.5  # 1200 packets, last hit
/// 2026-12-07T04:00:00Z`, or `# never hit`. `rfc3339` turns Unix ns into
/// the time shown.
pub fn annotate_yaml(yaml: &str, rows: &[RuleHit], rfc3339: impl Fn(i128) -> String) -> String {
    let by_rule: HashMap<(&str, &str), &RuleHit> = rows
        .iter()
        .filter(|r| r.present)
        .map(|r| ((section(r.map), r.rule.as_str()), r))
        .collect();
    let mut out = String::with_capacity(yaml.len() + rows.len() * 48);
    let mut current = "";
    let mut in_rules = false;
    for line in yaml.lines() {
        out.push_str(line);
        if !line.starts_with(' ') {
            in_rules = line == "rules:";
        } else if in_rules
            && let Some(name) = line.strip_prefix("  ").and_then(|l| l.strip_suffix(':'))
        {
            current = if name == "cidr_except" {
                "cidr"
            } else {
                section(name)
            };
        } else if in_rules && let Some(item) = line.strip_prefix("  - ") {
            let item = item.trim().trim_matches(|c| c == '\'' || c == '"');
            if let Some(r) = by_rule.get(&(current, item)) {
                match r.last_unix_ns {
                    Some(t) => out.push_str(&format!(
                        "  # {} packet{}, last hit {}",
                        r.packets,
                        if r.packets == 1 { "" } else { "s" },
                        rfc3339(t)
                    )),
                    None => out.push_str("  # never hit"),
                }
            }
        }
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use std::net::Ipv6Addr;

    use super::*;

    fn hits(packets: u64, bytes: u64, last_ns: u64) -> Hits {
        Hits {
            packets,
            bytes,
            last_ns,
        }
    }

    #[test]
    fn rule_map_keys_become_the_datapaths_keys() {
        let port = key_of("udp_ports", &53u16.to_be_bytes()).unwrap();
        assert_eq!((port.kind, port.port), (RuleKind::UdpPort as u8, [0, 53]));
        assert_eq!(rule_text(&port), "53");
        let b = key_of("blocklist", &[203, 0, 113, 5]).unwrap();
        assert_eq!((b.prefixlen, rule_text(&b)), (32, "203.0.113.5".into()));
        let mut lpm = 24u32.to_ne_bytes().to_vec();
        lpm.extend([198, 51, 100, 7]); // host bits: masked, as the datapath masks
        let c = key_of("cidr4", &lpm).unwrap();
        assert_eq!(rule_text(&c), "198.51.100.0/24");
        let mut lpm6 = 32u32.to_ne_bytes().to_vec();
        lpm6.extend(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1).octets());
        let c6 = key_of("cidr6", &lpm6).unwrap();
        assert_eq!(
            (c6.kind, rule_text(&c6)),
            (RuleKind::Cidr6 as u8, "2001:db8::/32".into())
        );
        assert_eq!(key_of("pps", &[1, 2, 3, 4]), None);
        for k in [port, b, c, c6] {
            assert_eq!(
                key_of(
                    RuleKind::from_u8(k.kind).unwrap().map(),
                    &map_key(&k).unwrap()
                ),
                Some(k)
            );
            assert_eq!(key_from_bytes(&key_bytes(&k)), k);
        }
        let unknown = RuleKey {
            kind: RuleKind::Cidr4 as u8,
            prefixlen: RULE_LEN_UNKNOWN,
            ..RuleKey::default()
        };
        assert_eq!(rule_text(&unknown), "(prefix not known)");
    }

    #[test]
    fn totals_add_cpus_hash_and_cache_and_keep_the_latest_hit() {
        let k = key_of("blocklist", &[203, 0, 113, 5]).unwrap();
        let mut t = Totals::default();
        t.add(k, &hits(3, 180, 100));
        t.add_slot(&HitSlot {
            rule: k,
            jiffies: 0,
            hits: hits(2, 120, 250),
        });
        t.add(RuleKey::default(), &hits(9, 9, 9)); // a free slot
        t.add(k, &hits(0, 0, 999)); // an idle CPU's zeros
        assert_eq!(t.get(&k), hits(5, 300, 250));
        assert_eq!(t.iter().count(), 1);
    }

    #[test]
    fn join_lists_never_hit_rules_and_marks_removed_ones() {
        let a = key_of("blocklist", &[203, 0, 113, 5]).unwrap();
        let b = key_of("udp_ports", &53u16.to_be_bytes()).unwrap();
        let gone = key_of("blocklist", &[192, 0, 2, 1]).unwrap();
        let mut t = Totals::default();
        t.add(a, &hits(10, 600, 1_000));
        t.add(gone, &hits(1, 60, 2_000));
        let c = key_of("cidr4", &[24, 0, 0, 0, 198, 51, 100, 0]).unwrap();
        let g = key_of("blocklist", &[192, 0, 2, 9]).unwrap();
        let rows = join(&[(a, 1), (b, 1), (a, 1)], &t, 5_000);
        assert_eq!(rows.len(), 3);
        let roles = join(
            &[(c, 0), (g, crate::model::guard::GUARD_MARK), (a, 2)],
            &t,
            0,
        );
        let roles: Vec<Role> = roles.iter().take(3).map(|r| r.role).collect();
        assert_eq!(roles, [Role::Exception, Role::Guard, Role::Drop]);
        assert_eq!(rows[0].last_unix_ns, Some(6_000));
        assert_eq!((rows[1].rule.as_str(), rows[1].packets), ("53", 0));
        assert_eq!(rows[1].last_unix_ns, None);
        assert!(!rows[2].present && rows[2].rule == "192.0.2.1");

        let now = 10_000_000_000i128;
        let unused = select(
            rows.clone(),
            Select {
                unused: true,
                ..Select::default()
            },
            now,
        );
        assert_eq!(unused.len(), 1);
        assert_eq!(unused[0].map, "udp_ports");
        // Idle 5 s: the hit was ~10 s ago; the never-hit one too; the
        // removed rule only when asked for.
        let idle = |removed| {
            select(
                rows.clone(),
                Select {
                    idle_ns: Some(5_000_000_000),
                    removed,
                    ..Select::default()
                },
                now,
            )
            .len()
        };
        assert_eq!((idle(false), idle(true)), (2, 3));
        let top = select(
            rows,
            Select {
                top: Some(1),
                ..Select::default()
            },
            now,
        );
        assert_eq!(top[0].rule, "203.0.113.5");
    }

    #[test]
    fn top_rates_rank_by_recent_packets() {
        let row = |rule: &str, packets| RuleHit {
            map: "blocklist",
            rule: rule.into(),
            role: Role::Drop,
            key: RuleKey::default(),
            present: true,
            packets,
            bytes: 0,
            last_unix_ns: Some(0),
        };
        let prev = HashMap::from([(("blocklist", "a".to_owned()), 1000u64)]);
        let now = [row("a", 1010), row("b", 50), row("c", 0)];
        let r = top_rates(&prev, &now, 2.0, 5);
        assert_eq!(r.len(), 2);
        assert_eq!((r[0].0.rule.as_str(), r[0].1), ("b", 25.0));
        assert_eq!((r[1].0.rule.as_str(), r[1].1), ("a", 5.0));
        assert_eq!(top_rates(&prev, &now, 2.0, 1).len(), 1);
    }

    #[test]
    fn a_saved_policy_carries_each_rules_hits_as_comments() {
        let row = |map: &'static str, rule: &str, packets, last| RuleHit {
            map,
            rule: rule.into(),
            role: Role::Drop,
            key: RuleKey::default(),
            present: true,
            packets,
            bytes: packets * 60,
            last_unix_ns: last,
        };
        let rows = [
            row("blocklist6", "2001:db8::5", 7, Some(2_000_000_000)),
            row("blocklist", "203.0.113.5", 0, None),
            row("cidr4", "198.51.100.128/25", 3, Some(1_000_000_000)),
            row("udp_ports", "53", 9, Some(3_000_000_000)),
        ];
        let yaml = "version: 1\nload:\n  pin: fw\nrules:\n  blocklist:\n  - 203.0.113.5\n  - \
                    2001:db8::5\n  cidr_except:\n  - 198.51.100.128/25\n  udp_ports:\n  - 53\n  \
                    tcp_ports: []\ndrift: report\n";
        let got = annotate_yaml(yaml, &rows, |t| format!("T{}", t / 1_000_000_000));
        assert_eq!(
            got,
            "version: 1\nload:\n  pin: fw\nrules:\n  blocklist:\n  - 203.0.113.5  # never hit\n  \
             - 2001:db8::5  # 7 packets, last hit T2\n  cidr_except:\n  - 198.51.100.128/25  \
             # 3 packets, last hit T1\n  udp_ports:\n  - 53  # 9 packets, last hit T3\n  \
             tcp_ports: []\ndrift: report\n"
        );
    }

    #[test]
    fn ages_read_at_a_glance() {
        let s = 1_000_000_000i128;
        assert_eq!(ago(None, 0), "never");
        assert_eq!(ago(Some(0), 59 * s), "59s ago");
        assert_eq!(ago(Some(0), 61 * s), "1m ago");
        assert_eq!(ago(Some(0), 7200 * s), "2h ago");
        assert_eq!(ago(Some(0), 3 * 86_400 * s), "3d ago");
    }
}
