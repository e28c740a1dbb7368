//! Captured packets as pcapng (`xdpctl capture -w`): one interface block
//! per device, nanosecond timestamps, and each packet's verdict and rule
//! in its comment, so that Wireshark and `tshark -T fields -e
//! frame.comment` show why the firewall did what it did.

use std::{borrow::Cow, collections::HashMap, io::Write, time::Duration};

use pcap_file::{
    DataLink,
    pcapng::{
        PcapNgWriter,
        blocks::interface_description::{InterfaceDescriptionBlock, InterfaceDescriptionOption},
    },
};

/// epb_flags: inbound (bits 0-1 = 01). XDP sees received packets only.
const INBOUND: u32 = 0b01;

/// A pcapng stream being written.
pub struct Pcapng<W: Write> {
    writer: PcapNgWriter<W>,
    interfaces: HashMap<u32, u32>,
    snaplen: u32,
    /// The packet block being put together (reused: one write per packet).
    block: Vec<u8>,
    /// The last device written (ifindex, interface id): most packets of a
    /// capture come from one device, and this runs per packet.
    last: Option<(u32, u32)>,
}

/// One packet to write.
pub struct Packet<'a> {
    /// The ingress device's index and name.
    pub ifindex: u32,
    /// Its name, for the interface block.
    pub device: &'a str,
    /// Wall-clock time since the Unix epoch.
    pub time: Duration,
    /// The frame's length on the wire.
    pub len: u32,
    /// The bytes captured (cut to the snap length here).
    pub data: &'a [u8],
    /// The comment: verdict, rule, CPU and queue.
    pub comment: &'a str,
}

impl<W: Write> Pcapng<W> {
    /// Starts a stream (the section header goes out at once).
    pub fn new(out: W, snaplen: u32) -> std::io::Result<Self> {
        let writer = PcapNgWriter::new(out).map_err(std::io::Error::other)?;
        Ok(Pcapng {
            writer,
            interfaces: HashMap::new(),
            snaplen,
            block: Vec::with_capacity(256),
            last: None,
        })
    }

    /// Writes the interface block of a device (once), so that a file with
    /// no packet yet is one readers take (they want an interface).
    pub fn interface(&mut self, ifindex: u32, device: &str) -> std::io::Result<u32> {
        if let Some(id) = self.interfaces.get(&ifindex) {
            return Ok(*id);
        }
        let id = self.interfaces.len() as u32;
        self.writer
            .write_pcapng_block(InterfaceDescriptionBlock {
                linktype: DataLink::ETHERNET,
                snaplen: self.snaplen,
                options: vec![
                    InterfaceDescriptionOption::IfName(Cow::Owned(device.to_owned())),
                    // Nanoseconds, as the kernel's clock gives them.
                    InterfaceDescriptionOption::IfTsResol(9),
                ],
            })
            .map_err(std::io::Error::other)?;
        self.interfaces.insert(ifindex, id);
        Ok(id)
    }

