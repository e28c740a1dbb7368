//! Declarative policy: what a host's firewall should be, as a YAML file an
//! operator can review and roll out (`xdpctl apply`, `xdpctl save`, the
//! agent). Parsing, validation, the rule maps it means, and the difference
//! between that and what the maps hold — all without a kernel.
//!
//! ```yaml
//! version: 1
//! load:
//!   pin: xdpfw               # the load directory (relative: under --bpffs)
//!   object: builtin          # or the path of a BPF object
//!   max_entries:             # optional: room in the object's maps
//!     blocklist: 1048576
//! devices:
//!   - name: eth0
//!     mode: native           # native (default), generic or offload
//!     netns: blue            # optional: a name under /run/netns or a path
//! rules:
//!   blocklist: [203.0.113.5, 2001:db8::5]
//!   cidr: [198.51.100.0/24, 2001:db8:1::/48]
//!   udp_ports: [53]
//!   tcp_ports: [23]
//!   drop_icmp: false
//!   drop_icmp6_echo: false
//! guard:                     # optional: the agent runs guard with this
//!   threshold: 10000         # packets per second
//!   interval: 1s
//!   block_for: 10m
//!   max_blocks: 10000
//!   allow: [10.0.0.0/8]
//! drift: report              # report (default) or correct: what the agent
//!                            # does with changes made by hand
//! ```

use std::{
    collections::{BTreeMap, BTreeSet},
    net::IpAddr,
    path::PathBuf,
    time::Duration,
};

use serde::{Deserialize, Serialize};

use crate::model::{guard::Cidr, xdp::XdpMode};

/// The policy's format version.
pub const VERSION: u32 = 1;

/// What `load.object` says for the built-in firewall.
pub const BUILTIN: &str = "builtin";

/// A policy file.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Policy {
    /// [`VERSION`].
    pub version: u32,
    /// The load.
    pub load: LoadSpec,
    /// Where it is attached; devices not listed that this load attached
    /// are detached.
    #[serde(default)]
    pub devices: Vec<DeviceSpec>,
    /// The firewall's rules: the maps hold exactly these.
    #[serde(default)]
    pub rules: Rules,
    /// guard's settings, for the agent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub guard: Option<GuardSpec>,
    /// What the agent does about changes made by hand.
    #[serde(default)]
    pub drift: Drift,
}

/// The load.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct LoadSpec {
    /// The load directory.
    pub pin: PathBuf,
    /// `builtin`, or the path of a BPF object.
    #[serde(default = "builtin")]
    pub object: String,
    /// Room in the object's maps, where its own is not enough (a blocklist
    /// of a million sources): map name → entries.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub max_entries: BTreeMap<String, u32>,
}

fn builtin() -> String {
    BUILTIN.to_owned()
}

/// A device the load is attached to.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct DeviceSpec {
    /// The device name.
    pub name: String,
    /// Its network namespace (a name under /run/netns, or a path).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub netns: Option<String>,
    /// The attach mode.
    #[serde(default = "native", with = "mode_name")]
    pub mode: XdpMode,
}

fn native() -> XdpMode {
    XdpMode::Native
}

mod mode_name {
    use serde::{Deserialize, Deserializer, Serializer, de::Error};

    use crate::model::xdp::XdpMode;

    pub fn serialize<S: Serializer>(m: &XdpMode, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(m.arg_name())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<XdpMode, D::Error> {
        let s = String::deserialize(d)?;
        XdpMode::ALL
            .into_iter()
            .find(|m| m.arg_name() == s)
            .ok_or_else(|| D::Error::custom(format!("{s:?} is not native, generic or offload")))
    }
}

/// The firewall's rules.
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Rules {
    /// Sources dropped whatever they send, IPv4 and IPv6.
    #[serde(default)]
    pub blocklist: Vec<IpAddr>,
    /// Source prefixes dropped, IPv4 and IPv6.
    #[serde(default, with = "cidrs")]
    pub cidr: Vec<Cidr>,
    /// UDP destination ports dropped.
    #[serde(default)]
    pub udp_ports: Vec<u16>,
    /// TCP destination ports dropped.
    #[serde(default)]
    pub tcp_ports: Vec<u16>,
    /// Drop ICMPv4.
    #[serde(default)]
    pub drop_icmp: bool,
    /// Drop ICMPv6 echo (never neighbour discovery).
    #[serde(default)]
    pub drop_icmp6_echo: bool,
}

mod cidrs {
    use serde::{Deserialize, Deserializer, Serializer, de::Error, ser::SerializeSeq};

    use crate::model::guard::Cidr;

