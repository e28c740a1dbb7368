//! The journal: a record of every multi-step change, written before its
//! first step and removed after its last, kept on the bpffs it changes
//! (`_xdpctl/journal/<id>`, see [`layout`](crate::kernel::layout)).
//!
//! A record is read back only under the change lock, which a live change
//! holds: so a record found there belongs to a process that died, and
//! recovery runs its steps (finishing or undoing it, as the change says).

use std::{
    collections::HashSet,
    path::{Path, PathBuf},
};

use anyhow::{Context as _, Result};
use serde::{Deserialize, Serialize};

use crate::{
    kernel::{
        layout::{self, StateDir},
        steps::Real,
        store,
    },
    model::change::{self, Change, Outcome, Step},
};

/// A journal record.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Record {
    /// Its name in `journal/`.
    pub id: String,
    /// The process that made the change.
    pub pid: u32,
    /// When it started, Unix ms.
    pub started_ms: u64,
    /// What it means to do.
    pub change: Change,
}

/// A change under way.
#[derive(Debug)]
pub struct Entry {
    path: PathBuf,
    record: Record,
}

/// The journal of one bpffs, locked.
pub struct Journal {
    state: StateDir,
    _lock: pinfs::DirLock,
    kernel: Real,
}

/// Whether `state` holds journal records (cheap: a readdir).
pub fn has_records(state: &StateDir) -> bool {
    state.entries("journal").is_ok_and(|e| !e.is_empty())
}

pub use crate::kernel::clock::now_ms;

impl Drop for Journal {
    fn drop(&mut self) {
        // Still under the lock (the field drops after this).
        let _ = self.state.remove_if_empty();
    }
}

impl Journal {
    /// Takes the change lock of the bpffs `path` (an existing path) is on.
    pub fn lock(path: &Path) -> Result<Self> {
        let state = StateDir::of(path)?;
        let lock = state.lock()?;
        Ok(Journal {
            state,
            _lock: lock,
            kernel: Real,
        })
    }

    /// The state directory.
    pub fn state(&self) -> &StateDir {
        &self.state
    }

    /// A fresh path in `_xdpctl/<sub>` (which it creates).
    pub fn scratch(&self, sub: &str) -> Result<PathBuf> {
        self.state.ensure()?;
        Ok(self
            .state
            .sub(sub)
            .join(format!("{:016x}", layout::random_id())))
    }

    /// Records `change` before its first step.
    pub fn begin(&mut self, change: Change) -> Result<Entry> {
        change
            .validate(&self.state.root, &self.state.dir)
            .map_err(|e| anyhow::anyhow!("refusing a change that would leave the bpffs: {e}"))?;
        let id = format!("{:016x}", layout::random_id());
        let record = Record {
            id: id.clone(),
            pid: std::process::id(),
            started_ms: now_ms(),
            change,
        };
        self.state.ensure()?;
        let path = self.state.sub("journal").join(&id);
        store::write_new(&path, store::Kind::Journal, &serde_json::to_vec(&record)?)
            .with_context(|| format!("writing the journal record {}", path.display()))?;
        Ok(Entry { path, record })
    }

    /// Rewrites the record of a change under way (a new phase).
    pub fn update(&mut self, entry: &mut Entry, change: Change) -> Result<()> {
        entry.record.change = change;
        let written = store::replace(
            &entry.path,
            store::Kind::Journal,
            &serde_json::to_vec(&entry.record)?,
        );
        if written.is_err() {
            // The record stands as it was; its half-written successor goes
            // (recovery would remove it too, but a failed change leaves
            // nothing).
            let mut next = entry.path.as_os_str().to_owned();
            next.push("_next");
            let _ = pinfs::remove_all(Path::new(&next));
        }
        written
    }

    /// Runs steps.
    pub fn run(&mut self, steps: &[Step]) -> Result<()> {
        for step in steps {
            change::run(&mut self.kernel, step)?;
        }
        Ok(())
    }

    /// Runs the change's forward steps.
    pub fn run_forward(&mut self, entry: &Entry) -> Result<()> {
        self.run(&entry.record.change.forward())
    }

    /// Removes the record: the change is complete.
    pub fn finish(&mut self, entry: Entry) -> Result<()> {
        pinfs::failpoint::step("unlink");
        std::fs::remove_file(&entry.path)
            .with_context(|| format!("removing the journal record {}", entry.path.display()))
    }

    /// Undoes a change that failed (not crashed) midway: its recovery if
    /// that undoes it, else `undo`; then removes the record.
    pub fn abandon(&mut self, entry: Entry, undo: &[Step]) -> Result<()> {
        let (outcome, steps) = entry.record.change.recovery();
        if outcome == Outcome::Undo {
            self.run(&steps)?;
        } else {
            self.run(undo)?;
        }
        self.finish(entry)
    }

    /// Finishes or undoes every change a dead process left; returns what
    /// it did, one line each.
    pub fn recover(&mut self) -> Result<Vec<String>> {
        let mut notes = Vec::new();
        for path in self.state.entries("journal")? {
            let name = path.file_name().map(|n| n.to_string_lossy().into_owned());
            if name.as_deref().is_some_and(|n| n.ends_with("_next")) {
                // A rewrite that did not happen; the record itself stands.
                self.kernel_remove(&path)?;
                continue;
            }
            let record: Record = match store::read_json(&path, store::Kind::Journal) {
                Ok(Some(r)) => r,
                Ok(None) => continue,
                Err(e) => {
                    notes.push(format!(
                        "warning: ignoring {}: {e:#}; `xdpctl doctor` lists it",
                        path.display()
                    ));
                    continue;
                }
            };
            if let Err(e) = record.change.validate(&self.state.root, &self.state.dir) {
                notes.push(format!(
                    "warning: refusing the journal record {}: {e}; it was not written by \
                     xdpctl (remove it by hand)",
                    path.display()
                ));
                continue;
            }
            let (outcome, steps) = record.change.recovery();
            self.run(&steps).with_context(|| {
                format!(
                    "recovering the unfinished {} (journal record {})",
                    record.change.describe(),
                    path.display()
                )
            })?;
            self.finish(Entry {
                path: path.clone(),
                record: record.clone(),
            })?;
            notes.push(format!(
                "{} the {} that process {} left unfinished",
                match outcome {
                    Outcome::Finish => "finished",
                    Outcome::Undo => "undid",
                },
                record.change.describe(),
                record.pid
            ));
        }
        Ok(notes)
    }

    fn kernel_remove(&mut self, path: &Path) -> Result<()> {
        self.run(&[Step::RemoveTree {
            path: path.to_owned(),
        }])
    }

    /// Removes staging, trash and rollback directories that no record
    /// refers to (a change killed before its record was written, or after
    /// it was removed) — all but `kept`, which pending changes keep. Runs
    /// after recovery, under the lock.
    pub fn sweep(&mut self, kept: &HashSet<PathBuf>) -> Result<Vec<String>> {
        let mut notes = Vec::new();
        for sub in ["stage", "trash", "rollback"] {
            for path in self.state.entries(sub)? {
                if kept.contains(&path) {
                    continue;
                }
                self.kernel_remove(&path)?;
                notes.push(format!("removed the leftover {}", path.display()));
            }
        }
        Ok(notes)
    }
}
