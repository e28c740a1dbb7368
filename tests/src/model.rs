//! A reference model of the built-in firewall's policy, written from its
//! specification (README, xdpfw.bpf.c's header) and independently of the C
//! code: a frame and a rule set in, the verdict, the outcome counter and
//! the source counted in `pps` out (only for passed packets: every drop rule
//! comes before per-source state). The differential test runs the real
//! program on random and mutated frames and compares. (It sends a few
//! thousand packets per second at most, below the rate where the firewall
//! starts to sketch new sources instead of counting them from the first
//! packet.)

use std::collections::HashMap;

use xdp_progs::xdpfw::Outcome;

/// The firewall's rules, as the maps hold them.
#[derive(Clone, Debug, Default)]
pub struct Rules {
    /// `blocklist`: address → value (non-zero drops).
    pub blocklist: HashMap<[u8; 4], u8>,
    /// `blocklist6`.
    pub blocklist6: HashMap<[u8; 16], u8>,
    /// `cidr4`: (prefix, length) → value.
    pub cidr4: HashMap<([u8; 4], u8), u8>,
    /// `cidr6`.
    pub cidr6: HashMap<([u8; 16], u8), u8>,
    /// `udp_ports`: port → value.
    pub udp_ports: HashMap<u16, u8>,
    /// `tcp_ports`.
    pub tcp_ports: HashMap<u16, u8>,
    /// `config.drop_icmp`.
    pub drop_icmp: bool,
    /// `config.drop_icmp6_echo`.
    pub drop_icmp6_echo: bool,
}

/// A source address counted in `pps` / `pps6`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Source {
    /// IPv4.
    V4([u8; 4]),
    /// IPv6.
    V6([u8; 16]),
}

/// What the firewall does with a frame.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Judgement {
    /// The counter it increments.
    pub outcome: Outcome,
    /// The source it counts, if any.
    pub counted: Option<Source>,
    /// The rule whose counter it increments (`stats --rules`): its map and
    /// the rule as xdpctl names it (`53`, `203.0.113.5`, `10.0.0.0/8`; a
    /// prefix of value 0 that matched, too).
    pub hit: Option<(&'static str, String)>,
}

impl Judgement {
    fn new(outcome: Outcome) -> Self {
        Judgement {
            outcome,
            counted: None,
            hit: None,
        }
    }

    fn hit(outcome: Outcome, map: &'static str, rule: String) -> Self {
        Judgement {
            outcome,
            counted: None,
            hit: Some((map, rule)),
        }
    }
}

const VLAN_TAGS: usize = 2;
const EXT_HEADERS: usize = 6;

fn be16(f: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*f.get(at)?, *f.get(at + 1)?]))
}

/// Longest-prefix match: the longest prefix covering `addr` (length,
/// value), whose value decides. The table's prefixes are masked to their
/// lengths, as the maps hold them.
fn lpm<const N: usize>(table: &HashMap<([u8; N], u8), u8>, addr: &[u8; N]) -> Option<(u8, u8)> {
    if table.is_empty() {
        return None;
    }
    (0..=(N * 8) as u8)
        .rev()
        .find_map(|len| table.get(&(mask(addr, len), len)).map(|v| (len, *v)))
}

/// A prefix as xdpctl names it: the address masked to `len`, `/len`.
fn prefix_text<const N: usize>(addr: &[u8; N], len: u8) -> String {
    let masked = mask(addr, len);
    let ip: std::net::IpAddr = if N == 4 {
        std::net::IpAddr::from(<[u8; 4]>::try_from(&masked[..]).unwrap())
    } else {
        std::net::IpAddr::from(<[u8; 16]>::try_from(&masked[..]).unwrap())
    };
    format!("{ip}/{len}")
}

