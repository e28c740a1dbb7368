//! Doctor: settles the bpffs (finishes or undoes unfinished
//! changes, removes leftovers), repairs what xdpctl left in a bad state,
//! and reports what it found that is not xdpctl's.

use std::{
    fs,
    path::{Path, PathBuf},
};

use anyhow::Result;
use serde::Serialize;

use crate::{
    ctx::Ctx,
    kernel::{
        fwindex,
        steps::{Real, read_manifest},
    },
    model::{
        change::{Kernel, Step},
        manifest::MAPS_SUBDIR,
    },
    ops::{self, journal::now_ms, pending},
    render::Tabular,
};

/// One finding.
#[derive(Debug, Serialize)]
pub struct Finding {
    /// `repaired`, `ok`, `pending`, `foreign` or `problem`.
    pub status: &'static str,
    /// What it is.
    pub what: String,
    /// Where.
    pub path: PathBuf,
}

impl Tabular for Finding {
    // NB: the path first: the description is free text, and wraps last.
    const HEADERS: &'static [&'static str] = &["STATUS", "PATH", "WHAT"];
    fn cells(&self, view: &crate::render::View) -> Vec<String> {
        vec![
            self.status.to_owned(),
            view.path(&self.path),
            self.what.clone(),
        ]
    }
}

/// Directories an xdpctl before the journal left beside a load.
fn legacy(name: &str) -> bool {
    name.starts_with("_xdpctl-stage-") || name.starts_with("_xdpctl-rollback-")
}

fn walk(
    ctx: &Ctx,
    dir: &Path,
    root: &Path,
    repair: bool,
    journal: &mut ops::Journal,
    out: &mut Vec<Finding>,
) -> Result<()> {
    let Ok(entries) = fs::read_dir(dir) else {
        return Ok(());
    };
    let mut entries: Vec<_> = entries.flatten().collect();
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        let Ok(ty) = entry.file_type() else { continue };
        if dir == root && name == crate::model::manifest::STATE_DIR {
            continue;
        }
        if ty.is_dir() && legacy(&name) {
            if repair {
                journal.run(&[Step::RemoveTree { path: path.clone() }])?;
            }
            out.push(Finding {
                status: if repair { "repaired" } else { "problem" },
                what: if repair {
                    "removed the leftover of an older xdpctl's interrupted change".into()
                } else {
                    "the leftover of an older xdpctl's interrupted change: would remove it".into()
                },
                path,
            });
            continue;
        }
        if ty.is_dir() {
            match read_manifest(&path) {
                Ok(Some(m)) => {
                    check_load(ctx, &path, &m, repair, journal, out)?;
                    continue;
                }
                Ok(None) => {}
                // Without the rights to read it, nothing can be told.
                Err(e) if crate::model::error_text::denied(&e) => return Err(e),
                Err(e) => {
                    out.push(Finding {
                        status: "problem",
                        what: format!("{e:#}"),
                        path: path.clone(),
                    });
                    continue;
                }
            }
            walk(ctx, &path, root, repair, journal, out)?;
        } else if !name.ends_with(".debug") {
            let pin = pinfs::pin_info(&path).ok();
            // A map pinned by name and shared by loads is theirs.
            let users: Vec<String> = match &pin {
                Some(p) if p.kind == pinfs::Kind::Map => crate::ops::loaddir::all(root)?
                    .into_iter()
                    .filter(|l| {
                        l.manifest.maps.iter().any(|m| {
                            m.id == p.id && m.shared.as_ref().is_some_and(|s| s.path == path)
                        })
                    })
                    .map(|l| {
                        l.path
                            .strip_prefix(root)
                            .unwrap_or(&l.path)
                            .display()
                            .to_string()
                    })
                    .collect(),
                _ => Vec::new(),
            };
            let (status, what) = match pin {
                Some(pin) if !users.is_empty() => (
                    "ok",
                    format!(
                        "map {}, pinned by name and shared by {}",
                        pin.id,
                        users.join(", ")
                    ),
                ),
                Some(pin) => (
                    "foreign",
                    format!("{} {}, outside any xdpctl load directory", pin.kind, pin.id),
                ),
                None => ("foreign", "not a BPF object".into()),
            };
            out.push(Finding { status, what, path });
        }
    }
    Ok(())
}

