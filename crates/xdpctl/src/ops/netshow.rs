//! `net show`'s picture of a namespace: everything attached to its
//! network devices, whoever attached it.
//!
//! XDP comes from rtnetlink (`IFLA_XDP`: program per mode), matched with
//! the kernel's XDP links to tell a link from a netlink attachment; tcx
//! from `BPF_PROG_QUERY` (`BPF_TCX_INGRESS`/`EGRESS`), in order, with link
//! ids; tc from rtnetlink filter dumps on clsact ingress and egress (or a
//! legacy `ingress` qdisc's one hook); the
//! flow dissector from `BPF_PROG_QUERY` on the namespace; netfilter from
//! the kernel's netfilter links; a firewall's chain from its chain map.

use std::{collections::HashMap, fs::File, os::fd::AsFd, path::PathBuf};

use anyhow::{Context as _, Result, bail};
use aya_obj::generated::bpf_attach_type;
use pinfs::Kind;
use serde::Serialize;

use crate::{
    ctx::{Ctx, PinIndex},
    kernel::dispatcher,
    kernel::links::{Target, XdpAttach, XdpLinks},
    kernel::netlink::{CLSACT_EGRESS, CLSACT_INGRESS, Device, IngressQdisc, Rtnl},
    kernel::sys::{self, IdKind, QueryTarget},
};

/// The whole picture for a namespace. This is the documented JSON shape.
#[derive(Debug, Serialize)]
pub struct NetShow {
    /// The namespace, named as outputs name namespaces (the current one
    /// too: by its /run/netns name; null when it has none).
    pub netns: Option<String>,
    /// Devices: every device with something attached, or the one asked for.
    pub devices: Vec<DeviceRow>,
    /// The namespace's flow dissector programs.
    pub flow_dissector: Vec<ProgRef>,
    /// Netfilter BPF links (the kernel does not say their namespace).
    pub netfilter: Vec<NetfilterRow>,
}

/// One device.
#[derive(Debug, Serialize)]
pub struct DeviceRow {
    /// Interface name.
    pub name: String,
    /// Interface index.
    pub ifindex: u32,
    /// XDP programs, one per mode in use.
    pub xdp: Vec<XdpRow>,
    /// tcx ingress programs, in the order they run.
    pub tcx_ingress: Vec<TcxRow>,
    /// tcx egress programs, in the order they run.
    pub tcx_egress: Vec<TcxRow>,
    /// cls_bpf filters on ingress (of a clsact or a legacy ingress qdisc).
    pub tc_ingress: Vec<TcRow>,
    /// cls_bpf filters on clsact egress.
    pub tc_egress: Vec<TcRow>,
}

pub use crate::model::xdp::XdpAttachment as XdpRow;

/// A tcx program.
#[derive(Debug, Serialize)]
pub struct TcxRow {
    /// Position in the chain, from 0.
    pub order: usize,
    /// Program id.
    pub prog_id: u32,
    /// Program name.
    pub prog_name: String,
    /// The link id, if attached by a link.
    pub link_id: Option<u32>,
    /// Where the link is pinned under the bpffs root.
    pub link_pinned: Vec<PathBuf>,
    /// The hook's revision (the kernel counts its changes): what `attach
    /// --tcx --expected-revision` compares with.
    pub revision: u64,
}

/// A tc cls_bpf filter.
#[derive(Debug, Serialize)]
pub struct TcRow {
    /// The qdisc it hangs from: `clsact`, or `ingress` (the legacy
    /// ingress-only qdisc).
    pub qdisc: &'static str,
    /// Filter priority.
    pub priority: u16,
    /// Filter handle.
    pub handle: u32,
    /// tc's name for it (object and section, or program name).
    pub name: String,
    /// Program id.
    pub prog_id: u32,
    /// Program name.
    pub prog_name: String,
    /// Direct-action mode.
    pub direct_action: bool,
    /// The protocol it catches, as tc names it (`all`, `ip`, `ipv6`, ...,
    /// or the EtherType in hex).
    pub protocol: String,
    /// xdpctl's record of the filter (`attach --tc`: its program pinned in
    /// the owner's `links/`), under the bpffs root; empty for a filter
    /// another tool added.
    pub pinned: Vec<PathBuf>,
}