/// A source rule's judgement: the CIDR prefix that covers `src` (counted
/// even when its value 0 passes it), dropping if its value says so.
fn cidr_rule<const N: usize>(
    table: &HashMap<([u8; N], u8), u8>,
    map: &'static str,
    src: &[u8; N],
    passed: Judgement,
) -> Judgement {
    match lpm(table, src) {
        Some((len, v)) if v != 0 => Judgement::hit(Outcome::DropCidr, map, prefix_text(src, len)),
        Some((len, _)) => Judgement {
            hit: Some((map, prefix_text(src, len))),
            ..passed
        },
        None => passed,
    }
}

fn port_rule(rules: &Rules, proto: u8, l4: &[u8], room: usize) -> Judgement {
    match proto {
        17 => match (l4.len() >= 8 && room >= 8).then(|| be16(l4, 2)).flatten() {
            None => Judgement::new(Outcome::Malformed),
            Some(port) if rules.udp_ports.get(&port).is_some_and(|v| *v != 0) => {
                Judgement::hit(Outcome::DropUdpPort, "udp_ports", port.to_string())
            }
            Some(_) => Judgement::new(Outcome::Passed),
        },
        6 => match (l4.len() >= 20 && room >= 20)
            .then(|| be16(l4, 2))
            .flatten()
        {
            None => Judgement::new(Outcome::Malformed),
            Some(port) if rules.tcp_ports.get(&port).is_some_and(|v| *v != 0) => {
                Judgement::hit(Outcome::DropTcpPort, "tcp_ports", port.to_string())
            }
            Some(_) => Judgement::new(Outcome::Passed),
        },
        _ => Judgement::new(Outcome::Passed),
    }
}

/// Judges one frame, by a firewall whose drop cache is empty (every
/// verdict, and every outcome but for IPv4 sources the blocklist dropped
/// before: see [`DropCache`]). Only a passed packet's source is counted:
/// every drop rule comes before any per-source state.
pub fn judge(rules: &Rules, f: &[u8]) -> Judgement {
    judge_cached(rules, f, &mut DropCache::default())
}

/// The datapath's drop cache (`drop_cache`, direct-mapped): the IPv4
/// sources the blocklist dropped since the blocklist last changed. A
/// packet from one of them is dropped as a blocklist drop at once, before
/// the ICMP and port rules that come first for the others; the verdict is
/// the same either way, the counter may differ.
#[derive(Clone, Debug, Default)]
pub struct DropCache(HashMap<u32, [u8; 4]>);

impl DropCache {
    fn holds(&self, src: &[u8; 4]) -> bool {
        self.0.get(&xdp_progs::xdpfw::drop_cache_slot(*src)) == Some(src)
    }

    fn remember(&mut self, src: &[u8; 4]) {
        self.0.insert(xdp_progs::xdpfw::drop_cache_slot(*src), *src);
    }
}

/// Judges one frame by a firewall whose drop cache is `cache`, and updates
/// the cache as the datapath does.
pub fn judge_cached(rules: &Rules, f: &[u8], cache: &mut DropCache) -> Judgement {
    let mut j = judge_rules(rules, f, cache);
    if j.outcome.drops() {
        j.counted = None;
    }
    j
}

fn judge_rules(rules: &Rules, f: &[u8], cache: &mut DropCache) -> Judgement {
    let Some(mut ethertype) = be16(f, 12) else {
        return Judgement::new(Outcome::Malformed);
    };
    let mut at = 14;
    for _ in 0..VLAN_TAGS {
        if ethertype != 0x8100 && ethertype != 0x88a8 {
            break;
        }
        match be16(f, at + 2) {
            Some(t) => ethertype = t,
            None => return Judgement::new(Outcome::Malformed),
        }
        at += 4;
    }
    match ethertype {
        0x0800 => ipv4(rules, f, at, cache),
        0x86dd => ipv6(rules, f, at),
        _ => Judgement::new(Outcome::Unparsed),
    }
}

