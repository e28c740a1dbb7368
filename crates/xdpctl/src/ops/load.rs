//! Load: a BPF object in, a load directory out — its programs, maps and
//! manifest pinned all at once (staged, then renamed into place), through
//! the journal so that a crash leaves nothing behind. With `replace`, the
//! hitless upgrade of [`super::replace`].

use std::{path::PathBuf, time::Duration};

use anyhow::{Context as _, Result, bail};

use super::object::{
    build_manifest, env_sizes, load_into_kernel, read_object, reuse_plan, shared_plan, sizes_plan,
    stage_object, write_manifest,
};
use crate::{
    ctx::Ctx,
    kernel::{fwindex, layout},
    model::{
        change::{Change, SharedPin, Step},
        handle::MapReuse,
        manifest::MAPS_SUBDIR,
    },
    ops::{self, loaddir},
};

/// What to load and how: `xdpctl load`'s options, `apply`'s load.
#[derive(Clone, Debug, Default)]
pub struct LoadOptions {
    /// The object file; `None` for the built-in firewall.
    pub object: Option<PathBuf>,
    /// The load directory (relative: under the bpffs root).
    pub pin: PathBuf,
    /// Maps to reuse instead of creating: name → pinned path.
    pub maps: Vec<MapReuse>,
    /// Room in the object's maps: name → entries.
    pub max_entries: Vec<(String, u32)>,
    /// Where to write the verifier's log if a program is rejected.
    pub verifier_log: Option<PathBuf>,
    /// Upgrade the load at `pin` in place.
    pub replace: bool,
    /// With `replace`: maps the new object cannot reuse start empty.
    pub reset_maps: bool,
    /// With `replace`: rolled back unless confirmed within this.
    pub confirm_within: Option<Duration>,
}

/// Refuses a load directory that holds pins, saying how to empty it.
fn check_free(path: &std::path::Path) -> Result<()> {
    match pinfs::check_free(path) {
        Err(pinfs::Error::Occupied { path, pins }) => bail!(
            "{} already holds {pins} pinned object(s); unload it first (xdpctl unload {}) or \
             choose another directory",
            path.display(),
            path.display()
        ),
        other => Ok(other?),
    }
}

