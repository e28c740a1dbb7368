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
//!     mode: native           # native (default; or driver), generic or offload
//!     netns: blue            # optional: a name under /run/netns or a path
//! rules:
//!   blocklist: [203.0.113.5, 2001:db8::5]
//!   cidr: [198.51.100.0/24, 2001:db8:1::/48]
//!   cidr_except: [198.51.100.0/28]   # passed inside a dropped prefix
//!   udp_ports: [53]
//!   tcp_ports: [23]
//!   syn_ports: [443]         # SYNs answered with SYN cookies from XDP
//!   drop_icmp: false
//!   drop_icmp6_echo: false
//!   rate_limits:             # dropped beyond: drop_rate
//!     - cidr: 192.0.2.0/24   # each source of it at most...
//!       pps: 1000            # ...packets per second
//!       burst: 100           # optional: a tenth of a second of pps
//!       bytes_per_sec: 1000000   # optional: bytes per second
//!       burst_bytes: 150000  # optional: a tenth of a second of them
//!       per: source          # source (default) or prefix: one for all
//! guard:                     # optional: the agent runs guard with this
//!   threshold: 10000         # packets per second
//!   interval: 1s
//!   block_for: 10m
//!   max_blocks: 10000
//!   allow: [10.0.0.0/8]
//!   limit: 1000              # optional: limit to 1000 pps instead of blocking
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

use crate::model::{
    guard::Cidr,
    rate::{self, RateLimit},
    xdp::XdpMode,
    yaml_lines::{line_of, line_of_from},
};

pub use crate::model::rulemaps::{
    Entries, MapDelta, OPTIONAL_RULE_MAPS, PORT_MAPS, RULE_MAPS, RuleMaps, decode, delta, encode,
    entry_text, zero_is_rule,
};

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
    /// The load's tc programs at tcx hooks (`attach --tcx`, appended in
    /// this order); tcx links of this load not listed are detached. Left
    /// out: the load's tcx links are left as they are.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tcx: Option<Vec<TcxSpec>>,
    /// The load's tc programs as legacy tc filters (`attach --tc`, for
    /// kernels without tcx); filters of this load not listed are deleted.
    /// Left out: the load's tc filters are left as they are.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tc: Option<Vec<TcSpec>>,
    /// The program the load hands what it passes to (`xdpctl chain`), by
    /// its pinned path (relative: under the bpffs root); `null`: the chain
    /// is empty. Left out: the chain is left as it is.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "present"
    )]
    pub chain: Option<Option<PathBuf>>,
    /// The firewall's rules: the maps hold exactly these (none when left
    /// out; `save` leaves them out when there are none, as for a load
    /// that is not the firewall).
    #[serde(default, skip_serializing_if = "Rules::is_empty")]
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

/// A field that is there, `null` or not: `Some` (absent: `None`, by its
/// `default`).
fn present<'de, D: serde::Deserializer<'de>, T: Deserialize<'de>>(
    d: D,
) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
}

/// A tc program of the load at a device's tcx hook.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TcxSpec {
    /// The device name.
    pub name: String,
    /// Its network namespace (a name under /run/netns, or a path).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub netns: Option<String>,
    /// The hook: `ingress` or `egress`.
    pub hook: TcxHook,
    /// The program: its name in the load.
    pub prog: String,
}

/// A tc program of the load as a legacy tc filter at a device's clsact.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TcSpec {
    /// The device name.
    pub name: String,
    /// Its network namespace (a name under /run/netns, or a path).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub netns: Option<String>,
    /// The hook: `ingress` or `egress`.
    pub hook: TcxHook,
    /// The program: its name in the load.
    pub prog: String,
    /// The filter's priority (1-65535, lower runs first); left out: after
    /// every filter of the hook when it is added, and any when it is there.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority: Option<u16>,
}

/// A tcx hook.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum TcxHook {
    /// tcx ingress.
    Ingress,
    /// tcx egress.
    Egress,
}

impl TcxHook {
    /// Egress, or ingress.
    pub fn of(egress: bool) -> Self {
        if egress {
            TcxHook::Egress
        } else {
            TcxHook::Ingress
        }
    }

    /// Whether it is egress.
    pub fn egress(self) -> bool {
        self == TcxHook::Egress
    }
}

impl std::fmt::Display for TcxHook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.egress() { "egress" } else { "ingress" })
    }
}

fn native() -> XdpMode {
    XdpMode::Native
}

mod mode_name {
    use serde::{Deserialize, Deserializer, Serializer, de::Error};

    use crate::model::xdp::XdpMode;