fn ipv4(rules: &Rules, f: &[u8], at: usize, cache: &mut DropCache) -> Judgement {
    let malformed = Judgement::new(Outcome::Malformed);
    let Some(ip) = f.get(at..at + 20) else {
        return malformed;
    };
    let (version, ihl) = (ip[0] >> 4, usize::from(ip[0] & 0xf));
    if version != 4 || ihl < 5 {
        return malformed;
    }
    let header = ihl * 4;
    let total = usize::from(u16::from_be_bytes([ip[2], ip[3]]));
    if total < header || at + total > f.len() {
        return malformed;
    }
    let src: [u8; 4] = ip[12..16].try_into().unwrap();
    let blocklisted = rules.blocklist.get(&src).is_some_and(|v| *v != 0);
    let source_hit = || std::net::Ipv4Addr::from(src).to_string();
    if blocklisted && cache.holds(&src) {
        return Judgement::hit(Outcome::DropBlocklist, "blocklist", source_hit());
    }
    let proto = ip[9];
    let judged = if proto == 1 {
        Judgement::new(if rules.drop_icmp {
            Outcome::DropIcmp
        } else {
            Outcome::Passed
        })
    } else if u16::from_be_bytes([ip[6], ip[7]]) & 0x1fff != 0 {
        Judgement::new(Outcome::Passed)
    } else {
        port_rule(rules, proto, &f[at + header..], total - header)
    };
    // The stateless rules first, then the source's.
    if judged.outcome.drops() {
        return judged;
    }
    if blocklisted {
        cache.remember(&src);
        return Judgement::hit(Outcome::DropBlocklist, "blocklist", source_hit());
    }
    let passed = Judgement {
        outcome: judged.outcome,
        counted: Some(Source::V4(src)),
        hit: None,
    };
    cidr_rule(&rules.cidr4, "cidr4", &src, passed)
}

fn ipv6(rules: &Rules, f: &[u8], at: usize) -> Judgement {
    let malformed = Judgement::new(Outcome::Malformed);
    let Some(ip) = f.get(at..at + 40) else {
        return malformed;
    };
    if ip[0] >> 4 != 6 {
        return malformed;
    }
    let payload = usize::from(u16::from_be_bytes([ip[4], ip[5]]));
    if at + 40 + payload > f.len() {
        return malformed;
    }
    let src: [u8; 16] = ip[8..24].try_into().unwrap();
    let judged = ipv6_l4(rules, f, at, ip[6], payload);
    // The stateless rules first, then the source's.
    if judged.outcome.drops() {
        return judged;
    }
    if rules.blocklist6.get(&src).is_some_and(|v| *v != 0) {
        let text = std::net::Ipv6Addr::from(src).to_string();
        return Judgement::hit(Outcome::DropBlocklist, "blocklist6", text);
    }
    let passed = Judgement {
        outcome: judged.outcome,
        counted: Some(Source::V6(src)),
        hit: None,
    };
    cidr_rule(&rules.cidr6, "cidr6", &src, passed)
}

/// The outcome of an IPv6 packet's extension headers and L4 rules.
fn ipv6_l4(rules: &Rules, f: &[u8], at: usize, first: u8, payload: usize) -> Judgement {
    let new = Judgement::new;
    let mut next = first;
    let mut pos = at + 40;
    let mut used = 0;
    let mut done = false;
    for _ in 0..EXT_HEADERS {
        match next {
            0 | 43 | 60 => {
                let Some(h) = f.get(pos..pos + 2) else {
                    return new(Outcome::Malformed);
                };
                let len = (usize::from(h[1]) + 1) * 8;
                used += len;
                if used > payload {
                    return new(Outcome::Malformed);
                }
                next = h[0];
                pos += len;
            }
            44 => {
                let Some(h) = f.get(pos..pos + 8) else {
                    return new(Outcome::Malformed);
                };
                used += 8;
                if used > payload {
                    return new(Outcome::Malformed);
                }
                next = h[0];
                pos += 8;
                if u16::from_be_bytes([h[2], h[3]]) & 0xfff8 != 0 {
                    // A later fragment: passed without looking further.
                    return new(Outcome::Passed);
                }
            }
            _ => {
                done = true;
                break;
            }
        }
    }
    if !done {
        return new(Outcome::Unparsed);
    }
    let l4 = f.get(pos..).unwrap_or(&[]);
    if next == 58 {
        if l4.len() < 4 || payload - used < 4 {
            return new(Outcome::Malformed);
        }
        let echo = l4[0] == 128 || l4[0] == 129;
        return new(if echo && rules.drop_icmp6_echo {
            Outcome::DropIcmp6
        } else {
            Outcome::Passed
        });
    }
    port_rule(rules, next, l4, payload - used)
}

