//! `xdpctl detach`: [`ops::detach`] and what it took off as a table.

use anyhow::Result;

use crate::{
    cli::{DetachArgs, TcxHook},
    ctx::Ctx,
    ops::{detach, tc, tcx},
};

/// `xdpctl detach`.
pub fn detach(ctx: &Ctx, args: &DetachArgs) -> Result<()> {
    if let Some(hook) = args.tc {
        let detached = tc::detach(
            ctx,
            &args.dev,
            args.netns.as_deref(),
            hook == TcxHook::Egress,
            args.prog.as_ref(),
        )?;
        if detached.is_empty() {
            ctx.out.json_or_nothing(&serde_json::json!([]))?;
        } else {
            ctx.out.result(&detached)?;
        }
        return Ok(());
    }
    if let Some(hook) = args.tcx {
        let detached = tcx::detach(
            ctx,
            &args.dev,
            args.netns.as_deref(),
            hook == TcxHook::Egress,
            args.prog.as_ref(),
        )?;
        // Nothing taken off: the note says so; no empty table.
        if detached.is_empty() {
            ctx.out.json_or_nothing(&serde_json::json!([]))?;
        } else {
            ctx.out.result(&detached)?;
        }
        return Ok(());
    }
    let detached = detach::detach(ctx, &args.dev, args.netns.as_deref())?;
    ctx.out.result(&detached)?;
    Ok(())
}
