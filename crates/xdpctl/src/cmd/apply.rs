//! `xdpctl apply -f POLICY`: [`ops::apply`]'s plan, carried out unless
//! `--dry-run`, and printed.

use anyhow::Result;

use crate::{
    cli::ApplyArgs,
    ctx::Ctx,
    ops::apply::{check_confirmable, check_devices, execute, plan, read_policy},
};

/// `xdpctl apply`.
pub fn apply(ctx: &Ctx, args: &ApplyArgs) -> Result<()> {
    let policy = read_policy(&args.file)?;
    let file = args.file.display().to_string();
    let mut plan = plan(ctx, &policy, &file)?;
    if plan.changes == 0 {
        // The plan says so.
    } else if args.dry_run {
        check_confirmable(&plan, args.confirm_within)?;
        // A plan may be checked away from the host it is for: say what
        // would stop it here, without failing.
        if let Err(e) = check_devices(&plan) {
            ctx.out.note(format_args!(
                "warning: on this host, apply would stop at: {}",
                crate::render::chain_text(&e)
            ));
        }
        ctx.out.note("dry run: nothing was changed");
    } else {
        execute(ctx, &policy, &mut plan, args.confirm_within)?;
        ctx.out.note(format_args!(
            "applied {} change(s) from {file}",
            plan.changes
        ));
    }
    ctx.out.result(&plan)?;
    Ok(())
}
