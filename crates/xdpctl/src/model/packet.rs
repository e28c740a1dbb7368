//! Packets for `xdpctl prog run`: built from a compact description, or read
//! from a file (raw bytes, or a pcap or pcapng capture).
//!
//! A description is words: optional `vlan=ID` tags (outermost first), one
//! protocol (`udp`, `tcp`, `icmp`, `icmp6`, `ip`, `ip6`, `arp`), then
//! `key=value` fields: `src`, `dst` (IPv4 or IPv6: the family follows the
//! addresses), `sport`, `dport`, `type` (ICMP type), `ttl`, `frag` (fragment
//! offset in bytes, a multiple of 8), `mf` (more fragments), `len` (payload
//! bytes). For example `udp src=203.0.113.5 dst=10.0.0.1 dport=9999`,
//! `icmp6 src=2001:db8::1`, `vlan=100 tcp dport=22`.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// A parsed packet description.
#[derive(Clone, Debug, PartialEq)]
pub struct Spec {
    vlans: Vec<u16>,
    proto: Proto,
    src: Option<IpAddr>,
    dst: Option<IpAddr>,
    sport: u16,
    dport: u16,
    icmp_type: Option<u8>,
    ttl: u8,
    frag_offset: u16,
    more_fragments: bool,
    payload: usize,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Proto {
    Udp,
    Tcp,
    Icmp,
    Icmp6,
    Ip,
    Ip6,
    Arp,
}

const USAGE: &str = "describe a packet like 'udp src=203.0.113.5 dst=10.0.0.1 dport=9999', \
                     'icmp6 src=2001:db8::1' or 'vlan=100 tcp dport=22'";

impl std::str::FromStr for Spec {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let mut spec = Spec {
            vlans: Vec::new(),
            proto: Proto::Udp,
            src: None,
            dst: None,
            sport: 12345,
            dport: 80,
            icmp_type: None,
            ttl: 64,
            frag_offset: 0,
            more_fragments: false,
            payload: 16,
        };
        let mut proto = None;
        for word in text.split_whitespace() {
            let (key, value) = match word.split_once('=') {
                Some((k, v)) => (k, Some(v)),
                None => (word, None),
            };
            let num = |what: &str, max: u64| -> Result<u64, String> {
                let v = value.ok_or_else(|| format!("'{word}': give {what}={{number}}"))?;
                match v.parse::<u64>() {
                    Ok(n) if n <= max => Ok(n),
                    _ => Err(format!("'{word}': {what} must be a number from 0 to {max}")),
                }
            };
            let addr = |what: &str| -> Result<IpAddr, String> {
                value
                    .and_then(|v| v.parse().ok())
                    .ok_or_else(|| format!("'{word}': {what} must be an IPv4 or IPv6 address"))
            };
            match (key, value) {
                ("udp" | "tcp" | "icmp" | "icmp6" | "ip" | "ip6" | "arp", None) => {
                    if proto.is_some() {
                        return Err(format!("'{word}': one protocol per packet; {USAGE}"));
                    }
                    proto = Some(match key {
                        "udp" => Proto::Udp,
                        "tcp" => Proto::Tcp,
                        "icmp" => Proto::Icmp,
                        "icmp6" => Proto::Icmp6,
                        "ip" => Proto::Ip,
                        "ip6" => Proto::Ip6,
                        _ => Proto::Arp,
                    });
                }
                ("vlan", _) => spec.vlans.push(num("vlan", 4095)? as u16),
                ("src", _) => spec.src = Some(addr("src")?),
                ("dst", _) => spec.dst = Some(addr("dst")?),
                ("sport", _) => spec.sport = num("sport", 65535)? as u16,
                ("dport", _) => spec.dport = num("dport", 65535)? as u16,
                ("type", _) => spec.icmp_type = Some(num("type", 255)? as u8),
                ("ttl", _) => spec.ttl = num("ttl", 255)? as u8,
                ("frag", _) => {
                    let off = num("frag", 65528)?;
                    if off % 8 != 0 {
                        return Err(format!("'{word}': a fragment offset is a multiple of 8"));
                    }
                    spec.frag_offset = off as u16;
                }
                ("mf", None) => spec.more_fragments = true,
                ("len", _) => spec.payload = num("len", 9000)? as usize,
                _ => return Err(format!("'{word}' is not understood; {USAGE}")),
            }
        }
        spec.proto = proto.ok_or_else(|| format!("no protocol given; {USAGE}"))?;
        let addrs: Vec<IpAddr> = [spec.src, spec.dst].into_iter().flatten().collect();
        let (any_v6, any_v4) = (
            addrs.iter().any(IpAddr::is_ipv6),
            addrs.iter().any(IpAddr::is_ipv4),
        );
        if any_v6 && any_v4 {
            return Err("src and dst must be of one family".into());
        }
        if matches!(spec.proto, Proto::Icmp6 | Proto::Ip6) && any_v4 {
            return Err("icmp6 and ip6 packets need IPv6 addresses".into());
        }
        if matches!(spec.proto, Proto::Icmp | Proto::Ip) && any_v6 {
            return Err("icmp and ip are IPv4; use icmp6 or ip6 for IPv6".into());
        }
        Ok(spec)
    }
}