pub use crate::model::xdp::ProgRef;

/// An EtherType as tc names it in `tc filter show`.
fn protocol_name(ethertype: u16) -> String {
    match ethertype {
        0x0003 => "all".into(),
        0x0800 => "ip".into(),
        0x86dd => "ipv6".into(),
        0x0806 => "arp".into(),
        0x8100 => "802.1Q".into(),
        0x88a8 => "802.1ad".into(),
        0x8847 => "mpls_uc".into(),
        other => format!("{other:#06x}"),
    }
}

/// A netfilter BPF link.
#[derive(Debug, Serialize)]
pub struct NetfilterRow {
    /// Link id.
    pub link_id: u32,
    /// Program id.
    pub prog_id: u32,
    /// Program name.
    pub prog_name: String,
    /// Protocol family (`ip`, `ip6`, or the number).
    pub family: String,
    /// Hook (`prerouting`, `input`, ...).
    pub hook: String,
    /// Priority.
    pub priority: i32,
}

/// Program names by id, looked up once each.
#[derive(Default)]
struct Names(HashMap<u32, String>);

impl Names {
    fn get(&mut self, id: u32) -> String {
        self.0
            .entry(id)
            .or_insert_with(|| {
                sys::fd_by_id(IdKind::Prog, id)
                    .and_then(|fd| sys::prog_info(fd.as_fd()))
                    .map_or_else(|_| "?".to_owned(), |(info, _)| sys::c_name(&info.name))
            })
            .clone()
    }
}

fn tcx(
    ifindex: u32,
    attach: bpf_attach_type,
    names: &mut Names,
    pins: &PinIndex,
) -> Result<Vec<TcxRow>> {
    let (progs, links, revision) = match sys::prog_query_full(QueryTarget::Ifindex(ifindex), attach)
    {
        Ok(found) => found,
        // Kernels without tcx answer EINVAL: nothing can be attached there.
        Err(e) if e.raw_os_error() == Some(libc::EINVAL) => return Ok(Vec::new()),
        Err(e) => return Err(e).context("querying tcx programs"),
    };
    Ok(progs
        .iter()
        .enumerate()
        .map(|(order, &prog_id)| {
            let link_id = links.get(order).copied().filter(|&l| l != 0);
            TcxRow {
                order,
                prog_id,
                prog_name: names.get(prog_id),
                link_id,
                link_pinned: link_id
                    .and_then(|l| pins.get(&(Kind::Link, l)).cloned())
                    .unwrap_or_default(),
                revision,
            }
        })
        .collect())
}

