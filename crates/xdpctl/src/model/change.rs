//! Multi-step changes as data: what a change means to do (its journal
//! record) and the idempotent steps that do it.
//!
//! Every change that takes more than one system call — load, replace,
//! unload, attach, detach, a rollback — is written down as a [`Change`]
//! before its first step touches the kernel. Each [`Step`] checks the live
//! state before it acts ("if the link still runs program 7, make it run 9"),
//! so running a step twice is the same as running it once. A process killed
//! anywhere therefore leaves a record whose [`recovery`](Change::recovery)
//! steps bring the state to exactly the before or the after, and the next
//! xdpctl command runs them.
//!
//! Nothing here makes a system call: the steps run through the [`Kernel`]
//! trait, which the kernel layer implements for real and the tests below
//! implement with a fake, crashing it after every step in turn.

use std::path::{Component, Path, PathBuf};

use serde::{Deserialize, Serialize};

/// An XDP attachment made over netlink: the device and the mode.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Dev {
    /// The inode of the device's network namespace.
    pub netns: u64,
    /// The interface index in that namespace.
    pub ifindex: u32,
    /// The attach mode (`XDP_FLAGS_SKB_MODE`, `_DRV_MODE` or `_HW_MODE`).
    pub mode: u32,
}

/// One idempotent step of a change.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "step", rename_all = "snake_case")]
pub enum Step {
    /// If link `link` runs program `from`, make it run `to` (atomically,
    /// with the kernel checking `from`).
    LinkSwap { link: u32, from: u32, to: u32 },
    /// If `dev` runs program `from` over netlink, make it run `to`, or
    /// nothing (atomically, with the kernel checking `from`).
    XdpSwap {
        dev: Dev,
        from: u32,
        to: Option<u32>,
    },
    /// Detach link `link` if it still exists and is attached.
    LinkDetach { link: u32 },
    /// If the one-slot program array pinned at `map` (a firewall's
    /// `chain`) holds program `from` (or nothing), make it hold `to` (or
    /// nothing).
    ChainSwap {
        map: PathBuf,
        from: Option<u32>,
        to: Option<u32>,
    },
    /// If `dir` holds generation `generation` and `other` exists, swap the two
    /// directories in one rename.
    Exchange {
        dir: PathBuf,
        generation: u64,
        other: PathBuf,
    },
    /// If `from` exists (and holds generation `generation`, when given), rename it
    /// to `to`.
    Move {
        from: PathBuf,
        generation: Option<u64>,
        to: PathBuf,
    },
    /// Remove `path` and every pin below it, if it exists.
    RemoveTree { path: PathBuf },
    /// Remove the directory `path` if it exists and is empty.
    RmdirIfEmpty { path: PathBuf },
    /// Unpin `path` if link `link` is pinned there.
    UnpinLink { path: PathBuf, link: u32 },
    /// Unpin the link at `path` if it is no longer attached to anything.
    UnpinIfDetached { path: PathBuf },
    /// Detach the link pinned at `path`, if any, and unpin it.
    DetachPinned { path: PathBuf },
    /// If link `link` is pinned at `from` and runs program `prog`, and
    /// nothing is at `to`, rename the pin to `to`: a link's pin follows it
    /// to the owner of the program it now runs.
    MoveLinkPin {
        from: PathBuf,
        to: PathBuf,
        link: u32,
        prog: u32,
    },
    /// Unpin `path` if map `map` is pinned there — unless `unless` names a
    /// load directory that holds that generation (the load that shares the
    /// map was committed, so the pin stays).
    UnpinMap {
        path: PathBuf,
        map: u32,
        #[serde(default)]
        unless: Option<(PathBuf, u64)>,
    },
    /// If a tc filter's record (a program pinned as
    /// [`LinkPin`](crate::model::linkpin::LinkPin) names a `Hook::Tc`) is at
    /// `path` and no filter at the place it names runs its program, unpin
    /// it: an attach killed before its filter was added leaves nothing.
    TcSettle { path: PathBuf },
    /// If a tc filter's record is at `path`: delete the filter at the place
    /// it names if it runs the record's program, then unpin the record.
    TcDetach { path: PathBuf },
    /// A dispatcher switch (libxdp's protocol): if `dev` runs program `new`
    /// (the new dispatcher is attached), remove the trees at `old` (the
    /// old dispatcher's pins, a record that went); else remove those at
    /// `new_paths` (the new dispatcher's, never attached).
    DispatcherSettle {
        dev: Dev,
        new: u32,
        new_paths: Vec<PathBuf>,
        old: Vec<PathBuf>,
    },
    /// If the tc filter at the place the record path `at` names runs
    /// program `from`, make it run `to` (`tc filter replace`, atomic).
    TcSwap { at: PathBuf, from: u32, to: u32 },
    /// Make the rule maps of the load `dir` hold what `desired` (a stored
    /// [`policy::RuleMaps`](crate::model::policy::RuleMaps)) says: write
    /// what differs, remove what is not there (guard's entries stay).
    SyncRules { dir: PathBuf, desired: PathBuf },
}

