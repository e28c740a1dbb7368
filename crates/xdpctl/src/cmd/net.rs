//! `xdpctl net show`: everything attached to network devices, whoever
//! attached it.
//!
//! XDP comes from rtnetlink (`IFLA_XDP`: program per mode), matched with
//! the kernel's XDP links to tell a link from a netlink attachment; tcx
//! from `BPF_PROG_QUERY` (`BPF_TCX_INGRESS`/`EGRESS`), in order, with link
//! ids; tc from rtnetlink filter dumps on clsact ingress and egress (or a
//! legacy `ingress` qdisc's one hook); the
//! flow dissector from `BPF_PROG_QUERY` on the namespace; netfilter from
//! the kernel's netfilter links.

use std::{collections::HashMap, fs::File, os::fd::AsFd, path::PathBuf};

use anyhow::{Context as _, Result, bail};
use aya_obj::generated::bpf_attach_type;
use pinfs::Kind;
use serde::Serialize;

use crate::{
    cli::NetCommand,
    ctx::{Ctx, PinIndex},
    kernel::links::{Target, XdpAttach, XdpLinks},
    kernel::netlink::{CLSACT_EGRESS, CLSACT_INGRESS, Device, IngressQdisc, Rtnl},
    kernel::sys::{self, IdKind, QueryTarget},
    kernel::{dispatcher, netns},
    render::{self, Human, Tabular},
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
}

/// A program by id and name.
#[derive(Debug, Serialize)]
pub struct ProgRef {
    /// Program id.
    pub prog_id: u32,
    /// Program name.
    pub prog_name: String,
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

/// One line of a device's table.
#[derive(Serialize)]
struct HookLine {
    hook: String,
    prog_id: Option<u32>,
    name: String,
    attach: String,
    details: String,
}

impl Tabular for HookLine {
    const HEADERS: &'static [&'static str] = &["HOOK", "PROG", "NAME", "ATTACH", "DETAILS"];
    fn cells(&self, _view: &render::View) -> Vec<String> {
        vec![
            self.hook.clone(),
            self.prog_id
                .map_or_else(|| "-".to_owned(), |id| id.to_string()),
            self.name.clone(),
            self.attach.clone(),
            self.details.clone(),
        ]
    }
}

fn link_details(id: Option<u32>, pinned: &[PathBuf], view: &render::View) -> (String, String) {
    match id {
        Some(id) => (
            format!("link {id}"),
            pinned
                .first()
                .map_or_else(String::new, |p| format!("pinned {}", view.path(p))),
        ),
        None => ("netlink".to_owned(), String::new()),
    }
}