fn check_load(
    ctx: &Ctx,
    dir: &Path,
    m: &crate::model::manifest::Manifest,
    repair: bool,
    journal: &mut ops::Journal,
    out: &mut Vec<Finding>,
) -> Result<()> {
    let mut problems = 0;
    for p in &m.programs {
        if pinfs::pin_info(&dir.join(&p.name)).map_or(true, |pin| pin.id != p.id) {
            problems += 1;
            out.push(Finding {
                status: "problem",
                what: format!("program {} of the manifest is not pinned as it was", p.name),
                path: dir.join(&p.name),
            });
        }
    }
    for map in &m.maps {
        let path = dir.join(MAPS_SUBDIR).join(&map.pin);
        if pinfs::pin_info(&path).map_or(true, |pin| pin.id != map.id) {
            problems += 1;
            out.push(Finding {
                status: "problem",
                what: format!("map {} of the manifest is not pinned as it was", map.name),
                path,
            });
        }
    }
    let links = dir.join(&m.links);
    let mut real = Real;
    for pin in pinfs::list(&links).unwrap_or_default() {
        if pin.kind != pinfs::Kind::Link {
            continue;
        }
        let state = real.link(pin.id)?;
        let attached = state.is_some_and(|l| l.attached);
        if let Some(l) = state.filter(|l| l.attached && !m.programs.iter().any(|p| p.id == l.prog))
        {
            // An `attach --replace` before links moved with their program.
            problems += 1;
            out.push(Finding {
                status: "problem",
                what: format!(
                    "link {} runs program {}, which is not this load's: unloading {} would \
                     detach it (attach that program again with --replace, or detach it)",
                    pin.id,
                    l.prog,
                    dir.display()
                ),
                path: pin.path.clone(),
            });
        }
        if !attached {
            problems += 1;
            if repair {
                journal.run(&[Step::UnpinIfDetached {
                    path: pin.path.clone(),
                }])?;
            }
            out.push(Finding {
                status: if repair { "repaired" } else { "problem" },
                what: if repair {
                    format!("link {} was no longer attached: unpinned", pin.id)
                } else {
                    format!("link {} is no longer attached: would unpin", pin.id)
                },
                path: pin.path,
            });
        }
    }
    // tc filters' records (`attach --tc`): one whose filter is gone (its
    // device deleted, or tc deleted or replaced it) is stale.
    for (path, pin, prog) in crate::ops::tc::records(&links) {
        use crate::model::change::Kernel as _;
        let Some(runs) = real.tc_filter(&pin)? else {
            continue; // a namespace out of reach: cannot tell
        };
        if runs == Some(prog) {
            continue;
        }
        problems += 1;
        if repair {
            journal.run(&[
                Step::TcSettle { path: path.clone() },
                Step::RmdirIfEmpty {
                    path: links.clone(),
                },
            ])?;
        }
        let why = match runs {
            Some(other) => format!("runs program {other} now (another tool replaced it)"),
            None => "is gone".to_owned(),
        };
        out.push(Finding {
            status: if repair { "repaired" } else { "problem" },
            what: format!(
                "the tc filter of {} at {} of {} {why}: {}",
                match &pin.hook {
                    crate::model::linkpin::Hook::Tc { prog, .. } => prog.as_str(),
                    _ => "?",
                },
                pin.hook.name(),
                pin.dev,
                if repair {
                    "unpinned its record"
                } else {
                    "would unpin its record"
                }
            ),
            path,
        });
    }
    // Programs in libxdp dispatchers (`attach --dispatcher`): a record
    // whose copy runs in no dispatcher any more (the dispatcher was
    // detached) is stale.
    for record in crate::ops::dispatcher::records(&links) {
        if crate::ops::dispatcher::runs(ctx, &record)? != Some(false) {
            continue;
        }
        problems += 1;
        if repair {
            journal.run(&[
                Step::RemoveTree {
                    path: record.clone(),
                },
                Step::RmdirIfEmpty {
                    path: links.clone(),
                },
            ])?;
        }
        out.push(Finding {
            status: if repair { "repaired" } else { "problem" },
            what: format!(
                "the program recorded here runs in no libxdp dispatcher any more: {}",
                if repair {
                    "unpinned its record"
                } else {
                    "would unpin its record"
                }
            ),
            path: record,
        });
    }
    problems += check_indexes(ctx, dir, repair, out)?;
    if problems == 0 {
        out.push(Finding {
            status: "ok",
            what: format!(
                "load of {} ({}, {})",
                m.object,
                crate::render::count(m.programs.len(), "program", "programs"),
                crate::render::count(m.maps.len(), "map", "maps")
            ),
            path: dir.to_owned(),
        });
    }
    Ok(())
}

