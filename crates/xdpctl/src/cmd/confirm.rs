//! Lockout protection: `--confirm-within`, like a router's "commit
//! confirmed". A change made with it is recorded as pending, and a detached
//! watcher process (it outlives the terminal or SSH session that made the
//! change) rolls it back at the deadline unless `xdpctl confirm` removed the
//! record first.
//!
//! Records live in /run/xdpctl/pending, one JSON file per change. Whoever
//! renames or removes a record first wins: confirm and the watcher never
//! both act on one change.

use std::{
    fs,
    os::{
        fd::{AsFd, AsRawFd},
        unix::{fs::DirBuilderExt, process::CommandExt},
    },
    path::{Path, PathBuf},
    process::{Command, Stdio},
    time::Duration,
};

use anyhow::{Context as _, Result, bail};
use serde::{Deserialize, Serialize};

use crate::{
    cli::ConfirmArgs,
    cmd::stats,
    ctx::Ctx,
    kernel::netlink::Rtnl,
    kernel::netns,
    kernel::sys::{self, xdp_flags},
};

const PENDING_DIR: &str = "/run/xdpctl/pending";

/// A change waiting for confirmation.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Pending {
    /// An attach.
    Attach {
        /// When it is rolled back, Unix ms.
        deadline_ms: u64,
        /// The device.
        dev: String,
        /// Its namespace as given (null: xdpctl's own).
        netns: Option<String>,
        /// Interface index in that namespace.
        ifindex: u32,
        /// The attach mode flag.
        mode_flag: u32,
        /// The program attached.
        prog_id: u32,
        /// The link's pin, for a link attachment.
        link_pin: Option<PathBuf>,
        /// The program it replaced, pinned for the rollback.
        previous_pin: Option<PathBuf>,
    },
    /// A load --replace.
    Upgrade {
        /// When it is rolled back, Unix ms.
        deadline_ms: u64,
        /// The load directory.
        dir: PathBuf,
        /// The old pins, kept for the rollback.
        backup: PathBuf,
        /// Links switched: their pin (relative to dir) and program name.
        links: Vec<(PathBuf, String)>,
        /// Netlink attachments switched: namespace, ifindex, mode flag,
        /// program name.
        netlink: Vec<(Option<String>, u32, u32, String)>,
    },
}

impl Pending {
    fn deadline_ms(&self) -> u64 {
        match self {
            Pending::Attach { deadline_ms, .. } | Pending::Upgrade { deadline_ms, .. } => {
                *deadline_ms
            }
        }
    }
}

fn record_path(key: &str) -> PathBuf {
    Path::new(PENDING_DIR).join(format!("{key}.json"))
}

/// Where the watcher writes what it did; kept only when a rollback failed.
fn log_path(key: &str) -> PathBuf {
    Path::new(PENDING_DIR).join(format!("{key}.log"))
}

/// The key of a pending attach: device and namespace identity.
pub fn attach_key(dev: &str) -> Result<String> {
    Ok(format!("attach-{}-{dev}", netns::current_inode()?))
}

/// The key of a pending upgrade: the load directory.
pub fn upgrade_key(dir: &Path) -> String {
    format!("upgrade{}", dir.display().to_string().replace('/', "_"))
}

/// Records a pending change and starts its watcher, detached.
pub fn arm(key: &str, pending: &Pending, ctx: &Ctx) -> Result<()> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(PENDING_DIR)
        .with_context(|| format!("creating {PENDING_DIR}"))?;
    let path = record_path(key);
    if path.exists() {
        bail!(
            "a change is already waiting for confirmation ({}); confirm it first",
            path.display()
        );
    }
    fs::write(&path, serde_json::to_vec_pretty(pending)?)
        .with_context(|| format!("writing {}", path.display()))?;
    let exe = std::env::current_exe().context("finding xdpctl's own binary")?;
    let log = fs::File::create(log_path(key))?;
    let mut cmd = Command::new(exe);
    cmd.args(["--bpffs"])
        .arg(&ctx.bpffs)
        .args(["__watch", key])
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log);
    // SAFETY: setsid is async-signal-safe; the watcher leaves this session
    // so a hangup of the terminal or SSH connection does not reach it.
    unsafe {
        cmd.pre_exec(|| {
            libc::setsid();
            Ok(())
        });
    }
    cmd.spawn().context("starting the rollback watcher")?;
    Ok(())
}

