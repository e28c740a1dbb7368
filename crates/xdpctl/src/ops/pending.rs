//! Changes waiting for `xdpctl confirm` (`--confirm-within`), like a
//! router's "commit confirmed".
//!
//! A record per change in `_xdpctl/pending/<key>` says what to check and
//! what to undo: the live state the change made (link ids and program ids),
//! the steps that roll it back, and what it kept for that (the old pins).
//! A detached watcher process rolls the change back at the deadline unless
//! `confirm` removed the record first; if the watcher died, the next xdpctl
//! command on that bpffs does it. Rules:
//!
//! - The key names what the change is on (`load-<load id>` or
//!   `dev-<netns inode>-<ifindex>`) and is checked on every read, so a record
//!   cannot be read through another name or path.
//! - One change at a time waits on a bpffs: confirm it (or let it roll
//!   back) before the next `--confirm-within` — so two pending changes
//!   never overlap on one link or device.
//! - A rollback acts only if the live state is still exactly what the
//!   change made (same link ids running the same program ids, same
//!   programs on the same devices); otherwise somebody changed it since,
//!   and it is left alone.
//! - Records are validated like journal records: paths inside the bpffs,
//!   kept pins inside the state directory.

use std::{collections::HashSet, path::PathBuf};

use anyhow::{Context as _, Result, bail};
use serde::{Deserialize, Serialize};

use crate::{
    kernel::{layout::StateDir, steps::Real, store},
    model::change::{self, Change, Dev, Kernel, Step},
    ops::journal::{Journal, now_ms},
};

/// What a pending change must still find to roll back.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Expect {
    /// Link `link` runs program `prog`.
    Link { link: u32, prog: u32 },
    /// `dev` runs program `prog` over netlink.
    Netlink { dev: Dev, prog: u32 },
    /// The chain pinned at `map` holds program `prog`.
    Chain { map: PathBuf, prog: u32 },
    /// The tc filter at the place the record path `at` names runs `prog`.
    Tc { at: PathBuf, prog: u32 },
}

/// A change waiting for confirmation.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Pending {
    /// Its key (and the record's name).
    pub key: String,
    /// For messages: `upgrade of /sys/fs/bpf/xdpfw`, `attach to eth1`.
    pub what: String,
    /// The rollback happens then, Unix ms.
    pub deadline_ms: u64,
    /// The watcher process.
    pub watcher: u32,
    /// What the rollback checks first.
    pub expect: Vec<Expect>,
    /// The rollback.
    pub rollback: Vec<Step>,
    /// What the change kept for the rollback (under `_xdpctl/rollback/`);
    /// removed on confirmation.
    pub keep: Vec<PathBuf>,
}

/// The key of a pending change on a load directory.
pub fn load_key(load_id: u64) -> String {
    format!("load-{load_id:016x}")
}

/// The key of a pending change on a device.
pub fn dev_key(netns: u64, ifindex: u32) -> String {
    format!("dev-{netns}-{ifindex}")
}

/// Whether `key` is a key this module makes (no path can hide in it).
pub fn valid_key(key: &str) -> bool {
    let hex = |s: &str| s.len() == 16 && s.bytes().all(|b| b.is_ascii_hexdigit());
    let num = |s: &str| !s.is_empty() && s.len() <= 20 && s.bytes().all(|b| b.is_ascii_digit());
    match key.split_once('-') {
        Some(("load", id)) => hex(id),
        Some(("dev", rest)) => rest.split_once('-').is_some_and(|(a, b)| num(a) && num(b)),
        _ => false,
    }
}

fn path_of(state: &StateDir, key: &str) -> Result<PathBuf> {
    if !valid_key(key) {
        bail!("{key:?} is not the key of a pending change");
    }
    Ok(state.sub("pending").join(key))
}