    pub fn serialize<S: Serializer>(v: &[Cidr], s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(Some(v.len()))?;
        for c in v {
            seq.serialize_element(&format!("{}/{}", c.addr, c.len))?;
        }
        seq.end()
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Cidr>, D::Error> {
        Vec::<String>::deserialize(d)?
            .iter()
            .map(|s| s.parse().map_err(D::Error::custom))
            .collect()
    }
}

/// guard's settings.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct GuardSpec {
    /// Packets per second over which a source is blocked.
    pub threshold: f64,
    /// How often it looks (`1s`).
    #[serde(default = "one_second")]
    pub interval: String,
    /// How long a block lasts (`10m`).
    #[serde(default = "ten_minutes")]
    pub block_for: String,
    /// At most this many blocks at once.
    #[serde(default = "ten_thousand")]
    pub max_blocks: usize,
    /// Never blocked.
    #[serde(default, with = "cidrs")]
    pub allow: Vec<Cidr>,
}

fn one_second() -> String {
    "1s".to_owned()
}
fn ten_minutes() -> String {
    "10m".to_owned()
}
fn ten_thousand() -> usize {
    10_000
}

/// What the agent does about a change made by hand.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Drift {
    /// Say so (log and metrics), change nothing.
    #[default]
    Report,
    /// Put the policy back.
    Correct,
}

/// A policy that does not parse or does not make sense: says where.
#[derive(Debug, thiserror::Error)]
#[error("{file}{}: {field}: {message}", line.map_or_else(String::new, |l| format!(":{l}")))]
pub struct PolicyError {
    /// The file.
    pub file: String,
    /// The line, when known.
    pub line: Option<usize>,
    /// The field, as a path (`rules.blocklist[2]`), or `.` for the whole.
    pub field: String,
    /// What is wrong.
    pub message: String,
}

/// Parses a policy, naming the line and field of the first problem.
pub fn parse(file: &str, text: &str) -> Result<Policy, PolicyError> {
    let de = serde_norway::Deserializer::from_str(text);
    let policy: Policy = serde_path_to_error::deserialize(de).map_err(|e| {
        let field = e.path().to_string();
        let inner = e.into_inner();
        let at = inner.location().map(|l| l.line());
        // A custom error (a bad mode, a bad prefix) is located at the
        // mapping that holds the field: point at the field's own line.
        let line = match (at, line_of_from(text, &field, at.unwrap_or(1))) {
            (_, Some(l)) => Some(l),
            (at, None) => at,
        };
        let mut message = inner.to_string();
        // serde_norway appends " at line L column C" and may start with
        // the path: each is said once.
        if let Some(at) = message.find(" at line ") {
            message.truncate(at);
        }
        if let Some((path, rest)) = message.split_once(": ")
            && field.starts_with(path)
        {
            message = rest.to_owned();
        }
        PolicyError {
            file: file.to_owned(),
            line,
            field: if field.is_empty() { ".".into() } else { field },
            message,
        }
    })?;
    policy.check().map_err(|(field, message)| PolicyError {
        file: file.to_owned(),
        line: line_of(text, &field),
        field,
        message,
    })?;
    Ok(policy)
}

/// The line a field's key is on, found by its last name (good enough to
/// point a person at it).
fn line_of(text: &str, field: &str) -> Option<usize> {
    line_of_from(text, field, 1)
}

/// The first line from `from` on that holds the key of `field`.
fn line_of_from(text: &str, field: &str, from: usize) -> Option<usize> {
    let key = field
        .rsplit('.')
        .next()?
        .split('[')
        .next()
        .filter(|k| !k.is_empty())?;
    text.lines()
        .enumerate()
        .skip(from.saturating_sub(1))
        .find(|(_, l)| {
            let l = l.trim_start().trim_start_matches("- ");
            l.starts_with(&format!("{key}:"))
        })
        .map(|(i, _)| i + 1)
}

/// Parses a duration of the policy (`500ms`, `30s`, `10m`, `1h`).
pub fn duration(s: &str) -> Option<Duration> {
    let (num, unit) = s
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .map_or((s, ""), |i| s.split_at(i));
    let n: f64 = num.parse().ok()?;
    let secs = match unit {
        "" | "s" => n,
        "ms" => n / 1000.0,
        "m" => n * 60.0,
        "h" => n * 3600.0,
        _ => return None,
    };
    Duration::try_from_secs_f64(secs)
        .ok()
        .filter(|d| *d >= Duration::from_millis(10) && *d <= Duration::from_secs(365 * 86400))
}

