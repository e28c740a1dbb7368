//! `xdpctl load --replace`: the hitless upgrade, as a journaled change.
//!
//! The new object reuses the load directory's pinned maps where they are
//! compatible, so state such as the blocklist carries over. Its pins are
//! staged (the link pins and other pins of the directory, such as guard's
//! state, re-pinned beside them); then every attachment of an old program
//! — each link pinned in the directory, each netlink attachment in any
//! known namespace — is switched to the new program of the same name
//! atomically (`BPF_LINK_UPDATE` / `XDP_FLAGS_REPLACE`, each checking the
//! program it replaces), so the device never runs without a program; last,
//! the staged directory and the load directory are exchanged in one rename.
//!
//! The journal record says all of this before the first step. Killed while
//! staging, the change is undone; killed after, it is finished (or, under
//! `--confirm-within`, undone): never a device that runs a program pinned
//! only in a staging directory.

use std::{
    collections::{BTreeMap, HashMap},
    os::fd::AsFd,
    path::PathBuf,
};

use anyhow::{Context as _, Result, bail};

use xdp_progs::xdpfw;

use super::{
    load::LoadOptions,
    object::{
        ObjectFile, build_manifest, env_sizes, load_into_kernel, map_mismatch, reuse_plan,
        shared_plan, sizes_plan, stage_object, write_manifest,
    },
    watcher,
};
use crate::{
    ctx::Ctx,
    kernel::fwindex,
    kernel::{layout, sys},
    model::{
        change::{Change, Phase, Step, Switch},
        manifest::{self, MAPS_SUBDIR},
    },
    ops::{
        self,
        live::{NetlinkAttachment, netlink_attachments},
        loaddir::LoadDir,
        pending,
    },
};

/// The kernel id of the program `name` in a loaded object.
fn prog_id(ebpf: &aya::Ebpf, name: &str) -> Result<u32> {
    let fd = ebpf.program(name).expect("loaded").fd()?;
    Ok(pinfs::obj_info(fd.as_fd())?.id)
}

/// Checks that the pins of a load directory are the objects its manifest
/// names (nobody swapped a pin behind xdpctl's back); returns the old
/// programs by id.
fn check_pins(load: &LoadDir) -> Result<HashMap<u32, String>> {
    let check = |path: PathBuf, kind: pinfs::Kind, id: u32, name: &str| -> Result<()> {
        let pin = pinfs::pin_info(&path)
            .with_context(|| format!("the load's {kind} {name} is missing"))?;
        if pin.kind != kind || pin.id != id {
            bail!(
                "{} is {} {}, but the manifest of {} says {kind} {id}; it was changed by hand \
                 (unload and load again)",
                path.display(),
                pin.kind,
                pin.id,
                load.path.display(),
            );
        }
        Ok(())
    };
    let mut progs = HashMap::new();
    for p in &load.manifest.programs {
        check(load.path.join(&p.name), pinfs::Kind::Prog, p.id, &p.name)?;
        progs.insert(p.id, p.name.clone());
    }
    for m in &load.manifest.maps {
        let path = load.path.join(MAPS_SUBDIR).join(&m.pin);
        check(path, pinfs::Kind::Map, m.id, &m.name)?;
    }
    Ok(progs)
}

