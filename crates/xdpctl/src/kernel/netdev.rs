//! The generic netlink family `netdev` (Linux 6.3+): what a device's
//! driver says it can do with XDP (`xdp-features`), the source `net
//! explain` and a refused native attach are explained from. Built on
//! netlink-packet-generic (the family id is resolved through `nlctrl`).

use netlink_packet_core::{
    DecodeError, DefaultNla, Emitable, Nla, NlasIterator, Parseable, ParseableParametrized,
};
use netlink_packet_generic::{
    GenlFamily, GenlHeader, GenlMessage,
    ctrl::{GenlCtrl, GenlCtrlCmd, nlas::GenlCtrlAttrs},
};
use netlink_sys::{Socket, SocketAddr, protocols::NETLINK_GENERIC};

use super::netlink::NetlinkError;

const NETDEV_CMD_DEV_GET: u8 = 1;
const NETDEV_A_DEV_IFINDEX: u16 = 1;
const NETDEV_A_DEV_XDP_FEATURES: u16 = 3;
const NETDEV_A_DEV_XDP_ZC_MAX_SEGS: u16 = 4;

/// A `netdev` family message: a command and its attributes.
#[derive(Clone, Debug, PartialEq, Eq)]
struct NetdevMsg {
    cmd: u8,
    attrs: Vec<DefaultNla>,
}

impl GenlFamily for NetdevMsg {
    fn family_name() -> &'static str {
        "netdev"
    }
    fn command(&self) -> u8 {
        self.cmd
    }
    fn version(&self) -> u8 {
        1
    }
}

impl Emitable for NetdevMsg {
    fn buffer_len(&self) -> usize {
        self.attrs.as_slice().buffer_len()
    }
    fn emit(&self, buffer: &mut [u8]) {
        self.attrs.as_slice().emit(buffer)
    }
}

impl ParseableParametrized<[u8], GenlHeader> for NetdevMsg {
    fn parse_with_param(buf: &[u8], header: GenlHeader) -> Result<Self, DecodeError> {
        let attrs = NlasIterator::new(buf)
            .map(|nla| nla.and_then(|nla| DefaultNla::parse(&nla)))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(NetdevMsg {
            cmd: header.cmd,
            attrs,
        })
    }
}

/// What the driver of a device says about XDP.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct XdpFeatures {
    /// `xdp-features`: a bit per `enum netdev_xdp_act`.
    pub bits: u64,
    /// `xdp-zc-max-segs`.
    pub zc_max_segs: u32,
}

/// A `netdev` family socket in the calling thread's namespace.
pub struct Netdev {
    socket: Socket,
    family: u16,
    seq: u32,
}

impl Netdev {
    /// Opens it; `None` where the kernel has no `netdev` family (before
    /// 6.3).
    pub fn open() -> Result<Option<Self>, NetlinkError> {
        let mut socket = Socket::new(NETLINK_GENERIC)?;
        socket.bind_auto()?;
        socket.connect(&SocketAddr::new(0, 0))?;
        let _ = socket.set_ext_ack(true);
        let mut me = Netdev {
            socket,
            family: 0,
            seq: 0,
        };
        let ctrl = GenlCtrl {
            cmd: GenlCtrlCmd::GetFamily,
            nlas: vec![GenlCtrlAttrs::FamilyName("netdev".to_owned())],
        };
        let reply = match me.exchange(GenlMessage::from_payload(ctrl)) {
            Ok(r) => r,
            Err(e) if e.errno == libc::ENOENT => return Ok(None),
            Err(e) => return Err(e),
        };
        me.family = reply
            .payload
            .nlas
            .iter()
            .find_map(|a| match a {
                GenlCtrlAttrs::FamilyId(id) => Some(*id),
                _ => None,
            })
            .ok_or_else(|| proto("nlctrl gave no id for the netdev family"))?;
        Ok(Some(me))
    }