impl Human for NetShow {
    fn human(&self, view: &render::View) -> String {
        let mut out = String::new();
        for dev in &self.devices {
            out.push_str(&format!("{} (ifindex {}):\n", dev.name, dev.ifindex));
            let mut lines = Vec::new();
            for x in &dev.xdp {
                let (attach, details) = link_details(x.link_id, &x.link_pinned, view);
                lines.push(HookLine {
                    hook: format!("xdp/{}", x.mode),
                    prog_id: Some(x.prog_id),
                    name: x.prog_name.clone(),
                    attach: match (x.attach, x.link_id) {
                        ("link", None) => "link ?".into(),
                        _ => attach,
                    },
                    details: match &x.dispatcher {
                        Some(d) => format!(
                            "libxdp dispatcher v{}, {} program{}",
                            d.version,
                            d.programs.len(),
                            if d.programs.len() == 1 { "" } else { "s" }
                        ),
                        None => details,
                    },
                });
                if let Some(c) = &x.chain {
                    lines.push(HookLine {
                        hook: "  then".into(),
                        prog_id: Some(c.prog_id),
                        name: c.prog_name.clone(),
                        attach: "chain".into(),
                        details: format!("tail call, {}", view.path(&c.map)),
                    });
                }
                for p in x.dispatcher.iter().flat_map(|d| &d.programs) {
                    lines.push(HookLine {
                        hook: format!("  prog{}", p.slot),
                        prog_id: p.prog_id,
                        name: p.prog_name.clone().unwrap_or_else(|| "?".into()),
                        attach: p
                            .link_id
                            .map_or_else(|| "freplace".into(), |l| format!("link {l}")),
                        details: format!(
                            "prio {}, chain {}{}",
                            p.priority,
                            if p.chain_call_actions.is_empty() {
                                "-".to_owned()
                            } else {
                                p.chain_call_actions.join(",")
                            },
                            if p.frags { ", frags" } else { "" }
                        ),
                    });
                }
            }
            for (dir, rows) in [("ingress", &dev.tcx_ingress), ("egress", &dev.tcx_egress)] {
                for t in rows {
                    let (attach, details) = link_details(t.link_id, &t.link_pinned, view);
                    lines.push(HookLine {
                        hook: format!("tcx/{dir}"),
                        prog_id: Some(t.prog_id),
                        name: t.prog_name.clone(),
                        attach: if t.link_id.is_some() {
                            attach
                        } else {
                            "prog_attach".into()
                        },
                        details: format!(
                            "order {}, rev {}{}{details}",
                            t.order,
                            t.revision,
                            if details.is_empty() { "" } else { ", " }
                        ),
                    });
                }
            }
            for (dir, rows) in [("ingress", &dev.tc_ingress), ("egress", &dev.tc_egress)] {
                for t in rows {
                    lines.push(HookLine {
                        hook: match t.qdisc {
                            "clsact" => format!("clsact/{dir}"),
                            other => other.to_owned(),
                        },
                        prog_id: Some(t.prog_id),
                        name: t.prog_name.clone(),
                        attach: "tc filter".into(),
                        details: format!(
                            "pref {} handle {:#x} {}{}",
                            t.priority,
                            t.handle,
                            t.name,
                            if t.direct_action {
                                " direct-action"
                            } else {
                                ""
                            }
                        ),
                    });
                }
            }
            if lines.is_empty() {
                out.push_str("  nothing attached\n");
            } else {
                for line in view.indented(2).table(&lines).lines() {
                    out.push_str("  ");
                    out.push_str(line);
                    out.push('\n');
                }
            }
        }
        if self.devices.is_empty() {
            out.push_str("no device has BPF programs attached\n");
        }
        if !self.flow_dissector.is_empty() {
            out.push_str("flow_dissector:\n");
            for p in &self.flow_dissector {
                out.push_str(&format!("  prog {} {}\n", p.prog_id, p.prog_name));
            }
        }
        if !self.netfilter.is_empty() {
            out.push_str("netfilter (all namespaces):\n");
            for n in &self.netfilter {
                out.push_str(&format!(
                    "  {} {} prio {} prog {} {} link {}\n",
                    n.family, n.hook, n.priority, n.prog_id, n.prog_name, n.link_id
                ));
            }
        }
        out
    }
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
        let chain = link_pinned
            .iter()
            .find_map(|p| crate::ops::chain::next_of_pin(p))
            .map(|(map, id)| crate::model::xdp::ChainNext {
                prog_id: id,
                prog_name: names.get(id),
                map,
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
        Ok(rtnl
            .tc_bpf_filters(dev.ifindex, parent)
            .with_context(|| format!("listing tc filters of {}", dev.name))?
            .into_iter()
            .map(|f| TcRow {
                qdisc,
                priority: f.priority,
                handle: f.handle,
                name: f.name,
                prog_id: f.prog_id,
                prog_name: names.get(f.prog_id),
                direct_action: f.direct_action,
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

/// A row of `net explain`'s table.
#[derive(Serialize)]
struct ExplainRow<'a>(&'a crate::ops::explain::DeviceExplained);

impl Tabular for ExplainRow<'_> {
    const HEADERS: &'static [&'static str] = &[
        "DEVICE",
        "KIND",
        "DRIVER",
        "MTU",
        "NATIVE",
        "ATTACHED",
        "XDP FEATURES",
    ];
    const OPTIONAL: &'static [&'static str] = &["XDP FEATURES", "DRIVER"];
    fn cells(&self, _: &render::View) -> Vec<String> {
        let d = self.0;
        vec![
            d.device.clone(),
            d.kind.clone().unwrap_or_else(|| "-".into()),
            d.driver.clone().unwrap_or_else(|| "-".into()),
            d.mtu.to_string(),
            d.explanation.native.word().to_owned(),
            if d.attached.is_empty() {
                "-".into()
            } else {
                d.attached
                    .iter()
                    .map(|a| format!("{} {}", a.mode, a.prog_id))
                    .collect::<Vec<_>>()
                    .join(",")
            },
            d.xdp_features.as_ref().map_or_else(
                || "?".into(),
                |f| {
                    if f.is_empty() {
                        "none".into()
                    } else {
                        f.join(",")
                    }
                },
            ),
        ]
    }
}

impl Human for crate::ops::explain::NetExplain {
    fn human(&self, view: &render::View) -> String {
        let rows: Vec<ExplainRow> = self.devices.iter().map(ExplainRow).collect();
        let mut out = view.table(&rows);
        for d in &self.devices {
            let x = &d.explanation;
            out.push('\n');
            let mut text = format!("{}: native XDP {}: {}.", d.device, x.native.word(), x.why);
            if let Some(fix) = &x.fix {
                text.push_str(&format!(" Instead: {fix}."));
            }
            if let Some(m) = x.native_max_mtu {
                text.push_str(&format!(
                    " Largest peer MTU for a program without frags: {m}."
                ));
            }
            for n in &x.notes {
                text.push_str(&format!(" Note: {n}."));
            }
            out.push_str(&render::wrap(&text, view.width(), "  "));
        }
        out
    }
}

/// `xdpctl net ...`.
pub fn run(ctx: &Ctx, cmd: &NetCommand) -> Result<()> {
    match cmd {
        NetCommand::Explain {
            dev,
            netns: ns,
            frags,
        } => {
            let jit = crate::kernel::netdev::jit_enable();
            let entered = netns::enter(ns.as_deref())?;
            let shown =
                crate::ops::explain::explain_devices(dev.as_deref(), ns.as_deref(), *frags, jit)?;
            drop(entered);
            ctx.out.result(&shown)?;
            Ok(())
        }
        NetCommand::Show { dev, netns: ns } => {
            let entered = netns::enter(ns.as_deref())?;
            let shown = gather(ctx, dev.as_deref(), ns.as_deref())?;
            drop(entered);
            ctx.out.result(&shown)?;
            Ok(())
        }
    }
}
