//! A fake kernel for the journal's unit tests (aya's `sys/fake.rs`
//! pattern): links, netlink attachments and a bpffs tree in memory, and a
//! budget of state changes after which it "dies".
//!
//! The tests run each change's steps against it with the budget set to
//! 0, 1, 2... (a SIGKILL before each state-changing call in turn), then run
//! the change's recovery with no budget, and check that the state is
//! exactly the before or the after.

use std::{
    collections::{BTreeMap, HashMap},
    path::{Path, PathBuf},
};

use super::*;

/// A node of the fake bpffs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Node {
    Dir,
    /// A pinned link, by id.
    Link(u32),
    /// A pinned map, by id.
    Map(u32),
    /// A pinned program, by id.
    Prog(u32),
    /// Any other pin, by a label.
    Pin(String),
    /// A load directory's manifest, with its generation.
    Manifest(u64),
}

/// The fake kernel.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Fake {
    pub links: BTreeMap<u32, LinkState>,
    pub xdp: HashMap<Dev, u32>,
    pub fs: BTreeMap<PathBuf, Node>,
    /// The slots of pinned one-slot program arrays, by pin.
    pub chains: BTreeMap<PathBuf, u32>,
    /// tc filters: the program each runs, by its place (the name of a
    /// record of it, e.g. `tc_ingress:p:3:eth0@9`).
    pub filters: BTreeMap<String, u32>,
    /// Namespaces (by inode) that cannot be entered: no name to enter by.
    pub unreachable: Vec<u64>,
    /// State changes left before the crash; `None`: never.
    pub budget: Option<usize>,
}

#[derive(Debug, thiserror::Error)]
#[error("killed")]
pub struct Killed;

impl Fake {
    fn spend(&mut self) -> anyhow::Result<()> {
        match &mut self.budget {
            Some(0) => Err(Killed.into()),
            Some(n) => {
                *n -= 1;
                Ok(())
            }
            None => Ok(()),
        }
    }

    /// Adds a directory and its parents.
    pub fn mkdir(&mut self, path: &str) {
        let mut p = PathBuf::new();
        for c in Path::new(path).components() {
            p.push(c);
            if p != Path::new("/") {
                self.fs.entry(p.clone()).or_insert(Node::Dir);
            }
        }
    }

    /// Adds a node (and its parent directories).
    pub fn put(&mut self, path: &str, node: Node) {
        if let Some(parent) = Path::new(path).parent() {
            self.mkdir(&parent.display().to_string());
        }
        self.fs.insert(path.into(), node);
    }

    fn subtree(&self, root: &Path) -> Vec<PathBuf> {
        self.fs
            .keys()
            .filter(|p| p.starts_with(root))
            .cloned()
            .collect()
    }

    fn move_tree(&mut self, from: &Path, to: &Path) {
        for p in self.subtree(from) {
            let node = self.fs.remove(&p).unwrap();
            let rel = p.strip_prefix(from).unwrap();
            let dest = if rel.as_os_str().is_empty() {
                to.to_owned()
            } else {
                to.join(rel)
            };
            self.fs.insert(dest, node);
        }
    }

    /// The state without the budget, for comparisons.
    pub fn state(&self) -> Fake {
        Fake {
            budget: None,
            ..self.clone()
        }
    }
}

