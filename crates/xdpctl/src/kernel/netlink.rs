//! rtnetlink, for what has no `bpf(2)` equivalent: devices and their XDP
//! state (`IFLA_XDP`), legacy XDP attach and detach, and tc `cls_bpf`
//! filters. Built on netlink-packet-route and netlink-sys; kernel error
//! messages (extended acks) are passed on, because they say things like
//! "Native and generic XDP can't be active at the same time."

use std::{fmt, io, os::fd::RawFd};

use netlink_packet_core::{
    NLM_F_ACK, NLM_F_CREATE, NLM_F_DUMP, NLM_F_EXCL, NLM_F_REPLACE, NLM_F_REQUEST, NetlinkMessage,
    NetlinkPayload,
};
use netlink_packet_route::{
    RouteNetlinkMessage,
    link::{LinkAttribute, LinkExtentMask, LinkInfo, LinkMessage, LinkXdp},
    tc::{TcAttribute, TcBpfFlags, TcFilterBpfOption, TcHandle, TcMessage, TcOption},
};
use netlink_sys::{Socket, SocketAddr, protocols::NETLINK_ROUTE};

use crate::model::{linkpin, xdp::XdpMode};

/// A failed netlink request: the errno and the kernel's message, if any.
#[derive(Debug)]
pub struct NetlinkError {
    /// The error number.
    pub errno: i32,
    /// The extended ack message.
    pub message: Option<String>,
}

impl fmt::Display for NetlinkError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let os = crate::kernel::sys::errno_text(self.errno);
        match &self.message {
            Some(m) => write!(f, "{} ({os})", m.trim_end_matches('.')),
            None => f.write_str(&os),
        }
    }
}

impl std::error::Error for NetlinkError {}

impl From<io::Error> for NetlinkError {
    fn from(e: io::Error) -> Self {
        NetlinkError {
            errno: e.raw_os_error().unwrap_or(libc::EIO),
            message: None,
        }
    }
}

/// An rtnetlink socket in the calling thread's network namespace.
pub struct Rtnl {
    socket: Socket,
    seq: u32,
}

/// The XDP state of a device: the program id per mode (0: none).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct XdpState {
    /// Generic (skb) mode.
    pub generic: u32,
    /// Native (driver) mode.
    pub driver: u32,
    /// Offload (hardware) mode.
    pub offload: u32,
}

impl XdpState {
    /// `(mode, program id)` for every mode with a program.
    pub fn attached(&self) -> Vec<(XdpMode, u32)> {
        [
            (XdpMode::Native, self.driver),
            (XdpMode::Generic, self.generic),
            (XdpMode::Offload, self.offload),
        ]
        .into_iter()
        .filter(|(_, id)| *id != 0)
        .collect()
    }
}

/// A network device.
#[derive(Clone, Debug)]
pub struct Device {
    /// Interface index.
    pub ifindex: u32,
    /// Interface name.
    pub name: String,
    /// Its XDP programs.
    pub xdp: XdpState,
    /// What kind of device it is, and how it sits among the others.
    pub link: LinkFacts,
}

/// A device's kind and place, as rtnetlink reports them: what `net
/// explain` tells native XDP's chances from.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LinkFacts {
    /// `IFLA_INFO_KIND` (`veth`, `bridge`, `vxlan`, `bond`, `vlan`, ...);
    /// none for a physical device.
    pub kind: Option<String>,
    /// `IFLA_INFO_PORT_KIND`: what its master is (`bridge`, `bond`, ...).
    pub port_kind: Option<String>,
    /// Its master's ifindex (a bridge's port, a bond's slave).
    pub master: Option<u32>,
    /// `IFLA_LINK`: the device it sits on (a VLAN's or macvlan's), or a
    /// veth's peer (in its own namespace, perhaps another).
    pub link: Option<u32>,
    /// The namespace `link` is in, when another (`IFLA_LINK_NETNSID`, an
    /// id this namespace gives it).
    pub link_netnsid: Option<i32>,
    /// The MTU.
    pub mtu: u32,
    /// RX and TX queues.
    pub rx_queues: u32,
    /// See `rx_queues`.
    pub tx_queues: u32,
}

