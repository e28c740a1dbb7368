//! A capture of the firewall's decisions, as pure logic: which outcomes an
//! operator asks for, the records the datapath writes, and the rule that
//! decided a captured packet, told from its headers and the rule maps.

use std::{
    borrow::Cow,
    collections::{BTreeSet, HashMap},
    net::IpAddr,
};

use etherparse::{LaxNetSlice, LaxSlicedPacket, TransportSlice};
use serde::Serialize;
use xdp_progs::xdpfw::{CaptureRec, Outcome};

use crate::model::guard::Cidr;

/// The verdicts `--verdict` names.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Verdict {
    /// XDP_DROP: a rule matched.
    Drop,
    /// XDP_PASS: no rule matched, or the headers were not understood.
    Pass,
    /// XDP_TX: answered from XDP (a SYN cookie's SYN-ACK, as sent).
    Tx,
}

/// The kinds of rule `--rule` names; each is one outcome of the firewall.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum RuleKind {
    /// The source is in `blocklist` / `blocklist6`.
    Blocklist,
    /// The source is in `cidr4` / `cidr6`.
    Cidr,
    /// UDP to a port in `udp_ports`.
    UdpPort,
    /// TCP to a port in `tcp_ports`.
    TcpPort,
    /// ICMPv4 while `config.drop_icmp` is set.
    Icmp,
    /// ICMPv6 echo while `config.drop_icmp6_echo` is set.
    Icmp6,
    /// Truncated or inconsistent headers (passed).
    Malformed,
    /// Not IPv4/IPv6, or deeper than the firewall parses (passed).
    Unparsed,
    /// No rule matched (passed).
    None,
    /// Over a rate limit of `rate4` / `rate6`.
    Rate,
    /// A SYN to a port of `syn_ports`, answered with a SYN cookie.
    SynCookie,
    /// An ACK to a port of `syn_ports` with a wrong cookie.
    Cookie,
}

impl RuleKind {
    /// The outcome this kind of rule leads to.
    pub fn outcome(self) -> Outcome {
        match self {
            RuleKind::Blocklist => Outcome::DropBlocklist,
            RuleKind::Cidr => Outcome::DropCidr,
            RuleKind::UdpPort => Outcome::DropUdpPort,
            RuleKind::TcpPort => Outcome::DropTcpPort,
            RuleKind::Icmp => Outcome::DropIcmp,
            RuleKind::Icmp6 => Outcome::DropIcmp6,
            RuleKind::Malformed => Outcome::Malformed,
            RuleKind::Unparsed => Outcome::Unparsed,
            RuleKind::None => Outcome::Passed,
            RuleKind::Rate => Outcome::DropRate,
            RuleKind::SynCookie => Outcome::SynCookie,
            RuleKind::Cookie => Outcome::DropCookie,
        }
    }
}

/// The `capture_cfg.outcomes` mask for `--verdict` and `--rule` (each
/// empty: all of that axis; both given: the outcomes both allow).
pub fn outcome_mask(verdicts: &[Verdict], rules: &[RuleKind]) -> u32 {
    Outcome::ALL
        .iter()
        .filter(|o| {
            let verdict = verdict_of(**o);
            (verdicts.is_empty() || verdicts.contains(&verdict))
                && (rules.is_empty() || rules.iter().any(|r| r.outcome() == **o))
        })
        .fold(0, |m, o| m | 1 << o.index())
}

/// The outcome of a record, if it is one this xdpctl knows.
pub fn outcome_of(index: u32) -> Option<Outcome> {
    Outcome::ALL.into_iter().find(|o| o.index() == index)
}

/// A record read from the ring buffer: its header and the bytes after it
/// (`None` if it is shorter than its header says).
pub fn decode(record: &[u8]) -> Option<(CaptureRec, &[u8])> {
    let head = size_of::<CaptureRec>();
    if record.len() < head {
        return None;
    }
    // SAFETY: CaptureRec is plain old data and `record` holds its bytes;
    // read_unaligned takes any alignment.
    let rec: CaptureRec = unsafe { std::ptr::read_unaligned(record.as_ptr().cast()) };
    let data = record.get(head..head + rec.caplen as usize)?;
    Some((rec, data))
}