impl Kernel for Fake {
    fn link(&mut self, link: u32) -> anyhow::Result<Option<LinkState>> {
        Ok(self.links.get(&link).copied())
    }
    fn link_update(&mut self, link: u32, to: u32, from: u32) -> anyhow::Result<()> {
        self.spend()?;
        let l = self.links.get_mut(&link).expect("link exists");
        anyhow::ensure!(l.prog == from, "EPERM: link runs another program");
        l.prog = to;
        Ok(())
    }
    fn link_detach(&mut self, link: u32) -> anyhow::Result<()> {
        self.spend()?;
        self.links.get_mut(&link).expect("link exists").attached = false;
        Ok(())
    }
    fn xdp(&mut self, dev: &Dev) -> anyhow::Result<Option<u32>> {
        Ok(self.xdp.get(dev).copied())
    }
    fn xdp_replace(&mut self, dev: &Dev, to: Option<u32>, from: u32) -> anyhow::Result<()> {
        self.spend()?;
        anyhow::ensure!(self.xdp.get(dev) == Some(&from), "EEXIST");
        match to {
            Some(to) => self.xdp.insert(dev.clone(), to),
            None => self.xdp.remove(dev),
        };
        Ok(())
    }
    fn generation(&mut self, dir: &Path) -> anyhow::Result<Option<u64>> {
        Ok(match self.fs.get(&dir.join("manifest")) {
            Some(Node::Manifest(g)) => Some(*g),
            _ => None,
        })
    }
    fn exists(&mut self, path: &Path) -> anyhow::Result<bool> {
        Ok(self.fs.contains_key(path))
    }
    fn exchange(&mut self, a: &Path, b: &Path) -> anyhow::Result<()> {
        self.spend()?;
        let tmp = Path::new("/exchange-tmp");
        self.move_tree(a, tmp);
        self.move_tree(b, a);
        self.move_tree(tmp, b);
        Ok(())
    }
    fn rename(&mut self, from: &Path, to: &Path) -> anyhow::Result<()> {
        self.spend()?;
        anyhow::ensure!(!self.fs.contains_key(to), "EEXIST");
        self.move_tree(from, to);
        Ok(())
    }
    fn remove_tree(&mut self, path: &Path) -> anyhow::Result<()> {
        // One unlink at a time, deepest first, like the real one.
        let mut nodes = self.subtree(path);
        nodes.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
        for p in nodes {
            self.spend()?;
            self.fs.remove(&p);
        }
        Ok(())
    }
    fn rmdir_if_empty(&mut self, path: &Path) -> anyhow::Result<()> {
        if self.fs.get(path) == Some(&Node::Dir) && self.subtree(path).len() == 1 {
            self.spend()?;
            self.fs.remove(path);
        }
        Ok(())
    }
    fn pinned_link(&mut self, path: &Path) -> anyhow::Result<Option<u32>> {
        Ok(match self.fs.get(path) {
            Some(Node::Link(id)) => Some(*id),
            _ => None,
        })
    }
    fn pinned_prog(&mut self, path: &Path) -> anyhow::Result<Option<u32>> {
        Ok(match self.fs.get(path) {
            Some(Node::Prog(id)) => Some(*id),
            _ => None,
        })
    }
    fn tc_filter(
        &mut self,
        at: &crate::model::linkpin::LinkPin,
    ) -> anyhow::Result<Option<Option<u32>>> {
        Ok((!self.unreachable.contains(&at.netns)).then(|| self.filters.get(&at.name()).copied()))
    }
    fn tc_filter_del(&mut self, at: &crate::model::linkpin::LinkPin) -> anyhow::Result<()> {
        self.spend()?;
        self.filters.remove(&at.name());
        Ok(())
    }
    fn tc_filter_replace(
        &mut self,
        at: &crate::model::linkpin::LinkPin,
        to: u32,
    ) -> anyhow::Result<()> {
        self.spend()?;
        self.filters.insert(at.name(), to);
        Ok(())
    }
    fn pinned_map(&mut self, path: &Path) -> anyhow::Result<Option<u32>> {
        Ok(match self.fs.get(path) {
            Some(Node::Map(id)) => Some(*id),
            _ => None,
        })
    }
    fn sync_rules(&mut self, dir: &Path, desired: &Path) -> anyhow::Result<()> {
        self.spend()?;
        let synced = self.fs.get(desired).cloned();
        if let Some(Node::Pin(rules)) = synced {
            self.fs.insert(dir.join("rules"), Node::Pin(rules));
        }
        Ok(())
    }
    fn chain(&mut self, map: &Path) -> anyhow::Result<Option<u32>> {
        Ok(match self.fs.get(map) {
            Some(Node::Map(_)) => self.chains.get(map).copied(),
            _ => None,
        })
    }
    fn chain_set(&mut self, map: &Path, to: Option<u32>) -> anyhow::Result<()> {
        self.spend()?;
        anyhow::ensure!(matches!(self.fs.get(map), Some(Node::Map(_))), "ENOENT");
        match to {
            Some(to) => self.chains.insert(map.to_owned(), to),
            None => self.chains.remove(map),
        };
        Ok(())
    }
    fn unpin(&mut self, path: &Path) -> anyhow::Result<()> {
        self.spend()?;
        if let Some(Node::Link(id)) = self.fs.remove(path) {
            // An unpinned link nothing else holds is released: detached.
            if let Some(l) = self.links.get_mut(&id) {
                l.attached = false;
            }
        }
        Ok(())
    }
}