fn checksum(data: &[u8]) -> u16 {
    let mut sum = 0u32;
    for chunk in data.chunks(2) {
        let word = u16::from_be_bytes([chunk[0], *chunk.get(1).unwrap_or(&0)]);
        sum += u32::from(word);
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

impl Spec {
    fn is_v6(&self) -> bool {
        matches!(self.proto, Proto::Icmp6 | Proto::Ip6)
            || self.src.or(self.dst).is_some_and(|a| a.is_ipv6())
    }

    /// The frame, Ethernet header first.
    pub fn build(&self) -> Vec<u8> {
        // Destination and source MAC, then each tag (TPID, TCI), then the
        // ethertype of what follows.
        let mut frame = vec![0x02, 0, 0, 0, 0, 0x02, 0x02, 0, 0, 0, 0, 0x01];
        for (i, vlan) in self.vlans.iter().enumerate() {
            // Outer tags of a stack are 802.1ad, the innermost 802.1Q.
            let tpid: u16 = if i + 1 < self.vlans.len() {
                0x88a8
            } else {
                0x8100
            };
            frame.extend_from_slice(&tpid.to_be_bytes());
            frame.extend_from_slice(&vlan.to_be_bytes());
        }
        if self.proto == Proto::Arp {
            frame.extend_from_slice(&0x0806u16.to_be_bytes());
            frame.extend_from_slice(&[0, 1, 8, 0, 6, 4, 0, 1]);
            frame.extend_from_slice(&[
                0x02, 0, 0, 0, 0, 1, 192, 0, 2, 1, 0, 0, 0, 0, 0, 0, 192, 0, 2, 2,
            ]);
            return frame;
        }
        let v6 = self.is_v6();
        frame.extend_from_slice(&(if v6 { 0x86ddu16 } else { 0x0800 }).to_be_bytes());
        let l4 = self.l4();
        if v6 {
            let src = match self.src {
                Some(IpAddr::V6(a)) => a,
                _ => Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1),
            };
            let dst = match self.dst {
                Some(IpAddr::V6(a)) => a,
                _ => Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 2),
            };
            let fragmented = self.frag_offset != 0 || self.more_fragments;
            let next = if fragmented { 44 } else { self.ip_proto(true) };
            let plen = l4.len() + if fragmented { 8 } else { 0 };
            frame.extend_from_slice(&[0x60, 0, 0, 0]);
            frame.extend_from_slice(&(plen as u16).to_be_bytes());
            frame.extend_from_slice(&[next, self.ttl]);
            frame.extend_from_slice(&src.octets());
            frame.extend_from_slice(&dst.octets());
            if fragmented {
                let off = self.frag_offset | u16::from(self.more_fragments);
                frame.extend_from_slice(&[self.ip_proto(true), 0]);
                frame.extend_from_slice(&off.to_be_bytes());
                frame.extend_from_slice(&[0, 0, 0, 1]);
            }
        } else {
            let src = match self.src {
                Some(IpAddr::V4(a)) => a,
                _ => Ipv4Addr::new(192, 0, 2, 1),
            };
            let dst = match self.dst {
                Some(IpAddr::V4(a)) => a,
                _ => Ipv4Addr::new(192, 0, 2, 2),
            };
            let total = (20 + l4.len()) as u16;
            let frag = (self.frag_offset / 8) | if self.more_fragments { 0x2000 } else { 0 };
            let mut ip = vec![0x45, 0];
            ip.extend_from_slice(&total.to_be_bytes());
            ip.extend_from_slice(&[0, 1]);
            ip.extend_from_slice(&frag.to_be_bytes());
            ip.extend_from_slice(&[self.ttl, self.ip_proto(false), 0, 0]);
            ip.extend_from_slice(&src.octets());
            ip.extend_from_slice(&dst.octets());
            let sum = checksum(&ip);
            ip[10..12].copy_from_slice(&sum.to_be_bytes());
            frame.extend_from_slice(&ip);
        }
        frame.extend_from_slice(&l4);
        frame
    }

    fn ip_proto(&self, v6: bool) -> u8 {
        match self.proto {
            Proto::Udp => 17,
            Proto::Tcp => 6,
            Proto::Icmp => 1,
            Proto::Icmp6 => 58,
            // A bare IP packet: "no next header" for IPv6, experimental 253 for IPv4.
            _ if v6 => 59,
            _ => 253,
        }
    }

    /// The L4 header and payload (or only payload for a later fragment).
    fn l4(&self) -> Vec<u8> {
        let payload = vec![0u8; self.payload];
        if self.frag_offset != 0 {
            return payload;
        }
        let mut l4 = match self.proto {
            Proto::Udp => {
                let mut h = self.sport.to_be_bytes().to_vec();
                h.extend_from_slice(&self.dport.to_be_bytes());
                h.extend_from_slice(&((8 + self.payload) as u16).to_be_bytes());
                h.extend_from_slice(&[0, 0]);
                h
            }
            Proto::Tcp => {
                let mut h = self.sport.to_be_bytes().to_vec();
                h.extend_from_slice(&self.dport.to_be_bytes());
                h.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 0, 0x50, 0x02, 0xff, 0xff, 0, 0, 0, 0]);
                h
            }
            Proto::Icmp => vec![self.icmp_type.unwrap_or(8), 0, 0, 0, 0, 1, 0, 1],
            Proto::Icmp6 => vec![self.icmp_type.unwrap_or(128), 0, 0, 0, 0, 1, 0, 1],
            _ => Vec::new(),
        };
        l4.extend_from_slice(&payload);
        l4
    }
}