/// A small, seeded xorshift generator: the differential test must be
/// reproducible from its seed.
pub struct Rng(u64);

impl Rng {
    /// From a seed (0 is replaced).
    pub fn new(seed: u64) -> Self {
        Rng(seed.max(1))
    }

    /// The next 64 random bits.
    pub fn bits(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    /// A number below `n`.
    pub fn below(&mut self, n: usize) -> usize {
        (self.bits() % n as u64) as usize
    }

    /// True with probability `p` percent.
    pub fn chance(&mut self, percent: usize) -> bool {
        self.below(100) < percent
    }

    /// One of `items`.
    pub fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.below(items.len())]
    }
}

/// Addresses and ports the generator draws from, so rules hit often.
pub struct Pool {
    /// IPv4 sources.
    pub v4: Vec<[u8; 4]>,
    /// IPv6 sources.
    pub v6: Vec<[u8; 16]>,
    /// Destination ports.
    pub ports: Vec<u16>,
}

impl Pool {
    /// A fixed pool.
    pub fn new() -> Self {
        let v4 = (0..12)
            .map(|i| [10, (i % 3) as u8, (i / 3) as u8, 1 + i as u8])
            .collect();
        let v6 = (0..12)
            .map(|i| {
                let mut a = [0u8; 16];
                a[..4].copy_from_slice(&[0x20, 0x01, 0x0d, 0xb8]);
                a[5] = (i % 3) as u8;
                a[15] = 1 + i as u8;
                a
            })
            .collect();
        Pool {
            v4,
            v6,
            ports: vec![22, 53, 80, 443, 9999, 123, 0, 65535],
        }
    }
}

impl Default for Pool {
    fn default() -> Self {
        Self::new()
    }
}

/// A random rule set over the pool (values 0 included: present but not
/// blocking).
pub fn random_rules(rng: &mut Rng, pool: &Pool) -> Rules {
    let mut r = Rules::default();
    let value = |rng: &mut Rng| if rng.chance(80) { 1 } else { 0 };
    for a in &pool.v4 {
        if rng.chance(20) {
            r.blocklist.insert(*a, value(rng));
        }
    }
    for a in &pool.v6 {
        if rng.chance(20) {
            r.blocklist6.insert(*a, value(rng));
        }
    }
    for _ in 0..rng.below(4) {
        let a = rng.pick(&pool.v4);
        let len = rng.pick(&[0u8, 8, 16, 20, 24, 26, 30, 32]);
        r.cidr4.insert((mask(&a, len), len), value(rng));
    }
    for _ in 0..rng.below(4) {
        let a = rng.pick(&pool.v6);
        let len = rng.pick(&[0u8, 8, 16, 32, 40, 48, 64, 120, 128]);
        r.cidr6.insert((mask(&a, len), len), value(rng));
    }
    for p in &pool.ports {
        if rng.chance(25) {
            r.udp_ports.insert(*p, value(rng));
        }
        if rng.chance(25) {
            r.tcp_ports.insert(*p, value(rng));
        }
    }
    r.drop_icmp = rng.chance(50);
    r.drop_icmp6_echo = rng.chance(50);
    r
}

