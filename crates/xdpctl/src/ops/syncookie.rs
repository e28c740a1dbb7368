//! SYN cookies' host side: what the kernel must be set to for the
//! listener to take the ACKs of the firewall's cookies, checked before a
//! port is protected, and `syn_cfg` filled from the host's own settings
//! (the window scale the listener will use, whether timestamps carry the
//! options). See xdpfw.h for the datapath's side.

use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result, bail};
use xdp_progs::xdpfw::{self, SynCfg};

use crate::{
    ctx::Ctx,
    kernel::{
        netns::{self, Netns},
        sys::update_flags,
    },
    model::manifest::MAPS_SUBDIR,
    ops::{live, loaddir::LoadDir, openmap::OpenMap},
};

/// The TCP settings of one network namespace that SYN cookies depend on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Host {
    /// `net.ipv4.tcp_syncookies`.
    pub syncookies: u32,
    /// `net.ipv4.tcp_timestamps`.
    pub timestamps: u32,
    /// The window scale a listener of this namespace uses
    /// (tcp_select_initial_window: from `tcp_rmem`'s maximum and
    /// `net.core.rmem_max`).
    pub wscale: u8,
}

impl Host {
    /// The `syn_cfg` for a host so set.
    pub fn cfg(&self) -> SynCfg {
        SynCfg {
            mss4: 1460,
            mss6: 1440,
            wscale: self.wscale,
            // Timestamps carry the options only without random offsets,
            // which the cookie cannot know.
            ts: u8::from(self.timestamps == 2),
            ttl: 64,
            check_ack: 1,
        }
    }
}

/// The window scale the kernel picks for a receive space of `space` bytes
/// (ilog2(space) - 15, from 0 to 14).
pub fn wscale_for(space: u64) -> u8 {
    let log = 63 - space.max(1).leading_zeros() as i64;
    (log - 15).clamp(0, 14) as u8
}

fn sysctl(name: &str) -> Result<String> {
    let path = format!("/proc/sys/{}", name.replace('.', "/"));
    Ok(std::fs::read_to_string(&path)
        .with_context(|| format!("reading {path}"))?
        .trim()
        .to_owned())
}

/// The settings of the calling thread's network namespace.
pub fn host() -> Result<Host> {
    let num = |name: &str| -> Result<u64> {
        let text = sysctl(name)?;
        let last = text.split_whitespace().last().unwrap_or_default();
        last.parse()
            .with_context(|| format!("{name} is {text:?}, not a number"))
    };
    let space = num("net.ipv4.tcp_rmem")?.max(num("net.core.rmem_max")?);
    Ok(Host {
        syncookies: num("net.ipv4.tcp_syncookies")? as u32,
        timestamps: num("net.ipv4.tcp_timestamps")? as u32,
        wscale: wscale_for(space),
    })
}

/// Why a host so set would not take the cookies' ACKs, if it would not:
/// the one decision behind `map update`'s and `apply`'s refusals and
/// `doctor`'s finding. `ns` names the namespace.
pub fn refusal(host: &Host, ns: &Netns) -> Option<String> {
    (host.syncookies != 2).then(|| {
        let place = match &ns.name {
            Some(name) => format!("network namespace {name}"),
            None if netns::current_inode().is_ok_and(|i| i == ns.ino) => {
                "this network namespace".to_owned()
            }
            None => format!("the network namespace of inode {}", ns.ino),
        };
        format!(
            "net.ipv4.tcp_syncookies is {} in {place}; SYN cookies from XDP need 2, so that \
             the listener takes their ACKs: `sysctl -w net.ipv4.tcp_syncookies=2` there",
            host.syncookies
        )
    })
}

/// The settings of the namespace `ns` (entered for the reading).
pub fn host_in(ns: &Netns) -> Result<Host> {
    let Ok(entered) = ns.enter()? else {
        bail!("network namespace of inode {} is gone", ns.ino);
    };
    let host = host();
    drop(entered);
    host
}

/// Where the load at `dir`'s programs are attached (`live::devices`: its
/// links and netlink attachments).
fn devices(ctx: &Ctx, dir: &Path) -> Result<Vec<live::LiveDevice>> {
    live::devices(&LoadDir::open(dir)?, &ctx.link_pin_index()?)
}

/// The settings of each namespace of `devices`, or of the current one if
/// none.
fn hosts(devices: &[live::LiveDevice]) -> Result<Vec<(Netns, Host)>> {
    let mut spaces: Vec<Netns> = Vec::new();
    for d in devices {
        if !spaces.contains(&d.netns) {
            spaces.push(d.netns.clone());
        }
    }
    if spaces.is_empty() {
        spaces.push(Netns::current()?);
    }
    spaces
        .into_iter()
        .map(|ns| Ok((ns.clone(), host_in(&ns)?)))
        .collect()
}