/// How far a replace got: before its first switch the staged directory may
/// be incomplete, so recovery undoes it; from then on it is complete, so
/// recovery finishes it (or undoes it, for a change under
/// `--confirm-within`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    /// Pins are being staged; nothing on a device has changed.
    Staging,
    /// Staging is complete; attachments are being switched.
    Switching,
}

/// A program switch of a replace: a link or a netlink attachment.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "by", rename_all = "snake_case")]
pub enum Switch {
    /// A link, by id.
    Link { link: u32, from: u32, to: u32 },
    /// A netlink attachment.
    Netlink { dev: Dev, from: u32, to: u32 },
    /// The next program of a firewall's chain (its `chain` map's slot).
    Chain { map: PathBuf, from: u32, to: u32 },
    /// A tc filter of the load, at the place its record `at` names.
    Tc { at: PathBuf, from: u32, to: u32 },
}

/// A map pinned outside the load directory because the object asks for
/// it by name (`LIBBPF_PIN_BY_NAME`), shared by every load of such an
/// object: where, and which map (its kernel id).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SharedPin {
    pub path: PathBuf,
    pub map: u32,
}

/// What a change means to do: its journal record.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Change {
    /// A first load: pins staged in `stage`, then renamed to `dir`.
    Load {
        dir: PathBuf,
        stage: PathBuf,
        /// The generation in the new manifest.
        generation: u64,
        /// Parents of `dir` the load may create, outermost first.
        parents: Vec<PathBuf>,
        /// Maps pinned by name that this load creates: staged in
        /// `shared_stage`, renamed to their paths right before `stage` is
        /// renamed to `dir`.
        #[serde(default)]
        shared: Vec<SharedPin>,
        #[serde(default)]
        shared_stage: Option<PathBuf>,
    },
    /// `load --replace`: new pins staged in `stage`, attachments switched
    /// from the old programs to the new, then the directories exchanged.
    Replace {
        dir: PathBuf,
        stage: PathBuf,
        old_gen: u64,
        new_gen: u64,
        phase: Phase,
        switches: Vec<Switch>,
        /// Where the old pins go for a rollback (under --confirm-within);
        /// otherwise they are removed.
        keep: Option<PathBuf>,
        /// Recovery undoes instead of finishing (under --confirm-within,
        /// where no watcher would guard a finished change).
        undo_on_crash: bool,
    },
    /// `unload`: detach, then move the directory away in one rename, then
    /// remove it.
    Unload {
        dir: PathBuf,
        generation: u64,
        trash: PathBuf,
        links: Vec<u32>,
        netlink: Vec<(Dev, u32)>,
        /// Maps pinned by name that no other load uses: unpinned last.
        #[serde(default)]
        shared: Vec<SharedPin>,
        /// Chains (their map pins) that hold one of its programs: emptied
        /// first.
        #[serde(default)]
        unchain: Vec<(PathBuf, u32)>,
    },
    /// `attach` by a link pinned at `pin` (made in `links_dir`, which the
    /// attach may create). With `undo`, recovery takes the attachment off
    /// again even if it was made (an attach under `--confirm-within` that
    /// died before its watcher was armed).
    Attach {
        pin: PathBuf,
        links_dir: PathBuf,
        undo: bool,
    },
    /// `detach` of the link `link` pinned at `pin`.
    Detach { pin: PathBuf, link: u32 },
    /// A rollback of a change made under `--confirm-within`, or any other
    /// sequence of steps that recovery finishes as recorded.
    Steps { what: String, steps: Vec<Step> },
}