/// `xdpctl __watch KEY`: waits for the deadline, then rolls back unless
/// confirmed.
pub fn watch(_ctx: &Ctx, key: &str) -> Result<()> {
    let path = record_path(key);
    let pending: Pending = serde_json::from_slice(
        &fs::read(&path).with_context(|| format!("reading {}", path.display()))?,
    )?;
    let deadline = pending.deadline_ms();
    // NB: a later change to the same device reuses the key; its record has
    // another deadline and is its own watcher's business.
    let ours = |p: &Path| {
        fs::read(p)
            .ok()
            .and_then(|b| serde_json::from_slice::<Pending>(&b).ok())
            .is_some_and(|r| r.deadline_ms() == deadline)
    };
    let done = |result: Result<()>| {
        match &result {
            Ok(()) => {
                let _ = fs::remove_file(log_path(key));
            }
            // The log stays, for whoever wonders why the change is still there.
            Err(e) => eprintln!(
                "{} rolling back {key} failed: {e:#}",
                stats::rfc3339(stats::now_ms())
            ),
        }
        result
    };
    while stats::now_ms() < deadline {
        if !ours(&path) {
            return done(Ok(())); // confirmed
        }
        std::thread::sleep(
            Duration::from_millis(100).min(Duration::from_millis(deadline - stats::now_ms())),
        );
    }
    // Claim the record; if confirm removed it first, it stays as it is.
    let claimed = path.with_extension("rollback");
    if fs::rename(&path, &claimed).is_err() {
        return done(Ok(()));
    }
    if !ours(&claimed) {
        // Confirmed, and a new change armed meanwhile: not ours to undo.
        let _ = fs::rename(&claimed, &path);
        return done(Ok(()));
    }
    let result = rollback(&pending);
    let _ = fs::remove_file(&claimed);
    done(result)
}

fn rollback(pending: &Pending) -> Result<()> {
    match pending {
        Pending::Attach {
            netns: ns,
            ifindex,
            mode_flag,
            prog_id,
            link_pin,
            previous_pin,
            ..
        } => {
            let previous = previous_pin.as_deref().map(pinfs::obj_get).transpose()?;
            match link_pin {
                Some(pin) => {
                    let link = pinfs::obj_get(pin)?;
                    match &previous {
                        Some(prev) => sys::link_update(link.as_fd(), prev.as_fd(), None)?,
                        None => {
                            sys::link_detach(link.as_fd())?;
                            fs::remove_file(pin)?;
                        }
                    }
                }
                None => {
                    let _in = netns::enter(ns.as_deref())?;
                    let mut rtnl = Rtnl::open()?;
                    let ours = sys::fd_by_id(sys::IdKind::Prog, *prog_id)?;
                    match &previous {
                        Some(prev) => rtnl.set_xdp(
                            *ifindex,
                            prev.as_raw_fd(),
                            mode_flag | xdp_flags::REPLACE,
                            Some(ours.as_raw_fd()),
                        )?,
                        // Only if it still runs our program: never someone else's.
                        None => rtnl.set_xdp(
                            *ifindex,
                            -1,
                            mode_flag | xdp_flags::REPLACE,
                            Some(ours.as_raw_fd()),
                        )?,
                    }
                }
            }
            if let Some(pin) = previous_pin {
                let _ = fs::remove_file(pin);
            }
            Ok(())
        }
        Pending::Upgrade {
            dir,
            backup,
            links,
            netlink,
            ..
        } => {
            for (rel, prog) in links {
                let link = pinfs::obj_get(&dir.join(rel))?;
                let old = pinfs::obj_get(&backup.join(prog))?;
                let new = pinfs::obj_get(&dir.join(prog))?;
                sys::link_update(link.as_fd(), old.as_fd(), Some(new.as_fd()))?;
            }
            for (ns, ifindex, flag, prog) in netlink {
                let old = pinfs::obj_get(&backup.join(prog))?;
                let new = pinfs::obj_get(&dir.join(prog))?;
                let _in = netns::enter(ns.as_deref())?;
                Rtnl::open()?.set_xdp(
                    *ifindex,
                    old.as_raw_fd(),
                    flag | xdp_flags::REPLACE,
                    Some(new.as_raw_fd()),
                )?;
            }
            pinfs::exchange_dirs(backup, dir)?;
            pinfs::remove_all(backup)?;
            Ok(())
        }
    }
}

/// Forgets a confirmed change: the record and what it kept for a rollback.
fn settle(pending: &Pending) {
    match pending {
        Pending::Attach {
            previous_pin: Some(pin),
            ..
        } => {
            let _ = fs::remove_file(pin);
        }
        Pending::Upgrade { backup, .. } => {
            let _ = pinfs::remove_all(backup);
        }
        Pending::Attach { .. } => {}
    }
}

/// `xdpctl confirm`.
pub fn confirm(ctx: &Ctx, args: &ConfirmArgs) -> Result<()> {
    let dir = ctx.resolve(Path::new(&args.target));
    let key = if dir.is_dir() && pinfs::is_bpffs(&dir).unwrap_or(false) {
        upgrade_key(&pinfs::validate(&dir)?.path)
    } else {
        let _in = netns::enter(args.netns.as_deref())?;
        attach_key(&args.target)?
    };
    let path = record_path(&key);
    let Ok(bytes) = fs::read(&path) else {
        bail!(
            "nothing is waiting for confirmation on {} (already confirmed, or rolled back)",
            args.target
        );
    };
    // Remove it first: from then on the watcher leaves the change alone.
    fs::remove_file(&path).with_context(|| format!("removing {}", path.display()))?;
    if let Ok(pending) = serde_json::from_slice::<Pending>(&bytes) {
        settle(&pending);
    }
    eprintln!("xdpctl: confirmed the change on {}; it stays", args.target);
    Ok(())
}