/// What a packet's headers say, as far as the rules look.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Headers {
    /// Source address.
    pub src: Option<IpAddr>,
    /// Destination address.
    pub dst: Option<IpAddr>,
    /// `udp`, `tcp`, `icmp`, `icmp6`, or the IP protocol number.
    pub proto: Option<Cow<'static, str>>,
    /// Source port (UDP, TCP).
    pub sport: Option<u16>,
    /// Destination port (UDP, TCP).
    pub dport: Option<u16>,
    /// VLAN ids, outer first.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub vlan: Vec<u16>,
}

impl Headers {
    /// Parses an Ethernet frame (cut or not).
    pub fn of(frame: &[u8]) -> Headers {
        let mut h = Headers::default();
        let Ok(p) = LaxSlicedPacket::from_ethernet(frame) else {
            return h;
        };
        for ext in &p.link_exts {
            if let etherparse::LaxLinkExtSlice::Vlan(v) = ext {
                h.vlan.push(v.vlan_identifier().value());
            }
        }
        match &p.net {
            Some(LaxNetSlice::Ipv4(ip)) => {
                let hdr = ip.header();
                h.src = Some(IpAddr::V4(hdr.source_addr()));
                h.dst = Some(IpAddr::V4(hdr.destination_addr()));
                h.proto = Some(proto_name(hdr.protocol().0, false));
            }
            Some(LaxNetSlice::Ipv6(ip)) => {
                let hdr = ip.header();
                h.src = Some(IpAddr::V6(hdr.source_addr()));
                h.dst = Some(IpAddr::V6(hdr.destination_addr()));
                h.proto = Some(proto_name(ip.payload().ip_number.0, true));
            }
            _ => {}
        }
        match &p.transport {
            Some(TransportSlice::Udp(u)) => {
                h.sport = Some(u.source_port());
                h.dport = Some(u.destination_port());
            }
            Some(TransportSlice::Tcp(t)) => {
                h.sport = Some(t.source_port());
                h.dport = Some(t.destination_port());
            }
            _ => {}
        }
        h
    }

    /// One line: `udp 10.0.0.1:53 > 10.0.0.2:1234`, `icmp 10.0.0.1 > 10.0.0.2`.
    pub fn summary(&self) -> String {
        let end = |a: Option<IpAddr>, port: Option<u16>| match (a, port) {
            (Some(IpAddr::V6(a)), Some(p)) => format!("[{a}]:{p}"),
            (Some(a), Some(p)) => format!("{a}:{p}"),
            (Some(a), None) => a.to_string(),
            (None, _) => "?".into(),
        };
        let mut s = match &self.proto {
            Some(p) => format!(
                "{p} {} > {}",
                end(self.src, self.sport),
                end(self.dst, self.dport)
            ),
            None => "not IP".into(),
        };
        for v in &self.vlan {
            s.push_str(&format!(" vlan {v}"));
        }
        s
    }
}

fn proto_name(n: u8, v6: bool) -> Cow<'static, str> {
    // Borrowed where it can be: this runs per captured packet.
    match (n, v6) {
        (6, _) => "tcp".into(),
        (17, _) => "udp".into(),
        (1, false) => "icmp".into(),
        (58, true) => "icmp6".into(),
        (n, _) => format!("proto {n}").into(),
    }
}

/// The prefixes of `cidr4` and `cidr6`, for telling which one decided a
/// packet (the longest that covers its source, as the datapath matches).
#[derive(Clone, Debug, Default)]
pub struct Prefixes {
    rules: HashMap<Cidr, u8>,
    v4_lens: BTreeSet<u8>,
    v6_lens: BTreeSet<u8>,
}

impl Prefixes {
    /// Adds a prefix and its value (0: an exception).
    pub fn insert(&mut self, addr: IpAddr, len: u8, value: u8) {
        let lens = if addr.is_ipv4() {
            &mut self.v4_lens
        } else {
            &mut self.v6_lens
        };
        lens.insert(len);
        self.rules.insert(Cidr { addr, len }.canonical(), value);
    }