/// What recovery does with an unfinished change.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Brings it to the after state.
    Finish,
    /// Brings it back to the before state.
    Undo,
}

impl Change {
    /// A short description for messages.
    pub fn describe(&self) -> String {
        match self {
            Change::Load { dir, .. } => format!("load of {}", dir.display()),
            Change::Replace { dir, .. } => format!("replace of {}", dir.display()),
            Change::Unload { dir, .. } => format!("unload of {}", dir.display()),
            Change::Attach { pin, .. } => format!("attach pinned at {}", pin.display()),
            Change::Detach { pin, .. } => format!("detach of the link at {}", pin.display()),
            Change::Steps { what, .. } => what.clone(),
        }
    }

    /// The steps that do the change once its preparation (staging, a new
    /// link) is complete; the same steps finish it after a crash.
    pub fn forward(&self) -> Vec<Step> {
        match self {
            Change::Load { .. } | Change::Attach { .. } => Vec::new(),
            Change::Replace {
                dir,
                stage,
                old_gen,
                switches,
                keep,
                ..
            } => {
                let mut steps: Vec<Step> = switches.iter().map(|s| s.step(false)).collect();
                steps.push(Step::Exchange {
                    dir: dir.clone(),
                    generation: *old_gen,
                    other: stage.clone(),
                });
                // After the exchange the old pins are in `stage`.
                if let Some(keep) = keep {
                    steps.push(Step::Move {
                        from: stage.clone(),
                        generation: Some(*old_gen),
                        to: keep.clone(),
                    });
                }
                // Whatever is left in the stage is the old load, or nothing.
                steps.push(Step::RemoveTree {
                    path: stage.clone(),
                });
                steps
            }
            Change::Unload {
                dir,
                generation,
                trash,
                links,
                netlink,
                shared,
                unchain,
            } => {
                let mut steps: Vec<Step> = unchain
                    .iter()
                    .map(|(map, prog)| Step::ChainSwap {
                        map: map.clone(),
                        from: Some(*prog),
                        to: None,
                    })
                    .collect();
                steps.extend(links.iter().map(|&link| Step::LinkDetach { link }));
                steps.extend(netlink.iter().map(|(dev, prog)| Step::XdpSwap {
                    dev: dev.clone(),
                    from: *prog,
                    to: None,
                }));
                steps.push(Step::Move {
                    from: dir.clone(),
                    generation: Some(*generation),
                    to: trash.clone(),
                });
                steps.push(Step::RemoveTree {
                    path: trash.clone(),
                });
                steps.extend(shared.iter().map(|s| Step::UnpinMap {
                    path: s.path.clone(),
                    map: s.map,
                    unless: None,
                }));
                steps
            }
            // The links directory goes with its last link: attach made it.
            Change::Detach { pin, link } => vec![
                Step::LinkDetach { link: *link },
                Step::UnpinLink {
                    path: pin.clone(),
                    link: *link,
                },
                Step::RmdirIfEmpty {
                    path: pin.parent().map(Path::to_owned).unwrap_or_default(),
                },
            ],
            Change::Steps { steps, .. } => steps.clone(),
        }
    }

