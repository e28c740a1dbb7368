//! Whether native XDP can run on a device, and why not, told from the
//! device's own facts (its kind, its driver's `xdp-features`, its MTU,
//! its queues, what it already runs): `xdpctl net explain` and the error
//! of a refused native attach.
//!
//! What the kernel does, by device kind (Linux 6.x, `dev_xdp_attach` and
//! the drivers' `ndo_bpf`): a driver without `ndo_bpf` refuses native XDP
//! with EOPNOTSUPP, and reports no `basic` in `xdp-features` (bridge,
//! vxlan, geneve, macvlan, ipvlan, ifb, vlan, loopback, tun/tap without
//! one). veth has it while its peer has no more TX queues than it has RX
//! queues, and refuses (ERANGE) a program without frags when the peer's
//! MTU leaves a frame larger than a page less XDP's headroom and the
//! skb's shared info. A bond has it while every slave's driver has it and
//! its mode allows it (its `xdp-features` say so: the bond recomputes
//! them). Physical drivers differ in their largest frame; those without
//! `rx-sg` take about a page.

use serde::Serialize;

/// `xdp-features` bits (`enum netdev_xdp_act`).
pub const BASIC: u64 = 1;
/// Offload to the NIC.
pub const HW_OFFLOAD: u64 = 16;
/// Multi-buffer frames on receive.
pub const RX_SG: u64 = 32;

/// XDP's headroom before a frame (`XDP_PACKET_HEADROOM`).
pub const XDP_HEADROOM: u32 = 256;
/// `SKB_DATA_ALIGN(sizeof(struct skb_shared_info))` on 64-bit kernels
/// with the default 17 fragments.
pub const SHARED_INFO: u32 = 320;
/// An Ethernet header.
pub const ETH_HLEN: u32 = 14;

/// What is known of a device.
#[derive(Clone, Debug, Default)]
pub struct Facts {
    /// Its name.
    pub name: String,
    /// `IFLA_INFO_KIND`; none for a physical device.
    pub kind: Option<String>,
    /// The driver (ethtool's), if it says.
    pub driver: Option<String>,
    /// What its master is (`bridge`, `bond`), and the master's name.
    pub master: Option<(String, String)>,
    /// The device it sits on (VLAN, macvlan), by name, when in sight.
    pub lower: Option<String>,
    /// Its MTU.
    pub mtu: u32,
    /// RX queues.
    pub rx_queues: u32,
    /// A veth's peer's TX queues, when in sight.
    pub peer_tx_queues: Option<u32>,
    /// A veth's peer's MTU, when in sight: the one the kernel checks.
    pub peer_mtu: Option<u32>,
    /// A veth's peer's name, when it is in the same namespace.
    pub peer_name: Option<String>,
    /// Whether a veth's peer runs an XDP program, when in sight: a native
    /// program's `XDP_TX` (SYN cookies' SYN-ACKs) reaches the peer only
    /// then.
    pub peer_xdp: Option<bool>,
    /// The namespace's name as the operator gave it (`--netns`), for the
    /// commands the fixes name.
    pub netns: Option<String>,
    /// Upper devices (its bridge or bond, a macvlan or VLAN on it) that
    /// run an XDP program: `(name, mode, program id)`. The kernel then
    /// takes no program on this one, in any mode.
    pub uppers_with_xdp: Vec<(String, String, u32)>,
    /// `xdp-features`; `None` where the kernel does not report them.
    pub features: Option<u64>,
    /// Programs attached now, by mode (`native`, `generic`, `offload`).
    pub attached: Vec<(String, u32)>,
    /// `net.core.bpf_jit_enable`, if readable.
    pub jit: Option<u32>,
    /// The page size.
    pub page: u32,
}

/// The start of the note that a veth's peer runs no XDP program.
pub const VETH_TX_NOTE: &str = "its veth peer";

/// Native XDP's chances on a device.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Native {
    /// Its driver runs XDP.
    Yes,
    /// Only for programs that declare frags (`xdp.frags`): the MTU is
    /// larger than a single-buffer frame.
    FragsOnly,
    /// Refused.
    No,
    /// The kernel does not say (before 6.3); trying tells.
    Unknown,
}

impl Native {
    /// The word the table shows.
    pub fn word(self) -> &'static str {
        match self {
            Native::Yes => "yes",
            Native::FragsOnly => "frags-only",
            Native::No => "no",
            Native::Unknown => "unknown",
        }
    }
}