/// Why the load at `dir`, which protects ports, would not get its SYN
/// cookies' connections through (a namespace of its devices whose
/// listeners would not take their ACKs: `tcp_syncookies` set back since),
/// if so; for `doctor`.
pub fn unready(ctx: &Ctx, dir: &Path) -> Result<Option<String>> {
    let ports = dir.join(MAPS_SUBDIR).join(xdpfw::maps::SYN_PORTS);
    if !ports.exists() {
        return Ok(None);
    }
    // A port protected: an entry that is a rule (0 is off).
    let mut protects = false;
    OpenMap::at(&ports)?.handle().for_each(|_, value| {
        protects = crate::model::rulemaps::is_rule(xdpfw::maps::SYN_PORTS, value);
        Ok(!protects)
    })?;
    if !protects {
        return Ok(None);
    }
    Ok(hosts(&devices(ctx, dir)?)?.iter().find_map(|(ns, host)| {
        refusal(host, ns).map(|why| {
            format!(
                "syn_ports protects ports, but {why} (or empty syn_ports): its listeners refuse \
                 the cookies' ACKs, and clients fail"
            )
        })
    }))
}

/// Before ports of the load at `dir` are protected: every namespace its
/// devices are in must let listeners take cookie ACKs
/// (`net.ipv4.tcp_syncookies=2`); then `syn_cfg` is set from the first
/// one's settings. A firewall without SYN cookies (an older load) is
/// refused with the fix.
pub fn prepare(ctx: &Ctx, dir: &Path) -> Result<()> {
    let cfg_pin: PathBuf = dir.join(MAPS_SUBDIR).join(xdpfw::maps::SYN_CFG);
    if !cfg_pin.exists() {
        bail!(
            "{} has no SYN cookies (loaded by an older xdpctl); `xdpctl load --replace` adds them",
            dir.display()
        );
    }
    let devices = devices(ctx, dir)?;
    let mut first = None;
    for (ns, host) in hosts(&devices)? {
        if let Some(why) = refusal(&host, &ns) {
            bail!("syn_ports of {}: {why}", dir.display());
        }
        first.get_or_insert(host);
    }
    // Native XDP on a veth whose peer runs no program: the SYN-ACKs are
    // lost (said, not refused: the operator may attach to the peer next).
    for d in &devices {
        if d.mode != Some(crate::model::xdp::XdpMode::Native) {
            continue;
        }
        let Ok(Ok(_in)) = d.netns.enter() else {
            continue;
        };
        if let Some(why) = crate::ops::explain::tx_lost(&d.name, d.netns.name.as_deref()) {
            ctx.out.note(format_args!(
                "warning: {why}; SYN cookies there leave every client waiting a second for the \
                 kernel's answer to its SYN's retry"
            ));
        }
    }
    let Some(host) = first else {
        return Ok(());
    };
    let cfg = host.cfg();
    let map = OpenMap::at(&cfg_pin)?;
    let bytes = [
        &cfg.mss4.to_ne_bytes()[..],
        &cfg.mss6.to_ne_bytes(),
        &[cfg.wscale, cfg.ts, cfg.ttl, cfg.check_ack],
    ]
    .concat();
    if map.value_len() != bytes.len() {
        bail!(
            "{} is not the firewall's syn_cfg ({} bytes, the firewall's has {})",
            cfg_pin.display(),
            map.value_len(),
            bytes.len()
        );
    }
    pinfs::failpoint::step("BPF_MAP_UPDATE_ELEM");
    map.handle()
        .update(&0u32.to_ne_bytes(), &bytes, update_flags::ANY)
        .with_context(|| format!("writing {}", cfg_pin.display()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_window_scale_is_the_kernels() {
        // Debian's defaults: tcp_rmem 4096 131072 6291456, rmem_max 212992.
        assert_eq!(wscale_for(6_291_456), 7);
        assert_eq!(wscale_for(212_992), 2);
        assert_eq!(wscale_for(1 << 40), 14);
        assert_eq!(wscale_for(1000), 0);
    }

    #[test]
    fn timestamps_carry_options_only_without_offsets() {
        let h = Host {
            syncookies: 2,
            timestamps: 1,
            wscale: 7,
        };
        assert_eq!(h.cfg().ts, 0);
        assert_eq!(Host { timestamps: 2, ..h }.cfg().ts, 1);
        assert_eq!(h.cfg().check_ack, 1);
    }
}
