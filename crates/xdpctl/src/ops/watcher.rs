//! The rollback watcher of `--confirm-within`: a detached process (it
//! outlives the terminal or SSH session that made the change) running the
//! hidden `__watch` subcommand; if it dies, the next xdpctl command on that
//! bpffs rolls the change back once its deadline has passed. The record of
//! a pending change and its rules live in [`pending`].

use std::{
    path::Path,
    process::{Command, Stdio},
    time::Duration,
};

use anyhow::{Context as _, Result, bail};

use crate::{
    kernel::layout::StateDir,
    model::change::Step,
    ops::{
        self, Journal,
        journal::now_ms,
        pending::{self, Expect, Pending},
    },
};

/// Starts the watcher for `key`, then records the pending change (the
/// watcher waits for the record, so a change whose arming died never
/// rolls back on its own — its journal record undoes it instead).
pub fn arm(
    journal: &Journal,
    key: String,
    what: String,
    within: Duration,
    expect: Vec<Expect>,
    rollback: Vec<Step>,
    keep: Vec<std::path::PathBuf>,
) -> Result<()> {
    let exe = std::env::current_exe().context("finding xdpctl's own binary")?;
    let mut cmd = Command::new(exe);
    cmd.arg("--bpffs")
        .arg(&journal.state().root)
        .args([WATCH, &key])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    // The crash points of the tests: the watcher gets its own.
    cmd.env_remove(pinfs::failpoint::ENV);
    if let Some(n) = std::env::var_os(pinfs::failpoint::WATCHER_ENV) {
        cmd.env(pinfs::failpoint::ENV, n);
    }
    crate::kernel::process::detach_session(&mut cmd);
    let child = cmd.spawn().context("starting the rollback watcher")?;
    let deadline_ms = now_ms() + within.as_millis().min(u128::from(u64::MAX / 2)) as u64;
    let record = Pending {
        key,
        what,
        deadline_ms,
        watcher: child.id(),
        expect,
        rollback,
        keep,
    };
    // On failure the watcher finds no record and leaves.
    pending::arm(journal, &record)?;
    Ok(())
}

/// The watcher's argument (see `main`).
pub const WATCH: &str = "__watch";

/// The watcher: waits for the deadline of the pending change `key` on the
/// bpffs at `root`, then rolls it back unless confirmed.
pub fn watch(root: &Path, key: &str) -> Result<()> {
    if !pending::valid_key(key) {
        bail!("{key:?} is not the key of a pending change");
    }
    let state = StateDir::of(root)?;
    let me = std::process::id();
    // Wait for our record (the arming process writes it after starting us).
    let started = now_ms();
    let record = loop {
        match pending::read(&state, key)? {
            Some(p) if p.watcher == me => break p,
            Some(_) => return Ok(()), // another watcher's change
            None if now_ms() - started > 10_000 => return Ok(()),
            None => std::thread::sleep(Duration::from_millis(20)),
        }
    };
    while now_ms() < record.deadline_ms {
        match pending::read(&state, key) {
            Ok(Some(p)) if p.watcher == me => {}
            _ => return Ok(()), // confirmed (or replaced)
        }
        let left = record.deadline_ms.saturating_sub(now_ms());
        std::thread::sleep(Duration::from_millis(100.min(left)));
    }
    let (mut journal, _) = ops::begin(root)?;
    match pending::read(journal.state(), key)? {
        Some(p) if p.watcher == me => {}
        _ => return Ok(()),
    }
    pending::roll_back(&mut journal, key)?;
    Ok(())
}