/// The packets in a file: a pcap or pcapng capture (Ethernet link type,
/// read with the pcap-file crate) or raw bytes.
pub fn from_file(bytes: &[u8]) -> Result<Vec<Vec<u8>>, String> {
    const PCAPNG: [u8; 4] = [0x0a, 0x0d, 0x0d, 0x0a];
    let magic = bytes
        .get(..4)
        .map(|m| u32::from_le_bytes([m[0], m[1], m[2], m[3]]));
    let packets = match magic {
        _ if bytes.starts_with(&PCAPNG) => pcapng(bytes)?,
        Some(0xa1b2_c3d4 | 0xa1b2_3c4d | 0xd4c3_b2a1 | 0x4d3c_b2a1) if bytes.len() >= 24 => {
            pcap(bytes)?
        }
        _ => return Ok(vec![bytes.to_vec()]),
    };
    if packets.is_empty() {
        return Err("the capture holds no packets".into());
    }
    Ok(packets)
}

fn ethernet(linktype: pcap_file::DataLink) -> Result<(), String> {
    if linktype == pcap_file::DataLink::ETHERNET {
        return Ok(());
    }
    Err(format!(
        "the capture's link type is {}; XDP sees Ethernet frames (link type 1)",
        u32::from(linktype)
    ))
}

fn pcap(bytes: &[u8]) -> Result<Vec<Vec<u8>>, String> {
    let mut reader =
        pcap_file::pcap::PcapReader::new(bytes).map_err(|e| format!("a bad pcap header: {e}"))?;
    ethernet(reader.header().datalink)?;
    let mut packets = Vec::new();
    while let Some(p) = reader.next_packet() {
        let p = p.map_err(|e| format!("pcap record {}: {e}", packets.len() + 1))?;
        packets.push(p.data.into_owned());
    }
    Ok(packets)
}