    /// The longest prefix covering `src`, and its value.
    pub fn longest(&self, src: IpAddr) -> Option<(String, u8)> {
        let lens = if src.is_ipv4() {
            &self.v4_lens
        } else {
            &self.v6_lens
        };
        lens.iter().rev().find_map(|&len| {
            let c = Cidr { addr: src, len }.canonical();
            self.rules
                .get(&c)
                .map(|v| (format!("{}/{}", c.addr, c.len), *v))
        })
    }
}

/// The rule that decided a packet: the map and the key an operator would
/// name to change it (`blocklist 203.0.113.5`, `cidr4 198.51.100.0/24`,
/// `udp_ports 53`, `config.drop_icmp`), or what the firewall made of it.
pub fn rule(outcome: Outcome, h: &Headers, prefixes: &Prefixes) -> String {
    let v6 = matches!(h.src, Some(IpAddr::V6(_)));
    // Formatted only where the rule names them (this runs per packet).
    let src = || h.src.map_or_else(|| "?".into(), |a| a.to_string());
    let port = || h.dport.map_or_else(|| "?".into(), |p| p.to_string());
    match outcome {
        Outcome::DropBlocklist if v6 => format!("blocklist6 {}", src()),
        Outcome::DropBlocklist => format!("blocklist {}", src()),
        Outcome::DropCidr => {
            let map = if v6 { "cidr6" } else { "cidr4" };
            match h.src.and_then(|s| prefixes.longest(s)) {
                Some((p, v)) if v != 0 => format!("{map} {p}"),
                // Changed since the packet was judged.
                _ => format!("{map} (a prefix covering {})", src()),
            }
        }
        Outcome::DropUdpPort => format!("udp_ports {}", port()),
        Outcome::DropTcpPort => format!("tcp_ports {}", port()),
        Outcome::DropIcmp => "config.drop_icmp".into(),
        Outcome::DropIcmp6 => "config.drop_icmp6_echo".into(),
        Outcome::DropRate => {
            let map = if v6 { "rate6" } else { "rate4" };
            match h.src.and_then(|s| prefixes.longest(s)) {
                Some((p, _)) => format!("{map} {p}"),
                // Removed since the packet was judged.
                None => format!("{map} (a prefix covering {})", src()),
            }
        }
        // (Captured as sent: the SYN-ACK, from the protected port.)
        Outcome::SynCookie => format!(
            "syn_ports {}",
            h.sport.map_or_else(|| "?".into(), |p| p.to_string())
        ),
        Outcome::DropCookie => format!("syn_ports {} (a wrong cookie)", port()),
        Outcome::Malformed => "malformed".into(),
        Outcome::Unparsed => "unparsed".into(),
        Outcome::Passed => "none".into(),
    }
}

/// Whether the rule of `outcome` is named by a key from the headers (a
/// source, a port), not by the outcome alone.
pub fn rule_has_key(outcome: Outcome) -> bool {
    matches!(
        outcome,
        Outcome::DropBlocklist
            | Outcome::DropCidr
            | Outcome::DropRate
            | Outcome::DropUdpPort
            | Outcome::DropTcpPort
    )
}

/// The verdict of an outcome.
pub fn verdict_of(outcome: Outcome) -> Verdict {
    if outcome == Outcome::SynCookie {
        Verdict::Tx
    } else if outcome.drops() {
        Verdict::Drop
    } else {
        Verdict::Pass
    }
}

/// The verdict's name as the kernel spells it.
pub fn verdict_name(outcome: Outcome) -> &'static str {
    match verdict_of(outcome) {
        Verdict::Drop => "XDP_DROP",
        Verdict::Pass => "XDP_PASS",
        Verdict::Tx => "XDP_TX",
    }
}

/// A pcap-filter expression, compiled by libpcap as tcpdump compiles it.
pub struct Filter(pcap::BpfProgram);