/// Loads an object and pins it as a load directory (or upgrades one, with
/// `replace`): the directory it made.
pub fn load(ctx: &Ctx, args: &LoadOptions) -> Result<PathBuf> {
    let object = read_object(args.object.as_deref())?;

    let dir = ctx.resolve(&args.pin);
    if dir.starts_with(&ctx.bpffs) {
        ctx.ensure_bpffs()?;
    }
    let target = pinfs::validate(&dir).context("--pin")?;
    if args.replace {
        return super::replace::replace(ctx, args, &object, &target);
    }
    // Everything that can be checked is checked before the (slow) load.
    if target.path == layout::mount_root(&target.existing)? {
        bail!(
            "{} is the root of a bpffs mount; load into a directory below it (e.g. {})",
            target.path.display(),
            target.path.join("xdpfw").display()
        );
    }
    let state = layout::mount_root(&target.existing)?.join(crate::model::manifest::STATE_DIR);
    if target.path.starts_with(&state) {
        bail!(
            "{} is inside xdpctl's own state directory {}; load somewhere else",
            target.path.display(),
            state.display()
        );
    }
    check_free(&target.path)?;
    loaddir::check_new(&target.path)?;
    let reuse = reuse_plan(ctx, &object, &args.maps)?;
    let mut sizes = sizes_plan(&object, &args.max_entries)?;
    env_sizes(&object, &mut sizes)?;

    let (mut journal, notes) = ops::begin(&target.existing)?;
    ctx.out.notes(notes);
    // Under the lock: somebody may have loaded there meanwhile.
    check_free(&target.path)?;

    let shared = shared_plan(ctx, &object, &reuse, &sizes, &target)?;
    let generation = layout::random_id();
    let stage = journal.scratch("stage")?;
    let parents_missing = target.missing.len().saturating_sub(1);
    let mut parents = Vec::new();
    let mut p = target.existing.clone();
    for name in &target.missing[..parents_missing] {
        p.push(name);
        parents.push(p.clone());
    }
    let shared_stage = shared
        .iter()
        .any(|s| s.existing.is_none())
        .then(|| journal.scratch("stage"))
        .transpose()?;
    let mut change = Change::Load {
        dir: target.path.clone(),
        stage: stage.clone(),
        generation,
        parents,
        shared: Vec::new(),
        shared_stage: shared_stage.clone(),
    };
    // NB: recorded before aya pins the new shared maps in their stage, so
    // that a crash while loading leaves a record whose recovery removes it.
    let mut entry = journal.begin(change.clone())?;
    let mut load_notes = Vec::new();
    let loaded = (|| {
        if let Some(p) = &shared_stage {
            pinfs::mkdir_0700(p).with_context(|| format!("creating {}", p.display()))?;
        }
        let (ebpf, names) = load_into_kernel(
            &object,
            &reuse,
            &sizes,
            args.verifier_log.as_deref(),
            &shared,
            shared_stage.as_deref(),
            &mut journal,
            &mut load_notes,
        )?;
        let mut created = Vec::new();
        for s in shared.iter().filter(|s| s.existing.is_none()) {
            let staged = shared_stage.as_ref().expect("made above").join(&s.name);
            let map = pinfs::pin_info(&staged)
                .with_context(|| format!("reading back the staged map {}", s.name))?
                .id;
            created.push((
                staged,
                SharedPin {
                    path: s.path.clone(),
                    map,
                },
            ));
        }
        anyhow::Ok((ebpf, names, created))
    })();
    ctx.out.notes(load_notes);
    let (ebpf, names, created) = match loaded {
        Ok(l) => l,
        Err(e) => {
            // What aya pinned in the stage (before a program was rejected)
            // goes with the record.
            journal.abandon(entry, &[])?;
            return Err(e);
        }
    };
    if let Change::Load { shared, .. } = &mut change {
        *shared = created.iter().map(|(_, s)| s.clone()).collect();
    }
    if !created.is_empty()
        && let Err(e) = journal.update(&mut entry, change)
    {
        journal.abandon(entry, &[])?;
        return Err(e);
    }
    let staged = (|| -> Result<PathBuf> {
        let mut staging = pinfs::Staging::begin(&target, &stage)?;
        stage_object(&mut staging, &ebpf, &names)?;
        // A firewall given rule maps that hold rules (`--map`) indexes them
        // before its first packet: its empty indexes say "in use".
        ctx.out.notes(fwindex::rebuild(
            &staging.dir().join(MAPS_SUBDIR),
            &target.path,
            false,
        )?);
        let kept: Vec<&str> = reuse.iter().map(|(n, _)| n.as_str()).collect();
        let manifest = build_manifest(
            &object,
            staging.dir(),
            &names,
            layout::random_id(),
            generation,
            &kept,
            &shared,
        )?;
        write_manifest(&mut staging, &manifest)?;
        // The shared pins first, then the load: recovery keeps them only
        // if the load's rename happened.
        for (staged, pin) in &created {
            pinfs::rename_noreplace(staged, &pin.path).with_context(|| {
                format!(
                    "pinning the shared map at {} (something else pinned it meanwhile?)",
                    pin.path.display()
                )
            })?;
        }
        Ok(staging.commit()?)
    })();
    let dir = match staged {
        Ok(dir) => dir,
        Err(e) => {
            journal.abandon(entry, &[])?;
            return Err(e);
        }
    };
    if let Some(p) = &shared_stage {
        journal.run(&[Step::RemoveTree { path: p.clone() }])?;
    }
    journal.finish(entry)?;
    for s in &shared {
        ctx.out.note(format_args!(
            "{} map {} pinned by name at {}",
            if s.existing.is_some() {
                "reused the"
            } else {
                "shared the"
            },
            s.name,
            s.path.display()
        ));
    }
    ctx.out.note(format_args!(
        "loaded {} and pinned it at {}",
        object.label,
        dir.display()
    ));
    Ok(dir)
}