/// The firewall's indexes: one off while its rule maps hold entries (a
/// change was interrupted, or another tool wrote them and the datapath
/// noticed) is a problem, and rebuilding it the repair.
fn check_indexes(ctx: &Ctx, dir: &Path, repair: bool, out: &mut Vec<Finding>) -> Result<usize> {
    let maps = dir.join(MAPS_SUBDIR);
    let Some(index) = fwindex::Target::open(&maps)? else {
        return Ok(0);
    };
    let mut problems = 0;
    for rules in fwindex::Rules::ALL {
        let status = index.status(rules)?;
        // Marked empty, yet holding rules: another tool wrote them. In
        // use, yet not what the rules call for: the same, not noticed yet.
        let skipped = status.empty && index.has_rules(rules)?;
        let differs = if skipped { None } else { index.verify(rules)? };
        if !skipped
            && differs.is_none()
            && (!index.has_index(rules) || status.in_use || !index.has_rules(rules)?)
        {
            continue;
        }
        problems += 1;
        let why = if skipped {
            fwindex::skipped_rules(rules)
        } else if let Some(why) = differs {
            if repair {
                why
            } else {
                format!("{why}; `xdpctl doctor` rebuilds it")
            }
        } else {
            format!(
                "the {} is off: {}",
                rules.index_name(),
                fwindex::why_off(rules, status)
            )
        };
        let path = maps.join(rules.rules_name().split('/').next().unwrap_or_default());
        if !repair {
            out.push(Finding {
                status: "problem",
                what: why,
                path,
            });
            continue;
        }
        match index.sync(rules)? {
            fwindex::Synced::InUse { rules: n } => out.push(Finding {
                status: "repaired",
                what: format!(
                    "{why}; rebuilt the index from {}",
                    crate::render::count(n, "rule", "rules")
                ),
                path,
            }),
            fwindex::Synced::TooBig { needed, room } => out.push(Finding {
                status: "problem",
                what: fwindex::too_big(&maps, rules, needed, room),
                path,
            }),
            fwindex::Synced::Absent => {}
        }
    }
    // SYN cookies whose host has been set back: nothing to repair here.
    if let Some(why) = ops::syncookie::unready(ctx, dir)? {
        problems += 1;
        out.push(Finding {
            status: "problem",
            what: why,
            path: maps.join(xdp_progs::xdpfw::maps::SYN_PORTS),
        });
    }
    Ok(problems)
}

/// What doctor found on a bpffs.
#[derive(Debug)]
pub struct Report {
    /// The bpffs (or load directory) it looked at.
    pub root: PathBuf,
    /// Every finding.
    pub findings: Vec<Finding>,
    /// How many are problems (with `check`, repairs it would make too).
    pub problems: usize,
}