    /// What recovery does with this change, and the steps that do it.
    pub fn recovery(&self) -> (Outcome, Vec<Step>) {
        match self {
            // The rename is the commit: if it happened, the stage is gone
            // and the parents are in use; if not, both go.
            // Shared pins moved into place stay only if the rename happened.
            Change::Load {
                dir,
                stage,
                generation,
                parents,
                shared,
                shared_stage,
            } => {
                let mut steps: Vec<Step> = shared
                    .iter()
                    .map(|s| Step::UnpinMap {
                        path: s.path.clone(),
                        map: s.map,
                        unless: Some((dir.clone(), *generation)),
                    })
                    .collect();
                steps.push(Step::RemoveTree {
                    path: stage.clone(),
                });
                steps.extend(
                    shared_stage
                        .iter()
                        .map(|p| Step::RemoveTree { path: p.clone() }),
                );
                steps.extend(
                    parents
                        .iter()
                        .rev()
                        .map(|p| Step::RmdirIfEmpty { path: p.clone() }),
                );
                (Outcome::Undo, steps)
            }
            Change::Replace {
                phase: Phase::Staging,
                stage,
                ..
            } => (
                Outcome::Undo,
                vec![Step::RemoveTree {
                    path: stage.clone(),
                }],
            ),
            Change::Replace {
                dir,
                stage,
                new_gen,
                switches,
                keep,
                undo_on_crash: true,
                ..
            } => {
                let mut steps: Vec<Step> = switches.iter().map(|s| s.step(true)).collect();
                // If the exchange happened, the new pins are in `dir` and
                // the old ones in `stage`, or already moved to `keep`.
                for old in std::iter::once(stage).chain(keep) {
                    steps.push(Step::Exchange {
                        dir: dir.clone(),
                        generation: *new_gen,
                        other: old.clone(),
                    });
                }
                for scratch in std::iter::once(stage).chain(keep) {
                    steps.push(Step::RemoveTree {
                        path: scratch.clone(),
                    });
                }
                (Outcome::Undo, steps)
            }
            Change::Replace { .. } | Change::Unload { .. } | Change::Detach { .. } => {
                (Outcome::Finish, self.forward())
            }
            // A link that was never pinned died with the process; one that
            // was pinned but not attached is undone.
            Change::Attach {
                pin,
                links_dir,
                undo,
            } => (
                Outcome::Undo,
                vec![
                    if *undo {
                        Step::DetachPinned { path: pin.clone() }
                    } else {
                        Step::UnpinIfDetached { path: pin.clone() }
                    },
                    Step::RmdirIfEmpty {
                        path: links_dir.clone(),
                    },
                ],
            ),
            Change::Steps { steps, .. } => (Outcome::Finish, steps.clone()),
        }
    }

    /// Every path the change touches.
    fn paths(&self) -> Vec<&Path> {
        let mut out: Vec<&Path> = Vec::new();
        match self {
            Change::Load {
                dir,
                stage,
                parents,
                shared,
                shared_stage,
                ..
            } => {
                out.extend([dir.as_path(), stage.as_path()]);
                out.extend(parents.iter().map(PathBuf::as_path));
                out.extend(shared.iter().map(|s| s.path.as_path()));
                out.extend(shared_stage.as_deref());
            }
            Change::Replace {
                dir, stage, keep, ..
            } => {
                out.extend([dir.as_path(), stage.as_path()]);
                out.extend(keep.as_deref());
            }
            Change::Unload {
                dir,
                trash,
                shared,
                unchain,
                ..
            } => {
                out.extend([dir.as_path(), trash.as_path()]);
                out.extend(shared.iter().map(|s| s.path.as_path()));
                out.extend(unchain.iter().map(|(m, _)| m.as_path()));
            }
            Change::Attach { pin, links_dir, .. } => {
                out.extend([pin.as_path(), links_dir.as_path()])
            }
            Change::Detach { pin, .. } => out.push(pin),
            Change::Steps { steps, .. } => {
                for s in steps {
                    match s {
                        Step::Exchange { dir, other, .. } => out.extend([dir.as_path(), other]),
                        Step::Move { from, to, .. } => out.extend([from.as_path(), to]),
                        Step::RemoveTree { path }
                        | Step::RmdirIfEmpty { path }
                        | Step::UnpinLink { path, .. }
                        | Step::UnpinIfDetached { path }
                        | Step::TcSettle { path }
                        | Step::TcDetach { path }
                        | Step::DetachPinned { path } => out.push(path),
                        Step::TcSwap { at, .. } => out.push(at),
                        Step::DispatcherSettle { new_paths, old, .. } => {
                            out.extend(new_paths.iter().chain(old).map(PathBuf::as_path));
                        }
                        Step::UnpinMap { path, unless, .. } => {
                            out.push(path);
                            out.extend(unless.as_ref().map(|(d, _)| d.as_path()));
                        }
                        Step::SyncRules { dir, desired } => out.extend([dir.as_path(), desired]),
                        Step::MoveLinkPin { from, to, .. } => out.extend([from.as_path(), to]),
                        Step::ChainSwap { map, .. } => out.push(map),
                        Step::LinkSwap { .. } | Step::XdpSwap { .. } | Step::LinkDetach { .. } => {}
                    }
                }
            }
        }
        out
    }

