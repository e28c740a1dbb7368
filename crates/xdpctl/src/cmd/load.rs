//! `xdpctl load`: a BPF object in, a load directory out — its programs,
//! maps and manifest pinned all at once (staged, then renamed into place),
//! through the journal so that a crash leaves nothing behind.

use std::path::PathBuf;

use anyhow::{Context as _, Result, bail};

use super::object::{
    build_manifest, load_into_kernel, print_loaded, read_object, reuse_plan, sizes_plan,
    stage_object, write_manifest,
};
use crate::{
    cli::LoadArgs,
    ctx::Ctx,
    kernel::layout,
    model::change::Change,
    ops::{self, loaddir},
};

/// `xdpctl load`: plan, then load and pin through the journal.
pub fn load(ctx: &Ctx, args: &LoadArgs) -> Result<()> {
    let dir = load_dir(ctx, args)?;
    print_loaded(ctx, dir)
}

/// `load` without printing the result: the load directory it made (or
/// upgraded, with `--replace`).
pub fn load_dir(ctx: &Ctx, args: &LoadArgs) -> Result<PathBuf> {
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
    let state = layout::mount_root(&target.existing)?.join(pinfs::STATE_DIR);
    if target.path.starts_with(&state) {
        bail!(
            "{} is inside xdpctl's own state directory {}; load somewhere else",
            target.path.display(),
            state.display()
        );
    }
    pinfs::check_free(&target.path)?;
    loaddir::check_new(&target.path)?;
    let reuse = reuse_plan(ctx, &object, &args.maps)?;
    let sizes = sizes_plan(&object, &args.max_entries)?;

    let (mut journal, notes) = ops::begin(&target.existing)?;
    ctx.out.notes(notes);
    // Under the lock: somebody may have loaded there meanwhile.
    pinfs::check_free(&target.path)?;
    let (ebpf, names) = load_into_kernel(
        &object,
        &reuse,
        &sizes,
        args.verifier_log.as_deref(),
        &mut journal,
    )?;
    let generation = layout::random_id();
    let stage = journal.scratch("stage")?;
    let parents_missing = target.missing.len().saturating_sub(1);
    let mut parents = Vec::new();
    let mut p = target.existing.clone();
    for name in &target.missing[..parents_missing] {
        p.push(name);
        parents.push(p.clone());
    }
    let entry = journal.begin(Change::Load {
        dir: target.path.clone(),
        stage: stage.clone(),
        generation,
        parents,
    })?;
    let staged = (|| -> Result<PathBuf> {
        let mut staging = pinfs::Staging::begin(&target, &stage)?;
        stage_object(&mut staging, &ebpf, &names)?;
        let kept: Vec<&str> = reuse.iter().map(|(n, _)| n.as_str()).collect();
        let manifest = build_manifest(
            &object,
            staging.dir(),
            &names,
            layout::random_id(),
            generation,
            &kept,
        )?;
        write_manifest(&mut staging, &manifest)?;
        Ok(staging.commit()?)
    })();
    let dir = match staged {
        Ok(dir) => dir,
        Err(e) => {
            journal.abandon(entry, &[])?;
            return Err(e);
        }
    };
    journal.finish(entry)?;
    ctx.out.note(format_args!(
        "loaded {} and pinned it at {}",
        object.label,
        dir.display()
    ));
    Ok(dir)
}