/// A tc `cls_bpf` filter.
#[derive(Clone, Debug)]
pub struct TcBpfFilter {
    /// Filter priority.
    pub priority: u16,
    /// Filter handle.
    pub handle: u32,
    /// The name tc gives it (object file and section, or program name).
    pub name: String,
    /// The program id.
    pub prog_id: u32,
    /// Whether it runs in direct-action mode.
    pub direct_action: bool,
    /// The protocol it catches (an EtherType; `ETH_P_ALL`: every one).
    pub protocol: u16,
}

/// The qdisc a device's ingress filters hang from (handle `ffff:`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IngressQdisc {
    /// `tc qdisc add dev X clsact`: ingress and egress filters.
    Clsact,
    /// The legacy `tc qdisc add dev X ingress`: ingress filters only.
    ///
    /// NB: it answers a filter dump for any minor, so a dump on clsact's
    /// egress parent lists its ingress filters again.
    Ingress,
}

/// clsact's ingress and egress parents (an `ingress` qdisc's filters are
/// found under the first too).
pub const CLSACT_INGRESS: TcHandle = TcHandle {
    major: 0xffff,
    minor: 0xfff2,
};
/// See [`CLSACT_INGRESS`].
pub const CLSACT_EGRESS: TcHandle = TcHandle {
    major: 0xffff,
    minor: 0xfff3,
};

impl Rtnl {
    /// Opens a socket with extended acks.
    pub fn open() -> io::Result<Self> {
        let mut socket = Socket::new(NETLINK_ROUTE)?;
        socket.bind_auto()?;
        socket.connect(&SocketAddr::new(0, 0))?;
        socket.set_ext_ack(true)?;
        socket.set_cap_ack(true)?;
        Ok(Rtnl { socket, seq: 0 })
    }

    fn exchange(
        &mut self,
        msg: RouteNetlinkMessage,
        flags: u16,
    ) -> Result<Vec<RouteNetlinkMessage>, NetlinkError> {
        self.seq = self.seq.wrapping_add(1);
        exchange(&mut self.socket, self.seq, msg, flags)
    }

    /// The device of the namespace that a link pin or record names (its
    /// name as the pin holds it, see [`linkpin::pin_name`]).
    pub fn device_of_pin(&mut self, pin_dev: &str) -> Result<Option<Device>, NetlinkError> {
        Ok(self
            .devices()?
            .into_iter()
            .find(|d| linkpin::pin_name(&d.name) == pin_dev))
    }

    /// Every device of the namespace.
    pub fn devices(&mut self) -> Result<Vec<Device>, NetlinkError> {
        let replies = self.exchange(RouteNetlinkMessage::GetLink(get_link()), NLM_F_DUMP)?;
        let mut devices: Vec<Device> = replies.into_iter().filter_map(device).collect();
        devices.sort_by_key(|d| d.ifindex);
        Ok(devices)
    }