    /// Paths the change removes or renames away wholesale: they must be in
    /// xdpctl's own state directory.
    fn scratch_paths(&self) -> Vec<&Path> {
        match self {
            Change::Load {
                stage,
                shared_stage,
                ..
            } => {
                let mut v = vec![stage.as_path()];
                v.extend(shared_stage.as_deref());
                v
            }
            Change::Replace { stage, keep, .. } => {
                let mut v = vec![stage.as_path()];
                v.extend(keep.as_deref());
                v
            }
            Change::Unload { trash, .. } => vec![trash],
            _ => Vec::new(),
        }
    }

    /// Checks a record read back from the journal before anything acts on
    /// it: every path absolute, without `.` or `..`, on the bpffs mounted at
    /// `root`; staging, trash and rollback directories inside `state` (the
    /// state directory on that bpffs). A forged or damaged record is refused
    /// whole.
    pub fn validate(&self, root: &Path, state: &Path) -> Result<(), String> {
        for path in self.paths() {
            check_inside(path, root)?;
        }
        for path in self.scratch_paths() {
            check_inside(path, state)?;
            if path == state {
                return Err(format!("{} is the state directory itself", path.display()));
            }
        }
        Ok(())
    }
}

impl Switch {
    /// The step that makes the switch (`back`: that undoes it).
    pub fn step(&self, back: bool) -> Step {
        match *self {
            Switch::Link { link, from, to } => {
                let (from, to) = if back { (to, from) } else { (from, to) };
                Step::LinkSwap { link, from, to }
            }
            Switch::Netlink { ref dev, from, to } => {
                let (from, to) = if back { (to, from) } else { (from, to) };
                Step::XdpSwap {
                    dev: dev.clone(),
                    from,
                    to: Some(to),
                }
            }
            Switch::Chain { ref map, from, to } => {
                let (from, to) = if back { (to, from) } else { (from, to) };
                Step::ChainSwap {
                    map: map.clone(),
                    from: Some(from),
                    to: Some(to),
                }
            }
            Switch::Tc { ref at, from, to } => {
                let (from, to) = if back { (to, from) } else { (from, to) };
                Step::TcSwap {
                    at: at.clone(),
                    from,
                    to,
                }
            }
        }
    }
}

/// `path` is absolute, has only normal components, and lies strictly
/// below `root`.
pub fn check_inside(path: &Path, root: &Path) -> Result<(), String> {
    if !path.is_absolute()
        || path
            .components()
            .any(|c| matches!(c, Component::ParentDir | Component::CurDir))
    {
        return Err(format!("{} is not a plain absolute path", path.display()));
    }
    if !path.starts_with(root) || path == root {
        return Err(format!("{} is outside {}", path.display(), root.display()));
    }
    Ok(())
}

/// The state of a link, as steps need it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LinkState {
    /// The program it runs.
    pub prog: u32,
    /// Whether it is attached to its hook (a detached link still exists
    /// while something holds it).
    pub attached: bool,
}