/// `a` masked to its first `len` bits.
pub fn mask<const N: usize>(a: &[u8; N], len: u8) -> [u8; N] {
    let mut out = [0u8; N];
    for bit in 0..usize::from(len).min(N * 8) {
        let m = 0x80 >> (bit % 8);
        out[bit / 8] |= a[bit / 8] & m;
    }
    out
}

/// A random valid frame: VLAN tags, IPv4 (options, fragments) or IPv6
/// (extension headers, fragments), UDP/TCP/ICMP or other payloads; now and
/// then not IP at all.
pub fn random_frame(rng: &mut Rng, pool: &Pool) -> Vec<u8> {
    let mut f = vec![0x02, 0, 0, 0, 0, 2, 0x02, 0, 0, 0, 0, 1];
    for _ in 0..rng.pick(&[0usize, 0, 0, 1, 1, 2, 3]) {
        f.extend_from_slice(&rng.pick(&[0x8100u16, 0x88a8]).to_be_bytes());
        f.extend_from_slice(&(rng.below(4096) as u16).to_be_bytes());
    }
    let kind = rng.below(20);
    if kind == 0 {
        f.extend_from_slice(&rng.pick(&[0x0806u16, 0x88cc, 0x8847]).to_be_bytes());
        f.extend((0..rng.below(60)).map(|_| rng.bits() as u8));
        return f;
    }
    let v6 = kind.is_multiple_of(2);
    let proto = rng.pick(&[17u8, 17, 6, 6, 1, 58, 47]);
    let port = rng.pick(&pool.ports);
    let l4 = |rng: &mut Rng, proto: u8| -> Vec<u8> {
        let mut l4 = match proto {
            17 => {
                let mut h = vec![0x30, 0x39];
                h.extend_from_slice(&port.to_be_bytes());
                h.extend_from_slice(&[0, 8, 0, 0]);
                h
            }
            6 => {
                let mut h = vec![0x30, 0x39];
                h.extend_from_slice(&port.to_be_bytes());
                h.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 0, 0x50, 0x10, 0xff, 0xff, 0, 0, 0, 0]);
                h
            }
            1 | 58 => vec![
                rng.pick(&[0u8, 8, 128, 129, 133, 135, 136, 1, 3]),
                0,
                0,
                0,
                0,
                1,
                0,
                1,
            ],
            _ => vec![0, 0, 0x08, 0x00],
        };
        l4.extend((0..rng.below(24)).map(|_| rng.bits() as u8));
        l4
    };
    if v6 {
        f.extend_from_slice(&[0x86, 0xdd]);
        let src = rng.pick(&pool.v6);
        let mut ext = Vec::new();
        let n = rng.pick(&[0usize, 0, 1, 1, 2, 3, 6, 7]);
        let kinds: Vec<u8> = (0..n).map(|_| rng.pick(&[0u8, 43, 60, 44])).collect();
        let mut later_fragment = false;
        for (i, kind) in kinds.iter().enumerate() {
            let next = *kinds
                .get(i + 1)
                .unwrap_or(&(if proto == 1 { 58 } else { proto }));
            if *kind == 44 {
                let off: u16 = if rng.chance(50) {
                    0
                } else {
                    8 * (1 + rng.below(100) as u16)
                };
                later_fragment |= off != 0;
                let mf = u16::from(rng.chance(50));
                ext.extend_from_slice(&[next, 0]);
                ext.extend_from_slice(&(off | mf).to_be_bytes());
                ext.extend_from_slice(&[0, 0, 0, 7]);
            } else {
                let len = rng.below(3);
                ext.extend_from_slice(&[next, len as u8]);
                ext.extend((0..(len + 1) * 8 - 2).map(|_| 1u8));
            }
        }
        let first = if kinds.is_empty() {
            if proto == 1 { 58 } else { proto }
        } else {
            kinds[0]
        };
        let body = if later_fragment {
            (0..rng.below(40)).map(|_| rng.bits() as u8).collect()
        } else {
            l4(rng, if proto == 1 { 58 } else { proto })
        };
        let payload = ext.len() + body.len();
        f.extend_from_slice(&[0x60, 0, 0, 0]);
        f.extend_from_slice(&(payload as u16).to_be_bytes());
        f.extend_from_slice(&[first, 64]);
        f.extend_from_slice(&src);
        f.extend_from_slice(&[
            0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x99,
        ]);
        f.extend(ext);
        f.extend(body);
    } else {
        f.extend_from_slice(&[0x08, 0x00]);
        let src = rng.pick(&pool.v4);
        let proto = if proto == 58 { 1 } else { proto };
        let options = rng.pick(&[0usize, 0, 0, 1, 2, 10]) * 4;
        let frag: u16 = match rng.below(10) {
            0 => 0x2000,                               // first fragment
            1 => 0x2000 | (1 + rng.below(200) as u16), // middle fragment
            2 => 1 + rng.below(200) as u16,            // last fragment
            _ => 0,
        };
        let body = if frag & 0x1fff != 0 {
            (0..rng.below(40)).map(|_| rng.bits() as u8).collect()
        } else {
            l4(rng, proto)
        };
        let total = 20 + options + body.len();
        f.push(0x40 | (5 + options / 4) as u8);
        f.push(0);
        f.extend_from_slice(&(total as u16).to_be_bytes());
        f.extend_from_slice(&[0, 1]);
        f.extend_from_slice(&frag.to_be_bytes());
        f.extend_from_slice(&[64, proto, 0, 0]);
        f.extend_from_slice(&src);
        f.extend_from_slice(&[192, 0, 2, 99]);
        f.extend(std::iter::repeat_n(1u8, options));
        f.extend(body);
    }
    if rng.chance(10) {
        // Ethernet padding after the IP packet.
        f.extend(std::iter::repeat_n(0u8, rng.below(20)));
    }
    f
}