impl Policy {
    /// What parsing cannot check: `(field, message)` of the first problem.
    fn check(&self) -> Result<(), (String, String)> {
        let bad = |field: &str, message: String| Err((field.to_owned(), message));
        if self.version != VERSION {
            return bad(
                "version",
                format!("version {} is not one this xdpctl reads ({VERSION})", self.version),
            );
        }
        let pin = self.load.pin.to_string_lossy();
        if pin.is_empty() || pin.chars().any(char::is_control) || pin.contains("..") {
            return bad("load.pin", format!("{pin:?} is not a load directory path"));
        }
        let mut seen = BTreeSet::new();
        for (i, d) in self.devices.iter().enumerate() {
            if d.name.is_empty() || d.name.len() > 15 || d.name.contains(['/', ' ']) {
                return bad(
                    &format!("devices[{i}].name"),
                    format!("{:?} is not a device name", d.name),
                );
            }
            if !seen.insert((&d.name, &d.netns)) {
                return bad(
                    &format!("devices[{i}].name"),
                    format!("{} is listed twice", d.name),
                );
            }
        }
        for (i, c) in self.rules.cidr.iter().enumerate() {
            if c.canonical() != *c {
                let canon = c.canonical();
                return bad(
                    &format!("rules.cidr[{i}]"),
                    format!(
                        "{}/{} has host bits set; write {}/{}",
                        c.addr, c.len, canon.addr, canon.len
                    ),
                );
            }
        }
        for (name, ports) in [
            ("udp_ports", &self.rules.udp_ports),
            ("tcp_ports", &self.rules.tcp_ports),
        ] {
            if let Some(i) = ports.iter().position(|p| *p == 0) {
                return bad(
                    &format!("rules.{name}[{i}]"),
                    "port 0 is not a port".into(),
                );
            }
        }
        if let Some(g) = &self.guard {
            if !g.threshold.is_finite() || g.threshold <= 0.0 || g.threshold > 1e12 {
                return bad("guard.threshold", "a rate above 0 and at most 1e12".into());
            }
            for (field, v) in [("guard.interval", &g.interval), ("guard.block_for", &g.block_for)] {
                if duration(v).is_none() {
                    return bad(
                        field,
                        format!("{v:?} is not a duration from 10ms to a year (like 1s, 10m)"),
                    );
                }
            }
            if g.max_blocks == 0 {
                return bad("guard.max_blocks", "at least 1".into());
            }
        }
        Ok(())
    }

    /// Whether the load is the built-in firewall.
    pub fn is_builtin(&self) -> bool {
        self.load.object == BUILTIN
    }

    /// The rule maps this policy means: name → key → value.
    pub fn rule_maps(&self) -> RuleMaps {
        let r = &self.rules;
        let mut maps: RuleMaps = BTreeMap::new();
        let one = vec![1u8];
        for name in RULE_MAPS {
            maps.insert(name.to_owned(), BTreeMap::new());
        }
        for ip in &r.blocklist {
            let (map, key) = match ip {
                IpAddr::V4(a) => ("blocklist", a.octets().to_vec()),
                IpAddr::V6(a) => ("blocklist6", a.octets().to_vec()),
            };
            maps.get_mut(map).expect("listed").insert(key, one.clone());
        }
        for c in &r.cidr {
            let (map, key) = cidr_key(c);
            maps.get_mut(map).expect("listed").insert(key, one.clone());
        }
        for (map, ports) in [("udp_ports", &r.udp_ports), ("tcp_ports", &r.tcp_ports)] {
            for p in ports {
                maps.get_mut(map)
                    .expect("listed")
                    .insert(p.to_be_bytes().to_vec(), one.clone());
            }
        }
        maps.get_mut("config").expect("listed").insert(
            0u32.to_ne_bytes().to_vec(),
            vec![u8::from(r.drop_icmp), u8::from(r.drop_icmp6_echo)],
        );
        maps
    }
}

/// The firewall's rule maps that a policy sets.
pub const RULE_MAPS: [&str; 7] = [
    "blocklist",
    "blocklist6",
    "cidr4",
    "cidr6",
    "udp_ports",
    "tcp_ports",
    "config",
];

/// Map name → key → value.
pub type RuleMaps = BTreeMap<String, BTreeMap<Vec<u8>, Vec<u8>>>;

/// The LPM key of a prefix: prefix length (host order), then the address.
fn cidr_key(c: &Cidr) -> (&'static str, Vec<u8>) {
    let mut key = u32::from(c.len).to_ne_bytes().to_vec();
    match c.addr {
        IpAddr::V4(a) => {
            key.extend(a.octets());
            ("cidr4", key)
        }
        IpAddr::V6(a) => {
            key.extend(a.octets());
            ("cidr6", key)
        }
    }
}