/// The answer for one device.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Explanation {
    /// Native XDP's chances.
    pub native: Native,
    /// The largest MTU a program without frags takes in native mode,
    /// where it is known (veth: computed as the kernel does).
    pub native_max_mtu: Option<u32>,
    /// Why, in a sentence.
    pub why: String,
    /// What to do instead, if anything.
    pub fix: Option<String>,
    /// Other things worth knowing (generic mode's view, the JIT).
    pub notes: Vec<String>,
    /// Whether the answer is an upper device's program (which refuses
    /// every mode, not only native).
    #[serde(skip)]
    pub by_upper: bool,
}

/// The largest frame a single-buffer driver takes from a page: the page
/// less XDP's headroom and the skb's shared info.
pub fn single_buffer_frame(page: u32) -> u32 {
    page.saturating_sub(XDP_HEADROOM + SHARED_INFO)
}

/// Explains native XDP on the device of `f` for a program that declares
/// frags (`frags`) or not.
pub fn explain(f: &Facts, frags: bool) -> Explanation {
    let page = if f.page == 0 { 4096 } else { f.page };
    let kind = f.kind.as_deref().unwrap_or("");
    let features = f.features;
    let basic = features.map(|b| b & BASIC != 0);
    let rx_sg = features.is_some_and(|b| b & RX_SG != 0);
    let mut notes = Vec::new();
    let no_driver = |what: &str| {
        let a = if what.starts_with(['a', 'e', 'i', 'o', 'u']) {
            "an"
        } else {
            "a"
        };
        format!("{a} {what} has no XDP in its driver (xdp-features: none)")
    };
    let (mut native, mut why, mut fix) = match kind {
        "bridge" => (
            Native::No,
            no_driver("bridge"),
            Some(
                "attach to its ports (native where their drivers have it): XDP sees what each \
                 port receives, bridged or not. Generic mode on the bridge sees only what it \
                 hands to this host, not what it forwards"
                    .to_owned(),
            ),
        ),
        "vlan" => (
            Native::No,
            no_driver("VLAN device"),
            Some(format!(
                "attach to {} (native): the firewall reads 802.1Q and 802.1ad tags and judges \
                 the packet inside, on every VLAN of that device",
                f.lower.as_deref().unwrap_or("the device it sits on")
            )),
        ),
        "macvlan" | "macvtap" | "ipvlan" | "ipvtap" => (
            Native::No,
            no_driver(&format!("{kind} device")),
            Some(format!(
                "attach to {} (native): it sees the frames of all its {kind}s. Generic mode on \
                 {} sees this one's only",
                f.lower.as_deref().unwrap_or("the device it sits on"),
                f.name
            )),
        ),
        "vxlan" | "geneve" | "gretap" | "ip6gretap" | "bareudp" => (
            Native::No,
            no_driver(&format!("{kind} device")),
            Some(
                "attach to the underlay device (native): it sees the tunnel's frames \
                 encapsulated. Generic mode here sees them decapsulated"
                    .to_owned(),
            ),
        ),
        "ifb" => (
            Native::No,
            no_driver("ifb device"),
            Some(
                "its frames come from tc redirects, past any driver: filter where they are \
                 redirected from (XDP on that device), or use generic mode here"
                    .to_owned(),
            ),
        ),
        "bond" | "team" if basic == Some(false) => (
            Native::No,
            format!(
                "the {kind} offers native XDP only while every slave's driver has it and its \
                 mode allows it (balance-rr, active-backup, balance-xor, 802.3ad), and it does \
                 not now"
            ),
            Some(
                "attach to each slave (native where its driver has it), or generic mode on \
                 the bond"
                    .to_owned(),
            ),
        ),
        "veth" if basic == Some(false) => (
            Native::No,
            match f.peer_tx_queues {
                Some(tx) if tx > f.rx_queues => format!(
                    "its peer has {tx} TX queues and it has {} RX queue{}: veth runs XDP only \
                     with at least as many RX queues as the peer's TX queues",
                    f.rx_queues,
                    if f.rx_queues == 1 { "" } else { "s" }
                ),
                _ => "veth offers native XDP only with its peer in place and at least as many \
                      RX queues as the peer's TX queues, and it does not now"
                    .to_owned(),
            },
            Some(
                "recreate the pair with `ip link add ... numrxqueues N numtxqueues N`, or use \
                 generic mode"
                    .to_owned(),
            ),
        ),
        _ => match basic {
            Some(true) => (
                Native::Yes,
                format!(
                    "its driver{} runs XDP (xdp-features: {})",
                    f.driver
                        .as_deref()
                        .map_or(String::new(), |d| format!(" ({d})")),
                    feature_names(features.unwrap_or(0)).join(", ")
                ),
                None,
            ),
            Some(false) => (
                Native::No,
                format!(
                    "its driver{} has no native XDP (xdp-features: none)",
                    f.driver
                        .as_deref()
                        .map_or(String::new(), |d| format!(" ({d})"))
                ),
                Some("use generic mode (--mode generic)".to_owned()),
            ),
            None => (
                Native::Unknown,
                "this kernel does not report its drivers' XDP features (the netdev family \
                 came in Linux 6.3); attaching tells"
                    .to_owned(),
                None,
            ),
        },
    };
    // The frame a program without frags gets: one buffer.
    let mut native_max_mtu = None;
    let max = single_buffer_frame(page).saturating_sub(ETH_HLEN);
    if native == Native::Yes && kind == "veth" {
        // A program with frags takes frames over a page (veth has rx-sg):
        // no single-buffer limit for it.
        native_max_mtu = (!frags).then_some(max);
        let mtu = f.peer_mtu.unwrap_or(f.mtu);
        if mtu > max && !frags {
            native = Native::FragsOnly;
            why = format!(
                "{} is over {max}, the largest frame veth gives a program without frags in one \
                 page",
                match f.peer_mtu {
                    Some(p) => format!("its peer's MTU {p} (the one veth checks)"),
                    None => format!(
                        "its MTU {} (its peer's, out of sight, is the one veth checks)",
                        f.mtu
                    ),
                }
            );
            let ip = match &f.netns {
                Some(ns) if !ns.contains('/') => format!("ip -n {ns}"),
                _ => "ip".to_owned(),
            };
            fix = Some(match &f.peer_name {
                Some(peer) => format!(
                    "lower the MTU of its peer {peer} to {max} or less ({ip} link set {peer} mtu \
                     {max}), or use generic mode"
                ),
                None => format!(
                    "lower the MTU of its peer (in another namespace) to {max} or less, or use \
                     generic mode"
                ),
            });
        }
    } else if native == Native::Yes && !rx_sg {
        if f.mtu > max {
            // NB: not frags-only: without rx-sg a program with frags gets no
            // more than one buffer either.
            native = Native::No;
            why = format!(
                "its MTU {} is over what one page holds after XDP's headroom ({max}), and its \
                 driver has no rx-sg (multi-buffer): most drivers refuse that, each by its own \
                 limit",
                f.mtu
            );
            fix = Some(format!(
                "lower the MTU to {max} or less, or use generic mode"
            ));
        }
    } else if native == Native::Yes && f.mtu > max && !frags {
        native = Native::FragsOnly;
        why = format!(
            "its MTU {} takes frames over a page: its driver has rx-sg, for programs that \
             declare frags (xdp.frags), which this one does not",
            f.mtu
        );
        fix = Some("lower the MTU, or use generic mode".to_owned());
    }
    let by_upper = !f.uppers_with_xdp.is_empty();
    if let Some((upper, mode, id)) = f.uppers_with_xdp.first() {
        native = Native::No;
        why = format!(
            "its upper device {upper} runs XDP program {id} ({mode} mode), and the kernel takes \
             no XDP program, in any mode, on a device whose upper device has one"
        );
        fix = Some(format!(
            "detach it from {upper} first (xdpctl detach {upper}{}), or keep filtering on {upper}",
            crate::model::error_text::netns_arg(f.netns.as_deref())
        ));
    }
    if let Some((mkind, master)) = &f.master {
        notes.push(match mkind.as_str() {
            "bond" | "team" => format!(
                "a slave of {mkind} {master}: XDP here sees its frames before the {mkind}; a \
                 program on {master} itself is installed on every slave"
            ),
            "bridge" => format!(
                "a port of bridge {master}: XDP here sees every frame it receives, bridged \
                 or not"
            ),
            _ => format!("enslaved to {mkind} {master}"),
        });
    }
    if kind == "veth" && f.peer_xdp == Some(false) {
        notes.push(format!(
            "{VETH_TX_NOTE} ({}) runs no XDP program: what a native program here sends back \
             (XDP_TX, SYN cookies' SYN-ACKs) is dropped; attach any XDP program to the peer (an \
             XDP_PASS one will do), or use generic mode",
            f.peer_name.as_deref().unwrap_or("in another namespace")
        ));
    }
    if features.is_some_and(|b| b & HW_OFFLOAD != 0) {
        notes.push("its NIC can run programs offloaded (--mode offload)".to_owned());
    }
    for (mode, id) in &f.attached {
        notes.push(if mode != "native" && native != Native::No {
            format!(
                "it runs program {id} in {mode} mode: one mode at a time, so a native attach is \
                 refused until that is detached"
            )
        } else {
            format!("it runs program {id} in {mode} mode")
        });
    }
    match f.jit {
        Some(0) => notes.push(
            "the BPF JIT is off (net.core.bpf_jit_enable = 0): programs run interpreted, \
             several times slower (sysctl -w net.core.bpf_jit_enable=1)"
                .to_owned(),
        ),
        Some(2) => notes
            .push("the BPF JIT is on with debug output (net.core.bpf_jit_enable = 2)".to_owned()),
        _ => {}
    }
    Explanation {
        native,
        native_max_mtu,
        why,
        fix,
        notes,
        by_upper,
    }
}