/// `xdpctl load --replace`.
pub fn replace(
    ctx: &Ctx,
    args: &LoadOptions,
    object: &ObjectFile<'_>,
    target: &pinfs::PinPath,
) -> Result<PathBuf> {
    LoadDir::open(&target.path).context("--replace upgrades an existing load")?;
    let (mut journal, notes) = ops::begin(&target.path)?;
    ctx.out.notes(notes);
    // Again under the lock: recovery may have changed it.
    let load = LoadDir::open(&target.path)?;
    if args.confirm_within.is_some() {
        pending::check_none(&journal)?;
    }
    let old_progs = check_pins(&load)?;

    // Maps: explicit --map first, then the directory's own by name.
    let mut reuse: Vec<(String, PathBuf)> = reuse_plan(ctx, object, &args.maps)?;
    // The firewall's own state (indexes, caches, control words) is shared
    // with the old program as a whole, or not at all: where any of it
    // changed shape (another version, another size), the new program's
    // starts anew, and is rebuilt from the rules it keeps while staging,
    // before any switch. Of its sizes only the operator's carry over.
    let firewall = xdpfw::maps::is_firewall(|n| object.parsed.maps.contains_key(n));
    let derived = |name: &str| firewall && xdpfw::maps::INTERNAL.contains(&name);
    // Sizes: as given, else as the load has them.
    let mut sizes = sizes_plan(object, &args.max_entries)?;
    for m in &load.manifest.maps {
        if let Some(def) = object.parsed.maps.get(&m.name)
            && def.max_entries() != m.max_entries
            && !sizes.contains_key(&m.name)
            && (!derived(&m.name) || xdpfw::maps::TUNABLE.contains(&m.name.as_str()))
        {
            sizes.insert(m.name.clone(), m.max_entries);
        }
    }
    // XDPCTL_MAX_ENTRIES sizes only the maps the load did not have: the
    // load keeps its own sizes.
    let mut defaults = BTreeMap::new();
    env_sizes(object, &mut defaults)?;
    for (name, n) in defaults {
        if !load.manifest.maps.iter().any(|m| m.name == name) {
            sizes.entry(name).or_insert(n);
        }
    }
    // Maps pinned by name: the pins the load shares are reused; a new one
    // would need its own commit, which an upgrade does not have.
    let shared = shared_plan(ctx, object, &reuse, &sizes, target)?;
    if let Some(s) = shared.iter().find(|s| s.existing.is_none()) {
        bail!(
            "{}: map {} is pinned by name, and nothing is pinned at {}; --replace reuses shared \
             maps but does not create them (unload {} and load it again)",
            object.label,
            s.name,
            s.path.display(),
            load.path.display()
        );
    }
    let mut reset = Vec::new();
    let mut map_names: Vec<&String> = object.parsed.maps.keys().collect();
    map_names.sort();
    // The firewall's own maps that fit, and whether all of them do.
    let (mut own, mut own_fit) = (Vec::new(), true);
    for name in map_names {
        if reuse.iter().any(|(n, _)| n == name) || shared.iter().any(|s| &s.name == name) {
            continue;
        }
        let Some(entry) = load.manifest.map(&name.replace('.', "_")) else {
            own_fit &= !derived(name);
            continue;
        };
        let path = load.path.join(MAPS_SUBDIR).join(&entry.pin);
        let fd = pinfs::obj_get(&path)?;
        let info = sys::map_info(fd.as_fd())
            .with_context(|| format!("reading the map pinned at {}", path.display()))?;
        let mismatch = map_mismatch(&object.parsed.maps[name], &info, sizes.get(name).copied());
        if derived(name) {
            own_fit &= mismatch.is_none();
            own.push((name.clone(), path));
            continue;
        }
        match mismatch {
            None => reuse.push((name.clone(), path)),
            Some(diff) if args.reset_maps => reset.push(format!("{name} ({diff})")),
            Some(diff) => bail!(
                "map {name} in {} does not fit {}: {diff}; its contents cannot carry over \
                 (use --reset-maps to start it empty)",
                load.path.display(),
                object.label
            ),
        }
    }
    let fresh_own = !own_fit;
    if own_fit {
        reuse.extend(own);
    }

    let mut load_notes = Vec::new();
    let (ebpf, names) = load_into_kernel(
        object,
        &reuse,
        &sizes,
        args.verifier_log.as_deref(),
        &shared,
        None,
        &mut journal,
        &mut load_notes,
    )?;
    ctx.out.notes(load_notes);

    // Plan every switch before touching anything.
    let mut switches = Vec::new();
    let mut link_pins = Vec::new();
    let links_dir = load.links_dir();
    let pins = pinfs::list(&load.path)?;
    for pin in pins.iter().filter(|p| p.kind == pinfs::Kind::Link) {
        if !pin.path.starts_with(&links_dir) {
            continue;
        }
        let fd = pinfs::obj_get(&pin.path)?;
        let info = sys::link_info(fd.as_fd())
            .with_context(|| format!("reading link {}", pin.path.display()))?;
        // A link whose device went is attached to nothing: nothing to
        // switch, and its pin is not carried into the new load.
        if sys::device_link_ifindex(&info) == Some(0) {
            ctx.out.note(format_args!(
                "link {} (pinned at {}) is attached to nothing (its device went): dropped its pin",
                pin.id,
                pin.path.display()
            ));
            continue;
        }
        link_pins.push((pin.path.clone(), fd));
        let Some(prog) = old_progs.get(&info.prog_id) else {
            continue;
        };
        if !names.contains(prog) {
            bail!(
                "the link pinned at {} runs {prog}, which {} does not have; nothing was changed",
                pin.path.display(),
                object.label
            );
        }
        switches.push(Switch::Link {
            link: pin.id,
            from: info.prog_id,
            to: prog_id(&ebpf, prog)?,
        });
    }
    // Its tc filters: the new program of the same name, by `tc filter
    // replace`; the records staged with the new programs.
    let mut tc_records = Vec::new();
    let mut tc_kept = Vec::new();
    for (path, pin, prog) in super::tc::records(&links_dir) {
        let Some(name) = old_progs.get(&prog) else {
            continue;
        };
        {
            use crate::model::change::Kernel as _;
            match crate::kernel::steps::Real.tc_filter(&pin)? {
                Some(runs) if runs == Some(prog) => {}
                // Deleted or replaced by another tool, or its device went:
                // not the load's any more, and not carried over.
                Some(_) => {
                    ctx.out.note(format_args!(
                        "the tc filter recorded at {} is no longer the load's (its device \
                         went, or another tool deleted or replaced it): dropped its record",
                        path.display()
                    ));
                    continue;
                }
                // In a namespace out of reach: kept as it is (it runs the old
                // program until `detach --tc --netns PATH`).
                None => {
                    ctx.out.note(format_args!(
                        "the tc filter recorded at {} is in a network namespace xdpctl cannot \
                         enter: it keeps the old program {name}",
                        path.display()
                    ));
                    tc_kept.push(path);
                    continue;
                }
            }
        }
        if !names.contains(name) {
            bail!(
                "the tc filter recorded at {} runs {name}, which {} does not have; nothing was \
                 changed",
                path.display(),
                object.label
            );
        }
        switches.push(Switch::Tc {
            at: path.clone(),
            from: prog,
            to: prog_id(&ebpf, name)?,
        });
        tc_records.push((path, name.clone()));
    }
    let old_ids: Vec<u32> = old_progs.keys().copied().collect();
    let mut netlink_names = Vec::new();
    for NetlinkAttachment {
        dev, name, prog, ..
    } in netlink_attachments(&ctx.link_pin_index()?, &old_ids)?
    {
        let prog_name = &old_progs[&prog];
        if !names.contains(prog_name) {
            bail!(
                "{name} runs {prog_name}, which {} does not have; nothing was changed",
                object.label
            );
        }
        netlink_names.push(name);
        switches.push(Switch::Netlink {
            dev,
            from: prog,
            to: prog_id(&ebpf, prog_name)?,
        });
    }
    // Its own chain, if it holds a program, needs a chain in the new object
    // too (its map carries over like any other that fits).
    if !object
        .parsed
        .maps
        .contains_key(xdp_progs::xdpfw::maps::CHAIN)
        && let Ok(super::chain::Chained {
            next: Some(next), ..
        }) = super::chain::chain(ctx, &load.path, super::chain::Set::Show)
    {
        bail!(
            "{} hands what it passes to program {next} (its chain), and {} has no chain map; \
             nothing was changed (empty the chain first: xdpctl chain {} --clear)",
            load.path.display(),
            object.label,
            load.path.display()
        );
    }
    // Firewalls that chain to one of its programs: to the new one.
    for (fw, map, prog) in super::chain::all(&ctx.bpffs)? {
        let Some(prog_name) = old_progs.get(&prog) else {
            continue;
        };
        if !names.contains(prog_name) {
            bail!(
                "{} chains to {prog_name}, which {} does not have; nothing was changed",
                fw.display(),
                object.label
            );
        }
        switches.push(Switch::Chain {
            map,
            from: prog,
            to: prog_id(&ebpf, prog_name)?,
        });
    }

    let stage = journal.scratch("stage")?;
    let keep = match args.confirm_within {
        Some(_) => Some(journal.scratch("rollback")?),
        None => None,
    };
    let old_gen = load.manifest.generation;
    let new_gen = layout::random_id();
    let change = |phase| Change::Replace {
        dir: load.path.clone(),
        stage: stage.clone(),
        old_gen,
        new_gen,
        phase,
        switches: switches.clone(),
        keep: keep.clone(),
        undo_on_crash: args.confirm_within.is_some(),
    };
    let mut entry = journal.begin(change(Phase::Staging))?;

    // Rule changes (`map update`, guard's blocks) wait for the switch: one
    // made after the new indexes are built would reach only the old ones.
    let live_maps = load.path.join(MAPS_SUBDIR);
    let live_lock = if live_maps.is_dir() {
        Some(
            pinfs::DirLock::exclusive(&live_maps)
                .with_context(|| format!("locking {}", live_maps.display()))?,
        )
    } else {
        None
    };

    // Stage the new pins (invisible until the exchange), the links, and
    // pins that are not the object's (guard's state, say) as they are.
    let staged = (|| -> Result<()> {
        let mut staging = pinfs::Staging::begin(target, &stage)?;
        stage_object(&mut staging, &ebpf, &names)?;
        // Indexes of its own the old program keeps reading rules through
        // until the switch, and after a rollback, when changes made
        // meanwhile reached only the new ones: off, so it reads the rule
        // maps (right, only slower) until the next change or `doctor`.
        if fresh_own && let Ok(Some(old)) = fwindex::Target::open(&live_maps) {
            for rules in fwindex::Rules::ALL {
                old.suspend(rules)?;
            }
        }
        // The new firewall's indexes hold the rules it keeps before any
        // packet reaches it: where its index maps are new, empty ones would
        // read as "no rule" (fresh control words say "in use"). Guard's
        // admission cap carries over.
        let staged_maps = staging.dir().join(MAPS_SUBDIR);
        ctx.out
            .notes(fwindex::rebuild(&staged_maps, &load.path, true)?);
        fwindex::set_admit_cap(&staged_maps, fwindex::admit_cap_of(&live_maps)?)?;
        // The counters per rule carry over as the rules do: in the maps
        // themselves when they are shared, else moved (the hits the old
        // program counts between now and the switch are not).
        if fresh_own {
            ctx.out
                .notes(super::rulehits::carry(&live_maps, &staged_maps)?);
        }
        let kept: Vec<&str> = reuse.iter().map(|(n, _)| n.as_str()).collect();
        let manifest = build_manifest(
            object,
            staging.dir(),
            &names,
            load.manifest.load_id,
            new_gen,
            &kept,
            &shared,
        )?;
        write_manifest(&mut staging, &manifest)?;
        for (path, fd) in &link_pins {
            let rel = path.strip_prefix(&load.path).expect("below the load");
            staging.pin(&rel.display().to_string(), fd.as_fd())?;
        }
        for (path, name) in &tc_records {
            let rel = path.strip_prefix(&load.path).expect("below the load");
            let fd = ebpf.program(name).expect("loaded").fd()?;
            staging.pin(&rel.display().to_string(), fd.as_fd())?;
        }
        for path in &tc_kept {
            let rel = path.strip_prefix(&load.path).expect("below the load");
            let fd = pinfs::obj_get(path)?;
            staging.pin(&rel.display().to_string(), fd.as_fd())?;
        }
        for pin in &pins {
            let rel = pin.path.strip_prefix(&load.path).unwrap_or(&pin.path);
            let first = rel.components().next().map(|c| c.as_os_str().to_owned());
            let own = first.as_deref().is_some_and(|f| {
                f == MAPS_SUBDIR || f == load.manifest.links.as_str() || f == manifest::PIN
            }) || load
                .manifest
                .programs
                .iter()
                .any(|p| rel == p.name.as_str());
            if own {
                continue;
            }
            let fd = pinfs::obj_get(&pin.path)?;
            staging.pin(&rel.display().to_string(), fd.as_fd())?;
        }
        staging.keep();
        Ok(())
    })();
    if let Err(e) = staged {
        journal.abandon(entry, &[])?;
        return Err(e);
    }
    journal.update(&mut entry, change(Phase::Switching))?;
    if let Err(e) = journal.run_forward(&entry) {
        // Not a crash: undo what was switched, whatever the mode.
        let mut undo_change = change(Phase::Switching);
        if let Change::Replace { undo_on_crash, .. } = &mut undo_change {
            *undo_on_crash = true;
        }
        let undo = undo_change.recovery().1;
        journal.abandon(entry, &undo)?;
        return Err(e.context("the old programs are back in place"));
    }
    drop(live_lock);
    if let (Some(within), Some(keep)) = (args.confirm_within, &keep) {
        let mut rollback: Vec<Step> = switches.iter().map(|s| s.step(true)).collect();
        rollback.push(Step::Exchange {
            dir: load.path.clone(),
            generation: new_gen,
            other: keep.clone(),
        });
        let expect = switches
            .iter()
            .map(|s| match s {
                Switch::Link { link, to, .. } => pending::Expect::Link {
                    link: *link,
                    prog: *to,
                },
                Switch::Netlink { dev, to, .. } => pending::Expect::Netlink {
                    dev: dev.clone(),
                    prog: *to,
                },
                Switch::Chain { map, to, .. } => pending::Expect::Chain {
                    map: map.clone(),
                    prog: *to,
                },
                Switch::Tc { at, to, .. } => pending::Expect::Tc {
                    at: at.clone(),
                    prog: *to,
                },
            })
            .collect();
        watcher::arm(
            &journal,
            pending::load_key(load.manifest.load_id),
            format!("upgrade of {}", load.path.display()),
            within,
            expect,
            rollback,
            vec![keep.clone()],
        )?;
        ctx.out.note(format_args!(
            "this upgrade is rolled back in {} unless you run: xdpctl confirm {}",
            crate::model::duration::humane(within),
            load.path.display()
        ));
    }
    journal.finish(entry)?;
    let kept: Vec<&str> = reuse
        .iter()
        .map(|(n, _)| n.as_str())
        .chain(shared.iter().map(|s| s.name.as_str()))
        .collect();
    ctx.out.note(format_args!(
        "upgraded {} to {}: {} attachment(s) switched{}; {}{}",
        load.path.display(),
        object.label,
        switches.len(),
        if netlink_names.is_empty() {
            String::new()
        } else {
            format!(" (over netlink on {})", netlink_names.join(", "))
        },
        kept_text(&kept, object.parsed.maps.keys().map(String::as_str)),
        if reset.is_empty() {
            String::new()
        } else {
            format!("; maps reset: {}", reset.join(", "))
        }
    ));
    Ok(load.path)
}

/// What an upgrade kept of the object's maps, in a few words: all, none,
/// or how many and which were made new (the short list).
fn kept_text<'a>(kept: &[&str], maps: impl Iterator<Item = &'a str>) -> String {
    let mut fresh: Vec<&str> = maps.filter(|m| !kept.contains(m)).collect();
    fresh.sort_unstable();
    let total = kept.len() + fresh.len();
    match (kept.len(), fresh.len()) {
        (0, _) => "no map kept".to_owned(),
        (n, 0) => format!("all {n} maps kept"),
        (n, _) => format!("{n} of {total} maps kept, new: {}", fresh.join(", ")),
    }
}

#[cfg(test)]
mod kept_tests {
    use super::kept_text;

    #[test]
    fn an_upgrade_names_only_the_maps_it_made_new() {
        let all = ["a", "b", "c"];
        assert_eq!(
            kept_text(&["a", "b", "c"], all.into_iter()),
            "all 3 maps kept"
        );
        assert_eq!(kept_text(&[], all.into_iter()), "no map kept");
        assert_eq!(
            kept_text(&["b"], all.into_iter()),
            "1 of 3 maps kept, new: a, c"
        );
    }
}
