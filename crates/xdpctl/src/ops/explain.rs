//! `xdpctl net explain`, and the reason a native attach was refused:
//! each device's facts gathered from the kernel (rtnetlink, the netdev
//! family's `xdp-features`, ethtool's driver name, the JIT's sysctl) and
//! explained by [`model::explain`](crate::model::explain).

use anyhow::{Context as _, Result, bail};
use serde::Serialize;

use crate::{
    kernel::{
        netdev::{self, Netdev},
        netlink::{Device, Rtnl},
    },
    model::explain::{self, Explanation, Facts},
};

/// One device, explained. This is the documented JSON shape.
#[derive(Debug, Serialize)]
pub struct DeviceExplained {
    /// Interface name.
    pub device: String,
    /// Interface index.
    pub ifindex: u32,
    /// `IFLA_INFO_KIND`; null for a physical device.
    pub kind: Option<String>,
    /// The driver, as ethtool names it.
    pub driver: Option<String>,
    /// The MTU.
    pub mtu: u32,
    /// The driver's `xdp-features` by name; null where the kernel does
    /// not report them (before 6.3).
    pub xdp_features: Option<Vec<&'static str>>,
    /// The programs it runs now, by mode.
    pub attached: Vec<AttachedProg>,
    /// Native XDP: yes, frags-only, no, unknown; why, what instead.
    #[serde(flatten)]
    pub explanation: Explanation,
}

/// A program a device runs.
#[derive(Debug, Serialize)]
pub struct AttachedProg {
    /// `native`, `generic` or `offload`.
    pub mode: String,
    /// The program id.
    pub prog_id: u32,
}

/// The answer for a namespace.
#[derive(Debug, Serialize)]
pub struct NetExplain {
    /// `net.core.bpf_jit_enable` (null: unreadable).
    pub bpf_jit_enable: Option<u32>,
    /// Whether the programs in question declare frags.
    pub frags: bool,
    /// The devices.
    pub devices: Vec<DeviceExplained>,
}

/// Explains every device of the current namespace, or `only`, for a
/// program that declares frags or not. `netns` names the namespace in
/// errors; `jit` is [`netdev::jit_enable`], read before entering it (the sysctl
/// is the first namespace's only).
pub fn explain_devices(
    only: Option<&str>,
    netns: Option<&str>,
    frags: bool,
    jit: Option<u32>,
) -> Result<NetExplain> {
    let mut rtnl = Rtnl::open().context("opening rtnetlink")?;
    let all = rtnl.devices().context("listing devices")?;
    let chosen: Vec<&Device> = match only {
        Some(name) => match all.iter().find(|d| d.name == name) {
            Some(d) => vec![d],
            None => match netns {
                Some(ns) => bail!("no device named {name} in network namespace {ns}"),
                None => bail!(
                    "no device named {name} (see `ip link`; use --netns for another namespace)"
                ),
            },
        },
        None => all.iter().collect(),
    };
    let mut family = Netdev::open().context("opening the netdev generic netlink family")?;
    let mut devices = Vec::new();
    for dev in chosen {
        let features = match family.as_mut() {
            Some(f) => Some(
                f.xdp_features(dev.ifindex)
                    .with_context(|| format!("reading the XDP features of {}", dev.name))?
                    .bits,
            ),
            None => None,
        };
        let mut facts = facts(&mut rtnl, dev, &all, features, jit);
        facts.netns = netns.map(str::to_owned);
        devices.push(DeviceExplained {
            device: dev.name.clone(),
            ifindex: dev.ifindex,
            kind: dev.link.kind.clone(),
            driver: facts.driver.clone(),
            mtu: dev.link.mtu,
            xdp_features: features.map(explain::feature_names),
            attached: dev
                .xdp
                .attached()
                .into_iter()
                .map(|(mode, prog_id)| AttachedProg {
                    mode: mode.to_string(),
                    prog_id,
                })
                .collect(),
            explanation: explain::explain(&facts, frags),
        });
    }
    Ok(NetExplain {
        bpf_jit_enable: jit,
        frags,
        devices,
    })
}