/// Runs `prepare` then the change's forward steps with every possible
/// crash point, recovers, and checks the state is `before` or `after`.
/// Returns (crash points, outcomes that were the before, the after).
fn crash_everywhere(
    initial: &Fake,
    change: &Change,
    prepare: impl Fn(&mut Fake) -> anyhow::Result<()>,
    before: &Fake,
    after: &Fake,
) -> (usize, usize, usize) {
    let (mut points, mut befores, mut afters) = (0, 0, 0);
    for budget in 0.. {
        let mut k = initial.clone();
        k.budget = Some(budget);
        let result = prepare(&mut k).and_then(|()| {
            for step in change.forward() {
                run(&mut k, &step)?;
            }
            Ok(())
        });
        let completed = result.is_ok();
        k.budget = None;
        let (_, steps) = change.recovery();
        if !completed {
            for step in &steps {
                run(&mut k, step).unwrap();
            }
        }
        let state = k.state();
        if state == *before {
            befores += 1;
        } else if state == *after {
            afters += 1;
        } else {
            panic!(
                "{}: crash before state change {budget} left neither the before nor the after:\n{state:#?}",
                change.describe()
            );
        }
        points += 1;
        if completed {
            assert_eq!(state, *after, "a completed change ends in the after");
            break;
        }
        // Recovery is idempotent: running it again changes nothing.
        let mut again = state.clone();
        for step in &steps {
            run(&mut again, step).unwrap();
        }
        assert_eq!(again, state, "recovery run twice differs");
    }
    (points, befores, afters)
}

fn dev() -> Dev {
    Dev {
        netns: 4026531840,
        ifindex: 3,
        mode: 4,
    }
}

fn loaded(k: &mut Fake, dir: &str, generation: u64, prog: &str) {
    k.put(&format!("{dir}/manifest"), Node::Manifest(generation));
    k.put(&format!("{dir}/xdp_fw"), Node::Pin(prog.into()));
    k.put(
        &format!("{dir}/maps/blocklist"),
        Node::Pin("blocklist".into()),
    );
}