/// The operations steps are made of. The kernel layer implements it with
/// system calls; the tests implement it in memory.
pub trait Kernel {
    /// Link `link`, if it exists.
    fn link(&mut self, link: u32) -> anyhow::Result<Option<LinkState>>;
    /// `BPF_LINK_UPDATE` with `BPF_F_REPLACE`.
    fn link_update(&mut self, link: u32, to: u32, from: u32) -> anyhow::Result<()>;
    /// `BPF_LINK_DETACH`.
    fn link_detach(&mut self, link: u32) -> anyhow::Result<()>;
    /// The program attached over netlink to `dev` in its mode.
    fn xdp(&mut self, dev: &Dev) -> anyhow::Result<Option<u32>>;
    /// Replace `from` on `dev` with `to` (or nothing), `XDP_FLAGS_REPLACE`.
    fn xdp_replace(&mut self, dev: &Dev, to: Option<u32>, from: u32) -> anyhow::Result<()>;
    /// The generation in the manifest of the load directory `dir`.
    fn generation(&mut self, dir: &Path) -> anyhow::Result<Option<u64>>;
    /// Whether anything is at `path`.
    fn exists(&mut self, path: &Path) -> anyhow::Result<bool>;
    /// `RENAME_EXCHANGE`.
    fn exchange(&mut self, a: &Path, b: &Path) -> anyhow::Result<()>;
    /// `RENAME_NOREPLACE`.
    fn rename(&mut self, from: &Path, to: &Path) -> anyhow::Result<()>;
    /// Removes a tree of pins, if it exists.
    fn remove_tree(&mut self, path: &Path) -> anyhow::Result<()>;
    /// Removes an empty directory, if it exists and is empty.
    fn rmdir_if_empty(&mut self, path: &Path) -> anyhow::Result<()>;
    /// The id of the link pinned at `path`, if a link is pinned there.
    fn pinned_link(&mut self, path: &Path) -> anyhow::Result<Option<u32>>;
    /// The id of the program pinned at `path`, if a program is pinned there.
    fn pinned_prog(&mut self, path: &Path) -> anyhow::Result<Option<u32>>;
    /// The program the tc filter at the place `at` names runs (its device,
    /// namespace, hook and priority; handle 1): `Some(None)` when there is
    /// none there (or the device is gone), `None` when it cannot be told
    /// (the namespace has no name to enter it by).
    fn tc_filter(
        &mut self,
        at: &crate::model::linkpin::LinkPin,
    ) -> anyhow::Result<Option<Option<u32>>>;
    /// Deletes that filter.
    fn tc_filter_del(&mut self, at: &crate::model::linkpin::LinkPin) -> anyhow::Result<()>;
    /// Makes that filter run program `to` (`tc filter replace`).
    fn tc_filter_replace(
        &mut self,
        at: &crate::model::linkpin::LinkPin,
        to: u32,
    ) -> anyhow::Result<()>;
    /// The id of the map pinned at `path`, if a map is pinned there.
    fn pinned_map(&mut self, path: &Path) -> anyhow::Result<Option<u32>>;
    /// Removes the pin at `path`.
    fn unpin(&mut self, path: &Path) -> anyhow::Result<()>;
    /// Syncs the rule maps of `dir` with the stored `desired` rules (each
    /// write idempotent).
    fn sync_rules(&mut self, dir: &Path, desired: &Path) -> anyhow::Result<()>;
    /// The program in the slot of the one-slot program array pinned at
    /// `map`; `None` when it is empty or nothing is pinned there.
    fn chain(&mut self, map: &Path) -> anyhow::Result<Option<u32>>;
    /// Puts program `to` in that slot, or empties it.
    fn chain_set(&mut self, map: &Path, to: Option<u32>) -> anyhow::Result<()>;
}