/// What the kernel says of `dev` (`all`: its namespace's devices, for
/// its master's, lower device's and veth peer's names and queues; a peer
/// in another namespace is asked of `rtnl`).
fn facts(
    rtnl: &mut Rtnl,
    dev: &Device,
    all: &[Device],
    features: Option<u64>,
    jit: Option<u32>,
) -> Facts {
    let by_index = |i: u32| all.iter().find(|d| d.ifindex == i);
    let l = &dev.link;
    let near = |i: Option<u32>| i.filter(|_| l.link_netnsid.is_none()).and_then(by_index);
    let peer: Option<Device> = match (l.kind.as_deref(), l.link, l.link_netnsid) {
        (Some("veth"), Some(i), None) => by_index(i).cloned(),
        (Some("veth"), Some(i), Some(ns)) => rtnl.device_in(ns, i).ok().flatten(),
        _ => None,
    };
    Facts {
        name: dev.name.clone(),
        kind: l.kind.clone(),
        driver: netdev::driver(&dev.name),
        master: l.master.and_then(by_index).map(|m| {
            (
                l.port_kind
                    .clone()
                    .or_else(|| m.link.kind.clone())
                    .unwrap_or_default(),
                m.name.clone(),
            )
        }),
        lower: near(l.link).map(|d| d.name.clone()),
        mtu: l.mtu,
        rx_queues: l.rx_queues,
        peer_tx_queues: peer.as_ref().map(|p| p.link.tx_queues),
        peer_mtu: peer.as_ref().map(|p| p.link.mtu),
        peer_name: peer
            .as_ref()
            .filter(|_| l.link_netnsid.is_none())
            .map(|p| p.name.clone()),
        peer_xdp: peer.as_ref().map(|p| !p.xdp.attached().is_empty()),
        netns: None,
        // Its master, and the devices that sit on it as upper devices
        // (macvlan, ipvlan, VLAN; not a tunnel on its underlay).
        uppers_with_xdp: all
            .iter()
            .filter(|u| {
                Some(u.ifindex) == l.master
                    || (u.link.link == Some(dev.ifindex)
                        && u.link.link_netnsid.is_none()
                        && matches!(
                            u.link.kind.as_deref(),
                            Some("macvlan" | "macvtap" | "ipvlan" | "ipvtap" | "vlan")
                        ))
            })
            .flat_map(|u| {
                u.xdp
                    .attached()
                    .into_iter()
                    .map(|(m, id)| (u.name.clone(), m.to_string(), id))
            })
            .collect(),
        features,
        attached: dev
            .xdp
            .attached()
            .into_iter()
            .map(|(m, id)| (m.to_string(), id))
            .collect(),
        jit,
        page: netdev::page_size(),
    }
}

/// The explanation of `dev` alone (in the current namespace).
fn explained(dev: &str, netns: Option<&str>, jit: Option<u32>) -> Option<Explanation> {
    let e = explain_devices(Some(dev), netns, false, jit).ok()?;
    Some(e.devices.into_iter().next()?.explanation)
}

/// `dev: why; fix`, and the notes that bear on an attach.
fn sentence(dev: &str, x: Explanation) -> String {
    let mut s = format!("{dev}: {}", x.why);
    if let Some(fix) = x.fix {
        s.push_str(&format!("; {fix}"));
    }
    for n in x.notes.iter().filter(|n| n.contains("one mode at a time")) {
        s.push_str(&format!("; {n}"));
    }
    s
}

/// Why the kernel would refuse any program in native mode on `dev` (in
/// the current namespace), from the device's facts, before trying: a
/// sentence with what to do instead; `None` when native XDP may work or
/// the facts cannot be read.
pub fn native_refusal(dev: &str, netns: Option<&str>) -> Option<String> {
    let x = explained(dev, netns, None)?;
    (x.native == explain::Native::No).then(|| sentence(dev, x))
}

/// Why native XDP was refused on `dev` (in the current namespace), in a
/// sentence with what to do instead; `None` when the facts say nothing
/// the kernel's error did not.
pub fn why_native_refused(dev: &str, netns: Option<&str>) -> Option<String> {
    let x = explained(dev, netns, None)?;
    (x.native != explain::Native::Yes || !x.notes.is_empty()).then(|| sentence(dev, x))
}

/// What to tell the operator after attaching to `dev` (in the current
/// namespace) in generic mode or another (see [`explain::advice`]);
/// nothing where the facts cannot be read.
pub fn advice(dev: &str, generic: bool, jit: Option<u32>, netns: Option<&str>) -> Vec<String> {
    explained(dev, netns, jit)
        .map(|x| explain::advice(dev, &x, generic))
        .unwrap_or_default()
}

/// That what a native program on `dev` (in the current namespace) sends
/// back with `XDP_TX` is lost, when it is: a veth whose peer runs no XDP
/// program.
pub fn tx_lost(dev: &str, netns: Option<&str>) -> Option<String> {
    let x = explained(dev, netns, None)?;
    x.notes
        .into_iter()
        .find(|n| n.starts_with(crate::model::explain::VETH_TX_NOTE))
        .map(|n| format!("{dev}: {n}"))
}

/// Why any attach to `dev` (in the current namespace) was refused with
/// EEXIST when the reason is an upper device that runs a program; `None`
/// otherwise.
pub fn why_upper(dev: &str, netns: Option<&str>) -> Option<String> {
    let x = explained(dev, netns, None)?;
    x.by_upper.then(|| sentence(dev, x))
}