impl Pending {
    fn validate(&self, state: &StateDir, key: &str) -> Result<()> {
        if self.key != key {
            bail!("the record is named {key} but says it is {}", self.key);
        }
        Change::Steps {
            what: self.what.clone(),
            steps: self.rollback.clone(),
        }
        .validate(&state.root, &state.dir)
        .map_err(|e| anyhow::anyhow!(e))?;
        for keep in &self.keep {
            change::check_inside(keep, &state.sub("rollback")).map_err(|e| anyhow::anyhow!(e))?;
        }
        Ok(())
    }
}

/// Reads and validates the pending record `key`; `Ok(None)` if none.
pub fn read(state: &StateDir, key: &str) -> Result<Option<Pending>> {
    let path = path_of(state, key)?;
    let Some(p): Option<Pending> = store::read_json(&path, store::Kind::Pending)? else {
        return Ok(None);
    };
    p.validate(state, key)
        .with_context(|| format!("refusing the pending record {}", path.display()))?;
    Ok(Some(p))
}

/// Every pending record on the bpffs, validated; bad ones are errors.
pub fn all(state: &StateDir) -> Vec<(String, Result<Pending>)> {
    let mut out = Vec::new();
    for path in state.entries("pending").unwrap_or_default() {
        let key = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let read = read(state, &key).and_then(|p| p.context("vanished"));
        out.push((key, read));
    }
    out
}

/// The paths pending records keep.
pub fn referenced(journal: &Journal) -> Result<HashSet<PathBuf>> {
    Ok(all(journal.state())
        .into_iter()
        .filter_map(|(_, p)| p.ok())
        .flat_map(|p| p.keep)
        .collect())
}

/// Refuses a second pending change on the bpffs.
pub fn check_none(journal: &Journal) -> Result<()> {
    if let Some((key, p)) = all(journal.state()).into_iter().next() {
        let what = p.map_or_else(|_| key.clone(), |p| p.what);
        bail!(
            "the {what} is waiting for confirmation; confirm it (`xdpctl confirm DEV [--netns \
             NAME]` for an attach, `xdpctl confirm DIR` for an upgrade or apply) or let it roll \
             back before making another change with --confirm-within"
        );
    }
    Ok(())
}

/// Records a pending change (under the journal's lock).
pub fn arm(journal: &Journal, pending: &Pending) -> Result<()> {
    let state = journal.state();
    pending.validate(state, &pending.key)?;
    state.ensure()?;
    let path = path_of(state, &pending.key)?;
    store::write_new(&path, store::Kind::Pending, &serde_json::to_vec(pending)?)
        .with_context(|| format!("recording the pending change at {}", path.display()))
}

/// Whether `pid` is alive and runs xdpctl's watcher for `key`.
pub fn watcher_alive(pid: u32, key: &str) -> bool {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .is_ok_and(|c| c.split(|&b| b == 0).any(|a| a == key.as_bytes()))
}

/// Whether `state` holds an expired pending change whose
/// watcher is gone (cheap when there is none).
pub fn has_expired(state: &StateDir) -> bool {
    state.entries("pending").is_ok_and(|e| !e.is_empty())
        && all(state).into_iter().any(|(key, p)| {
            p.is_ok_and(|p| p.deadline_ms < now_ms() && !watcher_alive(p.watcher, &key))
        })
}

/// What a confirmation or rollback did.
#[derive(Debug)]
pub enum Settled {
    /// The change stays.
    Confirmed(String),
    /// It was rolled back.
    RolledBack(String),
    /// The live state had changed since: left alone.
    LeftAlone(String),
}

/// Confirms `key`: the record goes, then what it kept.
pub fn confirm(journal: &mut Journal, key: &str) -> Result<Option<Settled>> {
    let Some(p) = read(journal.state(), key)? else {
        return Ok(None);
    };
    // A change undone meanwhile (an `unload`, a `detach`) has nothing to
    // keep: its record goes, and confirm says so.
    let changed = changed_since(&p)?;
    let path = path_of(journal.state(), key)?;
    // From here on no watcher rolls it back.
    journal.run(&[Step::RemoveTree { path }])?;
    let keep: Vec<Step> = p
        .keep
        .iter()
        .map(|k| Step::RemoveTree { path: k.clone() })
        .collect();
    journal.run(&keep)?;
    Ok(Some(if changed.is_empty() {
        Settled::Confirmed(p.what)
    } else {
        Settled::LeftAlone(format!("{} ({})", p.what, changed.join("; ")))
    }))
}

