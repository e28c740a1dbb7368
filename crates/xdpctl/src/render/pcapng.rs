//! Captured packets as pcapng (`xdpctl capture -w`): one interface block
//! per device, nanosecond timestamps, and each packet's verdict and rule
//! in its comment, so that Wireshark and `tshark -T fields -e
//! frame.comment` show why the firewall did what it did.

use std::{borrow::Cow, collections::HashMap, io::Write, time::Duration};

use pcap_file::{
    DataLink,
    pcapng::{
        PcapNgWriter,
        blocks::{
            enhanced_packet::{EnhancedPacketBlock, EnhancedPacketOption},
            interface_description::{InterfaceDescriptionBlock, InterfaceDescriptionOption},
        },
    },
};

/// epb_flags: inbound (bits 0-1 = 01). XDP sees received packets only.
const INBOUND: u32 = 0b01;

/// A pcapng stream being written.
pub struct Pcapng<W: Write> {
    writer: PcapNgWriter<W>,
    interfaces: HashMap<u32, u32>,
    snaplen: u32,
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
    pub fn write(&mut self, p: &Packet<'_>) -> std::io::Result<()> {
        let id = self.interface(p.ifindex, p.device)?;
        let keep = p.data.len().min(self.snaplen as usize);
        self.writer
            .write_pcapng_block(EnhancedPacketBlock {
                interface_id: id,
                timestamp: p.time,
                original_len: p.len,
                data: Cow::Borrowed(&p.data[..keep]),
                options: vec![
                    EnhancedPacketOption::Comment(Cow::Borrowed(p.comment)),
                    EnhancedPacketOption::Flags(INBOUND),
                ],
            })
            .map_err(std::io::Error::other)?;
        Ok(())
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