    /// The XDP features of the device `ifindex`.
    pub fn xdp_features(&mut self, ifindex: u32) -> Result<XdpFeatures, NetlinkError> {
        let req = NetdevMsg {
            cmd: NETDEV_CMD_DEV_GET,
            attrs: vec![DefaultNla::new(
                NETDEV_A_DEV_IFINDEX,
                ifindex.to_ne_bytes().to_vec(),
            )],
        };
        let mut msg = GenlMessage::from_payload(req);
        msg.set_resolved_family_id(self.family);
        let reply = self.exchange(msg)?;
        let mut f = XdpFeatures::default();
        for a in &reply.payload.attrs {
            let mut v = vec![0u8; a.value_len()];
            a.emit_value(&mut v);
            match (a.kind(), v.len()) {
                (NETDEV_A_DEV_XDP_FEATURES, 8) => {
                    f.bits = u64::from_ne_bytes(v[..8].try_into().unwrap_or_default())
                }
                (NETDEV_A_DEV_XDP_ZC_MAX_SEGS, 4) => {
                    f.zc_max_segs = u32::from_ne_bytes(v[..4].try_into().unwrap_or_default())
                }
                _ => {}
            }
        }
        Ok(f)
    }

    /// Sends one request and reads its one reply.
    fn exchange<F>(&mut self, msg: GenlMessage<F>) -> Result<GenlMessage<F>, NetlinkError>
    where
        F: GenlFamily + Emitable + ParseableParametrized<[u8], GenlHeader> + std::fmt::Debug,
    {
        self.seq = self.seq.wrapping_add(1);
        super::netlink::exchange(&mut self.socket, self.seq, msg, 0)?
            .into_iter()
            .next()
            .ok_or_else(|| proto("no reply from the netdev family"))
    }
}

fn proto(what: &str) -> NetlinkError {
    NetlinkError {
        errno: libc::EPROTO,
        message: Some(what.to_owned()),
    }
}

/// The driver of device `name` in the calling thread's namespace, as
/// ethtool names it (`ETHTOOL_GDRVINFO`); `None` if it does not say.
pub fn driver(name: &str) -> Option<String> {
    const ETHTOOL_GDRVINFO: u32 = 3;
    #[repr(C)]
    struct DrvInfo {
        cmd: u32,
        driver: [u8; 32],
        rest: [u8; 196],
    }
    #[repr(C)]
    struct IfReq {
        name: [u8; libc::IFNAMSIZ],
        data: *mut DrvInfo,
        pad: [u8; 16],
    }
    if name.len() >= libc::IFNAMSIZ {
        return None;
    }
    let mut info = DrvInfo {
        cmd: ETHTOOL_GDRVINFO,
        driver: [0; 32],
        rest: [0; 196],
    };
    let mut req = IfReq {
        name: [0; libc::IFNAMSIZ],
        data: &raw mut info,
        pad: [0; 16],
    };
    req.name[..name.len()].copy_from_slice(name.as_bytes());
    // SAFETY: a datagram socket for the ioctl, closed below; `req` points
    // at `info`, both alive across the call, sized as the kernel expects.
    unsafe {
        let fd = libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0);
        if fd < 0 {
            return None;
        }
        let r = libc::ioctl(fd, libc::SIOCETHTOOL, &raw mut req);
        libc::close(fd);
        if r < 0 {
            return None;
        }
    }
    let end = info.driver.iter().position(|b| *b == 0).unwrap_or(32);
    let d = String::from_utf8_lossy(&info.driver[..end]).into_owned();
    (!d.is_empty()).then_some(d)
}

/// `net.core.bpf_jit_enable`, if readable: read it in the namespace the
/// process started in, the only one that has it.
pub fn jit_enable() -> Option<u32> {
    std::fs::read_to_string("/proc/sys/net/core/bpf_jit_enable")
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// The page size.
pub fn page_size() -> u32 {
    // SAFETY: sysconf has no preconditions.
    let p = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    u32::try_from(p).unwrap_or(4096)
}
