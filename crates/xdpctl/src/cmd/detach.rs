//! `xdpctl detach`: [`ops::detach`] (or, at a tc hook, [`ops::tcx`]'s or
//! [`ops::tc`]'s) and what it took off as a table.

use anyhow::Result;

use crate::{
    cli::{DetachArgs, TcxHook},
    ctx::Ctx,
    ops::{detach, tc, tcx},
    render::Human,
};

/// `xdpctl detach`.
pub fn detach(ctx: &Ctx, args: &DetachArgs) -> Result<()> {
    let (dev, netns, prog) = (&args.dev, args.netns.as_deref(), args.prog.as_ref());
    match (args.tc, args.tcx) {
        (Some(hook), _) => hooked(
            ctx,
            &tc::detach(ctx, dev, netns, hook == TcxHook::Egress, prog)?,
        ),
        (_, Some(hook)) => hooked(
            ctx,
            &tcx::detach(ctx, dev, netns, hook == TcxHook::Egress, prog)?,
        ),
        _ => Ok(ctx.out.result(&detach::detach(ctx, dev, netns)?)?),
    }
}

/// What a detach at a tc hook took off; nothing taken off: the note says
/// so, no empty table.
fn hooked<T>(ctx: &Ctx, detached: &Vec<T>) -> Result<()>
where
    Vec<T>: Human,
{
    if detached.is_empty() {
        ctx.out.json_or_nothing(&serde_json::json!([]))?;
    } else {
        ctx.out.result(detached)?;
    }
    Ok(())
}