#[test]
fn a_replace_killed_anywhere_ends_before_or_after() {
    let mut initial = Fake::default();
    initial.mkdir("/b/_xdpctl/stage");
    loaded(&mut initial, "/b/fw", 1, "old");
    initial.put("/b/fw/links/eth1@9", Node::Link(10));
    initial.links.insert(
        10,
        LinkState {
            prog: 100,
            attached: true,
        },
    );
    initial.xdp.insert(dev(), 100);
    // Another firewall chains to it.
    initial.put("/b/ids/maps/chain", Node::Map(50));
    initial.chains.insert("/b/ids/maps/chain".into(), 100);
    // A tc filter of the load, with its record.
    initial.put(TC_RECORD, Node::Prog(100));
    initial.filters.insert(tc_place(), 100);
    let change = Change::Replace {
        dir: "/b/fw".into(),
        stage: "/b/_xdpctl/stage/r1".into(),
        old_gen: 1,
        new_gen: 2,
        phase: Phase::Switching,
        switches: vec![
            Switch::Link {
                link: 10,
                from: 100,
                to: 200,
            },
            Switch::Netlink {
                dev: dev(),
                from: 100,
                to: 200,
            },
            Switch::Chain {
                map: "/b/ids/maps/chain".into(),
                from: 100,
                to: 200,
            },
            Switch::Tc {
                at: TC_RECORD.into(),
                from: 100,
                to: 200,
            },
        ],
        keep: None,
        undo_on_crash: false,
    };
    let stage = |k: &mut Fake| -> anyhow::Result<()> {
        k.spend()?;
        loaded(k, "/b/_xdpctl/stage/r1", 2, "new");
        k.spend()?;
        k.put("/b/_xdpctl/stage/r1/links/eth1@9", Node::Link(10));
        k.spend()?;
        k.put(
            "/b/_xdpctl/stage/r1/links/tc_ingress:tc_pass:3:eth1@9",
            Node::Prog(200),
        );
        Ok(())
    };
    let mut after = initial.clone();
    after.fs.retain(|p, _| !p.starts_with("/b/fw"));
    loaded(&mut after, "/b/fw", 2, "new");
    after.put("/b/fw/links/eth1@9", Node::Link(10));
    after.links.get_mut(&10).unwrap().prog = 200;
    after.xdp.insert(dev(), 200);
    after.chains.insert("/b/ids/maps/chain".into(), 200);
    after.put(TC_RECORD, Node::Prog(200));
    after.filters.insert(tc_place(), 200);

    // Killed while staging: undone.
    let mut staging = change.clone();
    if let Change::Replace { phase, .. } = &mut staging {
        *phase = Phase::Staging;
    }
    for budget in 0..3 {
        let mut k = initial.clone();
        k.budget = Some(budget);
        assert!(stage(&mut k).is_err());
        k.budget = None;
        for step in staging.recovery().1 {
            run(&mut k, &step).unwrap();
        }
        assert_eq!(k.state(), initial, "killed while staging");
    }
    // Killed while switching: finished.
    let (points, befores, afters) = crash_everywhere(
        &initial,
        &change,
        // The record says "switching" only once staging is complete.
        |k| {
            let budget = k.budget.take();
            stage(k)?;
            k.budget = budget;
            Ok(())
        },
        &initial,
        &after,
    );
    assert!(points >= 5, "{points}");
    assert_eq!(befores, 0, "a switching replace is always finished");
    assert_eq!(afters, points);

    // Under --confirm-within the old pins are kept for the rollback, and
    // a crash is undone instead, wherever it happened.
    let mut careful = change.clone();
    if let Change::Replace {
        undo_on_crash,
        keep,
        ..
    } = &mut careful
    {
        *undo_on_crash = true;
        *keep = Some("/b/_xdpctl/rollback/k".into());
    }
    let mut careful_before = initial.clone();
    careful_before.mkdir("/b/_xdpctl/rollback");
    let mut staged = careful_before.clone();
    stage(&mut staged).unwrap();
    let mut careful_after = after.clone();
    careful_after.mkdir("/b/_xdpctl/rollback");
    loaded(&mut careful_after, "/b/_xdpctl/rollback/k", 1, "old");
    careful_after.put("/b/_xdpctl/rollback/k/links/eth1@9", Node::Link(10));
    careful_after.put(
        "/b/_xdpctl/rollback/k/links/tc_ingress:tc_pass:3:eth1@9",
        Node::Prog(100),
    );
    let (points, befores, afters) = crash_everywhere(
        &staged,
        &careful,
        |_| Ok(()),
        &careful_before,
        &careful_after,
    );
    assert_eq!(
        afters, 1,
        "only the run that was not killed ends in the after"
    );
    assert_eq!(befores + 1, points);
}

#[test]
fn an_unload_killed_anywhere_is_finished() {
    let mut initial = Fake::default();
    initial.mkdir("/b/_xdpctl/trash");
    loaded(&mut initial, "/b/fw", 7, "p");
    initial.put("/b/fw/links/eth1@9", Node::Link(10));
    initial.links.insert(
        10,
        LinkState {
            prog: 100,
            attached: true,
        },
    );
    initial.xdp.insert(dev(), 100);
    // Another firewall chains to its program.
    initial.put("/b/ids/maps/chain", Node::Map(50));
    initial.chains.insert("/b/ids/maps/chain".into(), 100);
    let change = Change::Unload {
        dir: "/b/fw".into(),
        generation: 7,
        trash: "/b/_xdpctl/trash/u1".into(),
        links: vec![10],
        netlink: vec![(dev(), 100)],
        shared: vec![SharedPin {
            path: "/b/stats".into(),
            map: 40,
        }],
        unchain: vec![("/b/ids/maps/chain".into(), 100)],
    };
    initial.put("/b/stats", Node::Map(40));
    let mut after = initial.clone();
    after.fs.retain(|p, _| !p.starts_with("/b/fw"));
    after.fs.remove(Path::new("/b/stats"));
    after.links.get_mut(&10).unwrap().attached = false;
    after.xdp.clear();
    after.chains.clear();
    let (points, _, afters) = crash_everywhere(&initial, &change, |_| Ok(()), &initial, &after);
    assert_eq!(afters, points);
}