impl Filter {
    /// Compiles `expr` for Ethernet frames.
    pub fn compile(expr: &str) -> Result<Filter, String> {
        let dead = pcap::Capture::dead(pcap::Linktype::ETHERNET).map_err(|e| e.to_string())?;
        dead.compile(expr, true).map(Filter).map_err(|e| {
            let e = e.to_string();
            let e = e.strip_prefix("libpcap error: ").unwrap_or(&e);
            format!("the filter expression {expr:?} does not compile: {e}; see `man pcap-filter`")
        })
    }

    /// Whether the frame (as captured) matches.
    pub fn matches(&self, frame: &[u8]) -> bool {
        self.0.filter(frame)
    }
}

/// Counts of a capture, for its summary.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Tally {
    /// Packets written out.
    pub captured: u64,
    /// Of them, dropped by the firewall.
    pub dropped: u64,
    /// Of them, answered from XDP and sent back (`XDP_TX`: SYN cookies).
    pub sent_back: u64,
    /// Packets the firewall saw whose outcome (and device) was asked for.
    pub matched: u64,
    /// Sampled packets over the cap (`--max-rate`).
    pub capped: u64,
    /// Sampled packets the ring buffer had no room for.
    pub lost: u64,
    /// Captured packets the filter expression left out.
    pub filtered: u64,
}