    /// Writes a packet (and its device's interface block, the first time).
    ///
    /// NB: the Enhanced Packet Block is put together here, in the section's
    /// byte order (pcap-file's writer writes it native), in one buffer and
    /// one write: pcap-file builds a block value with a vector of options
    /// and writes it field by field, which cost the capture more than the
    /// rest of its work per packet (the bench's writer row). The layout is
    /// the pcapng draft's section 4.3; the test reads it back with
    /// pcap-file's reader.
    pub fn write(&mut self, p: &Packet<'_>) -> std::io::Result<()> {
        let id = match self.last {
            Some((ifindex, id)) if ifindex == p.ifindex => id,
            _ => {
                let id = self.interface(p.ifindex, p.device)?;
                self.last = Some((p.ifindex, id));
                id
            }
        };
        let data = &p.data[..p.data.len().min(self.snaplen as usize)];
        let comment = &p.comment.as_bytes()[..p.comment.len().min(0xfff0)];
        let pad = |n: usize| (4 - n % 4) % 4;
        let total =
            32 + data.len() + pad(data.len()) + 4 + comment.len() + pad(comment.len()) + 8 + 4;
        let ns = p.time.as_nanos() as u64;
        let b = &mut self.block;
        b.clear();
        for word in [
            6u32, // Enhanced Packet Block
            total as u32,
            id,
            (ns >> 32) as u32,
            ns as u32,
            data.len() as u32,
            p.len,
        ] {
            b.extend_from_slice(&word.to_ne_bytes());
        }
        b.extend_from_slice(data);
        b.extend_from_slice(&[0u8; 3][..pad(data.len())]);
        // opt_comment (1), epb_flags (2), opt_endofopt (0).
        b.extend_from_slice(&1u16.to_ne_bytes());
        b.extend_from_slice(&(comment.len() as u16).to_ne_bytes());
        b.extend_from_slice(comment);
        b.extend_from_slice(&[0u8; 3][..pad(comment.len())]);
        b.extend_from_slice(&2u16.to_ne_bytes());
        b.extend_from_slice(&4u16.to_ne_bytes());
        b.extend_from_slice(&INBOUND.to_ne_bytes());
        b.extend_from_slice(&[0u8; 4]);
        b.extend_from_slice(&(total as u32).to_ne_bytes());
        debug_assert_eq!(b.len(), total);
        self.writer.get_mut().write_all(b)
    }

    /// Pushes what was written to the reader (a pipe to tcpdump).
    pub fn flush(&mut self) -> std::io::Result<()> {
        self.writer.get_mut().flush()
    }
}

#[cfg(test)]
mod tests {
    use pcap_file::pcapng::{Block, PcapNgReader};

    use super::*;

    #[test]
    fn packets_read_back_with_their_device_comment_and_cut() {
        let mut out = Pcapng::new(Vec::new(), 4).unwrap();
        for (ifindex, device) in [(7, "veth0"), (9, "veth1"), (7, "veth0")] {
            out.write(&Packet {
                ifindex,
                device,
                time: Duration::from_nanos(1_700_000_000_123_456_789),
                len: 60,
                data: &[1, 2, 3, 4, 5, 6],
                comment: &format!("XDP_DROP blocklist 10.0.0.{ifindex}"),
            })
            .unwrap();
        }
        let bytes = out.writer.into_inner();
        let mut r = PcapNgReader::new(&bytes[..]).unwrap();
        let (mut names, mut packets) = (Vec::new(), Vec::new());
        while let Some(b) = r.next_block() {
            match b.unwrap() {
                Block::InterfaceDescription(i) => names.push(format!("{:?}", i.options[0])),
                Block::EnhancedPacket(p) => packets.push((
                    p.interface_id,
                    p.timestamp.as_nanos(),
                    p.original_len,
                    p.data.to_vec(),
                    format!("{:?}", p.options[0]),
                )),
                _ => {}
            }
        }
        assert_eq!(names.len(), 2, "one block per device: {names:?}");
        assert!(names[1].contains("veth1"));
        assert_eq!(packets.len(), 3);
        let flags = |p: &pcap_file::pcapng::blocks::enhanced_packet::EnhancedPacketBlock| {
            format!("{:?}", p.options)
        };
        let mut r = PcapNgReader::new(&bytes[..]).unwrap();
        while let Some(b) = r.next_block() {
            if let Block::EnhancedPacket(p) = b.unwrap() {
                assert!(flags(&p).contains("Flags(1)"), "{}", flags(&p));
            }
        }
        assert_eq!(
            packets[2],
            (
                0,
                1_700_000_000_123_456_789,
                60,
                vec![1, 2, 3, 4],
                "Comment(\"XDP_DROP blocklist 10.0.0.7\")".into()
            )
        );
        assert_eq!(packets[1].0, 1);
    }
}