/// Checks the bpffs at `dir` (relative: under the bpffs root; none: the
/// root), or a load directory, and repairs what it can unless `check`.
pub fn doctor(ctx: &Ctx, dir: Option<&Path>, check: bool) -> Result<Report> {
    let root = ctx.resolve(dir.unwrap_or(Path::new("")));
    if !root.exists()
        && root
            .parent()
            .is_some_and(|p| pinfs::is_bpffs(p).unwrap_or(false))
    {
        anyhow::bail!(
            "nothing is pinned at {}; name a load directory, or none for the whole bpffs",
            root.display()
        );
    }
    if !root.is_dir() || !pinfs::is_bpffs(&root).unwrap_or(false) {
        anyhow::bail!(
            "{} is not a mounted bpffs; nothing of xdpctl's can be there",
            root.display()
        );
    }
    let mut out = Vec::new();
    let (mut journal, notes) = ops::begin(&root)?;
    for note in notes {
        out.push(Finding {
            status: if note.starts_with("warning") {
                "problem"
            } else {
                "repaired"
            },
            what: note,
            path: journal.state().dir.clone(),
        });
    }
    for (key, p) in pending::all(journal.state()) {
        let path = journal.state().sub("pending").join(&key);
        out.push(match p {
            Ok(p) => Finding {
                status: "pending",
                what: format!(
                    "the {} waits for `xdpctl confirm` ({}s left, watcher {})",
                    p.what,
                    p.deadline_ms.saturating_sub(now_ms()) / 1000,
                    if pending::watcher_alive(p.watcher, &key) {
                        "running"
                    } else {
                        "gone"
                    }
                ),
                path,
            },
            Err(e) => Finding {
                status: "problem",
                what: format!("{e:#}"),
                path,
            },
        });
    }
    // DIR may be a load directory itself: checked as one, not walked (its
    // pins would look like no load's).
    match read_manifest(&root) {
        Ok(Some(m)) => check_load(ctx, &root, &m, !check, &mut journal, &mut out)?,
        Ok(None) => walk(ctx, &root, &root, !check, &mut journal, &mut out)?,
        Err(e) => return Err(e),
    }
    // A program only a chain holds (pinned nowhere): said, not a problem
    // (another tool may hold it without pins), and nothing else names it.
    let chains: Vec<_> = ops::chain::all(&ctx.bpffs)?
        .into_iter()
        .filter(|(fw, _, _)| fw.starts_with(&root))
        .collect();
    if !chains.is_empty() {
        let pins = ctx.pin_index()?;
        for (fw, map, prog) in chains {
            // A loop (another tool wrote the slot): every packet goes round
            // to the kernel's limit, counted each time.
            let id = crate::kernel::chain::open(&map)?.map(|h| h.info().id);
            if let Some(id) = id
                && let Some(path) = ops::chain::loop_back(id, prog)?
            {
                out.push(Finding {
                    status: "problem",
                    what: format!(
                        "the chain of {} loops back to it (through program {prog}{}): every \
                         packet goes round until the kernel stops it (xdpctl chain {} --clear)",
                        fw.display(),
                        path.iter().map(|p| format!(", {p}")).collect::<String>(),
                        fw.display()
                    ),
                    path: map.clone(),
                });
            }
            if !pins.contains_key(&(pinfs::Kind::Prog, prog)) {
                out.push(Finding {
                    status: "foreign",
                    what: format!(
                        "the chain hands what {} passes to program {prog}, which is pinned \
                         nowhere: only the chain holds it (xdpctl chain {} --clear lets it go)",
                        fw.display(),
                        fw.display()
                    ),
                    path: map,
                });
            }
        }
    }
    let problems = out
        .iter()
        .filter(|f| f.status == "problem" || (check && f.status == "repaired"))
        .count();
    Ok(Report {
        root,
        findings: out,
        problems,
    })
}