fn pcapng(bytes: &[u8]) -> Result<Vec<Vec<u8>>, String> {
    use pcap_file::pcapng::{Block, PcapNgReader};
    let mut reader =
        PcapNgReader::new(bytes).map_err(|e| format!("a bad pcapng section header: {e}"))?;
    let mut packets = Vec::new();
    let mut blocks = 0;
    loop {
        let (data, interface) = match reader.next_block() {
            None => break,
            Some(Err(e)) => return Err(format!("pcapng block {}: {e}", blocks + 2)),
            Some(Ok(Block::EnhancedPacket(p))) => (p.data.into_owned(), p.interface_id),
            Some(Ok(Block::SimplePacket(p))) => (p.data.into_owned(), 0),
            Some(Ok(Block::Packet(p))) => (p.data.into_owned(), u32::from(p.interface_id)),
            Some(Ok(_)) => {
                blocks += 1;
                continue;
            }
        };
        blocks += 1;
        let linktype = reader
            .interfaces()
            .get(interface as usize)
            .map(|i| i.linktype)
            .ok_or_else(|| {
                format!(
                    "pcapng packet {}: no interface {interface} is described",
                    packets.len() + 1
                )
            })?;
        ethernet(linktype)?;
        packets.push(data);
    }
    Ok(packets)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn udp_spec_builds_the_expected_frame() {
        let f: Spec = "udp src=203.0.113.5 dst=10.0.0.1 dport=9999"
            .parse()
            .unwrap();
        let b = f.build();
        assert_eq!(&b[12..14], &[0x08, 0x00]);
        assert_eq!(&b[26..30], &[203, 0, 113, 5]);
        assert_eq!(&b[30..34], &[10, 0, 0, 1]);
        assert_eq!(&b[36..38], &9999u16.to_be_bytes());
        assert_eq!(b.len(), 14 + 20 + 8 + 16);
        assert_eq!(checksum(&b[14..34]), 0, "the IPv4 header checksum is valid");
    }

    #[test]
    fn vlan_and_ipv6_specs() {
        let f: Spec = "vlan=100 vlan=200 icmp6 src=2001:db8::1".parse().unwrap();
        let b = f.build();
        assert_eq!(&b[12..14], &[0x88, 0xa8]);
        assert_eq!(&b[14..16], &100u16.to_be_bytes());
        assert_eq!(&b[16..18], &[0x81, 0x00]);
        assert_eq!(&b[20..22], &[0x86, 0xdd]);
        assert_eq!(b[22 + 6], 58, "next header ICMPv6");
        assert_eq!(b[22 + 40], 128, "echo request");
    }

    #[test]
    fn bad_specs_say_what_is_wrong() {
        assert!(
            "udp dport=70000"
                .parse::<Spec>()
                .unwrap_err()
                .contains("0 to 65535")
        );
        assert!(
            "src=1.2.3.4"
                .parse::<Spec>()
                .unwrap_err()
                .contains("no protocol")
        );
        assert!(
            "udp tcp"
                .parse::<Spec>()
                .unwrap_err()
                .contains("one protocol")
        );
        assert!(
            "icmp src=2001:db8::1"
                .parse::<Spec>()
                .unwrap_err()
                .contains("icmp6")
        );
        assert!(
            "udp frag=3"
                .parse::<Spec>()
                .unwrap_err()
                .contains("multiple of 8")
        );
        assert!(
            "udp bogus"
                .parse::<Spec>()
                .unwrap_err()
                .contains("not understood")
        );
    }

    #[test]
    fn pcap_packets_are_read() {
        let mut pcap = Vec::new();
        for v in [0xa1b2_c3d4u32, 0x0004_0002, 0, 0, 65535, 1] {
            pcap.extend_from_slice(&v.to_le_bytes());
        }
        for data in [&[1u8, 2, 3][..], &[4, 5]] {
            for v in [0u32, 0, data.len() as u32, data.len() as u32] {
                pcap.extend_from_slice(&v.to_le_bytes());
            }
            pcap.extend_from_slice(data);
        }
        assert_eq!(from_file(&pcap).unwrap(), vec![vec![1, 2, 3], vec![4, 5]]);
        assert_eq!(from_file(b"raw").unwrap(), vec![b"raw".to_vec()]);
    }

    #[test]
    fn pcapng_packets_are_read() {
        use std::borrow::Cow;

        use pcap_file::{
            DataLink,
            pcapng::{
                PcapNgWriter,
                blocks::{
                    enhanced_packet::EnhancedPacketBlock,
                    interface_description::InterfaceDescriptionBlock,
                },
            },
        };
        let capture = |linktype: DataLink| {
            let mut w = PcapNgWriter::new(Vec::new()).unwrap();
            w.write_pcapng_block(InterfaceDescriptionBlock {
                linktype,
                snaplen: 65535,
                options: vec![],
            })
            .unwrap();
            for data in [&[1u8, 2, 3][..], &[4, 5]] {
                w.write_pcapng_block(EnhancedPacketBlock {
                    interface_id: 0,
                    timestamp: std::time::Duration::ZERO,
                    original_len: data.len() as u32,
                    data: Cow::Borrowed(data),
                    options: vec![],
                })
                .unwrap();
            }
            w.into_inner()
        };
        assert_eq!(
            from_file(&capture(DataLink::ETHERNET)).unwrap(),
            vec![vec![1, 2, 3], vec![4, 5]]
        );
        let e = from_file(&capture(DataLink::RAW)).unwrap_err();
        assert!(e.contains("link type is 101"), "{e}");
        let mut cut = capture(DataLink::ETHERNET);
        cut.truncate(cut.len() - 3);
        assert!(from_file(&cut).unwrap_err().contains("pcapng block"));
    }
}