#[expect(
    clippy::too_many_arguments,
    reason = "the gathered state of the namespace, passed down once"
)]
fn device_row(
    rtnl: &mut Rtnl,
    dev: &Device,
    qdisc: Option<IngressQdisc>,
    links: &XdpLinks,
    names: &mut Names,
    pins: &PinIndex,
    bpffs: &std::path::Path,
    notes: &mut Vec<String>,
) -> Result<DeviceRow> {
    let mut xdp = Vec::new();
    for (mode, prog_id) in dev.xdp.attached() {
        let (attach, link) = match links.find(dev.ifindex, mode, prog_id)? {
            XdpAttach::Link(l) => ("link", Some(l)),
            XdpAttach::Netlink => ("netlink", None),
            XdpAttach::UnknownLink => ("link", None),
        };
        let prog_name = names.get(prog_id);
        // NB: only a program of libxdp's dispatcher's name is read again.
        let dispatcher = match dispatcher::is_named(&prog_name)
            .then(|| dispatcher::read(prog_id, dev.ifindex, bpffs))
        {
            Some(Ok(d)) => d,
            Some(Err(e)) => {
                notes.push(format!("{}: {:#}", dev.name, anyhow::Error::new(e)));
                None
            }
            None => None,
        };
        let link_pinned = link
            .and_then(|l| pins.get(&(Kind::Link, l.id)).cloned())
            .unwrap_or_default();
        // The chain of a load attached by a link xdpctl pinned in it.
        // The chain: through the load of the link's pin, else (attached
        // over netlink, or by another tool) through the program's maps.
        // NB: the maps are read only without a pin: a few syscalls each.
        let chain = if link_pinned.is_empty() {
            crate::ops::chain::next_of_prog(prog_id).map(|id| (None, id))
        } else {
            link_pinned
                .iter()
                .find_map(|p| crate::ops::chain::next_of_pin(p))
                .map(|(map, id)| (Some(map), id))
        }
        .map(|(map, id)| crate::model::xdp::ChainNext {
            prog_id: id,
            prog_name: names.get(id),
            map,
            then: further(prog_id, id, names),
        });
        xdp.push(XdpRow {
            mode: mode.to_string(),
            prog_id,
            prog_name,
            attach,
            link_id: link.map(|l| l.id),
            link_pinned,
            dispatcher,
            chain,
        });
    }
    let mut tc = |parent, qdisc| -> Result<Vec<TcRow>> {
        let filters = rtnl
            .tc_bpf_filters(dev.ifindex, parent)
            .with_context(|| format!("listing tc filters of {}", dev.name))?;
        let ino = if filters.is_empty() {
            0
        } else {
            crate::kernel::netns::current_inode()?
        };
        let egress = parent == CLSACT_EGRESS;
        Ok(filters
            .into_iter()
            .map(|f| TcRow {
                qdisc,
                priority: f.priority,
                handle: f.handle,
                pinned: tc_records(pins, &f, &dev.name, ino, egress),
                name: f.name,
                prog_id: f.prog_id,
                prog_name: names.get(f.prog_id),
                direct_action: f.direct_action,
                protocol: protocol_name(f.protocol),
            })
            .collect())
    };
    // NB: a legacy ingress qdisc answers a dump on clsact's egress parent
    // with its ingress filters: ask it for ingress only.
    let (tc_ingress, tc_egress) = match qdisc {
        Some(IngressQdisc::Clsact) => (tc(CLSACT_INGRESS, "clsact")?, tc(CLSACT_EGRESS, "clsact")?),
        Some(IngressQdisc::Ingress) => (tc(CLSACT_INGRESS, "ingress")?, Vec::new()),
        None => (Vec::new(), Vec::new()),
    };
    Ok(DeviceRow {
        name: dev.name.clone(),
        ifindex: dev.ifindex,
        xdp,
        tcx_ingress: tcx(dev.ifindex, bpf_attach_type::BPF_TCX_INGRESS, names, pins)?,
        tcx_egress: tcx(dev.ifindex, bpf_attach_type::BPF_TCX_EGRESS, names, pins)?,
        tc_ingress,
        tc_egress,
    })
}

/// xdpctl's records of filter `f` of device `dev` (namespace `ino`).
fn tc_records(
    pins: &PinIndex,
    f: &crate::kernel::netlink::TcBpfFilter,
    dev: &str,
    ino: u64,
    egress: bool,
) -> Vec<PathBuf> {
    if f.handle != crate::kernel::netlink::TC_FILTER_HANDLE {
        return Vec::new();
    }
    pins.get(&(Kind::Prog, f.prog_id))
        .into_iter()
        .flatten()
        .filter(|path| {
            crate::model::linkpin::LinkPin::parse(path).is_some_and(|p| {
                p.netns == ino
                    && p.names_device(dev)
                    && matches!(p.hook, crate::model::linkpin::Hook::Tc { egress: e, prio, .. }
                        if e == egress && prio == f.priority)
            })
        })
        .cloned()
        .collect()
}