#[test]
fn a_detach_killed_anywhere_leaves_no_pin_of_a_dead_link() {
    let mut initial = Fake::default();
    initial.put("/b/fw/links/eth1@9", Node::Link(10));
    initial.links.insert(
        10,
        LinkState {
            prog: 100,
            attached: true,
        },
    );
    let change = Change::Detach {
        pin: "/b/fw/links/eth1@9".into(),
        link: 10,
    };
    let mut after = initial.clone();
    after.fs.remove(Path::new("/b/fw/links/eth1@9"));
    // The links directory attach made goes with its last link.
    after.fs.remove(Path::new("/b/fw/links"));
    after.links.get_mut(&10).unwrap().attached = false;
    let (points, _, afters) = crash_everywhere(&initial, &change, |_| Ok(()), &initial, &after);
    assert_eq!((points, afters), (4, 4));
}

#[test]
fn a_load_killed_anywhere_leaves_nothing_or_the_load() {
    let mut initial = Fake::default();
    initial.mkdir("/b/_xdpctl/stage");
    let change = Change::Load {
        dir: "/b/a/fw".into(),
        stage: "/b/_xdpctl/stage/l1".into(),
        generation: 3,
        parents: vec!["/b/a".into()],
        shared: Vec::new(),
        shared_stage: None,
    };
    let prepare = |k: &mut Fake| -> anyhow::Result<()> {
        k.spend()?;
        k.mkdir("/b/a");
        k.spend()?;
        k.mkdir("/b/_xdpctl/stage/l1");
        k.spend()?;
        loaded(k, "/b/_xdpctl/stage/l1", 3, "p");
        k.rename(Path::new("/b/_xdpctl/stage/l1"), Path::new("/b/a/fw"))
    };
    let mut after = initial.clone();
    after.mkdir("/b/a");
    loaded(&mut after, "/b/a/fw", 3, "p");
    let (points, befores, afters) = crash_everywhere(&initial, &change, prepare, &initial, &after);
    assert_eq!((points, befores, afters), (5, 4, 1));
}

#[test]
fn a_load_with_shared_maps_killed_anywhere_leaves_nothing_or_the_load() {
    let mut initial = Fake::default();
    initial.mkdir("/b/_xdpctl/stage");
    // Another tool's pin of the same id-less name stays whatever happens.
    initial.put("/b/other", Node::Map(7));
    let change = Change::Load {
        dir: "/b/fw".into(),
        stage: "/b/_xdpctl/stage/l1".into(),
        generation: 3,
        parents: vec![],
        shared: vec![
            SharedPin {
                path: "/b/stats".into(),
                map: 40,
            },
            SharedPin {
                path: "/b/ports".into(),
                map: 41,
            },
        ],
        shared_stage: Some("/b/_xdpctl/stage/s1".into()),
    };
    let prepare = |k: &mut Fake| -> anyhow::Result<()> {
        k.spend()?;
        k.mkdir("/b/_xdpctl/stage/s1");
        k.spend()?;
        k.put("/b/_xdpctl/stage/s1/stats", Node::Map(40));
        k.spend()?;
        k.put("/b/_xdpctl/stage/s1/ports", Node::Map(41));
        k.spend()?;
        k.mkdir("/b/_xdpctl/stage/l1");
        k.spend()?;
        loaded(k, "/b/_xdpctl/stage/l1", 3, "p");
        k.rename(
            Path::new("/b/_xdpctl/stage/s1/stats"),
            Path::new("/b/stats"),
        )?;
        k.rename(
            Path::new("/b/_xdpctl/stage/s1/ports"),
            Path::new("/b/ports"),
        )?;
        k.rename(Path::new("/b/_xdpctl/stage/l1"), Path::new("/b/fw"))?;
        k.remove_tree(Path::new("/b/_xdpctl/stage/s1"))
    };
    let mut after = initial.clone();
    loaded(&mut after, "/b/fw", 3, "p");
    after.put("/b/stats", Node::Map(40));
    after.put("/b/ports", Node::Map(41));
    let (points, befores, afters) = crash_everywhere(&initial, &change, prepare, &initial, &after);
    // Killed after the commit (the rename of the load), before the stage
    // was removed: that is the after too.
    assert_eq!((points, befores, afters), (10, 8, 2));
}

/// A kernel with link 10 (of program 100) pinned at /b/fw/links/eth1@9.
fn pinned_link(attached: bool) -> Fake {
    let mut k = Fake::default();
    k.put("/b/fw/links/eth1@9", Node::Link(10));
    k.links.insert(
        10,
        LinkState {
            prog: 100,
            attached,
        },
    );
    k
}