    /// The device named `name`, if there is one.
    pub fn device(&mut self, name: &str) -> Result<Option<Device>, NetlinkError> {
        let mut msg = get_link();
        msg.attributes.push(LinkAttribute::IfName(name.to_owned()));
        match self.exchange(RouteNetlinkMessage::GetLink(msg), 0) {
            Ok(replies) => Ok(replies.into_iter().find_map(device)),
            Err(e) if e.errno == libc::ENODEV => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The device `ifindex` of the namespace this one knows as `netnsid`
    /// (`IFLA_TARGET_NETNSID`): a veth's peer elsewhere.
    pub fn device_in(
        &mut self,
        netnsid: i32,
        ifindex: u32,
    ) -> Result<Option<Device>, NetlinkError> {
        const IFLA_TARGET_NETNSID: u16 = 46;
        let mut msg = get_link();
        msg.header.index = ifindex;
        msg.attributes
            .push(LinkAttribute::Other(netlink_packet_core::DefaultNla::new(
                IFLA_TARGET_NETNSID,
                netnsid.to_ne_bytes().to_vec(),
            )));
        match self.exchange(RouteNetlinkMessage::GetLink(msg), 0) {
            Ok(replies) => Ok(replies.into_iter().find_map(device)),
            Err(e) if e.errno == libc::ENODEV => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Sets the XDP program of a device over netlink (`IFLA_XDP`): `fd` -1
    /// detaches. `expected_fd` makes it a compare-and-swap
    /// (`XDP_FLAGS_REPLACE`).
    pub fn set_xdp(
        &mut self,
        ifindex: u32,
        fd: RawFd,
        flags: u32,
        expected_fd: Option<RawFd>,
    ) -> Result<(), NetlinkError> {
        let mut msg = LinkMessage::default();
        msg.header.index = ifindex;
        let mut xdp = vec![LinkXdp::Fd(fd), LinkXdp::Flags(flags)];
        if let Some(expected) = expected_fd {
            xdp.push(LinkXdp::ExpectedFd(expected as u32));
        }
        msg.attributes.push(LinkAttribute::Xdp(xdp));
        pinfs::failpoint::step("RTM_SETLINK");
        self.exchange(RouteNetlinkMessage::SetLink(msg), NLM_F_ACK)
            .map(drop)
    }

    /// Whether a bpf_link holds the XDP program of a device in the mode of
    /// `mode_flag`: asks to replace the program `prog_fd` (the one attached)
    /// with itself. The kernel refuses any netlink change of a program a
    /// link holds (EBUSY, "Can't replace active BPF XDP link") before it
    /// looks at anything else, and otherwise, the program being the same,
    /// changes nothing and does not call the driver.
    pub fn xdp_held_by_link(
        &mut self,
        ifindex: u32,
        prog_fd: RawFd,
        mode_flag: u32,
    ) -> Result<bool, NetlinkError> {
        let mut msg = LinkMessage::default();
        msg.header.index = ifindex;
        msg.attributes.push(LinkAttribute::Xdp(vec![
            LinkXdp::Fd(prog_fd),
            LinkXdp::Flags(mode_flag | crate::kernel::sys::xdp_flags::REPLACE),
            LinkXdp::ExpectedFd(prog_fd as u32),
        ]));
        match self.exchange(RouteNetlinkMessage::SetLink(msg), NLM_F_ACK) {
            Ok(_) => Ok(false),
            Err(e) if e.errno == libc::EBUSY => Ok(true),
            Err(e) => Err(e),
        }
    }

    /// The ingress qdisc (`clsact` or `ingress`) of every device that has
    /// one, by ifindex.
    pub fn ingress_qdiscs(
        &mut self,
    ) -> Result<std::collections::HashMap<u32, IngressQdisc>, NetlinkError> {
        let replies = self.exchange(
            RouteNetlinkMessage::GetQueueDiscipline(TcMessage::default()),
            NLM_F_DUMP,
        )?;
        let mut found = std::collections::HashMap::new();
        for reply in replies {
            let RouteNetlinkMessage::NewQueueDiscipline(q) = reply else {
                continue;
            };
            if q.header.handle.major != 0xffff {
                continue;
            }
            let kind = q.attributes.iter().find_map(|a| match a {
                TcAttribute::Kind(k) if k == "clsact" => Some(IngressQdisc::Clsact),
                TcAttribute::Kind(k) if k == "ingress" => Some(IngressQdisc::Ingress),
                _ => None,
            });
            if let (Some(kind), Ok(ifindex)) = (kind, u32::try_from(q.header.index)) {
                found.insert(ifindex, kind);
            }
        }
        Ok(found)
    }

    /// The `cls_bpf` filters under a parent (clsact ingress or egress) of a
    /// device. A device without that qdisc has none.
    pub fn tc_bpf_filters(
        &mut self,
        ifindex: u32,
        parent: TcHandle,
    ) -> Result<Vec<TcBpfFilter>, NetlinkError> {
        let mut msg = TcMessage::default();
        msg.header.index = ifindex as i32;
        msg.header.parent = parent;
        let replies = match self.exchange(RouteNetlinkMessage::GetTrafficFilter(msg), NLM_F_DUMP) {
            Ok(replies) => replies,
            Err(e) if matches!(e.errno, libc::EINVAL | libc::ENOENT) => return Ok(Vec::new()),
            Err(e) => return Err(e),
        };
        let mut filters = Vec::new();
        for reply in replies {
            let RouteNetlinkMessage::NewTrafficFilter(tc) = reply else {
                continue;
            };
            let is_bpf = tc
                .attributes
                .iter()
                .any(|a| matches!(a, TcAttribute::Kind(k) if k == "bpf"));
            if !is_bpf {
                continue;
            }
            let mut filter = TcBpfFilter {
                priority: (tc.header.info >> 16) as u16,
                handle: u32::from(tc.header.handle),
                name: String::new(),
                prog_id: 0,
                direct_action: false,
                // tcm_info: the priority, then the protocol (network order).
                protocol: u16::from_be((tc.header.info & 0xffff) as u16),
            };
            for attr in &tc.attributes {
                let TcAttribute::Options(options) = attr else {
                    continue;
                };
                for option in options {
                    let TcOption::Bpf(bpf) = option else { continue };
                    match bpf {
                        TcFilterBpfOption::ProgName(name) => filter.name = name.clone(),
                        TcFilterBpfOption::ProgId(id) => filter.prog_id = *id,
                        TcFilterBpfOption::Flags(flags) => {
                            // TCA_BPF_FLAG_ACT_DIRECT
                            filter.direct_action = flags.bits() & 1 != 0;
                        }
                        _ => {}
                    }
                }
            }
            // A dump also lists each priority's head entry, which carries no
            // program (tc prints it as `pref N bpf chain 0`); skip those.
            if filter.prog_id != 0 {
                filters.push(filter);
            }
        }
        Ok(filters)
    }
}

/// clsact's parent for filters at ingress or `egress`.
pub fn clsact_parent(egress: bool) -> TcHandle {
    if egress {
        CLSACT_EGRESS
    } else {
        CLSACT_INGRESS
    }
}

/// The handle xdpctl's tc filters have (one filter a priority).
pub const TC_FILTER_HANDLE: u32 = 1;

impl Rtnl {
    /// Adds a clsact qdisc to a device (`tc qdisc add dev X clsact`).
    pub fn add_clsact(&mut self, ifindex: u32) -> Result<(), NetlinkError> {
        self.exchange(
            RouteNetlinkMessage::NewQueueDiscipline(clsact_message(ifindex)),
            NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL,
        )
        .map(drop)
    }

    /// Deletes a device's clsact qdisc, with its filters.
    pub fn del_clsact(&mut self, ifindex: u32) -> Result<(), NetlinkError> {
        self.exchange(
            RouteNetlinkMessage::DelQueueDiscipline(clsact_message(ifindex)),
            NLM_F_ACK,
        )
        .map(drop)
    }

    /// Adds a direct-action `cls_bpf` filter running the program `fd` (as
    /// `name`) under `parent` of a device, priority `prio`, handle
    /// [`TC_FILTER_HANDLE`], for every protocol: refused if the priority
    /// holds that handle already (`tc filter add ... bpf da`). With
    /// `replace`, the filter there runs `fd` instead, atomically (`tc filter
    /// replace`): a packet meets the old program or the new one.
    pub fn put_bpf_filter(
        &mut self,
        ifindex: u32,
        parent: TcHandle,
        prio: u16,
        fd: RawFd,
        name: &str,
        replace: bool,
    ) -> Result<(), NetlinkError> {
        let flags = if replace {
            NLM_F_REPLACE
        } else {
            NLM_F_CREATE | NLM_F_EXCL
        };
        let mut msg = filter_message(ifindex, parent, prio);
        msg.attributes.push(TcAttribute::Options(vec![
            TcOption::Bpf(TcFilterBpfOption::ProgFd(fd as u32)),
            TcOption::Bpf(TcFilterBpfOption::ProgName(name.to_owned())),
            TcOption::Bpf(TcFilterBpfOption::Flags(TcBpfFlags::DirectAction)),
        ]));
        pinfs::failpoint::step("RTM_NEWTFILTER");
        self.exchange(
            RouteNetlinkMessage::NewTrafficFilter(msg),
            NLM_F_ACK | flags,
        )
        .map(drop)
    }

    /// Deletes the `cls_bpf` filter at priority `prio`, handle
    /// [`TC_FILTER_HANDLE`], under `parent` of a device.
    pub fn del_bpf_filter(
        &mut self,
        ifindex: u32,
        parent: TcHandle,
        prio: u16,
    ) -> Result<(), NetlinkError> {
        let msg = filter_message(ifindex, parent, prio);
        pinfs::failpoint::step("RTM_DELTFILTER");
        self.exchange(RouteNetlinkMessage::DelTrafficFilter(msg), NLM_F_ACK)
            .map(drop)
    }
}

/// A device's clsact qdisc (handle `ffff:`, parent `TC_H_CLSACT`).
fn clsact_message(ifindex: u32) -> TcMessage {
    let mut msg = TcMessage::default();
    msg.header.index = ifindex as i32;
    msg.header.handle = TcHandle {
        major: 0xffff,
        minor: 0,
    };
    msg.header.parent = TcHandle {
        major: 0xffff,
        minor: 0xfff1,
    };
    msg.attributes.push(TcAttribute::Kind("clsact".into()));
    msg
}

/// A `cls_bpf` filter's message header: device, parent, priority, handle
/// [`TC_FILTER_HANDLE`], every protocol (`ETH_P_ALL`).
fn filter_message(ifindex: u32, parent: TcHandle, prio: u16) -> TcMessage {
    let mut msg = TcMessage::default();
    msg.header.index = ifindex as i32;
    msg.header.parent = parent;
    msg.header.handle = TcHandle::from(TC_FILTER_HANDLE);
    msg.header.info = (u32::from(prio) << 16) | u32::from((libc::ETH_P_ALL as u16).to_be());
    msg.attributes.push(TcAttribute::Kind("bpf".into()));
    msg
}

/// Sends `msg` as request `seq` on `socket` and gathers its replies: all
/// of a dump's, the one of a request, or none for an ack. The kernel's
/// error (with its extended ack message) is the error. One loop for every
/// netlink family xdpctl speaks (rtnetlink, generic netlink).
pub(crate) fn exchange<T>(
    socket: &mut Socket,
    seq: u32,
    msg: T,
    flags: u16,
) -> Result<Vec<T>, NetlinkError>
where
    T: netlink_packet_core::NetlinkSerializable
        + netlink_packet_core::NetlinkDeserializable
        + fmt::Debug,
    NetlinkPayload<T>: From<T>,
{
    let mut req = NetlinkMessage::from(msg);
    req.header.flags = NLM_F_REQUEST | flags;
    req.header.sequence_number = seq;
    req.finalize();
    let mut buf = vec![0; req.header.length as usize];
    req.serialize(&mut buf);
    socket.send(&buf, 0)?;

    let dump = flags & NLM_F_DUMP == NLM_F_DUMP;
    let mut replies = Vec::new();
    // NB: one recv(2) a datagram into room for the largest the kernel
    // sends (a dump's are at most 32 KiB; a device's own message is far
    // less), not netlink-sys's peek then read: a short command makes a
    // few of these. Untouched room costs nothing.
    const ROOM: usize = 1 << 17;
    let mut data: Vec<u8> = Vec::with_capacity(ROOM);
    loop {
        data.clear();
        let len = socket.recv(&mut data, libc::MSG_TRUNC)?;
        if len > ROOM {
            return Err(NetlinkError {
                errno: libc::EMSGSIZE,
                message: Some(format!("a netlink reply of {len} bytes, over {ROOM}")),
            });
        }
        let mut offset = 0;
        while offset < data.len() {
            let msg =
                NetlinkMessage::<T>::deserialize(&data[offset..]).map_err(|e| NetlinkError {
                    errno: libc::EPROTO,
                    message: Some(format!("cannot parse a netlink reply: {e}")),
                })?;
            let len = msg.header.length as usize;
            if len == 0 {
                break;
            }
            offset += (len + 3) & !3;
            if msg.header.sequence_number != seq {
                continue;
            }
            match msg.payload {
                NetlinkPayload::Done(_) => return Ok(replies),
                NetlinkPayload::Error(err) => {
                    return match err.code {
                        None => Ok(replies),
                        Some(code) => Err(NetlinkError {
                            errno: -code.get(),
                            message: ext_ack_message(&err.header),
                        }),
                    };
                }
                NetlinkPayload::InnerMessage(inner) => {
                    replies.push(inner);
                    if !dump && flags & NLM_F_ACK == 0 {
                        return Ok(replies);
                    }
                }
                _ => {}
            }
        }
    }
}

/// An `RTM_GETLINK` request without the devices' counters, which no caller
/// reads: a third of each reply, and of parsing it.
fn get_link() -> LinkMessage {
    let mut msg = LinkMessage::default();
    msg.attributes
        .push(LinkAttribute::ExtMask(vec![LinkExtentMask::SkipStats]));
    msg
}

fn device(msg: RouteNetlinkMessage) -> Option<Device> {
    let RouteNetlinkMessage::NewLink(link) = msg else {
        return None;
    };
    let mut dev = Device {
        ifindex: link.header.index,
        name: String::new(),
        xdp: XdpState::default(),
        link: LinkFacts::default(),
    };
    for attr in link.attributes {
        match attr {
            LinkAttribute::IfName(name) => dev.name = name,
            LinkAttribute::Mtu(mtu) => dev.link.mtu = mtu,
            LinkAttribute::Controller(m) => dev.link.master = Some(m),
            LinkAttribute::Link(l) => dev.link.link = Some(l),
            LinkAttribute::LinkNetNsId(id) => dev.link.link_netnsid = Some(id),
            LinkAttribute::NumRxQueues(n) => dev.link.rx_queues = n,
            LinkAttribute::NumTxQueues(n) => dev.link.tx_queues = n,
            LinkAttribute::LinkInfo(infos) => {
                for info in infos {
                    match info {
                        LinkInfo::Kind(k) => dev.link.kind = Some(k.to_string()),
                        LinkInfo::PortKind(k) => dev.link.port_kind = Some(k.to_string()),
                        _ => {}
                    }
                }
            }
            LinkAttribute::Xdp(xdp) => {
                for x in xdp {
                    match x {
                        LinkXdp::SkbProgId(id) => dev.xdp.generic = id,
                        LinkXdp::DrvProgId(id) => dev.xdp.driver = id,
                        LinkXdp::HwProgId(id) => dev.xdp.offload = id,
                        _ => {}
                    }
                }
            }
            _ => {}
        }
    }
    Some(dev)
}

/// The `NLMSGERR_ATTR_MSG` string of an error reply's payload (after the
/// error code: the request's header, capped, then the ack TLVs).
fn ext_ack_message(payload: &[u8]) -> Option<String> {
    const NLMSG_HDRLEN: usize = 16;
    const NLMSGERR_ATTR_MSG: u16 = 1;
    let mut tlvs = payload.get(NLMSG_HDRLEN..)?;
    while tlvs.len() >= 4 {
        let len = u16::from_ne_bytes([tlvs[0], tlvs[1]]) as usize;
        let kind = u16::from_ne_bytes([tlvs[2], tlvs[3]]) & 0x3fff;
        if len < 4 || len > tlvs.len() {
            break;
        }
        if kind == NLMSGERR_ATTR_MSG {
            let text = &tlvs[4..len];
            let text = text.split(|b| *b == 0).next().unwrap_or(text);
            return Some(String::from_utf8_lossy(text).into_owned());
        }
        tlvs = &tlvs[((len + 3) & !3).min(tlvs.len())..];
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ext_ack_message_is_found_after_the_capped_header() {
        let mut payload = vec![0u8; 16];
        let msg = b"Native and generic XDP can't be active at the same time.\0";
        let len = (4 + msg.len()) as u16;
        payload.extend_from_slice(&len.to_ne_bytes());
        payload.extend_from_slice(&1u16.to_ne_bytes());
        payload.extend_from_slice(msg);
        assert_eq!(
            ext_ack_message(&payload).as_deref(),
            Some("Native and generic XDP can't be active at the same time.")
        );
        assert_eq!(ext_ack_message(&payload[..16]), None);
    }

    #[test]
    fn errors_read_like_the_kernel_says_them() {
        let e = NetlinkError {
            errno: libc::EEXIST,
            message: Some("XDP program already attached.".into()),
        };
        assert_eq!(e.to_string(), "XDP program already attached (File exists)");
    }
}