fn is_empty(d: &DeviceRow) -> bool {
    d.xdp.is_empty()
        && d.tcx_ingress.is_empty()
        && d.tcx_egress.is_empty()
        && d.tc_ingress.is_empty()
        && d.tc_egress.is_empty()
}

fn nf_family(pf: u32) -> String {
    match pf {
        2 => "ip".into(),
        10 => "ip6".into(),
        other => format!("pf {other}"),
    }
}

fn nf_hook(hooknum: u32) -> String {
    ["prerouting", "input", "forward", "output", "postrouting"]
        .get(hooknum as usize)
        .map_or_else(|| format!("hook {hooknum}"), |s| (*s).to_owned())
}

/// Gathers the picture for the current namespace.
pub fn gather(ctx: &Ctx, only: Option<&str>, netns: Option<&str>) -> Result<NetShow> {
    // NB: the pins of xdpctl's links first (their names say so); opening
    // every pin on a busy bpffs costs more than the rest of net show.
    let pins = ctx.link_pin_index()?;
    let mut rtnl = Rtnl::open().context("opening rtnetlink")?;
    let links = XdpLinks::load(&pins)?;
    let mut names = Names::default();
    let mut notes = Vec::new();
    let devices = match only {
        Some(name) => match rtnl
            .device(name)
            .with_context(|| format!("looking up device {name}"))?
        {
            Some(dev) => vec![dev],
            None => match netns {
                Some(ns) => bail!("no device named {name} in network namespace {ns}"),
                None => bail!(
                    "no device named {name} (see `ip link`; use --netns for another namespace)"
                ),
            },
        },
        None => rtnl.devices().context("listing devices")?,
    };
    let qdiscs = rtnl
        .ingress_qdiscs()
        .context("listing ingress and clsact qdiscs")?;
    let mut rows = Vec::new();
    for dev in &devices {
        let qdisc = qdiscs.get(&dev.ifindex).copied();
        let row = device_row(
            &mut rtnl, dev, qdisc, &links, &mut names, &pins, &ctx.bpffs, &mut notes,
        )?;
        if only.is_some() || !is_empty(&row) {
            rows.push(row);
        }
    }
    // Links other tools pinned (`bpftool link pin`, anywhere under the
    // bpffs) are looked for only when a link shown has no xdpctl pin: that
    // walk opens every pin.
    let unpinned = |r: &DeviceRow| {
        r.xdp
            .iter()
            .any(|x| x.link_id.is_some() && x.link_pinned.is_empty())
            || r.tcx_ingress
                .iter()
                .chain(&r.tcx_egress)
                .any(|t| t.link_id.is_some() && t.link_pinned.is_empty())
    };
    if rows.iter().any(unpinned) {
        let all = ctx.pin_index()?;
        let pinned = |id: Option<u32>, to: &mut Vec<PathBuf>| {
            if let Some(id) = id
                && to.is_empty()
            {
                to.clone_from(all.get(&(Kind::Link, id)).unwrap_or(&Vec::new()));
            }
        };
        for row in &mut rows {
            for x in &mut row.xdp {
                pinned(x.link_id, &mut x.link_pinned);
            }
            for t in row.tcx_ingress.iter_mut().chain(&mut row.tcx_egress) {
                pinned(t.link_id, &mut t.link_pinned);
            }
        }
    }
    let ns = File::open("/proc/thread-self/ns/net").context("opening the network namespace")?;
    let flow_dissector = match sys::prog_query(
        QueryTarget::Fd(ns.as_fd()),
        bpf_attach_type::BPF_FLOW_DISSECTOR,
    ) {
        Ok((progs, _)) => progs
            .into_iter()
            .map(|id| ProgRef {
                prog_id: id,
                prog_name: names.get(id),
            })
            .collect(),
        Err(_) => Vec::new(),
    };
    let netfilter = links
        .all()
        .iter()
        .filter_map(|l| match l.target {
            Target::Netfilter {
                pf,
                hooknum,
                priority,
            } => Some(NetfilterRow {
                link_id: l.id,
                prog_id: l.prog_id,
                prog_name: names.get(l.prog_id),
                family: nf_family(pf),
                hook: nf_hook(hooknum),
                priority,
            }),
            _ => None,
        })
        .collect();
    ctx.out.notes(notes);
    Ok(NetShow {
        netns: crate::kernel::netns::Netns::of(netns)?.name,
        devices: rows,
        flow_dissector,
        netfilter,
    })
}