/// The rules the maps hold, back as a policy's `rules` (for `save`).
/// Entries whose value is `skip` (guard's) are not the policy's.
pub fn rules_of(maps: &RuleMaps, skip: u8) -> Rules {
    let mut r = Rules::default();
    let keys = |name: &str| {
        maps.get(name)
            .into_iter()
            .flatten()
            .filter(|(_, v)| v.first().is_some_and(|b| *b != 0 && *b != skip))
            .map(|(k, _)| k.clone())
            .collect::<Vec<_>>()
    };
    for k in keys("blocklist") {
        if let Ok(a) = <[u8; 4]>::try_from(k.as_slice()) {
            r.blocklist.push(IpAddr::from(a));
        }
    }
    for k in keys("blocklist6") {
        if let Ok(a) = <[u8; 16]>::try_from(k.as_slice()) {
            r.blocklist.push(IpAddr::from(a));
        }
    }
    for (map, size) in [("cidr4", 4), ("cidr6", 16)] {
        for k in keys(map) {
            if k.len() != 4 + size {
                continue;
            }
            let len = u32::from_ne_bytes(k[..4].try_into().expect("4 bytes")) as u8;
            let addr = if size == 4 {
                IpAddr::from(<[u8; 4]>::try_from(&k[4..]).expect("4 bytes"))
            } else {
                IpAddr::from(<[u8; 16]>::try_from(&k[4..]).expect("16 bytes"))
            };
            r.cidr.push(Cidr { addr, len });
        }
    }
    for (map, out) in [("udp_ports", &mut r.udp_ports), ("tcp_ports", &mut r.tcp_ports)] {
        for k in keys(map) {
            if let Ok(p) = <[u8; 2]>::try_from(k.as_slice()) {
                out.push(u16::from_be_bytes(p));
            }
        }
    }
    if let Some(v) = maps.get("config").and_then(|m| m.values().next()) {
        r.drop_icmp = v.first().is_some_and(|b| *b != 0);
        r.drop_icmp6_echo = v.get(1).is_some_and(|b| *b != 0);
    }
    r.blocklist.sort();
    r.udp_ports.sort();
    r.tcp_ports.sort();
    r
}

/// How one map must change to hold what the policy says.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct MapDelta {
    /// Keys to add or to change, with their values.
    pub put: Vec<(Vec<u8>, Vec<u8>)>,
    /// Keys to remove.
    pub remove: Vec<Vec<u8>>,
}

impl MapDelta {
    /// Whether nothing changes.
    pub fn is_empty(&self) -> bool {
        self.put.is_empty() && self.remove.is_empty()
    }
}

/// The difference between what a map holds (`live`) and what it should.
/// Entries whose value is `keep` are another writer's (guard's) and stay.
pub fn delta(
    live: &BTreeMap<Vec<u8>, Vec<u8>>,
    want: &BTreeMap<Vec<u8>, Vec<u8>>,
    keep: Option<u8>,
) -> MapDelta {
    let mut d = MapDelta::default();
    for (k, v) in want {
        if live.get(k) != Some(v) {
            d.put.push((k.clone(), v.clone()));
        }
    }
    for (k, v) in live {
        let theirs = keep.is_some_and(|m| v.first() == Some(&m));
        if !want.contains_key(k) && !theirs {
            d.remove.push(k.clone());
        }
    }
    d
}

/// The desired rule maps as bytes, to keep in a journal's scratch while an
/// apply runs: `name\0 key_len value_len count (key value)*` per map.
pub fn encode(maps: &RuleMaps) -> Vec<u8> {
    let mut out = Vec::new();
    for (name, entries) in maps {
        out.extend(name.as_bytes());
        out.push(0);
        let (kl, vl) = entries
            .iter()
            .next()
            .map_or((0, 0), |(k, v)| (k.len(), v.len()));
        out.extend((kl as u32).to_le_bytes());
        out.extend((vl as u32).to_le_bytes());
        out.extend((entries.len() as u32).to_le_bytes());
        for (k, v) in entries {
            out.extend(k);
            out.extend(v);
        }
    }
    out
}