/// What an attach in generic mode (`generic`) or another mode to `dev`
/// should tell the operator, from the device's explanation: that native
/// mode would run there, or what generic mode sees on that kind of
/// device, and the JIT when it is off.
pub fn advice(dev: &str, e: &Explanation, generic: bool) -> Vec<String> {
    let mut out = Vec::new();
    if generic {
        match e.native {
            Native::Yes => out.push(format!(
                "native XDP runs on {dev} ({}): the default --mode native runs the program in \
                 the driver, before an skb is made, several times faster than generic",
                e.why
            )),
            // What generic mode sees on a bridge, tunnel or macvlan (the
            // other fixes end in "use generic mode": done).
            Native::No | Native::FragsOnly => {
                if let Some(fix) = e.fix.as_ref().filter(|f| f.contains("Generic mode")) {
                    out.push(format!("generic mode on {dev}, as {}; or {fix}", e.why));
                }
            }
            Native::Unknown => {}
        }
    }
    out.extend(e.notes.iter().filter(|n| n.contains("JIT")).cloned());
    out
}

/// The `xdp-features` bits' names, in bit order.
pub fn feature_names(bits: u64) -> Vec<&'static str> {
    [
        (1, "basic"),
        (2, "redirect"),
        (4, "ndo-xmit"),
        (8, "xsk-zerocopy"),
        (16, "hw-offload"),
        (32, "rx-sg"),
        (64, "ndo-xmit-sg"),
    ]
    .into_iter()
    .filter(|(b, _)| bits & b != 0)
    .map(|(_, n)| n)
    .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dev(kind: Option<&str>, features: Option<u64>, mtu: u32) -> Facts {
        Facts {
            name: "d0".into(),
            kind: kind.map(str::to_owned),
            mtu,
            rx_queues: 1,
            features,
            jit: Some(1),
            page: 4096,
            ..Facts::default()
        }
    }

    #[test]
    fn a_veth_whose_peer_runs_no_program_loses_what_it_sends_back() {
        let mut v = dev(Some("veth"), Some(1), 1500);
        v.peer_name = Some("v1".into());
        v.peer_xdp = Some(false);
        let e = explain(&v, false);
        assert!(
            e.notes
                .iter()
                .any(|n| n.starts_with(VETH_TX_NOTE) && n.contains("(v1)") && n.contains("XDP_TX")),
            "{:?}",
            e.notes
        );
        v.peer_xdp = Some(true);
        assert!(
            !explain(&v, false)
                .notes
                .iter()
                .any(|n| n.starts_with(VETH_TX_NOTE))
        );
    }

    #[test]
    fn drivers_without_xdp_are_refused_with_where_to_attach_instead() {
        for kind in ["bridge", "vlan", "macvlan", "vxlan", "ifb"] {
            let e = explain(&dev(Some(kind), Some(0), 1500), false);
            assert_eq!(e.native, Native::No, "{kind}");
            assert!(e.why.contains("no XDP in its driver"), "{kind}: {}", e.why);
            assert!(e.fix.is_some(), "{kind}");
        }
        let mut v = dev(Some("vlan"), Some(0), 1500);
        v.lower = Some("eth1".into());
        assert!(
            explain(&v, false)
                .fix
                .unwrap()
                .starts_with("attach to eth1")
        );
    }

    #[test]
    fn veth_takes_a_page_without_frags() {
        let max = 4096 - 256 - 320 - 14;
        let e = explain(&dev(Some("veth"), Some(BASIC | 2 | RX_SG), 1500), false);
        assert_eq!((e.native, e.native_max_mtu), (Native::Yes, Some(max)));
        let e = explain(&dev(Some("veth"), Some(BASIC | RX_SG), max), false);
        assert_eq!(e.native, Native::Yes);
        let mut e = dev(Some("veth"), Some(BASIC | RX_SG), 1500);
        e.peer_mtu = Some(max + 1);
        e.peer_name = Some("v1".into());
        e.netns = Some("blue".into());
        let e = explain(&e, false);
        assert_eq!(e.native, Native::FragsOnly);
        assert!(
            e.fix
                .unwrap()
                .contains(&format!("ip -n blue link set v1 mtu {max}")),
            "only the peer's MTU counts"
        );
        let e = explain(&dev(Some("veth"), Some(BASIC | RX_SG), 9000), true);
        assert_eq!(e.native, Native::Yes);
        // With frags, a page is no limit: none is shown.
        assert_eq!(e.native_max_mtu, None);
        // The peer's MTU is the one veth checks.
        let mut p = dev(Some("veth"), Some(BASIC | RX_SG), max);
        p.peer_mtu = Some(max + 1);
        assert_eq!(explain(&p, false).native, Native::FragsOnly);
        p.mtu = 9000;
        p.peer_mtu = Some(max);
        assert_eq!(explain(&p, false).native, Native::Yes);
        let mut q = dev(Some("veth"), Some(0), 1500);
        q.peer_tx_queues = Some(4);
        let e = explain(&q, false);
        assert_eq!(e.native, Native::No);
        assert!(
            e.why.contains("4 TX queues and it has 1 RX queue:"),
            "{}",
            e.why
        );
    }

    #[test]
    fn an_upper_device_with_a_program_takes_the_device() {
        let mut d = dev(Some("veth"), Some(BASIC), 1500);
        d.uppers_with_xdp = vec![("mv0".into(), "generic".into(), 9)];
        d.netns = Some("blue".into());
        let e = explain(&d, false);
        assert_eq!(e.native, Native::No);
        assert!(
            e.why.contains("upper device mv0 runs XDP program 9"),
            "{}",
            e.why
        );
        assert_eq!(
            e.fix.as_deref(),
            Some(
                "detach it from mv0 first (xdpctl detach mv0 --netns blue), or keep filtering on mv0"
            )
        );
    }

    #[test]
    fn bonds_slaves_and_physical_drivers() {
        let e = explain(&dev(Some("bond"), Some(0), 1500), false);
        assert_eq!(e.native, Native::No);
        assert!(e.fix.unwrap().starts_with("attach to each slave"));
        assert_eq!(
            explain(&dev(Some("bond"), Some(BASIC), 1500), false).native,
            Native::Yes
        );
        let mut s = dev(None, Some(BASIC | RX_SG), 1500);
        s.driver = Some("mlx5_core".into());
        s.master = Some(("bond".into(), "bond0".into()));
        let e = explain(&s, false);
        assert_eq!(e.native, Native::Yes);
        assert!(e.why.contains("(mlx5_core)"));
        assert!(e.notes[0].contains("slave of bond bond0"));
        // A jumbo MTU without rx-sg: a program with frags is refused too.
        for frags in [false, true] {
            assert_eq!(
                explain(&dev(None, Some(BASIC), 9000), frags).native,
                Native::No
            );
        }
        // With rx-sg, only a program with frags.
        assert_eq!(
            explain(&dev(None, Some(BASIC | RX_SG), 9000), false).native,
            Native::FragsOnly
        );
        assert_eq!(
            explain(&dev(None, Some(BASIC | RX_SG), 9000), true).native,
            Native::Yes
        );
        assert_eq!(
            explain(&dev(None, None, 1500), false).native,
            Native::Unknown
        );
        assert_eq!(
            explain(&dev(None, Some(0), 1500), false).fix.as_deref(),
            Some("use generic mode (--mode generic)")
        );
    }

    #[test]
    fn other_modes_and_the_jit_are_noted() {
        let mut d = dev(Some("veth"), Some(BASIC), 1500);
        d.attached = vec![("generic".into(), 7)];
        d.jit = Some(0);
        let e = explain(&d, false);
        assert!(
            e.notes
                .iter()
                .any(|n| n.contains("program 7 in generic mode"))
        );
        assert!(e.notes.iter().any(|n| n.contains("JIT is off")));
        assert_eq!(feature_names(BASIC | RX_SG), ["basic", "rx-sg"]);
        let a = advice("d0", &e, false);
        assert_eq!(a.len(), 1, "{a:?}");
        assert!(a[0].contains("JIT is off"));
    }

    #[test]
    fn a_generic_attach_is_told_what_native_would_do() {
        let e = explain(&dev(Some("veth"), Some(BASIC), 1500), false);
        assert!(advice("d0", &e, true)[0].starts_with("native XDP runs on d0"));
        assert!(advice("d0", &e, false).is_empty());
        let b = explain(&dev(Some("bridge"), Some(0), 1500), false);
        let a = advice("br0", &b, true);
        assert!(
            a[0].contains("sees only what it hands to this host"),
            "{a:?}"
        );
    }
}