/// How the live state differs from what the change `p` made (nothing if
/// it is still as the change left it).
fn changed_since(p: &Pending) -> Result<Vec<String>> {
    let mut real = Real;
    let mut changed = Vec::new();
    for e in &p.expect {
        match e {
            Expect::Link { link, prog } => {
                if real
                    .link(*link)?
                    .is_none_or(|l| l.prog != *prog || !l.attached)
                {
                    changed.push(format!("link {link} no longer runs program {prog}"));
                }
            }
            Expect::Netlink { dev, prog } => {
                if real.xdp(dev)? != Some(*prog) {
                    changed.push(format!(
                        "ifindex {} no longer runs program {prog}",
                        dev.ifindex
                    ));
                }
            }
            Expect::Chain { map, prog } => {
                if real.chain(map)? != Some(*prog) {
                    changed.push(format!(
                        "the chain {} no longer holds program {prog}",
                        map.display()
                    ));
                }
            }
            Expect::Tc { at, prog } => {
                let runs = match crate::model::linkpin::LinkPin::parse(at) {
                    Some(place) => real.tc_filter(&place)?,
                    None => Some(None),
                };
                if runs != Some(Some(*prog)) {
                    changed.push(format!(
                        "the tc filter recorded at {} no longer runs program {prog}",
                        at.display()
                    ));
                }
            }
        }
    }
    Ok(changed)
}

/// Rolls `key` back, through the journal, if the live state is still what
/// the change made.
pub fn roll_back(journal: &mut Journal, key: &str) -> Result<Option<Settled>> {
    let Some(p) = read(journal.state(), key)? else {
        return Ok(None);
    };
    let path = path_of(journal.state(), key)?;
    let changed = changed_since(&p)?;
    let mut steps = Vec::new();
    if changed.is_empty() {
        steps.extend(p.rollback.iter().cloned());
    }
    steps.push(Step::RemoveTree { path });
    steps.extend(p.keep.iter().map(|k| Step::RemoveTree { path: k.clone() }));
    let entry = journal.begin(Change::Steps {
        what: format!("rollback of the {}", p.what),
        steps,
    })?;
    journal.run_forward(&entry)?;
    journal.finish(entry)?;
    Ok(Some(if changed.is_empty() {
        Settled::RolledBack(p.what)
    } else {
        Settled::LeftAlone(format!("{} ({})", p.what, changed.join("; ")))
    }))
}

/// Rolls back expired changes whose watcher died.
pub fn expire(journal: &mut Journal) -> Result<Vec<String>> {
    let mut notes = Vec::new();
    for (key, p) in all(journal.state()) {
        let p = match p {
            Ok(p) => p,
            Err(e) => {
                notes.push(format!("warning: {e:#}"));
                continue;
            }
        };
        if p.deadline_ms >= now_ms() || watcher_alive(p.watcher, &key) {
            continue;
        }
        notes.push(match roll_back(journal, &key)? {
            Some(Settled::RolledBack(what)) => {
                format!("rolled back the unconfirmed {what} (its watcher had died)")
            }
            Some(Settled::LeftAlone(what)) => {
                format!("forgot the unconfirmed {what}: it was changed since, so it stays as it is")
            }
            _ => continue,
        });
    }
    Ok(notes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_hold_no_paths() {
        assert!(valid_key(&load_key(0xabc)));
        assert!(valid_key(&dev_key(4026531840, 3)));
        for bad in [
            "",
            "load-",
            "load-../../etc",
            "dev-1",
            "dev-1-2/x",
            "dev-a-1",
            "upgrade_sys_fs_bpf_x",
            "load-0000000000000abc/..",
        ] {
            assert!(!valid_key(bad), "{bad}");
        }
        // Two targets never share a key.
        assert_ne!(dev_key(1, 23), dev_key(12, 3));
    }
}
