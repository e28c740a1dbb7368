//! Changes to the kernel's state that take more than one step, made
//! crash-safe: load directories that know themselves (their manifest), the
//! journal every change writes before it starts, and the records of
//! changes waiting for `xdpctl confirm`.

pub mod apply;
pub mod attach;
pub mod capture;
pub mod chain;
pub mod detach;
pub mod dispatcher;
pub mod doctor;
pub mod explain;
pub mod firewall;
pub mod guard;
pub mod journal;
pub mod live;
pub mod load;
pub mod loaddir;
pub mod mapedit;
pub mod netshow;
pub mod object;
pub mod openmap;
pub mod pending;
pub mod progs;
pub mod replace;
pub mod rulehits;
pub mod syncookie;
pub mod tc;
pub mod tcx;
pub mod unload;
pub mod watcher;

use std::path::Path;

use anyhow::Result;

pub use journal::Journal;

/// Takes the change lock of the bpffs `path` is on and brings it to a
/// settled state first: finishes or undoes unfinished changes, rolls back
/// expired confirmations whose watcher died, removes leftovers nothing
/// refers to. Returns the journal and what recovery did, for stderr.
pub fn begin(path: &Path) -> Result<(Journal, Vec<String>)> {
    let mut journal = Journal::lock(path)?;
    let mut notes = journal.recover()?;
    notes.extend(pending::expire(&mut journal)?);
    let kept = pending::referenced(&journal)?;
    notes.extend(journal.sweep(&kept)?);
    Ok((journal, notes))
}

/// For commands that only read: settles the bpffs `path` is on if a
/// change was left unfinished there, and does nothing (takes no lock)
/// otherwise.
pub fn settle(path: &Path) -> Result<Vec<String>> {
    // NB: the state directory found once: each lookup is a walk up the
    // path, which every command pays at its start.
    let Ok(state) = crate::kernel::layout::StateDir::of(path) else {
        return Ok(Vec::new());
    };
    if !journal::has_records(&state) && !pending::has_expired(&state) {
        return Ok(Vec::new());
    }
    Ok(begin(path)?.1)
}