/// Where the programs `ids` run, by what xdpctl does not own: XDP, tcx
/// and tc attachments in every namespace xdpctl can name, as sentences
/// (`unload` says them: those keep the programs running after their pins
/// are gone).
pub fn users(ctx: &Ctx, ids: &[u32]) -> Result<Vec<String>> {
    let mut out = Vec::new();
    for ns in crate::kernel::netns::known()? {
        let Ok(Ok(_in)) = ns.enter() else {
            continue;
        };
        let Ok(shown) = gather(ctx, None, ns.name.as_deref()) else {
            continue;
        };
        let at = |dev: &str| match &ns.name {
            Some(n) => format!("{dev} in netns {n}"),
            None => dev.to_owned(),
        };
        let by =
            |link: Option<u32>| link.map_or_else(|| "no link".to_owned(), |l| format!("link {l}"));
        for d in &shown.devices {
            for x in d.xdp.iter().filter(|x| ids.contains(&x.prog_id)) {
                out.push(format!(
                    "program {} ({}) at XDP ({}) on {} ({})",
                    x.prog_id,
                    x.prog_name,
                    x.mode,
                    at(&d.name),
                    if x.attach == "netlink" {
                        format!("netlink: xdpctl detach {}", d.name)
                    } else {
                        by(x.link_id)
                    }
                ));
            }
            for (hook, rows) in [("ingress", &d.tcx_ingress), ("egress", &d.tcx_egress)] {
                for t in rows.iter().filter(|t| ids.contains(&t.prog_id)) {
                    out.push(format!(
                        "program {} ({}) at tcx {hook} of {} ({})",
                        t.prog_id,
                        t.prog_name,
                        at(&d.name),
                        by(t.link_id)
                    ));
                }
            }
            for (hook, rows) in [("ingress", &d.tc_ingress), ("egress", &d.tc_egress)] {
                for t in rows
                    .iter()
                    .filter(|t| ids.contains(&t.prog_id) && t.pinned.is_empty())
                {
                    out.push(format!(
                        "program {} ({}) in a tc filter on {} {hook} (pref {}: tc{} filter del \
                         dev {} {hook} pref {})",
                        t.prog_id,
                        t.prog_name,
                        at(&d.name),
                        t.priority,
                        ns.name
                            .as_deref()
                            .map_or_else(String::new, |n| format!(" -n {n}")),
                        d.name,
                        t.priority
                    ));
                }
            }
        }
    }
    Ok(out)
}

/// The rest of a chain after program `next` (behind `first`), through
/// each program's own chain map; a loop (which the kernel would cut after
/// 33 tail calls) ends the walk at the program met again.
fn further(first: u32, next: u32, names: &mut Names) -> Option<Box<crate::model::xdp::ChainNext>> {
    let mut seen = vec![first, next];
    let mut links = Vec::new();
    let mut at = next;
    while let Some(id) = crate::ops::chain::next_of_prog(at) {
        let again = seen.contains(&id);
        links.push(id);
        if again || links.len() >= 32 {
            break;
        }
        seen.push(id);
        at = id;
    }
    links.into_iter().rev().fold(None, |then, id| {
        Some(Box::new(crate::model::xdp::ChainNext {
            prog_id: id,
            prog_name: names.get(id),
            map: None,
            then,
        }))
    })
}