#[test]
fn an_attach_killed_after_the_pin_of_a_dead_link_is_undone() {
    let mut k = pinned_link(false);
    let change = Change::Attach {
        pin: "/b/fw/links/eth1@9".into(),
        links_dir: "/b/fw/links".into(),
        undo: false,
    };
    for step in change.recovery().1 {
        run(&mut k, &step).unwrap();
    }
    assert!(!k.fs.contains_key(Path::new("/b/fw/links")));
    // A live one stays.
    let mut k = pinned_link(true);
    let before = k.clone();
    for step in change.recovery().1 {
        run(&mut k, &step).unwrap();
    }
    assert_eq!(k, before);
}

#[test]
fn forged_records_are_refused() {
    let root = Path::new("/sys/fs/bpf");
    let state = Path::new("/sys/fs/bpf/_xdpctl");
    let ok = Change::Unload {
        dir: "/sys/fs/bpf/fw".into(),
        generation: 1,
        trash: "/sys/fs/bpf/_xdpctl/trash/x".into(),
        links: vec![],
        netlink: vec![],
        shared: vec![],
        unchain: vec![],
    };
    assert_eq!(ok.validate(root, state), Ok(()));
    for (dir, trash) in [
        ("/etc", "/sys/fs/bpf/_xdpctl/trash/x"),
        ("/sys/fs/bpf/../../etc", "/sys/fs/bpf/_xdpctl/trash/x"),
        ("/sys/fs/bpf/fw", "/sys/fs/bpf/other"),
        ("/sys/fs/bpf/fw", "/sys/fs/bpf/_xdpctl"),
        ("/sys/fs/bpf", "/sys/fs/bpf/_xdpctl/trash/x"),
        ("relative", "/sys/fs/bpf/_xdpctl/trash/x"),
    ] {
        let forged = Change::Unload {
            dir: dir.into(),
            generation: 1,
            trash: trash.into(),
            links: vec![],
            netlink: vec![],
            shared: vec![],
            unchain: vec![],
        };
        assert!(forged.validate(root, state).is_err(), "{dir} {trash}");
    }
    // A shared pin outside the bpffs, or a shared stage outside the state
    // directory, is refused.
    let forged = Change::Unload {
        dir: "/sys/fs/bpf/fw".into(),
        generation: 1,
        trash: "/sys/fs/bpf/_xdpctl/trash/x".into(),
        links: vec![],
        netlink: vec![],
        shared: vec![SharedPin {
            path: "/etc/passwd".into(),
            map: 1,
        }],
        unchain: vec![],
    };
    assert!(forged.validate(root, state).is_err());
    let forged = Change::Load {
        dir: "/sys/fs/bpf/fw".into(),
        stage: "/sys/fs/bpf/_xdpctl/stage/x".into(),
        generation: 1,
        parents: vec![],
        shared: vec![],
        shared_stage: Some("/sys/fs/bpf/elsewhere".into()),
    };
    assert!(forged.validate(root, state).is_err());
    let steps = Change::Steps {
        what: "x".into(),
        steps: vec![Step::RemoveTree {
            path: "/root".into(),
        }],
    };
    assert!(steps.validate(root, state).is_err());
}

#[test]
fn an_attach_under_confirm_killed_before_its_watcher_is_undone() {
    let mut k = pinned_link(true);
    let change = Change::Attach {
        pin: "/b/fw/links/eth1@9".into(),
        links_dir: "/b/fw/links".into(),
        undo: true,
    };
    for step in change.recovery().1 {
        run(&mut k, &step).unwrap();
    }
    assert!(!k.fs.contains_key(Path::new("/b/fw/links")));
    assert!(!k.links[&10].attached);
}