impl Tally {
    /// One line for stderr.
    pub fn line(&self, secs: f64) -> String {
        let plural = |n: u64, one: &str| format!("{n} {one}{}", if n == 1 { "" } else { "s" });
        let sent_back = if self.sent_back > 0 {
            format!(", {} sent back", self.sent_back)
        } else {
            String::new()
        };
        let mut s = format!(
            "captured {} ({} dropped, {} passed{sent_back}) in {secs:.1} s, of {} with the \
             verdicts, rules and device asked for",
            plural(self.captured, "packet"),
            self.dropped,
            self.captured - self.dropped - self.sent_back,
            plural(self.matched, "packet"),
        );
        for (n, what) in [
            (self.filtered, "left out by the filter expression"),
            (self.capped, "over --max-rate"),
            (self.lost, "lost (ring buffer full)"),
        ] {
            if n > 0 {
                s.push_str(&format!(", {n} {what}"));
            }
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_summary_tells_sent_back_from_passed() {
        let t = Tally {
            captured: 5,
            dropped: 1,
            sent_back: 3,
            matched: 5,
            ..Tally::default()
        };
        assert!(
            t.line(1.0)
                .starts_with("captured 5 packets (1 dropped, 1 passed, 3 sent back)"),
            "{}",
            t.line(1.0)
        );
        let t = Tally {
            captured: 2,
            dropped: 2,
            matched: 2,
            ..Tally::default()
        };
        assert!(
            t.line(1.0)
                .starts_with("captured 2 packets (2 dropped, 0 passed) in")
        );
    }

    #[test]
    fn masks_intersect_verdicts_and_rules() {
        let all = outcome_mask(&[], &[]);
        assert_eq!(all.count_ones() as usize, Outcome::ALL.len());
        let drops = outcome_mask(&[Verdict::Drop], &[]);
        assert_eq!(
            drops,
            Outcome::ALL
                .iter()
                .filter(|o| o.drops())
                .fold(0, |m, o| m | 1 << o.index())
        );
        assert_eq!(
            outcome_mask(&[], &[RuleKind::Cidr, RuleKind::None]),
            1 << Outcome::DropCidr.index() | 1 << Outcome::Passed.index()
        );
        // Nothing both allow: nothing is captured.
        assert_eq!(outcome_mask(&[Verdict::Pass], &[RuleKind::Blocklist]), 0);
    }

    #[test]
    fn the_longest_prefix_decides() {
        let mut p = Prefixes::default();
        p.insert("10.0.0.0".parse().unwrap(), 8, 1);
        p.insert("10.1.0.0".parse().unwrap(), 16, 0);
        p.insert("2001:db8::".parse().unwrap(), 32, 1);
        assert_eq!(
            p.longest("10.2.3.4".parse().unwrap()),
            Some(("10.0.0.0/8".into(), 1))
        );
        assert_eq!(
            p.longest("10.1.3.4".parse().unwrap()),
            Some(("10.1.0.0/16".into(), 0))
        );
        assert_eq!(p.longest("11.0.0.1".parse().unwrap()), None);
        assert_eq!(
            p.longest("2001:db8::1".parse().unwrap()),
            Some(("2001:db8::/32".into(), 1))
        );
        let h = Headers {
            src: Some("10.2.3.4".parse().unwrap()),
            ..Headers::default()
        };
        assert_eq!(rule(Outcome::DropCidr, &h, &p), "cidr4 10.0.0.0/8");
        // A rate limit is named by the longest limit covering the source.
        assert_eq!(rule(Outcome::DropRate, &h, &p), "rate4 10.0.0.0/8");
        assert_eq!(
            rule(Outcome::DropRate, &h, &Prefixes::default()),
            "rate4 (a prefix covering 10.2.3.4)"
        );
        let gone = Headers {
            src: Some("10.1.0.9".parse().unwrap()),
            ..Headers::default()
        };
        assert_eq!(
            rule(Outcome::DropCidr, &gone, &p),
            "cidr4 (a prefix covering 10.1.0.9)"
        );
    }

    #[test]
    fn headers_are_read_through_vlan_tags_and_cuts() {
        use crate::model::packet::Spec;
        let frame = |text: &str| text.parse::<Spec>().unwrap().build();
        let frame = frame("vlan=7 udp src=10.0.0.1 dst=10.0.0.2 sport=5 dport=53");
        let h = Headers::of(&frame);
        assert_eq!(h.summary(), "udp 10.0.0.1:5 > 10.0.0.2:53 vlan 7");
        assert_eq!(
            rule(Outcome::DropUdpPort, &h, &Prefixes::default()),
            "udp_ports 53"
        );
        let cut = Headers::of(&frame[..30]);
        assert_eq!(cut.src, None);
        let v6 = Headers::of(
            &"tcp src=2001:db8::1 dst=2001:db8::2 sport=7 dport=22"
                .parse::<Spec>()
                .unwrap()
                .build(),
        );
        assert_eq!(
            rule(Outcome::DropBlocklist, &v6, &Prefixes::default()),
            "blocklist6 2001:db8::1"
        );
        assert_eq!(v6.summary(), "tcp [2001:db8::1]:7 > [2001:db8::2]:22");
    }

    #[test]
    fn filters_match_as_tcpdump_would() {
        use crate::model::packet::Spec;
        let f = Filter::compile("udp dst port 53 and src net 10.0.0.0/8").unwrap();
        let frame = |t: &str| t.parse::<Spec>().unwrap().build();
        assert!(f.matches(&frame("udp src=10.0.0.1 dst=10.9.9.9 dport=53")));
        assert!(!f.matches(&frame("udp src=11.0.0.1 dst=10.9.9.9 dport=53")));
        assert!(!f.matches(&frame("tcp src=10.0.0.1 dst=10.9.9.9 dport=53")));
        // VLAN-tagged frames need `vlan` in the expression, as with tcpdump.
        let vlan = Filter::compile("vlan and udp").unwrap();
        assert!(vlan.matches(&frame("vlan=5 udp src=10.0.0.1 dst=10.9.9.9")));
        let e = Filter::compile("udp prt 53").err().unwrap();
        assert!(e.contains("\"udp prt 53\" does not compile"), "{e}");
    }

    #[test]
    fn records_decode_and_short_ones_do_not() {
        let rec = CaptureRec {
            ts_ns: 5,
            ifindex: 2,
            rx_queue: 1,
            cpu: 0,
            len: 60,
            caplen: 3,
            outcome: 1,
        };
        // SAFETY: plain old data.
        let head = unsafe {
            std::slice::from_raw_parts((&raw const rec).cast::<u8>(), size_of::<CaptureRec>())
        };
        let mut bytes = head.to_vec();
        bytes.extend([1, 2, 3]);
        assert_eq!(decode(&bytes), Some((rec, &[1u8, 2, 3][..])));
        assert_eq!(decode(&bytes[..bytes.len() - 1]), None);
        assert_eq!(decode(&bytes[..4]), None);
    }
}