/// A mutation of a frame: truncated at a random byte, a random byte
/// changed, or a header field (ihl, lengths, version) set at random.
pub fn mutate(rng: &mut Rng, mut f: Vec<u8>) -> Vec<u8> {
    match rng.below(5) {
        0 => {
            let keep = 14 + rng.below(f.len().saturating_sub(14).max(1));
            f.truncate(keep.max(14));
        }
        1 => {
            let at = 12 + rng.below(f.len() - 12);
            f[at] = rng.bits() as u8;
        }
        2 => {
            // The first byte after the tags: version and ihl.
            let at = ip_start(&f);
            if at < f.len() {
                f[at] = (f[at] & 0xf0) | rng.below(16) as u8;
            }
        }
        3 => {
            // IPv4 total length or IPv6 payload length.
            let at = ip_start(&f)
                + if f.get(ip_start(&f)).is_some_and(|b| b >> 4 == 6) {
                    4
                } else {
                    2
                };
            if at + 1 < f.len() {
                let v = rng.below(f.len() + 20) as u16;
                f[at..at + 2].copy_from_slice(&v.to_be_bytes());
            }
        }
        _ => {
            let at = ip_start(&f);
            if at < f.len() {
                f[at] = (rng.below(16) as u8) << 4 | (f[at] & 0x0f);
            }
        }
    }
    f
}

fn ip_start(f: &[u8]) -> usize {
    let mut at = 14;
    while at >= 14 && matches!(be16(f, at - 2), Some(0x8100 | 0x88a8)) && at < 14 + 4 * 3 {
        at += 4;
    }
    at
}

/// Which sources a batch of judgements counts, and how often.
pub fn counts(judgements: &[Judgement]) -> HashMap<Source, u64> {
    let mut out = HashMap::new();
    for j in judgements {
        if let Some(s) = j.counted {
            *out.entry(s).or_insert(0) += 1;
        }
    }
    out
}