#[test]
fn a_link_pin_moved_by_attach_replace_killed_anywhere_stays_with_its_program() {
    let mut initial = Fake::default();
    initial.put("/b/other/links/eth1@9", Node::Link(10));
    initial.mkdir("/b/fw");
    initial.links.insert(
        10,
        LinkState {
            prog: 100,
            attached: true,
        },
    );
    let change = Change::Steps {
        what: "replace on link 10".into(),
        steps: vec![
            Step::MoveLinkPin {
                from: "/b/other/links/eth1@9".into(),
                to: "/b/fw/links/eth1@9".into(),
                link: 10,
                prog: 200,
            },
            Step::RmdirIfEmpty {
                path: "/b/other/links".into(),
            },
            Step::RmdirIfEmpty {
                path: "/b/fw/links".into(),
            },
        ],
    };
    let mut after = initial.clone();
    after.fs.remove(Path::new("/b/other/links/eth1@9"));
    after.fs.remove(Path::new("/b/other/links"));
    after.put("/b/fw/links/eth1@9", Node::Link(10));
    after.links.get_mut(&10).unwrap().prog = 200;
    // Before the steps: the new links/ is made, then the link updated.
    let prepare = |k: &mut Fake| {
        k.spend()?;
        k.mkdir("/b/fw/links");
        k.link_update(10, 200, 100)
    };
    let (points, befores, afters) = crash_everywhere(&initial, &change, prepare, &initial, &after);
    assert_eq!((points, befores, afters), (5, 2, 3));
}

/// A tc filter's record (`attach --tc`) and its place's key in the fake.
const TC_RECORD: &str = "/b/fw/links/tc_ingress:tc_pass:3:eth1@9";

fn tc_place() -> String {
    "tc_ingress:tc_pass:3:eth1@9".to_owned()
}

#[test]
fn a_tc_attach_killed_anywhere_leaves_a_record_and_its_filter_or_neither() {
    // The attach pins the record, then adds the filter; its journal entry
    // settles it: a record without its filter is unpinned.
    let mut initial = Fake::default();
    initial.mkdir("/b/fw/links");
    let change = Change::Steps {
        what: "tc attach".into(),
        steps: vec![Step::TcSettle {
            path: TC_RECORD.into(),
        }],
    };
    let mut after = initial.clone();
    after.put(TC_RECORD, Node::Prog(100));
    after.filters.insert(tc_place(), 100);
    let prepare = |k: &mut Fake| {
        k.spend()?;
        k.put(TC_RECORD, Node::Prog(100));
        k.spend()?;
        k.filters.insert(tc_place(), 100);
        Ok(())
    };
    let (points, befores, afters) = crash_everywhere(&initial, &change, prepare, &initial, &after);
    assert_eq!((points, befores, afters), (3, 2, 1));
}

#[test]
fn a_tc_detach_killed_anywhere_is_finished_and_leaves_anothers_filter() {
    let mut initial = Fake::default();
    initial.put(TC_RECORD, Node::Prog(100));
    initial.filters.insert(tc_place(), 100);
    let change = Change::Steps {
        what: "tc detach".into(),
        steps: vec![
            Step::TcDetach {
                path: TC_RECORD.into(),
            },
            Step::RmdirIfEmpty {
                path: "/b/fw/links".into(),
            },
        ],
    };
    let mut after = initial.clone();
    after.fs.remove(Path::new(TC_RECORD));
    after.fs.remove(Path::new("/b/fw/links"));
    after.filters.clear();
    let (points, _, afters) = crash_everywhere(&initial, &change, |_| Ok(()), &initial, &after);
    assert_eq!((points, afters), (4, 4));

    // A filter at that place running another program (tc replaced it) is
    // not the record's: only the record goes.
    let mut theirs = initial.clone();
    theirs.filters.insert(tc_place(), 200);
    let mut k = theirs.clone();
    for step in change.forward() {
        run(&mut k, &step).unwrap();
    }
    assert_eq!(k.filters.get(&tc_place()), Some(&200));
    assert!(!k.fs.contains_key(Path::new(TC_RECORD)));
}

#[test]
fn a_tc_record_in_a_namespace_out_of_reach_is_kept_not_forgotten() {
    // Its filter cannot be told (no name to enter the namespace by): a
    // detach or a settle leaves the record for `detach --tc --netns PATH`
    // rather than forget a filter that may still run.
    let mut k = Fake::default();
    k.put(TC_RECORD, Node::Prog(100));
    k.filters.insert(tc_place(), 100);
    k.unreachable.push(9);
    let before = k.state();
    for step in [
        Step::TcSettle {
            path: TC_RECORD.into(),
        },
        Step::TcDetach {
            path: TC_RECORD.into(),
        },
    ] {
        run(&mut k, &step).unwrap();
        assert_eq!(k.state(), before, "{step:?}");
    }
}