/// Runs one step. A step whose precondition does not hold does nothing.
pub fn run(kernel: &mut dyn Kernel, step: &Step) -> anyhow::Result<()> {
    match step {
        Step::LinkSwap { link, from, to } => {
            if kernel.link(*link)?.is_some_and(|l| l.prog == *from) {
                kernel.link_update(*link, *to, *from)?;
            }
        }
        Step::XdpSwap { dev, from, to } => {
            if kernel.xdp(dev)? == Some(*from) {
                kernel.xdp_replace(dev, *to, *from)?;
            }
        }
        Step::LinkDetach { link } => {
            if kernel.link(*link)?.is_some_and(|l| l.attached) {
                kernel.link_detach(*link)?;
            }
        }
        Step::ChainSwap { map, from, to } => {
            // NB: no compare-and-swap for a program array: the change lock
            // keeps other xdpctl commands out meanwhile.
            if kernel.chain(map)? == *from {
                kernel.chain_set(map, *to)?;
            }
        }
        Step::Exchange {
            dir,
            generation,
            other,
        } => {
            if kernel.generation(dir)? == Some(*generation) && kernel.exists(other)? {
                kernel.exchange(dir, other)?;
            }
        }
        Step::Move {
            from,
            generation,
            to,
        } => {
            let holds = match generation {
                Some(g) => kernel.generation(from)? == Some(*g),
                None => kernel.exists(from)?,
            };
            if holds && !kernel.exists(to)? {
                kernel.rename(from, to)?;
            }
        }
        Step::RemoveTree { path } => kernel.remove_tree(path)?,
        Step::RmdirIfEmpty { path } => kernel.rmdir_if_empty(path)?,
        Step::UnpinLink { path, link } => {
            if kernel.pinned_link(path)? == Some(*link) {
                kernel.unpin(path)?;
            }
        }
        Step::UnpinIfDetached { path } => {
            if let Some(link) = kernel.pinned_link(path)?
                && !kernel.link(link)?.is_some_and(|l| l.attached)
            {
                kernel.unpin(path)?;
            }
        }
        Step::SyncRules { dir, desired } => kernel.sync_rules(dir, desired)?,
        Step::UnpinMap { path, map, unless } => {
            let committed = match unless {
                Some((dir, generation)) => kernel.generation(dir)? == Some(*generation),
                None => false,
            };
            if !committed && kernel.pinned_map(path)? == Some(*map) {
                kernel.unpin(path)?;
            }
        }
        Step::MoveLinkPin {
            from,
            to,
            link,
            prog,
        } => {
            if kernel.pinned_link(from)? == Some(*link)
                && kernel.link(*link)?.is_some_and(|l| l.prog == *prog)
                && !kernel.exists(to)?
            {
                kernel.rename(from, to)?;
            }
        }
        // NB: a filter in a namespace out of reach is neither deleted nor
        // forgotten: its record stays for `detach --tc --netns PATH`.
        Step::TcSettle { path } => {
            if let Some(prog) = kernel.pinned_prog(path)?
                && let Some(at) = crate::model::linkpin::LinkPin::parse(path)
                && let Some(runs) = kernel.tc_filter(&at)?
                && runs != Some(prog)
            {
                kernel.unpin(path)?;
            }
        }
        Step::DispatcherSettle {
            dev,
            new,
            new_paths,
            old,
        } => {
            let gone = if kernel.xdp(dev)? == Some(*new) {
                old
            } else {
                new_paths
            };
            for path in gone {
                kernel.remove_tree(path)?;
            }
        }
        Step::TcSwap { at, from, to } => {
            if let Some(place) = crate::model::linkpin::LinkPin::parse(at)
                && kernel.tc_filter(&place)? == Some(Some(*from))
            {
                kernel.tc_filter_replace(&place, *to)?;
            }
        }
        Step::TcDetach { path } => {
            if let Some(prog) = kernel.pinned_prog(path)? {
                let at = crate::model::linkpin::LinkPin::parse(path);
                let runs = match &at {
                    Some(at) => kernel.tc_filter(at)?,
                    None => Some(None),
                };
                if let Some(runs) = runs {
                    if let (Some(at), true) = (&at, runs == Some(prog)) {
                        kernel.tc_filter_del(at)?;
                    }
                    kernel.unpin(path)?;
                }
            }
        }
        Step::DetachPinned { path } => {
            if let Some(link) = kernel.pinned_link(path)? {
                if kernel.link(link)?.is_some_and(|l| l.attached) {
                    kernel.link_detach(link)?;
                }
                kernel.unpin(path)?;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
pub mod fake;
