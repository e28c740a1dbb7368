//! `xdpctl net show` and `net explain`: the pictures
//! [`ops::netshow`](crate::ops::netshow) and
//! [`ops::explain`](crate::ops::explain) gather, as tables.

use std::path::PathBuf;

use anyhow::Result;
use serde::Serialize;

use crate::{
    cli::NetCommand,
    ctx::Ctx,
    kernel::netns,
    ops::netshow::{NetShow, gather},
    render::{self, Human, Tabular},
};

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
                .map_or_else(String::new, |p| pin_text(p, view)),
        ),
        None => ("netlink".to_owned(), String::new()),
    }
}

/// Where an attachment's record is pinned, for a table.
fn pin_text(pin: &std::path::Path, view: &render::View) -> String {
    format!("pinned {}", view.path(pin))
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
                for c in x.chain.iter().flat_map(|c| c.walk()) {
                    lines.push(HookLine {
                        hook: "  then".into(),
                        prog_id: Some(c.prog_id),
                        name: c.prog_name.clone(),
                        attach: "chain".into(),
                        details: match &c.map {
                            Some(map) => format!("tail call, {}", view.path(map)),
                            None => "tail call".to_owned(),
                        },
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
                        // tc's own name for it only where it says more
                        // than the program's (`obj.o:[sec]`).
                        details: format!(
                            "pref {} handle {:#x} {}{}{}{}",
                            t.priority,
                            t.handle,
                            t.protocol,
                            if t.direct_action {
                                " direct-action"
                            } else {
                                ""
                            },
                            if t.name == t.prog_name || t.name.is_empty() {
                                String::new()
                            } else {
                                format!(" {}", t.name)
                            },
                            t.pinned
                                .iter()
                                .map(|p| format!(", {}", pin_text(p, view)))
                                .collect::<String>()
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