    pub fn serialize<S: Serializer>(m: &XdpMode, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(m.name())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<XdpMode, D::Error> {
        String::deserialize(d)?.parse().map_err(D::Error::custom)
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
    /// Source prefixes passed although a shorter prefix of `cidr` drops
    /// them: a `cidr4`/`cidr6` entry of value 0 (the longest matching
    /// prefix decides).
    #[serde(default, with = "cidrs", skip_serializing_if = "Vec::is_empty")]
    pub cidr_except: Vec<Cidr>,
    /// UDP destination ports dropped.
    #[serde(default)]
    pub udp_ports: Vec<u16>,
    /// TCP destination ports dropped.
    #[serde(default)]
    pub tcp_ports: Vec<u16>,
    /// TCP ports whose SYNs are answered with SYN cookies from XDP (see
    /// the README: the host needs net.ipv4.tcp_syncookies=2).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub syn_ports: Vec<u16>,
    /// Drop ICMPv4.
    #[serde(default)]
    pub drop_icmp: bool,
    /// Drop ICMPv6 echo (never neighbour discovery).
    #[serde(default)]
    pub drop_icmp6_echo: bool,
    /// Rate limits: the sources of a prefix (each, or all together)
    /// limited in packets and bytes per second, the rest dropped
    /// (`drop_rate`). Into `rate4` / `rate6`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rate_limits: Vec<RateLimit>,
    /// Feeds of sources to drop, as operators keep them (a blocklist of a
    /// million addresses): files of one address a line (`ADDRESS` or
    /// `ADDRESS VALUE`, as `map update --from-file` takes; `#` comments),
    /// relative to the policy's directory. Read with the policy, into
    /// `blocklist`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub blocklist_files: Vec<PathBuf>,
    /// Feeds of prefixes to drop, the same way (a value 0 is a
    /// `cidr_except`), into `cidr`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cidr_files: Vec<PathBuf>,
}

impl Rules {
    /// Whether there are no rules at all (what a policy without `rules`
    /// says).
    pub fn is_empty(&self) -> bool {
        *self == Rules::default()
    }
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
    /// Limit a source over the threshold to this many packets a second
    /// instead of blocking it (`guard --limit`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<u64>,
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
    // NB: JSON is YAML, and `xdpctl -j save` writes it: a JSON document is
    // read by the JSON parser, many times faster on a large blocklist.
    if text.trim_start().starts_with('{') {
        let mut de = serde_json::Deserializer::from_str(text);
        let policy: Policy = serde_path_to_error::deserialize(&mut de).map_err(|e| {
            let field = e.path().to_string();
            let inner = e.into_inner();
            PolicyError {
                file: file.to_owned(),
                line: Some(inner.line()),
                field: if field.is_empty() { ".".into() } else { field },
                message: inner
                    .to_string()
                    .split(" at line ")
                    .next()
                    .unwrap_or_default()
                    .to_owned(),
            }
        })?;
        policy.check().map_err(|(field, message)| PolicyError {
            file: file.to_owned(),
            line: None,
            field,
            message,
        })?;
        return Ok(policy);
    }
    // NB: one YAML parser; big rule lists live in feeds the policy names
    // (`blocklist_files`, `cidr_files`), read line by line.
    let de = serde_norway::Deserializer::from_str(text);
    let policy: Policy = serde_path_to_error::deserialize(de).map_err(|e| {
        let field = e.path().to_string();
        let inner = e.into_inner();
        let at = inner.location().map(|l| l.line());
        // A custom error (a bad mode, a bad prefix) is located at the
        // mapping that holds the field: point at the field's own line.
        let line = if field.is_empty() {
            at
        } else {
            line_of(text, &field)
                .or_else(|| line_of_from(text, &field, at.unwrap_or(1)))
                .or(at)
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

impl Policy {
    /// What parsing cannot check: `(field, message)` of the first problem.
    fn check(&self) -> Result<(), (String, String)> {
        let bad = |field: &str, message: String| Err((field.to_owned(), message));
        if self.version != VERSION {
            return bad(
                "version",
                format!(
                    "version {} is not one this xdpctl reads ({VERSION})",
                    self.version
                ),
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
        let mut seen = BTreeSet::new();
        for (i, t) in self.tcx.iter().flatten().enumerate() {
            if t.name.is_empty() || t.name.len() > 15 || t.name.contains(['/', ' ']) {
                return bad(
                    &format!("tcx[{i}].name"),
                    format!("{:?} is not a device name", t.name),
                );
            }
            if t.prog.is_empty() || t.prog.contains('/') {
                return bad(
                    &format!("tcx[{i}].prog"),
                    format!("{:?} is not a program name of the load", t.prog),
                );
            }
            if !seen.insert((&t.name, &t.netns, t.hook, &t.prog)) {
                return bad(
                    &format!("tcx[{i}]"),
                    format!(
                        "{} at {} of {} is listed twice (a program runs once a hook)",
                        t.prog, t.hook, t.name
                    ),
                );
            }
        }
        let mut seen = BTreeSet::new();
        for (i, t) in self.tc.iter().flatten().enumerate() {
            if t.name.is_empty() || t.name.len() > 15 || t.name.contains(['/', ' ']) {
                return bad(
                    &format!("tc[{i}].name"),
                    format!("{:?} is not a device name", t.name),
                );
            }
            if t.prog.is_empty() || t.prog.contains('/') {
                return bad(
                    &format!("tc[{i}].prog"),
                    format!("{:?} is not a program name of the load", t.prog),
                );
            }
            if let Some(p) = t.priority
                && self.tc.iter().flatten().take(i).any(|o| {
                    o.priority == Some(p)
                        && o.name == t.name
                        && o.netns == t.netns
                        && o.hook == t.hook
                })
            {
                return bad(
                    &format!("tc[{i}].priority"),
                    format!(
                        "priority {p} at {} of {} is given twice (one filter a priority)",
                        t.hook, t.name
                    ),
                );
            }
            if t.priority == Some(0) {
                return bad(
                    &format!("tc[{i}].priority"),
                    "0 is not a filter priority (1-65535, lower runs first)".to_owned(),
                );
            }
            if !seen.insert((&t.name, &t.netns, t.hook, &t.prog)) {
                return bad(
                    &format!("tc[{i}]"),
                    format!(
                        "{} at {} of {} is listed twice (a program runs once a hook)",
                        t.prog, t.hook, t.name
                    ),
                );
            }
        }
        if let Some(Some(chain)) = &self.chain
            && (chain.as_os_str().is_empty()
                || chain.to_string_lossy().chars().any(char::is_control))
        {
            return bad(
                "chain",
                "is empty: give the pinned program, or null for an empty chain".to_owned(),
            );
        }
        for (i, c) in self.rules.cidr.iter().enumerate() {
            c.check_rule()
                .or_else(|e| bad(&format!("rules.cidr[{i}]"), e))?;
        }
        for (i, c) in self.rules.cidr_except.iter().enumerate() {
            let field = format!("rules.cidr_except[{i}]");
            c.check_rule().or_else(|e| bad(&field, e))?;
            if self.rules.cidr.contains(c) {
                return bad(
                    &field,
                    format!(
                        "{}/{} is in cidr too; keep it in one of the two",
                        c.addr, c.len
                    ),
                );
            }
        }
        for (name, ports) in [
            ("udp_ports", &self.rules.udp_ports),
            ("tcp_ports", &self.rules.tcp_ports),
            ("syn_ports", &self.rules.syn_ports),
        ] {
            for (i, p) in ports.iter().enumerate() {
                check_rule_port(*p).or_else(|e| bad(&format!("rules.{name}[{i}]"), e))?;
            }
        }
        for (name, n) in &self.load.max_entries {
            if let Err(e) = crate::model::handle::check_max_entries(*n) {
                return bad(&format!("load.max_entries.{name}"), e);
            }
        }
        let mut seen = BTreeSet::new();
        for (i, l) in self.rules.rate_limits.iter().enumerate() {
            let field = format!("rules.rate_limits[{i}]");
            l.check().or_else(|e| bad(&field, e))?;
            if !seen.insert((l.cidr.addr, l.cidr.len)) {
                return bad(
                    &field,
                    format!(
                        "{}/{} has a limit already; a prefix has one",
                        l.cidr.addr, l.cidr.len
                    ),
                );
            }
        }
        if let Some(g) = &self.guard {
            for (i, c) in g.allow.iter().enumerate() {
                c.check_rule()
                    .or_else(|e| bad(&format!("guard.allow[{i}]"), e))?;
            }
            if !g.threshold.is_finite() || g.threshold <= 0.0 || g.threshold > 1e12 {
                return bad(
                    "guard.threshold",
                    format!("{} is not a rate above 0 and at most 1e12 pps", g.threshold),
                );
            }
            // The limits of guard's --interval and --block-for.
            for (field, v, min) in [
                ("guard.interval", &g.interval, Duration::from_millis(10)),
                ("guard.block_for", &g.block_for, Duration::from_secs(1)),
            ] {
                if let Err(e) = crate::model::duration::parse_within(v, min) {
                    return bad(field, e);
                }
            }
            if g.max_blocks == 0 {
                return bad("guard.max_blocks", "at least 1".into());
            }
            if let Some(l) = g.limit {
                if !(1..=rate::MAX_PPS).contains(&l) {
                    return bad(
                        "guard.limit",
                        format!("{l} is not a limit in packets per second from 1 to 10^9"),
                    );
                }
                if l as f64 >= g.threshold {
                    return bad(
                        "guard.limit",
                        format!(
                            "{l} is not below the threshold {}: the limit would slow nothing",
                            g.threshold
                        ),
                    );
                }
            }
        }
        Ok(())
    }

    /// Reads the feeds of `rules.blocklist_files` and `rules.cidr_files`
    /// (relative paths: under `base`) into the rules, checked line by line
    /// as `map update` checks a key: an error names the feed and the line.
    pub fn read_feeds(&mut self, base: &std::path::Path) -> Result<(), PolicyError> {
        let feeds: Vec<(bool, usize, PathBuf)> = (self.rules.blocklist_files.iter())
            .enumerate()
            .map(|(i, p)| (false, i, p.clone()))
            .chain(
                (self.rules.cidr_files.iter())
                    .enumerate()
                    .map(|(i, p)| (true, i, p.clone())),
            )
            .collect();
        // Prefixes dropped and excepted so far (a prefix in both is refused).
        let set = |v: &[Cidr]| v.iter().map(|c| (c.addr, c.len)).collect::<BTreeSet<_>>();
        let (mut dropped, mut excepted) = (set(&self.rules.cidr), set(&self.rules.cidr_except));
        for (cidr, i, path) in feeds {
            let path = base.join(path);
            let field = format!(
                "rules.{}[{i}]",
                if cidr {
                    "cidr_files"
                } else {
                    "blocklist_files"
                }
            );
            let bad = |line: Option<usize>, message: String| PolicyError {
                file: path.display().to_string(),
                line,
                field: field.clone(),
                message,
            };
            let text = std::fs::read_to_string(&path)
                .map_err(|e| bad(None, format!("cannot read it: {e}")))?;
            for (n, line) in text.lines().enumerate() {
                let line = line.split('#').next().unwrap_or_default().trim();
                if line.is_empty() {
                    continue;
                }
                let mut words = line.split_whitespace();
                let key = words.next().unwrap_or_default();
                let value = match words.next() {
                    None => 1,
                    Some(v) => v.parse::<u8>().map_err(|_| {
                        bad(Some(n + 1), format!("{v:?} is not a value from 0 to 255"))
                    })?,
                };
                if let Some(extra) = words.next() {
                    return Err(bad(
                        Some(n + 1),
                        format!("{extra:?} after the value: one ADDRESS [VALUE] a line"),
                    ));
                }
                if cidr {
                    let c: Cidr = key.parse().map_err(|e| bad(Some(n + 1), e))?;
                    c.check_rule().map_err(|e| bad(Some(n + 1), e))?;
                    let key = (c.addr, c.len);
                    let (to, seen, other) = match value {
                        0 => (&mut self.rules.cidr_except, &mut excepted, &dropped),
                        _ => (&mut self.rules.cidr, &mut dropped, &excepted),
                    };
                    if other.contains(&key) {
                        return Err(bad(
                            Some(n + 1),
                            format!(
                                "{}/{} is both dropped and excepted (here, and in cidr or \
                                 cidr_except or another line); keep it in one",
                                c.addr, c.len
                            ),
                        ));
                    }
                    seen.insert(key);
                    to.push(c);
                } else {
                    let a: IpAddr = key.parse().map_err(|_| {
                        bad(
                            Some(n + 1),
                            format!("{key:?} is not an IPv4 or IPv6 address"),
                        )
                    })?;
                    // A value 0 drops nothing: no rule.
                    if value != 0 {
                        self.rules.blocklist.push(a);
                    }
                }
            }
        }
        Ok(())
    }

    /// Whether the load is the built-in firewall.
    pub fn is_builtin(&self) -> bool {
        self.load.object == BUILTIN
    }

    /// The rule maps this policy means: name → entries sorted by key.
    pub fn rule_maps(&self) -> RuleMaps {
        let r = &self.rules;
        let mut maps: RuleMaps = BTreeMap::new();
        let mut map = |name: &str, key_size, value_size| {
            maps.insert(name.to_owned(), Entries::new(key_size, value_size));
        };
        map("blocklist", 4, 1);
        map("blocklist6", 16, 1);
        map("cidr4", 8, 1);
        map("cidr6", 20, 1);
        map("udp_ports", 2, 1);
        map("tcp_ports", 2, 1);
        map("syn_ports", 2, 1);
        map("config", 4, 2);
        map("rate4", 8, rate::VALUE_LEN);
        map("rate6", 20, rate::VALUE_LEN);
        let mut put = |name: &str, key: &[u8], value: &[u8]| {
            maps.get_mut(name).expect("listed").push(key, value);
        };
        for ip in &r.blocklist {
            match ip {
                IpAddr::V4(a) => put("blocklist", &a.octets(), &[1]),
                IpAddr::V6(a) => put("blocklist6", &a.octets(), &[1]),
            }
        }
        for c in &r.cidr {
            let (name, key) = cidr_key(c);
            put(name, &key, &[1]);
        }
        for c in &r.cidr_except {
            let (name, key) = cidr_key(c);
            put(name, &key, &[0]);
        }
        for (name, ports) in [
            ("udp_ports", &r.udp_ports),
            ("tcp_ports", &r.tcp_ports),
            ("syn_ports", &r.syn_ports),
        ] {
            for p in ports {
                put(name, &p.to_be_bytes(), &[1]);
            }
        }
        for l in &r.rate_limits {
            put(l.map(), &l.key(), &l.value());
        }
        put(
            "config",
            &0u32.to_ne_bytes(),
            &[u8::from(r.drop_icmp), u8::from(r.drop_icmp6_echo)],
        );
        maps.into_iter().map(|(n, e)| (n, e.sorted())).collect()
    }
}

/// The rule for a port in a rule (the policy's `udp_ports` and
/// `tcp_ports`, `map update`'s of those maps): 1 to 65535. The error names
/// the port, the reason and the fix.
pub fn check_rule_port(port: u16) -> Result<(), String> {
    if port == 0 {
        return Err("port 0 is not a port; give 1 to 65535".into());
    }
    Ok(())
}

/// The CIDR map of a prefix, and its key there.
fn cidr_key(c: &Cidr) -> (&'static str, Vec<u8>) {
    let map = if c.addr.is_ipv4() { "cidr4" } else { "cidr6" };
    (map, c.lpm_key())
}

/// The rules the maps hold, back as a policy's `rules` (for `save`).
/// Entries whose value is `skip` (guard's) are not the policy's; a value 0
/// is a `cidr_except` in the LPM tries and no rule elsewhere.
pub fn rules_of(maps: &RuleMaps, skip: u8) -> Rules {
    let mut r = Rules::default();
    let with = |name: &str, drops: bool| {
        maps.get(name)
            .into_iter()
            .flat_map(Entries::iter)
            .filter(|(_, v)| v.first().is_some_and(|b| *b != skip && (*b != 0) == drops))
            .map(|(k, _)| k.to_vec())
            .collect::<Vec<_>>()
    };
    let keys = |name: &str| with(name, true);
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
            r.cidr.extend(Cidr::from_lpm_key(&k));
        }
        for k in with(map, false) {
            if k.len() == 4 + size {
                r.cidr_except.extend(Cidr::from_lpm_key(&k));
            }
        }
    }
    for (map, out) in [
        ("udp_ports", &mut r.udp_ports),
        ("tcp_ports", &mut r.tcp_ports),
        ("syn_ports", &mut r.syn_ports),
    ] {
        for k in keys(map) {
            if let Ok(p) = <[u8; 2]>::try_from(k.as_slice()) {
                out.push(u16::from_be_bytes(p));
            }
        }
    }
    for map in ["rate4", "rate6"] {
        for (k, v) in maps.get(map).into_iter().flat_map(Entries::iter) {
            // Guard's limits are guard's, not the policy's.
            if v.get(rate::OWNER_AT) != Some(&skip) {
                r.rate_limits.extend(RateLimit::of_entry(k, v));
            }
        }
    }
    if let Some((_, v)) = maps.get("config").and_then(|m| m.iter().next()) {
        r.drop_icmp = v.first().is_some_and(|b| *b != 0);
        r.drop_icmp6_echo = v.get(1).is_some_and(|b| *b != 0);
    }
    r.blocklist.sort();
    r.cidr.sort_by_key(|c| (c.addr, c.len));
    r.cidr_except.sort_by_key(|c| (c.addr, c.len));
    r.udp_ports.sort();
    r.tcp_ports.sort();
    r.syn_ports.sort();
    r.rate_limits.sort_by_key(|l| (l.cidr.addr, l.cidr.len));
    r
}

#[cfg(test)]
mod tests;