/// The inverse of [`encode`].
pub fn decode(mut b: &[u8]) -> Option<RuleMaps> {
    let mut maps = RuleMaps::new();
    let take = |b: &mut &[u8], n: usize| -> Option<Vec<u8>> {
        let (head, rest) = (b.get(..n)?, b.get(n..)?);
        *b = rest;
        Some(head.to_vec())
    };
    let u32_ = |b: &mut &[u8]| -> Option<usize> {
        Some(u32::from_le_bytes(take(b, 4)?.try_into().ok()?) as usize)
    };
    while !b.is_empty() {
        let end = b.iter().position(|c| *c == 0)?;
        let name = String::from_utf8(take(&mut b, end)?).ok()?;
        take(&mut b, 1)?;
        let (kl, vl, n) = (u32_(&mut b)?, u32_(&mut b)?, u32_(&mut b)?);
        let mut entries = BTreeMap::new();
        for _ in 0..n {
            let k = take(&mut b, kl)?;
            let v = take(&mut b, vl)?;
            entries.insert(k, v);
        }
        maps.insert(name, entries);
    }
    Some(maps)
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXAMPLE: &str = "\
version: 1
load:
  pin: xdpfw
devices:
  - name: eth0
  - name: veth1
    netns: blue
    mode: generic
rules:
  blocklist: [203.0.113.5, 2001:db8::5]
  cidr: [198.51.100.0/24]
  udp_ports: [53]
  drop_icmp: true
guard:
  threshold: 5000
drift: correct
";

    #[test]
    fn the_example_parses_and_means_these_maps() {
        let p = parse("p.yaml", EXAMPLE).unwrap();
        assert!(p.is_builtin());
        assert_eq!(p.devices[0].mode, XdpMode::Native);
        assert_eq!(p.devices[1].mode, XdpMode::Generic);
        assert_eq!(p.drift, Drift::Correct);
        let maps = p.rule_maps();
        assert_eq!(maps["blocklist"].len(), 1);
        assert_eq!(maps["blocklist6"].len(), 1);
        assert!(maps["cidr4"].contains_key(&[24, 0, 0, 0, 198, 51, 100, 0][..]));
        assert!(maps["udp_ports"].contains_key(&[0, 53][..]));
        assert_eq!(maps["config"].values().next().unwrap(), &vec![1, 0]);
        // And back.
        let rules = rules_of(&maps, 0x67);
        assert_eq!(rules.cidr, p.rules.cidr);
        assert_eq!(rules.udp_ports, vec![53]);
        assert!(rules.drop_icmp && !rules.drop_icmp6_echo);
        assert_eq!(decode(&encode(&maps)).unwrap(), maps);
    }

    #[test]
    fn errors_name_the_line_and_the_field() {
        let bad = EXAMPLE.replace("203.0.113.5", "203.0.113.500");
        let e = parse("p.yaml", &bad).unwrap_err();
        assert_eq!(e.line, Some(10), "{e}");
        assert!(e.field.starts_with("rules.blocklist"), "{e}");
        let e = parse("p.yaml", &EXAMPLE.replace("drift:", "drfit:")).unwrap_err();
        assert!(e.message.contains("unknown field `drfit`"), "{e}");
        let e = parse("p.yaml", &EXAMPLE.replace("/24", "/33")).unwrap_err();
        assert!(e.field.starts_with("rules.cidr"), "{e}");
        let e = parse("p.yaml", &EXAMPLE.replace("198.51.100.0/24", "198.51.100.1/24")).unwrap_err();
        assert!(e.message.contains("host bits"), "{e}");
        assert_eq!(e.line, Some(11), "{e}");
        let e = parse("p.yaml", &EXAMPLE.replace("mode: generic", "mode: turbo")).unwrap_err();
        assert!(e.field.contains("mode"), "{e}");
        let e = parse("p.yaml", &EXAMPLE.replace("threshold: 5000", "threshold: .nan")).unwrap_err();
        assert_eq!(e.field, "guard.threshold", "{e}");
        let e = parse("p.yaml", "version: 2\nload: {pin: x}\n").unwrap_err();
        assert_eq!((e.field.as_str(), e.line), ("version", Some(1)), "{e}");
    }

    #[test]
    fn the_delta_leaves_guards_entries_and_touches_only_what_differs() {
        let live: BTreeMap<Vec<u8>, Vec<u8>> = [
            (vec![1], vec![1]),
            (vec![2], vec![0x67]),
            (vec![3], vec![1]),
            (vec![4], vec![0]),
        ]
        .into();
        let want: BTreeMap<Vec<u8>, Vec<u8>> =
            [(vec![1], vec![1]), (vec![4], vec![1]), (vec![5], vec![1])].into();
        let d = delta(&live, &want, Some(0x67));
        assert_eq!(d.put, vec![(vec![4], vec![1]), (vec![5], vec![1])]);
        assert_eq!(d.remove, vec![vec![3]]);
        assert!(delta(&want, &want, None).is_empty());
    }
}
